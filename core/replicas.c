/*
 * replicas.c - workers.bin: each worker's own optimizer state and
 * trainer, and the published model_version (replicas.h).
 */
#include "intentd/replicas.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/bytes.h"
#include "intentd/crc32c.h"
#include "intentd/frame.h"
#include "intentd/mem.h"
#include "intentd/workers.h"

#define HEADER_BYTES (ITD_FRAME_PREFIX_BYTES + 16)

/* One worker's part, as read (pointers into the struct's copy). */
typedef struct {
        itd_model_opt_t counts;
        int have_counts;
        const uint8_t *moments; /* f32 little-endian, n_moments floats */
        size_t n_moments;
        const uint8_t *trainer;
        size_t trainer_len;
} replica_t;

struct itd_replicas_s {
        uint8_t *data;
        size_t n;
        int64_t version;
        replica_t r[ITD_WORKERS_MAX];
};

/* ---- writing ---------------------------------------------------------- */

itd_err_t itd_replicas_write(itd_engine_t *const *engs, size_t n, FILE *out,
                             char *errstr, size_t errstr_size) {
        if (n < 1 || n > ITD_WORKERS_MAX) {
                itd_errf(errstr, errstr_size,
                         "writing the replicas: %zu workers, outside 1..%d",
                         n, ITD_WORKERS_MAX);
                return ITD_ERR_ARG;
        }
        uint8_t hdr[HEADER_BYTES - ITD_FRAME_PREFIX_BYTES];
        itd_put_le32(hdr, (uint32_t)n);
        itd_put_le32(hdr + 4, 0);
        itd_put_le64(hdr + 8, (uint64_t)itd_engine_model_version(engs[0]));
        itd_frame_buf_t o = {0};
        itd_frame_buf_begin(&o, ITD_REPLICAS_VERSION, ITD_FRAME_WORKERS, hdr,
                            sizeof hdr);
        char name[ITD_FRAME_NAME_MAX];
        itd_err_t err = ITD_OK;
        for (size_t w = 0; w < n && !err; w++) {
                itd_model_opt_t c;
                size_t nf;
                const float *mom =
                    itd_model_opt(itd_engine_model(engs[w]), &c, &nf);
                const uint64_t counts[3] = {(uint64_t)c.steps, c.skipped,
                                            c.examples};
                snprintf(name, sizeof name, "w%zu.counts", w);
                itd_frame_buf_section(&o, name, ITD_FRAME_U64, counts,
                                      sizeof counts);
                if (w > 0 && nf) {
                        snprintf(name, sizeof name, "w%zu.moments", w);
                        itd_frame_buf_section(&o, name, ITD_FRAME_F32, mom,
                                              nf * 4);
                }
                if (n == 1)
                        continue;
                char *tb = NULL;
                size_t tl = 0;
                FILE *f = open_memstream(&tb, &tl);
                if (!f) {
                        itd_errf(errstr, errstr_size,
                                 "writing the replicas: %s", strerror(errno));
                        err = ITD_ERR_IO;
                        break;
                }
                const itd_engine_t *one = engs[w];
                err = itd_engine_write_trainers(&one, 1, f, errstr,
                                                errstr_size);
                fclose(f);
                if (!err) {
                        snprintf(name, sizeof name, "w%zu.trainer", w);
                        itd_frame_buf_section(&o, name, ITD_FRAME_BYTES, tb,
                                              tl);
                }
                free(tb);
        }
        if (!err) {
                itd_frame_buf_end(&o);
                if (fwrite(o.buf, 1, o.len, out) != o.len) {
                        itd_errf(errstr, errstr_size,
                                 "writing the replicas: %s", strerror(errno));
                        err = ITD_ERR_IO;
                }
        }
        itd_frame_buf_fini(&o);
        return err;
}

/* ---- reading ---------------------------------------------------------- */

void itd_replicas_destroy(itd_replicas_t *r) {
        if (!r)
                return;
        free(r->data);
        free(r);
}

