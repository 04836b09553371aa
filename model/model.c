/*
 * model.c - one face for the MLP and the logistic baseline (model.h):
 * construction, scoring and training dispatch, and their checkpoints.
 *
 * Checkpoint sections (checkpoint.h):
 *   MLP       one f32 section per tensor ("w0", "b0", ..., "wn", "bn",
 *             "emb"), flagged as parameters; the optimizer's moments as one
 *             block each ("adam.m", "adam.v" or "adagrad.G", n_params
 *             floats in the parameter layout); "counters" (u64: steps,
 *             skipped, examples). Adam's step t is `steps`. With input
 *             standardisation: "norm.mean", "norm.var" (f64, n_dense) and
 *             "norm.count" (f64, 1). With the wide path, its weights are
 *             the tensor "ww" and the bias' AdaGrad accumulator sits in
 *             the last moment block. With offsets or Newton inputs:
 *             "offset.theta" (f64, K = offsets + Newton inputs, flagged as
 *             parameters) and "offset.h" (f64, K x K).
 *             With averaging: "avg" (f32, the dense tensors in their
 *             layout) and "avg.theta" (f64, K).
 *   logistic  "ftrl.z", "ftrl.n" (f64, n_weights) are the state; "weights"
 *             (f32, derived from them) is for people reading a dump;
 *             "next.counts" (f64, K) and "counters" as above.
 * Loading reads every section into fresh buffers and copies them in only
 * when all are present and sized right, so a failed load changes nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "intentd/mem.h"
#include "intentd/model.h"
#include "model_int.h"

struct itd_model_s {
        itd_model_conf_t conf;
        itd_mlp_t *mlp;         /* type MLP */
        itd_logistic_t *lr;     /* type LOGISTIC */
        uint64_t examples;
};

void itd_model_conf_defaults(itd_model_conf_t *conf, int type, size_t n_dense,
                             size_t n_fields, size_t ids_per_field) {
        memset(conf, 0, sizeof(*conf));
        conf->type = type;
        itd_mlp_conf_defaults(&conf->mlp, n_dense, n_fields, ids_per_field);
        /*
         * FTRL defaults for this data. alpha = 0.1, the usual FTRL default
         * (Alink's, most Criteo/Avazu solutions): the first step of a
         * coordinate is ~alpha and the steps shrink as 1/sqrt(n), so a
         * hash bucket moves as fast as an MLP embedding row at emb_lr 0.1,
         * which keeps the comparison of the two fair. Measured
         * progressively: larger alpha scores higher AUC on the simulator
         * (0.82 at 0.1, 0.89 at 0.5) but its log loss on the 114 Taobao
         * users climbs above the base rate's (0.234 at 0.1, 0.286 at 0.5):
         * steps that large over-react to one user's purchase burst (a
         * mini-batch often holds one or two users' bursts). beta = 1, McMahan et al.'s advice: it only tames
         * a coordinate's first steps. l1 = 0.01 in units of z (a sum of
         * gradients): prunes buckets seen a handful of times without a
         * consistent sign, nothing a few dozen examples agree on (l1 = 1
         * cost 0.02 AUC). l2 = 0.001: next to (beta + sqrt(n)) / alpha
         * >= 10 it barely shrinks, only keeping never-contradicted
         * coordinates finite.
         */
        conf->ftrl.alpha = 0.1f;
        conf->ftrl.beta = 1.0f;
        conf->ftrl.l1 = 0.01f;
        conf->ftrl.l2 = 0.001f;
}

/* ---- config hash ------------------------------------------------------- */

static void fnv_u64(uint64_t *h, uint64_t v) {
        for (int i = 0; i < 8; i++) {
                *h ^= (v >> (8 * i)) & 0xff;
                *h *= 0x100000001B3ull;
        }
}

