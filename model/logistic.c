/*
 * logistic.c - the online logistic-regression baseline: FTRL-Proximal
 * (McMahan et al. 2013, "Ad Click Prediction: a View from the Trenches",
 * Algorithm 1; the optimizer of Flink ML's and Alink's online LR) over the
 * dense features plus the hashed sparse ids as one-hot coordinates.
 *
 * Weights are not stored: each is derived from its (z, n) when an example
 * touches it, which is what makes the L1 solution exactly sparse and the
 * update lazy (a coordinate no example touches costs nothing).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "intentd/mem.h"
#include "logistic_int.h"

#define K ITD_NEXT__COUNT

static int bad(char *errstr, size_t errstr_size, const char *what, double v,
               const char *why) {
        if (errstr && errstr_size)
                snprintf(errstr, errstr_size, "logistic %s: %g %s", what, v,
                         why);
        return -1;
}

static int check(size_t n_dense, size_t n_fields, size_t ids_per_field,
                 size_t buckets, size_t max_batch, const itd_ftrl_conf_t *f,
                 char *errstr, size_t errstr_size) {
        if (max_batch == 0)
                return bad(errstr, errstr_size, "max_batch", 0,
                           "must be at least 1");
        if (n_fields && ids_per_field && buckets == 0)
                return bad(errstr, errstr_size, "buckets", 0,
                           "with sparse fields, must be at least 1");
        if (n_dense == 0 && !(n_fields && ids_per_field))
                return bad(errstr, errstr_size, "input", 0,
                           "features: no dense features and no sparse ids");
        if (!(f->alpha > 0.0f) || !isfinite(f->alpha))
                return bad(errstr, errstr_size, "ftrl alpha", f->alpha,
                           "must be a positive number");
        if (!(f->beta >= 0.0f) || !isfinite(f->beta))
                return bad(errstr, errstr_size, "ftrl beta", f->beta,
                           "must be >= 0");
        if (!(f->l1 >= 0.0f) || !isfinite(f->l1))
                return bad(errstr, errstr_size, "ftrl l1", f->l1,
                           "must be >= 0");
        if (!(f->l2 >= 0.0f) || !isfinite(f->l2))
                return bad(errstr, errstr_size, "ftrl l2", f->l2,
                           "must be >= 0");
        /* beta = 0 with l2 = 0 divides by sqrt(0) on a fresh coordinate */
        if (f->beta == 0.0f && f->l2 == 0.0f)
                return bad(errstr, errstr_size, "ftrl beta", 0,
                           "and l2 0: one of them must be positive");
        return 0;
}

itd_logistic_t *itd_logistic_new(size_t n_dense, size_t n_fields,
                                 size_t ids_per_field, size_t buckets,
                                 size_t max_batch, const itd_ftrl_conf_t *ftrl,
                                 char *errstr, size_t errstr_size) {
        if (check(n_dense, n_fields, ids_per_field, buckets, max_batch, ftrl,
                  errstr, errstr_size))
                return NULL;
        itd_logistic_t *lr = itd_xcalloc(1, sizeof(*lr));
        lr->n_dense = n_dense;
        lr->n_fields = ids_per_field ? n_fields : 0;
        lr->ids_per_field = n_fields ? ids_per_field : 0;
        lr->buckets = lr->n_fields ? buckets : 0;
        lr->max_batch = max_batch;
        lr->ftrl = *ftrl;
        lr->n_weights = 1 + n_dense + lr->n_fields * lr->buckets;
        /* one block: z then n */
        lr->z = itd_xcalloc(2 * lr->n_weights, sizeof(double));
        lr->n = lr->z + lr->n_weights;
        size_t cap = 1 + n_dense + lr->n_fields * lr->ids_per_field;
        lr->active = itd_xcalloc(cap, sizeof(size_t));
        lr->value = itd_xcalloc(2 * cap, sizeof(double));
        lr->weight = lr->value + cap;
        return lr;
}

void itd_logistic_destroy(itd_logistic_t *lr) {
        if (!lr)
                return;
        free(lr->z);
        free(lr->active);
        free(lr->value);
        free(lr);
}

double itd_ftrl_weight(double z, double n, double alpha, double beta,
                       double l1, double l2) {
        if (fabs(z) <= l1)
                return 0.0;
        double sgn = z < 0.0 ? -1.0 : 1.0;
        return -(z - sgn * l1) / ((beta + sqrt(n)) / alpha + l2);
}

double itd_logistic_weight(const itd_logistic_t *lr, size_t i) {
        const itd_ftrl_conf_t *f = &lr->ftrl;
        /* the bias is not a feature to select or shrink */
        double l1 = i ? f->l1 : 0.0, l2 = i ? f->l2 : 0.0;
        return itd_ftrl_weight(lr->z[i], lr->n[i], f->alpha, f->beta, l1, l2);
}

/*
 * The active coordinates of one example, in a fixed order (bias, dense,
 * sparse by slot), with their values. Dense zeros are left out: their
 * gradient is 0, so Algorithm 1 leaves them alone anyway.
 */
