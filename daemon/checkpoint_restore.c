/*
 * checkpoint_restore.c - the newest usable checkpoint back into the engine:
 * each file checked against the MANIFEST (size, CRC32C, feature spec, topic)
 * before it is read, damaged checkpoints skipped and remembered so they can be
 * set aside (checkpoint.h, docs/CHECKPOINTS.md).
 */
#include "checkpoint.h"
#include "checkpoint_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intentd/conf.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/model.h"
#include "intentd/replicas.h"
#include "intentd/snapshot.h"

/* ---------------------------------------------------------- restoring */

/* A file of the checkpoint, opened as a stream when it is a regular file of
 * exactly want bytes (at most max_bytes); NULL with errstr otherwise. */
static FILE *open_checkpoint_file(const char *path, uint64_t want,
                                  uint64_t max_bytes, char *errstr,
                                  size_t errstr_size) {
        int fd = itd_checkpoint_open_regular(path, want, max_bytes, NULL,
                                             errstr, errstr_size);
        if (fd < 0)
                return NULL;
        FILE *f = fdopen(fd, "rb");
        if (!f) {
                itd_errf(errstr, errstr_size, "cannot read \"%s\": %s", path,
                       strerror(errno));
                close(fd);
        }
        return f;
}

/* Reads one partition file (exactly its bytes, nothing after) into a new
 * partition: with the engine's configuration, or (inspect: no engine) with
 * the checkpoint's own, the trigger table bounded only by its own header. */
static itd_err_t read_part(const char *path, const itd_checkpoint_part_t *cp,
                           const itd_engine_t *eng,
                           const itd_checkpoint_info_t *info,
                           itd_partition_t **pt, char *errstr,
                           size_t errstr_size) {
        *pt = NULL;
        FILE *f = open_checkpoint_file(path, cp->bytes, UINT64_MAX, errstr,
                                       errstr_size);
        if (!f)
                return ITD_ERR_CORRUPT;
        itd_partition_conf_t pc;
        if (eng) {
                pc = *itd_engine_partition_conf(eng);
        } else {
                pc = (itd_partition_conf_t){
                    .state = info->state_conf,
                    .labels = info->labeler_conf,
                    .triggers = {.enter = 1, .exit = 0, .top_percent = 1,
                                 .exit_top_percent = 1, .lift = 1,
                                 .exit_lift = 1, .half_life_events = 1,
                                 .max_users = 2147483648u}};
        }
        char why[512];
        itd_err_t err = itd_partition_read(f, cp->partition, &pc,
                                           cp->last_ts_ms, itd_now_wall_ms(),
                                           pt, why, sizeof why);
        if (!err && fgetc(f) != EOF) {
                snprintf(why, sizeof why, "bytes after the last snapshot");
                err = ITD_ERR_CORRUPT;
                itd_partition_destroy(*pt);
                *pt = NULL;
        }
        fclose(f);
        if (err)
                itd_errf(errstr, errstr_size, "\"%s\": %s", path, why);
        return err;
}

itd_err_t itd_checkpoint_read_partition(const char *cp_dir,
                                        const itd_checkpoint_info_t *info,
                                        int32_t p, itd_partition_t **pt,
                                        char *errstr, size_t errstr_size) {
        char path[4096], name[64];
        snprintf(name, sizeof name, "part-%d.snap", (int)p);
        itd_checkpoint_path_join(path, sizeof path, cp_dir, name);
        for (size_t i = 0; i < info->n_parts; i++) {
                if (info->parts[i].partition != p)
                        continue;
                return read_part(path, &info->parts[i], NULL, info, pt,
                                 errstr, errstr_size);
        }
        itd_errf(errstr, errstr_size, "checkpoint \"%s\" holds no partition %d",
                 cp_dir, (int)p);
        return ITD_ERR_NOT_FOUND;
}

/* Reads the metrics file (eval.bin) into a new accumulator (its threshold is the engine's
 * business: merging into the engine's keeps the configured one). */
static itd_err_t read_eval(const char *path, uint64_t bytes, itd_eval_t **eval,
                         char *errstr, size_t errstr_size) {
        FILE *f = open_checkpoint_file(
            path, bytes, ITD_CHECKPOINT_SMALL_FILE_MAX, errstr, errstr_size);
        if (!f)
                return ITD_ERR_CORRUPT;
        char why[512];
        *eval = itd_eval_new(0.5f);
        itd_err_t err = itd_eval_restore(*eval, f, why, sizeof why);
        if (!err && fgetc(f) != EOF) {
                snprintf(why, sizeof why, "bytes after the snapshot");
                err = ITD_ERR_CORRUPT;
        }
        fclose(f);
        if (err) {
                itd_eval_destroy(*eval);
                *eval = NULL;
        }
        if (err == ITD_ERR_INCOMPATIBLE) {
                /* Metrics of another layout (another build): not worth
                 * losing the state and model over. */
                itd_log(ITD_LOG_WARNING, "checkpoint",
                        "ignoring \"%s\": %s; progressive metrics start "
                        "empty", path, why);
                return ITD_OK;
        }
        if (err)
                itd_errf(errstr, errstr_size, "\"%s\": %s", path, why);
        return err;
}

