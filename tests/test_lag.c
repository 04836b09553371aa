/*
 * test_lag.c - consumer lag from librdkafka's statistics JSON (daemon/lag.c):
 * hand-written documents shaped like librdkafka's STATISTICS.md for the
 * edge cases, then a real document from a consumer of the embedded broker,
 * so a change of librdkafka's format shows up here.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "intentd/log.h"
#include "lag.h"
#include "prom.h"

#define MAX_SEEN 16

struct seen {
        size_t n;
        char topic[MAX_SEEN][64];
        int32_t partition[MAX_SEEN];
        int64_t lag[MAX_SEEN];
};

static void record(void *opaque, const char *topic, int32_t partition,
                   int64_t lag) {
        struct seen *s = opaque;
        cr_assert_lt(s->n, MAX_SEEN);
        snprintf(s->topic[s->n], sizeof s->topic[0], "%s", topic);
        s->partition[s->n] = partition;
        s->lag[s->n] = lag;
        s->n++;
}

/* Lag of (topic, partition) in s, or -2 when not reported. */
static int64_t lag_of(const struct seen *s, const char *topic, int32_t p) {
        for (size_t i = 0; i < s->n; i++)
                if (!strcmp(s->topic[i], topic) && s->partition[i] == p)
                        return s->lag[i];
        return -2;
}

/* Two topics; partition -1 is librdkafka's internal UA partition; 2 is not
 * assigned to us (lag -1); 3 has no consumer_lag at all. */
static const char doc[] =
    "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"ts\":1,"
    "\"brokers\":{},"
    "\"topics\":{"
    " \"intentd.events\":{\"topic\":\"intentd.events\",\"partitions\":{"
    "  \"0\":{\"partition\":0,\"hi_offset\":100,\"committed_offset\":58,"
    "        \"consumer_lag\":42,\"consumer_lag_stored\":40},"
    "  \"1\":{\"partition\":1,\"consumer_lag\":0},"
    "  \"2\":{\"partition\":2,\"consumer_lag\":-1},"
    "  \"3\":{\"partition\":3},"
    "  \"-1\":{\"partition\":-1,\"consumer_lag\":-1}}},"
    " \"other\":{\"topic\":\"other\",\"partitions\":{"
    "  \"5\":{\"partition\":5,\"consumer_lag\":7}}}}}";

Test(lag, reports_each_partition_with_a_known_lag) {
        struct seen s = {0};
        char errstr[256];
        cr_assert_eq(itd_lag_parse(doc, strlen(doc), NULL, record, &s, errstr,
                                   sizeof errstr),
                     ITD_OK, "%s", errstr);
        cr_expect_eq(s.n, 3);
        cr_expect_eq(lag_of(&s, "intentd.events", 0), 42);
        cr_expect_eq(lag_of(&s, "intentd.events", 1), 0);
        cr_expect_eq(lag_of(&s, "intentd.events", 2), -2, "unknown lag");
        cr_expect_eq(lag_of(&s, "intentd.events", 3), -2, "no lag field");
        cr_expect_eq(lag_of(&s, "intentd.events", -1), -2, "UA partition");
        cr_expect_eq(lag_of(&s, "other", 5), 7);
}

Test(lag, reads_only_the_topic_asked_for) {
        struct seen s = {0};
        cr_assert_eq(itd_lag_parse(doc, strlen(doc), "other", record, &s, NULL,
                                   0),
                     ITD_OK);
        cr_expect_eq(s.n, 1);
        cr_expect_eq(lag_of(&s, "other", 5), 7);
        s.n = 0;
        cr_assert_eq(itd_lag_parse(doc, strlen(doc), "absent", record, &s,
                                   NULL, 0),
                     ITD_OK);
        cr_expect_eq(s.n, 0);
}

