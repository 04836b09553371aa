/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

const char *tu_shared_data(const char *rel, char *buf, size_t cap) {
        const char *root = getenv("ITD_SHARED_DATA");
        if (root && *root)
                snprintf(buf, cap, "%s/%s", root, rel);
        else
                snprintf(buf, cap, "%s/../shared/data/%s", ITD_SOURCE_DIR, rel);
        struct stat sb;
        if (stat(buf, &sb) != 0 || !S_ISREG(sb.st_mode))
                return NULL;
        return buf;
}

const char *tu_tmpdir(char *buf, size_t cap) {
        const char *base = getenv("TMPDIR");
        snprintf(buf, cap, "%s/intentd-test-XXXXXX", base && *base ? base : "/tmp");
        return mkdtemp(buf);
}

const char *tu_src(const char *rel, char *buf, size_t cap) {
        snprintf(buf, cap, "%s/%s", ITD_SOURCE_DIR, rel);
        return buf;
}

pid_t tu_spawn(char *const argv[], const char *log_path) {
        pid_t pid = fork();
        if (pid == 0) {
                if (log_path) {
                        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
                        if (fd >= 0) {
                                dup2(fd, 1);
                                dup2(fd, 2);
                                close(fd);
                        }
                }
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull >= 0) {
                        dup2(devnull, 0);
                        close(devnull);
                }
                execv(argv[0], argv);
                fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        return pid;
}

int tu_wait(pid_t pid, int timeout_ms) {
        for (int waited = 0;; waited += 20) {
                int status;
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid) {
                        if (WIFEXITED(status))
                                return WEXITSTATUS(status);
                        if (WIFSIGNALED(status))
                                return 128 + WTERMSIG(status);
                        return -1;
                }
                if (r < 0 || waited >= timeout_ms)
                        return -1;
                sleep_ms(20);
        }
}

int tu_wait_file(const char *path, int timeout_ms) {
        for (int waited = 0; waited < timeout_ms; waited += 20) {
                struct stat sb;
                if (stat(path, &sb) == 0 && sb.st_size > 0)
                        return 0;
                sleep_ms(20);
        }
        return -1;
}

char *tu_read_file(const char *path) {
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        size_t cap = 4096, len = 0;
        char *s = malloc(cap);
        size_t n;
        while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
                len += n;
                if (cap - len < 2) {
                        cap *= 2;
                        s = realloc(s, cap);
                }
        }
        fclose(f);
        if (!s)
                return NULL;
        s[len] = '\0';
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
                s[--len] = '\0';
        return s;
}

int tu_write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "wb");
        if (!f)
                return -1;
        int ok = fputs(text, f) >= 0;
        return (fclose(f) == 0 && ok) ? 0 : -1;
}

int tu_run(char *const argv[], const char *log_path, int timeout_ms) {
        pid_t pid = tu_spawn(argv, log_path);
        if (pid < 0)
                return -1;
        int rc = tu_wait(pid, timeout_ms);
        if (rc == -1) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        return rc;
}
