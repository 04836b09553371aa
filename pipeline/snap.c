/*
 * snap.c - snapshot I/O shared by the state, labeler, trigger and risk
 * tables: counted, hashed reads and writes, the common header and the
 * payload read from a table of parts (snap_int.h).
 *
 * Each kind keeps its own payload and its own checks of the header values
 * (layout, configuration, sizes); what is the same for every kind, and so
 * must read the same in every message, lives here.
 *
 * @thread any; no shared state.
 */
#include "snap_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "intentd/mem.h"

void itd_snap_write(itd_snap_t *s, const void *p, size_t n) {
        if (s->failed || n == 0)
                return;
        if (s->h)
                XXH64_update(s->h, p, n);
        if (s->f && fwrite(p, 1, n, s->f) != n) {
                s->failed = 1;
                s->saved_errno = errno;
                return;
        }
        s->off += n;
}

/* Reads n bytes (hashing them when s->h); returns 0, or -1 (sticky). */
static int snap_read(itd_snap_t *s, void *p, size_t n) {
        if (s->failed)
                return -1;
        size_t got = n ? fread(p, 1, n, s->f) : 0;
        if (s->h)
                XXH64_update(s->h, p, got);
        s->off += got;
        if (got != n) {
                s->failed = 1;
                s->eof = feof(s->f) != 0;
                s->saved_errno = errno;
                return -1;
        }
        return 0;
}

static void hash_begin(itd_snap_t *s) {
        s->h = XXH64_createState();
        if (!s->h) {
                fprintf(stderr, "<2>intentd: out of memory allocating a "
                        "hash state\n");
                abort();
        }
        XXH64_reset(s->h, 0);
}

static uint64_t hash_end(itd_snap_t *s) {
        uint64_t d = XXH64_digest(s->h);
        XXH64_freeState(s->h);
        s->h = NULL;
        return d;
}

void itd_snap_put(unsigned char *buf, size_t *pos, uint64_t v) {
        memcpy(buf + *pos, &v, sizeof(v));
        *pos += sizeof(v);
}

uint64_t itd_snap_get(const unsigned char *buf, size_t *pos) {
        uint64_t v;
        memcpy(&v, buf + *pos, sizeof(v));
        *pos += sizeof(v);
        return v;
}

/* "truncated ... snapshot: input ended at byte N (...)" (s->err
 * ITD_ERR_CORRUPT) or an I/O error (ITD_ERR_IO), for a failed read of what
 * (e.g. "the users") that began at byte start. */
static void read_error(itd_snap_t *s, const char *kind, const char *what,
                       uint64_t start, uint64_t want, char *errstr,
                       size_t errstr_size) {
        s->err = s->eof ? ITD_ERR_CORRUPT : ITD_ERR_IO;
        if (!errstr || !errstr_size)
                return;
        if (s->eof)
                snprintf(errstr, errstr_size,
                         "truncated %s snapshot: input ended at byte %" PRIu64
                         ", inside %s (%" PRIu64 " bytes from byte %" PRIu64
                         ")", kind, s->off, what, want, start);
        else
                snprintf(errstr, errstr_size,
                         "reading %s snapshot failed at byte %" PRIu64
                         " (%s): %s", kind, s->off, what,
                         strerror(s->saved_errno));
}

itd_err_t itd_snap_save(FILE *out, const itd_snap_kind_t *k,
                        const uint64_t *values, itd_snap_payload_fn *payload,
                        const void *obj, char *errstr, size_t errstr_size) {
        /* pass 1 measures and hashes, so the header can lead */
        itd_snap_t s = {0};
        hash_begin(&s);
        payload(&s, obj);
        uint64_t payload_bytes = s.off;
        uint64_t payload_hash = hash_end(&s);

        /* built whole and written in one piece, so a refused write is
         * reported at byte 0 whatever the kind */
        size_t hdr_bytes = ITD_SNAP_HDR_BYTES(k->n_values);
        unsigned char *hdr = itd_xmalloc(hdr_bytes);
        size_t pos = 8;
        memcpy(hdr, k->magic, 8);
        itd_snap_put(hdr, &pos, (uint64_t)k->version |
                                    (uint64_t)hdr_bytes << 32);
        itd_snap_put(hdr, &pos, ITD_SNAP_ENDIAN);
        for (size_t i = 0; i < k->n_values; i++)
                itd_snap_put(hdr, &pos, values[i]);
        itd_snap_put(hdr, &pos, payload_bytes);
        itd_snap_put(hdr, &pos, payload_hash);
        itd_snap_put(hdr, &pos, XXH64(hdr, pos, 0));

        itd_snap_t w = {.f = out};
        itd_snap_write(&w, hdr, hdr_bytes);
        free(hdr);
        payload(&w, obj);
        if (w.failed) {
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size,
                                 "writing %s snapshot failed at byte %"
                                 PRIu64 ": %s", k->name, w.off,
                                 strerror(w.saved_errno));
                return ITD_ERR_IO;
        }
        return ITD_OK;
}

