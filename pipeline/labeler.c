/*
 * labeler.c - pending predictions waiting for their delayed labels.
 *
 * The pool of slots (each with its dim floats and n_ids ids), the user map
 * and the heaps grow by doubling when full, up to max_pending, so a
 * partition reserves only what its peak needs (16 partitions x the default
 * 1M would otherwise hold gigabytes each) and steady state allocates
 * nothing. Two indexed min-heaps on prediction time: one for predictions
 * whose purchase label is open (closed by the watermark passing
 * t + horizon) and one for those whose next action is open (closed by the
 * watermark passing t + session gap: LEAVE). A per-user list, in add order,
 * holds that user's pending slots so an event touches only its own user's
 * predictions.
 *
 * Rules (labeler.h): positive when the user purchases with ts in
 * [t, t + horizon], the purchase arriving after the prediction; the next
 * action is the type of the user's first later-arriving event with ts >= t
 * (ts in [t, t + gap]; later than t + gap means the user left: LEAVE).
 * REMOVE_FROM_CART and FAVORITE count as VIEW, the next-action head has no
 * class of their own. Events older than t (out of order) say nothing.
 *
 * max_pending_per_user: adding a prediction for a user who already has
 * that many drops the user's oldest pending one: it is not trained on and
 * is counted in dropped_full (its prediction was published; only the
 * training example and its progressive-validation judgement are lost).
 * A full pool (max_pending) drops the labeler's oldest pending prediction
 * the same way, the earliest of the two heap tops (every pending slot is
 * in at least one heap): nothing frees the pool but the watermark, which
 * moves only with new events, so refusing the add would stall the daemon.
 * Only when every slot holds an example not yet taken (none pending) is
 * the new prediction itself the one not kept, counted the same way.
 *
 * labels.policy FAKE_NEGATIVE (Ktena et al. 2019): itd_labeler_add also
 * queues the new prediction as a negative example at once (judge 0, next
 * ITD_NEXT__COUNT: the next-action head has no label for it). The
 * prediction then stays pending exactly as under WAIT and is handed out
 * again when both outcomes are known: judged, and trained only when it is
 * a positive (its negative was learned already). The queue of examples
 * to hand out holds entries "slot" and "slot | QFAKE"; a slot can be in it
 * twice (fake, then final), so the fake entry links through fake_link.
 * A slot stays allocated while its fake entry is queued, even when the
 * per-user cap drops it (state ORPHAN), since take hands out its memory.
 * Whether a fake was made is kept per slot (F_FAKED), so a restart under
 * another policy never trains one prediction's negative twice.
 *
 * Snapshots (end of file) keep the live slots renumbered densely, and the
 * heaps as arrays: their shape decides which of two equal times resolves
 * first, so a restored labeler hands out examples in the same order.
 *
 * @thread pipeline thread only.
 */
#include "intentd/labeler.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/mem.h"
#include "snap_int.h"

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

/* ---------------------------------------------------------- user map */

static size_t umap_home(const itd_labeler_t *lb, uint64_t key) {
        key ^= key >> 31;
        key *= UINT64_C(0x9E3779B97F4A7C15);
        return (size_t)(key >> 17) & (lb->umap_cap - 1);
}

static umap_entry_t *umap_find(itd_labeler_t *lb, uint64_t key, int create) {
        size_t mask = lb->umap_cap - 1;
        for (size_t pos = umap_home(lb, key);; pos = (pos + 1) & mask) {
                umap_entry_t *e = &lb->umap[pos];
                if (e->count && e->key == key)
                        return e;
                if (!e->count) {
                        if (!create)
                                return NULL;
                        e->key = key;
                        e->head = e->tail = NIL;
                        return e; /* count stays 0 until a slot is linked */
                }
        }
}

