/*
 * frame.c - helpers of the one snapshot framing (frame.h): element byte
 * order, and whole frames built and checked in memory.
 *
 * The reader checks the CRC32C before it trusts any length in the frame,
 * then walks the sections once: a frame whose sections do not end exactly
 * at the end marker before the CRC is refused, so itd_frame_get can walk
 * them again without bounds doubts.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/crc32c.h"
#include "intentd/frame.h"
#include "intentd/mem.h"

size_t itd_frame_dtype_size(uint32_t dtype) {
        switch (dtype) {
        case ITD_FRAME_BYTES:
                return 1;
        case ITD_FRAME_F32:
        case ITD_FRAME_U32:
                return 4;
        case ITD_FRAME_U64:
        case ITD_FRAME_F64:
                return 8;
        default:
                return 0;
        }
}

void itd_frame_copy_le(void *dst, const void *src, size_t nbytes, size_t es) {
        if (es <= 1 || itd_frame_host_is_le()) {
                if (nbytes)
                        memcpy(dst, src, nbytes);
                return;
        }
        const uint8_t *s = src;
        uint8_t *d = dst;
        for (size_t i = 0; i + es <= nbytes; i += es)
                for (size_t k = 0; k < es; k++)
                        d[i + k] = s[i + es - 1 - k];
}

/* Room for n more bytes at b->buf + b->len. */
static uint8_t *grow(itd_frame_buf_t *b, size_t n) {
        if (b->cap - b->len < n) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap - b->len < n)
                        cap *= 2;
                b->buf = itd_xrealloc(b->buf, cap);
                b->cap = cap;
        }
        uint8_t *p = b->buf + b->len;
        b->len += n;
        return p;
}

void itd_frame_buf_begin(itd_frame_buf_t *b, uint32_t version, uint32_t kind,
                         const uint8_t *hdr, size_t hdr_bytes) {
        b->len = 0;
        uint8_t *p = grow(b, ITD_FRAME_PREFIX_BYTES + hdr_bytes);
        itd_frame_prefix_put(p, version, kind,
                             (uint32_t)(ITD_FRAME_PREFIX_BYTES + hdr_bytes));
        if (hdr_bytes)
                memcpy(p + ITD_FRAME_PREFIX_BYTES, hdr, hdr_bytes);
}

void itd_frame_buf_section(itd_frame_buf_t *b, const char *name,
                           uint32_t dtype, const void *data, size_t nbytes) {
        uint8_t *p = grow(b, ITD_FRAME_SECTION_BYTES + nbytes);
        itd_frame_section_put(p, name, dtype, 0, nbytes);
        itd_frame_copy_le(p + ITD_FRAME_SECTION_BYTES, data, nbytes,
                          itd_frame_dtype_size(dtype));
}

void itd_frame_buf_end(itd_frame_buf_t *b) {
        uint8_t *p = grow(b, ITD_FRAME_SECTION_BYTES);
        memset(p, 0, ITD_FRAME_SECTION_BYTES);
        uint32_t crc = itd_crc32c(0, b->buf, b->len);
        itd_put_le32(grow(b, ITD_FRAME_CRC_BYTES), crc);
}

void itd_frame_buf_fini(itd_frame_buf_t *b) {
        free(b->buf);
        memset(b, 0, sizeof *b);
}

/* n more bytes of in into b; 0, or -1 with errstr. */
static int fread_more(FILE *in, itd_frame_buf_t *b, size_t n,
                      size_t max_bytes, const char *what, char *errstr,
                      size_t errstr_size) {
        if (n > max_bytes - b->len) {
                itd_errf(errstr, errstr_size,
                         "%s at byte %zu would make it larger than %zu "
                         "bytes: damaged",
                         what, b->len, max_bytes);
                return -1;
        }
        size_t at = b->len;
        uint8_t *p = grow(b, n);
        size_t got = n ? fread(p, 1, n, in) : 0;
        if (got != n) {
                b->len = at + got;
                itd_errf(errstr, errstr_size,
                         "%s at byte %zu: %s", what, at,
                         ferror(in) ? "read error" : "truncated");
                return -1;
        }
        return 0;
}

