/*
 * ocf.c - Avro object container files (ocf.h): header, blocks, the
 * deflate and snappy block codecs, and records through the plan walker.
 *
 * Layout (Avro spec, "Object Container Files"): "Obj" 1, the metadata as
 * an Avro map of bytes ("avro.schema": the writer schema JSON,
 * "avro.codec": null / deflate / snappy / ...), a 16-byte sync marker; then
 * blocks, each a record count, a byte size, that many bytes of records
 * (compressed per the codec), and the sync marker again.
 *
 * Avro C's file reader trusts what the file says: it allocates a block of
 * the announced size, and its value reader recurses as deep as the data
 * nests and allocates every item an array announces. Here no size is
 * believed before the bytes arrive: buffers grow with the data actually
 * read, up to the limits in ocf.h, and records are walked by the same
 * bounded walker as Kafka messages, straight from the block, with no
 * re-encoding.
 */
#include "ocf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <zlib.h>

#include "codec_int.h"
#include "intentd/input.h"
#include "intentd/mem.h"

#define SYNC_BYTES 16
#define IN_BYTES (16 * 1024)
#define GROW_STEP (1u << 20) /* a buffer grows by at most this per read */

typedef enum { CODEC_NULL, CODEC_DEFLATE, CODEC_SNAPPY } ocf_codec_t;

struct itd_ocf_s {
        itd_ocf_read_fn read;
        void *src;
        char *name;
        uint8_t sync[SYNC_BYTES];
        ocf_codec_t codec;
        itd_plan_t *plan;
        /* buffered input */
        uint8_t in[IN_BYTES];
        size_t in_pos, in_len;
        uint64_t off; /* file offset of in[in_pos] */
        int in_eof;
        itd_err_t read_err; /* what the callback last failed with */
        itd_err_t dead;     /* a fatal error ended the file: repeated */
        /* the current block */
        uint8_t *raw; /* as stored, if compressed */
        size_t raw_cap;
        uint8_t *data; /* the records (read here for the null codec) */
        size_t data_cap, data_len, data_pos;
        uint64_t block_no, block_off;
        int64_t block_left; /* records not yet read */
        uint64_t record_no;
};

/* ------------------------------------------------------------------ */
/* Buffered reads.                                                    */

/* 1 and the byte, 0 at the end, -1 on error (errstr). */
static int in_byte(itd_ocf_t *o, uint8_t *b, char *errstr,
                   size_t errstr_size) {
        if (o->in_pos == o->in_len) {
                if (o->in_eof)
                        return 0;
                size_t got;
                itd_err_t err = o->read(o->src, o->in, sizeof o->in, &got,
                                        errstr, errstr_size);
                if (err) {
                        o->read_err = err;
                        return -1;
                }
                o->in_pos = 0;
                o->in_len = got;
                if (got < sizeof o->in)
                        o->in_eof = 1;
                if (got == 0)
                        return 0;
        }
        *b = o->in[o->in_pos++];
        o->off++;
        return 1;
}

/* n bytes into dst; the number read (< n only at the end), or -1. */
static int64_t in_bytes(itd_ocf_t *o, uint8_t *dst, size_t n, char *errstr,
                        size_t errstr_size) {
        size_t done = 0;
        while (done < n) {
                if (o->in_pos == o->in_len) {
                        uint8_t b;
                        int rc = in_byte(o, &b, errstr, errstr_size);
                        if (rc < 0)
                                return -1;
                        if (rc == 0)
                                break;
                        dst[done++] = b;
                        continue;
                }
                size_t k = o->in_len - o->in_pos;
                if (k > n - done)
                        k = n - done;
                memcpy(dst + done, o->in + o->in_pos, k);
                o->in_pos += k;
                o->off += k;
                done += k;
        }
        return (int64_t)done;
}

