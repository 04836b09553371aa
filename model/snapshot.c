/*
 * snapshot.c - the snapshot container (layout in snapshot.h): a
 * streaming writer that lands atomically on disk, a verifying reader, and
 * a readable dump for `intentd inspect model`.
 *
 * The writer streams sections straight into the temporary file (a model
 * with Adam moments is tens of MB; no second copy in memory) and folds each
 * byte into the running CRC. The reader loads the whole file, checks the
 * CRC before trusting any length in it, then indexes the sections.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "intentd/bytes.h"
#include "intentd/crc32c.h"
#include "intentd/mem.h"
#include "intentd/snapshot.h"

#define MAGIC ITD_FRAME_MAGIC
#define SECTION_HEADER_BYTES ITD_FRAME_SECTION_BYTES
#define CRC_BYTES ITD_FRAME_CRC_BYTES
#define MIN_FILE_BYTES                                                         \
        (ITD_SNAPSHOT_HEADER_BYTES + SECTION_HEADER_BYTES + CRC_BYTES)

/* ---- little-endian encoding -------------------------------------------- */

#define host_is_little_endian itd_frame_host_is_le

static const char *dtype_name(uint32_t dtype) {
        switch (dtype) {
        case ITD_SNAPSHOT_BYTES:
                return "bytes";
        case ITD_SNAPSHOT_U64:
                return "u64";
        case ITD_SNAPSHOT_U32:
                return "u32";
        case ITD_SNAPSHOT_F32:
                return "f32";
        case ITD_SNAPSHOT_F64:
                return "f64";
        default:
                return "?";
        }
}

static void encode_header(uint8_t *h, const itd_snapshot_meta_t *meta) {
        memset(h, 0, ITD_SNAPSHOT_HEADER_BYTES);
        itd_frame_prefix_put(h, ITD_SNAPSHOT_VERSION, meta->kind,
                             ITD_SNAPSHOT_HEADER_BYTES);
        itd_put_le64(h + 24, meta->feature_spec_hash);
        itd_put_le64(h + 32, meta->config_hash);
        itd_put_le64(h + 40, meta->examples);
        itd_put_le64(h + 48, meta->steps);
        itd_put_le64(h + 56, (uint64_t)meta->created_ms);
        const itd_snapshot_shape_t *s = &meta->shape;
        itd_put_le32(h + 64, s->model_type);
        itd_put_le32(h + 68, s->optimizer);
        itd_put_le64(h + 72, s->n_dense);
        itd_put_le64(h + 80, s->n_fields);
        itd_put_le64(h + 88, s->ids_per_field);
        itd_put_le64(h + 96, s->emb_buckets);
        itd_put_le64(h + 104, s->emb_dim);
        itd_put_le64(h + 112, s->n_hidden);
        for (int i = 0; i < ITD_SNAPSHOT_MAX_HIDDEN; i++)
                itd_put_le64(h + 120 + 8 * i, s->hidden[i]);
}

static void decode_header(const uint8_t *h, itd_snapshot_meta_t *meta) {
        memset(meta, 0, sizeof(*meta));
        meta->kind = itd_get_le32(h + 12);
        meta->feature_spec_hash = itd_get_le64(h + 24);
        meta->config_hash = itd_get_le64(h + 32);
        meta->examples = itd_get_le64(h + 40);
        meta->steps = itd_get_le64(h + 48);
        meta->created_ms = (int64_t)itd_get_le64(h + 56);
        itd_snapshot_shape_t *s = &meta->shape;
        s->model_type = itd_get_le32(h + 64);
        s->optimizer = itd_get_le32(h + 68);
        s->n_dense = itd_get_le64(h + 72);
        s->n_fields = itd_get_le64(h + 80);
        s->ids_per_field = itd_get_le64(h + 88);
        s->emb_buckets = itd_get_le64(h + 96);
        s->emb_dim = itd_get_le64(h + 104);
        s->n_hidden = itd_get_le64(h + 112);
        for (int i = 0; i < ITD_SNAPSHOT_MAX_HIDDEN; i++)
                s->hidden[i] = itd_get_le64(h + 120 + 8 * i);
}