itd_err_t itd_frame_fread(FILE *in, const uint8_t *head, size_t head_len,
                          size_t max_bytes, itd_frame_buf_t *b, char *errstr,
                          size_t errstr_size) {
        b->len = 0;
        if (head_len > ITD_FRAME_PREFIX_BYTES)
                head_len = ITD_FRAME_PREFIX_BYTES;
        if (head_len)
                memcpy(grow(b, head_len), head, head_len);
        if (fread_more(in, b, ITD_FRAME_PREFIX_BYTES - head_len, max_bytes,
                       "the prefix", errstr, errstr_size))
                goto fail;
        if (memcmp(b->buf, ITD_FRAME_MAGIC, 8) != 0) {
                itd_errf(errstr, errstr_size, "no \"%s\" magic at byte 0",
                         ITD_FRAME_MAGIC);
                return ITD_ERR_CORRUPT;
        }
        uint32_t header_bytes = itd_get_le32(b->buf + 16);
        if (header_bytes < ITD_FRAME_PREFIX_BYTES) {
                itd_errf(errstr, errstr_size,
                         "a header of %" PRIu32 " bytes, shorter than its "
                         "prefix: damaged",
                         header_bytes);
                return ITD_ERR_CORRUPT;
        }
        if (fread_more(in, b, header_bytes - ITD_FRAME_PREFIX_BYTES,
                       max_bytes, "the header", errstr, errstr_size))
                goto fail;
        for (;;) {
                if (fread_more(in, b, ITD_FRAME_SECTION_BYTES, max_bytes,
                               "a section header", errstr, errstr_size))
                        goto fail;
                itd_frame_section_t s;
                itd_frame_section_get(b->buf + b->len -
                                          ITD_FRAME_SECTION_BYTES,
                                      &s);
                if (s.name[0] == '\0')
                        break;
                if (s.nbytes > max_bytes) {
                        itd_errf(errstr, errstr_size,
                                 "a section of %" PRIu64 " bytes at byte "
                                 "%zu, more than %zu: damaged",
                                 s.nbytes, b->len, max_bytes);
                        return ITD_ERR_CORRUPT;
                }
                if (fread_more(in, b, (size_t)s.nbytes, max_bytes,
                               "a section", errstr, errstr_size))
                        goto fail;
        }
        if (fread_more(in, b, ITD_FRAME_CRC_BYTES, max_bytes, "the CRC",
                       errstr, errstr_size))
                goto fail;
        return ITD_OK;
fail:
        return ferror(in) ? ITD_ERR_IO : ITD_ERR_CORRUPT;
}

/* The first section header of a checked frame, and where the end marker
 * must be. */
static const uint8_t *first_section(const itd_frame_view_t *v) {
        return v->header + v->header_bytes;
}