static int fail(itd_ocf_t *o, char *errstr, size_t errstr_size,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(itd_ocf_t *o, char *errstr, size_t errstr_size,
                const char *fmt, ...) {
        int n = snprintf(errstr, errstr_size, "%s: ", o->name);
        if (n >= 0 && (size_t)n < errstr_size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errstr + n, errstr_size - (size_t)n, fmt, ap);
                va_end(ap);
        }
        return -1;
}

/* A varint long. 1, 0 (clean end before its first byte), -1 (errstr). */
static int in_long(itd_ocf_t *o, int64_t *v, const char *what, char *errstr,
                   size_t errstr_size) {
        uint64_t u = 0;
        uint64_t at = o->off;
        for (int shift = 0; shift < 70; shift += 7) {
                uint8_t b;
                int rc = in_byte(o, &b, errstr, errstr_size);
                if (rc < 0)
                        return -1;
                if (rc == 0) {
                        if (shift == 0)
                                return 0;
                        return fail(o, errstr, errstr_size,
                                    "file ends inside the %s at byte %" PRIu64,
                                    what, at);
                }
                u |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
                        return 1;
                }
        }
        return fail(o, errstr, errstr_size,
                    "the %s at byte %" PRIu64 " is a varint longer than 10 "
                    "bytes",
                    what, at);
}

/*
 * n bytes into *buf (grown as bytes arrive, never ahead of them by more
 * than GROW_STEP, so a huge announced size in a short file costs nothing).
 * 0, or -1 with errstr.
 */
static int in_grow(itd_ocf_t *o, size_t n, uint8_t **buf, size_t *cap,
                   const char *what, char *errstr, size_t errstr_size) {
        size_t done = 0;
        uint64_t at = o->off;
        while (done < n) {
                size_t want = n - done < GROW_STEP ? n - done : GROW_STEP;
                if (done + want > *cap) {
                        size_t c = *cap ? *cap : 4096;
                        while (c < done + want)
                                c *= 2;
                        *buf = itd_xrealloc(*buf, c);
                        *cap = c;
                }
                int64_t got = in_bytes(o, *buf + done, want, errstr,
                                       errstr_size);
                if (got < 0)
                        return -1;
                done += (size_t)got;
                if ((size_t)got < want)
                        return fail(o, errstr, errstr_size,
                                    "file ends inside the %s at byte %" PRIu64
                                    " (%zu of %zu bytes there)",
                                    what, at, done, n);
        }
        return 0;
}

/* A length or count of at most max: 0, or -1 with errstr. */
static int in_len(itd_ocf_t *o, int64_t *n, const char *what, uint64_t max,
                  char *errstr, size_t errstr_size) {
        uint64_t at = o->off;
        int r = in_long(o, n, what, errstr, errstr_size);
        if (r < 0)
                return -1;
        if (r == 0)
                return fail(o, errstr, errstr_size,
                            "file ends before the %s at byte %" PRIu64, what,
                            at);
        if (*n < 0 || (uint64_t)*n > max)
                return fail(o, errstr, errstr_size,
                            "%s %" PRId64 " at byte %" PRIu64
                            " is outside 0..%" PRIu64,
                            what, *n, at, max);
        return 0;
}

/* ------------------------------------------------------------------ */
/* Header.                                                            */

/* One metadata entry: key and value, NUL-terminated. 0 or -1. */
static int read_entry(itd_ocf_t *o, uint8_t **key, size_t *key_cap,
                      uint8_t **val, size_t *val_cap, size_t *val_len,
                      char *errstr, size_t errstr_size) {
        int64_t n;
        uint8_t **buf[2] = {key, val};
        size_t *cap[2] = {key_cap, val_cap};
        for (int k = 0; k < 2; k++) {
                if (in_len(o, &n, k ? "metadata value length"
                                    : "metadata key length",
                           ITD_OCF_MAX_HEADER_BYTES, errstr, errstr_size))
                        return -1;
                if (o->off + (uint64_t)n > ITD_OCF_MAX_HEADER_BYTES)
                        return fail(o, errstr, errstr_size,
                                    "the header is larger than %u bytes",
                                    ITD_OCF_MAX_HEADER_BYTES);
                if (in_grow(o, (size_t)n, buf[k], cap[k], "header", errstr,
                            errstr_size))
                        return -1;
                if (*cap[k] < (size_t)n + 1) {
                        *cap[k] = (size_t)n + 1;
                        *buf[k] = itd_xrealloc(*buf[k], *cap[k]);
                }
                (*buf[k])[n] = '\0';
        }
        *val_len = (size_t)n;
        return 0;
}

