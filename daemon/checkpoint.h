/*
 * checkpoint.h - consistent checkpoints of the daemon in checkpoint.dir: per
 * partition the user state, pending labels, watermark and next offset to
 * consume, plus the model, its optimizer state and the engine's counters
 * (docs/CHECKPOINTS.md).
 *
 * On disk, one folder per checkpoint, named by a sequence number:
 *
 *   cut-000000000042/
 *     MANIFEST        text: what the checkpoint holds, the configuration that
 *                     shapes it, the feature spec, per partition the next
 *                     offset, and per file its size; CRC32C last
 *     part-<P>.snap   partition P: state snapshot + labeler snapshot
 *     engine.bin      counters, the partial training mini-batch and the
 *                     held positives (itd_trainer_write)
 *     workers.bin     each pipeline worker's optimizer state and trainer,
 *                     and the model_version (replicas.h)
 *     model.ckpt      the model (model.h: itd_model_save)
 *     eval.bin        progressive-validation metrics (itd_eval_snapshot;
 *                     pv.bin in version 2 checkpoints)
 *
 * Every binary file has the one snapshot framing (intentd/frame.h).
 *
 * A checkpoint is written into "cut-N.tmp", every file fsync'ed, MANIFEST last;
 * it becomes complete when the folder is renamed to "cut-N" and the parent
 * folder is fsync'ed. The caller publishes (renames) only once every output
 * of the events before the checkpoint's positions was acknowledged, so a
 * complete checkpoint never holds state whose predictions could be lost. Older
 * checkpoints are removed after a newer one is complete, keeping
 * checkpoint.keep of them.
 *
 * Background checkpoints run in a forked child: the child sees the engine
 * frozen at the fork (copy-on-write) and writes it while the parent goes on, so
 * the pipeline pauses only for the fork. The child touches nothing but
 * the engine's memory and its own files, never librdkafka.
 *
 * @thread the pipeline thread (the owner of the engine).
 */
#ifndef INTENTD_DAEMON_CHECKPOINT_H
#define INTENTD_DAEMON_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "intentd/engine.h"
#include "intentd/err.h"
#include "intentd/labeler.h"
#include "intentd/state.h"

/* Where a partition of a checkpoint resumes: the next offset to consume. */
typedef struct itd_checkpoint_pos_s {
        int32_t partition;
        int64_t next_offset;
} itd_checkpoint_pos_t;

/* One partition as the manifest describes it. */
typedef struct itd_checkpoint_part_s {
        int32_t partition;
        int64_t next_offset;
        int64_t watermark_ms;
        int64_t last_ts_ms;
        uint64_t users, pending, bytes; /* bytes: of its .snap file */
} itd_checkpoint_part_t;

/* A parsed MANIFEST. */
typedef struct itd_checkpoint_info_s {
        uint64_t seq;
        int64_t created_ms;
        char version[32];        /* intentd version that wrote it */
        char topic[256];         /* events topic the offsets belong to */
        uint64_t feature_spec_hash;
        char feature_spec[512];  /* readable form of what the hash covers */
        itd_state_conf_t state_conf;
        itd_labeler_conf_t labeler_conf;
        uint64_t engine_bytes, model_bytes;
        uint64_t eval_bytes; /* the metrics file; 0: none (version 1) */
        const char *eval_file; /* its name: "eval.bin", "pv.bin" in a
                                * version 2 checkpoint */
        uint64_t workers_bytes; /* workers.bin; 0: none (versions 1-3) */
        /* filled by a restore, not in the manifest: the pipeline workers
         * that wrote it (0: not known, no workers.bin) and what
         * model_version adds to the restored replicas' steps
         * (itd_workers_set_version_offset) */
        size_t workers;
        int64_t version_offset;
        size_t n_parts;
        itd_checkpoint_part_t *parts; /* n_parts, ascending partition */
} itd_checkpoint_info_t;

