/*
 * sim_bots.c - the simulator's bots (simulator.h, "--bots"): a fixed set
 * of bot users "bot-<n>", all held in memory, each with its own xoshiro
 * stream seeded from (seed, n) and its own habits drawn from it. Three
 * kinds:
 *   - scraper (half of them): crawls the catalogue, views only (some also
 *     search), item after item of a category, moving on every 1..8 items;
 *     a pause of 0.7..8 s (log-uniform) between requests;
 *   - scalper (3 in 10): views items of 1..4 hot categories and puts them
 *     in the cart 0.2..2 s later, buys 15..60 % of them as fast and
 *     releases 5..40 % (cart stuffing), 1.5..10 s between items;
 *   - carder (card testing, 2 in 10): views the cheapest of a few popular
 *     items and buys it 0.4..2.5 s later, again every 4..40 s.
 * Every pause carries the bot's own jitter (a coefficient of variation of
 * 2..40 %, 5..50 % for carders). Bots keep no daily rhythm: sessions of
 * 30..230 (scrapers), 15..70 (scalpers) or 6..32 (carders) events start
 * 1..8 times a day at random.
 */
#include "simulator_int.h"

#include <string.h>

#include "intentd/mem.h"

typedef enum { BOT_SCRAPER = 0, BOT_SCALPER, BOT_CARDER } bot_kind_t;

/* A bot: habits drawn once from its own stream, and its session state. */
typedef struct {
        uint64_t num;      /* "bot-<num>", heap tie-break */
        uint64_t rng[4];
        int64_t next_ms;   /* time of its next event */
        bot_kind_t kind;
        double gap_s;      /* mean pause between steps */
        double jitter;     /* coefficient of variation of every pause */
        double react_s;    /* scalper, carder: view -> cart / purchase */
        double sessions_per_day;
        uint32_t len_lo, len_hi; /* events per session */
        uint32_t stay;     /* scraper: items per category before moving */
        double p_search;   /* scraper: share of steps that search */
        double p_buy;      /* scalper: carted items bought at once */
        double p_remove;   /* scalper: carted items released */
        uint32_t n_targets;
        uint32_t target[4]; /* scalper: hot categories */
        /* the session in progress */
        uint32_t left;     /* events left in it; 0: between sessions */
        uint64_t seq;      /* session number */
        int phase;         /* scalper/carder: what the next step does */
        uint32_t cat, in_cat;
        uint64_t item, crawl;
        uint32_t n_cart;
        uint64_t cart[CART_MAX];
} bot_t;

struct itd_sim_bots_s {
        uint64_t seed;
        int64_t end_ms;
        bot_t *bots;
        size_t n;
        bot_t **heap; /* min-heap of active bots by (next_ms, num) */
        size_t heap_n;
        uint64_t n_events;
};

static double bu(bot_t *b) { return to_unit(rng_next(b->rng)); }

/* log-uniform on [lo, hi] */
static double b_logu(bot_t *b, double lo, double hi) {
        return lo * exp(bu(b) * log(hi / lo));
}

static double b_range(bot_t *b, double lo, double hi) {
        return lo + bu(b) * (hi - lo);
}

/* A pause of mean mean_s with the bot's jitter, in ms (at least 50 ms). */
static int64_t b_pause_ms(bot_t *b, double mean_s) {
        double u1 = bu(b);
        double f = 1.0 + b->jitter * normal_from(u1, bu(b));
        if (f < 0.1)
                f = 0.1;
        double ms = mean_s * f * 1000.0;
        return ms < 50.0 ? 50 : (int64_t)ms;
}

static uint64_t b_pick_item(bot_t *b, uint32_t cat) {
        uint64_t k = (uint64_t)(ITEMS_PER_CATEGORY * pow(bu(b), 2.5));
        if (k >= ITEMS_PER_CATEGORY)
                k = ITEMS_PER_CATEGORY - 1;
        return (uint64_t)cat * ITEMS_PER_CATEGORY + k + 1;
}

