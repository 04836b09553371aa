/*
 * prom_int.h - what the files of the metrics registry share (prom.c: the
 * table and its atomic storage; prom_text.c: the exposition text and
 * docs/METRICS.md), and the internals exposed for its tests.
 */
#ifndef INTENTD_DAEMON_PROM_INT_H
#define INTENTD_DAEMON_PROM_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "prom.h"

typedef enum { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM } mtype_t;

/* What a row's value means beyond its Prometheus type. */
typedef enum {
        MK_PLAIN = 0,
        MK_AGE,       /* slot holds the monotonic ms origin; renders now-it */
        MK_INFO,      /* constant 1, label values fixed at build */
        MK_PROCESS    /* computed from /proc/self at render time */
} mkind_t;

typedef struct row_s {
        itd_metric_id_t id;       /* must equal the row's position */
        const char *name;
        mtype_t type;
        mkind_t kind;
        const char *help;
        const char *label;        /* label name or NULL */
        const char *const *values; /* NULL-terminated label values, or NULL */
        size_t max_index;         /* index label (partition): values 0..max-1 */
        const double *buckets;    /* histogram upper bounds, ascending */
        size_t n_buckets;         /* without +Inf */
        double init;              /* initial gauge value */
} row_t;

/* The table: one row per metric id, in id order (prom.c). */
extern const row_t itd_prom_rows[ITD_M__COUNT];

/* A slot that was never set (partition series) or was unset. */
#define ABSENT 0

struct itd_prom_s {
        size_t first[ITD_M__COUNT];  /* first value slot of each row */
        size_t n_series[ITD_M__COUNT];
        _Atomic uint64_t *slot;      /* values (see file comment) */
        _Atomic unsigned char *present; /* per value slot of partition rows */
        _Atomic uint64_t *hist_sum[ITD_M__COUNT]; /* double bits, or NULL */
        size_t n_slots;
};

/* Gauges and histogram sums are stored as the bits of a double. */
static inline uint64_t dbits(double v) {
        uint64_t u;
        memcpy(&u, &v, sizeof u);
        return u;
}

static inline double bitsd(uint64_t u) {
        double v;
        memcpy(&v, &u, sizeof v);
        return v;
}

/**
 * @brief Escapes s as the exposition format wants: label values escape
 * backslash, double quote and newline (label = 1); HELP text only backslash
 * and newline (label = 0). Writes into buf[cap] like snprintf.
 * @returns the escaped length (without NUL).
 */
size_t itd_prom_escape(const char *s, int label, char *buf, size_t cap);

#endif