/* Backward-shift deletion of an entry whose count reached 0. */
static void umap_delete(itd_labeler_t *lb, umap_entry_t *e) {
        size_t mask = lb->umap_cap - 1;
        size_t i = (size_t)(e - lb->umap), j = i;
        for (;;) {
                j = (j + 1) & mask;
                if (!lb->umap[j].count)
                        break;
                size_t k = umap_home(lb, lb->umap[j].key);
                int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
                if (stays)
                        continue;
                lb->umap[i] = lb->umap[j];
                i = j;
        }
        lb->umap[i].count = 0;
        lb->umap_used--;
}

/* Doubles the map; entries move, so no umap_entry_t * survives a call. */
static void umap_grow(itd_labeler_t *lb) {
        umap_entry_t *old = lb->umap;
        size_t old_cap = lb->umap_cap;
        lb->umap_cap *= 2;
        lb->umap = itd_xcalloc(lb->umap_cap, sizeof(*lb->umap));
        size_t mask = lb->umap_cap - 1;
        for (size_t i = 0; i < old_cap; i++) {
                if (!old[i].count)
                        continue;
                size_t pos = umap_home(lb, old[i].key);
                while (lb->umap[pos].count)
                        pos = (pos + 1) & mask;
                lb->umap[pos] = old[i];
        }
        free(old);
}

/* ------------------------------------------------------------- pool */

/* Grows the pool to cap slots (<= max_pending); the new slots go on the
 * free list in index order. */
static void pool_grow(itd_labeler_t *lb, size_t cap) {
        size_t old = lb->cap;
        size_t dim = lb->conf.dim ? lb->conf.dim : 1;
        size_t n_ids = lb->conf.n_ids ? lb->conf.n_ids : 1;
        lb->slots = itd_xrealloc(lb->slots, cap * sizeof(*lb->slots));
        lb->x = itd_xrealloc(lb->x, cap * dim * sizeof(float));
        lb->ids = itd_xrealloc(lb->ids, cap * n_ids * sizeof(uint32_t));
        for (int h = 0; h < 2; h++)
                lb->heap[h].a = itd_xrealloc(lb->heap[h].a,
                                             cap * sizeof(uint32_t));
        memset(lb->slots + old, 0, (cap - old) * sizeof(*lb->slots));
        for (size_t i = cap; i-- > old;) {
                lb->slots[i].state = FREE;
                lb->slots[i].link = lb->free_head;
                lb->free_head = (uint32_t)i;
        }
        lb->cap = cap;
}

/* ------------------------------------------------------------- heaps */

static int64_t heap_key(const itd_labeler_t *lb, uint32_t s) {
        return lb->slots[s].ts_ms;
}

static void heap_place(itd_labeler_t *lb, int h, size_t i, uint32_t s) {
        lb->heap[h].a[i] = s;
        lb->slots[s].hpos[h] = (uint32_t)i;
}

static void heap_up(itd_labeler_t *lb, int h, size_t i) {
        uint32_t s = lb->heap[h].a[i];
        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (heap_key(lb, lb->heap[h].a[p]) <= heap_key(lb, s))
                        break;
                heap_place(lb, h, i, lb->heap[h].a[p]);
                i = p;
        }
        heap_place(lb, h, i, s);
}

static void heap_down(itd_labeler_t *lb, int h, size_t i) {
        heap_t *hp = &lb->heap[h];
        uint32_t s = hp->a[i];
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= hp->n)
                        break;
                if (c + 1 < hp->n &&
                    heap_key(lb, hp->a[c + 1]) < heap_key(lb, hp->a[c]))
                        c++;
                if (heap_key(lb, hp->a[c]) >= heap_key(lb, s))
                        break;
                heap_place(lb, h, i, hp->a[c]);
                i = c;
        }
        heap_place(lb, h, i, s);
}

static void heap_push(itd_labeler_t *lb, int h, uint32_t s) {
        size_t i = lb->heap[h].n++;
        heap_place(lb, h, i, s);
        heap_up(lb, h, i);
}