uint64_t itd_model_conf_hash(const itd_model_conf_t *conf) {
        const itd_mlp_conf_t *c = &conf->mlp;
        uint64_t h = 0xCBF29CE484222325ull;
        fnv_u64(&h, (uint64_t)conf->type);
        fnv_u64(&h, c->n_dense);
        fnv_u64(&h, c->n_fields);
        fnv_u64(&h, c->ids_per_field);
        fnv_u64(&h, c->emb_buckets);
        if (conf->type == ITD_MODEL_KIND_MLP) {
                fnv_u64(&h, c->emb_dim);
                fnv_u64(&h, c->n_hidden);
                for (size_t l = 0; l < c->n_hidden && l < ITD_MLP_MAX_HIDDEN;
                     l++)
                        fnv_u64(&h, c->hidden[l]);
                fnv_u64(&h, (uint64_t)c->optimizer);
                /* both add state: the "ww" tensor, the "norm.*" sections */
                fnv_u64(&h, (uint64_t)(c->wide != 0));
                fnv_u64(&h, (uint64_t)(c->norm_inputs != 0));
                /* averaging adds state: the "avg" sections */
                fnv_u64(&h, (uint64_t)(c->avg_steps != 0));
                /* offsets change what every parameter means */
                fnv_u64(&h, c->n_offsets);
                for (size_t k = 0; k < c->n_offsets; k++)
                        fnv_u64(&h, c->offset_input[k]);
                /* so do the Newton inputs, and they size "offset.*" */
                fnv_u64(&h, c->n_linear);
                for (size_t k = 0; k < c->n_linear; k++)
                        fnv_u64(&h, c->linear_input[k]);
        }
        return h;
}

/* ---- life cycle and dispatch ------------------------------------------- */

itd_model_t *itd_model_new(const itd_model_conf_t *conf, char *errstr,
                           size_t errstr_size) {
        itd_model_t *m = itd_xcalloc(1, sizeof(*m));
        m->conf = *conf;
        const itd_mlp_conf_t *c = &conf->mlp;
        switch (conf->type) {
        case ITD_MODEL_KIND_MLP:
                m->mlp = itd_mlp_new(c, errstr, errstr_size);
                if (m->mlp)
                        return m;
                break;
        case ITD_MODEL_KIND_LOGISTIC:
                m->lr = itd_logistic_new(c->n_dense, c->n_fields,
                                         c->ids_per_field, c->emb_buckets,
                                         c->max_batch, &conf->ftrl, errstr,
                                         errstr_size);
                if (m->lr)
                        return m;
                break;
        default:
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size,
                                 "model type: unknown value %d", conf->type);
                break;
        }
        free(m);
        return NULL;
}

void itd_model_destroy(itd_model_t *m) {
        if (!m)
                return;
        itd_mlp_destroy(m->mlp);
        itd_logistic_destroy(m->lr);
        free(m);
}

int itd_model_type(const itd_model_t *m) { return m->conf.type; }

itd_mlp_t *itd_model_mlp(itd_model_t *m) { return m->mlp; }
itd_logistic_t *itd_model_logistic(itd_model_t *m) { return m->lr; }
const itd_model_conf_t *itd_model_conf(const itd_model_t *m) {
        return &m->conf;
}

void itd_model_predict(itd_model_t *m, const float *x, const uint32_t *ids,
                       size_t B, float *p, float *next) {
        if (m->mlp)
                itd_mlp_predict(m->mlp, x, ids, B, p, next);
        else
                itd_logistic_predict(m->lr, x, ids, B, p, next);
}

int itd_model_predict_explain(itd_model_t *m, const float *x,
                              const uint32_t *ids, size_t B, float *p,
                              float *next, float *contrib) {
        if (m->mlp) {
                itd_mlp_predict_explain(m->mlp, x, ids, B, p, next, contrib);
                return contrib != NULL;
        }
        itd_logistic_predict(m->lr, x, ids, B, p, next);
        return 0;
}

itd_err_t itd_model_train(itd_model_t *m, const float *x, const uint32_t *ids,
                          const float *y, const int *next, size_t B,
                          float *loss) {
        return itd_model_train_weighted(m, x, ids, y, next, NULL, B, loss);
}

