/*
 * test_prom.c - the metrics registry (daemon/prom.c) and the
 * HTTP endpoint (daemon/http.c): exposition text, label handling, atomics
 * under concurrent writers, /metrics, /livez, /readyz, errors. The
 * exposition is also checked by `promtool check metrics` when installed.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <time.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "prom.h"
#include "prom_int.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

/* Value of the sample line that starts with `series ` in text, or NAN. */
static double sample(const char *text, const char *series) {
        size_t n = strlen(series);
        for (const char *p = text; p && *p; p = strchr(p, '\n')) {
                if (*p == '\n')
                        p++;
                if (strncmp(p, series, n) == 0 && p[n] == ' ')
                        return strtod(p + n + 1, NULL);
        }
        return NAN;
}

static char *render(itd_prom_t *m) {
        size_t len;
        return itd_prom_render_dup(m, &len);
}

typedef struct resp_s {
        int status;
        char head[2048];
        char body[65536];
} resp_t;

/* One request, read to EOF, into r (head and body cut to fit). */
static int http_req(int port, const char *method, const char *path,
                    resp_t *r) {
        char *head, *body;
        r->status = tu_http(port, method, path, 5000, &head, &body);
        if (r->status < 0)
                return -1;
        itd_strlcpy(r->head, head, sizeof r->head);
        itd_strlcpy(r->body, body, sizeof r->body);
        free(head);
        free(body);
        return 0;
}

/* ---- registry ----------------------------------------------------------- */

Test(prom, renders_help_type_and_every_labelled_value) {
        itd_prom_t *m = itd_prom_new();
        cr_assert_eq(itd_prom_inc(m, ITD_M_EVENTS_CONSUMED, NULL, 41),
                     ITD_OK);
        cr_assert_eq(itd_prom_inc(m, ITD_M_EVENTS_CONSUMED, NULL, 1),
                     ITD_OK);
        cr_assert_eq(itd_prom_inc(m, ITD_M_EVENTS_DEAD_LETTERED, "truncated",
                                  3), ITD_OK);
        cr_assert_eq(itd_prom_inc(m, ITD_M_TRAINING_EXAMPLES, "positive",
                                  7), ITD_OK);
        cr_assert_eq(itd_prom_set(m, ITD_M_USERS, NULL, 1234), ITD_OK);
        cr_assert_eq(itd_prom_set(m, ITD_M_PROGRESSIVE_AUC, NULL, 0.8125),
                     ITD_OK);
        char *t = render(m);
        cr_expect(strstr(t, "# HELP intentd_events_consumed_total Messages"));
        cr_expect(strstr(t, "# TYPE intentd_events_consumed_total counter\n"));
        cr_expect(strstr(t, "# TYPE intentd_users gauge\n"));
        cr_expect(strstr(t, "# TYPE intentd_event_to_prediction_seconds "
                            "histogram\n"));
        cr_expect_eq(sample(t, "intentd_events_consumed_total"), 42);
        cr_expect_eq(sample(t, "intentd_events_dead_lettered_total"
                               "{reason=\"truncated\"}"), 3);
        /* Values never touched are still exported, at 0, so rate() works
         * from the first scrape. */
        cr_expect_eq(sample(t, "intentd_events_dead_lettered_total"
                               "{reason=\"bad_price\"}"), 0);
        cr_expect_eq(sample(t, "intentd_training_examples_total"
                               "{label=\"positive\"}"), 7);
        cr_expect_eq(sample(t, "intentd_training_examples_total"
                               "{label=\"negative\"}"), 0);
        cr_expect_eq(sample(t, "intentd_users"), 1234);
        cr_expect_eq(sample(t, "intentd_progressive_auc"), 0.8125);
        cr_expect(isnan(sample(t, "intentd_progressive_logloss")),
                  "an unknown progressive metric is NaN, not 0");
        cr_expect(strstr(t, "intentd_build_info{version=\""));
        cr_expect(strstr(t, "\"} 1\n"));
        free(t);
        itd_prom_destroy(m);
}

