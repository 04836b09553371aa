/*
 * bench_codec.c - nanoseconds per message for the input decoder
 * (itd_decoder_decode: Confluent and bare Avro, JSON; validation included)
 * and the Avro encoders of events and predictions.
 *
 * Usage: bench_codec [ITERATIONS]   (default 1000000)
 * Prints one line per measurement, then a JSON object as the last line:
 * {"bench":"codec","decode_confluent_ns":...,...}. The best of 3 rounds is
 * reported, so a neighbour stealing the core for a moment does not count.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf_parts.h"
#include "intentd/codec.h"
#include "intentd/conf.h"
#include "intentd/input.h"
#include "intentd/prediction.h"

#define ROUNDS 3

static double now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void sample_event(itd_event_t *ev, int64_t ts_ms) {
        itd_event_clear(ev);
        ev->ts_ms = ts_ms;
        ev->type = ITD_EV_ADD_TO_CART;
        ev->price = 249.5;
        strcpy(ev->user_id, "user-000042");
        strcpy(ev->event_id, "evt-7f3a9c21");
        strcpy(ev->item_id, "item-118822");
        strcpy(ev->category, "cat-4431");
        strcpy(ev->session_id, "sess-000042-17");
}

static itd_decoder_t *decoder(int format, int framing) {
        itd_input_conf_t ic;
        char err[256];
        itd_conf_input_defaults(&ic);
        ic.format = format;
        ic.framing = framing;
        itd_decoder_t *dec = itd_decoder_new(&ic, NULL, err, sizeof err);
        if (!dec) {
                fprintf(stderr, "bench_codec: %s\n", err);
                exit(1);
        }
        return dec;
}

/* Best-of-ROUNDS ns per decode of buf. */
static double bench_decode(itd_decoder_t *dec, const void *buf, size_t len,
                           long iters, int64_t now_ms) {
        double best = INFINITY;
        itd_event_t ev;
        for (int r = 0; r < ROUNDS; r++) {
                double t0 = now_ns();
                for (long i = 0; i < iters; i++)
                        if (itd_decoder_decode(dec, buf, len, now_ms, &ev,
                                               NULL, 0) != ITD_REASON_OK) {
                                fprintf(stderr, "bench_codec: decode "
                                                "failed\n");
                                exit(1);
                        }
                double ns = (now_ns() - t0) / (double)iters;
                if (ns < best)
                        best = ns;
        }
        return best;
}

int main(int argc, char **argv) {
        long iters = argc > 1 ? atol(argv[1]) : 1000000;
        if (iters <= 0) {
                fprintf(stderr, "usage: bench_codec [ITERATIONS]\n");
                return 2;
        }
        char err[256];
        itd_codec_t *codec = itd_codec_new(err, sizeof err);
        if (!codec) {
                fprintf(stderr, "bench_codec: %s\n", err);
                return 1;
        }
        int64_t now_ms = 1700000000000LL;
        itd_event_t ev;
        sample_event(&ev, now_ms - 1000);
        unsigned char conf_buf[512], bare_buf[512];
        char json[512];
        size_t conf_len, bare_len, json_len;
        if (itd_codec_encode_event(codec, &ev, 1, conf_buf, sizeof conf_buf,
                                   &conf_len) ||
            itd_codec_encode_event(codec, &ev, -1, bare_buf, sizeof bare_buf,
                                   &bare_len) ||
            !(json_len = itd_event_to_json(&ev, json, sizeof json))) {
                fprintf(stderr, "bench_codec: encode failed\n");
                return 1;
        }

        itd_decoder_t *d_conf = decoder(ITD_INPUT_AVRO, ITD_FRAMING_CONFLUENT);
        itd_decoder_t *d_bare = decoder(ITD_INPUT_AVRO, ITD_FRAMING_BARE);
        itd_decoder_t *d_json = decoder(ITD_INPUT_JSON, ITD_FRAMING_AUTO);
        double dec_conf = bench_decode(d_conf, conf_buf, conf_len, iters,
                                       now_ms);
        double dec_bare = bench_decode(d_bare, bare_buf, bare_len, iters,
                                       now_ms);
        double dec_json = bench_decode(d_json, json, json_len, iters / 4,
                                       now_ms);

        double enc_ev = INFINITY, enc_pred = INFINITY;
        itd_prediction_t p;
        memset(&p, 0, sizeof p);
        itd_prediction_make_id(&p, "intentd.events", 3, 81234);
        strcpy(p.user_id, ev.user_id);
        p.event_ts_ms = ev.ts_ms;
        p.predicted_at_ms = now_ms;
        p.purchase_probability = 0.42f;
        p.next_action = ITD_NEXT_ADD_TO_CART;
        for (int i = 0; i < ITD_NEXT__COUNT; i++)
                p.next_probs[i] = 0.2f;
        p.model_version = 123456;
        p.n_top_categories = 3;
        for (size_t i = 0; i < 3; i++) {
                snprintf(p.top_categories[i], ITD_ID_MAX, "cat-%zu", i);
                p.top_category_scores[i] = 1.0f / (float)(i + 1);
        }
        for (int r = 0; r < ROUNDS; r++) {
                size_t len;
                double t0 = now_ns();
                for (long i = 0; i < iters; i++)
                        if (itd_codec_encode_event(codec, &ev, 1, conf_buf,
                                                   sizeof conf_buf, &len))
                                return 1;
                double ns = (now_ns() - t0) / (double)iters;
                enc_ev = ns < enc_ev ? ns : enc_ev;
                t0 = now_ns();
                for (long i = 0; i < iters; i++)
                        if (itd_codec_encode_prediction(codec, &p, 1,
                                                        conf_buf,
                                                        sizeof conf_buf,
                                                        &len))
                                return 1;
                ns = (now_ns() - t0) / (double)iters;
                enc_pred = ns < enc_pred ? ns : enc_pred;
        }

        printf("decode confluent avro (%zu bytes): %.0f ns/message\n",
               conf_len, dec_conf);
        printf("decode bare avro      (%zu bytes): %.0f ns/message\n",
               bare_len, dec_bare);
        printf("decode json           (%zu bytes): %.0f ns/message\n",
               json_len, dec_json);
        printf("encode event:      %.0f ns/message\n", enc_ev);
        printf("encode prediction: %.0f ns/message\n", enc_pred);
        printf("{\"bench\":\"codec\",\"iterations\":%ld,"
               "\"decode_confluent_ns\":%.1f,\"decode_bare_ns\":%.1f,"
               "\"decode_json_ns\":%.1f,\"encode_event_ns\":%.1f,"
               "\"encode_prediction_ns\":%.1f}\n",
               iters, dec_conf, dec_bare, dec_json, enc_ev, enc_pred);
        itd_decoder_destroy(d_conf);
        itd_decoder_destroy(d_bare);
        itd_decoder_destroy(d_json);
        itd_codec_destroy(codec);
        return 0;
}
