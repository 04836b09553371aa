/*
 * simulator.h - a seeded shopper simulator.
 *
 * Streams events in non-decreasing event time for a population of users over
 * a number of days. Users are not all held in memory: a user's traits derive
 * from a hash of (seed, user number), and only users with an open session
 * keep state. Purchases depend on the user's recent behaviour (carts, repeat
 * views, searches) and on a per-user propensity, so intent is learnable.
 *
 * Optionally a bot population is mixed in (user ids "bot-<n>"): catalogue
 * scrapers, cart-stuffing scalpers and card testers, each bot with its own
 * pace, jitter and habits. Bots draw from their own random streams, so the
 * shoppers' events are the same with or without bots (only interleaved).
 * Deterministic for (users, days, seed, start_ms, bot_fraction).
 */
#ifndef INTENTD_SIMULATOR_H
#define INTENTD_SIMULATOR_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/event.h"

typedef struct itd_sim_conf_s {
        uint64_t users;   /* population size */
        double days;      /* simulated span */
        uint64_t seed;
        int64_t start_ms; /* event time of the start, ms since the epoch */
        /* share of all simulated users that are bots, 0 .. 0.5: users
         * shoppers plus round(users * f / (1 - f)) bots; 0 = no bots */
        double bot_fraction;
} itd_sim_conf_t;

typedef struct itd_sim_s itd_sim_t;

/** @brief Creates a simulator; NULL with errstr on a bad conf. */
itd_sim_t *itd_sim_new(const itd_sim_conf_t *conf, char *errstr,
                       size_t errstr_size);
void itd_sim_destroy(itd_sim_t *sim);

/**
 * @brief Produces the next event.
 * @returns ITD_OK, or ITD_ERR_EOF when the span is over.
 */
itd_err_t itd_sim_next(itd_sim_t *sim, itd_event_t *ev);

/** @brief Number of bot users the configuration gives (0 without bots). */
uint64_t itd_sim_bots(const itd_sim_conf_t *conf);

/** @brief Whether user_id names a simulated bot ("bot-" prefix). */
int itd_sim_is_bot(const char *user_id);

#endif