static size_t gather(itd_logistic_t *lr, const float *x, const uint32_t *ids) {
        size_t k = 0;
        lr->active[k] = 0;
        lr->value[k++] = 1.0;
        for (size_t d = 0; d < lr->n_dense; d++)
                if (x[d] != 0.0f) {
                        lr->active[k] = 1 + d;
                        lr->value[k++] = x[d];
                }
        if (!ids)
                return k;
        const size_t base = 1 + lr->n_dense, S = lr->ids_per_field;
        for (size_t f = 0; f < lr->n_fields; f++) {
                size_t first = k;
                for (size_t s = 0; s < S; s++) {
                        uint32_t id = ids[f * S + s];
                        if (id == UINT32_MAX)
                                continue;
                        size_t c = base + f * lr->buckets + id % lr->buckets;
                        int seen = 0;
                        for (size_t j = first; j < k && !seen; j++)
                                seen = lr->active[j] == c;
                        if (seen)
                                continue;
                        lr->active[k] = c;
                        lr->value[k++] = 1.0;
                }
        }
        return k;
}

/* logit of the gathered example, with the weights it used in lr->weight */
static double score(itd_logistic_t *lr, size_t k) {
        double wx = ITD_LOGISTIC_LOGIT_OFFSET;
        for (size_t j = 0; j < k; j++) {
                lr->weight[j] = itd_logistic_weight(lr, lr->active[j]);
                wx += lr->weight[j] * lr->value[j];
        }
        return wx;
}

static double sigmoid(double t) {
        if (t >= 0.0)
                return 1.0 / (1.0 + exp(-t));
        double e = exp(t);
        return e / (1.0 + e);
}

static void next_probs(const itd_logistic_t *lr, float *out) {
        double total = 0.0;
        for (size_t c = 0; c < K; c++)
                total += lr->next_count[c];
        for (size_t c = 0; c < K; c++)
                out[c] = (float)((lr->next_count[c] + 1.0) / (total + K));
}

void itd_logistic_predict(itd_logistic_t *lr, const float *x,
                          const uint32_t *ids, size_t B, float *p,
                          float *next) {
        const size_t S = lr->n_fields * lr->ids_per_field;
        for (size_t b = 0; b < B; b++) {
                size_t k = gather(lr, x + b * lr->n_dense,
                                  ids ? ids + b * S : NULL);
                p[b] = (float)sigmoid(score(lr, k));
        }
        if (next) {
                next_probs(lr, next);
                for (size_t b = 1; b < B; b++)
                        memcpy(next + b * K, next, K * sizeof(float));
        }
}

itd_err_t itd_logistic_train(itd_logistic_t *lr, const float *x,
                             const uint32_t *ids, const float *y,
                             const int *next, size_t B, float *loss) {
        return itd_logistic_train_weighted(lr, x, ids, y, next, NULL, B, loss);
}

itd_err_t itd_logistic_train_weighted(itd_logistic_t *lr, const float *x,
                                      const uint32_t *ids, const float *y,
                                      const int *next, const float *wt,
                                      size_t B, float *loss) {
        if (B == 0 || B > lr->max_batch) {
                if (loss)
                        *loss = NAN;
                return ITD_ERR_ARG;
        }
        /*
         * Check the whole batch first: FTRL learns example by example, and a
         * batch is skipped as a whole (as the MLP skips it), never half
         * applied.
         */
        for (size_t i = 0; i < B * lr->n_dense; i++)
                if (!isfinite(x[i])) {
                        lr->skipped++;
                        if (loss)
                                *loss = NAN;
                        return ITD_ERR_NONFINITE;
                }
        for (size_t b = 0; b < B; b++)
                if (!(y[b] >= 0.0f && y[b] <= 1.0f)) {
                        lr->skipped++;
                        if (loss)
                                *loss = NAN;
                        return ITD_ERR_NONFINITE;
                }

        const itd_ftrl_conf_t *f = &lr->ftrl;
        const double alpha = f->alpha;
        const size_t S = lr->n_fields * lr->ids_per_field;
        double bce_sum = 0.0;
        for (size_t b = 0; b < B; b++) {
                size_t k = gather(lr, x + b * lr->n_dense,
                                  ids ? ids + b * S : NULL);
                double t = score(lr, k);
                double p = sigmoid(t);
                /* stable BCE: max(t, 0) - t y + log(1 + exp(-|t|)) */
                bce_sum += fmax(t, 0.0) - t * y[b] + log1p(exp(-fabs(t)));
                /* an example of weight w counts as w of them: its
                 * gradient scaled by w */
                double g = (p - y[b]) * (wt ? wt[b] : 1.0);
                for (size_t j = 0; j < k; j++) {
                        size_t i = lr->active[j];
                        double g_i = g * lr->value[j];
                        double n_new = lr->n[i] + g_i * g_i;
                        double sigma = (sqrt(n_new) - sqrt(lr->n[i])) / alpha;
                        lr->z[i] += g_i - sigma * lr->weight[j];
                        lr->n[i] = n_new;
                }
        }
        if (next)
                for (size_t b = 0; b < B; b++)
                        if (next[b] >= 0 && next[b] < (int)K)
                                lr->next_count[next[b]] += wt ? wt[b] : 1.0;
        lr->steps++;
        if (loss)
                *loss = (float)(bce_sum / (double)B);
        return ITD_OK;
}
