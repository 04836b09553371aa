/*
 * bench_e2e.c - intentd end to end against the transport limit and the
 * Python peer, on one embedded broker and the same events.
 *
 * The broker is librdkafka's mock cluster inside this process (as
 * `intentd broker` runs it). Every contender is a separate process that
 * this program starts; every one is timed the same way: a consumer here
 * (assigned, no group) counts the messages arriving on the contender's
 * output topic, and the rate is count / (last arrival - first arrival),
 * which leaves out process start and the consumer-group join.
 *
 *   1. load: the first --n events of --events (JSON lines from `intentd
 *      simulate`) as bare Avro keyed by user id, as `intentd load` does,
 *      onto intentd.events with --partitions partitions; the watermarks
 *      are checked so nothing was dropped by the broker's retention
 *      (librdkafka's mock cluster keeps 5 MiB or 100k batches per
 *      partition).
 *   2. pass-through: bench_passthrough (consume, produce the same bytes;
 *      intentd's client settings) from intentd.events to bench.passthrough.
 *   3. intentd: `intentd run` from intentd.events to intentd.predictions,
 *      training on, defaults otherwise.
 *   4. latency: a fresh `intentd run` on its own topics (--latency-
 *      partitions, 4: the mock broker is one thread, and every fetch and
 *      produce request walks all partitions; with 32 it saturates at
 *      ~5k live events/s) while this program produces the same events at
 *      a fixed rate (the rate measured in 3, half of it, and a low
 *      --floor-rate); each prediction's id "topic/partition/offset" is
 *      matched to the time its event was handed to the producer (one
 *      CLOCK_MONOTONIC, one host). The mock broker delays an empty fetch
 *      response by the full fetch.wait.max.ms even when data arrives
 *      meanwhile (a real broker answers as soon as data is there), so the
 *      runs set kafka.fetch.wait.max.ms=1 on intentd; one more run at half
 *      rate keeps librdkafka's default (500 ms) to show the artefact.
 *   5. peer: bench/peer.py batched (--peer-batched events) and naive
 *      (--peer-naive events) from intentd.events to their own topics.
 *   6. scale: `intentd run` as one instance with pipeline.workers 1 and
 *      2, then as 2 and 3 instances in one consumer group (e2e_scale.c),
 *      on topics of their own with the first --scale-n events (default
 *      all), produced once the group is settled.
 *
 * Last line: one JSON object {"bench":"e2e",...}. Run by bench/run.sh.
 */
#include "e2e.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- options ----------------------------------------------------------- */

int phase(const opts_t *o, const char *name) {
        if (!o->phases)
                return 1;
        const char *p = strstr(o->phases, name);
        return p && (p == o->phases || p[-1] == ',');
}

/* ---- the contenders ---------------------------------------------------- */

typedef struct result_s {
        double rate;      /* arrivals/s, first to last */
        long count;
        double wall;      /* start of the process to the last arrival */
        char self[8192];  /* the contender's own JSON line, if any */
} result_t;

static result_t run_contender(const opts_t *o, const char *perf_name,
                              char *const argv[], const char *out_topic,
                              int partitions, long want, const char *log,
                              int stops_by_itself) {
        result_t r = {0};
        counter_t *ct = e2e_counter_start(out_topic, partitions, want, 0);
        usleep(300000); /* the counter's fetcher is up */
        double t0 = e2e_now_s();
        pid_t pid = e2e_spawn(argv, log);
        pid_t perf = perf_name ? e2e_perf_attach(o, pid, perf_name) : 0;
        int rc;
        e2e_counter_wait(ct, 600, 15, pid, &rc);
        e2e_perf_detach(perf);
        r.rate = e2e_counter_rate(ct);
        r.count = atomic_load(&ct->count);
        r.wall = ct->t_last - t0;
        if (rc < 0)
                rc = stops_by_itself ? e2e_wait_child(pid, 60)
                                     : e2e_stop_child(pid, 60);
        if (rc != 0)
                fprintf(stderr, "bench_e2e: %s exited %d (see %s)\n", argv[0],
                        rc, log);
        e2e_last_json(log, r.self, sizeof r.self);
        fprintf(stderr, "bench_e2e: %-12s %ld/%ld arrived, %.0f events/s;"
                " deciles at", out_topic, r.count, want, r.rate);
        for (int k = 0; k < 10; k++)
                fprintf(stderr, " %.2f", ct->t_decile[k] - ct->t_first);
        fprintf(stderr, " s\n");
        e2e_counter_free(ct);
        return r;
}

