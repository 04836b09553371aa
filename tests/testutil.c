/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "intentd/codec.h"

void tu_sleep_ms(int ms) {
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
                tu_sleep_ms(20);
        }
}

int tu_wait_file(const char *path, int timeout_ms) {
        for (int waited = 0; waited < timeout_ms; waited += 20) {
                struct stat sb;
                if (stat(path, &sb) == 0 && sb.st_size > 0)
                        return 0;
                tu_sleep_ms(20);
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

char *tu_read_src(const char *rel) {
        char path[512];
        char *text = tu_read_file(tu_src(rel, path, sizeof path));
        cr_assert_not_null(text, "cannot read %s", rel);
        return text;
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

int tu_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms) {
        for (int waited = 0;; waited += 50) {
                if (cond(arg))
                        return 0;
                if (waited >= timeout_ms)
                        return -1;
                tu_sleep_ms(50);
        }
}

int tu_stop(pid_t pid, int timeout_ms) {
        if (pid <= 0)
                return -1;
        kill(pid, SIGTERM);
        int rc = tu_wait(pid, timeout_ms);
        if (rc == -1) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        return rc;
}

long tu_count_lines(const char *path) {
        FILE *f = fopen(path, "r");
        cr_assert(f, "cannot open %s", path);
        long n = 0;
        int c, last = '\n';
        while ((c = fgetc(f)) != EOF) {
                if (c == '\n')
                        n++;
                last = c;
        }
        if (last != '\n')
                n++;
        fclose(f);
        return n;
}

const char *tu_cmake_cache(const char *key, char *buf, size_t cap) {
        char bin[512], path[600], line[256];
        snprintf(bin, sizeof bin, "%s", ITD_BINARY);
        char *slash = strrchr(bin, '/');
        if (slash)
                *slash = '\0';
        snprintf(path, sizeof path, "%s/CMakeCache.txt", slash ? bin : ".");
        char *cache = tu_read_file(path);
        cr_assert_not_null(cache, "cannot read %s", path);
        snprintf(line, sizeof line, "\n%s:", key);
        const char *v = strstr(cache, line);
        cr_assert_not_null(v, "no %s in %s", key, path);
        v = strchr(v + 1, '=');
        cr_assert_not_null(v, "no value of %s in %s", key, path);
        v++;
        snprintf(buf, cap, "%.*s", (int)strcspn(v, "\n"), v);
        free(cache);
        return buf;
}

size_t tu_count_str(const char *text, const char *what) {
        size_t n = 0;
        for (const char *p = text; (p = strstr(p, what)); p++)
                n++;
        return n;
}

char **tu_find_python(const char *imports, const char *log) {
        static char *cands[][2] = {{"/usr/bin/env", NULL},
                                   {"/usr/bin/env", "python3"},
                                   {"/usr/bin/python3", NULL}};
        char line[512];
        snprintf(line, sizeof line, "import %s", imports);
        cands[0][1] = getenv("ITD_PYTHON");
        for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
                if (i == 0 && !cands[0][1])
                        continue;
                char *argv[6] = {cands[i][0]};
                size_t k = 1;
                if (cands[i][1])
                        argv[k++] = cands[i][1];
                argv[k++] = "-c";
                argv[k++] = line;
                argv[k] = NULL;
                if (tu_run(argv, log, 30000) == 0)
                        return cands[i];
        }
        return NULL;
}

void tu_python_argv(char **argv, size_t cap, char *const *py,
                    const char *rel, char *script, size_t script_cap, ...) {
        size_t k = 0;
        argv[k++] = py[0];
        if (py[1])
                argv[k++] = py[1];
        argv[k++] = (char *)tu_src(rel, script, script_cap);
        va_list ap;
        va_start(ap, script_cap);
        for (char *a; (a = va_arg(ap, char *)) != NULL;) {
                cr_assert_lt(k + 1, cap, "too many arguments for %s", rel);
                argv[k++] = a;
        }
        va_end(ap);
        argv[k] = NULL;
}

int tu_have(const char *cmd) {
        char line[256];
        snprintf(line, sizeof line, "command -v %s >/dev/null 2>&1", cmd);
        char *argv[] = {"/bin/sh", "-c", line, NULL};
        return tu_run(argv, NULL, 10000) == 0;
}

int tu_sh(const char *dir, const char *line, int timeout_ms, char **out) {
        char log[512];
        snprintf(log, sizeof log, "%s/cmd.log", dir);
        unlink(log);
        char *argv[] = {"/bin/sh", "-c", (char *)line, NULL};
        int rc = tu_run(argv, log, timeout_ms);
        *out = tu_read_file(log);
        if (!*out)
                *out = strdup("");
        return rc;
}

int tu_promtool_check(const char *dir, const char *text, char **out) {
        char file[512], line[600];
        snprintf(file, sizeof file, "%s/metrics.txt", dir);
        cr_assert_eq(tu_write_file(file, text), 0, "cannot write %s", file);
        snprintf(line, sizeof line, "promtool check metrics < '%s'", file);
        return tu_sh(dir, line, 20000, out);
}

/* ---- broker and daemon --------------------------------------------------- */

void tu_broker_start(tu_broker_t *b, int partitions, const char *topics) {
        memset(b, 0, sizeof *b);
        cr_assert(tu_tmpdir(b->dir, sizeof b->dir));
        snprintf(b->bs_path, sizeof b->bs_path, "%s/bootstrap", b->dir);
        snprintf(b->log, sizeof b->log, "%s/broker.log", b->dir);
        char parts[16];
        snprintf(parts, sizeof parts, "%d", partitions);
        char *argv[9] = {ITD_BINARY, "broker", "--partitions", parts,
                         "--bootstrap-file", b->bs_path, NULL};
        if (topics) {
                argv[6] = "--topics";
                argv[7] = (char *)topics;
                argv[8] = NULL;
        }
        b->pid = tu_spawn(argv, b->log);
        cr_assert(b->pid > 0);
        cr_assert_eq(tu_wait_file(b->bs_path, 10000), 0,
                     "broker wrote no bootstrap file (see %s)", b->log);
        b->bootstrap = tu_read_file(b->bs_path);
        cr_assert(b->bootstrap);
}

void tu_broker_stop(tu_broker_t *b) {
        tu_stop(b->pid, 5000);
        b->pid = 0;
        free(b->bootstrap);
        b->bootstrap = NULL;
}

const char *tu_conf_write(const char *dir, const char *bootstrap,
                          const char *name, char *path, size_t cap,
                          const char *kafka_lines, const char *fmt, ...) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cr_assert(f);
        fprintf(f, "kafka:\n  bootstrap.servers: \"%s\"\n%s", bootstrap,
                kafka_lines ? kafka_lines : "");
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vfprintf(f, fmt, ap);
                va_end(ap);
        }
        fclose(f);
        snprintf(path, cap, "%s/%s", dir, name);
        cr_assert_eq(tu_write_file(path, text), 0, "cannot write %s", path);
        free(text);
        return path;
}

