/*
 * main.c - the `intentd` binary: one program, subcommands (DESIGN.md).
 */
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "intentd/conf.h"
#include "prom.h"

static const char usage[] =
    "usage: intentd COMMAND [OPTIONS]\n"
    "\n"
    "intentd predicts what shoppers will do next, live, from a Kafka topic\n"
    "of browse/search/cart/purchase events.\n"
    "\n"
    "commands:\n"
    "  run --config FILE        the daemon: consume events, publish predictions\n"
    "  check-config FILE        validate a config file as run would, every\n"
    "                           problem at once (exit 0 good, 1 bad); -o too\n"
    "  broker [OPTIONS]         embedded Kafka (librdkafka mock cluster) on loopback\n"
    "  simulate [OPTIONS]       seeded shopper simulator: JSON lines or the events topic\n"
    "  load --config F --input DATA   publish a dataset file to the events topic\n"
    "  replay --input DATA      the same pipeline over a file, no Kafka\n"
    "                           ([--config F]: the defaults otherwise)\n"
    "  demo                     broker + simulator + daemon in one: live progress, summary\n"
    "  inspect model FILE | inspect state DIR   what a checkpoint holds\n"
    "\n"
    "  --help, --version        on every command: `intentd COMMAND --help`\n"
    "  --config-docs            print docs/CONFIGURATION.md from the option table\n"
    "  --config-yaml            print the documented default config/intentd.yaml\n"
    "  --metrics-docs           print docs/METRICS.md from the metrics table\n";

int main(int argc, char **argv) {
        if (argc < 2) {
                fputs(usage, stderr);
                return 2;
        }
        const char *cmd = argv[1];
        if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
            !strcmp(cmd, "help")) {
                fputs(usage, stdout);
                return 0;
        }
        if (!strcmp(cmd, "--version")) {
                printf("intentd %s\n", ITD_VERSION);
                return 0;
        }
        if (!strcmp(cmd, "--config-docs")) {
                itd_conf_write_docs(stdout);
                return 0;
        }
        if (!strcmp(cmd, "--metrics-docs")) {
                itd_prom_write_docs(stdout);
                return 0;
        }
        if (!strcmp(cmd, "--config-yaml")) {
                itd_conf_write_yaml(stdout);
                return 0;
        }
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } cmds[] = {{"run", itd_cmd_run},
                    {"check-config", itd_cmd_check_config},
                    {"broker", itd_cmd_broker},
                    {"simulate", itd_cmd_simulate},
                    {"load", itd_cmd_load},
                    {"replay", itd_cmd_replay},
                    {"demo", itd_cmd_demo},
                    {"inspect", itd_cmd_inspect}};
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
                if (!strcmp(cmd, cmds[i].name))
                        return cmds[i].fn(argc - 1, argv + 1);
        fprintf(stderr, "intentd: unknown command \"%s\"\n\n%s", cmd, usage);
        return 2;
}
