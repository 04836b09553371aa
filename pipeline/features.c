/*
 * features.c - the dense feature vector, sparse ids and top categories
 * built from one user's state just after an event (docs/FEATURES.md lists
 * every feature; the name table here and that file must agree).
 *
 * Layout, W = number of windows, T = 6 event types:
 *   count_<win>_<type>      W*T  log1p(events of type in window)
 *   life_<type>             T    log1p(events of type since first seen)
 *   life_events, purchase_rate
 *   secs_since_<type>       T    log1p(s)/8 since the previous such event
 *   never_<type>            T    1 if there was none
 *   secs_since_prev_event, secs_since_first
 *   sess_* (7), price features (5), is_<type> (T), time of day/week (4),
 *   cat_affinity, top_cat_affinity, purchase_logodds, label_logodds,
 *   labels_resolved
 *
 * @thread pipeline thread only.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "intentd/mem.h"
#include "state_int.h"

#define TYPES ITD_EV__COUNT
#define SEC_SCALE 8.0f      /* log1p(seconds) / 8: one day ~ 1.4 */
#define PRICE_SCALE 4.0f    /* log1p(price) / 4: 1000 ~ 1.7 */
#define NEVER_S 7776000.0f  /* "never" reads as 90 days ago */
#define TWO_PI 6.283185307179586

/* glibc's log1pf costs ~15 ns; logf(1 + v) ~4 ns and its rounding error
 * (relative 1e-7 of 1 + v) is far below what a feature needs. */
static inline float flog1p(float v) { return logf(1.0f + v); }

/* Most window cells of most users are 0, and logf(1) is exactly 0. */
static inline float count_log1p(uint32_t n) {
        return n ? flog1p((float)n) : 0.0f;
}

static const char *const type_lower[TYPES] = {
    "view", "search", "add_to_cart", "remove_from_cart", "purchase",
    "favorite"};

/* Features after the per-window block, in order. */
enum {
        F_LIFE = 0,                   /* T */
        F_LIFE_EVENTS = F_LIFE + TYPES,
        F_PURCHASE_RATE,
        F_SECS_SINCE,                 /* T */
        F_NEVER = F_SECS_SINCE + TYPES, /* T */
        F_SECS_PREV = F_NEVER + TYPES,
        F_SECS_FIRST,
        F_SESS_EVENTS,
        F_SESS_SECS,
        F_SESS_CARTS,
        F_SESS_CART_VALUE,
        F_SESS_SEARCHES,
        F_SESS_ITEMS,
        F_SESS_CATS,
        F_PRICE_MEAN,
        F_PRICE_MAX,
        F_PRICE,
        F_HAS_PRICE,
        F_PRICE_VS_MEAN,
        F_IS,                         /* T */
        F_HOUR_SIN = F_IS + TYPES,
        F_HOUR_COS,
        F_DOW_SIN,
        F_DOW_COS,
        F_CAT_AFF,
        F_TOP_CAT_AFF,
        F_PURCHASE_LOGODDS,
        F_LABEL_LOGODDS,
        F_LABELS,
        F__COUNT
};

static const char *const fixed_names[F__COUNT] = {
    [F_LIFE_EVENTS] = "life_events",
    [F_PURCHASE_RATE] = "purchase_rate",
    [F_SECS_PREV] = "secs_since_prev_event",
    [F_SECS_FIRST] = "secs_since_first",
    [F_SESS_EVENTS] = "sess_events",
    [F_SESS_SECS] = "sess_secs",
    [F_SESS_CARTS] = "sess_carts",
    [F_SESS_CART_VALUE] = "sess_cart_value",
    [F_SESS_SEARCHES] = "sess_searches",
    [F_SESS_ITEMS] = "sess_distinct_items",
    [F_SESS_CATS] = "sess_distinct_cats",
    [F_PRICE_MEAN] = "view_price_mean",
    [F_PRICE_MAX] = "view_price_max",
    [F_PRICE] = "price",
    [F_HAS_PRICE] = "has_price",
    [F_PRICE_VS_MEAN] = "price_vs_mean",
    [F_HOUR_SIN] = "hour_sin",
    [F_HOUR_COS] = "hour_cos",
    [F_DOW_SIN] = "dow_sin",
    [F_DOW_COS] = "dow_cos",
    [F_CAT_AFF] = "cat_affinity",
    [F_TOP_CAT_AFF] = "top_cat_affinity",
    [F_PURCHASE_LOGODDS] = "purchase_logodds",
    [F_LABEL_LOGODDS] = "label_logodds",
    [F_LABELS] = "labels_resolved",
};

size_t itd_features_dim(const itd_state_conf_t *conf) {
        return conf->n_windows * TYPES + F__COUNT;
}