static int set_codec(itd_ocf_t *o, const uint8_t *val, size_t len,
                     char *errstr, size_t errstr_size) {
        static const struct {
                const char *name;
                ocf_codec_t codec;
        } codecs[] = {{"null", CODEC_NULL},
                      {"deflate", CODEC_DEFLATE},
                      {"snappy", CODEC_SNAPPY}};
        for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
                if (len == strlen(codecs[i].name) &&
                    memcmp(val, codecs[i].name, len) == 0) {
                        o->codec = codecs[i].codec;
                        return 0;
                }
        }
        return fail(o, errstr, errstr_size,
                    "compression codec \"%.*s\" is not supported (null, "
                    "deflate and snappy are)",
                    len > 32 ? 32 : (int)len, (const char *)val);
}

static int read_header(itd_ocf_t *o, char *errstr, size_t errstr_size) {
        uint8_t magic[4];
        uint8_t *key = NULL, *val = NULL;
        size_t key_cap = 0, val_cap = 0, val_len = 0;
        char *schema = NULL;
        size_t schema_len = 0;
        avro_schema_t writer;
        int rc = -1;
        char why[400];
        int64_t got = in_bytes(o, magic, 4, errstr, errstr_size);
        if (got < 0)
                return -1;
        if (got < 4 || memcmp(magic, "Obj\x01", 4) != 0)
                return fail(o, errstr, errstr_size,
                            "not an Avro object container file: it does not "
                            "start with \"Obj\" 1");
        for (;;) {
                int64_t count, size;
                int r = in_long(o, &count, "metadata block count", errstr,
                                errstr_size);
                if (r <= 0) {
                        if (r == 0)
                                fail(o, errstr, errstr_size,
                                     "not an Avro object container file: "
                                     "it ends inside its header");
                        goto done;
                }
                if (count == 0)
                        break;
                if (count == INT64_MIN) {
                        fail(o, errstr, errstr_size,
                             "not an Avro object container file: bad "
                             "metadata block count");
                        goto done;
                }
                if (count < 0) {
                        /* a negative count is followed by a byte size */
                        if (in_len(o, &size, "metadata block size",
                                   ITD_OCF_MAX_HEADER_BYTES, errstr,
                                   errstr_size))
                                goto done;
                        count = -count;
                }
                for (int64_t i = 0; i < count; i++) {
                        if (read_entry(o, &key, &key_cap, &val, &val_cap,
                                       &val_len, errstr, errstr_size))
                                goto done;
                        if (strcmp((char *)key, "avro.schema") == 0) {
                                free(schema);
                                schema = (char *)val;
                                schema_len = val_len;
                                val = NULL;
                                val_cap = 0;
                        } else if (strcmp((char *)key, "avro.codec") == 0 &&
                                   set_codec(o, val, val_len, errstr,
                                             errstr_size)) {
                                goto done;
                        }
                }
        }
        got = in_bytes(o, o->sync, SYNC_BYTES, errstr, errstr_size);
        if (got < 0)
                goto done;
        if (got < SYNC_BYTES) {
                fail(o, errstr, errstr_size,
                     "not an Avro object container file: it ends inside "
                     "its header");
                goto done;
        }
        if (!schema) {
                fail(o, errstr, errstr_size,
                     "not an Avro object container file: no avro.schema in "
                     "its header");
                goto done;
        }
        if (avro_schema_from_json_length(schema, schema_len, &writer)) {
                fail(o, errstr, errstr_size,
                     "the file's schema does not parse: %.200s",
                     avro_strerror());
                goto done;
        }
        o->plan = itd_plan_new(writer, why, sizeof why);
        avro_schema_decref(writer);
        if (!o->plan) {
                fail(o, errstr, errstr_size,
                     "the file's schema does not resolve against "
                     "config/event.avsc: %s",
                     why);
                goto done;
        }
        rc = 0;
done:
        free(key);
        free(val);
        free(schema);
        return rc;
}

