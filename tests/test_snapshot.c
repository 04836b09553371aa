/*
 * test_snapshot.c - the snapshot container (model/snapshot.c) and model
 * snapshots through it: CRC32C, round trip, a flipped bit anywhere
 * and a cut anywhere are both ITD_ERR_CORRUPT, another format version or
 * feature spec is ITD_ERR_INCOMPATIBLE, writes are atomic (no temporary
 * left, the old file intact when a write fails, the last good one kept as
 * .prev), and the readable dump.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "intentd/crc32c.h"
#include "intentd/model.h"
#include "intentd/snapshot.h"
#include "testutil.h"

static char dir[512], path[600];

static void setup(void) {
        cr_assert_not_null(tu_tmpdir(dir, sizeof(dir)));
        snprintf(path, sizeof(path), "%s/test.ckpt", dir);
}

TestSuite(snapshot, .init = setup);

static const double vals_f64[3] = {1.5, -2.25, 1e300};
static const float vals_f32[5] = {0.5f, -1.0f, 3.0f, 0.0f, 1e-20f};
static const uint64_t vals_u64[2] = {42, UINT64_MAX};

static itd_snapshot_meta_t sample_meta(void) {
        itd_snapshot_meta_t m;
        memset(&m, 0, sizeof(m));
        m.kind = ITD_SNAPSHOT_KIND_MODEL;
        m.feature_spec_hash = 0x1122334455667788ull;
        m.config_hash = 0x99AABBCCDDEEFF00ull;
        m.examples = 123456;
        m.steps = 789;
        m.created_ms = 1700000000123;
        m.shape.model_type = 0;
        m.shape.optimizer = 2;
        m.shape.n_dense = 40;
        m.shape.n_fields = 3;
        m.shape.ids_per_field = 4;
        m.shape.emb_buckets = 65536;
        m.shape.emb_dim = 8;
        m.shape.n_hidden = 2;
        m.shape.hidden[0] = 128;
        m.shape.hidden[1] = 64;
        return m;
}

static void write_sample(const char *p) {
        itd_snapshot_meta_t meta = sample_meta();
        char err[512];
        itd_snapshot_writer_t *w =
            itd_snapshot_writer_new(p, &meta, err, sizeof(err));
        cr_assert_not_null(w, "%s", err);
        itd_snapshot_writer_section(w, "f32s", ITD_SNAPSHOT_F32,
                                    ITD_SNAPSHOT_SEC_PARAM, vals_f32,
                                    sizeof(vals_f32));
        itd_snapshot_writer_section(w, "f64s", ITD_SNAPSHOT_F64, 0, vals_f64,
                                    sizeof(vals_f64));
        itd_snapshot_writer_section(w, "u64s", ITD_SNAPSHOT_U64, 0, vals_u64,
                                    sizeof(vals_u64));
        itd_snapshot_writer_section(w, "raw", ITD_SNAPSHOT_BYTES, 0, "abc", 3);
        cr_assert_eq(itd_snapshot_writer_commit(w, err, sizeof(err)), ITD_OK,
                     "%s", err);
}

static uint8_t *slurp(const char *p, size_t *n) {
        FILE *fp = fopen(p, "rb");
        cr_assert_not_null(fp, "open %s", p);
        fseek(fp, 0, SEEK_END);
        *n = (size_t)ftell(fp);
        rewind(fp);
        uint8_t *buf = malloc(*n ? *n : 1);
        cr_assert_eq(fread(buf, 1, *n, fp), *n);
        fclose(fp);
        return buf;
}

static void spit(const char *p, const uint8_t *buf, size_t n) {
        FILE *fp = fopen(p, "wb");
        cr_assert_not_null(fp);
        cr_assert_eq(fwrite(buf, 1, n, fp), n);
        fclose(fp);
}

/* names in dir other than . and .., joined by spaces, sorted by readdir */
static size_t list_dir(char *out, size_t cap) {
        DIR *d = opendir(dir);
        cr_assert_not_null(d);
        size_t n = 0;
        out[0] = '\0';
        struct dirent *e;
        while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                n++;
                strncat(out, e->d_name, cap - strlen(out) - 2);
                strcat(out, " ");
        }
        closedir(d);
        return n;
}

