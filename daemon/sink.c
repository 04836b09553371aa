/*
 * sink.c - the Kafka sink of `intentd run`: every output (prediction,
 * trigger, dead letter) produced with its event's offset token, delivery
 * reports acknowledging the token, failed deliveries produced again,
 * records that can never land given up on (counted, logged, released),
 * dead letters with reason headers and cut to fit message.max.bytes.
 */
#include "run_int.h"

#include <stdio.h>
#include <string.h>

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
void itd_sink_give_up(loop_t *lp, uint64_t token, const char *why) {
        uint64_t sup;
        lp->res->undeliverable++;
        if (itd_ratelimit_allow(&lp->rl_kafka, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_ERR, "kafka", "%s (giving up on this record)",
                        why);
        itd_offsets_ack(lp->offsets, token);
}

static void gave_up_cb(void *msg_opaque, const char *why, void *arg) {
        itd_sink_give_up(arg, (uint64_t)(uintptr_t)msg_opaque, why);
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
                } else if (msg->rkt == lp->rkt_risk) {
                        lp->res->risk_triggers++;
                        itd_prom_inc(lp->m, ITD_M_RISK_TRIGGERS_PUBLISHED,
                                     NULL, 1);
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
                itd_sink_give_up(lp, token, why);
                return;
        }
        uint64_t sup;
        if (itd_ratelimit_allow(&lp->rl_kafka, itd_now_mono_ms(), &sup))
                itd_log(ITD_LOG_ERR, "kafka", "%s (will retry)", why);
        itd_kafka_retryq_push(lp->rq, msg, 0, NULL, NULL);
}

void itd_sink_retries(loop_t *lp) {
        itd_kafka_retryq_flush(lp->rq, lp->producer, lp->opts->stop,
                               gave_up_cb, lp);
}

/* Produces one output of a tracked event; token rides in the opaque.
 * @returns ITD_OK; ITD_ERR_RANGE (larger than message.max.bytes: nothing
 * was produced, the caller decides); another error when stopping
 * interrupted a full queue or the producer refused the record, and then
 * the offset stays unacknowledged so the event is consumed again after a
 * restart, never silently lost. hdrs are consumed either way. */
itd_err_t itd_sink_produce(loop_t *lp, rd_kafka_topic_t *rkt,
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

/* The token an event's `outputs` outputs are produced with; the
 * EVENT_OUTPUTS - outputs it does not need are acknowledged now. */
uint64_t itd_sink_track(loop_t *lp, const src_t *s, unsigned outputs) {
        for (unsigned i = outputs; i < EVENT_OUTPUTS; i++)
                itd_offsets_ack(lp->offsets, s->token);
        return s->token;
}

static rd_kafka_headers_t *dead_letter_headers(const loop_t *lp,
                                               const src_t *s,
                                               const char *reason,
                                               const char *detail) {
        return itd_kafka_dead_letter_headers(reason, detail,
                                             lp->conf->topic_events,
                                             s->partition, s->offset);
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
void itd_sink_dead_letter(loop_t *lp, const src_t *msg, const char *reason,
                          const char *detail, uint64_t token) {
        rd_kafka_headers_t *hdrs = dead_letter_headers(lp, msg, reason,
                                                       detail);
        size_t key_len = msg->key ? msg->key_len : 0;
        size_t len = msg->value ? msg->len : 0;
        itd_kafka_fit(lp->max_msg_bytes, hdrs, &key_len, &len);
        lp->res->dead_lettered++;
        if (itd_prom_inc(lp->m, ITD_M_EVENTS_DEAD_LETTERED, reason, 1))
                itd_prom_inc(lp->m, ITD_M_EVENTS_DEAD_LETTERED, "other", 1);
        if (itd_sink_produce(lp, lp->rkt_dlq, 0, msg->key, key_len,
                             msg->value, len, hdrs, token) != ITD_ERR_RANGE)
                return;
        /* The bound was not enough (it should be): no value at all. */
        hdrs = dead_letter_headers(lp, msg, reason, detail);
        key_len = msg->key ? msg->key_len : 0;
        len = msg->value ? msg->len : 0;
        itd_kafka_fit(0, hdrs, &key_len, &len);
        if (itd_sink_produce(lp, lp->rkt_dlq, 0, msg->key, key_len, NULL, 0,
                             hdrs, token) == ITD_ERR_RANGE)
                itd_sink_give_up(lp, token,
                                 "dead letter larger than message.max.bytes "
                                 "even without its value");
}

/* Serves delivery reports until nothing is in flight or the deadline. */
void itd_sink_drain(loop_t *lp, int64_t deadline_ms) {
        /* Parked events' offsets are tracked too, but no output of theirs
         * is in flight. */
        while ((itd_offsets_in_flight(lp->offsets) >
                    lp->abandoned +
                        EVENT_OUTPUTS * itd_park_count(lp->park) ||
                itd_kafka_retryq_len(lp->rq) > 0) &&
               itd_now_mono_ms() < deadline_ms) {
                itd_sink_retries(lp);
                rd_kafka_poll(lp->producer, 50);
        }
        itd_commit_store(lp);
}

itd_err_t itd_sink_open(loop_t *lp, char *errstr, size_t errstr_size) {
        const itd_conf_t *conf = lp->conf;
        itd_kafka_cbs_t cbs = {.dr_msg = dr_cb, .error = itd_run_error_cb};
        lp->producer = itd_kafka_new(RD_KAFKA_PRODUCER,
                                     itd_kafka_producer_defaults, NULL,
                                     conf->n_kafka, conf->kafka_keys,
                                     conf->kafka_values, &cbs, lp, errstr,
                                     errstr_size);
        if (!lp->producer) {
                /* librdkafka refused its configuration (a plugin that
                 * does not load, inconsistent settings): exit 78 */
                return ITD_ERR_CONF;
        }
        lp->max_msg_bytes = itd_kafka_max_message_bytes(lp->producer);
        lp->rkt_pred = rd_kafka_topic_new(lp->producer,
                                          conf->topic_predictions, NULL);
        lp->rkt_dlq = rd_kafka_topic_new(lp->producer,
                                         conf->topic_dead_letter, NULL);
        lp->rkt_trg = rd_kafka_topic_new(lp->producer, conf->topic_triggers,
                                         NULL);
        if (*conf->topic_risk)
                lp->rkt_risk = rd_kafka_topic_new(lp->producer,
                                                  conf->topic_risk, NULL);
        return ITD_OK;
}

void itd_sink_close(loop_t *lp) {
        if (lp->rkt_pred)
                rd_kafka_topic_destroy(lp->rkt_pred);
        if (lp->rkt_dlq)
                rd_kafka_topic_destroy(lp->rkt_dlq);
        if (lp->rkt_trg)
                rd_kafka_topic_destroy(lp->rkt_trg);
        if (lp->rkt_risk)
                rd_kafka_topic_destroy(lp->rkt_risk);
        if (lp->producer)
                rd_kafka_destroy(lp->producer);
        lp->rkt_pred = lp->rkt_dlq = lp->rkt_trg = lp->rkt_risk = NULL;
        lp->producer = NULL;
}
