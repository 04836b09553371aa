/*
 * cli.c - what the subcommands share: signals, config loading with
 * overrides, logging set-up, number parsing with clear errors.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intentd/log.h"
#include "intentd/mem.h"

volatile sig_atomic_t itd_cli_stop = 0;
volatile sig_atomic_t itd_cli_reload = 0;

static void on_stop(int sig) {
        (void)sig;
        itd_cli_stop = 1;
}

static void on_hup(int sig) {
        (void)sig;
        itd_cli_reload = 1;
}

void itd_cli_signals(void) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sa.sa_handler = on_hup;
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

itd_conf_t *itd_cli_conf(const char *path, char **overrides, int n_overrides) {
        char errstr[1024];
        itd_conf_t *conf = itd_conf_new();
        if (path && itd_conf_load(conf, path, errstr, sizeof errstr) != ITD_OK) {
                fprintf(stderr, "intentd: %s\n", errstr);
                itd_conf_destroy(conf);
                return NULL;
        }
        for (int i = 0; i < n_overrides; i++) {
                char *kv = itd_xstrdup(overrides[i]);
                char *eq = strchr(kv, '=');
                if (!eq) {
                        fprintf(stderr,
                                "intentd: -o \"%s\": expected key=value\n",
                                overrides[i]);
                        free(kv);
                        itd_conf_destroy(conf);
                        return NULL;
                }
                *eq = '\0';
                if (itd_conf_set(conf, kv, eq + 1, errstr, sizeof errstr) !=
                    ITD_OK) {
                        fprintf(stderr, "intentd: -o %s: %s\n", overrides[i],
                                errstr);
                        free(kv);
                        itd_conf_destroy(conf);
                        return NULL;
                }
                itd_conf_note_override(conf, kv);
                free(kv);
        }
        return conf;
}

_Static_assert(ITD_CONF_LOG_PLAIN == ITD_LOG_FORMAT_PLAIN + 1 &&
                   ITD_CONF_LOG_JOURNAL == ITD_LOG_FORMAT_JOURNAL + 1 &&
                   ITD_CONF_LOG_JSON == ITD_LOG_FORMAT_JSON + 1,
               "log.format symbols follow itd_log_format_t");

void itd_cli_log_setup(const itd_conf_t *conf) {
        /* journald sets JOURNAL_STREAM when stderr is its stream: then the
         * <N> prefixes carry the level; elsewhere plain text reads better. */
        const char *js = getenv("JOURNAL_STREAM");
        itd_log_format_t format =
            conf->log_format != ITD_CONF_LOG_AUTO
                ? (itd_log_format_t)(conf->log_format - 1)
            : js && *js ? ITD_LOG_FORMAT_JOURNAL
                        : ITD_LOG_FORMAT_PLAIN;
        itd_log_setup(conf->log_level, format);
}

int itd_cli_next(itd_cli_args_t *a, int argc, char **argv,
                 const struct option *longopts) {
        if (!a->started) {
                optind = 1;
                a->started = 1;
        }
        for (;;) {
                int c = getopt_long(argc, argv, a->conf ? "c:o:hV" : "hV",
                                    longopts, NULL);
                switch (c) {
                case 'c':
                        a->conf_path = optarg;
                        continue;
                case 'o':
                        if (a->n_overrides == ITD_CLI_MAX_OVERRIDES) {
                                fprintf(stderr, "intentd %s: more than %d -o "
                                        "options\n", a->cmd,
                                        ITD_CLI_MAX_OVERRIDES);
                                a->exit = 2;
                                return ITD_CLI_EXIT;
                        }
                        a->overrides[a->n_overrides++] = optarg;
                        continue;
                case 'h':
                        fputs(a->usage, stdout);
                        a->exit = 0;
                        return ITD_CLI_EXIT;
                case 'V':
                        printf("intentd %s\n", ITD_VERSION);
                        a->exit = 0;
                        return ITD_CLI_EXIT;
                case '?':
                case ':':
                        fputs(a->usage, stderr);
                        a->exit = 2;
                        return ITD_CLI_EXIT;
                default:
                        /* The subcommand's own option; one it lists but
                         * does not handle is a usage error too. */
                        a->exit = 2;
                        return c;
                }
        }
}

long long itd_cli_int(const char *cmd, const char *opt, const char *s,
                      long long min, long long max) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max) {
                fprintf(stderr, "intentd %s: %s \"%s\": expected an integer "
                        "in %lld..%lld\n", cmd, opt, s, min, max);
                return -1;
        }
        return v;
}

void itd_cli_summary(FILE *out, const itd_engine_stats_t *es, double seconds,
                     uint64_t events, uint64_t dead_lettered,
                     uint64_t filtered, double threshold) {
        const itd_eval_summary_t *eval = &es->eval;
        fprintf(out,
                "\n"
                "  events          %llu in %.1f s (%.0f events/s)\n"
                "  predictions     %llu (%llu late)   dead letters %llu   "
                "filtered %llu\n"
                "  users in state  %llu (%.1f MiB)\n"
                "  labelled        %llu (%llu purchased within the horizon, "
                "base rate %.1f%%); %llu still pending\n"
                "  training steps  %llu\n",
                (unsigned long long)events, seconds,
                seconds > 0 ? (double)events / seconds : 0.0,
                (unsigned long long)es->predictions,
                (unsigned long long)es->late,
                (unsigned long long)dead_lettered,
                (unsigned long long)filtered, (unsigned long long)es->users,
                (double)es->state_bytes / 1048576.0,
                (unsigned long long)eval->n,
                (unsigned long long)eval->positives, 100.0 * eval->base_rate,
                (unsigned long long)es->pending,
                (unsigned long long)es->train_steps);
        fprintf(out,
                "\n  progressive validation (each prediction judged before "
                "the model learned from it)\n"
                "  purchase  AUC %.3f (+-%.3f)  log loss %.4f  ECE %.4f\n"
                "            at threshold %.2f: precision %.3f  recall %.3f  "
                "F1 %.3f  accuracy %.3f\n"
                "  next action  accuracy %.3f  log loss %.4f\n",
                eval->auc, eval->auc_err_bound, eval->logloss, eval->ece,
                threshold, eval->precision, eval->recall, eval->f1,
                eval->accuracy, eval->next_accuracy, eval->next_logloss);
}

int itd_cli_format(const char *cmd, const char *input, const char *format_arg,
                   itd_format_t *format) {
        *format = itd_cli_guess_format(input);
        if (format_arg && itd_format_parse(format_arg, format) != ITD_OK) {
                fprintf(stderr, "intentd %s: --format \"%s\": expected "
                        "taobao, rees46, retailrocket, jsonl or avro\n", cmd,
                        format_arg);
                return -1;
        }
        return 0;
}