/* "w<w>.<what>" -> w and what; 0 when the name is not one. */
static int parse_name(const char *name, size_t *w, const char **what) {
        if (name[0] != 'w' || name[1] < '0' || name[1] > '9')
                return 0;
        char *end;
        unsigned long v = strtoul(name + 1, &end, 10);
        if (*end != '.' || v >= ITD_WORKERS_MAX)
                return 0;
        *w = v;
        *what = end + 1;
        return 1;
}

itd_replicas_t *itd_replicas_parse(const void *data, size_t len, char *errstr,
                                   size_t errstr_size) {
        const uint8_t *b = data;
        if (len < HEADER_BYTES + ITD_FRAME_SECTION_BYTES +
                      ITD_FRAME_CRC_BYTES ||
            memcmp(b, ITD_FRAME_MAGIC, 8) != 0 ||
            itd_get_le32(b + 12) != ITD_FRAME_WORKERS) {
                itd_errf(errstr, errstr_size,
                         "corrupt replicas: %zu bytes, not a workers "
                         "snapshot", len);
                return NULL;
        }
        if (itd_crc32c(0, b, len - 4) != itd_get_le32(b + len - 4)) {
                itd_errf(errstr, errstr_size,
                         "corrupt replicas: checksum mismatch over bytes "
                         "0..%zu", len - 4);
                return NULL;
        }
        uint32_t version = itd_get_le32(b + 8);
        uint32_t n = itd_get_le32(b + 24);
        if (version != ITD_REPLICAS_VERSION ||
            itd_get_le32(b + 16) != HEADER_BYTES || n < 1 ||
            n > ITD_WORKERS_MAX) {
                itd_errf(errstr, errstr_size,
                         "incompatible replicas: version %u, %u workers; "
                         "this build reads version %d, 1..%d workers",
                         version, n, ITD_REPLICAS_VERSION, ITD_WORKERS_MAX);
                return NULL;
        }
        itd_replicas_t *r = itd_xcalloc(1, sizeof *r);
        r->data = itd_xmalloc(len);
        memcpy(r->data, data, len);
        r->n = n;
        r->version = (int64_t)itd_get_le64(b + 32);
        size_t at = HEADER_BYTES, end = len - 4;
        for (;;) {
                if (end - at < ITD_FRAME_SECTION_BYTES)
                        goto corrupt;
                itd_frame_section_t s;
                itd_frame_section_get(r->data + at, &s);
                at += ITD_FRAME_SECTION_BYTES;
                if (s.name[0] == '\0' && s.nbytes == 0)
                        break;
                if (s.nbytes > end - at)
                        goto corrupt;
                const uint8_t *p = r->data + at;
                at += s.nbytes;
                s.name[ITD_FRAME_NAME_MAX - 1] = '\0';
                size_t w;
                const char *what;
                if (!parse_name(s.name, &w, &what) || w >= n)
                        continue; /* not ours: a later version's */
                replica_t *rp = &r->r[w];
                if (!strcmp(what, "counts") && s.nbytes == 24) {
                        rp->counts.steps = (int64_t)itd_get_le64(p);
                        rp->counts.skipped = itd_get_le64(p + 8);
                        rp->counts.examples = itd_get_le64(p + 16);
                        rp->have_counts = 1;
                } else if (!strcmp(what, "moments") && s.nbytes % 4 == 0) {
                        rp->moments = p;
                        rp->n_moments = s.nbytes / 4;
                } else if (!strcmp(what, "trainer")) {
                        rp->trainer = p;
                        rp->trainer_len = s.nbytes;
                }
        }
        if (at != end)
                goto corrupt;
        for (size_t w = 0; w < n; w++)
                if (!r->r[w].have_counts || (n > 1 && !r->r[w].trainer)) {
                        itd_errf(errstr, errstr_size,
                                 "corrupt replicas: worker %zu of %u has no "
                                 "%s", w, n,
                                 r->r[w].have_counts ? "trainer" : "counts");
                        itd_replicas_destroy(r);
                        return NULL;
                }
        return r;
corrupt:
        itd_errf(errstr, errstr_size,
                 "corrupt replicas: a section runs past byte %zu of %zu", at,
                 len);
        itd_replicas_destroy(r);
        return NULL;
}

