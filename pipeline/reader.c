/*
 * reader.c - events from files: Taobao UserBehavior CSV and JSON lines,
 * plain or gzip (zlib's gzopen reads plain files transparently).
 *
 * Streaming mode reads one line per itd_reader_next. Sorted mode reads the
 * whole file at open and stable-sorts by event time, because the Taobao
 * per-user files are grouped by user and a replay must see time order. A
 * bad line never stops the reader: it is counted, the first few are logged,
 * and the last message is kept for itd_reader_last_error.
 */
#include "intentd/reader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "intentd/log.h"
#include "intentd/mem.h"

#define LINE_MAX_BYTES 8192 /* longer lines are bad lines */
#define LOG_FIRST_BAD 3     /* bad lines logged before going quiet */

typedef struct {
        int64_t ts_ms;
        size_t seq; /* file order: the tie-break that makes the sort stable */
} sort_key_t;

struct itd_reader_s {
        char *path;
        itd_format_t format;
        gzFile gz;
        uint64_t line_no;
        uint64_t bad_lines;
        uint64_t total_bytes;
        char line[LINE_MAX_BYTES];
        char last_error[512];
        /* sorted mode */
        int sorted;
        itd_event_t *events;
        sort_key_t *order;
        size_t n_events, next;
};

itd_err_t itd_format_parse(const char *s, itd_format_t *format) {
        if (strcmp(s, "taobao") == 0)
                *format = ITD_FORMAT_TAOBAO;
        else if (strcmp(s, "jsonl") == 0)
                *format = ITD_FORMAT_JSONL;
        else
                return ITD_ERR_PARSE;
        return ITD_OK;
}

