/*
 * test_it_skeleton.c - the walking skeleton end to end, as separate
 * processes: `intentd broker`, `intentd load` of a shipped fixture, and
 * `intentd run`; then a real consumer reads the prediction topic and checks
 * one prediction per event, the key and the schema.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/event.h"
#include "testutil.h"

static tu_broker_t broker;
static char conf_path[512];

static void start_broker(void) {
        tu_broker_start(&broker, 3, NULL);
        tu_conf_write(broker.dir, broker.bootstrap, "intentd.yaml", conf_path, sizeof conf_path,
                      TU_KAFKA_FAST,
                      "metrics:\n"
                      "  log.interval: 1s\n"
                      "  listen: \"127.0.0.1:0\"\n");
}

static void stop_broker(void) {
        tu_broker_stop(&broker);
}

/* Predictions read: one per event, keyed by their user, decodable. */
typedef struct tally_s {
        long expected, got, bad_key, bad_schema, dup;
        tu_idset_t ids;
} tally_t;

static int on_prediction(void *arg, const rd_kafka_message_t *m,
                         const itd_prediction_t *p) {
        tally_t *t = arg;
        if (!p) {
                t->bad_schema++;
                return 0;
        }
        if (m->key_len != strlen(p->user_id) ||
            memcmp(m->key, p->user_id, m->key_len) != 0)
                t->bad_key++;
        cr_expect(p->purchase_probability >= 0.0f &&
                  p->purchase_probability <= 1.0f);
        if (!tu_idset_add(&t->ids, p->prediction_id))
                t->dup++;
        return ++t->got >= t->expected;
}

TestSuite(skeleton, .init = start_broker, .fini = stop_broker, .timeout = 180);

Test(skeleton, publishes_one_prediction_per_event_keyed_by_user) {
        char fixture[512], log_load[512], log_run[512];
        tu_src("tests/fixtures/events_small.jsonl", fixture, sizeof fixture);
        long expected = tu_count_lines(fixture);
        cr_assert(expected > 100, "fixture too small: %ld", expected);

        snprintf(log_load, sizeof log_load, "%s/load.log", broker.dir);
        cr_assert_eq(tu_load(conf_path, fixture, "jsonl", log_load), 0,
                     "intentd load failed (see %s)", log_load);

        snprintf(log_run, sizeof log_run, "%s/run.log", broker.dir);
        pid_t run_pid = tu_daemon_start(conf_path, log_run);

        /* A real consumer of the prediction topic, from the beginning. */
        rd_kafka_t *rk = tu_consumer_new(broker.bootstrap, "skeleton-test",
                                         "intentd.predictions");
        tally_t t = {.expected = expected};
        tu_idset_init(&t.ids, (size_t)expected * 2);
        tu_collect_predictions(rk, 120000, on_prediction, &t);
        tu_consumer_destroy(rk);
        tu_idset_free(&t.ids);

        int rc = tu_stop(run_pid, 60000);
        cr_expect_eq(rc, 0, "intentd run exited %d on SIGTERM (see %s)", rc,
                     log_run);
        cr_expect_eq(t.bad_schema, 0, "%ld predictions did not decode",
                     t.bad_schema);
        cr_expect_eq(t.bad_key, 0, "%ld predictions keyed by another user",
                     t.bad_key);
        cr_expect_eq(t.dup, 0, "%ld duplicate prediction ids", t.dup);
        cr_expect_eq(t.got, expected,
                     "expected %ld predictions, got %ld (see %s)", expected,
                     t.got, log_run);
}

Test(skeleton, check_config_accepts_good_and_rejects_bad_files) {
        char bad[512], log[512];
        snprintf(log, sizeof log, "%s/check.log", broker.dir);
        char *good_argv[] = {ITD_BINARY, "check-config", conf_path, NULL};
        cr_expect_eq(tu_run(good_argv, log, 10000), 0);

        snprintf(bad, sizeof bad, "%s/bad.yaml", broker.dir);
        cr_assert_eq(tu_write_file(bad, "labels:\n  horizon: -5m\n"), 0);
        char *bad_argv[] = {ITD_BINARY, "check-config", bad, NULL};
        cr_expect_eq(tu_run(bad_argv, log, 10000), 1);
        char *text = tu_read_file(log);
        cr_assert(text);
        cr_expect(strstr(text, "bad.yaml:2:") != NULL,
                  "error does not name file:line: %s", text);
        cr_expect(strstr(text, "labels.horizon") != NULL,
                  "error does not name the key: %s", text);
        free(text);
}
