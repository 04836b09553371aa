/*
 * test_reader.c - events from line files: the synthetic Taobao, REES46,
 * RetailRocket and JSON-lines fixtures, gzip, stable sorting, bad-line
 * counting, and (when present) the shared real Taobao files. Avro
 * containers and hostile files are in test_reader_avro.c.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <avro.h>
#include <zlib.h>

#include "intentd/codec.h"
#include "intentd/reader.h"
#include "testutil.h"
#include "reader_helpers.h"

/* gzip src into dir/name with zlib; returns the path in buf. */
static const char *gzip_to(const char *src, const char *dir, const char *name,
                           char *buf, size_t cap) {
        snprintf(buf, cap, "%s/%s", dir, name);
        char *text = tu_read_file(src);
        cr_assert_not_null(text);
        gzFile gz = gzopen(buf, "wb");
        cr_assert_not_null(gz);
        cr_assert_eq(gzputs(gz, text), (int)strlen(text));
        gzputs(gz, "\n");
        cr_assert_eq(gzclose(gz), Z_OK);
        free(text);
        return buf;
}

Test(reader, format_names_parse) {
        itd_format_t f;
        cr_assert_eq(itd_format_parse("taobao", &f), ITD_OK);
        cr_assert_eq(f, ITD_FORMAT_TAOBAO);
        cr_assert_eq(itd_format_parse("jsonl", &f), ITD_OK);
        cr_assert_eq(f, ITD_FORMAT_JSONL);
        cr_assert_eq(itd_format_parse("csv", &f), ITD_ERR_PARSE);
}

Test(reader, taobao_fixture_maps_behaviours_and_skips_the_bad_line) {
        char path[512], err[256];
        tu_src("tests/fixtures/taobao_small.csv", path, sizeof path);
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_TAOBAO, 0, err,
                                           sizeof err);
        cr_assert_not_null(rd, "%s", err);
        itd_event_t ev;
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_OK);
        /* first line: 200000,31563,2520377,pv,1511622929 */
        cr_assert_str_eq(ev.user_id, "200000");
        cr_assert_str_eq(ev.item_id, "31563");
        cr_assert_str_eq(ev.category, "2520377");
        cr_assert_eq(ev.type, ITD_EV_VIEW);
        cr_assert_eq(ev.ts_ms, 1511622929000LL);
        cr_assert(isnan(ev.price));
        cr_assert_str_empty(itd_reader_last_error(rd));
        itd_reader_destroy(rd);

        summary_t s = read_all(path, ITD_FORMAT_TAOBAO, 0);
        cr_assert_eq(s.n, 199);
        cr_assert_eq(s.bad, 1);
        cr_assert_eq(s.by_type[ITD_EV_VIEW], 162);
        cr_assert_eq(s.by_type[ITD_EV_ADD_TO_CART], 15);
        cr_assert_eq(s.by_type[ITD_EV_FAVORITE], 7);
        cr_assert_eq(s.by_type[ITD_EV_PURCHASE], 15);
        cr_assert(strstr(s.last_error, "taobao_small.csv:58: ") &&
                      strstr(s.last_error, "\"click\""),
                  "%s", s.last_error);
        /* The file is grouped by user, so file order is not time order. */
        cr_assert_not(s.sorted);
}

Test(reader, sorted_taobao_comes_out_in_time_order_with_the_same_events) {
        char path[512];
        tu_src("tests/fixtures/taobao_small.csv", path, sizeof path);
        summary_t plain = read_all(path, ITD_FORMAT_TAOBAO, 0);
        summary_t sorted = read_all(path, ITD_FORMAT_TAOBAO, 1);
        cr_assert(sorted.sorted);
        cr_assert_eq(sorted.n, plain.n);
        cr_assert_eq(sorted.bad, 1);
        for (int t = 0; t < ITD_EV__COUNT; t++)
                cr_assert_eq(sorted.by_type[t], plain.by_type[t]);
}

