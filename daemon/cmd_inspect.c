/*
 * cmd_inspect.c - `intentd inspect model FILE` and `intentd inspect state
 * DIR`: what a checkpoint holds, readable, without a config or a broker.
 *
 * `state` prints the users of every partition of a checkpoint as the same JSON
 * lines as `replay --dump-state` (window counts as of the partition's
 * watermark), so a checkpoint can be compared with a replay or another
 * checkpoint line by line; `--summary` prints one line per partition
 * instead. DIR is checkpoint.dir (its newest readable checkpoint) or one
 * checkpoint.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "cli.h"
#include "intentd/labeler.h"
#include "intentd/snapshot.h"
#include "intentd/state.h"

static const char inspect_usage[] =
    "usage: intentd inspect model FILE|DIR\n"
    "       intentd inspect state DIR [--summary]\n"
    "\n"
    "Prints what a checkpoint holds (docs/CHECKPOINTS.md).\n"
    "\n"
    "  model FILE   header, shapes and per-section statistics of a model\n"
    "               snapshot; a checkpoint folder means its newest model\n"
    "  state DIR    every user of every partition as JSON lines, the same\n"
    "               as `intentd replay --dump-state`; DIR is checkpoint.dir\n"
    "               (its newest complete checkpoint) or one cut-N folder\n"
    "  --summary    one JSON line per partition instead: next offset,\n"
    "               watermark, users, pending labels\n";

static int is_dir(const char *path) {
        struct stat sb;
        return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The checkpoints DIR stands for, newest first: itself if it is one. */
static size_t checkpoints_of(const char *dir, char ***paths) {
        char manifest[4096];
        snprintf(manifest, sizeof manifest, "%s/MANIFEST", dir);
        struct stat sb;
        if (stat(manifest, &sb) == 0) {
                *paths = malloc(sizeof **paths);
                (*paths)[0] = strdup(dir);
                return 1;
        }
        return itd_checkpoint_dir_list(dir, paths);
}

static void free_paths(char **paths, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
}

/* Prints one checkpoint; ITD_OK, or errstr says what is damaged (nothing has
 * been printed to stdout then). */
static itd_err_t print_checkpoint(const char *cp_dir, int summary, char *errstr,
                                  size_t errstr_size) {
        itd_checkpoint_info_t info;
        itd_err_t err =
            itd_checkpoint_info_read(cp_dir, &info, errstr, errstr_size);
        if (err)
                return err;
        size_t n = info.n_parts;
        itd_partition_t **pts = calloc(n ? n : 1, sizeof *pts);
        /* Read everything first, so a damaged file prints nothing. */
        for (size_t i = 0; i < n && !err; i++)
                err = itd_checkpoint_read_partition(
                    cp_dir, &info, info.parts[i].partition, &pts[i], errstr,
                    errstr_size);
        if (!err) {
                fprintf(stderr,
                        "checkpoint %s: seq %" PRIu64 ", written by intentd "
                        "%s at %" PRId64 " ms, topic \"%s\", %zu partitions, "
                        "feature spec 0x%016" PRIx64 " (%s)\n",
                        cp_dir, info.seq, info.version, info.created_ms,
                        info.topic, n, info.feature_spec_hash,
                        info.feature_spec);
        }
        for (size_t i = 0; i < n && !err; i++) {
                const itd_state_t *st = itd_partition_state(pts[i]);
                int64_t wm = itd_state_watermark(st);
                if (!summary) {
                        err = itd_state_dump(st, wm, stdout);
                        if (err)
                                snprintf(errstr, errstr_size,
                                         "writing to stdout failed");
                        continue;
                }
                itd_state_stats_t ss;
                itd_labeler_stats_t ls;
                itd_state_stats(st, &ss);
                itd_labeler_stats(itd_partition_labeler(pts[i]), &ls);
                printf("{\"partition\":%d,\"next_offset\":%" PRId64
                       ",\"watermark_ms\":%" PRId64 ",\"users\":%" PRIu64
                       ",\"pending\":%" PRIu64 ",\"positives\":%" PRIu64
                       ",\"negatives\":%" PRIu64 ",\"state_bytes\":%" PRIu64
                       "}\n",
                       (int)info.parts[i].partition, info.parts[i].next_offset,
                       wm, ss.users, ls.pending, ls.positives, ls.negatives,
                       ss.bytes);
        }
        for (size_t i = 0; i < n; i++)
                itd_partition_destroy(pts[i]);
        free(pts);
        itd_checkpoint_info_fini(&info);
        return err;
}

static int inspect_state(const char *dir, int summary) {
        char **paths;
        size_t n = checkpoints_of(dir, &paths);
        if (n == 0) {
                fprintf(stderr, "intentd inspect state: no checkpoint in "
                        "\"%s\"\n", dir);
                return 1;
        }
        int rc = 1;
        for (size_t i = 0; i < n; i++) {
                char errstr[1024];
                if (print_checkpoint(paths[i], summary, errstr,
                                     sizeof errstr) == ITD_OK) {
                        rc = 0;
                        break;
                }
                fprintf(stderr, "intentd inspect state: %s: %s%s\n",
                        paths[i], errstr,
                        i + 1 < n ? "; trying the previous checkpoint" : "");
        }
        if (fflush(stdout) != 0)
                rc = 1;
        free_paths(paths, n);
        return rc;
}

static int inspect_model(const char *path) {
        char file[4096], errstr[1024];
        snprintf(file, sizeof file, "%s", path);
        if (is_dir(path)) {
                char **paths;
                size_t n = checkpoints_of(path, &paths);
                if (n == 0) {
                        fprintf(stderr, "intentd inspect model: no "
                                "checkpoint in \"%s\"\n", path);
                        return 1;
                }
                snprintf(file, sizeof file, "%s/model.ckpt", paths[0]);
                free_paths(paths, n);
        }
        if (itd_snapshot_describe(file, stdout, errstr, sizeof errstr) !=
            ITD_OK) {
                fprintf(stderr, "intentd inspect model: %s\n", errstr);
                return 1;
        }
        return 0;
}

int itd_cmd_inspect(int argc, char **argv) {
        static const struct option longopts[] = {
            {"summary", no_argument, NULL, 's'},
            ITD_CLI_COMMON_OPTS};
        int summary = 0, c;
        itd_cli_args_t a = {.cmd = "inspect", .usage = inspect_usage};
        while ((c = itd_cli_next(&a, argc, argv, longopts)) != -1) {
                switch (c) {
                case 's': summary = 1; break;
                default: return a.exit;
                }
        }
        if (argc - optind != 2) {
                fputs(inspect_usage, stderr);
                return 2;
        }
        const char *what = argv[optind], *path = argv[optind + 1];
        if (!strcmp(what, "model"))
                return inspect_model(path);
        if (!strcmp(what, "state"))
                return inspect_state(path, summary);
        fprintf(stderr, "intentd inspect: unknown kind \"%s\" (model or "
                "state)\n\n%s", what, inspect_usage);
        return 2;
}
