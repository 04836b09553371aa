/*
 * model.h - the model the engine runs, whichever it is: the MLP (mlp.h) or
 * the online logistic-regression baseline (FTRL-Proximal), behind one
 * interface for scoring, training and checkpoints.
 *
 * Both read the same inputs: x (B, n_dense) dense features and ids
 * (B, n_fields * ids_per_field) hashed sparse ids (UINT32_MAX = empty slot).
 * The logistic model gives every (field, id % emb_buckets) one weight; the
 * MLP gives it an embedding row.
 *
 * Next action: the MLP has a softmax head. The logistic baseline predicts
 * the running class frequencies of the next actions it has been trained
 * on, Laplace-smoothed ((count_k + 1) / (total + K)): a baseline that knows
 * the mix of actions but nothing about the user, which is what the MLP's
 * head must beat.
 *
 * Depends only on libc, libm and CBLAS. Deterministic for a seed and the
 * order of calls.
 * @thread one owner thread; no internal locking.
 */
#ifndef INTENTD_MODEL_H
#define INTENTD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/mlp.h"
#include "intentd/snapshot.h"

/* model.type; the symbols of daemon/conf_table.c follow this order. */
typedef enum {
        ITD_MODEL_KIND_MLP = 0,
        ITD_MODEL_KIND_LOGISTIC = 1,
} itd_model_kind_t;

/*
 * FTRL-Proximal (McMahan et al. 2013, "Ad Click Prediction: a View from
 * the Trenches", Algorithm 1): per-coordinate step alpha / (beta +
 * sqrt(sum of squared gradients)), L1 (sparsity) and L2 on the weights.
 */
typedef struct itd_ftrl_conf_s {
        float alpha;
        float beta;
        float l1;
        float l2;
} itd_ftrl_conf_t;

typedef struct itd_model_conf_s {
        int type; /* itd_model_kind_t */
        /*
         * The MLP's settings. The logistic model reads its shapes from here
         * too: n_dense, n_fields, ids_per_field, emb_buckets (weights per
         * sparse field) and max_batch; the rest is the MLP's alone.
         */
        itd_mlp_conf_t mlp;
        itd_ftrl_conf_t ftrl; /* logistic only */
} itd_model_conf_t;

typedef struct itd_model_s itd_model_t;

/** @brief Defaults for type and an input shape (MLP: itd_mlp_conf_defaults). */
void itd_model_conf_defaults(itd_model_conf_t *conf, int type, size_t n_dense,
                             size_t n_fields, size_t ids_per_field);

/**
 * @brief Hash (64-bit FNV-1a) of the settings that shape the model's state:
 * type, input shape, buckets, and for the MLP embedding width, hidden
 * layers and optimizer. Hyper-parameters that may change between runs
 * (learning rate, L2, FTRL alpha, ...) are left out, so a tuned restart
 * still resumes from its checkpoint.
 */
uint64_t itd_model_conf_hash(const itd_model_conf_t *conf);

/** @brief New model (caller owns); NULL with errstr naming the bad field. */
itd_model_t *itd_model_new(const itd_model_conf_t *conf, char *errstr,
                           size_t errstr_size);
/** @brief Frees m; NULL does nothing. */
void itd_model_destroy(itd_model_t *m);

/** @brief itd_model_kind_t of m. */
int itd_model_type(const itd_model_t *m);

/**
 * @brief Scores a batch; contract of itd_mlp_predict.
 * x: (B, n_dense); ids: (B, n_fields * ids_per_field) or NULL; p: (B);
 * next: (B, ITD_NEXT__COUNT) or NULL. B <= max_batch.
 */
void itd_model_predict(itd_model_t *m, const float *x, const uint32_t *ids,
                       size_t B, float *p, float *next);

/**
 * @brief itd_model_predict, and contrib (B, n_dense): each dense input's
 * contribution to the purchase logit (itd_mlp_predict_explain).
 * @returns 1 when contrib was written; 0 for a model that does not
 * explain (the logistic baseline), which only scores.
 */
int itd_model_predict_explain(itd_model_t *m, const float *x,
                              const uint32_t *ids, size_t B, float *p,
                              float *next, float *contrib);

