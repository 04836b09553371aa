/*
 * test_it_crash.c - restart without forgetting, as processes on
 * the embedded broker: the same events go through two `intentd run`
 * daemons at once, each its own consumer group, prediction topic and
 * checkpoint.dir. A runs undisturbed; B is killed with SIGKILL at seeded
 * random moments and restarted. Both are then stopped with SIGTERM and
 * `intentd inspect state` of their checkpoints must be identical (every
 * user's windows, every partition's pending labels and next offset), and
 * B's prediction topic must hold a prediction for every event (some twice:
 * those replayed after a kill, with the same prediction_id).
 *
 * The events are loaded slowly (`load --rate`), so the kills land while
 * they flow. The second test aims its kills at checkpoint writes: with the
 * test hook ITD_TEST_CHECKPOINT_PAUSE_MS a checkpoint sleeps between its files,
 * and B is killed as soon as an unfinished checkpoint folder appears.
 *
 * windows.allowed_lateness is 1h so no watermark moves by wall clock (idle
 * partitions, docs/FEATURES.md): the state then depends on the events
 * alone, which is what the comparison needs.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/event.h"
#include "testutil.h"

#define KILLS 3

static tu_broker_t broker;
static char fixture[512];
static pid_t load_pid;

static void start_broker(void) {
        tu_broker_start(&broker, 3, "intentd.events,pred.a,pred.b,dlq");
        tu_src("tests/fixtures/events_small.jsonl", fixture, sizeof fixture);
}

static void stop_broker(void) {
        if (load_pid > 0) {
                kill(load_pid, SIGKILL);
                tu_wait(load_pid, 5000);
        }
        tu_broker_stop(&broker);
}

TestSuite(crash, .init = start_broker, .fini = stop_broker, .timeout = 240);

/* Config of daemon `name` (a or b): its group, topic and folder. */
static void write_conf(const char *name, char *path, size_t cap) {
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
                      name, broker.dir, name);
}

static pid_t start_run(const char *name, const char *conf) {
        char log[512];
        snprintf(log, sizeof log, "%s/run.%s.log", broker.dir, name);
        return tu_daemon_start(conf, log);
}

/* Unique prediction ids of pred.a and pred.b, read from the start. */
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

/* Reads pred.a and pred.b until each has `want` unique ids (or 150 s). */
static void collect(seen_t *s) {
        rd_kafka_t *rk = tu_consumer_new(broker.bootstrap, "crash-test-reader",
                                         "pred.a,pred.b");
        tu_collect_predictions(rk, 150000, on_prediction, s);
        tu_consumer_destroy(rk);
}

/* `intentd inspect state [--summary]` of daemon name's checkpoints: the
 * JSON lines, sorted, as one string (caller frees). */
static char *inspect(const char *name, int summary) {
        char ck[512];
        snprintf(ck, sizeof ck, "%s/ckpt.%s", broker.dir, name);
        const char *cks[] = {ck};
        return tu_inspect_state(broker.dir, cks, 1, summary, 0);
}

/* Sequence of the newest complete checkpoint in a checkpoint folder (0: none).
 */
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

/* Waits until the checkpoint folder has a complete checkpoint newer than seq.
 */
static void wait_new_checkpoint(const char *ck, unsigned long long seq, int k) {
        for (int w = 0; w < 30000 && newest_checkpoint(ck) <= seq; w += 20)
                tu_sleep_ms(20);
        cr_assert(newest_checkpoint(ck) > seq,
                  "kill %d: no checkpoint after cut %llu", k, seq);
}

/*
 * Waits until both groups committed every event: commits follow complete
 * checkpoints, so then each daemon has a checkpoint of everything (and a
 * restarted one has caught up).
 */
static int committed_all(void *arg) {
        (void)arg;
        const char *groups[] = {"group.a", "group.b"};
        for (int g = 0; g < 2; g++) {
                int64_t committed[3], end[3];
                if (tu_offsets(broker.bootstrap, groups[g], "intentd.events", 3,
                               committed, end) != 0)
                        return 0;
                for (int p = 0; p < 3; p++)
                        if (committed[p] != end[p])
                                return 0;
        }
        return 1;
}

static void wait_committed(int timeout_ms) {
        cr_assert_eq(tu_wait_until(committed_all, NULL, timeout_ms), 0,
                     "the daemons did not commit every event in %d ms",
                     timeout_ms);
}

