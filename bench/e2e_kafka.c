/*
 * e2e_kafka.c - bench_e2e's Kafka side: the events encoded once, the
 * embedded broker, producing (paced or as a backlog) and the consumer
 * that counts and times arrivals on a contender's output topic.
 */
#include "e2e.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/reader.h"

double e2e_now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

_Noreturn void e2e_die(const char *what) {
        fprintf(stderr, "bench_e2e: %s\n", what);
        exit(1);
}

void e2e_set(rd_kafka_conf_t *kc, const char *k, const char *v) {
        char err[512];
        if (rd_kafka_conf_set(kc, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "bench_e2e: %s=%s: %s\n", k, v, err);
                exit(1);
        }
}

/* ---- the events, encoded once ------------------------------------------ */

static void arena_put(corpus_t *c, const void *p, size_t len, uint32_t *off) {
        if (c->used + len > c->cap) {
                c->cap = (c->cap + len) * 2;
                c->arena = realloc(c->arena, c->cap);
                if (!c->arena)
                        e2e_die("out of memory");
        }
        memcpy(c->arena + c->used, p, len);
        *off = (uint32_t)c->used;
        c->used += len;
}

void e2e_load_corpus(corpus_t *c, const char *path, long n) {
        char err[512];
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_JSONL, 0, err,
                                           sizeof err);
        itd_codec_t *codec = itd_codec_new(err, sizeof err);
        if (!rd || !codec)
                e2e_die(err);
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
                        e2e_die("encode failed");
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

rd_kafka_t *e2e_mock_rk;
rd_kafka_mock_cluster_t *e2e_mock;
char e2e_bootstrap[256];

void e2e_start_broker(void) {
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        e2e_set(kc, "log_level", "3");
        e2e_mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        if (!e2e_mock_rk)
                e2e_die(err);
        e2e_mock = rd_kafka_mock_cluster_new(e2e_mock_rk, 1);
        if (!e2e_mock)
                e2e_die("mock cluster");
        snprintf(e2e_bootstrap, sizeof e2e_bootstrap, "%s",
                 rd_kafka_mock_cluster_bootstraps(e2e_mock));
}

void e2e_topic(const char *name, int partitions) {
        if (rd_kafka_mock_topic_create(e2e_mock, name, partitions, 1))
                e2e_die("topic create");
}

/* ---- producing ------------------------------------------------------------ */

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

rd_kafka_t *e2e_producer(const char *linger, pace_t *pc) {
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        e2e_set(kc, "bootstrap.servers", e2e_bootstrap);
        e2e_set(kc, "linger.ms", linger);
        e2e_set(kc, "queue.buffering.max.messages", "1000000");
        rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
        rd_kafka_conf_set_opaque(kc, pc);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        if (!rk)
                e2e_die(err);
        return rk;
}

void e2e_produce(rd_kafka_t *rk, const char *tp, const corpus_t *c,
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
                        e2e_die(rd_kafka_err2str(e));
                rd_kafka_poll(rk, 10);
        }
}

/* Produces all events onto topic tp as fast as possible and checks that
 * the broker kept every one (low watermark 0, high watermarks summing to
 * n). */
double e2e_load_backlog(const corpus_t *c, const char *tp, int partitions) {
        pace_t pc = {0};
        rd_kafka_t *rk = e2e_producer("5", &pc);
        double t0 = e2e_now_s();
        for (long i = 0; i < c->n; i++) {
                e2e_produce(rk, tp, c, i);
                if ((i & 1023) == 0)
                        rd_kafka_poll(rk, 0);
        }
        rd_kafka_flush(rk, 120000);
        double secs = e2e_now_s() - t0;
        if (pc.failed || pc.delivered != c->n)
                e2e_die("backlog: not every event was delivered");
        long long kept = 0;
        for (int p = 0; p < partitions; p++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, tp, p, &lo,
                                                     &hi, 10000))
                        e2e_die("watermarks");
                if (lo != 0)
                        e2e_die("backlog: the broker dropped events (retention);"
                            " use more partitions");
                kept += hi;
        }
        if (kept != c->n)
                e2e_die("backlog: the broker does not hold every event");
        rd_kafka_destroy(rk);
        return secs;
}

/* ---- counting arrivals ------------------------------------------------- */

static int counter_done(counter_t *ct) {
        return (ct->cover ? atomic_load(&ct->distinct)
                          : atomic_load(&ct->count)) >= ct->want;
}

/* cover: marks the event (partition, offset) as predicted; the first
 * prediction of each event counts. */
static void cover_mark(counter_t *ct, int32_t p, int64_t off, double t) {
        if (p < 0 || p >= ct->partitions || off < 0) {
                ct->undecodable++;
                return;
        }
        size_t o = (size_t)off;
        if (o >= ct->seen_cap[p]) {
                size_t cap = ct->seen_cap[p] ? ct->seen_cap[p] : 65536;
                while (cap <= o)
                        cap *= 2;
                ct->seen[p] = realloc(ct->seen[p], cap);
                if (!ct->seen[p])
                        e2e_die("out of memory");
                memset(ct->seen[p] + ct->seen_cap[p], 0,
                       cap - ct->seen_cap[p]);
                ct->seen_cap[p] = cap;
        }
        if (ct->seen[p][o])
                return;
        ct->seen[p][o] = 1;
        if (atomic_fetch_add(&ct->distinct, 1) + 1 == ct->want)
                ct->t_complete = t;
}

