/*
 * risk.c - the per-event risk score (risk.h; docs/FEATURES.md, "Risk
 * score", gives the definition and the real-data measurements behind every
 * constant below).
 *
 * The window: the user's ring of recent events (state_int.h), sorted by
 * time, cut to the trailing run whose gaps are within the session gap
 * (the current session), events at one millisecond merged into one
 * action. At most ITD_RING events, so everything here is a few dozen
 * comparisons.
 *
 * The population of paces is a histogram of x = ln(actions per minute)
 * with RISK_BINS bins of RISK_BIN_W from RISK_X_LO (values outside land in
 * the edge bins). Every session adds its x once, when it reaches
 * RISK_ACTIONS actions with the whole session in the ring, unless it
 * already scores RISK_LEARN_MAX or more (a trimmed estimate: what is
 * already judged bot-like does not redefine normal); all weights decay by
 * RISK_DECAY per session added, so the median and spread follow the
 * traffic of roughly the last 1 / RISK_DECAY sessions, and a drift of the
 * shoppers' pace is followed as long as it moves in steps the trimming
 * admits. A bot that no signal flags yet adds one value per session like
 * anyone else: while such sessions are a minority, the median and
 * quartiles move little.
 *
 * @thread one pipeline thread; no locks.
 */
#include "intentd/risk.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "intentd/mem.h"
#include "snap_int.h"
#include "state_int.h"

#define RISK_BINS 64
#define RISK_X_LO (-6.0)  /* ln(actions/min): one per 6.7 hours */
#define RISK_BIN_W 0.2    /* up to ln 900/min at the top */
#define RISK_DECAY (1.0 / 2048.0)
/* The prior: real shoppers' paces over the first 7 actions of a session
 * (Taobao, 423 sessions of 114 users over nine days: median 0.58
 * actions/min, quartiles -1.06 and -0.03 in ln, so a robust spread of
 * 0.77), worth 32 sessions, so a young partition has a reference and its
 * own traffic soon rules. */
#define RISK_PRIOR_MEDIAN (-0.54)
#define RISK_PRIOR_SPREAD 0.77
#define RISK_PRIOR_WEIGHT 32.0
#define RISK_SPREAD_MIN 0.1

/* Sub-score ramps: 0 at the first value, 1 at the second. */
#define RISK_ACTIONS 7       /* pace and regularity need 6 gaps */
#define RISK_V_Z0 3.0        /* robust z of the pace */
#define RISK_V_Z1 6.0
#define RISK_LEARN_MAX 0.5   /* sessions scoring this much do not join
                              * the population */
#define RISK_R_SIGMA 1.0     /* sd of a shopper's ln(gap) within a window */
#define RISK_R_SKIP 0.6      /* sample sd above this: p far above 1e-3 */
#define RISK_R_LP0 3.0       /* -log10 of the chance a shopper is as */
#define RISK_R_LP1 6.0       /* regular */
#define RISK_B_CATS 8.0      /* breadth needs 8 distinct categories */
#define RISK_B_CPM0 4.0      /* distinct categories per session minute */
#define RISK_B_CPM1 12.0
#define RISK_C_INSTANT_MS 2000 /* view -> cart / purchase */
#define RISK_C_BUY 0.5       /* evidence of one instant purchase */
#define RISK_C_CART 0.25     /* of one instant add-to-cart */
#define RISK_C_BURST_MS 60000
#define RISK_C_BURST0 2.0    /* add-to-carts within a minute */
#define RISK_C_BURST1 6.0

#define RSNAP_MAGIC "ITDRISK1" /* version 1 */
#define RSNAP_VERSION 2 /* 2: the one framing (sections, CRC32C) */

struct itd_risk_s {
        double h[RISK_BINS]; /* decayed session counts per bin */
        double weight;       /* sum of h */
        double median, spread; /* of x, kept current after each change */
        uint64_t sessions;   /* sessions added, ever */
};

static const char *const part_names[ITD_RISK__COUNT] = {
    "velocity", "regularity", "breadth", "checkout"};

const char *itd_risk_part_name(itd_risk_part_t part) {
        return (int)part >= 0 && part < ITD_RISK__COUNT ? part_names[part]
                                                        : "?";
}

static double ramp(double v, double v0, double v1) {
        double r = (v - v0) / (v1 - v0);
        return r <= 0.0 ? 0.0 : r >= 1.0 ? 1.0 : r;
}

/* ------------------------------------------------------- population */

/* x at cumulative share q of the histogram, linear within a bin. */
static double quantile(const itd_risk_t *rk, double q) {
        double target = q * rk->weight, cum = 0.0;
        for (int b = 0; b < RISK_BINS; b++) {
                if (rk->h[b] > 0.0 && cum + rk->h[b] >= target)
                        return RISK_X_LO +
                               (b + (target - cum) / rk->h[b]) * RISK_BIN_W;
                cum += rk->h[b];
        }
        return RISK_X_LO + RISK_BINS * RISK_BIN_W;
}

