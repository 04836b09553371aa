/*
 * compare.c - the judged examples of a replay beside the baseline and the
 * two rules (compare.h): the store, the rules, the split, the judgements
 * and the summary table. The report's chart data is in compare_json.c.
 *
 * The purchase-rate rule is computed as events are read (per-user
 * counters). The label-rate rule needs each earlier prediction's label and
 * when it was decided, which only the resolved examples tell, so it is
 * computed in itd_compare_finish from the examples and the purchase
 * events, with the same information a rule running live would have had:
 *   - a positive is decided by the first purchase of the user after the
 *     prediction in the stream (the one that made it positive), so it
 *     counts for predictions on that purchase event and after;
 *   - a negative is decided once event time has passed t + horizon, so it
 *     counts for predictions with ts > t + horizon.
 */
#include "compare_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "intentd/mem.h"

#define PROB_MIN 1e-7 /* log loss clamp, as model/eval_progressive.c */
#define ECE_BINS 10
/* The bootstrap visits examples x scorers x resamples; past this many
 * visits per period (about 1 s) large inputs get fewer resamples, never
 * under BOOT_MIN: their intervals are narrow, so the endpoints' Monte
 * Carlo error matters less. */
#define BOOT_VISITS 5e8
#define BOOT_MIN 200
/* The purchase-rate rule is smoothed as the `purchase_rate` feature is
 * (docs/FEATURES.md): without it every user yet to buy ties at 0. */
#define RATE_PRIOR_BUYS 0.5f
#define RATE_PRIOR_EVENTS 10.0f

void itd_compare_conf_defaults(itd_compare_conf_t *conf, int64_t horizon_ms) {
        *conf = (itd_compare_conf_t){.horizon_ms = horizon_ms,
                                     .model_name = "model",
                                     .baseline = NULL,
                                     .resamples = 1000,
                                     .seed = 1,
                                     .test_share = 0.3,
                                     .span_quantile = 0.001,
                                     .prior_weight = 10.0};
}

itd_compare_t *itd_compare_new(const itd_compare_conf_t *conf) {
        itd_compare_t *cmp = itd_xcalloc(1, sizeof *cmp);
        cmp->conf = *conf;
        snprintf(cmp->model_name, sizeof cmp->model_name, "%s",
                 conf->model_name ? conf->model_name : "model");
        if (conf->baseline)
                snprintf(cmp->baseline_name, sizeof cmp->baseline_name, "%s",
                         conf->baseline);
        cmp->conf.model_name = cmp->model_name;
        cmp->conf.baseline = conf->baseline ? cmp->baseline_name : NULL;
        for (int s = 0; s < ITD_SC__COUNT; s++)
                cmp->has[s] = s != ITD_SC_BASELINE || conf->baseline;
        return cmp;
}

void itd_compare_destroy(itd_compare_t *cmp) {
        if (!cmp)
                return;
        free(cmp->users);
        free(cmp->slot);
        free(cmp->buys);
        free(cmp->ex);
        for (int s = 0; s < ITD_SC__COUNT; s++)
                free(cmp->score[s]);
        free(cmp->by_time);
        free(cmp);
}

int itd_compare_has(const itd_compare_t *cmp, itd_scorer_t sc) {
        return sc >= 0 && sc < ITD_SC__COUNT && cmp->has[sc];
}

const char *itd_scorer_key(itd_scorer_t sc) {
        static const char *const keys[] = {"model", "baseline",
                                           "purchase_rate", "label_rate"};
        return sc >= 0 && sc < ITD_SC__COUNT ? keys[sc] : "?";
}

