/*
 * e2e_proc.c - bench_e2e's child processes: start one with its output in
 * a log, stop or wait for it, follow it with perf, read its last JSON
 * line; and the config every intentd run gets.
 */
#include "e2e.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- child processes ---------------------------------------------------- */

pid_t e2e_spawn(char *const argv[], const char *log_path) {
        pid_t pid = fork();
        if (pid < 0)
                e2e_die("fork");
        if (pid == 0) {
                int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                        close(fd);
                }
                execvp(argv[0], argv);
                fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        return pid;
}

/* SIGTERM (unless already exited), then waits up to timeout_s. */
int e2e_stop_child(pid_t pid, double timeout_s) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        kill(pid, SIGTERM);
        double t0 = e2e_now_s();
        while (e2e_now_s() - t0 < timeout_s) {
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
                usleep(20000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
}

/* Waits for a child that stops by itself. */
int e2e_wait_child(pid_t pid, double timeout_s) {
        int st;
        double t0 = e2e_now_s();
        while (e2e_now_s() - t0 < timeout_s) {
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
                usleep(20000);
        }
        return e2e_stop_child(pid, 10);
}

/*
 * With BENCH_PERF set (any value), `perf record -e cpu-clock -g` follows
 * each intentd run into DIR/<name>.perf.data: where the time goes, for
 * the report (a software clock: this VM exposes no hardware counters).
 */
pid_t e2e_perf_attach(const opts_t *o, pid_t pid, const char *name) {
        if (!getenv("BENCH_PERF"))
                return 0;
        char spid[32], out[512], log[512];
        snprintf(spid, sizeof spid, "%d", (int)pid);
        snprintf(out, sizeof out, "%s/%s.perf.data", o->dir, name);
        snprintf(log, sizeof log, "%s/%s.perf.log", o->dir, name);
        char *argv[] = {"perf", "record", "-e", "cpu-clock", "-g", "-p",
                        spid, "-o", out, NULL};
        return e2e_spawn(argv, log);
}

void e2e_perf_detach(pid_t perf) {
        int st;
        if (perf <= 0)
                return;
        kill(perf, SIGINT);
        waitpid(perf, &st, 0);
}

/* The last line of a log that starts with "{", copied into out. */
void e2e_last_json(const char *path, char *out, size_t cap) {
        FILE *f = fopen(path, "r");
        char line[8192];
        snprintf(out, cap, "null");
        if (!f)
                return;
        while (fgets(line, sizeof line, f))
                if (line[0] == '{') {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(out, cap, "%s", line);
                }
        fclose(f);
}

void e2e_write_conf(const opts_t *o, char *path, size_t cap) {
        snprintf(path, cap, "%s/intentd.yaml", o->dir);
        FILE *f = fopen(path, "w");
        if (!f)
                e2e_die("cannot write the config");
        fprintf(f,
                "# written by bench_e2e: defaults except where to connect\n"
                "kafka:\n"
                "  bootstrap.servers: \"%s\"\n"
                "  session.timeout.ms: 6000\n"
                "  heartbeat.interval.ms: 500\n"
                "metrics:\n"
                "  log.interval: 2s\n"
                "  listen: \"127.0.0.1:0\"\n",
                e2e_bootstrap);
        fclose(f);
}