/* Weight, median and spread from the bins alone, so a restored population
 * is the same to the last bit. */
static void summarise(itd_risk_t *rk) {
        rk->weight = 0.0;
        for (int b = 0; b < RISK_BINS; b++)
                rk->weight += rk->h[b];
        rk->median = quantile(rk, 0.5);
        rk->spread = (quantile(rk, 0.75) - quantile(rk, 0.25)) / 1.349;
        if (rk->spread < RISK_SPREAD_MIN)
                rk->spread = RISK_SPREAD_MIN;
}

static double normal_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

itd_risk_t *itd_risk_new(void) {
        itd_risk_t *rk = itd_xcalloc(1, sizeof *rk);
        for (int b = 0; b < RISK_BINS; b++) {
                double lo = RISK_X_LO + b * RISK_BIN_W;
                double p_lo = b ? normal_cdf((lo - RISK_PRIOR_MEDIAN) /
                                             RISK_PRIOR_SPREAD)
                                : 0.0;
                double p_hi = b + 1 < RISK_BINS
                                  ? normal_cdf((lo + RISK_BIN_W -
                                                RISK_PRIOR_MEDIAN) /
                                               RISK_PRIOR_SPREAD)
                                  : 1.0;
                rk->h[b] = RISK_PRIOR_WEIGHT * (p_hi - p_lo);
        }
        summarise(rk);
        return rk;
}

void itd_risk_destroy(itd_risk_t *rk) { free(rk); }

static void learn(itd_risk_t *rk, double x) {
        int b = (int)floor((x - RISK_X_LO) / RISK_BIN_W);
        if (b < 0)
                b = 0;
        if (b >= RISK_BINS)
                b = RISK_BINS - 1;
        for (int i = 0; i < RISK_BINS; i++)
                rk->h[i] *= 1.0 - RISK_DECAY;
        rk->h[b] += 1.0;
        rk->sessions++;
        summarise(rk);
}

void itd_risk_population(const itd_risk_t *rk, double *median,
                         double *spread, double *weight) {
        *median = rk->median;
        *spread = rk->spread;
        *weight = rk->weight;
}

/* ----------------------------------------------------------- scoring */

/*
 * log10 P(chi2 with dof degrees of freedom <= x), by the series of the
 * regularized lower incomplete gamma function P(a, y), a = dof/2,
 * y = x/2 (Abramowitz and Stegun 6.5.29):
 *   P(a, y) = y^a e^-y / Gamma(a + 1) * sum_n y^n / ((a+1)...(a+n)).
 * Only called with small x (x <= dof * RISK_R_SKIP^2), where the terms
 * shrink fast.
 */
static double chi2_log10_cdf(int dof, double x) {
        /* ln Gamma(dof/2 + 1) for dof 0..ITD_RING */
        static const double ln_gamma1[ITD_RING + 1] = {
            0.0,                -0.1207822376352454, 0.0,
            0.2846828704729196, 0.6931471805599450,  1.2009736023470738,
            1.7917594692280554, 2.4537365708424430,  3.1780538303479450,
            3.9578139676187165, 4.7874917427820470,  5.6625620598571390,
            6.5792512120101020};
        _Static_assert(ITD_RING == 12, "ln_gamma1 covers dof 0..12");
        double a = dof / 2.0, y = x / 2.0;
        if (y <= 0.0)
                return -HUGE_VAL;
        /* 1 <= sum <= e^y: the leading term bounds the answer within y
         * (natural log); the sum matters only where that straddles the
         * ramp's start */
        double lead = a * log(y) - ln_gamma1[dof];
        if (lead - y >= -RISK_R_LP0 * M_LN10)
                return (lead - y) / M_LN10;
        double term = 1.0, sum = 1.0;
        for (int n = 1; n < 100 && term > 1e-6 * sum; n++) {
                term *= y / (a + n);
                sum += term;
        }
        return (lead - y + log(sum)) / M_LN10;
}

/* The session's events from the ring, oldest first: ms before the user's
 * newest event, and type. */
typedef struct {
        int n;
        uint32_t off[ITD_RING];
        unsigned type[ITD_RING];
} window_t;