/* Reads and checks workers.bin against engs[0..n). */
static itd_err_t read_replicas(const char *path, uint64_t bytes,
                               itd_engine_t *const *engs, size_t n,
                               itd_replicas_t **out, char *errstr,
                               size_t errstr_size) {
        int fd = itd_checkpoint_open_regular(path, bytes, UINT64_MAX, NULL,
                                             errstr, errstr_size);
        if (fd < 0)
                return ITD_ERR_CORRUPT;
        void *data = itd_checkpoint_read_fd(fd, (size_t)bytes);
        close(fd);
        char why[512];
        itd_replicas_t *r =
            data ? itd_replicas_parse(data, (size_t)bytes, why, sizeof why)
                 : NULL;
        free(data);
        if (!data)
                snprintf(why, sizeof why, "cannot read it");
        itd_err_t err = r ? itd_replicas_check(r, engs, n, why, sizeof why)
                          : ITD_ERR_CORRUPT;
        if (err) {
                itd_errf(errstr, errstr_size, "\"%s\": %s", path, why);
                itd_replicas_destroy(r);
                return err;
        }
        *out = r;
        return ITD_OK;
}

/* What a restore by n workers says of workers.bin (r, NULL when none). */
static void log_replicas(const char *cp_dir, const itd_replicas_t *r,
                         size_t n) {
        if (!r && n > 1)
                itd_log(ITD_LOG_NOTICE, "checkpoint",
                        "checkpoint %s holds no per-worker state (written "
                        "by an older version): workers 1..%zu start with a "
                        "fresh optimizer, and model_version from worker 0's "
                        "steps",
                        cp_dir, n - 1);
        if (!r || itd_replicas_workers(r) == n)
                return;
        size_t k = itd_replicas_workers(r);
        char what[128];
        if (k < n)
                snprintf(what, sizeof what,
                         "workers %zu..%zu start from worker 0's optimizer "
                         "state", k, n - 1);
        else
                snprintf(what, sizeof what,
                         "the optimizer state of workers %zu..%zu is "
                         "dropped", n, k - 1);
        itd_log(ITD_LOG_NOTICE, "checkpoint",
                "checkpoint %s was written by %zu pipeline workers, this "
                "run has %zu: worker 0 takes every unlearned example, %s; "
                "model_version goes on from %lld",
                cp_dir, k, n, what, (long long)itd_replicas_version(r));
}

/* Tries one checkpoint; on success everything is installed in engs[0..n)
 * (the partitions in engs[0]). */
