/*
 * simulator_int.h - what the shoppers (simulator.c) and the bots
 * (sim_bots.c) of the simulator share: the random number helpers, the
 * catalogue (categories, items and their prices, search words), and the
 * bot population's interface.
 */
#ifndef INTENTD_SIMULATOR_INT_H
#define INTENTD_SIMULATOR_INT_H

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/event.h"

#define N_CATEGORIES 1000
#define ITEMS_PER_CATEGORY 500
#define CART_MAX 8
#define MS_PER_DAY 86400000.0

/* ------------------------------------------------------------------ */
/* Randomness: streams for event order, hashes for traits.            */

static inline uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman and Vigna, 2018). */
static inline uint64_t rng_next(uint64_t s[4]) {
        uint64_t result = rotl(s[1] * 5, 7) * 9;
        uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
}

static inline double to_unit(uint64_t x) { return (double)(x >> 11) * 0x1.0p-53; }

/* Standard normal by Box-Muller from two uniforms. */
static inline double normal_from(double u1, double u2) {
        if (u1 < 1e-300)
                u1 = 1e-300;
        return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* A hash of (seed, a, b) standing in for a stored attribute. */
static inline uint64_t hash3(uint64_t seed, uint64_t a, uint64_t b) {
        uint64_t x = seed ^ (a * 0xd6e8feb86659fd93ULL) ^
                     (b * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
        splitmix64(&x);
        return splitmix64(&x);
}

static inline double hash_unit(uint64_t seed, uint64_t a, uint64_t b) {
        return to_unit(hash3(seed, a, b));
}

static inline double hash_normal(uint64_t seed, uint64_t a, uint64_t b) {
        return normal_from(hash_unit(seed, a, b * 2 + 1000),
                           hash_unit(seed, a, b * 2 + 1001));
}

/* ------------------------------------------------------------------ */
/* The catalogue, hashed from the seed: it costs no memory.           */

static inline uint32_t item_category(uint64_t item) {
        return (uint32_t)((item - 1) / ITEMS_PER_CATEGORY);
}

/* Log-normal around a per-category level: most prices 5..500. */
static inline double item_price(uint64_t seed, uint64_t item) {
        double cat_level = log(35.0) +
                           0.8 * hash_normal(seed, 1, item_category(item));
        double p = exp(cat_level + 0.35 * hash_normal(seed, 2, item));
        if (p < 0.5)
                p = 0.5;
        if (p > 20000.0)
                p = 20000.0;
        return round(p * 100.0) / 100.0;
}

/* A popular-skewed category (low numbers are the big ones). */
static inline uint32_t popular_category(double u) {
        return (uint32_t)(N_CATEGORIES * pow(u, 2.0)) % N_CATEGORIES;
}

static const char *const vocab[] = {
    "red",    "dress",  "phone",  "case",   "shoes",   "running", "coat",
    "winter", "kids",   "toy",    "lamp",   "desk",    "mug",     "tea",
    "coffee", "cable",  "usb",    "charger", "bag",    "leather", "watch",
    "smart",  "sofa",   "pillow", "cotton", "shirt",   "jeans",   "skirt",
    "book",   "pen",    "paper",  "game",   "console", "mouse",   "keyboard",
    "snack",  "rice",   "oil",    "soap",   "cream",   "face",    "hair",
    "dog",    "cat",    "food",   "bike",   "helmet",  "gloves"};
#define N_VOCAB (sizeof vocab / sizeof vocab[0])

static inline void sim_fill_item(uint64_t seed, itd_event_t *ev,
                                 uint64_t item) {
        snprintf(ev->item_id, sizeof ev->item_id, "i%" PRIu64, item);
        snprintf(ev->category, sizeof ev->category, "c%" PRIu32,
                 item_category(item));
        ev->price = item_price(seed, item);
}

/* ------------------------------------------------------------------ */
/* Bots (sim_bots.c): users "bot-1" .. "bot-<n>", each on a random
 * stream of its own seeded from (seed, number), so they change nothing
 * of the shoppers' stream.                                            */

typedef struct itd_sim_bots_s itd_sim_bots_t;

/* n bots acting between start_ms and end_ms (caller owns the result). */
itd_sim_bots_t *itd_sim_bots_new(uint64_t seed, uint64_t n, int64_t start_ms,
                                 int64_t end_ms);
void itd_sim_bots_destroy(itd_sim_bots_t *bs);
/* Time of the bots' next event; INT64_MAX when none is left. */
int64_t itd_sim_bots_next_ms(const itd_sim_bots_t *bs);
/* Fills ev with that event (only when next_ms says there is one). */
void itd_sim_bots_step(itd_sim_bots_t *bs, itd_event_t *ev);

#endif
