/*
 * test_units.c - the files SREs install: systemd units, sysusers/tmpfiles
 * snippets, Prometheus alert rules and the Grafana dashboard. Checked with
 * the real tools when installed (systemd-analyze, systemd-sysusers,
 * systemd-tmpfiles, promtool), else those parts are skipped; the dashboard
 * and rules are also checked against the metrics table itself.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "intentd/mem.h"
#include "prom.h"
#include "testutil.h"

static const char *const units[] = {"intentd.service", "intentd@.service"};

/* Copy of s with every `from` replaced by `to` (caller frees). */
static char *replace_all(const char *s, const char *from, const char *to) {
        size_t nf = strlen(from), nt = strlen(to), n = 0;
        for (const char *p = s; (p = strstr(p, from)); p += nf)
                n++;
        char *out = itd_xmalloc(strlen(s) + n * nt + 1);
        char *o = out;
        for (const char *p = s;;) {
                const char *q = strstr(p, from);
                if (!q) {
                        strcpy(o, p);
                        break;
                }
                memcpy(o, p, (size_t)(q - p));
                o += q - p;
                memcpy(o, to, nt);
                o += nt;
                p = q + nf;
        }
        return out;
}

/* Runs a shell line with output to dir/cmd.log; returns rc, *out the log
 * (caller frees). */
static int sh(const char *dir, const char *line, char **out) {
        return tu_sh(dir, line, 60000, out);
}
Test(units, pass_systemd_analyze_verify) {
        if (!tu_have("systemd-analyze"))
                cr_skip_test("systemd-analyze not installed");
        char dir[256];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
                char rel[64], path[512], man[512], line[2600];
                snprintf(rel, sizeof rel, "systemd/%s", units[i]);
                char *text = tu_read_src(rel);
                /* verify insists that ExecStart= binaries exist; the unit
                 * is checked, not the install, so point them at one. */
                char *copy = replace_all(text, "/usr/bin/intentd", "/bin/true");
                snprintf(path, sizeof path, "%s/%s", dir, units[i]);
                cr_assert_eq(tu_write_file(path, copy), 0);
                /* Documentation=man:intentd(8) must resolve: verify runs
                 * man(1); give it the tree's page. */
                snprintf(line, sizeof line,
                         "mkdir -p '%s/man/man8' && cp '%s' '%s/man/man8/' && "
                         "MANPATH='%s/man' systemd-analyze verify '%s'",
                         dir, tu_src("docs/intentd.8", man, sizeof man), dir,
                         dir, path);
                char *out;
                int rc = sh(dir, line, &out);
                cr_expect_eq(rc, 0, "%s: rc %d\n%s", units[i], rc, out);
                /* Unknown keys are only warnings (rc stays 0). */
                const char *bad[] = {"Unknown", "ignoring", "Failed",
                                     "Invalid", "not executable",
                                     "Warning", "deprecated"};
                for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
                        cr_expect_null(strstr(out, bad[b]), "%s: %s",
                                       units[i], out);
                free(out);
                free(copy);
                free(text);
        }
}

Test(units, declare_the_settings_operators_rely_on) {
        const char *want[] = {
            "Type=notify",
            "WatchdogSec=30s",
            "Restart=on-failure",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "User=intentd",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
            "SystemCallFilter=@system-service",
            "MemoryDenyWriteExecute=yes",
            "LockPersonality=yes",
            "ConfigurationDirectory=intentd",
        };
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
                char rel[64];
                snprintf(rel, sizeof rel, "systemd/%s", units[i]);
                char *text = tu_read_src(rel);
                for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
                        char needle[128];
                        snprintf(needle, sizeof needle, "\n%s\n", want[k]);
                        cr_expect(strstr(text, needle), "%s lacks %s",
                                  units[i], want[k]);
                }
                free(text);
        }
        char *plain = tu_read_src("systemd/intentd.service");
        cr_expect(strstr(plain, "\nExecStart=/usr/bin/intentd run --config "
                                "/etc/intentd/intentd.yaml\n"));
        cr_expect(strstr(plain, "\nStateDirectory=intentd\n"));
        free(plain);
        char *tmpl = tu_read_src("systemd/intentd@.service");
        cr_expect(strstr(tmpl, "\nExecStart=/usr/bin/intentd run --config "
                               "/etc/intentd/%i.yaml\n"));
        cr_expect(strstr(tmpl, "\nStateDirectory=intentd/%i\n"));
        free(tmpl);
}

