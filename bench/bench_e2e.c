/*
 * bench_e2e.c - intentd end to end against the transport limit and the
 * Python peer, on one embedded broker and the same events.
 *
 * The broker is librdkafka's mock cluster inside this process (as
 * `intentd broker` runs it). Every contender is a separate process that
 * this program starts; every one is timed the same way: a consumer here
 * (assigned, no group) counts the messages arriving on the contender's
 * output topic, and the rate is count / (last arrival - first arrival),
 * which leaves out process start and the consumer-group join.
 *
 *   1. load: the first --n events of --events (JSON lines from `intentd
 *      simulate`) as bare Avro keyed by user id, as `intentd load` does,
 *      onto intentd.events with --partitions partitions; the watermarks
 *      are checked so nothing was dropped by the broker's retention
 *      (librdkafka's mock cluster keeps 5 MiB or 100k batches per
 *      partition).
 *   2. pass-through: bench_passthrough (consume, produce the same bytes;
 *      intentd's client settings) from intentd.events to bench.passthrough.
 *   3. intentd: `intentd run` from intentd.events to intentd.predictions,
 *      training on, defaults otherwise.
 *   4. latency: a fresh `intentd run` on its own topics (--latency-
 *      partitions, 4: the mock broker is one thread, and every fetch and
 *      produce request walks all partitions; with 32 it saturates at
 *      ~5k live events/s) while this program produces the same events at
 *      a fixed rate (the rate measured in 3, half of it, and a low
 *      --floor-rate); each prediction's id "topic/partition/offset" is
 *      matched to the time its event was handed to the producer (one
 *      CLOCK_MONOTONIC, one host). The mock broker delays an empty fetch
 *      response by the full fetch.wait.max.ms even when data arrives
 *      meanwhile (a real broker answers as soon as data is there), so the
 *      runs set kafka.fetch.wait.max.ms=1 on intentd; one more run at half
 *      rate keeps librdkafka's default (500 ms) to show the artefact.
 *   5. peer: bench/peer.py batched (--peer-batched events) and naive
 *      (--peer-naive events) from intentd.events to their own topics.
 *
 * Last line: one JSON object {"bench":"e2e",...}. Run by bench/run.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/reader.h"

#define EVENTS_TOPIC "intentd.events"
#define MAX_TOPIC 96

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
        fprintf(stderr, "bench_e2e: %s\n", what);
        exit(1);
}

static void set(rd_kafka_conf_t *kc, const char *k, const char *v) {
        char err[512];
        if (rd_kafka_conf_set(kc, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "bench_e2e: %s=%s: %s\n", k, v, err);
                exit(1);
        }
}

/* ---- options ----------------------------------------------------------- */

typedef struct opts_s {
        const char *intentd, *passthrough, *peer, *events, *dir;
        long n;
        int partitions;
        double latency_seconds;
        long peer_batched, peer_naive;
        double floor_rate;        /* a low rate: the fixed part of latency */
        const char *phases;       /* comma list; default all */
        const char *python;       /* the interpreter with Debian's torch */
        int lat_partitions;       /* of the latency runs' topics */
} opts_t;

static int phase(const opts_t *o, const char *name) {
        if (!o->phases)
                return 1;
        const char *p = strstr(o->phases, name);
        return p && (p == o->phases || p[-1] == ',');
}

/* ---- the events, encoded once ------------------------------------------ */

typedef struct msg_s {
        uint32_t off, len;        /* value in arena */
        uint32_t key_off, key_len;
} msg_t;

typedef struct corpus_s {
        unsigned char *arena;
        size_t used, cap;
        msg_t *msgs;
        long n;
} corpus_t;

static void arena_put(corpus_t *c, const void *p, size_t len, uint32_t *off) {
        if (c->used + len > c->cap) {
                c->cap = (c->cap + len) * 2;
                c->arena = realloc(c->arena, c->cap);
                if (!c->arena)
                        die("out of memory");
        }
        memcpy(c->arena + c->used, p, len);
        *off = (uint32_t)c->used;
        c->used += len;
}

