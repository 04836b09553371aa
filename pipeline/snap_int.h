/*
 * snap_int.h - snapshot I/O shared by state_snap.c, labeler_snap.c and
 * trigger.c.
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
        uint32_t version;  /* format version itd_snap_header_read found */
        itd_err_t err;     /* why a read failed: ITD_ERR_CORRUPT (damaged
                            * or truncated), ITD_ERR_INCOMPATIBLE (another
                            * version, build or configuration), ITD_ERR_IO */
} itd_snap_t;

void itd_snap_write(itd_snap_t *s, const void *p, size_t n);
/* Reads n bytes (hashing them when s->h); returns 0, or -1 (sticky). */
int itd_snap_read(itd_snap_t *s, void *p, size_t n);
void itd_snap_hash_begin(itd_snap_t *s);
uint64_t itd_snap_hash_end(itd_snap_t *s);
/* Little helpers for fixed-size records, native byte order. */
void itd_snap_put(unsigned char *buf, size_t *pos, uint64_t v);
uint64_t itd_snap_get(const unsigned char *buf, size_t *pos);
/* "truncated ... snapshot: input ended at byte N (...)" (s->err
 * ITD_ERR_CORRUPT) or an I/O error (ITD_ERR_IO), for a failed read of what
 * (e.g. "the users") that began at byte start. */
void itd_snap_read_error(itd_snap_t *s, const char *kind,
                         const char *what, uint64_t start, uint64_t want,
                         char *errstr, size_t errstr_size);

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
 * when the snapshot is of that version: s->version says which), the
 * payload's length and hash. Returns 0, or -1 with s->err and errstr
 * (ITD_ERR_CORRUPT: "corrupt <name> snapshot: ...", "truncated ...";
 * ITD_ERR_INCOMPATIBLE: "incompatible <name> snapshot: ..."; ITD_ERR_IO).
 */
int itd_snap_header_read(itd_snap_t *s, const itd_snap_kind_t *k,
                         uint64_t *values, uint64_t *payload_bytes,
                         uint64_t *payload_hash, char *errstr,
                         size_t errstr_size);

/*
 * Ends the payload hash that the caller began with itd_snap_hash_begin
 * right after the header, and compares it with the stored one. Returns 0,
 * or -1 with s->err ITD_ERR_CORRUPT and "corrupt <name> snapshot: payload
 * checksum mismatch ...".
 */
int itd_snap_payload_check(itd_snap_t *s, const itd_snap_kind_t *k,
                           uint64_t stored, char *errstr,
                           size_t errstr_size);

#endif
