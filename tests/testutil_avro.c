/*
 * testutil_avro.c - Avro binary written by hand (testutil.h, "Avro by
 * hand"): what a test needs to make a message the codec would not make
 * (another writer schema, a damaged header, a wrong type); and events
 * compared after a round trip.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

void tu_put_raw(tu_bytes_t *o, const void *p, size_t n) {
        cr_assert_leq(n, sizeof o->b - o->n, "tu_bytes_t full: %zu + %zu",
                      o->n, n);
        memcpy(o->b + o->n, p, n);
        o->n += n;
}

size_t tu_avro_long(unsigned char out[10], int64_t v) {
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        size_t n = 0;
        do {
                unsigned char c = z & 0x7f;
                z >>= 7;
                if (z)
                        c |= 0x80;
                out[n++] = c;
        } while (z);
        return n;
}

void tu_put_long(tu_bytes_t *o, int64_t v) {
        unsigned char z[10];
        tu_put_raw(o, z, tu_avro_long(z, v));
}

void tu_put_str(tu_bytes_t *o, const char *s) {
        tu_put_long(o, (int64_t)strlen(s));
        tu_put_raw(o, s, strlen(s));
}

void tu_put_double(tu_bytes_t *o, double d) {
        uint64_t u;
        unsigned char le[8];
        memcpy(&u, &d, 8);
        for (int i = 0; i < 8; i++)
                le[i] = (unsigned char)(u >> (8 * i));
        tu_put_raw(o, le, 8);
}

void tu_put_float(tu_bytes_t *o, float f) {
        uint32_t u;
        unsigned char le[4];
        memcpy(&u, &f, 4);
        for (int i = 0; i < 4; i++)
                le[i] = (unsigned char)(u >> (8 * i));
        tu_put_raw(o, le, 4);
}

void tu_put_header(tu_bytes_t *o, uint32_t id) {
        unsigned char h[5] = {0, (unsigned char)(id >> 24),
                              (unsigned char)(id >> 16),
                              (unsigned char)(id >> 8), (unsigned char)id};
        o->n = 0;
        tu_put_raw(o, h, 5);
}

void tu_put_event(tu_bytes_t *o, const char *user, int64_t ts, int64_t type,
                  double price, const char *query) {
        tu_put_long(o, 0);
        tu_put_str(o, user);
        tu_put_long(o, ts);
        tu_put_long(o, type);
        tu_put_long(o, 0);
        tu_put_long(o, 0);
        if (isnan(price)) {
                tu_put_long(o, 0);
        } else {
                tu_put_long(o, 1);
                tu_put_double(o, price);
        }
        if (query) {
                tu_put_long(o, 1);
                tu_put_str(o, query);
        } else {
                tu_put_long(o, 0);
        }
        tu_put_long(o, 0);
}

void tu_assert_same_event(const itd_event_t *a, const itd_event_t *b) {
        cr_assert_eq(a->ts_ms, b->ts_ms);
        cr_assert_eq(a->type, b->type);
        if (isnan(a->price))
                cr_assert(isnan(b->price));
        else
                /* Avro doubles travel exactly, and JSON keeps the
                 * shortest exact decimal: equality holds. */
                cr_assert_eq(a->price, b->price);
        cr_assert_str_eq(a->user_id, b->user_id);
        cr_assert_str_eq(a->event_id, b->event_id);
        cr_assert_str_eq(a->item_id, b->item_id);
        cr_assert_str_eq(a->category, b->category);
        cr_assert_str_eq(a->session_id, b->session_id);
        cr_assert_str_eq(a->query, b->query);
}