static itd_err_t restore_checkpoint(itd_checkpoint_dir_t *cd,
                                    itd_engine_t *const *engs, size_t n_engs,
                                    const char *cp_dir,
                                    itd_checkpoint_info_t *info, char *errstr,
                                    size_t errstr_size) {
        itd_engine_t *eng = engs[0];
        itd_replicas_t *reps = NULL;
        itd_err_t err =
            itd_checkpoint_info_read(cp_dir, info, errstr, errstr_size);
        if (err)
                return err == ITD_ERR_NOT_FOUND ? ITD_ERR_CORRUPT : err;
        if (info->feature_spec_hash != cd->spec_hash) {
                itd_errf(errstr, errstr_size,
                         "\"%s\" was written for another feature spec: "
                         "0x%016" PRIx64 " (%s); this configuration has "
                         "0x%016" PRIx64 " (%s)",
                         cp_dir, info->feature_spec_hash, info->feature_spec,
                         cd->spec_hash, cd->spec);
                itd_checkpoint_info_fini(info);
                return ITD_ERR_INCOMPATIBLE;
        }
        if (strcmp(info->topic, cd->topic) != 0) {
                itd_errf(errstr, errstr_size,
                         "\"%s\" holds offsets of topic \"%s\", this "
                         "configuration consumes \"%s\"",
                         cp_dir, info->topic, cd->topic);
                itd_checkpoint_info_fini(info);
                return ITD_ERR_INCOMPATIBLE;
        }
        char path[4096], name[64];
        size_t n = info->n_parts;
        itd_partition_t **pts = itd_xcalloc(n ? n : 1, sizeof *pts);
        void *trainer = NULL;
        size_t trainer_len = 0;
        itd_eval_t *eval = NULL;

        /* Everything is read and checked before anything is installed, and
         * the model loads last (it is unchanged when its load fails). */
        itd_checkpoint_path_join(path, sizeof path, cp_dir, "engine.bin");
        int fd = itd_checkpoint_open_regular(path, info->engine_bytes,
                                             ITD_CHECKPOINT_SMALL_FILE_MAX,
                                             NULL, errstr, errstr_size);
        err = fd < 0 ? ITD_ERR_CORRUPT : ITD_OK;
        trainer_len = (size_t)info->engine_bytes;
        if (!err && !(trainer = itd_checkpoint_read_fd(fd, trainer_len))) {
                itd_errf(errstr, errstr_size, "cannot read \"%s\"", path);
                err = ITD_ERR_CORRUPT;
        }
        if (fd >= 0)
                close(fd);
        if (!err) {
                char why[512];
                err = itd_engine_read_trainer(eng, trainer, trainer_len, 0,
                                              why, sizeof why);
                if (err)
                        itd_errf(errstr, errstr_size, "\"%s\": %s", path, why);
        }
        if (!err && info->workers_bytes) {
                itd_checkpoint_path_join(path, sizeof path, cp_dir,
                                         "workers.bin");
                err = read_replicas(path, info->workers_bytes, engs, n_engs,
                                    &reps, errstr, errstr_size);
        }
        if (!err && info->eval_bytes) {
                itd_checkpoint_path_join(path, sizeof path, cp_dir,
                                         info->eval_file);
                err = read_eval(path, info->eval_bytes, &eval, errstr,
                                errstr_size);
        }
        for (size_t i = 0; i < n && !err; i++) {
                snprintf(name, sizeof name, "part-%d.snap",
                         (int)info->parts[i].partition);
                itd_checkpoint_path_join(path, sizeof path, cp_dir, name);
                err = read_part(path, &info->parts[i], eng, info, &pts[i],
                                errstr, errstr_size);
        }
        if (!err) {
                itd_checkpoint_path_join(path, sizeof path, cp_dir,
                                         "model.ckpt");
                /* the model file opens itself; check what it is first */
                int mfd = itd_checkpoint_open_regular(path, info->model_bytes,
                                                      UINT64_MAX, NULL, errstr,
                                                      errstr_size);
                if (mfd < 0)
                        err = ITD_ERR_CORRUPT;
                else
                        close(mfd);
        }
        if (!err) {
                itd_snapshot_meta_t expect = {.feature_spec_hash =
                                                  cd->spec_hash};
                err = itd_model_load(itd_engine_model(eng), path, &expect,
                                     errstr, errstr_size);
                if (err == ITD_ERR_NOT_FOUND)
                        err = ITD_ERR_CORRUPT;
        }
        if (!err) {
                itd_replicas_install(reps, engs, n_engs, trainer,
                                     trainer_len);
                info->workers = reps ? itd_replicas_workers(reps) : 0;
                info->version_offset =
                    reps ? itd_replicas_version_offset(reps, n_engs) : 0;
                log_replicas(cp_dir, reps, n_engs);
                /* Replaced, not added to: the engine may have judged
                 * examples of a newer checkpoint that failed to load. */
                itd_eval_reset(itd_engine_eval(eng));
                if (eval)
                        itd_eval_merge(itd_engine_eval(eng), eval);
                else if (!info->eval_bytes)
                        itd_log(ITD_LOG_NOTICE, "checkpoint",
                                "checkpoint %s holds no progressive "
                                "metrics (written by an older version): "
                                "they start empty",
                                cp_dir);
                /* Restored partitions count as active from now on: idle
                 * advancement waits a full idle period before moving
                 * them. */
                for (size_t i = 0; i < n; i++) {
                        itd_engine_adopt(eng, pts[i]);
                        pts[i] = NULL;
                }
        }
        for (size_t i = 0; i < n; i++)
                itd_partition_destroy(pts[i]);
        free(pts);
        free(trainer);
        itd_replicas_destroy(reps);
        itd_eval_destroy(eval);
        if (err)
                itd_checkpoint_info_fini(info);
        return err;
}

itd_err_t itd_checkpoint_dir_restore(itd_checkpoint_dir_t *cd,
                                     itd_engine_t *eng,
                                     itd_checkpoint_pos_t **pos, size_t *n_pos,
                                     itd_checkpoint_info_t *info_out,
                                     char *errstr, size_t errstr_size) {
        return itd_checkpoint_dir_restore_workers(cd, &eng, 1, pos, n_pos,
                                                  info_out, errstr,
                                                  errstr_size);
}

