/*
 * offsets.h - which consumed offsets are safe to commit.
 *
 * At-least-once: an event's offset may be committed only once every output
 * it caused (a prediction, or a dead letter) was acknowledged by the broker,
 * and so was every earlier event of the same partition. The tracker keeps,
 * per partition, the consumed offsets in order with the number of outputs
 * each still waits for; the committable position is one past the longest
 * fully acknowledged prefix.
 *
 * @thread pipeline thread only (delivery reports are served by
 * rd_kafka_poll() on that thread).
 */
#ifndef INTENTD_OFFSETS_H
#define INTENTD_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct itd_offsets_s itd_offsets_t;

itd_offsets_t *itd_offsets_new(void);
void itd_offsets_destroy(itd_offsets_t *ot);

/**
 * @brief Records a consumed offset that waits for `outputs` acknowledgements
 * (0: done at once, e.g. a filtered event). Offsets of a partition must be
 * tracked in increasing order.
 * @returns a token for itd_offsets_ack (the delivery report's opaque).
 */
uint64_t itd_offsets_track(itd_offsets_t *ot, int32_t partition,
                           int64_t offset, unsigned outputs);

/** @brief One output of the tracked offset was acknowledged. A token of a
 * partition reset since is ignored. */
void itd_offsets_ack(itd_offsets_t *ot, uint64_t token);

/**
 * @brief Drops fully acknowledged offsets from the front of the partition
 * and gives the position to commit (last done offset + 1).
 * @returns 1 if *next_offset moved since the last call, else 0.
 */
int itd_offsets_advance(itd_offsets_t *ot, int32_t partition,
                        int64_t *next_offset);

/** @brief Outputs still waiting for acknowledgement, all partitions. */
uint64_t itd_offsets_in_flight(const itd_offsets_t *ot);

/** @brief Forgets a partition (revoked); its outstanding tokens go stale. */
void itd_offsets_reset(itd_offsets_t *ot, int32_t partition);

/** @brief Highest partition number seen + 1 (for iterating). */
int32_t itd_offsets_partitions(const itd_offsets_t *ot);

#endif
