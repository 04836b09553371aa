/*
 * test_control.c - control records (config/control.avsc) in Avro, in both
 * framings and bytes built by hand, and in JSON; every bad record gets a
 * reason code and a line naming the field; the acknowledgement
 * (config/audit.avsc) round trip.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "intentd/control.h"
#include "intentd/input.h"

static itd_control_t sample(void) {
        itd_control_t c;
        memset(&c, 0, sizeof c);
        c.type = ITD_CONTROL_ERASE;
        strcpy(c.user_id, "shopper-17");
        strcpy(c.request_id, "req-1");
        c.requested_at_ms = 1764930000123;
        return c;
}

static void expect_same(const itd_control_t *got, const itd_control_t *want) {
        cr_expect_eq(got->type, want->type);
        cr_expect_str_eq(got->user_id, want->user_id);
        cr_expect_str_eq(got->request_id, want->request_id);
        cr_expect_eq(got->requested_at_ms, want->requested_at_ms);
}

Test(control, avro_round_trip_in_every_framing) {
        const itd_control_t c = sample();
        const struct {
                int32_t id;
                itd_framing_t framing;
        } cases[] = {{-1, ITD_FRAMING_BARE},
                     {-1, ITD_FRAMING_AUTO},
                     {7, ITD_FRAMING_CONFLUENT},
                     {7, ITD_FRAMING_AUTO}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                unsigned char buf[256];
                size_t len;
                char err[256] = "";
                itd_control_t got;
                cr_assert_eq(itd_control_encode(&c, cases[i].id, buf,
                                                sizeof buf, &len),
                             ITD_OK);
                itd_reason_t r = itd_control_decode(
                    buf, len, 0, cases[i].framing, &got, err, sizeof err);
                cr_expect_eq(r, ITD_REASON_OK, "case %zu: %s", i, err);
                if (r == ITD_REASON_OK)
                        expect_same(&got, &c);
        }
}

/* The bytes by the Avro spec: enum index, two strings, a long, each a
 * zig-zag varint (strings prefixed by their length). */
Test(control, decodes_bytes_written_by_hand) {
        const unsigned char bytes[] = {
            0x00,                      /* type ERASE (index 0) */
            0x04, 'u', '1',            /* user_id "u1" */
            0x06, 'r', '-', '9',       /* request_id "r-9" */
            0xd0, 0x0f                 /* requested_at 1000 */
        };
        itd_control_t got;
        char err[256] = "";
        cr_assert_eq(itd_control_decode(bytes, sizeof bytes, 0,
                                        ITD_FRAMING_BARE, &got, err,
                                        sizeof err),
                     ITD_REASON_OK, "%s", err);
        cr_expect_str_eq(got.user_id, "u1");
        cr_expect_str_eq(got.request_id, "r-9");
        cr_expect_eq(got.requested_at_ms, 1000);
}

Test(control, json_lines_with_the_same_fields) {
        const char *line = "{\"type\":\"ERASE\",\"user_id\":\"shopper-17\","
                           "\"request_id\":\"req-1\","
                           "\"requested_at\":1764930000123}";
        itd_control_t got;
        const itd_control_t want = sample();
        char err[256] = "";
        cr_assert_eq(itd_control_decode(line, strlen(line), 1,
                                        ITD_FRAMING_AUTO, &got, err,
                                        sizeof err),
                     ITD_REASON_OK, "%s", err);
        expect_same(&got, &want);
}

