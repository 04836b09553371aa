/*
 * test_trainer.c - the trainer (core/include/intentd/trainer.h) through
 * its interface: what is judged and what is learned from, one optimizer
 * step per full mini-batch, positives held until their horizon closes,
 * each partition's on its own clock, and its snapshot (round trip,
 * refusals, the partitions' clocks, versions 1 to 3 still read).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "intentd/bytes.h"
#include "intentd/frame.h"
#include "intentd/trainer.h"

#define DIM 4
#define N_IDS 2
#define BATCH 3

typedef struct fix_s {
        itd_model_t *model;
        itd_trainer_t *tr;
} fix_t;

static fix_t make_hold(size_t batch, size_t hold_cap) {
        char err[256];
        itd_model_conf_t mc;
        itd_model_conf_defaults(&mc, ITD_MODEL_KIND_MLP, DIM, 1, N_IDS);
        mc.mlp.max_batch = 16;
        fix_t f;
        f.model = itd_model_new(&mc, err, sizeof err);
        cr_assert_not_null(f.model, "%s", err);
        itd_trainer_conf_t tc = {.dim = DIM, .n_ids = N_IDS, .batch = batch,
                                 .threshold = 0.5f, .hold_cap = hold_cap};
        f.tr = itd_trainer_new(&tc, f.model, err, sizeof err);
        cr_assert_not_null(f.tr, "%s", err);
        return f;
}

static fix_t make(size_t batch) { return make_hold(batch, 0); }

static void fix_free(fix_t *f) {
        itd_trainer_destroy(f->tr);
        itd_model_destroy(f->model);
}

/* Example i: judged and trained as told, label i % 2. */
static itd_example_t example(int i, int judge, int train, float *x,
                             uint32_t *ids) {
        for (int d = 0; d < DIM; d++)
                x[d] = (float)(i + d) / 10.0f;
        ids[0] = (uint32_t)i;
        ids[1] = ITD_SPARSE_NONE;
        itd_example_t ex = {.x = x, .ids = ids, .ts_ms = i, .offset = i,
                            .score = 0.25f, .label = i % 2,
                            .next = ITD_NEXT_VIEW, .judge = judge,
                            .train = train};
        return ex;
}

static void add(fix_t *f, int i, int judge, int train) {
        float x[DIM];
        uint32_t ids[N_IDS];
        itd_example_t ex = example(i, judge, train, x, ids);
        itd_trainer_add(f->tr, &ex);
}

Test(trainer, judges_what_is_judged_and_learns_what_is_trained) {
        fix_t f = make(BATCH);
        add(&f, 0, 1, 1);
        add(&f, 1, 1, 0); /* judged only (a final negative, fake_negative) */
        add(&f, 2, 0, 1); /* trained only (a fake negative) */
        itd_eval_summary_t s;
        itd_eval_summary(itd_trainer_eval(f.tr), &s);
        cr_expect_eq(s.n, 2, "judged: %llu", (unsigned long long)s.n);
        itd_trainer_stats_t st;
        itd_trainer_stats(f.tr, &st);
        cr_expect_eq(st.queued, 2);
        cr_expect_eq(st.examples_pos + st.examples_neg, 2);
        cr_expect_eq(itd_model_steps(f.model), 0, "no step before a full "
                     "mini-batch");
        add(&f, 3, 1, 1);
        itd_trainer_stats(f.tr, &st);
        cr_expect_eq(st.queued, 0);
        cr_expect_eq(itd_model_steps(f.model), 1, "one step per mini-batch");
        cr_expect_eq(itd_trainer_publish(f.tr), 1,
                     "the published version is the steps so far");
        add(&f, 4, 1, 1);
        itd_trainer_flush(f.tr);
        cr_expect_eq(itd_model_steps(f.model), 2, "flush steps on the rest");
        itd_trainer_flush(f.tr);
        cr_expect_eq(itd_model_steps(f.model), 2, "nothing left to step on");
        fix_free(&f);
}

/* A trained, judged example of partition p at ts_ms with this label. */
static void add_in(fix_t *f, int32_t p, int64_t ts_ms, int label) {
        float x[DIM];
        uint32_t ids[N_IDS];
        itd_example_t ex = example(label, 1, 1, x, ids);
        ex.ts_ms = ts_ms;
        ex.partition = p;
        itd_trainer_add(f->tr, &ex);
}

/* A trained, judged example of time ts_ms with this label, partition 0. */
static void add_at(fix_t *f, int64_t ts_ms, int label) {
        add_in(f, 0, ts_ms, label);
}

