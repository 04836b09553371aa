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

static char dir[256], bs_path[512], conf_path[512], log_broker[512];
static pid_t broker_pid = -1, run_pid = -1;

static void start_broker(void) {
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(bs_path, sizeof bs_path, "%s/bootstrap", dir);
        snprintf(log_broker, sizeof log_broker, "%s/broker.log", dir);
        char parts[8];
        snprintf(parts, sizeof parts, "%d", N_PART);
        char *argv[] = {ITD_BINARY, "broker", "--partitions", parts,
                        "--bootstrap-file", bs_path, NULL};
        broker_pid = tu_spawn(argv, log_broker);
        cr_assert(broker_pid > 0);
        cr_assert_eq(tu_wait_file(bs_path, 10000), 0,
                     "broker wrote no bootstrap file (see %s)", log_broker);
        char *bs = tu_read_file(bs_path);
        cr_assert(bs);
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "kafka:\n"
                 "  bootstrap.servers: \"%s\"\n"
                 "  session.timeout.ms: 6000\n"
                 "  heartbeat.interval.ms: 500\n"
                 "output:\n"
                 "  schema_id: %d\n"
                 "metrics:\n"
                 "  listen: \"127.0.0.1:0\"\n"
                 "shutdown:\n"
                 "  timeout: 10s\n",
                 bs, OUTPUT_SCHEMA_ID);
        free(bs);
        snprintf(conf_path, sizeof conf_path, "%s/intentd.yaml", dir);
        cr_assert_eq(tu_write_file(conf_path, yaml), 0);
}

static void stop_all(void) {
        if (run_pid > 0 && tu_wait(run_pid, 0) == -1) {
                kill(run_pid, SIGKILL);
                waitpid(run_pid, NULL, 0);
        }
        if (broker_pid > 0) {
                kill(broker_pid, SIGTERM);
                tu_wait(broker_pid, 5000);
        }
}

/* argv prefix of a python3 that imports both client libraries, or NULL. */
static char **find_python(char *log) {
        static char *cands[][2] = {{"/usr/bin/env", NULL},
                                   {"/usr/bin/env", "python3"},
                                   {"/usr/bin/python3", NULL}};
        cands[0][1] = getenv("ITD_PYTHON");
        for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
                if (i == 0 && !cands[0][1])
                        continue;
                char *argv[6] = {cands[i][0]};
                size_t k = 1;
                if (cands[i][1])
                        argv[k++] = cands[i][1];
                argv[k++] = "-c";
                argv[k++] = "import confluent_kafka, avro.io, avro.schema";
                argv[k] = NULL;
                if (tu_run(argv, log, 30000) == 0)
                        return cands[i];
        }
        return NULL;
}

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

/* Records in the prediction topic now (sum of high watermarks). */
static long predictions_stored(rd_kafka_t *rk) {
        long total = 0;
        for (int32_t p = 0; p < N_PART; p++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, "intentd.predictions",
                                                     p, &lo, &hi, 5000) == 0)
                        total += (long)hi;
        }
        return total;
}

TestSuite(python, .init = start_broker, .fini = stop_all, .timeout = 180);

Test(python, confluent_kafka_and_avro_decode_every_prediction) {
        char log_py[512];
        snprintf(log_py, sizeof log_py, "%s/python.log", dir);
        char **py = find_python(log_py);
        if (!py)
                cr_skip_test("no python3 with confluent_kafka and avro "
                             "(apt install python3-confluent-kafka "
                             "python3-avro)");

        char fixture[512], schema[512], script[512], log_load[512],
            log_run[512];
        tu_src("tests/fixtures/events_small.jsonl", fixture, sizeof fixture);
        tu_src("config/prediction.avsc", schema, sizeof schema);
        tu_src("tests/python/check_predictions.py", script, sizeof script);
        long expected = count_lines(fixture);

        snprintf(log_load, sizeof log_load, "%s/load.log", dir);
        char *load_argv[] = {ITD_BINARY, "load", "--config", conf_path,
                             "--input", fixture, "--format", "jsonl", NULL};
        cr_assert_eq(tu_run(load_argv, log_load, 60000), 0,
                     "intentd load failed (see %s)", log_load);

        snprintf(log_run, sizeof log_run, "%s/run.log", dir);
        char *run_argv[] = {ITD_BINARY, "run", "--config", conf_path, NULL};
        run_pid = tu_spawn(run_argv, log_run);
        cr_assert(run_pid > 0);

        char *bs = tu_read_file(bs_path);
        cr_assert(bs);
        char err[256];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_conf_set(kc, "bootstrap.servers", bs, err, sizeof err);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        cr_assert(rk, "%s", err);
        long stored = 0;
        for (int waited = 0; waited < 60000; waited += 250) {
                stored = predictions_stored(rk);
                if (stored >= expected)
                        break;
                cr_assert_eq(tu_wait(run_pid, 0), -1,
                             "intentd run exited early (see %s)", log_run);
                usleep(250 * 1000);
        }
        rd_kafka_destroy(rk);
        cr_assert_geq(stored, expected,
                      "only %ld of %ld predictions after 60 s (see %s)",
                      stored, expected, log_run);

        char expect_arg[32];
        snprintf(expect_arg, sizeof expect_arg, "%ld", expected);
        char *argv[12];
        size_t k = 0;
        argv[k++] = py[0];
        if (py[1])
                argv[k++] = py[1];
        argv[k++] = script;
        argv[k++] = bs;
        argv[k++] = schema;
        argv[k++] = "--expect";
        argv[k++] = expect_arg;
        argv[k] = NULL;
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
        free(bs);

        kill(run_pid, SIGTERM);
        cr_expect_eq(tu_wait(run_pid, 30000), 0, "intentd run exit");
        run_pid = -1;
}
