/*
 * conf_check.c - what `intentd run` refuses before it touches the network,
 * as one function that `run` and `check-config` share, so check-config
 * says "ok" only to a file run would start with (itd_conf_check_run in
 * conf.h). Each problem names where the option was set (file:line:column,
 * or "-o"), the key and why.
 *
 * The memory check mirrors how the model lays out its blocks
 * (model/mlp.c, model/logistic.c); tests/test_conf.c compares the
 * parameter count with a model actually built, so the two cannot drift.
 */
#include "intentd/conf.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "conf_int.h"
#include "conf_parts.h"
#include "http.h"
#include "intentd/input.h"
#include "intentd/mlp.h"
#include "intentd/model.h"
#include "intentd/prediction.h"
#include "intentd/state.h"

/* Classes of the MLP's next-action head (model/mlp_int.h ITD_MLP_K). */
#define NEXT_CLASSES ITD_NEXT__COUNT

bool itd_conf_listen_ok(const char *text, char *why, size_t why_size) {
        char host[256], port[8];
        if (!*text)
                return true; /* empty: no endpoint */
        if (itd_http_listen_split(text, host, sizeof host, port,
                                  sizeof port) == 0)
                return true;
        snprintf(why, why_size, "expected host:port, [ipv6]:port or :port "
                                "with port 0..65535");
        return false;
}

/* ------------------------------------------------------------- memory */

uint64_t itd_conf_model_bytes(const itd_conf_t *conf, uint64_t *n_params) {
        itd_state_conf_t sc;
        itd_conf_to_state(conf, &sc);
        uint64_t dense = itd_features_dim(&sc);
        uint64_t fields = ITD_SPARSE_FIELDS;
        uint64_t buckets = (uint64_t)conf->model_embedding_buckets;
        uint64_t dim = (uint64_t)conf->model_embedding_dim;
        uint64_t np, bytes;
        if (conf->model_type == ITD_MODEL_KIND_LOGISTIC) {
                /* one weight per dense feature and hashed bucket, plus the
                 * bias; FTRL keeps z and n per weight as doubles */
                np = 1 + dense + fields * buckets;
                bytes = np * 2 * sizeof(double);
        } else {
                uint64_t rows = dim ? fields * buckets : 0;
                uint64_t in = dense + (dim ? fields * dim : 0);
                np = 0;
                uint64_t width = in;
                for (size_t l = 0; l < conf->n_model_hidden; l++) {
                        uint64_t out = (uint64_t)conf->model_hidden[l];
                        np += out * width + out;
                        width = out;
                }
                np += width + 1;                          /* purchase head */
                np += NEXT_CLASSES * width + NEXT_CLASSES; /* next action */
                if (conf->model_wide_learning_rate > 0.0 && dense)
                        np += dense;                       /* wide path */
                np += rows * dim;                          /* embeddings */
                uint64_t moments = conf->model_optimizer == ITD_OPT_ADAM ? 2
                                   : conf->model_optimizer == ITD_OPT_ADAGRAD
                                       ? 1
                                       : 0;
                /* parameters + gradients + moments, and a mark per row */
                bytes = np * sizeof(float) * (2 + moments) + rows;
        }
        if (n_params)
                *n_params = np;
        return bytes;
}

/* The memory cgroup limit of this process (cgroup v2), or UINT64_MAX. */
static uint64_t cgroup_limit(void) {
        FILE *f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return UINT64_MAX;
        char line[4096], path[4200];
        uint64_t limit = UINT64_MAX;
        while (fgets(line, sizeof line, f)) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line[strcspn(line, "\n")] = '\0';
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max",
                         line + 3);
                FILE *m = fopen(path, "re");
                char v[64];
                if (m && fgets(v, sizeof v, m) && v[0] >= '0' && v[0] <= '9')
                        limit = strtoull(v, NULL, 10);
                if (m)
                        fclose(m);
        }
        fclose(f);
        return limit;
}

uint64_t itd_conf_memory_budget(char *what, size_t what_size) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        uint64_t budget = pages > 0 && page > 0
                              ? (uint64_t)pages * (uint64_t)page
                              : UINT64_MAX;
        const char *which = "physical memory";
        uint64_t cg = cgroup_limit();
        if (cg < budget) {
                budget = cg;
                which = "the memory cgroup limit: systemd MemoryMax=";
        }
        struct rlimit rl;
        if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            (uint64_t)rl.rlim_cur < budget) {
                budget = (uint64_t)rl.rlim_cur;
                which = "RLIMIT_AS: ulimit -v, systemd LimitAS=";
        }
        if (getrlimit(RLIMIT_DATA, &rl) == 0 &&
            rl.rlim_cur != RLIM_INFINITY && (uint64_t)rl.rlim_cur < budget) {
                budget = (uint64_t)rl.rlim_cur;
                which = "RLIMIT_DATA: ulimit -d, systemd LimitDATA=";
        }
        if (what && what_size)
                snprintf(what, what_size, "%s", which);
        return budget;
}

