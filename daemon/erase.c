/*
 * erase.c - erasure on request (erase.h): control records in, the user
 * forgotten in every partition the engine holds, acknowledgements out once
 * nothing intentd will restore from holds the user.
 *
 * The control consumer is a client of its own, in a consumer group of its
 * own per instance (the events group's id + ".control." + the instance's
 * group.instance.id, or the host name), so every instance reads every
 * control record, whatever partition it came on, and erases what it holds.
 * Its offsets are committed per partition only up to the first request
 * whose acknowledgement is not yet delivered: a crash before then reads
 * the request again after the restart (erasing twice is harmless, and a
 * restart from an older checkpoint that still held the user is erased
 * again).
 *
 * The acknowledgements and the dead letters of bad control records go
 * through a producer of its own, so their delivery reports never mix with
 * the events' outputs, whose offsets wait for theirs.
 *
 * @thread pipeline thread (both clients are polled there, never blocking).
 */
#include "erase.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "intentd/control.h"
#include "intentd/event.h"
#include "intentd/kafka.h"
#include "intentd/log.h"
#include "intentd/mem.h"

#define POLL_MAX 64 /* control records read per call */

/* Where a request stands. */
enum {
        W_ERASED,  /* removed in memory; waits for a checkpoint to start */
        W_COVERED, /* a checkpoint started after the removal: waits for it */
        W_READY,   /* nothing left holds the user: acknowledge */
        W_SENDING, /* acknowledgement produced, delivery not yet reported */
        W_DONE     /* delivered: dropped at the next commit */
};

typedef struct waiting_s {
        uint64_t serial;   /* the acknowledgement's delivery opaque */
        int st;
        int32_t partition; /* of the control record */
        int64_t offset;
        itd_audit_t ack;
        int32_t *parts;    /* owned; ack.partitions */
} waiting_t;

struct itd_erasure_s {
        const itd_conf_t *conf;
        itd_prom_t *m;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        rd_kafka_topic_t *rkt_audit, *rkt_dlq;
        int32_t audit_id;  /* schema id, -1: bare */
        int json;
        itd_framing_t framing;
        int checkpoints;   /* 0: acknowledge at once */
        waiting_t *w;      /* in the order the requests were read */
        size_t n_w, cap_w;
        uint64_t serial;
        int64_t *done;     /* per control partition: highest offset read */
        size_t n_done;
        int dirty;         /* something to commit */
        uint64_t acked, dead_lettered;
        itd_ratelimit_t rl;
};

/* The user's kafka.* settings without group.id and group.instance.id,
 * and the group id made this instance's own (written into gid). */
static size_t control_settings(const itd_conf_t *conf, char **keys,
                               char **values, char *gid, size_t gid_size) {
        const char *group = "intentd", *instance = NULL;
        size_t n = 0;
        for (size_t i = 0; i < conf->n_kafka; i++) {
                if (!strcmp(conf->kafka_keys[i], "group.id")) {
                        group = conf->kafka_values[i];
                        continue;
                }
                if (!strcmp(conf->kafka_keys[i], "group.instance.id")) {
                        instance = conf->kafka_values[i];
                        continue;
                }
                keys[n] = conf->kafka_keys[i];
                values[n++] = conf->kafka_values[i];
        }
        char host[256] = "host";
        if (!instance) {
                if (gethostname(host, sizeof host) != 0)
                        strcpy(host, "host");
                host[sizeof host - 1] = '\0';
                instance = host;
        }
        snprintf(gid, gid_size, "%s.control.%s", group, instance);
        keys[n] = "group.id";
        values[n++] = gid;
        return n;
}

