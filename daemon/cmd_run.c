/*
 * cmd_run.c - `intentd run --config FILE`: the daemon systemd starts, and
 * `intentd check-config FILE`.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "intentd/blas.h"
#include "intentd/log.h"
#include "run.h"


static const char run_usage[] =
    "usage: intentd run --config FILE [-o key=value]...\n"
    "\n"
    "Consumes events from topics.events, publishes a prediction per event to\n"
    "topics.predictions and learns online as labels arrive. Stops cleanly on\n"
    "SIGTERM or SIGINT: outputs flushed, offsets committed, exit 0.\n"
    "\n"
    "  -c, --config FILE   configuration (docs/CONFIGURATION.md)\n"
    "  -o key=value        override one option (repeatable)\n"
    "  -h, --help          this text\n"
    "  -V, --version       print the version\n";

/* Prints every problem itd_conf_check_run finds; 1 if there were any. */
static int refuse_unrunnable(const char *cmd, const itd_conf_t *conf,
                             const char *path) {
        char problems[8192];
        size_t n = itd_conf_check_run(conf, path, problems, sizeof problems);
        if (!n)
                return 0;
        for (char *line = problems, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                fprintf(stderr, "intentd %s: %s\n", cmd, line);
        }
        return 1;
}

/*
 * OpenBLAS's kernel and threads, once at start: on a VM that masks the CPU
 * model it falls back to a generic kernel at a third of the speed, which
 * shows nowhere else (docs/OPERATIONS.md, OpenBLAS kernel).
 */
static void log_blas(void) {
        itd_blas_info_t blas;
        itd_blas_setup(&blas);
        itd_log(ITD_LOG_NOTICE, "model",
                "OpenBLAS kernel %s, %d thread%s, CPU %s AVX2+FMA (%s)",
                blas.core, blas.threads, blas.threads == 1 ? "" : "s",
                blas.cpu_avx2 ? "with" : "without", blas.config);
        if (blas.fallback)
                itd_log(ITD_LOG_WARNING, "model",
                        "OpenBLAS chose its %s kernel on a CPU with AVX2 and "
                        "FMA (a masked CPU model?): matrix products may run "
                        "at a third of their speed; set OPENBLAS_CORETYPE="
                        "Haswell in the service's environment",
                        blas.core);
}

int itd_cmd_run(int argc, char **argv) {
        static const struct option longopts[] = {ITD_CLI_CONF_OPTS,
                                                 ITD_CLI_COMMON_OPTS};
        itd_cli_args_t a = {.cmd = "run", .usage = run_usage, .conf = 1};
        /* No option of its own: anything but the end means stop. */
        if (itd_cli_next(&a, argc, argv, longopts) != -1)
                return a.exit;
        const char *path = a.conf_path;
        if (!path) {
                fprintf(stderr, "intentd run: --config FILE is required\n\n%s",
                        run_usage);
                return 2;
        }
        itd_conf_t *conf = itd_cli_conf(path, a.overrides, a.n_overrides);
        if (!conf)
                return ITD_EXIT_CONFIG;
        /* What cannot work (no brokers, a model larger than memory, an
         * unusable folder or address) is refused now, once, with exit 78,
         * instead of a crash or a restart loop; check-config says the
         * same. */
        if (refuse_unrunnable("run", conf, path)) {
                itd_conf_destroy(conf);
                return ITD_EXIT_CONFIG;
        }
        itd_cli_log_setup(conf);
        itd_cli_signals();
        log_blas();

        itd_run_opts_t opts = {.stop = &itd_cli_stop,
                               .reload = &itd_cli_reload,
                               .conf_path = path};
        itd_run_result_t res;
        char errstr[1024];
        itd_err_t err = itd_run(conf, &opts, &res, errstr, sizeof errstr);
        itd_conf_destroy(conf);
        if (err) {
                itd_log(ITD_LOG_CRIT, "run", "%s", errstr);
                /* A bad value only librdkafka or the listener could judge
                 * is a configuration error too: do not restart into it. */
                return err == ITD_ERR_CONF ? ITD_EXIT_CONFIG : 1;
        }
        itd_log(ITD_LOG_NOTICE, "run",
                "stopped: %llu events, %llu predictions, %llu dead letters, "
                "%llu filtered",
                (unsigned long long)res.consumed,
                (unsigned long long)res.predicted,
                (unsigned long long)res.dead_lettered,
                (unsigned long long)res.filtered);
        return 0;
}

