/*
 * conf_parts.c - itd_conf_t -> the settings of the parts (conf_parts.h).
 */
#include "conf_parts.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "intentd/state.h"

void itd_conf_to_state(const itd_conf_t *conf,
                                 itd_state_conf_t *sc) {
        memset(sc, 0, sizeof *sc);
        sc->n_windows = conf->n_windows;
        for (size_t i = 0; i < conf->n_windows && i < ITD_WINDOWS_MAX; i++)
                sc->window_ms[i] = conf->windows_ms[i];
        sc->allowed_lateness_ms = conf->windows_allowed_lateness_ms;
        sc->session_gap_ms = conf->session_gap_ms;
        sc->idle_ttl_ms = conf->state_idle_ttl_ms;
        sc->max_users = (size_t)conf->state_max_users;
}

void itd_conf_to_triggers(const itd_conf_t *conf, itd_trigger_conf_t *tc) {
        memset(tc, 0, sizeof *tc);
        tc->rule = (itd_trigger_rule_t)conf->triggers_rule;
        tc->enter = (float)conf->triggers_enter;
        tc->exit = (float)conf->triggers_exit;
        tc->top_percent = conf->triggers_top_percent;
        tc->exit_top_percent = conf->triggers_exit_top_percent;
        tc->lift = conf->triggers_lift;
        tc->exit_lift = conf->triggers_exit_lift;
        tc->half_life_events = (uint64_t)conf->triggers_half_life;
        tc->min_events = (uint64_t)conf->triggers_min_events;
        tc->max_event_age_ms = conf->triggers_max_event_age_ms;
        tc->cooldown_ms = conf->triggers_cooldown_ms;
        tc->max_users = (size_t)conf->triggers_max_users;
}

itd_err_t itd_conf_to_engine(const itd_conf_t *conf, itd_engine_conf_t *ec,
                               char *errstr, size_t errstr_size) {
        memset(ec, 0, sizeof *ec);
        itd_state_conf_t *sc = &ec->part.state;
        itd_conf_to_state(conf, sc);
        if (itd_state_conf_check(sc, errstr, errstr_size) != ITD_OK)
                return ITD_ERR_CONF;
        size_t dim = itd_features_dim(sc);

        itd_conf_to_triggers(conf, &ec->part.triggers);
        /* no event for 10 s: idle (beyond the allowed lateness) */
        ec->part.idle_ms = 10000;
        itd_partition_risk_conf_t *rc = &ec->part.risk;
        rc->train_threshold = (float)conf->risk_train_threshold;
        rc->train_weight = (float)conf->risk_train_weight;
        rc->triggers_on = conf->topic_risk && conf->topic_risk[0] != '\0';
        rc->trigger_enter = (float)conf->risk_trigger_enter;
        rc->trigger_exit = (float)conf->risk_trigger_exit;
        rc->trigger_cooldown_ms = conf->risk_trigger_cooldown_ms;

        itd_labeler_conf_t *lc = &ec->part.labels;
        lc->dim = dim;
        lc->n_ids = ITD_SPARSE_IDS;
        lc->horizon_ms = conf->labels_horizon_ms;
        lc->session_gap_ms = conf->session_gap_ms;
        lc->max_pending = (size_t)conf->labels_max_pending;
        lc->max_pending_per_user = 256;
        lc->policy = conf->labels_policy;

        itd_model_conf_t *mc = &ec->model;
        itd_model_conf_defaults(mc, conf->model_type, dim, ITD_SPARSE_FIELDS,
                                ITD_SPARSE_SLOTS);
        mc->mlp.n_hidden = conf->n_model_hidden;
        for (size_t i = 0; i < conf->n_model_hidden && i < ITD_MLP_MAX_HIDDEN;
             i++)
                mc->mlp.hidden[i] = (size_t)conf->model_hidden[i];
        mc->mlp.emb_buckets = (size_t)conf->model_embedding_buckets;
        mc->mlp.emb_dim = (size_t)conf->model_embedding_dim;
        mc->mlp.optimizer = (itd_opt_t)conf->model_optimizer;
        mc->mlp.lr = (float)conf->model_learning_rate;
        mc->mlp.l2 = (float)conf->model_l2;
        mc->mlp.loss_weight_next = (float)conf->model_loss_weight_next;
        mc->mlp.seed = (uint64_t)conf->model_seed;
        mc->mlp.wide = conf->model_wide_learning_rate > 0.0;
        mc->mlp.wide_lr = (float)conf->model_wide_learning_rate;
        mc->mlp.emb_lr = (float)conf->model_embedding_learning_rate;
        mc->mlp.norm_inputs = conf->model_inputs_standardize;
        mc->mlp.avg_steps = (size_t)conf->model_average_steps;
        if (conf->model_user_offset) {
                /* the user's propensity, two ways (docs/FEATURES.md) */
                static const char *const offsets[] = {"label_logodds",
                                                      "purchase_logodds"};
                char nm[128];
                for (size_t k = 0; k < 2; k++)
                        for (size_t i = 0; i < dim; i++)
                                if (!strcmp(itd_features_name(sc, i, nm,
                                                              sizeof nm),
                                            offsets[k]))
                                        mc->mlp.offset_input
                                            [mc->mlp.n_offsets++] = i;
        }
        if (conf->model_linear_newton)
                /* what the user is doing now (docs/FEATURES.md) */
                for (size_t i = 0; i < dim; i++)
                        if (!itd_features_lifetime(sc, i) &&
                            mc->mlp.n_linear < ITD_MLP_MAX_LINEAR)
                                mc->mlp.linear_input[mc->mlp.n_linear++] = i;
        ec->train_batch = (size_t)conf->model_batch_size;
        ec->neg_sample_rate = (float)conf->model_negative_sample_rate;
        ec->hold_positives = (size_t)conf->model_positives_hold;
        ec->score_span_ms = conf->model_score_span_ms;
        ec->threshold = (float)conf->predict_threshold;
        ec->explain_k = (size_t)conf->predict_explain;
        return ITD_OK;
}

