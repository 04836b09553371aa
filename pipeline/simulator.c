/*
 * simulator.c - a seeded shopper simulator (see simulator.h).
 *
 * The world: 1000 categories ("c<n>") of 500 items each ("i<n>"); an item's
 * category is its number / 500 and its price a log-normal draw hashed from
 * (seed, item), so the catalogue costs no memory. A user's traits (purchase
 * propensity, preferred price, favourite categories, search habit) hash from
 * (seed, user number) the same way.
 *
 * Time: session starts form a Poisson process over the whole population
 * (users * SESSIONS_PER_DAY per day) modulated by a daily cycle that peaks at
 * 20:00 UTC; the starting user is drawn Zipf-like, so some users come back
 * many times a day and most every day or two. Only open sessions are held,
 * in a min-heap by the time of their next event, so memory follows the
 * number of concurrent sessions, not the population.
 *
 * Intent: a session is, hidden, either browsing or a buying mission (more
 * likely for users of high propensity); each step it views, searches,
 * carts, removes, favourites or buys. The purchase hazard grows with carted
 * items, repeat views of the same item and searching, is much higher in a
 * mission, and rises for half an hour after a purchase. Only the traces
 * are visible, so intent is learnable but not given away. Measured (seed
 * 21, 5000 users x 2 days): P(purchase within 30 min) is ~9 % after a view,
 * ~28 % after a cart, ~37 % after a purchase (real data: 6 %, -, 13 %; the
 * simulator is a little easier than the real thing). The mix lands near
 * Taobao's (89 % views incl. ~3.4 % searches, 5.3 % carts, 2.7 %
 * favourites, 2.2 % purchases); test_simulator checks it.
 *
 * Every random draw comes from one xoshiro256** stream consumed in event
 * order (heap ties broken by session number), so the output is a function
 * of (users, days, seed, start_ms).
 *
 * Bots (bot_fraction > 0, sim_bots.c) draw from random streams of their
 * own, so the shoppers' stream is untouched by them; the two are merged
 * by event time, a shopper first on a tie. The shoppers' next event is
 * generated one ahead for that.
 */
#include "intentd/simulator.h"

#include "simulator_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "intentd/mem.h"

#define N_FAVOURITES 3
#define SESSIONS_PER_DAY 2.5   /* per user, on average */
#define ZIPF_S 0.4             /* skew of who starts a session */
#define CYCLE_AMPLITUDE 0.5    /* daily rate swings +-50 % */
#define CYCLE_PEAK_HOUR 20.0   /* UTC */
#define GAP_MEDIAN_S 65.0      /* between events of a session */
#define GAP_SIGMA 1.0          /* log-normal spread of the gap */
#define GAP_MAX_S 1800.0
#define MISSION_BUY 11.0     /* purchase hazard factor in a mission */
#define BROWSE_BUY 0.2
#define MISSION_CART 0.14     /* cart probability per step */
#define BROWSE_CART 0.05
#define REBUY_WINDOW_MS (30 * 60 * 1000)
#define BOT_FRACTION_MAX 0.5

typedef struct {
        uint64_t user;
        uint64_t seq;     /* session number: id and heap tie-break */
        int64_t next_ms;  /* time of this session's next event */
        /* traits, cached from the user's hash */
        double propensity;
        double search_habit;
        double log_price_pref;
        uint32_t fav[N_FAVOURITES];
        /* what happened so far in this session */
        uint32_t cat;
        uint64_t item;       /* current item, 0 = none yet */
        uint32_t item_views; /* views of the current item */
        uint32_t n_events;
        uint32_t n_cart;
        uint64_t cart[CART_MAX];
        int searched;
        int mission; /* hidden intent: came to buy, not to browse */
        int64_t last_buy_ms; /* INT64_MIN if none in this session */
} session_t;

