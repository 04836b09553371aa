/*
 * run_int.h - what the stages of `intentd run` share (daemon-internal):
 * the loop's state and each stage's calls. One file per stage:
 *
 *   run.c      the loop: poll a batch -> decode -> engine -> emit; reload,
 *              graceful stop
 *   decode.c   messages -> events; bad ones dead-lettered, those waiting
 *              for their schema parked and released
 *   source.c   the Kafka consumer: setup, rebalance, per-partition
 *              positions, back-pressure (pause/resume)
 *   sink.c     the Kafka producer: outputs, dead letters, delivery
 *              reports, retries, giving up
 *   commit.c   offsets and checkpoints: acknowledged offsets stored or
 *              committed, checkpoints written, published, restored and resumed
 *   statelog.c the state changelog topic: partition snapshots written,
 *              their positions committed, partitions restored on assignment
 *   status.c   what the loop tells the outside: progress line, log line,
 *              systemd STATUS, the /metrics gauges
 *
 * @thread pipeline (the loop's one thread) unless a callback says
 * otherwise.
 */
#ifndef INTENTD_DAEMON_RUN_INT_H
#define INTENTD_DAEMON_RUN_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "checkpoint.h"
#include "erase.h"
#include "http.h"
#include "intentd/codec.h"
#include "intentd/input.h"
#include "intentd/kafka.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/offsets.h"
#include "intentd/workers.h"
#include "modelsync.h"
#include "monitor.h"
#include "notify.h"
#include "out_schemas.h"
#include "park.h"
#include "prom.h"
#include "query.h"
#include "run.h"

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
 * outcome leaves unused is acknowledged at once (itd_sink_track()). */
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

typedef struct itd_statelog_s itd_statelog_t;

typedef struct loop_s {
        itd_conf_t *conf;
        itd_modelsync_t *msync; /* NULL without topics.model */
        const itd_run_opts_t *opts;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        rd_kafka_topic_t *rkt_pred;
        rd_kafka_topic_t *rkt_dlq;
        rd_kafka_topic_t *rkt_trg;
        rd_kafka_topic_t *rkt_risk; /* topics.risk, or NULL: off */
        itd_codec_t *codec;       /* encodes predictions */
        itd_out_ids_t ids;        /* each output topic's schema id */
        itd_decoder_t *dec;       /* decodes and validates events */
        /* pipeline.workers engines (workers.h), each owning the partitions
         * p % n_engs == its index; engs[] and eng borrowed from wk. eng is
         * worker 0's, which holds the one model right after
         * itd_workers_sync (checkpoints, model sync use it so). */
        itd_workers_t *wk;
        itd_engine_t **engs;
        size_t n_engs;
        itd_engine_t *eng;
        itd_monitor_t *mon;       /* windowed progressive metrics */
        itd_query_t *query;       /* GET /users/<id>, or NULL */
        itd_erasure_t *erase;     /* topics.control, or NULL: off */
        itd_offsets_t *offsets;
        itd_park_t *park;         /* events waiting for their schema */
        uint64_t abandoned;       /* sum of ppos_t.abandoned */
        uint64_t train_skipped;   /* skipped training steps logged so far */
        /* One batch's worth, max_batch each: decoded events, where they
         * came from, engine results. */
        itd_row_t *rows;          /* the engine's batch (engine.h) */
        src_t *src;
        size_t *msg_of;           /* rows[k] came from msgs[msg_of[k]] */
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

        itd_checkpoint_dir_t *ck; /* NULL: checkpoints off */
        ppos_t *pp;               /* indexed by partition */
        size_t n_pp;
        int64_t last_checkpoint_ms; /* monotonic, last checkpoint started */
        uint64_t consumed_at_checkpoint; /* res->consumed at the last complete
                                          * checkpoint */
        uint64_t consumed_at_pending;    /* ... at the checkpoint in progress */

        itd_statelog_t *sl;       /* NULL: topics.changelog off */
} loop_t;

