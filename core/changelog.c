/*
 * changelog.c - partition snapshots as changelog records, and the restore
 * (changelog.h).
 *
 * Record layout (little-endian): header (72 bytes): magic "ITDCLOG1", u32
 * version, i32 partition, u64 seq, i64 next_offset, i64 last_ts_ms (the
 * partition's newest event time, kept beside the snapshot as checkpoints
 * do), u64 total bytes of the snapshot, u32 part, u32 parts, u32 CRC32C of
 * the whole snapshot, u32 CRC32C of this part, u64 where this part starts
 * in the snapshot; then the part's bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/bytes.h"
#include "intentd/changelog.h"
#include "intentd/crc32c.h"
#include "intentd/mem.h"
#include "intentd/snapshot.h"

#define MAGIC "ITDCLOG1"
#define VERSION 1u
#define HDR 72

void itd_changelog_key(int32_t partition, uint32_t part, char *buf,
                       size_t cap) {
        snprintf(buf, cap, "%d/%u", (int)partition, (unsigned)part);
}

/* The first buffer of a scratch; it doubles while a snapshot does not
 * fit. */
#define SCRATCH_FIRST (1u << 20)

/*
 * pt's snapshot into sc->buf, its length to *len. Unbuffered, a write
 * past the end comes back short and leaves the position at the end: the
 * snapshot did not fit, so the buffer doubles and it is written again
 * (only while the scratch grows to the largest snapshot).
 */
static itd_err_t write_snapshot(const itd_partition_t *pt,
                                itd_changelog_scratch_t *sc, size_t *len,
                                char *errstr, size_t errstr_size) {
        int32_t id = itd_partition_id(pt);
        for (;;) {
                if (!sc->cap) {
                        sc->buf = itd_xmalloc(SCRATCH_FIRST);
                        sc->cap = SCRATCH_FIRST;
                }
                FILE *f = fmemopen(sc->buf, sc->cap, "wb");
                if (!f || setvbuf(f, NULL, _IONBF, 0) != 0) {
                        if (f)
                                fclose(f);
                        itd_errf(errstr, errstr_size,
                                 "changelog: partition %d: no memory for "
                                 "its snapshot",
                                 (int)id);
                        return ITD_ERR_IO;
                }
                itd_err_t err = itd_partition_write(pt, f, errstr,
                                                    errstr_size);
                long at = ftell(f);
                int closed = fclose(f);
                if (at < 0 || (size_t)at < sc->cap) {
                        if (!err && (closed != 0 || at < 0)) {
                                itd_errf(errstr, errstr_size,
                                         "changelog: partition %d: writing "
                                         "its snapshot failed",
                                         (int)id);
                                err = ITD_ERR_IO;
                        }
                        *len = at < 0 ? 0 : (size_t)at;
                        return err;
                }
                free(sc->buf);
                sc->cap *= 2;
                sc->buf = itd_xmalloc(sc->cap);
        }
}

void itd_changelog_scratch_free(itd_changelog_scratch_t *scratch) {
        free(scratch->buf);
        *scratch = (itd_changelog_scratch_t){0};
}

itd_err_t itd_changelog_encode(const itd_partition_t *pt, int64_t next_offset,
                               uint64_t seq, size_t max_bytes,
                               itd_changelog_emit_t emit, void *arg,
                               size_t *n_records, char *errstr,
                               size_t errstr_size) {
        itd_changelog_scratch_t scratch = {0};
        itd_err_t err = itd_changelog_encode_with(
            &scratch, pt, next_offset, seq, max_bytes, emit, arg, n_records,
            errstr, errstr_size);
        itd_changelog_scratch_free(&scratch);
        return err;
}