pid_t tu_daemon_start(const char *conf, const char *log_path) {
        char *argv[] = {ITD_BINARY, "run", "--config", (char *)conf, NULL};
        pid_t pid = tu_spawn(argv, log_path);
        cr_assert(pid > 0);
        return pid;
}

int tu_load(const char *conf, const char *input, const char *format,
            const char *log_path) {
        char *argv[] = {ITD_BINARY, "load",  "--config",    (char *)conf,
                        "--input",  (char *)input, "--format", (char *)format,
                        NULL};
        return tu_run(argv, log_path, 60000);
}

char *tu_inspect_state(const char *dir, const char *const *cks, int n,
                       int summary, int unique) {
        char cmd[4096] = "cat";
        for (int k = 0; k < n; k++) {
                char out[512];
                const char *base = strrchr(cks[k], '/');
                snprintf(out, sizeof out, "%s/inspect.%s.%d", dir,
                         base ? base + 1 : cks[k], summary);
                char *argv[] = {ITD_BINARY, "inspect", "state",
                                (char *)cks[k], summary ? "--summary" : NULL,
                                NULL};
                cr_assert_eq(tu_run(argv, out, 30000), 0,
                             "intentd inspect state %s failed (see %s)",
                             cks[k], out);
                size_t len = strlen(cmd);
                snprintf(cmd + len, sizeof cmd - len, " %s", out);
        }
        size_t len = strlen(cmd);
        snprintf(cmd + len, sizeof cmd - len, " | grep '^{' | LC_ALL=C sort%s",
                 unique ? " -u" : "");
        FILE *p = popen(cmd, "r");
        cr_assert(p);
        char *text = NULL;
        size_t tlen = 0;
        FILE *m = open_memstream(&text, &tlen);
        char line[8192];
        long lines = 0;
        while (fgets(line, sizeof line, p)) {
                fputs(line, m);
                lines++;
        }
        pclose(p);
        fclose(m);
        cr_assert(lines > 0, "inspect state of %s printed nothing", cks[0]);
        return text;
}