/* ---- writing ----------------------------------------------------------- */

struct itd_snapshot_writer_s {
        char *path;     /* final name */
        char *tmp_path; /* "<path>.tmp.XXXXXX" in the same folder */
        FILE *fp;
        uint32_t crc;
        uint64_t bytes;
        int failed; /* first failure is in err */
        char err[256];
};

static void w_fail(itd_snapshot_writer_t *w, const char *what) {
        if (w->failed)
                return;
        w->failed = 1;
        snprintf(w->err, sizeof(w->err), "checkpoint %s: %s %s: %s", w->path,
                 what, w->tmp_path, strerror(errno));
}

static void w_bytes(itd_snapshot_writer_t *w, const void *data, size_t n) {
        if (w->failed || n == 0)
                return;
        if (fwrite(data, 1, n, w->fp) != n) {
                w_fail(w, "write to");
                return;
        }
        w->crc = itd_crc32c(w->crc, data, n);
        w->bytes += n;
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

itd_snapshot_writer_t *itd_snapshot_writer_new(const char *path,
                                               const itd_snapshot_meta_t *meta,
                                               char *errstr,
                                               size_t errstr_size) {
        itd_snapshot_writer_t *w = itd_xcalloc(1, sizeof(*w));
        w->path = itd_xstrdup(path);
        size_t n = strlen(path) + sizeof(".tmp.XXXXXX");
        w->tmp_path = itd_xmalloc(n);
        snprintf(w->tmp_path, n, "%s.tmp.XXXXXX", path);
        int fd = mkstemp(w->tmp_path);
        if (fd < 0) {
                itd_errf(errstr, errstr_size,
                         "checkpoint %s: cannot create temporary %s: %s", path,
                         w->tmp_path, strerror(errno));
                free(w->tmp_path);
                free(w->path);
                free(w);
                return NULL;
        }
        /* mkstemp makes 0600; a checkpoint is as readable as other files */
        fchmod(fd, 0644);
        w->fp = fdopen(fd, "wb");
        if (!w->fp) {
                itd_errf(errstr, errstr_size, "checkpoint %s: fdopen: %s", path,
                         strerror(errno));
                close(fd);
                unlink(w->tmp_path);
                free(w->tmp_path);
                free(w->path);
                free(w);
                return NULL;
        }
        itd_snapshot_meta_t m = *meta;
        if (m.created_ms == 0)
                m.created_ms = now_ms();
        uint8_t h[ITD_SNAPSHOT_HEADER_BYTES];
        encode_header(h, &m);
        w_bytes(w, h, sizeof(h));
        return w;
}

void itd_snapshot_writer_section(itd_snapshot_writer_t *w, const char *name,
                                 itd_snapshot_dtype_t dtype, uint32_t flags,
                                 const void *data, size_t nbytes) {
        size_t es = itd_frame_dtype_size(dtype);
        size_t len = strlen(name);
        /* our own callers name sections; a bad one is a bug, not input */
        if (len == 0 || len >= ITD_SNAPSHOT_NAME_MAX || es == 0 ||
            nbytes % es) {
                if (!w->failed) {
                        w->failed = 1;
                        snprintf(w->err, sizeof(w->err),
                                 "checkpoint %s: bad section '%s' (type %d, "
                                 "%zu bytes)",
                                 w->path, name, (int)dtype, nbytes);
                }
                return;
        }
        uint8_t sh[SECTION_HEADER_BYTES];
        itd_frame_section_put(sh, name, (uint32_t)dtype, flags,
                              (uint64_t)nbytes);
        w_bytes(w, sh, sizeof(sh));
        if (es == 1 || host_is_little_endian()) {
                w_bytes(w, data, nbytes);
                return;
        }
        uint8_t chunk[4096];
        const uint8_t *src = data;
        for (size_t off = 0; off < nbytes; off += sizeof(chunk)) {
                size_t n =
                    nbytes - off < sizeof(chunk) ? nbytes - off : sizeof(chunk);
                itd_frame_copy_le(chunk, src + off, n, es);
                w_bytes(w, chunk, n);
        }
}

/*
 * 1 if the file at path is a complete checkpoint (its CRC holds), streaming
 * so a large file costs no memory. Used before keeping it as <path>.prev,
 * so .prev is always one that was good.
 */
static int file_is_good(const char *path) {
        FILE *fp = fopen(path, "rb");
        if (!fp)
                return 0;
        uint8_t buf[1 << 16], tail[CRC_BYTES];
        uint32_t crc = 0;
        uint64_t total = 0;
        size_t held = 0; /* the last CRC_BYTES bytes seen are kept back */
        size_t n;
        int magic_ok = 0;
        while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
                if (total == 0 && n >= 8)
                        magic_ok = memcmp(buf, MAGIC, 8) == 0;
                total += n;
                /* feed held tail + all but the new last CRC_BYTES bytes */
                if (n >= CRC_BYTES) {
                        crc = itd_crc32c(crc, tail, held);
                        crc = itd_crc32c(crc, buf, n - CRC_BYTES);
                        memcpy(tail, buf + n - CRC_BYTES, CRC_BYTES);
                        held = CRC_BYTES;
                } else {
                        /* a short read: shift the window byte by byte */
                        for (size_t i = 0; i < n; i++) {
                                if (held == CRC_BYTES) {
                                        crc = itd_crc32c(crc, tail, 1);
                                        memmove(tail, tail + 1, CRC_BYTES - 1);
                                        held--;
                                }
                                tail[held++] = buf[i];
                        }
                }
        }
        int err = ferror(fp);
        fclose(fp);
        return !err && magic_ok && total >= MIN_FILE_BYTES &&
               held == CRC_BYTES && itd_get_le32(tail) == crc;
}

