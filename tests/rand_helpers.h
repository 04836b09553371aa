/*
 * rand_helpers.h - the tests' seeded random source (xorshift64*): urand
 * uniform in [0, 1), nrand standard normal (Box-Muller). Set rng_state
 * (non-zero) before the first draw. Header-only, so each test program has
 * its own state; used by test_mlp.c and test_mlp_learn.c (through
 * mlp_helpers.h), test_logistic.c and test_model.c.
 */
#ifndef INTENTD_RAND_HELPERS_H
#define INTENTD_RAND_HELPERS_H

#include <math.h>
#include <stdint.h>

static uint64_t rng_state;

static inline double urand(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (double)((rng_state * 2685821657736338717ull) >> 11) *
               0x1.0p-53;
}

static inline double nrand(void) {
        double u1 = urand() + 1e-300, u2 = urand();
        return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

#endif
