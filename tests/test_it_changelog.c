/*
 * test_it_changelog.c - state that follows its partition, as processes on
 * the embedded broker: three `intentd run` in one consumer group
 * (cooperative-sticky, static membership) with topics.changelog, and one
 * more alone in its own group as the reference, consume the same events
 * while they are loaded. Once every partition's offset is covered by a
 * changelog snapshot, one of the three is killed with SIGKILL; after the
 * session timeout its partitions move to the two survivors, which restore
 * them from the changelog and replay from there.
 *
 * Then the survivors' and the reference's `intentd inspect state` (every
 * user's windows; per partition its next offset, watermark, users, pending
 * labels and resolved counts) must be equal, and the group's prediction
 * topic must hold a prediction for every event.
 *
 * windows.allowed_lateness is 1h so no watermark moves by wall clock (idle
 * partitions, docs/FEATURES.md): the state then depends on the events
 * alone. The mock broker does not compact, so every snapshot stays on the
 * changelog and a restore reads them all: the state is kept small (a few
 * thousand events, 200 ms between snapshots).
 *
 * The second test stops one of two instances once everything is consumed:
 * the other takes its partitions over at the end of their events, so it
 * consumes nothing more, and its last checkpoint (at stop) must still hold
 * every partition it held.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "intentd/codec.h"
#include "intentd/event.h"
#include "testutil.h"

#define INST 3
#define PARTS 6
#define VICTIM 2

static tu_broker_t broker;
static pid_t load_pid;

static void start_broker(void) {
        tu_broker_start(&broker, PARTS,
                        "intentd.events,pred.g,pred.r,dlq,intentd.changelog");
}

static void stop_broker(void) {
        if (load_pid > 0) {
                kill(load_pid, SIGKILL);
                tu_wait(load_pid, 5000);
        }
        tu_broker_stop(&broker);
}

TestSuite(it_changelog, .init = start_broker, .fini = stop_broker,
          .timeout = 280);

/* Instance i of the group (0..INST-1), or the reference (INST). */
static void write_conf(int i, char *path, size_t cap) {
        char name[32], kafka[256], topics[256];
        snprintf(name, sizeof name, "i%d.yaml", i);
        if (i < INST) {
                snprintf(kafka, sizeof kafka,
                         TU_KAFKA_FAST "  group.id: group.g\n"
                                       "  partition.assignment.strategy: "
                                       "cooperative-sticky\n"
                                       "  group.instance.id: intentd-%d\n",
                         i);
                snprintf(topics, sizeof topics,
                         "  predictions: pred.g\n"
                         "  changelog: intentd.changelog\n");
        } else {
                snprintf(kafka, sizeof kafka,
                         TU_KAFKA_FAST "  group.id: group.r\n");
                snprintf(topics, sizeof topics, "  predictions: pred.r\n");
        }
        tu_conf_write(broker.dir, broker.bootstrap, name, path, cap, kafka,
                      "topics:\n"
                      "%s"
                      "  dead_letter: dlq\n"
                      "input:\n"
                      "  format: avro\n"
                      "state:\n"
                      "  changelog.interval: 200ms\n"
                      TU_YAML_SMALL
                      "checkpoint:\n"
                      "  dir: \"%s/ck%d\"\n"
                      "  interval: 1s\n",
                      topics, broker.dir, i);
}

/* The log (arg) says partitions were assigned to it, incrementally. */
static int was_assigned(void *arg) {
        char *text = tu_read_file(arg);
        int yes = 0;
        for (char *at = text ? strstr(text, "assigned ") : NULL; at && !yes;
             at = strstr(at + 1, "assigned ")) {
                char *end;
                long n = strtol(at + strlen("assigned "), &end, 10);
                yes = n > 0 && !strncmp(end, " partition(s), COOPERATIVE",
                                        strlen(" partition(s), COOPERATIVE"));
        }
        free(text);
        return yes;
}

/* Partitions the log at path says its instance holds: those assigned
 * (cooperatively, in increments) less those revoked. */
static int held(const char *path) {
        char *text = tu_read_file(path);
        int n = 0;
        static const char *const words[] = {"assigned ", "revoking "};
        for (int w = 0; w < 2; w++)
                for (char *at = text ? strstr(text, words[w]) : NULL; at;
                     at = strstr(at + 1, words[w]))
                        n += (w ? -1 : 1) *
                             (int)strtol(at + strlen(words[w]), NULL, 10);
        free(text);
        return n;
}

