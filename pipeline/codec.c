/*
 * codec.c - Avro binary encoding and decoding of events and predictions.
 *
 * Encoding goes through Avro C's value API into a memory writer: one
 * reusable record value per schema lives in the codec, so steady-state
 * encoding allocates nothing (string buffers are reused once grown).
 *
 * Decoding of events does not use avro_value_read(). Avro C allocates every
 * string it reads, leaks it when the payload is truncated, gives one generic
 * message for every failure, and does not notice trailing bytes (FACTS.md).
 * Instead a small walker reads the binary encoding directly, guided by the
 * *writer* schema as parsed by Avro C: each top-level writer field is mapped
 * by name to a slot of itd_event_t (or skipped if unknown). That costs no
 * allocation, names the field and byte offset of any fault, and is the shape
 * schema resolution needs (writer fields matched by name, enum symbols
 * matched by name, int/long/float promoted to double for price).
 * Predictions are decoded by the same cursor in our own schema's order
 * (tests, demo summary).
 */
#include "intentd/codec.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <avro.h>

#include "intentd/mem.h"

#define CONFLUENT_HDR 5 /* magic byte 0 + 4-byte big-endian schema id */

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

#define PLAN_BRANCHES 4  /* unions up to this size get a branch table */
#define PLAN_SYMBOLS 32   /* enums up to this size get a symbol map */

typedef struct {
        avro_schema_t type; /* borrowed from the writer schema */
        slot_t slot;
        const char *name;   /* borrowed from the writer schema */
        /*
         * Looked up once per writer schema rather than per message (Avro
         * C's accessors go through hash tables): the union's branches, and
         * for the event type the writer's symbol index -> our enum.
         */
        size_t n_branch;    /* 0: not a union, or too big to cache */
        avro_schema_t branch[PLAN_BRANCHES];
        int n_symbol;       /* 0: no symbol map */
        int8_t symbol[PLAN_SYMBOLS]; /* -1: symbol unknown to us */
} plan_field_t;

/* How to read one writer schema of the event. */
typedef struct {
        size_t n;
        plan_field_t *f;
} plan_t;

struct itd_codec_s {
        avro_schema_t ev_schema;
        avro_schema_t pred_schema;
        avro_value_iface_t *ev_iface;
        avro_value_iface_t *pred_iface;
        avro_value_t ev_val;
        avro_value_t pred_val;
        avro_writer_t writer;
        plan_t ev_plan;          /* for our own event schema as writer */
        int ev_idx[SLOT__COUNT]; /* field index in our event schema */
        int pred_idx[10];        /* field index in our prediction schema */
};

/* ------------------------------------------------------------------ */
/* The cursor: bounds-checked reads with errors that name the field.   */

typedef struct {
        const uint8_t *base; /* message start: offsets count from here */
        const uint8_t *p;
        const uint8_t *end;
        const char *field; /* name of the field being read, for errors */
        char *errstr;
        size_t errstr_size;
} cur_t;

static itd_err_t cur_fail(cur_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static itd_err_t cur_fail(cur_t *c, const char *fmt, ...) {
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
        return ITD_ERR_DECODE;
}

static size_t cur_left(const cur_t *c) { return (size_t)(c->end - c->p); }

/* Zig-zag varint, at most 10 bytes (Avro long). */
static itd_err_t rd_long(cur_t *c, int64_t *out) {
        uint64_t v = 0;
        const uint8_t *p = c->p;
        *out = 0;
        for (int shift = 0; shift < 70; shift += 7) {
                if (p == c->end)
                        return cur_fail(c, "truncated payload: varint runs "
                                           "past the end (%zu bytes left)",
                                        cur_left(c));
                uint8_t b = *p++;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        c->p = p;
                        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        return ITD_OK;
                }
        }
        return cur_fail(c, "varint longer than 10 bytes");
}

/* A length prefix (string, bytes): non-negative and within the payload. */
static itd_err_t rd_len(cur_t *c, size_t *out) {
        int64_t n;
        itd_err_t err;
        *out = 0;
        if ((err = rd_long(c, &n)))
                return err;
        if (n < 0)
                return cur_fail(c, "negative string length %" PRId64, n);
        if ((uint64_t)n > cur_left(c))
                return cur_fail(c, "truncated payload: string of %" PRId64
                                   " bytes, only %zu left",
                                n, cur_left(c));
        *out = (size_t)n;
        return ITD_OK;
}

static itd_err_t rd_fixed(cur_t *c, size_t n, const char *what) {
        if (cur_left(c) < n)
                return cur_fail(c, "truncated payload: %s needs %zu bytes, "
                                   "only %zu left",
                                what, n, cur_left(c));
        c->p += n;
        return ITD_OK;
}

