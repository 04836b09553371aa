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

/* Writes "/<n>" at dst (no NUL); returns its length. Called for every
 * prediction: snprintf's format parsing cost several times more. */
static size_t put_slash_int(char *dst, int64_t n) {
        char digits[24];
        size_t len = 0;
        uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
        do {
                digits[len++] = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        size_t out = 0;
        dst[out++] = '/';
        if (n < 0)
                dst[out++] = '-';
        while (len)
                dst[out++] = digits[--len];
        return out;
}

void itd_prediction_make_id(itd_prediction_t *p, const char *topic,
                            int32_t partition, int64_t offset) {
        char tail[48];
        size_t t1 = put_slash_int(tail, partition);
        int tn = (int)(t1 + put_slash_int(tail + t1, offset));
        tail[tn] = '\0';
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
