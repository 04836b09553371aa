/*
 * test_report.c - the replay report: its JSON fields are present and agree
 * with each other (counts add up, the sweep meets the confusion matrix at
 * the threshold), and with the engine's own progressive metrics on the
 * same examples; with a comparison, the rolling AUC over event time picks
 * a round step from the data's span; the HTML page has one SVG per chart,
 * every scorer drawn, on round-numbered ticks.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_parts.h"
#include "intentd/engine.h"
#include "intentd/log.h"
#include "intentd/conf.h"
#include "intentd/eval_progressive.h"
#include "intentd/reader.h"
#include "intentd/compare.h"
#include "intentd/report.h"
#include "report_svg.h"
#include "testutil.h"

static double num(const json_t *o, const char *key) {
        const json_t *v = json_object_get(o, key);
        cr_assert(json_is_number(v), "field \"%s\" missing or not a number",
                  key);
        return json_number_value(v);
}

/* xorshift: reproducible scores without rand()'s global state */
static double uniform(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return (double)(*s >> 11) / 9007199254740992.0;
}

/* n examples; positives score higher on average. */
static void feed(itd_report_t *rep, itd_eval_t *eval, size_t n, uint64_t seed) {
        uint64_t s = seed;
        for (size_t i = 0; i < n; i++) {
                int label = uniform(&s) < 0.2;
                float score = (float)(label ? 0.3 + 0.7 * uniform(&s)
                                            : 0.8 * uniform(&s));
                float next[ITD_NEXT__COUNT];
                double z = 0;
                for (int k = 0; k < ITD_NEXT__COUNT; k++)
                        z += next[k] = (float)(0.1 + uniform(&s));
                for (int k = 0; k < ITD_NEXT__COUNT; k++)
                        next[k] = (float)(next[k] / z);
                itd_next_t nx = (itd_next_t)(i % ITD_NEXT__COUNT);
                itd_report_example(rep, score, next, label, nx);
                if (eval)
                        itd_eval_add(eval, score, label, next, nx);
        }
}

Test(report, counts_add_up_across_every_section) {
        itd_report_t *rep = itd_report_new(0.5);
        itd_event_t ev;
        itd_event_clear(&ev);
        snprintf(ev.user_id, sizeof ev.user_id, "u");
        for (int i = 0; i < 60; i++) {
                ev.ts_ms = 1500001200000LL + i * 60000;
                ev.type = (itd_event_type_t)(i % 3);
                itd_report_event(rep, &ev);
        }
        feed(rep, NULL, 20000, 7);
        itd_report_run_t run = {.input = "x.jsonl", .format = "jsonl",
                                .seconds = 2.0, .events = 60};
        json_t *doc = itd_report_json(rep, &run);
        cr_assert_not_null(doc);
        const json_t *pur = json_object_get(doc, "purchase");
        const json_t *ov = json_object_get(pur, "overall");
        double n = num(ov, "n"), pos = num(ov, "positives");
        cr_assert_eq(n, 20000);
        cr_assert_gt(pos, 3000);
        cr_assert_lt(pos, 5000);
        /* confusion */
        const json_t *cm = json_object_get(pur, "confusion");
        cr_assert_eq(num(cm, "tp") + num(cm, "fp") + num(cm, "tn") +
                         num(cm, "fn"),
                     n);
        cr_assert_eq(num(cm, "tp") + num(cm, "fn"), pos);
        /* sweep: 99 rows, every row a full confusion matrix, recall falls */
        const json_t *sweep = json_object_get(pur, "sweep");
        cr_assert_eq(json_array_size(sweep), 99);
        double last_recall = 2;
        for (size_t i = 0; i < 99; i++) {
                const json_t *row = json_array_get(sweep, i);
                cr_expect_float_eq(num(row, "threshold"), (i + 1) / 100.0,
                                   1e-12);
                cr_expect_eq(num(row, "tp") + num(row, "fp") +
                                 num(row, "tn") + num(row, "fn"),
                             n);
                cr_expect_eq(num(row, "tp") + num(row, "fn"), pos);
                cr_expect_leq(num(row, "recall"), last_recall);
                last_recall = num(row, "recall");
        }
        /* the sweep row at 0.50 is the confusion matrix at threshold 0.5 */
        const json_t *mid = json_array_get(sweep, 49);
        cr_assert_eq(num(mid, "tp"), num(cm, "tp"));
        cr_assert_eq(num(mid, "fp"), num(cm, "fp"));
        const json_t *best = json_object_get(pur, "best_f1");
        cr_assert_geq(num(best, "f1"), num(mid, "f1"));
        /* next action */
        const json_t *nx = json_object_get(doc, "next_action");
        cr_assert_eq(num(nx, "n"), n);
        const json_t *m = json_object_get(nx, "confusion");
        double cells = 0, diag = 0;
        for (size_t i = 0; i < json_array_size(m); i++)
                for (size_t j = 0; j < json_array_size(json_array_get(m, i));
                     j++) {
                        double v = json_number_value(
                            json_array_get(json_array_get(m, i), j));
                        cells += v;
                        diag += i == j ? v : 0;
                }
        cr_assert_eq(cells, n);
        cr_assert_float_eq(num(nx, "accuracy"), diag / n, 1e-12);
        /* event mix and throughput */
        const json_t *mix = json_object_get(doc, "event_mix");
        cr_assert_eq(num(mix, "VIEW") + num(mix, "SEARCH") +
                         num(mix, "ADD_TO_CART"),
                     60);
        cr_assert_eq(num(mix, "PURCHASE"), 0);
        cr_assert_float_eq(num(json_object_get(doc, "throughput"),
                               "events_per_s"),
                           30.0, 1e-9);
        json_decref(doc);
        itd_report_destroy(rep);
}

