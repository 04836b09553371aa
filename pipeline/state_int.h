/*
 * state_int.h - private layout of the per-partition state (state.c) shared
 * with the feature extractor (features.c).
 *
 * Memory per user (x86-64, the default 4 windows):
 *   - struct itd_user_s, fixed size: ITD_USER_BYTES (224, checked below);
 *   - one 8-byte slot in the open-addressing table, kept at load <= 0.75
 *     by doubling, but never past what max_users needs at 0.75 (the
 *     capacity need not be a power of two): 8/0.75 .. 8/0.375 bytes, and
 *     ~10.7 once the table holds max_users;
 *   - ids longer than 15 bytes: length + 1 bytes in the id arena;
 *   - users with more than ITD_RING live events (see below) hold one
 *     overflow block of n_windows * ((ITD_OV_K + 1) * 6 * 2 + 8) + 8 bytes
 *     (280 for 4 windows), given back once those events age out.
 * So a light user costs ~237 bytes, a heavy one ~517 while heavy
 * (bench/bench_state.c measures it).
 *
 * Window counts. Each user keeps the ITD_RING most recent events exactly
 * (ms offset from the user's newest event + 4-bit type). An event that
 * must leave a full ring (the oldest) goes, if some window could still
 * count it, into per-window overflow buckets of width ceil(span/ITD_OV_K)
 * aligned to multiples of the width since the Unix epoch. A window count is
 * the exact ring count plus the overflow buckets inside the window, with a
 * bucket that straddles a window boundary counted in proportion to its
 * overlap (rounded). Error: at most the overflowed events of that type in
 * the (at most two) straddling buckets; zero for a user whose live events
 * fit the ring.
 */
#ifndef INTENTD_STATE_INT_H
#define INTENTD_STATE_INT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "intentd/state.h"

#define ITD_RING 12          /* exact recent events per user */
#define ITD_RING_EMPTY 0xFu  /* type nibble of an unused ring entry */
#define ITD_OV_K 4           /* overflow sub-buckets per window span */
#define ITD_AFF_SLOTS 3      /* category affinities kept per user */
#define ITD_CAT_MAX 65535u   /* interned categories per state (ids 1..) */
#define ITD_ID_INLINE 16     /* user id bytes stored in the record */
#define ITD_NIL UINT32_MAX   /* "no user" in LRU links */
#define ITD_NEVER INT32_MIN  /* "never" in per-type last-seen seconds */
/* Largest window + allowed lateness must fit the ring's uint32 ms offsets. */
#define ITD_LIVE_MAX_MS 4000000000LL
/* The event-time frontier follows the newest event times of this many
 * distinct recent users (docs/FEATURES.md, "Watermark"). */
#define ITD_FRONT_USERS 16
/* Affinity scores halve every this many seconds of event time. */
#define ITD_AFF_HALF_LIFE_S (24.0 * 3600.0)

/* Seeds of the 32-bit sparse id hashes, one per field. */
#define ITD_SEED_CAT 0x63617431u
#define ITD_SEED_ITEM 0x6974656du
#define ITD_SEED_TOKEN 0x746f6b31u

/*
 * One user. Times in seconds are relative to st->epoch_ms (int32: +-68
 * years); the ring stores ms. Field order packs the struct without holes.
 */
typedef struct itd_user_s {
        /* NUL-terminated when id[ITD_ID_INLINE-1] == 0; otherwise a
         * uint32 arena offset in bytes 0..3 and id[15] == 1. */
        char id[ITD_ID_INLINE];
        int64_t last_ts;                   /* max event time seen, ms */
        uint64_t ring_type;                /* 4 bits per ring entry */
        uint32_t ring_off[ITD_RING];       /* last_ts - ts, ms */
        uint32_t lru_prev, lru_next;       /* user indices or ITD_NIL */
        uint32_t ov;                       /* overflow block + 1; 0: none */
        int32_t last_sec[ITD_EV__COUNT];   /* latest ts per type, or NEVER */
        int32_t first_sec;                 /* earliest ts seen */
        int32_t sess_start_sec;            /* current session start */
        int32_t aff_sec;                   /* time the scores refer to */
        float aff_score[ITD_AFF_SLOTS];    /* decayed category scores */
        float sess_cart_value;             /* price added - removed */
        float price_mean;                  /* mean viewed price */
        float price_max;                   /* max viewed price */
        uint32_t sess_item_sk;             /* 32-bit linear-counting sketch */
        uint32_t sess_cat_sk;
        uint32_t sp_item[ITD_SPARSE_SLOTS];  /* last distinct items */
        uint32_t sp_tok[ITD_SPARSE_SLOTS];   /* last query tokens */
        uint16_t sp_cat[ITD_SPARSE_SLOTS];   /* last distinct cats (dict) */
        uint16_t aff_cat[ITD_AFF_SLOTS];     /* dict ids, 0: empty */
        /* events per type, lifetime; saturates at 65535 (a log feature:
         * 16 bits keep the record inside its budget) */
        uint16_t life[ITD_EV__COUNT];
        /* saturate at 255 (log features; only bots get there), so the
         * label counts fit the record */
        uint8_t sess_events, priced_views;
        /* this user's resolved predictions and how many were positive
         * (itd_state_label); when lab_n would pass 255 both halve, so the
         * share stays and older labels weigh half */
        uint8_t lab_n, lab_pos;
        uint8_t sess_carts, sess_searches;   /* saturate at 255 */
} itd_user_t;