itd_err_t itd_changelog_encode_with(itd_changelog_scratch_t *scratch,
                                    const itd_partition_t *pt,
                                    int64_t next_offset, uint64_t seq,
                                    size_t max_bytes,
                                    itd_changelog_emit_t emit, void *arg,
                                    size_t *n_records, char *errstr,
                                    size_t errstr_size) {
        if (n_records)
                *n_records = 0;
        int32_t id = itd_partition_id(pt);
        if (max_bytes < ITD_CHANGELOG_MIN_BYTES) {
                itd_errf(errstr, errstr_size,
                         "changelog: record size %zu is below %d bytes",
                         max_bytes, ITD_CHANGELOG_MIN_BYTES);
                return ITD_ERR_ARG;
        }
        size_t len = 0;
        itd_err_t err = write_snapshot(pt, scratch, &len, errstr,
                                       errstr_size);
        if (err)
                return err;
        const char *snap = scratch->buf;
        itd_partition_info_t info;
        itd_partition_info(pt, &info);
        size_t room = max_bytes - HDR;
        uint32_t parts = (uint32_t)(len ? (len + room - 1) / room : 1);
        uint32_t crc_all = itd_crc32c(0, snap, len);
        uint8_t *rec = itd_xmalloc(max_bytes);
        for (uint32_t k = 0; k < parts && !err; k++) {
                size_t at = (size_t)k * room;
                size_t n = len - at < room ? len - at : room;
                memset(rec, 0, HDR);
                memcpy(rec, MAGIC, 8);
                itd_put_le32(rec + 8, VERSION);
                itd_put_le32(rec + 12, (uint32_t)id);
                itd_put_le64(rec + 16, seq);
                itd_put_le64(rec + 24, (uint64_t)next_offset);
                itd_put_le64(rec + 32, (uint64_t)info.last_ts_ms);
                itd_put_le64(rec + 40, (uint64_t)len);
                itd_put_le32(rec + 48, k);
                itd_put_le32(rec + 52, parts);
                itd_put_le32(rec + 56, crc_all);
                itd_put_le32(rec + 60, itd_crc32c(0, snap + at, n));
                itd_put_le64(rec + 64, (uint64_t)at);
                memcpy(rec + HDR, snap + at, n);
                err = emit(id, k, rec, HDR + n, arg);
                if (err)
                        itd_errf(errstr, errstr_size,
                                 "changelog: partition %d: record %u of %u "
                                 "not written: %s",
                                 (int)id, k, parts, itd_err_str(err));
                else if (n_records)
                        (*n_records)++;
        }
        free(rec);
        return err;
}

/* ---- restore ------------------------------------------------------------ */

typedef struct snap_s {
        uint64_t seq;
        int64_t next_offset, last_ts_ms;
        uint8_t *buf;
        size_t len;
        uint32_t parts, have, crc;
        uint8_t *got; /* (parts) */
} snap_t;

struct itd_changelog_restore_s {
        int32_t partition;
        snap_t building; /* buf NULL: none */
        snap_t done;     /* the newest complete one; buf NULL: none */
        int has_done;
        uint64_t max_seq;   /* highest sequence number of any valid part */
        uint32_t max_parts; /* most parts any snapshot was cut into */
};

static void snap_free(snap_t *s) {
        free(s->buf);
        free(s->got);
        memset(s, 0, sizeof(*s));
}

itd_changelog_restore_t *itd_changelog_restore_new(int32_t partition) {
        itd_changelog_restore_t *r = itd_xcalloc(1, sizeof(*r));
        r->partition = partition;
        return r;
}

void itd_changelog_restore_destroy(itd_changelog_restore_t *r) {
        if (!r)
                return;
        snap_free(&r->building);
        snap_free(&r->done);
        free(r);
}

int itd_changelog_restore_ready(const itd_changelog_restore_t *r) {
        return r->has_done;
}

void itd_changelog_restore_seen(const itd_changelog_restore_t *r,
                                uint64_t *max_seq, uint32_t *max_parts) {
        *max_seq = r->max_seq;
        *max_parts = r->max_parts;
}

