/*
 * modelsync.h - one model across the instances of a consumer group, over
 * Kafka: the model topic (topics.model) carries each instance's changes
 * and periodic full snapshots (model/sync.c encodes and merges them).
 *
 * At start a fresh instance reads partition 0 of the topic from its
 * beginning to its end, adopting every full snapshot and adding every
 * change on the way, so it starts from the latest merged model; an
 * instance whose model came from its checkpoint reads only what is
 * published from then on. While running, every model.sync.interval it
 * publishes its change and merges what the others published since; every
 * model.sync.snapshot.interval it also publishes a full snapshot.
 *
 * @thread the pipeline thread (it owns the engine, hence the model).
 */
#ifndef INTENTD_MODELSYNC_H
#define INTENTD_MODELSYNC_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/conf.h"
#include "intentd/engine.h"
#include "intentd/err.h"

typedef struct itd_modelsync_s itd_modelsync_t;

/**
 * @brief Starts the exchange for eng's model (borrowed; must outlive it)
 * and catches up (fresh 1: from the topic's beginning; 0: from its end).
 * @param out  gets it, or NULL when topics.model is empty (no exchange).
 * @returns ITD_OK; ITD_ERR_CONF (librdkafka refused the settings) or
 * ITD_ERR_KAFKA with errstr.
 */
itd_err_t itd_modelsync_start(const itd_conf_t *conf, itd_engine_t *eng,
                              int fresh, itd_modelsync_t **out, char *errstr,
                              size_t errstr_size);

/**
 * @brief Merges what arrived; publishes when an interval is due.
 * now_ms: the monotonic clock. NULL does nothing.
 */
void itd_modelsync_tick(itd_modelsync_t *s, int64_t now_ms);

/**
 * @brief 1 when a tick now would publish, or the last tick was at least
 * a second ago: with pipeline workers the replicas are merged before a
 * tick (the model sync reads and changes worker 0's replica), so the
 * loop ticks only then. NULL: 0.
 */
int itd_modelsync_due(const itd_modelsync_t *s, int64_t now_ms);

/**
 * @brief What s exchanged so far: messages published (snapshots
 * included) and changes of other instances merged. NULL: both 0.
 */
void itd_modelsync_counts(const itd_modelsync_t *s, uint64_t *published,
                          uint64_t *merged);

/**
 * @brief Publishes the last change, waits up to timeout_ms for its
 * delivery, and frees s; NULL does nothing.
 */
void itd_modelsync_stop(itd_modelsync_t *s, int64_t timeout_ms);

#endif
