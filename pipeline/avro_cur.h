/*
 * avro_cur.h - a cursor over Avro binary data: bounds-checked reads whose
 * failures carry a reason code (input.h) and one line naming the field and
 * the byte offset. Shared by the event walker (plan.c), the prediction and
 * trigger decoders (codec.c) and the container reader (ocf.c). Private to
 * the pipeline module.
 *
 * The small reads are static inline: the event walker calls them for every
 * field of every message.
 */
#ifndef INTENTD_AVRO_CUR_H
#define INTENTD_AVRO_CUR_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec_int.h" /* itd_utf8_check */
#include "intentd/input.h"

typedef struct {
        const uint8_t *base; /* message start: offsets count from here */
        const uint8_t *p;
        const uint8_t *end;
        const char *field; /* name of the field being read, for errors */
        size_t max_str;    /* longest string accepted, bytes */
        char *errstr;      /* may be NULL */
        size_t errstr_size;
} itd_cur_t;

/**
 * @brief Writes "field '<field>' at byte <offset>: <why>" into the
 * cursor's errstr.
 * @returns r, so that callers can `return itd_cur_fail(...)`.
 * @thread any.
 */
itd_reason_t itd_cur_fail(itd_cur_t *c, itd_reason_t r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief ITD_REASON_TRAILING_BYTES unless the cursor is at its end. */
itd_reason_t itd_cur_check_end(itd_cur_t *c);

static inline size_t itd_cur_left(const itd_cur_t *c) {
        return (size_t)(c->end - c->p);
}

/* Zig-zag varint, at most 10 bytes (Avro long). */
static inline itd_reason_t itd_cur_long(itd_cur_t *c, int64_t *out) {
        uint64_t v = 0;
        const uint8_t *p = c->p;
        *out = 0;
        for (int shift = 0; shift < 70; shift += 7) {
                if (p == c->end)
                        return itd_cur_fail(c, ITD_REASON_TRUNCATED,
                                            "truncated payload: varint runs "
                                            "past the end (%zu bytes left)",
                                            itd_cur_left(c));
                uint8_t b = *p++;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        c->p = p;
                        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        return ITD_REASON_OK;
                }
        }
        return itd_cur_fail(c, ITD_REASON_MALFORMED_AVRO,
                            "varint longer than 10 bytes");
}

/* A length prefix (string, bytes): non-negative and within the data. */
static inline itd_reason_t itd_cur_len(itd_cur_t *c, size_t *out) {
        const uint8_t *at = c->p;
        int64_t n;
        itd_reason_t r;
        *out = 0;
        if ((r = itd_cur_long(c, &n)))
                return r;
        if (n < 0) {
                c->p = at;
                return itd_cur_fail(c, ITD_REASON_NEGATIVE_LENGTH,
                                    "negative string length %" PRId64, n);
        }
        if ((uint64_t)n > itd_cur_left(c))
                return itd_cur_fail(c, ITD_REASON_TRUNCATED,
                                    "truncated payload: %" PRId64
                                    " bytes announced, only %zu left",
                                    n, itd_cur_left(c));
        *out = (size_t)n;
        return ITD_REASON_OK;
}

/* Steps over n bytes (fixed, float, double, boolean). */
static inline itd_reason_t itd_cur_skip(itd_cur_t *c, size_t n,
                                        const char *what) {
        if (itd_cur_left(c) < n)
                return itd_cur_fail(c, ITD_REASON_TRUNCATED,
                                    "truncated payload: %s needs %zu bytes, "
                                    "only %zu left",
                                    what, n, itd_cur_left(c));
        c->p += n;
        return ITD_REASON_OK;
}

