/*
 * checkpoint.c - consistent cuts of the daemon in checkpoint.dir: writing
 * (in a forked child, or in place at stop), publishing by rename, pruning,
 * and restoring the newest usable one (checkpoint.h, docs/CHECKPOINTS.md).
 *
 * Why a child process: a cut must be one instant of the state, the labels
 * and the model together. Copying a million users costs tens of
 * milliseconds and writing them far more; fork() costs a page-table copy
 * (bench/bench_checkpoint.c measures both), after which the kernel keeps
 * the child's view frozen by copy-on-write while the pipeline goes on.
 * This is what Redis does for BGSAVE. The child runs only our own
 * serialisers and file calls (glibc makes malloc and stdio usable after
 * fork) and leaves by _exit, never touching librdkafka's threads' state.
 */
#include "checkpoint.h"
#include "checkpoint_int.h"

#include <dirent.h>
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

#include <xxhash.h>

#include "intentd/checkpoint.h"
#include "intentd/conf.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/model.h"

#define MANIFEST "MANIFEST"
#define MANIFEST_MAGIC "intentd-checkpoint"
/* 2 added pv.bin; version 1 cuts (without it) still load. */
#define MANIFEST_VERSION 2
#define FEATURE_SPEC_VERSION 1

struct itd_ckdir_s {
        char *dir;
        char topic[256];
        size_t keep;
        int64_t pause_ms;
        uint64_t spec_hash;
        char spec[512];
        uint64_t next_seq;
        uint64_t last_seq;

        /* the cut in progress */
        itd_cut_state_t state;
        uint64_t seq;
        pid_t child;
        int err_fd;             /* read end of the child's error pipe */
        itd_cut_pos_t *pos;
        size_t n_pos;
        char err[512];          /* of a failed in-place write */

        /* cuts the last restore found damaged (for set-aside) */
        uint64_t *damaged;
        size_t n_damaged;
};

/* ------------------------------------------------------------ helpers */

/* Paths longer than cap are cut; such a path then names nothing, and the
 * open or stat that follows reports it. */
static void path_join(char *buf, size_t cap, const char *a, const char *b) {
        int n = snprintf(buf, cap, "%s/%s", a, b);
        if (n < 0 || (size_t)n >= cap)
                buf[0] = '\0';
}

static void cut_name(char *buf, size_t cap, const char *dir, uint64_t seq,
                     int tmp) {
        snprintf(buf, cap, "%s/cut-%012" PRIu64 "%s", dir, seq,
                 tmp ? ".tmp" : "");
}

static int fsync_path(const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        int rc = fsync(fd);
        close(fd);
        return rc;
}

static size_t list_seqs(const char *dir, uint64_t **out, uint64_t *max_seq) {
        return itd_ck_list_seqs(dir, out, max_seq, 0);
}

size_t itd_ckdir_list(const char *dir, char ***paths) {
        uint64_t *seqs;
        size_t n = list_seqs(dir, &seqs, NULL);
        *paths = n ? itd_xcalloc(n, sizeof **paths) : NULL;
        for (size_t i = 0; i < n; i++) {
                char buf[4096];
                cut_name(buf, sizeof buf, dir, seqs[i], 0);
                (*paths)[i] = itd_xmalloc(strlen(buf) + 1);
                memcpy((*paths)[i], buf, strlen(buf) + 1);
        }
        free(seqs);
        return n;
}

/* ------------------------------------------------------- feature spec */

uint64_t itd_ckdir_feature_spec(const itd_state_conf_t *sc, char *desc,
                                size_t desc_size) {
        XXH64_state_t *h = XXH64_createState();
        XXH64_reset(h, FEATURE_SPEC_VERSION);
        size_t dim = itd_features_dim(sc);
        char name[128];
        for (size_t i = 0; i < dim; i++) {
                const char *nm = itd_features_name(sc, i, name, sizeof name);
                XXH64_update(h, nm, strlen(nm) + 1);
        }
        uint64_t shape[] = {dim, ITD_SPARSE_FIELDS, ITD_SPARSE_SLOTS,
                            sc->n_windows, (uint64_t)sc->allowed_lateness_ms,
                            (uint64_t)sc->session_gap_ms};
        XXH64_update(h, shape, sizeof shape);
        XXH64_update(h, sc->window_ms, sc->n_windows * sizeof(int64_t));
        uint64_t hash = XXH64_digest(h);
        XXH64_freeState(h);

        char spans[128] = "", d[32];
        for (size_t i = 0; i < sc->n_windows; i++) {
                size_t len = strlen(spans);
                snprintf(spans + len, sizeof spans - len, "%s%s",
                         i ? "," : "",
                         itd_duration_format(sc->window_ms[i], d, sizeof d));
        }
        char gap[32], late[32];
        itd_errf(desc, desc_size,
               "windows %s, session gap %s, allowed lateness %s, %zu dense "
               "+ %dx%d sparse features",
               spans, itd_duration_format(sc->session_gap_ms, gap, sizeof gap),
               itd_duration_format(sc->allowed_lateness_ms, late,
                                   sizeof late),
               dim, ITD_SPARSE_FIELDS, ITD_SPARSE_SLOTS);
        return hash;
}

