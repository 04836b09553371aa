/*
 * test_uci.c - learnability on real data: the UCI Online Shoppers
 * Purchasing Intention sessions (shared data, skipped when absent).
 *
 * Features are built here, not by the pipeline: log1p of page counts and
 * durations, the Google-Analytics rates as they are, log1p of PageValues,
 * SpecialDay, one-hot Month and VisitorType, the Weekend flag; the coded
 * categories (OperatingSystems, Browser, Region, TrafficType) go in as
 * sparse ids through the embeddings. A fixed-seed shuffle, an 80/20 split,
 * a few epochs of mini-batches through itd_mlp_train, then the held-out
 * AUC from the progressive-validation accumulator.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "intentd/eval_progressive.h"
#include "intentd/mlp.h"
#include "testutil.h"

#define UCI_FILE "uci_online_shoppers_intention/online_shoppers_intention.csv"
#define UCI_COLS 18
#define UCI_MAX_ROWS 13000

enum { N_DENSE = 24, N_FIELDS = 4, EPOCHS = 8, BATCH = 32 };

/*
 * Published reference: gradient boosting with feature selection reaches
 * 0.937 held-out (PMC10121810); LR / XGBoost / MLP score 0.917 / 0.934 /
 * 0.923 in 5-fold CV. 0.90 leaves room for split noise on
 * ~2,500 test rows (~0.01) while still failing a model that learns little.
 */
#define MIN_AUC 0.90

static const char *const months[] = {"Feb", "Mar", "May", "June", "Jul",
                                     "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const visitors[] = {"Returning_Visitor", "New_Visitor",
                                       "Other"};

static int index_of(const char *s, const char *const *names, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(s, names[i]) == 0)
                        return (int)i;
        return -1;
}

/* One CSV line into x (N_DENSE), ids (N_FIELDS), y; returns 0 or -1. */
static int parse_row(char *line, float *x, uint32_t *ids, float *y) {
        char *col[UCI_COLS];
        size_t n = 0;
        line[strcspn(line, "\r\n")] = '\0';
        for (char *tok = strtok(line, ","); tok && n < UCI_COLS;
             tok = strtok(NULL, ","))
                col[n++] = tok;
        if (n != UCI_COLS)
                return -1;
        double v[10];
        for (size_t i = 0; i < 10; i++)
                v[i] = strtod(col[i], NULL);
        size_t d = 0;
        /* counts and durations (columns 0-5): heavy-tailed, so log1p */
        for (size_t i = 0; i < 6; i++)
                x[d++] = (float)log1p(fmax(v[i], 0.0));
        x[d++] = (float)v[6]; /* BounceRates, 0-0.2 */
        x[d++] = (float)v[7]; /* ExitRates, 0-0.2 */
        x[d++] = (float)log1p(fmax(v[8], 0.0)); /* PageValues */
        x[d++] = (float)v[9];                   /* SpecialDay, 0-1 */
        int month = index_of(col[10], months, 10);
        int visitor = index_of(col[15], visitors, 3);
        if (month < 0 || visitor < 0)
                return -1;
        for (int i = 0; i < 10; i++)
                x[d++] = i == month ? 1.0f : 0.0f;
        for (int i = 0; i < 3; i++)
                x[d++] = i == visitor ? 1.0f : 0.0f;
        x[d++] = strcmp(col[16], "TRUE") == 0 ? 1.0f : 0.0f;
        cr_assert_eq(d, N_DENSE);
        for (size_t f = 0; f < N_FIELDS; f++)
                ids[f] = (uint32_t)strtoul(col[11 + f], NULL, 10);
        *y = strcmp(col[17], "TRUE") == 0 ? 1.0f : 0.0f;
        return 0;
}

static uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
}

