/*
 * test_input.c - the message decoder the run loop calls: one stable reason
 * code per kind of bad message, limits, JSON messages, writer schemas by
 * Confluent id from a schema folder, resolution of older and newer writer
 * schemas into the reader (defaults, skipped fields, enum symbols by name,
 * promotion), unresolvable ids. Schema Registry is in
 * test_input_registry.c.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf_parts.h"
#include "intentd/codec.h"
#include "intentd/conf.h"
#include "intentd/input.h"
#include "testutil.h"
#include "input_helpers.h"

Test(input, reason_names_are_distinct_snake_case_and_documented) {
        char path[512];
        char *doc = tu_read_file(tu_src("docs/SCHEMAS.md", path, sizeof path));
        cr_assert_not_null(doc, "docs/SCHEMAS.md is missing");
        for (int i = 0; i < ITD_REASON__COUNT; i++) {
                const char *a = itd_reason_name((itd_reason_t)i);
                cr_expect_neq(strcmp(a, "unknown"), 0, "reason %d unnamed", i);
                for (const char *p = a; *p; p++)
                        cr_expect((*p >= 'a' && *p <= 'z') || *p == '_' ||
                                      (*p >= '0' && *p <= '9'),
                                  "reason \"%s\" is not snake_case", a);
                for (int j = 0; j < i; j++)
                        cr_expect_neq(strcmp(a, itd_reason_name(
                                                    (itd_reason_t)j)),
                                      0, "reasons %d and %d share \"%s\"", i,
                                      j, a);
                char quoted[64];
                snprintf(quoted, sizeof quoted, "`%s`", a);
                cr_expect(i == ITD_REASON_OK || strstr(doc, quoted),
                          "reason %s is not documented in docs/SCHEMAS.md",
                          quoted);
        }
        cr_expect_str_eq(itd_reason_name(ITD_REASON__COUNT), "unknown");
        free(doc);
}

Test(input, good_events_decode_in_every_framing) {
        itd_decoder_t *dec[3] = {
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_AUTO, NULL, NULL),
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT, NULL, NULL),
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_BARE, NULL, NULL)};
        tu_bytes_t conf, bare = {.n = 0};
        tu_put_header(&conf, 42);
        tu_put_event(&conf, "u1", TS_OK, 4, 19.5, "red shoes");
        tu_put_event(&bare, "u1", TS_OK, 4, 19.5, "red shoes");
        itd_event_t ev;
        char detail[256];
        for (int k = 0; k < 3; k++) {
                const tu_bytes_t *b = k == 2 ? &bare : &conf;
                cr_assert_eq(dec_bytes(dec[k], b, &ev, detail, sizeof detail),
                             ITD_REASON_OK, "framing %d: %s", k, detail);
                cr_expect_str_eq(detail, "");
                cr_expect_str_eq(ev.user_id, "u1");
                cr_expect_eq(ev.ts_ms, TS_OK);
                cr_expect_eq(ev.type, ITD_EV_PURCHASE);
                cr_expect_eq(ev.price, 19.5);
                cr_expect_str_eq(ev.query, "red shoes");
                cr_expect_str_eq(ev.session_id, "");
        }
        /* auto also takes bare records, whose first byte is 0 here */
        cr_expect_eq(dec_bytes(dec[0], &bare, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        for (int k = 0; k < 3; k++)
                itd_decoder_destroy(dec[k]);
}

Test(input, every_kind_of_bad_avro_message_gets_its_reason) {
        itd_decoder_t *dec =
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT, NULL, NULL);
        char long_id[80];
        memset(long_id, 'x', sizeof long_id - 1);
        long_id[sizeof long_id - 1] = '\0';
        struct {
                const char *what;
                tu_bytes_t b;
                itd_reason_t want;
                const char *in_detail;
        } c[32];
        size_t n = 0;
        memset(c, 0, sizeof c);
#define CASE(w, r, d) (c[n].what = (w), c[n].want = (r), c[n].in_detail = (d))

        CASE("empty", ITD_REASON_EMPTY_MESSAGE, "empty");
        n++;

        CASE("too large", ITD_REASON_MESSAGE_TOO_LARGE, "65536");
        c[n].b.n = 0; /* filled below: larger than tu_bytes_t */
        n++;

        CASE("bad magic", ITD_REASON_BAD_MAGIC_BYTE, "0x07");
        tu_put_header(&c[n].b, 1);
        c[n].b.b[0] = 7;
        tu_put_event(&c[n].b, "u", TS_OK, 0, NAN, NULL);
        n++;

        CASE("short header", ITD_REASON_TRUNCATED, "5-byte");
        c[n].b.n = 3;
        n++;

        CASE("truncated", ITD_REASON_TRUNCATED, "field 'ts'");
        tu_put_header(&c[n].b, 1);
        tu_put_long(&c[n].b, 0);
        tu_put_str(&c[n].b, "u1");
        n++;

        CASE("trailing", ITD_REASON_TRAILING_BYTES, "2 trailing bytes");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u", TS_OK, 0, NAN, NULL);
        tu_put_raw(&c[n].b, "zz", 2);
        n++;

        CASE("negative length", ITD_REASON_NEGATIVE_LENGTH, "field 'user_id'");
        tu_put_header(&c[n].b, 1);
        tu_put_long(&c[n].b, 0);
        tu_put_long(&c[n].b, -3);
        n++;

        CASE("union branch", ITD_REASON_BAD_UNION_BRANCH, "field 'event_id'");
        tu_put_header(&c[n].b, 1);
        tu_put_long(&c[n].b, 5);
        n++;

        CASE("enum index", ITD_REASON_BAD_ENUM_INDEX, "enum index 6");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u", TS_OK, 6, NAN, NULL);
        n++;

        CASE("overlong varint", ITD_REASON_MALFORMED_AVRO, "varint");
        tu_put_header(&c[n].b, 1);
        tu_put_long(&c[n].b, 0);
        tu_put_str(&c[n].b, "u");
        memset(c[n].b.b + c[n].b.n, 0xff, 11);
        c[n].b.n += 11;
        n++;

        CASE("empty user id", ITD_REASON_MISSING_USER_ID, "user_id");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "", TS_OK, 0, NAN, NULL);
        n++;

        CASE("ts 1999", ITD_REASON_TS_TOO_OLD, "2000-01-01");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u", 946684799999LL, 0, NAN, NULL);
        n++;

        CASE("ts negative", ITD_REASON_TS_TOO_OLD, "field 'ts'");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u", -5, 0, NAN, NULL);
        n++;

        CASE("ts in 2 h", ITD_REASON_TS_IN_FUTURE, "input.max_future");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u", NOW_MS + 2 * 3600000LL, 0, NAN, NULL);
        n++;

        CASE("negative price", ITD_REASON_BAD_PRICE, "negative");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u", TS_OK, 0, -0.01, NULL);
        n++;

        CASE("NaN price", ITD_REASON_BAD_PRICE, "not finite");
        tu_put_header(&c[n].b, 1);
        tu_put_long(&c[n].b, 0);
        tu_put_str(&c[n].b, "u");
        tu_put_long(&c[n].b, TS_OK);
        tu_put_long(&c[n].b, 0);
        tu_put_long(&c[n].b, 0);
        tu_put_long(&c[n].b, 0);
        tu_put_long(&c[n].b, 1);
        tu_put_double(&c[n].b, NAN);
        tu_put_long(&c[n].b, 0);
        tu_put_long(&c[n].b, 0);
        n++;

        CASE("infinite price", ITD_REASON_BAD_PRICE, "not finite");
        c[n].b = c[n - 1].b;
        memcpy(c[n].b.b + c[n].b.n - 10, (double[]){INFINITY}, 8);
        n++;

        CASE("long user id", ITD_REASON_STRING_TOO_LONG, "limit of 63");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, long_id, TS_OK, 0, NAN, NULL);
        n++;

        CASE("long query", ITD_REASON_STRING_TOO_LONG, "field 'query'");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u", TS_OK, 1, NAN, long_id);
        n++;

        CASE("bad utf-8", ITD_REASON_INVALID_UTF8, "0xc3");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u\xc3(", TS_OK, 0, NAN, NULL);
        n++;

        CASE("overlong utf-8", ITD_REASON_INVALID_UTF8, "UTF-8");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u\xc0\xaf", TS_OK, 0, NAN, NULL);
        n++;

        CASE("surrogate", ITD_REASON_INVALID_UTF8, "UTF-8");
        tu_put_header(&c[n].b, 1);
        tu_put_event(&c[n].b, "u\xed\xa0\x80", TS_OK, 0, NAN, NULL);
        n++;

        CASE("nul", ITD_REASON_NUL_IN_STRING, "NUL");
        tu_put_header(&c[n].b, 1);
        tu_put_long(&c[n].b, 0);
        tu_put_long(&c[n].b, 3);
        tu_put_raw(&c[n].b, "u\0v", 3);
        tu_put_long(&c[n].b, TS_OK);
        tu_put_long(&c[n].b, 0);
        for (int k = 0; k < 5; k++)
                tu_put_long(&c[n].b, 0);
        n++;
#undef CASE
        cr_assert_leq(n, sizeof c / sizeof c[0]);

        static unsigned char big[65537];
        for (size_t i = 0; i < n; i++) {
                itd_event_t ev;
                char detail[512] = "unset";
                const void *p = c[i].b.b;
                size_t len = c[i].b.n;
                if (c[i].want == ITD_REASON_MESSAGE_TOO_LARGE)
                        p = big, len = sizeof big;
                itd_reason_t r =
                    itd_decoder_decode(dec, p, len, NOW_MS, &ev, detail,
                                       sizeof detail);
                cr_expect_eq(r, c[i].want, "%s: got %s, want %s (%s)",
                             c[i].what, itd_reason_name(r),
                             itd_reason_name(c[i].want), detail);
                cr_expect(strstr(detail, c[i].in_detail) != NULL,
                          "%s: detail \"%s\" lacks \"%s\"", c[i].what, detail,
                          c[i].in_detail);
        }
        itd_decoder_destroy(dec);
}

