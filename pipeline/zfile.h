/*
 * zfile.h - a file read as a stream of bytes, inflated when it is gzip,
 * strictly: a gzip member that ends without its trailer (a truncated
 * file), a failed CRC or length check, corrupt deflate data and bytes after
 * the last member that are not another member are errors naming the file
 * and the byte offset, never a quiet end of input. Plain files read as they
 * are (what gzopen calls transparent mode: decided by the first two bytes,
 * not by the file name). Private to the pipeline module.
 */
#ifndef INTENTD_ZFILE_H
#define INTENTD_ZFILE_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"

typedef struct itd_zfile_s itd_zfile_t;

/**
 * @brief Opens path for reading. @returns the stream (caller owns;
 * itd_zfile_close), or NULL with errstr "<path>: <why>".
 * @thread any; one thread at a time per stream.
 */
itd_zfile_t *itd_zfile_open(const char *path, char *errstr,
                            size_t errstr_size);
void itd_zfile_close(itd_zfile_t *zf);

/**
 * @brief Reads up to n bytes into buf; *got < n only at the end of the data.
 * @returns ITD_OK (also at the end, with *got possibly 0), ITD_ERR_IO
 * (read failed) or ITD_ERR_CORRUPT (bad or truncated gzip) with errstr
 * naming the file and the compressed byte offset.
 */
itd_err_t itd_zfile_read(itd_zfile_t *zf, void *buf, size_t n, size_t *got,
                         char *errstr, size_t errstr_size);

/**
 * @brief Reads one line into buf[cap] (NUL-terminated, the '\n' kept), as
 * fgets: at most cap - 1 bytes, so a longer line comes in pieces; *len is
 * the byte count (a line may hold NUL bytes).
 * @returns ITD_OK, ITD_ERR_EOF when no byte was left, or an error as
 * itd_zfile_read.
 */
itd_err_t itd_zfile_gets(itd_zfile_t *zf, char *buf, size_t cap,
                         size_t *len, char *errstr, size_t errstr_size);

/** @brief Bytes of the file (compressed, if gzip) consumed so far. */
uint64_t itd_zfile_offset(const itd_zfile_t *zf);

#endif