Test(lag, accepts_documents_without_topics_and_odd_types) {
        static const char *const ok[] = {
            "{}",
            "{\"topics\":{}}",
            "{\"topics\":[]}",
            "{\"topics\":{\"t\":{\"partitions\":[]}}}",
            "{\"topics\":{\"t\":{\"partitions\":{\"0\":5}}}}",
            "{\"topics\":{\"t\":{\"partitions\":{\"0\":"
            "{\"consumer_lag\":\"12\"}}}}}",
        };
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
                struct seen s = {0};
                cr_expect_eq(itd_lag_parse(ok[i], strlen(ok[i]), NULL, record,
                                           &s, NULL, 0),
                             ITD_OK, "%s", ok[i]);
                cr_expect_eq(s.n, 0, "%s", ok[i]);
        }
        /* No "partition" field: the key names the partition. */
        const char *keyed = "{\"topics\":{\"t\":{\"partitions\":"
                            "{\"4\":{\"consumer_lag\":9}}}}}";
        struct seen s = {0};
        cr_assert_eq(itd_lag_parse(keyed, strlen(keyed), "t", record, &s, NULL,
                                   0),
                     ITD_OK);
        cr_expect_eq(lag_of(&s, "t", 4), 9);
}

Test(lag, refuses_malformed_json_with_a_reason) {
        static const char *const bad[] = {"", "{\"topics\":", "[1,2]", "42"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                struct seen s = {0};
                char errstr[256] = "";
                cr_expect_eq(itd_lag_parse(bad[i], strlen(bad[i]), NULL, record,
                                           &s, errstr, sizeof errstr),
                             ITD_ERR_PARSE, "\"%s\"", bad[i]);
                cr_expect(strstr(errstr, "statistics JSON") != NULL, "%s",
                          errstr);
                cr_expect_eq(s.n, 0);
        }
}

/* The numeric value of the first sample line starting with name, or -1. */
static double sample(const char *text, const char *name) {
        for (const char *p = text; (p = strstr(p, name)); p++)
                if ((p == text || p[-1] == '\n') && p[strlen(name)] == ' ')
                        return atof(p + strlen(name) + 1);
        return -1;
}

Test(lag, sets_the_partition_gauges_and_returns_the_total) {
        itd_prom_t *m = itd_prom_new();
        int64_t total = 0;
        cr_assert_eq(itd_lag_to_metrics(m, doc, strlen(doc), "intentd.events",
                                        &total, NULL, 0),
                     ITD_OK);
        cr_expect_eq(total, 42);
        size_t len;
        char *t = itd_prom_render_dup(m, &len);
        cr_expect_eq(sample(t, "intentd_consumer_lag{partition=\"0\"}"), 42);
        cr_expect_eq(sample(t, "intentd_consumer_lag{partition=\"1\"}"), 0);
        cr_expect_null(strstr(t, "intentd_consumer_lag{partition=\"2\"}"));
        cr_expect_null(strstr(t, "intentd_consumer_lag{partition=\"5\"}"),
                       "another topic leaked in");
        free(t);

        /* Nothing known: total -1, so STATUS= can say "lag unknown". */
        const char *none = "{\"topics\":{}}";
        cr_assert_eq(itd_lag_to_metrics(m, none, strlen(none), "intentd.events",
                                        &total, NULL, 0),
                     ITD_OK);
        cr_expect_eq(total, -1);
        itd_prom_destroy(m);
}

/* ---- a real statistics document ---------------------------------------- */

struct capture {
        char *json;
};

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
        (void)rk;
        struct capture *c = opaque;
        free(c->json);
        c->json = strndup(json, len); /* the latest document */
        return 0;                     /* librdkafka frees json */
}

