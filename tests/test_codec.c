/*
 * test_codec.c - Avro events and predictions: round trips in both framings,
 * bytes built by hand (so the decoder is checked against the Avro spec, not
 * only against Avro C's encoder), checked-in payloads, and every kind of
 * malformed message the decoder must name.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codec_int.h"
#include "conf_parts.h"
#include "intentd/codec.h"
#include "intentd/conf.h"
#include "intentd/input.h"
#include "testutil.h"

static itd_codec_t *codec;

static void setup(void) {
        char err[256];
        codec = itd_codec_new(err, sizeof err);
        cr_assert_not_null(codec, "%s", err);
}

static void teardown(void) {
        itd_codec_destroy(codec);
        codec = NULL;
}

TestSuite(codec, .init = setup, .fini = teardown);

static void full_event(itd_event_t *ev) {
        itd_event_clear(ev);
        ev->ts_ms = 1511658000123;
        ev->type = ITD_EV_PURCHASE;
        ev->price = 249.5;
        strcpy(ev->user_id, "u42");
        strcpy(ev->event_id, "e-1");
        strcpy(ev->item_id, "i7");
        strcpy(ev->category, "c3");
        strcpy(ev->session_id, "s-9");
        strcpy(ev->query, "red shoes");
}

/* ---- hand-built Avro bytes: tu_bytes_t, tu_put_* (testutil.h) ---- */

/* A minimal valid bare event: only the required fields. */
static void minimal_bytes(tu_bytes_t *o, const char *user,
                          int64_t type_index) {
        o->n = 0;
        tu_put_long(o, 0);          /* event_id: null */
        tu_put_str(o, user);        /* user_id */
        tu_put_long(o, 1000);       /* ts */
        tu_put_long(o, type_index); /* type */
        for (int i = 0; i < 5; i++)
                tu_put_long(o, 0); /* item_id .. session_id: null */
}

static itd_err_t decode(const tu_bytes_t *o, itd_framing_t fr,
                        itd_event_t *ev, char *err, size_t cap) {
        err[0] = '\0';
        return itd_codec_decode_event(codec, o->b, o->n, fr, ev, err, cap);
}

Test(codec, event_round_trips_bare_and_confluent) {
        itd_event_t ev, back;
        unsigned char buf[512];
        char err[256];
        size_t len;
        full_event(&ev);
        cr_assert_eq(itd_codec_encode_event(codec, &ev, -1, buf, sizeof buf,
                                            &len),
                     ITD_OK);
        cr_assert_eq(itd_codec_decode_event(codec, buf, len, ITD_FRAMING_BARE,
                                            &back, err, sizeof err),
                     ITD_OK, "%s", err);
        tu_assert_same_event(&ev, &back);
        cr_assert_eq(itd_codec_decode_event(codec, buf, len, ITD_FRAMING_AUTO,
                                            &back, err, sizeof err),
                     ITD_OK, "%s", err);
        tu_assert_same_event(&ev, &back);

        size_t len_c;
        cr_assert_eq(itd_codec_encode_event(codec, &ev, 258, buf, sizeof buf,
                                            &len_c),
                     ITD_OK);
        cr_assert_eq(len_c, len + 5);
        const unsigned char hdr[5] = {0, 0, 0, 1, 2};
        cr_assert_arr_eq(buf, hdr, 5);
        for (int fr = ITD_FRAMING_AUTO; fr <= ITD_FRAMING_CONFLUENT; fr++) {
                cr_assert_eq(itd_codec_decode_event(codec, buf, len_c, fr,
                                                    &back, err, sizeof err),
                             ITD_OK, "framing %d: %s", fr, err);
                tu_assert_same_event(&ev, &back);
        }
}