/* ----------------------------------------------------------- manifest */

/* Text, one "key value..." per line, so `cat MANIFEST` explains a cut;
 * the last line is "crc32c 0x........" of every byte before it. */
static itd_err_t write_manifest(const char *dir, const itd_cut_info_t *in,
                                char *errstr, size_t errstr_size) {
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        if (!m) {
                itd_errf(errstr, errstr_size, "manifest: %s", strerror(errno));
                return ITD_ERR_IO;
        }
        const itd_state_conf_t *sc = &in->state_conf;
        const itd_labeler_conf_t *lc = &in->labeler_conf;
        fprintf(m, "%s %d\n", MANIFEST_MAGIC, MANIFEST_VERSION);
        fprintf(m, "seq %" PRIu64 "\n", in->seq);
        fprintf(m, "created_ms %" PRId64 "\n", in->created_ms);
        fprintf(m, "version %s\n", in->version);
        fprintf(m, "topic %s\n", in->topic);
        fprintf(m, "feature_spec 0x%016" PRIx64 " %s\n",
                in->feature_spec_hash, in->feature_spec);
        fprintf(m, "state_conf %zu", sc->n_windows);
        for (size_t i = 0; i < sc->n_windows; i++)
                fprintf(m, " %" PRId64, sc->window_ms[i]);
        fprintf(m, " %" PRId64 " %" PRId64 " %" PRId64 " %zu\n",
                sc->allowed_lateness_ms, sc->session_gap_ms, sc->idle_ttl_ms,
                sc->max_users);
        fprintf(m, "labeler_conf %zu %zu %" PRId64 " %" PRId64 " %zu %zu\n",
                lc->dim, lc->n_ids, lc->horizon_ms, lc->session_gap_ms,
                lc->max_pending, lc->max_pending_per_user);
        fprintf(m, "engine_bytes %" PRIu64 "\n", in->engine_bytes);
        fprintf(m, "model_bytes %" PRIu64 "\n", in->model_bytes);
        fprintf(m, "pv_bytes %" PRIu64 "\n", in->pv_bytes);
        fprintf(m, "partitions %zu\n", in->n_parts);
        for (size_t i = 0; i < in->n_parts; i++) {
                const itd_cut_part_t *p = &in->parts[i];
                fprintf(m,
                        "partition %d next_offset %" PRId64
                        " watermark_ms %" PRId64 " last_ts_ms %" PRId64
                        " users %" PRIu64 " pending %" PRIu64
                        " bytes %" PRIu64 "\n",
                        (int)p->partition, p->next_offset, p->watermark_ms,
                        p->last_ts_ms, p->users, p->pending, p->bytes);
        }
        fflush(m);
        fprintf(m, "crc32c 0x%08" PRIx32 "\n", itd_crc32c(0, text, len));
        fclose(m);

        char tmp[4096], path[4096];
        path_join(tmp, sizeof tmp, dir, MANIFEST ".tmp");
        path_join(path, sizeof path, dir, MANIFEST);
        itd_err_t err = ITD_OK;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
                itd_errf(errstr, errstr_size, "writing \"%s\": %s", tmp,
                       strerror(errno));
                err = ITD_ERR_IO;
        }
        if (fd >= 0)
                close(fd);
        if (!err && rename(tmp, path) != 0) {
                itd_errf(errstr, errstr_size, "renaming \"%s\": %s", tmp,
                       strerror(errno));
                err = ITD_ERR_IO;
        }
        free(text);
        return err;
}

void itd_cut_info_fini(itd_cut_info_t *info) {
        free(info->parts);
        memset(info, 0, sizeof *info);
}

