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
 * Snapshots (labeler_snap.c) keep the live slots renumbered densely, and the
 * heaps as arrays: their shape decides which of two equal times resolves
 * first, so a restored labeler hands out examples in the same order.
 *
 * @thread pipeline thread only.
 */
#include "labeler_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/mem.h"

/* ---------------------------------------------------------- user map */

static size_t umap_home(const itd_labeler_t *lb, uint64_t key) {
        key ^= key >> 31;
        key *= UINT64_C(0x9E3779B97F4A7C15);
        return (size_t)(key >> 17) & (lb->umap_cap - 1);
}

umap_entry_t *itd_labeler_umap_find(itd_labeler_t *lb, uint64_t key,
                                    int create) {
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
void itd_labeler_umap_grow(itd_labeler_t *lb) {
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
void itd_labeler_pool_grow(itd_labeler_t *lb, size_t cap) {
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
        umap_entry_t *e = itd_labeler_umap_find(lb, sl->user_hash, 0);
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
uint32_t itd_labeler_queue_next(const itd_labeler_t *lb, uint32_t q) {
        const slot_t *sl = &lb->slots[q & ~QFAKE];
        return q & QFAKE ? sl->fake_link : sl->link;
}

/* The link field that follows queue entry q. */
static uint32_t *queue_link(itd_labeler_t *lb, uint32_t q) {
        slot_t *sl = &lb->slots[q & ~QFAKE];
        return q & QFAKE ? &sl->fake_link : &sl->link;
}

void itd_labeler_queue_push(itd_labeler_t *lb, uint32_t q) {
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
        itd_labeler_queue_push(lb, s);
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
        itd_labeler_pool_grow(lb, conf->max_pending < POOL_FIRST
                                      ? conf->max_pending
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
        umap_entry_t *e = itd_labeler_umap_find(lb, user_hash, 0);
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
        umap_entry_t *e = itd_labeler_umap_find(lb, user_hash, 0);
        if (e && lb->conf.max_pending_per_user &&
            e->count >= lb->conf.max_pending_per_user)
                drop_pending(lb, e->head);
        while (lb->free_head == NIL) {
                if (lb->cap < lb->conf.max_pending) {
                        itd_labeler_pool_grow(
                            lb, lb->cap * 2 < lb->conf.max_pending
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
                itd_labeler_umap_grow(lb);
        e = itd_labeler_umap_find(lb, user_hash, 1);
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
                itd_labeler_queue_push(lb, s | QFAKE);
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
                lb->res_head = itd_labeler_queue_next(lb, q);
                if (lb->res_head == NIL)
                        lb->res_tail = NIL;
                itd_example_t *ex = &out[n++];
                ex->x = lb->x + (size_t)s * lb->conf.dim;
                ex->ids = lb->ids + (size_t)s * lb->conf.n_ids;
                ex->ts_ms = sl->ts_ms;
                ex->offset = sl->offset;
                ex->user_hash = sl->user_hash;
                ex->partition = 0;
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

/* Frees slot s of an erased user, what it held wiped. */
static void slot_wipe_free(itd_labeler_t *lb, uint32_t s) {
        if (lb->conf.dim)
                memset(lb->x + (size_t)s * lb->conf.dim, 0,
                       lb->conf.dim * sizeof(float));
        if (lb->conf.n_ids)
                memset(lb->ids + (size_t)s * lb->conf.n_ids, 0,
                       lb->conf.n_ids * sizeof(uint32_t));
        memset(&lb->slots[s], 0, sizeof lb->slots[s]);
        slot_free(lb, s);
}

void itd_labeler_erase(itd_labeler_t *lb, uint64_t user_hash,
                       itd_labeler_erased_t *out) {
        memset(out, 0, sizeof *out);
        release_taken(lb);
        /* The queue of examples to hand out, rebuilt without the user's
         * entries: resolved examples and fake negatives. A fake's slot
         * lives on while pending (freed below) or resolved (its final
         * entry comes later in the queue); an orphan's goes with its
         * fake. */
        uint32_t head = NIL, tail = NIL;
        for (uint32_t q = lb->res_head; q != NIL;) {
                uint32_t next = itd_labeler_queue_next(lb, q), s = q & ~QFAKE;
                slot_t *sl = &lb->slots[s];
                if (sl->user_hash != user_hash) {
                        if (tail != NIL)
                                *queue_link(lb, tail) = q;
                        else
                                head = q;
                        tail = q;
                } else if (q & QFAKE) {
                        sl->flags &= (uint8_t)~F_FAKE_QUEUED;
                        out->queued++;
                        if (sl->state == ORPHAN)
                                slot_wipe_free(lb, s);
                } else {
                        out->queued++;
                        slot_wipe_free(lb, s);
                }
                q = next;
        }
        if (tail != NIL)
                *queue_link(lb, tail) = NIL;
        lb->res_head = head;
        lb->res_tail = tail;
        /* Then its pending predictions. */
        umap_entry_t *e = itd_labeler_umap_find(lb, user_hash, 0);
        uint32_t s = e ? e->head : NIL;
        while (s != NIL) {
                uint32_t after = lb->slots[s].user_next;
                heap_remove(lb, H_LABEL, s);
                heap_remove(lb, H_NEXT, s);
                user_unlink(lb, s); /* the last one deletes the entry */
                slot_wipe_free(lb, s);
                lb->stats.pending--;
                out->pending++;
                s = after;
        }
}

void itd_labeler_stats(const itd_labeler_t *lb, itd_labeler_stats_t *stats) {
        *stats = lb->stats;
}