Test(report, auc_and_log_loss_equal_the_progressive_metrics) {
        itd_report_t *rep = itd_report_new(0.3);
        itd_eval_t *eval = itd_eval_new(0.3f);
        feed(rep, eval, 50000, 99);
        itd_eval_summary_t sum;
        itd_eval_summary(eval, &sum);
        itd_report_run_t run = {0};
        json_t *doc = itd_report_json(rep, &run);
        const json_t *ov =
            json_object_get(json_object_get(doc, "purchase"), "overall");
        /* Same bins, same examples: equal up to summation order. */
        const double sum_eps = 1e-9;
        cr_assert_float_eq(num(ov, "auc"), sum.auc, sum_eps);
        cr_assert_float_eq(num(ov, "logloss"), sum.logloss, sum_eps);
        cr_assert_float_eq(num(ov, "ece"), sum.ece, sum_eps);
        cr_assert_float_eq(num(ov, "f1"), sum.f1, sum_eps);
        cr_assert_float_eq(
            num(json_object_get(doc, "next_action"), "accuracy"),
            sum.next_accuracy, sum_eps);
        json_decref(doc);
        itd_eval_destroy(eval);
        itd_report_destroy(rep);
}

/* n examples of `users` users over `days` days, scores better for
 * positives; a baseline score that knows less. */
static itd_compare_t *compared(size_t n, size_t users, double days,
                               uint64_t seed) {
        itd_compare_conf_t cc;
        itd_compare_conf_defaults(&cc, 1800000);
        cc.resamples = 100;
        cc.model_name = "mlp";
        cc.baseline = "logistic";
        itd_compare_t *cmp = itd_compare_new(&cc);
        uint64_t s = seed;
        for (size_t i = 0; i < n; i++) {
                itd_event_t ev;
                itd_event_clear(&ev);
                snprintf(ev.user_id, sizeof ev.user_id, "u%zu", i % users);
                ev.ts_ms = 1500001200000LL +
                           (int64_t)((double)i / (double)n * days * 864e5);
                int label = uniform(&s) < 0.1;
                ev.type = uniform(&s) < 0.1 ? ITD_EV_ADD_TO_CART
                                             : ITD_EV_VIEW;
                if (uniform(&s) < 0.02)
                        ev.type = ITD_EV_PURCHASE;
                itd_compare_ev_t k;
                itd_compare_event(cmp, &ev, itd_user_hash(ev.user_id), &k);
                float score = (float)(0.05 + 0.1 * label +
                                      0.2 * uniform(&s));
                float base = (float)(0.05 + 0.03 * label +
                                     0.2 * uniform(&s));
                itd_compare_add(cmp, &k, ev.ts_ms, score, base, label);
        }
        itd_compare_finish(cmp);
        return cmp;
}