Test(prom, every_name_is_prometheus_style_and_without_user_labels) {
        char *docs = NULL;
        size_t docs_len = 0;
        FILE *f = open_memstream(&docs, &docs_len);
        itd_prom_write_docs(f);
        fclose(f);
        for (int id = 0; id < ITD_M__COUNT; id++) {
                const char *name = itd_prom_name((itd_metric_id_t)id);
                cr_expect(strncmp(name, "intentd_", 8) == 0 ||
                              strncmp(name, "process_", 8) == 0,
                          "%s: prefix", name);
                for (const char *p = name; *p; p++)
                        cr_expect((*p >= 'a' && *p <= 'z') || *p == '_' ||
                                      (*p >= '0' && *p <= '9'),
                                  "%s: character '%c'", name, *p);
                char row[160];
                snprintf(row, sizeof row, "| `%s` |", name);
                cr_expect(strstr(docs, row), "%s missing from the docs",
                          name);
        }
        cr_expect_null(strstr(docs, "| `user"), "no metric has a user label");
        free(docs);
}

Test(prom, docs_file_matches_the_table) {
        char path[512];
        char *committed = tu_read_file(tu_src("docs/METRICS.md", path,
                                              sizeof path));
        cr_assert_not_null(committed, "docs/METRICS.md is missing");
        char *docs = NULL;
        size_t docs_len = 0;
        FILE *f = open_memstream(&docs, &docs_len);
        itd_prom_write_docs(f);
        fclose(f);
        /* tu_read_file drops the trailing newline. */
        if (docs_len && docs[docs_len - 1] == '\n')
                docs[--docs_len] = '\0';
        cr_expect_str_eq(committed, docs,
                         "docs/METRICS.md is stale: regenerate it with "
                         "`intentd --metrics-docs`");
        free(committed);
        free(docs);
}

Test(prom, rejects_unknown_labels_and_wrong_types) {
        itd_prom_t *m = itd_prom_new();
        cr_expect_eq(itd_prom_inc(m, ITD_M_EVENTS_FILTERED, "nope", 1),
                     ITD_ERR_NOT_FOUND);
        cr_expect_eq(itd_prom_inc(m, ITD_M_EVENTS_FILTERED, NULL, 1),
                     ITD_ERR_ARG, "a labelled metric needs its label");
        cr_expect_eq(itd_prom_inc(m, ITD_M_EVENTS_CONSUMED, "late", 1),
                     ITD_ERR_ARG, "an unlabelled metric takes none");
        cr_expect_eq(itd_prom_set(m, ITD_M_CONSUMER_LAG, "256", 1),
                     ITD_ERR_RANGE);
        cr_expect_eq(itd_prom_set(m, ITD_M_CONSUMER_LAG, "x1", 1),
                     ITD_ERR_NOT_FOUND);
        cr_expect_eq(itd_prom_inc(m, ITD_M_USERS, NULL, 1), ITD_ERR_ARG,
                     "inc is for counters");
        cr_expect_eq(itd_prom_set(m, ITD_M_EVENT_TO_PREDICTION_SECONDS,
                                  NULL, 1), ITD_ERR_ARG);
        cr_expect_eq(itd_prom_set(m, ITD_M_BUILD_INFO, "x", 1),
                     ITD_ERR_NOT_FOUND);
        cr_expect_eq(itd_prom_set(m, ITD_M_PROCESS_OPEN_FDS, NULL, 1),
                     ITD_ERR_ARG);
        cr_expect_eq(itd_prom_observe(m, ITD_M_USERS, 1), ITD_ERR_ARG);
        cr_expect_eq(itd_prom_observe(m, ITD_M_CONSUME_TO_PRODUCE_SECONDS,
                                      NAN), ITD_ERR_NONFINITE);
        cr_expect_eq(itd_prom_set(m, ITD_M_EVENTS_CONSUMED, NULL, -1),
                     ITD_ERR_RANGE);
        cr_expect_eq(itd_prom_inc_at(m, ITD_M_STATE_EVICTIONS, 2, 1),
                     ITD_ERR_NOT_FOUND);
        cr_expect_eq(itd_prom_label_index(ITD_M_STATE_EVICTIONS,
                                          "capacity"), 1);
        cr_expect_eq(itd_prom_label_index(ITD_M_CONSUMER_LAG, "17"), 17);
        cr_expect_eq(itd_prom_label_index(ITD_M_USERS, "x"), -1);
        /* Nothing above changed a value. */
        char *t = render(m);
        cr_expect_eq(sample(t, "intentd_events_consumed_total"), 0);
        cr_expect_eq(sample(t, "intentd_users"), 0);
        cr_expect_null(strstr(t, "intentd_consumer_lag{"));
        free(t);
        itd_prom_destroy(m);
}

