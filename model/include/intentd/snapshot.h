/*
 * snapshot.h - a versioned, checksummed binary container for one
 * component's bytes that must survive a restart (the model's snapshot,
 * model.ckpt in a checkpoint folder).
 *
 * File layout: the one framing of every snapshot (intentd/frame.h), every
 * integer little-endian, no padding:
 *
 *   header (ITD_SNAPSHOT_HEADER_BYTES = 152)
 *     the prefix: magic "ITDCKPT\0" (8) | u32 version | u32 kind |
 *     u32 header_bytes | u32 flags (0); then
 *     u64 feature_spec_hash | u64 config_hash |
 *     u64 examples | u64 steps | i64 created_ms |
 *     shape: u32 model_type | u32 optimizer | u64 n_dense | u64 n_fields |
 *            u64 ids_per_field | u64 emb_buckets | u64 emb_dim |
 *            u64 n_hidden | u64 hidden[4]
 *   sections, each
 *     name (16, NUL-padded) | u32 dtype | u32 flags | u64 nbytes | bytes
 *   end marker: a section header of zeros (32 bytes)
 *   u32 CRC32C (Castagnoli) of every byte before it
 *
 * The CRC is the last four bytes in every version, so a reader checks it
 * before trusting any other field; a flipped bit anywhere is ITD_ERR_CORRUPT.
 * A file that is a valid checkpoint of another version, kind or feature spec
 * is ITD_ERR_INCOMPATIBLE.
 *
 * Writes are atomic: a temporary file in the target's folder is written,
 * flushed and fsync'ed, the previous file (if any) is hard-linked to
 * "<path>.prev", the temporary is renamed over <path>, and the folder is
 * fsync'ed. At every instant <path> is either the old or the new complete
 * file, and the last good checkpoint survives as <path>.prev.
 *
 * @thread any; objects are single-owner, no internal locking.
 */
#ifndef INTENTD_SNAPSHOT_H
#define INTENTD_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/err.h"
#include "intentd/frame.h"

#define ITD_SNAPSHOT_VERSION 1
#define ITD_SNAPSHOT_HEADER_BYTES 152
#define ITD_SNAPSHOT_NAME_MAX ITD_FRAME_NAME_MAX
#define ITD_SNAPSHOT_MAX_HIDDEN 4

/* What a checkpoint holds. */
typedef enum {
        ITD_SNAPSHOT_KIND_MODEL = ITD_FRAME_MODEL,
        ITD_SNAPSHOT_KIND_STATE = ITD_FRAME_STATE,
} itd_snapshot_kind_t;

/* Element type of a section, for readers and itd_snapshot_describe. */
typedef enum {
        ITD_SNAPSHOT_BYTES = ITD_FRAME_BYTES,
        ITD_SNAPSHOT_U64 = ITD_FRAME_U64,
        ITD_SNAPSHOT_F32 = ITD_FRAME_F32,
        ITD_SNAPSHOT_F64 = ITD_FRAME_F64,
        ITD_SNAPSHOT_U32 = ITD_FRAME_U32,
} itd_snapshot_dtype_t;

/* Section flags. */
#define ITD_SNAPSHOT_SEC_PARAM 1u /* model parameters (counted as such) */

/* Shapes of a model checkpoint; zeros for other kinds. */
typedef struct itd_snapshot_shape_s {
        uint32_t model_type; /* itd_model_kind_t (model.h) */
        uint32_t optimizer;  /* itd_opt_t (mlp.h); 0 for logistic */
        uint64_t n_dense, n_fields, ids_per_field;
        uint64_t emb_buckets, emb_dim;
        uint64_t n_hidden;
        uint64_t hidden[ITD_SNAPSHOT_MAX_HIDDEN];
} itd_snapshot_shape_t;

