/*
 * publish.c - source -> Avro -> events topic (publish.h).
 */
#include "publish.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/kafka.h"
#include "intentd/log.h"
#include "out_schemas.h"

/* Counts messages the broker did not take; publishing then fails. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                  void *opaque) {
        (void)rk;
        if (msg->err)
                (*(uint64_t *)opaque)++;
}

static void sleep_ms(int64_t ms) {
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

itd_err_t itd_publish(const itd_conf_t *conf, itd_feed_next_fn next,
                      void *src, const itd_publish_opts_t *opts,
                      uint64_t *count, char *errstr, size_t errstr_size) {
        *count = 0;
        itd_codec_t *codec = itd_codec_new(errstr, errstr_size);
        if (!codec)
                return ITD_ERR_ARG;
        uint64_t failed = 0;
        rd_kafka_t *rk = itd_kafka_new(RD_KAFKA_PRODUCER,
                                       itd_kafka_producer_defaults, NULL,
                                       conf->n_kafka, conf->kafka_keys,
                                       conf->kafka_values,
                                       &(itd_kafka_cbs_t){.dr_msg = dr_cb},
                                       &failed,
                                       errstr, errstr_size);
        if (!rk) {
                itd_codec_destroy(codec);
                return ITD_ERR_KAFKA;
        }
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, conf->topic_events,
                                                   NULL);
        itd_err_t err = ITD_OK;
        itd_event_t ev;
        unsigned char buf[4096];
        int64_t t0 = itd_now_mono_ms(), last_progress = t0;
        /* Events carry the id of config/event.avsc under
         * <topics.events>-value when an output registry is configured,
         * else bare Avro (output.schema_id is the prediction schema's). */
        itd_out_ids_t ids;
        err = itd_out_schemas_resolve(conf, ITD_OUT_EVENT, opts->stop, &ids,
                                      errstr, errstr_size);
        int32_t schema_id = ids.event;

        while (!err && !(opts->stop && *opts->stop)) {
                err = next(src, &ev, errstr, errstr_size);
                if (err == ITD_ERR_EOF) {
                        err = ITD_OK;
                        break;
                }
                if (err)
                        break;
                size_t len;
                err = itd_codec_encode_event(codec, &ev, schema_id, buf,
                                             sizeof buf, &len);
                if (err) {
                        snprintf(errstr, errstr_size,
                                 "cannot encode event of user \"%s\": %s",
                                 ev.user_id, itd_err_str(err));
                        break;
                }
                /* The record's timestamp is the event time, as for
                                 * intentd's own outputs. */
                err = itd_kafka_produce_at(
                    rk, rkt, RD_KAFKA_PARTITION_UA,
                    ev.ts_ms > 0 ? ev.ts_ms : 0, ev.user_id,
                    strlen(ev.user_id), buf, len, NULL, NULL, opts->stop,
                    errstr, errstr_size);
                if (err)
                        break;
                (*count)++;
                if (opts->published)
                        atomic_fetch_add(opts->published, 1);
                rd_kafka_poll(rk, 0);
                if (opts->rate > 0) {
                        /* Pace against the ideal schedule, not per event, so
                         * sleep granularity does not lower the rate. */
                        int64_t due = t0 + (int64_t)((double)*count * 1000.0 /
                                                     opts->rate);
                        int64_t now = itd_now_mono_ms();
                        if (due > now)
                                sleep_ms(due - now);
                }
                if (opts->progress && (*count & 1023) == 0) {
                        int64_t now = itd_now_mono_ms();
                        if (now - last_progress >= 250) {
                                last_progress = now;
                                double secs = (double)(now - t0) / 1000.0;
                                uint64_t done = 0, total = 0;
                                if (opts->progress_bytes)
                                        opts->progress_bytes(src, &done,
                                                             &total);
                                double rate = secs > 0 ? (double)*count / secs
                                                       : 0;
                                if (total > 0 && done > 0) {
                                        double eta = secs * ((double)total /
                                                             (double)done - 1);
                                        fprintf(stderr,
                                                "\rload: %llu events, %.0f/s, "
                                                "%.0f%%, ETA %.0fs   ",
                                                (unsigned long long)*count,
                                                rate, 100.0 * (double)done /
                                                          (double)total,
                                                eta);
                                } else {
                                        fprintf(stderr,
                                                "\rload: %llu events, %.0f/s   ",
                                                (unsigned long long)*count,
                                                rate);
                                }
                        }
                }
        }
        if (opts->progress)
                fprintf(stderr, "\n");
        /* Everything enqueued must reach the broker before we say done. */
        int64_t deadline = itd_now_mono_ms() + conf->shutdown_timeout_ms;
        while (rd_kafka_outq_len(rk) > 0 && itd_now_mono_ms() < deadline)
                rd_kafka_flush(rk, 100);
        if (!err && rd_kafka_outq_len(rk) > 0) {
                snprintf(errstr, errstr_size,
                         "%d events not delivered to \"%s\" within %lld ms",
                         rd_kafka_outq_len(rk), conf->topic_events,
                         (long long)conf->shutdown_timeout_ms);
                err = ITD_ERR_KAFKA;
        }
        if (!err && failed > 0) {
                snprintf(errstr, errstr_size,
                         "%llu events were not accepted by \"%s\" "
                         "(see the kafka log lines above)",
                         (unsigned long long)failed, conf->topic_events);
                err = ITD_ERR_KAFKA;
        }
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        itd_codec_destroy(codec);
        return err;
}
