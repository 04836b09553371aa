/*
 * test_it_runbook.c - docs/OPERATIONS.md, run. Every command line of its
 * ```sh blocks must be in the table below, either run here (with the
 * documented outcome, exit status included, checked) or with the reason
 * it cannot run here and the test that covers it instead; a command added
 * to the runbook without a row fails the first test, a row whose command
 * left the runbook too.
 *
 * The second test is the runbook as an operator follows it, in a
 * throwaway root R instead of /: `cmake --install` of this build folder,
 * sysusers/tmpfiles, check-config refusing the shipped file until the
 * brokers are set, the scale-out commands, then the service: systemd is
 * not running here, so `systemctl enable` runs offline (--root=R) and
 * start, reload and stop run what the installed unit's ExecStart= and
 * ExecReload= lines say, with the environment the unit gives (a notify
 * socket, STATE_DIRECTORY, Environment=) and SIGTERM for stop; the health
 * and Kafka commands (curl, kcat) run as written against it and the
 * embedded broker. Paths, BROKER, TOPIC and (when 9464 is taken) the port
 * are substituted; nothing else of a command is changed.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <ctype.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "intentd/log.h"
#include "intentd/mem.h"
#include "testutil.h"

/* ---- the runbook's commands --------------------------------------------- */

enum how { RUN, ELSEWHERE };

static const struct {
        const char *cmd;
        enum how how;
        const char *why; /* ELSEWHERE: why not here, and what covers it */
} table[] = {
    {"cmake -S . -B build -DCMAKE_BUILD_TYPE=Release", ELSEWHERE,
     "how the build folder under test was made (make build)"},
    {"cmake --build build -j", ELSEWHERE, "as above"},
    {"cd build && cpack -G DEB", ELSEWHERE,
     "tests/test_package.c builds the .deb with cpack; the file name is "
     "checked here"},
    {"lintian intentd_0.1.0_amd64.deb", ELSEWHERE,
     "tests/test_package.c runs lintian on the .deb"},
    {"apt install ./intentd_0.1.0_amd64.deb", ELSEWHERE,
     "tests/test_package.c installs, upgrades and purges it with dpkg in a "
     "throwaway root"},
    {"cmake --install build --prefix /usr", RUN, NULL},
    {"systemd-sysusers intentd.conf && systemd-tmpfiles --create "
     "intentd.conf",
     RUN, NULL},
    {"systemctl daemon-reload", ELSEWHERE,
     "no systemd manager here; tests/test_units.c runs systemd-analyze "
     "verify on the units"},
    {"intentd check-config /etc/intentd/intentd.yaml", RUN, NULL},
    {"systemctl enable --now intentd", RUN, NULL},
    {"systemctl status intentd", RUN, NULL},
    {"systemctl reload intentd", RUN, NULL},
    {"systemctl stop intentd", RUN, NULL},
    {"journalctl -u intentd -f", ELSEWHERE,
     "needs journald; the lines it would show are checked at stop"},
    {"journalctl -u intentd -e", ELSEWHERE, "as above"},
    {"cd /etc/intentd", RUN, NULL},
    {"sed 's/127.0.0.1:9464/127.0.0.1:9465/' intentd.yaml > a.yaml", RUN,
     NULL},
    {"sed 's/127.0.0.1:9464/127.0.0.1:9466/' intentd.yaml > b.yaml", RUN,
     NULL},
    {"chgrp intentd a.yaml b.yaml && chmod 0640 a.yaml b.yaml", RUN, NULL},
    {"intentd check-config a.yaml && intentd check-config b.yaml", RUN,
     NULL},
    {"systemctl enable --now intentd@a intentd@b", RUN,
     "enabled here; starting them is starting intentd.service with another "
     "file, done above"},
    {"curl -s localhost:9464/livez", RUN, NULL},
    {"curl -s localhost:9464/readyz", RUN, NULL},
    {"kcat -b BROKER -L -t TOPIC | grep -c '^ *partition '", RUN, NULL},
    {"kafka-consumer-groups.sh --describe --group intentd", ELSEWHERE,
     "Kafka's own tool, not in Debian; the group's state shows in "
     "/readyz and the assigned/revoking lines"},
    {"kcat -C -b BROKER -t intentd.dead_letter -o -10 -e -f '%h\\n%s\\n\\n'",
     RUN, NULL},
    {"kafka-topics.sh --create --topic intentd.changelog --partitions "
     "<partitions of the events topic> --replication-factor 3 --config "
     "cleanup.policy=compact",
     ELSEWHERE,
     "Kafka's own tool, not in Debian, and the embedded broker has neither "
     "CreateTopics nor topic configurations; tests/test_it_changelog.c "
     "makes the changelog with `intentd broker --topics` and runs it"},
};
#define N_TABLE (sizeof table / sizeof table[0])

