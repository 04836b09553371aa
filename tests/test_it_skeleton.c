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

static char dir[256], bs_path[512], conf_path[512], log_broker[512];
static pid_t broker_pid;

static void start_broker(void) {
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(bs_path, sizeof bs_path, "%s/bootstrap", dir);
        snprintf(log_broker, sizeof log_broker, "%s/broker.log", dir);
        char *argv[] = {ITD_BINARY, "broker", "--partitions", "3",
                        "--bootstrap-file", bs_path, NULL};
        broker_pid = tu_spawn(argv, log_broker);
        cr_assert(broker_pid > 0);
        cr_assert_eq(tu_wait_file(bs_path, 10000), 0,
                     "broker wrote no bootstrap file");
        char *bs = tu_read_file(bs_path);
        cr_assert(bs);
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "kafka:\n"
                 "  bootstrap.servers: \"%s\"\n"
                 "  session.timeout.ms: 6000\n"
                 "  heartbeat.interval.ms: 500\n"
                 "metrics:\n"
                 "  log.interval: 1s\n"
                 "  listen: \"127.0.0.1:0\"\n",
                 bs);
        free(bs);
        snprintf(conf_path, sizeof conf_path, "%s/intentd.yaml", dir);
        cr_assert_eq(tu_write_file(conf_path, yaml), 0);
}

static void stop_broker(void) {
        if (broker_pid > 0) {
                kill(broker_pid, SIGTERM);
                tu_wait(broker_pid, 5000);
        }
}

/* Counts the lines of a fixture: one event per line. */
static long count_lines(const char *path) {
        FILE *f = fopen(path, "r");
        cr_assert(f, "cannot open %s", path);
        long n = 0;
        int c, last = '\n';
        while ((c = fgetc(f)) != EOF) {
                if (c == '\n')
                        n++;
                last = c;
        }
        if (last != '\n')
                n++;
        fclose(f);
        return n;
}

TestSuite(skeleton, .init = start_broker, .fini = stop_broker, .timeout = 180);

Test(skeleton, publishes_one_prediction_per_event_keyed_by_user) {
        char fixture[512], log_load[512], log_run[512];
        tu_src("tests/fixtures/events_small.jsonl", fixture, sizeof fixture);
        long expected = count_lines(fixture);
        cr_assert(expected > 100, "fixture too small: %ld", expected);

        snprintf(log_load, sizeof log_load, "%s/load.log", dir);
        char *load_argv[] = {ITD_BINARY, "load", "--config", conf_path,
                             "--input", fixture, "--format", "jsonl", NULL};
        cr_assert_eq(tu_run(load_argv, log_load, 60000), 0,
                     "intentd load failed (see %s)", log_load);

        snprintf(log_run, sizeof log_run, "%s/run.log", dir);
        char *run_argv[] = {ITD_BINARY, "run", "--config", conf_path, NULL};
        pid_t run_pid = tu_spawn(run_argv, log_run);
        cr_assert(run_pid > 0);

        /* A real consumer of the prediction topic, from the beginning. */
        char *bs = tu_read_file(bs_path);
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(kc, "bootstrap.servers", bs, err,
                                       sizeof err), RD_KAFKA_CONF_OK);
        free(bs);
        rd_kafka_conf_set(kc, "group.id", "skeleton-test", err, sizeof err);
        rd_kafka_conf_set(kc, "auto.offset.reset", "earliest", err, sizeof err);
        rd_kafka_conf_set(kc, "session.timeout.ms", "6000", err, sizeof err);
        rd_kafka_conf_set(kc, "heartbeat.interval.ms", "500", err, sizeof err);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
        cr_assert(rk, "consumer: %s", err);
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *sub =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, "intentd.predictions",
                                          RD_KAFKA_PARTITION_UA);
        cr_assert_eq(rd_kafka_subscribe(rk, sub), 0);
        rd_kafka_topic_partition_list_destroy(sub);

        itd_codec_t *codec = itd_codec_new(err, sizeof err);
        cr_assert(codec, "%s", err);
        /* prediction ids seen, to check there is exactly one per event */
        size_t cap = (size_t)expected * 2;
        char **ids = calloc(cap, sizeof *ids);
        long got = 0, bad_key = 0, bad_schema = 0, dup = 0;
        for (int waited = 0; got < expected && waited < 120000;) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (!m) {
                        waited += 200;
                        continue;
                }
                if (m->err) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                itd_prediction_t p;
                if (itd_codec_decode_prediction(codec, m->payload, m->len,
                                                ITD_FRAMING_AUTO, &p, err,
                                                sizeof err) != ITD_OK) {
                        bad_schema++;
                } else {
                        if (m->key_len != strlen(p.user_id) ||
                            memcmp(m->key, p.user_id, m->key_len) != 0)
                                bad_key++;
                        cr_expect(p.purchase_probability >= 0.0f &&
                                  p.purchase_probability <= 1.0f);
                        /* open-addressing set of prediction ids */
                        uint64_t h = itd_hash_str(p.prediction_id, 0) % cap;
                        while (ids[h] && strcmp(ids[h], p.prediction_id))
                                h = (h + 1) % cap;
                        if (ids[h])
                                dup++;
                        else
                                ids[h] = strdup(p.prediction_id);
                        got++;
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        itd_codec_destroy(codec);
        for (size_t i = 0; i < cap; i++)
                free(ids[i]);
        free(ids);

        kill(run_pid, SIGTERM);
        int rc = tu_wait(run_pid, 60000);
        cr_expect_eq(rc, 0, "intentd run exited %d on SIGTERM (see %s)", rc,
                     log_run);
        cr_expect_eq(bad_schema, 0, "%ld predictions did not decode", bad_schema);
        cr_expect_eq(bad_key, 0, "%ld predictions keyed by another user", bad_key);
        cr_expect_eq(dup, 0, "%ld duplicate prediction ids", dup);
        cr_expect_eq(got, expected, "expected %ld predictions, got %ld (see %s)",
                     expected, got, log_run);
}

Test(skeleton, check_config_accepts_good_and_rejects_bad_files) {
        char bad[512], log[512];
        snprintf(log, sizeof log, "%s/check.log", dir);
        char *good_argv[] = {ITD_BINARY, "check-config", conf_path, NULL};
        cr_expect_eq(tu_run(good_argv, log, 10000), 0);

        snprintf(bad, sizeof bad, "%s/bad.yaml", dir);
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
