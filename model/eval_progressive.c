/*
 * eval_progressive.c - progressive-validation accumulators: every score is
 * judged when its label arrives, in constant memory.
 *
 * AUC comes from two score histograms (positives, negatives) of
 * ITD_EVAL_BINS equal-width bins on [0, 1]. Pairs in different bins are
 * ordered exactly; pairs within one bin are counted as ties (1/2). The true
 * share of such a pair is somewhere in [0, 1], so the error is at most
 * sum_b pos_b neg_b / (2 P N), reported as auc_err_bound.
 *
 * Accumulators merge by adding their counts, which is how the sliding
 * window (itd_eval_window_t) is built: a ring of per-chunk accumulators.
 * A snapshot writes the counts field by field (never the struct's bytes,
 * whose padding is unspecified) under a CRC32C.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/crc32c.h"
#include "intentd/eval_progressive.h"
#include "intentd/mem.h"
#include "intentd/snapshot.h"

#define ECE_BINS 10
#define PROB_MIN 1e-7 /* log loss clamps scores to [PROB_MIN, 1 - PROB_MIN] */

struct itd_eval_s {
        float threshold;
        uint64_t pos[ITD_EVAL_BINS], neg[ITD_EVAL_BINS];
        uint64_t n, positives;
        uint64_t tp, fp, tn, fn;
        double logloss_sum;
        /* calibration: per equal-width score bin, count, sum of scores and
         * of labels */
        uint64_t ece_n[ECE_BINS];
        double ece_score[ECE_BINS], ece_label[ECE_BINS];
        uint64_t next_n, next_correct;
        double next_logloss_sum;
};

itd_eval_t *itd_eval_new(float threshold) {
        itd_eval_t *eval = itd_xcalloc(1, sizeof(*eval));
        eval->threshold = threshold;
        return eval;
}

void itd_eval_destroy(itd_eval_t *eval) { free(eval); }

void itd_eval_reset(itd_eval_t *eval) {
        float threshold = eval->threshold;
        memset(eval, 0, sizeof(*eval));
        eval->threshold = threshold;
}

static size_t bin_of(double score, size_t bins) {
        /* score is finite and in [0, 1]; 1.0 goes to the last bin */
        size_t b = (size_t)(score * (double)bins);
        return b < bins ? b : bins - 1;
}

static double clamp_prob(double p) {
        if (p < PROB_MIN)
                return PROB_MIN;
        return p > 1.0 - PROB_MIN ? 1.0 - PROB_MIN : p;
}

void itd_eval_add(itd_eval_t *eval, float score, int label,
                  const float *next_probs, itd_next_t next) {
        /*
         * A non-finite score has no place in a histogram or a log loss; the
         * model counts its own non-finite steps, so such an example is left
         * out here rather than poisoning every metric.
         */
        if (!isfinite(score))
                return;
        double s = score < 0.0f ? 0.0 : score > 1.0f ? 1.0 : score;
        int y = label != 0;
        eval->n++;
        eval->positives += (uint64_t)y;
        if (y)
                eval->pos[bin_of(s, ITD_EVAL_BINS)]++;
        else
                eval->neg[bin_of(s, ITD_EVAL_BINS)]++;

        double p = clamp_prob(s);
        eval->logloss_sum -= y ? log(p) : log(1.0 - p);

        int predicted = score >= eval->threshold;
        if (predicted && y)
                eval->tp++;
        else if (predicted)
                eval->fp++;
        else if (y)
                eval->fn++;
        else
                eval->tn++;

        size_t eb = bin_of(s, ECE_BINS);
        eval->ece_n[eb]++;
        eval->ece_score[eb] += s;
        eval->ece_label[eb] += y;

        if (next_probs && (int)next >= 0 && next < ITD_NEXT__COUNT) {
                size_t argmax = 0;
                for (size_t k = 1; k < ITD_NEXT__COUNT; k++)
                        if (next_probs[k] > next_probs[argmax])
                                argmax = k;
                eval->next_n++;
                eval->next_correct += argmax == (size_t)next;
                eval->next_logloss_sum -= log(clamp_prob(next_probs[next]));
        }
}

static double ratio_or_zero(double num, double den) {
        return den > 0.0 ? num / den : 0.0;
}

