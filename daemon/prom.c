/*
 * prom.c - the metrics table and its atomic storage (see prom.h); the
 * exposition text and docs/METRICS.md are drawn from it in prom_text.c.
 *
 * Storage: one array of 64-bit atomic slots. Each metric owns a run of
 * slots: one per label value (or per partition); a histogram owns one slot
 * per bucket plus one for the sum. Counters hold integers, gauges the bit
 * pattern of a double, so a gauge write is one relaxed store and a counter
 * increment one fetch_add.
 */
#include "prom.h"
#include "prom_int.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/log.h"
#include "intentd/mem.h"

#ifndef ITD_VERSION
#define ITD_VERSION "unknown"
#endif

/* The stable reason codes of intentd/input.h (docs/SCHEMAS.md), plus
 * encode (a prediction that could not be encoded) and other. */
static const char *const dead_letter_reasons[] = {
    "empty_message", "message_too_large", "bad_magic_byte",
    "unknown_schema_id", "schema_incompatible", "truncated",
    "trailing_bytes", "negative_length", "bad_union_branch",
    "bad_enum_index", "malformed_avro", "json_syntax", "json_not_object",
    "wrong_type", "missing_field", "missing_user_id", "unknown_event_type",
    "ts_too_old", "ts_in_future", "bad_price", "string_too_long",
    "invalid_utf8", "nul_in_string", "encode", "other", NULL};
static const char *const control_outcomes[] = {"erased", "acknowledged",
                                               "dead_lettered", NULL};
static const char *const filter_reasons[] = {"late", "duplicate", "other",
                                             NULL};
static const char *const trigger_suppress_reasons[] = {
    "cooldown", "stale", "warming_up", NULL};
static const char *const example_labels[] = {"positive", "negative", NULL};
static const char *const eviction_reasons[] = {"ttl", "capacity", NULL};
static const char *const reload_results[] = {"ok", "failed", NULL};
static const char *const build_versions[] = {ITD_VERSION, NULL};

/* Event time to prediction spans clock skew, batching and backlog after a
 * restart: 5 ms up to an hour. */
static const double event_latency_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
    2.5,   5,    10,    30,   60,  300,  900, 3600};
/* Consume to produce is our own work on a batch: 100 us up to 10 s. */
static const double process_latency_buckets[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 10};

/* Published purchase probabilities. Base rates differ by 10x between
 * shops, so the low end is roughly logarithmic; the high end, where
 * absolute trigger thresholds sit, in tenths. */
static const double score_buckets[] = {
    0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
    0.2,   0.3,   0.4,   0.5,  0.6,  0.7,  0.8,  0.9,   0.95, 0.99};

#define NB(a) (sizeof(a) / sizeof((a)[0]))