/* ------------------------------------------------------------ checks */

typedef struct report_s {
        const itd_conf_t *conf;
        const char *path;
        char *out;
        size_t cap, len;
        size_t n;
} report_t;

/* One problem about option name: "<where>: name: why". */
static void problem(report_t *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(report_t *r, const char *name, const char *fmt, ...) {
        char why[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        const char *at = itd_conf_where(r->conf, name);
        char where[4200];
        if (at && !strcmp(at, "-o"))
                snprintf(where, sizeof where, "-o %s", name);
        else if (at)
                snprintf(where, sizeof where, "%s: %s", at, name);
        else
                snprintf(where, sizeof where, "%s: %s (default)",
                         r->path ? r->path : "configuration", name);
        r->n++;
        if (!r->out || r->len + 1 >= r->cap)
                return;
        int w = snprintf(r->out + r->len, r->cap - r->len, "%s%s: %s",
                         r->len ? "\n" : "", where, why);
        if (w > 0)
                r->len += (size_t)w < r->cap - r->len ? (size_t)w
                                                       : r->cap - r->len - 1;
}

static const char *kafka_value(const itd_conf_t *conf, const char *key) {
        for (size_t i = 0; i < conf->n_kafka; i++)
                if (!strcmp(conf->kafka_keys[i], key))
                        return conf->kafka_values[i];
        return NULL;
}

static void check_brokers(report_t *r) {
        const char *b = kafka_value(r->conf, "bootstrap.servers");
        const char *m = kafka_value(r->conf, "metadata.broker.list");
        if ((b && *b) || (m && *m))
                return;
        const char *at = itd_conf_where(r->conf, "kafka.bootstrap.servers");
        r->n++;
        if (!r->out || r->len + 1 >= r->cap)
                return;
        int w = snprintf(r->out + r->len, r->cap - r->len,
                         "%s%s: kafka.bootstrap.servers: %s; intentd run "
                         "refuses to start without brokers",
                         r->len ? "\n" : "",
                         at ? at : (r->path ? r->path : "configuration"),
                         b ? "empty" : "not set");
        if (w > 0)
                r->len += (size_t)w < r->cap - r->len ? (size_t)w
                                                       : r->cap - r->len - 1;
}

/* librdkafka loads plugins when the property is set; run does exactly
 * this at client creation, so a bad path is found the same way. */
static void check_plugins(report_t *r) {
        const char *paths = kafka_value(r->conf, "plugin.library.paths");
        if (!paths || !*paths)
                return;
        char why[512];
        rd_kafka_conf_t *rk = rd_kafka_conf_new();
        if (rd_kafka_conf_set(rk, "plugin.library.paths", paths, why,
                              sizeof why) != RD_KAFKA_CONF_OK)
                problem(r, "kafka.plugin.library.paths", "librdkafka: %s",
                        why);
        rd_kafka_conf_destroy(rk);
}

static void check_listen(report_t *r) {
        const char *listen = r->conf->metrics_listen;
        char host[256], port[8];
        if (!*listen)
                return;
        if (itd_http_listen_split(listen, host, sizeof host, port,
                                  sizeof port) != 0) {
                problem(r, "metrics.listen", "\"%s\": expected host:port, "
                        "[ipv6]:port or :port with port 0..65535", listen);
                return;
        }
        struct addrinfo hints = {0}, *ai = NULL;
        hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
        if (rc != 0)
                problem(r, "metrics.listen", "\"%s\": cannot resolve \"%s\": "
                        "%s", listen, host, gai_strerror(rc));
        if (ai)
                freeaddrinfo(ai);
}

static void check_memory(report_t *r) {
        uint64_t np;
        uint64_t need = itd_conf_model_bytes(r->conf, &np);
        char what[128];
        uint64_t budget = itd_conf_memory_budget(what, sizeof what);
        if (need <= budget)
                return;
        const itd_conf_t *c = r->conf;
        const char *key = itd_conf_where(c, "model.embedding.buckets")
                              ? "model.embedding.buckets"
                          : itd_conf_where(c, "model.embedding.dim")
                              ? "model.embedding.dim"
                              : "model.embedding.buckets";
        problem(r, key,
                "the model needs %.1f GB (%" PRIu64 " parameters: %" PRId64
                " rows x %" PRId64 " floats in each of %d embedding tables, "
                "with gradients and optimizer moments), more than the %.1f "
                "GB this process may use (%s); lower model.embedding.buckets "
                "or model.embedding.dim",
                (double)need / 1e9, np, c->model_embedding_buckets,
                c->model_embedding_dim, ITD_SPARSE_FIELDS,
                (double)budget / 1e9, what);
}

/* The decoder is built exactly as run builds it (no network: the
 * registry client only parses its URL). */
static void check_input(report_t *r) {
        const itd_conf_t *c = r->conf;
        itd_input_conf_t ic;
        itd_conf_to_input(c, &ic);
        char why[512] = "";
        itd_input_fault_t fault;
        itd_decoder_t *dec = itd_decoder_new(&ic, &fault, why, sizeof why);
        if (dec) {
                itd_decoder_destroy(dec);
                return;
        }
        /* The option table keeps format, framing and limits in range, so
         * what is left to name is the folder or the registry. */
        problem(r, fault == ITD_INPUT_FAULT_SCHEMAS_DIR
                       ? "input.schemas_dir"
                       : "input.schema_registry.url",
                "%s", why);
}

/* checkpoint.dir as run resolves it: "auto" is $STATE_DIRECTORY. Run
 * creates the folder (one level) and needs to write in it. */
static void check_checkpoint_dir(report_t *r) {
        const char *dir = r->conf->checkpoint_dir;
        char buf[4096];
        if (!strcmp(dir, "auto")) {
                const char *sd = getenv("STATE_DIRECTORY");
                snprintf(buf, sizeof buf, "%.*s",
                         sd ? (int)strcspn(sd, ":") : 0, sd ? sd : "");
                dir = buf;
        }
        if (!*dir)
                return;
        struct stat sb;
        if (stat(dir, &sb) == 0) {
                if (!S_ISDIR(sb.st_mode))
                        problem(r, "checkpoint.dir", "\"%s\" is not a folder",
                                dir);
                else if (access(dir, W_OK | X_OK) != 0)
                        problem(r, "checkpoint.dir", "\"%s\" is not writable: "
                                "%s", dir, strerror(errno));
                return;
        }
        if (errno != ENOENT) {
                problem(r, "checkpoint.dir", "\"%s\": %s", dir,
                        strerror(errno));
                return;
        }
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash == parent)
                slash[1] = '\0';
        else if (slash)
                *slash = '\0';
        else
                snprintf(parent, sizeof parent, ".");
        if (stat(parent, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
            access(parent, W_OK | X_OK) != 0)
                problem(r, "checkpoint.dir", "\"%s\" does not exist and "
                        "cannot be created: \"%s\" is not a writable folder",
                        dir, parent);
}

/* The output registry's URL and the legacy id, as out_schemas.c needs
 * them (registering itself needs the network: left to run). */
static void check_output(report_t *r) {
        const itd_conf_t *c = r->conf;
        const char *url = c->output_schema_registry_url;
        if (!*url)
                return;
        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8))
                problem(r, "output.schema_registry.url",
                        "expected http:// or https://");
        if (c->output_schema_id >= 0)
                problem(r, "output.schema_id",
                        "%lld and output.schema_registry.url are both set: "
                        "the registry gives each output its own id",
                        (long long)c->output_schema_id);
}

