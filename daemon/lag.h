/*
 * lag.h - consumer lag per partition, read from librdkafka's statistics.
 *
 * With `statistics.interval.ms` set, librdkafka hands a JSON document to the
 * stats callback every interval (from rd_kafka_poll / consumer_poll, so on
 * the thread that polls). Per partition it carries `consumer_lag`: the high
 * watermark minus our committed (or, if further, consumed) position, -1
 * while unknown. The lag shown in /metrics and STATUS= comes from here.
 */
#ifndef INTENTD_LAG_H
#define INTENTD_LAG_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "prom.h"

/**
 * @brief Called once per partition with a known lag.
 * @param topic  borrowed, valid during the call.
 */
typedef void (*itd_lag_cb_t)(void *opaque, const char *topic,
                             int32_t partition, int64_t lag);

/**
 * @brief Walks "topics" -> <topic> -> "partitions" -> <n> -> "consumer_lag"
 * of one statistics document and calls cb for every real partition
 * (librdkafka's internal partition -1 is skipped) whose lag is known
 * (>= 0; partitions not assigned to us report -1).
 * @param json  the document, len bytes, not necessarily NUL-terminated.
 * @param topic  only this topic; NULL for every topic.
 * @returns ITD_OK (also when the document has no topics yet), or
 * ITD_ERR_PARSE with "statistics JSON: why" in errstr (may be NULL).
 * @thread any; allocates (jansson), so call it from the stats callback,
 * which runs every few seconds, not per message.
 */
itd_err_t itd_lag_parse(const char *json, size_t len, const char *topic,
                        itd_lag_cb_t cb, void *opaque, char *errstr,
                        size_t errstr_size);

/**
 * @brief itd_lag_parse into the registry: sets intentd_consumer_lag for
 * each partition of topic that has a known lag (partitions at or above
 * ITD_PROM_MAX_PARTITIONS are left out).
 * @param total  gets the sum over those partitions, or -1 if none had a
 * known lag (for the STATUS= line); may be NULL.
 * @returns as itd_lag_parse.
 * @thread the one that polls the consumer (stats callback).
 */
itd_err_t itd_lag_to_metrics(itd_prom_t *m, const char *json, size_t len,
                             const char *topic, int64_t *total,
                             char *errstr, size_t errstr_size);

#endif
