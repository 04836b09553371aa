/*
 * conf.c - the conf object: defaults, itd_conf_set, typed parsing and
 * range checks of one value, the kafka.* pass-through and SIGHUP reload,
 * all driven by the option table in conf_table.c. The YAML loader is in
 * conf_yaml.c, the docs generators in conf_docs.c.
 */
#include "intentd/conf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <librdkafka/rdkafka.h>

#include "conf_int.h"
#include "intentd/mem.h"

/* ------------------------------------------------------------------ */
/* small helpers */

/* Appends to a NUL-terminated buffer; output past cap is cut. */
static void append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t cap, const char *fmt, ...) {
        if (!buf || cap == 0)
                return;
        size_t len = strlen(buf);
        if (len + 1 >= cap)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf + len, cap - len, fmt, ap);
        va_end(ap);
}

const struct prop *itd_conf_prop_find(const char *name) {
        for (size_t i = 0; i < itd_conf_n_props; i++)
                if (strcmp(itd_conf_props[i].name, name) == 0)
                        return &itd_conf_props[i];
        return NULL;
}

const char *itd_conf_type_name(const struct prop *p) {
        switch (p->type) {
        case PT_STRING: return "string";
        case PT_INT: return "integer";
        case PT_DOUBLE: return "number";
        case PT_BOOL: return "boolean";
        case PT_DURATION: return "duration";
        case PT_ENUM: return "enum";
        case PT_DURATION_LIST: return "duration list";
        case PT_INT_LIST: return "integer list";
        }
        return "?";
}

static char *trim(char *s) {
        while (isspace((unsigned char)*s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1]))
                s[--n] = '\0';
        return s;
}

/* ------------------------------------------------------------------ */
/* parsing and checking one value */

/* Decimal integer, optional sign, `_` allowed between digits (YAML 1.1). */
static bool parse_int(const char *s, int64_t *out) {
        const char *c = s;
        bool neg = false;
        if (*c == '+' || *c == '-')
                neg = *c++ == '-';
        if (!isdigit((unsigned char)*c))
                return false;
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        uint64_t n = 0;
        for (; *c; c++) {
                if (*c == '_' && isdigit((unsigned char)c[-1]) &&
                    isdigit((unsigned char)c[1]))
                        continue;
                if (!isdigit((unsigned char)*c))
                        return false;
                unsigned d = (unsigned)(*c - '0');
                if (n > (limit - d) / 10)
                        return false;
                n = n * 10 + d;
        }
        *out = neg ? (int64_t)(0 - n) : (int64_t)n;
        return true;
}

static bool parse_double(const char *s, double *out) {
        if (!*s)
                return false;
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (*end != '\0' || errno == ERANGE || !isfinite(d))
                return false;
        *out = d;
        return true;
}

static bool parse_bool(const char *s, int *out) {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        for (size_t i = 0; i < 4; i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *out = 1;
                        return true;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *out = 0;
                        return true;
                }
        }
        return false;
}

/* Kafka's topic rule: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
static bool topic_ok(const char *s) {
        if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_' &&
                    *c != '-')
                        return false;
        return true;
}

static void syms_text(const struct prop *p, char *buf, size_t cap) {
        buf[0] = '\0';
        for (size_t i = 0; p->syms[i]; i++)
                append(buf, cap, "%s%s", i ? ", " : "", p->syms[i]);
}

/* The allowed values of one entry, as people read them ("1s..30d"). */
void itd_conf_range_text(const struct prop *p, char *buf, size_t cap) {
        char a[32], b[32];
        switch (elem_type(p)) {
        case PT_STRING:
                snprintf(buf, cap, "%" PRId64 "..%" PRId64 " characters%s",
                         p->min, p->max,
                         p->topic ? " of a-z A-Z 0-9 . _ -" : "");
                break;
        case PT_INT:
                snprintf(buf, cap, "%" PRId64 "..%" PRId64, p->min, p->max);
                break;
        case PT_DURATION:
                snprintf(buf, cap, "%s..%s",
                         itd_duration_format(p->min, a, sizeof a),
                         itd_duration_format(p->max, b, sizeof b));
                break;
        case PT_DOUBLE:
                snprintf(buf, cap, "%s%g..%g", p->dmin_excl ? ">" : "",
                         p->dmin, p->dmax);
                break;
        case PT_BOOL:
                snprintf(buf, cap, "true, false");
                break;
        case PT_ENUM:
                syms_text(p, buf, cap);
                break;
        default:
                buf[0] = '\0';
        }
}