/**
 * @brief One training step on a mini-batch; contract of itd_mlp_train.
 * The logistic model learns from the B examples one after another (FTRL is
 * per example) and counts the batch as one step; *loss is the mean BCE of
 * each example scored just before it was learned from.
 * @returns ITD_OK; ITD_ERR_ARG (B out of range); ITD_ERR_NONFINITE (the
 * step is skipped and counted).
 */
itd_err_t itd_model_train(itd_model_t *m, const float *x, const uint32_t *ids,
                          const float *y, const int *next, size_t B,
                          float *loss);

/**
 * @brief itd_model_train with importance weights wt (B), or NULL for all
 * 1: an example of weight w counts as w examples (a negative kept with
 * probability r weighs 1 / r), so a down-sampled stream trains the model
 * it would have trained in full, to first order. *loss stays unweighted.
 */
itd_err_t itd_model_train_weighted(itd_model_t *m, const float *x,
                                   const uint32_t *ids, const float *y,
                                   const int *next, const float *wt,
                                   size_t B, float *loss);

/** @brief Training steps so far (the published model_version). */
int64_t itd_model_steps(const itd_model_t *m);
/** @brief Steps skipped for a non-finite loss or input. */
uint64_t itd_model_skipped(const itd_model_t *m);
/** @brief Examples learned from (in steps that were taken). */
uint64_t itd_model_examples(const itd_model_t *m);
/** @brief Learned parameters (MLP: weights, biases, embeddings; logistic:
 * one weight per coordinate, bias included). */
size_t itd_model_n_params(const itd_model_t *m);

/** @brief A replica's own optimizer state besides its parameters: its
 * counts (steps: Adam's t; skipped; examples) and the MLP's moment blocks
 * (Adam's m and v, or AdaGrad's G, in the parameter layout). */
typedef struct itd_model_opt_s {
        int64_t steps;
        uint64_t skipped, examples;
} itd_model_opt_t;

/**
 * @brief The counts, and the moment blocks: *n_floats floats at the
 * pointer returned, which m owns (NULL, *n_floats 0: none, as with SGD or
 * the logistic model, whose FTRL state is its parameters).
 */
float *itd_model_opt(itd_model_t *m, itd_model_opt_t *counts,
                     size_t *n_floats);

/** @brief Sets the counts (the moments are written through
 * itd_model_opt's pointer). */
void itd_model_set_opt(itd_model_t *m, const itd_model_opt_t *counts);

/**
 * @brief Writes m to path atomically (checkpoint.h): parameters, optimizer
 * state (moments, AdaGrad accumulators, FTRL z and n, step counts) and the
 * header.
 * @param meta  borrowed, may be NULL: feature_spec_hash, config_hash
 * (0 = itd_model_conf_hash of m's conf) and created_ms (0 = now) are taken
 * from it; kind, shape, steps and examples always come from m.
 * @returns ITD_OK or ITD_ERR_IO (errstr names the file and the step); the
 * previous file at path is then untouched.
 */
itd_err_t itd_model_save(const itd_model_t *m, const char *path,
                         const itd_snapshot_meta_t *meta, char *errstr,
                         size_t errstr_size);

/**
 * @brief Replaces m's state by the checkpoint at path. A loaded model
 * predicts bit-identically, and continues training identically, to the one
 * that was saved.
 * @param expect  borrowed, may be NULL (no hash checks): the file's
 * feature_spec_hash must equal expect->feature_spec_hash, and its
 * config_hash must equal expect->config_hash (0 = itd_model_conf_hash of
 * m's conf).
 * @returns ITD_OK; ITD_ERR_NOT_FOUND (no file); ITD_ERR_IO; ITD_ERR_CORRUPT
 * (checksum, truncation, missing or mis-sized section);
 * ITD_ERR_INCOMPATIBLE (other format version, feature spec, model type,
 * shape, optimizer or config). On any failure m is unchanged and errstr
 * says which file and why ("checkpoint F was trained on feature spec
 * 0x.., this build uses 0x..").
 */
itd_err_t itd_model_load(itd_model_t *m, const char *path,
                         const itd_snapshot_meta_t *expect, char *errstr,
                         size_t errstr_size);

/** @brief New MLP learning rate from the next step (SIGHUP reload); the
 * logistic model's FTRL rates are unaffected. */
void itd_model_set_lr(itd_model_t *m, float lr);

#endif
