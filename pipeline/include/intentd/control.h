/*
 * control.h - requests to intentd on topics.control (config/control.avsc)
 * and their acknowledgements on topics.audit (config/audit.avsc).
 *
 * A control record is Avro by config/control.avsc (Confluent framing or
 * bare, as input.framing says; the writer must use this schema: a
 * registry id in the header is not looked up) or, with input.format json,
 * one JSON object with the same field names. A record that does not
 * decode, or asks for something this build does not do, gets a reason
 * code of input.h, for the dead-letter topic.
 *
 * @thread any; no state.
 */
#ifndef INTENTD_CONTROL_H
#define INTENTD_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/codec.h"
#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/input.h"

#define ITD_REQUEST_ID_MAX 128 /* bytes of a request_id, with the NUL */

/* Order matches the ControlType symbols of config/control.avsc. */
typedef enum {
        ITD_CONTROL_ERASE = 0,
        ITD_CONTROL__COUNT
} itd_control_type_t;

typedef struct itd_control_s {
        itd_control_type_t type;
        char user_id[ITD_ID_MAX];
        char request_id[ITD_REQUEST_ID_MAX];
        int64_t requested_at_ms;
} itd_control_t;

/** @brief The schema texts compiled in (NUL-terminated JSON). */
extern const char itd_schema_control_avsc[];
extern const char itd_schema_audit_avsc[];

/**
 * @brief Decodes one control record: Avro in `framing` (AUTO: Confluent
 * when byte 0 is 0 and the rest decodes, else bare) or, with json set, a
 * JSON object.
 * @returns ITD_REASON_OK with *out, or the reason, with one line in
 * errstr naming the field.
 */
itd_reason_t itd_control_decode(const void *buf, size_t len, int json,
                                itd_framing_t framing, itd_control_t *out,
                                char *errstr, size_t errstr_size);

/**
 * @brief Encodes c as Avro (bare, or Confluent with schema_id >= 0) into
 * buf[cap]: for tests and producers of control records.
 * @returns ITD_OK with *len, ITD_ERR_FULL when buf is too small.
 */
itd_err_t itd_control_encode(const itd_control_t *c, int32_t schema_id,
                             void *buf, size_t cap, size_t *len);

/* An acknowledgement (config/audit.avsc), in memory. */
typedef struct itd_audit_s {
        char request_id[ITD_REQUEST_ID_MAX];
        itd_control_type_t type;
        char user[24];          /* the pseudonym (log.h) */
        int64_t requested_at_ms;
        int64_t completed_at_ms;
        const int32_t *partitions; /* borrowed */
        size_t n_partitions;
        uint64_t users, events, pending, queued, triggers, risk_triggers,
            cached;
        uint64_t cut;           /* first cut without the user; 0: none */
} itd_audit_t;

/**
 * @brief Encodes a as Avro (bare, or Confluent with schema_id >= 0).
 * @returns ITD_OK with *len, ITD_ERR_FULL when buf is too small.
 */
itd_err_t itd_audit_encode(const itd_audit_t *a, int32_t schema_id,
                           void *buf, size_t cap, size_t *len);

/**
 * @brief Decodes what itd_audit_encode wrote (tests, tools); partitions
 * go to parts[cap_parts] (a->partitions points there).
 * @returns ITD_REASON_OK, or the reason with errstr.
 */
itd_reason_t itd_audit_decode(const void *buf, size_t len, itd_audit_t *a,
                              int32_t *parts, size_t cap_parts, char *errstr,
                              size_t errstr_size);

#endif
