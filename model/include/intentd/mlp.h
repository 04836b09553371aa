/*
 * mlp.h - the online network: dense features plus mean-pooled hashed
 * embeddings, a ReLU trunk, and two heads (purchase within the horizon,
 * sigmoid + binary cross-entropy; next action, softmax + cross-entropy).
 *
 * Depends only on libc, libm and CBLAS. Parameters, gradients and optimizer
 * moments are allocated once, each as one contiguous block. Deterministic
 * for a seed and the order of calls.
 *
 * @thread one owner thread; no internal locking.
 */
#ifndef INTENTD_MLP_H
#define INTENTD_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/types.h"

#define ITD_MLP_MAX_HIDDEN 4
#define ITD_MLP_MAX_OFFSETS 4
#define ITD_MLP_MAX_LINEAR 128

typedef enum { ITD_OPT_SGD = 0, ITD_OPT_ADAGRAD, ITD_OPT_ADAM } itd_opt_t;

typedef struct itd_mlp_conf_s {
        size_t n_dense;        /* dense input width */
        size_t n_fields;       /* sparse fields */
        size_t ids_per_field;  /* ids[b][f * ids_per_field + k]; UINT32_MAX = empty */
        size_t emb_buckets;    /* rows per embedding table (ids taken modulo) */
        size_t emb_dim;        /* 0 disables embeddings */
        size_t n_hidden;       /* hidden layers, 1..ITD_MLP_MAX_HIDDEN */
        size_t hidden[ITD_MLP_MAX_HIDDEN];
        size_t max_batch;      /* largest B passed to predict/train */
        itd_opt_t optimizer;
        float lr;              /* learning rate */
        float l2;              /* weight decay on weights (not biases) */
        float clip;            /* gradient L2-norm clip; 0 = off */
        float beta1, beta2, eps;   /* Adam (eps also AdaGrad) */
        float loss_weight_next;    /* weight of the next-action loss */
        uint64_t seed;
        /* learning rate of the embedding rows; 0 = lr. A row learns only
         * in the steps whose batch holds its id, so it needs larger steps
         * than the dense layers that learn every step. (Appended by the
         * model's implementer.) */
        float emb_lr;
        /*
         * Appended by the model's implementer (issues 5, 6): what lets the
         * model learn from its first few thousand examples.
         *
         * norm_inputs: 1 standardises every dense input for the wide path
         * (below): (x - mean) / sd clipped to +-ITD_MLP_NORM_CLIP, with a
         * running mean and variance of the training examples (Welford),
         * so inputs of very different scales (a purchase rate with sd 0.03
         * beside counts with sd 1) learn at the same pace. The network
         * itself reads the inputs as they come: standardised rare 0/1
         * features reach several sd, and fed to the ReLU trunk they made
         * it over-confident (log loss 0.07 -> 1.4 on the 2-hour Taobao
         * slice). norm_max_count caps the running count: after that many
         * examples the statistics become an exponential average of that
         * window and follow slow drift (0 = never capped).
         */
        int norm_inputs;
        float norm_max_count;
        /*
         * wide: 1 adds a linear path to the purchase logit, one weight per
         * standardised dense input, trained jointly with the network
         * (Cheng et al. 2016, "Wide & Deep Learning"): weights by SGD, the
         * purchase bias by AdaGrad, both at wide_lr (0 = lr). The
         * network's purchase output weights then start at 0, so the first
         * predictions come from the linear path alone, which learns the
         * user's purchase history within a few hundred steps while the
         * network catches up.
         */
        int wide;
        float wide_lr;
        /*
         * Offsets (appended by the model's implementer): n_offsets dense
         * inputs that already are log-odds, each an estimate of how much
         * more (or less) likely than average this user is to buy, such as
         * label_logodds and purchase_logodds (docs/FEATURES.md). They
         * enter the purchase logit as sum_k theta_k x[offset_input[k]],
         * a stacked GLM offset: the network and the wide path then learn
         * what moves a prediction away from the user's own rate, from
         * their first step on. theta is fitted by its own online Newton
         * step (a Laplace approximation of its posterior given everything
         * learned so far, the rest of the model held fixed), from a prior
         * N(1 / n_offsets, 1 / offset_prior): few parameters fitted on
         * every example, so it can learn fast without being noisy, and
         * settles on which estimate a stream rewards.
         */
        size_t n_offsets;
        size_t offset_input[ITD_MLP_MAX_OFFSETS];
        float offset_prior;
        /*
         * Newton inputs (appended by the model's implementer): n_linear
         * dense inputs that also enter the purchase logit linearly, read
         * standardised like the wide path (as they come without
         * standardisation), with weights fitted by the offsets' Newton step
         * and jointly with them (one curvature matrix over both), from a
         * prior N(0, 1 / linear_prior). A second-order fit learns in a few
         * thousand examples what SGD on the wide path learns in a few
         * hundred thousand, and its prior keeps it from chasing the bursts
         * in which labels arrive. Meant for inputs whose meaning stays put
         * while a user ages (not lifetime counts, which only grow).
         */
        size_t n_linear;
        size_t linear_input[ITD_MLP_MAX_LINEAR];
        float linear_prior;
        /*
         * With Newton inputs, an intercept fitted with them (a constant
         * input, last of the Newton weights) from N(0, 1 /
         * intercept_prior): it keeps the score calibrated while the base
         * rate drifts.
         */
        float intercept_prior;
        /*
         * avg_steps: > 0 scores with averaged parameters (Polyak-Ruppert
         * averaging): after step t, avg += a_t (params - avg) with
         * a_t = max(2 / (t + 1), 1 / avg_steps), an average weighted by
         * step number (Lacoste-Julien, Schmidt & Bach 2012) that becomes
         * an exponential average over about the last avg_steps steps.
         * Training steps on the parameters themselves; only predictions
         * read the average. Online, labels arrive in bursts (every event
         * of a buyer's last half hour at once), and each step follows the
         * latest burst: the average keeps what the recent steps agree on.
         * Covers the dense tensors and the offset weights; embedding rows
         * (updated lazily, a few times in a thousand steps) score as they
         * are. 0 = off.
         */
        size_t avg_steps;
} itd_mlp_conf_t;