#define ITD_USER_BYTES 224
_Static_assert(sizeof(itd_user_t) <= ITD_USER_BYTES,
               "per-user record grew past its memory budget");

/* Interned category names: small ids in user records, names for topcats. */
typedef struct itd_catdict_s {
        uint32_t *slots;   /* (hash tag << 16 | id) or 0; cap pow2 */
        size_t cap;
        uint32_t *off;     /* name offset in arena, by id */
        uint32_t *hash;    /* sparse id hash of the name, by id */
        size_t n;          /* ids in use: 1..n */
        size_t off_cap;
        char *arena;
        size_t arena_len, arena_cap;
} itd_catdict_t;

struct itd_state_s {
        itd_state_conf_t conf;
        int64_t max_span_ms;
        int64_t live_ms;             /* max span + lateness */
        int64_t ov_width_ms[ITD_WINDOWS_MAX];

        int64_t epoch_ms;            /* first accepted event; 0 before */
        int have_epoch;
        int64_t max_ts;              /* INT64_MIN before any event */
        int64_t wm;                  /* INT64_MIN before any event */

        /* Event-time frontier: the lower median of the newest event times
         * of the last ITD_FRONT_USERS distinct users with an on-time
         * event, never moving back; INT64_MIN until two users agree. One
         * user (or one bad clock) cannot move it. */
        int64_t frontier;
        uint32_t front_n;
        uint32_t front_tag[ITD_FRONT_USERS];  /* arrival order, oldest 1st */
        int64_t front_ts[ITD_FRONT_USERS];    /* that user's newest time */
        int64_t front_sorted[ITD_FRONT_USERS]; /* front_ts ascending */

        /* open addressing, linear probing: slot = tag << 32 | (index + 1);
         * a tag's home is itd_state_home */
        uint64_t *slots;
        size_t slot_cap;             /* 1024 .. 2^32, any size */

        itd_user_t *users;           /* dense 0..n_users-1 */
        size_t n_users, users_cap;
        uint32_t lru_head, lru_tail; /* most / least recently updated */

        char *ids;                   /* arena of long user ids */
        size_t ids_len, ids_cap, ids_garbage;

        unsigned char *ov;           /* overflow blocks */
        size_t ov_bytes;             /* bytes per block */
        size_t ov_n, ov_cap;         /* blocks carved / allocated */
        uint32_t ov_free;            /* free list head (+1), 0: empty */

        itd_catdict_t cats;

        /* resolved predictions of every user of the partition and how
         * many were positive, events accepted and how many were
         * purchases: the priors of label_logodds and purchase_logodds */
        double lab_n, lab_pos;
        double ev_n, ev_pos;

        itd_state_stats_t stats;
};

/* Values of the user before the event was applied (for recency). */
typedef struct itd_prev_s {
        int is_new;
        int64_t last_ts;
        int32_t last_sec[ITD_EV__COUNT];
        uint16_t cat;               /* this event's interned category */
} itd_prev_t;

/* state.c */
int32_t itd_state_sec(const itd_state_t *st, int64_t ts_ms);
/* Inserts v into the ascending a[0..n-1] (a has room for n + 1). */
void itd_state_sorted_insert(int64_t *a, uint32_t n, int64_t v);
void itd_user_counts(const itd_state_t *st, const itd_user_t *u,
                     int64_t now_ms, uint32_t *counts);
/* Gives the user's overflow block back, if it has one. */
void itd_state_ov_release(itd_state_t *st, itd_user_t *u);
const char *itd_catdict_name(const itd_catdict_t *cd, uint16_t id);
/* Interned id of name (0: not interned), or 0 with *at (when not NULL)
 * the free slot where it would go. */
