/*
 * input.h - the one entry point from a Kafka message value to an event.
 *
 * The run loop hands every consumed value to itd_decoder_decode and gets
 * back either ITD_REASON_OK and a validated event, or a stable reason code
 * that goes, unchanged, into the dead-letter header `intentd.error.reason`
 * and the `reason` label of intentd_events_dead_lettered_total. The codes
 * and the rules behind them are documented in docs/SCHEMAS.md (a test
 * checks that every code is there).
 *
 * Avro values come in the Confluent wire format (magic byte 0, 4-byte
 * big-endian schema id, payload) or bare, per framing. The writer schema of
 * a Confluent id is looked up in a schema directory (`<id>.avsc` or `<id>`)
 * and then in a Schema Registry (GET {url}/schemas/ids/{id}); resolved
 * schemas are cached for the decoder's life, failed look-ups for
 * ITD_DECODER_MISS_RETRY_MS. Registry look-ups never block: they run on a
 * thread of the decoder's own, and a message whose id is being looked up
 * is answered ITD_REASON_PENDING; the caller keeps it, calls
 * itd_decoder_poll, and decodes it again later (the run loop parks such
 * messages, daemon/park.h). With neither source configured every id is
 * taken to be the built-in schema (config/event.avsc). Bare Avro is always
 * read with the built-in schema. The writer is resolved against the reader
 * schema config/event.avsc by the Avro rules (fields by name, reader
 * defaults for fields the writer lacks, enum symbols by name, numeric
 * promotion), with the defaults applied by intentd since Avro C does not.
 */
#ifndef INTENTD_INPUT_H
#define INTENTD_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/event.h"

/* Order is free (names are the contract); append new codes before
 * ITD_REASON__COUNT and document them in docs/SCHEMAS.md. */
typedef enum {
        /* Not a verdict: the message's schema id is being looked up in
         * the registry. Decode the same bytes again after
         * itd_decoder_poll; never a dead-letter reason. */
        ITD_REASON_PENDING = -1,
        ITD_REASON_OK = 0,
        /* the message as a whole */
        ITD_REASON_EMPTY_MESSAGE,      /* zero bytes (or a null value) */
        ITD_REASON_MESSAGE_TOO_LARGE,  /* over input.max_message_bytes */
        ITD_REASON_BAD_MAGIC_BYTE,     /* confluent framing, byte 0 not 0 */
        ITD_REASON_UNKNOWN_SCHEMA_ID,  /* id in no schema source */
        ITD_REASON_SCHEMA_INCOMPATIBLE,/* writer cannot resolve to reader */
        /* Avro structure */
        ITD_REASON_TRUNCATED,          /* payload ends inside a value */
        ITD_REASON_TRAILING_BYTES,     /* bytes after the record */
        ITD_REASON_NEGATIVE_LENGTH,    /* string/bytes length below 0 */
        ITD_REASON_BAD_UNION_BRANCH,   /* union index outside the union */
        ITD_REASON_BAD_ENUM_INDEX,     /* enum index outside the symbols */
        ITD_REASON_MALFORMED_AVRO,     /* over-long varint, bad block */
        /* JSON structure */
        ITD_REASON_JSON_SYNTAX,        /* not parseable JSON */
        ITD_REASON_JSON_NOT_OBJECT,    /* valid JSON, but not an object */
        ITD_REASON_WRONG_TYPE,         /* a JSON field of the wrong type */
        /* content */
        ITD_REASON_MISSING_FIELD,      /* ts or type absent or null */
        ITD_REASON_MISSING_USER_ID,    /* user_id absent, null or "" */
        ITD_REASON_UNKNOWN_EVENT_TYPE, /* type symbol not in EventType */
        ITD_REASON_TS_TOO_OLD,         /* ts before 2000-01-01T00:00Z */
        ITD_REASON_TS_IN_FUTURE,       /* ts beyond now + input.max_future */
        ITD_REASON_BAD_PRICE,          /* price negative, NaN or infinite */
        ITD_REASON_STRING_TOO_LONG,    /* over input.max_string_bytes */
        ITD_REASON_INVALID_UTF8,       /* a string is not valid UTF-8 */
        ITD_REASON_NUL_IN_STRING,      /* a string holds a NUL byte */
        ITD_REASON_BAD_CONTROL,        /* a control record asks for nothing
                                        * known (type, request_id) */
        ITD_REASON__COUNT
} itd_reason_t;

/**
 * @brief Stable snake_case code of a reason ("ok", "truncated",
 * "unknown_schema_id", ..., "pending"); "unknown" if r is out of range.
 * @returns a static string. @thread any.
 */
const char *itd_reason_name(itd_reason_t r);

/* Failed schema look-ups are retried after this long. */
#define ITD_DECODER_MISS_RETRY_MS 30000
/* Registry look-ups started per second; more wait their turn (at most
 * ITD_FETCH_QUEUE, pipeline/registry_int.h, queued or running: beyond
 * that, and beyond 1024 ids pending or failed at once, a new id is
 * answered unknown_schema_id without asking and not remembered). */
