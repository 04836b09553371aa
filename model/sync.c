/*
 * sync.c - changes of a model since its last exchange, as messages, and
 * the merge of other instances' changes (msync.h).
 *
 * The synced values are a list of blocks, each a flat array of floats or
 * doubles cut into rows (an embedding row, a FTRL coordinate, or 256
 * values of a dense tensor); a message carries whole rows.
 *
 * Message layout (little-endian, as the checkpoint files):
 *   header (64 bytes): magic "ITDMSYNC", u32 version, u32 kind (1 change,
 *   2 full snapshot), u64 instance, u64 seq, u64 model hash (shape and
 *   seed), u64 examples (learned from since the last change; the total
 *   for a snapshot), u32 part, u32 chunks, u32 CRC32C of the payload,
 *   u32 zero;
 *   then chunks: u16 block, u16 zero, u32 rows, then per row u32 index
 *   and its values (f32 or f64 as the block).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "intentd/bytes.h"
#include "intentd/crc32c.h"
#include "intentd/mem.h"
#include "intentd/msync.h"
#include "intentd/snapshot.h"
#include "model_int.h"

#define MAGIC "ITDMSYNC"
#define VERSION 1u
#define KIND_CHANGE 1u
#define KIND_FULL 2u
#define HDR_BYTES 64
#define CHUNK_BYTES 8
#define DENSE_ROW 256
#define MAX_BLOCKS 12

typedef struct blk_s {
        const char *name;
        int f64;      /* elements are double (1) or float (0) */
        void *cur;    /* the model's values (norm: ms->norm_s) */
        void *base;   /* owned: the values at the last exchange */
        size_t n;     /* elements */
        size_t width; /* elements per row (the last row may be shorter) */
        size_t rows;
        uint8_t *ever; /* sparse blocks: row changed at least once; NULL:
                        * dense, every row goes into a snapshot */
        int param;     /* counted by itd_msync_distance */
        int mean;      /* a value, not an amount: a scaled merge
                        * (itd_msync_merge_mean) scales its change */
} blk_t;

struct itd_msync_s {
        itd_model_t *model;
        itd_mlp_t *mlp; /* NULL for the logistic model */
        uint64_t instance;
        uint64_t hash;
        size_t max_bytes;
        uint8_t *buf; /* (max_bytes) */
        blk_t blk[MAX_BLOCKS];
        size_t n_blk;
        /* the input statistics as sufficient statistics (count, sum,
         * sum of squares per input): (1 + 2 n_dense) */
        double *norm_s;
        int norm_blk; /* its block index, -1 without */
        uint64_t examples_base; /* itd_model_examples at the last publish */
        uint64_t seq;
        itd_msync_stats_t st;
};

/* ---- values ------------------------------------------------------------ */

static void put_val(uint8_t *p, int f64, double v) {
        if (f64) {
                uint64_t u;
                memcpy(&u, &v, 8);
                itd_put_le64(p, u);
        } else {
                float f = (float)v;
                uint32_t u;
                memcpy(&u, &f, 4);
                itd_put_le32(p, u);
        }
}
static double get_val(const uint8_t *p, int f64) {
        if (f64) {
                uint64_t u = itd_get_le64(p);
                double v;
                memcpy(&v, &u, 8);
                return v;
        }
        uint32_t u = itd_get_le32(p);
        float f;
        memcpy(&f, &u, 4);
        return f;
}

static size_t esize(const blk_t *b) { return b->f64 ? 8 : 4; }
static double val(const void *a, int f64, size_t i) {
        return f64 ? ((const double *)a)[i] : ((const float *)a)[i];
}
static void set_val(void *a, int f64, size_t i, double v) {
        if (f64)
                ((double *)a)[i] = v;
        else
                ((float *)a)[i] = (float)v;
}
static size_t row_len(const blk_t *b, size_t r) {
        size_t start = r * b->width;
        return b->n - start < b->width ? b->n - start : b->width;
}

/* ---- blocks ------------------------------------------------------------ */