static void heap_remove(itd_labeler_t *lb, int h, uint32_t s) {
        heap_t *hp = &lb->heap[h];
        size_t i = lb->slots[s].hpos[h];
        if (i == NIL)
                return;
        lb->slots[s].hpos[h] = NIL;
        uint32_t last = hp->a[--hp->n];
        if (i == hp->n)
                return;
        heap_place(lb, h, i, last);
        heap_up(lb, h, i);
        heap_down(lb, h, lb->slots[last].hpos[h]);
}

/* ------------------------------------------------------------- slots */

static void user_unlink(itd_labeler_t *lb, uint32_t s) {
        slot_t *sl = &lb->slots[s];
        umap_entry_t *e = umap_find(lb, sl->user_hash, 0);
        if (sl->user_prev != NIL)
                lb->slots[sl->user_prev].user_next = sl->user_next;
        else
                e->head = sl->user_next;
        if (sl->user_next != NIL)
                lb->slots[sl->user_next].user_prev = sl->user_prev;
        else
                e->tail = sl->user_prev;
        if (--e->count == 0)
                umap_delete(lb, e);
}

static void slot_free(itd_labeler_t *lb, uint32_t s) {
        lb->slots[s].state = FREE;
        lb->slots[s].link = lb->free_head;
        lb->free_head = s;
}

/* The queue entry after q. */
static uint32_t queue_next(const itd_labeler_t *lb, uint32_t q) {
        const slot_t *sl = &lb->slots[q & ~QFAKE];
        return q & QFAKE ? sl->fake_link : sl->link;
}

/* The link field that follows queue entry q. */
static uint32_t *queue_link(itd_labeler_t *lb, uint32_t q) {
        slot_t *sl = &lb->slots[q & ~QFAKE];
        return q & QFAKE ? &sl->fake_link : &sl->link;
}

static void queue_push(itd_labeler_t *lb, uint32_t q) {
        *queue_link(lb, q) = NIL;
        if (lb->res_tail != NIL)
                *queue_link(lb, lb->res_tail) = q;
        else
                lb->res_head = q;
        lb->res_tail = q;
}

/* Both outcomes known: leave the pending structures, queue for take. */
static void resolve(itd_labeler_t *lb, uint32_t s) {
        slot_t *sl = &lb->slots[s];
        user_unlink(lb, s);
        heap_remove(lb, H_LABEL, s);
        heap_remove(lb, H_NEXT, s);
        sl->state = RESOLVED;
        queue_push(lb, s);
        lb->stats.pending--;
        if (sl->label)
                lb->stats.positives++;
        else
                lb->stats.negatives++;
}

/* Gives up pending slot s (per-user cap or full pool): it is neither
 * trained on nor judged, and counted in dropped_full. */
static void drop_pending(itd_labeler_t *lb, uint32_t s) {
        heap_remove(lb, H_LABEL, s);
        heap_remove(lb, H_NEXT, s);
        user_unlink(lb, s);
        /* a queued fake negative still needs its features */
        if (lb->slots[s].flags & F_FAKE_QUEUED)
                lb->slots[s].state = ORPHAN;
        else
                slot_free(lb, s);
        lb->stats.pending--;
        lb->stats.dropped_full++;
}

/* The pending slot with the earliest event time, or NIL if none. A pending
 * slot has an open outcome, so it is in at least one heap. */
static uint32_t oldest_pending(const itd_labeler_t *lb) {
        const heap_t *hl = &lb->heap[H_LABEL], *hn = &lb->heap[H_NEXT];
        if (!hl->n)
                return hn->n ? hn->a[0] : NIL;
        if (!hn->n)
                return hl->a[0];
        return heap_key(lb, hn->a[0]) < heap_key(lb, hl->a[0]) ? hn->a[0]
                                                               : hl->a[0];
}

/* Examples handed out by the previous take are released now. */
static void release_taken(itd_labeler_t *lb) {
        while (lb->taken_head != NIL) {
                uint32_t s = lb->taken_head;
                lb->taken_head = lb->slots[s].link;
                slot_free(lb, s);
        }
}

/* ------------------------------------------------------------ public */

