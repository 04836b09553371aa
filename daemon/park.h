/*
 * park.h - events that wait for their writer schema while the schema
 * registry is asked (itd_decoder_decode answered ITD_REASON_PENDING).
 *
 * Only those events wait; every other event flows on. Each parked event
 * keeps a copy of its key and value (the Kafka message is destroyed in the
 * loop turn that polled it), its offset stays tracked and unacknowledged,
 * so no commit and no checkpoint passes it, and the events of one
 * partition leave in the order they came. The run loop decides when one
 * leaves: its schema resolved, its deadline passed, or a checkpoint
 * settles the park (daemon/run.c).
 *
 * @thread the run loop only.
 */
#ifndef INTENTD_PARK_H
#define INTENTD_PARK_H

#include <stddef.h>
#include <stdint.h>

typedef struct itd_parked_s {
        int32_t partition;
        int64_t offset;
        void *key;            /* NULL when the message had none */
        size_t key_len;
        void *value;
        size_t len;
        uint64_t token;       /* its offset's, tracked when consumed */
        int64_t deadline_ms;  /* monotonic: dead-lettered after it */
} itd_parked_t;

typedef struct itd_park_s itd_park_t;

itd_park_t *itd_park_new(void);
/** @brief Frees the park and what it holds. NULL does nothing. */
void itd_park_destroy(itd_park_t *pk);

/** @brief Appends an event to its partition's queue; key and value are
 * copied. */
void itd_park_add(itd_park_t *pk, int32_t partition, int64_t offset,
                  const void *key, size_t key_len, const void *value,
                  size_t len, uint64_t token, int64_t deadline_ms);

/** @brief Events parked, all partitions. */
size_t itd_park_count(const itd_park_t *pk);
/** @brief Bytes of keys and values held, all partitions. */
size_t itd_park_bytes(const itd_park_t *pk);

/** @brief Up to max partitions that hold events, into out.
 * @returns how many. */
size_t itd_park_partitions(const itd_park_t *pk, int32_t *out, size_t max);

/** @brief The oldest event of partition, or NULL. Borrowed until the next
 * add, take or drop. */
const itd_parked_t *itd_park_front(const itd_park_t *pk, int32_t partition);

/** @brief Removes the oldest event of partition and hands it over
 * (caller frees with itd_parked_free); NULL when none. */
itd_parked_t *itd_park_take(itd_park_t *pk, int32_t partition);
void itd_parked_free(itd_parked_t *e);

/** @brief Frees every event of partition (-1: of all partitions).
 * @returns how many there were. */
size_t itd_park_drop(itd_park_t *pk, int32_t partition);

#endif
