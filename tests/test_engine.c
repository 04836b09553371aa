/*
 * test_engine.c - the rules of the processing core (core/include/intentd/engine.h),
 * through its public interface only, on small hand-built streams:
 *
 *   - observe before add: an event resolves earlier predictions of its
 *     user, never its own;
 *   - labels: a purchase of the same user in [t, t + horizon] makes the
 *     prediction at t positive; a watermark past t + horizon makes it
 *     negative; a pending prediction is never negative;
 *   - no future leakage: a prediction does not change when later events
 *     are appended, and window counts ignore events with a later time that
 *     arrived earlier;
 *   - batch scoring equals single scoring, while nothing resolves within
 *     the stream (see that test for why that is the condition), model
 *     outputs to float rounding (see same_score);
 *   - late data: predicted, never applied, never pending, never a trigger,
 *     but resolving open labels;
 *   - accounting: every input ends as exactly one outcome, and every
 *     on-time prediction ends as exactly one judged example, which names
 *     the row it was predicted on (partition, offset, user hash);
 *   - a partition written, read and adopted by a second engine (with the
 *     model and the trainer) predicts and resolves what the first does;
 *   - idle partitions: event time moves on with the wall clock only once
 *     nothing at all arrived for idle_ms, and then only for a partition
 *     without events for max(idle_ms, allowed lateness), from its frontier.
 *
 * Triggers: tests/test_engine_triggers.c; the harness: tests/enginesim.h.
 * The tests compare engines with engines and rules with outcomes; no score
 * is hard-coded, so they hold whatever the model and features become.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enginesim.h"
#include "intentd/model.h"
#include "testutil.h"

/* ------------------------------------------- labels, observe before add */

/* One event of a hand-built stream: user, minutes after T0 (+ ms), type;
 * and what its prediction must become: label 1/0 with its next action, or
 * PENDING (no judged example). */
#define PENDING (-1)
typedef struct row_s {
        const char *user;
        int64_t at_ms;
        itd_event_type_t type;
        int label;
        itd_next_t next;
} row_t;

typedef struct label_case_s {
        const char *name;
        row_t rows[6];
        size_t n;
        int64_t advance_ms; /* itd_engine_advance to T0 + this; 0: none */
} label_case_t;

#define M(x) ((int64_t)(x) * MIN_MS)
#define V ITD_EV_VIEW
#define P ITD_EV_PURCHASE
#define C ITD_EV_ADD_TO_CART
#define N_PURCHASE ITD_NEXT_PURCHASE
#define N_VIEW ITD_NEXT_VIEW
#define N_LEAVE ITD_NEXT_LEAVE

/* One user alone (or two, where said) never makes a watermark on its own
 * (the frontier needs two users); only itd_engine_advance moves it here. */
static const label_case_t label_cases[] = {
    {"a purchase of the same user inside the horizon makes it positive",
     {{"u", 0, V, 1, N_PURCHASE}, {"u", M(10), P, 0, N_LEAVE}}, 2, FAR},
    {"a purchase at exactly t + horizon still counts",
     {{"u", 0, C, 1, N_PURCHASE}, {"u", HORIZON_MS, P, 0, N_LEAVE}}, 2, FAR},
    {"a purchase 1 ms after the horizon does not",
     {{"u", 0, C, 0, N_LEAVE}, {"u", HORIZON_MS + 1, P, 0, N_LEAVE}}, 2, FAR},
    {"an event never resolves its own prediction: a lone purchase is "
     "negative",
     {{"u", 0, P, 0, N_LEAVE}}, 1, FAR},
    {"a second purchase makes the first one's prediction positive",
     {{"u", 0, P, 1, N_PURCHASE}, {"u", M(1), P, 0, N_LEAVE}}, 2, FAR},
    {"an event resolves the next action of the user's earlier predictions",
     {{"u", 0, V, 0, N_VIEW}, {"u", M(1), V, 0, N_VIEW}, {"u", M(2), V, 0,
                                                          N_LEAVE}},
     3, FAR},
    {"another user's purchase is not this user's",
     {{"u", 0, V, 0, N_LEAVE}, {"w", M(1), P, 0, N_LEAVE}}, 2, FAR},
    {"a purchase older than the prediction (arriving after it) does not "
     "count",
     {{"u", M(10), V, 0, N_LEAVE}, {"u", M(9), P, 0, N_LEAVE}}, 2, FAR},
    {"pending while the watermark is at t + horizon (passing is strict)",
     {{"u", 0, V, PENDING, 0}}, 1, HORIZON_MS},
    {"negative once the watermark is 1 ms past t + horizon",
     {{"u", 0, V, 0, N_LEAVE}}, 1, HORIZON_MS + 1},
    {"a purchase resolves at once, before any watermark",
     {{"u", 0, V, 1, N_PURCHASE}, {"u", M(5), P, PENDING, 0}}, 2, 0},
    {"the watermark resolves only the horizons it has passed",
     {{"u", 0, V, 0, N_VIEW}, {"u", M(20), V, PENDING, 0}}, 2, M(45)},
};

