/*
 * scoredist.c - a decayed log-odds histogram of scores with quantiles (see
 * scoredist.h for the method).
 *
 * Fenwick tree (Fenwick 1994): tree[i] (1-based) holds the sum of the
 * bins (i - lowbit(i), i]; a prefix sum and the search for the bin where a
 * prefix crosses a target each walk log2(n) nodes. bin[] keeps the plain
 * per-bin masses for the interpolation inside the bin found.
 *
 * Decay by growing weights: the k-th score is added with weight g^k, where
 * g = 2^(1/half_life); relative to the newest score, one half_life scores
 * older then weighs half. Quantiles and the mean are ratios, so only
 * relative weights matter. When the next weight passes RESCALE_AT,
 * everything is multiplied by 1/w at once: doubles keep 15 significant
 * digits, so a score 50 half-lives old (2^-50) has faded to nothing
 * anyway.
 */
#include "intentd/scoredist.h"

#include <math.h>
#include <string.h>

#include "intentd/mem.h"

#define BINS ITD_SCOREDIST_BINS
#define LOGIT_LO (-16.0)
#define BIN_WIDTH (1.0 / 64.0) /* 32 logit units over BINS bins */
#define RESCALE_AT 1e150

_Static_assert(BINS * BIN_WIDTH == 32.0, "bins span logit -16 .. 16");

struct itd_scoredist_s {
        double tree[BINS + 1]; /* Fenwick, 1-based; tree[0] unused */
        double bin[BINS];      /* plain masses */
        double total;          /* sum of the masses */
        double sum_score;      /* sum of mass x score */
        double w;              /* weight of the next score */
        double growth;         /* 2^(1/half_life) */
        uint64_t n;            /* scores added */
};

static double growth_of(uint64_t half_life) {
        return exp2(1.0 / (double)half_life);
}

itd_scoredist_t *itd_scoredist_new(uint64_t half_life) {
        if (half_life == 0)
                return NULL;
        itd_scoredist_t *d = itd_xcalloc(1, sizeof *d);
        d->w = 1.0;
        d->growth = growth_of(half_life);
        return d;
}

void itd_scoredist_destroy(itd_scoredist_t *d) { free(d); }

void itd_scoredist_set_half_life(itd_scoredist_t *d, uint64_t half_life) {
        if (half_life > 0)
                d->growth = growth_of(half_life);
}

uint64_t itd_scoredist_count(const itd_scoredist_t *d) { return d->n; }

static size_t bin_of(float score) {
        double p = score;
        if (p < 1e-7)
                p = 1e-7;
        if (p > 1.0 - 1e-7)
                p = 1.0 - 1e-7;
        double b = (log(p / (1.0 - p)) - LOGIT_LO) / BIN_WIDTH;
        if (b < 0)
                return 0;
        if (b >= BINS)
                return BINS - 1;
        return (size_t)b;
}

static void rescale(itd_scoredist_t *d) {
        double k = 1.0 / d->w;
        for (size_t i = 1; i <= BINS; i++)
                d->tree[i] *= k;
        for (size_t i = 0; i < BINS; i++)
                d->bin[i] *= k;
        d->total *= k;
        d->sum_score *= k;
        d->w = 1.0;
}

void itd_scoredist_add(itd_scoredist_t *d, float score) {
        if (!isfinite(score))
                return;
        size_t b = bin_of(score);
        double w = d->w;
        d->bin[b] += w;
        for (size_t i = b + 1; i <= BINS; i += i & (~i + 1))
                d->tree[i] += w;
        d->total += w;
        d->sum_score += w * (double)score;
        d->n++;
        d->w = w * d->growth;
        if (d->w > RESCALE_AT)
                rescale(d);
}

float itd_scoredist_top(const itd_scoredist_t *d, double frac) {
        if (!(d->total > 0) || !(frac > 0 && frac <= 1))
                return NAN;
        /* The bin where the mass counted from the bottom reaches
         * (1 - frac) of the total: the largest pos with prefix(pos) <
         * target, found by descending the tree. */
        double target = d->total * (1.0 - frac);
        size_t pos = 0;
        double rem = target;
        for (size_t step = BINS; step > 0; step >>= 1) {
                size_t nxt = pos + step;
                if (nxt <= BINS && d->tree[nxt] < rem) {
                        pos = nxt;
                        rem -= d->tree[nxt];
                }
        }
        if (pos >= BINS)
                pos = BINS - 1; /* rounding: target at the very top */
        double mass = d->bin[pos];
        double within = mass > 0 ? rem / mass : 0.5;
        if (within < 0)
                within = 0;
        if (within > 1)
                within = 1;
        double logit = LOGIT_LO + ((double)pos + within) * BIN_WIDTH;
        return (float)(1.0 / (1.0 + exp(-logit)));
}

double itd_scoredist_mean(const itd_scoredist_t *d) {
        return d->total > 0 ? d->sum_score / d->total : NAN;
}

/* ---- snapshots: words in a fixed order ------------------------------- */

static uint64_t dbits(double v) {
        uint64_t u;
        memcpy(&u, &v, sizeof u);
        return u;
}

static double bitsd(uint64_t u) {
        double v;
        memcpy(&v, &u, sizeof v);
        return v;
}

void itd_scoredist_save(const itd_scoredist_t *d, uint64_t *words) {
        size_t k = 0;
        words[k++] = BINS;
        words[k++] = d->n;
        words[k++] = dbits(d->total);
        words[k++] = dbits(d->sum_score);
        words[k++] = dbits(d->w);
        words[k++] = dbits(d->growth);
        for (size_t i = 0; i < BINS; i++)
                words[k++] = dbits(d->bin[i]);
        for (size_t i = 1; i <= BINS; i++)
                words[k++] = dbits(d->tree[i]);
}

int itd_scoredist_load(itd_scoredist_t *d, const uint64_t *words) {
        if (words[0] != BINS)
                return -1;
        double total = bitsd(words[2]), sum = bitsd(words[3]);
        double w = bitsd(words[4]);
        if (!(total >= 0) || !isfinite(total) || !isfinite(sum) ||
            !(w >= 1.0) || !(w <= RESCALE_AT))
                return -1;
        for (size_t i = 0; i < 2 * BINS; i++) {
                double v = bitsd(words[6 + i]);
                if (!(v >= 0) || !isfinite(v))
                        return -1;
        }
        /* The growth in force is the configured one (a new half-life
         * applies from the restore on), not the snapshot's. */
        d->n = words[1];
        d->total = total;
        d->sum_score = sum;
        d->w = w;
        for (size_t i = 0; i < BINS; i++)
                d->bin[i] = bitsd(words[6 + i]);
        for (size_t i = 1; i <= BINS; i++)
                d->tree[i] = bitsd(words[6 + BINS + i - 1]);
        return 0;
}