static void add_blk(itd_msync_t *ms, const char *name, int f64, void *cur,
                    size_t n, size_t width, int sparse, int param) {
        blk_t *b = &ms->blk[ms->n_blk++];
        b->name = name;
        b->f64 = f64;
        b->cur = cur;
        b->n = n;
        b->width = width < n ? width : (n ? n : 1);
        b->rows = n ? (n + b->width - 1) / b->width : 0;
        b->base = itd_xmalloc(n ? n * esize(b) : 1);
        b->ever = sparse ? itd_xcalloc(b->rows ? b->rows : 1, 1) : NULL;
        b->param = param;
        /* parameters and their running averages; precisions, input
         * statistics and counts are amounts that add */
        b->mean = param || !strncmp(name, "avg", 3);
}

/* (count, mean, var) -> (count, sum, sum of squares) */
static void norm_to_s(itd_msync_t *ms) {
        const itd_mlp_t *m = ms->mlp;
        size_t D = m->conf.n_dense;
        double c = m->norm_count;
        ms->norm_s[0] = c;
        for (size_t d = 0; d < D; d++) {
                double mu = m->norm_mean[d];
                ms->norm_s[1 + d] = c * mu;
                ms->norm_s[1 + D + d] = c * (m->norm_var[d] + mu * mu);
        }
}

/* back, capped at the model's window: all three (and the base) scaled
 * alike, which keeps mean and variance */
static void s_to_norm(itd_msync_t *ms) {
        itd_mlp_t *m = ms->mlp;
        size_t D = m->conf.n_dense;
        double *s = ms->norm_s;
        double cap = m->conf.norm_max_count > 0.0f
                         ? (double)m->conf.norm_max_count
                         : HUGE_VAL;
        if (s[0] > cap) {
                double f = cap / s[0];
                double *base = ms->blk[ms->norm_blk].base;
                for (size_t i = 0; i < 1 + 2 * D; i++) {
                        s[i] *= f;
                        base[i] *= f;
                }
        }
        if (!(s[0] > 0.0))
                return;
        m->norm_count = s[0];
        for (size_t d = 0; d < D; d++) {
                double mu = s[1 + d] / s[0];
                double var = s[1 + D + d] / s[0] - mu * mu;
                m->norm_mean[d] = mu;
                m->norm_var[d] = var > 0.0 ? var : 0.0;
        }
        itd_mlp_norm_update(m, NULL, 0); /* refreshes shift and scale */
}

/* After a merge: writes the sums back, and lets the base absorb what the
 * round trip through (count, mean, variance) rounds, which is nobody's
 * change (it would otherwise be published as one). */
static void norm_settle(itd_msync_t *ms) {
        blk_t *b = &ms->blk[ms->norm_blk];
        double *merged = itd_xmalloc(b->n * sizeof(double));
        s_to_norm(ms);
        memcpy(merged, ms->norm_s, b->n * sizeof(double));
        norm_to_s(ms);
        double *base = b->base;
        for (size_t i = 0; i < b->n; i++)
                base[i] += ms->norm_s[i] - merged[i];
        free(merged);
}

static uint64_t model_hash(const itd_model_t *m) {
        const itd_model_conf_t *c = itd_model_conf(m);
        uint64_t h = itd_model_conf_hash(c);
        uint64_t s = c->mlp.seed;
        for (int i = 0; i < 8; i++) {
                h ^= (s >> (8 * i)) & 0xff;
                h *= 0x100000001B3ull;
        }
        return h;
}

