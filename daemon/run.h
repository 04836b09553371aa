/*
 * run.h - the daemon's main loop: consume events from Kafka, run them
 * through the engine, publish predictions and dead letters, store offsets.
 */
#ifndef INTENTD_RUN_H
#define INTENTD_RUN_H

#include <signal.h>
#include <stdint.h>

#include "intentd/engine.h"
#include "intentd/conf.h"
#include "intentd/err.h"
#include "intentd/prediction.h"

/* What a caller that watches the run may add to it (the demo,
 * daemon/cmd_demo.c); the daemon passes none. Called on the pipeline
 * thread; a NULL member is skipped. */
typedef struct itd_run_hooks_s {
        /* Each prediction, once it was handed to the producer. pr is
         * borrowed for the call. */
        void (*prediction)(void *arg, const itd_prediction_t *pr);
        /* Asked every loop turn: nonzero stops the run as *stop does.
         * consumed: events taken so far; last_msg_ms: monotonic time of
         * the last poll that returned a message. */
        int (*done)(void *arg, uint64_t consumed, int64_t last_msg_ms);
        void *arg;
} itd_run_hooks_t;

typedef struct itd_run_opts_s {
        volatile sig_atomic_t *stop; /* set by a signal handler */
        volatile sig_atomic_t *reload; /* SIGHUP: re-read conf_path */
        const char *conf_path;       /* for reload; NULL: none */
        int progress;                /* live one-line progress on stderr */
        const itd_run_hooks_t *hooks; /* NULL: none */
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
        uint64_t risk_triggers;   /* risk trigger records delivered */
        double seconds;           /* wall time of the loop */
        itd_engine_stats_t engine;
} itd_run_result_t;

/**
 * @brief Runs until *opts->stop (or the hooks' done), then flushes,
 * commits offsets and closes the consumer. Serves /metrics, /livez and
 * /readyz on metrics.listen and talks to systemd (READY, WATCHDOG, STATUS,
 * RELOADING, STOPPING) while it runs. conf changes on SIGHUP reloads.
 * @returns ITD_OK on a clean stop; an error with errstr if start-up or a
 * fatal Kafka error stopped it.
 */
itd_err_t itd_run(itd_conf_t *conf, const itd_run_opts_t *opts,
                  itd_run_result_t *res, char *errstr, size_t errstr_size);

#endif
