/*
 * engine.c - state -> features -> model -> labeler -> trainer, per batch.
 * See engine.h for the order of work and why it is that order.
 */
#include "intentd/engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "intentd/codec.h"
#include "intentd/labeler.h"
#include "intentd/mem.h"
#include "intentd/model.h"
#include "intentd/partition.h"
#include "intentd/state.h"
#include "intentd/trainer.h"

#define ENGINE_MAX_BATCH 512

struct itd_engine_s {
        itd_partition_conf_t part_conf; /* what new partitions get */
        size_t dim;         /* dense features */
        size_t n_ids;       /* sparse ids per example */
        int64_t chunk_span_ms; /* event time one scoring chunk may span */

        itd_partition_t **parts; /* indexed by partition number; NULL: not
                                  * held */
        size_t n_parts;
        int64_t last_input_ms;   /* wall clock of the last batch */

        itd_model_t *model;
        itd_trainer_t *tr;  /* eval, mini-batch, steps of model */

        /* Scoring scratch, max_batch rows. */
        float *x;           /* (max_batch, dim) */
        uint32_t *ids;      /* (max_batch, n_ids) */
        float *p;           /* (max_batch) */
        float *next;        /* (max_batch, ITD_NEXT__COUNT) */
        itd_topcats_t *top; /* (max_batch) */
        float *risk;        /* (max_batch) risk score per scored row */

        itd_example_hook_t hook;
        void *hook_arg;

        int64_t trigger_clock_ms;  /* caller's clock for staleness, or
                                    * INT64_MIN */
        char model_id[ITD_MODEL_ID_MAX]; /* stamped on every prediction */
        size_t explain_k;          /* predict.explain */
        float *contrib;            /* (max_batch, dim) input x gradient */
        char (*feat_name)[32];     /* (dim) dense feature names */
        int triggers_on;
        itd_trigger_rec_t *trig;   /* (max_batch) records of the last batch,
                                    * pointed at by its rows */
        itd_trigger_rec_t *rtrig;  /* (max_batch) risk trigger records */

        uint64_t events, predictions, late, filtered;
        uint64_t risk_untrained;   /* predictions judged, not trained on */
        int64_t version_base;      /* added to model_version (workers.h) */
};

/* A partition part_get() has already created (negative numbers: 0, as
 * there). */
static itd_partition_t *part_at(itd_engine_t *eng, int32_t partition) {
        return eng->parts[partition < 0 ? 0 : partition];
}

/* Room for partition p in the array. */
static void parts_reserve(itd_engine_t *eng, int32_t p) {
        if ((size_t)p < eng->n_parts)
                return;
        size_t n = (size_t)p + 1;
        eng->parts = itd_xrealloc(eng->parts, n * sizeof *eng->parts);
        memset(eng->parts + eng->n_parts, 0,
               (n - eng->n_parts) * sizeof *eng->parts);
        eng->n_parts = n;
}

static itd_partition_t *part_get(itd_engine_t *eng, int32_t partition,
                                 int64_t now_ms, char *errstr,
                                 size_t errstr_size) {
        if (partition < 0)
                partition = 0;
        parts_reserve(eng, partition);
        if (!eng->parts[partition])
                eng->parts[partition] = itd_partition_new(
                    partition, &eng->part_conf, now_ms, errstr, errstr_size);
        return eng->parts[partition];
}

