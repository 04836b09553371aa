/*
 * run.h - the daemon's main loop: consume events from Kafka, run them
 * through the engine, publish predictions and dead letters, store offsets.
 */
#ifndef INTENTD_RUN_H
#define INTENTD_RUN_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "intentd/engine.h"
#include "intentd/conf.h"
#include "intentd/err.h"
#include "intentd/prediction.h"

#define ITD_RUN_EXAMPLES 5

typedef struct itd_run_opts_s {
        volatile sig_atomic_t *stop; /* set by a signal handler */
        volatile sig_atomic_t *reload; /* SIGHUP: re-read conf_path */
        const char *conf_path;       /* for reload; NULL: none */
        int progress;                /* live one-line progress on stderr */
        /* Demo: stop once *published_done is set and every published
         * event has been consumed. NULL for the daemon. */
        _Atomic uint64_t *published;
        _Atomic int *published_done;
        /* Judge the triggers' staleness (triggers.max_event_age) by event
         * time only, not the wall clock: the demo plays recorded or
         * simulated history through Kafka as if it were live. */
        int triggers_event_time_only;
} itd_run_opts_t;

typedef struct itd_run_result_s {
        uint64_t consumed;        /* messages taken from the events topic */
        uint64_t dead_lettered;   /* sent to the dead-letter topic */
        uint64_t dead_letters_truncated; /* ... of which landed with the
                                  * value (or key) cut to fit the topic */
        uint64_t undeliverable;   /* outputs given up on (never fit, or
                                   * refused for good); offsets released */
        uint64_t awaiting_schema; /* still waiting for their schema at stop
                                   * (no checkpoints): consumed again */
        uint64_t predicted;       /* predictions produced */
        uint64_t filtered;        /* counted and dropped (engine ITD_OUT_FILTERED) */
        uint64_t published;       /* predictions delivered */
        uint64_t triggers;        /* trigger records delivered */
        double seconds;           /* wall time of the loop */
        itd_engine_stats_t engine;
        size_t n_examples;        /* a few recent high-intent predictions */
        itd_prediction_t examples[ITD_RUN_EXAMPLES];
} itd_run_result_t;

/**
 * @brief Runs until *opts->stop (or the demo condition), then flushes,
 * commits offsets and closes the consumer. Serves /metrics, /livez and
 * /readyz on metrics.listen and talks to systemd (READY, WATCHDOG, STATUS,
 * RELOADING, STOPPING) while it runs. conf changes on SIGHUP reloads.
 * @returns ITD_OK on a clean stop; an error with errstr if start-up or a
 * fatal Kafka error stopped it.
 */
itd_err_t itd_run(itd_conf_t *conf, const itd_run_opts_t *opts,
                  itd_run_result_t *res, char *errstr, size_t errstr_size);

#endif