void itd_eval_summary(const itd_eval_t *eval, itd_eval_summary_t *out) {
        memset(out, 0, sizeof(*out));
        out->n = eval->n;
        out->positives = eval->positives;
        out->auc = out->auc_err_bound = NAN;
        out->base_rate = out->logloss = out->accuracy = out->ece = NAN;
        out->next_accuracy = out->next_logloss = NAN;
        out->next_n = eval->next_n;
        if (eval->next_n) {
                out->next_accuracy =
                    (double)eval->next_correct / (double)eval->next_n;
                out->next_logloss =
                    eval->next_logloss_sum / (double)eval->next_n;
        }
        if (eval->n == 0)
                return;
        double n = (double)eval->n;
        out->base_rate = (double)eval->positives / n;
        out->logloss = eval->logloss_sum / n;
        out->accuracy = (double)(eval->tp + eval->tn) / n;
        /* an undefined precision or recall (nothing predicted or present)
         * reads 0, as scikit-learn's zero_division=0 */
        out->precision =
            ratio_or_zero((double)eval->tp, (double)(eval->tp + eval->fp));
        out->recall =
            ratio_or_zero((double)eval->tp, (double)(eval->tp + eval->fn));
        out->f1 = ratio_or_zero(2.0 * out->precision * out->recall,
                                out->precision + out->recall);

        double ece = 0.0;
        for (size_t b = 0; b < ECE_BINS; b++)
                if (eval->ece_n[b])
                        ece +=
                            fabs(eval->ece_score[b] - eval->ece_label[b]) / n;
        out->ece = ece;

        uint64_t P = eval->positives, N = eval->n - eval->positives;
        if (P == 0 || N == 0)
                return;
        /* walk the bins upwards: a positive beats every negative below it */
        double wins = 0.0, ties = 0.0, neg_below = 0.0;
        for (size_t b = 0; b < ITD_EVAL_BINS; b++) {
                wins += (double)eval->pos[b] * neg_below;
                ties += (double)eval->pos[b] * (double)eval->neg[b];
                neg_below += (double)eval->neg[b];
        }
        double pairs = (double)P * (double)N;
        out->auc = (wins + 0.5 * ties) / pairs;
        out->auc_err_bound = 0.5 * ties / pairs;
}

void itd_eval_merge(itd_eval_t *dst, const itd_eval_t *src) {
        for (size_t b = 0; b < ITD_EVAL_BINS; b++) {
                dst->pos[b] += src->pos[b];
                dst->neg[b] += src->neg[b];
        }
        dst->n += src->n;
        dst->positives += src->positives;
        dst->tp += src->tp;
        dst->fp += src->fp;
        dst->tn += src->tn;
        dst->fn += src->fn;
        dst->logloss_sum += src->logloss_sum;
        for (size_t b = 0; b < ECE_BINS; b++) {
                dst->ece_n[b] += src->ece_n[b];
                dst->ece_score[b] += src->ece_score[b];
                dst->ece_label[b] += src->ece_label[b];
        }
        dst->next_n += src->next_n;
        dst->next_correct += src->next_correct;
        dst->next_logloss_sum += src->next_logloss_sum;
}

/* ---- sliding window ---------------------------------------------------- */

struct itd_eval_window_s {
        size_t n_chunks;
        uint64_t chunk_size; /* examples per chunk */
        size_t head;         /* the chunk being filled */
        itd_eval_t *chunk;   /* (n_chunks) */
        itd_eval_t *merged;  /* scratch for summaries */
};

itd_eval_window_t *itd_eval_window_new(float threshold, uint64_t window,
                                       size_t chunks) {
        if (chunks == 0 || window < chunks)
                return NULL;
        itd_eval_window_t *evalw = itd_xcalloc(1, sizeof(*evalw));
        evalw->n_chunks = chunks;
        evalw->chunk_size = (window + chunks - 1) / chunks;
        evalw->chunk = itd_xcalloc(chunks, sizeof(itd_eval_t));
        for (size_t c = 0; c < chunks; c++)
                evalw->chunk[c].threshold = threshold;
        evalw->merged = itd_eval_new(threshold);
        return evalw;
}

void itd_eval_window_destroy(itd_eval_window_t *evalw) {
        if (!evalw)
                return;
        free(evalw->chunk);
        itd_eval_destroy(evalw->merged);
        free(evalw);
}

void itd_eval_window_reset(itd_eval_window_t *evalw) {
        for (size_t c = 0; c < evalw->n_chunks; c++)
                itd_eval_reset(&evalw->chunk[c]);
        evalw->head = 0;
}

void itd_eval_window_add(itd_eval_window_t *evalw, float score, int label,
                         const float *next_probs, itd_next_t next) {
        if (!isfinite(score))
                return;
        /*
         * Rotate only when an example arrives for a full chunk, so the
         * window never holds fewer than window - chunk + 1 examples once
         * warm (rotating eagerly would leave an empty chunk behind).
         */
        if (evalw->chunk[evalw->head].n >= evalw->chunk_size) {
                evalw->head = (evalw->head + 1) % evalw->n_chunks;
                itd_eval_reset(&evalw->chunk[evalw->head]);
        }
        itd_eval_add(&evalw->chunk[evalw->head], score, label, next_probs,
                     next);
}

