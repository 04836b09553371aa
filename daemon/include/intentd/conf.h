/*
 * conf.h - the daemon's configuration: one typed struct filled from ONE
 * option table (daemon/conf.c) that also generates docs/CONFIGURATION.md and
 * config/intentd.yaml. Keys under `kafka.` pass through to librdkafka with the
 * prefix stripped.
 *
 * Durations are written "500ms", "10s", "30m", "24h", "7d" (a bare integer
 * is milliseconds) and stored in ms.
 */
#ifndef INTENTD_CONF_H
#define INTENTD_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/duration.h"
#include "intentd/err.h"

#define ITD_CONF_LIST_MAX 8

/* log.format; the last three follow itd_log_format_t (log.h) + 1. AUTO
 * picks JOURNAL when stderr is journald's stream (JOURNAL_STREAM), else
 * PLAIN. */
typedef enum {
        ITD_CONF_LOG_AUTO = 0,
        ITD_CONF_LOG_PLAIN,
        ITD_CONF_LOG_JOURNAL,
        ITD_CONF_LOG_JSON
} itd_conf_log_format_t;

/* checkpoint.on_corrupt: what start-up does when every checkpoint is
 * damaged. */
typedef enum {
        ITD_ON_CORRUPT_START_EMPTY = 0,
        ITD_ON_CORRUPT_REFUSE
} itd_conf_on_corrupt_t;

typedef struct itd_conf_s {
        /* kafka.* pass-through, in file order (key without the prefix) */
        size_t n_kafka;
        char **kafka_keys;
        char **kafka_values;

        char *topic_events;
        char *topic_predictions;
        char *topic_triggers;
        char *topic_dead_letter;
        char *topic_model;          /* "": no model exchange */
        char *topic_risk;           /* "": risk triggers off */
        char *topic_changelog;      /* "": no state changelog */
        char *topic_control;        /* "": no control records (erasure) */
        char *topic_audit;

        int input_format;           /* itd_input_format_t (input.h) */
        int input_framing;          /* itd_framing_t (codec.h) */
        char *input_schemas_dir;    /* "" = none */
        char *input_schema_registry_url; /* "" = none */
        char *input_schema_registry_user_info; /* "user:password", "" */
        int64_t input_schema_registry_timeout_ms;
        int64_t input_max_future_ms;
        int64_t input_max_string_bytes;
        int64_t input_max_message_bytes;
        int64_t output_schema_id;   /* -1: bare Avro */
        char *output_schema_registry_url; /* "" = none */
        char *output_schema_registry_user_info; /* "user:password", "" */
        int output_schema_registry_auto_register;

        size_t n_windows;
        int64_t windows_ms[ITD_CONF_LIST_MAX];
        int64_t windows_allowed_lateness_ms;
        int64_t session_gap_ms;
        int64_t state_idle_ttl_ms;
        int64_t state_max_users;
        int64_t state_changelog_interval_ms;

        int64_t labels_horizon_ms;
        int64_t labels_max_pending;
        int labels_policy;          /* itd_labels_policy_t (labeler.h) */

        int model_type;             /* itd_model_kind_t (model.h) */
        size_t n_model_hidden;
        int64_t model_hidden[ITD_CONF_LIST_MAX];
        int64_t model_embedding_buckets;
        int64_t model_embedding_dim;
        int model_optimizer;        /* itd_opt_t (mlp.h) */
        double model_learning_rate;
        double model_l2;
        int64_t model_batch_size;
        double model_negative_sample_rate;
        int64_t model_positives_hold;
        int64_t model_seed;
        double model_loss_weight_next;
        /* issues 5, 6 (model/mlp.h): wide path, input standardisation */
        double model_wide_learning_rate;
        double model_embedding_learning_rate;
        int model_inputs_standardize;
        /* user propensity as stacked offsets; event-time span of a
         * scoring chunk (docs/MODEL.md) */
        int model_user_offset;
        int model_linear_newton;
        int64_t model_score_span_ms;
        int64_t model_average_steps;
        int64_t model_sync_interval_ms;
        int64_t model_sync_snapshot_interval_ms;
        int64_t pipeline_workers;   /* 0: derived from the cores
                                     * (itd_conf_workers) */

        double predict_threshold;
        int64_t predict_explain;    /* features named per prediction, 0..3 */
        int64_t metrics_log_interval_ms;
        char *metrics_listen;       /* "" = no HTTP endpoint */
        int metrics_query;          /* 1: GET /users/<id> (query.h) */
        int64_t metrics_window;     /* judged examples behind the
                                     * intentd_progressive_window_* gauges */
        int64_t health_liveness_timeout_ms;
        int64_t output_max_in_flight;
        int log_level;              /* ITD_LOG_* (log.h) */
        int log_format;             /* itd_conf_log_format_t */
        int64_t shutdown_timeout_ms;

        /* triggers (trigger.h); exit <= enter, exit_top_percent >=
         * top_percent and exit_lift <= lift are checked by itd_conf_load */
        int triggers_rule;          /* itd_trigger_rule_t */
        double triggers_enter;
        double triggers_exit;
        double triggers_top_percent;
        double triggers_exit_top_percent;
        double triggers_lift;
        double triggers_exit_lift;
        int64_t triggers_half_life;  /* scores */
        int64_t triggers_min_events; /* scores */
        int64_t triggers_max_event_age_ms; /* 0: no guard */
        int64_t triggers_cooldown_ms;
        int64_t triggers_max_users;

        /* risk score (risk.h); exit <= enter checked by itd_conf_load */
        double risk_train_threshold; /* 0: train on every example */
        double risk_train_weight;
        double risk_trigger_enter;
        double risk_trigger_exit;
        int64_t risk_trigger_cooldown_ms;

        /* checkpoints (daemon/checkpoint.h, docs/CHECKPOINTS.md) */
        char *checkpoint_dir;       /* "auto": $STATE_DIRECTORY or off; "" off */
        int64_t checkpoint_interval_ms;
        int64_t checkpoint_keep;    /* complete checkpoints kept, >= 2 */
        int checkpoint_on_corrupt;  /* itd_conf_on_corrupt_t */

        /* Where each option got its value (itd_conf_where); owned. */
        struct itd_conf_src_s *src;
} itd_conf_t;

