/*
 * test_it_run_workers.c - `intentd run` with two pipeline workers, as
 * processes on the embedded broker (4 partitions: each worker owns two).
 * The same simulated events go through two daemons at once, each its own
 * consumer group, prediction topic and checkpoint.dir: A with one worker,
 * B with two (pipeline.workers: 2).
 *
 *   - undisturbed: B publishes exactly one prediction per event (as many
 *     records as events, all ids distinct), and `intentd inspect state`
 *     of both final checkpoints is equal, users and partition summaries;
 *   - B killed with SIGKILL while the events flow and restarted from its
 *     checkpoint: every event still has a prediction (some twice: those
 *     replayed after a kill, with the same prediction_id, as
 *     test_it_crash accounts it), and the state equals A's;
 *   - in both, the counters of B's last checkpoint (events, predictions,
 *     late, positive and negative training examples) equal A's: a
 *     checkpoint holds every worker's, and a restart restores them all.
 *
 * Comparing one worker's state with two workers' holds because the state
 * does not depend on the model: windows, pending labels and their counts
 * follow the events alone (test_it_workers checks the same for replay),
 * while the two models differ (the replicas learn between merges).
 * windows.allowed_lateness is 1h so no watermark moves by wall clock.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/event.h"
#include "intentd/frame.h"
#include "testutil.h"

#define PARTS 4
#define KILLS 2

static tu_broker_t broker;
static char input[512];
static pid_t load_pid;

/* About 3500 events of 200 simulated users, into the broker's folder. */
static void start_broker(void) {
        tu_broker_start(&broker, PARTS, "intentd.events,pred.a,pred.b,dlq");
        char log[512];
        snprintf(input, sizeof input, "%s/sim.jsonl", broker.dir);
        snprintf(log, sizeof log, "%s/simulate.log", broker.dir);
        char *argv[] = {ITD_BINARY, "simulate", "--users", "200", "--days",
                        "1", "--seed", "5", "--out", input, NULL};
        cr_assert_eq(tu_run(argv, log, 60000), 0, "simulate failed");
}

static void stop_broker(void) {
        if (load_pid > 0) {
                kill(load_pid, SIGKILL);
                tu_wait(load_pid, 5000);
        }
        tu_broker_stop(&broker);
}

TestSuite(run_workers, .init = start_broker, .fini = stop_broker,
          .timeout = 240);

/* Config of daemon `name` (a or b) with `workers` pipeline workers. */
static void write_conf(const char *name, int workers, char *path,
                       size_t cap) {
        char file[64], kafka[128];
        snprintf(file, sizeof file, "%s.yaml", name);
        snprintf(kafka, sizeof kafka,
                 "  group.id: \"group.%s\"\n"
                 "  session.timeout.ms: 3000\n"
                 "  heartbeat.interval.ms: 300\n",
                 name);
        tu_conf_write(broker.dir, broker.bootstrap, file, path, cap, kafka,
                      "topics:\n"
                      "  predictions: \"pred.%s\"\n"
                      "  dead_letter: dlq\n"
                      "input:\n"
                      "  format: avro\n"
                      "pipeline:\n"
                      "  workers: %d\n"
                      "windows:\n"
                      "  allowed_lateness: 1h\n"
                      "model:\n"
                      "  embedding.buckets: 1024\n"
                      "  hidden: [16]\n"
                      "metrics:\n"
                      "  listen: \"\"\n"
                      "  log.interval: 1s\n"
                      "checkpoint:\n"
                      "  dir: \"%s/ckpt.%s\"\n"
                      "  interval: 1s\n",
                      name, workers, broker.dir, name);
}

static pid_t start_run(const char *name, const char *conf) {
        char log[512];
        snprintf(log, sizeof log, "%s/run.%s.log", broker.dir, name);
        return tu_daemon_start(conf, log);
}

/* Prediction ids of pred.a and pred.b, read from the start. */
typedef struct seen_s {
        tu_idset_t a, b;
        long want;
} seen_t;

