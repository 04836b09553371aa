/*
 * prediction.h - the output record (config/prediction.avsc), in memory.
 */
#ifndef INTENTD_PREDICTION_H
#define INTENTD_PREDICTION_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/event.h"
#include "intentd/types.h" /* itd_next_t */

#define ITD_TOPCAT_MAX 3  /* top categories published per prediction */
#define ITD_EXPLAIN_MAX 3 /* features named in an explanation */
#define ITD_PREDICTION_ID_MAX 64
#define ITD_MODEL_ID_MAX 40 /* "<16 hex>-<16 hex>" and the NUL */

typedef struct itd_prediction_s {
        char prediction_id[ITD_PREDICTION_ID_MAX]; /* topic/partition/offset */
        char user_id[ITD_ID_MAX];
        int64_t event_ts_ms;
        int64_t predicted_at_ms;
        float purchase_probability;
        itd_next_t next_action;               /* argmax of next_probs */
        float next_probs[ITD_NEXT__COUNT];
        int64_t model_version;                /* training steps so far */
        size_t n_top_categories;
        char top_categories[ITD_TOPCAT_MAX][ITD_ID_MAX];
        float top_category_scores[ITD_TOPCAT_MAX];
        size_t n_explanation;                 /* 0: field is null */
        char explanation_feature[ITD_EXPLAIN_MAX][32];
        float explanation_contribution[ITD_EXPLAIN_MAX];
        /* The event's own identity, echoed ("" / -1 when absent). */
        char event_id[ITD_ID_MAX];
        char session_id[ITD_ID_MAX];
        int event_type;                       /* itd_event_type_t, or -1 */
        char model_id[ITD_MODEL_ID_MAX];      /* "" when none was set */
        double risk_score;                    /* bot-likeness, 0..1 (risk.h) */
} itd_prediction_t;

/** @brief "VIEW" ... "LEAVE". */
const char *itd_next_name(itd_next_t next);

/**
 * @brief Writes the deterministic id "topic/partition/offset" into
 * p->prediction_id, so a re-delivered event yields the same id.
 */
void itd_prediction_make_id(itd_prediction_t *p, const char *topic,
                            int32_t partition, int64_t offset);

#endif
