/*
 * labeler_helpers.h - helpers of test_labeler.c and test_labeler_policy.c:
 * features and predictions added by user and time, a small configuration,
 * random operations, a labeler's snapshot as bytes and restored from them.
 */
#ifndef INTENTD_LABELER_HELPERS_H
#define INTENTD_LABELER_HELPERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "intentd/labeler.h"

#define H 1800000LL   /* 30 min horizon */
#define GAP 600000LL  /* 10 min session gap */

static inline itd_labeler_t *make(size_t max_pending, size_t per_user) {
        itd_labeler_conf_t c = {.dim = 3,
                                .n_ids = 2,
                                .horizon_ms = H,
                                .session_gap_ms = GAP,
                                .max_pending = max_pending,
                                .max_pending_per_user = per_user};
        itd_labeler_t *lb = itd_labeler_new(&c, NULL, 0);
        cr_assert_not_null(lb);
        return lb;
}

static inline itd_err_t add(itd_labeler_t *lb, uint64_t user, int64_t ts) {
        float x[3] = {(float)ts, 1, 2};
        uint32_t ids[2] = {(uint32_t)user, 7};
        float probs[ITD_NEXT__COUNT] = {0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
        /* offset: the event time, so an example says which add it is */
        return itd_labeler_add(lb, user, ts, ts, x, ids, 0.25f, probs);
}

/* One step of a seeded stream of labeler calls; equal times are common so
 * the heaps' tie order matters. */
static inline void random_op(itd_labeler_t *lb, unsigned *seed, int64_t *now,
                             itd_example_t *ex, size_t *n_ex) {
        int r = rand_r(seed) % 100;
        uint64_t user = (uint64_t)(rand_r(seed) % 40) * 0x9E3779B97F4A7C15u;
        *now += (rand_r(seed) % 4) * 5000;
        int64_t ts = *now - (rand_r(seed) % 3) * 30000;
        *n_ex = 0;
        if (r < 45) {
                itd_labeler_observe(lb, user, ts,
                                    (itd_event_type_t)(rand_r(seed) % 6));
                float x[3] = {(float)rand_r(seed), (float)ts, 0.5f};
                uint32_t ids[2] = {(uint32_t)rand_r(seed), 9};
                float probs[ITD_NEXT__COUNT] = {0.1f, 0.2f, 0.3f, 0.3f, 0.1f};
                itd_labeler_add(lb, user, ts, ts, x, ids,
                                (float)(rand_r(seed) % 100) / 100.0f, probs);
        } else if (r < 75) {
                itd_labeler_observe(lb, user, ts,
                                    (itd_event_type_t)(rand_r(seed) % 6));
        } else if (r < 90) {
                itd_labeler_advance(lb, *now - 40 * 60000);
        } else {
                *n_ex = itd_labeler_take(lb, ex, 1 + rand_r(seed) % 16);
        }
}

static inline unsigned char *labeler_bytes(const itd_labeler_t *lb,
                                           size_t *len) {
        char *buf = NULL;
        FILE *f = open_memstream(&buf, len);
        char err[256] = "";
        cr_assert_eq(itd_labeler_snapshot(lb, f, err, sizeof(err)), ITD_OK,
                     "%s", err);
        fclose(f);
        return (unsigned char *)buf;
}

/* The status of the last labeler_from call. */
static itd_err_t restored_code;

static inline itd_labeler_t *labeler_from(const unsigned char *buf, size_t len,
                                          const itd_labeler_conf_t *c,
                                          char *err, size_t cap) {
        FILE *f = fmemopen((void *)buf, len ? len : 1, "r");
        cr_assert_not_null(f);
        if (!len)
                fgetc(f);
        itd_labeler_t *lb;
        restored_code = itd_labeler_restore(f, c, &lb, err, cap);
        cr_expect_eq(restored_code == ITD_OK, lb != NULL,
                     "a labeler exactly when ITD_OK");
        fclose(f);
        return lb;
}

static inline itd_labeler_conf_t small_conf(void) {
        itd_labeler_conf_t c = {.dim = 3, .n_ids = 2, .horizon_ms = H,
                                .session_gap_ms = GAP, .max_pending = 1500,
                                .max_pending_per_user = 6};
        return c;
}

#endif