Test(units, sysusers_and_tmpfiles_set_up_an_empty_root) {
        if (!tu_have("systemd-sysusers") || !tu_have("systemd-tmpfiles"))
                cr_skip_test("systemd-sysusers/systemd-tmpfiles not "
                             "installed");
        char dir[256], root[300], line[2048], src[2][512], path[600];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(root, sizeof root, "%s/root", dir);
        cr_assert_eq(mkdir(root, 0755), 0);
        snprintf(path, sizeof path, "%s/etc", root);
        cr_assert_eq(mkdir(path, 0755), 0);
        /* As dpkg unpacks them: folder 0755, config 0644, both root's;
         * plus an instance config an operator copied in. */
        snprintf(path, sizeof path, "%s/etc/intentd", root);
        cr_assert_eq(mkdir(path, 0755), 0);
        static const char *const cfgs[] = {"intentd.yaml", "eu.yaml"};
        for (size_t i = 0; i < 2; i++) {
                snprintf(path, sizeof path, "%s/etc/intentd/%s", root, cfgs[i]);
                cr_assert_eq(tu_write_file(path, "log:\n  level: info\n"), 0);
                cr_assert_eq(chmod(path, 0644), 0);
        }
        tu_src("systemd/intentd.sysusers", src[0], sizeof src[0]);
        tu_src("systemd/intentd.tmpfiles", src[1], sizeof src[1]);
        /* With --root, file arguments are looked up inside the root:
         * feed the snippets on stdin instead. */
        snprintf(line, sizeof line,
                 "systemd-sysusers --root='%s' - < '%s' && "
                 "systemd-tmpfiles --root='%s' --create - < '%s'",
                 root, src[0], root, src[1]);
        char *out;
        int rc = sh(dir, line, &out);
        cr_assert_eq(rc, 0, "rc %d\n%s", rc, out);
        free(out);
        snprintf(path, sizeof path, "%s/etc/passwd", root);
        char *passwd = tu_read_file(path);
        cr_assert_not_null(passwd);
        cr_expect(strstr(passwd, "intentd:x:"), "%s", passwd);
        cr_expect(strstr(passwd, ":/var/lib/intentd:"), "%s", passwd);
        free(passwd);
        struct stat sb;
        snprintf(path, sizeof path, "%s/etc/intentd", root);
        cr_assert_eq(stat(path, &sb), 0);
        cr_expect_eq(sb.st_mode & 07777, 0750);
        cr_expect_eq(sb.st_uid, 0, "config stays root's");
        gid_t gid = sb.st_gid;
        cr_expect_neq(gid, 0, "the service's group reads the config");
        for (size_t i = 0; i < 2; i++) {
                snprintf(path, sizeof path, "%s/etc/intentd/%s", root, cfgs[i]);
                cr_assert_eq(stat(path, &sb), 0);
                cr_expect_eq(sb.st_mode & 07777, 0640, "%s: may hold "
                             "credentials: not for others", cfgs[i]);
                cr_expect(sb.st_uid == 0 && sb.st_gid == gid, "%s", cfgs[i]);
        }
        snprintf(path, sizeof path, "%s/var/lib/intentd", root);
        cr_assert_eq(stat(path, &sb), 0);
        cr_expect_eq(sb.st_mode & 07777, 0750);
        cr_expect_neq(sb.st_uid, 0, "state belongs to the service user");
}

Test(units, alert_rules_pass_promtool) {
        if (!tu_have("promtool"))
                cr_skip_test("promtool not installed (Debian package "
                             "prometheus)");
        char dir[256], path[512], line[800];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(line, sizeof line, "promtool check rules '%s'",
                 tu_src("docs/ops/alerts.yml", path, sizeof path));
        char *out;
        int rc = sh(dir, line, &out);
        cr_expect_eq(rc, 0, "rc %d\n%s", rc, out);
        cr_expect(strstr(out, "SUCCESS"), "%s", out);
        free(out);
}

