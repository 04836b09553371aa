/*
 * fuzz_schema.c - libFuzzer target for writer schemas: the input drives a
 * generator that builds a legal Avro writer schema (records, enums, fixed,
 * arrays, maps, unions, named and recursive references, the reader's
 * fields in any order and of any type) and records *valid* for it, then:
 *
 *   - the schema resolves against config/event.avsc exactly when the Avro
 *     rules say it should (every required field present with a branch
 *     that can be read into it; optional fields of a readable type);
 *   - each valid record decodes, or is refused with a content reason
 *     (never a structural one: the bytes are valid), and a decoded event
 *     carries the user, time and event type that were written, each enum
 *     branch read by its own symbols;
 *   - itd_plan_decode_next finds the end of every valid record, refused
 *     or not;
 *   - the records in an object container file (null, deflate or snappy)
 *     read through the container reader with the same outcomes;
 *   - the remaining input appended to a record, or a record cut short,
 *     gets a reason and a detail, never a crash.
 *
 * Build and run: tests/fuzz/run.sh (clang -fsanitize=fuzzer,address).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <zlib.h>

#include "codec_int.h"
#include "fuzz_bytes.h"
#include "intentd/log.h"
#include "ocf.h"

#define MAX_TYPES 96
#define MAX_KIDS 6
#define MAX_RECORDS 4
#define NAMES 10 /* symbol names: the reader's six, then unknown ones */

static const char *const sym_names[NAMES] = {
    "VIEW",     "SEARCH", "ADD_TO_CART", "REMOVE_FROM_CART", "PURCHASE",
    "FAVORITE", "SHARE",  "RETURN",      "CLICK",            "IDLE"};

/* ---- generated types ---- */

typedef enum {
        G_NULL, G_BOOLEAN, G_INT, G_LONG, G_FLOAT, G_DOUBLE, G_STRING,
        G_BYTES, G_FIXED, G_ENUM, G_ARRAY, G_MAP, G_UNION, G_RECORD,
        G_REF, /* a named type defined before (or an enclosing record) */
        G__COUNT
} gkind_t;

typedef struct {
        gkind_t kind;
        int n;              /* fixed: size; enum: symbols; union, record */
        int kid[MAX_KIDS];  /* branches, field types, item type */
        int sym[NAMES];     /* enum: indexes into sym_names */
        int target;         /* ref: the type referred to */
        int open;           /* record: its fields are being generated */
} gtype_t;

typedef struct {
        in_t *in;
        gtype_t t[MAX_TYPES];
        int n;
        int recursive; /* a reference to an enclosing record was made */
} gen_t;

static int is_named(gkind_t k) {
        return k == G_FIXED || k == G_ENUM || k == G_RECORD;
}

static int new_type(gen_t *g, gkind_t k) {
        if (g->n == MAX_TYPES)
                return -1;
        memset(&g->t[g->n], 0, sizeof g->t[g->n]);
        g->t[g->n].kind = k;
        return g->n++;
}

static gkind_t kind_of(const gen_t *g, int t) {
        return g->t[t].kind == G_REF ? g->t[g->t[t].target].kind
                                     : g->t[t].kind;
}

static int gen_type(gen_t *g, int depth, int in_union);

static int gen_enum(gen_t *g, int must_have_known) {
        int t = new_type(g, G_ENUM);
        if (t < 0)
                return -1;
        int used[NAMES] = {0};
        int n = 1 + (int)pick(g->in, 7);
        for (int i = 0; i < n; i++) {
                int s = (int)pick(g->in, NAMES);
                while (used[s])
                        s = (s + 1) % NAMES;
                used[s] = 1;
                g->t[t].sym[g->t[t].n++] = s;
        }
        if (must_have_known && g->t[t].sym[0] >= 6)
                g->t[t].sym[0] = (int)pick(g->in, 6);
        return t;
}

/* The named type t is, or refers to (-1: unnamed). */
static int named_id(const gen_t *g, int t) {
        if (g->t[t].kind == G_REF)
                return g->t[t].target;
        return is_named(g->t[t].kind) ? t : -1;
}

/*
 * A union of up to 4 distinct branches (Avro forbids two unnamed types of
 * one kind, or one named type twice, in a union, and a union directly in a
 * union). A branch that refers to an enclosing record comes with a branch
 * that is no record, so that values can end.
 */
