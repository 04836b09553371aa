/*
 * engine.c - state -> features -> model -> labeler -> trainer, per batch.
 * See engine.h for the order of work and why it is that order.
 */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "intentd/codec.h"
#include "intentd/labeler.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/model.h"
#include "intentd/state.h"

#define ENGINE_MAX_BATCH 512
#define USER_HASH_SEED 0x1d2e3f4a5b6c7d8eULL

/* What intentd keeps per assigned partition. */
typedef struct part_s {
        itd_state_t *st;
        itd_labeler_t *lb;
} part_t;

struct itd_engine_s {
        itd_state_conf_t state_conf;
        itd_labeler_conf_t labeler_conf;
        size_t dim;         /* dense features */
        size_t n_ids;       /* sparse ids per example */
        size_t train_batch; /* examples per optimizer step */

        part_t *parts;      /* indexed by partition number */
        size_t n_parts;

        itd_model_t *model;
        itd_pv_t *pv;

        /* Scoring scratch, max_batch rows. */
        float *x;           /* (max_batch, dim) */
        uint32_t *ids;      /* (max_batch, n_ids) */
        float *p;           /* (max_batch) */
        float *next;        /* (max_batch, ITD_NEXT__COUNT) */
        uint64_t *user_hash;/* (max_batch) */

        /* Training mini-batch being filled from resolved examples. */
        float *tx;          /* (train_batch, dim) */
        uint32_t *tids;     /* (train_batch, n_ids) */
        float *ty;          /* (train_batch) */
        int *tnext;         /* (train_batch) */
        size_t tn;

        uint64_t events, predictions, filtered_late;
        uint64_t examples_pos, examples_neg;
};

static part_t *part_get(itd_engine_t *eng, int32_t partition, char *errstr,
                        size_t errstr_size) {
        if (partition < 0)
                partition = 0;
        if ((size_t)partition >= eng->n_parts) {
                size_t n = (size_t)partition + 1;
                eng->parts = itd_xrealloc(eng->parts, n * sizeof *eng->parts);
                memset(eng->parts + eng->n_parts, 0,
                       (n - eng->n_parts) * sizeof *eng->parts);
                eng->n_parts = n;
        }
        part_t *pt = &eng->parts[partition];
        if (!pt->st) {
                pt->st = itd_state_new(&eng->state_conf, errstr, errstr_size);
                if (!pt->st)
                        return NULL;
                pt->lb = itd_labeler_new(&eng->labeler_conf, errstr,
                                         errstr_size);
                if (!pt->lb) {
                        itd_state_destroy(pt->st);
                        pt->st = NULL;
                        return NULL;
                }
        }
        return pt;
}

