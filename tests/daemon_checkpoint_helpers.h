/*
 * daemon_checkpoint_helpers.h - helpers of test_daemon_checkpoint.c and
 * test_daemon_checkpoint_damage.c: a small configuration and its engine,
 * events from the seeded simulator over three partitions, an engine's dump,
 * metrics and pending labels, a checkpoint written in a temporary folder, two
 * checkpoints and a restore checked against them, the newest checkpoint's
 * files, a MANIFEST rewritten with a valid CRC32C.
 */
#ifndef INTENTD_DAEMON_CHECKPOINT_HELPERS_H
#define INTENTD_DAEMON_CHECKPOINT_HELPERS_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "conf_parts.h"
#include "intentd/conf.h"
#include "intentd/crc32c.h"
#include "intentd/engine.h"
#include "intentd/event.h"
#include "intentd/log.h"
#include "intentd/simulator.h"
#include "intentd/snapshot.h"
#include "testutil.h"

#define PARTS 3
#define BATCH 256
/* Restored metrics come from the very same counts: bit-identical. */
#define SAME_COUNTS_EPS 0.0

typedef struct feed_s {
        itd_sim_t *sim;
        int64_t next_offset[PARTS];
} feed_t;

static inline itd_conf_t *small_conf(const char *windows) {
        itd_conf_t *conf = itd_conf_new();
        char err[256];
        /* A small model keeps each checkpoint at a few hundred KiB. */
        cr_assert_eq(itd_conf_set(conf, "model.embedding.buckets", "1024",
                                  err, sizeof err), ITD_OK, "%s", err);
        cr_assert_eq(itd_conf_set(conf, "model.hidden", "16", err,
                                  sizeof err), ITD_OK, "%s", err);
        cr_assert_eq(itd_conf_set(conf, "labels.max_pending", "100000", err,
                                  sizeof err), ITD_OK, "%s", err);
        if (windows)
                cr_assert_eq(itd_conf_set(conf, "windows.spans", windows, err,
                                          sizeof err), ITD_OK, "%s", err);
        return conf;
}

static inline itd_engine_t *engine(const itd_conf_t *conf) {
        char err[256];
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert(eng, "%s", err);
        return eng;
}

static inline void feed_init(feed_t *f) {
        memset(f, 0, sizeof *f);
        itd_sim_conf_t sc = {.users = 3000, .days = 2, .seed = 7,
                             .start_ms = 1700000000000LL};
        char err[256];
        f->sim = itd_sim_new(&sc, err, sizeof err);
        cr_assert(f->sim, "%s", err);
}

/* Feeds n events (in batches) to each engine given. */
static inline void feed(feed_t *f, itd_engine_t **engs, size_t n_engs,
                        size_t n) {
        static itd_row_t in[BATCH];
        while (n > 0) {
                size_t k = 0;
                while (k < BATCH && k < n &&
                       itd_sim_next(f->sim, &in[k].ev) == ITD_OK) {
                        int32_t p = (int32_t)(itd_hash_str(in[k].ev.user_id,
                                                           1) % PARTS);
                        itd_row_decoded(&in[k], p, f->next_offset[p]++);
                        k++;
                }
                cr_assert(k > 0, "simulator ran dry");
                for (size_t e = 0; e < n_engs; e++)
                        cr_assert_eq(itd_engine_process(engs[e], "events", in,
                                                        k, itd_now_wall_ms(),
                                                        NULL, 0),
                                     ITD_OK);
                n -= k;
        }
}

static inline itd_checkpoint_pos_t *positions(const feed_t *f) {
        static itd_checkpoint_pos_t pos[PARTS];
        for (int p = 0; p < PARTS; p++)
                pos[p] = (itd_checkpoint_pos_t){p, f->next_offset[p]};
        return pos;
}

/* The engine's dump (what `inspect state` prints), malloc'd. */
static inline char *dump(const itd_engine_t *eng) {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        cr_assert_eq(itd_engine_dump_state(eng, m), ITD_OK);
        fclose(m);
        return buf;
}

static inline itd_eval_summary_t eval_of(const itd_engine_t *eng) {
        itd_engine_stats_t es;
        itd_engine_stats(eng, &es);
        return es.eval;
}

static inline uint64_t pending(const itd_engine_t *eng) {
        itd_engine_stats_t es;
        itd_engine_stats(eng, &es);
        return es.pending;
}

