/*
 * mlp_int.h - the body of itd_mlp_t and the model's internal steps:
 * forward/backward over a batch, gradient zeroing, and the optimizer
 * update rules (optim.c).
 *
 * Memory: three contiguous blocks of n_params floats or multiples
 * (parameters, gradients, optimizer moments), each carved into the same
 * named tensors in the same order:
 *   w[0] (hidden[0], in_dim), b[0] (hidden[0]), ..., w[L-1], b[L-1],
 *   wp (1, H), bp (1), wn (K, H), bn (K), [ww (n_dense) with conf.wide],
 *   emb (n_fields, emb_buckets, emb_dim)
 * with H = hidden[L-1] and K = ITD_NEXT__COUNT. The embedding tables come
 * last, so [0, n_dense_params) is everything updated densely every step.
 * Scratch activations are one more block, sized for max_batch.
 *
 * Private to model/ (and its tests).
 * @thread the model's owner thread.
 */
#ifndef INTENTD_MODEL_MLP_INT_H
#define INTENTD_MODEL_MLP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/mlp.h"

#define ITD_MLP_K ITD_NEXT__COUNT
/* w and b per hidden layer, two heads of two, the wide weights, the
 * embedding tables */
#define ITD_MLP_MAX_TENSORS (2 * ITD_MLP_MAX_HIDDEN + 6)

typedef struct itd_tensor_s {
        const char *name; /* "w0", "b0", ..., "wp", "bp", "wn", "bn", "emb" */
        size_t off;       /* offset in the parameter block */
        size_t n;         /* floats */
        int decay;        /* 1: L2 weight decay applies (weights, not biases) */
        int wide;         /* 1: steps with conf.wide_lr (ww, bp) */
} itd_tensor_t;

struct itd_mlp_s {
        itd_mlp_conf_t conf;
        size_t n_layers;                       /* hidden layers L */
        size_t width[ITD_MLP_MAX_HIDDEN + 1];  /* width[0] = in_dim */
        size_t in_dim;   /* n_dense + n_fields * emb_dim */
        size_t emb_cols; /* n_fields * emb_dim, 0 without embeddings */
        size_t emb_rows; /* n_fields * emb_buckets, 0 without embeddings */

        size_t n_params;
        size_t n_dense_params;
        itd_tensor_t tensors[ITD_MLP_MAX_TENSORS];
        size_t n_tensors; /* the dense tensors; emb is handled lazily */

        float *params;  /* (n_params) */
        float *grads;   /* (n_params) */
        float *moments; /* Adam: m then v, 2 n_params; AdaGrad: G; SGD: NULL */

        /* views into params */
        float *w[ITD_MLP_MAX_HIDDEN], *b[ITD_MLP_MAX_HIDDEN];
        float *wp, *bp, *wn, *bn, *ww, *emb; /* ww NULL without wide */
        /* the same views into grads */
        float *dw[ITD_MLP_MAX_HIDDEN], *db[ITD_MLP_MAX_HIDDEN];
        float *dwp, *dbp, *dwn, *dbn, *dww, *demb;

        /*
         * Input standardisation (conf.norm_inputs): running mean and
         * population variance per dense input over the training examples,
         * in double (Welford); norm_count is the (capped) count. shift and
         * scale are their float form used by forward: x' = (x - shift) *
         * scale, refreshed after each update.
         */
        double *norm_mean, *norm_var; /* (n_dense) */
        double norm_count;
        float *norm_shift, *norm_scale; /* (n_dense) */

        /*
         * Newton-fitted weights, K = n_newton = conf.n_offsets +
         * conf.n_linear (offsets first): theta, the gradient of the loss
         * by theta (summed into like every gradient), and the accumulated
         * curvature offset_h = prior + sum p (1 - p) o o^T, (K, K)
         * row-major. Doubles: offset_h only grows. One allocation (NULL
         * when K is 0), with theta_avg and the step's scratch: the
         * Cholesky factor (K, K) and three vectors (K).
         */
        size_t n_newton;
        double *theta;
        double *dtheta;
        double *offset_h;
        double *newton_l, *newton_g, *newton_step, *newton_keep;