/* Where a background checkpoint stands. */
typedef enum {
        ITD_CHECKPOINT_IDLE = 0, /* none in progress */
        ITD_CHECKPOINT_WRITING,  /* the child is writing */
        ITD_CHECKPOINT_WRITTEN,  /* complete in cut-N.tmp: publish it */
        ITD_CHECKPOINT_FAILED    /* writing failed (errstr); back to idle */
} itd_checkpoint_state_t;

typedef struct itd_checkpoint_dir_s itd_checkpoint_dir_t;

/**
 * @brief The feature spec of a state configuration: an XXH64 over the
 * dense feature names, the sparse id layout, the window spans, session gap
 * and allowed lateness, and a readable summary of it in desc.
 */
uint64_t itd_checkpoint_dir_feature_spec(const itd_state_conf_t *sc, char *desc,
                                         size_t desc_size);

/**
 * @brief Opens (creating it, mode 0750) the checkpoint folder for an
 * engine and events topic; removes unfinished checkpoints ("*.tmp") left by a
 * crash. keep: complete checkpoints to keep (>= 2). pause_ms: test hook, a
 * sleep between the files of a checkpoint (0 in production).
 * @returns the manager (caller owns), or NULL with errstr.
 */
itd_checkpoint_dir_t *itd_checkpoint_dir_open(const char *dir,
                                              const itd_engine_t *eng,
                                              const char *topic, size_t keep,
                                              int64_t pause_ms, char *errstr,
                                              size_t errstr_size);

/** @brief Waits for a background checkpoint still running, then frees cd. */
void itd_checkpoint_dir_close(itd_checkpoint_dir_t *cd);

/**
 * @brief Restores the newest usable checkpoint into eng (which must be fresh):
 * partitions, model, counters. A damaged checkpoint (truncated, corrupt,
 * missing file) or an incompatible one (another feature spec, configuration or
 * topic) is logged with why, and the next older one is tried.
 * @param pos     gets the restored partitions' positions (caller frees).
 * @param info    gets the restored checkpoint's manifest
 * (itd_checkpoint_info_fini), or NULL. Only real folders named "cut-<digits>"
 * are checkpoints; anything else named like one is logged and ignored.
 * @returns ITD_OK (older checkpoints may have been damaged:
 * itd_checkpoint_dir_damaged); ITD_ERR_NOT_FOUND when there is no checkpoint at
 * all (start empty); ITD_ERR_CORRUPT when there are checkpoints and every one
 * is damaged (the caller decides by checkpoint.on_corrupt);
 * ITD_ERR_INCOMPATIBLE when no checkpoint is usable and at least one was
 * refused for its feature spec or configuration (errstr says which and why: the
 * caller should not start empty over them).
 */
itd_err_t itd_checkpoint_dir_restore(itd_checkpoint_dir_t *cd,
                                     itd_engine_t *eng,
                                     itd_checkpoint_pos_t **pos, size_t *n_pos,
                                     itd_checkpoint_info_t *info, char *errstr,
                                     size_t errstr_size);

/**
 * @brief itd_checkpoint_dir_restore into pipeline workers' engines
 * engs[0..n_engs): the partitions, model and progressive metrics into
 * engs[0], each worker's optimizer state and trainer as workers.bin says
 * (replicas.h; info->version_offset for itd_workers_set_version_offset).
 */
itd_err_t itd_checkpoint_dir_restore_workers(
    itd_checkpoint_dir_t *cd, itd_engine_t *const *engs, size_t n_engs,
    itd_checkpoint_pos_t **pos, size_t *n_pos, itd_checkpoint_info_t *info,
    char *errstr, size_t errstr_size);

/** @brief Checkpoints the last itd_checkpoint_dir_restore found damaged and
 * skipped.
 */
size_t itd_checkpoint_dir_damaged(const itd_checkpoint_dir_t *cd);

/**
 * @brief Renames the damaged checkpoints of the last restore to
 * "damaged-cut-N", logged at error level: kept for inspection, out of the
 * way of pruning (which would otherwise remove an older good checkpoint before
 * them) and never removed by intentd. Call once the daemon goes on
 * without them.
 */
void itd_checkpoint_dir_set_aside_damaged(itd_checkpoint_dir_t *cd);

