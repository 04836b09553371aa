/*
 * types.h - the few values the model and the pipeline both speak of, so
 * that neither includes the other's headers: the next-action classes and
 * the empty sparse-id slot.
 */
#ifndef INTENTD_TYPES_H
#define INTENTD_TYPES_H

#include <stdint.h>

/* Next-action classes of the model's second head; order matches the enum
 * of config/prediction.avsc. */
typedef enum {
        ITD_NEXT_VIEW = 0,
        ITD_NEXT_SEARCH,
        ITD_NEXT_ADD_TO_CART,
        ITD_NEXT_PURCHASE,
        ITD_NEXT_LEAVE,
        ITD_NEXT__COUNT
} itd_next_t;

/* A sparse-id slot that holds no id (state.h fills slots; the model's
 * embeddings skip this value). */
#define ITD_SPARSE_NONE UINT32_MAX

#endif
