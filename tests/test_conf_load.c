/*
 * test_conf_load.c - configuration files: YAML forms (nested, dotted,
 * mixed), kafka pass-through, keys set twice, where each option was set,
 * SIGHUP reload; durations; that the committed generated docs are fresh;
 * what run refuses.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "conf_int.h"
#include "conf_parts.h"
#include "intentd/engine.h"
#include "intentd/codec.h"
#include "intentd/conf.h"
#include "intentd/input.h"
#include "intentd/log.h"
#include "intentd/mlp.h"
#include "intentd/model.h"
#include "testutil.h"
#include "conf_helpers.h"

/* Every option in the table, for the checks that must cover all of them. */
static const char *const all_options[] = {
    "topics.events",          "topics.predictions",
    "topics.triggers",        "topics.dead_letter",
    "input.format",           "input.framing",
    "output.schema_id",       "windows.spans",
    "windows.allowed_lateness", "session.gap",
    "state.idle_ttl",         "state.max_users",
    "labels.horizon",         "labels.max_pending",
    "model.type",             "model.hidden",
    "model.embedding.buckets", "model.embedding.dim",
    "model.optimizer",        "model.learning.rate",
    "model.l2",               "model.batch.size",
    "model.seed",             "model.loss.weight.next",
    "predict.threshold",      "metrics.log.interval",
    "log.level",              "shutdown.timeout",
};

#define N_OPTIONS (sizeof all_options / sizeof all_options[0])

static itd_conf_t *load_fixture(const char *name) {
        char path[1024], errstr[512];
        itd_conf_t *conf = itd_conf_new();
        itd_err_t err =
            itd_conf_load(conf, fixture(name, path, sizeof path), errstr,
                          sizeof errstr);
        cr_assert_eq(err, ITD_OK, "%s: %s", name, errstr);
        return conf;
}

/* Whole file as a string (trailing newline kept, unlike tu_read_file). */
static char *slurp(const char *path) {
        FILE *fp = fopen(path, "rb");
        if (!fp)
                return NULL;
        char *buf = NULL;
        size_t len = 0, cap = 0, n;
        char chunk[4096];
        while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
                if (len + n + 1 > cap) {
                        cap = 2 * (len + n + 1);
                        buf = realloc(buf, cap);
                }
                memcpy(buf + len, chunk, n);
                len += n;
        }
        fclose(fp);
        if (!buf)
                buf = calloc(1, 1);
        else
                buf[len] = '\0';
        return buf;
}

static char *generated(void (*write)(FILE *)) {
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        cr_assert_not_null(out);
        write(out);
        fclose(out);
        return text;
}

Test(conf, nested_dotted_and_mixed_keys_load_the_same_values) {
        itd_conf_t *nested = load_fixture("conf_nested.yaml");
        itd_conf_t *dotted = load_fixture("conf_dotted.yaml");
        itd_conf_t *mixed = load_fixture("conf_mixed.yaml");

        cr_expect_str_eq(nested->topic_events, "shop.events");
        cr_expect_str_eq(nested->topic_dead_letter, "shop.dlq");
        cr_expect_eq(nested->input_format, ITD_INPUT_JSON);
        cr_expect_eq(nested->input_framing, ITD_FRAMING_CONFLUENT);
        cr_expect_eq(nested->output_schema_id, 17);
        cr_expect_eq(nested->n_windows, 3);
        cr_expect_eq(nested->windows_ms[0], 60000);
        cr_expect_eq(nested->windows_ms[1], 900000);
        cr_expect_eq(nested->windows_ms[2], 7200000);
        cr_expect_eq(nested->windows_allowed_lateness_ms, 60000);
        cr_expect_eq(nested->state_idle_ttl_ms, 2LL * 24 * 3600000);
        cr_expect_eq(nested->state_max_users, 1000);
        cr_expect_eq(nested->labels_horizon_ms, 7200000);
        cr_expect_eq(nested->model_type, ITD_MODEL_KIND_LOGISTIC);
        cr_expect_eq(nested->n_model_hidden, 3);
        cr_expect_eq(nested->model_hidden[2], 8);
        cr_expect_eq(nested->model_embedding_buckets, 1024);
        cr_expect_eq(nested->model_embedding_dim, 4);
        cr_expect_eq(nested->model_optimizer, ITD_OPT_ADAGRAD);
        cr_expect_float_eq(nested->model_learning_rate, 0.05, EXACT_EPS);
        cr_expect_eq(nested->model_batch_size, 32);
        cr_expect_float_eq(nested->model_loss_weight_next, 0.5, EXACT_EPS);
        cr_expect_eq(nested->metrics_log_interval_ms, 60000);
        cr_expect_eq(nested->log_level, ITD_LOG_DEBUG);
        cr_expect_eq(nested->shutdown_timeout_ms, 120000);

        expect_conf_eq(dotted, nested);
        expect_conf_eq(mixed, nested);
        itd_conf_destroy(nested);
        itd_conf_destroy(dotted);
        itd_conf_destroy(mixed);
}

