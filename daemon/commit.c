/*
 * commit.c - what `intentd run` commits, and when. Without checkpoints the
 * acknowledged prefix of each partition is stored for auto-commit. With
 * checkpoints (docs/CHECKPOINTS.md) it is only noted: every
 * checkpoint.interval a checkpoint of the engine is written in the background,
 * published once every output before its positions is acknowledged, and
 * only then are exactly its positions committed; on revoke and at stop a
 * checkpoint is written in place; at start the newest usable checkpoint is
 * restored and each assigned partition resumes at its position.
 */
#include "run_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stores, for every partition whose acknowledged prefix moved, the
 * position after it; auto-commit (or the final commit) sends it. With
 * checkpoints or the state changelog it is only noted: commits follow
 * complete checkpoints or acknowledged changelog snapshots. */
void itd_commit_store(loop_t *lp) {
        int32_t n = itd_offsets_partitions(lp->offsets);
        rd_kafka_topic_partition_list_t *tp = NULL;
        for (int32_t p = 0; p < n; p++) {
                int64_t next;
                if (!itd_offsets_advance(lp->offsets, p, &next) || next < 0)
                        continue;
                ppos_t *pp = ppos(lp, p);
                if (lp->ck || lp->sl) {
                        if (next > pp->acked)
                                pp->acked = next;
                        continue;
                }
                /* Events from here on were never applied: storing past
                 * them would skip them after a restart. */
                if (pp->held)
                        continue;
                if (!tp)
                        tp = rd_kafka_topic_partition_list_new(8);
                rd_kafka_topic_partition_list_add(tp, lp->conf->topic_events, p)
                    ->offset = next;
        }
        if (!tp)
                return;
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(lp->consumer, tp);
        /* A partition revoked meanwhile refuses the store; its new owner
         * re-processes from the last commit (at-least-once). */
        if (err && err != RD_KAFKA_RESP_ERR__STATE)
                itd_log(ITD_LOG_WARNING, "kafka", "offset store failed: %s",
                        rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(tp);
}

/* Positions of every partition the engine holds (caller frees). */
static itd_checkpoint_pos_t *checkpoint_positions(loop_t *lp, size_t *n_out) {
        int32_t *ps;
        size_t n = itd_run_partitions(lp, &ps);
        itd_checkpoint_pos_t *pos = itd_xcalloc(n ? n : 1, sizeof *pos);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                const ppos_t *pp = ppos(lp, ps[i]);
                if (pp->applied < 0)
                        continue;
                pos[k++] = (itd_checkpoint_pos_t){ps[i], pp->applied};
        }
        free(ps);
        *n_out = k;
        return pos;
}

/* 1 when the last complete checkpoint still holds the engine as it is, at
 * positions pos[0..n) (checkpoint_positions): nothing consumed since it
 * was taken, no erasure it misses, and the same partitions at the same
 * positions. A rebalance changes what is held without consuming anything:
 * a partition restored from the changelog at the end of its events, or
 * one revoked, must not leave the checkpoint as it was. */
static int checkpoint_stands(loop_t *lp, const itd_checkpoint_pos_t *pos,
                             size_t n) {
        if (lp->res->consumed != lp->consumed_at_checkpoint ||
            itd_erasure_wants_checkpoint(lp->erase))
                return 0;
        size_t n_last;
        const itd_checkpoint_pos_t *last =
            itd_checkpoint_dir_last_pos(lp->ck, &n_last);
        if (n_last != n)
                return 0;
        /* both in ascending partition order */
        for (size_t i = 0; i < n; i++)
                if (pos[i].partition != last[i].partition ||
                    pos[i].next_offset != last[i].next_offset)
                        return 0;
        return 1;
}

/* 1 when every output before the checkpoint's positions is acknowledged. */
static int checkpoint_covered(loop_t *lp) {
        size_t n;
        const itd_checkpoint_pos_t *pos =
            itd_checkpoint_dir_pending(lp->ck, &n);
        for (size_t i = 0; i < n; i++)
                if (ppos(lp, pos[i].partition)->acked < pos[i].next_offset)
                        return 0;
        return 1;
}

/* Publishes the written checkpoint and commits its positions of the partitions
 * still assigned; sync at stop and on revoke. */
