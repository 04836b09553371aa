/*
 * partition.c - one partition's state, labeler and triggers as one object
 * (partition.h).
 */
#include "intentd/partition.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "intentd/mem.h"

struct itd_partition_s {
        int32_t id;
        itd_partition_conf_t conf;
        itd_state_t *st;
        itd_labeler_t *lb;
        itd_triggers_t *trg;  /* marketing triggers of its users */
        itd_risk_t *rk;       /* the population of session paces */
        itd_triggers_t *rtrg; /* risk triggers of its users, or NULL */
        int64_t last_wall_ms; /* wall clock of its latest event */
        int64_t last_ts_ms;   /* event time of its latest event */
};

/* The risk trigger table's settings: rule ABSOLUTE at the risk
 * thresholds, staleness, memory and distribution as the marketing
 * triggers'. */
static itd_trigger_conf_t risk_trigger_conf(const itd_partition_conf_t *conf) {
        itd_trigger_conf_t tc = conf->triggers;
        tc.rule = ITD_TRIGGER_RULE_ABSOLUTE;
        tc.enter = conf->risk.trigger_enter;
        tc.exit = conf->risk.trigger_exit;
        tc.cooldown_ms = conf->risk.trigger_cooldown_ms;
        return tc;
}

static itd_triggers_t *risk_triggers_new(const itd_partition_conf_t *conf,
                                         char *errstr, size_t errstr_size) {
        if (!conf->risk.triggers_on)
                return NULL;
        itd_trigger_conf_t tc = risk_trigger_conf(conf);
        return itd_triggers_new(&tc, errstr, errstr_size);
}

/* Takes st, lb, trg, rk (NULL: a fresh population) and rtrg (built here
 * when NULL and risk triggers are on). */
static itd_partition_t *assemble(int32_t id, const itd_partition_conf_t *conf,
                                 itd_state_t *st, itd_labeler_t *lb,
                                 itd_triggers_t *trg, itd_risk_t *rk,
                                 itd_triggers_t *rtrg, int64_t last_ts_ms,
                                 int64_t now_ms) {
        itd_partition_t *pt = itd_xcalloc(1, sizeof *pt);
        pt->id = id;
        pt->conf = *conf;
        pt->st = st;
        pt->lb = lb;
        pt->trg = trg;
        pt->rk = rk ? rk : itd_risk_new();
        pt->rtrg = rtrg;
        pt->last_ts_ms = last_ts_ms;
        pt->last_wall_ms = now_ms;
        return pt;
}

itd_partition_t *itd_partition_new(int32_t id,
                                   const itd_partition_conf_t *conf,
                                   int64_t now_ms, char *errstr,
                                   size_t errstr_size) {
        itd_state_t *st = itd_state_new(&conf->state, errstr, errstr_size);
        if (!st)
                return NULL;
        itd_labeler_t *lb = itd_labeler_new(&conf->labels, errstr,
                                            errstr_size);
        itd_triggers_t *trg = lb ? itd_triggers_new(&conf->triggers, errstr,
                                                    errstr_size)
                                 : NULL;
        itd_triggers_t *rtrg = trg ? risk_triggers_new(conf, errstr,
                                                       errstr_size)
                                   : NULL;
        if (!trg || (conf->risk.triggers_on && !rtrg)) {
                itd_state_destroy(st);
                itd_labeler_destroy(lb);
                itd_triggers_destroy(trg);
                return NULL;
        }
        return assemble(id, conf, st, lb, trg, NULL, rtrg, 0, now_ms);
}

void itd_partition_destroy(itd_partition_t *pt) {
        if (!pt)
                return;
        itd_state_destroy(pt->st);
        itd_labeler_destroy(pt->lb);
        itd_triggers_destroy(pt->trg);
        itd_risk_destroy(pt->rk);
        itd_triggers_destroy(pt->rtrg);
        free(pt);
}

