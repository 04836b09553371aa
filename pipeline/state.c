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
 * Snapshots (end of file) write the arrays as they are, behind a header
 * with the layout, configuration, sizes and XXH64 checksums; restore
 * rebuilds the hash tables, so a restored state is the same state.
 *
 * @thread pipeline thread only; no locks.
 */
#include "state_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/mem.h"
#include "snap_int.h"

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

/* ------------------------------------------------------------------ conf */

itd_err_t itd_state_conf_check(const itd_state_conf_t *conf, char *errstr,
                               size_t errstr_size) {
#define BAD(...)                                                          \
        do {                                                              \
                if (errstr && errstr_size)                                \
                        snprintf(errstr, errstr_size, __VA_ARGS__);       \
                return ITD_ERR_CONF;                                      \
        } while (0)
        if (conf->n_windows < 1 || conf->n_windows > ITD_WINDOWS_MAX)
                BAD("state.n_windows: %zu is outside 1..%d", conf->n_windows,
                    ITD_WINDOWS_MAX);
        for (size_t w = 0; w < conf->n_windows; w++) {
                if (conf->window_ms[w] < 1)
                        BAD("state.window_ms[%zu]: %" PRId64
                            " is not a positive duration", w,
                            conf->window_ms[w]);
                if (w > 0 && conf->window_ms[w] <= conf->window_ms[w - 1])
                        BAD("state.window_ms[%zu]: %" PRId64
                            " is not greater than the previous window %" PRId64
                            " (windows must ascend)", w, conf->window_ms[w],
                            conf->window_ms[w - 1]);
        }
        if (conf->allowed_lateness_ms < 0 ||
            conf->allowed_lateness_ms > 86400000)
                BAD("state.allowed_lateness_ms: %" PRId64
                    " is outside 0..86400000 (1 day)",
                    conf->allowed_lateness_ms);
        int64_t live = conf->window_ms[conf->n_windows - 1] +
                       conf->allowed_lateness_ms;
        if (live > ITD_LIVE_MAX_MS)
                BAD("state.window_ms[%zu]: %" PRId64 " plus allowed lateness "
                    "exceeds %" PRId64 " ms (46 days), the ring's range",
                    conf->n_windows - 1, conf->window_ms[conf->n_windows - 1],
                    (int64_t)ITD_LIVE_MAX_MS);
        if (conf->session_gap_ms < 1 || conf->session_gap_ms > ITD_LIVE_MAX_MS)
                BAD("state.session_gap_ms: %" PRId64 " is outside 1..%" PRId64,
                    conf->session_gap_ms, (int64_t)ITD_LIVE_MAX_MS);
        if (conf->idle_ttl_ms < 1)
                BAD("state.idle_ttl_ms: %" PRId64 " is not a positive duration",
                    conf->idle_ttl_ms);
        if (conf->max_users < 1 || conf->max_users > (size_t)INT32_MAX)
                BAD("state.max_users: %zu is outside 1..%d", conf->max_users,
                    INT32_MAX);
#undef BAD
        return ITD_OK;
}

/* ------------------------------------------------------- new / destroy */

itd_state_t *itd_state_new(const itd_state_conf_t *conf, char *errstr,
                           size_t errstr_size) {
        if (itd_state_conf_check(conf, errstr, errstr_size) != ITD_OK)
                return NULL;
        itd_state_t *st = itd_xcalloc(1, sizeof(*st));
        st->conf = *conf;
        st->max_span_ms = conf->window_ms[conf->n_windows - 1];
        st->live_ms = st->max_span_ms + conf->allowed_lateness_ms;
        for (size_t w = 0; w < conf->n_windows; w++)
                st->ov_width_ms[w] =
                    (conf->window_ms[w] + ITD_OV_K - 1) / ITD_OV_K;
        st->max_ts = INT64_MIN;
        st->wm = INT64_MIN;
        st->frontier = INT64_MIN;
        st->slot_cap = 1024;
        st->slots = itd_xcalloc(st->slot_cap, sizeof(*st->slots));
        st->users_cap = 256;
        st->users = itd_xmalloc(st->users_cap * sizeof(*st->users));
        st->lru_head = st->lru_tail = ITD_NIL;
        /* block: int64 head[W], int64 newest, uint16 cnt[W][K+1][T] */
        size_t W = conf->n_windows;
        st->ov_bytes = 8 * W + 8 + W * (ITD_OV_K + 1) * TYPES * 2;
        st->ov_bytes = (st->ov_bytes + 7) & ~(size_t)7;
        st->cats.cap = 256;
        st->cats.slots = itd_xcalloc(st->cats.cap, sizeof(uint32_t));
        st->cats.off_cap = 128;
        /* calloc: entry 0 (no category) is written with the rest */
        st->cats.off = itd_xcalloc(st->cats.off_cap, sizeof(uint32_t));
        st->cats.hash = itd_xcalloc(st->cats.off_cap, sizeof(uint32_t));
        st->cats.arena_cap = 4096;
        st->cats.arena = itd_xmalloc(st->cats.arena_cap);
        return st;
}

void itd_state_destroy(itd_state_t *st) {
        if (!st)
                return;
        free(st->slots);
        free(st->users);
        free(st->ids);
        free(st->ov);
        free(st->cats.slots);
        free(st->cats.off);
        free(st->cats.hash);
        free(st->cats.arena);
        free(st);
}

int64_t itd_state_watermark(const itd_state_t *st) { return st->wm; }

int64_t itd_state_frontier(const itd_state_t *st) { return st->frontier; }

/* ------------------------------------------------------- the frontier */

static void sorted_remove(int64_t *a, uint32_t n, int64_t v) {
        uint32_t i = 0;
        while (i < n && a[i] != v)
                i++;
        if (i < n)
                memmove(a + i, a + i + 1, (n - 1 - i) * sizeof(*a));
}

