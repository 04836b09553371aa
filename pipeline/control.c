/*
 * control.c - control records in (Avro or JSON) and acknowledgements out
 * (Avro), see control.h. Both records are small and flat, so they are
 * written and read field by field: the bounds-checked cursor (avro_cur.h)
 * reads, a few lines of zig-zag varints write.
 */
#include "intentd/control.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "avro_cur.h"
#include "codec_int.h"

static const char *const type_names[ITD_CONTROL__COUNT] = {"ERASE"};

/* ------------------------------------------------------------ writing */

typedef struct {
        uint8_t *p, *end;
        int full;
} wr_t;

static void put_long(wr_t *w, int64_t v) {
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        do {
                uint8_t b = (uint8_t)(z & 0x7f);
                z >>= 7;
                if (z)
                        b |= 0x80;
                if (w->p == w->end) {
                        w->full = 1;
                        return;
                }
                *w->p++ = b;
        } while (z);
}

static void put_string(wr_t *w, const char *s) {
        size_t n = strlen(s);
        put_long(w, (int64_t)n);
        if ((size_t)(w->end - w->p) < n) {
                w->full = 1;
                return;
        }
        memcpy(w->p, s, n);
        w->p += n;
}

/* The Confluent header when schema_id >= 0. */
static wr_t wr_begin(void *buf, size_t cap, int32_t schema_id) {
        wr_t w = {buf, (uint8_t *)buf + cap, 0};
        if (schema_id < 0)
                return w;
        if (cap < ITD_CONFLUENT_HDR) {
                w.full = 1;
                return w;
        }
        w.p[0] = 0;
        w.p[1] = (uint8_t)((uint32_t)schema_id >> 24);
        w.p[2] = (uint8_t)((uint32_t)schema_id >> 16);
        w.p[3] = (uint8_t)((uint32_t)schema_id >> 8);
        w.p[4] = (uint8_t)schema_id;
        w.p += ITD_CONFLUENT_HDR;
        return w;
}

static itd_err_t wr_end(const wr_t *w, const void *buf, size_t *len) {
        if (w->full)
                return ITD_ERR_FULL;
        *len = (size_t)(w->p - (const uint8_t *)buf);
        return ITD_OK;
}

itd_err_t itd_control_encode(const itd_control_t *c, int32_t schema_id,
                             void *buf, size_t cap, size_t *len) {
        wr_t w = wr_begin(buf, cap, schema_id);
        put_long(&w, (int64_t)c->type);
        put_string(&w, c->user_id);
        put_string(&w, c->request_id);
        put_long(&w, c->requested_at_ms);
        return wr_end(&w, buf, len);
}

itd_err_t itd_audit_encode(const itd_audit_t *a, int32_t schema_id,
                           void *buf, size_t cap, size_t *len) {
        wr_t w = wr_begin(buf, cap, schema_id);
        put_string(&w, a->request_id);
        put_long(&w, (int64_t)a->type);
        put_string(&w, a->user);
        put_long(&w, a->requested_at_ms);
        put_long(&w, a->completed_at_ms);
        if (a->n_partitions) {
                put_long(&w, (int64_t)a->n_partitions);
                for (size_t i = 0; i < a->n_partitions; i++)
                        put_long(&w, a->partitions[i]);
        }
        put_long(&w, 0); /* end of the array */
        const uint64_t removed[] = {a->users,    a->events,   a->pending,
                                    a->queued,   a->triggers, a->risk_triggers,
                                    a->cached};
        for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++)
                put_long(&w, (int64_t)removed[i]);
        put_long(&w, (int64_t)a->cut);
        return wr_end(&w, buf, len);
}

/* ------------------------------------------------------------ reading */

/* The record's fields after any header. */
static itd_reason_t control_payload(itd_cur_t *c, itd_control_t *out) {
        size_t type;
        itd_reason_t r;
        memset(out, 0, sizeof *out);
        if ((c->field = "type", r = itd_cur_enum(c, ITD_CONTROL__COUNT,
                                                 &type)) ||
            (c->field = "user_id",
             r = itd_cur_string(c, out->user_id, sizeof out->user_id)) ||
            (c->field = "request_id",
             r = itd_cur_string(c, out->request_id,
                                sizeof out->request_id)) ||
            (c->field = "requested_at",
             r = itd_cur_long(c, &out->requested_at_ms)))
                return r;
        out->type = (itd_control_type_t)type;
        return itd_cur_check_end(c);
}

