/*
 * engine.h - the processing core shared by `run`, `replay` and `demo`:
 * decoded events in, predictions out, labels resolved and the model trained
 * on the way. It knows nothing of Kafka or files; the callers feed it
 * batches and deliver what it returns.
 *
 * A batch is cut into chunks of at most model.score.span of event time
 * (one chunk on a dense stream). Per chunk: (1) every event updates its
 * user's state and yields features (in order, so later events of a user
 * see earlier ones); (2) the chunk is scored as one matrix product; (3) in
 * order again, each event tells the labeler what happened (resolving
 * earlier predictions) and then adds its own prediction as pending; (4)
 * watermarks advance, and the resolved examples, their labels counted
 * for their users in the state, go to the trainer (trainer.h: judged by
 * progressive validation, then learned from in mini-batches) before the
 * next chunk is scored with what the trainer published.
 *
 * Late events (older than their partition's watermark) are predicted too,
 * from the user's state as it stands; they change no state, add no
 * pending prediction and fire no trigger, but still resolve the open
 * labels of earlier predictions (docs/FEATURES.md, "Late data").
 *
 * The engine takes no configuration object, reads no clock and logs
 * nothing: its settings come in one itd_engine_conf_t (the daemon
 * translates its options once, daemon/conf_parts.c), the time comes with
 * each call, and what a caller may want to log comes back as counters
 * (itd_engine_stats_t) or errors.
 *
 * @thread one pipeline thread owns an engine; no locks.
 */
#ifndef INTENTD_ENGINE_H
#define INTENTD_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/eval_progressive.h"
#include "intentd/labeler.h"
#include "intentd/model.h"
#include "intentd/partition.h"
#include "intentd/prediction.h"
#include "intentd/state.h"
#include "intentd/trigger.h"

/* What became of a row. Late events are PREDICTED (and counted in
 * itd_engine_stats_t.late). */
typedef enum {
        ITD_OUT_PREDICTED = 0, /* row.pred holds its prediction */
        ITD_OUT_FILTERED       /* time beyond +-2^62 ms or type outside the
                                * enum: input validation never passes one */
} itd_outcome_t;

/*
 * The batch contract: one row per event. The caller fills the first part
 * where it decodes the event, and nowhere else: the user is hashed once,
 * there (itd_row_decoded), and everything downstream (state, labeler,
 * triggers, the example hook, replay's report) finds the user by that
 * hash. (partition, offset) is the row's identity: it names the
 * prediction (prediction_id) and comes back with the row's example when
 * its label resolves (itd_example_hook_t), so no caller ever has to match
 * an example back to its event. The engine fills the second part: every
 * field of the prediction is written in one place (engine.c,
 * prediction_build), every field of the trigger record in another
 * (itd_triggers_make_record).
 */
typedef struct itd_row_s {
        /* the caller's */
        itd_event_t ev;
        uint64_t user_hash;  /* itd_user_hash(ev.user_id) */
        int32_t partition;
        int64_t offset;
        /* the engine's, by itd_engine_process */
        itd_outcome_t outcome;
        itd_prediction_t pred;            /* where outcome is PREDICTED */
        const itd_trigger_rec_t *trigger; /* the trigger record due, or
                                           * NULL (triggers off, late, or
                                           * nothing crossed); borrowed
                                           * until the next process call */
        const itd_trigger_rec_t *risk_trigger; /* the risk trigger record
                                           * due (its score: the risk
                                           * score; part.risk.triggers_on),
                                           * or NULL; borrowed likewise */
} itd_row_t;

/**
 * @brief Completes a row whose event was just decoded into row->ev: its
 * source and the user's hash (the one place a user id is hashed).
 */
static inline void itd_row_decoded(itd_row_t *row, int32_t partition,
                                   int64_t offset) {
        row->user_hash = itd_user_hash(row->ev.user_id);
        row->partition = partition;
        row->offset = offset;
}

