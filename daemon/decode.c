/*
 * decode.c - the decode stage of `intentd run`: each consumed message is
 * tracked by offset, then decoded and validated (pipeline/input.c). A bad
 * one goes to the dead-letter topic with its reason (rate-limited log line,
 * the user id only as a pseudonym); one whose writer schema is still being
 * fetched waits in the park (park.h), in order per partition, its offset
 * holding commits, and is released once the look-up ends.
 */
#include "run_int.h"

#include <stdio.h>
#include <stdlib.h>

static src_t src_of(const rd_kafka_message_t *m, uint64_t token) {
        return (src_t){.key = m->key,
                       .key_len = m->key_len,
                       .value = m->payload,
                       .len = m->len,
                       .partition = m->partition,
                       .offset = m->offset,
                       .token = token};
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
        itd_sink_dead_letter(lp, s, itd_reason_name(why), detail,
                             itd_sink_track(lp, s, 1));
}

size_t itd_decode_batch(loop_t *lp, rd_kafka_message_t **msgs, size_t n) {
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
                    &lp->rows[k].ev, errstr, sizeof errstr);
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
                itd_row_decoded(&lp->rows[k], m->partition, m->offset);
                lp->src[k] = src_of(m, token);
                lp->msg_of[k] = i;
                k++;
        }
        return k;
}

/* Parked events that will not be released: their offsets stay
 * unacknowledged (consumed again by the partition's next owner), and
 * draining stops waiting for them. partition -1: all. */
size_t itd_decode_abandon_parked(loop_t *lp, int32_t partition) {
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
                itd_source_abandon(lp, p, EVENT_OUTPUTS);
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
 * settling (a checkpoint is due: it must not claim an event that is
 * neither in the engine nor dead-lettered).
 */
void itd_decode_release_parked(loop_t *lp, int settle) {
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
                                    &lp->rows[k].ev, errstr, sizeof errstr);
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
                                        itd_row_decoded(&lp->rows[k], p,
                                                        e->offset);
                                        lp->src[k] = s;
                                        lp->taken[k++] = e;
                                        continue;
                                }
                                itd_parked_free(e);
                        }
                }
                free(parts);
                if (k > 0 && itd_run_engine(lp, k) == ITD_OK) {
                        itd_run_emit(lp, k);
                } else {
                        /* Not applied: held like any such event, and left
                         * for a restart (itd_run_engine logs). */
                        for (size_t j = 0; j < k; j++) {
                                ppos(lp, lp->src[j].partition)->held = 1;
                                itd_source_abandon(lp, lp->src[j].partition,
                                                   EVENT_OUTPUTS);
                        }
                }
                for (size_t j = 0; j < k; j++)
                        itd_parked_free(lp->taken[j]);
                if (!settle || k == 0)
                        break;
        }
}