union val {
        int64_t i; /* int, duration */
        double d;
        int e;     /* enum, bool */
};

/*
 * Parses and range-checks one entry (a scalar option's value or one list
 * entry). `what` names it in the message: the option, or "entry 2".
 */
static itd_err_t check_value(const struct prop *p, const char *text,
                             const char *what, union val *v, char *errstr,
                             size_t errstr_size) {
        char range[160];
        itd_conf_range_text(p, range, sizeof range);
        bool in_range = true;
        switch (elem_type(p)) {
        case PT_STRING: {
                size_t n = strlen(text);
                if ((int64_t)n < p->min || (int64_t)n > p->max) {
                        itd_errf(errstr, errstr_size,
                               "%s: \"%.64s\" has %zu characters, allowed "
                               "%s",
                               what, text, n, range);
                        return ITD_ERR_CONF;
                }
                if (p->topic && !topic_ok(text)) {
                        itd_errf(errstr, errstr_size,
                               "%s: \"%.64s\" is not a valid Kafka topic name "
                               "(%s)",
                               what, text, range);
                        return ITD_ERR_CONF;
                }
                char why[256];
                if (p->check && !p->check(text, why, sizeof why)) {
                        itd_errf(errstr, errstr_size, "%s: \"%.64s\": %s",
                               what, text, why);
                        return ITD_ERR_CONF;
                }
                return ITD_OK;
        }
        case PT_INT:
                if (!parse_int(text, &v->i)) {
                        itd_errf(errstr, errstr_size,
                               "%s: \"%.64s\" is not an integer", what, text);
                        return ITD_ERR_CONF;
                }
                in_range = v->i >= p->min && v->i <= p->max;
                break;
        case PT_DURATION: {
                itd_err_t err = itd_duration_parse(text, &v->i);
                if (err == ITD_ERR_RANGE) {
                        in_range = false;
                } else if (err) {
                        itd_errf(errstr, errstr_size,
                               "%s: \"%.64s\" is not a duration (500ms, 10s, "
                               "30m, 24h, 7d; a bare integer is ms)",
                               what, text);
                        return ITD_ERR_CONF;
                } else {
                        in_range = v->i >= p->min && v->i <= p->max;
                }
                break;
        }
        case PT_DOUBLE:
                if (!parse_double(text, &v->d)) {
                        itd_errf(errstr, errstr_size,
                               "%s: \"%.64s\" is not a finite number", what,
                               text);
                        return ITD_ERR_CONF;
                }
                in_range = (p->dmin_excl ? v->d > p->dmin : v->d >= p->dmin) &&
                           v->d <= p->dmax;
                break;
        case PT_BOOL:
                if (!parse_bool(text, &v->e)) {
                        itd_errf(errstr, errstr_size,
                               "%s: \"%.64s\" is not true or false", what,
                               text);
                        return ITD_ERR_CONF;
                }
                break;
        case PT_ENUM:
                for (int i = 0; p->syms[i]; i++) {
                        if (strcasecmp(text, p->syms[i]) == 0) {
                                v->e = i;
                                return ITD_OK;
                        }
                }
                itd_errf(errstr, errstr_size, "%s: \"%.64s\" is not one of %s",
                       what, text, range);
                return ITD_ERR_CONF;
        default:
                return ITD_ERR_CONF;
        }
        if (!in_range) {
                itd_errf(errstr, errstr_size, "%s: \"%.64s\" is outside %s", what,
                       text, range);
                return ITD_ERR_CONF;
        }
        return ITD_OK;
}

/*
 * Sets p from n entries of text (n == 1 for scalars). Nothing changes
 * unless every entry is valid. On error *bad is the entry at fault (n when
 * the count itself is wrong), for the YAML loader to point at.
 */