typedef struct latency_s {
        double rate, achieved, p50_ms, p99_ms, max_ms;
        double served;            /* predictions/s of paced events */
        long produced, matched;
} latency_t;

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/*
 * A fresh intentd on topics "<name>.events" -> "<name>.predictions"; warm
 * up with 2000 events (group join, first allocations), then produce at
 * `rate` for the rest of the run and match predictions to produce times.
 * The first 10% of the paced events are left out of the percentiles.
 */
static latency_t run_latency(const opts_t *o, const char *conf,
                             const corpus_t *c, const char *name, double rate,
                             const char *fetch_wait) {
        latency_t L = {.rate = rate};
        const int P = o->lat_partitions;
        char ev_topic[MAX_TOPIC], pred_topic[MAX_TOPIC], log[512];
        char o1[160], o2[160], o3[160], o4[160];
        snprintf(ev_topic, sizeof ev_topic, "%s.events", name);
        snprintf(pred_topic, sizeof pred_topic, "%s.predictions", name);
        e2e_topic(ev_topic, P);
        e2e_topic(pred_topic, P);
        long total = (long)(rate * o->latency_seconds) + 2000;
        if (total > c->n)
                total = c->n;
        pace_t pc = {.partitions = P};
        pc.t_prod = calloc((size_t)total, sizeof *pc.t_prod);
        pc.idx_of = calloc((size_t)P, sizeof *pc.idx_of);
        pc.idx_cap = calloc((size_t)P, sizeof *pc.idx_cap);
        /* "produced" is the produce() call, so our own batching counts
         * against intentd: linger 1 ms (linger 0 made the single-threaded
         * mock broker the bottleneck with one request per message) */
        rd_kafka_t *rk = e2e_producer("1", &pc);
        counter_t *ct = e2e_counter_start(pred_topic, P, total, 1);

        snprintf(o1, sizeof o1, "topics.events=%s", ev_topic);
        snprintf(o2, sizeof o2, "topics.predictions=%s", pred_topic);
        snprintf(o3, sizeof o3, "kafka.group.id=bench-%s", name);
        snprintf(o4, sizeof o4, "kafka.fetch.wait.max.ms=%s",
                 fetch_wait ? fetch_wait : "");
        snprintf(log, sizeof log, "%s/%s.log", o->dir, name);
        char *argv[] = {(char *)o->intentd, "run", "--config", (char *)conf,
                        "-o", o1, "-o", o2, "-o", o3,
                        fetch_wait ? "-o" : NULL, o4, NULL};
        pid_t pid = e2e_spawn(argv, log);
        pid_t perf = e2e_perf_attach(o, pid, name);

        long warm = 2000, i = 0;
        for (; i < warm; i++) {
                pc.t_prod[i] = e2e_now_s();
                e2e_produce(rk, ev_topic, c, i);
        }
        rd_kafka_flush(rk, 10000);
        double t_wait = e2e_now_s();
        while (atomic_load(&ct->count) < warm && e2e_now_s() - t_wait < 60)
                usleep(10000);
        if (atomic_load(&ct->count) < warm)
                fprintf(stderr, "bench_e2e: %s: warm-up predictions missing\n",
                        name);

        /* Paced in 0.5 ms steps: every event due by now goes out, then a
         * short sleep (spinning would take a core from intentd and the
         * broker on a 2-core machine). Each event's own produce time is
         * kept, so the steps do not bias the latency. */
        double t0 = e2e_now_s();
        while (i < total) {
                long due = warm + (long)((e2e_now_s() - t0) * rate) + 1;
                if (due > total)
                        due = total;
                for (; i < due; i++) {
                        pc.t_prod[i] = e2e_now_s();
                        e2e_produce(rk, ev_topic, c, i);
                }
                rd_kafka_poll(rk, 0);
                usleep(500);
        }
        double t_end = e2e_now_s();
        rd_kafka_flush(rk, 30000);
        L.produced = total - warm;
        L.achieved = (double)L.produced / (t_end - t0);
        int rc;
        e2e_counter_wait(ct, 60, 5, pid, &rc);
        e2e_perf_detach(perf);
        if (rc < 0)
                e2e_stop_child(pid, 60);

        /* match: prediction of event (p, off) -> its produce time */
        long skip = warm + L.produced / 10;
        double *lat = calloc(ct->n_arr + 1, sizeof *lat);
        size_t n_lat = 0;
        double t_last_paced = t0;
        long n_paced = 0;
        /* every matched event: produce time since the paced start, latency
         * (for plots and for telling queueing from a fixed cost) */
        snprintf(log, sizeof log, "%s/%s.tsv", o->dir, name);
        FILE *tsv = fopen(log, "w");
        if (tsv)
                fprintf(tsv, "index\tproduced_s\tlatency_ms\n");
        for (size_t k = 0; k < ct->n_arr; k++) {
                const arrival_t *a = &ct->arr[k];
                if (a->partition < 0 || a->partition >= P ||
                    (size_t)a->offset >= pc.idx_cap[a->partition])
                        continue;
                int32_t ix = pc.idx_of[a->partition][a->offset];
                if (ix < 0)
                        continue;
                L.matched++;
                if (ix >= warm && a->t > t_last_paced)
                        t_last_paced = a->t;
                n_paced += ix >= warm;
                if (tsv)
                        fprintf(tsv, "%d\t%.6f\t%.3f\n", ix,
                                pc.t_prod[ix] - t0,
                                (a->t - pc.t_prod[ix]) * 1e3);
                if (ix >= skip)
                        lat[n_lat++] = (a->t - pc.t_prod[ix]) * 1e3;
        }
        if (tsv)
                fclose(tsv);
        L.served = t_last_paced > t0 ? (double)n_paced / (t_last_paced - t0)
                                     : 0;
        qsort(lat, n_lat, sizeof *lat, cmp_double);
        if (n_lat) {
                L.p50_ms = lat[n_lat / 2];
                L.p99_ms = lat[(size_t)((double)n_lat * 0.99)];
                L.max_ms = lat[n_lat - 1];
        }
        fprintf(stderr,
                "bench_e2e: latency %-10s at %.0f/s (sent %.0f/s, served "
                "%.0f/s): "
                "p50 %.2f ms, p99 %.2f ms, max %.1f ms over %zu events "
                "(%ld of %ld predictions matched)\n",
                name, rate, L.achieved, L.served, L.p50_ms, L.p99_ms,
                L.max_ms, n_lat,
                L.matched, total);
        free(lat);
        e2e_counter_free(ct);
        rd_kafka_destroy(rk);
        for (int p = 0; p < P; p++)
                free(pc.idx_of[p]);
        free(pc.idx_of);
        free(pc.idx_cap);
        free(pc.t_prod);
        return L;
}