static itd_trainer_stats_t stats_of(const fix_t *f) {
        itd_trainer_stats_t st;
        itd_trainer_stats(f->tr, &st);
        return st;
}

static size_t queued(const fix_t *f) {
        return (size_t)stats_of(f).queued;
}

static size_t held(const fix_t *f) {
        return (size_t)stats_of(f).held;
}

Test(trainer, a_positive_waits_until_its_horizon_has_closed) {
        fix_t f = make_hold(100, 2);
        add_at(&f, 0, 1);
        cr_expect_eq(queued(&f), 1, "no negative yet: learned at once");
        add_at(&f, 10, 0);
        cr_expect_eq(queued(&f), 2);
        add_at(&f, 100, 1);
        cr_expect_eq(queued(&f), 2, "held");
        add_at(&f, 50, 0);
        cr_expect_eq(queued(&f), 3, "an earlier negative does not free it");
        add_at(&f, 100, 0);
        cr_expect_eq(queued(&f), 5, "a negative of its time frees it");
        /* full: the oldest held one goes */
        add_at(&f, 200, 1);
        add_at(&f, 300, 1);
        cr_expect_eq(queued(&f), 5);
        add_at(&f, 400, 1);
        cr_expect_eq(queued(&f), 6, "the oldest learned when full");
        itd_trainer_stats_t st;
        itd_trainer_stats(f.tr, &st);
        cr_expect_eq(st.examples_pos, 5, "counted when taken");
        cr_expect_eq(st.examples_neg, 3);
        fix_free(&f);
}

/* The snapshot of n trainers as one (itd_trainer_write_all). */
static char *written_all(const fix_t *const *fs, size_t n,
                         const itd_trainer_extra_t *extra, size_t *len) {
        const itd_trainer_t *trs[4];
        for (size_t i = 0; i < n; i++)
                trs[i] = fs[i]->tr;
        char *buf = NULL, err[256];
        FILE *mem = open_memstream(&buf, len);
        cr_assert_not_null(mem);
        cr_assert_eq(itd_trainer_write_all(trs, n, extra, mem, err,
                                           sizeof err),
                     ITD_OK, "%s", err);
        fclose(mem);
        return buf;
}

static char *written(const fix_t *f, const itd_trainer_extra_t *extra,
                     size_t *len) {
        const fix_t *one[] = {f};
        return written_all(one, 1, extra, len);
}

Test(trainer, snapshot_round_trip_and_refusals) {
        fix_t a = make(BATCH), b = make(BATCH);
        add(&a, 0, 1, 1);
        add(&a, 1, 1, 1);
        itd_trainer_extra_t extra = {.events = 7, .predictions = 6,
                                     .late = 1}, back = {0};
        size_t len;
        char *buf = written(&a, &extra, &len), err[256];

        cr_assert_eq(itd_trainer_read(b.tr, buf, len, 1, &back, err,
                                      sizeof err), ITD_OK, "%s", err);
        cr_expect_eq(back.events, 7);
        cr_expect_eq(back.predictions, 6);
        cr_expect_eq(back.late, 1);
        itd_trainer_stats_t sa, sb;
        itd_trainer_stats(a.tr, &sa);
        itd_trainer_stats(b.tr, &sb);
        cr_expect_eq(sb.queued, sa.queued);
        cr_expect_eq(sb.examples_pos, sa.examples_pos);
        cr_expect_eq(sb.examples_neg, sa.examples_neg);
        /* the same next example fills both mini-batches: both step */
        add(&a, 2, 1, 1);
        add(&b, 2, 1, 1);
        cr_expect_eq(itd_model_steps(a.model), 1);
        cr_expect_eq(itd_model_steps(b.model), 1);

        /* a flipped byte anywhere is refused by class, nothing applied */
        for (size_t at = 0; at < len; at += 7) {
                buf[at] ^= 0x10;
                itd_err_t e = itd_trainer_read(b.tr, buf, len, 0, &back, err,
                                               sizeof err);
                cr_expect(e == ITD_ERR_CORRUPT || e == ITD_ERR_INCOMPATIBLE,
                          "byte %zu: %d", at, (int)e);
                buf[at] ^= 0x10;
        }
        cr_expect_eq(itd_trainer_read(b.tr, buf, len - 1, 0, &back, err,
                                      sizeof err), ITD_ERR_CORRUPT);
        free(buf);

        /* another feature width is another build: incompatible */
        fix_t c = make(BATCH);
        itd_trainer_destroy(c.tr);
        itd_trainer_conf_t tc = {.dim = DIM + 1, .n_ids = N_IDS,
                                 .batch = BATCH, .threshold = 0.5f};
        c.tr = itd_trainer_new(&tc, c.model, err, sizeof err);
        buf = written(&a, &extra, &len);
        cr_expect_eq(itd_trainer_read(c.tr, buf, len, 0, &back, err,
                                      sizeof err), ITD_ERR_INCOMPATIBLE);
        free(buf);
        fix_free(&a);
        fix_free(&b);
        fix_free(&c);
}