itd_err_t itd_conf_prop_set(itd_conf_t *conf, const struct prop *p,
                            const char *const *items, size_t n, size_t *bad,
                            char *errstr, size_t errstr_size) {
        *bad = n;
        if (!is_list(p)) {
                if (n != 1) {
                        itd_errf(errstr, errstr_size,
                               "%s: expected a single %s, got %zu values",
                               p->name, itd_conf_type_name(p), n);
                        return ITD_ERR_CONF;
                }
                union val v;
                *bad = 0;
                itd_err_t err =
                    check_value(p, items[0], p->name, &v, errstr, errstr_size);
                if (err)
                        return err;
                switch (p->type) {
                case PT_STRING: {
                        char **s = field(conf, p);
                        free(*s);
                        *s = itd_xstrdup(items[0]);
                        break;
                }
                case PT_INT:
                case PT_DURATION:
                        *(int64_t *)field(conf, p) = v.i;
                        break;
                case PT_DOUBLE:
                        *(double *)field(conf, p) = v.d;
                        break;
                default: /* PT_BOOL, PT_ENUM */
                        *(int *)field(conf, p) = v.e;
                }
                return ITD_OK;
        }

        if (n < p->nmin || n > p->nmax) {
                itd_errf(errstr, errstr_size,
                       "%s: %zu entries given, it takes %zu..%zu", p->name, n,
                       p->nmin, p->nmax);
                return ITD_ERR_CONF;
        }
        int64_t vals[ITD_CONF_LIST_MAX];
        for (size_t i = 0; i < n; i++) {
                char what[160];
                union val v;
                snprintf(what, sizeof what, "%s entry %zu", p->name, i + 1);
                *bad = i;
                itd_err_t err =
                    check_value(p, items[i], what, &v, errstr, errstr_size);
                if (err)
                        return err;
                if (p->ascending && i > 0 && v.i <= vals[i - 1]) {
                        itd_errf(errstr, errstr_size,
                               "%s: \"%.64s\" is not greater than the entry "
                               "before (\"%.64s\"); entries must be strictly "
                               "ascending",
                               what, items[i], items[i - 1]);
                        return ITD_ERR_CONF;
                }
                vals[i] = v.i;
        }
        memcpy(field(conf, p), vals, n * sizeof vals[0]);
        *count_field(conf, p) = n;
        return ITD_OK;
}

/* Sets p from one text: lists are comma-separated, optionally in [ ]. */
itd_err_t itd_conf_prop_set_text(itd_conf_t *conf, const struct prop *p,
                                 const char *text, char *errstr,
                                 size_t errstr_size) {
        char *copy = itd_xstrdup(text);
        char *s = trim(copy);
        size_t bad;
        itd_err_t err;
        if (!is_list(p)) {
                const char *item = s;
                err = itd_conf_prop_set(conf, p, &item, 1, &bad, errstr,
                                        errstr_size);
                free(copy);
                return err;
        }
        size_t len = strlen(s);
        if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
                s[len - 1] = '\0';
                s = trim(s + 1);
        }
        size_t n = 1;
        for (const char *c = s; *c; c++)
                n += *c == ',';
        const char **items = itd_xcalloc(n, sizeof *items);
        n = 0;
        for (char *tok = s, *next; tok; tok = next) {
                next = strchr(tok, ',');
                if (next)
                        *next++ = '\0';
                items[n++] = trim(tok);
        }
        /* "" is no entry at all; "5m,,1h" has an empty one. */
        if (n == 1 && items[0][0] == '\0')
                n = 0;
        for (size_t i = 0; i < n; i++) {
                if (items[i][0] == '\0') {
                        itd_errf(errstr, errstr_size, "%s: entry %zu is empty",
                               p->name, i + 1);
                        free(items);
                        free(copy);
                        return ITD_ERR_CONF;
                }
        }
        err = itd_conf_prop_set(conf, p, items, n, &bad, errstr, errstr_size);
        free(items);
        free(copy);
        return err;
}

/* ------------------------------------------------------------------ */
/* kafka pass-through */

