/*
 * source.c - the Kafka source of `intentd run`: the consumer, its group
 * (rebalance: assignments resumed from a checkpoint, revocations drained
 * and checkpointed first), consumer lag from its statistics, per-partition
 * positions, and back-pressure (pause while too much output is
 * unacknowledged or too many bytes wait for their schema).
 */
#include "run_int.h"

#include <stdlib.h>
#include <string.h>

#include "lag.h"

/* With checkpoints or the state changelog, commits follow complete checkpoints
 * (commit.c) or acknowledged snapshots (statelog.c) only, on top of the
 * shipped consumer settings (itd_kafka_consumer_defaults). */
static const char *const checkpoint_consumer_extra[] = {
    "enable.auto.commit", "false", NULL};

/* Outputs an event's token waits for that will never come (the event is
 * left for a restart): drains stop waiting for them. */
void itd_source_abandon(loop_t *lp, int32_t partition, uint64_t outputs) {
        ppos(lp, partition)->abandoned += outputs;
        lp->abandoned += outputs;
}

/* librdkafka's statistics: consumer lag per partition into /metrics. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
        (void)rk;
        loop_t *lp = opaque;
        char errstr[256];
        if (itd_lag_to_metrics(lp->m, json, len, lp->conf->topic_events,
                               &lp->lag_total, errstr, sizeof errstr) != ITD_OK)
                itd_log(ITD_LOG_DEBUG, "kafka", "%s", errstr);
        return 0; /* librdkafka frees json */
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
        loop_t *lp = opaque;
        /* NULL while the group is not joined, which happens when a
         * revoke comes during rd_kafka_consumer_close at stop */
        const char *protocol = rd_kafka_rebalance_protocol(rk);
        int cooperative = protocol && !strcmp(protocol, "COOPERATIVE");
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                itd_log(ITD_LOG_NOTICE, "kafka", "assigned %d partition(s), %s",
                        parts->cnt, protocol ? protocol : "EAGER");
                /* Restored before the partitions are assigned, so none
                 * of their events is processed before. */
                if (lp->sl)
                        itd_statelog_assign(lp, parts);
                if (lp->ck || lp->sl)
                        itd_commit_assign(lp, parts, cooperative);
                if (cooperative)
                        rd_kafka_error_destroy(
                            rd_kafka_incremental_assign(rk, parts));
                else
                        rd_kafka_assign(rk, parts);
                lp->assigned = cooperative ? lp->assigned + parts->cnt
                                           : parts->cnt;
                if (lp->paused)
                        rd_kafka_pause_partitions(rk, parts);
                atomic_store(&lp->health.assigned, lp->assigned);
                /* At once, not at the next periodic mirror: a scrape right
                 * after a fast start must not read 0. */
                itd_prom_set(lp->m, ITD_M_ASSIGNED_PARTITIONS, NULL,
                             lp->assigned);
                /* READY on the first assignment, even an empty one: with
                 * more instances than partitions some get none, and they
                 * are still up and standing by. */
                if (!atomic_exchange(&lp->health.ready, 1)) {
                        itd_notify_ready();
                        itd_log(ITD_LOG_NOTICE, "run", "ready");
                }
                return;
        }
        /* Revoked (or lost): finish in-flight work first, so the next
         * owner starts exactly after what we delivered. */
        itd_log(ITD_LOG_NOTICE, "kafka", "revoking %d partition(s)",
                parts->cnt);
        /* Events waiting for their schema: settled when a checkpoint or
         * a changelog snapshot follows, else left to the next owner. */
        if (lp->ck || lp->sl)
                itd_decode_release_parked(lp, 1);
        else
                for (int i = 0; i < parts->cnt; i++)
                        itd_decode_abandon_parked(lp,
                                                  parts->elems[i].partition);
        itd_sink_drain(lp, itd_now_mono_ms() + lp->conf->shutdown_timeout_ms);
        int lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ||
                   rd_kafka_assignment_lost(rk);
        if (lp->ck || lp->sl) {
                /* A last changelog snapshot and a checkpoint first, so the
                 * partitions' next owner (maybe us again) resumes exactly
                 * where they leave off. Lost ones may already be someone
                 * else's: no snapshot, no checkpoint, no commit. */
                /* Without a fresh checkpoint or snapshot the state holds events
                 * whose outputs may be lost: not safe to keep. */
                if (!lost && lp->sl) {
                        int32_t *ps = itd_xcalloc((size_t)parts->cnt + 1,
                                                  sizeof *ps);
                        for (int i = 0; i < parts->cnt; i++)
                                ps[i] = parts->elems[i].partition;
                        if (!itd_statelog_final(
                                lp, ps, (size_t)parts->cnt,
                                itd_now_mono_ms() +
                                    lp->conf->shutdown_timeout_ms))
                                lost = 1;
                        free(ps);
                }
                if (!lost && lp->ck && !itd_commit_now(lp, "on revoke"))
                        lost = 1;
                for (int i = 0; i < parts->cnt; i++) {
                        int32_t p = parts->elems[i].partition;
                        ppos(lp, p)->assigned = 0;
                        if (lp->sl)
                                itd_statelog_release(lp, p);
                        /* Eager rebalancing revokes everything before
                         * each assignment: keep the state, parked at the
                         * checkpoint, until the assignment says whether it
                         * stays ours. */
                        if (lost || cooperative) {
                                itd_engine_drop_partition(eng_of(lp, p), p);
                                *ppos(lp, p) = (ppos_t){.applied = -1,
                                                        .acked = -1};
                        }
                }
        } else if (!lost) {
                rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
                if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                        itd_log(ITD_LOG_WARNING, "kafka",
                                "commit on revoke: %s", rd_kafka_err2str(cerr));
        }
        for (int i = 0; i < parts->cnt; i++) {
                ppos_t *pp = ppos(lp, parts->elems[i].partition);
                itd_offsets_reset(lp->offsets, parts->elems[i].partition);
                lp->abandoned -= pp->abandoned;
                pp->abandoned = 0;
        }
        if (cooperative)
                rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
        else
                rd_kafka_assign(rk, NULL);
        lp->assigned = cooperative ? lp->assigned - parts->cnt : 0;
        atomic_store(&lp->health.assigned, lp->assigned);
        itd_prom_set(lp->m, ITD_M_ASSIGNED_PARTITIONS, NULL, lp->assigned);
}

