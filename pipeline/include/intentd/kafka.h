/*
 * kafka.h - thin helpers over librdkafka shared by the source and sinks:
 * building a client from intentd's defaults plus the user's `kafka.*` keys,
 * routing librdkafka's log through itd_log, and producing with
 * back-pressure instead of dropping.
 */
#ifndef INTENTD_KAFKA_H
#define INTENTD_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>

#include "intentd/err.h"

/* A NULL-terminated list of key/value pairs, e.g. {"linger.ms","5",NULL}. */
typedef const char *const itd_kafka_pairs_t[];

/* Callbacks a client may need; unused ones NULL. They run on the thread
 * that polls the handle. */
typedef struct itd_kafka_cbs_s {
        void (*dr_msg)(rd_kafka_t *, const rd_kafka_message_t *, void *);
        void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                          rd_kafka_topic_partition_list_t *, void *);
        int (*stats)(rd_kafka_t *, char *json, size_t len, void *);
        /* Client-wide errors (broker down, fatal); with it set librdkafka
         * no longer logs them itself. err is an rd_kafka_resp_err_t;
         * RD_KAFKA_RESP_ERR__FATAL means rd_kafka_fatal_error() holds the
         * cause and the handle is unusable. */
        void (*error)(rd_kafka_t *, int err, const char *reason, void *);
} itd_kafka_cbs_t;

/*
 * The client settings intentd ships (daemon, load/simulate/demo publishing,
 * and the pass-through benchmark, which must measure the same settings).
 * The user's `kafka.*` keys override them.
 */
extern const char *const itd_kafka_consumer_defaults[];
extern const char *const itd_kafka_producer_defaults[];

/**
 * @brief Creates a consumer or producer. defaults, then extra (may be
 * NULL), are applied first, then the user's n pairs (user keys win). Keys that belong only to the other
 * client type are skipped for this one, so a shared `kafka:` section does
 * not warn. librdkafka's log goes through itd_log (facility "kafka").
 * @param cbs     callbacks (may be NULL).
 * @param opaque  rd_kafka_opaque() of the new handle.
 * @returns the handle (caller owns; rd_kafka_destroy), or NULL with errstr.
 */
rd_kafka_t *itd_kafka_new(rd_kafka_type_t type, itd_kafka_pairs_t defaults,
                          const char *const *extra, size_t n,
                          char *const *keys, char *const *values,
                          const itd_kafka_cbs_t *cbs, void *opaque,
                          char *errstr, size_t errstr_size);

/**
 * @brief Produces one message (copied). When the local queue is full it
 * serves delivery reports and retries until it fits or *stop becomes
 * non-zero: back-pressure, never a drop.
 * @param headers  owned by librdkafka on success (may be NULL).
 * @param msg_opaque  handed back in the delivery report.
 * @returns ITD_OK; ITD_ERR_RANGE when the record is larger than the
 * producer's message.max.bytes (key, value and headers together: no
 * retry can help, a smaller record might); ITD_ERR_KAFKA for any other
 * refusal, or a full queue once *stop is set. With errstr; headers then
 * still the caller's.
 */
itd_err_t itd_kafka_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                            int32_t partition, const void *key, size_t keylen,
                            const void *value, size_t len,
                            rd_kafka_headers_t *headers, void *msg_opaque,
                            volatile sig_atomic_t *stop, char *errstr,
                            size_t errstr_size);

/**
 * @brief As itd_kafka_produce, with the record's timestamp (CreateTime) set
 * to timestamp_ms, ms since the epoch: an output's event time, so that
 * downstream event-time windows and time-based look-ups see when the
 * shopper acted, not when intentd got round to it. 0: the current time
 * (librdkafka's default). A retry (itd_kafka_retryq) keeps it.
 */
itd_err_t itd_kafka_produce_at(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                               int32_t partition, int64_t timestamp_ms,
                               const void *key, size_t keylen,
                               const void *value, size_t len,
                               rd_kafka_headers_t *headers, void *msg_opaque,
                               volatile sig_atomic_t *stop, char *errstr,
                               size_t errstr_size);

