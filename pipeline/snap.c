/*
 * snap.c - snapshot I/O shared by the state, labeler, trigger and risk
 * tables: counted, checksummed reads and writes, the header, and the
 * payload read from a table of parts, one section each (snap_int.h; the
 * framing is intentd/frame.h's, the model's too).
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

#include "intentd/crc32c.h"
#include "intentd/mem.h"

/* legacy: magic, version word, byte order, values, payload length and
 * hash, header hash; one framing: prefix, values, payload length, CRC
 * and a zero word */
size_t itd_snap_header_bytes(const itd_snap_kind_t *k) {
        return k->legacy ? 8 + 8 + 8 + 8 * k->n_values + 16 + 8
                         : ITD_FRAME_PREFIX_BYTES + 8 * k->n_values + 8 + 8;
}

/* A writer's bug (a section's bytes do not add up), not an I/O error:
 * refused all the same, so the file is never written wrong. */
static void section_check(itd_snap_t *s) {
        if (s->f && !s->failed && s->sec_end && s->off != s->sec_end) {
                s->failed = 1;
                s->saved_errno = EPROTO;
        }
}

void itd_snap_write(itd_snap_t *s, const void *p, size_t n) {
        if (s->failed || n == 0)
                return;
        if (s->f) {
                if (fwrite(p, 1, n, s->f) != n) {
                        s->failed = 1;
                        s->saved_errno = errno;
                        return;
                }
                s->crc = itd_crc32c(s->crc, p, n);
        }
        s->off += n;
}

void itd_snap_section(itd_snap_t *s, const char *name, uint32_t dtype,
                      uint64_t nbytes) {
        if (!s->f) /* counting: the payload's bytes only */
                return;
        section_check(s);
        uint8_t h[ITD_FRAME_SECTION_BYTES];
        itd_frame_section_put(h, name, dtype, 0, nbytes);
        itd_snap_write(s, h, sizeof h);
        s->sec_end = s->off + nbytes;
}

/* Reads n bytes (into the CRC, or the legacy hash); returns 0, or -1
 * (sticky). */
static int snap_read(itd_snap_t *s, void *p, size_t n) {
        if (s->failed)
                return -1;
        size_t got = n ? fread(p, 1, n, s->f) : 0;
        if (s->h)
                XXH64_update(s->h, p, got);
        if (!s->legacy)
                s->crc = itd_crc32c(s->crc, p, got);
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
        itd_put_le64(buf + *pos, v);
        *pos += sizeof(v);
}

