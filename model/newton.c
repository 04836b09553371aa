/*
 * newton.c - the parts of a training step beside the network's own:
 * the running input statistics that standardise its inputs, the online
 * Newton step of the offsets, Newton inputs and intercept, and the
 * averaging of those weights.
 */
#include <math.h>

#include "mlp_int.h"

/* ---- input statistics -------------------------------------------------- */

/*
 * Smallest standard deviation used to scale an input: a feature constant so
 * far (a type never seen) must not turn its first change into a huge value;
 * 0.01 is far below any feature that varies (the purchase rate, the
 * narrowest, has sd ~0.03).
 */
#define NORM_MIN_SD 1e-2

void itd_mlp_norm_update(itd_mlp_t *m, const float *x, size_t B) {
        if (!m->norm_mean)
                return;
        const itd_mlp_conf_t *c = &m->conf;
        const size_t D = c->n_dense;
        const double cap =
            c->norm_max_count > 0.0f ? c->norm_max_count : HUGE_VAL;
        for (size_t i = 0; i < B; i++) {
                /*
                 * Welford's update in its mean / variance form:
                 * mean += d / n; var += (d (x - mean_new) - var) / n, exact
                 * for the population variance while n counts every example,
                 * an exponential average of window cap once n stops at cap.
                 */
                if (m->norm_count < cap)
                        m->norm_count += 1.0;
                const double inv_n = 1.0 / m->norm_count;
                const float *xi = x + i * D;
                for (size_t d = 0; d < D; d++) {
                        double v = xi[d];
                        double delta = v - m->norm_mean[d];
                        m->norm_mean[d] += delta * inv_n;
                        m->norm_var[d] +=
                            (delta * (v - m->norm_mean[d]) - m->norm_var[d]) *
                            inv_n;
                }
        }
        if (m->norm_count == 0.0)
                return; /* nothing seen: forward keeps the identity */
        for (size_t d = 0; d < D; d++) {
                double sd = sqrt(m->norm_var[d]);
                m->norm_shift[d] = (float)m->norm_mean[d];
                m->norm_scale[d] = (float)(1.0 / (sd > NORM_MIN_SD ? sd
                                                                   : NORM_MIN_SD));
        }
}

/* ---- offset weights ---------------------------------------------------- */

/*
 * Solves A z = b for a symmetric positive definite A (K, K) by Cholesky
 * into L (K, K, its lower triangle written); A is left untouched; z may
 * be b. Returns -1 if A is not numerically positive definite.
 */
static int spd_solve(const double *A, const double *b, double *z, double *L,
                     size_t K) {
        for (size_t i = 0; i < K; i++)
                for (size_t j = 0; j <= i; j++) {
                        double s = A[i * K + j];
                        for (size_t k = 0; k < j; k++)
                                s -= L[i * K + k] * L[j * K + k];
                        if (i == j) {
                                if (!(s > 0.0))
                                        return -1;
                                L[i * K + i] = sqrt(s);
                        } else {
                                L[i * K + j] = s / L[j * K + j];
                        }
                }
        for (size_t i = 0; i < K; i++) { /* L t = b, t in z */
                double s = b[i];
                for (size_t k = 0; k < i; k++)
                        s -= L[i * K + k] * z[k];
                z[i] = s / L[i * K + i];
        }
        for (size_t i = K; i-- > 0;) { /* L^T z = t */
                double s = z[i];
                for (size_t k = i + 1; k < K; k++)
                        s -= L[k * K + i] * z[k];
                z[i] = s / L[i * K + i];
        }
        return 0;
}

void itd_mlp_offset_step(itd_mlp_t *m, const float *x, const float *wt,
                         size_t B) {
        const itd_mlp_conf_t *c = &m->conf;
        const size_t K = m->n_newton;
        if (K == 0)
                return;
        /* H += sum_i wt_i p_i (1 - p_i) o_i o_i^T: the Fisher information
         * of theta in this batch (the BCE's Hessian in the logit is
         * p(1-p)), each example counted wt_i times; the lower triangle,
         * mirrored after */
        const float *xo = m->norm_shift ? m->xn : x;
        double *o = m->newton_g;
        double W = 0.0;
        for (size_t i = 0; i < B; i++) {
                double w = (double)m->p[i] * (1.0 - (double)m->p[i]);
                if (wt)
                        w *= wt[i];
                W += wt ? wt[i] : 1.0;
                for (size_t k = 0; k < K; k++)
                        o[k] = (double)itd_mlp_newton_in(c, x, xo, i, k);
                for (size_t a = 0; a < K; a++) {
                        double wa = w * o[a];
                        double *row = m->offset_h + a * K;
                        for (size_t b = 0; b <= a; b++)
                                row[b] += wa * o[b];
                }
        }
        for (size_t a = 0; a < K; a++)
                for (size_t b = a + 1; b < K; b++)
                        m->offset_h[a * K + b] = m->offset_h[b * K + a];
        double *g = m->newton_g, *step = m->newton_step;
        /* dtheta is of the (weighted) mean loss; the step wants the sum */
        for (size_t k = 0; k < K; k++)
                g[k] = W * m->dtheta[k];
        if (spd_solve(m->offset_h, g, step, m->newton_l, K) != 0)
                return; /* cannot happen from a positive prior; be safe */
        for (size_t k = 0; k < K; k++)
                m->theta[k] -= step[k];
}

/* ---- parameter averaging ----------------------------------------------- */

void itd_mlp_avg_update(itd_mlp_t *m) {
        if (!m->avg)
                return;
        /* a_1 = 1: the first average is the first step's parameters; the
         * dense parameters were averaged by the step itself
         * (itd_mlp_apply_step, with the same weight) */
        double a = 2.0 / ((double)m->steps + 1.0);
        double floor_a = 1.0 / (double)m->conf.avg_steps;
        const float af = (float)(a > floor_a ? a : floor_a);
        for (size_t k = 0; k < m->n_newton; k++)
                m->theta_avg[k] +=
                    (double)af * (m->theta[k] - m->theta_avg[k]);
}