Test(engine_labels, table) {
        itd_conf_t *conf = conf_with(NULL, 0);
        for (size_t c = 0; c < sizeof label_cases / sizeof label_cases[0];
             c++) {
                const label_case_t *lc = &label_cases[c];
                sim_t *s = sim_new(conf);
                itd_row_t in[6];
                for (size_t i = 0; i < lc->n; i++)
                        set_input(&in[i], lc->rows[i].user,
                                  T0 + lc->rows[i].at_ms, lc->rows[i].type, 0,
                                  (int64_t)i);
                sim_feed(s, in, lc->n, 1);
                if (lc->advance_ms)
                        itd_engine_advance(s->eng, T0 + lc->advance_ms);
                size_t pending = 0, pos = 0, neg = 0;
                for (size_t i = 0; i < lc->n; i++) {
                        const row_t *rw = &lc->rows[i];
                        cr_assert_eq(s->oc[i], ITD_OUT_PREDICTED, "%s",
                                     lc->name);
                        const ex_t *e = find_ex(s, rw->user, T0 + rw->at_ms);
                        if (rw->label == PENDING) {
                                cr_expect_null(e, "%s: row %zu resolved",
                                               lc->name, i);
                                pending++;
                                continue;
                        }
                        cr_assert_not_null(e, "%s: row %zu still pending",
                                           lc->name, i);
                        cr_expect_eq(e->label, rw->label,
                                     "%s: row %zu label", lc->name, i);
                        cr_expect_eq(e->next, (int)rw->next,
                                     "%s: row %zu next action", lc->name, i);
                        pos += rw->label == 1;
                        neg += rw->label == 0;
                }
                itd_engine_stats_t st = sim_stats(s);
                cr_expect_eq(st.pending, pending, "%s", lc->name);
                cr_expect_eq(st.examples_pos, pos, "%s", lc->name);
                cr_expect_eq(st.examples_neg, neg, "%s", lc->name);
                sim_destroy(s);
        }
        itd_conf_destroy(conf);
}

/* ------------------------------------------------------ future leakage */

Test(engine_leakage, appending_later_events_changes_no_earlier_prediction) {
        itd_conf_t *conf = conf_with(NULL, 0);
        static itd_row_t in[400];
        gen_stream(in, 400, 12, 90 * MIN_MS, 3);
        static const size_t prefix[] = {1, 37, 200, 399};
        for (size_t p = 0; p < sizeof prefix / sizeof prefix[0]; p++) {
                /* the prefix in one batch, and in batches of 16: later
                 * inputs, in the same batch or after it, change nothing */
                static const size_t batch[] = {400, 16};
                for (size_t b = 0; b < 2; b++) {
                        sim_t *s = sim_new(conf);
                        sim_feed(s, in, prefix[p], batch[b]);
                        sim_t *ref = sim_new(conf);
                        sim_feed(ref, in, 400, batch[b]);
                        for (size_t i = 0; i < prefix[p]; i++) {
                                cr_assert_eq(s->oc[i], ref->oc[i]);
                                expect_same_prediction(&s->out[i],
                                                       &ref->out[i], i,
                                                       "prefix");
                        }
                        /* and bit for bit what the model saw: the end of
                         * input resolves every on-time prediction */
                        itd_engine_advance(s->eng, T0 + FAR);
                        itd_engine_advance(ref->eng, T0 + FAR);
                        cr_assert_gt(s->n_ex, prefix[p] / 2);
                        qsort(ref->ex, ref->n_ex, sizeof *ref->ex, ex_cmp);
                        for (size_t i = 0; i < s->n_ex; i++) {
                                const ex_t *e = bsearch(&s->ex[i], ref->ex,
                                                        ref->n_ex,
                                                        sizeof *ref->ex,
                                                        ex_cmp);
                                cr_assert_not_null(e);
                                expect_same_inputs(&s->ex[i], e, s->dim,
                                                   "prefix", i);
                        }
                        sim_destroy(ref);
                        sim_destroy(s);
                }
        }
        itd_conf_destroy(conf);
}