itd_engine_t *itd_engine_new(const itd_engine_conf_t *ec, char *errstr,
                             size_t errstr_size) {
        itd_engine_t *eng = itd_xcalloc(1, sizeof *eng);
        eng->part_conf = ec->part;
        if (itd_state_conf_check(&eng->part_conf.state, errstr,
                                 errstr_size) != ITD_OK ||
            itd_trigger_conf_check(&eng->part_conf.triggers, errstr,
                                   errstr_size) != ITD_OK)
                goto fail;
        eng->trigger_clock_ms = INT64_MIN;
        eng->last_input_ms = INT64_MIN;
        eng->dim = itd_features_dim(&eng->part_conf.state);
        eng->n_ids = ITD_SPARSE_IDS;
        eng->chunk_span_ms = ec->score_span_ms;
        itd_model_conf_t mc = ec->model;
        if (eng->part_conf.labels.dim != eng->dim ||
            eng->part_conf.labels.n_ids != eng->n_ids ||
            mc.mlp.n_dense != eng->dim ||
            mc.mlp.n_fields * mc.mlp.ids_per_field != eng->n_ids) {
                snprintf(errstr, errstr_size,
                         "engine: labels and model must take the features' "
                         "shape (%zu dense, %zu sparse)", eng->dim, eng->n_ids);
                goto fail;
        }
        if (ec->train_batch < 1) {
                snprintf(errstr, errstr_size,
                         "engine: train_batch must be at least 1");
                goto fail;
        }
        mc.mlp.max_batch = ENGINE_MAX_BATCH > ec->train_batch
                               ? ENGINE_MAX_BATCH
                               : ec->train_batch;
        eng->model = itd_model_new(&mc, errstr, errstr_size);
        if (!eng->model)
                goto fail;
        itd_trainer_conf_t tc = {.dim = eng->dim,
                                 .n_ids = eng->n_ids,
                                 .batch = ec->train_batch,
                                 .neg_sample_rate = ec->neg_sample_rate,
                                 .threshold = ec->threshold,
                                 .hold_cap = ec->hold_positives};
        eng->tr = itd_trainer_new(&tc, eng->model, errstr, errstr_size);
        if (!eng->tr)
                goto fail;
        eng->explain_k = ec->explain_k;
        if (eng->explain_k > ITD_EXPLAIN_MAX)
                eng->explain_k = ITD_EXPLAIN_MAX;
        if (eng->explain_k) {
                eng->contrib = itd_xcalloc(ENGINE_MAX_BATCH * eng->dim,
                                           sizeof *eng->contrib);
                eng->feat_name = itd_xcalloc(eng->dim, sizeof *eng->feat_name);
                char buf[64];
                for (size_t d = 0; d < eng->dim; d++)
                        itd_strlcpy(eng->feat_name[d],
                                    itd_features_name(&eng->part_conf.state, d,
                                                      buf, sizeof buf),
                                    sizeof eng->feat_name[d]);
        }
        eng->trig = itd_xcalloc(ENGINE_MAX_BATCH, sizeof *eng->trig);
        eng->rtrig = itd_xcalloc(ENGINE_MAX_BATCH, sizeof *eng->rtrig);
        eng->risk = itd_xcalloc(ENGINE_MAX_BATCH, sizeof *eng->risk);

        eng->x = itd_xcalloc(ENGINE_MAX_BATCH * eng->dim, sizeof *eng->x);
        eng->ids = itd_xcalloc(ENGINE_MAX_BATCH * eng->n_ids, sizeof *eng->ids);
        eng->p = itd_xcalloc(ENGINE_MAX_BATCH, sizeof *eng->p);
        eng->next = itd_xcalloc(ENGINE_MAX_BATCH * ITD_NEXT__COUNT,
                                sizeof *eng->next);
        eng->top = itd_xcalloc(ENGINE_MAX_BATCH, sizeof *eng->top);
        return eng;
fail:
        itd_engine_destroy(eng);
        return NULL;
}

void itd_engine_destroy(itd_engine_t *eng) {
        if (!eng)
                return;
        for (size_t i = 0; i < eng->n_parts; i++)
                itd_partition_destroy(eng->parts[i]);
        free(eng->parts);
        itd_trainer_destroy(eng->tr);
        itd_model_destroy(eng->model);
        free(eng->x);
        free(eng->ids);
        free(eng->p);
        free(eng->next);
        free(eng->top);
        free(eng->trig);
        free(eng->rtrig);
        free(eng->risk);
        free(eng->contrib);
        free(eng->feat_name);
        free(eng);
}

void itd_engine_enable_triggers(itd_engine_t *eng) {
        eng->triggers_on = 1;
}

