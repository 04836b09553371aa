/*
 * cmd_replay.c - `intentd replay`: the engine over a file, no Kafka.
 *
 * The same engine as `run` (state, features, labeler, model, metrics),
 * fed from a reader in event-time order, deterministic. All events go to
 * partition 0, so one watermark covers the whole file.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/reader.h"

#define MAX_OVERRIDES 64

static const char replay_usage[] =
    "usage: intentd replay --config FILE --input DATA [--format taobao|jsonl]\n"
    "                      [--dump-state OUT.jsonl] [-o key=value]...\n"
    "\n"
    "Runs the pipeline of `intentd run` over a file, without Kafka, and\n"
    "prints the progressive-validation summary.\n"
    "\n"
    "  --dump-state F   one JSON line per user: window counts per event type\n"
    "                   as of the end-of-input watermark\n";

int itd_cmd_replay(int argc, char **argv) {
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"input", required_argument, NULL, 'i'},
            {"format", required_argument, NULL, 'f'},
            {"dump-state", required_argument, NULL, 'D'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0}};
        const char *conf_path = NULL, *input = NULL, *format_arg = NULL;
        const char *dump_path = NULL;
        char *overrides[MAX_OVERRIDES];
        int n_overrides = 0;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "o:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'c': conf_path = optarg; break;
                case 'i': input = optarg; break;
                case 'f': format_arg = optarg; break;
                case 'D': dump_path = optarg; break;
                case 'o':
                        if (n_overrides < MAX_OVERRIDES)
                                overrides[n_overrides++] = optarg;
                        break;
                case 'h': fputs(replay_usage, stdout); return 0;
                case 'V': printf("intentd %s\n", ITD_VERSION); return 0;
                default: fputs(replay_usage, stderr); return 2;
                }
        }
        if (!input) {
                fprintf(stderr, "intentd replay: --input is required\n\n%s",
                        replay_usage);
                return 2;
        }
        itd_format_t format = itd_cli_guess_format(input);
        if (format_arg && itd_format_parse(format_arg, &format) != ITD_OK) {
                fprintf(stderr, "intentd replay: --format \"%s\": expected "
                        "taobao or jsonl\n", format_arg);
                return 2;
        }
        itd_conf_t *conf = itd_cli_conf(conf_path, overrides, n_overrides);
        if (!conf)
                return 1;
        itd_cli_log_setup(conf);
        itd_cli_signals();

        char errstr[1024];
        int rc = 1;
        itd_reader_t *rd = NULL;
        itd_input_t *in = NULL;
        itd_prediction_t *preds = NULL;
        itd_outcome_t *outcome = NULL;
        itd_engine_t *eng = itd_engine_new(conf, errstr, sizeof errstr);
        if (!eng) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        rd = itd_reader_open(input, format, 1, errstr, sizeof errstr);
        if (!rd) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        size_t max_batch = itd_engine_max_batch(eng);
        in = itd_xcalloc(max_batch, sizeof *in);
        preds = itd_xcalloc(max_batch, sizeof *preds);
        outcome = itd_xcalloc(max_batch, sizeof *outcome);

        int64_t t0 = itd_now_mono_ms();
        uint64_t events = 0, filtered = 0;
        int64_t offset = 0;
        itd_err_t err = ITD_OK;
        while (!itd_cli_stop && err == ITD_OK) {
                size_t n = 0;
                while (n < max_batch &&
                       (err = itd_reader_next(rd, &in[n].ev, errstr,
                                              sizeof errstr)) == ITD_OK) {
                        in[n].partition = 0;
                        in[n].offset = offset++;
                        n++;
                }
                if (n == 0)
                        break;
                if (itd_engine_process(eng, input, in, n, preds, outcome) !=
                    ITD_OK) {
                        fprintf(stderr, "intentd replay: the pending-label "
                                "pool is full (labels.max_pending)\n");
                        goto out;
                }
                events += n;
                for (size_t i = 0; i < n; i++)
                        filtered += outcome[i] != ITD_OUT_PREDICTED;
        }
        if (err != ITD_OK && err != ITD_ERR_EOF) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        double seconds = (double)(itd_now_mono_ms() - t0) / 1000.0;
        uint64_t bad = itd_reader_bad_lines(rd);
        if (bad)
                fprintf(stderr, "replay: skipped %llu malformed lines "
                        "(last: %s)\n", (unsigned long long)bad,
                        itd_reader_last_error(rd));
        if (dump_path) {
                FILE *f = fopen(dump_path, "w");
                if (!f || itd_engine_dump_state(eng, f) != ITD_OK ||
                    fclose(f) != 0) {
                        fprintf(stderr, "intentd replay: cannot write "
                                "\"%s\"\n", dump_path);
                        goto out;
                }
        }
        itd_engine_stats_t es;
        itd_engine_stats(eng, &es);
        printf("replay of %s", input);
        itd_cli_summary(stdout, &es, seconds, events, bad, filtered,
                        conf->predict_threshold);
        rc = 0;
out:
        free(in);
        free(preds);
        free(outcome);
        itd_reader_destroy(rd);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
        return rc;
}
