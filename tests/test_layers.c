/*
 * test_layers.c - the layers of model/layers.c: the BLAS paths against
 * their plain-loop references, and every backward against central finite
 * differences of its forward.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "layers_int.h"

/*
 * BLAS vs loops: both sum IN float products, in different orders. The
 * rounding error of such a sum is below IN * 2^-24 * sum |terms|; with
 * IN <= 64 that is < 4e-6 of the magnitude, so 1e-4 relative to
 * sum |terms| leaves a wide margin and still catches any wrong index.
 */
#define BLAS_REL_TOL 1e-4

/*
 * Finite differences: central differences with step FD_EPS on float
 * parameters. The truncation error is O(eps^2 f''') (~1e-4 relative for the
 * smooth losses here); the float rounding of the forward divided by 2 eps
 * adds ~1e-5 absolute at these sizes. FD_REL_TOL relative plus FD_ABS_TOL
 * absolute covers both; a wrong gradient is off by O(1).
 */
#define FD_EPS 1e-2f
#define FD_REL_TOL 1e-2
#define FD_ABS_TOL 1e-3

static uint64_t rng_state = 12345;

static double urand(void) {
        /* xorshift64*; deterministic test data */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (double)((rng_state * 2685821657736338717ull) >> 11) *
               0x1.0p-53;
}

static void fill(float *a, size_t n, double lo, double hi) {
        for (size_t i = 0; i < n; i++)
                a[i] = (float)(lo + (hi - lo) * urand());
}

static double weighted_sum(const float *y, const float *c, size_t n) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++)
                s += (double)c[i] * y[i];
        return s;
}

static void expect_grad(double analytic, double numeric, const char *what,
                        size_t i) {
        double tol = FD_REL_TOL * fmax(fabs(analytic), fabs(numeric)) +
                     FD_ABS_TOL;
        cr_expect(fabs(analytic - numeric) <= tol,
                  "%s[%zu]: analytic %.6g vs numeric %.6g", what, i, analytic,
                  numeric);
}

/* ---- linear: BLAS vs reference ----------------------------------------- */

static void check_linear_forward(size_t B, size_t IN, size_t OUT, int bias) {
        float *x = malloc(B * IN * sizeof(float));
        float *w = malloc(OUT * IN * sizeof(float));
        float *b = malloc(OUT * sizeof(float));
        float *y = malloc(B * OUT * sizeof(float));
        float *y_ref = malloc(B * OUT * sizeof(float));
        fill(x, B * IN, -1.0, 5.0);
        fill(w, OUT * IN, -0.5, 0.5);
        fill(b, OUT, -1.0, 1.0);
        /* stale NaN in the output must not leak through beta = 0 */
        for (size_t i = 0; i < B * OUT; i++)
                y[i] = NAN;
        itd_linear_forward(y, x, w, bias ? b : NULL, B, IN, OUT);
        itd_linear_forward_ref(y_ref, x, w, bias ? b : NULL, B, IN, OUT);
        for (size_t i = 0; i < B; i++) {
                for (size_t o = 0; o < OUT; o++) {
                        double mag = bias ? fabs(b[o]) : 0.0;
                        for (size_t k = 0; k < IN; k++)
                                mag += fabs(x[i * IN + k] * w[o * IN + k]);
                        cr_expect(fabsf(y[i * OUT + o] - y_ref[i * OUT + o]) <=
                                      BLAS_REL_TOL * mag,
                                  "B=%zu y[%zu][%zu]: blas %g ref %g", B, i, o,
                                  y[i * OUT + o], y_ref[i * OUT + o]);
                }
        }
        free(x), free(w), free(b), free(y), free(y_ref);
}

Test(layers, linear_forward_blas_matches_reference_at_batch_1_7_64) {
        size_t batches[] = {1, 7, 64};
        for (size_t t = 0; t < 3; t++) {
                check_linear_forward(batches[t], 37, 19, 1);
                check_linear_forward(batches[t], 37, 19, 0);
                check_linear_forward(batches[t], 64, 1, 1);
        }
}

