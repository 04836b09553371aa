/*
 * frame.h - the one framing of every snapshot: the model's
 * (model/snapshot.c), the state, labeler, trigger and risk tables'
 * (pipeline/snap.c) and the pipeline workers' replicas (core/replicas.c).
 * Every integer little-endian, no padding:
 *
 *   prefix (ITD_FRAME_PREFIX_BYTES = 24)
 *     magic "ITDCKPT\0" (8) | u32 version | u32 kind | u32 header_bytes |
 *     u32 flags (0)
 *   the rest of the kind's header, header_bytes in all
 *   sections, each
 *     name (16, NUL-padded) | u32 dtype | u32 flags | u64 nbytes | bytes
 *   end marker: a section header of zeros (32 bytes)
 *   u32 CRC32C (crc32c.h) of every byte before it
 *
 * The version is the kind's own: each kind bumps it when its header or
 * sections change. common/frame.c holds the helpers below (element byte
 * order, whole frames in memory).
 */
#ifndef INTENTD_FRAME_H
#define INTENTD_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "intentd/bytes.h"
#include "intentd/err.h"

#define ITD_FRAME_MAGIC "ITDCKPT" /* 8 bytes with its NUL */
#define ITD_FRAME_PREFIX_BYTES 24
#define ITD_FRAME_SECTION_BYTES 32 /* name 16, dtype 4, flags 4, nbytes 8 */
#define ITD_FRAME_NAME_MAX 16      /* section name bytes, NUL included */
#define ITD_FRAME_CRC_BYTES 4

/* What a snapshot holds: the prefix's kind word. */
typedef enum {
        ITD_FRAME_MODEL = 1,
        ITD_FRAME_STATE = 2,
        ITD_FRAME_LABELER = 3,
        ITD_FRAME_TRIGGER = 4,
        ITD_FRAME_RISK = 5,
        ITD_FRAME_TRAINER = 6, /* engine.bin (core/trainer_snap.c) */
        ITD_FRAME_EVAL = 7,    /* eval.bin (model/eval_progressive.c) */
        ITD_FRAME_WORKERS = 8, /* workers.bin (core/replicas.c) */
} itd_frame_kind_t;

/* Element type of a section: elements are stored little-endian. */
typedef enum {
        ITD_FRAME_BYTES = 1,
        ITD_FRAME_U64 = 2,
        ITD_FRAME_F32 = 3,
        ITD_FRAME_F64 = 4,
        ITD_FRAME_U32 = 5,
} itd_frame_dtype_t;

/* A section header, decoded. */
typedef struct itd_frame_section_s {
        char name[ITD_FRAME_NAME_MAX]; /* NUL-terminated when valid */
        uint32_t dtype;
        uint32_t flags;
        uint64_t nbytes;
} itd_frame_section_t;

static inline int itd_frame_host_is_le(void) {
        const uint16_t one = 1;
        return *(const uint8_t *)&one == 1;
}

static inline void itd_frame_prefix_put(uint8_t *h, uint32_t version,
                                        uint32_t kind, uint32_t header_bytes) {
        memcpy(h, ITD_FRAME_MAGIC, 8);
        itd_put_le32(h + 8, version);
        itd_put_le32(h + 12, kind);
        itd_put_le32(h + 16, header_bytes);
        itd_put_le32(h + 20, 0);
}

/* name: 1..15 bytes (the caller's own constant). */
static inline void itd_frame_section_put(uint8_t *h, const char *name,
                                         uint32_t dtype, uint32_t flags,
                                         uint64_t nbytes) {
        memset(h, 0, 16);
        memcpy(h, name, strnlen(name, ITD_FRAME_NAME_MAX - 1));
        itd_put_le32(h + 16, dtype);
        itd_put_le32(h + 20, flags);
        itd_put_le64(h + 24, nbytes);
}

static inline void itd_frame_section_get(const uint8_t *h,
                                         itd_frame_section_t *s) {
        memcpy(s->name, h, ITD_FRAME_NAME_MAX);
        s->dtype = itd_get_le32(h + 16);
        s->flags = itd_get_le32(h + 20);
        s->nbytes = itd_get_le64(h + 24);
}