/** @brief New config holding every default (caller owns). */
itd_conf_t *itd_conf_new(void);
void itd_conf_destroy(itd_conf_t *conf);

/**
 * @brief Sets one option by its dotted name from text, with range checks;
 * `kafka.*` names are stored for librdkafka.
 * @returns ITD_OK, or ITD_ERR_CONF with "name: why" in errstr.
 */
itd_err_t itd_conf_set(itd_conf_t *conf, const char *name, const char *value,
                       char *errstr, size_t errstr_size);

/**
 * @brief Reads a YAML file (nested maps, or dotted keys) into conf.
 * @returns ITD_OK, or ITD_ERR_CONF / ITD_ERR_IO with
 * "file:line:column: key: why" in errstr.
 */
itd_err_t itd_conf_load(itd_conf_t *conf, const char *path, char *errstr,
                        size_t errstr_size);

/**
 * @brief itd_conf_load that does not stop at the first bad option: every
 * one is reported, and the options that load are applied to conf (the
 * others keep their value), so a check can go on with the rest. For
 * `intentd check-config`; the daemon loads all-or-nothing.
 * @param n_errors  gets how many errors (0 on ITD_OK).
 * @returns ITD_OK; ITD_ERR_CONF with one "file:line:column: key: why"
 * line per error in errstr (joined by '\n'; lines that do not fit are
 * left out, still counted); or, when no option could be read at all
 * (ITD_ERR_IO: the file cannot be read; ITD_ERR_PARSE: not YAML, or not a
 * mapping of options), that one error, with conf unchanged.
 */
itd_err_t itd_conf_load_all(itd_conf_t *conf, const char *path, char *errstr,
                            size_t errstr_size, size_t *n_errors);

/**
 * @brief Where option name (a table name, or "kafka.<property>") got its
 * value: "file:line:column" of its key when loaded from a file, "-o" when
 * set by itd_conf_note_override, NULL for a default (or a plain
 * itd_conf_set). Borrowed from conf.
 */
const char *itd_conf_where(const itd_conf_t *conf, const char *name);

/** @brief Records that name was set by a command-line `-o` override. */
void itd_conf_note_override(itd_conf_t *conf, const char *name);

/**
 * @brief Bytes the model of conf allocates when the daemon starts:
 * parameters, gradients and optimizer moments (MLP: 4-byte floats, Adam
 * two moments, AdaGrad one; logistic: FTRL's z and n as doubles), plus one
 * byte per embedding row. *n_params (may be NULL) gets the parameter
 * count, as itd_model_n_params will report it.
 */
uint64_t itd_conf_model_bytes(const itd_conf_t *conf, uint64_t *n_params);

/**
 * @brief Memory this process may use: the least of physical memory, its
 * memory cgroup's limit (systemd MemoryMax=) and RLIMIT_AS / RLIMIT_DATA;
 * what (may be NULL) gets which one that is.
 */
uint64_t itd_conf_memory_budget(char *what, size_t what_size);

/**
 * @brief Everything `intentd run` refuses before it touches the network,
 * checked without side effects beyond reading: brokers set, the metrics
 * address resolvable, librdkafka plugins loadable, the model within the
 * memory budget, input.schemas_dir and input.schema_registry.url usable,
 * checkpoint.dir a writable folder (or creatable). `intentd check-config`
 * and `intentd run` both call it.
 * @param path  the config file, for messages (may be NULL).
 * @returns how many problems; each is one line "where: key: why" in
 * errstr (lines joined by '\n', cut at errstr_size).
 */
size_t itd_conf_check_run(const itd_conf_t *conf, const char *path,
                          char *errstr, size_t errstr_size);

/** @brief Prints docs/CONFIGURATION.md from the option table. */
void itd_conf_write_docs(FILE *out);
/** @brief Prints config/intentd.yaml: every option, default, help. */
void itd_conf_write_yaml(FILE *out);

/**
 * @brief SIGHUP support: copies the options marked reloadable in the option
 * table (log.level, predict.threshold, metrics.log.interval,
 * model.learning.rate) from fresh into conf; every other option keeps its
 * running value.
 * @param fresh  a config just loaded from the file; borrowed, unchanged.
 * @param applied  gets "name=value, ..." of the reloadable options that
 * changed ("" if none); may be NULL.
 * @param restart  gets the names of other options that differ in fresh and
 * need a restart ("kafka.*" for any kafka change; "" if none); may be NULL.
 * @returns the number of options applied.
 * @thread the owner of conf (main thread).
 */
size_t itd_conf_reload(itd_conf_t *conf, const itd_conf_t *fresh,
                       char *applied, size_t applied_size, char *restart,
                       size_t restart_size);

#endif