static void sorted_insert(int64_t *a, uint32_t n, int64_t v) {
        uint32_t i = n;
        while (i > 0 && a[i - 1] > v) {
                a[i] = a[i - 1];
                i--;
        }
        a[i] = v;
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
                sorted_remove(st->front_sorted, n, st->front_ts[i]);
                memmove(st->front_tag + i, st->front_tag + i + 1,
                        (n - 1 - i) * sizeof(*st->front_tag));
                memmove(st->front_ts + i, st->front_ts + i + 1,
                        (n - 1 - i) * sizeof(*st->front_ts));
                n--;
        }
        st->front_tag[n] = tag;
        st->front_ts[n] = ts;
        sorted_insert(st->front_sorted, n, ts);
        st->front_n = ++n;
        if (n >= 2 && st->front_sorted[(n - 1) / 2] > st->frontier)
                st->frontier = st->front_sorted[(n - 1) / 2];
}

/* ------------------------------------------------------------ user ids */

const char *itd_user_id(const itd_state_t *st, const itd_user_t *u) {
        if (u->id[ITD_ID_INLINE - 1] == 0)
                return u->id;
        uint32_t off;
        memcpy(&off, u->id, sizeof(off));
        return st->ids + off;
}

/* Rewrites the arena without the ids of evicted users. */
static void ids_compact(itd_state_t *st) {
        size_t cap = st->ids_len - st->ids_garbage;
        cap = cap < 4096 ? 4096 : cap * 2;
        char *ids = itd_xmalloc(cap);
        size_t len = 0;
        for (size_t i = 0; i < st->n_users; i++) {
                itd_user_t *u = &st->users[i];
                if (u->id[ITD_ID_INLINE - 1] == 0)
                        continue;
                const char *s = itd_user_id(st, u);
                size_t n = strlen(s) + 1;
                memcpy(ids + len, s, n);
                uint32_t off = (uint32_t)len;
                memcpy(u->id, &off, sizeof(off));
                len += n;
        }
        free(st->ids);
        st->ids = ids;
        st->ids_len = len;
        st->ids_cap = cap;
        st->ids_garbage = 0;
}

static void user_set_id(itd_state_t *st, itd_user_t *u, const char *id) {
        size_t n = strlen(id);
        memset(u->id, 0, sizeof(u->id));
        if (n < ITD_ID_INLINE) {
                memcpy(u->id, id, n);
                return;
        }
        if (st->ids_len + n + 1 > st->ids_cap) {
                size_t cap = st->ids_cap ? st->ids_cap : 4096;
                while (st->ids_len + n + 1 > cap)
                        cap *= 2;
                st->ids = itd_xrealloc(st->ids, cap);
                st->ids_cap = cap;
        }
        uint32_t off = (uint32_t)st->ids_len;
        memcpy(st->ids + off, id, n + 1);
        st->ids_len += n + 1;
        memcpy(u->id, &off, sizeof(off));
        u->id[ITD_ID_INLINE - 1] = 1;
}

static void user_free_id(itd_state_t *st, itd_user_t *u) {
        if (u->id[ITD_ID_INLINE - 1] == 0)
                return;
        st->ids_garbage += strlen(itd_user_id(st, u)) + 1;
}

/* --------------------------------------------------------- user table */

/* The table is keyed by the top half of the user's hash (itd_user_hash). */
static uint32_t hash_tag(uint64_t user_hash) {
        return (uint32_t)(user_hash >> 32);
}

static uint32_t id_tag(const char *id) {
        return hash_tag(itd_user_hash(id));
}

static size_t slot_home(const itd_state_t *st, uint64_t slot) {
        return (size_t)(slot >> 32) & (st->slot_cap - 1);
}

/* Slot position holding id, or (when absent) the empty slot ending the
 * probe; *found says which. */
static size_t table_probe(const itd_state_t *st, const char *id, uint32_t tag,
                          int *found) {
        size_t mask = st->slot_cap - 1;
        size_t pos = tag & mask;
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
                pos = (pos + 1) & mask;
        }
}

const itd_user_t *itd_state_user_get(const itd_state_t *st,
                                     const char *user_id) {
        int found;
        size_t pos = table_probe(st, user_id, id_tag(user_id), &found);
        return found ? &st->users[(uint32_t)st->slots[pos] - 1] : NULL;
}

const itd_user_t *itd_state_user_last(const itd_state_t *st,
                                      const char *user_id) {
        if (st->lru_head != ITD_NIL) {
                const itd_user_t *u = &st->users[st->lru_head];
                if (strcmp(itd_user_id(st, u), user_id) == 0)
                        return u;
        }
        return itd_state_user_get(st, user_id);
}

/* n / 2 rounded to nearest, ties to even (255 -> 128, 3 -> 2, 5 -> 2) */
static uint8_t half_even(uint8_t n) {
        return (uint8_t)((n + ((n >> 1) & 1)) >> 1);
}

itd_err_t itd_state_label(itd_state_t *st, uint64_t user_key, int label) {
        uint8_t pos = label ? 1 : 0;
        st->lab_n += 1.0;
        st->lab_pos += pos;
        /* the table is keyed by the key's top half (id_tag); the whole key
         * of a candidate is recomputed from its id, so another user with
         * the same tag is never taken for this one */
        uint32_t tag = (uint32_t)(user_key >> 32);
        size_t mask = st->slot_cap - 1;
        for (size_t at = tag & mask;; at = (at + 1) & mask) {
                uint64_t s = st->slots[at];
                if (s == 0)
                        return ITD_ERR_NOT_FOUND;
                if ((uint32_t)(s >> 32) != tag)
                        continue;
                itd_user_t *u = &st->users[(uint32_t)s - 1];
                if (itd_user_hash(itd_user_id(st, u)) != user_key)
                        continue;
                if (u->lab_n == UINT8_MAX) {
                        u->lab_n = half_even(u->lab_n);
                        u->lab_pos = half_even(u->lab_pos);
                }
                u->lab_n++;
                u->lab_pos += pos;
                return ITD_OK;
        }
}

/* Slot position that points at user index idx (which must be present). */
static size_t table_slot_of(const itd_state_t *st, size_t idx) {
        uint32_t tag = id_tag(itd_user_id(st, &st->users[idx]));
        size_t mask = st->slot_cap - 1;
        size_t pos = tag & mask;
        while ((uint32_t)st->slots[pos] != (uint32_t)(idx + 1))
                pos = (pos + 1) & mask;
        return pos;
}