Test(input, every_truncation_of_a_good_message_is_truncated) {
        itd_decoder_t *dec =
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT, NULL, NULL);
        tu_bytes_t b;
        tu_put_header(&b, 1);
        tu_put_event(&b, "user-1", TS_OK, 2, 3.25, "a query");
        itd_event_t ev;
        char detail[256];
        cr_assert_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        for (size_t len = 1; len < b.n; len++) {
                itd_reason_t r = itd_decoder_decode(dec, b.b, len, NOW_MS,
                                                    &ev, detail,
                                                    sizeof detail);
                cr_expect_eq(r, ITD_REASON_TRUNCATED, "%zu of %zu bytes: %s",
                             len, b.n, itd_reason_name(r));
        }
        itd_decoder_destroy(dec);
}

Test(input, limits_follow_the_configuration) {
        itd_input_conf_t ic;
        char err[256], detail[256];
        itd_conf_input_defaults(&ic);
        ic.framing = ITD_FRAMING_BARE;
        ic.max_string_bytes = 4;
        ic.max_message_bytes = 40;
        ic.max_future_ms = 1000;
        itd_decoder_t *dec = itd_decoder_new(&ic, NULL, err, sizeof err);
        cr_assert_not_null(dec, "%s", err);
        itd_event_t ev;
        tu_bytes_t b = {.n = 0};
        tu_put_event(&b, "abcd", NOW_MS + 1000, 0, NAN, NULL);
        cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        b.n = 0;
        tu_put_event(&b, "abcde", TS_OK, 0, NAN, NULL);
        cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_STRING_TOO_LONG);
        cr_expect(strstr(detail, "limit of 4"), "%s", detail);
        b.n = 0;
        tu_put_event(&b, "abcd", NOW_MS + 1001, 0, NAN, NULL);
        cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_TS_IN_FUTURE);
        b.n = 0;
        tu_put_event(&b, "abcd", TS_OK, 1, NAN, "1234567890123456789");
        cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_STRING_TOO_LONG);
        b.n = 0;
        tu_put_event(&b, "abcd", TS_OK, 0, NAN, NULL);
        tu_put_raw(&b, "0123456789012345678901234567890123456789", 40);
        cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_MESSAGE_TOO_LARGE);
        itd_decoder_destroy(dec);

        itd_conf_input_defaults(&ic);
        ic.max_string_bytes = 0;
        cr_expect_null(itd_decoder_new(&ic, NULL, err, sizeof err));
        itd_conf_input_defaults(&ic);
        ic.schemas_dir = "/nonexistent/intentd-schemas";
        cr_expect_null(itd_decoder_new(&ic, NULL, err, sizeof err));
        cr_expect(strstr(err, "input.schemas_dir"), "%s", err);
}

