/*
 * state.c - per-partition user state: the user table, event-time windows,
 * the watermark, TTL and LRU eviction, and the category dictionary.
 *
 * Users live in one dense array of fixed-size records (state_int.h gives
 * the byte budget); an open-addressing table maps the user id to its index.
 * Both grow by doubling, so steady state allocates nothing per event. An
 * evicted user's hole is filled by moving the last record into it, which
 * keeps the array dense for dumps and snapshots.
 *
 * LRU order is update order (a doubly linked list through the records).
 * Because applied events are never older than the watermark, update order
 * and last-event-time order differ by at most the allowed lateness, except
 * for users whose clock runs ahead of the partition's frontier; the TTL
 * sweep uses that bound to stop early and walks past such users (see
 * sweep_idle).
 *
 * Snapshots (state_snap.c) write the arrays as they are, one section
 * each, behind a header with the layout, configuration and sizes, under
 * CRC32C (intentd/frame.h); restore
 * rebuilds the hash tables, so a restored state is the same state.
 *
 * This file holds the path of one event (the frontier, the ring and its
 * overflow buckets, the category dictionary, what the event changes in
 * the user's record); state_table.c the state itself (configuration, user
 * ids, the hash table, user lifecycle and the TTL sweep, lookups);
 * state_snap.c the dump and snapshots; state_int.h what they share.
 *
 * @thread pipeline thread only; no locks.
 */
#include "state_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/mem.h"

/* Event times beyond +-2^62 ms would overflow the window arithmetic. */
#define TS_LIMIT (INT64_C(1) << 62)
#define TYPES ITD_EV__COUNT

static int64_t floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0)))
                q--;
        return q;
}

static int64_t pos_mod(int64_t a, int64_t b) {
        int64_t r = a % b;
        return r < 0 ? r + b : r;
}

int32_t itd_state_sec(const itd_state_t *st, int64_t ts_ms) {
        int64_t s = floor_div(ts_ms - st->epoch_ms, 1000);
        if (s <= INT32_MIN)
                return INT32_MIN + 1; /* INT32_MIN means "never" */
        if (s > INT32_MAX)
                return INT32_MAX;
        return (int32_t)s;
}

/* ------------------------------------------------------- the frontier */

static void sorted_remove(int64_t *a, uint32_t n, int64_t v) {
        uint32_t i = 0;
        while (i < n && a[i] != v)
                i++;
        if (i < n)
                memmove(a + i, a + i + 1, (n - 1 - i) * sizeof(*a));
}

void itd_state_sorted_insert(int64_t *a, uint32_t n, int64_t v) {
        uint32_t i = n;
        while (i > 0 && a[i - 1] > v) {
                a[i] = a[i - 1];
                i--;
        }
        a[i] = v;
}

/* Entry i of the n recent users leaves (the ones after it move up). */
static void front_remove(itd_state_t *st, uint32_t i, uint32_t n) {
        sorted_remove(st->front_sorted, n, st->front_ts[i]);
        memmove(st->front_tag + i, st->front_tag + i + 1,
                (n - 1 - i) * sizeof(*st->front_tag));
        memmove(st->front_ts + i, st->front_ts + i + 1,
                (n - 1 - i) * sizeof(*st->front_ts));
}

void itd_state_front_forget(itd_state_t *st, uint32_t tag) {
        uint32_t n = st->front_n;
        for (uint32_t i = 0; i < n;) {
                if (st->front_tag[i] != tag) {
                        i++;
                        continue;
                }
                front_remove(st, i, n);
                n--;
                /* a snapshot writes front_n entries; the rest is wiped all
                 * the same */
                st->front_tag[n] = 0;
                st->front_ts[n] = 0;
                st->front_sorted[n] = 0;
        }
        st->front_n = n;
}

/*
 * An on-time event of the user with tag moves that user's entry to the
 * newest place (keeping the user's newest time); a new user pushes out
 * the least recent one. The frontier becomes the lower median of the
 * entries once two users are in it: a minority of users with clocks ahead
 * (up to half of the last 16) cannot pull it forward, and a single user
 * counts once however many events it sends. In an in-order stream it
 * trails the newest event by about 8 users' arrivals.
 */
