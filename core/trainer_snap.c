/*
 * trainer_snap.c - the trainer's snapshot (intentd/trainer.h): the one
 * framing, version 4, and the versions before it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "intentd/bytes.h"
#include "intentd/frame.h"
#include "intentd/mem.h"
#include "trainer_int.h"

/* ------------------------------------------------------------ snapshot */

/*
 * Version 4: the one framing (intentd/frame.h), kind ITD_FRAME_TRAINER,
 * little-endian, CRC32C. The kind's header: u64 dim, n_ids, n (rows of
 * the mini-batch), hn (held positives), i64 clock_ms (the clock of a
 * partition first seen: INT64_MIN, none, unless carried over from an
 * older snapshot), then the counters u64 events, predictions, late,
 * examples_pos, examples_neg, then u64 np (partitions with a clock).
 * Sections, one column each: "x" f32 (n, dim), "ids" u32 (n, n_ids), "y"
 * f32 (n), "next" u32 (n, an itd_next_t each), the held positives oldest
 * first: "held_x" f32 (hn, dim), "held_ids" u32 (hn, n_ids), "held_next"
 * u32 (hn), "held_ts" u64 (hn, ms since the epoch), "held_part" u32 (hn,
 * the partition, an i32; INT32_MIN: held before partitions were kept),
 * and the partitions' clocks: "part_id" u32 (np, an i32 each),
 * "part_clock" u64 (np, an i64 each: ms since the epoch).
 *
 * Version 3 is version 4 without np and the three sections after
 * "held_ts": it had one clock for all partitions (clock_ms). Its held
 * positives, and those of versions 1 and 2, go into one queue released by
 * every partition's negatives, as they were then, and every partition
 * starts with its clock.
 *
 * Versions 1 and 2 (before the one framing) are still read: "ITDTRAIN",
 * u64 version, u64 dim, u64 n_ids, u64 n, u64 counters[5] (events,
 * predictions, late, examples_pos, examples_neg), then n rows (x: dim
 * floats, ids: n_ids u32, y: float, next: int32); from version 2 then u64
 * hn, i64 clock_ms and hn held positives (a row, then its ts_ms: i64);
 * then the XXH64 of every byte before it, in the host's byte order.
 */
#define TRAINER_VERSION 4
#define TRAINER_WORDS 11 /* the kind's header, u64 each */
#define TRAINER_WORDS_V3 10
#define LEGACY_MAGIC "ITDTRAIN"
#define LEGACY_VERSION 2
#define LEGACY_HEAD (8 + 9 * 8)

/* The snapshot's columns in host order: the mini-batch's n rows, then the
 * hn held positives oldest first. */
typedef struct cols_s {
        uint64_t dim, n_ids, n, hn;
        int64_t clock_ms;
        uint64_t events, predictions, late, examples_pos, examples_neg;
        uint64_t np;
        float *x, *y, *hx;
        uint32_t *ids, *next, *hids, *hnext, *hpart, *pid;
        uint64_t *hts, *pclock;
} cols_t;

static void cols_alloc(cols_t *c) {
        c->x = itd_xcalloc(c->n * c->dim + 1, sizeof *c->x);
        c->ids = itd_xcalloc(c->n * c->n_ids + 1, sizeof *c->ids);
        c->y = itd_xcalloc(c->n + 1, sizeof *c->y);
        c->next = itd_xcalloc(c->n + 1, sizeof *c->next);
        c->hx = itd_xcalloc(c->hn * c->dim + 1, sizeof *c->hx);
        c->hids = itd_xcalloc(c->hn * c->n_ids + 1, sizeof *c->hids);
        c->hnext = itd_xcalloc(c->hn + 1, sizeof *c->hnext);
        c->hts = itd_xcalloc(c->hn + 1, sizeof *c->hts);
        c->hpart = itd_xcalloc(c->hn + 1, sizeof *c->hpart);
        c->pid = itd_xcalloc(c->np + 1, sizeof *c->pid);
        c->pclock = itd_xcalloc(c->np + 1, sizeof *c->pclock);
}

