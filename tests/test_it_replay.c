/*
 * test_it_replay.c - `intentd replay` end to end through the binary: the
 * JSON report parses and matches the printed summary, the feature export
 * has its header and one row per resolved example, two runs are identical,
 * every input format replays, and the HTML page renders in headless
 * Chromium (skipped when Debian's chromium is absent) into a PNG that
 * shows the charts' colours.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

#define RUN_MS 120000 /* one replay of a fixture takes ~1 s */

typedef struct {
        char dir[256], json[512], html[512], csv[512], log[512];
} outs_t;

/* Replays a fixture with every output; baseline: NULL or a model.type. */
static void replay_with(outs_t *o, const char *fixture, const char *format,
                        const char *baseline) {
        char input[512];
        tu_src(fixture, input, sizeof input);
        cr_assert_not_null(tu_tmpdir(o->dir, sizeof o->dir));
        snprintf(o->json, sizeof o->json, "%s/report.json", o->dir);
        snprintf(o->html, sizeof o->html, "%s/report.html", o->dir);
        snprintf(o->csv, sizeof o->csv, "%s/features.csv", o->dir);
        snprintf(o->log, sizeof o->log, "%s/replay.log", o->dir);
        char *argv[] = {ITD_BINARY, "replay", "--input", input,
                        "--format", (char *)format, "--report", o->json,
                        "--html", o->html, "--export-features", o->csv,
                        /* a fixed key: two runs' exports compare */
                        "--export-key", "000102030405060708090a0b0c0d0e0f",
                        baseline ? "--baseline" : NULL, (char *)baseline,
                        NULL};
        int rc = tu_run(argv, o->log, RUN_MS);
        char *log = tu_read_file(o->log);
        cr_assert_eq(rc, 0, "replay exited %d: %s", rc, log ? log : "");
        free(log);
}

static void replay(outs_t *o, const char *fixture, const char *format) {
        replay_with(o, fixture, format, NULL);
}

static void cleanup(outs_t *o) {
        unlink(o->json);
        unlink(o->html);
        unlink(o->csv);
        unlink(o->log);
        rmdir(o->dir);
}

static json_t *load_json(const char *path) {
        json_error_t jerr;
        json_t *doc = json_load_file(path, 0, &jerr);
        cr_assert_not_null(doc, "%s:%d: %s", path, jerr.line, jerr.text);
        return doc;
}

static double num_at(const json_t *doc, const char *a, const char *b,
                     const char *c) {
        const json_t *v = json_object_get(json_object_get(
                                              json_object_get(doc, a), b),
                                          c);
        cr_assert(json_is_number(v), "%s.%s.%s missing", a, b, c);
        return json_number_value(v);
}

/* Splits on commas in place; returns the field count. */
static size_t split(char *line, char **f, size_t max) {
        size_t n = 0;
        for (char *p = line;; p++) {
                if (n < max)
                        f[n] = p;
                n++;
                p = strchr(p, ',');
                if (!p)
                        break;
                *p = '\0';
        }
        return n;
}