static void fsync_dir_of(const char *path) {
        char *dir = itd_xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else if (slash == dir)
                dir[1] = '\0';
        else
                *slash = '\0';
        int fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd >= 0) {
                /* some filesystems refuse fsync on a folder (EINVAL): the
                 * rename is then as durable as they make it */
                fsync(fd);
                close(fd);
        }
        free(dir);
}

itd_err_t itd_snapshot_writer_commit(itd_snapshot_writer_t *w, char *errstr,
                                     size_t errstr_size) {
        uint8_t end[SECTION_HEADER_BYTES] = {0};
        w_bytes(w, end, sizeof(end));
        if (!w->failed) {
                uint8_t crc[CRC_BYTES];
                itd_put_le32(crc, w->crc);
                if (fwrite(crc, 1, sizeof(crc), w->fp) != sizeof(crc))
                        w_fail(w, "write to");
        }
        if (!w->failed && fflush(w->fp) != 0)
                w_fail(w, "flush");
        if (!w->failed && fsync(fileno(w->fp)) != 0)
                w_fail(w, "fsync");
        if (fclose(w->fp) != 0)
                w_fail(w, "close");
        w->fp = NULL;
        if (!w->failed) {
                /* keep the file being replaced as <path>.prev, if good */
                size_t n = strlen(w->path) + sizeof(".prev");
                char *prev = itd_xmalloc(n);
                snprintf(prev, n, "%s.prev", w->path);
                if (file_is_good(w->path)) {
                        unlink(prev);
                        if (link(w->path, prev) != 0) {
                                /* no hard links here: one good file is
                                 * still better than none, so go on */
                        }
                }
                free(prev);
                if (rename(w->tmp_path, w->path) != 0)
                        w_fail(w, "rename onto it");
        }
        itd_err_t err = ITD_OK;
        if (w->failed) {
                unlink(w->tmp_path);
                itd_errf(errstr, errstr_size, "%s", w->err);
                err = ITD_ERR_IO;
        } else {
                fsync_dir_of(w->path);
        }
        free(w->tmp_path);
        free(w->path);
        free(w);
        return err;
}

void itd_snapshot_writer_abort(itd_snapshot_writer_t *w) {
        if (!w)
                return;
        if (w->fp)
                fclose(w->fp);
        unlink(w->tmp_path);
        free(w->tmp_path);
        free(w->path);
        free(w);
}