itd_engine_t *itd_engine_new(const itd_conf_t *conf, char *errstr,
                             size_t errstr_size) {
        itd_engine_t *eng = itd_xcalloc(1, sizeof *eng);

        itd_state_conf_t *sc = &eng->state_conf;
        sc->n_windows = conf->n_windows;
        for (size_t i = 0; i < conf->n_windows && i < ITD_WINDOWS_MAX; i++)
                sc->window_ms[i] = conf->windows_ms[i];
        sc->allowed_lateness_ms = conf->windows_allowed_lateness_ms;
        sc->session_gap_ms = conf->session_gap_ms;
        sc->idle_ttl_ms = conf->state_idle_ttl_ms;
        sc->max_users = (size_t)conf->state_max_users;
        if (itd_state_conf_check(sc, errstr, errstr_size) != ITD_OK)
                goto fail;

        eng->dim = itd_features_dim(sc);
        eng->n_ids = ITD_SPARSE_IDS;
        eng->train_batch = (size_t)conf->model_batch_size;

        itd_labeler_conf_t *lc = &eng->labeler_conf;
        lc->dim = eng->dim;
        lc->n_ids = eng->n_ids;
        lc->horizon_ms = conf->labels_horizon_ms;
        lc->session_gap_ms = conf->session_gap_ms;
        lc->max_pending = (size_t)conf->labels_max_pending;
        lc->max_pending_per_user = 256;

        itd_model_conf_t mc;
        itd_model_conf_defaults(&mc, conf->model_type, eng->dim,
                                ITD_SPARSE_FIELDS, ITD_SPARSE_SLOTS);
        mc.mlp.n_hidden = conf->n_model_hidden;
        for (size_t i = 0; i < conf->n_model_hidden && i < ITD_MLP_MAX_HIDDEN;
             i++)
                mc.mlp.hidden[i] = (size_t)conf->model_hidden[i];
        mc.mlp.emb_buckets = (size_t)conf->model_embedding_buckets;
        mc.mlp.emb_dim = (size_t)conf->model_embedding_dim;
        mc.mlp.optimizer = (itd_opt_t)conf->model_optimizer;
        mc.mlp.lr = (float)conf->model_learning_rate;
        mc.mlp.l2 = (float)conf->model_l2;
        mc.mlp.loss_weight_next = (float)conf->model_loss_weight_next;
        mc.mlp.seed = (uint64_t)conf->model_seed;
        mc.mlp.max_batch = ENGINE_MAX_BATCH > eng->train_batch
                               ? ENGINE_MAX_BATCH
                               : eng->train_batch;
        eng->model = itd_model_new(&mc, errstr, errstr_size);
        if (!eng->model)
                goto fail;
        eng->pv = itd_pv_new((float)conf->predict_threshold);

        eng->x = itd_xcalloc(ENGINE_MAX_BATCH * eng->dim, sizeof *eng->x);
        eng->ids = itd_xcalloc(ENGINE_MAX_BATCH * eng->n_ids, sizeof *eng->ids);
        eng->p = itd_xcalloc(ENGINE_MAX_BATCH, sizeof *eng->p);
        eng->next = itd_xcalloc(ENGINE_MAX_BATCH * ITD_NEXT__COUNT,
                                sizeof *eng->next);
        eng->user_hash = itd_xcalloc(ENGINE_MAX_BATCH, sizeof *eng->user_hash);
        eng->tx = itd_xcalloc(eng->train_batch * eng->dim, sizeof *eng->tx);
        eng->tids = itd_xcalloc(eng->train_batch * eng->n_ids,
                                sizeof *eng->tids);
        eng->ty = itd_xcalloc(eng->train_batch, sizeof *eng->ty);
        eng->tnext = itd_xcalloc(eng->train_batch, sizeof *eng->tnext);
        return eng;
fail:
        itd_engine_destroy(eng);
        return NULL;
}

void itd_engine_destroy(itd_engine_t *eng) {
        if (!eng)
                return;
        for (size_t i = 0; i < eng->n_parts; i++) {
                itd_state_destroy(eng->parts[i].st);
                itd_labeler_destroy(eng->parts[i].lb);
        }
        free(eng->parts);
        itd_model_destroy(eng->model);
        itd_pv_destroy(eng->pv);
        free(eng->x);
        free(eng->ids);
        free(eng->p);
        free(eng->next);
        free(eng->user_hash);
        free(eng->tx);
        free(eng->tids);
        free(eng->ty);
        free(eng->tnext);
        free(eng);
}

size_t itd_engine_max_batch(const itd_engine_t *eng) {
        (void)eng;
        return ENGINE_MAX_BATCH;
}

static void train_flush(itd_engine_t *eng) {
        if (eng->tn == 0)
                return;
        float loss;
        itd_err_t err = itd_model_train(eng->model, eng->tx, eng->tids,
                                        eng->ty, eng->tnext, eng->tn, &loss);
        if (err == ITD_ERR_NONFINITE)
                itd_log(ITD_LOG_WARNING, "model",
                        "skipped a training step: non-finite loss");
        eng->tn = 0;
}

/* Judges resolved examples (they were scored before any learning from
 * them: progressive validation), then queues them for training. */
