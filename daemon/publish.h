/*
 * publish.h - events from a feed (simulator or file) to the events topic
 * as Avro, keyed by user id. Used by `intentd load`, `simulate --config`
 * and `demo`.
 */
#ifndef INTENTD_PUBLISH_H
#define INTENTD_PUBLISH_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "intentd/conf.h"
#include "intentd/err.h"
#include "intentd/event.h"

/* A feed of events: returns ITD_OK, ITD_ERR_EOF at the end, or another
 * error with errstr. */
typedef itd_err_t (*itd_feed_next_fn)(void *src, itd_event_t *ev,
                                      char *errstr, size_t errstr_size);

typedef struct itd_publish_opts_s {
        double rate;                     /* events/s; 0 = as fast as possible */
        int progress;                    /* live progress line on stderr */
        volatile sig_atomic_t *stop;     /* non-zero: stop early */
        _Atomic uint64_t *published;     /* if set, bumped per event */
        /* Progress in bytes of the input, for the ETA (may be NULL). */
        void (*progress_bytes)(void *src, uint64_t *done, uint64_t *total);
} itd_publish_opts_t;

/**
 * @brief Publishes every event of the source to conf->topic_events, then
 * flushes. Each record's timestamp is its event time. Values are bare
 * Avro, or, with output.schema_registry.url, carry the id of
 * config/event.avsc registered under <topics.events>-value
 * (out_schemas.h).
 * @param count  out: events published.
 * @returns ITD_OK, or an error with errstr.
 */
itd_err_t itd_publish(const itd_conf_t *conf, itd_feed_next_fn next,
                      void *src, const itd_publish_opts_t *opts,
                      uint64_t *count, char *errstr, size_t errstr_size);

#endif
