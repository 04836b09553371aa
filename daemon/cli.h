/*
 * cli.h - the subcommands of the one `intentd` binary (DESIGN.md). Each
 * takes argc/argv starting at the subcommand's name and returns the process
 * exit code; only main() exits.
 */
#ifndef INTENTD_CLI_H
#define INTENTD_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "intentd/engine.h"
#include "intentd/conf.h"
#include "intentd/reader.h"

int itd_cmd_run(int argc, char **argv);
int itd_cmd_check_config(int argc, char **argv);
int itd_cmd_broker(int argc, char **argv);
int itd_cmd_simulate(int argc, char **argv);
int itd_cmd_load(int argc, char **argv);
int itd_cmd_replay(int argc, char **argv);
int itd_cmd_demo(int argc, char **argv);

/* sysexits.h EX_CONFIG: the units do not restart on it (a bad config
 * stays bad). */
#define ITD_EXIT_CONFIG 78

/* Set by SIGTERM/SIGINT once itd_cli_signals() installed the handlers. */
extern volatile sig_atomic_t itd_cli_stop;
/* Set by SIGHUP; the run loop clears it after reloading. */
extern volatile sig_atomic_t itd_cli_reload;

/** @brief Installs SIGTERM/SIGINT (itd_cli_stop) and SIGHUP
 * (itd_cli_reload) handlers that only set their flag. */
void itd_cli_signals(void);

/**
 * @brief Loads a config file (or defaults when path is NULL) and applies
 * `-o key=value` overrides; prints the error naming file:line:column.
 * @returns the config, or NULL after printing why.
 */
itd_conf_t *itd_cli_conf(const char *path, char **overrides, int n_overrides);

/** @brief Applies log.level and picks the log format for stderr. */
void itd_cli_log_setup(const itd_conf_t *conf);

/* The options every subcommand that reads a config takes, first in its
 * longopts: --config FILE (also -c); -o key=value is short only. */
#define ITD_CLI_CONF_OPTS {"config", required_argument, NULL, 'c'}
/* Last in every longopts: -h/--help, -V/--version, the terminator. */
#define ITD_CLI_COMMON_OPTS                                                   \
        {"help", no_argument, NULL, 'h'},                                     \
            {"version", no_argument, NULL, 'V'}, { NULL, 0, NULL, 0 }

#define ITD_CLI_MAX_OVERRIDES 64

/*
 * One subcommand's option parsing. Every subcommand reads its options the
 * same way:
 *
 *   static const struct option longopts[] = {
 *       ITD_CLI_CONF_OPTS, {"input", required_argument, NULL, 'i'}, ...,
 *       ITD_CLI_COMMON_OPTS};
 *   itd_cli_args_t a = {.cmd = "load", .usage = load_usage, .conf = 1};
 *   int c;
 *   while ((c = itd_cli_next(&a, argc, argv, longopts)) != -1) {
 *           switch (c) {
 *           case 'i': input = optarg; break;
 *           default: return a.exit;
 *           }
 *   }
 *
 * itd_cli_next handles what the subcommands share (the config path, the
 * -o overrides, help, version, an unknown option) and returns only the
 * subcommand's own options; ITD_CLI_EXIT means stop with a.exit.
 */
typedef struct itd_cli_args_s {
        const char *cmd;        /* "load": messages say "intentd load: ..." */
        const char *usage;
        int conf;               /* takes -c/--config FILE and -o key=value */
        const char *conf_path;  /* --config, or NULL */
        char *overrides[ITD_CLI_MAX_OVERRIDES];
        int n_overrides;
        int exit;               /* the exit code once ITD_CLI_EXIT came */
        int started;            /* optind was reset */
} itd_cli_args_t;

#define ITD_CLI_EXIT (-2)

/**
 * @brief The next option of the subcommand's own (its short letter), -1
 * after the last, or ITD_CLI_EXIT: -h/--help printed usage to stdout or
 * -V/--version the version (a->exit 0), or the usage error was printed
 * (unknown option, missing argument, too many -o: a->exit 2).
 */
int itd_cli_next(itd_cli_args_t *a, int argc, char **argv,
                 const struct option *longopts);

/** @brief Parses a positive integer option; prints and returns -1 if bad. */
long long itd_cli_int(const char *cmd, const char *opt, const char *s,
                      long long min, long long max);

/** @brief Format from a file name (.avro, .jsonl/.json, REES46 and
 * RetailRocket names); anything else is taken for Taobao. */
itd_format_t itd_cli_guess_format(const char *path);

/**
 * @brief The input format: --format's value if given, else guessed from
 * the file name. Prints "intentd CMD: --format ..." when it is unknown.
 * @returns 0, or -1 after printing.
 */
int itd_cli_format(const char *cmd, const char *input, const char *format_arg,
                   itd_format_t *format);

/**
 * @brief Prints the end-of-run summary shared by demo and replay: volume,
 * throughput, progressive metrics at the threshold, labels still pending.
 */
void itd_cli_summary(FILE *out, const itd_engine_stats_t *es, double seconds,
                     uint64_t events, uint64_t dead_lettered,
                     uint64_t filtered, double threshold);

#endif
