/*
 * test_daemon_checkpoint.c - the checkpoint folder (daemon/checkpoint.h):
 * a checkpoint restores to the same state, pending labels, positions and
 * progressive metrics; a checkpoint of the older format without metrics loads;
 * a checkpoint of another feature spec is refused with a clear error; old
 * checkpoints go only after a newer one is complete; unfinished ones are
 * cleaned up; `inspect state` prints the newest; the pipeline workers' state
 * restores by any count of workers. Damaged checkpoints and a folder holding
 * what intentd did not write: test_daemon_checkpoint_damage.c.
 *
 * Events come from the seeded simulator, spread over three partitions by
 * user, with offsets counting per partition like Kafka's.
 */
#include "daemon_checkpoint_helpers.h"

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
        cr_assert(tc.eval2.n > tc.eval1.n, "the checkpoints need different metrics");
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
        write_checkpoint(cd, a, &f, 1);
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
        cr_expect_eq(es.users, 0, "a refused checkpoint must leave the engine empty");
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
        write_checkpoint(cd, eng, &f, 1);
        /* An unfinished checkpoint, as a kill -9 during writing leaves it. */
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s/cut-000000000009.tmp", dir);
        cr_assert_eq(mkdir(tmp, 0750), 0);
        itd_checkpoint_dir_close(cd);
        char **paths;
        size_t n = itd_checkpoint_dir_list(dir, &paths);
        cr_expect_eq(n, 2, "checkpoint.keep is 2, found %zu checkpoints", n);
        cr_expect(strstr(paths[0], "cut-000000000003") != NULL, "%s",
                  paths[0]);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
        cd = open_dir(eng);
        struct stat sb;
        cr_expect_neq(stat(tmp, &sb), 0, "unfinished checkpoint not removed");
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
