/*
 * statelog.c - the state changelog topic of `intentd run`
 * (topics.changelog): each assigned partition's state written as
 * snapshots (core/changelog.c records) to the same partition of the
 * changelog topic, and restored from it when a partition is assigned, so
 * a partition's users, pending labels and trigger state follow it to
 * another instance.
 *
 * The rule that makes a handover exact: a partition's offset is committed
 * only up to its newest acknowledged snapshot, and a snapshot is produced
 * only once every output of the events before its position is
 * acknowledged. A new owner restores the newest complete snapshot, seeks
 * the events partition to its position and replays from there, so the
 * state it builds equals the old owner's, and no output of an event before
 * that position can have been lost.
 *
 * Per partition a snapshot goes through three phases: encoded (the state
 * at the applied position, as records in memory: the state goes on
 * changing while its outputs are acknowledged), produced (waiting for the
 * broker to acknowledge every record), done (its position is committed).
 * One snapshot per partition is in progress at a time.
 *
 * Its own producer and an assign-only consumer, like the model topic
 * (modelsync.c): the changelog neither joins the consumer group nor
 * shares a delivery path with predictions.
 */
#include "run_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/changelog.h"

_Static_assert(sizeof(uintptr_t) >= 8, "a record's opaque holds 64 bits");

/* The consumer never commits: a restore reads a partition whole. */
static const char *const consumer_extra[] = {"enable.auto.commit", "false",
                                             NULL};

/* Reading the changelog at assignment gives up after this long (a topic
 * that does not answer): the partitions then start from the newest
 * complete snapshot read so far, which is consistent, only older. */
#define RESTORE_MS 60000
/* How long each partition's watermark query may take. */
#define WATERMARK_MS 10000
/* Every covered position is committed again this often: a commit sent
 * during a rebalance fails (generation changed), and a partition that
 * consumes nothing more writes no snapshot that would commit it again. */
#define RECOMMIT_MS 5000

enum { PH_IDLE = 0, PH_ENCODED, PH_PRODUCED };

typedef struct rec_s {
        uint8_t *buf;
        size_t len;
} rec_t;

typedef struct slot_s {
        int phase;
        int force;          /* due now, not at the interval (an erasure) */
        uint32_t gen;       /* delivery reports of another generation are
                             * stale (the partition was released) */
        uint64_t seq;       /* the highest snapshot number used or seen */
        uint32_t max_parts; /* most parts a snapshot of it was cut into */
        int64_t pos;        /* next offset the snapshot in progress is
                             * valid at */
        int64_t covered;    /* ... of the newest acknowledged one; -1 */
        int64_t sent;       /* the covered position last committed */
        int64_t last_ms;    /* monotonic: the last snapshot was encoded */
        rec_t *recs;        /* PH_ENCODED: the records, in part order */
        size_t n_recs, cap_recs;
        size_t outstanding; /* PH_PRODUCED: records not yet reported */
        int failed;         /* ... and one of them was not delivered */
} slot_t;

struct itd_statelog_s {
        rd_kafka_t *producer;
        rd_kafka_t *consumer;
        rd_kafka_topic_t *rkt;
        char topic[256];
        size_t max_bytes; /* of one record */
        int64_t interval_ms;
        int64_t recommit_ms; /* monotonic: every covered position sent */
        slot_t *slots;    /* indexed by partition */
        size_t n_slots;
        itd_ratelimit_t rl;
        uint64_t snapshots, records, bytes, undelivered;
        uint64_t acked; /* snapshots every record of which was delivered */
        /* every partition's snapshot is written into it in turn: kept at
         * the largest one's size, so encoding does not fault in fresh
         * memory each time */
        itd_changelog_scratch_t scratch;
};

static slot_t *slot(itd_statelog_t *sl, int32_t p) {
        if ((size_t)p >= sl->n_slots) {
                size_t n = (size_t)p + 1;
                sl->slots = itd_xrealloc(sl->slots, n * sizeof *sl->slots);
                for (size_t i = sl->n_slots; i < n; i++)
                        sl->slots[i] = (slot_t){.covered = -1, .sent = -1};
                sl->n_slots = n;
        }
        return &sl->slots[p];
}

