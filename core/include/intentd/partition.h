/*
 * partition.h - everything intentd keeps for one partition of the events
 * topic, as one object: the users' state (windows, watermark), the
 * predictions waiting for their labels, the users' trigger flags, and its
 * bookkeeping (newest event time, when it last saw an event, so whether it
 * is idle). It is the unit that is snapshotted, restored, handed over and
 * dropped: a partition object holds no pointer into the engine or the
 * model, so it can move between engines (and threads) as it is.
 *
 * The partition owns how its parts agree: its labeler follows its state's
 * watermark (itd_partition_settle), the users' label counts in the state
 * take the final label of every example it hands out
 * (itd_partition_take), and idleness is decided here only.
 *
 * @thread one owner at a time (an engine on one pipeline thread); no locks.
 */
#ifndef INTENTD_PARTITION_H
#define INTENTD_PARTITION_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/labeler.h"
#include "intentd/risk.h"
#include "intentd/state.h"
#include "intentd/trigger.h"

/* What the partition does with each event's risk score (risk.h). All
 * zero: nothing (every example trained on, no risk triggers). */
typedef struct itd_partition_risk_conf_s {
        float train_threshold; /* predictions scoring at least this are
                                * trained on only with probability
                                * train_weight (judged always); 0: off */
        float train_weight;    /* 0: never trained on; 0..1 */
        int triggers_on;       /* 1: a second trigger table judges the
                                * risk scores (itd_partition_risk_trigger) */
        float trigger_enter;   /* UP at this risk, 0..1 */
        float trigger_exit;    /* re-armed (DOWN) below this, <= enter */
        int64_t trigger_cooldown_ms;
} itd_partition_risk_conf_t;

/* What a partition is built from; copied into it. */
typedef struct itd_partition_conf_s {
        itd_state_conf_t state;
        itd_labeler_conf_t labels;
        itd_trigger_conf_t triggers;
        int64_t idle_ms; /* no event for longer than max(this, the allowed
                          * lateness) of wall time: idle (the engine also
                          * waits for no input at all for this long:
                          * itd_engine_advance_idle) */
        itd_partition_risk_conf_t risk;
} itd_partition_conf_t;

/* What a partition holds, for checkpoint manifests and `inspect`. */
typedef struct itd_partition_info_s {
        int32_t id;
        int64_t watermark_ms; /* INT64_MIN before any event */
        int64_t last_ts_ms;   /* newest event time seen (0: none) */
        uint64_t users;
        uint64_t pending;     /* predictions waiting for their label */
        uint64_t state_bytes;
} itd_partition_info_t;

typedef struct itd_partition_s itd_partition_t;

/**
 * @brief An empty partition `id`; now_ms (wall clock) starts its idle
 * time.
 * @returns it (caller owns), or NULL with errstr naming what in conf is
 * wrong.
 */
itd_partition_t *itd_partition_new(int32_t id,
                                   const itd_partition_conf_t *conf,
                                   int64_t now_ms, char *errstr,
                                   size_t errstr_size);
/** @brief Frees pt and all it holds; NULL does nothing. */
void itd_partition_destroy(itd_partition_t *pt);

int32_t itd_partition_id(const itd_partition_t *pt);
void itd_partition_info(const itd_partition_t *pt,
                        itd_partition_info_t *info);

/* ---- per event, in the engine's order (engine.h) ---------------------- */

/** @brief Starts loading what itd_partition_apply of the user with key
 * user_hash will touch. */
void itd_partition_prefetch(const itd_partition_t *pt, uint64_t user_hash);

/**
 * @brief Applies ev (its user's key: user_hash = itd_user_hash(ev->user_id),
 * computed once by whoever decoded ev) to the state and writes
 * its features: x (dim floats), ids (ITD_SPARSE_IDS), top (may be NULL).
 * A late event (older than the watermark) changes nothing and is featured
 * from its user's state as it stands; *late says so. now_ms: the wall
 * clock, for idleness. *risk: the event's risk score (risk.h), 0..1; an
 * on-time event also teaches the partition's population of paces.
 * @returns ITD_OK; ITD_ERR_RANGE or ITD_ERR_ARG for an event the state
 * refuses (time beyond +-2^62 ms, type outside the enum): nothing written.
 */
itd_err_t itd_partition_apply(itd_partition_t *pt, const itd_event_t *ev,
                              uint64_t user_hash, int64_t now_ms, float *x,
                              uint32_t *ids, itd_topcats_t *top, int *late,
                              float *risk);

/**
 * @brief After scoring: the event resolves earlier predictions of its
 * user (never its own), then its own prediction waits for its label
 * unless late (a late one may hold later events in its features, and its
 * horizon may have closed). x, ids, next_probs are copied; offset (the
 * event's, in this partition) comes back with its example. A prediction
 * whose risk is at least risk.train_threshold is judged but trained on
 * only with probability risk.train_weight (a deterministic draw from the
 * user and the event time), so bots do not teach the purchase model.
 * @returns 1 when the prediction waits but will not be trained on.
 */
int itd_partition_predicted(itd_partition_t *pt, const itd_event_t *ev,
                            uint64_t user_hash, int64_t offset, int late,
                            const float *x, const uint32_t *ids, float score,
                            const float *next_probs, float risk);

/**
 * @brief The trigger decision of an on-time prediction (trigger.h):
 * 1 with *fire when a record is due.
 */
