/*
 * erase.h - erasure on request: `intentd run` reads control records from
 * topics.control (config/control.avsc, or JSON lines), forgets each
 * ERASE's user in every partition it holds (itd_engine_erase, the /users
 * cache) and acknowledges on topics.audit (config/audit.avsc): at once
 * without checkpoints, else once a checkpoint started after the removal is
 * complete. Bad control records go to the dead-letter topic with a reason.
 * docs/OPERATIONS.md ("Erasure on request") says what is and is not
 * erased.
 *
 * @thread pipeline thread only.
 */
#ifndef INTENTD_DAEMON_ERASE_H
#define INTENTD_DAEMON_ERASE_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/conf.h"
#include "intentd/engine.h"
#include "prom.h"
#include "query.h"

typedef struct itd_erasure_s itd_erasure_t;

/**
 * @brief The control consumer (a consumer group of its own per instance,
 * so every instance reads every record) and a producer of its own for the
 * acknowledgements and the control records' dead letters.
 * @param conf         borrowed, must outlive the result.
 * @param audit_id     schema id of the acknowledgements; -1: bare Avro.
 * @param checkpoints  0: acknowledge at once after the removal.
 * @param m            metrics (borrowed; may be NULL).
 * @returns it (caller owns; itd_erasure_destroy), or NULL with errstr.
 */
itd_erasure_t *itd_erasure_new(const itd_conf_t *conf, int32_t audit_id,
                               int checkpoints, itd_prom_t *m, char *errstr,
                               size_t errstr_size);

/** @brief Delivers what is in flight (up to timeout_ms), closes both
 * clients; NULL does nothing. */
void itd_erasure_destroy(itd_erasure_t *er, int64_t timeout_ms);

/** @brief Told each partition that held an erased user (the changelog
 * writes its next snapshot now). */
typedef void itd_erasure_held_fn(void *arg, int32_t partition);

/**
 * @brief Reads what the control consumer has (never blocks), applies each
 * erasure to every engine of engs[0..n_engs) (the workers') and q (may be
 * NULL), calls held (may be NULL) for each
 * partition that held the user, serves delivery reports and commits the
 * control offsets that are done. Between batches.
 * @returns the erasures applied.
 */
size_t itd_erasure_poll(itd_erasure_t *er, itd_engine_t *const *engs,
                        size_t n_engs, itd_query_t *q,
                        itd_erasure_held_fn *held, void *arg);

/** @brief 1 when an erasure waits for a checkpoint started after it (so
 * one is due even if nothing was consumed). NULL: 0. */
int itd_erasure_wants_checkpoint(const itd_erasure_t *er);

/** @brief A checkpoint of the engine is being started now: it holds none
 * of the users erased so far. NULL does nothing. */
void itd_erasure_checkpoint_started(itd_erasure_t *er);

/** @brief Checkpoint seq is complete: acknowledges the erasures made
 * before it started. NULL does nothing. */
void itd_erasure_checkpoint_published(itd_erasure_t *er, uint64_t seq);

/** @brief Acknowledgements delivered and control records dead-lettered
 * so far (NULL: 0). */
uint64_t itd_erasure_acknowledged(const itd_erasure_t *er);
uint64_t itd_erasure_dead_lettered(const itd_erasure_t *er);

#endif