/* ---- reading ----------------------------------------------------------- */

typedef struct section_s {
        char name[ITD_SNAPSHOT_NAME_MAX];
        uint32_t dtype, flags;
        size_t off; /* payload offset in the file */
        size_t nbytes;
} section_t;

struct itd_snapshot_s {
        itd_snapshot_meta_t meta;
        uint8_t *buf;
        size_t size;
        section_t *sec;
        size_t n_sec;
};

/*
 * Walks the sections of buf[0, size - CRC_BYTES). Returns 0 with the count
 * in *n_sec (and the table filled if sec != NULL); -1 with *bad_at, the
 * byte where the walk ran out of file (truncation), and the name of the
 * section that did; -2 for anything else malformed, described in why.
 */
static int walk(const uint8_t *buf, size_t size, section_t *sec, size_t *n_sec,
                size_t *bad_at, char *bad_name, char *why, size_t why_size) {
        size_t body_end = size - CRC_BYTES;
        size_t pos = ITD_SNAPSHOT_HEADER_BYTES, n = 0;
        bad_name[0] = '\0';
        for (;;) {
                if (pos + SECTION_HEADER_BYTES > body_end) {
                        *bad_at = size;
                        return -1;
                }
                const uint8_t *h = buf + pos;
                uint64_t nbytes = itd_get_le64(h + 24);
                uint32_t dtype = itd_get_le32(h + 16);
                if (h[0] == '\0') {
                        for (size_t i = 0; i < SECTION_HEADER_BYTES; i++)
                                if (h[i]) {
                                        snprintf(why, why_size,
                                                 "bad end marker at byte %zu",
                                                 pos);
                                        return -2;
                                }
                        if (pos + SECTION_HEADER_BYTES != body_end) {
                                snprintf(why, why_size,
                                         "%zu bytes after the end marker",
                                         body_end - pos - SECTION_HEADER_BYTES);
                                return -2;
                        }
                        *n_sec = n;
                        return 0;
                }
                char name[ITD_SNAPSHOT_NAME_MAX];
                memcpy(name, h, ITD_SNAPSHOT_NAME_MAX);
                if (name[ITD_SNAPSHOT_NAME_MAX - 1] != '\0') {
                        snprintf(why, why_size,
                                 "section name at byte %zu is not terminated",
                                 pos);
                        return -2;
                }
                pos += SECTION_HEADER_BYTES;
                if (nbytes > body_end - pos) {
                        memcpy(bad_name, name, ITD_SNAPSHOT_NAME_MAX);
                        *bad_at = nbytes > SIZE_MAX - pos
                                      ? SIZE_MAX
                                      : pos + (size_t)nbytes;
                        return -1;
                }
                size_t es = itd_frame_dtype_size(dtype);
                if (es == 0 || nbytes % es) {
                        snprintf(why, why_size,
                                 "section '%s' has type %u and %" PRIu64
                                 " bytes",
                                 name, dtype, nbytes);
                        return -2;
                }
                for (size_t i = 0; sec && i < n; i++)
                        if (strcmp(sec[i].name, name) == 0) {
                                snprintf(why, why_size,
                                         "section '%s' appears twice", name);
                                return -2;
                        }
                if (sec) {
                        memcpy(sec[n].name, name, ITD_SNAPSHOT_NAME_MAX);
                        sec[n].dtype = dtype;
                        sec[n].flags = itd_get_le32(h + 20);
                        sec[n].off = pos;
                        sec[n].nbytes = (size_t)nbytes;
                }
                n++;
                pos += (size_t)nbytes;
        }
}

