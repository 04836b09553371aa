/*
 * plan.c - writer schemas resolved against the reader schema
 * config/event.avsc, and the walker that decodes events by them.
 *
 * Decoding does not use avro_value_read(). Avro C allocates every string
 * it reads, leaks it when the payload is truncated, gives one generic
 * message for every failure, does not notice trailing bytes, does not
 * apply reader defaults, recurses as deep as the data nests and allocates
 * for every item an array announces. Instead the writer schema (as parsed
 * by Avro C) is compiled once into a *plan*: a flat table of nodes, one per
 * writer type, in which
 *   - every enum carries its own symbol map (writer index -> event type),
 *     so unions of several enums, and enums beside null in either order,
 *     read each branch by its own symbols;
 *   - every type knows whether its values encode to zero bytes (null,
 *     records of nulls), so such values are never walked: no item count,
 *     however large, and no schema, however branchy, makes a walk slow;
 *   - named types referenced again (and recursive types) are one node.
 * The top-level writer fields are matched to itd_event_t slots by name or
 * skipped, int/long/float promote to the reader's long/double, bytes read
 * as string, and reader fields the writer lacks start from the reader's
 * default (read from the schema JSON with jansson, since Avro C's parser
 * drops "default"). Decoding costs no allocation and every fault gets a
 * stable reason code (input.h) plus the field and byte offset. Values nest
 * at most MAX_DEPTH deep (a recursive writer type can nest without end).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

#include "avro_cur.h"
#include "codec_int.h"
#include "intentd/mem.h"

#define MAX_DEPTH 64        /* writer types and values nest no deeper */
#define MAX_NODES 4096      /* distinct writer types in one schema */
#define MAX_KIDS 65536      /* fields and branches, all types together */
#define MAX_SYMBOLS 65536   /* enum symbols, all enums together */

const char *const itd_slot_names[ITD_SLOT__COUNT] = {
    "", "event_id", "user_id", "ts", "type", "item_id", "category", "price",
    "query", "session_id"};

typedef enum {
        K_NULL,
        K_BOOLEAN,
        K_INT, /* int and long: the same varint */
        K_FLOAT,
        K_DOUBLE,
        K_STRING, /* string and bytes: the same length-prefixed bytes */
        K_FIXED,
        K_ENUM,
        K_UNION,
        K_RECORD,
        K_ARRAY,
        K_MAP
} kind_t;

typedef struct {
        uint8_t kind;
        uint8_t zero;   /* every value encodes to zero bytes: not walked */
        uint32_t n;     /* fixed: bytes; enum: symbols; union: branches;
                           record: fields that are not zero-size */
        uint32_t kid;   /* first of n (array, map: 1) in plan->kid */
        uint32_t sym;   /* enum: first of n in plan->sym */
        avro_schema_t sch; /* borrowed from plan->writer: for messages */
} node_t;

typedef struct {
        const char *name; /* borrowed from the writer schema */
        itd_slot_t slot;
        uint32_t node;
} field_t;

struct itd_plan_s {
        avro_schema_t writer; /* own reference */
        node_t *node;
        uint32_t n_node;
        uint32_t *kid;
        uint32_t n_kid;
        int8_t *sym; /* writer symbol -> itd_event_type_t, -1: unknown */
        uint32_t n_sym;
        uint32_t top; /* the writer record */
        field_t *f;   /* its fields, in writer order */
        size_t n_field;
        itd_event_t defaults; /* reader defaults; the start of every decode */
};

/* ------------------------------------------------------------------ */
/* Compiling a writer schema.                                         */

typedef struct {
        itd_plan_t *plan;
        avro_schema_t *memo; /* schema of node i, to find it again */
        uint32_t cap_node, cap_kid, cap_sym;
        char *errstr;
        size_t errstr_size;
} build_t;

static avro_schema_t deref(avro_schema_t w) {
        /* A link names a type defined elsewhere; links to links are not
         * made by the parser, but cost nothing to follow a few times. */
        for (int i = 0; i < 8 && w && is_avro_link(w); i++)
                w = avro_schema_link_target(w);
        return w;
}

