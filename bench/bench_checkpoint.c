/*
 * bench_checkpoint.c - what a checkpoint costs at 1M users.
 *
 * Builds one partition's state with USERS users (1..20 events each,
 * P(k) ~ k^-1.5 like bench_state.c, spread over 6 days) and a labeler with
 * PENDING pending predictions (70 dense features + 12 sparse ids each, as
 * the engine keeps them), then measures:
 *
 *   pause   what the pipeline thread waits for when a background cut
 *           starts: fork() of the process holding all of it (the child
 *           exits at once; the copy-on-write cost of pages the parent then
 *           writes is paid later, spread over the next batches);
 *   write   itd_state_snapshot + itd_labeler_snapshot into a file, with
 *           fflush + fsync: what the child does, and what a cut written in
 *           place (at stop, on revoke) takes;
 *   bytes   per user of the state snapshot, per pending label of the
 *           labeler snapshot;
 *   workers with pipeline.workers 1, 2 and 4 and the default model: the
 *           model file (worker 0's replica) and workers.bin (each other
 *           worker's optimizer moments and trainer: replicas.h), bytes and
 *           write time with fsync.
 *
 * Medians of 5. Last line: one JSON object {"bench":"checkpoint",...}.
 * Run by `make bench`; USERS from argv[1] for a quick look.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include "conf_parts.h"
#include "intentd/conf.h"
#include "intentd/event.h"
#include "intentd/labeler.h"
#include "intentd/model.h"
#include "intentd/replicas.h"
#include "intentd/state.h"

#include "bench_util.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define T0_MS 1700000000000LL
#define REPS 5
#define DIM 70
#define N_IDS 12


static size_t snapshot_bytes(const itd_state_t *st, const itd_labeler_t *lb,
                             FILE *out, size_t *state_bytes) {
        char err[256];
        long t0 = ftell(out);
        if (itd_state_snapshot(st, out, err, sizeof err) != ITD_OK) {
                fprintf(stderr, "snapshot: %s\n", err);
                exit(1);
        }
        fflush(out);
        *state_bytes = (size_t)(ftell(out) - t0);
        if (itd_labeler_snapshot(lb, out, err, sizeof err) != ITD_OK) {
                fprintf(stderr, "labeler snapshot: %s\n", err);
                exit(1);
        }
        fflush(out);
        return (size_t)(ftell(out) - t0);
}

/* workers.bin of w engines of the default configuration: bytes, median
 * ms to write with fsync; *model_bytes: worker 0's model file. */
static size_t replicas_cost(size_t w, double *ms, size_t *model_bytes) {
        char err[256];
        itd_conf_t *conf = itd_conf_new();
        itd_engine_t *engs[4];
        for (size_t i = 0; i < w; i++) {
                engs[i] = itd_conf_new_engine(conf, err, sizeof err);
                if (!engs[i]) {
                        fprintf(stderr, "bench_checkpoint: %s\n", err);
                        exit(1);
                }
        }
        char path[] = "/tmp/bench_checkpoint_XXXXXX";
        int fd = mkstemp(path);
        close(fd);
        struct stat sb;
        if (itd_model_save(itd_engine_model(engs[0]), path, NULL, err,
                           sizeof err) != ITD_OK ||
            stat(path, &sb) != 0) {
                fprintf(stderr, "bench_checkpoint: %s\n", err);
                exit(1);
        }
        *model_bytes = (size_t)sb.st_size;
        double t[REPS];
        size_t bytes = 0;
        for (int r = 0; r < REPS; r++) {
                FILE *f = fopen(path, "wb");
                static char vbuf[1 << 20];
                setvbuf(f, vbuf, _IOFBF, sizeof vbuf);
                double t0 = bench_now_ms();
                if (itd_replicas_write(engs, w, f, err, sizeof err) !=
                    ITD_OK) {
                        fprintf(stderr, "bench_checkpoint: %s\n", err);
                        exit(1);
                }
                fflush(f);
                fsync(fileno(f));
                t[r] = bench_now_ms() - t0;
                bytes = (size_t)ftell(f);
                fclose(f);
        }
        unlink(path);
        *ms = bench_median(t, REPS);
        for (size_t i = 0; i < w; i++)
                itd_engine_destroy(engs[i]);
        itd_conf_destroy(conf);
        return bytes;
}