/* The survivors (logs arg[0..INST), VICTIM left out) hold every
 * partition between them. */
static int survivors_hold_all(void *arg) {
        char(*log)[512] = arg;
        int n = 0;
        for (int i = 0; i < INST; i++)
                if (i != VICTIM)
                        n += held(log[i]);
        return n == PARTS;
}

/* Every partition of group has a committed offset at or past want[p]
 * (NULL: the end). */
typedef struct commits_s {
        const char *group;
        const int64_t *want;
} commits_t;

static int committed(void *arg) {
        commits_t *c = arg;
        int64_t got[PARTS], end[PARTS];
        if (tu_offsets(broker.bootstrap, c->group, "intentd.events", PARTS,
                       got, end) != 0)
                return 0;
        for (int p = 0; p < PARTS; p++)
                if (got[p] < (c->want ? c->want[p] : end[p]) || got[p] <= 0)
                        return 0;
        return 1;
}

typedef struct tally_s {
        long expected;
        tu_idset_t ids;
} tally_t;

static int on_prediction(void *arg, const rd_kafka_message_t *m,
                         const itd_prediction_t *p) {
        (void)m;
        tally_t *t = arg;
        if (p)
                tu_idset_add(&t->ids, p->prediction_id);
        return t->ids.unique >= t->expected;
}

/* `intentd inspect state [--summary]` of the checkpoint folders of
 * instances ids[0..n): their JSON lines together, each once, sorted, as one
 * string (caller frees). A partition both survivors held at some point
 * must then look the same in both, or it shows twice. */
static char *inspect(const int *ids, int n, int summary) {
        char ck[4][512];
        const char *cks[4];
        cr_assert(n <= 4);
        for (int k = 0; k < n; k++) {
                snprintf(ck[k], sizeof ck[k], "%s/ck%d", broker.dir, ids[k]);
                cks[k] = ck[k];
        }
        return tu_inspect_state(broker.dir, cks, n, summary, 1);
}

static long file_size(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The last lines of name (a file of the test folder) on stderr. */
static void show_tail(const char *name, int lines) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", broker.dir, name);
        char *text = tu_read_file(path);
        if (!text)
                return;
        const char *at = text + strlen(text);
        for (int n = 0; at > text; at--)
                if (at[-1] == '\n' && ++n > lines)
                        break;
        fprintf(stderr, "---- %s, last %d lines:\n%s\n", path, lines, at);
        free(text);
}

/* ok, after showing the end of every log when it is false: a failure then
 * says what each instance did (the logs stay in the test folder). */
static int or_logs(int ok) {
        if (ok)
                return 1;
        char name[32];
        for (int i = 0; i <= INST; i++) {
                snprintf(name, sizeof name, "run%d.log", i);
                show_tail(name, 40);
        }
        show_tail("load.log", 5);
        show_tail("broker.log", 10);
        return 0;
}

/* Length of the line at s, without its newline. */
static size_t line_len(const char *s) {
        const char *nl = strchr(s, '\n');
        return nl ? (size_t)(nl - s) : strlen(s);
}

/* The lines of a that b lacks and those of b that a lacks (both sorted
 * bytewise, as tu_inspect_state sorts), at most max of each, as text
 * (caller frees): what differs, not two whole states. */
static char *diff_lines(const char *a, const char *na, const char *b,
                        const char *nb, int max) {
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        cr_assert(m);
        int only_a = 0, only_b = 0;
        while (*a || *b) {
                size_t la = line_len(a), lb = line_len(b);
                int c;
                if (!*a)
                        c = 1;
                else if (!*b)
                        c = -1;
                else {
                        c = memcmp(a, b, la < lb ? la : lb);
                        if (!c)
                                c = la < lb ? -1 : la > lb;
                }
                if (c < 0 && only_a++ < max)
                        fprintf(m, "only in %s: %.*s\n", na, (int)la, a);
                if (c > 0 && only_b++ < max)
                        fprintf(m, "only in %s: %.*s\n", nb, (int)lb, b);
                if (c <= 0)
                        a += la + (a[la] == '\n');
                if (c >= 0)
                        b += lb + (b[lb] == '\n');
        }
        fprintf(m, "%d line(s) only in %s, %d only in %s", only_a, na, only_b,
                nb);
        fclose(m);
        return text;
}