itd_labeler_t *itd_labeler_new(const itd_labeler_conf_t *conf, char *errstr,
                               size_t errstr_size) {
        const char *bad = NULL;
        if (conf->max_pending < 1 || conf->max_pending >= NIL / 2)
                bad = "max_pending";
        else if (conf->horizon_ms < 1)
                bad = "horizon_ms";
        else if (conf->session_gap_ms < 1)
                bad = "session_gap_ms";
        else if (conf->policy != ITD_LABELS_WAIT &&
                 conf->policy != ITD_LABELS_FAKE_NEGATIVE)
                bad = "policy";
        if (bad) {
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size,
                                 "labeler.%s: value is out of range "
                                 "(max_pending 1..%u, durations >= 1 ms, "
                                 "policy 0 or 1)",
                                 bad, NIL / 2 - 1);
                return NULL;
        }
        itd_labeler_t *lb = itd_xcalloc(1, sizeof(*lb));
        lb->conf = *conf;
        lb->free_head = NIL;
        lb->res_head = lb->res_tail = lb->taken_head = NIL;
        pool_grow(lb, conf->max_pending < POOL_FIRST ? conf->max_pending
                                                     : POOL_FIRST);
        lb->umap_cap = 64;
        lb->umap = itd_xcalloc(lb->umap_cap, sizeof(*lb->umap));
        return lb;
}

void itd_labeler_destroy(itd_labeler_t *lb) {
        if (!lb)
                return;
        free(lb->slots);
        free(lb->x);
        free(lb->ids);
        free(lb->umap);
        free(lb->heap[0].a);
        free(lb->heap[1].a);
        free(lb);
}

static itd_next_t next_of(itd_event_type_t type) {
        switch (type) {
        case ITD_EV_SEARCH: return ITD_NEXT_SEARCH;
        case ITD_EV_ADD_TO_CART: return ITD_NEXT_ADD_TO_CART;
        case ITD_EV_PURCHASE: return ITD_NEXT_PURCHASE;
        default: return ITD_NEXT_VIEW; /* VIEW, REMOVE_FROM_CART, FAVORITE */
        }
}

void itd_labeler_observe(itd_labeler_t *lb, uint64_t user_hash, int64_t ts_ms,
                         itd_event_type_t type) {
        release_taken(lb);
        umap_entry_t *e = umap_find(lb, user_hash, 0);
        if (!e)
                return;
        uint32_t s = e->head;
        while (s != NIL) {
                slot_t *sl = &lb->slots[s];
                uint32_t after = sl->user_next;
                if (ts_ms >= sl->ts_ms) {
                        if (sl->label < 0 && type == ITD_EV_PURCHASE &&
                            ts_ms - sl->ts_ms <= lb->conf.horizon_ms) {
                                sl->label = 1;
                                heap_remove(lb, H_LABEL, s);
                        }
                        if (sl->next < 0) {
                                sl->next = (int8_t)(ts_ms - sl->ts_ms <=
                                                            lb->conf
                                                                .session_gap_ms
                                                        ? next_of(type)
                                                        : ITD_NEXT_LEAVE);
                                heap_remove(lb, H_NEXT, s);
                        }
                        /* resolve() may delete the user's map entry, so
                         * the walk continues from the saved link */
                        if (sl->label >= 0 && sl->next >= 0)
                                resolve(lb, s);
                }
                s = after;
        }
}

itd_err_t itd_labeler_add(itd_labeler_t *lb, uint64_t user_hash,
                          int64_t ts_ms, int64_t offset, const float *x,
                          const uint32_t *ids, float score,
                          const float *next_probs) {
        return itd_labeler_add_opt(lb, user_hash, ts_ms, offset, x, ids,
                                   score, next_probs, 0);
}

