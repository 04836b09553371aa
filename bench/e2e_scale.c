/*
 * e2e_scale.c - bench_e2e's scale rows: `intentd run` as one or more
 * instances in one consumer group, each with a number of pipeline
 * workers (pipeline.workers), on the same events: one instance with 1
 * and 2 workers, then 2 and 3 instances of 1 worker.
 *
 * Each row gets topics of its own ("scale-iNwW.events" and
 * ".predictions", --partitions partitions) and a group of its own. The
 * instances start on the empty events topic; once every one is ready and
 * the group holds every partition (read from their logs), the events are
 * produced as fast as possible. The rate is events / (the first produce
 * call -> the moment the last event without a prediction got one): the
 * group protocol, the produce and every instance count, not process
 * start-up. The counter decodes every prediction's id
 * "topic/partition/offset" and marks its event, so the row says whether
 * every event got a prediction and how many came twice (a partition
 * moved before its offsets were committed). Each instance's accounting
 * line (consumed, predicted) and progressive AUC come from its log after
 * it stopped.
 */
#include "e2e.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The rows, in order: instances in the group, pipeline workers of each.
 * Adding a row is adding a line. */
static const struct scale_row_s {
        int instances, workers;
} scale_rows[] = {
    {1, 1},
    {1, 2},
    {2, 1},
    {3, 1},
};

#define SCALE_MAX_INSTANCES 8

typedef struct inst_s {
        pid_t pid;
        char log[512];
        int rc;
        long long consumed, predicted; /* its accounting line; -1: none */
        double auc;                    /* its last status line; -1: none */
} inst_t;

/* From an instance's log: whether it said it is ready, and how many
 * partitions it holds now (cooperative assignments add, eager ones
 * replace, revocations take away). */
static int log_assigned(const char *path, int *ready) {
        FILE *f = fopen(path, "r");
        char line[4096], proto[32];
        int held = 0, n;
        *ready = 0;
        if (!f)
                return 0;
        while (fgets(line, sizeof line, f)) {
                const char *s;
                if ((s = strstr(line, "kafka: assigned ")) &&
                    sscanf(s, "kafka: assigned %d partition(s), %31s", &n,
                           proto) == 2)
                        held = strcmp(proto, "COOPERATIVE") ? n : held + n;
                else if ((s = strstr(line, "kafka: revoking ")) &&
                         sscanf(s, "kafka: revoking %d", &n) == 1)
                        held -= n;
                else if (strstr(line, "run: ready"))
                        *ready = 1;
        }
        fclose(f);
        return held;
}

/* Waits until every instance is ready and together they hold all P
 * partitions; returns the seconds it took, or -1 after timeout_s. */
static double wait_group(const inst_t *in, int n, int P, double timeout_s) {
        double t0 = e2e_now_s();
        while (e2e_now_s() - t0 < timeout_s) {
                int held = 0, all_ready = 1, ready;
                for (int i = 0; i < n; i++) {
                        held += log_assigned(in[i].log, &ready);
                        all_ready &= ready;
                }
                if (all_ready && held == P)
                        return e2e_now_s() - t0;
                usleep(50000);
        }
        return -1;
}

/* The accounting line and the last progressive AUC of a stopped
 * instance's log. */
static void read_accounting(inst_t *in) {
        FILE *f = fopen(in->log, "r");
        char line[4096];
        in->consumed = in->predicted = -1;
        in->auc = -1;
        if (!f)
                return;
        while (fgets(line, sizeof line, f)) {
                const char *s;
                if ((s = strstr(line, "run: accounting: ")))
                        sscanf(s, "run: accounting: consumed=%lld "
                                  "predicted=%lld",
                               &in->consumed, &in->predicted);
                else if ((s = strstr(line, " auc=")))
                        sscanf(s, " auc=%lf", &in->auc);
        }
        fclose(f);
}