itd_err_t itd_frame_parse(itd_frame_view_t *v, const void *data, size_t len,
                          uint32_t kind, size_t min_header_bytes, char *errstr,
                          size_t errstr_size) {
        const uint8_t *buf = data;
        const size_t least = ITD_FRAME_PREFIX_BYTES + ITD_FRAME_SECTION_BYTES +
                             ITD_FRAME_CRC_BYTES;
        if (len < 8 || memcmp(buf, ITD_FRAME_MAGIC, 8) != 0) {
                itd_errf(errstr, errstr_size,
                         "no \"%s\" magic at byte 0 (%zu bytes)",
                         ITD_FRAME_MAGIC, len);
                return ITD_ERR_CORRUPT;
        }
        if (len < least + min_header_bytes) {
                itd_errf(errstr, errstr_size,
                         "truncated: %zu bytes, fewer than the %zu of an "
                         "empty snapshot",
                         len, least + min_header_bytes);
                return ITD_ERR_CORRUPT;
        }
        size_t body = len - ITD_FRAME_CRC_BYTES;
        uint32_t stored = itd_get_le32(buf + body);
        uint32_t computed = itd_crc32c(0, buf, body);
        if (stored != computed) {
                itd_errf(errstr, errstr_size,
                         "CRC32C mismatch over bytes 0..%zu (stored 0x%08"
                         PRIx32 ", computed 0x%08" PRIx32
                         "): damaged or truncated",
                         body, stored, computed);
                return ITD_ERR_CORRUPT;
        }
        uint32_t got_kind = itd_get_le32(buf + 12);
        uint32_t header_bytes = itd_get_le32(buf + 16);
        if (got_kind != kind) {
                itd_errf(errstr, errstr_size,
                         "a snapshot of kind %" PRIu32 ", not %" PRIu32,
                         got_kind, kind);
                return ITD_ERR_CORRUPT;
        }
        if (header_bytes < ITD_FRAME_PREFIX_BYTES + min_header_bytes ||
            header_bytes > body - ITD_FRAME_SECTION_BYTES) {
                itd_errf(errstr, errstr_size,
                         "a header of %" PRIu32 " bytes in %zu (at least %zu)",
                         header_bytes, len,
                         ITD_FRAME_PREFIX_BYTES + min_header_bytes);
                return ITD_ERR_CORRUPT;
        }
        v->data = buf;
        v->len = len;
        v->version = itd_get_le32(buf + 8);
        v->header = buf + ITD_FRAME_PREFIX_BYTES;
        v->header_bytes = header_bytes - ITD_FRAME_PREFIX_BYTES;
        /* the sections, up to the end marker, which must sit just before
         * the CRC */
        size_t off = header_bytes;
        for (;;) {
                if (body - off < ITD_FRAME_SECTION_BYTES) {
                        itd_errf(errstr, errstr_size,
                                 "malformed: no end marker before byte %zu",
                                 body);
                        return ITD_ERR_CORRUPT;
                }
                itd_frame_section_t s;
                itd_frame_section_get(buf + off, &s);
                off += ITD_FRAME_SECTION_BYTES;
                if (s.name[0] == '\0') {
                        if (off != body || s.nbytes != 0) {
                                itd_errf(errstr, errstr_size,
                                         "malformed: end marker at byte %zu, "
                                         "%zu bytes before the CRC",
                                         off - ITD_FRAME_SECTION_BYTES,
                                         body - off);
                                return ITD_ERR_CORRUPT;
                        }
                        return ITD_OK;
                }
                if (s.name[ITD_FRAME_NAME_MAX - 1] != '\0' ||
                    s.nbytes > body - off) {
                        itd_errf(errstr, errstr_size,
                                 "malformed: the section at byte %zu runs "
                                 "past the end",
                                 off - ITD_FRAME_SECTION_BYTES);
                        return ITD_ERR_CORRUPT;
                }
                off += (size_t)s.nbytes;
        }
}

itd_err_t itd_frame_get(const itd_frame_view_t *v, const char *name,
                        uint32_t dtype, void *dst, size_t nbytes,
                        char *errstr, size_t errstr_size) {
        const uint8_t *p = first_section(v);
        for (;;) {
                itd_frame_section_t s;
                itd_frame_section_get(p, &s);
                if (s.name[0] == '\0')
                        break;
                p += ITD_FRAME_SECTION_BYTES;
                if (strcmp(s.name, name) == 0) {
                        if (s.dtype != dtype || s.nbytes != nbytes) {
                                itd_errf(errstr, errstr_size,
                                         "section \"%s\": type %" PRIu32
                                         " of %" PRIu64
                                         " bytes, expected type %" PRIu32
                                         " of %zu",
                                         name, s.dtype, s.nbytes, dtype,
                                         nbytes);
                                return ITD_ERR_CORRUPT;
                        }
                        itd_frame_copy_le(dst, p, nbytes,
                                          itd_frame_dtype_size(dtype));
                        return ITD_OK;
                }
                p += s.nbytes;
        }
        itd_errf(errstr, errstr_size, "no section \"%s\"", name);
        return ITD_ERR_CORRUPT;
}