static rd_kafka_t *control_consumer(const itd_conf_t *conf, char *errstr,
                                    size_t errstr_size) {
        char gid[600];
        char **keys = itd_xcalloc(conf->n_kafka + 1, sizeof *keys);
        char **values = itd_xcalloc(conf->n_kafka + 1, sizeof *values);
        size_t n = control_settings(conf, keys, values, gid, sizeof gid);
        /* A request sent before this instance first ran is still read. */
        static const char *const extra[] = {
            "enable.auto.commit", "false", "auto.offset.reset", "earliest",
            "statistics.interval.ms", "0", NULL};
        rd_kafka_t *rk = itd_kafka_new(RD_KAFKA_CONSUMER,
                                       itd_kafka_consumer_defaults, extra, n,
                                       keys, values, NULL, NULL, errstr,
                                       errstr_size);
        free(keys);
        free(values);
        if (!rk)
                return NULL;
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *sub =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, conf->topic_control,
                                          RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t kerr = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (kerr) {
                snprintf(errstr, errstr_size, "topics.control \"%s\": "
                         "subscribe: %s", conf->topic_control,
                         rd_kafka_err2str(kerr));
                rd_kafka_destroy(rk);
                return NULL;
        }
        itd_log(ITD_LOG_INFO, "erase", "reading control records from "
                "\"%s\" in consumer group \"%s\"", conf->topic_control, gid);
        return rk;
}

static void count(itd_erasure_t *er, const char *outcome, uint64_t n) {
        if (er->m)
                itd_prom_inc(er->m, ITD_M_CONTROL_RECORDS, outcome, n);
}

static waiting_t *find_serial(itd_erasure_t *er, uint64_t serial) {
        for (size_t i = 0; i < er->n_w; i++)
                if (er->w[i].serial == serial)
                        return &er->w[i];
        return NULL;
}

/* Delivery reports of the acknowledgements (opaque: the request's serial)
 * and of dead letters (opaque 0). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                  void *opaque) {
        (void)rk;
        itd_erasure_t *er = opaque;
        uint64_t serial = (uint64_t)(uintptr_t)msg->_private;
        waiting_t *w = serial ? find_serial(er, serial) : NULL;
        uint64_t sup;
        if (!msg->err) {
                if (w) {
                        w->st = W_DONE;
                        er->acked++;
                        er->dirty = 1;
                        count(er, "acknowledged", 1);
                }
                return;
        }
        if (er->m)
                itd_prom_inc(er->m, ITD_M_DELIVERY_FAILURES, NULL, 1);
        if (itd_ratelimit_allow(&er->rl, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_ERR, "erase", "delivery to \"%s\" failed: "
                        "%s%s", rd_kafka_topic_name(msg->rkt),
                        rd_kafka_err2str(msg->err),
                        w ? " (the acknowledgement is sent again)" : "");
        if (w)
                w->st = W_READY;
}

itd_erasure_t *itd_erasure_new(const itd_conf_t *conf, int32_t audit_id,
                               int checkpoints, itd_prom_t *m, char *errstr,
                               size_t errstr_size) {
        itd_erasure_t *er = itd_xcalloc(1, sizeof *er);
        er->conf = conf;
        er->m = m;
        er->audit_id = audit_id;
        er->checkpoints = checkpoints;
        er->json = conf->input_format == ITD_INPUT_JSON;
        er->framing = (itd_framing_t)conf->input_framing;
        er->rl = (itd_ratelimit_t){.interval_ms = 10000, .burst = 10};
        itd_kafka_cbs_t cbs = {.dr_msg = dr_cb};
        er->producer = itd_kafka_new(RD_KAFKA_PRODUCER,
                                     itd_kafka_producer_defaults, NULL,
                                     conf->n_kafka, conf->kafka_keys,
                                     conf->kafka_values, &cbs, er, errstr,
                                     errstr_size);
        if (!er->producer) {
                free(er);
                return NULL;
        }
        er->consumer = control_consumer(conf, errstr, errstr_size);
        if (!er->consumer) {
                rd_kafka_destroy(er->producer);
                free(er);
                return NULL;
        }
        er->rkt_audit = rd_kafka_topic_new(er->producer, conf->topic_audit,
                                           NULL);
        er->rkt_dlq = rd_kafka_topic_new(er->producer,
                                         conf->topic_dead_letter, NULL);
        return er;
}

/* ---------------------------------------------------------- offsets */

