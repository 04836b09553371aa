/*
 * test_kafka.c - pipeline/kafka.c against librdkafka's mock cluster: the
 * retry queue of
 * failed deliveries stays exact when a delivery report arrives while a
 * flush is producing (the producer serves reports while its queue is
 * full), which is how the run loop meets it.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/kafka.h"

#define N_RECORDS 12

typedef struct {
        itd_kafka_retryq_t *q;
        int final;                 /* record reports instead of retrying */
        int seen[N_RECORDS];       /* final phase: reports per record */
        int corrupt;               /* a report whose bytes are not its own */
        int pushed_during_flush;
        int in_flush;
} ctx_t;

static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        (void)rk;
        ctx_t *c = opaque;
        int id = (int)(intptr_t)m->_private;
        char want[32];
        snprintf(want, sizeof want, "record-%d", id);
        if (id < 0 || id >= N_RECORDS || m->len != strlen(want) ||
            memcmp(m->payload, want, m->len) != 0 || m->key_len != 3 ||
            memcmp(m->key, "key", 3) != 0) {
                c->corrupt++;
                return;
        }
        if (!m->err)
                return; /* no broker: cannot happen */
        if (c->final) {
                c->seen[id]++;
                return;
        }
        if (c->in_flush)
                c->pushed_during_flush++;
        itd_kafka_retryq_push(c->q, m, 0, NULL, NULL);
}

Test(kafka, retry_queue_survives_reports_served_inside_its_flush,
     .timeout = 60) {
        char err[512];
        ctx_t c = {.q = itd_kafka_retryq_new()};
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        /* A mock broker that refuses every produce (below), no retries:
         * every record fails at once; and one record fills the queue, so
         * the second produce of a flush waits, serving reports. */
        static const char *const kv[] = {
            "test.mock.num.brokers", "1",
            "message.send.max.retries", "0",
            "queue.buffering.max.messages", "1",
            "linger.ms", "0",
            "log_level", "0",
            NULL};
        for (size_t i = 0; kv[i]; i += 2)
                cr_assert_eq(rd_kafka_conf_set(kc, kv[i], kv[i + 1], err,
                                               sizeof err),
                             RD_KAFKA_CONF_OK, "%s: %s", kv[i], err);
        rd_kafka_conf_set_dr_msg_cb(kc, dr);
        rd_kafka_conf_set_opaque(kc, &c);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        cr_assert_not_null(rk, "%s", err);
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
        cr_assert_not_null(mc);
        cr_assert_eq(rd_kafka_mock_topic_create(mc, "t", 1, 1), 0);
        /* Produce is Kafka protocol ApiKey 0; far more refusals than the
         * test makes requests. */
        static rd_kafka_resp_err_t refusals[1000];
        for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
                refusals[i] = RD_KAFKA_RESP_ERR_INVALID_RECORD;
        rd_kafka_mock_push_request_errors_array(
            mc, 0, sizeof refusals / sizeof refusals[0], refusals);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "t", NULL);

        /* Fill the retry queue: each record fails once and is queued. */
        for (int i = 0; i < N_RECORDS; i++) {
                char v[32];
                snprintf(v, sizeof v, "record-%d", i);
                cr_assert_eq(itd_kafka_produce(rk, rkt, RD_KAFKA_PARTITION_UA,
                                               "key", 3, v, strlen(v), NULL,
                                               (void *)(intptr_t)i, NULL, err,
                                               sizeof err),
                             ITD_OK, "%s", err);
                while (rd_kafka_outq_len(rk) > 0)
                        rd_kafka_poll(rk, 10);
        }
        cr_assert_eq(itd_kafka_retryq_len(c.q), N_RECORDS);

        /* Flushes: every produce after the first waits for the queue, and
         * the reports served meanwhile push onto the queue being
         * flushed. */
        for (int round = 0; round < 3; round++) {
                c.in_flush = 1;
                size_t n = itd_kafka_retryq_flush(c.q, rk, NULL, NULL, NULL);
                c.in_flush = 0;
                cr_expect_gt(n, 0);
                /* Conservation: every record is queued or in flight, once. */
                cr_expect_eq(itd_kafka_retryq_len(c.q) +
                                 (size_t)rd_kafka_outq_len(rk),
                             N_RECORDS, "round %d: %zu queued + %d in flight",
                             round, itd_kafka_retryq_len(c.q),
                             rd_kafka_outq_len(rk));
        }
        cr_expect_gt(c.pushed_during_flush, 0,
                     "no report arrived inside a flush: the test proves "
                     "nothing");

        /* Final pass: each record comes back exactly once, bytes intact. */
        c.final = 1;
        itd_kafka_retryq_flush(c.q, rk, NULL, NULL, NULL);
        while (rd_kafka_outq_len(rk) > 0)
                rd_kafka_poll(rk, 10);
        cr_expect_eq(itd_kafka_retryq_len(c.q), 0);
        for (int i = 0; i < N_RECORDS; i++)
                cr_expect_eq(c.seen[i], 1, "record %d reported %d times", i,
                             c.seen[i]);
        cr_expect_eq(c.corrupt, 0, "%d reports with foreign bytes",
                     c.corrupt);
        itd_kafka_retryq_destroy(c.q);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
}