static void recs_clear(slot_t *s) {
        for (size_t i = 0; i < s->n_recs; i++)
                free(s->recs[i].buf);
        s->n_recs = 0;
}

/* Forgets partition p's snapshot in progress and where it stands: revoked
 * or lost; reports still on their way are of an older generation. */
static void release(slot_t *s) {
        recs_clear(s);
        free(s->recs);
        *s = (slot_t){.covered = -1, .sent = -1, .gen = s->gen + 1};
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                  void *opaque) {
        (void)rk;
        itd_statelog_t *sl = opaque;
        uint64_t id = (uint64_t)(uintptr_t)msg->_private;
        int32_t p = (int32_t)(id >> 32);
        if (msg->err) {
                sl->undelivered++;
                uint64_t sup = 0;
                if (itd_ratelimit_allow(&sl->rl, itd_now_mono_ms(), &sup))
                        itd_log(ITD_LOG_WARNING, "changelog",
                                "a record of partition %d to \"%s\" was not "
                                "delivered: %s (its snapshot is written "
                                "again later; offsets stay at the one "
                                "before)",
                                (int)p, sl->topic,
                                rd_kafka_err2str(msg->err));
        }
        if ((size_t)p >= sl->n_slots)
                return;
        slot_t *s = &sl->slots[p];
        if (s->phase != PH_PRODUCED || s->gen != (uint32_t)id ||
            s->outstanding == 0)
                return;
        s->outstanding--;
        if (msg->err)
                s->failed = 1;
}

/* Collects the records of one snapshot into the slot (encode's emit). */
static itd_err_t keep(int32_t partition, uint32_t part, const void *buf,
                      size_t len, void *arg) {
        (void)partition;
        (void)part; /* encode emits parts in order: part == n_recs */
        slot_t *s = arg;
        if (s->n_recs == s->cap_recs) {
                s->cap_recs = s->cap_recs ? 2 * s->cap_recs : 4;
                s->recs = itd_xrealloc(s->recs,
                                       s->cap_recs * sizeof *s->recs);
        }
        rec_t *r = &s->recs[s->n_recs++];
        r->buf = itd_xmalloc(len);
        memcpy(r->buf, buf, len);
        r->len = len;
        return ITD_OK;
}

/* Encodes partition p's state at its applied position into its slot.
 * A partition whose events were all dead-lettered or filtered has no
 * object in the engine: its snapshot is that of an empty one. */
static int encode(loop_t *lp, int32_t p) {
        itd_statelog_t *sl = lp->sl;
        slot_t *s = slot(sl, p);
        char errstr[512];
        const itd_partition_t *pt = itd_engine_partition_get(eng_of(lp, p), p);
        itd_partition_t *empty = NULL;
        if (!pt) {
                empty = itd_partition_new(
                    p, itd_engine_partition_conf(lp->eng), itd_now_wall_ms(),
                    errstr, sizeof errstr);
                if (!empty) {
                        itd_log(ITD_LOG_ERR, "changelog", "partition %d: %s",
                                (int)p, errstr);
                        return 0;
                }
                pt = empty;
        }
        recs_clear(s);
        int64_t pos = ppos(lp, p)->applied;
        itd_err_t err = itd_changelog_encode_with(
            &sl->scratch, pt, pos, s->seq + 1, sl->max_bytes, keep, s, NULL,
            errstr, sizeof errstr);
        itd_partition_destroy(empty);
        s->last_ms = itd_now_mono_ms();
        s->force = 0;
        if (err) {
                recs_clear(s);
                itd_log(ITD_LOG_ERR, "changelog", "%s", errstr);
                return 0;
        }
        s->seq++;
        s->pos = pos;
        s->phase = PH_ENCODED;
        return 1;
}

