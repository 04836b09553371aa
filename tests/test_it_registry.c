/*
 * test_it_registry.c - a schema registry that hangs holds up nothing, as
 * separate processes: `intentd broker`, a registry in this process that
 * accepts connections and never answers (credentials in its URL), and
 * `intentd run`. Events of a known schema must all be predicted at once
 * while twenty messages of unknown ids wait; /livez stays 200; SIGTERM
 * stops the daemon within shutdown.timeout, the waiting events' offsets
 * uncommitted (they are consumed again). A second run with a short
 * look-up timeout dead-letters them as unknown_schema_id. The password
 * appears in no log line and no dead-letter header.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/event.h"
#include "testutil.h"

#define PARTITIONS 2
#define N_GOOD 40
#define N_UNKNOWN 20
#define PASSWORD "hunter2"

static tu_broker_t broker;

/* ---- a registry that never answers ---- */

static int reg_fd = -1, reg_port;
static int held[64], n_held;
static pthread_t reg_th;
static volatile int reg_stop;

static void *reg_run(void *arg) {
        (void)arg;
        while (!reg_stop) {
                struct pollfd pfd = {.fd = reg_fd, .events = POLLIN};
                if (poll(&pfd, 1, 50) <= 0)
                        continue;
                int c = accept(reg_fd, NULL, NULL);
                if (c >= 0 && n_held < 64)
                        held[n_held++] = c; /* read nothing, answer never */
                else if (c >= 0)
                        close(c);
        }
        return NULL;
}

static void start_all(void) {
        tu_broker_start(&broker, PARTITIONS, NULL);

        reg_fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof a;
        cr_assert_eq(bind(reg_fd, (struct sockaddr *)&a, sizeof a), 0);
        cr_assert_eq(listen(reg_fd, 64), 0);
        cr_assert_eq(getsockname(reg_fd, (struct sockaddr *)&a, &alen), 0);
        reg_port = ntohs(a.sin_port);
        cr_assert_eq(pthread_create(&reg_th, NULL, reg_run, NULL), 0);
}

static void stop_all(void) {
        reg_stop = 1;
        pthread_join(reg_th, NULL);
        for (int i = 0; i < n_held; i++)
                close(held[i]);
        if (reg_fd >= 0)
                close(reg_fd);
        tu_broker_stop(&broker);
}

/* GET /livez: its status, or -1. */
static int livez(int port) {
        return tu_http(port, "GET", "/livez", 2000, NULL, NULL);
}

/* Config `name` in the test's folder (its path to path): consumer
 * group, listener port, registry timeout, checkpoint folder ck (or none). */
static void write_conf(const char *name, char *path, size_t cap,
                       const char *group, int port, const char *timeout,
                       const char *ck) {
        char kafka[256], ckdir[600] = "";
        snprintf(kafka, sizeof kafka, "  group.id: \"%s\"\n" TU_KAFKA_FAST,
                 group);
        if (ck)
                snprintf(ckdir, sizeof ckdir,
                         "checkpoint.dir: \"%s/%s\"\n"
                         "checkpoint.interval: 1s\n",
                         broker.dir, ck);
        tu_conf_write(broker.dir, broker.bootstrap, name, path, cap, kafka,
                      "input:\n"
                      "  framing: confluent\n"
                      "  schemas_dir: \"%s/schemas\"\n"
                      "  schema_registry:\n"
                      "    url: \"http://svc:" PASSWORD "@127.0.0.1:%d/\"\n"
                      "    timeout: %s\n"
                      "metrics:\n"
                      "  listen: \"127.0.0.1:%d\"\n"
                      "  log.interval: 1s\n"
                      "health.liveness.timeout: 2s\n"
                      "shutdown.timeout: 5s\n"
                      "%s",
                      broker.dir, reg_port, timeout, port, ckdir);
}

/* The events: per partition, good ones with unknown-id ones in between. */
typedef struct {
        unsigned char b[512];
        size_t n;
        int partition;
        int unknown;
        int64_t offset;
} rec_t;

static rec_t recs[N_GOOD + N_UNKNOWN];
static size_t n_recs;