static void front_note(itd_state_t *st, uint32_t tag, int64_t ts) {
        uint32_t n = st->front_n, i = 0;
        while (i < n && st->front_tag[i] != tag)
                i++;
        if (i < n || n == ITD_FRONT_USERS) {
                if (i == n)
                        i = 0; /* a new user: the least recent one leaves */
                else if (st->front_ts[i] > ts)
                        ts = st->front_ts[i];
                front_remove(st, i, n);
                n--;
        }
        st->front_tag[n] = tag;
        st->front_ts[n] = ts;
        itd_state_sorted_insert(st->front_sorted, n, ts);
        st->front_n = ++n;
        if (n >= 2 && st->front_sorted[(n - 1) / 2] > st->frontier)
                st->frontier = st->front_sorted[(n - 1) / 2];
}

/* The oldest event time a window still holds: the watermark less the
 * largest window. Before the first watermark (INT64_MIN: fewer than two
 * users seen) every event is still inside, and the subtraction would
 * overflow. */
static int64_t window_floor(const itd_state_t *st) {
        return st->wm < INT64_MIN + st->max_span_ms ? INT64_MIN
                                                    : st->wm - st->max_span_ms;
}

/* ----------------------------------------------------- overflow blocks */

static int64_t *ov_heads(const itd_state_t *st, uint32_t blk) {
        return (int64_t *)(void *)(st->ov + (size_t)blk * st->ov_bytes);
}

static uint16_t *ov_counts(const itd_state_t *st, uint32_t blk) {
        return (uint16_t *)(void *)(st->ov + (size_t)blk * st->ov_bytes +
                                    8 * st->conf.n_windows + 8);
}

static uint32_t ov_alloc(itd_state_t *st) {
        uint32_t blk;
        if (st->ov_free) {
                blk = st->ov_free - 1;
                memcpy(&st->ov_free, st->ov + (size_t)blk * st->ov_bytes,
                       sizeof(uint32_t));
        } else {
                if (st->ov_n == st->ov_cap) {
                        st->ov_cap = st->ov_cap ? st->ov_cap * 2 : 64;
                        st->ov = itd_xrealloc(st->ov,
                                              st->ov_cap * st->ov_bytes);
                }
                blk = (uint32_t)st->ov_n++;
        }
        size_t W = st->conf.n_windows;
        int64_t *head = ov_heads(st, blk);
        for (size_t w = 0; w <= W; w++) /* head[W] is "newest" */
                head[w] = INT64_MIN;
        memset(ov_counts(st, blk), 0, W * (ITD_OV_K + 1) * TYPES * 2);
        return blk;
}

void itd_state_ov_release(itd_state_t *st, itd_user_t *u) {
        if (!u->ov)
                return;
        uint32_t blk = u->ov - 1;
        memcpy(st->ov + (size_t)blk * st->ov_bytes, &st->ov_free,
               sizeof(uint32_t));
        st->ov_free = blk + 1;
        u->ov = 0;
}

/* Adds an event that left the ring to the coarse per-window buckets. */
static void ov_add(itd_state_t *st, itd_user_t *u, int64_t ts,
                   unsigned type) {
        if (!u->ov)
                u->ov = ov_alloc(st) + 1;
        uint32_t blk = u->ov - 1;
        size_t W = st->conf.n_windows;
        int64_t *head = ov_heads(st, blk);
        uint16_t *cnt = ov_counts(st, blk);
        const int64_t nb = ITD_OV_K + 1;
        for (size_t w = 0; w < W; w++) {
                int64_t j = floor_div(ts, st->ov_width_ms[w]);
                uint16_t *cw = cnt + w * nb * TYPES;
                if (head[w] == INT64_MIN || j > head[w]) {
                        /* buckets between the old head and j start empty */
                        int64_t steps = head[w] == INT64_MIN ? nb : j - head[w];
                        if (steps > nb)
                                steps = nb;
                        for (int64_t s = 0; s < steps; s++)
                                memset(cw + pos_mod(j - s, nb) * TYPES, 0,
                                       TYPES * 2);
                        head[w] = j;
                } else if (j <= head[w] - nb) {
                        continue; /* older than any window can reach */
                }
                uint16_t *c = cw + pos_mod(j, nb) * TYPES + type;
                if (*c < UINT16_MAX)
                        (*c)++;
        }
        if (ts > head[W])
                head[W] = ts;
}

