/*
 * reader.h - events from files: the replay source and `intentd load`.
 *
 * Formats: Taobao UserBehavior CSV (user,item,category,behavior,ts seconds;
 * pv/cart/fav/buy), REES46 "eCommerce behavior data from multi category
 * store" CSV (header; event_time "2019-10-01 00:00:00 UTC", event_type
 * view/cart/remove_from_cart/purchase, product_id, category_id,
 * category_code, brand, price, user_id, user_session), RetailRocket
 * events.csv (header; timestamp ms, visitorid, event
 * view/addtocart/transaction, itemid, transactionid), JSON lines in the
 * event schema, and Avro object container files whose records resolve
 * against config/event.avsc (codecs null, deflate, snappy; read by the
 * walker the Kafka path uses). A gzip file (known by its first bytes,
 * whatever its name; an Avro file inside gzip included) is inflated, and
 * one that is cut short or corrupt is an error naming the file, not the
 * end of the data. With sort set, the
 * whole file is read and stable-sorted by event time first (the Taobao
 * user-grouped files need it, the others have ties and small disorder);
 * otherwise events stream in file order.
 *
 * The CSV formats with a header find their columns by name, so extra or
 * reordered columns are fine; without a header the documented order is
 * assumed.
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
        ITD_FORMAT_REES46,
        ITD_FORMAT_RETAILROCKET,
        ITD_FORMAT_AVRO,
        ITD_FORMAT__COUNT
} itd_format_t;

typedef struct itd_reader_s itd_reader_t;

/** @brief "taobao" / "jsonl" / "rees46" / "retailrocket" / "avro" -> format.
 * @returns ITD_ERR_PARSE if unknown. */
itd_err_t itd_format_parse(const char *s, itd_format_t *format);

/**
 * @brief Opens path. @returns reader (caller owns) or NULL with errstr
 * naming the file and the reason.
 */
itd_reader_t *itd_reader_open(const char *path, itd_format_t format, int sort,
                              char *errstr, size_t errstr_size);
void itd_reader_destroy(itd_reader_t *rd);

/**
 * @brief Reads the next good event. A bad line (or Avro record) is
 * skipped and counted (itd_reader_bad_lines) and, for the first few,
 * logged with file:line.
 * @returns ITD_OK, ITD_ERR_EOF at the end, ITD_ERR_IO when the file
 * cannot be read on (a read error, a truncated or corrupt gzip, a broken
 * container), with errstr naming the file.
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

/** @brief The name itd_format_parse accepts for format ("?" if none),
 * for messages and the replay report. */
const char *itd_format_name(itd_format_t format);

/** @brief Bytes of the input consumed so far and in all (0 if unknown). */
void itd_reader_progress(const itd_reader_t *rd, uint64_t *done,
                         uint64_t *total);

#endif