Test(snapshot, crc32c_matches_the_published_check_value) {
        /* the CRC-32C check value of "123456789" (RFC 3720 / Castagnoli) */
        cr_assert_eq(itd_crc32c(0, "123456789", 9), 0xE3069283u);
        /* continuing over pieces equals one pass, whatever the split */
        const char *s = "The quick brown fox jumps over the lazy dog.";
        uint32_t whole = itd_crc32c(0, s, strlen(s));
        for (size_t cut = 0; cut <= strlen(s); cut++)
                cr_expect_eq(
                    itd_crc32c(itd_crc32c(0, s, cut), s + cut, strlen(s) - cut),
                    whole, "split at %zu", cut);
        /* 32 zero bytes: the iSCSI test vector */
        uint8_t zeros[32] = {0};
        cr_assert_eq(itd_crc32c(0, zeros, 32), 0x8A9136AAu);
        cr_assert_eq(itd_crc32c_tables(0, zeros, 32), 0x8A9136AAu);
}

/* CRC32C one bit at a time, straight from the definition. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n) {
        crc = ~crc;
        while (n--) {
                crc ^= *p++;
                for (int k = 0; k < 8; k++)
                        crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
}

Test(snapshot, crc32c_instruction_and_tables_agree_with_the_definition) {
        /* every length 0..300 at every alignment 0..7, continuing from a
         * previous CRC, in both the instruction path (where the CPU has
         * it) and the tables */
        uint8_t buf[320];
        for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (uint8_t)(i * 2654435761u >> 13);
        for (size_t off = 0; off < 8; off++)
                for (size_t n = 0; n + off <= 300; n++) {
                        uint32_t want = crc_bitwise(0x1234567u, buf + off, n);
                        cr_assert_eq(itd_crc32c(0x1234567u, buf + off, n),
                                     want, "offset %zu, %zu bytes", off, n);
                        cr_assert_eq(
                            itd_crc32c_tables(0x1234567u, buf + off, n),
                            want, "tables: offset %zu, %zu bytes", off, n);
                }
}

Test(snapshot, round_trip_keeps_header_and_every_section) {
        write_sample(path);
        itd_snapshot_t *ck;
        char err[512];
        cr_assert_eq(itd_snapshot_read(path, &ck, err, sizeof(err)), ITD_OK,
                     "%s", err);
        itd_snapshot_meta_t want = sample_meta();
        const itd_snapshot_meta_t *got = itd_snapshot_meta(ck);
        cr_assert_eq(memcmp(got, &want, sizeof(want)), 0, "header differs");

        float f32[5];
        double f64[3];
        uint64_t u64[2];
        char raw[3];
        cr_assert_eq(itd_snapshot_get(ck, "f32s", ITD_SNAPSHOT_F32, f32,
                                      sizeof(f32), err, sizeof(err)),
                     ITD_OK, "%s", err);
        cr_assert_eq(memcmp(f32, vals_f32, sizeof(f32)), 0);
        cr_assert_eq(itd_snapshot_get(ck, "f64s", ITD_SNAPSHOT_F64, f64,
                                      sizeof(f64), err, sizeof(err)),
                     ITD_OK);
        cr_assert_eq(memcmp(f64, vals_f64, sizeof(f64)), 0);
        cr_assert_eq(itd_snapshot_get(ck, "u64s", ITD_SNAPSHOT_U64, u64,
                                      sizeof(u64), err, sizeof(err)),
                     ITD_OK);
        cr_assert_eq(memcmp(u64, vals_u64, sizeof(u64)), 0);
        cr_assert_eq(itd_snapshot_get(ck, "raw", ITD_SNAPSHOT_BYTES, raw, 3,
                                      err, sizeof(err)),
                     ITD_OK);
        cr_assert_eq(memcmp(raw, "abc", 3), 0);

        cr_assert_eq(itd_snapshot_get(ck, "nope", ITD_SNAPSHOT_F32, f32, 4, err,
                                      sizeof(err)),
                     ITD_ERR_NOT_FOUND);
        cr_assert(strstr(err, "'nope'"), "%s", err);
        cr_assert_eq(itd_snapshot_get(ck, "f32s", ITD_SNAPSHOT_F32, f32, 16,
                                      err, sizeof(err)),
                     ITD_ERR_CORRUPT, "size differs");
        cr_assert(strstr(err, "20 bytes") && strstr(err, "16 bytes"), "%s",
                  err);
        cr_assert_eq(itd_snapshot_get(ck, "f64s", ITD_SNAPSHOT_F32, f64, 24,
                                      err, sizeof(err)),
                     ITD_ERR_CORRUPT, "type differs");
        itd_snapshot_destroy(ck);
}

