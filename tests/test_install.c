/*
 * test_install.c - what `cmake --install` lays out (the contents of the
 * .deb), checked in a DESTDIR: binary, units, sysusers/tmpfiles snippets,
 * default config, schemas, docs, man page; the paths inside the units
 * follow the prefix; the installed binary accepts the installed config.
 * Also the documents operators read next to them: every alert's runbook
 * anchor exists in OPERATIONS.md, and intentd(8) names every command and
 * option of the --help texts. The build folder is the one holding
 * ITD_BINARY; without cmake (or groff) those parts are skipped. The .deb
 * itself is tests/test_package.c's.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "intentd/mem.h"
#include "testutil.h"

/* Runs a shell line with output to dir/cmd.log; returns rc, *out the log
 * (caller frees). */
static int sh(const char *dir, const char *line, char **out) {
        return tu_sh(dir, line, 120000, out);
}

/* Installs the build folder of ITD_BINARY into root with prefix; returns
 * the install log (caller frees). */
static char *install_into(const char *root, const char *prefix) {
        if (!tu_have("cmake"))
                cr_skip_test("cmake not installed");
        char bin[512], line[2048];
        itd_strlcpy(bin, ITD_BINARY, sizeof bin);
        snprintf(line, sizeof line,
                 "DESTDIR='%s' cmake --install '%s' --prefix '%s'", root,
                 dirname(bin), prefix);
        char *out;
        int rc = sh(root, line, &out);
        cr_assert_eq(rc, 0, "cmake --install: rc %d\n%s", rc, out);
        return out;
}

/* Where prefix /usr puts the units, relative to the root: the build's
 * ITD_SYSTEMD_UNITDIR (systemd.pc's systemdsystemunitdir; lib/systemd/system
 * on Debian 12). */
static const char *unitdir(char *buf, size_t cap) {
        char v[200];
        tu_cmake_cache("ITD_SYSTEMD_UNITDIR", v, sizeof v);
        cr_assert_eq(v[0], '/', "ITD_SYSTEMD_UNITDIR %s is not absolute", v);
        snprintf(buf, cap, "%s", v + 1);
        return buf;
}

/* Mode of root/rel, or -1 if it does not exist. */
static int mode_of(const char *root, const char *rel) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", root, rel);
        struct stat sb;
        return stat(path, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
}

static char *read_in(const char *root, const char *rel) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", root, rel);
        char *text = tu_read_file(path);
        cr_assert_not_null(text, "cannot read %s", path);
        return text;
}

Test(install, lays_out_what_the_package_ships) {
        char root[256];
        cr_assert_not_null(tu_tmpdir(root, sizeof root));
        free(install_into(root, "/usr"));

        char ud[256], rel[512];
        unitdir(ud, sizeof ud);
        static const char *const units[] = {"intentd.service",
                                            "intentd@.service"};
        for (size_t i = 0; i < 2; i++) {
                snprintf(rel, sizeof rel, "%s/%s", ud, units[i]);
                cr_expect_eq(mode_of(root, rel), 0644, "missing %s", rel);
        }
        static const char *const files[] = {
            "usr/bin/intentd",
            "usr/lib/sysusers.d/intentd.conf",
            "usr/lib/tmpfiles.d/intentd.conf",
            "etc/intentd/intentd.yaml",
            "usr/share/intentd/event.avsc",
            "usr/share/intentd/prediction.avsc",
            "usr/share/intentd/trigger.avsc",
            "usr/share/intentd/ops/alerts.yml",
            "usr/share/intentd/ops/grafana-dashboard.json",
            "usr/share/doc/intentd/README.md.gz",
            "usr/share/doc/intentd/OPERATIONS.md.gz",
            "usr/share/doc/intentd/CONFIGURATION.md.gz",
            "usr/share/doc/intentd/METRICS.md.gz",
            "usr/share/doc/intentd/ARCHITECTURE.md.gz",
            "usr/share/doc/intentd/changelog.gz",
            "usr/share/doc/intentd/copyright",
            "usr/share/man/man8/intentd.8.gz",
        };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
                cr_expect_neq(mode_of(root, files[i]), -1, "missing %s",
                              files[i]);
        cr_expect_eq(mode_of(root, "usr/bin/intentd") & 0111, 0111,
                     "intentd is not executable");
        /* Shipped 0644 like any conffile; tmpfiles.d makes it 0640
         * root:intentd once the group exists (tests/test_units.c). */
        cr_expect_eq(mode_of(root, "etc/intentd/intentd.yaml"), 0644);

        /* Installed copies are the files of the tree. */
        static const char *const same[][2] = {
            {"etc/intentd/intentd.yaml", "config/intentd.yaml"},
            {"usr/lib/sysusers.d/intentd.conf", "systemd/intentd.sysusers"},
            {"usr/share/intentd/event.avsc", "config/event.avsc"},
            {"usr/share/intentd/ops/alerts.yml", "docs/ops/alerts.yml"},
            {"usr/share/doc/intentd/copyright", "packaging/copyright"},
        };
        for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
                char *a = read_in(root, same[i][0]);
                char *b = tu_read_src(same[i][1]);
                cr_expect_str_eq(a, b, "%s differs from %s", same[i][0],
                                 same[i][1]);
                free(a);
                free(b);
        }
        /* Compressed ones: gzip -9n (no name, no time: reproducible). */
        static const char *const gz[][2] = {
            {"usr/share/man/man8/intentd.8.gz", "docs/intentd.8"},
            {"usr/share/doc/intentd/OPERATIONS.md.gz", "docs/OPERATIONS.md"},
            {"usr/share/doc/intentd/changelog.gz", "packaging/changelog"},
        };
        for (size_t i = 0; i < sizeof gz / sizeof gz[0]; i++) {
                char line[1200], src[512];
                snprintf(line, sizeof line,
                         "gzip -dc '%s/%s' | cmp - '%s' && "
                         "gzip -9nc '%s' | cmp - '%s/%s'",
                         root, gz[i][0], tu_src(gz[i][1], src, sizeof src),
                         src, root, gz[i][0]);
                char *out;
                int rc = sh(root, line, &out);
                cr_expect_eq(rc, 0, "%s is not %s, gzip -9n: %s", gz[i][0],
                             gz[i][1], out);
                free(out);
        }
        snprintf(rel, sizeof rel, "%s/intentd.service", ud);
        char *unit = read_in(root, rel);
        cr_expect(strstr(unit, "\nExecStart=/usr/bin/intentd run --config "
                               "/etc/intentd/intentd.yaml\n"),
                  "%s", unit);
        free(unit);
}

