/*
 * test_it_erasure.c - erasure on request, as separate processes: `intentd
 * broker`, `intentd run` with topics.control, checkpoints and the query
 * endpoint on. A user's events leave state, pending labels and trigger
 * state; then an erasure record (JSON, on another partition of the control
 * topic than the user's events) and a bad one. Checks: the acknowledgement
 * on the audit topic names what went and the first clean checkpoint; that
 * checkpoint holds no byte of the user's id and `intentd inspect state`
 * no trace of them, while another user stays; GET /users/<id> says unknown;
 * the bad record is dead-lettered with its reason; the user's later events
 * start from empty state.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "intentd/control.h"
#include "intentd/log.h"
#include "testutil.h"

#define WAIT_MS 90000
#define GONE "erase-me-please-a-long-user-id-kept-in-the-arena-0001"
#define KEPT "keep-me"
#define TOPICS "intentd.events,intentd.predictions,intentd.triggers," \
               "intentd.dead_letter,intentd.control,intentd.audit"
#define PARTS 3

static tu_broker_t broker;
static char conf_path[512], log_run[512], ck_dir[600];
static int port;
static pid_t run_pid = -1;

static void setup(void) {
        tu_broker_start(&broker, PARTS, TOPICS);
        snprintf(log_run, sizeof log_run, "%s/run.log", broker.dir);
        snprintf(ck_dir, sizeof ck_dir, "%s/ck", broker.dir);
        port = tu_free_port();
        tu_conf_write(broker.dir, broker.bootstrap, "intentd.yaml", conf_path,
                      sizeof conf_path, TU_KAFKA_FAST,
                      "topics:\n"
                      "  control: intentd.control\n"
                      "  audit: intentd.audit\n"
                      "input:\n"
                      "  format: json\n"
                      "triggers:\n"
                      "  rule: absolute\n"
                      "  enter: 0\n"
                      "  exit: 0\n"
                      "  max_event_age: 0\n"
                      "checkpoint:\n"
                      "  dir: \"%s\"\n"
                      "  interval: 1s\n"
                      "  keep: 100\n"
                      "metrics:\n"
                      "  listen: \"127.0.0.1:%d\"\n"
                      "  query: on\n"
                      "shutdown:\n"
                      "  timeout: 10s\n",
                      ck_dir, port);
}

static void teardown(void) {
        if (run_pid > 0 && tu_wait(run_pid, 0) == -1) {
                kill(run_pid, SIGKILL);
                waitpid(run_pid, NULL, 0);
        }
        tu_broker_stop(&broker);
}

TestSuite(erasure, .init = setup, .fini = teardown, .timeout = 300);

/* ---- helpers ---------------------------------------------------------- */

static long metric(const char *name) {
        char *body = NULL, key[128];
        long v = -1;
        snprintf(key, sizeof key, "\n%s ", name);
        if (tu_http(port, "GET", "/metrics", 10000, NULL, &body) == 200) {
                const char *p = strstr(body, key);
                if (p)
                        v = strtol(p + strlen(key), NULL, 10);
        }
        free(body);
        return v;
}

typedef struct want_s {
        long n;
} want_t;

static int published_reached(void *arg) {
        const want_t *w = arg;
        cr_assert_eq(tu_wait(run_pid, 0), -1, "intentd run exited (see %s)",
                     log_run);
        return metric("intentd_predictions_published_total") >= w->n;
}

static void wait_published(long n) {
        want_t w = {n};
        cr_assert_eq(tu_wait_until(published_reached, &w, WAIT_MS), 0,
                     "%ld predictions not published (see %s)", n, log_run);
}

/* One JSON event of user at ts, to partition p. */
static void produce_events(const char *user, int32_t p, int64_t ts0, int n,
                           const char *type_last) {
        char *text[16];
        tu_record_t recs[16];
        for (int i = 0; i < n; i++) {
                text[i] = malloc(256);
                snprintf(text[i], 256,
                         "{\"user_id\":\"%s\",\"ts\":%lld,\"type\":\"%s\","
                         "\"item_id\":\"i%d\",\"category\":\"c%d\"}",
                         user, (long long)(ts0 + i * 40000LL),
                         i == n - 1 ? type_last : "VIEW", i, i % 3);
                recs[i] = (tu_record_t){.partition = p, .key = user,
                                        .value = text[i],
                                        .len = strlen(text[i])};
        }
        tu_produce(broker.bootstrap, "intentd.events", recs, (size_t)n);
        for (int i = 0; i < n; i++)
                free(text[i]);
}

