/*
 * enginesim.c - see enginesim.h.
 */
#include "enginesim.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kv_t base_kv[] = {
    {"model.embedding.buckets", "1024"},
    {"model.hidden", "16"},
    {"labels.horizon", "30m"},
    {"session.gap", "30m"},
    {"windows.allowed_lateness", "5s"},
};

itd_conf_t *conf_with(const kv_t *extra, size_t n) {
        itd_conf_t *conf = itd_conf_new();
        char err[256];
        for (size_t i = 0; i < sizeof base_kv / sizeof base_kv[0] + n; i++) {
                const kv_t *kv = i < sizeof base_kv / sizeof base_kv[0]
                                     ? &base_kv[i]
                                     : &extra[i - sizeof base_kv /
                                                      sizeof base_kv[0]];
                cr_assert_eq(itd_conf_set(conf, kv->key, kv->value, err,
                                          sizeof err),
                             ITD_OK, "%s: %s", kv->key, err);
        }
        return conf;
}



static void on_example(void *arg, int32_t partition,
                       const itd_example_t *ex) {
        sim_t *s = arg;
        size_t dim = s->dim;
        if (s->n_ex == s->cap_ex) {
                s->cap_ex = s->cap_ex ? 2 * s->cap_ex : 64;
                s->ex = realloc(s->ex, s->cap_ex * sizeof *s->ex);
                cr_assert_not_null(s->ex);
        }
        ex_t *e = &s->ex[s->n_ex++];
        e->partition = partition;
        e->offset = ex->offset;
        e->user_hash = ex->user_hash;
        e->ts_ms = ex->ts_ms;
        e->score = ex->score;
        e->label = ex->label;
        e->next = (int)ex->next;
        e->x = malloc(dim * sizeof *e->x);
        cr_assert_not_null(e->x);
        memcpy(e->x, ex->x, dim * sizeof *e->x);
        memcpy(e->ids, ex->ids, sizeof e->ids);
}

sim_t *sim_new(const itd_conf_t *conf) {
        sim_t *s = calloc(1, sizeof *s);
        cr_assert_not_null(s);
        char err[256];
        s->eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert_not_null(s->eng, "%s", err);
        s->dim = itd_engine_dim(s->eng);
        itd_engine_set_example_hook(s->eng, on_example, s);
        return s;
}

void sim_destroy(sim_t *s) {
        for (size_t i = 0; i < s->n_ex; i++)
                free(s->ex[i].x);
        free(s->ex);
        itd_engine_destroy(s->eng);
        free(s);
}

itd_engine_stats_t sim_stats(const sim_t *s) {
        itd_engine_stats_t st;
        itd_engine_stats(s->eng, &st);
        return st;
}

/* Feeds in[0..n) in batches of `batch` inputs, appending to what s holds. */
void sim_feed(sim_t *s, const itd_row_t *in, size_t n, size_t batch) {
        cr_assert_leq(s->n + n, MAXN);
        for (size_t i0 = 0; i0 < n; i0 += batch) {
                size_t k = n - i0 < batch ? n - i0 : batch;
                size_t at = s->n;
                uint64_t late0 = sim_stats(s).late;
                static itd_row_t rows[MAXN];
                memcpy(rows, in + i0, k * sizeof *rows);
                cr_assert_eq(itd_engine_process(s->eng, "events", rows, k,
                                                itd_now_wall_ms(), NULL, 0),
                             ITD_OK);
                for (size_t j = 0; j < k; j++) {
                        s->out[at + j] = rows[j].pred;
                        s->oc[at + j] = rows[j].outcome;
                        s->fired[at + j] = rows[j].trigger != NULL;
                        if (rows[j].trigger)
                                s->trig[at + j] = *rows[j].trigger;
                }
                if (k == 1)
                        s->late[at] = sim_stats(s).late > late0;
                s->n += k;
        }
}


/* The judged example of the prediction at (user, ts), or NULL. */
const ex_t *find_ex(const sim_t *s, const char *user, int64_t ts_ms) {
        const ex_t *found = NULL;
        for (size_t i = 0; i < s->n_ex; i++) {
                /* the engine's user hash is its own business: match by
                 * time, and by user through the prediction stream */
                if (s->ex[i].ts_ms != ts_ms)
                        continue;
                for (size_t j = 0; j < s->n; j++)
                        if (s->out[j].event_ts_ms == ts_ms &&
                            !strcmp(s->out[j].user_id, user) &&
                            s->ex[i].score ==
                                s->out[j].purchase_probability) {
                                cr_assert_null(found,
                                               "two examples for %s at %lld",
                                               user, (long long)ts_ms);
                                found = &s->ex[i];
                        }
        }
        return found;
}

void set_input(itd_row_t *in, const char *user, int64_t ts,
                      itd_event_type_t type, int32_t partition,
                      int64_t offset) {
        itd_event_clear(&in->ev);
        snprintf(in->ev.user_id, sizeof in->ev.user_id, "%s", user);
        in->ev.ts_ms = ts;
        in->ev.type = type;
        itd_row_decoded(in, partition, offset);
}

