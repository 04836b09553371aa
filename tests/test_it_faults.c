/*
 * test_it_faults.c - at-least-once under faults: the test owns a
 * librdkafka mock cluster (3 brokers) so it can break it, streams
 * simulated events into it while `intentd run` consumes, and injects
 *   (a) the partition leader broker down for 10 s, then up;
 *   (b) retriable errors on Produce and Fetch requests;
 *   (c) kill -9 of the daemon mid-stream, and a restart in the same group.
 * Afterwards every event delivered to the events topic (partition, offset)
 * has at least one prediction whose prediction_id is
 * "intentd.events/<partition>/<offset>", the daemon answers /livez and
 * /readyz, and exits 0 on SIGTERM. Duplicates are allowed (at-least-once)
 * and reported.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/event.h"
#include "intentd/simulator.h"
#include "testutil.h"

#define N_PART 3
#define MAX_OFFSETS 60000  /* per partition; the cases produce far fewer */
#define RATE_PER_S 400     /* events produced per second of wall time */
#define SLICE_MS 50
#define SHUTDOWN_TIMEOUT_S 10
#define EXIT_SLACK_MS 10000
/* Kafka protocol request types (ApiKey), for the mock's error stacks. */
#define API_PRODUCE 0
#define API_FETCH 1

static const char *const T_EVENTS = "intentd.events";
static const char *const T_PREDICTIONS = "intentd.predictions";

/* Which broker (1..3) leads each partition, and the group coordinator. */
typedef struct {
        int32_t events[N_PART];
        int32_t predictions[N_PART];
        int32_t coordinator;
} layout_t;

static struct {
        rd_kafka_t *mrk; /* owns the mock cluster */
        rd_kafka_mock_cluster_t *mc;
        char *bootstrap;
        rd_kafka_t *prod; /* the events producer */
        itd_codec_t *codec;
        itd_sim_t *sim;
        uint8_t *delivered[N_PART]; /* [offset]: event acknowledged there */
        uint32_t *seen[N_PART];     /* [offset]: predictions for it */
        uint64_t produced, acked, failed;
        char dir[256], conf_path[512], log_run[512];
        int port;
        pid_t run_pid;
} fx = {.run_pid = -1};

/* ---- set-up ------------------------------------------------------------- */

static void quiet(rd_kafka_conf_t *kc) {
        char err[256];
        /* Broker-down cases make every client log connection errors. */
        /* FAULTS_LOG=broker,eos,... turns librdkafka's debug contexts on
         * in the test's own clients, for a failing run. */
        const char *debug = getenv("FAULTS_LOG");
        rd_kafka_conf_set(kc, "log_level", debug ? "7" : "2", err,
                          sizeof err);
        if (debug)
                rd_kafka_conf_set(kc, "debug", debug, err, sizeof err);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *op) {
        (void)rk;
        (void)op;
        if (m->err || m->partition < 0 || m->partition >= N_PART ||
            m->offset < 0 || m->offset >= MAX_OFFSETS) {
                fx.failed++;
                return;
        }
        fx.delivered[m->partition][m->offset] = 1;
        fx.acked++;
}