struct itd_sim_s {
        itd_sim_conf_t conf;
        int64_t end_ms;
        uint64_t rng[4];
        double start_rate_max; /* session starts per ms at the cycle's peak */
        int64_t next_start_ms;
        uint64_t perm_mult, perm_add; /* rank -> user number bijection */
        double zipf_top;               /* (N+1)^(1-s) - 1 */
        uint64_t n_sessions, n_events;
        /* min-heap of open sessions by (next_ms, seq) */
        session_t **heap;
        size_t heap_n, heap_cap;
        session_t *free_list; /* recycled sessions, linked through .item */
        /* open-addressing set of users with an open session */
        uint64_t *open;
        size_t open_cap, open_n;
        /* the shoppers' next event, generated ahead to merge with bots */
        itd_event_t ahead;
        int have_ahead, shoppers_done;
        itd_sim_bots_t *bots; /* NULL without bots */
};

/* ------------------------------------------------------------------ */
/* Randomness: a stream for event order, hashes for traits.           */

static double uniform(itd_sim_t *sim) { return to_unit(rng_next(sim->rng)); }

static double normal(itd_sim_t *sim) {
        double u1 = uniform(sim);
        return normal_from(u1, uniform(sim));
}

/* An item of cat, skewed to its bestsellers. */
static uint64_t pick_item(itd_sim_t *sim, uint32_t cat) {
        uint64_t k = (uint64_t)(ITEMS_PER_CATEGORY * pow(uniform(sim), 2.5));
        if (k >= ITEMS_PER_CATEGORY)
                k = ITEMS_PER_CATEGORY - 1;
        return (uint64_t)cat * ITEMS_PER_CATEGORY + k + 1;
}

/* ------------------------------------------------------------------ */
/* The heap of open sessions and the set of users in them.            */

static int before(const session_t *a, const session_t *b) {
        return a->next_ms < b->next_ms ||
               (a->next_ms == b->next_ms && a->seq < b->seq);
}

static void heap_push(itd_sim_t *sim, session_t *s) {
        if (sim->heap_n == sim->heap_cap) {
                sim->heap_cap = sim->heap_cap ? 2 * sim->heap_cap : 256;
                sim->heap = itd_xrealloc(sim->heap,
                                         sim->heap_cap * sizeof *sim->heap);
        }
        size_t i = sim->heap_n++;
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (!before(s, sim->heap[parent]))
                        break;
                sim->heap[i] = sim->heap[parent];
                i = parent;
        }
        sim->heap[i] = s;
}

static session_t *heap_pop(itd_sim_t *sim) {
        session_t *top = sim->heap[0];
        session_t *last = sim->heap[--sim->heap_n];
        size_t i = 0, n = sim->heap_n;
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= n)
                        break;
                if (c + 1 < n && before(sim->heap[c + 1], sim->heap[c]))
                        c++;
                if (!before(sim->heap[c], last))
                        break;
                sim->heap[i] = sim->heap[c];
                i = c;
        }
        if (n)
                sim->heap[i] = last;
        return top;
}

static size_t open_slot(const itd_sim_t *sim, uint64_t user) {
        uint64_t x = user;
        return (size_t)(splitmix64(&x) & (sim->open_cap - 1));
}

static int open_has(const itd_sim_t *sim, uint64_t user) {
        size_t mask = sim->open_cap - 1;
        for (size_t i = open_slot(sim, user);; i = (i + 1) & mask) {
                if (sim->open[i] == user)
                        return 1;
                if (sim->open[i] == 0)
                        return 0;
        }
}

static void open_insert_raw(uint64_t *tab, size_t cap, uint64_t user) {
        uint64_t x = user;
        size_t i = (size_t)(splitmix64(&x) & (cap - 1));
        while (tab[i])
                i = (i + 1) & (cap - 1);
        tab[i] = user;
}

static void open_add(itd_sim_t *sim, uint64_t user) {
        if (2 * (sim->open_n + 1) > sim->open_cap) {
                size_t cap = sim->open_cap * 2;
                uint64_t *tab = itd_xcalloc(cap, sizeof *tab);
                for (size_t i = 0; i < sim->open_cap; i++)
                        if (sim->open[i])
                                open_insert_raw(tab, cap, sim->open[i]);
                free(sim->open);
                sim->open = tab;
                sim->open_cap = cap;
        }
        open_insert_raw(sim->open, sim->open_cap, user);
        sim->open_n++;
}