itd_err_t itd_labeler_add_opt(itd_labeler_t *lb, uint64_t user_hash,
                              int64_t ts_ms, int64_t offset, const float *x,
                              const uint32_t *ids, float score,
                              const float *next_probs, unsigned opts) {
        release_taken(lb);
        umap_entry_t *e = umap_find(lb, user_hash, 0);
        if (e && lb->conf.max_pending_per_user &&
            e->count >= lb->conf.max_pending_per_user)
                drop_pending(lb, e->head);
        while (lb->free_head == NIL) {
                if (lb->cap < lb->conf.max_pending) {
                        pool_grow(lb, lb->cap * 2 < lb->conf.max_pending
                                          ? lb->cap * 2
                                          : lb->conf.max_pending);
                        break;
                }
                /* an orphaned drop frees no slot: go on to the next */
                uint32_t old = oldest_pending(lb);
                if (old == NIL) {
                        /* every slot waits for take: keep the new one out */
                        lb->stats.dropped_full++;
                        return ITD_OK;
                }
                drop_pending(lb, old);
        }
        if ((lb->umap_used + 1) * 2 > lb->umap_cap)
                umap_grow(lb);
        e = umap_find(lb, user_hash, 1);
        if (!e->count)
                lb->umap_used++;
        uint32_t s = lb->free_head;
        slot_t *sl = &lb->slots[s];
        lb->free_head = sl->link;
        sl->ts_ms = ts_ms;
        sl->offset = offset;
        sl->user_hash = user_hash;
        sl->score = score;
        for (int k = 0; k < ITD_NEXT__COUNT; k++)
                sl->next_probs[k] = next_probs ? next_probs[k] : 0.0f;
        sl->label = -1;
        sl->next = -1;
        sl->state = PENDING;
        sl->flags = 0;
        sl->link = NIL;
        sl->hpos[0] = sl->hpos[1] = NIL;
        if (lb->conf.dim)
                memcpy(lb->x + (size_t)s * lb->conf.dim, x,
                       lb->conf.dim * sizeof(float));
        if (lb->conf.n_ids)
                memcpy(lb->ids + (size_t)s * lb->conf.n_ids, ids,
                       lb->conf.n_ids * sizeof(uint32_t));
        sl->user_next = NIL;
        sl->user_prev = e->tail;
        if (e->tail != NIL)
                lb->slots[e->tail].user_next = s;
        else
                e->head = s;
        e->tail = s;
        e->count++;
        heap_push(lb, H_LABEL, s);
        heap_push(lb, H_NEXT, s);
        lb->stats.pending++;
        if (opts & ITD_LABEL_NO_TRAIN)
                sl->flags = F_NO_TRAIN; /* no fake negative to learn */
        else if (lb->conf.policy == ITD_LABELS_FAKE_NEGATIVE) {
                sl->flags = F_FAKED | F_FAKE_QUEUED;
                queue_push(lb, s | QFAKE);
        }
        return ITD_OK;
}

void itd_labeler_advance(itd_labeler_t *lb, int64_t watermark_ms) {
        release_taken(lb);
        heap_t *hl = &lb->heap[H_LABEL], *hn = &lb->heap[H_NEXT];
        /* "passes" is strict: a purchase at exactly t + horizon may still
         * arrive while the watermark equals it. The subtractions saturate:
         * a watermark of INT64_MIN (nothing seen yet) decides nothing. */
        if (watermark_ms < INT64_MIN + lb->conf.horizon_ms ||
            watermark_ms < INT64_MIN + lb->conf.session_gap_ms)
                return;
        int64_t leave_before = watermark_ms - lb->conf.session_gap_ms;
        int64_t neg_before = watermark_ms - lb->conf.horizon_ms;
        while (hn->n && lb->slots[hn->a[0]].ts_ms < leave_before) {
                uint32_t s = hn->a[0];
                lb->slots[s].next = ITD_NEXT_LEAVE;
                heap_remove(lb, H_NEXT, s);
                if (lb->slots[s].label >= 0)
                        resolve(lb, s);
        }
        while (hl->n && lb->slots[hl->a[0]].ts_ms < neg_before) {
                uint32_t s = hl->a[0];
                lb->slots[s].label = 0;
                heap_remove(lb, H_LABEL, s);
                if (lb->slots[s].next >= 0)
                        resolve(lb, s);
        }
}

