/*
 * prediction.c - small helpers for the output record: next-action names and
 * the deterministic prediction id.
 */
#include "intentd/prediction.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const next_names[ITD_NEXT__COUNT] = {
    "VIEW", "SEARCH", "ADD_TO_CART", "PURCHASE", "LEAVE"};

const char *itd_next_name(itd_next_t next) {
        if ((int)next < 0 || next >= ITD_NEXT__COUNT)
                return "?";
        return next_names[next];
}

void itd_prediction_make_id(itd_prediction_t *p, const char *topic,
                            int32_t partition, int64_t offset) {
        char tail[40];
        int tn = snprintf(tail, sizeof tail, "/%" PRId32 "/%" PRId64,
                          partition, offset);
        size_t cap = sizeof p->prediction_id;
        size_t tlen = strlen(topic);
        if (tlen + (size_t)tn < cap) {
                memcpy(p->prediction_id, topic, tlen);
                memcpy(p->prediction_id + tlen, tail, (size_t)tn + 1);
                return;
        }
        /*
         * Kafka topic names may be up to 249 bytes. Rather than cut the
         * topic (two long topics with a common prefix would then collide),
         * keep a prefix and replace the rest with its hash: still the same
         * id on re-delivery.
         */
        uint64_t h = itd_hash_str(topic, 0);
        char hash[20];
        int hn = snprintf(hash, sizeof hash, "~%016" PRIx64, h);
        size_t keep = cap - 1 - (size_t)tn - (size_t)hn;
        memcpy(p->prediction_id, topic, keep);
        memcpy(p->prediction_id + keep, hash, (size_t)hn);
        memcpy(p->prediction_id + keep + (size_t)hn, tail, (size_t)tn + 1);
}