const char *itd_features_name(const itd_state_conf_t *conf, size_t i,
                              char *buf, size_t cap) {
        size_t nw = conf->n_windows * TYPES;
        char label[32];
        if (cap)
                buf[0] = '\0';
        if (i < nw) {
                snprintf(buf, cap, "count_%s_%s",
                         itd_state_window_label(conf, i / TYPES, label,
                                                sizeof(label)),
                         type_lower[i % TYPES]);
                return buf;
        }
        i -= nw;
        if (i >= F__COUNT)
                return NULL;
        if (i < F_LIFE + TYPES)
                snprintf(buf, cap, "life_%s", type_lower[i - F_LIFE]);
        else if (i >= F_SECS_SINCE && i < F_SECS_SINCE + TYPES)
                snprintf(buf, cap, "secs_since_%s",
                         type_lower[i - F_SECS_SINCE]);
        else if (i >= F_NEVER && i < F_NEVER + TYPES)
                snprintf(buf, cap, "never_%s", type_lower[i - F_NEVER]);
        else if (i >= F_IS && i < F_IS + TYPES)
                snprintf(buf, cap, "is_%s", type_lower[i - F_IS]);
        else
                snprintf(buf, cap, "%s", fixed_names[i]);
        return buf;
}

int itd_features_lifetime(const itd_state_conf_t *conf, size_t i) {
        size_t nw = conf->n_windows * TYPES;
        if (i < nw || i - nw >= F__COUNT)
                return 0;
        i -= nw;
        return i < F_LIFE + TYPES || i == F_LIFE_EVENTS ||
               i == F_PURCHASE_RATE || (i >= F_NEVER && i < F_NEVER + TYPES) ||
               i == F_SECS_FIRST || i == F_PRICE_MAX ||
               i == F_PURCHASE_LOGODDS || i == F_LABEL_LOGODDS ||
               i == F_LABELS;
}

/* Linear counting on 32 bits: n ~ -m ln(zeros / m); saturates at ~111. */
static float sketch_estimate(uint32_t sk) {
        int zeros = 32 - __builtin_popcount(sk);
        if (zeros == 0)
                zeros = 1; /* saturated: report m ln m */
        return -32.0f * logf((float)zeros / 32.0f);
}

static float log_secs(double s) {
        if (s < 0)
                s = 0;
        return flog1p((float)s) / SEC_SCALE;
}

static float log_price(float p) { return flog1p(p > 0 ? p : 0) / PRICE_SCALE; }

/*
 * The user's propensity to buy, two ways, each a Beta posterior mean: the
 * user's own share, shrunk towards the partition's by a prior worth PRIOR_N
 * observations, as log-odds relative to the partition's share (0 for a
 * user never seen, > 0 for one who buys more than most). A user's events
 * and labels come in bursts (every event of the half hour before a
 * purchase is a positive), so n observations are worth far fewer
 * independent ones and the prior must outweigh a short history.
 */
#define PURCHASE_PRIOR_N 30.0 /* events */
#define LABEL_PRIOR_N 50.0    /* resolved predictions */
/* Neither is sharp: with the model's defaults, label priors of 20 and 100
 * and purchase priors of 10 and 100 move the progressive AUC on the 114
 * Taobao tail users by at most 0.004, on the simulator by at most 0.001
 * (docs/MODEL.md). */

static double logit(double p) { return log(p / (1.0 - p)); }

/* pos of n against the partition's pos0 of n0; Laplace's rule for the
 * partition, so that its first counts cannot make the prior 0 or 1 */
static float rel_logodds(double pos, double n, double pos0, double n0,
                         double prior_n) {
        double p0 = (pos0 + 1.0) / (n0 + 2.0);
        double pu = (pos + prior_n * p0) / (n + prior_n);
        return (float)(logit(pu) - logit(p0));
}

