/*
 * test_it_registry_out.c - intentd's outputs through a schema registry,
 * read by a third-party client: `intentd broker`, a registry stand-in
 * (tests/python/registry_standin.py), `intentd load` (registers
 * config/event.avsc under intentd.events-value and frames the events with
 * its id) and `intentd run` (registers the prediction and trigger schemas
 * under their topics' subjects, frames each topic with its own id, and
 * reads the events back through the same registry); then
 * tests/python/check_registry.py decodes all three topics with
 * confluent-kafka's registry Avro deserializer and checks every field.
 * A registry that refuses a subject stops `intentd run` with exit 78 and a
 * message naming it.
 *
 * The events are tests/fixtures/events_small.jsonl moved in time to end a
 * minute ago, so the wall-clock staleness guard (triggers.max_event_age)
 * lets their triggers through. Skipped without a python3 that has
 * confluent_kafka, avro and requests (Debian: python3-confluent-kafka
 * python3-avro python3-requests).
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define N_PART 3
#define MAX_AGE_MS "2592000000" /* triggers.max_event_age: 30 days */

static tu_broker_t broker;
static const char *dir; /* broker.dir */
static pid_t run_pid = -1, reg_pid = -1;

static void start_broker(void) {
        tu_broker_start(&broker, N_PART, NULL);
        dir = broker.dir;
}

static void kill_wait(pid_t *pid) {
        if (*pid > 0 && tu_wait(*pid, 0) == -1) {
                kill(*pid, SIGKILL);
                waitpid(*pid, NULL, 0);
        }
        *pid = -1;
}

static void stop_all(void) {
        kill_wait(&run_pid);
        kill_wait(&reg_pid);
        tu_broker_stop(&broker);
}

/* Starts the stand-in (extra: NULL-terminated options); returns its URL. */
static char *start_registry(char **py, const char *name, char **extra) {
        char script[512], port_file[512], log[512], reqlog[512];
        tu_src("tests/python/registry_standin.py", script, sizeof script);
        snprintf(port_file, sizeof port_file, "%s/%s.port", dir, name);
        snprintf(log, sizeof log, "%s/%s.log", dir, name);
        snprintf(reqlog, sizeof reqlog, "%s/%s.requests", dir, name);
        char *argv[16];
        size_t k = 0;
        argv[k++] = py[0];
        if (py[1])
                argv[k++] = py[1];
        argv[k++] = script;
        argv[k++] = port_file;
        argv[k++] = "--log";
        argv[k++] = reqlog;
        for (size_t i = 0; extra && extra[i]; i++)
                argv[k++] = extra[i];
        argv[k] = NULL;
        reg_pid = tu_spawn(argv, log);
        cr_assert(reg_pid > 0);
        cr_assert_eq(tu_wait_file(port_file, 20000), 0,
                     "registry stand-in did not start (see %s)", log);
        char *port = tu_read_file(port_file);
        char *url = malloc(64);
        snprintf(url, 64, "http://127.0.0.1:%s", port);
        free(port);
        return url;
}

static void write_conf(const char *name, char *path, size_t cap,
                       const char *url) {
        tu_conf_write(broker.dir, broker.bootstrap, name, path, cap,
                      TU_KAFKA_FAST,
                      "input:\n"
                      "  framing: confluent\n"
                      "  schema_registry.url: \"%s\"\n"
                      "output:\n"
                      "  schema_registry.url: \"%s\"\n"
                      "triggers:\n"
                      "  rule: absolute\n"
                      "  enter: 0.0001\n"
                      "  exit: 0.00005\n"
                      "  max_event_age: " MAX_AGE_MS "\n"
                      "metrics:\n"
                      "  listen: \"\"\n"
                      "shutdown:\n"
                      "  timeout: 10s\n",
                      url, url);
}

/* events_small.jsonl with every ts moved so the last is a minute ago;
 * returns the line count. */
static long shifted_events(const char *out_path) {
        char src[512];
        tu_src("tests/fixtures/events_small.jsonl", src, sizeof src);
        FILE *in = fopen(src, "r"), *out = fopen(out_path, "w");
        cr_assert(in && out);
        char line[4096];
        long long last = 0;
        while (fgets(line, sizeof line, in)) {
                const char *t = strstr(line, "\"ts\":");
                cr_assert(t, "fixture line without ts: %s", line);
                long long ts = atoll(t + 5);
                if (ts > last)
                        last = ts;
        }
        struct timeval tv;
        gettimeofday(&tv, NULL);
        long long now = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
        long long shift = now - 60000 - last;
        rewind(in);
        long n = 0;
        while (fgets(line, sizeof line, in)) {
                char *t = strstr(line, "\"ts\":");
                long long ts = atoll(t + 5);
                char *end = t + 5;
                while (*end >= '0' && *end <= '9')
                        end++;
                *t = '\0';
                fprintf(out, "%s\"ts\":%lld%s", line, ts + shift, end);
                n++;
        }
        fclose(in);
        cr_assert_eq(fclose(out), 0);
        return n;
}