/* Window counts are taken as of the event's own time: an event with a
 * later time that arrived earlier (out of order, within the lateness) is
 * not in them. */
Test(engine_leakage, window_counts_ignore_earlier_arrivals_with_later_times) {
        itd_conf_t *conf = conf_with(NULL, 0);
        itd_row_t with[3], without[2];
        set_input(&with[0], "u", T0, ITD_EV_VIEW, 0, 0);
        set_input(&with[1], "u", T0 + 4 * SEC_MS, ITD_EV_ADD_TO_CART, 0, 1);
        set_input(&with[2], "u", T0 + 2 * SEC_MS, ITD_EV_VIEW, 0, 2);
        without[0] = with[0];
        without[1] = with[2];
        sim_t *a = sim_new(conf), *b = sim_new(conf);
        sim_feed(a, with, 3, 3);
        sim_feed(b, without, 2, 2);
        itd_engine_advance(a->eng, T0 + FAR);
        itd_engine_advance(b->eng, T0 + FAR);
        cr_assert_eq(sim_stats(a).late, 0, "the out-of-order view is on time");
        const ex_t *ea = find_ex(a, "u", T0 + 2 * SEC_MS);
        const ex_t *eb = find_ex(b, "u", T0 + 2 * SEC_MS);
        cr_assert(ea && eb);
        const itd_state_conf_t *sc = &itd_engine_partition_conf(a->eng)->state;
        size_t n_counts = 0;
        for (size_t i = 0; i < a->dim; i++) {
                char name[64];
                itd_features_name(sc, i, name, sizeof name);
                if (strncmp(name, "count_", 6) != 0)
                        continue;
                n_counts++;
                cr_expect(ea->x[i] == eb->x[i],
                          "%s sees the cart at +4 s from the view at +2 s",
                          name);
        }
        cr_assert_gt(n_counts, 0, "no window-count feature found");
        sim_destroy(a);
        sim_destroy(b);
        itd_conf_destroy(conf);
}

/* ------------------------------------------------- batch equals single */

/*
 * What resolves within a batch reaches the model (training) at the end of
 * the batch, so batches of different sizes would score later events with
 * different parameters once a label resolves. The rule pinned here is the
 * one that holds by design: while nothing resolves before the end of the
 * stream (no purchase, the stream shorter than the horizon and the session
 * gap), every batch size gives the same predictions (model outputs to float
 * rounding: same_score) and the same judged examples, features bit for
 * bit, once the end of input resolves them.
 */
Test(engine_batch, batch_sizes_give_identical_predictions_and_examples) {
        itd_conf_t *conf = conf_with(NULL, 0);
        static itd_row_t in[600];
        gen_stream(in, 600, 40, 20 * MIN_MS, 0);
        sim_t *ref = NULL;
        size_t sizes[] = {1, 7, 64, 0};
        for (size_t b = 0; b < sizeof sizes / sizeof sizes[0]; b++) {
                sim_t *s = sim_new(conf);
                if (!sizes[b])
                        sizes[b] = itd_engine_max_batch(s->eng);
                sim_feed(s, in, 600, sizes[b]);
                itd_engine_stats_t st = sim_stats(s);
                cr_assert_eq(st.examples_pos + st.examples_neg, 0,
                             "something resolved within the stream");
                cr_assert_eq(st.train_steps, 0);
                cr_assert_gt(st.late, 0, "the stream has late events");
                itd_engine_advance(s->eng, in[599].ev.ts_ms + FAR);
                cr_assert_gt(s->n_ex, 500);
                if (!ref) {
                        ref = s;
                        continue;
                }
                char what[32];
                snprintf(what, sizeof what, "batches of %zu", sizes[b]);
                for (size_t i = 0; i < 600; i++) {
                        cr_assert_eq(s->oc[i], ref->oc[i], "%s #%zu", what,
                                     i);
                        expect_same_prediction(&s->out[i], &ref->out[i], i,
                                               what);
                }
                expect_same_examples(s, ref, what);
                itd_engine_stats_t rs = sim_stats(ref);
                st = sim_stats(s);
                cr_expect_eq(st.late, rs.late, "%s", what);
                cr_expect_eq(st.examples_neg, rs.examples_neg, "%s", what);
                sim_destroy(s);
        }
        sim_destroy(ref);
        itd_conf_destroy(conf);
}

