/*
 * testutil.h - shared helpers for the Criterion tests: temporary folders,
 * the shared real data (skipped cleanly when absent), child processes.
 */
#ifndef INTENTD_TESTUTIL_H
#define INTENTD_TESTUTIL_H

#include <stddef.h>
#include <sys/types.h>

/**
 * Path of a file under ../shared/data (or $ITD_SHARED_DATA), written to
 * buf; returns NULL when it does not exist, so the caller can
 * cr_skip_test("... absent").
 */
const char *tu_shared_data(const char *rel, char *buf, size_t cap);

/** Creates a fresh temporary folder; returns its path (static storage per call site not needed: buf). */
const char *tu_tmpdir(char *buf, size_t cap);

/** Path of a file in the source tree (fixtures, config). */
const char *tu_src(const char *rel, char *buf, size_t cap);

/** Starts argv[0..] (NULL-terminated) with stdout/stderr to log_path (or inherited if NULL); returns pid. */
pid_t tu_spawn(char *const argv[], const char *log_path);

/** Waits up to timeout_ms for pid; returns its exit status (0..255), 128+signal, or -1 on timeout. */
int tu_wait(pid_t pid, int timeout_ms);

/** Waits until path exists and is non-empty; returns 0, or -1 on timeout. */
int tu_wait_file(const char *path, int timeout_ms);

/** Reads a whole small file into a malloc'd NUL-terminated string (caller frees), trailing newline removed; NULL on error. */
char *tu_read_file(const char *path);

/** Writes text to path; returns 0 on success. */
int tu_write_file(const char *path, const char *text);

/** Runs argv to completion (timeout_ms) with output to log_path; returns exit status or -1. */
int tu_run(char *const argv[], const char *log_path, int timeout_ms);

#endif