static void set_up_cluster(const layout_t *lay) {
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        quiet(kc);
        fx.mrk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        cr_assert(fx.mrk, "mock owner: %s", err);
        fx.mc = rd_kafka_mock_cluster_new(fx.mrk, 3);
        cr_assert(fx.mc, "cannot start the mock cluster");
        fx.bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(fx.mc));
        static const char *const small[] = {"intentd.dead_letter",
                                            "intentd.triggers"};
        cr_assert_eq(rd_kafka_mock_topic_create(fx.mc, T_EVENTS, N_PART, 3),
                     0);
        cr_assert_eq(rd_kafka_mock_topic_create(fx.mc, T_PREDICTIONS, N_PART,
                                                3), 0);
        for (int i = 0; i < 2; i++)
                cr_assert_eq(rd_kafka_mock_topic_create(fx.mc, small[i], 1, 3),
                             0);
        for (int32_t p = 0; p < N_PART; p++) {
                cr_assert_eq(rd_kafka_mock_partition_set_leader(
                                 fx.mc, T_EVENTS, p, lay->events[p]), 0);
                cr_assert_eq(rd_kafka_mock_partition_set_leader(
                                 fx.mc, T_PREDICTIONS, p,
                                 lay->predictions[p]), 0);
        }
        cr_assert_eq(rd_kafka_mock_coordinator_set(fx.mc, "group", "intentd",
                                                   lay->coordinator), 0);

        kc = rd_kafka_conf_new();
        quiet(kc);
        cr_assert_eq(rd_kafka_conf_set(kc, "bootstrap.servers", fx.bootstrap,
                                       err, sizeof err), RD_KAFKA_CONF_OK);
        /* Not idempotent: a lost response (broker down mid-request) may
         * store an event twice, which only adds an offset to the topic;
         * every acknowledged offset is still checked. */
        rd_kafka_conf_set(kc, "linger.ms", "5", err, sizeof err);
        rd_kafka_conf_set(kc, "reconnect.backoff.max.ms", "300", err,
                          sizeof err);
        rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
        fx.prod = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        cr_assert(fx.prod, "events producer: %s", err);

        fx.codec = itd_codec_new(err, sizeof err);
        cr_assert(fx.codec, "%s", err);
        /* Three days of 1000 simulated shoppers (about 50k events), ending
         * a day ago: event times are valid and never ahead of the clock. */
        itd_sim_conf_t sc = {.users = 1000, .days = 3, .seed = 11,
                             .start_ms = (int64_t)time(NULL) * 1000 -
                                         4 * 86400000LL};
        fx.sim = itd_sim_new(&sc, err, sizeof err);
        cr_assert(fx.sim, "%s", err);
        for (int p = 0; p < N_PART; p++) {
                fx.delivered[p] = calloc(MAX_OFFSETS, 1);
                fx.seen[p] = calloc(MAX_OFFSETS, sizeof *fx.seen[p]);
        }

        cr_assert(tu_tmpdir(fx.dir, sizeof fx.dir));
        snprintf(fx.log_run, sizeof fx.log_run, "%s/run.log", fx.dir);
        fx.port = tu_free_port();
        /* One produce request in flight per broker. The daemon's producer is
         * idempotent: when a request fails and a later one of the same
         * partition, already in flight, succeeds, librdkafka counts the
         * failed one as delivered too, since a real broker refuses the
         * later one (out-of-order sequence) unless the earlier one was
         * stored. The mock cluster checks sequences only for transactional
         * producers: it drops the failed request's records and stores the
         * later one, and a prediction reported delivered is not on the
         * topic. That loss is the mock's alone; it is not what these tests
         * judge. */
        tu_conf_write(fx.dir, fx.bootstrap, "intentd.yaml", fx.conf_path,
                      sizeof fx.conf_path,
                      TU_KAFKA_FAST "  reconnect.backoff.max.ms: 300\n"
                                    "  max.in.flight.requests.per.connection: "
                                    "1\n",
                      "metrics:\n"
                      "  listen: \"127.0.0.1:%d\"\n"
                      "  log.interval: 2s\n"
                      /* The test's own producer retries a batch the downed
                       * broker refused after later batches went out, so a
                       * partition's simulated event times arrive out of
                       * order by minutes. That is lateness, not a Kafka
                       * fault: with the default 5 s those events would be
                       * filtered (and counted) as late, which is not what
                       * these tests judge. */
                      "windows:\n"
                      "  allowed_lateness: 1h\n"
                      "shutdown:\n"
                      "  timeout: %ds\n",
                      fx.port, SHUTDOWN_TIMEOUT_S);
}

static void tear_down(void) {
        if (fx.run_pid > 0 && tu_wait(fx.run_pid, 0) == -1) {
                kill(fx.run_pid, SIGKILL);
                waitpid(fx.run_pid, NULL, 0);
        }
        if (fx.prod)
                rd_kafka_destroy(fx.prod);
        if (fx.mc)
                rd_kafka_mock_cluster_destroy(fx.mc);
        if (fx.mrk)
                rd_kafka_destroy(fx.mrk);
        itd_codec_destroy(fx.codec);
        itd_sim_destroy(fx.sim);
        for (int p = 0; p < N_PART; p++) {
                free(fx.delivered[p]);
                free(fx.seen[p]);
        }
        free(fx.bootstrap);
}

