/*
 * trigsweep.h - how many triggers would have fired, per rule and
 * threshold, over the scores of a replay: the configured rule and a fixed
 * ladder of others (top 0.1% .. 5%, lift 2 .. 10, absolute 0.05 .. 0.5),
 * each with the configured cool-down, staleness guard and distribution
 * settings, so marketing can pick a threshold from the data before
 * switching it on. For `intentd replay` (its report and summary).
 *
 * Every row runs pipeline/trigger.c's own rules over the same stream of
 * (user, event time, score); the relative rows share one score
 * distribution, which is what each row's own would hold (the same scores
 * in the same order). Like the engine in a replay, it judges staleness by
 * event time only: a replay has no wall clock, and its sorted input no
 * late events.
 *
 * The rows can be split into parts that run on threads of their own
 * (replay with several pipeline workers: one part per worker), each part
 * over every score in stream order with its own copy of the distribution;
 * each row then decides exactly as it does with one part.
 *
 * Memory: one score distribution (32 KiB) per part and, per row, a
 * trigger table of the users who fired (32 bytes each, up to
 * triggers.max_users).
 *
 * @thread one thread per part at a time (itd_trigsweep_add_part); the
 * others on one thread.
 */
#ifndef INTENTD_TRIGSWEEP_H
#define INTENTD_TRIGSWEEP_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "intentd/trigger.h"

typedef struct itd_trigsweep_s itd_trigsweep_t;

/** @brief A sweep around the configured rule base (copied), its rows in
 * `parts` parts (at least 1; more than there are rows counts as one per
 * row), dealt in proportion to weight[0..parts) (NULL or a 0: 1 each;
 * with equal weights row i goes to part i % parts). NULL with errstr
 * when the base is invalid. Caller owns. */
itd_trigsweep_t *itd_trigsweep_new(const itd_trigger_conf_t *base,
                                   size_t parts, const unsigned *weight,
                                   char *errstr, size_t errstr_size);
void itd_trigsweep_destroy(itd_trigsweep_t *sw);

/** @brief How many parts (itd_trigsweep_new's, at most one per row). */
size_t itd_trigsweep_parts(const itd_trigsweep_t *sw);

/** @brief One scored, on-time event of the user with key user_hash (the
 * row's), in stream order, into every part. */
void itd_trigsweep_add(itd_trigsweep_t *sw, uint64_t user_hash,
                       int64_t ts_ms, float score);

/** @brief The same into part `part` only (nothing past the last part).
 * Each part must see every event, in stream order; parts on different
 * threads at once are safe, one part on two is not. */
void itd_trigsweep_add_part(itd_trigsweep_t *sw, size_t part,
                            uint64_t user_hash, int64_t ts_ms, float score);

/**
 * @brief {"configured": ROW, "scores": N, "rows": [ROW, ...]} with ROW =
 * {"rule", "parameter", "exit_parameter", "up", "down", "users",
 * "up_per_1000_events", "configured"}. New reference.
 */
json_t *itd_trigsweep_json(const itd_trigsweep_t *sw);

/** @brief The table as text lines for the replay summary. */
void itd_trigsweep_print(const itd_trigsweep_t *sw, FILE *out);

#endif