const row_t itd_prom_rows[ITD_M__COUNT] = {
    {ITD_M_EVENTS_CONSUMED, "intentd_events_consumed_total", MT_COUNTER,
     MK_PLAIN, "Messages taken from the events topic. Each ends as a "
     "prediction, a dead letter or a counted filter.",
     NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_EVENTS_DEAD_LETTERED, "intentd_events_dead_lettered_total",
     MT_COUNTER, MK_PLAIN, "Messages sent unchanged to the dead-letter topic, "
     "by reason: the stable codes of docs/SCHEMAS.md (truncated, "
     "unknown_event_type, ts_in_future, ...), encode (its prediction could "
     "not be encoded), other.",
     "reason", dead_letter_reasons, 0, NULL, 0, 0},
    {ITD_M_EVENTS_FILTERED, "intentd_events_filtered_total", MT_COUNTER,
     MK_PLAIN, "Events counted and dropped without a prediction, by reason: "
     "duplicate, other. late stays 0: late events get a prediction "
     "(intentd_events_late_total).",
     "reason", filter_reasons, 0, NULL, 0, 0},
    {ITD_M_EVENTS_LATE, "intentd_events_late_total", MT_COUNTER, MK_PLAIN,
     "Events older than their partition's watermark when they arrived. Each "
     "got a prediction from its user's state as it stood, without changing "
     "that state or adding a pending label (docs/FEATURES.md, Late data).",
     NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_PREDICTIONS_PUBLISHED, "intentd_predictions_published_total",
     MT_COUNTER, MK_PLAIN, "Predictions delivered to the predictions topic "
     "(acknowledged by the broker).", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_TRIGGERS_PUBLISHED, "intentd_triggers_published_total", MT_COUNTER,
     MK_PLAIN, "Trigger records delivered to the triggers topic.", NULL, NULL,
     0, NULL, 0, 0},
    {ITD_M_TRIGGERS_SUPPRESSED, "intentd_triggers_suppressed_total",
     MT_COUNTER, MK_PLAIN, "Scores that would have been judged for a "
     "trigger but were not, by reason: cooldown (an UP crossing within "
     "triggers.cooldown of the user's last UP, held back), stale (the event "
     "is older than triggers.max_event_age), warming_up (a relative rule "
     "has seen fewer than triggers.distribution.min_events scores in the "
     "partition). Over the partitions held now.", "reason",
     trigger_suppress_reasons, 0, NULL, 0, 0},
    {ITD_M_RISK_TRIGGERS_PUBLISHED, "intentd_risk_triggers_published_total",
     MT_COUNTER, MK_PLAIN, "Risk trigger records (a user's risk_score "
     "crossed risk.trigger.enter or fell below risk.trigger.exit) delivered "
     "to topics.risk.", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_CONTROL_RECORDS, "intentd_control_records_total", MT_COUNTER,
     MK_PLAIN, "Control records read from topics.control, by outcome: erased "
     "(the user removed from every partition held), acknowledged (the "
     "acknowledgement delivered to topics.audit, after the first checkpoint "
     "without the user), dead_lettered (a record that does not decode, with "
     "its reason in the dead letter's headers).",
     "outcome", control_outcomes, 0, NULL, 0, 0},
    {ITD_M_DELIVERY_FAILURES, "intentd_delivery_failures_total", MT_COUNTER,
     MK_PLAIN, "Records the producer failed to deliver (any output topic); "
     "their events are consumed again after a restart.", NULL, NULL, 0, NULL,
     0, 0},
    {ITD_M_TRAINING_EXAMPLES, "intentd_training_examples_total", MT_COUNTER,
     MK_PLAIN, "Predictions whose label was resolved and that became "
     "training examples, by label.", "label", example_labels, 0, NULL, 0, 0},
    {ITD_M_TRAINING_STEPS, "intentd_training_steps_total", MT_COUNTER,
     MK_PLAIN, "Optimizer steps taken by the online trainer.", NULL, NULL, 0,
     NULL, 0, 0},
    {ITD_M_TRAINING_SKIPPED, "intentd_training_skipped_total", MT_COUNTER,
     MK_PLAIN, "Optimizer steps skipped because the loss was not finite.",
     NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_PROGRESSIVE_AUC, "intentd_progressive_auc", MT_GAUGE, MK_PLAIN,
     "Progressive-validation ROC AUC: every prediction judged against its "
     "label before the model learned from it. NaN until both classes were "
     "seen.", NULL, NULL, 0, NULL, 0, NAN},
    {ITD_M_PROGRESSIVE_LOGLOSS, "intentd_progressive_logloss", MT_GAUGE,
     MK_PLAIN, "Progressive-validation log loss (natural log, per example).",
     NULL, NULL, 0, NULL, 0, NAN},
    {ITD_M_PROGRESSIVE_F1, "intentd_progressive_f1", MT_GAUGE, MK_PLAIN,
     "Progressive-validation F1 at predict.threshold.", NULL, NULL, 0, NULL,
     0, NAN},
    {ITD_M_PROGRESSIVE_PRECISION, "intentd_progressive_precision", MT_GAUGE,
     MK_PLAIN, "Progressive-validation precision at predict.threshold.", NULL,
     NULL, 0, NULL, 0, NAN},
    {ITD_M_PROGRESSIVE_RECALL, "intentd_progressive_recall", MT_GAUGE,
     MK_PLAIN, "Progressive-validation recall at predict.threshold.", NULL,
     NULL, 0, NULL, 0, NAN},
    {ITD_M_PROGRESSIVE_ECE, "intentd_progressive_ece", MT_GAUGE, MK_PLAIN,
     "Progressive-validation expected calibration error: the mean gap "
     "between predicted and observed purchase rates over 10 equal-width "
     "score bins, weighted by examples (0 = calibrated).", NULL, NULL, 0,
     NULL, 0, NAN},
    {ITD_M_WINDOW_EXAMPLES, "intentd_progressive_window_examples", MT_GAUGE,
     MK_PLAIN, "Judged examples in the sliding window behind the "
     "intentd_progressive_window_* gauges: the last metrics.window, less "
     "up to a tenth of it (the window drops its oldest tenth at once). "
     "Starts empty after a restart.", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_WINDOW_AUC, "intentd_progressive_window_auc", MT_GAUGE, MK_PLAIN,
     "Progressive-validation ROC AUC over the last metrics.window judged "
     "examples only, so a drop shows within one window. NaN until the "
     "window holds both classes.", NULL, NULL, 0, NULL, 0, NAN},
    {ITD_M_WINDOW_LOGLOSS, "intentd_progressive_window_logloss", MT_GAUGE,
     MK_PLAIN, "Progressive-validation log loss over the last "
     "metrics.window judged examples.", NULL, NULL, 0, NULL, 0, NAN},
    {ITD_M_WINDOW_ECE, "intentd_progressive_window_ece", MT_GAUGE, MK_PLAIN,
     "Expected calibration error (as intentd_progressive_ece) over the last "
     "metrics.window judged examples.", NULL, NULL, 0, NULL, 0, NAN},
    {ITD_M_WINDOW_BASE_RATE, "intentd_progressive_window_base_rate",
     MT_GAUGE, MK_PLAIN, "Share of positive labels (purchases within "
     "labels.horizon) among the last metrics.window judged examples.", NULL,
     NULL, 0, NULL, 0, NAN},
    {ITD_M_LABELS_PENDING, "intentd_labels_pending", MT_GAUGE, MK_PLAIN,
     "Predictions whose horizon has not closed yet (label unknown).", NULL,
     NULL, 0, NULL, 0, 0},
    {ITD_M_LABELS_DROPPED, "intentd_labels_dropped_total", MT_COUNTER,
     MK_PLAIN, "Pending predictions given up before their label was known, "
     "because the partition's pool (labels.max_pending) or the user's cap "
     "was full: published, but neither judged nor trained on.", NULL, NULL,
     0, NULL, 0, 0},
    {ITD_M_RISK_UNTRAINED, "intentd_risk_untrained_total", MT_COUNTER,
     MK_PLAIN, "Predictions whose risk_score reached risk.train.threshold "
     "and were left out of training (judged all the same), so bot-like "
     "users do not teach the purchase model.", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_MODEL_VERSION, "intentd_model_version", MT_GAUGE, MK_PLAIN,
     "Version of the model that scores events (as in the prediction "
     "records' model_version).", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_USERS, "intentd_users", MT_GAUGE, MK_PLAIN,
     "Users held in the per-user state.", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_STATE_BYTES, "intentd_state_bytes", MT_GAUGE, MK_PLAIN,
     "Bytes held by the per-user state.", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_STATE_EVICTIONS, "intentd_state_evictions_total", MT_COUNTER,
     MK_PLAIN, "Users evicted from the state, by reason: ttl (idle longer "
     "than state.idle_ttl), capacity (state.max_users reached, least "
     "recently seen first).", "reason", eviction_reasons, 0, NULL, 0, 0},
    {ITD_M_ASSIGNED_PARTITIONS, "intentd_assigned_partitions", MT_GAUGE,
     MK_PLAIN, "Partitions of the events topic assigned to this instance.",
     NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_CONSUMER_LAG, "intentd_consumer_lag", MT_GAUGE, MK_PLAIN,
     "Messages between the consumer's position and the partition's high "
     "watermark, per assigned partition.", "partition", NULL,
     ITD_PROM_MAX_PARTITIONS, NULL, 0, 0},
    {ITD_M_CONSUMER_PAUSED, "intentd_consumer_paused", MT_GAUGE, MK_PLAIN,
     "1 while consumption is paused for back-pressure (too many outputs "
     "not yet acknowledged by the broker), else 0.", NULL, NULL, 0, NULL, 0,
     0},
    {ITD_M_EVENT_TO_PREDICTION_SECONDS, "intentd_event_to_prediction_seconds",
     MT_HISTOGRAM, MK_PLAIN, "From the event's own timestamp to its "
     "prediction being handed to the producer (includes producer-side "
     "delay and clock skew; negative skew counts as 0).", NULL, NULL, 0,
     event_latency_buckets, NB(event_latency_buckets), 0},
    {ITD_M_CONSUME_TO_PRODUCE_SECONDS, "intentd_consume_to_produce_seconds",
     MT_HISTOGRAM, MK_PLAIN, "From a batch being taken from the consumer to "
     "its predictions being handed to the producer.", NULL, NULL, 0,
     process_latency_buckets, NB(process_latency_buckets), 0},
    {ITD_M_SCORE, "intentd_score", MT_HISTOGRAM, MK_PLAIN,
     "purchase_probability of every prediction handed to the producer: the "
     "live score distribution, for drift (compare "
     "histogram_quantile over two ranges) and for choosing trigger "
     "thresholds.", NULL, NULL, 0, score_buckets, NB(score_buckets), 0},
    {ITD_M_CHECKPOINT_AGE_SECONDS, "intentd_checkpoint_age_seconds", MT_GAUGE,
     MK_AGE, "Seconds since the last successful checkpoint (since start "
     "until the first one). NaN when checkpointing is off.", NULL, NULL, 0,
     NULL, 0, 0},
    {ITD_M_CHECKPOINT_DAMAGED, "intentd_checkpoint_damaged_total",
     MT_COUNTER, MK_PLAIN, "Checkpoints found damaged at start-up (truncated, "
     "checksum mismatch, unreadable, not regular files) and skipped; each "
     "was moved aside as damaged-cut-N. Above 0: look at the disk and the "
     "error log (docs/CHECKPOINTS.md).", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_CHANGELOG_SNAPSHOTS, "intentd_changelog_snapshots_total",
     MT_COUNTER, MK_PLAIN, "Partition snapshots written to topics.changelog "
     "and acknowledged by the broker (each one lets its position be "
     "committed).", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_CHANGELOG_BYTES, "intentd_changelog_bytes_total", MT_COUNTER,
     MK_PLAIN, "Bytes of snapshot records produced to topics.changelog: the "
     "write rate that sizes the topic (docs/OPERATIONS.md).", NULL, NULL, 0,
     NULL, 0, 0},
    {ITD_M_CHANGELOG_RESTORED, "intentd_changelog_restored_partitions_total",
     MT_COUNTER, MK_PLAIN, "Assigned partitions restored from a snapshot on "
     "topics.changelog (moved here from another instance, or newer than "
     "the local checkpoint).", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_CHANGELOG_UNCOVERED, "intentd_changelog_uncovered_events",
     MT_GAUGE, MK_PLAIN, "Offsets applied to the assigned partitions' "
     "state after their newest acknowledged changelog snapshot, summed "
     "over the partitions that have one: what their next owners would "
     "replay after a crash now. Grows without bound while snapshots "
     "fail.", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_CONFIG_RELOADS, "intentd_config_reloads_total", MT_COUNTER,
     MK_PLAIN, "SIGHUP reloads of the configuration file, by result.",
     "result", reload_results, 0, NULL, 0, 0},
    {ITD_M_BUILD_INFO, "intentd_build_info", MT_GAUGE, MK_INFO,
     "Always 1; the label carries the intentd version.", "version",
     build_versions, 0, NULL, 0, 1},
    {ITD_M_PROCESS_CPU_SECONDS, "process_cpu_seconds_total", MT_COUNTER,
     MK_PROCESS, "User and system CPU time spent, in seconds.", NULL, NULL, 0,
     NULL, 0, 0},
    {ITD_M_PROCESS_RESIDENT_MEMORY_BYTES, "process_resident_memory_bytes",
     MT_GAUGE, MK_PROCESS, "Resident memory size in bytes.", NULL, NULL, 0,
     NULL, 0, 0},
    {ITD_M_PROCESS_OPEN_FDS, "process_open_fds", MT_GAUGE, MK_PROCESS,
     "Number of open file descriptors.", NULL, NULL, 0, NULL, 0, 0},
    {ITD_M_PROCESS_START_TIME_SECONDS, "process_start_time_seconds",
     MT_GAUGE, MK_PROCESS, "Start time of the process since the Unix epoch, "
     "in seconds.", NULL, NULL, 0, NULL, 0, 0},
};

