/*
 * model_id.c - the model lineage identity (see model_id.h).
 */
#include "model_id.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "conf_int.h"
#include "intentd/log.h"
#include "intentd/state.h"

/* Options that shape what a score means. */
static int shapes_model(const struct prop *p) {
        static const char *const prefixes[] = {"windows.", "session.",
                                               "labels.", "model."};
        if (p->reloadable)
                return 0; /* the learning rate: same lineage, other pace */
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
                if (!strncmp(p->name, prefixes[i], strlen(prefixes[i])))
                        return 1;
        return 0;
}

uint64_t itd_model_fingerprint(const itd_conf_t *conf,
                               const itd_engine_t *eng) {
        XXH64_state_t *h = XXH64_createState();
        XXH64_reset(h, 0);
        char buf[512];
        const itd_state_conf_t *sc = &itd_engine_partition_conf(eng)->state;
        size_t dim = itd_engine_dim(eng);
        for (size_t i = 0; i < dim; i++) {
                const char *name = itd_features_name(sc, i, buf, sizeof buf);
                XXH64_update(h, name, strlen(name) + 1);
        }
        int n = snprintf(buf, sizeof buf, "sparse %d x %d;",
                         ITD_SPARSE_FIELDS, ITD_SPARSE_SLOTS);
        XXH64_update(h, buf, (size_t)n);
        for (size_t i = 0; i < itd_conf_n_props; i++) {
                const struct prop *p = &itd_conf_props[i];
                if (!shapes_model(p))
                        continue;
                char val[256];
                itd_conf_format_value(conf, p, val, sizeof val);
                n = snprintf(buf, sizeof buf, "%s=%s;", p->name, val);
                XXH64_update(h, buf, (size_t)n < sizeof buf ? (size_t)n
                                                            : sizeof buf - 1);
        }
        uint64_t d = XXH64_digest(h);
        XXH64_freeState(h);
        return d;
}

char *itd_model_id_new(const itd_conf_t *conf, const itd_engine_t *eng,
                       char *out) {
        uint64_t run = 0;
        if (getrandom(&run, sizeof run, GRND_NONBLOCK) != (ssize_t)sizeof run) {
                /* No entropy yet (early boot): clock and pid still differ
                 * between two instances and two starts. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t seed[3] = {(uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec,
                                    (uint64_t)getpid()};
                run = XXH64(seed, sizeof seed, 0);
                itd_log(ITD_LOG_WARNING, "model",
                        "getrandom failed: model id drawn from the clock and "
                        "pid");
        }
        snprintf(out, ITD_MODEL_ID_MAX, "%016llx-%016llx",
                 (unsigned long long)itd_model_fingerprint(conf, eng),
                 (unsigned long long)run);
        return out;
}