Test(it_changelog, a_killed_instances_partitions_resume_elsewhere_with_its_state) {
        char fixture[512], conf[INST + 1][512], log[INST + 1][512], lg[512];
        tu_src("tests/fixtures/events_small.jsonl", fixture, sizeof fixture);
        long events = tu_count_lines(fixture);
        for (int i = 0; i <= INST; i++) {
                write_conf(i, conf[i], sizeof conf[i]);
                snprintf(log[i], sizeof log[i], "%s/run%d.log", broker.dir, i);
        }
        pid_t pid[INST + 1];
        for (int i = 0; i <= INST; i++)
                pid[i] = tu_daemon_start(conf[i], log[i]);

        /* ~30 s of events, so the kill lands while they flow */
        snprintf(lg, sizeof lg, "%s/load.log", broker.dir);
        char *load_argv[] = {ITD_BINARY, "load", "--config", conf[INST],
                             "--input", fixture, "--format", "jsonl",
                             "--rate", "110", NULL};
        load_pid = tu_spawn(load_argv, lg);
        cr_assert(load_pid > 0);

        /* The group formed (each member was given partitions), and every
         * partition's offset is covered by a changelog snapshot. */
        for (int i = 0; i < INST; i++) {
                cr_assert(or_logs(tu_wait_until(was_assigned, log[i],
                                                90000) == 0),
                          "instance %d was given no partitions (see %s)", i,
                          log[i]);
        }
        commits_t first = {"group.g", (int64_t[PARTS]){1, 1, 1, 1, 1, 1}};
        cr_assert(or_logs(tu_wait_until(committed, &first, 90000) == 0),
                  "not every partition got a changelog snapshot");

        cr_assert_eq(kill(pid[VICTIM], SIGKILL), 0);
        cr_assert_eq(tu_wait(pid[VICTIM], 10000), 128 + SIGKILL);
        long from[INST];
        for (int i = 0; i < INST; i++)
                from[i] = file_size(log[i]);

        int load_rc = tu_wait(load_pid, 90000);
        cr_assert(or_logs(load_rc == 0), "load failed: %d (see %s)", load_rc,
                  lg);
        load_pid = 0;

        tally_t t = {.expected = events};
        tu_idset_init(&t.ids, (size_t)events * 2);
        rd_kafka_t *rk = tu_consumer_new(broker.bootstrap, "changelog-test",
                                         "pred.g");
        tu_collect_predictions(rk, 150000, on_prediction, &t);
        tu_consumer_destroy(rk);
        cr_expect(or_logs(t.ids.unique == events),
                  "%ld of %ld events have a prediction (%ld records)",
                  t.ids.unique, events, t.ids.total);
        cr_log_info("the group published %ld predictions for %ld events "
                    "(%ld replayed after the kill)",
                    t.ids.total, events, t.ids.total - t.ids.unique);
        tu_idset_free(&t.ids);

        /* The victim's partitions are given to the survivors only once its
         * session timed out: when the events were all consumed before the
         * kill (a slow start under load), nothing above waited for that. */
        int held_all = tu_wait_until(survivors_hold_all, log, 90000) == 0;
        cr_assert(or_logs(held_all),
                  "the survivors hold %d and %d of %d partitions (see %s)",
                  held(log[0]), held(log[1]), PARTS, broker.dir);

        /* everything consumed and covered, in both groups */
        commits_t all_g = {"group.g", NULL}, all_r = {"group.r", NULL};
        cr_assert(or_logs(tu_wait_until(committed, &all_g, 120000) == 0),
                  "the survivors did not commit every event");
        cr_assert(or_logs(tu_wait_until(committed, &all_r, 120000) == 0),
                  "the reference did not commit every event");

        /* the victim's partitions were restored by the survivors */
        int restored = 0;
        for (int i = 0; i < INST; i++) {
                if (i == VICTIM)
                        continue;
                char *text = tu_read_file(log[i]);
                cr_assert(text);
                if (strlen(text) > (size_t)from[i])
                        restored += (int)tu_count_str(
                            text + from[i], "restored from the changelog");
                free(text);
        }
        cr_expect(or_logs(restored > 0),
                  "no survivor restored a partition after the kill "
                     "(see %s)",
                     broker.dir);

        for (int i = 0; i <= INST; i++)
                if (i != VICTIM)
                        cr_expect(or_logs(tu_stop(pid[i], 60000) == 0),
                                  "instance %d did not stop cleanly (see %s)",
                                  i, log[i]);

        int survivors[] = {0, 1}, reference[] = {INST};
        char *users_g = inspect(survivors, 2, 0);
        char *users_r = inspect(reference, 1, 0);
        char *sum_g = inspect(survivors, 2, 1);
        char *sum_r = inspect(reference, 1, 1);
        /* On a difference: which survivor's last checkpoint holds which
         * partition (the summaries inspect just wrote). */
        if (strcmp(users_g, users_r) || strcmp(sum_g, sum_r)) {
                show_tail("inspect.ck0.1", PARTS + 2);
                show_tail("inspect.ck1.1", PARTS + 2);
        }
        char *users_d = diff_lines(users_g, "the survivors", users_r,
                                   "the reference", 8);
        cr_expect(or_logs(!strcmp(users_g, users_r)),
                  "window state of the survivors differs from the reference "
                  "(see %s):\n%s",
                  broker.dir, users_d);
        char *sum_d = diff_lines(sum_g, "the survivors", sum_r,
                                 "the reference", 8);
        cr_expect(!strcmp(sum_g, sum_r),
                  "partition summaries differ (see %s):\n%s", broker.dir,
                  sum_d);
        free(users_d);
        free(sum_d);
        free(users_g);
        free(users_r);
        free(sum_g);
        free(sum_r);
}