static int produce_one(itd_statelog_t *sl, int32_t p, const char *key,
                       const void *buf, size_t len, uint64_t id) {
        for (int tries = 0;; tries++) {
                if (rd_kafka_produce(sl->rkt, p, RD_KAFKA_MSG_F_COPY,
                                     (void *)buf, len, key, strlen(key),
                                     (void *)(uintptr_t)id) == 0)
                        return 1;
                rd_kafka_resp_err_t err = rd_kafka_last_error();
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries >= 50) {
                        itd_log(ITD_LOG_ERR, "changelog",
                                "producing partition %d's snapshot to "
                                "\"%s\": %s",
                                (int)p, sl->topic, rd_kafka_err2str(err));
                        return 0;
                }
                rd_kafka_poll(sl->producer, 100);
        }
}

/* Produces the encoded snapshot of p, then null records (tombstones) for
 * the keys of parts that an earlier, longer snapshot used and this one
 * does not, so compaction keeps nothing older than it. */
static void produce(itd_statelog_t *sl, int32_t p) {
        slot_t *s = slot(sl, p);
        s->gen++;
        s->phase = PH_PRODUCED;
        s->outstanding = 0;
        s->failed = 0;
        uint64_t id = (uint64_t)(uint32_t)p << 32 | s->gen;
        char key[32];
        uint32_t n = (uint32_t)s->n_recs;
        for (uint32_t k = 0; k < n + (s->max_parts > n ? s->max_parts - n : 0);
             k++) {
                itd_changelog_key(p, k, key, sizeof key);
                const rec_t *r = k < n ? &s->recs[k] : NULL;
                /* counted first: a report may come during a retry's poll */
                s->outstanding++;
                if (!produce_one(sl, p, key, r ? r->buf : NULL,
                                 r ? r->len : 0, id)) {
                        s->outstanding--;
                        s->failed = 1;
                        break;
                }
                if (r) {
                        sl->records++;
                        sl->bytes += r->len;
                }
        }
        if (!s->failed && n > 0)
                s->max_parts = n;
        recs_clear(s);
        sl->snapshots++;
}

/* A produced snapshot every record of which was reported: 1 when all
 * were delivered (its position is covered now). */
static int finish(itd_statelog_t *sl, int32_t p) {
        slot_t *s = slot(sl, p);
        if (s->phase != PH_PRODUCED || s->outstanding > 0)
                return 0;
        s->phase = PH_IDLE;
        if (s->failed)
                return 0;
        s->covered = s->pos;
        sl->acked++;
        return 1;
}

/* /metrics: what a crash would replay now. */
static void gauge_uncovered(loop_t *lp) {
        int64_t sum = 0;
        for (size_t i = 0; i < lp->n_pp; i++) {
                const ppos_t *pp = &lp->pp[i];
                const slot_t *s = slot(lp->sl, (int32_t)i);
                if (pp->assigned && s->covered >= 0 &&
                    pp->applied > s->covered)
                        sum += pp->applied - s->covered;
        }
        itd_prom_set(lp->m, ITD_M_CHANGELOG_UNCOVERED, NULL, (double)sum);
}

/* Commits the covered positions of the partitions in ps[0..n) still
 * assigned; sync on revoke and at stop. */