/* The positions of partition p, created unknown on first use. */
static inline ppos_t *ppos(loop_t *lp, int32_t p) {
        if ((size_t)p >= lp->n_pp) {
                size_t n = (size_t)p + 1;
                lp->pp = itd_xrealloc(lp->pp, n * sizeof *lp->pp);
                for (size_t i = lp->n_pp; i < n; i++)
                        lp->pp[i] = (ppos_t){.applied = -1, .acked = -1};
                lp->n_pp = n;
        }
        return &lp->pp[p];
}

/* The engine that owns partition p (its worker's). */
static inline itd_engine_t *eng_of(const loop_t *lp, int32_t p) {
        return lp->engs[(size_t)(p < 0 ? 0 : p) % lp->n_engs];
}

/* ---- run.c -------------------------------------------------------------- */

/* librdkafka's client-wide error callback, for both clients: a fatal error
 * stops the run (lp->fatal); others are logged, rate-limited. */
void itd_run_error_cb(rd_kafka_t *rk, int err, const char *reason,
                      void *opaque);
/* Runs lp->rows[0..k) through the engine; ITD_OK, or an error (logged)
 * when it refused the batch (nothing of it applied). */
itd_err_t itd_run_engine(loop_t *lp, size_t k);
/* Produces the outputs of lp->rows[0..k), processed by the engine. */
void itd_run_emit(loop_t *lp, size_t k);
/* Every partition the engines hold, ascending (caller frees *ps). */
size_t itd_run_partitions(loop_t *lp, int32_t **ps);
/* Merges the workers' replicas now (itd_workers_sync): lp->eng holds the
 * one model after it. Logs a failure. */
void itd_run_sync_workers(loop_t *lp);

/* ---- decode.c ----------------------------------------------------------- */

/* Decodes msgs[0..n) into lp->rows, lp->src, lp->msg_of: returns how many
 * events go to the engine. Bad ones are dead-lettered, pending ones
 * parked; failed messages are destroyed and set to NULL. */
size_t itd_decode_batch(loop_t *lp, rd_kafka_message_t **msgs, size_t n);
/* Parked events whose schema look-up ended go through the engine or to
 * the dead letters; settle: every one, now (a checkpoint is due). */
void itd_decode_release_parked(loop_t *lp, int settle);
/* Parked events left for the next owner; partition -1: all. Returns how
 * many. */
size_t itd_decode_abandon_parked(loop_t *lp, int32_t partition);

/* ---- source.c ----------------------------------------------------------- */

/* Creates the consumer (rebalance, statistics and error callbacks) and
 * subscribes to the events topic. ITD_ERR_CONF or ITD_ERR_KAFKA with
 * errstr. */
itd_err_t itd_source_open(loop_t *lp, char *errstr, size_t errstr_size);
void itd_source_close(loop_t *lp);
/* outputs of an event in partition that will never be acknowledged. */
void itd_source_abandon(loop_t *lp, int32_t partition, uint64_t outputs);
/* Pauses or resumes consumption by outputs in flight and parked bytes. */
void itd_source_flow_control(loop_t *lp);
/* Moves the applied positions past msgs[0..n); unapplied: indexes of
 * events the engine did not take (their partitions are held there). */
void itd_source_note_applied(loop_t *lp, rd_kafka_message_t **msgs,
                             size_t n, const size_t *unapplied,
                             size_t n_un);

/* ---- sink.c ------------------------------------------------------------- */

/* Creates the producer (delivery reports) and the output topics.
 * ITD_ERR_CONF with errstr. */
