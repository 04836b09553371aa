/*
 * layers_int.h - the network's layers, one function per layer and direction.
 *
 * All arrays are float, row-major, with the shapes given in each comment.
 * Forward functions overwrite their outputs, and so do backward functions
 * (no pass zeroes a gradient buffer first): every weight and bias of this
 * network has its gradient from one call. Two exceptions add: the linear
 * layer's input gradient when asked (beta 1: the second head into the
 * trunk output), and the embeddings, whose rows several examples share. Each BLAS or vectorised path
 * has a plain-loop reference beside it (`_ref`) that the tests compare
 * against.
 *
 * Private to model/ (and its tests).
 * @thread any; the functions keep no state.
 */
#ifndef INTENTD_MODEL_LAYERS_INT_H
#define INTENTD_MODEL_LAYERS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/types.h" /* ITD_SPARSE_NONE */

/* ---- linear: y = x w^T + b --------------------------------------------- */

/**
 * @brief y = x w^T + b. cblas_sgemv at B == 1 or OUT == 1, cblas_sgemm
 * otherwise.
 * x: (B, IN); w: (OUT, IN); b: (OUT) or NULL; y: (B, OUT), overwritten.
 */
void itd_linear_forward(float *y, const float *x, const float *w,
                        const float *b, size_t B, size_t IN, size_t OUT);
/** @brief Plain loops, same contract as itd_linear_forward. */
void itd_linear_forward_ref(float *y, const float *x, const float *w,
                            const float *b, size_t B, size_t IN, size_t OUT);

/**
 * @brief Gradients of y = x w^T + b given dy. dw and db are overwritten
 * (never read: a stale NaN in them does not survive); dx = beta dx + dy w
 * with beta 0 (overwrite, not read) or 1 (add).
 * dy: (B, OUT); x: (B, IN); w: (OUT, IN);
 * dx: (B, IN) or NULL;  dw: (OUT, IN) = dy^T x;
 * db: (OUT) or NULL, = sum over B of dy.
 */
void itd_linear_backward(float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, size_t B, size_t IN,
                         size_t OUT, float beta);
/** @brief Plain loops, same contract as itd_linear_backward. */
void itd_linear_backward_ref(float *dx, float *dw, float *db, const float *dy,
                             const float *x, const float *w, size_t B,
                             size_t IN, size_t OUT, float beta);

/**
 * @brief The input gradient of y = x w^T + b in columns col0 ..
 * col0 + ncols - 1 only, overwritten: what a caller needs when the other
 * inputs have no parameters behind them (the dense features in front of
 * the embeddings).
 * dy: (B, OUT); w: (OUT, IN); dx: rows of stride ldx, columns 0..ncols-1
 * written with d loss / d x[:, col0 + k].
 */
void itd_linear_input_grad_cols(float *dx, size_t ldx, const float *dy,
                                const float *w, size_t B, size_t IN,
                                size_t OUT, size_t col0, size_t ncols);
/** @brief Plain loops, same contract as itd_linear_input_grad_cols. */
void itd_linear_input_grad_cols_ref(float *dx, size_t ldx, const float *dy,
                                    const float *w, size_t B, size_t IN,
                                    size_t OUT, size_t col0, size_t ncols);

/* ---- ReLU -------------------------------------------------------------- */

/**
 * @brief y = max(x, 0); NaN propagates (so a bad input shows in the loss).
 * x, y: (n); y may equal x (in place).
 */
void itd_relu_forward(float *y, const float *x, size_t n);
/**
 * @brief dx = dy where the output was positive, else 0 (branch-free).
 * y: (n) the forward output; dy, dx: (n); dx may equal dy (in place).
 */
void itd_relu_backward(float *dx, const float *dy, const float *y, size_t n);
/** @brief Plain loop with a branch, same contract as itd_relu_backward. */
void itd_relu_backward_ref(float *dx, const float *dy, const float *y,
                           size_t n);

/* ---- purchase head: sigmoid + binary cross-entropy, fused -------------- */

/**
 * @brief p = sigmoid(z); returns sum over B of
 * BCE = max(z, 0) - z y + log(1 + exp(-|z|)), the stable form of
 * -(y log p + (1 - y) log(1 - p)).
 * z: (B) logits; y: (B) labels in [0, 1], or NULL to compute p only (returns
 * 0); p: (B).
 */
double itd_sigmoid_bce_forward(float *p, const float *z, const float *y,
                               size_t B);
/**
 * @brief dz = scale (p - y), the gradient of scale * BCE.
 * p: (B) from the forward; y: (B); dz: (B).
 */
void itd_sigmoid_bce_backward(float *dz, const float *p, const float *y,
                              size_t B, float scale);

/* ---- next-action head: softmax + cross-entropy, fused ------------------ */

/**
 * @brief probs = softmax(z) per row; returns the sum over rows of
 * CE = -log probs[target], counting only rows whose target is in 0..K-1
 * (*n_valid gets how many; other rows have no label).
 * z: (B, K); target: (B) or NULL (probs only, returns 0); probs: (B, K).
 */
double itd_softmax_ce_forward(float *probs, const float *z, const int *target,
                              size_t B, size_t K, size_t *n_valid);
/**
 * @brief dz = scale (probs - onehot(target)) for rows with a valid target,
 * 0 for the others.
 * probs: (B, K); target: (B); dz: (B, K).
 */
void itd_softmax_ce_backward(float *dz, const float *probs, const int *target,
                             size_t B, size_t K, float scale);

/* ---- embeddings: mean of the rows of a field's ids --------------------- */

/**
 * @brief Per example and field, the mean of the embedding rows of the
 * field's non-empty ids (zeros when it has none).
 * ids: (B, F * K), slot ITD_SPARSE_NONE unused, id taken modulo R;
 * emb: (F, R, E), one table of R rows per field;
 * y: rows of stride ldy; columns f * E .. f * E + E - 1 of row b are written.
 */
void itd_embedding_forward(float *y, size_t ldy, const uint32_t *ids,
                           const float *emb, size_t B, size_t F, size_t K,
                           size_t R, size_t E);
/**
 * @brief Asks the cache for the lines of row[0 .. n) ahead of its use, to
 * read (itd_prefetch_row) or to write (itd_prefetch_row_w); changes
 * nothing else, and a bad address does not fault.
 */
void itd_prefetch_row(const float *row, size_t n);
void itd_prefetch_row_w(float *row, size_t n);
/**
 * @brief demb[row] += dy / count for every id that fed the mean.
 * dy: rows of stride ldy, columns as in the forward; demb: (F, R, E).
 */
void itd_embedding_backward(float *demb, const float *dy, size_t ldy,
                            const uint32_t *ids, size_t B, size_t F, size_t K,
                            size_t R, size_t E);

#endif
