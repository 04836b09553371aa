/*
 * offsets.c - per-partition rings of consumed offsets awaiting delivery
 * acknowledgements (offsets.h).
 *
 * A token packs (generation, partition, sequence): the generation changes
 * when a partition is reset on revoke, so a late delivery report of the old
 * assignment cannot acknowledge an entry of the new one. Sequences index a
 * ring that grows by doubling; steady state allocates nothing.
 */
#include "intentd/offsets.h"

#include <string.h>

#include "intentd/mem.h"

#define TOKEN_PART_BITS 16
#define TOKEN_GEN_BITS 8
#define TOKEN_SEQ_BITS (64 - TOKEN_PART_BITS - TOKEN_GEN_BITS)
#define SEQ_MASK ((1ULL << TOKEN_SEQ_BITS) - 1)

typedef struct entry_s {
        int64_t offset;
        uint32_t waiting; /* outputs not yet acknowledged */
} entry_t;

typedef struct ring_s {
        entry_t *e;
        uint64_t cap;       /* power of two */
        uint64_t head, tail; /* sequences: [head, tail) are live */
        uint8_t gen;
        int64_t next_offset; /* committable position; -1 = none yet */
        int64_t reported;    /* what advance() last reported */
} ring_t;

struct itd_offsets_s {
        ring_t *rings;
        int32_t n;
        uint64_t in_flight;
};

itd_offsets_t *itd_offsets_new(void) {
        return itd_xcalloc(1, sizeof(itd_offsets_t));
}

void itd_offsets_destroy(itd_offsets_t *ot) {
        if (!ot)
                return;
        for (int32_t i = 0; i < ot->n; i++)
                free(ot->rings[i].e);
        free(ot->rings);
        free(ot);
}

static ring_t *ring_get(itd_offsets_t *ot, int32_t partition) {
        if (partition >= ot->n) {
                int32_t n = partition + 1;
                ot->rings = itd_xrealloc(ot->rings, (size_t)n * sizeof *ot->rings);
                for (int32_t i = ot->n; i < n; i++) {
                        memset(&ot->rings[i], 0, sizeof ot->rings[i]);
                        ot->rings[i].next_offset = -1;
                        ot->rings[i].reported = -1;
                }
                ot->n = n;
        }
        return &ot->rings[partition];
}

static void ring_grow(ring_t *r) {
        uint64_t cap = r->cap ? r->cap * 2 : 1024;
        entry_t *e = itd_xmalloc(cap * sizeof *e);
        for (uint64_t s = r->head; s < r->tail; s++)
                e[s & (cap - 1)] = r->e[s & (r->cap - 1)];
        free(r->e);
        r->e = e;
        r->cap = cap;
}

uint64_t itd_offsets_track(itd_offsets_t *ot, int32_t partition,
                           int64_t offset, unsigned outputs) {
        ring_t *r = ring_get(ot, partition);
        if (r->tail - r->head == r->cap)
                ring_grow(r);
        uint64_t seq = r->tail++;
        r->e[seq & (r->cap - 1)] = (entry_t){offset, outputs};
        ot->in_flight += outputs;
        return ((uint64_t)r->gen << (TOKEN_PART_BITS + TOKEN_SEQ_BITS)) |
               ((uint64_t)(uint32_t)partition << TOKEN_SEQ_BITS) |
               (seq & SEQ_MASK);
}

void itd_offsets_ack(itd_offsets_t *ot, uint64_t token) {
        int32_t partition = (int32_t)((token >> TOKEN_SEQ_BITS) &
                                      ((1u << TOKEN_PART_BITS) - 1));
        uint8_t gen = (uint8_t)(token >> (TOKEN_PART_BITS + TOKEN_SEQ_BITS));
        if (partition >= ot->n)
                return;
        ring_t *r = &ot->rings[partition];
        /* Recover the full sequence from its low bits: live sequences span
         * far less than 2^40, so the one nearest the tail matches. */
        uint64_t low = token & SEQ_MASK;
        uint64_t seq = (r->tail & ~SEQ_MASK) | low;
        if (seq >= r->tail)
                seq -= 1ULL << TOKEN_SEQ_BITS;
        if (gen != r->gen || seq < r->head || seq >= r->tail)
                return;
        entry_t *e = &r->e[seq & (r->cap - 1)];
        if (e->waiting > 0) {
                e->waiting--;
                ot->in_flight--;
        }
}

int itd_offsets_advance(itd_offsets_t *ot, int32_t partition,
                        int64_t *next_offset) {
        if (partition >= ot->n) {
                *next_offset = -1;
                return 0;
        }
        ring_t *r = &ot->rings[partition];
        while (r->head < r->tail && r->e[r->head & (r->cap - 1)].waiting == 0) {
                r->next_offset = r->e[r->head & (r->cap - 1)].offset + 1;
                r->head++;
        }
        *next_offset = r->next_offset;
        if (r->next_offset != r->reported) {
                r->reported = r->next_offset;
                return 1;
        }
        return 0;
}

uint64_t itd_offsets_in_flight(const itd_offsets_t *ot) {
        return ot->in_flight;
}

void itd_offsets_reset(itd_offsets_t *ot, int32_t partition) {
        if (partition >= ot->n)
                return;
        ring_t *r = &ot->rings[partition];
        for (uint64_t s = r->head; s < r->tail; s++)
                ot->in_flight -= r->e[s & (r->cap - 1)].waiting;
        r->head = r->tail = 0;
        r->gen++;
        r->next_offset = -1;
        r->reported = -1;
}

int32_t itd_offsets_partitions(const itd_offsets_t *ot) {
        return ot->n;
}