/* ------------------------------------------------------------------ */
/* Blocks.                                                            */

/* Makes room for n bytes of inflated data. */
static void data_reserve(itd_ocf_t *o, size_t n) {
        if (n <= o->data_cap)
                return;
        size_t c = o->data_cap ? o->data_cap : 64 * 1024;
        while (c < n)
                c *= 2;
        o->data = itd_xrealloc(o->data, c);
        o->data_cap = c;
}

/* Raw deflate (RFC 1951, as the Avro spec has it) of raw[n] into data. */
static int inflate_block(itd_ocf_t *o, size_t n, char *why, size_t why_size) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
                snprintf(why, why_size, "cannot set up zlib");
                return -1;
        }
        zs.next_in = o->raw;
        zs.avail_in = (uInt)n;
        size_t out = 0;
        int rc = -1;
        for (;;) {
                if (out == o->data_cap) {
                        if (o->data_cap >= ITD_OCF_MAX_BLOCK_BYTES) {
                                snprintf(why, why_size,
                                         "deflate data inflates to more "
                                         "than %u bytes",
                                         ITD_OCF_MAX_BLOCK_BYTES);
                                break;
                        }
                        data_reserve(o, out + 1);
                }
                size_t room = o->data_cap - out;
                if (room > ITD_OCF_MAX_BLOCK_BYTES - out)
                        room = ITD_OCF_MAX_BLOCK_BYTES - out;
                zs.next_out = o->data + out;
                zs.avail_out = (uInt)room;
                int zrc = inflate(&zs, Z_NO_FLUSH);
                out += room - zs.avail_out;
                if (zrc == Z_STREAM_END) {
                        /* Bytes after the end of the deflate stream are
                         * ignored, as Avro's own readers do. */
                        o->data_len = out;
                        rc = 0;
                        break;
                }
                if (zrc == Z_BUF_ERROR && zs.avail_out == 0)
                        continue; /* needs more room */
                if (zrc != Z_OK) {
                        snprintf(why, why_size,
                                 zrc == Z_BUF_ERROR
                                     ? "deflate data ends early"
                                     : "corrupt deflate data: %s",
                                 zs.msg ? zs.msg : zError(zrc));
                        break;
                }
        }
        inflateEnd(&zs);
        return rc;
}

/*
 * Snappy (the raw format of google/snappy's format_description.txt) of
 * raw[n] into data, then the 4-byte big-endian CRC-32 of the inflated data
 * that Avro appends. Every length and offset is checked against the bytes
 * present and produced.
 */