/* The event a prediction is for, from its id "topic/partition/offset":
 * kept as an arrival (latency runs) or marked (cover). */
static void note_id(counter_t *ct, itd_codec_t *codec,
                    const rd_kafka_message_t *m, double t) {
        char err[256];
        itd_prediction_t pred;
        const char *s1, *s2;
        if (itd_codec_decode_prediction(codec, m->payload, m->len,
                                        ITD_FRAMING_AUTO, &pred, err,
                                        sizeof err) ||
            !(s2 = strrchr(pred.prediction_id, '/'))) {
                ct->undecodable++;
                return;
        }
        for (s1 = s2 - 1; s1 > pred.prediction_id && *s1 != '/'; s1--)
                ;
        int32_t p = (int32_t)atoi(s1 + 1);
        int64_t off = atoll(s2 + 1);
        if (ct->cover) {
                cover_mark(ct, p, off, t);
                return;
        }
        if (ct->n_arr == ct->cap_arr) {
                ct->cap_arr = ct->cap_arr ? ct->cap_arr * 2 : 65536;
                ct->arr = realloc(ct->arr, ct->cap_arr * sizeof *ct->arr);
                if (!ct->arr)
                        e2e_die("out of memory");
        }
        ct->arr[ct->n_arr++] = (arrival_t){.partition = p, .offset = off,
                                           .t = t};
}

static void *count_main(void *arg) {
        counter_t *ct = arg;
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        e2e_set(kc, "bootstrap.servers", e2e_bootstrap);
        e2e_set(kc, "group.id", "bench-counter");
        e2e_set(kc, "enable.auto.commit", "false");
        e2e_set(kc, "queued.min.messages", "1000000");
        /* bench_e2e.c's top comment: the mock broker holds empty
         * fetches */
        e2e_set(kc, "fetch.wait.max.ms", "1");
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
        if (!rk)
                e2e_die(err);
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *tl =
            rd_kafka_topic_partition_list_new(ct->partitions);
        for (int p = 0; p < ct->partitions; p++)
                rd_kafka_topic_partition_list_add(tl, ct->e2e_topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        if (rd_kafka_assign(rk, tl))
                e2e_die("assign");
        rd_kafka_topic_partition_list_destroy(tl);
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        itd_codec_t *codec = ct->decode || ct->cover
                                 ? itd_codec_new(err, sizeof err)
                                 : NULL;
        rd_kafka_message_t *msgs[1024];
        while (!atomic_load(&ct->stop) && !counter_done(ct)) {
                /* consume_batch waits for a full batch or the timeout:
                 * poll for the first message, then take what is there */
                rd_kafka_message_t *first = rd_kafka_consumer_poll(rk, 100);
                if (!first)
                        continue;
                double t = e2e_now_s();
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
                                if (codec)
                                        note_id(ct, codec, m, t);
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

static counter_t *counter_run(const char *tp, int partitions, long want,
                              int decode, int cover) {
        counter_t *ct = calloc(1, sizeof *ct);
        snprintf(ct->e2e_topic, sizeof ct->e2e_topic, "%s", tp);
        ct->partitions = partitions;
        ct->want = want;
        ct->decode = decode;
        ct->cover = cover;
        if (cover) {
                ct->seen = calloc((size_t)partitions, sizeof *ct->seen);
                ct->seen_cap =
                    calloc((size_t)partitions, sizeof *ct->seen_cap);
        }
        if (pthread_create(&ct->thr, NULL, count_main, ct))
                e2e_die("thread");
        return ct;
}

counter_t *e2e_counter_start(const char *tp, int partitions, long want,
                             int decode) {
        return counter_run(tp, partitions, want, decode, 0);
}

/* A counter that is done when every one of want events has a prediction
 * (the events' partitions are the output topic's). */
counter_t *e2e_counter_start_cover(const char *tp, int partitions,
                                   long want) {
        return counter_run(tp, partitions, want, 0, 1);
}

/* Waits until the counter has want messages (cover: want events with a
 * prediction), or nothing arrived for idle_s seconds after the first (or
 * timeout_s in all), or the child pid
 * (if > 0) exited and nothing arrived for idle_s since: its status goes
 * to *status (-1 while it runs). */
void e2e_counter_wait(counter_t *ct, double timeout_s, double idle_s,
                         pid_t pid, int *status) {
        double t0 = e2e_now_s(), last_change = t0, t_exit = 0;
        long last = 0;
        if (status)
                *status = -1;
        while (!counter_done(ct)) {
                usleep(20000);
                long c = atomic_load(&ct->count);
                double t = e2e_now_s();
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

double e2e_counter_rate(const counter_t *ct) {
        long c = atomic_load(&ct->count);
        return c > 1 && ct->t_last > ct->t_first
                   ? (double)(c - 1) / (ct->t_last - ct->t_first)
                   : 0;
}

void e2e_counter_free(counter_t *ct) {
        for (int p = 0; ct->seen && p < ct->partitions; p++)
                free(ct->seen[p]);
        free(ct->seen);
        free(ct->seen_cap);
        free(ct->arr);
        free(ct);
}