/* Linear-probing delete by backward shift (no tombstones). */
static void open_remove(itd_sim_t *sim, uint64_t user) {
        size_t mask = sim->open_cap - 1;
        size_t i = open_slot(sim, user);
        while (sim->open[i] != user)
                i = (i + 1) & mask;
        sim->open[i] = 0;
        sim->open_n--;
        for (size_t j = (i + 1) & mask; sim->open[j]; j = (j + 1) & mask) {
                size_t home = open_slot(sim, sim->open[j]);
                /* Move j back to i if its home is not within (i, j]. */
                if (((j - home) & mask) >= ((j - i) & mask)) {
                        sim->open[i] = sim->open[j];
                        sim->open[j] = 0;
                        i = j;
                }
        }
}

/* ------------------------------------------------------------------ */
/* Session starts.                                                    */

static double cycle(int64_t t_ms) {
        double hour = fmod((double)t_ms / 3600000.0, 24.0);
        if (hour < 0)
                hour += 24.0;
        return 1.0 + CYCLE_AMPLITUDE *
                         cos(2.0 * M_PI * (hour - CYCLE_PEAK_HOUR) / 24.0);
}

/* Next start by thinning a Poisson process at the peak rate. */
static void advance_start(itd_sim_t *sim) {
        double t = (double)sim->next_start_ms;
        for (;;) {
                double u = uniform(sim);
                t += -log(1.0 - u) / sim->start_rate_max;
                if (t >= (double)sim->end_ms) {
                        sim->next_start_ms = sim->end_ms;
                        return;
                }
                if (uniform(sim) * (1.0 + CYCLE_AMPLITUDE) <=
                    cycle((int64_t)t))
                        break;
        }
        sim->next_start_ms = (int64_t)t;
}

/* Zipf-like rank by inverting the continuous CDF of r^-s on [1, N+1). */
static uint64_t draw_user(itd_sim_t *sim) {
        double u = uniform(sim);
        double r = pow(1.0 + u * sim->zipf_top, 1.0 / (1.0 - ZIPF_S));
        uint64_t rank = (uint64_t)r;
        if (rank < 1)
                rank = 1;
        if (rank > sim->conf.users)
                rank = sim->conf.users;
        /* Scatter ranks over user numbers so "u1" is not the busiest. */
        return ((rank - 1) * sim->perm_mult + sim->perm_add) %
                   sim->conf.users + 1;
}

static void load_traits(itd_sim_t *sim, session_t *s) {
        uint64_t seed = sim->conf.seed;
        /* Log-normal with mean 1: most users rarely buy, a few often. */
        s->propensity = exp(1.0 * hash_normal(seed, 10, s->user) - 0.5);
        s->search_habit = 0.08 * pow(hash_unit(seed, 11, s->user), 2.0);
        s->log_price_pref = log(35.0) + 0.6 * hash_normal(seed, 12, s->user);
        for (int i = 0; i < N_FAVOURITES; i++)
                s->fav[i] = popular_category(
                    hash_unit(seed, 13 + (uint64_t)i, s->user));
}

static session_t *session_new(itd_sim_t *sim, uint64_t user, int64_t t_ms) {
        session_t *s = sim->free_list;
        if (s)
                sim->free_list = (session_t *)(uintptr_t)s->item;
        else
                s = itd_xmalloc(sizeof *s);
        memset(s, 0, sizeof *s);
        s->user = user;
        s->seq = ++sim->n_sessions;
        s->next_ms = t_ms;
        s->last_buy_ms = INT64_MIN;
        load_traits(sim, s);
        /*
         * Most visits are browsing; a few are buying missions. The mission
         * is never emitted, only its traces (carts, repeat views), which is
         * what makes intent learnable and keeps purchases clustered in few
         * sessions as in real data.
         */
        s->mission = uniform(sim) < fmin(0.7, 0.17 * s->propensity);
        s->cat = uniform(sim) < 0.7
                     ? s->fav[(size_t)(uniform(sim) * N_FAVOURITES)]
                     : popular_category(uniform(sim));
        return s;
}

static void session_free(itd_sim_t *sim, session_t *s) {
        open_remove(sim, s->user);
        s->item = (uint64_t)(uintptr_t)sim->free_list;
        sim->free_list = s;
}

/* ------------------------------------------------------------------ */
/* One step of a session.                                             */