Test(prom, counters_can_mirror_an_absolute_total) {
        itd_prom_t *m = itd_prom_new();
        cr_assert_eq(itd_prom_set(m, ITD_M_PREDICTIONS_PUBLISHED, NULL,
                                  123456789.0), ITD_OK);
        cr_assert_eq(itd_prom_inc_at(m, ITD_M_STATE_EVICTIONS, 1, 5),
                     ITD_OK);
        char *t = render(m);
        cr_expect(strstr(t, "\nintentd_predictions_published_total "
                            "123456789\n"), "integers print as integers");
        cr_expect_eq(sample(t, "intentd_state_evictions_total"
                               "{reason=\"capacity\"}"), 5);
        free(t);
        itd_prom_destroy(m);
}

Test(prom, histogram_buckets_are_cumulative_and_count_is_inf_bucket) {
        itd_prom_t *m = itd_prom_new();
        const double obs[] = {0.00005, 0.0003, 0.0003, 0.02, 7, 99, -1};
        for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
                cr_assert_eq(itd_prom_observe(
                                 m, ITD_M_CONSUME_TO_PRODUCE_SECONDS, obs[i]),
                             ITD_OK);
        char *t = render(m);
        const char *h = "intentd_consume_to_produce_seconds";
        char s[128];
        struct {
                const char *le;
                double want;
        } rows[] = {{"0.0001", 2}, /* 0.00005 and -1 (counted as 0) */
                    {"0.0005", 4}, {"0.025", 5}, {"2.5", 5},
                    {"10", 6},     {"+Inf", 7}};
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                snprintf(s, sizeof s, "%s_bucket{le=\"%s\"}", h, rows[i].le);
                cr_expect_eq(sample(t, s), rows[i].want, "%s", s);
        }
        snprintf(s, sizeof s, "%s_count", h);
        cr_expect_eq(sample(t, s), 7);
        snprintf(s, sizeof s, "%s_sum", h);
        /* Sum of doubles in a different order: a few ulps apart. */
        const double sum_eps = 1e-9;
        cr_expect_float_eq(sample(t, s), 106.02065, sum_eps);
        free(t);
        itd_prom_destroy(m);
}

Test(prom, partition_series_appear_when_set_and_vanish_when_unset) {
        itd_prom_t *m = itd_prom_new();
        cr_assert_eq(itd_prom_set(m, ITD_M_CONSUMER_LAG, "0", 10), ITD_OK);
        cr_assert_eq(itd_prom_set_at(m, ITD_M_CONSUMER_LAG, 255, 20),
                     ITD_OK);
        char *t = render(m);
        cr_expect_eq(sample(t, "intentd_consumer_lag{partition=\"0\"}"), 10);
        cr_expect_eq(sample(t, "intentd_consumer_lag{partition=\"255\"}"),
                     20);
        cr_expect_null(strstr(t, "intentd_consumer_lag{partition=\"1\"}"));
        free(t);
        cr_assert_eq(itd_prom_unset_at(m, ITD_M_CONSUMER_LAG, 0), ITD_OK);
        cr_expect_eq(itd_prom_unset_at(m, ITD_M_CONSUMER_LAG, 256),
                     ITD_ERR_RANGE);
        cr_expect_eq(itd_prom_unset_at(m, ITD_M_USERS, 0), ITD_ERR_ARG);
        t = render(m);
        cr_expect_null(strstr(t, "intentd_consumer_lag{partition=\"0\"}"));
        cr_expect_eq(sample(t, "intentd_consumer_lag{partition=\"255\"}"),
                     20);
        free(t);
        itd_prom_destroy(m);
}

