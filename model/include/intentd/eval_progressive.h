/*
 * eval_progressive.h - progressive validation: every example is scored
 * before it is learned from, and these accumulators judge those scores.
 *
 * AUC comes from score histograms (ITD_EVAL_BINS bins per class), so memory is
 * constant; its error is bounded by the mass of ties within a bin (see
 * itd_eval_summary_t.auc_err_bound).
 */
#ifndef INTENTD_EVAL_PROGRESSIVE_H
#define INTENTD_EVAL_PROGRESSIVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"
#include "intentd/types.h"

#define ITD_EVAL_BINS 4096

typedef struct itd_eval_summary_s {
        uint64_t n;            /* examples judged */
        uint64_t positives;
        double base_rate;      /* positives / n */
        double auc;            /* NAN until both classes were seen */
        double auc_err_bound;  /* |auc - exact auc| <= this */
        double logloss;
        double accuracy, precision, recall, f1; /* at the threshold */
        double ece;            /* expected calibration error, 10 bins */
        uint64_t next_n;
        double next_accuracy, next_logloss;
} itd_eval_summary_t;

typedef struct itd_eval_s itd_eval_t;

/** @brief New accumulator; threshold is the decision threshold for F1. */
itd_eval_t *itd_eval_new(float threshold);
void itd_eval_destroy(itd_eval_t *eval);
void itd_eval_reset(itd_eval_t *eval);

/**
 * @brief Adds one judged example. next_probs may be NULL (no next-action
 * head); next is the true next action.
 */
void itd_eval_add(itd_eval_t *eval, float score, int label,
                  const float *next_probs, itd_next_t next);

void itd_eval_summary(const itd_eval_t *eval, itd_eval_summary_t *out);

/**
 * @brief dst += src: afterwards dst judges the examples of both (AUC
 * histograms, confusion counts, sums). dst keeps its own threshold; src
 * should have the same, or its confusion counts mean another threshold.
 */
void itd_eval_merge(itd_eval_t *dst, const itd_eval_t *src);

/*
 * Sliding-window progressive validation: the same metrics over the most
 * recent examples only, so a model that drifts shows it without being
 * averaged against its whole history.
 *
 * The window is a ring of `chunks` accumulators of ceil(window / chunks)
 * examples each; when the newest is full and another example comes, the
 * oldest chunk is dropped whole. Once warm the summary therefore covers the
 * last window - chunk + 1 to window examples (chunk = window / chunks): with
 * 10 chunks, between 90% and 100% of the window. Memory is chunks + 1
 * accumulators (~65 KiB each); adding costs what itd_eval_add costs; a
 * summary merges the chunks (chunks x ITD_EVAL_BINS additions).
 */
typedef struct itd_eval_window_s itd_eval_window_t;

/**
 * @brief New window over the last `window` examples in `chunks` pieces
 * (chunks >= 1, window >= chunks); NULL if either is out of range.
 * Caller owns.
 */
itd_eval_window_t *itd_eval_window_new(float threshold, uint64_t window,
                                       size_t chunks);
void itd_eval_window_destroy(itd_eval_window_t *evalw);
void itd_eval_window_reset(itd_eval_window_t *evalw);

/** @brief As itd_eval_add (a non-finite score is left out and not counted). */
void itd_eval_window_add(itd_eval_window_t *evalw, float score, int label,
                         const float *next_probs, itd_next_t next);

/**
 * @brief Summary of the examples in the window (n says how many).
 * Not const: merges into a scratch accumulator held by evalw.
 */
void itd_eval_window_summary(itd_eval_window_t *evalw, itd_eval_summary_t *out);

/** @brief Changes the decision threshold for examples added from now on. */
void itd_eval_set_threshold(itd_eval_t *eval, float threshold);

/*
 * Snapshots, so progressive metrics survive a restart (a checkpoint holds
 * them beside the model, eval.bin). Version 2: the one framing of every
 * snapshot (intentd/frame.h, kind ITD_FRAME_EVAL), little-endian, CRC32C.
 * The kind's header: u64 ITD_EVAL_BINS | u64 calibration bins. Sections:
 * "pos", "neg" (u64, the score histograms), "counts" (u64: n, positives,
 * tp, fp, tn, fn), "logloss_sum" (f64), "ece_n" (u64), "ece_score",
 * "ece_label" (f64, per calibration bin), "next_counts" (u64: next_n,
 * next_correct), "next_logloss" (f64).
 *
 * Version 1 is still read: magic "ITDPV\0\0\0" (8) | u32 version |
 * u32 ITD_EVAL_BINS | u32 calibration bins | u32 payload bytes | the same
 * fields in that order, 8 bytes each | u32 CRC32C, in the host's byte
 * order.
 *
 * The threshold is not stored: the restored accumulator keeps its own (the
 * configured one decides the examples to come), as itd_eval_merge does.
 */

/**
 * @brief Writes eval to out (about 66 KiB; not flushed).
 * @returns ITD_OK, or ITD_ERR_IO with errstr.
 */
itd_err_t itd_eval_snapshot(const itd_eval_t *eval, FILE *out, char *errstr,
                            size_t errstr_size);

/**
 * @brief Reads what itd_eval_snapshot wrote, exactly its bytes, into eval
 * (its counts replaced, its threshold kept). eval is unchanged on failure.
 * @returns ITD_OK; ITD_ERR_CORRUPT (truncated, checksum, a missing or
 * misshapen section, counts that do not add up), ITD_ERR_INCOMPATIBLE
 * (another version or bin count) or ITD_ERR_IO with errstr.
 */
itd_err_t itd_eval_restore(itd_eval_t *eval, FILE *in, char *errstr,
                           size_t errstr_size);

#endif