static void cols_free(cols_t *c) {
        free(c->x);
        free(c->ids);
        free(c->y);
        free(c->next);
        free(c->hx);
        free(c->hids);
        free(c->hnext);
        free(c->hts);
        free(c->hpart);
        free(c->pid);
        free(c->pclock);
}

/* One section a column, in the order of the header comment. */
typedef struct col_s {
        const char *name;
        uint32_t dtype;
        size_t off;   /* the column's pointer in cols_t */
        int held;     /* 0: n rows; 1: hn; 2: np */
        int width;    /* 0: one element a row; 1: dim; 2: n_ids */
        uint32_t since; /* the first version with it */
} col_t;

static const col_t COLS[] = {
    {"x", ITD_FRAME_F32, offsetof(cols_t, x), 0, 1, 3},
    {"ids", ITD_FRAME_U32, offsetof(cols_t, ids), 0, 2, 3},
    {"y", ITD_FRAME_F32, offsetof(cols_t, y), 0, 0, 3},
    {"next", ITD_FRAME_U32, offsetof(cols_t, next), 0, 0, 3},
    {"held_x", ITD_FRAME_F32, offsetof(cols_t, hx), 1, 1, 3},
    {"held_ids", ITD_FRAME_U32, offsetof(cols_t, hids), 1, 2, 3},
    {"held_next", ITD_FRAME_U32, offsetof(cols_t, hnext), 1, 0, 3},
    {"held_ts", ITD_FRAME_U64, offsetof(cols_t, hts), 1, 0, 3},
    {"held_part", ITD_FRAME_U32, offsetof(cols_t, hpart), 1, 0, 4},
    {"part_id", ITD_FRAME_U32, offsetof(cols_t, pid), 2, 0, 4},
    {"part_clock", ITD_FRAME_U64, offsetof(cols_t, pclock), 2, 0, 4},
};

static void *col_ptr(const cols_t *c, const col_t *col) {
        void *p;
        memcpy(&p, (const char *)c + col->off, sizeof p);
        return p;
}

static size_t col_bytes(const cols_t *c, const col_t *col) {
        uint64_t rows = col->held == 2 ? c->np : col->held ? c->hn : c->n;
        uint64_t w = col->width == 1 ? c->dim : col->width == 2 ? c->n_ids : 1;
        return (size_t)(rows * w) * itd_frame_dtype_size(col->dtype);
}

/* Two clocks as one: the earliest that is set (a held positive is
 * released no sooner than its own trainer would have), INT64_MIN when
 * neither is. */
static int64_t clock_min(int64_t a, int64_t b) {
        return a == INT64_MIN || (b != INT64_MIN && b < a) ? b : a;
}

/* The partitions' clocks of n_tr trainers as one, per partition, into c
 * (pid, pclock allocated for the sum of theirs; sets c->np). */
static void clocks_of(const itd_trainer_t *const *trs, size_t n_tr,
                      cols_t *c) {
        c->np = 0;
        for (size_t i = 0; i < n_tr; i++)
                for (size_t p = 0; p < trs[i]->np; p++) {
                        const hold_part_t *hp = &trs[i]->parts[p];
                        size_t k = 0;
                        while (k < c->np && c->pid[k] != (uint32_t)hp->id)
                                k++;
                        if (k == c->np) {
                                c->np++;
                                c->pid[k] = (uint32_t)hp->id;
                                c->pclock[k] = (uint64_t)hp->clock_ms;
                        }
                        c->pclock[k] = (uint64_t)clock_min(
                            (int64_t)c->pclock[k], hp->clock_ms);
                }
}

/* A held slot of one trainer, for writing them in arrival order. */
typedef struct held_ref_s {
        uint64_t seq;
        int32_t slot, part;
} held_ref_t;