Test(snapshot, a_flipped_bit_anywhere_is_corrupt) {
        write_sample(path);
        size_t n;
        uint8_t *good = slurp(path, &n);
        char bad_path[700], err[512];
        snprintf(bad_path, sizeof(bad_path), "%s/flipped.ckpt", dir);
        /* every byte, a different bit each time, and the top bit too */
        for (size_t i = 0; i < n; i++) {
                for (int which = 0; which < 2; which++) {
                        uint8_t *buf = malloc(n);
                        memcpy(buf, good, n);
                        buf[i] ^= (uint8_t)(which ? 0x80 : 1u << (i % 8));
                        spit(bad_path, buf, n);
                        free(buf);
                        itd_snapshot_t *ck = NULL;
                        itd_err_t e =
                            itd_snapshot_read(bad_path, &ck, err, sizeof(err));
                        cr_expect_eq(e, ITD_ERR_CORRUPT,
                                     "byte %zu of %zu: %s (%s)", i, n,
                                     itd_err_str(e), err);
                        cr_expect_null(ck);
                        itd_snapshot_destroy(ck);
                }
        }
        /* a flip in the payload names the CRCs */
        uint8_t *buf = malloc(n);
        memcpy(buf, good, n);
        buf[ITD_SNAPSHOT_HEADER_BYTES + 40] ^= 4;
        spit(bad_path, buf, n);
        cr_assert_eq(itd_snapshot_read(bad_path, &(itd_snapshot_t *){NULL}, err,
                                       sizeof(err)),
                     ITD_ERR_CORRUPT);
        cr_assert(strstr(err, "CRC mismatch (stored 0x") &&
                      strstr(err, ", computed 0x") && strstr(err, bad_path),
                  "%s", err);
        free(buf);
        free(good);
}

Test(snapshot, a_cut_anywhere_is_corrupt_and_says_truncated) {
        write_sample(path);
        size_t n;
        uint8_t *good = slurp(path, &n);
        char cut_path[700], err[512], want[64];
        snprintf(cut_path, sizeof(cut_path), "%s/cut.ckpt", dir);
        for (size_t len = 0; len < n; len++) {
                spit(cut_path, good, len);
                itd_snapshot_t *ck = NULL;
                itd_err_t e =
                    itd_snapshot_read(cut_path, &ck, err, sizeof(err));
                cr_expect_eq(e, ITD_ERR_CORRUPT, "cut at %zu: %s", len, err);
                cr_expect_null(ck);
                itd_snapshot_destroy(ck);
                if (len >= 8) {
                        snprintf(want, sizeof(want), "truncated at byte %zu",
                                 len);
                        cr_expect(strstr(err, want), "cut at %zu: %s", len,
                                  err);
                }
        }
        /* bytes appended after a complete file are not ignored either */
        uint8_t *longer = malloc(n + 1);
        memcpy(longer, good, n);
        longer[n] = 0;
        spit(cut_path, longer, n + 1);
        cr_assert_eq(itd_snapshot_read(cut_path, &(itd_snapshot_t *){NULL}, err,
                                       sizeof(err)),
                     ITD_ERR_CORRUPT);
        free(longer);
        free(good);
}

Test(snapshot, another_format_version_is_incompatible_not_corrupt) {
        write_sample(path);
        size_t n;
        uint8_t *buf = slurp(path, &n);
        buf[8] = 2; /* version 2, with a CRC that holds */
        uint32_t crc = itd_crc32c(0, buf, n - 4);
        for (int i = 0; i < 4; i++)
                buf[n - 4 + i] = (uint8_t)(crc >> (8 * i));
        spit(path, buf, n);
        char err[512];
        cr_assert_eq(itd_snapshot_read(path, &(itd_snapshot_t *){NULL}, err,
                                       sizeof(err)),
                     ITD_ERR_INCOMPATIBLE);
        cr_assert(strstr(err, "format version 2") && strstr(err, "version 1"),
                  "%s", err);
        free(buf);
}

