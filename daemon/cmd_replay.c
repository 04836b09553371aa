/*
 * cmd_replay.c - `intentd replay`: its options, the configuration and the
 * baseline's, and the summary it prints. The replay itself, the report
 * and the comparison are replay/ (intentd/replay.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conf_parts.h"
#include "intentd/log.h"
#include "intentd/replay.h"

static const char replay_usage[] =
    "usage: intentd replay [--config FILE] --input DATA\n"
    "                      [--format taobao|rees46|retailrocket|jsonl|avro]\n"
    "                      [--report OUT.json] [--html OUT.html]\n"
    "                      [--export-features OUT.csv] [--export-key HEX]\n"
    "                      [--baseline mlp|logistic] [--resamples N]\n"
    "                      [--dump-state OUT.jsonl] [-o key=value]...\n"
    "\n"
    "Runs the pipeline of `intentd run` over a file, without Kafka, and\n"
    "prints the progressive-validation summary. Events are sorted by event\n"
    "time first (stable); DATA may be gzip-compressed (.gz). Without\n"
    "--config the defaults apply.\n"
    "\n"
    "  --format F          default from the file name: .avro -> avro,\n"
    "                      .jsonl/.json -> jsonl, 2019-Oct.csv or *rees46*\n"
    "                      -> rees46, events.csv or *retailrocket* ->\n"
    "                      retailrocket, else taobao\n"
    "  --report F          evaluation report as JSON: metrics overall,\n"
    "                      confusion matrix, threshold sweep, next action,\n"
    "                      the comparison with the rules and the baseline\n"
    "                      (curves, calibration, over event time, segments),\n"
    "                      event mix, throughput, configuration\n"
    "  --html F            the same as one self-contained HTML page with\n"
    "                      charts\n"
    "  --export-features F every resolved example as the model saw it:\n"
    "                      ts, user (a keyed pseudonym), the features of\n"
    "                      FEATURES.md, sparse ids, label, next_action,\n"
    "                      score\n"
    "  --export-key HEX    the pseudonyms' key, 32 hex digits: the same key\n"
    "                      gives the same pseudonyms (exports that compare);\n"
    "                      default a random key per run\n"
    "  --baseline TYPE     also run model.type TYPE over the same stream and\n"
    "                      judge it on the same examples (FTRL: logistic)\n"
    "  --resamples N       bootstrap resamples of users for the 95%\n"
    "                      intervals (default 1000, fewer on very large\n"
    "                      inputs; 0: none)\n"
    "  --dump-state F      one JSON line per user: window counts per event\n"
    "                      type as of the end-of-input watermark\n"
    "\n"
    "Beside the progressive summary it prints, on the same examples, the\n"
    "model, the baseline, the purchase-rate rule and the label-rate rule\n"
    "over all labelled events and the last 30% of event time: exact AUC\n"
    "with its interval from resampling users, top-decile lift, ECE over\n"
    "equal-mass bins, log loss (docs/ACCURACY.md).\n";

/* 32 hex digits -> 16 bytes; -1 when it is not that. */
static int parse_key(const char *hex, uint8_t key[16]) {
        if (strlen(hex) != 32)
                return -1;
        for (int i = 0; i < 16; i++) {
                unsigned v = 0;
                for (int j = 0; j < 2; j++) {
                        char ch = hex[2 * i + j];
                        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                         : -1;
                        if (d < 0)
                                return -1;
                        v = v << 4 | (unsigned)d;
                }
                key[i] = (uint8_t)v;
        }
        return 0;
}

static FILE *open_out(const char *path) {
        FILE *f = fopen(path, "w");
        if (!f)
                fprintf(stderr, "intentd replay: cannot write \"%s\": %s\n",
                        path, strerror(errno));
        return f;
}

/* A second configuration, the same but for model.type: the baseline. */
static itd_conf_t *baseline_conf(const char *conf_path, char **overrides,
                                 int n_overrides, const char *type) {
        itd_conf_t *conf = itd_cli_conf(conf_path, overrides, n_overrides);
        char errstr[256];
        if (conf && itd_conf_set(conf, "model.type", type, errstr,
                                 sizeof errstr) != ITD_OK) {
                fprintf(stderr, "intentd replay: --baseline \"%s\": %s\n",
                        type, errstr);
                itd_conf_destroy(conf);
                return NULL;
        }
        return conf;
}

