/*
 * codec_int.h - the Avro event walker (plan.c), shared by codec.c (own
 * schema), input.c (writer schemas by id) and the container reader
 * (ocf.c), and the one Confluent-or-bare rule (itd_wire_classify) of
 * codec.c, input.c and control.c. Private to the pipeline module.
 *
 * A plan is the resolution of one writer schema against the reader schema
 * config/event.avsc: which writer field lands in which event slot, which
 * are skipped, the symbol map of every writer enum, and the event
 * pre-filled with the reader defaults of fields the writer lacks.
 */
#ifndef INTENTD_CODEC_INT_H
#define INTENTD_CODEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>

#include "intentd/codec.h"
#include "intentd/event.h"
#include "intentd/input.h"

typedef struct itd_plan_s itd_plan_t;

#define ITD_CONFLUENT_HDR 5 /* magic byte 0 + 4-byte big-endian schema id */

/* Where a message's Avro starts, by its first bytes and the framing. */
typedef enum {
        ITD_WIRE_BARE = 0,  /* Avro from byte 0 */
        ITD_WIRE_CONFLUENT, /* a Confluent header (framing confluent):
                             * Avro from byte ITD_CONFLUENT_HDR */
        ITD_WIRE_EITHER,    /* framing auto and byte 0 is 0: a Confluent
                             * header, or a bare record whose first field
                             * is a null union branch; try the header
                             * first, then bare */
        ITD_WIRE_TOO_SHORT, /* framing confluent, shorter than the header */
        ITD_WIRE_BAD_MAGIC  /* framing confluent, byte 0 is not 0 */
} itd_wire_t;

/**
 * @brief The Confluent-or-bare rule: how to read buf[0..len) under
 * framing (any value but CONFLUENT and BARE is AUTO). Under AUTO a message
 * shorter than the header or not starting with 0 is bare.
 * @param schema_id  set for ITD_WIRE_CONFLUENT and ITD_WIRE_EITHER (the
 *                   header's big-endian id); may be NULL.
 * @param detail     on TOO_SHORT and BAD_MAGIC one line, "N bytes, too
 *                   short for the 5-byte Confluent header" or "Confluent
 *                   magic byte is 0xNN, expected 0x00"; untouched
 *                   otherwise; may be NULL.
 * Inline: the daemon's event decoder runs it on every message.
 * @thread any.
 */
static inline itd_wire_t itd_wire_classify(const uint8_t *buf, size_t len,
                                           itd_framing_t framing,
                                           uint32_t *schema_id, char *detail,
                                           size_t detail_size) {
        if (framing == ITD_FRAMING_BARE)
                return ITD_WIRE_BARE;
        if (framing == ITD_FRAMING_CONFLUENT) {
                if (len < ITD_CONFLUENT_HDR) {
                        itd_errf(detail, detail_size,
                                 "%zu bytes, too short for the 5-byte "
                                 "Confluent header",
                                 len);
                        return ITD_WIRE_TOO_SHORT;
                }
                if (buf[0] != 0) {
                        itd_errf(detail, detail_size,
                                 "Confluent magic byte is 0x%02x, "
                                 "expected 0x00",
                                 buf[0]);
                        return ITD_WIRE_BAD_MAGIC;
                }
        } else if (len < ITD_CONFLUENT_HDR || buf[0] != 0) {
                return ITD_WIRE_BARE;
        }
        if (schema_id)
                *schema_id = (uint32_t)buf[1] << 24 |
                             (uint32_t)buf[2] << 16 |
                             (uint32_t)buf[3] << 8 | buf[4];
        return framing == ITD_FRAMING_CONFLUENT ? ITD_WIRE_CONFLUENT
                                                : ITD_WIRE_EITHER;
}

/* Where a writer field lands in itd_event_t. */
typedef enum {
        ITD_SLOT_NONE = 0, /* unknown to the reader: skipped */
        ITD_SLOT_EVENT_ID,
        ITD_SLOT_USER_ID,
        ITD_SLOT_TS,
        ITD_SLOT_TYPE,
        ITD_SLOT_ITEM_ID,
        ITD_SLOT_CATEGORY,
        ITD_SLOT_PRICE,
        ITD_SLOT_QUERY,
        ITD_SLOT_SESSION_ID,
        ITD_SLOT__COUNT
} itd_slot_t;

/** @brief The reader's field name of each slot ("" for ITD_SLOT_NONE). */
extern const char *const itd_slot_names[ITD_SLOT__COUNT];

/**
 * @brief Resolves writer against the built-in reader schema. Any schema
 * Avro C parses either resolves or is refused here; what can only be
 * judged per message (a null branch of a required field, a symbol the
 * reader lacks, a value nested too deep) is a reason at decode time.
 * @param writer  borrowed; the plan takes its own reference.
 * @returns the plan (caller owns; itd_plan_destroy), or NULL with errstr
 * naming the field that does not resolve (or the limit the schema
 * exceeds: 64 levels of nesting, 4096 types).
 * @thread any.
 */
itd_plan_t *itd_plan_new(avro_schema_t writer, char *errstr,
                         size_t errstr_size);
void itd_plan_destroy(itd_plan_t *plan);

/**
 * @brief Decodes the Avro record at buf[off..len) per plan into ev.
 * Strings longer than max_string_bytes (or than their buffer) are refused,
 * as are invalid UTF-8, NUL bytes, non-finite prices and trailing bytes.
 * Offsets in detail count from buf.
 * @returns ITD_REASON_OK or the reason; detail gets one line (may be NULL).
 * @thread any (the plan is read-only).
 */
itd_reason_t itd_plan_decode(const itd_plan_t *plan, const uint8_t *buf,
                             size_t len, size_t off, size_t max_string_bytes,
                             itd_event_t *ev, char *detail,
                             size_t detail_size);

/**
 * @brief Decodes the one record at buf[*off..len) per plan into ev, with
 * more data allowed after it (records in a container block).
 * @param off  in: where the record starts; out: where it ends, whenever
 *             the bytes hold a whole record of the writer schema (also when
 *             its content was refused), else SIZE_MAX (the data is broken:
 *             nothing after it can be found).
 * @returns as itd_plan_decode, never ITD_REASON_TRAILING_BYTES.
 * @thread any (the plan is read-only).
 */
itd_reason_t itd_plan_decode_next(const itd_plan_t *plan, const uint8_t *buf,
                                  size_t len, size_t *off,
                                  size_t max_string_bytes, itd_event_t *ev,
                                  char *detail, size_t detail_size);

/** @brief The codec's plan for its own (built-in) schema; borrowed. */
const itd_plan_t *itd_codec_event_plan(const itd_codec_t *codec);

/**
 * @brief JSON object with the event.avsc field names into ev, with the
 * same limits and reasons as the Avro path (event.c).
 * @thread any.
 */
itd_reason_t itd_event_json_decode(const char *json, size_t len,
                                   size_t max_string_bytes, itd_event_t *ev,
                                   char *detail, size_t detail_size);

/** @brief Offset of the first byte that breaks UTF-8 in s[0..n), or n. */
size_t itd_utf8_check(const uint8_t *s, size_t n);

#endif