/* What failed comes back as a code: callers name the setting from it,
 * never from the words of the message. */
Test(input, a_decoder_that_cannot_be_built_says_what_failed) {
        char dir[256], file[512], err[512];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(file, sizeof file, "%s/a-file", dir);
        cr_assert_eq(tu_write_file(file, "x\n"), 0);
        static const struct {
                const char *name;
                int framing;
                size_t max_message_bytes;
                int schemas_dir; /* 0 none, 1 missing, 2 a file, 3 a folder */
                const char *url, *user_info;
                itd_input_fault_t fault;
        } cases[] = {
            {"defaults", ITD_FRAMING_AUTO, 1000, 0, NULL, NULL,
             ITD_INPUT_FAULT_NONE},
            {"framing unknown", 7, 1000, 0, NULL, NULL,
             ITD_INPUT_FAULT_LIMITS},
            {"no message size", ITD_FRAMING_AUTO, 0, 0, NULL, NULL,
             ITD_INPUT_FAULT_LIMITS},
            {"folder missing", ITD_FRAMING_AUTO, 1000, 1, NULL, NULL,
             ITD_INPUT_FAULT_SCHEMAS_DIR},
            {"folder is a file", ITD_FRAMING_AUTO, 1000, 2, NULL, NULL,
             ITD_INPUT_FAULT_SCHEMAS_DIR},
            {"registry scheme", ITD_FRAMING_AUTO, 1000, 3,
             "ftp://registry.schemas_dir.example/", NULL,
             ITD_INPUT_FAULT_REGISTRY},
            {"credentials twice", ITD_FRAMING_AUTO, 1000, 3,
             "http://a:b@schemas_dir.example/", "c:d",
             ITD_INPUT_FAULT_REGISTRY},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                itd_input_conf_t ic;
                itd_conf_input_defaults(&ic);
                ic.framing = cases[i].framing;
                ic.max_message_bytes = cases[i].max_message_bytes;
                char missing[300];
                snprintf(missing, sizeof missing, "%s/none", dir);
                const char *dirs[] = {NULL, missing, file, dir};
                ic.schemas_dir = dirs[cases[i].schemas_dir];
                ic.registry_url = cases[i].url;
                ic.registry_user_info = cases[i].user_info;
                itd_input_fault_t fault = ITD_INPUT_FAULT_BUILTIN;
                err[0] = '\0';
                itd_decoder_t *dec = itd_decoder_new(&ic, &fault, err,
                                                     sizeof err);
                cr_expect_eq(fault, cases[i].fault, "%s: fault %d: %s",
                             cases[i].name, (int)fault, err);
                cr_expect_eq(dec != NULL,
                             cases[i].fault == ITD_INPUT_FAULT_NONE, "%s: %s",
                             cases[i].name, err);
                itd_decoder_destroy(dec);
        }
}

