/*
 * labeler_snap.c - snapshots of the labeler: the live slots renumbered
 * densely, the heaps as arrays (their shape decides which of two equal
 * times resolves first, so a restored labeler hands out examples in the
 * same order) and the queue of resolved examples; restore checks every
 * link before the labeler is used.
 *
 * @thread pipeline thread only.
 */
#include "labeler_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/mem.h"
#include "snap_int.h"

/* ---------------------------------------------------------- snapshots */

#define LSNAP_MAGIC "ITDLABEL" /* version 3 */
#define LSNAP_VERSION 4 /* 2: slot flags, fake-negative queue entries;
                         * 3: each prediction's offset;
                         * 4: the one framing (sections, CRC32C) */
#define LSNAP_REC 60 /* bytes per slot record, see put_slot */
#define UNLINKED (NIL - 1)

enum {
        LH_DIM, LH_N_IDS, LH_NEXT_COUNT, LH_HORIZON, LH_GAP, LH_MAX_PENDING,
        LH_PER_USER, LH_N_LIVE, LH_HEAP_LABEL, LH_HEAP_NEXT, LH_N_RES,
        LH_PENDING, LH_POSITIVES, LH_NEGATIVES, LH_DROPPED,
        LH__COUNT
};

/* Version 3: today's header words and records in the legacy framing. */
static const itd_snap_kind_t snap_kind_v3 = {
    "labeler", ITD_FRAME_LABELER, 3, LH__COUNT, LSNAP_MAGIC, NULL};
static const itd_snap_kind_t snap_kind = {"labeler", ITD_FRAME_LABELER,
                                          LSNAP_VERSION, LH__COUNT, NULL,
                                          &snap_kind_v3};

/* ts, user hash, score, next probs, user links, label, next, state, flags
 * (version 1 wrote 0 there), offset (version 3) */
static void put_slot(unsigned char *rec, const slot_t *sl, uint32_t prev,
                     uint32_t next) {
        unsigned char *p = rec;
        memcpy(p, &sl->ts_ms, 8);
        memcpy(p + 8, &sl->user_hash, 8);
        memcpy(p + 16, &sl->score, 4);
        memcpy(p + 20, sl->next_probs, 4 * ITD_NEXT__COUNT);
        memcpy(p + 40, &prev, 4);
        memcpy(p + 44, &next, 4);
        p[48] = (unsigned char)sl->label;
        p[49] = (unsigned char)sl->next;
        p[50] = sl->state;
        p[51] = sl->flags;
        memcpy(p + 52, &sl->offset, 8);
}

static void get_slot(void *ctx, const unsigned char *p, size_t i) {
        slot_t *sl = &((itd_labeler_t *)ctx)->slots[i];
        memcpy(&sl->ts_ms, p, 8);
        memcpy(&sl->user_hash, p + 8, 8);
        memcpy(&sl->score, p + 16, 4);
        memcpy(sl->next_probs, p + 20, 4 * ITD_NEXT__COUNT);
        memcpy(&sl->user_prev, p + 40, 4);
        memcpy(&sl->user_next, p + 44, 4);
        sl->label = (int8_t)p[48];
        sl->next = (int8_t)p[49];
        sl->state = p[50];
        sl->flags = p[51];
        memcpy(&sl->offset, p + 52, 8);
}

static uint32_t map_of(const uint32_t *map, uint32_t s) {
        return s == NIL ? NIL : map[s];
}

/* Live slots (pending, resolved, orphan) in index order, renumbered
 * 0..n-1 by map; then their features, the two heaps as arrays (their shape
 * decides the order of equal times) and the queue of examples to hand out
 * (fake-negative entries with QFAKE set). */
typedef struct snap_src_s {
        const itd_labeler_t *lb;
        const uint32_t *map; /* slot -> its number in the snapshot, or NIL */
        uint64_t n_live, n_res;
} snap_src_t;