/** @brief Bytes of one element of dtype (BYTES: 1); 0 for an unknown one. */
size_t itd_frame_dtype_size(uint32_t dtype);

/**
 * @brief Copies nbytes of elements es bytes wide between host order and
 * little-endian (the same swap both ways; a plain copy on a little-endian
 * host).
 */
void itd_frame_copy_le(void *dst, const void *src, size_t nbytes, size_t es);

/*
 * A whole frame in memory, for the small snapshots read and written in one
 * piece (the trainer's engine.bin, progressive validation's eval.bin):
 * itd_frame_buf_begin, a section at a time, itd_frame_buf_end; the bytes
 * are then buf[0 .. len).
 */
typedef struct itd_frame_buf_s {
        uint8_t *buf; /* owned; itd_frame_buf_fini frees it */
        size_t len, cap;
} itd_frame_buf_t;

/**
 * @brief Starts a frame in b (whose contents are replaced): the prefix of
 * version and kind, then hdr_bytes of the kind's header from hdr (already
 * little-endian); header_bytes in the prefix is 24 + hdr_bytes.
 */
void itd_frame_buf_begin(itd_frame_buf_t *b, uint32_t version, uint32_t kind,
                         const uint8_t *hdr, size_t hdr_bytes);

/**
 * @brief Appends section name (1..15 bytes, unique in the frame): nbytes
 * of host-order elements of dtype at data, stored little-endian.
 */
void itd_frame_buf_section(itd_frame_buf_t *b, const char *name,
                           uint32_t dtype, const void *data, size_t nbytes);

/** @brief Ends the frame: the end marker and the CRC32C. */
void itd_frame_buf_end(itd_frame_buf_t *b);

/** @brief Frees b's bytes; b is empty again. */
void itd_frame_buf_fini(itd_frame_buf_t *b);

/**
 * @brief Reads one whole frame from in into b, exactly its bytes (what
 * follows it is left unread): the first head_len bytes (at most 24) the
 * caller has already read from in are taken from head. Lengths are read
 * before the CRC can vouch for them, so the frame may have max_bytes at
 * most: a flipped bit reads as a damaged frame, never as a huge
 * allocation. Nothing is checked beyond the magic and the lengths: pass
 * b's bytes to itd_frame_parse.
 * @returns ITD_OK; ITD_ERR_CORRUPT (truncated, no magic, over max_bytes)
 * or ITD_ERR_IO with errstr.
 */
itd_err_t itd_frame_fread(FILE *in, const uint8_t *head, size_t head_len,
                          size_t max_bytes, itd_frame_buf_t *b, char *errstr,
                          size_t errstr_size);

/* A frame checked by itd_frame_parse; points into the caller's bytes. */
typedef struct itd_frame_view_s {
        const uint8_t *data;
        size_t len;
        uint32_t version;
        const uint8_t *header; /* the kind's header after the prefix */
        size_t header_bytes;   /* its bytes (the prefix's word less 24) */
} itd_frame_view_t;

/**
 * @brief Checks len bytes at data as a whole frame of kind: the magic, the
 * CRC32C (before any length in it is trusted), the kind, the header's size
 * (at least min_header_bytes after the prefix) and that the sections end
 * exactly at the end marker before the CRC. The version is the caller's to
 * judge (v->version).
 * @returns ITD_OK with v filled; ITD_ERR_CORRUPT with errstr (what is
 * wrong, at which byte), v then undefined.
 */
itd_err_t itd_frame_parse(itd_frame_view_t *v, const void *data, size_t len,
                          uint32_t kind, size_t min_header_bytes, char *errstr,
                          size_t errstr_size);

/**
 * @brief Copies section name of a parsed frame into dst (host order),
 * which must be exactly nbytes long and of type dtype.
 * @returns ITD_OK; ITD_ERR_CORRUPT (missing, of another type or size) with
 * errstr naming the section and both sizes.
 */
itd_err_t itd_frame_get(const itd_frame_view_t *v, const char *name,
                        uint32_t dtype, void *dst, size_t nbytes,
                        char *errstr, size_t errstr_size);

#endif