Test(snapshot, a_missing_file_is_not_found_and_junk_is_corrupt) {
        char err[512];
        cr_assert_eq(itd_snapshot_read(path, &(itd_snapshot_t *){NULL}, err,
                                       sizeof(err)),
                     ITD_ERR_NOT_FOUND);
        cr_assert(strstr(err, path), "%s", err);
        spit(path, (const uint8_t *)"hello, world\n", 13);
        cr_assert_eq(itd_snapshot_read(path, &(itd_snapshot_t *){NULL}, err,
                                       sizeof(err)),
                     ITD_ERR_CORRUPT);
        cr_assert(strstr(err, "not an intentd checkpoint"), "%s", err);
}

/* ---- models ------------------------------------------------------------ */

static itd_model_t *small_model(int type) {
        itd_model_conf_t c;
        itd_model_conf_defaults(&c, type, 6, 2, 2);
        c.mlp.emb_buckets = 32;
        c.mlp.emb_dim = 4;
        c.mlp.hidden[0] = 8;
        c.mlp.hidden[1] = 4;
        c.mlp.max_batch = 4;
        char err[256];
        itd_model_t *m = itd_model_new(&c, err, sizeof(err));
        cr_assert_not_null(m, "%s", err);
        return m;
}

Test(snapshot, another_feature_spec_is_incompatible_and_names_both) {
        itd_model_t *m = small_model(ITD_MODEL_KIND_MLP);
        itd_snapshot_meta_t meta = {.feature_spec_hash = 0xABCDull};
        char err[512];
        cr_assert_eq(itd_model_save(m, path, &meta, err, sizeof(err)), ITD_OK,
                     "%s", err);
        itd_snapshot_meta_t expect = {.feature_spec_hash = 0x1234ull};
        cr_assert_eq(itd_model_load(m, path, &expect, err, sizeof(err)),
                     ITD_ERR_INCOMPATIBLE);
        cr_assert(strstr(err, "feature spec 0x000000000000abcd") &&
                      strstr(err, "this build uses 0x0000000000001234") &&
                      strstr(err, path),
                  "%s", err);
        expect.feature_spec_hash = 0xABCDull;
        cr_assert_eq(itd_model_load(m, path, &expect, err, sizeof(err)), ITD_OK,
                     "%s", err);
        /* another config hash (say, another optimizer) */
        expect.config_hash = 77;
        cr_assert_eq(itd_model_load(m, path, &expect, err, sizeof(err)),
                     ITD_ERR_INCOMPATIBLE);
        cr_assert(strstr(err, "config"), "%s", err);
        itd_model_destroy(m);
}

Test(snapshot, atomic_write_leaves_no_temporary_and_keeps_the_last_as_prev) {
        itd_model_t *m = small_model(ITD_MODEL_KIND_LOGISTIC);
        char err[512], names[1024];
        cr_assert_eq(itd_model_save(m, path, NULL, err, sizeof(err)), ITD_OK,
                     "%s", err);
        cr_assert_eq(list_dir(names, sizeof(names)), 1, "files: %s", names);
        cr_assert_str_eq(names, "test.ckpt ");
        size_t n1;
        uint8_t *first = slurp(path, &n1);

        float x[6] = {1, 2, 3, 4, 5, 6}, y = 1.0f;
        uint32_t ids[4] = {1, 2, 3, 4};
        cr_assert_eq(itd_model_train(m, x, ids, &y, NULL, 1, NULL), ITD_OK);
        cr_assert_eq(itd_model_save(m, path, NULL, err, sizeof(err)), ITD_OK,
                     "%s", err);
        cr_assert_eq(list_dir(names, sizeof(names)), 2, "files: %s", names);
        char prev[700];
        snprintf(prev, sizeof(prev), "%s.prev", path);
        size_t n2;
        uint8_t *kept = slurp(prev, &n2);
        cr_assert(n1 == n2 && memcmp(first, kept, n1) == 0,
                  ".prev is the previous file");
        free(kept);

        /* a damaged current file is never promoted to .prev */
        size_t n3;
        uint8_t *cur = slurp(path, &n3);
        cur[n3 / 2] ^= 1;
        spit(path, cur, n3);
        cr_assert_eq(itd_model_save(m, path, NULL, err, sizeof(err)), ITD_OK);
        kept = slurp(prev, &n2);
        cr_assert(n1 == n2 && memcmp(first, kept, n1) == 0,
                  ".prev still the last good file");
        cr_assert_eq(itd_model_load(m, path, NULL, err, sizeof(err)), ITD_OK,
                     "%s", err);
        free(kept);
        free(cur);
        free(first);
        itd_model_destroy(m);
}

