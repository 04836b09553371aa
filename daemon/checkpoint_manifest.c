/*
 * checkpoint_manifest.c - a checkpoint's MANIFEST (written last, read first:
 * what the checkpoint holds, for which topic, partitions and positions, each
 * file's size and CRC32C) and the feature spec hash that says whether a
 * checkpoint fits this configuration (checkpoint.h, docs/CHECKPOINTS.md).
 */
#include "checkpoint.h"
#include "checkpoint_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "intentd/conf.h"
#include "intentd/crc32c.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/snapshot.h"

/* ------------------------------------------------------- feature spec */

uint64_t itd_checkpoint_dir_feature_spec(const itd_state_conf_t *sc, char *desc,
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

/* Text, one "key value..." per line, so `cat MANIFEST` explains a checkpoint;
 * the last line is "crc32c 0x........" of every byte before it. */
itd_err_t itd_checkpoint_write_manifest(const char *dir,
                                        const itd_checkpoint_info_t *in,
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
        fprintf(m, "eval_bytes %" PRIu64 "\n", in->eval_bytes);
        fprintf(m, "workers_bytes %" PRIu64 "\n", in->workers_bytes);
        fprintf(m, "partitions %zu\n", in->n_parts);
        for (size_t i = 0; i < in->n_parts; i++) {
                const itd_checkpoint_part_t *p = &in->parts[i];
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
        itd_checkpoint_path_join(tmp, sizeof tmp, dir, MANIFEST ".tmp");
        itd_checkpoint_path_join(path, sizeof path, dir, MANIFEST);
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

void itd_checkpoint_info_fini(itd_checkpoint_info_t *info) {
        free(info->parts);
        memset(info, 0, sizeof *info);
}

itd_err_t itd_checkpoint_info_read(const char *cp_dir,
                                   itd_checkpoint_info_t *info, char *errstr,
                                   size_t errstr_size) {
        memset(info, 0, sizeof *info);
        char path[4096];
        itd_checkpoint_path_join(path, sizeof path, cp_dir, MANIFEST);
        /* A regular file of bounded size, read whole: a MANIFEST that is
         * a FIFO, a device or a link to /dev/zero must not block or spin
         * (that happened before any signal handling could help). */
        uint64_t len;
        int fd = itd_checkpoint_open_regular(path, UINT64_MAX,
                                             ITD_CHECKPOINT_MANIFEST_MAX, &len,
                                             errstr, errstr_size);
        if (fd < 0)
                return errno == ENOENT ? ITD_ERR_NOT_FOUND : ITD_ERR_CORRUPT;
        char *text = itd_checkpoint_read_fd(fd, (size_t)len);
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
        int have_crc = 0, bad = 0, magic = 0, have_eval = 0, have_wk = 0;
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
                } else if (!strncmp(line, "eval_bytes ", 11)) {
                        bad |= sscanf(line + 11, "%" SCNu64,
                                      &info->eval_bytes) != 1;
                        have_eval = 3; /* the line of version 3 */
                } else if (!strncmp(line, "pv_bytes ", 9)) {
                        bad |= sscanf(line + 9, "%" SCNu64,
                                      &info->eval_bytes) != 1;
                        have_eval = 2; /* and of version 2 */
                } else if (!strncmp(line, "workers_bytes ", 14)) {
                        bad |= sscanf(line + 14, "%" SCNu64,
                                      &info->workers_bytes) != 1;
                        have_wk = 1;
                } else if (!strncmp(line, "partitions ", 11)) {
                        bad |= sscanf(line + 11, "%zu", &want_parts) != 1;
                } else if (!strncmp(line, "partition ", 10)) {
                        if (info->n_parts == cap) {
                                cap = cap ? 2 * cap : 16;
                                info->parts = itd_xrealloc(
                                    info->parts, cap * sizeof *info->parts);
                        }
                        itd_checkpoint_part_t *p =
                            &info->parts[info->n_parts++];
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
                        bad |=
                            part < 0 || part >= ITD_CHECKPOINT_PARTITION_MAX ||
                            (info->n_parts > 1 &&
                             part <= info->parts[info->n_parts - 2].partition);
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
                itd_checkpoint_info_fini(info);
                return ITD_ERR_CORRUPT;
        }
        int known = magic >= 1 && magic <= MANIFEST_VERSION;
        if (!known || bad || want_parts != info->n_parts ||
            (magic >= 2 &&
             (have_eval != (magic < 3 ? magic : 3) || !info->eval_bytes)) ||
            (magic >= 4 && (!have_wk || !info->workers_bytes))) {
                itd_errf(errstr, errstr_size,
                       "corrupt manifest \"%s\": %s", path,
                       !known ? "unknown format version"
                              : "malformed line");
                itd_checkpoint_info_fini(info);
                return ITD_ERR_CORRUPT;
        }
        info->eval_file = magic == 2 ? "pv.bin" : "eval.bin";
        return ITD_OK;
}
