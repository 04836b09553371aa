/*
 * codec.c - Avro binary encoding and decoding of events, predictions and
 * triggers.
 *
 * Encoding goes through Avro C's value API into a memory writer: one
 * reusable record value per schema lives in the codec, so steady-state
 * encoding allocates nothing (string buffers are reused once grown).
 *
 * Decoding of events does not use avro_value_read(). Avro C allocates every
 * string it reads, leaks it when the payload is truncated, gives one generic
 * message for every failure, does not notice trailing bytes and does not
 * apply reader defaults (FACTS.md). Instead a small walker reads the binary
 * encoding directly, guided by a *plan*: the writer schema (as parsed by
 * Avro C) resolved once against the reader schema config/event.avsc. Writer
 * fields are matched to itd_event_t slots by name or skipped, enum symbols
 * are mapped by name, int/long/float promote to the reader's long/double,
 * and reader fields the writer lacks start from the reader's default (read
 * from the schema JSON with jansson, since Avro C's parser drops
 * "default"). Decoding costs no allocation, and every fault gets a stable
 * reason code (input.h) plus the field and byte offset. Predictions and
 * triggers are decoded by the same cursor in our own schema's order
 * (tests, demo).
 */
#include "intentd/codec.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

#include "codec_int.h"
#include "intentd/mem.h"

#define CONFLUENT_HDR 5 /* magic byte 0 + 4-byte big-endian schema id */
#define MAX_DEPTH 32    /* writer schemas nest no deeper than this */

/* Where a writer field lands in itd_event_t. */
typedef enum {
        SLOT_NONE = 0, /* unknown to us: skipped */
        SLOT_EVENT_ID,
        SLOT_USER_ID,
        SLOT_TS,
        SLOT_TYPE,
        SLOT_ITEM_ID,
        SLOT_CATEGORY,
        SLOT_PRICE,
        SLOT_QUERY,
        SLOT_SESSION_ID,
        SLOT__COUNT
} slot_t;

static const char *const slot_names[SLOT__COUNT] = {
    "", "event_id", "user_id", "ts", "type", "item_id", "category", "price",
    "query", "session_id"};

typedef struct {
        avro_schema_t type; /* borrowed from the plan's writer schema */
        slot_t slot;
        const char *name;   /* borrowed from the writer schema */
        /*
         * Looked up once per writer schema rather than per message (Avro
         * C's accessors go through hash tables): the union's branches, and
         * for the event type the writer's symbol index -> our enum.
         */
        size_t n_branch;       /* 0: not a union */
        avro_schema_t *branch; /* link targets resolved */
        int n_symbol;          /* 0: not an enum */
        int8_t *symbol;        /* -1: symbol unknown to the reader */
} plan_field_t;

struct itd_plan_s {
        avro_schema_t writer; /* own reference */
        size_t n;
        plan_field_t *f;
        itd_event_t defaults; /* reader defaults; the start of every decode */
};

struct itd_codec_s {
        avro_schema_t ev_schema;
        avro_schema_t pred_schema;
        avro_value_iface_t *ev_iface;
        avro_value_iface_t *pred_iface;
        avro_value_t ev_val;
        avro_value_t pred_val;
        avro_writer_t writer;
        itd_plan_t *ev_plan;     /* for our own event schema as writer */
        int ev_idx[SLOT__COUNT]; /* field index in our event schema */
        int pred_idx[10];        /* field index in our prediction schema */
        avro_schema_t trg_schema;
        avro_value_iface_t *trg_iface;
        avro_value_t trg_val;
};

/* ------------------------------------------------------------------ */
/* The cursor: bounds-checked reads with errors that name the field.   */

typedef struct {
        const uint8_t *base; /* message start: offsets count from here */
        const uint8_t *p;
        const uint8_t *end;
        const char *field; /* name of the field being read, for errors */
        size_t max_str;    /* longest string accepted, bytes */
        char *errstr;
        size_t errstr_size;
} cur_t;

static itd_reason_t cur_fail(cur_t *c, itd_reason_t r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static itd_reason_t cur_fail(cur_t *c, itd_reason_t r, const char *fmt,
                             ...) {
        if (c->errstr && c->errstr_size) {
                int n = snprintf(c->errstr, c->errstr_size,
                                 "field '%s' at byte %zu: ", c->field,
                                 (size_t)(c->p - c->base));
                if (n >= 0 && (size_t)n < c->errstr_size) {
                        va_list ap;
                        va_start(ap, fmt);
                        vsnprintf(c->errstr + n, c->errstr_size - (size_t)n,
                                  fmt, ap);
                        va_end(ap);
                }
        }
        return r;
}

static size_t cur_left(const cur_t *c) { return (size_t)(c->end - c->p); }

/* Zig-zag varint, at most 10 bytes (Avro long). */
static itd_reason_t rd_long(cur_t *c, int64_t *out) {
        uint64_t v = 0;
        const uint8_t *p = c->p;
        *out = 0;
        for (int shift = 0; shift < 70; shift += 7) {
                if (p == c->end)
                        return cur_fail(c, ITD_REASON_TRUNCATED,
                                        "truncated payload: varint runs "
                                        "past the end (%zu bytes left)",
                                        cur_left(c));
                uint8_t b = *p++;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        c->p = p;
                        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        return ITD_REASON_OK;
                }
        }
        return cur_fail(c, ITD_REASON_MALFORMED_AVRO,
                        "varint longer than 10 bytes");
}

/* A length prefix (string, bytes): non-negative and within the payload. */
static itd_reason_t rd_len(cur_t *c, size_t *out) {
        const uint8_t *at = c->p;
        int64_t n;
        itd_reason_t r;
        *out = 0;
        if ((r = rd_long(c, &n)))
                return r;
        if (n < 0) {
                c->p = at;
                return cur_fail(c, ITD_REASON_NEGATIVE_LENGTH,
                                "negative string length %" PRId64, n);
        }
        if ((uint64_t)n > cur_left(c))
                return cur_fail(c, ITD_REASON_TRUNCATED,
                                "truncated payload: %" PRId64
                                " bytes announced, only %zu left",
                                n, cur_left(c));
        *out = (size_t)n;
        return ITD_REASON_OK;
}

