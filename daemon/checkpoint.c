/*
 * checkpoint.c - consistent checkpoints of the daemon in checkpoint.dir:
 * opening the folder, writing a checkpoint (in a forked child, or in place at
 * stop), publishing it by rename, pruning (checkpoint.h, docs/CHECKPOINTS.md).
 * The MANIFEST and the feature spec are checkpoint_manifest.c; restoring
 * is checkpoint_restore.c; file-system helpers checkpoint_fs.c.
 *
 * Why a child process: a checkpoint must be one instant of the state, the
 * labels and the model together. Copying a million users costs tens of
 * milliseconds and writing them far more; fork() costs a page-table copy
 * (bench/bench_checkpoint.c measures both), after which the kernel keeps
 * the child's view frozen by copy-on-write while the pipeline goes on.
 * This is what Redis does for BGSAVE. The child runs only our own
 * serialisers and file calls (glibc makes malloc and stdio usable after
 * fork) and leaves by _exit, never touching librdkafka's threads' state.
 */
#include "checkpoint.h"
#include "checkpoint_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "intentd/conf.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/model.h"
#include "intentd/replicas.h"
#include "intentd/snapshot.h"

/* ------------------------------------------------------------ helpers */

static int fsync_path(const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        int rc = fsync(fd);
        close(fd);
        return rc;
}

static size_t list_seqs(const char *dir, uint64_t **out, uint64_t *max_seq) {
        return itd_checkpoint_list_seqs(dir, out, max_seq, 0);
}

size_t itd_checkpoint_dir_list(const char *dir, char ***paths) {
        uint64_t *seqs;
        size_t n = list_seqs(dir, &seqs, NULL);
        *paths = n ? itd_xcalloc(n, sizeof **paths) : NULL;
        for (size_t i = 0; i < n; i++) {
                char buf[4096];
                itd_checkpoint_name(buf, sizeof buf, dir, seqs[i], 0);
                (*paths)[i] = itd_xmalloc(strlen(buf) + 1);
                memcpy((*paths)[i], buf, strlen(buf) + 1);
        }
        free(seqs);
        return n;
}

/* ------------------------------------------------------------ opening */

itd_checkpoint_dir_t *itd_checkpoint_dir_open(const char *dir,
                                              const itd_engine_t *eng,
                                              const char *topic, size_t keep,
                                              int64_t pause_ms, char *errstr,
                                              size_t errstr_size) {
        if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
                itd_errf(errstr, errstr_size,
                       "checkpoint.dir \"%s\": cannot create: %s", dir,
                       strerror(errno));
                return NULL;
        }
        struct stat sb;
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
            access(dir, W_OK | X_OK) != 0) {
                itd_errf(errstr, errstr_size,
                       "checkpoint.dir \"%s\": not a writable folder", dir);
                return NULL;
        }
        itd_checkpoint_dir_t *cd = itd_xcalloc(1, sizeof *cd);
        cd->dir = itd_xmalloc(strlen(dir) + 1);
        memcpy(cd->dir, dir, strlen(dir) + 1);
        itd_strlcpy(cd->topic, topic, sizeof cd->topic);
        cd->keep = keep < 2 ? 2 : keep;
        cd->pause_ms = pause_ms;
        cd->err_fd = -1;
        cd->spec_hash = itd_checkpoint_dir_feature_spec(
            &itd_engine_partition_conf(eng)->state, cd->spec, sizeof cd->spec);
        /* Unfinished checkpoints of an earlier life: their writer is gone (it
         * dies with its parent), so nothing else uses them. */
        uint64_t max_seq = itd_checkpoint_remove_unfinished(dir);
        cd->next_seq = max_seq + 1;
        return cd;
}

void itd_checkpoint_dir_close(itd_checkpoint_dir_t *cd) {
        if (!cd)
                return;
        if (cd->state == ITD_CHECKPOINT_WRITING) {
                char errstr[256];
                itd_checkpoint_dir_poll(cd, 1, errstr, sizeof errstr);
        }
        if (cd->err_fd >= 0)
                close(cd->err_fd);
        free(cd->damaged);
        free(cd->pos);
        free(cd->last_pos);
        free(cd->dir);
        free(cd);
}