static void commit(loop_t *lp, const int32_t *ps, size_t n, int sync) {
        rd_kafka_topic_partition_list_t *tp = NULL;
        for (size_t i = 0; i < n; i++) {
                slot_t *s = slot(lp->sl, ps[i]);
                if (s->covered < 0 || !ppos(lp, ps[i])->assigned)
                        continue;
                s->sent = s->covered;
                if (!tp)
                        tp = rd_kafka_topic_partition_list_new((int)n);
                rd_kafka_topic_partition_list_add(tp, lp->conf->topic_events,
                                                  ps[i])
                    ->offset = s->covered;
        }
        if (!tp)
                return;
        rd_kafka_resp_err_t err = rd_kafka_commit(lp->consumer, tp, !sync);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                itd_log(ITD_LOG_WARNING, "kafka",
                        "commit of changelog positions: %s",
                        rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(tp);
}

/* A snapshot of p is due: it consumed since the last one, and the
 * interval passed (or an erasure asks for one now). */
static int due(loop_t *lp, int32_t p, int64_t now) {
        const slot_t *s = slot(lp->sl, p);
        const ppos_t *pp = ppos(lp, p);
        if (s->phase != PH_IDLE || !pp->assigned || pp->applied < 0)
                return 0;
        if (s->force)
                return 1;
        return pp->applied > s->covered &&
               now - s->last_ms >= lp->sl->interval_ms;
}

void itd_statelog_tick(loop_t *lp) {
        itd_statelog_t *sl = lp->sl;
        rd_kafka_poll(sl->producer, 0);
        int64_t now = itd_now_mono_ms();
        int32_t done[64];
        size_t n_done = 0;
        int settled = 0;
        int again = now - sl->recommit_ms >= RECOMMIT_MS;
        if (again)
                sl->recommit_ms = now;
        for (size_t i = 0; i < lp->n_pp; i++) {
                int32_t p = (int32_t)i;
                finish(sl, p);
                if (slot(sl, p)->covered > slot(sl, p)->sent ||
                    (again && slot(sl, p)->covered >= 0)) {
                        done[n_done++] = p;
                        if (n_done == sizeof done / sizeof done[0]) {
                                commit(lp, done, n_done, 0);
                                n_done = 0;
                        }
                }
                if (due(lp, p, now)) {
                        /* As before a checkpoint: a snapshot holds every event
                         * before its position, in the engine or
                         * dead-lettered, none waiting for its schema. */
                        if (!settled++)
                                itd_decode_release_parked(lp, 1);
                        encode(lp, p);
                }
                slot_t *s = slot(sl, p);
                if (s->phase == PH_ENCODED && ppos(lp, p)->acked >= s->pos)
                        produce(sl, p);
        }
        commit(lp, done, n_done, 0);
        gauge_uncovered(lp);
        itd_prom_set(lp->m, ITD_M_CHANGELOG_SNAPSHOTS, NULL,
                     (double)sl->acked);
        itd_prom_set(lp->m, ITD_M_CHANGELOG_BYTES, NULL, (double)sl->bytes);
}

/* Waits until no snapshot of ps[0..n) is in flight, or deadline_ms;
 * commits what completed. */
static void settle(loop_t *lp, const int32_t *ps, size_t n,
                   int64_t deadline_ms) {
        for (;;) {
                size_t waiting = 0;
                for (size_t i = 0; i < n; i++) {
                        const slot_t *s = slot(lp->sl, ps[i]);
                        waiting += s->phase == PH_PRODUCED &&
                                   s->outstanding > 0;
                }
                if (!waiting || itd_now_mono_ms() >= deadline_ms)
                        break;
                rd_kafka_poll(lp->sl->producer, 50);
        }
        for (size_t i = 0; i < n; i++)
                finish(lp->sl, ps[i]);
}

int itd_statelog_final(loop_t *lp, const int32_t *ps, size_t n,
                       int64_t deadline_ms) {
        itd_statelog_t *sl = lp->sl;
        settle(lp, ps, n, deadline_ms);
        for (size_t i = 0; i < n; i++) {
                int32_t p = ps[i];
                slot_t *s = slot(sl, p);
                const ppos_t *pp = ppos(lp, p);
                if (s->phase == PH_ENCODED) {
                        recs_clear(s);
                        s->phase = PH_IDLE;
                }
                if (s->phase != PH_IDLE || pp->applied < 0 ||
                    (pp->applied <= s->covered && !s->force))
                        continue;
                if (pp->acked < pp->applied) {
                        itd_log(ITD_LOG_ERR, "changelog",
                                "no final snapshot of partition %d: "
                                "outputs below offset %lld are "
                                "unacknowledged; its next owner replays "
                                "from offset %lld",
                                (int)p, (long long)pp->applied,
                                (long long)s->covered);
                        continue;
                }
                if (encode(lp, p))
                        produce(sl, p);
        }
        settle(lp, ps, n, deadline_ms);
        commit(lp, ps, n, 1);
        int all = 1;
        for (size_t i = 0; i < n; i++) {
                const ppos_t *pp = ppos(lp, ps[i]);
                if (pp->applied >= 0 && slot(sl, ps[i])->covered < pp->applied)
                        all = 0;
        }
        return all;
}

void itd_statelog_release(loop_t *lp, int32_t p) {
        release(slot(lp->sl, p));
}

void itd_statelog_erased(loop_t *lp, int32_t p) {
        if (lp->sl)
                slot(lp->sl, p)->force = 1;
}

itd_err_t itd_statelog_tombstone(loop_t *lp, int32_t p, const char *key) {
        if (!lp->sl)
                return ITD_OK;
        /* generation 0 is never in flight: its report changes nothing */
        return produce_one(lp->sl, p, key, NULL, 0, (uint64_t)(uint32_t)p << 32)
                   ? ITD_OK
                   : ITD_ERR_KAFKA;
}

/* ---- restore ------------------------------------------------------------ */

typedef struct part_read_s {
        int32_t p;
        int64_t hi;   /* the end to read up to; <= next: done */
        int64_t next; /* the next offset expected */
        uint64_t records, refused;
        itd_changelog_restore_t *r;
} part_read_t;

/* Reads the changelog partitions of rd[0..n) from their beginning to the
 * end they had when the read began. */
static void read_all(itd_statelog_t *sl, part_read_t *rd, size_t n) {
        rd_kafka_topic_partition_list_t *tp =
            rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++) {
                int64_t lo = 0, hi = 0;
                rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
                    sl->consumer, sl->topic, rd[i].p, &lo, &hi, WATERMARK_MS);
                if (kerr) {
                        itd_log(ITD_LOG_ERR, "changelog",
                                "\"%s\" partition %d unreadable (%s): the "
                                "changelog needs as many partitions as the "
                                "events topic; partition %d starts without "
                                "it",
                                sl->topic, (int)rd[i].p,
                                rd_kafka_err2str(kerr), (int)rd[i].p);
                        continue;
                }
                rd[i].next = lo;
                rd[i].hi = hi;
                if (hi > lo)
                        rd_kafka_topic_partition_list_add(tp, sl->topic,
                                                          rd[i].p)
                            ->offset = lo;
        }
        if (tp->cnt == 0) {
                rd_kafka_topic_partition_list_destroy(tp);
                return;
        }
        rd_kafka_resp_err_t kerr = rd_kafka_assign(sl->consumer, tp);
        rd_kafka_topic_partition_list_destroy(tp);
        if (kerr) {
                itd_log(ITD_LOG_ERR, "changelog", "assigning \"%s\": %s",
                        sl->topic, rd_kafka_err2str(kerr));
                return;
        }
        int64_t deadline = itd_now_mono_ms() + RESTORE_MS;
        for (;;) {
                size_t left = 0;
                for (size_t i = 0; i < n; i++)
                        left += rd[i].next < rd[i].hi;
                if (!left || itd_now_mono_ms() >= deadline)
                        break;
                rd_kafka_message_t *m = rd_kafka_consumer_poll(sl->consumer,
                                                               100);
                if (!m)
                        continue;
                part_read_t *pr = NULL;
                for (size_t i = 0; i < n && !pr; i++)
                        if (rd[i].p == m->partition)
                                pr = &rd[i];
                if (m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                itd_log(ITD_LOG_WARNING, "changelog",
                                        "reading \"%s\": %s", sl->topic,
                                        rd_kafka_message_errstr(m));
                } else if (pr) {
                        pr->next = m->offset + 1;
                        pr->records++;
                        char errstr[256];
                        /* a null value is a tombstone: nothing to add */
                        if (m->payload &&
                            itd_changelog_restore_add(pr->r, m->payload,
                                                      m->len, errstr,
                                                      sizeof errstr)) {
                                pr->refused++;
                                uint64_t sup = 0;
                                if (itd_ratelimit_allow(&sl->rl,
                                                        itd_now_mono_ms(),
                                                        &sup))
                                        itd_log(ITD_LOG_WARNING, "changelog",
                                                "%s at %s/%d@%" PRId64
                                                " (skipped)",
                                                errstr, sl->topic,
                                                (int)pr->p, m->offset);
                        }
                }
                rd_kafka_message_destroy(m);
        }
        for (size_t i = 0; i < n; i++)
                if (rd[i].next < rd[i].hi)
                        itd_log(ITD_LOG_ERR, "changelog",
                                "read \"%s\" partition %d only to offset "
                                "%" PRId64 " of %" PRId64 " in %d s: "
                                "restoring the newest complete snapshot "
                                "before it",
                                sl->topic, (int)rd[i].p, rd[i].next,
                                rd[i].hi, RESTORE_MS / 1000);
        rd_kafka_assign(sl->consumer, NULL);
}