Test(prom, checkpoint_age_grows_by_itself_and_nan_means_off) {
        itd_prom_t *m = itd_prom_new();
        cr_assert_eq(itd_prom_set(m, ITD_M_CHECKPOINT_AGE_SECONDS, NULL,
                                  5), ITD_OK);
        usleep(120 * 1000);
        char *t = render(m);
        double age = sample(t, "intentd_checkpoint_age_seconds");
        /* 5 s set + >= 0.12 s slept; under 2 s more even on a busy box. */
        cr_expect(age >= 5.1 && age < 7.0, "age %g", age);
        free(t);
        cr_assert_eq(itd_prom_set(m, ITD_M_CHECKPOINT_AGE_SECONDS, NULL,
                                  NAN), ITD_OK);
        t = render(m);
        cr_expect(isnan(sample(t, "intentd_checkpoint_age_seconds")));
        free(t);
        itd_prom_destroy(m);
}

Test(prom, render_reports_the_full_size_when_the_buffer_is_short) {
        itd_prom_t *m = itd_prom_new();
        char small[16];
        size_t need = itd_prom_render(m, small, sizeof small);
        cr_expect_gt(need, sizeof small);
        cr_expect_eq(strlen(small), sizeof small - 1);
        /* process_* values (memory, fds) may change the length between two
         * renders by a few digits: leave room for that. */
        size_t slack = 256;
        char *big = malloc(need + slack);
        size_t got = itd_prom_render(m, big, need + slack);
        cr_expect_lt(got, need + slack);
        cr_expect_eq(strlen(big), got);
        cr_expect_eq(strncmp(big, small, sizeof small - 1), 0);
        free(big);
        itd_prom_destroy(m);
}

Test(prom, escapes_label_values_and_help_text) {
        char buf[64];
        cr_expect_eq(itd_prom_escape("a\\b\"c\nd", 1, buf, sizeof buf),
                     strlen("a\\\\b\\\"c\\nd"));
        cr_expect_str_eq(buf, "a\\\\b\\\"c\\nd");
        itd_prom_escape("a\\b\"c\nd", 0, buf, sizeof buf);
        cr_expect_str_eq(buf, "a\\\\b\"c\\nd", "HELP keeps quotes");
        cr_expect_eq(itd_prom_escape("\"\"\"", 1, buf, 4), 6);
        cr_expect_str_eq(buf, "\\\"\\");
}

#define WRITES 200000

static void *writer(void *arg) {
        itd_prom_t *m = arg;
        for (int i = 0; i < WRITES; i++) {
                itd_prom_inc_at(m, ITD_M_EVENTS_CONSUMED, 0, 1);
                itd_prom_observe(m, ITD_M_CONSUME_TO_PRODUCE_SECONDS,
                                 0.001);
        }
        return NULL;
}