static int gen_union(gen_t *g, int depth) {
        int t = new_type(g, G_UNION);
        if (t < 0)
                return -1;
        int want = 1 + (int)pick(g->in, 4), seen[G__COUNT] = {0};
        int seen_named[MAX_TYPES] = {0}, loops = 0, exits = 0;
        for (int i = 0; i < want; i++) {
                int before = g->n;
                int k = gen_type(g, depth + 1, 1);
                if (k < 0)
                        return -1;
                gkind_t kk = kind_of(g, k);
                int id = named_id(g, k);
                if (id >= 0 ? seen_named[id] : seen[kk]) {
                        /* dropped: forget it and the types made inside
                         * it, so that nothing refers to them later */
                        g->n = before;
                        continue;
                }
                if (id >= 0)
                        seen_named[id] = 1;
                else
                        seen[kk] = 1;
                loops += g->t[k].kind == G_REF && g->t[id].open;
                exits += kk != G_RECORD;
                g->t[t].kid[g->t[t].n++] = k;
        }
        if (loops && !exits) {
                int k = new_type(g, G_NULL);
                if (k < 0)
                        return -1;
                g->t[t].kid[g->t[t].n++] = k;
        }
        return t;
}

static int gen_type(gen_t *g, int depth, int in_union) {
        unsigned what = pick(g->in, depth > 3 ? 9 : 16);
        int t;
        switch (what) {
        case 0: return new_type(g, G_NULL);
        case 1: return new_type(g, G_BOOLEAN);
        case 2: return new_type(g, G_INT);
        case 3: return new_type(g, G_LONG);
        case 4: return new_type(g, G_FLOAT);
        case 5: return new_type(g, G_DOUBLE);
        case 6: return new_type(g, G_STRING);
        case 7: return new_type(g, G_BYTES);
        case 8:
                if ((t = new_type(g, G_FIXED)) >= 0)
                        g->t[t].n = (int)pick(g->in, 5);
                return t;
        case 9: return gen_enum(g, 0);
        case 10:
        case 11:
                if ((t = new_type(g, what == 10 ? G_ARRAY : G_MAP)) < 0)
                        return -1;
                g->t[t].n = 1;
                g->t[t].kid[0] = gen_type(g, depth + 1, 0);
                return g->t[t].kid[0] < 0 ? -1 : t;
        case 12:
                if (in_union)
                        return new_type(g, G_STRING);
                return gen_union(g, depth);
        case 13: {
                if ((t = new_type(g, G_RECORD)) < 0)
                        return -1;
                g->t[t].open = 1;
                int n = (int)pick(g->in, 4);
                for (int i = 0; i < n; i++) {
                        int k = gen_type(g, depth + 1, 0);
                        if (k < 0)
                                return -1;
                        g->t[t].kid[g->t[t].n++] = k;
                }
                g->t[t].open = 0;
                return t;
        }
        default: {
                /* a reference to a named type defined before */
                int named[MAX_TYPES], nn = 0;
                for (int i = 0; i < g->n; i++) {
                        if (!is_named(g->t[i].kind))
                                continue;
                        /* an enclosing record only from inside a union,
                         * so that values can end (the data generator
                         * takes another branch when deep) */
                        if (g->t[i].kind == G_RECORD && g->t[i].open &&
                            !in_union)
                                continue;
                        named[nn++] = i;
                }
                if (nn == 0)
                        return new_type(g, G_LONG);
                int target = named[pick(g->in, (unsigned)nn)];
                if ((t = new_type(g, G_REF)) < 0)
                        return -1;
                g->t[t].target = target;
                if (g->t[target].open)
                        g->recursive = 1;
                return t;
        }
        }
}

static const char *const prim_names[] = {"null",   "boolean", "int",
                                         "long",   "float",   "double",
                                         "string", "bytes"};

