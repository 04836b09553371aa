/*
 * cmd_simulate.c - `intentd simulate`: the seeded shopper simulator, as
 * JSON lines (a file or stdout) or straight to the events topic.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "intentd/log.h"
#include "intentd/simulator.h"
#include "publish.h"
#include "feed.h"

/* 2017-11-25 00:00:00 UTC: a fixed start keeps runs reproducible. */
#define SIM_DEFAULT_START_MS 1511568000000LL

static const char sim_usage[] =
    "usage: intentd simulate [--users N] [--days D] [--seed S]\n"
    "                        [--bots FRACTION]\n"
    "                        [--out FILE | --config FILE [--rate R]\n"
    "                         [-o key=value]...]\n"
    "\n"
    "Streams simulated shopper events in event-time order: JSON lines to\n"
    "FILE (or stdout), or, with --config, Avro to topics.events keyed by\n"
    "user. Deterministic for (users, days, seed, bots).\n"
    "\n"
    "  --users N    population (default 10000)\n"
    "  --days D     simulated days, may be fractional (default 1)\n"
    "  --seed S     seed (default 1)\n"
    "  --bots FRACTION\n"
    "               share of all users that are bots, 0..0.5 (default 0):\n"
    "               N shoppers plus N*F/(1-F) bots with ids bot-1, bot-2, ..\n"
    "               (scrapers, cart-stuffing scalpers, card testers); the\n"
    "               shoppers' events are the same as without bots\n"
    "  --rate R     with --config: events per second (default: as fast as possible)\n";

int itd_cmd_simulate(int argc, char **argv) {
        static const struct option longopts[] = {
            {"users", required_argument, NULL, 'u'},
            {"days", required_argument, NULL, 'd'},
            {"seed", required_argument, NULL, 's'},
            {"bots", required_argument, NULL, 'b'},
            {"out", required_argument, NULL, 'O'},
            ITD_CLI_CONF_OPTS,
            {"rate", required_argument, NULL, 'r'},
            ITD_CLI_COMMON_OPTS};
        itd_sim_conf_t sc = {.users = 10000, .days = 1.0, .seed = 1,
                             .start_ms = SIM_DEFAULT_START_MS};
        const char *out_path = NULL;
        double rate = 0;
        long long v;
        int c;
        itd_cli_args_t a = {.cmd = "simulate", .usage = sim_usage,
                            .conf = 1};
        while ((c = itd_cli_next(&a, argc, argv, longopts)) != -1) {
                switch (c) {
                case 'u':
                        if ((v = itd_cli_int("simulate", "--users", optarg, 1,
                                             1000000000LL)) < 0)
                                return 2;
                        sc.users = (uint64_t)v;
                        break;
                case 'd':
                        sc.days = atof(optarg);
                        if (!(sc.days > 0 && sc.days <= 366)) {
                                fprintf(stderr, "intentd simulate: --days "
                                        "\"%s\": expected 0 < D <= 366\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 's':
                        if ((v = itd_cli_int("simulate", "--seed", optarg, 0,
                                             (1LL << 62))) < 0)
                                return 2;
                        sc.seed = (uint64_t)v;
                        break;
                case 'b': {
                        char *end;
                        sc.bot_fraction = strtod(optarg, &end);
                        if (end == optarg || *end ||
                            !(sc.bot_fraction >= 0 &&
                              sc.bot_fraction <= 0.5)) {
                                fprintf(stderr, "intentd simulate: --bots "
                                        "\"%s\": expected a fraction "
                                        "0..0.5\n", optarg);
                                return 2;
                        }
                        break;
                }
                case 'O': out_path = optarg; break;
                case 'r': rate = atof(optarg); break;
                default: return a.exit;
                }
        }
        if (out_path && a.conf_path) {
                fprintf(stderr, "intentd simulate: --out and --config "
                        "exclude each other\n");
                return 2;
        }
        char errstr[1024];
        itd_sim_t *sim = itd_sim_new(&sc, errstr, sizeof errstr);
        if (!sim) {
                fprintf(stderr, "intentd simulate: %s\n", errstr);
                return 1;
        }
        int rc = 0;
        if (a.conf_path) {
                itd_conf_t *conf = itd_cli_conf(a.conf_path, a.overrides,
                                                a.n_overrides);
                if (!conf) {
                        itd_sim_destroy(sim);
                        return 1;
                }
                itd_cli_log_setup(conf);
                itd_cli_signals();
                itd_publish_opts_t po = {.rate = rate,
                                         .progress = isatty(2),
                                         .stop = &itd_cli_stop};
                uint64_t n;
                if (itd_publish(conf, itd_feed_sim_next, sim, &po, &n,
                                errstr, sizeof errstr) != ITD_OK) {
                        fprintf(stderr, "intentd simulate: %s\n", errstr);
                        rc = 1;
                } else {
                        fprintf(stderr, "simulate: published %llu events to "
                                "\"%s\"\n", (unsigned long long)n,
                                conf->topic_events);
                }
                itd_conf_destroy(conf);
        } else {
                FILE *out = out_path ? fopen(out_path, "w") : stdout;
                if (!out) {
                        fprintf(stderr, "intentd simulate: cannot write "
                                "\"%s\"\n", out_path);
                        itd_sim_destroy(sim);
                        return 1;
                }
                itd_event_t ev;
                char line[2048];
                while (itd_sim_next(sim, &ev) == ITD_OK) {
                        size_t len = itd_event_to_json(&ev, line,
                                                       sizeof line - 1);
                        line[len] = '\n';
                        if (fwrite(line, 1, len + 1, out) != len + 1) {
                                fprintf(stderr, "intentd simulate: write "
                                        "failed\n");
                                rc = 1;
                                break;
                        }
                }
                if ((out_path ? fclose(out) : fflush(out)) != 0)
                        rc = 1;
        }
        itd_sim_destroy(sim);
        return rc;
}
