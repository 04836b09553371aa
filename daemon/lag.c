/*
 * lag.c - consumer lag per partition from librdkafka's statistics JSON
 * (see lag.h, and librdkafka's STATISTICS.md for the document).
 *
 * Only the few fields we need are read; anything else in the document may
 * change between librdkafka versions without breaking us. A field of the
 * wrong type is skipped, not fatal: the stats are for operators, a daemon
 * must not stop over them.
 */
#include "lag.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

/* The partition number of one entry of "partitions": its "partition" field,
 * else its key; -1 when neither is a number. */
static int64_t partition_of(const char *key, json_t *part) {
        json_t *num = json_object_get(part, "partition");
        if (json_is_integer(num))
                return json_integer_value(num);
        char *end;
        errno = 0;
        long long v = strtoll(key, &end, 10);
        if (errno || end == key || *end)
                return -1;
        return v;
}

static void walk_topic(const char *name, json_t *topic, itd_lag_cb_t cb,
                       void *opaque) {
        json_t *parts = json_object_get(topic, "partitions");
        if (!json_is_object(parts))
                return;
        const char *key;
        json_t *part;
        json_object_foreach(parts, key, part) {
                if (!json_is_object(part))
                        continue;
                int64_t p = partition_of(key, part);
                json_t *lag = json_object_get(part, "consumer_lag");
                /* -1: librdkafka's unassigned-partition bucket (p) or an
                 * unknown lag (not fetched yet, not ours). */
                if (p < 0 || p > INT32_MAX || !json_is_integer(lag) ||
                    json_integer_value(lag) < 0)
                        continue;
                cb(opaque, name, (int32_t)p, json_integer_value(lag));
        }
}

itd_err_t itd_lag_parse(const char *json, size_t len, const char *topic,
                        itd_lag_cb_t cb, void *opaque, char *errstr,
                        size_t errstr_size) {
        json_error_t jerr;
        json_t *doc = json_loadb(json, len, 0, &jerr);
        if (!doc) {
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size,
                                 "statistics JSON: %s at line %d column %d",
                                 jerr.text, jerr.line, jerr.column);
                return ITD_ERR_PARSE;
        }
        if (!json_is_object(doc)) {
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size,
                                 "statistics JSON: expected an object");
                json_decref(doc);
                return ITD_ERR_PARSE;
        }
        json_t *topics = json_object_get(doc, "topics");
        if (json_is_object(topics)) {
                if (topic) {
                        json_t *t = json_object_get(topics, topic);
                        if (json_is_object(t))
                                walk_topic(topic, t, cb, opaque);
                } else {
                        const char *name;
                        json_t *t;
                        json_object_foreach(topics, name, t) {
                                if (json_is_object(t))
                                        walk_topic(name, t, cb, opaque);
                        }
                }
        }
        json_decref(doc);
        return ITD_OK;
}

struct to_metrics {
        itd_prom_t *m;
        int64_t total;
};

static void set_gauge(void *opaque, const char *topic, int32_t partition,
                      int64_t lag) {
        (void)topic;
        struct to_metrics *tm = opaque;
        if (itd_prom_set_at(tm->m, ITD_M_CONSUMER_LAG, (size_t)partition,
                            (double)lag) != ITD_OK)
                return; /* beyond ITD_PROM_MAX_PARTITIONS */
        tm->total = (tm->total < 0 ? 0 : tm->total) + lag;
}

itd_err_t itd_lag_to_metrics(itd_prom_t *m, const char *json, size_t len,
                             const char *topic, int64_t *total,
                             char *errstr, size_t errstr_size) {
        struct to_metrics tm = {.m = m, .total = -1};
        itd_err_t err = itd_lag_parse(json, len, topic, set_gauge, &tm, errstr,
                                      errstr_size);
        if (total)
                *total = tm.total;
        return err;
}