int itd_snap_header_read(itd_snap_t *s, const itd_snap_kind_t *k,
                         uint64_t *values, char *errstr,
                         size_t errstr_size) {
        const char *name = k->name;
        int hdr_bytes = (int)ITD_SNAP_HDR_BYTES(k->n_values);
        unsigned char head[16];
        uint64_t vw, endian, stored, computed;
        /* hashed as it is read: the header's checksum covers all of it
         * but the checksum itself */
        hash_begin(s);
        /* the fixed part first, so a foreign file is named as such */
        if (snap_read(s, head, sizeof(head)) != 0) {
                read_error(s, name, "the header", 0, 16, errstr,
                           errstr_size);
                goto fail;
        }
        if (memcmp(head, k->magic, 8) != 0)
                ITD_SNAP_FAIL(s, ITD_ERR_CORRUPT,
                              "corrupt %s snapshot: bad magic at byte 0 (not "
                              "a %s snapshot)", name, name);
        memcpy(&vw, head + 8, sizeof(vw));
        const itd_snap_kind_t *o = k->older;
        while (o && !((uint32_t)vw == o->version &&
                      vw >> 32 == ITD_SNAP_HDR_BYTES(o->n_values)))
                o = o->older;
        if (o)
                k = o;
        else if ((uint32_t)vw != k->version ||
                 vw >> 32 != (uint64_t)hdr_bytes)
                ITD_SNAP_FAIL(s, ITD_ERR_INCOMPATIBLE,
                              "incompatible %s snapshot: format version %"
                              PRIu32 " with a %" PRIu32 "-byte header at "
                              "byte 8; this build reads version %d (%d "
                              "bytes)", name, (uint32_t)vw,
                              (uint32_t)(vw >> 32), (int)k->version,
                              hdr_bytes);
        s->kind = k;
        s->version = k->version;
        hdr_bytes = (int)ITD_SNAP_HDR_BYTES(k->n_values);
        snap_read(s, &endian, sizeof(endian));
        snap_read(s, values, k->n_values * sizeof(*values));
        snap_read(s, &s->payload_bytes, sizeof(s->payload_bytes));
        snap_read(s, &s->payload_hash, sizeof(s->payload_hash));
        computed = hash_end(s);
        if (snap_read(s, &stored, sizeof(stored)) != 0) {
                read_error(s, name, "the header", 0, (uint64_t)hdr_bytes,
                           errstr, errstr_size);
                goto fail;
        }
        if (stored != computed)
                ITD_SNAP_FAIL(s, ITD_ERR_CORRUPT,
                              "corrupt %s snapshot: header checksum mismatch "
                              "over bytes 0..%d (stored %016" PRIx64
                              ", computed %016" PRIx64 ")", name,
                              hdr_bytes - 9, stored, computed);
        if (endian != ITD_SNAP_ENDIAN)
                ITD_SNAP_FAIL(s, ITD_ERR_INCOMPATIBLE,
                              "incompatible %s snapshot: written on a host "
                              "of another byte order", name);
        return 0;
fail:
        if (s->h)
                hash_end(s);
        return -1;
}

void itd_snap_write_parts(itd_snap_t *s, const itd_snap_part_t *parts,
                          size_t n) {
        for (size_t i = 0; i < n; i++)
                itd_snap_write(s, parts[i].p, parts[i].n);
}

/* Reads a part of records through a buffer of whole records. */
static int read_records(itd_snap_t *s, const itd_snap_part_t *pt) {
        enum { CHUNK = 1 << 16 };
        size_t per = pt->rec <= CHUNK ? CHUNK / pt->rec : 1;
        unsigned char *buf = itd_xmalloc(per * pt->rec);
        size_t n = pt->n / pt->rec, i = 0;
        int rc = 0;
        while (i < n && rc == 0) {
                size_t k = n - i < per ? n - i : per;
                rc = snap_read(s, buf, k * pt->rec);
                for (size_t j = 0; rc == 0 && j < k; j++)
                        pt->each(pt->ctx, buf + j * pt->rec, i + j);
                i += k;
        }
        free(buf);
        return rc;
}

int itd_snap_payload_read(itd_snap_t *s, const itd_snap_part_t *parts,
                          size_t n, char *errstr, size_t errstr_size) {
        const itd_snap_kind_t *k = s->kind;
        uint64_t begin = s->off;
        hash_begin(s);
        for (size_t i = 0; i < n; i++) {
                const itd_snap_part_t *pt = &parts[i];
                uint64_t start = s->off;
                if ((pt->each ? read_records(s, pt)
                              : snap_read(s, pt->p, pt->n)) != 0) {
                        hash_end(s);
                        read_error(s, k->name, pt->what, start, pt->n,
                                   errstr, errstr_size);
                        return -1;
                }
        }
        uint64_t computed = hash_end(s);
        if (computed == s->payload_hash)
                return 0;
        s->err = ITD_ERR_CORRUPT;
        if (errstr && errstr_size)
                snprintf(errstr, errstr_size,
                         "corrupt %s snapshot: payload checksum mismatch "
                         "over bytes %" PRIu64 "..%" PRIu64 " (stored %016"
                         PRIx64 ", computed %016" PRIx64 ")", k->name,
                         begin, s->off - 1, s->payload_hash, computed);
        return -1;
}