static itd_reason_t rd_fixed(cur_t *c, size_t n, const char *what) {
        if (cur_left(c) < n)
                return cur_fail(c, ITD_REASON_TRUNCATED,
                                "truncated payload: %s needs %zu bytes, "
                                "only %zu left",
                                what, n, cur_left(c));
        c->p += n;
        return ITD_REASON_OK;
}

static itd_reason_t rd_float(cur_t *c, float *out) {
        itd_reason_t r = rd_fixed(c, 4, "float");
        if (r)
                return r;
        const uint8_t *b = c->p - 4;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                     (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(out, &u, sizeof *out);
        return ITD_REASON_OK;
}

static itd_reason_t rd_double(cur_t *c, double *out) {
        itd_reason_t r = rd_fixed(c, 8, "double");
        if (r)
                return r;
        const uint8_t *b = c->p - 8;
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
                u = u << 8 | b[i];
        memcpy(out, &u, sizeof *out);
        return ITD_REASON_OK;
}

size_t itd_utf8_check(const uint8_t *s, size_t n) {
        size_t i = 0;
        while (i < n) {
                uint8_t b = s[i];
                if (b < 0x80) {
                        i++;
                        continue;
                }
                size_t k;
                uint32_t cp, min;
                if ((b & 0xe0) == 0xc0) {
                        k = 1, cp = b & 0x1f, min = 0x80;
                } else if ((b & 0xf0) == 0xe0) {
                        k = 2, cp = b & 0x0f, min = 0x800;
                } else if ((b & 0xf8) == 0xf0) {
                        k = 3, cp = b & 0x07, min = 0x10000;
                } else {
                        return i;
                }
                if (n - i <= k)
                        return i;
                for (size_t j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xc0) != 0x80)
                                return i;
                        cp = cp << 6 | (s[i + j] & 0x3f);
                }
                /* overlong forms, UTF-16 surrogates, beyond Unicode */
                if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) ||
                    cp > 0x10ffff)
                        return i;
                i += k + 1;
        }
        return n;
}

/* A string into dst[cap], refused (not cut) when it does not fit. */
static itd_reason_t rd_string(cur_t *c, char *dst, size_t cap) {
        const uint8_t *at = c->p;
        size_t n, bad, limit = cap - 1;
        itd_reason_t r = rd_len(c, &n);
        if (r)
                return r;
        const uint8_t *s = c->p;
        if (c->max_str < limit)
                limit = c->max_str;
        if (n > limit) {
                c->p = at;
                return cur_fail(c, ITD_REASON_STRING_TOO_LONG,
                                "string of %zu bytes exceeds the limit "
                                "of %zu",
                                n, limit);
        }
        if (memchr(s, 0, n)) {
                c->p = at;
                return cur_fail(c, ITD_REASON_NUL_IN_STRING,
                                "string contains a NUL byte");
        }
        if ((bad = itd_utf8_check(s, n)) != n) {
                c->p = at;
                return cur_fail(c, ITD_REASON_INVALID_UTF8,
                                "string is not valid UTF-8 (byte %zu of "
                                "the string is 0x%02x)",
                                bad, s[bad]);
        }
        memcpy(dst, s, n);
        dst[n] = '\0';
        c->p += n;
        return ITD_REASON_OK;
}

static itd_reason_t rd_enum(cur_t *c, int nsym, int *out) {
        const uint8_t *at = c->p;
        int64_t i;
        *out = 0;
        itd_reason_t r = rd_long(c, &i);
        if (r)
                return r;
        if (i < 0 || i >= nsym) {
                c->p = at;
                return cur_fail(c, ITD_REASON_BAD_ENUM_INDEX,
                                "enum index %" PRId64 " outside 0..%d", i,
                                nsym - 1);
        }
        *out = (int)i;
        return ITD_REASON_OK;
}

static itd_reason_t rd_branch(cur_t *c, size_t nbranch, size_t *out) {
        const uint8_t *at = c->p;
        int64_t i;
        *out = 0;
        itd_reason_t r = rd_long(c, &i);
        if (r)
                return r;
        if (i < 0 || (uint64_t)i >= nbranch) {
                c->p = at;
                return cur_fail(c, ITD_REASON_BAD_UNION_BRANCH,
                                "union branch %" PRId64 " outside 0..%zu", i,
                                nbranch - 1);
        }
        *out = (size_t)i;
        return ITD_REASON_OK;
}

/*
 * Array and map block header: count, and for a negative count the block's
 * byte size (which we do not need). 0 ends the sequence. Items of at least
 * one byte cannot outnumber the bytes left; zero-byte items (null) are not
 * iterated at all, so no count makes the walk slow.
 */
static itd_reason_t rd_block(cur_t *c, int min_item_bytes, int64_t *count) {
        const uint8_t *at = c->p;
        *count = 0;
        itd_reason_t r = rd_long(c, count);
        if (r)
                return r;
        if (*count < 0) {
                int64_t bytes;
                if (*count == INT64_MIN) {
                        c->p = at;
                        return cur_fail(c, ITD_REASON_MALFORMED_AVRO,
                                        "bad block count");
                }
                *count = -*count;
                if ((r = rd_long(c, &bytes)))
                        return r;
        }
        if (min_item_bytes > 0 && (uint64_t)*count > cur_left(c)) {
                c->p = at;
                return cur_fail(c, ITD_REASON_TRUNCATED,
                                "truncated payload: block of %" PRId64
                                " items, only %zu bytes left",
                                *count, cur_left(c));
        }
        return ITD_REASON_OK;
}

static avro_schema_t deref(avro_schema_t w) {
        return is_avro_link(w) ? avro_schema_link_target(w) : w;
}

/* 1 if every value of w encodes to zero bytes (null, records of nulls). */
static int zero_size(avro_schema_t w, int depth) {
        w = deref(w);
        if (depth > MAX_DEPTH)
                return 0;
        if (is_avro_null(w))
                return 1;
        if (!is_avro_record(w))
                return 0;
        for (size_t i = 0; i < avro_schema_record_size(w); i++)
                if (!zero_size(avro_schema_record_field_get_by_index(w, (int)i),
                               depth + 1))
                        return 0;
        return 1;
}

