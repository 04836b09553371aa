/*
 * mlp_conf.c - the network's configuration: the defaults, with why each
 * value was chosen and what it measured, and the check itd_mlp_new runs
 * before it allocates anything.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mlp_int.h"

void itd_mlp_conf_defaults(itd_mlp_conf_t *conf, size_t n_dense,
                           size_t n_fields, size_t ids_per_field) {
        memset(conf, 0, sizeof(*conf));
        conf->n_dense = n_dense;
        conf->n_fields = n_fields;
        conf->ids_per_field = ids_per_field;
        conf->emb_buckets = (size_t)1 << 16;
        conf->emb_dim = 8;
        conf->n_hidden = 2;
        conf->hidden[0] = 128;
        conf->hidden[1] = 64;
        conf->max_batch = 256;
        /*
         * Online learning wants a small constant step (decaying or large
         * steps over-react to batches holding one user's burst: judged
         * progressively on the 114 Taobao users, online logistic
         * regression with a decaying schedule scores below chance, a
         * small constant step 0.63-0.68 AUC);
         * Adam's per-parameter scaling keeps it sane across layers. With
         * the wide path carrying the linear signal, 3e-4 scores the same
         * on the simulator and a little higher on the 114 Taobao tail
         * users (0.62 vs 0.59, inside the noise); 1e-3 stays the default
         * of model.learning.rate for now.
         */
        conf->optimizer = ITD_OPT_ADAM;
        conf->lr = 1e-3f;
        conf->beta1 = 0.9f;
        conf->beta2 = 0.999f;
        conf->eps = 1e-8f;
        /*
         * Embedding rows step larger than the dense layers: a row learns
         * only when its id is in the batch, a few times in a thousand
         * steps. With the wide path and standardised inputs, 0.01 and 0.1
         * score the same (simulator, 3 seeds, within 0.001 AUC).
         */
        conf->emb_lr = 0.1f;
        conf->l2 = 1e-6f;
        conf->clip = 5.0f;
        conf->loss_weight_next = 0.3f;
        conf->seed = 42;
        /*
         * The wide path over standardised inputs: progressive AUC on
         * simulator seeds 1-3 0.66-0.67 -> 0.71-0.72 (`intentd replay`),
         * Taobao tail 0.54 -> ~0.55-0.60 (noise +-0.08). The statistics
         * follow the last ~100k examples once warm. wide_lr 0.01: 0.003
         * scores a little lower on the simulator (-0.004), 0.03 and above
         * over-react (0.70 and falling).
         */
        conf->norm_inputs = 1;
        conf->norm_max_count = 1e5f;
        /*
         * Offset weights: the prior's precision, in units of the Fisher
         * information p (1 - p) o^2 an example adds (about 0.03 at a 6%
         * base rate and a log-odds offset of sd 0.7): 300 is worth some
         * 10,000 examples, so theta follows a stream that clearly prefers
         * one estimate and otherwise stays near the even mix. Measured
         * (Taobao tail users, 3 seeds / simulator seeds 1-3, progressive
         * AUC): 100: 0.683 / 0.718; 300: 0.686 / 0.718; 1000: 0.687 /
         * 0.717. No offsets unless the caller names them.
         */
        conf->offset_prior = 300.0f;
        /*
         * Newton inputs: the prior's precision in the same units (about
         * 0.06-0.09 per example for a standardised input at a 6-10% base
         * rate): 1000 is worth some 13,000 examples, so a weight moves
         * only where many examples agree, and the bursts in which labels
         * arrive move none by much. Measured, model.seed 1, intercept
         * prior 300, progressive AUC over all labelled events / the last
         * 30% (Taobao tail users; simulator): 300: 0.684 / 0.737, 0.715 /
         * 0.724; 1000: 0.694 / 0.746, 0.714 / 0.724; 3000 (before): 0.695
         * / 0.745, 0.710 / 0.725; 10,000: 0.692 / 0.737, 0.699 / 0.718.
         * UCI held-out (test_uci): 0.926 at 3000, 0.930 at 1000, 0.928
         * at 1000 with the intercept at 100 (the defaults). None unless
         * the caller names them.
         */
        conf->linear_prior = 1000.0f;
        /*
         * Their intercept: a third of the offsets' prior, about 1,700
         * examples' worth, so it follows the stream's base rate within
         * some thousands of examples (the network's own purchase bias
         * steps at the network's slow rate). Since positives wait for
         * their horizon (core/trainer.c), measured with Newton inputs
         * at 1000, model.seed 1, ECE (10 equal-mass bins) over all
         * labelled events / the last 30%, Taobao tail users: prior 300:
         * 0.015 / 0.024, 100: 0.013 / 0.023, 30: 0.011 / 0.024; simulator
         * AUC over all events 0.714, 0.715, 0.716. Faster costs on a cold
         * start: in the first horizon only positives resolve and it
         * follows them up (the two-hour Taobao file, all warm-up, seeds
         * 1-2, ECE over all events 0.025 at 300, 0.032 at 100; before
         * Newton inputs at 1000 it was 0.058 at 30, 0.030 at 100, 0.024
         * at 300); and instances that merge their changes by addition
         * (sync.c) add three near-equal intercept steps (three synced
         * engines on the simulator: AUC 0.0018 below one engine at 100;
         * before, 0.011 at 30, 0.004 at 100, 0.003 at 300).
         */
        conf->intercept_prior = 100.0f;
        /*
         * Scoring with averaged parameters over about the last 100 steps
         * (6,400 examples at batch 64). Measured, progressive AUC over
         * all labelled events / the last 30% of event time, 3 seeds
         * (Taobao tail users; simulator seed 7): off 0.684 / 0.725,
         * 0.703 / 0.712; 100 steps 0.689 / 0.736, 0.701 / 0.720; uniform
         * weights over 33 steps 0.689 / 0.732, 0.702 / 0.717; both halves
         * of the Taobao users gain alike (docs/MODEL.md).
         */
        conf->avg_steps = 100;
        conf->wide = 1;
        conf->wide_lr = 1e-2f;
}