static void run_row(FILE *out, const opts_t *o, const corpus_t *c,
                    const char *conf, const struct scale_row_s *row) {
        const int P = o->partitions, N = row->instances;
        char name[64], ev_topic[MAX_TOPIC], pred_topic[MAX_TOPIC];
        char o1[160], o2[160], o3[160], o4[64];
        snprintf(name, sizeof name, "scale-i%dw%d", N, row->workers);
        snprintf(ev_topic, sizeof ev_topic, "%s.events", name);
        snprintf(pred_topic, sizeof pred_topic, "%s.predictions", name);
        e2e_topic(ev_topic, P);
        e2e_topic(pred_topic, P);
        snprintf(o1, sizeof o1, "topics.events=%s", ev_topic);
        snprintf(o2, sizeof o2, "topics.predictions=%s", pred_topic);
        snprintf(o3, sizeof o3, "kafka.group.id=bench-%s", name);
        snprintf(o4, sizeof o4, "pipeline.workers=%d", row->workers);
        char *argv[] = {(char *)o->intentd, "run", "--config", (char *)conf,
                        "-o", o1, "-o", o2, "-o", o3, "-o", o4, NULL};

        counter_t *ct = e2e_counter_start_cover(pred_topic, P, c->n);
        inst_t in[SCALE_MAX_INSTANCES] = {{0}};
        for (int i = 0; i < N; i++) {
                snprintf(in[i].log, sizeof in[i].log, "%s/%s-%d.log", o->dir,
                         name, i);
                in[i].pid = e2e_spawn(argv, in[i].log);
        }
        double join_s = wait_group(in, N, P, 60);
        if (join_s < 0)
                fprintf(stderr, "bench_e2e: %s: the group did not settle in "
                                "60 s; producing anyway\n", name);

        double t0 = e2e_now_s();
        double produce_s = e2e_load_backlog(c, ev_topic, P);
        e2e_counter_wait(ct, 600, 15, 0, NULL);
        long predicted = atomic_load(&ct->distinct);
        long count = atomic_load(&ct->count);
        int complete = predicted == c->n;
        double t_end = complete ? ct->t_complete : ct->t_last;
        double secs = t_end - t0;
        double rate = secs > 0 ? (double)predicted / secs : 0;
        double load[1] = {0};
        getloadavg(load, 1);

        /* all at once, so no instance takes over another's partitions on
         * the way out */
        for (int i = 0; i < N; i++)
                kill(in[i].pid, SIGTERM);
        for (int i = 0; i < N; i++) {
                in[i].rc = e2e_wait_child(in[i].pid, 60);
                if (in[i].rc != 0)
                        fprintf(stderr, "bench_e2e: %s exited %d (see %s)\n",
                                name, in[i].rc, in[i].log);
                read_accounting(&in[i]);
        }

        fprintf(stderr,
                "bench_e2e: %s (%d instance(s), %d worker(s) each): %ld of "
                "%ld events predicted (%ld predictions, %ld undecodable) in "
                "%.2f s, %.0f events/s; group ready in %.1f s, produce "
                "%.1f s, load %.1f; consumed",
                name, N, row->workers, predicted, c->n, count,
                ct->undecodable, secs, rate, join_s, produce_s, load[0]);
        for (int i = 0; i < N; i++)
                fprintf(stderr, " %lld", in[i].consumed);
        fprintf(stderr, "\n");

        fprintf(out, "{\"instances\":%d,\"workers\":%d,\"partitions\":%d,"
               "\"events\":%ld,\"events_per_s\":%.0f,\"seconds\":%.3f,"
               "\"predicted_events\":%ld,\"predictions\":%ld,"
               "\"undecodable\":%ld,\"all_predicted\":%s,"
               "\"group_ready_s\":%.2f,\"produce_s\":%.2f,\"loadavg\":%.2f,"
               "\"instance\":[",
               N, row->workers, P, c->n, rate, secs, predicted, count,
               ct->undecodable, complete ? "true" : "false", join_s,
               produce_s, load[0]);
        for (int i = 0; i < N; i++)
                fprintf(out, "{\"consumed\":%lld,\"predicted\":%lld,\"auc\":%.4f,"
                       "\"rc\":%d}%s",
                       in[i].consumed, in[i].predicted, in[i].auc, in[i].rc,
                       i + 1 < N ? "," : "");
        fprintf(out, "]}");
        e2e_counter_free(ct);
}

char *e2e_scale(const opts_t *o, const corpus_t *c, const char *conf) {
        corpus_t first = *c; /* the first scale_n events, same arena */
        if (o->scale_n > 0 && o->scale_n < c->n)
                first.n = o->scale_n;
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        if (!out)
                e2e_die("out of memory");
        const size_t rows = sizeof scale_rows / sizeof *scale_rows;
        fputc('[', out);
        for (size_t r = 0; r < rows; r++) {
                if (scale_rows[r].instances > SCALE_MAX_INSTANCES)
                        e2e_die("scale: too many instances in a row");
                if (r)
                        fputc(',', out);
                run_row(out, o, &first, conf, &scale_rows[r]);
        }
        fputc(']', out);
        fclose(out);
        return text;
}