uint16_t itd_catdict_find(const itd_catdict_t *cd, const char *name,
                          uint32_t hash, size_t *at);

/* state_table.c */
const char *itd_user_id(const itd_state_t *st, const itd_user_t *u);
/* The record of user_id, borrowed until the next change to st; NULL when
 * the user is not held. */
const itd_user_t *itd_state_user_get(const itd_state_t *st,
                                     const char *user_id);
/* The same, found faster right after itd_state_update took an event of
 * user_id (the user it updated is the most recently updated one). */
const itd_user_t *itd_state_user_last(const itd_state_t *st,
                                      const char *user_id);
/* A user with no events yet, first seen at ts (no id, no links). */
void itd_state_user_init(const itd_state_t *st, itd_user_t *u, int64_t ts);
/* Adds user id (table tag tag) first seen at ts, evicting the least
 * recently updated user at max_users; returns its index. */
uint32_t itd_state_user_create(itd_state_t *st, const char *id, uint32_t tag,
                               int64_t ts);
/* Removes user idx; the last record moves into its place. */
void itd_state_user_evict(itd_state_t *st, uint32_t idx);
/* state.c: the user with tag leaves the recent users behind the frontier
 * (erasure); the frontier itself never moves back. */
void itd_state_front_forget(itd_state_t *st, uint32_t tag);

/* state_snap.c */
/* "5m", "1h", "1d": the shortest exact unit, for names and dumps. */
const char *itd_state_window_label(const itd_state_conf_t *conf, size_t w,
                                   char *buf, size_t cap);

/* The user table's lookup and LRU steps, inline: the path of every event
 * (state.c) takes them, and so do the table and restore. */

static inline uint32_t itd_state_tag(uint64_t user_hash) {
        return (uint32_t)(user_hash >> 32);
}

static inline uint32_t itd_state_id_tag(const char *id) {
        return itd_state_tag(itd_user_hash(id));
}

/* First slot a tag probes: the tag scaled to the capacity (a multiply, not
 * a mask, so the table can stop growing at what max_users needs rather than
 * at the next power of two). */
static inline size_t itd_state_home(const itd_state_t *st, uint32_t tag) {
        return (size_t)(((uint64_t)tag * st->slot_cap) >> 32);
}

static inline size_t itd_state_slot_next(const itd_state_t *st, size_t pos) {
        return pos + 1 == st->slot_cap ? 0 : pos + 1;
}

/* Slot position holding id, or (when absent) the empty slot ending the
 * probe; *found says which. */
static inline size_t itd_state_probe(const itd_state_t *st, const char *id,
                                     uint32_t tag, int *found) {
        size_t pos = itd_state_home(st, tag);
        for (;;) {
                uint64_t s = st->slots[pos];
                if (s == 0) {
                        *found = 0;
                        return pos;
                }
                if ((uint32_t)(s >> 32) == tag) {
                        const itd_user_t *u = &st->users[(uint32_t)s - 1];
                        if (strcmp(itd_user_id(st, u), id) == 0) {
                                *found = 1;
                                return pos;
                        }
                }
                pos = itd_state_slot_next(st, pos);
        }
}

static inline void itd_state_lru_unlink(itd_state_t *st, uint32_t idx) {
        itd_user_t *u = &st->users[idx];
        if (u->lru_prev != ITD_NIL)
                st->users[u->lru_prev].lru_next = u->lru_next;
        else
                st->lru_head = u->lru_next;
        if (u->lru_next != ITD_NIL)
                st->users[u->lru_next].lru_prev = u->lru_prev;
        else
                st->lru_tail = u->lru_prev;
}

static inline void itd_state_lru_push_front(itd_state_t *st, uint32_t idx) {
        itd_user_t *u = &st->users[idx];
        u->lru_prev = ITD_NIL;
        u->lru_next = st->lru_head;
        if (st->lru_head != ITD_NIL)
                st->users[st->lru_head].lru_prev = idx;
        st->lru_head = idx;
        if (st->lru_tail == ITD_NIL)
                st->lru_tail = idx;
}

/* features.c */
void itd_features_extract(const itd_state_t *st, const itd_user_t *u,
                          const itd_prev_t *prev, const itd_event_t *ev,
                          float *x, uint32_t *ids, itd_topcats_t *top);
/* 32-bit sparse id of s for a field seed, never ITD_SPARSE_NONE. */
uint32_t itd_sparse_hash(const char *s, uint32_t seed);

#endif