/* ---- the daemon --------------------------------------------------------- */

static int http_status(const char *path) {
        return tu_http(fx.port, "GET", path, 5000, NULL, NULL);
}

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_daemon(void) {
        fx.run_pid = tu_daemon_start(fx.conf_path, fx.log_run);
        /* Ready means subscribed and assigned (the first join takes ~3 s;
         * after a kill -9 it waits for the dead member's session). */
        int64_t deadline = mono_ms() + 20000;
        while (http_status("/readyz") != 200) {
                cr_assert_eq(tu_wait(fx.run_pid, 0), -1,
                             "intentd run exited early (see %s)", fx.log_run);
                cr_assert_lt(mono_ms(), deadline,
                             "intentd run not ready after 20 s (see %s)",
                             fx.log_run);
                usleep(100 * 1000);
        }
}

static void expect_healthy(const char *when) {
        cr_expect_eq(tu_wait(fx.run_pid, 0), -1, "%s: intentd run died",
                     when);
        cr_expect_eq(http_status("/livez"), 200, "%s: /livez", when);
        cr_expect_eq(http_status("/readyz"), 200, "%s: /readyz", when);
}

static void stop_daemon(void) {
        kill(fx.run_pid, SIGTERM);
        int rc = tu_wait(fx.run_pid, SHUTDOWN_TIMEOUT_S * 1000 +
                                         EXIT_SLACK_MS);
        cr_expect_eq(rc, 0, "intentd run exited %d on SIGTERM (see %s)", rc,
                     fx.log_run);
        if (rc == -1) {
                kill(fx.run_pid, SIGKILL);
                waitpid(fx.run_pid, NULL, 0);
        }
        fx.run_pid = -1;
}

/* ---- the event stream --------------------------------------------------- */

static void produce_one(void) {
        itd_event_t ev;
        cr_assert_eq(itd_sim_next(fx.sim, &ev), ITD_OK,
                     "simulator ran out of events");
        unsigned char buf[1024];
        size_t len;
        cr_assert_eq(itd_codec_encode_event(fx.codec, &ev, -1, buf, sizeof buf,
                                            &len), ITD_OK);
        for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    fx.prod, RD_KAFKA_V_TOPIC(T_EVENTS),
                    RD_KAFKA_V_KEY(ev.user_id, strlen(ev.user_id)),
                    RD_KAFKA_V_VALUE(buf, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        rd_kafka_poll(fx.prod, 10);
                        continue;
                }
                cr_assert_eq(err, 0, "produce: %s", rd_kafka_err2str(err));
                break;
        }
        fx.produced++;
}

/* Streams events at RATE_PER_S for ms of wall time. */
static void pump(int ms) {
        int64_t t0 = mono_ms();
        for (int64_t slice = 0; slice * SLICE_MS < ms; slice++) {
                for (int i = 0; i < RATE_PER_S * SLICE_MS / 1000; i++)
                        produce_one();
                rd_kafka_poll(fx.prod, 0);
                int64_t next = t0 + (slice + 1) * SLICE_MS;
                while (mono_ms() < next)
                        rd_kafka_poll(fx.prod, (int)(next - mono_ms()));
        }
}

static void flush_events(void) {
        /* Generous: after a broker comes back, the test's own producer
         * reconnects on librdkafka's backoff, slower on a loaded host. */
        cr_assert_eq(rd_kafka_flush(fx.prod, 60000), 0,
                     "%d events not delivered within 60 s",
                     rd_kafka_outq_len(fx.prod));
        cr_assert_eq(fx.failed, 0, "%" PRIu64 " events failed delivery",
                     fx.failed);
        cr_assert_eq(fx.acked, fx.produced);
}

static int64_t predictions_on_broker(void) {
        int64_t total = 0;
        for (int32_t p = 0; p < N_PART; p++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(fx.prod, T_PREDICTIONS, p,
                                                     &lo, &hi, 5000) == 0)
                        total += hi;
        }
        return total;
}