static void check_linear_backward(size_t B, size_t IN, size_t OUT,
                                  float beta) {
        float *x = malloc(B * IN * sizeof(float));
        float *w = malloc(OUT * IN * sizeof(float));
        float *dy = malloc(B * OUT * sizeof(float));
        float *dx = malloc(B * IN * sizeof(float));
        float *dx_ref = malloc(B * IN * sizeof(float));
        float *dw = malloc(OUT * IN * sizeof(float));
        float *dw_ref = malloc(OUT * IN * sizeof(float));
        float db[64], db_ref[64];
        fill(x, B * IN, -1.0, 5.0);
        fill(w, OUT * IN, -0.5, 0.5);
        fill(dy, B * OUT, -1.0, 1.0);
        /* dx: non-zero at beta 1 (backward must add); at beta 0 NaN, which
         * must not survive. dw, db: always overwritten, so NaN too */
        if (beta == 0.0f)
                for (size_t i = 0; i < B * IN; i++)
                        dx[i] = NAN;
        else
                fill(dx, B * IN, -1.0, 1.0);
        memcpy(dx_ref, dx, B * IN * sizeof(float));
        for (size_t i = 0; i < OUT * IN; i++)
                dw[i] = dw_ref[i] = NAN;
        for (size_t o = 0; o < OUT; o++)
                db[o] = db_ref[o] = NAN;
        itd_linear_backward(dx, dw, db, dy, x, w, B, IN, OUT, beta);
        itd_linear_backward_ref(dx_ref, dw_ref, db_ref, dy, x, w, B, IN, OUT,
                                beta);
        /* magnitudes: |dw| <= B * 5, |dx| <= 1 + OUT * 0.5 */
        double tol_dw = BLAS_REL_TOL * (1.0 + 5.0 * (double)B);
        double tol_dx = BLAS_REL_TOL * (1.0 + 0.5 * (double)OUT);
        for (size_t i = 0; i < OUT * IN; i++)
                cr_expect(fabsf(dw[i] - dw_ref[i]) <= tol_dw,
                          "B=%zu dw[%zu]: %g vs %g", B, i, dw[i], dw_ref[i]);
        for (size_t i = 0; i < B * IN; i++)
                cr_expect(fabsf(dx[i] - dx_ref[i]) <= tol_dx,
                          "B=%zu beta=%g dx[%zu]: %g vs %g", B, beta, i,
                          dx[i], dx_ref[i]);
        for (size_t o = 0; o < OUT; o++)
                cr_expect(fabsf(db[o] - db_ref[o]) <= tol_dw,
                          "B=%zu db[%zu]: %g vs %g", B, o, db[o], db_ref[o]);
        free(x), free(w), free(dy), free(dx), free(dx_ref), free(dw),
            free(dw_ref);
}

Test(layers, linear_backward_blas_matches_reference_at_batch_1_7_64) {
        size_t batches[] = {1, 7, 64};
        for (size_t t = 0; t < 3; t++)
                for (int add = 0; add <= 1; add++) {
                        check_linear_backward(batches[t], 23, 11,
                                              (float)add);
                        check_linear_backward(batches[t], 16, 1, (float)add);
                }
}

Test(layers, input_gradient_of_some_columns_matches_reference) {
        enum { B = 7, IN = 29, OUT = 13, C0 = 21, NC = 8, LD = 31 };
        float dy[B * OUT], w[OUT * IN], dx[B * LD], dx_ref[B * LD];
        fill(dy, B * OUT, -1.0, 1.0);
        fill(w, OUT * IN, -0.5, 0.5);
        for (size_t i = 0; i < B * LD; i++)
                dx[i] = dx_ref[i] = NAN; /* written columns: no NaN left */
        itd_linear_input_grad_cols(dx + 3, LD, dy, w, B, IN, OUT, C0, NC);
        itd_linear_input_grad_cols_ref(dx_ref + 3, LD, dy, w, B, IN, OUT, C0,
                                       NC);
        double tol = BLAS_REL_TOL * (1.0 + 0.5 * OUT);
        for (size_t i = 0; i < B; i++)
                for (size_t k = 0; k < LD; k++) {
                        float a = dx[i * LD + k], r = dx_ref[i * LD + k];
                        if (k < 3 || k >= 3 + NC)
                                cr_expect(isnan(a), "column %zu written", k);
                        else
                                cr_expect(fabsf(a - r) <= tol,
                                          "dx[%zu][%zu]: %g vs %g", i, k, a,
                                          r);
                }
}