Test(reader, jsonl_fixture_reads_every_line_in_time_order) {
        char path[512];
        tu_src("tests/fixtures/events_small.jsonl", path, sizeof path);
        summary_t s = read_all(path, ITD_FORMAT_JSONL, 0);
        cr_assert_eq(s.bad, 0, "%s", s.last_error);
        cr_assert_gt(s.n, 2000);
        cr_assert(s.sorted);
        cr_assert_gt(s.by_type[ITD_EV_PURCHASE], 0);
        cr_assert_gt(s.by_type[ITD_EV_SEARCH], 0);
}

/* Each file read plain and through gzip (read_all with sort): the same
 * events, bad lines, time span and mix of types. */
typedef struct {
        const char *fixture, *name;
        itd_format_t format;
} gz_file_t;

static void expect_same_through_gzip(const gz_file_t *files, size_t n,
                                     int sort) {
        char dir[256], src[512], gz[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        for (size_t i = 0; i < n; i++) {
                tu_src(files[i].fixture, src, sizeof src);
                gzip_to(src, dir, files[i].name, gz, sizeof gz);
                summary_t a = read_all(src, files[i].format, sort);
                summary_t b = read_all(gz, files[i].format, sort);
                cr_assert_eq(a.n, b.n);
                cr_assert_eq(a.bad, b.bad);
                cr_assert_eq(a.first_ts, b.first_ts);
                cr_assert_eq(a.last_ts, b.last_ts);
                for (int t = 0; t < ITD_EV__COUNT; t++)
                        cr_assert_eq(a.by_type[t], b.by_type[t]);
                remove(gz);
        }
        remove(dir);
}

Test(reader, gzip_files_read_the_same_as_plain_ones) {
        const gz_file_t files[] = {
            {"tests/fixtures/taobao_small.csv", "t.csv.gz", ITD_FORMAT_TAOBAO},
            {"tests/fixtures/events_small.jsonl", "e.jsonl.gz",
             ITD_FORMAT_JSONL},
        };
        expect_same_through_gzip(files, 2, 0);
}

Test(reader, sort_keeps_file_order_among_equal_times) {
        char dir[256], path[512], err[256];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/ties.csv", dir);
        cr_assert_eq(tu_write_file(path, "a,1,1,pv,5\n"
                                         "b,1,1,pv,3\n"
                                         "c,1,1,pv,5\n"
                                         "d,1,1,pv,3\n"
                                         "e,1,1,pv,1\n"
                                         "f,1,1,pv,5\n"),
                     0);
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_TAOBAO, 1, err,
                                           sizeof err);
        cr_assert_not_null(rd, "%s", err);
        const char *want[] = {"e", "b", "d", "a", "c", "f"};
        itd_event_t ev;
        for (size_t i = 0; i < 6; i++) {
                cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_OK);
                cr_assert_str_eq(ev.user_id, want[i], "position %zu", i);
        }
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_ERR_EOF);
        itd_reader_destroy(rd);
        remove(path);
        remove(dir);
}

Test(reader, bad_lines_are_counted_and_the_last_one_is_named) {
        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/bad.jsonl", dir);
        /* line 1 good, 2 blank (not bad), 3 not JSON, 4 no user, 5 good,
         * 6 far too long, 7 bad type, 8 good with CRLF */
        size_t cap = 20000;
        char *text = malloc(cap);
        size_t n = (size_t)snprintf(
            text, cap,
            "{\"user_id\":\"u1\",\"ts\":1,\"type\":\"VIEW\"}\n"
            "   \n"
            "not json\n"
            "{\"ts\":2,\"type\":\"VIEW\"}\n"
            "{\"user_id\":\"u2\",\"ts\":3,\"type\":\"SEARCH\"}\n"
            "{\"user_id\":\"");
        memset(text + n, 'x', 9000);
        n += 9000;
        snprintf(text + n, cap - n,
                 "\",\"ts\":4,\"type\":\"VIEW\"}\n"
                 "{\"user_id\":\"u3\",\"ts\":5,\"type\":\"CLICK\"}\n"
                 "{\"user_id\":\"u4\",\"ts\":6,\"type\":\"PURCHASE\"}\r\n");
        cr_assert_eq(tu_write_file(path, text), 0);
        free(text);
        summary_t s = read_all(path, ITD_FORMAT_JSONL, 0);
        cr_assert_eq(s.n, 3);
        cr_assert_eq(s.bad, 4);
        cr_assert(strstr(s.last_error, "bad.jsonl:7: ") &&
                      strstr(s.last_error, "'type'"),
                  "%s", s.last_error);
        remove(path);
        remove(dir);
}

