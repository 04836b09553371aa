/*
 * test_conf.c - the option table: defaults, range checks, YAML forms
 * (nested, dotted, mixed), kafka pass-through, error positions, durations,
 * SIGHUP reload, and that the committed generated docs are fresh.
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

/* Doubles below are parsed from the same decimal text on both sides or are
 * exact binary fractions, so they agree to the last bit; the tolerance only
 * keeps the assertion a float comparison. */
#define EXACT_EPS 1e-12

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

static const char *fixture(const char *name, char *buf, size_t cap) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/fixtures/%s", name);
        return tu_src(rel, buf, cap);
}

static itd_conf_t *load_fixture(const char *name) {
        char path[1024], errstr[512];
        itd_conf_t *conf = itd_conf_new();
        itd_err_t err =
            itd_conf_load(conf, fixture(name, path, sizeof path), errstr,
                          sizeof errstr);
        cr_assert_eq(err, ITD_OK, "%s: %s", name, errstr);
        return conf;
}

/* Loads a fixture that must fail; returns the error and fills errstr. */
static itd_err_t load_bad(const char *name, char *errstr, size_t cap) {
        char path[1024];
        itd_conf_t *conf = itd_conf_new();
        errstr[0] = '\0';
        itd_err_t err =
            itd_conf_load(conf, fixture(name, path, sizeof path), errstr, cap);
        itd_conf_destroy(conf);
        return err;
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

static void expect_conf_eq(const itd_conf_t *a, const itd_conf_t *b) {
        cr_expect_str_eq(a->topic_events, b->topic_events);
        cr_expect_str_eq(a->topic_predictions, b->topic_predictions);
        cr_expect_str_eq(a->topic_triggers, b->topic_triggers);
        cr_expect_str_eq(a->topic_dead_letter, b->topic_dead_letter);
        cr_expect_eq(a->input_format, b->input_format);
        cr_expect_eq(a->input_framing, b->input_framing);
        cr_expect_eq(a->output_schema_id, b->output_schema_id);
        cr_expect_eq(a->n_windows, b->n_windows);
        for (size_t i = 0; i < a->n_windows && i < ITD_CONF_LIST_MAX; i++)
                cr_expect_eq(a->windows_ms[i], b->windows_ms[i],
                             "windows_ms[%zu]", i);
        cr_expect_eq(a->windows_allowed_lateness_ms,
                     b->windows_allowed_lateness_ms);
        cr_expect_eq(a->session_gap_ms, b->session_gap_ms);
        cr_expect_eq(a->state_idle_ttl_ms, b->state_idle_ttl_ms);
        cr_expect_eq(a->state_max_users, b->state_max_users);
        cr_expect_eq(a->labels_horizon_ms, b->labels_horizon_ms);
        cr_expect_eq(a->labels_max_pending, b->labels_max_pending);
        cr_expect_eq(a->model_type, b->model_type);
        cr_expect_eq(a->n_model_hidden, b->n_model_hidden);
        for (size_t i = 0; i < a->n_model_hidden && i < ITD_CONF_LIST_MAX; i++)
                cr_expect_eq(a->model_hidden[i], b->model_hidden[i],
                             "model_hidden[%zu]", i);
        cr_expect_eq(a->model_embedding_buckets, b->model_embedding_buckets);
        cr_expect_eq(a->model_embedding_dim, b->model_embedding_dim);
        cr_expect_eq(a->model_optimizer, b->model_optimizer);
        cr_expect_float_eq(a->model_learning_rate, b->model_learning_rate,
                           EXACT_EPS);
        cr_expect_float_eq(a->model_l2, b->model_l2, EXACT_EPS);
        cr_expect_eq(a->model_batch_size, b->model_batch_size);
        cr_expect_eq(a->model_seed, b->model_seed);
        cr_expect_float_eq(a->model_loss_weight_next,
                           b->model_loss_weight_next, EXACT_EPS);
        cr_expect_float_eq(a->predict_threshold, b->predict_threshold,
                           EXACT_EPS);
        cr_expect_eq(a->metrics_log_interval_ms, b->metrics_log_interval_ms);
        cr_expect_eq(a->log_level, b->log_level);
        cr_expect_eq(a->shutdown_timeout_ms, b->shutdown_timeout_ms);
        cr_expect_eq(a->n_kafka, b->n_kafka);
        for (size_t i = 0; i < a->n_kafka && i < b->n_kafka; i++) {
                cr_expect_str_eq(a->kafka_keys[i], b->kafka_keys[i]);
                cr_expect_str_eq(a->kafka_values[i], b->kafka_values[i]);
        }
}

static void expect_defaults(const itd_conf_t *conf) {
        itd_conf_t *def = itd_conf_new();
        expect_conf_eq(conf, def);
        itd_conf_destroy(def);
}

Test(conf, new_holds_the_documented_default_of_every_option) {
        itd_conf_t *conf = itd_conf_new();
        cr_expect_str_eq(conf->topic_events, "intentd.events");
        cr_expect_str_eq(conf->topic_predictions, "intentd.predictions");
        cr_expect_str_eq(conf->topic_triggers, "intentd.triggers");
        cr_expect_str_eq(conf->topic_dead_letter, "intentd.dead_letter");
        cr_expect_eq(conf->input_format, ITD_INPUT_AVRO);
        cr_expect_eq(conf->input_framing, ITD_FRAMING_AUTO);
        cr_expect_eq(conf->output_schema_id, -1);
        cr_expect_eq(conf->n_windows, 4);
        cr_expect_eq(conf->windows_ms[0], 5 * 60000);
        cr_expect_eq(conf->windows_ms[1], 3600000);
        cr_expect_eq(conf->windows_ms[2], 24 * 3600000);
        cr_expect_eq(conf->windows_ms[3], 7LL * 24 * 3600000);
        cr_expect_eq(conf->windows_allowed_lateness_ms, 5000);
        cr_expect_eq(conf->session_gap_ms, 30 * 60000);
        cr_expect_eq(conf->state_idle_ttl_ms, 7LL * 24 * 3600000);
        cr_expect_eq(conf->state_max_users, 5000000);
        cr_expect_eq(conf->labels_horizon_ms, 30 * 60000);
        cr_expect_eq(conf->labels_max_pending, 1000000);
        cr_expect_eq(conf->model_type, ITD_MODEL_KIND_MLP);
        cr_expect_eq(conf->n_model_hidden, 2);
        cr_expect_eq(conf->model_hidden[0], 128);
        cr_expect_eq(conf->model_hidden[1], 64);
        cr_expect_eq(conf->model_embedding_buckets, 65536);
        cr_expect_eq(conf->model_embedding_dim, 8);
        cr_expect_eq(conf->model_optimizer, ITD_OPT_ADAM);
        cr_expect_float_eq(conf->model_learning_rate, 0.0003, EXACT_EPS);
        cr_expect_float_eq(conf->model_l2, 1e-6, EXACT_EPS);
        cr_expect_eq(conf->model_batch_size, 64);
        cr_expect_eq(conf->model_seed, 42);
        cr_expect_float_eq(conf->model_loss_weight_next, 0.3, EXACT_EPS);
        cr_expect_float_eq(conf->predict_threshold, 0.2, EXACT_EPS);
        cr_expect_eq(conf->metrics_log_interval_ms, 10000);
        cr_expect_eq(conf->log_level, ITD_LOG_INFO);
        cr_expect_eq(conf->shutdown_timeout_ms, 30000);
        cr_expect_eq(conf->n_kafka, 0);
        itd_conf_destroy(conf);
}

Test(conf, destroy_accepts_null) {
        itd_conf_destroy(NULL);
        cr_assert(1, "itd_conf_destroy(NULL) returned");
}

Test(conf, rejects_every_out_of_range_or_malformed_value_naming_the_key) {
        static const struct {
                const char *name, *value;
        } bad[] = {
            {"topics.events", ""},
            {"topics.events", "bad topic!"},
            {"topics.dead_letter", ".."},
            {"input.format", "xml"},
            {"input.framing", "magic"},
            {"output.schema_id", "-2"},
            {"output.schema_id", "2147483648"},
            {"output.schema_id", "12abc"},
            {"windows.spans", "0s,1h"},
            {"windows.spans", "5m,31d"},
            {"windows.spans", "1h,5m"},
            {"windows.spans", "5m,5m"},
            {"windows.spans", ""},
            {"windows.spans", "1s,2s,3s,4s,5s,6s,7s,8s,9s"},
            {"windows.spans", "5m,,1h"},
            {"windows.allowed_lateness", "-1s"},
            {"windows.allowed_lateness", "61m"},
            {"session.gap", "59s"},
            {"session.gap", "25h"},
            {"session.gap", "30 minutes"},
            {"state.idle_ttl", "59m"},
            {"state.idle_ttl", "91d"},
            {"state.max_users", "0"},
            {"state.max_users", "1000000001"},
            {"state.max_users", "1.5"},
            {"labels.horizon", "59s"},
            {"labels.horizon", "8d"},
            {"labels.max_pending", "999"},
            {"labels.max_pending", "100000001"},
            {"model.type", "tree"},
            {"model.hidden", "0"},
            {"model.hidden", "4097"},
            {"model.hidden", "1,2,3,4,5"},
            {"model.hidden", ""},
            {"model.embedding.buckets", "15"},
            {"model.embedding.buckets", "16777217"},
            {"model.embedding.dim", "-1"},
            {"model.embedding.dim", "129"},
            {"model.optimizer", "rmsprop"},
            {"model.learning.rate", "0"},
            {"model.learning.rate", "-0.1"},
            {"model.learning.rate", "1.5"},
            {"model.learning.rate", "nan"},
            {"model.learning.rate", "inf"},
            {"model.learning.rate", "fast"},
            {"model.l2", "-1e-9"},
            {"model.l2", "1.01"},
            {"model.batch.size", "0"},
            {"model.batch.size", "257"},
            {"model.seed", "-1"},
            {"model.seed", "4611686018427387905"},
            {"model.seed", "99999999999999999999"},
            {"model.loss.weight.next", "-0.1"},
            {"model.loss.weight.next", "10.5"},
            {"predict.threshold", "-0.01"},
            {"predict.threshold", "1.01"},
            {"metrics.log.interval", "999ms"},
            {"metrics.log.interval", "61m"},
            {"log.level", "verbose"},
            {"log.level", "8"},
            {"shutdown.timeout", "0"},
            {"shutdown.timeout", "11m"},
        };
        itd_conf_t *conf = itd_conf_new();
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char errstr[512] = "";
                itd_err_t err = itd_conf_set(conf, bad[i].name, bad[i].value,
                                             errstr, sizeof errstr);
                cr_expect_eq(err, ITD_ERR_CONF, "%s=\"%s\" was accepted",
                             bad[i].name, bad[i].value);
                cr_expect(strncmp(errstr, bad[i].name, strlen(bad[i].name)) ==
                              0,
                          "%s=\"%s\": errstr \"%s\" does not start with the "
                          "key",
                          bad[i].name, bad[i].value, errstr);
        }
        /* Rejected values leave the config as it was. */
        expect_defaults(conf);
        itd_conf_destroy(conf);

        /* 250 characters is one more than Kafka allows in a topic name. */
        char longname[251];
        memset(longname, 'a', 250);
        longname[250] = '\0';
        char errstr[512];
        conf = itd_conf_new();
        cr_expect_eq(itd_conf_set(conf, "topics.events", longname, errstr,
                                  sizeof errstr),
                     ITD_ERR_CONF);
        longname[249] = '\0';
        cr_expect_eq(itd_conf_set(conf, "topics.events", longname, errstr,
                                  sizeof errstr),
                     ITD_OK, "%s", errstr);
        itd_conf_destroy(conf);
}

