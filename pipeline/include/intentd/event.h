/*
 * event.h - the input record, decoded.
 *
 * One shopper action (config/event.avsc). Strings live in fixed buffers so a
 * decoded event needs no allocation and can be reused message after message;
 * an optional string that is absent is the empty string, an absent price is
 * NAN. Decoders reject strings that do not fit rather than cutting them.
 */
#ifndef INTENTD_EVENT_H
#define INTENTD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"

#define ITD_ID_MAX 64     /* bytes for ids, NUL included */
#define ITD_QUERY_MAX 128 /* bytes for a search query, NUL included */

/* Order matches the enum symbols of config/event.avsc. */
typedef enum {
        ITD_EV_VIEW = 0,
        ITD_EV_SEARCH,
        ITD_EV_ADD_TO_CART,
        ITD_EV_REMOVE_FROM_CART,
        ITD_EV_PURCHASE,
        ITD_EV_FAVORITE,
        ITD_EV__COUNT
} itd_event_type_t;

typedef struct itd_event_s {
        int64_t ts_ms;           /* event time, ms since the epoch (UTC) */
        itd_event_type_t type;
        double price;            /* NAN when absent */
        char user_id[ITD_ID_MAX];
        char event_id[ITD_ID_MAX];   /* "" when absent */
        char item_id[ITD_ID_MAX];    /* "" when absent */
        char category[ITD_ID_MAX];   /* "" when absent */
        char session_id[ITD_ID_MAX]; /* "" when absent */
        char query[ITD_QUERY_MAX];   /* "" when absent */
} itd_event_t;

/** @brief Sets every field to "absent" (price NAN, strings empty, ts 0). */
void itd_event_clear(itd_event_t *ev);

/** @brief "VIEW", "SEARCH", ... as in the Avro enum; "?" if out of range. */
const char *itd_event_type_name(itd_event_type_t type);

/**
 * @brief Parses an Avro enum symbol ("ADD_TO_CART"), case-sensitive.
 * @returns ITD_OK, or ITD_ERR_PARSE if unknown.
 */
itd_err_t itd_event_type_parse(const char *s, itd_event_type_t *type);

/**
 * @brief Parses one JSON object with the event.avsc field names
 * (`ts` as integer milliseconds, `type` as the enum symbol).
 * @param json  text, need not be NUL-terminated; len bytes.
 * @returns ITD_OK; ITD_ERR_DECODE with one line in errstr on bad input.
 * @thread any (no shared state).
 */
itd_err_t itd_event_from_json(const char *json, size_t len, itd_event_t *ev,
                              char *errstr, size_t errstr_size);

/**
 * @brief Writes ev as one JSON object (no newline) into buf[cap].
 * @returns bytes written (without NUL), or 0 if buf is too small.
 */
size_t itd_event_to_json(const itd_event_t *ev, char *buf, size_t cap);

/** @brief 64-bit XXH3 of a string with a seed (stable across runs and
 * hosts). */
uint64_t itd_hash_str(const char *s, uint64_t seed);

/**
 * @brief The user's key: itd_hash_str(user_id, 0). Computed once per
 * event, where the event is decoded into a batch row (engine.h); the
 * state, the labeler, the triggers and the replay report all find the
 * user by it and never hash the id again.
 */
uint64_t itd_user_hash(const char *user_id);

#endif
