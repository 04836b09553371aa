/*
 * zfile.c - plain or gzip files read strictly (zfile.h).
 *
 * zlib's gzread() reports a gzip file cut short as Z_BUF_ERROR ("unexpected
 * end of file") after handing out everything before the cut, and skips
 * whatever follows the last member; a reader that checks only for a hard
 * error accepts half a file. So the gzip layer is zlib's inflate() driven
 * here: every member must reach Z_STREAM_END (its CRC-32 and length
 * trailer checked by zlib), members may follow each other (as `cat a.gz
 * b.gz` makes them), and anything else after a member is an error.
 */
#include "zfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "intentd/mem.h"

#define IN_BYTES (64 * 1024)
#define OUT_BYTES (64 * 1024)

struct itd_zfile_s {
        char *path;
        int fd;
        int gzip;       /* 1: inflate; 0: plain bytes */
        int raw_eof;    /* read() returned 0 */
        int member_end; /* the current gzip member ended */
        int done;       /* no more data: only out[] is left */
        uint64_t raw_read; /* bytes read from fd */
        z_stream zs;
        int zs_ok;
        uint8_t *in;  /* raw bytes; zs.next_in / avail_in point into it */
        uint8_t *out; /* data not yet handed out: out[out_pos..out_len) */
        size_t out_pos, out_len;
};

static uint64_t raw_offset(const itd_zfile_t *zf) {
        return zf->raw_read - zf->zs.avail_in;
}

uint64_t itd_zfile_offset(const itd_zfile_t *zf) { return raw_offset(zf); }

/* Tops up in[] so that at least want bytes are there, unless the file
 * ends first. 0, or -1 with errstr. */
static int fill_in(itd_zfile_t *zf, size_t want, char *errstr,
                   size_t errstr_size) {
        if (zf->zs.avail_in && zf->zs.next_in != zf->in)
                memmove(zf->in, zf->zs.next_in, zf->zs.avail_in);
        zf->zs.next_in = zf->in;
        while (zf->zs.avail_in < want && !zf->raw_eof) {
                ssize_t n = read(zf->fd, zf->in + zf->zs.avail_in,
                                 IN_BYTES - zf->zs.avail_in);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        snprintf(errstr, errstr_size,
                                 "%s: read failed at byte %" PRIu64 ": %s",
                                 zf->path, zf->raw_read, strerror(errno));
                        return -1;
                }
                if (n == 0)
                        zf->raw_eof = 1;
                zf->zs.avail_in += (uInt)n;
                zf->raw_read += (uint64_t)n;
        }
        return 0;
}

static int corrupt(itd_zfile_t *zf, char *errstr, size_t errstr_size,
                   const char *why) {
        snprintf(errstr, errstr_size, "%s: %s (at compressed byte %" PRIu64
                 ")", zf->path, why, raw_offset(zf));
        return -2;
}

/* Refills out[]. 0, -1 (I/O error) or -2 (corrupt), errstr set. */
static int fill_out(itd_zfile_t *zf, char *errstr, size_t errstr_size) {
        zf->out_pos = zf->out_len = 0;
        if (!zf->gzip) {
                /* plain: what open looked at, then straight into out[] */
                if (zf->zs.avail_in) {
                        memcpy(zf->out, zf->zs.next_in, zf->zs.avail_in);
                        zf->out_len = zf->zs.avail_in;
                        zf->zs.avail_in = 0;
                        return 0;
                }
                ssize_t n;
                do
                        n = read(zf->fd, zf->out, OUT_BYTES);
                while (n < 0 && errno == EINTR);
                if (n < 0) {
                        snprintf(errstr, errstr_size,
                                 "%s: read failed at byte %" PRIu64 ": %s",
                                 zf->path, zf->raw_read, strerror(errno));
                        return -1;
                }
                zf->raw_read += (uint64_t)n;
                zf->out_len = (size_t)n;
                zf->done = n == 0;
                return 0;
        }
        while (zf->out_len == 0 && !zf->done) {
                if (zf->member_end) {
                        /* Another member, the clean end, or garbage. */
                        if (fill_in(zf, 2, errstr, errstr_size))
                                return -1;
                        if (zf->zs.avail_in == 0) {
                                zf->done = 1;
                                break;
                        }
                        if (zf->zs.avail_in < 2 || zf->zs.next_in[0] != 0x1f ||
                            zf->zs.next_in[1] != 0x8b)
                                return corrupt(zf, errstr, errstr_size,
                                               "bytes after the end of the "
                                               "gzip data are not another "
                                               "gzip member");
                        if (inflateReset(&zf->zs) != Z_OK)
                                return corrupt(zf, errstr, errstr_size,
                                               "inflateReset failed");
                        zf->member_end = 0;
                }
                if (zf->zs.avail_in == 0 &&
                    fill_in(zf, 1, errstr, errstr_size))
                        return -1;
                zf->zs.next_out = zf->out;
                zf->zs.avail_out = OUT_BYTES;
                int rc = inflate(&zf->zs, Z_NO_FLUSH);
                zf->out_len = OUT_BYTES - zf->zs.avail_out;
                if (rc == Z_STREAM_END) {
                        zf->member_end = 1;
                } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
                        char why[200];
                        snprintf(why, sizeof why, "corrupt gzip data: %s",
                                 zf->zs.msg ? zf->zs.msg : zError(rc));
                        return corrupt(zf, errstr, errstr_size, why);
                } else if (zf->out_len == 0 && zf->zs.avail_in == 0 &&
                           zf->raw_eof) {
                        /* inflate wants more and the file has no more */
                        return corrupt(zf, errstr, errstr_size,
                                       "gzip data ends without its trailer "
                                       "(truncated file)");
                }
        }
        return 0;
}

