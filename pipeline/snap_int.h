/*
 * snap_int.h - snapshot I/O shared by state_snap.c, labeler_snap.c,
 * trigger.c and risk.c.
 *
 * A snapshot is a fixed header and a payload of arrays in native byte
 * order. The header is, one uint64 each unless said: the 8-byte magic,
 * format version | header bytes << 32, a byte-order word, the kind's
 * n_values words (layout, configuration, sizes), the payload's length and
 * XXH64, then the XXH64 of the header before it. Writers run the payload
 * twice: once to measure and hash it (f == NULL), once to write it.
 */
#ifndef INTENTD_SNAP_INT_H
#define INTENTD_SNAP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "intentd/err.h"

#define ITD_SNAP_ENDIAN UINT64_C(0x0102030405060708)

/* Header bytes of a kind with n values. */
#define ITD_SNAP_HDR_BYTES(n) (8 + 8 + 8 + 8 * (n) + 16 + 8)

typedef struct itd_snap_kind_s {
        const char *name;  /* "state": in every message */
        const char *magic; /* 8 bytes, no terminator needed */
        uint32_t version;
        size_t n_values;   /* header words between byte order and sizes */
        /* The previous format version, still read (its own n_values), or
         * NULL; its own `older` may name one more. Writers always write
         * this version. */
        const struct itd_snap_kind_s *older;
} itd_snap_kind_t;

typedef struct itd_snap_s {
        FILE *f;           /* NULL: count (and hash) only */
        void *h;           /* XXH64_state_t * or NULL */
        uint64_t off;      /* bytes so far, from the snapshot's start */
        int failed;        /* sticky: a read or write came up short */
        int eof;           /* the short read hit end of input */
        int saved_errno;
        /* what itd_snap_header_read found: */
        const itd_snap_kind_t *kind; /* the version's kind */
        uint32_t version;            /* kind->version */
        uint64_t payload_bytes;      /* the payload's length ... */
        uint64_t payload_hash;       /* ... and XXH64 */
        itd_err_t err;     /* why a read failed: ITD_ERR_CORRUPT (damaged
                            * or truncated), ITD_ERR_INCOMPATIBLE (another
                            * version, build or configuration), ITD_ERR_IO */
} itd_snap_t;

/*
 * One piece of a payload, in payload order. A kind lists its pieces once
 * in a table; itd_snap_write_parts writes such a table and
 * itd_snap_payload_read reads one back, so the order lives in one place.
 * A piece of records (each set) is read rec bytes at a time and handed to
 * each(ctx, record, index), so a table of many records needs no buffer of
 * the whole.
 */
typedef struct itd_snap_part_s {
        void *p;          /* n bytes read into (or written from); NULL with
                           * each */
        size_t n;         /* bytes */
        const char *what; /* "the users": names it in messages */
        size_t rec;       /* with each: bytes per record (n a multiple) */
        void (*each)(void *ctx, const unsigned char *rec, size_t i);
        void *ctx;
} itd_snap_part_t;

/* A part of plain bytes: ITD_SNAP_PART(st->users, bytes, "the users"). */
#define ITD_SNAP_PART(ptr, bytes, what_)                                  \
        { .p = (ptr), .n = (bytes), .what = (what_) }

void itd_snap_write(itd_snap_t *s, const void *p, size_t n);
/* Writes the n parts' bytes in order (parts without each). */
void itd_snap_write_parts(itd_snap_t *s, const itd_snap_part_t *parts,
                          size_t n);
/* Little helpers for fixed-size records, native byte order. */
void itd_snap_put(unsigned char *buf, size_t *pos, uint64_t v);
uint64_t itd_snap_get(const unsigned char *buf, size_t *pos);

/* Header words of floating-point configuration: the value's bits. */
static inline uint64_t itd_snap_f32_bits(float f) {
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        return u;
}

static inline uint64_t itd_snap_f64_bits(double d) {
        uint64_t u;
        memcpy(&u, &d, sizeof u);
        return u;
}

/* For restore functions, which all fail the same way: the class of the
 * failure into sp->err (an itd_snap_t *), the message into errstr
 * (errstr_size bytes; both in scope, errstr may be NULL), then goto fail.
 * Callers tell failures apart by the class, never by the message. */
#define ITD_SNAP_FAIL(sp, cls, ...)                                       \
        do {                                                              \
                (sp)->err = (cls);                                        \
                if (errstr && errstr_size)                                \
                        snprintf(errstr, errstr_size, __VA_ARGS__);       \
                goto fail;                                                \
        } while (0)

/* Writes the payload of obj to s (a counting pass or the real one). */
typedef void itd_snap_payload_fn(itd_snap_t *s, const void *obj);

/*
 * Writes a whole snapshot of kind k to out: the header with k->n_values
 * values, then payload(obj). ITD_ERR_IO with "writing <name> snapshot
 * failed at byte N: why" when out refuses.
 */
itd_err_t itd_snap_save(FILE *out, const itd_snap_kind_t *k,
                        const uint64_t *values, itd_snap_payload_fn *payload,
                        const void *obj, char *errstr, size_t errstr_size);

/*
 * Reads and verifies the header of a kind k snapshot from s (a fresh
 * reader at the snapshot's start): magic, version and header size, header
 * checksum, byte order, in that order, so a foreign file is named as such
 * before anything else. Fills values (k->n_values, or k->older->n_values
 * when the snapshot is of that version: s->version says which), and
 * s->kind, s->payload_bytes and s->payload_hash. Returns 0, or -1 with s->err and errstr
 * (ITD_ERR_CORRUPT: "corrupt <name> snapshot: ...", "truncated ...";
 * ITD_ERR_INCOMPATIBLE: "incompatible <name> snapshot: ..."; ITD_ERR_IO).
 */
int itd_snap_header_read(itd_snap_t *s, const itd_snap_kind_t *k,
                         uint64_t *values, char *errstr,
                         size_t errstr_size);

/*
 * Reads the payload after the header: the n parts in order, hashed, then
 * compares the hash with the header's. Returns 0, or -1 with s->err and
 * errstr: "truncated <name> snapshot: input ended at byte N, inside <what>
 * ..." (ITD_ERR_CORRUPT), an I/O error (ITD_ERR_IO) or "corrupt <name>
 * snapshot: payload checksum mismatch ..." (ITD_ERR_CORRUPT).
 */
int itd_snap_payload_read(itd_snap_t *s, const itd_snap_part_t *parts,
                          size_t n, char *errstr, size_t errstr_size);

#endif
