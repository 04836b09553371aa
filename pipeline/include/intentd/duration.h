/*
 * duration.h - durations as people write them: a whole number and one unit
 * of d, h, m, s or ms ("30m"; a bare number is milliseconds), for the
 * configuration, its docs and the reports.
 *
 * @thread any; no shared state.
 */
#ifndef INTENTD_DURATION_H
#define INTENTD_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"

/** @brief Parses a duration ("30m"); ITD_ERR_PARSE if malformed,
 * ITD_ERR_RANGE if it overflows, ITD_ERR_ARG on NULL. */
itd_err_t itd_duration_parse(const char *s, int64_t *ms);
/** @brief Formats ms as the shortest exact duration ("30m") into buf
 * (cap bytes); returns buf. */
const char *itd_duration_format(int64_t ms, char *buf, size_t cap);

#endif