/* The installed config holds every default and no brokers: check-config
 * says exactly that (run would refuse it), and accepts it once brokers are
 * set. */
Test(install, installed_binary_checks_the_installed_default_config) {
        char root[256], line[3072];
        cr_assert_not_null(tu_tmpdir(root, sizeof root));
        free(install_into(root, "/usr"));
        snprintf(line, sizeof line,
                 "'%s/usr/bin/intentd' check-config '%s/etc/intentd/"
                 "intentd.yaml'; echo rc=$?; "
                 "cp '%s/etc/intentd/intentd.yaml' '%s/with-brokers.yaml' && "
                 "printf 'kafka.bootstrap.servers: \"127.0.0.1:9092\"\\n' "
                 ">> '%s/with-brokers.yaml' && "
                 "'%s/usr/bin/intentd' check-config '%s/with-brokers.yaml' "
                 "&& '%s/usr/bin/intentd' --version",
                 root, root, root, root, root, root, root, root);
        char *out;
        int rc = sh(root, line, &out);
        cr_expect_eq(rc, 0, "rc %d\n%s", rc, out);
        cr_expect(strstr(out, "intentd.yaml: kafka.bootstrap.servers: not "
                              "set") && strstr(out, "rc=1"), "%s", out);
        cr_expect(strstr(out, "with-brokers.yaml: ok") &&
                      strstr(out, "intentd "), "%s", out);
        free(out);
}

Test(install, paths_inside_the_units_follow_the_prefix) {
        char root[256];
        cr_assert_not_null(tu_tmpdir(root, sizeof root));
        free(install_into(root, "/opt/intentd"));
        cr_expect_neq(mode_of(root, "opt/intentd/etc/intentd/intentd.yaml"),
                      -1, "config not under PREFIX/etc");
        cr_expect_eq(mode_of(root, "etc/intentd/intentd.yaml"), -1,
                     "a non-/usr prefix must not write to /etc");
        static const char *const units[] = {"intentd.service",
                                            "intentd@.service"};
        for (size_t i = 0; i < 2; i++) {
                char rel[256];
                snprintf(rel, sizeof rel, "opt/intentd/lib/systemd/system/%s",
                         units[i]);
                char *u = read_in(root, rel);
                cr_expect(strstr(u, "ExecStart=/opt/intentd/bin/intentd run "
                                    "--config /opt/intentd/etc/intentd/"),
                          "%s: %s", units[i], u);
                cr_expect_null(strstr(u, "/usr/bin/intentd"), "%s", units[i]);
                free(u);
        }
        char *tmpf = read_in(root, "opt/intentd/lib/tmpfiles.d/intentd.conf");
        cr_expect(strstr(tmpf, "/opt/intentd/etc/intentd "), "%s", tmpf);
        free(tmpf);
}