/* The log (arg->path) says, after arg->from, that a partition was restored
 * from the changelog. */
typedef struct log_from_s {
        const char *path;
        long from;
} log_from_t;

static int restored_since(void *arg) {
        const log_from_t *l = arg;
        char *text = tu_read_file(l->path);
        int yes = text && strlen(text) > (size_t)l->from &&
                  strstr(text + l->from, "restored from the changelog");
        free(text);
        return yes;
}

/* Partitions listed in a `inspect state --summary` output. */
static int summary_partitions(const char *sum) {
        return (int)tu_count_str(sum, "\"partition\":");
}

Test(it_changelog, partitions_taken_over_with_nothing_left_to_consume_are_in_the_last_checkpoint) {
        char fixture[512], conf[2][512], log[2][512], lg[512];
        tu_src("tests/fixtures/events_small.jsonl", fixture, sizeof fixture);
        pid_t pid[2];
        for (int i = 0; i < 2; i++) {
                write_conf(i, conf[i], sizeof conf[i]);
                snprintf(log[i], sizeof log[i], "%s/run%d.log", broker.dir, i);
                pid[i] = tu_daemon_start(conf[i], log[i]);
        }
        for (int i = 0; i < 2; i++)
                cr_assert_eq(tu_wait_until(was_assigned, log[i], 90000), 0,
                             "instance %d was given no partitions (see %s)",
                             i, log[i]);
        snprintf(lg, sizeof lg, "%s/load.log", broker.dir);
        cr_assert_eq(tu_load(conf[0], fixture, "jsonl", lg), 0,
                     "load failed (see %s)", lg);
        /* Everything consumed, covered by snapshots, and checkpointed. */
        commits_t all = {"group.g", NULL};
        cr_assert_eq(tu_wait_until(committed, &all, 120000), 0,
                     "the group did not commit every event");

        /* Instance 0 stops; its partitions go to instance 1, restored at
         * the end of the events: nothing is left to consume. */
        log_from_t since = {log[1], file_size(log[1])};
        cr_expect_eq(tu_stop(pid[0], 60000), 0,
                     "instance 0 did not stop cleanly (see %s)", log[0]);
        cr_assert_eq(tu_wait_until(restored_since, &since, 90000), 0,
                     "instance 1 took no partition over (see %s)", log[1]);
        cr_expect_eq(tu_stop(pid[1], 60000), 0,
                     "instance 1 did not stop cleanly (see %s)", log[1]);

        /* Its last checkpoint holds every partition it held at stop. */
        int one[] = {1};
        char *sum = inspect(one, 1, 1);
        cr_expect_eq(summary_partitions(sum), PARTS,
                     "instance 1's last checkpoint holds %d partitions of %d "
                     "(see %s):\n%s",
                     summary_partitions(sum), PARTS, broker.dir, sum);
        free(sum);
}