/* ---- linear: finite differences ---------------------------------------- */

enum { LB = 3, LIN = 6, LOUT = 4 };

static double linear_loss(const float *x, const float *w, const float *b,
                          const float *c) {
        float y[LB * LOUT];
        itd_linear_forward(y, x, w, b, LB, LIN, LOUT);
        return weighted_sum(y, c, LB * LOUT);
}

/* numeric d loss / d p[i] by central differences; p is restored */
static double central_diff(float *p, size_t i, double (*loss)(void *),
                           void *ctx) {
        float saved = p[i];
        p[i] = saved + FD_EPS;
        double lp = loss(ctx);
        p[i] = saved - FD_EPS;
        double lm = loss(ctx);
        p[i] = saved;
        return (lp - lm) / (2.0 * (double)FD_EPS);
}

struct lin_ctx {
        float x[LB * LIN], w[LOUT * LIN], b[LOUT], c[LB * LOUT];
};

static double lin_loss_cb(void *p) {
        struct lin_ctx *k = p;
        return linear_loss(k->x, k->w, k->b, k->c);
}

Test(layers, linear_backward_matches_finite_differences) {
        struct lin_ctx k;
        fill(k.x, LB * LIN, -1.0, 2.0);
        fill(k.w, LOUT * LIN, -0.5, 0.5);
        fill(k.b, LOUT, -0.5, 0.5);
        fill(k.c, LB * LOUT, -1.0, 1.0);
        float dx[LB * LIN], dw[LOUT * LIN], db[LOUT];
        /* d (sum c y) / dy = c */
        itd_linear_backward(dx, dw, db, k.c, k.x, k.w, LB, LIN, LOUT, 0.0f);
        for (size_t i = 0; i < LOUT * LIN; i++)
                expect_grad(dw[i], central_diff(k.w, i, lin_loss_cb, &k), "dw",
                            i);
        for (size_t i = 0; i < LOUT; i++)
                expect_grad(db[i], central_diff(k.b, i, lin_loss_cb, &k), "db",
                            i);
        for (size_t i = 0; i < LB * LIN; i++)
                expect_grad(dx[i], central_diff(k.x, i, lin_loss_cb, &k), "dx",
                            i);
}

/* ---- ReLU -------------------------------------------------------------- */

enum { RN = 12 };

struct relu_ctx {
        float x[RN], c[RN];
};

static double relu_loss_cb(void *p) {
        struct relu_ctx *k = p;
        float y[RN];
        itd_relu_forward(y, k->x, RN);
        return weighted_sum(y, k->c, RN);
}

Test(layers, relu_backward_matches_finite_differences) {
        struct relu_ctx k;
        /* keep |x| >= 0.1 > FD_EPS: no difference may straddle the kink */
        for (size_t i = 0; i < RN; i++) {
                double u = 0.1 + 2.0 * urand();
                k.x[i] = (float)(i % 2 ? u : -u);
        }
        fill(k.c, RN, -1.0, 1.0);
        float y[RN], dx[RN], dx_ref[RN];
        for (size_t i = 0; i < RN; i++)
                dx[i] = dx_ref[i] = NAN; /* overwritten, never read */
        itd_relu_forward(y, k.x, RN);
        itd_relu_backward(dx, k.c, y, RN);
        itd_relu_backward_ref(dx_ref, k.c, y, RN);
        cr_expect_eq(memcmp(dx, dx_ref, sizeof dx), 0,
                     "branch-free and plain loop differ");
        for (size_t i = 0; i < RN; i++) {
                expect_grad(dx[i], central_diff(k.x, i, relu_loss_cb, &k),
                            "dx", i);
                cr_expect(i % 2 ? dx[i] == k.c[i] : dx[i] == 0.0f,
                          "relu gate wrong at %zu", i);
        }
}

