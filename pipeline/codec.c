/*
 * codec.c - Avro binary encoding of events, predictions and triggers, and
 * decoding with the built-in schemas.
 *
 * Encoding goes through Avro C's value API into a memory writer: one
 * reusable record value per schema lives in the codec, so steady-state
 * encoding allocates nothing (string buffers are reused once grown).
 *
 * Events decode through the walker of plan.c (for the codec: the built-in
 * schema as writer); predictions and triggers are read by the same cursor
 * (avro_cur.h) in our own schema's field order (tests, demo, inspect).
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

#include "avro_cur.h"
#include "codec_int.h"
#include "intentd/mem.h"


/* Fields of our prediction schema, in order (pred_fields below). */
#define PRED_FIELDS 15

struct itd_codec_s {
        avro_schema_t ev_schema;
        avro_schema_t pred_schema;
        avro_value_iface_t *ev_iface;
        avro_value_iface_t *pred_iface;
        avro_value_t ev_val;
        avro_value_t pred_val;
        avro_writer_t writer;
        itd_plan_t *ev_plan;     /* for our own event schema as writer */
        int ev_idx[ITD_SLOT__COUNT]; /* field index in our event schema */
        int pred_idx[PRED_FIELDS]; /* field index in our prediction
                                    * schema */
        avro_schema_t trg_schema;
        avro_value_iface_t *trg_iface;
        avro_value_t trg_val;
};

/* ------------------------------------------------------------------ */
/* Set-up.                                                            */

static int field_index(avro_schema_t rec, const char *name) {
        return avro_schema_record_field_get_index(rec, name);
}

static const char *const pred_fields[PRED_FIELDS] = {
    "prediction_id", "user_id",      "event_ts",
    "predicted_at",  "purchase_probability", "next_action",
    "next_action_probabilities", "model_version", "top_categories",
    "explanation", "event_id", "session_id", "event_type", "model_id",
    "risk_score"};