Test(conf, passes_kafka_keys_through_in_file_order) {
        static const char *const keys[] = {"client.id", "enable.auto.commit",
                                           "group.id", "bootstrap.servers",
                                           "linger.ms"};
        static const char *const values[] = {"intentd-test", "false",
                                             "second",
                                             "a.example:9092,b.example:9092",
                                             "5"};
        itd_conf_t *conf = load_fixture("conf_kafka.yaml");
        cr_assert_eq(conf->n_kafka, 5);
        for (size_t i = 0; i < 5; i++) {
                cr_expect_str_eq(conf->kafka_keys[i], keys[i], "entry %zu", i);
                cr_expect_str_eq(conf->kafka_values[i], values[i], "entry %zu",
                                 i);
        }
        cr_expect_str_eq(conf->topic_events, "shop.events");
        itd_conf_destroy(conf);
}

/* A file that sets one option twice has no meaning an operator can rely
 * on; the shipped config/intentd.yaml itself once had `output:` twice. */
Test(conf, rejects_a_key_set_twice_naming_both_places) {
        static const struct {
                const char *text;
                const char *want; /* in the error, after "file:" */
        } rows[] = {
            {"output:\n  schema_id: 3\nlog.level: info\noutput:\n"
             "  max_in_flight: 5000\n",
             ":4:1: output: duplicate key; first at line 1, column 1"},
            {"model.learning.rate: 0.01\nmodel:\n  learning.rate: 0.02\n",
             ":3:3: model.learning.rate: set twice in this file; first at "
             "line 1, column 1"},
            {"model:\n  hidden: [8]\n  hidden: [16]\n",
             ":3:3: model.hidden: duplicate key; first at line 2, column 3"},
            {"kafka:\n  bootstrap.servers: a:1\n"
             "kafka.bootstrap: {servers: b:2}\n",
             ":3:19: kafka.bootstrap.servers: set twice in this file; first "
             "at line 2, column 3"},
            {"topics: {events: a}\ntopics.events: b\n",
             ":2:1: topics.events: set twice in this file; first at line 1, "
             "column 10"},
        };
        char dir[256], path[512], errstr[512];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/dup.yaml", dir);
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                cr_assert_eq(tu_write_file(path, rows[i].text), 0);
                itd_conf_t *conf = itd_conf_new();
                cr_expect_eq(itd_conf_load(conf, path, errstr,
                                           sizeof errstr),
                             ITD_ERR_CONF, "row %zu loaded", i);
                cr_expect(strstr(errstr, rows[i].want) != NULL,
                          "row %zu: %s", i, errstr);
                cr_expect(strncmp(errstr, path, strlen(path)) == 0,
                          "row %zu: %s", i, errstr);
                itd_conf_destroy(conf);
        }
}

/* itd_conf_where: the key's position for options from a file, "-o" for
 * overrides, NULL for defaults. */
Test(conf, remembers_where_each_option_was_set) {
        char dir[256], path[512], errstr[512];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/where.yaml", dir);
        cr_assert_eq(tu_write_file(path, "model:\n  hidden: [8]\n"
                                         "kafka:\n  acks: all\n"), 0);
        itd_conf_t *conf = itd_conf_new();
        cr_assert_eq(itd_conf_load(conf, path, errstr, sizeof errstr), ITD_OK,
                     "%s", errstr);
        char want[600];
        snprintf(want, sizeof want, "%s:2:3", path);
        cr_expect_str_eq(itd_conf_where(conf, "model.hidden"), want);
        snprintf(want, sizeof want, "%s:4:3", path);
        cr_expect_str_eq(itd_conf_where(conf, "kafka.acks"), want);
        cr_expect_null(itd_conf_where(conf, "model.l2"));
        itd_conf_note_override(conf, "model.l2");
        itd_conf_t *copy = itd_conf_dup(conf);
        cr_expect_str_eq(itd_conf_where(copy, "model.l2"), "-o");
        itd_conf_destroy(copy);
        itd_conf_destroy(conf);
}