itd_msync_t *itd_msync_new(itd_model_t *m, uint64_t instance,
                           size_t max_bytes, char *errstr,
                           size_t errstr_size) {
        if (max_bytes < ITD_MSYNC_MIN_BYTES) {
                itd_errf(errstr, errstr_size,
                         "model sync: message size %zu is below %d bytes",
                         max_bytes, ITD_MSYNC_MIN_BYTES);
                return NULL;
        }
        itd_msync_t *ms = itd_xcalloc(1, sizeof(*ms));
        ms->model = m;
        ms->mlp = itd_model_mlp(m);
        ms->instance = instance;
        ms->hash = model_hash(m);
        ms->max_bytes = max_bytes;
        ms->buf = itd_xmalloc(max_bytes);
        ms->norm_blk = -1;
        itd_mlp_t *mlp = ms->mlp;
        if (mlp) {
                const itd_mlp_conf_t *c = &mlp->conf;
                add_blk(ms, "dense", 0, mlp->params, mlp->n_dense_params,
                        DENSE_ROW, 0, 1);
                if (mlp->emb_rows)
                        add_blk(ms, "emb", 0, mlp->emb,
                                mlp->emb_rows * c->emb_dim, c->emb_dim, 1, 1);
                if (mlp->avg)
                        add_blk(ms, "avg", 0, mlp->avg, mlp->n_dense_params,
                                DENSE_ROW, 0, 0);
                if (mlp->n_newton) { /* offsets, Newton inputs */
                        size_t K = mlp->n_newton;
                        add_blk(ms, "offset.theta", 1, mlp->theta, K, K, 0, 1);
                        add_blk(ms, "offset.h", 1, mlp->offset_h, K * K,
                                K * K, 0, 0);
                        if (mlp->avg)
                                add_blk(ms, "avg.theta", 1, mlp->theta_avg, K,
                                        K, 0, 0);
                }
                if (mlp->norm_mean) {
                        size_t n = 1 + 2 * c->n_dense;
                        ms->norm_s = itd_xcalloc(n, sizeof(double));
                        ms->norm_blk = (int)ms->n_blk;
                        add_blk(ms, "norm", 1, ms->norm_s, n, DENSE_ROW, 0,
                                0);
                        norm_to_s(ms);
                }
        } else {
                itd_logistic_t *lr = itd_model_logistic(m);
                add_blk(ms, "ftrl.z", 1, lr->z, lr->n_weights, 1, 1, 1);
                add_blk(ms, "ftrl.n", 1, lr->n, lr->n_weights, 1, 1, 0);
                add_blk(ms, "next.counts", 1, lr->next_count,
                        ITD_NEXT__COUNT, ITD_NEXT__COUNT, 0, 0);
        }
        for (size_t i = 0; i < ms->n_blk; i++) {
                blk_t *b = &ms->blk[i];
                memcpy(b->base, b->cur, b->n * esize(b));
        }
        ms->examples_base = itd_model_examples(m);
        return ms;
}

void itd_msync_destroy(itd_msync_t *ms) {
        if (!ms)
                return;
        for (size_t i = 0; i < ms->n_blk; i++) {
                free(ms->blk[i].base);
                free(ms->blk[i].ever);
        }
        free(ms->norm_s);
        free(ms->buf);
        free(ms);
}

void itd_msync_stats(const itd_msync_t *ms, itd_msync_stats_t *st) {
        *st = ms->st;
}

/* ---- publish ----------------------------------------------------------- */

typedef struct enc_s {
        itd_msync_t *ms;
        uint32_t kind;
        uint64_t examples; /* for part 0 */
        size_t pos;        /* bytes written into ms->buf */
        size_t chunk_at;   /* offset of the open chunk header, 0: none */
        size_t chunk_blk;  /* its block */
        uint32_t chunk_rows;
        uint32_t chunks;
        uint32_t part;
        itd_msync_emit_t emit;
        void *arg;
        size_t emitted;
} enc_t;

static void enc_start(enc_t *e) {
        e->pos = HDR_BYTES;
        e->chunk_at = 0;
        e->chunks = 0;
}

static void enc_close_chunk(enc_t *e) {
        if (e->chunk_at)
                itd_put_le32(e->ms->buf + e->chunk_at + 4, e->chunk_rows);
        e->chunk_at = 0;
}

static itd_err_t enc_flush(enc_t *e) {
        enc_close_chunk(e);
        if (e->chunks == 0 && !(e->part == 0 && e->examples > 0))
                return ITD_OK;
        uint8_t *h = e->ms->buf;
        memset(h, 0, HDR_BYTES);
        memcpy(h, MAGIC, 8);
        itd_put_le32(h + 8, VERSION);
        itd_put_le32(h + 12, e->kind);
        itd_put_le64(h + 16, e->ms->instance);
        itd_put_le64(h + 24, e->ms->seq);
        itd_put_le64(h + 32, e->ms->hash);
        itd_put_le64(h + 40, e->part == 0 ? e->examples : 0);
        itd_put_le32(h + 48, e->part);
        itd_put_le32(h + 52, e->chunks);
        itd_put_le32(h + 56, itd_crc32c(0, h + HDR_BYTES, e->pos - HDR_BYTES));
        itd_err_t err = e->emit(h, e->pos, e->arg);
        if (err != ITD_OK)
                return err;
        e->ms->st.published++;
        if (e->kind == KIND_FULL)
                e->ms->st.published_full++;
        e->emitted++;
        e->part++;
        enc_start(e);
        return ITD_OK;
}

