/*
 * test_it_dump_state.c - `intentd replay --dump-state` end to end: every
 * user's window counts in the dump against a brute-force count over the
 * same input, as of the end-of-input watermark (the partition's frontier
 * - allowed lateness, which the dump uses as "now"; the frontier is
 * recomputed here by its rule in docs/FEATURES.md). Exact for users whose events
 * fit the 12-event ring; otherwise within the bound of docs/FEATURES.md
 * (the events of that type in the overflow buckets, width ceil(span / 4),
 * that straddle the window's edges). On the shipped simulator fixture and
 * on the real Taobao slice (skipped when the shared data is absent).
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "intentd/event.h"
#include "testutil.h"

#define LATENESS_MS 5000 /* passed as windows.allowed_lateness below */
#define RING 12          /* exact events per user (pipeline/state_int.h) */
#define OV_K 4           /* overflow buckets per span */
#define T ITD_EV__COUNT

typedef struct rec_s {
        char user[ITD_ID_MAX];
        int64_t ts;
        int type;
} rec_t;

typedef struct recs_s {
        rec_t *v;
        size_t n, cap;
} recs_t;

static void recs_push(recs_t *r, const char *user, int64_t ts, int type) {
        if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 4096;
                r->v = realloc(r->v, r->cap * sizeof(*r->v));
                cr_assert_not_null(r->v);
        }
        rec_t *e = &r->v[r->n++];
        snprintf(e->user, sizeof(e->user), "%s", user);
        e->ts = ts;
        e->type = type;
}

static void load_jsonl(const char *path, recs_t *r) {
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "%s", path);
        char line[4096];
        while (fgets(line, sizeof(line), f)) {
                json_error_t jerr;
                json_t *o = json_loads(line, 0, &jerr);
                cr_assert_not_null(o, "%s: %s", path, jerr.text);
                itd_event_type_t type;
                cr_assert_eq(itd_event_type_parse(
                                 json_string_value(json_object_get(o, "type")),
                                 &type),
                             ITD_OK);
                recs_push(r, json_string_value(json_object_get(o, "user_id")),
                          json_integer_value(json_object_get(o, "ts")), type);
                json_decref(o);
        }
        fclose(f);
}

static void load_taobao(const char *path, recs_t *r) {
        gzFile gz = gzopen(path, "rb");
        cr_assert_not_null(gz, "%s", path);
        char line[512], user[64], beh[16];
        long long item, cat, secs;
        while (gzgets(gz, line, sizeof(line))) {
                if (sscanf(line, "%63[^,],%lld,%lld,%15[^,],%lld", user, &item,
                           &cat, beh, &secs) != 5)
                        continue; /* the reader skips such lines too */
                int type = !strcmp(beh, "pv")     ? ITD_EV_VIEW
                           : !strcmp(beh, "cart") ? ITD_EV_ADD_TO_CART
                           : !strcmp(beh, "fav")  ? ITD_EV_FAVORITE
                           : !strcmp(beh, "buy")  ? ITD_EV_PURCHASE
                                                  : -1;
                if (type >= 0)
                        recs_push(r, user, secs * 1000, type);
        }
        gzclose(gz);
}

static int by_user(const void *a, const void *b) {
        const rec_t *x = a, *y = b;
        int c = strcmp(x->user, y->user);
        if (c)
                return c;
        return (x->ts > y->ts) - (x->ts < y->ts);
}

/* Replay order: by time, ties in file order (the reader's stable sort). */
static int by_time(const void *a, const void *b) {
        const rec_t *x = *(rec_t *const *)a, *y = *(rec_t *const *)b;
        if (x->ts != y->ts)
                return (x->ts > y->ts) - (x->ts < y->ts);
        return (x > y) - (x < y);
}

/* The frontier after the whole input (docs/FEATURES.md, "Watermark"): the
 * lower median of the newest times of the last 16 distinct users, never
 * back, from two users on. */