void itd_engine_set_model_id(itd_engine_t *eng, const char *model_id) {
        memset(eng->model_id, 0, sizeof eng->model_id);
        itd_strlcpy(eng->model_id, model_id, sizeof eng->model_id);
}

void itd_engine_set_version_base(itd_engine_t *eng, int64_t base) {
        eng->version_base = base;
}

int64_t itd_engine_model_version(const itd_engine_t *eng) {
        return itd_model_steps(eng->model) + eng->version_base;
}

void itd_engine_set_trigger_clock(itd_engine_t *eng, int64_t now_ms) {
        eng->trigger_clock_ms = now_ms;
}

itd_err_t itd_engine_set_triggers(itd_engine_t *eng,
                                  const itd_trigger_conf_t *conf,
                                  char *errstr, size_t errstr_size) {
        itd_trigger_conf_t tc = *conf;
        tc.max_users = eng->part_conf.triggers.max_users;
        if (itd_trigger_conf_check(&tc, errstr, errstr_size) != ITD_OK)
                return ITD_ERR_CONF;
        eng->part_conf.triggers = tc;
        for (size_t p = 0; p < eng->n_parts; p++)
                if (eng->parts[p])
                        (void)itd_partition_set_triggers(eng->parts[p], &tc,
                                                         errstr, errstr_size);
        return ITD_OK;
}

void itd_engine_set_example_hook(itd_engine_t *eng, itd_example_hook_t hook,
                                 void *arg) {
        eng->hook = hook;
        eng->hook_arg = arg;
}

const itd_partition_conf_t *itd_engine_partition_conf(
    const itd_engine_t *eng) {
        return &eng->part_conf;
}

size_t itd_engine_dim(const itd_engine_t *eng) {
        return eng->dim;
}

size_t itd_engine_max_batch(const itd_engine_t *eng) {
        (void)eng;
        return ENGINE_MAX_BATCH;
}

/* Hands the examples pt resolved to the trainer (trainer.h), in
 * resolution order; the hook sees each judged one first, before the model
 * can learn from it. */
static void learn_resolved(itd_engine_t *eng, itd_partition_t *pt) {
        itd_example_t ex[64];
        size_t n;
        while ((n = itd_partition_take(pt, ex, 64)) > 0) {
                for (size_t i = 0; i < n; i++) {
                        if (ex[i].judge && eng->hook)
                                eng->hook(eng->hook_arg, itd_partition_id(pt),
                                          &ex[i]);
                        ex[i].partition = itd_partition_id(pt);
                        itd_trainer_add(eng->tr, &ex[i]);
                }
        }
}

/* The explain_k features of one row with the largest contributions to the
 * purchase logit (by magnitude; the sign says which way), into pr. */
static void explain(const itd_engine_t *eng, const float *contrib,
                    itd_prediction_t *pr) {
        size_t best[ITD_EXPLAIN_MAX], n = 0;
        for (size_t d = 0; d < eng->dim; d++) {
                float a = fabsf(contrib[d]);
                if (!(a > 0)) /* zero, or NaN from a bad input */
                        continue;
                size_t k = n < eng->explain_k ? n++ : n;
                while (k > 0 && fabsf(contrib[best[k - 1]]) < a) {
                        if (k < eng->explain_k)
                                best[k] = best[k - 1];
                        k--;
                }
                if (k < eng->explain_k)
                        best[k] = d;
        }
        pr->n_explanation = n;
        for (size_t k = 0; k < n; k++) {
                itd_strlcpy(pr->explanation_feature[k], eng->feat_name[best[k]],
                            sizeof pr->explanation_feature[k]);
                pr->explanation_contribution[k] = contrib[best[k]];
        }
}

/*
 * The prediction of row r (scoring scratch row `r`), every field of it:
 * the one place a prediction is made (config/prediction.avsc). It names
 * its event (the row's identity as prediction_id, the event's own id,
 * session and type) and its model (id, version: steps so far).
 */