/*
 * Asks librdkafka whether it knows the property and likes the value, so a
 * typo is reported with its line at load time instead of at rd_kafka_new.
 * plugin.library.paths is not tried: setting it loads the plugins.
 */
static itd_err_t kafka_check(const char *key, const char *value, char *errstr,
                             size_t errstr_size) {
        if (strcmp(key, "plugin.library.paths") == 0)
                return ITD_OK;
        char why[512];
        rd_kafka_conf_t *rk_conf = rd_kafka_conf_new();
        rd_kafka_conf_res_t res =
            rd_kafka_conf_set(rk_conf, key, value, why, sizeof why);
        rd_kafka_conf_destroy(rk_conf);
        if (res != RD_KAFKA_CONF_OK) {
                itd_errf(errstr, errstr_size, "kafka.%s: librdkafka: %s", key,
                       why);
                return ITD_ERR_CONF;
        }
        return ITD_OK;
}

static itd_err_t kafka_set(itd_conf_t *conf, const char *key,
                           const char *value, char *errstr,
                           size_t errstr_size) {
        if (key[0] == '\0') {
                itd_errf(errstr, errstr_size,
                       "kafka.: the librdkafka property name is empty");
                return ITD_ERR_CONF;
        }
        itd_err_t err = kafka_check(key, value, errstr, errstr_size);
        if (err)
                return err;
        for (size_t i = 0; i < conf->n_kafka; i++) {
                if (strcmp(conf->kafka_keys[i], key) == 0) {
                        /* Later wins but keeps the first position, so the
                         * order librdkafka sees stays the file's. */
                        free(conf->kafka_values[i]);
                        conf->kafka_values[i] = itd_xstrdup(value);
                        return ITD_OK;
                }
        }
        size_t n = conf->n_kafka + 1;
        conf->kafka_keys = itd_xrealloc(conf->kafka_keys, n * sizeof(char *));
        conf->kafka_values =
            itd_xrealloc(conf->kafka_values, n * sizeof(char *));
        conf->kafka_keys[n - 1] = itd_xstrdup(key);
        conf->kafka_values[n - 1] = itd_xstrdup(value);
        conf->n_kafka = n;
        return ITD_OK;
}

/* ------------------------------------------------------------------ */
/* the conf object */

/* Where options got their values: name -> "file:line:column" or "-o". */
struct itd_conf_src_s {
        size_t n, cap;
        char **name, **where;
};

static void src_free(struct itd_conf_src_s *src) {
        if (!src)
                return;
        for (size_t i = 0; i < src->n; i++) {
                free(src->name[i]);
                free(src->where[i]);
        }
        free(src->name);
        free(src->where);
        free(src);
}

void itd_conf_note(itd_conf_t *conf, const char *name, const char *where) {
        struct itd_conf_src_s *src = conf->src;
        if (!src)
                src = conf->src = itd_xcalloc(1, sizeof *src);
        for (size_t i = 0; i < src->n; i++) {
                if (strcmp(src->name[i], name) == 0) {
                        free(src->where[i]);
                        src->where[i] = itd_xstrdup(where);
                        return;
                }
        }
        if (src->n == src->cap) {
                src->cap = src->cap ? 2 * src->cap : 16;
                src->name = itd_xrealloc(src->name,
                                         src->cap * sizeof *src->name);
                src->where = itd_xrealloc(src->where,
                                          src->cap * sizeof *src->where);
        }
        src->name[src->n] = itd_xstrdup(name);
        src->where[src->n++] = itd_xstrdup(where);
}

const char *itd_conf_where(const itd_conf_t *conf, const char *name) {
        const struct itd_conf_src_s *src = conf->src;
        for (size_t i = 0; src && i < src->n; i++)
                if (strcmp(src->name[i], name) == 0)
                        return src->where[i];
        return NULL;
}

void itd_conf_note_override(itd_conf_t *conf, const char *name) {
        itd_conf_note(conf, name, "-o");
}

