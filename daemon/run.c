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
 * for auto-commit: commits follow complete checkpoints of the engine
 * (commit.c).
 *
 * The stages live in their own files (run_int.h): the Kafka source
 * (source.c), decoding, dead letters and the park (decode.c), the Kafka
 * sink (sink.c), offsets and checkpoints (commit.c), progress and gauges
 * (status.c). This file is the loop: poll a batch, decode it, run the
 * engine, emit the outputs; SIGHUP reload; the graceful stop.
 */
#include "run_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_parts.h"
#include "model_id.h"

/* librdkafka's client-wide errors. A fatal one leaves the client unusable:
 * it stops the run (run.h), whose caller logs it once, with its cause,
 * and exits non-zero so systemd restarts us. The others are transient:
 * librdkafka retries. */
void itd_run_error_cb(rd_kafka_t *rk, int err, const char *reason,
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

/* The Kafka timestamp of an output: its event's time (DESIGN.md), so that
 * event-time windows downstream see when the shopper acted. Kafka
 * timestamps are ms since the epoch and >= 0; 0 asks for the current
 * time, which an event at or before 1970 (refused by input validation
 * anyway) would get. */
static int64_t record_ts(int64_t event_ts_ms) {
        return event_ts_ms > 0 ? event_ts_ms : 0;
}

/* Runs lp->rows[0..k) through the engines, one round of the workers
 * (each row to its partition's); logs why when they refuse the batch. */
itd_err_t itd_run_engine(loop_t *lp, size_t k) {
        char errstr[600];
        /* A trigger for an event older than triggers.max_event_age by the
         * wall clock comes too late to act on (a backlog, old data
         * loaded); the engine has no clock of its own. */
        if (!lp->opts->triggers_event_time_only)
                for (size_t i = 0; i < lp->n_engs; i++)
                        itd_engine_set_trigger_clock(lp->engs[i],
                                                     itd_now_wall_ms());
        itd_err_t err = itd_workers_process(
            lp->wk, lp->conf->topic_events, lp->rows, k, itd_now_wall_ms(),
            errstr, sizeof errstr);
        if (err)
                itd_log(ITD_LOG_ERR, "engine", "%s", errstr);
        return err;
}

static int part_cmp(const void *a, const void *b) {
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
        return (x > y) - (x < y);
}

size_t itd_run_partitions(loop_t *lp, int32_t **ps) {
        size_t n = 0;
        for (size_t i = 0; i < lp->n_engs; i++)
                n += itd_engine_partitions(lp->engs[i], NULL, 0);
        *ps = itd_xcalloc(n ? n : 1, sizeof **ps);
        for (size_t i = 0, at = 0; i < lp->n_engs; i++)
                at += itd_engine_partitions(lp->engs[i], *ps + at, n - at);
        qsort(*ps, n, sizeof **ps, part_cmp);
        return n;
}

void itd_run_sync_workers(loop_t *lp) {
        char errstr[600];
        if (itd_workers_sync(lp->wk, errstr, sizeof errstr) != ITD_OK)
                itd_log(ITD_LOG_ERR, "engine", "merging the workers' "
                        "replicas: %s", errstr);
}

/* Worker 0's replica was changed from outside (a restore, model sync):
 * the others take the change too. */
static void spread_model(loop_t *lp) {
        char errstr[600];
        if (itd_workers_spread(lp->wk, errstr, sizeof errstr) != ITD_OK)
                itd_log(ITD_LOG_ERR, "engine", "%s", errstr);
}

/* Model sync reads and changes worker 0's replica: with several workers
 * they are merged first, and what it merged is spread after. */
static void modelsync_tick(loop_t *lp) {
        int64_t now = itd_now_mono_ms();
        if (lp->n_engs == 1) {
                itd_modelsync_tick(lp->msync, now);
                return;
        }
        if (!itd_modelsync_due(lp->msync, now))
                return;
        itd_run_sync_workers(lp);
        itd_modelsync_tick(lp->msync, now);
        spread_model(lp);
}

/* One trigger record (topics.triggers or topics.risk) for the event
 * whose offset token waits for it. */
static void emit_trigger(loop_t *lp, rd_kafka_topic_t *rkt, int32_t id,
                         const itd_trigger_rec_t *trg, uint64_t token) {
        unsigned char tbuf[512];
        size_t tlen;
        if (itd_codec_encode_trigger(lp->codec, trg, id, tbuf, sizeof tbuf,
                                     &tlen) != ITD_OK) {
                itd_log(ITD_LOG_ERR, "run", "trigger record did not encode");
                itd_offsets_ack(lp->offsets, token);
                return;
        }
        if (itd_sink_produce(lp, rkt, record_ts(trg->event_ts_ms),
                             trg->user_id, strlen(trg->user_id), tbuf, tlen,
                             NULL, token) == ITD_ERR_RANGE)
                itd_sink_give_up(lp, token, "trigger record larger than "
                                            "message.max.bytes");
}

/* The outputs of lp->rows[0..k), processed by the engine; lp->src[j] says
 * where event j came from. */
void itd_run_emit(loop_t *lp, size_t k) {
        unsigned char buf[4096];
        int64_t now_wall = itd_now_wall_ms();
        for (size_t j = 0; j < k; j++) {
                const src_t *m = &lp->src[j];
                const itd_row_t *row = &lp->rows[j];
                const itd_prediction_t *pr = &row->pred;
                if (row->outcome != ITD_OUT_PREDICTED) {
                        lp->res->filtered++;
                        itd_prom_inc(lp->m, ITD_M_EVENTS_FILTERED, "other",
                                     1);
                        itd_sink_track(lp, m, 0);
                        continue;
                }
                /* A trigger (marketing, risk) is another output of the
                 * same event: its offset waits for every
                 * acknowledgement. */
                const itd_trigger_rec_t *trg = row->trigger;
                const itd_trigger_rec_t *rtrg =
                    lp->rkt_risk ? row->risk_trigger : NULL;
                uint64_t token = itd_sink_track(lp, m, 1 + !!trg + !!rtrg);
                if (trg)
                        emit_trigger(lp, lp->rkt_trg, lp->ids.trigger, trg,
                                     token);
                if (rtrg)
                        emit_trigger(lp, lp->rkt_risk, lp->ids.risk, rtrg,
                                     token);
                size_t len;
                if (itd_codec_encode_prediction(lp->codec, pr,
                                                lp->ids.prediction, buf,
                                                sizeof buf,
                                                &len) != ITD_OK) {
                        itd_sink_dead_letter(lp, m, "encode",
                                             "prediction did not fit 4 KiB",
                                             token);
                        continue;
                }
                if (itd_sink_produce(lp, lp->rkt_pred,
                                     record_ts(pr->event_ts_ms), pr->user_id,
                                     strlen(pr->user_id), buf, len, NULL,
                                     token) == ITD_ERR_RANGE)
                        itd_sink_give_up(lp, token,
                                         "prediction larger than "
                                         "message.max.bytes");
                lp->res->predicted++;
                itd_prom_observe(lp->m, ITD_M_SCORE,
                                 pr->purchase_probability);
                if (lp->query)
                        itd_query_note(lp->query, pr, row->user_hash);
                itd_prom_observe(lp->m, ITD_M_EVENT_TO_PREDICTION_SECONDS,
                                 (double)(now_wall - pr->event_ts_ms) /
                                        1000.0);
                if (lp->hooks.prediction)
                        lp->hooks.prediction(lp->hooks.arg, pr);
        }
}

static void process_batch(loop_t *lp, rd_kafka_message_t **msgs, size_t n) {
        size_t k = itd_decode_batch(lp, msgs, n);
        if (k == 0) {
                itd_source_note_applied(lp, msgs, n, NULL, 0);
                return;
        }
        if (itd_run_engine(lp, k)) {
                /* Nothing of the batch was applied: these events are
                 * consumed again after a restart. */
                for (size_t j = 0; j < k; j++)
                        itd_source_abandon(lp, lp->src[j].partition,
                                           EVENT_OUTPUTS);
                itd_source_note_applied(lp, msgs, n, lp->msg_of, k);
                return;
        }
        itd_source_note_applied(lp, msgs, n, NULL, 0);
        itd_run_emit(lp, k);
}

/* At stop: a last changelog snapshot of every assigned partition. */
static void final_snapshots(loop_t *lp) {
        int32_t *ps = itd_xcalloc(lp->n_pp + 1, sizeof *ps);
        size_t n = 0;
        for (size_t i = 0; i < lp->n_pp; i++)
                if (lp->pp[i].assigned)
                        ps[n++] = (int32_t)i;
        if (!itd_statelog_final(lp, ps, n, itd_now_mono_ms() +
                                              lp->conf->shutdown_timeout_ms))
                itd_log(ITD_LOG_ERR, "changelog",
                        "not every partition's final snapshot was "
                        "acknowledged: their next owners replay from the "
                        "one before");
        free(ps);
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
                itd_trigger_conf_t tc;
                itd_conf_to_triggers(lp->conf, &tc);
                for (size_t i = 0; i < lp->n_engs; i++) {
                        itd_engine_t *eng = lp->engs[i];
                        itd_engine_set_threshold(
                            eng, (float)lp->conf->predict_threshold);
                        itd_engine_set_learning_rate(
                            eng, (float)lp->conf->model_learning_rate);
                        if (itd_engine_set_triggers(eng, &tc, errstr,
                                                    sizeof errstr) != ITD_OK) {
                                itd_log(ITD_LOG_ERR, "conf",
                                        "trigger settings not applied: %s",
                                        errstr);
                                break;
                        }
                }
                itd_log(ITD_LOG_NOTICE, "conf", "reloaded %s: applied %s%s%s",
                        lp->opts->conf_path, *applied ? applied : "nothing",
                        *restart ? "; needs a restart to change: " : "",
                        restart);
                itd_prom_inc(lp->m, ITD_M_CONFIG_RELOADS, "ok", 1);
        }
        itd_conf_destroy(fresh);
        itd_notify_ready();
}

