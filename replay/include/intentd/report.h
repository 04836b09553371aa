/*
 * report.h - the evaluation report of `intentd replay`: every judged example
 * (through the engine's example hook) and every event go into constant-size
 * accumulators, from which the report is written as JSON (--report) and as
 * one self-contained HTML page with inline SVG charts (--html).
 *
 * Accumulators: purchase-score histograms (ITD_EVAL_BINS bins per class, the
 * binning of model/eval_progressive.c, so the overall AUC equals the engine's),
 * exact confusion counts at the 99 sweep thresholds 0.01..0.99, 10
 * equal-width bins for the engine's ECE, the next-action confusion matrix,
 * the event mix and throughput: about 70 KiB whatever the input size. The
 * comparison with the rules and the baseline, and every chart drawn from
 * judged examples, come from replay/compare.c (itd_report_run_t.cmp).
 *
 * @thread the replay's one thread.
 */
#ifndef INTENTD_REPORT_H
#define INTENTD_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "intentd/compare.h"
#include "intentd/engine.h"
#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/prediction.h"

#define ITD_REPORT_SWEEP 99 /* thresholds 0.01 .. 0.99 */

typedef struct itd_report_s itd_report_t;

/* What the report says about the run besides the examples. Borrowed. */
typedef struct itd_report_run_s {
        const char *input;               /* the file replayed */
        const char *format;              /* its format name */
        const json_t *config;            /* the options that shape the
                                          * evaluation, as an object
                                          * (the caller builds it), or
                                          * NULL */
        const itd_engine_stats_t *stats; /* engine counters at the end */
        double seconds;                  /* wall time of the replay */
        uint64_t events;                 /* events read */
        uint64_t bad_lines;              /* input lines skipped */
        uint64_t filtered;               /* events refused (engine
                                          * ITD_OUT_FILTERED) */
        const itd_compare_t *cmp;        /* finished comparison, or NULL */
        const json_t *triggers;          /* trigger counts per rule
                                          * (trigsweep.h), or NULL */
} itd_report_run_t;

/** @brief New empty report; threshold as predict.threshold. Caller owns. */
itd_report_t *itd_report_new(double threshold);
void itd_report_destroy(itd_report_t *rep);

/** @brief Counts one input event (event mix, event-time range). Call in
 * input order, before the event is processed. */
void itd_report_event(itd_report_t *rep, const itd_event_t *ev);

/** @brief Adds one judged example (non-finite scores are left out, as in
 * model/eval_progressive.c). next_probs may be NULL (no next-action head). */
void itd_report_example(itd_report_t *rep, float score,
                        const float *next_probs, int label, itd_next_t next);

/** @brief itd_example_hook_t that calls itd_report_example(arg, ...). */
void itd_report_example_hook(void *arg, int32_t partition,
                             const itd_example_t *ex);

/** @brief Records events processed after `seconds` of wall time, for the
 * throughput chart (keeps at most a few hundred samples). */
void itd_report_progress(itd_report_t *rep, uint64_t events,
                         double seconds);

/**
 * @brief The whole report as a JSON object (docs/ACCURACY.md, "Report").
 * @returns a new reference (caller json_decref's it).
 */
json_t *itd_report_json(const itd_report_t *rep, const itd_report_run_t *run);

/** @brief Writes the JSON report to path (indented). ITD_ERR_IO + errstr. */
itd_err_t itd_report_write_json(const json_t *report, const char *path,
                                char *errstr, size_t errstr_size);

/**
 * @brief Writes one self-contained HTML page (inline SVG, no scripts, no
 * network) drawn from a report of itd_report_json (report_html.c): summary
 * and comparison tables; with a "compare" section ROC, precision-recall,
 * cumulative gains, equal-mass calibration, AUC and log loss over event
 * time (every scorer on the same axes), the model's score histogram per
 * class and AUC per segment; then event mix and throughput. Each chart is
 * <svg id="chart-NAME">.
 * @returns ITD_OK, or ITD_ERR_IO with errstr.
 */
itd_err_t itd_report_write_html(const json_t *report, const char *path,
                                char *errstr, size_t errstr_size);

#endif
