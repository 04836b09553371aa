/*
 * event.c - the decoded event record: clearing, enum names, JSON in and out,
 * and the stable string hash.
 *
 * JSON is the replay and simulator format (one object per line). Parsing
 * goes through jansson; writing is done by hand into the caller's buffer so
 * `intentd simulate` emits millions of lines without allocating per line.
 */
#include "intentd/event.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

static const char *const type_names[ITD_EV__COUNT] = {
    "VIEW", "SEARCH", "ADD_TO_CART", "REMOVE_FROM_CART", "PURCHASE",
    "FAVORITE"};

void itd_event_clear(itd_event_t *ev) {
        ev->ts_ms = 0;
        ev->type = ITD_EV_VIEW;
        ev->price = NAN;
        ev->user_id[0] = '\0';
        ev->event_id[0] = '\0';
        ev->item_id[0] = '\0';
        ev->category[0] = '\0';
        ev->session_id[0] = '\0';
        ev->query[0] = '\0';
}

const char *itd_event_type_name(itd_event_type_t type) {
        if ((int)type < 0 || type >= ITD_EV__COUNT)
                return "?";
        return type_names[type];
}

itd_err_t itd_event_type_parse(const char *s, itd_event_type_t *type) {
        for (int i = 0; i < ITD_EV__COUNT; i++) {
                if (strcmp(s, type_names[i]) == 0) {
                        *type = (itd_event_type_t)i;
                        return ITD_OK;
                }
        }
        return ITD_ERR_PARSE;
}

uint64_t itd_hash_str(const char *s, uint64_t seed) {
        return XXH3_64bits_withSeed(s, strlen(s), seed);
}

