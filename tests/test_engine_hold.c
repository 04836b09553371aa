/*
 * test_engine_hold.c - the positives the trainer holds wait per partition
 * (core/trainer.c, docs/MODEL.md "Positives wait for their horizon"): the same stream on 8
 * partitions of one engine, fed in event-time order and fed the way a
 * backlog is caught up (each partition in chunks far apart in event
 * time), learns about as well either way.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enginesim.h"

#define N_PARTS 8
#define N_USERS 400
#define N_EV 16000
#define SPAN_MS (48 * 60 * MIN_MS)
#define FEED_BATCH 256

static itd_row_t stream[N_EV], fed[N_EV];

/* N_EV events in event-time order, user u on partition u % N_PARTS; a
 * third of the users browse towards carts and buy, the others mostly
 * browse, so who buys is learnable. */
static void hold_stream(void) {
        uint64_t r = 0x2545F4914F6CDD1DULL;
        int64_t off[N_PARTS] = {0};
        for (size_t i = 0; i < N_EV; i++) {
                r = r * 6364136223846793005ULL + 1442695040888963407ULL;
                uint32_t v = (uint32_t)(r >> 33);
                int u = (int)(v % N_USERS);
                int buyer = u % 3 == 0;
                uint32_t d = (v >> 9) % 100;
                itd_event_type_t type =
                    buyer ? (d < 12   ? ITD_EV_PURCHASE
                             : d < 45 ? ITD_EV_ADD_TO_CART
                                      : ITD_EV_VIEW)
                          : (d < 1    ? ITD_EV_PURCHASE
                             : d < 5  ? ITD_EV_ADD_TO_CART
                             : d < 30 ? ITD_EV_SEARCH
                                      : ITD_EV_VIEW);
                char user[16];
                snprintf(user, sizeof user, "hold%d", u);
                int p = u % N_PARTS;
                set_input(&stream[i], user,
                          T0 + (int64_t)i * SPAN_MS / N_EV, type, p,
                          off[p]++);
        }
}

/* The stream as a backlog is caught up: chunk events of partition 0, of
 * 1, ..., round and round (chunk 0: in event-time order). */
static void order(size_t chunk) {
        if (!chunk) {
                memcpy(fed, stream, sizeof fed);
                return;
        }
        size_t pos[N_PARTS] = {0}, out = 0;
        while (out < N_EV)
                for (int p = 0; p < N_PARTS; p++)
                        for (size_t got = 0; got < chunk && pos[p] < N_EV;
                             pos[p]++)
                                if (stream[pos[p]].partition == p) {
                                        fed[out++] = stream[pos[p]];
                                        got++;
                                }
}

typedef struct run_s {
        double auc;
        itd_engine_stats_t st;
} run_t;

/* Progressive AUC of one engine fed the stream in the order of chunk. */
static run_t run(size_t chunk) {
        order(chunk);
        const kv_t kv[] = {{"model.seed", "1"}};
        itd_conf_t *conf = conf_with(kv, 1);
        char err[256];
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert_not_null(eng, "%s", err);
        for (size_t i = 0; i < N_EV; i += FEED_BATCH) {
                size_t k = N_EV - i < FEED_BATCH ? N_EV - i : FEED_BATCH;
                cr_assert_eq(itd_engine_process(eng, "events", fed + i, k,
                                                itd_now_wall_ms(), NULL, 0),
                             ITD_OK);
        }
        run_t r;
        itd_eval_summary_t s;
        itd_eval_summary(itd_engine_eval(eng), &s);
        r.auc = s.auc;
        itd_engine_stats(eng, &r.st);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
        return r;
}

Test(engine_hold, a_backlog_in_chunks_learns_as_well_as_time_order) {
        hold_stream();
        run_t t = run(0);
        cr_assert(t.auc > 0.6, "time order learns: AUC %.4f", t.auc);
        cr_expect_eq(t.st.late, 0);
        const size_t chunks[] = {500, N_EV / N_PARTS};
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
                run_t b = run(chunks[c]);
                fprintf(stderr, "time order AUC %.4f, chunks of %zu %.4f\n",
                        t.auc, chunks[c], b.auc);
                cr_expect_eq(b.st.late, 0);
                cr_expect_eq(b.st.examples_pos, t.st.examples_pos,
                             "the same positives");
                cr_expect(fabs(b.auc - t.auc) <= 0.015,
                          "chunks of %zu: AUC %.4f, time order %.4f",
                          chunks[c], b.auc, t.auc);
        }
}
