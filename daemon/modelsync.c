/*
 * modelsync.c - the model topic (modelsync.h): a producer and an
 * assign-only consumer of its partition 0, separate from the events
 * consumer and the outputs producer, so the exchange neither joins the
 * consumer group nor shares a delivery path with predictions.
 *
 * Partition 0 only: one ordered log, so a new instance that reads it from
 * the beginning sees every snapshot and change in the order they were
 * published.
 */
#include "modelsync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "intentd/kafka.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/msync.h"

/* The consumer never commits: where it reads from is decided at start. */
static const char *const consumer_extra[] = {"enable.auto.commit", "false",
                                             NULL};

/* Catching up at start gives up after this long (a topic that does not
 * answer): the instance then starts with what it merged so far. */
#define CATCH_UP_MS 60000
/* Messages merged per tick at most: the pipeline thread goes on. */
#define TICK_MAX 256

struct itd_modelsync_s {
        itd_engine_t *eng;
        itd_msync_t *ms;
        rd_kafka_t *producer;
        rd_kafka_t *consumer;
        rd_kafka_topic_t *rkt;
        char topic[256];
        char key[17];
        int64_t interval_ms, snapshot_ms;
        int64_t last_pub_ms, last_snap_ms, last_tick_ms;
        uint64_t refused, failed;
        itd_ratelimit_t rl;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                  void *opaque) {
        (void)rk;
        itd_modelsync_t *s = opaque;
        if (!msg->err)
                return;
        s->failed++;
        uint64_t sup = 0;
        if (itd_ratelimit_allow(&s->rl, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_WARNING, "model",
                        "model sync: a message to \"%s\" was not delivered: "
                        "%s (the other instances miss that part of this "
                        "instance's change)",
                        s->topic, rd_kafka_err2str(msg->err));
}

static itd_err_t emit(const void *buf, size_t len, void *arg) {
        itd_modelsync_t *s = arg;
        for (int tries = 0;; tries++) {
                if (rd_kafka_produce(s->rkt, 0, RD_KAFKA_MSG_F_COPY,
                                     (void *)buf, len, s->key,
                                     strlen(s->key), NULL) == 0)
                        return ITD_OK;
                rd_kafka_resp_err_t err = rd_kafka_last_error();
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries >= 50) {
                        itd_log(ITD_LOG_WARNING, "model",
                                "model sync: producing to \"%s\": %s",
                                s->topic, rd_kafka_err2str(err));
                        return ITD_ERR_KAFKA;
                }
                rd_kafka_poll(s->producer, 100);
        }
}

static void publish(itd_modelsync_t *s, int full) {
        char err[256];
        size_t n = 0;
        if (itd_msync_publish(s->ms, full, emit, s, &n, err, sizeof err) !=
            ITD_OK)
                itd_log(ITD_LOG_WARNING, "model", "%s", err);
        rd_kafka_poll(s->producer, 0);
}

/* Merges one consumed message; adopt: take full snapshots too. */
static void merge(itd_modelsync_t *s, const rd_kafka_message_t *m,
                  int adopt) {
        if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        itd_log(ITD_LOG_WARNING, "model",
                                "model sync: consuming \"%s\": %s", s->topic,
                                rd_kafka_message_errstr(m));
                return;
        }
        char err[256];
        if (itd_msync_merge(s->ms, m->payload, m->len, adopt, err,
                            sizeof err) == ITD_OK)
                return;
        s->refused++;
        uint64_t sup = 0;
        if (itd_ratelimit_allow(&s->rl, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_WARNING, "model", "%s at %s/0@%" PRId64
                        " (skipped)",
                        err, s->topic, m->offset);
}

/* Reads the topic up to the high watermark it had at start. */
static void catch_up(itd_modelsync_t *s, int fresh) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            s->consumer, s->topic, 0, &lo, &hi, 10000);
        if (kerr) {
                itd_log(ITD_LOG_WARNING, "model",
                        "model sync: \"%s\" partition 0 unreadable (%s); "
                        "starting from %s",
                        s->topic, rd_kafka_err2str(kerr),
                        fresh ? "the initial model" : "the checkpoint");
                hi = lo = 0;
        }
        rd_kafka_topic_partition_list_t *tp =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tp, s->topic, 0)->offset =
            fresh ? lo : hi;
        kerr = rd_kafka_assign(s->consumer, tp);
        rd_kafka_topic_partition_list_destroy(tp);
        if (kerr) {
                itd_log(ITD_LOG_WARNING, "model",
                        "model sync: assigning \"%s\": %s", s->topic,
                        rd_kafka_err2str(kerr));
                return;
        }
        uint64_t n = 0;
        int64_t deadline = itd_now_mono_ms() + CATCH_UP_MS;
        int64_t next = lo;
        while (fresh && next < hi && itd_now_mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer,
                                                               100);
                if (!m)
                        continue;
                if (!m->err) {
                        next = m->offset + 1;
                        n++;
                }
                merge(s, m, 1);
                rd_kafka_message_destroy(m);
        }
        itd_msync_stats_t st;
        itd_msync_stats(s->ms, &st);
        if (fresh && next < hi)
                itd_log(ITD_LOG_WARNING, "model",
                        "model sync: caught up only to %s/0@%" PRId64
                        " of %" PRId64 " in %d s",
                        s->topic, next, hi, CATCH_UP_MS / 1000);
        itd_log(ITD_LOG_NOTICE, "model",
                "model sync: instance %s on \"%s\"; %s: %" PRIu64
                " messages read, %" PRIu64 " snapshot parts adopted, %" PRIu64
                " changes merged (%" PRIu64 " examples)",
                s->key, s->topic,
                fresh ? "started from the topic" : "kept the checkpoint", n,
                st.adopted, st.merged, st.examples_merged);
}