/* Of two candidate items, the one nearer the user's price level. */
static uint64_t pick_item_for(itd_sim_t *sim, session_t *s) {
        uint64_t a = pick_item(sim, s->cat), b = pick_item(sim, s->cat);
        uint64_t seed = sim->conf.seed;
        double da = fabs(log(item_price(seed, a)) - s->log_price_pref);
        double db = fabs(log(item_price(seed, b)) - s->log_price_pref);
        return da <= db ? a : b;
}

static double buy_hazard(const itd_sim_t *sim, const session_t *s,
                         int64_t now_ms) {
        double h;
        if (s->n_cart)
                h = 0.075 * sqrt((double)s->n_cart);
        else if (s->item && s->item_views >= 2)
                h = 0.02;
        else if (s->item)
                h = 0.004;
        else
                return 0.0;
        if (s->searched)
                h *= 1.3;
        if (s->last_buy_ms != INT64_MIN &&
            now_ms - s->last_buy_ms <= REBUY_WINDOW_MS)
                h *= 1.2;
        if (s->item) {
                double d = fabs(log(item_price(sim->conf.seed, s->item)) -
                                s->log_price_pref);
                h *= exp(-0.3 * d);
        }
        h *= s->mission ? MISSION_BUY : BROWSE_BUY;
        h *= sqrt(s->propensity);
        return h > 0.6 ? 0.6 : h;
}

static int in_cart(const session_t *s, uint64_t item) {
        for (uint32_t i = 0; i < s->n_cart; i++)
                if (s->cart[i] == item)
                        return 1;
        return 0;
}

static void fill_item(const itd_sim_t *sim, itd_event_t *ev, uint64_t item) {
        sim_fill_item(sim->conf.seed, ev, item);
}

static void do_view(itd_sim_t *sim, session_t *s, itd_event_t *ev) {
        ev->type = ITD_EV_VIEW;
        if (s->item && uniform(sim) < (s->mission ? 0.35 : 0.18)) {
                s->item_views++;
        } else {
                if (uniform(sim) < 0.12)
                        s->cat = uniform(sim) < 0.5
                                     ? s->fav[(size_t)(uniform(sim) *
                                                       N_FAVOURITES)]
                                     : popular_category(uniform(sim));
                s->item = pick_item_for(sim, s);
                s->item_views = 1;
        }
        fill_item(sim, ev, s->item);
}

static void do_search(itd_sim_t *sim, session_t *s, itd_event_t *ev) {
        uint32_t cat = uniform(sim) < 0.6
                           ? s->fav[(size_t)(uniform(sim) * N_FAVOURITES)]
                           : popular_category(uniform(sim));
        uint64_t h = hash3(0, 20, cat);
        ev->type = ITD_EV_SEARCH;
        /* Two words tied to the category, sometimes a third. */
        if (uniform(sim) < 0.3)
                snprintf(ev->query, sizeof ev->query, "%s %s %s",
                         vocab[h % N_VOCAB], vocab[(h >> 16) % N_VOCAB],
                         vocab[(h >> 32) % N_VOCAB]);
        else
                snprintf(ev->query, sizeof ev->query, "%s %s",
                         vocab[h % N_VOCAB], vocab[(h >> 16) % N_VOCAB]);
        s->cat = cat;
        s->item = 0;
        s->item_views = 0;
        s->searched = 1;
}

