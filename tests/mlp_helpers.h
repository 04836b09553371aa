/*
 * mlp_helpers.h - shared test data of test_mlp.c and test_mlp_learn.c:
 * the seeded random source (rand_helpers.h) and a tiny network
 * (configuration, sparse ids, labels, next actions, inputs) every part of
 * which a test can look at.
 */
#ifndef INTENTD_MLP_HELPERS_H
#define INTENTD_MLP_HELPERS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "intentd/mlp.h"
#include "layers_int.h"
#include "mlp_int.h"
#include "rand_helpers.h"

/* a tiny network every part of which a test can look at */
static inline itd_mlp_conf_t tiny_conf(itd_opt_t opt) {
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, 5, 2, 3);
        c.emb_buckets = 7;
        c.emb_dim = 3;
        c.n_hidden = 2;
        c.hidden[0] = 6;
        c.hidden[1] = 4;
        c.max_batch = 8;
        c.optimizer = opt;
        c.loss_weight_next = 0.5f;
        /* the network alone: the hand computations below know nothing of
         * the wide path or input standardisation (tested on their own) */
        c.wide = 0;
        c.norm_inputs = 0;
        return c;
}

enum { TB = 5, TD = 5, TS = 6 /* 2 fields x 3 slots */ };

#define E_ ITD_SPARSE_NONE

static const uint32_t tiny_ids[TB * TS] = {
    1, 8, E_, 3, E_, E_, /* 8 % 7 = row 1 again */
    E_, E_, E_, 0, 2, 6, /* field 0 empty */
    4, E_, E_, E_, E_, E_,
    2, 3, 5, 1, E_, E_,
    0, E_, E_, 4, 4, E_,
};

static const float tiny_y[TB] = {1, 0, 0, 1, 0};

static const int tiny_next[TB] = {ITD_NEXT_PURCHASE, ITD_NEXT_VIEW, -1,
                                  ITD_NEXT_LEAVE, ITD_NEXT_SEARCH};

static inline void tiny_x(float *x) {
        rng_state = 777;
        for (size_t i = 0; i < TB * TD; i++)
                x[i] = (float)(3.0 * urand() - 1.0);
}

#endif