static int too_large(build_t *b, const char *what, unsigned max) {
        snprintf(b->errstr, b->errstr_size,
                 "writer schema too large: more than %u %s", max, what);
        return -1;
}

/* Reserves n entries of plan->kid; returns the first, or -1. */
static int64_t add_kids(build_t *b, uint32_t n) {
        itd_plan_t *pl = b->plan;
        if (n > MAX_KIDS - pl->n_kid)
                return too_large(b, "fields and union branches", MAX_KIDS);
        while (pl->n_kid + n > b->cap_kid) {
                b->cap_kid = b->cap_kid ? 2 * b->cap_kid : 64;
                pl->kid = itd_xrealloc(pl->kid, b->cap_kid * sizeof *pl->kid);
        }
        uint32_t first = pl->n_kid;
        pl->n_kid += n;
        return first;
}

static int compile(build_t *b, avro_schema_t s, int depth, uint32_t *out);

/* Compiles the n kids of node ni, got by index from s. */
static int compile_kids(build_t *b, uint32_t ni, avro_schema_t s, uint32_t n,
                        int depth) {
        int64_t first = add_kids(b, n);
        if (first < 0)
                return -1;
        b->plan->node[ni].kid = (uint32_t)first;
        for (uint32_t i = 0; i < n; i++) {
                avro_schema_t k;
                switch (avro_typeof(s)) {
                case AVRO_RECORD:
                        k = avro_schema_record_field_get_by_index(s, (int)i);
                        break;
                case AVRO_UNION:
                        k = avro_schema_union_branch(s, (int)i);
                        break;
                case AVRO_ARRAY:
                        k = avro_schema_array_items(s);
                        break;
                default:
                        k = avro_schema_map_values(s);
                        break;
                }
                uint32_t kn;
                if (compile(b, k, depth + 1, &kn))
                        return -1;
                b->plan->kid[first + i] = kn;
        }
        return 0;
}

static int compile_enum(build_t *b, uint32_t ni, avro_schema_t s) {
        itd_plan_t *pl = b->plan;
        int n = avro_schema_enum_number_of_symbols(s);
        if (n < 0 || (uint32_t)n > MAX_SYMBOLS - pl->n_sym)
                return too_large(b, "enum symbols", MAX_SYMBOLS);
        while (pl->n_sym + (uint32_t)n > b->cap_sym) {
                b->cap_sym = b->cap_sym ? 2 * b->cap_sym : 64;
                pl->sym = itd_xrealloc(pl->sym, b->cap_sym);
        }
        pl->node[ni].n = (uint32_t)n;
        pl->node[ni].sym = pl->n_sym;
        for (int k = 0; k < n; k++) {
                itd_event_type_t et;
                const char *name = avro_schema_enum_get(s, k);
                pl->sym[pl->n_sym++] =
                    name && itd_event_type_parse(name, &et) == ITD_OK
                        ? (int8_t)et
                        : -1;
        }
        return 0;
}

/*
 * The node of writer type s (compiled now if new). A type seen before,
 * named or not, is the same node: recursive types end here.
 */