/* Fills ev with the session's event at s->next_ms; returns its type. */
static itd_event_type_t session_step(itd_sim_t *sim, session_t *s,
                                     itd_event_t *ev) {
        int64_t now = s->next_ms;
        itd_event_clear(ev);
        ev->ts_ms = now;
        snprintf(ev->user_id, sizeof ev->user_id, "u%" PRIu64, s->user);
        snprintf(ev->session_id, sizeof ev->session_id, "S%" PRIu64 "-%" PRIu64,
                 sim->conf.seed, s->seq);
        snprintf(ev->event_id, sizeof ev->event_id, "s%" PRIu64 "-%" PRIu64,
                 sim->conf.seed, ++sim->n_events);

        if (s->n_events++ == 0) {
                if (uniform(sim) < 3.0 * s->search_habit)
                        do_search(sim, s, ev);
                else
                        do_view(sim, s, ev);
                return ev->type;
        }

        double p_buy = buy_hazard(sim, s, now);
        double p_search = s->search_habit;
        double p_cart = s->item && !in_cart(s, s->item) && s->n_cart < CART_MAX
                            ? (s->mission ? MISSION_CART : BROWSE_CART) *
                                  (1.0 + 0.8 * (s->item_views - 1))
                            : 0.0;
        double p_fav = s->item ? 0.033 : 0.0;
        double p_remove = s->n_cart ? 0.03 : 0.0;
        double u = uniform(sim);

        if ((u -= p_buy) < 0) {
                uint64_t item = s->item;
                if (s->n_cart)
                        item = s->cart[--s->n_cart];
                ev->type = ITD_EV_PURCHASE;
                fill_item(sim, ev, item);
                s->last_buy_ms = now;
        } else if ((u -= p_cart) < 0) {
                ev->type = ITD_EV_ADD_TO_CART;
                s->cart[s->n_cart++] = s->item;
                fill_item(sim, ev, s->item);
        } else if ((u -= p_remove) < 0) {
                uint32_t i = (uint32_t)(uniform(sim) * s->n_cart);
                ev->type = ITD_EV_REMOVE_FROM_CART;
                fill_item(sim, ev, s->cart[i]);
                s->cart[i] = s->cart[--s->n_cart];
        } else if ((u -= p_fav) < 0) {
                ev->type = ITD_EV_FAVORITE;
                fill_item(sim, ev, s->item);
        } else if ((u -= p_search) < 0) {
                do_search(sim, s, ev);
        } else {
                do_view(sim, s, ev);
        }
        return ev->type;
}

/* Whether the session goes on after this event, and when. */
static int session_continue(itd_sim_t *sim, session_t *s,
                            itd_event_type_t type) {
        double p_stop = s->n_cart ? 0.10 : 0.14;
        if (type == ITD_EV_PURCHASE)
                p_stop = s->n_cart ? 0.25 : 0.45;
        if (uniform(sim) < p_stop)
                return 0;
        double gap_s = GAP_MEDIAN_S * exp(GAP_SIGMA * normal(sim));
        if (type == ITD_EV_ADD_TO_CART || type == ITD_EV_PURCHASE)
                gap_s *= 0.6; /* checkout steps follow each other quickly */
        if (gap_s < 1.0)
                gap_s = 1.0;
        if (gap_s > GAP_MAX_S)
                gap_s = GAP_MAX_S;
        s->next_ms += (int64_t)(gap_s * 1000.0);
        return s->next_ms < sim->end_ms;
}

/* ------------------------------------------------------------------ */

static uint64_t gcd(uint64_t a, uint64_t b) {
        while (b) {
                uint64_t t = a % b;
                a = b;
                b = t;
        }
        return a;
}

itd_sim_t *itd_sim_new(const itd_sim_conf_t *conf, char *errstr,
                       size_t errstr_size) {
        if (conf->users < 1 || conf->users > ((uint64_t)1 << 40)) {
                snprintf(errstr, errstr_size,
                         "simulator users: %" PRIu64 " is outside 1..2^40",
                         conf->users);
                return NULL;
        }
        if (!(conf->days > 0.0) || conf->days > 3650.0) {
                snprintf(errstr, errstr_size,
                         "simulator days: %g is outside (0, 3650]",
                         conf->days);
                return NULL;
        }
        if (!(conf->bot_fraction >= 0.0) ||
            conf->bot_fraction > BOT_FRACTION_MAX) {
                snprintf(errstr, errstr_size,
                         "simulator bots: %g is outside 0..%g",
                         conf->bot_fraction, BOT_FRACTION_MAX);
                return NULL;
        }
        if (conf->start_ms < 0 || conf->start_ms > ((int64_t)1 << 52)) {
                snprintf(errstr, errstr_size,
                         "simulator start: %" PRId64 " ms is outside "
                         "0..2^52",
                         conf->start_ms);
                return NULL;
        }
        itd_sim_t *sim = itd_xcalloc(1, sizeof *sim);
        sim->conf = *conf;
        sim->end_ms = conf->start_ms + (int64_t)(conf->days * MS_PER_DAY);
        uint64_t x = conf->seed;
        for (int i = 0; i < 4; i++)
                sim->rng[i] = splitmix64(&x);
        sim->start_rate_max = (double)conf->users * SESSIONS_PER_DAY /
                              MS_PER_DAY * (1.0 + CYCLE_AMPLITUDE);
        sim->zipf_top = pow((double)conf->users + 1.0, 1.0 - ZIPF_S) - 1.0;
        sim->perm_mult = (hash3(conf->seed, 30, 0) % conf->users) | 1;
        while (gcd(sim->perm_mult, conf->users) != 1)
                sim->perm_mult++;
        sim->perm_add = hash3(conf->seed, 31, 0) % conf->users;
        sim->open_cap = 1024;
        sim->open = itd_xcalloc(sim->open_cap, sizeof *sim->open);
        sim->next_start_ms = conf->start_ms;
        advance_start(sim);
        if (itd_sim_bots(conf))
                sim->bots = itd_sim_bots_new(conf->seed, itd_sim_bots(conf),
                                             conf->start_ms, sim->end_ms);
        return sim;
}

