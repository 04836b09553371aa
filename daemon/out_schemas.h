/*
 * out_schemas.h - which schema id each output topic's records carry in
 * their Confluent header: with output.schema_registry.url, the ids the
 * registry gave intentd's own schemas under the topic-name strategy's
 * subjects (<topic>-value); without, none (bare Avro), but for the legacy
 * output.schema_id on predictions.
 */
#ifndef INTENTD_OUT_SCHEMAS_H
#define INTENTD_OUT_SCHEMAS_H

#include <signal.h>
#include <stdint.h>

#include "intentd/conf.h"
#include "intentd/err.h"

/* Schema ids per output; -1: bare Avro. */
typedef struct itd_out_ids_s {
        int32_t prediction;
        int32_t trigger;
        int32_t event;
        int32_t risk;       /* topics.risk: the trigger schema, own id */
        int32_t audit;      /* topics.audit (with topics.control) */
} itd_out_ids_t;

/* Which schemas to resolve (run: predictions and triggers; load,
 * simulate: events). */
#define ITD_OUT_PREDICTION 1u
#define ITD_OUT_TRIGGER 2u
#define ITD_OUT_EVENT 4u
#define ITD_OUT_AUDIT 8u /* only with topics.control */

/**
 * @brief Registers (or looks up) the schemas in `which` and fills ids.
 * Transient failures (unreachable registry, 5xx) are retried with
 * backoff for about 15 s, or until *stop.
 * @returns ITD_OK; ITD_ERR_CONF (exit 78: refused, or output.schema_id
 * and output.schema_registry.url both set); ITD_ERR_IO (still failing
 * after the retries); with errstr naming the subject.
 * @thread main, at start-up.
 */
itd_err_t itd_out_schemas_resolve(const itd_conf_t *conf, unsigned which,
                                  volatile sig_atomic_t *stop,
                                  itd_out_ids_t *ids, char *errstr,
                                  size_t errstr_size);

#endif