static size_t n_values(const row_t *r) {
        if (!r->label)
                return 1;
        if (r->max_index)
                return r->max_index;
        size_t n = 0;
        while (r->values[n])
                n++;
        return n;
}

itd_prom_t *itd_prom_new(void) {
        itd_prom_t *m = itd_xcalloc(1, sizeof *m);
        size_t n = 0;
        for (size_t i = 0; i < ITD_M__COUNT; i++) {
                const row_t *r = &itd_prom_rows[i];
                assert(r->id == (itd_metric_id_t)i);
                assert(r->type != MT_HISTOGRAM || !r->label);
                m->first[i] = n;
                m->n_series[i] = n_values(r);
                /* A histogram's slots: its buckets, +Inf, then the sum. */
                n += r->type == MT_HISTOGRAM ? r->n_buckets + 2
                                             : m->n_series[i];
        }
        m->n_slots = n;
        m->slot = itd_xcalloc(n, sizeof *m->slot);
        m->present = itd_xcalloc(n, sizeof *m->present);
        int64_t now_ms = itd_now_mono_ms();
        for (size_t i = 0; i < ITD_M__COUNT; i++) {
                const row_t *r = &itd_prom_rows[i];
                _Atomic uint64_t *s = m->slot + m->first[i];
                if (r->type == MT_HISTOGRAM) {
                        m->hist_sum[i] = s + r->n_buckets + 1;
                        atomic_init(m->hist_sum[i], dbits(0.0));
                } else if (r->kind == MK_AGE) {
                        atomic_init(s, (uint64_t)now_ms);
                } else if (r->type == MT_GAUGE) {
                        for (size_t j = 0; j < m->n_series[i]; j++)
                                atomic_init(&s[j], dbits(r->init));
                }
                /* Enumerated labels always show every value (a counter at
                 * 0 is information: rate() needs the series to exist);
                 * partitions only once set. */
                for (size_t j = 0; j < m->n_series[i]; j++)
                        atomic_init(&m->present[m->first[i] + j],
                                    r->max_index ? ABSENT : 1);
        }
        return m;
}