static void write_payload(itd_snap_t *s, const void *obj) {
        const snap_src_t *src = obj;
        const itd_labeler_t *lb = src->lb;
        const uint32_t *map = src->map;
        unsigned char rec[LSNAP_REC];
        /* the sections of restore's table */
        itd_snap_section(s, "predictions", ITD_FRAME_BYTES,
                         src->n_live * LSNAP_REC);
        for (size_t i = 0; i < lb->cap; i++) {
                const slot_t *sl = &lb->slots[i];
                if (map[i] == NIL)
                        continue;
                int pending = sl->state == PENDING;
                put_slot(rec, sl, pending ? map_of(map, sl->user_prev) : NIL,
                         pending ? map_of(map, sl->user_next) : NIL);
                itd_snap_write(s, rec, sizeof(rec));
        }
        itd_snap_section(s, "features", ITD_FRAME_F32,
                         src->n_live * lb->conf.dim * sizeof(float));
        for (size_t i = 0; i < lb->cap; i++)
                if (map[i] != NIL)
                        itd_snap_write(s, lb->x + i * lb->conf.dim,
                                       lb->conf.dim * sizeof(float));
        itd_snap_section(s, "sparse_ids", ITD_FRAME_U32,
                         src->n_live * lb->conf.n_ids * sizeof(uint32_t));
        for (size_t i = 0; i < lb->cap; i++)
                if (map[i] != NIL)
                        itd_snap_write(s, lb->ids + i * lb->conf.n_ids,
                                       lb->conf.n_ids * sizeof(uint32_t));
        itd_snap_section(s, "heaps_queue", ITD_FRAME_U32,
                         (lb->heap[0].n + lb->heap[1].n + src->n_res) *
                             sizeof(uint32_t));
        for (int h = 0; h < 2; h++)
                for (size_t i = 0; i < lb->heap[h].n; i++) {
                        uint32_t v = map[lb->heap[h].a[i]];
                        itd_snap_write(s, &v, sizeof(v));
                }
        for (uint32_t q = lb->res_head; q != NIL;
             q = itd_labeler_queue_next(lb, q)) {
                uint32_t v = map[q & ~QFAKE] | (q & QFAKE);
                itd_snap_write(s, &v, sizeof(v));
        }
}

itd_err_t itd_labeler_snapshot(const itd_labeler_t *lb, FILE *out,
                               char *errstr, size_t errstr_size) {
        uint32_t *map = itd_xmalloc(lb->cap * sizeof(*map));
        uint64_t n_live = 0, n_res = 0;
        for (size_t i = 0; i < lb->cap; i++) {
                uint8_t state = lb->slots[i].state;
                map[i] = state == PENDING || state == RESOLVED ||
                                 state == ORPHAN
                             ? (uint32_t)n_live++
                             : NIL;
        }
        for (uint32_t q = lb->res_head; q != NIL;
             q = itd_labeler_queue_next(lb, q))
                n_res++;
        uint64_t v[LH__COUNT] = {
            [LH_DIM] = lb->conf.dim,
            [LH_N_IDS] = lb->conf.n_ids,
            [LH_NEXT_COUNT] = ITD_NEXT__COUNT,
            [LH_HORIZON] = (uint64_t)lb->conf.horizon_ms,
            [LH_GAP] = (uint64_t)lb->conf.session_gap_ms,
            [LH_MAX_PENDING] = lb->conf.max_pending,
            [LH_PER_USER] = lb->conf.max_pending_per_user,
            [LH_N_LIVE] = n_live,
            [LH_HEAP_LABEL] = lb->heap[H_LABEL].n,
            [LH_HEAP_NEXT] = lb->heap[H_NEXT].n,
            [LH_N_RES] = n_res,
            [LH_PENDING] = lb->stats.pending,
            [LH_POSITIVES] = lb->stats.positives,
            [LH_NEGATIVES] = lb->stats.negatives,
            [LH_DROPPED] = lb->stats.dropped_full,
        };
        snap_src_t src = {lb, map, n_live, n_res};
        itd_err_t err = itd_snap_save(out, &snap_kind, v, write_payload, &src,
                                      errstr, errstr_size);
        free(map);
        return err;
}

/* Rebuilds heap positions, the resolved queue, the user lists and map
 * from the restored slots; returns NULL or what is inconsistent. */