static int held_ref_cmp(const void *a, const void *b) {
        const held_ref_t *x = a, *y = b;
        return (x->seq > y->seq) - (x->seq < y->seq);
}

/* tr's held positives oldest first into refs (tr->hn of them). */
static void held_in_order(const itd_trainer_t *tr, held_ref_t *refs) {
        size_t k = 0;
        for (size_t p = 0; p < tr->np; p++)
                for (int32_t h = tr->parts[p].head; h >= 0; h = tr->hlink[h])
                        refs[k++] = (held_ref_t){.seq = tr->hseq[h],
                                                 .slot = h,
                                                 .part = tr->parts[p].id};
        qsort(refs, k, sizeof *refs, held_ref_cmp);
}

/* The columns of n_tr trainers as one: counters summed, mini-batch rows
 * one trainer after another, held positives merged by time. */
static void cols_of(const itd_trainer_t *const *trs, size_t n_tr,
                    const itd_trainer_extra_t *extra, cols_t *c) {
        size_t dim = trs[0]->conf.dim, n_ids = trs[0]->conf.n_ids;
        *c = (cols_t){.dim = dim,
                      .n_ids = n_ids,
                      .clock_ms = INT64_MIN,
                      .events = extra->events,
                      .predictions = extra->predictions,
                      .late = extra->late};
        for (size_t i = 0; i < n_tr; i++) {
                c->clock_ms = clock_min(c->clock_ms, trs[i]->clock_new);
                c->n += trs[i]->n;
                c->hn += trs[i]->hn;
                c->np += trs[i]->np;
                c->examples_pos += trs[i]->examples_pos;
                c->examples_neg += trs[i]->examples_neg;
        }
        cols_alloc(c);
        clocks_of(trs, n_tr, c);
        size_t r = 0;
        for (size_t i = 0; i < n_tr; i++) {
                const itd_trainer_t *t = trs[i];
                memcpy(c->x + r * dim, t->x, t->n * dim * sizeof *c->x);
                memcpy(c->ids + r * n_ids, t->ids,
                       t->n * n_ids * sizeof *c->ids);
                memcpy(c->y + r, t->y, t->n * sizeof *c->y);
                for (size_t k = 0; k < t->n; k++)
                        c->next[r + k] = (uint32_t)t->next[k];
                r += t->n;
        }
        /* the held positives of all, merged by the time of their heads
         * (each trainer's in arrival order) */
        held_ref_t *refs[ITD_TRAINER_WRITE_MAX];
        size_t at[ITD_TRAINER_WRITE_MAX] = {0};
        for (size_t i = 0; i < n_tr; i++) {
                refs[i] = itd_xcalloc(trs[i]->hn + 1, sizeof *refs[i]);
                held_in_order(trs[i], refs[i]);
        }
        for (uint64_t k = 0; k < c->hn; k++) {
                const itd_trainer_t *t = NULL;
                size_t ti = 0;
                int32_t h = 0;
                for (size_t i = 0; i < n_tr; i++) {
                        if (at[i] == trs[i]->hn)
                                continue;
                        int32_t hi = refs[i][at[i]].slot;
                        if (!t || trs[i]->hts[hi] < t->hts[h]) {
                                t = trs[i];
                                ti = i;
                                h = hi;
                        }
                }
                c->hpart[k] = (uint32_t)refs[ti][at[ti]++].part;
                memcpy(c->hx + k * dim, t->hx + (size_t)h * dim,
                       dim * sizeof *c->hx);
                memcpy(c->hids + k * n_ids, t->hids + (size_t)h * n_ids,
                       n_ids * sizeof *c->hids);
                c->hnext[k] = (uint32_t)t->hnext[h];
                c->hts[k] = (uint64_t)t->hts[h];
        }
        for (size_t i = 0; i < n_tr; i++)
                free(refs[i]);
}

