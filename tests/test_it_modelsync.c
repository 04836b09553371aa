/*
 * test_it_modelsync.c - the model topic between real daemons on the
 * embedded broker: three `intentd run` in one consumer group with
 * topics.model exchange their changes while they predict every event;
 * after they stop, a fourth, fresh instance starts from what they
 * published instead of from the initial model.
 *
 * Whether synced instances score as one is checked in process
 * (test_engine_sync.c, three engines through the same encode and merge
 * code): measuring a progressive AUC across three daemons would take
 * minutes of this machine.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/codec.h"
#include "intentd/event.h"
#include "testutil.h"

#define INST 3

static tu_broker_t broker;

static void start_broker(void) {
        tu_broker_start(&broker, 3,
                        "intentd.events,intentd.predictions,intentd.model");
}

static void stop_broker(void) { tu_broker_stop(&broker); }

TestSuite(modelsync, .init = start_broker, .fini = stop_broker,
          .timeout = 240);

/* 1: cooperative-sticky assignment and static membership */
static int cooperative;

static void write_conf(int i, char *path, size_t cap) {
        char name[32], kafka[256];
        snprintf(name, sizeof name, "i%d.yaml", i);
        snprintf(kafka, sizeof kafka,
                 TU_KAFKA_FAST "%s%s%d\n",
                 cooperative ? "  partition.assignment.strategy: "
                               "cooperative-sticky\n"
                             : "",
                 cooperative ? "  group.instance.id: intentd-" : "  client.id: intentd-", i);
        tu_conf_write(broker.dir, broker.bootstrap, name, path, cap,
                      kafka,
                      "topics:\n"
                      "  model: intentd.model\n"
                      "model:\n"
                      "  sync.interval: 100ms\n"
                      "  sync.snapshot.interval: 1s\n"
                      "metrics:\n"
                      "  listen: \"127.0.0.1:0\"\n"
                      "  log.interval: 1s\n"
                      "checkpoint:\n"
                      "  dir: \"%s/ck%d\"\n",
                      broker.dir, i);
}

typedef struct tally_s {
        long expected, got;
        tu_idset_t ids;
} tally_t;

static int on_prediction(void *arg, const rd_kafka_message_t *m,
                         const itd_prediction_t *p) {
        (void)m;
        tally_t *t = arg;
        if (p && tu_idset_add(&t->ids, p->prediction_id))
                t->got++;
        return t->got >= t->expected;
}

/* The number after `what` in the log's last line holding `line`, or -1. */
static long logged(const char *log, const char *line, const char *what) {
        char *text = tu_read_file(log);
        long v = -1;
        for (char *at = text ? strstr(text, line) : NULL; at;
             at = strstr(at + 1, line)) {
                char *w = strstr(at, what);
                char *eol = strchr(at, '\n');
                if (w && (!eol || w < eol))
                        v = strtol(w + strlen(what), NULL, 10);
        }
        free(text);
        return v;
}

typedef struct waitlog_s {
        const char *log, *line;
} waitlog_t;

static int has_line(void *arg) {
        waitlog_t *w = arg;
        char *text = tu_read_file(w->log);
        int ok = text && strstr(text, w->line);
        free(text);
        return ok;
}

/* Some instance's progress line says it merged another's change. */
typedef struct merged_s {
        char (*log)[512];
} merged_t;

static int some_merged(void *arg) {
        merged_t *w = arg;
        for (int i = 0; i < INST; i++)
                if (logged(w->log[i], "sync_published=", "sync_merged=") > 0)
                        return 1;
        return 0;
}

static void exchange(void) {
        char fixture[512], conf[INST + 1][512], log[INST + 1][512], lg[512];
        tu_src("tests/fixtures/events_small.jsonl", fixture, sizeof fixture);
        long expected = tu_count_lines(fixture);
        for (int i = 0; i <= INST; i++) {
                write_conf(i, conf[i], sizeof conf[i]);
                snprintf(log[i], sizeof log[i], "%s/run%d.log", broker.dir, i);
        }
        pid_t pid[INST];
        for (int i = 0; i < INST; i++)
                pid[i] = tu_daemon_start(conf[i], log[i]);
        /* Every instance in the group before the events: ready is its
         * first assignment, even an empty one. A slow start under load
         * would otherwise join after the others consumed everything. */
        for (int i = 0; i < INST; i++) {
                waitlog_t ready = {log[i], "run: ready"};
                cr_assert_eq(tu_wait_until(has_line, &ready, 60000), 0,
                             "instance %d not ready (see %s)", i, log[i]);
        }
        snprintf(lg, sizeof lg, "%s/load.log", broker.dir);
        cr_assert_eq(tu_load(conf[0], fixture, "jsonl", lg), 0,
                     "intentd load failed (see %s)", lg);

        rd_kafka_t *rk = tu_consumer_new(broker.bootstrap, "modelsync-test",
                                         "intentd.predictions");
        tally_t t = {.expected = expected};
        tu_idset_init(&t.ids, (size_t)expected * 2);
        tu_collect_predictions(rk, 120000, on_prediction, &t);
        tu_consumer_destroy(rk);
        tu_idset_free(&t.ids);
        cr_expect_eq(t.got, expected, "%ld of %ld events have a prediction",
                     t.got, expected);
        /* The last predictions can come before any change reached another
         * instance: the first stop would then race the exchange. Each
         * instance's progress line counts what it merged so far. */
        merged_t mw = {log};
        cr_expect_eq(tu_wait_until(some_merged, &mw, 60000), 0,
                     "no instance merged another's change while running");

        long merged = 0, published = 0;
        for (int i = 0; i < INST; i++) {
                int rc = tu_stop(pid[i], 60000);
                cr_expect_eq(rc, 0, "instance %d exited %d (see %s)", i, rc,
                             log[i]);
                long p = logged(log[i], "model sync: instance", "published ");
                long m = logged(log[i], "model sync: instance", "merged ");
                cr_expect_geq(p, 0, "instance %d logged no sync summary (%s)",
                              i, log[i]);
                waitlog_t coop = {log[i], "partition(s), COOPERATIVE"};
                if (cooperative)
                        cr_expect(has_line(&coop),
                                  "instance %d did not assign incrementally "
                                  "(see %s)",
                                  i, log[i]);
                published += p > 0 ? p : 0;
                merged += m > 0 ? m : 0;
        }
        cr_expect_gt(published, 0, "no instance published a change");
        cr_expect_gt(merged, 0, "no instance merged another's change");

        /* a fresh instance starts from the published model */
        pid_t late = tu_daemon_start(conf[INST], log[INST]);
        waitlog_t w = {log[INST], "started from the topic"};
        cr_expect_eq(tu_wait_until(has_line, &w, 60000), 0,
                     "the new instance did not catch up (see %s)", log[INST]);
        cr_expect_eq(tu_stop(late, 60000), 0);
        long adopted = logged(log[INST], "started from the topic",
                              "read, ");
        long changes = logged(log[INST], "started from the topic",
                              "adopted, ");
        cr_expect_gt(adopted + changes, 0,
                     "the new instance adopted %ld snapshot parts and "
                     "merged %ld changes (see %s)",
                     adopted, changes, log[INST]);
}

Test(modelsync, three_instances_exchange_changes_and_a_new_one_starts_from_them) {
        cooperative = 0;
        exchange();
}

/* The same with kafka.partition.assignment.strategy cooperative-sticky and
 * a kafka.group.instance.id per instance: incremental assignment (the
 * daemons log the protocol with each assignment). */
Test(modelsync, the_same_with_cooperative_sticky_and_static_membership) {
        cooperative = 1;
        exchange();
}