itd_err_t itd_model_train_weighted(itd_model_t *m, const float *x,
                                   const uint32_t *ids, const float *y,
                                   const int *next, const float *wt,
                                   size_t B, float *loss) {
        itd_err_t err =
            m->mlp ? itd_mlp_train_weighted(m->mlp, x, ids, y, next, wt, B,
                                            loss)
                   : itd_logistic_train_weighted(m->lr, x, ids, y, next, wt,
                                                 B, loss);
        if (err == ITD_OK)
                m->examples += B;
        return err;
}

int64_t itd_model_steps(const itd_model_t *m) {
        return m->mlp ? m->mlp->steps : m->lr->steps;
}

uint64_t itd_model_skipped(const itd_model_t *m) {
        return m->mlp ? m->mlp->skipped : m->lr->skipped;
}

uint64_t itd_model_examples(const itd_model_t *m) { return m->examples; }

size_t itd_model_n_params(const itd_model_t *m) {
        return m->mlp ? m->mlp->n_params : m->lr->n_weights;
}

static size_t n_moments(itd_opt_t opt);

float *itd_model_opt(itd_model_t *m, itd_model_opt_t *counts,
                     size_t *n_floats) {
        counts->steps = itd_model_steps(m);
        counts->skipped = itd_model_skipped(m);
        counts->examples = m->examples;
        *n_floats = m->mlp ? n_moments(m->mlp->conf.optimizer) *
                                 m->mlp->n_params
                           : 0;
        return *n_floats ? m->mlp->moments : NULL;
}

void itd_model_set_opt(itd_model_t *m, const itd_model_opt_t *counts) {
        if (m->mlp) {
                m->mlp->steps = counts->steps;
                m->mlp->skipped = counts->skipped;
        } else {
                m->lr->steps = counts->steps;
                m->lr->skipped = counts->skipped;
        }
        m->examples = counts->examples;
}

/* ---- checkpoints ------------------------------------------------------- */

static void shape_of(const itd_model_t *m, itd_snapshot_shape_t *s) {
        const itd_mlp_conf_t *c = &m->conf.mlp;
        memset(s, 0, sizeof(*s));
        s->model_type = (uint32_t)m->conf.type;
        s->n_dense = c->n_dense;
        s->n_fields = c->n_fields;
        s->ids_per_field = c->ids_per_field;
        s->emb_buckets = c->emb_buckets;
        if (m->mlp) {
                s->optimizer = (uint32_t)c->optimizer;
                s->emb_dim = c->emb_dim;
                s->n_hidden = c->n_hidden;
                for (size_t l = 0;
                     l < c->n_hidden && l < ITD_SNAPSHOT_MAX_HIDDEN; l++)
                        s->hidden[l] = c->hidden[l];
        }
}

static const char *moment_name(itd_opt_t opt, int which) {
        if (opt == ITD_OPT_ADAM)
                return which ? "adam.v" : "adam.m";
        return "adagrad.G";
}

static size_t n_moments(itd_opt_t opt) {
        return opt == ITD_OPT_ADAM ? 2 : opt == ITD_OPT_ADAGRAD ? 1 : 0;
}