itd_err_t itd_sink_open(loop_t *lp, char *errstr, size_t errstr_size);
void itd_sink_close(loop_t *lp);
/* The token of an event with `outputs` outputs (<= EVENT_OUTPUTS). */
uint64_t itd_sink_track(loop_t *lp, const src_t *s, unsigned outputs);
/* One output of a tracked event; ITD_ERR_RANGE: too large, nothing sent. */
itd_err_t itd_sink_produce(loop_t *lp, rd_kafka_topic_t *rkt, int64_t ts_ms,
                           const void *key, size_t key_len,
                           const void *value, size_t len,
                           rd_kafka_headers_t *hdrs, uint64_t token);
/* The event's bytes to the dead-letter topic with reason headers. */
void itd_sink_dead_letter(loop_t *lp, const src_t *msg, const char *reason,
                          const char *detail, uint64_t token);
/* An output that will never be delivered: counted, logged, released. */
void itd_sink_give_up(loop_t *lp, uint64_t token, const char *why);
/* Produces failed deliveries again. */
void itd_sink_retries(loop_t *lp);
/* Serves delivery reports until nothing is in flight or deadline_ms. */
void itd_sink_drain(loop_t *lp, int64_t deadline_ms);

/* ---- commit.c ----------------------------------------------------------- */

/* Opens checkpoint.dir and restores the newest usable checkpoint. */
itd_err_t itd_commit_open(loop_t *lp, char *errstr, size_t errstr_size);
/* Stores (or, with checkpoints, notes) each acknowledged prefix. */
void itd_commit_store(loop_t *lp);
/* Finishes the checkpoint in progress, or starts one when due. */
void itd_commit_tick(loop_t *lp);
/* A checkpoint in place, now (revoke, stop); 1 when one was written. */
int itd_commit_now(loop_t *lp, const char *why);
/* Resumes assigned partitions at their checkpointed positions. */
void itd_commit_assign(loop_t *lp, rd_kafka_topic_partition_list_t *parts,
                       int cooperative);

/* ---- statelog.c --------------------------------------------------------- */

/* With topics.changelog: its producer and reader into lp->sl (else NULL).
 * ITD_ERR_CONF with errstr. */
itd_err_t itd_statelog_open(loop_t *lp, char *errstr, size_t errstr_size);
void itd_statelog_close(loop_t *lp);
/* Main loop: snapshots due are encoded, produced once their outputs are
 * acknowledged, and their positions committed once acknowledged. */
void itd_statelog_tick(loop_t *lp);
/* Before an assignment takes effect: each partition is restored from its
 * newest complete snapshot when that is newer than what the engine holds
 * (ppos applied set to its position); /readyz says so meanwhile. */
void itd_statelog_assign(loop_t *lp, rd_kafka_topic_partition_list_t *parts);
/* Revoke, stop: a last snapshot of each of ps[0..n) (outputs drained
 * first), acknowledged and committed by deadline_ms. 1 when every one's
 * changelog covers its applied position. */
int itd_statelog_final(loop_t *lp, const int32_t *ps, size_t n,
                       int64_t deadline_ms);
/* Forgets partition p's snapshot in progress (revoked or lost). */
void itd_statelog_release(loop_t *lp, int32_t p);
/* Partition p's state lost something that must not survive elsewhere (an
 * erased user): its next snapshot is written as soon as its outputs are
 * acknowledged, not at the interval; keys of parts earlier snapshots used
 * beyond the new one's are tombstoned with it (every snapshot does that),
 * so after compaction no record holds what was erased. No-op when off. */
void itd_statelog_erased(loop_t *lp, int32_t p);
/* A tombstone (null value) for key on changelog partition p, not waited
 * for. ITD_OK (also when off) or ITD_ERR_KAFKA. */
itd_err_t itd_statelog_tombstone(loop_t *lp, int32_t p, const char *key);

/* ---- status.c ----------------------------------------------------------- */

/* The progress line or log line and systemd STATUS, every interval. */
void itd_status_report(loop_t *lp, int64_t t0, uint64_t *last_events,
                       int64_t *last_ms, int final);
/* Mirrors the engine's counters into the /metrics registry. */
void itd_status_gauges(loop_t *lp);

#endif
