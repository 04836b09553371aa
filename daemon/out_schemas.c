/*
 * out_schemas.c - output schema ids from the registry at start-up (see
 * out_schemas.h).
 */
#include "out_schemas.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "intentd/codec.h"
#include "intentd/control.h"
#include "intentd/log.h"
#include "intentd/registry.h"

#define ATTEMPTS 6           /* 0.5 + 1 + 2 + 4 + 8 s of waiting */
#define FIRST_BACKOFF_MS 500

static void sleep_ms(int64_t ms, volatile sig_atomic_t *stop) {
        /* In slices, so a stop signal is not kept waiting. */
        while (ms > 0 && !(stop && *stop)) {
                int64_t s = ms < 100 ? ms : 100;
                struct timespec ts = {0, (long)s * 1000000L};
                nanosleep(&ts, NULL);
                ms -= s;
        }
}

static itd_err_t resolve_one(const itd_conf_t *conf, const char *topic,
                             const char *schema, volatile sig_atomic_t *stop,
                             int32_t *id, char *errstr, size_t errstr_size) {
        char subject[300], why[1024] = "stopped before an answer";
        snprintf(subject, sizeof subject, "%s-value", topic);
        int64_t backoff = FIRST_BACKOFF_MS;
        itd_err_t err = ITD_ERR_IO;
        for (int attempt = 1; attempt <= ATTEMPTS && !(stop && *stop);
             attempt++) {
                err = itd_registry_register(
                    conf->output_schema_registry_url,
                    conf->output_schema_registry_user_info,
                    conf->input_schema_registry_timeout_ms, subject, schema,
                    conf->output_schema_registry_auto_register, id, why,
                    sizeof why);
                if (err != ITD_ERR_IO)
                        break;
                if (attempt < ATTEMPTS) {
                        itd_log(ITD_LOG_WARNING, "registry",
                                "subject \"%s\": %s; retrying in %lld ms",
                                subject, why, (long long)backoff);
                        sleep_ms(backoff, stop);
                        backoff *= 2;
                }
        }
        if (err == ITD_OK) {
                itd_log(ITD_LOG_NOTICE, "registry",
                        "subject \"%s\": schema id %d", subject, (int)*id);
                return ITD_OK;
        }
        snprintf(errstr, errstr_size, "output.schema_registry.url: subject "
                 "\"%s\": %s", subject, why);
        return err == ITD_ERR_IO ? ITD_ERR_IO : ITD_ERR_CONF;
}

itd_err_t itd_out_schemas_resolve(const itd_conf_t *conf, unsigned which,
                                  volatile sig_atomic_t *stop,
                                  itd_out_ids_t *ids, char *errstr,
                                  size_t errstr_size) {
        *ids = (itd_out_ids_t){-1, -1, -1, -1, -1};
        if (!*conf->output_schema_registry_url) {
                /* Legacy: a hand-managed id for predictions only; the other
                 * outputs have other schemas, so no id of theirs is
                 * known. */
                ids->prediction = (int32_t)conf->output_schema_id;
                return ITD_OK;
        }
        if (conf->output_schema_id >= 0) {
                snprintf(errstr, errstr_size,
                         "output.schema_id (%lld) and "
                         "output.schema_registry.url are both set: the "
                         "registry gives each output its own id; remove "
                         "output.schema_id",
                         (long long)conf->output_schema_id);
                return ITD_ERR_CONF;
        }
        struct {
                unsigned bit;
                const char *topic, *schema;
                int32_t *id;
        } outs[] = {
            {ITD_OUT_PREDICTION, conf->topic_predictions,
             itd_schema_prediction_avsc, &ids->prediction},
            {ITD_OUT_TRIGGER, conf->topic_triggers, itd_schema_trigger_avsc,
             &ids->trigger},
            {ITD_OUT_EVENT, conf->topic_events, itd_schema_event_avsc,
             &ids->event},
            /* risk triggers: trigger records on a topic of their own */
            {ITD_OUT_TRIGGER, conf->topic_risk, itd_schema_trigger_avsc,
             &ids->risk},
            /* acknowledgements of control records, when those are read */
            {ITD_OUT_AUDIT, *conf->topic_control ? conf->topic_audit : "",
             itd_schema_audit_avsc, &ids->audit},
        };
        for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
                if (!(which & outs[i].bit) || !*outs[i].topic)
                        continue;
                itd_err_t err = resolve_one(conf, outs[i].topic,
                                            outs[i].schema, stop, outs[i].id,
                                            errstr, errstr_size);
                if (err)
                        return err;
        }
        return ITD_OK;
}