/* The header fields a caller sets (writing) or gets (reading). */
typedef struct itd_snapshot_meta_s {
        uint32_t kind;              /* itd_snapshot_kind_t */
        uint64_t feature_spec_hash; /* what the inputs mean */
        uint64_t config_hash;       /* the options the state depends on */
        uint64_t examples;          /* examples learned from */
        uint64_t steps;             /* optimizer steps */
        int64_t created_ms;         /* wall clock, ms since the epoch */
        itd_snapshot_shape_t shape;
} itd_snapshot_meta_t;

/* ---- writing ----------------------------------------------------------- */

typedef struct itd_snapshot_writer_s itd_snapshot_writer_t;

/**
 * @brief Starts a checkpoint at path: creates a temporary file next to it
 * and writes the header from meta (borrowed; copied).
 * @returns the writer (caller owns: finish with itd_snapshot_writer_commit or
 * itd_snapshot_writer_abort), or NULL with errstr set (ITD_ERR_IO cases: folder
 * missing or not writable).
 */
itd_snapshot_writer_t *itd_snapshot_writer_new(const char *path,
                                               const itd_snapshot_meta_t *meta,
                                               char *errstr,
                                               size_t errstr_size);

/**
 * @brief Appends one section. name: 1..15 bytes, unique in the file;
 * data: nbytes bytes (for F32/F64/U64, native numbers, stored
 * little-endian). I/O errors are remembered and reported by commit.
 */
void itd_snapshot_writer_section(itd_snapshot_writer_t *w, const char *name,
                                 itd_snapshot_dtype_t dtype, uint32_t flags,
                                 const void *data, size_t nbytes);

/**
 * @brief Ends the file (end marker, CRC), flushes, fsyncs, links the old
 * file to <path>.prev, renames the temporary over path, fsyncs the folder;
 * frees w in every case.
 * @returns ITD_OK, or ITD_ERR_IO with errstr naming the step and errno text;
 * then the temporary is removed and path is untouched.
 */
itd_err_t itd_snapshot_writer_commit(itd_snapshot_writer_t *w, char *errstr,
                                     size_t errstr_size);

/** @brief Removes the temporary and frees w; NULL does nothing. */
void itd_snapshot_writer_abort(itd_snapshot_writer_t *w);

/* ---- reading ----------------------------------------------------------- */

typedef struct itd_snapshot_s itd_snapshot_t;

/**
 * @brief Reads and verifies a whole checkpoint: size, CRC, magic, version,
 * section structure.
 * @param out  gets the checkpoint (caller owns; itd_snapshot_destroy).
 * @returns ITD_OK; ITD_ERR_IO (cannot open/read); ITD_ERR_CORRUPT
 * ("checkpoint F: CRC mismatch (stored 0x.., computed 0x..)",
 * "checkpoint F: truncated at byte N ..."); ITD_ERR_INCOMPATIBLE
 * (another format version). Nothing is allocated on failure.
 */
itd_err_t itd_snapshot_read(const char *path, itd_snapshot_t **out,
                            char *errstr, size_t errstr_size);
void itd_snapshot_destroy(itd_snapshot_t *ck);

/** @brief The header (borrowed, valid while ck lives). */
const itd_snapshot_meta_t *itd_snapshot_meta(const itd_snapshot_t *ck);

/**
 * @brief Copies section name into dst, which must be exactly nbytes long
 * and of type dtype.
 * @returns ITD_OK; ITD_ERR_NOT_FOUND (no such section) or ITD_ERR_CORRUPT
 * (other type or size), with errstr naming the section and both sizes.
 */
itd_err_t itd_snapshot_get(const itd_snapshot_t *ck, const char *name,
                           itd_snapshot_dtype_t dtype, void *dst, size_t nbytes,
                           char *errstr, size_t errstr_size);

/**
 * @brief Prints a readable dump of the checkpoint at path to out: header
 * fields, shapes, and per section its type, element count, L2 norm and
 * range; totals of parameters and of optimizer state. Used by
 * `intentd inspect model FILE`.
 * @returns what itd_snapshot_read returns; on failure the error line is printed
 * too.
 */
itd_err_t itd_snapshot_describe(const char *path, FILE *out, char *errstr,
                                size_t errstr_size);

#endif