Test(prom, concurrent_writers_lose_no_increment_while_rendering) {
        itd_prom_t *m = itd_prom_new();
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
                pthread_create(&th[i], NULL, writer, m);
        double last = 0;
        for (int i = 0; i < 20; i++) {
                char *t = render(m);
                double v = sample(t, "intentd_events_consumed_total");
                cr_expect_geq(v, last, "a counter never goes down");
                last = v;
                free(t);
        }
        for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
        char *t = render(m);
        cr_expect_eq(sample(t, "intentd_events_consumed_total"), 2 * WRITES);
        cr_expect_eq(sample(t, "intentd_consume_to_produce_seconds_count"),
                     2 * WRITES);
        /* 0.001 added 400000 times by CAS: exact up to rounding of the
         * running sum (relative 1e-9 is far above double rounding). */
        cr_expect_float_eq(sample(t, "intentd_consume_to_produce_seconds_sum"),
                           400.0, 400.0 * 1e-9);
        free(t);
        itd_prom_destroy(m);
}

/* ---- HTTP --------------------------------------------------------------- */

typedef struct srv_fixture_s {
        itd_prom_t *m;
        itd_health_t h;
        itd_http_t *srv;
        int port;
} srv_fixture_t;

static void start(srv_fixture_t *fx) {
        char err[256] = "";
        fx->m = itd_prom_new();
        itd_health_init(&fx->h, 500);
        fx->srv = itd_http_start("127.0.0.1:0", fx->m, &fx->h, err,
                                 sizeof err);
        cr_assert_not_null(fx->srv, "start: %s", err);
        fx->port = itd_http_port(fx->srv);
        cr_assert_gt(fx->port, 0);
}

static void stop(srv_fixture_t *fx) {
        itd_http_stop(fx->srv);
        itd_prom_destroy(fx->m);
}

Test(http, serves_metrics_as_prometheus_text) {
        srv_fixture_t fx;
        start(&fx);
        itd_prom_inc(fx.m, ITD_M_PREDICTIONS_PUBLISHED, NULL, 17);
        itd_prom_set(fx.m, ITD_M_CONSUMER_LAG, "2", 99);
        itd_prom_observe(fx.m, ITD_M_EVENT_TO_PREDICTION_SECONDS, 0.2);
        resp_t r;
        cr_assert_eq(http_req(fx.port, "GET", "/metrics", &r), 0);
        cr_expect_eq(r.status, 200);
        cr_expect(strstr(r.head, "text/plain; version=0.0.4"), "%s", r.head);
        cr_expect_eq(sample(r.body, "intentd_predictions_published_total"),
                     17);
        cr_expect_eq(sample(r.body, "intentd_consumer_lag{partition=\"2\"}"),
                     99);
        cr_expect_eq(sample(r.body, "intentd_event_to_prediction_seconds_"
                                    "bucket{le=\"0.25\"}"), 1);
        cr_expect_gt(sample(r.body, "process_resident_memory_bytes"), 0);
        cr_expect_gt(sample(r.body, "process_open_fds"), 2);
        cr_expect_gt(sample(r.body, "process_start_time_seconds"), 1.5e9);
        cr_assert_eq(http_req(fx.port, "HEAD", "/metrics", &r), 0);
        cr_expect_eq(r.status, 200);
        cr_expect_str_empty(r.body, "HEAD has no body");
        stop(&fx);
}

Test(http, metrics_output_passes_promtool_check) {
        if (!tu_have("promtool"))
                cr_skip_test("promtool not installed (Debian package "
                             "prometheus)");
        srv_fixture_t fx;
        start(&fx);
        /* Every kind of series present, special values included. */
        itd_prom_inc(fx.m, ITD_M_EVENTS_CONSUMED, NULL, 10);
        itd_prom_inc(fx.m, ITD_M_EVENTS_FILTERED, "late", 1);
        itd_prom_set(fx.m, ITD_M_CONSUMER_LAG, "0", 3);
        itd_prom_set(fx.m, ITD_M_CONSUMER_LAG, "7", 0);
        itd_prom_set(fx.m, ITD_M_PROGRESSIVE_F1, NULL, 0.333);
        itd_prom_set(fx.m, ITD_M_CHECKPOINT_AGE_SECONDS, NULL, NAN);
        itd_prom_observe(fx.m, ITD_M_CONSUME_TO_PRODUCE_SECONDS, 0.004);
        resp_t r;
        cr_assert_eq(http_req(fx.port, "GET", "/metrics", &r), 0);
        cr_assert_eq(r.status, 200);
        char dir[256], *out;
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        int rc = tu_promtool_check(dir, r.body, &out);
        cr_expect_eq(rc, 0, "promtool check metrics: rc %d\n%s", rc, out);
        free(out);
        stop(&fx);
}

