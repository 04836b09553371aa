/*
 * mlp.c - the online network: construction and seeded initialisation,
 * batch scoring, and one training step (forward, backward, clip, update).
 *
 * Input row = dense features (n_dense) followed, per sparse field, by the
 * mean of the embedding rows of its ids; a trunk of linear + ReLU layers;
 * a purchase head (sigmoid, BCE) and a next-action head (softmax over
 * ITD_NEXT__COUNT, CE). Layer math lives in layers.c, update rules in
 * optim.c, the defaults and their check in mlp_conf.c, the input
 * statistics and the Newton step in newton.c; the memory layout is
 * described in mlp_int.h.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "intentd/mem.h"
#include "layers_int.h"
#include "mlp_int.h"

/*
 * Initial bias of the purchase head: logit(0.05). Purchases are rare, and an
 * online run is judged from its first event on, so starting at p = 0.5 would
 * cost log loss until the bias has caught up.
 */
#define PURCHASE_BASE_RATE 0.05

/*
 * Standard deviation of the initial embedding entries. Small next to the
 * dense inputs (roughly [-1, 5]) so that hash rows start as mild noise and
 * grow only with evidence.
 */
#define EMB_INIT_STD 0.05

/* ---- seeded random numbers (initialisation only) ----------------------- */

/* splitmix64 (Steele, Lea & Flood 2014): tiny, full period, good mixing */
static uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
}

/* uniform in (0, 1]: never 0, so log() below is finite */
static double uniform01(uint64_t *state) {
        return (double)((splitmix64(state) >> 11) + 1) * 0x1.0p-53;
}