itd_err_t itd_model_save(const itd_model_t *m, const char *path,
                         const itd_snapshot_meta_t *meta, char *errstr,
                         size_t errstr_size) {
        itd_snapshot_meta_t hdr;
        memset(&hdr, 0, sizeof(hdr));
        if (meta)
                hdr = *meta;
        hdr.kind = ITD_SNAPSHOT_KIND_MODEL;
        if (hdr.config_hash == 0)
                hdr.config_hash = itd_model_conf_hash(&m->conf);
        hdr.examples = m->examples;
        hdr.steps = (uint64_t)itd_model_steps(m);
        shape_of(m, &hdr.shape);

        itd_snapshot_writer_t *w =
            itd_snapshot_writer_new(path, &hdr, errstr, errstr_size);
        if (!w)
                return ITD_ERR_IO;
        uint64_t counters[3] = {hdr.steps, itd_model_skipped(m), m->examples};
        if (m->mlp) {
                const itd_mlp_t *mlp = m->mlp;
                for (size_t i = 0; i < mlp->n_tensors; i++) {
                        const itd_tensor_t *t = &mlp->tensors[i];
                        itd_snapshot_writer_section(
                            w, t->name, ITD_SNAPSHOT_F32,
                            ITD_SNAPSHOT_SEC_PARAM, mlp->params + t->off,
                            t->n * sizeof(float));
                }
                if (mlp->n_params > mlp->n_dense_params)
                        itd_snapshot_writer_section(
                            w, "emb", ITD_SNAPSHOT_F32, ITD_SNAPSHOT_SEC_PARAM,
                            mlp->emb,
                            (mlp->n_params - mlp->n_dense_params) *
                                sizeof(float));
                for (size_t k = 0; k < n_moments(mlp->conf.optimizer); k++)
                        itd_snapshot_writer_section(
                            w, moment_name(mlp->conf.optimizer, (int)k),
                            ITD_SNAPSHOT_F32, 0,
                            mlp->moments + k * mlp->n_params,
                            mlp->n_params * sizeof(float));
                if (mlp->norm_mean) {
                        const size_t D = mlp->conf.n_dense;
                        itd_snapshot_writer_section(
                            w, "norm.mean", ITD_SNAPSHOT_F64, 0, mlp->norm_mean,
                            D * sizeof(double));
                        itd_snapshot_writer_section(
                            w, "norm.var", ITD_SNAPSHOT_F64, 0, mlp->norm_var,
                            D * sizeof(double));
                        itd_snapshot_writer_section(
                            w, "norm.count", ITD_SNAPSHOT_F64, 0,
                            &mlp->norm_count, sizeof(double));
                }
                if (mlp->n_newton) {
                        const size_t K = mlp->n_newton;
                        itd_snapshot_writer_section(
                            w, "offset.theta", ITD_SNAPSHOT_F64,
                            ITD_SNAPSHOT_SEC_PARAM, mlp->theta,
                            K * sizeof(double));
                        itd_snapshot_writer_section(
                            w, "offset.h", ITD_SNAPSHOT_F64, 0, mlp->offset_h,
                            K * K * sizeof(double));
                }
                if (mlp->avg) {
                        itd_snapshot_writer_section(
                            w, "avg", ITD_SNAPSHOT_F32, 0, mlp->avg,
                            mlp->n_dense_params * sizeof(float));
                        itd_snapshot_writer_section(
                            w, "avg.theta", ITD_SNAPSHOT_F64, 0, mlp->theta_avg,
                            mlp->n_newton * sizeof(double));
                }
        } else {
                const itd_logistic_t *lr = m->lr;
                float *wts = itd_xmalloc(lr->n_weights * sizeof(float));
                for (size_t i = 0; i < lr->n_weights; i++)
                        wts[i] = (float)itd_logistic_weight(lr, i);
                itd_snapshot_writer_section(w, "weights", ITD_SNAPSHOT_F32,
                                            ITD_SNAPSHOT_SEC_PARAM, wts,
                                            lr->n_weights * sizeof(float));
                free(wts);
                itd_snapshot_writer_section(w, "ftrl.z", ITD_SNAPSHOT_F64, 0,
                                            lr->z,
                                            lr->n_weights * sizeof(double));
                itd_snapshot_writer_section(w, "ftrl.n", ITD_SNAPSHOT_F64, 0,
                                            lr->n,
                                            lr->n_weights * sizeof(double));
                itd_snapshot_writer_section(w, "next.counts", ITD_SNAPSHOT_F64,
                                            0, lr->next_count,
                                            sizeof(lr->next_count));
        }
        itd_snapshot_writer_section(w, "counters", ITD_SNAPSHOT_U64, 0,
                                    counters, sizeof(counters));
        return itd_snapshot_writer_commit(w, errstr, errstr_size);
}

