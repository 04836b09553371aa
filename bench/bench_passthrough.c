/*
 * bench_passthrough.c - the transport limit: what librdkafka alone moves on
 * this machine. Consumes a topic and produces the same bytes (key and
 * value) to another topic, with no processing, using the consumer and
 * producer settings `intentd run` ships (itd_kafka_consumer_defaults and
 * itd_kafka_producer_defaults, pipeline/kafka.c) and the same loop shape:
 * poll one message, then take what is already fetched, up to 512.
 *
 * Usage: bench_passthrough BOOTSTRAP FROM TO GROUP COUNT [key=value]...
 * Stops after COUNT messages (or on SIGTERM/SIGINT), flushes, and prints
 * one JSON line {"bench":"passthrough",...}: events/s from the first
 * message consumed to the last delivery acknowledged. Extra key=value
 * pairs go to both clients (as intentd's `kafka:` section does).
 * bench_e2e starts it and also times the copies as they arrive.
 */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "intentd/kafka.h"

#define MAX_BATCH 512 /* core/engine.c ENGINE_MAX_BATCH */

/* As daemon/run.c ships them. */
static volatile sig_atomic_t stop;
static long long delivered, failed;

static void on_signal(int sig) {
        (void)sig;
        stop = 1;
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *op) {
        (void)rk;
        (void)op;
        if (m->err)
                failed++;
        else
                delivered++;
}

static int set(rd_kafka_conf_t *kc, const char *k, const char *v) {
        char err[512];
        if (rd_kafka_conf_set(kc, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "bench_passthrough: %s=%s: %s\n", k, v, err);
                return -1;
        }
        return 0;
}

/* defaults, then bootstrap, then the user's pairs (user keys win). */
static rd_kafka_t *client(rd_kafka_type_t type, const char *const *defaults,
                          const char *bootstrap, const char *group, int n,
                          char **pairs) {
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        char err[512];
        for (size_t i = 0; defaults[i]; i += 2)
                if (set(kc, defaults[i], defaults[i + 1]))
                        return NULL;
        if (set(kc, "bootstrap.servers", bootstrap))
                return NULL;
        if (type == RD_KAFKA_CONSUMER && set(kc, "group.id", group))
                return NULL;
        if (type == RD_KAFKA_PRODUCER)
                rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
        for (int i = 0; i < n; i++) {
                char *eq = strchr(pairs[i], '=');
                if (!eq)
                        continue;
                *eq = '\0';
                /* a key of the other client type only warns: skip it */
                if (rd_kafka_conf_set(kc, pairs[i], eq + 1, err, sizeof err) !=
                    RD_KAFKA_CONF_OK)
                        fprintf(stderr, "bench_passthrough: %s: %s\n",
                                pairs[i], err);
                *eq = '=';
        }
        rd_kafka_t *rk = rd_kafka_new(type, kc, err, sizeof err);
        if (!rk)
                fprintf(stderr, "bench_passthrough: %s\n", err);
        return rk;
}

int main(int argc, char **argv) {
        if (argc < 6) {
                fprintf(stderr, "usage: bench_passthrough BOOTSTRAP FROM TO "
                                "GROUP COUNT [key=value]...\n");
                return 2;
        }
        const char *bootstrap = argv[1], *from = argv[2], *to = argv[3];
        long long want = atoll(argv[5]);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        rd_kafka_t *cons = client(RD_KAFKA_CONSUMER, itd_kafka_consumer_defaults,
                                  bootstrap, argv[4], argc - 6, argv + 6);
        rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, itd_kafka_producer_defaults,
                                  bootstrap, argv[4], argc - 6, argv + 6);
        if (!cons || !prod)
                return 1;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(prod, to, NULL);
        rd_kafka_poll_set_consumer(cons);
        rd_kafka_topic_partition_list_t *sub =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, from, RD_KAFKA_PARTITION_UA);
        if (rd_kafka_subscribe(cons, sub)) {
                fprintf(stderr, "bench_passthrough: subscribe failed\n");
                return 1;
        }
        rd_kafka_topic_partition_list_destroy(sub);
        rd_kafka_queue_t *rkq = rd_kafka_queue_get_consumer(cons);
        rd_kafka_message_t *msgs[MAX_BATCH];
        long long consumed = 0;
        double t_first = 0;
        while (!stop && consumed < want) {
                rd_kafka_message_t *first = rd_kafka_consumer_poll(cons, 100);
                if (first) {
                        size_t n = 0;
                        msgs[n++] = first;
                        ssize_t more = rd_kafka_consume_batch_queue(
                            rkq, 0, msgs + 1, MAX_BATCH - 1);
                        if (more > 0)
                                n += (size_t)more;
                        if (!t_first)
                                t_first = now_s();
                        for (size_t i = 0; i < n; i++) {
                                rd_kafka_message_t *m = msgs[i];
                                if (!m->err) {
                                        consumed++;
                                        /* back-pressure, never a drop */
                                        while (rd_kafka_produce(
                                                   rkt, RD_KAFKA_PARTITION_UA,
                                                   RD_KAFKA_MSG_F_COPY,
                                                   m->payload, m->len, m->key,
                                                   m->key_len, NULL) == -1 &&
                                               !stop)
                                                rd_kafka_poll(prod, 10);
                                }
                                rd_kafka_message_destroy(m);
                        }
                }
                rd_kafka_poll(prod, 0);
        }
        rd_kafka_flush(prod, 60000);
        double secs = t_first ? now_s() - t_first : 0;
        rd_kafka_queue_destroy(rkq);
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(prod);
        printf("passthrough: %lld consumed, %lld delivered, %lld failed in "
               "%.2f s: %.0f events/s\n",
               consumed, delivered, failed, secs,
               secs > 0 ? (double)delivered / secs : 0);
        printf("{\"bench\":\"passthrough\",\"consumed\":%lld,"
               "\"delivered\":%lld,\"failed\":%lld,\"seconds\":%.3f,"
               "\"events_per_s\":%.0f}\n",
               consumed, delivered, failed, secs,
               secs > 0 ? (double)delivered / secs : 0);
        return failed ? 1 : 0;
}