int itd_mlp_check_conf(const itd_mlp_conf_t *c, char *errstr,
                       size_t errstr_size) {
#define BAD(...)                                                     \
        do {                                                         \
                if (errstr && errstr_size)                           \
                        snprintf(errstr, errstr_size, __VA_ARGS__);  \
                return -1;                                           \
        } while (0)
        if (c->n_hidden < 1 || c->n_hidden > ITD_MLP_MAX_HIDDEN)
                BAD("mlp n_hidden: %zu is outside 1..%d", c->n_hidden,
                    ITD_MLP_MAX_HIDDEN);
        for (size_t l = 0; l < c->n_hidden; l++)
                if (c->hidden[l] == 0)
                        BAD("mlp hidden[%zu]: 0 units", l);
        if (c->max_batch == 0)
                BAD("mlp max_batch: 0, must be at least 1");
        int emb = c->emb_dim > 0 && c->n_fields > 0 && c->ids_per_field > 0;
        if (emb && c->emb_buckets == 0)
                BAD("mlp emb_buckets: 0 with emb_dim %zu", c->emb_dim);
        if (c->n_dense + (emb ? c->n_fields * c->emb_dim : 0) == 0)
                BAD("mlp input: no dense features and no embeddings");
        if (c->optimizer != ITD_OPT_SGD && c->optimizer != ITD_OPT_ADAGRAD &&
            c->optimizer != ITD_OPT_ADAM)
                BAD("mlp optimizer: unknown value %d", (int)c->optimizer);
        if (!(c->lr > 0.0f) || !isfinite(c->lr))
                BAD("mlp lr: %g, must be a positive number", (double)c->lr);
        if (!(c->l2 >= 0.0f) || !isfinite(c->l2))
                BAD("mlp l2: %g, must be >= 0", (double)c->l2);
        if (!(c->clip >= 0.0f) || !isfinite(c->clip))
                BAD("mlp clip: %g, must be >= 0 (0 = off)", (double)c->clip);
        if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f))
                BAD("mlp beta1: %g is outside [0, 1)", (double)c->beta1);
        if (!(c->beta2 >= 0.0f && c->beta2 < 1.0f))
                BAD("mlp beta2: %g is outside [0, 1)", (double)c->beta2);
        if (!(c->eps > 0.0f) || !isfinite(c->eps))
                BAD("mlp eps: %g, must be a positive number", (double)c->eps);
        if (!(c->emb_lr >= 0.0f) || !isfinite(c->emb_lr))
                BAD("mlp emb_lr: %g, must be >= 0 (0 = lr)", (double)c->emb_lr);
        if (!(c->norm_max_count >= 0.0f) || !isfinite(c->norm_max_count))
                BAD("mlp norm_max_count: %g, must be >= 0 (0 = no cap)",
                    (double)c->norm_max_count);
        if (!(c->wide_lr >= 0.0f) || !isfinite(c->wide_lr))
                BAD("mlp wide_lr: %g, must be >= 0 (0 = lr)",
                    (double)c->wide_lr);
        if (c->n_offsets > ITD_MLP_MAX_OFFSETS)
                BAD("mlp n_offsets: %zu is more than %d", c->n_offsets,
                    ITD_MLP_MAX_OFFSETS);
        for (size_t k = 0; k < c->n_offsets; k++)
                if (c->offset_input[k] >= c->n_dense)
                        BAD("mlp offset_input[%zu]: %zu is not one of the %zu "
                            "dense inputs", k, c->offset_input[k],
                            c->n_dense);
        if (c->n_offsets && (!(c->offset_prior > 0.0f) ||
                             !isfinite(c->offset_prior)))
                BAD("mlp offset_prior: %g, must be a positive number",
                    (double)c->offset_prior);
        if (c->n_linear > ITD_MLP_MAX_LINEAR)
                BAD("mlp n_linear: %zu is more than %d", c->n_linear,
                    ITD_MLP_MAX_LINEAR);
        for (size_t k = 0; k < c->n_linear; k++)
                if (c->linear_input[k] >= c->n_dense)
                        BAD("mlp linear_input[%zu]: %zu is not one of the %zu "
                            "dense inputs", k, c->linear_input[k],
                            c->n_dense);
        if (c->n_linear && (!(c->linear_prior > 0.0f) ||
                            !isfinite(c->linear_prior)))
                BAD("mlp linear_prior: %g, must be a positive number",
                    (double)c->linear_prior);
        if (c->n_linear && (!(c->intercept_prior > 0.0f) ||
                            !isfinite(c->intercept_prior)))
                BAD("mlp intercept_prior: %g, must be a positive number",
                    (double)c->intercept_prior);
        if (!(c->loss_weight_next >= 0.0f) || !isfinite(c->loss_weight_next))
                BAD("mlp loss_weight_next: %g, must be >= 0",
                    (double)c->loss_weight_next);
        return 0;
#undef BAD
}
