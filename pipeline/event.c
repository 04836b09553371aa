/*
 * event.c - the decoded event record: clearing, enum names, JSON in and out,
 * and the stable string hash.
 *
 * JSON is the replay and simulator format (one object per line) and the
 * daemon's `input.format: json`. Parsing goes through jansson, with the
 * same limits and reason codes (input.h) as the Avro walker in codec.c.
 * Writing is done by hand into the caller's buffer so `intentd simulate`
 * emits millions of lines without allocating per line.
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

#include "codec_int.h"

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

uint64_t itd_user_hash(const char *user_id) {
        return itd_hash_str(user_id, 0);
}

static itd_reason_t fail(itd_reason_t r, char *errstr, size_t errstr_size,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static itd_reason_t fail(itd_reason_t r, char *errstr, size_t errstr_size,
                         const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        itd_verrf(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return r;
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
static itd_reason_t get_string(json_t *obj, const char *name, char *dst,
                               size_t cap, size_t max_str, int required,
                               char *errstr, size_t errstr_size) {
        json_t *v = json_object_get(obj, name);
        size_t limit = cap - 1 < max_str ? cap - 1 : max_str;
        dst[0] = '\0';
        if (!v || json_is_null(v)) {
                if (required)
                        return fail(ITD_REASON_MISSING_USER_ID, errstr,
                                    errstr_size,
                                    "event field '%s': missing (required)",
                                    name);
                return ITD_REASON_OK;
        }
        if (!json_is_string(v))
                return fail(ITD_REASON_WRONG_TYPE, errstr, errstr_size,
                            "event field '%s': expected a string, got %s",
                            name, json_kind(v));
        size_t n = json_string_length(v);
        if (n > limit)
                return fail(ITD_REASON_STRING_TOO_LONG, errstr, errstr_size,
                            "event field '%s': string of %zu bytes exceeds "
                            "the limit of %zu",
                            name, n, limit);
        const char *s = json_string_value(v);
        if (memchr(s, 0, n))
                return fail(ITD_REASON_NUL_IN_STRING, errstr, errstr_size,
                            "event field '%s': string contains a NUL byte",
                            name);
        memcpy(dst, s, n + 1);
        if (required && n == 0)
                return fail(ITD_REASON_MISSING_USER_ID, errstr, errstr_size,
                            "event field '%s': empty string (required)",
                            name);
        return ITD_REASON_OK;
}

itd_reason_t itd_event_json_decode(const char *json, size_t len,
                                   size_t max_str, itd_event_t *ev,
                                   char *errstr, size_t errstr_size) {
        json_error_t jerr;
        itd_reason_t r = ITD_REASON_OK;
        size_t bad;
        itd_event_clear(ev);
        /* Before jansson, which would call bad UTF-8 a syntax error. */
        if ((bad = itd_utf8_check((const uint8_t *)json, len)) != len)
                return fail(ITD_REASON_INVALID_UTF8, errstr, errstr_size,
                            "event JSON: invalid UTF-8 at byte %zu (0x%02x)",
                            bad, (unsigned char)json[bad]);
        /* NULs are let through to be named by get_string; duplicate keys
         * are refused because which one wins is up to each parser. */
        json_t *obj = json_loadb(json, len,
                                 JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES,
                                 &jerr);
        if (!obj) {
                /* jansson quotes the token near the error, which may be a
                 * user id: the detail reaches logs, so keep only the
                 * message and the column. */
                char *near = strstr(jerr.text, " near ");
                if (near)
                        *near = '\0';
                return fail(ITD_REASON_JSON_SYNTAX, errstr, errstr_size,
                            "event JSON: %s at column %d", jerr.text,
                            jerr.column);
        }
        if (!json_is_object(obj)) {
                r = fail(ITD_REASON_JSON_NOT_OBJECT, errstr, errstr_size,
                         "event JSON: expected an object, got %s",
                         json_kind(obj));
                goto done;
        }

        if ((r = get_string(obj, "user_id", ev->user_id, sizeof ev->user_id,
                            max_str, 1, errstr, errstr_size)) ||
            (r = get_string(obj, "event_id", ev->event_id,
                            sizeof ev->event_id, max_str, 0, errstr,
                            errstr_size)) ||
            (r = get_string(obj, "item_id", ev->item_id, sizeof ev->item_id,
                            max_str, 0, errstr, errstr_size)) ||
            (r = get_string(obj, "category", ev->category,
                            sizeof ev->category, max_str, 0, errstr,
                            errstr_size)) ||
            (r = get_string(obj, "query", ev->query, sizeof ev->query,
                            max_str, 0, errstr, errstr_size)) ||
            (r = get_string(obj, "session_id", ev->session_id,
                            sizeof ev->session_id, max_str, 0, errstr,
                            errstr_size)))
                goto done;

        json_t *v = json_object_get(obj, "ts");
        if (!v || json_is_null(v)) {
                r = fail(ITD_REASON_MISSING_FIELD, errstr, errstr_size,
                         "event field 'ts': missing (required)");
                goto done;
        }
        if (!json_is_integer(v)) {
                r = fail(ITD_REASON_WRONG_TYPE, errstr, errstr_size,
                         "event field 'ts': expected integer milliseconds, "
                         "got %s",
                         json_kind(v));
                goto done;
        }
        ev->ts_ms = (int64_t)json_integer_value(v);

        v = json_object_get(obj, "type");
        if (!v || json_is_null(v)) {
                r = fail(ITD_REASON_MISSING_FIELD, errstr, errstr_size,
                         "event field 'type': missing (required)");
                goto done;
        }
        if (!json_is_string(v)) {
                r = fail(ITD_REASON_WRONG_TYPE, errstr, errstr_size,
                         "event field 'type': expected a string, got %s",
                         json_kind(v));
                goto done;
        }
        if (itd_event_type_parse(json_string_value(v), &ev->type)) {
                r = fail(ITD_REASON_UNKNOWN_EVENT_TYPE, errstr, errstr_size,
                         "event field 'type': unknown symbol \"%.40s\" "
                         "(expected VIEW, SEARCH, ADD_TO_CART, "
                         "REMOVE_FROM_CART, PURCHASE or FAVORITE)",
                         json_string_value(v));
                goto done;
        }

        v = json_object_get(obj, "price");
        if (v && !json_is_null(v)) {
                if (!json_is_number(v)) {
                        r = fail(ITD_REASON_WRONG_TYPE, errstr, errstr_size,
                                 "event field 'price': expected a number, "
                                 "got %s",
                                 json_kind(v));
                        goto done;
                }
                ev->price = json_number_value(v);
                if (!isfinite(ev->price)) {
                        r = fail(ITD_REASON_BAD_PRICE, errstr, errstr_size,
                                 "event field 'price': not finite");
                        goto done;
                }
        }
done:
        json_decref(obj);
        return r;
}

itd_err_t itd_event_from_json(const char *json, size_t len, itd_event_t *ev,
                              char *errstr, size_t errstr_size) {
        return itd_event_json_decode(json, len, SIZE_MAX, ev, errstr,
                                     errstr_size)
                   ? ITD_ERR_DECODE
                   : ITD_OK;
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