/* Every command line of the ```sh blocks of text, in order: indentation
 * and trailing `# comments` dropped, backslash continuations joined with
 * one space. Returns the count; *out holds malloc'd strings. */
static size_t runbook_commands(const char *text, char ***out) {
        size_t n = 0, cap = 64;
        char **cmds = itd_xmalloc(cap * sizeof *cmds);
        int in_sh = 0;
        char joined[1024] = "";
        for (const char *l = text; l && *l;) {
                const char *eol = strchr(l, '\n');
                size_t len = eol ? (size_t)(eol - l) : strlen(l);
                char line[1024];
                snprintf(line, sizeof line, "%.*s", (int)len, l);
                l = eol ? eol + 1 : NULL;
                char *t = line + strspn(line, " ");
                if (!strncmp(t, "```", 3)) {
                        in_sh = !in_sh && !strncmp(t, "```sh", 5);
                        continue;
                }
                if (!in_sh)
                        continue;
                /* A comment starts at " #" outside single quotes. */
                int quoted = 0;
                for (char *p = t; *p; p++) {
                        if (*p == '\'')
                                quoted = !quoted;
                        if (!quoted && *p == '#' && (p == t || p[-1] == ' ')) {
                                *p = '\0';
                                break;
                        }
                }
                size_t k = strlen(t);
                while (k && t[k - 1] == ' ')
                        t[--k] = '\0';
                int more = k && t[k - 1] == '\\';
                if (more) {
                        t[--k] = '\0';
                        while (k && t[k - 1] == ' ')
                                t[--k] = '\0';
                }
                if (*joined && *t)
                        strncat(joined, " ", sizeof joined - strlen(joined) - 1);
                strncat(joined, t, sizeof joined - strlen(joined) - 1);
                if (more || !*joined)
                        continue;
                if (n == cap)
                        cmds = itd_xrealloc(cmds, (cap *= 2) * sizeof *cmds);
                cmds[n++] = itd_xstrdup(joined);
                joined[0] = '\0';
        }
        *out = cmds;
        return n;
}

static void free_commands(char **cmds, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(cmds[i]);
        free(cmds);
}

/* Runs a shell line, output (stdout and stderr) to dir/cmd.log; returns
 * the exit status and *out the output (caller frees). */
static int sh(const char *dir, const char *line, char **out) {
        return tu_sh(dir, line, 120000, out);
}

