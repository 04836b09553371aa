/*
 * testutil_pair.c - two `intentd run` daemons side by side on one
 * embedded broker (testutil.h, "Two daemons"): their configuration, their
 * start, their predictions, their checkpoints and their commits.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

void tu_pair_conf(const tu_broker_t *b, const char *name, const char *extra,
                  char *path, size_t cap) {
        char file[64], kafka[128];
        snprintf(file, sizeof file, "%s.yaml", name);
        snprintf(kafka, sizeof kafka,
                 "  group.id: \"group.%s\"\n"
                 "  session.timeout.ms: 3000\n"
                 "  heartbeat.interval.ms: 300\n",
                 name);
        tu_conf_write(b->dir, b->bootstrap, file, path, cap, kafka,
                      "topics:\n"
                      "  predictions: \"pred.%s\"\n"
                      "  dead_letter: dlq\n"
                      "input:\n"
                      "  format: avro\n"
                      TU_YAML_SMALL
                      "  log.interval: 1s\n"
                      "checkpoint:\n"
                      "  dir: \"%s/ckpt.%s\"\n"
                      "  interval: 1s\n"
                      "%s",
                      name, b->dir, name, extra ? extra : "");
}

pid_t tu_pair_start(const tu_broker_t *b, const char *name,
                    const char *conf) {
        char log[512];
        snprintf(log, sizeof log, "%s/run.%s.log", b->dir, name);
        return tu_daemon_start(conf, log);
}

typedef struct seen_s {
        tu_idset_t *a, *b;
        long want;
} seen_t;

static int on_prediction(void *arg, const rd_kafka_message_t *m,
                         const itd_prediction_t *p) {
        seen_t *s = arg;
        if (p)
                tu_idset_add(strcmp(rd_kafka_topic_name(m->rkt), "pred.a")
                                 ? s->b
                                 : s->a,
                             p->prediction_id);
        return s->a->unique >= s->want && s->b->unique >= s->want;
}

void tu_pair_collect(const tu_broker_t *b, long want, tu_idset_t *a,
                     tu_idset_t *bs) {
        tu_idset_init(a, (size_t)want * 2);
        tu_idset_init(bs, (size_t)want * 2);
        seen_t s = {a, bs, want};
        rd_kafka_t *rk =
            tu_consumer_new(b->bootstrap, "pair-reader", "pred.a,pred.b");
        tu_collect_predictions(rk, 150000, on_prediction, &s);
        tu_consumer_destroy(rk);
}

char *tu_pair_inspect(const tu_broker_t *b, const char *name, int summary) {
        char ck[512];
        snprintf(ck, sizeof ck, "%s/ckpt.%s", b->dir, name);
        const char *cks[] = {ck};
        return tu_inspect_state(b->dir, cks, 1, summary, 0);
}

void tu_pair_stop_and_count(pid_t a, pid_t b, const tu_idset_t *sa,
                            const tu_idset_t *sb, long events) {
        kill(a, SIGTERM);
        kill(b, SIGTERM);
        cr_expect_eq(tu_wait(a, 60000), 0, "run a did not stop cleanly");
        cr_expect_eq(tu_wait(b, 60000), 0, "run b did not stop cleanly");
        cr_expect_eq(sa->unique, events, "run a: %ld of %ld events predicted",
                     sa->unique, events);
        cr_expect_eq(sb->unique, events,
                     "run b: %ld of %ld events predicted (%ld records)",
                     sb->unique, events, sb->total);
}

unsigned long long tu_newest_checkpoint(const char *ck) {
        DIR *d = opendir(ck);
        if (!d)
                return 0;
        struct dirent *de;
        unsigned long long best = 0, seq;
        char rest[8];
        while ((de = readdir(d)) != NULL)
                if (sscanf(de->d_name, "cut-%llu%7s", &seq, rest) == 1 &&
                    seq > best)
                        best = seq;
        closedir(d);
        return best;
}

void tu_wait_new_checkpoint(const char *ck, unsigned long long seq) {
        for (int w = 0; w < 30000 && tu_newest_checkpoint(ck) <= seq; w += 20)
                tu_sleep_ms(20);
        cr_assert(tu_newest_checkpoint(ck) > seq,
                  "no checkpoint in %s after checkpoint %llu in 30 s", ck, seq);
}

typedef struct committed_s {
        const tu_broker_t *b;
        int partitions;
} committed_t;

static int committed_all(void *arg) {
        const committed_t *c = arg;
        const char *groups[] = {"group.a", "group.b"};
        int64_t committed[64], end[64];
        for (int g = 0; g < 2; g++) {
                if (tu_offsets(c->b->bootstrap, groups[g], "intentd.events",
                               c->partitions, committed, end) != 0)
                        return 0;
                for (int p = 0; p < c->partitions; p++)
                        if (committed[p] != end[p])
                                return 0;
        }
        return 1;
}

void tu_pair_wait_committed(const tu_broker_t *b, int partitions,
                            int timeout_ms) {
        cr_assert(partitions > 0 && partitions <= 64);
        committed_t c = {b, partitions};
        cr_assert_eq(tu_wait_until(committed_all, &c, timeout_ms), 0,
                     "the daemons did not commit every event in %d ms",
                     timeout_ms);
}
