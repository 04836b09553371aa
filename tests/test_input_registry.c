/*
 * test_input_registry.c - writer schemas from a Schema Registry (a static
 * HTTP file server on loopback, and one that answers 404 or never): answers
 * fetched once and cached, a hanging registry holds up nothing, credentials
 * sent but never shown, and the caches that keep a flood of unknown ids
 * cheap.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf_parts.h"
#include "intentd/codec.h"
#include "intentd/conf.h"
#include "intentd/input.h"
#include "testutil.h"
#include "input_helpers.h"

/* Decodes, waiting out a registry look-up (10 s at most). */
static itd_reason_t dec_wait(itd_decoder_t *dec, const tu_bytes_t *b,
                             itd_event_t *ev, char *detail, size_t cap) {
        itd_reason_t r = dec_bytes(dec, b, ev, detail, cap);
        for (int i = 0; i < 100 && r == ITD_REASON_PENDING; i++) {
                itd_decoder_poll(dec, 100);
                r = dec_bytes(dec, b, ev, detail, cap);
        }
        return r;
}

/* ---- Schema Registry: a static file server on loopback ---- */

static int port_open(int port) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        return ok;
}

static int find_python(char *buf, size_t cap) {
        const char *path = getenv("PATH");
        char dirs[4096];
        snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
        for (char *save, *d = strtok_r(dirs, ":", &save); d;
             d = strtok_r(NULL, ":", &save)) {
                snprintf(buf, cap, "%s/python3", d);
                if (access(buf, X_OK) == 0)
                        return 1;
        }
        return 0;
}

/* The registry's answer for a schema: {"schema": "<escaped text>"}. */
static void write_answer(const char *dir, uint32_t id, const char *schema) {
        char path[512], body[4096];
        size_t n = (size_t)snprintf(body, sizeof body, "{\"schema\": \"");
        for (const char *s = schema; *s; s++) {
                if (*s == '"' || *s == '\\')
                        body[n++] = '\\';
                body[n++] = *s;
        }
        snprintf(body + n, sizeof body - n, "\"}");
        snprintf(path, sizeof path, "%s/schemas/ids/%u", dir, id);
        cr_assert_eq(tu_write_file(path, body), 0);
}

Test(input, schema_registry_answers_are_fetched_once_and_cached,
     .timeout = 60) {
        char py[512], dir[256], sub[512], port_s[16], url[64], log[512];
        if (!find_python(py, sizeof py))
                cr_skip_test("python3 is absent: no static HTTP server");
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(sub, sizeof sub, "%s/schemas", dir);
        cr_assert_eq(mkdir(sub, 0755), 0);
        snprintf(sub, sizeof sub, "%s/schemas/ids", dir);
        cr_assert_eq(mkdir(sub, 0755), 0);
        write_answer(dir, 7, schema_new);
        write_answer(dir, 9, "{\"type\":\"record\",\"name\":\"X\","
                             "\"fields\":[]}");

        itd_input_conf_t ic;
        char err[512];
        itd_conf_input_defaults(&ic);
        ic.framing = ITD_FRAMING_CONFLUENT;
        ic.registry_url = "http://127.0.0.1:1/";
        itd_decoder_t *probe = itd_decoder_new(&ic, NULL, err, sizeof err);
        if (!probe && strstr(err, "without libcurl"))
                cr_skip_test("%s", err);
        cr_assert_not_null(probe, "%s", err);
        itd_decoder_destroy(probe);

        int port = tu_free_port();
        cr_assert_gt(port, 0);
        snprintf(port_s, sizeof port_s, "%d", port);
        snprintf(log, sizeof log, "%s/http.log", dir);
        char *argv[] = {py, "-m", "http.server", port_s, "--bind",
                        "127.0.0.1", "--directory", dir, NULL};
        pid_t pid = tu_spawn(argv, log);
        cr_assert_gt(pid, 0);
        for (int i = 0; i < 100 && !port_open(port); i++)
                usleep(100000);
        cr_assert(port_open(port), "http.server did not start (see %s)", log);

        snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
        itd_decoder_t *dec =
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT, "", url);
        itd_event_t ev;
        char detail[512];
        tu_bytes_t b;
        itd_decoder_stats_t st;
        for (int k = 0; k < 3; k++) {
                new_payload(&b, 7, 4);
                cr_expect_eq(dec_wait(dec, &b, &ev, detail, sizeof detail),
                             ITD_REASON_OK, "%s", detail);
                cr_expect_str_eq(ev.user_id, "u-new");
                cr_expect_eq(ev.type, ITD_EV_PURCHASE);
        }
        itd_decoder_stats(dec, &st);
        cr_expect_eq(st.registry_requests, 1, "id 7 fetched %llu times",
                     (unsigned long long)st.registry_requests);
        cr_expect_eq(st.schemas_loaded, 1);

        for (int k = 0; k < 3; k++) {
                new_payload(&b, 8, 4); /* 404 */
                cr_expect_eq(dec_wait(dec, &b, &ev, detail, sizeof detail),
                             ITD_REASON_UNKNOWN_SCHEMA_ID, "%s", detail);
                new_payload(&b, 9, 4); /* resolvable? no: no user_id */
                cr_expect_eq(dec_wait(dec, &b, &ev, detail, sizeof detail),
                             ITD_REASON_SCHEMA_INCOMPATIBLE, "%s", detail);
        }
        itd_decoder_stats(dec, &st);
        cr_expect_eq(st.registry_requests, 3, "misses were not cached: %llu",
                     (unsigned long long)st.registry_requests);
        cr_expect_eq(st.registry_errors, 0);
        itd_decoder_destroy(dec);

        kill(pid, SIGTERM);
        tu_wait(pid, 5000);

        /* The registry gone: an unknown id is dead-lettered, not fatal. */
        dec = new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT, NULL, url);
        new_payload(&b, 7, 4);
        cr_expect_eq(dec_wait(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_UNKNOWN_SCHEMA_ID, "%s", detail);
        itd_decoder_stats(dec, &st);
        cr_expect_eq(st.registry_errors, 1);
        itd_decoder_destroy(dec);
}

