/*
 * kafka.c - client construction and produce-with-back-pressure (kafka.h).
 */
#include "intentd/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/log.h"
#include "intentd/mem.h"

/* Properties that only one client type understands. librdkafka warns at
 * rd_kafka_new() about the others; one `kafka:` section serves both
 * clients, so intentd routes each key to where it means something. */
static const char *const consumer_only[] = {
    "group.id", "group.instance.id", "auto.offset.reset",
    "enable.auto.commit", "auto.commit.interval.ms",
    "enable.auto.offset.store", "session.timeout.ms",
    "heartbeat.interval.ms", "max.poll.interval.ms", "queued.min.messages",
    "queued.max.messages.kbytes", "fetch.wait.max.ms",
    "fetch.message.max.bytes", "fetch.max.bytes", "fetch.min.bytes",
    "fetch.error.backoff.ms", "enable.partition.eof", "check.crcs",
    "isolation.level", "partition.assignment.strategy",
    "group.protocol.type", "coordinator.query.interval.ms",
    "consume.callback.max.messages", NULL};
static const char *const producer_only[] = {
    "transactional.id", "transaction.timeout.ms", "enable.idempotence",
    "enable.gapless.guarantee", "queue.buffering.max.messages",
    "queue.buffering.max.kbytes", "queue.buffering.max.ms", "linger.ms",
    "message.send.max.retries", "retries", "retry.backoff.ms",
    "queue.buffering.backpressure.threshold", "compression.codec",
    "compression.type", "batch.num.messages", "batch.size",
    "delivery.report.only.error", "sticky.partitioning.linger.ms",
    "acks", "request.required.acks", "request.timeout.ms",
    "message.timeout.ms", "delivery.timeout.ms", "partitioner",
    "compression.level", NULL};

static int in_list(const char *const *list, const char *key) {
        for (; *list; list++)
                if (strcmp(*list, key) == 0)
                        return 1;
        return 0;
}

static int skip_for(rd_kafka_type_t type, const char *key) {
        if (type == RD_KAFKA_PRODUCER)
                return in_list(consumer_only, key);
        return in_list(producer_only, key);
}

/* librdkafka's syslog levels are ours; only the facility is prefixed. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
        (void)rk;
        itd_log(level, "kafka", "%s: %s", fac, buf);
}

const char *const itd_kafka_consumer_defaults[] = {
    "group.id", "intentd",
    "auto.offset.reset", "earliest",
    /* at-least-once: offsets are stored only once outputs are delivered */
    "enable.auto.offset.store", "false",
    "enable.partition.eof", "false",
    /* Prefetch is what matters most for throughput (a C pass-through of
     * 1M ~100-byte messages on 2 cores: 190k/s with librdkafka's default,
     * 800k/s with this). */
    "queued.min.messages", "1000000",
    /* Consumer lag per partition for /metrics comes from statistics. */
    "statistics.interval.ms", "5000",
    NULL};

const char *const itd_kafka_producer_defaults[] = {
    "linger.ms", "5",
    "queue.buffering.max.messages", "1000000",
    "enable.idempotence", "true",
    /* No compression: lz4 took the producer's broker thread from 3.1 to
     * 2.0 us per event but made prediction latency worse at every rate
     * (docs/BENCHMARKS.md, "librdkafka's cost"). */
    NULL};

/* Sets one property unless it belongs to the other client type. */
static int set_one(rd_kafka_conf_t *kc, rd_kafka_type_t type,
                   const char *key, const char *value, char *errstr,
                   size_t errstr_size) {
        char why[512];
        if (skip_for(type, key))
                return 0;
        if (rd_kafka_conf_set(kc, key, value, why, sizeof why) ==
            RD_KAFKA_CONF_OK)
                return 0;
        snprintf(errstr, errstr_size, "kafka.%s: %s", key, why);
        return -1;
}

