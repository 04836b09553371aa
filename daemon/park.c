/*
 * park.c - per-partition FIFO queues of events waiting for their writer
 * schema (park.h). A queue is a ring of pointers that grows by doubling;
 * parking is the cold path (the first messages of a new schema id).
 */
#include "park.h"

#include <stdlib.h>
#include <string.h>

#include "intentd/mem.h"

typedef struct queue_s {
        itd_parked_t **e;
        size_t cap, head, n; /* cap a power of two or 0 */
} queue_t;

struct itd_park_s {
        queue_t *q;      /* indexed by partition */
        size_t n_q;
        size_t count, bytes;
};

itd_park_t *itd_park_new(void) { return itd_xcalloc(1, sizeof(itd_park_t)); }

void itd_parked_free(itd_parked_t *e) {
        if (!e)
                return;
        free(e->key);
        free(e->value);
        free(e);
}

void itd_park_destroy(itd_park_t *pk) {
        if (!pk)
                return;
        itd_park_drop(pk, -1);
        for (size_t i = 0; i < pk->n_q; i++)
                free(pk->q[i].e);
        free(pk->q);
        free(pk);
}

static void *dup_bytes(const void *p, size_t n) {
        if (!p)
                return NULL;
        void *d = itd_xmalloc(n ? n : 1);
        memcpy(d, p, n);
        return d;
}

void itd_park_add(itd_park_t *pk, int32_t partition, int64_t offset,
                  const void *key, size_t key_len, const void *value,
                  size_t len, uint64_t token, int64_t deadline_ms) {
        if ((size_t)partition >= pk->n_q) {
                size_t n = (size_t)partition + 1;
                pk->q = itd_xrealloc(pk->q, n * sizeof *pk->q);
                memset(pk->q + pk->n_q, 0, (n - pk->n_q) * sizeof *pk->q);
                pk->n_q = n;
        }
        queue_t *q = &pk->q[partition];
        if (q->n == q->cap) {
                size_t cap = q->cap ? 2 * q->cap : 16;
                itd_parked_t **e = itd_xmalloc(cap * sizeof *e);
                for (size_t i = 0; i < q->n; i++)
                        e[i] = q->e[(q->head + i) & (q->cap - 1)];
                free(q->e);
                q->e = e;
                q->cap = cap;
                q->head = 0;
        }
        itd_parked_t *p = itd_xmalloc(sizeof *p);
        *p = (itd_parked_t){.partition = partition,
                            .offset = offset,
                            .key = dup_bytes(key, key_len),
                            .key_len = key ? key_len : 0,
                            .value = dup_bytes(value, len),
                            .len = value ? len : 0,
                            .token = token,
                            .deadline_ms = deadline_ms};
        q->e[(q->head + q->n) & (q->cap - 1)] = p;
        q->n++;
        pk->count++;
        pk->bytes += p->key_len + p->len;
}

size_t itd_park_count(const itd_park_t *pk) { return pk->count; }

size_t itd_park_bytes(const itd_park_t *pk) { return pk->bytes; }

size_t itd_park_partitions(const itd_park_t *pk, int32_t *out, size_t max) {
        size_t k = 0;
        for (size_t i = 0; i < pk->n_q && k < max; i++)
                if (pk->q[i].n)
                        out[k++] = (int32_t)i;
        return k;
}

const itd_parked_t *itd_park_front(const itd_park_t *pk, int32_t partition) {
        if (partition < 0 || (size_t)partition >= pk->n_q ||
            !pk->q[partition].n)
                return NULL;
        const queue_t *q = &pk->q[partition];
        return q->e[q->head];
}

itd_parked_t *itd_park_take(itd_park_t *pk, int32_t partition) {
        if (!itd_park_front(pk, partition))
                return NULL;
        queue_t *q = &pk->q[partition];
        itd_parked_t *p = q->e[q->head];
        q->head = (q->head + 1) & (q->cap - 1);
        q->n--;
        pk->count--;
        pk->bytes -= p->key_len + p->len;
        return p;
}

size_t itd_park_drop(itd_park_t *pk, int32_t partition) {
        size_t n = 0;
        for (size_t i = 0; i < pk->n_q; i++) {
                if (partition >= 0 && (size_t)partition != i)
                        continue;
                itd_parked_t *p;
                while ((p = itd_park_take(pk, (int32_t)i))) {
                        itd_parked_free(p);
                        n++;
                }
        }
        return n;
}