int32_t itd_partition_id(const itd_partition_t *pt) {
        return pt->id;
}

void itd_partition_info(const itd_partition_t *pt,
                        itd_partition_info_t *info) {
        itd_state_stats_t ss;
        itd_labeler_stats_t ls;
        itd_state_stats(pt->st, &ss);
        itd_labeler_stats(pt->lb, &ls);
        info->id = pt->id;
        info->watermark_ms = itd_state_watermark(pt->st);
        info->last_ts_ms = pt->last_ts_ms;
        info->users = ss.users;
        info->pending = ls.pending;
        info->state_bytes = ss.bytes;
}

/* ------------------------------------------------------------ per event */

void itd_partition_prefetch(const itd_partition_t *pt, uint64_t user_hash) {
        itd_state_prefetch(pt->st, user_hash);
}

itd_err_t itd_partition_apply(itd_partition_t *pt, const itd_event_t *ev,
                              uint64_t user_hash, int64_t now_ms, float *x,
                              uint32_t *ids, itd_topcats_t *top, int *late,
                              float *risk) {
        itd_err_t err = itd_state_update(pt->st, ev, user_hash, x, ids, top);
        pt->last_wall_ms = now_ms;
        if (ev->ts_ms > pt->last_ts_ms)
                pt->last_ts_ms = ev->ts_ms;
        int applied = err == ITD_OK;
        *late = err == ITD_ERR_RANGE &&
                ev->ts_ms < itd_state_watermark(pt->st);
        if (*late)
                err = itd_state_peek(pt->st, ev, user_hash, x, ids, top);
        /* the window now holds ev (applied) or stands as it was (late) */
        *risk = err == ITD_OK
                    ? itd_risk_score(pt->rk, pt->st, ev, applied, NULL)
                    : 0.0f;
        return err;
}

/* Whether an example of a risky prediction is still learned from: a draw
 * with probability train_weight, fixed by the user and the event time so
 * a replay or a restart decides the same. */
static int risky_kept(const itd_partition_t *pt, uint64_t user_hash,
                      int64_t ts_ms) {
        float w = pt->conf.risk.train_weight;
        if (w <= 0.0f)
                return 0;
        if (w >= 1.0f)
                return 1;
        uint64_t key[2] = {user_hash, (uint64_t)ts_ms};
        uint64_t h = XXH64(key, sizeof key, 0x7269736bu);
        return (double)(h >> 11) * 0x1.0p-53 < (double)w;
}

int itd_partition_predicted(itd_partition_t *pt, const itd_event_t *ev,
                            uint64_t user_hash, int64_t offset, int late,
                            const float *x, const uint32_t *ids, float score,
                            const float *next_probs, float risk) {
        itd_labeler_observe(pt->lb, user_hash, ev->ts_ms, ev->type);
        if (late)
                return 0;
        float th = pt->conf.risk.train_threshold;
        int untrained = th > 0.0f && risk >= th &&
                        !risky_kept(pt, user_hash, ev->ts_ms);
        /* A full pool drops its oldest pending prediction, so add only
         * ever succeeds (labeler.h). */
        (void)itd_labeler_add_opt(pt->lb, user_hash, ev->ts_ms, offset, x,
                                  ids, score, next_probs,
                                  untrained ? ITD_LABEL_NO_TRAIN : 0);
        return untrained;
}

int itd_partition_trigger(itd_partition_t *pt, uint64_t user_hash,
                          int64_t ts_ms, int64_t clock_ms, float score,
                          itd_trigger_fire_t *fire) {
        return itd_triggers_update(pt->trg, user_hash, ts_ms, clock_ms, score,
                                   fire);
}

int itd_partition_risk_trigger(itd_partition_t *pt, uint64_t user_hash,
                               int64_t ts_ms, int64_t clock_ms, float risk,
                               itd_trigger_fire_t *fire) {
        if (!pt->rtrg)
                return 0;
        return itd_triggers_update(pt->rtrg, user_hash, ts_ms, clock_ms, risk,
                                   fire);
}