static void load_corpus(corpus_t *c, const char *path, long n) {
        char err[512];
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_JSONL, 0, err,
                                           sizeof err);
        itd_codec_t *codec = itd_codec_new(err, sizeof err);
        if (!rd || !codec)
                die(err);
        memset(c, 0, sizeof *c);
        c->msgs = calloc((size_t)n, sizeof *c->msgs);
        itd_event_t ev;
        unsigned char buf[1024];
        size_t len;
        while (c->n < n && itd_reader_next(rd, &ev, err, sizeof err) == ITD_OK) {
                msg_t *m = &c->msgs[c->n];
                /* bare Avro, as `intentd load` writes without a schema id */
                if (itd_codec_encode_event(codec, &ev, -1, buf, sizeof buf,
                                           &len))
                        die("encode failed");
                arena_put(c, buf, len, &m->off);
                m->len = (uint32_t)len;
                m->key_len = (uint32_t)strlen(ev.user_id);
                arena_put(c, ev.user_id, m->key_len, &m->key_off);
                c->n++;
        }
        if (c->n < n) {
                fprintf(stderr, "bench_e2e: %s holds %ld events, wanted %ld\n",
                        path, c->n, n);
                exit(1);
        }
        itd_reader_destroy(rd);
        itd_codec_destroy(codec);
}

/* ---- the broker ---------------------------------------------------------- */

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char bootstrap[256];

static void start_broker(void) {
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        set(kc, "log_level", "3");
        mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        if (!mock_rk)
                die(err);
        mock = rd_kafka_mock_cluster_new(mock_rk, 1);
        if (!mock)
                die("mock cluster");
        snprintf(bootstrap, sizeof bootstrap, "%s",
                 rd_kafka_mock_cluster_bootstraps(mock));
}

static void topic(const char *name, int partitions) {
        if (rd_kafka_mock_topic_create(mock, name, partitions, 1))
                die("topic create");
}

/* ---- producing ------------------------------------------------------------ */

typedef struct pace_s {
        double *t_prod;           /* produce time of event i */
        int32_t **idx_of;         /* [partition][offset] -> event index */
        size_t *idx_cap;
        int partitions;
        long delivered, failed;
} pace_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        (void)rk;
        pace_t *pc = opaque;
        if (m->err) {
                pc->failed++;
                return;
        }
        pc->delivered++;
        if (!pc->idx_of || m->partition < 0 || m->partition >= pc->partitions)
                return;
        size_t p = (size_t)m->partition, off = (size_t)m->offset;
        if (off >= pc->idx_cap[p]) {
                size_t cap = pc->idx_cap[p] ? pc->idx_cap[p] : 1024;
                while (cap <= off)
                        cap *= 2;
                pc->idx_of[p] = realloc(pc->idx_of[p], cap * sizeof(int32_t));
                for (size_t i = pc->idx_cap[p]; i < cap; i++)
                        pc->idx_of[p][i] = -1;
                pc->idx_cap[p] = cap;
        }
        pc->idx_of[p][off] = (int32_t)(intptr_t)m->_private;
}

static rd_kafka_t *producer(const char *linger, pace_t *pc) {
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        set(kc, "bootstrap.servers", bootstrap);
        set(kc, "linger.ms", linger);
        set(kc, "queue.buffering.max.messages", "1000000");
        rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
        rd_kafka_conf_set_opaque(kc, pc);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        if (!rk)
                die(err);
        return rk;
}

static void produce(rd_kafka_t *rk, const char *tp, const corpus_t *c,
                    long i) {
        const msg_t *m = &c->msgs[i];
        for (;;) {
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(tp),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_VALUE(c->arena + m->off, m->len),
                    RD_KAFKA_V_KEY(c->arena + m->key_off, m->key_len),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
                if (!e)
                        return;
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        die(rd_kafka_err2str(e));
                rd_kafka_poll(rk, 10);
        }
}

/* Produces all events as fast as possible and checks that the broker kept
 * every one (low watermark 0, high watermarks summing to n). */
