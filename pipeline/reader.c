/*
 * reader.c - events from files: Taobao UserBehavior CSV, REES46 and
 * RetailRocket CSV, JSON lines and Avro object container files, plain or
 * gzip. Bytes come through zfile.h, which inflates gzip strictly (a
 * truncated or corrupt .gz is an error naming the file, never a quiet
 * end); containers are read by ocf.h with the same walker as Kafka
 * messages.
 *
 * Streaming mode reads one line (or record) per itd_reader_next. Sorted
 * mode reads the whole file at open and stable-sorts by event time,
 * because the Taobao per-user files are grouped by user and a replay must
 * see time order. A bad line never stops the reader: it is counted, the
 * first few are logged, and the last message is kept for
 * itd_reader_last_error. A file that cannot be read to its end is an
 * error.
 */
#include "intentd/reader.h"

#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "codec_int.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "ocf.h"
#include "zfile.h"

#define LINE_MAX_BYTES 8192 /* longer lines are bad lines */
#define LOG_FIRST_BAD 3     /* bad lines logged before going quiet */
#define CSV_FIELDS_MAX 32   /* more columns than this: a bad line */

/* Columns of the CSV formats with a header, in their documented order
 * (the order assumed when a file has no header). */
enum { R_TIME, R_TYPE, R_PRODUCT, R_CAT_ID, R_CAT_CODE, R_BRAND, R_PRICE,
       R_USER, R_SESSION, R__COUNT };
static const char *const rees46_cols[R__COUNT] = {
    "event_time", "event_type", "product_id", "category_id", "category_code",
    "brand", "price", "user_id", "user_session"};
enum { RR_TS, RR_VISITOR, RR_EVENT, RR_ITEM, RR_TXN, RR__COUNT };
static const char *const retailrocket_cols[RR__COUNT] = {
    "timestamp", "visitorid", "event", "itemid", "transactionid"};

typedef struct {
        int64_t ts_ms;
        size_t seq; /* file order: the tie-break that makes the sort stable */
} sort_key_t;

struct itd_reader_s {
        char *path;
        itd_format_t format;
        itd_zfile_t *zf;
        uint64_t line_no;
        uint64_t bad_lines;
        uint64_t total_bytes;
        char line[LINE_MAX_BYTES];
        char last_error[512];
        /* CSV with a header: column of each field, -1 = absent */
        int header_seen;
        int col[CSV_FIELDS_MAX];
        itd_ocf_t *ocf; /* Avro container */
        /* sorted mode */
        int sorted;
        itd_event_t *events;
        sort_key_t *order;
        size_t n_events, next;
};

static const char *const format_names[ITD_FORMAT__COUNT] = {
    [ITD_FORMAT_TAOBAO] = "taobao",
    [ITD_FORMAT_JSONL] = "jsonl",
    [ITD_FORMAT_REES46] = "rees46",
    [ITD_FORMAT_RETAILROCKET] = "retailrocket",
    [ITD_FORMAT_AVRO] = "avro"};

itd_err_t itd_format_parse(const char *s, itd_format_t *format) {
        for (int f = 0; f < ITD_FORMAT__COUNT; f++) {
                if (strcmp(s, format_names[f]) == 0) {
                        *format = (itd_format_t)f;
                        return ITD_OK;
                }
        }
        return ITD_ERR_PARSE;
}