size_t itd_labeler_take(itd_labeler_t *lb, itd_example_t *out, size_t max) {
        release_taken(lb);
        size_t n = 0;
        uint32_t taken_tail = NIL;
        while (n < max && lb->res_head != NIL) {
                uint32_t q = lb->res_head, s = q & ~QFAKE;
                slot_t *sl = &lb->slots[s];
                lb->res_head = queue_next(lb, q);
                if (lb->res_head == NIL)
                        lb->res_tail = NIL;
                itd_example_t *ex = &out[n++];
                ex->x = lb->x + (size_t)s * lb->conf.dim;
                ex->ids = lb->ids + (size_t)s * lb->conf.n_ids;
                ex->ts_ms = sl->ts_ms;
                ex->offset = sl->offset;
                ex->user_hash = sl->user_hash;
                ex->score = sl->score;
                memcpy(ex->next_probs, sl->next_probs, sizeof(ex->next_probs));
                if (q & QFAKE) {
                        ex->label = 0;
                        ex->next = ITD_NEXT__COUNT;
                        ex->judge = 0;
                        ex->train = 1;
                        sl->flags &= (uint8_t)~F_FAKE_QUEUED;
                        /* a pending or resolved slot lives on */
                        if (sl->state != ORPHAN)
                                continue;
                } else {
                        ex->label = sl->label;
                        ex->next = (itd_next_t)sl->next;
                        ex->judge = 1;
                        ex->train = !(sl->flags & F_NO_TRAIN) &&
                                    (sl->label == 1 || !(sl->flags & F_FAKED));
                }
                /* kept until the next call so the pointers stay valid */
                sl->state = TAKEN;
                sl->link = NIL;
                if (taken_tail != NIL)
                        lb->slots[taken_tail].link = s;
                else
                        lb->taken_head = s;
                taken_tail = s;
        }
        return n;
}

void itd_labeler_stats(const itd_labeler_t *lb, itd_labeler_stats_t *stats) {
        *stats = lb->stats;
}

/* ---------------------------------------------------------- snapshots */

#define LSNAP_MAGIC "ITDLABEL"
#define LSNAP_VERSION 3 /* 2: slot flags, fake-negative queue entries;
                         * 3: each prediction's offset */
#define LSNAP_REC 60 /* bytes per slot record, see put_slot */
#define UNLINKED (NIL - 1)

enum {
        LH_DIM, LH_N_IDS, LH_NEXT_COUNT, LH_HORIZON, LH_GAP, LH_MAX_PENDING,
        LH_PER_USER, LH_N_LIVE, LH_HEAP_LABEL, LH_HEAP_NEXT, LH_N_RES,
        LH_PENDING, LH_POSITIVES, LH_NEGATIVES, LH_DROPPED,
        LH__COUNT
};
#define LSNAP_HDR_BYTES ITD_SNAP_HDR_BYTES(LH__COUNT)

static const itd_snap_kind_t snap_kind = {
    .name = "labeler",
    .magic = LSNAP_MAGIC,
    .version = LSNAP_VERSION,
    .n_values = LH__COUNT,
};

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

static void get_slot(const unsigned char *p, slot_t *sl) {
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
} snap_src_t;

