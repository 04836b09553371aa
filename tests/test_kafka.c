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

/* The dead-letter headers daemon/sink.c sends with every dead letter. */
static rd_kafka_headers_t *dlq_headers(void) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(8);
        rd_kafka_header_add(h, "intentd.error.reason", -1,
                            "message_too_large", -1);
        rd_kafka_header_add(h, "intentd.error.detail", -1,
                            "999900 bytes exceeds input.max_message_bytes "
                            "(65536)", -1);
        rd_kafka_header_add(h, "intentd.source.topic", -1, "intentd.events",
                            -1);
        rd_kafka_header_add(h, "intentd.source.partition", -1, "0", -1);
        rd_kafka_header_add(h, "intentd.source.offset", -1, "12", -1);
        return h;
}

static const char *header_of(rd_kafka_headers_t *h, const char *name,
                             char *buf, size_t cap) {
        const void *v;
        size_t n;
        if (rd_kafka_header_get_last(h, name, &v, &n) != 0)
                return NULL;
        snprintf(buf, cap, "%.*s", (int)n, (const char *)v);
        return buf;
}

Test(kafka, a_record_too_large_is_cut_to_what_the_producer_takes) {
        char err[512], num[32];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        static const char *const kv[] = {"test.mock.num.brokers", "1",
                                         "log_level", "0", NULL};
        for (size_t i = 0; kv[i]; i += 2)
                cr_assert_eq(rd_kafka_conf_set(kc, kv[i], kv[i + 1], err,
                                               sizeof err),
                             RD_KAFKA_CONF_OK);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        cr_assert_not_null(rk, "%s", err);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "dlq", NULL);
        size_t max = itd_kafka_max_message_bytes(rk);
        cr_expect_eq(max, 1000000, "librdkafka's default");

        /* Value, key, or both too large; the cut record is accepted. */
        static const struct {
                size_t key, value;
                int key_cut, value_cut;
        } rows[] = {{3, 999900, 0, 1},
                    {3, 1000, 0, 0},
                    {2000000, 10, 1, 1},
                    {999990, 0, 1, 0}};
        size_t big = 2000000;
        char *bytes = malloc(big);
        memset(bytes, 'x', big);
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                rd_kafka_headers_t *h = dlq_headers();
                size_t key = rows[i].key, value = rows[i].value;
                int cut = itd_kafka_fit(max, h, &key, &value);
                cr_expect_eq(cut, rows[i].key_cut || rows[i].value_cut,
                             "row %zu", i);
                cr_expect_eq(key < rows[i].key, rows[i].key_cut, "row %zu",
                             i);
                cr_expect_eq(value < rows[i].value, rows[i].value_cut,
                             "row %zu", i);
                snprintf(num, sizeof num, "%zu", rows[i].value);
                char got[32];
                const char *vh = header_of(h, ITD_KAFKA_HDR_VALUE_TRUNCATED,
                                           got, sizeof got);
                cr_expect_eq(vh != NULL, rows[i].value_cut, "row %zu", i);
                if (vh)
                        cr_expect_str_eq(vh, num, "row %zu", i);
                snprintf(num, sizeof num, "%zu", rows[i].key);
                const char *kh = header_of(h, ITD_KAFKA_HDR_KEY_TRUNCATED,
                                           got, sizeof got);
                cr_expect_eq(kh != NULL, rows[i].key_cut, "row %zu", i);
                if (kh)
                        cr_expect_str_eq(kh, num, "row %zu", i);
                /* What librdkafka itself says of the cut record. */
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(bytes, key),
                    RD_KAFKA_V_VALUE(bytes, value),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
                cr_expect_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "row %zu: %s", i,
                             rd_kafka_err2str(e));
                if (e)
                        rd_kafka_headers_destroy(h);
        }
        /* And the uncut first row is what the daemon used to meet. */
        rd_kafka_headers_t *h = dlq_headers();
        cr_expect_eq(rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
                                       RD_KAFKA_V_KEY(bytes, 3),
                                       RD_KAFKA_V_VALUE(bytes, 999900),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
        rd_kafka_headers_destroy(h);

        /* The last resort: no value, a key of 256 bytes at most. */
        h = dlq_headers();
        size_t key = 5000, value = 70;
        cr_expect(itd_kafka_fit(0, h, &key, &value));
        cr_expect_eq(key, 256);
        cr_expect_eq(value, 0);
        rd_kafka_headers_destroy(h);
        free(bytes);
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
}

/* A record the broker refused as too large goes again without its value,
 * a header giving the original length (run.c's dead-letter fallback). */
typedef struct {
        itd_kafka_retryq_t *q;
        int reports;
        size_t last_len;
        char header[32];
} drop_ctx_t;

static void drop_dr(rd_kafka_t *rk, const rd_kafka_message_t *m,
                    void *opaque) {
        (void)rk;
        drop_ctx_t *c = opaque;
        c->reports++;
        c->last_len = m->len;
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t n;
        c->header[0] = '\0';
        if (!rd_kafka_message_headers(m, &h) && h &&
            !rd_kafka_header_get_last(h, ITD_KAFKA_HDR_VALUE_TRUNCATED, &v,
                                      &n))
                snprintf(c->header, sizeof c->header, "%.*s", (int)n,
                         (const char *)v);
        if (c->reports == 1)
                itd_kafka_retryq_push(c->q, m, 1,
                                      ITD_KAFKA_HDR_VALUE_TRUNCATED, "5");
}

Test(kafka, a_retry_can_drop_the_value_and_say_so) {
        char err[512];
        drop_ctx_t c = {.q = itd_kafka_retryq_new()};
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        static const char *const kv[] = {"test.mock.num.brokers", "1",
                                         "message.send.max.retries", "0",
                                         "log_level", "0", NULL};
        for (size_t i = 0; kv[i]; i += 2)
                cr_assert_eq(rd_kafka_conf_set(kc, kv[i], kv[i + 1], err,
                                               sizeof err),
                             RD_KAFKA_CONF_OK);
        rd_kafka_conf_set_dr_msg_cb(kc, drop_dr);
        rd_kafka_conf_set_opaque(kc, &c);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        cr_assert_not_null(rk, "%s", err);
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
        cr_assert_eq(rd_kafka_mock_topic_create(mc, "dlq", 1, 1), 0);
        /* The broker refuses the first produce as too large. */
        rd_kafka_resp_err_t refuse = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
        rd_kafka_mock_push_request_errors_array(mc, 0, 1, &refuse);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "dlq", NULL);
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, "intentd.error.reason", -1, "x", -1);
        cr_assert_eq(itd_kafka_produce(rk, rkt, RD_KAFKA_PARTITION_UA, "k", 1,
                                       "value", 5, h, NULL, NULL, err,
                                       sizeof err),
                     ITD_OK, "%s", err);
        for (int i = 0; i < 500 && c.reports < 1; i++)
                rd_kafka_poll(rk, 10);
        cr_assert_eq(c.reports, 1);
        cr_expect_eq(c.last_len, 5);
        cr_assert_eq(itd_kafka_retryq_len(c.q), 1);
        cr_expect_eq(itd_kafka_retryq_flush(c.q, rk, NULL, NULL, NULL), 1);
        for (int i = 0; i < 500 && c.reports < 2; i++)
                rd_kafka_poll(rk, 10);
        cr_assert_eq(c.reports, 2);
        cr_expect_eq(c.last_len, 0, "the value went again");
        cr_expect_str_eq(c.header, "5");
        itd_kafka_retryq_destroy(c.q);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
}