#define ITD_DECODER_REGISTRY_PER_SEC 10
/* The earliest accepted event time: 2000-01-01T00:00:00Z. */
#define ITD_DECODER_MIN_TS_MS 946684800000LL

/* input.format; the symbols of daemon/conf_table.c follow this order. */
typedef enum { ITD_INPUT_AVRO = 0, ITD_INPUT_JSON } itd_input_format_t;

/* Every field is the caller's to set: the daemon fills them from its
 * option table (input.*), which holds the defaults. */
typedef struct itd_input_conf_s {
        int format;               /* itd_input_format_t */
        int framing;              /* itd_framing_t (codec.h) */
        const char *schemas_dir;  /* NULL or "": none */
        const char *registry_url; /* NULL or "": none; may hold
                                   * user:password@ */
        const char *registry_user_info; /* "user:password", NULL or "":
                                   * none (not both this and the URL's) */
        int64_t registry_timeout_ms; /* one look-up at most */
        int64_t max_future_ms;    /* ts may be this far ahead of the wall */
        size_t max_string_bytes;  /* per string; capped by the event buffers
                                   * (ITD_ID_MAX-1, ITD_QUERY_MAX-1) */
        size_t max_message_bytes; /* whole value, header included */
} itd_input_conf_t;

typedef struct itd_decoder_s itd_decoder_t;

/* What a decoder could not be built from (itd_decoder_new), so that a
 * caller can name the setting without reading the message. */
typedef enum {
        ITD_INPUT_FAULT_NONE = 0,
        ITD_INPUT_FAULT_LIMITS,      /* format, framing or a limit out of
                                      * range */
        ITD_INPUT_FAULT_SCHEMAS_DIR, /* schemas_dir missing or not a folder */
        ITD_INPUT_FAULT_REGISTRY,    /* registry_url or its credentials,
                                      * registry support not built, or its
                                      * look-up thread */
        ITD_INPUT_FAULT_BUILTIN      /* the built-in event schema (a build
                                      * fault, not a setting) */
} itd_input_fault_t;

/**
 * @brief Creates a decoder. Strings in conf are copied (the credentials
 * into the registry client only; no message ever shows them). With a
 * registry URL it initialises libcurl globally and starts the look-up
 * thread: call from the main thread before other threads start.
 * @param fault  set to what failed (ITD_INPUT_FAULT_NONE on success);
 *               may be NULL.
 * @returns the decoder (caller owns; itd_decoder_destroy, which abandons
 * look-ups in flight at once), or NULL with errstr (schemas_dir not a
 * folder, registry support not built, credentials given twice, ...).
 */
itd_decoder_t *itd_decoder_new(const itd_input_conf_t *conf,
                               itd_input_fault_t *fault, char *errstr,
                               size_t errstr_size);
void itd_decoder_destroy(itd_decoder_t *dec);

/**
 * @brief Decodes and validates one message value.
 * @param buf,len  the value; borrowed for the call; buf may be NULL if
 *                 len is 0.
 * @param now_wall_ms  wall clock for the future-timestamp check.
 * @param ev       filled on ITD_REASON_OK; undefined otherwise.
 * @param detail   one line for people ("field 'user_id' at byte 9: ...",
 *                 "schema id 17: not in schemas_dir or the registry");
 *                 set on failure, "" on success. May be NULL.
 * @returns ITD_REASON_OK, the reason the message is dead-lettered, or
 * ITD_REASON_PENDING (its schema id is being looked up; detail says which).
 * Steady state allocates nothing for Avro; the first message of a new
 * schema id may read a file from input.schemas_dir, never waits for the
 * registry. JSON goes through jansson, which allocates.
 * @thread the decoder's owner (one decoder per consumer thread).
 */
itd_reason_t itd_decoder_decode(itd_decoder_t *dec, const void *buf,
                                size_t len, int64_t now_wall_ms,
                                itd_event_t *ev, char *detail,
                                size_t detail_size);

/**
 * @brief Applies registry look-ups that finished: their ids decode, or are
 * remembered as failed. Waits up to wait_ms for the first when none has
 * finished (0: never waits). @returns how many were applied (0 without a
 * registry). @thread the decoder's owner; the run loop calls it every
 * turn with 0.
 */
size_t itd_decoder_poll(itd_decoder_t *dec, int wait_ms);

typedef struct itd_decoder_stats_s {
        uint64_t schemas_loaded;    /* writer schemas resolved and cached */
        uint64_t schema_misses;     /* look-ups that found nothing usable */
        uint64_t registry_requests; /* HTTP GETs queued */
        uint64_t registry_errors;   /* GETs that failed (not 404) */
        uint64_t registry_refused;  /* ids not looked up: queue or table of
                                     * unresolved ids full */
} itd_decoder_stats_t;

/** @brief Counters since creation. @thread the decoder's owner. */
void itd_decoder_stats(const itd_decoder_t *dec, itd_decoder_stats_t *st);

#endif