/* ------------------------------------------------------------- ring */

static unsigned ring_get_type(const itd_user_t *u, int i) {
        return (unsigned)(u->ring_type >> (4 * i)) & 0xFu;
}

static void ring_set_type(itd_user_t *u, int i, unsigned type) {
        u->ring_type &= ~((uint64_t)0xF << (4 * i));
        u->ring_type |= (uint64_t)type << (4 * i);
}

/* The user's newest event moves to ts: offsets grow; entries no window can
 * count any more (older than watermark - max span) are dropped. */
static void ring_shift(itd_state_t *st, itd_user_t *u, int64_t ts) {
        int64_t d = ts - u->last_ts;
        for (int i = 0; i < ITD_RING; i++) {
                if (ring_get_type(u, i) == ITD_RING_EMPTY)
                        continue;
                int64_t off = (int64_t)u->ring_off[i] + d;
                if (off > st->live_ms)
                        ring_set_type(u, i, ITD_RING_EMPTY);
                else
                        u->ring_off[i] = (uint32_t)off;
        }
        u->last_ts = ts;
}

static void ring_insert(itd_state_t *st, itd_user_t *u, int64_t ts,
                        unsigned type) {
        uint32_t off = (uint32_t)(u->last_ts - ts);
        int oldest = -1;
        for (int i = 0; i < ITD_RING; i++) {
                if (ring_get_type(u, i) == ITD_RING_EMPTY) {
                        u->ring_off[i] = off;
                        ring_set_type(u, i, type);
                        return;
                }
                if (oldest < 0 || u->ring_off[i] > u->ring_off[oldest])
                        oldest = i;
        }
        /* full: the oldest of ring + new event leaves the ring */
        int64_t vts = ts;
        unsigned vtype = type;
        if (u->ring_off[oldest] > off) {
                vts = u->last_ts - u->ring_off[oldest];
                vtype = ring_get_type(u, oldest);
                u->ring_off[oldest] = off;
                ring_set_type(u, oldest, type);
        }
        if (vts > window_floor(st))
                ov_add(st, u, vts, vtype);
}

void itd_user_counts(const itd_state_t *st, const itd_user_t *u,
                     int64_t now_ms, uint32_t *counts) {
        size_t W = st->conf.n_windows;
        memset(counts, 0, W * TYPES * sizeof(*counts));
        for (int i = 0; i < ITD_RING; i++) {
                unsigned type = ring_get_type(u, i);
                if (type == ITD_RING_EMPTY)
                        continue;
                int64_t ts = u->last_ts - u->ring_off[i];
                if (ts > now_ms)
                        continue;
                for (size_t w = 0; w < W; w++)
                        if (ts > now_ms - st->conf.window_ms[w])
                                counts[w * TYPES + type]++;
        }
        if (!u->ov)
                return;
        const int64_t *head = ov_heads(st, u->ov - 1);
        const uint16_t *cnt = ov_counts(st, u->ov - 1);
        const int64_t nb = ITD_OV_K + 1;
        int64_t newest = head[W];
        for (size_t w = 0; w < W; w++) {
                if (head[w] == INT64_MIN)
                        continue;
                int64_t width = st->ov_width_ms[w];
                int64_t a = now_ms - st->conf.window_ms[w]; /* (a, now] */
                int64_t b = pos_mod(head[w] - nb + 1, nb);
                for (int64_t j = head[w] - nb + 1; j <= head[w];
                     j++, b = b + 1 == nb ? 0 : b + 1) {
                        /* overflowed events are never newer than the
                         * newest one, which narrows the head bucket */
                        int64_t lo = j * width, hi = lo + width;
                        if (hi > newest + 1)
                                hi = newest + 1;
                        if (hi <= lo)
                                continue;
                        int64_t span = hi - lo;
                        int64_t l = lo > a + 1 ? lo : a + 1;
                        int64_t h = hi < now_ms + 1 ? hi : now_ms + 1;
                        if (h <= l)
                                continue;
                        const uint16_t *c = cnt + (w * nb + b) * TYPES;
                        for (int t = 0; t < TYPES; t++) {
                                if (!c[t])
                                        continue;
                                /* a straddling bucket counts in proportion
                                 * to its overlap: the one approximation */
                                counts[w * TYPES + t] +=
                                    h - l == span
                                        ? c[t]
                                        : (uint32_t)((c[t] * (h - l) +
                                                      span / 2) / span);
                        }
                }
        }
}

