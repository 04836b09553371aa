/*
 * model_int.h - what the model's own files (sync.c) read of an
 * itd_model_t besides its public face: the implementation it wraps.
 *
 * Private to model/ (and its tests).
 * @thread the model's owner thread.
 */
#ifndef INTENTD_MODEL_MODEL_INT_H
#define INTENTD_MODEL_MODEL_INT_H

#include "intentd/model.h"
#include "logistic_int.h"
#include "mlp_int.h"

/** @brief The MLP m wraps, or NULL (another type). Borrowed. */
itd_mlp_t *itd_model_mlp(itd_model_t *m);
/** @brief The logistic model m wraps, or NULL (another type). Borrowed. */
itd_logistic_t *itd_model_logistic(itd_model_t *m);
/** @brief The settings m was built from. Borrowed. */
const itd_model_conf_t *itd_model_conf(const itd_model_t *m);

#endif