/* standard normal, Box-Muller (one of the pair is enough here) */
static double normal(uint64_t *state) {
        double u1 = uniform01(state), u2 = uniform01(state);
        return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static void fill_normal(float *w, size_t n, double std, uint64_t *state) {
        for (size_t i = 0; i < n; i++)
                w[i] = (float)(std * normal(state));
}

/* ---- construction ------------------------------------------------------ */

static void add_tensor(itd_mlp_t *m, const char *name, size_t n, int decay,
                       int wide) {
        itd_tensor_t *t = &m->tensors[m->n_tensors++];
        t->name = name;
        t->off = m->n_params;
        t->n = n;
        t->decay = decay;
        t->wide = wide;
        m->n_params += n;
}

/*
 * Points the parameter views (w, b, wp, bp, wn, bn, ww) into base, a block
 * in the parameter layout: the parameters, or their average (scoring).
 */
static void point_views(itd_mlp_t *m, float *base) {
        size_t ti = 0;
        for (size_t l = 0; l < m->n_layers; l++) {
                m->w[l] = base + m->tensors[ti++].off;
                m->b[l] = base + m->tensors[ti++].off;
        }
        m->wp = base + m->tensors[ti++].off;
        m->bp = base + m->tensors[ti++].off;
        m->wn = base + m->tensors[ti++].off;
        m->bn = base + m->tensors[ti++].off;
        if (ti < m->n_tensors) /* the wide path's weights */
                m->ww = base + m->tensors[ti].off;
}

itd_mlp_t *itd_mlp_new(const itd_mlp_conf_t *conf, char *errstr,
                       size_t errstr_size) {
        static const char *const wname[] = {"w0", "w1", "w2", "w3"};
        static const char *const bname[] = {"b0", "b1", "b2", "b3"};
        if (itd_mlp_check_conf(conf, errstr, errstr_size))
                return NULL;
        /* the daemon shares two cores with librdkafka, and a second BLAS
         * thread helps only from about 32 rows on */
        openblas_set_num_threads(1);

        itd_mlp_t *m = itd_xcalloc(1, sizeof(*m));
        m->conf = *conf;
        const itd_mlp_conf_t *c = &m->conf;
        const size_t K = ITD_MLP_K;
        int emb = c->emb_dim > 0 && c->n_fields > 0 && c->ids_per_field > 0;
        m->emb_cols = emb ? c->n_fields * c->emb_dim : 0;
        m->emb_rows = emb ? c->n_fields * c->emb_buckets : 0;
        m->in_dim = c->n_dense + m->emb_cols;
        m->n_layers = c->n_hidden;
        m->width[0] = m->in_dim;
        for (size_t l = 0; l < m->n_layers; l++)
                m->width[l + 1] = c->hidden[l];
        const size_t H = m->width[m->n_layers];

        /* carve the tensors: dense ones first, the embedding tables last */
        for (size_t l = 0; l < m->n_layers; l++) {
                add_tensor(m, wname[l], m->width[l + 1] * m->width[l], 1,
                           0);
                add_tensor(m, bname[l], m->width[l + 1], 0, 0);
        }
        const int wide = c->wide && c->n_dense > 0;
        add_tensor(m, "wp", H, 1, 0);
        add_tensor(m, "bp", 1, 0, wide);
        add_tensor(m, "wn", K * H, 1, 0);
        add_tensor(m, "bn", K, 0, 0);
        if (wide)
                add_tensor(m, "ww", c->n_dense, 1, 1);
        m->n_dense_params = m->n_params;
        m->n_params += m->emb_rows * c->emb_dim;

        m->params = itd_xcalloc(m->n_params, sizeof(float));
        m->grads = itd_xcalloc(m->n_params, sizeof(float));
        size_t n_moments = c->optimizer == ITD_OPT_ADAM      ? 2
                           : c->optimizer == ITD_OPT_ADAGRAD ? 1
                                                             : 0;
        m->moments = n_moments
                         ? itd_xcalloc(n_moments * m->n_params, sizeof(float))
                         : NULL;

        point_views(m, m->params);
        size_t ti = 0;
        for (size_t l = 0; l < m->n_layers; l++) {
                m->dw[l] = m->grads + m->tensors[ti++].off;
                m->db[l] = m->grads + m->tensors[ti++].off;
        }
        m->dwp = m->grads + m->tensors[ti++].off;
        m->dbp = m->grads + m->tensors[ti++].off;
        m->dwn = m->grads + m->tensors[ti++].off;
        m->dbn = m->grads + m->tensors[ti++].off;
        if (wide)
                m->dww = m->grads + m->tensors[ti++].off;
        m->emb = m->params + m->n_dense_params;
        m->demb = m->grads + m->n_dense_params;

        /* scratch: activations and their gradients for max_batch rows */
        const size_t MB = c->max_batch;
        size_t widest = 0, n_scratch = 0;
        for (size_t l = 0; l <= m->n_layers; l++) {
                n_scratch += 2 * MB * m->width[l];
                if (l > 0 && m->width[l] > widest)
                        widest = m->width[l];
        }
        n_scratch += MB * widest + 3 * MB + 3 * MB * K + MB * c->n_dense;
        m->scratch = itd_xcalloc(n_scratch, sizeof(float));
        float *s = m->scratch;
        for (size_t l = 0; l <= m->n_layers; l++) {
                m->act[l] = s, s += MB * m->width[l];
                m->dact[l] = s, s += MB * m->width[l];
        }
        m->dz = s, s += MB * widest;
        m->logit = s, s += MB;
        m->p = s, s += MB;
        m->dlogit = s, s += MB;
        m->nlogit = s, s += MB * K;
        m->nprob = s, s += MB * K;
        m->dnlogit = s, s += MB * K;
        m->xn = s, s += MB * c->n_dense;

        if (c->norm_inputs && c->n_dense) {
                m->norm_mean = itd_xcalloc(2 * c->n_dense, sizeof(double));
                m->norm_var = m->norm_mean + c->n_dense;
                m->norm_shift = itd_xcalloc(2 * c->n_dense, sizeof(float));
                m->norm_scale = m->norm_shift + c->n_dense;
                /* no statistics yet: the identity */
                for (size_t d = 0; d < c->n_dense; d++)
                        m->norm_scale[d] = 1.0f;
        }
        if (c->avg_steps)
                m->avg = itd_xcalloc(m->n_dense_params, sizeof(float));
        if (emb) {
                m->mark = itd_xcalloc(m->emb_rows, 1);
                m->touched = itd_xmalloc(MB * c->n_fields * c->ids_per_field *
                                         sizeof(size_t));
        }

        /*
         * Initial weights, in a fixed order from one seeded stream:
         * He normal for the ReLU layers (He et al. 2015, std sqrt(2/fan_in)),
         * Glorot normal for the linear heads (Glorot & Bengio 2010,
         * std sqrt(2/(fan_in+fan_out))), biases 0 except the purchase head.
         */
        uint64_t rng = c->seed;
        for (size_t l = 0; l < m->n_layers; l++)
                fill_normal(m->w[l], m->width[l + 1] * m->width[l],
                            sqrt(2.0 / (double)m->width[l]), &rng);
        fill_normal(m->wp, H, sqrt(2.0 / (double)(H + 1)), &rng);
        /*
         * With the wide path the network's purchase output starts silent:
         * a random trunk is a random function of the inputs (its slope on
         * the purchase rate as likely negative as positive), and in an
         * online run every prediction counts, so the first ones come from
         * the linear path, which learns fast; the trunk still gets its
         * gradient through wp from the first step on.
         */
        if (wide || c->n_linear)
                memset(m->wp, 0, H * sizeof(float));
        fill_normal(m->wn, K * H, sqrt(2.0 / (double)(H + K)), &rng);
        m->bp[0] = (float)log(PURCHASE_BASE_RATE / (1.0 - PURCHASE_BASE_RATE));
        /* Newton weights at their prior mean (1 / n_offsets for an
         * offset, 0 for a Newton input), the curvature at the prior's */
        const size_t NK = c->n_offsets + c->n_linear + (c->n_linear > 0);
        m->n_newton = NK;
        if (NK) {
                double *blk = itd_xcalloc(6 * NK + 2 * NK * NK,
                                          sizeof(double));
                m->theta = blk, blk += NK;
                m->dtheta = blk, blk += NK;
                m->theta_avg = blk, blk += NK;
                m->newton_g = blk, blk += NK;
                m->newton_step = blk, blk += NK;
                m->newton_keep = blk, blk += NK;
                m->offset_h = blk, blk += NK * NK;
                m->newton_l = blk;
        }
        for (size_t k = 0; k < NK; k++) {
                m->theta[k] = k < c->n_offsets ? 1.0 / (double)c->n_offsets
                                               : 0.0;
                m->offset_h[k * NK + k] = k < c->n_offsets ? c->offset_prior
                                                           : c->linear_prior;
                if (k == NK - 1 && c->n_linear)
                        m->offset_h[k * NK + k] = c->intercept_prior;
        }
        if (emb)
                fill_normal(m->emb, m->emb_rows * c->emb_dim, EMB_INIT_STD,
                            &rng);
        /* before any step the average is the initial model */
        if (m->avg) {
                memcpy(m->avg, m->params, m->n_dense_params * sizeof(float));
                if (NK)
                        memcpy(m->theta_avg, m->theta, NK * sizeof(double));
        }
        return m;
}

void itd_mlp_destroy(itd_mlp_t *m) {
        if (!m)
                return;
        free(m->params);
        free(m->grads);
        free(m->moments);
        free(m->scratch);
        free(m->mark);
        free(m->touched);
        free(m->norm_mean);
        free(m->avg);
        free(m->norm_shift);
        free(m->theta);
        free(m);
}

/* ---- forward ----------------------------------------------------------- */

/*
 * Runs the trunk and the heads' logits for B <= max_batch rows; returns the
 * input matrix (B, in_dim) it used: x itself when there are no embeddings.
 */
static const float *forward(itd_mlp_t *m, const float *x, const uint32_t *ids,
                            size_t B, int want_next) {
        const itd_mlp_conf_t *c = &m->conf;
        const float *in = x;
        /*
         * The wide path reads the standardised inputs (xn, or x itself
         * without standardisation); the network reads them as they come.
         */
        const float *xw = x;
        if (m->norm_shift) {
                const float *sh = m->norm_shift, *sc = m->norm_scale;
                const size_t D = c->n_dense;
                for (size_t i = 0; i < B; i++) {
                        const float *xi = x + i * D;
                        float *xni = m->xn + i * D;
                        for (size_t d = 0; d < D; d++) {
                                float v = (xi[d] - sh[d]) * sc[d];
                                /* NaN passes through, so a bad input still
                                 * shows in the loss and the step is
                                 * skipped */
                                xni[d] = v > ITD_MLP_NORM_CLIP ? ITD_MLP_NORM_CLIP
                                         : v < -ITD_MLP_NORM_CLIP
                                             ? -ITD_MLP_NORM_CLIP
                                             : v;
                        }
                }
                xw = m->xn;
        }
        if (m->emb_cols) {
                float *a0 = m->act[0];
                if (c->n_dense)
                        for (size_t i = 0; i < B; i++)
                                memcpy(a0 + i * m->in_dim, x + i * c->n_dense,
                                       c->n_dense * sizeof(float));
                if (ids)
                        itd_embedding_forward(a0 + c->n_dense, m->in_dim, ids,
                                              m->emb, B, c->n_fields,
                                              c->ids_per_field, c->emb_buckets,
                                              c->emb_dim);
                else
                        for (size_t i = 0; i < B; i++)
                                memset(a0 + i * m->in_dim + c->n_dense, 0,
                                       m->emb_cols * sizeof(float));
                in = a0;
        }
        const float *a = in;
        for (size_t l = 0; l < m->n_layers; l++) {
                /* a: (B, width[l]); w[l]: (width[l+1], width[l]);
                 * act[l+1] = relu(a w[l]^T + b[l]): (B, width[l+1]) */
                itd_linear_forward(m->act[l + 1], a, m->w[l], m->b[l], B,
                                   m->width[l], m->width[l + 1]);
                itd_relu_forward(m->act[l + 1], m->act[l + 1],
                                 B * m->width[l + 1]);
                a = m->act[l + 1];
        }
        const size_t H = m->width[m->n_layers];
        itd_linear_forward(m->logit, a, m->wp, m->bp, B, H, 1);
        if (m->ww) /* logit (B) += xw (B, D) ww (D) */
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)B,
                            (int)c->n_dense, 1.0f, xw, (int)c->n_dense, m->ww,
                            1, 1.0f, m->logit, 1);
        /* offsets and Newton inputs: logit += sum_k theta_k o_k */
        for (size_t k = 0; k < m->n_newton; k++) {
                const float th = (float)m->theta[k];
                for (size_t i = 0; i < B; i++)
                        m->logit[i] += th * itd_mlp_newton_in(c, x, xw, i, k);
        }
        if (want_next)
                itd_linear_forward(m->nlogit, a, m->wn, m->bn, B, H,
                                   ITD_MLP_K);
        return in;
}