Test(it_replay, report_export_and_summary_agree) {
        outs_t o;
        replay(&o, "tests/fixtures/events_small.jsonl", "jsonl");
        json_t *doc = load_json(o.json);
        double n = num_at(doc, "purchase", "overall", "n");
        double pos = num_at(doc, "purchase", "overall", "positives");
        cr_assert_gt(n, 1000);
        cr_assert_eq(json_integer_value(json_object_get(
                         json_object_get(doc, "input"), "events")),
                     3256);
        /* the summary printed on stdout says the same */
        char *log = tu_read_file(o.log);
        char want[128];
        snprintf(want, sizeof want, "labelled        %.0f (%.0f purchased",
                 n, pos);
        cr_assert(strstr(log, want), "summary lacks \"%s\":\n%s", want, log);
        char auc[64];
        snprintf(auc, sizeof auc, "AUC %.3f",
                 num_at(doc, "purchase", "overall", "auc"));
        cr_assert(strstr(log, auc), "summary lacks \"%s\":\n%s", auc, log);
        /* the comparison judged the same examples: same count, and its
         * exact AUC within the histogram's error bound */
        const json_t *all = json_object_get(
            json_object_get(json_object_get(doc, "compare"), "periods"),
            "all");
        cr_assert_eq(json_number_value(json_object_get(all, "n")), n);
        cr_assert_eq(json_number_value(json_object_get(all, "positives")),
                     pos);
        const json_t *model =
            json_object_get(json_object_get(all, "scorers"), "model");
        cr_assert_float_eq(
            json_number_value(json_object_get(model, "auc")),
            num_at(doc, "purchase", "overall", "auc"),
            num_at(doc, "purchase", "overall", "auc_err_bound") + 1e-9);
        const char *table[] = {"model (mlp)", "purchase-rate rule",
                               "label-rate rule", "last 30% of event time"};
        for (size_t i = 0; i < 4; i++)
                cr_expect(strstr(log, table[i]), "table lacks \"%s\"",
                          table[i]);
        free(log);

        /* CSV: header + one row per judged example, labels add up */
        FILE *f = fopen(o.csv, "r");
        cr_assert_not_null(f);
        char *line = NULL;
        size_t cap = 0;
        cr_assert_gt(getline(&line, &cap, f), 0);
        line[strcspn(line, "\n")] = '\0';
        char *col[512];
        size_t ncol = split(line, col, 512);
        cr_assert_leq(ncol, 512);
        cr_assert_str_eq(col[0], "ts");
        cr_assert_str_eq(col[1], "user");
        cr_assert_str_eq(col[2], "count_5m_view");
        cr_assert_str_eq(col[ncol - 3], "label");
        cr_assert_str_eq(col[ncol - 2], "next_action");
        cr_assert_str_eq(col[ncol - 1], "score");
        cr_assert_str_eq(col[ncol - 4], "sparse_11");
        size_t rows = 0, labels = 0, no_user = 0;
        int64_t min_ts = INT64_MAX;
        while (getline(&line, &cap, f) > 0) {
                line[strcspn(line, "\n")] = '\0';
                size_t k = split(line, col, 512);
                cr_expect_eq(k, ncol, "row %zu has %zu fields", rows + 1, k);
                if (k != ncol)
                        break;
                labels += strcmp(col[ncol - 3], "1") == 0;
                no_user += col[1][0] == '\0';
                double score = strtod(col[ncol - 1], NULL);
                cr_expect(score >= 0 && score <= 1, "score %s", col[ncol - 1]);
                int64_t ts = strtoll(col[0], NULL, 10);
                if (ts < min_ts)
                        min_ts = ts;
                rows++;
        }
        free(line);
        fclose(f);
        cr_assert_eq((double)rows, n);
        cr_assert_eq((double)labels, pos);
        cr_assert_eq(no_user, 0, "examples not matched to a user");
        cr_assert_eq((double)min_ts,
                     json_number_value(json_object_get(
                         json_object_get(doc, "input"), "first_event_ts")));
        json_decref(doc);
        cleanup(&o);
}

Test(it_replay, two_runs_give_the_same_report_and_export) {
        outs_t a, b;
        replay(&a, "tests/fixtures/events_small.jsonl", "jsonl");
        replay(&b, "tests/fixtures/events_small.jsonl", "jsonl");
        json_t *ja = load_json(a.json), *jb = load_json(b.json);
        cr_assert(json_equal(json_object_get(ja, "purchase"),
                             json_object_get(jb, "purchase")),
                  "purchase metrics differ between runs");
        cr_assert(json_equal(json_object_get(ja, "next_action"),
                             json_object_get(jb, "next_action")));
        char *ca = tu_read_file(a.csv), *cb = tu_read_file(b.csv);
        cr_assert(ca && cb && strcmp(ca, cb) == 0, "exports differ");
        free(ca), free(cb);
        json_decref(ja), json_decref(jb);
        cleanup(&a), cleanup(&b);
}