typedef struct itd_engine_stats_s {
        uint64_t events;          /* events processed */
        uint64_t predictions;     /* predictions made */
        uint64_t late;            /* events older than their partition's
                                   * watermark: predicted, not applied */
        uint64_t filtered;        /* events refused (ITD_OUT_FILTERED) */
        uint64_t examples_pos;    /* resolved training examples, positive */
        uint64_t examples_neg;    /* resolved training examples, negative */
        uint64_t examples_neg_sampled_out; /* negatives judged but not
                                            * trained on (down-sampling) */
        uint64_t examples_unlearned; /* taken for training, not yet
                                      * learned from: the partial
                                      * mini-batch and held positives */
        uint64_t train_steps;     /* optimizer steps */
        uint64_t train_skipped;   /* steps skipped (non-finite loss) */
        uint64_t pending;         /* predictions waiting for their label */
        uint64_t labels_dropped;  /* pending predictions given up (pool or
                                   * per-user cap full): not trained on */
        uint64_t users;           /* users held in state */
        uint64_t state_bytes;     /* bytes held by the state */
        uint64_t evicted_ttl;     /* users dropped for idling */
        uint64_t evicted_cap;     /* users dropped for state.max_users */
        /* Triggers decided (trigger.h), over the partitions held now. */
        uint64_t triggers_up, triggers_down;
        uint64_t triggers_held_back; /* UP crossings inside a cool-down */
        uint64_t triggers_stale;     /* events past triggers.max_event_age */
        uint64_t triggers_warming;   /* events a relative rule could not
                                      * judge yet (min_events) */
        uint64_t risk_triggers_up, risk_triggers_down; /* risk triggers */
        uint64_t risk_untrained;  /* predictions judged but not trained
                                   * on for their risk (partition.h) */
        itd_eval_summary_t eval;  /* progressive validation, whole run */
} itd_engine_stats_t;

typedef struct itd_engine_s itd_engine_t;

/* Everything the engine is built from. */
typedef struct itd_engine_conf_s {
        itd_partition_conf_t part;    /* what each partition is built from:
                                       * labels.dim and labels.n_ids must
                                       * be the features' (itd_features_dim,
                                       * ITD_SPARSE_IDS); idle_ms also
                                       * bounds how long nothing at all may
                                       * arrive before idle partitions move
                                       * on (itd_engine_advance_idle) */
        itd_model_conf_t model;       /* n_dense and the sparse shape must
                                       * be the features'; max_batch is
                                       * the engine's to set */
        size_t train_batch;           /* examples per optimizer step */
        float neg_sample_rate;        /* negatives kept for training
                                       * (each then weighs 1 / rate);
                                       * 1 (or 0): all */
        size_t hold_positives;        /* positives held until their
                                       * horizon closes, at most this
                                       * many (trainer.h); 0: learned at
                                       * once */
        int64_t score_span_ms;        /* event time one scoring chunk may
                                       * span; 0: a whole batch */
        float threshold;              /* decision threshold of the
                                       * progressive metrics */
        size_t explain_k;             /* features named in each
                                       * prediction's explanation, 0..3
                                       * (itd_model_predict_explain) */
} itd_engine_conf_t;

/*
 * Called for every judged example (each prediction once, with its final
 * label), after progressive validation and before the model learns from
 * it. ex->offset with `partition` is the row it was predicted on
 * (itd_row_t), ex->user_hash its user; what the model saw (ex->x:
 * itd_engine_dim floats, ex->ids: ITD_SPARSE_IDS), what it said (score,
 * next_probs) and what happened (label, next). Borrowed for the call.
 * For replay reports, the windowed metrics and feature export.
 */
typedef void (*itd_example_hook_t)(void *arg, int32_t partition,
                                   const itd_example_t *ex);

/**
 * @brief Builds the model and an empty set of partitions from ec (copied).
 * @returns the engine (caller owns), or NULL with errstr naming what in
 * ec is wrong.
 */
itd_engine_t *itd_engine_new(const itd_engine_conf_t *ec, char *errstr,
                             size_t errstr_size);
void itd_engine_destroy(itd_engine_t *eng);

/**
 * @brief Turns marketing triggers on (conf triggers.*): from then on the
 * rows of a batch come back with their trigger record when one is due.
 * Off by default (replay, tests).
 */
void itd_engine_enable_triggers(itd_engine_t *eng);

/**
 * @brief The model identity stamped on every prediction from now on
 * (copied; cut to ITD_MODEL_ID_MAX - 1 bytes). "" until set: the engine
 * draws no random numbers itself (model_id.h makes the id).
 */
void itd_engine_set_model_id(itd_engine_t *eng, const char *model_id);

/**
 * @brief What is added to the model's steps to make the model_version
 * predictions carry (0 until set): workers.h sets it to the other
 * replicas' steps at each merge, so a version counts the steps of the
 * one model.
 */
void itd_engine_set_version_base(itd_engine_t *eng, int64_t base);

