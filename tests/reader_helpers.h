/*
 * reader_helpers.h - helper of test_reader.c and test_reader_avro.c: a
 * whole file read to a summary (count by type, time range, order, bad
 * lines).
 */
#ifndef INTENTD_READER_HELPERS_H
#define INTENTD_READER_HELPERS_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <avro.h>
#include <zlib.h>
#include "intentd/codec.h"
#include "intentd/reader.h"
#include "testutil.h"

typedef struct {
        size_t n;
        size_t by_type[ITD_EV__COUNT];
        int64_t first_ts, last_ts;
        int sorted; /* ts never went down */
        uint64_t bad;
        char last_error[512];
} summary_t;

static inline summary_t read_all(const char *path, itd_format_t format,
                                 int sort) {
        summary_t s = {0};
        char err[512];
        itd_event_t ev;
        itd_reader_t *rd = itd_reader_open(path, format, sort, err, sizeof err);
        cr_assert_not_null(rd, "%s", err);
        s.sorted = 1;
        itd_err_t rc;
        while ((rc = itd_reader_next(rd, &ev, err, sizeof err)) == ITD_OK) {
                if (s.n == 0)
                        s.first_ts = ev.ts_ms;
                else if (ev.ts_ms < s.last_ts)
                        s.sorted = 0;
                s.last_ts = ev.ts_ms;
                s.by_type[ev.type]++;
                s.n++;
        }
        cr_assert_eq(rc, ITD_ERR_EOF, "%s", err);
        uint64_t done, total;
        itd_reader_progress(rd, &done, &total);
        cr_assert_gt(total, 0);
        cr_assert_eq(done, total, "progress at the end: %llu of %llu",
                     (unsigned long long)done, (unsigned long long)total);
        s.bad = itd_reader_bad_lines(rd);
        snprintf(s.last_error, sizeof s.last_error, "%s",
                 itd_reader_last_error(rd));
        itd_reader_destroy(rd);
        return s;
}

#endif