void itd_features_extract(const itd_state_t *st, const itd_user_t *u,
                          const itd_prev_t *prev, const itd_event_t *ev,
                          float *x, uint32_t *ids, itd_topcats_t *top) {
        size_t W = st->conf.n_windows;
        uint32_t counts[ITD_WINDOWS_MAX * TYPES];
        itd_user_counts(st, u, ev->ts_ms, counts);
        for (size_t i = 0; i < W * TYPES; i++)
                x[i] = count_log1p(counts[i]);
        float *f = x + W * TYPES;

        double events = 0;
        for (int t = 0; t < TYPES; t++) {
                f[F_LIFE + t] = count_log1p(u->life[t]);
                events += u->life[t];
        }
        f[F_LIFE_EVENTS] = flog1p((float)events);
        f[F_PURCHASE_RATE] =
            (float)((u->life[ITD_EV_PURCHASE] + 0.5) / (events + 10.0));

        /* recency from the state before this event: the current type's own
         * gap is informative, "0 s since myself" would not be */
        double now_s = (double)(ev->ts_ms - st->epoch_ms) / 1000.0;
        for (int t = 0; t < TYPES; t++) {
                int32_t ls = prev->last_sec[t];
                f[F_SECS_SINCE + t] = ls == ITD_NEVER
                                          ? log_secs(NEVER_S)
                                          : log_secs(now_s - (double)ls);
                f[F_NEVER + t] = ls == ITD_NEVER ? 1.0f : 0.0f;
        }
        f[F_SECS_PREV] = prev->is_new ? log_secs(NEVER_S)
                                      : log_secs((double)(ev->ts_ms -
                                                          prev->last_ts) /
                                                 1000.0);
        f[F_SECS_FIRST] = log_secs(now_s - (double)u->first_sec);

        f[F_SESS_EVENTS] = flog1p((float)u->sess_events);
        f[F_SESS_SECS] = log_secs(now_s - (double)u->sess_start_sec);
        f[F_SESS_CARTS] = count_log1p(u->sess_carts);
        f[F_SESS_CART_VALUE] = log_price(u->sess_cart_value);
        f[F_SESS_SEARCHES] = count_log1p(u->sess_searches);
        f[F_SESS_ITEMS] = flog1p(sketch_estimate(u->sess_item_sk));
        f[F_SESS_CATS] = flog1p(sketch_estimate(u->sess_cat_sk));

        int has_price = isfinite(ev->price) && ev->price >= 0.0;
        f[F_PRICE_MEAN] = log_price(u->price_mean);
        f[F_PRICE_MAX] = log_price(u->price_max);
        f[F_PRICE] = has_price ? log_price((float)ev->price) : 0.0f;
        f[F_HAS_PRICE] = has_price ? 1.0f : 0.0f;
        f[F_PRICE_VS_MEAN] = has_price && u->priced_views
                                 ? f[F_PRICE] - f[F_PRICE_MEAN]
                                 : 0.0f;

        for (int t = 0; t < TYPES; t++)
                f[F_IS + t] = (int)ev->type == t ? 1.0f : 0.0f;

        /* time of day and week, UTC; 1970-01-01 was a Thursday */
        int64_t day_ms = 86400000;
        int64_t ms_of_day = ev->ts_ms % day_ms;
        int64_t day = ev->ts_ms / day_ms;
        if (ms_of_day < 0) {
                ms_of_day += day_ms;
                day--;
        }
        int64_t dow = ((day + 3) % 7 + 7) % 7; /* Monday = 0 */
        double hour_angle = TWO_PI * (double)ms_of_day / (double)day_ms;
        double dow_angle = TWO_PI * (double)dow / 7.0;
        f[F_HOUR_SIN] = (float)sin(hour_angle);
        f[F_HOUR_COS] = (float)cos(hour_angle);
        f[F_DOW_SIN] = (float)sin(dow_angle);
        f[F_DOW_COS] = (float)cos(dow_angle);

        /* affinity scores decayed to this event's time */
        double dt = now_s - (double)u->aff_sec;
        float decay = dt > 0 ? (float)exp2(-dt / ITD_AFF_HALF_LIFE_S) : 1.0f;
        float cat_aff = 0.0f, top_aff = 0.0f;
        int order[ITD_AFF_SLOTS], n = 0;
        for (int i = 0; i < ITD_AFF_SLOTS; i++) {
                if (!u->aff_cat[i])
                        continue;
                float s = u->aff_score[i] * decay;
                if (u->aff_cat[i] == prev->cat)
                        cat_aff = s;
                if (s > top_aff)
                        top_aff = s;
                /* insertion sort, strongest first */
                int j = n++;
                while (j > 0 && u->aff_score[order[j - 1]] < u->aff_score[i]) {
                        order[j] = order[j - 1];
                        j--;
                }
                order[j] = i;
        }
        f[F_CAT_AFF] = flog1p(cat_aff);
        f[F_TOP_CAT_AFF] = flog1p(top_aff);
        f[F_PURCHASE_LOGODDS] =
            rel_logodds(u->life[ITD_EV_PURCHASE], events, st->ev_pos,
                        st->ev_n, PURCHASE_PRIOR_N);
        f[F_LABEL_LOGODDS] = rel_logodds(u->lab_pos, u->lab_n, st->lab_pos,
                                         st->lab_n, LABEL_PRIOR_N);
        f[F_LABELS] = flog1p(u->lab_n);
        if (top) {
                top->n = 0;
                for (int k = 0; k < n && k < ITD_TOPCAT_MAX; k++) {
                        int i = order[k];
                        itd_strlcpy(top->name[k],
                                    itd_catdict_name(&st->cats,
                                                     u->aff_cat[i]),
                                    sizeof top->name[k]);
                        top->score[k] = u->aff_score[i] * decay;
                        top->n++;
                }
        }

        /* sparse ids: [categories | items | query tokens], newest first */
        uint32_t *cat_ids = ids;
        uint32_t *item_ids = ids + ITD_SPARSE_SLOTS;
        uint32_t *tok_ids = ids + 2 * ITD_SPARSE_SLOTS;
        for (int i = 0; i < ITD_SPARSE_SLOTS; i++) {
                cat_ids[i] = u->sp_cat[i] ? st->cats.hash[u->sp_cat[i]]
                                          : ITD_SPARSE_NONE;
                item_ids[i] = u->sp_item[i];
                tok_ids[i] = u->sp_tok[i];
        }
        /* a category the full dictionary could not intern still shows as
         * this event's own id */
        if (ev->category[0] && !prev->cat)
                cat_ids[0] = itd_sparse_hash(ev->category, ITD_SEED_CAT);
}