static void prediction_build(const itd_engine_t *eng, const char *topic,
                             itd_row_t *row, size_t r, int64_t version,
                             int64_t now_ms, int explained) {
        itd_prediction_t *pr = &row->pred;
        const itd_event_t *ev = &row->ev;
        const float *np = eng->next + r * ITD_NEXT__COUNT;
        itd_prediction_make_id(pr, topic, row->partition, row->offset);
        itd_strlcpy(pr->user_id, ev->user_id, sizeof pr->user_id);
        pr->event_ts_ms = ev->ts_ms;
        pr->predicted_at_ms = now_ms;
        pr->purchase_probability = eng->p[r];
        pr->risk_score = eng->risk[r];
        int best = 0;
        for (int k = 0; k < ITD_NEXT__COUNT; k++) {
                pr->next_probs[k] = np[k];
                if (np[k] > np[best])
                        best = k;
        }
        pr->next_action = (itd_next_t)best;
        pr->model_version = version;
        const itd_topcats_t *top = &eng->top[r];
        pr->n_top_categories = top->n < ITD_TOPCAT_MAX ? top->n
                                                       : ITD_TOPCAT_MAX;
        for (size_t k = 0; k < pr->n_top_categories; k++) {
                memcpy(pr->top_categories[k], top->name[k],
                       sizeof pr->top_categories[k]);
                pr->top_category_scores[k] = top->score[k];
        }
        pr->n_explanation = 0;
        if (explained)
                explain(eng, eng->contrib + r * eng->dim, pr);
        itd_strlcpy(pr->event_id, ev->event_id, sizeof pr->event_id);
        itd_strlcpy(pr->session_id, ev->session_id, sizeof pr->session_id);
        pr->event_type = (int)ev->type;
        memcpy(pr->model_id, eng->model_id, sizeof pr->model_id);
}

/* Marketing triggers of one on-time prediction (pipeline/trigger.c): its
 * record, when one is due, into eng->trig[i] and the row. In event time,
 * an event behind the partition's watermark never gets here (late);
 * staleness beyond that is judged against the caller's clock, when it
 * gave one (itd_engine_set_trigger_clock). Not against the partition's
 * frontier: the frontier has already moved over the whole batch, and a
 * decision must not depend on how events were batched. */
static void trigger_event(itd_engine_t *eng, itd_partition_t *pt,
                          itd_row_t *row, size_t i) {
        itd_trigger_fire_t fire;
        const itd_prediction_t *pr = &row->pred;
        if (itd_partition_trigger(pt, row->user_hash, pr->event_ts_ms,
                                  eng->trigger_clock_ms,
                                  pr->purchase_probability, &fire)) {
                itd_triggers_make_record(pr, &fire, &eng->trig[i]);
                row->trigger = &eng->trig[i];
        }
        if (eng->part_conf.risk.triggers_on &&
            itd_partition_risk_trigger(pt, row->user_hash, pr->event_ts_ms,
                                       eng->trigger_clock_ms,
                                       (float)pr->risk_score, &fire)) {
                /* the record of a risk trigger carries the risk score */
                itd_triggers_make_record(pr, &fire, &eng->rtrig[i]);
                eng->rtrig[i].score = (float)pr->risk_score;
                row->risk_trigger = &eng->rtrig[i];
        }
}

/* How many of the n rows at rows form the next scoring chunk: up to the
 * first whose event time is more than chunk_span_ms after the chunk's
 * first row (all n when chunk_span_ms is 0). */
static size_t chunk_len(const itd_engine_t *eng, const itd_row_t *rows,
                        size_t n) {
        if (eng->chunk_span_ms <= 0)
                return n;
        /* saturated: a time the state refuses (up to INT64_MAX) may
         * start a chunk */
        int64_t t0 = rows[0].ev.ts_ms;
        int64_t end = t0 > INT64_MAX - eng->chunk_span_ms
                          ? INT64_MAX
                          : t0 + eng->chunk_span_ms;
        size_t i = 1;
        while (i < n && rows[i].ev.ts_ms <= end)
                i++;
        return i;
}

