/*
 * test_it_workers.c - `intentd replay` with two workers against one, end
 * to end through the binary, on a simulated stream: every event gets a
 * prediction, the users' state equals one worker's (state does not depend
 * on the model), the progressive AUC is within 0.01 of one worker's, and
 * two runs with two workers agree exactly (deterministic for a given
 * count).
 *
 * The state is compared as of one watermark. A partition's watermark is
 * a median over its most recent users (docs/FEATURES.md), so one
 * partition and two end at slightly different ones; the stream ends with
 * 64 new users a day after the last simulated event, which puts every
 * partition's watermark at that same time.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define RUN_MS 240000
#define CLOSERS 64

typedef struct {
        char json[512], dump[512], log[512];
} outs_t;

/* The simulated stream plus the closing users, into dir/events.jsonl. */
static void make_input(const char *dir, char *input, size_t cap) {
        char sim[512], log[512];
        snprintf(sim, sizeof sim, "%s/sim.jsonl", dir);
        snprintf(log, sizeof log, "%s/simulate.log", dir);
        char *argv[] = {ITD_BINARY, "simulate", "--users", "3000", "--days",
                        "1", "--seed", "3", "--out", sim, NULL};
        cr_assert_eq(tu_run(argv, log, RUN_MS), 0, "simulate failed");
        char *text = tu_read_file(sim); /* without the last newline */
        cr_assert_not_null(text);
        size_t len = strlen(text);
        cr_assert(len > 1);
        const char *last = strrchr(text, '\n');
        json_error_t jerr;
        json_t *ev = json_loads(last ? last + 1 : text, 0, &jerr);
        cr_assert_not_null(ev, "last line: %s", jerr.text);
        json_int_t ts = json_integer_value(json_object_get(ev, "ts"));
        cr_assert(ts > 0);
        json_decref(ev);

        snprintf(input, cap, "%s/events.jsonl", dir);
        FILE *f = fopen(input, "w");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(text, 1, len, f), len);
        fputc('\n', f);
        for (int i = 0; i < CLOSERS; i++)
                fprintf(f,
                        "{\"event_id\":\"close-%d\",\"user_id\":\"close-%d\","
                        "\"ts\":%lld,\"type\":\"VIEW\",\"item_id\":\"i1\","
                        "\"category\":\"c1\",\"price\":1.0,"
                        "\"session_id\":\"close-%d\"}\n",
                        i, i, (long long)ts + 86400000LL, i);
        cr_assert_eq(fclose(f), 0);
        free(text);
        unlink(sim);
        unlink(log);
}

static void replay(const char *dir, const char *input, int workers,
                   const char *tag, outs_t *o) {
        char opt[64];
        snprintf(opt, sizeof opt, "pipeline.workers=%d", workers);
        snprintf(o->json, sizeof o->json, "%s/%s.json", dir, tag);
        snprintf(o->dump, sizeof o->dump, "%s/%s.state", dir, tag);
        snprintf(o->log, sizeof o->log, "%s/%s.log", dir, tag);
        char *argv[] = {ITD_BINARY, "replay", "--input", (char *)input,
                        "--report", o->json, "--dump-state", o->dump,
                        "--resamples", "0", "-o", opt, NULL};
        int rc = tu_run(argv, o->log, RUN_MS);
        char *log = tu_read_file(o->log);
        cr_assert_eq(rc, 0, "replay with %d workers exited %d: %s", workers,
                     rc, log ? log : "");
        free(log);
}

static json_t *load(const char *path) {
        json_error_t jerr;
        json_t *doc = json_load_file(path, 0, &jerr);
        cr_assert_not_null(doc, "%s: %s", path, jerr.text);
        return doc;
}

static double num(const json_t *doc, const char *a, const char *b) {
        const json_t *v = json_object_get(json_object_get(doc, a), b);
        cr_assert(json_is_number(v), "%s.%s missing", a, b);
        return json_number_value(v);
}

static double auc(const json_t *doc) {
        const json_t *v = json_object_get(
            json_object_get(json_object_get(doc, "engine"), "summary"),
            "auc");
        cr_assert(json_is_number(v), "engine.summary.auc missing");
        return json_number_value(v);
}

static int by_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The dump's lines, sorted (each worker writes its users in id order). */
static char **sorted_lines(char *text, size_t *n) {
        size_t cap = 1024;
        char **v = malloc(cap * sizeof *v);
        *n = 0;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save)) {
                if (*n == cap)
                        v = realloc(v, (cap *= 2) * sizeof *v);
                v[(*n)++] = l;
        }
        qsort(v, *n, sizeof *v, by_str);
        return v;
}

Test(it_workers, two_workers_predict_everything_and_keep_state_and_auc) {
        char dir[256], input[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        make_input(dir, input, sizeof input);
        outs_t one, two, again;
        replay(dir, input, 1, "one", &one);
        replay(dir, input, 2, "two", &two);
        replay(dir, input, 2, "again", &again);
        json_t *r1 = load(one.json), *r2 = load(two.json);
        json_t *r3 = load(again.json);

        /* every event predicted, with either count */
        double events = num(r1, "input", "events");
        cr_assert(events > 10000, "%g events", events);
        cr_assert_eq(num(r2, "input", "events"), events);
        cr_assert_eq(num(r1, "engine", "predictions"), events);
        cr_assert_eq(num(r2, "engine", "predictions"), events);
        cr_assert_eq(num(r2, "config", "pipeline.workers"), 2);

        /* one model's quality from two replicas */
        double a1 = auc(r1), a2 = auc(r2);
        cr_assert(a1 > 0.6, "AUC with one worker %g", a1);
        cr_assert(fabs(a1 - a2) < 0.01, "AUC: one worker %.4f, two %.4f",
                  a1, a2);
        /* deterministic for a given count */
        cr_assert_eq(auc(r3), a2, "two runs with two workers: %.6f, %.6f",
                     a2, auc(r3));
        cr_assert_eq(num(r3, "engine", "train_steps"),
                     num(r2, "engine", "train_steps"));

        /* the same users with the same windows */
        char *t1 = tu_read_file(one.dump), *t2 = tu_read_file(two.dump);
        cr_assert(t1 && t2);
        size_t n1, n2;
        char **l1 = sorted_lines(t1, &n1), **l2 = sorted_lines(t2, &n2);
        cr_assert(n1 > 1000, "%zu users", n1);
        cr_assert_eq(n1, n2, "users: one worker %zu, two %zu", n1, n2);
        for (size_t i = 0; i < n1; i++)
                cr_assert_str_eq(l1[i], l2[i], "user line %zu", i);
        free(l1);
        free(l2);
        free(t1);
        free(t2);
        json_decref(r1);
        json_decref(r2);
        json_decref(r3);

        outs_t *all[] = {&one, &two, &again};
        for (size_t i = 0; i < 3; i++) {
                unlink(all[i]->json);
                unlink(all[i]->dump);
                unlink(all[i]->log);
        }
        unlink(input);
        rmdir(dir);
}
