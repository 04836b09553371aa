/*
 * bench_changelog.c - what a state changelog snapshot costs
 * (topics.changelog, docs/OPERATIONS.md "Sizing the changelog").
 *
 * One engine with the shipped defaults but a small model (the model is not
 * part of a partition snapshot; a small one only makes building the state
 * quicker) handles USERS users' events in partition 0: 1..20 events each,
 * P(k) ~ k^-1.5 like bench_state.c, spread over 6 hours so that labels are
 * still pending at the end. Then, medians of 5:
 *
 *   encode   itd_changelog_encode_with of the partition into records of
 *            1 MB (copied out, as the daemon keeps them until they are
 *            sent), its scratch kept between encodes as the daemon keeps
 *            it (the first encode, which grows it, is in the median only
 *            as one of 5): the pause of the pipeline thread per snapshot;
 *   restore  every record added to a restore, and the partition built from
 *            it: what a new owner spends after reading the topic;
 *   bytes    of the snapshot, per user and in all.
 *
 * Last line: one JSON object {"bench":"changelog",...}. Run by `make
 * bench`; USERS from argv[1] for a quick look.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "intentd/changelog.h"
#include "intentd/conf.h"
#include "intentd/engine.h"
#include "intentd/event.h"

#include "bench_util.h"
#include "conf_parts.h"

#define REPS 5
#define HOUR_MS 3600000LL
#define T0_MS 1700000000000LL
#define RECORD_BYTES 1000000


typedef struct recs_s {
        uint8_t **buf;
        size_t *len;
        size_t n, cap, bytes;
} recs_t;

static itd_err_t keep(int32_t partition, uint32_t part, const void *buf,
                      size_t len, void *arg) {
        (void)partition;
        (void)part;
        recs_t *r = arg;
        if (r->n == r->cap) {
                r->cap = r->cap ? 2 * r->cap : 16;
                r->buf = realloc(r->buf, r->cap * sizeof *r->buf);
                r->len = realloc(r->len, r->cap * sizeof *r->len);
                if (!r->buf || !r->len)
                        abort();
        }
        r->buf[r->n] = malloc(len);
        if (!r->buf[r->n])
                abort();
        memcpy(r->buf[r->n], buf, len);
        r->len[r->n++] = len;
        r->bytes += len;
        return ITD_OK;
}

static void recs_clear(recs_t *r) {
        for (size_t i = 0; i < r->n; i++)
                free(r->buf[i]);
        r->n = r->bytes = 0;
}

static const itd_event_type_t types[] = {
    ITD_EV_VIEW, ITD_EV_VIEW, ITD_EV_VIEW, ITD_EV_SEARCH, ITD_EV_ADD_TO_CART,
    ITD_EV_PURCHASE};

int main(int argc, char **argv) {
        size_t users = argc > 1 ? (size_t)atoll(argv[1]) : 100000;
        char err[512];
        itd_conf_t *conf = itd_conf_new();
        if (itd_conf_set(conf, "model.hidden", "16", err, sizeof err) ||
            itd_conf_set(conf, "model.embedding.buckets", "1024", err,
                         sizeof err)) {
                fprintf(stderr, "bench_changelog: %s\n", err);
                return 1;
        }
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        if (!eng) {
                fprintf(stderr, "bench_changelog: %s\n", err);
                return 1;
        }
        size_t max_batch = itd_engine_max_batch(eng);
        itd_row_t *rows = calloc(max_batch, sizeof *rows);
        if (!rows)
                abort();

        /* Users in turn, each user's events together; event times grow
         * with the user index, so the stream is in order. */
        size_t events = 0, k = 0;
        int64_t span = 6 * HOUR_MS;
        double t_build = bench_now_ms();
        for (size_t u = 0; u < users; u++) {
                int n = bench_draw_k();
                for (int j = 0; j < n; j++) {
                        uint64_t r = bench_rand();
                        itd_row_t *row = &rows[k++];
                        itd_event_clear(&row->ev);
                        row->ev.ts_ms =
                            T0_MS + (int64_t)((double)span *
                                              ((double)u + j / 20.0) /
                                              (double)users);
                        row->ev.type = types[r % 6];
                        row->ev.price = 10 + (double)(r % 100);
                        snprintf(row->ev.user_id, sizeof row->ev.user_id,
                                 "u%zu", u);
                        snprintf(row->ev.item_id, sizeof row->ev.item_id,
                                 "i%u", (unsigned)(r >> 20) % 100000);
                        snprintf(row->ev.category, sizeof row->ev.category,
                                 "c%u", (unsigned)(r >> 40) % 1000);
                        itd_row_decoded(row, 0, (int64_t)events++);
                        if (k == max_batch ||
                            (u + 1 == users && j + 1 == n)) {
                                if (itd_engine_process(eng, "events", rows,
                                                       k, T0_MS + span, err,
                                                       sizeof err)) {
                                        fprintf(stderr,
                                                "bench_changelog: %s\n", err);
                                        return 1;
                                }
                                k = 0;
                        }
                }
        }
        t_build = bench_now_ms() - t_build;
        const itd_partition_t *pt = itd_engine_partition_get(eng, 0);
        itd_partition_info_t info;
        itd_partition_info(pt, &info);
        fprintf(stderr,
                "built %" PRIu64 " users, %" PRIu64 " pending labels from "
                "%zu events in %.1f s\n",
                info.users, info.pending, events, t_build / 1000.0);

        double t_enc[REPS], t_res[REPS];
        recs_t recs = {0};
        /* kept from one encode to the next, as the daemon keeps it */
        itd_changelog_scratch_t scratch = {0};
        for (int rep = 0; rep < REPS; rep++) {
                recs_clear(&recs);
                double t0 = bench_now_ms();
                if (itd_changelog_encode_with(&scratch, pt, (int64_t)events,
                                              1, RECORD_BYTES, keep, &recs,
                                              NULL, err, sizeof err)) {
                        fprintf(stderr, "bench_changelog: %s\n", err);
                        return 1;
                }
                t_enc[rep] = bench_now_ms() - t0;

                t0 = bench_now_ms();
                itd_changelog_restore_t *r = itd_changelog_restore_new(0);
                for (size_t i = 0; i < recs.n; i++)
                        if (itd_changelog_restore_add(r, recs.buf[i],
                                                      recs.len[i], err,
                                                      sizeof err)) {
                                fprintf(stderr, "bench_changelog: %s\n", err);
                                return 1;
                        }
                itd_partition_t *back = NULL;
                int64_t next;
                if (itd_changelog_restore_take(r,
                                               itd_engine_partition_conf(eng),
                                               T0_MS, &back, &next, err,
                                               sizeof err)) {
                        fprintf(stderr, "bench_changelog: %s\n", err);
                        return 1;
                }
                t_res[rep] = bench_now_ms() - t0;
                itd_partition_destroy(back);
                itd_changelog_restore_destroy(r);
        }
        double enc_first = t_enc[0]; /* bench_median sorts */
        double enc = bench_median(t_enc, REPS);
        double res = bench_median(t_res, REPS);
        double per_user = (double)recs.bytes / (double)info.users;
        printf("users %" PRIu64 ", pending labels %" PRIu64 "\n", info.users,
               info.pending);
        printf("snapshot                %8.1f MiB in %zu records "
               "(%.0f bytes/user)\n",
               (double)recs.bytes / 1048576.0, recs.n, per_user);
        printf("encode (pipeline pause) %8.1f ms (the first, growing the "
               "scratch: %.1f ms)\n",
               enc, enc_first);
        printf("restore (add + build)   %8.1f ms\n", res);
        printf("{\"bench\":\"changelog\",\"users\":%" PRIu64
               ",\"pending\":%" PRIu64 ",\"snapshot_bytes\":%zu,"
               "\"records\":%zu,\"bytes_per_user\":%.1f,"
               "\"encode_ms\":%.1f,\"encode_first_ms\":%.1f,"
               "\"restore_ms\":%.1f}\n",
               info.users, info.pending, recs.bytes, recs.n, per_user, enc,
               enc_first, res);
        recs_clear(&recs);
        itd_changelog_scratch_free(&scratch);
        free(recs.buf);
        free(recs.len);
        free(rows);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
        return 0;
}