Test(trainer, held_positives_are_in_the_snapshot) {
        fix_t a = make_hold(BATCH, 4), b = make_hold(BATCH, 4);
        add_at(&a, 0, 0);
        add_at(&a, 100, 1);
        add_at(&a, 100, 1);
        cr_expect_eq(queued(&a), 1);
        itd_trainer_extra_t extra = {0}, back;
        size_t len;
        char *buf = written(&a, &extra, &len), err[256];
        cr_assert_eq(itd_trainer_read(b.tr, buf, len, 1, &back, err,
                                      sizeof err), ITD_OK, "%s", err);
        cr_expect_eq(queued(&b), 1, "the negative queued, both positives "
                     "held again");
        /* the clock came along: a negative of their time frees both, in
         * both trainers */
        add_at(&a, 100, 0);
        add_at(&b, 100, 0);
        cr_expect_eq(itd_model_steps(a.model), 1);
        cr_expect_eq(itd_model_steps(b.model), 1);
        cr_expect_eq(queued(&b), queued(&a));
        free(buf);
        fix_free(&a);
        fix_free(&b);
}

Test(trainer, a_version_1_snapshot_is_read) {
        /* version 1: the header and the mini-batch's rows, nothing held */
        size_t row = DIM * sizeof(float) + N_IDS * sizeof(uint32_t) +
                     sizeof(float) + sizeof(int32_t);
        size_t len = 8 + 9 * 8 + row + 8;
        unsigned char *buf = calloc(1, len), *w = buf + 8 + 9 * 8;
        uint64_t head[9] = {1, DIM, N_IDS, 1, 7, 6, 1, 0, 1};
        memcpy(buf, "ITDTRAIN", 8);
        memcpy(buf + 8, head, sizeof head);
        float x[DIM] = {0.1f, 0.2f, 0.3f, 0.4f}, y = 0.0f;
        uint32_t ids[N_IDS] = {3, ITD_SPARSE_NONE};
        int32_t next = ITD_NEXT_VIEW;
        memcpy(w, x, sizeof x);
        memcpy(w + sizeof x, ids, sizeof ids);
        memcpy(w + sizeof x + sizeof ids, &y, sizeof y);
        memcpy(w + sizeof x + sizeof ids + sizeof y, &next, sizeof next);
        uint64_t h = XXH64(buf, len - 8, 0);
        memcpy(buf + len - 8, &h, 8);
        fix_t f = make_hold(BATCH, 4);
        itd_trainer_extra_t back;
        char err[256];
        cr_assert_eq(itd_trainer_read(f.tr, buf, len, 1, &back, err,
                                      sizeof err), ITD_OK, "%s", err);
        cr_expect_eq(queued(&f), 1);
        cr_expect_eq(back.events, 7);
        free(buf);
        fix_free(&f);
}

/* One legacy row (x, ids, y, next) at w; returns the byte after it. */
static unsigned char *legacy_row(unsigned char *w, float base, uint32_t id,
                                 float y) {
        float x[DIM];
        for (int d = 0; d < DIM; d++)
                x[d] = base + (float)d / 10.0f;
        uint32_t ids[N_IDS] = {id, ITD_SPARSE_NONE};
        int32_t next = ITD_NEXT_VIEW;
        memcpy(w, x, sizeof x);
        w += sizeof x;
        memcpy(w, ids, sizeof ids);
        w += sizeof ids;
        memcpy(w, &y, sizeof y);
        w += sizeof y;
        memcpy(w, &next, sizeof next);
        return w + sizeof next;
}