/* Standardised inputs are clipped to +- this many standard deviations: a
 * rare 0/1 feature (sd 0.14 at 2%) would otherwise reach 7, and a feature
 * constant so far 1 / NORM_MIN_SD; 3 scored a little higher than 8 on the
 * simulator and the 2-hour Taobao slice. */
#define ITD_MLP_NORM_CLIP 3.0f

typedef struct itd_mlp_s itd_mlp_t;

/** @brief Sensible defaults for a given input shape. */
void itd_mlp_conf_defaults(itd_mlp_conf_t *conf, size_t n_dense,
                           size_t n_fields, size_t ids_per_field);

/** @brief New network with seeded initial weights (caller owns). */
itd_mlp_t *itd_mlp_new(const itd_mlp_conf_t *conf, char *errstr,
                       size_t errstr_size);
void itd_mlp_destroy(itd_mlp_t *m);

/**
 * @brief Scores a batch.
 * x: (B, n_dense) row-major; ids: (B, n_fields * ids_per_field) or NULL;
 * p: (B) purchase probability; next: (B, ITD_NEXT__COUNT) or NULL.
 * B <= max_batch. Uses sgemv at B == 1, sgemm otherwise.
 */
void itd_mlp_predict(itd_mlp_t *m, const float *x, const uint32_t *ids,
                     size_t B, float *p, float *next);

/**
 * @brief As itd_mlp_predict, and each dense input's contribution to the
 * purchase logit by input times gradient (Simonyan et al. 2013; Shrikumar
 * et al. 2016): contrib (B, n_dense) = x * d logit / d x, through the
 * trunk (its ReLU pattern at x), the wide path and the Newton inputs
 * (zero where the standardised input is clipped) and the offsets; the
 * same parameters as the score (averaged ones when averaging). One more pass down the trunk,
 * as cheap as the forward pass. Sparse ids are not attributed.
 */
void itd_mlp_predict_explain(itd_mlp_t *m, const float *x,
                             const uint32_t *ids, size_t B, float *p,
                             float *next, float *contrib);

/**
 * @brief One optimizer step on a mini-batch.
 * y: (B) purchase labels 0/1; next: (B) itd_next_t classes (or NULL to
 * train the purchase head alone). *loss gets the mean purchase BCE.
 * @returns ITD_OK; ITD_ERR_NONFINITE when the loss is not finite (the step
 * is skipped and counted).
 */
itd_err_t itd_mlp_train(itd_mlp_t *m, const float *x, const uint32_t *ids,
                        const float *y, const int *next, size_t B,
                        float *loss);

/**
 * @brief itd_mlp_train with importance weights: wt (B), each example
 * counted wt_i times (a negative kept with probability r weighs 1 / r);
 * the gradients are of the weighted mean losses, so the model learns as
 * if from the examples that were not sampled away. NULL: all 1. *loss
 * stays the unweighted mean BCE. Input statistics are not weighted.
 */
itd_err_t itd_mlp_train_weighted(itd_mlp_t *m, const float *x,
                                 const uint32_t *ids, const float *y,
                                 const int *next, const float *wt, size_t B,
                                 float *loss);

/** @brief Optimizer steps taken so far (the published model_version). */
int64_t itd_mlp_steps(const itd_mlp_t *m);
/** @brief Steps skipped for a non-finite loss. */
uint64_t itd_mlp_skipped(const itd_mlp_t *m);
/** @brief Parameter count (weights, biases, embeddings). */
size_t itd_mlp_n_params(const itd_mlp_t *m);

/** @brief Changes the learning rate from the next step on (SIGHUP reload). */
void itd_mlp_set_lr(itd_mlp_t *m, float lr);

#endif