static itd_err_t read_all(const char *path, uint8_t **out, size_t *size,
                          char *errstr, size_t errstr_size) {
        FILE *fp = fopen(path, "rb");
        if (!fp) {
                itd_errf(errstr, errstr_size, "checkpoint %s: cannot open: %s",
                         path, strerror(errno));
                return errno == ENOENT ? ITD_ERR_NOT_FOUND : ITD_ERR_IO;
        }
        struct stat st;
        if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
                itd_errf(errstr, errstr_size,
                         "checkpoint %s: not a regular file", path);
                fclose(fp);
                return ITD_ERR_IO;
        }
        size_t n = (size_t)st.st_size;
        uint8_t *buf = itd_xmalloc(n);
        size_t got = fread(buf, 1, n, fp);
        int bad = ferror(fp);
        fclose(fp);
        if (bad || got != n) {
                itd_errf(errstr, errstr_size,
                         "checkpoint %s: read %zu of %zu bytes: %s", path, got,
                         n, bad ? strerror(errno) : "file shrank");
                free(buf);
                return ITD_ERR_IO;
        }
        *out = buf;
        *size = n;
        return ITD_OK;
}

itd_err_t itd_snapshot_read(const char *path, itd_snapshot_t **out,
                            char *errstr, size_t errstr_size) {
        *out = NULL;
        uint8_t *buf;
        size_t size;
        itd_err_t err = read_all(path, &buf, &size, errstr, errstr_size);
        if (err)
                return err;
        err = ITD_ERR_CORRUPT;
        if (size < 8 || memcmp(buf, MAGIC, 8) != 0) {
                itd_errf(errstr, errstr_size,
                         "checkpoint %s: not an intentd checkpoint (no "
                         "\"ITDCKPT\" magic at byte 0)",
                         path);
                goto fail;
        }
        if (size < MIN_FILE_BYTES) {
                itd_errf(errstr, errstr_size,
                         "checkpoint %s: truncated at byte %zu (the smallest "
                         "checkpoint has %d bytes)",
                         path, size, MIN_FILE_BYTES);
                goto fail;
        }
        uint32_t stored = itd_get_le32(buf + size - CRC_BYTES);
        uint32_t computed = itd_crc32c(0, buf, size - CRC_BYTES);
        size_t n_sec = 0, bad_at = 0;
        char bad_name[ITD_SNAPSHOT_NAME_MAX], why[160] = "";
        if (stored != computed) {
                /* a walk that runs out of file names the truncation */
                if (walk(buf, size, NULL, &n_sec, &bad_at, bad_name, why,
                         sizeof(why)) == -1) {
                        if (bad_name[0])
                                itd_errf(errstr, errstr_size,
                                         "checkpoint %s: truncated at byte "
                                         "%zu (section '%s' needs bytes up to "
                                         "%zu; CRC mismatch)",
                                         path, size, bad_name, bad_at);
                        else
                                itd_errf(errstr, errstr_size,
                                         "checkpoint %s: truncated at byte "
                                         "%zu (no end marker; CRC mismatch)",
                                         path, size);
                } else {
                        itd_errf(errstr, errstr_size,
                                 "checkpoint %s: CRC mismatch (stored 0x%08x, "
                                 "computed 0x%08x)",
                                 path, stored, computed);
                }
                goto fail;
        }
        uint32_t version = itd_get_le32(buf + 8);
        if (version != ITD_SNAPSHOT_VERSION) {
                itd_errf(errstr, errstr_size,
                         "checkpoint %s: format version %u, this build reads "
                         "version %d",
                         path, version, ITD_SNAPSHOT_VERSION);
                err = ITD_ERR_INCOMPATIBLE;
                goto fail;
        }
        if (itd_get_le32(buf + 16) != ITD_SNAPSHOT_HEADER_BYTES) {
                itd_errf(errstr, errstr_size,
                         "checkpoint %s: header of %u bytes, version %d has %d",
                         path, itd_get_le32(buf + 16), ITD_SNAPSHOT_VERSION,
                         ITD_SNAPSHOT_HEADER_BYTES);
                goto fail;
        }
        int rc =
            walk(buf, size, NULL, &n_sec, &bad_at, bad_name, why, sizeof(why));
        if (rc == -1) {
                /* a valid CRC over a file our writer never makes */
                snprintf(why, sizeof(why), "sections run past the end");
                rc = -2;
        }
        if (rc == -2) {
                itd_errf(errstr, errstr_size, "checkpoint %s: malformed: %s",
                         path, why);
                goto fail;
        }
        itd_snapshot_t *ck = itd_xcalloc(1, sizeof(*ck));
        ck->sec = itd_xcalloc(n_sec, sizeof(section_t));
        rc = walk(buf, size, ck->sec, &ck->n_sec, &bad_at, bad_name, why,
                  sizeof(why));
        if (rc != 0) {
                itd_errf(errstr, errstr_size, "checkpoint %s: malformed: %s",
                         path, why);
                free(ck->sec);
                free(ck);
                goto fail;
        }
        decode_header(buf, &ck->meta);
        ck->buf = buf;
        ck->size = size;
        *out = ck;
        return ITD_OK;
fail:
        free(buf);
        return err;
}