static void produce_all(const char *bs) {
        char err[512];
        itd_codec_t *codec = itd_codec_new(err, sizeof err);
        cr_assert(codec, "%s", err);
        int64_t t0 = (int64_t)time(NULL) * 1000 - 600000;
        for (int i = 0; i < N_GOOD + N_UNKNOWN; i++) {
                rec_t *r = &recs[n_recs++];
                itd_event_t ev;
                itd_event_clear(&ev);
                snprintf(ev.user_id, sizeof ev.user_id, "u%d", i % 9);
                ev.ts_ms = t0 + i * 1000;
                ev.type = ITD_EV_VIEW;
                /* Every third record: an id no schema source has (the
                 * registry is asked, and hangs). */
                r->unknown = i % 3 == 2;
                cr_assert_eq(itd_codec_encode_event(codec, &ev,
                                                    r->unknown ? 500 + i : 1,
                                                    r->b, sizeof r->b, &r->n),
                             ITD_OK);
                r->partition = i % PARTITIONS;
                r->offset = -1;
        }
        itd_codec_destroy(codec);
        size_t unknown = 0;
        for (size_t i = 0; i < n_recs; i++)
                unknown += (size_t)recs[i].unknown;
        cr_assert_eq(unknown, N_UNKNOWN);

        static tu_record_t out[N_GOOD + N_UNKNOWN];
        static char keys[N_GOOD + N_UNKNOWN][16];
        for (size_t i = 0; i < n_recs; i++) {
                snprintf(keys[i], sizeof keys[i], "u%zu", i % 9);
                out[i] = (tu_record_t){.partition = recs[i].partition,
                                       .key = keys[i],
                                       .value = recs[i].b,
                                       .len = recs[i].n};
        }
        tu_produce(bs, "intentd.events", out, n_recs);
        for (size_t i = 0; i < n_recs; i++)
                recs[i].offset = out[i].offset;
}

static rd_kafka_t *output_reader(const char *bs) {
        return tu_reader_new(bs, "registry-test",
                             "intentd.predictions,intentd.dead_letter",
                             PARTITIONS);
}

static double since(const struct timespec *t0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) +
               (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Reads outputs for up to wait_s seconds or until the counts are
 * reached; probes /livez every 500 ms meanwhile. */
typedef struct {
        size_t preds, dlq, dlq_unknown, dlq_leaks, livez_bad, livez_probes;
        size_t dlq_at_checkpoint; /* detail: settled by a checkpoint */
        int live; /* /livez answered once (the listener is up) */
} seen_t;

static void read_outputs(rd_kafka_t *rk, int port, seen_t *s,
                         size_t want_preds, size_t want_dlq, double wait_s) {
        struct timespec t0, last_probe = {0, 0};
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while ((s->preds < want_preds || s->dlq < want_dlq) &&
               since(&t0) < wait_s) {
                if (since(&last_probe) > 0.5) {
                        clock_gettime(CLOCK_MONOTONIC, &last_probe);
                        int status = livez(port);
                        if (status == 200)
                                s->live = 1;
                        if (s->live) {
                                s->livez_probes++;
                                s->livez_bad += status != 200;
                        }
                }
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m)
                        continue;
                if (!m->err) {
                        if (!strcmp(rd_kafka_topic_name(m->rkt),
                                    "intentd.predictions")) {
                                s->preds++;
                        } else {
                                s->dlq++;
                                rd_kafka_headers_t *h = NULL;
                                const void *v;
                                size_t n;
                                if (!rd_kafka_message_headers(m, &h) && h) {
                                        if (!rd_kafka_header_get_last(
                                                h, "intentd.error.reason", &v,
                                                &n) &&
                                            n == 17 &&
                                            !memcmp(v, "unknown_schema_id",
                                                    17))
                                                s->dlq_unknown++;
                                        for (size_t k = 0;
                                             !rd_kafka_header_get_all(
                                                 h, k, &(const char *){NULL},
                                                 &v, &n);
                                             k++) {
                                                char text[1024];
                                                snprintf(text, sizeof text,
                                                         "%.*s", (int)n,
                                                         (const char *)v);
                                                if (strstr(text, PASSWORD))
                                                        s->dlq_leaks++;
                                                if (strstr(text, "when a "
                                                                 "checkpoint "
                                                                 "was due"))
                                                        s->dlq_at_checkpoint++;
                                        }
                                }
                        }
                }
                rd_kafka_message_destroy(m);
        }
}