TestSuite(registry_out, .init = start_broker, .fini = stop_all,
          .timeout = 240);

Test(registry_out, a_third_party_client_reads_every_output_by_its_ids) {
        char log_py[512];
        snprintf(log_py, sizeof log_py, "%s/python.log", dir);
        char **py = tu_find_python("confluent_kafka.avro, avro.io, requests",
                                    log_py);
        if (!py)
                cr_skip_test("no python3 with confluent_kafka, avro and "
                             "requests (apt install python3-confluent-kafka "
                             "python3-avro python3-requests)");
        char *url = start_registry(py, "registry", NULL);
        char conf_path[512], events[512], log_load[512], log_run[512];
        write_conf("intentd.yaml", conf_path, sizeof conf_path, url);
        snprintf(events, sizeof events, "%s/events.jsonl", dir);
        long expected = shifted_events(events);

        snprintf(log_load, sizeof log_load, "%s/load.log", dir);
        cr_assert_eq(tu_load(conf_path, events, "jsonl", log_load), 0,
                     "intentd load failed (see %s)", log_load);

        snprintf(log_run, sizeof log_run, "%s/run.log", dir);
        run_pid = tu_daemon_start(conf_path, log_run);

        rd_kafka_t *rk = tu_client_new(broker.bootstrap);
        long preds = 0, trigs = 0;
        for (int waited = 0; waited < 90000; waited += 250) {
                preds = tu_topic_records(rk, "intentd.predictions", N_PART);
                trigs = tu_topic_records(rk, "intentd.triggers", N_PART);
                if (preds >= expected && trigs > 0)
                        break;
                cr_assert_eq(tu_wait(run_pid, 0), -1,
                             "intentd run exited early (see %s)", log_run);
                tu_sleep_ms(250);
        }
        rd_kafka_destroy(rk);
        cr_assert_geq(preds, expected,
                      "only %ld of %ld predictions after 90 s (see %s)",
                      preds, expected, log_run);
        cr_assert_gt(trigs, 0, "no trigger record (see %s)", log_run);
        kill(run_pid, SIGTERM);
        cr_expect_eq(tu_wait(run_pid, 30000), 0, "intentd run exit");
        run_pid = -1;

        char script[512];
        char *argv[16];
        tu_python_argv(argv, 16, py, "tests/python/check_registry.py",
                       script, sizeof script, broker.bootstrap, url, events,
                       "--max-age-ms", MAX_AGE_MS, NULL);
        unlink(log_py);
        int rc = tu_run(argv, log_py, 180000);
        char *out = tu_read_file(log_py);
        printf("check_registry.py: %s\n", out ? out : "(no output)");
        fflush(stdout);
        cr_expect_eq(rc, 0, "check_registry.py exited %d: %s", rc,
                     out ? out : "");
        free(out);

        /* What intentd asked the registry: POSTs with the registry's
         * content type, to the three subjects of the topic-name
         * strategy. */
        char reqlog[512];
        snprintf(reqlog, sizeof reqlog, "%s/registry.requests", dir);
        char *req = tu_read_file(reqlog);
        cr_assert(req);
        const char *subjects[] = {"intentd.events-value",
                                  "intentd.predictions-value",
                                  "intentd.triggers-value"};
        for (size_t i = 0; i < 3; i++) {
                char want[200];
                snprintf(want, sizeof want,
                         "\"method\": \"POST\", \"path\": "
                         "\"/subjects/%s/versions\", \"content_type\": "
                         "\"application/vnd.schemaregistry.v1+json\", "
                         "\"status\": 200",
                         subjects[i]);
                cr_expect(strstr(req, want), "no registration of %s in %s",
                          subjects[i], reqlog);
        }
        free(req);
        free(url);
}

Test(registry_out, a_refused_subject_stops_run_with_exit_78) {
        char log_py[512];
        snprintf(log_py, sizeof log_py, "%s/python.log", dir);
        char **py = tu_find_python("confluent_kafka.avro, avro.io, requests",
                                    log_py);
        if (!py)
                cr_skip_test("no python3 with confluent_kafka, avro and "
                             "requests");
        char *extra[] = {"--refuse", "intentd.triggers-value", NULL};
        char *url = start_registry(py, "refusing", extra);
        char conf_path[512], log_run[512];
        write_conf("refused.yaml", conf_path, sizeof conf_path, url);
        snprintf(log_run, sizeof log_run, "%s/refused.log", dir);
        char *run_argv[] = {ITD_BINARY, "run", "--config", conf_path, NULL};
        int rc = tu_run(run_argv, log_run, 60000);
        char *out = tu_read_file(log_run);
        cr_expect_eq(rc, 78, "intentd run exited %d, not 78: %s", rc,
                     out ? out : "");
        cr_expect(out && strstr(out, "intentd.triggers-value") &&
                      strstr(out, "409"),
                  "the error names the subject and the refusal: %s",
                  out ? out : "");
        free(out);
        free(url);
}
