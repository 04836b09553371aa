/*
 * run.c - consume -> decode -> engine -> produce -> commit what was
 * delivered.
 *
 * One pipeline thread (this one) owns the engine; librdkafka runs its own
 * threads. A poll blocks for the first message, then takes whatever else is
 * already fetched, so a batch is as large as the backlog allows and a quiet
 * topic still gets low latency.
 *
 * At-least-once: enable.auto.offset.store=false; every consumed offset is
 * tracked until each output it caused (prediction or dead letter) has a
 * successful delivery report, and only the acknowledged prefix of each
 * partition is stored for (auto-)commit. A failed delivery is produced again;
 * too many outputs in flight pause the assigned partitions (polling goes on,
 * so the group does not evict us) until the producer drains.
 *
 * With checkpoints (checkpoint.dir, docs/CHECKPOINTS.md) nothing is stored
 * for auto-commit: every checkpoint.interval a cut of the engine is written
 * in the background (checkpoint.h), published once every output before its
 * positions is acknowledged, and only then are exactly its positions
 * committed. So the group's committed offsets never run ahead of the last
 * complete cut, and a restart restores the cut and seeks each partition to
 * the cut's position. On revoke and at stop a cut is written in place.
 */
#include "run.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "conf_parts.h"
#include "http.h"
#include "lag.h"
#include "intentd/codec.h"
#include "intentd/input.h"
#include "intentd/kafka.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/offsets.h"
#include "prom.h"
#include "model_id.h"
#include "monitor.h"
#include "notify.h"
#include "out_schemas.h"
#include "park.h"

/* With checkpoints, commits follow complete cuts only (run.c header), on
 * top of the shipped consumer settings (itd_kafka_consumer_defaults). */
static const char *const checkpoint_consumer_extra[] = {
    "enable.auto.commit", "false", NULL};

/* Per partition, where processing stands (checkpoint mode). Positions are
 * "next offset": one past the last offset handled. */
typedef struct ppos_s {
        int64_t applied;  /* every event below it is in the engine (or was
                           * dead-lettered); -1 unknown */
        int64_t acked;    /* every output below it is acknowledged */
        int held;         /* an event was consumed but not applied (stop
                           * during back-pressure): positions stop here */
        int assigned;
        uint64_t abandoned; /* outputs tracked that will never be
                             * acknowledged (parked events left for a
                             * restart), until the partition is reset */
} ppos_t;

/* Every consumed event's offset is tracked as it is taken from the batch,
 * in offset order (offsets.h requires it, and a dead letter or a parked
 * event must not be tracked ahead of the events before it), with room for
 * the most outputs an event causes (a prediction and a trigger); what its
 * outcome leaves unused is acknowledged at once (track()). */
#define EVENT_OUTPUTS 2

/* A consumed event as its outputs see it: where it came from, its bytes
 * for a dead letter, and its offset's token (EVENT_OUTPUTS). */
typedef struct src_s {
        const void *key;
        size_t key_len;
        const void *value;
        size_t len;
        int32_t partition;
        int64_t offset;
        uint64_t token;
} src_t;

typedef struct loop_s {
        itd_conf_t *conf;
        const itd_run_opts_t *opts;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        rd_kafka_topic_t *rkt_pred;
        rd_kafka_topic_t *rkt_dlq;
        rd_kafka_topic_t *rkt_trg;
        itd_codec_t *codec;       /* encodes predictions */
        itd_out_ids_t ids;        /* each output topic's schema id */
        itd_decoder_t *dec;       /* decodes and validates events */
        itd_engine_t *eng;
        itd_monitor_t *mon;       /* windowed progressive metrics */
        itd_query_t *query;       /* GET /users/<id>, or NULL */
        itd_offsets_t *offsets;
        itd_park_t *park;         /* events waiting for their schema */
        uint64_t abandoned;       /* sum of ppos_t.abandoned */
        uint64_t train_skipped;   /* skipped training steps logged so far */
        /* One batch's worth, max_batch each: decoded events, where they
         * came from, engine results. */
        itd_input_t *in;
        src_t *src;
        size_t *msg_of;           /* in[k] came from msgs[msg_of[k]] */
        itd_prediction_t *preds;
        itd_outcome_t *outcome;
        itd_parked_t **taken;     /* parked events released this turn */
        itd_run_result_t *res;
        itd_run_hooks_t hooks;    /* the caller's, or all NULL */
        itd_kafka_retryq_t *rq;   /* failed deliveries, produced again */
        size_t max_msg_bytes;     /* the producer's message.max.bytes */
        _Atomic int fatal;        /* a client reported a fatal error */
        char fatal_why[512];      /* ... this one (set before fatal) */
        int paused;
        int assigned;             /* partitions currently assigned */
        itd_prom_t *m;
        itd_health_t health;
        itd_watchdog_t wd;
        itd_http_t *http;
        int64_t batch_t0_ms;      /* monotonic time the batch was polled */
        itd_ratelimit_t rl_decode;
        itd_ratelimit_t rl_kafka;
        int64_t lag_total;        /* from the last statistics, -1 unknown */

        itd_ckdir_t *ck;          /* NULL: checkpoints off */
        ppos_t *pp;               /* indexed by partition */
        size_t n_pp;
        int64_t last_cut_ms;      /* monotonic, last cut started */
        uint64_t consumed_at_cut; /* res->consumed at the last complete
                                   * cut */
        uint64_t consumed_at_pending; /* ... at the cut in progress */
} loop_t;

static void release_parked(loop_t *lp, int settle);
static size_t abandon_parked(loop_t *lp, int32_t partition);

static ppos_t *ppos(loop_t *lp, int32_t p) {
        if ((size_t)p >= lp->n_pp) {
                size_t n = (size_t)p + 1;
                lp->pp = itd_xrealloc(lp->pp, n * sizeof *lp->pp);
                for (size_t i = lp->n_pp; i < n; i++)
                        lp->pp[i] = (ppos_t){.applied = -1, .acked = -1};
                lp->n_pp = n;
        }
        return &lp->pp[p];
}

/* Errors that another attempt cannot fix: the output is given up on,
 * counted and logged, so one bad record cannot stall its partition. */
static int permanent(rd_kafka_resp_err_t err) {
        switch (err) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_MSG:
        case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR__INVALID_ARG:
                return 1;
        default:
                return 0;
        }
}

/* Broker answers meaning "this record is too large", as opposed to other
 * permanent refusals. */
