/*
 * bench_ir.c - one pipeline stage in a loop, for instructions per event
 * under callgrind (stable on a shared, noisy machine where ns are not).
 *
 * Usage: bench_ir STAGE N
 *   decode   itd_decoder_decode of a bare Avro event (validation included)
 *   state    itd_state_update (apply + features) over simulator events,
 *            10k users
 *   forward  itd_model_predict, default MLP, batches of 64
 *   train    itd_model_train, default MLP, batches of 64 (the daemon's
 *            model.batch.size)
 *   encode   itd_codec_encode_prediction
 * Only ir_loop() is meant to be counted:
 *   valgrind --tool=callgrind --toggle-collect=ir_loop bench_ir decode 20000
 * and the "totals:" of the output divided by N is instructions per event
 * (bench/run.sh does this). Setup (schemas, model, events) is outside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_parts.h"
#include "intentd/codec.h"
#include "intentd/conf.h"
#include "intentd/input.h"
#include "intentd/model.h"
#include "intentd/prediction.h"
#include "intentd/simulator.h"
#include "intentd/state.h"

#define BATCH 64
#define POOL 4096 /* distinct events cycled through */

typedef struct ctx_s {
        const char *stage;
        itd_decoder_t *dec;
        itd_codec_t *codec;
        unsigned char buf[512];
        size_t len;
        itd_state_t *st;
        itd_event_t *evs;
        float *x;
        uint32_t *ids;
        float *y;
        int *next;
        size_t dim;
        itd_model_t *model;
        itd_prediction_t pred;
} ctx_t;

static void die(const char *what, const char *err) {
        fprintf(stderr, "bench_ir: %s: %s\n", what, err);
        exit(1);
}

static itd_state_conf_t state_conf(void) {
        itd_state_conf_t c = {
            .n_windows = 4,
            .window_ms = {5 * 60000LL, 3600000LL, 86400000LL,
                          7 * 86400000LL},
            .allowed_lateness_ms = 5000,
            .session_gap_ms = 30 * 60000LL,
            .idle_ttl_ms = 7 * 86400000LL,
            .max_users = 100000,
        };
        return c;
}

/* Simulator events, the ones intentd sees in the other benchmarks. */
static itd_event_t *sim_events(size_t n) {
        char err[256];
        itd_sim_conf_t sc = {.users = 10000, .days = 30, .seed = 1,
                             .start_ms = 1511568000000LL};
        itd_sim_t *sim = itd_sim_new(&sc, err, sizeof err);
        if (!sim)
                die("simulator", err);
        itd_event_t *evs = calloc(n, sizeof *evs);
        for (size_t i = 0; i < n; i++)
                if (itd_sim_next(sim, &evs[i]) != ITD_OK)
                        die("simulator", "ran out of events");
        itd_sim_destroy(sim);
        return evs;
}

/* The counted part: n events through the stage. Not inlined, so
 * callgrind's --toggle-collect can name it. */