int itd_partition_trigger(itd_partition_t *pt, uint64_t user_hash,
                          int64_t ts_ms, int64_t clock_ms, float score,
                          itd_trigger_fire_t *fire);

/**
 * @brief The risk trigger decision of an on-time prediction: the risk
 * score judged by the partition's second trigger table (rule ABSOLUTE at
 * risk.trigger_enter / trigger_exit, its own cool-down; staleness and
 * max_users as the marketing triggers). 0 when risk triggers are off.
 */
int itd_partition_risk_trigger(itd_partition_t *pt, uint64_t user_hash,
                               int64_t ts_ms, int64_t clock_ms, float risk,
                               itd_trigger_fire_t *fire);

/* ---- time and labels ---------------------------------------------------- */

/** @brief The labeler catches up with the state's watermark. */
void itd_partition_settle(itd_partition_t *pt);

/** @brief Moves the watermark to at least wm_ms, then settles. */
void itd_partition_advance(itd_partition_t *pt, int64_t wm_ms);

/**
 * @brief When the partition saw no event for longer than max(idle_ms,
 * allowed lateness) of wall clock, lets its event time move on with the
 * wall clock from its frontier (one future-dated event must not carry the
 * watermark along), then settles. Judges this partition only: whether the
 * whole stream is quiet is the caller's rule (itd_engine_advance_idle).
 * @returns 1 when the watermark moved.
 */
int itd_partition_advance_idle(itd_partition_t *pt, int64_t now_ms);

/**
 * @brief Takes up to max resolved examples (labeler.h: borrowed until the
 * next call on pt). Each judged one's final label is counted for its user
 * in the state first (the features label_logodds, labels_resolved).
 * @returns how many were written to ex.
 */
size_t itd_partition_take(itd_partition_t *pt, itd_example_t *ex,
                          size_t max);

/* ---- erasure ------------------------------------------------------------- */

/* What itd_partition_erase removed. */
typedef struct itd_partition_erased_s {
        uint64_t users;         /* 1 when the state held the user */
        uint64_t events;        /* the user's events the state had seen */
        uint64_t pending;       /* predictions waiting for their label */
        uint64_t queued;        /* resolved examples not yet learned from */
        uint64_t triggers;      /* marketing trigger entries (0 or 1) */
        uint64_t risk_triggers; /* risk trigger entries (0 or 1) */
} itd_partition_erased_t;

/**
 * @brief Forgets a user everywhere the partition holds them (erasure on
 * request): the state's record and window, the labeler's pending
 * predictions and queued examples, the trigger and risk trigger entries;
 * the bytes they used are wiped, so the partition's next snapshot holds no
 * trace of them. Aggregates (score distributions, the risk population,
 * label rates, the category dictionary) keep what the user contributed.
 * This is the one call a changelog's tombstone for the user goes with.
 * @param user_hash  itd_user_hash(user_id).
 * @param out        what went (all 0: the partition did not hold them).
 * @returns 1 when anything was removed.
 */
int itd_partition_erase(itd_partition_t *pt, const char *user_id,
                        uint64_t user_hash, itd_partition_erased_t *out);

/* ---- settings, reading ------------------------------------------------- */

/** @brief New trigger settings from the next event on (users' flags and
 * the score distribution are kept).
 * @returns ITD_OK or ITD_ERR_CONF with errstr (nothing changed). */
itd_err_t itd_partition_set_triggers(itd_partition_t *pt,
                                     const itd_trigger_conf_t *tc,
                                     char *errstr, size_t errstr_size);

/** @brief The parts, borrowed for reading (stats, dumps, queries). */
const itd_state_t *itd_partition_state(const itd_partition_t *pt);
const itd_labeler_t *itd_partition_labeler(const itd_partition_t *pt);
const itd_triggers_t *itd_partition_triggers(const itd_partition_t *pt);
/** @brief The risk trigger table, or NULL when risk triggers are off. */
const itd_triggers_t *itd_partition_risk_triggers(const itd_partition_t *pt);
const itd_risk_t *itd_partition_risk(const itd_partition_t *pt);

/* ---- snapshot ------------------------------------------------------------ */

/**
 * @brief Writes the partition's snapshot: its state, labeler and trigger
 * snapshots, one after another, then the risk population's and, when risk
 * triggers are on, the risk trigger table's (docs/CHECKPOINTS.md). A
 * snapshot that ends after the triggers (an older build) reads as a fresh
 * population and risk table.
 * @returns ITD_OK, or ITD_ERR_IO with errstr.
 */
itd_err_t itd_partition_write(const itd_partition_t *pt, FILE *out,
                              char *errstr, size_t errstr_size);

/**
 * @brief Reads what itd_partition_write wrote (exactly its bytes) into a
 * new partition `id` with configuration conf. last_ts_ms: its newest
 * event time (kept beside the snapshot); now_ms: the wall clock, from
 * which its idle time counts.
 * @param out  gets the partition (caller owns), NULL on failure.
 * @returns ITD_OK; ITD_ERR_CORRUPT (damaged or truncated),
 * ITD_ERR_INCOMPATIBLE (another version, build or configuration) or
 * ITD_ERR_IO, with errstr naming the part and where; ITD_ERR_CONF (conf
 * itself is bad).
 */
itd_err_t itd_partition_read(FILE *in, int32_t id,
                             const itd_partition_conf_t *conf,
                             int64_t last_ts_ms, int64_t now_ms,
                             itd_partition_t **out, char *errstr,
                             size_t errstr_size);

#endif