static const char *type_name(uint64_t t) {
        return t == ITD_MODEL_KIND_MLP        ? "mlp"
               : t == ITD_MODEL_KIND_LOGISTIC ? "logistic"
                                              : "unknown";
}

static const char *opt_name(uint64_t o) {
        return o == ITD_OPT_SGD       ? "sgd"
               : o == ITD_OPT_ADAGRAD ? "adagrad"
               : o == ITD_OPT_ADAM    ? "adam"
                                      : "unknown";
}

/* ITD_ERR_INCOMPATIBLE with the first header field that differs */
static itd_err_t check_header(const itd_model_t *m, const char *path,
                              const itd_snapshot_meta_t *got,
                              const itd_snapshot_meta_t *expect, char *errstr,
                              size_t errstr_size) {
#define INCOMPATIBLE(...)                                                  \
        do {                                                               \
                if (errstr && errstr_size)                                 \
                        snprintf(errstr, errstr_size, __VA_ARGS__);        \
                return ITD_ERR_INCOMPATIBLE;                               \
        } while (0)
        if (got->kind != ITD_SNAPSHOT_KIND_MODEL)
                INCOMPATIBLE("checkpoint %s holds kind %u, not a model", path,
                             got->kind);
        if (expect && got->feature_spec_hash != expect->feature_spec_hash)
                INCOMPATIBLE("checkpoint %s was trained on feature spec "
                             "0x%016" PRIx64 ", this build uses 0x%016" PRIx64,
                             path, got->feature_spec_hash,
                             expect->feature_spec_hash);
        itd_snapshot_shape_t want;
        shape_of(m, &want);
        const itd_snapshot_shape_t *s = &got->shape;
        if (s->model_type != want.model_type)
                INCOMPATIBLE("checkpoint %s holds a %s model, model.type is %s",
                             path, type_name(s->model_type),
                             type_name(want.model_type));
        if (s->n_dense != want.n_dense || s->n_fields != want.n_fields ||
            s->ids_per_field != want.ids_per_field ||
            s->emb_buckets != want.emb_buckets || s->emb_dim != want.emb_dim)
                INCOMPATIBLE("checkpoint %s has inputs %" PRIu64
                             " dense, %" PRIu64 " x %" PRIu64 " ids, %" PRIu64
                             " buckets x %" PRIu64
                             " dims; this model has %" PRIu64 ", %" PRIu64
                             " x %" PRIu64 ", %" PRIu64 " x %" PRIu64,
                             path, s->n_dense, s->n_fields, s->ids_per_field,
                             s->emb_buckets, s->emb_dim, want.n_dense,
                             want.n_fields, want.ids_per_field,
                             want.emb_buckets, want.emb_dim);
        int hidden_differ = s->n_hidden != want.n_hidden;
        for (size_t l = 0; l < ITD_SNAPSHOT_MAX_HIDDEN; l++)
                hidden_differ |= s->hidden[l] != want.hidden[l];
        if (hidden_differ)
                INCOMPATIBLE("checkpoint %s has %" PRIu64 " hidden layers "
                             "(%" PRIu64 ", %" PRIu64 ", ...); this model has "
                             "%" PRIu64 " (%" PRIu64 ", %" PRIu64 ", ...)",
                             path, s->n_hidden, s->hidden[0], s->hidden[1],
                             want.n_hidden, want.hidden[0], want.hidden[1]);
        if (s->optimizer != want.optimizer)
                INCOMPATIBLE("checkpoint %s was trained with optimizer %s, "
                             "model.optimizer is %s",
                             path, opt_name(s->optimizer),
                             opt_name(want.optimizer));
        uint64_t config = expect && expect->config_hash
                              ? expect->config_hash
                              : itd_model_conf_hash(&m->conf);
        if (expect && got->config_hash != config)
                INCOMPATIBLE("checkpoint %s was saved with config 0x%016" PRIx64
                             ", this config is 0x%016" PRIx64,
                             path, got->config_hash, config);
        return ITD_OK;
#undef INCOMPATIBLE
}

