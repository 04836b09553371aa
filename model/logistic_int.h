/*
 * logistic_int.h - the online logistic-regression baseline: FTRL-Proximal
 * over the dense features and the hashed sparse ids (model.h).
 *
 * Coordinates (n_weights = 1 + n_dense + n_fields * buckets):
 *   0                                   bias (never regularised)
 *   1 + d                               dense feature d, value x[d]
 *   1 + n_dense + f * buckets + id % buckets   sparse field f, value 1
 * Several ids of one field falling into the same bucket count once.
 * State per coordinate: z and n of Algorithm 1, in double (n sums squared
 * gradients over millions of examples; float would stop growing).
 *
 * Private to model/ (and its tests).
 * @thread the model's owner thread.
 */
#ifndef INTENTD_MODEL_LOGISTIC_INT_H
#define INTENTD_MODEL_LOGISTIC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/model.h"
#include "intentd/types.h"

/*
 * Fixed offset added to every logit: logit(0.05), the MLP's initial base
 * rate. Without it the bias starts at p = 0.5 and, with per-coordinate
 * steps shrinking as 1/sqrt(n), needs thousands of examples to reach a
 * rare-purchase base rate; the bias weight learns the correction instead.
 */
#define ITD_LOGISTIC_LOGIT_OFFSET (-2.9444389791664403)

typedef struct itd_logistic_s {
        size_t n_dense, n_fields, ids_per_field, buckets, max_batch;
        itd_ftrl_conf_t ftrl;
        size_t n_weights;
        double *z; /* (n_weights) */
        double *n; /* (n_weights) */
        double next_count[ITD_NEXT__COUNT];
        int64_t steps;
        uint64_t skipped;
        /* scratch for one example: its active coordinates and values */
        size_t *active;
        double *value;  /* x of each active coordinate */
        double *weight; /* its weight when the example was scored */
} itd_logistic_t;

/** @brief NULL with errstr when a shape or FTRL setting is out of range. */
itd_logistic_t *itd_logistic_new(size_t n_dense, size_t n_fields,
                                 size_t ids_per_field, size_t buckets,
                                 size_t max_batch, const itd_ftrl_conf_t *ftrl,
                                 char *errstr, size_t errstr_size);
void itd_logistic_destroy(itd_logistic_t *lr);

/**
 * @brief The weight FTRL-Proximal derives from (z, n) (Algorithm 1):
 * 0 if |z| <= l1, else -(z - sgn(z) l1) / ((beta + sqrt(n)) / alpha + l2).
 * The bias passes l1 = l2 = 0.
 */
double itd_ftrl_weight(double z, double n, double alpha, double beta,
                       double l1, double l2);

/** @brief Contract of itd_model_predict. */
void itd_logistic_predict(itd_logistic_t *lr, const float *x,
                          const uint32_t *ids, size_t B, float *p,
                          float *next);

/** @brief Contract of itd_model_train. */
itd_err_t itd_logistic_train(itd_logistic_t *lr, const float *x,
                             const uint32_t *ids, const float *y,
                             const int *next, size_t B, float *loss);
/** @brief itd_logistic_train with importance weights wt (B) or NULL: an
 * example of weight w moves FTRL as w copies of it would to first order
 * (its gradient times w). *loss stays the unweighted mean. */
itd_err_t itd_logistic_train_weighted(itd_logistic_t *lr, const float *x,
                                      const uint32_t *ids, const float *y,
                                      const int *next, const float *wt,
                                      size_t B, float *loss);

/** @brief Weight of coordinate i as it would be used now. */
double itd_logistic_weight(const itd_logistic_t *lr, size_t i);

#endif
