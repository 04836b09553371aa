/*
 * state_helpers.h - helpers of test_state.c and test_state_snapshot.c:
 * the default windows, events by user and time, user names short and
 * long, a state's snapshot as bytes.
 */
#ifndef INTENTD_STATE_HELPERS_H
#define INTENTD_STATE_HELPERS_H

#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "intentd/event.h"
#include "intentd/state.h"
#include "state_int.h"
#include "testutil.h"

#define T ITD_EV__COUNT
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

static inline itd_state_conf_t default_conf(void) {
        itd_state_conf_t c = {
            .n_windows = 4,
            .window_ms = {5 * MIN_MS, HOUR_MS, DAY_MS, 7 * DAY_MS},
            .allowed_lateness_ms = 60000,
            .session_gap_ms = 30 * MIN_MS,
            .idle_ttl_ms = 30 * DAY_MS,
            .max_users = 1000000,
        };
        return c;
}

static inline void make_event(itd_event_t *ev, const char *user, int64_t ts,
                              int type) {
        itd_event_clear(ev);
        snprintf(ev->user_id, sizeof(ev->user_id), "%s", user);
        ev->ts_ms = ts;
        ev->type = (itd_event_type_t)type;
}

static inline itd_err_t feed(itd_state_t *st, const char *user, int64_t ts,
                             int type) {
        itd_event_t ev;
        make_event(&ev, user, ts, type);
        float x[512];
        uint32_t ids[ITD_SPARSE_IDS];
        return itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL);
}

static inline const char *short_name(int u, char *buf) {
        sprintf(buf, "u%d", u);
        return buf;
}

static inline const char *long_name(int u, char *buf) {
        sprintf(buf, "customer-0000-0000-0000-%012d", u);
        return buf;
}

/* Snapshot of st as bytes (caller frees). */
static inline unsigned char *snapshot_bytes(const itd_state_t *st,
                                            size_t *len) {
        char *buf = NULL;
        FILE *f = open_memstream(&buf, len);
        char err[256] = "";
        cr_assert_eq(itd_state_snapshot(st, f, err, sizeof(err)), ITD_OK,
                     "%s", err);
        fclose(f);
        return (unsigned char *)buf;
}

#endif