static void emit_type(const gen_t *g, int t, buf_t *js) {
        const gtype_t *ty = &g->t[t];
        switch (ty->kind) {
        case G_FIXED:
                putf(js, "{\"type\":\"fixed\",\"name\":\"T%d\",\"size\":%d}",
                     t, ty->n);
                return;
        case G_ENUM:
                putf(js, "{\"type\":\"enum\",\"name\":\"T%d\",\"symbols\":[",
                     t);
                for (int i = 0; i < ty->n; i++)
                        putf(js, "%s\"%s\"", i ? "," : "",
                             sym_names[ty->sym[i]]);
                put(js, "]}", 2);
                return;
        case G_ARRAY:
        case G_MAP:
                putf(js, "{\"type\":\"%s\",\"%s\":",
                     ty->kind == G_ARRAY ? "array" : "map",
                     ty->kind == G_ARRAY ? "items" : "values");
                emit_type(g, ty->kid[0], js);
                put(js, "}", 1);
                return;
        case G_UNION:
                put(js, "[", 1);
                for (int i = 0; i < ty->n; i++) {
                        if (i)
                                put(js, ",", 1);
                        emit_type(g, ty->kid[i], js);
                }
                put(js, "]", 1);
                return;
        case G_RECORD:
                putf(js, "{\"type\":\"record\",\"name\":\"T%d\",\"fields\":[",
                     t);
                for (int i = 0; i < ty->n; i++) {
                        putf(js, "%s{\"name\":\"f%d\",\"type\":", i ? "," : "",
                             i);
                        emit_type(g, ty->kid[i], js);
                        put(js, "}", 1);
                }
                put(js, "]}", 2);
                return;
        case G_REF: putf(js, "\"T%d\"", ty->target); return;
        default: putf(js, "\"%s\"", prim_names[ty->kind]); return;
        }
}

/* ---- the reader's fields, and what resolution must say ---- */

enum { S_EVENT_ID, S_USER_ID, S_TS, S_TYPE, S_ITEM_ID, S_CATEGORY,
       S_PRICE, S_QUERY, S_SESSION_ID, S__COUNT };
static const char *const slot_field[S__COUNT] = {
    "event_id", "user_id", "ts", "type", "item_id", "category",
    "price", "query", "session_id"};

static int required(int s) {
        return s == S_USER_ID || s == S_TS || s == S_TYPE;
}

/* By the Avro spec: can writer kind k be read into the reader's field s
 * (null: only where the reader's field is a union with null)? */
static int readable(int s, gkind_t k) {
        if (k == G_NULL)
                return !required(s);
        switch (s) {
        case S_TS: return k == G_INT || k == G_LONG;
        case S_TYPE: return k == G_ENUM;
        case S_PRICE:
                return k == G_INT || k == G_LONG || k == G_FLOAT ||
                       k == G_DOUBLE;
        default: return k == G_STRING || k == G_BYTES;
        }
}

static int resolves(const gen_t *g, int s, int t) {
        if (kind_of(g, t) != G_UNION)
                return readable(s, kind_of(g, t));
        const gtype_t *u = g->t[t].kind == G_REF ? &g->t[g->t[t].target]
                                                  : &g->t[t];
        for (int i = 0; i < u->n; i++)
                if (readable(s, kind_of(g, u->kid[i])))
                        return 1;
        return 0;
}

/* A type for the reader's field s, often one that resolves. */
static int gen_slot_type(gen_t *g, int s) {
        static const gkind_t string_like[] = {G_STRING, G_BYTES};
        unsigned how = pick(g->in, 4);
        if (how == 3)
                return gen_type(g, 1, 0); /* anything at all */
        int t;
        if (s == S_TYPE) {
                t = gen_enum(g, 1);
        } else if (s == S_TS) {
                t = new_type(g, pick(g->in, 2) ? G_LONG : G_INT);
        } else if (s == S_PRICE) {
                static const gkind_t num[] = {G_INT, G_LONG, G_FLOAT,
                                              G_DOUBLE};
                t = new_type(g, num[pick(g->in, 4)]);
        } else {
                t = new_type(g, string_like[pick(g->in, 2)]);
        }
        if (t < 0 || how == 0)
                return t;
        /* in a union with null, another branch, or both, in any order */
        int u = new_type(g, G_UNION);
        if (u < 0)
                return -1;
        int other = how == 2 ? (s == S_TYPE ? gen_enum(g, 0)
                                            : new_type(g, G_NULL))
                             : new_type(g, G_NULL);
        if (other < 0)
                return -1;
        int first = (int)pick(g->in, 2);
        g->t[u].n = 2;
        g->t[u].kid[first] = t;
        g->t[u].kid[!first] = other;
        if (how == 2 && s == S_TYPE && pick(g->in, 2)) {
                int nul = new_type(g, G_NULL);
                if (nul < 0)
                        return -1;
                g->t[u].kid[g->t[u].n++] = nul;
        }
        return u;
}

/* ---- valid values ---- */

