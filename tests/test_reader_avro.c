/*
 * test_reader_avro.c - Avro containers written here (codecs, an older
 * writer schema, unions and enums, bad records) and hostile files:
 * crafted containers (deep nesting, huge counts and sizes, bad headers)
 * and gzip cut short or corrupt.
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

/* An older writer schema: no event_id, query or session_id, price as a
 * plain double; resolution must still give events. */
static const char old_schema[] =
    "{\"type\":\"record\",\"name\":\"Event\",\"namespace\":\"io.intentd\","
    "\"fields\":[{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
    "\"symbols\":[\"VIEW\",\"SEARCH\",\"ADD_TO_CART\",\"REMOVE_FROM_CART\","
    "\"PURCHASE\",\"FAVORITE\"]}},"
    "{\"name\":\"item_id\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"category\",\"type\":[\"null\",\"string\"]}]}";

/* Writes n events to an Avro container at path with the given schema
 * (NULL: config/event.avsc); event i: user "u<i%7>", ts 1000 * (n - i)
 * (reverse time order), type i % 6, item "i<i>" on even i. With bad_at
 * < n, that record's user_id is 80 bytes (over the limit). */
static void write_avro_codec(const char *path, const char *schema_json,
                             size_t n, size_t bad_at, const char *codec) {
        avro_schema_t schema;
        const char *js = schema_json ? schema_json : itd_schema_event_avsc;
        cr_assert_eq(avro_schema_from_json_length(js, strlen(js), &schema), 0,
                     "%s", avro_strerror());
        remove(path);
        avro_file_writer_t w;
        /* small blocks, so that a few hundred events span many */
        cr_assert_eq(avro_file_writer_create_with_codec(path, schema, &w,
                                                        codec, 512),
                     0, "%s", avro_strerror());
        avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
        avro_value_t rec, f, br;
        cr_assert_eq(avro_generic_value_new(iface, &rec), 0);
        for (size_t i = 0; i < n; i++) {
                char user[100], item[32];
                if (i == bad_at)
                        memset(user, 'x', 80), user[80] = '\0';
                else
                        snprintf(user, sizeof user, "u%zu", i % 7);
                snprintf(item, sizeof item, "i%zu", i);
                avro_value_reset(&rec);
                avro_value_get_by_name(&rec, "user_id", &f, NULL);
                avro_value_set_string(&f, user);
                avro_value_get_by_name(&rec, "ts", &f, NULL);
                avro_value_set_long(&f, (int64_t)(1000 * (n - i)));
                avro_value_get_by_name(&rec, "type", &f, NULL);
                avro_value_set_enum(&f, (int)(i % 6));
                avro_value_get_by_name(&rec, "item_id", &f, NULL);
                if (i % 2 == 0) {
                        avro_value_set_branch(&f, 1, &br);
                        avro_value_set_string(&br, item);
                } else {
                        avro_value_set_branch(&f, 0, &br);
                        avro_value_set_null(&br);
                }
                avro_value_get_by_name(&rec, "category", &f, NULL);
                avro_value_set_branch(&f, 0, &br);
                avro_value_set_null(&br);
                if (!schema_json) {
                        const char *opt[] = {"event_id", "query",
                                             "session_id"};
                        for (int k = 0; k < 3; k++) {
                                avro_value_get_by_name(&rec, opt[k], &f, NULL);
                                avro_value_set_branch(&f, 0, &br);
                                avro_value_set_null(&br);
                        }
                        avro_value_get_by_name(&rec, "price", &f, NULL);
                        avro_value_set_branch(&f, 1, &br);
                        avro_value_set_double(&br, 2.5 * (double)i);
                }
                cr_assert_eq(avro_file_writer_append_value(w, &rec), 0, "%s",
                             avro_strerror());
        }
        avro_value_decref(&rec);
        avro_value_iface_decref(iface);
        cr_assert_eq(avro_file_writer_close(w), 0);
        avro_schema_decref(schema);
}

static void write_avro(const char *path, const char *schema_json, size_t n,
                       size_t bad_at) {
        write_avro_codec(path, schema_json, n, bad_at, "null");
}

/* The gzip of src, byte for byte (test_reader.c's gzip_to is for text:
 * it adds a line end), at dst. */
static void gzip_file(const char *src, const char *dst) {
        FILE *in = fopen(src, "rb");
        gzFile out = gzopen(dst, "wb");
        cr_assert(in && out);
        char buf[4096];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, in)) > 0)
                cr_assert_eq(gzwrite(out, buf, (unsigned)got), (int)got);
        fclose(in);
        cr_assert_eq(gzclose(out), Z_OK);
}