static int64_t frontier_of(const recs_t *r) {
        enum { K = 16 };
        const rec_t **order = malloc(r->n * sizeof(*order));
        cr_assert_not_null(order);
        for (size_t i = 0; i < r->n; i++)
                order[i] = &r->v[i];
        qsort(order, r->n, sizeof(*order), by_time);
        const char *user[K];
        int64_t ts[K], frontier = INT64_MIN;
        int n = 0;
        for (size_t i = 0; i < r->n; i++) {
                int64_t t = order[i]->ts;
                int j = 0;
                while (j < n && strcmp(user[j], order[i]->user))
                        j++;
                if (j < n || n == K) {
                        if (j == n)
                                j = 0;
                        else if (ts[j] > t)
                                t = ts[j];
                        memmove(user + j, user + j + 1,
                                (size_t)(n - 1 - j) * sizeof(*user));
                        memmove(ts + j, ts + j + 1,
                                (size_t)(n - 1 - j) * sizeof(*ts));
                        n--;
                }
                user[n] = order[i]->user;
                ts[n++] = t;
                if (n < 2)
                        continue;
                int64_t sorted[K];
                memcpy(sorted, ts, (size_t)n * sizeof(*ts));
                for (int a = 1; a < n; a++)
                        for (int b = a; b > 0 && sorted[b - 1] > sorted[b];
                             b--) {
                                int64_t x = sorted[b];
                                sorted[b] = sorted[b - 1];
                                sorted[b - 1] = x;
                        }
                if (sorted[(n - 1) / 2] > frontier)
                        frontier = sorted[(n - 1) / 2];
        }
        free(order);
        return frontier;
}

static int64_t fdiv(int64_t a, int64_t b) {
        int64_t q = a / b;
        if (a % b != 0 && (a < 0) != (b < 0))
                q--;
        return q;
}

/* "5m" -> 300000; the dump labels windows in the largest exact unit. */
static int64_t label_ms(const char *label) {
        char *end;
        long long n = strtoll(label, &end, 10);
        static const struct {
                const char *unit;
                int64_t ms;
        } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000},
                     {"h", 3600000}, {"d", 86400000}};
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (!strcmp(end, units[i].unit))
                        return n * units[i].ms;
        cr_assert_fail("window label \"%s\"", label);
        return 0;
}

static uint32_t count_in(const rec_t *v, size_t n, int type, int64_t lo,
                         int64_t hi) {
        uint32_t c = 0; /* lo <= ts < hi */
        for (size_t i = 0; i < n; i++)
                c += v[i].type == type && v[i].ts >= lo && v[i].ts < hi;
        return c;
}

typedef struct result_s {
        size_t users, cells, inexact, nonzero;
} result_t;

