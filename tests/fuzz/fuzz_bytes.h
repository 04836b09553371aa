/*
 * fuzz_bytes.h - small helpers shared by the fuzz targets: the input read
 * as a sequence of choices, growing byte buffers with Avro varints, a
 * memory source for the container reader, and the two block codecs
 * written the simple way (snappy as literals only, raw deflate).
 */
#ifndef INTENTD_FUZZ_BYTES_H
#define INTENTD_FUZZ_BYTES_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "intentd/err.h"

/* ---- the input, read as choices ---- */

typedef struct {
        const uint8_t *p, *end;
} in_t;

/* A choice in 0..n-1 (0 once the input is spent). */
static inline unsigned pick(in_t *in, unsigned n) {
        if (n <= 1 || in->p == in->end)
                return 0;
        return *in->p++ % n;
}

static inline uint64_t pick64(in_t *in) {
        uint64_t v = 0;
        for (int i = 0; i < 8 && in->p != in->end; i++)
                v = v << 8 | *in->p++;
        return v;
}

/* ---- growing byte buffers ---- */

typedef struct {
        uint8_t *b;
        size_t n, cap;
} buf_t;

static inline void put(buf_t *o, const void *p, size_t n) {
        if (o->n + n > o->cap) {
                o->cap = (o->n + n) * 2 + 256;
                o->b = realloc(o->b, o->cap);
                if (!o->b)
                        abort();
        }
        if (n)
                memcpy(o->b + o->n, p, n);
        o->n += n;
}

static inline void putf(buf_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void putf(buf_t *o, const char *fmt, ...) {
        char tmp[256];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        put(o, tmp, (size_t)n);
}

static inline void put_long(buf_t *o, int64_t v) {
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        do {
                uint8_t c = z & 0x7f;
                z >>= 7;
                if (z)
                        c |= 0x80;
                put(o, &c, 1);
        } while (z);
}

/* An itd_ocf_read_fn over memory (src: an in_t). */
static inline itd_err_t mem_read(void *src, void *buf, size_t n, size_t *got,
                          char *errstr, size_t errstr_size) {
        in_t *m = src;
        (void)errstr;
        (void)errstr_size;
        size_t left = (size_t)(m->end - m->p);
        *got = n < left ? n : left;
        if (*got)
                memcpy(buf, m->p, *got);
        m->p += *got;
        return ITD_OK;
}

/* Snappy with literals only: valid, if not small. */
static inline void snappy_literals(const buf_t *in, buf_t *out) {
        uint64_t n = in->n;
        out->n = 0;
        do {
                uint8_t c = n & 0x7f;
                n >>= 7;
                if (n)
                        c |= 0x80;
                put(out, &c, 1);
        } while (n);
        for (size_t i = 0; i < in->n; i += 60) {
                size_t k = in->n - i < 60 ? in->n - i : 60;
                uint8_t tag = (uint8_t)((k - 1) << 2);
                put(out, &tag, 1);
                put(out, in->b + i, k);
        }
        uint32_t crc = (uint32_t)crc32(0, in->b, (uInt)in->n);
        uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
                         (uint8_t)(crc >> 8), (uint8_t)crc};
        put(out, be, 4);
}

/* Raw deflate (no zlib or gzip wrapper), as Avro writes it. */
static inline void raw_deflate(const buf_t *in, buf_t *out) {
        z_stream zs;
        uint8_t chunk[4096];
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
                abort();
        out->n = 0;
        zs.next_in = in->b;
        zs.avail_in = (uInt)in->n;
        int rc;
        do {
                zs.next_out = chunk;
                zs.avail_out = sizeof chunk;
                rc = deflate(&zs, Z_FINISH);
                put(out, chunk, sizeof chunk - zs.avail_out);
        } while (rc == Z_OK || rc == Z_BUF_ERROR);
        if (rc != Z_STREAM_END)
                abort();
        deflateEnd(&zs);
}

#endif