static int64_t *done_at(itd_erasure_t *er, int32_t p) {
        if (p < 0)
                p = 0;
        if ((size_t)p >= er->n_done) {
                size_t n = (size_t)p + 1;
                er->done = itd_xrealloc(er->done, n * sizeof *er->done);
                for (size_t i = er->n_done; i < n; i++)
                        er->done[i] = -1;
                er->n_done = n;
        }
        return &er->done[p];
}

/* Drops the delivered requests, then commits per control partition what
 * was read up to the first request still waiting; sync at the end. */
static void commit(itd_erasure_t *er, int sync) {
        size_t k = 0;
        for (size_t i = 0; i < er->n_w; i++) {
                if (er->w[i].st == W_DONE) {
                        free(er->w[i].parts);
                        continue;
                }
                er->w[k++] = er->w[i];
        }
        er->n_w = k;
        if (!er->dirty)
                return;
        er->dirty = 0;
        rd_kafka_topic_partition_list_t *tp =
            rd_kafka_topic_partition_list_new(er->n_done ? (int)er->n_done
                                                         : 1);
        for (size_t p = 0; p < er->n_done; p++) {
                int64_t next = er->done[p] + 1;
                for (size_t i = 0; i < er->n_w; i++)
                        if (er->w[i].partition == (int32_t)p &&
                            er->w[i].offset < next)
                                next = er->w[i].offset;
                if (next > 0)
                        rd_kafka_topic_partition_list_add(
                            tp, er->conf->topic_control, (int32_t)p)
                            ->offset = next;
        }
        if (tp->cnt > 0) {
                rd_kafka_resp_err_t err = rd_kafka_commit(er->consumer, tp,
                                                          !sync);
                if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                        itd_log(ITD_LOG_WARNING, "erase", "commit of the "
                                "control offsets: %s", rd_kafka_err2str(err));
        }
        rd_kafka_topic_partition_list_destroy(tp);
}

/* ------------------------------------------------------------ output */

static void produce(itd_erasure_t *er, rd_kafka_topic_t *rkt, const void *key,
                    size_t key_len, const void *value, size_t len,
                    rd_kafka_headers_t *hdrs, uint64_t serial) {
        char errstr[256];
        if (itd_kafka_produce(er->producer, rkt, RD_KAFKA_PARTITION_UA, key,
                              key_len, value, len, hdrs,
                              (void *)(uintptr_t)serial, NULL, errstr,
                              sizeof errstr) != ITD_OK) {
                itd_log(ITD_LOG_ERR, "erase", "to \"%s\": %s",
                        rd_kafka_topic_name(rkt), errstr);
                if (hdrs)
                        rd_kafka_headers_destroy(hdrs);
                waiting_t *w = serial ? find_serial(er, serial) : NULL;
                if (w)
                        w->st = W_READY; /* again at the next poll */
        }
}

static void dead_letter(itd_erasure_t *er, const rd_kafka_message_t *msg,
                        itd_reason_t reason, const char *detail) {
        rd_kafka_headers_t *h = itd_kafka_dead_letter_headers(
            itd_reason_name(reason), detail, er->conf->topic_control,
            msg->partition, msg->offset);
        size_t key_len = msg->key ? msg->key_len : 0;
        size_t len = msg->payload ? msg->len : 0;
        itd_kafka_fit(itd_kafka_max_message_bytes(er->producer), h, &key_len,
                      &len);
        produce(er, er->rkt_dlq, msg->key, key_len, msg->payload, len, h, 0);
        er->dead_lettered++;
        count(er, "dead_lettered", 1);
}