static int get_user(const char *id, json_t **doc) {
        char path[256], *body = NULL;
        snprintf(path, sizeof path, "/users/%s", id);
        int status = tu_http(port, "GET", path, 10000, NULL, &body);
        cr_assert(body, "GET %s: no answer", path);
        cr_expect_null(strstr(body, id), "the clear id in %s", body);
        json_error_t jerr;
        *doc = json_loads(body, 0, &jerr);
        cr_assert(*doc, "GET %s: not JSON: %s", path, body);
        free(body);
        return status;
}

/* The audit record of request_id, decoded. */
typedef struct audit_seen_s {
        const char *request_id;
        itd_audit_t a;
        int32_t parts[64];
        int found;
} audit_seen_t;

static int on_audit(void *arg, const rd_kafka_message_t *m) {
        audit_seen_t *s = arg;
        char why[256];
        itd_audit_t a;
        int32_t parts[64];
        cr_assert_eq(itd_audit_decode(m->payload, m->len, &a, parts, 64, why,
                                      sizeof why),
                     ITD_REASON_OK, "audit record: %s", why);
        cr_expect(m->key_len == strlen(a.request_id) &&
                      !memcmp(m->key, a.request_id, m->key_len),
                  "keyed by request_id");
        if (strcmp(a.request_id, s->request_id) != 0)
                return 0;
        s->a = a;
        memcpy(s->parts, parts, sizeof parts);
        s->a.partitions = s->parts;
        s->found = 1;
        return 1;
}

typedef struct dlq_seen_s {
        char reason[64];
        char topic[64];
} dlq_seen_t;

static int on_dead_letter(void *arg, const rd_kafka_message_t *m) {
        dlq_seen_t *s = arg;
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t n;
        if (rd_kafka_message_headers(m, &h) || !h)
                return 0;
        if (!rd_kafka_header_get_last(h, "intentd.error.reason", &v, &n) &&
            n < sizeof s->reason) {
                memcpy(s->reason, v, n);
                s->reason[n] = '\0';
        }
        if (!rd_kafka_header_get_last(h, "intentd.source.topic", &v, &n) &&
            n < sizeof s->topic) {
                memcpy(s->topic, v, n);
                s->topic[n] = '\0';
        }
        return !strcmp(s->topic, "intentd.control");
}

/* 1 when some file of dir holds the bytes of what. */
static int dir_holds(const char *dir, const char *what) {
        DIR *d = opendir(dir);
        cr_assert_not_null(d, "no folder %s", dir);
        struct dirent *e;
        int found = 0;
        while (!found && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                char path[1200];
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                FILE *f = fopen(path, "rb");
                if (!f)
                        continue;
                fseek(f, 0, SEEK_END);
                long len = ftell(f);
                fseek(f, 0, SEEK_SET);
                char *buf = malloc((size_t)len + 1);
                size_t got = fread(buf, 1, (size_t)len, f);
                fclose(f);
                size_t wl = strlen(what);
                for (size_t i = 0; !found && i + wl <= got; i++)
                        found = !memcmp(buf + i, what, wl);
                free(buf);
        }
        closedir(d);
        return found;
}

/* ---- the test --------------------------------------------------------- */