const char *itd_compare_label(const itd_compare_t *cmp, itd_scorer_t sc,
                              char *buf, size_t cap) {
        switch (sc) {
        case ITD_SC_MODEL:
                snprintf(buf, cap, "model (%s)", cmp->model_name);
                break;
        case ITD_SC_BASELINE:
                snprintf(buf, cap, "baseline (%s)", cmp->baseline_name);
                break;
        case ITD_SC_PURCHASE_RATE:
                snprintf(buf, cap, "purchase-rate rule");
                break;
        default:
                snprintf(buf, cap, "label-rate rule");
                break;
        }
        return buf;
}

/* ---- the store -------------------------------------------------------- */

static uint32_t user_index(itd_compare_t *cmp, uint64_t key) {
        if ((cmp->n_users + 1) * 2 > cmp->cap_slot) {
                size_t cap = cmp->cap_slot ? cmp->cap_slot * 2 : 1024;
                uint32_t *slot = itd_xcalloc(cap, sizeof *slot);
                for (size_t u = 0; u < cmp->n_users; u++) {
                        size_t i = cmp->users[u].key & (cap - 1);
                        while (slot[i])
                                i = (i + 1) & (cap - 1);
                        slot[i] = (uint32_t)u + 1;
                }
                free(cmp->slot);
                cmp->slot = slot;
                cmp->cap_slot = cap;
        }
        size_t i = key & (cmp->cap_slot - 1);
        while (cmp->slot[i]) {
                uint32_t u = cmp->slot[i] - 1;
                if (cmp->users[u].key == key)
                        return u;
                i = (i + 1) & (cmp->cap_slot - 1);
        }
        if (cmp->n_users == cmp->cap_users) {
                cmp->cap_users = cmp->cap_users ? cmp->cap_users * 2 : 256;
                cmp->users = itd_xrealloc(cmp->users,
                                          cmp->cap_users * sizeof *cmp->users);
        }
        uint32_t u = (uint32_t)cmp->n_users++;
        cmp->users[u] = (cmp_user_t){.key = key};
        cmp->slot[i] = u + 1;
        return u;
}

void itd_compare_event(itd_compare_t *cmp, const itd_event_t *ev,
                       uint64_t user_hash, itd_compare_ev_t *out) {
        uint32_t u = user_index(cmp, user_hash);
        cmp_user_t *us = &cmp->users[u];
        us->events++;
        if (ev->type == ITD_EV_PURCHASE) {
                us->purchases++;
                if (cmp->n_buys == cmp->cap_buys) {
                        cmp->cap_buys = cmp->cap_buys ? cmp->cap_buys * 2
                                                      : 256;
                        cmp->buys = itd_xrealloc(
                            cmp->buys, cmp->cap_buys * sizeof *cmp->buys);
                }
                cmp->buys[cmp->n_buys++] = (cmp_buy_t){cmp->seq, u};
        }
        *out = (itd_compare_ev_t){
            .seq = cmp->seq++,
            .user = u,
            .purchase_rate = ((float)us->purchases + RATE_PRIOR_BUYS) /
                             ((float)us->events + RATE_PRIOR_EVENTS),
            .type = (uint8_t)ev->type,
            .bought = us->purchases > 0};
}

void itd_compare_add(itd_compare_t *cmp, const itd_compare_ev_t *ev,
                     int64_t ts_ms, float score, float baseline, int label) {
        if (!isfinite(score) || (cmp->has[ITD_SC_BASELINE] &&
                                 !isfinite(baseline))) {
                cmp->non_finite++;
                return;
        }
        if (cmp->n == cmp->cap) {
                cmp->cap = cmp->cap ? cmp->cap * 2 : 4096;
                cmp->ex = itd_xrealloc(cmp->ex, cmp->cap * sizeof *cmp->ex);
                for (int s = 0; s < ITD_SC__COUNT; s++)
                        cmp->score[s] = itd_xrealloc(
                            cmp->score[s], cmp->cap * sizeof(float));
        }
        size_t i = cmp->n++;
        cmp->ex[i] = (cmp_ex_t){.ts = ts_ms, .seq = ev->seq,
                                .user = ev->user, .label = label != 0,
                                .type = ev->type, .bought = ev->bought};
        cmp->score[ITD_SC_MODEL][i] = score;
        cmp->score[ITD_SC_BASELINE][i] = baseline;
        cmp->score[ITD_SC_PURCHASE_RATE][i] = ev->purchase_rate;
        cmp->score[ITD_SC_LABEL_RATE][i] = NAN; /* finish */
}