static void learn_resolved(itd_engine_t *eng, part_t *pt) {
        itd_example_t ex[64];
        size_t n;
        while ((n = itd_labeler_take(pt->lb, ex, 64)) > 0) {
                for (size_t i = 0; i < n; i++) {
                        itd_pv_add(eng->pv, ex[i].score, ex[i].label,
                                   ex[i].next_probs, ex[i].next);
                        if (ex[i].label)
                                eng->examples_pos++;
                        else
                                eng->examples_neg++;
                        size_t r = eng->tn++;
                        memcpy(eng->tx + r * eng->dim, ex[i].x,
                               eng->dim * sizeof(float));
                        memcpy(eng->tids + r * eng->n_ids, ex[i].ids,
                               eng->n_ids * sizeof(uint32_t));
                        eng->ty[r] = (float)ex[i].label;
                        eng->tnext[r] = (int)ex[i].next;
                        if (eng->tn == eng->train_batch)
                                train_flush(eng);
                }
        }
}

itd_err_t itd_engine_process(itd_engine_t *eng, const char *topic,
                             const itd_input_t *in, size_t n,
                             itd_prediction_t *out, itd_outcome_t *outcome) {
        char errstr[256];
        if (n > ENGINE_MAX_BATCH)
                return ITD_ERR_ARG;

        /* The pool must take the whole batch, or nothing is applied. */
        for (size_t i = 0; i < n; i++) {
                part_t *pt = part_get(eng, in[i].partition, errstr,
                                      sizeof errstr);
                if (!pt) {
                        itd_log(ITD_LOG_ERR, "engine", "partition %d: %s",
                                (int)in[i].partition, errstr);
                        return ITD_ERR_ARG;
                }
                itd_labeler_stats_t ls;
                itd_labeler_stats(pt->lb, &ls);
                if (ls.pending + n > eng->labeler_conf.max_pending)
                        return ITD_ERR_FULL;
        }

        /* (1) state and features, in input order. */
        size_t rows = 0;
        size_t row_of[ENGINE_MAX_BATCH];
        for (size_t i = 0; i < n; i++) {
                part_t *pt = &eng->parts[in[i].partition < 0 ? 0
                                                             : in[i].partition];
                itd_topcats_t top;
                float *x = eng->x + rows * eng->dim;
                uint32_t *ids = eng->ids + rows * eng->n_ids;
                itd_err_t err = itd_state_update(pt->st, &in[i].ev, x, ids,
                                                 &top);
                eng->events++;
                if (err != ITD_OK) {
                        outcome[i] = ITD_OUT_FILTERED_LATE;
                        eng->filtered_late++;
                        continue;
                }
                outcome[i] = ITD_OUT_PREDICTED;
                row_of[i] = rows;
                eng->user_hash[rows] = itd_hash_str(in[i].ev.user_id,
                                                    USER_HASH_SEED);
                itd_prediction_t *pr = &out[i];
                pr->n_top_categories = top.n;
                for (size_t k = 0; k < top.n && k < ITD_TOPCAT_MAX; k++) {
                        itd_strlcpy(pr->top_categories[k], top.name[k],
                                    ITD_ID_MAX);
                        pr->top_category_scores[k] = top.score[k];
                }
                rows++;
        }

        /* (2) one matrix product for the whole batch. */
        if (rows > 0)
                itd_model_predict(eng->model, eng->x, eng->ids, rows, eng->p,
                                  eng->next);

        /* (3) labels: observe first, so this event resolves earlier
         * predictions of its user but never its own. */
        int64_t now_ms = itd_now_wall_ms();
        int64_t version = itd_model_steps(eng->model);
        for (size_t i = 0; i < n; i++) {
                if (outcome[i] != ITD_OUT_PREDICTED)
                        continue;
                size_t r = row_of[i];
                part_t *pt = &eng->parts[in[i].partition < 0 ? 0
                                                             : in[i].partition];
                itd_labeler_observe(pt->lb, eng->user_hash[r], in[i].ev.ts_ms,
                                    in[i].ev.type);
                const float *np = eng->next + r * ITD_NEXT__COUNT;
                itd_err_t err = itd_labeler_add(
                    pt->lb, eng->user_hash[r], in[i].ev.ts_ms,
                    eng->x + r * eng->dim, eng->ids + r * eng->n_ids,
                    eng->p[r], np);
                /* The capacity check above makes a full pool impossible
                 * here; an assert would be too strong for a label. */
                (void)err;

                itd_prediction_t *pr = &out[i];
                itd_prediction_make_id(pr, topic, in[i].partition,
                                       in[i].offset);
                itd_strlcpy(pr->user_id, in[i].ev.user_id, ITD_ID_MAX);
                pr->event_ts_ms = in[i].ev.ts_ms;
                pr->predicted_at_ms = now_ms;
                pr->purchase_probability = eng->p[r];
                int best = 0;
                for (int k = 0; k < ITD_NEXT__COUNT; k++) {
                        pr->next_probs[k] = np[k];
                        if (np[k] > np[best])
                                best = k;
                }
                pr->next_action = (itd_next_t)best;
                pr->model_version = version;
                pr->n_explanation = 0;
                eng->predictions++;
        }

        /* (4) watermarks move with the batch; learn what they resolve. */
        for (size_t p = 0; p < eng->n_parts; p++) {
                part_t *pt = &eng->parts[p];
                if (!pt->st)
                        continue;
                itd_labeler_advance(pt->lb, itd_state_watermark(pt->st));
                learn_resolved(eng, pt);
        }
        return ITD_OK;
}