Test(reader, taobao_rejects_malformed_rows_with_reasons) {
        char dir[256], path[512], err[256];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/rows.csv", dir);
        const struct {
                const char *row, *want;
        } rows[] = {
            {"1,2,3,pv", "4 fields"},
            {"1,2,3,pv,5,6", "more than 5"},
            {",2,3,pv,5", "user_id is empty"},
            {"1,2,3,click,5", "\"click\""},
            {"1,2,3,pv,12x", "timestamp \"12x\""},
            {"1,2,3,pv,", "timestamp \"\""},
            {"1,2,3,pv,99999999999999999999", "timestamp"},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                char line[128];
                snprintf(line, sizeof line, "%s\n", rows[i].row);
                cr_assert_eq(tu_write_file(path, line), 0);
                itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_TAOBAO, 0,
                                                   err, sizeof err);
                cr_assert_not_null(rd, "%s", err);
                itd_event_t ev;
                cr_expect_eq(itd_reader_next(rd, &ev, err, sizeof err),
                             ITD_ERR_EOF, "row %zu accepted", i);
                cr_expect_eq(itd_reader_bad_lines(rd), 1);
                cr_expect(strstr(itd_reader_last_error(rd), ":1: ") &&
                              strstr(itd_reader_last_error(rd), rows[i].want),
                          "row %zu: \"%s\"", i, itd_reader_last_error(rd));
                itd_reader_destroy(rd);
        }
        remove(path);
        remove(dir);
}

Test(reader, open_names_the_missing_file) {
        char err[256] = "";
        itd_reader_t *rd = itd_reader_open("/nonexistent/x.csv",
                                           ITD_FORMAT_TAOBAO, 0, err,
                                           sizeof err);
        cr_assert_null(rd);
        cr_assert(strstr(err, "/nonexistent/x.csv") &&
                      strstr(err, "No such file"),
                  "%s", err);
}

Test(reader, shared_taobao_files_read_without_bad_lines) {
        char path[512];
        if (!tu_shared_data(
                "taobao_userbehavior_tail_users/UserBehavior_tail10000.csv",
                path, sizeof path))
                cr_skip_test("taobao tail users: shared data absent");
        summary_t s = read_all(path, ITD_FORMAT_TAOBAO, 1);
        /* counts from the data's README */
        cr_assert_eq(s.n, 10000);
        cr_assert_eq(s.bad, 0, "%s", s.last_error);
        cr_assert(s.sorted);
        cr_assert_eq(s.by_type[ITD_EV_VIEW], 9046);
        cr_assert_eq(s.by_type[ITD_EV_PURCHASE], 206);

        if (!tu_shared_data("taobao_userbehavior/UserBehavior.csv.gz", path,
                            sizeof path))
                cr_skip_test("taobao slice: shared data absent");
        s = read_all(path, ITD_FORMAT_TAOBAO, 0);
        cr_assert_eq(s.n, 110300);
        cr_assert_eq(s.bad, 0, "%s", s.last_error);
        cr_assert(s.sorted); /* this slice is in time order already */
        cr_assert_eq(s.by_type[ITD_EV_PURCHASE], 2493);
}

/* --- REES46, RetailRocket, Avro -------------------------------------------- */

Test(reader, every_format_name_parses_and_prints_back) {
        const char *names[] = {"taobao", "jsonl", "rees46", "retailrocket",
                               "avro"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                itd_format_t f;
                cr_expect_eq(itd_format_parse(names[i], &f), ITD_OK, "%s",
                             names[i]);
                cr_expect_str_eq(itd_format_name(f), names[i]);
        }
        cr_assert_str_eq(itd_format_name(ITD_FORMAT__COUNT), "?");
}

