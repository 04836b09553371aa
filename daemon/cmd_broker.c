/*
 * cmd_broker.c - `intentd broker`: the embedded Kafka for demos and tests.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "cli.h"
#include "intentd/log.h"
#include "intentd/mem.h"

static const char broker_usage[] =
    "usage: intentd broker [--brokers N] [--partitions P] [--topics a,b,...]\n"
    "                      [--bootstrap-file FILE]\n"
    "\n"
    "Starts librdkafka's mock cluster on 127.0.0.1 (random ports), creates\n"
    "the topics, prints the bootstrap string (and writes it to FILE), and\n"
    "runs until SIGTERM or SIGINT. Memory only: no persistence, no log\n"
    "compaction, retention of about 5 MiB per partition, transactions that\n"
    "do not isolate. For demos and tests, not production.\n"
    "\n"
    "  --brokers N          brokers (default 1)\n"
    "  --partitions P       partitions per topic (default 4)\n"
    "  --topics LIST        comma-separated (default: intentd.events,\n"
    "                       intentd.predictions, intentd.triggers,\n"
    "                       intentd.dead_letter)\n"
    "  --bootstrap-file F   also write the bootstrap string to F\n";

int itd_cmd_broker(int argc, char **argv) {
        static const struct option longopts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"partitions", required_argument, NULL, 'p'},
            {"topics", required_argument, NULL, 't'},
            {"bootstrap-file", required_argument, NULL, 'f'},
            ITD_CLI_COMMON_OPTS};
        long long brokers = 1, partitions = 4;
        const char *topics_arg =
            "intentd.events,intentd.predictions,intentd.triggers,"
            "intentd.dead_letter";
        const char *bootstrap_file = NULL;
        int c;
        itd_cli_args_t a = {.cmd = "broker", .usage = broker_usage};
        while ((c = itd_cli_next(&a, argc, argv, longopts)) != -1) {
                switch (c) {
                case 'b':
                        if ((brokers = itd_cli_int("broker", "--brokers",
                                                   optarg, 1, 16)) < 0)
                                return 2;
                        break;
                case 'p':
                        if ((partitions = itd_cli_int("broker", "--partitions",
                                                      optarg, 1, 1024)) < 0)
                                return 2;
                        break;
                case 't': topics_arg = optarg; break;
                case 'f': bootstrap_file = optarg; break;
                default: return a.exit;
                }
        }
        itd_log_setup(ITD_LOG_NOTICE, ITD_LOG_FORMAT_PLAIN);
        char *list = itd_xstrdup(topics_arg);
        const char *topics[64];
        size_t n_topics = 0;
        for (char *save = NULL, *t = strtok_r(list, ",", &save);
             t && n_topics < 64; t = strtok_r(NULL, ",", &save))
                if (*t)
                        topics[n_topics++] = t;

        itd_cli_signals();
        char errstr[512];
        itd_broker_t *b = itd_broker_start((int)brokers, (int)partitions,
                                           topics, n_topics, errstr,
                                           sizeof errstr);
        free(list);
        if (!b) {
                fprintf(stderr, "intentd broker: %s\n", errstr);
                return 1;
        }
        const char *bs = itd_broker_bootstraps(b);
        if (bootstrap_file) {
                /* Written to a temporary name and renamed, so a reader that
                 * waits for the file never sees half a line. */
                char tmp[4096];
                snprintf(tmp, sizeof tmp, "%s.tmp", bootstrap_file);
                FILE *f = fopen(tmp, "w");
                if (!f || fprintf(f, "%s\n", bs) < 0 || fclose(f) != 0 ||
                    rename(tmp, bootstrap_file) != 0) {
                        fprintf(stderr,
                                "intentd broker: cannot write \"%s\"\n",
                                bootstrap_file);
                        itd_broker_stop(b);
                        return 1;
                }
        }
        printf("%s\n", bs);
        fflush(stdout);
        while (!itd_cli_stop) {
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
        }
        itd_broker_stop(b);
        return 0;
}
