/*
 * optim.c - optimizer update rules (SGD, AdaGrad, Adam) and the model step
 * that applies them: dense tensors in full every step, embedding rows only
 * where the batch touched them (lazy updates: a 65536-row table is not
 * swept for the few dozen rows a batch uses).
 */
#include <math.h>

#include "mlp_int.h"

void itd_sgd_update(float *w, const float *g, size_t n, float gscale,
                    float lr, float l2) {
        for (size_t i = 0; i < n; i++) {
                float grad = gscale * g[i] + l2 * w[i];
                w[i] -= lr * grad;
        }
}

void itd_adagrad_update(float *w, const float *g, float *G, size_t n,
                        float gscale, float lr, float l2, float eps) {
        /* Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods", JMLR */
        for (size_t i = 0; i < n; i++) {
                float grad = gscale * g[i] + l2 * w[i];
                G[i] += grad * grad;
                w[i] -= lr * grad / (sqrtf(G[i]) + eps);
        }
}

void itd_adam_update(float *w, const float *g, float *m, float *v, size_t n,
                     float gscale, float lr, float l2, float beta1,
                     float beta2, float eps, float bc1, float bc2) {
        /* Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization",
         * Algorithm 1, with the bias corrections bc1, bc2 from the caller */
        for (size_t i = 0; i < n; i++) {
                float grad = gscale * g[i] + l2 * w[i];
                m[i] = beta1 * m[i] + (1.0f - beta1) * grad;
                v[i] = beta2 * v[i] + (1.0f - beta2) * grad * grad;
                float m_hat = m[i] / bc1;
                float v_hat = v[i] / bc2;
                w[i] -= lr * m_hat / (sqrtf(v_hat) + eps);
        }
}

double itd_mlp_grad_norm(const itd_mlp_t *m) {
        const size_t E = m->conf.emb_dim;
        double sum = 0.0;
        for (size_t i = 0; i < m->n_dense_params; i++)
                sum += (double)m->grads[i] * m->grads[i];
        for (size_t t = 0; t < m->n_touched; t++) {
                const float *g = m->demb + m->touched[t] * E;
                for (size_t e = 0; e < E; e++)
                        sum += (double)g[e] * g[e];
        }
        return sqrt(sum);
}

/* One span of parameters [off, off + n) through the configured rule. */
static void update_span(itd_mlp_t *m, size_t off, size_t n, float gscale,
                        float l2, float bc1, float bc2) {
        const itd_mlp_conf_t *c = &m->conf;
        float *w = m->params + off;
        const float *g = m->grads + off;
        switch (c->optimizer) {
        case ITD_OPT_SGD:
                itd_sgd_update(w, g, n, gscale, c->lr, l2);
                break;
        case ITD_OPT_ADAGRAD:
                itd_adagrad_update(w, g, m->moments + off, n, gscale, c->lr,
                                   l2, c->eps);
                break;
        case ITD_OPT_ADAM:
                itd_adam_update(w, g, m->moments + off,
                                m->moments + m->n_params + off, n, gscale,
                                c->lr, l2, c->beta1, c->beta2, c->eps, bc1,
                                bc2);
                break;
        }
}

void itd_mlp_apply_step(itd_mlp_t *m, float gscale) {
        const itd_mlp_conf_t *c = &m->conf;
        /* t counts steps taken, so a skipped step does not advance it */
        double t = (double)(m->steps + 1);
        float bc1 = (float)(1.0 - pow(c->beta1, t));
        float bc2 = (float)(1.0 - pow(c->beta2, t));
        for (size_t i = 0; i < m->n_tensors; i++) {
                const itd_tensor_t *ten = &m->tensors[i];
                update_span(m, ten->off, ten->n, gscale,
                            ten->decay ? c->l2 : 0.0f, bc1, bc2);
        }
        /*
         * Lazy embedding rows: the global t gives the bias correction, as in
         * "LazyAdam"; moments of untouched rows are left as they were.
         */
        const size_t E = c->emb_dim;
        for (size_t i = 0; i < m->n_touched; i++)
                update_span(m, m->n_dense_params + m->touched[i] * E, E,
                            gscale, c->l2, bc1, bc2);
}