Test(units, every_alert_has_a_runbook_section) {
        char *text = tu_read_src("docs/ops/alerts.yml");
        const char *want[] = {"IntentdLagGrowing", "IntentdNoPredictions",
                              "IntentdAucDrop", "IntentdDeadLetterRate",
                              "IntentdCheckpointStale"};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
                char needle[96];
                snprintf(needle, sizeof needle, "- alert: %s\n", want[i]);
                cr_expect(strstr(text, needle), "missing alert %s", want[i]);
        }
        size_t n = 0;
        for (const char *p = text; (p = strstr(p, "- alert: ")); n++) {
                p += strlen("- alert: ");
                char name[64], anchor[128];
                size_t k = 0;
                while (p[k] && p[k] != '\n' && k < sizeof name - 1) {
                        name[k] = p[k];
                        k++;
                }
                name[k] = '\0';
                /* The runbook of this alert, before the next alert. */
                const char *next = strstr(p, "- alert: ");
                const char *rb = strstr(p, "runbook: ");
                cr_expect(rb && (!next || rb < next), "%s: no runbook", name);
                int len = snprintf(anchor, sizeof anchor,
                                   "runbook: \"docs/OPERATIONS.md#alert-");
                for (size_t c = 0; name[c]; c++)
                        anchor[len++] = (char)tolower((unsigned char)name[c]);
                anchor[len++] = '"';
                anchor[len] = '\0';
                cr_expect(rb && strncmp(rb, anchor, strlen(anchor)) == 0,
                          "%s: runbook must be %s", name, anchor);
        }
        cr_expect_geq(n, 5);
        free(text);
}

/* Every intentd_* / process_* name in text must be a metric of the table
 * (histograms with their _bucket/_sum/_count series). */
static void check_names(const char *what, const char *text) {
        for (const char *p = text; *p; p++) {
                int at_word = p == text || !(isalnum((unsigned char)p[-1]) ||
                                             p[-1] == '_');
                if (!at_word || (strncmp(p, "intentd_", 8) != 0 &&
                                 strncmp(p, "process_", 8) != 0))
                        continue;
                char tok[96];
                size_t k = 0;
                while ((isalnum((unsigned char)p[k]) || p[k] == '_') &&
                       k < sizeof tok - 1) {
                        tok[k] = p[k];
                        k++;
                }
                tok[k] = '\0';
                int known = 0;
                for (int id = 0; id < ITD_M__COUNT && !known; id++) {
                        const char *name =
                            itd_prom_name((itd_metric_id_t)id);
                        size_t nl = strlen(name);
                        known = strcmp(tok, name) == 0 ||
                                (strncmp(tok, name, nl) == 0 &&
                                 (!strcmp(tok + nl, "_bucket") ||
                                  !strcmp(tok + nl, "_sum") ||
                                  !strcmp(tok + nl, "_count")));
                }
                cr_expect(known, "%s uses unknown metric %s", what, tok);
                p += k - 1;
        }
}

static void collect_exprs(json_t *node, size_t *n, const char *what) {
        if (json_is_object(node)) {
                const char *key;
                json_t *val;
                json_object_foreach(node, key, val) {
                        if (!strcmp(key, "expr") && json_is_string(val)) {
                                check_names(what, json_string_value(val));
                                (*n)++;
                        } else {
                                collect_exprs(val, n, what);
                        }
                }
        } else if (json_is_array(node)) {
                size_t i;
                json_t *val;
                json_array_foreach(node, i, val) collect_exprs(val, n, what);
        }
}

Test(units, dashboard_and_alerts_use_only_metrics_we_export) {
        char path[512];
        json_error_t jerr;
        json_t *dash = json_load_file(tu_src("docs/ops/grafana-dashboard.json",
                                             path, sizeof path),
                                      0, &jerr);
        cr_assert_not_null(dash, "dashboard: line %d: %s", jerr.line,
                           jerr.text);
        cr_expect(json_is_array(json_object_get(dash, "panels")));
        cr_expect_str_eq(json_string_value(json_object_get(dash, "uid")),
                         "intentd");
        size_t n = 0;
        collect_exprs(dash, &n, "dashboard");
        cr_expect_geq(n, 20, "dashboard has %zu queries", n);
        json_decref(dash);

        char *rules = tu_read_src("docs/ops/alerts.yml");
        check_names("alerts.yml", rules);
        free(rules);
}