Test(erasure, a_user_is_forgotten_everywhere_and_acknowledged) {
        run_pid = tu_daemon_start(conf_path, log_run);
        int64_t now = (int64_t)time(NULL) * 1000;
        /* GONE on partition 1, KEPT on partition 2; horizons (30 min) stay
         * open: their predictions wait for labels. */
        produce_events(GONE, 1, now - 600000, 6, "ADD_TO_CART");
        produce_events(KEPT, 2, now - 600000, 4, "VIEW");
        wait_published(10);

        json_t *doc;
        cr_assert_eq(get_user(GONE, &doc), 200, "the user is known first");
        json_decref(doc);

        /* The erasure request on partition 0 of the control topic (not
         * the user's events partition), then a bad one. */
        char req[512], bad[256];
        snprintf(req, sizeof req,
                 "{\"type\":\"ERASE\",\"user_id\":\"%s\","
                 "\"request_id\":\"req-1\",\"requested_at\":%lld}",
                 GONE, (long long)now);
        snprintf(bad, sizeof bad,
                 "{\"type\":\"FORGET\",\"user_id\":\"%s\","
                 "\"request_id\":\"req-2\",\"requested_at\":%lld}",
                 KEPT, (long long)now);
        tu_record_t ctl[2] = {
            {.partition = 0, .key = GONE, .value = req, .len = strlen(req)},
            {.partition = 0, .key = KEPT, .value = bad, .len = strlen(bad)}};
        tu_produce(broker.bootstrap, "intentd.control", ctl, 2);

        /* The acknowledgement. */
        rd_kafka_t *rd = tu_reader_new(broker.bootstrap, "audit-reader",
                                       "intentd.audit", PARTS);
        audit_seen_t seen = {.request_id = "req-1"};
        cr_assert_eq(tu_poll(rd, WAIT_MS, on_audit, &seen), 0,
                     "no acknowledgement of req-1 (see %s)", log_run);
        tu_consumer_destroy(rd);
        itd_audit_t *a = &seen.a;
        cr_expect_eq(a->type, ITD_CONTROL_ERASE);
        cr_expect_eq(strncmp(a->user, "u:", 2), 0, "pseudonym %s", a->user);
        cr_expect_null(strstr(a->user, GONE));
        cr_expect_eq(a->requested_at_ms, now);
        cr_expect_geq(a->completed_at_ms, now);
        cr_expect_eq(a->users, 1);
        cr_expect_eq(a->events, 6);
        cr_expect_geq(a->pending, 1, "pending predictions removed");
        cr_expect_eq(a->triggers, 1, "trigger state removed");
        cr_expect_eq(a->cached, 1, "the latest prediction removed");
        cr_expect_gt(a->cut, 0, "a clean checkpoint");
        int has1 = 0;
        for (size_t i = 0; i < a->n_partitions; i++)
                has1 |= a->partitions[i] == 1;
        cr_expect(has1, "the acknowledgement covers partition 1");

        /* That checkpoint: not one byte of the id; inspect shows the
         * other user only. */
        char cp_dir[800];
        snprintf(cp_dir, sizeof cp_dir, "%s/cut-%012llu", ck_dir,
                 (unsigned long long)a->cut);
        cr_expect_not(dir_holds(cp_dir, GONE), "%s holds the id", cp_dir);
        char out_path[800], *argv[] = {(char *)ITD_BINARY, "inspect", "state",
                                       cp_dir, NULL};
        snprintf(out_path, sizeof out_path, "%s/inspect.out", broker.dir);
        cr_assert_eq(tu_run(argv, out_path, 30000), 0, "inspect state");
        char *dump = tu_read_file(out_path);
        cr_assert(dump);
        cr_expect_null(strstr(dump, GONE), "inspect state: %s", dump);
        cr_expect(strstr(dump, KEPT), "the other user stays: %s", dump);
        free(dump);

        /* The query endpoint. */
        cr_expect_eq(get_user(GONE, &doc), 404);
        cr_expect(json_is_false(json_object_get(doc, "known")));
        json_decref(doc);
        cr_expect_eq(get_user(KEPT, &doc), 200);
        json_decref(doc);

        /* The bad record, dead-lettered with its reason. */
        rd = tu_reader_new(broker.bootstrap, "dlq-reader",
                           "intentd.dead_letter", PARTS);
        dlq_seen_t dl = {"", ""};
        cr_assert_eq(tu_poll(rd, WAIT_MS, on_dead_letter, &dl), 0,
                     "no dead letter from intentd.control");
        tu_consumer_destroy(rd);
        cr_expect_str_eq(dl.reason, "bad_control");

        /* Later events start from empty state. */
        produce_events(GONE, 1, now + 60000, 1, "VIEW");
        wait_published(11);
        cr_assert_eq(get_user(GONE, &doc), 200);
        json_t *w = json_object_get(json_object_get(doc, "state"),
                                    "lifetime_events");
        cr_assert(json_is_object(w), "no lifetime_events");
        cr_expect_eq(json_integer_value(json_object_get(w, "VIEW")), 1,
                     "one view since the erasure");
        cr_expect_eq(json_integer_value(json_object_get(w, "ADD_TO_CART")), 0);
        json_decref(doc);

        kill(run_pid, SIGTERM);
        cr_expect_eq(tu_wait(run_pid, 30000), 0, "intentd run exit");
        run_pid = -1;
}