static void write_payload(itd_snap_t *s, const void *obj) {
        const itd_labeler_t *lb = ((const snap_src_t *)obj)->lb;
        const uint32_t *map = ((const snap_src_t *)obj)->map;
        unsigned char rec[LSNAP_REC];
        for (size_t i = 0; i < lb->cap; i++) {
                const slot_t *sl = &lb->slots[i];
                if (map[i] == NIL)
                        continue;
                int pending = sl->state == PENDING;
                put_slot(rec, sl, pending ? map_of(map, sl->user_prev) : NIL,
                         pending ? map_of(map, sl->user_next) : NIL);
                itd_snap_write(s, rec, sizeof(rec));
        }
        for (size_t i = 0; i < lb->cap; i++)
                if (map[i] != NIL)
                        itd_snap_write(s, lb->x + i * lb->conf.dim,
                                       lb->conf.dim * sizeof(float));
        for (size_t i = 0; i < lb->cap; i++)
                if (map[i] != NIL)
                        itd_snap_write(s, lb->ids + i * lb->conf.n_ids,
                                       lb->conf.n_ids * sizeof(uint32_t));
        for (int h = 0; h < 2; h++)
                for (size_t i = 0; i < lb->heap[h].n; i++) {
                        uint32_t v = map[lb->heap[h].a[i]];
                        itd_snap_write(s, &v, sizeof(v));
                }
        for (uint32_t q = lb->res_head; q != NIL;
             q = queue_next(lb, q)) {
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
             q = queue_next(lb, q))
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
        snap_src_t src = {lb, map};
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
                queue_push(lb, q);
        }
        size_t linked = 0;
        for (size_t i = 0; i < n_live; i++) {
                slot_t *sl = &lb->slots[i];
                if (sl->state != PENDING || sl->user_prev != NIL)
                        continue;
                if ((lb->umap_used + 1) * 2 > lb->umap_cap)
                        umap_grow(lb);
                umap_entry_t *e = umap_find(lb, sl->user_hash, 1);
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
        uint64_t v[LH__COUNT], payload_bytes, payload_hash;
        if (itd_snap_header_read(&s, &snap_kind, v, &payload_bytes,
                                 &payload_hash, errstr, errstr_size) != 0)
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
            payload_bytes !=
                n_live * (LSNAP_REC + conf->dim * sizeof(float) +
                          conf->n_ids * sizeof(uint32_t)) +
                    (heap_n[0] + heap_n[1] + n_res) * sizeof(uint32_t))
                FAIL(ITD_ERR_CORRUPT,
                     "corrupt labeler snapshot: sizes in the header (bytes "
                     "24..%d) do not describe a labeler", LSNAP_HDR_BYTES - 1);

        lb = itd_labeler_new(conf, errstr, errstr_size);
        if (!lb)
                goto fail;
        if (lb->cap < n_live) {
                size_t cap = lb->cap;
                while (cap < n_live)
                        cap *= 2;
                pool_grow(lb, cap < conf->max_pending ? cap
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

        itd_snap_hash_begin(&s);
        uint64_t start = s.off;
        unsigned char rec[LSNAP_REC];
        for (size_t i = 0; i < n_live; i++) {
                if (itd_snap_read(&s, rec, sizeof(rec)) != 0)
                        goto short_read;
                get_slot(rec, &lb->slots[i]);
        }
        start = s.off;
        if (itd_snap_read(&s, lb->x, n_live * conf->dim * sizeof(float)) ||
            itd_snap_read(&s, lb->ids,
                          n_live * conf->n_ids * sizeof(uint32_t)))
                goto short_read;
        size_t n_links = heap_n[0] + heap_n[1] + n_res;
        links = itd_xmalloc((n_links + 1) * sizeof(*links));
        start = s.off;
        if (itd_snap_read(&s, links, n_links * sizeof(*links)))
                goto short_read;
        if (itd_snap_payload_check(&s, &snap_kind, payload_hash, errstr,
                                   errstr_size) != 0)
                goto fail;
        const uint32_t *heap_a[2] = {links, links + heap_n[0]};
        const char *bad = restore_links(lb, n_live, heap_a, heap_n,
                                        links + heap_n[0] + heap_n[1], n_res);
        if (bad)
                FAIL(ITD_ERR_CORRUPT, "corrupt labeler snapshot: %s", bad);
        free(links);
        *out = lb;
        return ITD_OK;
short_read:
        itd_snap_hash_end(&s);
        itd_snap_read_error(&s, "labeler", "the predictions", start,
                            payload_bytes - (start - LSNAP_HDR_BYTES),
                            errstr, errstr_size);
fail:
        free(links);
        itd_labeler_destroy(lb);
        return s.err ? s.err : ITD_ERR_CONF;
#undef FAIL
}