Test(lag, reads_the_lag_from_a_real_librdkafka_consumer, .timeout = 60) {
        const char *topics[] = {"lagtest"};
        char errstr[512];
        itd_log_setup(ITD_LOG_ERR, ITD_LOG_FORMAT_PLAIN);
        itd_broker_t *br = itd_broker_start(1, 1, topics, 1, errstr,
                                            sizeof errstr);
        cr_assert_not_null(br, "%s", errstr);
        const char *bs = itd_broker_bootstraps(br);

        /* 10 messages on partition 0. */
        rd_kafka_conf_t *pc = rd_kafka_conf_new();
        rd_kafka_conf_set(pc, "bootstrap.servers", bs, errstr, sizeof errstr);
        rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr,
                                        sizeof errstr);
        cr_assert_not_null(prod, "%s", errstr);
        for (int i = 0; i < 10; i++)
                cr_assert_eq(rd_kafka_producev(
                                 prod, RD_KAFKA_V_TOPIC("lagtest"),
                                 RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_END),
                             0);
        cr_assert_eq(rd_kafka_flush(prod, 10000), 0);
        rd_kafka_destroy(prod);

        /* A consumer that reads 4 of them and commits: lag 6. */
        struct capture cap = {0};
        rd_kafka_conf_t *cc = rd_kafka_conf_new();
        rd_kafka_conf_set(cc, "bootstrap.servers", bs, errstr, sizeof errstr);
        rd_kafka_conf_set(cc, "group.id", "lagtest", errstr, sizeof errstr);
        rd_kafka_conf_set(cc, "enable.auto.commit", "false", errstr,
                          sizeof errstr);
        rd_kafka_conf_set(cc, "statistics.interval.ms", "100", errstr,
                          sizeof errstr);
        rd_kafka_conf_set_stats_cb(cc, stats_cb);
        rd_kafka_conf_set_opaque(cc, &cap);
        rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr,
                                        sizeof errstr);
        cr_assert_not_null(cons, "%s", errstr);
        rd_kafka_poll_set_consumer(cons);
        rd_kafka_topic_partition_list_t *tp =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tp, "lagtest", 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        cr_assert_eq(rd_kafka_assign(cons, tp), 0);
        rd_kafka_topic_partition_list_destroy(tp);
        int got = 0;
        int64_t last = -1;
        for (int tries = 0; got < 4 && tries < 200; tries++) {
                rd_kafka_message_t *msg = rd_kafka_consumer_poll(cons, 50);
                if (!msg)
                        continue;
                if (!msg->err) {
                        got++;
                        last = msg->offset;
                }
                rd_kafka_message_destroy(msg);
        }
        cr_assert_eq(got, 4);
        tp = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tp, "lagtest", 0)->offset = last + 1;
        cr_assert_eq(rd_kafka_commit(cons, tp, 0), 0);
        rd_kafka_topic_partition_list_destroy(tp);
        /* Pause, so the consumer position stays at 4 while stats arrive. */
        rd_kafka_topic_partition_list_t *asg = NULL;
        rd_kafka_assignment(cons, &asg);
        rd_kafka_pause_partitions(cons, asg);
        rd_kafka_topic_partition_list_destroy(asg);

        /* Stats are served by polling; wait for one after the commit. */
        int64_t lag = -1;
        for (int tries = 0; tries < 100 && lag != 6; tries++) {
                rd_kafka_message_t *msg = rd_kafka_consumer_poll(cons, 100);
                if (msg)
                        rd_kafka_message_destroy(msg);
                if (!cap.json)
                        continue;
                struct seen s = {0};
                cr_assert_eq(itd_lag_parse(cap.json, strlen(cap.json),
                                           "lagtest", record, &s, errstr,
                                           sizeof errstr),
                             ITD_OK, "%s", errstr);
                lag = lag_of(&s, "lagtest", 0);
        }
        cr_expect_eq(lag, 6, "consumer_lag in librdkafka's statistics: %s",
                     cap.json ? cap.json : "(no document with a lag)");
        /* Only after the consumer is gone: its close still serves
         * statistics, and stats_cb frees the document it replaces. */
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
        free(cap.json);
        itd_broker_stop(br);
}
