/*
 * trainer.h - learning from resolved examples: progressive validation
 * (eval: each example judged with the score it was given, before the
 * model learns from it), the mini-batch, and the optimizer steps.
 *
 * The engine hands every example its partitions resolve to
 * itd_trainer_add, in resolution order; that is the whole interface
 * between scoring and learning. An example is judged when ex->judge (once
 * per prediction, with its final label) and copied into the mini-batch
 * when ex->train (a positive is first held until its horizon has closed,
 * conf.hold_cap); a full mini-batch is one step of the model. What the
 * trainer keeps it copies: the example's memory is the labeler's and may
 * go with the next call on it.
 *
 * Threads. One engine's thread scores and learns, and the model the
 * trainer steps is the one the engine scores with. Several workers
 * (workers.h) each run an engine with a trainer of its own and merge
 * their models; the interface is also cut for the other design, several
 * scoring workers and one trainer learning from all of them:
 *
 *   - the handoff is itd_trainer_add and nothing else: it takes examples
 *     by pointer and copies them, so a worker passes what its labelers
 *     hand out and goes on; a queue per worker in front of it, drained by
 *     the trainer's thread in arrival order, is all the threading adds
 *     (order between workers is arbitrary already: their partitions run
 *     ahead of each other in event time);
 *   - the trainer steps its own parameters (the back buffer); workers
 *     score with the parameters it last published (the front buffer).
 *     itd_trainer_publish marks that point: it copies the back buffer
 *     into the front one and returns the version the front now holds
 *     (training steps so far, what predictions carry as model_version),
 *     and a worker picks the front up between its batches. With one
 *     thread front and back are one model (the one passed to
 *     itd_trainer_new) and publishing copies nothing;
 *   - eval and the counters belong to the trainer's thread; a worker
 *     reads them only through itd_trainer_stats taken by that thread.
 *
 * @thread one thread at a time (today the pipeline thread); no locks.
 */
#ifndef INTENTD_TRAINER_H
#define INTENTD_TRAINER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"
#include "intentd/eval_progressive.h"
#include "intentd/labeler.h"
#include "intentd/model.h"

typedef struct itd_trainer_conf_s {
        size_t dim;       /* dense features per example */
        size_t n_ids;     /* sparse ids per example */
        size_t batch;     /* examples per optimizer step, >= 1 */
        float neg_sample_rate; /* negatives kept for training (each then
                                * weighs 1 / rate); 1 (or 0): all */
        float threshold;  /* decision threshold of eval */
        size_t hold_cap;  /* positives held until their horizon closes
                           * (at most this many; the oldest goes when
                           * full); 0: learned at once */
} itd_trainer_conf_t;

typedef struct itd_trainer_stats_s {
        uint64_t examples_pos; /* examples learned from, positive */
        uint64_t examples_neg; /* ... negative */
        uint64_t examples_neg_sampled_out; /* negatives judged but not
                                            * learned from (down-sampling) */
        uint64_t queued;       /* in the partial mini-batch */
        uint64_t held;         /* positives held for their horizon */
        int64_t version;       /* training steps of the published model */
} itd_trainer_stats_t;

typedef struct itd_trainer_s itd_trainer_t;

/**
 * @brief A trainer stepping model (borrowed: the caller owns it and keeps
 * it alive as long as the trainer), with an empty mini-batch and eval.
 * model's max_batch must be at least conf->batch.
 * @returns the trainer (caller owns), or NULL with errstr.
 */
itd_trainer_t *itd_trainer_new(const itd_trainer_conf_t *conf,
                               itd_model_t *model, char *errstr,
                               size_t errstr_size);
/** @brief Frees the trainer (not the model); NULL does nothing. */
void itd_trainer_destroy(itd_trainer_t *tr);

/**
 * @brief One resolved example (borrowed for the call): judged into eval
 * when ex->judge, then copied into the mini-batch when ex->train; a full
 * mini-batch is one optimizer step (a non-finite loss skips it; the model
 * counts that).
 */
void itd_trainer_add(itd_trainer_t *tr, const itd_example_t *ex);

/** @brief Steps on the partial mini-batch, if any (end of input). */
void itd_trainer_flush(itd_trainer_t *tr);

/**
 * @brief Makes what the trainer learned so far the parameters scoring
 * uses (see the header comment: a no-op with one thread).
 * @returns the version published (training steps so far).
 */
int64_t itd_trainer_publish(itd_trainer_t *tr);

/** @brief New decision threshold of eval (SIGHUP). */
void itd_trainer_set_threshold(itd_trainer_t *tr, float threshold);

void itd_trainer_stats(const itd_trainer_t *tr, itd_trainer_stats_t *s);

/** @brief Eval: progressive validation over the whole run (borrowed; for
 * checkpoints and summaries). */
itd_eval_t *itd_trainer_eval(itd_trainer_t *tr);

/* ---- snapshot ------------------------------------------------------------ */

/* Counters of the engine kept beside the trainer's in its snapshot. */
typedef struct itd_trainer_extra_s {
        uint64_t events, predictions, late;
} itd_trainer_extra_t;

/**
 * @brief Writes the partial mini-batch, the held positives with their
 * partitions and every partition's clock, and the counters (the trainer's, and the engine's in extra) as
 * one snapshot in the one framing (intentd/frame.h; its header and
 * sections in core/trainer_snap.c), little-endian, CRC32C.
 * @returns ITD_OK or ITD_ERR_IO with errstr.
 */
itd_err_t itd_trainer_write(const itd_trainer_t *tr,
                            const itd_trainer_extra_t *extra, FILE *out,
                            char *errstr, size_t errstr_size);

/* Most trainers itd_trainer_write_all takes (one per pipeline worker). */
#define ITD_TRAINER_WRITE_MAX 64

/**
 * @brief Writes n (1..ITD_TRAINER_WRITE_MAX) trainers of one shape as one
 * snapshot, in the format of itd_trainer_write: their mini-batch rows one
 * trainer after another, their held positives merged by time (each
 * trainer's stay in their order), per partition the earliest of their
 * clocks, their
 * counters summed (the engines' sums in extra). Read back into one
 * trainer, nothing any of them held is lost: what does not fit its
 * mini-batch or its hold is learned from at once.
 * @returns ITD_OK, ITD_ERR_ARG (n out of range) or ITD_ERR_IO with errstr.
 */
itd_err_t itd_trainer_write_all(const itd_trainer_t *const *trs, size_t n,
                                const itd_trainer_extra_t *extra, FILE *out,
                                char *errstr, size_t errstr_size);

/**
 * @brief Checks (apply 0) or checks and installs (apply 1) what
 * itd_trainer_write wrote (len bytes at buf), or an older version's
 * snapshot (versions 1 and 2, before the one framing; version 3, one
 * clock for all partitions). A check that passed
 * guarantees the install succeeds. Installing replaces the mini-batch and
 * the counters (a smaller batch than at the checkpoint steps on the surplus at
 * once) and writes the engine's counters into *extra.
 * @returns ITD_OK; ITD_ERR_CORRUPT or ITD_ERR_INCOMPATIBLE with errstr.
 */
itd_err_t itd_trainer_read(itd_trainer_t *tr, const void *buf, size_t len,
                           int apply, itd_trainer_extra_t *extra,
                           char *errstr, size_t errstr_size);

#endif
