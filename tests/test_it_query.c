/*
 * test_it_query.c - GET /users/<id> on the metrics listener while the
 * daemon runs (metrics.query: on), as separate processes: `intentd
 * broker`, `intentd load` of a shipped fixture, `intentd run`. Once every
 * event is predicted, a user of the fixture is answered (200) with the
 * pseudonym of the logs, never the id, the state of its windows and its
 * latest prediction; one never seen says "known": false (404); /livez
 * still answers; with metrics.query off (the default) the path is 404.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "intentd/log.h"
#include "testutil.h"

#define CONSUME_TIMEOUT_MS 90000

static tu_broker_t broker;
static char conf_path[512], log_run[512];
static int port;
static pid_t run_pid = -1;

static void write_conf(const char *query) {
        tu_conf_write(broker.dir, broker.bootstrap, "intentd.yaml", conf_path,
                      sizeof conf_path, TU_KAFKA_FAST,
                      "metrics:\n"
                      "  listen: \"127.0.0.1:%d\"\n"
                      "  query: %s\n"
                      "shutdown:\n"
                      "  timeout: 10s\n",
                      port, query);
}

static void setup(void) {
        tu_broker_start(&broker, 3, NULL);
        snprintf(log_run, sizeof log_run, "%s/run.log", broker.dir);
        /* another process could take the port first; nothing on a test
         * machine races for ephemeral ports within a second */
        port = tu_free_port();
}

static void teardown(void) {
        if (run_pid > 0 && tu_wait(run_pid, 0) == -1) {
                kill(run_pid, SIGKILL);
                waitpid(run_pid, NULL, 0);
        }
        tu_broker_stop(&broker);
}

/* GET path: the status, or -1; body malloc'd. */
static int http_get(const char *path, char **body) {
        return tu_http(port, "GET", path, 10000, NULL, body);
}

/* intentd_predictions_published_total in a scrape, or -1. */
static long published(void) {
        char *body;
        long v = -1;
        if (http_get("/metrics", &body) == 200) {
                static const char key[] =
                    "\nintentd_predictions_published_total ";
                const char *p = strstr(body, key);
                if (p)
                        v = strtol(p + strlen(key), NULL, 10);
        }
        free(body);
        return v;
}

static long load_fixture(void) {
        char fixture[512], log_load[512];
        tu_src("tests/fixtures/events_small.jsonl", fixture, sizeof fixture);
        snprintf(log_load, sizeof log_load, "%s/load.log", broker.dir);
        cr_assert_eq(tu_load(conf_path, fixture, "jsonl", log_load), 0,
                     "intentd load failed (see %s)", log_load);
        return tu_count_lines(fixture);
}

static void start_run(long expected) {
        run_pid = tu_daemon_start(conf_path, log_run);
        long n = -1;
        for (int waited = 0; waited < CONSUME_TIMEOUT_MS; waited += 250) {
                n = published();
                if (n >= expected)
                        break;
                cr_assert_eq(tu_wait(run_pid, 0), -1,
                             "intentd run exited early (see %s)", log_run);
                tu_sleep_ms(250);
        }
        cr_assert_geq(n, expected, "%ld of %ld predictions published (see "
                      "%s)", n, expected, log_run);
}

static void stop_run(void) {
        kill(run_pid, SIGTERM);
        cr_expect_eq(tu_wait(run_pid, 30000), 0, "intentd run exit");
        run_pid = -1;
}

static json_t *get_json(const char *path, int *status) {
        char *body;
        *status = http_get(path, &body);
        cr_assert(body, "GET %s: no answer", path);
        json_error_t jerr;
        json_t *doc = json_loads(body, 0, &jerr);
        cr_assert(doc, "GET %s: not JSON (%s): %s", path, jerr.text, body);
        cr_expect_null(strstr(body, "\"u3\""), "the clear id in %s", body);
        free(body);
        return doc;
}

TestSuite(query, .init = setup, .fini = teardown, .timeout = 240);

Test(query, answers_for_a_live_user_and_says_unknown_for_another) {
        write_conf("on");
        long expected = load_fixture();
        start_run(expected);

        /* u3 has events in the fixture (its first line). */
        int status;
        json_t *doc = get_json("/users/u3", &status);
        cr_expect_eq(status, 200);
        const char *user = json_string_value(json_object_get(doc, "user"));
        char pseud[ITD_LOG_PSEUDONYM_SIZE];
        cr_assert(user);
        regex_t re;
        cr_assert_eq(regcomp(&re, "^u:[0-9a-f]{16}$",
                             REG_EXTENDED | REG_NOSUB), 0);
        cr_expect_eq(regexec(&re, user, 0, NULL, 0), 0, "user %s", user);
        regfree(&re);
        /* The pseudonym key is per process: this one cannot recompute
         * the daemon's, so only its shape is checked (and that the id is
         * nowhere, get_json). */
        (void)pseud;
        cr_expect(json_is_true(json_object_get(doc, "known")));
        json_t *st = json_object_get(doc, "state");
        cr_assert(json_is_object(st));
        json_t *w = json_object_get(json_object_get(st, "windows"), "7d");
        cr_assert(json_is_object(w), "no 7d window");
        json_int_t views = json_integer_value(json_object_get(w, "VIEW"));
        cr_expect_gt(views, 0, "u3 viewed (fixture)");
        cr_expect_gt(json_integer_value(
                         json_object_get(st, "last_event_time_ms")),
                     1500000000000LL);
        json_t *lat = json_object_get(doc, "latest");
        cr_assert(json_is_object(lat), "no latest prediction");
        double p = json_real_value(
            json_object_get(lat, "purchase_probability"));
        cr_expect(p >= 0 && p <= 1, "purchase_probability %g", p);
        cr_expect(json_is_string(json_object_get(lat, "next_action")));
        cr_expect_eq(strlen(json_string_value(
                         json_object_get(lat, "model_id"))),
                     33);
        /* predict.explain 3 (default): up to three named features */
        json_t *ex = json_object_get(lat, "explanation");
        cr_expect(json_is_array(ex) && json_array_size(ex) >= 1 &&
                      json_array_size(ex) <= 3 &&
                      json_is_string(json_object_get(json_array_get(ex, 0),
                                                     "feature")),
                  "explanation of the latest prediction");
        json_decref(doc);

        doc = get_json("/users/nobody-ever", &status);
        cr_expect_eq(status, 404);
        cr_expect(json_is_false(json_object_get(doc, "known")));
        json_decref(doc);

        char *body;
        cr_expect_eq(http_get("/livez", &body), 200);
        free(body);
        /* An id longer than any the input accepts. */
        char path[128];
        snprintf(path, sizeof path, "/users/%070d", 7);
        cr_expect_eq(http_get(path, &body), 400);
        free(body);
        stop_run();
}

Test(query, is_off_by_default) {
        write_conf("off");
        long expected = load_fixture();
        start_run(expected);
        char *body;
        cr_expect_eq(http_get("/users/u3", &body), 404);
        cr_expect(body && strstr(body, "metrics.query"), "%s", body);
        free(body);
        stop_run();
}