itd_zfile_t *itd_zfile_open(const char *path, char *errstr,
                            size_t errstr_size) {
        itd_zfile_t *zf = itd_xcalloc(1, sizeof *zf);
        zf->path = itd_xstrdup(path);
        zf->in = itd_xmalloc(IN_BYTES);
        zf->out = itd_xmalloc(OUT_BYTES);
        zf->zs.next_in = zf->in;
        zf->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (zf->fd < 0) {
                snprintf(errstr, errstr_size, "%s: cannot open: %s", path,
                         strerror(errno));
                goto fail;
        }
        if (fill_in(zf, 2, errstr, errstr_size))
                goto fail;
        zf->gzip = zf->zs.avail_in >= 2 && zf->in[0] == 0x1f &&
                   zf->in[1] == 0x8b;
        if (zf->gzip) {
                /* 16 + MAX_WBITS: gzip wrapper only, trailer checked */
                if (inflateInit2(&zf->zs, 16 + MAX_WBITS) != Z_OK) {
                        snprintf(errstr, errstr_size,
                                 "%s: cannot set up zlib", path);
                        goto fail;
                }
                zf->zs_ok = 1;
        }
        return zf;
fail:
        itd_zfile_close(zf);
        return NULL;
}

void itd_zfile_close(itd_zfile_t *zf) {
        if (!zf)
                return;
        if (zf->zs_ok)
                inflateEnd(&zf->zs);
        if (zf->fd >= 0)
                close(zf->fd);
        free(zf->in);
        free(zf->out);
        free(zf->path);
        free(zf);
}

/* Bytes waiting in out[], refilled when none: ITD_OK, ITD_ERR_EOF at the
 * end of the file, or ITD_ERR_IO / ITD_ERR_CORRUPT with errstr set. */
static itd_err_t have_out(itd_zfile_t *zf, char *errstr, size_t errstr_size) {
        while (zf->out_pos == zf->out_len) {
                if (zf->done)
                        return ITD_ERR_EOF;
                int rc = fill_out(zf, errstr, errstr_size);
                if (rc)
                        return rc == -1 ? ITD_ERR_IO : ITD_ERR_CORRUPT;
        }
        return ITD_OK;
}

itd_err_t itd_zfile_read(itd_zfile_t *zf, void *vbuf, size_t n, size_t *got,
                         char *errstr, size_t errstr_size) {
        uint8_t *buf = vbuf;
        *got = 0;
        while (*got < n) {
                itd_err_t err = have_out(zf, errstr, errstr_size);
                if (err == ITD_ERR_EOF)
                        break;
                if (err)
                        return err;
                size_t k = zf->out_len - zf->out_pos;
                if (k > n - *got)
                        k = n - *got;
                memcpy(buf + *got, zf->out + zf->out_pos, k);
                zf->out_pos += k;
                *got += k;
        }
        return ITD_OK;
}

itd_err_t itd_zfile_gets(itd_zfile_t *zf, char *buf, size_t cap,
                         size_t *len, char *errstr, size_t errstr_size) {
        size_t n = 0;
        *len = 0;
        while (n + 1 < cap) {
                itd_err_t err = have_out(zf, errstr, errstr_size);
                if (err == ITD_ERR_EOF)
                        break;
                if (err)
                        return err;
                const uint8_t *p = zf->out + zf->out_pos;
                size_t k = zf->out_len - zf->out_pos;
                if (k > cap - 1 - n)
                        k = cap - 1 - n;
                const uint8_t *nl = memchr(p, '\n', k);
                if (nl)
                        k = (size_t)(nl - p) + 1;
                memcpy(buf + n, p, k);
                zf->out_pos += k;
                n += k;
                if (nl)
                        break;
        }
        if (cap)
                buf[n] = '\0';
        *len = n;
        return n ? ITD_OK : ITD_ERR_EOF;
}