rd_kafka_t *itd_kafka_new(rd_kafka_type_t type, itd_kafka_pairs_t defaults,
                          const char *const *extra, size_t n,
                          char *const *keys, char *const *values,
                          const itd_kafka_cbs_t *cbs, void *opaque,
                          char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        char why[512];
        int bad = 0;
        for (size_t i = 0; !bad && defaults && defaults[i]; i += 2)
                bad = set_one(kc, type, defaults[i], defaults[i + 1], errstr,
                              errstr_size);
        for (size_t i = 0; !bad && extra && extra[i]; i += 2)
                bad = set_one(kc, type, extra[i], extra[i + 1], errstr,
                              errstr_size);
        for (size_t i = 0; !bad && i < n; i++)
                bad = set_one(kc, type, keys[i], values[i], errstr,
                              errstr_size);
        if (bad) {
                rd_kafka_conf_destroy(kc);
                return NULL;
        }
        rd_kafka_conf_set_log_cb(kc, log_cb);
        if (cbs && cbs->dr_msg)
                rd_kafka_conf_set_dr_msg_cb(kc, cbs->dr_msg);
        if (cbs && cbs->rebalance)
                rd_kafka_conf_set_rebalance_cb(kc, cbs->rebalance);
        if (cbs && cbs->stats)
                rd_kafka_conf_set_stats_cb(kc, cbs->stats);
        if (cbs && cbs->error)
                rd_kafka_conf_set_error_cb(kc, cbs->error);
        rd_kafka_conf_set_opaque(kc, opaque);
        rd_kafka_t *rk = rd_kafka_new(type, kc, why, sizeof why);
        if (!rk) {
                snprintf(errstr, errstr_size, "cannot create kafka %s: %s",
                         type == RD_KAFKA_PRODUCER ? "producer" : "consumer",
                         why);
                rd_kafka_conf_destroy(kc);
                return NULL;
        }
        return rk;
}

itd_err_t itd_kafka_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                            int32_t partition, const void *key, size_t keylen,
                            const void *value, size_t len,
                            rd_kafka_headers_t *headers, void *msg_opaque,
                            volatile sig_atomic_t *stop, char *errstr,
                            size_t errstr_size) {
        return itd_kafka_produce_at(rk, rkt, partition, 0, key, keylen,
                                    value, len, headers, msg_opaque, stop,
                                    errstr, errstr_size);
}

itd_err_t itd_kafka_produce_at(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                               int32_t partition, int64_t timestamp_ms,
                               const void *key, size_t keylen,
                               const void *value, size_t len,
                               rd_kafka_headers_t *headers, void *msg_opaque,
                               volatile sig_atomic_t *stop, char *errstr,
                               size_t errstr_size) {
        for (;;) {
                rd_kafka_resp_err_t err;
                if (headers || timestamp_ms) {
                        /* producev takes headers and a timestamp;
                         * rd_kafka_produce neither. Headers are consumed
                         * only on success (RD_KAFKA_V_HEADERS). */
                        err = rd_kafka_producev(
                            rk, RD_KAFKA_V_RKT(rkt),
                            RD_KAFKA_V_PARTITION(partition),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(key, keylen),
                            RD_KAFKA_V_VALUE((void *)value, len),
                            RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                            RD_KAFKA_V_HEADERS(headers),
                            RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
                } else {
                        err = rd_kafka_produce(rkt, partition,
                                               RD_KAFKA_MSG_F_COPY,
                                               (void *)value, len, key, keylen,
                                               msg_opaque) == -1
                                  ? rd_kafka_last_error()
                                  : RD_KAFKA_RESP_ERR_NO_ERROR;
                }
                if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                        return ITD_OK;
                if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
                        snprintf(errstr, errstr_size,
                                 "produce to \"%s\" failed: %zu-byte record "
                                 "(key %zu, value %zu, headers) exceeds the "
                                 "producer's message.max.bytes",
                                 rd_kafka_topic_name(rkt), keylen + len,
                                 keylen, len);
                        return ITD_ERR_RANGE;
                }
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
                    (stop && *stop)) {
                        snprintf(errstr, errstr_size,
                                 "produce to \"%s\" failed: %s",
                                 rd_kafka_topic_name(rkt),
                                 rd_kafka_err2str(err));
                        return ITD_ERR_KAFKA;
                }
                /* Queue full: serve delivery reports so it drains. */
                rd_kafka_poll(rk, 10);
        }
}