/* Steps (1) to (4) of engine.h for rows i0 .. i0 + n - 1 of a batch. */
static void process_chunk(itd_engine_t *eng, const char *topic,
                          itd_row_t *rows, size_t i0, size_t n,
                          int64_t now_ms) {
        /* (1) state and features, in row order. A late event is scored
         * from its user's state as it stands and changes nothing. */
        size_t n_scored = 0;
        size_t row_of[ENGINE_MAX_BATCH];
        unsigned char late[ENGINE_MAX_BATCH];
        for (size_t i = i0; i < i0 + n; i++) {
                itd_row_t *row = &rows[i];
                itd_partition_t *pt = part_at(eng, row->partition);
                size_t r = n_scored;
                int is_late;
                row->trigger = NULL;
                row->risk_trigger = NULL;
                itd_err_t err = itd_partition_apply(
                    pt, &row->ev, row->user_hash, now_ms,
                    eng->x + r * eng->dim, eng->ids + r * eng->n_ids,
                    &eng->top[r], &is_late, &eng->risk[r]);
                late[i] = (unsigned char)is_late;
                eng->events++;
                if (err != ITD_OK) {
                        row->outcome = ITD_OUT_FILTERED;
                        eng->filtered++;
                        continue;
                }
                eng->late += late[i];
                row->outcome = ITD_OUT_PREDICTED;
                row_of[i] = r;
                n_scored++;
        }

        /* (2) one matrix product for the whole chunk. */
        int explained = 0;
        if (n_scored > 0 && eng->explain_k)
                explained = itd_model_predict_explain(
                    eng->model, eng->x, eng->ids, n_scored, eng->p, eng->next,
                    eng->contrib);
        else if (n_scored > 0)
                itd_model_predict(eng->model, eng->x, eng->ids, n_scored,
                                  eng->p, eng->next);

        /* (3) labels: observe first, so this event resolves earlier
         * predictions of its user but never its own. */
        /* the parameters this chunk was scored with */
        int64_t version = itd_trainer_publish(eng->tr) + eng->version_base;
        for (size_t i = i0; i < i0 + n; i++) {
                itd_row_t *row = &rows[i];
                if (row->outcome != ITD_OUT_PREDICTED)
                        continue;
                size_t r = row_of[i];
                itd_partition_t *pt = part_at(eng, row->partition);
                eng->risk_untrained += (uint64_t)itd_partition_predicted(
                    pt, &row->ev, row->user_hash, row->offset, late[i],
                    eng->x + r * eng->dim, eng->ids + r * eng->n_ids,
                    eng->p[r], eng->next + r * ITD_NEXT__COUNT, eng->risk[r]);
                prediction_build(eng, topic, row, r, version, now_ms,
                                 explained);
                eng->predictions++;
                /* Marketing triggers run in event time per user, with
                 * hysteresis and cool-down (pipeline/trigger.c); a late
                 * event would move that time back. */
                if (eng->triggers_on && !late[i])
                        trigger_event(eng, pt, row, i);
        }

        /* (4) watermarks move with the batch; learn what they resolve. */
        for (size_t p = 0; p < eng->n_parts; p++) {
                itd_partition_t *pt = eng->parts[p];
                if (!pt)
                        continue;
                itd_partition_settle(pt);
                learn_resolved(eng, pt);
        }
}