static int snappy_block(itd_ocf_t *o, size_t n, char *why, size_t why_size) {
        const uint8_t *s = o->raw;
        uint64_t ulen = 0;
        size_t i = 0, out = 0;
        if (n < 4) {
                snprintf(why, why_size, "snappy block of %zu bytes is "
                                        "shorter than its checksum", n);
                return -1;
        }
        n -= 4;
        uint32_t crc_want = (uint32_t)s[n] << 24 | (uint32_t)s[n + 1] << 16 |
                            (uint32_t)s[n + 2] << 8 | s[n + 3];
        for (int shift = 0;; shift += 7) {
                if (i == n || shift > 28) {
                        snprintf(why, why_size, "bad snappy length preamble");
                        return -1;
                }
                ulen |= (uint64_t)(s[i] & 0x7f) << shift;
                if (!(s[i++] & 0x80))
                        break;
        }
        /* A copy element yields at most 64 bytes from 2 or more: */
        if (ulen > ITD_OCF_MAX_BLOCK_BYTES || ulen > 32 * (uint64_t)n) {
                snprintf(why, why_size,
                         "snappy block announces %" PRIu64 " bytes from %zu",
                         ulen, n);
                return -1;
        }
        data_reserve(o, (size_t)ulen);
        uint8_t *d = o->data;
        while (i < n) {
                uint8_t tag = s[i++];
                uint64_t len, off = 0;
                if ((tag & 3) == 0) { /* literal */
                        len = tag >> 2;
                        if (len >= 60) {
                                size_t nb = (size_t)len - 59;
                                if (nb > n - i)
                                        goto truncated;
                                len = 0;
                                for (size_t k = 0; k < nb; k++)
                                        len |= (uint64_t)s[i + k] << (8 * k);
                                i += nb;
                        }
                        len += 1;
                        if (len > n - i)
                                goto truncated;
                        if (len > ulen - out)
                                goto overflow;
                        memcpy(d + out, s + i, (size_t)len);
                        i += (size_t)len;
                        out += (size_t)len;
                        continue;
                }
                size_t nb = (tag & 3) == 1 ? 1 : (tag & 3) == 2 ? 2 : 4;
                if (nb > n - i)
                        goto truncated;
                if ((tag & 3) == 1) {
                        len = 4 + ((tag >> 2) & 7);
                        off = (uint64_t)(tag >> 5) << 8 | s[i];
                } else {
                        len = (uint64_t)(tag >> 2) + 1;
                        for (size_t k = 0; k < nb; k++)
                                off |= (uint64_t)s[i + k] << (8 * k);
                }
                i += nb;
                if (off == 0 || off > out) {
                        snprintf(why, why_size,
                                 "snappy copy from %" PRIu64
                                 " bytes back, with %zu produced",
                                 off, out);
                        return -1;
                }
                if (len > ulen - out)
                        goto overflow;
                for (size_t k = 0; k < len; k++, out++)
                        d[out] = d[out - off]; /* may overlap: bytewise */
        }
        if (out != ulen) {
                snprintf(why, why_size,
                         "snappy block yields %zu of its %" PRIu64 " bytes",
                         out, ulen);
                return -1;
        }
        if (crc32(0, d, (uInt)out) != crc_want) {
                snprintf(why, why_size, "snappy block fails its CRC-32 check");
                return -1;
        }
        o->data_len = out;
        return 0;
truncated:
        snprintf(why, why_size, "snappy element runs past the block");
        return -1;
overflow:
        snprintf(why, why_size, "snappy block yields more than its %" PRIu64
                 " bytes", ulen);
        return -1;
}

/* The next block into data. 1, 0 at the clean end, -1 (errstr). */
static int read_block(itd_ocf_t *o, char *errstr, size_t errstr_size) {
        int64_t count, size;
        uint8_t sync[SYNC_BYTES];
        char why[200];
        o->block_off = o->off;
        int r = in_long(o, &count, "block count", errstr, errstr_size);
        if (r <= 0)
                return r;
        o->block_no++;
        if (count < 0)
                return fail(o, errstr, errstr_size,
                            "block %" PRIu64 " at byte %" PRIu64
                            ": negative record count %" PRId64,
                            o->block_no, o->block_off, count);
        /* The null codec's bytes are the records: read them in place. */
        int null = o->codec == CODEC_NULL;
        if (in_len(o, &size, "block size", ITD_OCF_MAX_BLOCK_BYTES, errstr,
                   errstr_size) ||
            in_grow(o, (size_t)size, null ? &o->data : &o->raw,
                    null ? &o->data_cap : &o->raw_cap, "block", errstr,
                    errstr_size))
                return -1;
        int64_t got = in_bytes(o, sync, SYNC_BYTES, errstr, errstr_size);
        if (got < 0)
                return -1;
        if (got < SYNC_BYTES || memcmp(sync, o->sync, SYNC_BYTES) != 0)
                return fail(o, errstr, errstr_size,
                            "block %" PRIu64 " at byte %" PRIu64 ": %s",
                            o->block_no, o->block_off,
                            got < SYNC_BYTES
                                ? "file ends inside the sync marker"
                                : "sync marker differs from the header's "
                                  "(corrupt file)");
        switch (o->codec) {
        case CODEC_NULL:
                o->data_len = (size_t)size;
                r = 0;
                break;
        case CODEC_DEFLATE:
                r = inflate_block(o, (size_t)size, why, sizeof why);
                break;
        default:
                r = snappy_block(o, (size_t)size, why, sizeof why);
                break;
        }
        if (r)
                return fail(o, errstr, errstr_size,
                            "block %" PRIu64 " at byte %" PRIu64 ": %s",
                            o->block_no, o->block_off, why);
        /* A record takes at least one byte (its user_id, which the plan
         * insists on, does), so no count beyond the bytes is honest. */
        if ((uint64_t)count > o->data_len)
                return fail(o, errstr, errstr_size,
                            "block %" PRIu64 " at byte %" PRIu64
                            ": %" PRId64 " records announced in %zu bytes",
                            o->block_no, o->block_off, count, o->data_len);
        o->block_left = count;
        o->data_pos = 0;
        return 1;
}