/* --------------------------------------------------------- categories */

uint32_t itd_sparse_hash(const char *s, uint32_t seed) {
        uint32_t h = (uint32_t)itd_hash_str(s, seed);
        return h == ITD_SPARSE_NONE ? ITD_SPARSE_NONE - 1 : h;
}

const char *itd_catdict_name(const itd_catdict_t *cd, uint16_t id) {
        return cd->arena + cd->off[id];
}

static void catdict_grow(itd_catdict_t *cd) {
        size_t cap = cd->cap * 2;
        uint32_t *slots = itd_xcalloc(cap, sizeof(*slots));
        for (size_t i = 0; i < cd->cap; i++) {
                if (!cd->slots[i])
                        continue;
                size_t pos = cd->hash[cd->slots[i] & 0xFFFF] & (cap - 1);
                while (slots[pos])
                        pos = (pos + 1) & (cap - 1);
                slots[pos] = cd->slots[i];
        }
        free(cd->slots);
        cd->slots = slots;
        cd->cap = cap;
}

uint16_t itd_catdict_find(const itd_catdict_t *cd, const char *name,
                          uint32_t hash, size_t *at) {
        size_t mask = cd->cap - 1;
        size_t pos = hash & mask;
        uint32_t tag = hash >> 16;
        for (;;) {
                uint32_t s = cd->slots[pos];
                if (!s)
                        break;
                uint16_t id = (uint16_t)(s & 0xFFFF);
                if ((s >> 16) == (tag & 0xFFFF) &&
                    strcmp(cd->arena + cd->off[id], name) == 0)
                        return id;
                pos = (pos + 1) & mask;
        }
        if (at)
                *at = pos;
        return 0;
}

/* Interned id of a category name; 0 for "" or once the dictionary holds
 * ITD_CAT_MAX names (such categories get no per-user memory). */
static uint16_t catdict_intern(itd_catdict_t *cd, const char *name,
                               uint32_t hash) {
        if (!name[0])
                return 0;
        size_t pos = 0;
        uint16_t found = itd_catdict_find(cd, name, hash, &pos);
        if (found)
                return found;
        uint32_t tag = hash >> 16;
        if (cd->n >= ITD_CAT_MAX)
                return 0;
        uint16_t id = (uint16_t)(++cd->n);
        if (cd->n >= cd->off_cap) {
                size_t old = cd->off_cap;
                cd->off_cap *= 2;
                cd->off = itd_xrealloc(cd->off, cd->off_cap * sizeof(uint32_t));
                cd->hash = itd_xrealloc(cd->hash,
                                        cd->off_cap * sizeof(uint32_t));
                memset(cd->off + old, 0,
                       (cd->off_cap - old) * sizeof(uint32_t));
                memset(cd->hash + old, 0,
                       (cd->off_cap - old) * sizeof(uint32_t));
        }
        size_t len = strlen(name) + 1;
        while (cd->arena_len + len > cd->arena_cap) {
                cd->arena_cap *= 2;
                cd->arena = itd_xrealloc(cd->arena, cd->arena_cap);
        }
        memcpy(cd->arena + cd->arena_len, name, len);
        cd->off[id] = (uint32_t)cd->arena_len;
        cd->hash[id] = hash;
        cd->arena_len += len;
        cd->slots[pos] = (tag & 0xFFFF) << 16 | id;
        if (cd->n * 2 > cd->cap)
                catdict_grow(cd);
        return id;
}

/* ------------------------------------------------------- apply event */

