/*
 * trainer_int.h - the trainer's insides, shared by core/trainer.c (eval,
 * the mini-batch, the positives hold) and core/trainer_snap.c (its
 * snapshot). Not an interface: intentd/trainer.h is.
 */
#ifndef ITD_TRAINER_INT_H
#define ITD_TRAINER_INT_H

#include <stdint.h>

#include "intentd/trainer.h"

/* Held rows of an older snapshot, which did not keep their partition:
 * every partition's negatives are their clock, as all were then. */
#define HOLD_ANY INT32_MIN

/* One partition's held positives and clock. */
typedef struct hold_part_s {
        int32_t id;
        int32_t head, tail; /* its held slots oldest first, -1 none */
        int64_t clock_ms;   /* latest prediction time of its resolved
                             * negatives; INT64_MIN before the first */
} hold_part_t;

struct itd_trainer_s {
        itd_trainer_conf_t conf;
        itd_model_t *model; /* borrowed: stepped, and (one thread) scored
                             * with */
        itd_eval_t *eval;   /* progressive validation, whole run */

        /* The mini-batch being filled, conf.batch rows. */
        float *x;           /* (batch, dim) */
        uint32_t *ids;      /* (batch, n_ids) */
        float *y;           /* (batch) */
        int *next;          /* (batch) */
        float *w;           /* (batch) importance weights */
        float neg_rate;     /* negatives kept for training, 0..1 */
        size_t n;

        /* Positives held until their horizon has closed: conf.hold_cap
         * slots (x, ids, next, ts_ms, arrival number), each partition's
         * chained by hlink in arrival order (a FIFO a partition), the
         * free ones too. */
        float *hx;
        uint32_t *hids;
        int *hnext;
        int64_t *hts;
        uint64_t *hseq;
        int32_t *hlink;
        int32_t hfree; /* first free slot, -1 none */
        size_t hn;
        uint64_t seq;  /* arrival number of the next held positive */
        hold_part_t *parts;
        size_t np, pcap, plast; /* plast: the last looked up */
        size_t any;             /* parts' HOLD_ANY, SIZE_MAX none */
        int64_t clock_new;      /* a partition's clock when first seen */

        uint64_t examples_pos, examples_neg, examples_neg_sampled_out;
};

/* Nothing held, no partition known; a partition first seen starts with
 * clock_new. */
void itd_trainer_hold_reset(itd_trainer_t *tr, int64_t clock_new);

/* Index in tr->parts of partition id, added when first seen. */
size_t itd_trainer_part_of(itd_trainer_t *tr, int32_t id);

/* Row n of the mini-batch from its parts (x: dim floats, ids: n_ids u32,
 * as bytes); steps when that fills it. */
void itd_trainer_queue_row(itd_trainer_t *tr, const void *x, const void *ids,
                           float y, int next);

/* Holds a positive of partition p; without a hold it goes into the
 * mini-batch at once. */
void itd_trainer_hold_row(itd_trainer_t *tr, size_t p, const void *x,
                          const void *ids, int next, int64_t ts_ms);

#endif