Test(input, json_messages_get_the_same_reasons) {
        itd_decoder_t *dec =
            new_decoder(ITD_INPUT_JSON, ITD_FRAMING_AUTO, NULL, NULL);
        char good[256], old[256], future[256];
        snprintf(good, sizeof good,
                 "{\"user_id\":\"u\",\"ts\":%lld,\"type\":\"SEARCH\","
                 "\"query\":\"q\",\"price\":3}",
                 TS_OK);
        snprintf(old, sizeof old,
                 "{\"user_id\":\"u\",\"ts\":5,\"type\":\"VIEW\"}");
        snprintf(future, sizeof future,
                 "{\"user_id\":\"u\",\"ts\":%lld,\"type\":\"VIEW\"}",
                 NOW_MS + 7200000LL);
        char price[256];
        snprintf(price, sizeof price,
                 "{\"user_id\":\"u\",\"ts\":%lld,\"type\":\"VIEW\","
                 "\"price\":-1}",
                 TS_OK);
        const struct {
                const char *json;
                itd_reason_t want;
        } c[] = {
            {good, ITD_REASON_OK},
            {"", ITD_REASON_EMPTY_MESSAGE},
            {"{\"user_id\":", ITD_REASON_JSON_SYNTAX},
            {"{\"user_id\":\"u\"} x", ITD_REASON_JSON_SYNTAX},
            {"[1]", ITD_REASON_JSON_NOT_OBJECT},
            {"{\"user_id\":7,\"ts\":1,\"type\":\"VIEW\"}",
             ITD_REASON_WRONG_TYPE},
            {"{\"user_id\":\"u\",\"ts\":\"1\",\"type\":\"VIEW\"}",
             ITD_REASON_WRONG_TYPE},
            {"{\"user_id\":\"u\",\"type\":\"VIEW\"}",
             ITD_REASON_MISSING_FIELD},
            {"{\"user_id\":\"u\",\"ts\":1}", ITD_REASON_MISSING_FIELD},
            {"{\"ts\":1,\"type\":\"VIEW\"}", ITD_REASON_MISSING_USER_ID},
            {"{\"user_id\":null,\"ts\":1,\"type\":\"VIEW\"}",
             ITD_REASON_MISSING_USER_ID},
            {"{\"user_id\":\"u\",\"ts\":1,\"type\":\"CLICK\"}",
             ITD_REASON_UNKNOWN_EVENT_TYPE},
            {old, ITD_REASON_TS_TOO_OLD},
            {future, ITD_REASON_TS_IN_FUTURE},
            {price, ITD_REASON_BAD_PRICE},
            {"{\"user_id\":\"u\xff\",\"ts\":1,\"type\":\"VIEW\"}",
             ITD_REASON_INVALID_UTF8},
            {"{\"user_id\":\"u\\u0000\",\"ts\":1,\"type\":\"VIEW\"}",
             ITD_REASON_NUL_IN_STRING},
            {"{\"user_id\":\"0123456789012345678901234567890123456789"
             "01234567890123456789012345\",\"ts\":1,\"type\":\"VIEW\"}",
             ITD_REASON_STRING_TOO_LONG},
        };
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
                itd_event_t ev;
                char detail[256];
                itd_reason_t r = itd_decoder_decode(
                    dec, c[i].json, strlen(c[i].json), NOW_MS, &ev, detail,
                    sizeof detail);
                cr_expect_eq(r, c[i].want, "case %zu: got %s, want %s (%s)",
                             i, itd_reason_name(r), itd_reason_name(c[i].want),
                             detail);
        }
        itd_decoder_destroy(dec);
}