Test(conf, range_errors_quote_the_value_and_the_allowed_range) {
        char errstr[512];
        itd_conf_t *conf = itd_conf_new();
        cr_expect_eq(itd_conf_set(conf, "session.gap", "25h", errstr,
                                  sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect_str_eq(errstr, "session.gap: \"25h\" is outside 1m..1d");
        cr_expect_eq(itd_conf_set(conf, "windows.spans", "5m,1h,1h", errstr,
                                  sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "windows.spans entry 3") &&
                      strstr(errstr, "ascending"),
                  "%s", errstr);
        cr_expect_eq(itd_conf_set(conf, "input.format", "xml", errstr,
                                  sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect_str_eq(errstr,
                         "input.format: \"xml\" is not one of avro, json");
        itd_conf_destroy(conf);
}

Test(conf, accepts_the_bounds_of_every_range) {
        static const struct {
                const char *name, *value;
        } good[] = {
            {"output.schema_id", "-1"},
            {"output.schema_id", "2147483647"},
            {"windows.spans", "1s"},
            {"windows.spans", "1s,2s,3s,4s,5s,6s,7s,30d"},
            {"windows.allowed_lateness", "0"},
            {"windows.allowed_lateness", "1h"},
            {"session.gap", "1m"},
            {"session.gap", "24h"},
            {"state.idle_ttl", "1h"},
            {"state.idle_ttl", "90d"},
            {"state.max_users", "1"},
            {"state.max_users", "1000000000"},
            {"labels.horizon", "1m"},
            {"labels.horizon", "7d"},
            {"labels.max_pending", "1000"},
            {"labels.max_pending", "100000000"},
            {"model.hidden", "1"},
            {"model.hidden", "4096,4096,4096,4096"},
            {"model.embedding.buckets", "16"},
            {"model.embedding.buckets", "16777216"},
            {"model.embedding.dim", "0"},
            {"model.embedding.dim", "128"},
            {"model.learning.rate", "1e-12"},
            {"model.learning.rate", "1"},
            {"model.l2", "0"},
            {"model.l2", "1"},
            {"model.batch.size", "1"},
            {"model.batch.size", "256"},
            {"model.seed", "0"},
            {"model.seed", "4611686018427387904"},
            {"model.loss.weight.next", "0"},
            {"model.loss.weight.next", "10"},
            {"predict.threshold", "0"},
            {"predict.threshold", "1"},
            {"metrics.log.interval", "1s"},
            {"metrics.log.interval", "1h"},
            {"shutdown.timeout", "1s"},
            {"shutdown.timeout", "10m"},
        };
        itd_conf_t *conf = itd_conf_new();
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                char errstr[512] = "";
                itd_err_t err = itd_conf_set(conf, good[i].name, good[i].value,
                                             errstr, sizeof errstr);
                cr_expect_eq(err, ITD_OK, "%s=\"%s\": %s", good[i].name,
                             good[i].value, errstr);
        }
        /* Spot-check that the last accepted values were stored. */
        cr_expect_eq(conf->model_seed, 4611686018427387904LL);
        cr_expect_eq(conf->n_model_hidden, 4);
        cr_expect_eq(conf->model_hidden[3], 4096);
        cr_expect_eq(conf->n_windows, 8);
        cr_expect_eq(conf->windows_ms[7], 30LL * 24 * 3600000);
        cr_expect_eq(conf->shutdown_timeout_ms, 600000);
        itd_conf_destroy(conf);
}

Test(conf, maps_enum_symbols_to_the_module_enums) {
        static const char *const levels[] = {"emerg",   "alert",  "crit",
                                             "err",     "warning", "notice",
                                             "info",    "debug"};
        static const int level_values[] = {
            ITD_LOG_EMERG,   ITD_LOG_ALERT,  ITD_LOG_CRIT, ITD_LOG_ERR,
            ITD_LOG_WARNING, ITD_LOG_NOTICE, ITD_LOG_INFO, ITD_LOG_DEBUG};
        char errstr[512];
        itd_conf_t *conf = itd_conf_new();
        for (size_t i = 0; i < 8; i++) {
                cr_expect_eq(itd_conf_set(conf, "log.level", levels[i], errstr,
                                          sizeof errstr),
                             ITD_OK, "%s", errstr);
                cr_expect_eq(conf->log_level, level_values[i], "%s",
                             levels[i]);
        }
        static const struct {
                const char *name, *value;
                size_t off;
                int want;
        } rows[] = {
            {"input.framing", "confluent", offsetof(itd_conf_t, input_framing),
             ITD_FRAMING_CONFLUENT},
            {"input.framing", "bare", offsetof(itd_conf_t, input_framing),
             ITD_FRAMING_BARE},
            {"input.framing", "auto", offsetof(itd_conf_t, input_framing),
             ITD_FRAMING_AUTO},
            {"input.format", "json", offsetof(itd_conf_t, input_format),
             ITD_INPUT_JSON},
            {"model.type", "logistic", offsetof(itd_conf_t, model_type),
             ITD_MODEL_KIND_LOGISTIC},
            {"model.optimizer", "sgd", offsetof(itd_conf_t, model_optimizer),
             ITD_OPT_SGD},
            {"model.optimizer", "AdaGrad",
             offsetof(itd_conf_t, model_optimizer), ITD_OPT_ADAGRAD},
            {"log.level", "DEBUG", offsetof(itd_conf_t, log_level),
             ITD_LOG_DEBUG},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                cr_expect_eq(itd_conf_set(conf, rows[i].name, rows[i].value,
                                          errstr, sizeof errstr),
                             ITD_OK, "%s", errstr);
                int got = *(const int *)(const void *)((const char *)conf +
                                                       rows[i].off);
                cr_expect_eq(got, rows[i].want, "%s=%s", rows[i].name,
                             rows[i].value);
        }
        itd_conf_destroy(conf);
}

Test(conf, lists_accept_flow_and_comma_separated_text) {
        static const char *const forms[] = {"5m,1h", "[5m, 1h]", " 5m , 1h ",
                                            "300000,3600000"};
        char errstr[512];
        for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
                itd_conf_t *conf = itd_conf_new();
                cr_expect_eq(itd_conf_set(conf, "windows.spans", forms[i],
                                          errstr, sizeof errstr),
                             ITD_OK, "\"%s\": %s", forms[i], errstr);
                cr_expect_eq(conf->n_windows, 2, "\"%s\"", forms[i]);
                cr_expect_eq(conf->windows_ms[0], 300000, "\"%s\"", forms[i]);
                cr_expect_eq(conf->windows_ms[1], 3600000, "\"%s\"", forms[i]);
                itd_conf_destroy(conf);
        }
}

Test(conf, set_suggests_the_closest_name_for_an_unknown_option) {
        static const struct {
                const char *typed, *meant;
        } rows[] = {
            {"model.learning_rate", "model.learning.rate"},
            {"topics.event", "topics.events"},
            {"window.spans", "windows.spans"},
            {"events", "topics.events"},
            {"log.levle", "log.level"},
        };
        char errstr[512];
        itd_conf_t *conf = itd_conf_new();
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                cr_expect_eq(itd_conf_set(conf, rows[i].typed, "1", errstr,
                                          sizeof errstr),
                             ITD_ERR_CONF, "%s", rows[i].typed);
                char want[256];
                snprintf(want, sizeof want,
                         "%s: unknown option; did you mean \"%s\"?",
                         rows[i].typed, rows[i].meant);
                cr_expect_str_eq(errstr, want);
        }
        cr_expect_eq(itd_conf_set(conf, "zzzzzz", "1", errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "zzzzzz: unknown option") &&
                      !strstr(errstr, "did you mean"),
                  "%s", errstr);
        itd_conf_destroy(conf);
}

Test(conf, reports_an_unknown_key_with_file_line_column_and_a_suggestion) {
        char errstr[512];
        cr_assert_eq(load_bad("conf_unknown_key.yaml", errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr,
                         "conf_unknown_key.yaml:4:3: topics.predictons: "
                         "unknown option; did you mean "
                         "\"topics.predictions\"?"),
                  "%s", errstr);
}

Test(conf, reports_a_yaml_syntax_error_with_its_line) {
        char errstr[512];
        cr_assert_eq(load_bad("conf_syntax_error.yaml", errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "conf_syntax_error.yaml:3:") &&
                      strstr(errstr, "YAML syntax error"),
                  "%s", errstr);
}

Test(conf, reports_a_bad_value_at_its_line_and_column) {
        char errstr[512];
        cr_assert_eq(load_bad("conf_bad_value.yaml", errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "conf_bad_value.yaml:2:8: session.gap: "
                                 "\"30 minutes\" is not a duration"),
                  "%s", errstr);
}

Test(conf, points_at_the_list_entry_that_is_out_of_range) {
        char errstr[512];
        cr_assert_eq(load_bad("conf_out_of_range.yaml", errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "conf_out_of_range.yaml:2:19: windows.spans "
                                 "entry 3: \"31d\" is outside 1s..30d"),
                  "%s", errstr);
}

Test(conf, rejects_a_mapping_where_a_value_is_due) {
        char errstr[512];
        cr_assert_eq(load_bad("conf_wrong_type.yaml", errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "conf_wrong_type.yaml:2:18: "
                                 "model.learning.rate: expected a number, got "
                                 "a mapping"),
                  "%s", errstr);
}

Test(conf, rejects_a_list_for_a_single_value_and_a_top_level_scalar) {
        char dir[512], path[1024], errstr[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/list.yaml", dir);
        cr_assert_eq(tu_write_file(path, "log:\n  level: [info, debug]\n"), 0);
        itd_conf_t *conf = itd_conf_new();
        cr_expect_eq(itd_conf_load(conf, path, errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "list.yaml:2:10: log.level: expected a single "
                                 "enum, got a list"),
                  "%s", errstr);
        snprintf(path, sizeof path, "%s/scalar.yaml", dir);
        cr_assert_eq(tu_write_file(path, "just text\n"), 0);
        cr_expect_eq(itd_conf_load(conf, path, errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "scalar.yaml:1:1: expected a mapping"), "%s",
                  errstr);
        expect_defaults(conf);
        itd_conf_destroy(conf);
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