/* Backward-shift deletion keeps linear probing free of tombstones. */
static void table_delete(itd_state_t *st, size_t pos) {
        size_t mask = st->slot_cap - 1;
        size_t i = pos, j = pos;
        for (;;) {
                j = (j + 1) & mask;
                if (st->slots[j] == 0)
                        break;
                size_t k = slot_home(st, st->slots[j]);
                int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
                if (stays)
                        continue;
                st->slots[i] = st->slots[j];
                i = j;
        }
        st->slots[i] = 0;
}

static void table_grow(itd_state_t *st) {
        size_t old_cap = st->slot_cap;
        uint64_t *old = st->slots;
        st->slot_cap = old_cap * 2;
        st->slots = itd_xcalloc(st->slot_cap, sizeof(*st->slots));
        size_t mask = st->slot_cap - 1;
        for (size_t i = 0; i < old_cap; i++) {
                if (!old[i])
                        continue;
                size_t pos = slot_home(st, old[i]);
                while (st->slots[pos])
                        pos = (pos + 1) & mask;
                st->slots[pos] = old[i];
        }
        free(old);
}

/* -------------------------------------------------------------- LRU */

static void lru_unlink(itd_state_t *st, uint32_t idx) {
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

static void lru_push_front(itd_state_t *st, uint32_t idx) {
        itd_user_t *u = &st->users[idx];
        u->lru_prev = ITD_NIL;
        u->lru_next = st->lru_head;
        if (st->lru_head != ITD_NIL)
                st->users[st->lru_head].lru_prev = idx;
        st->lru_head = idx;
        if (st->lru_tail == ITD_NIL)
                st->lru_tail = idx;
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

static void ov_release(itd_state_t *st, itd_user_t *u) {
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
        if (vts > st->wm - st->max_span_ms)
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

/* ------------------------------------------------------ user lifecycle */

static void user_evict(itd_state_t *st, uint32_t idx) {
        itd_user_t *u = &st->users[idx];
        table_delete(st, table_slot_of(st, idx));
        lru_unlink(st, idx);
        ov_release(st, u);
        user_free_id(st, u);
        uint32_t last = (uint32_t)(st->n_users - 1);
        if (idx != last) {
                /* keep the array dense: the last record fills the hole */
                size_t pos = table_slot_of(st, last);
                st->slots[pos] = (st->slots[pos] & ~(uint64_t)UINT32_MAX) |
                                 (uint64_t)(idx + 1);
                st->users[idx] = st->users[last];
                u = &st->users[idx];
                if (u->lru_prev != ITD_NIL)
                        st->users[u->lru_prev].lru_next = idx;
                else
                        st->lru_head = idx;
                if (u->lru_next != ITD_NIL)
                        st->users[u->lru_next].lru_prev = idx;
                else
                        st->lru_tail = idx;
        }
        st->n_users--;
        if (st->ids_garbage > 65536 && st->ids_garbage * 2 > st->ids_len)
                ids_compact(st);
}

/* A user with no events yet, first seen at ts (no id, no links). */
static void user_init(const itd_state_t *st, itd_user_t *u, int64_t ts) {
        memset(u, 0, sizeof(*u));
        u->last_ts = ts;
        u->ring_type = UINT64_MAX; /* every nibble ITD_RING_EMPTY */
        for (int t = 0; t < TYPES; t++)
                u->last_sec[t] = ITD_NEVER;
        int32_t sec = itd_state_sec(st, ts);
        u->first_sec = u->sess_start_sec = u->aff_sec = sec;
        for (int i = 0; i < ITD_SPARSE_SLOTS; i++)
                u->sp_item[i] = u->sp_tok[i] = ITD_SPARSE_NONE;
}

static uint32_t user_create(itd_state_t *st, const char *id, uint32_t tag,
                            int64_t ts) {
        if (st->n_users >= st->conf.max_users) {
                user_evict(st, st->lru_tail);
                st->stats.evicted_cap++;
        }
        if ((st->n_users + 1) * 4 > st->slot_cap * 3)
                table_grow(st);
        if (st->n_users == st->users_cap) {
                st->users_cap *= 2;
                st->users = itd_xrealloc(st->users,
                                         st->users_cap * sizeof(*st->users));
        }
        uint32_t idx = (uint32_t)st->n_users++;
        itd_user_t *u = &st->users[idx];
        user_init(st, u, ts);
        user_set_id(st, u, id);
        int found;
        size_t pos = table_probe(st, id, tag, &found);
        st->slots[pos] = (uint64_t)tag << 32 | (uint64_t)(idx + 1);
        lru_push_front(st, idx);
        return idx;
}

static void sweep_idle(itd_state_t *st) {
        if (st->wm == INT64_MIN || st->wm < INT64_MIN + st->conf.idle_ttl_ms)
                return;
        int64_t cutoff = st->wm - st->conf.idle_ttl_ms;
        int64_t stop = cutoff + st->conf.allowed_lateness_ms;
        int64_t ahead = st->wm > INT64_MAX - st->conf.allowed_lateness_ms
                            ? INT64_MAX
                            : st->wm + st->conf.allowed_lateness_ms;
        uint32_t idx = st->lru_tail;
        while (idx != ITD_NIL) {
                itd_user_t *u = &st->users[idx];
                uint32_t toward_head = u->lru_prev;
                if (u->last_ts < cutoff) {
                        uint32_t last = (uint32_t)(st->n_users - 1);
                        user_evict(st, idx);
                        st->stats.evicted_ttl++;
                        if (toward_head == last)
                                toward_head = idx;
                } else if (u->last_ts >= stop && u->last_ts <= ahead) {
                        /* every user updated later has last_ts >= this
                         * one's - lateness >= cutoff: none is idle. A user
                         * whose clock runs ahead of the partition's
                         * frontier proves nothing about later ones: the
                         * walk goes past it. */
                        break;
                }
                idx = toward_head;
        }
}

void itd_state_advance(itd_state_t *st, int64_t wm_ms) {
        if (wm_ms > st->wm)
                st->wm = wm_ms;
        sweep_idle(st);
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

/* Interned id of a category name; 0 for "" or once the dictionary holds
 * ITD_CAT_MAX names (such categories get no per-user memory). */
/* Interned id of name (0: not interned), or 0 with *at the free slot
 * where it would go. */
static uint16_t catdict_find(const itd_catdict_t *cd, const char *name,
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

static uint16_t catdict_intern(itd_catdict_t *cd, const char *name,
                               uint32_t hash) {
        if (!name[0])
                return 0;
        size_t pos = 0;
        uint16_t found = catdict_find(cd, name, hash, &pos);
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
        uint32_t tag = hash_tag(user_hash);
        __builtin_prefetch(&st->slots[tag & (st->slot_cap - 1)]);
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
        size_t pos = table_probe(st, ev->user_id, tag, &found);
        uint32_t idx = found ? (uint32_t)st->slots[pos] - 1
                             : user_create(st, ev->user_id, tag, ts);
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
        if (u->ov && ov_heads(st, u->ov - 1)[st->conf.n_windows] <=
                         st->wm - st->max_span_ms)
                ov_release(st, u); /* its events left every window */
        user_apply(st, u, ev, &prev, cat_hash, item_hash);
        itd_features_extract(st, u, &prev, ev, x, ids, top);
        /* last, so the neighbours' prefetches above had time to land */
        if (st->lru_head != idx) {
                lru_unlink(st, idx);
                lru_push_front(st, idx);
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
        uint32_t tag = hash_tag(user_hash);
        int found;
        size_t pos = table_probe(st, ev->user_id, tag, &found);
        itd_user_t fresh;
        const itd_user_t *u;
        if (found) {
                u = &st->users[(uint32_t)st->slots[pos] - 1];
        } else {
                user_init(st, &fresh, ev->ts_ms);
                u = &fresh;
        }
        itd_prev_t prev;
        prev.is_new = !found;
        prev.last_ts = u->last_ts;
        memcpy(prev.last_sec, u->last_sec, sizeof(prev.last_sec));
        prev.cat = ev->category[0]
                       ? catdict_find(&st->cats, ev->category,
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
        uint32_t tag = hash_tag(user_hash);
        const uint64_t *slot = &st->slots[tag & (st->slot_cap - 1)];
        __builtin_prefetch(slot);
        uint64_t s = *slot;
        if (s && (uint32_t)(s >> 32) == tag) {
                const char *u = (const char *)&st->users[(uint32_t)s - 1];
                for (size_t off = 0; off < sizeof(itd_user_t); off += 64)
                        __builtin_prefetch(u + off, 1);
        }
}

/* ---------------------------------------------------- counts and dump */

itd_err_t itd_state_counts(const itd_state_t *st, const char *user_id,
                           int64_t now_ms, uint32_t *counts) {
        int found;
        size_t pos = table_probe(st, user_id, id_tag(user_id), &found);
        if (!found)
                return ITD_ERR_NOT_FOUND;
        itd_user_counts(st, &st->users[(uint32_t)st->slots[pos] - 1], now_ms,
                        counts);
        return ITD_OK;
}

/* Window label in the largest unit that divides it: "5m", "1h", "1d". */
itd_err_t itd_state_user_summary(const itd_state_t *st, const char *user_id,
                                 int64_t now_ms, itd_user_summary_t *out) {
        int found;
        size_t pos = table_probe(st, user_id, id_tag(user_id), &found);
        if (!found)
                return ITD_ERR_NOT_FOUND;
        const itd_user_t *u = &st->users[(uint32_t)st->slots[pos] - 1];
        memset(out, 0, sizeof *out);
        out->first_ts_ms = st->epoch_ms + (int64_t)u->first_sec * 1000;
        out->last_ts_ms = u->last_ts;
        out->session_start_ms = st->epoch_ms +
                                (int64_t)u->sess_start_sec * 1000;
        out->session_events = u->sess_events;
        for (int t = 0; t < ITD_EV__COUNT; t++)
                out->lifetime[t] = u->life[t];
        out->n_windows = st->conf.n_windows;
        for (size_t w = 0; w < st->conf.n_windows; w++)
                out->window_ms[w] = st->conf.window_ms[w];
        itd_user_counts(st, u, now_ms == INT64_MIN ? u->last_ts : now_ms,
                        out->counts);
        /* Strongest categories first, decayed to the user's newest event
         * as the features read them (features.c). */
        double dt = (double)(itd_state_sec(st, u->last_ts) - u->aff_sec);
        float decay = dt > 0 ? (float)exp2(-dt / ITD_AFF_HALF_LIFE_S) : 1.0f;
        for (int i = 0; i < ITD_AFF_SLOTS; i++) {
                if (!u->aff_cat[i])
                        continue;
                size_t k = out->top.n;
                float sc = u->aff_score[i] * decay;
                while (k > 0 && out->top.score[k - 1] < sc) {
                        if (k < ITD_TOPCAT_MAX) {
                                out->top.score[k] = out->top.score[k - 1];
                                memcpy(out->top.name[k],
                                       out->top.name[k - 1],
                                       sizeof out->top.name[k]);
                        }
                        k--;
                }
                if (k < ITD_TOPCAT_MAX) {
                        out->top.score[k] = sc;
                        itd_strlcpy(out->top.name[k],
                                    itd_catdict_name(&st->cats,
                                                     u->aff_cat[i]),
                                    sizeof out->top.name[k]);
                }
                if (out->top.n < ITD_TOPCAT_MAX)
                        out->top.n++;
        }
        return ITD_OK;
}

static const char *window_label(int64_t ms, char *buf, size_t cap) {
        static const struct {
                int64_t ms;
                const char *unit;
        } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"},
                     {1000, "s"}, {1, "ms"}};
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (ms % units[i].ms == 0) {
                        snprintf(buf, cap, "%" PRId64 "%s", ms / units[i].ms,
                                 units[i].unit);
                        break;
                }
        }
        return buf;
}

const char *itd_state_window_label(const itd_state_conf_t *conf, size_t w,
                                   char *buf, size_t cap) {
        return window_label(conf->window_ms[w], buf, cap);
}

static void json_string(FILE *out, const char *s) {
        fputc('"', out);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\')
                        fprintf(out, "\\%c", c);
                else if (c < 0x20)
                        fprintf(out, "\\u%04x", c);
                else
                        fputc(c, out);
        }
        fputc('"', out);
}

static const itd_state_t *sort_st;

static int by_id(const void *a, const void *b) {
        const itd_user_t *ua = &sort_st->users[*(const uint32_t *)a];
        const itd_user_t *ub = &sort_st->users[*(const uint32_t *)b];
        return strcmp(itd_user_id(sort_st, ua), itd_user_id(sort_st, ub));
}

itd_err_t itd_state_dump(const itd_state_t *st, int64_t now_ms, FILE *out) {
        /* sorted by user id, so two runs over the same events compare
         * byte for byte */
        uint32_t *order = itd_xmalloc((st->n_users + 1) * sizeof(*order));
        for (size_t i = 0; i < st->n_users; i++)
                order[i] = (uint32_t)i;
        sort_st = st;
        qsort(order, st->n_users, sizeof(*order), by_id);
        sort_st = NULL;
        size_t W = st->conf.n_windows;
        uint32_t counts[ITD_WINDOWS_MAX * TYPES];
        char label[32];
        for (size_t i = 0; i < st->n_users; i++) {
                const itd_user_t *u = &st->users[order[i]];
                itd_user_counts(st, u, now_ms, counts);
                fputs("{\"user_id\":", out);
                json_string(out, itd_user_id(st, u));
                fputs(",\"windows\":{", out);
                for (size_t w = 0; w < W; w++) {
                        fprintf(out, "%s\"%s\":{", w ? "," : "",
                                window_label(st->conf.window_ms[w], label,
                                             sizeof(label)));
                        for (int t = 0; t < TYPES; t++)
                                fprintf(out, "%s\"%s\":%" PRIu32, t ? "," : "",
                                        itd_event_type_name(
                                            (itd_event_type_t)t),
                                        counts[w * TYPES + t]);
                        fputc('}', out);
                }
                fputs("}}\n", out);
        }
        free(order);
        return ferror(out) ? ITD_ERR_IO : ITD_OK;
}

void itd_state_stats(const itd_state_t *st, itd_state_stats_t *stats) {
        *stats = st->stats;
        stats->users = st->n_users;
        stats->bytes = sizeof(*st) + st->slot_cap * sizeof(*st->slots) +
                       st->users_cap * sizeof(*st->users) + st->ids_cap +
                       st->ov_cap * st->ov_bytes +
                       st->cats.cap * sizeof(uint32_t) +
                       st->cats.off_cap * 2 * sizeof(uint32_t) +
                       st->cats.arena_cap;
}

/* ------------------------------------------------- state snapshots */

#define SNAP_MAGIC "ITDSTATE"
#define SNAP_VERSION 3 /* 2: the event-time frontier and its users;
                         * 3: label and purchase counts */
#define SNAP_CONF_WORDS (1 + ITD_WINDOWS_MAX + 4)

/* Everything that sizes the payload or is not in an array, in header
 * order: one uint64 each. */
enum {
        SC_EPOCH, SC_HAVE_EPOCH, SC_MAX_TS, SC_WM,
        SC_N_USERS, SC_USERS_CAP, SC_SLOT_CAP, SC_LRU_HEAD, SC_LRU_TAIL,
        SC_IDS_LEN, SC_IDS_CAP, SC_IDS_GARBAGE,
        SC_OV_N, SC_OV_CAP, SC_OV_FREE,
        SC_CATS_N, SC_CATS_CAP, SC_CATS_OFF_CAP, SC_CATS_ARENA_LEN,
        SC_CATS_ARENA_CAP,
        SC_EVICTED_TTL, SC_EVICTED_CAP, SC_LATE,
        SC_FRONTIER, SC_FRONT_N,
        SC_LAB_N, SC_LAB_POS, SC_EV_N, SC_EV_POS, /* doubles, as bits */
        SC__COUNT
};

/* The header values (snap_int.h): 8 layout words, the configuration,
 * the scalars. */
#define SNAP_LAYOUT_WORDS 8
#define SNAP_WORDS (SNAP_LAYOUT_WORDS + SNAP_CONF_WORDS + SC__COUNT)
#define SNAP_HDR_BYTES ITD_SNAP_HDR_BYTES(SNAP_WORDS)

/* Version 1 (no frontier) is still read: its watermark was the newest
 * event time minus the lateness, so that time becomes the frontier, and
 * the list of recent users starts empty. */
static const itd_snap_kind_t snap_kind_v1 = {
    .name = "state",
    .magic = SNAP_MAGIC,
    .version = 1,
    .n_values = SNAP_WORDS - 6,
};

/* Versions 1 and 2 (no label or purchase counts) are still read: their
 * user records held 16-bit sess_events and priced_views where today's hold
 * those two in 8 bits and the two label counts (convert_v2_users); the
 * partition's event and purchase counts are rebuilt from its users'
 * lifetime counts. */
static const itd_snap_kind_t snap_kind_v2 = {
    .name = "state",
    .magic = SNAP_MAGIC,
    .version = 2,
    .n_values = SNAP_WORDS - 4,
    .older = &snap_kind_v1,
};

static const itd_snap_kind_t snap_kind = {
    .name = "state",
    .magic = SNAP_MAGIC,
    .version = SNAP_VERSION,
    .n_values = SNAP_WORDS,
    .older = &snap_kind_v2,
};
_Static_assert(offsetof(itd_user_t, lab_n) ==
                   offsetof(itd_user_t, sess_events) + 2 &&
               offsetof(itd_user_t, sess_carts) ==
                   offsetof(itd_user_t, sess_events) + 4,
               "convert_v2_users knows the version 2 layout of these bytes");

/* Version 1 and 2 records: uint16 sess_events, uint16 priced_views where
 * today's have four uint8 (sess_events, priced_views, lab_n, lab_pos). */
static void convert_v2_users(itd_state_t *st) {
        for (size_t i = 0; i < st->n_users; i++) {
                itd_user_t *u = &st->users[i];
                uint16_t old[2];
                memcpy(old, &u->sess_events, sizeof(old));
                u->sess_events = old[0] > UINT8_MAX ? UINT8_MAX
                                                    : (uint8_t)old[0];
                u->priced_views = old[1] > UINT8_MAX ? UINT8_MAX
                                                     : (uint8_t)old[1];
                u->lab_n = u->lab_pos = 0;
                for (int t = 0; t < TYPES; t++) {
                        st->ev_n += u->life[t];
                        if (t == ITD_EV_PURCHASE)
                                st->ev_pos += u->life[t];
                }
        }
}

static const char *const layout_names[SNAP_LAYOUT_WORDS] = {
    "user record bytes", "ring entries", "overflow buckets per span",
    "affinity slots", "sparse slots", "event types", "category limit",
    "inline id bytes"};

static void layout_words(uint64_t *v) {
        v[0] = sizeof(itd_user_t);
        v[1] = ITD_RING;
        v[2] = ITD_OV_K;
        v[3] = ITD_AFF_SLOTS;
        v[4] = ITD_SPARSE_SLOTS;
        v[5] = ITD_EV__COUNT;
        v[6] = ITD_CAT_MAX;
        v[7] = ITD_ID_INLINE;
}

static void conf_words(const itd_state_conf_t *c, uint64_t *v) {
        v[0] = c->n_windows;
        for (size_t w = 0; w < ITD_WINDOWS_MAX; w++)
                v[1 + w] = w < c->n_windows ? (uint64_t)c->window_ms[w] : 0;
        v[1 + ITD_WINDOWS_MAX] = (uint64_t)c->allowed_lateness_ms;
        v[2 + ITD_WINDOWS_MAX] = (uint64_t)c->session_gap_ms;
        v[3 + ITD_WINDOWS_MAX] = (uint64_t)c->idle_ttl_ms;
        v[4 + ITD_WINDOWS_MAX] = (uint64_t)c->max_users;
}

static void scalar_words(const itd_state_t *st, uint64_t *v) {
        v[SC_EPOCH] = (uint64_t)st->epoch_ms;
        v[SC_HAVE_EPOCH] = (uint64_t)st->have_epoch;
        v[SC_MAX_TS] = (uint64_t)st->max_ts;
        v[SC_WM] = (uint64_t)st->wm;
        v[SC_N_USERS] = st->n_users;
        v[SC_USERS_CAP] = st->users_cap;
        v[SC_SLOT_CAP] = st->slot_cap;
        v[SC_LRU_HEAD] = st->lru_head;
        v[SC_LRU_TAIL] = st->lru_tail;
        v[SC_IDS_LEN] = st->ids_len;
        v[SC_IDS_CAP] = st->ids_cap;
        v[SC_IDS_GARBAGE] = st->ids_garbage;
        v[SC_OV_N] = st->ov_n;
        v[SC_OV_CAP] = st->ov_cap;
        v[SC_OV_FREE] = st->ov_free;
        v[SC_CATS_N] = st->cats.n;
        v[SC_CATS_CAP] = st->cats.cap;
        v[SC_CATS_OFF_CAP] = st->cats.off_cap;
        v[SC_CATS_ARENA_LEN] = st->cats.arena_len;
        v[SC_CATS_ARENA_CAP] = st->cats.arena_cap;
        v[SC_EVICTED_TTL] = st->stats.evicted_ttl;
        v[SC_EVICTED_CAP] = st->stats.evicted_cap;
        v[SC_LATE] = st->stats.late_events;
        v[SC_FRONTIER] = (uint64_t)st->frontier;
        v[SC_FRONT_N] = st->front_n;
        memcpy(&v[SC_LAB_N], &st->lab_n, sizeof(double));
        memcpy(&v[SC_LAB_POS], &st->lab_pos, sizeof(double));
        memcpy(&v[SC_EV_N], &st->ev_n, sizeof(double));
        memcpy(&v[SC_EV_POS], &st->ev_pos, sizeof(double));
}

/* The arrays, in payload order. The table slots are not stored: restore
 * rebuilds them from the ids. */
static void write_payload(itd_snap_t *s, const void *obj) {
        const itd_state_t *st = obj;
        itd_snap_write(s, st->users, st->n_users * sizeof(*st->users));
        itd_snap_write(s, st->ids, st->ids_len);
        itd_snap_write(s, st->ov, st->ov_n * st->ov_bytes);
        itd_snap_write(s, st->cats.off, (st->cats.n + 1) * sizeof(uint32_t));
        itd_snap_write(s, st->cats.hash, (st->cats.n + 1) * sizeof(uint32_t));
        itd_snap_write(s, st->cats.arena, st->cats.arena_len);
        itd_snap_write(s, st->front_tag, st->front_n * sizeof(uint32_t));
        itd_snap_write(s, st->front_ts, st->front_n * sizeof(int64_t));
}

itd_err_t itd_state_snapshot(const itd_state_t *st, FILE *out, char *errstr,
                             size_t errstr_size) {
        uint64_t v[SNAP_WORDS];
        layout_words(v);
        conf_words(&st->conf, v + SNAP_LAYOUT_WORDS);
        scalar_words(st, v + SNAP_LAYOUT_WORDS + SNAP_CONF_WORDS);
        return itd_snap_save(out, &snap_kind, v, write_payload, st, errstr,
                             errstr_size);
}

static const char *conf_word_name(size_t i, char *buf, size_t cap) {
        if (i == 0)
                return "state.n_windows";
        if (i <= ITD_WINDOWS_MAX) {
                snprintf(buf, cap, "state.window_ms[%zu]", i - 1);
                return buf;
        }
        return i == 1 + ITD_WINDOWS_MAX ? "state.allowed_lateness_ms"
                                        : "state.session_gap_ms";
}

/* Checks what the checksum cannot: that indices point inside the arrays
 * (a snapshot of another build's bug must not become a crash later).
 * Returns NULL or a description. */
static const char *restore_check(itd_state_t *st, char *buf, size_t cap) {
        size_t n = st->n_users;
        if ((n == 0) != (st->lru_head == ITD_NIL) ||
            (n == 0) != (st->lru_tail == ITD_NIL))
                return "LRU ends disagree with the user count";
        for (size_t i = 0; i < n; i++) {
                const itd_user_t *u = &st->users[i];
                if ((u->lru_prev != ITD_NIL && u->lru_prev >= n) ||
                    (u->lru_next != ITD_NIL && u->lru_next >= n) ||
                    (u->ov && u->ov > st->ov_n)) {
                        snprintf(buf, cap, "user %zu links outside the "
                                 "arrays", i);
                        return buf;
                }
                if (u->id[ITD_ID_INLINE - 1] != 0) {
                        uint32_t off;
                        memcpy(&off, u->id, sizeof(off));
                        if (u->id[ITD_ID_INLINE - 1] != 1 ||
                            off >= st->ids_len ||
                            !memchr(st->ids + off, 0, st->ids_len - off)) {
                                snprintf(buf, cap, "user %zu has a bad id "
                                         "offset", i);
                                return buf;
                        }
                }
                for (int k = 0; k < ITD_SPARSE_SLOTS; k++)
                        if (u->sp_cat[k] > st->cats.n)
                                return "a category id beyond the dictionary";
                for (int k = 0; k < ITD_AFF_SLOTS; k++)
                        if (u->aff_cat[k] > st->cats.n)
                                return "a category id beyond the dictionary";
        }
        /* the LRU list visits every user exactly once */
        size_t steps = 0;
        for (uint32_t i = st->lru_head; i != ITD_NIL && steps <= n;
             i = st->users[i].lru_next)
                steps++;
        if (steps != n)
                return "the LRU list does not link every user once";
        uint32_t f = st->ov_free;
        for (steps = 0; f && steps <= st->ov_n; steps++) {
                if (f > st->ov_n)
                        return "the overflow free list points outside the "
                               "blocks";
                memcpy(&f, st->ov + (size_t)(f - 1) * st->ov_bytes,
                       sizeof(f));
        }
        if (f)
                return "the overflow free list loops";
        for (size_t id = 1; id <= st->cats.n; id++)
                if (st->cats.off[id] >= st->cats.arena_len)
                        return "a category name offset beyond the arena";
        if (st->cats.arena_len && st->cats.arena[st->cats.arena_len - 1])
                return "the category arena does not end a name";
        return NULL;
}

itd_err_t itd_state_restore(FILE *in, const itd_state_conf_t *conf,
                            itd_state_t **out, char *errstr,
                            size_t errstr_size) {
#define FAIL(cls, ...) ITD_SNAP_FAIL(&s, cls, __VA_ARGS__)
        itd_state_t *st = NULL;
        itd_snap_t s = {.f = in};
        uint64_t hv[SNAP_WORDS], payload_bytes, payload_hash;
        char buf[128];
        *out = NULL;
        if (itd_state_conf_check(conf, errstr, errstr_size) != ITD_OK)
                return ITD_ERR_CONF;
        if (itd_snap_header_read(&s, &snap_kind, hv, &payload_bytes,
                                 &payload_hash, errstr, errstr_size) != 0)
                goto fail;
        const uint64_t *lw = hv;
        uint64_t lay[SNAP_LAYOUT_WORDS];
        layout_words(lay);
        for (size_t i = 0; i < SNAP_LAYOUT_WORDS; i++)
                if (lw[i] != lay[i])
                        FAIL(ITD_ERR_INCOMPATIBLE,
                             "incompatible state snapshot: written by a build "
                             "with %s = %" PRIu64 ", this build has %" PRIu64,
                             layout_names[i], lw[i], lay[i]);
        const uint64_t *cw = hv + SNAP_LAYOUT_WORDS;
        uint64_t mine[SNAP_CONF_WORDS];
        conf_words(conf, mine);
        /* windows, lateness and session gap shape what is stored; the
         * TTL and max_users are limits that may change between runs */
        for (size_t i = 0; i < SNAP_CONF_WORDS - 2; i++)
                if (cw[i] != mine[i])
                        FAIL(ITD_ERR_INCOMPATIBLE,
                             "incompatible state snapshot: taken with %s = %"
                             PRId64 ", the configuration has %" PRId64,
                             conf_word_name(i, buf, sizeof(buf)),
                             (int64_t)cw[i], (int64_t)mine[i]);
        uint64_t *v = hv + SNAP_LAYOUT_WORDS + SNAP_CONF_WORDS;
        if (s.version == 1) {
                int64_t wm = (int64_t)v[SC_WM];
                v[SC_FRONTIER] = (uint64_t)(wm == INT64_MIN
                                                ? INT64_MIN
                                                : wm + conf->allowed_lateness_ms);
                v[SC_FRONT_N] = 0;
        }
        if (s.version < 3) /* rebuilt below */
                memset(&v[SC_LAB_N], 0, 4 * sizeof(uint64_t));

        /* sizes are covered by the header checksum; still refuse shapes
         * this code could not have written */
        size_t ov_bytes = 8 * conf->n_windows + 8 +
                          conf->n_windows * (ITD_OV_K + 1) * TYPES * 2;
        ov_bytes = (ov_bytes + 7) & ~(size_t)7;
        int pow2 = v[SC_SLOT_CAP] >= 1024 &&
                   (v[SC_SLOT_CAP] & (v[SC_SLOT_CAP] - 1)) == 0 &&
                   v[SC_CATS_CAP] >= 256 &&
                   (v[SC_CATS_CAP] & (v[SC_CATS_CAP] - 1)) == 0;
        if (!pow2 || v[SC_N_USERS] > v[SC_USERS_CAP] ||
            v[SC_USERS_CAP] > (uint64_t)INT32_MAX ||
            v[SC_N_USERS] * 4 > v[SC_SLOT_CAP] * 3 ||
            v[SC_IDS_LEN] > v[SC_IDS_CAP] || v[SC_IDS_CAP] > UINT32_MAX ||
            v[SC_OV_N] > v[SC_OV_CAP] || v[SC_OV_CAP] > UINT32_MAX ||
            v[SC_CATS_N] > ITD_CAT_MAX ||
            v[SC_CATS_N] >= v[SC_CATS_OFF_CAP] ||
            v[SC_CATS_OFF_CAP] > 2 * (ITD_CAT_MAX + 1) ||
            v[SC_CATS_N] * 2 > v[SC_CATS_CAP] ||
            v[SC_CATS_ARENA_LEN] > v[SC_CATS_ARENA_CAP] ||
            v[SC_CATS_ARENA_CAP] > UINT32_MAX ||
            v[SC_FRONT_N] > ITD_FRONT_USERS ||
            payload_bytes != v[SC_N_USERS] * sizeof(itd_user_t) +
                                 v[SC_IDS_LEN] + v[SC_OV_N] * ov_bytes +
                                 (v[SC_CATS_N] + 1) * 8 +
                                 v[SC_CATS_ARENA_LEN] +
                                 v[SC_FRONT_N] * (4 + 8))
                FAIL(ITD_ERR_CORRUPT,
                     "corrupt state snapshot: sizes in the header (bytes "
                     "24..%d) do not describe a state", SNAP_HDR_BYTES - 1);

        st = itd_state_new(conf, errstr, errstr_size);
        if (!st)
                goto fail;
        st->epoch_ms = (int64_t)v[SC_EPOCH];
        st->have_epoch = (int)v[SC_HAVE_EPOCH];
        st->max_ts = (int64_t)v[SC_MAX_TS];
        st->wm = (int64_t)v[SC_WM];
        st->n_users = v[SC_N_USERS];
        st->users_cap = v[SC_USERS_CAP];
        st->slot_cap = v[SC_SLOT_CAP];
        st->lru_head = (uint32_t)v[SC_LRU_HEAD];
        st->lru_tail = (uint32_t)v[SC_LRU_TAIL];
        st->ids_len = v[SC_IDS_LEN];
        st->ids_cap = v[SC_IDS_CAP];
        st->ids_garbage = v[SC_IDS_GARBAGE];
        st->ov_n = v[SC_OV_N];
        st->ov_cap = v[SC_OV_CAP];
        st->ov_free = (uint32_t)v[SC_OV_FREE];
        st->cats.n = v[SC_CATS_N];
        st->cats.cap = v[SC_CATS_CAP];
        st->cats.off_cap = v[SC_CATS_OFF_CAP];
        st->cats.arena_len = v[SC_CATS_ARENA_LEN];
        st->cats.arena_cap = v[SC_CATS_ARENA_CAP];
        st->stats.evicted_ttl = v[SC_EVICTED_TTL];
        st->stats.evicted_cap = v[SC_EVICTED_CAP];
        st->stats.late_events = v[SC_LATE];
        st->frontier = (int64_t)v[SC_FRONTIER];
        st->front_n = (uint32_t)v[SC_FRONT_N];
        memcpy(&st->lab_n, &v[SC_LAB_N], sizeof(double));
        memcpy(&st->lab_pos, &v[SC_LAB_POS], sizeof(double));
        memcpy(&st->ev_n, &v[SC_EV_N], sizeof(double));
        memcpy(&st->ev_pos, &v[SC_EV_POS], sizeof(double));
        /* the same capacities as the original: same growth points, same
         * itd_state_stats bytes */
        free(st->slots);
        free(st->users);
        free(st->cats.slots);
        free(st->cats.off);
        free(st->cats.hash);
        free(st->cats.arena);
        st->slots = itd_xcalloc(st->slot_cap, sizeof(*st->slots));
        st->users = itd_xmalloc(st->users_cap * sizeof(*st->users));
        st->ids = st->ids_cap ? itd_xmalloc(st->ids_cap) : NULL;
        st->ov = st->ov_cap ? itd_xmalloc(st->ov_cap * st->ov_bytes) : NULL;
        st->cats.slots = itd_xcalloc(st->cats.cap, sizeof(uint32_t));
        st->cats.off = itd_xmalloc(st->cats.off_cap * sizeof(uint32_t));
        st->cats.hash = itd_xmalloc(st->cats.off_cap * sizeof(uint32_t));
        st->cats.arena = itd_xmalloc(st->cats.arena_cap);

        itd_snap_hash_begin(&s);
        const struct {
                void *p;
                size_t n;
                const char *what;
        } parts[] = {
            {st->users, st->n_users * sizeof(*st->users), "the users"},
            {st->ids, st->ids_len, "the long user ids"},
            {st->ov, st->ov_n * st->ov_bytes, "the overflow blocks"},
            {st->cats.off, (st->cats.n + 1) * sizeof(uint32_t),
             "the category offsets"},
            {st->cats.hash, (st->cats.n + 1) * sizeof(uint32_t),
             "the category hashes"},
            {st->cats.arena, st->cats.arena_len, "the category names"},
            {st->front_tag, st->front_n * sizeof(uint32_t),
             "the frontier's users"},
            {st->front_ts, st->front_n * sizeof(int64_t),
             "the frontier's times"},
        };
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
                uint64_t start = s.off;
                if (itd_snap_read(&s, parts[i].p, parts[i].n) != 0) {
                        itd_snap_hash_end(&s);
                        itd_snap_read_error(&s, "state", parts[i].what, start,
                                            parts[i].n, errstr, errstr_size);
                        goto fail;
                }
        }
        if (itd_snap_payload_check(&s,
                                   s.version == 1   ? &snap_kind_v1
                                   : s.version == 2 ? &snap_kind_v2
                                                    : &snap_kind,
                                   payload_hash, errstr, errstr_size) != 0)
                goto fail;
        if (s.version < 3)
                convert_v2_users(st);
        const char *bad = restore_check(st, buf, sizeof(buf));
        if (bad)
                FAIL(ITD_ERR_CORRUPT, "corrupt state snapshot: %s", bad);

        for (uint32_t i = 0; i < st->front_n; i++)
                sorted_insert(st->front_sorted, i, st->front_ts[i]);
        /* rebuild the two hash tables */
        for (size_t i = 0; i < st->n_users; i++) {
                const char *id = itd_user_id(st, &st->users[i]);
                uint32_t tag = id_tag(id);
                int found;
                size_t at = table_probe(st, id, tag, &found);
                if (found)
                        FAIL(ITD_ERR_CORRUPT,
                             "corrupt state snapshot: user id \"%.64s\" "
                             "appears twice", id);
                st->slots[at] = (uint64_t)tag << 32 | (uint64_t)(i + 1);
        }
        for (size_t id = 1; id <= st->cats.n; id++) {
                size_t mask = st->cats.cap - 1;
                uint32_t h = st->cats.hash[id];
                size_t at = h & mask;
                while (st->cats.slots[at])
                        at = (at + 1) & mask;
                st->cats.slots[at] = ((h >> 16) & 0xFFFF) << 16 |
                                     (uint32_t)id;
        }
        /* a smaller max_users than the snapshot's run: least recently
         * updated users go first, as they would have */
        while (st->n_users > st->conf.max_users) {
                user_evict(st, st->lru_tail);
                st->stats.evicted_cap++;
        }
        *out = st;
        return ITD_OK;
fail:
        itd_state_destroy(st);
        return s.err ? s.err : ITD_ERR_CONF;
#undef FAIL
}
