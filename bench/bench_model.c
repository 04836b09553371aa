/*
 * bench_model.c - speed of the model: forward and training ns/example at
 * batch 1, 32, 64 (the daemon's model.batch.size) and 256 for the default
 * MLP shape, the training GFLOP/s of its dense layers against the
 * single-thread sgemm peak measured in the same run, and the logistic
 * baseline's ns/example. Times are the thread's CPU time (see now_s).
 *
 * Prints a table, then one JSON object on the last line
 * ({"bench":"model",...}) for `make bench` to collect. Measured, never
 * asserted: speed depends on the machine.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "intentd/mlp.h"
#include "intentd/model.h"
#include "intentd/prediction.h"
#include "intentd/state.h"

#define MIN_SECONDS 0.4 /* per measurement: long enough to average noise */
#define N_BATCHES 4

static const size_t batches[N_BATCHES] = {1, 32, 64, 256};

/*
 * CPU time of this thread, not wall time: on a shared machine the process
 * is descheduled for stretches that would count against whichever
 * measurement they fell in, the sgemm peak included. OpenBLAS runs on the
 * calling thread (one BLAS thread), so every FLOP is counted here.
 */
static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;

static double urand(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (double)(rng >> 11) * 0x1.0p-53;
}

/*
 * Best-of-7 single-thread sgemm 256x256x256 (row-major, no transposes):
 * the practical peak the MLP's matrix products can hope for here.
 */
static double sgemm_peak_gflops(void) {
        enum { N = 256 };
        float *a = malloc(N * N * sizeof(float));
        float *b = malloc(N * N * sizeof(float));
        float *c = malloc(N * N * sizeof(float));
        for (size_t i = 0; i < N * N; i++) {
                a[i] = (float)urand();
                b[i] = (float)urand();
        }
        double best = 0.0;
        for (int run = 0; run < 7; run++) {
                int reps = 0;
                double t0 = now_s(), t;
                do {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                    N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
                        reps++;
                        t = now_s() - t0;
                } while (t < 0.1);
                double gf = 2.0 * N * N * N * reps / t * 1e-9;
                best = gf > best ? gf : best;
        }
        free(a);
        free(b);
        free(c);
        return best;
}

typedef struct inputs_s {
        float *x;
        uint32_t *ids;
        float *y;
        int *next;
} inputs_t;

enum { POOL = 4096 }; /* distinct examples cycled through */

static inputs_t make_inputs(size_t n_dense, size_t n_ids) {
        inputs_t in;
        in.x = malloc(POOL * n_dense * sizeof(float));
        in.ids = malloc(POOL * n_ids * sizeof(uint32_t));
        in.y = malloc(POOL * sizeof(float));
        in.next = malloc(POOL * sizeof(int));
        for (size_t i = 0; i < POOL * n_dense; i++)
                in.x[i] = (float)(2.0 * urand() - 0.5);
        for (size_t i = 0; i < POOL * n_ids; i++)
                in.ids[i] = urand() < 0.25 ? ITD_SPARSE_NONE
                                           : (uint32_t)(urand() * 1e6);
        for (size_t i = 0; i < POOL; i++) {
                in.y[i] = urand() < 0.05 ? 1.0f : 0.0f;
                in.next[i] = (int)(urand() * ITD_NEXT__COUNT);
        }
        return in;
}

static void free_inputs(inputs_t *in) {
        free(in->x);
        free(in->ids);
        free(in->y);
        free(in->next);
}

/* ns per example of predict (train = 0), train (train = 1) or predict
 * with explanations (train = 2, predict.explain) at B */
static double measure(itd_model_t *m, const inputs_t *in, size_t n_dense,
                      size_t n_ids, size_t B, int train) {
        float p[256], next[256 * ITD_NEXT__COUNT];
        static float contrib[256 * 256];
        size_t off = 0, examples = 0;
        double t0 = now_s(), t;
        do {
                for (int r = 0; r < 16; r++) {
                        if (off + B > POOL)
                                off = 0;
                        const float *x = in->x + off * n_dense;
                        const uint32_t *ids = in->ids + off * n_ids;
                        if (train == 2 && n_dense <= 256)
                                itd_model_predict_explain(m, x, ids, B, p,
                                                          next, contrib);
                        else if (train)
                                itd_model_train(m, x, ids, in->y + off,
                                                in->next + off, B, NULL);
                        else
                                itd_model_predict(m, x, ids, B, p, next);
                        off += B;
                        examples += B;
                }
                t = now_s() - t0;
        } while (t < MIN_SECONDS);
        return t * 1e9 / (double)examples;
}