itd_err_t itd_trainer_write_all(const itd_trainer_t *const *trs, size_t n_tr,
                                const itd_trainer_extra_t *extra, FILE *out,
                                char *errstr, size_t errstr_size) {
        if (n_tr < 1 || n_tr > ITD_TRAINER_WRITE_MAX) {
                itd_errf(errstr, errstr_size,
                         "writing the trainer: %zu trainers, outside 1..%d",
                         n_tr, ITD_TRAINER_WRITE_MAX);
                return ITD_ERR_ARG;
        }
        cols_t c;
        cols_of(trs, n_tr, extra, &c);
        const uint64_t words[TRAINER_WORDS] = {
            c.dim,          c.n_ids,       c.n,
            c.hn,           (uint64_t)c.clock_ms,
            c.events,       c.predictions, c.late,
            c.examples_pos, c.examples_neg, c.np};
        uint8_t hdr[TRAINER_WORDS * 8];
        for (size_t i = 0; i < TRAINER_WORDS; i++)
                itd_put_le64(hdr + 8 * i, words[i]);
        itd_frame_buf_t b = {0};
        itd_frame_buf_begin(&b, TRAINER_VERSION, ITD_FRAME_TRAINER, hdr,
                            sizeof hdr);
        for (size_t i = 0; i < sizeof COLS / sizeof COLS[0]; i++)
                itd_frame_buf_section(&b, COLS[i].name, COLS[i].dtype,
                                      col_ptr(&c, &COLS[i]),
                                      col_bytes(&c, &COLS[i]));
        itd_frame_buf_end(&b);
        cols_free(&c);
        itd_err_t err = ITD_OK;
        if (fwrite(b.buf, 1, b.len, out) != b.len) {
                itd_errf(errstr, errstr_size, "writing the trainer: %s",
                         strerror(errno));
                err = ITD_ERR_IO;
        }
        itd_frame_buf_fini(&b);
        return err;
}

itd_err_t itd_trainer_write(const itd_trainer_t *tr,
                            const itd_trainer_extra_t *extra, FILE *out,
                            char *errstr, size_t errstr_size) {
        return itd_trainer_write_all(&tr, 1, extra, out, errstr, errstr_size);
}

/* A version 3 snapshot into c (allocated: cols_free), checked against
 * this trainer's shape. */
static itd_err_t read_frame(const itd_trainer_t *tr, const void *data,
                            size_t len, cols_t *c, char *errstr,
                            size_t errstr_size) {
        itd_frame_view_t v;
        char why[256];
        if (itd_frame_parse(&v, data, len, ITD_FRAME_TRAINER,
                            TRAINER_WORDS_V3 * 8, why, sizeof why)) {
                itd_errf(errstr, errstr_size, "corrupt trainer snapshot: %s",
                         why);
                return ITD_ERR_CORRUPT;
        }
        uint64_t w[TRAINER_WORDS] = {0};
        size_t words = v.version >= 4 ? TRAINER_WORDS : TRAINER_WORDS_V3;
        if (v.header_bytes < words * 8) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: a %zu-byte header, "
                         "version %" PRIu32 " has %zu",
                         v.header_bytes, v.version, words * 8);
                return ITD_ERR_CORRUPT;
        }
        for (size_t i = 0; i < words; i++)
                w[i] = itd_get_le64(v.header + 8 * i);
        if (v.version < 3 || v.version > TRAINER_VERSION ||
            w[0] != tr->conf.dim || w[1] != tr->conf.n_ids) {
                itd_errf(errstr, errstr_size,
                         "incompatible trainer snapshot: version %" PRIu32
                         ", %" PRIu64 " dense and %" PRIu64
                         " sparse features; this build: %d (or 1 to 3), %zu, "
                         "%zu",
                         v.version, w[0], w[1], TRAINER_VERSION, tr->conf.dim,
                         tr->conf.n_ids);
                return ITD_ERR_INCOMPATIBLE;
        }
        /* the CRC vouches for these, but a row count past the file's size
         * would still be a writer's bug: refused before allocating */
        uint64_t row = (w[0] + w[1] + 2) * 4;
        if (w[2] > len / row || w[3] > len / row || w[10] > len / 12) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: %" PRIu64 " rows, %"
                         PRIu64 " held and %" PRIu64 " partitions do not "
                         "fit %zu bytes",
                         w[2], w[3], w[10], len);
                return ITD_ERR_CORRUPT;
        }
        *c = (cols_t){.dim = w[0],
                      .n_ids = w[1],
                      .n = w[2],
                      .hn = w[3],
                      .clock_ms = (int64_t)w[4],
                      .events = w[5],
                      .predictions = w[6],
                      .late = w[7],
                      .examples_pos = w[8],
                      .examples_neg = w[9],
                      .np = w[10]};
        cols_alloc(c);
        for (uint64_t i = 0; i < c->hn; i++)
                c->hpart[i] = (uint32_t)HOLD_ANY; /* version 3 */
        for (size_t i = 0; i < sizeof COLS / sizeof COLS[0]; i++) {
                if (COLS[i].since > v.version)
                        continue;
                if (itd_frame_get(&v, COLS[i].name, COLS[i].dtype,
                                  col_ptr(c, &COLS[i]), col_bytes(c, &COLS[i]),
                                  why, sizeof why)) {
                        itd_errf(errstr, errstr_size,
                                 "corrupt trainer snapshot: %s", why);
                        cols_free(c);
                        return ITD_ERR_CORRUPT;
                }
        }
        return ITD_OK;
}

