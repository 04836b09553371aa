/*
 * cmd_demo.c - `intentd demo`: the main job on an embedded default.
 *
 * One process: the embedded broker, a producer thread publishing simulated
 * shoppers (or a file) to the events topic, and the daemon's own run loop
 * consuming them while they arrive. Ends when every published event was
 * consumed, then prints a summary. Nothing here differs from `intentd run`
 * but where the events come from.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "cli.h"
#include "conf_parts.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/reader.h"
#include "intentd/simulator.h"
#include "publish.h"
#include "run.h"
#include "feed.h"

#define EXAMPLES 5          /* recent high-intent predictions shown */
#define QUIET_MS 5000       /* publishing done, nothing new: the end */
#define SIM_DEFAULT_START_MS 1511568000000LL

static const char demo_usage[] =
    "usage: intentd demo [--users N] [--days D] [--seed S]\n"
    "                    [--input DATA [--format FORMAT]]\n"
    "                    [--partitions P] [--config FILE] [-o key=value]...\n"
    "\n"
    "Starts the embedded broker, publishes simulated shoppers (or DATA) to\n"
    "the events topic while intentd consumes them, predicts, labels and\n"
    "learns; prints live progress and a summary, then exits.\n"
    "\n"
    "  --users N       simulated shoppers (default 10000)\n"
    "  --days D        simulated days (default 2)\n"
    "  --seed S        simulator seed (default 1)\n"
    "  --input DATA    publish this file instead of simulating\n"
    "  --partitions P  partitions of the events topic (default 16)\n";

typedef struct producer_s {
        const itd_conf_t *conf;
        itd_feed_next_fn next;
        void *src;
        void (*progress_bytes)(void *, uint64_t *, uint64_t *);
        _Atomic uint64_t published;
        _Atomic int done;
        itd_err_t err;
        char errstr[1024];
} producer_t;

/* What the demo watches in the run loop (itd_run_hooks_t). */
typedef struct watch_s {
        producer_t *prod;
        float threshold;                     /* predict.threshold */
        size_t n_examples;
        itd_prediction_t examples[EXAMPLES]; /* the most recent last */
} watch_t;

/* Keeps the most recent predictions at or above the threshold. */
static void keep_example(void *arg, const itd_prediction_t *pr) {
        watch_t *w = arg;
        if (pr->purchase_probability < w->threshold)
                return;
        if (w->n_examples < EXAMPLES) {
                w->examples[w->n_examples++] = *pr;
                return;
        }
        /* Keep the most recent ones: shift out the oldest. */
        memmove(w->examples, w->examples + 1,
                (EXAMPLES - 1) * sizeof *w->examples);
        w->examples[EXAMPLES - 1] = *pr;
}

/* Done when every published event was consumed, or when the producer has
 * finished and nothing arrived for a while (the embedded broker drops
 * what exceeds its retention; the summary reports the gap). */
static int demo_done(void *arg, uint64_t consumed, int64_t last_msg_ms) {
        const watch_t *w = arg;
        if (!atomic_load(&w->prod->done))
                return 0;
        return consumed >= atomic_load(&w->prod->published) ||
               itd_now_mono_ms() - last_msg_ms > QUIET_MS;
}

static void *producer_main(void *arg) {
        producer_t *p = arg;
        itd_publish_opts_t po = {.stop = &itd_cli_stop,
                                 .published = &p->published,
                                 .progress_bytes = p->progress_bytes};
        uint64_t n;
        p->err = itd_publish(p->conf, p->next, p->src, &po, &n, p->errstr,
                             sizeof p->errstr);
        atomic_store(&p->done, 1);
        return NULL;
}