void itd_eval_window_summary(itd_eval_window_t *evalw,
                             itd_eval_summary_t *out) {
        itd_eval_reset(evalw->merged);
        for (size_t c = 0; c < evalw->n_chunks; c++)
                itd_eval_merge(evalw->merged, &evalw->chunk[c]);
        itd_eval_summary(evalw->merged, out);
}

void itd_eval_set_threshold(itd_eval_t *eval, float threshold) {
        /* Only the decision counts depend on it; the judged examples so far
         * keep the threshold they were counted with. */
        eval->threshold = threshold;
}

/* ---- snapshots --------------------------------------------------------- */

#define SNAP_MAGIC "ITDPV\0\0\0"
#define SNAP_MAGIC_BYTES 8
#define SNAP_VERSION 1
#define SNAP_HEADER_BYTES (SNAP_MAGIC_BYTES + 4 * 4)
#define SNAP_CRC_BYTES 4

/* Payload: pos, neg, 6 counts, logloss_sum, 3 calibration arrays, next_n,
 * next_correct, next_logloss_sum; 8 bytes each. */
#define SNAP_PAYLOAD_BYTES \
        (8 * (2 * (size_t)ITD_EVAL_BINS + 6 + 1 + 3 * ECE_BINS + 3))

static unsigned char *put(unsigned char *w, const void *v, size_t n) {
        memcpy(w, v, n);
        return w + n;
}

static const unsigned char *get(const unsigned char *r, void *v, size_t n) {
        memcpy(v, r, n);
        return r + n;
}

itd_err_t itd_eval_snapshot(const itd_eval_t *eval, FILE *out, char *errstr,
                            size_t errstr_size) {
        const size_t total =
            SNAP_HEADER_BYTES + SNAP_PAYLOAD_BYTES + SNAP_CRC_BYTES;
        unsigned char *buf = itd_xmalloc(total), *w = buf;
        const uint32_t head[4] = {SNAP_VERSION, ITD_EVAL_BINS, ECE_BINS,
                                  (uint32_t)SNAP_PAYLOAD_BYTES};
        w = put(w, SNAP_MAGIC, SNAP_MAGIC_BYTES);
        w = put(w, head, sizeof head);
        w = put(w, eval->pos, sizeof eval->pos);
        w = put(w, eval->neg, sizeof eval->neg);
        const uint64_t counts[6] = {eval->n,  eval->positives, eval->tp,
                                    eval->fp, eval->tn,        eval->fn};
        w = put(w, counts, sizeof counts);
        w = put(w, &eval->logloss_sum, sizeof eval->logloss_sum);
        w = put(w, eval->ece_n, sizeof eval->ece_n);
        w = put(w, eval->ece_score, sizeof eval->ece_score);
        w = put(w, eval->ece_label, sizeof eval->ece_label);
        w = put(w, &eval->next_n, sizeof eval->next_n);
        w = put(w, &eval->next_correct, sizeof eval->next_correct);
        w = put(w, &eval->next_logloss_sum, sizeof eval->next_logloss_sum);
        uint32_t crc = itd_crc32c(0, buf, (size_t)(w - buf));
        w = put(w, &crc, sizeof crc);
        itd_err_t err = ITD_OK;
        if ((size_t)(w - buf) != total ||
            fwrite(buf, 1, total, out) != total) {
                itd_errf(errstr, errstr_size,
                       "writing the progressive-metrics snapshot: %s",
                       ferror(out) ? "write error" : "short write");
                err = ITD_ERR_IO;
        }
        free(buf);
        return err;
}

/* The counts of a snapshot that passed its CRC must still agree with each
 * other: a writer bug, not a flipped bit, would show here. */
static const char *inconsistency(const itd_eval_t *eval) {
        uint64_t pos = 0, neg = 0, ece = 0;
        for (size_t b = 0; b < ITD_EVAL_BINS; b++) {
                pos += eval->pos[b];
                neg += eval->neg[b];
        }
        for (size_t b = 0; b < ECE_BINS; b++)
                ece += eval->ece_n[b];
        if (pos != eval->positives || pos + neg != eval->n)
                return "the score histograms do not add up to n and "
                       "positives";
        if (eval->tp + eval->fp + eval->tn + eval->fn != eval->n ||
            eval->tp + eval->fn != eval->positives)
                return "the confusion counts do not add up to n and "
                       "positives";
        if (ece != eval->n)
                return "the calibration bins do not add up to n";
        if (eval->next_correct > eval->next_n)
                return "more correct next actions than judged ones";
        if (!isfinite(eval->logloss_sum) || !isfinite(eval->next_logloss_sum))
                return "a non-finite log-loss sum";
        return NULL;
}

