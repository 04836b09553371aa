/*
 * input_helpers.h - helpers of test_input.c and test_input_registry.c:
 * events as hand-built Avro bytes, a decoder of a format, framing, schema
 * folder and registry, a decode at a fixed clock, the newer writer schema
 * and its payload, a schema written to a folder.
 */
#ifndef INTENTD_INPUT_HELPERS_H
#define INTENTD_INPUT_HELPERS_H

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "conf_parts.h"
#include "intentd/codec.h"
#include "intentd/conf.h"
#include "intentd/input.h"
#include "testutil.h"

#define NOW_MS 1700000000000LL /* the "wall clock" every test decodes at */
#define TS_OK (NOW_MS - 60000)

/* ---- hand-built Avro bytes (spec: zig-zag varints, LE floats) ---- */

/* An event in the built-in schema: tu_put_event (testutil.h). */

/* A decoder that must build. */
static inline itd_decoder_t *decoder_of(const itd_input_conf_t *ic) {
        char err[512];
        itd_decoder_t *dec = itd_decoder_new(ic, NULL, err, sizeof err);
        cr_assert_not_null(dec, "%s", err);
        return dec;
}

static inline itd_decoder_t *new_decoder(int format, int framing,
                                         const char *dir, const char *url) {
        itd_input_conf_t ic;
        itd_conf_input_defaults(&ic);
        ic.format = format;
        ic.framing = framing;
        ic.schemas_dir = dir;
        ic.registry_url = url;
        return decoder_of(&ic);
}

static inline itd_reason_t dec_bytes(itd_decoder_t *dec, const tu_bytes_t *b,
                                     itd_event_t *ev, char *detail,
                                     size_t cap) {
        return itd_decoder_decode(dec, b->b, b->n, NOW_MS, ev, detail, cap);
}

/* Newer writer: an extra string, array and map field, an extra enum
 * symbol, price as a union with int. */
static const char *schema_new =
    "{\"type\":\"record\",\"name\":\"Event\",\"namespace\":\"io.intentd\","
    "\"fields\":["
    "{\"name\":\"event_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"device\",\"type\":\"string\"},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
    "\"symbols\":[\"VIEW\",\"SEARCH\",\"ADD_TO_CART\",\"REMOVE_FROM_CART\","
    "\"PURCHASE\",\"FAVORITE\",\"SHARE\"]}},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
    "{\"name\":\"item_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"category\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"price\",\"type\":[\"null\",\"int\",\"double\"],"
    "\"default\":null},"
    "{\"name\":\"query\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"session_id\",\"type\":[\"null\",\"string\"],"
    "\"default\":null}]}";

static inline void write_schema(const char *dir, const char *name,
                                const char *text) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        cr_assert_eq(tu_write_file(path, text), 0, "cannot write %s", path);
}

static inline void new_payload(tu_bytes_t *b, uint32_t id, int64_t type) {
        tu_put_header(b, id);
        tu_put_long(b, 1);
        tu_put_str(b, "e-1");
        tu_put_str(b, "u-new");
        tu_put_str(b, "ios");
        tu_put_long(b, TS_OK);
        tu_put_long(b, type);
        tu_put_long(b, 2); /* tags: one block of 2, then the end */
        tu_put_str(b, "a");
        tu_put_str(b, "bb");
        tu_put_long(b, 0);
        tu_put_long(b, -1); /* attrs: a block of 1 with its byte size */
        tu_put_long(b, 4);
        tu_put_str(b, "k");
        tu_put_long(b, 7);
        tu_put_long(b, 0);
        tu_put_long(b, 0); /* item_id null */
        tu_put_long(b, 1);
        tu_put_str(b, "c3");
        tu_put_long(b, 1); /* price as int */
        tu_put_long(b, 30);
        tu_put_long(b, 0);
        tu_put_long(b, 1);
        tu_put_str(b, "s-1");
}

#endif
