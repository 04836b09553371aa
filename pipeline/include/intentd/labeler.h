/*
 * labeler.h - pending predictions and their delayed labels.
 *
 * A prediction made at event time t is labelled positive when the same user
 * purchases in [t, t + horizon] (events arriving after it in the stream),
 * negative when the partition's watermark passes t + horizon with no such
 * purchase. Its next action is the type of the user's next event, or LEAVE
 * when the watermark passes t + session gap first. An example is resolved
 * once both are known. The features used at prediction time are copied into
 * a bounded pool, so the model learns from exactly what it scored.
 *
 * labels.policy (docs/MODEL.md): WAIT hands out each prediction once, when
 * both outcomes are known. FAKE_NEGATIVE (Ktena et al. 2019) also hands it
 * out at once as a negative with no next-action label (next =
 * ITD_NEXT__COUNT, which the models skip), then once more when it resolves:
 * a purchase gives a trained positive, no purchase a judged-only negative.
 *
 * One labeler per partition. @thread pipeline thread only.
 */
#ifndef INTENTD_LABELER_H
#define INTENTD_LABELER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/prediction.h"

/* labels.policy; the symbols of daemon/conf.c follow this order. */
typedef enum {
        ITD_LABELS_WAIT = 0,          /* learn once the label is known */
        ITD_LABELS_FAKE_NEGATIVE = 1  /* learn a negative at once */
} itd_labels_policy_t;

typedef struct itd_labeler_conf_s {
        size_t dim;                  /* dense features per example */
        size_t n_ids;                /* sparse ids per example */
        int64_t horizon_ms;          /* purchase horizon */
        int64_t session_gap_ms;      /* no event within it -> LEAVE */
        size_t max_pending;          /* pool capacity */
        size_t max_pending_per_user; /* oldest of a user resolved early */
        int policy;                  /* itd_labels_policy_t; 0 = WAIT */
} itd_labeler_conf_t;

/* A resolved example. Pointers are borrowed from the labeler and valid
 * until the next call on it. */
typedef struct itd_example_s {
        const float *x;        /* dim floats */
        const uint32_t *ids;   /* n_ids ids */
        int64_t ts_ms;         /* event time of the prediction */
        int64_t offset;        /* the row it was predicted on: its offset
                                * in the labeler's partition */
        uint64_t user_hash;
        float score;           /* purchase probability given at the time */
        float next_probs[ITD_NEXT__COUNT];
        int label;             /* 1: purchased within horizon */
        itd_next_t next;       /* what the user did next; ITD_NEXT__COUNT:
                                * unknown (a fake negative), no label for
                                * the next-action head */
        int judge;             /* 1: label and next are the prediction's
                                * final outcome; count it in progressive
                                * validation (exactly one per prediction).
                                * 0: a fake negative, train only */
        int train;             /* 1: learn from it. 0: a FAKE_NEGATIVE
                                * prediction that ended negative; its
                                * negative was already learned */
        int32_t partition;     /* its partition: set by the engine for
                                * the trainer, whose held positives wait
                                * per partition (0 from the labeler) */
} itd_example_t;

typedef struct itd_labeler_stats_s {
        uint64_t pending;      /* predictions waiting for their label */
        uint64_t positives;    /* resolved positive so far */
        uint64_t negatives;    /* resolved negative so far */
        uint64_t dropped_full; /* given up, not trained on nor judged:
                                * pool or per-user cap full */
} itd_labeler_stats_t;

typedef struct itd_labeler_s itd_labeler_t;

itd_labeler_t *itd_labeler_new(const itd_labeler_conf_t *conf, char *errstr,
                               size_t errstr_size);
void itd_labeler_destroy(itd_labeler_t *lb);

/**
 * @brief Tells the labeler that user_hash did `type` at ts_ms. Call for every
 * event, before itd_labeler_add of the prediction made on that same event.
 */
void itd_labeler_observe(itd_labeler_t *lb, uint64_t user_hash, int64_t ts_ms,
                         itd_event_type_t type);