static void check_avro_events(const char *path, size_t n, int with_price) {
        char err[512];
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_AVRO, 0, err,
                                           sizeof err);
        cr_assert_not_null(rd, "%s", err);
        itd_event_t ev;
        for (size_t i = 0; i < n; i++) {
                cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_OK,
                             "record %zu: %s", i, err);
                char want[32];
                snprintf(want, sizeof want, "u%zu", i % 7);
                cr_expect_str_eq(ev.user_id, want);
                cr_expect_eq(ev.ts_ms, (int64_t)(1000 * (n - i)));
                cr_expect_eq((int)ev.type, (int)(i % 6));
                snprintf(want, sizeof want, "i%zu", i);
                cr_expect_str_eq(ev.item_id, i % 2 ? "" : want);
                cr_expect_str_empty(ev.category);
                if (with_price)
                        cr_expect_float_eq(ev.price, 2.5 * (double)i, 1e-12);
                else
                        cr_expect(isnan(ev.price));
        }
        cr_assert_eq(itd_reader_next(rd, &ev, err, sizeof err), ITD_ERR_EOF);
        cr_assert_eq(itd_reader_bad_lines(rd), 0);
        uint64_t done, total;
        itd_reader_progress(rd, &done, &total);
        cr_assert_gt(total, 0);
        cr_assert_eq(done, total);
        itd_reader_destroy(rd);
}

Test(reader, avro_container_files_read_back_what_was_written) {
        char dir[256], path[512], gz[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/e.avro", dir);
        write_avro(path, NULL, 300, SIZE_MAX);
        check_avro_events(path, 300, 1);
        /* sorted: the file is in reverse time order */
        summary_t s = read_all(path, ITD_FORMAT_AVRO, 1);
        cr_assert(s.sorted);
        cr_assert_eq(s.n, 300);
        cr_assert_eq(s.by_type[ITD_EV_PURCHASE], 50);
        /* inside gzip */
        snprintf(gz, sizeof gz, "%s/e.avro.gz", dir);
        gzip_file(path, gz);
        summary_t g = read_all(gz, ITD_FORMAT_AVRO, 1);
        cr_assert_eq(g.n, 300);
        cr_assert_eq(g.first_ts, s.first_ts);
        remove(gz);
        remove(path);
        remove(dir);
}

Test(reader, avro_files_of_an_older_schema_resolve) {
        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/old.avro", dir);
        write_avro(path, old_schema, 40, SIZE_MAX);
        check_avro_events(path, 40, 0);
        remove(path);
        remove(dir);
}

Test(reader, avro_bad_records_are_counted_and_bad_files_named) {
        char dir[256], path[512], err[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/bad.avro", dir);
        write_avro(path, NULL, 20, 4);
        summary_t s = read_all(path, ITD_FORMAT_AVRO, 0);
        cr_assert_eq(s.n, 19);
        cr_assert_eq(s.bad, 1);
        cr_assert(strstr(s.last_error, "bad.avro:5: "), "%s", s.last_error);

        /* not a container at all */
        cr_assert_eq(tu_write_file(path, "{\"user_id\":\"u\"}\n"), 0);
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_AVRO, 0, err,
                                           sizeof err);
        cr_assert_null(rd);
        cr_assert(strstr(err, "bad.avro") &&
                      strstr(err, "not an Avro object container"),
                  "%s", err);
        /* a container of something else */
        avro_schema_t other = avro_schema_long();
        avro_file_writer_t w;
        remove(path);
        cr_assert_eq(avro_file_writer_create(path, other, &w), 0);
        avro_file_writer_close(w);
        avro_schema_decref(other);
        rd = itd_reader_open(path, ITD_FORMAT_AVRO, 0, err, sizeof err);
        cr_assert_null(rd);
        cr_assert(strstr(err, "does not resolve"), "%s", err);
        remove(path);
        remove(dir);
}

/* ---- Hostile files: schemas Avro allows, gzip cut short, crafted
 * containers. Each must read, or stop with an error naming the file. ---- */

/* A growing buffer: whole files, larger than testutil's tu_bytes_t
 * (4 KiB, for one message); its varints are testutil's (tu_avro_long). */
typedef struct {
        unsigned char *b;
        size_t n, cap;
} buf_t;

static void b_put(buf_t *o, const void *p, size_t n) {
        if (o->n + n > o->cap) {
                o->cap = (o->n + n) * 2 + 64;
                o->b = realloc(o->b, o->cap);
                cr_assert_not_null(o->b);
        }
        memcpy(o->b + o->n, p, n);
        o->n += n;
}

static void b_long(buf_t *o, int64_t v) {
        unsigned char z[10];
        b_put(o, z, tu_avro_long(z, v));
}

static void b_str(buf_t *o, const char *s) {
        b_long(o, (int64_t)strlen(s));
        b_put(o, s, strlen(s));
}

static const unsigned char SYNC[16] = {0xa1, 0xb2, 0xc3, 0xd4, 5, 6, 7, 8,
                                       9, 10, 11, 12, 13, 14, 15, 16};

/* A container header (codec null unless given) for schema. */
static void ocf_header(buf_t *o, const char *schema, const char *codec) {
        b_put(o, "Obj\x01", 4);
        b_long(o, codec ? 2 : 1);
        b_str(o, "avro.schema");
        b_str(o, schema);
        if (codec) {
                b_str(o, "avro.codec");
                b_str(o, codec);
        }
        b_long(o, 0);
        b_put(o, SYNC, sizeof SYNC);
}

static void ocf_block(buf_t *o, int64_t count, const buf_t *data) {
        b_long(o, count);
        b_long(o, (int64_t)data->n);
        b_put(o, data->b, data->n);
        b_put(o, SYNC, sizeof SYNC);
}

static void write_buf(const char *path, const buf_t *o) {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(o->b, 1, o->n, f), o->n);
        cr_assert_eq(fclose(f), 0);
}