static const char *restore_links(itd_labeler_t *lb, size_t n_live,
                                 const uint32_t *heap_a[2],
                                 const size_t heap_n[2], const uint32_t *res,
                                 size_t n_res) {
        size_t pending = 0, open[2] = {0, 0}, resolved = 0, fakes = 0;
        for (size_t i = 0; i < n_live; i++) {
                slot_t *sl = &lb->slots[i];
                sl->hpos[0] = sl->hpos[1] = NIL;
                sl->link = sl->fake_link = UNLINKED;
                if ((sl->flags & ~(F_FAKED | F_FAKE_QUEUED | F_NO_TRAIN)) ||
                    ((sl->flags & F_FAKE_QUEUED) && !(sl->flags & F_FAKED)) ||
                    ((sl->flags & F_NO_TRAIN) && (sl->flags & F_FAKED)))
                        return "unknown slot flags";
                fakes += (sl->flags & F_FAKE_QUEUED) != 0;
                if (sl->state == ORPHAN) {
                        if (!(sl->flags & F_FAKE_QUEUED))
                                return "a dropped prediction without its "
                                       "fake negative";
                } else if (sl->state == PENDING) {
                        if (sl->label < -1 || sl->label > 1 ||
                            sl->next < -1 || sl->next >= ITD_NEXT__COUNT ||
                            (sl->label >= 0 && sl->next >= 0))
                                return "a pending prediction with both "
                                       "outcomes known";
                        if ((sl->user_prev != NIL && sl->user_prev >= n_live) ||
                            (sl->user_next != NIL && sl->user_next >= n_live))
                                return "a user link outside the pool";
                        pending++;
                        open[H_LABEL] += sl->label < 0;
                        open[H_NEXT] += sl->next < 0;
                } else if (sl->state == RESOLVED) {
                        if (sl->label < 0 || sl->label > 1 || sl->next < 0 ||
                            sl->next >= ITD_NEXT__COUNT)
                                return "a resolved example without outcomes";
                        resolved++;
                } else {
                        return "a slot in an unknown state";
                }
        }
        if (pending != lb->stats.pending || resolved + fakes != n_res ||
            open[0] != heap_n[0] || open[1] != heap_n[1])
                return "counts disagree with the slots";
        for (int h = 0; h < 2; h++) {
                for (size_t i = 0; i < heap_n[h]; i++) {
                        uint32_t s = heap_a[h][i];
                        if (s >= n_live || lb->slots[s].state != PENDING ||
                            lb->slots[s].hpos[h] != NIL ||
                            (h == H_LABEL ? lb->slots[s].label
                                          : lb->slots[s].next) >= 0)
                                return "a heap entry that is not an open "
                                       "prediction";
                        if (i > 0 && heap_key(lb, heap_a[h][(i - 1) / 2]) >
                                         heap_key(lb, s))
                                return "a heap out of order";
                        lb->heap[h].a[i] = s;
                        lb->slots[s].hpos[h] = (uint32_t)i;
                }
                lb->heap[h].n = heap_n[h];
        }
        /* each fake entry once, before its slot's final entry: take
         * frees a slot with its final entry */
        for (size_t i = 0; i < n_res; i++) {
                uint32_t q = res[i], s = q & ~QFAKE;
                if (s >= n_live)
                        return "a bad resolved-queue entry";
                slot_t *sl = &lb->slots[s];
                if (q & QFAKE ? !(sl->flags & F_FAKE_QUEUED) ||
                                    sl->fake_link != UNLINKED
                              : sl->state != RESOLVED ||
                                    sl->link != UNLINKED ||
                                    ((sl->flags & F_FAKE_QUEUED) &&
                                     sl->fake_link == UNLINKED))
                        return "a bad resolved-queue entry";
                itd_labeler_queue_push(lb, q);
        }
        size_t linked = 0;
        for (size_t i = 0; i < n_live; i++) {
                slot_t *sl = &lb->slots[i];
                if (sl->state != PENDING || sl->user_prev != NIL)
                        continue;
                if ((lb->umap_used + 1) * 2 > lb->umap_cap)
                        itd_labeler_umap_grow(lb);
                umap_entry_t *e = itd_labeler_umap_find(lb, sl->user_hash, 1);
                if (e->count)
                        return "two pending lists for one user";
                lb->umap_used++;
                e->head = (uint32_t)i;
                uint32_t prev = NIL;
                for (uint32_t s = (uint32_t)i; s != NIL;
                     s = lb->slots[s].user_next) {
                        slot_t *m = &lb->slots[s];
                        if (m->state != PENDING ||
                            m->user_hash != sl->user_hash ||
                            m->user_prev != prev || e->count >= n_live)
                                return "a broken per-user list";
                        e->count++;
                        prev = s;
                }
                e->tail = prev;
                linked += e->count;
        }
        if (linked != pending)
                return "pending predictions outside every user list";
        return NULL;
}

