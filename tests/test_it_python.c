/*
 * test_it_python.c - the prediction records decode with a real third-party
 * client: `intentd broker`, `intentd load` of a shipped fixture and
 * `intentd run` (Confluent framing, output.schema_id 7), then
 * tests/python/check_predictions.py reads the topic with
 * python3-confluent-kafka and decodes it with python3-avro against
 * config/prediction.avsc. Skipped when no python3 has both modules.
 *
 * The interpreter: $ITD_PYTHON if set, else `python3` on PATH, else
 * Debian's /usr/bin/python3 (where the python3-* packages install, and
 * which a pyenv or venv python3 on PATH would hide).
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define N_PART 3
#define OUTPUT_SCHEMA_ID 7

static tu_broker_t broker;
static char conf_path[512];
static pid_t run_pid = -1;

static void start_broker(void) {
        tu_broker_start(&broker, N_PART, NULL);
        tu_conf_write(broker.dir, broker.bootstrap, "intentd.yaml", conf_path, sizeof conf_path,
                      TU_KAFKA_FAST,
                      "output:\n"
                      "  schema_id: %d\n"
                      "metrics:\n"
                      "  listen: \"127.0.0.1:0\"\n"
                      "shutdown:\n"
                      "  timeout: 10s\n",
                      OUTPUT_SCHEMA_ID);
}

static void stop_all(void) {
        if (run_pid > 0 && tu_wait(run_pid, 0) == -1) {
                kill(run_pid, SIGKILL);
                waitpid(run_pid, NULL, 0);
        }
        tu_broker_stop(&broker);
}

TestSuite(python, .init = start_broker, .fini = stop_all, .timeout = 180);

Test(python, confluent_kafka_and_avro_decode_every_prediction) {
        char log_py[512];
        snprintf(log_py, sizeof log_py, "%s/python.log", broker.dir);
        char **py = tu_find_python("confluent_kafka, avro.io, avro.schema",
                                    log_py);
        if (!py)
                cr_skip_test("no python3 with confluent_kafka and avro "
                             "(apt install python3-confluent-kafka "
                             "python3-avro)");

        char fixture[512], schema[512], script[512], log_load[512],
            log_run[512];
        tu_src("tests/fixtures/events_small.jsonl", fixture, sizeof fixture);
        tu_src("config/prediction.avsc", schema, sizeof schema);
        long expected = tu_count_lines(fixture);

        snprintf(log_load, sizeof log_load, "%s/load.log", broker.dir);
        cr_assert_eq(tu_load(conf_path, fixture, "jsonl", log_load), 0,
                     "intentd load failed (see %s)", log_load);

        snprintf(log_run, sizeof log_run, "%s/run.log", broker.dir);
        run_pid = tu_daemon_start(conf_path, log_run);

        rd_kafka_t *rk = tu_client_new(broker.bootstrap);
        long stored = 0;
        for (int waited = 0; waited < 60000; waited += 250) {
                stored = tu_topic_records(rk, "intentd.predictions", N_PART);
                if (stored >= expected)
                        break;
                cr_assert_eq(tu_wait(run_pid, 0), -1,
                             "intentd run exited early (see %s)", log_run);
                tu_sleep_ms(250);
        }
        rd_kafka_destroy(rk);
        cr_assert_geq(stored, expected,
                      "only %ld of %ld predictions after 60 s (see %s)",
                      stored, expected, log_run);

        char expect_arg[32];
        snprintf(expect_arg, sizeof expect_arg, "%ld", expected);
        char *argv[12];
        tu_python_argv(argv, 12, py, "tests/python/check_predictions.py",
                       script, sizeof script, broker.bootstrap, schema,
                       "--expect", expect_arg, NULL);
        unlink(log_py);
        int rc = tu_run(argv, log_py, 120000);
        char *out = tu_read_file(log_py);
        printf("check_predictions.py: %s\n", out ? out : "(no output)");
        fflush(stdout);
        cr_expect_eq(rc, 0, "check_predictions.py exited %d: %s", rc,
                     out ? out : "");
        cr_expect(out && strstr(out, "confluent:7"),
                  "records not seen with the Confluent header (id 7)");
        free(out);

        kill(run_pid, SIGTERM);
        cr_expect_eq(tu_wait(run_pid, 30000), 0, "intentd run exit");
        run_pid = -1;
}