Test(trainer, a_version_2_snapshot_with_held_positives_is_read) {
        /* version 2 (before the one framing): one queued negative, then
         * the hold's clock and two held positives, each a row and its
         * ts_ms; XXH64 last, the host's byte order */
        size_t row = DIM * sizeof(float) + N_IDS * sizeof(uint32_t) +
                     sizeof(float) + sizeof(int32_t);
        size_t len = 8 + 9 * 8 + row + 16 + 2 * (row + 8) + 8;
        unsigned char *buf = calloc(1, len), *w = buf + 8 + 9 * 8;
        uint64_t head[9] = {2, DIM, N_IDS, 1, 9, 8, 0, 2, 1};
        memcpy(buf, "ITDTRAIN", 8);
        memcpy(buf + 8, head, sizeof head);
        w = legacy_row(w, 0.0f, 1, 0.0f);
        uint64_t hn = 2;
        int64_t clock_ms = 0, ts[2] = {100, 100};
        memcpy(w, &hn, 8);
        memcpy(w + 8, &clock_ms, 8);
        w += 16;
        for (int i = 0; i < 2; i++) {
                w = legacy_row(w, 1.0f, 2, 1.0f);
                memcpy(w, &ts[i], 8);
                w += 8;
        }
        uint64_t h = XXH64(buf, len - 8, 0);
        memcpy(buf + len - 8, &h, 8);
        fix_t f = make_hold(BATCH, 4);
        itd_trainer_extra_t back;
        char err[256];
        cr_assert_eq(itd_trainer_read(f.tr, buf, len, 1, &back, err,
                                      sizeof err), ITD_OK, "%s", err);
        cr_expect_eq(queued(&f), 1, "the negative queued, both held");
        cr_expect_eq(back.events, 9);
        cr_expect_eq(back.predictions, 8);
        itd_trainer_stats_t st;
        itd_trainer_stats(f.tr, &st);
        cr_expect_eq(st.examples_pos, 2);
        cr_expect_eq(st.examples_neg, 1);
        /* a negative of their time frees both: the batch of 3 fills */
        add_at(&f, 100, 0);
        cr_expect_eq(itd_model_steps(f.model), 1);
        /* what it writes now is the one framing, read back the same */
        itd_trainer_extra_t extra = {.events = 9};
        size_t len3;
        char *buf3 = written(&f, &extra, &len3);
        cr_expect_eq(memcmp(buf3, "ITDCKPT", 8), 0);
        cr_expect_eq(buf3[8], 4, "version 4");
        fix_t g = make_hold(BATCH, 4);
        cr_expect_eq(itd_trainer_read(g.tr, buf3, len3, 1, &back, err,
                                      sizeof err), ITD_OK, "%s", err);
        /* damaged: refused, and the message says what */
        buf3[len3 / 2] ^= 0x01;
        cr_expect_eq(itd_trainer_read(g.tr, buf3, len3, 0, &back, err,
                                      sizeof err), ITD_ERR_CORRUPT);
        cr_expect(strstr(err, "trainer snapshot") != NULL, "%s", err);
        free(buf3);
        free(buf);
        fix_free(&f);
        fix_free(&g);
}

Test(trainer, an_empty_mini_batch_is_refused) {
        char err[256];
        itd_trainer_conf_t tc = {.dim = DIM, .n_ids = N_IDS, .batch = 0};
        cr_expect_null(itd_trainer_new(&tc, NULL, err, sizeof err));
        cr_expect(strstr(err, "mini-batch"), "%s", err);
}


Test(trainer, each_partition_holds_its_positives_on_its_own_clock) {
        fix_t f = make_hold(100, 8);
        add_in(&f, 0, 100, 0);
        add_in(&f, 1, 5000, 0); /* partition 1 is ahead in event time */
        add_in(&f, 1, 6000, 1);
        add_in(&f, 0, 200, 1);
        cr_expect_eq(held(&f), 2);
        add_in(&f, 0, 200, 0);
        cr_expect_eq(held(&f), 1, "partition 0's freed by its own clock, "
                     "though partition 1's arrived before it");
        add_in(&f, 2, 50, 1);
        cr_expect_eq(held(&f), 1, "no negative of partition 2 yet: "
                     "learned at once");
        add_in(&f, 0, 9000, 0);
        cr_expect_eq(held(&f), 1, "another partition's clock frees none");
        add_in(&f, 1, 6000, 0);
        cr_expect_eq(held(&f), 0);
        fix_free(&f);
        /* a full hold learns the oldest of all partitions at once */
        fix_t g = make_hold(100, 2);
        add_in(&g, 0, 0, 0);
        add_in(&g, 1, 0, 0);
        add_in(&g, 1, 10, 1);
        add_in(&g, 0, 20, 1);
        size_t q = queued(&g);
        add_in(&g, 0, 30, 1);
        cr_expect_eq(queued(&g), q + 1, "partition 1's, the oldest");
        add_in(&g, 1, 10, 0);
        cr_expect_eq(held(&g), 2, "partition 1 holds nothing now");
        add_in(&g, 0, 20, 0);
        cr_expect_eq(held(&g), 1);
        fix_free(&g);
}