static itd_err_t rd_float(cur_t *c, float *out) {
        itd_err_t err = rd_fixed(c, 4, "float");
        if (err)
                return err;
        const uint8_t *b = c->p - 4;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                     (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(out, &u, sizeof *out);
        return ITD_OK;
}

static itd_err_t rd_double(cur_t *c, double *out) {
        itd_err_t err = rd_fixed(c, 8, "double");
        if (err)
                return err;
        const uint8_t *b = c->p - 8;
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
                u = u << 8 | b[i];
        memcpy(out, &u, sizeof *out);
        return ITD_OK;
}

/* A string into dst[cap], refused (not cut) when it does not fit. */
static itd_err_t rd_string(cur_t *c, char *dst, size_t cap) {
        const uint8_t *at = c->p;
        size_t n;
        itd_err_t err = rd_len(c, &n);
        if (err)
                return err;
        if (n >= cap) {
                c->p = at;
                return cur_fail(c, "string of %zu bytes exceeds the limit "
                                   "of %zu",
                                n, cap - 1);
        }
        if (memchr(c->p, 0, n)) {
                c->p = at;
                return cur_fail(c, "string contains a NUL byte");
        }
        memcpy(dst, c->p, n);
        dst[n] = '\0';
        c->p += n;
        return ITD_OK;
}

static itd_err_t rd_enum(cur_t *c, int nsym, int *out) {
        const uint8_t *at = c->p;
        int64_t i;
        *out = 0;
        itd_err_t err = rd_long(c, &i);
        if (err)
                return err;
        if (i < 0 || i >= nsym) {
                c->p = at;
                return cur_fail(c, "enum index %" PRId64 " outside 0..%d", i,
                                nsym - 1);
        }
        *out = (int)i;
        return ITD_OK;
}

static itd_err_t rd_branch(cur_t *c, size_t nbranch, size_t *out) {
        const uint8_t *at = c->p;
        int64_t i;
        *out = 0;
        itd_err_t err = rd_long(c, &i);
        if (err)
                return err;
        if (i < 0 || (uint64_t)i >= nbranch) {
                c->p = at;
                return cur_fail(c, "union branch %" PRId64 " outside 0..%zu",
                                i, nbranch - 1);
        }
        *out = (size_t)i;
        return ITD_OK;
}

/*
 * Array and map block header: count, and for a negative count the block's
 * byte size (which we do not need). 0 ends the sequence.
 */
static itd_err_t rd_block(cur_t *c, int64_t *count) {
        const uint8_t *at = c->p;
        *count = 0;
        itd_err_t err = rd_long(c, count);
        if (err)
                return err;
        if (*count < 0) {
                int64_t bytes;
                if (*count == INT64_MIN) {
                        c->p = at;
                        return cur_fail(c, "bad block count");
                }
                *count = -*count;
                if ((err = rd_long(c, &bytes)))
                        return err;
        }
        /* Every item takes at least... nothing (null items), so bound the
         * count by something sane instead of by the bytes left. */
        if (*count > (int64_t)1 << 24) {
                c->p = at;
                return cur_fail(c, "block of %" PRId64 " items is not "
                                   "plausible", *count);
        }
        return ITD_OK;
}

/* Skips one value of writer type w (fields we do not know). */
static itd_err_t skip_value(cur_t *c, avro_schema_t w, int depth) {
        itd_err_t err = ITD_OK;
        int64_t v;
        size_t n;
        if (depth > 32)
                return cur_fail(c, "schema nests deeper than 32 levels");
        if (is_avro_link(w))
                w = avro_schema_link_target(w);
        switch (avro_typeof(w)) {
        case AVRO_NULL:
                return ITD_OK;
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
                if ((err = rd_len(c, &n)))
                        return err;
                c->p += n;
                return ITD_OK;
        case AVRO_FIXED:
                return rd_fixed(c, (size_t)avro_schema_fixed_size(w), "fixed");
        case AVRO_ENUM: {
                int i;
                return rd_enum(c, avro_schema_enum_number_of_symbols(w), &i);
        }
        case AVRO_UNION:
                if ((err = rd_branch(c, avro_schema_union_size(w), &n)))
                        return err;
                return skip_value(c, avro_schema_union_branch(w, (int)n),
                                  depth + 1);
        case AVRO_RECORD:
                for (size_t i = 0; i < avro_schema_record_size(w); i++)
                        if ((err = skip_value(
                                 c,
                                 avro_schema_record_field_get_by_index(
                                     w, (int)i),
                                 depth + 1)))
                                return err;
                return ITD_OK;
        case AVRO_ARRAY:
        case AVRO_MAP:
                for (;;) {
                        int64_t count;
                        if ((err = rd_block(c, &count)))
                                return err;
                        if (count == 0)
                                return ITD_OK;
                        for (int64_t i = 0; i < count; i++) {
                                if (avro_typeof(w) == AVRO_MAP) {
                                        /* the key */
                                        if ((err = rd_len(c, &n)))
                                                return err;
                                        c->p += n;
                                }
                                if ((err = skip_value(
                                         c,
                                         avro_typeof(w) == AVRO_MAP
                                             ? avro_schema_map_values(w)
                                             : avro_schema_array_items(w),
                                         depth + 1)))
                                        return err;
                        }
                }
        default:
                return cur_fail(c, "unsupported writer type %s",
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

static int slot_required(slot_t slot) {
        return slot == SLOT_USER_ID || slot == SLOT_TS || slot == SLOT_TYPE;
}

/* Reads one value of writer type w into the event slot of field f. */
static itd_err_t read_slot(cur_t *c, const plan_field_t *f, avro_schema_t w,
                           itd_event_t *ev) {
        itd_err_t err;
        slot_t slot = f->slot;
        if (is_avro_link(w))
                w = avro_schema_link_target(w);
        switch (avro_typeof(w)) {
        case AVRO_UNION: {
                size_t b;
                avro_schema_t bw;
                if (f->n_branch) {
                        if ((err = rd_branch(c, f->n_branch, &b)))
                                return err;
                        bw = f->branch[b];
                } else {
                        if ((err = rd_branch(c, avro_schema_union_size(w),
                                             &b)))
                                return err;
                        bw = avro_schema_union_branch(w, (int)b);
                }
                if (is_avro_union(bw))
                        return cur_fail(c, "union inside a union");
                return read_slot(c, f, bw, ev);
        }
        case AVRO_NULL:
                if (slot_required(slot))
                        return cur_fail(c, "null for a required field");
                return ITD_OK; /* absent: already cleared */
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
                if ((err = rd_long(c, &v)))
                        return err;
                if (slot == SLOT_TS)
                        ev->ts_ms = v;
                else
                        ev->price = (double)v;
                return ITD_OK;
        }
        case AVRO_FLOAT:
        case AVRO_DOUBLE: {
                if (slot != SLOT_PRICE)
                        break;
                if (avro_typeof(w) == AVRO_FLOAT) {
                        float fl;
                        if ((err = rd_float(c, &fl)))
                                return err;
                        ev->price = fl;
                } else if ((err = rd_double(c, &ev->price))) {
                        return err;
                }
                if (!isfinite(ev->price))
                        return cur_fail(c, "price is not finite");
                return ITD_OK;
        }
        case AVRO_ENUM: {
                int i;
                if (slot != SLOT_TYPE)
                        break;
                const uint8_t *at = c->p;
                int nsym = f->n_symbol
                               ? f->n_symbol
                               : avro_schema_enum_number_of_symbols(w);
                if ((err = rd_enum(c, nsym, &i)))
                        return err;
                if (f->n_symbol && i < f->n_symbol && f->symbol[i] >= 0) {
                        ev->type = (itd_event_type_t)f->symbol[i];
                        return ITD_OK;
                }
                /* By symbol, not index: a writer may order them otherwise. */
                const char *sym = avro_schema_enum_get(w, i);
                if (!sym || itd_event_type_parse(sym, &ev->type)) {
                        c->p = at;
                        return cur_fail(c, "unknown event type symbol "
                                           "\"%s\"",
                                        sym ? sym : "?");
                }
                return ITD_OK;
        }
        default:
                break;
        }
        return cur_fail(c, "writer type %s cannot be read into this field",
                        avro_schema_type_name(w));
}

/* ------------------------------------------------------------------ */
/* Plans and set-up.                                                  */

static itd_err_t plan_build(plan_t *plan, avro_schema_t writer, char *errstr,
                            size_t errstr_size) {
        int seen[SLOT__COUNT] = {0};
        if (!is_avro_record(writer)) {
                snprintf(errstr, errstr_size,
                         "event writer schema is a %s, not a record",
                         avro_schema_type_name(writer));
                return ITD_ERR_INCOMPATIBLE;
        }
        plan->n = avro_schema_record_size(writer);
        plan->f = itd_xcalloc(plan->n, sizeof *plan->f);
        for (size_t i = 0; i < plan->n; i++) {
                plan_field_t *f = &plan->f[i];
                f->name = avro_schema_record_field_name(writer, (int)i);
                f->type = avro_schema_record_field_get_by_index(writer, (int)i);
                f->slot = SLOT_NONE;
                for (int s = 1; s < SLOT__COUNT; s++)
                        if (strcmp(f->name, slot_names[s]) == 0)
                                f->slot = (slot_t)s;
                seen[f->slot] = 1;
                avro_schema_t t = f->type;
                if (is_avro_link(t))
                        t = avro_schema_link_target(t);
                if (is_avro_union(t) &&
                    avro_schema_union_size(t) <= PLAN_BRANCHES) {
                        f->n_branch = avro_schema_union_size(t);
                        for (size_t b = 0; b < f->n_branch; b++)
                                f->branch[b] =
                                    avro_schema_union_branch(t, (int)b);
                }
                if (f->slot == SLOT_TYPE && is_avro_enum(t) &&
                    avro_schema_enum_number_of_symbols(t) <= PLAN_SYMBOLS) {
                        f->n_symbol = avro_schema_enum_number_of_symbols(t);
                        for (int k = 0; k < f->n_symbol; k++) {
                                itd_event_type_t et;
                                f->symbol[k] = itd_event_type_parse(
                                                   avro_schema_enum_get(t, k),
                                                   &et)
                                                   ? -1
                                                   : (int8_t)et;
                        }
                }
        }
        for (int s = 1; s < SLOT__COUNT; s++) {
                if (slot_required((slot_t)s) && !seen[s]) {
                        snprintf(errstr, errstr_size,
                                 "event writer schema lacks required field "
                                 "'%s'",
                                 slot_names[s]);
                        free(plan->f);
                        plan->f = NULL;
                        return ITD_ERR_INCOMPATIBLE;
                }
        }
        return ITD_OK;
}

static int field_index(avro_schema_t rec, const char *name) {
        return avro_schema_record_field_get_index(rec, name);
}

static const char *const pred_fields[10] = {
    "prediction_id", "user_id",      "event_ts",
    "predicted_at",  "purchase_probability", "next_action",
    "next_action_probabilities", "model_version", "top_categories",
    "explanation"};

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
        if (plan_build(&codec->ev_plan, codec->ev_schema, errstr,
                       errstr_size))
                goto fail;
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
        free(codec->ev_plan.f);
        if (codec->ev_schema)
                avro_schema_decref(codec->ev_schema);
        if (codec->pred_schema)
                avro_schema_decref(codec->pred_schema);
        free(codec);
}

/* ------------------------------------------------------------------ */
/* Decoding.                                                          */

static itd_err_t check_end(cur_t *c) {
        if (c->p != c->end) {
                size_t at = (size_t)(c->p - c->base);
                snprintf(c->errstr, c->errstr_size,
                         "%zu trailing bytes after the record (record ends "
                         "at byte %zu of %zu)",
                         cur_left(c), at, (size_t)(c->end - c->base));
                return ITD_ERR_DECODE;
        }
        return ITD_OK;
}

/* Payload at buf[off..len) per plan; errors without the common prefix. */
static itd_err_t decode_event_at(const plan_t *plan, const uint8_t *buf,
                                 size_t len, size_t off, itd_event_t *ev,
                                 char *errstr, size_t errstr_size) {
        cur_t c = {buf, buf + off, buf + len, "", errstr, errstr_size};
        itd_err_t err;
        itd_event_clear(ev);
        for (size_t i = 0; i < plan->n; i++) {
                c.field = plan->f[i].name;
                if (plan->f[i].slot == SLOT_NONE)
                        err = skip_value(&c, plan->f[i].type, 0);
                else
                        err = read_slot(&c, &plan->f[i], plan->f[i].type,
                                        ev);
                if (err)
                        return err;
        }
        if ((err = check_end(&c)))
                return err;
        if (!ev->user_id[0]) {
                snprintf(errstr, errstr_size,
                         "field 'user_id': empty string (required)");
                return ITD_ERR_DECODE;
        }
        return ITD_OK;
}

typedef itd_err_t (*payload_fn)(itd_codec_t *codec, const uint8_t *buf,
                                size_t len, size_t off, void *out,
                                char *errstr, size_t errstr_size);

/* Applies the framing rules around a payload decoder. */
static itd_err_t decode_framed(itd_codec_t *codec, const char *what,
                               payload_fn fn, const void *vbuf, size_t len,
                               itd_framing_t framing, void *out, char *errstr,
                               size_t errstr_size) {
        const uint8_t *buf = vbuf;
        char why[256], why_bare[256];
        itd_err_t err;
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
                err = fn(codec, buf, len, CONFLUENT_HDR, out, why, sizeof why);
                break;
        case ITD_FRAMING_BARE:
                err = fn(codec, buf, len, 0, out, why, sizeof why);
                break;
        default:
                if (len < CONFLUENT_HDR || buf[0] != 0) {
                        err = fn(codec, buf, len, 0, out, why, sizeof why);
                        break;
                }
                /*
                 * Byte 0 is 0 both for a Confluent header and for a bare
                 * record whose first field is a null union branch, so try
                 * the header first and fall back to bare.
                 */
                err = fn(codec, buf, len, CONFLUENT_HDR, out, why, sizeof why);
                if (!err)
                        return ITD_OK;
                err = fn(codec, buf, len, 0, out, why_bare, sizeof why_bare);
                if (!err)
                        return ITD_OK;
                snprintf(errstr, errstr_size,
                         "avro %s decode: as Confluent (schema id %" PRIu32
                         "): %s; as bare Avro: %s",
                         what,
                         (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 |
                             (uint32_t)buf[3] << 8 | buf[4],
                         why, why_bare);
                return err;
        }
        if (err)
                snprintf(errstr, errstr_size, "avro %s decode: %s", what, why);
        return err;
}

static itd_err_t event_payload(itd_codec_t *codec, const uint8_t *buf,
                               size_t len, size_t off, void *out,
                               char *errstr, size_t errstr_size) {
        /* Skeleton: every schema id is taken to mean our own schema. */
        return decode_event_at(&codec->ev_plan, buf, len, off, out, errstr,
                               errstr_size);
}

itd_err_t itd_codec_decode_event(itd_codec_t *codec, const void *buf,
                                 size_t len, itd_framing_t framing,
                                 itd_event_t *ev, char *errstr,
                                 size_t errstr_size) {
        return decode_framed(codec, "event", event_payload, buf, len,
                             framing, ev, errstr, errstr_size);
}

/* An array of {string, float} records into names[max][name_cap]. */
static itd_err_t rd_pairs(cur_t *c, size_t max, char *names, size_t name_cap,
                          float *scores, size_t *n) {
        itd_err_t err;
        *n = 0;
        for (;;) {
                int64_t count;
                if ((err = rd_block(c, &count)))
                        return err;
                if (count == 0)
                        return ITD_OK;
                if ((uint64_t)count > max - *n)
                        return cur_fail(c, "more than %zu items", max);
                for (int64_t i = 0; i < count; i++, (*n)++) {
                        if ((err = rd_string(c, names + *n * name_cap,
                                             name_cap)) ||
                            (err = rd_float(c, &scores[*n])))
                                return err;
                }
        }
}

static itd_err_t prediction_payload(itd_codec_t *codec, const uint8_t *buf,
                                    size_t len, size_t off, void *out,
                                    char *errstr, size_t errstr_size) {
        itd_prediction_t *p = out;
        cur_t c = {buf, buf + off, buf + len, "", errstr, errstr_size};
        itd_err_t err;
        int next;
        size_t b;
        (void)codec;
        memset(p, 0, sizeof *p);
#define FIELD(i) (c.field = pred_fields[i])
        if ((FIELD(0), err = rd_string(&c, p->prediction_id,
                                       sizeof p->prediction_id)) ||
            (FIELD(1), err = rd_string(&c, p->user_id, sizeof p->user_id)) ||
            (FIELD(2), err = rd_long(&c, &p->event_ts_ms)) ||
            (FIELD(3), err = rd_long(&c, &p->predicted_at_ms)) ||
            (FIELD(4), err = rd_float(&c, &p->purchase_probability)) ||
            (FIELD(5), err = rd_enum(&c, ITD_NEXT__COUNT, &next)))
                return err;
        p->next_action = (itd_next_t)next;
        FIELD(6);
        for (int i = 0; i < ITD_NEXT__COUNT; i++)
                if ((err = rd_float(&c, &p->next_probs[i])))
                        return err;
        if ((FIELD(7), err = rd_long(&c, &p->model_version)) ||
            (FIELD(8), err = rd_pairs(&c, ITD_TOPCAT_MAX,
                                      &p->top_categories[0][0], ITD_ID_MAX,
                                      p->top_category_scores,
                                      &p->n_top_categories)) ||
            (FIELD(9), err = rd_branch(&c, 2, &b)))
                return err;
        if (b == 1 &&
            (err = rd_pairs(&c, ITD_EXPLAIN_MAX, &p->explanation_feature[0][0],
                            sizeof p->explanation_feature[0],
                            p->explanation_contribution, &p->n_explanation)))
                return err;
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