static int compile(build_t *b, avro_schema_t s, int depth, uint32_t *out) {
        itd_plan_t *pl = b->plan;
        s = deref(s);
        if (!s) {
                snprintf(b->errstr, b->errstr_size,
                         "writer schema has a dangling type reference");
                return -1;
        }
        for (uint32_t i = 0; i < pl->n_node; i++) {
                if (b->memo[i] == s) {
                        *out = i;
                        return 0;
                }
        }
        if (depth > MAX_DEPTH) {
                snprintf(b->errstr, b->errstr_size,
                         "writer schema nests deeper than %d levels",
                         MAX_DEPTH);
                return -1;
        }
        if (pl->n_node == MAX_NODES)
                return too_large(b, "types", MAX_NODES);
        if (pl->n_node == b->cap_node) {
                b->cap_node = b->cap_node ? 2 * b->cap_node : 32;
                pl->node = itd_xrealloc(pl->node,
                                        b->cap_node * sizeof *pl->node);
                b->memo = itd_xrealloc(b->memo,
                                       b->cap_node * sizeof *b->memo);
        }
        uint32_t ni = pl->n_node++;
        b->memo[ni] = s;
        node_t *nd = &pl->node[ni];
        memset(nd, 0, sizeof *nd);
        nd->sch = s;
        *out = ni;
        /* nd is not used below: compiling kids may move the table */
        switch (avro_typeof(s)) {
        case AVRO_NULL: pl->node[ni].kind = K_NULL; return 0;
        case AVRO_BOOLEAN: pl->node[ni].kind = K_BOOLEAN; return 0;
        case AVRO_INT32:
        case AVRO_INT64: pl->node[ni].kind = K_INT; return 0;
        case AVRO_FLOAT: pl->node[ni].kind = K_FLOAT; return 0;
        case AVRO_DOUBLE: pl->node[ni].kind = K_DOUBLE; return 0;
        case AVRO_STRING:
        case AVRO_BYTES: pl->node[ni].kind = K_STRING; return 0;
        case AVRO_FIXED: {
                int64_t size = avro_schema_fixed_size(s);
                if (size < 0 || size > INT32_MAX) {
                        snprintf(b->errstr, b->errstr_size,
                                 "writer schema: fixed '%s' of size %" PRId64,
                                 avro_schema_name(s), size);
                        return -1;
                }
                pl->node[ni].kind = K_FIXED;
                pl->node[ni].n = (uint32_t)size;
                return 0;
        }
        case AVRO_ENUM:
                pl->node[ni].kind = K_ENUM;
                return compile_enum(b, ni, s);
        case AVRO_UNION:
                pl->node[ni].kind = K_UNION;
                pl->node[ni].n = (uint32_t)avro_schema_union_size(s);
                return compile_kids(b, ni, s, pl->node[ni].n, depth);
        case AVRO_RECORD:
                pl->node[ni].kind = K_RECORD;
                pl->node[ni].n = (uint32_t)avro_schema_record_size(s);
                return compile_kids(b, ni, s, pl->node[ni].n, depth);
        case AVRO_ARRAY:
        case AVRO_MAP:
                pl->node[ni].kind =
                    avro_typeof(s) == AVRO_ARRAY ? K_ARRAY : K_MAP;
                pl->node[ni].n = 1;
                return compile_kids(b, ni, s, 1, depth);
        default:
                snprintf(b->errstr, b->errstr_size,
                         "writer schema: unsupported type %s",
                         avro_schema_type_name(s));
                return -1;
        }
}

/*
 * Which types encode every value in zero bytes: null, fixed(0), records of
 * such. Greatest fixed point, so a record that holds only itself counts
 * as zero-size (it has no finite value, and reading none is safe). Then
 * each record's kid list keeps only the fields that take bytes.
 */
static void mark_zero_size(itd_plan_t *pl) {
        for (uint32_t i = 0; i < pl->n_node; i++) {
                node_t *nd = &pl->node[i];
                nd->zero = nd->kind == K_NULL || nd->kind == K_RECORD ||
                           (nd->kind == K_FIXED && nd->n == 0);
        }
        for (int changed = 1; changed;) {
                changed = 0;
                for (uint32_t i = 0; i < pl->n_node; i++) {
                        node_t *nd = &pl->node[i];
                        if (nd->kind != K_RECORD || !nd->zero)
                                continue;
                        for (uint32_t k = 0; k < nd->n; k++) {
                                if (!pl->node[pl->kid[nd->kid + k]].zero) {
                                        nd->zero = 0;
                                        changed = 1;
                                        break;
                                }
                        }
                }
        }
        for (uint32_t i = 0; i < pl->n_node; i++) {
                node_t *nd = &pl->node[i];
                if (nd->kind != K_RECORD)
                        continue;
                uint32_t keep = 0;
                for (uint32_t k = 0; k < nd->n; k++) {
                        uint32_t kn = pl->kid[nd->kid + k];
                        if (!pl->node[kn].zero)
                                pl->kid[nd->kid + keep++] = kn;
                }
                nd->n = keep;
        }
}

