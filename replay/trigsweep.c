/*
 * trigsweep.c - trigger counts over a ladder of rules and thresholds (see
 * trigsweep.h).
 */
#include "intentd/trigsweep.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/event.h"
#include "intentd/mem.h"
#include "intentd/scoredist.h"


/* The ladder: a rule and its enter parameter; exits keep the configured
 * ratio of exit to enter parameter. */
static const struct {
        itd_trigger_rule_t rule;
        double param;
} ladder[] = {
    {ITD_TRIGGER_RULE_TOP_PERCENT, 0.1}, {ITD_TRIGGER_RULE_TOP_PERCENT, 0.5},
    {ITD_TRIGGER_RULE_TOP_PERCENT, 1},   {ITD_TRIGGER_RULE_TOP_PERCENT, 2},
    {ITD_TRIGGER_RULE_TOP_PERCENT, 5},   {ITD_TRIGGER_RULE_LIFT, 2},
    {ITD_TRIGGER_RULE_LIFT, 3},          {ITD_TRIGGER_RULE_LIFT, 5},
    {ITD_TRIGGER_RULE_LIFT, 10},         {ITD_TRIGGER_RULE_ABSOLUTE, 0.05},
    {ITD_TRIGGER_RULE_ABSOLUTE, 0.1},    {ITD_TRIGGER_RULE_ABSOLUTE, 0.2},
    {ITD_TRIGGER_RULE_ABSOLUTE, 0.3},    {ITD_TRIGGER_RULE_ABSOLUTE, 0.5},
};
#define N_LADDER (sizeof ladder / sizeof ladder[0])
#define N_ROWS (N_LADDER + 1) /* row 0: the configured rule */

typedef struct row_s {
        itd_trigger_conf_t conf;
        itd_triggers_t *t;
} row_t;

/* What one part writes, in an allocation of its own: parts run on
 * threads of their own (no line shared with another's writes). */
typedef struct {
        itd_scoredist_t *dist; /* its copy: every part adds every score */
        uint64_t scores;
        size_t row[N_ROWS];    /* its rows */
        size_t n_rows;
} part_t;

struct itd_trigsweep_s {
        row_t row[N_ROWS];
        size_t n_parts; /* parts with rows: min(parts, N_ROWS) */
        part_t *part[N_ROWS];
};

/* c with rule r at enter parameter p, the exit scaled like c's own. */
static itd_trigger_conf_t rung(const itd_trigger_conf_t *c,
                               itd_trigger_rule_t r, double p) {
        itd_trigger_conf_t x = *c;
        x.rule = r;
        switch (r) {
        case ITD_TRIGGER_RULE_TOP_PERCENT:
                x.top_percent = p;
                x.exit_top_percent =
                    fmin(100.0, p * c->exit_top_percent / c->top_percent);
                break;
        case ITD_TRIGGER_RULE_LIFT:
                x.lift = p;
                x.exit_lift = p * c->exit_lift / c->lift;
                break;
        default:
                x.enter = (float)p;
                x.exit = c->enter > 0 ? (float)(p * c->exit / c->enter)
                                      : 0.0f;
                if (x.exit > x.enter)
                        x.exit = x.enter;
                break;
        }
        return x;
}

itd_trigsweep_t *itd_trigsweep_new(const itd_trigger_conf_t *base,
                                   size_t parts, const unsigned *weight,
                                   char *errstr, size_t errstr_size) {
        itd_trigger_conf_t c = *base;
        if (itd_trigger_conf_check(&c, errstr, errstr_size) != ITD_OK)
                return NULL;
        itd_trigsweep_t *sw = itd_xcalloc(1, sizeof *sw);
        sw->n_parts = parts < 1 ? 1 : parts < N_ROWS ? parts : N_ROWS;
        for (size_t p = 0; p < sw->n_parts; p++) {
                sw->part[p] = itd_xcalloc(1, sizeof *sw->part[p]);
                sw->part[p]->dist = itd_scoredist_new(c.half_life_events);
        }
        /* Rows dealt in order, each to the part whose share would be the
         * least filled with it (the first such): round robin when the
         * weights are equal. */
        for (size_t i = 0; i < N_ROWS; i++) {
                size_t best = 0;
                for (size_t p = 1; p < sw->n_parts; p++) {
                        double wb = weight && weight[best] ? weight[best] : 1;
                        double wp = weight && weight[p] ? weight[p] : 1;
                        if (((double)sw->part[p]->n_rows + 1) / wp <
                            ((double)sw->part[best]->n_rows + 1) / wb)
                                best = p;
                }
                part_t *pt = sw->part[best];
                pt->row[pt->n_rows++] = i;
        }
        for (size_t i = 0; i < N_ROWS; i++) {
                row_t *r = &sw->row[i];
                r->conf = i == 0 ? c
                                 : rung(&c, ladder[i - 1].rule,
                                        ladder[i - 1].param);
                r->t = itd_triggers_new(&r->conf, errstr, errstr_size);
                if (!r->t) {
                        itd_trigsweep_destroy(sw);
                        return NULL;
                }
        }
        return sw;
}