static double load_backlog(const corpus_t *c, int partitions) {
        pace_t pc = {0};
        rd_kafka_t *rk = producer("5", &pc);
        double t0 = now_s();
        for (long i = 0; i < c->n; i++) {
                produce(rk, EVENTS_TOPIC, c, i);
                if ((i & 1023) == 0)
                        rd_kafka_poll(rk, 0);
        }
        rd_kafka_flush(rk, 120000);
        double secs = now_s() - t0;
        if (pc.failed || pc.delivered != c->n)
                die("backlog: not every event was delivered");
        long long kept = 0;
        for (int p = 0; p < partitions; p++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, EVENTS_TOPIC, p, &lo,
                                                     &hi, 10000))
                        die("watermarks");
                if (lo != 0)
                        die("backlog: the broker dropped events (retention);"
                            " use more partitions");
                kept += hi;
        }
        if (kept != c->n)
                die("backlog: the broker does not hold every event");
        rd_kafka_destroy(rk);
        return secs;
}

/* ---- counting arrivals ------------------------------------------------- */

typedef struct arrival_s {
        int32_t partition;        /* of the event the prediction is for */
        int64_t offset;
        double t;
} arrival_t;

typedef struct counter_s {
        char topic[MAX_TOPIC];
        int partitions;
        long want;
        int decode;               /* match prediction ids (latency runs) */
        pthread_t thr;
        atomic_int stop;
        atomic_long count;
        double t_first, t_last;
        double t_decile[10];      /* when count passed k * want / 10 */
        arrival_t *arr;
        size_t n_arr, cap_arr;
        long undecodable;
} counter_t;

static void *count_main(void *arg) {
        counter_t *ct = arg;
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        set(kc, "bootstrap.servers", bootstrap);
        set(kc, "group.id", "bench-counter");
        set(kc, "enable.auto.commit", "false");
        set(kc, "queued.min.messages", "1000000");
        /* see the top comment: the mock broker holds empty fetches */
        set(kc, "fetch.wait.max.ms", "1");
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
        if (!rk)
                die(err);
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *tl =
            rd_kafka_topic_partition_list_new(ct->partitions);
        for (int p = 0; p < ct->partitions; p++)
                rd_kafka_topic_partition_list_add(tl, ct->topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        if (rd_kafka_assign(rk, tl))
                die("assign");
        rd_kafka_topic_partition_list_destroy(tl);
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        itd_codec_t *codec = ct->decode ? itd_codec_new(err, sizeof err) : NULL;
        rd_kafka_message_t *msgs[1024];
        itd_prediction_t pred;
        while (!atomic_load(&ct->stop) && atomic_load(&ct->count) < ct->want) {
                /* consume_batch waits for a full batch or the timeout:
                 * poll for the first message, then take what is there */
                rd_kafka_message_t *first = rd_kafka_consumer_poll(rk, 100);
                if (!first)
                        continue;
                double t = now_s();
                msgs[0] = first;
                ssize_t n = rd_kafka_consume_batch_queue(q, 0, msgs + 1, 1023);
                n = n < 0 ? 1 : n + 1;
                for (ssize_t i = 0; i < n; i++) {
                        rd_kafka_message_t *m = msgs[i];
                        if (!m->err) {
                                if (!ct->t_first)
                                        ct->t_first = t;
                                ct->t_last = t;
                                long k = atomic_fetch_add(&ct->count, 1);
                                if (k * 10 % ct->want < 10 &&
                                    k * 10 / ct->want < 10)
                                        ct->t_decile[k * 10 / ct->want] = t;
                                if (codec) {
                                        const char *s1, *s2;
                                        if (itd_codec_decode_prediction(
                                                codec, m->payload, m->len,
                                                ITD_FRAMING_AUTO, &pred, err,
                                                sizeof err) ||
                                            !(s2 = strrchr(pred.prediction_id,
                                                           '/'))) {
                                                ct->undecodable++;
                                        } else {
                                                for (s1 = s2 - 1;
                                                     s1 > pred.prediction_id &&
                                                     *s1 != '/';
                                                     s1--)
                                                        ;
                                                if (ct->n_arr == ct->cap_arr) {
                                                        ct->cap_arr =
                                                            ct->cap_arr
                                                                ? ct->cap_arr * 2
                                                                : 65536;
                                                        ct->arr = realloc(
                                                            ct->arr,
                                                            ct->cap_arr *
                                                                sizeof *ct->arr);
                                                }
                                                arrival_t *a =
                                                    &ct->arr[ct->n_arr++];
                                                a->partition =
                                                    (int32_t)atoi(s1 + 1);
                                                a->offset = atoll(s2 + 1);
                                                a->t = t;
                                        }
                                }
                        }
                        rd_kafka_message_destroy(m);
                }
        }
        itd_codec_destroy(codec);
        rd_kafka_queue_destroy(q);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return NULL;
}

static counter_t *counter_start(const char *tp, int partitions, long want,
                                int decode) {
        counter_t *ct = calloc(1, sizeof *ct);
        snprintf(ct->topic, sizeof ct->topic, "%s", tp);
        ct->partitions = partitions;
        ct->want = want;
        ct->decode = decode;
        if (pthread_create(&ct->thr, NULL, count_main, ct))
                die("thread");
        return ct;
}

/* Waits until the counter has want messages, or nothing arrived for
 * idle_s seconds after the first (or timeout_s in all), or the child pid
 * (if > 0) exited and nothing arrived for idle_s since: its status goes
 * to *status (-1 while it runs). */
static void counter_wait(counter_t *ct, double timeout_s, double idle_s,
                         pid_t pid, int *status) {
        double t0 = now_s(), last_change = t0, t_exit = 0;
        long last = 0;
        if (status)
                *status = -1;
        while (atomic_load(&ct->count) < ct->want) {
                usleep(20000);
                long c = atomic_load(&ct->count);
                double t = now_s();
                int st;
                if (c != last) {
                        last = c;
                        last_change = t;
                }
                if (pid > 0 && !t_exit && waitpid(pid, &st, WNOHANG) == pid) {
                        t_exit = t;
                        if (status)
                                *status = WIFEXITED(st) ? WEXITSTATUS(st)
                                                        : 128;
                }
                if (t - t0 > timeout_s || (c > 0 && t - last_change > idle_s) ||
                    (t_exit && t - t_exit > idle_s &&
                     t - last_change > idle_s))
                        break;
        }
        atomic_store(&ct->stop, 1);
        pthread_join(ct->thr, NULL);
}

static double counter_rate(const counter_t *ct) {
        long c = atomic_load(&ct->count);
        return c > 1 && ct->t_last > ct->t_first
                   ? (double)(c - 1) / (ct->t_last - ct->t_first)
                   : 0;
}

static void counter_free(counter_t *ct) {
        free(ct->arr);
        free(ct);
}

/* ---- child processes ---------------------------------------------------- */

static pid_t spawn(char *const argv[], const char *log_path) {
        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                        close(fd);
                }
                execvp(argv[0], argv);
                fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        return pid;
}