/** @brief The model_version the next prediction carries: the version base
 * plus the model's steps. */
int64_t itd_engine_model_version(const itd_engine_t *eng);

/**
 * @brief The caller's clock for the triggers' staleness guard
 * (triggers.max_event_age): an event older than max_event_age before
 * now_ms fires nothing. The engine has no clock of its own; without this
 * (INT64_MIN, the default) only event time counts: an event behind its
 * partition's watermark fires nothing (late data), which is what a replay
 * wants. `run` sets the wall clock before each batch.
 */
void itd_engine_set_trigger_clock(itd_engine_t *eng, int64_t now_ms);

/**
 * @brief New trigger rule, thresholds, cool-down and staleness (SIGHUP),
 * for every partition from the next event on; users' flags and the score
 * distributions are kept; max_users keeps the engine's value.
 * @returns ITD_OK, or ITD_ERR_CONF with errstr (nothing changed).
 */
itd_err_t itd_engine_set_triggers(itd_engine_t *eng,
                                  const itd_trigger_conf_t *tc,
                                  char *errstr, size_t errstr_size);

/** @brief Sets (or clears, with NULL) the example hook. */
void itd_engine_set_example_hook(itd_engine_t *eng, itd_example_hook_t hook,
                                 void *arg);

/** @brief Dense feature width (names: itd_features_name). */
size_t itd_engine_dim(const itd_engine_t *eng);

/** @brief What the engine builds partitions from (its state part names
 * the features: itd_features_name). Borrowed, valid for the engine's
 * life. */
const itd_partition_conf_t *itd_engine_partition_conf(
    const itd_engine_t *eng);

/** @brief Largest batch itd_engine_process accepts. */
size_t itd_engine_max_batch(const itd_engine_t *eng);

/**
 * @brief Processes n <= max_batch rows of one source topic: reads their
 * caller's part, writes their engine's part (outcome, prediction,
 * trigger).
 * @param now_ms   the caller's wall clock: predicted_at of the predictions
 *                 (and fired_at of their triggers) and the partitions'
 *                 idle bookkeeping.
 * @returns ITD_OK (a full pending pool drops its oldest prediction from
 * training instead of refusing the batch: labeler.h); ITD_ERR_ARG with
 * errstr when n is too large or a partition could not be created (nothing
 * of the batch was applied then).
 */
itd_err_t itd_engine_process(itd_engine_t *eng, const char *topic,
                             itd_row_t *rows, size_t n, int64_t now_ms,
                             char *errstr, size_t errstr_size);

/**
 * @brief Moves every partition's watermark to at least wm_ms (end of input,
 * or idle partitions) and learns from what that resolves.
 */
void itd_engine_advance(itd_engine_t *eng, int64_t wm_ms);

/** @brief New decision threshold for progressive metrics (SIGHUP). */
void itd_engine_set_threshold(itd_engine_t *eng, float threshold);
/** @brief New learning rate from the next training step on (SIGHUP). */
void itd_engine_set_learning_rate(itd_engine_t *eng, float lr);

/**
 * @brief Once no batch at all has reached this engine for longer than the
 * partitions' idle_ms of wall clock (now_ms: the quiet-stream rule), lets
 * each idle partition's event time move on with the wall clock
 * (itd_partition_advance_idle: no event of its own for longer than
 * max(idle_ms, allowed lateness)), so pending labels still resolve, and
 * learns from what that resolves. A partition merely fetched later than
 * the others is not moved. Call periodically.
 */
void itd_engine_advance_idle(itd_engine_t *eng, int64_t now_ms);

/** @brief Counters and progressive metrics so far. */
void itd_engine_stats(const itd_engine_t *eng, itd_engine_stats_t *stats);

/* Adds s's counters to into's (engines run as one, workers.h); the
 * evaluation summary is not a counter and is left as it is. Kept beside
 * itd_engine_stats so that a new counter is summed where it is filled. */
void itd_engine_stats_add(itd_engine_stats_t *into,
                          const itd_engine_stats_t *s);

/**
 * @brief The state of user_id in whichever partition holds it, window
 * counts as of that partition's watermark (the query endpoint).
 * @returns ITD_OK with *out and *partition; ITD_ERR_NOT_FOUND.
 */
itd_err_t itd_engine_user(const itd_engine_t *eng, const char *user_id,
                          itd_user_summary_t *out, int32_t *partition);

