/*
 * cmd_load.c - `intentd load`: a dataset file to the events topic as Avro.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "intentd/log.h"
#include "intentd/reader.h"
#include "publish.h"
#include "feed.h"


static const char load_usage[] =
    "usage: intentd load --config FILE --input DATA [--format FORMAT]\n"
    "                    [--rate N] [--no-sort] [-o key=value]...\n"
    "\n"
    "Publishes every event of DATA to topics.events as Avro, keyed by user\n"
    "id. DATA may be gzip-compressed (.gz). Events are sorted by event time\n"
    "first (stable), since some datasets are grouped by user.\n"
    "\n"
    "  --format F   taobao (UserBehavior CSV), rees46, retailrocket,\n"
    "               jsonl (event schema) or avro (container file);\n"
    "               default from the file name\n"
    "  --rate N     events per second (default: as fast as possible)\n"
    "  --no-sort    publish in file order\n";

/* Guesses the format from the file name when --format is not given, by the
 * names the datasets ship with: REES46 as "2019-Oct.csv",
 * RetailRocket as "events.csv"; anything else CSV is taken for Taobao. */
itd_format_t itd_cli_guess_format(const char *path) {
        static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                             "May", "Jun", "Jul", "Aug",
                                             "Sep", "Oct", "Nov", "Dec"};
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strstr(base, ".avro"))
                return ITD_FORMAT_AVRO;
        if (strstr(base, ".jsonl") || strstr(base, ".json"))
                return ITD_FORMAT_JSONL;
        if (strstr(base, "rees46"))
                return ITD_FORMAT_REES46;
        if (strstr(base, "retailrocket") ||
            strncmp(base, "events.csv", 10) == 0)
                return ITD_FORMAT_RETAILROCKET;
        int year;
        char mon[4];
        if (sscanf(base, "%4d-%3[A-Za-z].csv", &year, mon) == 2) {
                for (size_t i = 0; i < sizeof months / sizeof months[0]; i++)
                        if (strcmp(mon, months[i]) == 0)
                                return ITD_FORMAT_REES46;
        }
        return ITD_FORMAT_TAOBAO;
}

int itd_cmd_load(int argc, char **argv) {
        static const struct option longopts[] = {
            ITD_CLI_CONF_OPTS,
            {"input", required_argument, NULL, 'i'},
            {"format", required_argument, NULL, 'f'},
            {"rate", required_argument, NULL, 'r'},
            {"no-sort", no_argument, NULL, 'n'},
            ITD_CLI_COMMON_OPTS};
        const char *input = NULL, *format_arg = NULL;
        int sort = 1;
        double rate = 0;
        int c;
        itd_cli_args_t a = {.cmd = "load", .usage = load_usage, .conf = 1};
        while ((c = itd_cli_next(&a, argc, argv, longopts)) != -1) {
                switch (c) {
                case 'i': input = optarg; break;
                case 'f': format_arg = optarg; break;
                case 'r': rate = atof(optarg); break;
                case 'n': sort = 0; break;
                default: return a.exit;
                }
        }
        if (!a.conf_path || !input) {
                fprintf(stderr, "intentd load: --config and --input are "
                        "required\n\n%s", load_usage);
                return 2;
        }
        itd_format_t format;
        if (itd_cli_format("load", input, format_arg, &format) != 0)
                return 2;
        itd_conf_t *conf =
            itd_cli_conf(a.conf_path, a.overrides, a.n_overrides);
        if (!conf)
                return 1;
        itd_cli_log_setup(conf);
        itd_cli_signals();
        char errstr[1024];
        int rc = 0;
        itd_reader_t *rd = itd_reader_open(input, format, sort, errstr,
                                           sizeof errstr);
        if (!rd) {
                fprintf(stderr, "intentd load: %s\n", errstr);
                itd_conf_destroy(conf);
                return 1;
        }
        itd_publish_opts_t po = {.rate = rate,
                                 .progress = isatty(2),
                                 .stop = &itd_cli_stop,
                                 .progress_bytes = itd_feed_reader_progress};
        uint64_t n;
        if (itd_publish(conf, itd_feed_reader_next, rd, &po, &n, errstr,
                        sizeof errstr) != ITD_OK) {
                fprintf(stderr, "intentd load: %s\n", errstr);
                rc = 1;
        }
        uint64_t bad = itd_reader_bad_lines(rd);
        if (bad)
                fprintf(stderr, "intentd load: skipped %llu malformed lines "
                        "(last: %s)\n", (unsigned long long)bad,
                        itd_reader_last_error(rd));
        printf("%llu\n", (unsigned long long)n);
        fprintf(stderr, "load: published %llu events from \"%s\" to \"%s\"\n",
                (unsigned long long)n, input, conf->topic_events);
        itd_reader_destroy(rd);
        itd_conf_destroy(conf);
        return rc;
}