/* Appends row r of block bi (its delta or its value); flushes first when
 * it does not fit. */
static itd_err_t enc_row(enc_t *e, size_t bi, size_t r) {
        itd_msync_t *ms = e->ms;
        const blk_t *b = &ms->blk[bi];
        size_t len = row_len(b, r), es = esize(b);
        size_t need = 4 + len * es;
        if (e->chunk_at && e->chunk_blk != bi)
                enc_close_chunk(e);
        if (e->chunk_at && e->pos + need > ms->max_bytes) {
                itd_err_t err = enc_flush(e);
                if (err != ITD_OK)
                        return err;
        }
        if (!e->chunk_at) {
                if (e->pos + CHUNK_BYTES + need > ms->max_bytes) {
                        itd_err_t err = enc_flush(e);
                        if (err != ITD_OK)
                                return err;
                }
                e->chunk_at = e->pos;
                e->chunk_blk = bi;
                itd_put_le16(ms->buf + e->pos, (uint16_t)bi);
                itd_put_le16(ms->buf + e->pos + 2, 0);
                e->pos += CHUNK_BYTES;
                e->chunk_rows = 0;
                e->chunks++;
        }
        uint8_t *p = ms->buf + e->pos;
        itd_put_le32(p, (uint32_t)r);
        p += 4;
        size_t at = r * b->width;
        for (size_t k = 0; k < len; k++, p += es) {
                double v = val(b->cur, b->f64, at + k);
                if (e->kind == KIND_CHANGE)
                        v = b->f64 ? v - val(b->base, 1, at + k)
                                   : (double)((float)v -
                                              (float)val(b->base, 0, at + k));
                put_val(p, b->f64, v);
        }
        e->pos += need;
        e->chunk_rows++;
        return ITD_OK;
}

static int row_changed(const blk_t *b, size_t r) {
        size_t at = r * b->width * esize(b);
        return memcmp((const uint8_t *)b->cur + at,
                      (const uint8_t *)b->base + at,
                      row_len(b, r) * esize(b)) != 0;
}

itd_err_t itd_msync_publish(itd_msync_t *ms, int full, itd_msync_emit_t emit,
                            void *arg, size_t *n_msgs, char *errstr,
                            size_t errstr_size) {
        if (ms->norm_blk >= 0)
                norm_to_s(ms);
        uint64_t ex = itd_model_examples(ms->model);
        enc_t e = {.ms = ms,
                   .kind = full ? KIND_FULL : KIND_CHANGE,
                   .examples = full ? ex : ex - ms->examples_base,
                   .emit = emit,
                   .arg = arg};
        ms->seq++;
        enc_start(&e);
        itd_err_t err = ITD_OK;
        for (size_t bi = 0; bi < ms->n_blk && err == ITD_OK; bi++) {
                blk_t *b = &ms->blk[bi];
                for (size_t r = 0; r < b->rows && err == ITD_OK; r++) {
                        if (full ? (b->ever && !b->ever[r])
                                 : !row_changed(b, r))
                                continue;
                        err = enc_row(&e, bi, r);
                        if (err != ITD_OK || full)
                                continue;
                        size_t at = r * b->width * esize(b);
                        memcpy((uint8_t *)b->base + at,
                               (const uint8_t *)b->cur + at,
                               row_len(b, r) * esize(b));
                        if (b->ever)
                                b->ever[r] = 1;
                }
        }
        if (err == ITD_OK)
                err = enc_flush(&e);
        if (err == ITD_OK && !full)
                ms->examples_base = ex;
        if (err != ITD_OK)
                itd_errf(errstr, errstr_size,
                         "model sync: publishing part %u failed: %s", e.part,
                         itd_err_str(err));
        if (n_msgs)
                *n_msgs = e.emitted;
        return err;
}