typedef struct {
        size_t n;
        uint64_t bad;
        itd_err_t err; /* ITD_ERR_EOF when the file read to its end */
        char errstr[1024];
        char last_bad[512];
        itd_event_t first;
} outcome_t;

/* Reads path to its end or to the first error, streaming or sorted. */
static outcome_t read_outcome(const char *path, itd_format_t format,
                              int sort) {
        outcome_t out = {0};
        itd_event_t ev;
        itd_reader_t *rd = itd_reader_open(path, format, sort, out.errstr,
                                           sizeof out.errstr);
        if (!rd) {
                out.err = ITD_ERR_IO;
                return out;
        }
        while ((out.err = itd_reader_next(rd, &ev, out.errstr,
                                          sizeof out.errstr)) == ITD_OK) {
                if (out.n == 0)
                        out.first = ev;
                out.n++;
        }
        out.bad = itd_reader_bad_lines(rd);
        snprintf(out.last_bad, sizeof out.last_bad, "%s",
                 itd_reader_last_error(rd));
        itd_reader_destroy(rd);
        return out;
}

/* n records by Avro C's writer; record i's type is the union branch
 * branch_of(i) holding symbol index index_of(i) (none for null). */
static void write_union_typed(const char *path, const char *schema_json,
                              size_t n, int (*branch_of)(size_t),
                              int (*index_of)(size_t)) {
        avro_schema_t schema;
        cr_assert_eq(avro_schema_from_json_length(schema_json,
                                                  strlen(schema_json),
                                                  &schema),
                     0, "%s", avro_strerror());
        remove(path);
        avro_file_writer_t w;
        cr_assert_eq(avro_file_writer_create(path, schema, &w), 0, "%s",
                     avro_strerror());
        avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
        avro_value_t rec, f, br;
        cr_assert_eq(avro_generic_value_new(iface, &rec), 0);
        for (size_t i = 0; i < n; i++) {
                char user[32];
                snprintf(user, sizeof user, "u%zu", i);
                avro_value_reset(&rec);
                avro_value_get_by_name(&rec, "user_id", &f, NULL);
                avro_value_set_string(&f, user);
                avro_value_get_by_name(&rec, "ts", &f, NULL);
                avro_value_set_long(&f, (int64_t)(1000 + i));
                avro_value_get_by_name(&rec, "type", &f, NULL);
                cr_assert_eq(avro_value_set_branch(&f, branch_of(i), &br), 0);
                if (index_of(i) < 0)
                        avro_value_set_null(&br);
                else
                        avro_value_set_enum(&br, index_of(i));
                cr_assert_eq(avro_file_writer_append_value(w, &rec), 0, "%s",
                             avro_strerror());
        }
        avro_value_decref(&rec);
        avro_value_iface_decref(iface);
        cr_assert_eq(avro_file_writer_close(w), 0);
        avro_schema_decref(schema);
}

static int every_third_null_branch(size_t i) { return i % 3 == 2; }