/**
 * @brief Forgets user_id in every partition the engine holds
 * (itd_partition_erase: state, pending labels, queued examples, trigger
 * entries, wiped), and learns at once from the trainer's partial
 * mini-batch, whose rows carry no user, so no checkpoint written after
 * this holds any example of the user. The model's weights keep what they
 * learned.
 * @param user_hash  itd_user_hash(user_id).
 * @param out        the sum over the partitions of what was removed.
 * @param held       gets the partitions that held anything of the user,
 *                   ascending, up to cap (may be NULL with cap 0): their
 *                   changelog snapshots are due now.
 * @returns how many partitions held anything of the user.
 */
size_t itd_engine_erase(itd_engine_t *eng, const char *user_id,
                        uint64_t user_hash, itd_partition_erased_t *out,
                        int32_t *held, size_t cap);

/** @brief Writes every partition's users as JSON lines (--dump-state),
 * each as of its partition's watermark. */
itd_err_t itd_engine_dump_state(const itd_engine_t *eng, FILE *out);

/** @brief The same, every partition's users as of wm_ms (workers.h: the
 * watermark of all the workers' partitions). */
itd_err_t itd_engine_dump_state_at(const itd_engine_t *eng, int64_t wm_ms,
                                   FILE *out);

/** @brief The latest watermark of the partitions held; INT64_MIN when
 * none is held. */
int64_t itd_engine_watermark(const itd_engine_t *eng);

/* ---- checkpoints (daemon/checkpoint.c) ------------------------------- */

/**
 * @brief Partitions held, ascending, into out (up to cap).
 * @returns how many there are (may exceed cap).
 */
size_t itd_engine_partitions(const itd_engine_t *eng, int32_t *out,
                             size_t cap);

/** @brief Partition p (borrowed until the next change to the engine's
 * partitions), or NULL when the engine holds none. */
const itd_partition_t *itd_engine_partition_get(const itd_engine_t *eng,
                                               int32_t p);

/**
 * @brief Takes pt over as partition itd_partition_id(pt) (the caller's
 * copy should be set to NULL), replacing and destroying what the engine
 * held as that partition.
 */
void itd_engine_adopt(itd_engine_t *eng, itd_partition_t *pt);

/** @brief Removes partition p from the engine and hands it to the caller
 * (who owns it now), or NULL when there is none. */
itd_partition_t *itd_engine_detach(itd_engine_t *eng, int32_t p);

/** @brief Forgets partition p (revoked, or restored but not assigned). */
void itd_engine_drop_partition(itd_engine_t *eng, int32_t p);

/**
 * @brief Writes what the engine holds besides partitions and the model:
 * its counters and its trainer's (the partial mini-batch: examples taken
 * from the labelers but not yet learned from), checksummed
 * (itd_trainer_write).
 * @returns ITD_OK or ITD_ERR_IO with errstr.
 */
itd_err_t itd_engine_write_trainer(const itd_engine_t *eng, FILE *out,
                                   char *errstr, size_t errstr_size);

/**
 * @brief The same for n engines of one configuration (pipeline workers)
 * as one: their counters summed, their trainers' mini-batches and held
 * positives together (itd_trainer_write_all), so that one engine reading
 * it back (itd_engine_read_trainer) holds every example all of them had
 * taken from their labelers and not yet learned from.
 * @returns ITD_OK; ITD_ERR_IO, or ITD_ERR_ARG (n outside 1..64), with
 * errstr.
 */
itd_err_t itd_engine_write_trainers(const itd_engine_t *const *engs, size_t n,
                                    FILE *out, char *errstr,
                                    size_t errstr_size);

/**
 * @brief Checks (apply 0) or checks and installs (apply 1) what
 * itd_engine_write_trainer wrote. A check that passed guarantees the
 * install succeeds, so it can come after the model is loaded.
 * @returns ITD_OK; ITD_ERR_CORRUPT or ITD_ERR_INCOMPATIBLE with errstr.
 */
itd_err_t itd_engine_read_trainer(itd_engine_t *eng, const void *buf,
                                  size_t len, int apply, char *errstr,
                                  size_t errstr_size);

/** @brief The engine's model (borrowed; for checkpoints). */
itd_model_t *itd_engine_model(itd_engine_t *eng);

/** @brief The engine's progressive-validation accumulator (borrowed; for
 * checkpoints). */
itd_eval_t *itd_engine_eval(itd_engine_t *eng);


#endif