Test(uci, mlp_reaches_published_auc_on_online_shoppers, .timeout = 60) {
        char path[4096];
        if (!tu_shared_data(UCI_FILE, path, sizeof(path)))
                cr_skip_test("%s: shared data absent", UCI_FILE);
        FILE *fp = fopen(path, "r");
        cr_assert_not_null(fp, "open %s", path);

        float *x = malloc(UCI_MAX_ROWS * N_DENSE * sizeof(float));
        uint32_t *ids = malloc(UCI_MAX_ROWS * N_FIELDS * sizeof(uint32_t));
        float *y = malloc(UCI_MAX_ROWS * sizeof(float));
        char line[1024];
        size_t n = 0, lineno = 0;
        cr_assert_not_null(fgets(line, sizeof(line), fp), "empty file");
        cr_assert(strncmp(line, "Administrative,", 15) == 0, "header: %s",
                  line);
        while (fgets(line, sizeof(line), fp) && n < UCI_MAX_ROWS) {
                lineno++;
                cr_assert_eq(parse_row(line, x + n * N_DENSE,
                                       ids + n * N_FIELDS, y + n),
                             0, "%s: bad row %zu", UCI_FILE, lineno + 1);
                n++;
        }
        fclose(fp);
        cr_assert_eq(n, 12330, "rows read");

        /* Fisher-Yates with a fixed seed: the same split every run */
#ifndef UCI_SHUFFLE_SEED
#define UCI_SHUFFLE_SEED 20240601
#endif
        uint64_t seed = UCI_SHUFFLE_SEED;
        size_t *order = malloc(n * sizeof(size_t));
        for (size_t i = 0; i < n; i++)
                order[i] = i;
        for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t)(splitmix64(&seed) % (i + 1));
                size_t t = order[i];
                order[i] = order[j];
                order[j] = t;
        }
        size_t n_train = n * 8 / 10;

        itd_mlp_conf_t conf;
        itd_mlp_conf_defaults(&conf, N_DENSE, N_FIELDS, 1);
        conf.max_batch = BATCH;
        /* as the daemon ships it (model.linear.newton, no wide path):
         * every input describes the session, none is a lifetime count.
         * Held-out AUC 0.926 so, 0.927 with the SGD wide path instead
         * (2026-12-05) */
        conf.wide = 0;
        conf.n_linear = N_DENSE;
        for (size_t d = 0; d < N_DENSE; d++)
                conf.linear_input[d] = d;
        char err[256];
        itd_mlp_t *m = itd_mlp_new(&conf, err, sizeof(err));
        cr_assert_not_null(m, "%s", err);

        float bx[BATCH * N_DENSE], by[BATCH];
        uint32_t bids[BATCH * N_FIELDS];
        for (int ep = 0; ep < EPOCHS; ep++) {
                double loss_sum = 0.0;
                size_t steps = 0;
                for (size_t i0 = 0; i0 < n_train; i0 += BATCH) {
                        size_t B = n_train - i0 < BATCH ? n_train - i0 : BATCH;
                        for (size_t b = 0; b < B; b++) {
                                size_t r = order[i0 + b];
                                memcpy(bx + b * N_DENSE, x + r * N_DENSE,
                                       sizeof(float) * N_DENSE);
                                memcpy(bids + b * N_FIELDS, ids + r * N_FIELDS,
                                       sizeof(uint32_t) * N_FIELDS);
                                by[b] = y[r];
                        }
                        float loss;
                        cr_assert_eq(itd_mlp_train(m, bx, bids, by, NULL, B,
                                                   &loss),
                                     ITD_OK);
                        loss_sum += loss;
                        steps++;
                }
                cr_log_info("uci epoch %d: train log loss %.4f", ep + 1,
                            loss_sum / (double)steps);
        }

        itd_eval_t *eval = itd_eval_new(0.5f);
        for (size_t i = n_train; i < n; i++) {
                size_t r = order[i];
                float p;
                itd_mlp_predict(m, x + r * N_DENSE, ids + r * N_FIELDS, 1, &p,
                                NULL);
                itd_eval_add(eval, p, y[r] > 0.5f, NULL, ITD_NEXT_VIEW);
        }
        itd_eval_summary_t s;
        itd_eval_summary(eval, &s);
        printf("uci online shoppers: held-out AUC %.4f (+-%.4f) log loss "
               "%.4f accuracy %.4f F1 %.4f ECE %.4f on %llu sessions, "
               "%lld steps\n",
               s.auc, s.auc_err_bound, s.logloss, s.accuracy, s.f1, s.ece,
               (unsigned long long)s.n, (long long)itd_mlp_steps(m));
        cr_expect_geq(s.auc, MIN_AUC, "held-out AUC %.4f", s.auc);
        cr_expect_eq(itd_mlp_skipped(m), 0);

        itd_eval_destroy(eval);
        itd_mlp_destroy(m);
        free(order);
        free(x);
        free(ids);
        free(y);
}