int itd_cmd_demo(int argc, char **argv) {
        static const struct option longopts[] = {
            {"users", required_argument, NULL, 'u'},
            {"days", required_argument, NULL, 'd'},
            {"seed", required_argument, NULL, 's'},
            {"input", required_argument, NULL, 'i'},
            {"format", required_argument, NULL, 'f'},
            {"partitions", required_argument, NULL, 'p'},
            ITD_CLI_CONF_OPTS,
            ITD_CLI_COMMON_OPTS};
        itd_sim_conf_t sc = {.users = 10000, .days = 2.0, .seed = 1,
                             .start_ms = SIM_DEFAULT_START_MS};
        const char *input = NULL, *format_arg = NULL;
        long long partitions = 16, v;
        int c;
        itd_cli_args_t a = {.cmd = "demo", .usage = demo_usage, .conf = 1};
        while ((c = itd_cli_next(&a, argc, argv, longopts)) != -1) {
                switch (c) {
                case 'u':
                        if ((v = itd_cli_int("demo", "--users", optarg, 1,
                                             100000000LL)) < 0)
                                return 2;
                        sc.users = (uint64_t)v;
                        break;
                case 'd':
                        sc.days = atof(optarg);
                        if (!(sc.days > 0 && sc.days <= 60)) {
                                fprintf(stderr, "intentd demo: --days \"%s\": "
                                        "expected 0 < D <= 60\n", optarg);
                                return 2;
                        }
                        break;
                case 's':
                        if ((v = itd_cli_int("demo", "--seed", optarg, 0,
                                             (1LL << 62))) < 0)
                                return 2;
                        sc.seed = (uint64_t)v;
                        break;
                case 'i': input = optarg; break;
                case 'f': format_arg = optarg; break;
                case 'p':
                        if ((partitions = itd_cli_int("demo", "--partitions",
                                                      optarg, 1, 256)) < 0)
                                return 2;
                        break;
                default: return a.exit;
                }
        }
        itd_conf_t *conf =
            itd_cli_conf(a.conf_path, a.overrides, a.n_overrides);
        if (!conf)
                return 1;
        itd_cli_log_setup(conf);
        /* The demo's own lines are the show; librdkafka's notices are not. */
        if (itd_log_level > ITD_LOG_WARNING)
                itd_log_setup(ITD_LOG_WARNING, ITD_LOG_FORMAT_PLAIN);
        itd_cli_signals();

        char errstr[1024];
        int rc = 1;
        itd_sim_t *sim = NULL;
        itd_reader_t *rd = NULL;
        itd_broker_t *broker = NULL;
        producer_t *prod = calloc(1, sizeof *prod);
        const char *topics[] = {conf->topic_events, conf->topic_predictions,
                                conf->topic_triggers, conf->topic_dead_letter};
        broker = itd_broker_start(1, (int)partitions, topics, 4, errstr,
                                  sizeof errstr);
        if (!broker || !prod) {
                fprintf(stderr, "intentd demo: %s\n", errstr);
                goto out;
        }
        /* A group join on the mock cluster takes ~3 s, and a rebalance
         * waits session.timeout.ms - 1000 ms: short timeouts keep the demo
         * snappy. */
        const char *kafka_demo[][2] = {
            {"kafka.bootstrap.servers", itd_broker_bootstraps(broker)},
            {"kafka.session.timeout.ms", "6000"},
            {"kafka.heartbeat.interval.ms", "500"},
            {"kafka.group.id", "intentd-demo"},
            /* No fixed port: a daemon on this host may hold 9464. */
            {"metrics.listen", ""}};
        for (size_t i = 0; i < sizeof kafka_demo / sizeof kafka_demo[0]; i++)
                if (itd_conf_set(conf, kafka_demo[i][0], kafka_demo[i][1],
                                 errstr, sizeof errstr) != ITD_OK) {
                        fprintf(stderr, "intentd demo: %s\n", errstr);
                        goto out;
                }

        prod->conf = conf;
        if (input) {
                itd_format_t format;
                if (itd_cli_format("demo", input, format_arg, &format) != 0)
                        goto out;
                rd = itd_reader_open(input, format, 1, errstr, sizeof errstr);
                if (!rd) {
                        fprintf(stderr, "intentd demo: %s\n", errstr);
                        goto out;
                }
                prod->next = itd_feed_reader_next;
                prod->src = rd;
                prod->progress_bytes = itd_feed_reader_progress;
                printf("intentd demo: embedded broker at %s, events from %s\n",
                       itd_broker_bootstraps(broker), input);
        } else {
                sim = itd_sim_new(&sc, errstr, sizeof errstr);
                if (!sim) {
                        fprintf(stderr, "intentd demo: %s\n", errstr);
                        goto out;
                }
                prod->next = itd_feed_sim_next;
                prod->src = sim;
                printf("intentd demo: embedded broker at %s, %llu simulated "
                       "shoppers over %.1f days (seed %llu)\n",
                       itd_broker_bootstraps(broker),
                       (unsigned long long)sc.users, sc.days,
                       (unsigned long long)sc.seed);
        }
        printf("  publishing to \"%s\" while intentd consumes it, predicts, "
               "labels and learns...\n", conf->topic_events);
        fflush(stdout);

        pthread_t tid;
        if (pthread_create(&tid, NULL, producer_main, prod) != 0) {
                fprintf(stderr, "intentd demo: cannot start the producer "
                        "thread\n");
                goto out;
        }
        watch_t *w = itd_xcalloc(1, sizeof *w);
        itd_run_result_t *res = itd_xcalloc(1, sizeof *res);
        w->prod = prod;
        w->threshold = (float)conf->predict_threshold;
        itd_run_hooks_t hooks = {.prediction = keep_example,
                                 .done = demo_done, .arg = w};
        itd_run_opts_t ro = {.stop = &itd_cli_stop,
                             .progress = 1,
                             .hooks = &hooks,
                             .triggers_event_time_only = 1};
        itd_err_t err = itd_run(conf, &ro, res, errstr, sizeof errstr);
        itd_cli_stop = 1; /* the producer stops too if run ended early */
        pthread_join(tid, NULL);
        if (err) {
                fprintf(stderr, "intentd demo: %s\n", errstr);
                free(w), free(res);
                goto out;
        }
        if (prod->err) {
                fprintf(stderr, "intentd demo: publishing failed: %s\n",
                        prod->errstr);
                free(w), free(res);
                goto out;
        }
        uint64_t published = atomic_load(&prod->published);
        if (res->consumed < published)
                printf("\n  note: %llu of %llu published events never "
                       "reached intentd: the embedded broker keeps only "
                       "about 5 MiB per partition and dropped them (use "
                       "more --partitions or fewer --users)\n",
                       (unsigned long long)(published - res->consumed),
                       (unsigned long long)published);
        printf("\nsummary");
        itd_cli_summary(stdout, &res->engine, res->seconds, res->consumed,
                        res->dead_lettered, res->filtered,
                        conf->predict_threshold);
        itd_trigger_conf_t tc;
        char rule[256];
        itd_conf_to_triggers(conf, &tc);
        printf("  triggers        %llu records to \"%s\" (%llu UP, %llu "
               "DOWN): %s\n",
               (unsigned long long)res->triggers, conf->topic_triggers,
               (unsigned long long)res->engine.triggers_up,
               (unsigned long long)res->engine.triggers_down,
               itd_trigger_conf_text(&tc, rule, sizeof rule));
        if (w->n_examples > 0) {
                printf("\n  recent predictions above the threshold "
                       "(topic \"%s\"):\n", conf->topic_predictions);
                for (size_t i = 0; i < w->n_examples; i++) {
                        const itd_prediction_t *pr = &w->examples[i];
                        printf("    user %-10s P(purchase in %lld min) = %.2f"
                               "  next: %-11s top category: %s\n",
                               pr->user_id,
                               (long long)(conf->labels_horizon_ms / 60000),
                               pr->purchase_probability,
                               itd_next_name(pr->next_action),
                               pr->n_top_categories ? pr->top_categories[0]
                                                    : "-");
                }
        }
        printf("\n  next: `intentd --help`, docs/ARCHITECTURE.md, "
               "docs/CONFIGURATION.md\n");
        free(w), free(res);
        rc = 0;
out:
        itd_broker_stop(broker);
        itd_sim_destroy(sim);
        itd_reader_destroy(rd);
        free(prod);
        itd_conf_destroy(conf);
        return rc;
}