/* Skips one value of writer type w (fields we do not know). */
static itd_reason_t skip_value(cur_t *c, avro_schema_t w, int depth) {
        itd_reason_t r = ITD_REASON_OK;
        int64_t v;
        size_t n;
        if (depth > MAX_DEPTH)
                return cur_fail(c, ITD_REASON_SCHEMA_INCOMPATIBLE,
                                "writer schema nests deeper than %d levels",
                                MAX_DEPTH);
        w = deref(w);
        switch (avro_typeof(w)) {
        case AVRO_NULL:
                return ITD_REASON_OK;
        case AVRO_BOOLEAN:
                return rd_fixed(c, 1, "boolean");
        case AVRO_INT32:
        case AVRO_INT64:
                return rd_long(c, &v);
        case AVRO_FLOAT:
                return rd_fixed(c, 4, "float");
        case AVRO_DOUBLE:
                return rd_fixed(c, 8, "double");
        case AVRO_STRING:
        case AVRO_BYTES:
                if ((r = rd_len(c, &n)))
                        return r;
                c->p += n;
                return ITD_REASON_OK;
        case AVRO_FIXED:
                return rd_fixed(c, (size_t)avro_schema_fixed_size(w),
                                "fixed");
        case AVRO_ENUM: {
                int i;
                return rd_enum(c, avro_schema_enum_number_of_symbols(w), &i);
        }
        case AVRO_UNION:
                if ((r = rd_branch(c, avro_schema_union_size(w), &n)))
                        return r;
                return skip_value(c, avro_schema_union_branch(w, (int)n),
                                  depth + 1);
        case AVRO_RECORD:
                for (size_t i = 0; i < avro_schema_record_size(w); i++)
                        if ((r = skip_value(
                                 c,
                                 avro_schema_record_field_get_by_index(
                                     w, (int)i),
                                 depth + 1)))
                                return r;
                return ITD_REASON_OK;
        case AVRO_ARRAY:
        case AVRO_MAP: {
                int is_map = avro_typeof(w) == AVRO_MAP;
                avro_schema_t item = is_map ? avro_schema_map_values(w)
                                            : avro_schema_array_items(w);
                int min_bytes = is_map || !zero_size(item, depth + 1);
                for (;;) {
                        int64_t count;
                        if ((r = rd_block(c, min_bytes, &count)))
                                return r;
                        if (count == 0)
                                return ITD_REASON_OK;
                        if (!min_bytes)
                                continue; /* nothing to read per item */
                        for (int64_t i = 0; i < count; i++) {
                                if (is_map) {
                                        if ((r = rd_len(c, &n)))
                                                return r;
                                        c->p += n;
                                }
                                if ((r = skip_value(c, item, depth + 1)))
                                        return r;
                        }
                }
        }
        default:
                return cur_fail(c, ITD_REASON_SCHEMA_INCOMPATIBLE,
                                "unsupported writer type %s",
                                avro_schema_type_name(w));
        }
}

static char *slot_buf(itd_event_t *ev, slot_t slot, size_t *cap) {
        switch (slot) {
        case SLOT_EVENT_ID: *cap = sizeof ev->event_id; return ev->event_id;
        case SLOT_USER_ID: *cap = sizeof ev->user_id; return ev->user_id;
        case SLOT_ITEM_ID: *cap = sizeof ev->item_id; return ev->item_id;
        case SLOT_CATEGORY: *cap = sizeof ev->category; return ev->category;
        case SLOT_QUERY: *cap = sizeof ev->query; return ev->query;
        case SLOT_SESSION_ID:
                *cap = sizeof ev->session_id;
                return ev->session_id;
        default: return NULL;
        }
}

/* Can a writer value of type t be read into slot (Avro promotion rules)? */
static int slot_accepts(slot_t slot, avro_type_t t) {
        if (t == AVRO_NULL)
                return 1; /* optional: absent; required: a per-message reason */
        switch (slot) {
        case SLOT_TS: return t == AVRO_INT32 || t == AVRO_INT64;
        case SLOT_TYPE: return t == AVRO_ENUM;
        case SLOT_PRICE:
                return t == AVRO_INT32 || t == AVRO_INT64 ||
                       t == AVRO_FLOAT || t == AVRO_DOUBLE;
        case SLOT_NONE: return 1;
        default: return t == AVRO_STRING || t == AVRO_BYTES;
        }
}

/* Reads one value of writer type w into the event slot of field f. */
static itd_reason_t read_slot(cur_t *c, const plan_field_t *f,
                              avro_schema_t w, itd_event_t *ev) {
        itd_reason_t r;
        slot_t slot = f->slot;
        w = deref(w);
        if (is_avro_union(w)) {
                size_t b;
                if ((r = rd_branch(c, f->n_branch, &b)))
                        return r;
                w = f->branch[b];
                if (is_avro_union(w))
                        return cur_fail(c, ITD_REASON_SCHEMA_INCOMPATIBLE,
                                        "union inside a union");
        }
        switch (avro_typeof(w)) {
        case AVRO_NULL:
                if (slot == SLOT_USER_ID)
                        return cur_fail(c, ITD_REASON_MISSING_USER_ID,
                                        "null (required)");
                if (slot == SLOT_TS || slot == SLOT_TYPE)
                        return cur_fail(c, ITD_REASON_MISSING_FIELD,
                                        "null (required)");
                if (slot == SLOT_PRICE) {
                        ev->price = NAN;
                } else {
                        size_t cap;
                        slot_buf(ev, slot, &cap)[0] = '\0';
                }
                return ITD_REASON_OK;
        case AVRO_STRING:
        case AVRO_BYTES: {
                size_t cap;
                char *dst = slot_buf(ev, slot, &cap);
                if (!dst)
                        break;
                return rd_string(c, dst, cap);
        }
        case AVRO_INT32:
        case AVRO_INT64: {
                int64_t v;
                if (slot != SLOT_TS && slot != SLOT_PRICE)
                        break;
                if ((r = rd_long(c, &v)))
                        return r;
                if (slot == SLOT_TS)
                        ev->ts_ms = v;
                else
                        ev->price = (double)v;
                return ITD_REASON_OK;
        }
        case AVRO_FLOAT:
        case AVRO_DOUBLE: {
                const uint8_t *at = c->p;
                if (slot != SLOT_PRICE)
                        break;
                if (avro_typeof(w) == AVRO_FLOAT) {
                        float fl;
                        if ((r = rd_float(c, &fl)))
                                return r;
                        ev->price = fl;
                } else if ((r = rd_double(c, &ev->price))) {
                        return r;
                }
                /* Checked here: after decoding, NAN means "absent". */
                if (!isfinite(ev->price)) {
                        c->p = at;
                        return cur_fail(c, ITD_REASON_BAD_PRICE,
                                        "price is not finite");
                }
                return ITD_REASON_OK;
        }
        case AVRO_ENUM: {
                int i;
                if (slot != SLOT_TYPE)
                        break;
                const uint8_t *at = c->p;
                if ((r = rd_enum(c, f->n_symbol, &i)))
                        return r;
                if (f->symbol[i] < 0) {
                        c->p = at;
                        return cur_fail(c, ITD_REASON_UNKNOWN_EVENT_TYPE,
                                        "unknown event type symbol \"%s\"",
                                        avro_schema_enum_get(w, i));
                }
                ev->type = (itd_event_type_t)f->symbol[i];
                return ITD_REASON_OK;
        }
        default:
                break;
        }
        return cur_fail(c, ITD_REASON_SCHEMA_INCOMPATIBLE,
                        "writer type %s cannot be read into this field",
                        avro_schema_type_name(w));
}