/* ------------------------------------------------------------------ */
/* Walking values.                                                    */

static itd_reason_t too_deep(itd_cur_t *c) {
        return itd_cur_fail(c, ITD_REASON_SCHEMA_INCOMPATIBLE,
                            "value nests deeper than %d levels", MAX_DEPTH);
}

/* Steps over one value of node ni (fields the reader does not know). */
static itd_reason_t skip_value(itd_cur_t *c, const itd_plan_t *pl,
                               uint32_t ni, int depth) {
        const node_t *nd = &pl->node[ni];
        itd_reason_t r;
        int64_t v;
        size_t n;
        if (nd->zero)
                return ITD_REASON_OK;
        if (depth > MAX_DEPTH)
                return too_deep(c);
        switch (nd->kind) {
        case K_BOOLEAN: return itd_cur_skip(c, 1, "boolean");
        case K_INT: return itd_cur_long(c, &v);
        case K_FLOAT: return itd_cur_skip(c, 4, "float");
        case K_DOUBLE: return itd_cur_skip(c, 8, "double");
        case K_FIXED: return itd_cur_skip(c, nd->n, "fixed");
        case K_STRING:
                if ((r = itd_cur_len(c, &n)))
                        return r;
                c->p += n;
                return ITD_REASON_OK;
        case K_ENUM: return itd_cur_enum(c, nd->n, &n);
        case K_UNION:
                if ((r = itd_cur_branch(c, nd->n, &n)))
                        return r;
                return skip_value(c, pl, pl->kid[nd->kid + n], depth + 1);
        case K_RECORD:
                for (uint32_t i = 0; i < nd->n; i++)
                        if ((r = skip_value(c, pl, pl->kid[nd->kid + i],
                                            depth + 1)))
                                return r;
                return ITD_REASON_OK;
        case K_ARRAY:
        case K_MAP: {
                int is_map = nd->kind == K_MAP;
                uint32_t item = pl->kid[nd->kid];
                int walk = is_map || !pl->node[item].zero;
                for (;;) {
                        int64_t count;
                        if ((r = itd_cur_block(c, walk, &count)))
                                return r;
                        if (count == 0)
                                return ITD_REASON_OK;
                        if (!walk)
                                continue; /* nothing to read per item */
                        for (int64_t i = 0; i < count; i++) {
                                if (is_map) {
                                        if ((r = itd_cur_len(c, &n)))
                                                return r;
                                        c->p += n;
                                }
                                if ((r = skip_value(c, pl, item, depth + 1)))
                                        return r;
                        }
                }
        }
        default: /* K_NULL is zero-size */
                return ITD_REASON_OK;
        }
}

static char *slot_buf(itd_event_t *ev, itd_slot_t slot, size_t *cap) {
        switch (slot) {
        case ITD_SLOT_EVENT_ID:
                *cap = sizeof ev->event_id;
                return ev->event_id;
        case ITD_SLOT_USER_ID: *cap = sizeof ev->user_id; return ev->user_id;
        case ITD_SLOT_ITEM_ID: *cap = sizeof ev->item_id; return ev->item_id;
        case ITD_SLOT_CATEGORY:
                *cap = sizeof ev->category;
                return ev->category;
        case ITD_SLOT_QUERY: *cap = sizeof ev->query; return ev->query;
        case ITD_SLOT_SESSION_ID:
                *cap = sizeof ev->session_id;
                return ev->session_id;
        default: *cap = 0; return NULL;
        }
}

static int slot_required(itd_slot_t slot) {
        return slot == ITD_SLOT_USER_ID || slot == ITD_SLOT_TS ||
               slot == ITD_SLOT_TYPE;
}

/* Can a writer value of kind k be read into slot (Avro promotion rules)?
 * null reads as "absent"; for a required slot that is a per-message
 * reason, allowed only as a union branch (see plan_field). */