Test(it_replay, every_csv_format_replays) {
        const struct {
                const char *fixture, *format;
                int events, bad;
        } cases[] = {
            {"tests/fixtures/taobao_small.csv", "taobao", 199, 1},
            {"tests/fixtures/rees46_small.csv", "rees46", 120, 1},
            {"tests/fixtures/retailrocket_small.csv", "retailrocket", 150,
             1},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                outs_t o;
                replay(&o, cases[i].fixture, cases[i].format);
                json_t *doc = load_json(o.json);
                const json_t *in = json_object_get(doc, "input");
                cr_expect_eq(json_integer_value(json_object_get(in, "events")),
                             cases[i].events, "%s", cases[i].format);
                cr_expect_eq(
                    json_integer_value(json_object_get(in, "bad_lines")),
                    cases[i].bad, "%s", cases[i].format);
                cr_expect_str_eq(
                    json_string_value(json_object_get(in, "format")),
                    cases[i].format);
                json_decref(doc);
                cleanup(&o);
        }
}

/* ---- PNG decoding (zlib) for the rendering check ---------------------- */

typedef struct {
        uint32_t w, h;
        int channels;
        uint8_t *px; /* w * h * channels */
} image_t;

static uint32_t be32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
               (uint32_t)p[2] << 8 | p[3];
}

static int paeth(int a, int b, int c) {
        int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* 8-bit RGB or RGBA, not interlaced: what Chromium writes. */
static int png_decode(const char *path, image_t *img) {
        FILE *f = fopen(path, "rb");
        if (!f)
                return -1;
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        rewind(f);
        uint8_t *buf = malloc((size_t)size);
        if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
                fclose(f);
                free(buf);
                return -1;
        }
        fclose(f);
        if (size < 8 || memcmp(buf, "\x89PNG\r\n\x1a\n", 8) != 0) {
                free(buf);
                return -1;
        }
        uint8_t *idat = malloc((size_t)size);
        size_t idat_n = 0;
        int depth = 0, ctype = 0, interlace = 0;
        for (long p = 8; p + 12 <= size;) {
                uint32_t len = be32(buf + p);
                const uint8_t *type = buf + p + 4, *data = buf + p + 8;
                if (memcmp(type, "IHDR", 4) == 0) {
                        img->w = be32(data);
                        img->h = be32(data + 4);
                        depth = data[8];
                        ctype = data[9];
                        interlace = data[12];
                } else if (memcmp(type, "IDAT", 4) == 0) {
                        memcpy(idat + idat_n, data, len);
                        idat_n += len;
                }
                p += 12 + (long)len;
        }
        free(buf);
        if (depth != 8 || (ctype != 2 && ctype != 6) || interlace) {
                free(idat);
                return -1;
        }
        img->channels = ctype == 6 ? 4 : 3;
        size_t stride = (size_t)img->w * (size_t)img->channels;
        uLongf raw_n = (uLongf)((stride + 1) * img->h);
        uint8_t *raw = malloc(raw_n);
        int zrc = uncompress(raw, &raw_n, idat, (uLong)idat_n);
        free(idat);
        if (zrc != Z_OK || raw_n != (stride + 1) * img->h) {
                free(raw);
                return -1;
        }
        img->px = malloc(stride * img->h);
        int bpp = img->channels;
        for (uint32_t y = 0; y < img->h; y++) {
                const uint8_t *in = raw + y * (stride + 1) + 1;
                uint8_t *out = img->px + y * stride;
                const uint8_t *up = y ? out - stride : NULL;
                int filter = in[-1];
                for (size_t x = 0; x < stride; x++) {
                        int a = x >= (size_t)bpp ? out[x - bpp] : 0;
                        int b = up ? up[x] : 0;
                        int c = up && x >= (size_t)bpp ? up[x - bpp] : 0;
                        int v = in[x];
                        switch (filter) {
                        case 1: v += a; break;
                        case 2: v += b; break;
                        case 3: v += (a + b) / 2; break;
                        case 4: v += paeth(a, b, c); break;
                        default: break;
                        }
                        out[x] = (uint8_t)v;
                }
        }
        free(raw);
        return 0;
}

static const char *find_chromium(char *buf, size_t cap) {
        const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/bin"};
        const char *names[] = {"chromium", "chromium-browser"};
        for (size_t i = 0; i < 3; i++)
                for (size_t j = 0; j < 2; j++) {
                        snprintf(buf, cap, "%s/%s", dirs[i], names[j]);
                        if (access(buf, X_OK) == 0)
                                return buf;
                }
        return NULL;
}