/* Produces the acknowledgement of w (state W_READY). */
static void acknowledge(itd_erasure_t *er, waiting_t *w) {
        unsigned char buf[1024];
        size_t len;
        w->ack.completed_at_ms = itd_now_wall_ms();
        if (itd_audit_encode(&w->ack, er->audit_id, buf, sizeof buf, &len) !=
            ITD_OK) {
                /* 256 partitions' numbers at most 5 bytes each fit: this
                 * is an invariant, not input */
                itd_log(ITD_LOG_ERR, "erase", "acknowledgement of request "
                        "\"%s\" does not fit %zu bytes; not sent",
                        w->ack.request_id, sizeof buf);
                w->st = W_DONE;
                er->dirty = 1;
                return;
        }
        w->st = W_SENDING;
        itd_log(ITD_LOG_NOTICE, "erase", "erased %s (request \"%s\"): %" PRIu64
                " state record(s) of %" PRIu64 " event(s), %" PRIu64
                " pending prediction(s), %" PRIu64 " queued example(s), "
                "%" PRIu64 " trigger and %" PRIu64 " risk trigger entries, "
                "%" PRIu64 " cached prediction(s); %s%" PRIu64,
                w->ack.user, w->ack.request_id, w->ack.users, w->ack.events,
                w->ack.pending, w->ack.queued, w->ack.triggers,
                w->ack.risk_triggers, w->ack.cached,
                w->ack.cut ? "first checkpoint without them: "
                           : "checkpoints off: ",
                w->ack.cut);
        produce(er, er->rkt_audit, w->ack.request_id,
                strlen(w->ack.request_id), buf, len, NULL, w->serial);
}

/* ------------------------------------------------------------- input */

static int part_cmp(const void *a, const void *b) {
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
        return (x > y) - (x < y);
}

static void erase_one(itd_erasure_t *er, const rd_kafka_message_t *msg,
                      const itd_control_t *c, itd_engine_t *const *engs,
                      size_t n_engs, itd_query_t *q,
                      itd_erasure_held_fn *held_fn, void *arg) {
        uint64_t user_hash = itd_user_hash(c->user_id);
        itd_partition_erased_t e = {0};
        /* a user's events share a key, so one partition holds them; a
         * changed partition count may leave some in a second one. Every
         * engine is asked: each also learns from its trainer's partial
         * mini-batch. */
        for (size_t k = 0; k < n_engs; k++) {
                itd_partition_erased_t ek;
                int32_t held[64];
                size_t n_held = itd_engine_erase(engs[k], c->user_id,
                                                 user_hash, &ek, held, 64);
                for (size_t i = 0; held_fn && i < n_held && i < 64; i++)
                        held_fn(arg, held[i]);
                e.users += ek.users;
                e.events += ek.events;
                e.pending += ek.pending;
                e.queued += ek.queued;
                e.triggers += ek.triggers;
                e.risk_triggers += ek.risk_triggers;
        }
        if (er->n_w == er->cap_w) {
                er->cap_w = er->cap_w ? er->cap_w * 2 : 8;
                er->w = itd_xrealloc(er->w, er->cap_w * sizeof *er->w);
        }
        waiting_t *w = &er->w[er->n_w++];
        memset(w, 0, sizeof *w);
        w->serial = ++er->serial;
        w->st = er->checkpoints ? W_ERASED : W_READY;
        w->partition = msg->partition;
        w->offset = msg->offset;
        itd_audit_t *a = &w->ack;
        memcpy(a->request_id, c->request_id, sizeof a->request_id);
        a->type = c->type;
        itd_log_pseudonym(c->user_id, strlen(c->user_id), a->user,
                          sizeof a->user);
        a->requested_at_ms = c->requested_at_ms;
        size_t n = 0;
        for (size_t k = 0; k < n_engs; k++)
                n += itd_engine_partitions(engs[k], NULL, 0);
        w->parts = itd_xcalloc(n ? n : 1, sizeof *w->parts);
        for (size_t k = 0, at = 0; k < n_engs; k++)
                at += itd_engine_partitions(engs[k], w->parts + at, n - at);
        qsort(w->parts, n, sizeof *w->parts, part_cmp);
        a->partitions = w->parts;
        a->n_partitions = n;
        a->users = e.users;
        a->events = e.events;
        a->pending = e.pending;
        a->queued = e.queued;
        a->triggers = e.triggers;
        a->risk_triggers = e.risk_triggers;
        a->cached = q ? (uint64_t)itd_query_forget(q, user_hash) : 0;
        count(er, "erased", 1);
}