static int slot_accepts(itd_slot_t slot, kind_t k) {
        if (k == K_NULL)
                return 1;
        switch (slot) {
        case ITD_SLOT_TS: return k == K_INT;
        case ITD_SLOT_TYPE: return k == K_ENUM;
        case ITD_SLOT_PRICE:
                return k == K_INT || k == K_FLOAT || k == K_DOUBLE;
        case ITD_SLOT_NONE: return 1;
        default: return k == K_STRING;
        }
}

/* Reads one value of node ni into the event slot. */
static itd_reason_t read_slot(itd_cur_t *c, const itd_plan_t *pl,
                              uint32_t ni, itd_slot_t slot, itd_event_t *ev) {
        const node_t *nd = &pl->node[ni];
        const uint8_t *at;
        itd_reason_t r;
        size_t i;
        for (int depth = 0; nd->kind == K_UNION; depth++) {
                /* Avro forbids a union directly in a union; Avro C's
                 * parser does not, so nested ones are read all the same */
                if (depth > MAX_DEPTH)
                        return too_deep(c);
                if ((r = itd_cur_branch(c, nd->n, &i)))
                        return r;
                nd = &pl->node[pl->kid[nd->kid + i]];
        }
        switch (nd->kind) {
        case K_NULL:
                if (slot == ITD_SLOT_USER_ID)
                        return itd_cur_fail(c, ITD_REASON_MISSING_USER_ID,
                                            "null (required)");
                if (slot_required(slot))
                        return itd_cur_fail(c, ITD_REASON_MISSING_FIELD,
                                            "null (required)");
                if (slot == ITD_SLOT_PRICE) {
                        ev->price = NAN;
                } else {
                        size_t cap;
                        slot_buf(ev, slot, &cap)[0] = '\0';
                }
                return ITD_REASON_OK;
        case K_STRING: {
                size_t cap;
                char *dst = slot_buf(ev, slot, &cap);
                if (!dst)
                        break;
                return itd_cur_string(c, dst, cap);
        }
        case K_INT: {
                int64_t v;
                if (slot != ITD_SLOT_TS && slot != ITD_SLOT_PRICE)
                        break;
                if ((r = itd_cur_long(c, &v)))
                        return r;
                if (slot == ITD_SLOT_TS)
                        ev->ts_ms = v;
                else
                        ev->price = (double)v;
                return ITD_REASON_OK;
        }
        case K_FLOAT:
        case K_DOUBLE:
                if (slot != ITD_SLOT_PRICE)
                        break;
                at = c->p;
                if (nd->kind == K_FLOAT) {
                        float fl;
                        if ((r = itd_cur_float(c, &fl)))
                                return r;
                        ev->price = fl;
                } else if ((r = itd_cur_double(c, &ev->price))) {
                        return r;
                }
                /* Checked here: after decoding, NAN means "absent". */
                if (!isfinite(ev->price)) {
                        c->p = at;
                        return itd_cur_fail(c, ITD_REASON_BAD_PRICE,
                                            "price is not finite");
                }
                return ITD_REASON_OK;
        case K_ENUM:
                if (slot != ITD_SLOT_TYPE)
                        break;
                at = c->p;
                if ((r = itd_cur_enum(c, nd->n, &i)))
                        return r;
                if (pl->sym[nd->sym + i] < 0) {
                        c->p = at;
                        return itd_cur_fail(
                            c, ITD_REASON_UNKNOWN_EVENT_TYPE,
                            "unknown event type symbol \"%s\"",
                            avro_schema_enum_get(nd->sch, (int)i));
                }
                ev->type = (itd_event_type_t)pl->sym[nd->sym + i];
                return ITD_REASON_OK;
        default:
                break;
        }
        return itd_cur_fail(c, ITD_REASON_SCHEMA_INCOMPATIBLE,
                            "writer type %s cannot be read into this field",
                            avro_schema_type_name(nd->sch));
}

/* ------------------------------------------------------------------ */
/* Plans.                                                             */

static itd_slot_t slot_of(const char *name) {
        for (int s = 1; s < ITD_SLOT__COUNT; s++)
                if (strcmp(name, itd_slot_names[s]) == 0)
                        return (itd_slot_t)s;
        return ITD_SLOT_NONE;
}