Test(http, livez_follows_the_loop_heartbeat) {
        srv_fixture_t fx;
        start(&fx);
        resp_t r;
        cr_assert_eq(http_req(fx.port, "GET", "/livez", &r), 0);
        cr_expect_eq(r.status, 200, "fresh after init: %s", r.body);
        cr_expect_str_eq(r.body, "ok\n");
        /* The loop last turned 2 s ago; the limit is 500 ms. */
        atomic_store(&fx.h.heartbeat_ms, itd_now_mono_ms() - 2000);
        cr_assert_eq(http_req(fx.port, "GET", "/livez", &r), 0);
        cr_expect_eq(r.status, 503);
        cr_expect(strstr(r.body, "stalled"), "%s", r.body);
        itd_health_beat(&fx.h);
        cr_assert_eq(http_req(fx.port, "GET", "/livez", &r), 0);
        cr_expect_eq(r.status, 200);
        stop(&fx);
}

Test(http, readyz_is_503_until_ready_assigned_restored_and_model_loaded) {
        srv_fixture_t fx;
        start(&fx);
        resp_t r;
        struct {
                int ready, model, assigned, restoring, stopping;
                int want;
                const char *why;
        } steps[] = {
            {0, 0, 0, 0, 0, 503, "starting"},
            {1, 0, 3, 0, 0, 503, "no model loaded"},
            {1, 1, 0, 0, 0, 503, "no partitions assigned"},
            {1, 1, 3, 0, 0, 200, "ok"},
            {1, 1, 3, 1, 0, 503,
             "restoring partitions from the state changelog"},
            {1, 1, 3, 0, 1, 503, "stopping"},
        };
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
                atomic_store(&fx.h.ready, steps[i].ready);
                atomic_store(&fx.h.model_loaded, steps[i].model);
                atomic_store(&fx.h.assigned, steps[i].assigned);
                atomic_store(&fx.h.restoring, steps[i].restoring);
                atomic_store(&fx.h.stopping, steps[i].stopping);
                cr_assert_eq(http_req(fx.port, "GET", "/readyz", &r), 0);
                cr_expect_eq(r.status, steps[i].want, "step %zu: %s", i,
                             r.body);
                cr_expect(strstr(r.body, steps[i].why), "step %zu: %s", i,
                          r.body);
                const char *nl = strchr(r.body, '\n');
                cr_expect(nl && nl[1] == '\0', "one line: %s", r.body);
        }
        stop(&fx);
}

Test(http, unknown_paths_are_404_and_other_methods_405) {
        srv_fixture_t fx;
        start(&fx);
        resp_t r;
        cr_assert_eq(http_req(fx.port, "GET", "/nope", &r), 0);
        cr_expect_eq(r.status, 404);
        cr_assert_eq(http_req(fx.port, "GET", "/metrics/extra", &r), 0);
        cr_expect_eq(r.status, 404);
        cr_assert_eq(http_req(fx.port, "POST", "/metrics", &r), 0);
        cr_expect_eq(r.status, 405);
        cr_expect(strstr(r.head, "Allow: GET, HEAD"), "%s", r.head);
        stop(&fx);
}