void gen_stream(itd_row_t *in, size_t n, int n_users,
                       int64_t span_ms, int purchases) {
        uint64_t r = 0x9e3779b97f4a7c15ULL;
        const char *const cats[] = {"shoes", "books", "phones",
                                           "garden", "toys"};
        for (size_t i = 0; i < n; i++) {
                r = r * 6364136223846793005ULL + 1442695040888963407ULL;
                uint32_t v = (uint32_t)(r >> 33);
                int u = (int)(v % (uint32_t)n_users);
                char user[16];
                snprintf(user, sizeof user, "user%d", u);
                int64_t ts = T0 + (int64_t)i * span_ms / (int64_t)n;
                if (i > 40 && v % 12 == 5)
                        ts -= 2 * SEC_MS;
                if (i > 40 && v % 40 == 7)
                        ts -= 10 * MIN_MS;
                itd_event_type_t type = (itd_event_type_t)((v >> 8) % 4);
                if (type == ITD_EV_REMOVE_FROM_CART)
                        type = ITD_EV_FAVORITE;
                if (purchases && (int)((v >> 16) % 100) < purchases)
                        type = ITD_EV_PURCHASE;
                set_input(&in[i], user, ts, type, u % 2, (int64_t)i);
                itd_event_t *ev = &in[i].ev;
                snprintf(ev->category, sizeof ev->category, "%s",
                         cats[(v >> 4) % 5]);
                snprintf(ev->item_id, sizeof ev->item_id, "item%u",
                         (v >> 12) % 50);
                ev->price = (double)((v >> 20) % 200) + 0.5;
                if (type == ITD_EV_SEARCH)
                        snprintf(ev->query, sizeof ev->query, "red %s",
                                 cats[(v >> 24) % 5]);
        }
}

int same_score(float a, float b) {
        return fabsf(a - b) <= 1e-6f + 1e-5f * fabsf(b);
}

/* Every field of a prediction but predicted_at_ms (the wall clock). */
void expect_same_prediction(const itd_prediction_t *a,
                                   const itd_prediction_t *b, size_t i,
                                   const char *what) {
        cr_expect_str_eq(a->prediction_id, b->prediction_id, "%s #%zu", what,
                         i);
        cr_expect_str_eq(a->user_id, b->user_id, "%s #%zu", what, i);
        cr_expect_eq(a->event_ts_ms, b->event_ts_ms, "%s #%zu", what, i);
        cr_expect(same_score(a->purchase_probability, b->purchase_probability),
                  "%s #%zu: %.9g != %.9g", what, i, a->purchase_probability,
                  b->purchase_probability);
        cr_expect_eq(a->next_action, b->next_action, "%s #%zu", what, i);
        for (size_t k = 0; k < ITD_NEXT__COUNT; k++)
                cr_expect(same_score(a->next_probs[k], b->next_probs[k]),
                          "%s #%zu: next-action probability %zu: %.9g != "
                          "%.9g", what, i, k, a->next_probs[k],
                          b->next_probs[k]);
        cr_expect_eq(a->model_version, b->model_version, "%s #%zu", what, i);
        cr_expect_eq(a->n_top_categories, b->n_top_categories, "%s #%zu",
                     what, i);
        for (size_t k = 0; k < a->n_top_categories && k < ITD_TOPCAT_MAX;
             k++) {
                cr_expect_str_eq(a->top_categories[k], b->top_categories[k],
                                 "%s #%zu", what, i);
                cr_expect(a->top_category_scores[k] ==
                              b->top_category_scores[k],
                          "%s #%zu", what, i);
        }
        cr_expect_eq(a->n_explanation, b->n_explanation, "%s #%zu", what, i);
}

/* What the model saw for one prediction, in two engines. */
void expect_same_inputs(const ex_t *x, const ex_t *y, size_t dim,
                               const char *what, size_t i) {
        cr_expect(same_score(x->score, y->score), "%s example %zu", what, i);
        cr_expect(!memcmp(x->x, y->x, dim * sizeof(float)),
                  "%s example %zu: features differ", what, i);
        cr_expect(!memcmp(x->ids, y->ids, sizeof x->ids),
                  "%s example %zu: sparse ids differ", what, i);
}

int ex_cmp(const void *pa, const void *pb) {
        const ex_t *a = pa, *b = pb;
        if (a->ts_ms != b->ts_ms)
                return a->ts_ms < b->ts_ms ? -1 : 1;
        if (a->user_hash != b->user_hash)
                return a->user_hash < b->user_hash ? -1 : 1;
        return 0;
}

/* Same judged examples, in any order: the order of resolution within one
 * batch is the labeler's, not a rule. */
void expect_same_examples(sim_t *a, sim_t *b, const char *what) {
        cr_assert_eq(a->n_ex, b->n_ex, "%s: %zu vs %zu examples", what,
                     a->n_ex, b->n_ex);
        qsort(a->ex, a->n_ex, sizeof *a->ex, ex_cmp);
        qsort(b->ex, b->n_ex, sizeof *b->ex, ex_cmp);
        for (size_t i = 0; i < a->n_ex; i++) {
                const ex_t *x = &a->ex[i], *y = &b->ex[i];
                cr_assert_eq(x->ts_ms, y->ts_ms, "%s example %zu", what, i);
                cr_assert_eq(x->user_hash, y->user_hash, "%s example %zu",
                             what, i);
                cr_expect_eq(x->label, y->label, "%s example %zu", what, i);
                cr_expect_eq(x->next, y->next, "%s example %zu", what, i);
                expect_same_inputs(x, y, a->dim, what, i);
        }
}

void sim_forget(sim_t *s) {
        for (size_t i = 0; i < s->n_ex; i++)
                free(s->ex[i].x);
        s->n_ex = 0;
        s->n = 0;
}

char *partition_snapshot(const itd_engine_t *eng, int32_t p, size_t *len) {
        char *buf = NULL;
        FILE *f = open_memstream(&buf, len);
        char err[256];
        const itd_partition_t *pt = itd_engine_partition_get(eng, p);
        cr_assert_not_null(pt, "partition %d", p);
        cr_assert_eq(itd_partition_write(pt, f, err, sizeof err), ITD_OK,
                     "%s", err);
        fclose(f);
        return buf;
}