/* ------------------------------------------------------------------ */
/* Plans: a writer schema resolved against the reader.                */

static slot_t slot_of(const char *name) {
        for (int s = 1; s < SLOT__COUNT; s++)
                if (strcmp(name, slot_names[s]) == 0)
                        return (slot_t)s;
        return SLOT_NONE;
}

/*
 * The reader's defaults, from the schema text itself: Avro C's parser
 * drops "default" (FACTS.md), so jansson reads them. has_def[slot] says
 * whether a field may be missing from a writer.
 */
static int reader_defaults(itd_event_t *def, int has_def[SLOT__COUNT],
                           char *errstr, size_t errstr_size) {
        json_error_t jerr;
        json_t *root = json_loads(itd_schema_event_avsc, 0, &jerr);
        json_t *fields = root ? json_object_get(root, "fields") : NULL;
        size_t i;
        json_t *fld;
        int rc = -1;
        itd_event_clear(def);
        if (!json_is_array(fields)) {
                snprintf(errstr, errstr_size,
                         "built-in event schema: no \"fields\" array");
                goto done;
        }
        json_array_foreach(fields, i, fld) {
                json_t *name = json_object_get(fld, "name");
                json_t *v = json_object_get(fld, "default");
                slot_t s = slot_of(json_is_string(name)
                                       ? json_string_value(name)
                                       : "");
                if (s == SLOT_NONE || !v)
                        continue;
                has_def[s] = 1;
                size_t cap;
                char *dst = slot_buf(def, s, &cap);
                if (json_is_null(v))
                        continue;
                if (dst && json_is_string(v))
                        itd_strlcpy(dst, json_string_value(v), cap);
                else if (s == SLOT_TS && json_is_integer(v))
                        def->ts_ms = (int64_t)json_integer_value(v);
                else if (s == SLOT_PRICE && json_is_number(v))
                        def->price = json_number_value(v);
                else if (!(s == SLOT_TYPE && json_is_string(v) &&
                           itd_event_type_parse(json_string_value(v),
                                                &def->type) == ITD_OK)) {
                        snprintf(errstr, errstr_size,
                                 "built-in event schema: default of '%s' "
                                 "is not supported",
                                 slot_names[s]);
                        goto done;
                }
        }
        rc = 0;
done:
        json_decref(root);
        return rc;
}

void itd_plan_destroy(itd_plan_t *plan) {
        if (!plan)
                return;
        for (size_t i = 0; i < plan->n; i++) {
                free(plan->f[i].branch);
                free(plan->f[i].symbol);
        }
        free(plan->f);
        if (plan->writer)
                avro_schema_decref(plan->writer);
        free(plan);
}

itd_plan_t *itd_plan_new(avro_schema_t writer, char *errstr,
                         size_t errstr_size) {
        int seen[SLOT__COUNT] = {0}, has_def[SLOT__COUNT] = {0};
        itd_plan_t *plan = itd_xcalloc(1, sizeof *plan);
        writer = deref(writer);
        plan->writer = avro_schema_incref(writer);
        if (!is_avro_record(writer)) {
                snprintf(errstr, errstr_size,
                         "writer schema is a %s, not a record",
                         avro_schema_type_name(writer));
                goto fail;
        }
        if (reader_defaults(&plan->defaults, has_def, errstr, errstr_size))
                goto fail;
        plan->n = avro_schema_record_size(writer);
        plan->f = itd_xcalloc(plan->n, sizeof *plan->f);
        for (size_t i = 0; i < plan->n; i++) {
                plan_field_t *f = &plan->f[i];
                f->name = avro_schema_record_field_name(writer, (int)i);
                f->type = avro_schema_record_field_get_by_index(writer,
                                                                (int)i);
                f->slot = slot_of(f->name);
                seen[f->slot] = 1;
                avro_schema_t t = deref(f->type);
                int ok = 0;
                if (is_avro_union(t)) {
                        f->n_branch = avro_schema_union_size(t);
                        f->branch = itd_xcalloc(f->n_branch,
                                                sizeof *f->branch);
                        for (size_t b = 0; b < f->n_branch; b++) {
                                f->branch[b] = deref(
                                    avro_schema_union_branch(t, (int)b));
                                ok |= slot_accepts(
                                    f->slot, avro_typeof(f->branch[b]));
                                if (is_avro_enum(f->branch[b]))
                                        t = f->branch[b];
                        }
                } else {
                        ok = slot_accepts(f->slot, avro_typeof(t));
                }
                if (!ok) {
                        snprintf(errstr, errstr_size,
                                 "writer field '%s' of type %s cannot be "
                                 "read into the reader's '%s'",
                                 f->name, avro_schema_type_name(t), f->name);
                        goto fail;
                }
                if (f->slot == SLOT_TYPE && is_avro_enum(t)) {
                        f->n_symbol = avro_schema_enum_number_of_symbols(t);
                        f->symbol = itd_xcalloc((size_t)f->n_symbol + 1, 1);
                        for (int k = 0; k < f->n_symbol; k++) {
                                itd_event_type_t et;
                                f->symbol[k] =
                                    itd_event_type_parse(
                                        avro_schema_enum_get(t, k), &et)
                                        ? -1
                                        : (int8_t)et;
                        }
                }
        }
        for (int s = 1; s < SLOT__COUNT; s++) {
                if (!seen[s] && !has_def[s]) {
                        snprintf(errstr, errstr_size,
                                 "writer schema lacks field '%s', which "
                                 "has no default in the reader",
                                 slot_names[s]);
                        goto fail;
                }
        }
        return plan;
fail:
        itd_plan_destroy(plan);
        return NULL;
}