Test(runbook, every_command_has_a_row_and_every_row_a_command) {
        char *doc = tu_read_src("docs/OPERATIONS.md");
        char **cmds;
        size_t n = runbook_commands(doc, &cmds);
        cr_expect_geq(n, 20, "only %zu commands found", n);
        for (size_t i = 0; i < n; i++) {
                int found = 0;
                for (size_t t = 0; t < N_TABLE && !found; t++)
                        found = !strcmp(cmds[i], table[t].cmd);
                cr_expect(found, "docs/OPERATIONS.md tells operators to run "
                          "\"%s\", which this test neither runs nor "
                          "accounts for",
                          cmds[i]);
        }
        for (size_t t = 0; t < N_TABLE; t++) {
                int found = 0;
                for (size_t i = 0; i < n && !found; i++)
                        found = !strcmp(cmds[i], table[t].cmd);
                cr_expect(found, "row \"%s\" is no longer in the runbook",
                          table[t].cmd);
                if (table[t].how == ELSEWHERE)
                        cr_log_info("not run here: %s: %s", table[t].cmd,
                                    table[t].why);
        }
        free_commands(cmds, n);

        /* The package the runbook names is the one cpack makes. */
        if (tu_have("dpkg")) {
                char dir[256], line[700];
                cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
                snprintf(line, sizeof line,
                         "printf 'intentd_%%s_%%s.deb' \"$('%s' --version | "
                         "cut -d' ' -f2)\" \"$(dpkg --print-architecture)\"",
                         ITD_BINARY);
                char *name;
                cr_assert_eq(sh(dir, line, &name), 0, "%s", name);
                cr_expect(strstr(doc, name), "OPERATIONS.md does not name "
                          "the package cpack makes, %s", name);
                free(name);
        }
        free(doc);
}

/* ---- the runbook, followed ---------------------------------------------- */

static char dir[256], root[300], bin_dir[400];
static tu_broker_t broker;
static const char *bootstrap; /* broker.bootstrap once it runs */
static pid_t daemon_pid = -1;
static int notify_fd = -1, port = 9464;
static char **doc_cmds;
static size_t n_doc_cmds;

static void setup(void) {
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(root, sizeof root, "%s/root", dir);
        cr_assert_eq(mkdir(root, 0755), 0);
        char *doc = tu_read_src("docs/OPERATIONS.md");
        n_doc_cmds = runbook_commands(doc, &doc_cmds);
        free(doc);
}

static void teardown(void) {
        if (daemon_pid > 0 && tu_wait(daemon_pid, 0) == -1) {
                kill(daemon_pid, SIGKILL);
                waitpid(daemon_pid, NULL, 0);
        }
        if (bootstrap)
                tu_broker_stop(&broker);
        if (notify_fd >= 0)
                close(notify_fd);
        free_commands(doc_cmds, n_doc_cmds);
}

TestSuite(runbook, .timeout = 300);

/* s with every `from` replaced by `to`, into out[cap]. */
static void subst(char *out, size_t cap, const char *s, const char *from,
                  const char *to) {
        size_t k = 0, nf = strlen(from);
        for (const char *p = s; *p && k + 1 < cap;) {
                if (!strncmp(p, from, nf)) {
                        k += (size_t)snprintf(out + k, cap - k, "%s", to);
                        if (k >= cap)
                                k = cap - 1;
                        p += nf;
                } else {
                        out[k++] = *p++;
                }
        }
        out[k] = '\0';
}

/* The runbook's command cmd, which must be in the runbook, as it runs in
 * the throwaway root: /etc/intentd under R, BROKER and TOPIC of the
 * embedded broker, the daemon's port. */
static void localise(const char *cmd, char *out, size_t cap) {
        int found = 0;
        for (size_t i = 0; i < n_doc_cmds && !found; i++)
                found = !strcmp(doc_cmds[i], cmd);
        cr_assert(found, "\"%s\" is not in docs/OPERATIONS.md", cmd);
        char a[2048], b[2048], etc[400], hostport[64];
        snprintf(etc, sizeof etc, "%s/etc/intentd", root);
        subst(a, sizeof a, cmd, "/etc/intentd", etc);
        subst(b, sizeof b, a, "BROKER", bootstrap ? bootstrap : "BROKER");
        subst(a, sizeof a, b, "TOPIC", "intentd.events");
        snprintf(hostport, sizeof hostport, "localhost:%d", port);
        subst(out, cap, a, "localhost:9464", hostport);
}

/* Runs the runbook's command (localised) with the installed intentd first
 * on PATH, in cwd; returns its exit status, *out its output. */
static int run_doc(const char *cmd, const char *cwd, char **out) {
        char local[2048], line[3000];
        localise(cmd, local, sizeof local);
        snprintf(line, sizeof line, "cd '%s' && PATH='%s':\"$PATH\" && %s",
                 cwd, bin_dir, local);
        return sh(dir, line, out);
}