Test(http, rejects_bad_listen_addresses_with_the_key_name) {
        itd_prom_t *m = itd_prom_new();
        itd_health_t h;
        itd_health_init(&h, 1000);
        const char *bad[] = {"", "9464", "127.0.0.1", "127.0.0.1:",
                             "127.0.0.1:65536", "127.0.0.1:80x", "::1:9464",
                             "[::1]9464", "[]:9464", "*:-1"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char err[256] = "";
                itd_http_t *srv = itd_http_start(bad[i], m, &h, err,
                                                 sizeof err);
                cr_expect_null(srv, "\"%s\" accepted", bad[i]);
                itd_http_stop(srv);
                cr_expect(strstr(err, "metrics.listen \""), "\"%s\": %s",
                          bad[i], err);
        }
        itd_prom_destroy(m);
}

Test(http, a_port_in_use_is_an_error_that_says_so) {
        srv_fixture_t fx;
        start(&fx);
        char listen[64], err[256] = "";
        snprintf(listen, sizeof listen, "127.0.0.1:%d", fx.port);
        itd_http_t *second = itd_http_start(listen, fx.m, &fx.h, err,
                                            sizeof err);
        cr_expect_null(second);
        itd_http_stop(second);
        cr_expect(strstr(err, "cannot listen"), "%s", err);
        cr_expect(strstr(err, listen), "%s", err);
        stop(&fx);
}

Test(http, any_address_form_listens_on_ipv4) {
        itd_prom_t *m = itd_prom_new();
        itd_health_t h;
        itd_health_init(&h, 1000);
        char err[256] = "";
        itd_http_t *srv = itd_http_start(":0", m, &h, err, sizeof err);
        cr_assert_not_null(srv, "%s", err);
        resp_t r;
        cr_assert_eq(http_req(itd_http_port(srv), "GET", "/livez", &r), 0);
        cr_expect_eq(r.status, 200);
        itd_http_stop(srv);
        itd_prom_destroy(m);
}

/* ---- hostile clients ------------------------------------------------------ */

/* A connection from source address src (NULL: any) to the server, with a
 * request head begun but never finished. -1 if it could not connect. */
static int slow_client(int port, const char *src) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
                return -1;
        if (src) {
                struct sockaddr_in me = {.sin_family = AF_INET};
                inet_pton(AF_INET, src, &me.sin_addr);
                if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
                        close(fd);
                        return -1;
                }
        }
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const char part[] = "GET /livez HTTP/1.1\r\nHost: x\r\n";
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
            write(fd, part, sizeof part - 1) != (ssize_t)(sizeof part - 1)) {
                close(fd);
                return -1;
        }
        return fd;
}

/* GET /livez; its status and how long the answer took. */
static int probe(int port, double *seconds) {
        struct timespec t0, t1;
        resp_t *r = malloc(sizeof *r);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = http_req(port, "GET", "/livez", r);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        *seconds = (double)(t1.tv_sec - t0.tv_sec) +
                   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        int status = rc == 0 ? r->status : -1;
        free(r);
        return status;
}

/* Sends stderr to a file from here on; restore_stderr() gives it back and
 * returns what was written (caller frees). */
static int saved_stderr = -1;
static char capture_path[512];

static void capture_stderr(void) {
        char dir[256];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(capture_path, sizeof capture_path, "%s/stderr", dir);
        FILE *f = fopen(capture_path, "w");
        cr_assert_not_null(f);
        saved_stderr = dup(STDERR_FILENO);
        dup2(fileno(f), STDERR_FILENO);
        fclose(f);
}

static char *restore_stderr(void) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        char *text = tu_read_file(capture_path);
        return text ? text : calloc(1, 1);
}

Test(http, forty_slow_clients_do_not_keep_a_probe_out, .timeout = 60) {
        srv_fixture_t fx;
        start(&fx);
        enum { SLOW = 40 };
        int fds[SLOW];
        for (int i = 0; i < SLOW; i++) {
                fds[i] = slow_client(fx.port, NULL);
                cr_assert_geq(fds[i], 0, "slow client %d did not connect", i);
        }
        /* The probe queues behind all of them (the kernel hands the
         * server its connections in order). */
        itd_health_beat(&fx.h);
        double secs;
        int status = probe(fx.port, &secs);
        cr_expect_eq(status, 200, "/livez answered %d with %d slow clients",
                     status, SLOW);
        cr_expect_lt(secs, 2.0, "/livez took %.1f s", secs);
        for (int i = 0; i < SLOW; i++)
                close(fds[i]);
        stop(&fx);
}

