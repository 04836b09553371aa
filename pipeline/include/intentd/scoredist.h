/*
 * scoredist.h - the live distribution of a stream of scores, in bounded
 * memory, for trigger thresholds relative to it ("the top 1% of recent
 * scores", "three times the mean score").
 *
 * A histogram of log-odds, logit(p) = ln(p / (1 - p)), over [-16, 16] in
 * ITD_SCOREDIST_BINS equal bins (1/64 of a logit unit each: about 1.6% of
 * a small probability, finer than any threshold needs); scores beyond
 * clamp into the end bins. Log-odds spread the small probabilities that
 * purchase intent lives in (0.5% .. 20%) over many bins, where equal-width
 * probability bins would put them in a handful.
 *
 * Recent scores count more: every score added multiplies the weight of
 * all earlier ones by 2^(-1/half_life), so a score half_life scores ago
 * counts half. Implemented without touching old bins: each new score is
 * added with a weight that grows by 2^(1/half_life), and everything is
 * scaled down together when that weight gets large. The bins are a
 * Fenwick tree, so adding a score and finding a quantile each cost
 * log2(bins) = 11 steps; quantiles interpolate linearly within a bin.
 *
 * Deterministic: the same scores in the same order give bit-identical
 * answers, also across a snapshot and restore.
 *
 * Memory: 2 x ITD_SCOREDIST_BINS doubles (32 KiB) plus a few words.
 *
 * @thread the owner's; no locks.
 */
#ifndef INTENTD_SCOREDIST_H
#define INTENTD_SCOREDIST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"

#define ITD_SCOREDIST_BINS 2048

typedef struct itd_scoredist_s itd_scoredist_t;

/**
 * @brief An empty distribution whose scores halve in weight every
 * half_life scores (>= 1).
 * @returns the distribution (caller owns), or NULL for half_life 0.
 */
itd_scoredist_t *itd_scoredist_new(uint64_t half_life);
void itd_scoredist_destroy(itd_scoredist_t *d);

/** @brief Changes the half-life for the scores added from now on. */
void itd_scoredist_set_half_life(itd_scoredist_t *d, uint64_t half_life);

/** @brief Adds one score; a non-finite one is ignored. */
void itd_scoredist_add(itd_scoredist_t *d, float score);

/** @brief Scores added so far (not decayed). */
uint64_t itd_scoredist_count(const itd_scoredist_t *d);

/**
 * @brief The score above which `frac` (0 < frac <= 1) of the (weighted)
 * recent scores lie: frac 0.01 is the 99th percentile.
 * @returns the score, or NaN when nothing was added or frac is out of
 * range.
 */
float itd_scoredist_top(const itd_scoredist_t *d, double frac);

/** @brief The weighted mean of the recent scores; NaN when empty. */
double itd_scoredist_mean(const itd_scoredist_t *d);

/* Snapshots travel inside the trigger snapshot (trigger.c): a fixed number
 * of 8-byte words, native byte order. */
#define ITD_SCOREDIST_WORDS (2 * ITD_SCOREDIST_BINS + 6)

/** @brief Writes the distribution as ITD_SCOREDIST_WORDS words. */
void itd_scoredist_save(const itd_scoredist_t *d, uint64_t *words);

/**
 * @brief Replaces d's contents (not its half-life) with what
 * itd_scoredist_save wrote.
 * @returns 0, or -1 when the words do not describe a distribution (then d
 * is unchanged).
 */
int itd_scoredist_load(itd_scoredist_t *d, const uint64_t *words);

#endif
