/*
 * codec_int.h - the Avro event walker, shared by codec.c (own schema) and
 * input.c (writer schemas by id). Private to the pipeline module.
 *
 * A plan is the resolution of one writer schema against the reader schema
 * config/event.avsc: which writer field lands in which event slot, which
 * are skipped, the enum symbol map, and the event pre-filled with the
 * reader defaults of fields the writer lacks.
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

/**
 * @brief Resolves writer against the built-in reader schema.
 * @param writer  borrowed; the plan takes its own reference.
 * @returns the plan (caller owns; itd_plan_destroy), or NULL with errstr
 * naming the field that does not resolve.
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
