/*
 * workers.h - several engines run as one: worker w owns the partitions p
 * with p % n == w (their partition objects live in its engine), and each
 * worker's engine scores and trains a replica of one model; the replicas
 * are merged every few rounds, so they stay one model.
 *
 * A round (itd_workers_process): the caller's rows are handed to the
 * workers by partition, and every worker runs its engine over its rows
 * (its own thread; the caller's thread is worker 0). Every 8th round each
 * worker then publishes what its replica learned since the last merge and
 * merges what the others published (msync.h: each change is the
 * displacement its examples caused, and the sum of the changes is what
 * one model fed every example would have moved by); after it every
 * replica holds the same parameters, to float rounding. Nothing is shared
 * while a worker processes its rows: the per-event path takes no lock;
 * the threads meet at a barrier at the start and end of a round (and one
 * between publishing and merging).
 *
 * Why replicas and not one trainer thread: training is more than half of
 * an event's work (docs/BENCHMARKS.md, "Per-stage costs"), so a single
 * trainer thread would bound every worker count at about 1.8x one worker;
 * replicas train in parallel and cost one merge per round.
 *
 * What comes out is as with one engine: every row gets its outcome and
 * prediction back in place; judged examples go to the example hook on the
 * caller's thread after the round, worker by worker, each worker's in its
 * order; the stats are the sum over the workers, with one progressive
 * evaluation over all their examples. Given the number of workers a run is
 * deterministic (rounds, merge order and hook order are fixed); it is not
 * bit-identical to another number of workers: which examples a replica
 * learns from between merges depends on how partitions are spread.
 *
 * With one worker it is the engine itself: no thread, no copy, no merge,
 * the hook called during the process call.
 *
 * @thread the caller's thread owns the set; the worker threads touch only
 * their own engine, and only inside itd_workers_process.
 */
#ifndef INTENTD_WORKERS_H
#define INTENTD_WORKERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/engine.h"
#include "intentd/err.h"

typedef struct itd_workers_s itd_workers_t;

/* Largest number of workers. */
#define ITD_WORKERS_MAX 64

/**
 * @brief Takes over the n engines at engs (built from one configuration,
 * so their models start equal; the caller's array entries are set to
 * NULL) and starts n - 1 threads.
 * @returns the set (caller owns), or NULL with errstr (n out of
 * 1..ITD_WORKERS_MAX, a model that cannot be synced, a thread that did not
 * start); the engines are destroyed then.
 */
itd_workers_t *itd_workers_new(itd_engine_t **engs, size_t n, char *errstr,
                               size_t errstr_size);
/** @brief Stops the threads and destroys the engines; NULL does nothing. */
void itd_workers_destroy(itd_workers_t *wk);

/** @brief How many workers. */
size_t itd_workers_count(const itd_workers_t *wk);

/** @brief Worker w's engine (borrowed; only between rounds). */
itd_engine_t *itd_workers_engine(itd_workers_t *wk, size_t w);

/** @brief Rows one round takes at most: max_batch per worker. */
size_t itd_workers_max_rows(const itd_workers_t *wk);

/** @brief itd_engine_enable_triggers on every worker. */
void itd_workers_enable_triggers(itd_workers_t *wk);

/** @brief The example hook (engine.h), called on the caller's thread. */
void itd_workers_set_example_hook(itd_workers_t *wk, itd_example_hook_t hook,
                                  void *arg);

/** @brief Work of the caller's split by worker: part w of n. */
typedef void (*itd_workers_task_t)(void *arg, size_t w, size_t n);

/**
 * @brief From the next round on, each itd_workers_process also runs
 * fn(arg, w, n) on every worker's thread (w = 0 on the caller's), after
 * that worker's rows and before the round ends: caller's work that
 * splits into n independent parts runs beside the engines instead of
 * after them on one thread. fn may touch only what part w owns and what
 * nothing writes during the round. NULL: none (the default).
 */
void itd_workers_set_task(itd_workers_t *wk, itd_workers_task_t fn,
                          void *arg);

/**
 * @brief One round over n <= itd_workers_max_rows rows of one topic: the
 * rows of partition p go to worker p % n (in their order), at most
 * max_batch of them per worker; outcome, prediction and trigger come back
 * in place (triggers borrowed until the next round).
 * @returns ITD_OK; ITD_ERR_ARG with errstr when too many rows go to one
 * worker or an engine refused its rows (the first such, by worker).
 */
itd_err_t itd_workers_process(itd_workers_t *wk, const char *topic,
                              itd_row_t *rows, size_t n, int64_t now_ms,
                              char *errstr, size_t errstr_size);

/**
 * @brief Worker w's rows (itd_engine_max_batch of them; NULL past the
 * last worker), for itd_workers_process_own: a caller that knows each
 * row's worker writes the round straight into them.
 */
itd_row_t *itd_workers_rows(itd_workers_t *wk, size_t w);

/**
 * @brief One round as itd_workers_process, over the rows the caller
 * wrote into each worker's itd_workers_rows: counts[w] of worker w's (at
 * most itd_engine_max_batch), each of a partition p with p % n == w.
 * Outcome, prediction and trigger come back in place there, and the
 * rows are not copied at all (itd_workers_process copies each row to its
 * worker and back).
 * @returns as itd_workers_process; ITD_ERR_ARG also for a row of another
 * worker's partition, before any row is processed.
 */
itd_err_t itd_workers_process_own(itd_workers_t *wk, const char *topic,
                                  const size_t *counts, int64_t now_ms,
                                  char *errstr, size_t errstr_size);

/**
 * @brief Merges the replicas now, between rounds (as every 8th round
 * does): afterwards each holds the one model, so worker 0's engine can
 * stand for it (a checkpoint's model, a model-sync publish). One worker:
 * nothing to do.
 */
itd_err_t itd_workers_sync(itd_workers_t *wk, char *errstr,
                           size_t errstr_size);

/**
 * @brief Worker 0's model was changed from outside, between rounds, right
 * after itd_workers_sync (a checkpoint restored into it, another
 * instance's change merged into it): that change is added, as it is, to
 * every other replica, so all hold the one model again and none of them
 * counts it as its own learning at the next merge. One worker: nothing
 * to do.
 */
itd_err_t itd_workers_spread(itd_workers_t *wk, char *errstr,
                             size_t errstr_size);

/**
 * @brief After a restore (replicas.h): what model_version adds to the
 * sum of the replicas' steps from now on, so that it goes on from the
 * checkpoint's (restored by another count of workers, their steps do not
 * sum to it). One worker too.
 */
void itd_workers_set_version_offset(itd_workers_t *wk, int64_t offset);

/** @brief Counters summed over the workers; one progressive evaluation
 * over every worker's examples. */
void itd_workers_stats(itd_workers_t *wk, itd_engine_stats_t *stats);

/**
 * @brief Every worker's users as JSON lines (itd_engine_dump_state), all
 * as of the latest watermark of any partition: the end-of-input
 * watermark one engine holding every partition would have.
 */
itd_err_t itd_workers_dump_state(const itd_workers_t *wk, FILE *out);

#endif