/* SIGTERM (unless already exited), then waits up to timeout_s. */
static int stop_child(pid_t pid, double timeout_s) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        kill(pid, SIGTERM);
        double t0 = now_s();
        while (now_s() - t0 < timeout_s) {
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
                usleep(20000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
}

/* Waits for a child that stops by itself. */
static int wait_child(pid_t pid, double timeout_s) {
        int st;
        double t0 = now_s();
        while (now_s() - t0 < timeout_s) {
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
                usleep(20000);
        }
        return stop_child(pid, 10);
}

/*
 * With BENCH_PERF set (any value), `perf record -e cpu-clock -g` follows
 * each intentd run into DIR/<name>.perf.data: where the time goes, for
 * the report (a software clock: this VM exposes no hardware counters).
 */
static pid_t perf_attach(const opts_t *o, pid_t pid, const char *name) {
        if (!getenv("BENCH_PERF"))
                return 0;
        char spid[32], out[512], log[512];
        snprintf(spid, sizeof spid, "%d", (int)pid);
        snprintf(out, sizeof out, "%s/%s.perf.data", o->dir, name);
        snprintf(log, sizeof log, "%s/%s.perf.log", o->dir, name);
        char *argv[] = {"perf", "record", "-e", "cpu-clock", "-g", "-p",
                        spid, "-o", out, NULL};
        return spawn(argv, log);
}

static void perf_detach(pid_t perf) {
        int st;
        if (perf <= 0)
                return;
        kill(perf, SIGINT);
        waitpid(perf, &st, 0);
}

/* The last line of a log that starts with "{", copied into out. */
static void last_json(const char *path, char *out, size_t cap) {
        FILE *f = fopen(path, "r");
        char line[8192];
        snprintf(out, cap, "null");
        if (!f)
                return;
        while (fgets(line, sizeof line, f))
                if (line[0] == '{') {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(out, cap, "%s", line);
                }
        fclose(f);
}

static void write_conf(const opts_t *o, char *path, size_t cap) {
        snprintf(path, cap, "%s/intentd.yaml", o->dir);
        FILE *f = fopen(path, "w");
        if (!f)
                die("cannot write the config");
        fprintf(f,
                "# written by bench_e2e: defaults except where to connect\n"
                "kafka:\n"
                "  bootstrap.servers: \"%s\"\n"
                "  session.timeout.ms: 6000\n"
                "  heartbeat.interval.ms: 500\n"
                "metrics:\n"
                "  log.interval: 2s\n"
                "  listen: \"127.0.0.1:0\"\n",
                bootstrap);
        fclose(f);
}

/* ---- the contenders ---------------------------------------------------- */

typedef struct result_s {
        double rate;      /* arrivals/s, first to last */
        long count;
        double wall;      /* start of the process to the last arrival */
        char self[8192];  /* the contender's own JSON line, if any */
} result_t;

static result_t run_contender(const opts_t *o, const char *perf_name,
                              char *const argv[], const char *out_topic,
                              int partitions, long want, const char *log,
                              int stops_by_itself) {
        result_t r = {0};
        counter_t *ct = counter_start(out_topic, partitions, want, 0);
        usleep(300000); /* the counter's fetcher is up */
        double t0 = now_s();
        pid_t pid = spawn(argv, log);
        pid_t perf = perf_name ? perf_attach(o, pid, perf_name) : 0;
        int rc;
        counter_wait(ct, 600, 15, pid, &rc);
        perf_detach(perf);
        r.rate = counter_rate(ct);
        r.count = atomic_load(&ct->count);
        r.wall = ct->t_last - t0;
        if (rc < 0)
                rc = stops_by_itself ? wait_child(pid, 60)
                                     : stop_child(pid, 60);
        if (rc != 0)
                fprintf(stderr, "bench_e2e: %s exited %d (see %s)\n", argv[0],
                        rc, log);
        last_json(log, r.self, sizeof r.self);
        fprintf(stderr, "bench_e2e: %-12s %ld/%ld arrived, %.0f events/s;"
                " deciles at", out_topic, r.count, want, r.rate);
        for (int k = 0; k < 10; k++)
                fprintf(stderr, " %.2f", ct->t_decile[k] - ct->t_first);
        fprintf(stderr, " s\n");
        counter_free(ct);
        return r;
}

typedef struct latency_s {
        double rate, achieved, p50_ms, p99_ms, max_ms;
        double served;            /* predictions/s of paced events */
        long produced, matched;
} latency_t;

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/*
 * A fresh intentd on topics "<name>.events" -> "<name>.predictions"; warm
 * up with 2000 events (group join, first allocations), then produce at
 * `rate` for the rest of the run and match predictions to produce times.
 * The first 10% of the paced events are left out of the percentiles.
 */
static latency_t run_latency(const opts_t *o, const char *conf,
                             const corpus_t *c, const char *name, double rate,
                             const char *fetch_wait) {
        latency_t L = {.rate = rate};
        const int P = o->lat_partitions;
        char ev_topic[MAX_TOPIC], pred_topic[MAX_TOPIC], log[512];
        char o1[160], o2[160], o3[160], o4[160];
        snprintf(ev_topic, sizeof ev_topic, "%s.events", name);
        snprintf(pred_topic, sizeof pred_topic, "%s.predictions", name);
        topic(ev_topic, P);
        topic(pred_topic, P);
        long total = (long)(rate * o->latency_seconds) + 2000;
        if (total > c->n)
                total = c->n;
        pace_t pc = {.partitions = P};
        pc.t_prod = calloc((size_t)total, sizeof *pc.t_prod);
        pc.idx_of = calloc((size_t)P, sizeof *pc.idx_of);
        pc.idx_cap = calloc((size_t)P, sizeof *pc.idx_cap);
        /* "produced" is the produce() call, so our own batching counts
         * against intentd: linger 1 ms (linger 0 made the single-threaded
         * mock broker the bottleneck with one request per message) */
        rd_kafka_t *rk = producer("1", &pc);
        counter_t *ct = counter_start(pred_topic, P, total, 1);

        snprintf(o1, sizeof o1, "topics.events=%s", ev_topic);
        snprintf(o2, sizeof o2, "topics.predictions=%s", pred_topic);
        snprintf(o3, sizeof o3, "kafka.group.id=bench-%s", name);
        snprintf(o4, sizeof o4, "kafka.fetch.wait.max.ms=%s",
                 fetch_wait ? fetch_wait : "");
        snprintf(log, sizeof log, "%s/%s.log", o->dir, name);
        char *argv[] = {(char *)o->intentd, "run", "--config", (char *)conf,
                        "-o", o1, "-o", o2, "-o", o3,
                        fetch_wait ? "-o" : NULL, o4, NULL};
        pid_t pid = spawn(argv, log);
        pid_t perf = perf_attach(o, pid, name);

        long warm = 2000, i = 0;
        for (; i < warm; i++) {
                pc.t_prod[i] = now_s();
                produce(rk, ev_topic, c, i);
        }
        rd_kafka_flush(rk, 10000);
        double t_wait = now_s();
        while (atomic_load(&ct->count) < warm && now_s() - t_wait < 60)
                usleep(10000);
        if (atomic_load(&ct->count) < warm)
                fprintf(stderr, "bench_e2e: %s: warm-up predictions missing\n",
                        name);

        /* Paced in 0.5 ms steps: every event due by now goes out, then a
         * short sleep (spinning would take a core from intentd and the
         * broker on a 2-core machine). Each event's own produce time is
         * kept, so the steps do not bias the latency. */
        double t0 = now_s();
        while (i < total) {
                long due = warm + (long)((now_s() - t0) * rate) + 1;
                if (due > total)
                        due = total;
                for (; i < due; i++) {
                        pc.t_prod[i] = now_s();
                        produce(rk, ev_topic, c, i);
                }
                rd_kafka_poll(rk, 0);
                usleep(500);
        }
        double t_end = now_s();
        rd_kafka_flush(rk, 30000);
        L.produced = total - warm;
        L.achieved = (double)L.produced / (t_end - t0);
        int rc;
        counter_wait(ct, 60, 5, pid, &rc);
        perf_detach(perf);
        if (rc < 0)
                stop_child(pid, 60);

        /* match: prediction of event (p, off) -> its produce time */
        long skip = warm + L.produced / 10;
        double *lat = calloc(ct->n_arr + 1, sizeof *lat);
        size_t n_lat = 0;
        double t_last_paced = t0;
        long n_paced = 0;
        /* every matched event: produce time since the paced start, latency
         * (for plots and for telling queueing from a fixed cost) */
        snprintf(log, sizeof log, "%s/%s.tsv", o->dir, name);
        FILE *tsv = fopen(log, "w");
        if (tsv)
                fprintf(tsv, "index\tproduced_s\tlatency_ms\n");
        for (size_t k = 0; k < ct->n_arr; k++) {
                const arrival_t *a = &ct->arr[k];
                if (a->partition < 0 || a->partition >= P ||
                    (size_t)a->offset >= pc.idx_cap[a->partition])
                        continue;
                int32_t ix = pc.idx_of[a->partition][a->offset];
                if (ix < 0)
                        continue;
                L.matched++;
                if (ix >= warm && a->t > t_last_paced)
                        t_last_paced = a->t;
                n_paced += ix >= warm;
                if (tsv)
                        fprintf(tsv, "%d\t%.6f\t%.3f\n", ix,
                                pc.t_prod[ix] - t0,
                                (a->t - pc.t_prod[ix]) * 1e3);
                if (ix >= skip)
                        lat[n_lat++] = (a->t - pc.t_prod[ix]) * 1e3;
        }
        if (tsv)
                fclose(tsv);
        L.served = t_last_paced > t0 ? (double)n_paced / (t_last_paced - t0)
                                     : 0;
        qsort(lat, n_lat, sizeof *lat, cmp_double);
        if (n_lat) {
                L.p50_ms = lat[n_lat / 2];
                L.p99_ms = lat[(size_t)((double)n_lat * 0.99)];
                L.max_ms = lat[n_lat - 1];
        }
        fprintf(stderr,
                "bench_e2e: latency %-10s at %.0f/s (sent %.0f/s, served "
                "%.0f/s): "
                "p50 %.2f ms, p99 %.2f ms, max %.1f ms over %zu events "
                "(%ld of %ld predictions matched)\n",
                name, rate, L.achieved, L.served, L.p50_ms, L.p99_ms,
                L.max_ms, n_lat,
                L.matched, total);
        free(lat);
        counter_free(ct);
        rd_kafka_destroy(rk);
        for (int p = 0; p < P; p++)
                free(pc.idx_of[p]);
        free(pc.idx_of);
        free(pc.idx_cap);
        free(pc.t_prod);
        return L;
}

static void print_result(const char *name, const result_t *r, int comma) {
        printf("\"%s\":{\"events_per_s\":%.0f,\"count\":%ld,"
               "\"wall_s\":%.2f,\"self\":%s}%s",
               name, r->rate, r->count, r->wall, r->self, comma ? "," : "");
}

static void print_latency(const char *name, const latency_t *L, int comma) {
        printf("\"%s\":{\"rate\":%.0f,\"achieved\":%.0f,\"served\":%.0f,"
               "\"p50_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"max_ms\":%.2f,\"produced\":%ld,"
               "\"matched\":%ld}%s",
               name, L->rate, L->achieved, L->served, L->p50_ms, L->p99_ms,
               L->max_ms,
               L->produced, L->matched, comma ? "," : "");
}

int main(int argc, char **argv) {
        opts_t o = {.n = 1000000, .partitions = 32, .latency_seconds = 8,
                    .peer_batched = 100000, .peer_naive = 20000,
                    .floor_rate = 2000, .python = "python3",
                    .lat_partitions = 4};
        static const struct option longopts[] = {
            {"intentd", required_argument, NULL, 'i'},
            {"passthrough", required_argument, NULL, 't'},
            {"peer", required_argument, NULL, 'p'},
            {"events", required_argument, NULL, 'e'},
            {"dir", required_argument, NULL, 'd'},
            {"n", required_argument, NULL, 'n'},
            {"partitions", required_argument, NULL, 'P'},
            {"latency-seconds", required_argument, NULL, 'l'},
            {"peer-batched", required_argument, NULL, 'b'},
            {"peer-naive", required_argument, NULL, 'a'},
            {"floor-rate", required_argument, NULL, 'f'},
            {"phases", required_argument, NULL, 'h'},
            {"python", required_argument, NULL, 'y'},
            {"latency-partitions", required_argument, NULL, 'L'},
            {NULL, 0, NULL, 0}};
        int ch;
        while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (ch) {
                case 'i': o.intentd = optarg; break;
                case 't': o.passthrough = optarg; break;
                case 'p': o.peer = optarg; break;
                case 'e': o.events = optarg; break;
                case 'd': o.dir = optarg; break;
                case 'n': o.n = atol(optarg); break;
                case 'P': o.partitions = atoi(optarg); break;
                case 'l': o.latency_seconds = atof(optarg); break;
                case 'b': o.peer_batched = atol(optarg); break;
                case 'a': o.peer_naive = atol(optarg); break;
                case 'f': o.floor_rate = atof(optarg); break;
                case 'h': o.phases = optarg; break;
                case 'y': o.python = optarg; break;
                case 'L': o.lat_partitions = atoi(optarg); break;
                default: return 2;
                }
        }
        if (!o.intentd || !o.passthrough || !o.events || !o.dir || o.n <= 0 ||
            o.partitions <= 0) {
                fprintf(stderr,
                        "usage: bench_e2e --intentd BIN --passthrough BIN "
                        "--events FILE.jsonl --dir DIR [--peer peer.py] "
                        "[--n N] [--partitions P] [--latency-seconds S] "
                        "[--peer-batched N] [--peer-naive N] "
                        "[--floor-rate R] [--phases a,b] [--python BIN]\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);

        corpus_t c;
        double t = now_s();
        load_corpus(&c, o.events, o.n);
        fprintf(stderr, "bench_e2e: %ld events encoded in %.1f s (%.0f "
                        "bytes/event)\n", c.n, now_s() - t,
                (double)c.used / (double)c.n);
        start_broker();
        const char *topics[] = {EVENTS_TOPIC, "intentd.predictions",
                                "bench.passthrough", "peer.batched",
                                "peer.naive"};
        for (size_t i = 0; i < sizeof topics / sizeof *topics; i++)
                topic(topics[i], o.partitions);
        topic("intentd.dead_letter", 1);
        topic("intentd.triggers", 1);
        double load_s = load_backlog(&c, o.partitions);
        fprintf(stderr, "bench_e2e: backlog of %ld events on %d partitions "
                        "in %.1f s, none dropped\n", c.n, o.partitions, load_s);

        char conf[512], log[512], count[32], parts[16];
        write_conf(&o, conf, sizeof conf);
        snprintf(count, sizeof count, "%ld", o.n);
        snprintf(parts, sizeof parts, "%d", o.partitions);

        result_t pt = {.self = "null"}, it = {.self = "null"};
        latency_t lf = {0}, lh = {0}, ld = {0}, lo = {0};
        snprintf(log, sizeof log, "%s/passthrough.log", o.dir);
        char *pt_argv[] = {(char *)o.passthrough, bootstrap, EVENTS_TOPIC,
                           "bench.passthrough", "bench-passthrough", count,
                           "session.timeout.ms=6000",
                           "heartbeat.interval.ms=500", NULL};
        if (phase(&o, "passthrough"))
                pt = run_contender(&o, "passthrough", pt_argv,
                                   "bench.passthrough", o.partitions,
                                    o.n, log, 1);

        snprintf(log, sizeof log, "%s/intentd-run.log", o.dir);
        char *run_argv[] = {(char *)o.intentd, "run", "--config", conf, NULL};
        if (phase(&o, "intentd"))
                it = run_contender(&o, "intentd-run", run_argv,
                                   "intentd.predictions",
                                    o.partitions, o.n, log, 0);

        double full = it.rate > 0 ? it.rate : 10000;
        if (phase(&o, "latency")) {
                lf = run_latency(&o, conf, &c, "lat-full", full, "1");
                lh = run_latency(&o, conf, &c, "lat-half", full / 2, "1");
                ld = run_latency(&o, conf, &c, "lat-half-default", full / 2,
                                 NULL);
                lo = run_latency(&o, conf, &c, "lat-floor", o.floor_rate,
                                 "1");
        }

        result_t pb = {.self = "null"}, pn = {.self = "null"};
        if (o.peer && phase(&o, "peer")) {
                char nb[32], nn[32];
                snprintf(nb, sizeof nb, "%ld", o.peer_batched);
                snprintf(nn, sizeof nn, "%ld", o.peer_naive);
                snprintf(log, sizeof log, "%s/peer-batched.log", o.dir);
                char *pb_argv[] = {(char *)o.python, (char *)o.peer, "--bootstrap",
                                   bootstrap, "--topic", EVENTS_TOPIC,
                                   "--out", "peer.batched", "--mode",
                                   "batched", "--max", nb, NULL};
                pb = run_contender(&o, NULL, pb_argv, "peer.batched", o.partitions,
                                   o.peer_batched, log, 1);
                snprintf(log, sizeof log, "%s/peer-naive.log", o.dir);
                char *pn_argv[] = {(char *)o.python, (char *)o.peer, "--bootstrap",
                                   bootstrap, "--topic", EVENTS_TOPIC,
                                   "--out", "peer.naive", "--mode", "naive",
                                   "--max", nn, NULL};
                pn = run_contender(&o, NULL, pn_argv, "peer.naive", o.partitions,
                                   o.peer_naive, log, 1);
        }

        printf("{\"bench\":\"e2e\",\"events\":%ld,\"partitions\":%d,"
               "\"latency_partitions\":%d,"
               "\"avro_bytes_per_event\":%.1f,\"load_s\":%.2f,",
               c.n, o.partitions, o.lat_partitions,
               (double)c.used / (double)c.n, load_s);
        print_result("passthrough", &pt, 1);
        print_result("intentd", &it, 1);
        printf("\"latency\":{");
        print_latency("full", &lf, 1);
        print_latency("half", &lh, 1);
        print_latency("half_default_fetch_wait", &ld, 1);
        print_latency("floor", &lo, 0);
        printf("},");
        print_result("peer_batched", &pb, 1);
        print_result("peer_naive", &pn, 0);
        printf("}\n");
        rd_kafka_mock_cluster_destroy(mock);
        rd_kafka_destroy(mock_rk);
        free(c.arena);
        free(c.msgs);
        return 0;
}
