/*
 * duration.c - durations as people write them ("30m", "1d", "250ms") and
 * back (see duration.h).
 */
#include "intentd/duration.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SEC_MS 1000LL
#define MIN_MS (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

static const struct {
        int64_t ms;
        const char *unit;
} dur_units[] = {
    {DAY_MS, "d"}, {HOUR_MS, "h"}, {MIN_MS, "m"}, {SEC_MS, "s"}, {1, "ms"}};

itd_err_t itd_duration_parse(const char *s, int64_t *ms) {
        if (!s || !ms)
                return ITD_ERR_ARG;
        const char *c = s;
        if (!isdigit((unsigned char)*c))
                return ITD_ERR_PARSE;
        int64_t n = 0;
        bool overflow = false;
        for (; isdigit((unsigned char)*c); c++) {
                int d = *c - '0';
                if (n > (INT64_MAX - d) / 10)
                        overflow = true;
                else
                        n = n * 10 + d;
        }
        int64_t factor = 0;
        if (*c == '\0') {
                factor = 1; /* a bare integer is milliseconds */
        } else {
                for (size_t i = 0; i < sizeof dur_units / sizeof dur_units[0];
                     i++)
                        if (strcmp(c, dur_units[i].unit) == 0)
                                factor = dur_units[i].ms;
        }
        if (factor == 0)
                return ITD_ERR_PARSE;
        if (overflow || n > INT64_MAX / factor)
                return ITD_ERR_RANGE;
        *ms = n * factor;
        return ITD_OK;
}

const char *itd_duration_format(int64_t ms, char *buf, size_t cap) {
        if (!buf || cap == 0)
                return buf;
        if (ms == 0) {
                snprintf(buf, cap, "0s");
                return buf;
        }
        /* Unsigned magnitude so INT64_MIN does not overflow on negation. */
        uint64_t mag = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
        for (size_t i = 0; i < sizeof dur_units / sizeof dur_units[0]; i++) {
                uint64_t f = (uint64_t)dur_units[i].ms;
                if (mag % f == 0) {
                        snprintf(buf, cap, "%s%" PRIu64 "%s", ms < 0 ? "-" : "",
                                 mag / f, dur_units[i].unit);
                        break;
                }
        }
        return buf;
}
