/*
 * test_it_fatal.c - a fatal librdkafka error stops `intentd run` (run.h):
 * logged once, a clean shutdown, a non-zero exit so systemd restarts it.
 * The broker is a mock cluster in this process, so the test can make it
 * refuse the idempotent producer's InitProducerId with
 * CLUSTER_AUTHORIZATION_FAILED, which librdkafka treats as fatal.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Kafka protocol ApiKey of InitProducerId. */
#define API_INIT_PRODUCER_ID 22

Test(fatal, a_fatal_kafka_error_stops_the_daemon_non_zero, .timeout = 120) {
        char err[512], dir[256], conf_path[512], log_run[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_conf_set(kc, "log_level", "3", err, sizeof err);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        cr_assert_not_null(rk, "%s", err);
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
        cr_assert_not_null(mc);
        static const char *const topics[] = {
            "intentd.events", "intentd.predictions", "intentd.dead_letter",
            "intentd.triggers"};
        for (size_t i = 0; i < 4; i++)
                cr_assert_eq(rd_kafka_mock_topic_create(mc, topics[i], 1, 1),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_resp_err_t refuse[4];
        for (size_t i = 0; i < 4; i++)
                refuse[i] = RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        rd_kafka_mock_push_request_errors_array(mc, API_INIT_PRODUCER_ID, 4,
                                                refuse);

        cr_assert(tu_tmpdir(dir, sizeof dir));
        tu_conf_write(dir, rd_kafka_mock_cluster_bootstraps(mc),
                      "intentd.yaml", conf_path, sizeof conf_path,
                      TU_KAFKA_FAST,
                      "metrics:\n"
                      "  listen: \"\"\n"
                      "shutdown.timeout: 30s\n");
        snprintf(log_run, sizeof log_run, "%s/run.log", dir);
        pid_t pid = tu_daemon_start(conf_path, log_run);

        /* Well within shutdown.timeout: a fatal producer has nothing left
         * to flush. */
        int rc = tu_wait(pid, 25000);
        if (rc == -1) {
                kill(pid, SIGKILL);
                tu_wait(pid, 5000);
        }
        char *text = tu_read_file(log_run);
        cr_assert_not_null(text);
        cr_expect_neq(rc, -1, "still running 25 s after a fatal error (see "
                      "%s)", log_run);
        cr_expect(rc > 0 && rc < 128, "exit status %d, want a non-zero exit "
                  "(see %s)", rc, log_run);
        cr_expect_eq(tu_count_str(text, "fatal error in the Kafka producer"),
                     1,
                     "the fatal error is not logged exactly once:\n%s", text);
        cr_expect(strstr(text, "CLUSTER_AUTHORIZATION_FAILED"),
                  "the cause is not named:\n%s", text);
        free(text);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
}