static void window_read(const itd_state_t *st, const itd_user_t *u,
                        window_t *w) {
        int n = 0;
        for (int i = 0; i < ITD_RING; i++) {
                unsigned type = (unsigned)(u->ring_type >> (4 * i)) & 0xFu;
                if (type == ITD_RING_EMPTY)
                        continue;
                /* insertion sort, oldest (largest offset) first */
                int j = n++;
                while (j > 0 && w->off[j - 1] < u->ring_off[i]) {
                        w->off[j] = w->off[j - 1];
                        w->type[j] = w->type[j - 1];
                        j--;
                }
                w->off[j] = u->ring_off[i];
                w->type[j] = type;
        }
        /* keep the trailing run of gaps within the session gap */
        int first = n - 1;
        while (first > 0 && (int64_t)w->off[first - 1] - w->off[first] <=
                                st->conf.session_gap_ms)
                first--;
        if (first > 0) {
                n -= first;
                memmove(w->off, w->off + first, (size_t)n * sizeof *w->off);
                memmove(w->type, w->type + first, (size_t)n * sizeof *w->type);
        }
        w->n = n < 0 ? 0 : n;
}

/* Linear-counting estimate of the distinct values in a 32-bit sketch;
 * never below the bits set, so fewer bits than min cannot reach min. */
static double sketch_count(uint32_t sk, double min) {
        int bits = __builtin_popcount(sk);
        if (bits < min)
                return bits;
        return -32.0 * log((bits < 32 ? 32 - bits : 1) / 32.0);
}

float itd_risk_score(itd_risk_t *rk, const itd_state_t *st,
                     const itd_event_t *ev, int applied, float *parts) {
        double s[ITD_RISK__COUNT] = {0};
        const itd_user_t *u = applied ? itd_state_user_last(st, ev->user_id)
                                      : itd_state_user_get(st, ev->user_id);
        window_t w;
        w.n = 0;
        if (u)
                window_read(st, u, &w);

        /* actions: distinct times, oldest first (ms before the newest) */
        uint32_t act[ITD_RING];
        int k = 0;
        for (int i = 0; i < w.n; i++)
                if (k == 0 || w.off[i] != act[k - 1])
                        act[k++] = w.off[i];

        double x = 0.0; /* ln(actions per minute) */
        if (k >= RISK_ACTIONS) {
                x = log((k - 1) * 60000.0 / ((double)act[0] - act[k - 1]));
                s[ITD_RISK_VELOCITY] = ramp((x - rk->median) / rk->spread,
                                            RISK_V_Z0, RISK_V_Z1);
        }
        if (k >= RISK_ACTIONS) {
                /* Shoppers' gaps are roughly log-normal; how likely is a
                 * shopper's window of k - 1 gaps to vary this little? */
                double lg[ITD_RING], mean = 0.0, ss = 0.0;
                for (int i = 1; i < k; i++) {
                        /* logf: ~4 ns against ~20, and 1e-7 relative
                         * error is far below what a spread needs */
                        lg[i - 1] = logf((float)(act[i - 1] - act[i]));
                        mean += lg[i - 1];
                }
                mean /= k - 1;
                for (int i = 0; i < k - 1; i++)
                        ss += (lg[i] - mean) * (lg[i] - mean);
                int dof = k - 2;
                double var = ss / dof;
                if (var < RISK_R_SKIP * RISK_R_SKIP)
                        s[ITD_RISK_REGULARITY] = ramp(
                            -chi2_log10_cdf(dof, dof * var / (RISK_R_SIGMA *
                                                              RISK_R_SIGMA)),
                            RISK_R_LP0, RISK_R_LP1);
        }
        if (u) {
                double cats = sketch_count(u->sess_cat_sk, RISK_B_CATS);
                if (cats >= RISK_B_CATS) {
                        double min = (itd_state_sec(st, u->last_ts) -
                                      u->sess_start_sec) / 60.0;
                        s[ITD_RISK_BREADTH] =
                            ramp(cats / (min < 1.0 ? 1.0 : min), RISK_B_CPM0,
                                 RISK_B_CPM1);
                }
        }
        /* checkout: a cart or purchase right after a view, cart bursts */
        double keep = 1.0; /* 1 - noisy-or of the instant conversions */
        int carts = 0;
        for (int i = 0; i < w.n; i++) {
                unsigned t = w.type[i];
                if (t != ITD_EV_ADD_TO_CART && t != ITD_EV_PURCHASE)
                        continue;
                if (t == ITD_EV_ADD_TO_CART && w.off[i] <= RISK_C_BURST_MS)
                        carts++;
                /* the events of the instant before this one */
                int j = i - 1;
                while (j >= 0 && w.off[j] == w.off[i])
                        j--;
                if (j < 0 || w.off[j] - w.off[i] > RISK_C_INSTANT_MS)
                        continue;
                int viewed = 0;
                for (uint32_t at = w.off[j]; j >= 0 && w.off[j] == at; j--)
                        viewed |= w.type[j] == ITD_EV_VIEW;
                if (viewed)
                        keep *= t == ITD_EV_PURCHASE ? 1.0 - RISK_C_BUY
                                                     : 1.0 - RISK_C_CART;
        }
        keep *= 1.0 - ramp(carts, RISK_C_BURST0, RISK_C_BURST1);
        s[ITD_RISK_CHECKOUT] = 1.0 - keep;

        double none = 1.0;
        for (int i = 0; i < ITD_RISK__COUNT; i++) {
                none *= 1.0 - s[i];
                if (parts)
                        parts[i] = (float)s[i];
        }
        /* The session's seventh action, the whole session in view and
         * this event its only newest one: the session joins the
         * population, once, unless it already scores RISK_LEARN_MAX. */
        if (applied && k == RISK_ACTIONS && w.n == (int)u->sess_events &&
            ev->ts_ms == u->last_ts && w.off[w.n - 1] == 0 &&
            w.off[w.n - 2] != 0 &&
            none > 1.0 - RISK_LEARN_MAX)
                learn(rk, x);
        return (float)(1.0 - none);
}