/* A partition held an erased user: its changelog snapshot is due now. */
static void erased_in(void *arg, int32_t partition) {
        itd_statelog_erased(arg, partition);
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
                                      ITD_OUT_PREDICTION | ITD_OUT_TRIGGER |
                                          ITD_OUT_AUDIT,
                                      opts->stop, &lp.ids, errstr,
                                      errstr_size);
        if (err)
                goto out;
        err = ITD_ERR_ARG;
        itd_input_conf_t ic;
        itd_conf_to_input(conf, &ic);
        lp.dec = itd_decoder_new(&ic, NULL, errstr, errstr_size);
        if (!lp.dec) {
                err = ITD_ERR_CONF;
                goto out;
        }
        lp.wk = itd_conf_new_workers(conf, errstr, errstr_size);
        if (!lp.wk)
                goto out;
        lp.n_engs = itd_workers_count(lp.wk);
        lp.engs = itd_xcalloc(lp.n_engs, sizeof *lp.engs);
        for (size_t i = 0; i < lp.n_engs; i++)
                lp.engs[i] = itd_workers_engine(lp.wk, i);
        lp.eng = lp.engs[0];
        itd_workers_enable_triggers(lp.wk);
        lp.mon = itd_monitor_new((uint64_t)conf->metrics_window,
                                 (float)conf->predict_threshold);
        itd_workers_set_example_hook(lp.wk, itd_monitor_hook, lp.mon);
        err = itd_commit_open(&lp, errstr, errstr_size);
        if (err)
                goto out;
        /* After the restore: a restored model starts a new lineage too. */
        char model_id[ITD_MODEL_ID_MAX];
        itd_model_id_new(conf, lp.eng, model_id);
        for (size_t i = 0; i < lp.n_engs; i++)
                itd_engine_set_model_id(lp.engs[i], model_id);
        itd_log(ITD_LOG_NOTICE, "model", "model id %s (step %lld)", model_id,
                (long long)itd_model_steps(itd_engine_model(lp.eng)));
        /* A model from a checkpoint is kept; a fresh one starts from the
         * model the other instances merged (modelsync.h). */
        err = itd_modelsync_start(
            conf, lp.eng, itd_model_steps(itd_engine_model(lp.eng)) == 0,
            &lp.msync, errstr, errstr_size);
        if (err)
                goto out;
        /* what the checkpoint and the model topic gave worker 0 */
        spread_model(&lp);
        if (lp.n_engs > 1)
                itd_log(ITD_LOG_NOTICE, "run",
                        "%zu pipeline workers: partition p is worker p %% %zu's",
                        lp.n_engs, lp.n_engs);
        err = ITD_ERR_ARG;
        atomic_store(&lp.health.model_loaded, 1);
        err = itd_sink_open(&lp, errstr, errstr_size);
        if (err)
                goto out;
        err = itd_statelog_open(&lp, errstr, errstr_size);
        if (err)
                goto out;
        err = itd_source_open(&lp, errstr, errstr_size);
        if (err)
                goto out;
        if (*conf->topic_control) {
                lp.erase = itd_erasure_new(conf, lp.ids.audit, lp.ck != NULL,
                                           lp.m, errstr, errstr_size);
                if (!lp.erase) {
                        err = ITD_ERR_CONF;
                        goto out;
                }
        }
        itd_log(ITD_LOG_NOTICE, "run", "consuming \"%s\", publishing to \"%s\"",
                conf->topic_events, conf->topic_predictions);

        size_t max_batch = itd_engine_max_batch(lp.eng);
        msgs = itd_xcalloc(max_batch, sizeof *msgs);
        lp.rows = itd_xcalloc(max_batch, sizeof *lp.rows);
        lp.src = itd_xcalloc(max_batch, sizeof *lp.src);
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
                        itd_query_serve(lp.query, lp.engs, lp.n_engs);
                if (lp.erase)
                        itd_erasure_poll(lp.erase, lp.engs, lp.n_engs,
                                         lp.query, erased_in, &lp);
                itd_decoder_poll(lp.dec, 0);
                itd_decode_release_parked(&lp, 0);
                itd_sink_retries(&lp);
                rd_kafka_poll(lp.producer, 0);
                itd_commit_store(&lp);
                if (lp.ck)
                        itd_commit_tick(&lp);
                if (lp.sl)
                        itd_statelog_tick(&lp);
                itd_source_flow_control(&lp);
                if (lp.msync)
                        modelsync_tick(&lp);
                if (itd_now_mono_ms() - last_gauges >= 500) {
                        last_gauges = itd_now_mono_ms();
                        /* the engine decides what is idle */
                        for (size_t i = 0; i < lp.n_engs; i++)
                                itd_engine_advance_idle(lp.engs[i],
                                                        itd_now_wall_ms());
                        itd_status_gauges(&lp);
                }
                if (itd_now_mono_ms() - last_ms >= interval)
                        itd_status_report(&lp, t0, &last_events, &last_ms, 0);
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
         * settles them (its checkpoint must be exact); without checkpoints they
         * are left, unacknowledged, to be consumed again after a restart. */
        if ((lp.ck || lp.sl) && !producer_dead)
                itd_decode_release_parked(&lp, 1);
        res->awaiting_schema = itd_decode_abandon_parked(&lp, -1);
        itd_sink_drain(&lp, itd_now_mono_ms() +
                               (producer_dead ? 0 : conf->shutdown_timeout_ms));
        if (itd_offsets_in_flight(lp.offsets) > 0)
                itd_log(ITD_LOG_ERR, "run",
                        "%llu outputs still unacknowledged after "
                        "shutdown.timeout; their events will be consumed "
                        "again on restart",
                        (unsigned long long)itd_offsets_in_flight(lp.offsets));
        /* The last changelog snapshots, committed, before the last checkpoint
         * (which then commits nothing itself). */
        if (lp.sl && !producer_dead)
                final_snapshots(&lp);
        if (lp.ck) {
                itd_commit_now(&lp, "at stop");
        } else if (!lp.sl) {
                rd_kafka_resp_err_t kerr =
                    rd_kafka_commit(lp.consumer, NULL, 0);
                if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                        itd_log(ITD_LOG_WARNING, "kafka", "final commit: %s",
                                rd_kafka_err2str(kerr));
        }
        /* after the last checkpoint: its acknowledgements go out */
        itd_erasure_destroy(lp.erase, conf->shutdown_timeout_ms);
        lp.erase = NULL;
        if (lp.msync)
                itd_run_sync_workers(&lp); /* its last change: the one model's */
        itd_modelsync_stop(lp.msync, conf->shutdown_timeout_ms);
        lp.msync = NULL;
        itd_status_report(&lp, t0, &last_events, &last_ms, 1);
        itd_status_gauges(&lp);
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
        if (lp.wk)
                itd_workers_stats(lp.wk, &res->engine);
        itd_modelsync_stop(lp.msync, 0);
        itd_erasure_destroy(lp.erase, 0);
        free(msgs);
        free(lp.rows);
        free(lp.src);
        free(lp.msg_of);
        free(lp.taken);
        itd_park_destroy(lp.park);
        itd_kafka_retryq_destroy(lp.rq);
        itd_source_close(&lp);
        itd_sink_close(&lp);
        itd_statelog_close(&lp);
        itd_checkpoint_dir_close(lp.ck);
        free(lp.pp);
        itd_workers_destroy(lp.wk);
        free(lp.engs);
        itd_monitor_destroy(lp.mon);
        itd_codec_destroy(lp.codec);
        itd_decoder_destroy(lp.dec);
        itd_offsets_destroy(lp.offsets);
        itd_http_stop(lp.http);
        itd_query_destroy(lp.query); /* after the server: it used it */
        itd_prom_destroy(lp.m);
        return err;
}