        /*
         * Averaged parameters (conf.avg_steps): the dense tensors in the
         * parameter layout, (n_dense_params), and the offset weights.
         * NULL without averaging. predict points the views (w, b, wp, bp,
         * wn, bn, ww) and theta at them for the time of a forward pass.
         */
        float *avg;
        double *theta_avg; /* (n_newton) */

        /* scratch, (max_batch, width) each */
        float *scratch;
        float *act[ITD_MLP_MAX_HIDDEN + 1];  /* [0] input, [l+1] ReLU output */
        float *dact[ITD_MLP_MAX_HIDDEN + 1]; /* d loss / d act[l] */
        float *dz;             /* d loss / d pre-activation, widest layer */
        float *logit, *p, *dlogit;     /* (max_batch) */
        float *nlogit, *nprob, *dnlogit; /* (max_batch, K) */
        float *xn; /* (max_batch, n_dense): standardised x, the wide input */

        /* embedding rows (index f * emb_buckets + id % emb_buckets) with a
         * gradient this step; mark[row] says whether row is in the list */
        size_t *touched;
        size_t n_touched;
        uint8_t *mark;

        int64_t steps;
        uint64_t skipped;
};

/* ---- mlp_conf.c -------------------------------------------------------- */

/**
 * @brief Checks a configuration before itd_mlp_new allocates anything.
 * @returns 0, or -1 with one line naming the field and value in errstr.
 */
int itd_mlp_check_conf(const itd_mlp_conf_t *c, char *errstr,
                       size_t errstr_size);

/* ---- newton.c ---------------------------------------------------------- */

/*
 * Input k of the Newton-fitted weights in row i: an offset as it comes
 * (x), a Newton input as the wide path reads it (xw: standardised, or x).
 */
static inline float itd_mlp_newton_in(const itd_mlp_conf_t *c,
                                      const float *x, const float *xw,
                                      size_t i, size_t k) {
        if (k < c->n_offsets)
                return x[i * c->n_dense + c->offset_input[k]];
        k -= c->n_offsets;
        return k < c->n_linear ? xw[i * c->n_dense + c->linear_input[k]]
                               : 1.0f; /* the intercept */
}

/**
 * @brief Adds the B rows of x to the running input statistics and refreshes
 * the shift and scale forward uses (no-op without conf.norm_inputs).
 */
void itd_mlp_norm_update(itd_mlp_t *m, const float *x, size_t B);

/**
 * @brief The Newton step of the offsets and Newton inputs on one batch,
 * after itd_mlp_forward_backward of that batch (which left p, dtheta and
 * the standardised inputs): offset_h += sum_i wt_i p_i (1 - p_i) o_i
 * o_i^T; theta -= offset_h^-1 W dtheta with W = sum wt (dtheta is of the
 * weighted mean loss; the step wants the sum), o_i the inputs of row i as
 * forward read them. wt: (B) importance weights, or NULL for all 1. No-op
 * when there are none.
 */
void itd_mlp_offset_step(itd_mlp_t *m, const float *x, const float *wt,
                         size_t B);

/**
 * @brief Moves the averaged offset weights towards the current ones after
 * step t = steps (1-based): avg += a_t (theta - avg), a_t = max(2 / (t +
 * 1), 1 / avg_steps). The dense parameters' average moves with the same
 * a_t inside itd_mlp_apply_step. No-op without averaging.
 */
void itd_mlp_avg_update(itd_mlp_t *m);

/* ---- mlp.c ------------------------------------------------------------- */

/**
 * @brief Zeroes the touched embedding rows' gradients (the only ones
 * itd_mlp_forward_backward adds into) and the offset gradients, and empties
 * the touched list. The dense gradients need no zeroing: the next
 * itd_mlp_forward_backward overwrites them.
 */
void itd_mlp_zero_grad(itd_mlp_t *m);

