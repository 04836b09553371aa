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
 *     checkpoint, first with three workers, then with two again: every
 *     event still has a prediction (some twice: those replayed after a
 *     kill, with the same prediction_id, as test_it_crash accounts it),
 *     the state equals A's, and each restart by another count of workers
 *     says so in the log;
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

/* pipeline.workers for tu_pair_conf: a runs one worker, b two. */
#define ONE_WORKER "pipeline:\n  workers: 1\n"
#define TWO_WORKERS "pipeline:\n  workers: 2\n"
#define THREE_WORKERS "pipeline:\n  workers: 3\n"

/* The counters of daemon name's newest checkpoint's engine.bin (events,
 * predictions, late, examples positive, negative: words 5 to 9 of the
 * trainer snapshot's header after the frame's prefix, core/trainer_snap.c).
 * With several workers it holds them all summed, so they equal one
 * worker's: they follow the events alone. */
static void trainer_counters(const char *name, uint64_t out[5]) {
        char ck[512], path[1024];
        snprintf(ck, sizeof ck, "%s/ckpt.%s", broker.dir, name);
        unsigned long long top = tu_newest_checkpoint(ck);
        cr_assert(top > 0, "no checkpoint in %s", ck);
        snprintf(path, sizeof path, "%s/cut-%012llu/engine.bin", ck, top);
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

static void run_and_compare(int kills) {
        char conf_a[512], conf_b[512], log_load[512];
        tu_pair_conf(&broker, "a", ONE_WORKER, conf_a, sizeof conf_a);
        tu_pair_conf(&broker, "b", TWO_WORKERS, conf_b, sizeof conf_b);
        long events = tu_count_lines(input);
        cr_assert(events > 1000, "%ld simulated events", events);

        /* With kills, ~30 s of events, so they land while events flow. */
        snprintf(log_load, sizeof log_load, "%s/load.log", broker.dir);
        char *load_argv[] = {ITD_BINARY, "load", "--config", conf_a,
                             "--input", input, "--format", "jsonl",
                             "--rate", kills ? "120" : "2000", NULL};
        load_pid = tu_spawn(load_argv, log_load);
        cr_assert(load_pid > 0);
        pid_t a = tu_pair_start(&broker, "a", conf_a);
        pid_t b = tu_pair_start(&broker, "b", conf_b);

        srand(7);
        char ck_b[512];
        snprintf(ck_b, sizeof ck_b, "%s/ckpt.b", broker.dir);
        for (int k = 0; k < kills; k++) {
                /* Each life makes progress: one complete checkpoint first. */
                tu_wait_new_checkpoint(ck_b, tu_newest_checkpoint(ck_b));
                tu_sleep_ms(rand() % 2000);
                cr_assert_eq(kill(b, SIGKILL), 0);
                cr_assert_eq(tu_wait(b, 10000), 128 + SIGKILL);
                /* the first restart by three workers, the next by two */
                tu_pair_conf(&broker, "b",
                             k % 2 == 0 ? THREE_WORKERS : TWO_WORKERS,
                             conf_b, sizeof conf_b);
                b = tu_pair_start(&broker, "b", conf_b);
        }
        cr_assert_eq(tu_wait(load_pid, 90000), 0, "load failed (see %s)",
                     log_load);
        load_pid = 0;

        tu_idset_t sa, sb;
        tu_pair_collect(&broker, events, &sa, &sb);
        tu_pair_wait_committed(&broker, PARTS, 120000);

        tu_pair_stop_and_count(a, b, &sa, &sb, events);
        if (!kills)
                cr_expect_eq(sb.total, events,
                             "run b, undisturbed: %ld records for %ld "
                             "events",
                             sb.total, events);
        cr_log_info("run b (2 workers, %d kills) published %ld predictions "
                    "for %ld events",
                    kills, sb.total, events);
        tu_idset_free(&sa);
        tu_idset_free(&sb);

        char log_b[512];
        snprintf(log_b, sizeof log_b, "%s/run.b.log", broker.dir);
        char *text = tu_read_file(log_b);
        cr_expect(text && strstr(text, "2 pipeline workers"),
                  "run b did not run two workers (see %s)", log_b);
        if (kills >= 2)
                cr_expect(text &&
                              strstr(text, "was written by 2 pipeline "
                                           "workers, this run has 3") &&
                              strstr(text, "was written by 3 pipeline "
                                           "workers, this run has 2"),
                          "run b's restarts by another count of workers "
                          "logged no line saying so (see %s)",
                          log_b);
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

        char *users_a = tu_pair_inspect(&broker, "a", 0),
             *users_b = tu_pair_inspect(&broker, "b", 0);
        cr_expect(strlen(users_a) > 0, "no users in a's checkpoint");
        cr_expect_str_eq(users_b, users_a,
                         "window state of 2 workers differs from 1 (see %s)",
                         broker.dir);
        char *sum_a = tu_pair_inspect(&broker, "a", 1),
             *sum_b = tu_pair_inspect(&broker, "b", 1);
        cr_expect_str_eq(sum_b, sum_a, "partition summaries differ");
        free(users_a);
        free(users_b);
        free(sum_a);
        free(sum_b);
}

Test(run_workers, two_workers_predict_each_event_once_state_as_one) {
        run_and_compare(0);
}

Test(run_workers, kill_9_and_restart_with_three_then_two_workers_keeps_state) {
        run_and_compare(KILLS);
}