int main(void) {
        /* the daemon's defaults: windows 5m, 1h, 24h, 7d */
        itd_state_conf_t sc;
        memset(&sc, 0, sizeof(sc));
        sc.n_windows = 4;
        sc.window_ms[0] = 5 * 60000;
        sc.window_ms[1] = 3600000;
        sc.window_ms[2] = 24 * 3600000ll;
        sc.window_ms[3] = 7 * 24 * 3600000ll;
        const size_t n_dense = itd_features_dim(&sc);
        const size_t n_ids = ITD_SPARSE_IDS;

        itd_model_conf_t mc, lc;
        itd_model_conf_defaults(&mc, ITD_MODEL_KIND_MLP, n_dense,
                                ITD_SPARSE_FIELDS, ITD_SPARSE_SLOTS);
        mc.mlp.max_batch = 256;
        /* and, as the daemon (model.user.offset), its two offsets */
        char nm[64];
        for (size_t i = 0; i < n_dense; i++) {
                itd_features_name(&sc, i, nm, sizeof nm);
                if (!strcmp(nm, "label_logodds") ||
                    !strcmp(nm, "purchase_logodds"))
                        mc.mlp.offset_input[mc.mlp.n_offsets++] = i;
        }
        itd_model_conf_defaults(&lc, ITD_MODEL_KIND_LOGISTIC, n_dense,
                                ITD_SPARSE_FIELDS, ITD_SPARSE_SLOTS);
        lc.mlp.max_batch = 256;
        char err[256];
        itd_model_t *mlp = itd_model_new(&mc, err, sizeof(err));
        itd_model_t *lr = mlp ? itd_model_new(&lc, err, sizeof(err)) : NULL;
        if (!mlp || !lr) {
                fprintf(stderr, "bench_model: %s\n", err);
                return 1;
        }
        /* itd_mlp_new set one BLAS thread, as the daemon runs */
        inputs_t in = make_inputs(n_dense, n_ids);

        /* FLOPs of the dense layers per example: 2 IN OUT per matmul */
        const itd_mlp_conf_t *c = &mc.mlp;
        double in_dim = (double)(n_dense + c->n_fields * c->emb_dim);
        double macs = 0.0, prev = in_dim;
        for (size_t l = 0; l < c->n_hidden; l++) {
                macs += prev * (double)c->hidden[l];
                prev = (double)c->hidden[l];
        }
        macs += prev * (1.0 + ITD_NEXT__COUNT); /* the two heads */
        const double fwd_flops = 2.0 * macs;    /* per example */
        const double train_flops = 3.0 * fwd_flops; /* y, dx, dw */

        /*
         * Warm up: an untrained logistic model scores with all-zero
         * weights (FTRL's w = 0 inside the L1 ball costs no sqrt), and
         * fresh Adam moments and embedding rows are not yet in cache.
         */
        for (size_t off = 0; off + 32 <= POOL; off += 32) {
                itd_model_train(mlp, in.x + off * n_dense, in.ids + off * n_ids,
                                in.y + off, in.next + off, 32, NULL);
                itd_model_train(lr, in.x + off * n_dense, in.ids + off * n_ids,
                                in.y + off, in.next + off, 32, NULL);
        }

        double peak = sgemm_peak_gflops();
        double fwd_ns[N_BATCHES], train_ns[N_BATCHES], expl_ns[N_BATCHES];
        double lr_fwd_ns[N_BATCHES], lr_train_ns[N_BATCHES];
        for (size_t i = 0; i < N_BATCHES; i++) {
                fwd_ns[i] = measure(mlp, &in, n_dense, n_ids, batches[i], 0);
                expl_ns[i] = measure(mlp, &in, n_dense, n_ids, batches[i], 2);
                train_ns[i] = measure(mlp, &in, n_dense, n_ids, batches[i], 1);
                lr_fwd_ns[i] = measure(lr, &in, n_dense, n_ids, batches[i], 0);
                lr_train_ns[i] =
                    measure(lr, &in, n_dense, n_ids, batches[i], 1);
        }

        printf("model: mlp %zu dense + %zu x %zu ids -> emb %zu x %zu -> ",
               n_dense, (size_t)ITD_SPARSE_FIELDS, (size_t)ITD_SPARSE_SLOTS,
               c->emb_buckets, c->emb_dim);
        for (size_t l = 0; l < c->n_hidden; l++)
                printf("%zu -> ", c->hidden[l]);
        printf("1 + %d, Adam; %.0f dense FLOP/example forward\n",
               ITD_NEXT__COUNT, fwd_flops);
        printf("sgemm 256x256x256, 1 thread, best of 7: %.1f GFLOP/s\n\n",
               peak);
        printf("%-6s %14s %16s %14s %12s %9s %14s %14s\n", "batch",
               "mlp fwd ns/ex", "+explain ns/ex", "mlp train ns/ex",
               "train GF/s", "of peak", "lr fwd ns/ex", "lr train ns/ex");
        double gflops[N_BATCHES];
        for (size_t i = 0; i < N_BATCHES; i++) {
                gflops[i] = train_flops / train_ns[i];
                printf("%-6zu %14.0f %16.0f %15.0f %12.2f %8.1f%% %14.0f "
                       "%14.0f\n",
                       batches[i], fwd_ns[i], expl_ns[i], train_ns[i],
                       gflops[i],
                       100.0 * gflops[i] / peak, lr_fwd_ns[i],
                       lr_train_ns[i]);
        }

        printf("{\"bench\":\"model\",\"n_dense\":%zu,\"hidden\":[", n_dense);
        for (size_t l = 0; l < c->n_hidden; l++)
                printf("%s%zu", l ? "," : "", c->hidden[l]);
        printf("],\"sgemm_peak_gflops\":%.2f", peak);
        for (size_t i = 0; i < N_BATCHES; i++)
                printf(",\"b%zu\":{\"fwd_ns\":%.1f,\"explain_ns\":%.1f,"
                       "\"train_ns\":%.1f,"
                       "\"train_gflops\":%.3f,\"train_of_peak\":%.4f,"
                       "\"logistic_fwd_ns\":%.1f,\"logistic_train_ns\":%.1f}",
                       batches[i], fwd_ns[i], expl_ns[i], train_ns[i],
                       gflops[i], gflops[i] / peak, lr_fwd_ns[i],
                       lr_train_ns[i]);
        printf("}\n");

        free_inputs(&in);
        itd_model_destroy(mlp);
        itd_model_destroy(lr);
        return 0;
}