/* ------------------------------------------------------------------ */
/* The reader.                                                        */

itd_ocf_t *itd_ocf_open(itd_ocf_read_fn read, void *src, const char *name,
                        char *errstr, size_t errstr_size) {
        itd_ocf_t *o = itd_xcalloc(1, sizeof *o);
        o->read = read;
        o->src = src;
        o->name = itd_xstrdup(name);
        errstr[0] = '\0';
        if (read_header(o, errstr, errstr_size)) {
                itd_ocf_close(o);
                return NULL;
        }
        return o;
}

void itd_ocf_close(itd_ocf_t *o) {
        if (!o)
                return;
        itd_plan_destroy(o->plan);
        free(o->raw);
        free(o->data);
        free(o->name);
        free(o);
}

uint64_t itd_ocf_record_no(const itd_ocf_t *o) { return o->record_no; }

itd_err_t itd_ocf_next(itd_ocf_t *o, itd_event_t *ev, char *errstr,
                       size_t errstr_size) {
        if (o->dead) {
                fail(o, errstr, errstr_size, "cannot be read on after an "
                                             "error");
                return o->dead;
        }
        while (o->block_left == 0) {
                if (o->data_pos != o->data_len) {
                        fail(o, errstr, errstr_size,
                             "block %" PRIu64 " at byte %" PRIu64
                             ": %zu bytes left after its records",
                             o->block_no, o->block_off,
                             o->data_len - o->data_pos);
                        return o->dead = ITD_ERR_CORRUPT;
                }
                int r = read_block(o, errstr, errstr_size);
                if (r < 0)
                        return o->dead = o->read_err ? o->read_err
                                                     : ITD_ERR_CORRUPT;
                if (r == 0)
                        return ITD_ERR_EOF;
        }
        char why[300];
        size_t off = o->data_pos;
        o->record_no++;
        o->block_left--;
        itd_reason_t r = itd_plan_decode_next(o->plan, o->data, o->data_len,
                                              &off, SIZE_MAX, ev, why,
                                              sizeof why);
        if (off == SIZE_MAX) {
                /* Nothing after this record can be found: the block is
                 * broken, and so is the file. */
                fail(o, errstr, errstr_size,
                     "block %" PRIu64 " at byte %" PRIu64 ", record %" PRIu64
                     ": %s (%s)",
                     o->block_no, o->block_off, o->record_no, why,
                     itd_reason_name(r));
                return o->dead = ITD_ERR_CORRUPT;
        }
        o->data_pos = off;
        if (r == ITD_REASON_OK)
                return ITD_OK;
        snprintf(errstr, errstr_size, "%s (%s)", why, itd_reason_name(r));
        return ITD_ERR_DECODE;
}
