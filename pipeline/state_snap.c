/*
 * state_snap.c - the per-partition state as JSON lines (itd_state_dump)
 * and as a snapshot: the arrays as they are, one section each, behind a
 * header with the layout, configuration and sizes (snap_int.h); restore
 * checks every index and rebuilds the hash tables, so a restored state is
 * the same state.
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

#define TYPES ITD_EV__COUNT


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
/* ------------------------------------------------- state snapshots */

#define SNAP_MAGIC "ITDSTATE" /* versions 1..3 */
#define SNAP_VERSION 4 /* 2: the event-time frontier and its users;
                        * 3: label and purchase counts;
                        * 4: the one framing (sections, CRC32C) */
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

/* Version 1 (no frontier) is still read: its watermark was the newest
 * event time minus the lateness, so that time becomes the frontier, and
 * the list of recent users starts empty. */
static const itd_snap_kind_t snap_kind_v1 = {
    "state", ITD_FRAME_STATE, 1, SNAP_WORDS - 6, SNAP_MAGIC, NULL};

/* Versions 1 and 2 (no label or purchase counts) are still read: their
 * user records held 16-bit sess_events and priced_views where today's hold
 * those two in 8 bits and the two label counts (convert_v2_users); the
 * partition's event and purchase counts are rebuilt from its users'
 * lifetime counts. */
static const itd_snap_kind_t snap_kind_v2 = {
    "state", ITD_FRAME_STATE, 2, SNAP_WORDS - 4, SNAP_MAGIC, &snap_kind_v1};
/* Version 3: today's header words and arrays in the legacy framing. */
static const itd_snap_kind_t snap_kind_v3 = {
    "state", ITD_FRAME_STATE, 3, SNAP_WORDS, SNAP_MAGIC, &snap_kind_v2};
static const itd_snap_kind_t snap_kind = {
    "state", ITD_FRAME_STATE, SNAP_VERSION, SNAP_WORDS, NULL, &snap_kind_v3};
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

/* The arrays, in payload order, for writing and for restore (which
 * sizes them first). The table slots are not stored: restore rebuilds
 * them from the ids. */
#define STATE_PARTS 8
static void state_parts(itd_state_t *st, itd_snap_part_t *p) {
        const itd_snap_part_t parts[STATE_PARTS] = {
            ITD_SNAP_PART(st->users, st->n_users * sizeof(*st->users),
                          "the users", "users", ITD_FRAME_BYTES),
            ITD_SNAP_PART(st->ids, st->ids_len, "the long user ids", "ids",
                          ITD_FRAME_BYTES),
            ITD_SNAP_PART(st->ov, st->ov_n * st->ov_bytes,
                          "the overflow blocks", "overflow",
                          ITD_FRAME_BYTES),
            ITD_SNAP_PART(st->cats.off, (st->cats.n + 1) * sizeof(uint32_t),
                          "the category offsets", "cat_offsets",
                          ITD_FRAME_U32),
            ITD_SNAP_PART(st->cats.hash, (st->cats.n + 1) * sizeof(uint32_t),
                          "the category hashes", "cat_hashes",
                          ITD_FRAME_U32),
            ITD_SNAP_PART(st->cats.arena, st->cats.arena_len,
                          "the category names", "cat_names",
                          ITD_FRAME_BYTES),
            ITD_SNAP_PART(st->front_tag, st->front_n * sizeof(uint32_t),
                          "the frontier's users", "front_users",
                          ITD_FRAME_U32),
            ITD_SNAP_PART(st->front_ts, st->front_n * sizeof(int64_t),
                          "the frontier's times", "front_times",
                          ITD_FRAME_U64),
        };
        memcpy(p, parts, sizeof parts);
}

static void write_payload(itd_snap_t *s, const void *obj) {
        itd_snap_part_t parts[STATE_PARTS];
        /* the one table for both ways; writing only reads the arrays */
        state_parts((itd_state_t *)obj, parts);
        itd_snap_write_parts(s, parts, STATE_PARTS);
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
        uint64_t hv[SNAP_WORDS];
        char buf[128];
        *out = NULL;
        if (itd_state_conf_check(conf, errstr, errstr_size) != ITD_OK)
                return ITD_ERR_CONF;
        if (itd_snap_header_read(&s, &snap_kind, hv, errstr, errstr_size) != 0)
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
        /* the user table's capacity is any size (itd_state_home), the
         * category table's a power of two */
        int caps_ok = v[SC_SLOT_CAP] >= 1024 &&
                   v[SC_SLOT_CAP] <= (uint64_t)UINT32_MAX + 1 &&
                   v[SC_CATS_CAP] >= 256 &&
                   (v[SC_CATS_CAP] & (v[SC_CATS_CAP] - 1)) == 0;
        if (!caps_ok || v[SC_N_USERS] > v[SC_USERS_CAP] ||
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
            s.payload_bytes != v[SC_N_USERS] * sizeof(itd_user_t) +
                                 v[SC_IDS_LEN] + v[SC_OV_N] * ov_bytes +
                                 (v[SC_CATS_N] + 1) * 8 +
                                 v[SC_CATS_ARENA_LEN] +
                                 v[SC_FRONT_N] * (4 + 8))
                FAIL(ITD_ERR_CORRUPT,
                     "corrupt state snapshot: sizes in the header (bytes "
                     "24..%d) do not describe a state",
                     (int)itd_snap_header_bytes(s.kind) - 1);

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

        itd_snap_part_t parts[STATE_PARTS];
        state_parts(st, parts);
        if (itd_snap_payload_read(&s, parts, STATE_PARTS, errstr,
                                  errstr_size) != 0)
                goto fail;
        if (s.version < 3)
                convert_v2_users(st);
        const char *bad = restore_check(st, buf, sizeof(buf));
        if (bad)
                FAIL(ITD_ERR_CORRUPT, "corrupt state snapshot: %s", bad);

        for (uint32_t i = 0; i < st->front_n; i++)
                itd_state_sorted_insert(st->front_sorted, i, st->front_ts[i]);
        /* rebuild the two hash tables */
        for (size_t i = 0; i < st->n_users; i++) {
                const char *id = itd_user_id(st, &st->users[i]);
                uint32_t tag = itd_state_id_tag(id);
                int found;
                size_t at = itd_state_probe(st, id, tag, &found);
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
                itd_state_user_evict(st, st->lru_tail);
                st->stats.evicted_cap++;
        }
        *out = st;
        return ITD_OK;
fail:
        itd_state_destroy(st);
        return s.err ? s.err : ITD_ERR_CONF;
#undef FAIL
}