static itd_reason_t avro_at(const uint8_t *buf, size_t len, size_t off,
                            itd_control_t *out, char *errstr,
                            size_t errstr_size) {
        itd_cur_t c = {buf, buf + off, buf + len, "", SIZE_MAX, errstr,
                       errstr_size};
        return control_payload(&c, out);
}

/* Fields both formats must have filled. */
static itd_reason_t check(const itd_control_t *out, char *errstr,
                          size_t errstr_size) {
        if (!out->user_id[0]) {
                snprintf(errstr, errstr_size, "control record: user_id is "
                         "empty");
                return ITD_REASON_MISSING_USER_ID;
        }
        if (!out->request_id[0]) {
                snprintf(errstr, errstr_size, "control record: request_id is "
                         "empty");
                return ITD_REASON_BAD_CONTROL;
        }
        return ITD_REASON_OK;
}

static itd_reason_t json_str(json_t *obj, const char *name, char *dst,
                                size_t cap, int required, char *errstr,
                                size_t errstr_size) {
        json_t *v = json_object_get(obj, name);
        dst[0] = '\0';
        if (!v || json_is_null(v)) {
                if (!required)
                        return ITD_REASON_OK;
                snprintf(errstr, errstr_size, "control record: \"%s\" is "
                         "missing", name);
                return !strcmp(name, "user_id") ? ITD_REASON_MISSING_USER_ID
                                                : ITD_REASON_BAD_CONTROL;
        }
        if (!json_is_string(v)) {
                snprintf(errstr, errstr_size, "control record: \"%s\" is not "
                         "a string", name);
                return ITD_REASON_WRONG_TYPE;
        }
        size_t n = json_string_length(v);
        if (n >= cap) {
                snprintf(errstr, errstr_size, "control record: \"%s\" has "
                         "%zu bytes, at most %zu", name, n, cap - 1);
                return ITD_REASON_STRING_TOO_LONG;
        }
        if (memchr(json_string_value(v), 0, n)) {
                snprintf(errstr, errstr_size, "control record: \"%s\" holds "
                         "a NUL byte", name);
                return ITD_REASON_NUL_IN_STRING;
        }
        memcpy(dst, json_string_value(v), n + 1);
        return ITD_REASON_OK;
}

static itd_reason_t json_control(const void *buf, size_t len,
                                 itd_control_t *out, char *errstr,
                                 size_t errstr_size) {
        json_error_t jerr;
        memset(out, 0, sizeof *out);
        json_t *obj = json_loadb(buf, len,
                                 JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES,
                                 &jerr);
        if (!obj) {
                snprintf(errstr, errstr_size, "control record: not JSON: %s "
                         "(column %d)", jerr.text, jerr.column);
                return ITD_REASON_JSON_SYNTAX;
        }
        itd_reason_t r = ITD_REASON_OK;
        char type[16];
        json_t *at = json_object_get(obj, "requested_at");
        if (!json_is_object(obj)) {
                snprintf(errstr, errstr_size, "control record: JSON, but not "
                         "an object");
                r = ITD_REASON_JSON_NOT_OBJECT;
        } else if ((r = json_str(obj, "type", type, sizeof type, 1, errstr,
                                    errstr_size)) ||
                   (r = json_str(obj, "user_id", out->user_id,
                                    sizeof out->user_id, 1, errstr,
                                    errstr_size)) ||
                   (r = json_str(obj, "request_id", out->request_id,
                                    sizeof out->request_id, 1, errstr,
                                    errstr_size))) {
                /* r says why */
        } else if (strcmp(type, type_names[ITD_CONTROL_ERASE]) != 0) {
                snprintf(errstr, errstr_size, "control record: type \"%s\" "
                         "is not one of: ERASE", type);
                r = ITD_REASON_BAD_CONTROL;
        } else if (!json_is_integer(at)) {
                snprintf(errstr, errstr_size, "control record: "
                         "\"requested_at\" is %s, not an integer (ms)",
                         at ? "of another type" : "missing");
                r = at ? ITD_REASON_WRONG_TYPE : ITD_REASON_MISSING_FIELD;
        } else {
                out->type = ITD_CONTROL_ERASE;
                out->requested_at_ms = (int64_t)json_integer_value(at);
        }
        json_decref(obj);
        return r;
}