itd_err_t itd_eval_restore(itd_eval_t *eval, FILE *in, char *errstr,
                           size_t errstr_size) {
        unsigned char head[SNAP_HEADER_BYTES];
        if (fread(head, 1, sizeof head, in) != sizeof head) {
                itd_errf(errstr, errstr_size,
                       "progressive-metrics snapshot truncated: %s",
                       ferror(in) ? "read error" : "no complete header");
                return ITD_ERR_CORRUPT;
        }
        uint32_t h[4];
        memcpy(h, head + SNAP_MAGIC_BYTES, sizeof h);
        if (memcmp(head, SNAP_MAGIC, SNAP_MAGIC_BYTES) != 0) {
                itd_errf(errstr, errstr_size,
                       "not a progressive-metrics snapshot (bad magic)");
                return ITD_ERR_CORRUPT;
        }
        /*
         * The size is read before the CRC can vouch for it, so it is only
         * trusted within a bound: a flipped bit there reads as truncation
         * or a CRC mismatch, never as a huge allocation.
         */
        uint32_t payload = h[3];
        if (payload > 64 * SNAP_PAYLOAD_BYTES) {
                itd_errf(errstr, errstr_size,
                       "corrupt progressive-metrics snapshot: payload of "
                       "%" PRIu32 " bytes (this build writes %zu)",
                       payload, (size_t)SNAP_PAYLOAD_BYTES);
                return ITD_ERR_CORRUPT;
        }
        size_t rest = (size_t)payload + SNAP_CRC_BYTES;
        unsigned char *buf = itd_xmalloc(sizeof head + rest);
        memcpy(buf, head, sizeof head);
        itd_err_t err = ITD_OK;
        uint32_t stored;
        if (fread(buf + sizeof head, 1, rest, in) != rest) {
                itd_errf(errstr, errstr_size,
                       "progressive-metrics snapshot truncated: fewer than "
                       "the %zu bytes its header announces",
                       sizeof head + rest);
                err = ITD_ERR_CORRUPT;
                goto done;
        }
        memcpy(&stored, buf + sizeof head + payload, sizeof stored);
        if (itd_crc32c(0, buf, sizeof head + payload) != stored) {
                itd_errf(errstr, errstr_size,
                       "corrupt progressive-metrics snapshot: CRC32C "
                       "mismatch");
                err = ITD_ERR_CORRUPT;
                goto done;
        }
        if (h[0] != SNAP_VERSION || h[1] != ITD_EVAL_BINS ||
            h[2] != ECE_BINS) {
                itd_errf(errstr, errstr_size,
                       "progressive-metrics snapshot of version %" PRIu32
                       " with %" PRIu32 "+%" PRIu32
                       " bins; this build reads version %d with %d+%d",
                       h[0], h[1], h[2], SNAP_VERSION, ITD_EVAL_BINS,
                       ECE_BINS);
                err = ITD_ERR_INCOMPATIBLE;
                goto done;
        }
        if (payload != SNAP_PAYLOAD_BYTES) {
                itd_errf(errstr, errstr_size,
                       "corrupt progressive-metrics snapshot: payload of "
                       "%" PRIu32 " bytes, version %d has %zu",
                       payload, SNAP_VERSION, (size_t)SNAP_PAYLOAD_BYTES);
                err = ITD_ERR_CORRUPT;
                goto done;
        }
        itd_eval_t *tmp = itd_xcalloc(1, sizeof *tmp);
        const unsigned char *r = buf + sizeof head;
        r = get(r, tmp->pos, sizeof tmp->pos);
        r = get(r, tmp->neg, sizeof tmp->neg);
        uint64_t counts[6];
        r = get(r, counts, sizeof counts);
        tmp->n = counts[0];
        tmp->positives = counts[1];
        tmp->tp = counts[2];
        tmp->fp = counts[3];
        tmp->tn = counts[4];
        tmp->fn = counts[5];
        r = get(r, &tmp->logloss_sum, sizeof tmp->logloss_sum);
        r = get(r, tmp->ece_n, sizeof tmp->ece_n);
        r = get(r, tmp->ece_score, sizeof tmp->ece_score);
        r = get(r, tmp->ece_label, sizeof tmp->ece_label);
        r = get(r, &tmp->next_n, sizeof tmp->next_n);
        r = get(r, &tmp->next_correct, sizeof tmp->next_correct);
        get(r, &tmp->next_logloss_sum, sizeof tmp->next_logloss_sum);
        const char *why = inconsistency(tmp);
        if (why) {
                itd_errf(errstr, errstr_size,
                       "corrupt progressive-metrics snapshot: %s", why);
                err = ITD_ERR_CORRUPT;
        } else {
                tmp->threshold = eval->threshold;
                *eval = *tmp;
        }
        free(tmp);
done:
        free(buf);
        return err;
}