static size_t legacy_row_bytes(const itd_trainer_t *tr) {
        return tr->conf.dim * sizeof(float) +
               tr->conf.n_ids * sizeof(uint32_t) + sizeof(float) +
               sizeof(int32_t);
}

/* Legacy row r into row i of c's columns (held: the held ones); returns
 * the byte after it. */
static const unsigned char *legacy_row(const unsigned char *r, cols_t *c,
                                       size_t i, int held) {
        float *x = held ? c->hx : c->x;
        uint32_t *ids = held ? c->hids : c->ids;
        int32_t next;
        memcpy(x + i * c->dim, r, c->dim * sizeof(float));
        r += c->dim * sizeof(float);
        memcpy(ids + i * c->n_ids, r, c->n_ids * sizeof(uint32_t));
        r += c->n_ids * sizeof(uint32_t);
        if (!held)
                memcpy(&c->y[i], r, sizeof(float));
        memcpy(&next, r + sizeof(float), sizeof next);
        (held ? c->hnext : c->next)[i] = (uint32_t)next;
        return r + sizeof(float) + sizeof next;
}

/* A version 1 or 2 snapshot into c (allocated: cols_free). */
static itd_err_t read_legacy(const itd_trainer_t *tr, const void *data,
                             size_t len, cols_t *c, char *errstr,
                             size_t errstr_size) {
        const unsigned char *buf = data;
        size_t dim = tr->conf.dim, n_ids = tr->conf.n_ids;
        uint64_t head[9], h;
        if (len < LEGACY_HEAD + 8) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: %zu bytes, shorter than "
                         "a \"%s\" header", len, LEGACY_MAGIC);
                return ITD_ERR_CORRUPT;
        }
        memcpy(&h, buf + len - 8, 8);
        if (XXH64(buf, len - 8, 0) != h) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: checksum mismatch over "
                         "bytes 0..%zu", len - 8);
                return ITD_ERR_CORRUPT;
        }
        memcpy(head, buf + 8, sizeof head);
        if ((head[0] != 1 && head[0] != LEGACY_VERSION) || head[1] != dim ||
            head[2] != n_ids) {
                itd_errf(errstr, errstr_size,
                         "incompatible trainer snapshot: version %" PRIu64
                         ", %" PRIu64 " dense and %" PRIu64
                         " sparse features; this build: %d (or 1 to 3), %zu, "
                         "%zu",
                         head[0], head[1], head[2], TRAINER_VERSION, dim,
                         n_ids);
                return ITD_ERR_INCOMPATIBLE;
        }
        size_t n = (size_t)head[3], rb = legacy_row_bytes(tr);
        uint64_t hn = 0;
        int64_t clock_ms = INT64_MIN;
        size_t body = len - 8 - LEGACY_HEAD;
        int fits = n <= body / rb;
        if (fits && head[0] >= 2) {
                const unsigned char *t = buf + LEGACY_HEAD + n * rb;
                fits = body - n * rb >= 16;
                if (fits) {
                        memcpy(&hn, t, 8);
                        memcpy(&clock_ms, t + 8, 8);
                        fits = hn == (body - n * rb - 16) / (rb + 8) &&
                               body - n * rb - 16 == hn * (rb + 8);
                }
        } else if (fits) {
                fits = body == n * rb;
        }
        if (!fits) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: %zu rows do not fit %zu "
                         "bytes", n, len);
                return ITD_ERR_CORRUPT;
        }
        *c = (cols_t){.dim = dim,
                      .n_ids = n_ids,
                      .n = n,
                      .hn = hn,
                      .clock_ms = clock_ms,
                      .events = head[4],
                      .predictions = head[5],
                      .late = head[6],
                      .examples_pos = head[7],
                      .examples_neg = head[8]};
        cols_alloc(c);
        const unsigned char *r = buf + LEGACY_HEAD;
        for (size_t i = 0; i < n; i++)
                r = legacy_row(r, c, i, 0);
        r += 16;
        for (size_t i = 0; i < hn; i++) {
                int64_t ts_ms;
                r = legacy_row(r, c, i, 1);
                memcpy(&ts_ms, r, 8);
                r += 8;
                c->hts[i] = (uint64_t)ts_ms;
                c->hpart[i] = (uint32_t)HOLD_ANY;
        }
        return ITD_OK;
}