/* Partition p from its newest complete snapshot, when that is newer than
 * what the engine holds (restored from the local checkpoint, or kept over
 * an eager rebalance): the newer position wins. */
static void adopt(loop_t *lp, part_read_t *pr, int64_t t0) {
        itd_statelog_t *sl = lp->sl;
        slot_t *s = slot(sl, pr->p);
        itd_changelog_restore_seen(pr->r, &s->seq, &s->max_parts);
        ppos_t *pp = ppos(lp, pr->p);
        int held = itd_engine_partition_get(eng_of(lp, pr->p), pr->p) != NULL &&
                   pp->applied >= 0;
        char errstr[512];
        itd_partition_t *pt = NULL;
        int64_t next = -1;
        itd_err_t err = itd_changelog_restore_take(
            pr->r, itd_engine_partition_conf(lp->eng), itd_now_wall_ms(), &pt,
            &next, errstr, sizeof errstr);
        if (err == ITD_ERR_NOT_FOUND) {
                itd_log(ITD_LOG_NOTICE, "changelog",
                        "partition %d: no snapshot in \"%s\" (%" PRIu64
                        " records read): %s",
                        (int)pr->p, sl->topic, pr->records,
                        held ? "resumes from the local checkpoint"
                             : "starts empty at the committed offset");
                return;
        }
        if (err) {
                itd_log(ITD_LOG_ERR, "changelog",
                        "partition %d: snapshot refused: %s; %s", (int)pr->p,
                        errstr,
                        held ? "resumes from the local checkpoint"
                             : "starts empty at the committed offset");
                return;
        }
        s->covered = next;
        if (!itd_changelog_snapshot_wins(held, pp->applied, next)) {
                itd_log(ITD_LOG_INFO, "changelog",
                        "partition %d: the state held (offset %lld) is not "
                        "older than the changelog's (offset %lld): kept",
                        (int)pr->p, (long long)pp->applied, (long long)next);
                itd_partition_destroy(pt);
                return;
        }
        itd_partition_info_t info;
        itd_partition_info(pt, &info);
        itd_engine_adopt(eng_of(lp, pr->p), pt);
        pt = NULL;
        pp->applied = pp->acked = next;
        itd_prom_inc(lp->m, ITD_M_CHANGELOG_RESTORED, NULL, 1);
        itd_log(ITD_LOG_NOTICE, "changelog",
                "partition %d restored from the changelog at offset %lld: "
                "%llu users, %llu pending labels (snapshot %llu; %llu "
                "records read in %lld ms)",
                (int)pr->p, (long long)next, (unsigned long long)info.users,
                (unsigned long long)info.pending, (unsigned long long)s->seq,
                (unsigned long long)pr->records,
                (long long)(itd_now_mono_ms() - t0));
}

