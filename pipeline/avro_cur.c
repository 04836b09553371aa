/*
 * avro_cur.c - the out-of-line parts of the Avro cursor (avro_cur.h):
 * error text, strings (length, NUL bytes, UTF-8) and the end check.
 */
#include "avro_cur.h"

#include <stdarg.h>
#include <stdio.h>

#include "codec_int.h"

itd_reason_t itd_cur_fail(itd_cur_t *c, itd_reason_t r, const char *fmt,
                          ...) {
        if (c->errstr && c->errstr_size) {
                int n = snprintf(c->errstr, c->errstr_size,
                                 "field '%s' at byte %zu: ", c->field,
                                 (size_t)(c->p - c->base));
                if (n >= 0 && (size_t)n < c->errstr_size) {
                        va_list ap;
                        va_start(ap, fmt);
                        vsnprintf(c->errstr + n, c->errstr_size - (size_t)n,
                                  fmt, ap);
                        va_end(ap);
                }
        }
        return r;
}

size_t itd_utf8_check(const uint8_t *s, size_t n) {
        size_t i = 0;
        while (i < n) {
                uint8_t b = s[i];
                if (b < 0x80) {
                        i++;
                        continue;
                }
                size_t k;
                uint32_t cp, min;
                if ((b & 0xe0) == 0xc0) {
                        k = 1, cp = b & 0x1f, min = 0x80;
                } else if ((b & 0xf0) == 0xe0) {
                        k = 2, cp = b & 0x0f, min = 0x800;
                } else if ((b & 0xf8) == 0xf0) {
                        k = 3, cp = b & 0x07, min = 0x10000;
                } else {
                        return i;
                }
                if (n - i <= k)
                        return i;
                for (size_t j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xc0) != 0x80)
                                return i;
                        cp = cp << 6 | (s[i + j] & 0x3f);
                }
                /* overlong forms, UTF-16 surrogates, beyond Unicode */
                if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) ||
                    cp > 0x10ffff)
                        return i;
                i += k + 1;
        }
        return n;
}

itd_reason_t itd_cur_check_end(itd_cur_t *c) {
        if (c->p == c->end)
                return ITD_REASON_OK;
        if (c->errstr && c->errstr_size)
                snprintf(c->errstr, c->errstr_size,
                         "%zu trailing bytes after the record (record ends "
                         "at byte %zu of %zu)",
                         itd_cur_left(c), (size_t)(c->p - c->base),
                         (size_t)(c->end - c->base));
        return ITD_REASON_TRAILING_BYTES;
}
