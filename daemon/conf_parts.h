/*
 * conf_parts.h - the daemon's options as the settings of its parts: the
 * one place where itd_conf_t becomes an itd_engine_conf_t (core/ takes no
 * configuration object) or a decoder's itd_input_conf_t (the option
 * table holds the defaults; pipeline/ repeats none of them).
 *
 * @thread any; no shared state.
 */
#ifndef INTENTD_DAEMON_CONF_PARTS_H
#define INTENTD_DAEMON_CONF_PARTS_H

#include <stddef.h>

#include <jansson.h>

#include "intentd/conf.h"
#include "intentd/engine.h"
#include "intentd/input.h"
#include "intentd/workers.h"

/**
 * @brief Fills ec from conf: the state, labels, triggers and model
 * settings, the model shaped by the features the state makes.
 * @returns ITD_OK, or ITD_ERR_CONF with errstr naming what is wrong.
 */
itd_err_t itd_conf_to_engine(const itd_conf_t *conf, itd_engine_conf_t *ec,
                               char *errstr, size_t errstr_size);

/** @brief The trigger settings of conf's triggers.* options. */
void itd_conf_to_triggers(const itd_conf_t *conf, itd_trigger_conf_t *tc);

/** @brief The state part of itd_conf_to_engine, unchecked (for the
 * feature width of a configuration still being checked). */
void itd_conf_to_state(const itd_conf_t *conf, itd_state_conf_t *sc);

/**
 * @brief itd_conf_to_engine then itd_engine_new.
 * @returns the engine (caller owns), or NULL with errstr.
 */
itd_engine_t *itd_conf_new_engine(const itd_conf_t *conf, char *errstr,
                                   size_t errstr_size);

/** @brief conf's `pipeline.workers`, 0 resolved: the online cores, at
 * most 8. */
size_t itd_conf_workers(const itd_conf_t *conf);

/**
 * @brief itd_conf_workers(conf) engines from conf, as one set of workers
 * (workers.h).
 * @returns the set (caller owns), or NULL with errstr.
 */
itd_workers_t *itd_conf_new_workers(const itd_conf_t *conf, char *errstr,
                                    size_t errstr_size);

/** @brief The decoder's settings from conf's input.* options; strings
 * are borrowed from conf (valid while it lives). */
void itd_conf_to_input(const itd_conf_t *conf, itd_input_conf_t *ic);

/** @brief The decoder's settings from the option table's defaults (for
 * tests and benchmarks); strings are static. */
void itd_conf_input_defaults(itd_input_conf_t *ic);

/** @brief The options that shape an offline evaluation (windows, state,
 * labels, model, predict.threshold) as a JSON object, for replay's
 * report (itd_report_run_t.config). New reference. (A generic dump of
 * every option needs an accessor on the option table.) */
json_t *itd_conf_report_json(const itd_conf_t *conf);

#endif
