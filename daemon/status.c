/*
 * status.c - what `intentd run` tells the outside while it runs: a
 * progress line (terminal) or log line, systemd's STATUS, and the engine's
 * counters mirrored into the /metrics registry (the HTTP thread never
 * touches the engine).
 */
#include "run_int.h"

#include <stdio.h>
#include <unistd.h>

void itd_status_report(loop_t *lp, int64_t t0, uint64_t *last_events,
                       int64_t *last_ms, int final) {
        int64_t now = itd_now_mono_ms();
        itd_engine_stats_t es;
        itd_workers_stats(lp->wk, &es);
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
                          (unsigned long long)es.users, es.eval.auc);
        if (lp->opts->progress) {
                /* On a terminal one line redraws itself; in a log or a
                 * pipe each report is its own line. */
                int tty = isatty(STDERR_FILENO);
                fprintf(stderr,
                        "%s  %llu events | %.0f events/s | %llu predictions"
                        " | %llu labelled | AUC %.3f | log loss %.3f   %s",
                        tty ? "\r" : "", (unsigned long long)lp->res->consumed,
                        rate, (unsigned long long)es.predictions,
                        (unsigned long long)es.eval.n, es.eval.auc,
                        es.eval.logloss, final || !tty ? "\n" : "");
                return;
        }
        /* With topics.model: what the model sync exchanged so far. */
        char sync[80] = "";
        if (lp->msync) {
                uint64_t pub, merged;
                itd_modelsync_counts(lp->msync, &pub, &merged);
                snprintf(sync, sizeof sync,
                         " sync_published=%llu sync_merged=%llu",
                         (unsigned long long)pub,
                         (unsigned long long)merged);
        }
        itd_log(ITD_LOG_INFO, "run",
                "events=%llu rate=%.0f/s predictions=%llu dead_letters=%llu "
                "filtered=%llu in_flight=%llu users=%llu pending=%llu "
                "labelled=%llu auc=%.4f logloss=%.4f f1=%.3f steps=%llu%s",
                (unsigned long long)lp->res->consumed, rate,
                (unsigned long long)es.predictions,
                (unsigned long long)lp->res->dead_lettered,
                (unsigned long long)lp->res->filtered,
                (unsigned long long)itd_offsets_in_flight(lp->offsets),
                (unsigned long long)es.users, (unsigned long long)es.pending,
                (unsigned long long)es.eval.n, es.eval.auc, es.eval.logloss,
                es.eval.f1, (unsigned long long)es.train_steps, sync);
}

/* Mirrors the engine's counters and progressive metrics into the registry
 * that /metrics renders (the HTTP thread never touches the engine). */
void itd_status_gauges(loop_t *lp) {
        itd_engine_stats_t es;
        itd_workers_stats(lp->wk, &es);
        itd_prom_t *m = lp->m;
        itd_prom_set(m, ITD_M_EVENTS_LATE, NULL, (double)es.late);
        itd_prom_set(m, ITD_M_TRAINING_EXAMPLES, "positive",
                     (double)es.examples_pos);
        itd_prom_set(m, ITD_M_TRAINING_EXAMPLES, "negative",
                     (double)es.examples_neg);
        itd_prom_set(m, ITD_M_TRAINING_STEPS, NULL, (double)es.train_steps);
        itd_prom_set(m, ITD_M_TRAINING_SKIPPED, NULL,
                     (double)es.train_skipped);
        itd_prom_set(m, ITD_M_RISK_UNTRAINED, NULL,
                     (double)es.risk_untrained);
        if (es.train_skipped > lp->train_skipped) {
                itd_log(ITD_LOG_WARNING, "model",
                        "skipped %llu training step(s): non-finite loss",
                        (unsigned long long)(es.train_skipped -
                                             lp->train_skipped));
                lp->train_skipped = es.train_skipped;
        }
        itd_prom_set(m, ITD_M_PROGRESSIVE_AUC, NULL, es.eval.auc);
        itd_prom_set(m, ITD_M_PROGRESSIVE_LOGLOSS, NULL, es.eval.logloss);
        itd_prom_set(m, ITD_M_PROGRESSIVE_F1, NULL, es.eval.f1);
        itd_prom_set(m, ITD_M_PROGRESSIVE_PRECISION, NULL, es.eval.precision);
        itd_prom_set(m, ITD_M_PROGRESSIVE_RECALL, NULL, es.eval.recall);
        itd_prom_set(m, ITD_M_PROGRESSIVE_ECE, NULL, es.eval.ece);
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