uint64_t itd_checkpoint_dir_last_seq(const itd_checkpoint_dir_t *cd) {
        return cd->last_seq;
}

const itd_checkpoint_pos_t *
itd_checkpoint_dir_last_pos(const itd_checkpoint_dir_t *cd, size_t *n) {
        *n = cd->n_last_pos;
        return cd->last_pos;
}

/* ------------------------------------------------------------ writing */

static void test_pause(const itd_checkpoint_dir_t *cd) {
        if (cd->pause_ms <= 0)
                return;
        struct timespec ts = {.tv_sec = cd->pause_ms / 1000,
                              .tv_nsec = (cd->pause_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

/* Writes one file with a writer callback; fsyncs; gives its size. */
typedef itd_err_t (*write_fn)(const void *obj, FILE *out, char *errstr,
                              size_t errstr_size);

static itd_err_t write_file(const char *path, write_fn fn, const void *obj,
                            uint64_t *bytes, char *errstr,
                            size_t errstr_size) {
        FILE *f = fopen(path, "wbe");
        if (!f) {
                itd_errf(errstr, errstr_size, "creating \"%s\": %s", path,
                       strerror(errno));
                return ITD_ERR_IO;
        }
        static char vbuf[1 << 20];
        setvbuf(f, vbuf, _IOFBF, sizeof vbuf);
        char why[512] = "";
        itd_err_t err = fn(obj, f, why, sizeof why);
        if (!err && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
                snprintf(why, sizeof why, "%s", strerror(errno));
                err = ITD_ERR_IO;
        }
        long pos = ftell(f);
        if (fclose(f) != 0 && !err) {
                snprintf(why, sizeof why, "%s", strerror(errno));
                err = ITD_ERR_IO;
        }
        if (err) {
                itd_errf(errstr, errstr_size, "writing \"%s\": %s", path, why);
                return err;
        }
        *bytes = (uint64_t)pos;
        return ITD_OK;
}

static itd_err_t write_part_fn(const void *pt, FILE *out, char *errstr,
                               size_t errstr_size) {
        return itd_partition_write(pt, out, errstr, errstr_size);
}

/* Every engine's trainer as one (pipeline workers). */
typedef struct {
        itd_engine_t *const *engs;
        size_t n;
} engines_t;

static itd_err_t write_trainer_fn(const void *arg, FILE *out, char *errstr,
                                  size_t errstr_size) {
        const engines_t *e = arg;
        return itd_engine_write_trainers(
            (const itd_engine_t *const *)e->engs, e->n, out, errstr,
            errstr_size);
}

static itd_err_t write_replicas_fn(const void *arg, FILE *out,
                                   char *errstr, size_t errstr_size) {
        const engines_t *e = arg;
        return itd_replicas_write(e->engs, e->n, out, errstr, errstr_size);
}

static itd_err_t write_eval_fn(const void *eval, FILE *out, char *errstr,
                             size_t errstr_size) {
        return itd_eval_snapshot(eval, out, errstr, errstr_size);
}

/* A partition and the engine that holds it. */
typedef struct {
        int32_t p;
        const itd_partition_t *pt;
} held_t;

static int held_cmp(const void *a, const void *b) {
        int32_t x = ((const held_t *)a)->p, y = ((const held_t *)b)->p;
        return (x > y) - (x < y);
}

/* Every partition the engines hold, ascending (the manifest lists them
 * so); a partition is in one engine at most. */
static held_t *held_partitions(itd_engine_t *const *engs, size_t n_engs,
                               size_t *n_out) {
        size_t n = 0;
        for (size_t e = 0; e < n_engs; e++)
                n += itd_engine_partitions(engs[e], NULL, 0);
        held_t *h = itd_xcalloc(n ? n : 1, sizeof *h);
        int32_t *ps = itd_xcalloc(n ? n : 1, sizeof *ps);
        size_t k = 0;
        for (size_t e = 0; e < n_engs; e++) {
                size_t m = itd_engine_partitions(engs[e], ps, n);
                for (size_t i = 0; i < m; i++)
                        h[k++] = (held_t){ps[i], itd_engine_partition_get(
                                                     engs[e], ps[i])};
        }
        free(ps);
        qsort(h, k, sizeof *h, held_cmp);
        *n_out = k;
        return h;
}

static const itd_checkpoint_pos_t *pos_find(const itd_checkpoint_pos_t *pos,
                                            size_t n, int32_t p) {
        for (size_t i = 0; i < n; i++)
                if (pos[i].partition == p)
                        return &pos[i];
        return NULL;
}

/* Writes the whole checkpoint into tmpdir (made here), MANIFEST last. */
static itd_err_t write_checkpoint(itd_checkpoint_dir_t *cd,
                                  itd_engine_t *const *engs, size_t n_engs,
                                  const char *tmpdir, char *errstr,
                                  size_t errstr_size) {
        itd_engine_t *eng = engs[0];
        if (mkdir(tmpdir, 0750) != 0) {
                itd_errf(errstr, errstr_size, "creating \"%s\": %s", tmpdir,
                       strerror(errno));
                return ITD_ERR_IO;
        }
        itd_checkpoint_info_t info = {0};
        info.seq = cd->seq;
        info.created_ms = itd_now_wall_ms();
        itd_strlcpy(info.version, ITD_VERSION, sizeof info.version);
        itd_strlcpy(info.topic, cd->topic, sizeof info.topic);
        info.feature_spec_hash = cd->spec_hash;
        itd_strlcpy(info.feature_spec, cd->spec, sizeof info.feature_spec);
        info.state_conf = *&itd_engine_partition_conf(eng)->state;
        info.labeler_conf = itd_engine_partition_conf(eng)->labels;

        size_t n;
        held_t *held = held_partitions(engs, n_engs, &n);
        info.parts = itd_xcalloc(n ? n : 1, sizeof *info.parts);
        char path[4096], name[64];
        itd_err_t err = ITD_OK;
        for (size_t i = 0; i < n && !err; i++) {
                const itd_checkpoint_pos_t *pp =
                    pos_find(cd->pos, cd->n_pos, held[i].p);
                if (!pp)
                        continue;
                itd_checkpoint_part_t *cp = &info.parts[info.n_parts++];
                itd_partition_info_t pi;
                itd_partition_info(held[i].pt, &pi);
                cp->partition = held[i].p;
                cp->next_offset = pp->next_offset;
                cp->watermark_ms = pi.watermark_ms;
                cp->last_ts_ms = pi.last_ts_ms;
                cp->users = pi.users;
                cp->pending = pi.pending;
                snprintf(name, sizeof name, "part-%d.snap", (int)held[i].p);
                itd_checkpoint_path_join(path, sizeof path, tmpdir, name);
                err = write_file(path, write_part_fn, held[i].pt, &cp->bytes,
                                 errstr, errstr_size);
                test_pause(cd);
        }
        if (!err) {
                itd_checkpoint_path_join(path, sizeof path, tmpdir,
                                         "engine.bin");
                engines_t all = {engs, n_engs};
                err = write_file(path, write_trainer_fn, &all,
                                 &info.engine_bytes, errstr, errstr_size);
                itd_checkpoint_path_join(path, sizeof path, tmpdir,
                                         "workers.bin");
                if (!err)
                        err = write_file(path, write_replicas_fn, &all,
                                         &info.workers_bytes, errstr,
                                         errstr_size);
        }
        if (!err) {
                itd_checkpoint_path_join(path, sizeof path, tmpdir, "eval.bin");
                /* one evaluation over every engine's examples */
                itd_eval_t *ev = itd_engine_eval(eng);
                if (n_engs > 1) {
                        ev = itd_eval_new(0.5f);
                        for (size_t e = 0; e < n_engs; e++)
                                itd_eval_merge(ev, itd_engine_eval(engs[e]));
                }
                err = write_file(path, write_eval_fn, ev, &info.eval_bytes,
                                 errstr, errstr_size);
                if (n_engs > 1)
                        itd_eval_destroy(ev);
        }
        if (!err) {
                itd_checkpoint_path_join(path, sizeof path, tmpdir,
                                         "model.ckpt");
                itd_snapshot_meta_t meta = {.feature_spec_hash = cd->spec_hash,
                                            .created_ms = info.created_ms};
                err = itd_model_save(itd_engine_model(eng), path, &meta,
                                     errstr, errstr_size);
                struct stat sb;
                if (!err && stat(path, &sb) == 0)
                        info.model_bytes = (uint64_t)sb.st_size;
                test_pause(cd);
        }
        if (!err)
                err = itd_checkpoint_write_manifest(tmpdir, &info, errstr,
                                                    errstr_size);
        if (!err && fsync_path(tmpdir) != 0) {
                itd_errf(errstr, errstr_size, "fsync \"%s\": %s", tmpdir,
                       strerror(errno));
                err = ITD_ERR_IO;
        }
        free(held);
        free(info.parts);
        return err;
}

itd_err_t itd_checkpoint_dir_write(itd_checkpoint_dir_t *cd,
                                   itd_engine_t *const *engs, size_t n_engs,
                                   const itd_checkpoint_pos_t *pos,
                                   size_t n_pos, int background, char *errstr,
                                   size_t errstr_size) {
        if (cd->state != ITD_CHECKPOINT_IDLE) {
                itd_errf(errstr, errstr_size, "a checkpoint is in progress");
                return ITD_ERR_FULL;
        }
        cd->seq = cd->next_seq++;
        free(cd->pos);
        cd->pos = itd_xcalloc(n_pos ? n_pos : 1, sizeof *cd->pos);
        memcpy(cd->pos, pos, n_pos * sizeof *pos);
        cd->n_pos = n_pos;
        char tmpdir[4096];
        itd_checkpoint_name(tmpdir, sizeof tmpdir, cd->dir, cd->seq, 1);
        if (!background) {
                itd_err_t err =
                    write_checkpoint(cd, engs, n_engs, tmpdir, errstr, errstr_size);
                if (err) {
                        itd_checkpoint_remove_tree(tmpdir);
                        cd->state = ITD_CHECKPOINT_IDLE;
                        return err;
                }
                cd->state = ITD_CHECKPOINT_WRITTEN;
                return ITD_OK;
        }
        int fds[2];
        if (pipe(fds) != 0 || fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 ||
            fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
                itd_errf(errstr, errstr_size, "pipe: %s", strerror(errno));
                return ITD_ERR_IO;
        }
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                itd_errf(errstr, errstr_size, "fork: %s", strerror(errno));
                close(fds[0]);
                close(fds[1]);
                return ITD_ERR_IO;
        }
        if (pid == 0) {
                /* The writer: dies with the daemon (a kill -9 leaves an
                 * unfinished cut-N.tmp, removed at the next start). */
                close(fds[0]);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(1);
                signal(SIGTERM, SIG_IGN);
                signal(SIGINT, SIG_IGN);
                signal(SIGHUP, SIG_IGN);
                char why[1024];
                itd_err_t err =
                    write_checkpoint(cd, engs, n_engs, tmpdir, why, sizeof why);
                if (err) {
                        ssize_t w = write(fds[1], why, strlen(why));
                        (void)w;
                }
                _exit(err ? 1 : 0);
        }
        close(fds[1]);
        cd->err_fd = fds[0];
        cd->child = pid;
        cd->state = ITD_CHECKPOINT_WRITING;
        return ITD_OK;
}

itd_checkpoint_state_t itd_checkpoint_dir_poll(itd_checkpoint_dir_t *cd,
                                               int wait, char *errstr,
                                               size_t errstr_size) {
        if (cd->state != ITD_CHECKPOINT_WRITING)
                return cd->state;
        int status;
        pid_t r;
        while ((r = waitpid(cd->child, &status, wait ? 0 : WNOHANG)) < 0 &&
               errno == EINTR)
                ;
        if (r == 0)
                return ITD_CHECKPOINT_WRITING;
        char why[1024] = "";
        ssize_t got = read(cd->err_fd, why, sizeof why - 1);
        why[got > 0 ? got : 0] = '\0';
        close(cd->err_fd);
        cd->err_fd = -1;
        cd->child = 0;
        if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                cd->state = ITD_CHECKPOINT_WRITTEN;
                return cd->state;
        }
        if (!*why)
                snprintf(why, sizeof why, "the writer process %s",
                         r < 0 ? "was lost"
                         : WIFSIGNALED(status) ? "was killed"
                                               : "failed");
        itd_errf(errstr, errstr_size, "checkpoint %" PRIu64 ": %s", cd->seq,
               why);
        char tmpdir[4096];
        itd_checkpoint_name(tmpdir, sizeof tmpdir, cd->dir, cd->seq, 1);
        itd_checkpoint_remove_tree(tmpdir);
        cd->state = ITD_CHECKPOINT_IDLE;
        return ITD_CHECKPOINT_FAILED;
}

const itd_checkpoint_pos_t *
itd_checkpoint_dir_pending(const itd_checkpoint_dir_t *cd, size_t *n) {
        if (cd->state == ITD_CHECKPOINT_IDLE) {
                *n = 0;
                return NULL;
        }
        *n = cd->n_pos;
        return cd->pos;
}

void itd_checkpoint_dir_abandon(itd_checkpoint_dir_t *cd) {
        if (cd->state == ITD_CHECKPOINT_IDLE)
                return;
        if (cd->state == ITD_CHECKPOINT_WRITING) {
                kill(cd->child, SIGKILL);
                char errstr[64];
                itd_checkpoint_dir_poll(cd, 1, errstr, sizeof errstr);
        }
        char tmpdir[4096];
        itd_checkpoint_name(tmpdir, sizeof tmpdir, cd->dir, cd->seq, 1);
        itd_checkpoint_remove_tree(tmpdir);
        cd->state = ITD_CHECKPOINT_IDLE;
}

itd_err_t itd_checkpoint_dir_publish(itd_checkpoint_dir_t *cd, char *errstr,
                                     size_t errstr_size) {
        if (cd->state != ITD_CHECKPOINT_WRITTEN) {
                itd_errf(errstr, errstr_size, "no written checkpoint");
                return ITD_ERR_ARG;
        }
        char tmpdir[4096], final[4096];
        itd_checkpoint_name(tmpdir, sizeof tmpdir, cd->dir, cd->seq, 1);
        itd_checkpoint_name(final, sizeof final, cd->dir, cd->seq, 0);
        cd->state = ITD_CHECKPOINT_IDLE;
        if (rename(tmpdir, final) != 0 || fsync_path(cd->dir) != 0) {
                itd_errf(errstr, errstr_size, "publishing \"%s\": %s", final,
                       strerror(errno));
                itd_checkpoint_remove_tree(tmpdir);
                return ITD_ERR_IO;
        }
        cd->last_seq = cd->seq;
        /* its positions, which the next write replaces in cd->pos */
        free(cd->last_pos);
        cd->last_pos = cd->pos;
        cd->n_last_pos = cd->n_pos;
        cd->pos = NULL;
        cd->n_pos = 0;
        /* Only now, with a newer complete checkpoint on disk, may old ones go.
         */
        uint64_t *seqs;
        size_t n = list_seqs(cd->dir, &seqs, NULL);
        for (size_t i = cd->keep; i < n; i++) {
                char old[4096];
                itd_checkpoint_name(old, sizeof old, cd->dir, seqs[i], 0);
                itd_checkpoint_remove_tree(old);
        }
        free(seqs);
        return ITD_OK;
}