/* ---- the check ---------------------------------------------------------- */

typedef struct {
        uint64_t events, predictions, undecodable, duplicates, missing;
} tally_t;

static void count(tally_t *t) {
        memset(t, 0, sizeof *t);
        for (int p = 0; p < N_PART; p++)
                for (size_t o = 0; o < MAX_OFFSETS; o++) {
                        if (!fx.delivered[p][o])
                                continue;
                        t->events++;
                        if (fx.seen[p][o] == 0)
                                t->missing++;
                        else
                                t->duplicates += fx.seen[p][o] - 1;
                }
}

static rd_kafka_t *new_reader(void) {
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        quiet(kc);
        rd_kafka_conf_set(kc, "bootstrap.servers", fx.bootstrap, err,
                          sizeof err);
        rd_kafka_conf_set(kc, "group.id", "faults-reader", err, sizeof err);
        rd_kafka_conf_set(kc, "enable.auto.commit", "false", err, sizeof err);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
        cr_assert(rk, "reader: %s", err);
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *tp =
            rd_kafka_topic_partition_list_new(N_PART);
        for (int32_t p = 0; p < N_PART; p++)
                rd_kafka_topic_partition_list_add(tp, T_PREDICTIONS, p)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        cr_assert_eq(rd_kafka_assign(rk, tp), 0);
        rd_kafka_topic_partition_list_destroy(tp);
        return rk;
}

/* Reads predictions until stop() says so or the deadline; next[p] is the
 * reader's position per partition. */
static void read_predictions(rd_kafka_t *rk, tally_t *t, int64_t *next,
                             int (*stop)(const tally_t *, const int64_t *,
                                         const int64_t *),
                             const int64_t *high, int timeout_ms) {
        char err[256];
        int64_t deadline = mono_ms() + timeout_ms;
        while (mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (m && !m->err) {
                        itd_prediction_t pr;
                        int part;
                        long long off;
                        next[m->partition] = m->offset + 1;
                        t->predictions++;
                        if (itd_codec_decode_prediction(
                                fx.codec, m->payload, m->len,
                                ITD_FRAMING_AUTO, &pr, err,
                                sizeof err) != ITD_OK ||
                            sscanf(pr.prediction_id, "intentd.events/%d/%lld",
                                   &part, &off) != 2 ||
                            part < 0 || part >= N_PART || off < 0 ||
                            off >= MAX_OFFSETS)
                                t->undecodable++;
                        else
                                fx.seen[part][off]++;
                }
                if (m)
                        rd_kafka_message_destroy(m);
                if (!m && stop(t, next, high))
                        return;
        }
}

static int all_covered(const tally_t *t, const int64_t *next,
                       const int64_t *high) {
        (void)t;
        (void)next;
        (void)high;
        tally_t now;
        count(&now);
        return now.missing == 0;
}

static int at_end(const tally_t *t, const int64_t *next,
                  const int64_t *high) {
        (void)t;
        for (int p = 0; p < N_PART; p++)
                if (next[p] < high[p])
                        return 0;
        return 1;
}

/* Waits until every delivered event has a prediction, checks health,
 * stops the daemon, reads the rest of the topic and reports. */