static void publish_checkpoint(loop_t *lp, int sync) {
        char errstr[1024];
        size_t n;
        const itd_checkpoint_pos_t *pos =
            itd_checkpoint_dir_pending(lp->ck, &n);
        rd_kafka_topic_partition_list_t *tp =
            rd_kafka_topic_partition_list_new(n ? (int)n : 1);
        for (size_t i = 0; i < n; i++)
                if (ppos(lp, pos[i].partition)->assigned)
                        rd_kafka_topic_partition_list_add(
                            tp, lp->conf->topic_events, pos[i].partition)
                            ->offset = pos[i].next_offset;
        if (itd_checkpoint_dir_publish(lp->ck, errstr, sizeof errstr) !=
            ITD_OK) {
                itd_log(ITD_LOG_ERR, "checkpoint", "%s", errstr);
                rd_kafka_topic_partition_list_destroy(tp);
                return;
        }
        itd_prom_set(lp->m, ITD_M_CHECKPOINT_AGE_SECONDS, NULL, 0);
        lp->consumed_at_checkpoint = lp->consumed_at_pending;
        itd_erasure_checkpoint_published(lp->erase,
                                  itd_checkpoint_dir_last_seq(lp->ck));
        itd_log(ITD_LOG_INFO, "checkpoint",
                "checkpoint %llu complete "
                "(%zu partitions)",
                (unsigned long long)itd_checkpoint_dir_last_seq(lp->ck), n);
        /* With the state changelog, commits follow its snapshots instead
         * (statelog.c): a committed offset must be covered by the
         * changelog, which a new owner on another host restores from. */
        if (tp->cnt > 0 && !lp->sl) {
                rd_kafka_resp_err_t err = rd_kafka_commit(lp->consumer, tp,
                                                          !sync);
                if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                        itd_log(ITD_LOG_WARNING, "kafka",
                                "commit of checkpoint %llu: %s",
                                (unsigned long long)itd_checkpoint_dir_last_seq(
                                    lp->ck),
                                rd_kafka_err2str(err));
        }
        rd_kafka_topic_partition_list_destroy(tp);
}

/* Main loop: finishes the checkpoint in progress, or starts one when due. */
void itd_commit_tick(loop_t *lp) {
        char errstr[1024];
        itd_checkpoint_state_t cs =
            itd_checkpoint_dir_poll(lp->ck, 0, errstr, sizeof errstr);
        if (cs == ITD_CHECKPOINT_FAILED)
                itd_log(ITD_LOG_ERR, "checkpoint", "%s", errstr);
        if (cs == ITD_CHECKPOINT_WRITTEN && checkpoint_covered(lp))
                publish_checkpoint(lp, 0);
        if (cs == ITD_CHECKPOINT_WRITING || cs == ITD_CHECKPOINT_WRITTEN)
                return;
        int64_t now = itd_now_mono_ms();
        if (now - lp->last_checkpoint_ms < lp->conf->checkpoint_interval_ms)
                return;
        lp->last_checkpoint_ms = now;
        size_t n;
        itd_checkpoint_pos_t *pos = checkpoint_positions(lp, &n);
        int stands = checkpoint_stands(lp, pos, n);
        free(pos);
        if (stands)
                return;
        /* Events waiting for their schema are settled first: a checkpoint holds
         * every event before its positions, in the engine or
         * dead-lettered. */
        itd_decode_release_parked(lp, 1);
        pos = checkpoint_positions(lp, &n);
        int64_t t0 = itd_now_mono_ms();
        lp->consumed_at_pending = lp->res->consumed;
        itd_erasure_checkpoint_started(lp->erase);
        itd_run_sync_workers(lp);
        if (itd_checkpoint_dir_write(lp->ck, lp->engs, lp->n_engs, pos, n, 1,
                                     errstr, sizeof errstr) != ITD_OK)
                itd_log(ITD_LOG_ERR, "checkpoint", "%s", errstr);
        itd_log(ITD_LOG_DEBUG, "checkpoint",
                "checkpoint started: %lld ms pause",
                (long long)(itd_now_mono_ms() - t0));
        free(pos);
}

/*
 * A checkpoint in place, now: at stop and on revoke, after the outputs were
 * drained. A background checkpoint still running is finished first (it is older
 * and may be published on its own). If some output is still unacknowledged
 * no checkpoint is written: the last complete one stands, and the events after
 * it are consumed again after a restart.
 */