/* Habits of bot num, from its own stream. */
static void bot_init(uint64_t seed, int64_t start_ms, bot_t *b,
                     uint64_t num) {
        memset(b, 0, sizeof *b);
        b->num = num;
        uint64_t x = hash3(seed, 40, num);
        for (int i = 0; i < 4; i++)
                b->rng[i] = splitmix64(&x);
        double k = bu(b);
        b->kind = k < 0.5 ? BOT_SCRAPER : k < 0.8 ? BOT_SCALPER : BOT_CARDER;
        b->jitter = b_range(b, 0.02, 0.4);
        switch (b->kind) {
        case BOT_SCRAPER:
                b->gap_s = b_logu(b, 0.7, 8.0);
                b->sessions_per_day = b_range(b, 1.0, 4.0);
                b->len_lo = (uint32_t)b_range(b, 30, 80);
                b->len_hi = b->len_lo + (uint32_t)b_range(b, 40, 150);
                b->stay = 1 + (uint32_t)(bu(b) * 8);
                b->p_search = bu(b) < 0.6 ? 0.0 : b_range(b, 0.02, 0.15);
                break;
        case BOT_SCALPER:
                b->gap_s = b_logu(b, 1.5, 10.0);
                b->react_s = b_logu(b, 0.2, 2.0);
                b->sessions_per_day = b_range(b, 3.0, 8.0);
                b->len_lo = (uint32_t)b_range(b, 15, 30);
                b->len_hi = b->len_lo + (uint32_t)b_range(b, 5, 40);
                b->p_buy = b_range(b, 0.15, 0.6);
                b->p_remove = b_range(b, 0.05, 0.4);
                b->n_targets = 1 + (uint32_t)(bu(b) * 4);
                for (uint32_t i = 0; i < b->n_targets; i++)
                        b->target[i] = popular_category(bu(b));
                break;
        case BOT_CARDER:
                b->gap_s = b_logu(b, 4.0, 40.0);
                b->react_s = b_logu(b, 0.4, 2.5);
                b->jitter = b_range(b, 0.05, 0.5);
                b->sessions_per_day = b_range(b, 2.0, 6.0);
                b->len_lo = (uint32_t)b_range(b, 6, 12);
                b->len_hi = b->len_lo + (uint32_t)b_range(b, 4, 20);
                break;
        }
        /* first session at a random moment of its first cycle */
        b->next_ms = start_ms +
                     (int64_t)(bu(b) * MS_PER_DAY / b->sessions_per_day);
}

static int bot_before(const bot_t *a, const bot_t *b) {
        return a->next_ms < b->next_ms ||
               (a->next_ms == b->next_ms && a->num < b->num);
}

static void heap_sift_down(itd_sim_bots_t *bs, size_t i) {
        size_t n = bs->heap_n;
        bot_t *x = bs->heap[i];
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= n)
                        break;
                if (c + 1 < n && bot_before(bs->heap[c + 1], bs->heap[c]))
                        c++;
                if (!bot_before(bs->heap[c], x))
                        break;
                bs->heap[i] = bs->heap[c];
                i = c;
        }
        bs->heap[i] = x;
}

