/*
 * enginesim.h - a harness for the engine tests (tests/test_engine*.c):
 * one engine fed a stream in batches of a chosen size, everything it
 * returned kept per input (predictions, outcomes, triggers, lateness) and
 * every judged example the example hook saw; generated streams; and the
 * comparisons of two engines' outputs.
 */
#ifndef INTENTD_ENGINESIM_H
#define INTENTD_ENGINESIM_H

#include <stddef.h>
#include <stdint.h>

#include "conf_parts.h"
#include "intentd/engine.h"
#include "intentd/conf.h"
#include "intentd/log.h"

#define SEC_MS 1000LL
#define MIN_MS 60000LL
#define T0 1700000000000LL
#define HORIZON_MS (30 * MIN_MS) /* labels.horizon of the base config */
#define FAR (24 * 60 * MIN_MS)   /* a watermark step closing every horizon */
#define MAXN 1024                /* inputs one sim_t keeps */

typedef struct kv_s {
        const char *key, *value;
} kv_t;

/* The base config (small model, labels.horizon and session.gap 30m,
 * windows.allowed_lateness 5s), then extra (n pairs; later keys win). */
itd_conf_t *conf_with(const kv_t *extra, size_t n);

/* A resolved, judged example as the example hook saw it. */
typedef struct ex_s {
        int32_t partition; /* with offset: the row it was predicted on */
        int64_t offset;
        uint64_t user_hash;
        int64_t ts_ms;
        float score;
        int label;
        int next;
        float *x; /* dim floats, owned */
        uint32_t ids[ITD_SPARSE_IDS];
} ex_t;

/* One engine and everything it returned, indexed like the stream fed. */
typedef struct sim_s {
        itd_engine_t *eng;
        size_t dim;
        size_t n;                      /* inputs fed so far */
        itd_prediction_t out[MAXN];
        itd_outcome_t oc[MAXN];
        int fired[MAXN];               /* 1: trig[i] holds a record */
        int late[MAXN];                /* 1: counted late (batches of 1
                                        * only) */
        itd_trigger_rec_t trig[MAXN];
        ex_t *ex;                      /* judged examples, in hook order */
        size_t n_ex, cap_ex;
} sim_t;

sim_t *sim_new(const itd_conf_t *conf);
void sim_destroy(sim_t *s);
itd_engine_stats_t sim_stats(const sim_t *s);
/* Feeds in[0..n) in batches of `batch` rows (copies: the caller's rows
 * can feed another engine), appending what came back to what s holds. */
void sim_feed(sim_t *s, const itd_row_t *in, size_t n, size_t batch);
/* Forgets the outputs and examples kept so far (not the engine's state). */
void sim_forget(sim_t *s);
/* The judged example of the prediction at (user, ts), or NULL. */
const ex_t *find_ex(const sim_t *s, const char *user, int64_t ts_ms);

/* A row as decoding leaves it (itd_row_decoded): change the user only
 * through set_input, which hashes it. */
void set_input(itd_row_t *in, const char *user, int64_t ts,
               itd_event_type_t type, int32_t partition, int64_t offset);

/*
 * A deterministic stream of n events over span_ms of event time, of
 * n_users users on two partitions, with categories, items, prices and
 * queries; about one event in 12 is 2 s out of order (within the 5 s
 * lateness) and one in 40 ten minutes late (late on every stream here:
 * the frontier trails the newest event by far less). purchases: the share
 * of events (in 1/100) that are purchases, 0 for none.
 */
void gen_stream(itd_row_t *in, size_t n, int n_users, int64_t span_ms,
                int purchases);

/*
 * Model outputs of two engines that saw the same events agree to float
 * rounding, not bit for bit: one row is scored by a matrix-vector product
 * and several by a matrix product (whose last rows take another kernel),
 * and these round the last bits differently. Everything else a prediction
 * or an example carries (ids, features, labels, categories, model
 * version) must be identical.
 */
int same_score(float a, float b);
/* Every field of a prediction but predicted_at_ms (the wall clock). */
void expect_same_prediction(const itd_prediction_t *a,
                            const itd_prediction_t *b, size_t i,
                            const char *what);
/* What the model saw for one prediction, in two engines. */
void expect_same_inputs(const ex_t *x, const ex_t *y, size_t dim,
                        const char *what, size_t i);
/* Partition p's snapshot (itd_partition_write) in a malloc'd buffer of
 * *len bytes; fails the test when the engine does not hold p. */
char *partition_snapshot(const itd_engine_t *eng, int32_t p, size_t *len);
/* Orders examples by (event time, user hash). */
int ex_cmp(const void *a, const void *b);
/* Same judged examples, in any order: the order of resolution within one
 * batch is the labeler's, not a rule. Sorts both. */
void expect_same_examples(sim_t *a, sim_t *b, const char *what);

#endif