itd_err_t itd_cut_info_read(const char *cutdir, itd_cut_info_t *info,
                            char *errstr, size_t errstr_size) {
        memset(info, 0, sizeof *info);
        char path[4096];
        path_join(path, sizeof path, cutdir, MANIFEST);
        /* A regular file of bounded size, read whole: a MANIFEST that is
         * a FIFO, a device or a link to /dev/zero must not block or spin
         * (that happened before any signal handling could help). */
        uint64_t len;
        int fd = itd_ck_open_regular(path, UINT64_MAX, ITD_CK_MANIFEST_MAX,
                                     &len, errstr, errstr_size);
        if (fd < 0)
                return errno == ENOENT ? ITD_ERR_NOT_FOUND : ITD_ERR_CORRUPT;
        char *text = itd_ck_read_fd(fd, (size_t)len);
        close(fd);
        FILE *f = text ? fmemopen(text, len ? (size_t)len : 1, "r") : NULL;
        if (!f || !len) {
                itd_errf(errstr, errstr_size, "cannot read \"%s\"%s", path,
                       text && !len ? ": empty" : "");
                if (f)
                        fclose(f);
                free(text);
                return ITD_ERR_CORRUPT;
        }
        char line[1024];
        uint32_t crc = 0, stored = 0;
        int have_crc = 0, bad = 0, magic = 0, have_pv = 0;
        size_t want_parts = 0;
        size_t cap = 0;
        while (fgets(line, sizeof line, f)) {
                if (!strncmp(line, "crc32c ", 7)) {
                        have_crc = sscanf(line + 7, "%" SCNx32, &stored) == 1;
                        break;
                }
                crc = itd_crc32c(crc, line, strlen(line));
                itd_state_conf_t *sc = &info->state_conf;
                itd_labeler_conf_t *lc = &info->labeler_conf;
                int v, used = 0;
                if (sscanf(line, MANIFEST_MAGIC " %d", &v) == 1) {
                        magic = v;
                } else if (!strncmp(line, "seq ", 4)) {
                        bad |= sscanf(line + 4, "%" SCNu64, &info->seq) != 1;
                } else if (!strncmp(line, "created_ms ", 11)) {
                        bad |= sscanf(line + 11, "%" SCNd64,
                                      &info->created_ms) != 1;
                } else if (!strncmp(line, "version ", 8)) {
                        line[strcspn(line, "\n")] = '\0';
                        itd_strlcpy(info->version, line + 8,
                                    sizeof info->version);
                } else if (!strncmp(line, "topic ", 6)) {
                        line[strcspn(line, "\n")] = '\0';
                        itd_strlcpy(info->topic, line + 6, sizeof info->topic);
                } else if (!strncmp(line, "feature_spec ", 13)) {
                        line[strcspn(line, "\n")] = '\0';
                        bad |= sscanf(line + 13, "%" SCNx64 " %n",
                                      &info->feature_spec_hash, &used) < 1;
                        itd_strlcpy(info->feature_spec, line + 13 + used,
                                    sizeof info->feature_spec);
                } else if (!strncmp(line, "state_conf ", 11)) {
                        char *c = line + 11, *end;
                        sc->n_windows = strtoull(c, &end, 10);
                        bad |= sc->n_windows > ITD_WINDOWS_MAX;
                        for (size_t i = 0; !bad && i < sc->n_windows; i++)
                                sc->window_ms[i] = strtoll(c = end, &end, 10);
                        sc->allowed_lateness_ms = strtoll(c = end, &end, 10);
                        sc->session_gap_ms = strtoll(c = end, &end, 10);
                        sc->idle_ttl_ms = strtoll(c = end, &end, 10);
                        sc->max_users = strtoull(c = end, &end, 10);
                        bad |= end == c;
                } else if (!strncmp(line, "labeler_conf ", 13)) {
                        bad |= sscanf(line + 13,
                                      "%zu %zu %" SCNd64 " %" SCNd64
                                      " %zu %zu",
                                      &lc->dim, &lc->n_ids, &lc->horizon_ms,
                                      &lc->session_gap_ms, &lc->max_pending,
                                      &lc->max_pending_per_user) != 6;
                } else if (!strncmp(line, "engine_bytes ", 13)) {
                        bad |= sscanf(line + 13, "%" SCNu64,
                                      &info->engine_bytes) != 1;
                } else if (!strncmp(line, "model_bytes ", 12)) {
                        bad |= sscanf(line + 12, "%" SCNu64,
                                      &info->model_bytes) != 1;
                } else if (!strncmp(line, "pv_bytes ", 9)) {
                        bad |= sscanf(line + 9, "%" SCNu64,
                                      &info->pv_bytes) != 1;
                        have_pv = 1;
                } else if (!strncmp(line, "partitions ", 11)) {
                        bad |= sscanf(line + 11, "%zu", &want_parts) != 1;
                } else if (!strncmp(line, "partition ", 10)) {
                        if (info->n_parts == cap) {
                                cap = cap ? 2 * cap : 16;
                                info->parts = itd_xrealloc(
                                    info->parts, cap * sizeof *info->parts);
                        }
                        itd_cut_part_t *p = &info->parts[info->n_parts++];
                        int part = -1;
                        bad |= sscanf(line + 10,
                                      "%d next_offset %" SCNd64
                                      " watermark_ms %" SCNd64
                                      " last_ts_ms %" SCNd64
                                      " users %" SCNu64 " pending %" SCNu64
                                      " bytes %" SCNu64,
                                      &part, &p->next_offset,
                                      &p->watermark_ms, &p->last_ts_ms,
                                      &p->users, &p->pending,
                                      &p->bytes) != 7;
                        p->partition = part;
                        /* ascending, each once, in range: the engine sizes
                         * its partition table by the largest number */
                        bad |= part < 0 || part >= ITD_CK_PARTITION_MAX ||
                               (info->n_parts > 1 &&
                                part <= info->parts[info->n_parts - 2]
                                            .partition);
                } else {
                        bad = 1;
                }
        }
        fclose(f);
        free(text);
        if (!have_crc || crc != stored) {
                itd_errf(errstr, errstr_size,
                       "corrupt manifest \"%s\": %s", path,
                       have_crc ? "CRC32C mismatch" : "truncated (no crc32c "
                                                      "line)");
                itd_cut_info_fini(info);
                return ITD_ERR_CORRUPT;
        }
        int known = magic >= 1 && magic <= MANIFEST_VERSION;
        if (!known || bad || want_parts != info->n_parts ||
            (magic >= 2 && (!have_pv || !info->pv_bytes))) {
                itd_errf(errstr, errstr_size,
                       "corrupt manifest \"%s\": %s", path,
                       !known ? "unknown format version"
                              : "malformed line");
                itd_cut_info_fini(info);
                return ITD_ERR_CORRUPT;
        }
        return ITD_OK;
}