Test(layers, relu_keeps_nan_so_a_bad_input_reaches_the_loss) {
        float x[3] = {NAN, -1.0f, 2.0f}, y[3];
        itd_relu_forward(y, x, 3);
        cr_assert(isnan(y[0]));
        cr_assert_eq(y[1], 0.0f);
        cr_assert_eq(y[2], 2.0f);
}

/* ---- sigmoid + BCE ----------------------------------------------------- */

enum { SB = 8 };

struct bce_ctx {
        float z[SB], y[SB];
};

static double bce_loss_cb(void *p) {
        struct bce_ctx *k = p;
        float prob[SB];
        return itd_sigmoid_bce_forward(prob, k->z, k->y, SB);
}

Test(layers, sigmoid_bce_backward_matches_finite_differences) {
        struct bce_ctx k;
        fill(k.z, SB, -6.0, 6.0);
        for (size_t i = 0; i < SB; i++)
                k.y[i] = (float)(i % 3 == 0);
        k.y[SB - 1] = 0.3f; /* soft label */
        float prob[SB], dz[SB] = {0};
        itd_sigmoid_bce_forward(prob, k.z, k.y, SB);
        itd_sigmoid_bce_backward(dz, prob, k.y, SB, 1.0f);
        for (size_t i = 0; i < SB; i++)
                expect_grad(dz[i], central_diff(k.z, i, bce_loss_cb, &k), "dz",
                            i);
}

Test(layers, sigmoid_bce_is_exact_and_finite_at_extreme_logits) {
        /* BCE(z, y) by hand: z = 0 -> log 2 each; z = +-100 stays finite */
        float z[4] = {0.0f, 0.0f, 100.0f, -100.0f};
        float y[4] = {0.0f, 1.0f, 0.0f, 0.0f};
        float prob[4];
        double sum = itd_sigmoid_bce_forward(prob, z, y, 4);
        /* 2 log 2 + 100 + 0 (log1p(e^-100) ~ 4e-44) */
        cr_assert_float_eq(sum, 2.0 * log(2.0) + 100.0, 1e-9);
        cr_assert_float_eq(prob[0], 0.5f, 1e-7);
        cr_assert(prob[2] == 1.0f && prob[3] >= 0.0f && prob[3] < 1e-40f);
}

/* ---- softmax + CE ------------------------------------------------------ */

enum { CB = 4, CK = 5 };

struct ce_ctx {
        float z[CB * CK];
        int t[CB];
};

static double ce_loss_cb(void *p) {
        struct ce_ctx *k = p;
        float probs[CB * CK];
        return itd_softmax_ce_forward(probs, k->z, k->t, CB, CK, NULL);
}

Test(layers, softmax_ce_backward_matches_finite_differences) {
        struct ce_ctx k;
        fill(k.z, CB * CK, -3.0, 3.0);
        int targets[CB] = {0, 4, -1, 2}; /* -1: row without a label */
        memcpy(k.t, targets, sizeof(targets));
        float probs[CB * CK], dz[CB * CK] = {0};
        size_t n_valid = 99;
        itd_softmax_ce_forward(probs, k.z, k.t, CB, CK, &n_valid);
        cr_assert_eq(n_valid, 3);
        for (size_t i = 0; i < CB; i++) {
                double s = 0.0;
                for (size_t c = 0; c < CK; c++)
                        s += probs[i * CK + c];
                cr_expect_float_eq(s, 1.0, 1e-6, "row %zu sums to %g", i, s);
        }
        itd_softmax_ce_backward(dz, probs, k.t, CB, CK, 1.0f);
        for (size_t i = 0; i < CB * CK; i++)
                expect_grad(dz[i], central_diff(k.z, i, ce_loss_cb, &k), "dz",
                            i);
        for (size_t c = 0; c < CK; c++)
                cr_expect_eq(dz[2 * CK + c], 0.0f, "unlabelled row has grad");
}