const char *itd_format_name(itd_format_t format) {
        if ((int)format < 0 || format >= ITD_FORMAT__COUNT)
                return "?";
        return format_names[format];
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
 * Splits a CSV line in place into at most CSV_FIELDS_MAX fields. Quoted
 * fields ("a,b", "say ""hi""") are unquoted; REES46 exports quote some
 * category codes and brands. Returns the field count, or -1 if too many
 * fields or an unterminated quote.
 */
static int csv_split(char *line, char **field, size_t *len) {
        int n = 0;
        char *p = line;
        for (;;) {
                if (n == CSV_FIELDS_MAX)
                        return -1;
                char *out = p;
                field[n] = p;
                if (*p == '"') {
                        p++;
                        for (;;) {
                                if (*p == '\0')
                                        return -1;
                                if (*p == '"' && p[1] == '"') {
                                        *out++ = '"';
                                        p += 2;
                                } else if (*p == '"') {
                                        p++;
                                        break;
                                } else {
                                        *out++ = *p++;
                                }
                        }
                        if (*p != ',' && *p != '\0')
                                return -1;
                } else {
                        while (*p != ',' && *p != '\0')
                                out++, p++;
                }
                len[n] = (size_t)(out - field[n]);
                n++;
                if (*p == '\0') {
                        *out = '\0';
                        return n;
                }
                p++;
                *out = '\0';
        }
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so parsing needs neither timegm nor the TZ. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/* "2019-10-01 00:00:00 UTC" (also with 'T', ".123", "Z" or "+00:00"):
 * ms since the epoch; 0 on success. Only UTC: the dataset writes UTC. */
static int parse_utc_time(const char *s, int64_t *ms) {
        int y, mo, d, h, mi, sec, used = 0;
        if (sscanf(s, "%4d-%2d-%2d%*1[ T]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
                   &sec, &used) != 6 ||
            used == 0)
                return -1;
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
            sec > 60 || h < 0 || mi < 0 || sec < 0)
                return -1;
        const char *p = s + used;
        int64_t frac = 0;
        if (*p == '.') {
                int digits = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                        if (digits < 3)
                                frac = frac * 10 + (*p - '0');
                if (digits == 0)
                        return -1;
                for (; digits < 3; digits++)
                        frac *= 10;
        }
        if (strcmp(p, " UTC") != 0 && strcmp(p, "Z") != 0 &&
            strcmp(p, "+00:00") != 0 && *p != '\0')
                return -1;
        *ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
              (int64_t)sec * 1000 + frac;
        return 0;
}

/* A whole-token integer; 0 on success. */
static int parse_int64(const char *s, size_t n, int64_t *v) {
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (n == 0 || end != s + n || errno)
                return -1;
        *v = x;
        return 0;
}

/*
 * The first line of a REES46 or RetailRocket file: a header (found by its
 * first character not being a digit) names the columns, so extra or
 * reordered columns are fine; without one the documented order is used.
 * Returns 1 if the line was the header, 0 if it is data, -1 (errstr) if a
 * required column is missing.
 */
static int csv_header(itd_reader_t *rd, char *line, const char *const *names,
                      int n_names, const int *required, char *errstr,
                      size_t errstr_size) {
        rd->header_seen = 1;
        for (int k = 0; k < n_names; k++)
                rd->col[k] = k;
        if ((line[0] >= '0' && line[0] <= '9') || line[0] == '-')
                return 0;
        char copy[LINE_MAX_BYTES];
        snprintf(copy, sizeof copy, "%s", line);
        char *field[CSV_FIELDS_MAX];
        size_t len[CSV_FIELDS_MAX];
        int nf = csv_split(copy, field, len);
        for (int k = 0; k < n_names; k++) {
                rd->col[k] = -1;
                for (int i = 0; i < nf; i++) {
                        /* tolerate a UTF-8 byte order mark and spaces */
                        const char *f = field[i];
                        if (i == 0 && strncmp(f, "\xEF\xBB\xBF", 3) == 0)
                                f += 3;
                        f += strspn(f, " ");
                        size_t fl = strcspn(f, " ");
                        if (fl == strlen(names[k]) &&
                            strncasecmp(f, names[k], fl) == 0)
                                rd->col[k] = i;
                }
        }
        for (int k = 0; k < n_names; k++) {
                if (required[k] && rd->col[k] < 0) {
                        snprintf(errstr, errstr_size,
                                 "%s:%" PRIu64 ": the header has no column "
                                 "\"%s\" (a %s file needs it)",
                                 rd->path, rd->line_no, names[k],
                                 itd_format_name(rd->format));
                        return -1;
                }
        }
        return 1;
}

/* Field k of a split line per the header map, "" when absent. */
static const char *csv_get(const itd_reader_t *rd, char **field,
                           const size_t *len, int nf, int k, size_t *n) {
        int i = rd->col[k];
        if (i < 0 || i >= nf) {
                *n = 0;
                return "";
        }
        *n = len[i];
        return field[i];
}

/* An optional id: empty stays "", too long is a bad line. */
static int copy_opt(itd_reader_t *rd, char *dst, const char *s, size_t n,
                    const char *what) {
        if (n >= ITD_ID_MAX) {
                bad_line(rd, "%s is longer than %d bytes", what,
                         ITD_ID_MAX - 1);
                return -1;
        }
        memcpy(dst, s, n);
        dst[n] = '\0';
        return 0;
}

/* event_time,event_type,product_id,category_id,category_code,brand,price,
 * user_id,user_session (REES46). 0 = event, -1 = bad line. */
static int parse_rees46(itd_reader_t *rd, char *line, itd_event_t *ev) {
        char *field[CSV_FIELDS_MAX];
        size_t len[CSV_FIELDS_MAX], n;
        int nf = csv_split(line, field, len);
        if (nf < 0) {
                bad_line(rd, "not CSV (unterminated quote or more than %d "
                             "fields)", CSV_FIELDS_MAX);
                return -1;
        }
        if (rd->col[R_USER] >= nf || rd->col[R_TYPE] >= nf) {
                bad_line(rd, "%d fields, expected %d (event_time,event_type,"
                             "product_id,category_id,category_code,brand,"
                             "price,user_id,user_session)",
                         nf, R__COUNT);
                return -1;
        }
        itd_event_clear(ev);
        const char *s = csv_get(rd, field, len, nf, R_TIME, &n);
        if (parse_utc_time(s, &ev->ts_ms)) {
                bad_line(rd, "event_time \"%.*s\" is not like \"2019-10-01 "
                             "00:00:00 UTC\"",
                         (int)(n > 32 ? 32 : n), s);
                return -1;
        }
        static const struct {
                const char *name;
                itd_event_type_t type;
        } types[] = {{"view", ITD_EV_VIEW},
                     {"cart", ITD_EV_ADD_TO_CART},
                     {"remove_from_cart", ITD_EV_REMOVE_FROM_CART},
                     {"purchase", ITD_EV_PURCHASE}};
        s = csv_get(rd, field, len, nf, R_TYPE, &n);
        size_t t;
        for (t = 0; t < sizeof types / sizeof types[0]; t++)
                if (strcmp(s, types[t].name) == 0)
                        break;
        if (t == sizeof types / sizeof types[0]) {
                bad_line(rd, "event_type \"%.*s\" is not view, cart, "
                             "remove_from_cart or purchase",
                         (int)(n > 20 ? 20 : n), s);
                return -1;
        }
        ev->type = types[t].type;
        s = csv_get(rd, field, len, nf, R_USER, &n);
        if (copy_token(ev->user_id, ITD_ID_MAX, s, n)) {
                bad_line(rd, "user_id is %s", n ? "too long" : "empty");
                return -1;
        }
        s = csv_get(rd, field, len, nf, R_PRODUCT, &n);
        if (copy_opt(rd, ev->item_id, s, n, "product_id"))
                return -1;
        /* The readable code when there is one (same id -> same code in
         * this dataset), else the numeric id: never two names for one
         * category. */
        s = csv_get(rd, field, len, nf, R_CAT_CODE, &n);
        if (n == 0)
                s = csv_get(rd, field, len, nf, R_CAT_ID, &n);
        if (copy_opt(rd, ev->category, s, n, "category"))
                return -1;
        s = csv_get(rd, field, len, nf, R_SESSION, &n);
        if (copy_opt(rd, ev->session_id, s, n, "user_session"))
                return -1;
        s = csv_get(rd, field, len, nf, R_PRICE, &n);
        if (n) {
                char *end;
                double price = strtod(s, &end);
                if (end != s + n || !isfinite(price) || price < 0) {
                        bad_line(rd, "price \"%.*s\" is not a number >= 0",
                                 (int)(n > 24 ? 24 : n), s);
                        return -1;
                }
                ev->price = price;
        }
        return 0;
}

/* timestamp,visitorid,event,itemid,transactionid (RetailRocket;
 * timestamp in ms). 0 = event, -1 = bad line. */
static int parse_retailrocket(itd_reader_t *rd, char *line, itd_event_t *ev) {
        char *field[CSV_FIELDS_MAX];
        size_t len[CSV_FIELDS_MAX], n;
        int nf = csv_split(line, field, len);
        if (nf < 0 || rd->col[RR_EVENT] >= nf || rd->col[RR_VISITOR] >= nf) {
                bad_line(rd, "expected 5 fields (timestamp,visitorid,event,"
                             "itemid,transactionid)");
                return -1;
        }
        itd_event_clear(ev);
        const char *s = csv_get(rd, field, len, nf, RR_TS, &n);
        if (parse_int64(s, n, &ev->ts_ms)) {
                bad_line(rd, "timestamp \"%.*s\" is not an integer number of "
                             "milliseconds",
                         (int)(n > 24 ? 24 : n), s);
                return -1;
        }
        s = csv_get(rd, field, len, nf, RR_EVENT, &n);
        if (strcmp(s, "view") == 0)
                ev->type = ITD_EV_VIEW;
        else if (strcmp(s, "addtocart") == 0)
                ev->type = ITD_EV_ADD_TO_CART;
        else if (strcmp(s, "transaction") == 0)
                ev->type = ITD_EV_PURCHASE;
        else {
                bad_line(rd, "event \"%.*s\" is not view, addtocart or "
                             "transaction",
                         (int)(n > 20 ? 20 : n), s);
                return -1;
        }
        s = csv_get(rd, field, len, nf, RR_VISITOR, &n);
        if (copy_token(ev->user_id, ITD_ID_MAX, s, n)) {
                bad_line(rd, "visitorid is %s", n ? "too long" : "empty");
                return -1;
        }
        s = csv_get(rd, field, len, nf, RR_ITEM, &n);
        if (copy_opt(rd, ev->item_id, s, n, "itemid"))
                return -1;
        return 0;
}

/* The next record of an Avro container (ocf.h): a refused record is a
 * bad "line" (its record number). 1 = event, 0 = end, -1 = error. */
static int read_avro(itd_reader_t *rd, itd_event_t *ev, char *errstr,
                     size_t errstr_size) {
        for (;;) {
                char why[400];
                itd_err_t err = itd_ocf_next(rd->ocf, ev, why, sizeof why);
                rd->line_no = itd_ocf_record_no(rd->ocf);
                if (err == ITD_OK)
                        return 1;
                if (err == ITD_ERR_EOF)
                        return 0;
                if (err == ITD_ERR_DECODE) {
                        bad_line(rd, "record: %s", why);
                        continue;
                }
                snprintf(errstr, errstr_size, "%s", why);
                return -1;
        }
}

/*
 * Reads lines until one parses. 1 = event, 0 = end of input, -1 = I/O
 * error (errstr set).
 */
static int read_one(itd_reader_t *rd, itd_event_t *ev, char *errstr,
                    size_t errstr_size) {
        static const int rees46_required[R__COUNT] = {
            [R_TIME] = 1, [R_TYPE] = 1, [R_USER] = 1};
        static const int retailrocket_required[RR__COUNT] = {
            [RR_TS] = 1, [RR_VISITOR] = 1, [RR_EVENT] = 1};
        if (rd->format == ITD_FORMAT_AVRO)
                return read_avro(rd, ev, errstr, errstr_size);
        for (;;) {
                size_t n;
                itd_err_t err = itd_zfile_gets(rd->zf, rd->line,
                                               sizeof rd->line, &n, errstr,
                                               errstr_size);
                if (err == ITD_ERR_EOF)
                        return 0;
                if (err)
                        return -1;
                rd->line_no++;
                if (n == sizeof rd->line - 1 && rd->line[n - 1] != '\n') {
                        /* Too long, unless the file ends right here:
                         * drop the rest of it, then count it. */
                        char rest[1024];
                        size_t k;
                        int more = 0;
                        for (;;) {
                                err = itd_zfile_gets(rd->zf, rest,
                                                     sizeof rest, &k, errstr,
                                                     errstr_size);
                                if (err == ITD_ERR_EOF)
                                        break;
                                if (err)
                                        return -1;
                                more = 1;
                                if (rest[k - 1] == '\n')
                                        break;
                        }
                        if (more) {
                                bad_line(rd, "line longer than %d bytes",
                                         LINE_MAX_BYTES - 1);
                                continue;
                        }
                }
                if (memchr(rd->line, '\0', n)) {
                        bad_line(rd, "line holds a NUL byte");
                        continue;
                }
                while (n && (rd->line[n - 1] == '\n' ||
                             rd->line[n - 1] == '\r'))
                        rd->line[--n] = '\0';
                if (strspn(rd->line, " \t") == n)
                        continue; /* blank lines are not events */
                int rc;
                switch (rd->format) {
                case ITD_FORMAT_TAOBAO:
                        rc = parse_taobao(rd, rd->line, ev);
                        break;
                case ITD_FORMAT_REES46:
                case ITD_FORMAT_RETAILROCKET: {
                        int rees = rd->format == ITD_FORMAT_REES46;
                        if (!rd->header_seen) {
                                int h = csv_header(
                                    rd, rd->line,
                                    rees ? rees46_cols : retailrocket_cols,
                                    rees ? R__COUNT : RR__COUNT,
                                    rees ? rees46_required
                                         : retailrocket_required,
                                    errstr, errstr_size);
                                if (h < 0)
                                        return -1;
                                if (h > 0)
                                        continue;
                        }
                        rc = rees ? parse_rees46(rd, rd->line, ev)
                                  : parse_retailrocket(rd, rd->line, ev);
                        break;
                }
                default:
                        rc = parse_jsonl(rd, rd->line, n, ev);
                        break;
                }
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

static itd_err_t zfile_read(void *src, void *buf, size_t n, size_t *got,
                            char *errstr, size_t errstr_size) {
        return itd_zfile_read(src, buf, n, got, errstr, errstr_size);
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
        rd->zf = itd_zfile_open(path, errstr, errstr_size);
        if (!rd->zf)
                goto fail;
        if (format == ITD_FORMAT_AVRO &&
            !(rd->ocf = itd_ocf_open(zfile_read, rd->zf, path, errstr,
                                     errstr_size)))
                goto fail;
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
        itd_ocf_close(rd->ocf);
        itd_zfile_close(rd->zf);
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
        *done = itd_zfile_offset(rd->zf);
        if (*total && *done > *total)
                *done = *total;
}