typedef struct {
        int written;     /* this slot's field was in the writer */
        gkind_t kind;    /* the branch written */
        char str[160];   /* string value (NUL-free ones only compared) */
        size_t str_len;
        int str_plain;   /* letters only, short: must decode */
        int64_t num;
        int sym;         /* enum: index into sym_names */
} seen_t;

static void gen_value(gen_t *g, int t, int depth, buf_t *o, seen_t *sv) {
        const gtype_t *ty = &g->t[t];
        if (ty->kind == G_REF) {
                gen_value(g, ty->target, depth, o, sv);
                return;
        }
        if (sv)
                sv->kind = ty->kind;
        switch (ty->kind) {
        case G_NULL: return;
        case G_BOOLEAN: {
                uint8_t b = (uint8_t)pick(g->in, 2);
                put(o, &b, 1);
                return;
        }
        case G_INT:
        case G_LONG: {
                int64_t v = (int64_t)pick64(g->in);
                if (ty->kind == G_INT)
                        v = (int32_t)v;
                if (sv)
                        sv->num = v;
                put_long(o, v);
                return;
        }
        case G_FLOAT:
        case G_DOUBLE: {
                uint8_t b[8];
                uint64_t v = pick64(g->in);
                for (int i = 0; i < 8; i++)
                        b[i] = (uint8_t)(v >> (8 * i));
                put(o, b, ty->kind == G_FLOAT ? 4 : 8);
                return;
        }
        case G_STRING:
        case G_BYTES: {
                char s[160];
                size_t n = pick(g->in, 12);
                int plain = pick(g->in, 8) != 0;
                if (!plain)
                        n = pick(g->in, 150);
                for (size_t i = 0; i < n; i++)
                        s[i] = plain ? (char)('a' + pick(g->in, 26))
                                     : (char)pick(g->in, 256);
                put_long(o, (int64_t)n);
                put(o, s, n);
                if (sv) {
                        memcpy(sv->str, s, n);
                        sv->str[n] = '\0';
                        sv->str_len = n;
                        sv->str_plain = plain;
                }
                return;
        }
        case G_FIXED:
                for (int i = 0; i < ty->n; i++) {
                        uint8_t b = (uint8_t)pick(g->in, 256);
                        put(o, &b, 1);
                }
                return;
        case G_ENUM: {
                int i = (int)pick(g->in, (unsigned)ty->n);
                put_long(o, i);
                if (sv)
                        sv->sym = ty->sym[i];
                return;
        }
        case G_UNION: {
                int b = (int)pick(g->in, (unsigned)ty->n);
                if (depth > 8) {
                        /* deep: a branch that is not a record, so that
                         * recursive values end */
                        for (int i = 0; i < ty->n; i++)
                                if (kind_of(g, ty->kid[i]) != G_RECORD)
                                        b = i;
                }
                put_long(o, b);
                gen_value(g, ty->kid[b], depth + 1, o, sv);
                return;
        }
        case G_RECORD:
                for (int i = 0; i < ty->n; i++)
                        gen_value(g, ty->kid[i], depth + 1, o, NULL);
                return;
        case G_ARRAY:
        case G_MAP: {
                int blocks = depth > 6 ? 0 : (int)pick(g->in, 3);
                for (int k = 0; k < blocks; k++) {
                        int count = 1 + (int)pick(g->in, 3);
                        buf_t items = {0};
                        for (int i = 0; i < count; i++) {
                                if (ty->kind == G_MAP) {
                                        put_long(&items, 1);
                                        put(&items, "k", 1);
                                }
                                gen_value(g, ty->kid[0], depth + 1, &items,
                                          NULL);
                        }
                        if (pick(g->in, 2)) { /* with the byte size */
                                put_long(o, -count);
                                put_long(o, (int64_t)items.n);
                        } else {
                                put_long(o, count);
                        }
                        put(o, items.b, items.n);
                        free(items.b);
                }
                put_long(o, 0);
                return;
        }
        default: abort();
        }
}

/* ---- the checks ---- */

static int content_reason(itd_reason_t r) {
        switch (r) {
        case ITD_REASON_OK:
        case ITD_REASON_SCHEMA_INCOMPATIBLE: /* a branch of another type */
        case ITD_REASON_MISSING_FIELD:
        case ITD_REASON_MISSING_USER_ID:
        case ITD_REASON_UNKNOWN_EVENT_TYPE:
        case ITD_REASON_BAD_PRICE:
        case ITD_REASON_STRING_TOO_LONG:
        case ITD_REASON_INVALID_UTF8:
        case ITD_REASON_NUL_IN_STRING: return 1;
        default: return 0;
        }
}

