/*
 * checkpoint_int.h - what the files of the checkpoint folder share: the
 * folder object, the MANIFEST's constants, paths, and the file-system
 * helpers (checkpoint_fs.c). checkpoint.dir may hold
 * things intentd did not write (a symlink named like a checkpoint, a MANIFEST
 * that is a FIFO or /dev/zero): these helpers never follow a symlink out
 * of the folder, never block on a special file and never read without a
 * bound.
 */
#ifndef INTENTD_DAEMON_CHECKPOINT_INT_H
#define INTENTD_DAEMON_CHECKPOINT_INT_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "checkpoint.h"

#define MANIFEST "MANIFEST"
#define MANIFEST_MAGIC "intentd-checkpoint"
/* 2 added the progressive metrics as pv.bin (pv_bytes), 3 names them
 * eval.bin (eval_bytes), 4 adds workers.bin (workers_bytes);
 * versions 1 (without metrics), 2 and 3 still load. */
#define MANIFEST_VERSION 4
#define FEATURE_SPEC_VERSION 1

struct itd_checkpoint_dir_s {
        char *dir;
        char topic[256];
        size_t keep;
        int64_t pause_ms;
        uint64_t spec_hash;
        char spec[512];
        uint64_t next_seq;
        uint64_t last_seq;
        /* the positions of last_seq (itd_checkpoint_dir_last_pos) */
        itd_checkpoint_pos_t *last_pos;
        size_t n_last_pos;

        /* the checkpoint in progress */
        itd_checkpoint_state_t state;
        uint64_t seq;
        pid_t child;
        int err_fd;             /* read end of the child's error pipe */
        itd_checkpoint_pos_t *pos;
        size_t n_pos;
        char err[512];          /* of a failed in-place write */

        /* checkpoints the last restore found damaged (for set-aside) */
        uint64_t *damaged;
        size_t n_damaged;
};

/* Paths longer than cap are cut; such a path then names nothing, and the
 * open or stat that follows reports it. */
static inline void itd_checkpoint_path_join(char *buf, size_t cap,
                                            const char *a, const char *b) {
        int n = snprintf(buf, cap, "%s/%s", a, b);
        if (n < 0 || (size_t)n >= cap)
                buf[0] = '\0';
}

static inline void itd_checkpoint_name(char *buf, size_t cap, const char *dir,
                                       uint64_t seq, int tmp) {
        snprintf(buf, cap, "%s/cut-%012" PRIu64 "%s", dir, seq,
                 tmp ? ".tmp" : "");
}

/** @brief Writes dir/MANIFEST for in (via MANIFEST.tmp, fsync, rename). */
itd_err_t itd_checkpoint_write_manifest(const char *dir,
                                        const itd_checkpoint_info_t *in,
                                        char *errstr, size_t errstr_size);

/* Largest MANIFEST read: ~120 bytes per partition, so 100k partitions. */
#define ITD_CHECKPOINT_MANIFEST_MAX (16u << 20)
/* Largest engine.bin or eval.bin: both hold a few hundred KiB at most. */
#define ITD_CHECKPOINT_SMALL_FILE_MAX (64u << 20)
/* Partitions a manifest may name: 0 .. this - 1. */
#define ITD_CHECKPOINT_PARTITION_MAX (1 << 20)

/**
 * @brief "cut-<1..19 digits>" -> seq, with *tmp = 1 for the ".tmp" form;
 * 0 for anything else ("cut--1", "cut-+1", "cut-1x", "cut-0", 20 digits).
 */
uint64_t itd_checkpoint_parse_name(const char *name, int *tmp);

/**
 * @brief Sequences of complete checkpoints in dir, newest first (caller frees
 * *out). Only real folders count (lstat); with warn, anything else named
 * like a checkpoint is logged as ignored. max_seq (may be NULL) gets the
 * highest sequence of any name that parses (folder or not, complete or not), so
 * a new checkpoint's name is free.
 */
size_t itd_checkpoint_list_seqs(const char *dir, uint64_t **out,
                                uint64_t *max_seq, int warn);

/**
 * @brief Removes a checkpoint folder: opened with O_NOFOLLOW (a symlink is left
 * alone and logged), its entries unlinked without following them, then the
 * folder. @returns 0, or -1 when something stayed.
 */
int itd_checkpoint_remove_tree(const char *path);

/**
 * @brief Opens path for reading when it is a regular file (not a symlink:
 * O_NOFOLLOW; not a FIFO or device: checked after a non-blocking open)
 * of exactly want bytes (UINT64_MAX: any) and at most max_bytes.
 * @returns the descriptor (caller closes) with *size (may be NULL), or -1
 * with errstr naming the file and why.
 */
int itd_checkpoint_open_regular(const char *path, uint64_t want,
                                uint64_t max_bytes, uint64_t *size,
                                char *errstr, size_t errstr_size);

/**
 * @brief Removes the unfinished checkpoints ("cut-N.tmp" folders) of dir,
 * logging each, and warns about entries named like checkpoints that are not
 * folders.
 * @returns the highest sequence of any name that parses (0: none).
 */
uint64_t itd_checkpoint_remove_unfinished(const char *dir);

/** @brief Reads exactly len bytes of fd into a new buffer (caller frees),
 * or NULL. */
void *itd_checkpoint_read_fd(int fd, size_t len);

#endif