/* Mean BCE into *bce, total loss returned; *n_valid rows had a next label. */
static double losses(itd_mlp_t *m, const float *y, const int *next, size_t B,
                     double *bce, size_t *n_valid) {
        double bce_sum = itd_sigmoid_bce_forward(m->p, m->logit, y, B);
        double ce_sum = 0.0;
        *n_valid = 0;
        if (next)
                ce_sum = itd_softmax_ce_forward(m->nprob, m->nlogit, next, B,
                                                ITD_MLP_K, n_valid);
        *bce = bce_sum / (double)B;
        double total = *bce;
        if (*n_valid)
                total += m->conf.loss_weight_next * ce_sum / (double)*n_valid;
        return total;
}

/*
 * Input times gradient of the purchase logit for the B rows forward() just
 * ran: x (B, n_dense), contrib (B, n_dense). dact[L] (B, H) = wp in every
 * row; down the trunk dz = dact[l+1] where act[l+1] > 0, dact[l] = dz w[l]
 * (B, width[l]); the dense columns of dact[0] plus the wide weights (times
 * the standardisation's scale where unclipped) plus the offset weights are
 * d logit / d x.
 */
static void input_contrib(itd_mlp_t *m, const float *x, size_t B,
                          float *contrib) {
        const itd_mlp_conf_t *c = &m->conf;
        const size_t L = m->n_layers, H = m->width[L], D = c->n_dense;
        for (size_t i = 0; i < B; i++)
                memcpy(m->dact[L] + i * H, m->wp, H * sizeof(float));
        for (size_t l = L; l-- > 0;) {
                size_t out = m->width[l + 1], in = m->width[l];
                itd_relu_backward(m->dz, m->dact[l + 1], m->act[l + 1],
                                  B * out);
                /* dact[l] (B, in) = dz (B, out) w[l] (out, in) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B,
                            (int)in, (int)out, 1.0f, m->dz, (int)out, m->w[l],
                            (int)in, 0.0f, m->dact[l], (int)in);
        }
        const size_t W0 = m->width[0];
        for (size_t i = 0; i < B; i++) {
                const float *xi = x + i * D;
                float *ci = contrib + i * D;
                for (size_t d = 0; d < D; d++) {
                        float g = m->dact[0][i * W0 + d];
                        if (m->ww) {
                                if (!m->norm_shift)
                                        g += m->ww[d];
                                else if (fabsf(m->xn[i * D + d]) <
                                         ITD_MLP_NORM_CLIP)
                                        g += m->ww[d] * m->norm_scale[d];
                        }
                        ci[d] = g;
                }
                for (size_t k = 0; k < c->n_offsets; k++)
                        ci[c->offset_input[k]] += (float)m->theta[k];
                for (size_t j = 0; j < c->n_linear; j++) {
                        size_t d = c->linear_input[j];
                        float th = (float)m->theta[c->n_offsets + j];
                        if (!m->norm_shift)
                                ci[d] += th;
                        else if (fabsf(m->xn[i * D + d]) < ITD_MLP_NORM_CLIP)
                                ci[d] += th * m->norm_scale[d];
                }
                for (size_t d = 0; d < D; d++)
                        ci[d] *= xi[d];
        }
}

void itd_mlp_predict(itd_mlp_t *m, const float *x, const uint32_t *ids,
                     size_t B, float *p, float *next) {
        itd_mlp_predict_explain(m, x, ids, B, p, next, NULL);
}

void itd_mlp_predict_explain(itd_mlp_t *m, const float *x,
                             const uint32_t *ids, size_t B, float *p,
                             float *next, float *contrib) {
        const itd_mlp_conf_t *c = &m->conf;
        const size_t ids_w = c->n_fields * c->ids_per_field;
        /* score with the averaged parameters: views and theta on them for
         * this call (the owner thread trains only between calls) */
        const size_t NK = m->n_newton;
        if (m->avg) {
                point_views(m, m->avg);
                if (NK) {
                        memcpy(m->newton_keep, m->theta, NK * sizeof(double));
                        memcpy(m->theta, m->theta_avg, NK * sizeof(double));
                }
        }
        /* more rows than the scratch holds: score in max_batch chunks */
        for (size_t i0 = 0; i0 < B; i0 += c->max_batch) {
                size_t n = B - i0 < c->max_batch ? B - i0 : c->max_batch;
                forward(m, x + i0 * c->n_dense, ids ? ids + i0 * ids_w : NULL,
                        n, next != NULL);
                itd_sigmoid_bce_forward(p + i0, m->logit, NULL, n);
                if (contrib)
                        input_contrib(m, x + i0 * c->n_dense, n,
                                      contrib + i0 * c->n_dense);
                if (next)
                        itd_softmax_ce_forward(next + i0 * ITD_MLP_K,
                                               m->nlogit, NULL, n, ITD_MLP_K,
                                               NULL);
        }
        if (m->avg) {
                point_views(m, m->params);
                if (NK)
                        memcpy(m->theta, m->newton_keep, NK * sizeof(double));
        }
}

double itd_mlp_loss(itd_mlp_t *m, const float *x, const uint32_t *ids,
                    const float *y, const int *next, size_t B) {
        double bce;
        size_t n_valid;
        forward(m, x, ids, B, next != NULL);
        return losses(m, y, next, B, &bce, &n_valid);
}

/* ---- backward ---------------------------------------------------------- */

static void touch_rows(itd_mlp_t *m, const uint32_t *ids, size_t B) {
        const itd_mlp_conf_t *c = &m->conf;
        const size_t n_slots = c->n_fields * c->ids_per_field;
        const size_t cap = c->max_batch * n_slots;
        for (size_t i = 0; i < B; i++) {
                for (size_t s = 0; s < n_slots; s++) {
                        uint32_t id = ids[i * n_slots + s];
                        if (id == ITD_SPARSE_NONE)
                                continue;
                        size_t f = s / c->ids_per_field;
                        size_t row = f * c->emb_buckets + id % c->emb_buckets;
                        if (m->mark[row])
                                continue;
                        m->mark[row] = 1;
                        /*
                         * One batch never overflows cap; only callers that
                         * accumulate several batches before a step (tests)
                         * can, and they get a larger list.
                         */
                        if (m->n_touched >= cap &&
                            m->n_touched % cap == 0)
                                m->touched = itd_xrealloc(
                                    m->touched,
                                    (m->n_touched + cap) * sizeof(size_t));
                        m->touched[m->n_touched++] = row;
                }
        }
}

void itd_mlp_zero_grad(itd_mlp_t *m) {
        const size_t E = m->conf.emb_dim;
        if (m->n_newton)
                memset(m->dtheta, 0, m->n_newton * sizeof(double));
        for (size_t i = 0; i < m->n_touched; i++) {
                size_t row = m->touched[i];
                memset(m->demb + row * E, 0, E * sizeof(float));
                m->mark[row] = 0;
        }
        m->n_touched = 0;
}

double itd_mlp_forward_backward(itd_mlp_t *m, const float *x,
                                const uint32_t *ids, const float *y,
                                const int *next, const float *wt, size_t B,
                                double *bce) {
        const itd_mlp_conf_t *c = &m->conf;
        const size_t K = ITD_MLP_K;
        const size_t L = m->n_layers;
        const size_t H = m->width[L];
        int with_next = next && c->loss_weight_next > 0.0f;
        size_t n_valid;
        double bce_mean;

        const float *in = forward(m, x, ids, B, with_next);
        double total = losses(m, y, with_next ? next : NULL, B, &bce_mean,
                              &n_valid);
        if (bce)
                *bce = bce_mean;

        /*
         * Every dense gradient below is written, not added (sgemm with
         * beta 0 where it produces one), so no pass zeroes them first;
         * only the trunk output adds the second head's share.
         * heads: dlogit (B), dnlogit (B, K) -> dact[L] (B, H)
         */
        itd_sigmoid_bce_backward(m->dlogit, m->p, y, B, 1.0f / (float)B);
        if (wt) {
                /* importance weights: the weighted mean, d (sum w_i bce_i /
                 * sum w) / d logit_i = w_i (p_i - y_i) / sum w */
                double W = 0.0;
                for (size_t i = 0; i < B; i++)
                        W += wt[i];
                const float s = (float)((double)B / W);
                for (size_t i = 0; i < B; i++)
                        m->dlogit[i] *= wt[i] * s;
        }
        itd_linear_backward(m->dact[L], m->dwp, m->dbp, m->dlogit, m->act[L],
                            m->wp, B, H, 1, 0.0f);
        if (m->ww) {
                /* what forward read: standardised, or x as it came;
                 * dww (D) = xw^T (D, B) dlogit (B) */
                const float *xw = m->norm_shift ? m->xn : x;
                memset(m->dww, 0, c->n_dense * sizeof(float));
                cblas_sgemv(CblasRowMajor, CblasTrans, (int)B,
                            (int)c->n_dense, 1.0f, xw, (int)c->n_dense,
                            m->dlogit, 1, 1.0f, m->dww, 1);
        }
        /* offsets and Newton inputs: d loss / d theta_k = sum_i dlogit_i
         * o_ik, o as forward read it */
        const float *xo = m->norm_shift ? m->xn : x;
        for (size_t k = 0; k < m->n_newton; k++) {
                m->dtheta[k] = 0.0;
                for (size_t i = 0; i < B; i++)
                        m->dtheta[k] += (double)m->dlogit[i] *
                                        itd_mlp_newton_in(c, x, xo, i, k);
        }
        if (n_valid) {
                itd_softmax_ce_backward(m->dnlogit, m->nprob, next, B, K,
                                        c->loss_weight_next / (float)n_valid);
                if (wt) {
                        /* the weighted mean over the rows with a label */
                        double W = 0.0;
                        for (size_t i = 0; i < B; i++)
                                if (next[i] >= 0 && (size_t)next[i] < K)
                                        W += wt[i];
                        const float s = (float)((double)n_valid / W);
                        for (size_t i = 0; i < B; i++)
                                for (size_t k = 0; k < K; k++)
                                        m->dnlogit[i * K + k] *= wt[i] * s;
                }
                itd_linear_backward(m->dact[L], m->dwn, m->dbn, m->dnlogit,
                                    m->act[L], m->wn, B, H, K, 1.0f);
        } else {
                /* no next label in the batch: the head learns nothing */
                memset(m->dwn, 0, K * H * sizeof(float));
                memset(m->dbn, 0, K * sizeof(float));
        }

        /* trunk, top down: dact[l+1] -> dz -> dw[l], db[l], dact[l];
         * the ReLU's gradient in place (dact[l+1] is not read again) */
        int emb_grad = m->emb_cols && ids;
        for (size_t l = L; l-- > 0;) {
                const float *a = l ? m->act[l] : in;
                size_t n_out = B * m->width[l + 1];
                float *dz = m->dact[l + 1];
                itd_relu_backward(dz, dz, m->act[l + 1], n_out);
                float *dx = l > 0 ? m->dact[l] : NULL;
                itd_linear_backward(dx, m->dw[l], m->db[l], dz, a, m->w[l], B,
                                    m->width[l], m->width[l + 1], 0.0f);
                /* the first layer's input gradient only where parameters
                 * are behind it: the embedding columns, not the dense
                 * features (73 of 97 columns at the defaults) */
                if (l == 0 && emb_grad)
                        itd_linear_input_grad_cols(
                            m->dact[0] + c->n_dense, m->in_dim, dz, m->w[0], B,
                            m->in_dim, m->width[1], c->n_dense, m->emb_cols);
        }

        /* embedding columns of dact[0] -> the rows that were averaged */
        if (emb_grad) {
                touch_rows(m, ids, B);
                itd_embedding_backward(m->demb, m->dact[0] + c->n_dense,
                                       m->in_dim, ids, B, c->n_fields,
                                       c->ids_per_field, c->emb_buckets,
                                       c->emb_dim);
        }
        return total;
}

/* ---- training step ----------------------------------------------------- */

itd_err_t itd_mlp_train(itd_mlp_t *m, const float *x, const uint32_t *ids,
                        const float *y, const int *next, size_t B,
                        float *loss) {
        return itd_mlp_train_weighted(m, x, ids, y, next, NULL, B, loss);
}

itd_err_t itd_mlp_train_weighted(itd_mlp_t *m, const float *x,
                                 const uint32_t *ids, const float *y,
                                 const int *next, const float *wt, size_t B,
                                 float *loss) {
        if (B == 0 || B > m->conf.max_batch) {
                if (loss)
                        *loss = NAN;
                return ITD_ERR_ARG;
        }
        /* a non-finite input would poison the statistics for good; one
         * compare per input, or-ed without a branch so it vectorises */
        int bad = 0;
        for (size_t i = 0; i < B * m->conf.n_dense; i++)
                bad |= !(fabsf(x[i]) <= FLT_MAX);
        if (bad) {
                if (loss)
                        *loss = NAN;
                m->skipped++;
                return ITD_ERR_NONFINITE;
        }
        itd_mlp_norm_update(m, x, B);
        double bce;
        double total =
            itd_mlp_forward_backward(m, x, ids, y, next, wt, B, &bce);
        if (loss)
                *loss = (float)bce;
        /*
         * A finite loss can still hide a NaN gradient (a NaN input zeroed by
         * a ReLU); the norm catches that, and clipping needs it anyway.
         */
        /* the wide path leaves the Newton inputs to the Newton step */
        if (m->ww)
                for (size_t j = 0; j < m->conf.n_linear; j++)
                        m->dww[m->conf.linear_input[j]] = 0.0f;
        double gnorm = itd_mlp_grad_norm(m);
        if (!isfinite(total) || !isfinite(gnorm)) {
                itd_mlp_zero_grad(m);
                m->skipped++;
                return ITD_ERR_NONFINITE;
        }
        float gscale = 1.0f;
        if (m->conf.clip > 0.0f && gnorm > m->conf.clip)
                gscale = (float)(m->conf.clip / gnorm);
        itd_mlp_offset_step(m, x, wt, B);
        itd_mlp_apply_step(m, gscale);
        itd_mlp_zero_grad(m);
        m->steps++;
        itd_mlp_avg_update(m);
        return ITD_OK;
}

int64_t itd_mlp_steps(const itd_mlp_t *m) { return m->steps; }

uint64_t itd_mlp_skipped(const itd_mlp_t *m) { return m->skipped; }

size_t itd_mlp_n_params(const itd_mlp_t *m) { return m->n_params; }

void itd_mlp_set_lr(itd_mlp_t *m, float lr) {
        /* Read afresh by every step, so a reload applies from the next one. */
        m->conf.lr = lr;
}