/* ------------------------------------------------------------ opening */

itd_ckdir_t *itd_ckdir_open(const char *dir, const itd_engine_t *eng,
                            const char *topic, size_t keep, int64_t pause_ms,
                            char *errstr, size_t errstr_size) {
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
        itd_ckdir_t *cd = itd_xcalloc(1, sizeof *cd);
        cd->dir = itd_xmalloc(strlen(dir) + 1);
        memcpy(cd->dir, dir, strlen(dir) + 1);
        itd_strlcpy(cd->topic, topic, sizeof cd->topic);
        cd->keep = keep < 2 ? 2 : keep;
        cd->pause_ms = pause_ms;
        cd->err_fd = -1;
        cd->spec_hash = itd_ckdir_feature_spec(&itd_engine_partition_conf(eng)->state,
                                               cd->spec, sizeof cd->spec);
        /* Unfinished cuts of an earlier life: their writer is gone (it
         * dies with its parent), so nothing else uses them. */
        uint64_t max_seq = itd_ck_remove_unfinished(dir);
        cd->next_seq = max_seq + 1;
        return cd;
}

void itd_ckdir_close(itd_ckdir_t *cd) {
        if (!cd)
                return;
        if (cd->state == ITD_CUT_WRITING) {
                char errstr[256];
                itd_ckdir_poll(cd, 1, errstr, sizeof errstr);
        }
        if (cd->err_fd >= 0)
                close(cd->err_fd);
        free(cd->damaged);
        free(cd->pos);
        free(cd->dir);
        free(cd);
}

uint64_t itd_ckdir_last_seq(const itd_ckdir_t *cd) {
        return cd->last_seq;
}

/* ------------------------------------------------------------ writing */