static void push_front_u32(uint32_t *a, uint32_t v) {
        int i = 0;
        while (i < ITD_SPARSE_SLOTS - 1 && a[i] != v)
                i++;
        /* v found at i (or i is the last slot, which is dropped) */
        memmove(a + 1, a, (size_t)i * sizeof(*a));
        a[0] = v;
}

static void push_front_u16(uint16_t *a, uint16_t v) {
        int i = 0;
        while (i < ITD_SPARSE_SLOTS - 1 && a[i] != v)
                i++;
        memmove(a + 1, a, (size_t)i * sizeof(*a));
        a[0] = v;
}

/* Up to ITD_SPARSE_SLOTS space-separated tokens of the query, first token
 * in slot 0, then the tokens of earlier queries. */
static void push_query(itd_user_t *u, const char *q) {
        uint32_t tok[ITD_SPARSE_SLOTS];
        int n = 0;
        char buf[ITD_QUERY_MAX];
        while (*q && n < ITD_SPARSE_SLOTS) {
                while (*q == ' ')
                        q++;
                size_t len = strcspn(q, " ");
                if (!len)
                        break;
                if (len >= sizeof(buf))
                        len = sizeof(buf) - 1;
                memcpy(buf, q, len);
                buf[len] = '\0';
                q += len;
                uint32_t h = itd_sparse_hash(buf, ITD_SEED_TOKEN);
                int dup = 0;
                for (int i = 0; i < n; i++)
                        dup |= tok[i] == h;
                if (!dup)
                        tok[n++] = h;
        }
        for (int i = n - 1; i >= 0; i--)
                push_front_u32(u->sp_tok, tok[i]);
}

static const float aff_weight[ITD_EV__COUNT] = {
    [ITD_EV_VIEW] = 1.0f,        [ITD_EV_SEARCH] = 1.0f,
    [ITD_EV_ADD_TO_CART] = 3.0f, [ITD_EV_REMOVE_FROM_CART] = 0.0f,
    [ITD_EV_PURCHASE] = 5.0f,    [ITD_EV_FAVORITE] = 2.0f};

static void affinity_add(itd_user_t *u, uint16_t cat, int32_t sec,
                         float weight) {
        if (!cat || weight <= 0.0f)
                return;
        double dt = (double)sec - (double)u->aff_sec;
        if (dt > 0) {
                float f = (float)exp2(-dt / ITD_AFF_HALF_LIFE_S);
                for (int i = 0; i < ITD_AFF_SLOTS; i++)
                        u->aff_score[i] *= f;
                u->aff_sec = sec;
        } else if (dt < 0) {
                weight *= (float)exp2(dt / ITD_AFF_HALF_LIFE_S);
        }
        int slot = -1, low = 0;
        for (int i = 0; i < ITD_AFF_SLOTS; i++) {
                if (u->aff_cat[i] == cat)
                        slot = i;
                /* an empty slot first, else the weakest score */
                if (!u->aff_cat[low])
                        continue;
                if (!u->aff_cat[i] || u->aff_score[i] < u->aff_score[low])
                        low = i;
        }
        if (slot >= 0) {
                u->aff_score[slot] += weight;
        } else {
                u->aff_cat[low] = cat;
                u->aff_score[low] = weight;
        }
}

static uint32_t sketch_bit(uint32_t h) { return 1u << (h >> 27); }