void itd_engine_advance(itd_engine_t *eng, int64_t wm_ms) {
        for (size_t p = 0; p < eng->n_parts; p++) {
                part_t *pt = &eng->parts[p];
                if (!pt->st)
                        continue;
                itd_state_advance(pt->st, wm_ms);
                itd_labeler_advance(pt->lb, itd_state_watermark(pt->st));
                learn_resolved(eng, pt);
        }
        train_flush(eng);
}

void itd_engine_set_threshold(itd_engine_t *eng, float threshold) {
        itd_pv_set_threshold(eng->pv, threshold);
}

void itd_engine_set_learning_rate(itd_engine_t *eng, float lr) {
        itd_model_set_lr(eng->model, lr);
}

void itd_engine_stats(const itd_engine_t *eng, itd_engine_stats_t *s) {
        memset(s, 0, sizeof *s);
        s->events = eng->events;
        s->predictions = eng->predictions;
        s->filtered_late = eng->filtered_late;
        s->examples_pos = eng->examples_pos;
        s->examples_neg = eng->examples_neg;
        s->train_steps = (uint64_t)itd_model_steps(eng->model);
        s->train_skipped = itd_model_skipped(eng->model);
        for (size_t p = 0; p < eng->n_parts; p++) {
                const part_t *pt = &eng->parts[p];
                if (!pt->st)
                        continue;
                itd_state_stats_t ss;
                itd_state_stats(pt->st, &ss);
                s->users += ss.users;
                s->state_bytes += ss.bytes;
                s->evicted_ttl += ss.evicted_ttl;
                s->evicted_cap += ss.evicted_cap;
                itd_labeler_stats_t ls;
                itd_labeler_stats(pt->lb, &ls);
                s->pending += ls.pending;
        }
        itd_pv_summary(eng->pv, &s->pv);
}

itd_err_t itd_engine_dump_state(const itd_engine_t *eng, FILE *out) {
        for (size_t p = 0; p < eng->n_parts; p++) {
                const part_t *pt = &eng->parts[p];
                if (!pt->st)
                        continue;
                itd_err_t err = itd_state_dump(pt->st,
                                               itd_state_watermark(pt->st),
                                               out);
                if (err)
                        return err;
        }
        return ITD_OK;
}
