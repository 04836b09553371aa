/*
 * trigger.h - marketing triggers on live purchase-intent scores, with
 * thresholds absolute or relative to the live score distribution,
 * hysteresis, a per-user cool-down and a staleness guard, all in event
 * time.
 *
 * Thresholds. Each scored event is judged against an enter and an exit
 * threshold given by the rule in force (itd_trigger_conf_t.rule):
 *
 *   ABSOLUTE     enter, exit: probabilities as configured.
 *   TOP_PERCENT  enter: the score above which the top top_percent % of the
 *                partition's recent scores lie; exit: the same for
 *                exit_top_percent (>= top_percent).
 *   LIFT         enter: lift x the mean of the recent scores (for a
 *                calibrated model, the purchase base rate); exit:
 *                exit_lift x that mean (exit_lift <= lift).
 *
 * "Recent" is a distribution of every score the table judged, halving in
 * weight every half_life_events scores (scoredist.h), kept per table, so
 * per partition; the thresholds come from the scores before the event's
 * own. A relative rule decides nothing until min_events scores were seen.
 *
 * Rules, applied to every scored event of the user in the order the
 * partition delivers them. Each user is *armed* until a trigger fires.
 *
 *   STALE the event is older than max_event_age before ref_ts_ms (the
 *         caller's "now": the wall clock of a live run, INT64_MIN for
 *         none): nothing changes for the user, nothing fires (counted in
 *         stale). 0 turns the guard off.
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
 * A record expires max_event_age after its event (the guard's limit).
 *
 * Memory: one table per partition (users of a key live in one partition),
 * keyed by the 64-bit user hash, 32 bytes per user, growing by doubling up
 * to max_users; when full, the least recently seen user is forgotten (it
 * comes back armed and out of cool-down); plus the score distribution
 * (32 KiB). Steady state allocates nothing.
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
#include "intentd/scoredist.h"

/* Order matches the enum symbols of config/trigger.avsc. */
typedef enum {
        ITD_TRIGGER_UP = 0,
        ITD_TRIGGER_DOWN,
        ITD_TRIGGER__COUNT
} itd_trigger_direction_t;

/* Order matches the TriggerRule symbols of config/trigger.avsc and the
 * symbols of the triggers.rule option. */
typedef enum {
        ITD_TRIGGER_RULE_ABSOLUTE = 0,
        ITD_TRIGGER_RULE_TOP_PERCENT,
        ITD_TRIGGER_RULE_LIFT,
        ITD_TRIGGER_RULE__COUNT
} itd_trigger_rule_t;

typedef struct itd_trigger_conf_s {
        itd_trigger_rule_t rule;
        float enter;         /* ABSOLUTE: UP at this score, 0..1 */
        float exit;          /* ABSOLUTE: re-arm (DOWN) below; <= enter */
        double top_percent;  /* TOP_PERCENT: UP in the top this %, (0, 100] */
        double exit_top_percent; /* re-arm below the top this %,
                                  * top_percent..100 */
        double lift;         /* LIFT: UP at lift x mean score, >= 1 */
        double exit_lift;    /* re-arm below exit_lift x mean, (0, lift] */
        uint64_t half_life_events; /* the distribution's memory, >= 1 */
        uint64_t min_events; /* relative rules wait for this many scores */
        int64_t max_event_age_ms; /* STALE beyond this; 0: no guard */
        int64_t cooldown_ms; /* event time between two UPs of a user, >= 0 */
        size_t max_users;    /* users remembered per table, >= 1 */
} itd_trigger_conf_t;

/* The thresholds in force for one event; NaN while a relative rule waits
 * for min_events scores (nothing fires, nobody is re-armed). */
typedef struct itd_trigger_thresholds_s {
        float enter;
        float exit;
} itd_trigger_thresholds_t;

/* What fired, for the record (itd_triggers_make_record). */
typedef struct itd_trigger_fire_s {
        itd_trigger_direction_t direction;
        itd_trigger_rule_t rule;
        float parameter;      /* enter, top_percent or lift (UP); exit,
                               * exit_top_percent or exit_lift (DOWN) */
        float threshold;      /* the score threshold in force */
        int64_t expires_at_ms; /* event time + max_event_age; INT64_MIN
                                * when the guard is off */
} itd_trigger_fire_t;

/* The output record (config/trigger.avsc), in memory. */
typedef struct itd_trigger_rec_s {
        char prediction_id[ITD_PREDICTION_ID_MAX]; /* the prediction it
                                                    * comes from */
        char user_id[ITD_ID_MAX];
        float score;        /* the purchase probability that crossed */
        float threshold;    /* the score threshold crossed, in force */
        itd_trigger_direction_t direction;
        int64_t event_ts_ms; /* event time of the event scored */
        int64_t fired_at_ms; /* wall clock when decided: the prediction's
                              * predicted_at */
        itd_trigger_rule_t rule;
        float parameter;     /* the rule's parameter (itd_trigger_fire_t) */
        int64_t expires_at_ms; /* INT64_MIN: no expiry */
        itd_next_t next_action;             /* predicted next action */
        float next_action_probability;      /* its probability */
        size_t n_top_categories;
        char top_categories[ITD_TOPCAT_MAX][ITD_ID_MAX];
        float top_category_scores[ITD_TOPCAT_MAX];
} itd_trigger_rec_t;

typedef struct itd_triggers_stats_s {
        uint64_t users;        /* users remembered now */
        uint64_t fired_up;     /* UP records decided */
        uint64_t fired_down;   /* DOWN records decided */
        uint64_t held_back;    /* UP crossings inside a cool-down */
        uint64_t evicted;      /* users forgotten for max_users */
        uint64_t stale;        /* events older than max_event_age */
        uint64_t warming;      /* events a relative rule could not judge
                                * yet (fewer than min_events scores) */
} itd_triggers_stats_t;

