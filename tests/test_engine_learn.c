/*
 * test_engine_learn.c - how the engine (core/engine.c) lets the model
 * learn on a sparse stream: a poll batch spanning more event time than
 * model.score.span is scored in chunks, with training in between; every
 * resolved label reaches its user's label counts, which the next
 * predictions of that user read (docs/MODEL.md, docs/FEATURES.md "User
 * propensity").
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "conf_parts.h"
#include "intentd/engine.h"
#include "intentd/log.h"
#include "intentd/conf.h"
#include "intentd/event.h"
#include "intentd/state.h"

#define MIN_MS 60000LL
#define T0 1700000000000LL
#define N_EV 400

static itd_conf_t *conf_with(const char *span) {
        itd_conf_t *conf = itd_conf_new();
        char err[256];
        const char *kv[][2] = {
            {"model.embedding.buckets", "1024"},
            {"model.hidden", "16"},
            {"model.batch.size", "8"},
            {"labels.horizon", "30m"},
            {"windows.allowed_lateness", "5s"},
            {"model.score.span", span},
            /* one event a minute, like clockwork: a script by the risk
             * score, whose examples would not be learned from */
            {"risk.train.threshold", "0"},
        };
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
                cr_assert_eq(itd_conf_set(conf, kv[i][0], kv[i][1], err,
                                          sizeof err), ITD_OK, "%s: %s",
                             kv[i][0], err);
        return conf;
}

/* N_EV events of 8 users, one a minute (so one batch spans 400 minutes),
 * user 0 buys every 10th event of its own */
static void sparse_stream(itd_row_t *in) {
        for (size_t i = 0; i < N_EV; i++) {
                itd_event_clear(&in[i].ev);
                int u = (int)(i % 8);
                snprintf(in[i].ev.user_id, sizeof in[i].ev.user_id, "u%d", u);
                in[i].ev.ts_ms = T0 + (int64_t)i * MIN_MS;
                in[i].ev.type = u == 0 && i % 80 == 40 ? ITD_EV_PURCHASE
                                                       : ITD_EV_VIEW;
                itd_row_decoded(&in[i], 0, (int64_t)i);
        }
}

static itd_row_t in[N_EV];

/* An engine of conf fed the sparse stream in one batch (in[] holds what
 * it returned). */
static itd_engine_t *fed(const itd_conf_t *conf) {
        char err[256];
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert_not_null(eng, "%s", err);
        sparse_stream(in);
        cr_assert_eq(itd_engine_process(eng, "events", in, N_EV,
                                        itd_now_wall_ms(), NULL, 0),
                     ITD_OK);
        return eng;
}

/* model_version of the first and last prediction of one batch */
static void versions(const char *span, int64_t *first, int64_t *last) {
        itd_conf_t *conf = conf_with(span);
        itd_engine_t *eng = fed(conf);
        for (size_t i = 0; i < N_EV; i++)
                cr_assert_eq(in[i].outcome, ITD_OUT_PREDICTED);
        for (size_t i = 1; i < N_EV; i++)
                cr_assert_geq(in[i].pred.model_version,
                              in[i - 1].pred.model_version, "event %zu", i);
        *first = in[0].pred.model_version;
        *last = in[N_EV - 1].pred.model_version;
        itd_engine_stats_t s;
        itd_engine_stats(eng, &s);
        /* what resolved within the batch was learned from either way */
        cr_expect_gt(s.train_steps, 10);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
}

Test(engine_learn, a_batch_spanning_hours_is_scored_in_chunks_of_event_time) {
        int64_t f, l;
        versions("3m", &f, &l);
        /* labels resolved after the first 30 minutes were learned from
         * before the later events were scored */
        cr_expect_eq(f, 0);
        cr_expect_gt(l, 10, "the last event was scored by step %lld",
                     (long long)l);
        versions("0", &f, &l);
        cr_expect_eq(f, 0);
        cr_expect_eq(l, 0, "span 0: one pass, the model of the batch start");
}

/* examples trained on (pos, neg) and negatives sampled out, one run of
 * the sparse stream at model.negative.sample.rate */