/* ---- writer schemas by id ---- */

/* Older writer: no event_id/category/query/session_id, fields in another
 * order, fewer enum symbols in another order, price a plain float. */
static const char *schema_old =
    "{\"type\":\"record\",\"name\":\"Event\",\"namespace\":\"io.intentd\","
    "\"fields\":["
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
    "\"symbols\":[\"PURCHASE\",\"VIEW\",\"SEARCH\"]}},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"item_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"price\",\"type\":\"float\"}]}";

static const char *schema_no_user =
    "{\"type\":\"record\",\"name\":\"Event\",\"fields\":["
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
    "\"symbols\":[\"VIEW\"]}}]}";

static const char *schema_ts_string =
    "{\"type\":\"record\",\"name\":\"Event\",\"fields\":["
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"ts\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
    "\"symbols\":[\"VIEW\"]}}]}";

/* A flood guard: an array of nulls with a huge count is skipped at once. */
static const char *schema_nulls =
    "{\"type\":\"record\",\"name\":\"Event\",\"fields\":["
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"nothing\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
    "{\"name\":\"names\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
    "\"symbols\":[\"VIEW\"]}}]}";

static void old_payload(tu_bytes_t *b, uint32_t id) {
        tu_put_header(b, id);
        tu_put_str(b, "u-old");
        tu_put_long(b, 0); /* PURCHASE in the old symbol order */
        tu_put_long(b, TS_OK);
        tu_put_long(b, 1);
        tu_put_str(b, "i9");
        tu_put_float(b, 12.5f);
}

Test(input, old_and_new_writer_schemas_resolve_into_the_reader) {
        char dir[256];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        write_schema(dir, "1.avsc", schema_old);
        write_schema(dir, "2", schema_new); /* the bare-number name */
        itd_decoder_t *dec =
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT, dir, NULL);
        itd_event_t ev;
        char detail[256];
        tu_bytes_t b;

        old_payload(&b, 1);
        cr_assert_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        cr_expect_str_eq(ev.user_id, "u-old");
        cr_expect_eq(ev.type, ITD_EV_PURCHASE);
        cr_expect_eq(ev.ts_ms, TS_OK);
        cr_expect_str_eq(ev.item_id, "i9");
        cr_expect_eq(ev.price, 12.5); /* exact in float and double */
        /* reader defaults for the fields the old writer lacks */
        cr_expect_str_eq(ev.event_id, "");
        cr_expect_str_eq(ev.category, "");
        cr_expect_str_eq(ev.query, "");
        cr_expect_str_eq(ev.session_id, "");

        new_payload(&b, 2, 5);
        cr_assert_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        cr_expect_str_eq(ev.event_id, "e-1");
        cr_expect_str_eq(ev.user_id, "u-new");
        cr_expect_eq(ev.type, ITD_EV_FAVORITE);
        cr_expect_str_eq(ev.item_id, "");
        cr_expect_str_eq(ev.category, "c3");
        cr_expect_eq(ev.price, 30.0);
        cr_expect_str_eq(ev.session_id, "s-1");

        new_payload(&b, 2, 6); /* SHARE: the reader has no such symbol */
        cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_UNKNOWN_EVENT_TYPE);
        cr_expect(strstr(detail, "\"SHARE\""), "%s", detail);

        itd_decoder_stats_t st;
        itd_decoder_stats(dec, &st);
        cr_expect_eq(st.schemas_loaded, 2);
        cr_expect_eq(st.registry_requests, 0);
        itd_decoder_destroy(dec);
}