/* ---- merge ------------------------------------------------------------- */

/* Walks the chunks of a checked payload; apply 0 only checks. */
static itd_err_t walk(itd_msync_t *ms, const uint8_t *p, size_t len,
                      uint32_t chunks, uint32_t kind, int apply,
                      double scale, int means_only, char *errstr,
                      size_t errstr_size) {
        size_t pos = 0;
        for (uint32_t c = 0; c < chunks; c++) {
                if (len - pos < CHUNK_BYTES) {
                        itd_errf(errstr, errstr_size,
                                 "model sync: chunk %u truncated", c);
                        return ITD_ERR_CORRUPT;
                }
                uint16_t bi = itd_get_le16(p + pos);
                uint32_t rows = itd_get_le32(p + pos + 4);
                pos += CHUNK_BYTES;
                if (bi >= ms->n_blk) {
                        itd_errf(errstr, errstr_size,
                                 "model sync: chunk %u names block %u of %zu",
                                 c, bi, ms->n_blk);
                        return ITD_ERR_CORRUPT;
                }
                blk_t *b = &ms->blk[bi];
                size_t es = esize(b);
                for (uint32_t k = 0; k < rows; k++) {
                        if (len - pos < 4) {
                                itd_errf(errstr, errstr_size,
                                         "model sync: %s row %u truncated",
                                         b->name, k);
                                return ITD_ERR_CORRUPT;
                        }
                        uint32_t r = itd_get_le32(p + pos);
                        pos += 4;
                        if (r >= b->rows) {
                                itd_errf(errstr, errstr_size,
                                         "model sync: %s row %u of %zu", b->name,
                                         r, b->rows);
                                return ITD_ERR_CORRUPT;
                        }
                        size_t n = row_len(b, r);
                        if ((len - pos) / es < n) {
                                itd_errf(errstr, errstr_size,
                                         "model sync: %s row %u truncated",
                                         b->name, r);
                                return ITD_ERR_CORRUPT;
                        }
                        for (size_t i = 0; i < n; i++) {
                                double v = get_val(p + pos + i * es, b->f64);
                                if (!isfinite(v)) {
                                        itd_errf(errstr, errstr_size,
                                                 "model sync: %s row %u holds "
                                                 "a non-finite value",
                                                 b->name, r);
                                        return ITD_ERR_CORRUPT;
                                }
                                if (!apply || (means_only && !b->mean))
                                        continue;
                                if (b->mean)
                                        v *= scale;
                                size_t at = r * b->width + i;
                                if (kind == KIND_FULL) {
                                        set_val(b->cur, b->f64, at, v);
                                        set_val(b->base, b->f64, at, v);
                                } else {
                                        set_val(b->cur, b->f64, at,
                                                val(b->cur, b->f64, at) + v);
                                        set_val(b->base, b->f64, at,
                                                val(b->base, b->f64, at) + v);
                                }
                        }
                        if (apply && b->ever)
                                b->ever[r] = 1;
                        pos += n * es;
                }
        }
        if (pos != len) {
                itd_errf(errstr, errstr_size,
                         "model sync: %zu bytes after the last chunk",
                         len - pos);
                return ITD_ERR_CORRUPT;
        }
        return ITD_OK;
}

/* A message applied: scale multiplies the change of the value blocks
 * (1: a plain merge); own 1 takes this instance's own change message and
 * applies only its value blocks (scale - 1 of it: the change becomes
 * scale of what it was). */