static void user_apply(itd_state_t *st, itd_user_t *u, const itd_event_t *ev,
                       const itd_prev_t *prev, uint32_t cat_hash,
                       uint32_t item_hash) {
        int32_t sec = itd_state_sec(st, ev->ts_ms);
        unsigned type = (unsigned)ev->type;
        if (u->life[type] < UINT16_MAX)
                u->life[type]++;
        if (u->last_sec[type] == ITD_NEVER || sec > u->last_sec[type])
                u->last_sec[type] = sec;
        if (sec < u->first_sec)
                u->first_sec = sec;

        if (prev->is_new ||
            ev->ts_ms > prev->last_ts + st->conf.session_gap_ms) {
                u->sess_start_sec = sec;
                u->sess_events = u->sess_carts = u->sess_searches = 0;
                u->sess_cart_value = 0.0f;
                u->sess_item_sk = u->sess_cat_sk = 0;
        } else if (sec < u->sess_start_sec) {
                u->sess_start_sec = sec; /* out of order, same session */
        }
        if (u->sess_events < UINT8_MAX)
                u->sess_events++;
        int has_price = isfinite(ev->price) && ev->price >= 0.0;
        if (type == ITD_EV_ADD_TO_CART) {
                if (u->sess_carts < UINT8_MAX)
                        u->sess_carts++;
                if (has_price)
                        u->sess_cart_value += (float)ev->price;
        } else if (type == ITD_EV_REMOVE_FROM_CART && has_price) {
                u->sess_cart_value -= (float)ev->price;
                if (u->sess_cart_value < 0.0f)
                        u->sess_cart_value = 0.0f;
        } else if (type == ITD_EV_SEARCH && u->sess_searches < UINT8_MAX) {
                u->sess_searches++;
        }
        if (type == ITD_EV_VIEW && has_price) {
                if (u->priced_views < UINT8_MAX)
                        u->priced_views++;
                u->price_mean += ((float)ev->price - u->price_mean) /
                                 (float)u->priced_views;
                if ((float)ev->price > u->price_max)
                        u->price_max = (float)ev->price;
        }
        if (ev->item_id[0]) {
                u->sess_item_sk |= sketch_bit(item_hash);
                push_front_u32(u->sp_item, item_hash);
        }
        if (ev->category[0]) {
                u->sess_cat_sk |= sketch_bit(cat_hash);
                if (prev->cat)
                        push_front_u16(u->sp_cat, prev->cat);
        }
        if (type == ITD_EV_SEARCH && ev->query[0])
                push_query(u, ev->query);
        affinity_add(u, prev->cat, sec, aff_weight[type]);
}

/* ------------------------------------------------------------ update */

itd_err_t itd_state_update(itd_state_t *st, const itd_event_t *ev,
                           uint64_t user_hash, float *x, uint32_t *ids,
                           itd_topcats_t *top) {
        int64_t ts = ev->ts_ms;
        if ((int)ev->type < 0 || ev->type >= ITD_EV__COUNT)
                return ITD_ERR_ARG;
        if (ts < -TS_LIMIT || ts > TS_LIMIT)
                return ITD_ERR_RANGE;
        if (ts < st->wm) {
                st->stats.late_events++;
                return ITD_ERR_RANGE;
        }
        if (!st->have_epoch) {
                st->epoch_ms = ts;
                st->have_epoch = 1;
        }
        if (ts > st->max_ts)
                st->max_ts = ts;
        st->ev_n += 1.0;
        if (ev->type == ITD_EV_PURCHASE)
                st->ev_pos += 1.0;

        /* At a million users every step below misses the cache: start the
         * slot load, hash while it is in flight, then fetch the record's
         * lines (and its overflow block) together rather than one by one. */
        uint32_t tag = itd_state_tag(user_hash);
        __builtin_prefetch(&st->slots[itd_state_home(st, tag)]);
        front_note(st, tag, ts);
        if (st->frontier != INT64_MIN &&
            st->frontier - st->conf.allowed_lateness_ms > st->wm)
                st->wm = st->frontier - st->conf.allowed_lateness_ms;
        uint32_t cat_hash = ev->category[0]
                                ? itd_sparse_hash(ev->category, ITD_SEED_CAT)
                                : ITD_SPARSE_NONE;
        uint32_t item_hash = ev->item_id[0]
                                 ? itd_sparse_hash(ev->item_id, ITD_SEED_ITEM)
                                 : ITD_SPARSE_NONE;
        int found;
        size_t pos = itd_state_probe(st, ev->user_id, tag, &found);
        uint32_t idx = found ? (uint32_t)st->slots[pos] - 1
                             : itd_state_user_create(st, ev->user_id, tag, ts);
        itd_user_t *u = &st->users[idx];
        for (size_t off = 64; off < sizeof(*u); off += 64)
                __builtin_prefetch((const char *)u + off, 1);
        /* the LRU move at the end writes both neighbours: random users */
        if (u->lru_prev != ITD_NIL)
                __builtin_prefetch(&st->users[u->lru_prev].lru_next, 1);
        if (u->lru_next != ITD_NIL)
                __builtin_prefetch(&st->users[u->lru_next].lru_prev, 1);
        if (u->ov)
                for (size_t off = 0; off < st->ov_bytes; off += 64)
                        __builtin_prefetch(st->ov + (size_t)(u->ov - 1) *
                                                        st->ov_bytes + off,
                                           1);
        itd_prev_t prev;
        prev.is_new = !found;
        prev.last_ts = u->last_ts;
        memcpy(prev.last_sec, u->last_sec, sizeof(prev.last_sec));
        prev.cat = catdict_intern(&st->cats, ev->category, cat_hash);

        if (ts > u->last_ts)
                ring_shift(st, u, ts);
        /* The ring holds offsets from the user's newest event up to the
         * largest window plus the lateness. An event further behind its
         * user's newest one (whose clock ran ahead of the partition) has
         * no place in the ring: it counts in no window, the rest of the
         * user's state takes it. */
        if (u->last_ts - ts <= st->live_ms)
                ring_insert(st, u, ts, (unsigned)ev->type);
        if (u->ov &&
            ov_heads(st, u->ov - 1)[st->conf.n_windows] <= window_floor(st))
                itd_state_ov_release(st, u); /* its events left every window */
        user_apply(st, u, ev, &prev, cat_hash, item_hash);
        itd_features_extract(st, u, &prev, ev, x, ids, top);
        /* last, so the neighbours' prefetches above had time to land */
        if (st->lru_head != idx) {
                itd_state_lru_unlink(st, idx);
                itd_state_lru_push_front(st, idx);
        }
        return ITD_OK;
}