Test(codec, encoder_writes_the_bytes_the_avro_spec_prescribes) {
        itd_event_t ev;
        tu_bytes_t want;
        unsigned char buf[256];
        size_t len;
        itd_event_clear(&ev);
        strcpy(ev.user_id, "u1");
        ev.ts_ms = 1000;
        ev.type = ITD_EV_ADD_TO_CART;
        ev.price = 2.5;
        minimal_bytes(&want, "u1", 2);
        /* price is the 7th field: replace its null by branch 1 + double */
        want.n -= 3;
        tu_put_long(&want, 1);
        tu_put_double(&want, 2.5);
        tu_put_long(&want, 0);
        tu_put_long(&want, 0);
        cr_assert_eq(itd_codec_encode_event(codec, &ev, -1, buf, sizeof buf,
                                            &len),
                     ITD_OK);
        cr_assert_eq(len, want.n);
        cr_assert_arr_eq(buf, want.b, len);
}

Test(codec, auto_framing_decodes_a_bare_event_whose_first_byte_is_zero) {
        /* event_id null encodes as byte 0, like a Confluent magic byte. */
        tu_bytes_t o;
        itd_event_t ev;
        char err[256];
        minimal_bytes(&o, "user-with-a-long-enough-id", 4);
        cr_assert_eq(o.b[0], 0);
        cr_assert_eq(decode(&o, ITD_FRAMING_AUTO, &ev, err, sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_str_eq(ev.user_id, "user-with-a-long-enough-id");
        cr_assert_eq(ev.type, ITD_EV_PURCHASE);
        cr_assert_str_empty(ev.event_id);
        cr_assert(isnan(ev.price));
}

/* The one Confluent-or-bare rule (itd_wire_classify) that the event
 * decoders (codec.c, input.c) and the control decoder share. */
typedef struct {
        const char *name;
        uint8_t bytes[8];
        size_t len;
        itd_framing_t framing;
        itd_wire_t want;
        uint32_t want_id;   /* for CONFLUENT and EITHER */
        const char *detail; /* for TOO_SHORT and BAD_MAGIC */
} wire_case_t;

static const wire_case_t wire_cases[] = {
    {"bare framing, byte 0 is 0", {0, 0, 0, 0, 7, 2}, 6, ITD_FRAMING_BARE,
     ITD_WIRE_BARE, 0, NULL},
    {"bare framing, empty", {0}, 0, ITD_FRAMING_BARE, ITD_WIRE_BARE, 0,
     NULL},
    {"confluent", {0, 0x01, 0x02, 0x03, 0x04, 2}, 6, ITD_FRAMING_CONFLUENT,
     ITD_WIRE_CONFLUENT, 0x01020304u, NULL},
    {"confluent, header only", {0, 0, 0, 0, 9}, 5, ITD_FRAMING_CONFLUENT,
     ITD_WIRE_CONFLUENT, 9, NULL},
    {"confluent, too short", {0, 0, 0, 1}, 4, ITD_FRAMING_CONFLUENT,
     ITD_WIRE_TOO_SHORT, 0,
     "4 bytes, too short for the 5-byte Confluent header"},
    {"confluent, empty", {0}, 0, ITD_FRAMING_CONFLUENT, ITD_WIRE_TOO_SHORT, 0,
     "0 bytes, too short for the 5-byte Confluent header"},
    {"confluent, wrong magic", {0x2a, 0, 0, 0, 1, 2}, 6,
     ITD_FRAMING_CONFLUENT, ITD_WIRE_BAD_MAGIC, 0,
     "Confluent magic byte is 0x2a, expected 0x00"},
    {"auto, byte 0 is 0", {0, 0xff, 0, 0, 1, 2}, 6, ITD_FRAMING_AUTO,
     ITD_WIRE_EITHER, 0xff000001u, NULL},
    {"auto, byte 0 is not 0", {2, 0, 0, 0, 1, 2}, 6, ITD_FRAMING_AUTO,
     ITD_WIRE_BARE, 0, NULL},
    {"auto, too short for a header", {0, 0, 0, 1}, 4, ITD_FRAMING_AUTO,
     ITD_WIRE_BARE, 0, NULL},
};

Test(codec, wire_classify_tells_bare_confluent_too_short_and_bad_magic) {
        for (size_t i = 0; i < sizeof wire_cases / sizeof wire_cases[0];
             i++) {
                const wire_case_t *c = &wire_cases[i];
                char detail[128] = "untouched";
                uint32_t id = 0xdeadbeef;
                itd_wire_t got = itd_wire_classify(c->bytes, c->len,
                                                   c->framing, &id, detail,
                                                   sizeof detail);
                cr_assert_eq(got, c->want, "%s: %d, want %d", c->name,
                             (int)got, (int)c->want);
                if (got == ITD_WIRE_CONFLUENT || got == ITD_WIRE_EITHER)
                        cr_assert_eq(id, c->want_id, "%s: id %08x", c->name,
                                     id);
                else
                        cr_assert_eq(id, 0xdeadbeef, "%s: id set", c->name);
                cr_assert_str_eq(detail, c->detail ? c->detail : "untouched",
                                 "%s", c->name);
                /* NULL id and detail are allowed */
                cr_assert_eq(itd_wire_classify(c->bytes, c->len, c->framing,
                                               NULL, NULL, 0),
                             c->want, "%s (NULL out)", c->name);
        }
}

Test(codec, encode_reports_full_for_every_too_small_buffer) {
        itd_event_t ev;
        unsigned char buf[512];
        size_t len, ignored;
        full_event(&ev);
        cr_assert_eq(itd_codec_encode_event(codec, &ev, 7, buf, sizeof buf,
                                            &len),
                     ITD_OK);
        for (size_t cap = 0; cap < len; cap++)
                cr_expect_eq(itd_codec_encode_event(codec, &ev, 7, buf, cap,
                                                    &ignored),
                             ITD_ERR_FULL, "cap %zu", cap);
        cr_assert_eq(itd_codec_encode_event(codec, &ev, 7, buf, len, &ignored),
                     ITD_OK);
}

Test(codec, every_truncation_of_a_valid_event_is_a_decode_error) {
        itd_event_t ev, back;
        unsigned char buf[512];
        char err[256];
        size_t len;
        full_event(&ev);
        cr_assert_eq(itd_codec_encode_event(codec, &ev, -1, buf, sizeof buf,
                                            &len),
                     ITD_OK);
        for (size_t n = 0; n < len; n++) {
                err[0] = '\0';
                cr_expect_eq(itd_codec_decode_event(codec, buf, n,
                                                    ITD_FRAMING_BARE, &back,
                                                    err, sizeof err),
                             ITD_ERR_DECODE, "prefix %zu accepted", n);
                cr_expect(strstr(err, n ? "truncated" : "empty"),
                          "prefix %zu: \"%s\"", n, err);
        }
}

Test(codec, malformed_events_get_precise_messages) {
        char long_id[100];
        memset(long_id, 'x', sizeof long_id - 1);
        long_id[sizeof long_id - 1] = '\0';
        struct {
                const char *what;
                tu_bytes_t bytes;
                itd_framing_t framing;
                const char *want1, *want2;
        } c[12];
        size_t n = 0;

        c[n].what = "bad enum";
        minimal_bytes(&c[n].bytes, "u1", 9);
        c[n].framing = ITD_FRAMING_BARE;
        c[n].want1 = "field 'type' at byte 6";
        c[n++].want2 = "enum index 9 outside 0..5";

        c[n].what = "trailing bytes";
        minimal_bytes(&c[n].bytes, "u1", 0);
        memcpy(c[n].bytes.b + c[n].bytes.n, "xyz", 3);
        c[n].bytes.n += 3;
        c[n].framing = ITD_FRAMING_BARE;
        c[n].want1 = "3 trailing bytes";
        c[n++].want2 = "ends at byte 12 of 15";

        c[n].what = "negative string length";
        c[n].bytes.n = 0;
        tu_put_long(&c[n].bytes, 0);
        tu_put_long(&c[n].bytes, -4);
        c[n].framing = ITD_FRAMING_BARE;
        c[n].want1 = "field 'user_id'";
        c[n++].want2 = "negative string length -4";

        c[n].what = "string too long for the event";
        minimal_bytes(&c[n].bytes, long_id, 0);
        c[n].framing = ITD_FRAMING_BARE;
        c[n].want1 = "field 'user_id'";
        c[n++].want2 = "string of 99 bytes exceeds the limit of 63";

        c[n].what = "bad union branch";
        minimal_bytes(&c[n].bytes, "u1", 0);
        c[n].bytes.b[0] = 0x04; /* branch 2 of a 2-branch union */
        c[n].framing = ITD_FRAMING_BARE;
        c[n].want1 = "field 'event_id' at byte 0";
        c[n++].want2 = "union branch 2 outside 0..1";

        c[n].what = "empty user id";
        minimal_bytes(&c[n].bytes, "", 0);
        c[n].framing = ITD_FRAMING_BARE;
        c[n].want1 = "'user_id'";
        c[n++].want2 = "empty";

        c[n].what = "empty message";
        c[n].bytes.n = 0;
        c[n].framing = ITD_FRAMING_AUTO;
        c[n].want1 = "avro event decode";
        c[n++].want2 = "empty message";

        c[n].what = "wrong magic";
        minimal_bytes(&c[n].bytes, "u1", 0);
        c[n].bytes.b[0] = 5;
        c[n].framing = ITD_FRAMING_CONFLUENT;
        c[n].want1 = "magic byte is 0x05";
        c[n++].want2 = "expected 0x00";

        c[n].what = "too short for the Confluent header";
        c[n].bytes.n = 3;
        memset(c[n].bytes.b, 0, 3);
        c[n].framing = ITD_FRAMING_CONFLUENT;
        c[n].want1 = "3 bytes";
        c[n++].want2 = "5-byte Confluent header";

        c[n].what = "auto: neither framing decodes";
        minimal_bytes(&c[n].bytes, "u1", 9);
        c[n].framing = ITD_FRAMING_AUTO;
        c[n].want1 = "as Confluent (schema id";
        c[n++].want2 = "as bare Avro: field 'type'";

        c[n].what = "non-finite price";
        minimal_bytes(&c[n].bytes, "u1", 0);
        c[n].bytes.n -= 3;
        tu_put_long(&c[n].bytes, 1);
        tu_put_double(&c[n].bytes, INFINITY);
        tu_put_long(&c[n].bytes, 0);
        tu_put_long(&c[n].bytes, 0);
        c[n].framing = ITD_FRAMING_BARE;
        c[n].want1 = "field 'price'";
        c[n++].want2 = "not finite";

        c[n].what = "overlong varint";
        c[n].bytes.n = 0;
        tu_put_long(&c[n].bytes, 0);
        tu_put_str(&c[n].bytes, "u1");
        memset(c[n].bytes.b + c[n].bytes.n, 0xff, 11);
        c[n].bytes.n += 11;
        c[n].framing = ITD_FRAMING_BARE;
        c[n].want1 = "field 'ts'";
        c[n++].want2 = "varint longer than 10 bytes";

        for (size_t i = 0; i < n; i++) {
                itd_event_t ev;
                char err[512];
                cr_expect_eq(decode(&c[i].bytes, c[i].framing, &ev, err,
                                    sizeof err),
                             ITD_ERR_DECODE, "%s: accepted", c[i].what);
                cr_expect(strstr(err, c[i].want1) && strstr(err, c[i].want2),
                          "%s: \"%s\" lacks \"%s\" / \"%s\"", c[i].what, err,
                          c[i].want1, c[i].want2);
        }
}

static void full_prediction(itd_prediction_t *p, size_t ntop, size_t nexp) {
        memset(p, 0, sizeof *p);
        itd_prediction_make_id(p, "events", 3, 81234);
        strcpy(p->user_id, "u42");
        p->event_ts_ms = 1511658000123;
        p->predicted_at_ms = 1700000000456;
        p->purchase_probability = 0.125f;
        p->next_action = ITD_NEXT_ADD_TO_CART;
        for (int i = 0; i < ITD_NEXT__COUNT; i++)
                p->next_probs[i] = 0.1f * (float)(i + 1);
        p->model_version = 12345678901LL;
        p->n_top_categories = ntop;
        for (size_t i = 0; i < ntop; i++) {
                snprintf(p->top_categories[i], ITD_ID_MAX, "c%zu", i * 7);
                p->top_category_scores[i] = 1.0f / (float)(i + 1);
        }
        p->n_explanation = nexp;
        for (size_t i = 0; i < nexp; i++) {
                snprintf(p->explanation_feature[i], 32, "feature_%zu", i);
                p->explanation_contribution[i] = -0.25f * (float)i;
        }
        p->risk_score = 0.8125;
}

static void assert_same_prediction(const itd_prediction_t *a,
                                   const itd_prediction_t *b) {
        cr_assert_str_eq(a->prediction_id, b->prediction_id);
        cr_assert_str_eq(a->user_id, b->user_id);
        cr_assert_eq(a->event_ts_ms, b->event_ts_ms);
        cr_assert_eq(a->predicted_at_ms, b->predicted_at_ms);
        /* floats travel as their 4 bytes: exact equality holds */
        cr_assert_eq(a->purchase_probability, b->purchase_probability);
        cr_assert_eq(a->next_action, b->next_action);
        for (int i = 0; i < ITD_NEXT__COUNT; i++)
                cr_assert_eq(a->next_probs[i], b->next_probs[i]);
        cr_assert_eq(a->model_version, b->model_version);
        cr_assert_eq(a->n_top_categories, b->n_top_categories);
        for (size_t i = 0; i < a->n_top_categories; i++) {
                cr_assert_str_eq(a->top_categories[i], b->top_categories[i]);
                cr_assert_eq(a->top_category_scores[i],
                             b->top_category_scores[i]);
        }
        cr_assert_eq(a->n_explanation, b->n_explanation);
        for (size_t i = 0; i < a->n_explanation; i++) {
                cr_assert_str_eq(a->explanation_feature[i],
                                 b->explanation_feature[i]);
                cr_assert_eq(a->explanation_contribution[i],
                             b->explanation_contribution[i]);
        }
        cr_assert_eq(a->risk_score, b->risk_score);
}

Test(codec, prediction_round_trips_in_both_framings_and_shapes) {
        /* Shapes alternate so the reused Avro arrays grow and shrink. */
        const size_t shapes[][2] = {{3, 3}, {0, 0}, {1, 2}, {3, 0}, {2, 3}};
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                for (int32_t id = -1; id <= 9; id += 10) {
                        itd_prediction_t p, back;
                        unsigned char buf[1024];
                        char err[256];
                        size_t len;
                        full_prediction(&p, shapes[s][0], shapes[s][1]);
                        cr_assert_eq(itd_codec_encode_prediction(
                                         codec, &p, id, buf, sizeof buf, &len),
                                     ITD_OK);
                        itd_framing_t fr = id < 0 ? ITD_FRAMING_BARE
                                                  : ITD_FRAMING_CONFLUENT;
                        cr_assert_eq(itd_codec_decode_prediction(
                                         codec, buf, len, fr, &back, err,
                                         sizeof err),
                                     ITD_OK, "%s", err);
                        assert_same_prediction(&p, &back);
                        cr_assert_eq(itd_codec_decode_prediction(
                                         codec, buf, len - 1, fr, &back, err,
                                         sizeof err),
                                     ITD_ERR_DECODE);
                        cr_assert(strstr(err, "truncated"), "%s", err);
                }
        }
}

Test(codec, prediction_encode_reports_full_and_rejects_bad_shapes) {
        itd_prediction_t p;
        unsigned char buf[1024];
        size_t len, ignored;
        full_prediction(&p, 3, 3);
        cr_assert_eq(itd_codec_encode_prediction(codec, &p, -1, buf,
                                                 sizeof buf, &len),
                     ITD_OK);
        cr_assert_eq(itd_codec_encode_prediction(codec, &p, -1, buf, len - 1,
                                                 &ignored),
                     ITD_ERR_FULL);
        p.n_top_categories = ITD_TOPCAT_MAX + 1;
        cr_assert_eq(itd_codec_encode_prediction(codec, &p, -1, buf,
                                                 sizeof buf, &ignored),
                     ITD_ERR_ENCODE);
}

Test(codec, prediction_id_is_topic_partition_offset_and_stays_short) {
        itd_prediction_t p, q;
        itd_prediction_make_id(&p, "events", 3, 81234);
        cr_assert_str_eq(p.prediction_id, "events/3/81234");
        char topic[250];
        memset(topic, 't', sizeof topic - 1);
        topic[sizeof topic - 1] = '\0';
        itd_prediction_make_id(&p, topic, 31, 9000000000LL);
        cr_assert_lt(strlen(p.prediction_id), sizeof p.prediction_id);
        cr_assert(strstr(p.prediction_id, "/31/9000000000"), "%s",
                  p.prediction_id);
        topic[0] = 's';
        itd_prediction_make_id(&q, topic, 31, 9000000000LL);
        cr_assert_str_neq(p.prediction_id, q.prediction_id);
}

/* Payloads checked in under tests/fixtures/avro (see its README). */
static size_t load_fixture(const char *name, unsigned char *buf, size_t cap) {
        char rel[128], path[512];
        snprintf(rel, sizeof rel, "tests/fixtures/avro/%s", name);
        FILE *f = fopen(tu_src(rel, path, sizeof path), "rb");
        cr_assert_not_null(f, "cannot open %s", path);
        size_t n = fread(buf, 1, cap, f);
        fclose(f);
        return n;
}

Test(codec, checked_in_payloads_decode_or_fail_as_documented) {
        unsigned char buf[1024];
        itd_event_t ev;
        char err[512];
        size_t n = load_fixture("event_full_confluent.bin", buf, sizeof buf);
        cr_assert_eq(itd_codec_decode_event(codec, buf, n, ITD_FRAMING_AUTO,
                                            &ev, err, sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_str_eq(ev.user_id, "u42");
        cr_assert_str_eq(ev.query, "red shoes");
        cr_assert_eq(ev.type, ITD_EV_PURCHASE);
        cr_assert_eq(ev.price, 249.5);

        n = load_fixture("event_minimal_bare.bin", buf, sizeof buf);
        cr_assert_eq(itd_codec_decode_event(codec, buf, n, ITD_FRAMING_AUTO,
                                            &ev, err, sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_str_eq(ev.user_id, "u1");

        const struct {
                const char *file, *want;
        } bad[] = {
            {"bad_truncated.bin", "truncated"},
            {"bad_trailing.bin", "trailing bytes"},
            {"bad_enum.bin", "enum index 9"},
            {"bad_union.bin", "union branch 2"},
            {"bad_negative_length.bin", "negative string length"},
            {"bad_long_string.bin", "exceeds the limit of 63"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                n = load_fixture(bad[i].file, buf, sizeof buf);
                err[0] = '\0';
                cr_expect_eq(itd_codec_decode_event(codec, buf, n,
                                                    ITD_FRAMING_BARE, &ev,
                                                    err, sizeof err),
                             ITD_ERR_DECODE, "%s accepted", bad[i].file);
                cr_expect(strstr(err, bad[i].want), "%s: \"%s\"", bad[i].file,
                          err);
        }
}

/* ---- Writer schemas that Avro allows: decode, or refuse with a reason ---- */

#define NOW_MS 1700000000000LL
#define TS_OK (NOW_MS - 60000)

/* Two enums of one union: different symbols, different order. */
#define ENUM_A "{\"type\":\"enum\",\"name\":\"A\",\"symbols\":[\"VIEW\",\"PURCHASE\"]}"
#define ENUM_B                                                                 \
        "{\"type\":\"enum\",\"name\":\"B\",\"symbols\":[\"FAVORITE\",\"SHARE\"," \
        "\"VIEW\"]}"

/* A Confluent-framed decoder whose schema folder holds text as id 7. */
static itd_decoder_t *decoder_for(const char *text, char *dir, size_t cap) {
        char path[512], err[512];
        cr_assert_not_null(tu_tmpdir(dir, cap));
        snprintf(path, sizeof path, "%s/7.avsc", dir);
        cr_assert_eq(tu_write_file(path, text), 0);
        itd_input_conf_t ic;
        itd_conf_input_defaults(&ic);
        ic.format = ITD_INPUT_AVRO;
        ic.framing = ITD_FRAMING_CONFLUENT;
        ic.schemas_dir = dir;
        itd_decoder_t *dec = itd_decoder_new(&ic, NULL, err, sizeof err);
        cr_assert_not_null(dec, "%s", err);
        return dec;
}

static void drop_decoder(itd_decoder_t *dec, const char *dir) {
        char path[512];
        itd_decoder_destroy(dec);
        snprintf(path, sizeof path, "%s/7.avsc", dir);
        remove(path);
        remove(dir);
}

/* user "u1", ts, then the type's union branch (-1: none) and index. */
static itd_reason_t decode_type(itd_decoder_t *dec, int64_t branch,
                                int64_t index, itd_event_t *ev, char *detail,
                                size_t cap) {
        tu_bytes_t b;
        tu_put_header(&b, 7);
        tu_put_str(&b, "u1");
        tu_put_long(&b, TS_OK);
        if (branch >= 0)
                tu_put_long(&b, branch);
        if (index >= 0)
                tu_put_long(&b, index);
        detail[0] = '\0';
        return itd_decoder_decode(dec, b.b, b.n, NOW_MS, ev, detail, cap);
}

Test(codec, an_optional_enum_with_null_last_decodes_both_branches) {
        char dir[256], detail[256];
        itd_event_t ev;
        itd_decoder_t *dec =
            decoder_for(TU_EVENT_WITH_TYPE("[" TU_ENUM_ALL ", \"null\"]"), dir,
                        sizeof dir);
        cr_assert_eq(decode_type(dec, 0, 4, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        cr_expect_eq(ev.type, ITD_EV_PURCHASE);
        cr_expect_str_eq(ev.user_id, "u1");
        /* the null branch of a required field: a reason naming the field */
        cr_expect_eq(decode_type(dec, 1, -1, &ev, detail, sizeof detail),
                     ITD_REASON_MISSING_FIELD);
        cr_expect(strstr(detail, "'type'"), "%s", detail);
        cr_expect_eq(decode_type(dec, 2, -1, &ev, detail, sizeof detail),
                     ITD_REASON_BAD_UNION_BRANCH, "%s", detail);
        cr_expect_eq(decode_type(dec, 0, 6, &ev, detail, sizeof detail),
                     ITD_REASON_BAD_ENUM_INDEX, "%s", detail);
        drop_decoder(dec, dir);
}

Test(codec, a_union_of_two_enums_maps_each_branch_by_its_own_symbols) {
        char dir[256], detail[256];
        itd_event_t ev;
        itd_decoder_t *dec = decoder_for(
            TU_EVENT_WITH_TYPE("[" ENUM_A "," ENUM_B "]"), dir, sizeof dir);
        cr_assert_eq(decode_type(dec, 0, 1, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        cr_expect_eq(ev.type, ITD_EV_PURCHASE);
        cr_assert_eq(decode_type(dec, 0, 0, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        cr_expect_eq(ev.type, ITD_EV_VIEW);
        cr_assert_eq(decode_type(dec, 1, 0, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        cr_expect_eq(ev.type, ITD_EV_FAVORITE);
        cr_assert_eq(decode_type(dec, 1, 2, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        cr_expect_eq(ev.type, ITD_EV_VIEW);
        cr_expect_eq(decode_type(dec, 1, 1, &ev, detail, sizeof detail),
                     ITD_REASON_UNKNOWN_EVENT_TYPE);
        cr_expect(strstr(detail, "\"SHARE\""), "%s", detail);
        /* index 2 exists in B only */
        cr_expect_eq(decode_type(dec, 0, 2, &ev, detail, sizeof detail),
                     ITD_REASON_BAD_ENUM_INDEX, "%s", detail);
        drop_decoder(dec, dir);
}

/*
 * Legal writer schemas of every shape around the three required fields:
 * each either resolves (and then a message in it decodes or gets a
 * reason) or is refused with a message naming the field.
 */
Test(codec, every_legal_writer_shape_resolves_or_is_refused_by_name) {
        static const struct {
                const char *type_json; /* the writer's "type" field */
                int resolves;
                const char *names; /* in the refusal */
        } cases[] = {
            {"[\"null\"," TU_ENUM_ALL "]", 1, NULL},
            {"[" TU_ENUM_ALL ",\"null\"]", 1, NULL},
            {"[" ENUM_A "," ENUM_B ",\"null\"]", 1, NULL},
            {"[\"null\"," ENUM_B "," ENUM_A "]", 1, NULL},
            {"[" ENUM_A ",\"string\"]", 1, NULL},
            {"[\"string\"," ENUM_B ",\"long\"]", 1, NULL},
            {"\"string\"", 0, "'type'"},
            {"[\"string\",\"null\"]", 0, "'type'"},
            {"\"null\"", 0, "'type'"},
            {"{\"type\":\"array\",\"items\":" TU_ENUM_ALL "}", 0, "'type'"},
            {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":"
             "\"e\",\"type\":" TU_ENUM_ALL "}]}",
             0, "'type'"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char schema[2048], dir[256], detail[256];
                snprintf(schema, sizeof schema,
                         "{\"type\":\"record\",\"name\":\"Event\",\"fields\":["
                         "{\"name\":\"user_id\",\"type\":\"string\"},"
                         "{\"name\":\"ts\",\"type\":\"long\"},"
                         "{\"name\":\"type\",\"type\":%s}]}",
                         cases[i].type_json);
                itd_decoder_t *dec = decoder_for(schema, dir, sizeof dir);
                itd_event_t ev;
                for (int64_t br = 0; br < 4; br++) {
                        for (int64_t ix = 0; ix < 4; ix++) {
                                itd_reason_t r = decode_type(
                                    dec, br, ix, &ev, detail, sizeof detail);
                                if (!cases[i].resolves) {
                                        cr_expect_eq(
                                            r, ITD_REASON_SCHEMA_INCOMPATIBLE,
                                            "case %zu resolved", i);
                                        cr_expect(strstr(detail,
                                                         cases[i].names),
                                                  "case %zu: %s", i, detail);
                                        continue;
                                }
                                cr_expect(r == ITD_REASON_OK || detail[0],
                                          "case %zu: reason without detail",
                                          i);
                                if (r == ITD_REASON_OK)
                                        cr_expect(ev.type >= 0 &&
                                                      ev.type < ITD_EV__COUNT,
                                                  "case %zu", i);
                        }
                }
                drop_decoder(dec, dir);
        }
}