__attribute__((noinline)) void ir_loop(ctx_t *c, long n);
__attribute__((noinline)) void ir_loop(ctx_t *c, long n) {
        const char *s = c->stage;
        itd_event_t ev;
        size_t len;
        itd_topcats_t top;
        if (!strcmp(s, "decode")) {
                for (long i = 0; i < n; i++)
                        if (itd_decoder_decode(c->dec, c->buf, c->len,
                                               1700000000000LL, &ev, NULL,
                                               0) != ITD_REASON_OK)
                                die("decode", "failed");
        } else if (!strcmp(s, "state")) {
                for (long i = 0; i < n; i++) {
                        itd_event_t *e = &c->evs[i % POOL];
                        /* a later pass over the pool moves on in time */
                        itd_event_t cur = *e;
                        cur.ts_ms += (i / POOL) * 3600000LL;
                        itd_state_update(c->st, &cur, itd_user_hash(cur.user_id), c->x, c->ids, &top);
                }
        } else if (!strcmp(s, "forward")) {
                float p[BATCH], next[BATCH * ITD_NEXT__COUNT];
                for (long i = 0; i < n; i += BATCH) {
                        size_t off = (size_t)(i % (POOL - BATCH));
                        itd_model_predict(c->model, c->x + off * c->dim,
                                          c->ids + off * ITD_SPARSE_IDS,
                                          BATCH, p, next);
                }
        } else if (!strcmp(s, "train")) {
                for (long i = 0; i < n; i += BATCH) {
                        size_t off = (size_t)(i % (POOL - BATCH));
                        itd_model_train(c->model, c->x + off * c->dim,
                                        c->ids + off * ITD_SPARSE_IDS,
                                        c->y + off, c->next + off, BATCH,
                                        NULL);
                }
        } else if (!strcmp(s, "encode")) {
                for (long i = 0; i < n; i++)
                        if (itd_codec_encode_prediction(c->codec, &c->pred, -1,
                                                        c->buf, sizeof c->buf,
                                                        &len))
                                die("encode", "failed");
        }
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: bench_ir decode|state|forward|train|"
                                "encode N\n");
                return 2;
        }
        ctx_t c = {.stage = argv[1]};
        long n = atol(argv[2]);
        char err[256];
        itd_state_conf_t sc = state_conf();
        c.dim = itd_features_dim(&sc);
        c.codec = itd_codec_new(err, sizeof err);
        if (!c.codec)
                die("codec", err);
        c.evs = sim_events(POOL);

        /* decode: a real event, bare Avro as `intentd load` writes */
        itd_input_conf_t ic;
        itd_conf_input_defaults(&ic);
        ic.format = ITD_INPUT_AVRO;
        ic.framing = ITD_FRAMING_BARE;
        if (!(c.dec = itd_decoder_new(&ic, NULL, err, sizeof err)))
                die("decoder", err);
        if (itd_codec_encode_event(c.codec, &c.evs[7], -1, c.buf, sizeof c.buf,
                                   &c.len))
                die("encode", "event");

        /* state, and the model's inputs: features of the simulator's
         * events through a state that has seen them */
        if (!(c.st = itd_state_new(&sc, err, sizeof err)))
                die("state", err);
        float *x = calloc(POOL * c.dim, sizeof *x);
        uint32_t *ids = calloc(POOL * ITD_SPARSE_IDS, sizeof *ids);
        c.y = calloc(POOL, sizeof *c.y);
        c.next = calloc(POOL, sizeof *c.next);
        itd_topcats_t top;
        for (size_t i = 0; i < POOL; i++) {
                itd_state_update(c.st, &c.evs[i], itd_user_hash(c.evs[i].user_id), x + i * c.dim,
                                 ids + i * ITD_SPARSE_IDS, &top);
                c.y[i] = c.evs[i].type == ITD_EV_PURCHASE;
                c.next[i] = (int)(i % ITD_NEXT__COUNT);
        }
        c.x = x;
        c.ids = ids;
        if (!strcmp(c.stage, "state")) {
                /* the loop writes one row at a time */
                c.x = calloc(c.dim, sizeof *c.x);
                c.ids = calloc(ITD_SPARSE_IDS, sizeof *c.ids);
        }

        itd_model_conf_t mc;
        itd_model_conf_defaults(&mc, ITD_MODEL_KIND_MLP, c.dim,
                                ITD_SPARSE_FIELDS, ITD_SPARSE_SLOTS);
        mc.mlp.max_batch = BATCH;
        if (!(c.model = itd_model_new(&mc, err, sizeof err)))
                die("model", err);
        /* warm: moments and embedding rows touched once */
        itd_model_train(c.model, x, ids, c.y, c.next, BATCH, NULL);

        itd_prediction_make_id(&c.pred, "intentd.events", 3, 81234);
        strcpy(c.pred.user_id, c.evs[7].user_id);
        c.pred.event_ts_ms = c.evs[7].ts_ms;
        c.pred.predicted_at_ms = c.evs[7].ts_ms + 3;
        c.pred.purchase_probability = 0.42f;
        c.pred.next_action = ITD_NEXT_VIEW;
        for (int i = 0; i < ITD_NEXT__COUNT; i++)
                c.pred.next_probs[i] = 0.2f;
        c.pred.n_top_categories = 1;
        strcpy(c.pred.top_categories[0], c.evs[7].category);
        c.pred.top_category_scores[0] = 1.0f;

        if (strcmp(c.stage, "decode") && strcmp(c.stage, "state") &&
            strcmp(c.stage, "forward") && strcmp(c.stage, "train") &&
            strcmp(c.stage, "encode"))
                die("unknown stage", c.stage);
        ir_loop(&c, n);
        printf("{\"bench\":\"ir_run\",\"stage\":\"%s\",\"n\":%ld}\n", c.stage,
               n);
        itd_model_destroy(c.model);
        itd_state_destroy(c.st);
        itd_decoder_destroy(c.dec);
        itd_codec_destroy(c.codec);
        return 0;
}
