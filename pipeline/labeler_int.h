/*
 * labeler_int.h - private layout of the labeler (labeler.c) shared with its
 * snapshots (labeler_snap.c).
 */
#ifndef INTENTD_LABELER_INT_H
#define INTENTD_LABELER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/labeler.h"

#define NIL UINT32_MAX
#define POOL_FIRST 1024 /* slots allocated up front */

/* ORPHAN: dropped by the per-user cap while its fake negative is queued */
enum { FREE = 0, PENDING, RESOLVED, TAKEN, ORPHAN };
/* slot flags; F_NO_TRAIN: judged, never learned from (ITD_LABEL_NO_TRAIN) */
enum { F_FAKED = 1, F_FAKE_QUEUED = 2, F_NO_TRAIN = 4 };
#define QFAKE UINT32_C(0x80000000)       /* queue entry: the fake negative */
enum { H_LABEL = 0, H_NEXT = 1 };

typedef struct slot_s {
        int64_t ts_ms;
        int64_t offset;                /* the row it was predicted on */
        uint64_t user_hash;
        float score;
        float next_probs[ITD_NEXT__COUNT];
        uint32_t user_prev, user_next; /* this user's pending, add order */
        uint32_t hpos[2];              /* heap positions or NIL */
        uint32_t link;                 /* free / resolved / taken list */
        uint32_t fake_link;            /* queue link of its fake entry */
        int8_t label;                  /* -1 open, 0, 1 */
        int8_t next;                   /* -1 open, else itd_next_t */
        uint8_t state;
        uint8_t flags;                 /* F_* */
} slot_t;

typedef struct umap_entry_s {
        uint64_t key;
        uint32_t head, tail, count; /* count 0: entry unused */
} umap_entry_t;

typedef struct heap_s {
        uint32_t *a;
        size_t n;
} heap_t;

struct itd_labeler_s {
        itd_labeler_conf_t conf;
        size_t cap;        /* slots allocated, <= max_pending */
        slot_t *slots;
        float *x;          /* cap * dim */
        uint32_t *ids;     /* cap * n_ids */
        uint32_t free_head;
        uint32_t res_head, res_tail; /* queue entries, oldest first */
        uint32_t taken_head;         /* handed out by take; freed next call */
        umap_entry_t *umap;
        size_t umap_cap;             /* power of two, >= 2 * umap_used */
        size_t umap_used;            /* entries with count > 0 */
        heap_t heap[2];
        itd_labeler_stats_t stats;
};

/* The prediction time of slot s: what both heaps order by. */
static inline int64_t heap_key(const itd_labeler_t *lb, uint32_t s) {
        return lb->slots[s].ts_ms;
}

/* labeler.c */
/* The user map entry of key; with create, a new entry (count 0) when there
 * is none, else NULL. Entries move when the map grows. */
umap_entry_t *itd_labeler_umap_find(itd_labeler_t *lb, uint64_t key,
                                    int create);
/* Doubles the map; entries move, so no umap_entry_t * survives a call. */
void itd_labeler_umap_grow(itd_labeler_t *lb);
/* Grows the pool to cap slots (<= max_pending); the new slots go on the
 * free list in index order. */
void itd_labeler_pool_grow(itd_labeler_t *lb, size_t cap);
/* The queue entry after q. */
uint32_t itd_labeler_queue_next(const itd_labeler_t *lb, uint32_t q);
/* Appends queue entry q (a slot, or a slot | QFAKE). */
void itd_labeler_queue_push(itd_labeler_t *lb, uint32_t q);

#endif