/* ------------------------------------------------------- time and labels */

int itd_partition_erase(itd_partition_t *pt, const char *user_id,
                        uint64_t user_hash, itd_partition_erased_t *out) {
        memset(out, 0, sizeof *out);
        out->users = itd_state_erase(pt->st, user_id, &out->events) == ITD_OK;
        itd_labeler_erased_t le;
        itd_labeler_erase(pt->lb, user_hash, &le);
        out->pending = le.pending;
        out->queued = le.queued;
        out->triggers = (uint64_t)itd_triggers_erase(pt->trg, user_hash);
        if (pt->rtrg)
                out->risk_triggers =
                    (uint64_t)itd_triggers_erase(pt->rtrg, user_hash);
        return out->users || out->pending || out->queued || out->triggers ||
               out->risk_triggers;
}

void itd_partition_settle(itd_partition_t *pt) {
        itd_labeler_advance(pt->lb, itd_state_watermark(pt->st));
}

void itd_partition_advance(itd_partition_t *pt, int64_t wm_ms) {
        itd_state_advance(pt->st, wm_ms);
        itd_partition_settle(pt);
}

/* Wall time without an event of its own after which the partition is
 * idle: idle_ms, or the allowed lateness when longer (sooner would make
 * events late that a briefly quiet producer still delivers in time). The
 * engine's other rule, that the whole stream be quiet for idle_ms, is
 * checked before this is called (core/engine.c, stream_quiet). */
static int64_t idle_after_ms(const itd_partition_t *pt) {
        int64_t lateness = pt->conf.state.allowed_lateness_ms;
        return lateness > pt->conf.idle_ms ? lateness : pt->conf.idle_ms;
}

int itd_partition_advance_idle(itd_partition_t *pt, int64_t now_ms) {
        /* Idle: event time is taken to move on with the wall clock since
         * the partition's last event. Never to another partition's
         * watermark: partitions run ahead of each other (a fetch brings
         * one stored batch per partition), and a partition fetched late
         * would see its events refused as late. */
        int64_t lateness = pt->conf.state.allowed_lateness_ms;
        if (now_ms - pt->last_wall_ms <= idle_after_ms(pt))
                return 0;
        /* From the partition's frontier, not its newest event: one
         * future-dated event must not carry the watermark along. */
        int64_t frontier = itd_state_frontier(pt->st);
        if (frontier == INT64_MIN)
                return 0;
        int64_t target = frontier + (now_ms - pt->last_wall_ms) - lateness;
        if (target <= itd_state_watermark(pt->st))
                return 0;
        itd_partition_advance(pt, target);
        return 1;
}

size_t itd_partition_take(itd_partition_t *pt, itd_example_t *ex,
                          size_t max) {
        size_t n = itd_labeler_take(pt->lb, ex, max);
        /* labels.policy fake_negative: each prediction is judged once,
         * with its final label (labeler.h); the user's label counts take
         * that one. No feature is extracted until the next event, so
         * counting them all before they are learned from is the same as
         * counting each on its way. */
        for (size_t i = 0; i < n; i++)
                if (ex[i].judge)
                        (void)itd_state_label(pt->st, ex[i].user_hash,
                                              ex[i].label);
        return n;
}

/* ------------------------------------------------------ settings, reading */

itd_err_t itd_partition_set_triggers(itd_partition_t *pt,
                                     const itd_trigger_conf_t *tc,
                                     char *errstr, size_t errstr_size) {
        itd_err_t err = itd_triggers_set_conf(pt->trg, tc, errstr,
                                              errstr_size);
        if (err)
                return err;
        itd_partition_conf_t next = pt->conf;
        next.triggers = *tc;
        if (pt->rtrg) {
                /* the risk table follows staleness and memory */
                itd_trigger_conf_t rc = risk_trigger_conf(&next);
                err = itd_triggers_set_conf(pt->rtrg, &rc, errstr,
                                            errstr_size);
        }
        if (!err)
                pt->conf = next;
        return err;
}