itd_err_t itd_engine_process(itd_engine_t *eng, const char *topic,
                             itd_row_t *rows, size_t n, int64_t now_ms,
                             char *errstr, size_t errstr_size) {
        if (n > ENGINE_MAX_BATCH) {
                snprintf(errstr, errstr_size,
                         "a batch of %zu events; at most %d", n,
                         ENGINE_MAX_BATCH);
                return ITD_ERR_ARG;
        }

        /* Every partition of the batch exists before anything is applied
         * (a full pending pool is no reason to refuse: the labeler gives up
         * its oldest pending prediction, labeler.h). Users of a poll batch
         * are scattered over a large table: fetch their slots now, while
         * earlier events are being worked on. */
        for (size_t i = 0; i < n; i++) {
                char why[256];
                itd_partition_t *pt = part_get(eng, rows[i].partition, now_ms,
                                               why, sizeof why);
                if (!pt) {
                        snprintf(errstr, errstr_size, "partition %d: %s",
                                 (int)rows[i].partition, why);
                        return ITD_ERR_ARG;
                }
                itd_partition_prefetch(pt, rows[i].user_hash);
        }
        if (n > 0)
                eng->last_input_ms = now_ms;

        /* Scoring chunks of bounded event-time span: on a sparse stream one
         * poll batch can cover hours, and the model would score all of it
         * with parameters from before its first event. */
        for (size_t i0 = 0; i0 < n;) {
                size_t n0 = chunk_len(eng, rows + i0, n - i0);
                process_chunk(eng, topic, rows, i0, n0, now_ms);
                i0 += n0;
        }
        return ITD_OK;
}

/*
 * Idle time is judged twice, with one setting (part_conf.idle_ms), because
 * there are two rules and each alone would move partitions too early:
 *
 *  - quiet stream (here): no batch at all for longer than idle_ms. While
 *    any input arrives, a partition without events is most likely fetched
 *    later than the others (a backlog), and moving its watermark would make
 *    its events still on the broker late;
 *  - idle partition (itd_partition_advance_idle): no event of its own for
 *    longer than max(idle_ms, allowed lateness), measured from its own last
 *    event, which also says how far its event time moves.
 */
static int stream_quiet(const itd_engine_t *eng, int64_t now_ms) {
        return eng->last_input_ms == INT64_MIN ||
               now_ms - eng->last_input_ms > eng->part_conf.idle_ms;
}

void itd_engine_advance_idle(itd_engine_t *eng, int64_t now_ms) {
        if (!stream_quiet(eng, now_ms))
                return;
        for (size_t p = 0; p < eng->n_parts; p++)
                if (eng->parts[p] &&
                    itd_partition_advance_idle(eng->parts[p], now_ms))
                        learn_resolved(eng, eng->parts[p]);
}

void itd_engine_advance(itd_engine_t *eng, int64_t wm_ms) {
        for (size_t p = 0; p < eng->n_parts; p++) {
                itd_partition_t *pt = eng->parts[p];
                if (!pt)
                        continue;
                itd_partition_advance(pt, wm_ms);
                learn_resolved(eng, pt);
        }
        itd_trainer_flush(eng->tr);
}

void itd_engine_set_threshold(itd_engine_t *eng, float threshold) {
        itd_trainer_set_threshold(eng->tr, threshold);
}

void itd_engine_set_learning_rate(itd_engine_t *eng, float lr) {
        itd_model_set_lr(eng->model, lr);
}

void itd_engine_stats(const itd_engine_t *eng, itd_engine_stats_t *s) {
        memset(s, 0, sizeof *s);
        s->events = eng->events;
        s->predictions = eng->predictions;
        s->late = eng->late;
        s->filtered = eng->filtered;
        s->risk_untrained = eng->risk_untrained;
        itd_trainer_stats_t trs;
        itd_trainer_stats(eng->tr, &trs);
        s->examples_pos = trs.examples_pos;
        s->examples_neg = trs.examples_neg;
        s->examples_neg_sampled_out = trs.examples_neg_sampled_out;
        s->examples_unlearned = trs.queued + trs.held;
        s->train_steps = (uint64_t)itd_model_steps(eng->model);
        s->train_skipped = itd_model_skipped(eng->model);
        for (size_t p = 0; p < eng->n_parts; p++) {
                const itd_partition_t *pt = eng->parts[p];
                if (!pt)
                        continue;
                itd_state_stats_t ss;
                itd_state_stats(itd_partition_state(pt), &ss);
                s->users += ss.users;
                s->state_bytes += ss.bytes;
                s->evicted_ttl += ss.evicted_ttl;
                s->evicted_cap += ss.evicted_cap;
                itd_labeler_stats_t ls;
                itd_labeler_stats(itd_partition_labeler(pt), &ls);
                s->pending += ls.pending;
                s->labels_dropped += ls.dropped_full;
                itd_triggers_stats_t ts;
                itd_triggers_stats(itd_partition_triggers(pt), &ts);
                s->triggers_up += ts.fired_up;
                s->triggers_down += ts.fired_down;
                s->triggers_held_back += ts.held_back;
                s->triggers_stale += ts.stale;
                s->triggers_warming += ts.warming;
                const itd_triggers_t *rt = itd_partition_risk_triggers(pt);
                if (rt) {
                        itd_triggers_stats(rt, &ts);
                        s->risk_triggers_up += ts.fired_up;
                        s->risk_triggers_down += ts.fired_down;
                }
        }
        itd_eval_summary(itd_trainer_eval(eng->tr), &s->eval);
}