static itd_reason_t check_end(cur_t *c) {
        if (c->p != c->end) {
                size_t at = (size_t)(c->p - c->base);
                if (c->errstr && c->errstr_size)
                        snprintf(c->errstr, c->errstr_size,
                                 "%zu trailing bytes after the record "
                                 "(record ends at byte %zu of %zu)",
                                 cur_left(c), at,
                                 (size_t)(c->end - c->base));
                return ITD_REASON_TRAILING_BYTES;
        }
        return ITD_REASON_OK;
}

itd_reason_t itd_plan_decode(const itd_plan_t *plan, const uint8_t *buf,
                             size_t len, size_t off, size_t max_string_bytes,
                             itd_event_t *ev, char *detail,
                             size_t detail_size) {
        cur_t c = {buf, buf + off, buf + len, "", max_string_bytes, detail,
                   detail_size};
        itd_reason_t r;
        *ev = plan->defaults;
        for (size_t i = 0; i < plan->n; i++) {
                const plan_field_t *f = &plan->f[i];
                c.field = f->name;
                if (f->slot == SLOT_NONE)
                        r = skip_value(&c, f->type, 0);
                else
                        r = read_slot(&c, f, f->type, ev);
                if (r)
                        return r;
        }
        if ((r = check_end(&c)))
                return r;
        if (!ev->user_id[0]) {
                if (detail && detail_size)
                        snprintf(detail, detail_size,
                                 "field 'user_id': empty string (required)");
                return ITD_REASON_MISSING_USER_ID;
        }
        return ITD_REASON_OK;
}

/* ------------------------------------------------------------------ */
/* Set-up.                                                            */

static int field_index(avro_schema_t rec, const char *name) {
        return avro_schema_record_field_get_index(rec, name);
}

static const char *const pred_fields[10] = {
    "prediction_id", "user_id",      "event_ts",
    "predicted_at",  "purchase_probability", "next_action",
    "next_action_probabilities", "model_version", "top_categories",
    "explanation"};

#define TRG_FIELDS 7
static const char *const trg_fields[TRG_FIELDS] = {
    "prediction_id", "user_id", "score", "threshold", "direction",
    "event_ts", "fired_at"};

itd_codec_t *itd_codec_new(char *errstr, size_t errstr_size) {
        itd_codec_t *codec = itd_xcalloc(1, sizeof *codec);
        if (avro_schema_from_json_length(itd_schema_event_avsc,
                                         strlen(itd_schema_event_avsc),
                                         &codec->ev_schema)) {
                snprintf(errstr, errstr_size,
                         "built-in event schema does not parse: %s",
                         avro_strerror());
                goto fail;
        }
        if (avro_schema_from_json_length(itd_schema_prediction_avsc,
                                         strlen(itd_schema_prediction_avsc),
                                         &codec->pred_schema)) {
                snprintf(errstr, errstr_size,
                         "built-in prediction schema does not parse: %s",
                         avro_strerror());
                goto fail;
        }
        for (int s = 1; s < SLOT__COUNT; s++) {
                codec->ev_idx[s] = field_index(codec->ev_schema, slot_names[s]);
                if (codec->ev_idx[s] < 0) {
                        snprintf(errstr, errstr_size,
                                 "built-in event schema lacks field '%s'",
                                 slot_names[s]);
                        goto fail;
                }
        }
        for (int i = 0; i < 10; i++) {
                codec->pred_idx[i] =
                    field_index(codec->pred_schema, pred_fields[i]);
                /* The decoder reads our own layout in order. */
                if (codec->pred_idx[i] != i) {
                        snprintf(errstr, errstr_size,
                                 "built-in prediction schema: field '%s' "
                                 "is not at position %d",
                                 pred_fields[i], i);
                        goto fail;
                }
        }
        if (avro_schema_from_json_length(itd_schema_trigger_avsc,
                                         strlen(itd_schema_trigger_avsc),
                                         &codec->trg_schema)) {
                snprintf(errstr, errstr_size,
                         "built-in trigger schema does not parse: %s",
                         avro_strerror());
                goto fail;
        }
        for (int i = 0; i < TRG_FIELDS; i++) {
                /* Encoder and decoder use our own layout in order. */
                if (field_index(codec->trg_schema, trg_fields[i]) != i) {
                        snprintf(errstr, errstr_size,
                                 "built-in trigger schema: field '%s' "
                                 "is not at position %d",
                                 trg_fields[i], i);
                        goto fail;
                }
        }
        codec->trg_iface = avro_generic_class_from_schema(codec->trg_schema);
        if (!codec->trg_iface ||
            avro_generic_value_new(codec->trg_iface, &codec->trg_val)) {
                snprintf(errstr, errstr_size,
                         "avro trigger value set-up failed: %s",
                         avro_strerror());
                goto fail;
        }
        char why[256];
        codec->ev_plan = itd_plan_new(codec->ev_schema, why, sizeof why);
        if (!codec->ev_plan) {
                snprintf(errstr, errstr_size, "built-in event schema: %s",
                         why);
                goto fail;
        }
        codec->ev_iface = avro_generic_class_from_schema(codec->ev_schema);
        codec->pred_iface = avro_generic_class_from_schema(codec->pred_schema);
        if (!codec->ev_iface || !codec->pred_iface ||
            avro_generic_value_new(codec->ev_iface, &codec->ev_val) ||
            avro_generic_value_new(codec->pred_iface, &codec->pred_val)) {
                snprintf(errstr, errstr_size, "avro value set-up failed: %s",
                         avro_strerror());
                goto fail;
        }
        codec->writer = avro_writer_memory(NULL, 0);
        if (!codec->writer) {
                snprintf(errstr, errstr_size, "avro writer set-up failed");
                goto fail;
        }
        return codec;
fail:
        itd_codec_destroy(codec);
        return NULL;
}