#define TRG_FIELDS 13
static const char *const trg_fields[TRG_FIELDS] = {
    "prediction_id", "user_id", "score", "threshold", "direction",
    "event_ts", "fired_at", "rule", "rule_parameter", "expires_at",
    "next_action", "next_action_probability", "top_categories"};

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
        for (int s = 1; s < ITD_SLOT__COUNT; s++) {
                codec->ev_idx[s] =
                    field_index(codec->ev_schema, itd_slot_names[s]);
                if (codec->ev_idx[s] < 0) {
                        snprintf(errstr, errstr_size,
                                 "built-in event schema lacks field '%s'",
                                 itd_slot_names[s]);
                        goto fail;
                }
        }
        for (int i = 0; i < PRED_FIELDS; i++) {
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
        itd_reason_t r = ITD_REASON_OK;
        uint32_t id = 0;
        if (len == 0) {
                snprintf(errstr, errstr_size, "avro %s decode: empty message",
                         what);
                return ITD_ERR_DECODE;
        }
        switch (itd_wire_classify(buf, len, framing, &id, why, sizeof why)) {
        case ITD_WIRE_TOO_SHORT:
        case ITD_WIRE_BAD_MAGIC:
                snprintf(errstr, errstr_size, "avro %s decode: %s", what, why);
                return ITD_ERR_DECODE;
        case ITD_WIRE_CONFLUENT:
                r = fn(codec, buf, len, ITD_CONFLUENT_HDR, out, why,
                       sizeof why);
                break;
        case ITD_WIRE_BARE:
                r = fn(codec, buf, len, 0, out, why, sizeof why);
                break;
        case ITD_WIRE_EITHER:
                /* Confluent first, then bare (itd_wire_t). */
                if (!fn(codec, buf, len, ITD_CONFLUENT_HDR, out, why,
                        sizeof why))
                        return ITD_OK;
                if (!fn(codec, buf, len, 0, out, why_bare, sizeof why_bare))
                        return ITD_OK;
                snprintf(errstr, errstr_size,
                         "avro %s decode: as Confluent (schema id %" PRIu32
                         "): %s; as bare Avro: %s",
                         what, id, why, why_bare);
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
static itd_reason_t rd_pairs(itd_cur_t *c, size_t max, char *names,
                             size_t name_cap, float *scores, size_t *n) {
        itd_reason_t r;
        *n = 0;
        for (;;) {
                int64_t count;
                if ((r = itd_cur_block(c, 1, &count)))
                        return r;
                if (count == 0)
                        return ITD_REASON_OK;
                if ((uint64_t)count > max - *n)
                        return itd_cur_fail(c, ITD_REASON_MALFORMED_AVRO,
                                        "more than %zu items", max);
                for (int64_t i = 0; i < count; i++, (*n)++) {
                        if ((r = itd_cur_string(c, names + *n * name_cap,
                                           name_cap)) ||
                            (r = itd_cur_float(c, &scores[*n])))
                                return r;
                }
        }
}

/* ["null", "string"]: "" for null. */
static itd_reason_t rd_opt_string(itd_cur_t *c, const char *field, char *dst,
                                  size_t cap) {
        size_t b;
        itd_reason_t r;
        c->field = field;
        dst[0] = '\0';
        if ((r = itd_cur_branch(c, 2, &b)))
                return r;
        return b == 1 ? itd_cur_string(c, dst, cap) : ITD_REASON_OK;
}

static itd_reason_t prediction_payload(itd_codec_t *codec,
                                       const uint8_t *buf, size_t len,
                                       size_t off, void *out, char *errstr,
                                       size_t errstr_size) {
        itd_prediction_t *p = out;
        itd_cur_t c = {buf, buf + off, buf + len, "", SIZE_MAX, errstr,
                   errstr_size};
        itd_reason_t r;
        size_t next, b;
        (void)codec;
        memset(p, 0, sizeof *p);
#define FIELD(i) (c.field = pred_fields[i])
        if ((FIELD(0), r = itd_cur_string(&c, p->prediction_id,
                                     sizeof p->prediction_id)) ||
            (FIELD(1), r = itd_cur_string(&c, p->user_id, sizeof p->user_id)) ||
            (FIELD(2), r = itd_cur_long(&c, &p->event_ts_ms)) ||
            (FIELD(3), r = itd_cur_long(&c, &p->predicted_at_ms)) ||
            (FIELD(4), r = itd_cur_float(&c, &p->purchase_probability)) ||
            (FIELD(5), r = itd_cur_enum(&c, ITD_NEXT__COUNT, &next)))
                return r;
        p->next_action = (itd_next_t)next;
        FIELD(6);
        for (int i = 0; i < ITD_NEXT__COUNT; i++)
                if ((r = itd_cur_float(&c, &p->next_probs[i])))
                        return r;
        if ((FIELD(7), r = itd_cur_long(&c, &p->model_version)) ||
            (FIELD(8), r = rd_pairs(&c, ITD_TOPCAT_MAX,
                                    &p->top_categories[0][0], ITD_ID_MAX,
                                    p->top_category_scores,
                                    &p->n_top_categories)) ||
            (FIELD(9), r = itd_cur_branch(&c, 2, &b)))
                return r;
        if (b == 1 &&
            (r = rd_pairs(&c, ITD_EXPLAIN_MAX, &p->explanation_feature[0][0],
                          sizeof p->explanation_feature[0],
                          p->explanation_contribution, &p->n_explanation)))
                return r;
        if ((r = rd_opt_string(&c, pred_fields[10], p->event_id,
                               sizeof p->event_id)) ||
            (r = rd_opt_string(&c, pred_fields[11], p->session_id,
                               sizeof p->session_id)) ||
            (FIELD(12), r = itd_cur_branch(&c, 2, &b)))
                return r;
        p->event_type = -1;
        size_t type;
        if (b == 1) {
                if ((r = itd_cur_enum(&c, ITD_EV__COUNT, &type)))
                        return r;
                p->event_type = (int)type;
        }
        if ((FIELD(13), r = itd_cur_string(&c, p->model_id, sizeof p->model_id)) ||
            (FIELD(14), r = itd_cur_double(&c, &p->risk_score)))
                return r;
#undef FIELD
        return itd_cur_check_end(&c);
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
        itd_cur_t c = {buf, buf + off, buf + len, "", SIZE_MAX, errstr,
                   errstr_size};
        itd_reason_t r;
        size_t dir;
        (void)codec;
        memset(t, 0, sizeof *t);
#define FIELD(i) (c.field = trg_fields[i])
        if ((FIELD(0), r = itd_cur_string(&c, t->prediction_id,
                                     sizeof t->prediction_id)) ||
            (FIELD(1), r = itd_cur_string(&c, t->user_id, sizeof t->user_id)) ||
            (FIELD(2), r = itd_cur_float(&c, &t->score)) ||
            (FIELD(3), r = itd_cur_float(&c, &t->threshold)) ||
            (FIELD(4), r = itd_cur_enum(&c, ITD_TRIGGER__COUNT, &dir)) ||
            (FIELD(5), r = itd_cur_long(&c, &t->event_ts_ms)) ||
            (FIELD(6), r = itd_cur_long(&c, &t->fired_at_ms)))
                return r;
        t->direction = (itd_trigger_direction_t)dir;
        size_t rule, next = 0, b;
        if ((FIELD(7), r = itd_cur_enum(&c, ITD_TRIGGER_RULE__COUNT, &rule)) ||
            (FIELD(8), r = itd_cur_float(&c, &t->parameter)) ||
            (FIELD(9), r = itd_cur_branch(&c, 2, &b)))
                return r;
        t->rule = (itd_trigger_rule_t)rule;
        t->expires_at_ms = INT64_MIN;
        if (b == 1 && (r = itd_cur_long(&c, &t->expires_at_ms)))
                return r;
        if ((FIELD(10), r = itd_cur_branch(&c, 2, &b)))
                return r;
        if (b == 1 && (r = itd_cur_enum(&c, ITD_NEXT__COUNT, &next)))
                return r;
        t->next_action = (itd_next_t)next;
        if ((FIELD(11), r = itd_cur_float(&c, &t->next_action_probability)) ||
            (FIELD(12), r = rd_pairs(&c, ITD_TOPCAT_MAX,
                                     &t->top_categories[0][0], ITD_ID_MAX,
                                     t->top_category_scores,
                                     &t->n_top_categories)))
                return r;
#undef FIELD
        return itd_cur_check_end(&c);
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
                if (cap < ITD_CONFLUENT_HDR)
                        return ITD_ERR_FULL;
                buf[0] = 0;
                buf[1] = (uint8_t)((uint32_t)schema_id >> 24);
                buf[2] = (uint8_t)((uint32_t)schema_id >> 16);
                buf[3] = (uint8_t)((uint32_t)schema_id >> 8);
                buf[4] = (uint8_t)schema_id;
                hdr = ITD_CONFLUENT_HDR;
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
        if (set_opt_string(rec, ix[ITD_SLOT_EVENT_ID], ev->event_id) ||
            set_string(rec, ix[ITD_SLOT_USER_ID], ev->user_id) ||
            set_long(rec, ix[ITD_SLOT_TS], ev->ts_ms) ||
            avro_value_get_by_index(rec, (size_t)ix[ITD_SLOT_TYPE], &f, NULL) ||
            avro_value_set_enum(&f, (int)ev->type) ||
            set_opt_string(rec, ix[ITD_SLOT_ITEM_ID], ev->item_id) ||
            set_opt_string(rec, ix[ITD_SLOT_CATEGORY], ev->category) ||
            set_opt_string(rec, ix[ITD_SLOT_QUERY], ev->query) ||
            set_opt_string(rec, ix[ITD_SLOT_SESSION_ID], ev->session_id) ||
            avro_value_get_by_index(rec, (size_t)ix[ITD_SLOT_PRICE], &f, NULL))
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
        if (set_opt_string(rec, 10, p->event_id) ||
            set_opt_string(rec, 11, p->session_id) ||
            avro_value_get_by_index(rec, 12, &f, NULL))
                return ITD_ERR_ENCODE;
        if (p->event_type >= 0 && p->event_type < ITD_EV__COUNT) {
                if (avro_value_set_branch(&f, 1, &b) ||
                    avro_value_set_enum(&b, p->event_type))
                        return ITD_ERR_ENCODE;
        } else if (avro_value_set_branch(&f, 0, &b) ||
                   avro_value_set_null(&b)) {
                return ITD_ERR_ENCODE;
        }
        if (set_string(rec, 13, p->model_id) ||
            avro_value_get_by_index(rec, 14, &f, NULL) ||
            avro_value_set_double(&f, p->risk_score))
                return ITD_ERR_ENCODE;
        return write_value(codec, rec, schema_id, buf, cap, len);
}

itd_err_t itd_codec_encode_trigger(itd_codec_t *codec,
                                   const itd_trigger_rec_t *rec,
                                   int32_t schema_id, void *buf, size_t cap,
                                   size_t *len) {
        avro_value_t *v = &codec->trg_val;
        avro_value_t f, b;
        size_t ntop = rec->n_top_categories;
        if ((int)rec->direction < 0 || rec->direction >= ITD_TRIGGER__COUNT ||
            (int)rec->rule < 0 || rec->rule >= ITD_TRIGGER_RULE__COUNT ||
            ntop > ITD_TOPCAT_MAX)
                return ITD_ERR_ENCODE;
        if (set_string(v, 0, rec->prediction_id) ||
            set_string(v, 1, rec->user_id) ||
            set_float(v, 2, rec->score) ||
            set_float(v, 3, rec->threshold) ||
            avro_value_get_by_index(v, 4, &f, NULL) ||
            avro_value_set_enum(&f, (int)rec->direction) ||
            set_long(v, 5, rec->event_ts_ms) ||
            set_long(v, 6, rec->fired_at_ms) ||
            avro_value_get_by_index(v, 7, &f, NULL) ||
            avro_value_set_enum(&f, (int)rec->rule) ||
            set_float(v, 8, rec->parameter) ||
            avro_value_get_by_index(v, 9, &f, NULL))
                return ITD_ERR_ENCODE;
        if (rec->expires_at_ms != INT64_MIN) {
                if (avro_value_set_branch(&f, 1, &b) ||
                    avro_value_set_long(&b, rec->expires_at_ms))
                        return ITD_ERR_ENCODE;
        } else if (avro_value_set_branch(&f, 0, &b) ||
                   avro_value_set_null(&b)) {
                return ITD_ERR_ENCODE;
        }
        if (avro_value_get_by_index(v, 10, &f, NULL))
                return ITD_ERR_ENCODE;
        if ((int)rec->next_action >= 0 &&
            rec->next_action < ITD_NEXT__COUNT) {
                if (avro_value_set_branch(&f, 1, &b) ||
                    avro_value_set_enum(&b, (int)rec->next_action))
                        return ITD_ERR_ENCODE;
        } else if (avro_value_set_branch(&f, 0, &b) ||
                   avro_value_set_null(&b)) {
                return ITD_ERR_ENCODE;
        }
        if (set_float(v, 11, rec->next_action_probability) ||
            avro_value_get_by_index(v, 12, &f, NULL) ||
            set_pairs(&f, ntop, &rec->top_categories[0][0], ITD_ID_MAX,
                      rec->top_category_scores))
                return ITD_ERR_ENCODE;
        return write_value(codec, v, schema_id, buf, cap, len);
}
