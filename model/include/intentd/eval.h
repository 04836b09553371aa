/*
 * eval.h - offline judgement of scored examples: exact AUC with ties, a
 * percentile interval of it from resampling groups (users) with
 * replacement, a robust span of event time, lift in the top fraction, and
 * calibration over equal-mass bins.
 *
 * Where model/eval_progressive.c judges in constant memory as examples
 * arrive, these take every example at once (arrays: score[i], label[i] in
 * {0, 1}, group[i]) and are exact. Deterministic: the same arrays and seed give the
 * same numbers on every host. Scores must be finite (callers leave the
 * others out, as model/eval_progressive.c does).
 *
 * @thread any (no shared state); the functions allocate scratch and free
 * it before returning.
 */
#ifndef INTENTD_EVAL_H
#define INTENTD_EVAL_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief order[0..n) = 0..n-1 sorted by score ascending; equal scores keep
 * index order (stable), so the result does not depend on the sort.
 */
void itd_eval_order(const float *score, size_t n, uint32_t *order);

/**
 * @brief Area under the ROC curve: the share of (positive, negative)
 * pairs the score orders correctly, a tie counting 1/2 (Mann-Whitney).
 * @returns NAN unless both classes are present.
 */
double itd_eval_auc(const float *score, const uint8_t *label, size_t n);

/** @brief A percentile interval of a statistic over resamples. */
typedef struct itd_eval_interval_s {
        double lo, hi;    /* NAN when no resample could be judged */
        size_t resamples; /* resamples that could be judged (both classes) */
} itd_eval_interval_t;

/**
 * @brief Percentile bootstrap of the AUC of k scorers, resampling groups.
 *
 * Each resample draws as many groups as are present, uniformly with
 * replacement; a group drawn m times contributes all its examples with
 * weight m (Efron's bootstrap over independent units: a user's examples
 * are not independent of each other, so the user is the unit). Every
 * scorer is judged on the same resamples, so diff[j] (AUC of scorer j
 * minus scorer 0) is a paired interval; diff[0] is [0, 0]. Resamples that
 * lack a class are skipped (counted in .resamples).
 *
 * @param score   k arrays of n scores
 * @param group   n group ids, each < n_groups (need not all be present)
 * @param level   interval mass, e.g. 0.95
 * @param auc     k intervals out
 * @param diff    k intervals out, or NULL
 */
void itd_eval_auc_boot(const float *const *score, size_t k,
                       const uint8_t *label, const uint32_t *group, size_t n,
                       size_t n_groups, size_t resamples, uint64_t seed,
                       double level, itd_eval_interval_t *auc,
                       itd_eval_interval_t *diff);

/**
 * @brief A span of event time that a few outliers cannot stretch: the
 * q_lo and 1 - q_lo quantiles of ts (nearest rank, rounded outwards).
 * With q_lo = 0.001, up to 0.1% of the timestamps on either side (one
 * event dated months early, a clock that jumped ahead) fall outside.
 * n must be > 0.
 */
void itd_eval_span(const int64_t *ts, size_t n, double q_lo, int64_t *lo,
                   int64_t *hi);

/**
 * @brief Lift of the top `frac` of examples by score: their positive rate
 * over the overall positive rate. Examples tied with the last one taken
 * count in proportion (the expected value under a random order among
 * ties), so a constant score has lift 1.
 * @returns NAN without positives, or when frac * n < 1.
 */
double itd_eval_lift(const float *score, const uint8_t *label, size_t n,
                     double frac);

/* One calibration bin. */
typedef struct itd_eval_bin_s {
        size_t n;
        double lo, hi;          /* smallest and largest score in the bin */
        double mean_score;      /* mean predicted probability */
        double rate;            /* observed positive rate */
} itd_eval_bin_t;

/**
 * @brief Calibration over (at most) `bins` equal-mass bins: examples in
 * score order, a bin closed once it reaches its share of n and the next
 * score differs (equal scores always share a bin, so a nearly constant
 * score gives fewer, fuller bins rather than an arbitrary split).
 * @param out  `bins` slots, or NULL
 * @param ece  sum over bins of |sum of scores - positives| / n
 * @returns bins used.
 */
size_t itd_eval_calibration(const float *score, const uint8_t *label,
                            size_t n, size_t bins, itd_eval_bin_t *out,
                            double *ece);

#endif