/* ---- the label-rate rule ---------------------------------------------- */

typedef struct {
        uint64_t a, b;
        uint32_t i;
} key2_t;

static int key2_cmp(const void *x, const void *y) {
        const key2_t *p = x, *q = y;
        if (p->a != q->a)
                return p->a < q->a ? -1 : 1;
        if (p->b != q->b)
                return p->b < q->b ? -1 : 1;
        return (p->i > q->i) - (p->i < q->i);
}

static int u64_cmp(const void *x, const void *y) {
        uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
        return (a > b) - (a < b);
}

/* How many of sorted v[0..n) are <= x. */
static size_t count_le(const uint64_t *v, size_t n, uint64_t x) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (v[mid] <= x)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* Event times as unsigned, order kept, so one search serves both. */
static uint64_t ts_key(int64_t ts) { return (uint64_t)ts ^ (1ULL << 63); }

/* When example i's label was decided: for a positive the stream position
 * of the purchase that made it (UINT64_MAX if none is found, which the
 * labeler's semantics rule out), for a negative ts + horizon. */
static uint64_t decided_at(const itd_compare_t *cmp, const cmp_ex_t *e,
                           const uint64_t *buy_seq, const size_t *buy_off) {
        if (!e->label)
                return ts_key(e->ts + cmp->conf.horizon_ms);
        const uint64_t *b = buy_seq + buy_off[e->user];
        size_t nb = buy_off[e->user + 1] - buy_off[e->user];
        size_t k = count_le(b, nb, e->seq);
        return k < nb ? b[k] : UINT64_MAX;
}

static void label_rate_rule(itd_compare_t *cmp) {
        size_t n = cmp->n, U = cmp->n_users;
        /* each user's purchases, in stream order */
        size_t *buy_off = itd_xcalloc(U + 1, sizeof *buy_off);
        uint64_t *buy_seq = itd_xcalloc(cmp->n_buys + 1, sizeof *buy_seq);
        for (size_t i = 0; i < cmp->n_buys; i++)
                buy_off[cmp->buys[i].user + 1]++;
        for (size_t u = 0; u < U; u++)
                buy_off[u + 1] += buy_off[u];
        size_t *fill = itd_xcalloc(U + 1, sizeof *fill);
        for (size_t i = 0; i < cmp->n_buys; i++) {
                uint32_t u = cmp->buys[i].user;
                buy_seq[buy_off[u] + fill[u]++] = cmp->buys[i].seq;
        }
        free(fill);

        /* decided positives by stream position, negatives by event time,
         * over all users (the prior) and per user */
        uint64_t *gpos = itd_xcalloc(n + 1, sizeof *gpos);
        uint64_t *gneg = itd_xcalloc(n + 1, sizeof *gneg);
        size_t np = 0, nn = 0;
        for (size_t i = 0; i < n; i++) {
                uint64_t d = decided_at(cmp, &cmp->ex[i], buy_seq, buy_off);
                if (cmp->ex[i].label)
                        gpos[np++] = d;
                else
                        gneg[nn++] = d;
        }
        qsort(gpos, np, sizeof *gpos, u64_cmp);
        qsort(gneg, nn, sizeof *gneg, u64_cmp);

        key2_t *k = itd_xcalloc(n + 1, sizeof *k);
        for (size_t i = 0; i < n; i++)
                k[i] = (key2_t){cmp->ex[i].user, cmp->ex[i].seq, (uint32_t)i};
        qsort(k, n, sizeof *k, key2_cmp);
        uint64_t *upos = itd_xcalloc(n + 1, sizeof *upos);
        uint64_t *uneg = itd_xcalloc(n + 1, sizeof *uneg);
        double m = cmp->conf.prior_weight;
        for (size_t a = 0; a < n;) {
                size_t b = a, up = 0, un = 0;
                while (b < n && k[b].a == k[a].a)
                        b++;
                for (size_t j = a; j < b; j++) {
                        const cmp_ex_t *e = &cmp->ex[k[j].i];
                        uint64_t d = decided_at(cmp, e, buy_seq, buy_off);
                        if (e->label)
                                upos[up++] = d;
                        else
                                uneg[un++] = d;
                }
                qsort(upos, up, sizeof *upos, u64_cmp);
                qsort(uneg, un, sizeof *uneg, u64_cmp);
                for (size_t j = a; j < b; j++) {
                        const cmp_ex_t *e = &cmp->ex[k[j].i];
                        /* positives decided at this event or before it;
                         * negatives whose horizon ended before ts */
                        double p = (double)count_le(upos, up, e->seq);
                        double q = e->ts == INT64_MIN
                                       ? 0.0
                                       : (double)count_le(uneg, un,
                                                          ts_key(e->ts - 1));
                        double gp = (double)count_le(gpos, np, e->seq);
                        double gq = e->ts == INT64_MIN
                                        ? 0.0
                                        : (double)count_le(gneg, nn,
                                                           ts_key(e->ts - 1));
                        double prior = (gp + 1.0) / (gp + gq + 2.0);
                        cmp->score[ITD_SC_LABEL_RATE][k[j].i] =
                            (float)((p + m * prior) / (p + q + m));
                }
                a = b;
        }
        free(k);
        free(upos);
        free(uneg);
        free(gpos);
        free(gneg);
        free(buy_off);
        free(buy_seq);
}