static const char *model_name(const itd_conf_t *conf) {
        return conf->model_type == ITD_MODEL_KIND_LOGISTIC ? "logistic" : "mlp";
}

int itd_cmd_replay(int argc, char **argv) {
        static const struct option longopts[] = {
            ITD_CLI_CONF_OPTS,
            {"input", required_argument, NULL, 'i'},
            {"format", required_argument, NULL, 'f'},
            {"dump-state", required_argument, NULL, 'D'},
            {"report", required_argument, NULL, 'R'},
            {"html", required_argument, NULL, 'H'},
            {"export-features", required_argument, NULL, 'X'},
            {"export-key", required_argument, NULL, 'K'},
            {"baseline", required_argument, NULL, 'B'},
            {"resamples", required_argument, NULL, 'N'},
            ITD_CLI_COMMON_OPTS};
        const char *input = NULL, *format_arg = NULL;
        const char *dump_path = NULL, *report_path = NULL, *html_path = NULL;
        const char *export_path = NULL, *baseline = NULL;
        const char *export_key = NULL;
        long long resamples = -1;
        int c;
        itd_cli_args_t a = {.cmd = "replay", .usage = replay_usage,
                            .conf = 1};
        while ((c = itd_cli_next(&a, argc, argv, longopts)) != -1) {
                switch (c) {
                case 'i': input = optarg; break;
                case 'f': format_arg = optarg; break;
                case 'D': dump_path = optarg; break;
                case 'R': report_path = optarg; break;
                case 'H': html_path = optarg; break;
                case 'X': export_path = optarg; break;
                case 'K': export_key = optarg; break;
                case 'B': baseline = optarg; break;
                case 'N':
                        resamples = itd_cli_int("replay", "--resamples",
                                                optarg, 0, 1000000);
                        if (resamples < 0)
                                return 2;
                        break;
                default: return a.exit;
                }
        }
        if (!input) {
                fprintf(stderr, "intentd replay: --input is required\n\n%s",
                        replay_usage);
                return 2;
        }
        if (baseline && strcmp(baseline, "none") == 0)
                baseline = NULL;
        uint8_t key[16];
        if (export_key && parse_key(export_key, key) != 0) {
                fprintf(stderr, "intentd replay: --export-key \"%s\": not 32 "
                        "hex digits\n", export_key);
                return 2;
        }
        if (!export_key)
                itd_random_key(key);
        itd_format_t format;
        if (itd_cli_format("replay", input, format_arg, &format) != 0)
                return 2;
        itd_conf_t *conf =
            itd_cli_conf(a.conf_path, a.overrides, a.n_overrides);
        if (!conf)
                return 1;
        itd_conf_t *bconf = NULL;
        if (baseline &&
            !(bconf = baseline_conf(a.conf_path, a.overrides, a.n_overrides,
                                    baseline))) {
                itd_conf_destroy(conf);
                return 2;
        }
        itd_cli_log_setup(conf);
        itd_cli_signals();

        char errstr[1024];
        int rc = 1;
        itd_reader_t *rd = NULL;
        itd_workers_t *wk = NULL;
        itd_engine_t *beng = NULL;
        json_t *doc = NULL, *trig_json = NULL, *config = NULL;
        FILE *csv = NULL;
        itd_replay_result_t res = {0};
        itd_replay_conf_t rc_ = {.input = input, .threshold =
                                 conf->predict_threshold,
                                 .report = report_path || html_path,
                                 .stop = &itd_cli_stop,
                                 .progress = isatty(STDERR_FILENO)};
        if (!(wk = itd_conf_new_workers(conf, errstr, sizeof errstr))) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        if (bconf && !(beng = itd_conf_new_engine(bconf, errstr, sizeof errstr))) {
                fprintf(stderr, "intentd replay: baseline: %s\n", errstr);
                goto out;
        }
        itd_compare_conf_defaults(&rc_.compare, conf->labels_horizon_ms);
        rc_.compare.model_name = model_name(conf);
        rc_.compare.baseline = bconf ? model_name(bconf) : NULL;
        if (resamples >= 0)
                rc_.compare.resamples = (size_t)resamples;
        itd_conf_to_triggers(conf, &rc_.triggers);
        if (export_path && !(csv = open_out(export_path)))
                goto out;
        rd = itd_reader_open(input, format, 1, errstr, sizeof errstr);
        if (!rd) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        rc_.rd = rd;
        rc_.wk = wk;
        rc_.beng = beng;
        rc_.csv = csv;
        memcpy(rc_.export_key, key, sizeof key);
        if (itd_replay_run(&rc_, &res, errstr, sizeof errstr) != ITD_OK) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        uint64_t bad = itd_reader_bad_lines(rd);
        if (bad)
                fprintf(stderr, "replay: skipped %llu malformed lines "
                        "(last: %s)\n", (unsigned long long)bad,
                        itd_reader_last_error(rd));
        if (dump_path) {
                FILE *f = fopen(dump_path, "w");
                if (!f || itd_workers_dump_state(wk, f) != ITD_OK ||
                    fclose(f) != 0) {
                        fprintf(stderr, "intentd replay: cannot write "
                                "\"%s\"\n", dump_path);
                        goto out;
                }
        }
        itd_engine_stats_t es;
        itd_workers_stats(wk, &es);
        if (csv) {
                FILE *f = csv;
                csv = NULL;
                if (ferror(f) | fclose(f)) {
                        fprintf(stderr, "intentd replay: cannot write "
                                "\"%s\"\n", export_path);
                        goto out;
                }
        }
        if (res.mismatched)
                fprintf(stderr, "replay: %llu baseline examples differ from "
                        "the model's (left out of the comparison)\n",
                        (unsigned long long)res.mismatched);
        trig_json = itd_trigsweep_json(res.sweep);
        if (res.rep) {
                config = itd_conf_report_json(conf);
                itd_report_run_t run = {
                    .input = input, .format = itd_format_name(format),
                    .config = config, .stats = &es, .seconds = res.seconds,
                    .events = res.events, .bad_lines = bad,
                    .filtered = res.filtered, .cmp = res.cmp,
                    .triggers = trig_json};
                doc = itd_report_json(res.rep, &run);
                if ((report_path && itd_report_write_json(
                                        doc, report_path, errstr,
                                        sizeof errstr) != ITD_OK) ||
                    (html_path && itd_report_write_html(
                                      doc, html_path, errstr,
                                      sizeof errstr) != ITD_OK)) {
                        fprintf(stderr, "intentd replay: %s\n", errstr);
                        goto out;
                }
        }
        printf("replay of %s", input);
        itd_cli_summary(stdout, &es, res.seconds, res.events, bad,
                        res.filtered, conf->predict_threshold);
        itd_compare_print(res.cmp, stdout);
        char rule[256];
        printf("  triggers        %llu UP, %llu DOWN; %llu held back by the "
               "cool-down, %llu stale, %llu before the distribution was "
               "warm\n                  (%s)\n",
               (unsigned long long)es.triggers_up,
               (unsigned long long)es.triggers_down,
               (unsigned long long)es.triggers_held_back,
               (unsigned long long)es.triggers_stale,
               (unsigned long long)es.triggers_warming,
               itd_trigger_conf_text(&rc_.triggers, rule, sizeof rule));
        itd_trigsweep_print(res.sweep, stdout);
        if (export_path)
                printf("  exported        %llu examples to %s\n",
                       (unsigned long long)res.rows, export_path);
        rc = 0;
out:
        if (csv)
                fclose(csv);
        json_decref(doc);
        json_decref(trig_json);
        json_decref(config);
        itd_replay_result_fini(&res);
        itd_reader_destroy(rd);
        itd_workers_destroy(wk);
        itd_engine_destroy(beng);
        itd_conf_destroy(conf);
        itd_conf_destroy(bconf);
        return rc;
}