/* ---- the documents next to the install ---------------------------------- */

/* GitHub's heading slug: lower case, spaces to '-', other punctuation
 * dropped. */
static void slug(const char *heading, char *out, size_t cap) {
        size_t k = 0;
        for (const char *p = heading; *p && *p != '\n' && k + 1 < cap; p++) {
                unsigned char c = (unsigned char)*p;
                if (isalnum(c) || c == '-' || c == '_')
                        out[k++] = (char)tolower(c);
                else if (c == ' ')
                        out[k++] = '-';
        }
        out[k] = '\0';
}

/* 1 if the Markdown text has an anchor named a: an explicit id or the slug
 * of a heading. */
static int has_anchor(const char *md, const char *a) {
        char want[160];
        snprintf(want, sizeof want, "id=\"%s\"", a);
        if (strstr(md, want))
                return 1;
        for (const char *p = md; p; p = strchr(p, '\n')) {
                if (*p == '\n')
                        p++;
                if (*p != '#')
                        continue;
                const char *h = p;
                while (*h == '#')
                        h++;
                while (*h == ' ')
                        h++;
                char s[160];
                slug(h, s, sizeof s);
                if (!strcmp(s, a))
                        return 1;
        }
        return 0;
}

Test(docs, every_runbook_link_of_the_alerts_has_its_section) {
        char *rules = tu_read_src("docs/ops/alerts.yml");
        char *ops = tu_read_src("docs/OPERATIONS.md");
        const char *key = "docs/OPERATIONS.md#";
        size_t n = 0;
        for (const char *p = rules; (p = strstr(p, key)); n++) {
                p += strlen(key);
                char a[128];
                size_t k = 0;
                while (p[k] && p[k] != '"' && k < sizeof a - 1) {
                        a[k] = p[k];
                        k++;
                }
                a[k] = '\0';
                cr_expect(has_anchor(ops, a),
                          "OPERATIONS.md has no section #%s", a);
        }
        cr_expect_geq(n, 8, "alerts.yml links only %zu runbook sections", n);
        free(rules);
        free(ops);
}

/* The help text of `intentd ARGS`, via the built binary. */
static char *help_of(const char *dir, const char *args) {
        char line[1024];
        snprintf(line, sizeof line, "'%s' %s", ITD_BINARY, args);
        char *out;
        int rc = sh(dir, line, &out);
        cr_assert_eq(rc, 0, "intentd %s: rc %d\n%s", args, rc, out);
        return out;
}

/* The man page as plain text: roff's "\-" is a "-". */
static char *man_text(void) {
        char *roff = tu_read_src("docs/intentd.8");
        char *o = roff;
        for (const char *p = roff; *p; p++) {
                if (p[0] == '\\' && p[1] == '-') {
                        *o++ = '-';
                        p++;
                } else {
                        *o++ = *p;
                }
        }
        *o = '\0';
        return roff;
}

Test(docs, man_page_names_every_command_and_option_of_the_help) {
        char dir[256];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        char *man = man_text();
        static const char *const cmds[] = {"run",      "check-config",
                                           "broker",   "simulate",
                                           "load",     "replay",
                                           "demo"};
        char *top = help_of(dir, "--help");
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
                char needle[64];
                snprintf(needle, sizeof needle, "  %s ", cmds[i]);
                cr_expect(strstr(top, needle), "`intentd --help` lacks %s",
                          cmds[i]);
                snprintf(needle, sizeof needle, ".SY intentd\\ %s", cmds[i]);
                cr_expect(strstr(man, needle), "no synopsis of %s", cmds[i]);
        }
        /* Every --long option (and -o) of every help text. */
        for (size_t i = 0; i <= sizeof cmds / sizeof cmds[0]; i++) {
                char args[64];
                if (i == sizeof cmds / sizeof cmds[0])
                        snprintf(args, sizeof args, "--help");
                else
                        snprintf(args, sizeof args, "%s --help", cmds[i]);
                char *h = i == sizeof cmds / sizeof cmds[0]
                              ? top
                              : help_of(dir, args);
                for (const char *p = h; (p = strstr(p, "--")); p += 2) {
                        char opt[64];
                        size_t k = 0;
                        while ((isalnum((unsigned char)p[k]) || p[k] == '-') &&
                               k < sizeof opt - 1) {
                                opt[k] = p[k];
                                k++;
                        }
                        opt[k] = '\0';
                        if (k > 2)
                                cr_expect(strstr(man, opt),
                                          "intentd(8) lacks %s (from "
                                          "`intentd %s`)",
                                          opt, args);
                }
                if (h != top)
                        free(h);
        }
        cr_expect(strstr(man, "-o") != NULL);
        free(top);
        free(man);
}

