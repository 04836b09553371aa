/*
 * test_it_exit_codes.c - the exit codes docs/OPERATIONS.md documents, as
 * built: `intentd run` exits 78 (EX_CONFIG, which the units do not
 * restart) for every configuration it cannot run with, 2 for a usage
 * error, 0 after SIGTERM; `intentd check-config` refuses the same files
 * (exit 1) naming file:line:column. No broker is needed: every refusal
 * happens before intentd connects (brokers point at a closed port).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define EX_CONFIG 78

static char dir[256];

static void setup(void) { cr_assert(tu_tmpdir(dir, sizeof dir)); }

TestSuite(it_exit_codes, .init = setup, .timeout = 120);

/* A config file: extra first (so its line numbers are its own), then
 * brokers on a closed port, no HTTP endpoint and no checkpoints unless
 * extra says otherwise. */
static const char *conf_file(const char *name, const char *extra) {
        static char path[512];
        char text[4096];
        snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
        snprintf(text, sizeof text, "%s%s%s%s", extra,
                 strstr(extra, "kafka") ? ""
                                        : "kafka.bootstrap.servers: "
                                          "\"127.0.0.1:1\"\n",
                 strstr(extra, "metrics") ? "" : "metrics.listen: \"\"\n",
                 strstr(extra, "checkpoint") ? "" : "checkpoint.dir: \"\"\n");
        cr_assert_eq(tu_write_file(path, text), 0);
        return path;
}

/* Runs argv to its end; returns the exit status, the output in *log. */
static int run(char *const argv[], char **log) {
        char log_path[512];
        snprintf(log_path, sizeof log_path, "%s/out.log", dir);
        int rc = tu_run(argv, log_path, 60000);
        *log = tu_read_file(log_path);
        if (!*log)
                *log = strdup("");
        return rc;
}

/* `intentd run` exits 78 and `check-config` 1, both naming want. */
static void expect_config_refusal(const char *path, const char *want) {
        char *log;
        char *run_argv[] = {ITD_BINARY, "run", "--config", (char *)path,
                            NULL};
        int rc = run(run_argv, &log);
        cr_expect_eq(rc, EX_CONFIG, "run exited %d: %s", rc, log);
        cr_expect(strstr(log, want) != NULL, "run: want \"%s\" in: %s", want,
                  log);
        free(log);
        char *check_argv[] = {ITD_BINARY, "check-config", (char *)path, NULL};
        rc = run(check_argv, &log);
        cr_expect_eq(rc, 1, "check-config exited %d: %s", rc, log);
        cr_expect(strstr(log, want) != NULL,
                  "check-config: want \"%s\" in: %s", want, log);
        free(log);
}

Test(it_exit_codes, a_yaml_syntax_error_is_78) {
        const char *p = conf_file("syntax", "model: [1, 2\n");
        expect_config_refusal(p, "syntax.yaml:");
}

Test(it_exit_codes, a_key_set_twice_is_78) {
        const char *p = conf_file("dup", "output:\n  schema_id: 3\n"
                                         "output:\n  max_in_flight: 5000\n");
        expect_config_refusal(p, "dup.yaml:3:1: output: duplicate key");
}

Test(it_exit_codes, missing_brokers_are_78) {
        const char *p = conf_file("nobrokers", "kafka: {acks: all}\n"
                                               "checkpoint.dir: \"\"\n");
        expect_config_refusal(p, "nobrokers.yaml: kafka.bootstrap.servers: "
                                 "not set");
}

Test(it_exit_codes, an_unparsable_metrics_address_is_78) {
        const char *p = conf_file("listen", "metrics.listen: \"localhost\"\n");
        expect_config_refusal(p, "listen.yaml:1:17: metrics.listen: ");
}

Test(it_exit_codes, a_plugin_that_does_not_load_is_78) {
        char extra[1024];
        snprintf(extra, sizeof extra,
                 "kafka:\n  bootstrap.servers: \"127.0.0.1:1\"\n"
                 "  plugin.library.paths: \"%s/no-such-plugin\"\n", dir);
        const char *p = conf_file("plugin", extra);
        expect_config_refusal(p, "plugin.yaml:3:3: kafka.plugin.library.paths:"
                                 " librdkafka: ");
}

Test(it_exit_codes, an_unusable_checkpoint_dir_is_78) {
        char file[512], extra[1024];
        snprintf(file, sizeof file, "%s/a-file", dir);
        cr_assert_eq(tu_write_file(file, "x\n"), 0);
        snprintf(extra, sizeof extra, "checkpoint.dir: \"%s/sub\"\n", file);
        const char *p = conf_file("ckdir", extra);
        expect_config_refusal(p, "ckdir.yaml:1:1: checkpoint.dir: ");
}

/* 16M x 128 x 3 embedding rows: 103 GB with gradients and Adam moments;
 * the children here may use 4 GiB (RLIMIT_AS, inherited). */
Test(it_exit_codes, a_model_larger_than_memory_is_78) {
        TU_SKIP_UNDER_ASAN();
        struct rlimit rl = {.rlim_cur = (rlim_t)4 << 30,
                            .rlim_max = RLIM_INFINITY};
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
        const char *p = conf_file("huge", "model:\n  embedding:\n"
                                          "    buckets: 16777216\n"
                                          "    dim: 128\n");
        expect_config_refusal(p, "huge.yaml:3:5: model.embedding.buckets: the "
                                 "model needs 103.1 GB");
}

