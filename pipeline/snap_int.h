/*
 * snap_int.h - snapshot I/O shared by state_snap.c, labeler_snap.c,
 * trigger.c and risk.c.
 *
 * A snapshot has the one framing of every snapshot (intentd/frame.h):
 * the 24-byte prefix, then the kind's header: its n_values u64 words
 * (layout, configuration, sizes), the u64 count of the sections' bytes, a
 * u32 CRC32C of the header before it (readers size arrays from these
 * words before the end's CRC is reached) and a u32 0. Then one section a
 * part of the payload, the end marker and the CRC32C of every byte
 * before it. Writers run the payload twice: once to count it (f == NULL),
 * once to write it. Records are the little-endian host's; a big-endian
 * host refuses to write or read them.
 *
 * Versions from before the one framing (a kind's `older` ones with a
 * legacy magic) are still read: their own 8-byte magic, version | header
 * bytes << 32, a byte-order word, the values, the payload's length and
 * XXH64, the XXH64 of the header before it, then the payload, all in the
 * host's byte order.
 */
#ifndef INTENTD_SNAP_INT_H
#define INTENTD_SNAP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "intentd/err.h"
#include "intentd/frame.h"

/* The legacy framing's byte-order word. */
#define ITD_SNAP_ENDIAN UINT64_C(0x0102030405060708)

typedef struct itd_snap_kind_s {
        const char *name;  /* "state": in every message */
        uint32_t kind;     /* ITD_FRAME_STATE, ...: the prefix's kind word */
        uint32_t version;
        size_t n_values;   /* header words after the prefix */
        /* NULL: the one framing. Else this version predates it, and this
         * is its 8-byte magic. */
        const char *legacy;
        /* The previous format version, still read (its own n_values), or
         * NULL; its own `older` may name one more. Writers always write
         * this version, which is of the one framing. */
        const struct itd_snap_kind_s *older;
} itd_snap_kind_t;

typedef struct itd_snap_s {
        FILE *f;           /* NULL: count only */
        void *h;           /* XXH64_state_t * while reading a legacy
                            * snapshot's header or payload, or NULL */
        uint32_t crc;      /* CRC32C of every byte so far (one framing) */
        int legacy;        /* reading a version before the one framing */
        uint64_t off;      /* bytes so far, from the snapshot's start */
        uint64_t sec_end;  /* writing: where the open section ends */
        int failed;        /* sticky: a read or write came up short */
        int eof;           /* the short read hit end of input */
        int saved_errno;
        /* what itd_snap_header_read found: */
        const itd_snap_kind_t *kind; /* the version's kind */
        uint32_t version;            /* kind->version */
        uint64_t payload_bytes;      /* the sections' bytes (legacy: the
                                      * payload's length ... */
        uint64_t payload_hash;       /* ... and XXH64) */
        itd_err_t err;     /* why a read failed: ITD_ERR_CORRUPT (damaged
                            * or truncated), ITD_ERR_INCOMPATIBLE (another
                            * version, build or configuration), ITD_ERR_IO */
} itd_snap_t;

/* Header bytes of version k (prefix included). */
size_t itd_snap_header_bytes(const itd_snap_kind_t *k);

typedef struct itd_snap_part_s {
        void *p;          /* n bytes read into (or written from); NULL with
                           * each */
        size_t n;         /* bytes */
        const char *what; /* "the users": names it in messages */
        const char *sec;  /* "users": its section's name, 1..15 bytes */
        uint32_t dtype;   /* its elements: ITD_FRAME_BYTES, _U32, ... */
        size_t rec;       /* with each: bytes per record (n a multiple) */
        void (*each)(void *ctx, const unsigned char *rec, size_t i);
        void *ctx;
} itd_snap_part_t;

/* A part of plain bytes:
 * ITD_SNAP_PART(st->users, bytes, "the users", "users", ITD_FRAME_BYTES). */
#define ITD_SNAP_PART(ptr, bytes, what_, sec_, dtype_)                    \
        {                                                                 \
                .p = (ptr), .n = (bytes), .what = (what_), .sec = (sec_), \
                .dtype = (dtype_)                                         \
        }

/* Opens a section of nbytes bytes (name 1..15 bytes, dtype ITD_FRAME_*):
 * the writes that follow must add up to nbytes. Writers that write their
 * own loops call it before each part, in the order of the reader's
 * table. */
void itd_snap_section(itd_snap_t *s, const char *name, uint32_t dtype,
                      uint64_t nbytes);
void itd_snap_write(itd_snap_t *s, const void *p, size_t n);
/* Writes the n parts (parts without each), each as its section. */
void itd_snap_write_parts(itd_snap_t *s, const itd_snap_part_t *parts,
                          size_t n);
/* Little helpers for fixed-size records, little-endian. */
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
 * values, then payload(obj), the end marker and the CRC. ITD_ERR_IO with
 * "writing <name> snapshot failed at byte N: why" when out refuses;
 * ITD_ERR_INCOMPATIBLE on a big-endian host.
 */
itd_err_t itd_snap_save(FILE *out, const itd_snap_kind_t *k,
                        const uint64_t *values, itd_snap_payload_fn *payload,
                        const void *obj, char *errstr, size_t errstr_size);

/*
 * Reads and verifies the header of a kind k snapshot from s (a fresh
 * reader at the snapshot's start): magic and kind, version and header
 * size, header checksum (legacy: then the byte order), in that order, so
 * a foreign file is named as such before anything else. Fills values (k->n_values, or k->older->n_values
 * when the snapshot is of that version: s->version says which), and
 * s->kind, s->payload_bytes and s->payload_hash. Returns 0, or -1 with s->err and errstr
 * (ITD_ERR_CORRUPT: "corrupt <name> snapshot: ...", "truncated ...";
 * ITD_ERR_INCOMPATIBLE: "incompatible <name> snapshot: ..."; ITD_ERR_IO).
 */
int itd_snap_header_read(itd_snap_t *s, const itd_snap_kind_t *k,
                         uint64_t *values, char *errstr,
                         size_t errstr_size);

/*
 * Reads the rest after the header: the n parts in order, each its
 * section (name, type and size as the table says), the end marker, then
 * compares the CRC (legacy: the payload's hash). Returns 0, or -1 with
 * s->err and errstr: "truncated <name> snapshot: input ended at byte N,
 * inside <what> ..." (ITD_ERR_CORRUPT), an I/O error (ITD_ERR_IO) or
 * "corrupt <name> snapshot: ..." (ITD_ERR_CORRUPT: another section than
 * the table's, no end marker, "checksum mismatch").
 */
int itd_snap_payload_read(itd_snap_t *s, const itd_snap_part_t *parts,
                          size_t n, char *errstr, size_t errstr_size);

#endif
