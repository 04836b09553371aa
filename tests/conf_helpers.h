/*
 * conf_helpers.h - helpers of test_conf.c and test_conf_load.c: fixture
 * paths, a load that must fail, and configurations compared field by
 * field (to each other, to the defaults).
 */
#ifndef INTENTD_CONF_HELPERS_H
#define INTENTD_CONF_HELPERS_H

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

static inline const char *fixture(const char *name, char *buf, size_t cap) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/fixtures/%s", name);
        return tu_src(rel, buf, cap);
}

/* Loads a fixture that must fail; returns the error and fills errstr. */
static inline itd_err_t load_bad(const char *name, char *errstr, size_t cap) {
        char path[1024];
        itd_conf_t *conf = itd_conf_new();
        errstr[0] = '\0';
        itd_err_t err =
            itd_conf_load(conf, fixture(name, path, sizeof path), errstr, cap);
        itd_conf_destroy(conf);
        return err;
}

static inline void expect_conf_eq(const itd_conf_t *a, const itd_conf_t *b) {
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

static inline void expect_defaults(const itd_conf_t *conf) {
        itd_conf_t *def = itd_conf_new();
        expect_conf_eq(conf, def);
        itd_conf_destroy(def);
}

#endif
