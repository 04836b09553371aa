/*
 * state_table.c - the per-partition state as a table of users: its
 * configuration, creation and size, long user ids in an arena, the
 * open-addressing hash table, user creation and eviction (capacity and the
 * TTL sweep), per-user labels and lookups by id. state.c explains the
 * layout.
 *
 * @thread pipeline thread only; no locks.
 */
#include "state_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/mem.h"

#define TYPES ITD_EV__COUNT

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
static size_t slot_home(const itd_state_t *st, uint64_t slot) {
        return itd_state_home(st, (uint32_t)(slot >> 32));
}

const itd_user_t *itd_state_user_get(const itd_state_t *st,
                                     const char *user_id) {
        int found;
        size_t pos = itd_state_probe(st, user_id, itd_state_id_tag(user_id),
                                     &found);
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
        /* the table is keyed by the key's top half (itd_state_id_tag); the
         * whole key of a candidate is recomputed from its id, so another
         * user with the same tag is never taken for this one */
        uint32_t tag = (uint32_t)(user_key >> 32);
        for (size_t at = itd_state_home(st, tag);;
             at = itd_state_slot_next(st, at)) {
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
        uint32_t tag = itd_state_id_tag(itd_user_id(st, &st->users[idx]));
        size_t pos = itd_state_home(st, tag);
        while ((uint32_t)st->slots[pos] != (uint32_t)(idx + 1))
                pos = itd_state_slot_next(st, pos);
        return pos;
}

/* Backward-shift deletion keeps linear probing free of tombstones. */
static void table_delete(itd_state_t *st, size_t pos) {
        size_t i = pos, j = pos;
        for (;;) {
                j = itd_state_slot_next(st, j);
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

/* Slots for n users at load 0.75, rounded up to a cache line of slots. */
static size_t table_cap_for(size_t n) {
        size_t cap = (n * 4 + 2) / 3;
        return (cap + 7) & ~(size_t)7;
}

/* Doubles the table, but never past what max_users needs: a table sized by
 * doubling alone would hold up to twice that (at 1M users 2^21 slots,
 * 16.8 bytes per user, where 1.33M suffice). Called when one more user
 * would pass load 0.75, which max_users' size never reaches. */
static void table_grow(itd_state_t *st) {
        size_t old_cap = st->slot_cap;
        uint64_t *old = st->slots;
        size_t cap = old_cap * 2, full = table_cap_for(st->conf.max_users);
        if (cap > full && full > old_cap)
                cap = full;
        st->slot_cap = cap;
        st->slots = itd_xcalloc(st->slot_cap, sizeof(*st->slots));
        for (size_t i = 0; i < old_cap; i++) {
                if (!old[i])
                        continue;
                size_t pos = slot_home(st, old[i]);
                while (st->slots[pos])
                        pos = itd_state_slot_next(st, pos);
                st->slots[pos] = old[i];
        }
        free(old);
}

/* ------------------------------------------------------ user lifecycle */

void itd_state_user_evict(itd_state_t *st, uint32_t idx) {
        itd_user_t *u = &st->users[idx];
        table_delete(st, table_slot_of(st, idx));
        itd_state_lru_unlink(st, idx);
        itd_state_ov_release(st, u);
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
itd_err_t itd_state_erase(itd_state_t *st, const char *user_id,
                          uint64_t *events) {
        int found;
        uint32_t tag = itd_state_id_tag(user_id);
        size_t pos = itd_state_probe(st, user_id, tag, &found);
        if (!found)
                return ITD_ERR_NOT_FOUND;
        uint32_t idx = (uint32_t)st->slots[pos] - 1;
        itd_user_t *u = &st->users[idx];
        uint64_t n = 0;
        for (int t = 0; t < ITD_EV__COUNT; t++)
                n += u->life[t];
        if (events)
                *events = n;
        /* Eviction leaves bytes a snapshot writes as they are: the id in
         * the arena (garbage until a compaction), the overflow block (on
         * the free list), the record moved out of the dense array. Where
         * they are is noted first: eviction needs the id to find the
         * user's slot. */
        uint32_t blk = u->ov ? u->ov - 1 : UINT32_MAX;
        size_t id_off = SIZE_MAX, id_len = strlen(user_id);
        if (u->id[ITD_ID_INLINE - 1] != 0) {
                uint32_t off;
                memcpy(&off, u->id, sizeof off);
                id_off = off;
        }
        const char *ids_before = st->ids;
        itd_state_user_evict(st, idx);
        /* a compaction during the eviction already left the id behind */
        if (id_off != SIZE_MAX && st->ids == ids_before)
                memset(st->ids + id_off, 0, id_len);
        /* the free list's link stays in the block's first word */
        if (blk != UINT32_MAX)
                memset(st->ov + (size_t)blk * st->ov_bytes + sizeof(uint32_t),
                       0, st->ov_bytes - sizeof(uint32_t));
        memset(&st->users[st->n_users], 0, sizeof *st->users);
        itd_state_front_forget(st, tag);
        return ITD_OK;
}

void itd_state_user_init(const itd_state_t *st, itd_user_t *u, int64_t ts) {
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

uint32_t itd_state_user_create(itd_state_t *st, const char *id, uint32_t tag,
                               int64_t ts) {
        if (st->n_users >= st->conf.max_users) {
                itd_state_user_evict(st, st->lru_tail);
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
        itd_state_user_init(st, u, ts);
        user_set_id(st, u, id);
        int found;
        size_t pos = itd_state_probe(st, id, tag, &found);
        st->slots[pos] = (uint64_t)tag << 32 | (uint64_t)(idx + 1);
        itd_state_lru_push_front(st, idx);
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
                        itd_state_user_evict(st, idx);
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

/* ------------------------------------------------------------ lookups */

itd_err_t itd_state_counts(const itd_state_t *st, const char *user_id,
                           int64_t now_ms, uint32_t *counts) {
        int found;
        size_t pos = itd_state_probe(st, user_id, itd_state_id_tag(user_id),
                                     &found);
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
        size_t pos = itd_state_probe(st, user_id, itd_state_id_tag(user_id),
                                     &found);
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