/* The schema folder (id 1: the built-in schema) and the events on the
 * broker; returns the bootstrap string (caller frees). */
static char *setup_events(void) {
        char *bs = strdup(broker.bootstrap);
        cr_assert(bs);
        char schemas[512], src[600];
        snprintf(schemas, sizeof schemas, "%s/schemas", broker.dir);
        cr_assert_eq(mkdir(schemas, 0755), 0);
        char *own = tu_read_file(tu_src("config/event.avsc", src, sizeof src));
        cr_assert(own);
        snprintf(src, sizeof src, "%s/1.avsc", schemas);
        cr_assert_eq(tu_write_file(src, own), 0);
        free(own);
        produce_all(bs);
        return bs;
}

/* The closing accounting line of a run's log; 1 if parsed. */
static int accounting(const char *text, unsigned long long v[7]) {
        const char *acc = strstr(text, "accounting: ");
        return acc && sscanf(acc, "accounting: consumed=%llu predicted=%llu "
                                  "dead_lettered=%llu filtered=%llu "
                                  "undeliverable=%llu "
                                  "dead_letters_truncated=%llu "
                                  "awaiting_schema=%llu",
                             &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                             &v[6]) == 7;
}

TestSuite(registry, .init = start_all, .fini = stop_all, .timeout = 240);

Test(registry, a_hanging_registry_holds_up_only_the_events_that_need_it) {
        char *bs = setup_events();
        char conf1[512], conf2[512], log1[512], log2[512];

        int port = tu_free_port();
        cr_assert_gt(port, 0);
        snprintf(log1, sizeof log1, "%s/run1.log", broker.dir);
        /* A look-up may take 60 s: everything that needs one waits. */
        write_conf("run1.yaml", conf1, sizeof conf1, "intentd", port, "60s",
                   NULL);
        rd_kafka_t *rk = output_reader(bs);
        pid_t pid = tu_daemon_start(conf1, log1);

        /* Every known-schema event is predicted, promptly, though twenty
         * look-ups hang; none of the waiting ones is dead-lettered. */
        seen_t s = {0};
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        read_outputs(rk, port, &s, N_GOOD, 0, 60);
        double took = since(&t0);
        cr_expect_eq(s.preds, N_GOOD, "%zu of %d predictions (see %s)",
                     s.preds, N_GOOD, log1);
        cr_expect_lt(took, 30, "the predictions took %.0f s", took);
        cr_expect_eq(s.dlq, 0);
        cr_expect(s.live, "/livez never answered 200");
        cr_expect_eq(s.livez_bad, 0, "/livez failed %zu of %zu probes",
                     s.livez_bad, s.livez_probes);

        /* SIGTERM while they wait: out within shutdown.timeout (5 s). */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        kill(pid, SIGTERM);
        int rc = tu_wait(pid, 30000);
        double stop_s = since(&t0);
        if (rc == -1) {
                kill(pid, SIGKILL);
                tu_wait(pid, 5000);
        }
        cr_expect_eq(rc, 0, "exit %d (see %s)", rc, log1);
        cr_expect_lt(stop_s, 7.0, "SIGTERM took %.1f s", stop_s);
        char *text = tu_read_file(log1);
        cr_assert(text);
        cr_expect_null(strstr(text, PASSWORD), "the password is in %s", log1);
        unsigned long long v[7];
        cr_assert(accounting(text, v), "no accounting line in %s", log1);
        unsigned long long consumed = v[0], predicted = v[1], dead = v[2],
                           filtered = v[3], awaiting = v[6];
        cr_expect_eq(consumed, n_recs);
        cr_expect_eq(awaiting, N_UNKNOWN);
        cr_expect_eq(consumed, predicted + dead + filtered + awaiting);
        free(text);

        /* Their offsets held the commits: each partition's committed
         * position is its first waiting event, consumed again next time. */
        int64_t committed[PARTITIONS];
        cr_assert_eq(tu_offsets(bs, "intentd", "intentd.events", PARTITIONS,
                                committed, NULL), 0);
        for (int p = 0; p < PARTITIONS; p++) {
                int64_t first = -1;
                for (size_t i = 0; i < n_recs && first < 0; i++)
                        if (recs[i].partition == p && recs[i].unknown)
                                first = recs[i].offset;
                cr_expect_eq(committed[p], first,
                             "partition %d committed %lld, first waiting "
                             "event at %lld",
                             p, (long long)committed[p], (long long)first);
        }

        /* Second run, another group, a 1 s look-up: the twenty are
         * dead-lettered as unknown_schema_id, without the password. */
        snprintf(log2, sizeof log2, "%s/run2.log", broker.dir);
        write_conf("run2.yaml", conf2, sizeof conf2, "intentd-second", port,
                   "1s", NULL);
        pid = tu_daemon_start(conf2, log2);
        seen_t s2 = {0};
        read_outputs(rk, port, &s2, N_GOOD, N_UNKNOWN, 60);
        kill(pid, SIGTERM);
        rc = tu_wait(pid, 30000);
        if (rc == -1) {
                kill(pid, SIGKILL);
                tu_wait(pid, 5000);
        }
        cr_expect_eq(rc, 0, "exit %d (see %s)", rc, log2);
        cr_expect_eq(s2.preds, N_GOOD, "see %s", log2);
        cr_expect_eq(s2.dlq, N_UNKNOWN, "see %s", log2);
        cr_expect_eq(s2.dlq_unknown, N_UNKNOWN);
        cr_expect_eq(s2.dlq_leaks, 0, "%zu dead-letter headers hold the "
                     "password", s2.dlq_leaks);
        text = tu_read_file(log2);
        cr_assert(text);
        cr_expect_null(strstr(text, PASSWORD), "the password is in %s", log2);
        free(text);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        free(bs);
}