/* ---- judgements ------------------------------------------------------- */

void cmp_subset_init(const itd_compare_t *cmp, cmp_subset_t *s,
                     const uint32_t *idx, size_t n) {
        memset(s, 0, sizeof *s);
        s->n = n;
        s->label = itd_xcalloc(n + 1, 1);
        s->user = itd_xcalloc(n + 1, sizeof *s->user);
        for (int c = 0; c < ITD_SC__COUNT; c++)
                if (cmp->has[c])
                        s->score[c] = itd_xcalloc(n + 1, sizeof(float));
        for (size_t j = 0; j < n; j++) {
                const cmp_ex_t *e = &cmp->ex[idx[j]];
                s->label[j] = e->label;
                s->user[j] = e->user;
                for (int c = 0; c < ITD_SC__COUNT; c++)
                        if (s->score[c])
                                s->score[c][j] = cmp->score[c][idx[j]];
        }
}

void cmp_subset_free(cmp_subset_t *s) {
        free(s->label);
        free(s->user);
        for (int c = 0; c < ITD_SC__COUNT; c++)
                free(s->score[c]);
        memset(s, 0, sizeof *s);
}

double cmp_logloss(const float *s, const uint8_t *y, size_t n) {
        double sum = 0;
        for (size_t i = 0; i < n; i++) {
                double p = s[i] < PROB_MIN       ? PROB_MIN
                           : s[i] > 1 - PROB_MIN ? 1 - PROB_MIN
                                                 : s[i];
                sum += y[i] ? -log(p) : -log(1.0 - p);
        }
        return n ? sum / (double)n : NAN;
}

