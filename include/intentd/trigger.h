/*
 * trigger.h - marketing triggers on live purchase-intent scores, with
 * hysteresis and a per-user cool-down in event time.
 *
 * Each user is *armed* until a trigger fires. Rules, applied to every
 * scored event of the user in the order the partition delivers them:
 *
 *   UP    the user is armed, score >= enter, and no UP fired for this user
 *         within cooldown_ms of event time before this event: publish UP
 *         (threshold = enter) and disarm.
 *   DOWN  the user is disarmed and score < exit: publish DOWN
 *         (threshold = exit) and re-arm.
 *
 * So a score oscillating around enter fires once, and fires again only
 * after it has fallen below exit (exit <= enter is the hysteresis band).
 * A crossing that comes too soon after the last UP is held back, not
 * forgotten: the user stays armed, and the first event at or after the end
 * of the cool-down whose score is still >= enter fires. DOWN is never held
 * back: it follows at most one UP, so the cool-down bounds a user to one UP
 * and one DOWN per cooldown_ms. Cool-down is measured in event time
 * (event_ts_ms), never wall time, so a replay or a backlog behaves like the
 * live stream; an event older than the last UP is inside the cool-down.
 *
 * Memory: one table per partition (users of a key live in one partition),
 * keyed by the 64-bit user hash, 32 bytes per user, growing by doubling up
 * to max_users; when full, the least recently seen user is forgotten (it
 * comes back armed and out of cool-down). Steady state allocates nothing.
 *
 * @thread one pipeline thread owns a table; no locks.
 */
#ifndef INTENTD_TRIGGER_H
#define INTENTD_TRIGGER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/prediction.h"

/* Order matches the enum symbols of config/trigger.avsc. */
typedef enum {
        ITD_TRIGGER_UP = 0,
        ITD_TRIGGER_DOWN,
        ITD_TRIGGER__COUNT
} itd_trigger_direction_t;

typedef struct itd_trigger_conf_s {
        float enter;         /* UP when the score reaches this, 0..1 */
        float exit;          /* re-arm (DOWN) below this; exit <= enter */
        int64_t cooldown_ms; /* event time between two UPs of a user, >= 0 */
        size_t max_users;    /* users remembered per table, >= 1 */
} itd_trigger_conf_t;

/* The output record (config/trigger.avsc), in memory. */
typedef struct itd_trigger_rec_s {
        char prediction_id[ITD_PREDICTION_ID_MAX]; /* the prediction it
                                                    * comes from */
        char user_id[ITD_ID_MAX];
        float score;        /* the purchase probability that crossed */
        float threshold;    /* enter (UP) or exit (DOWN) */
        itd_trigger_direction_t direction;
        int64_t event_ts_ms; /* event time of the event scored */
        int64_t fired_at_ms; /* wall clock when produced */
} itd_trigger_rec_t;

typedef struct itd_triggers_stats_s {
        uint64_t users;        /* users remembered now */
        uint64_t fired_up;     /* UP records decided */
        uint64_t fired_down;   /* DOWN records decided */
        uint64_t held_back;    /* UP crossings inside a cool-down */
        uint64_t evicted;      /* users forgotten for max_users */
} itd_triggers_stats_t;

typedef struct itd_triggers_s itd_triggers_t;

/** @brief "UP" or "DOWN"; "?" if out of range. */
const char *itd_trigger_direction_name(itd_trigger_direction_t dir);

/**
 * @brief Checks a configuration: enter and exit finite in 0..1,
 * exit <= enter, cooldown_ms >= 0, max_users in 1..2^31.
 * @returns ITD_OK, or ITD_ERR_CONF with "triggers.exit: 0.6 is above
 * triggers.enter (0.5)"-style detail in errstr.
 */
itd_err_t itd_trigger_conf_check(const itd_trigger_conf_t *c, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Creates an empty table (every user armed). c is copied.
 * @returns the table (caller owns; itd_triggers_destroy), or NULL with
 * errstr when itd_trigger_conf_check fails.
 */
itd_triggers_t *itd_triggers_new(const itd_trigger_conf_t *c, char *errstr,
                                 size_t errstr_size);
void itd_triggers_destroy(itd_triggers_t *t);

/**
 * @brief Feeds one scored event of a user (rules at the top of this file).
 * @param user_hash  the user's 64-bit hash (itd_hash_str).
 * @param score      the purchase probability; a non-finite score changes
 *                   nothing and fires nothing.
 * @param dir        set when a record is due; may be NULL.
 * @returns 1 when a trigger record should be published (direction in
 * *dir), else 0. Allocates only when the table grows.
 */
int itd_triggers_update(itd_triggers_t *t, uint64_t user_hash,
                        int64_t event_ts_ms, float score,
                        itd_trigger_direction_t *dir);

/**
 * @brief Fills rec for a record itd_triggers_update asked for: ids, score
 * and event time from the prediction p (borrowed), the threshold crossed
 * from the table's configuration.
 */
void itd_triggers_make_record(const itd_triggers_t *t,
                              const itd_prediction_t *p,
                              itd_trigger_direction_t dir,
                              int64_t fired_at_ms, itd_trigger_rec_t *rec);

/** @brief Counters so far. */
void itd_triggers_stats(const itd_triggers_t *t, itd_triggers_stats_t *s);

/**
 * @brief Writes the table (every user's hash, armed flag and last UP time,
 * least recently seen first, and the counters) as one versioned snapshot
 * with XXH64 checksums over header and payload (the layout of
 * itd_state_snapshot), so several snapshots can follow each other in one
 * stream.
 * @returns ITD_OK, or ITD_ERR_IO with errstr.
 */
itd_err_t itd_triggers_snapshot(const itd_triggers_t *t, FILE *out,
                                char *errstr, size_t errstr_size);

/**
 * @brief Reads one snapshot (exactly its bytes) into a new table with
 * configuration c. Thresholds and cool-down may differ from the
 * snapshot's (what a flag means does not depend on them); when c holds
 * fewer max_users than the snapshot has users, the least recently seen
 * are dropped (counted as evicted).
 * @returns the table, or NULL with errstr starting "incompatible trigger
 * snapshot:", "corrupt trigger snapshot:" (magic, checksums, shape; byte
 * offsets named) or "truncated trigger snapshot:".
 */
itd_triggers_t *itd_triggers_restore(FILE *in, const itd_trigger_conf_t *c,
                                     char *errstr, size_t errstr_size);

#endif