Test(registry, a_due_checkpoint_settles_the_waiting_events) {
        char *bs = setup_events();
        char conf[512], log[512];
        int port = tu_free_port();
        cr_assert_gt(port, 0);
        snprintf(log, sizeof log, "%s/run.log", broker.dir);
        /* Look-ups may take 60 s, checkpoints are due every second: the
         * first due checkpoint dead-letters the waiting events so that it
         * holds every event before its positions. */
        write_conf("run.yaml", conf, sizeof conf, "intentd", port, "60s", "ck");
        rd_kafka_t *rk = output_reader(bs);
        pid_t pid = tu_daemon_start(conf, log);
        seen_t s = {0};
        read_outputs(rk, port, &s, N_GOOD, N_UNKNOWN, 60);
        kill(pid, SIGTERM);
        int rc = tu_wait(pid, 30000);
        if (rc == -1) {
                kill(pid, SIGKILL);
                tu_wait(pid, 5000);
        }
        cr_expect_eq(rc, 0, "exit %d (see %s)", rc, log);
        cr_expect_eq(s.preds, N_GOOD, "see %s", log);
        cr_expect_eq(s.dlq, N_UNKNOWN, "see %s", log);
        cr_expect_eq(s.dlq_unknown, N_UNKNOWN);
        cr_expect_eq(s.dlq_at_checkpoint, N_UNKNOWN,
                     "%zu of %d dead letters say a checkpoint settled them",
                     s.dlq_at_checkpoint, N_UNKNOWN);
        char *text = tu_read_file(log);
        cr_assert(text);
        unsigned long long v[7];
        cr_assert(accounting(text, v), "no accounting line in %s", log);
        cr_expect_eq(v[0], n_recs);
        cr_expect_eq(v[6], 0, "awaiting_schema=%llu with checkpoints", v[6]);
        cr_expect_eq(v[0], v[1] + v[2] + v[3]);
        cr_expect(strstr(text, " complete ("), "no checkpoint completed (%s)",
                  log);
        cr_expect_null(strstr(text, "no checkpoint at stop"),
                       "the final checkpoint was refused (%s)", log);
        free(text);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        free(bs);
}
