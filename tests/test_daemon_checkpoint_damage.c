/*
 * test_daemon_checkpoint_damage.c - damaged checkpoints (daemon/checkpoint.h):
 * a damaged newest checkpoint falls back to the previous one. A folder
 * holding what intentd did not write (symlinks named like checkpoints, odd
 * names, a MANIFEST that is /dev/zero, a FIFO or huge, one naming absurd or
 * repeated partitions) loses nothing outside it and never hangs; every
 * checkpoint damaged is reported as such.
 *
 * Events come from the seeded simulator, spread over three partitions by
 * user, with offsets counting per partition like Kafka's.
 */
#include "daemon_checkpoint_helpers.h"

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
                write_checkpoint(cd, eng, &f, 0);
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
                          "a symlink listed as a checkpoint: %s", paths[i]);
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
        write_checkpoint(cd, eng, &f, 0);
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