/* A valid record's outcome against what was written into it. */
static void check_record(itd_reason_t r, const itd_event_t *ev,
                         const seen_t *sv, const char *detail) {
        if (!content_reason(r)) {
                fprintf(stderr, "valid record refused as %s: %s\n",
                        itd_reason_name(r), detail);
                abort();
        }
        if (r != ITD_REASON_OK) {
                if (!detail[0])
                        abort(); /* every reason comes with a detail */
                return;
        }
        const seen_t *u = &sv[S_USER_ID], *ts = &sv[S_TS], *ty = &sv[S_TYPE];
        if ((u->kind != G_STRING && u->kind != G_BYTES) ||
            strcmp(ev->user_id, u->str) != 0 || ev->ts_ms != ts->num ||
            (ts->kind != G_INT && ts->kind != G_LONG) ||
            ty->kind != G_ENUM || ty->sym >= 6 || (int)ev->type != ty->sym)
                abort(); /* decoded, but not what was written */
}

/* The records in a container; every one must come out as it did alone. */
static void check_container(in_t *in, const buf_t *js, buf_t *rec,
                            size_t nrec, const itd_reason_t *want) {
        static const uint8_t sync[16] = "0123456789abcdef";
        static const char *const codecs[3] = {"null", "deflate", "snappy"};
        int codec = (int)pick(in, 3);
        buf_t f = {0}, block = {0}, packed = {0};
        put(&f, "Obj\x01", 4);
        put_long(&f, 2);
        put_long(&f, 11);
        put(&f, "avro.schema", 11);
        put_long(&f, (int64_t)js->n);
        put(&f, js->b, js->n);
        put_long(&f, 10);
        put(&f, "avro.codec", 10);
        put_long(&f, (int64_t)strlen(codecs[codec]));
        put(&f, codecs[codec], strlen(codecs[codec]));
        put_long(&f, 0);
        put(&f, sync, 16);
        /* records in one or two blocks */
        size_t split = nrec ? pick(in, (unsigned)nrec + 1) : 0;
        size_t from = 0;
        for (int b = 0; b < 2; b++) {
                size_t to = b ? nrec : split;
                block.n = 0;
                for (size_t i = from; i < to; i++)
                        put(&block, rec[i].b, rec[i].n);
                const buf_t *data = &block;
                if (codec == 1) {
                        raw_deflate(&block, &packed);
                        data = &packed;
                } else if (codec == 2) {
                        packed.n = 0;
                        snappy_literals(&block, &packed);
                        data = &packed;
                }
                put_long(&f, (int64_t)(to - from));
                put_long(&f, (int64_t)data->n);
                put(&f, data->b, data->n);
                put(&f, sync, 16);
                from = to;
        }
        in_t m = {f.b, f.b + f.n};
        char err[512];
        itd_ocf_t *o = itd_ocf_open(mem_read, &m, "generated.avro", err,
                                    sizeof err);
        if (!o) {
                fprintf(stderr, "container refused: %s\n", err);
                abort(); /* the schema resolved alone */
        }
        itd_event_t ev;
        for (size_t i = 0; i < nrec; i++) {
                itd_err_t e = itd_ocf_next(o, &ev, err, sizeof err);
                if (e != (want[i] == ITD_REASON_OK ? ITD_OK
                                                    : ITD_ERR_DECODE)) {
                        fprintf(stderr, "record %zu: %s\n", i, err);
                        abort();
                }
        }
        if (itd_ocf_next(o, &ev, err, sizeof err) != ITD_ERR_EOF)
                abort();
        itd_ocf_close(o);
        free(f.b);
        free(block.b);
        free(packed.b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        itd_log_setup(ITD_LOG_CRIT, ITD_LOG_FORMAT_PLAIN);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        in_t in = {data, data + size};
        gen_t g = {.in = &in};
        int field_type[S__COUNT + 4], field_slot[S__COUNT + 4], nf = 0;
        int expect = 1;
        /* the reader's fields (required ones mostly present) and extras,
         * in any order; types are generated in that order, as named types
         * must be defined before they are referred to */
        for (int s = 0; s < S__COUNT; s++) {
                if (pick(&in, required(s) ? 16 : 2) == 1) {
                        if (required(s))
                                expect = 0; /* no default in the reader */
                        continue;
                }
                field_slot[nf++] = s;
        }
        for (int e = (int)pick(&in, 4); e > 0; e--)
                field_slot[nf++] = -1;
        for (int i = nf - 1; i > 0; i--) {
                int j = (int)pick(&in, (unsigned)i + 1);
                int s = field_slot[i];
                field_slot[i] = field_slot[j];
                field_slot[j] = s;
        }
        for (int i = 0; i < nf; i++) {
                int s = field_slot[i];
                field_type[i] = s >= 0 ? gen_slot_type(&g, s)
                                       : gen_type(&g, 1, 0);
                if (field_type[i] < 0)
                        return 0;
                if (s >= 0)
                        expect &= resolves(&g, s, field_type[i]);
        }
        buf_t js = {0};
        put(&js, "{\"type\":\"record\",\"name\":\"Event\",\"fields\":[", 42);
        for (int i = 0; i < nf; i++) {
                if (field_slot[i] >= 0)
                        putf(&js, "%s{\"name\":\"%s\",\"type\":", i ? "," : "",
                             slot_field[field_slot[i]]);
                else
                        putf(&js, "%s{\"name\":\"x%d\",\"type\":", i ? "," : "",
                             i);
                emit_type(&g, field_type[i], &js);
                put(&js, "}", 1);
        }
        put(&js, "]}", 3); /* with the NUL */
        js.n--;

        avro_schema_t writer;
        if (avro_schema_from_json_length((const char *)js.b, js.n, &writer)) {
                /* The generator writes legal schemas only. */
                fprintf(stderr, "Avro C refuses %s: %s\n", (char *)js.b,
                        avro_strerror());
                abort();
        }
        char err[512] = "";
        itd_plan_t *plan = itd_plan_new(writer, err, sizeof err);
        avro_schema_decref(writer);
        if (!plan != !expect) {
                fprintf(stderr, "%s: resolution says %s, expected %s\n",
                        (char *)js.b, plan ? "yes" : err,
                        expect ? "yes" : "no");
                abort();
        }
        if (!plan) {
                if (!err[0])
                        abort();
                free(js.b);
                return 0;
        }
        buf_t rec[MAX_RECORDS] = {{0}};
        itd_reason_t want[MAX_RECORDS];
        size_t nrec = 1 + pick(&in, MAX_RECORDS);
        for (size_t k = 0; k < nrec; k++) {
                seen_t sv[S__COUNT];
                memset(sv, 0, sizeof sv);
                for (int i = 0; i < nf; i++)
                        gen_value(&g, field_type[i], 0, &rec[k],
                                  field_slot[i] >= 0 ? &sv[field_slot[i]]
                                                     : NULL);
                itd_event_t ev;
                char detail[512] = "";
                want[k] = itd_plan_decode(plan, rec[k].b, rec[k].n, 0,
                                          SIZE_MAX, &ev, detail,
                                          sizeof detail);
                check_record(want[k], &ev, sv, detail);
                size_t off = 0;
                detail[0] = '\0';
                itd_reason_t r = itd_plan_decode_next(plan, rec[k].b,
                                                      rec[k].n, &off, SIZE_MAX,
                                                      &ev, detail,
                                                      sizeof detail);
                if (r != want[k] || off != rec[k].n)
                        abort(); /* the end of a valid record is found */
        }
        check_container(&in, &js, rec, nrec, want);
        /* Hostile variants: the rest of the input appended, or a cut. */
        buf_t bad = {0};
        put(&bad, rec[0].b, rec[0].n);
        size_t cut = rec[0].n ? pick(&in, (unsigned)rec[0].n) : 0;
        put(&bad, in.p, (size_t)(in.end - in.p));
        for (int v = 0; v < 2; v++) {
                itd_event_t ev;
                char detail[512] = "";
                size_t len = v ? cut : bad.n, off = 0;
                itd_reason_t r = itd_plan_decode(plan, bad.b, len, 0, 63, &ev,
                                                 detail, sizeof detail);
                if ((int)r < 0 || r >= ITD_REASON__COUNT ||
                    (r != ITD_REASON_OK && !detail[0]))
                        abort();
                r = itd_plan_decode_next(plan, bad.b, len, &off, 63, &ev,
                                         detail, sizeof detail);
                if (off != SIZE_MAX && off > len)
                        abort();
        }
        free(bad.b);
        for (size_t k = 0; k < nrec; k++)
                free(rec[k].b);
        itd_plan_destroy(plan);
        free(js.b);
        return 0;
}
