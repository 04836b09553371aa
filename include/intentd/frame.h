/*
 * frame.h - the one framing of every snapshot: the model's
 * (model/snapshot.c) and the state, labeler, trigger and risk tables'
 * (pipeline/snap.c). Every integer little-endian, no padding:
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
 * sections change.
 */
#ifndef INTENTD_FRAME_H
#define INTENTD_FRAME_H

#include <stdint.h>
#include <string.h>

#include "intentd/bytes.h"

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

#endif
