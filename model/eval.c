/*
 * eval.c - exact AUC, user-resampled intervals, robust spans, lift and
 * equal-mass calibration over arrays of judged examples (eval.h).
 *
 * Everything rests on one ranking: examples sorted by score, ties in index
 * order. AUC walks it once, counting for each group of equal scores the
 * negatives strictly below (a win each) and the negatives in the group
 * (half a win each). The bootstrap walks the same ranking once per
 * resample with integer weights (how often each group was drawn), so a
 * resample costs O(n) per scorer and no sort.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/eval.h"
#include "intentd/mem.h"

/* A float's bits as an unsigned key in the float's order (negative
 * numbers flipped whole, positive ones above them). -0 sorts just below
 * +0; callers compare scores with ==, which joins them again. */
static uint32_t order_key(float f) {
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/* LSD radix sort, two passes of 16 bits: stable, so equal scores keep
 * index order, and O(n) -- the comparisons of a replay rank every scorer
 * several times over a million examples. */
void itd_eval_order(const float *score, size_t n, uint32_t *order) {
        enum { BITS = 16, BUCKETS = 1 << BITS };
        uint32_t *key = itd_xcalloc(n + 1, sizeof *key);
        uint32_t *tmp = itd_xcalloc(n + 1, sizeof *tmp);
        size_t *count = itd_xcalloc(BUCKETS, sizeof *count);
        for (size_t i = 0; i < n; i++) {
                key[i] = order_key(score[i]);
                order[i] = (uint32_t)i;
        }
        for (int shift = 0; shift < 32; shift += BITS) {
                memset(count, 0, BUCKETS * sizeof *count);
                for (size_t i = 0; i < n; i++)
                        count[(key[order[i]] >> shift) & (BUCKETS - 1)]++;
                size_t sum = 0;
                for (size_t b = 0; b < BUCKETS; b++) {
                        size_t c = count[b];
                        count[b] = sum;
                        sum += c;
                }
                for (size_t i = 0; i < n; i++)
                        tmp[count[(key[order[i]] >> shift) &
                                  (BUCKETS - 1)]++] = order[i];
                memcpy(order, tmp, n * sizeof *order);
        }
        free(count);
        free(tmp);
        free(key);
}

double itd_eval_auc(const float *score, const uint8_t *label, size_t n) {
        uint32_t *order = itd_xcalloc(n ? n : 1, sizeof *order);
        itd_eval_order(score, n, order);
        double wins = 0, neg_below = 0, P = 0, N = 0;
        for (size_t a = 0; a < n;) {
                size_t b = a;
                double p = 0, q = 0;
                do {
                        if (label[order[b]])
                                p++;
                        else
                                q++;
                        b++;
                } while (b < n && score[order[b]] == score[order[a]]);
                wins += p * (neg_below + 0.5 * q);
                neg_below += q;
                P += p;
                N += q;
                a = b;
        }
        free(order);
        return P > 0 && N > 0 ? wins / (P * N) : NAN;
}

/* splitmix64 (Steele, Lea, Flood 2014): small, seedable, good enough to
 * pick groups; the modulo's bias is below n_groups / 2^64. */
static uint64_t splitmix(uint64_t *s) {
        uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static int dbl_cmp(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* Linear interpolation between order statistics of sorted v[0..m). */
static double quantile(const double *v, size_t m, double q) {
        double pos = q * (double)(m - 1);
        size_t i = (size_t)floor(pos);
        if (i + 1 >= m)
                return v[m - 1];
        return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

static itd_eval_interval_t interval(double *v, size_t m, double level) {
        itd_eval_interval_t ci = {NAN, NAN, m};
        if (m == 0)
                return ci;
        qsort(v, m, sizeof *v, dbl_cmp);
        ci.lo = quantile(v, m, (1.0 - level) / 2.0);
        ci.hi = quantile(v, m, 1.0 - (1.0 - level) / 2.0);
        return ci;
}

#define TIE_END 2u /* packed flag: last example of a group of equal scores */

void itd_eval_auc_boot(const float *const *score, size_t k,
                       const uint8_t *label, const uint32_t *group, size_t n,
                       size_t n_groups, size_t resamples, uint64_t seed,
                       double level, itd_eval_interval_t *auc,
                       itd_eval_interval_t *diff) {
        /* dense ids for the groups present: draws pick among those only */
        uint32_t *dense = itd_xcalloc(n_groups ? n_groups : 1, sizeof *dense);
        size_t G = 0;
        for (size_t i = 0; i < n; i++)
                if (!dense[group[i]])
                        dense[group[i]] = (uint32_t)++G;
        /* per scorer, the ranking laid out flat: group and label+tie flag
         * in rank order, so a resample reads memory in sequence */
        uint32_t *rg = itd_xcalloc(k * n + 1, sizeof *rg);
        uint8_t *rl = itd_xcalloc(k * n + 1, 1);
        uint32_t *order = itd_xcalloc(n + 1, sizeof *order);
        for (size_t j = 0; j < k; j++) {
                itd_eval_order(score[j], n, order);
                for (size_t r = 0; r < n; r++) {
                        uint32_t i = order[r];
                        rg[j * n + r] = dense[group[i]] - 1;
                        rl[j * n + r] = (uint8_t)(label[i] != 0);
                        if (r + 1 == n || score[j][order[r + 1]] != score[j][i])
                                rl[j * n + r] |= TIE_END;
                }
        }
        free(order);
        free(dense);

        uint32_t *mult = itd_xcalloc(G + 1, sizeof *mult);
        double *val = itd_xcalloc(k * resamples + 1, sizeof *val);
        double *dval = itd_xcalloc(k * resamples + 1, sizeof *dval);
        size_t used = 0;
        uint64_t rng = seed;
        for (size_t b = 0; b < resamples && G > 0; b++) {
                memset(mult, 0, G * sizeof *mult);
                for (size_t d = 0; d < G; d++)
                        mult[splitmix(&rng) % G]++;
                int ok = 1;
                for (size_t j = 0; j < k && ok; j++) {
                        const uint32_t *g = rg + j * n;
                        const uint8_t *l = rl + j * n;
                        /* integer weights: wins2 counts a won pair 2, a
                         * tie 1; branch-free but for group ends */
                        uint64_t pq[2] = {0, 0}, wins2 = 0, neg_below = 0,
                                 P = 0;
                        for (size_t r = 0; r < n; r++) {
                                pq[l[r] & 1] += mult[g[r]];
                                if (l[r] & TIE_END) {
                                        wins2 += pq[1] *
                                                 (2 * neg_below + pq[0]);
                                        neg_below += pq[0];
                                        P += pq[1];
                                        pq[0] = pq[1] = 0;
                                }
                        }
                        if (P == 0 || neg_below == 0)
                                ok = 0;
                        else
                                val[j * resamples + used] =
                                    (double)wins2 /
                                    (2.0 * (double)P * (double)neg_below);
                }
                if (!ok)
                        continue;
                for (size_t j = 0; j < k; j++)
                        dval[j * resamples + used] =
                            val[j * resamples + used] - val[used];
                used++;
        }
        for (size_t j = 0; j < k; j++) {
                auc[j] = interval(val + j * resamples, used, level);
                if (diff)
                        diff[j] = interval(dval + j * resamples, used, level);
        }
        free(mult);
        free(val);
        free(dval);
        free(rg);
        free(rl);
}

static int i64_cmp(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

void itd_eval_span(const int64_t *ts, size_t n, double q_lo, int64_t *lo,
                   int64_t *hi) {
        int64_t *s = itd_xcalloc(n ? n : 1, sizeof *s);
        memcpy(s, ts, n * sizeof *s);
        qsort(s, n, sizeof *s, i64_cmp);
        /* outwards: the low rank rounds down, the high one up */
        size_t a = (size_t)floor(q_lo * (double)(n - 1));
        size_t b = (size_t)ceil((1.0 - q_lo) * (double)(n - 1));
        *lo = s[a];
        *hi = s[b < n ? b : n - 1];
        free(s);
}

double itd_eval_lift(const float *score, const uint8_t *label, size_t n,
                     double frac) {
        double want = frac * (double)n;
        if (n == 0 || want < 1.0)
                return NAN;
        uint32_t *order = itd_xcalloc(n, sizeof *order);
        itd_eval_order(score, n, order);
        double total_pos = 0, taken = 0, pos = 0;
        for (size_t i = 0; i < n; i++)
                total_pos += label[i] != 0;
        /* from the top score down, whole groups of equal scores */
        for (size_t b = n; b > 0 && taken < want;) {
                size_t a = b;
                double p = 0;
                do {
                        a--;
                        p += label[order[a]] != 0;
                } while (a > 0 && score[order[a - 1]] == score[order[b - 1]]);
                double m = (double)(b - a);
                double share = taken + m <= want ? 1.0 : (want - taken) / m;
                pos += p * share;
                taken += m * share;
                b = a;
        }
        free(order);
        if (total_pos == 0)
                return NAN;
        return (pos / taken) / (total_pos / (double)n);
}

size_t itd_eval_calibration(const float *score, const uint8_t *label,
                            size_t n, size_t bins, itd_eval_bin_t *out,
                            double *ece) {
        *ece = NAN;
        if (n == 0 || bins == 0)
                return 0;
        uint32_t *order = itd_xcalloc(n, sizeof *order);
        itd_eval_order(score, n, order);
        size_t used = 0, start = 0;
        double s_sum = 0, y_sum = 0, err = 0;
        for (size_t r = 0; r < n; r++) {
                uint32_t i = order[r];
                s_sum += score[i];
                y_sum += label[i] != 0;
                int group_end = r + 1 == n || score[order[r + 1]] != score[i];
                /* the bin closes at the first edge k * n / bins past its
                 * start (a long tie may carry it past several edges) */
                double k = floor((double)start * (double)bins / (double)n) +
                           1.0;
                if (!group_end ||
                    (double)(r + 1) * (double)bins < k * (double)n)
                        continue;
                size_t m = r + 1 - start;
                if (out && used < bins)
                        out[used] = (itd_eval_bin_t){
                            m, score[order[start]], score[i],
                            s_sum / (double)m, y_sum / (double)m};
                err += fabs(s_sum - y_sum);
                used++;
                start = r + 1;
                s_sum = y_sum = 0;
        }
        free(order);
        *ece = err / (double)n;
        return used;
}
