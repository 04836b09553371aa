/*
 * test_package.c - the .deb as apt and an operator meet it: built by cpack
 * from the build folder of ITD_BINARY (once per test run, shared by the
 * tests of this file), checked by lintian, its Depends computed from the
 * binary, and installed, upgraded, removed and purged by dpkg in a
 * throwaway root: `dpkg --root DIR --force-script-chrootless` runs the
 * maintainer scripts on this host with DPKG_ROOT=DIR, no chroot and no
 * container, and the test checks they touched nothing outside DIR. Parts
 * whose tools are missing (cpack, lintian, dpkg-dev, systemd) skip.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
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
        return tu_sh(dir, line, 180000, out);
}

/* Path of the .deb, built on first use in this test run: Criterion runs
 * each test in a child of one runner process, so the runner's pid names a
 * folder the tests of one run share, and a later run builds afresh. */
static const char *deb(char *buf, size_t cap) {
        if (!tu_have("cpack") || !tu_have("dpkg-shlibdeps") ||
            !tu_have("dpkg-deb"))
                cr_skip_test("cpack, dpkg-shlibdeps (dpkg-dev) or dpkg-deb "
                             "not installed");
        char bin[512], dir[256], line[1400];
        itd_strlcpy(bin, ITD_BINARY, sizeof bin);
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/intentd-deb-%ld",
                 base && *base ? base : "/tmp", (long)getppid());
        snprintf(buf, cap, "%s/intentd.deb", dir);
        struct stat sb;
        if (stat(buf, &sb) == 0)
                return buf;
        mkdir(dir, 0755);
        snprintf(line, sizeof line,
                 "cpack -G DEB --config '%s/CPackConfig.cmake' -B '%s' && "
                 "mv '%s'/intentd_*.deb '%s' && rm -rf '%s/_CPack_Packages'",
                 dirname(bin), dir, dir, buf, dir);
        char *out;
        int rc = sh(dir, line, &out);
        cr_assert_eq(rc, 0, "cpack: rc %d\n%s", rc, out);
        free(out);
        return buf;
}

Test(package, lintian_reports_no_error_and_no_warning) {
        if (!tu_have("lintian"))
                cr_skip_test("lintian not installed");
        char path[512], dir[256], line[1024];
        deb(path, sizeof path);
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        /* Every tag, info and pedantic included, goes to the log; errors
         * and warnings fail (an override would need its reason in
         * packaging/, and there is none). */
        snprintf(line, sizeof line,
                 "lintian --display-info --pedantic --show-overrides "
                 "--fail-on error,warning '%s'",
                 path);
        char *out;
        int rc = sh(dir, line, &out);
        cr_log_info("lintian:\n%s", out);
        cr_expect_eq(rc, 0, "lintian: rc %d\n%s", rc, out);
        cr_expect_null(strstr(out, "E: "), "%s", out);
        cr_expect_null(strstr(out, "W: "), "%s", out);
        cr_expect_null(strstr(out, "O: "), "an override crept in:\n%s", out);
        free(out);
}

/* The ", "-separated entries of a Depends value, each NUL-terminated in
 * place; returns their count. */
static size_t split_depends(char *v, char **items, size_t cap) {
        size_t n = 0;
        for (char *p = v; p && *p && n < cap;) {
                while (*p == ' ')
                        p++;
                items[n++] = p;
                p = strchr(p, ',');
                if (p)
                        *p++ = '\0';
        }
        return n;
}

static int contains(char **items, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (!strcmp(items[i], s))
                        return 1;
        return 0;
}