Test(reader, rees46_fixture_maps_columns_types_and_times) {
        char path[512], err[256];
        tu_src("tests/fixtures/rees46_small.csv", path, sizeof path);
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_REES46, 0, err,
                                           sizeof err);
        cr_assert_not_null(rd, "%s", err);
        itd_event_t ev;
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_OK, "%s",
                     err);
        /* 2019-10-01 00:01:00 UTC,remove_from_cart,1000002,
         * 2232732093077520756,construction.tools.light,bosch,5.40,
         * 512000002,00001402-0000-4000-8000-00001e848002 */
        cr_assert_eq(ev.ts_ms, 1569888060000LL);
        cr_assert_eq(ev.type, ITD_EV_REMOVE_FROM_CART);
        cr_assert_str_eq(ev.item_id, "1000002");
        cr_assert_str_eq(ev.category, "construction.tools.light");
        cr_assert_str_eq(ev.user_id, "512000002");
        cr_assert_str_eq(ev.session_id,
                         "00001402-0000-4000-8000-00001e848002");
        cr_assert_float_eq(ev.price, 5.40, 1e-9); /* exact decimal parse */
        cr_assert_str_empty(ev.event_id);
        /* line 4 quotes a brand with a comma: the columns after it hold */
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_OK);
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_OK);
        cr_assert_str_eq(ev.category, "computers.notebook");
        cr_assert_str_eq(ev.user_id, "512000015");
        cr_assert_float_eq(ev.price, 486.78, 1e-9);
        itd_reader_destroy(rd);

        summary_t s = read_all(path, ITD_FORMAT_REES46, 0);
        cr_assert_eq(s.n, 120);
        cr_assert_eq(s.bad, 1);
        cr_assert_eq(s.by_type[ITD_EV_VIEW], 85);
        cr_assert_eq(s.by_type[ITD_EV_ADD_TO_CART], 21);
        cr_assert_eq(s.by_type[ITD_EV_REMOVE_FROM_CART], 6);
        cr_assert_eq(s.by_type[ITD_EV_PURCHASE], 8);
        cr_assert(strstr(s.last_error, "rees46_small.csv:53: ") &&
                      strstr(s.last_error, "\"click\""),
                  "%s", s.last_error);
        cr_assert_not(s.sorted, "the fixture has small disorder");
        summary_t t = read_all(path, ITD_FORMAT_REES46, 1);
        cr_assert(t.sorted);
        cr_assert_eq(t.n, s.n);
}

Test(reader, rees46_uses_the_category_id_when_the_code_is_empty) {
        char dir[256], path[512], err[256];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/r.csv", dir);
        /* reordered columns, no brand column at all, an empty price */
        cr_assert_eq(tu_write_file(
                         path, "user_id,event_type,event_time,category_id,"
                               "category_code,price,product_id\n"
                               "7,purchase,2020-02-29 23:59:59 UTC,42,,,9\n"),
                     0);
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_REES46, 0, err,
                                           sizeof err);
        cr_assert_not_null(rd, "%s", err);
        itd_event_t ev;
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_OK, "%s",
                     err);
        cr_assert_str_eq(ev.user_id, "7");
        cr_assert_eq(ev.type, ITD_EV_PURCHASE);
        cr_assert_eq(ev.ts_ms, 1583020799000LL); /* date -u -d ... +%s */
        cr_assert_str_eq(ev.category, "42");
        cr_assert_str_eq(ev.item_id, "9");
        cr_assert(isnan(ev.price));
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_ERR_EOF);
        itd_reader_destroy(rd);
        remove(path);
        remove(dir);
}