/*
 * The reader's defaults, from the schema text itself: Avro C's parser
 * drops "default", so jansson reads them. has_def[slot] says whether a
 * field may be missing from a writer.
 */
static int reader_defaults(itd_event_t *def, int has_def[ITD_SLOT__COUNT],
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
                itd_slot_t s = slot_of(json_is_string(name)
                                           ? json_string_value(name)
                                           : "");
                if (s == ITD_SLOT_NONE || !v)
                        continue;
                has_def[s] = 1;
                size_t cap;
                char *dst = slot_buf(def, s, &cap);
                if (json_is_null(v))
                        continue;
                if (dst && json_is_string(v))
                        itd_strlcpy(dst, json_string_value(v), cap);
                else if (s == ITD_SLOT_TS && json_is_integer(v))
                        def->ts_ms = (int64_t)json_integer_value(v);
                else if (s == ITD_SLOT_PRICE && json_is_number(v))
                        def->price = json_number_value(v);
                else if (!(s == ITD_SLOT_TYPE && json_is_string(v) &&
                           itd_event_type_parse(json_string_value(v),
                                                &def->type) == ITD_OK)) {
                        snprintf(errstr, errstr_size,
                                 "built-in event schema: default of '%s' "
                                 "is not supported",
                                 itd_slot_names[s]);
                        goto done;
                }
        }
        rc = 0;
done:
        json_decref(root);
        return rc;
}

/* 1 if some value of node ni (a union: some branch, at any depth) can be
 * read into slot; for a required slot, some value other than null. */
static int node_accepts(const itd_plan_t *pl, uint32_t ni, itd_slot_t slot,
                        int depth) {
        const node_t *nd = &pl->node[ni];
        if (nd->kind == K_NULL)
                return !slot_required(slot);
        if (nd->kind != K_UNION)
                return slot_accepts(slot, (kind_t)nd->kind);
        if (depth > MAX_DEPTH)
                return 0;
        for (uint32_t b = 0; b < nd->n; b++)
                if (node_accepts(pl, pl->kid[nd->kid + b], slot, depth + 1))
                        return 1;
        return 0;
}

/* Checks that a writer field can be read into its slot. */
static int plan_field(const itd_plan_t *pl, const field_t *f, char *errstr,
                      size_t errstr_size) {
        const node_t *nd = &pl->node[f->node];
        if (f->slot == ITD_SLOT_NONE)
                return 0;
        if (nd->kind == K_NULL && slot_required(f->slot)) {
                /* Would fail every message; as a union branch, null is a
                 * per-message reason instead. */
                snprintf(errstr, errstr_size,
                         "writer field '%s' is always null, and the "
                         "reader's '%s' is required",
                         f->name, f->name);
                return -1;
        }
        if (!node_accepts(pl, f->node, f->slot, 0)) {
                snprintf(errstr, errstr_size,
                         "writer field '%s' of type %s cannot be read into "
                         "the reader's '%s'",
                         f->name, avro_schema_type_name(nd->sch), f->name);
                return -1;
        }
        return 0;
}

void itd_plan_destroy(itd_plan_t *plan) {
        if (!plan)
                return;
        free(plan->node);
        free(plan->kid);
        free(plan->sym);
        free(plan->f);
        if (plan->writer)
                avro_schema_decref(plan->writer);
        free(plan);
}

