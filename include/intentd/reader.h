/*
 * reader.h - events from files: the replay source and `intentd load`.
 *
 * Formats: Taobao UserBehavior CSV (user,item,category,behavior,ts seconds;
 * pv/cart/fav/buy), JSON lines in the event schema. Files ending in .gz are
 * read through zlib transparently. With sort set, the whole file is read and
 * stable-sorted by event time first (the Taobao user-grouped files need it);
 * otherwise events stream in file order.
 */
#ifndef INTENTD_READER_H
#define INTENTD_READER_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/event.h"

typedef enum {
        ITD_FORMAT_TAOBAO = 0,
        ITD_FORMAT_JSONL,
        ITD_FORMAT__COUNT
} itd_format_t;

typedef struct itd_reader_s itd_reader_t;

/** @brief "taobao" / "jsonl" -> format. @returns ITD_ERR_PARSE if unknown. */
itd_err_t itd_format_parse(const char *s, itd_format_t *format);

/**
 * @brief Opens path. @returns reader (caller owns) or NULL with errstr
 * naming the file and the reason.
 */
itd_reader_t *itd_reader_open(const char *path, itd_format_t format, int sort,
                              char *errstr, size_t errstr_size);
void itd_reader_destroy(itd_reader_t *rd);

/**
 * @brief Reads the next good event. A bad line is skipped and counted
 * (itd_reader_bad_lines) and, for the first few, logged with file:line.
 * @returns ITD_OK, ITD_ERR_EOF at the end, ITD_ERR_IO on a read error.
 */
itd_err_t itd_reader_next(itd_reader_t *rd, itd_event_t *ev, char *errstr,
                          size_t errstr_size);

/** @brief Lines skipped as malformed so far. */
uint64_t itd_reader_bad_lines(const itd_reader_t *rd);
/**
 * @brief The most recent bad-line message, "file:line: why", or "" if no
 * line was bad. Borrowed; valid until itd_reader_destroy (its text changes
 * as later lines are read).
 * (Added by the reader's implementer: lets `replay` report what was wrong.)
 */
const char *itd_reader_last_error(const itd_reader_t *rd);

/** @brief Bytes of the input consumed so far and in all (0 if unknown). */
void itd_reader_progress(const itd_reader_t *rd, uint64_t *done,
                         uint64_t *total);

#endif