/* ---- a registry that answers as the test says: 404, or never ---- */

typedef struct {
        int fd, port;
        int hang;                  /* never answer (keep the socket open) */
        pthread_t th;
        pthread_mutex_t mu;
        int stop;
        int n_req;
        char last_req[2048];
        int held[64];              /* hung connections */
        int n_held;
} fake_reg_t;

static void *fake_reg_run(void *arg) {
        fake_reg_t *f = arg;
        for (;;) {
                pthread_mutex_lock(&f->mu);
                int stop = f->stop;
                pthread_mutex_unlock(&f->mu);
                if (stop)
                        break;
                struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
                if (poll(&pfd, 1, 50) <= 0)
                        continue;
                int c = accept(f->fd, NULL, NULL);
                if (c < 0)
                        continue;
                char req[2048];
                size_t n = 0;
                struct timeval tv = {2, 0};
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                req[0] = '\0';
                while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
                        ssize_t k = read(c, req + n, sizeof req - 1 - n);
                        if (k <= 0)
                                break;
                        n += (size_t)k;
                        req[n] = '\0';
                }
                pthread_mutex_lock(&f->mu);
                f->n_req++;
                memcpy(f->last_req, req, n + 1);
                if (f->hang && f->n_held < 64) {
                        f->held[f->n_held++] = c;
                        c = -1;
                }
                pthread_mutex_unlock(&f->mu);
                if (c >= 0) {
                        const char *a = "HTTP/1.1 404 Not Found\r\n"
                                        "Content-Length: 0\r\n"
                                        "Connection: close\r\n\r\n";
                        if (write(c, a, strlen(a)) < 0)
                                cr_log_info("fake registry: write failed");
                        close(c);
                }
        }
        return NULL;
}

static void fake_reg_start(fake_reg_t *f, int hang) {
        memset(f, 0, sizeof *f);
        f->hang = hang;
        pthread_mutex_init(&f->mu, NULL);
        f->fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof a;
        cr_assert_eq(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
        cr_assert_eq(listen(f->fd, 64), 0);
        cr_assert_eq(getsockname(f->fd, (struct sockaddr *)&a, &alen), 0);
        f->port = ntohs(a.sin_port);
        cr_assert_eq(pthread_create(&f->th, NULL, fake_reg_run, f), 0);
}

static void fake_reg_stop(fake_reg_t *f) {
        pthread_mutex_lock(&f->mu);
        f->stop = 1;
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->th, NULL);
        for (int i = 0; i < f->n_held; i++)
                close(f->held[i]);
        close(f->fd);
        pthread_mutex_destroy(&f->mu);
}