static void judge(itd_compare_t *cmp, const uint32_t *idx, size_t n,
                  itd_compare_period_t *p) {
        memset(p, 0, sizeof *p);
        p->n = n;
        if (n == 0)
                return;
        cmp_subset_t s;
        cmp_subset_init(cmp, &s, idx, n);
        unsigned char *seen = itd_xcalloc(cmp->n_users + 1, 1);
        p->from_ts = p->to_ts = cmp->ex[idx[0]].ts;
        for (size_t j = 0; j < n; j++) {
                int64_t ts = cmp->ex[idx[j]].ts;
                p->positives += s.label[j];
                p->users += !seen[s.user[j]];
                seen[s.user[j]] = 1;
                if (ts < p->from_ts)
                        p->from_ts = ts;
                if (ts > p->to_ts)
                        p->to_ts = ts;
        }
        free(seen);
        const float *boot[ITD_SC__COUNT];
        int which[ITD_SC__COUNT];
        size_t k = 0;
        for (int c = 0; c < ITD_SC__COUNT; c++) {
                if (!cmp->has[c])
                        continue;
                itd_compare_score_t *sc = &p->sc[c];
                sc->auc = itd_eval_auc(s.score[c], s.label, n);
                sc->lift10 = itd_eval_lift(s.score[c], s.label, n, 0.1);
                itd_eval_calibration(s.score[c], s.label, n, ECE_BINS, NULL,
                                     &sc->ece);
                sc->logloss = cmp_logloss(s.score[c], s.label, n);
                boot[k] = s.score[c]; /* the model first: diffs vs it */
                which[k++] = c;
        }
        itd_eval_interval_t ci[ITD_SC__COUNT], diff[ITD_SC__COUNT];
        itd_eval_auc_boot(boot, k, s.label, s.user, n, cmp->n_users,
                          cmp->resamples, cmp->conf.seed, 0.95, ci, diff);
        for (size_t j = 0; j < k; j++) {
                p->sc[which[j]].auc_ci = ci[j];
                /* model minus scorer: > 0 where the model leads */
                p->sc[which[j]].model_lead = (itd_eval_interval_t){
                    -diff[j].hi, -diff[j].lo, diff[j].resamples};
        }
        cmp_subset_free(&s);
}

typedef struct {
        int64_t ts;
        uint64_t seq;
        uint32_t i;
} tkey_t;

static int tkey_cmp(const void *x, const void *y) {
        const tkey_t *p = x, *q = y;
        if (p->ts != q->ts)
                return p->ts < q->ts ? -1 : 1;
        if (p->seq != q->seq)
                return p->seq < q->seq ? -1 : 1;
        return (p->i > q->i) - (p->i < q->i);
}

void itd_compare_finish(itd_compare_t *cmp) {
        if (cmp->finished)
                return;
        cmp->finished = 1;
        size_t n = cmp->n;
        label_rate_rule(cmp);
        tkey_t *k = itd_xcalloc(n + 1, sizeof *k);
        for (size_t i = 0; i < n; i++)
                k[i] = (tkey_t){cmp->ex[i].ts, cmp->ex[i].seq, (uint32_t)i};
        qsort(k, n, sizeof *k, tkey_cmp);
        cmp->by_time = itd_xcalloc(n + 1, sizeof *cmp->by_time);
        int64_t *ts = itd_xcalloc(n + 1, sizeof *ts);
        for (size_t i = 0; i < n; i++) {
                cmp->by_time[i] = k[i].i;
                ts[i] = k[i].ts;
        }
        free(k);
        size_t scorers = 0;
        for (int c = 0; c < ITD_SC__COUNT; c++)
                scorers += cmp->has[c] != 0;
        cmp->resamples = cmp->conf.resamples;
        double visits = (double)n * (double)scorers;
        if (visits * (double)cmp->resamples > BOOT_VISITS)
                cmp->resamples = BOOT_VISITS / visits > BOOT_MIN
                                     ? (size_t)(BOOT_VISITS / visits)
                                     : BOOT_MIN;
        if (cmp->resamples > cmp->conf.resamples)
                cmp->resamples = cmp->conf.resamples;
        judge(cmp, cmp->by_time, n, &cmp->period[0]);
        if (n == 0) {
                free(ts);
                return;
        }
        itd_eval_span(ts, n, cmp->conf.span_quantile, &cmp->span_lo,
                      &cmp->span_hi);
        double width = (double)(cmp->span_hi - cmp->span_lo);
        cmp->cut_ts = cmp->span_lo +
                      (int64_t)llround((1.0 - cmp->conf.test_share) * width);
        size_t first = 0;
        while (first < n && ts[first] < cmp->cut_ts)
                first++;
        free(ts);
        judge(cmp, cmp->by_time + first, n - first, &cmp->period[1]);
}