itd_err_t itd_trainer_read(itd_trainer_t *tr, const void *data, size_t len,
                           int apply, itd_trainer_extra_t *extra,
                           char *errstr, size_t errstr_size) {
        cols_t c;
        itd_err_t err;
        if (len >= 8 && memcmp(data, LEGACY_MAGIC, 8) == 0)
                err = read_legacy(tr, data, len, &c, errstr, errstr_size);
        else
                err = read_frame(tr, data, len, &c, errstr, errstr_size);
        if (err)
                return err;
        if (!apply) {
                cols_free(&c);
                return ITD_OK;
        }
        tr->n = 0;
        itd_trainer_hold_reset(tr, c.clock_ms);
        for (size_t i = 0; i < c.np; i++) {
                size_t p = itd_trainer_part_of(tr, (int32_t)c.pid[i]);
                tr->parts[p].clock_ms = (int64_t)c.pclock[i];
        }
        extra->events = c.events;
        extra->predictions = c.predictions;
        extra->late = c.late;
        tr->examples_pos = c.examples_pos;
        tr->examples_neg = c.examples_neg;
        /* A smaller model.batch.size than at the checkpoint: the surplus rows
         * are learned from at once, in steps of the new size. */
        for (size_t i = 0; i < c.n; i++)
                itd_trainer_queue_row(tr, c.x + i * c.dim, c.ids + i * c.n_ids, c.y[i],
                      (int)c.next[i]);
        /* held again; without a hold (model.positives.hold 0, or fewer
         * than at the checkpoint) the surplus is learned at once, oldest first
         */
        for (size_t i = 0; i < c.hn; i++)
                itd_trainer_hold_row(tr, itd_trainer_part_of(tr, (int32_t)c.hpart[i]),
                         c.hx + i * c.dim, c.hids + i * c.n_ids,
                         (int)c.hnext[i], (int64_t)c.hts[i]);
        cols_free(&c);
        return ITD_OK;
}