itd_reason_t itd_control_decode(const void *vbuf, size_t len, int json,
                                itd_framing_t framing, itd_control_t *out,
                                char *errstr, size_t errstr_size) {
        const uint8_t *buf = vbuf;
        itd_reason_t r = ITD_REASON_OK;
        if (!buf || len == 0) {
                snprintf(errstr, errstr_size, "control record: empty");
                return ITD_REASON_EMPTY_MESSAGE;
        }
        if (json) {
                r = json_control(buf, len, out, errstr, errstr_size);
        } else {
                switch (itd_wire_classify(buf, len, framing, NULL, NULL, 0)) {
                case ITD_WIRE_TOO_SHORT:
                case ITD_WIRE_BAD_MAGIC:
                        snprintf(errstr, errstr_size, "control record: "
                                 "Confluent framing expected, byte 0 is "
                                 "0x%02x of %zu bytes", buf[0], len);
                        return ITD_REASON_BAD_MAGIC_BYTE;
                case ITD_WIRE_BARE:
                        r = avro_at(buf, len, 0, out, errstr, errstr_size);
                        break;
                case ITD_WIRE_CONFLUENT:
                case ITD_WIRE_EITHER:
                        /* EITHER: a bare record of type ERASE starts with
                         * 0 too */
                        r = avro_at(buf, len, ITD_CONFLUENT_HDR, out, errstr,
                                    errstr_size);
                        if (r && framing == ITD_FRAMING_AUTO)
                                r = avro_at(buf, len, 0, out, errstr,
                                            errstr_size);
                        break;
                }
        }
        return r ? r : check(out, errstr, errstr_size);
}

itd_reason_t itd_audit_decode(const void *vbuf, size_t len, itd_audit_t *a,
                              int32_t *parts, size_t cap_parts, char *errstr,
                              size_t errstr_size) {
        const uint8_t *buf = vbuf;
        /* Our own output: a header whenever it may be one (framing auto,
         * byte 0 is 0), without the bare fallback; a record starts with
         * request_id's length, never 0 for a record intentd wrote. */
        size_t off = itd_wire_classify(buf, len, ITD_FRAMING_AUTO, NULL,
                                       NULL, 0) == ITD_WIRE_EITHER
                         ? ITD_CONFLUENT_HDR
                         : 0;
        itd_cur_t c = {buf, buf + off, buf + len, "", SIZE_MAX, errstr,
                       errstr_size};
        itd_reason_t r;
        size_t type;
        int64_t v[9];
        memset(a, 0, sizeof *a);
        if ((c.field = "request_id",
             r = itd_cur_string(&c, a->request_id, sizeof a->request_id)) ||
            (c.field = "type",
             r = itd_cur_enum(&c, ITD_CONTROL__COUNT, &type)) ||
            (c.field = "user", r = itd_cur_string(&c, a->user, sizeof a->user)) ||
            (c.field = "requested_at", r = itd_cur_long(&c, &v[0])) ||
            (c.field = "completed_at", r = itd_cur_long(&c, &v[1])))
                return r;
        a->type = (itd_control_type_t)type;
        a->requested_at_ms = v[0];
        a->completed_at_ms = v[1];
        a->partitions = parts;
        c.field = "partitions";
        for (;;) {
                int64_t n;
                if ((r = itd_cur_long(&c, &n)))
                        return r;
                if (n == 0)
                        break;
                if (n < 0)
                        return itd_cur_fail(&c, ITD_REASON_MALFORMED_AVRO,
                                            "sized array blocks are not "
                                            "written by intentd");
                for (int64_t i = 0; i < n; i++) {
                        int64_t p;
                        if ((r = itd_cur_long(&c, &p)))
                                return r;
                        if (a->n_partitions < cap_parts)
                                parts[a->n_partitions++] = (int32_t)p;
                }
        }
        c.field = "removed";
        for (int i = 0; i < 8; i++)
                if ((r = itd_cur_long(&c, &v[i])))
                        return r;
        a->users = (uint64_t)v[0];
        a->events = (uint64_t)v[1];
        a->pending = (uint64_t)v[2];
        a->queued = (uint64_t)v[3];
        a->triggers = (uint64_t)v[4];
        a->risk_triggers = (uint64_t)v[5];
        a->cached = (uint64_t)v[6];
        a->cut = (uint64_t)v[7];
        return itd_cur_check_end(&c);
}