static inline itd_reason_t itd_cur_float(itd_cur_t *c, float *out) {
        itd_reason_t r = itd_cur_skip(c, 4, "float");
        if (r)
                return r;
        const uint8_t *b = c->p - 4;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                     (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(out, &u, sizeof *out);
        return ITD_REASON_OK;
}

static inline itd_reason_t itd_cur_double(itd_cur_t *c, double *out) {
        itd_reason_t r = itd_cur_skip(c, 8, "double");
        if (r)
                return r;
        const uint8_t *b = c->p - 8;
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
                u = u << 8 | b[i];
        memcpy(out, &u, sizeof *out);
        return ITD_REASON_OK;
}

/* An index below n: what is "enum index" or "union branch". */
static inline itd_reason_t itd_cur_index(itd_cur_t *c, size_t n,
                                         itd_reason_t bad, const char *what,
                                         size_t *out) {
        const uint8_t *at = c->p;
        int64_t i;
        *out = 0;
        itd_reason_t r = itd_cur_long(c, &i);
        if (r)
                return r;
        if (i < 0 || (uint64_t)i >= n) {
                c->p = at;
                if (n == 0)
                        return itd_cur_fail(c, bad,
                                            "%s %" PRId64 " of an empty type",
                                            what, i);
                return itd_cur_fail(c, bad, "%s %" PRId64 " outside 0..%zu",
                                    what, i, n - 1);
        }
        *out = (size_t)i;
        return ITD_REASON_OK;
}

static inline itd_reason_t itd_cur_enum(itd_cur_t *c, size_t nsym,
                                        size_t *out) {
        return itd_cur_index(c, nsym, ITD_REASON_BAD_ENUM_INDEX,
                             "enum index", out);
}

static inline itd_reason_t itd_cur_branch(itd_cur_t *c, size_t nbranch,
                                          size_t *out) {
        return itd_cur_index(c, nbranch, ITD_REASON_BAD_UNION_BRANCH,
                             "union branch", out);
}

/*
 * Array and map block header: count, and for a negative count the block's
 * byte size (not needed to walk it). 0 ends the sequence. Items of at least
 * min_item_bytes bytes cannot outnumber the bytes left; zero-byte items
 * (null, records of nulls) are never iterated by the walkers, so no count
 * makes a walk slow or allocates.
 */
static inline itd_reason_t itd_cur_block(itd_cur_t *c, int min_item_bytes,
                                         int64_t *count) {
        const uint8_t *at = c->p;
        *count = 0;
        itd_reason_t r = itd_cur_long(c, count);
        if (r)
                return r;
        if (*count < 0) {
                int64_t bytes;
                if (*count == INT64_MIN) {
                        c->p = at;
                        return itd_cur_fail(c, ITD_REASON_MALFORMED_AVRO,
                                            "bad block count");
                }
                *count = -*count;
                if ((r = itd_cur_long(c, &bytes)))
                        return r;
                if (bytes < 0) {
                        c->p = at;
                        return itd_cur_fail(c, ITD_REASON_MALFORMED_AVRO,
                                            "negative block size %" PRId64,
                                            bytes);
                }
        }
        if (min_item_bytes > 0 && (uint64_t)*count > itd_cur_left(c)) {
                c->p = at;
                return itd_cur_fail(c, ITD_REASON_TRUNCATED,
                                    "truncated payload: block of %" PRId64
                                    " items, only %zu bytes left",
                                    *count, itd_cur_left(c));
        }
        return ITD_REASON_OK;
}

/*
 * A string into dst[cap] (NUL-terminated), refused (not cut) when it is
 * longer than cap - 1 or c->max_str, holds a NUL byte or is not UTF-8. On
 * failure the cursor stays at the length prefix.
 */
static inline itd_reason_t itd_cur_string(itd_cur_t *c, char *dst,
                                          size_t cap) {
        const uint8_t *at = c->p;
        size_t n, bad, limit = cap - 1;
        itd_reason_t r = itd_cur_len(c, &n);
        if (r)
                return r;
        const uint8_t *s = c->p;
        if (c->max_str < limit)
                limit = c->max_str;
        if (n > limit) {
                c->p = at;
                return itd_cur_fail(c, ITD_REASON_STRING_TOO_LONG,
                                    "string of %zu bytes exceeds the limit "
                                    "of %zu",
                                    n, limit);
        }
        if (memchr(s, 0, n)) {
                c->p = at;
                return itd_cur_fail(c, ITD_REASON_NUL_IN_STRING,
                                    "string contains a NUL byte");
        }
        if ((bad = itd_utf8_check(s, n)) != n) {
                c->p = at;
                return itd_cur_fail(c, ITD_REASON_INVALID_UTF8,
                                    "string is not valid UTF-8 (byte %zu of "
                                    "the string is 0x%02x)",
                                    bad, s[bad]);
        }
        memcpy(dst, s, n);
        dst[n] = '\0';
        c->p += n;
        return ITD_REASON_OK;
}

#endif