int itd_commit_now(loop_t *lp, const char *why) {
        char errstr[1024];
        itd_commit_store(lp);
        itd_checkpoint_state_t cs =
            itd_checkpoint_dir_poll(lp->ck, 1, errstr, sizeof errstr);
        if (cs == ITD_CHECKPOINT_FAILED)
                itd_log(ITD_LOG_ERR, "checkpoint", "%s", errstr);
        if (cs == ITD_CHECKPOINT_WRITTEN) {
                if (checkpoint_covered(lp))
                        publish_checkpoint(lp, 1);
                else
                        itd_checkpoint_dir_abandon(lp->ck);
        }
        size_t n;
        itd_checkpoint_pos_t *pos = checkpoint_positions(lp, &n);
        /* The last complete checkpoint already holds the engine as it is. */
        if (itd_checkpoint_dir_last_seq(lp->ck) > 0 &&
            checkpoint_stands(lp, pos, n)) {
                free(pos);
                return 1;
        }
        for (size_t i = 0; i < n; i++) {
                if (ppos(lp, pos[i].partition)->acked < pos[i].next_offset) {
                        itd_log(ITD_LOG_ERR, "checkpoint",
                                "no checkpoint %s: outputs of partition %d "
                                "below offset %lld are unacknowledged; "
                                "events after checkpoint %llu will be "
                                "consumed again",
                                why, (int)pos[i].partition,
                                (long long)pos[i].next_offset,
                                (unsigned long long)itd_checkpoint_dir_last_seq(
                                    lp->ck));
                        free(pos);
                        return 0;
                }
        }
        int64_t t0 = itd_now_mono_ms();
        int ok = 0;
        lp->consumed_at_pending = lp->res->consumed;
        itd_erasure_checkpoint_started(lp->erase);
        itd_run_sync_workers(lp);
        if (itd_checkpoint_dir_write(lp->ck, lp->engs, lp->n_engs, pos, n, 0,
                                     errstr, sizeof errstr) != ITD_OK) {
                itd_log(ITD_LOG_ERR, "checkpoint", "%s: %s", why, errstr);
        } else {
                ok = 1;
                publish_checkpoint(lp, 1);
                itd_log(ITD_LOG_NOTICE, "checkpoint",
                        "checkpoint %llu written %s in %lld ms",
                        (unsigned long long)itd_checkpoint_dir_last_seq(lp->ck),
                        why, (long long)(itd_now_mono_ms() - t0));
        }
        free(pos);
        return ok;
}

/*
 * Before an assignment takes effect: each partition the engine holds
 * (restored at start, or parked by an eager revoke) resumes at its
 * checkpointed position, not the group's committed one; the others start
 * empty from the committed offset. An eager assignment is the whole new
 * set, so held partitions missing from it now belong to someone else.
 */
void itd_commit_assign(loop_t *lp,
                       rd_kafka_topic_partition_list_t *parts,
                       int cooperative) {
        if (!cooperative) {
                int32_t *ps;
                size_t n = itd_run_partitions(lp, &ps);
                for (size_t i = 0; i < n; i++) {
                        if (rd_kafka_topic_partition_list_find(
                                parts, lp->conf->topic_events, ps[i]))
                                continue;
                        itd_log(ITD_LOG_NOTICE, "checkpoint",
                                "partition %d is assigned elsewhere: "
                                "dropping its state",
                                (int)ps[i]);
                        itd_engine_drop_partition(eng_of(lp, ps[i]), ps[i]);
                        *ppos(lp, ps[i]) = (ppos_t){.applied = -1,
                                                    .acked = -1};
                }
                free(ps);
        }
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *el = &parts->elems[i];
                ppos_t *pp = ppos(lp, el->partition);
                const itd_partition_t *held =
                    itd_engine_partition_get(eng_of(lp, el->partition),
                                             el->partition);
                pp->assigned = 1;
                pp->held = 0;
                if (held && pp->applied >= 0) {
                        itd_partition_info_t info;
                        itd_partition_info(held, &info);
                        el->offset = pp->applied;
                        pp->acked = pp->applied;
                        itd_log(ITD_LOG_INFO, "checkpoint",
                                "partition %d resumes at offset %lld with "
                                "%llu users and %llu pending labels",
                                (int)el->partition, (long long)pp->applied,
                                (unsigned long long)info.users,
                                (unsigned long long)info.pending);
                        continue;
                }
                itd_engine_drop_partition(eng_of(lp, el->partition),
                                          el->partition);
                pp->applied = pp->acked = -1;
        }
}

/*
 * checkpoint.dir: "auto" is $STATE_DIRECTORY (systemd's StateDirectory=,
 * the first of a colon-separated list) or off, "" is off. Opens the
 * folder and restores the newest usable checkpoint into the engine.
 * @returns ITD_OK; ITD_ERR_CONF (the folder cannot be used; no checkpoint
 * usable and some refused, since starting empty would throw away what they
 * hold; or every checkpoint damaged under checkpoint.on_corrupt refuse).
 */