/* Bytes of events waiting for their schema (park.h) before consumption
 * pauses; their offsets count as outputs in flight as well. */
#define PARK_MAX_BYTES ((size_t)64 << 20)

/* Back-pressure: pause every assigned partition while too much output is
 * unacknowledged, or too many bytes wait for their schema; resume once the
 * producer has drained and the park emptied. */
void itd_source_flow_control(loop_t *lp) {
        uint64_t in_flight = itd_offsets_in_flight(lp->offsets);
        uint64_t high = (uint64_t)lp->conf->output_max_in_flight;
        size_t parked = itd_park_bytes(lp->park);
        int want_pause = lp->paused ? in_flight > high / 4 ||
                                          parked > PARK_MAX_BYTES / 4
                                    : in_flight > high ||
                                          parked > PARK_MAX_BYTES;
        if (want_pause == lp->paused)
                return;
        rd_kafka_topic_partition_list_t *parts = NULL;
        if (rd_kafka_assignment(lp->consumer, &parts) != 0 || !parts)
                return;
        if (want_pause) {
                rd_kafka_pause_partitions(lp->consumer, parts);
                itd_log(ITD_LOG_WARNING, "kafka",
                        "pausing consumption: %llu outputs unacknowledged",
                        (unsigned long long)in_flight);
        } else {
                rd_kafka_resume_partitions(lp->consumer, parts);
                itd_log(ITD_LOG_NOTICE, "kafka", "resuming consumption");
        }
        lp->paused = want_pause;
        rd_kafka_topic_partition_list_destroy(parts);
}

/* Moves each partition's applied position past the messages of a batch,
 * in order. unapplied (n_un entries, indexes into msgs) are events the
 * engine did not take: their partition is held there for this life. */
void itd_source_note_applied(loop_t *lp, rd_kafka_message_t **msgs, size_t n,
                             const size_t *unapplied, size_t n_un) {
        size_t u = 0;
        for (size_t i = 0; i < n; i++) {
                const rd_kafka_message_t *m = msgs[i];
                if (!m)
                        continue;
                ppos_t *pp = ppos(lp, m->partition);
                if (u < n_un && unapplied[u] == i) {
                        u++;
                        pp->held = 1;
                }
                if (!pp->held && m->offset + 1 > pp->applied)
                        pp->applied = m->offset + 1;
        }
}

itd_err_t itd_source_open(loop_t *lp, char *errstr, size_t errstr_size) {
        const itd_conf_t *conf = lp->conf;
        itd_kafka_cbs_t cbs = {.rebalance = rebalance_cb,
                               .stats = stats_cb,
                               .error = itd_run_error_cb};
        lp->consumer = itd_kafka_new(RD_KAFKA_CONSUMER,
                                     itd_kafka_consumer_defaults,
                                     lp->ck || lp->sl
                                         ? checkpoint_consumer_extra
                                         : NULL,
                                     conf->n_kafka, conf->kafka_keys,
                                     conf->kafka_values, &cbs, lp, errstr,
                                     errstr_size);
        if (!lp->consumer)
                return ITD_ERR_CONF;
        rd_kafka_poll_set_consumer(lp->consumer);
        rd_kafka_topic_partition_list_t *sub =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, conf->topic_events,
                                          RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t kerr = rd_kafka_subscribe(lp->consumer, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (kerr) {
                snprintf(errstr, errstr_size, "subscribe to \"%s\": %s",
                         conf->topic_events, rd_kafka_err2str(kerr));
                return ITD_ERR_KAFKA;
        }
        return ITD_OK;
}

void itd_source_close(loop_t *lp) {
        if (lp->consumer)
                rd_kafka_destroy(lp->consumer);
        lp->consumer = NULL;
}