Test(input, unresolvable_ids_are_dead_lettered_and_remembered) {
        char dir[256];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        write_schema(dir, "3.avsc", schema_no_user);
        write_schema(dir, "4.avsc", schema_ts_string);
        write_schema(dir, "5.avsc", "{\"type\": \"record\", oops");
        write_schema(dir, "6.avsc", "\"string\"");
        itd_decoder_t *dec =
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT, dir, NULL);
        itd_event_t ev;
        char detail[256];
        tu_bytes_t b;
        const struct {
                uint32_t id;
                itd_reason_t want;
                const char *in_detail;
        } c[] = {
            {3, ITD_REASON_SCHEMA_INCOMPATIBLE, "lacks field 'user_id'"},
            {4, ITD_REASON_SCHEMA_INCOMPATIBLE, "'ts' of type string"},
            {5, ITD_REASON_SCHEMA_INCOMPATIBLE, "does not parse"},
            {6, ITD_REASON_SCHEMA_INCOMPATIBLE, "not a record"},
            {99, ITD_REASON_UNKNOWN_SCHEMA_ID, "schema id 99"},
        };
        for (int round = 0; round < 2; round++) {
                for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
                        tu_put_header(&b, c[i].id);
                        tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
                        itd_reason_t r =
                            dec_bytes(dec, &b, &ev, detail, sizeof detail);
                        cr_expect_eq(r, c[i].want, "id %u: %s (%s)", c[i].id,
                                     itd_reason_name(r), detail);
                        cr_expect(strstr(detail, c[i].in_detail),
                                  "id %u: \"%s\" lacks \"%s\"", c[i].id,
                                  detail, c[i].in_detail);
                }
        }
        /* the second round came from the miss cache, not the folder */
        itd_decoder_stats_t st;
        itd_decoder_stats(dec, &st);
        cr_expect_eq(st.schema_misses, 5);
        cr_expect_eq(st.schemas_loaded, 0);

        /* auto framing: an unknown id is reported as such when the bytes
         * are not a bare event either */
        itd_decoder_t *dauto =
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_AUTO, dir, NULL);
        tu_put_header(&b, 99);
        tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
        cr_expect_eq(dec_bytes(dauto, &b, &ev, detail, sizeof detail),
                     ITD_REASON_UNKNOWN_SCHEMA_ID, "%s", detail);
        /* ... and a bare event whose first byte is 0 still decodes */
        b.n = 0;
        tu_put_event(&b, "u", TS_OK, 0, NAN, NULL);
        cr_expect_eq(dec_bytes(dauto, &b, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        itd_decoder_destroy(dauto);
        itd_decoder_destroy(dec);
}

Test(input, huge_block_counts_cost_no_time) {
        char dir[256];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        write_schema(dir, "8.avsc", schema_nulls);
        itd_decoder_t *dec =
            new_decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT, dir, NULL);
        itd_event_t ev;
        char detail[256];
        tu_bytes_t b;
        tu_put_header(&b, 8);
        tu_put_str(&b, "u");
        for (int k = 0; k < 50; k++)
                tu_put_long(&b, (int64_t)1 << 60); /* 2^60 nulls, 50 times */
        tu_put_long(&b, 0);
        tu_put_long(&b, 0); /* names: empty */
        tu_put_long(&b, TS_OK);
        tu_put_long(&b, 0);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_OK, "%s", detail);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        cr_expect_lt(t1.tv_sec - t0.tv_sec, 2, "the walk took seconds");

        tu_put_header(&b, 8);
        tu_put_str(&b, "u");
        tu_put_long(&b, 0);
        tu_put_long(&b, (int64_t)1 << 40); /* 2^40 strings in a few bytes */
        cr_expect_eq(dec_bytes(dec, &b, &ev, detail, sizeof detail),
                     ITD_REASON_TRUNCATED, "%s", detail);
        itd_decoder_destroy(dec);
}