/* 1 when the checkpoint folder holds an unfinished checkpoint. */
static int checkpoint_in_progress(const char *ck) {
        DIR *d = opendir(ck);
        if (!d)
                return 0;
        struct dirent *de;
        int found = 0;
        while (!found && (de = readdir(d)) != NULL)
                found = strstr(de->d_name, ".tmp") != NULL;
        closedir(d);
        return found;
}

static void crash_and_compare(int during_write) {
        char conf_a[512], conf_b[512], log_load[512];
        write_conf("a", conf_a, sizeof conf_a);
        write_conf("b", conf_b, sizeof conf_b);
        long events = tu_count_lines(fixture);

        /* ~30 s of events, so the kills land while they flow. */
        snprintf(log_load, sizeof log_load, "%s/load.log", broker.dir);
        char *load_argv[] = {ITD_BINARY, "load", "--config", conf_a,
                             "--input", fixture, "--format", "jsonl",
                             "--rate", "110", NULL};
        load_pid = tu_spawn(load_argv, log_load);
        cr_assert(load_pid > 0);
        pid_t a = start_run("a", conf_a);
        if (during_write)
                setenv("ITD_TEST_CHECKPOINT_PAUSE_MS", "700", 1);
        pid_t b = start_run("b", conf_b);

        srand(during_write ? 4242 : 42);
        char ck_b[512];
        snprintf(ck_b, sizeof ck_b, "%s/ckpt.b", broker.dir);
        for (int k = 0; k < KILLS; k++) {
                /* Each life makes progress: one complete checkpoint first. */
                wait_new_checkpoint(ck_b, newest_checkpoint(ck_b), k);
                if (during_write) {
                        /* ... then the next one is caught mid-write. */
                        for (int w = 0;
                             w < 30000 && !checkpoint_in_progress(ck_b);
                             w += 10)
                                tu_sleep_ms(10);
                        cr_assert(checkpoint_in_progress(ck_b),
                                  "no checkpoint write to kill %d", k);
                        tu_sleep_ms(rand() % 500);
                } else {
                        tu_sleep_ms(rand() % 2000);
                }
                cr_assert_eq(kill(b, SIGKILL), 0);
                cr_assert_eq(tu_wait(b, 10000), 128 + SIGKILL);
                b = start_run("b", conf_b);
        }
        unsetenv("ITD_TEST_CHECKPOINT_PAUSE_MS");
        cr_assert_eq(tu_wait(load_pid, 60000), 0, "load failed (see %s)",
                     log_load);
        load_pid = 0;

        seen_t seen = {.want = events};
        tu_idset_init(&seen.a, (size_t)events * 2);
        tu_idset_init(&seen.b, (size_t)events * 2);
        collect(&seen);
        const tu_idset_t sa = seen.a, sb = seen.b;
        wait_committed(120000);

        kill(a, SIGTERM);
        kill(b, SIGTERM);
        cr_expect_eq(tu_wait(a, 60000), 0, "run a did not stop cleanly");
        cr_expect_eq(tu_wait(b, 60000), 0, "run b did not stop cleanly");

        cr_expect_eq(sa.unique, events, "run a: %ld of %ld events predicted",
                     sa.unique, events);
        cr_expect_eq(sb.unique, events,
                     "run b: %ld of %ld events predicted (%ld records)",
                     sb.unique, events, sb.total);
        cr_log_info("run b published %ld predictions for %ld events (%ld "
                    "replayed after kills)", sb.total, events,
                    sb.total - sb.unique);
        tu_idset_free(&seen.a);
        tu_idset_free(&seen.b);

        char *users_a = inspect("a", 0), *users_b = inspect("b", 0);
        cr_expect_str_eq(users_b, users_a,
                         "window state differs after kills (see %s)", broker.dir);
        char *sum_a = inspect("a", 1), *sum_b = inspect("b", 1);
        /* Per partition: next offset, watermark, users, pending labels
         * and resolved counts, equal. */
        cr_expect_str_eq(sum_b, sum_a, "partition summaries differ");
        free(users_a);
        free(users_b);
        free(sum_a);
        free(sum_b);
}

Test(crash, kill_9_at_random_points_keeps_state_identical) {
        crash_and_compare(0);
}

Test(crash, kill_9_during_checkpoint_writes_keeps_state_identical) {
        crash_and_compare(1);
}
