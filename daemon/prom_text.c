/*
 * prom_text.c - the registry of prom.c as Prometheus text (format 0.0.4),
 * the process rows read from /proc/self at render time, and the generated
 * docs/METRICS.md (see prom.h).
 */
#include "prom.h"
#include "prom_int.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "intentd/log.h"
#include "intentd/mem.h"

/* ---- rendering ---------------------------------------------------------- */

/* snprintf-like sink: keeps counting past cap so the caller learns the
 * size it needs. */
typedef struct out_s {
        char *buf;
        size_t cap;
        size_t len;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
        if (o->len < o->cap) {
                size_t room = o->cap - o->len;
                memcpy(o->buf + o->len, s, n < room ? n : room);
        }
        o->len += n;
}

static void puts_(out_t *o, const char *s) { put(o, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void putf(out_t *o,
                                                       const char *fmt, ...) {
        char tmp[128];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        if (n > 0)
                put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n
                                                   : sizeof tmp - 1);
}

/* Exposition format escaping: HELP escapes \ and newline; label values
 * also escape the double quote. */
static void put_escaped(out_t *o, const char *s, int quote) {
        for (; *s; s++) {
                if (*s == '\\')
                        puts_(o, "\\\\");
                else if (*s == '\n')
                        puts_(o, "\\n");
                else if (quote && *s == '"')
                        puts_(o, "\\\"");
                else
                        put(o, s, 1);
        }
}

size_t itd_prom_escape(const char *s, int label, char *buf, size_t cap) {
        out_t o = {buf, cap, 0};
        put_escaped(&o, s, label);
        if (cap > 0)
                buf[o.len < cap ? o.len : cap - 1] = '\0';
        return o.len;
}

/* Shortest text that reads back as the same double; Prometheus spells the
 * special values NaN, +Inf, -Inf. */
static void put_double(out_t *o, double v) {
        if (isnan(v)) {
                puts_(o, "NaN");
                return;
        }
        if (isinf(v)) {
                puts_(o, v > 0 ? "+Inf" : "-Inf");
                return;
        }
        char tmp[40];
        /* Whole numbers (byte counts, times) read better without an
         * exponent; 2^53 bounds where doubles hold every integer. */
        if (v == floor(v) && fabs(v) < 9007199254740992.0) {
                snprintf(tmp, sizeof tmp, "%.0f", v);
                puts_(o, tmp);
                return;
        }
        for (int prec = 6; prec <= 17; prec++) {
                snprintf(tmp, sizeof tmp, "%.*g", prec, v);
                if (strtod(tmp, NULL) == v)
                        break;
        }
        puts_(o, tmp);
}

static void put_label_value(out_t *o, const row_t *r, size_t i) {
        if (r->max_index) {
                putf(o, "%zu", i);
                return;
        }
        put_escaped(o, r->values[i], 1);
}

/* Values of the process rows, from /proc/self; NaN when unreadable (a
 * sandbox or another OS) so the series stays but says "unknown". */
static double process_value(itd_metric_id_t id) {
        long tck = sysconf(_SC_CLK_TCK);
        if (id == ITD_M_PROCESS_OPEN_FDS) {
                DIR *d = opendir("/proc/self/fd");
                if (!d)
                        return NAN;
                double n = 0;
                struct dirent *de;
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.')
                                n++;
                closedir(d);
                return n - 1; /* the descriptor opendir itself holds */
        }
        FILE *f = fopen("/proc/self/stat", "r");
        if (!f)
                return NAN;
        char line[1024];
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = '\0';
        /* Fields after the command name, which may hold spaces and ')'. */
        char *p = strrchr(line, ')');
        if (!p || tck <= 0)
                return NAN;
        unsigned long long fld[24] = {0};
        char state;
        /* stat(5): 3 state, then 4.. ; we need utime(14) stime(15)
         * starttime(22) rss(24). */
        if (sscanf(p + 2,
                   "%c %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
                   "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                   &state, &fld[4], &fld[5], &fld[6], &fld[7], &fld[8],
                   &fld[9], &fld[10], &fld[11], &fld[12], &fld[13], &fld[14],
                   &fld[15], &fld[16], &fld[17], &fld[18], &fld[19],
                   &fld[20], &fld[21], &fld[22], &fld[23], &fld[0]) != 22)
                return NAN;
        unsigned long long rss_pages = fld[0]; /* field 24 */
        switch (id) {
        case ITD_M_PROCESS_CPU_SECONDS:
                return (double)(fld[14] + fld[15]) / (double)tck;
        case ITD_M_PROCESS_RESIDENT_MEMORY_BYTES:
                return (double)rss_pages * (double)sysconf(_SC_PAGESIZE);
        case ITD_M_PROCESS_START_TIME_SECONDS: {
                /* starttime is in ticks since boot: add the boot time. */
                struct timespec mono, wall;
                clock_gettime(CLOCK_BOOTTIME, &mono);
                clock_gettime(CLOCK_REALTIME, &wall);
                double boot = (double)wall.tv_sec + wall.tv_nsec / 1e9 -
                              ((double)mono.tv_sec + mono.tv_nsec / 1e9);
                return boot + (double)fld[22] / (double)tck;
        }
        default:
                return NAN;
        }
}

static void render_row(const itd_prom_t *m, const row_t *r, out_t *o,
                       int64_t now_ms) {
        static const char *const type_names[] = {"counter", "gauge",
                                                 "histogram"};
        itd_metric_id_t id = r->id;
        const _Atomic uint64_t *s = m->slot + m->first[id];
        puts_(o, "# HELP ");
        puts_(o, r->name);
        put(o, " ", 1);
        put_escaped(o, r->help, 0);
        putf(o, "\n# TYPE %s %s\n", r->name, type_names[r->type]);

        if (r->type == MT_HISTOGRAM) {
                uint64_t cum = 0;
                for (size_t b = 0; b <= r->n_buckets; b++) {
                        cum += atomic_load_explicit(&s[b],
                                                    memory_order_relaxed);
                        putf(o, "%s_bucket{le=\"", r->name);
                        put_double(o, b < r->n_buckets ? r->buckets[b]
                                                       : INFINITY);
                        putf(o, "\"} %llu\n", (unsigned long long)cum);
                }
                /* _count is the +Inf bucket by definition; deriving it
                 * keeps them equal even while a writer is mid-observe. */
                putf(o, "%s_sum ", r->name);
                put_double(o, bitsd(atomic_load_explicit(
                                  m->hist_sum[id], memory_order_relaxed)));
                putf(o, "\n%s_count %llu\n", r->name,
                     (unsigned long long)cum);
                return;
        }
        for (size_t i = 0; i < m->n_series[id]; i++) {
                if (!atomic_load_explicit(&m->present[m->first[id] + i],
                                          memory_order_relaxed))
                        continue;
                puts_(o, r->name);
                if (r->label) {
                        putf(o, "{%s=\"", r->label);
                        put_label_value(o, r, i);
                        puts_(o, "\"}");
                }
                put(o, " ", 1);
                uint64_t v = atomic_load_explicit(&s[i],
                                                  memory_order_relaxed);
                if (r->kind == MK_PROCESS)
                        put_double(o, process_value(id));
                else if (r->kind == MK_AGE)
                        put_double(o, (int64_t)v == INT64_MIN
                                          ? NAN
                                          : (double)(now_ms - (int64_t)v) /
                                                1000.0);
                else if (r->type == MT_COUNTER)
                        putf(o, "%llu", (unsigned long long)v);
                else
                        put_double(o, bitsd(v));
                put(o, "\n", 1);
        }
}

size_t itd_prom_render(const itd_prom_t *m, char *buf, size_t cap) {
        out_t o = {buf, cap, 0};
        int64_t now_ms = itd_now_mono_ms();
        for (size_t i = 0; i < ITD_M__COUNT; i++)
                render_row(m, &itd_prom_rows[i], &o, now_ms);
        if (cap > 0)
                buf[o.len < cap ? o.len : cap - 1] = '\0';
        return o.len;
}

char *itd_prom_render_dup(const itd_prom_t *m, size_t *len) {
        /* Partition series come and go between two renders: retry until the
         * text fits (it grows by a few lines at most). */
        size_t cap = 16384;
        for (;;) {
                char *buf = itd_xmalloc(cap);
                size_t n = itd_prom_render(m, buf, cap);
                if (n < cap) {
                        *len = n;
                        return buf;
                }
                free(buf);
                cap = n + 1024;
        }
}

/* ---- docs --------------------------------------------------------------- */

void itd_prom_write_docs(FILE *out) {
        static const char *const type_names[] = {"counter", "gauge",
                                                 "histogram"};
        fputs("# Metrics\n\n"
              "<!-- Generated by `intentd --metrics-docs` from the table in "
              "daemon/prom.c; do not edit. -->\n\n"
              "intentd serves these on `GET /metrics` (Prometheus text "
              "format 0.0.4) at `metrics.listen`, default "
              "`127.0.0.1:9464`. Labels are bounded: no metric carries a "
              "user id. Rates are left to PromQL (`rate(...[5m])`). "
              "Alert rules and a Grafana dashboard over these metrics are "
              "in `docs/ops/`.\n\n"
              "Health endpoints on the same listener: `GET /livez` (200 "
              "while the main loop turns, 503 when it stalled) and "
              "`GET /readyz` (200 once the config is loaded, the model "
              "restored and partitions assigned; otherwise 503 with the "
              "reason). With `metrics.query: on` it also answers "
              "`GET /users/<user_id>` (docs/OPERATIONS.md, \"Asking about "
              "one user\").\n\n"
              "| name | type | labels | help |\n"
              "| --- | --- | --- | --- |\n",
              out);
        for (size_t i = 0; i < ITD_M__COUNT; i++) {
                const row_t *r = &itd_prom_rows[i];
                fprintf(out, "| `%s` | %s | ", r->name, type_names[r->type]);
                if (!r->label) {
                        /* no label: empty cell */
                } else if (r->max_index) {
                        fprintf(out, "`%s` (0..%zu)", r->label,
                                r->max_index - 1);
                } else if (r->kind == MK_INFO) {
                        fprintf(out, "`%s`", r->label);
                } else {
                        fprintf(out, "`%s`: ", r->label);
                        for (size_t j = 0; r->values[j]; j++)
                                fprintf(out, "%s`%s`", j ? ", " : "",
                                        r->values[j]);
                }
                fprintf(out, " | %s", r->help);
                if (r->type == MT_HISTOGRAM) {
                        /* Every histogram is in seconds but the scores. */
                        fprintf(out, " Buckets (%s): ",
                                r->id == ITD_M_SCORE ? "probability" : "s");
                        for (size_t b = 0; b < r->n_buckets; b++)
                                fprintf(out, "%s%g", b ? ", " : "",
                                        r->buckets[b]);
                        fputs(", +Inf.", out);
                }
                fputs(" |\n", out);
        }
}