void itd_snapshot_destroy(itd_snapshot_t *ck) {
        if (!ck)
                return;
        free(ck->buf);
        free(ck->sec);
        free(ck);
}

const itd_snapshot_meta_t *itd_snapshot_meta(const itd_snapshot_t *ck) {
        return &ck->meta;
}

itd_err_t itd_snapshot_get(const itd_snapshot_t *ck, const char *name,
                           itd_snapshot_dtype_t dtype, void *dst, size_t nbytes,
                           char *errstr, size_t errstr_size) {
        for (size_t i = 0; i < ck->n_sec; i++) {
                const section_t *s = &ck->sec[i];
                if (strcmp(s->name, name) != 0)
                        continue;
                if (s->dtype != (uint32_t)dtype || s->nbytes != nbytes) {
                        itd_errf(errstr, errstr_size,
                                 "checkpoint section '%s': %s of %zu bytes, "
                                 "expected %s of %zu bytes",
                                 name, dtype_name(s->dtype), s->nbytes,
                                 dtype_name(dtype), nbytes);
                        return ITD_ERR_CORRUPT;
                }
                itd_frame_copy_le(dst, ck->buf + s->off, nbytes, itd_frame_dtype_size(dtype));
                return ITD_OK;
        }
        itd_errf(errstr, errstr_size, "checkpoint has no section '%s'", name);
        return ITD_ERR_NOT_FOUND;
}

/* ---- readable dump ----------------------------------------------------- */

static const char *kind_name(uint32_t kind) {
        return kind == ITD_SNAPSHOT_KIND_MODEL   ? "model"
               : kind == ITD_SNAPSHOT_KIND_STATE ? "state"
                                                 : "unknown";
}

/* mirrors itd_model_kind_t and itd_opt_t without depending on them */
static const char *model_type_name(uint32_t t) {
        return t == 0 ? "mlp" : t == 1 ? "logistic" : "unknown";
}

static const char *optimizer_name(uint32_t o) {
        return o == 0 ? "sgd" : o == 1 ? "adagrad" : o == 2 ? "adam" : "?";
}

static void describe_section(FILE *out, const itd_snapshot_t *ck,
                             const section_t *s) {
        size_t es = itd_frame_dtype_size(s->dtype), n = s->nbytes / es;
        fprintf(out, "  %-15s %-5s %10zu%s", s->name, dtype_name(s->dtype), n,
                s->flags & ITD_SNAPSHOT_SEC_PARAM ? "  param" : "       ");
        const uint8_t *p = ck->buf + s->off;
        if (s->dtype == ITD_SNAPSHOT_F32 || s->dtype == ITD_SNAPSHOT_F64) {
                double sum2 = 0.0, lo = INFINITY, hi = -INFINITY;
                size_t nonfinite = 0;
                for (size_t i = 0; i < n; i++) {
                        double v;
                        if (s->dtype == ITD_SNAPSHOT_F32) {
                                float f;
                                itd_frame_copy_le(&f, p + 4 * i, 4, 4);
                                v = f;
                        } else {
                                itd_frame_copy_le(&v, p + 8 * i, 8, 8);
                        }
                        if (!isfinite(v)) {
                                nonfinite++;
                                continue;
                        }
                        sum2 += v * v;
                        lo = v < lo ? v : lo;
                        hi = v > hi ? v : hi;
                }
                if (n == nonfinite)
                        fprintf(out, "  (no finite values)");
                else
                        fprintf(out, "  norm %-11.5g min %-11.5g max %.5g",
                                sqrt(sum2), lo, hi);
                if (nonfinite)
                        fprintf(out, "  NON-FINITE %zu", nonfinite);
        } else if (s->dtype == ITD_SNAPSHOT_U64) {
                fprintf(out, "  values");
                for (size_t i = 0; i < n && i < 8; i++)
                        fprintf(out, " %" PRIu64, itd_get_le64(p + 8 * i));
                if (n > 8)
                        fprintf(out, " ...");
        }
        fputc('\n', out);
}