itd_engine_t *itd_conf_new_engine(const itd_conf_t *conf, char *errstr,
                                   size_t errstr_size) {
        itd_engine_conf_t ec;
        if (itd_conf_to_engine(conf, &ec, errstr, errstr_size) != ITD_OK)
                return NULL;
        return itd_engine_new(&ec, errstr, errstr_size);
}

size_t itd_conf_workers(const itd_conf_t *conf) {
        if (conf->pipeline_workers > 0)
                return (size_t)conf->pipeline_workers;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        return cores < 1 ? 1 : cores > 8 ? 8 : (size_t)cores;
}

itd_workers_t *itd_conf_new_workers(const itd_conf_t *conf, char *errstr,
                                    size_t errstr_size) {
        size_t n = itd_conf_workers(conf);
        itd_engine_t *engs[ITD_WORKERS_MAX] = {0};
        if (n > ITD_WORKERS_MAX)
                n = ITD_WORKERS_MAX;
        for (size_t i = 0; i < n; i++) {
                engs[i] = itd_conf_new_engine(conf, errstr, errstr_size);
                if (!engs[i]) {
                        for (size_t k = 0; k < i; k++)
                                itd_engine_destroy(engs[k]);
                        return NULL;
                }
        }
        return itd_workers_new(engs, n, errstr, errstr_size);
}

void itd_conf_to_input(const itd_conf_t *conf, itd_input_conf_t *ic) {
        memset(ic, 0, sizeof *ic);
        ic->format = conf->input_format;
        ic->framing = conf->input_framing;
        ic->schemas_dir = conf->input_schemas_dir;
        ic->registry_url = conf->input_schema_registry_url;
        ic->registry_user_info = conf->input_schema_registry_user_info;
        ic->registry_timeout_ms = conf->input_schema_registry_timeout_ms;
        ic->max_future_ms = conf->input_max_future_ms;
        ic->max_string_bytes = (size_t)conf->input_max_string_bytes;
        ic->max_message_bytes = (size_t)conf->input_max_message_bytes;
}

void itd_conf_input_defaults(itd_input_conf_t *ic) {
        itd_conf_t *conf = itd_conf_new();
        itd_conf_to_input(conf, ic);
        /* the defaults name no schema source: nothing to borrow */
        ic->schemas_dir = ic->registry_url = ic->registry_user_info = "";
        itd_conf_destroy(conf);
}

static json_t *jduration(int64_t ms) {
        char buf[32];
        return json_string(itd_duration_format(ms, buf, sizeof buf));
}

/* A number, or null when it is not finite (JSON has no NaN). */
static json_t *jnum(double v) {
        return isfinite(v) ? json_real(v) : json_null();
}

json_t *itd_conf_report_json(const itd_conf_t *conf) {
        static const char *const model_types[] = {"mlp", "logistic"};
        static const char *const optimizers[] = {"sgd", "adagrad", "adam"};
        json_t *o = json_object();
        json_t *w = json_array(), *h = json_array();
        for (size_t i = 0; i < conf->n_windows; i++)
                json_array_append_new(w, jduration(conf->windows_ms[i]));
        for (size_t i = 0; i < conf->n_model_hidden; i++)
                json_array_append_new(h, json_integer(conf->model_hidden[i]));
        json_object_set_new(o, "windows", w);
        json_object_set_new(o, "windows.allowed_lateness",
                            jduration(conf->windows_allowed_lateness_ms));
        json_object_set_new(o, "session.gap", jduration(conf->session_gap_ms));
        json_object_set_new(o, "state.idle_ttl",
                            jduration(conf->state_idle_ttl_ms));
        json_object_set_new(o, "state.max_users",
                            json_integer(conf->state_max_users));
        json_object_set_new(o, "labels.horizon",
                            jduration(conf->labels_horizon_ms));
        json_object_set_new(o, "labels.max_pending",
                            json_integer(conf->labels_max_pending));
        json_object_set_new(
            o, "model.type",
            json_string(conf->model_type >= 0 && conf->model_type < 2
                            ? model_types[conf->model_type]
                            : "?"));
        json_object_set_new(o, "model.hidden", h);
        json_object_set_new(o, "model.embedding.buckets",
                            json_integer(conf->model_embedding_buckets));
        json_object_set_new(o, "model.embedding.dim",
                            json_integer(conf->model_embedding_dim));
        json_object_set_new(
            o, "model.optimizer",
            json_string(conf->model_optimizer >= 0 &&
                                conf->model_optimizer < 3
                            ? optimizers[conf->model_optimizer]
                            : "?"));
        json_object_set_new(o, "model.learning.rate",
                            jnum(conf->model_learning_rate));
        json_object_set_new(o, "model.l2", jnum(conf->model_l2));
        json_object_set_new(o, "model.batch.size",
                            json_integer(conf->model_batch_size));
        json_object_set_new(o, "model.seed", json_integer(conf->model_seed));
        json_object_set_new(o, "model.loss.weight.next",
                            jnum(conf->model_loss_weight_next));
        json_object_set_new(o, "pipeline.workers",
                            json_integer((json_int_t)itd_conf_workers(conf)));
        json_object_set_new(o, "predict.threshold",
                            jnum(conf->predict_threshold));
        return o;
}