void itd_codec_destroy(itd_codec_t *codec) {
        if (!codec)
                return;
        if (codec->writer)
                avro_writer_free(codec->writer);
        if (codec->ev_val.self)
                avro_value_decref(&codec->ev_val);
        if (codec->pred_val.self)
                avro_value_decref(&codec->pred_val);
        if (codec->ev_iface)
                avro_value_iface_decref(codec->ev_iface);
        if (codec->pred_iface)
                avro_value_iface_decref(codec->pred_iface);
        if (codec->trg_val.self)
                avro_value_decref(&codec->trg_val);
        if (codec->trg_iface)
                avro_value_iface_decref(codec->trg_iface);
        if (codec->trg_schema)
                avro_schema_decref(codec->trg_schema);
        itd_plan_destroy(codec->ev_plan);
        if (codec->ev_schema)
                avro_schema_decref(codec->ev_schema);
        if (codec->pred_schema)
                avro_schema_decref(codec->pred_schema);
        free(codec);
}

const itd_plan_t *itd_codec_event_plan(const itd_codec_t *codec) {
        return codec->ev_plan;
}

/* ------------------------------------------------------------------ */
/* Decoding with the built-in schemas (tools, tests, demo).           */

typedef itd_reason_t (*payload_fn)(itd_codec_t *codec, const uint8_t *buf,
                                   size_t len, size_t off, void *out,
                                   char *errstr, size_t errstr_size);