static itd_err_t fail(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static itd_err_t fail(char *errstr, size_t errstr_size, const char *fmt, ...) {
        if (errstr && errstr_size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return ITD_ERR_DECODE;
}

static const char *json_kind(const json_t *v) {
        switch (json_typeof(v)) {
        case JSON_OBJECT: return "an object";
        case JSON_ARRAY: return "an array";
        case JSON_STRING: return "a string";
        case JSON_INTEGER: return "an integer";
        case JSON_REAL: return "a real number";
        case JSON_TRUE:
        case JSON_FALSE: return "a boolean";
        case JSON_NULL: return "null";
        }
        return "?";
}

/*
 * Copies string field `name` into dst[cap]. Missing or null leaves dst
 * empty unless the field is required. Too long is an error, not a cut: a cut
 * id would silently merge two users.
 */
static itd_err_t get_string(json_t *obj, const char *name, char *dst,
                            size_t cap, int required, char *errstr,
                            size_t errstr_size) {
        json_t *v = json_object_get(obj, name);
        dst[0] = '\0';
        if (!v || json_is_null(v)) {
                if (required)
                        return fail(errstr, errstr_size,
                                    "event field '%s': missing (required)",
                                    name);
                return ITD_OK;
        }
        if (!json_is_string(v))
                return fail(errstr, errstr_size,
                            "event field '%s': expected a string, got %s",
                            name, json_kind(v));
        size_t n = json_string_length(v);
        if (n >= cap)
                return fail(errstr, errstr_size,
                            "event field '%s': string of %zu bytes exceeds "
                            "the limit of %zu",
                            name, n, cap - 1);
        const char *s = json_string_value(v);
        if (strlen(s) != n)
                return fail(errstr, errstr_size,
                            "event field '%s': string contains a NUL byte",
                            name);
        memcpy(dst, s, n + 1);
        if (required && n == 0)
                return fail(errstr, errstr_size,
                            "event field '%s': empty string (required)",
                            name);
        return ITD_OK;
}

itd_err_t itd_event_from_json(const char *json, size_t len, itd_event_t *ev,
                              char *errstr, size_t errstr_size) {
        json_error_t jerr;
        itd_err_t err = ITD_OK;
        itd_event_clear(ev);
        json_t *obj = json_loadb(json, len, 0, &jerr);
        if (!obj)
                return fail(errstr, errstr_size,
                            "event JSON: %s at column %d", jerr.text,
                            jerr.column);
        if (!json_is_object(obj)) {
                err = fail(errstr, errstr_size,
                           "event JSON: expected an object, got %s",
                           json_kind(obj));
                goto done;
        }

        if ((err = get_string(obj, "user_id", ev->user_id, sizeof ev->user_id,
                              1, errstr, errstr_size)) ||
            (err = get_string(obj, "event_id", ev->event_id,
                              sizeof ev->event_id, 0, errstr, errstr_size)) ||
            (err = get_string(obj, "item_id", ev->item_id, sizeof ev->item_id,
                              0, errstr, errstr_size)) ||
            (err = get_string(obj, "category", ev->category,
                              sizeof ev->category, 0, errstr, errstr_size)) ||
            (err = get_string(obj, "query", ev->query, sizeof ev->query, 0,
                              errstr, errstr_size)) ||
            (err = get_string(obj, "session_id", ev->session_id,
                              sizeof ev->session_id, 0, errstr, errstr_size)))
                goto done;

        json_t *v = json_object_get(obj, "ts");
        if (!v || json_is_null(v)) {
                err = fail(errstr, errstr_size,
                           "event field 'ts': missing (required)");
                goto done;
        }
        if (!json_is_integer(v)) {
                err = fail(errstr, errstr_size,
                           "event field 'ts': expected integer milliseconds, "
                           "got %s",
                           json_kind(v));
                goto done;
        }
        ev->ts_ms = (int64_t)json_integer_value(v);

        v = json_object_get(obj, "type");
        if (!v || json_is_null(v)) {
                err = fail(errstr, errstr_size,
                           "event field 'type': missing (required)");
                goto done;
        }
        if (!json_is_string(v)) {
                err = fail(errstr, errstr_size,
                           "event field 'type': expected a string, got %s",
                           json_kind(v));
                goto done;
        }
        if (itd_event_type_parse(json_string_value(v), &ev->type)) {
                err = fail(errstr, errstr_size,
                           "event field 'type': unknown symbol \"%.40s\" "
                           "(expected VIEW, SEARCH, ADD_TO_CART, "
                           "REMOVE_FROM_CART, PURCHASE or FAVORITE)",
                           json_string_value(v));
                goto done;
        }

        v = json_object_get(obj, "price");
        if (v && !json_is_null(v)) {
                if (!json_is_number(v)) {
                        err = fail(errstr, errstr_size,
                                   "event field 'price': expected a number, "
                                   "got %s",
                                   json_kind(v));
                        goto done;
                }
                ev->price = json_number_value(v);
                if (!isfinite(ev->price)) {
                        err = fail(errstr, errstr_size,
                                   "event field 'price': not finite");
                        goto done;
                }
        }
done:
        json_decref(obj);
        return err;
}

/* Appends bytes to buf while tracking overflow; the caller checks once. */
typedef struct {
        char *buf;
        size_t cap, len;
        int full;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
        if (o->full || o->len + n >= o->cap) {
                o->full = 1;
                return;
        }
        memcpy(o->buf + o->len, s, n);
        o->len += n;
}

static void put_str(out_t *o, const char *key, const char *s) {
        static const char hex[] = "0123456789abcdef";
        put(o, "\"", 1);
        put(o, key, strlen(key));
        put(o, "\":\"", 3);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        char e[2] = {'\\', (char)c};
                        put(o, e, 2);
                } else if (c < 0x20) {
                        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4],
                                     hex[c & 15]};
                        put(o, e, 6);
                } else {
                        put(o, (const char *)&c, 1);
                }
        }
        put(o, "\"", 1);
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static int fmt_double(char *buf, size_t cap, double x) {
        int n = snprintf(buf, cap, "%.15g", x);
        if (strtod(buf, NULL) != x)
                n = snprintf(buf, cap, "%.17g", x);
        /* "12" would read back as a JSON integer: still a number, fine. */
        return n;
}

size_t itd_event_to_json(const itd_event_t *ev, char *buf, size_t cap) {
        out_t o = {buf, cap, 0, 0};
        char num[40];
        int n;
        put(&o, "{", 1);
        if (ev->event_id[0]) {
                put_str(&o, "event_id", ev->event_id);
                put(&o, ",", 1);
        }
        put_str(&o, "user_id", ev->user_id);
        n = snprintf(num, sizeof num, ",\"ts\":%" PRId64 ",", ev->ts_ms);
        put(&o, num, (size_t)n);
        put_str(&o, "type", itd_event_type_name(ev->type));
        if (ev->item_id[0]) {
                put(&o, ",", 1);
                put_str(&o, "item_id", ev->item_id);
        }
        if (ev->category[0]) {
                put(&o, ",", 1);
                put_str(&o, "category", ev->category);
        }
        if (isfinite(ev->price)) {
                put(&o, ",\"price\":", 9);
                n = fmt_double(num, sizeof num, ev->price);
                put(&o, num, (size_t)n);
        }
        if (ev->query[0]) {
                put(&o, ",", 1);
                put_str(&o, "query", ev->query);
        }
        if (ev->session_id[0]) {
                put(&o, ",", 1);
                put_str(&o, "session_id", ev->session_id);
        }
        put(&o, "}", 1);
        if (o.full)
                return 0;
        buf[o.len] = '\0';
        return o.len;
}
