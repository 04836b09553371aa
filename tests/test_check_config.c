/*
 * test_check_config.c - `intentd check-config` as an operator runs it
 * before a reload: every problem of a file in one run (bad values, unknown
 * keys, the cross-option rule, what run refuses), the same -o overrides as
 * `intentd run`, a file that is not YAML as one error; and
 * itd_conf_load_all beside the all-or-nothing itd_conf_load.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/conf.h"
#include "intentd/mem.h"
#include "testutil.h"

static char dir[256];

static void setup(void) { cr_assert_not_null(tu_tmpdir(dir, sizeof dir)); }

TestSuite(check_config, .init = setup);

/* Writes dir/name with text; returns the path (static per call). */
static const char *file(const char *name, const char *text) {
        static char path[2][512];
        static int k;
        char *p = path[k++ % 2];
        snprintf(p, 512, "%s/%s", dir, name);
        cr_assert_eq(tu_write_file(p, text), 0);
        return p;
}

/* Runs intentd with args (NULL-terminated, after the binary); returns the
 * exit status, *out stdout and stderr together. */
static int intentd(char **out, const char *a0, ...) {
        char *argv[24] = {ITD_BINARY};
        va_list ap;
        va_start(ap, a0);
        int n = 1;
        for (const char *a = a0; a && n < 23; a = va_arg(ap, const char *))
                argv[n++] = (char *)a;
        va_end(ap);
        argv[n] = NULL;
        char log[512];
        snprintf(log, sizeof log, "%s/out.log", dir);
        remove(log);
        int rc = tu_run(argv, log, 30000);
        *out = tu_read_file(log);
        if (!*out)
                *out = itd_xstrdup("");
        return rc;
}