/* --------------------------------------------------------- snapshots */

enum { RH_BINS = 0, RH_LO, RH_WIDTH, RH_DECAY, RH_SESSIONS, RH__COUNT };

static const itd_snap_kind_t snap_kind_v1 = {"risk", ITD_FRAME_RISK, 1,
                                             RH__COUNT, RSNAP_MAGIC, NULL};
static const itd_snap_kind_t snap_kind = {"risk", ITD_FRAME_RISK,
                                          RSNAP_VERSION, RH__COUNT, NULL,
                                          &snap_kind_v1};

static void write_payload(itd_snap_t *s, const void *obj) {
        const itd_risk_t *rk = obj;
        itd_snap_section(s, "histogram", ITD_FRAME_F64, sizeof rk->h);
        itd_snap_write(s, rk->h, sizeof rk->h);
}

itd_err_t itd_risk_snapshot(const itd_risk_t *rk, FILE *out, char *errstr,
                            size_t errstr_size) {
        uint64_t v[RH__COUNT] = {
            [RH_BINS] = RISK_BINS,
            [RH_LO] = itd_snap_f64_bits(RISK_X_LO),
            [RH_WIDTH] = itd_snap_f64_bits(RISK_BIN_W),
            [RH_DECAY] = itd_snap_f64_bits(RISK_DECAY),
            [RH_SESSIONS] = rk->sessions,
        };
        return itd_snap_save(out, &snap_kind, v, write_payload, rk, errstr,
                             errstr_size);
}

itd_err_t itd_risk_restore(FILE *in, itd_risk_t **out, char *errstr,
                           size_t errstr_size) {
#define FAIL(cls, ...) ITD_SNAP_FAIL(&s, cls, __VA_ARGS__)
        itd_risk_t *rk = NULL;
        itd_snap_t s = {.f = in};
        *out = NULL;
        uint64_t v[RH__COUNT];
        if (itd_snap_header_read(&s, &snap_kind, v, errstr, errstr_size) != 0)
                goto fail;
        if (v[RH_BINS] != RISK_BINS || v[RH_LO] != itd_snap_f64_bits(RISK_X_LO) ||
            v[RH_WIDTH] != itd_snap_f64_bits(RISK_BIN_W) ||
            v[RH_DECAY] != itd_snap_f64_bits(RISK_DECAY))
                FAIL(ITD_ERR_INCOMPATIBLE,
                     "incompatible risk snapshot: histogram layout (%" PRIu64
                     " bins) differs from this build's (%d bins of %g from "
                     "%g, decay %g)",
                     v[RH_BINS], RISK_BINS, RISK_BIN_W, RISK_X_LO,
                     RISK_DECAY);
        rk = itd_xcalloc(1, sizeof *rk);
        if (s.payload_bytes != sizeof rk->h)
                FAIL(ITD_ERR_CORRUPT,
                     "corrupt risk snapshot: payload of %" PRIu64
                     " bytes where the header describes %zu",
                     s.payload_bytes, sizeof rk->h);
        const itd_snap_part_t hist =
            ITD_SNAP_PART(rk->h, sizeof rk->h, "the histogram", "histogram",
                          ITD_FRAME_F64);
        if (itd_snap_payload_read(&s, &hist, 1, errstr, errstr_size) != 0)
                goto fail;
        for (int b = 0; b < RISK_BINS; b++)
                if (!isfinite(rk->h[b]) || rk->h[b] < 0.0)
                        FAIL(ITD_ERR_CORRUPT,
                             "corrupt risk snapshot: bin %d holds %g", b,
                             rk->h[b]);
        rk->sessions = v[RH_SESSIONS];
        summarise(rk);
        if (!(rk->weight > 0.0) || !isfinite(rk->weight))
                FAIL(ITD_ERR_CORRUPT,
                     "corrupt risk snapshot: histogram weight %g",
                     rk->weight);
        *out = rk;
        return ITD_OK;
fail:
        itd_risk_destroy(rk);
        return s.err ? s.err : ITD_ERR_CONF;
#undef FAIL
}