static int on_prediction(void *arg, const rd_kafka_message_t *m,
                         const itd_prediction_t *p) {
        seen_t *s = arg;
        if (p)
                tu_idset_add(strcmp(rd_kafka_topic_name(m->rkt), "pred.a")
                                 ? &s->b
                                 : &s->a,
                             p->prediction_id);
        return s->a.unique >= s->want && s->b.unique >= s->want;
}

static void collect(seen_t *s) {
        rd_kafka_t *rk = tu_consumer_new(broker.bootstrap, "workers-reader",
                                         "pred.a,pred.b");
        tu_collect_predictions(rk, 150000, on_prediction, s);
        tu_consumer_destroy(rk);
}

/* `intentd inspect state [--summary]` of daemon name's checkpoints, the
 * JSON lines sorted (caller frees). */
static char *inspect(const char *name, int summary) {
        char ck[512];
        snprintf(ck, sizeof ck, "%s/ckpt.%s", broker.dir, name);
        const char *cks[] = {ck};
        return tu_inspect_state(broker.dir, cks, 1, summary, 0);
}

static unsigned long long newest_checkpoint(const char *ck) {
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

static void wait_new_checkpoint(const char *ck, unsigned long long seq,
                                int k) {
        for (int w = 0; w < 30000 && newest_checkpoint(ck) <= seq; w += 20)
                tu_sleep_ms(20);
        cr_assert(newest_checkpoint(ck) > seq,
                  "kill %d: no checkpoint after cut %llu", k, seq);
}

/* The counters of daemon name's newest checkpoint's engine.bin (events,
 * predictions, late, examples positive, negative: words 5 to 9 of the
 * trainer snapshot's header after the frame's prefix, core/trainer.c). With several workers it holds them all summed,
 * so they equal one worker's: they follow the events alone. */
static void trainer_counters(const char *name, uint64_t out[5]) {
        char ck[512], path[1024], best[256] = "";
        snprintf(ck, sizeof ck, "%s/ckpt.%s", broker.dir, name);
        DIR *d = opendir(ck);
        cr_assert_not_null(d, "%s", ck);
        struct dirent *de;
        unsigned long long top = 0, seq;
        char rest[8];
        while ((de = readdir(d)) != NULL)
                if (sscanf(de->d_name, "cut-%llu%7s", &seq, rest) == 1 &&
                    seq > top) {
                        top = seq;
                        snprintf(best, sizeof best, "%s", de->d_name);
                }
        closedir(d);
        cr_assert(top > 0, "no checkpoint in %s", ck);
        snprintf(path, sizeof path, "%s/%s/engine.bin", ck, best);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        uint8_t head[ITD_FRAME_PREFIX_BYTES + 10 * 8];
        cr_assert_eq(fread(head, 1, sizeof head, f), sizeof head, "%s",
                     path);
        fclose(f);
        cr_assert(!memcmp(head, ITD_FRAME_MAGIC, 8) &&
                      itd_get_le32(head + 12) == ITD_FRAME_TRAINER,
                  "%s is no trainer snapshot", path);
        for (int i = 0; i < 5; i++)
                out[i] = itd_get_le64(head + ITD_FRAME_PREFIX_BYTES +
                                      8 * (5 + i));
}

/* Both groups committed every event (commits follow checkpoints). */
static int committed_all(void *arg) {
        (void)arg;
        const char *groups[] = {"group.a", "group.b"};
        for (int g = 0; g < 2; g++) {
                int64_t committed[PARTS], end[PARTS];
                if (tu_offsets(broker.bootstrap, groups[g], "intentd.events",
                               PARTS, committed, end) != 0)
                        return 0;
                for (int p = 0; p < PARTS; p++)
                        if (committed[p] != end[p])
                                return 0;
        }
        return 1;
}

static void run_and_compare(int kills) {
        char conf_a[512], conf_b[512], log_load[512];
        write_conf("a", 1, conf_a, sizeof conf_a);
        write_conf("b", 2, conf_b, sizeof conf_b);
        long events = tu_count_lines(input);
        cr_assert(events > 1000, "%ld simulated events", events);

        /* With kills, ~30 s of events, so they land while events flow. */
        snprintf(log_load, sizeof log_load, "%s/load.log", broker.dir);
        char *load_argv[] = {ITD_BINARY, "load", "--config", conf_a,
                             "--input", input, "--format", "jsonl",
                             "--rate", kills ? "120" : "2000", NULL};
        load_pid = tu_spawn(load_argv, log_load);
        cr_assert(load_pid > 0);
        pid_t a = start_run("a", conf_a);
        pid_t b = start_run("b", conf_b);

        srand(7);
        char ck_b[512];
        snprintf(ck_b, sizeof ck_b, "%s/ckpt.b", broker.dir);
        for (int k = 0; k < kills; k++) {
                /* Each life makes progress: one complete checkpoint first. */
                wait_new_checkpoint(ck_b, newest_checkpoint(ck_b), k);
                tu_sleep_ms(rand() % 2000);
                cr_assert_eq(kill(b, SIGKILL), 0);
                cr_assert_eq(tu_wait(b, 10000), 128 + SIGKILL);
                b = start_run("b", conf_b);
        }
        cr_assert_eq(tu_wait(load_pid, 90000), 0, "load failed (see %s)",
                     log_load);
        load_pid = 0;

        seen_t seen = {.want = events};
        tu_idset_init(&seen.a, (size_t)events * 2);
        tu_idset_init(&seen.b, (size_t)events * 2);
        collect(&seen);
        const tu_idset_t sa = seen.a, sb = seen.b;
        cr_assert_eq(tu_wait_until(committed_all, NULL, 120000), 0,
                     "the daemons did not commit every event");

        kill(a, SIGTERM);
        kill(b, SIGTERM);
        cr_expect_eq(tu_wait(a, 60000), 0, "run a did not stop cleanly");
        cr_expect_eq(tu_wait(b, 60000), 0, "run b did not stop cleanly");

        cr_expect_eq(sa.unique, events, "run a: %ld of %ld events predicted",
                     sa.unique, events);
        cr_expect_eq(sb.unique, events,
                     "run b: %ld of %ld events predicted (%ld records)",
                     sb.unique, events, sb.total);
        if (!kills)
                cr_expect_eq(sb.total, events,
                             "run b, undisturbed: %ld records for %ld "
                             "events",
                             sb.total, events);
        cr_log_info("run b (2 workers, %d kills) published %ld predictions "
                    "for %ld events",
                    kills, sb.total, events);
        tu_idset_free(&seen.a);
        tu_idset_free(&seen.b);

        char log_b[512];
        snprintf(log_b, sizeof log_b, "%s/run.b.log", broker.dir);
        char *text = tu_read_file(log_b);
        cr_expect(text && strstr(text, "2 pipeline workers"),
                  "run b did not run two workers (see %s)", log_b);
        free(text);

        /* no example lost: the training counters of two workers' last
         * checkpoint (each restart restored them from the one before)
         * equal one worker's */
        static const char *const what[5] = {"events", "predictions", "late",
                                            "positive examples",
                                            "negative examples"};
        uint64_t ca[5], cb[5];
        trainer_counters("a", ca);
        trainer_counters("b", cb);
        for (int i = 0; i < 5; i++)
                cr_expect_eq(cb[i], ca[i],
                             "checkpoint of 2 workers: %llu %s, of 1 "
                             "worker: %llu",
                             (unsigned long long)cb[i], what[i],
                             (unsigned long long)ca[i]);
        cr_log_info("last checkpoints: %llu events, %llu + %llu examples "
                    "in each", (unsigned long long)ca[0],
                    (unsigned long long)ca[3], (unsigned long long)ca[4]);

        char *users_a = inspect("a", 0), *users_b = inspect("b", 0);
        cr_expect(strlen(users_a) > 0, "no users in a's checkpoint");
        cr_expect_str_eq(users_b, users_a,
                         "window state of 2 workers differs from 1 (see %s)",
                         broker.dir);
        char *sum_a = inspect("a", 1), *sum_b = inspect("b", 1);
        cr_expect_str_eq(sum_b, sum_a, "partition summaries differ");
        free(users_a);
        free(users_b);
        free(sum_a);
        free(sum_b);
}

Test(run_workers, two_workers_predict_each_event_once_state_as_one) {
        run_and_compare(0);
}

Test(run_workers, kill_9_and_restart_with_two_workers_keeps_state) {
        run_and_compare(KILLS);
}
