/*
 * model_id.h - the identity of the model lineage a daemon scores with, as
 * prediction records carry it (model_id, config/prediction.avsc).
 *
 * "<16 hex>-<16 hex>": first the XXH64 of what makes two models comparable
 * at all -- the dense feature names in order, the sparse id layout and
 * every option that shapes features, labels or the model (windows.*,
 * session.*, labels.*, model.* but the reloadable learning rate) -- then a
 * random id drawn when the daemon starts, after it restored its
 * checkpoint. So two instances, or one instance before and after a
 * restart, never share a model_id, even when their step counts
 * (model_version) coincide; and equal first halves say two lineages are
 * of one configuration.
 */
#ifndef INTENTD_MODEL_ID_H
#define INTENTD_MODEL_ID_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/engine.h"
#include "intentd/conf.h"

/** @brief XXH64 of the feature spec and model configuration of conf and
 * eng (the first half of the id). Deterministic. */
uint64_t itd_model_fingerprint(const itd_conf_t *conf,
                               const itd_engine_t *eng);

/**
 * @brief Writes "<fingerprint>-<run id>" into out (ITD_MODEL_ID_MAX bytes)
 * with a fresh random run id (getrandom(2); the clock and pid if that
 * fails). @returns out.
 */
char *itd_model_id_new(const itd_conf_t *conf, const itd_engine_t *eng,
                       char *out);

#endif