Test(report, auc_over_time_is_a_rolling_window_at_round_steps) {
        itd_compare_t *cmp = compared(30000, 300, 60, 3);
        json_t *doc = itd_compare_json(cmp);
        const json_t *ot = json_object_get(doc, "over_time");
        /* 60 days: 1 d steps would be 60 points, 2 d the first under 48 */
        cr_assert_eq(num(ot, "step_ms"), 2 * 86400000.0);
        cr_assert_eq(num(ot, "window"), 3000); /* n / 10 */
        const json_t *pts = json_object_get(ot, "points");
        cr_assert_geq(json_array_size(pts), 29);
        cr_assert_leq(json_array_size(pts), 31);
        double last_ts = 0;
        for (size_t i = 0; i < json_array_size(pts); i++) {
                const json_t *p = json_array_get(pts, i);
                cr_expect_gt(num(p, "ts"), last_ts);
                last_ts = num(p, "ts");
                /* ticks fall on UTC midnights of even step */
                cr_expect_eq(fmod(num(p, "ts"), 2 * 86400000.0), 0.0);
                cr_expect_leq(num(p, "n"), 3000);
                if (i > 2) {
                        cr_expect_eq(num(p, "n"), 3000, "point %zu", i);
                        const json_t *auc = json_object_get(p, "auc");
                        cr_expect_gt(num(auc, "model"),
                                     num(auc, "baseline"));
                }
        }
        /* segments: before / after the first purchase hold everything */
        const json_t *seg = json_object_get(doc, "segments");
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(seg, 0), "name")),
                         "before first purchase");
        cr_assert_eq(num(json_array_get(seg, 0), "n") +
                         num(json_array_get(seg, 1), "n"),
                     30000);
        /* curves run from one corner to the other */
        const json_t *roc = json_object_get(
            json_object_get(json_object_get(doc, "curves"), "model"), "roc");
        const json_t *end = json_array_get(roc, json_array_size(roc) - 1);
        cr_assert_float_eq(num(end, "fpr"), 1.0, 1e-12);
        cr_assert_float_eq(num(end, "tpr"), 1.0, 1e-12);
        json_decref(doc);
        itd_compare_destroy(cmp);
}

Test(report, axis_ticks_fall_on_round_numbers) {
        double lo = 0.0312, hi = 0.1317;
        itd_svg_nice(&lo, &hi, 5); /* raw step 0.02 -> 0.025 */
        cr_assert_float_eq(lo, 0.025, 1e-12);
        cr_assert_float_eq(hi, 0.15, 1e-12);
        lo = 0, hi = 93457;
        itd_svg_nice(&lo, &hi, 5);
        cr_assert_float_eq(hi, 100000, 1e-6);
        lo = 0.5, hi = 0.5; /* empty */
        itd_svg_nice(&lo, &hi, 5);
        cr_assert_gt(hi, lo);

        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/c.svg", dir);
        FILE *f = fopen(path, "w");
        itd_chart_t c = {.x0 = 0, .x1 = 1, .y0 = 0, .y1 = 0.4};
        itd_chart_open(&c, f, "t", "t", "x", "y");
        itd_chart_close(&c, "");
        /* a day and a half of event time from 13:20 UTC: 6 h steps on
         * the UTC clock */
        itd_chart_t t = {.time_x = 1, .x0 = 1500038400000.0,
                         .x1 = 1500038400000.0 + 1.5 * 864e5, .y0 = 0,
                         .y1 = 1};
        itd_chart_open(&t, f, "u", "u", "x", "y");
        itd_chart_close(&t, "");
        fclose(f);
        char *svg = tu_read_file(path);
        const char *want[] = {">0<",    ">0.1<",   ">0.2<",   ">0.3<",
                              ">0.4<",  ">0.2<",   ">1.0<",
                              ">07-14 18:00<", ">07-15 00:00<",
                              ">07-15 06:00<"};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
                cr_expect_not_null(strstr(svg, want[i]), "no tick %s",
                                   want[i]);
        cr_expect_null(strstr(svg, ">0.3333"), "an unround tick");
        free(svg);
        remove(path);
        remove(dir);
}

Test(report, an_empty_report_is_valid_json_with_nulls) {
        itd_report_t *rep = itd_report_new(0.5);
        itd_report_run_t run = {0};
        json_t *doc = itd_report_json(rep, &run);
        const json_t *ov =
            json_object_get(json_object_get(doc, "purchase"), "overall");
        cr_assert(json_is_null(json_object_get(ov, "auc")));
        cr_assert_eq(json_integer_value(json_object_get(ov, "n")), 0);
        char *text = json_dumps(doc, 0);
        cr_assert_not_null(text, "not serialisable");
        free(text);
        json_decref(doc);
        itd_report_destroy(rep);
}

/* The engine over the simulator fixture, report fed by its hook: the
 * report's AUC is the engine's summary AUC (same examples, same bins). */