static void verify(const char *name) {
        rd_kafka_t *rk = new_reader();
        tally_t t = {0};
        int64_t next[N_PART] = {0}, high[N_PART] = {0};
        read_predictions(rk, &t, next, all_covered, high, 40000);
        expect_healthy("after the fault");
        stop_daemon();
        /* Whatever the stop flushed counts too (duplicates included). */
        for (int32_t p = 0; p < N_PART; p++) {
                int64_t lo;
                cr_assert_eq(rd_kafka_query_watermark_offsets(
                                 rk, T_PREDICTIONS, p, &lo, &high[p], 5000),
                             0);
        }
        read_predictions(rk, &t, next, at_end, high, 20000);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);

        uint64_t predictions = t.predictions, undecodable = t.undecodable;
        count(&t);
        char *log = tu_read_file(fx.log_run);
        const char *acc = log ? strstr(log, "accounting:") : NULL;
        int acc_len = acc ? (int)strcspn(acc, "\n") : 0;
        printf("faults/%s: events=%" PRIu64 " predictions=%" PRIu64
               " duplicates=%" PRIu64 " missing=%" PRIu64
               " undecodable=%" PRIu64 "\n  last daemon: %.*s\n",
               name, t.events, predictions, t.duplicates, t.missing,
               undecodable, acc_len, acc ? acc : "(no accounting line)");
        fflush(stdout);
        free(log);
        cr_expect_eq(t.events, fx.produced, "events lost on the way in");
        cr_expect_eq(undecodable, 0, "%" PRIu64 " predictions undecodable",
                     undecodable);
        cr_expect_eq(t.missing, 0,
                     "%" PRIu64 " of %" PRIu64 " events have no prediction "
                     "(see %s)", t.missing, t.events, fx.log_run);
}

TestSuite(faults, .fini = tear_down, .timeout = 120);

Test(faults, leader_broker_down_for_10s_loses_no_event) {
        /* Broker 2 leads events partition 0 and every prediction
         * partition: taking it down stalls part of the input and all of
         * the output at once. The coordinator stays up on broker 1. */
        layout_t lay = {.events = {2, 3, 3}, .predictions = {2, 2, 2},
                        .coordinator = 1};
        set_up_cluster(&lay);
        start_daemon();
        pump(2000);
        cr_assert_eq(rd_kafka_mock_broker_set_down(fx.mc, 2), 0);
        pump(10000);
        cr_assert_eq(rd_kafka_mock_broker_set_up(fx.mc, 2), 0);
        pump(2000);
        flush_events();
        verify("broker_down");
}

Test(faults, retriable_produce_and_fetch_errors_lose_no_event) {
        /* Predictions live on broker 1, events on 2 and 3: the daemon is
         * the only client producing to broker 1, and (before the check's
         * reader starts) the only one fetching, so it meets every error. */
        layout_t lay = {.events = {2, 3, 2}, .predictions = {1, 1, 1},
                        .coordinator = 1};
        set_up_cluster(&lay);
        start_daemon();
        pump(1000);
        enum { N_ERR = 12 };
        for (int32_t b = 1; b <= 3; b++) {
                int16_t api = b == 1 ? API_PRODUCE : API_FETCH;
                cr_assert_eq(
                    rd_kafka_mock_broker_push_request_error_rtts(
                        fx.mc, b, api, N_ERR,
                        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
                        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 0,
                        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 0,
                        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 200,
                        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
                        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 0,
                        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
                        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
                        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 0),
                    0);
        }
        pump(4000);
        flush_events();
        /* The errors were met, not left on the stacks. */
        for (int32_t b = 1; b <= 3; b++) {
                size_t left;
                int64_t deadline = mono_ms() + 10000;
                for (;;) {
                        left = 0;
                        rd_kafka_mock_broker_error_stack_cnt(
                            fx.mc, b, b == 1 ? API_PRODUCE : API_FETCH,
                            &left);
                        if (left == 0 || mono_ms() >= deadline)
                                break;
                        usleep(100 * 1000);
                }
                cr_expect_eq(left, 0, "broker %d: %zu errors never met",
                             (int)b, left);
        }
        pump(1000);
        flush_events();
        verify("request_errors");
}

Test(faults, kill_9_mid_stream_and_restart_loses_no_event) {
        layout_t lay = {.events = {1, 2, 3}, .predictions = {3, 1, 2},
                        .coordinator = 1};
        set_up_cluster(&lay);
        start_daemon();
        pump(3000);
        cr_assert_gt(predictions_on_broker(), 0,
                     "no prediction before the kill: not mid-stream");
        kill(fx.run_pid, SIGKILL);
        cr_assert_eq(tu_wait(fx.run_pid, 5000), 128 + SIGKILL);
        fx.run_pid = -1;
        /* Events keep coming while no daemon runs. */
        pump(1000);
        start_daemon();
        pump(3000);
        flush_events();
        verify("kill_9");
}