void itd_statelog_assign(loop_t *lp, rd_kafka_topic_partition_list_t *parts) {
        size_t n = (size_t)parts->cnt;
        if (n == 0)
                return;
        atomic_store(&lp->health.restoring, 1);
        int64_t t0 = itd_now_mono_ms();
        part_read_t *rd = itd_xcalloc(n, sizeof *rd);
        for (size_t i = 0; i < n; i++) {
                rd[i].p = parts->elems[i].partition;
                rd[i].r = itd_changelog_restore_new(rd[i].p);
                release(slot(lp->sl, rd[i].p));
        }
        read_all(lp->sl, rd, n);
        for (size_t i = 0; i < n; i++) {
                adopt(lp, &rd[i], t0);
                itd_changelog_restore_destroy(rd[i].r);
        }
        free(rd);
        atomic_store(&lp->health.restoring, 0);
}

/* ---- open, close -------------------------------------------------------- */

itd_err_t itd_statelog_open(loop_t *lp, char *errstr, size_t errstr_size) {
        const itd_conf_t *conf = lp->conf;
        if (!*conf->topic_changelog)
                return ITD_OK;
        itd_statelog_t *sl = itd_xcalloc(1, sizeof *sl);
        snprintf(sl->topic, sizeof sl->topic, "%s", conf->topic_changelog);
        sl->interval_ms = conf->state_changelog_interval_ms;
        sl->rl = (itd_ratelimit_t){.interval_ms = 10000, .burst = 5};
        lp->sl = sl;
        sl->producer = itd_kafka_new(
            RD_KAFKA_PRODUCER, itd_kafka_producer_defaults, NULL,
            conf->n_kafka, conf->kafka_keys, conf->kafka_values,
            &(itd_kafka_cbs_t){.dr_msg = dr_cb}, sl, errstr, errstr_size);
        if (!sl->producer)
                return ITD_ERR_CONF;
        sl->consumer = itd_kafka_new(
            RD_KAFKA_CONSUMER, itd_kafka_consumer_defaults, consumer_extra,
            conf->n_kafka, conf->kafka_keys, conf->kafka_values, NULL, sl,
            errstr, errstr_size);
        if (!sl->consumer)
                return ITD_ERR_CONF;
        rd_kafka_poll_set_consumer(sl->consumer);
        size_t max = itd_kafka_max_message_bytes(sl->producer);
        max = max > 1000000 ? 1000000 : max;
        /* room for the record's own framing around the value */
        sl->max_bytes = max > ITD_CHANGELOG_MIN_BYTES + 1024
                            ? max - 1024
                            : ITD_CHANGELOG_MIN_BYTES;
        sl->rkt = rd_kafka_topic_new(sl->producer, sl->topic, NULL);
        itd_log(ITD_LOG_NOTICE, "changelog",
                "partition state to \"%s\" every %lld ms, records of at most "
                "%zu bytes",
                sl->topic, (long long)sl->interval_ms, sl->max_bytes);
        return ITD_OK;
}

void itd_statelog_close(loop_t *lp) {
        itd_statelog_t *sl = lp->sl;
        if (!sl)
                return;
        if (sl->producer)
                itd_log(ITD_LOG_NOTICE, "changelog",
                        "%" PRIu64 " snapshots written to \"%s\" (%" PRIu64
                        " acknowledged; %" PRIu64 " records, %" PRIu64
                        " bytes); %" PRIu64 " records undelivered",
                        sl->snapshots, sl->topic, sl->acked, sl->records,
                        sl->bytes, sl->undelivered);
        for (size_t i = 0; i < sl->n_slots; i++)
                release(&sl->slots[i]);
        free(sl->slots);
        itd_changelog_scratch_free(&sl->scratch);
        if (sl->rkt)
                rd_kafka_topic_destroy(sl->rkt);
        if (sl->consumer) {
                rd_kafka_consumer_close(sl->consumer);
                rd_kafka_destroy(sl->consumer);
        }
        if (sl->producer) {
                rd_kafka_flush(sl->producer, 1000);
                rd_kafka_destroy(sl->producer);
        }
        free(sl);
        lp->sl = NULL;
}