Test(package, depends_is_what_dpkg_shlibdeps_computes_from_the_binary) {
        char path[512], dir[256], line[2000];
        deb(path, sizeof path);
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        /* dpkg-shlibdeps wants a debian/control next to it. */
        snprintf(line, sizeof line,
                 "cd '%s' && dpkg-deb -x '%s' x && mkdir debian && "
                 "printf 'Source: intentd\\n\\nPackage: intentd\\n"
                 "Architecture: any\\n' > debian/control && "
                 "dpkg-shlibdeps -O x/usr/bin/intentd && "
                 "echo \"Depends=$(dpkg-deb -f '%s' Depends)\" && "
                 "file x/usr/bin/intentd",
                 dir, path, path);
        char *out;
        int rc = sh(dir, line, &out);
        cr_assert_eq(rc, 0, "rc %d\n%s", rc, out);
        char *computed = strstr(out, "shlibs:Depends=");
        char *shipped = strstr(out, "\nDepends=");
        cr_assert(computed && shipped, "%s", out);
        char *file = strchr(shipped + 1, '\n');
        cr_assert_not_null(file, "%s", out);
        *file++ = '\0';
        char *eol = strchr(computed, '\n');
        *eol = '\0';
        char *a[64], *b[64];
        size_t na = split_depends(computed + strlen("shlibs:Depends="), a, 64);
        size_t nb = split_depends(shipped + strlen("\nDepends="), b, 64);
        cr_expect_geq(na, 8, "too few libraries: %zu", na);
        for (size_t i = 0; i < na; i++)
                cr_expect(contains(b, nb, a[i]),
                          "the package's Depends lacks \"%s\"", a[i]);
        /* Besides the libraries only adduser (the postinst's fallback). */
        for (size_t i = 0; i < nb; i++)
                cr_expect(contains(a, na, b[i]) || !strcmp(b[i], "adduser"),
                          "Depends has \"%s\", which no library needs", b[i]);
        cr_expect(strstr(file, ", stripped"), "not stripped: %s", file);
        free(out);
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

/* ---- dpkg in a throwaway root ------------------------------------------ */

struct root {
        char dir[256];  /* scratch folder */
        char root[300]; /* the target root inside it */
        char deb[512];
};

/* dpkg on the throwaway root; returns rc, *out its output. */
static int dpkg_in(struct root *r, const char *args, char **out) {
        char line[4096];
        snprintf(line, sizeof line,
                 "dpkg --root='%s' --log='%s/dpkg.log' "
                 "--force-script-chrootless --force-depends %s",
                 r->root, r->dir, args);
        return sh(r->dir, line, out);
}

/* "Status Version" of intentd in the root, or "" when dpkg knows none. */
static char *status_of(struct root *r) {
        char line[1024];
        snprintf(line, sizeof line,
                 "dpkg-query --admindir='%s/var/lib/dpkg' -W "
                 "-f='${Status} ${Version}' intentd 2>/dev/null; true",
                 r->root);
        char *out;
        sh(r->dir, line, &out);
        return out;
}

static int stat_in(struct root *r, const char *rel, struct stat *sb) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", r->root, rel);
        return lstat(path, sb);
}

static int exists_in(struct root *r, const char *rel) {
        struct stat sb;
        return stat_in(r, rel, &sb) == 0;
}

static char *read_in(struct root *r, const char *rel) {
        char path[900];
        snprintf(path, sizeof path, "%s/%s", r->root, rel);
        return tu_read_file(path);
}

/* The numeric id of name in the root's passwd or group file, or -1. */
static long id_in(struct root *r, const char *file, const char *name) {
        char *text = read_in(r, file);
        cr_assert_not_null(text, "no %s in the root", file);
        char key[64];
        snprintf(key, sizeof key, "%s:x:", name);
        long id = -1;
        for (char *p = text; p; p = strchr(p, '\n')) {
                if (*p == '\n')
                        p++;
                if (!strncmp(p, key, strlen(key))) {
                        id = strtol(p + strlen(key), NULL, 10);
                        break;
                }
        }
        free(text);
        return id;
}

/* What the maintainer scripts would change on this host if they ignored
 * DPKG_ROOT: the user and the paths they create or delete. */
static char *host_state(const char *dir) {
        char *out;
        sh(dir,
           "getent passwd intentd; getent group intentd; "
           "ls -ld /etc/intentd /var/lib/intentd "
           "/var/lib/systemd/deb-systemd-helper-enabled/intentd.service"
           ".dsh-also /etc/systemd/system/multi-user.target.wants/"
           "intentd.service 2>&1; true",
           &out);
        return out;
}