/* --------------------------------------------------------- accounting */

Test(engine_accounting, every_input_ends_as_exactly_one_outcome) {
        itd_conf_t *conf = conf_with(NULL, 0);
        static itd_row_t in[300];
        gen_stream(in, 300, 20, 60 * MIN_MS, 4);
        /* inputs the engine refuses: a time beyond +-2^62 ms and a type
         * outside the enum */
        in[50].ev.ts_ms = INT64_MAX;
        in[51].ev.ts_ms = INT64_MIN;
        in[52].ev.type = (itd_event_type_t)ITD_EV__COUNT;
        in[53].ev.type = (itd_event_type_t)-1;
        sim_t *s = sim_new(conf);
        sim_feed(s, in, 300, 64);
        itd_engine_stats_t st = sim_stats(s);
        size_t predicted = 0, filtered = 0;
        for (size_t i = 0; i < 300; i++) {
                cr_assert(s->oc[i] == ITD_OUT_PREDICTED ||
                          s->oc[i] == ITD_OUT_FILTERED);
                if (s->oc[i] == ITD_OUT_FILTERED) {
                        filtered++;
                        continue;
                }
                predicted++;
                char id[ITD_PREDICTION_ID_MAX];
                snprintf(id, sizeof id, "events/%d/%lld", (int)in[i].partition,
                         (long long)in[i].offset);
                cr_expect_str_eq(s->out[i].prediction_id, id);
                cr_expect_str_eq(s->out[i].user_id, in[i].ev.user_id);
                cr_expect_eq(s->out[i].event_ts_ms, in[i].ev.ts_ms);
        }
        for (size_t i = 50; i < 54; i++)
                cr_expect_eq(s->oc[i], ITD_OUT_FILTERED, "input %zu", i);
        cr_expect_eq(filtered, 4);
        cr_expect_eq(st.events, 300);
        cr_expect_eq(st.predictions, predicted);
        cr_expect_eq(st.filtered, filtered);
        cr_assert_gt(st.late, 0, "the stream has late events");
        cr_expect_leq(st.late, st.predictions, "late events are predictions");

        /* Every on-time prediction ends as exactly one judged example (or
         * a counted drop) once the end of input resolves what is open. */
        itd_engine_advance(s->eng, T0 + FAR);
        st = sim_stats(s);
        cr_expect_eq(st.pending, 0);
        cr_expect_eq(s->n_ex + st.labels_dropped, st.predictions - st.late);
        cr_expect_eq(st.examples_pos + st.examples_neg, s->n_ex);
        cr_assert_gt(st.examples_pos, 0, "the stream has purchases");
        sim_destroy(s);
        itd_conf_destroy(conf);
}

/* The batch contract: a judged example comes back with the identity of
 * the row it was predicted on (partition, offset) and that row's user
 * hash, so a caller finds the row without matching anything. */
Test(engine_accounting, every_judged_example_names_its_row) {
        itd_conf_t *conf = conf_with(NULL, 0);
        static itd_row_t in[300];
        gen_stream(in, 300, 20, 60 * MIN_MS, 4); /* offset i, two parts */
        sim_t *s = sim_new(conf);
        sim_feed(s, in, 300, 64);
        itd_engine_advance(s->eng, T0 + FAR);
        cr_assert_gt(s->n_ex, 200);
        static unsigned char seen[300];
        for (size_t k = 0; k < s->n_ex; k++) {
                const ex_t *e = &s->ex[k];
                cr_assert(e->offset >= 0 && e->offset < 300, "offset %lld",
                          (long long)e->offset);
                size_t i = (size_t)e->offset;
                cr_expect_eq(seen[i]++, 0, "row %zu judged twice", i);
                cr_expect_eq(e->partition, in[i].partition, "row %zu", i);
                cr_expect_eq(e->ts_ms, in[i].ev.ts_ms, "row %zu", i);
                cr_expect_eq(e->user_hash, itd_user_hash(in[i].ev.user_id),
                             "row %zu", i);
                cr_expect_eq(s->oc[i], ITD_OUT_PREDICTED, "row %zu", i);
                cr_expect(e->score == s->out[i].purchase_probability,
                          "row %zu: judged %.9g, predicted %.9g", i,
                          e->score, s->out[i].purchase_probability);
        }
        sim_destroy(s);
        itd_conf_destroy(conf);
}

