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

/*
 * Every subcommand parses its options the same way:
 *
 *   static const struct option longopts[] = {
 *       {"config", required_argument, NULL, 'c'}, ..., ITD_CLI_COMMON_OPTS};
 *   int c;
 *   optind = 1;
 *   while ((c = getopt_long(argc, argv, "o:" ITD_CLI_COMMON_SHORT,
 *                           longopts, NULL)) != -1) {
 *           switch (c) {
 *           case 'c': ...; break;
 *           default: return itd_cli_common_opt(c, usage);
 *           }
 *   }
 */
#define ITD_CLI_COMMON_SHORT "hV"
#define ITD_CLI_COMMON_OPTS                                                   \
        {"help", no_argument, NULL, 'h'},                                     \
            {"version", no_argument, NULL, 'V'}, { NULL, 0, NULL, 0 }

/**
 * @brief What an option no subcommand handles itself does: -h/--help
 * prints usage to stdout, -V/--version the version, both exit 0; anything
 * else is a usage error (usage to stderr, exit 2).
 * @returns the exit code.
 */
int itd_cli_common_opt(int c, const char *usage);

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