/* The state changelog needs a topic of its own: its records are
 * partition snapshots, which consumers of another topic cannot read, and
 * its partition p must hold events partition p's state only. */
static void check_changelog(report_t *r) {
        const itd_conf_t *c = r->conf;
        const char *cl = c->topic_changelog;
        if (!*cl)
                return;
        const struct {
                const char *name, *topic;
        } others[] = {
            {"topics.events", c->topic_events},
            {"topics.predictions", c->topic_predictions},
            {"topics.triggers", c->topic_triggers},
            {"topics.dead_letter", c->topic_dead_letter},
            {"topics.model", c->topic_model},
            {"topics.risk", c->topic_risk},
        };
        for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
                if (!strcmp(cl, others[i].topic))
                        problem(r, "topics.changelog",
                                "\"%s\" is also %s; the state changelog "
                                "needs a topic of its own",
                                cl, others[i].name);
}

size_t itd_conf_check_run(const itd_conf_t *conf, const char *path,
                          char *errstr, size_t errstr_size) {
        report_t r = {.conf = conf, .path = path, .out = errstr,
                      .cap = errstr_size};
        if (errstr && errstr_size)
                errstr[0] = '\0';
        check_brokers(&r);
        check_plugins(&r);
        check_listen(&r);
        check_memory(&r);
        check_input(&r);
        check_output(&r);
        check_changelog(&r);
        check_checkpoint_dir(&r);
        return r.n;
}
