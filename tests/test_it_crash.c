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
        tu_pair_conf(&broker, "a", NULL, conf_a, sizeof conf_a);
        tu_pair_conf(&broker, "b", NULL, conf_b, sizeof conf_b);
        long events = tu_count_lines(fixture);

        /* ~30 s of events, so the kills land while they flow. */
        snprintf(log_load, sizeof log_load, "%s/load.log", broker.dir);
        char *load_argv[] = {ITD_BINARY, "load", "--config", conf_a,
                             "--input", fixture, "--format", "jsonl",
                             "--rate", "110", NULL};
        load_pid = tu_spawn(load_argv, log_load);
        cr_assert(load_pid > 0);
        pid_t a = tu_pair_start(&broker, "a", conf_a);
        if (during_write)
                setenv("ITD_TEST_CHECKPOINT_PAUSE_MS", "700", 1);
        pid_t b = tu_pair_start(&broker, "b", conf_b);

        srand(during_write ? 4242 : 42);
        char ck_b[512];
        snprintf(ck_b, sizeof ck_b, "%s/ckpt.b", broker.dir);
        for (int k = 0; k < KILLS; k++) {
                /* Each life makes progress: one complete checkpoint first. */
                tu_wait_new_checkpoint(ck_b, tu_newest_checkpoint(ck_b));
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
                b = tu_pair_start(&broker, "b", conf_b);
        }
        unsetenv("ITD_TEST_CHECKPOINT_PAUSE_MS");
        cr_assert_eq(tu_wait(load_pid, 60000), 0, "load failed (see %s)",
                     log_load);
        load_pid = 0;

        tu_idset_t sa, sb;
        tu_pair_collect(&broker, events, &sa, &sb);
        tu_pair_wait_committed(&broker, 3, 120000);

        tu_pair_stop_and_count(a, b, &sa, &sb, events);
        cr_log_info("run b published %ld predictions for %ld events (%ld "
                    "replayed after kills)", sb.total, events,
                    sb.total - sb.unique);
        tu_idset_free(&sa);
        tu_idset_free(&sb);

        char *users_a = tu_pair_inspect(&broker, "a", 0),
             *users_b = tu_pair_inspect(&broker, "b", 0);
        cr_expect_str_eq(users_b, users_a,
                         "window state differs after kills (see %s)", broker.dir);
        char *sum_a = tu_pair_inspect(&broker, "a", 1),
             *sum_b = tu_pair_inspect(&broker, "b", 1);
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