void itd_engine_stats_add(itd_engine_stats_t *into,
                          const itd_engine_stats_t *s) {
        into->events += s->events;
        into->predictions += s->predictions;
        into->late += s->late;
        into->filtered += s->filtered;
        into->examples_pos += s->examples_pos;
        into->examples_neg += s->examples_neg;
        into->examples_neg_sampled_out += s->examples_neg_sampled_out;
        into->examples_unlearned += s->examples_unlearned;
        into->train_steps += s->train_steps;
        into->train_skipped += s->train_skipped;
        into->pending += s->pending;
        into->labels_dropped += s->labels_dropped;
        into->users += s->users;
        into->state_bytes += s->state_bytes;
        into->evicted_ttl += s->evicted_ttl;
        into->evicted_cap += s->evicted_cap;
        into->triggers_up += s->triggers_up;
        into->triggers_down += s->triggers_down;
        into->triggers_held_back += s->triggers_held_back;
        into->triggers_stale += s->triggers_stale;
        into->triggers_warming += s->triggers_warming;
        into->risk_triggers_up += s->risk_triggers_up;
        into->risk_triggers_down += s->risk_triggers_down;
        into->risk_untrained += s->risk_untrained;
}

itd_err_t itd_engine_user(const itd_engine_t *eng, const char *user_id,
                          itd_user_summary_t *out, int32_t *partition) {
        /* A user's events share a key, so one partition holds them. */
        for (size_t p = 0; p < eng->n_parts; p++) {
                const itd_state_t *st =
                    eng->parts[p] ? itd_partition_state(eng->parts[p]) : NULL;
                if (st && itd_state_user_summary(st, user_id,
                                                 itd_state_watermark(st),
                                                 out) == ITD_OK) {
                        *partition = (int32_t)p;
                        return ITD_OK;
                }
        }
        return ITD_ERR_NOT_FOUND;
}

size_t itd_engine_erase(itd_engine_t *eng, const char *user_id,
                        uint64_t user_hash, itd_partition_erased_t *out,
                        int32_t *held_out, size_t cap) {
        size_t held = 0;
        memset(out, 0, sizeof *out);
        for (size_t p = 0; p < eng->n_parts; p++) {
                itd_partition_erased_t e;
                if (!eng->parts[p] ||
                    !itd_partition_erase(eng->parts[p], user_id, user_hash,
                                         &e))
                        continue;
                if (held < cap)
                        held_out[held] = (int32_t)p;
                held++;
                out->users += e.users;
                out->events += e.events;
                out->pending += e.pending;
                out->queued += e.queued;
                out->triggers += e.triggers;
                out->risk_triggers += e.risk_triggers;
        }
        itd_trainer_flush(eng->tr);
        return held;
}

/* wm_ms INT64_MIN: each partition as of its own watermark */
static itd_err_t dump_state(const itd_engine_t *eng, int64_t wm_ms,
                            FILE *out) {
        for (size_t p = 0; p < eng->n_parts; p++) {
                if (!eng->parts[p])
                        continue;
                const itd_state_t *st = itd_partition_state(eng->parts[p]);
                itd_err_t err = itd_state_dump(
                    st, wm_ms == INT64_MIN ? itd_state_watermark(st) : wm_ms,
                    out);
                if (err)
                        return err;
        }
        return ITD_OK;
}