static void bad_line(itd_reader_t *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bad_line(itd_reader_t *rd, const char *fmt, ...) {
        char why[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        snprintf(rd->last_error, sizeof rd->last_error, "%s:%" PRIu64 ": %s",
                 rd->path, rd->line_no, why);
        rd->bad_lines++;
        if (rd->bad_lines <= LOG_FIRST_BAD)
                itd_log(ITD_LOG_WARNING, "reader", "skipping bad line %s%s",
                        rd->last_error,
                        rd->bad_lines == LOG_FIRST_BAD
                            ? " (further bad lines are only counted)"
                            : "");
}

/* Copies a CSV token into dst[cap]; 0 on success. */
static int copy_token(char *dst, size_t cap, const char *s, size_t n) {
        if (n == 0 || n >= cap)
                return -1;
        memcpy(dst, s, n);
        dst[n] = '\0';
        return 0;
}

/* user_id,item_id,category_id,behavior,timestamp_seconds */
static int parse_taobao(itd_reader_t *rd, char *line, itd_event_t *ev) {
        static const char *const names[5] = {"user_id", "item_id",
                                             "category_id", "behavior",
                                             "timestamp"};
        const char *tok[5];
        size_t len[5];
        size_t n = 0;
        char *p = line;
        for (;;) {
                char *comma = strchr(p, ',');
                if (n == 5) {
                        bad_line(rd, "more than 5 comma-separated fields");
                        return -1;
                }
                tok[n] = p;
                len[n] = comma ? (size_t)(comma - p) : strlen(p);
                n++;
                if (!comma)
                        break;
                p = comma + 1;
        }
        if (n != 5) {
                bad_line(rd, "%zu fields, expected 5 (user_id,item_id,"
                             "category_id,behavior,timestamp)",
                         n);
                return -1;
        }
        itd_event_clear(ev);
        char *dst[3] = {ev->user_id, ev->item_id, ev->category};
        for (int i = 0; i < 3; i++) {
                if (copy_token(dst[i], ITD_ID_MAX, tok[i], len[i])) {
                        bad_line(rd, "%s is %s", names[i],
                                 len[i] ? "too long" : "empty");
                        return -1;
                }
        }
        static const struct {
                const char *name;
                itd_event_type_t type;
        } behaviors[] = {{"pv", ITD_EV_VIEW},
                         {"cart", ITD_EV_ADD_TO_CART},
                         {"fav", ITD_EV_FAVORITE},
                         {"buy", ITD_EV_PURCHASE}};
        int found = 0;
        for (size_t i = 0; i < sizeof behaviors / sizeof behaviors[0]; i++) {
                if (len[3] == strlen(behaviors[i].name) &&
                    memcmp(tok[3], behaviors[i].name, len[3]) == 0) {
                        ev->type = behaviors[i].type;
                        found = 1;
                }
        }
        if (!found) {
                bad_line(rd, "behavior \"%.*s\" is not pv, cart, fav or buy",
                         (int)(len[3] > 20 ? 20 : len[3]), tok[3]);
                return -1;
        }
        char *end;
        errno = 0;
        long long secs = strtoll(tok[4], &end, 10);
        if (len[4] == 0 || end != tok[4] + len[4] || errno ||
            secs < -(INT64_MAX / 1000) || secs > INT64_MAX / 1000) {
                bad_line(rd, "timestamp \"%.*s\" is not an integer number of "
                             "seconds",
                         (int)(len[4] > 24 ? 24 : len[4]), tok[4]);
                return -1;
        }
        ev->ts_ms = (int64_t)secs * 1000;
        return 0;
}

static int parse_jsonl(itd_reader_t *rd, const char *line, size_t n,
                       itd_event_t *ev) {
        char why[300];
        if (itd_event_from_json(line, n, ev, why, sizeof why)) {
                bad_line(rd, "%s", why);
                return -1;
        }
        return 0;
}

/*
 * Reads lines until one parses. 1 = event, 0 = end of input, -1 = I/O
 * error (errstr set).
 */
static int read_one(itd_reader_t *rd, itd_event_t *ev, char *errstr,
                    size_t errstr_size) {
        for (;;) {
                if (!gzgets(rd->gz, rd->line, sizeof rd->line)) {
                        int zerr;
                        const char *msg = gzerror(rd->gz, &zerr);
                        if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
                                snprintf(errstr, errstr_size,
                                         "%s: read failed after line %" PRIu64
                                         ": %s",
                                         rd->path, rd->line_no, msg);
                                return -1;
                        }
                        return 0;
                }
                rd->line_no++;
                size_t n = strlen(rd->line);
                if (n == sizeof rd->line - 1 && rd->line[n - 1] != '\n' &&
                    !gzeof(rd->gz)) {
                        /* Too long: drop the rest of it, then count it. */
                        char *got;
                        do {
                                got = gzgets(rd->gz, rd->line, sizeof rd->line);
                        } while (got && rd->line[strlen(rd->line) - 1] != '\n');
                        bad_line(rd, "line longer than %d bytes",
                                 LINE_MAX_BYTES - 1);
                        continue;
                }
                while (n && (rd->line[n - 1] == '\n' ||
                             rd->line[n - 1] == '\r'))
                        rd->line[--n] = '\0';
                if (strspn(rd->line, " \t") == n)
                        continue; /* blank lines are not events */
                int rc = rd->format == ITD_FORMAT_TAOBAO
                             ? parse_taobao(rd, rd->line, ev)
                             : parse_jsonl(rd, rd->line, n, ev);
                if (rc == 0)
                        return 1;
        }
}

static int cmp_key(const void *a, const void *b) {
        const sort_key_t *x = a, *y = b;
        if (x->ts_ms != y->ts_ms)
                return x->ts_ms < y->ts_ms ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int load_sorted(itd_reader_t *rd, char *errstr, size_t errstr_size) {
        size_t cap = 1024;
        rd->events = itd_xmalloc(cap * sizeof *rd->events);
        for (;;) {
                if (rd->n_events == cap) {
                        cap *= 2;
                        rd->events = itd_xrealloc(rd->events,
                                                  cap * sizeof *rd->events);
                }
                int rc = read_one(rd, &rd->events[rd->n_events], errstr,
                                  errstr_size);
                if (rc < 0)
                        return -1;
                if (rc == 0)
                        break;
                rd->n_events++;
        }
        rd->order = itd_xmalloc((rd->n_events ? rd->n_events : 1) *
                                sizeof *rd->order);
        for (size_t i = 0; i < rd->n_events; i++) {
                rd->order[i].ts_ms = rd->events[i].ts_ms;
                rd->order[i].seq = i;
        }
        qsort(rd->order, rd->n_events, sizeof *rd->order, cmp_key);
        return 0;
}

itd_reader_t *itd_reader_open(const char *path, itd_format_t format, int sort,
                              char *errstr, size_t errstr_size) {
        struct stat sb;
        if ((int)format < 0 || format >= ITD_FORMAT__COUNT) {
                snprintf(errstr, errstr_size, "%s: unknown input format %d",
                         path, (int)format);
                return NULL;
        }
        if (stat(path, &sb) != 0) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return NULL;
        }
        if (S_ISDIR(sb.st_mode)) {
                snprintf(errstr, errstr_size, "%s: is a directory", path);
                return NULL;
        }
        itd_reader_t *rd = itd_xcalloc(1, sizeof *rd);
        rd->path = itd_xstrdup(path);
        rd->format = format;
        rd->sorted = sort;
        rd->total_bytes = S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
        rd->gz = gzopen(path, "rb");
        if (!rd->gz) {
                snprintf(errstr, errstr_size, "%s: cannot open: %s", path,
                         errno ? strerror(errno) : "out of memory");
                goto fail;
        }
        gzbuffer(rd->gz, 128 * 1024);
        if (sort && load_sorted(rd, errstr, errstr_size))
                goto fail;
        return rd;
fail:
        itd_reader_destroy(rd);
        return NULL;
}

void itd_reader_destroy(itd_reader_t *rd) {
        if (!rd)
                return;
        if (rd->gz)
                gzclose(rd->gz);
        free(rd->events);
        free(rd->order);
        free(rd->path);
        free(rd);
}

itd_err_t itd_reader_next(itd_reader_t *rd, itd_event_t *ev, char *errstr,
                          size_t errstr_size) {
        if (rd->sorted) {
                if (rd->next == rd->n_events)
                        return ITD_ERR_EOF;
                *ev = rd->events[rd->order[rd->next++].seq];
                return ITD_OK;
        }
        int rc = read_one(rd, ev, errstr, errstr_size);
        if (rc < 0)
                return ITD_ERR_IO;
        return rc ? ITD_OK : ITD_ERR_EOF;
}

uint64_t itd_reader_bad_lines(const itd_reader_t *rd) { return rd->bad_lines; }

const char *itd_reader_last_error(const itd_reader_t *rd) {
        return rd->last_error;
}

void itd_reader_progress(const itd_reader_t *rd, uint64_t *done,
                         uint64_t *total) {
        *total = rd->total_bytes;
        if (rd->sorted) {
                /* The file was read at open; report events handed out. */
                *done = rd->n_events
                            ? (uint64_t)((double)rd->total_bytes *
                                         (double)rd->next /
                                         (double)rd->n_events)
                            : rd->total_bytes;
                return;
        }
        z_off_t off = gzoffset(rd->gz);
        *done = off > 0 ? (uint64_t)off : 0;
        if (*total && *done > *total)
                *done = *total;
}