Test(package, installs_upgrades_removes_and_purges_in_a_throwaway_root) {
        if (geteuid() != 0)
                cr_skip_test("needs root: dpkg sets the owners of the files");
        if (!tu_have("dpkg") || !tu_have("systemd-sysusers") ||
            !tu_have("systemd-tmpfiles") || !tu_have("deb-systemd-helper") ||
            !tu_have("systemctl"))
                cr_skip_test("dpkg, systemd or init-system-helpers not "
                             "installed");
        struct root r;
        char line[2048];
        char *out;
        deb(r.deb, sizeof r.deb);
        cr_assert_not_null(tu_tmpdir(r.dir, sizeof r.dir));
        snprintf(r.root, sizeof r.root, "%s/root", r.dir);
        snprintf(line, sizeof line,
                 "mkdir -p '%s/var/lib/dpkg/updates' '%s/var/lib/dpkg/info' "
                 "'%s/etc' && touch '%s/var/lib/dpkg/status'",
                 r.root, r.root, r.root, r.root);
        cr_assert_eq(sh(r.dir, line, &out), 0, "%s", out);
        free(out);
        char *host_before = host_state(r.dir);

        /* Install. */
        snprintf(line, sizeof line, "-i '%s'", r.deb);
        int rc = dpkg_in(&r, line, &out);
        cr_assert_eq(rc, 0, "dpkg -i: rc %d\n%s", rc, out);
        free(out);
        char *st = status_of(&r);
        cr_assert(!strncmp(st, "install ok installed ", 21), "%s", st);
        char want_v2[128];
        snprintf(want_v2, sizeof want_v2, "%s.1", st);
        free(st);
        /* Where Debian 12 puts each file (units: systemd.pc's
         * systemdsystemunitdir, lib/systemd/system, as debhelper does). */
        char ud[256], unit[300], tmpl[300];
        unitdir(ud, sizeof ud);
        snprintf(unit, sizeof unit, "%s/intentd.service", ud);
        cr_expect(exists_in(&r, unit), "missing %s", unit);
        snprintf(tmpl, sizeof tmpl, "%s/intentd@.service", ud);
        cr_expect(exists_in(&r, tmpl), "missing %s", tmpl);
        static const char *const files[] = {
            "usr/bin/intentd",
            "usr/lib/sysusers.d/intentd.conf",
            "usr/lib/tmpfiles.d/intentd.conf",
            "etc/intentd/intentd.yaml",
            "usr/share/doc/intentd/copyright",
            "usr/share/doc/intentd/changelog.gz",
            "usr/share/doc/intentd/OPERATIONS.md.gz",
            "usr/share/man/man8/intentd.8.gz",
            "usr/share/intentd/ops/alerts.yml",
        };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
                cr_expect(exists_in(&r, files[i]), "missing %s", files[i]);
        snprintf(line, sizeof line,
                 "dpkg-query --admindir='%s/var/lib/dpkg' -W "
                 "-f='${Conffiles}' intentd",
                 r.root);
        sh(r.dir, line, &out);
        cr_expect(strstr(out, "/etc/intentd/intentd.yaml "), "conffiles: %s",
                  out);
        free(out);
        /* postinst: the user, the folders and the config's mode. */
        long uid = id_in(&r, "etc/passwd", "intentd");
        long gid = id_in(&r, "etc/group", "intentd");
        cr_assert(uid > 0 && gid > 0, "no intentd user in the root");
        struct stat sb;
        cr_assert_eq(stat_in(&r, "etc/intentd", &sb), 0);
        cr_expect_eq(sb.st_mode & 07777, 0750);
        cr_expect(sb.st_uid == 0 && (long)sb.st_gid == gid);
        cr_assert_eq(stat_in(&r, "etc/intentd/intentd.yaml", &sb), 0);
        cr_expect_eq(sb.st_mode & 07777, 0640);
        cr_expect(sb.st_uid == 0 && (long)sb.st_gid == gid);
        cr_assert_eq(stat_in(&r, "var/lib/intentd", &sb), 0);
        cr_expect_eq(sb.st_mode & 07777, 0750);
        cr_expect_eq((long)sb.st_uid, uid);
        /* A fresh install enables nothing: the config names no broker. */
        const char *wants = "etc/systemd/system/multi-user.target.wants/"
                            "intentd.service";
        cr_expect(!exists_in(&r, wants), "enabled on a fresh install");

        /* The operator configures, enables, and the daemon checkpoints. */
        snprintf(line, sizeof line,
                 "echo '# operator edit' >> '%s/etc/intentd/intentd.yaml' && "
                 "echo ck > '%s/var/lib/intentd/checkpoint' && "
                 "systemctl --root='%s' enable intentd.service",
                 r.root, r.root, r.root);
        rc = sh(r.dir, line, &out);
        cr_assert_eq(rc, 0, "%s", out);
        free(out);
        cr_assert(exists_in(&r, wants), "systemctl enable made no link");

        /* Upgrade to a newer version of the same package. */
        char v2[600];
        snprintf(v2, sizeof v2, "%s/intentd_next.deb", r.dir);
        snprintf(line, sizeof line,
                 "dpkg-deb -R '%s' '%s/v2' && sed -i 's/^Version: "
                 "\\(.*\\)$/Version: \\1.1/' '%s/v2/DEBIAN/control' && "
                 "dpkg-deb -b '%s/v2' '%s' >/dev/null",
                 r.deb, r.dir, r.dir, r.dir, v2);
        rc = sh(r.dir, line, &out);
        cr_assert_eq(rc, 0, "%s", out);
        free(out);
        snprintf(line, sizeof line, "-i '%s'", v2);
        rc = dpkg_in(&r, line, &out);
        cr_assert_eq(rc, 0, "upgrade: rc %d\n%s", rc, out);
        cr_expect_null(strstr(out, "Configuration file"),
                       "dpkg asked about the conffile:\n%s", out);
        free(out);
        st = status_of(&r);
        cr_expect_str_eq(st, want_v2, "after the upgrade");
        free(st);
        char *yaml = read_in(&r, "etc/intentd/intentd.yaml");
        cr_assert_not_null(yaml);
        cr_expect(strstr(yaml, "# operator edit"), "the upgrade lost the "
                                                   "operator's edit");
        free(yaml);
        cr_expect(!exists_in(&r, "etc/intentd/intentd.yaml.dpkg-new") &&
                  !exists_in(&r, "etc/intentd/intentd.yaml.dpkg-dist"));
        cr_assert_eq(stat_in(&r, "etc/intentd/intentd.yaml", &sb), 0);
        cr_expect_eq(sb.st_mode & 07777, 0640);
        cr_expect(exists_in(&r, "var/lib/intentd/checkpoint"));
        cr_expect(exists_in(&r, wants), "the upgrade dropped the enable");

        /* Remove: binary and units go, config, state and enable stay. */
        rc = dpkg_in(&r, "-r intentd", &out);
        cr_assert_eq(rc, 0, "remove: rc %d\n%s", rc, out);
        free(out);
        st = status_of(&r);
        cr_expect(!strncmp(st, "deinstall ok config-files", 25), "%s", st);
        free(st);
        cr_expect(!exists_in(&r, "usr/bin/intentd"));
        cr_expect(!exists_in(&r, unit));
        cr_expect(exists_in(&r, "etc/intentd/intentd.yaml"));
        cr_expect(exists_in(&r, "var/lib/intentd/checkpoint"));

        /* Purge: nothing of the package is left but its user. */
        rc = dpkg_in(&r, "-P intentd", &out);
        cr_assert_eq(rc, 0, "purge: rc %d\n%s", rc, out);
        free(out);
        st = status_of(&r);
        cr_expect_str_eq(st, "", "dpkg still knows intentd: %s", st);
        free(st);
        cr_expect(!exists_in(&r, "etc/intentd"), "/etc/intentd left");
        cr_expect(!exists_in(&r, "var/lib/intentd"), "checkpoints left");
        cr_expect(!exists_in(&r, wants), "enable link left");
        cr_expect(id_in(&r, "etc/passwd", "intentd") > 0,
                  "system users stay (Debian policy)");

        char *host_after = host_state(r.dir);
        cr_expect_str_eq(host_after, host_before,
                         "the maintainer scripts changed this host");
        free(host_before);
        free(host_after);
}