static void test_pause(const itd_ckdir_t *cd) {
        if (cd->pause_ms <= 0)
                return;
        struct timespec ts = {.tv_sec = cd->pause_ms / 1000,
                              .tv_nsec = (cd->pause_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

/* Writes one file with a writer callback; fsyncs; gives its size. */
typedef itd_err_t (*write_fn)(itd_engine_t *eng, int32_t p, FILE *out,
                              char *errstr, size_t errstr_size);

static itd_err_t write_file(const char *path, write_fn fn, itd_engine_t *eng,
                            int32_t p, uint64_t *bytes, char *errstr,
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
        itd_err_t err = fn(eng, p, f, why, sizeof why);
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

static itd_err_t write_part_fn(itd_engine_t *eng, int32_t p, FILE *out,
                               char *errstr, size_t errstr_size) {
        return itd_partition_write(itd_engine_partition_get(eng, p), out,
                                   errstr, errstr_size);
}

static itd_err_t write_trainer_fn(itd_engine_t *eng, int32_t p, FILE *out,
                                  char *errstr, size_t errstr_size) {
        (void)p;
        return itd_engine_write_trainer(eng, out, errstr, errstr_size);
}

static itd_err_t write_pv_fn(itd_engine_t *eng, int32_t p, FILE *out,
                             char *errstr, size_t errstr_size) {
        (void)p;
        return itd_pv_snapshot(itd_engine_pv(eng), out, errstr, errstr_size);
}

static const itd_cut_pos_t *pos_find(const itd_cut_pos_t *pos, size_t n,
                                     int32_t p) {
        for (size_t i = 0; i < n; i++)
                if (pos[i].partition == p)
                        return &pos[i];
        return NULL;
}

/* Writes the whole cut into tmpdir (made here), MANIFEST last. */
static itd_err_t write_cut(itd_ckdir_t *cd, itd_engine_t *eng,
                           const char *tmpdir, char *errstr,
                           size_t errstr_size) {
        if (mkdir(tmpdir, 0750) != 0) {
                itd_errf(errstr, errstr_size, "creating \"%s\": %s", tmpdir,
                       strerror(errno));
                return ITD_ERR_IO;
        }
        itd_cut_info_t info = {0};
        info.seq = cd->seq;
        info.created_ms = itd_now_wall_ms();
        itd_strlcpy(info.version, ITD_VERSION, sizeof info.version);
        itd_strlcpy(info.topic, cd->topic, sizeof info.topic);
        info.feature_spec_hash = cd->spec_hash;
        itd_strlcpy(info.feature_spec, cd->spec, sizeof info.feature_spec);
        info.state_conf = *&itd_engine_partition_conf(eng)->state;
        info.labeler_conf = itd_engine_partition_conf(eng)->labels;

        size_t n = itd_engine_partitions(eng, NULL, 0);
        int32_t *ps = itd_xcalloc(n ? n : 1, sizeof *ps);
        itd_engine_partitions(eng, ps, n);
        info.parts = itd_xcalloc(n ? n : 1, sizeof *info.parts);
        char path[4096], name[64];
        itd_err_t err = ITD_OK;
        for (size_t i = 0; i < n && !err; i++) {
                const itd_cut_pos_t *pp = pos_find(cd->pos, cd->n_pos, ps[i]);
                if (!pp)
                        continue;
                itd_cut_part_t *cp = &info.parts[info.n_parts++];
                itd_partition_info_t pi;
                itd_partition_info(itd_engine_partition_get(eng, ps[i]), &pi);
                cp->partition = ps[i];
                cp->next_offset = pp->next_offset;
                cp->watermark_ms = pi.watermark_ms;
                cp->last_ts_ms = pi.last_ts_ms;
                cp->users = pi.users;
                cp->pending = pi.pending;
                snprintf(name, sizeof name, "part-%d.snap", (int)ps[i]);
                path_join(path, sizeof path, tmpdir, name);
                err = write_file(path, write_part_fn, eng, ps[i], &cp->bytes,
                                 errstr, errstr_size);
                test_pause(cd);
        }
        if (!err) {
                path_join(path, sizeof path, tmpdir, "engine.bin");
                err = write_file(path, write_trainer_fn, eng, 0,
                                 &info.engine_bytes, errstr, errstr_size);
        }
        if (!err) {
                path_join(path, sizeof path, tmpdir, "pv.bin");
                err = write_file(path, write_pv_fn, eng, 0, &info.pv_bytes,
                                 errstr, errstr_size);
        }
        if (!err) {
                path_join(path, sizeof path, tmpdir, "model.ckpt");
                itd_ckpt_meta_t meta = {.feature_spec_hash = cd->spec_hash,
                                        .created_ms = info.created_ms};
                err = itd_model_save(itd_engine_model(eng), path, &meta,
                                     errstr, errstr_size);
                struct stat sb;
                if (!err && stat(path, &sb) == 0)
                        info.model_bytes = (uint64_t)sb.st_size;
                test_pause(cd);
        }
        if (!err)
                err = write_manifest(tmpdir, &info, errstr, errstr_size);
        if (!err && fsync_path(tmpdir) != 0) {
                itd_errf(errstr, errstr_size, "fsync \"%s\": %s", tmpdir,
                       strerror(errno));
                err = ITD_ERR_IO;
        }
        free(ps);
        free(info.parts);
        return err;
}

itd_err_t itd_ckdir_cut(itd_ckdir_t *cd, itd_engine_t *eng,
                        const itd_cut_pos_t *pos, size_t n_pos,
                        int background, char *errstr, size_t errstr_size) {
        if (cd->state != ITD_CUT_IDLE) {
                itd_errf(errstr, errstr_size, "a checkpoint is in progress");
                return ITD_ERR_FULL;
        }
        cd->seq = cd->next_seq++;
        free(cd->pos);
        cd->pos = itd_xcalloc(n_pos ? n_pos : 1, sizeof *cd->pos);
        memcpy(cd->pos, pos, n_pos * sizeof *pos);
        cd->n_pos = n_pos;
        char tmpdir[4096];
        cut_name(tmpdir, sizeof tmpdir, cd->dir, cd->seq, 1);
        if (!background) {
                itd_err_t err = write_cut(cd, eng, tmpdir, errstr,
                                          errstr_size);
                if (err) {
                        itd_ck_remove_tree(tmpdir);
                        cd->state = ITD_CUT_IDLE;
                        return err;
                }
                cd->state = ITD_CUT_WRITTEN;
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
                itd_err_t err = write_cut(cd, eng, tmpdir, why, sizeof why);
                if (err) {
                        ssize_t w = write(fds[1], why, strlen(why));
                        (void)w;
                }
                _exit(err ? 1 : 0);
        }
        close(fds[1]);
        cd->err_fd = fds[0];
        cd->child = pid;
        cd->state = ITD_CUT_WRITING;
        return ITD_OK;
}

itd_cut_state_t itd_ckdir_poll(itd_ckdir_t *cd, int wait, char *errstr,
                               size_t errstr_size) {
        if (cd->state != ITD_CUT_WRITING)
                return cd->state;
        int status;
        pid_t r;
        while ((r = waitpid(cd->child, &status, wait ? 0 : WNOHANG)) < 0 &&
               errno == EINTR)
                ;
        if (r == 0)
                return ITD_CUT_WRITING;
        char why[1024] = "";
        ssize_t got = read(cd->err_fd, why, sizeof why - 1);
        why[got > 0 ? got : 0] = '\0';
        close(cd->err_fd);
        cd->err_fd = -1;
        cd->child = 0;
        if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                cd->state = ITD_CUT_WRITTEN;
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
        cut_name(tmpdir, sizeof tmpdir, cd->dir, cd->seq, 1);
        itd_ck_remove_tree(tmpdir);
        cd->state = ITD_CUT_IDLE;
        return ITD_CUT_FAILED;
}

const itd_cut_pos_t *itd_ckdir_pending(const itd_ckdir_t *cd, size_t *n) {
        if (cd->state == ITD_CUT_IDLE) {
                *n = 0;
                return NULL;
        }
        *n = cd->n_pos;
        return cd->pos;
}

void itd_ckdir_abandon(itd_ckdir_t *cd) {
        if (cd->state == ITD_CUT_IDLE)
                return;
        if (cd->state == ITD_CUT_WRITING) {
                kill(cd->child, SIGKILL);
                char errstr[64];
                itd_ckdir_poll(cd, 1, errstr, sizeof errstr);
        }
        char tmpdir[4096];
        cut_name(tmpdir, sizeof tmpdir, cd->dir, cd->seq, 1);
        itd_ck_remove_tree(tmpdir);
        cd->state = ITD_CUT_IDLE;
}

itd_err_t itd_ckdir_publish(itd_ckdir_t *cd, char *errstr,
                            size_t errstr_size) {
        if (cd->state != ITD_CUT_WRITTEN) {
                itd_errf(errstr, errstr_size, "no written checkpoint");
                return ITD_ERR_ARG;
        }
        char tmpdir[4096], final[4096];
        cut_name(tmpdir, sizeof tmpdir, cd->dir, cd->seq, 1);
        cut_name(final, sizeof final, cd->dir, cd->seq, 0);
        cd->state = ITD_CUT_IDLE;
        if (rename(tmpdir, final) != 0 || fsync_path(cd->dir) != 0) {
                itd_errf(errstr, errstr_size, "publishing \"%s\": %s", final,
                       strerror(errno));
                itd_ck_remove_tree(tmpdir);
                return ITD_ERR_IO;
        }
        cd->last_seq = cd->seq;
        /* Only now, with a newer complete cut on disk, may old ones go. */
        uint64_t *seqs;
        size_t n = list_seqs(cd->dir, &seqs, NULL);
        for (size_t i = cd->keep; i < n; i++) {
                char old[4096];
                cut_name(old, sizeof old, cd->dir, seqs[i], 0);
                itd_ck_remove_tree(old);
        }
        free(seqs);
        return ITD_OK;
}

/* ---------------------------------------------------------- restoring */

/* A file of the cut, opened as a stream when it is a regular file of
 * exactly want bytes (at most max_bytes); NULL with errstr otherwise. */
static FILE *open_cut_file(const char *path, uint64_t want,
                           uint64_t max_bytes, char *errstr,
                           size_t errstr_size) {
        int fd = itd_ck_open_regular(path, want, max_bytes, NULL, errstr,
                                     errstr_size);
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
 * the cut's own, the trigger table bounded only by its own header. */
static itd_err_t read_part(const char *path, const itd_cut_part_t *cp,
                           const itd_engine_t *eng,
                           const itd_cut_info_t *info, itd_partition_t **pt,
                           char *errstr, size_t errstr_size) {
        *pt = NULL;
        FILE *f = open_cut_file(path, cp->bytes, UINT64_MAX, errstr,
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
                snprintf(why, sizeof why, "bytes after the trigger snapshot");
                err = ITD_ERR_CORRUPT;
                itd_partition_destroy(*pt);
                *pt = NULL;
        }
        fclose(f);
        if (err)
                itd_errf(errstr, errstr_size, "\"%s\": %s", path, why);
        return err;
}

itd_err_t itd_cut_read_partition(const char *cutdir,
                                 const itd_cut_info_t *info, int32_t p,
                                 itd_partition_t **pt, char *errstr,
                                 size_t errstr_size) {
        char path[4096], name[64];
        snprintf(name, sizeof name, "part-%d.snap", (int)p);
        path_join(path, sizeof path, cutdir, name);
        for (size_t i = 0; i < info->n_parts; i++) {
                if (info->parts[i].partition != p)
                        continue;
                return read_part(path, &info->parts[i], NULL, info, pt,
                                 errstr, errstr_size);
        }
        itd_errf(errstr, errstr_size, "cut \"%s\" holds no partition %d",
               cutdir, (int)p);
        return ITD_ERR_NOT_FOUND;
}

/* Reads pv.bin into a new accumulator (its threshold is the engine's
 * business: merging into the engine's keeps the configured one). */
static itd_err_t read_pv(const char *path, uint64_t bytes, itd_pv_t **pv,
                         char *errstr, size_t errstr_size) {
        FILE *f = open_cut_file(path, bytes, ITD_CK_SMALL_FILE_MAX, errstr,
                                errstr_size);
        if (!f)
                return ITD_ERR_CORRUPT;
        char why[512];
        *pv = itd_pv_new(0.5f);
        itd_err_t err = itd_pv_restore(*pv, f, why, sizeof why);
        if (!err && fgetc(f) != EOF) {
                snprintf(why, sizeof why, "bytes after the snapshot");
                err = ITD_ERR_CORRUPT;
        }
        fclose(f);
        if (err) {
                itd_pv_destroy(*pv);
                *pv = NULL;
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

/* Tries one cut; on success everything is installed in eng. */
static itd_err_t restore_cut(itd_ckdir_t *cd, itd_engine_t *eng,
                             const char *cutdir, itd_cut_info_t *info,
                             char *errstr, size_t errstr_size) {
        itd_err_t err = itd_cut_info_read(cutdir, info, errstr, errstr_size);
        if (err)
                return err == ITD_ERR_NOT_FOUND ? ITD_ERR_CORRUPT : err;
        if (info->feature_spec_hash != cd->spec_hash) {
                itd_errf(errstr, errstr_size,
                       "\"%s\" was written for another feature spec: "
                       "0x%016" PRIx64 " (%s); this configuration has "
                       "0x%016" PRIx64 " (%s)",
                       cutdir, info->feature_spec_hash, info->feature_spec,
                       cd->spec_hash, cd->spec);
                itd_cut_info_fini(info);
                return ITD_ERR_INCOMPATIBLE;
        }
        if (strcmp(info->topic, cd->topic) != 0) {
                itd_errf(errstr, errstr_size,
                       "\"%s\" holds offsets of topic \"%s\", this "
                       "configuration consumes \"%s\"",
                       cutdir, info->topic, cd->topic);
                itd_cut_info_fini(info);
                return ITD_ERR_INCOMPATIBLE;
        }
        char path[4096], name[64];
        size_t n = info->n_parts;
        itd_partition_t **pts = itd_xcalloc(n ? n : 1, sizeof *pts);
        void *trainer = NULL;
        size_t trainer_len = 0;
        itd_pv_t *pv = NULL;

        /* Everything is read and checked before anything is installed, and
         * the model loads last (it is unchanged when its load fails). */
        path_join(path, sizeof path, cutdir, "engine.bin");
        int fd = itd_ck_open_regular(path, info->engine_bytes,
                                     ITD_CK_SMALL_FILE_MAX, NULL, errstr,
                                     errstr_size);
        err = fd < 0 ? ITD_ERR_CORRUPT : ITD_OK;
        trainer_len = (size_t)info->engine_bytes;
        if (!err && !(trainer = itd_ck_read_fd(fd, trainer_len))) {
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
        if (!err && info->pv_bytes) {
                path_join(path, sizeof path, cutdir, "pv.bin");
                err = read_pv(path, info->pv_bytes, &pv, errstr, errstr_size);
        }
        for (size_t i = 0; i < n && !err; i++) {
                snprintf(name, sizeof name, "part-%d.snap",
                         (int)info->parts[i].partition);
                path_join(path, sizeof path, cutdir, name);
                err = read_part(path, &info->parts[i], eng, info, &pts[i],
                                errstr, errstr_size);
        }
        if (!err) {
                path_join(path, sizeof path, cutdir, "model.ckpt");
                /* the model file opens itself; check what it is first */
                int mfd = itd_ck_open_regular(path, info->model_bytes,
                                              UINT64_MAX, NULL, errstr,
                                              errstr_size);
                if (mfd < 0)
                        err = ITD_ERR_CORRUPT;
                else
                        close(mfd);
        }
        if (!err) {
                itd_ckpt_meta_t expect = {.feature_spec_hash = cd->spec_hash};
                err = itd_model_load(itd_engine_model(eng), path, &expect,
                                     errstr, errstr_size);
                if (err == ITD_ERR_NOT_FOUND)
                        err = ITD_ERR_CORRUPT;
        }
        if (!err) {
                char why[64];
                itd_engine_read_trainer(eng, trainer, trainer_len, 1, why,
                                        sizeof why);
                /* Replaced, not added to: the engine may have judged
                 * examples of a newer cut that failed to load. */
                itd_pv_reset(itd_engine_pv(eng));
                if (pv)
                        itd_pv_merge(itd_engine_pv(eng), pv);
                else if (!info->pv_bytes)
                        itd_log(ITD_LOG_NOTICE, "checkpoint",
                                "checkpoint %s holds no progressive "
                                "metrics (written by an older version): "
                                "they start empty",
                                cutdir);
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
        itd_pv_destroy(pv);
        if (err)
                itd_cut_info_fini(info);
        return err;
}

itd_err_t itd_ckdir_restore(itd_ckdir_t *cd, itd_engine_t *eng,
                            itd_cut_pos_t **pos, size_t *n_pos,
                            itd_cut_info_t *info_out, char *errstr,
                            size_t errstr_size) {
        *pos = NULL;
        *n_pos = 0;
        uint64_t *seqs;
        size_t n = itd_ck_list_seqs(cd->dir, &seqs, NULL, 1);
        size_t refused = 0, damaged = 0;
        free(cd->damaged);
        cd->damaged = itd_xcalloc(n ? n : 1, sizeof *cd->damaged);
        cd->n_damaged = 0;
        char first_refusal[1024] = "";
        itd_err_t result = ITD_ERR_NOT_FOUND;
        for (size_t i = 0; i < n; i++) {
                char cutdir[4096], why[1024];
                cut_name(cutdir, sizeof cutdir, cd->dir, seqs[i], 0);
                itd_cut_info_t info;
                itd_err_t err = restore_cut(cd, eng, cutdir, &info, why,
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
                                cutdir, why,
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
                if (info_out)
                        *info_out = info;
                else
                        itd_cut_info_fini(&info);
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

size_t itd_ckdir_damaged(const itd_ckdir_t *cd) {
        return cd->n_damaged;
}

void itd_ckdir_set_aside_damaged(itd_ckdir_t *cd) {
        for (size_t i = 0; i < cd->n_damaged; i++) {
                char from[4096], to[4096];
                cut_name(from, sizeof from, cd->dir, cd->damaged[i], 0);
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