void itd_prom_destroy(itd_prom_t *m) {
        if (!m)
                return;
        free(m->slot);
        free((void *)m->present);
        free(m);
}

const char *itd_prom_name(itd_metric_id_t id) {
        if ((int)id < 0 || id >= ITD_M__COUNT)
                return "?";
        return itd_prom_rows[id].name;
}

int itd_prom_label_index(itd_metric_id_t id, const char *value) {
        if ((int)id < 0 || id >= ITD_M__COUNT || !itd_prom_rows[id].label || !value)
                return -1;
        const row_t *r = &itd_prom_rows[id];
        if (r->max_index) {
                char *end;
                if (*value < '0' || *value > '9')
                        return -1;
                unsigned long v = strtoul(value, &end, 10);
                if (*end || v >= r->max_index)
                        return -1;
                return (int)v;
        }
        for (size_t i = 0; r->values[i]; i++)
                if (strcmp(r->values[i], value) == 0)
                        return (int)i;
        return -1;
}

/* Resolves a label string to a slot index; see itd_prom_inc. */
static itd_err_t resolve(itd_metric_id_t id, const char *label, size_t *idx) {
        const row_t *r = &itd_prom_rows[id];
        *idx = 0;
        if (!r->label)
                return label ? ITD_ERR_ARG : ITD_OK;
        if (!label)
                return ITD_ERR_ARG;
        int i = itd_prom_label_index(id, label);
        if (i >= 0) {
                *idx = (size_t)i;
                return ITD_OK;
        }
        if (r->max_index && *label >= '0' && *label <= '9')
                return ITD_ERR_RANGE;
        return ITD_ERR_NOT_FOUND;
}