size_t itd_erasure_poll(itd_erasure_t *er, itd_engine_t *const *engs,
                        size_t n_engs, itd_query_t *q,
                        itd_erasure_held_fn *held, void *arg) {
        size_t n = 0;
        for (int i = 0; i < POLL_MAX; i++) {
                rd_kafka_message_t *msg =
                    rd_kafka_consumer_poll(er->consumer, 0);
                if (!msg)
                        break;
                if (msg->err) {
                        uint64_t sup;
                        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                            itd_ratelimit_allow(&er->rl, itd_now_mono_ms(),
                                                &sup))
                                itd_log(ITD_LOG_WARNING, "erase",
                                        "control consumer: %s",
                                        rd_kafka_message_errstr(msg));
                        rd_kafka_message_destroy(msg);
                        continue;
                }
                char why[512];
                itd_control_t c;
                itd_reason_t r = itd_control_decode(
                    msg->payload, msg->len, er->json, er->framing, &c, why,
                    sizeof why);
                if (r != ITD_REASON_OK) {
                        itd_log(ITD_LOG_WARNING, "erase", "control record "
                                "%s/%d@%lld dead-lettered: %s",
                                er->conf->topic_control, (int)msg->partition,
                                (long long)msg->offset, why);
                        dead_letter(er, msg, r, why);
                } else {
                        erase_one(er, msg, &c, engs, n_engs, q, held, arg);
                        n++;
                }
                int64_t *d = done_at(er, msg->partition);
                if (msg->offset > *d)
                        *d = msg->offset;
                er->dirty = 1;
                rd_kafka_message_destroy(msg);
        }
        for (size_t i = 0; i < er->n_w; i++)
                if (er->w[i].st == W_READY)
                        acknowledge(er, &er->w[i]);
        rd_kafka_poll(er->producer, 0);
        commit(er, 0);
        return n;
}

int itd_erasure_wants_checkpoint(const itd_erasure_t *er) {
        for (size_t i = 0; er && i < er->n_w; i++)
                if (er->w[i].st == W_ERASED)
                        return 1;
        return 0;
}

void itd_erasure_checkpoint_started(itd_erasure_t *er) {
        for (size_t i = 0; er && i < er->n_w; i++)
                if (er->w[i].st == W_ERASED)
                        er->w[i].st = W_COVERED;
}

void itd_erasure_checkpoint_published(itd_erasure_t *er, uint64_t seq) {
        for (size_t i = 0; er && i < er->n_w; i++)
                if (er->w[i].st == W_COVERED) {
                        er->w[i].ack.cut = seq;
                        acknowledge(er, &er->w[i]);
                }
}

void itd_erasure_destroy(itd_erasure_t *er, int64_t timeout_ms) {
        if (!er)
                return;
        /* acknowledgements produced at the last checkpoint go out, and
         * the offsets of those delivered are committed */
        (void)rd_kafka_flush(er->producer, (int)timeout_ms);
        commit(er, 1);
        rd_kafka_consumer_close(er->consumer);
        rd_kafka_destroy(er->consumer);
        rd_kafka_topic_destroy(er->rkt_audit);
        rd_kafka_topic_destroy(er->rkt_dlq);
        rd_kafka_destroy(er->producer);
        for (size_t i = 0; i < er->n_w; i++)
                free(er->w[i].parts);
        free(er->w);
        free(er->done);
        free(er);
}

uint64_t itd_erasure_acknowledged(const itd_erasure_t *er) {
        return er ? er->acked : 0;
}

uint64_t itd_erasure_dead_lettered(const itd_erasure_t *er) {
        return er ? er->dead_lettered : 0;
}
