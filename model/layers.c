/*
 * layers.c - forward and backward of the network's layers (see
 * layers_int.h for the shapes): linear (OpenBLAS, with plain-loop
 * references), ReLU, the fused sigmoid/BCE and softmax/CE losses, and
 * mean-pooled embeddings.
 */
#include <math.h>
#include <string.h>

#include <cblas.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "layers_int.h"

/* ---- linear ------------------------------------------------------------ */

void itd_linear_forward(float *y, const float *x, const float *w,
                        const float *b, size_t B, size_t IN, size_t OUT) {
        /* y starts as the bias (beta = 1) or zero (beta = 0). */
        float beta = 0.0f;
        if (b) {
                for (size_t i = 0; i < B; i++)
                        memcpy(y + i * OUT, b, OUT * sizeof(float));
                beta = 1.0f;
        }
        if (B == 1) {
                /*
                 * y (OUT) = w (OUT, IN) x (IN): ~6x faster than sgemm at M=1.
                 * Zero y rather than trust beta = 0 to ignore what it held
                 * (a scal by 0 keeps a stale NaN in some BLAS versions).
                 */
                if (!b)
                        memset(y, 0, OUT * sizeof(float));
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)OUT, (int)IN,
                            1.0f, w, (int)IN, x, 1, 1.0f, y, 1);
                return;
        }
        if (OUT == 1) {
                /* y (B) = x (B, IN) w (IN): a head's logit; sgemv skips
                 * sgemm's packing of a one-column operand */
                if (!b)
                        memset(y, 0, B * sizeof(float));
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)B, (int)IN,
                            1.0f, x, (int)IN, w, 1, 1.0f, y, 1);
                return;
        }
        /* y (B, OUT) = x (B, IN) w^T (IN, OUT) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)OUT,
                    (int)IN, 1.0f, x, (int)IN, w, (int)IN, beta, y, (int)OUT);
}

void itd_linear_forward_ref(float *y, const float *x, const float *w,
                            const float *b, size_t B, size_t IN, size_t OUT) {
        for (size_t i = 0; i < B; i++) {
                const float *x_i = x + i * IN;
                for (size_t o = 0; o < OUT; o++) {
                        const float *w_o = w + o * IN;
                        float acc = b ? b[o] : 0.0f;
                        for (size_t k = 0; k < IN; k++)
                                acc += x_i[k] * w_o[k];
                        y[i * OUT + o] = acc;
                }
        }
}

void itd_linear_backward(float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, size_t B, size_t IN,
                         size_t OUT, float beta) {
        if (OUT == 1) {
                /*
                 * A head of one output: dw (IN) = x^T (IN, B) dy (B) by
                 * sgemv, dx (B, IN) = beta dx + dy w, an outer product the
                 * compiler vectorises; sgemm would pack both operands for
                 * a rank-one product.
                 */
                memset(dw, 0, IN * sizeof(float));
                cblas_sgemv(CblasRowMajor, CblasTrans, (int)B, (int)IN, 1.0f,
                            x, (int)IN, dy, 1, 1.0f, dw, 1);
        } else {
                /* dw (OUT, IN) = dy^T (OUT, B) x (B, IN); sgemm with
                 * beta 0 writes without reading */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OUT,
                            (int)IN, (int)B, 1.0f, dy, (int)OUT, x, (int)IN,
                            0.0f, dw, (int)IN);
        }
        if (db) {
                memcpy(db, dy, OUT * sizeof(float));
                for (size_t i = 1; i < B; i++)
                        for (size_t o = 0; o < OUT; o++)
                                db[o] += dy[i * OUT + o];
        }
        if (!dx)
                return;
        if (OUT == 1) {
                for (size_t i = 0; i < B; i++) {
                        const float g = dy[i];
                        float *dx_i = dx + i * IN;
                        if (beta == 0.0f)
                                for (size_t k = 0; k < IN; k++)
                                        dx_i[k] = g * w[k];
                        else
                                for (size_t k = 0; k < IN; k++)
                                        dx_i[k] += g * w[k];
                }
                return;
        }
        if (B == 1) {
                /* dx (IN) = beta dx + w^T (IN, OUT) dy (OUT); zeroed
                 * rather than scaled by 0 (a scal by 0 keeps a stale NaN
                 * in some BLAS versions) */
                if (beta == 0.0f)
                        memset(dx, 0, IN * sizeof(float));
                cblas_sgemv(CblasRowMajor, CblasTrans, (int)OUT, (int)IN, 1.0f,
                            w, (int)IN, dy, 1, 1.0f, dx, 1);
                return;
        }
        /* dx (B, IN) = beta dx + dy (B, OUT) w (OUT, IN) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)IN,
                    (int)OUT, 1.0f, dy, (int)OUT, w, (int)IN, beta, dx,
                    (int)IN);
}

void itd_linear_backward_ref(float *dx, float *dw, float *db, const float *dy,
                             const float *x, const float *w, size_t B,
                             size_t IN, size_t OUT, float beta) {
        memset(dw, 0, OUT * IN * sizeof(float));
        if (db)
                memset(db, 0, OUT * sizeof(float));
        if (dx && beta == 0.0f)
                memset(dx, 0, B * IN * sizeof(float));
        for (size_t i = 0; i < B; i++) {
                const float *x_i = x + i * IN;
                const float *dy_i = dy + i * OUT;
                for (size_t o = 0; o < OUT; o++) {
                        float g = dy_i[o];
                        float *dw_o = dw + o * IN;
                        const float *w_o = w + o * IN;
                        for (size_t k = 0; k < IN; k++) {
                                dw_o[k] += g * x_i[k];
                                if (dx)
                                        dx[i * IN + k] += g * w_o[k];
                        }
                        if (db)
                                db[o] += g;
                }
        }
}

void itd_linear_input_grad_cols(float *dx, size_t ldx, const float *dy,
                                const float *w, size_t B, size_t IN,
                                size_t OUT, size_t col0, size_t ncols) {
        /* dx[:, 0:ncols] (B, ncols) = dy (B, OUT) w[:, col0:col0+ncols]
         * (OUT, ncols), w's rows still IN apart */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B,
                    (int)ncols, (int)OUT, 1.0f, dy, (int)OUT, w + col0,
                    (int)IN, 0.0f, dx, (int)ldx);
}