static const char check_usage[] =
    "usage: intentd check-config FILE [-o key=value]...\n"
    "       intentd check-config --config FILE [-o key=value]...\n"
    "\n"
    "Validates FILE, with the same -o overrides, as `intentd run` would\n"
    "before it connects: every value, no key set twice, brokers set, the\n"
    "metrics address, librdkafka plugins, the model against this host's\n"
    "memory, input schemas, the checkpoint folder. Reports every problem,\n"
    "not only the first; errors name file:line:column (or -o) and the key.\n"
    "Exit status 0 when valid, 1 when not.\n"
    "\n"
    "  -c, --config FILE   the file (or give it as the argument)\n"
    "  -o key=value        override one option (repeatable), as for run\n"
    "  -h, --help          this text\n"
    "  -V, --version       print the version\n";

/* Prints each '\n'-separated line of text as "intentd check-config: LINE"
 * on stderr. */
static void print_lines(char *text) {
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                fprintf(stderr, "intentd check-config: %s\n", line);
        }
}

int itd_cmd_check_config(int argc, char **argv) {
        static const struct option longopts[] = {ITD_CLI_CONF_OPTS,
                                                 ITD_CLI_COMMON_OPTS};
        itd_cli_args_t a = {.cmd = "check-config", .usage = check_usage,
                            .conf = 1};
        if (itd_cli_next(&a, argc, argv, longopts) != -1)
                return a.exit;
        const char *path = a.conf_path;
        char **overrides = a.overrides;
        int n_overrides = a.n_overrides;
        if (optind < argc && !path)
                path = argv[optind++];
        if (!path || optind < argc) {
                fputs(check_usage, stderr);
                return 2;
        }

        /* Everything wrong, in one run: each bad option of the file, each
         * bad override, then what run would refuse about the rest. */
        itd_conf_t *conf = itd_conf_new();
        char text[16384];
        size_t problems = 0, n = 0;
        itd_err_t err = itd_conf_load_all(conf, path, text, sizeof text, &n);
        if (err) {
                print_lines(text);
                problems += n;
        }
        if (err == ITD_ERR_IO || err == ITD_ERR_PARSE) {
                /* No option could be read: checking the defaults in its
                 * place would only add noise. */
                itd_conf_destroy(conf);
                return 1;
        }
        for (int i = 0; i < n_overrides; i++) {
                char why[1024];
                char *eq = strchr(overrides[i], '=');
                if (!eq) {
                        fprintf(stderr,
                                "intentd check-config: -o \"%s\": expected "
                                "key=value\n",
                                overrides[i]);
                        problems++;
                        continue;
                }
                *eq = '\0';
                if (itd_conf_set(conf, overrides[i], eq + 1, why,
                                 sizeof why) != ITD_OK) {
                        fprintf(stderr, "intentd check-config: -o %s=%s: %s\n",
                                overrides[i], eq + 1, why);
                        problems++;
                } else {
                        itd_conf_note_override(conf, overrides[i]);
                }
                *eq = '=';
        }
        n = itd_conf_check_run(conf, path, text, sizeof text);
        if (n) {
                print_lines(text);
                problems += n;
        }
        itd_conf_destroy(conf);
        if (problems) {
                fprintf(stderr, "intentd check-config: %s: %zu problem%s\n",
                        path, problems, problems == 1 ? "" : "s");
                return 1;
        }
        printf("%s: ok\n", path);
        return 0;
}