static double since(const struct timespec *t0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) +
               (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static itd_decoder_t *registry_decoder(const char *dir, const char *url,
                                       const char *user_info,
                                       int64_t timeout_ms) {
        itd_input_conf_t ic;
        itd_conf_input_defaults(&ic);
        ic.framing = ITD_FRAMING_CONFLUENT;
        ic.schemas_dir = dir;
        ic.registry_url = url;
        ic.registry_user_info = user_info;
        ic.registry_timeout_ms = timeout_ms;
        return decoder_of(&ic);
}

Test(input, a_hanging_registry_holds_up_nothing, .timeout = 60) {
        char dir[256], url[64], detail[512];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        char src[512];
        char *own = tu_read_file(tu_src("config/event.avsc", src, sizeof src));
        cr_assert(own);
        write_schema(dir, "1.avsc", own);
        free(own);
        fake_reg_t reg;
        fake_reg_start(&reg, 1);
        snprintf(url, sizeof url, "http://127.0.0.1:%d", reg.port);
        itd_decoder_t *dec = registry_decoder(dir, url, NULL, 400);
        itd_event_t ev;
        tu_bytes_t b;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        /* Ten ids the registry never answers, each interleaved with a
         * known one: no decode waits. */
        for (uint32_t id = 100; id < 110; id++) {
                tu_put_header(&b, id);
                tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
                cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                             ITD_REASON_PENDING, "id %u: %s", id, detail);
                cr_expect(strstr(detail, "being looked up"), "%s", detail);
                tu_put_header(&b, 1);
                tu_put_event(&b, "u-known", TS_OK, 0, NAN, NULL);
                cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                             ITD_REASON_OK, "%s", detail);
        }
        cr_expect_lt(since(&t0), 0.3, "20 decodes took %.2f s", since(&t0));
        /* The look-ups time out (400 ms): then the ids are unknown. */
        tu_put_header(&b, 100);
        tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
        cr_expect_eq(dec_wait(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_UNKNOWN_SCHEMA_ID, "%s", detail);
        cr_expect(strstr(detail, "schema id 100"), "%s", detail);
        itd_decoder_stats_t st;
        itd_decoder_stats(dec, &st);
        cr_expect_eq(st.registry_requests, 10);
        itd_decoder_destroy(dec);

        /* Destroying a decoder whose look-up hangs (60 s timeout) does
         * not wait for it. */
        dec = registry_decoder(dir, url, NULL, 60000);
        tu_put_header(&b, 200);
        tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
        cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_PENDING);
        for (int i = 0; i < 100 && reg.n_req < 11; i++)
                itd_decoder_poll(dec, 20);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        itd_decoder_destroy(dec);
        cr_expect_lt(since(&t0), 1.0, "destroy waited %.1f s for a hung "
                     "look-up", since(&t0));
        fake_reg_stop(&reg);
}

/* Base64 of "alice:s3cr:t" */
#define ALICE_BASIC "YWxpY2U6czNjcjp0"

/* Sends stderr to a file while f runs; returns what was written. */
static char *stderr_of(void (*f)(void *), void *arg) {
        char dir[256], path[512];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/stderr", dir);
        FILE *out = fopen(path, "w");
        cr_assert(out);
        int saved = dup(STDERR_FILENO);
        dup2(fileno(out), STDERR_FILENO);
        fclose(out);
        f(arg);
        dup2(saved, STDERR_FILENO);
        close(saved);
        char *text = tu_read_file(path);
        return text ? text : calloc(1, 1);
}

typedef struct {
        const char *url, *user_info;
        char detail[512];
        itd_reason_t r;
} cred_case_t;

static void ask_unknown(void *arg) {
        cred_case_t *c = arg;
        itd_decoder_t *dec = registry_decoder(NULL, c->url, c->user_info, 2000);
        tu_bytes_t b;
        itd_event_t ev;
        tu_put_header(&b, 42);
        tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
        c->r = dec_wait(dec, &b, &ev, c->detail, sizeof c->detail);
        itd_decoder_destroy(dec);
}

