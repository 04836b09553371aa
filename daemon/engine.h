/*
 * engine.h - the processing core shared by `run`, `replay` and `demo`:
 * decoded events in, predictions out, labels resolved and the model trained
 * on the way. It knows nothing of Kafka or files; the callers feed it
 * batches and deliver what it returns.
 *
 * Per batch: (1) every event updates its user's state and yields features
 * (in order, so later events of a user see earlier ones); (2) the batch is
 * scored as one matrix product; (3) in order again, each event tells the
 * labeler what happened (resolving earlier predictions) and then adds its
 * own prediction as pending; (4) watermarks advance, resolved examples are
 * judged (progressive validation) and then learned from in mini-batches.
 *
 * @thread one pipeline thread owns an engine; no locks.
 */
#ifndef INTENTD_ENGINE_H
#define INTENTD_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/conf.h"
#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/metrics.h"
#include "intentd/prediction.h"

/* One event of a batch, with where it came from (for prediction_id). */
typedef struct itd_input_s {
        itd_event_t ev;
        int32_t partition;
        int64_t offset;
} itd_input_t;

/* What became of each input. */
typedef enum {
        ITD_OUT_PREDICTED = 0, /* out[i] holds its prediction */
        ITD_OUT_FILTERED_LATE  /* older than the partition's watermark */
} itd_outcome_t;

typedef struct itd_engine_stats_s {
        uint64_t events;          /* events processed */
        uint64_t predictions;     /* predictions made */
        uint64_t filtered_late;   /* events refused as late */
        uint64_t examples_pos;    /* resolved training examples, positive */
        uint64_t examples_neg;    /* resolved training examples, negative */
        uint64_t train_steps;     /* optimizer steps */
        uint64_t train_skipped;   /* steps skipped (non-finite loss) */
        uint64_t pending;         /* predictions waiting for their label */
        uint64_t users;           /* users held in state */
        uint64_t state_bytes;     /* bytes held by the state */
        uint64_t evicted_ttl;     /* users dropped for idling */
        uint64_t evicted_cap;     /* users dropped for state.max_users */
        itd_pv_summary_t pv;      /* progressive validation, whole run */
} itd_engine_stats_t;

typedef struct itd_engine_s itd_engine_t;

/**
 * @brief Builds state, labeler and model from conf (conf is copied where
 * needed, not kept).
 * @returns the engine (caller owns), or NULL with errstr.
 */
itd_engine_t *itd_engine_new(const itd_conf_t *conf, char *errstr,
                             size_t errstr_size);
void itd_engine_destroy(itd_engine_t *eng);

/** @brief Largest batch itd_engine_process accepts. */
size_t itd_engine_max_batch(const itd_engine_t *eng);

/**
 * @brief Processes n <= max_batch inputs of one source topic.
 * @param out      n predictions (written where outcome is PREDICTED).
 * @param outcome  n outcomes.
 * @returns ITD_OK; ITD_ERR_FULL when the pending pool cannot take the batch
 * (nothing of the batch was applied: the caller pauses and retries).
 */
itd_err_t itd_engine_process(itd_engine_t *eng, const char *topic,
                             const itd_input_t *in, size_t n,
                             itd_prediction_t *out, itd_outcome_t *outcome);

/**
 * @brief Moves every partition's watermark to at least wm_ms (end of input,
 * or idle partitions) and learns from what that resolves.
 */
void itd_engine_advance(itd_engine_t *eng, int64_t wm_ms);

/** @brief New decision threshold for progressive metrics (SIGHUP). */
void itd_engine_set_threshold(itd_engine_t *eng, float threshold);
/** @brief New learning rate from the next training step on (SIGHUP). */
void itd_engine_set_learning_rate(itd_engine_t *eng, float lr);

/** @brief Counters and progressive metrics so far. */
void itd_engine_stats(const itd_engine_t *eng, itd_engine_stats_t *stats);

/** @brief Writes every partition's users as JSON lines (--dump-state). */
itd_err_t itd_engine_dump_state(const itd_engine_t *eng, FILE *out);

#endif