itd_plan_t *itd_plan_new(avro_schema_t writer, char *errstr,
                         size_t errstr_size) {
        int seen[ITD_SLOT__COUNT] = {0}, has_def[ITD_SLOT__COUNT] = {0};
        itd_plan_t *pl = itd_xcalloc(1, sizeof *pl);
        build_t b = {.plan = pl, .errstr = errstr,
                     .errstr_size = errstr_size};
        writer = deref(writer);
        if (!writer) {
                snprintf(errstr, errstr_size, "no writer schema");
                goto fail;
        }
        pl->writer = avro_schema_incref(writer);
        if (!is_avro_record(writer)) {
                snprintf(errstr, errstr_size,
                         "writer schema is a %s, not a record",
                         avro_schema_type_name(writer));
                goto fail;
        }
        if (reader_defaults(&pl->defaults, has_def, errstr, errstr_size) ||
            compile(&b, writer, 0, &pl->top))
                goto fail;
        /* The top record's fields, all of them, before mark_zero_size
         * drops the zero-size ones from its kid list. */
        const node_t *top = &pl->node[pl->top];
        pl->n_field = top->n;
        pl->f = itd_xcalloc(pl->n_field ? pl->n_field : 1, sizeof *pl->f);
        for (size_t i = 0; i < pl->n_field; i++) {
                field_t *f = &pl->f[i];
                f->name = avro_schema_record_field_name(writer, (int)i);
                f->node = pl->kid[top->kid + i];
                f->slot = slot_of(f->name ? f->name : "");
                seen[f->slot] = 1;
                if (plan_field(pl, f, errstr, errstr_size))
                        goto fail;
        }
        mark_zero_size(pl);
        for (int s = 1; s < ITD_SLOT__COUNT; s++) {
                if (!seen[s] && !has_def[s]) {
                        snprintf(errstr, errstr_size,
                                 "writer schema lacks field '%s', which "
                                 "has no default in the reader",
                                 itd_slot_names[s]);
                        goto fail;
                }
        }
        free(b.memo);
        return pl;
fail:
        free(b.memo);
        itd_plan_destroy(pl);
        return NULL;
}

/* The record at c->p into ev; stops at the first fault. */
static itd_reason_t read_record(itd_cur_t *c, const itd_plan_t *pl,
                                itd_event_t *ev) {
        itd_reason_t r;
        *ev = pl->defaults;
        for (size_t i = 0; i < pl->n_field; i++) {
                const field_t *f = &pl->f[i];
                c->field = f->name;
                if (f->slot == ITD_SLOT_NONE)
                        r = skip_value(c, pl, f->node, 1);
                else
                        r = read_slot(c, pl, f->node, f->slot, ev);
                if (r)
                        return r;
        }
        return ITD_REASON_OK;
}

static itd_reason_t check_user(itd_cur_t *c, const itd_event_t *ev) {
        if (ev->user_id[0])
                return ITD_REASON_OK;
        if (c->errstr && c->errstr_size)
                snprintf(c->errstr, c->errstr_size,
                         "field 'user_id': empty string (required)");
        return ITD_REASON_MISSING_USER_ID;
}

itd_reason_t itd_plan_decode(const itd_plan_t *plan, const uint8_t *buf,
                             size_t len, size_t off, size_t max_string_bytes,
                             itd_event_t *ev, char *detail,
                             size_t detail_size) {
        itd_cur_t c = {buf, buf + off, buf + len, "", max_string_bytes,
                       detail, detail_size};
        itd_reason_t r;
        if ((r = read_record(&c, plan, ev)) || (r = itd_cur_check_end(&c)))
                return r;
        return check_user(&c, ev);
}

itd_reason_t itd_plan_decode_next(const itd_plan_t *plan, const uint8_t *buf,
                                  size_t len, size_t *off,
                                  size_t max_string_bytes, itd_event_t *ev,
                                  char *detail, size_t detail_size) {
        itd_cur_t c = {buf, buf + *off, buf + len, "", max_string_bytes,
                       detail, detail_size};
        itd_reason_t r = read_record(&c, plan, ev);
        if (r == ITD_REASON_OK) {
                *off = (size_t)(c.p - buf);
                return check_user(&c, ev);
        }
        /* Refused: find where the record ends, so that the next one can
         * be read, by stepping over it as a whole (no detail: the first
         * fault is the one to report). */
        itd_cur_t s = {buf, buf + *off, buf + len, "", SIZE_MAX, NULL, 0};
        *off = skip_value(&s, plan, plan->top, 0) ? SIZE_MAX
                                                  : (size_t)(s.p - buf);
        return r;
}