Test(control, bad_records_get_a_reason_naming_the_field) {
        const struct {
                const char *json;
                itd_reason_t reason;
                const char *says;
        } cases[] = {
            {"{\"type\":\"ERASE\",\"user_id\":\"u\",\"request_id\":\"r\"",
             ITD_REASON_JSON_SYNTAX, "not JSON"},
            {"[1,2]", ITD_REASON_JSON_NOT_OBJECT, "not an object"},
            {"{\"type\":\"PAUSE\",\"user_id\":\"u\",\"request_id\":\"r\","
             "\"requested_at\":1}",
             ITD_REASON_BAD_CONTROL, "PAUSE"},
            {"{\"type\":\"ERASE\",\"request_id\":\"r\",\"requested_at\":1}",
             ITD_REASON_MISSING_USER_ID, "user_id"},
            {"{\"type\":\"ERASE\",\"user_id\":\"\",\"request_id\":\"r\","
             "\"requested_at\":1}",
             ITD_REASON_MISSING_USER_ID, "user_id"},
            {"{\"type\":\"ERASE\",\"user_id\":\"u\",\"requested_at\":1}",
             ITD_REASON_BAD_CONTROL, "request_id"},
            {"{\"type\":\"ERASE\",\"user_id\":\"u\",\"request_id\":\"\","
             "\"requested_at\":1}",
             ITD_REASON_BAD_CONTROL, "request_id"},
            {"{\"type\":\"ERASE\",\"user_id\":7,\"request_id\":\"r\","
             "\"requested_at\":1}",
             ITD_REASON_WRONG_TYPE, "user_id"},
            {"{\"type\":\"ERASE\",\"user_id\":\"u\",\"request_id\":\"r\"}",
             ITD_REASON_MISSING_FIELD, "requested_at"},
            {"{\"type\":\"ERASE\",\"user_id\":\"u\",\"request_id\":\"r\","
             "\"requested_at\":\"yesterday\"}",
             ITD_REASON_WRONG_TYPE, "requested_at"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                itd_control_t got;
                char err[256] = "";
                itd_reason_t r = itd_control_decode(
                    cases[i].json, strlen(cases[i].json), 1, ITD_FRAMING_AUTO,
                    &got, err, sizeof err);
                cr_expect_eq(r, cases[i].reason, "case %zu: %s -> %s (%s)", i,
                             cases[i].json, itd_reason_name(r), err);
                cr_expect(strstr(err, cases[i].says) != NULL,
                          "case %zu: \"%s\" does not say %s", i, err,
                          cases[i].says);
        }
}

Test(control, bad_avro_gets_a_reason) {
        const itd_control_t c = sample();
        unsigned char buf[256];
        size_t len;
        itd_control_t got;
        char err[256] = "";
        cr_assert_eq(itd_control_encode(&c, -1, buf, sizeof buf, &len),
                     ITD_OK);
        /* cut short: inside requested_at */
        cr_expect_eq(itd_control_decode(buf, len - 1, 0, ITD_FRAMING_BARE,
                                        &got, err, sizeof err),
                     ITD_REASON_TRUNCATED, "%s", err);
        /* a byte after the record */
        buf[len] = 0;
        cr_expect_eq(itd_control_decode(buf, len + 1, 0, ITD_FRAMING_BARE,
                                        &got, err, sizeof err),
                     ITD_REASON_TRAILING_BYTES, "%s", err);
        /* an enum index beyond ERASE */
        buf[0] = 0x02;
        cr_expect_eq(itd_control_decode(buf, len, 0, ITD_FRAMING_BARE, &got,
                                        err, sizeof err),
                     ITD_REASON_BAD_ENUM_INDEX, "%s", err);
        cr_expect(strstr(err, "type") != NULL, "%s", err);
        /* Confluent framing asked for, bare bytes given */
        cr_expect_eq(itd_control_decode("\x05xyz", 4, 0,
                                        ITD_FRAMING_CONFLUENT, &got, err,
                                        sizeof err),
                     ITD_REASON_BAD_MAGIC_BYTE, "%s", err);
        cr_expect_eq(itd_control_decode(NULL, 0, 0, ITD_FRAMING_AUTO, &got,
                                        err, sizeof err),
                     ITD_REASON_EMPTY_MESSAGE, "%s", err);
}

Test(control, encode_reports_a_full_buffer) {
        const itd_control_t c = sample();
        unsigned char buf[8];
        size_t len;
        cr_expect_eq(itd_control_encode(&c, -1, buf, sizeof buf, &len),
                     ITD_ERR_FULL);
}

Test(control, acknowledgement_round_trip) {
        const int32_t parts[] = {0, 3, 5};
        itd_audit_t a;
        memset(&a, 0, sizeof a);
        strcpy(a.request_id, "req-1");
        a.type = ITD_CONTROL_ERASE;
        strcpy(a.user, "u:0123456789abcdef");
        a.requested_at_ms = 1764930000123;
        a.completed_at_ms = 1764930000999;
        a.partitions = parts;
        a.n_partitions = 3;
        a.users = 1;
        a.events = 42;
        a.pending = 3;
        a.queued = 2;
        a.triggers = 1;
        a.risk_triggers = 0;
        a.cached = 1;
        a.cut = 12;
        /* bare, then Confluent (id 0 is a header of five zero bytes) */
        static const int32_t ids[] = {-1, 0, 9, 0x01020304};
        for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
                const int32_t id = ids[k];
                unsigned char buf[512];
                size_t len;
                int32_t got_parts[8];
                itd_audit_t got;
                char err[256] = "";
                cr_assert_eq(itd_audit_encode(&a, id, buf, sizeof buf, &len),
                             ITD_OK);
                cr_assert_eq(itd_audit_decode(buf, len, &got, got_parts, 8,
                                              err, sizeof err),
                             ITD_REASON_OK, "%s", err);
                cr_expect_str_eq(got.request_id, "req-1");
                cr_expect_str_eq(got.user, a.user);
                cr_expect_eq(got.requested_at_ms, a.requested_at_ms);
                cr_expect_eq(got.completed_at_ms, a.completed_at_ms);
                cr_assert_eq(got.n_partitions, 3);
                for (size_t i = 0; i < 3; i++)
                        cr_expect_eq(got.partitions[i], parts[i]);
                cr_expect_eq(got.users, 1);
                cr_expect_eq(got.events, 42);
                cr_expect_eq(got.pending, 3);
                cr_expect_eq(got.queued, 2);
                cr_expect_eq(got.triggers, 1);
                cr_expect_eq(got.risk_triggers, 0);
                cr_expect_eq(got.cached, 1);
                cr_expect_eq(got.cut, 12);
        }
}

Test(control, schemas_are_compiled_in) {
        cr_expect(strstr(itd_schema_control_avsc, "\"ERASE\"") != NULL);
        cr_expect(strstr(itd_schema_audit_avsc, "\"completed_at\"") != NULL);
}
