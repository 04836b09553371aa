/*
 * test_out_schemas.c - which schema id each output carries without a
 * registry (daemon/out_schemas.h): bare Avro, or the legacy
 * output.schema_id on predictions only; output.schema_id beside
 * output.schema_registry.url is a configuration error, in `run` (exit 78)
 * and in `check-config` alike. Registration itself is tested end to end
 * in test_it_registry_out.c.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "intentd/conf.h"
#include "out_schemas.h"

static itd_conf_t *conf_of(const char *schema_id, const char *url) {
        char err[256];
        itd_conf_t *c = itd_conf_new();
        cr_assert_eq(itd_conf_set(c, "output.schema_id", schema_id, err,
                                  sizeof err), ITD_OK, "%s", err);
        cr_assert_eq(itd_conf_set(c, "output.schema_registry.url", url, err,
                                  sizeof err), ITD_OK, "%s", err);
        cr_assert_eq(itd_conf_set(c, "kafka.bootstrap.servers",
                                  "127.0.0.1:1", err, sizeof err), ITD_OK);
        return c;
}

Test(out_schemas, without_a_registry_only_predictions_may_carry_an_id) {
        char err[256];
        itd_out_ids_t ids;
        itd_conf_t *c = conf_of("-1", "");
        cr_expect_eq(itd_out_schemas_resolve(c, 7, NULL, &ids, err,
                                             sizeof err), ITD_OK);
        cr_expect(ids.prediction == -1 && ids.trigger == -1 &&
                  ids.event == -1);
        itd_conf_destroy(c);
        c = conf_of("7", "");
        cr_expect_eq(itd_out_schemas_resolve(c, 7, NULL, &ids, err,
                                             sizeof err), ITD_OK);
        cr_expect_eq(ids.prediction, 7);
        cr_expect_eq(ids.trigger, -1, "a trigger is not a prediction");
        cr_expect_eq(ids.event, -1, "an event is not a prediction");
        itd_conf_destroy(c);
}

Test(out_schemas, an_id_beside_a_registry_is_refused_by_run_and_check) {
        char err[512];
        itd_out_ids_t ids;
        itd_conf_t *c = conf_of("7", "http://127.0.0.1:1");
        cr_expect_eq(itd_out_schemas_resolve(c, 7, NULL, &ids, err,
                                             sizeof err), ITD_ERR_CONF);
        cr_expect(strstr(err, "output.schema_id"), "%s", err);
        cr_expect_geq(itd_conf_check_run(c, NULL, err, sizeof err), 1);
        cr_expect(strstr(err, "output.schema_id"), "%s", err);
        itd_conf_destroy(c);
        c = conf_of("-1", "ftp://registry");
        cr_expect_geq(itd_conf_check_run(c, NULL, err, sizeof err), 1);
        cr_expect(strstr(err, "output.schema_registry.url"), "%s", err);
        itd_conf_destroy(c);
}
