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
 * @returns ITD_OK, or ITD_ERR_KAFKA with errstr (headers then still the
 * caller's).
 */
itd_err_t itd_kafka_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                            int32_t partition, const void *key, size_t keylen,
                            const void *value, size_t len,
                            rd_kafka_headers_t *headers, void *msg_opaque,
                            volatile sig_atomic_t *stop, char *errstr,
                            size_t errstr_size);

#endif