/* ---------------------------------------------------------- late data */

/* Late data (docs/FEATURES.md, "Late data"): every valid event gets a
 * prediction; one future-dated event does not make the events after it
 * late; a late event changes no state, adds no pending label and fires no
 * trigger, but still resolves the open label of an earlier prediction.
 * Triggers on, and every score crosses enter: a trigger would fire for
 * any on-time event. */
static const kv_t late_kv[] = {
    {"triggers.rule", "absolute"},
    {"triggers.enter", "0.0001"},
    {"triggers.exit", "0.00005"},
};

static sim_t *late_sim(itd_conf_t **conf) {
        *conf = conf_with(late_kv, 3);
        sim_t *s = sim_new(*conf);
        itd_engine_enable_triggers(s->eng);
        return s;
}

/* A batch builder: inputs on partition 0, offsets counting up. */
typedef struct batch_s {
        itd_row_t in[512];
        size_t n;
        int64_t offset;
} batch_t;

static void batch_add(batch_t *b, const char *user, int64_t ts,
                      itd_event_type_t type) {
        cr_assert_lt(b->n, 512);
        set_input(&b->in[b->n++], user, ts, type, 0, b->offset++);
}

/* Feeds what was added as one batch; every outcome must be a prediction. */
static void batch_flush(batch_t *b, sim_t *s) {
        size_t at = s->n;
        sim_feed(s, b->in, b->n, b->n);
        for (size_t i = at; i < s->n; i++) {
                cr_expect_eq(s->oc[i], ITD_OUT_PREDICTED,
                             "%s at %lld got no prediction", s->out[i].user_id,
                             (long long)(b->in[i - at].ev.ts_ms - T0));
                cr_expect_str_eq(s->out[i].user_id, b->in[i - at].ev.user_id);
        }
        b->n = 0;
}

Test(engine_late, one_future_dated_event_does_not_silence_the_partition) {
        itd_conf_t *conf;
        sim_t *s = late_sim(&conf);
        static batch_t b;
        memset(&b, 0, sizeof b);
        char user[32];
        for (int i = 0; i < 20; i++) {
                snprintf(user, sizeof user, "u%d", i);
                batch_add(&b, user, T0 + i * 1000, ITD_EV_VIEW);
        }
        /* a client whose clock is 50 minutes ahead (within max_future) */
        batch_add(&b, "stray", T0 + 50 * MIN_MS, ITD_EV_VIEW);
        for (int i = 20; i < 200; i++) {
                snprintf(user, sizeof user, "u%d", i % 30);
                batch_add(&b, user, T0 + i * 1000, ITD_EV_VIEW);
        }
        batch_flush(&b, s);
        itd_engine_stats_t st = sim_stats(s);
        cr_expect_eq(st.events, 201);
        cr_expect_eq(st.predictions, 201);
        cr_expect_eq(st.late, 0, "%llu events after the stray one were late",
                     (unsigned long long)st.late);
        cr_expect_eq(st.filtered, 0);
        /* the stray event's prediction waits like any other: nothing got
         * resolved as negative by a watermark an hour ahead */
        cr_expect_eq(st.examples_neg, 0);
        itd_partition_info_t info;
        const itd_partition_t *p0 = itd_engine_partition_get(s->eng, 0);
        cr_assert_not_null(p0);
        itd_partition_info(p0, &info);
        cr_expect_lt(info.watermark_ms, T0 + 200 * 1000);
        sim_destroy(s);
        itd_conf_destroy(conf);
}