uint64_t itd_snap_get(const unsigned char *buf, size_t *pos) {
        uint64_t v = itd_get_le64(buf + *pos);
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

static int big_endian_refused(const char *name, char *errstr,
                              size_t errstr_size) {
        if (itd_frame_host_is_le())
                return 0;
        itd_errf(errstr, errstr_size,
                 "incompatible %s snapshot: its records are little-endian "
                 "and this host is big-endian", name);
        return 1;
}

itd_err_t itd_snap_save(FILE *out, const itd_snap_kind_t *k,
                        const uint64_t *values, itd_snap_payload_fn *payload,
                        const void *obj, char *errstr, size_t errstr_size) {
        if (big_endian_refused(k->name, errstr, errstr_size))
                return ITD_ERR_INCOMPATIBLE;
        /* pass 1 counts, so the header can lead */
        itd_snap_t s = {0};
        payload(&s, obj);
        uint64_t payload_bytes = s.off;

        /* built whole and written in one piece, so a refused write is
         * reported at byte 0 whatever the kind */
        size_t hdr_bytes = itd_snap_header_bytes(k);
        uint8_t *hdr = itd_xmalloc(hdr_bytes);
        itd_frame_prefix_put(hdr, k->version, k->kind, (uint32_t)hdr_bytes);
        size_t pos = ITD_FRAME_PREFIX_BYTES;
        for (size_t i = 0; i < k->n_values; i++)
                itd_snap_put(hdr, &pos, values[i]);
        itd_snap_put(hdr, &pos, payload_bytes);
        itd_put_le32(hdr + pos, itd_crc32c(0, hdr, pos));
        itd_put_le32(hdr + pos + 4, 0);

        itd_snap_t w = {.f = out};
        itd_snap_write(&w, hdr, hdr_bytes);
        free(hdr);
        payload(&w, obj);
        section_check(&w);
        uint8_t end[ITD_FRAME_SECTION_BYTES + ITD_FRAME_CRC_BYTES] = {0};
        itd_snap_write(&w, end, ITD_FRAME_SECTION_BYTES);
        itd_put_le32(end + ITD_FRAME_SECTION_BYTES, w.crc);
        itd_snap_write(&w, end + ITD_FRAME_SECTION_BYTES,
                       ITD_FRAME_CRC_BYTES);
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

/* The rest of a legacy header after its first 16 bytes (head); k is the
 * version's kind. */
static int legacy_header_read(itd_snap_t *s, const itd_snap_kind_t *k,
                              uint64_t *values, char *errstr,
                              size_t errstr_size) {
        const char *name = k->name;
        int hdr_bytes = (int)itd_snap_header_bytes(k);
        uint64_t endian, stored, computed;
        s->legacy = 1;
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
        return -1;
}

/* The rest of a one-framing header after its prefix (head); k is the
 * version's kind. */
static int frame_header_read(itd_snap_t *s, const itd_snap_kind_t *k,
                             const uint8_t *head, uint64_t *values,
                             char *errstr, size_t errstr_size) {
        const char *name = k->name;
        size_t hdr_bytes = itd_snap_header_bytes(k);
        uint8_t *h = itd_xmalloc(hdr_bytes);
        memcpy(h, head, ITD_FRAME_PREFIX_BYTES);
        if (snap_read(s, h + ITD_FRAME_PREFIX_BYTES,
                      hdr_bytes - ITD_FRAME_PREFIX_BYTES) != 0) {
                read_error(s, name, "the header", 0, hdr_bytes, errstr,
                           errstr_size);
                goto fail;
        }
        size_t at = hdr_bytes - 8;
        uint32_t stored = itd_get_le32(h + at);
        uint32_t computed = itd_crc32c(0, h, at);
        if (stored != computed || itd_get_le32(h + at + 4) != 0)
                ITD_SNAP_FAIL(s, ITD_ERR_CORRUPT,
                              "corrupt %s snapshot: header checksum mismatch "
                              "over bytes 0..%zu (stored %08" PRIx32
                              ", computed %08" PRIx32 ")", name, at - 1,
                              stored, computed);
        if (itd_get_le32(h + 20) != 0)
                ITD_SNAP_FAIL(s, ITD_ERR_INCOMPATIBLE,
                              "incompatible %s snapshot: flags %08" PRIx32
                              " at byte 20, this build knows none", name,
                              itd_get_le32(h + 20));
        for (size_t i = 0; i < k->n_values; i++)
                values[i] = itd_get_le64(h + ITD_FRAME_PREFIX_BYTES + 8 * i);
        s->payload_bytes = itd_get_le64(h + at - 8);
        free(h);
        return 0;
fail:
        free(h);
        return -1;
}

int itd_snap_header_read(itd_snap_t *s, const itd_snap_kind_t *k,
                         uint64_t *values, char *errstr,
                         size_t errstr_size) {
        const char *name = k->name;
        uint8_t head[ITD_FRAME_PREFIX_BYTES];
        if (big_endian_refused(name, errstr, errstr_size)) {
                s->err = ITD_ERR_INCOMPATIBLE;
                return -1;
        }
        /* a legacy header's checksum covers it from byte 0 */
        hash_begin(s);
        /* the fixed part first, so a foreign file is named as such */
        int framed = 0;
        if (snap_read(s, head, 16) != 0 ||
            ((framed = memcmp(head, ITD_FRAME_MAGIC, 8) == 0) &&
             snap_read(s, head + 16, ITD_FRAME_PREFIX_BYTES - 16) != 0)) {
                read_error(s, name, "the header", 0,
                           framed ? ITD_FRAME_PREFIX_BYTES : 16, errstr,
                           errstr_size);
                goto fail;
        }
        uint32_t version, hdr_bytes;
        if (framed) {
                hash_end(s);
                version = itd_get_le32(head + 8);
                hdr_bytes = itd_get_le32(head + 16);
                if (itd_get_le32(head + 12) != k->kind)
                        ITD_SNAP_FAIL(s, ITD_ERR_CORRUPT,
                                      "corrupt %s snapshot: kind %" PRIu32
                                      " at byte 12 (not a %s snapshot)",
                                      name, itd_get_le32(head + 12), name);
        } else {
                uint64_t vw;
                memcpy(&vw, head + 8, sizeof(vw));
                version = (uint32_t)vw;
                hdr_bytes = (uint32_t)(vw >> 32);
        }
        const itd_snap_kind_t *o = k;
        for (; o; o = o->older) {
                int same_framing =
                    framed ? !o->legacy
                           : o->legacy && memcmp(head, o->legacy, 8) == 0;
                if (same_framing && version == o->version &&
                    hdr_bytes == itd_snap_header_bytes(o))
                        break;
        }
        if (!o) {
                int known = framed;
                for (const itd_snap_kind_t *l = k; l && !known; l = l->older)
                        known = l->legacy && !memcmp(head, l->legacy, 8);
                if (!known)
                        ITD_SNAP_FAIL(s, ITD_ERR_CORRUPT,
                                      "corrupt %s snapshot: bad magic at "
                                      "byte 0 (not a %s snapshot)", name,
                                      name);
                ITD_SNAP_FAIL(s, ITD_ERR_INCOMPATIBLE,
                              "incompatible %s snapshot: format version %"
                              PRIu32 " with a %" PRIu32 "-byte header at "
                              "byte 8; this build reads version %d (%d "
                              "bytes)", name, version, hdr_bytes,
                              (int)k->version,
                              (int)itd_snap_header_bytes(k));
        }
        s->kind = o;
        s->version = o->version;
        if ((framed ? frame_header_read(s, o, head, values, errstr,
                                        errstr_size)
                    : legacy_header_read(s, o, values, errstr,
                                         errstr_size)) != 0)
                goto fail;
        return 0;
fail:
        if (s->h)
                hash_end(s);
        return -1;
}

void itd_snap_write_parts(itd_snap_t *s, const itd_snap_part_t *parts,
                          size_t n) {
        for (size_t i = 0; i < n; i++) {
                itd_snap_section(s, parts[i].sec, parts[i].dtype, parts[i].n);
                itd_snap_write(s, parts[i].p, parts[i].n);
        }
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

static int read_part(itd_snap_t *s, const itd_snap_part_t *pt) {
        return pt->each ? read_records(s, pt) : snap_read(s, pt->p, pt->n);
}

/* The legacy payload: the parts back to back, then its XXH64. */
static int legacy_payload_read(itd_snap_t *s, const itd_snap_part_t *parts,
                               size_t n, char *errstr, size_t errstr_size) {
        const itd_snap_kind_t *k = s->kind;
        uint64_t begin = s->off;
        hash_begin(s);
        for (size_t i = 0; i < n; i++) {
                uint64_t start = s->off;
                if (read_part(s, &parts[i]) != 0) {
                        hash_end(s);
                        read_error(s, k->name, parts[i].what, start,
                                   parts[i].n, errstr, errstr_size);
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

int itd_snap_payload_read(itd_snap_t *s, const itd_snap_part_t *parts,
                          size_t n, char *errstr, size_t errstr_size) {
        if (s->legacy)
                return legacy_payload_read(s, parts, n, errstr, errstr_size);
        const char *name = s->kind->name;
        uint8_t h[ITD_FRAME_SECTION_BYTES + ITD_FRAME_CRC_BYTES];
        char what[96];
        itd_frame_section_t sec;
        for (size_t i = 0; i < n; i++) {
                const itd_snap_part_t *pt = &parts[i];
                uint64_t start = s->off;
                snprintf(what, sizeof what, "the section header of %s",
                         pt->what);
                if (snap_read(s, h, ITD_FRAME_SECTION_BYTES) != 0) {
                        read_error(s, name, what, start,
                                   ITD_FRAME_SECTION_BYTES, errstr,
                                   errstr_size);
                        return -1;
                }
                itd_frame_section_get(h, &sec);
                if (memcmp(sec.name, pt->sec, strlen(pt->sec) + 1) != 0 ||
                    sec.dtype != pt->dtype || sec.nbytes != pt->n)
                        ITD_SNAP_FAIL(s, ITD_ERR_CORRUPT,
                                      "corrupt %s snapshot: the section at "
                                      "byte %" PRIu64 " is '%.15s' (type %"
                                      PRIu32 ", %" PRIu64 " bytes) where %s "
                                      "('%s', type %" PRIu32 ", %zu bytes) "
                                      "belongs", name, start, sec.name,
                                      sec.dtype, sec.nbytes, pt->what,
                                      pt->sec, pt->dtype, pt->n);
                start = s->off;
                if (read_part(s, pt) != 0) {
                        read_error(s, name, pt->what, start, pt->n, errstr,
                                   errstr_size);
                        return -1;
                }
        }
        uint64_t start = s->off;
        if (snap_read(s, h, ITD_FRAME_SECTION_BYTES) != 0) {
                read_error(s, name, "the end marker", start,
                           ITD_FRAME_SECTION_BYTES, errstr, errstr_size);
                return -1;
        }
        for (size_t i = 0; i < ITD_FRAME_SECTION_BYTES; i++)
                if (h[i])
                        ITD_SNAP_FAIL(s, ITD_ERR_CORRUPT,
                                      "corrupt %s snapshot: no end marker "
                                      "at byte %" PRIu64 " (a section this "
                                      "version does not have)", name,
                                      start);
        uint32_t computed = s->crc;
        start = s->off;
        if (snap_read(s, h, ITD_FRAME_CRC_BYTES) != 0) {
                read_error(s, name, "the checksum", start,
                           ITD_FRAME_CRC_BYTES, errstr, errstr_size);
                return -1;
        }
        uint32_t stored = itd_get_le32(h);
        if (stored == computed)
                return 0;
        ITD_SNAP_FAIL(s, ITD_ERR_CORRUPT,
                      "corrupt %s snapshot: checksum mismatch over bytes "
                      "0..%" PRIu64 " (stored %08" PRIx32 ", computed %08"
                      PRIx32 ")", name, start - 1, stored, computed);
fail:
        return -1;
}
