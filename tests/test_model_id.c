/*
 * test_model_id.c - the model identity stamped on predictions
 * (daemon/model_id.h): the same configuration gives the same first half,
 * every start (or restore) a new second half, and a change of what shapes
 * the model another first half; the engine stamps it on every prediction.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <regex.h>
#include <string.h>

#include "conf_parts.h"
#include "intentd/engine.h"
#include "intentd/log.h"
#include "intentd/conf.h"
#include "model_id.h"

static itd_engine_t *engine_of(itd_conf_t *conf) {
        char err[256];
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert(eng, "%s", err);
        return eng;
}

Test(model_id, a_new_run_never_reuses_an_id) {
        itd_conf_t *conf = itd_conf_new();
        itd_engine_t *a = engine_of(conf), *b = engine_of(conf);
        char ida[ITD_MODEL_ID_MAX], idb[ITD_MODEL_ID_MAX],
            idc[ITD_MODEL_ID_MAX];
        itd_model_id_new(conf, a, ida);
        itd_model_id_new(conf, b, idb);
        itd_model_id_new(conf, a, idc); /* a restart of a */
        regex_t re;
        cr_assert_eq(regcomp(&re, "^[0-9a-f]{16}-[0-9a-f]{16}$",
                             REG_EXTENDED | REG_NOSUB), 0);
        cr_expect_eq(regexec(&re, ida, 0, NULL, 0), 0, "%s", ida);
        regfree(&re);
        /* Same configuration: same fingerprint; every run its own id. */
        cr_expect_eq(strncmp(ida, idb, 16), 0, "%s %s", ida, idb);
        cr_expect_neq(strcmp(ida, idb), 0);
        cr_expect_neq(strcmp(ida, idc), 0);
        cr_expect_eq(itd_model_fingerprint(conf, a),
                     itd_model_fingerprint(conf, b));

        /* What shapes the model changes the fingerprint; the (reloadable)
         * learning rate does not. */
        char err[256];
        uint64_t base = itd_model_fingerprint(conf, a);
        cr_assert_eq(itd_conf_set(conf, "model.learning.rate", "0.01", err,
                                  sizeof err), ITD_OK);
        cr_expect_eq(itd_model_fingerprint(conf, a), base);
        cr_assert_eq(itd_conf_set(conf, "model.hidden", "32,16", err,
                                  sizeof err), ITD_OK);
        cr_expect_neq(itd_model_fingerprint(conf, a), base);
        cr_assert_eq(itd_conf_set(conf, "model.hidden", "128,64", err,
                                  sizeof err), ITD_OK);
        cr_assert_eq(itd_conf_set(conf, "windows.spans", "5m,1h", err,
                                  sizeof err), ITD_OK);
        itd_engine_t *c = engine_of(conf); /* other feature names */
        cr_expect_neq(itd_model_fingerprint(conf, c), base);

        /* The engine stamps it, with the event's own identity. */
        itd_engine_set_model_id(a, ida);
        itd_row_t in = {0};
        strcpy(in.ev.user_id, "u1");
        itd_row_decoded(&in, 0, 9);
        strcpy(in.ev.event_id, "e-9");
        strcpy(in.ev.session_id, "s-1");
        in.ev.ts_ms = 1700000000000LL;
        in.ev.type = ITD_EV_ADD_TO_CART;
        in.ev.price = NAN;
        cr_assert_eq(itd_engine_process(a, "t", &in, 1, itd_now_wall_ms(),
                                        NULL, 0),
                     ITD_OK);
        cr_assert_eq(in.outcome, ITD_OUT_PREDICTED);
        const itd_prediction_t out = in.pred;
        cr_expect_str_eq(out.model_id, ida);
        cr_expect_str_eq(out.event_id, "e-9");
        cr_expect_str_eq(out.session_id, "s-1");
        cr_expect_eq(out.event_type, ITD_EV_ADD_TO_CART);
        itd_engine_destroy(a);
        itd_engine_destroy(b);
        itd_engine_destroy(c);
        itd_conf_destroy(conf);
}