/* ------------------------------------------------------------- fitting */

/* Per-record wire overhead, bounded above (librdkafka's v2 maximum is 36
 * bytes), and room for the two truncation headers itd_kafka_fit adds. */
rd_kafka_headers_t *itd_kafka_dead_letter_headers(const char *reason,
                                                  const char *detail,
                                                  const char *topic,
                                                  int32_t partition,
                                                  int64_t offset) {
        char num[32];
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(7);
        rd_kafka_header_add(hdrs, "intentd.error.reason", -1, reason, -1);
        rd_kafka_header_add(hdrs, "intentd.error.detail", -1, detail, -1);
        rd_kafka_header_add(hdrs, "intentd.source.topic", -1, topic, -1);
        snprintf(num, sizeof num, "%d", (int)partition);
        rd_kafka_header_add(hdrs, "intentd.source.partition", -1, num, -1);
        snprintf(num, sizeof num, "%lld", (long long)offset);
        rd_kafka_header_add(hdrs, "intentd.source.offset", -1, num, -1);
        return hdrs;
}

#define RECORD_OVERHEAD 64
#define TRUNC_HEADERS_ROOM 128
#define LAST_RESORT_KEY 256

size_t itd_kafka_max_message_bytes(rd_kafka_t *rk) {
        char v[32];
        size_t n = sizeof v;
        if (rd_kafka_conf_get(rd_kafka_conf(rk), "message.max.bytes", v, &n) !=
            RD_KAFKA_CONF_OK)
                return 1000000;
        return (size_t)strtoull(v, NULL, 10);
}

/* What librdkafka charges a record's headers against message.max.bytes,
 * bounded above: name and value with a 5-byte varint length each. */
static size_t headers_bytes(const rd_kafka_headers_t *h) {
        size_t total = 0, n;
        const char *name;
        const void *v;
        for (size_t i = 0;
             h && rd_kafka_header_get_all(h, i, &name, &v, &n) == 0; i++)
                total += strlen(name) + n + 10;
        return total;
}

static void add_length(rd_kafka_headers_t *hdrs, const char *name,
                       size_t n) {
        char num[32];
        snprintf(num, sizeof num, "%zu", n);
        rd_kafka_header_remove(hdrs, name);
        rd_kafka_header_add(hdrs, name, -1, num, -1);
}

int itd_kafka_fit(size_t max_bytes, rd_kafka_headers_t *hdrs,
                  size_t *key_len, size_t *len) {
        size_t key_keep, len_keep;
        if (max_bytes == 0) {
                key_keep = *key_len < LAST_RESORT_KEY ? *key_len
                                                      : LAST_RESORT_KEY;
                len_keep = 0;
        } else {
                size_t fixed = RECORD_OVERHEAD + TRUNC_HEADERS_ROOM +
                               headers_bytes(hdrs);
                size_t room = max_bytes > fixed ? max_bytes - fixed : 0;
                key_keep = *key_len < room ? *key_len : room;
                len_keep = *len < room - key_keep ? *len : room - key_keep;
        }
        int cut = 0;
        if (key_keep < *key_len) {
                add_length(hdrs, ITD_KAFKA_HDR_KEY_TRUNCATED, *key_len);
                cut = 1;
        }
        if (len_keep < *len) {
                add_length(hdrs, ITD_KAFKA_HDR_VALUE_TRUNCATED, *len);
                cut = 1;
        }
        *key_len = key_keep;
        *len = len_keep;
        return cut;
}

/* ---------------------------------------------------------- retries */

typedef struct retry_s {
        rd_kafka_topic_t *rkt; /* borrowed: outlives the queue */
        void *key;
        size_t key_len;
        void *value;
        size_t len;
        rd_kafka_headers_t *headers;
        void *opaque;
        int64_t timestamp_ms; /* the record's CreateTime; 0: now */
} retry_t;