/* Replays input, parses the dump and checks every cell. */
static result_t check_replay(const char *input, const char *format,
                             recs_t *r) {
        char dir[256], out[512], log[512];
        cr_assert(tu_tmpdir(dir, sizeof(dir)));
        snprintf(out, sizeof(out), "%s/state.jsonl", dir);
        snprintf(log, sizeof(log), "%s/replay.log", dir);
        char *argv[] = {ITD_BINARY, "replay", "--input", (char *)input,
                        "--format", (char *)format, "--dump-state", out,
                        "-o", "windows.allowed_lateness=5s", "-o",
                        "state.max_users=5000000",
                        /* one partition: the frontier recomputed below is
                         * the whole stream's (test_it_workers compares
                         * more workers with one) */
                        "-o", "pipeline.workers=1", NULL};
        int rc = tu_run(argv, log, 120000);
        char *log_text = tu_read_file(log);
        cr_assert_eq(rc, 0, "replay exited %d: %s", rc,
                     log_text ? log_text : "");
        free(log_text);

        int64_t now = frontier_of(r) - LATENESS_MS;
        qsort(r->v, r->n, sizeof(*r->v), by_user);
        size_t distinct = 0;
        for (size_t i = 0; i < r->n; i++)
                distinct += i == 0 || strcmp(r->v[i].user, r->v[i - 1].user);

        FILE *f = fopen(out, "r");
        cr_assert_not_null(f, "no dump at %s", out);
        result_t res = {0};
        size_t at = 0; /* dump and records are both sorted by user id */
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
                json_error_t jerr;
                json_t *o = json_loads(line, 0, &jerr);
                cr_assert_not_null(o, "dump line %zu: %s", res.users + 1,
                                   jerr.text);
                const char *user =
                    json_string_value(json_object_get(o, "user_id"));
                cr_assert_not_null(user);
                while (at < r->n && strcmp(r->v[at].user, user) < 0)
                        at++;
                size_t end = at;
                while (end < r->n && !strcmp(r->v[end].user, user))
                        end++;
                cr_assert_gt(end, at, "dumped user %s is not in the input",
                             user);
                const rec_t *ev = r->v + at;
                size_t n = end - at;
                const char *label;
                json_t *types;
                json_object_foreach(json_object_get(o, "windows"), label,
                                    types) {
                        int64_t span = label_ms(label);
                        int64_t width = (span + OV_K - 1) / OV_K;
                        int64_t a = now - span; /* window (a, now] */
                        int64_t jl = fdiv(a + 1, width);
                        int64_t jh = fdiv(now, width);
                        for (int t = 0; t < T; t++) {
                                const char *tn =
                                    itd_event_type_name((itd_event_type_t)t);
                                json_t *jc = json_object_get(types, tn);
                                cr_assert(json_is_integer(jc), "%s %s %s",
                                          user, label, tn);
                                int64_t got = json_integer_value(jc);
                                int64_t exact = count_in(ev, n, t, a + 1,
                                                         now + 1);
                                int64_t bound = 0;
                                if (n > RING) {
                                        if (jl * width != a + 1)
                                                bound += count_in(
                                                    ev, n, t, jl * width,
                                                    jl * width + width);
                                        if (jh != jl &&
                                            jh * width + width != now + 1)
                                                bound += count_in(
                                                    ev, n, t, jh * width,
                                                    jh * width + width);
                                }
                                int64_t diff = got > exact ? got - exact
                                                           : exact - got;
                                cr_expect_leq(diff, bound,
                                              "user %s window %s %s: dump "
                                              "%" PRId64 ", brute force %"
                                              PRId64 ", allowed error %"
                                              PRId64, user, label, tn, got,
                                              exact, bound);
                                res.cells++;
                                res.inexact += diff != 0;
                                res.nonzero += exact != 0;
                        }
                }
                json_decref(o);
                res.users++;
        }
        free(line);
        fclose(f);
        unlink(out);
        unlink(log);
        rmdir(dir);
        cr_expect_eq(res.users, distinct, "dump has %zu users, input %zu",
                     res.users, distinct);
        return res;
}

Test(it_dump_state, window_counts_of_the_fixture_match_brute_force) {
        char path[1024];
        tu_src("tests/fixtures/events_small.jsonl", path, sizeof(path));
        recs_t r = {0};
        load_jsonl(path, &r);
        cr_assert_gt(r.n, 1000);
        result_t res = check_replay(path, "jsonl", &r);
        cr_log_info("fixture: %zu users, %zu cells, %zu inexact, %zu "
                    "non-zero", res.users, res.cells, res.inexact,
                    res.nonzero);
        cr_expect_gt(res.users, 100);
        cr_expect_gt(res.nonzero, 200, "a dump of zeros proves nothing");
        /* the approximation is the exception */
        cr_expect_lt(res.inexact * 20, res.cells);
        free(r.v);
}

Test(it_dump_state, window_counts_of_the_taobao_slice_match_brute_force) {
        char path[4096];
        if (!tu_shared_data("taobao_userbehavior/UserBehavior.csv.gz", path,
                            sizeof(path)))
                cr_skip_test("taobao_userbehavior: shared data absent");
        recs_t r = {0};
        load_taobao(path, &r);
        cr_assert_gt(r.n, 10000);
        result_t res = check_replay(path, "taobao", &r);
        cr_log_info("taobao: %zu users, %zu cells, %zu inexact, %zu "
                    "non-zero", res.users, res.cells, res.inexact,
                    res.nonzero);
        cr_expect_geq(res.users, 1000);
        cr_expect_gt(res.nonzero, 1000, "a dump of zeros proves nothing");
        cr_expect_lt(res.inexact * 20, res.cells);
        free(r.v);
}