void itd_trigsweep_destroy(itd_trigsweep_t *sw) {
        if (!sw)
                return;
        for (size_t i = 0; i < N_ROWS; i++)
                itd_triggers_destroy(sw->row[i].t);
        for (size_t p = 0; p < sw->n_parts; p++) {
                itd_scoredist_destroy(sw->part[p]->dist);
                free(sw->part[p]);
        }
        free(sw);
}

size_t itd_trigsweep_parts(const itd_trigsweep_t *sw) { return sw->n_parts; }

/* Part p holds its rows and a distribution of its own that sees every
 * score, in the same order as the others': so each row decides exactly
 * as it would with the parts one. */
void itd_trigsweep_add_part(itd_trigsweep_t *sw, size_t part,
                            uint64_t user_hash, int64_t ts_ms, float score) {
        if (part >= sw->n_parts || !isfinite(score))
                return;
        part_t *pt = sw->part[part];
        for (size_t k = 0; k < pt->n_rows; k++) {
                size_t i = pt->row[k];
                itd_trigger_thresholds_t th;
                itd_trigger_thresholds(&sw->row[i].conf, pt->dist, &th);
                itd_triggers_decide(sw->row[i].t, user_hash, ts_ms,
                                    INT64_MIN, score, &th, NULL);
        }
        itd_scoredist_add(pt->dist, score);
        pt->scores++;
}

void itd_trigsweep_add(itd_trigsweep_t *sw, uint64_t user_hash,
                       int64_t ts_ms, float score) {
        for (size_t p = 0; p < sw->n_parts; p++)
                itd_trigsweep_add_part(sw, p, user_hash, ts_ms, score);
}

static double enter_param(const itd_trigger_conf_t *c) {
        return c->rule == ITD_TRIGGER_RULE_TOP_PERCENT ? c->top_percent
               : c->rule == ITD_TRIGGER_RULE_LIFT      ? c->lift
                                                       : (double)c->enter;
}

static double exit_param(const itd_trigger_conf_t *c) {
        return c->rule == ITD_TRIGGER_RULE_TOP_PERCENT ? c->exit_top_percent
               : c->rule == ITD_TRIGGER_RULE_LIFT      ? c->exit_lift
                                                       : (double)c->exit;
}

/* Same rule and parameters as the configured one. */
static int same_rung(const itd_trigger_conf_t *a,
                     const itd_trigger_conf_t *b) {
        return a->rule == b->rule &&
               fabs(enter_param(a) - enter_param(b)) < 1e-9 &&
               fabs(exit_param(a) - exit_param(b)) < 1e-6;
}

static json_t *row_json(const itd_trigsweep_t *sw, const row_t *r,
                        int configured) {
        itd_triggers_stats_t st;
        itd_triggers_stats(r->t, &st);
        uint64_t scores = sw->part[0]->scores;
        char rule[16];
        snprintf(rule, sizeof rule, "%s", itd_trigger_rule_name(r->conf.rule));
        for (char *p = rule; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        return json_pack(
            "{s:s, s:f, s:f, s:I, s:I, s:I, s:f, s:b}", "rule", rule,
            "parameter", enter_param(&r->conf), "exit_parameter",
            exit_param(&r->conf), "up", (json_int_t)st.fired_up, "down",
            (json_int_t)st.fired_down, "users",
            (json_int_t)(st.users + st.evicted), "up_per_1000_events",
            scores ? 1000.0 * (double)st.fired_up / (double)scores : 0.0,
            "configured", configured);
}

json_t *itd_trigsweep_json(const itd_trigsweep_t *sw) {
        json_t *rows = json_array();
        for (size_t i = 1; i < N_ROWS; i++)
                json_array_append_new(
                    rows, row_json(sw, &sw->row[i],
                                   same_rung(&sw->row[i].conf,
                                             &sw->row[0].conf)));
        return json_pack("{s:o, s:I, s:o}", "configured",
                         row_json(sw, &sw->row[0], 1), "scores",
                         (json_int_t)sw->part[0]->scores, "rows", rows);
}

void itd_trigsweep_print(const itd_trigsweep_t *sw, FILE *out) {
        fprintf(out, "  triggers per rule over %llu scores (UP / DOWN / "
                "users fired; * = configured):\n",
                (unsigned long long)sw->part[0]->scores);
        for (size_t i = 1; i < N_ROWS; i++) {
                const row_t *r = &sw->row[i];
                itd_triggers_stats_t st;
                itd_triggers_stats(r->t, &st);
                char label[48];
                switch (r->conf.rule) {
                case ITD_TRIGGER_RULE_TOP_PERCENT:
                        snprintf(label, sizeof label, "top %g%%",
                                 r->conf.top_percent);
                        break;
                case ITD_TRIGGER_RULE_LIFT:
                        snprintf(label, sizeof label, "lift %gx",
                                 r->conf.lift);
                        break;
                default:
                        snprintf(label, sizeof label, "score >= %.2f",
                                 (double)r->conf.enter);
                        break;
                }
                fprintf(out, "    %c %-14s %7llu / %7llu / %6llu\n",
                        same_rung(&r->conf, &sw->row[0].conf) ? '*' : ' ',
                        label, (unsigned long long)st.fired_up,
                        (unsigned long long)st.fired_down,
                        (unsigned long long)(st.users + st.evicted));
        }
}
