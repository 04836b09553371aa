/*
 * checkpoint_fs.c - the file-system side of checkpoint.dir, written for a
 * folder that may hold things intentd did not put there (checkpoint_int.h):
 * checkpoint names parsed strictly, only real folders taken for checkpoints,
 * clean-up that never follows a symlink out of the folder, and reads that
 * accept only regular files of bounded size, so a MANIFEST that is a FIFO, a
 * device or a link to /dev/zero is reported as damaged instead of blocking
 * or spinning forever.
 *
 * @thread the pipeline thread (and the forked writer, for remove_tree).
 */
#include "checkpoint_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "intentd/err.h"
#include "intentd/log.h"
#include "intentd/mem.h"

/* 19 digits stay below UINT64_MAX, so seq + 1 cannot wrap. */
#define SEQ_DIGITS_MAX 19

uint64_t itd_checkpoint_parse_name(const char *name, int *tmp) {
        *tmp = 0;
        if (strncmp(name, "cut-", 4) != 0)
                return 0;
        const char *d = name + 4;
        size_t n = 0;
        uint64_t v = 0;
        while (d[n] >= '0' && d[n] <= '9') {
                if (++n > SEQ_DIGITS_MAX)
                        return 0;
                v = v * 10 + (uint64_t)(d[n - 1] - '0');
        }
        if (n == 0)
                return 0; /* "cut--1", "cut-+1", "cut- 1": not ours */
        if (!strcmp(d + n, ".tmp"))
                *tmp = 1;
        else if (d[n])
                return 0;
        return v; /* 0 for "cut-0": sequences start at 1 */
}

static int cmp_desc(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? 1 : x > y ? -1 : 0;
}

size_t itd_checkpoint_list_seqs(const char *dir, uint64_t **out,
                                uint64_t *max_seq, int warn) {
        *out = NULL;
        if (max_seq)
                *max_seq = 0;
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
                int tmp = 0;
                uint64_t seq = itd_checkpoint_parse_name(de->d_name, &tmp);
                if (!seq)
                        continue;
                /* every name counts here, so a new checkpoint never collides */
                if (max_seq && seq > *max_seq)
                        *max_seq = seq;
                /* Only a real folder is a checkpoint: a symlink named like one
                 * (to anywhere) is not ours to read, number or delete. */
                struct stat sb;
                if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) !=
                        0 ||
                    !S_ISDIR(sb.st_mode)) {
                        if (warn)
                                itd_log(ITD_LOG_WARNING, "checkpoint",
                                        "ignoring \"%s/%s\": named like a "
                                        "checkpoint but not a folder (a "
                                        "symlink or file is never ours)",
                                        dir, de->d_name);
                        continue;
                }
                if (tmp)
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 16;
                        *out = itd_xrealloc(*out, cap * sizeof **out);
                }
                (*out)[n++] = seq;
        }
        closedir(d);
        if (n)
                qsort(*out, n, sizeof **out, cmp_desc);
        return n;
}

int itd_checkpoint_remove_tree(const char *path) {
        /* O_NOFOLLOW: a checkpoint folder replaced by a symlink is left alone
         * (ELOOP), so nothing outside checkpoint.dir is ever deleted. */
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno != ENOENT)
                        itd_log(ITD_LOG_WARNING, "checkpoint",
                                "not removing \"%s\": %s", path,
                                errno == ELOOP || errno == ENOTDIR
                                    ? "not a folder (a symlink or file is "
                                      "never ours)"
                                    : strerror(errno));
                return -1;
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -1;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                /* flags 0: files and symlinks themselves (never what a link
                 * points to); a subfolder fails with EISDIR and stays */
                unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
        if (rmdir(path) != 0) {
                itd_log(ITD_LOG_WARNING, "checkpoint",
                        "could not remove \"%s\": %s", path, strerror(errno));
                return -1;
        }
        return 0;
}

int itd_checkpoint_open_regular(const char *path, uint64_t want,
                                uint64_t max_bytes, uint64_t *size,
                                char *errstr, size_t errstr_size) {
        /* O_NONBLOCK: opening a FIFO for reading must not wait for a
         * writer; the type check below refuses it anyway. */
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                if (e == ELOOP)
                        itd_errf(errstr, errstr_size,
                                      "\"%s\" is a symlink, not a file "
                                      "intentd wrote",
                                      path);
                else
                        itd_errf(errstr, errstr_size,
                                      "missing file \"%s\": %s", path,
                                      strerror(e));
                errno = e;
                return -1;
        }
        struct stat sb;
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
                itd_errf(errstr, errstr_size,
                              "\"%s\" is not a regular file (%s)", path,
                              S_ISFIFO(sb.st_mode)   ? "a FIFO"
                              : S_ISCHR(sb.st_mode)  ? "a character device"
                              : S_ISBLK(sb.st_mode)  ? "a block device"
                              : S_ISDIR(sb.st_mode)  ? "a folder"
                              : S_ISSOCK(sb.st_mode) ? "a socket"
                                                     : "unknown type");
                close(fd);
                return -1;
        }
        uint64_t n = (uint64_t)sb.st_size;
        if (want != UINT64_MAX && n != want) {
                itd_errf(errstr, errstr_size,
                              "\"%s\" has %" PRIu64 " bytes, the manifest "
                              "says %" PRIu64 " (truncated or overwritten)",
                              path, n, want);
                close(fd);
                return -1;
        }
        if (n > max_bytes) {
                itd_errf(errstr, errstr_size,
                              "\"%s\" has %" PRIu64 " bytes, more than the "
                              "%" PRIu64 " such a file can have",
                              path, n, max_bytes);
                close(fd);
                return -1;
        }
        int flags = fcntl(fd, F_GETFL);
        if (flags >= 0)
                fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        if (size)
                *size = n;
        return fd;
}

void *itd_checkpoint_read_fd(int fd, size_t len) {
        unsigned char *buf = itd_xmalloc(len ? len : 1);
        size_t got = 0;
        while (got < len) {
                ssize_t r = read(fd, buf + got, len - got);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        free(buf);
                        return NULL;
                }
                got += (size_t)r;
        }
        return buf;
}

uint64_t itd_checkpoint_remove_unfinished(const char *dir) {
        uint64_t *seqs, max_seq = 0;
        itd_checkpoint_list_seqs(dir, &seqs, &max_seq, 1);
        free(seqs);
        DIR *d = opendir(dir);
        if (!d)
                return max_seq;
        struct dirent *de;
        char path[4096];
        while ((de = readdir(d)) != NULL) {
                int tmp = 0;
                struct stat sb;
                if (!itd_checkpoint_parse_name(de->d_name, &tmp) || !tmp ||
                    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) !=
                        0 ||
                    !S_ISDIR(sb.st_mode))
                        continue; /* not a folder: warned about above */
                int len = snprintf(path, sizeof path, "%s/%s", dir,
                                   de->d_name);
                if (len < 0 || (size_t)len >= sizeof path)
                        continue;
                itd_log(ITD_LOG_NOTICE, "checkpoint",
                        "removing unfinished checkpoint \"%s\" (interrupted "
                        "while it was written)", path);
                itd_checkpoint_remove_tree(path);
        }
        closedir(d);
        return max_seq;
}