static void print_result(const char *name, const result_t *r, int comma) {
        printf("\"%s\":{\"events_per_s\":%.0f,\"count\":%ld,"
               "\"wall_s\":%.2f,\"self\":%s}%s",
               name, r->rate, r->count, r->wall, r->self, comma ? "," : "");
}

static void print_latency(const char *name, const latency_t *L, int comma) {
        printf("\"%s\":{\"rate\":%.0f,\"achieved\":%.0f,\"served\":%.0f,"
               "\"p50_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"max_ms\":%.2f,\"produced\":%ld,"
               "\"matched\":%ld}%s",
               name, L->rate, L->achieved, L->served, L->p50_ms, L->p99_ms,
               L->max_ms,
               L->produced, L->matched, comma ? "," : "");
}

int main(int argc, char **argv) {
        opts_t o = {.n = 1000000, .partitions = 32, .latency_seconds = 8,
                    .peer_batched = 100000, .peer_naive = 20000,
                    .floor_rate = 2000, .python = "python3",
                    .lat_partitions = 4};
        static const struct option longopts[] = {
            {"intentd", required_argument, NULL, 'i'},
            {"passthrough", required_argument, NULL, 't'},
            {"peer", required_argument, NULL, 'p'},
            {"events", required_argument, NULL, 'e'},
            {"dir", required_argument, NULL, 'd'},
            {"n", required_argument, NULL, 'n'},
            {"partitions", required_argument, NULL, 'P'},
            {"latency-seconds", required_argument, NULL, 'l'},
            {"peer-batched", required_argument, NULL, 'b'},
            {"peer-naive", required_argument, NULL, 'a'},
            {"floor-rate", required_argument, NULL, 'f'},
            {"phases", required_argument, NULL, 'h'},
            {"python", required_argument, NULL, 'y'},
            {"latency-partitions", required_argument, NULL, 'L'},
            {"scale-n", required_argument, NULL, 's'},
            {NULL, 0, NULL, 0}};
        int ch;
        while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (ch) {
                case 'i': o.intentd = optarg; break;
                case 't': o.passthrough = optarg; break;
                case 'p': o.peer = optarg; break;
                case 'e': o.events = optarg; break;
                case 'd': o.dir = optarg; break;
                case 'n': o.n = atol(optarg); break;
                case 'P': o.partitions = atoi(optarg); break;
                case 'l': o.latency_seconds = atof(optarg); break;
                case 'b': o.peer_batched = atol(optarg); break;
                case 'a': o.peer_naive = atol(optarg); break;
                case 'f': o.floor_rate = atof(optarg); break;
                case 'h': o.phases = optarg; break;
                case 'y': o.python = optarg; break;
                case 'L': o.lat_partitions = atoi(optarg); break;
                case 's': o.scale_n = atol(optarg); break;
                default: return 2;
                }
        }
        if (!o.intentd || !o.passthrough || !o.events || !o.dir || o.n <= 0 ||
            o.partitions <= 0) {
                fprintf(stderr,
                        "usage: bench_e2e --intentd BIN --passthrough BIN "
                        "--events FILE.jsonl --dir DIR [--peer peer.py] "
                        "[--n N] [--partitions P] [--latency-seconds S] "
                        "[--peer-batched N] [--peer-naive N] "
                        "[--floor-rate R] [--phases a,b] [--python BIN] "
                        "[--latency-partitions P] [--scale-n N]\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);

        corpus_t c;
        double t = e2e_now_s();
        e2e_load_corpus(&c, o.events, o.n);
        fprintf(stderr, "bench_e2e: %ld events encoded in %.1f s (%.0f "
                        "bytes/event)\n", c.n, e2e_now_s() - t,
                (double)c.used / (double)c.n);
        e2e_start_broker();
        const char *topics[] = {EVENTS_TOPIC, "intentd.predictions",
                                "bench.passthrough", "peer.batched",
                                "peer.naive"};
        for (size_t i = 0; i < sizeof topics / sizeof *topics; i++)
                e2e_topic(topics[i], o.partitions);
        e2e_topic("intentd.dead_letter", 1);
        e2e_topic("intentd.triggers", 1);
        double load_s = e2e_load_backlog(&c, EVENTS_TOPIC, o.partitions);
        fprintf(stderr, "bench_e2e: backlog of %ld events on %d partitions "
                        "in %.1f s, none dropped\n", c.n, o.partitions, load_s);

        char conf[512], log[512], count[32], parts[16];
        e2e_write_conf(&o, conf, sizeof conf);
        snprintf(count, sizeof count, "%ld", o.n);
        snprintf(parts, sizeof parts, "%d", o.partitions);

        result_t pt = {.self = "null"}, it = {.self = "null"};
        latency_t lf = {0}, lh = {0}, ld = {0}, lo = {0};
        snprintf(log, sizeof log, "%s/passthrough.log", o.dir);
        char *pt_argv[] = {(char *)o.passthrough, e2e_bootstrap, EVENTS_TOPIC,
                           "bench.passthrough", "bench-passthrough", count,
                           "session.timeout.ms=6000",
                           "heartbeat.interval.ms=500", NULL};
        if (phase(&o, "passthrough"))
                pt = run_contender(&o, "passthrough", pt_argv,
                                   "bench.passthrough", o.partitions,
                                    o.n, log, 1);

        snprintf(log, sizeof log, "%s/intentd-run.log", o.dir);
        char *run_argv[] = {(char *)o.intentd, "run", "--config", conf, NULL};
        if (phase(&o, "intentd"))
                it = run_contender(&o, "intentd-run", run_argv,
                                   "intentd.predictions",
                                    o.partitions, o.n, log, 0);

        double full = it.rate > 0 ? it.rate : 10000;
        if (phase(&o, "latency")) {
                lf = run_latency(&o, conf, &c, "lat-full", full, "1");
                lh = run_latency(&o, conf, &c, "lat-half", full / 2, "1");
                ld = run_latency(&o, conf, &c, "lat-half-default", full / 2,
                                 NULL);
                lo = run_latency(&o, conf, &c, "lat-floor", o.floor_rate,
                                 "1");
        }

        result_t pb = {.self = "null"}, pn = {.self = "null"};
        if (o.peer && phase(&o, "peer")) {
                char nb[32], nn[32];
                snprintf(nb, sizeof nb, "%ld", o.peer_batched);
                snprintf(nn, sizeof nn, "%ld", o.peer_naive);
                snprintf(log, sizeof log, "%s/peer-batched.log", o.dir);
                char *pb_argv[] = {(char *)o.python, (char *)o.peer, "--bootstrap",
                                   e2e_bootstrap, "--topic", EVENTS_TOPIC,
                                   "--out", "peer.batched", "--mode",
                                   "batched", "--max", nb, NULL};
                pb = run_contender(&o, NULL, pb_argv, "peer.batched", o.partitions,
                                   o.peer_batched, log, 1);
                snprintf(log, sizeof log, "%s/peer-naive.log", o.dir);
                char *pn_argv[] = {(char *)o.python, (char *)o.peer, "--bootstrap",
                                   e2e_bootstrap, "--topic", EVENTS_TOPIC,
                                   "--out", "peer.naive", "--mode", "naive",
                                   "--max", nn, NULL};
                pn = run_contender(&o, NULL, pn_argv, "peer.naive", o.partitions,
                                   o.peer_naive, log, 1);
        }

        char *scale = phase(&o, "scale") ? e2e_scale(&o, &c, conf) : NULL;

        printf("{\"bench\":\"e2e\",\"events\":%ld,\"partitions\":%d,"
               "\"latency_partitions\":%d,"
               "\"avro_bytes_per_event\":%.1f,\"load_s\":%.2f,",
               c.n, o.partitions, o.lat_partitions,
               (double)c.used / (double)c.n, load_s);
        print_result("passthrough", &pt, 1);
        print_result("intentd", &it, 1);
        printf("\"latency\":{");
        print_latency("full", &lf, 1);
        print_latency("half", &lh, 1);
        print_latency("half_default_fetch_wait", &ld, 1);
        print_latency("floor", &lo, 0);
        printf("},");
        print_result("peer_batched", &pb, 1);
        print_result("peer_naive", &pn, 1);
        printf("\"scale_run\":%s}\n", scale ? scale : "[]");
        free(scale);
        rd_kafka_mock_cluster_destroy(e2e_mock);
        rd_kafka_destroy(e2e_mock_rk);
        free(c.arena);
        free(c.msgs);
        return 0;
}
