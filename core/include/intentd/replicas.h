/*
 * replicas.h - what each pipeline worker's replica of the one model has
 * of its own (workers.h), for a checkpoint: its optimizer state (step
 * count, moments) and its trainer (partial mini-batch, held positives),
 * and the model_version the instance had published.
 *
 * The checkpoint's model file is worker 0's replica and its engine.bin
 * every worker's trainer as one (itd_engine_write_trainers); this file
 * (workers.bin) adds the rest, in the one framing (intentd/frame.h), kind
 * ITD_FRAME_WORKERS, version 1:
 *
 *   header (after the prefix): u32 workers | u32 0 | i64 model_version
 *   per worker w: "w<w>.counts" (u64: steps, skipped, examples);
 *     "w<w>.moments" (f32, the moment blocks; w >= 1, and only when the
 *     optimizer has moments); "w<w>.trainer" (bytes: that worker's trainer
 *     alone, the engine.bin format; only with more than one worker)
 *
 * Read back by as many workers, each takes its own: the instance goes on
 * as if never stopped. By another count: the trainers stay engine.bin's
 * (worker 0 takes them), worker w takes replica w's optimizer state where
 * there was one and worker 0's otherwise (moments with the step count
 * they were built with), and model_version goes on from the saved one.
 */
#ifndef INTENTD_REPLICAS_H
#define INTENTD_REPLICAS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/engine.h"
#include "intentd/err.h"

#define ITD_REPLICAS_VERSION 1

typedef struct itd_replicas_s itd_replicas_t;

/** @brief engs[0..n) (right after itd_workers_sync) as workers.bin. */
itd_err_t itd_replicas_write(itd_engine_t *const *engs, size_t n, FILE *out,
                             char *errstr, size_t errstr_size);

/** @brief Parses and checks the framing and checksum of workers.bin
 * (data is copied). NULL with errstr when it is not one. */
itd_replicas_t *itd_replicas_parse(const void *data, size_t len, char *errstr,
                                   size_t errstr_size);

void itd_replicas_destroy(itd_replicas_t *r);

/** @brief How many workers wrote it. */
size_t itd_replicas_workers(const itd_replicas_t *r);

/** @brief The model_version published when it was written. */
int64_t itd_replicas_version(const itd_replicas_t *r);

/** @brief What model_version adds to the steps of n workers' replicas as
 * restored (itd_workers_set_version_offset): the saved version less the
 * step counts they restore (worker w >= the saved count takes worker
 * 0's). 0 for as many workers as wrote it. */
int64_t itd_replicas_version_offset(const itd_replicas_t *r, size_t n);

/** @brief Whether engs[0..n) would take their trainers from it (the same
 * count of workers, more than one) rather than from engine.bin. */
int itd_replicas_own_trainers(const itd_replicas_t *r, size_t n);

/** @brief Whether it fits engs[0..n) (moment sizes, trainer snapshots):
 * ITD_ERR_INCOMPATIBLE or ITD_ERR_CORRUPT with errstr if not. Changes
 * nothing. */
itd_err_t itd_replicas_check(const itd_replicas_t *r,
                             itd_engine_t *const *engs, size_t n,
                             char *errstr, size_t errstr_size);

/**
 * @brief The trainers and optimizer state of a checkpoint into engs[0..n)
 * once worker 0's model is loaded: r's own trainers when
 * itd_replicas_own_trainers, engine.bin's (trainer, trainer_len: every
 * worker's as one) into worker 0 otherwise, and r's optimizer state
 * (itd_replicas_apply). r NULL (a checkpoint from before workers.bin):
 * engine.bin into worker 0, workers 1.. keep a fresh optimizer. Both
 * checked first (itd_replicas_check, itd_engine_read_trainer).
 */
void itd_replicas_install(const itd_replicas_t *r, itd_engine_t *const *engs,
                          size_t n, const void *trainer, size_t trainer_len);

#endif