Test(trainer, the_snapshot_keeps_each_partitions_clock_and_held) {
        /* two workers' trainers as one: per partition the earliest clock */
        fix_t a = make_hold(100, 8), b = make_hold(100, 8);
        add_in(&a, 0, 100, 0);
        add_in(&a, 0, 200, 1);
        add_in(&b, 0, 150, 0);
        add_in(&b, 1, 500, 0);
        add_in(&b, 1, 600, 1);
        const fix_t *both[] = {&a, &b};
        size_t len;
        itd_trainer_extra_t none = {0};
        char *buf = written_all(both, 2, &none, &len);
        cr_expect_eq(buf[8], 4, "version 4");
        fix_t c = make_hold(100, 8);
        itd_trainer_extra_t back;
        char err[256];
        cr_assert_eq(itd_trainer_read(c.tr, buf, len, 1, &back, err,
                                      sizeof err), ITD_OK, "%s", err);
        cr_expect_eq(held(&c), 2);
        add_in(&c, 1, 600, 0);
        cr_expect_eq(held(&c), 1, "partition 1's freed by its clock");
        add_in(&c, 0, 199, 0);
        cr_expect_eq(held(&c), 1);
        add_in(&c, 0, 200, 0);
        cr_expect_eq(held(&c), 0);
        /* a partition with a clock and nothing held keeps its clock */
        add_in(&c, 0, 250, 1);
        cr_expect_eq(held(&c), 1, "partition 0 has a clock: held");
        free(buf);
        fix_free(&a);
        fix_free(&b);
        fix_free(&c);
}

Test(trainer, a_version_3_snapshot_with_one_clock_is_read) {
        /* version 3 as it was written: one clock (100) for all
         * partitions, two held positives (150, 300) without theirs */
        uint64_t words[10] = {DIM, N_IDS, 0, 2, 100, 5, 4, 0, 2, 1};
        uint8_t hdr[sizeof words];
        for (size_t i = 0; i < 10; i++)
                itd_put_le64(hdr + 8 * i, words[i]);
        float hx[2 * DIM] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
        uint32_t hids[2 * N_IDS] = {1, ITD_SPARSE_NONE, 2, ITD_SPARSE_NONE};
        uint32_t hnext[2] = {ITD_NEXT_VIEW, ITD_NEXT_VIEW};
        uint64_t hts[2] = {150, 300};
        itd_frame_buf_t fb = {0};
        itd_frame_buf_begin(&fb, 3, ITD_FRAME_TRAINER, hdr, sizeof hdr);
        itd_frame_buf_section(&fb, "x", ITD_FRAME_F32, hx, 0);
        itd_frame_buf_section(&fb, "ids", ITD_FRAME_U32, hids, 0);
        itd_frame_buf_section(&fb, "y", ITD_FRAME_F32, hx, 0);
        itd_frame_buf_section(&fb, "next", ITD_FRAME_U32, hnext, 0);
        itd_frame_buf_section(&fb, "held_x", ITD_FRAME_F32, hx, sizeof hx);
        itd_frame_buf_section(&fb, "held_ids", ITD_FRAME_U32, hids,
                              sizeof hids);
        itd_frame_buf_section(&fb, "held_next", ITD_FRAME_U32, hnext,
                              sizeof hnext);
        itd_frame_buf_section(&fb, "held_ts", ITD_FRAME_U64, hts, sizeof hts);
        itd_frame_buf_end(&fb);
        fix_t f = make_hold(100, 8);
        itd_trainer_extra_t back;
        char err[256];
        cr_assert_eq(itd_trainer_read(f.tr, fb.buf, fb.len, 1, &back, err,
                                      sizeof err), ITD_OK, "%s", err);
        cr_expect_eq(back.events, 5);
        cr_expect_eq(held(&f), 2);
        /* its held ones are freed by any partition's negatives, as then */
        add_in(&f, 3, 150, 0);
        cr_expect_eq(held(&f), 1);
        /* a partition first seen starts with the saved clock: held */
        add_in(&f, 5, 400, 1);
        cr_expect_eq(held(&f), 2);
        add_in(&f, 7, 300, 0);
        cr_expect_eq(held(&f), 1, "the old one freed, partition 5's not");
        add_in(&f, 5, 400, 0);
        cr_expect_eq(held(&f), 0);
        /* and written again as version 4, read back the same */
        size_t len;
        itd_trainer_extra_t extra = {0};
        char *buf = written(&f, &extra, &len);
        cr_expect_eq(buf[8], 4);
        cr_expect_eq(itd_trainer_read(f.tr, buf, len, 0, &back, err,
                                      sizeof err), ITD_OK, "%s", err);
        free(buf);
        itd_frame_buf_fini(&fb);
        fix_free(&f);
}
