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

static char dir[256], bs_path[512], conf_path[512], log_broker[512],
    log_run[512];
static char *bootstrap;
static int port;
static pid_t broker_pid = -1, run_pid = -1;

/* A free TCP port on loopback (test_it_ops.c explains the small race). */
static int free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        socklen_t len = sizeof sa;
        cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        close(fd);
        return ntohs(sa.sin_port);
}

static void write_conf(const char *query) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "kafka:\n"
                 "  bootstrap.servers: \"%s\"\n"
                 "  session.timeout.ms: 6000\n"
                 "  heartbeat.interval.ms: 500\n"
                 "metrics:\n"
                 "  listen: \"127.0.0.1:%d\"\n"
                 "  query: %s\n"
                 "shutdown:\n"
                 "  timeout: 10s\n",
                 bootstrap, port, query);
        cr_assert_eq(tu_write_file(conf_path, yaml), 0);
}

static void setup(void) {
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(bs_path, sizeof bs_path, "%s/bootstrap", dir);
        snprintf(log_broker, sizeof log_broker, "%s/broker.log", dir);
        snprintf(log_run, sizeof log_run, "%s/run.log", dir);
        snprintf(conf_path, sizeof conf_path, "%s/intentd.yaml", dir);
        char *argv[] = {ITD_BINARY, "broker", "--partitions", "3",
                        "--bootstrap-file", bs_path, NULL};
        broker_pid = tu_spawn(argv, log_broker);
        cr_assert(broker_pid > 0);
        cr_assert_eq(tu_wait_file(bs_path, 10000), 0,
                     "broker wrote no bootstrap file (see %s)", log_broker);
        bootstrap = tu_read_file(bs_path);
        cr_assert(bootstrap);
        port = free_port();
}

static void teardown(void) {
        if (run_pid > 0 && tu_wait(run_pid, 0) == -1) {
                kill(run_pid, SIGKILL);
                waitpid(run_pid, NULL, 0);
        }
        if (broker_pid > 0) {
                kill(broker_pid, SIGTERM);
                tu_wait(broker_pid, 5000);
        }
        free(bootstrap);
}

/* GET path (HTTP/1.0, read to EOF): the status, or -1; body malloc'd. */
static int http_get(const char *path, char **body) {
        *body = NULL;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
                return -1;
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        char req[256];
        int n = snprintf(req, sizeof req,
                         "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
            write(fd, req, (size_t)n) != n) {
                close(fd);
                return -1;
        }
        size_t cap = 1 << 16, len = 0;
        char *raw = malloc(cap);
        ssize_t k;
        while ((k = read(fd, raw + len, cap - 1 - len)) > 0) {
                len += (size_t)k;
                if (cap - 1 - len == 0)
                        raw = realloc(raw, cap *= 2);
        }
        close(fd);
        raw[len] = '\0';
        int status;
        char *sep = strstr(raw, "\r\n\r\n");
        if (!sep || sscanf(raw, "HTTP/1.%*d %d", &status) != 1) {
                free(raw);
                return -1;
        }
        *body = strdup(sep + 4);
        free(raw);
        return status;
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
        snprintf(log_load, sizeof log_load, "%s/load.log", dir);
        char *argv[] = {ITD_BINARY, "load", "--config", conf_path, "--input",
                        fixture, "--format", "jsonl", NULL};
        cr_assert_eq(tu_run(argv, log_load, 60000), 0,
                     "intentd load failed (see %s)", log_load);
        FILE *f = fopen(fixture, "r");
        long n = 0;
        int c;
        while ((c = fgetc(f)) != EOF)
                n += c == '\n';
        fclose(f);
        return n;
}

static void start_run(long expected) {
        char *argv[] = {ITD_BINARY, "run", "--config", conf_path, NULL};
        run_pid = tu_spawn(argv, log_run);
        cr_assert(run_pid > 0);
        long n = -1;
        for (int waited = 0; waited < CONSUME_TIMEOUT_MS; waited += 250) {
                n = published();
                if (n >= expected)
                        break;
                cr_assert_eq(tu_wait(run_pid, 0), -1,
                             "intentd run exited early (see %s)", log_run);
                usleep(250 * 1000);
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
        cr_expect(json_is_null(json_object_get(lat, "explanation")));
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