Test(snapshot, a_failed_write_leaves_the_previous_file_intact) {
        itd_model_t *m = small_model(ITD_MODEL_KIND_MLP);
        char err[512], names[1024];
        cr_assert_eq(itd_model_save(m, path, NULL, err, sizeof(err)), ITD_OK);
        size_t n0;
        uint8_t *before = slurp(path, &n0);

        /*
         * A file-size limit makes the write fail half-way even as root (a
         * read-only folder would not stop root). The test runs in its own
         * worker process, so the limit dies with it.
         */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit old, lim;
        getrlimit(RLIMIT_FSIZE, &old);
        lim = old;
        lim.rlim_cur = 1000;
        cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
        float x[6] = {0}, y = 0.0f;
        cr_assert_eq(itd_model_train(m, x, NULL, &y, NULL, 1, NULL), ITD_OK);
        itd_err_t e = itd_model_save(m, path, NULL, err, sizeof(err));
        setrlimit(RLIMIT_FSIZE, &old);
        cr_assert_eq(e, ITD_ERR_IO);
        cr_assert(strstr(err, path), "%s", err);

        size_t n1;
        uint8_t *after = slurp(path, &n1);
        cr_assert(n0 == n1 && memcmp(before, after, n0) == 0,
                  "previous checkpoint unchanged");
        cr_assert_eq(list_dir(names, sizeof(names)), 1, "no temporary left: %s",
                     names);
        free(before);
        free(after);

        /* an unwritable folder, where that means something (not as root) */
        if (geteuid() != 0) {
                chmod(dir, 0555);
                e = itd_model_save(m, path, NULL, err, sizeof(err));
                chmod(dir, 0755);
                cr_assert_eq(e, ITD_ERR_IO);
                cr_assert(strstr(err, "cannot create temporary"), "%s", err);
        }
        itd_model_destroy(m);
}

Test(snapshot, describe_prints_header_shapes_and_tensors) {
        itd_model_t *m = small_model(ITD_MODEL_KIND_MLP);
        itd_snapshot_meta_t meta = {.feature_spec_hash = 0xFEEDull};
        char err[512];
        cr_assert_eq(itd_model_save(m, path, &meta, err, sizeof(err)), ITD_OK);
        char out_path[700];
        snprintf(out_path, sizeof(out_path), "%s/describe.txt", dir);
        FILE *out = fopen(out_path, "w");
        cr_assert_eq(itd_snapshot_describe(path, out, err, sizeof(err)), ITD_OK,
                     "%s", err);
        fclose(out);
        char *text = tu_read_file(out_path);
        cr_assert_not_null(text);
        static const char *const want[] = {
            "kind             model",
            "feature spec     0x000000000000feed",
            "model            mlp, optimizer adam",
            "inputs           6 dense, 2 sparse fields x 2 ids, 32 buckets "
            "x 4 dims",
            "hidden           8, 4",
            "w0 ",
            "emb ",
            "adam.m ",
            "counters ",
            "norm ",
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                cr_expect(strstr(text, want[i]), "missing \"%s\" in:\n%s",
                          want[i], text);
        char params[64];
        snprintf(params, sizeof(params), "parameters       %zu",
                 itd_model_n_params(m));
        cr_expect(strstr(text, params), "missing \"%s\" in:\n%s", params, text);
        free(text);

        /* a damaged file: the error is printed and returned */
        size_t n;
        uint8_t *buf = slurp(path, &n);
        buf[n - 1] ^= 1;
        spit(path, buf, n);
        free(buf);
        out = fopen(out_path, "w");
        cr_assert_eq(itd_snapshot_describe(path, out, err, sizeof(err)),
                     ITD_ERR_CORRUPT);
        fclose(out);
        text = tu_read_file(out_path);
        cr_expect(strstr(text, "CRC mismatch"), "%s", text);
        free(text);
        itd_model_destroy(m);
}
