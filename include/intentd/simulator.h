/*
 * simulator.h - a seeded shopper simulator.
 *
 * Streams events in non-decreasing event time for a population of users over
 * a number of days. Users are not all held in memory: a user's traits derive
 * from a hash of (seed, user number), and only users with an open session
 * keep state. Purchases depend on the user's recent behaviour (carts, repeat
 * views, searches) and on a per-user propensity, so intent is learnable.
 * Deterministic for (users, days, seed, start_ms).
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

#endif