/* Collapses every run of whitespace to one space, trims; in place. */
static char *squash(char *s) {
        char *o = s;
        int space = 0;
        for (const char *p = s; *p; p++) {
                if (isspace((unsigned char)*p)) {
                        space = o != s;
                        continue;
                }
                if (space)
                        *o++ = ' ';
                space = 0;
                *o++ = *p;
        }
        *o = '\0';
        return s;
}

/* SYNOPSIS lines as groff renders them, one string per entry, compared
 * with the usage lines of each `intentd COMMAND --help`: the page states
 * what the binary accepts (required and optional alike), both ways. */
Test(docs, man_synopsis_is_the_usage_of_every_help) {
        if (!tu_have("groff"))
                cr_skip_test("groff not installed");
        char dir[256], path[512], line[1200];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(line, sizeof line,
                 "groff -man -Tascii -P-cbou '%s' 2>/dev/null",
                 tu_src("docs/intentd.8", path, sizeof path));
        char *page;
        cr_assert_eq(sh(dir, line, &page), 0, "%s", page);
        char *syn = strstr(page, "\nSYNOPSIS\n");
        cr_assert_not_null(syn, "%s", page);
        syn += strlen("\nSYNOPSIS\n");
        char *end = strstr(syn, "\nDESCRIPTION\n");
        cr_assert_not_null(end);
        *end = '\0';
        char *man[32];
        size_t n_man = 0;
        for (char *p = syn; p && *p && n_man < 32;) {
                char *next = strstr(p, "\n\n");
                if (next) {
                        *next = '\0';
                        next += 2;
                }
                if (*squash(p))
                        man[n_man++] = p;
                p = next;
        }
        static const char *const cmds[] = {"run",    "check-config", "broker",
                                           "simulate", "load",       "replay",
                                           "demo",     "inspect"};
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
                char args[64];
                snprintf(args, sizeof args, "%s --help", cmds[i]);
                char *h = help_of(dir, args);
                char *stop = strstr(h, "\n\n");
                cr_assert_not_null(stop, "%s", h);
                *stop = '\0';
                cr_assert(!strncmp(h, "usage: ", 7), "%s", h);
                /* A line that does not start with "intentd" continues the
                 * usage above it: join them, then one usage per line. */
                char *body = h + 7;
                for (char *nl = strchr(body, '\n'); nl;
                     nl = strchr(nl + 1, '\n'))
                        if (strncmp(nl + 1 + strspn(nl + 1, " "), "intentd ",
                                    8))
                                *nl = ' ';
                char *use[8];
                size_t n_use = 0;
                for (char *l = body; l && n_use < 8;) {
                        char *nl = strchr(l, '\n');
                        if (nl)
                                *nl++ = '\0';
                        use[n_use++] = l;
                        l = nl;
                }
                cr_assert_gt(n_use, 0, "%s", h);
                char prefix[64];
                snprintf(prefix, sizeof prefix, "intentd %s", cmds[i]);
                for (size_t u = 0; u < n_use; u++) {
                        squash(use[u]);
                        int found = 0;
                        for (size_t m = 0; m < n_man; m++)
                                found |= !strcmp(man[m], use[u]);
                        cr_expect(found, "intentd(8) SYNOPSIS lacks \"%s\"",
                                  use[u]);
                }
                for (size_t m = 0; m < n_man; m++) {
                        size_t k = strlen(prefix);
                        if (strncmp(man[m], prefix, k) ||
                            (man[m][k] && man[m][k] != ' '))
                                continue;
                        int found = 0;
                        for (size_t u = 0; u < n_use; u++)
                                found |= !strcmp(man[m], use[u]);
                        cr_expect(found, "intentd(8) SYNOPSIS \"%s\" is not "
                                  "a usage of `intentd %s`", man[m], args);
                }
                free(h);
        }
        free(page);
}

Test(docs, man_page_renders_without_groff_warnings) {
        if (!tu_have("groff"))
                cr_skip_test("groff not installed");
        char dir[256], path[512], line[1200];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        char *out;
        snprintf(line, sizeof line, "groff -man -ww -z '%s' 2>&1",
                 tu_src("docs/intentd.8", path, sizeof path));
        int rc = sh(dir, line, &out);
        cr_expect_eq(rc, 0, "groff: rc %d\n%s", rc, out);
        cr_expect_str_eq(out, "", "groff warnings:\n%s", out);
        free(out);
}