Test(http, one_address_cannot_take_the_slots_of_another, .timeout = 60) {
        srv_fixture_t fx;
        start(&fx);
        enum { SLOW = 150 };
        int fds[SLOW], n = 0;
        capture_stderr();
        /* From 127.0.0.2: the whole 127/8 is loopback on Linux. */
        for (int i = 0; i < SLOW; i++) {
                int fd = slow_client(fx.port, "127.0.0.2");
                if (fd >= 0)
                        fds[n++] = fd;
        }
        itd_health_beat(&fx.h);
        double secs;
        int status = probe(fx.port, &secs);
        /* One more round of refusals, to see their log lines limited. */
        for (int i = 0; i < 40; i++) {
                int fd = slow_client(fx.port, "127.0.0.2");
                if (fd >= 0)
                        close(fd);
        }
        stop(&fx);
        char *text = restore_stderr();
        cr_assert_gt(n, 100, "only %d of %d connections opened", n, SLOW);
        cr_expect_eq(status, 200, "/livez answered %d while one address held "
                     "%d connections", status, n);
        cr_expect_lt(secs, 2.0, "/livez took %.1f s", secs);
        cr_expect_leq(tu_count_str(text, " http: "), 6,
                      "refused connections flood the log:\n%s", text);
        free(text);
        for (int i = 0; i < n; i++)
                close(fds[i]);
}

Test(http, a_request_trickled_byte_by_byte_is_cut_at_the_deadline,
     .timeout = 60) {
        srv_fixture_t fx;
        start(&fx);
        int fd = slow_client(fx.port, NULL);
        cr_assert_geq(fd, 0);
        struct timeval tv = {0, 200000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        double secs = 0;
        int closed = 0;
        /* One header byte every 200 ms: never idle long enough for an
         * idle timeout, never done. */
        while (!closed && secs < 15) {
                char c;
                ssize_t k = read(fd, &c, 1);
                if (k == 0 || (k < 0 && errno != EAGAIN &&
                               errno != EWOULDBLOCK))
                        closed = 1;
                else if (send(fd, "X", 1, MSG_NOSIGNAL) != 1)
                        closed = 1;
                clock_gettime(CLOCK_MONOTONIC, &t1);
                secs = (double)(t1.tv_sec - t0.tv_sec) +
                       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        }
        close(fd);
        cr_expect(closed, "a trickling client kept its connection %.0f s",
                  secs);
        cr_expect_gt(secs, 4.0, "cut after %.1f s, before the deadline",
                     secs);
        cr_expect_lt(secs, 8.0, "cut only after %.1f s", secs);
        /* The server is still there for everyone else. */
        itd_health_beat(&fx.h);
        cr_expect_eq(probe(fx.port, &secs), 200);
        stop(&fx);
}

Test(http, bad_requests_do_not_flood_the_log, .timeout = 60) {
        srv_fixture_t fx;
        start(&fx);
        capture_stderr();
        /* Requests broken off half-way: libmicrohttpd reports each. */
        for (int i = 0; i < 50; i++) {
                int fd = slow_client(fx.port, NULL);
                if (fd >= 0)
                        close(fd);
        }
        /* Answered requests, polled for, so the server has seen every
         * connection above before it stops. */
        itd_health_beat(&fx.h);
        double secs;
        cr_expect_eq(probe(fx.port, &secs), 200);
        stop(&fx);
        char *text = restore_stderr();
        cr_expect_leq(tu_count_str(text, " http: "), 6,
                      "one line per bad request:\n%.2000s", text);
        free(text);
}