static itd_err_t apply_msg(itd_msync_t *ms, const void *buf, size_t len,
                           int adopt, double scale, int own, char *errstr,
                           size_t errstr_size) {
        const uint8_t *h = buf;
        if (len < HDR_BYTES || memcmp(h, MAGIC, 8) != 0) {
                itd_errf(errstr, errstr_size,
                         "model sync: not a model message (%zu bytes)", len);
                return ITD_ERR_CORRUPT;
        }
        uint32_t version = itd_get_le32(h + 8), kind = itd_get_le32(h + 12);
        if (version != VERSION || (kind != KIND_CHANGE && kind != KIND_FULL)) {
                itd_errf(errstr, errstr_size,
                         "model sync: message version %u kind %u, this "
                         "build reads version %u",
                         version, kind, VERSION);
                return ITD_ERR_INCOMPATIBLE;
        }
        uint64_t hash = itd_get_le64(h + 32);
        if (hash != ms->hash) {
                itd_errf(errstr, errstr_size,
                         "model sync: message from instance %016llx is of "
                         "model 0x%016llx, this instance runs 0x%016llx "
                         "(type, shape and model.seed must match)",
                         (unsigned long long)itd_get_le64(h + 16),
                         (unsigned long long)hash,
                         (unsigned long long)ms->hash);
                return ITD_ERR_INCOMPATIBLE;
        }
        if (itd_get_le32(h + 56) !=
            itd_crc32c(0, h + HDR_BYTES, len - HDR_BYTES)) {
                itd_errf(errstr, errstr_size,
                         "model sync: message checksum mismatch");
                return ITD_ERR_CORRUPT;
        }
        if (own && (itd_get_le64(h + 16) != ms->instance ||
                    kind != KIND_CHANGE)) {
                itd_errf(errstr, errstr_size,
                         "model sync: not this instance's own change");
                return ITD_ERR_ARG;
        }
        if ((!own && itd_get_le64(h + 16) == ms->instance) ||
            (kind == KIND_FULL && !adopt)) {
                ms->st.skipped++;
                return ITD_OK;
        }
        uint32_t chunks = itd_get_le32(h + 52);
        itd_err_t err = walk(ms, h + HDR_BYTES, len - HDR_BYTES, chunks, kind,
                             0, 1.0, 0, errstr, errstr_size);
        if (own) {
                walk(ms, h + HDR_BYTES, len - HDR_BYTES, chunks, kind, 1,
                     scale - 1.0, 1, NULL, 0);
                return ITD_OK;
        }
        if (err != ITD_OK)
                return err;
        if (ms->norm_blk >= 0)
                norm_to_s(ms);
        walk(ms, h + HDR_BYTES, len - HDR_BYTES, chunks, kind, 1, scale, 0,
             NULL, 0);
        if (ms->norm_blk >= 0)
                norm_settle(ms);
        if (kind == KIND_FULL) {
                ms->st.adopted++;
        } else {
                ms->st.merged++;
                ms->st.examples_merged += itd_get_le64(h + 40);
        }
        return ITD_OK;
}

itd_err_t itd_msync_merge(itd_msync_t *ms, const void *buf, size_t len,
                          int adopt, char *errstr, size_t errstr_size) {
        return apply_msg(ms, buf, len, adopt, 1.0, 0, errstr, errstr_size);
}

itd_err_t itd_msync_merge_mean(itd_msync_t *ms, const void *buf, size_t len,
                               double scale, int own, char *errstr,
                               size_t errstr_size) {
        return apply_msg(ms, buf, len, 0, scale, own, errstr, errstr_size);
}

/* ---- distance ---------------------------------------------------------- */

double itd_msync_distance(itd_model_t *a, itd_model_t *b) {
        if (model_hash(a) != model_hash(b))
                return -1.0;
        itd_msync_t *x = itd_msync_new(a, 0, ITD_MSYNC_MIN_BYTES, NULL, 0);
        itd_msync_t *y = itd_msync_new(b, 0, ITD_MSYNC_MIN_BYTES, NULL, 0);
        double d2 = 0.0, na = 0.0, nb = 0.0;
        for (size_t i = 0; i < x->n_blk; i++) {
                const blk_t *p = &x->blk[i], *q = &y->blk[i];
                if (!p->param)
                        continue;
                for (size_t k = 0; k < p->n; k++) {
                        double u = val(p->cur, p->f64, k);
                        double v = val(q->cur, q->f64, k);
                        d2 += (u - v) * (u - v);
                        na += u * u;
                        nb += v * v;
                }
        }
        itd_msync_destroy(x);
        itd_msync_destroy(y);
        double n = sqrt(na > nb ? na : nb);
        return n > 0.0 ? sqrt(d2) / n : 0.0;
}
