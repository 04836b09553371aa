/*
 * state.h - per-user rolling windows and the features built from them.
 *
 * One itd_state_t per assigned partition: users of one partition together,
 * so state can be snapshotted, handed over and dropped per partition
 * (DESIGN.md). Windows are in event time. The state also keeps the
 * partition's event-time frontier (a robust statistic of recent users'
 * event times, which one stray future-dated event cannot move) and its
 * watermark (frontier minus allowed lateness): docs/FEATURES.md, "Late
 * data".
 *
 * Features at an event use only events at or before it (the event itself
 * included): itd_state_update applies the event, then extracts.
 *
 * @thread pipeline thread only; no locks.
 */
#ifndef INTENTD_STATE_H
#define INTENTD_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/prediction.h"
#include "intentd/types.h"

#define ITD_WINDOWS_MAX 8
/* Sparse id slots: fields (category, item, query token), each with
 * ITD_SPARSE_SLOTS most recent hashed ids; ITD_SPARSE_NONE marks empty. */
#define ITD_SPARSE_FIELDS 3
#define ITD_SPARSE_SLOTS 4
#define ITD_SPARSE_IDS (ITD_SPARSE_FIELDS * ITD_SPARSE_SLOTS)

typedef struct itd_state_conf_s {
        size_t n_windows;
        int64_t window_ms[ITD_WINDOWS_MAX]; /* ascending, e.g. 5m,1h,24h,7d */
        int64_t allowed_lateness_ms;        /* watermark = frontier - this */
        int64_t session_gap_ms;             /* inactivity that ends a session */
        int64_t idle_ttl_ms;                /* users idle longer are evicted */
        size_t max_users;                   /* hard cap; LRU eviction */
} itd_state_conf_t;

/* The user's strongest categories at extraction time (copied out of the
 * state). */
typedef struct itd_topcats_s {
        size_t n;
        char name[ITD_TOPCAT_MAX][ITD_ID_MAX]; /* copies: they outlive the
                                                * next update */
        float score[ITD_TOPCAT_MAX];
} itd_topcats_t;

typedef struct itd_state_stats_s {
        uint64_t users;          /* users held now */
        uint64_t bytes;          /* bytes held by the state */
        uint64_t evicted_ttl;    /* users dropped for idling past idle_ttl */
        uint64_t evicted_cap;    /* users dropped for max_users */
        uint64_t late_events;    /* events older than the watermark, not
                                  * applied (itd_state_update) */
} itd_state_stats_t;

typedef struct itd_state_s itd_state_t;

/** @brief Checks conf; ITD_ERR_CONF with errstr naming the bad field. */
itd_err_t itd_state_conf_check(const itd_state_conf_t *conf, char *errstr,
                               size_t errstr_size);

/** @brief New empty partition state (caller owns); NULL + errstr if conf bad. */
itd_state_t *itd_state_new(const itd_state_conf_t *conf, char *errstr,
                           size_t errstr_size);
void itd_state_destroy(itd_state_t *st);

/** @brief Width of the dense feature vector for conf. */
size_t itd_features_dim(const itd_state_conf_t *conf);

/**
 * @brief Name of dense feature i ("count_5m_view", "secs_since_purchase",
 * ...), as in docs/FEATURES.md and the --export-features header.
 */
const char *itd_features_name(const itd_state_conf_t *conf, size_t i,
                              char *buf, size_t cap);

/**
 * @brief 1 if dense feature i sums up the user's whole history so far
 * (counts, flags and extremes since first seen, the propensity estimates:
 * the "lifetime" column of docs/FEATURES.md). Such a value drifts as the
 * user ages, so a weight learned on young users means something else on
 * old ones; the others describe what the user is doing now.
 */
int itd_features_lifetime(const itd_state_conf_t *conf, size_t i);

/**
 * @brief Applies ev to its user and extracts features as of just after it.
 * @param user_hash  itd_user_hash(ev->user_id), computed once by the
 *             caller (the user table is keyed by its top half).
 * @param x    out: dense features, itd_features_dim() floats, normalised.
 * @param ids  out: ITD_SPARSE_IDS hashed sparse ids.
 * @param top  out (may be NULL): the user's top categories.
 * @returns ITD_OK; ITD_ERR_RANGE if ev is older than the watermark (late:
 * state untouched, counted in late_events, x/ids/top not written; score it
 * with itd_state_peek) or its time is beyond +-2^62 ms; ITD_ERR_ARG for a
 * type outside the enum.
 */
itd_err_t itd_state_update(itd_state_t *st, const itd_event_t *ev,
                           uint64_t user_hash, float *x, uint32_t *ids,
                           itd_topcats_t *top);

/**
 * @brief Features of ev from its user's state as it stands, without
 * applying ev: window counts as of ev's time, everything else (lifetime
 * counts, session, prices, affinities, recent items) as the user's state
 * is now. For late events, which still get a prediction. A user not held
 * reads as a new user. Changes nothing.
 * @returns ITD_OK; ITD_ERR_RANGE or ITD_ERR_ARG as itd_state_update.
 */
itd_err_t itd_state_peek(const itd_state_t *st, const itd_event_t *ev,
                         uint64_t user_hash, float *x, uint32_t *ids,
                         itd_topcats_t *top);

/** @brief Watermark of this partition (INT64_MIN before two users' events
 * agree on a time, unless itd_state_advance moved it). */
int64_t itd_state_watermark(const itd_state_t *st);