/* A port already taken is found only by binding: run exits 78 (not 1, on
 * which systemd would restart into the same wall). */
Test(it_exit_codes, a_metrics_port_in_use_is_78) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert(fd >= 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        cr_assert_eq(listen(fd, 1), 0);
        socklen_t len = sizeof sa;
        cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        char extra[256];
        snprintf(extra, sizeof extra, "metrics.listen: \"127.0.0.1:%d\"\n",
                 (int)ntohs(sa.sin_port));
        const char *p = conf_file("busy", extra);
        char *log;
        char *argv[] = {ITD_BINARY, "run", "--config", (char *)p, NULL};
        int rc = run(argv, &log);
        cr_expect_eq(rc, EX_CONFIG, "run exited %d: %s", rc, log);
        cr_expect(strstr(log, "metrics.listen") != NULL, "%s", log);
        free(log);
        close(fd);
}

/* A folder of checkpoints that are all damaged. */
static const char *damaged_folder(void) {
        static char ck[512];
        char cp_dir[600], manifest[700];
        snprintf(ck, sizeof ck, "%s/ck", dir);
        snprintf(cp_dir, sizeof cp_dir, "%s/cut-000000000001", ck);
        snprintf(manifest, sizeof manifest, "%s/MANIFEST", cp_dir);
        cr_assert_eq(mkdir(ck, 0750), 0);
        cr_assert_eq(mkdir(cp_dir, 0750), 0);
        cr_assert_eq(tu_write_file(manifest, "not a manifest\n"), 0);
        return ck;
}

Test(it_exit_codes, every_checkpoint_damaged_with_refuse_is_78) {
        char extra[1024];
        snprintf(extra, sizeof extra,
                 "checkpoint:\n  dir: \"%s\"\n  on_corrupt: refuse\n",
                 damaged_folder());
        const char *p = conf_file("refuse", extra);
        char *log;
        char *argv[] = {ITD_BINARY, "run", "--config", (char *)p, NULL};
        int rc = run(argv, &log);
        cr_expect_eq(rc, EX_CONFIG, "run exited %d: %s", rc, log);
        cr_expect(strstr(log, "all 1 damaged") &&
                      strstr(log, "checkpoint.on_corrupt is refuse"),
                  "%s", log);
        free(log);
}

static int usage_rc(char *const argv[]) {
        char *log;
        int rc = run(argv, &log);
        free(log);
        return rc;
}

Test(it_exit_codes, a_usage_error_is_2) {
        char *a[] = {ITD_BINARY, "run", "--no-such-option", NULL};
        cr_expect_eq(usage_rc(a), 2);
        char *b[] = {ITD_BINARY, "run", NULL};
        cr_expect_eq(usage_rc(b), 2);
        char *c[] = {ITD_BINARY, "check-config", NULL};
        cr_expect_eq(usage_rc(c), 2);
}

/* The default of checkpoint.on_corrupt: start empty, but loudly (error
 * log, counted in intentd_checkpoint_damaged_total, the folder moved aside);
 * then SIGTERM stops cleanly with 0. */
Test(it_exit_codes, every_checkpoint_damaged_starts_empty_loudly_and_sigterm_is_0) {
        const char *ck = damaged_folder();
        char extra[1024], log_path[512], aside[600];
        int port = tu_free_port();
        snprintf(extra, sizeof extra,
                 "checkpoint.dir: \"%s\"\nshutdown.timeout: 2s\n"
                 "log.format: plain\nmetrics.listen: \"127.0.0.1:%d\"\n",
                 ck, port);
        const char *p = conf_file("empty", extra);
        snprintf(log_path, sizeof log_path, "%s/empty.log", dir);
        snprintf(aside, sizeof aside, "%s/damaged-cut-000000000001", ck);
        pid_t pid = tu_daemon_start(p, log_path);
        char *log = NULL;
        for (int i = 0; i < 300; i++) { /* up to 30 s */
                free(log);
                log = tu_read_file(log_path);
                if (log && strstr(log, "starting with EMPTY state"))
                        break;
                struct timespec ts = {0, 100000000};
                nanosleep(&ts, NULL);
        }
        cr_expect(log && strstr(log, "intentd err checkpoint: no usable "
                                     "checkpoint") &&
                      strstr(log, "starting with EMPTY state"),
                  "%s", log ? log : "");
        struct stat sb;
        cr_expect_eq(stat(aside, &sb), 0, "damaged checkpoint not moved aside");
        char *text;
        tu_http(port, "GET", "/metrics", 10000, NULL, &text);
        cr_expect(text && strstr(text, "\nintentd_checkpoint_damaged_total 1"),
                  "%s", text ? text : "(no /metrics)");
        free(text);
        kill(pid, SIGTERM);
        int rc = tu_wait(pid, 60000);
        cr_expect_eq(rc, 0, "run exited %d after SIGTERM: %s", rc,
                     log ? log : "");
        free(log);
}