Test(layers, softmax_ce_stays_finite_at_large_logits) {
        float z[3] = {1000.0f, 0.0f, -1000.0f}, probs[3];
        int t = 1;
        double ce = itd_softmax_ce_forward(probs, z, &t, 1, 3, NULL);
        cr_assert_float_eq(ce, 1000.0, 1e-6);
        cr_assert_float_eq(probs[0], 1.0f, 1e-7);
}

/* ---- embeddings -------------------------------------------------------- */

enum { EB = 3, EF = 2, EK = 3, ER = 5, EE = 4, ELD = 10 };
#define E_ ITD_SPARSE_NONE

struct emb_ctx {
        uint32_t ids[EB * EF * EK];
        float emb[EF * ER * EE];
        float c[EB * ELD];
};

static double emb_loss_cb(void *p) {
        struct emb_ctx *k = p;
        float y[EB * ELD] = {0};
        itd_embedding_forward(y, ELD, k->ids, k->emb, EB, EF, EK, ER, EE);
        return weighted_sum(y, k->c, EB * ELD);
}

static const uint32_t emb_ids[EB * EF * EK] = {
    /* row 0: field 0 ids 1, 6 (= row 1 again), field 1 id 2 */
    1, 6, E_, 2, E_, E_,
    /* row 1: field 0 empty, field 1 ids 0, 3, 4 */
    E_, E_, E_, 0, 3, 4,
    /* row 2: field 0 id 4, field 1 empty */
    E_, 4, E_, E_, E_, E_,
};

Test(layers, embedding_forward_is_the_mean_of_the_rows_and_zero_when_empty) {
        struct emb_ctx k;
        memcpy(k.ids, emb_ids, sizeof(emb_ids));
        for (size_t i = 0; i < EF * ER * EE; i++)
                k.emb[i] = (float)i;
        float y[EB * ELD];
        for (size_t i = 0; i < EB * ELD; i++)
                y[i] = -7.0f; /* columns beyond F*E must stay untouched */
        itd_embedding_forward(y, ELD, k.ids, k.emb, EB, EF, EK, ER, EE);
        for (size_t e = 0; e < EE; e++) {
                /* id 1 twice (6 % 5 = 1): the mean is row 1 itself */
                cr_expect_float_eq(y[0 * ELD + e], k.emb[1 * EE + e], 1e-6);
                cr_expect_float_eq(y[0 * ELD + EE + e],
                                   k.emb[(ER + 2) * EE + e], 1e-6);
                cr_expect_eq(y[1 * ELD + e], 0.0f, "empty field not zero");
                float mean = (k.emb[(ER + 0) * EE + e] +
                              k.emb[(ER + 3) * EE + e] +
                              k.emb[(ER + 4) * EE + e]) / 3.0f;
                cr_expect_float_eq(y[1 * ELD + EE + e], mean, 1e-5);
                cr_expect_eq(y[2 * ELD + EE + e], 0.0f, "empty field");
        }
        for (size_t i = 0; i < EB; i++)
                for (size_t col = EF * EE; col < ELD; col++)
                        cr_expect_eq(y[i * ELD + col], -7.0f, "wrote past F*E");
}

Test(layers, embedding_backward_matches_finite_differences) {
        struct emb_ctx k;
        memcpy(k.ids, emb_ids, sizeof(emb_ids));
        fill(k.emb, EF * ER * EE, -1.0, 1.0);
        fill(k.c, EB * ELD, -1.0, 1.0);
        float demb[EF * ER * EE] = {0};
        itd_embedding_backward(demb, k.c, ELD, k.ids, EB, EF, EK, ER, EE);
        for (size_t i = 0; i < EF * ER * EE; i++)
                expect_grad(demb[i], central_diff(k.emb, i, emb_loss_cb, &k),
                            "demb", i);
        /* rows no id maps to have no gradient: field 0 rows 0, 2, 3 */
        size_t unused[] = {0, 2, 3};
        for (size_t u = 0; u < 3; u++)
                for (size_t e = 0; e < EE; e++)
                        cr_expect_eq(demb[unused[u] * EE + e], 0.0f,
                                     "untouched row %zu has grad", unused[u]);
}