/* The installed unit's text (caller frees): ITD_SYSTEMD_UNITDIR of the
 * build (systemd.pc's unit folder) under the root. */
static char *unit_text(const char *unit) {
        char v[512], path[1200];
        tu_cmake_cache("ITD_SYSTEMD_UNITDIR", v, sizeof v);
        snprintf(path, sizeof path, "%s%s/%s", root, v, unit);
        char *text = tu_read_file(path);
        cr_assert_not_null(text, "no unit %s", path);
        return text;
}

/* A unit line's value as it acts on the root: the binary and the config
 * folder under R, $MAINPID the daemon's pid. */
static void in_root(const char *raw, char *out, size_t cap) {
        char a[2048], b[2048], usr[400], etc[400], pid[32];
        snprintf(usr, sizeof usr, "%s/usr/bin/intentd", root);
        snprintf(etc, sizeof etc, "%s/etc/intentd", root);
        snprintf(pid, sizeof pid, "%d", (int)daemon_pid);
        subst(a, sizeof a, raw, "/usr/bin/intentd", usr);
        subst(b, sizeof b, a, "/etc/intentd", etc);
        subst(out, cap, b, "$MAINPID", pid);
}

/* The n-th (from 0) `Key=` value of the installed unit, in the root; 0 if
 * there is no such line. */
static int unit_value(const char *unit, const char *key, int nth, char *out,
                      size_t cap) {
        char *text = unit_text(unit);
        char want[64];
        snprintf(want, sizeof want, "\n%s=", key);
        const char *p = text;
        for (int i = 0; (p = strstr(p, want)) && i < nth; i++)
                p += strlen(want);
        int found = p != NULL;
        out[0] = '\0';
        if (p) {
                p += strlen(want);
                char raw[1024];
                snprintf(raw, sizeof raw, "%.*s", (int)strcspn(p, "\n"), p);
                in_root(raw, out, cap);
        }
        free(text);
        return found;
}

/* ---- the notify socket systemd would listen on -------------------------- */

#define MAX_MSGS 1024
static char *msgs[MAX_MSGS];
static size_t n_msgs;

/* Waits until a datagram after msgs[*from] has a line starting with
 * prefix; returns that line (static) or NULL after timeout_ms. */
static const char *await_notify(const char *prefix, size_t *from,
                                int timeout_ms) {
        int64_t deadline = itd_now_mono_ms() + timeout_ms;
        for (;;) {
                for (; *from < n_msgs; (*from)++)
                        for (const char *p = msgs[*from]; p;
                             p = strchr(p, '\n')) {
                                if (*p == '\n')
                                        p++;
                                if (!strncmp(p, prefix, strlen(prefix))) {
                                        static char line[512];
                                        snprintf(line, sizeof line, "%.*s",
                                                 (int)strcspn(p, "\n"), p);
                                        (*from)++;
                                        return line;
                                }
                        }
                int64_t left = deadline - itd_now_mono_ms();
                if (left <= 0)
                        return NULL;
                struct pollfd pfd = {.fd = notify_fd, .events = POLLIN};
                if (poll(&pfd, 1, left > 200 ? 200 : (int)left) <= 0)
                        continue;
                char buf[4096];
                ssize_t n;
                while ((n = recv(notify_fd, buf, sizeof buf - 1,
                                 MSG_DONTWAIT)) > 0) {
                        buf[n] = '\0';
                        if (n_msgs < MAX_MSGS)
                                msgs[n_msgs++] = itd_xstrdup(buf);
                }
        }
}

static int port_free(int p) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)p)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (!ok && p == 0)
                cr_assert_fail("no free port");
        socklen_t len = sizeof sa;
        getsockname(fd, (struct sockaddr *)&sa, &len);
        close(fd);
        return ok ? ntohs(sa.sin_port) : 0;
}

static char *read_root(const char *rel) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", root, rel);
        char *text = tu_read_file(path);
        cr_assert_not_null(text, "cannot read %s", path);
        return text;
}