Test(conf, set_stores_kafka_keys_without_the_prefix_after_librdkafka_checks) {
        char errstr[512];
        itd_conf_t *conf = itd_conf_new();
        cr_expect_eq(itd_conf_set(conf, "kafka.bootstrap.servers",
                                  "127.0.0.1:9092", errstr, sizeof errstr),
                     ITD_OK, "%s", errstr);
        cr_expect_eq(itd_conf_set(conf, "kafka.acks", "all", errstr,
                                  sizeof errstr),
                     ITD_OK, "%s", errstr);
        cr_expect_eq(itd_conf_set(conf, "kafka.bootstrap.servers",
                                  "10.0.0.1:9092", errstr, sizeof errstr),
                     ITD_OK, "%s", errstr);
        cr_assert_eq(conf->n_kafka, 2);
        cr_expect_str_eq(conf->kafka_keys[0], "bootstrap.servers");
        cr_expect_str_eq(conf->kafka_values[0], "10.0.0.1:9092");
        cr_expect_str_eq(conf->kafka_keys[1], "acks");

        cr_expect_eq(itd_conf_set(conf, "kafka.bootstrap.server", "x:1",
                                  errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strncmp(errstr, "kafka.bootstrap.server: ", 24) == 0, "%s",
                  errstr);
        cr_expect_eq(itd_conf_set(conf, "kafka.acks", "sometimes", errstr,
                                  sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect_eq(itd_conf_set(conf, "kafka.", "x", errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect_eq(conf->n_kafka, 2);
        itd_conf_destroy(conf);
}

Test(conf, reports_an_unknown_librdkafka_property_at_its_line) {
        char errstr[512];
        cr_assert_eq(load_bad("conf_bad_kafka.yaml", errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "conf_bad_kafka.yaml:3:21: "
                                 "kafka.bootstrap.server: librdkafka: "),
                  "%s", errstr);
}

Test(conf, an_empty_file_gives_every_default) {
        itd_conf_t *conf = load_fixture("conf_empty.yaml");
        expect_defaults(conf);
        itd_conf_destroy(conf);
}

Test(conf, a_missing_file_is_an_io_error_naming_the_file) {
        char errstr[512];
        itd_conf_t *conf = itd_conf_new();
        cr_expect_eq(itd_conf_load(conf, "/nonexistent/intentd.yaml", errstr,
                                   sizeof errstr),
                     ITD_ERR_IO);
        cr_expect(strstr(errstr, "/nonexistent/intentd.yaml: cannot open"),
                  "%s", errstr);
        itd_conf_destroy(conf);
}

Test(conf, a_failed_load_leaves_the_config_unchanged) {
        char path[1024], errstr[512];
        itd_conf_t *conf = itd_conf_new();
        /* The fixture sets topics.events on line 3, then fails on line 4. */
        cr_assert_eq(itd_conf_load(conf,
                                   fixture("conf_unknown_key.yaml", path,
                                           sizeof path),
                                   errstr, sizeof errstr),
                     ITD_ERR_CONF);
        expect_defaults(conf);
        itd_conf_destroy(conf);
}

Test(conf, reload_applies_only_the_reloadable_options) {
        itd_conf_t *conf = itd_conf_new();
        itd_conf_t *fresh = load_fixture("conf_nested.yaml");
        char errstr[512];
        cr_assert_eq(itd_conf_set(fresh, "kafka.acks", "all", errstr,
                                  sizeof errstr),
                     ITD_OK, "%s", errstr);
        char applied[512], restart[1024];
        size_t n = itd_conf_reload(conf, fresh, applied, sizeof applied,
                                   restart, sizeof restart);
        cr_expect_eq(n, 4, "applied: %s", applied);
        cr_expect_str_eq(applied, "model.learning.rate=0.05, "
                                  "predict.threshold=0.35, "
                                  "metrics.log.interval=1m, log.level=debug");
        cr_expect_float_eq(conf->model_learning_rate, 0.05, EXACT_EPS);
        cr_expect_float_eq(conf->predict_threshold, 0.35, EXACT_EPS);
        cr_expect_eq(conf->metrics_log_interval_ms, 60000);
        cr_expect_eq(conf->log_level, ITD_LOG_DEBUG);
        cr_expect_str_eq(conf->topic_events, "intentd.events");
        cr_expect_eq(conf->n_windows, 4);
        cr_expect_eq(conf->n_kafka, 0);
        cr_expect(strstr(restart, "topics.events") &&
                      strstr(restart, "windows.spans") &&
                      strstr(restart, "kafka.*") &&
                      !strstr(restart, "log.level"),
                  "%s", restart);

        /* A second reload of the same file changes nothing more. */
        n = itd_conf_reload(conf, fresh, applied, sizeof applied, NULL, 0);
        cr_expect_eq(n, 0);
        cr_expect_str_eq(applied, "");
        itd_conf_destroy(fresh);
        itd_conf_destroy(conf);
}

Test(duration, parses_every_unit_and_bare_milliseconds) {
        static const struct {
                const char *text;
                int64_t ms;
        } rows[] = {
            {"0", 0},           {"250", 250},          {"500ms", 500},
            {"10s", 10000},     {"30m", 1800000},      {"24h", 86400000},
            {"7d", 604800000},  {"0s", 0},             {"90m", 5400000},
            {"9223372036854775807", INT64_MAX},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                int64_t ms = -1;
                cr_expect_eq(itd_duration_parse(rows[i].text, &ms), ITD_OK,
                             "\"%s\"", rows[i].text);
                cr_expect_eq(ms, rows[i].ms, "\"%s\"", rows[i].text);
        }
}

Test(duration, rejects_malformed_and_overflowing_text) {
        static const char *const malformed[] = {
            "", "m", "-5s", "1.5h", "10 s", "10sec", "5w", " 5s", "5s ",
            "s5", "1h30m"};
        for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
                int64_t ms = 7;
                cr_expect_eq(itd_duration_parse(malformed[i], &ms),
                             ITD_ERR_PARSE, "\"%s\"", malformed[i]);
                cr_expect_eq(ms, 7, "\"%s\" wrote a value", malformed[i]);
        }
        int64_t ms;
        cr_expect_eq(itd_duration_parse("9223372036854775808", &ms),
                     ITD_ERR_RANGE);
        cr_expect_eq(itd_duration_parse("106751991167301d", &ms),
                     ITD_ERR_RANGE);
        cr_expect_eq(itd_duration_parse(NULL, &ms), ITD_ERR_ARG);
}

Test(duration, formats_with_the_shortest_exact_unit_and_round_trips) {
        static const struct {
                int64_t ms;
                const char *text;
        } rows[] = {
            {0, "0s"},          {1, "1ms"},         {999, "999ms"},
            {1000, "1s"},       {1500, "1500ms"},   {61000, "61s"},
            {1800000, "30m"},   {5400000, "90m"},   {3600000, "1h"},
            {86400000, "1d"},   {90000000, "25h"},  {604800000, "7d"},
            {INT64_MAX, "9223372036854775807ms"},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                char buf[32];
                cr_expect_str_eq(itd_duration_format(rows[i].ms, buf,
                                                     sizeof buf),
                                 rows[i].text);
                int64_t back = -1;
                cr_expect_eq(itd_duration_parse(buf, &back), ITD_OK, "%s", buf);
                cr_expect_eq(back, rows[i].ms, "%s", buf);
        }
}

Test(conf, generated_yaml_sets_every_option_to_its_default) {
        char dir[512], path[1024], errstr[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/intentd.yaml", dir);
        FILE *out = fopen(path, "w");
        cr_assert_not_null(out);
        itd_conf_write_yaml(out);
        fclose(out);
        /* Start from all non-defaults so an option missing from the file
         * shows up as a difference. */
        itd_conf_t *conf = load_fixture("conf_nested.yaml");
        cr_assert_eq(itd_conf_load(conf, path, errstr, sizeof errstr), ITD_OK,
                     "%s", errstr);
        expect_defaults(conf);
        itd_conf_destroy(conf);
}

Test(conf, committed_config_yaml_loads_to_the_defaults) {
        char path[1024], errstr[512];
        itd_conf_t *conf = load_fixture("conf_nested.yaml");
        cr_assert_eq(itd_conf_load(conf,
                                   tu_src("config/intentd.yaml", path,
                                          sizeof path),
                                   errstr, sizeof errstr),
                     ITD_OK, "%s", errstr);
        expect_defaults(conf);
        itd_conf_destroy(conf);
}

Test(conf, generated_docs_describe_every_option) {
        char *docs = generated(itd_conf_write_docs);
        char *yaml = generated(itd_conf_write_yaml);
        for (size_t i = 0; i < N_OPTIONS; i++) {
                char heading[128];
                snprintf(heading, sizeof heading, "### `%s`", all_options[i]);
                cr_expect(strstr(docs, heading), "docs lack %s", heading);
                const char *leaf = strrchr(all_options[i], '.') + 1;
                cr_expect(strstr(yaml, leaf), "yaml lacks %s", all_options[i]);
        }
        cr_expect(strstr(docs, "kafka"), "docs do not explain kafka.*");
        cr_expect(strstr(yaml, "# kafka:"), "yaml lacks the kafka example");
        free(docs);
        free(yaml);
}

Test(conf, committed_docs_and_config_match_the_option_table) {
        static const struct {
                const char *rel;
                void (*write)(FILE *);
        } files[] = {
            {"docs/CONFIGURATION.md", itd_conf_write_docs},
            {"config/intentd.yaml", itd_conf_write_yaml},
        };
        for (size_t i = 0; i < 2; i++) {
                char path[1024];
                char *committed =
                    slurp(tu_src(files[i].rel, path, sizeof path));
                char *now = generated(files[i].write);
                cr_expect_not_null(committed, "%s is missing: run `make docs`",
                                   files[i].rel);
                if (committed)
                        cr_expect_str_eq(committed, now,
                                         "%s is stale: run `make docs`",
                                         files[i].rel);
                free(committed);
                free(now);
        }
}

/* ---- what run refuses (itd_conf_check_run) --------------------------- */

/* The memory check's parameter count is the model's own: if the model's
 * layout changes, this fails and the estimate must follow. */
Test(conf, model_bytes_counts_the_parameters_the_model_allocates) {
        static const char *const rows[][2] = {
            {"model.type", "mlp"},
            {"model.wide.learning.rate", "0"},
            {"model.optimizer", "sgd"},
            {"model.embedding.dim", "0"},
            {"model.hidden", "32,16,8"},
            {"model.type", "logistic"},
        };
        itd_conf_t *conf = itd_conf_new();
        char errstr[512];
        cr_assert_eq(itd_conf_set(conf, "model.embedding.buckets", "4096",
                                  errstr, sizeof errstr), ITD_OK);
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                cr_assert_eq(itd_conf_set(conf, rows[i][0], rows[i][1],
                                          errstr, sizeof errstr),
                             ITD_OK, "%s", errstr);
                uint64_t np;
                uint64_t bytes = itd_conf_model_bytes(conf, &np);
                itd_engine_t *eng = itd_conf_new_engine(conf, errstr,
                                                   sizeof errstr);
                cr_assert(eng, "%s", errstr);
                cr_expect_eq(np, itd_model_n_params(itd_engine_model(eng)),
                             "after %s=%s", rows[i][0], rows[i][1]);
                cr_expect_gt(bytes, np * 4);
                itd_engine_destroy(eng);
        }
        itd_conf_destroy(conf);
}

/* Loads text (with brokers unless told otherwise) and runs the checks. */
static size_t run_checks(const char *text, char *out, size_t cap) {
        char dir[256], path[512], errstr[1024];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/c.yaml", dir);
        cr_assert_eq(tu_write_file(path, text), 0);
        itd_conf_t *conf = itd_conf_new();
        cr_assert_eq(itd_conf_load(conf, path, errstr, sizeof errstr), ITD_OK,
                     "%s", errstr);
        size_t n = itd_conf_check_run(conf, path, out, cap);
        itd_conf_destroy(conf);
        return n;
}

#define BROKERS "kafka: {bootstrap.servers: \"127.0.0.1:1\"}\n" \
                "checkpoint.dir: \"\"\n"

Test(conf, check_run_accepts_a_runnable_file) {
        char out[2048];
        cr_expect_eq(run_checks(BROKERS, out, sizeof out), 0, "%s", out);
}

Test(conf, check_run_refuses_a_file_without_brokers) {
        char out[2048];
        cr_expect_eq(run_checks("log.level: info\n", out, sizeof out), 1);
        cr_expect(strstr(out, "c.yaml: kafka.bootstrap.servers: not set; "
                              "intentd run refuses"), "%s", out);
        cr_expect_eq(run_checks("kafka:\n  bootstrap.servers: \"\"\n"
                                "checkpoint.dir: \"\"\n", out, sizeof out),
                     1);
        cr_expect(strstr(out, "c.yaml:2:3: kafka.bootstrap.servers: empty"),
                  "%s", out);
}

/* 16M rows x 128 floats x 3 tables is 25.8 GB of parameters alone; the
 * process here may use 2 GiB (RLIMIT_AS, set for this test's process). */
Test(conf, check_run_refuses_a_model_larger_than_memory) {
        TU_SKIP_UNDER_ASAN();
        struct rlimit rl = {.rlim_cur = (rlim_t)2 << 30,
                            .rlim_max = RLIM_INFINITY};
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
        char out[2048];
        cr_expect_eq(run_checks(BROKERS "model:\n  embedding.buckets: 16777216"
                                "\n  embedding.dim: 128\n",
                                out, sizeof out),
                     1);
        cr_expect(strstr(out, "c.yaml:4:3: model.embedding.buckets: the "
                              "model needs 103.1 GB"), "%s", out);
        cr_expect(strstr(out, "2.1 GB this process may use (RLIMIT_AS:"),
                  "%s", out);
        cr_expect_eq(run_checks(BROKERS, out, sizeof out), 0, "%s", out);
}

Test(conf, check_run_names_each_unusable_path) {
        char dir[256], file[512], text[2048], out[4096];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(file, sizeof file, "%s/a-file", dir);
        cr_assert_eq(tu_write_file(file, "x\n"), 0);
        snprintf(text, sizeof text,
                 "kafka:\n"
                 "  bootstrap.servers: \"127.0.0.1:1\"\n"
                 "  plugin.library.paths: \"%s/no-such-plugin\"\n"
                 "checkpoint.dir: \"%s/sub\"\n"
                 "input.schemas_dir: \"%s/no-such-dir\"\n",
                 dir, file, dir);
        cr_expect_eq(run_checks(text, out, sizeof out), 3, "%s", out);
        cr_expect(strstr(out, "c.yaml:3:3: kafka.plugin.library.paths: "
                              "librdkafka: "), "%s", out);
        cr_expect(strstr(out, "c.yaml:4:1: checkpoint.dir: "), "%s", out);
        cr_expect(strstr(out, "c.yaml:5:1: input.schemas_dir: "), "%s", out);
}

/* A registry that cannot be used is the registry's problem, whatever its
 * message holds: here the host name contains "schemas_dir". */
Test(conf, check_run_names_the_registry_not_the_folder) {
        char dir[256], text[2048], out[4096];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(text, sizeof text,
                 BROKERS
                 "input.schemas_dir: \"%s\"\n"
                 "input.schema_registry.url: "
                 "\"http://a:b@registry.schemas_dir.example/\"\n"
                 "input.schema_registry.basic_auth_user_info: \"c:d\"\n",
                 dir);
        cr_expect_eq(run_checks(text, out, sizeof out), 1, "%s", out);
        cr_expect(strstr(out, "c.yaml:4:1: input.schema_registry.url: "),
                  "%s", out);
        cr_expect_null(strstr(out, ": input.schemas_dir: "), "%s", out);
}

Test(conf, an_unparsable_metrics_address_fails_at_its_line) {
        static const char *const bad[] = {"localhost", "1.2.3.4:99999",
                                          "[::1]9464", ":port", "a:b:9"};
        char dir[256], path[512], text[256], errstr[512];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/m.yaml", dir);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                snprintf(text, sizeof text, "metrics:\n  listen: \"%s\"\n",
                         bad[i]);
                cr_assert_eq(tu_write_file(path, text), 0);
                itd_conf_t *conf = itd_conf_new();
                cr_expect_eq(itd_conf_load(conf, path, errstr, sizeof errstr),
                             ITD_ERR_CONF, "%s", bad[i]);
                cr_expect(strstr(errstr, "m.yaml:2:11: metrics.listen: "),
                          "%s: %s", bad[i], errstr);
                itd_conf_destroy(conf);
        }
        itd_conf_t *conf = itd_conf_new();
        cr_expect_eq(itd_conf_set(conf, "metrics.listen", "[::1]:0", errstr,
                                  sizeof errstr), ITD_OK, "%s", errstr);
        cr_expect_eq(itd_conf_set(conf, "metrics.listen", "", errstr,
                                  sizeof errstr), ITD_OK, "%s", errstr);
        itd_conf_destroy(conf);
}