static int every_third_null_index(size_t i) {
        return i % 3 == 2 ? -1 : (int)(i % 6);
}

static int alternate_branch(size_t i) { return (int)(i % 2); }

static int alternate_index(size_t i) { return i % 2 ? 0 : 1; }

Test(reader, avro_files_with_an_optional_enum_or_two_enums_read) {
        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/opt.avro", dir);
        /* [enum, "null"]: the null records are bad, the rest read */
        write_union_typed(path,
                          TU_EVENT_WITH_TYPE("[" TU_ENUM_ALL ",\"null\"]"), 30,
                          every_third_null_branch, every_third_null_index);
        outcome_t o = read_outcome(path, ITD_FORMAT_AVRO, 0);
        cr_assert_eq(o.err, ITD_ERR_EOF, "%s", o.errstr);
        cr_expect_eq(o.n, 20);
        cr_expect_eq(o.bad, 10);
        cr_expect(strstr(o.last_bad, "opt.avro:30: ") &&
                      strstr(o.last_bad, "'type'"),
                  "%s", o.last_bad);
        o = read_outcome(path, ITD_FORMAT_AVRO, 1);
        cr_expect_eq(o.err, ITD_ERR_EOF, "%s", o.errstr);
        cr_expect_eq(o.n, 20);

        /* two enums: each branch by its own symbols */
        write_union_typed(
            path,
            TU_EVENT_WITH_TYPE(
                "[{\"type\":\"enum\",\"name\":\"A\",\"symbols\":[\"VIEW\","
                "\"PURCHASE\"]},{\"type\":\"enum\",\"name\":\"B\",\"symbols\":"
                "[\"FAVORITE\",\"SHARE\",\"VIEW\"]}]"),
            10, alternate_branch, alternate_index);
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_AVRO, 0, o.errstr,
                                           sizeof o.errstr);
        cr_assert_not_null(rd, "%s", o.errstr);
        itd_event_t ev;
        for (int i = 0; i < 10; i++) {
                cr_assert_eq(itd_reader_next(rd, &ev, o.errstr,
                                             sizeof o.errstr),
                             ITD_OK, "%s", o.errstr);
                cr_expect_eq(ev.type,
                             i % 2 ? ITD_EV_FAVORITE : ITD_EV_PURCHASE,
                             "record %d", i);
        }
        cr_expect_eq(itd_reader_next(rd, &ev, o.errstr, sizeof o.errstr),
                     ITD_ERR_EOF);
        itd_reader_destroy(rd);
        remove(path);
        remove(dir);
}

Test(reader, deflate_and_snappy_containers_read_as_the_null_codec_does) {
        char dir[256], path[512];
        const char *codecs[] = {"deflate", "snappy"};
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        for (int i = 0; i < 2; i++) {
                snprintf(path, sizeof path, "%s/e-%s.avro", dir, codecs[i]);
                write_avro_codec(path, NULL, 300, SIZE_MAX, codecs[i]);
                check_avro_events(path, 300, 1);
                remove(path);
        }
        remove(dir);
}

/* Copies the gzip of src to dst, then damages it as told. */
typedef enum { CUT_TRAILER, CUT_HALF, BAD_CRC, GARBAGE_AFTER, TWICE } damage_t;

static void gzip_damaged(const char *src, const char *dst, damage_t how) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.whole", dst);
        gzip_file(src, tmp);
        char buf[4096];
        size_t got;
        buf_t b = {0};
        FILE *f = fopen(tmp, "rb");
        while ((got = fread(buf, 1, sizeof buf, f)) > 0)
                b_put(&b, buf, got);
        fclose(f);
        remove(tmp);
        size_t whole = b.n;
        switch (how) {
        case CUT_TRAILER: b.n -= 8; break;
        case CUT_HALF: b.n /= 2; break;
        case BAD_CRC: b.b[b.n - 8] ^= 0x5a; break;
        case GARBAGE_AFTER: b_put(&b, "garbage\n", 8); break;
        case TWICE: b_put(&b, b.b, whole); break;
        }
        write_buf(dst, &b);
        free(b.b);
}