itd_err_t itd_engine_dump_state(const itd_engine_t *eng, FILE *out) {
        return dump_state(eng, INT64_MIN, out);
}

itd_err_t itd_engine_dump_state_at(const itd_engine_t *eng, int64_t wm_ms,
                                   FILE *out) {
        return dump_state(eng, wm_ms, out);
}

int64_t itd_engine_watermark(const itd_engine_t *eng) {
        int64_t wm = INT64_MIN;
        for (size_t p = 0; p < eng->n_parts; p++) {
                if (!eng->parts[p])
                        continue;
                int64_t w = itd_state_watermark(
                    itd_partition_state(eng->parts[p]));
                if (w > wm)
                        wm = w;
        }
        return wm;
}

/* ------------------------------------------------------- checkpoints */

size_t itd_engine_partitions(const itd_engine_t *eng, int32_t *out,
                             size_t cap) {
        size_t n = 0;
        for (size_t p = 0; p < eng->n_parts; p++) {
                if (!eng->parts[p])
                        continue;
                if (n < cap)
                        out[n] = (int32_t)p;
                n++;
        }
        return n;
}

const itd_partition_t *itd_engine_partition_get(const itd_engine_t *eng,
                                               int32_t p) {
        if (p < 0 || (size_t)p >= eng->n_parts)
                return NULL;
        return eng->parts[p];
}

void itd_engine_adopt(itd_engine_t *eng, itd_partition_t *pt) {
        int32_t p = itd_partition_id(pt);
        if (p < 0)
                p = 0;
        parts_reserve(eng, p);
        itd_partition_destroy(eng->parts[p]);
        eng->parts[p] = pt;
}

itd_partition_t *itd_engine_detach(itd_engine_t *eng, int32_t p) {
        if (p < 0 || (size_t)p >= eng->n_parts)
                return NULL;
        itd_partition_t *pt = eng->parts[p];
        eng->parts[p] = NULL;
        return pt;
}

void itd_engine_drop_partition(itd_engine_t *eng, int32_t p) {
        itd_partition_destroy(itd_engine_detach(eng, p));
}

itd_err_t itd_engine_write_trainer(const itd_engine_t *eng, FILE *out,
                                   char *errstr, size_t errstr_size) {
        return itd_engine_write_trainers(&eng, 1, out, errstr, errstr_size);
}

itd_err_t itd_engine_write_trainers(const itd_engine_t *const *engs, size_t n,
                                    FILE *out, char *errstr,
                                    size_t errstr_size) {
        const itd_trainer_t *trs[ITD_TRAINER_WRITE_MAX];
        itd_trainer_extra_t extra = {0};
        for (size_t i = 0; i < n && i < ITD_TRAINER_WRITE_MAX; i++) {
                trs[i] = engs[i]->tr;
                extra.events += engs[i]->events;
                extra.predictions += engs[i]->predictions;
                extra.late += engs[i]->late;
        }
        return itd_trainer_write_all(trs, n, &extra, out, errstr,
                                     errstr_size);
}

itd_err_t itd_engine_read_trainer(itd_engine_t *eng, const void *buf,
                                  size_t len, int apply, char *errstr,
                                  size_t errstr_size) {
        itd_trainer_extra_t extra;
        itd_err_t err = itd_trainer_read(eng->tr, buf, len, apply, &extra,
                                         errstr, errstr_size);
        if (err == ITD_OK && apply) {
                eng->events = extra.events;
                eng->predictions = extra.predictions;
                eng->late = extra.late;
        }
        return err;
}

itd_model_t *itd_engine_model(itd_engine_t *eng) {
        return eng->model;
}

itd_eval_t *itd_engine_eval(itd_engine_t *eng) {
        return itd_trainer_eval(eng->tr);
}