static itd_err_t check_at(itd_metric_id_t id, size_t *idx) {
        if ((int)id < 0 || id >= ITD_M__COUNT)
                return ITD_ERR_ARG;
        const row_t *r = &itd_prom_rows[id];
        if (!r->label)
                *idx = 0;
        else if (*idx >= n_values(r))
                return r->max_index ? ITD_ERR_RANGE : ITD_ERR_NOT_FOUND;
        return ITD_OK;
}

itd_err_t itd_prom_inc_at(itd_prom_t *m, itd_metric_id_t id, size_t idx,
                          uint64_t n) {
        itd_err_t err = check_at(id, &idx);
        if (err)
                return err;
        if (itd_prom_rows[id].type != MT_COUNTER || itd_prom_rows[id].kind != MK_PLAIN)
                return ITD_ERR_ARG;
        size_t s = m->first[id] + idx;
        atomic_fetch_add_explicit(&m->slot[s], n, memory_order_relaxed);
        atomic_store_explicit(&m->present[s], 1, memory_order_relaxed);
        return ITD_OK;
}

itd_err_t itd_prom_set_at(itd_prom_t *m, itd_metric_id_t id, size_t idx,
                          double v) {
        itd_err_t err = check_at(id, &idx);
        if (err)
                return err;
        const row_t *r = &itd_prom_rows[id];
        size_t s = m->first[id] + idx;
        uint64_t bits;
        if (r->type == MT_HISTOGRAM || r->kind == MK_INFO ||
            r->kind == MK_PROCESS)
                return ITD_ERR_ARG;
        if (r->kind == MK_AGE) {
                /* INT64_MIN stands for NaN: no checkpointing. */
                bits = isfinite(v) ? (uint64_t)(itd_now_mono_ms() -
                                                (int64_t)(v * 1000.0))
                                   : (uint64_t)INT64_MIN;
        } else if (r->type == MT_COUNTER) {
                if (!(v >= 0) || v > 1.8e19)
                        return ITD_ERR_RANGE;
                bits = (uint64_t)v;
        } else {
                bits = dbits(v);
        }
        atomic_store_explicit(&m->slot[s], bits, memory_order_relaxed);
        atomic_store_explicit(&m->present[s], 1, memory_order_relaxed);
        return ITD_OK;
}

