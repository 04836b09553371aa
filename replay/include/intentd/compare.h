/*
 * compare.h - the judged examples of a replay, each with the scores of the
 * model, of an optional baseline model run over the same stream, and of
 * two rules computed online from the same stream, so that all are judged
 * on exactly the same examples (docs/ACCURACY.md, "Judging a replay").
 *
 * The rules, each using only what was known when the prediction was made:
 *   purchase-rate rule  (the user's purchases + 0.5) / (the user's events
 *                       + 10), over the events read up to and including
 *                       the predicted one (the `purchase_rate` feature);
 *   label-rate rule     the share of the user's earlier predictions whose
 *                       label was decided positive by then, smoothed
 *                       towards the share over all users.
 *
 * Judgement: exact AUC, its 95% interval from resampling users (all of a
 * user's examples together), lift of the top decile, ECE over equal-mass
 * bins and log loss, over all examples and over the last 30% of a robust
 * span of event time; and the data of the report's charts.
 *
 * Memory: about 48 bytes per judged example and 16 per user.
 * @thread the replay's one thread.
 */
#ifndef INTENTD_COMPARE_H
#define INTENTD_COMPARE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "intentd/eval.h"
#include "intentd/event.h"

/* The scorers, in table order. */
typedef enum {
        ITD_SC_MODEL = 0,     /* the engine's model */
        ITD_SC_BASELINE,      /* a second model over the same stream */
        ITD_SC_PURCHASE_RATE, /* the purchase-rate rule */
        ITD_SC_LABEL_RATE,    /* the label-rate rule */
        ITD_SC__COUNT
} itd_scorer_t;

typedef struct itd_compare_conf_s {
        int64_t horizon_ms;      /* labels.horizon: a negative is decided
                                  * once event time passes t + horizon */
        const char *model_name;  /* e.g. "mlp" (copied) */
        const char *baseline;    /* e.g. "logistic", or NULL: none */
        size_t resamples;        /* bootstrap resamples; 0: no intervals */
        uint64_t seed;           /* of the resampling */
        double test_share;       /* the later period: 0.3 */
        double span_quantile;    /* robust span: 0.001 .. 0.999 */
        double prior_weight;     /* label-rate rule: pseudo-predictions of
                                  * the overall share */
} itd_compare_conf_t;

/** @brief The defaults of docs/ACCURACY.md (1000 resamples, seed 1, last
 * 30%, quantiles 0.1%..99.9%, prior weight 10). */
void itd_compare_conf_defaults(itd_compare_conf_t *conf, int64_t horizon_ms);

/* What the rules say about one event when it is read; the caller keeps it
 * with the event's prediction until that prediction resolves. */
typedef struct itd_compare_ev_s {
        uint64_t seq;        /* position in the stream, from 0 */
        uint32_t user;       /* dense user index */
        float purchase_rate; /* the purchase-rate rule at this event */
        uint8_t type;        /* itd_event_type_t */
        uint8_t bought;      /* the user purchased at or before it */
} itd_compare_ev_t;

typedef struct itd_compare_s itd_compare_t;

/** @brief New empty comparison (conf copied). Caller owns. */
itd_compare_t *itd_compare_new(const itd_compare_conf_t *conf);
void itd_compare_destroy(itd_compare_t *cmp);

/** @brief Reads one input event (its user: user_hash, the row's), in
 * stream order, before the engine does; *out is what its prediction will
 * be judged with. */
void itd_compare_event(itd_compare_t *cmp, const itd_event_t *ev,
                       uint64_t user_hash, itd_compare_ev_t *out);

/**
 * @brief Adds one judged example: the prediction made on event *ev at
 * ts_ms scored `score` (and `baseline`, ignored without a baseline) and
 * resolved with `label`. Non-finite scores are left out, counted.
 */
void itd_compare_add(itd_compare_t *cmp, const itd_compare_ev_t *ev,
                     int64_t ts_ms, float score, float baseline, int label);

/** @brief After the last example: computes the label-rate rule, the split
 * and every judgement. Call once. */
void itd_compare_finish(itd_compare_t *cmp);

/* One scorer over one period. */
typedef struct itd_compare_score_s {
        double auc;
        itd_eval_interval_t auc_ci;   /* resampling users */
        itd_eval_interval_t model_lead; /* the model's AUC minus this
                                         * one's, paired (same resamples) */
        double lift10;                /* top-decile lift */
        double ece;                   /* 10 equal-mass bins */
        double logloss;
} itd_compare_score_t;

typedef struct itd_compare_period_s {
        size_t n, positives, users;
        int64_t from_ts, to_ts;       /* examples with from <= ts <= to */
        itd_compare_score_t sc[ITD_SC__COUNT];
} itd_compare_period_t;

/** @brief The judgements after itd_compare_finish. which: 0 all examples,
 * 1 the last test_share of the robust span. Borrowed. */
const itd_compare_period_t *itd_compare_period(const itd_compare_t *cmp,
                                               int which);

/** @brief Whether the scorer takes part (the baseline only when set). */
int itd_compare_has(const itd_compare_t *cmp, itd_scorer_t sc);

/** @brief "model (mlp)", "purchase-rate rule", ... */
const char *itd_compare_label(const itd_compare_t *cmp, itd_scorer_t sc,
                              char *buf, size_t cap);

/** @brief Key of a scorer in the JSON: "model", "baseline",
 * "purchase_rate", "label_rate". */
const char *itd_scorer_key(itd_scorer_t sc);

/** @brief Prints the comparison table of the replay summary. */
void itd_compare_print(const itd_compare_t *cmp, FILE *out);

/**
 * @brief The "compare" section of the report (docs/ACCURACY.md): the
 * periods' judgements, ROC, precision-recall and gains curves, equal-mass
 * calibration, rolling AUC and log loss over event time, score histograms
 * per class, AUC per segment. New reference.
 */
json_t *itd_compare_json(const itd_compare_t *cmp);

#endif