itd_err_t itd_modelsync_start(const itd_conf_t *conf, itd_engine_t *eng,
                              int fresh, itd_modelsync_t **out, char *errstr,
                              size_t errstr_size) {
        *out = NULL;
        if (!conf->topic_model || !*conf->topic_model)
                return ITD_OK;
        itd_modelsync_t *s = itd_xcalloc(1, sizeof(*s));
        s->eng = eng;
        snprintf(s->topic, sizeof s->topic, "%s", conf->topic_model);
        s->interval_ms = conf->model_sync_interval_ms;
        s->snapshot_ms = conf->model_sync_snapshot_interval_ms;
        s->rl = (itd_ratelimit_t){.interval_ms = 10000, .burst = 5};
        uint64_t id = 0;
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
                id = (uint64_t)itd_now_wall_ms() ^ ((uint64_t)getpid() << 32);
        snprintf(s->key, sizeof s->key, "%016" PRIx64, id);
        itd_err_t err = ITD_ERR_CONF;
        s->producer = itd_kafka_new(
            RD_KAFKA_PRODUCER, itd_kafka_producer_defaults, NULL,
            conf->n_kafka, conf->kafka_keys, conf->kafka_values,
            &(itd_kafka_cbs_t){.dr_msg = dr_cb}, s, errstr, errstr_size);
        if (!s->producer)
                goto fail;
        s->consumer = itd_kafka_new(
            RD_KAFKA_CONSUMER, itd_kafka_consumer_defaults, consumer_extra,
            conf->n_kafka, conf->kafka_keys, conf->kafka_values, NULL, s,
            errstr, errstr_size);
        if (!s->consumer)
                goto fail;
        rd_kafka_poll_set_consumer(s->consumer);
        size_t max = itd_kafka_max_message_bytes(s->producer);
        max = max > 1000000 ? 1000000 : max;
        /* room for the record's own framing around the value */
        max = max > ITD_MSYNC_MIN_BYTES + 1024 ? max - 1024
                                               : ITD_MSYNC_MIN_BYTES;
        s->ms = itd_msync_new(itd_engine_model(eng), id, max, errstr,
                              errstr_size);
        if (!s->ms)
                goto fail;
        s->rkt = rd_kafka_topic_new(s->producer, s->topic, NULL);
        catch_up(s, fresh);
        s->last_pub_ms = s->last_snap_ms = itd_now_mono_ms();
        *out = s;
        return ITD_OK;
fail:
        itd_modelsync_stop(s, 0);
        return err;
}

/* Ticks at least this often with pipeline workers (itd_modelsync_due). */
#define WORKERS_TICK_MS 1000

int itd_modelsync_due(const itd_modelsync_t *s, int64_t now_ms) {
        return s && (now_ms - s->last_pub_ms >= s->interval_ms ||
                     now_ms - s->last_snap_ms >= s->snapshot_ms ||
                     now_ms - s->last_tick_ms >= WORKERS_TICK_MS);
}

void itd_modelsync_tick(itd_modelsync_t *s, int64_t now_ms) {
        if (!s)
                return;
        s->last_tick_ms = now_ms;
        for (int i = 0; i < TICK_MAX; i++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, 0);
                if (!m)
                        break;
                merge(s, m, 0);
                rd_kafka_message_destroy(m);
        }
        if (now_ms - s->last_pub_ms >= s->interval_ms) {
                s->last_pub_ms = now_ms;
                publish(s, 0);
        }
        if (now_ms - s->last_snap_ms >= s->snapshot_ms) {
                s->last_snap_ms = now_ms;
                publish(s, 1);
        }
        rd_kafka_poll(s->producer, 0);
}

void itd_modelsync_counts(const itd_modelsync_t *s, uint64_t *published,
                          uint64_t *merged) {
        itd_msync_stats_t st = {0};
        if (s && s->ms)
                itd_msync_stats(s->ms, &st);
        *published = st.published;
        *merged = st.merged;
}

void itd_modelsync_stop(itd_modelsync_t *s, int64_t timeout_ms) {
        if (!s)
                return;
        if (s->ms && s->rkt) {
                publish(s, 0);
                rd_kafka_flush(s->producer, (int)timeout_ms);
                itd_msync_stats_t st;
                itd_msync_stats(s->ms, &st);
                itd_log(ITD_LOG_NOTICE, "model",
                        "model sync: instance %s published %" PRIu64
                        " messages (%" PRIu64 " of snapshots), merged %" PRIu64
                        " changes of other instances (%" PRIu64
                        " examples); refused %" PRIu64 ", undelivered %" PRIu64,
                        s->key, st.published, st.published_full, st.merged,
                        st.examples_merged, s->refused, s->failed);
        }
        if (s->rkt)
                rd_kafka_topic_destroy(s->rkt);
        if (s->consumer) {
                rd_kafka_consumer_close(s->consumer);
                rd_kafka_destroy(s->consumer);
        }
        if (s->producer)
                rd_kafka_destroy(s->producer);
        itd_msync_destroy(s->ms);
        free(s);
}