/**
 * @brief Event-time frontier of this partition: the lower median of the
 * newest event times of the last 16 distinct users with an on-time event,
 * never moving back; INT64_MIN while fewer than two users were seen. The
 * watermark is this minus the allowed lateness (or later, when advanced).
 */
int64_t itd_state_frontier(const itd_state_t *st);

/**
 * @brief Moves the watermark to at least wm_ms (idle partitions advance by
 * wall clock) and evicts users idle past idle_ttl.
 */
void itd_state_advance(itd_state_t *st, int64_t wm_ms);

/**
 * @brief Counts one resolved prediction of the user with key user_key
 * (itd_user_hash)
 * (label 1: purchased within the horizon) in the user's label counts and
 * the partition's, which the features label_logodds and labels_resolved
 * read (docs/FEATURES.md). Call once per prediction, with its final label.
 * @returns ITD_OK, or ITD_ERR_NOT_FOUND when the user is no longer held
 * (evicted): only the partition's counts take the label then.
 */
itd_err_t itd_state_label(itd_state_t *st, uint64_t user_key, int label);

/**
 * @brief Forgets user_id (erasure on request): its record, window and id
 * leave the state, and the bytes they used are wiped, so a snapshot taken
 * after this holds no trace of them. Partition-wide aggregates the user
 * contributed to (label rates, the category dictionary, the frontier) are
 * kept.
 * @param events  out (may be NULL): the user's events seen (lifetime
 * counts, each capped at 65535 per type).
 * @returns ITD_OK, or ITD_ERR_NOT_FOUND when the state does not hold the
 * user.
 */
itd_err_t itd_state_erase(itd_state_t *st, const char *user_id,
                          uint64_t *events);

/**
 * @brief Event counts of user_id per window and type as of now_ms
 * (counts[w * ITD_EV__COUNT + type]).
 * @returns ITD_OK, ITD_ERR_NOT_FOUND if the user is not held.
 */
itd_err_t itd_state_counts(const itd_state_t *st, const char *user_id,
                           int64_t now_ms, uint32_t *counts);

/* One user's state as a person asks about it (the query endpoint). Names
 * are borrowed from the state, valid until its next change. */
typedef struct itd_user_summary_s {
        int64_t first_ts_ms;      /* earliest event time seen (s resolution) */
        int64_t last_ts_ms;       /* newest event time seen */
        int64_t session_start_ms; /* start of the current session */
        uint32_t session_events;  /* events in it (saturates at 65535) */
        uint32_t lifetime[ITD_EV__COUNT]; /* events per type (saturate) */
        size_t n_windows;
        int64_t window_ms[ITD_WINDOWS_MAX];
        uint32_t counts[ITD_WINDOWS_MAX * ITD_EV__COUNT]; /* [w * types + t],
                                   * as of now_ms */
        itd_topcats_t top;        /* decayed to last_ts_ms */
} itd_user_summary_t;

/**
 * @brief The state of user_id, window counts as of now_ms (INT64_MIN: as
 * of the user's newest event).
 * @returns ITD_OK, ITD_ERR_NOT_FOUND if the user is not held.
 */
itd_err_t itd_state_user_summary(const itd_state_t *st, const char *user_id,
                                 int64_t now_ms, itd_user_summary_t *out);

/**
 * @brief Writes one JSON line per user: {"user_id":..,"windows":{"5m":
 * {"VIEW":n,..},..}} with counts as of now_ms. Used by --dump-state.
 * @returns ITD_OK or ITD_ERR_IO.
 */
itd_err_t itd_state_dump(const itd_state_t *st, int64_t now_ms, FILE *out);

void itd_state_stats(const itd_state_t *st, itd_state_stats_t *stats);

/**
 * @brief Starts loading what itd_state_update of the user with key
 * user_hash will touch (the user's table slot, then the user's record)
 * without changing anything. Call it over a whole poll batch before
 * updating the batch, so the cache misses of different users overlap
 * instead of following one another (docs/FEATURES.md, "Speed").
 */
void itd_state_prefetch(const itd_state_t *st, uint64_t user_hash);

/**
 * @brief Writes the whole state (users, windows, watermark, time reference,
 * category dictionary, counters) as one versioned, checksummed snapshot, so
 * that itd_state_restore gives a state that behaves bit-identically on
 * further events. Format: docs/FEATURES.md, "Snapshots". Writes only; the
 * caller positions and flushes out.
 * @returns ITD_OK, or ITD_ERR_IO with errstr.
 */
itd_err_t itd_state_snapshot(const itd_state_t *st, FILE *out, char *errstr,
                             size_t errstr_size);

/**
 * @brief Reads one snapshot from in (exactly its bytes, so several can be
 * concatenated) into a new state the caller owns.
 * @param conf  the running configuration. Windows, allowed lateness and
 *              session gap must equal the snapshot's; idle_ttl_ms and
 *              max_users may differ (users beyond max_users are evicted,
 *              least recently updated first, counted in evicted_cap).
 * @param out   gets the state (caller owns), NULL on failure.
 * @returns ITD_OK; ITD_ERR_INCOMPATIBLE (another format version, build
 * layout or configuration; errstr names the differing field);
 * ITD_ERR_CORRUPT (checksum, magic or shape, or input ended early; errstr
 * names the byte offset within the snapshot); ITD_ERR_IO; ITD_ERR_CONF
 * (conf itself is bad).
 */
itd_err_t itd_state_restore(FILE *in, const itd_state_conf_t *conf,
                            itd_state_t **out, char *errstr,
                            size_t errstr_size);

#endif
