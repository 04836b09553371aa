/*
 * prom.h - the Prometheus metrics registry of the daemon.
 *
 * One static table in prom.c (name, type, help, at most one label with a
 * bounded set of values, histogram buckets) drives the /metrics text, the
 * generated docs/METRICS.md and this enum; the enum order is the table
 * order. Not to be confused with model/include/intentd/eval_progressive.h
 * (progressive validation accumulators of the model): the run loop copies their summary
 * into the intentd_progressive_* gauges here.
 *
 * Threads: the pipeline thread writes, the HTTP thread renders. Every value
 * is a C11 atomic, so writers take no locks and never allocate; a render
 * sees each value whole but not one instant across values (fine for
 * Prometheus, which samples anyway). Several writer threads are fine too.
 *
 * Labels: a metric has no label, or one label whose values are either a
 * fixed list from the table (reasons, "positive|negative") or a number below
 * a fixed maximum (partition numbers, < ITD_PROM_MAX_PARTITIONS). No
 * user ids ever: label sets stay bounded whatever the input.
 */
#ifndef INTENTD_DAEMON_PROM_H
#define INTENTD_DAEMON_PROM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"

/* Partition labels: partitions 0 .. this - 1 are exported. */
#define ITD_PROM_MAX_PARTITIONS 256

/* Metric ids; one row each in the table of prom.c, same order. */
typedef enum {
        /* pipeline counters */
        ITD_M_EVENTS_CONSUMED = 0,   /* counter */
        ITD_M_EVENTS_DEAD_LETTERED,  /* counter {reason} */
        ITD_M_EVENTS_FILTERED,       /* counter {reason} */
        ITD_M_EVENTS_LATE,           /* counter */
        ITD_M_PREDICTIONS_PUBLISHED, /* counter */
        ITD_M_TRIGGERS_PUBLISHED,    /* counter */
        ITD_M_TRIGGERS_SUPPRESSED,   /* counter {reason} */
        ITD_M_RISK_TRIGGERS_PUBLISHED, /* counter */
        ITD_M_CONTROL_RECORDS,       /* counter {outcome} */
        ITD_M_DELIVERY_FAILURES,     /* counter */
        /* training */
        ITD_M_TRAINING_EXAMPLES,     /* counter {label} */
        ITD_M_TRAINING_STEPS,        /* counter */
        ITD_M_TRAINING_SKIPPED,      /* counter */
        ITD_M_PROGRESSIVE_AUC,       /* gauge, NaN until both classes seen */
        ITD_M_PROGRESSIVE_LOGLOSS,   /* gauge */
        ITD_M_PROGRESSIVE_F1,        /* gauge */
        ITD_M_PROGRESSIVE_PRECISION, /* gauge */
        ITD_M_PROGRESSIVE_RECALL,    /* gauge */
        ITD_M_PROGRESSIVE_ECE,       /* gauge */
        ITD_M_WINDOW_EXAMPLES,       /* gauge: examples in the window */
        ITD_M_WINDOW_AUC,            /* gauge, last metrics.window examples */
        ITD_M_WINDOW_LOGLOSS,        /* gauge */
        ITD_M_WINDOW_ECE,            /* gauge */
        ITD_M_WINDOW_BASE_RATE,      /* gauge */
        ITD_M_LABELS_PENDING,        /* gauge */
        ITD_M_LABELS_DROPPED,        /* counter */
        ITD_M_RISK_UNTRAINED,        /* counter */
        ITD_M_MODEL_VERSION,         /* gauge */
        /* state */
        ITD_M_USERS,                 /* gauge */
        ITD_M_STATE_BYTES,           /* gauge */
        ITD_M_STATE_EVICTIONS,       /* counter {reason} */
        /* Kafka */
        ITD_M_ASSIGNED_PARTITIONS,   /* gauge */
        ITD_M_CONSUMER_LAG,          /* gauge {partition} */
        ITD_M_CONSUMER_PAUSED,       /* gauge 0/1 */
        /* latency */
        ITD_M_EVENT_TO_PREDICTION_SECONDS, /* histogram */
        ITD_M_CONSUME_TO_PRODUCE_SECONDS,  /* histogram */
        ITD_M_SCORE,                 /* histogram of published scores */
        /* lifecycle */
        ITD_M_CHECKPOINT_AGE_SECONDS, /* gauge, ages by itself (see _set) */
        ITD_M_CHECKPOINT_DAMAGED,     /* counter */
        ITD_M_CHANGELOG_SNAPSHOTS,    /* counter */
        ITD_M_CHANGELOG_BYTES,        /* counter */
        ITD_M_CHANGELOG_RESTORED,     /* counter */
        ITD_M_CHANGELOG_UNCOVERED,    /* gauge */
        ITD_M_CONFIG_RELOADS,         /* counter {result} */
        ITD_M_BUILD_INFO,             /* gauge 1 {version} */
        /* process (read from /proc/self when rendered; not writable) */
        ITD_M_PROCESS_CPU_SECONDS,
        ITD_M_PROCESS_RESIDENT_MEMORY_BYTES,
        ITD_M_PROCESS_OPEN_FDS,
        ITD_M_PROCESS_START_TIME_SECONDS,
        ITD_M__COUNT
} itd_metric_id_t;