Test(engine_late,
     a_late_event_is_predicted_changes_no_state_and_resolves_open_labels) {
        itd_conf_t *conf;
        sim_t *s = late_sim(&conf);
        static batch_t b;
        memset(&b, 0, sizeof b);
        char user[32];
        batch_add(&b, "buyer", T0 + 1000, ITD_EV_ADD_TO_CART);
        for (int i = 0; i < 40; i++) {
                snprintf(user, sizeof user, "u%d", i);
                batch_add(&b, user, T0 + 10 * MIN_MS + i * 1000, ITD_EV_VIEW);
        }
        batch_flush(&b, s);
        itd_engine_stats_t before = sim_stats(s), after;
        itd_partition_info_t info;
        const itd_partition_t *p0 = itd_engine_partition_get(s->eng, 0);
        cr_assert_not_null(p0);
        itd_partition_info(p0, &info);
        cr_assert_gt(info.watermark_ms, T0 + 5 * MIN_MS);
        cr_assert_eq(before.examples_pos, 0);
        cr_assert_eq(before.late, 0);

        /* The buyer's phone uploads its purchase 9 minutes late: within
         * the 30-minute horizon of the cart prediction, whose label is
         * still open. A user never seen before sends a late view too. */
        size_t at = s->n;
        batch_add(&b, "buyer", T0 + MIN_MS, ITD_EV_PURCHASE);
        batch_add(&b, "newcomer", T0 + 2 * MIN_MS, ITD_EV_VIEW);
        batch_flush(&b, s);
        after = sim_stats(s);
        cr_expect_eq(after.predictions, before.predictions + 2);
        cr_expect_eq(after.late, 2);
        cr_expect_eq(after.users, before.users,
                     "a late event creates no user");
        cr_expect_eq(after.pending, before.pending - 1,
                     "the cart prediction resolved; the late ones add "
                     "nothing pending");
        cr_expect_eq(after.examples_pos, 1,
                     "a late purchase inside an open horizon is a positive");
        cr_expect_not(s->fired[at], "a late event fires no trigger");
        cr_expect_not(s->fired[at + 1]);
        cr_expect_eq(after.events, after.predictions + after.filtered);

        /* The dumped state has no purchase for the buyer: late events do
         * not change windows. */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cr_assert_eq(itd_engine_dump_state(s->eng, f), ITD_OK);
        fclose(f);
        cr_assert(strstr(text, "\"buyer\"") != NULL, "%s", text);
        cr_expect(strstr(text, "\"PURCHASE\":1") == NULL, "%s", text);
        cr_expect(strstr(text, "newcomer") == NULL);
        free(text);
        sim_destroy(s);
        itd_conf_destroy(conf);
}

/* A purchase that arrives after the watermark closed the horizon of an
 * earlier prediction changes nothing: that label was already negative. */
Test(engine_late, a_late_purchase_does_not_reopen_a_closed_label) {
        itd_conf_t *conf;
        sim_t *s = late_sim(&conf);
        static batch_t b;
        memset(&b, 0, sizeof b);
        char user[32];
        batch_add(&b, "buyer", T0, ITD_EV_VIEW);
        for (int i = 0; i < 40; i++) {
                snprintf(user, sizeof user, "u%d", i);
                batch_add(&b, user, T0 + 40 * MIN_MS + i * 1000, ITD_EV_VIEW);
        }
        batch_flush(&b, s);
        itd_engine_stats_t before = sim_stats(s), after;
        cr_assert_eq(before.examples_neg, 1,
                     "the buyer's view resolved negative");
        batch_add(&b, "buyer", T0 + 20 * MIN_MS, ITD_EV_PURCHASE);
        batch_flush(&b, s);
        after = sim_stats(s);
        cr_expect_eq(after.late, 1);
        cr_expect_eq(after.examples_pos, 0);
        cr_expect_eq(after.examples_neg, before.examples_neg);
        sim_destroy(s);
        itd_conf_destroy(conf);
}

/* -------------------------------------------------------- checkpoints */

/* Engine a: stream part one, then its partitions, trainer and model are
 * written; engine b reads and adopts them. Both then take part two: same
 * predictions, same judged examples, same counters. */
