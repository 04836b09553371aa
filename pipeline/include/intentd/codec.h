/*
 * codec.h - Avro encoding and decoding of events, predictions and
 * triggers.
 *
 * The schemas are compiled into the binary from config/ (*.avsc). Decoding
 * accepts the Confluent wire format (magic byte 0, 4-byte big-endian schema
 * id, payload) or bare Avro, per framing. One codec per thread: it keeps
 * reusable Avro values inside.
 */
#ifndef INTENTD_CODEC_H
#define INTENTD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/prediction.h"
#include "intentd/trigger.h"

typedef struct itd_codec_s itd_codec_t;

typedef enum {
        ITD_FRAMING_AUTO = 0, /* Confluent if byte 0 is 0 and it decodes, else bare */
        ITD_FRAMING_CONFLUENT,
        ITD_FRAMING_BARE
} itd_framing_t;

/** @brief The schema texts compiled in (NUL-terminated JSON). */
extern const char itd_schema_event_avsc[];
extern const char itd_schema_prediction_avsc[];
extern const char itd_schema_trigger_avsc[];

/**
 * @brief Creates a codec with the built-in schemas.
 * @returns the codec (caller owns; itd_codec_destroy), or NULL with errstr.
 */
itd_codec_t *itd_codec_new(char *errstr, size_t errstr_size);
void itd_codec_destroy(itd_codec_t *codec);

/**
 * @brief Decodes one event message.
 * @param buf,len  the message value; borrowed for the call only.
 * @param ev       filled on ITD_OK; undefined otherwise.
 * Every Confluent schema id is read with the built-in schema and no content
 * rules apply: this is for tools and tests; the daemon decodes through
 * itd_decoder_t (input.h), which resolves writer schemas by id and
 * validates.
 * @returns ITD_OK, or ITD_ERR_DECODE with "what, where, why" in errstr
 * (truncated payload, trailing bytes, unknown enum, string too long, ...).
 * @thread the codec's owner.
 */
itd_err_t itd_codec_decode_event(itd_codec_t *codec, const void *buf,
                                 size_t len, itd_framing_t framing,
                                 itd_event_t *ev, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Encodes ev into buf[cap]. schema_id >= 0 prepends the Confluent
 * header with that id; -1 writes bare Avro.
 * @returns ITD_OK with *len set, ITD_ERR_FULL if cap is too small.
 */
itd_err_t itd_codec_encode_event(itd_codec_t *codec, const itd_event_t *ev,
                                 int32_t schema_id, void *buf, size_t cap,
                                 size_t *len);

/** @brief As itd_codec_encode_event, for a prediction record. */
itd_err_t itd_codec_encode_prediction(itd_codec_t *codec,
                                      const itd_prediction_t *p,
                                      int32_t schema_id, void *buf,
                                      size_t cap, size_t *len);

/**
 * @brief Decodes a prediction record (tests, inspect, demo summary).
 * @returns ITD_OK, or ITD_ERR_DECODE with errstr.
 */
itd_err_t itd_codec_decode_prediction(itd_codec_t *codec, const void *buf,
                                      size_t len, itd_framing_t framing,
                                      itd_prediction_t *p, char *errstr,
                                      size_t errstr_size);

/**
 * @brief As itd_codec_encode_event, for a trigger record
 * (config/trigger.avsc).
 * @returns ITD_OK with *len set, ITD_ERR_FULL if cap is too small,
 * ITD_ERR_ENCODE for a direction out of range.
 * @thread the codec's owner.
 */
itd_err_t itd_codec_encode_trigger(itd_codec_t *codec,
                                   const itd_trigger_rec_t *rec,
                                   int32_t schema_id, void *buf, size_t cap,
                                   size_t *len);

/**
 * @brief Decodes a trigger record (tests, tools).
 * @returns ITD_OK, or ITD_ERR_DECODE with errstr.
 */
itd_err_t itd_codec_decode_trigger(itd_codec_t *codec, const void *buf,
                                   size_t len, itd_framing_t framing,
                                   itd_trigger_rec_t *rec, char *errstr,
                                   size_t errstr_size);

#endif