Test(reader, rees46_rejects_bad_rows_and_a_header_without_user_id) {
        char dir[256], path[512], err[256];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/r.csv", dir);
        const struct {
                const char *row, *want;
        } rows[] = {
            {"2019-10-01 00:00:00,view,1,2,,,1.0,", "user_id is empty"},
            {"2019-13-01 00:00:00 UTC,view,1,2,,,1.0,5", "event_time"},
            {"yesterday,view,1,2,,,1.0,5", "event_time \"yesterday\""},
            {"2019-10-01 00:00:00 UTC,view,1,2,,,cheap,5", "price \"cheap\""},
            {"2019-10-01 00:00:00 UTC,view,1,2,\"x,,,1.0,5", "not CSV"},
            {"2019-10-01 00:00:00 UTC,view", "fields"},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                char text[256];
                snprintf(text, sizeof text, "%s\n%s\n",
                         "event_time,event_type,product_id,category_id,"
                         "category_code,brand,price,user_id",
                         rows[i].row);
                cr_assert_eq(tu_write_file(path, text), 0);
                itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_REES46, 0,
                                                   err, sizeof err);
                cr_assert_not_null(rd, "%s", err);
                itd_event_t ev;
                cr_expect_eq(itd_reader_next(rd, &ev, err, sizeof err),
                             ITD_ERR_EOF, "row %zu accepted", i);
                cr_expect(strstr(itd_reader_last_error(rd), ":2: ") &&
                              strstr(itd_reader_last_error(rd), rows[i].want),
                          "row %zu: \"%s\"", i, itd_reader_last_error(rd));
                itd_reader_destroy(rd);
        }
        cr_assert_eq(tu_write_file(path, "event_time,event_type,visitor\n"
                                         "2019-10-01 00:00:00 UTC,view,1\n"),
                     0);
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_REES46, 0, err,
                                           sizeof err);
        cr_assert_not_null(rd, "%s", err);
        itd_event_t ev;
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_ERR_IO);
        cr_assert(strstr(err, "r.csv:1: ") && strstr(err, "\"user_id\""),
                  "%s", err);
        itd_reader_destroy(rd);
        remove(path);
        remove(dir);
}

Test(reader, retailrocket_fixture_reads_ms_times_and_maps_events) {
        char path[512], err[256];
        tu_src("tests/fixtures/retailrocket_small.csv", path, sizeof path);
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_RETAILROCKET, 0,
                                           err, sizeof err);
        cr_assert_not_null(rd, "%s", err);
        itd_event_t ev;
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_OK, "%s",
                     err);
        /* 1433221333117,2,view,221, */
        cr_assert_eq(ev.ts_ms, 1433221333117LL);
        cr_assert_str_eq(ev.user_id, "2");
        cr_assert_eq(ev.type, ITD_EV_VIEW);
        cr_assert_str_eq(ev.item_id, "221");
        cr_assert_str_empty(ev.category);
        cr_assert(isnan(ev.price));
        itd_reader_destroy(rd);

        summary_t s = read_all(path, ITD_FORMAT_RETAILROCKET, 0);
        cr_assert_eq(s.n, 150);
        cr_assert_eq(s.bad, 1);
        cr_assert_eq(s.by_type[ITD_EV_VIEW], 118);
        cr_assert_eq(s.by_type[ITD_EV_ADD_TO_CART], 20);
        cr_assert_eq(s.by_type[ITD_EV_PURCHASE], 12);
        cr_assert(strstr(s.last_error, "retailrocket_small.csv:33: ") &&
                      strstr(s.last_error, "\"purchase\""),
                  "%s", s.last_error);
        cr_assert_not(s.sorted);
        summary_t t = read_all(path, ITD_FORMAT_RETAILROCKET, 1);
        cr_assert(t.sorted);
        cr_assert_eq(t.n, 150);
        cr_assert_eq(t.first_ts, 1433221333117LL);
}

Test(reader, csv_formats_read_the_same_through_gzip) {
        const gz_file_t files[] = {
            {"tests/fixtures/rees46_small.csv", "r.csv.gz", ITD_FORMAT_REES46},
            {"tests/fixtures/retailrocket_small.csv", "e.csv.gz",
             ITD_FORMAT_RETAILROCKET},
        };
        expect_same_through_gzip(files, 2, 1);
}