itd_err_t itd_prom_unset_at(itd_prom_t *m, itd_metric_id_t id,
                            size_t partition) {
        if ((int)id < 0 || id >= ITD_M__COUNT || !itd_prom_rows[id].max_index)
                return ITD_ERR_ARG;
        if (partition >= itd_prom_rows[id].max_index)
                return ITD_ERR_RANGE;
        size_t s = m->first[id] + partition;
        atomic_store_explicit(&m->present[s], ABSENT, memory_order_relaxed);
        atomic_store_explicit(&m->slot[s], itd_prom_rows[id].type == MT_GAUGE
                                               ? dbits(itd_prom_rows[id].init)
                                               : 0,
                              memory_order_relaxed);
        return ITD_OK;
}

itd_err_t itd_prom_inc(itd_prom_t *m, itd_metric_id_t id,
                       const char *label, uint64_t n) {
        size_t idx;
        if ((int)id < 0 || id >= ITD_M__COUNT)
                return ITD_ERR_ARG;
        itd_err_t err = resolve(id, label, &idx);
        return err ? err : itd_prom_inc_at(m, id, idx, n);
}

itd_err_t itd_prom_set(itd_prom_t *m, itd_metric_id_t id,
                       const char *label, double v) {
        size_t idx;
        if ((int)id < 0 || id >= ITD_M__COUNT)
                return ITD_ERR_ARG;
        itd_err_t err = resolve(id, label, &idx);
        return err ? err : itd_prom_set_at(m, id, idx, v);
}

itd_err_t itd_prom_observe(itd_prom_t *m, itd_metric_id_t id,
                           double v) {
        if ((int)id < 0 || id >= ITD_M__COUNT ||
            itd_prom_rows[id].type != MT_HISTOGRAM)
                return ITD_ERR_ARG;
        if (!isfinite(v))
                return ITD_ERR_NONFINITE;
        if (v < 0)
                v = 0;
        const row_t *r = &itd_prom_rows[id];
        size_t b = 0;
        while (b < r->n_buckets && v > r->buckets[b])
                b++;
        /* Buckets are stored non-cumulative (one increment per
         * observation); the renderer accumulates them. */
        atomic_fetch_add_explicit(&m->slot[m->first[id] + b], 1,
                                  memory_order_relaxed);
        _Atomic uint64_t *sum = m->hist_sum[id];
        uint64_t old = atomic_load_explicit(sum, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(
            sum, &old, dbits(bitsd(old) + v), memory_order_relaxed,
            memory_order_relaxed))
                ;
        return ITD_OK;
}