static void conf_fini(itd_conf_t *conf) {
        src_free(conf->src);
        conf->src = NULL;
        for (size_t i = 0; i < itd_conf_n_props; i++)
                if (itd_conf_props[i].type == PT_STRING)
                        free(*(char **)field(conf, &itd_conf_props[i]));
        for (size_t i = 0; i < conf->n_kafka; i++) {
                free(conf->kafka_keys[i]);
                free(conf->kafka_values[i]);
        }
        free(conf->kafka_keys);
        free(conf->kafka_values);
}

itd_conf_t *itd_conf_new(void) {
        itd_conf_t *conf = itd_xcalloc(1, sizeof *conf);
        for (size_t i = 0; i < itd_conf_n_props; i++) {
                const struct prop *p = &itd_conf_props[i];
                char why[256];
                if (itd_conf_prop_set_text(conf, p, p->def, why,
                                           sizeof why)) {
                        /* A default that fails its own checks is our bug;
                         * tests catch it before anyone runs it. */
                        fprintf(stderr, "<2>intentd: bad default in the "
                                        "option table: %s\n",
                                why);
                        abort();
                }
        }
        return conf;
}

void itd_conf_destroy(itd_conf_t *conf) {
        if (!conf)
                return;
        conf_fini(conf);
        free(conf);
}

/* Deep copy, for loading a file all-or-nothing. */
itd_conf_t *itd_conf_dup(const itd_conf_t *src) {
        itd_conf_t *conf = itd_xmalloc(sizeof *conf);
        *conf = *src;
        for (size_t i = 0; i < itd_conf_n_props; i++) {
                if (itd_conf_props[i].type != PT_STRING)
                        continue;
                char **s = field(conf, &itd_conf_props[i]);
                if (*s)
                        *s = itd_xstrdup(*s);
        }
        conf->kafka_keys = NULL;
        conf->kafka_values = NULL;
        conf->src = NULL;
        for (size_t i = 0; src->src && i < src->src->n; i++)
                itd_conf_note(conf, src->src->name[i], src->src->where[i]);
        if (src->n_kafka) {
                conf->kafka_keys = itd_xcalloc(src->n_kafka, sizeof(char *));
                conf->kafka_values = itd_xcalloc(src->n_kafka, sizeof(char *));
                for (size_t i = 0; i < src->n_kafka; i++) {
                        conf->kafka_keys[i] = itd_xstrdup(src->kafka_keys[i]);
                        conf->kafka_values[i] =
                            itd_xstrdup(src->kafka_values[i]);
                }
        }
        return conf;
}

itd_err_t itd_conf_set(itd_conf_t *conf, const char *name, const char *value,
                       char *errstr, size_t errstr_size) {
        if (!conf || !name || !value) {
                itd_errf(errstr, errstr_size, "%s: no value",
                       name ? name : "(null)");
                return ITD_ERR_ARG;
        }
        if (strncmp(name, "kafka.", 6) == 0)
                return kafka_set(conf, name + 6, value, errstr, errstr_size);
        const struct prop *p = itd_conf_prop_find(name);
        if (!p) {
                itd_conf_unknown_option(name, errstr, errstr_size);
                return ITD_ERR_CONF;
        }
        return itd_conf_prop_set_text(conf, p, value, errstr, errstr_size);
}