static inline void write_checkpoint(itd_checkpoint_dir_t *cd,
                                    itd_engine_t *eng, const feed_t *f,
                                    int background) {
        char err[1024];
        cr_assert_eq(itd_checkpoint_dir_write(cd, &eng, 1, positions(f), PARTS,
                                              background, err, sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_eq(itd_checkpoint_dir_poll(cd, 1, err, sizeof err),
                     ITD_CHECKPOINT_WRITTEN, "%s", err);
        cr_assert_eq(itd_checkpoint_dir_publish(cd, err, sizeof err), ITD_OK,
                     "%s", err);
}

static char dir[256];

static inline itd_checkpoint_dir_t *open_dir(const itd_engine_t *eng) {
        char err[1024];
        itd_checkpoint_dir_t *cd =
            itd_checkpoint_dir_open(dir, eng, "events", 2, 0, err, sizeof err);
        cr_assert(cd, "%s", err);
        return cd;
}

/* Two checkpoints: after 3000 events (dump1, offsets1) and 6000 (dump2). */
typedef struct two_checkpoints_s {
        char *dump1, *dump2;
        uint64_t pending1, pending2;
        int64_t off1[PARTS], off2[PARTS];
        itd_eval_summary_t eval1, eval2;
} two_checkpoints_t;

static inline void make_two_checkpoints(itd_conf_t *conf,
                                        two_checkpoints_t *tc) {
        cr_assert(tu_tmpdir(dir, sizeof dir));
        itd_engine_t *eng = engine(conf);
        feed_t f;
        feed_init(&f);
        itd_checkpoint_dir_t *cd = open_dir(eng);
        feed(&f, &eng, 1, 3000);
        write_checkpoint(cd, eng, &f, 0);
        tc->dump1 = dump(eng);
        tc->pending1 = pending(eng);
        tc->eval1 = eval_of(eng);
        memcpy(tc->off1, f.next_offset, sizeof tc->off1);
        feed(&f, &eng, 1, 3000);
        write_checkpoint(cd, eng, &f, 1);
        tc->dump2 = dump(eng);
        tc->pending2 = pending(eng);
        tc->eval2 = eval_of(eng);
        memcpy(tc->off2, f.next_offset, sizeof tc->off2);
        itd_checkpoint_dir_close(cd);
        itd_sim_destroy(f.sim);
        itd_engine_destroy(eng);
}

/* Restores dir into a fresh engine; checks against dump/pending/offsets
 * and the progressive summary (want_eval). */
static inline void expect_restored(itd_conf_t *conf, const char *want_dump,
                                   uint64_t want_pending,
                                   const int64_t *want_off,
                                   const itd_eval_summary_t *want_eval) {
        itd_engine_t *eng = engine(conf);
        itd_checkpoint_dir_t *cd = open_dir(eng);
        itd_checkpoint_pos_t *pos;
        size_t n;
        char err[2048];
        cr_assert_eq(itd_checkpoint_dir_restore(cd, eng, &pos, &n, NULL, err,
                                                sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_eq(n, PARTS);
        for (size_t i = 0; i < n; i++)
                cr_expect_eq(pos[i].next_offset, want_off[pos[i].partition],
                             "partition %d resumes at %lld, expected %lld",
                             (int)pos[i].partition,
                             (long long)pos[i].next_offset,
                             (long long)want_off[pos[i].partition]);
        char *got = dump(eng);
        cr_expect_str_eq(got, want_dump);
        cr_expect_eq(pending(eng), want_pending);
        itd_eval_summary_t eval = eval_of(eng);
        cr_expect_eq(eval.n, want_eval->n, "judged %llu, expected %llu",
                     (unsigned long long)eval.n,
                     (unsigned long long)want_eval->n);
        cr_expect_eq(eval.positives, want_eval->positives);
        if (want_eval->n) {
                cr_expect_float_eq(eval.auc, want_eval->auc, SAME_COUNTS_EPS);
                cr_expect_float_eq(eval.logloss, want_eval->logloss,
                                   SAME_COUNTS_EPS);
                cr_expect_float_eq(eval.f1, want_eval->f1, SAME_COUNTS_EPS);
        }
        free(got);
        free(pos);
        itd_checkpoint_dir_close(cd);
        itd_engine_destroy(eng);
}

static inline char *newest_file(const char *name, char *buf, size_t cap) {
        char **paths;
        size_t n = itd_checkpoint_dir_list(dir, &paths);
        cr_assert(n >= 1);
        snprintf(buf, cap, "%s/%s", paths[0], name);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
        return buf;
}

/* Rewrites the newest MANIFEST with from -> to in its text and a valid
 * CRC32C, as someone who knows the format could. */
static inline void rewrite_manifest(const char *from, const char *to) {
        char path[4096];
        newest_file("MANIFEST", path, sizeof path);
        char *text = tu_read_file(path);
        cr_assert(text);
        char *crc = strstr(text, "crc32c ");
        cr_assert(crc);
        *crc = '\0';
        char *at = strstr(text, from);
        cr_assert(at, "\"%s\" not in the manifest", from);
        char body[65536];
        snprintf(body, sizeof body, "%.*s%s%s", (int)(at - text), text, to,
                 at + strlen(from));
        char out[70000];
        snprintf(out, sizeof out, "%scrc32c 0x%08x\n", body,
                 (unsigned)itd_crc32c(0, body, strlen(body)));
        cr_assert_eq(tu_write_file(path, out), 0);
        free(text);
}


#endif /* INTENTD_DAEMON_CHECKPOINT_HELPERS_H */