itd_err_t itd_changelog_restore_add(itd_changelog_restore_t *r,
                                    const void *buf, size_t len,
                                    char *errstr, size_t errstr_size) {
        const uint8_t *h = buf;
        if (len < HDR || memcmp(h, MAGIC, 8) != 0) {
                itd_errf(errstr, errstr_size,
                         "changelog: not a changelog record (%zu bytes)",
                         len);
                return ITD_ERR_CORRUPT;
        }
        if (itd_get_le32(h + 8) != VERSION) {
                itd_errf(errstr, errstr_size,
                         "changelog: record version %u, this build reads %u",
                         itd_get_le32(h + 8), VERSION);
                return ITD_ERR_INCOMPATIBLE;
        }
        int32_t p = (int32_t)itd_get_le32(h + 12);
        uint64_t seq = itd_get_le64(h + 16), total = itd_get_le64(h + 40);
        uint32_t part = itd_get_le32(h + 48), parts = itd_get_le32(h + 52);
        size_t n = len - HDR;
        if (p != r->partition) {
                itd_errf(errstr, errstr_size,
                         "changelog: a record of partition %d among those "
                         "of partition %d",
                         (int)p, (int)r->partition);
                return ITD_ERR_CORRUPT;
        }
        if (itd_get_le32(h + 60) != itd_crc32c(0, h + HDR, n)) {
                itd_errf(errstr, errstr_size,
                         "changelog: partition %d snapshot %llu part %u: "
                         "checksum mismatch",
                         (int)p, (unsigned long long)seq, part);
                return ITD_ERR_CORRUPT;
        }
        uint64_t at = itd_get_le64(h + 64);
        if (parts == 0 || part >= parts || total > SIZE_MAX / 2 ||
            at > total || n > total - at) {
                itd_errf(errstr, errstr_size,
                         "changelog: partition %d snapshot %llu: part %u of "
                         "%u (%zu bytes at %llu) outside its %llu bytes",
                         (int)p, (unsigned long long)seq, part, parts, n,
                         (unsigned long long)at, (unsigned long long)total);
                return ITD_ERR_CORRUPT;
        }
        if (seq > r->max_seq)
                r->max_seq = seq;
        if (parts > r->max_parts)
                r->max_parts = parts;
        if (r->has_done && seq <= r->done.seq)
                return ITD_OK; /* older than what is complete */
        snap_t *b = &r->building;
        if (b->buf && seq < b->seq)
                return ITD_OK; /* a part of an older snapshot */
        if (!b->buf || seq > b->seq) {
                snap_free(b);
                b->seq = seq;
                b->len = (size_t)total;
                b->buf = itd_xmalloc(b->len ? b->len : 1);
                b->parts = parts;
                b->got = itd_xcalloc(parts, 1);
                b->crc = itd_get_le32(h + 56);
                b->next_offset = (int64_t)itd_get_le64(h + 24);
                b->last_ts_ms = (int64_t)itd_get_le64(h + 32);
        }
        if (parts != b->parts || total != b->len) {
                itd_errf(errstr, errstr_size,
                         "changelog: partition %d snapshot %llu: part %u "
                         "disagrees with the others on its size",
                         (int)p, (unsigned long long)seq, part);
                return ITD_ERR_CORRUPT;
        }
        if (!b->got[part]) {
                memcpy(b->buf + at, h + HDR, n);
                b->got[part] = 1;
                b->have++;
        }
        if (b->have < b->parts)
                return ITD_OK;
        if (itd_crc32c(0, b->buf, b->len) != b->crc) {
                itd_errf(errstr, errstr_size,
                         "changelog: partition %d snapshot %llu: checksum "
                         "of the whole does not match",
                         (int)p, (unsigned long long)seq);
                snap_free(b);
                return ITD_ERR_CORRUPT;
        }
        snap_free(&r->done);
        r->done = *b;
        memset(b, 0, sizeof(*b));
        r->has_done = 1;
        return ITD_OK;
}

itd_err_t itd_changelog_restore_take(itd_changelog_restore_t *r,
                                     const itd_partition_conf_t *conf,
                                     int64_t now_ms, itd_partition_t **out,
                                     int64_t *next_offset, char *errstr,
                                     size_t errstr_size) {
        *out = NULL;
        if (!r->has_done) {
                itd_errf(errstr, errstr_size,
                         "changelog: no complete snapshot of partition %d",
                         (int)r->partition);
                return ITD_ERR_NOT_FOUND;
        }
        FILE *f = fmemopen(r->done.buf, r->done.len ? r->done.len : 1, "rb");
        if (!f) {
                itd_errf(errstr, errstr_size,
                         "changelog: partition %d: cannot read its snapshot",
                         (int)r->partition);
                return ITD_ERR_IO;
        }
        itd_err_t err = itd_partition_read(f, r->partition, conf,
                                           r->done.last_ts_ms, now_ms, out,
                                           errstr, errstr_size);
        fclose(f);
        if (!err)
                *next_offset = r->done.next_offset;
        return err;
}

int itd_changelog_snapshot_wins(int held, int64_t held_offset,
                                int64_t snap_offset) {
        return !held || snap_offset > held_offset;
}