itd_err_t itd_labeler_restore(FILE *in, const itd_labeler_conf_t *conf,
                              itd_labeler_t **out, char *errstr,
                              size_t errstr_size) {
#define FAIL(cls, ...) ITD_SNAP_FAIL(&s, cls, __VA_ARGS__)
        static const char *const names[LH__COUNT] = {
            [LH_DIM] = "labeler.dim", [LH_N_IDS] = "labeler.n_ids",
            [LH_NEXT_COUNT] = "next-action classes",
            [LH_HORIZON] = "labeler.horizon_ms",
            [LH_GAP] = "labeler.session_gap_ms"};
        itd_labeler_t *lb = NULL;
        uint32_t *links = NULL;
        itd_snap_t s = {.f = in};
        *out = NULL;
        uint64_t v[LH__COUNT];
        if (itd_snap_header_read(&s, &snap_kind, v, errstr, errstr_size) != 0)
                goto fail;
        const uint64_t mine[LH_GAP + 1] = {
            [LH_DIM] = conf->dim, [LH_N_IDS] = conf->n_ids,
            [LH_NEXT_COUNT] = ITD_NEXT__COUNT,
            [LH_HORIZON] = (uint64_t)conf->horizon_ms,
            [LH_GAP] = (uint64_t)conf->session_gap_ms};
        for (size_t i = 0; i <= LH_GAP; i++)
                if (v[i] != mine[i])
                        FAIL(ITD_ERR_INCOMPATIBLE,
                             "incompatible labeler snapshot: taken with %s = %"
                             PRId64 ", the configuration has %" PRId64,
                             names[i], (int64_t)v[i], (int64_t)mine[i]);
        size_t n_live = v[LH_N_LIVE];
        if (n_live > conf->max_pending)
                FAIL(ITD_ERR_INCOMPATIBLE,
                     "incompatible labeler snapshot: it holds %zu pending "
                     "or unlearned predictions, labeler.max_pending is %zu",
                     n_live, conf->max_pending);
        size_t heap_n[2] = {v[LH_HEAP_LABEL], v[LH_HEAP_NEXT]};
        size_t n_res = v[LH_N_RES];
        if (heap_n[0] > n_live || heap_n[1] > n_live ||
            n_res > 2 * n_live || /* a final and a fake entry per slot */
            s.payload_bytes !=
                n_live * (LSNAP_REC + conf->dim * sizeof(float) +
                          conf->n_ids * sizeof(uint32_t)) +
                    (heap_n[0] + heap_n[1] + n_res) * sizeof(uint32_t))
                FAIL(ITD_ERR_CORRUPT,
                     "corrupt labeler snapshot: sizes in the header (bytes "
                     "24..%d) do not describe a labeler",
                     (int)itd_snap_header_bytes(s.kind) - 1);

        lb = itd_labeler_new(conf, errstr, errstr_size);
        if (!lb)
                goto fail;
        if (lb->cap < n_live) {
                size_t cap = lb->cap;
                while (cap < n_live)
                        cap *= 2;
                itd_labeler_pool_grow(lb, cap < conf->max_pending
                                              ? cap
                                              : conf->max_pending);
        }
        /* slots 0..n_live-1 hold the snapshot; the rest are free */
        lb->free_head = NIL;
        for (size_t i = lb->cap; i-- > n_live;) {
                lb->slots[i].state = FREE;
                lb->slots[i].link = lb->free_head;
                lb->free_head = (uint32_t)i;
        }
        lb->stats.pending = v[LH_PENDING];
        lb->stats.positives = v[LH_POSITIVES];
        lb->stats.negatives = v[LH_NEGATIVES];
        lb->stats.dropped_full = v[LH_DROPPED];

        size_t n_links = heap_n[0] + heap_n[1] + n_res;
        links = itd_xmalloc((n_links + 1) * sizeof(*links));
        const itd_snap_part_t parts[] = {
            {.n = n_live * LSNAP_REC, .what = "the predictions",
             .sec = "predictions", .dtype = ITD_FRAME_BYTES,
             .rec = LSNAP_REC, .each = get_slot, .ctx = lb},
            ITD_SNAP_PART(lb->x, n_live * conf->dim * sizeof(float),
                          "the features", "features", ITD_FRAME_F32),
            ITD_SNAP_PART(lb->ids, n_live * conf->n_ids * sizeof(uint32_t),
                          "the sparse ids", "sparse_ids", ITD_FRAME_U32),
            ITD_SNAP_PART(links, n_links * sizeof(*links),
                          "the heaps and the queue", "heaps_queue",
                          ITD_FRAME_U32),
        };
        if (itd_snap_payload_read(&s, parts, sizeof parts / sizeof parts[0],
                                  errstr, errstr_size) != 0)
                goto fail;
        const uint32_t *heap_a[2] = {links, links + heap_n[0]};
        const char *bad = restore_links(lb, n_live, heap_a, heap_n,
                                        links + heap_n[0] + heap_n[1], n_res);
        if (bad)
                FAIL(ITD_ERR_CORRUPT, "corrupt labeler snapshot: %s", bad);
        free(links);
        *out = lb;
        return ITD_OK;
fail:
        free(links);
        itd_labeler_destroy(lb);
        return s.err ? s.err : ITD_ERR_CONF;
#undef FAIL
}