/**
 * @brief Adds a pending prediction, made on the event at `offset` of the
 * labeler's partition (handed back in its example); x and ids are copied.
 *
 * When the pool is full (max_pending), the labeler's oldest pending
 * prediction (earliest event time) is given up to make room, as the
 * per-user cap gives up the user's oldest; if none is pending (every slot
 * holds an example not yet taken), the new one is not kept. Either way it
 * is counted in dropped_full. That prediction was already published; only
 * its training example and its progressive-validation judgement are lost.
 * @returns ITD_OK; never ITD_ERR_FULL (a full pool must not stall the
 * daemon, and nothing but new events frees it).
 */
itd_err_t itd_labeler_add(itd_labeler_t *lb, uint64_t user_hash,
                          int64_t ts_ms, int64_t offset, const float *x,
                          const uint32_t *ids, float score,
                          const float *next_probs);

/* itd_labeler_add_opt options. */
#define ITD_LABEL_NO_TRAIN 1u /* judged when resolved (judge 1), never
                               * learned from (train 0), no fake negative:
                               * a prediction for a user that looks like a
                               * bot (risk.h) */

/**
 * @brief itd_labeler_add with options (ITD_LABEL_*); opts 0 is
 * itd_labeler_add. The option is kept in snapshots.
 */
itd_err_t itd_labeler_add_opt(itd_labeler_t *lb, uint64_t user_hash,
                              int64_t ts_ms, int64_t offset, const float *x,
                              const uint32_t *ids, float score,
                              const float *next_probs, unsigned opts);

/** @brief Resolves pending predictions whose outcome the watermark decides. */
void itd_labeler_advance(itd_labeler_t *lb, int64_t watermark_ms);

/**
 * @brief Takes up to max resolved examples, oldest resolution first.
 * @returns how many were written to out; their memory stays valid until
 * the next call on lb.
 */
size_t itd_labeler_take(itd_labeler_t *lb, itd_example_t *out, size_t max);

/* What itd_labeler_erase removed. */
typedef struct itd_labeler_erased_s {
        uint64_t pending; /* predictions waiting for their label */
        uint64_t queued;  /* resolved examples (and fake negatives) not
                           * yet taken */
} itd_labeler_erased_t;

/**
 * @brief Forgets everything held for user_hash (erasure on request): its
 * pending predictions and its examples not yet taken, their copied
 * features wiped; none is trained on or judged, and none is counted as
 * dropped. Invalidates what the last take handed out. O(queued examples +
 * the user's pending ones).
 */
void itd_labeler_erase(itd_labeler_t *lb, uint64_t user_hash,
                       itd_labeler_erased_t *out);

void itd_labeler_stats(const itd_labeler_t *lb, itd_labeler_stats_t *stats);

/**
 * @brief Writes the pending predictions (with their features), resolved
 * examples not yet taken, the per-user order and the counters as one
 * versioned, checksummed snapshot (docs/FEATURES.md, "Snapshots"), so that
 * itd_labeler_restore gives a labeler that resolves and hands out the same
 * examples in the same order. Examples already handed out by
 * itd_labeler_take are not included.
 * @returns ITD_OK, or ITD_ERR_IO with errstr.
 */
itd_err_t itd_labeler_snapshot(const itd_labeler_t *lb, FILE *out,
                               char *errstr, size_t errstr_size);

/**
 * @brief Reads one labeler snapshot (exactly its bytes) into a new labeler
 * the caller owns.
 * @param conf  the running configuration: dim, n_ids, horizon_ms and
 *              session_gap_ms must equal the snapshot's; max_pending must
 *              hold its predictions; max_pending_per_user may differ.
 * @param out   gets the labeler (caller owns), NULL on failure.
 * @returns ITD_OK; ITD_ERR_INCOMPATIBLE, ITD_ERR_CORRUPT (damaged or
 * truncated) or ITD_ERR_IO with errstr naming the field or byte offset;
 * ITD_ERR_CONF (conf itself is bad).
 */
itd_err_t itd_labeler_restore(FILE *in, const itd_labeler_conf_t *conf,
                              itd_labeler_t **out, char *errstr,
                              size_t errstr_size);

#endif