struct itd_kafka_retryq_s {
        retry_t *r;
        size_t n, cap;
};

itd_kafka_retryq_t *itd_kafka_retryq_new(void) {
        return itd_xcalloc(1, sizeof(itd_kafka_retryq_t));
}

static void retry_free(retry_t *r) {
        free(r->key);
        free(r->value);
        if (r->headers)
                rd_kafka_headers_destroy(r->headers);
}

static void retry_put(itd_kafka_retryq_t *q, const retry_t *r) {
        if (q->n == q->cap) {
                q->cap = q->cap ? 2 * q->cap : 64;
                q->r = itd_xrealloc(q->r, q->cap * sizeof *q->r);
        }
        q->r[q->n++] = *r;
}

void itd_kafka_retryq_destroy(itd_kafka_retryq_t *q) {
        if (!q)
                return;
        for (size_t i = 0; i < q->n; i++)
                retry_free(&q->r[i]);
        free(q->r);
        free(q);
}

static void *dup_bytes(const void *p, size_t n) {
        void *d = itd_xmalloc(n ? n : 1);
        if (n)
                memcpy(d, p, n);
        return d;
}

void itd_kafka_retryq_push(itd_kafka_retryq_t *q, const rd_kafka_message_t *msg,
                           int drop_value, const char *header_name,
                           const char *header_value) {
        retry_t r = {0};
        r.rkt = msg->rkt; /* the application's handle (kafka.h) */
        r.key_len = msg->key ? msg->key_len : 0;
        r.key = dup_bytes(msg->key, r.key_len);
        r.len = drop_value || !msg->payload ? 0 : msg->len;
        r.value = dup_bytes(msg->payload, r.len);
        rd_kafka_headers_t *h = NULL;
        if (rd_kafka_message_headers(msg, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            h)
                r.headers = rd_kafka_headers_copy(h);
        if (header_name) {
                if (!r.headers)
                        r.headers = rd_kafka_headers_new(1);
                rd_kafka_header_remove(r.headers, header_name);
                rd_kafka_header_add(r.headers, header_name, -1, header_value,
                                    -1);
        }
        r.opaque = msg->_private;
        rd_kafka_timestamp_type_t tst;
        int64_t ts = rd_kafka_message_timestamp(msg, &tst);
        r.timestamp_ms = tst == RD_KAFKA_TIMESTAMP_CREATE_TIME && ts > 0 ? ts
                                                                        : 0;
        retry_put(q, &r);
}

size_t itd_kafka_retryq_len(const itd_kafka_retryq_t *q) { return q->n; }

size_t itd_kafka_retryq_flush(itd_kafka_retryq_t *q, rd_kafka_t *rk,
                              volatile sig_atomic_t *stop,
                              itd_kafka_gave_up_cb *gave_up, void *arg) {
        /* Take the records out first: a delivery report served inside
         * itd_kafka_produce (queue full) pushes onto q, which must not be
         * the array being walked (kafka.h). */
        retry_t *r = q->r;
        size_t n = q->n, produced = 0;
        q->r = NULL;
        q->n = q->cap = 0;
        for (size_t i = 0; i < n; i++) {
                char errstr[256];
                itd_err_t err = itd_kafka_produce_at(
                    rk, r[i].rkt, RD_KAFKA_PARTITION_UA, r[i].timestamp_ms,
                    r[i].key, r[i].key_len, r[i].value, r[i].len,
                    r[i].headers, r[i].opaque, stop, errstr, sizeof errstr);
                if (err == ITD_ERR_RANGE && gave_up) {
                        /* Never fits: another flush cannot help. */
                        gave_up(r[i].opaque, errstr, arg);
                        retry_free(&r[i]);
                        continue;
                }
                if (err) {
                        retry_put(q, &r[i]); /* headers still ours */
                        continue;
                }
                r[i].headers = NULL; /* librdkafka's now */
                retry_free(&r[i]);
                produced++;
        }
        free(r);
        return produced;
}