const itd_state_t *itd_partition_state(const itd_partition_t *pt) {
        return pt->st;
}

const itd_labeler_t *itd_partition_labeler(const itd_partition_t *pt) {
        return pt->lb;
}

const itd_triggers_t *itd_partition_triggers(const itd_partition_t *pt) {
        return pt->trg;
}

const itd_triggers_t *itd_partition_risk_triggers(const itd_partition_t *pt) {
        return pt->rtrg;
}

const itd_risk_t *itd_partition_risk(const itd_partition_t *pt) {
        return pt->rk;
}

/* -------------------------------------------------------------- snapshot */

itd_err_t itd_partition_write(const itd_partition_t *pt, FILE *out,
                              char *errstr, size_t errstr_size) {
        itd_err_t err = itd_state_snapshot(pt->st, out, errstr, errstr_size);
        if (!err)
                err = itd_labeler_snapshot(pt->lb, out, errstr, errstr_size);
        if (!err)
                err = itd_triggers_snapshot(pt->trg, out, errstr, errstr_size);
        if (!err)
                err = itd_risk_snapshot(pt->rk, out, errstr, errstr_size);
        if (!err && pt->rtrg)
                err = itd_triggers_snapshot(pt->rtrg, out, errstr,
                                            errstr_size);
        return err;
}

/* 1 when in has no byte left (the optional sections are absent). */
static int at_end(FILE *in) {
        int c = fgetc(in);
        if (c == EOF)
                return 1;
        ungetc(c, in);
        return 0;
}

itd_err_t itd_partition_read(FILE *in, int32_t id,
                             const itd_partition_conf_t *conf,
                             int64_t last_ts_ms, int64_t now_ms,
                             itd_partition_t **out, char *errstr,
                             size_t errstr_size) {
        itd_state_t *st = NULL;
        itd_labeler_t *lb = NULL;
        itd_triggers_t *trg = NULL, *rtrg = NULL;
        itd_risk_t *rk = NULL;
        *out = NULL;
        itd_err_t err = itd_state_restore(in, &conf->state, &st, errstr,
                                          errstr_size);
        if (!err)
                err = itd_labeler_restore(in, &conf->labels, &lb, errstr,
                                          errstr_size);
        if (!err)
                err = itd_triggers_restore(in, &conf->triggers, &trg, errstr,
                                           errstr_size);
        /* Optional sections, absent from an older build's snapshot: the
         * risk population, then the risk trigger table (written only while
         * risk triggers were on; read back only while they still are). */
        if (!err && !at_end(in))
                err = itd_risk_restore(in, &rk, errstr, errstr_size);
        if (!err && rk && !at_end(in)) {
                itd_trigger_conf_t rc = risk_trigger_conf(conf);
                if (!conf->risk.triggers_on)
                        rc = conf->triggers; /* only to read it past */
                err = itd_triggers_restore(in, &rc, &rtrg, errstr,
                                           errstr_size);
                if (!err && !conf->risk.triggers_on) {
                        itd_triggers_destroy(rtrg);
                        rtrg = NULL;
                }
        }
        if (!err && conf->risk.triggers_on && !rtrg) {
                rtrg = risk_triggers_new(conf, errstr, errstr_size);
                if (!rtrg)
                        err = ITD_ERR_CONF;
        }
        if (err) {
                itd_state_destroy(st);
                itd_labeler_destroy(lb);
                itd_triggers_destroy(trg);
                itd_risk_destroy(rk);
                itd_triggers_destroy(rtrg);
                return err;
        }
        *out = assemble(id, conf, st, lb, trg, rk, rtrg, last_ts_ms, now_ms);
        return ITD_OK;
}