/* Polls `url` with the runbook's curl until the body starts with want. */
static int curl_until(const char *cmd, const char *want, int timeout_ms) {
        for (int waited = 0;; waited += 200) {
                char *out;
                int rc = run_doc(cmd, dir, &out);
                int ok = rc == 0 && !strncmp(out, want, strlen(want));
                free(out);
                if (ok)
                        return 1;
                if (waited >= timeout_ms)
                        return 0;
                usleep(200 * 1000);
        }
}

Test(runbook, followed_in_a_throwaway_root, .init = setup,
     .fini = teardown) {
        if (!tu_have("cmake") || !tu_have("systemd-sysusers") ||
            !tu_have("systemd-tmpfiles") || !tu_have("systemctl") ||
            !tu_have("curl") || !tu_have("kcat"))
                cr_skip_test("cmake, systemd, curl or kcat not installed");
        char line[3000], bin[512], etc[400];
        char *out;
        int rc;
        snprintf(bin_dir, sizeof bin_dir, "%s/usr/bin", root);
        snprintf(etc, sizeof etc, "%s/etc/intentd", root);

        /* Install: into R (the runbook's DESTDIR), then user and folders;
         * the tools take --root where the runbook's commands act on /. */
        itd_strlcpy(bin, ITD_BINARY, sizeof bin);
        char install[600];
        snprintf(install, sizeof install, "cmake --install '%s' --prefix /usr",
                 dirname(bin));
        localise("cmake --install build --prefix /usr", line, sizeof line);
        snprintf(line, sizeof line, "DESTDIR='%s' %s", root, install);
        rc = sh(dir, line, &out);
        cr_assert_eq(rc, 0, "cmake --install: %s", out);
        free(out);
        localise("systemd-sysusers intentd.conf && systemd-tmpfiles "
                 "--create intentd.conf",
                 line, sizeof line);
        char rooted[3000], flag[400];
        snprintf(flag, sizeof flag, "systemd-sysusers --root='%s'", root);
        subst(rooted, sizeof rooted, line, "systemd-sysusers", flag);
        snprintf(flag, sizeof flag, "systemd-tmpfiles --root='%s'", root);
        subst(line, sizeof line, rooted, "systemd-tmpfiles", flag);
        rc = sh(dir, line, &out);
        cr_assert_eq(rc, 0, "%s\n%s", line, out);
        free(out);
        char *passwd = read_root("etc/passwd");
        cr_expect(strstr(passwd, "\nintentd:x:") || !strncmp(passwd,
                                                             "intentd:x:", 10),
                  "%s", passwd);
        free(passwd);
        struct stat sb;
        snprintf(line, sizeof line, "%s/intentd.yaml", etc);
        cr_assert_eq(stat(line, &sb), 0);
        cr_expect_eq(sb.st_mode & 07777, 0640, "the runbook says 0640");

        /* Configure: the shipped file is refused until brokers are set. */
        const char *check = "intentd check-config /etc/intentd/intentd.yaml";
        rc = run_doc(check, dir, &out);
        cr_expect_eq(rc, 1, "%s", out);
        cr_expect(strstr(out, "kafka.bootstrap.servers: not set"), "%s", out);
        free(out);
        tu_broker_start(&broker, 2, NULL);
        bootstrap = broker.bootstrap;
        /* The operator's edit: the shipped file's commented kafka lines,
         * switched on, with this broker. */
        snprintf(line, sizeof line,
                 "sed -i -e 's/^# kafka:$/kafka:/' -e "
                 "'s/^#   bootstrap.servers: .*/  bootstrap.servers: \"%s\"/' "
                 "'%s/intentd.yaml' && grep -c '^  bootstrap.servers: ' "
                 "'%s/intentd.yaml'",
                 bootstrap, etc, etc);
        rc = sh(dir, line, &out);
        cr_assert(rc == 0 && !strcmp(out, "1"), "the shipped file has no "
                  "commented `kafka:` / `bootstrap.servers:` lines: %s", out);
        free(out);
        rc = run_doc(check, dir, &out);
        cr_expect_eq(rc, 0, "%s", out);
        cr_expect(strstr(out, "intentd.yaml: ok"), "%s", out);
        free(out);

        /* The Configure section's example, as a file of its own. */
        char *doc = tu_read_src("docs/OPERATIONS.md");
        const char *y = strstr(doc, "## Configure");
        cr_assert_not_null(y);
        y = strstr(y, "```yaml\n");
        cr_assert_not_null(y);
        y += strlen("```yaml\n");
        const char *yend = strstr(y, "```");
        char example[2048], ex_path[600];
        snprintf(example, sizeof example, "%.*s", (int)(yend - y), y);
        char *bs = strstr(example, "bootstrap.servers: \"");
        cr_assert_not_null(bs, "%s", example);
        char fixed[3000];
        snprintf(fixed, sizeof fixed, "%.*sbootstrap.servers: \"%s\"%s",
                 (int)(bs - example), example, bootstrap,
                 strchr(strchr(bs, '"') + 1, '"') + 1);
        snprintf(ex_path, sizeof ex_path, "%s/example.yaml", dir);
        cr_assert_eq(tu_write_file(ex_path, fixed), 0);
        snprintf(line, sizeof line, "'%s/intentd' check-config '%s'", bin_dir,
                 ex_path);
        rc = sh(dir, line, &out);
        cr_expect_eq(rc, 0, "the Configure example does not load:\n%s\n%s",
                     fixed, out);
        free(out);

        /* Scale out: instance configs beside the main one, enabled. */
        const char *scale[] = {
            "sed 's/127.0.0.1:9464/127.0.0.1:9465/' intentd.yaml > a.yaml",
            "sed 's/127.0.0.1:9464/127.0.0.1:9466/' intentd.yaml > b.yaml",
            "chgrp intentd a.yaml b.yaml && chmod 0640 a.yaml b.yaml",
            "intentd check-config a.yaml && intentd check-config b.yaml"};
        localise("cd /etc/intentd", line, sizeof line);
        cr_assert(!strcmp(line + 3, etc), "%s", line);
        /* chgrp names the group of the root, unknown to this host's NSS:
         * its number instead. */
        snprintf(line, sizeof line,
                 "awk -F: '$1==\"intentd\" {print $3}' '%s/etc/group'", root);
        char *gid;
        cr_assert_eq(sh(dir, line, &gid), 0);
        char chgrp[64];
        snprintf(chgrp, sizeof chgrp, "chgrp %s", gid);
        free(gid);
        for (size_t i = 0; i < sizeof scale / sizeof scale[0]; i++) {
                if (strstr(scale[i], "chgrp intentd")) {
                        char cmd[400];
                        localise(scale[i], line, sizeof line);
                        subst(cmd, sizeof cmd, scale[i], "chgrp intentd",
                              chgrp);
                        snprintf(line, sizeof line, "cd '%s' && %s", etc, cmd);
                        rc = sh(dir, line, &out);
                } else {
                        rc = run_doc(scale[i], etc, &out);
                }
                cr_expect_eq(rc, 0, "%s: %s", scale[i], out);
                free(out);
        }
        static const char *const inst[][2] = {{"a.yaml", "127.0.0.1:9465"},
                                              {"b.yaml", "127.0.0.1:9466"}};
        for (size_t i = 0; i < 2; i++) {
                char rel[64];
                snprintf(rel, sizeof rel, "etc/intentd/%s", inst[i][0]);
                char *t = read_root(rel);
                char want[64];
                snprintf(want, sizeof want, "listen: \"%s\"", inst[i][1]);
                cr_expect(strstr(t, want), "%s: the sed did not move "
                          "metrics.listen", inst[i][0]);
                free(t);
        }
        localise("systemctl enable --now intentd@a intentd@b", line,
                 sizeof line);
        snprintf(line, sizeof line,
                 "systemctl --root='%s' enable intentd@a.service "
                 "intentd@b.service",
                 root);
        rc = sh(dir, line, &out);
        cr_expect_eq(rc, 0, "%s", out);
        free(out);
        snprintf(line, sizeof line,
                 "%s/etc/systemd/system/multi-user.target.wants/"
                 "intentd@a.service",
                 root);
        cr_expect_eq(lstat(line, &sb), 0, "intentd@a not enabled");

        /* Start: `systemctl enable --now intentd` is the enable link and
         * the unit's ExecStart= under the unit's environment. */
        if (!port_free(9464)) {
                port = port_free(0);
                snprintf(line, sizeof line,
                         "sed -i 's/127.0.0.1:9464/127.0.0.1:%d/' "
                         "'%s/intentd.yaml'",
                         port, etc);
                cr_assert_eq(sh(dir, line, &out), 0, "%s", out);
                free(out);
                cr_log_info("port 9464 is taken here; the daemon uses %d",
                            port);
        }
        localise("systemctl enable --now intentd", line, sizeof line);
        snprintf(line, sizeof line,
                 "systemctl --root='%s' enable intentd.service", root);
        rc = sh(dir, line, &out);
        cr_expect_eq(rc, 0, "%s", out);
        free(out);
        char exec[2048];
        cr_assert(unit_value("intentd.service", "ExecStart", 0, exec,
                             sizeof exec));
        cr_assert(strstr(exec, " run --config "), "ExecStart=%s", exec);
        char *argv[16];
        int argc = 0;
        for (char *tok = strtok(exec, " "); tok && argc < 15;
             tok = strtok(NULL, " "))
                argv[argc++] = tok;
        argv[argc] = NULL;
        char notify_path[400], state[400], log_run[400];
        snprintf(notify_path, sizeof notify_path, "%s/notify", dir);
        snprintf(state, sizeof state, "%s/var/lib/intentd", root);
        snprintf(log_run, sizeof log_run, "%s/run.log", dir);
        notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        cr_assert_lt(strlen(notify_path), sizeof sa.sun_path);
        memcpy(sa.sun_path, notify_path, strlen(notify_path) + 1);
        cr_assert_eq(bind(notify_fd, (struct sockaddr *)&sa, sizeof sa), 0);
        char env[256];
        cr_assert(unit_value("intentd.service", "Environment", 0, env,
                             sizeof env));
        char *eq = strchr(env, '=');
        cr_assert_not_null(eq, "Environment=%s", env);
        *eq = '\0';
        setenv(env, eq + 1, 1);
        setenv("NOTIFY_SOCKET", notify_path, 1);
        setenv("STATE_DIRECTORY", state, 1);
        unsetenv("JOURNAL_STREAM");
        unsetenv("WATCHDOG_USEC");
        daemon_pid = tu_spawn(argv, log_run);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("STATE_DIRECTORY");
        cr_assert(daemon_pid > 0);
        size_t cur = 0;
        cr_assert_not_null(await_notify("READY=1", &cur, 60000),
                           "no READY=1 (see %s)", log_run);

        /* Health, as the alerts' sections check it. */
        cr_expect(curl_until("curl -s localhost:9464/livez", "ok", 10000),
                  "/livez");
        cr_expect(curl_until("curl -s localhost:9464/readyz", "ok", 30000),
                  "/readyz");
        rc = run_doc("kcat -b BROKER -L -t TOPIC | grep -c '^ *partition '", dir,
                     &out);
        cr_expect(rc == 0 && !strcmp(out, "2"), "rc %d: %s", rc, out);
        free(out);

        /* A record intentd cannot read, then the dead-letter command. */
        snprintf(line, sizeof line,
                 "printf 'not an event\\n' | kcat -P -b '%s' -t "
                 "intentd.events -k u1",
                 bootstrap);
        rc = sh(dir, line, &out);
        cr_assert_eq(rc, 0, "%s", out);
        free(out);
        const char *dlq = "kcat -C -b BROKER -t intentd.dead_letter -o -10 "
                          "-e -f '%h\\n%s\\n\\n'";
        int seen = 0;
        for (int waited = 0; !seen && waited < 30000; waited += 500) {
                rc = run_doc(dlq, dir, &out);
                seen = rc == 0 && strstr(out, "intentd.error.reason=") &&
                       strstr(out, "not an event");
                if (!seen) {
                        free(out);
                        usleep(500 * 1000);
                }
        }
        cr_expect(seen, "the dead-letter command shows no reason header");
        if (seen)
                free(out);

        /* systemctl status shows the STATUS= line the runbook describes. */
        const char *status = await_notify("STATUS=", &cur, 30000);
        cr_expect_not_null(status, "no STATUS= (see %s)", log_run);
        if (status) {
                static const char *const parts[] = {"events/s", "lag",
                                                    "events", "users", "AUC"};
                for (size_t i = 0; i < 5; i++)
                        cr_expect(strstr(status, parts[i]), "%s lacks %s",
                                  status, parts[i]);
        }

        /* systemctl reload: each ExecReload= line, in order. */
        localise("systemctl reload intentd", line, sizeof line);
        int reloads = 0;
        char reload[2048];
        while (unit_value("intentd.service", "ExecReload", reloads, reload,
                          sizeof reload)) {
                rc = sh(dir, reload, &out);
                cr_expect_eq(rc, 0, "ExecReload=%s: %s", reload, out);
                free(out);
                reloads++;
        }
        cr_expect_eq(reloads, 2, "check-config, then SIGHUP");
        cr_expect_not_null(await_notify("RELOADING=1", &cur, 10000));
        cr_expect_not_null(await_notify("READY=1", &cur, 10000));
        for (int waited = 0; waited < 10000; waited += 100) {
                char *t = tu_read_file(log_run);
                int ok = t && strstr(t, "reloaded");
                free(t);
                if (ok)
                        break;
                usleep(100 * 1000);
        }

        /* systemctl stop: SIGTERM, exit 0 within TimeoutStopSec=, and
         * the last lines the runbook shows. */
        char stop_s[32];
        cr_assert(unit_value("intentd.service", "TimeoutStopSec", 0, stop_s,
                             sizeof stop_s));
        localise("systemctl stop intentd", line, sizeof line);
        kill(daemon_pid, SIGTERM);
        rc = tu_wait(daemon_pid, atoi(stop_s) * 1000);
        cr_expect_eq(rc, 0, "exit %d within TimeoutStopSec=%s", rc, stop_s);
        daemon_pid = -1;
        cr_expect_not_null(await_notify("STOPPING=1", &cur, 1000));
        char *log = tu_read_file(log_run);
        cr_assert_not_null(log);
        static const char *const last[] = {"intentd notice run: accounting: ",
                                           "intentd notice run: stopped: "};
        for (size_t i = 0; i < 2; i++) {
                const char *shown = strstr(doc, last[i]);
                const char *real = strstr(log, last[i]);
                cr_assert(shown && real, "%s: in the runbook %p, logged %p",
                          last[i], (void *)shown, (void *)real);
                /* Same words and keys in the same order; numbers differ. */
                char sw[512], rw[512];
                size_t k = 0;
                for (const char *p = shown; *p && *p != '\n' && k < 511; p++)
                        if (!isdigit((unsigned char)*p))
                                sw[k++] = *p;
                sw[k] = '\0';
                k = 0;
                for (const char *p = real; *p && *p != '\n' && k < 511; p++)
                        if (!isdigit((unsigned char)*p))
                                rw[k++] = *p;
                rw[k] = '\0';
                cr_expect_str_eq(rw, sw, "the runbook shows a different "
                                 "line than intentd writes");
        }
        /* Checkpoints went where the unit's StateDirectory= points. */
        snprintf(line, sizeof line, "ls '%s' | grep -c '^cut-'", state);
        rc = sh(dir, line, &out);
        cr_expect(rc == 0 && atoi(out) >= 1, "no checkpoint in %s: %s",
                  state, out);
        free(out);
        free(log);
        free(doc);
        for (size_t i = 0; i < n_msgs; i++)
                free(msgs[i]);
}