/**
 * @brief Starts a checkpoint of every partition engs[0..n_engs) hold (each
 * in one of them at most); pos gives each one's next offset (copied; a
 * partition missing from pos is left out). The model and the trainer are
 * engs[0]'s (several engines: replicas merged just before, so it holds
 * the one model); the progressive metrics are one evaluation over all
 * their examples.
 * background 1 forks a writer (state ITD_CHECKPOINT_WRITING); 0 writes before
 * returning (ITD_CHECKPOINT_WRITTEN). Then itd_checkpoint_dir_publish.
 * @returns ITD_OK; ITD_ERR_FULL if a checkpoint is already in progress;
 * ITD_ERR_IO with errstr.
 */
itd_err_t itd_checkpoint_dir_write(itd_checkpoint_dir_t *cd,
                                   itd_engine_t *const *engs, size_t n_engs,
                                   const itd_checkpoint_pos_t *pos,
                                   size_t n_pos, int background, char *errstr,
                                   size_t errstr_size);

/**
 * @brief Where the checkpoint in progress stands; wait 1 blocks until the
 * writer is done. After ITD_CHECKPOINT_FAILED (errstr says why) the manager is
 * idle.
 */
itd_checkpoint_state_t itd_checkpoint_dir_poll(itd_checkpoint_dir_t *cd,
                                               int wait, char *errstr,
                                               size_t errstr_size);

/** @brief Positions of the checkpoint in progress (borrowed), NULL if none. */
const itd_checkpoint_pos_t *
itd_checkpoint_dir_pending(const itd_checkpoint_dir_t *cd, size_t *n);

/**
 * @brief Makes a written checkpoint complete (rename, fsync) and removes the
 * checkpoints beyond checkpoint.keep. Call only once every output of the events
 * before the checkpoint's positions was acknowledged.
 * @returns ITD_OK, or ITD_ERR_IO with errstr (the checkpoint is dropped).
 */
itd_err_t itd_checkpoint_dir_publish(itd_checkpoint_dir_t *cd, char *errstr,
                                     size_t errstr_size);

/** @brief Drops a checkpoint in progress (kills the writer, removes the files).
 */
void itd_checkpoint_dir_abandon(itd_checkpoint_dir_t *cd);

/** @brief Sequence number of the last checkpoint published or restored (0
 * none). */
uint64_t itd_checkpoint_dir_last_seq(const itd_checkpoint_dir_t *cd);

/** @brief The positions of that checkpoint (borrowed; *n 0 when none), in
 * ascending partition order. */
const itd_checkpoint_pos_t *
itd_checkpoint_dir_last_pos(const itd_checkpoint_dir_t *cd, size_t *n);

/* ---- reading, for `intentd inspect` ---------------------------------- */

/**
 * @brief Reads and checks cp_dir/MANIFEST into info (itd_checkpoint_info_fini).
 * @returns ITD_OK; ITD_ERR_NOT_FOUND; ITD_ERR_CORRUPT with errstr.
 */
itd_err_t itd_checkpoint_info_read(const char *cp_dir,
                                   itd_checkpoint_info_t *info, char *errstr,
                                   size_t errstr_size);
void itd_checkpoint_info_fini(itd_checkpoint_info_t *info);

/**
 * @brief Complete checkpoints of a checkpoint folder, newest first, as paths
 * (caller frees each and the array).
 * @returns how many; 0 also when dir cannot be read.
 */
size_t itd_checkpoint_dir_list(const char *dir, char ***paths);

/**
 * @brief Restores partition p of the checkpoint at cp_dir with the checkpoint's
 * own configuration (no engine needed) into *pt (caller owns).
 * @returns ITD_OK; else errstr says why.
 */
itd_err_t itd_checkpoint_read_partition(const char *cp_dir,
                                        const itd_checkpoint_info_t *info,
                                        int32_t p, itd_partition_t **pt,
                                        char *errstr, size_t errstr_size);

/** @brief `intentd inspect`: see daemon/cmd_inspect.c. */
int itd_cmd_inspect(int argc, char **argv);

#endif