itd_err_t itd_checkpoint_dir_restore_workers(
    itd_checkpoint_dir_t *cd, itd_engine_t *const *engs, size_t n_engs,
    itd_checkpoint_pos_t **pos, size_t *n_pos,
    itd_checkpoint_info_t *info_out, char *errstr, size_t errstr_size) {
        *pos = NULL;
        *n_pos = 0;
        uint64_t *seqs;
        size_t n = itd_checkpoint_list_seqs(cd->dir, &seqs, NULL, 1);
        size_t refused = 0, damaged = 0;
        free(cd->damaged);
        cd->damaged = itd_xcalloc(n ? n : 1, sizeof *cd->damaged);
        cd->n_damaged = 0;
        char first_refusal[1024] = "";
        itd_err_t result = ITD_ERR_NOT_FOUND;
        for (size_t i = 0; i < n; i++) {
                char cp_dir[4096], why[1024];
                itd_checkpoint_name(cp_dir, sizeof cp_dir, cd->dir, seqs[i], 0);
                itd_checkpoint_info_t info;
                itd_err_t err =
                    restore_checkpoint(cd, engs, n_engs, cp_dir, &info, why,
                                       sizeof why);
                if (err) {
                        int incompatible = err == ITD_ERR_INCOMPATIBLE;
                        refused += incompatible;
                        damaged += !incompatible;
                        if (!incompatible)
                                cd->damaged[cd->n_damaged++] = seqs[i];
                        if (incompatible && !*first_refusal)
                                snprintf(first_refusal, sizeof first_refusal,
                                         "%s", why);
                        itd_log(ITD_LOG_ERR, "checkpoint",
                                "%s checkpoint %s: %s%s",
                                incompatible ? "refusing" : "skipping damaged",
                                cp_dir, why,
                                i + 1 < n ? "; trying the previous one" : "");
                        continue;
                }
                *n_pos = info.n_parts;
                *pos = itd_xcalloc(info.n_parts ? info.n_parts : 1,
                                   sizeof **pos);
                for (size_t k = 0; k < info.n_parts; k++) {
                        (*pos)[k].partition = info.parts[k].partition;
                        (*pos)[k].next_offset = info.parts[k].next_offset;
                }
                cd->last_seq = seqs[i];
                free(cd->last_pos);
                cd->last_pos = itd_xcalloc(*n_pos ? *n_pos : 1,
                                           sizeof *cd->last_pos);
                memcpy(cd->last_pos, *pos, *n_pos * sizeof **pos);
                cd->n_last_pos = *n_pos;
                if (info_out)
                        *info_out = info;
                else
                        itd_checkpoint_info_fini(&info);
                result = ITD_OK;
                break;
        }
        free(seqs);
        if (result == ITD_OK)
                return ITD_OK;
        if (refused) {
                itd_errf(errstr, errstr_size,
                       "no usable checkpoint in \"%s\": %zu refused, %zu "
                       "damaged; newest refusal: %s. Restore the "
                       "configuration they were made with, or move them "
                       "away to start from scratch",
                       cd->dir, refused, damaged, first_refusal);
                return ITD_ERR_INCOMPATIBLE;
        }
        if (n) {
                itd_errf(errstr, errstr_size,
                       "no usable checkpoint in \"%s\": all %zu damaged",
                       cd->dir, damaged);
                return ITD_ERR_CORRUPT;
        }
        itd_errf(errstr, errstr_size, "no checkpoint in \"%s\"", cd->dir);
        return ITD_ERR_NOT_FOUND;
}

size_t itd_checkpoint_dir_damaged(const itd_checkpoint_dir_t *cd) {
        return cd->n_damaged;
}

void itd_checkpoint_dir_set_aside_damaged(itd_checkpoint_dir_t *cd) {
        for (size_t i = 0; i < cd->n_damaged; i++) {
                char from[4096], to[4096];
                itd_checkpoint_name(from, sizeof from, cd->dir, cd->damaged[i],
                                    0);
                snprintf(to, sizeof to, "%s/damaged-cut-%012" PRIu64, cd->dir,
                         cd->damaged[i]);
                if (rename(from, to) != 0)
                        itd_log(ITD_LOG_ERR, "checkpoint",
                                "could not move the damaged checkpoint "
                                "\"%s\" aside: %s", from, strerror(errno));
                else
                        itd_log(ITD_LOG_ERR, "checkpoint",
                                "moved the damaged checkpoint \"%s\" to "
                                "\"%s\": kept for inspection, never removed "
                                "by intentd", from, to);
        }
        cd->n_damaged = 0;
}