Test(report, agrees_with_the_engine_summary_on_a_real_run) {
        itd_conf_t *conf = itd_conf_new();
        char err[512], path[512];
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert_not_null(eng, "%s", err);
        itd_report_t *rep = itd_report_new(conf->predict_threshold);
        itd_engine_set_example_hook(eng, itd_report_example_hook, rep);
        tu_src("tests/fixtures/events_small.jsonl", path, sizeof path);
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_JSONL, 1, err,
                                           sizeof err);
        cr_assert_not_null(rd, "%s", err);
        size_t max = itd_engine_max_batch(eng);
        itd_row_t *in = calloc(max, sizeof *in);
        uint64_t events = 0;
        for (;;) {
                size_t n = 0;
                while (n < max &&
                       itd_reader_next(rd, &in[n].ev, err, sizeof err) ==
                           ITD_OK) {
                        itd_report_event(rep, &in[n].ev);
                        itd_row_decoded(&in[n], 0, (int64_t)events++);
                        n++;
                }
                if (n == 0)
                        break;
                cr_assert_eq(itd_engine_process(eng, "t", in, n,
                                                itd_now_wall_ms(), NULL, 0),
                             ITD_OK);
                itd_report_progress(rep, events, (double)events / 1e4);
        }
        itd_engine_stats_t es;
        itd_engine_stats(eng, &es);
        json_t *config = itd_conf_report_json(conf);
        itd_report_run_t run = {.input = path, .format = "jsonl",
                                .config = config, .stats = &es, .seconds = 1,
                                .events = events};
        json_t *doc = itd_report_json(rep, &run);
        json_decref(config);
        const json_t *ov =
            json_object_get(json_object_get(doc, "purchase"), "overall");
        cr_assert_gt(es.eval.n, 1000);
        cr_assert_eq(num(ov, "n"), (double)es.eval.n);
        cr_assert_eq(num(ov, "positives"), (double)es.eval.positives);
        cr_assert_float_eq(num(ov, "auc"), es.eval.auc,
                           es.eval.auc_err_bound + 1e-9);
        cr_assert_float_eq(num(ov, "logloss"), es.eval.logloss, 1e-9);
        cr_assert_eq(num(json_object_get(doc, "engine"), "examples_pos") +
                         num(json_object_get(doc, "engine"),
                             "examples_neg"),
                     num(ov, "n"));
        const json_t *mix = json_object_get(doc, "event_mix");
        double total = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)mix, k, v) total += json_number_value(v);
        cr_assert_eq(total, (double)events);
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(doc, "config"), "model.type")),
                         "mlp");

        /* and the HTML page draws every chart; a comparison (here of
         * synthetic examples) adds the charts of every scorer */
        itd_compare_t *cmp = compared(20000, 200, 3, 5);
        json_object_set_new(doc, "compare", itd_compare_json(cmp));
        itd_compare_destroy(cmp);
        char dir[256], html[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(html, sizeof html, "%s/r.html", dir);
        cr_assert_eq(itd_report_write_html(doc, html, err, sizeof err),
                     ITD_OK, "%s", err);
        char *page = tu_read_file(html);
        cr_assert_not_null(page);
        /* chart, and how many series it draws at least: the four
         * scorers (and a reference line), two classes, bars */
        const struct {
                const char *id;
                int series;
        } charts[] = {{"roc", 5},          {"pr", 5},
                      {"gains", 6},        {"calibration", 5},
                      {"auc_time", 5},     {"logloss_time", 4},
                      {"score_hist", 2},   {"segments", 1 + 4 * 4},
                      {"event_mix", 6},    {"throughput", 1}};
        for (size_t i = 0; i < sizeof charts / sizeof charts[0]; i++) {
                char id[64];
                snprintf(id, sizeof id, "<svg id=\"chart-%s\"",
                         charts[i].id);
                const char *at = strstr(page, id);
                cr_expect_not_null(at, "no %s", id);
                if (!at)
                        continue;
                const char *end = strstr(at, "</svg>");
                int drawn = 0;
                for (const char *p = at;
                     (p = strstr(p, "class=\"series\"")) && p < end; p++) {
                        const char *d = strstr(p, " d=\"");
                        cr_expect(d && d[4] != '"', "%s: empty path", id);
                        drawn++;
                }
                cr_expect_geq(drawn, charts[i].series, "%s draws %d series",
                              id, drawn);
        }
        /* the four scorers are named in the legends and tables */
        const char *names[] = {"model (mlp)", "baseline (logistic)",
                               "purchase-rate rule", "label-rate rule"};
        for (size_t i = 0; i < 4; i++)
                cr_expect_not_null(strstr(page, names[i]), "%s", names[i]);
        cr_assert_null(strstr(page, "<script"));
        cr_assert_null(strstr(page, "http://www.w3.org/2000/svg\" href"));
        free(page);
        remove(html);
        remove(dir);

        json_decref(doc);
        free(in);
        itd_reader_destroy(rd);
        itd_report_destroy(rep);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
}
