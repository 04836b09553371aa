/*
 * msync.h - one model across instances: what a model learned since it last
 * published, as bytes for the other instances, and the merge of what they
 * published.
 *
 * Every instance runs the same model (same type, shape and model.seed, so
 * the same initial parameters). Each keeps a base copy of the synced
 * values as of its last exchange. Publishing encodes the change since
 * (current - base: the dense tensors row by row, and only the embedding
 * rows, or FTRL coordinates, that changed) and moves the base to the
 * current values. Merging another instance's change adds it to both the
 * current values and the base, so it is never published again, and what
 * this instance learned meanwhile stays its own pending change.
 *
 * Why a sum: a change is the displacement n examples caused. One model fed
 * every instance's stream would move by the example-weighted mean of the
 * instances' per-example displacements times all their examples, which is
 * the sum of their changes. So instances that each see a share of the
 * traffic move, together, as one instance seeing all of it; once every
 * instance has published and merged every change, all hold the same
 * values (to float rounding: the additions happen in another order).
 *
 * The MLP's input statistics (mean and variance of each dense input) are
 * averages, not sums: they travel as sufficient statistics (count, sum,
 * sum of squares), which add exactly, and are capped at the model's
 * window (norm_max_count) by scaling all three. Optimizer moments, step
 * counts and the scoring scratch stay local: each instance's optimizer
 * normalises its own gradients.
 *
 * A full snapshot carries absolute values: every dense row and every
 * embedding row (or FTRL coordinate) that ever changed here; the others
 * are still their seeded initial values everywhere. A new instance adopts
 * the newest one instead of starting from scratch.
 *
 * Messages are self-contained and at most max_bytes each (a change is
 * split across several when larger): each part is applied on its own, in
 * any order, and each is checksummed (CRC32C). A message of another model
 * shape or seed is refused by name.
 *
 * Depends only on libc and the model. Knows nothing of Kafka.
 * @thread the model's owner thread; no locks.
 */
#ifndef INTENTD_MSYNC_H
#define INTENTD_MSYNC_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/model.h"

/* Smallest max_bytes accepted: a header, a block header and one row. */
#define ITD_MSYNC_MIN_BYTES 4096

typedef struct itd_msync_s itd_msync_t;

typedef struct itd_msync_stats_s {
        uint64_t published;       /* messages written (parts counted) */
        uint64_t published_full;  /* of which full-snapshot parts */
        uint64_t merged;          /* others' change messages applied */
        uint64_t adopted;         /* full-snapshot parts adopted */
        uint64_t skipped;         /* own messages, or full snapshots not
                                   * wanted (itd_msync_merge, adopt 0) */
        uint64_t examples_merged; /* examples behind the merged changes */
} itd_msync_stats_t;

/**
 * @brief Emits one encoded message (buf borrowed for the call).
 * @returns ITD_OK, or an error that stops the publish: what was emitted
 * stays emitted, and the rows of the part that failed are lost to the
 * other instances (the base has moved past them).
 */
typedef itd_err_t (*itd_msync_emit_t)(const void *buf, size_t len,
                                      void *arg);

/**
 * @brief Sync state for m (borrowed; must outlive it). The base starts as
 * m's current values: what m holds now (initial weights, or a loaded
 * checkpoint) is not a change. instance: this instance's id, stamped on
 * its messages, so it skips its own. max_bytes: largest message.
 * @returns it (caller owns), or NULL with errstr (max_bytes too small).
 */
itd_msync_t *itd_msync_new(itd_model_t *m, uint64_t instance,
                           size_t max_bytes, char *errstr,
                           size_t errstr_size);
void itd_msync_destroy(itd_msync_t *ms);

/**
 * @brief Encodes what changed since the last publish (full 0) or a full
 * snapshot (full 1), in messages of at most max_bytes, each handed to
 * emit. A change message also moves the base to the current values. A
 * change with no changed value emits nothing.
 * @param n_msgs  gets how many messages were emitted (may be NULL).
 * @returns ITD_OK or what emit returned, with errstr.
 */
itd_err_t itd_msync_publish(itd_msync_t *ms, int full, itd_msync_emit_t emit,
                            void *arg, size_t *n_msgs, char *errstr,
                            size_t errstr_size);

/**
 * @brief Applies one message: another instance's change is added; a full
 * snapshot replaces the values it carries when adopt is 1 (a new
 * instance catching up) and is skipped otherwise; this instance's own
 * messages are skipped. A message that fails a check changes nothing.
 * @returns ITD_OK; ITD_ERR_CORRUPT (checksum, truncation, bad row) or
 * ITD_ERR_INCOMPATIBLE (another version, model shape or seed), errstr
 * naming why.
 */
itd_err_t itd_msync_merge(itd_msync_t *ms, const void *buf, size_t len,
                          int adopt, char *errstr, size_t errstr_size);

/**
 * @brief The replicas of one process as one model by averaging: applies a
 * change message with its parameters and their running averages scaled
 * by scale (1 / replicas), while precisions, input statistics and counts
 * add as in itd_msync_merge. With own 1, buf is this instance's own
 * change, just published: its parameters are scaled the same way in
 * place (the amounts are already here). Summed changes of W replicas that
 * each moved toward the same optimum would overshoot it W times; their
 * mean does not.
 * @returns as itd_msync_merge; ITD_ERR_ARG for own 1 with another
 * instance's message or a full snapshot.
 */
itd_err_t itd_msync_merge_mean(itd_msync_t *ms, const void *buf, size_t len,
                               double scale, int own, char *errstr,
                               size_t errstr_size);

/** @brief Counters so far. */
void itd_msync_stats(const itd_msync_t *ms, itd_msync_stats_t *st);

/**
 * @brief The distance of two models of the same shape over the synced
 * parameters (weights, biases, embeddings, offsets; FTRL z), relative:
 * ||a - b|| / max(||a||, ||b||), 0 for identical ones.
 * @returns it, or -1 when the shapes differ.
 */
double itd_msync_distance(itd_model_t *a, itd_model_t *b);

#endif
