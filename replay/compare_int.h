/*
 * compare_int.h - the insides of itd_compare_t, shared by compare.c (the
 * store, the rules, the judgements) and compare_json.c (the report's
 * chart data).
 */
#ifndef INTENTD_COMPARE_INT_H
#define INTENTD_COMPARE_INT_H

#include "intentd/compare.h"

/* One judged example. */
typedef struct cmp_ex_s {
        int64_t ts;
        uint64_t seq;
        uint32_t user;
        uint8_t label, type, bought;
} cmp_ex_t;

/* One user, for the rules. */
typedef struct cmp_user_s {
        uint64_t key;       /* hash of the user id */
        uint32_t events;    /* read so far */
        uint32_t purchases; /* of them purchases */
} cmp_user_t;

/* One purchase event: when it decides earlier predictions positive. */
typedef struct cmp_buy_s {
        uint64_t seq;
        uint32_t user;
} cmp_buy_t;

struct itd_compare_s {
        itd_compare_conf_t conf;
        char model_name[32], baseline_name[32];
        int has[ITD_SC__COUNT];

        /* users: open addressing on the id's hash -> index into users */
        cmp_user_t *users;
        size_t n_users, cap_users;
        uint32_t *slot; /* index + 1; 0 empty */
        size_t cap_slot;

        cmp_buy_t *buys;
        size_t n_buys, cap_buys;
        uint64_t seq;

        /* examples as added (resolution order), scores beside them */
        cmp_ex_t *ex;
        float *score[ITD_SC__COUNT];
        size_t n, cap;
        uint64_t non_finite;

        /* after finish: examples in (ts, seq) order */
        int finished;
        size_t resamples; /* used: conf.resamples, fewer for large inputs */
        uint32_t *by_time;
        int64_t span_lo, span_hi, cut_ts;
        itd_compare_period_t period[2];
};

/* Sequential subsets of examples, gathered for one judgement. */
typedef struct cmp_subset_s {
        size_t n;
        float *score[ITD_SC__COUNT];
        uint8_t *label;
        uint32_t *user;
} cmp_subset_t;

/* Gathers examples idx[0..n) (indices into cmp->ex). Free with
 * cmp_subset_free. */
void cmp_subset_init(const itd_compare_t *cmp, cmp_subset_t *s,
                     const uint32_t *idx, size_t n);
void cmp_subset_free(cmp_subset_t *s);

/* Clamped log loss of scores s (as model/eval_progressive.c). */
double cmp_logloss(const float *s, const uint8_t *y, size_t n);

#endif