/* Canonical text of the current value: what the YAML and docs show. */
void itd_conf_format_value(const itd_conf_t *conf, const struct prop *p,
                           char *buf, size_t cap) {
        const void *f = cfield(conf, p);
        buf[0] = '\0';
        switch (p->type) {
        case PT_STRING:
                snprintf(buf, cap, "%s", *(char *const *)f ? *(char *const *)f
                                                           : "");
                break;
        case PT_INT:
                snprintf(buf, cap, "%" PRId64, *(const int64_t *)f);
                break;
        case PT_DURATION:
                itd_duration_format(*(const int64_t *)f, buf, cap);
                break;
        case PT_DOUBLE: {
                /* Shortest text that reads back to the same double. */
                double d = *(const double *)f;
                for (int prec = 6; prec <= 17; prec++) {
                        snprintf(buf, cap, "%.*g", prec, d);
                        if (strtod(buf, NULL) == d)
                                break;
                }
                /* "1e-06" reads better as "1e-6", as people write it. */
                char *e = strchr(buf, 'e');
                if (e) {
                        char *digits = e + 1;
                        if (*digits == '+')
                                memmove(digits, digits + 1, strlen(digits));
                        else if (*digits == '-')
                                digits++;
                        while (digits[0] == '0' && digits[1])
                                memmove(digits, digits + 1, strlen(digits));
                }
                break;
        }
        case PT_BOOL:
                snprintf(buf, cap, "%s", *(const int *)f ? "true" : "false");
                break;
        case PT_ENUM: {
                int e = *(const int *)f;
                int n = 0;
                while (p->syms[n])
                        n++;
                snprintf(buf, cap, "%s", e >= 0 && e < n ? p->syms[e] : "?");
                break;
        }
        case PT_DURATION_LIST:
        case PT_INT_LIST: {
                const int64_t *v = f;
                size_t n = ccount_field(conf, p);
                for (size_t i = 0; i < n; i++) {
                        char one[32];
                        if (p->type == PT_DURATION_LIST)
                                itd_duration_format(v[i], one, sizeof one);
                        else
                                snprintf(one, sizeof one, "%" PRId64, v[i]);
                        append(buf, cap, "%s%s", i ? ", " : "", one);
                }
                break;
        }
        }
}

/* Copies one option's value from src to dst (strings duplicated). */
static void copy_value(itd_conf_t *dst, const itd_conf_t *src,
                       const struct prop *p) {
        switch (p->type) {
        case PT_STRING: {
                char **d = field(dst, p);
                const char *s = *(char *const *)cfield(src, p);
                free(*d);
                *d = s ? itd_xstrdup(s) : NULL;
                break;
        }
        case PT_INT:
        case PT_DURATION:
                *(int64_t *)field(dst, p) = *(const int64_t *)cfield(src, p);
                break;
        case PT_DOUBLE:
                *(double *)field(dst, p) = *(const double *)cfield(src, p);
                break;
        case PT_BOOL:
        case PT_ENUM:
                *(int *)field(dst, p) = *(const int *)cfield(src, p);
                break;
        case PT_DURATION_LIST:
        case PT_INT_LIST:
                memcpy(field(dst, p), cfield(src, p),
                       ITD_CONF_LIST_MAX * sizeof(int64_t));
                *count_field(dst, p) = ccount_field(src, p);
                break;
        }
}

static bool kafka_equal(const itd_conf_t *a, const itd_conf_t *b) {
        if (a->n_kafka != b->n_kafka)
                return false;
        for (size_t i = 0; i < a->n_kafka; i++)
                if (strcmp(a->kafka_keys[i], b->kafka_keys[i]) != 0 ||
                    strcmp(a->kafka_values[i], b->kafka_values[i]) != 0)
                        return false;
        return true;
}

size_t itd_conf_reload(itd_conf_t *conf, const itd_conf_t *fresh,
                       char *applied, size_t applied_size, char *restart,
                       size_t restart_size) {
        if (applied && applied_size)
                applied[0] = '\0';
        if (restart && restart_size)
                restart[0] = '\0';
        size_t n_applied = 0, n_restart = 0;
        for (size_t i = 0; i < itd_conf_n_props; i++) {
                const struct prop *p = &itd_conf_props[i];
                char now[256], then[256];
                /* Canonical text compares every type alike; doubles print
                 * round-trip exact, so no change goes unnoticed. */
                itd_conf_format_value(conf, p, now, sizeof now);
                itd_conf_format_value(fresh, p, then, sizeof then);
                if (strcmp(now, then) == 0)
                        continue;
                if (p->reloadable) {
                        copy_value(conf, fresh, p);
                        append(applied, applied_size, "%s%s=%s",
                               n_applied++ ? ", " : "", p->name, then);
                } else {
                        append(restart, restart_size, "%s%s",
                               n_restart++ ? ", " : "", p->name);
                }
        }
        if (!kafka_equal(conf, fresh))
                append(restart, restart_size, "%skafka.*",
                       n_restart ? ", " : "");
        return n_applied;
}