itd_err_t itd_commit_open(loop_t *lp, char *errstr,
                          size_t errstr_size) {
        char dir[4096];
        const char *conf_dir = lp->conf->checkpoint_dir;
        if (!strcmp(conf_dir, "auto")) {
                const char *sd = getenv("STATE_DIRECTORY");
                snprintf(dir, sizeof dir, "%.*s",
                         sd ? (int)strcspn(sd, ":") : 0, sd ? sd : "");
        } else {
                snprintf(dir, sizeof dir, "%s", conf_dir);
        }
        if (!*dir) {
                itd_log(ITD_LOG_NOTICE, "checkpoint",
                        "checkpoints are off (checkpoint.dir); a restart "
                        "starts with empty state");
                return ITD_OK;
        }
        /* Test hook (docs/CHECKPOINTS.md): a sleep between the files of a
         * checkpoint, so a test can kill the daemon while one is written. */
        const char *hook = getenv("ITD_TEST_CHECKPOINT_PAUSE_MS");
        int64_t pause_ms = hook ? strtoll(hook, NULL, 10) : 0;
        lp->ck = itd_checkpoint_dir_open(dir, lp->eng, lp->conf->topic_events,
                                         (size_t)lp->conf->checkpoint_keep,
                                         pause_ms, errstr, errstr_size);
        if (!lp->ck)
                return ITD_ERR_CONF; /* exit 78: a restart cannot help */
        itd_checkpoint_pos_t *pos;
        size_t n;
        itd_checkpoint_info_t info;
        char why[2048];
        itd_err_t err = itd_checkpoint_dir_restore_workers(
            lp->ck, lp->engs, lp->n_engs, &pos, &n, &info, why, sizeof why);
        lp->last_checkpoint_ms = itd_now_mono_ms();
        itd_engine_stats_t es;
        itd_workers_stats(lp->wk, &es);
        lp->train_skipped = es.train_skipped; /* logged by their run */
        if (err == ITD_ERR_INCOMPATIBLE) {
                snprintf(errstr, errstr_size, "%s", why);
                return ITD_ERR_CONF;
        }
        itd_prom_inc(lp->m, ITD_M_CHECKPOINT_DAMAGED, NULL,
                     itd_checkpoint_dir_damaged(lp->ck));
        if (err == ITD_ERR_CORRUPT &&
            lp->conf->checkpoint_on_corrupt == ITD_ON_CORRUPT_REFUSE) {
                snprintf(errstr, errstr_size, "%s; checkpoint.on_corrupt is "
                         "refuse: not starting over them (move them away, "
                         "or set start_empty, to start from scratch)", why);
                return ITD_ERR_CONF;
        }
        itd_checkpoint_dir_set_aside_damaged(lp->ck);
        if (err) {
                itd_log(err == ITD_ERR_CORRUPT ? ITD_LOG_ERR : ITD_LOG_NOTICE,
                        "checkpoint", "%s: starting with %s", why,
                        err == ITD_ERR_CORRUPT
                            ? "EMPTY state and a fresh model "
                              "(checkpoint.on_corrupt: start_empty)"
                            : "empty state");
                itd_prom_set(lp->m, ITD_M_CHECKPOINT_AGE_SECONDS, NULL, 0);
                return ITD_OK;
        }
        /* model_version goes on from the checkpoint's */
        itd_workers_set_version_offset(lp->wk, info.version_offset);
        /* Restored into worker 0: each partition goes to its worker (the
         * model reaches the other replicas with itd_workers_spread, once
         * model sync has caught up too). */
        for (size_t i = 0; i < n && lp->n_engs > 1; i++) {
                int32_t p = pos[i].partition;
                if (eng_of(lp, p) != lp->eng)
                        itd_engine_adopt(eng_of(lp, p),
                                         itd_engine_detach(lp->eng, p));
        }
        uint64_t users = 0, pending = 0;
        for (size_t i = 0; i < n; i++) {
                ppos_t *pp = ppos(lp, pos[i].partition);
                pp->applied = pp->acked = pos[i].next_offset;
                users += info.parts[i].users;
                pending += info.parts[i].pending;
        }
        double age_s = (double)(itd_now_wall_ms() - info.created_ms) / 1000.0;
        itd_prom_set(lp->m, ITD_M_CHECKPOINT_AGE_SECONDS, NULL,
                     age_s > 0 ? age_s : 0);
        itd_log(ITD_LOG_NOTICE, "checkpoint",
                "restored checkpoint %llu from %s (%.0f s old): %zu "
                "partitions, %llu users, %llu pending labels",
                (unsigned long long)info.seq, dir, age_s, n,
                (unsigned long long)users, (unsigned long long)pending);
        free(pos);
        itd_checkpoint_info_fini(&info);
        return ITD_OK;
}