itd_err_t itd_state_peek(const itd_state_t *st, const itd_event_t *ev,
                         uint64_t user_hash, float *x, uint32_t *ids,
                         itd_topcats_t *top) {
        if ((int)ev->type < 0 || ev->type >= ITD_EV__COUNT)
                return ITD_ERR_ARG;
        if (ev->ts_ms < -TS_LIMIT || ev->ts_ms > TS_LIMIT)
                return ITD_ERR_RANGE;
        /* Before any event there is no time reference; the event's own
         * time serves (the state itself stays as it is). */
        itd_state_t tmp;
        if (!st->have_epoch) {
                tmp = *st;
                tmp.epoch_ms = ev->ts_ms;
                tmp.have_epoch = 1;
                st = &tmp;
        }
        uint32_t tag = itd_state_tag(user_hash);
        int found;
        size_t pos = itd_state_probe(st, ev->user_id, tag, &found);
        itd_user_t fresh;
        const itd_user_t *u;
        if (found) {
                u = &st->users[(uint32_t)st->slots[pos] - 1];
        } else {
                itd_state_user_init(st, &fresh, ev->ts_ms);
                u = &fresh;
        }
        itd_prev_t prev;
        prev.is_new = !found;
        prev.last_ts = u->last_ts;
        memcpy(prev.last_sec, u->last_sec, sizeof(prev.last_sec));
        prev.cat = ev->category[0]
                       ? itd_catdict_find(&st->cats, ev->category,
                                          itd_sparse_hash(ev->category,
                                                          ITD_SEED_CAT),
                                          NULL)
                       : 0;
        itd_features_extract(st, u, &prev, ev, x, ids, top);
        return ITD_OK;
}

/* Reading the slot may stall on a miss, but consecutive calls are
 * independent, so the core keeps several in flight; by the time the batch
 * is updated, slots and records are (mostly) cached. */
void itd_state_prefetch(const itd_state_t *st, uint64_t user_hash) {
        uint32_t tag = itd_state_tag(user_hash);
        const uint64_t *slot = &st->slots[itd_state_home(st, tag)];
        __builtin_prefetch(slot);
        uint64_t s = *slot;
        if (s && (uint32_t)(s >> 32) == tag) {
                const char *u = (const char *)&st->users[(uint32_t)s - 1];
                for (size_t off = 0; off < sizeof(itd_user_t); off += 64)
                        __builtin_prefetch(u + off, 1);
        }
}