/* Applies the framing rules around a payload decoder. */
static itd_err_t decode_framed(itd_codec_t *codec, const char *what,
                               payload_fn fn, const void *vbuf, size_t len,
                               itd_framing_t framing, void *out, char *errstr,
                               size_t errstr_size) {
        const uint8_t *buf = vbuf;
        char why[256], why_bare[256];
        itd_reason_t r;
        if (len == 0) {
                snprintf(errstr, errstr_size, "avro %s decode: empty message",
                         what);
                return ITD_ERR_DECODE;
        }
        switch (framing) {
        case ITD_FRAMING_CONFLUENT:
                if (len < CONFLUENT_HDR) {
                        snprintf(errstr, errstr_size,
                                 "avro %s decode: %zu bytes, too short for "
                                 "the 5-byte Confluent header",
                                 what, len);
                        return ITD_ERR_DECODE;
                }
                if (buf[0] != 0) {
                        snprintf(errstr, errstr_size,
                                 "avro %s decode: Confluent magic byte is "
                                 "0x%02x, expected 0x00",
                                 what, buf[0]);
                        return ITD_ERR_DECODE;
                }
                r = fn(codec, buf, len, CONFLUENT_HDR, out, why, sizeof why);
                break;
        case ITD_FRAMING_BARE:
                r = fn(codec, buf, len, 0, out, why, sizeof why);
                break;
        default:
                if (len < CONFLUENT_HDR || buf[0] != 0) {
                        r = fn(codec, buf, len, 0, out, why, sizeof why);
                        break;
                }
                /*
                 * Byte 0 is 0 both for a Confluent header and for a bare
                 * record whose first field is a null union branch, so try
                 * the header first and fall back to bare.
                 */
                if (!fn(codec, buf, len, CONFLUENT_HDR, out, why, sizeof why))
                        return ITD_OK;
                if (!fn(codec, buf, len, 0, out, why_bare, sizeof why_bare))
                        return ITD_OK;
                snprintf(errstr, errstr_size,
                         "avro %s decode: as Confluent (schema id %" PRIu32
                         "): %s; as bare Avro: %s",
                         what,
                         (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 |
                             (uint32_t)buf[3] << 8 | buf[4],
                         why, why_bare);
                return ITD_ERR_DECODE;
        }
        if (r) {
                snprintf(errstr, errstr_size, "avro %s decode: %s", what, why);
                return ITD_ERR_DECODE;
        }
        return ITD_OK;
}

static itd_reason_t event_payload(itd_codec_t *codec, const uint8_t *buf,
                                  size_t len, size_t off, void *out,
                                  char *errstr, size_t errstr_size) {
        /* Every schema id is taken to mean our own schema here; the
         * daemon resolves ids through itd_decoder_t (input.h). */
        return itd_plan_decode(codec->ev_plan, buf, len, off, SIZE_MAX, out,
                               errstr, errstr_size);
}

itd_err_t itd_codec_decode_event(itd_codec_t *codec, const void *buf,
                                 size_t len, itd_framing_t framing,
                                 itd_event_t *ev, char *errstr,
                                 size_t errstr_size) {
        return decode_framed(codec, "event", event_payload, buf, len,
                             framing, ev, errstr, errstr_size);
}

/* An array of {string, float} records into names[max][name_cap]. */
static itd_reason_t rd_pairs(cur_t *c, size_t max, char *names,
                             size_t name_cap, float *scores, size_t *n) {
        itd_reason_t r;
        *n = 0;
        for (;;) {
                int64_t count;
                if ((r = rd_block(c, 1, &count)))
                        return r;
                if (count == 0)
                        return ITD_REASON_OK;
                if ((uint64_t)count > max - *n)
                        return cur_fail(c, ITD_REASON_MALFORMED_AVRO,
                                        "more than %zu items", max);
                for (int64_t i = 0; i < count; i++, (*n)++) {
                        if ((r = rd_string(c, names + *n * name_cap,
                                           name_cap)) ||
                            (r = rd_float(c, &scores[*n])))
                                return r;
                }
        }
}

static itd_reason_t prediction_payload(itd_codec_t *codec,
                                       const uint8_t *buf, size_t len,
                                       size_t off, void *out, char *errstr,
                                       size_t errstr_size) {
        itd_prediction_t *p = out;
        cur_t c = {buf, buf + off, buf + len, "", SIZE_MAX, errstr,
                   errstr_size};
        itd_reason_t r;
        int next;
        size_t b;
        (void)codec;
        memset(p, 0, sizeof *p);
#define FIELD(i) (c.field = pred_fields[i])
        if ((FIELD(0), r = rd_string(&c, p->prediction_id,
                                     sizeof p->prediction_id)) ||
            (FIELD(1), r = rd_string(&c, p->user_id, sizeof p->user_id)) ||
            (FIELD(2), r = rd_long(&c, &p->event_ts_ms)) ||
            (FIELD(3), r = rd_long(&c, &p->predicted_at_ms)) ||
            (FIELD(4), r = rd_float(&c, &p->purchase_probability)) ||
            (FIELD(5), r = rd_enum(&c, ITD_NEXT__COUNT, &next)))
                return r;
        p->next_action = (itd_next_t)next;
        FIELD(6);
        for (int i = 0; i < ITD_NEXT__COUNT; i++)
                if ((r = rd_float(&c, &p->next_probs[i])))
                        return r;
        if ((FIELD(7), r = rd_long(&c, &p->model_version)) ||
            (FIELD(8), r = rd_pairs(&c, ITD_TOPCAT_MAX,
                                    &p->top_categories[0][0], ITD_ID_MAX,
                                    p->top_category_scores,
                                    &p->n_top_categories)) ||
            (FIELD(9), r = rd_branch(&c, 2, &b)))
                return r;
        if (b == 1 &&
            (r = rd_pairs(&c, ITD_EXPLAIN_MAX, &p->explanation_feature[0][0],
                          sizeof p->explanation_feature[0],
                          p->explanation_contribution, &p->n_explanation)))
                return r;
#undef FIELD
        return check_end(&c);
}

itd_err_t itd_codec_decode_prediction(itd_codec_t *codec, const void *buf,
                                      size_t len, itd_framing_t framing,
                                      itd_prediction_t *p, char *errstr,
                                      size_t errstr_size) {
        return decode_framed(codec, "prediction", prediction_payload, buf, len,
                             framing, p, errstr, errstr_size);
}

static itd_reason_t trigger_payload(itd_codec_t *codec, const uint8_t *buf,
                                    size_t len, size_t off, void *out,
                                    char *errstr, size_t errstr_size) {
        itd_trigger_rec_t *t = out;
        cur_t c = {buf, buf + off, buf + len, "", SIZE_MAX, errstr,
                   errstr_size};
        itd_reason_t r;
        int dir;
        (void)codec;
        memset(t, 0, sizeof *t);
#define FIELD(i) (c.field = trg_fields[i])
        if ((FIELD(0), r = rd_string(&c, t->prediction_id,
                                     sizeof t->prediction_id)) ||
            (FIELD(1), r = rd_string(&c, t->user_id, sizeof t->user_id)) ||
            (FIELD(2), r = rd_float(&c, &t->score)) ||
            (FIELD(3), r = rd_float(&c, &t->threshold)) ||
            (FIELD(4), r = rd_enum(&c, ITD_TRIGGER__COUNT, &dir)) ||
            (FIELD(5), r = rd_long(&c, &t->event_ts_ms)) ||
            (FIELD(6), r = rd_long(&c, &t->fired_at_ms)))
                return r;
#undef FIELD
        t->direction = (itd_trigger_direction_t)dir;
        return check_end(&c);
}

itd_err_t itd_codec_decode_trigger(itd_codec_t *codec, const void *buf,
                                   size_t len, itd_framing_t framing,
                                   itd_trigger_rec_t *rec, char *errstr,
                                   size_t errstr_size) {
        return decode_framed(codec, "trigger", trigger_payload, buf, len,
                             framing, rec, errstr, errstr_size);
}

/* ------------------------------------------------------------------ */
/* Encoding.                                                          */

/* Optional string: branch 1 (string) when set, 0 (null) when empty. */
static int set_opt_string(avro_value_t *rec, int idx, const char *s) {
        avro_value_t f, b;
        int rc = avro_value_get_by_index(rec, (size_t)idx, &f, NULL);
        if (rc)
                return rc;
        if (!s[0]) {
                rc = avro_value_set_branch(&f, 0, &b);
                return rc ? rc : avro_value_set_null(&b);
        }
        rc = avro_value_set_branch(&f, 1, &b);
        return rc ? rc : avro_value_set_string(&b, s);
}

static int set_string(avro_value_t *rec, int idx, const char *s) {
        avro_value_t f;
        int rc = avro_value_get_by_index(rec, (size_t)idx, &f, NULL);
        return rc ? rc : avro_value_set_string(&f, s);
}

static int set_long(avro_value_t *rec, int idx, int64_t v) {
        avro_value_t f;
        int rc = avro_value_get_by_index(rec, (size_t)idx, &f, NULL);
        return rc ? rc : avro_value_set_long(&f, v);
}

static int set_float(avro_value_t *rec, int idx, float v) {
        avro_value_t f;
        int rc = avro_value_get_by_index(rec, (size_t)idx, &f, NULL);
        return rc ? rc : avro_value_set_float(&f, v);
}

/* Writes the header (if any) and rec into buf[cap]. */
static itd_err_t write_value(itd_codec_t *codec, avro_value_t *rec,
                             int32_t schema_id, void *vbuf, size_t cap,
                             size_t *len) {
        uint8_t *buf = vbuf;
        size_t hdr = 0;
        if (schema_id >= 0) {
                if (cap < CONFLUENT_HDR)
                        return ITD_ERR_FULL;
                buf[0] = 0;
                buf[1] = (uint8_t)((uint32_t)schema_id >> 24);
                buf[2] = (uint8_t)((uint32_t)schema_id >> 16);
                buf[3] = (uint8_t)((uint32_t)schema_id >> 8);
                buf[4] = (uint8_t)schema_id;
                hdr = CONFLUENT_HDR;
        }
        avro_writer_memory_set_dest(codec->writer, (const char *)buf + hdr,
                                    (int64_t)(cap - hdr));
        int rc = avro_value_write(codec->writer, rec);
        if (rc == ENOSPC)
                return ITD_ERR_FULL;
        if (rc)
                return ITD_ERR_ENCODE;
        *len = hdr + (size_t)avro_writer_tell(codec->writer);
        return ITD_OK;
}

itd_err_t itd_codec_encode_event(itd_codec_t *codec, const itd_event_t *ev,
                                 int32_t schema_id, void *buf, size_t cap,
                                 size_t *len) {
        avro_value_t *rec = &codec->ev_val;
        avro_value_t f, b;
        const int *ix = codec->ev_idx;
        if ((int)ev->type < 0 || ev->type >= ITD_EV__COUNT || !ev->user_id[0])
                return ITD_ERR_ENCODE;
        if (set_opt_string(rec, ix[SLOT_EVENT_ID], ev->event_id) ||
            set_string(rec, ix[SLOT_USER_ID], ev->user_id) ||
            set_long(rec, ix[SLOT_TS], ev->ts_ms) ||
            avro_value_get_by_index(rec, (size_t)ix[SLOT_TYPE], &f, NULL) ||
            avro_value_set_enum(&f, (int)ev->type) ||
            set_opt_string(rec, ix[SLOT_ITEM_ID], ev->item_id) ||
            set_opt_string(rec, ix[SLOT_CATEGORY], ev->category) ||
            set_opt_string(rec, ix[SLOT_QUERY], ev->query) ||
            set_opt_string(rec, ix[SLOT_SESSION_ID], ev->session_id) ||
            avro_value_get_by_index(rec, (size_t)ix[SLOT_PRICE], &f, NULL))
                return ITD_ERR_ENCODE;
        if (isfinite(ev->price)) {
                if (avro_value_set_branch(&f, 1, &b) ||
                    avro_value_set_double(&b, ev->price))
                        return ITD_ERR_ENCODE;
        } else if (avro_value_set_branch(&f, 0, &b) ||
                   avro_value_set_null(&b)) {
                return ITD_ERR_ENCODE;
        }
        return write_value(codec, rec, schema_id, buf, cap, len);
}

/*
 * Fills an array of {string, float} records with n items. The array is
 * rebuilt only when its length changes, so a steady stream of predictions
 * with three top categories reuses the same element values.
 */
static int set_pairs(avro_value_t *arr, size_t n, const char *names,
                     size_t name_cap, const float *scores) {
        size_t have = 0;
        int rc = avro_value_get_size(arr, &have);
        if (rc)
                return rc;
        if (have > n) {
                if ((rc = avro_value_reset(arr)))
                        return rc;
                have = 0;
        }
        for (size_t i = 0; i < n; i++) {
                avro_value_t el, f;
                if (i < have)
                        rc = avro_value_get_by_index(arr, i, &el, NULL);
                else
                        rc = avro_value_append(arr, &el, NULL);
                if (rc ||
                    (rc = avro_value_get_by_index(&el, 0, &f, NULL)) ||
                    (rc = avro_value_set_string(&f, names + i * name_cap)) ||
                    (rc = avro_value_get_by_index(&el, 1, &f, NULL)) ||
                    (rc = avro_value_set_float(&f, scores[i])))
                        return rc;
        }
        return 0;
}

itd_err_t itd_codec_encode_prediction(itd_codec_t *codec,
                                      const itd_prediction_t *p,
                                      int32_t schema_id, void *buf,
                                      size_t cap, size_t *len) {
        avro_value_t *rec = &codec->pred_val;
        avro_value_t f, b;
        size_t ntop = p->n_top_categories, nexp = p->n_explanation;
        if (ntop > ITD_TOPCAT_MAX || nexp > ITD_EXPLAIN_MAX ||
            (int)p->next_action < 0 || p->next_action >= ITD_NEXT__COUNT)
                return ITD_ERR_ENCODE;
        if (set_string(rec, 0, p->prediction_id) ||
            set_string(rec, 1, p->user_id) ||
            set_long(rec, 2, p->event_ts_ms) ||
            set_long(rec, 3, p->predicted_at_ms) ||
            set_float(rec, 4, p->purchase_probability) ||
            avro_value_get_by_index(rec, 5, &f, NULL) ||
            avro_value_set_enum(&f, (int)p->next_action) ||
            avro_value_get_by_index(rec, 6, &f, NULL))
                return ITD_ERR_ENCODE;
        for (int i = 0; i < ITD_NEXT__COUNT; i++)
                if (set_float(&f, i, p->next_probs[i]))
                        return ITD_ERR_ENCODE;
        if (set_long(rec, 7, p->model_version) ||
            avro_value_get_by_index(rec, 8, &f, NULL) ||
            set_pairs(&f, ntop, &p->top_categories[0][0], ITD_ID_MAX,
                      p->top_category_scores) ||
            avro_value_get_by_index(rec, 9, &f, NULL))
                return ITD_ERR_ENCODE;
        if (nexp == 0) {
                if (avro_value_set_branch(&f, 0, &b) ||
                    avro_value_set_null(&b))
                        return ITD_ERR_ENCODE;
        } else {
                if (avro_value_set_branch(&f, 1, &b) ||
                    set_pairs(&b, nexp, &p->explanation_feature[0][0],
                              sizeof p->explanation_feature[0],
                              p->explanation_contribution))
                        return ITD_ERR_ENCODE;
        }
        return write_value(codec, rec, schema_id, buf, cap, len);
}

itd_err_t itd_codec_encode_trigger(itd_codec_t *codec,
                                   const itd_trigger_rec_t *rec,
                                   int32_t schema_id, void *buf, size_t cap,
                                   size_t *len) {
        avro_value_t *v = &codec->trg_val;
        avro_value_t f;
        if ((int)rec->direction < 0 || rec->direction >= ITD_TRIGGER__COUNT)
                return ITD_ERR_ENCODE;
        if (set_string(v, 0, rec->prediction_id) ||
            set_string(v, 1, rec->user_id) ||
            set_float(v, 2, rec->score) ||
            set_float(v, 3, rec->threshold) ||
            avro_value_get_by_index(v, 4, &f, NULL) ||
            avro_value_set_enum(&f, (int)rec->direction) ||
            set_long(v, 5, rec->event_ts_ms) ||
            set_long(v, 6, rec->fired_at_ms))
                return ITD_ERR_ENCODE;
        return write_value(codec, v, schema_id, buf, cap, len);
}