size_t itd_replicas_workers(const itd_replicas_t *r) { return r->n; }

int64_t itd_replicas_version(const itd_replicas_t *r) { return r->version; }

int64_t itd_replicas_version_offset(const itd_replicas_t *r, size_t n) {
        int64_t steps = 0;
        for (size_t w = 0; w < n; w++)
                steps += r->r[w < r->n ? w : 0].counts.steps;
        return r->version - steps;
}

int itd_replicas_own_trainers(const itd_replicas_t *r, size_t n) {
        return n > 1 && r->n == n;
}

itd_err_t itd_replicas_check(const itd_replicas_t *r,
                             itd_engine_t *const *engs, size_t n,
                             char *errstr, size_t errstr_size) {
        for (size_t w = 1; w < n && w < r->n; w++) {
                itd_model_opt_t c;
                size_t nf;
                itd_model_opt(itd_engine_model(engs[w]), &c, &nf);
                if (r->r[w].n_moments != nf) {
                        itd_errf(errstr, errstr_size,
                                 "incompatible replicas: worker %zu's "
                                 "optimizer has %zu moment floats, this "
                                 "model %zu",
                                 w, r->r[w].n_moments, nf);
                        return ITD_ERR_INCOMPATIBLE;
                }
        }
        if (!itd_replicas_own_trainers(r, n))
                return ITD_OK;
        for (size_t w = 0; w < n; w++) {
                char why[400];
                itd_err_t err = itd_engine_read_trainer(
                    engs[w], r->r[w].trainer, r->r[w].trainer_len, 0, why,
                    sizeof why);
                if (err) {
                        itd_errf(errstr, errstr_size, "worker %zu: %s", w,
                                 why);
                        return err;
                }
        }
        return ITD_OK;
}

/* The optimizer state of workers 1.. (their parameters come from worker
 * 0's with itd_workers_spread, model_version with
 * itd_workers_set_version_offset). */
static void apply_opt(const itd_replicas_t *r, itd_engine_t *const *engs,
                      size_t n) {
        itd_model_opt_t c0;
        size_t nf0;
        const float *m0 = itd_model_opt(itd_engine_model(engs[0]), &c0, &nf0);
        for (size_t w = 1; w < n; w++) {
                itd_model_opt_t c;
                size_t nf;
                float *m = itd_model_opt(itd_engine_model(engs[w]), &c, &nf);
                if (w < r->n) {
                        itd_model_set_opt(itd_engine_model(engs[w]),
                                          &r->r[w].counts);
                        for (size_t i = 0; i < nf; i++) {
                                uint32_t b =
                                    itd_get_le32(r->r[w].moments + 4 * i);
                                memcpy(&m[i], &b, 4);
                        }
                } else {
                        itd_model_set_opt(itd_engine_model(engs[w]), &c0);
                        if (nf)
                                memcpy(m, m0, nf * sizeof *m);
                }
        }
}

void itd_replicas_install(const itd_replicas_t *r, itd_engine_t *const *engs,
                          size_t n, const void *trainer, size_t trainer_len) {
        char why[64];
        /* the moments in place before a trainer steps */
        if (r)
                apply_opt(r, engs, n);
        if (r && itd_replicas_own_trainers(r, n)) {
                for (size_t w = 0; w < n; w++)
                        (void)itd_engine_read_trainer(
                            engs[w], r->r[w].trainer, r->r[w].trainer_len, 1,
                            why, sizeof why);
        } else {
                (void)itd_engine_read_trainer(engs[0], trainer, trainer_len,
                                              1, why, sizeof why);
        }
}