void itd_linear_input_grad_cols_ref(float *dx, size_t ldx, const float *dy,
                                    const float *w, size_t B, size_t IN,
                                    size_t OUT, size_t col0, size_t ncols) {
        for (size_t i = 0; i < B; i++)
                for (size_t k = 0; k < ncols; k++) {
                        float acc = 0.0f;
                        for (size_t o = 0; o < OUT; o++)
                                acc += dy[i * OUT + o] * w[o * IN + col0 + k];
                        dx[i * ldx + k] = acc;
                }
}

/* ---- ReLU -------------------------------------------------------------- */

/*
 * Both ReLU directions as a compare and a mask, four lanes at a time: no
 * branch (the sign of a unit is a coin flip, so a branch mispredicts half
 * the time), and in place (y == x, dx == dy) without the compiler's alias
 * check sending the call to its scalar loop. The tails and the plain
 * references give the same bits.
 */
void itd_relu_forward(float *y, const float *x, size_t n) {
        /* `x < 0 ? 0 : x` rather than `x > 0 ? x : 0`: NaN must survive */
        size_t i = 0;
#ifdef __SSE2__
        const __m128 zero = _mm_setzero_ps();
        for (; i + 4 <= n; i += 4) {
                __m128 xi = _mm_loadu_ps(x + i);
                _mm_storeu_ps(y + i,
                              _mm_andnot_ps(_mm_cmplt_ps(xi, zero), xi));
        }
#endif
        for (; i < n; i++)
                y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void itd_relu_backward(float *dx, const float *dy, const float *y, size_t n) {
        size_t i = 0;
#ifdef __SSE2__
        const __m128 zero = _mm_setzero_ps();
        for (; i + 4 <= n; i += 4) {
                __m128 on = _mm_cmpgt_ps(_mm_loadu_ps(y + i), zero);
                _mm_storeu_ps(dx + i, _mm_and_ps(on, _mm_loadu_ps(dy + i)));
        }
#endif
        for (; i < n; i++)
                dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void itd_relu_backward_ref(float *dx, const float *dy, const float *y,
                           size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (y[i] > 0.0f)
                        dx[i] = dy[i];
                else
                        dx[i] = 0.0f;
        }
}

/* ---- sigmoid + BCE ----------------------------------------------------- */

static float sigmoidf(float z) {
        /* never exp() of a large positive number */
        if (z >= 0.0f)
                return 1.0f / (1.0f + expf(-z));
        float e = expf(z);
        return e / (1.0f + e);
}

double itd_sigmoid_bce_forward(float *p, const float *z, const float *y,
                               size_t B) {
        double sum = 0.0;
        for (size_t i = 0; i < B; i++) {
                p[i] = sigmoidf(z[i]);
                if (!y)
                        continue;
                double zi = z[i];
                sum += fmax(zi, 0.0) - zi * y[i] + log1p(exp(-fabs(zi)));
        }
        return sum;
}

void itd_sigmoid_bce_backward(float *dz, const float *p, const float *y,
                              size_t B, float scale) {
        for (size_t i = 0; i < B; i++)
                dz[i] = scale * (p[i] - y[i]);
}

/* ---- softmax + CE ------------------------------------------------------ */

double itd_softmax_ce_forward(float *probs, const float *z, const int *target,
                              size_t B, size_t K, size_t *n_valid) {
        double sum = 0.0;
        size_t valid = 0;
        for (size_t i = 0; i < B; i++) {
                const float *z_i = z + i * K;
                float *p_i = probs + i * K;
                /* subtract the max: exp() cannot overflow, result equal */
                float zmax = z_i[0];
                for (size_t k = 1; k < K; k++)
                        if (z_i[k] > zmax)
                                zmax = z_i[k];
                double norm = 0.0;
                for (size_t k = 0; k < K; k++)
                        norm += exp((double)z_i[k] - zmax);
                for (size_t k = 0; k < K; k++)
                        p_i[k] = (float)(exp((double)z_i[k] - zmax) / norm);
                if (!target || target[i] < 0 || (size_t)target[i] >= K)
                        continue;
                /* -log softmax = log sum exp - z_t, exact even when p_t -> 0 */
                sum += log(norm) + zmax - z_i[target[i]];
                valid++;
        }
        if (n_valid)
                *n_valid = valid;
        return sum;
}

void itd_softmax_ce_backward(float *dz, const float *probs, const int *target,
                             size_t B, size_t K, float scale) {
        for (size_t i = 0; i < B; i++) {
                if (target[i] < 0 || (size_t)target[i] >= K) {
                        memset(dz + i * K, 0, K * sizeof(float));
                        continue;
                }
                for (size_t k = 0; k < K; k++) {
                        float onehot = (size_t)target[i] == k ? 1.0f : 0.0f;
                        dz[i * K + k] = scale * (probs[i * K + k] - onehot);
                }
        }
}

/* ---- embeddings: mean pooling ------------------------------------------ */

static size_t count_ids(const uint32_t *ids_f, size_t K) {
        size_t c = 0;
        for (size_t k = 0; k < K; k++)
                c += ids_f[k] != ITD_SPARSE_NONE;
        return c;
}

/*
 * The rows a batch uses are spread over tables far larger than the caches
 * (three fields of 65536 rows of 32 bytes at the defaults), nearly every
 * one a miss. Asked for all at once before the arithmetic, the misses
 * overlap; met one at a time inside it, each waits out its own.
 */
#define ITD_PREFETCH_LINES(row, bytes, rw)                                    \
        do {                                                                  \
                const char *p_ = (const char *)(row);                         \
                for (size_t o_ = 0; o_ < (bytes); o_ += 64)                   \
                        __builtin_prefetch(p_ + o_, rw, 3);                   \
                __builtin_prefetch(p_ + (bytes) - 1, rw, 3);                  \
        } while (0)

void itd_prefetch_row(const float *row, size_t n) {
        ITD_PREFETCH_LINES(row, n * sizeof(float), 0);
}

void itd_prefetch_row_w(float *row, size_t n) {
        ITD_PREFETCH_LINES(row, n * sizeof(float), 1);
}

static void prefetch_rows(const float *tab, const uint32_t *ids, size_t B,
                          size_t F, size_t K, size_t R, size_t E, int write) {
        for (size_t i = 0; i < B; i++)
                for (size_t f = 0; f < F; f++)
                        for (size_t k = 0; k < K; k++) {
                                uint32_t id = ids[(i * F + f) * K + k];
                                if (id == ITD_SPARSE_NONE)
                                        continue;
                                const float *row = tab + (f * R + id % R) * E;
                                size_t bytes = E * sizeof(float);
                                if (write)
                                        ITD_PREFETCH_LINES(row, bytes, 1);
                                else
                                        ITD_PREFETCH_LINES(row, bytes, 0);
                        }
}

void itd_embedding_forward(float *y, size_t ldy, const uint32_t *ids,
                           const float *emb, size_t B, size_t F, size_t K,
                           size_t R, size_t E) {
        prefetch_rows(emb, ids, B, F, K, R, E, 0);
        for (size_t i = 0; i < B; i++) {
                for (size_t f = 0; f < F; f++) {
                        const uint32_t *ids_f = ids + i * F * K + f * K;
                        float *y_f = y + i * ldy + f * E;
                        memset(y_f, 0, E * sizeof(float));
                        size_t c = count_ids(ids_f, K);
                        if (c == 0)
                                continue;
                        float inv = 1.0f / (float)c;
                        for (size_t k = 0; k < K; k++) {
                                if (ids_f[k] == ITD_SPARSE_NONE)
                                        continue;
                                const float *row =
                                    emb + (f * R + ids_f[k] % R) * E;
                                for (size_t e = 0; e < E; e++)
                                        y_f[e] += inv * row[e];
                        }
                }
        }
}

void itd_embedding_backward(float *demb, const float *dy, size_t ldy,
                            const uint32_t *ids, size_t B, size_t F, size_t K,
                            size_t R, size_t E) {
        prefetch_rows(demb, ids, B, F, K, R, E, 1);
        for (size_t i = 0; i < B; i++) {
                for (size_t f = 0; f < F; f++) {
                        const uint32_t *ids_f = ids + i * F * K + f * K;
                        const float *dy_f = dy + i * ldy + f * E;
                        size_t c = count_ids(ids_f, K);
                        if (c == 0)
                                continue;
                        float inv = 1.0f / (float)c;
                        for (size_t k = 0; k < K; k++) {
                                if (ids_f[k] == ITD_SPARSE_NONE)
                                        continue;
                                float *drow =
                                    demb + (f * R + ids_f[k] % R) * E;
                                for (size_t e = 0; e < E; e++)
                                        drow[e] += inv * dy_f[e];
                        }
                }
        }
}