uint64_t itd_sim_bots(const itd_sim_conf_t *conf) {
        if (!(conf->bot_fraction > 0.0))
                return 0;
        return (uint64_t)llround((double)conf->users * conf->bot_fraction /
                                 (1.0 - conf->bot_fraction));
}

int itd_sim_is_bot(const char *user_id) {
        return strncmp(user_id, "bot-", 4) == 0;
}

void itd_sim_destroy(itd_sim_t *sim) {
        if (!sim)
                return;
        for (size_t i = 0; i < sim->heap_n; i++)
                free(sim->heap[i]);
        while (sim->free_list) {
                session_t *s = sim->free_list;
                sim->free_list = (session_t *)(uintptr_t)s->item;
                free(s);
        }
        free(sim->heap);
        free(sim->open);
        itd_sim_bots_destroy(sim->bots);
        free(sim);
}

/* Session s's next event into ev; s goes back on the heap while it goes
 * on, else it ends. */
static void session_emit(itd_sim_t *sim, session_t *s, itd_event_t *ev) {
        itd_event_type_t type = session_step(sim, s, ev);
        if (session_continue(sim, s, type))
                heap_push(sim, s);
        else
                session_free(sim, s);
}

/* The shoppers' stream alone: what the simulator gives without bots. */
static itd_err_t shopper_next(itd_sim_t *sim, itd_event_t *ev) {
        for (;;) {
                int64_t t_heap = sim->heap_n ? sim->heap[0]->next_ms
                                             : INT64_MAX;
                /* Starts go first on a tie: the order is fixed either way. */
                if (sim->next_start_ms < sim->end_ms &&
                    sim->next_start_ms <= t_heap) {
                        int64_t t = sim->next_start_ms;
                        uint64_t user = draw_user(sim);
                        advance_start(sim);
                        /* One session per user at a time: a busy user's
                         * extra start is simply not taken. */
                        if (open_has(sim, user))
                                continue;
                        open_add(sim, user);
                        session_emit(sim, session_new(sim, user, t), ev);
                        return ITD_OK;
                }
                if (!sim->heap_n)
                        return ITD_ERR_EOF;
                session_emit(sim, heap_pop(sim), ev);
                return ITD_OK;
        }
}

itd_err_t itd_sim_next(itd_sim_t *sim, itd_event_t *ev) {
        if (!sim->bots)
                return shopper_next(sim, ev);
        if (!sim->have_ahead && !sim->shoppers_done) {
                if (shopper_next(sim, &sim->ahead) == ITD_OK)
                        sim->have_ahead = 1;
                else
                        sim->shoppers_done = 1;
        }
        int64_t bot_ms = itd_sim_bots_next_ms(sim->bots);
        if (sim->have_ahead && sim->ahead.ts_ms <= bot_ms) {
                *ev = sim->ahead;
                sim->have_ahead = 0;
                return ITD_OK;
        }
        if (bot_ms == INT64_MAX)
                return ITD_ERR_EOF;
        itd_sim_bots_step(sim->bots, ev);
        return ITD_OK;
}