int main(int argc, char **argv) {
        size_t users = argc > 1 ? (size_t)atoll(argv[1]) : 1000000;
        size_t pending = users / 5;
        itd_state_conf_t sc = {
            .n_windows = 4,
            .window_ms = {5 * MIN_MS, HOUR_MS, DAY_MS, 7 * DAY_MS},
            .allowed_lateness_ms = 60000,
            .session_gap_ms = 30 * MIN_MS,
            .idle_ttl_ms = 30 * DAY_MS,
            .max_users = users * 2,
        };
        itd_labeler_conf_t lc = {.dim = DIM, .n_ids = N_IDS,
                                 .horizon_ms = 30 * MIN_MS,
                                 .session_gap_ms = 30 * MIN_MS,
                                 .max_pending = pending + 1,
                                 .max_pending_per_user = 256};
        char err[256];
        itd_state_t *st = itd_state_new(&sc, err, sizeof err);
        itd_labeler_t *lb = itd_labeler_new(&lc, err, sizeof err);
        if (!st || !lb) {
                fprintf(stderr, "bench_checkpoint: %s\n", err);
                return 1;
        }

        /* Users in a random order of their events over 6 days; each
         * event's time grows with its index, so the stream is in order. */
        static float x[DIM];
        static uint32_t ids[N_IDS];
        itd_event_t ev;
        memset(&ev, 0, sizeof ev);
        size_t events = 0;
        int64_t span = 6 * DAY_MS;
        for (size_t u = 0; u < users; u++) {
                int k = bench_draw_k();
                for (int j = 0; j < k; j++) {
                        uint64_t r = bench_rand();
                        ev.ts_ms = T0_MS + (int64_t)((double)span *
                                                     ((double)u + j / 20.0) /
                                                     (double)users);
                        ev.type = (itd_event_type_t)(r % 3);
                        ev.price = 10 + (double)(r % 100);
                        snprintf(ev.user_id, sizeof ev.user_id, "u%zu", u);
                        snprintf(ev.item_id, sizeof ev.item_id, "i%u",
                                 (unsigned)(r >> 20) % 100000);
                        snprintf(ev.category, sizeof ev.category, "c%u",
                                 (unsigned)(r >> 40) % 1000);
                        itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL);
                        events++;
                }
                if (u >= users - pending) {
                        uint64_t h = itd_hash_str(ev.user_id, 1);
                        itd_labeler_observe(lb, h, ev.ts_ms, ev.type);
                        itd_labeler_add(lb, h, ev.ts_ms, 0, x, ids, 0.1f, NULL);
                }
        }
        itd_state_stats_t ss;
        itd_state_stats(st, &ss);
        fprintf(stderr, "built %" PRIu64 " users from %zu events, %zu "
                "pending labels; state %.0f MiB\n",
                ss.users, events, pending, (double)ss.bytes / 1048576.0);

        double t_fork[REPS], t_write[REPS];
        size_t total = 0, state_bytes = 0;
        for (int r = 0; r < REPS; r++) {
                double t0 = bench_now_ms();
                pid_t pid = fork();
                if (pid == 0)
                        _exit(0);
                t_fork[r] = bench_now_ms() - t0;
                waitpid(pid, NULL, 0);

                char path[] = "/tmp/bench_checkpoint_XXXXXX";
                int fd = mkstemp(path);
                FILE *f = fdopen(fd, "wb");
                static char vbuf[1 << 20];
                setvbuf(f, vbuf, _IOFBF, sizeof vbuf);
                t0 = bench_now_ms();
                total = snapshot_bytes(st, lb, f, &state_bytes);
                fsync(fileno(f));
                t_write[r] = bench_now_ms() - t0;
                fclose(f);
                unlink(path);
        }
        double pause = bench_median(t_fork, REPS);
        double wr = bench_median(t_write, REPS);
        double per_user = (double)state_bytes / (double)ss.users;
        double per_pending = (double)(total - state_bytes) / (double)pending;
        printf("users %" PRIu64 ", pending labels %zu\n", ss.users, pending);
        printf("pause (fork)            %8.1f ms\n", pause);
        printf("snapshot to file+fsync  %8.1f ms\n", wr);
        printf("state snapshot          %8.1f bytes/user (%.0f MiB)\n",
               per_user, (double)state_bytes / 1048576.0);
        printf("labeler snapshot        %8.1f bytes/pending label\n",
               per_pending);
        itd_state_destroy(st);
        itd_labeler_destroy(lb);

        static const size_t ws[] = {1, 2, 4};
        size_t wb[3], model = 0;
        double wms[3];
        for (size_t i = 0; i < 3; i++) {
                wb[i] = replicas_cost(ws[i], &wms[i], &model);
                printf("workers %zu: model.ckpt %.1f MB, workers.bin %.2f MB "
                       "written+fsync in %.1f ms\n",
                       ws[i], (double)model / 1e6, (double)wb[i] / 1e6,
                       wms[i]);
        }
        printf("{\"bench\":\"checkpoint\",\"users\":%" PRIu64
               ",\"pending\":%zu,\"pause_fork_ms\":%.2f,"
               "\"snapshot_file_fsync_ms\":%.1f,"
               "\"state_bytes_per_user\":%.1f,"
               "\"labeler_bytes_per_pending\":%.1f,\"model_bytes\":%zu,"
               "\"workers_bin_bytes_w1\":%zu,\"workers_bin_bytes_w2\":%zu,"
               "\"workers_bin_bytes_w4\":%zu,\"workers_bin_ms_w2\":%.1f,"
               "\"workers_bin_ms_w4\":%.1f}\n",
               ss.users, pending, pause, wr, per_user, per_pending, model,
               wb[0], wb[1], wb[2], wms[1], wms[2]);
        return 0;
}
