/*
 * replay.h - the engine over a file, no Kafka: what `intentd replay` runs
 * once its options are read (daemon/cmd_replay.c).
 *
 * Events come from a reader in event-time order. With one worker all are
 * on partition 0, so one watermark covers the whole file; with more,
 * users are spread over one partition per worker by their hash
 * (workers.h). Deterministic for a given number of workers. Besides the
 * engine's
 * own progressive validation it judges the model beside two rules and an
 * optional baseline engine on the same examples (compare.h), counts the
 * triggers a ladder of rules would have fired (trigsweep.h), can collect
 * the evaluation report (report.h) and write every resolved example as the
 * model saw it (CSV).
 *
 * @thread the caller's; the workers run their own (workers.h).
 */
#ifndef INTENTD_REPLAY_H
#define INTENTD_REPLAY_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/compare.h"
#include "intentd/engine.h"
#include "intentd/workers.h"
#include "intentd/err.h"
#include "intentd/reader.h"
#include "intentd/report.h"
#include "intentd/trigger.h"
#include "intentd/trigsweep.h"

/* What one replay reads and writes. Every pointer is borrowed for the
 * duration of itd_replay_run. */
typedef struct itd_replay_conf_s {
        const char *input;            /* the file's name (the engine's
                                       * topic, messages) */
        itd_reader_t *rd;             /* the events, sorted by time */
        itd_workers_t *wk;            /* the model's workers (one: the
                                       * engine alone); their triggers
                                       * are enabled and example hook
                                       * set */
        itd_engine_t *beng;           /* the baseline, or NULL */
        itd_compare_conf_t compare;   /* model and baseline names, horizon,
                                       * resamples */
        itd_trigger_conf_t triggers;  /* the configured rule: the sweep's
                                       * first row and base */
        double threshold;             /* predict.threshold (the report) */
        int report;                   /* collect the report */
        FILE *csv;                    /* every resolved example, or NULL */
        uint8_t export_key[16];       /* the export's user pseudonyms:
                                       * SipHash of the user hash under
                                       * this key */
        const volatile sig_atomic_t *stop; /* set: stop after the batch */
        int progress;                 /* a progress line on stderr */
} itd_replay_conf_t;

/* What a replay leaves. The caller owns rep, cmp and sweep
 * (itd_replay_result_fini). */
typedef struct itd_replay_result_s {
        itd_report_t *rep;       /* NULL unless conf.report */
        itd_compare_t *cmp;      /* finished */
        itd_trigsweep_t *sweep;
        double seconds;          /* wall time of the loop */
        uint64_t events;         /* events read */
        uint64_t filtered;       /* refused by the engine */
        uint64_t rows;           /* examples written to csv */
        uint64_t mismatched;     /* baseline examples unlike the model's */
} itd_replay_result_t;

/**
 * @brief Runs c->wk (and c->beng) over c->rd to its end or until *c->stop.
 * @returns ITD_OK with res filled (call itd_replay_result_fini either
 * way); or an error with errstr: the trigger settings, the reader, or the
 * engine refusing a batch.
 */
itd_err_t itd_replay_run(const itd_replay_conf_t *c, itd_replay_result_t *res,
                         char *errstr, size_t errstr_size);

/** @brief Frees what res owns; res is zeroed. */
void itd_replay_result_fini(itd_replay_result_t *res);

#endif