typedef struct itd_triggers_s itd_triggers_t;

/** @brief "UP" or "DOWN"; "?" if out of range. */
const char *itd_trigger_direction_name(itd_trigger_direction_t dir);

/** @brief "ABSOLUTE", "TOP_PERCENT", "LIFT"; "?" if out of range. */
const char *itd_trigger_rule_name(itd_trigger_rule_t rule);

/**
 * @brief One line a person reads: "score in the top 1% of recent scores,
 * re-armed outside the top 5%, cool-down 60 min". @returns buf.
 */
const char *itd_trigger_conf_text(const itd_trigger_conf_t *c, char *buf,
                                  size_t cap);

/**
 * @brief Checks a configuration: rule in range; enter and exit finite in
 * 0..1, exit <= enter; 0 < top_percent <= exit_top_percent <= 100;
 * 0 < exit_lift <= lift, lift >= 1; half_life_events >= 1;
 * max_event_age_ms >= 0; cooldown_ms >= 0; max_users in 1..2^31.
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
 * @brief Applies a new configuration (SIGHUP): rule, thresholds,
 * cool-down, staleness and the distribution's half-life take effect from
 * the next event on; users' flags, cool-downs and the distribution are
 * kept. max_users keeps its value from creation.
 * @returns ITD_OK, or ITD_ERR_CONF with errstr (nothing changed).
 */
itd_err_t itd_triggers_set_conf(itd_triggers_t *t,
                                const itd_trigger_conf_t *c, char *errstr,
                                size_t errstr_size);

/**
 * @brief The thresholds rule c gives on distribution d (may be NULL for
 * ABSOLUTE).
 */
void itd_trigger_thresholds(const itd_trigger_conf_t *c,
                            const itd_scoredist_t *d,
                            itd_trigger_thresholds_t *th);

/**
 * @brief Feeds one scored event of a user (rules at the top of this
 * file): judged against the thresholds of the table's own distribution,
 * then added to it.
 * @param user_hash  the user's 64-bit hash (itd_hash_str).
 * @param ref_ts_ms  the newest time the caller knows, for the staleness
 *                   guard; INT64_MIN: none.
 * @param score      the purchase probability; a non-finite score changes
 *                   nothing and fires nothing.
 * @param fire       set when a record is due; may be NULL.
 * @returns 1 when a trigger record should be published, else 0.
 * Allocates only when the table grows.
 */
int itd_triggers_update(itd_triggers_t *t, uint64_t user_hash,
                        int64_t event_ts_ms, int64_t ref_ts_ms, float score,
                        itd_trigger_fire_t *fire);

/**
 * @brief As itd_triggers_update with thresholds given by the caller (th)
 * and without touching the table's distribution: several tables can share
 * one distribution (a sweep over thresholds, replay/report.c).
 */
int itd_triggers_decide(itd_triggers_t *t, uint64_t user_hash,
                        int64_t event_ts_ms, int64_t ref_ts_ms, float score,
                        const itd_trigger_thresholds_t *th,
                        itd_trigger_fire_t *fire);

/** @brief The table's score distribution (borrowed). */
const itd_scoredist_t *itd_triggers_dist(const itd_triggers_t *t);

/**
 * @brief Fills every field of rec for a record itd_triggers_update asked
 * for: ids, score, event time, next action, top categories and fired_at
 * (the prediction's predicted_at: the trigger is decided with it) from
 * the prediction p (borrowed), rule, parameter, threshold and expiry from
 * fire. The one place a trigger record is made.
 */
void itd_triggers_make_record(const itd_prediction_t *p,
                              const itd_trigger_fire_t *fire,
                              itd_trigger_rec_t *rec);

/** @brief Counters so far. */
void itd_triggers_stats(const itd_triggers_t *t, itd_triggers_stats_t *s);

/**
 * @brief Writes the table (every user's hash, armed flag and last UP time,
 * least recently seen first, the counters and the score distribution) as
 * one versioned snapshot in the one framing of every snapshot
 * (intentd/frame.h: sections and CRC32C, like itd_state_snapshot), so
 * several snapshots can follow each other in one stream.
 * @returns ITD_OK, or ITD_ERR_IO with errstr.
 */
itd_err_t itd_triggers_snapshot(const itd_triggers_t *t, FILE *out,
                                char *errstr, size_t errstr_size);

/**
 * @brief Reads one snapshot (exactly its bytes) into a new table with
 * configuration c. Rule, thresholds and cool-down may differ from the
 * snapshot's (what a flag means does not depend on them); a version 1
 * snapshot (before relative rules) restores with an empty distribution.
 * When c holds
 * fewer max_users than the snapshot has users, the least recently seen
 * are dropped (counted as evicted).
 * @param out  gets the table (caller owns), NULL on failure.
 * @returns ITD_OK; ITD_ERR_INCOMPATIBLE, ITD_ERR_CORRUPT (magic,
 * checksums, shape, truncation; byte offsets named in errstr) or
 * ITD_ERR_IO; ITD_ERR_CONF (c itself is bad).
 */
itd_err_t itd_triggers_restore(FILE *in, const itd_trigger_conf_t *c,
                               itd_triggers_t **out, char *errstr,
                               size_t errstr_size);

/**
 * @brief Forgets user_hash (erasure on request): its armed flag and last
 * UP leave the table, and the record they used is cleared; the score
 * distribution keeps what it judged.
 * @returns 1 when the table held the user, else 0.
 */
int itd_triggers_erase(itd_triggers_t *t, uint64_t user_hash);

#endif