static void sampled(const char *rate, itd_engine_stats_t *s) {
        itd_conf_t *conf = conf_with("3m");
        char err[256];
        cr_assert_eq(itd_conf_set(conf, "model.negative.sample.rate", rate,
                                  err, sizeof err),
                     ITD_OK, "%s", err);
        itd_engine_t *eng = fed(conf);
        itd_engine_advance(eng, T0 + (N_EV + 60) * MIN_MS);
        itd_engine_stats(eng, s);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
}

Test(engine_learn, negative_down_sampling_trains_on_a_share_of_negatives) {
        itd_engine_stats_t all, quarter, again;
        sampled("1", &all);
        sampled("0.25", &quarter);
        sampled("0.25", &again);
        cr_expect_eq(all.examples_neg_sampled_out, 0);
        cr_assert_gt(all.examples_neg, 100);
        /* every positive trained; the negatives split, none lost */
        cr_expect_eq(quarter.examples_pos, all.examples_pos);
        cr_expect_eq(quarter.examples_neg + quarter.examples_neg_sampled_out,
                     all.examples_neg);
        double share = (double)quarter.examples_neg / (double)all.examples_neg;
        /* ~370 negatives: a binomial share of 0.25 has sd 0.023 */
        cr_expect(share > 0.15 && share < 0.35, "kept %.3f", share);
        cr_expect_lt(quarter.train_steps, all.train_steps);
        /* the choice is a hash of user and time: the same every run */
        cr_expect_eq(again.examples_neg, quarter.examples_neg);
}

typedef struct seen_s {
        size_t f_lo, f_n;
        uint64_t buyer;
        float max_lo, max_n; /* the buyer's largest feature values */
        float other_lo_min, other_lo_max;
        size_t n;
} seen_t;

static void hook(void *arg, int32_t partition, const itd_example_t *ex) {
        (void)partition;
        seen_t *s = arg;
        const float *x = ex->x;
        s->n++;
        if (ex->user_hash == s->buyer) {
                s->max_lo = fmaxf(s->max_lo, x[s->f_lo]);
                s->max_n = fmaxf(s->max_n, x[s->f_n]);
        } else {
                s->other_lo_min = fminf(s->other_lo_min, x[s->f_lo]);
                s->other_lo_max = fmaxf(s->other_lo_max, x[s->f_lo]);
        }
}

Test(engine_learn, resolved_labels_reach_their_users_features) {
        itd_conf_t *conf = conf_with("3m");
        char err[256];
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert_not_null(eng, "%s", err);
        seen_t s = {.buyer = itd_user_hash("u0"), .other_lo_min = 1e9f,
                    .other_lo_max = -1e9f};
        char nm[64];
        for (size_t i = 0; i < itd_engine_dim(eng); i++) {
                itd_features_name(&itd_engine_partition_conf(eng)->state, i, nm,
                                  sizeof nm);
                if (!strcmp(nm, "label_logodds"))
                        s.f_lo = i;
                if (!strcmp(nm, "labels_resolved"))
                        s.f_n = i;
        }
        cr_assert(s.f_lo && s.f_n);
        itd_engine_set_example_hook(eng, hook, &s);
        sparse_stream(in);
        cr_assert_eq(itd_engine_process(eng, "events", in, N_EV,
                                        itd_now_wall_ms(), NULL, 0),
                     ITD_OK);
        itd_engine_advance(eng, T0 + (N_EV + 60) * MIN_MS);
        cr_expect_eq(s.n, N_EV, "every prediction resolved once");
        /* the only buyer's later predictions saw its positive labels: it
         * buys more than the partition; the others less */
        cr_expect_gt(s.max_lo, 0.1f, "buyer: %g", (double)s.max_lo);
        cr_expect_gt(s.max_n, 1.0f, "buyer's labels: %g", (double)s.max_n);
        cr_expect_leq(s.other_lo_max, 0.0f, "others: up to %g",
                      (double)s.other_lo_max);
        cr_expect_lt(s.other_lo_min, 0.0f);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
}