/* ---- reading topics ------------------------------------------------------ */

/* A consumer of bootstrap in group, with extra settings (name, value
 * pairs, NULL-terminated). */
static rd_kafka_t *consumer(const char *bootstrap, const char *group,
                            const char *const *extra) {
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err,
                                       sizeof err), RD_KAFKA_CONF_OK, "%s",
                     err);
        rd_kafka_conf_set(kc, "group.id", group, err, sizeof err);
        for (size_t i = 0; extra[i]; i += 2)
                cr_assert_eq(rd_kafka_conf_set(kc, extra[i], extra[i + 1], err,
                                               sizeof err),
                             RD_KAFKA_CONF_OK, "%s", err);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
        cr_assert(rk, "consumer: %s", err);
        return rk;
}

rd_kafka_t *tu_consumer_new(const char *bootstrap, const char *group,
                            const char *topics) {
        static const char *const extra[] = {
            "auto.offset.reset", "earliest", "session.timeout.ms", "6000",
            "heartbeat.interval.ms", "500", NULL};
        rd_kafka_t *rk = consumer(bootstrap, group, extra);
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *sub =
            rd_kafka_topic_partition_list_new(4);
        char *list = strdup(topics), *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t;
             t = strtok_r(NULL, ",", &save))
                rd_kafka_topic_partition_list_add(sub, t,
                                                  RD_KAFKA_PARTITION_UA);
        free(list);
        cr_assert_eq(rd_kafka_subscribe(rk, sub), 0);
        rd_kafka_topic_partition_list_destroy(sub);
        return rk;
}

rd_kafka_t *tu_reader_new(const char *bootstrap, const char *group,
                          const char *topics, int partitions) {
        static const char *const extra[] = {"enable.auto.commit", "false",
                                            NULL};
        rd_kafka_t *rk = consumer(bootstrap, group, extra);
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *as =
            rd_kafka_topic_partition_list_new(4 * partitions);
        for (int p = 0; p < partitions; p++) {
                char *list = strdup(topics), *save = NULL;
                for (char *t = strtok_r(list, ",", &save); t;
                     t = strtok_r(NULL, ",", &save))
                        rd_kafka_topic_partition_list_add(as, t, p)->offset =
                            RD_KAFKA_OFFSET_BEGINNING;
                free(list);
        }
        cr_assert_eq(rd_kafka_assign(rk, as), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_topic_partition_list_destroy(as);
        return rk;
}

void tu_consumer_destroy(rd_kafka_t *rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

int tu_poll(rd_kafka_t *rk, int timeout_ms,
            int (*on)(void *arg, const rd_kafka_message_t *m), void *arg) {
        for (int waited = 0; waited < timeout_ms;) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (!m) {
                        waited += 200;
                        continue;
                }
                int done = !m->err && on(arg, m);
                rd_kafka_message_destroy(m);
                if (done)
                        return 0;
        }
        return -1;
}

typedef struct collect_s {
        itd_codec_t *codec;
        tu_on_prediction_t on;
        void *arg;
} collect_t;

static int collect_one(void *arg, const rd_kafka_message_t *m) {
        collect_t *c = arg;
        char err[512];
        itd_prediction_t p;
        int ok = itd_codec_decode_prediction(c->codec, m->payload, m->len,
                                             ITD_FRAMING_AUTO, &p, err,
                                             sizeof err) == ITD_OK;
        return c->on(c->arg, m, ok ? &p : NULL);
}

int tu_collect_predictions(rd_kafka_t *rk, int timeout_ms,
                           tu_on_prediction_t on, void *arg) {
        char err[512];
        collect_t c = {itd_codec_new(err, sizeof err), on, arg};
        cr_assert(c.codec, "%s", err);
        int rc = tu_poll(rk, timeout_ms, collect_one, &c);
        itd_codec_destroy(c.codec);
        return rc;
}

int tu_offsets(const char *bootstrap, const char *group, const char *topic,
               int partitions, int64_t *committed, int64_t *end) {
        static const char *const none[] = {NULL};
        rd_kafka_t *rk = consumer(bootstrap, group, none);
        rd_kafka_topic_partition_list_t *tp =
            rd_kafka_topic_partition_list_new(partitions);
        for (int p = 0; p < partitions; p++)
                rd_kafka_topic_partition_list_add(tp, topic, p);
        int rc = rd_kafka_committed(rk, tp, 10000) == 0 ? 0 : -1;
        for (int p = 0; rc == 0 && p < partitions; p++) {
                committed[p] = tp->elems[p].offset;
                int64_t lo, hi;
                if (end && rd_kafka_query_watermark_offsets(rk, topic, p, &lo,
                                                            &hi, 10000) != 0)
                        rc = -1;
                else if (end)
                        end[p] = hi;
        }
        rd_kafka_topic_partition_list_destroy(tp);
        rd_kafka_destroy(rk);
        return rc;
}

rd_kafka_t *tu_client_new(const char *bootstrap) {
        char err[256];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap,
                                       err, sizeof err),
                     RD_KAFKA_CONF_OK, "%s", err);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        cr_assert(rk, "%s", err);
        return rk;
}