Test(it_replay, html_report_renders_its_charts_in_headless_chromium,
     .timeout = 120) {
        char chromium[256];
        if (!find_chromium(chromium, sizeof chromium))
                cr_skip_test("chromium is not installed (Debian package "
                             "chromium)");
        outs_t o;
        replay_with(&o, "tests/fixtures/events_small.jsonl", "jsonl",
                    "logistic");
        char *page = tu_read_file(o.html);
        cr_assert_not_null(page);
        size_t svgs = 0;
        for (const char *p = page; (p = strstr(p, "<svg id=\"chart-"));
             p++)
                svgs++;
        cr_assert_eq(svgs, 10, "one <svg> per chart");
        /* the rules and the baseline are drawn beside the model */
        const char *charts[] = {"roc",      "pr",           "gains",
                                "calibration", "auc_time", "logloss_time",
                                "score_hist", "segments",  "event_mix",
                                "throughput"};
        for (size_t i = 0; i < sizeof charts / sizeof charts[0]; i++) {
                char id[64];
                snprintf(id, sizeof id, "<svg id=\"chart-%s\"", charts[i]);
                cr_expect_not_null(strstr(page, id), "no %s", id);
        }
        const char *roc = strstr(page, "<svg id=\"chart-roc\"");
        const char *roc_end = roc ? strstr(roc, "</svg>") : NULL;
        const char *names[] = {"model (mlp)", "baseline (logistic)",
                               "purchase-rate rule", "label-rate rule"};
        for (size_t i = 0; roc && i < 4; i++) {
                const char *at = strstr(roc, names[i]);
                cr_expect(at && at < roc_end, "ROC lacks %s", names[i]);
        }
        cr_assert_null(strstr(page, "<script"), "no scripts");
        cr_assert_null(strstr(page, "https://"), "nothing from the network");
        free(page);

        char png[512], profile[512], url[600], shot[600], log[512];
        snprintf(png, sizeof png, "%s/report.png", o.dir);
        snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium",
                 o.dir);
        snprintf(shot, sizeof shot, "--screenshot=%s", png);
        snprintf(url, sizeof url, "file://%s", o.html);
        snprintf(log, sizeof log, "%s/chromium.log", o.dir);
        char *argv[] = {chromium, "--headless", "--no-sandbox",
                        "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        profile, shot, "--window-size=1200,2400",
                        "--hide-scrollbars", url, NULL};
        int rc = tu_run(argv, log, 90000);
        char *text = tu_read_file(log);
        cr_assert_eq(rc, 0, "chromium exited %d: %s", rc, text ? text : "");
        free(text);

        image_t img = {0};
        cr_assert_eq(png_decode(png, &img), 0, "%s is not a PNG we read",
                     png);
        cr_assert_eq(img.w, 1200);
        cr_assert_eq(img.h, 2400);
        /* The page is mostly white; the charts draw in the palette of
         * replay/report.c. Bars and 2-px lines hold exact palette pixels. */
        static const uint8_t palette[6][3] = {
            {0x1f, 0x77, 0xb4}, {0xd6, 0x27, 0x28}, {0x2c, 0xa0, 0x2c},
            {0xff, 0x7f, 0x0e}, {0x94, 0x67, 0xbd}, {0x8c, 0x56, 0x4b}};
        size_t hits[6] = {0}, ink = 0;
        for (size_t i = 0; i < (size_t)img.w * img.h; i++) {
                const uint8_t *p = img.px + i * (size_t)img.channels;
                ink += p[0] < 240 || p[1] < 240 || p[2] < 240;
                for (int k = 0; k < 6; k++)
                        hits[k] += p[0] == palette[k][0] &&
                                   p[1] == palette[k][1] &&
                                   p[2] == palette[k][2];
        }
        double inked = (double)ink / ((double)img.w * img.h);
        cr_assert_gt(inked, 0.02, "page nearly blank (%.3f inked)", inked);
        for (int k = 0; k < 6; k++)
                cr_expect_gt(hits[k], 30, "palette colour %d: %zu pixels", k,
                             hits[k]);
        free(img.px);
        char *rm[] = {"/bin/rm", "-rf", o.dir, NULL};
        tu_run(rm, NULL, 10000);
}
