/*
 * test_conf.c - the option table: defaults, range checks (values, bounds,
 * the allowed range quoted), enum symbols, lists, suggestions for unknown
 * names, and error positions in YAML. Loading files, durations and the
 * generated docs are in test_conf_load.c.
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