const itd_compare_period_t *itd_compare_period(const itd_compare_t *cmp,
                                               int which) {
        return &cmp->period[which ? 1 : 0];
}

/* ---- the summary table ------------------------------------------------ */

static void utc(int64_t ms, char *buf, size_t cap) {
        time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        struct tm tm;
        if (!gmtime_r(&t, &tm) ||
            !strftime(buf, cap, "%Y-%m-%d %H:%M", &tm))
                snprintf(buf, cap, "%" PRId64 " ms", ms);
}

static void print_period(const itd_compare_t *cmp, FILE *out, int which) {
        const itd_compare_period_t *p = &cmp->period[which];
        char from[32];
        utc(cmp->cut_ts, from, sizeof from);
        if (which == 0)
                fprintf(out, "\n  all labelled events: ");
        else
                fprintf(out, "\n  last %.0f%% of event time (from %s UTC; "
                        "robust span of the examples' times %.1f%%..%.1f%%):"
                        "\n    ", 100.0 * cmp->conf.test_share, from,
                        100.0 * cmp->conf.span_quantile,
                        100.0 - 100.0 * cmp->conf.span_quantile);
        fprintf(out, "%zu examples, %zu positive (base rate %.4f), %zu "
                "users\n", p->n, p->positives,
                p->n ? (double)p->positives / (double)p->n : NAN, p->users);
        if (p->n == 0)
                return;
        fprintf(out, "    %-22s %-6s %-16s %-17s %-8s %-7s %s\n", "", "AUC",
                "95% (users)", "model minus it", "lift@10%", "ECE", "log loss");
        for (int c = 0; c < ITD_SC__COUNT; c++) {
                if (!cmp->has[c])
                        continue;
                const itd_compare_score_t *s = &p->sc[c];
                char name[48], ci[32] = "", d[32] = "";
                if (cmp->resamples)
                        snprintf(ci, sizeof ci, "[%.3f, %.3f]", s->auc_ci.lo,
                                 s->auc_ci.hi);
                if (cmp->resamples && c != ITD_SC_MODEL)
                        snprintf(d, sizeof d, "[%+.3f, %+.3f]",
                                 s->model_lead.lo, s->model_lead.hi);
                fprintf(out, "    %-22s %-6.3f %-16s %-17s %-8.2f %-7.4f "
                        "%.4f\n", itd_compare_label(cmp, c, name, sizeof name),
                        s->auc, ci, d, s->lift10, s->ece, s->logloss);
        }
}

void itd_compare_print(const itd_compare_t *cmp, FILE *out) {
        char intervals[96] = "no intervals";
        if (cmp->resamples)
                snprintf(intervals, sizeof intervals, "95%% intervals from "
                         "%zu resamples of users, seed %" PRIu64,
                         cmp->resamples, cmp->conf.seed);
        fprintf(out, "\n  on the same examples: the model, %sthe "
                "purchase-rate rule and the label-rate rule\n  (AUC exact; "
                "%s; ECE over %d equal-mass bins)\n",
                cmp->has[ITD_SC_BASELINE] ? "the baseline, " : "", intervals,
                ECE_BINS);
        print_period(cmp, out, 0);
        print_period(cmp, out, 1);
        if (cmp->non_finite)
                fprintf(out, "  (%" PRIu64 " examples with a non-finite "
                        "score left out)\n", cmp->non_finite);
}