itd_err_t itd_snapshot_describe(const char *path, FILE *out, char *errstr,
                                size_t errstr_size) {
        itd_snapshot_t *ck;
        char err_local[512];
        itd_err_t err =
            itd_snapshot_read(path, &ck, err_local, sizeof(err_local));
        if (err) {
                fprintf(out, "%s\n", err_local);
                itd_errf(errstr, errstr_size, "%s", err_local);
                return err;
        }
        const itd_snapshot_meta_t *m = &ck->meta;
        const itd_snapshot_shape_t *s = &m->shape;
        char when[64] = "?";
        time_t secs = (time_t)(m->created_ms / 1000);
        struct tm tm;
        if (gmtime_r(&secs, &tm))
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(out, "checkpoint %s\n", path);
        fprintf(out, "  format version   %d (%zu bytes, CRC32C 0x%08x ok)\n",
                ITD_SNAPSHOT_VERSION, ck->size,
                itd_get_le32(ck->buf + ck->size - CRC_BYTES));
        fprintf(out, "  kind             %s\n", kind_name(m->kind));
        fprintf(out, "  created          %s (%" PRId64 " ms)\n", when,
                m->created_ms);
        fprintf(out, "  feature spec     0x%016" PRIx64 "\n",
                m->feature_spec_hash);
        fprintf(out, "  config           0x%016" PRIx64 "\n", m->config_hash);
        fprintf(out, "  examples         %" PRIu64 "\n", m->examples);
        fprintf(out, "  steps            %" PRIu64 "\n", m->steps);
        if (m->kind == ITD_SNAPSHOT_KIND_MODEL) {
                fprintf(out, "  model            %s",
                        model_type_name(s->model_type));
                if (s->model_type == 0)
                        fprintf(out, ", optimizer %s",
                                optimizer_name(s->optimizer));
                fprintf(out,
                        "\n  inputs           %" PRIu64 " dense, %" PRIu64
                        " sparse fields x %" PRIu64 " ids, %" PRIu64 " buckets",
                        s->n_dense, s->n_fields, s->ids_per_field,
                        s->emb_buckets);
                if (s->model_type == 0)
                        fprintf(out, " x %" PRIu64 " dims", s->emb_dim);
                fputc('\n', out);
                if (s->model_type == 0) {
                        fprintf(out, "  hidden           ");
                        for (uint64_t l = 0;
                             l < s->n_hidden && l < ITD_SNAPSHOT_MAX_HIDDEN;
                             l++)
                                fprintf(out, "%s%" PRIu64, l ? ", " : "",
                                        s->hidden[l]);
                        fputc('\n', out);
                }
        }
        fprintf(out, "  sections         %zu\n", ck->n_sec);
        uint64_t n_param = 0, n_state = 0;
        for (size_t i = 0; i < ck->n_sec; i++) {
                const section_t *sec = &ck->sec[i];
                describe_section(out, ck, sec);
                uint64_t n = sec->nbytes / itd_frame_dtype_size(sec->dtype);
                if (sec->flags & ITD_SNAPSHOT_SEC_PARAM)
                        n_param += n;
                else
                        n_state += n;
        }
        fprintf(out, "  parameters       %" PRIu64 "\n", n_param);
        fprintf(out, "  other state      %" PRIu64 " values\n", n_state);
        itd_snapshot_destroy(ck);
        return ITD_OK;
}