static int too_large(rd_kafka_resp_err_t err) {
        return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
               err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE ||
               err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

/* An output that will never be delivered: counted, logged, and its offset
 * released, so one record cannot hold its partition back for good. */
static void give_up(loop_t *lp, uint64_t token, const char *why) {
        uint64_t sup;
        lp->res->undeliverable++;
        if (itd_ratelimit_allow(&lp->rl_kafka, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_ERR, "kafka", "%s (giving up on this record)",
                        why);
        itd_offsets_ack(lp->offsets, token);
}

static void gave_up_cb(void *msg_opaque, const char *why, void *arg) {
        give_up(arg, (uint64_t)(uintptr_t)msg_opaque, why);
}

static int has_header(const rd_kafka_message_t *msg, const char *name) {
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t n;
        return rd_kafka_message_headers(msg, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
               h && rd_kafka_header_get_last(h, name, &v, &n) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                  void *opaque) {
        (void)rk;
        loop_t *lp = opaque;
        uint64_t token = (uint64_t)(uintptr_t)msg->_private;
        if (!msg->err) {
                if (msg->rkt == lp->rkt_pred) {
                        lp->res->published++;
                        itd_prom_inc(lp->m, ITD_M_PREDICTIONS_PUBLISHED,
                                     NULL, 1);
                } else if (msg->rkt == lp->rkt_trg) {
                        lp->res->triggers++;
                        itd_prom_inc(lp->m, ITD_M_TRIGGERS_PUBLISHED, NULL,
                                     1);
                } else if (msg->rkt == lp->rkt_dlq &&
                           has_header(msg, ITD_KAFKA_HDR_VALUE_TRUNCATED)) {
                        lp->res->dead_letters_truncated++;
                }
                itd_offsets_ack(lp->offsets, token);
                return;
        }
        itd_prom_inc(lp->m, ITD_M_DELIVERY_FAILURES, NULL, 1);
        char why[512];
        snprintf(why, sizeof why, "delivery to \"%s\" failed: %s",
                 rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
        /* A dead letter the topic refuses as too large goes again as key
         * and headers only, the value's length in a header. */
        if (msg->rkt == lp->rkt_dlq && too_large(msg->err) && msg->len > 0) {
                char orig[32];
                const void *v = NULL;
                size_t vn = 0;
                rd_kafka_headers_t *h = NULL;
                if (rd_kafka_message_headers(msg, &h) == 0 && h &&
                    rd_kafka_header_get_last(h, ITD_KAFKA_HDR_VALUE_TRUNCATED, &v,
                                             &vn) == 0 &&
                    vn < sizeof orig) {
                        memcpy(orig, v, vn);
                        orig[vn] = '\0';
                } else {
                        snprintf(orig, sizeof orig, "%zu", msg->len);
                }
                uint64_t sup;
                if (itd_ratelimit_allow(&lp->rl_kafka, itd_now_mono_ms(),
                                        &sup))
                        itd_log(ITD_LOG_WARNING, "kafka",
                                "%s; sending the dead letter again without "
                                "its %zu-byte value",
                                why, msg->len);
                itd_kafka_retryq_push(lp->rq, msg, 1, ITD_KAFKA_HDR_VALUE_TRUNCATED,
                                      orig);
                return;
        }
        if (permanent(msg->err)) {
                give_up(lp, token, why);
                return;
        }
        uint64_t sup;
        if (itd_ratelimit_allow(&lp->rl_kafka, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_ERR, "kafka", "%s (will retry)", why);
        itd_kafka_retryq_push(lp->rq, msg, 0, NULL, NULL);
}

/* librdkafka's client-wide errors. A fatal one leaves the client unusable:
 * it stops the run (run.h), whose caller logs it once, with its cause,
 * and exits non-zero so systemd restarts us. The others are transient:
 * librdkafka retries. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        loop_t *lp = opaque;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char why[400];
                rd_kafka_resp_err_t orig =
                    rd_kafka_fatal_error(rk, why, sizeof why);
                if (atomic_load(&lp->fatal))
                        return;
                snprintf(lp->fatal_why, sizeof lp->fatal_why,
                         "fatal error in the Kafka %s: %s: %s",
                         rd_kafka_type(rk) == RD_KAFKA_PRODUCER ? "producer"
                                                                : "consumer",
                         rd_kafka_err2name(orig), why);
                atomic_store(&lp->fatal, 1);
                return;
        }
        uint64_t sup;
        if (itd_ratelimit_allow(&lp->rl_kafka, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_WARNING, "kafka", "%s: %s",
                        rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void produce_retries(loop_t *lp) {
        itd_kafka_retryq_flush(lp->rq, lp->producer, lp->opts->stop,
                               gave_up_cb, lp);
}

/* Produces one output of a tracked event; token rides in the opaque.
 * @returns ITD_OK; ITD_ERR_RANGE (larger than message.max.bytes: nothing
 * was produced, the caller decides); another error when stopping
 * interrupted a full queue or the producer refused the record, and then
 * the offset stays unacknowledged so the event is consumed again after a
 * restart, never silently lost. hdrs are consumed either way. */
static itd_err_t produce_output(loop_t *lp, rd_kafka_topic_t *rkt,
                                int64_t ts_ms, const void *key,
                                size_t key_len, const void *value, size_t len,
                                rd_kafka_headers_t *hdrs, uint64_t token) {
        char errstr[256];
        itd_err_t err = itd_kafka_produce_at(
            lp->producer, rkt, RD_KAFKA_PARTITION_UA, ts_ms, key, key_len,
            value, len, hdrs, (void *)(uintptr_t)token, lp->opts->stop,
            errstr, sizeof errstr);
        if (err == ITD_OK)
                return ITD_OK;
        if (hdrs)
                rd_kafka_headers_destroy(hdrs);
        if (err == ITD_ERR_RANGE)
                return err;
        uint64_t sup;
        if (itd_ratelimit_allow(&lp->rl_kafka, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_ERR, "kafka", "%s", errstr);
        return err;
}

/* The Kafka timestamp of an output: its event's time (DESIGN.md), so that
 * event-time windows downstream see when the shopper acted. Kafka
 * timestamps are ms since the epoch and >= 0; 0 asks for the current
 * time, which an event at or before 1970 (refused by input validation
 * anyway) would get. */
static int64_t record_ts(int64_t event_ts_ms) {
        return event_ts_ms > 0 ? event_ts_ms : 0;
}

/* The token an event's `outputs` outputs are produced with; the
 * EVENT_OUTPUTS - outputs it does not need are acknowledged now. */
static uint64_t track(loop_t *lp, const src_t *s, unsigned outputs) {
        for (unsigned i = outputs; i < EVENT_OUTPUTS; i++)
                itd_offsets_ack(lp->offsets, s->token);
        return s->token;
}

/* Outputs an event's token waits for that will never come (the event is
 * left for a restart): drains stop waiting for them. */
static void abandon(loop_t *lp, int32_t partition, uint64_t outputs) {
        ppos(lp, partition)->abandoned += outputs;
        lp->abandoned += outputs;
}

static src_t src_of(const rd_kafka_message_t *m, uint64_t token) {
        return (src_t){.key = m->key,
                       .key_len = m->key_len,
                       .value = m->payload,
                       .len = m->len,
                       .partition = m->partition,
                       .offset = m->offset,
                       .token = token};
}

static rd_kafka_headers_t *dead_letter_headers(const loop_t *lp,
                                               const src_t *s,
                                               const char *reason,
                                               const char *detail) {
        char num[32];
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(7);
        rd_kafka_header_add(hdrs, "intentd.error.reason", -1, reason, -1);
        rd_kafka_header_add(hdrs, "intentd.error.detail", -1, detail, -1);
        rd_kafka_header_add(hdrs, "intentd.source.topic", -1,
                            lp->conf->topic_events, -1);
        snprintf(num, sizeof num, "%d", (int)s->partition);
        rd_kafka_header_add(hdrs, "intentd.source.partition", -1, num, -1);
        snprintf(num, sizeof num, "%lld", (long long)s->offset);
        rd_kafka_header_add(hdrs, "intentd.source.offset", -1, num, -1);
        return hdrs;
}

/*
 * The original bytes, unchanged, with headers naming why and where from.
 * A record the dead-letter topic cannot take whole (key, value and headers
 * over the producer's message.max.bytes) has its value cut to fit, and its
 * key too if that alone is too large, each with a header giving the
 * original length; if even that is refused the value goes entirely. A
 * dead letter the broker refuses as too large is sent again without its
 * value (dr_cb). Either way the offset is released once it lands.
 */
static void dead_letter(loop_t *lp, const src_t *msg, const char *reason,
                        const char *detail, uint64_t token) {
        rd_kafka_headers_t *hdrs = dead_letter_headers(lp, msg, reason,
                                                       detail);
        size_t key_len = msg->key ? msg->key_len : 0;
        size_t len = msg->value ? msg->len : 0;
        itd_kafka_fit(lp->max_msg_bytes, hdrs, &key_len, &len);
        lp->res->dead_lettered++;
        if (itd_prom_inc(lp->m, ITD_M_EVENTS_DEAD_LETTERED, reason, 1))
                itd_prom_inc(lp->m, ITD_M_EVENTS_DEAD_LETTERED, "other", 1);
        if (produce_output(lp, lp->rkt_dlq, 0, msg->key, key_len,
                           msg->value, len, hdrs, token) != ITD_ERR_RANGE)
                return;
        /* The bound was not enough (it should be): no value at all. */
        hdrs = dead_letter_headers(lp, msg, reason, detail);
        key_len = msg->key ? msg->key_len : 0;
        len = msg->value ? msg->len : 0;
        itd_kafka_fit(0, hdrs, &key_len, &len);
        if (produce_output(lp, lp->rkt_dlq, 0, msg->key, key_len, NULL, 0,
                           hdrs, token) == ITD_ERR_RANGE)
                give_up(lp, token, "dead letter larger than message.max.bytes "
                                   "even without its value");
}

static void report(loop_t *lp, int64_t t0, uint64_t *last_events,
                   int64_t *last_ms, int final) {
        int64_t now = itd_now_mono_ms();
        itd_engine_stats_t es;
        itd_engine_stats(lp->eng, &es);
        double dt = (double)(now - *last_ms) / 1000.0;
        double rate = dt > 0 ? (double)(lp->res->consumed - *last_events) / dt
                             : 0;
        if (final)
                rate = (double)lp->res->consumed /
                       ((double)(now - t0) / 1000.0 + 1e-9);
        *last_events = lp->res->consumed;
        *last_ms = now;
        itd_notify_status("%.0f events/s, lag %lld, %llu events, %llu users, "
                          "AUC %.3f",
                          rate, (long long)lp->lag_total,
                          (unsigned long long)lp->res->consumed,
                          (unsigned long long)es.users, es.pv.auc);
        if (lp->opts->progress) {
                /* On a terminal one line redraws itself; in a log or a
                 * pipe each report is its own line. */
                int tty = isatty(STDERR_FILENO);
                fprintf(stderr,
                        "%s  %llu events | %.0f events/s | %llu predictions"
                        " | %llu labelled | AUC %.3f | log loss %.3f   %s",
                        tty ? "\r" : "",
                        (unsigned long long)lp->res->consumed, rate,
                        (unsigned long long)es.predictions,
                        (unsigned long long)es.pv.n, es.pv.auc, es.pv.logloss,
                        final || !tty ? "\n" : "");
                return;
        }
        itd_log(ITD_LOG_INFO, "run",
                "events=%llu rate=%.0f/s predictions=%llu dead_letters=%llu "
                "filtered=%llu in_flight=%llu users=%llu pending=%llu "
                "labelled=%llu auc=%.4f logloss=%.4f f1=%.3f steps=%llu",
                (unsigned long long)lp->res->consumed, rate,
                (unsigned long long)es.predictions,
                (unsigned long long)lp->res->dead_lettered,
                (unsigned long long)lp->res->filtered,
                (unsigned long long)itd_offsets_in_flight(lp->offsets),
                (unsigned long long)es.users, (unsigned long long)es.pending,
                (unsigned long long)es.pv.n, es.pv.auc, es.pv.logloss,
                es.pv.f1, (unsigned long long)es.train_steps);
}

/* Mirrors the engine's counters and progressive metrics into the registry
 * that /metrics renders (the HTTP thread never touches the engine). */
static void publish_gauges(loop_t *lp) {
        itd_engine_stats_t es;
        itd_engine_stats(lp->eng, &es);
        itd_prom_t *m = lp->m;
        itd_prom_set(m, ITD_M_EVENTS_LATE, NULL, (double)es.late);
        itd_prom_set(m, ITD_M_TRAINING_EXAMPLES, "positive",
                     (double)es.examples_pos);
        itd_prom_set(m, ITD_M_TRAINING_EXAMPLES, "negative",
                     (double)es.examples_neg);
        itd_prom_set(m, ITD_M_TRAINING_STEPS, NULL, (double)es.train_steps);
        itd_prom_set(m, ITD_M_TRAINING_SKIPPED, NULL,
                     (double)es.train_skipped);
        if (es.train_skipped > lp->train_skipped) {
                itd_log(ITD_LOG_WARNING, "model",
                        "skipped %llu training step(s): non-finite loss",
                        (unsigned long long)(es.train_skipped -
                                             lp->train_skipped));
                lp->train_skipped = es.train_skipped;
        }
        itd_prom_set(m, ITD_M_PROGRESSIVE_AUC, NULL, es.pv.auc);
        itd_prom_set(m, ITD_M_PROGRESSIVE_LOGLOSS, NULL, es.pv.logloss);
        itd_prom_set(m, ITD_M_PROGRESSIVE_F1, NULL, es.pv.f1);
        itd_prom_set(m, ITD_M_PROGRESSIVE_PRECISION, NULL, es.pv.precision);
        itd_prom_set(m, ITD_M_PROGRESSIVE_RECALL, NULL, es.pv.recall);
        itd_prom_set(m, ITD_M_PROGRESSIVE_ECE, NULL, es.pv.ece);
        itd_monitor_publish(lp->mon, m);
        itd_prom_set(m, ITD_M_LABELS_PENDING, NULL, (double)es.pending);
        itd_prom_set(m, ITD_M_TRIGGERS_SUPPRESSED, "cooldown",
                     (double)es.triggers_held_back);
        itd_prom_set(m, ITD_M_TRIGGERS_SUPPRESSED, "stale",
                     (double)es.triggers_stale);
        itd_prom_set(m, ITD_M_TRIGGERS_SUPPRESSED, "warming_up",
                     (double)es.triggers_warming);
        itd_prom_set(m, ITD_M_LABELS_DROPPED, NULL,
                     (double)es.labels_dropped);
        itd_prom_set(m, ITD_M_MODEL_VERSION, NULL, (double)es.train_steps);
        itd_prom_set(m, ITD_M_USERS, NULL, (double)es.users);
        itd_prom_set(m, ITD_M_STATE_BYTES, NULL, (double)es.state_bytes);
        itd_prom_set(m, ITD_M_STATE_EVICTIONS, "ttl",
                     (double)es.evicted_ttl);
        itd_prom_set(m, ITD_M_STATE_EVICTIONS, "capacity",
                     (double)es.evicted_cap);
        itd_prom_set(m, ITD_M_CONSUMER_PAUSED, NULL, lp->paused);
        itd_prom_set(m, ITD_M_ASSIGNED_PARTITIONS, NULL, lp->assigned);
}

/* Stores, for every partition whose acknowledged prefix moved, the
 * position after it; auto-commit (or the final commit) sends it. With
 * checkpoints it is only noted: commits follow complete cuts. */
static void store_acknowledged(loop_t *lp) {
        int32_t n = itd_offsets_partitions(lp->offsets);
        rd_kafka_topic_partition_list_t *tp = NULL;
        for (int32_t p = 0; p < n; p++) {
                int64_t next;
                if (!itd_offsets_advance(lp->offsets, p, &next) || next < 0)
                        continue;
                ppos_t *pp = ppos(lp, p);
                if (lp->ck) {
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

/* Serves delivery reports until nothing is in flight or the deadline. */
static void drain_outputs(loop_t *lp, int64_t deadline_ms) {
        /* Parked events' offsets are tracked too, but no output of theirs
         * is in flight. */
        while ((itd_offsets_in_flight(lp->offsets) >
                    lp->abandoned +
                        EVENT_OUTPUTS * itd_park_count(lp->park) ||
                itd_kafka_retryq_len(lp->rq) > 0) &&
               itd_now_mono_ms() < deadline_ms) {
                produce_retries(lp);
                rd_kafka_poll(lp->producer, 50);
        }
        store_acknowledged(lp);
}

/* ------------------------------------------------------- checkpoints */

/* Positions of every partition the engine holds (caller frees). */
static itd_cut_pos_t *cut_positions(loop_t *lp, size_t *n_out) {
        size_t n = itd_engine_partitions(lp->eng, NULL, 0);
        int32_t *ps = itd_xcalloc(n ? n : 1, sizeof *ps);
        itd_engine_partitions(lp->eng, ps, n);
        itd_cut_pos_t *pos = itd_xcalloc(n ? n : 1, sizeof *pos);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                const ppos_t *pp = ppos(lp, ps[i]);
                if (pp->applied < 0)
                        continue;
                pos[k++] = (itd_cut_pos_t){ps[i], pp->applied};
        }
        free(ps);
        *n_out = k;
        return pos;
}

/* 1 when every output before the cut's positions is acknowledged. */
static int cut_covered(loop_t *lp) {
        size_t n;
        const itd_cut_pos_t *pos = itd_ckdir_pending(lp->ck, &n);
        for (size_t i = 0; i < n; i++)
                if (ppos(lp, pos[i].partition)->acked < pos[i].next_offset)
                        return 0;
        return 1;
}

/* Publishes the written cut and commits its positions of the partitions
 * still assigned; sync at stop and on revoke. */
static void publish_cut(loop_t *lp, int sync) {
        char errstr[1024];
        size_t n;
        const itd_cut_pos_t *pos = itd_ckdir_pending(lp->ck, &n);
        rd_kafka_topic_partition_list_t *tp =
            rd_kafka_topic_partition_list_new(n ? (int)n : 1);
        for (size_t i = 0; i < n; i++)
                if (ppos(lp, pos[i].partition)->assigned)
                        rd_kafka_topic_partition_list_add(
                            tp, lp->conf->topic_events, pos[i].partition)
                            ->offset = pos[i].next_offset;
        if (itd_ckdir_publish(lp->ck, errstr, sizeof errstr) != ITD_OK) {
                itd_log(ITD_LOG_ERR, "checkpoint", "%s", errstr);
                rd_kafka_topic_partition_list_destroy(tp);
                return;
        }
        itd_prom_set(lp->m, ITD_M_CHECKPOINT_AGE_SECONDS, NULL, 0);
        lp->consumed_at_cut = lp->consumed_at_pending;
        itd_log(ITD_LOG_INFO, "checkpoint", "checkpoint %llu complete "
                "(%zu partitions)",
                (unsigned long long)itd_ckdir_last_seq(lp->ck), n);
        if (tp->cnt > 0) {
                rd_kafka_resp_err_t err = rd_kafka_commit(lp->consumer, tp,
                                                          !sync);
                if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                        itd_log(ITD_LOG_WARNING, "kafka",
                                "commit of checkpoint %llu: %s",
                                (unsigned long long)itd_ckdir_last_seq(lp->ck),
                                rd_kafka_err2str(err));
        }
        rd_kafka_topic_partition_list_destroy(tp);
}

/* Main loop: finishes the cut in progress, or starts one when due. */
static void checkpoint_tick(loop_t *lp) {
        char errstr[1024];
        itd_cut_state_t cs = itd_ckdir_poll(lp->ck, 0, errstr, sizeof errstr);
        if (cs == ITD_CUT_FAILED)
                itd_log(ITD_LOG_ERR, "checkpoint", "%s", errstr);
        if (cs == ITD_CUT_WRITTEN && cut_covered(lp))
                publish_cut(lp, 0);
        if (cs == ITD_CUT_WRITING || cs == ITD_CUT_WRITTEN)
                return;
        int64_t now = itd_now_mono_ms();
        if (now - lp->last_cut_ms < lp->conf->checkpoint_interval_ms)
                return;
        lp->last_cut_ms = now;
        /* Nothing consumed since the last cut: it still stands. */
        if (lp->res->consumed == lp->consumed_at_cut)
                return;
        /* Events waiting for their schema are settled first: a cut holds
         * every event before its positions, in the engine or
         * dead-lettered. */
        release_parked(lp, 1);
        size_t n;
        itd_cut_pos_t *pos = cut_positions(lp, &n);
        int64_t t0 = itd_now_mono_ms();
        lp->consumed_at_pending = lp->res->consumed;
        if (itd_ckdir_cut(lp->ck, lp->eng, pos, n, 1, errstr,
                          sizeof errstr) != ITD_OK)
                itd_log(ITD_LOG_ERR, "checkpoint", "%s", errstr);
        itd_log(ITD_LOG_DEBUG, "checkpoint", "cut started: %lld ms pause",
                (long long)(itd_now_mono_ms() - t0));
        free(pos);
}

/*
 * A cut in place, now: at stop and on revoke, after the outputs were
 * drained. A background cut still running is finished first (it is older
 * and may be published on its own). If some output is still unacknowledged
 * no cut is written: the last complete one stands, and the events after it
 * are consumed again after a restart.
 */
static int checkpoint_now(loop_t *lp, const char *why) {
        char errstr[1024];
        store_acknowledged(lp);
        itd_cut_state_t cs = itd_ckdir_poll(lp->ck, 1, errstr, sizeof errstr);
        if (cs == ITD_CUT_FAILED)
                itd_log(ITD_LOG_ERR, "checkpoint", "%s", errstr);
        if (cs == ITD_CUT_WRITTEN) {
                if (cut_covered(lp))
                        publish_cut(lp, 1);
                else
                        itd_ckdir_abandon(lp->ck);
        }
        /* The last complete cut already holds everything consumed. */
        if (itd_ckdir_last_seq(lp->ck) > 0 &&
            lp->res->consumed == lp->consumed_at_cut)
                return 1;
        size_t n;
        itd_cut_pos_t *pos = cut_positions(lp, &n);
        for (size_t i = 0; i < n; i++) {
                if (ppos(lp, pos[i].partition)->acked < pos[i].next_offset) {
                        itd_log(ITD_LOG_ERR, "checkpoint",
                                "no checkpoint %s: outputs of partition %d "
                                "below offset %lld are unacknowledged; "
                                "events after checkpoint %llu will be "
                                "consumed again",
                                why, (int)pos[i].partition,
                                (long long)pos[i].next_offset,
                                (unsigned long long)itd_ckdir_last_seq(
                                    lp->ck));
                        free(pos);
                        return 0;
                }
        }
        int64_t t0 = itd_now_mono_ms();
        int ok = 0;
        lp->consumed_at_pending = lp->res->consumed;
        if (itd_ckdir_cut(lp->ck, lp->eng, pos, n, 0, errstr,
                          sizeof errstr) != ITD_OK) {
                itd_log(ITD_LOG_ERR, "checkpoint", "%s: %s", why, errstr);
        } else {
                ok = 1;
                publish_cut(lp, 1);
                itd_log(ITD_LOG_NOTICE, "checkpoint",
                        "checkpoint %llu written %s in %lld ms",
                        (unsigned long long)itd_ckdir_last_seq(lp->ck), why,
                        (long long)(itd_now_mono_ms() - t0));
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
static void assign_from_checkpoint(loop_t *lp,
                                   rd_kafka_topic_partition_list_t *parts,
                                   int cooperative) {
        if (!cooperative) {
                size_t n = itd_engine_partitions(lp->eng, NULL, 0);
                int32_t *ps = itd_xcalloc(n ? n : 1, sizeof *ps);
                itd_engine_partitions(lp->eng, ps, n);
                for (size_t i = 0; i < n; i++) {
                        if (rd_kafka_topic_partition_list_find(
                                parts, lp->conf->topic_events, ps[i]))
                                continue;
                        itd_log(ITD_LOG_NOTICE, "checkpoint",
                                "partition %d is assigned elsewhere: "
                                "dropping its state",
                                (int)ps[i]);
                        itd_engine_drop_partition(lp->eng, ps[i]);
                        *ppos(lp, ps[i]) = (ppos_t){.applied = -1,
                                                    .acked = -1};
                }
                free(ps);
        }
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *el = &parts->elems[i];
                ppos_t *pp = ppos(lp, el->partition);
                const itd_partition_t *held =
                    itd_engine_partition_get(lp->eng, el->partition);
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
                itd_engine_drop_partition(lp->eng, el->partition);
                pp->applied = pp->acked = -1;
        }
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
        int cooperative = !strcmp(rd_kafka_rebalance_protocol(rk),
                                  "COOPERATIVE");
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                itd_log(ITD_LOG_NOTICE, "kafka", "assigned %d partition(s)",
                        parts->cnt);
                if (lp->ck)
                        assign_from_checkpoint(lp, parts, cooperative);
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
        /* Events waiting for their schema: settled when a checkpoint
         * follows, else left to the next owner. */
        if (lp->ck)
                release_parked(lp, 1);
        else
                for (int i = 0; i < parts->cnt; i++)
                        abandon_parked(lp, parts->elems[i].partition);
        drain_outputs(lp, itd_now_mono_ms() + lp->conf->shutdown_timeout_ms);
        int lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ||
                   rd_kafka_assignment_lost(rk);
        if (lp->ck) {
                /* Checkpoint first, so the partitions' next owner (maybe
                 * us again) resumes exactly at a complete cut. Lost ones
                 * may already be someone else's: no cut, no commit. */
                /* Without a fresh cut the state holds events whose
                 * outputs may be lost: not safe to keep. */
                if (!lost && !checkpoint_now(lp, "on revoke"))
                        lost = 1;
                for (int i = 0; i < parts->cnt; i++) {
                        int32_t p = parts->elems[i].partition;
                        ppos(lp, p)->assigned = 0;
                        /* Eager rebalancing revokes everything before
                         * each assignment: keep the state, parked at the
                         * cut, until the assignment says whether it
                         * stays ours. */
                        if (lost || cooperative) {
                                itd_engine_drop_partition(lp->eng, p);
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
static void flow_control(loop_t *lp) {
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
static void note_applied(loop_t *lp, rd_kafka_message_t **msgs, size_t n,
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

/* One bad event: a rate-limited line (the key is the user id: only its
 * pseudonym may be logged, log.h), then its dead letter. */
static void reject(loop_t *lp, const src_t *s, itd_reason_t why,
                   const char *detail) {
        uint64_t sup;
        char pseud[ITD_LOG_PSEUDONYM_SIZE];
        if (itd_ratelimit_allow(&lp->rl_decode, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_WARNING, "decode", "%s/%d@%lld (key %s): %s: %s",
                        lp->conf->topic_events, (int)s->partition,
                        (long long)s->offset,
                        itd_log_pseudonym(s->key, s->key_len, pseud,
                                          sizeof pseud),
                        itd_reason_name(why), detail);
        if (sup)
                itd_log(ITD_LOG_WARNING, "decode",
                        "%llu similar lines suppressed",
                        (unsigned long long)sup);
        dead_letter(lp, s, itd_reason_name(why), detail, track(lp, s, 1));
}

/* Runs lp->in[0..k) through the engine; logs why when it refuses the
 * batch (nothing of it was applied then). */
static itd_err_t run_engine(loop_t *lp, size_t k) {
        char errstr[256];
        /* A trigger for an event older than triggers.max_event_age by the
         * wall clock comes too late to act on (a backlog, old data
         * loaded); the engine has no clock of its own. */
        if (!lp->opts->triggers_event_time_only)
                itd_engine_set_trigger_clock(lp->eng, itd_now_wall_ms());
        itd_err_t err = itd_engine_process(
            lp->eng, lp->conf->topic_events, lp->in, k, itd_now_wall_ms(),
            lp->preds, lp->outcome, errstr, sizeof errstr);
        if (err)
                itd_log(ITD_LOG_ERR, "engine", "%s", errstr);
        return err;
}

/* The outputs of lp->in[0..k), processed by the engine; lp->src[j] says
 * where event j came from. */
static void emit(loop_t *lp, size_t k) {
        unsigned char buf[4096];
        int64_t now_wall = itd_now_wall_ms();
        itd_prediction_t *preds = lp->preds;
        for (size_t j = 0; j < k; j++) {
                const src_t *m = &lp->src[j];
                if (lp->outcome[j] != ITD_OUT_PREDICTED) {
                        lp->res->filtered++;
                        itd_prom_inc(lp->m, ITD_M_EVENTS_FILTERED, "other",
                                     1);
                        track(lp, m, 0);
                        continue;
                }
                /* A trigger is a second output of the same event: its
                 * offset waits for both acknowledgements. */
                itd_trigger_rec_t *trg = itd_engine_trigger(lp->eng, j);
                uint64_t token = track(lp, m, trg ? 2 : 1);
                if (trg) {
                        unsigned char tbuf[512];
                        size_t tlen;
                        trg->fired_at_ms = now_wall;
                        if (itd_codec_encode_trigger(lp->codec, trg,
                                                     lp->ids.trigger, tbuf,
                                                     sizeof tbuf,
                                                     &tlen) == ITD_OK) {
                                if (produce_output(lp, lp->rkt_trg,
                                                   record_ts(trg->event_ts_ms),
                                                   trg->user_id,
                                                   strlen(trg->user_id), tbuf,
                                                   tlen, NULL, token) ==
                                    ITD_ERR_RANGE)
                                        give_up(lp, token,
                                                "trigger record larger than "
                                                "message.max.bytes");
                        } else {
                                itd_log(ITD_LOG_ERR, "run",
                                        "trigger record did not encode");
                                itd_offsets_ack(lp->offsets, token);
                        }
                }
                size_t len;
                if (itd_codec_encode_prediction(lp->codec, &preds[j],
                                                lp->ids.prediction, buf,
                                                sizeof buf,
                                                &len) != ITD_OK) {
                        dead_letter(lp, m, "encode",
                                    "prediction did not fit 4 KiB", token);
                        continue;
                }
                if (produce_output(lp, lp->rkt_pred,
                                   record_ts(preds[j].event_ts_ms),
                                   preds[j].user_id,
                                   strlen(preds[j].user_id), buf, len, NULL,
                                   token) == ITD_ERR_RANGE)
                        give_up(lp, token,
                                "prediction larger than message.max.bytes");
                lp->res->predicted++;
                itd_prom_observe(lp->m, ITD_M_SCORE,
                                 preds[j].purchase_probability);
                if (lp->query)
                        itd_query_note(lp->query, &preds[j]);
                itd_prom_observe(lp->m, ITD_M_EVENT_TO_PREDICTION_SECONDS,
                                 (double)(now_wall - preds[j].event_ts_ms) /
                                        1000.0);
                if (lp->hooks.prediction)
                        lp->hooks.prediction(lp->hooks.arg, &preds[j]);
        }
}

static void process_batch(loop_t *lp, rd_kafka_message_t **msgs, size_t n) {
        char errstr[512];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                rd_kafka_message_t *m = msgs[i];
                if (m->err) {
                        uint64_t sup;
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                            itd_ratelimit_allow(&lp->rl_kafka,
                                                itd_now_mono_ms(), &sup))
                                itd_log(ITD_LOG_WARNING, "kafka",
                                        "consume: %s",
                                        rd_kafka_message_errstr(m));
                        msgs[i] = NULL;
                        rd_kafka_message_destroy(m);
                        continue;
                }
                lp->res->consumed++;
                itd_prom_inc(lp->m, ITD_M_EVENTS_CONSUMED, NULL, 1);
                uint64_t token = itd_offsets_track(lp->offsets, m->partition,
                                                   m->offset, EVENT_OUTPUTS);
                itd_reason_t why = itd_decoder_decode(
                    lp->dec, m->payload, m->len, itd_now_wall_ms(),
                    &lp->in[k].ev, errstr, sizeof errstr);
                if (why == ITD_REASON_PENDING) {
                        /* Waits for its schema (park.h); the rest flows
                         * on. Its offset holds commits and checkpoints. */
                        uint64_t sup;
                        if (itd_ratelimit_allow(&lp->rl_decode,
                                                itd_now_mono_ms(), &sup))
                                itd_log(ITD_LOG_INFO, "decode",
                                        "%s/%d@%lld waits: %s",
                                        lp->conf->topic_events,
                                        (int)m->partition,
                                        (long long)m->offset, errstr);
                        itd_park_add(
                            lp->park, m->partition, m->offset, m->key,
                            m->key_len, m->payload, m->len, token,
                            itd_now_mono_ms() +
                                lp->conf->input_schema_registry_timeout_ms);
                        continue;
                }
                if (why != ITD_REASON_OK) {
                        src_t s = src_of(m, token);
                        reject(lp, &s, why, errstr);
                        continue;
                }
                lp->in[k].partition = m->partition;
                lp->in[k].offset = m->offset;
                lp->src[k] = src_of(m, token);
                lp->msg_of[k] = i;
                k++;
        }
        if (k == 0) {
                note_applied(lp, msgs, n, NULL, 0);
                return;
        }
        if (run_engine(lp, k)) {
                /* Nothing of the batch was applied: these events are
                 * consumed again after a restart. */
                for (size_t j = 0; j < k; j++)
                        abandon(lp, lp->src[j].partition, EVENT_OUTPUTS);
                note_applied(lp, msgs, n, lp->msg_of, k);
                return;
        }
        note_applied(lp, msgs, n, NULL, 0);
        emit(lp, k);
}

/* Parked events that will not be released: their offsets stay
 * unacknowledged (consumed again by the partition's next owner), and
 * draining stops waiting for them. partition -1: all. */
static size_t abandon_parked(loop_t *lp, int32_t partition) {
        int32_t p = partition;
        size_t n = 0;
        for (;;) {
                if (partition < 0) {
                        if (!itd_park_partitions(lp->park, &p, 1))
                                break;
                }
                itd_parked_t *e = itd_park_take(lp->park, p);
                if (!e)
                        break;
                abandon(lp, p, EVENT_OUTPUTS);
                itd_parked_free(e);
                n++;
        }
        return n;
}

/*
 * Parked events whose look-up ended leave the park, in order per
 * partition: decoded ones go through the engine, the others are
 * dead-lettered with their reason. One still pending past its deadline is
 * dead-lettered as unknown_schema_id; so is every pending one when
 * settling (a checkpoint is due: its cut must not claim an event that is
 * neither in the engine nor dead-lettered).
 */
static void release_parked(loop_t *lp, int settle) {
        char errstr[512], detail[700];
        size_t max = itd_engine_max_batch(lp->eng);
        while (itd_park_count(lp->park) > 0) {
                size_t n_parts = itd_park_count(lp->park);
                int32_t *parts = itd_xmalloc(n_parts * sizeof *parts);
                n_parts = itd_park_partitions(lp->park, parts, n_parts);
                int64_t now = itd_now_mono_ms(), wall = itd_now_wall_ms();
                size_t k = 0;
                for (size_t i = 0; i < n_parts; i++) {
                        int32_t p = parts[i];
                        const itd_parked_t *f;
                        while (k < max && (f = itd_park_front(lp->park, p))) {
                                itd_reason_t why = itd_decoder_decode(
                                    lp->dec, f->value, f->len, wall,
                                    &lp->in[k].ev, errstr, sizeof errstr);
                                if (why == ITD_REASON_PENDING && !settle &&
                                    now < f->deadline_ms)
                                        break;
                                itd_parked_t *e = itd_park_take(lp->park, p);
                                src_t s = {e->key,   e->key_len, e->value,
                                           e->len,   p,          e->offset,
                                           e->token};
                                if (why == ITD_REASON_PENDING) {
                                        snprintf(detail, sizeof detail,
                                                 "%s; %s", errstr,
                                                 settle ? "no answer yet when "
                                                          "a checkpoint was "
                                                          "due"
                                                        : "no answer within "
                                                          "input.schema_"
                                                          "registry.timeout");
                                        reject(lp, &s,
                                               ITD_REASON_UNKNOWN_SCHEMA_ID,
                                               detail);
                                } else if (why != ITD_REASON_OK) {
                                        reject(lp, &s, why, errstr);
                                } else {
                                        lp->in[k].partition = p;
                                        lp->in[k].offset = e->offset;
                                        lp->src[k] = s;
                                        lp->taken[k++] = e;
                                        continue;
                                }
                                itd_parked_free(e);
                        }
                }
                free(parts);
                if (k > 0 && run_engine(lp, k) == ITD_OK) {
                        emit(lp, k);
                } else {
                        /* Not applied: held like any such event, and left
                         * for a restart (run_engine logs). */
                        for (size_t j = 0; j < k; j++) {
                                ppos(lp, lp->src[j].partition)->held = 1;
                                abandon(lp, lp->src[j].partition,
                                        EVENT_OUTPUTS);
                        }
                }
                for (size_t j = 0; j < k; j++)
                        itd_parked_free(lp->taken[j]);
                if (!settle || k == 0)
                        break;
        }
}

/* SIGHUP: re-read the file; apply what is reloadable, keep running on the
 * old config when the new one is bad. */
static void reload(loop_t *lp) {
        itd_notify_reloading();
        char errstr[1024], applied[512], restart[512];
        itd_conf_t *fresh = itd_conf_new();
        if (itd_conf_load(fresh, lp->opts->conf_path, errstr, sizeof errstr) !=
            ITD_OK) {
                itd_log(ITD_LOG_ERR, "conf",
                        "reload refused, keeping the running config: %s",
                        errstr);
                itd_prom_inc(lp->m, ITD_M_CONFIG_RELOADS, "failed", 1);
        } else {
                itd_conf_reload(lp->conf, fresh, applied, sizeof applied,
                                restart, sizeof restart);
                itd_log_setup(lp->conf->log_level, itd_log_format_get());
                itd_engine_set_threshold(lp->eng,
                                         (float)lp->conf->predict_threshold);
                itd_engine_set_learning_rate(
                    lp->eng, (float)lp->conf->model_learning_rate);
                itd_trigger_conf_t tc;
                itd_conf_to_triggers(lp->conf, &tc);
                if (itd_engine_set_triggers(lp->eng, &tc, errstr,
                                            sizeof errstr) != ITD_OK)
                        itd_log(ITD_LOG_ERR, "conf",
                                "trigger settings not applied: %s", errstr);
                itd_log(ITD_LOG_NOTICE, "conf", "reloaded %s: applied %s%s%s",
                        lp->opts->conf_path, *applied ? applied : "nothing",
                        *restart ? "; needs a restart to change: " : "",
                        restart);
                itd_prom_inc(lp->m, ITD_M_CONFIG_RELOADS, "ok", 1);
        }
        itd_conf_destroy(fresh);
        itd_notify_ready();
}

/*
 * checkpoint.dir: "auto" is $STATE_DIRECTORY (systemd's StateDirectory=,
 * the first of a colon-separated list) or off, "" is off. Opens the
 * folder and restores the newest usable cut into the engine.
 * @returns ITD_OK; ITD_ERR_CONF (the folder cannot be used; no cut usable
 * and some refused, since starting empty would throw away what they hold;
 * or every cut damaged under checkpoint.on_corrupt refuse).
 */
static itd_err_t open_checkpoints(loop_t *lp, char *errstr,
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
         * cut, so a test can kill the daemon while one is written. */
        const char *hook = getenv("ITD_TEST_CHECKPOINT_PAUSE_MS");
        int64_t pause_ms = hook ? strtoll(hook, NULL, 10) : 0;
        lp->ck = itd_ckdir_open(dir, lp->eng, lp->conf->topic_events,
                                (size_t)lp->conf->checkpoint_keep, pause_ms,
                                errstr, errstr_size);
        if (!lp->ck)
                return ITD_ERR_CONF; /* exit 78: a restart cannot help */
        itd_cut_pos_t *pos;
        size_t n;
        itd_cut_info_t info;
        char why[2048];
        itd_err_t err = itd_ckdir_restore(lp->ck, lp->eng, &pos, &n, &info,
                                          why, sizeof why);
        lp->last_cut_ms = itd_now_mono_ms();
        itd_engine_stats_t es;
        itd_engine_stats(lp->eng, &es);
        lp->train_skipped = es.train_skipped; /* logged by their run */
        if (err == ITD_ERR_INCOMPATIBLE) {
                snprintf(errstr, errstr_size, "%s", why);
                return ITD_ERR_CONF;
        }
        itd_prom_inc(lp->m, ITD_M_CHECKPOINT_DAMAGED, NULL,
                     itd_ckdir_damaged(lp->ck));
        if (err == ITD_ERR_CORRUPT &&
            lp->conf->checkpoint_on_corrupt == ITD_ON_CORRUPT_REFUSE) {
                snprintf(errstr, errstr_size, "%s; checkpoint.on_corrupt is "
                         "refuse: not starting over them (move them away, "
                         "or set start_empty, to start from scratch)", why);
                return ITD_ERR_CONF;
        }
        itd_ckdir_set_aside_damaged(lp->ck);
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
        itd_cut_info_fini(&info);
        return ITD_OK;
}

itd_err_t itd_run(itd_conf_t *conf, const itd_run_opts_t *opts,
                  itd_run_result_t *res, char *errstr, size_t errstr_size) {
        memset(res, 0, sizeof *res);
        loop_t lp = {.conf = conf, .opts = opts, .res = res, .lag_total = -1};
        if (opts->hooks)
                lp.hooks = *opts->hooks;
        lp.rl_decode = (itd_ratelimit_t){.interval_ms = 10000, .burst = 10};
        lp.rl_kafka = (itd_ratelimit_t){.interval_ms = 10000, .burst = 10};
        itd_err_t err = ITD_ERR_ARG;
        rd_kafka_message_t **msgs = NULL;

        lp.offsets = itd_offsets_new();
        lp.park = itd_park_new();
        lp.rq = itd_kafka_retryq_new();
        lp.m = itd_prom_new();
        itd_health_init(&lp.health, conf->health_liveness_timeout_ms);
        itd_watchdog_init(&lp.wd);
        if (*conf->metrics_listen) {
                lp.http = itd_http_start(conf->metrics_listen, lp.m, &lp.health,
                                         errstr, errstr_size);
                if (!lp.http) {
                        err = ITD_ERR_CONF; /* port in use: exit 78 */
                        goto out;
                }
                if (conf->metrics_query) {
                        lp.query = itd_query_new(65536);
                        itd_http_set_query(lp.http, lp.query);
                }
        }
        itd_prom_set(lp.m, ITD_M_CHECKPOINT_AGE_SECONDS, NULL, NAN);
        lp.codec = itd_codec_new(errstr, errstr_size);
        if (!lp.codec)
                goto out;
        /* Before anything is consumed: a record must never go out with
         * another schema's id (out_schemas.h). */
        err = itd_out_schemas_resolve(conf,
                                      ITD_OUT_PREDICTION | ITD_OUT_TRIGGER,
                                      opts->stop, &lp.ids, errstr,
                                      errstr_size);
        if (err)
                goto out;
        err = ITD_ERR_ARG;
        itd_input_conf_t ic;
        itd_conf_to_input(conf, &ic);
        lp.dec = itd_decoder_new(&ic, errstr, errstr_size);
        if (!lp.dec) {
                err = ITD_ERR_CONF;
                goto out;
        }
        lp.eng = itd_conf_new_engine(conf, errstr, errstr_size);
        if (!lp.eng)
                goto out;
        itd_engine_enable_triggers(lp.eng);
        lp.mon = itd_monitor_new((uint64_t)conf->metrics_window,
                                 (float)conf->predict_threshold);
        itd_engine_set_example_hook(lp.eng, itd_monitor_hook, lp.mon);
        err = open_checkpoints(&lp, errstr, errstr_size);
        if (err)
                goto out;
        /* After the restore: a restored model starts a new lineage too. */
        char model_id[ITD_MODEL_ID_MAX];
        itd_engine_set_model_id(lp.eng,
                                itd_model_id_new(conf, lp.eng, model_id));
        itd_log(ITD_LOG_NOTICE, "model", "model id %s (step %lld)", model_id,
                (long long)itd_model_steps(itd_engine_model(lp.eng)));
        err = ITD_ERR_ARG;
        atomic_store(&lp.health.model_loaded, 1);
        lp.producer = itd_kafka_new(RD_KAFKA_PRODUCER,
                                    itd_kafka_producer_defaults, NULL,
                                    conf->n_kafka, conf->kafka_keys,
                                    conf->kafka_values,
                                    &(itd_kafka_cbs_t){.dr_msg = dr_cb,
                                                       .error = error_cb},
                                    &lp, errstr, errstr_size);
        if (!lp.producer) {
                /* librdkafka refused its configuration (a plugin that
                 * does not load, inconsistent settings): exit 78 */
                err = ITD_ERR_CONF;
                goto out;
        }
        lp.max_msg_bytes = itd_kafka_max_message_bytes(lp.producer);
        lp.consumer = itd_kafka_new(RD_KAFKA_CONSUMER,
                                    itd_kafka_consumer_defaults,
                                    lp.ck ? checkpoint_consumer_extra : NULL,
                                    conf->n_kafka, conf->kafka_keys,
                                    conf->kafka_values,
                                    &(itd_kafka_cbs_t){.rebalance = rebalance_cb,
                                                       .stats = stats_cb,
                                                       .error = error_cb},
                                    &lp, errstr, errstr_size);
        if (!lp.consumer) {
                err = ITD_ERR_CONF;
                goto out;
        }
        lp.rkt_pred = rd_kafka_topic_new(lp.producer, conf->topic_predictions,
                                         NULL);
        lp.rkt_dlq = rd_kafka_topic_new(lp.producer, conf->topic_dead_letter,
                                        NULL);
        lp.rkt_trg = rd_kafka_topic_new(lp.producer, conf->topic_triggers,
                                        NULL);
        rd_kafka_poll_set_consumer(lp.consumer);
        rd_kafka_topic_partition_list_t *sub =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, conf->topic_events,
                                          RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t kerr = rd_kafka_subscribe(lp.consumer, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (kerr) {
                snprintf(errstr, errstr_size, "subscribe to \"%s\": %s",
                         conf->topic_events, rd_kafka_err2str(kerr));
                err = ITD_ERR_KAFKA;
                goto out;
        }
        itd_log(ITD_LOG_NOTICE, "run", "consuming \"%s\", publishing to \"%s\"",
                conf->topic_events, conf->topic_predictions);

        size_t max_batch = itd_engine_max_batch(lp.eng);
        msgs = itd_xcalloc(max_batch, sizeof *msgs);
        lp.in = itd_xcalloc(max_batch, sizeof *lp.in);
        lp.src = itd_xcalloc(max_batch, sizeof *lp.src);
        lp.preds = itd_xcalloc(max_batch, sizeof *lp.preds);
        lp.outcome = itd_xcalloc(max_batch, sizeof *lp.outcome);
        lp.msg_of = itd_xcalloc(max_batch, sizeof *lp.msg_of);
        lp.taken = itd_xcalloc(max_batch, sizeof *lp.taken);
        rd_kafka_queue_t *rkq = rd_kafka_queue_get_consumer(lp.consumer);

        int64_t t0 = itd_now_mono_ms(), last_ms = t0;
        uint64_t last_events = 0;
        int64_t interval = !opts->progress ? conf->metrics_log_interval_ms
                           : isatty(STDERR_FILENO) ? 250
                                                   : 2000;
        int64_t last_gauges = t0, last_msg_ms = t0;
        while (!*opts->stop && !atomic_load(&lp.fatal) &&
               !(lp.hooks.done &&
                 lp.hooks.done(lp.hooks.arg, res->consumed, last_msg_ms))) {
                size_t n = 0;
                int64_t now = itd_now_mono_ms();
                itd_health_beat(&lp.health);
                itd_watchdog_kick(&lp.wd, now);
                if (opts->reload && *opts->reload) {
                        *opts->reload = 0;
                        reload(&lp);
                        interval = !opts->progress
                                       ? conf->metrics_log_interval_ms
                                       : interval;
                }
                rd_kafka_message_t *first = rd_kafka_consumer_poll(lp.consumer,
                                                                   100);
                if (first) {
                        last_msg_ms = now;
                        msgs[n++] = first;
                        ssize_t more = rd_kafka_consume_batch_queue(
                            rkq, 0, msgs + 1, max_batch - 1);
                        if (more > 0)
                                n += (size_t)more;
                        process_batch(&lp, msgs, n);
                        itd_prom_observe(
                            lp.m, ITD_M_CONSUME_TO_PRODUCE_SECONDS,
                            (double)(itd_now_mono_ms() - now) / 1000.0);
                        for (size_t i = 0; i < n; i++)
                                if (msgs[i])
                                        rd_kafka_message_destroy(msgs[i]);
                }
                if (lp.query)
                        itd_query_serve(lp.query, lp.eng);
                itd_decoder_poll(lp.dec, 0);
                release_parked(&lp, 0);
                produce_retries(&lp);
                rd_kafka_poll(lp.producer, 0);
                store_acknowledged(&lp);
                if (lp.ck)
                        checkpoint_tick(&lp);
                flow_control(&lp);
                if (itd_now_mono_ms() - last_gauges >= 500) {
                        last_gauges = itd_now_mono_ms();
                        /* the engine decides what is idle */
                        itd_engine_advance_idle(lp.eng, itd_now_wall_ms());
                        publish_gauges(&lp);
                }
                if (itd_now_mono_ms() - last_ms >= interval)
                        report(&lp, t0, &last_events, &last_ms, 0);
        }
        rd_kafka_queue_destroy(rkq);

        /* Graceful stop: outputs first, then the offsets that cover them. */
        atomic_store(&lp.health.stopping, 1);
        itd_notify_stopping();
        itd_log(ITD_LOG_NOTICE, "run", "stopping%s: flushing outputs",
                atomic_load(&lp.fatal) ? " on a fatal Kafka error" : "");
        /* A producer in fatal state delivers nothing more: what is in
         * flight stays unacknowledged (consumed again after a restart),
         * and waiting for it would only delay the exit. */
        char fwhy[256];
        int producer_dead = rd_kafka_fatal_error(lp.producer, fwhy,
                                                 sizeof fwhy) != 0;
        /* Events still waiting for their schema: a final checkpoint
         * settles them (its cut must be exact); without checkpoints they
         * are left, unacknowledged, to be consumed again after a restart. */
        if (lp.ck && !producer_dead)
                release_parked(&lp, 1);
        res->awaiting_schema = abandon_parked(&lp, -1);
        drain_outputs(&lp, itd_now_mono_ms() +
                               (producer_dead ? 0 : conf->shutdown_timeout_ms));
        if (itd_offsets_in_flight(lp.offsets) > 0)
                itd_log(ITD_LOG_ERR, "run",
                        "%llu outputs still unacknowledged after "
                        "shutdown.timeout; their events will be consumed "
                        "again on restart",
                        (unsigned long long)itd_offsets_in_flight(lp.offsets));
        if (lp.ck) {
                checkpoint_now(&lp, "at stop");
        } else {
                kerr = rd_kafka_commit(lp.consumer, NULL, 0);
                if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                        itd_log(ITD_LOG_WARNING, "kafka", "final commit: %s",
                                rd_kafka_err2str(kerr));
        }
        report(&lp, t0, &last_events, &last_ms, 1);
        publish_gauges(&lp);
        /* The promise of DESIGN.md, in one line a test can check: every
         * consumed event is a prediction, a dead letter or a filter. */
        itd_log(ITD_LOG_NOTICE, "run",
                "accounting: consumed=%llu predicted=%llu dead_lettered=%llu "
                "filtered=%llu undeliverable=%llu "
                "dead_letters_truncated=%llu awaiting_schema=%llu",
                (unsigned long long)res->consumed,
                (unsigned long long)res->predicted,
                (unsigned long long)res->dead_lettered,
                (unsigned long long)res->filtered,
                (unsigned long long)res->undeliverable,
                (unsigned long long)res->dead_letters_truncated,
                (unsigned long long)res->awaiting_schema);
        res->seconds = (double)(itd_now_mono_ms() - t0) / 1000.0;
        rd_kafka_consumer_close(lp.consumer);
        err = ITD_OK;
        if (atomic_load(&lp.fatal)) {
                snprintf(errstr, errstr_size, "%s", lp.fatal_why);
                err = ITD_ERR_KAFKA;
        }
out:
        if (lp.eng)
                itd_engine_stats(lp.eng, &res->engine);
        free(msgs);
        free(lp.in);
        free(lp.src);
        free(lp.preds);
        free(lp.outcome);
        free(lp.msg_of);
        free(lp.taken);
        itd_park_destroy(lp.park);
        itd_kafka_retryq_destroy(lp.rq);
        if (lp.rkt_pred)
                rd_kafka_topic_destroy(lp.rkt_pred);
        if (lp.rkt_dlq)
                rd_kafka_topic_destroy(lp.rkt_dlq);
        if (lp.rkt_trg)
                rd_kafka_topic_destroy(lp.rkt_trg);
        if (lp.consumer)
                rd_kafka_destroy(lp.consumer);
        if (lp.producer)
                rd_kafka_destroy(lp.producer);
        itd_ckdir_close(lp.ck);
        free(lp.pp);
        itd_engine_destroy(lp.eng);
        itd_monitor_destroy(lp.mon);
        itd_codec_destroy(lp.codec);
        itd_decoder_destroy(lp.dec);
        itd_offsets_destroy(lp.offsets);
        itd_http_stop(lp.http);
        itd_query_destroy(lp.query); /* after the server: it used it */
        itd_prom_destroy(lp.m);
        return err;
}