Test(reader, truncated_or_corrupt_gzip_is_an_error_naming_the_file) {
        char dir[256], avro[512], gz[512], src[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(avro, sizeof avro, "%s/e.avro", dir);
        write_avro(avro, NULL, 300, SIZE_MAX);
        const struct {
                const char *src;
                itd_format_t format;
                size_t n;
        } files[] = {
            {tu_src("tests/fixtures/taobao_small.csv", src, sizeof src),
             ITD_FORMAT_TAOBAO, 0},
            {avro, ITD_FORMAT_AVRO, 300},
        };
        static const struct {
                damage_t how;
                const char *says;
        } damages[] = {
            {CUT_TRAILER, "truncated"},
            {CUT_HALF, "truncated"},
            {BAD_CRC, "incorrect data check"},
            {GARBAGE_AFTER, "not another gzip member"},
        };
        for (size_t f = 0; f < 2; f++) {
                size_t n = files[f].n;
                if (files[f].format == ITD_FORMAT_TAOBAO)
                        n = read_all(files[f].src, ITD_FORMAT_TAOBAO, 0).n;
                for (size_t d = 0; d < 4; d++) {
                        snprintf(gz, sizeof gz, "%s/damaged-%zu.gz", dir, d);
                        gzip_damaged(files[f].src, gz, damages[d].how);
                        for (int sort = 0; sort < 2; sort++) {
                                outcome_t o =
                                    read_outcome(gz, files[f].format, sort);
                                cr_expect_neq(o.err, ITD_ERR_EOF,
                                              "file %zu, damage %zu, sort %d: "
                                              "read %zu events and ended "
                                              "quietly",
                                              f, d, sort, o.n);
                                cr_expect(strstr(o.errstr, gz) &&
                                              strstr(o.errstr,
                                                     damages[d].says),
                                          "file %zu, damage %zu: %s", f, d,
                                          o.errstr);
                        }
                        remove(gz);
                }
                /* members one after the other are one stream */
                snprintf(gz, sizeof gz, "%s/twice.gz", dir);
                gzip_damaged(files[f].src, gz, TWICE);
                outcome_t o = read_outcome(gz, ITD_FORMAT_TAOBAO, 0);
                if (files[f].format == ITD_FORMAT_TAOBAO) {
                        cr_expect_eq(o.err, ITD_ERR_EOF, "%s", o.errstr);
                        cr_expect_eq(o.n, 2 * n);
                }
                remove(gz);
        }
        remove(avro);
        remove(dir);
}

/* The writer schema of the crafted containers: the three required fields
 * and one more field of the given type. */
#define CRAFTED(EXTRA_JSON)                                                    \
        "{\"type\":\"record\",\"name\":\"Event\",\"fields\":["               \
        "{\"name\":\"user_id\",\"type\":\"string\"},"                         \
        "{\"name\":\"ts\",\"type\":\"long\"},"                                \
        "{\"name\":\"type\",\"type\":" TU_ENUM_ALL "},"                       \
        "{\"name\":\"extra\",\"type\":" EXTRA_JSON "}]}"

static void crafted_prefix(buf_t *rec) {
        b_str(rec, "u1");
        b_long(rec, 1000);
        b_long(rec, 4); /* PURCHASE */
}

Test(reader, a_deeply_nested_container_record_is_refused_not_recursed) {
        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/deep.avro", dir);
        /* a tree: each node holds an optional node */
        static const char schema[] = CRAFTED(
            "{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":"
            "\"child\",\"type\":[\"null\",\"Node\"]}]}");
        const size_t depths[] = {10, 1000000};
        for (int k = 0; k < 2; k++) {
                buf_t file = {0}, rec = {0};
                ocf_header(&file, schema, NULL);
                crafted_prefix(&rec);
                for (size_t i = 0; i < depths[k]; i++)
                        b_long(&rec, 1); /* branch "Node" */
                b_long(&rec, 0);         /* branch "null" */
                ocf_block(&file, 1, &rec);
                write_buf(path, &file);
                outcome_t o = read_outcome(path, ITD_FORMAT_AVRO, 0);
                if (k == 0) {
                        cr_expect_eq(o.err, ITD_ERR_EOF, "%s", o.errstr);
                        cr_expect_eq(o.n, 1);
                } else {
                        cr_expect_neq(o.err, ITD_ERR_EOF);
                        cr_expect(strstr(o.errstr, path) &&
                                      strstr(o.errstr, "nests deeper"),
                                  "%s", o.errstr);
                }
                free(file.b);
                free(rec.b);
        }
        remove(path);
        remove(dir);
}

Test(reader, huge_counts_and_sizes_in_a_container_cost_nothing,
     .timeout = 30) {
        TU_SKIP_UNDER_ASAN();
        /* Honest reading needs little: a few MiB; Avro C would allocate
         * per announced item until this limit stops it. */
        struct rlimit lim = {1ull << 30, 1ull << 30};
        cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/huge.avro", dir);
        static const char nulls[] =
            CRAFTED("{\"type\":\"array\",\"items\":\"null\"}");
        static const char strings[] =
            CRAFTED("{\"type\":\"array\",\"items\":\"string\"}");
        const int64_t big = (int64_t)1 << 40;
        enum { NULLS, STRINGS, RECORDS, BLOCK_SIZE, SHORT_BLOCK, KEY, CASES };
        for (int c = 0; c < CASES; c++) {
                buf_t file = {0}, rec = {0};
                const char *want = NULL;
                ocf_header(&file, c == STRINGS ? strings : nulls, NULL);
                crafted_prefix(&rec);
                switch (c) {
                case NULLS: /* 2^40 nulls, legal, in two bytes */
                        b_long(&rec, big);
                        b_long(&rec, 0);
                        ocf_block(&file, 1, &rec);
                        break;
                case STRINGS: /* 2^40 strings in a few bytes */
                        b_long(&rec, big);
                        b_long(&rec, 0);
                        ocf_block(&file, 1, &rec);
                        want = "truncated";
                        break;
                case RECORDS: /* 2^40 records in one short block */
                        b_long(&rec, 0);
                        ocf_block(&file, big, &rec);
                        want = "records announced";
                        break;
                case BLOCK_SIZE: /* a block of 2^40 bytes */
                        b_long(&file, 1);
                        b_long(&file, big);
                        want = "block size";
                        break;
                case SHORT_BLOCK: /* 60 MiB announced, 9 bytes there */
                        b_long(&file, 1);
                        b_long(&file, 60 << 20);
                        b_put(&file, "123456789", 9);
                        want = "file ends inside the block";
                        break;
                case KEY: /* a metadata key of 2^40 bytes */
                        file.n = 4;
                        b_long(&file, 1);
                        b_long(&file, big);
                        want = "metadata key length";
                        break;
                }
                write_buf(path, &file);
                outcome_t o = read_outcome(path, ITD_FORMAT_AVRO, 0);
                if (!want) {
                        cr_expect_eq(o.err, ITD_ERR_EOF, "case %d: %s", c,
                                     o.errstr);
                        cr_expect_eq(o.n, 1, "case %d", c);
                } else {
                        cr_expect_neq(o.err, ITD_ERR_EOF, "case %d", c);
                        cr_expect(strstr(o.errstr, path) &&
                                      strstr(o.errstr, want),
                                  "case %d: %s", c, o.errstr);
                }
                free(file.b);
                free(rec.b);
        }
        remove(path);
        remove(dir);
}

Test(reader, bad_container_headers_are_named) {
        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/head.avro", dir);
        static const char good[] = CRAFTED("\"long\"");
        enum { CODEC, NO_SCHEMA, SYNC_DIFFERS, NOT_JSON, NEG_COUNT, MIN_COUNT,
               CASES };
        static const char *const want[CASES] = {
            "codec \"xz\" is not supported", "no avro.schema",
            "sync marker differs", "does not parse", "negative record count",
            "bad metadata block count"};
        for (int c = 0; c < CASES; c++) {
                buf_t file = {0}, rec = {0};
                crafted_prefix(&rec);
                b_long(&rec, 7);
                switch (c) {
                case CODEC: ocf_header(&file, good, "xz"); break;
                case NO_SCHEMA:
                        b_put(&file, "Obj\x01", 4);
                        b_long(&file, 0);
                        b_put(&file, SYNC, sizeof SYNC);
                        break;
                case SYNC_DIFFERS:
                        ocf_header(&file, good, NULL);
                        ocf_block(&file, 1, &rec);
                        file.b[file.n - 1] ^= 1;
                        break;
                case NOT_JSON: ocf_header(&file, "{\"type\":", NULL); break;
                case NEG_COUNT:
                        ocf_header(&file, good, NULL);
                        ocf_block(&file, -1, &rec);
                        break;
                case MIN_COUNT: /* found by fuzz_container */
                        b_put(&file, "Obj\x01", 4);
                        b_long(&file, INT64_MIN);
                        break;
                }
                write_buf(path, &file);
                outcome_t o = read_outcome(path, ITD_FORMAT_AVRO, 0);
                cr_expect_neq(o.err, ITD_ERR_EOF, "case %d", c);
                cr_expect(strstr(o.errstr, path) && strstr(o.errstr, want[c]),
                          "case %d: %s", c, o.errstr);
                free(file.b);
                free(rec.b);
        }
        remove(path);
        remove(dir);
}