/* Reads the sections of an MLP checkpoint into fresh blocks, then in. */
static itd_err_t load_mlp(itd_mlp_t *mlp, const itd_snapshot_t *ck,
                          uint64_t *counters, char *errstr,
                          size_t errstr_size) {
        const size_t np = mlp->n_params, nm = n_moments(mlp->conf.optimizer);
        const size_t D = mlp->norm_mean ? mlp->conf.n_dense : 0;
        float *params = itd_xmalloc(np * sizeof(float));
        float *moments = nm ? itd_xmalloc(nm * np * sizeof(float)) : NULL;
        /* mean, var, count */
        double *norm = D ? itd_xmalloc((2 * D + 1) * sizeof(double)) : NULL;
        itd_err_t err = ITD_OK;
        for (size_t i = 0; i < mlp->n_tensors && !err; i++) {
                const itd_tensor_t *t = &mlp->tensors[i];
                err = itd_snapshot_get(ck, t->name, ITD_SNAPSHOT_F32,
                                       params + t->off, t->n * sizeof(float),
                                       errstr, errstr_size);
        }
        if (!err && np > mlp->n_dense_params)
                err = itd_snapshot_get(
                    ck, "emb", ITD_SNAPSHOT_F32, params + mlp->n_dense_params,
                    (np - mlp->n_dense_params) * sizeof(float), errstr,
                    errstr_size);
        for (size_t k = 0; k < nm && !err; k++)
                err = itd_snapshot_get(ck,
                                       moment_name(mlp->conf.optimizer, (int)k),
                                       ITD_SNAPSHOT_F32, moments + k * np,
                                       np * sizeof(float), errstr, errstr_size);
        if (D && !err)
                err = itd_snapshot_get(ck, "norm.mean", ITD_SNAPSHOT_F64, norm,
                                       D * sizeof(double), errstr, errstr_size);
        if (D && !err)
                err =
                    itd_snapshot_get(ck, "norm.var", ITD_SNAPSHOT_F64, norm + D,
                                     D * sizeof(double), errstr, errstr_size);
        if (D && !err)
                err = itd_snapshot_get(ck, "norm.count", ITD_SNAPSHOT_F64,
                                       norm + 2 * D, sizeof(double), errstr,
                                       errstr_size);
        /* theta (K), then the curvature (K, K), then the averaged theta */
        const size_t K = mlp->n_newton;
        double *off = K ? itd_xmalloc((K * (K + 2)) * sizeof(double)) : NULL;
        double *theta_avg = K ? off + K * (K + 1) : NULL;
        if (K && !err)
                err =
                    itd_snapshot_get(ck, "offset.theta", ITD_SNAPSHOT_F64, off,
                                     K * sizeof(double), errstr, errstr_size);
        if (K && !err)
                err = itd_snapshot_get(ck, "offset.h", ITD_SNAPSHOT_F64,
                                       off + K, K * K * sizeof(double), errstr,
                                       errstr_size);
        /* the averaged parameters, then the averaged offset weights */
        const size_t NA = mlp->avg ? mlp->n_dense_params : 0;
        float *avg = NA ? itd_xmalloc(NA * sizeof(float)) : NULL;
        if (NA && !err)
                err = itd_snapshot_get(ck, "avg", ITD_SNAPSHOT_F32, avg,
                                       NA * sizeof(float), errstr, errstr_size);
        if (NA && K && !err)
                err = itd_snapshot_get(ck, "avg.theta", ITD_SNAPSHOT_F64,
                                       theta_avg, K * sizeof(double), errstr,
                                       errstr_size);
        if (!err)
                err =
                    itd_snapshot_get(ck, "counters", ITD_SNAPSHOT_U64, counters,
                                     3 * sizeof(uint64_t), errstr, errstr_size);
        if (!err) {
                if (NA)
                        memcpy(mlp->avg, avg, NA * sizeof(float));
                if (NA && K)
                        memcpy(mlp->theta_avg, theta_avg, K * sizeof(double));
                if (K) {
                        memcpy(mlp->theta, off, K * sizeof(double));
                        memcpy(mlp->offset_h, off + K,
                               K * K * sizeof(double));
                }
                memcpy(mlp->params, params, np * sizeof(float));
                if (nm)
                        memcpy(mlp->moments, moments, nm * np * sizeof(float));
                if (D) {
                        memcpy(mlp->norm_mean, norm, 2 * D * sizeof(double));
                        mlp->norm_count = norm[2 * D];
                        /* shift and scale from the loaded statistics */
                        itd_mlp_norm_update(mlp, NULL, 0);
                }
                mlp->steps = (int64_t)counters[0];
                mlp->skipped = counters[1];
                itd_mlp_zero_grad(mlp);
        }
        free(params);
        free(moments);
        free(norm);
        free(avg);
        free(off);
        return err;
}