Test(engine_checkpoint, write_read_adopt_continues_identically) {
        /* every score crosses enter: each user fires one UP, on its first
         * event, and never a DOWN; so after the cut only users new to
         * the partition fire, if b holds a's trigger table */
        static const kv_t kv[] = {{"model.batch.size", "16"},
                                  {"triggers.rule", "absolute"},
                                  {"triggers.enter", "0.0001"},
                                  {"triggers.exit", "0.00005"}};
        itd_conf_t *conf = conf_with(kv, 4);
        static itd_row_t in[600];
        gen_stream(in, 600, 30, 100 * MIN_MS, 4);
        for (size_t i = 310; i < 600; i += 29) {
                snprintf(in[i].ev.user_id, sizeof in[i].ev.user_id,
                         "newcomer%zu", i);
                in[i].user_hash = itd_user_hash(in[i].ev.user_id);
        }
        sim_t *a = sim_new(conf);
        itd_engine_enable_triggers(a->eng);
        sim_feed(a, in, 300, 50);
        itd_engine_stats_t sa = sim_stats(a);
        cr_assert_gt(sa.train_steps, 0, "the model learned before the cut");
        cr_assert_gt(sa.pending, 0, "labels are open at the cut");

        char dir[256], path[300], err[256];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/model.ckpt", dir);
        cr_assert_eq(itd_model_save(itd_engine_model(a->eng), path, NULL, err,
                                    sizeof err),
                     ITD_OK, "%s", err);
        char *tbuf = NULL;
        size_t tlen = 0;
        FILE *tf = open_memstream(&tbuf, &tlen);
        cr_assert_eq(itd_engine_write_trainer(a->eng, tf, err, sizeof err),
                     ITD_OK, "%s", err);
        fclose(tf);

        sim_t *b = sim_new(conf);
        itd_engine_enable_triggers(b->eng);
        cr_assert_eq(itd_model_load(itd_engine_model(b->eng), path, NULL, err,
                                    sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_eq(itd_engine_read_trainer(b->eng, tbuf, tlen, 1, err,
                                             sizeof err),
                     ITD_OK, "%s", err);
        free(tbuf);
        int32_t parts[8];
        size_t np = itd_engine_partitions(a->eng, parts, 8);
        cr_assert_eq(np, 2);
        for (size_t k = 0; k < np; k++) {
                char *buf = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&buf, &len);
                cr_assert_eq(itd_partition_write(
                                 itd_engine_partition_get(a->eng, parts[k]), f,
                                 err, sizeof err),
                             ITD_OK, "%s", err);
                fclose(f);
                itd_partition_info_t info;
                itd_partition_info(itd_engine_partition_get(a->eng, parts[k]),
                                   &info);
                f = fmemopen(buf, len, "rb");
                itd_partition_t *pt;
                cr_assert_eq(itd_partition_read(
                                 f, parts[k], itd_engine_partition_conf(b->eng),
                                 info.last_ts_ms, itd_now_wall_ms(), &pt, err,
                                 sizeof err),
                             ITD_OK, "%s", err);
                fclose(f);
                free(buf);
                itd_engine_adopt(b->eng, pt);
                pt = NULL;
                itd_partition_info_t got;
                itd_partition_info(itd_engine_partition_get(b->eng, parts[k]),
                                   &got);
                cr_expect_eq(got.watermark_ms, info.watermark_ms);
                cr_expect_eq(got.users, info.users);
                cr_expect_eq(got.pending, info.pending);
        }

        /* a's examples so far are not b's: compare what comes after */
        sim_forget(a);
        sim_feed(a, in + 300, 300, 50);
        sim_feed(b, in + 300, 300, 50);
        itd_engine_advance(a->eng, T0 + FAR);
        itd_engine_advance(b->eng, T0 + FAR);
        size_t fired = 0;
        for (size_t i = 0; i < 300; i++) {
                cr_assert_eq(a->oc[i], b->oc[i]);
                expect_same_prediction(&a->out[i], &b->out[i], i, "restored");
                cr_expect_eq(a->fired[i], b->fired[i], "trigger of #%zu", i);
                if (a->fired[i] && b->fired[i]) {
                        fired++;
                        cr_expect_eq(a->trig[i].direction,
                                     b->trig[i].direction);
                }
        }
        cr_expect_gt(fired, 0, "no trigger fired after the cut");
        cr_assert_gt(a->n_ex, 100);
        expect_same_examples(a, b, "restored");
        itd_engine_stats_t x = sim_stats(a), y = sim_stats(b);
        cr_expect_eq(x.events, y.events);
        cr_expect_eq(x.predictions, y.predictions);
        cr_expect_eq(x.late, y.late);
        cr_expect_eq(x.examples_pos, y.examples_pos);
        cr_expect_eq(x.examples_neg, y.examples_neg);
        cr_expect_eq(x.train_steps, y.train_steps);
        cr_expect_eq(x.users, y.users);
        cr_expect_eq(x.pending, y.pending);
        sim_destroy(a);
        sim_destroy(b);
        itd_conf_destroy(conf);
        unlink(path);
        char prev[320];
        snprintf(prev, sizeof prev, "%s.prev", path);
        unlink(prev);
        rmdir(dir);
}


/* ------------------------------------------------------ idle partitions */

#define IDLE_MS (10 * SEC_MS) /* daemon/conf_parts.c's part.idle_ms */

/* Five users' events on partition p at event time ts.., fed at wall w. */
static void idle_feed(sim_t *s, int32_t p, int64_t ts, int64_t w,
                      int64_t *offset) {
        itd_row_t rows[5];
        char user[32], err[256];
        for (int i = 0; i < 5; i++) {
                snprintf(user, sizeof user, "p%d-u%d", (int)p, i);
                set_input(&rows[i], user, ts + i * SEC_MS, ITD_EV_VIEW, p,
                          (*offset)++);
        }
        cr_assert_eq(itd_engine_process(s->eng, "events", rows, 5, w, err,
                                        sizeof err),
                     ITD_OK, "%s", err);
}

static int64_t idle_wm(const sim_t *s, int32_t p) {
        itd_partition_info_t info;
        const itd_partition_t *pt = itd_engine_partition_get(s->eng, p);
        cr_assert_not_null(pt);
        itd_partition_info(pt, &info);
        return info.watermark_ms;
}

Test(engine_idle, nothing_moves_while_any_partition_gets_input) {
        itd_conf_t *conf = conf_with(NULL, 0);
        sim_t *s = sim_new(conf);
        cr_assert_eq(itd_engine_partition_conf(s->eng)->idle_ms, IDLE_MS);
        int64_t w = 5000000, off = 0;
        idle_feed(s, 0, T0, w, &off);
        idle_feed(s, 1, T0, w, &off);
        int64_t wm0 = idle_wm(s, 0), wm1 = idle_wm(s, 1);
        cr_assert_neq(wm0, INT64_MIN);
        /* partition 1 keeps getting events; partition 0 is idle 30 s */
        idle_feed(s, 1, T0 + 20 * SEC_MS, w + 20 * SEC_MS, &off);
        int64_t wm1b = idle_wm(s, 1);
        itd_engine_advance_idle(s->eng, w + 30 * SEC_MS);
        cr_expect_eq(idle_wm(s, 0), wm0, "moved while input arrived");
        cr_expect_eq(idle_wm(s, 1), wm1b);
        /* exactly idle_ms of quiet is not idle yet */
        itd_engine_advance_idle(s->eng, w + 20 * SEC_MS + IDLE_MS);
        cr_expect_eq(idle_wm(s, 0), wm0);
        /* one ms more: both partitions move, each by its own quiet time,
         * from its own frontier (watermark = frontier - lateness) */
        int64_t now = w + 20 * SEC_MS + IDLE_MS + 1;
        itd_engine_advance_idle(s->eng, now);
        cr_expect_eq(idle_wm(s, 0), wm0 + (now - w));
        cr_expect_eq(idle_wm(s, 1), wm1b + (now - (w + 20 * SEC_MS)));
        cr_expect_gt(wm1b, wm1);
        sim_destroy(s);
        itd_conf_destroy(conf);
}

Test(engine_idle, a_partition_waits_for_the_longer_of_idle_and_lateness) {
        static const kv_t kv[] = {{"windows.allowed_lateness", "60s"}};
        itd_conf_t *conf = conf_with(kv, 1);
        sim_t *s = sim_new(conf);
        int64_t w = 5000000, off = 0;
        idle_feed(s, 0, T0, w, &off);
        int64_t wm0 = idle_wm(s, 0);
        cr_assert_neq(wm0, INT64_MIN);
        /* quiet past idle_ms, not past the 60 s lateness: stays */
        itd_engine_advance_idle(s->eng, w + 30 * SEC_MS);
        cr_expect_eq(idle_wm(s, 0), wm0);
        itd_engine_advance_idle(s->eng, w + 60 * SEC_MS);
        cr_expect_eq(idle_wm(s, 0), wm0);
        itd_engine_advance_idle(s->eng, w + 61 * SEC_MS);
        cr_expect_eq(idle_wm(s, 0), wm0 + 61 * SEC_MS);
        /* and on from there, never back */
        itd_engine_advance_idle(s->eng, w + 90 * SEC_MS);
        cr_expect_eq(idle_wm(s, 0), wm0 + 90 * SEC_MS);
        sim_destroy(s);
        itd_conf_destroy(conf);
}