/**
 * @brief Forward and backward over one batch: for loss = mean BCE +
 * loss_weight_next * mean CE (CE over rows whose next is in range), the
 * dense gradients and dtheta are set to d loss / d params (overwritten),
 * the touched embedding rows' gradients get += (so call itd_mlp_zero_grad
 * between batches). Records the touched embedding rows. wt: (B)
 * importance weights or NULL: with them, both losses' gradients are of
 * the weighted means (sum w_i l_i / sum w_i); the returned losses stay
 * unweighted means.
 * Shapes as in itd_mlp_train; B <= max_batch.
 * @returns the total loss; *bce (if not NULL) gets the mean BCE.
 */
double itd_mlp_forward_backward(itd_mlp_t *m, const float *x,
                                const uint32_t *ids, const float *y,
                                const int *next, const float *wt, size_t B,
                                double *bce);

/** @brief The total loss of itd_mlp_forward_backward, forward only. */
double itd_mlp_loss(itd_mlp_t *m, const float *x, const uint32_t *ids,
                    const float *y, const int *next, size_t B);

/* ---- optim.c ----------------------------------------------------------- */

/*
 * Update rules on n parameters w with gradient g. Every rule uses
 * g' = gscale g + l2 w (gscale from clipping; l2 = 0 for biases), that is
 * classic L2 regularisation folded into the gradient.
 */

/** @brief SGD: w -= lr g'. */
void itd_sgd_update(float *w, const float *g, size_t n, float gscale,
                    float lr, float l2);

/**
 * @brief AdaGrad (Duchi, Hazan & Singer 2011, diagonal form):
 * G += g'^2; w -= lr g' / (sqrt(G) + eps).  G: (n).
 */
void itd_adagrad_update(float *w, const float *g, float *G, size_t n,
                        float gscale, float lr, float l2, float eps);

/**
 * @brief Adam (Kingma & Ba 2015, Algorithm 1):
 * m = beta1 m + (1 - beta1) g'; v = beta2 v + (1 - beta2) g'^2;
 * m_hat = m / bc1; v_hat = v / bc2; w -= lr m_hat / (sqrt(v_hat) + eps),
 * with the bias corrections bc1 = 1 - beta1^t, bc2 = 1 - beta2^t of step t
 * (1-based), then the parameter average avg += a_avg (w - avg) when avg is
 * not NULL, in the same pass. m, v, avg: (n). Computed as (lr / bc1) m /
 * (sqrt(v) / sqrt(bc2) + eps): eight lanes with FMA where the CPU has
 * AVX2 and FMA, else four lanes of SSE2 (the same bits as the reference);
 * either way the same result for every n (the scalar tail does the same
 * operations as the lanes).
 */
void itd_adam_update(float *w, const float *g, float *m, float *v,
                     float *avg, size_t n, float gscale, float lr, float l2,
                     float beta1, float beta2, float eps, float bc1,
                     float bc2, float a_avg);
/** @brief Plain loop, same contract as itd_adam_update, no FMA. */
void itd_adam_update_ref(float *w, const float *g, float *m, float *v,
                         float *avg, size_t n, float gscale, float lr,
                         float l2, float beta1, float beta2, float eps,
                         float bc1, float bc2, float a_avg);

/**
 * @brief Global L2 norm of the gradient: dense part plus touched
 * embedding rows (the only rows with a non-zero gradient). The dense part
 * in eight float lanes with FMA where the CPU has them (blocks of 4096
 * summed in double; relative error ~1e-6).
 */
double itd_mlp_grad_norm(const itd_mlp_t *m);
/** @brief Plain loop in double, same contract as itd_mlp_grad_norm. */
double itd_mlp_grad_norm_ref(const itd_mlp_t *m);

/**
 * @brief One optimizer step over all parameters with gradients scaled by
 * gscale: dense tensors in full, embedding rows only where touched (lazy;
 * an untouched row keeps its value and moments), and the dense
 * parameters' average (conf.avg_steps) in the same pass. Uses step
 * t = steps + 1; does not zero the gradients or count the step.
 */
void itd_mlp_apply_step(itd_mlp_t *m, float gscale);
/** @brief The same step through the plain-loop update rules. */
void itd_mlp_apply_step_ref(itd_mlp_t *m, float gscale);

#endif
