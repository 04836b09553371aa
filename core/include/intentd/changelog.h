/*
 * changelog.h - a partition's state as records of a changelog topic, and
 * the restore of a partition from them: what lets a partition's users,
 * pending labels and trigger flags follow the partition to another
 * instance.
 *
 * A snapshot is the partition's own snapshot (itd_partition_write) with the
 * position it is valid at: the next offset of the events partition, so a
 * new owner restores it and resumes consuming there with the same state
 * the old owner had at that offset. It is cut into records of at most
 * max_bytes; each record names its partition, the snapshot's sequence
 * number, its part and the number of parts, and carries a CRC32C of its
 * part and of the whole snapshot.
 *
 * Keys: the caller keys part k of partition p "p/k" (itd_changelog_key),
 * so on a compacted topic the newest value of every key, hence every part
 * of the newest snapshot, survives compaction. A part of an older, longer
 * snapshot may survive too; it is ignored (another sequence number).
 *
 * Restoring reads a partition's records in log order and keeps the newest
 * complete snapshot: a snapshot whose parts did not all arrive (a writer
 * killed in the middle) leaves the one before it in force.
 *
 * No Kafka, no clock, no logging, like the engine.
 * @thread one owner at a time; no locks.
 */
#ifndef INTENTD_CHANGELOG_H
#define INTENTD_CHANGELOG_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/partition.h"

/* Smallest max_bytes accepted: the header and some snapshot bytes. */
#define ITD_CHANGELOG_MIN_BYTES 1024

/** @brief Emits one record (buf borrowed for the call); part: its part
 * number, for the key. @returns ITD_OK or an error that stops encoding. */
typedef itd_err_t (*itd_changelog_emit_t)(int32_t partition, uint32_t part,
                                          const void *buf, size_t len,
                                          void *arg);

/**
 * @brief Encodes pt's snapshot, valid at next_offset, as snapshot number
 * seq (larger than the partition's previous ones) in records of at most
 * max_bytes, each handed to emit in part order.
 * @param n_records  gets how many were emitted (may be NULL).
 * @returns ITD_OK; ITD_ERR_ARG (max_bytes too small), ITD_ERR_IO (the
 * snapshot could not be written) or what emit returned, with errstr.
 */
itd_err_t itd_changelog_encode(const itd_partition_t *pt, int64_t next_offset,
                               uint64_t seq, size_t max_bytes,
                               itd_changelog_emit_t emit, void *arg,
                               size_t *n_records, char *errstr,
                               size_t errstr_size);

/**
 * @brief Memory an encoder keeps from one snapshot to the next: the
 * snapshot is written into it, and it stays allocated (the size of the
 * largest snapshot so far), so a snapshot after the first writes into
 * memory already mapped instead of growing a fresh buffer. Zeroed to
 * start; itd_changelog_scratch_free at the end.
 */
typedef struct itd_changelog_scratch_s {
        char *buf;
        size_t cap;
} itd_changelog_scratch_t;

/** @brief As itd_changelog_encode, writing the snapshot into scratch. */
itd_err_t itd_changelog_encode_with(itd_changelog_scratch_t *scratch,
                                    const itd_partition_t *pt,
                                    int64_t next_offset, uint64_t seq,
                                    size_t max_bytes,
                                    itd_changelog_emit_t emit, void *arg,
                                    size_t *n_records, char *errstr,
                                    size_t errstr_size);

void itd_changelog_scratch_free(itd_changelog_scratch_t *scratch);

/** @brief The record key of part `part` of partition p: "p/part". */
void itd_changelog_key(int32_t partition, uint32_t part, char *buf,
                       size_t cap);

typedef struct itd_changelog_restore_s itd_changelog_restore_t;

/** @brief A restore of partition `partition` (caller owns). */
itd_changelog_restore_t *itd_changelog_restore_new(int32_t partition);
void itd_changelog_restore_destroy(itd_changelog_restore_t *r);

/**
 * @brief Adds one record, in log order.
 * @returns ITD_OK (kept, or ignored: an older snapshot's part);
 * ITD_ERR_CORRUPT (damaged, or of another partition) or
 * ITD_ERR_INCOMPATIBLE (another format version), with errstr; the record
 * is then skipped and nothing else changes.
 */
itd_err_t itd_changelog_restore_add(itd_changelog_restore_t *r,
                                    const void *buf, size_t len,
                                    char *errstr, size_t errstr_size);

/** @brief 1 when a complete snapshot was seen. */
int itd_changelog_restore_ready(const itd_changelog_restore_t *r);

/**
 * @brief What the records added so far used, complete or not: the highest
 * snapshot sequence number (a new writer continues above it, so its parts
 * never mix with those of a snapshot a killed writer left unfinished) and
 * the most parts one snapshot was cut into (keys a shorter snapshot leaves
 * behind on a compacted topic, to be tombstoned). 0 and 0 before any.
 */
void itd_changelog_restore_seen(const itd_changelog_restore_t *r,
                                uint64_t *max_seq, uint32_t *max_parts);

/**
 * @brief Builds the partition from the newest complete snapshot, with
 * configuration conf; now_ms starts its idle time.
 * @param out          gets it (caller owns).
 * @param next_offset  gets the position to resume consuming at.
 * @returns ITD_OK; ITD_ERR_NOT_FOUND (no complete snapshot: start the
 * partition empty at the committed offset); what itd_partition_read
 * returns for a snapshot it refuses, with errstr.
 */
itd_err_t itd_changelog_restore_take(itd_changelog_restore_t *r,
                                     const itd_partition_conf_t *conf,
                                     int64_t now_ms, itd_partition_t **out,
                                     int64_t *next_offset, char *errstr,
                                     size_t errstr_size);

/**
 * @brief Whether a restored snapshot replaces the state an instance holds:
 * the newer position wins. held is 1 when the instance holds the partition
 * (from a local checkpoint, or kept over an eager rebalance) with
 * held_offset its next offset to consume; snap_offset is the snapshot's.
 * @returns 1 to adopt the snapshot (nothing held, or snap_offset is past
 * held_offset), 0 to keep the state held.
 */
int itd_changelog_snapshot_wins(int held, int64_t held_offset,
                                int64_t snap_offset);

#endif