typedef struct itd_prom_s itd_prom_t;

/**
 * @brief New registry: counters 0, gauges 0 (progressive ones NaN),
 * checkpoint age counting from now, build_info 1.
 * @returns the registry (caller owns; itd_prom_destroy).
 */
itd_prom_t *itd_prom_new(void);

/** @brief Frees m; NULL does nothing. No reader or writer may remain. */
void itd_prom_destroy(itd_prom_t *m);

/**
 * @brief Position of a label value of metric id: its index in the table's
 * value list, or the number for a partition label.
 * @returns the index, or -1 if id has no label or value is not one of its
 * values. Call once and keep the index for the hot path (_at functions).
 * @thread any
 */
int itd_prom_label_index(itd_metric_id_t id, const char *value);

/**
 * @brief Adds n to a counter; label is the label value, NULL when the metric
 * has none.
 * @returns ITD_OK; ITD_ERR_ARG if id is not a counter or the label is
 * missing/unexpected; ITD_ERR_NOT_FOUND for a label value not in the set;
 * ITD_ERR_RANGE for a partition >= ITD_PROM_MAX_PARTITIONS. Nothing
 * changes on error.
 * @thread any; lock-free
 */
itd_err_t itd_prom_inc(itd_prom_t *m, itd_metric_id_t id,
                       const char *label, uint64_t n);

/**
 * @brief Sets a gauge to v. A counter may be set too, to an absolute total
 * mirrored from a monotonic source (engine statistics): never lower it.
 * ITD_M_CHECKPOINT_AGE_SECONDS is set to the age *now* (0 right after a
 * checkpoint is written, the file's age after a restore) and then ages by
 * itself, so a stuck loop still shows a growing age; NaN means "no
 * checkpointing" and is exported as NaN.
 * @returns as itd_prom_inc; ITD_ERR_ARG for a histogram, build_info or a
 * process metric.
 * @thread any; lock-free
 */
itd_err_t itd_prom_set(itd_prom_t *m, itd_metric_id_t id,
                       const char *label, double v);

/**
 * @brief Records one observation in a histogram. Negative values (clock
 * skew between producers and us) count as 0.
 * @returns ITD_OK; ITD_ERR_ARG if id is not a histogram; ITD_ERR_NONFINITE
 * for NaN or infinity (not recorded).
 * @thread any; lock-free (one CAS loop for the sum)
 */
itd_err_t itd_prom_observe(itd_prom_t *m, itd_metric_id_t id, double v);

/** @brief itd_prom_inc with the label given by itd_prom_label_index
 * (or the partition number); idx is ignored for unlabelled metrics. */
itd_err_t itd_prom_inc_at(itd_prom_t *m, itd_metric_id_t id, size_t idx,
                          uint64_t n);

/** @brief itd_prom_set with the label given by index (see _inc_at). */
itd_err_t itd_prom_set_at(itd_prom_t *m, itd_metric_id_t id, size_t idx,
                          double v);

/**
 * @brief Drops one series of a partition-labelled metric (a revoked
 * partition) until it is set again.
 * @returns ITD_OK; ITD_ERR_ARG if id has no partition label; ITD_ERR_RANGE.
 */
itd_err_t itd_prom_unset_at(itd_prom_t *m, itd_metric_id_t id,
                            size_t partition);

/**
 * @brief Renders every metric in the Prometheus text exposition format
 * 0.0.4 (# HELP, # TYPE, samples) into buf[cap], NUL-terminated when
 * cap > 0, like snprintf.
 * @returns the length of the whole text (without NUL): if it is >= cap the
 * text was cut and the caller retries with a larger buffer.
 * @thread any (the HTTP thread); reads atomics and /proc/self
 */
size_t itd_prom_render(const itd_prom_t *m, char *buf, size_t cap);

/**
 * @brief Renders into a malloc'd buffer of the right size (caller frees);
 * *len gets the length. Allocates: not for the pipeline thread.
 */
char *itd_prom_render_dup(const itd_prom_t *m, size_t *len);

/** @brief Writes docs/METRICS.md (name, type, labels, help) from the table. */
void itd_prom_write_docs(FILE *out);

/** @brief Name of a metric ("intentd_events_consumed_total"). */
const char *itd_prom_name(itd_metric_id_t id);

#endif