static size_t count(const char *text, const char *needle) {
        size_t n = 0;
        for (const char *p = text; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

/* Five mistakes in the file, one more that only run's checks see. */
static const char bad_yaml[] = "log:\n"
                               "  level: loud\n"
                               "  format: syslog\n"
                               "model:\n"
                               "  hidden: -3\n"
                               "triggers:\n"
                               "  enter: 0.2\n"
                               "  exit: 0.9\n"
                               "unknown_key: 1\n";

Test(check_config, reports_every_problem_in_one_run) {
        const char *path = file("bad.yaml", bad_yaml);
        char *out;
        int rc = intentd(&out, "check-config", path, NULL);
        cr_expect_eq(rc, 1, "rc %d\n%s", rc, out);
        static const char *const want[] = {
            "bad.yaml:2:10: log.level: \"loud\"",
            "bad.yaml:3:11: log.format: \"syslog\"",
            "bad.yaml:5:11: model.hidden",
            "bad.yaml:9:1: unknown_key: unknown option",
            "triggers.exit: 0.9 is above triggers.enter (0.2)",
            "kafka.bootstrap.servers: not set",
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
                cr_expect(strstr(out, want[i]), "no \"%s\" in:\n%s", want[i],
                          out);
        cr_expect(strstr(out, "bad.yaml: 6 problems"), "%s", out);
        /* One line each, every line saying who speaks. */
        cr_expect_eq(count(out, "intentd check-config: "), 7, "%s", out);
        free(out);
}

Test(check_config, takes_the_same_overrides_as_run) {
        const char *path = file("nobrokers.yaml", "log:\n  level: info\n");
        char *out;
        int rc = intentd(&out, "check-config", path, NULL);
        cr_expect_eq(rc, 1, "%s", out);
        cr_expect(strstr(out, "kafka.bootstrap.servers: not set"), "%s", out);
        free(out);

        /* The override fills the gap, in either spelling of the file. */
        rc = intentd(&out, "check-config", path, "-o",
                     "kafka.bootstrap.servers=127.0.0.1:9", NULL);
        cr_expect_eq(rc, 0, "%s", out);
        cr_expect(strstr(out, "nobrokers.yaml: ok"), "%s", out);
        free(out);
        rc = intentd(&out, "check-config", "-o",
                     "kafka.bootstrap.servers=127.0.0.1:9", "--config", path,
                     NULL);
        cr_expect_eq(rc, 0, "%s", out);
        free(out);

        /* Bad overrides are named as overrides, all of them, and run
         * refuses the same ones. */
        rc = intentd(&out, "check-config", path, "-o",
                     "kafka.bootstrap.servers=127.0.0.1:9", "-o",
                     "model.learning.rate=abc", "-o", "nokey", "-o",
                     "log.level=loud", NULL);
        cr_expect_eq(rc, 1, "%s", out);
        cr_expect(strstr(out, "-o model.learning.rate=abc: "), "%s", out);
        cr_expect(strstr(out, "-o \"nokey\": expected key=value"), "%s", out);
        cr_expect(strstr(out, "-o log.level=loud: "), "%s", out);
        cr_expect(strstr(out, ": 3 problems"), "%s", out);
        free(out);
        rc = intentd(&out, "run", "--config", path, "-o",
                     "kafka.bootstrap.servers=127.0.0.1:9", "-o",
                     "model.learning.rate=abc", NULL);
        cr_expect_eq(rc, 78, "run took what check-config refused: %s", out);
        free(out);

        /* Usage errors are usage errors. */
        rc = intentd(&out, "check-config", NULL);
        cr_expect_eq(rc, 2, "%s", out);
        free(out);
        rc = intentd(&out, "check-config", path, "extra.yaml", NULL);
        cr_expect_eq(rc, 2, "%s", out);
        free(out);
}

Test(check_config, the_state_changelog_needs_a_topic_of_its_own) {
        const char *path = file("cl.yaml",
                                "kafka:\n"
                                "  bootstrap.servers: \"127.0.0.1:9\"\n"
                                "checkpoint.dir: \"\"\n"
                                "topics:\n"
                                "  model: m\n"
                                "  changelog: m\n");
        char *out;
        int rc = intentd(&out, "check-config", path, NULL);
        cr_expect_eq(rc, 1, "%s", out);
        cr_expect(strstr(out, "cl.yaml:6:3: topics.changelog: \"m\" is also "
                              "topics.model; the state changelog needs a "
                              "topic of its own"),
                  "%s", out);
        free(out);
        rc = intentd(&out, "check-config", path, "-o", "topics.changelog=cl",
                     NULL);
        cr_expect_eq(rc, 0, "%s", out);
        free(out);
}

Test(check_config, a_file_that_is_not_yaml_is_one_error) {
        const char *path = file("broken.yaml", "log:\n  level: [info\n");
        char *out;
        int rc = intentd(&out, "check-config", path, NULL);
        cr_expect_eq(rc, 1, "%s", out);
        cr_expect(strstr(out, "YAML syntax error"), "%s", out);
        /* Not followed by complaints about the defaults it fell back to. */
        cr_expect_null(strstr(out, "bootstrap"), "%s", out);
        cr_expect_eq(count(out, "intentd check-config: "), 1, "%s", out);
        free(out);
        rc = intentd(&out, "check-config", "/nonexistent/intentd.yaml", NULL);
        cr_expect_eq(rc, 1, "%s", out);
        cr_expect(strstr(out, "cannot open"), "%s", out);
        free(out);
}

Test(check_config, load_all_applies_what_is_valid_and_counts_the_rest) {
        const char *path = file("mixed.yaml", "log:\n"
                                              "  level: loud\n"
                                              "  format: json\n"
                                              "predict:\n"
                                              "  threshold: 2\n"
                                              "metrics:\n"
                                              "  log.interval: 7s\n");
        char errstr[4096];
        size_t n = 99;
        itd_conf_t *conf = itd_conf_new();
        cr_expect_eq(itd_conf_load_all(conf, path, errstr, sizeof errstr, &n),
                     ITD_ERR_CONF);
        cr_expect_eq(n, 2, "%zu errors: %s", n, errstr);
        cr_expect(strstr(errstr, "mixed.yaml:2:10: log.level"), "%s", errstr);
        cr_expect(strstr(errstr, "\n") &&
                      strstr(errstr, "mixed.yaml:5:14: predict.threshold"),
                  "%s", errstr);
        cr_expect_eq(conf->log_format, ITD_CONF_LOG_JSON, "valid option not "
                                                          "applied");
        cr_expect_eq(conf->metrics_log_interval_ms, 7000);
        itd_conf_destroy(conf);

        /* The daemon's load stays all-or-nothing, first error only. */
        conf = itd_conf_new();
        cr_expect_eq(itd_conf_load(conf, path, errstr, sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect_null(strchr(errstr, '\n'), "%s", errstr);
        cr_expect_eq(conf->log_format, ITD_CONF_LOG_AUTO, "a bad file changed "
                                                          "the conf");
        itd_conf_destroy(conf);

        conf = itd_conf_new();
        path = file("empty.yaml", "");
        cr_expect_eq(itd_conf_load_all(conf, path, errstr, sizeof errstr, &n),
                     ITD_OK);
        cr_expect_eq(n, 0);
        path = file("list.yaml", "- a\n- b\n");
        cr_expect_eq(itd_conf_load_all(conf, path, errstr, sizeof errstr, &n),
                     ITD_ERR_PARSE, "%s", errstr);
        itd_conf_destroy(conf);
}