Test(input, registry_credentials_are_sent_but_never_shown, .timeout = 60) {
        fake_reg_t reg;
        fake_reg_start(&reg, 0);
        char in_url[128], plain[64];
        /* The password holds ':' and, in the URL, a percent-encoded one. */
        snprintf(in_url, sizeof in_url, "http://alice:s3cr%%3At@127.0.0.1:%d/",
                 reg.port);
        snprintf(plain, sizeof plain, "http://127.0.0.1:%d", reg.port);
        cred_case_t cases[] = {{.url = in_url}, {.url = plain,
                                                 .user_info = "alice:s3cr:t"}};
        for (size_t i = 0; i < 2; i++) {
                int before = reg.n_req;
                char *log = stderr_of(ask_unknown, &cases[i]);
                cr_expect_eq(cases[i].r, ITD_REASON_UNKNOWN_SCHEMA_ID,
                             "case %zu: %s", i, cases[i].detail);
                cr_expect_null(strstr(cases[i].detail, "s3cr"),
                               "case %zu: the dead-letter detail shows the "
                               "password: %s", i, cases[i].detail);
                cr_expect(strstr(cases[i].detail, "127.0.0.1"),
                          "case %zu: %s", i, cases[i].detail);
                cr_expect_null(strstr(log, "s3cr"),
                               "case %zu: the log shows the password:\n%s",
                               i, log);
                pthread_mutex_lock(&reg.mu);
                cr_expect_gt(reg.n_req, before);
                cr_expect(strstr(reg.last_req, "Authorization: Basic "
                                               ALICE_BASIC),
                          "case %zu: no basic auth sent:\n%s", i,
                          reg.last_req);
                cr_expect(strstr(reg.last_req, "GET /schemas/ids/42 "),
                          "case %zu: %s", i, reg.last_req);
                pthread_mutex_unlock(&reg.mu);
                free(log);
        }
        fake_reg_stop(&reg);

        /* Both ways at once is an error, which names the URL without the
         * password. */
        itd_input_conf_t ic;
        char err[512];
        itd_conf_input_defaults(&ic);
        ic.registry_url = in_url;
        ic.registry_user_info = "bob:x";
        cr_expect_null(itd_decoder_new(&ic, NULL, err, sizeof err));
        cr_expect(strstr(err, "basic_auth_user_info"), "%s", err);
        cr_expect(strstr(err, "***@127.0.0.1"), "%s", err);
        cr_expect_null(strstr(err, "s3cr"), "%s", err);
        /* ... and so does a bad scheme. */
        ic.registry_url = "ftp://alice:s3cr@host/";
        ic.registry_user_info = NULL;
        cr_expect_null(itd_decoder_new(&ic, NULL, err, sizeof err));
        cr_expect_null(strstr(err, "s3cr"), "%s", err);
}

typedef struct {
        const char *dir;
        uint32_t first, n;
        uint64_t misses_before, misses_after;
} flood_t;

static void flood(void *arg) {
        flood_t *fl = arg;
        itd_decoder_t *dec =
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT, fl->dir, NULL);
        itd_event_t ev;
        char detail[256];
        tu_bytes_t b;
        itd_decoder_stats_t st;
        /* 1000 unknown ids, then an attacker's 20000 more, then the first
         * 1000 again: those are still remembered, not looked up anew. */
        for (uint32_t id = fl->first; id < fl->first + 1000; id++) {
                tu_put_header(&b, id);
                tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
                dec_bytes(dec, &b, &ev, detail, sizeof detail);
        }
        for (uint32_t id = 100000; id < 100000 + fl->n; id++) {
                tu_put_header(&b, id);
                tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
                dec_bytes(dec, &b, &ev, detail, sizeof detail);
        }
        itd_decoder_stats(dec, &st);
        fl->misses_before = st.schema_misses;
        for (uint32_t id = fl->first; id < fl->first + 1000; id++) {
                tu_put_header(&b, id);
                tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
                cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                             ITD_REASON_UNKNOWN_SCHEMA_ID);
        }
        itd_decoder_stats(dec, &st);
        fl->misses_after = st.schema_misses;
        itd_decoder_destroy(dec);
}

Test(input, a_flood_of_unknown_ids_cannot_cycle_the_miss_cache_or_the_log) {
        char dir[256];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        flood_t fl = {.dir = dir, .first = 1, .n = 20000};
        char *log = stderr_of(flood, &fl);
        cr_expect_eq(fl.misses_after, fl.misses_before,
                     "%llu of the first 1000 ids were looked up again after "
                     "a flood of other ids",
                     (unsigned long long)(fl.misses_after - fl.misses_before));
        size_t lines = 0;
        for (const char *p = log; (p = strchr(p, '\n')); p++)
                lines++;
        cr_expect_leq(lines, 12, "%zu log lines for 21000 unknown ids",
                      lines);
        free(log);
}
