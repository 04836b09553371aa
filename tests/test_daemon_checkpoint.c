/*
 * test_daemon_checkpoint.c - the checkpoint folder (daemon/checkpoint.h):
 * a checkpoint restores to the same state, pending labels, positions and
 * progressive metrics; a checkpoint of the older format without metrics loads;
 * a damaged newest checkpoint falls back to the previous one; a checkpoint of
 * another feature spec is refused with a clear error; old checkpoints go only
 * after a newer one is complete; unfinished ones are cleaned up. A folder
 * holding what intentd did not write (symlinks named like checkpoints, odd
 * names, a MANIFEST that is /dev/zero, a FIFO or huge) loses nothing outside it
 * and never hangs; every checkpoint damaged is reported as such.
 *
 * Events come from the seeded simulator, spread over three partitions by
 * user, with offsets counting per partition like Kafka's.
 */
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

static itd_conf_t *small_conf(const char *windows) {
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

static itd_engine_t *engine(const itd_conf_t *conf) {
        char err[256];
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert(eng, "%s", err);
        return eng;
}

static void feed_init(feed_t *f) {
        memset(f, 0, sizeof *f);
        itd_sim_conf_t sc = {.users = 3000, .days = 2, .seed = 7,
                             .start_ms = 1700000000000LL};
        char err[256];
        f->sim = itd_sim_new(&sc, err, sizeof err);
        cr_assert(f->sim, "%s", err);
}

/* Feeds n events (in batches) to each engine given. */
static void feed(feed_t *f, itd_engine_t **engs, size_t n_engs, size_t n) {
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

static itd_checkpoint_pos_t *positions(const feed_t *f) {
        static itd_checkpoint_pos_t pos[PARTS];
        for (int p = 0; p < PARTS; p++)
                pos[p] = (itd_checkpoint_pos_t){p, f->next_offset[p]};
        return pos;
}

/* The engine's dump (what `inspect state` prints), malloc'd. */
static char *dump(const itd_engine_t *eng) {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        cr_assert_eq(itd_engine_dump_state(eng, m), ITD_OK);
        fclose(m);
        return buf;
}

static itd_eval_summary_t eval_of(const itd_engine_t *eng) {
        itd_engine_stats_t es;
        itd_engine_stats(eng, &es);
        return es.eval;
}

static uint64_t pending(const itd_engine_t *eng) {
        itd_engine_stats_t es;
        itd_engine_stats(eng, &es);
        return es.pending;
}

static void cut(itd_checkpoint_dir_t *cd, itd_engine_t *eng, const feed_t *f,
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

static itd_checkpoint_dir_t *open_dir(const itd_engine_t *eng) {
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

static void make_two_checkpoints(itd_conf_t *conf, two_checkpoints_t *tc) {
        cr_assert(tu_tmpdir(dir, sizeof dir));
        itd_engine_t *eng = engine(conf);
        feed_t f;
        feed_init(&f);
        itd_checkpoint_dir_t *cd = open_dir(eng);
        feed(&f, &eng, 1, 3000);
        cut(cd, eng, &f, 0);
        tc->dump1 = dump(eng);
        tc->pending1 = pending(eng);
        tc->eval1 = eval_of(eng);
        memcpy(tc->off1, f.next_offset, sizeof tc->off1);
        feed(&f, &eng, 1, 3000);
        cut(cd, eng, &f, 1);
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
static void expect_restored(itd_conf_t *conf, const char *want_dump,
                            uint64_t want_pending, const int64_t *want_off,
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

static char *newest_file(const char *name, char *buf, size_t cap) {
        char **paths;
        size_t n = itd_checkpoint_dir_list(dir, &paths);
        cr_assert(n >= 1);
        snprintf(buf, cap, "%s/%s", paths[0], name);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
        return buf;
}

Test(daemon_checkpoint, restores_state_pending_labels_and_positions) {
        itd_conf_t *conf = small_conf(NULL);
        two_checkpoints_t tc;
        make_two_checkpoints(conf, &tc);
        cr_assert(tc.pending2 > 0, "the test needs pending labels");
        cr_assert(tc.eval2.positives > 0 && tc.eval2.positives < tc.eval2.n,
                  "the test needs judged examples of both classes "
                  "(%llu of %llu positive)",
                  (unsigned long long)tc.eval2.positives,
                  (unsigned long long)tc.eval2.n);
        cr_assert(tc.eval2.n > tc.eval1.n, "the cuts need different metrics");
        expect_restored(conf, tc.dump2, tc.pending2, tc.off2, &tc.eval2);
        free(tc.dump1);
        free(tc.dump2);
        itd_conf_destroy(conf);
}

/* Rewrites the newest checkpoint's MANIFEST as an older intentd wrote it:
 * "intentd-checkpoint <version>", the eval_bytes line renamed to `eval_key`
 * (NULL: dropped, with the metrics file; else the file is renamed to
 * eval_file), CRC32C recomputed. */
static void make_newest_checkpoint_older(int version, const char *eval_key,
                                         const char *eval_file) {
        char path[4096], evpath[4096], to[4096];
        newest_file("MANIFEST", path, sizeof path);
        newest_file("eval.bin", evpath, sizeof evpath);
        if (eval_file) {
                newest_file(eval_file, to, sizeof to);
                cr_assert_eq(rename(evpath, to), 0);
        } else {
                cr_assert_eq(unlink(evpath), 0);
        }
        FILE *fp = fopen(path, "r");
        cr_assert(fp);
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        char line[1024];
        int found = 0;
        while (fgets(line, sizeof line, fp)) {
                if (!strncmp(line, "crc32c ", 7))
                        break;
                if (!strncmp(line, "eval_bytes ", 11)) {
                        found = 1;
                        if (!eval_key)
                                continue;
                        fprintf(m, "%s %s", eval_key, line + 11);
                        continue;
                }
                if (!strncmp(line, "intentd-checkpoint ", 19))
                        snprintf(line, sizeof line, "intentd-checkpoint %d\n",
                                 version);
                fputs(line, m);
        }
        fclose(fp);
        fflush(m);
        cr_assert(found, "the manifest lists no eval_bytes");
        fprintf(m, "crc32c 0x%08x\n", (unsigned)itd_crc32c(0, text, len));
        fclose(m);
        fp = fopen(path, "w");
        cr_assert(fp);
        fputs(text, fp);
        fclose(fp);
        free(text);
}

Test(daemon_checkpoint, checkpoint_without_metrics_loads_with_metrics_empty) {
        itd_conf_t *conf = small_conf(NULL);
        two_checkpoints_t tc;
        make_two_checkpoints(conf, &tc);
        make_newest_checkpoint_older(1, NULL, NULL);
        const itd_eval_summary_t none = {0};
        expect_restored(conf, tc.dump2, tc.pending2, tc.off2, &none);
        free(tc.dump1);
        free(tc.dump2);
        itd_conf_destroy(conf);
}

Test(daemon_checkpoint, a_version_2_checkpoint_loads_its_metrics_from_pv_bin) {
        itd_conf_t *conf = small_conf(NULL);
        two_checkpoints_t tc;
        make_two_checkpoints(conf, &tc);
        make_newest_checkpoint_older(2, "pv_bytes", "pv.bin");
        expect_restored(conf, tc.dump2, tc.pending2, tc.off2, &tc.eval2);
        free(tc.dump1);
        free(tc.dump2);
        itd_conf_destroy(conf);
}

Test(daemon_checkpoint, restored_engine_fed_the_same_events_ends_identical) {
        itd_conf_t *conf = small_conf(NULL);
        cr_assert(tu_tmpdir(dir, sizeof dir));
        itd_engine_t *a = engine(conf);
        feed_t f;
        feed_init(&f);
        itd_checkpoint_dir_t *cd = open_dir(a);
        feed(&f, &a, 1, 2500);
        cut(cd, a, &f, 1);
        itd_checkpoint_dir_close(cd);

        itd_engine_t *b = engine(conf);
        cd = open_dir(b);
        itd_checkpoint_pos_t *pos;
        size_t n;
        char err[2048];
        cr_assert_eq(
            itd_checkpoint_dir_restore(cd, b, &pos, &n, NULL, err, sizeof err),
            ITD_OK, "%s", err);
        free(pos);
        itd_checkpoint_dir_close(cd);
        itd_engine_t *both[] = {a, b};
        feed(&f, both, 2, 4000);
        char *da = dump(a), *db = dump(b);
        cr_expect_str_eq(db, da);
        cr_expect_eq(pending(b), pending(a));
        itd_eval_summary_t pa = eval_of(a), pb = eval_of(b);
        cr_expect_eq(pb.n, pa.n);
        cr_expect_eq(pb.positives, pa.positives);
        cr_expect_float_eq(pb.logloss, pa.logloss, SAME_COUNTS_EPS);
        free(da);
        free(db);
        itd_sim_destroy(f.sim);
        itd_engine_destroy(a);
        itd_engine_destroy(b);
        itd_conf_destroy(conf);
}

/* Damage to one file of the newest checkpoint. */
typedef struct damage_s {
        const char *file;
        long at;  /* the byte flipped, from the end when negative */
        int mask; /* XORed into it; 0: the file is cut to half instead */
} damage_t;

static const damage_t DAMAGE[] = {
    {"part-1.snap", 0, 0},       /* a partition, truncated */
    {"part-0.snap", -100, 0x01}, /* a partition, near its end */
    {"model.ckpt", 1000, 0x5a},  /* the model, inside a section */
    {"engine.bin", 40, 0x10},    /* the trainer, its header's width */
    {"eval.bin", 4000, 0x10},    /* the progressive metrics, a bin */
};

static void damage_newest(const damage_t *d) {
        char path[4096];
        newest_file(d->file, path, sizeof path);
        if (!d->mask) {
                struct stat sb;
                cr_assert_eq(stat(path, &sb), 0);
                cr_assert_eq(truncate(path, sb.st_size / 2), 0);
                return;
        }
        FILE *fp = fopen(path, "r+b");
        cr_assert(fp, "%s", path);
        int whence = d->at < 0 ? SEEK_END : SEEK_SET;
        cr_assert_eq(fseek(fp, d->at, whence), 0);
        int c = fgetc(fp);
        cr_assert_neq(c, EOF, "%s: no byte %ld", path, d->at);
        fseek(fp, d->at, whence);
        fputc(c ^ d->mask, fp);
        fclose(fp);
}

Test(daemon_checkpoint, a_damaged_file_falls_back_to_the_previous_checkpoint) {
        for (size_t i = 0; i < sizeof DAMAGE / sizeof DAMAGE[0]; i++) {
                itd_conf_t *conf = small_conf(NULL);
                two_checkpoints_t tc;
                make_two_checkpoints(conf, &tc);
                damage_newest(&DAMAGE[i]);
                cr_log_info("damaged %s", DAMAGE[i].file);
                expect_restored(conf, tc.dump1, tc.pending1, tc.off1,
                                &tc.eval1);
                free(tc.dump1);
                free(tc.dump2);
                itd_conf_destroy(conf);
        }
}

Test(daemon_checkpoint, other_feature_spec_is_refused_naming_both_specs) {
        itd_conf_t *conf = small_conf(NULL);
        two_checkpoints_t tc;
        make_two_checkpoints(conf, &tc);
        itd_conf_t *other = small_conf("10m,1h,24h,7d");
        itd_engine_t *eng = engine(other);
        itd_checkpoint_dir_t *cd = open_dir(eng);
        itd_checkpoint_pos_t *pos;
        size_t n;
        char err[2048];
        cr_assert_eq(itd_checkpoint_dir_restore(cd, eng, &pos, &n, NULL, err,
                                                sizeof err),
                     ITD_ERR_INCOMPATIBLE);
        cr_expect(strstr(err, "feature spec") != NULL, "%s", err);
        cr_expect(strstr(err, "windows 5m,1h,1d,7d") != NULL, "%s", err);
        cr_expect(strstr(err, "windows 10m,1h,1d,7d") != NULL, "%s", err);
        itd_engine_stats_t es;
        itd_engine_stats(eng, &es);
        cr_expect_eq(es.users, 0, "a refused cut must leave the engine empty");
        itd_checkpoint_dir_close(cd);
        itd_engine_destroy(eng);
        itd_conf_destroy(other);
        free(tc.dump1);
        free(tc.dump2);
        itd_conf_destroy(conf);
}

Test(daemon_checkpoint, empty_folder_means_start_empty) {
        cr_assert(tu_tmpdir(dir, sizeof dir));
        itd_conf_t *conf = small_conf(NULL);
        itd_engine_t *eng = engine(conf);
        itd_checkpoint_dir_t *cd = open_dir(eng);
        itd_checkpoint_pos_t *pos;
        size_t n;
        char err[2048];
        cr_expect_eq(itd_checkpoint_dir_restore(cd, eng, &pos, &n, NULL, err,
                                                sizeof err),
                     ITD_ERR_NOT_FOUND);
        cr_expect(strstr(err, "no checkpoint") != NULL, "%s", err);
        itd_checkpoint_dir_close(cd);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
}

Test(daemon_checkpoint, keeps_two_checkpoints_and_removes_unfinished_ones) {
        itd_conf_t *conf = small_conf(NULL);
        two_checkpoints_t tc;
        make_two_checkpoints(conf, &tc);
        itd_engine_t *eng = engine(conf);
        itd_checkpoint_dir_t *cd = open_dir(eng);
        feed_t f;
        feed_init(&f);
        feed(&f, &eng, 1, 500);
        cut(cd, eng, &f, 1);
        /* An unfinished checkpoint, as a kill -9 during writing leaves it. */
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s/cut-000000000009.tmp", dir);
        cr_assert_eq(mkdir(tmp, 0750), 0);
        itd_checkpoint_dir_close(cd);
        char **paths;
        size_t n = itd_checkpoint_dir_list(dir, &paths);
        cr_expect_eq(n, 2, "checkpoint.keep is 2, found %zu cuts", n);
        cr_expect(strstr(paths[0], "cut-000000000003") != NULL, "%s",
                  paths[0]);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
        cd = open_dir(eng);
        struct stat sb;
        cr_expect_neq(stat(tmp, &sb), 0, "unfinished cut not removed");
        itd_checkpoint_dir_close(cd);
        itd_sim_destroy(f.sim);
        itd_engine_destroy(eng);
        free(tc.dump1);
        free(tc.dump2);
        itd_conf_destroy(conf);
}

Test(daemon_checkpoint,
     inspect_state_prints_the_dump_of_the_newest_checkpoint) {
        itd_conf_t *conf = small_conf(NULL);
        two_checkpoints_t tc;
        make_two_checkpoints(conf, &tc);
        char out[512], log[512];
        snprintf(out, sizeof out, "%s.out", dir);
        snprintf(log, sizeof log, "%s.log", dir);
        char *argv[] = {ITD_BINARY, "inspect", "state", dir, NULL};
        pid_t pid = tu_spawn(argv, out);
        cr_assert(pid > 0);
        cr_assert_eq(tu_wait(pid, 20000), 0);
        (void)log;
        /* tu_spawn sends stderr to the same file: keep the JSON lines. */
        FILE *fp = fopen(out, "r");
        cr_assert(fp);
        char *json = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&json, &len);
        char line[4096];
        while (fgets(line, sizeof line, fp))
                if (line[0] == '{')
                        fputs(line, m);
        fclose(m);
        fclose(fp);
        cr_expect_str_eq(json, tc.dump2);
        free(json);
        free(tc.dump1);
        free(tc.dump2);
        itd_conf_destroy(conf);
}

/* ---- a folder holding things intentd did not write ------------------- */

static int exists(const char *path) {
        struct stat sb;
        return lstat(path, &sb) == 0;
}

/* Cleaning up (unfinished checkpoints at open, old checkpoints after a publish)
 * never follows a symlink named like a checkpoint out of checkpoint.dir. */
Test(daemon_checkpoint, cleanup_never_follows_a_symlink_out_of_the_folder) {
        cr_assert(tu_tmpdir(dir, sizeof dir));
        char outside[256], victim[512], link1[512], link2[512];
        cr_assert(tu_tmpdir(outside, sizeof outside));
        snprintf(victim, sizeof victim, "%s/precious", outside);
        cr_assert_eq(tu_write_file(victim, "not intentd's\n"), 0);
        snprintf(link1, sizeof link1, "%s/cut-000000000001", dir);
        snprintf(link2, sizeof link2, "%s/cut-000000000007.tmp", dir);
        cr_assert_eq(symlink(outside, link1), 0);
        cr_assert_eq(symlink(outside, link2), 0);
        itd_conf_t *conf = small_conf(NULL);
        itd_engine_t *eng = engine(conf);
        itd_checkpoint_dir_t *cd =
            open_dir(eng); /* removes unfinished checkpoints */
        feed_t f;
        feed_init(&f);
        for (int i = 0; i < 3; i++) { /* keep 2: pruning runs */
                feed(&f, &eng, 1, 300);
                cut(cd, eng, &f, 0);
        }
        itd_checkpoint_dir_close(cd);
        cr_expect(exists(victim), "a file outside checkpoint.dir was "
                                  "deleted");
        cr_expect(exists(link1) && exists(link2), "the symlinks stay");
        char **paths;
        size_t n = itd_checkpoint_dir_list(dir, &paths);
        cr_expect_eq(n, 2);
        for (size_t i = 0; i < n; i++) {
                cr_expect(strstr(paths[i], "cut-000000000001") == NULL,
                          "a symlink listed as a cut: %s", paths[i]);
                free(paths[i]);
        }
        free(paths);
        itd_sim_destroy(f.sim);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
}

/* Only "cut-<digits>" is a checkpoint: "cut--1" (which strtoull reads as
 * 2^64 - 1) must not wrap the next sequence to 0. */
Test(daemon_checkpoint,
     names_with_signs_or_too_many_digits_are_not_checkpoints) {
        cr_assert(tu_tmpdir(dir, sizeof dir));
        static const char *const junk[] = {
            "cut--1", "cut-+5", "cut- 3", "cut-12x", "cut-0",
            "cut-99999999999999999999", "cut-000000000004.tmp.old"};
        char path[512];
        for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
                snprintf(path, sizeof path, "%s/%s", dir, junk[i]);
                cr_assert_eq(mkdir(path, 0750), 0, "%s", path);
        }
        itd_conf_t *conf = small_conf(NULL);
        itd_engine_t *eng = engine(conf);
        itd_checkpoint_dir_t *cd = open_dir(eng);
        feed_t f;
        feed_init(&f);
        feed(&f, &eng, 1, 300);
        cut(cd, eng, &f, 0);
        cr_expect_eq(itd_checkpoint_dir_last_seq(cd), 1);
        itd_checkpoint_dir_close(cd);
        char **paths;
        size_t n = itd_checkpoint_dir_list(dir, &paths);
        cr_assert_eq(n, 1);
        cr_expect(strstr(paths[0], "/cut-000000000001") != NULL, "%s",
                  paths[0]);
        free(paths[0]);
        free(paths);
        itd_engine_t *fresh = engine(conf);
        cd = open_dir(fresh);
        itd_checkpoint_pos_t *pos;
        size_t np;
        char err[2048];
        cr_expect_eq(itd_checkpoint_dir_restore(cd, fresh, &pos, &np, NULL, err,
                                                sizeof err),
                     ITD_OK, "%s", err);
        free(pos);
        itd_checkpoint_dir_close(cd);
        for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
                snprintf(path, sizeof path, "%s/%s", dir, junk[i]);
                cr_expect(exists(path), "%s was removed", path);
        }
        itd_sim_destroy(f.sim);
        itd_engine_destroy(eng);
        itd_engine_destroy(fresh);
        itd_conf_destroy(conf);
}

/* The newest MANIFEST replaced by something that is not a regular file of
 * sane size: the checkpoint is damaged (quickly), the previous one loads. */
static void manifest_replaced_by(void (*replace)(const char *path)) {
        itd_conf_t *conf = small_conf(NULL);
        two_checkpoints_t tc;
        make_two_checkpoints(conf, &tc);
        char path[4096];
        newest_file("MANIFEST", path, sizeof path);
        cr_assert_eq(unlink(path), 0);
        replace(path);
        expect_restored(conf, tc.dump1, tc.pending1, tc.off1, &tc.eval1);
        free(tc.dump1);
        free(tc.dump2);
        itd_conf_destroy(conf);
}

static void to_dev_zero(const char *path) {
        cr_assert_eq(symlink("/dev/zero", path), 0);
}

static void to_fifo(const char *path) {
        cr_assert_eq(mkfifo(path, 0640), 0);
}

static void to_huge(const char *path) {
        int fd = open(path, O_WRONLY | O_CREAT, 0640);
        cr_assert(fd >= 0);
        cr_assert_eq(ftruncate(fd, (off_t)1 << 32), 0); /* sparse 4 GiB */
        close(fd);
}

Test(daemon_checkpoint, a_manifest_linked_to_dev_zero_is_damaged,
     .timeout = 60) {
        manifest_replaced_by(to_dev_zero);
}

Test(daemon_checkpoint, a_manifest_that_is_a_fifo_is_damaged,
     .timeout = 60) {
        manifest_replaced_by(to_fifo);
}

Test(daemon_checkpoint, a_huge_manifest_is_damaged, .timeout = 60) {
        manifest_replaced_by(to_huge);
}

/* Every checkpoint damaged is not "no checkpoint": restore says so (the daemon
 * logs an error, counts them, and refuses or starts empty by
 * checkpoint.on_corrupt), and set-aside moves them out of pruning's way. */
Test(daemon_checkpoint,
     every_checkpoint_damaged_is_reported_not_taken_for_none) {
        itd_conf_t *conf = small_conf(NULL);
        two_checkpoints_t tc;
        make_two_checkpoints(conf, &tc);
        char **paths;
        size_t n = itd_checkpoint_dir_list(dir, &paths);
        cr_assert_eq(n, 2);
        char path[4096];
        for (size_t i = 0; i < n; i++) {
                snprintf(path, sizeof path, "%s/part-1.snap", paths[i]);
                cr_assert_eq(truncate(path, 100), 0);
                free(paths[i]);
        }
        free(paths);
        itd_engine_t *eng = engine(conf);
        itd_checkpoint_dir_t *cd = open_dir(eng);
        itd_checkpoint_pos_t *pos;
        size_t np;
        char err[2048];
        cr_expect_eq(itd_checkpoint_dir_restore(cd, eng, &pos, &np, NULL, err,
                                                sizeof err),
                     ITD_ERR_CORRUPT);
        cr_expect(strstr(err, "all 2 damaged") != NULL, "%s", err);
        cr_expect_eq(itd_checkpoint_dir_damaged(cd), 2);
        itd_checkpoint_dir_set_aside_damaged(cd);
        snprintf(path, sizeof path, "%s/damaged-cut-000000000001", dir);
        cr_expect(exists(path), "%s", path);
        snprintf(path, sizeof path, "%s/damaged-cut-000000000002", dir);
        cr_expect(exists(path), "%s", path);
        cr_expect_eq(itd_checkpoint_dir_list(dir, &paths), 0);
        cr_expect_eq(itd_checkpoint_dir_restore(cd, eng, &pos, &np, NULL, err,
                                                sizeof err),
                     ITD_ERR_NOT_FOUND);
        itd_checkpoint_dir_close(cd);
        itd_engine_destroy(eng);
        free(tc.dump1);
        free(tc.dump2);
        itd_conf_destroy(conf);
}

/* Rewrites the newest MANIFEST with from -> to in its text and a valid
 * CRC32C, as someone who knows the format could. */
static void rewrite_manifest(const char *from, const char *to) {
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

/* The engine sizes its partition table by the largest number a manifest
 * names: a crafted 2000000000 must not allocate gigabytes, and a
 * partition named twice must not install twice. */
Test(daemon_checkpoint, a_manifest_naming_absurd_or_repeated_partitions_is_damaged) {
        static const char *const to[] = {"partition 2000000000 ",
                                         "partition -1 ", "partition 0 "};
        static const char *const file[] = {"part-2000000000.snap",
                                           "part--1.snap", NULL};
        for (size_t i = 0; i < sizeof to / sizeof to[0]; i++) {
                itd_conf_t *conf = small_conf(NULL);
                two_checkpoints_t tc;
                make_two_checkpoints(conf, &tc);
                rewrite_manifest("partition 1 ", to[i]);
                if (file[i]) { /* the file the manifest now names */
                        char from[4096], dest[4096];
                        newest_file("part-1.snap", from, sizeof from);
                        newest_file(file[i], dest, sizeof dest);
                        cr_assert_eq(rename(from, dest), 0);
                }
                expect_restored(conf, tc.dump1, tc.pending1, tc.off1,
                                &tc.eval1);
                free(tc.dump1);
                free(tc.dump2);
                itd_conf_destroy(conf);
        }
}

/* ---- pipeline workers: workers.bin ------------------------------------ */

/* Restores the newest checkpoint into n fresh engines, the log (stderr)
 * into *log (malloc'd); the info. */
static void restore_into(itd_conf_t *conf, size_t n, itd_engine_t **engs,
                         itd_checkpoint_info_t *info, char **log) {
        for (size_t i = 0; i < n; i++)
                engs[i] = engine(conf);
        itd_checkpoint_dir_t *cd = open_dir(engs[0]);
        char logpath[300], err[2048];
        snprintf(logpath, sizeof logpath, "%s/restore.log", dir);
        fflush(stderr);
        int saved = dup(2);
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        cr_assert(saved >= 0 && fd >= 0);
        dup2(fd, 2);
        close(fd);
        itd_checkpoint_pos_t *pos;
        size_t np;
        itd_err_t e = itd_checkpoint_dir_restore_workers(
            cd, engs, n, &pos, &np, info, err, sizeof err);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        *log = tu_read_file(logpath);
        cr_assert(*log);
        cr_assert_eq(e, ITD_OK, "%s; log: %s", err, *log);
        cr_assert_eq(np, PARTS);
        free(pos);
        itd_checkpoint_dir_close(cd);
}

/*
 * A checkpoint of two engines (pipeline workers) holds workers.bin: read
 * back by two, each takes its own optimizer state and model_version goes
 * on as it was (offset 0); by three, the third takes worker 0's and the
 * log says so; by one, worker 0 alone. A version 3 checkpoint (no
 * workers.bin, no workers_bytes) still loads, and with two workers the
 * log says that worker 1 starts with a fresh optimizer.
 */
Test(daemon_checkpoint, workers_state_restores_by_any_count_and_old_loads) {
        itd_conf_t *conf = small_conf(NULL);
        cr_assert(tu_tmpdir(dir, sizeof dir));
        /* two engines learning from the same stream's batches in turn */
        itd_engine_t *w[2] = {engine(conf), engine(conf)};
        feed_t f;
        feed_init(&f);
        for (int k = 0; k < 12; k++) {
                itd_engine_t *one = w[k % 2];
                feed(&f, &one, 1, 500);
        }
        int64_t steps[2];
        for (int i = 0; i < 2; i++) {
                steps[i] = itd_model_steps(itd_engine_model(w[i]));
                cr_assert_gt(steps[i], 0, "worker %d learned nothing", i);
        }
        /* the partitions are worker 0's (a partition is one worker's);
         * worker 1 keeps what it learned */
        for (int32_t p = 0; p < PARTS; p++)
                itd_partition_destroy(itd_engine_detach(w[1], p));
        /* as after a merge: worker 0's predictions carry both's steps */
        itd_engine_set_version_base(w[0], steps[1]);
        itd_checkpoint_dir_t *cd = open_dir(w[0]);
        char err[1024];
        cr_assert_eq(itd_checkpoint_dir_write(cd, w, 2, positions(&f), PARTS,
                                              0, err, sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_eq(itd_checkpoint_dir_poll(cd, 1, err, sizeof err),
                     ITD_CHECKPOINT_WRITTEN, "%s", err);
        cr_assert_eq(itd_checkpoint_dir_publish(cd, err, sizeof err), ITD_OK,
                     "%s", err);
        itd_checkpoint_dir_close(cd);

        static const size_t counts[] = {2, 3, 1};
        for (size_t c = 0; c < 3; c++) {
                size_t n = counts[c];
                itd_engine_t *engs[3];
                itd_checkpoint_info_t info;
                char *log;
                restore_into(conf, n, engs, &info, &log);
                cr_assert_eq(info.workers, 2);
                cr_assert_eq(itd_model_steps(itd_engine_model(engs[0])),
                             steps[0]);
                if (n >= 2)
                        cr_assert_eq(
                            itd_model_steps(itd_engine_model(engs[1])),
                            steps[1]);
                if (n == 3)
                        cr_assert_eq(
                            itd_model_steps(itd_engine_model(engs[2])),
                            steps[0]);
                /* the version as restored: offset + the replicas' steps */
                int64_t sum = info.version_offset;
                for (size_t i = 0; i < n; i++)
                        sum += itd_model_steps(itd_engine_model(engs[i]));
                cr_assert_eq(sum, steps[0] + steps[1], "%zu engines", n);
                cr_assert_eq(info.version_offset,
                             n == 2   ? 0
                             : n == 3 ? -steps[0]
                                      : steps[1]);
                if (n == 2)
                        cr_assert_null(strstr(log, "pipeline workers"), "%s",
                                       log);
                else
                        cr_assert(strstr(log, "was written by 2 pipeline "
                                              "workers, this run has"),
                                  "%s", log);
                fprintf(stderr, "restored by %zu: %s", n, log);
                free(log);
                itd_checkpoint_info_fini(&info);
                for (size_t i = 0; i < n; i++)
                        itd_engine_destroy(engs[i]);
        }

        /* as written before workers.bin: manifest version 3 */
        char path[4096];
        cr_assert_eq(unlink(newest_file("workers.bin", path, sizeof path)), 0);
        rewrite_manifest("intentd-checkpoint 4\n", "intentd-checkpoint 3\n");
        char *mf = tu_read_file(newest_file("MANIFEST", path, sizeof path));
        char *line = strstr(mf, "workers_bytes ");
        cr_assert(line);
        char drop[64];
        snprintf(drop, sizeof drop, "%.*s", (int)(strchr(line, '\n') - line + 1),
                 line);
        free(mf);
        rewrite_manifest(drop, "");
        itd_engine_t *engs[2];
        itd_checkpoint_info_t info;
        char *log;
        restore_into(conf, 2, engs, &info, &log);
        cr_assert_eq(info.workers, 0);
        cr_assert_eq(info.version_offset, 0);
        cr_assert_eq(itd_model_steps(itd_engine_model(engs[0])), steps[0]);
        cr_assert_eq(itd_model_steps(itd_engine_model(engs[1])), 0);
        cr_assert(strstr(log, "holds no per-worker state"), "%s", log);
        free(log);
        itd_checkpoint_info_fini(&info);
        for (size_t i = 0; i < 2; i++)
                itd_engine_destroy(engs[i]);
        for (int i = 0; i < 2; i++)
                itd_engine_destroy(w[i]);
        itd_sim_destroy(f.sim);
        itd_conf_destroy(conf);
}