static itd_err_t load_logistic(itd_logistic_t *lr, const itd_snapshot_t *ck,
                               uint64_t *counters, char *errstr,
                               size_t errstr_size) {
        const size_t nw = lr->n_weights;
        double *zn = itd_xmalloc(2 * nw * sizeof(double));
        double next_count[ITD_NEXT__COUNT];
        itd_err_t err =
            itd_snapshot_get(ck, "ftrl.z", ITD_SNAPSHOT_F64, zn,
                             nw * sizeof(double), errstr, errstr_size);
        if (!err)
                err =
                    itd_snapshot_get(ck, "ftrl.n", ITD_SNAPSHOT_F64, zn + nw,
                                     nw * sizeof(double), errstr, errstr_size);
        if (!err)
                err = itd_snapshot_get(ck, "next.counts", ITD_SNAPSHOT_F64,
                                       next_count, sizeof(next_count), errstr,
                                       errstr_size);
        if (!err)
                err =
                    itd_snapshot_get(ck, "counters", ITD_SNAPSHOT_U64, counters,
                                     3 * sizeof(uint64_t), errstr, errstr_size);
        if (!err) {
                memcpy(lr->z, zn, 2 * nw * sizeof(double));
                memcpy(lr->next_count, next_count, sizeof(next_count));
                lr->steps = (int64_t)counters[0];
                lr->skipped = counters[1];
        }
        free(zn);
        return err;
}

itd_err_t itd_model_load(itd_model_t *m, const char *path,
                         const itd_snapshot_meta_t *expect, char *errstr,
                         size_t errstr_size) {
        itd_snapshot_t *ck;
        itd_err_t err = itd_snapshot_read(path, &ck, errstr, errstr_size);
        if (err)
                return err;
        err = check_header(m, path, itd_snapshot_meta(ck), expect, errstr,
                           errstr_size);
        if (!err) {
                uint64_t counters[3];
                char why[256] = "";
                err = m->mlp ? load_mlp(m->mlp, ck, counters, why, sizeof(why))
                             : load_logistic(m->lr, ck, counters, why,
                                             sizeof(why));
                if (err) {
                        /* a valid file of our format missing a part of the
                         * model: damaged by its writer, not by the disk */
                        if (errstr && errstr_size)
                                snprintf(errstr, errstr_size,
                                         "checkpoint %s: %s", path, why);
                        err = ITD_ERR_CORRUPT;
                } else {
                        m->examples = counters[2];
                }
        }
        itd_snapshot_destroy(ck);
        return err;
}

void itd_model_set_lr(itd_model_t *m, float lr) {
        /* FTRL's per-coordinate rates come from alpha, not from this. */
        m->conf.mlp.lr = lr;
        if (m->mlp)
                itd_mlp_set_lr(m->mlp, lr);
}