long tu_topic_records(rd_kafka_t *rk, const char *topic, int partitions) {
        long total = 0;
        for (int32_t p = 0; p < partitions; p++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi,
                                                     5000) != 0)
                        return -1;
                total += (long)hi;
        }
        return total;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
        (void)rk;
        (void)opaque;
        tu_record_t *r = m->_private;
        if (!m->err)
                r->offset = m->offset;
}

void tu_produce(const char *bootstrap, const char *topic, tu_record_t *recs,
                size_t n) {
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err,
                                       sizeof err), RD_KAFKA_CONF_OK, "%s",
                     err);
        rd_kafka_conf_set(kc, "linger.ms", "5", err, sizeof err);
        rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
        cr_assert(rk, "producer: %s", err);
        for (size_t i = 0; i < n; i++) {
                tu_record_t *r = &recs[i];
                r->offset = -1;
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(r->partition),
                    RD_KAFKA_V_KEY(r->key, strlen(r->key)),
                    RD_KAFKA_V_VALUE((void *)r->value, r->len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END);
                cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce %zu: %s",
                             i, rd_kafka_err2str(e));
        }
        cr_assert_eq(rd_kafka_flush(rk, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_destroy(rk);
        for (size_t i = 0; i < n; i++)
                cr_assert_geq(recs[i].offset, 0, "record %zu not delivered",
                              i);
}

void tu_idset_init(tu_idset_t *s, size_t cap) {
        memset(s, 0, sizeof *s);
        s->cap = cap < 16 ? 16 : cap;
        s->ids = calloc(s->cap, sizeof *s->ids);
        cr_assert(s->ids);
}

int tu_idset_add(tu_idset_t *s, const char *id) {
        /* open addressing, FNV-1a */
        uint64_t h = 1469598103934665603ULL;
        for (const char *c = id; *c; c++)
                h = (h ^ (unsigned char)*c) * 1099511628211ULL;
        size_t i = (size_t)(h % s->cap);
        while (s->ids[i] && strcmp(s->ids[i], id))
                i = (i + 1) % s->cap;
        s->total++;
        if (s->ids[i])
                return 0;
        cr_assert_lt((size_t)s->unique + 1, s->cap, "id set full");
        s->ids[i] = strdup(id);
        s->unique++;
        return 1;
}

void tu_idset_free(tu_idset_t *s) {
        for (size_t i = 0; s->ids && i < s->cap; i++)
                free(s->ids[i]);
        free(s->ids);
        memset(s, 0, sizeof *s);
}

/* ---- HTTP and ports -------------------------------------------------------- */

int tu_free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        socklen_t len = sizeof sa;
        cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        close(fd);
        return ntohs(sa.sin_port);
}

int tu_http(int port, const char *method, const char *path, int timeout_ms,
            char **head, char **body) {
        if (head)
                *head = NULL;
        if (body)
                *body = NULL;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
                return -1;
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        char req[512];
        int n = snprintf(req, sizeof req,
                         "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method,
                         path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
            write(fd, req, (size_t)n) != n) {
                close(fd);
                return -1;
        }
        size_t cap = 1 << 16, len = 0;
        char *raw = malloc(cap);
        ssize_t k;
        while (raw && (k = read(fd, raw + len, cap - 1 - len)) > 0) {
                len += (size_t)k;
                if (cap - 1 - len == 0)
                        raw = realloc(raw, cap *= 2);
        }
        close(fd);
        if (!raw)
                return -1;
        raw[len] = '\0';
        int status;
        char *sep = strstr(raw, "\r\n\r\n");
        if (!sep || sscanf(raw, "HTTP/1.%*d %d", &status) != 1) {
                free(raw);
                return -1;
        }
        if (body)
                *body = strdup(sep + 4);
        *sep = '\0';
        if (head)
                *head = strdup(raw);
        free(raw);
        return status;
}