/* Headers of a record cut to fit (DESIGN.md: a dead letter too large for
 * the topic is truncated with a header saying so): the original length of
 * the value, or of the key, in bytes, decimal. */
#define ITD_KAFKA_HDR_VALUE_TRUNCATED "intentd.value.truncated"
#define ITD_KAFKA_HDR_KEY_TRUNCATED "intentd.key.truncated"

/**
 * @brief The headers of a dead letter (DESIGN.md): why it went there (a
 * reason code and one line of detail) and where it came from (topic,
 * partition, offset).
 * @returns the headers (caller owns; a successful produce takes them).
 * @thread any.
 */
rd_kafka_headers_t *itd_kafka_dead_letter_headers(const char *reason,
                                                  const char *detail,
                                                  const char *topic,
                                                  int32_t partition,
                                                  int64_t offset);

/** @brief The producer's message.max.bytes (librdkafka's default if it
 * cannot be read). */
size_t itd_kafka_max_message_bytes(rd_kafka_t *rk);

/**
 * @brief Fits a record into max_bytes, what librdkafka checks against
 * message.max.bytes (key, value, headers and per-record overhead, bounded
 * above): cuts the value to a prefix, and the key too if it alone is too
 * large, and adds ITD_KAFKA_HDR_*_TRUNCATED to hdrs for each part cut.
 * max_bytes 0 drops the value whatever it is, and cuts the key to 256
 * bytes, the last resort when a bounded record was still refused.
 * @param key_len,len  in: the whole lengths; out: the lengths to send.
 * @returns 1 if anything was cut.
 */
int itd_kafka_fit(size_t max_bytes, rd_kafka_headers_t *hdrs,
                  size_t *key_len, size_t *len);

/*
 * Outputs whose delivery failed and that are produced again from the main
 * loop, never from inside the delivery report (which runs within
 * rd_kafka_poll). Re-entry safe: a flush takes the queued records out
 * before producing any, so a delivery report served meanwhile (the
 * producer polls while its queue is full) appends to the emptied queue
 * and can neither free nor skip a record the flush holds.
 * @thread the thread that polls the producer (single-threaded).
 */
typedef struct itd_kafka_retryq_s itd_kafka_retryq_t;

itd_kafka_retryq_t *itd_kafka_retryq_new(void);
/** @brief Frees the queue and every record still in it. */
void itd_kafka_retryq_destroy(itd_kafka_retryq_t *q);

/**
 * @brief Queues a copy of msg (a failed delivery report's message: key,
 * value, headers, opaque) to be produced again to msg->rkt, the
 * application's topic handle, which must outlive the queue.
 * @param drop_value  queue it without its value (key and headers only),
 * for a record the broker refused as too large.
 * @param header_name,header_value  one header added to the copy (NULL:
 * none).
 */
void itd_kafka_retryq_push(itd_kafka_retryq_t *q, const rd_kafka_message_t *msg,
                           int drop_value, const char *header_name,
                           const char *header_value);

/** @brief Records queued. */
size_t itd_kafka_retryq_len(const itd_kafka_retryq_t *q);

/* Told about a queued record dropped because it can never be produced
 * (larger than message.max.bytes): its opaque and why. */
typedef void itd_kafka_gave_up_cb(void *msg_opaque, const char *why,
                                  void *arg);

/**
 * @brief Produces every queued record once (itd_kafka_produce, partition
 * chosen by the partitioner again). A record larger than the producer
 * allows is dropped and handed to gave_up (when not NULL; else kept);
 * records refused for other reasons (the queue stays full while *stop is
 * set) stay queued for the next flush.
 * @returns how many were handed to the producer.
 */
size_t itd_kafka_retryq_flush(itd_kafka_retryq_t *q, rd_kafka_t *rk,
                              volatile sig_atomic_t *stop,
                              itd_kafka_gave_up_cb *gave_up, void *arg);

#endif