/* Fills ev with bot b's event at b->next_ms and schedules its next one. */
static void bot_step(itd_sim_bots_t *bs, bot_t *b, itd_event_t *ev) {
        int64_t now = b->next_ms;
        if (b->left == 0) { /* a session starts */
                b->left = b->len_lo +
                          (uint32_t)(bu(b) * (b->len_hi - b->len_lo + 1));
                b->seq++;
                b->phase = 0;
                b->in_cat = 0;
                b->n_cart = 0;
                b->cat = popular_category(bu(b));
                b->crawl = (uint64_t)(bu(b) * ITEMS_PER_CATEGORY);
        }
        itd_event_clear(ev);
        ev->ts_ms = now;
        snprintf(ev->user_id, sizeof ev->user_id, "bot-%" PRIu64, b->num);
        snprintf(ev->session_id, sizeof ev->session_id,
                 "B%" PRIu64 "-%" PRIu64 "-%" PRIu64, bs->seed, b->num,
                 b->seq);
        snprintf(ev->event_id, sizeof ev->event_id, "b%" PRIu64 "-%" PRIu64,
                 bs->seed, ++bs->n_events);
        double next_s = b->gap_s;
        switch (b->kind) {
        case BOT_SCRAPER:
                if (b->p_search > 0 && bu(b) < b->p_search) {
                        uint32_t cat = popular_category(bu(b));
                        uint64_t h = hash3(0, 20, cat);
                        ev->type = ITD_EV_SEARCH;
                        snprintf(ev->query, sizeof ev->query, "%s %s",
                                 vocab[h % N_VOCAB],
                                 vocab[(h >> 16) % N_VOCAB]);
                        b->cat = cat;
                        b->in_cat = 0;
                        break;
                }
                if (b->in_cat >= b->stay) {
                        /* the next category, or a jump elsewhere */
                        b->cat = bu(b) < 0.5 ? (b->cat + 1) % N_CATEGORIES
                                             : popular_category(bu(b));
                        b->in_cat = 0;
                }
                b->in_cat++;
                ev->type = ITD_EV_VIEW;
                sim_fill_item(bs->seed, ev,
                              (uint64_t)b->cat * ITEMS_PER_CATEGORY +
                                  (b->crawl++ % ITEMS_PER_CATEGORY) + 1);
                break;
        case BOT_SCALPER:
                if (b->phase == 0) {
                        b->item = b_pick_item(
                            b, b->target[(size_t)(bu(b) * b->n_targets)]);
                        ev->type = ITD_EV_VIEW;
                        sim_fill_item(bs->seed, ev, b->item);
                        b->phase = 1;
                        next_s = b->react_s;
                } else if (b->phase == 1) {
                        ev->type = ITD_EV_ADD_TO_CART;
                        sim_fill_item(bs->seed, ev, b->item);
                        if (b->n_cart < CART_MAX)
                                b->cart[b->n_cart++] = b->item;
                        double u = bu(b);
                        b->phase = u < b->p_buy                 ? 2
                                   : u < b->p_buy + b->p_remove ? 3
                                                                : 0;
                        if (b->phase)
                                next_s = b->react_s;
                } else if (b->phase == 2) {
                        ev->type = ITD_EV_PURCHASE;
                        sim_fill_item(bs->seed, ev, b->item);
                        if (b->n_cart)
                                b->n_cart--;
                        b->phase = 0;
                } else {
                        uint32_t i = (uint32_t)(bu(b) * b->n_cart);
                        ev->type = ITD_EV_REMOVE_FROM_CART;
                        sim_fill_item(bs->seed, ev, b->n_cart ? b->cart[i]
                                                         : b->item);
                        if (b->n_cart)
                                b->cart[i] = b->cart[--b->n_cart];
                        b->phase = 0;
                }
                break;
        case BOT_CARDER:
                if (b->phase == 0) {
                        /* the cheapest of a few popular items */
                        uint32_t cat = popular_category(bu(b));
                        b->item = b_pick_item(b, cat);
                        for (int i = 0; i < 3; i++) {
                                uint64_t it = b_pick_item(b, cat);
                                if (item_price(bs->seed, it) <
                                    item_price(bs->seed, b->item))
                                        b->item = it;
                        }
                        ev->type = ITD_EV_VIEW;
                        b->phase = 1;
                        next_s = b->react_s;
                } else {
                        ev->type = ITD_EV_PURCHASE;
                        b->phase = 0;
                }
                sim_fill_item(bs->seed, ev, b->item);
                break;
        }
        if (--b->left == 0) /* between sessions: idle, then start again */
                b->next_ms = now + (int64_t)(-log(1.0 - bu(b)) * MS_PER_DAY /
                                             b->sessions_per_day);
        else
                b->next_ms = now + b_pause_ms(b, next_s);
}

itd_sim_bots_t *itd_sim_bots_new(uint64_t seed, uint64_t n, int64_t start_ms,
                                 int64_t end_ms) {
        itd_sim_bots_t *bs = itd_xcalloc(1, sizeof *bs);
        bs->seed = seed;
        bs->end_ms = end_ms;
        bs->n = (size_t)n;
        bs->bots = itd_xcalloc(bs->n ? bs->n : 1, sizeof *bs->bots);
        bs->heap = itd_xcalloc(bs->n ? bs->n : 1, sizeof *bs->heap);
        for (size_t i = 0; i < bs->n; i++) {
                bot_init(seed, start_ms, &bs->bots[i], i + 1);
                if (bs->bots[i].next_ms < end_ms)
                        bs->heap[bs->heap_n++] = &bs->bots[i];
        }
        for (size_t i = bs->heap_n / 2; i-- > 0;)
                heap_sift_down(bs, i);
        return bs;
}

void itd_sim_bots_destroy(itd_sim_bots_t *bs) {
        if (!bs)
                return;
        free(bs->bots);
        free(bs->heap);
        free(bs);
}

int64_t itd_sim_bots_next_ms(const itd_sim_bots_t *bs) {
        return bs->heap_n ? bs->heap[0]->next_ms : INT64_MAX;
}

void itd_sim_bots_step(itd_sim_bots_t *bs, itd_event_t *ev) {
        bot_t *b = bs->heap[0];
        bot_step(bs, b, ev);
        if (b->next_ms >= bs->end_ms)
                bs->heap[0] = bs->heap[--bs->heap_n];
        if (bs->heap_n)
                heap_sift_down(bs, 0);
}
