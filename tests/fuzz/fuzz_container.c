/*
 * fuzz_container.c - libFuzzer target for files: the input is a whole file,
 * read as an Avro object container (straight from memory, and as a file
 * through the reader, so gzip is inflated when the input is gzip), and as
 * each line format (Taobao, REES46, RetailRocket and JSON lines). Every
 * read must end at the end of the data or with an error that names the
 * file, never crash, leak, read out of bounds or allocate beyond the
 * container limits (ocf.h); an event handed out satisfies the documented
 * invariants. Seeds in tests/fuzz/corpus_container: containers of the null,
 * deflate and snappy codecs, one inside gzip, and a few lines.
 *
 * Build and run: tests/fuzz/run.sh (clang -fsanitize=fuzzer,address).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_bytes.h"
#include "intentd/log.h"
#include "intentd/reader.h"
#include "ocf.h"

static char path[64];
static int fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_file(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        itd_log_setup(ITD_LOG_CRIT, ITD_LOG_FORMAT_PLAIN);
        /* in memory where there is a tmpfs: the file is rewritten for
         * every input */
        snprintf(path, sizeof path, "%s/intentd-fuzz-file-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        fd = mkstemp(path);
        if (fd < 0) {
                perror("fuzz: mkstemp");
                abort();
        }
        atexit(remove_file); /* libFuzzer ends with exit() */
        return 0;
}

static void check_event(const itd_event_t *ev) {
        const char *s[] = {ev->user_id, ev->event_id, ev->item_id,
                           ev->category, ev->session_id};
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
                if (!memchr(s[i], 0, ITD_ID_MAX))
                        abort();
        if (!memchr(ev->query, 0, ITD_QUERY_MAX) || !ev->user_id[0] ||
            (int)ev->type < 0 || ev->type >= ITD_EV__COUNT)
                abort();
}

static void check_error(const char *errstr, const char *name) {
        if (!memchr(errstr, 0, 1024) || !strstr(errstr, name))
                abort(); /* an error names the file */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char err[1024];
        itd_event_t ev;
        /* the container reader alone, from memory */
        in_t m = {data, data + size};
        err[0] = '\0';
        itd_ocf_t *o = itd_ocf_open(mem_read, &m, "fuzz.avro", err,
                                    sizeof err);
        if (!o) {
                check_error(err, "fuzz.avro");
        } else {
                itd_err_t e;
                while ((e = itd_ocf_next(o, &ev, err, sizeof err)) == ITD_OK ||
                       e == ITD_ERR_DECODE) {
                        if (e == ITD_OK)
                                check_event(&ev);
                        else if (!err[0])
                                abort();
                }
                if (e != ITD_ERR_EOF)
                        check_error(err, "fuzz.avro");
                itd_ocf_close(o);
        }
        /* every format, through the file */
        if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
                abort();
        for (int f = 0; f < ITD_FORMAT__COUNT; f++) {
                itd_reader_t *rd = itd_reader_open(path, (itd_format_t)f, 0,
                                                   err, sizeof err);
                if (!rd) {
                        check_error(err, path);
                        continue;
                }
                itd_err_t e;
                uint64_t n = 0;
                while ((e = itd_reader_next(rd, &ev, err, sizeof err)) ==
                       ITD_OK) {
                        check_event(&ev);
                        n++;
                }
                if (e != ITD_ERR_EOF)
                        check_error(err, path);
                uint64_t done, total;
                itd_reader_progress(rd, &done, &total);
                if (done > total || n + itd_reader_bad_lines(rd) > size + 1)
                        abort();
                itd_reader_destroy(rd);
        }
        return 0;
}
