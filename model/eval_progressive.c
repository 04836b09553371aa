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
 * whose padding is unspecified), a section each in the one framing
 * (intentd/frame.h).
 */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/crc32c.h"
#include "intentd/eval_progressive.h"
#include "intentd/frame.h"
#include "intentd/mem.h"

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

#define SNAP_VERSION 2
#define SNAP_WORDS 2 /* the kind's header: u64 ITD_EVAL_BINS, ECE_BINS */
/* At most this many bytes are read for one snapshot: its lengths come
 * before the CRC that vouches for them. */
#define SNAP_MAX_BYTES ((size_t)64 * 8 * (2 * ITD_EVAL_BINS + 64))

/* Version 1, before the one framing: its own magic, native byte order. */
#define LEGACY_MAGIC "ITDPV\0\0\0"
#define LEGACY_MAGIC_BYTES 8
#define LEGACY_VERSION 1
#define LEGACY_HEADER_BYTES (LEGACY_MAGIC_BYTES + 4 * 4)
#define LEGACY_CRC_BYTES 4

/* Payload: pos, neg, 6 counts, logloss_sum, 3 calibration arrays, next_n,
 * next_correct, next_logloss_sum; 8 bytes each. */
#define LEGACY_PAYLOAD_BYTES \
        (8 * (2 * (size_t)ITD_EVAL_BINS + 6 + 1 + 3 * ECE_BINS + 3))

static const unsigned char *get(const unsigned char *r, void *v, size_t n) {
        memcpy(v, r, n);
        return r + n;
}

/* The sections of version 2, one a field (the counts and next-action
 * counts gathered), all in host order here. */
typedef struct snap_fields_s {
        uint64_t counts[6]; /* n, positives, tp, fp, tn, fn */
        uint64_t next[2];   /* next_n, next_correct */
} snap_fields_t;

typedef struct snap_sec_s {
        const char *name;
        uint32_t dtype;
        size_t off;  /* in itd_eval_t, or in snap_fields_t when in_fields */
        size_t size; /* bytes */
        int in_fields;
} snap_sec_t;

#define EVAL_SEC(n, t, f)                                                      \
        {n, t, offsetof(itd_eval_t, f), sizeof(((itd_eval_t *)0)->f), 0}
#define FIELD_SEC(n, t, f)                                                     \
        {n, t, offsetof(snap_fields_t, f), sizeof(((snap_fields_t *)0)->f), 1}

static const snap_sec_t SECS[] = {
    EVAL_SEC("pos", ITD_FRAME_U64, pos),
    EVAL_SEC("neg", ITD_FRAME_U64, neg),
    FIELD_SEC("counts", ITD_FRAME_U64, counts),
    EVAL_SEC("logloss_sum", ITD_FRAME_F64, logloss_sum),
    EVAL_SEC("ece_n", ITD_FRAME_U64, ece_n),
    EVAL_SEC("ece_score", ITD_FRAME_F64, ece_score),
    EVAL_SEC("ece_label", ITD_FRAME_F64, ece_label),
    FIELD_SEC("next_counts", ITD_FRAME_U64, next),
    EVAL_SEC("next_logloss", ITD_FRAME_F64, next_logloss_sum),
};

static void *sec_ptr(const snap_sec_t *sec, itd_eval_t *eval,
                     snap_fields_t *fields) {
        return (char *)(sec->in_fields ? (void *)fields : (void *)eval) +
               sec->off;
}

itd_err_t itd_eval_snapshot(const itd_eval_t *eval, FILE *out, char *errstr,
                            size_t errstr_size) {
        snap_fields_t fields = {
            {eval->n, eval->positives, eval->tp, eval->fp, eval->tn,
             eval->fn},
            {eval->next_n, eval->next_correct}};
        uint8_t hdr[SNAP_WORDS * 8];
        itd_put_le64(hdr, ITD_EVAL_BINS);
        itd_put_le64(hdr + 8, ECE_BINS);
        itd_frame_buf_t b = {0};
        itd_frame_buf_begin(&b, SNAP_VERSION, ITD_FRAME_EVAL, hdr,
                            sizeof hdr);
        for (size_t i = 0; i < sizeof SECS / sizeof SECS[0]; i++)
                itd_frame_buf_section(
                    &b, SECS[i].name, SECS[i].dtype,
                    sec_ptr(&SECS[i], (itd_eval_t *)eval, &fields),
                    SECS[i].size);
        itd_frame_buf_end(&b);
        itd_err_t err = ITD_OK;
        if (fwrite(b.buf, 1, b.len, out) != b.len) {
                itd_errf(errstr, errstr_size,
                         "writing the progressive-validation snapshot: %s",
                         ferror(out) ? "write error" : "short write");
                err = ITD_ERR_IO;
        }
        itd_frame_buf_fini(&b);
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

/* A checked snapshot's counts into eval (its threshold kept), or the
 * reason they do not add up. */
static itd_err_t install(itd_eval_t *eval, itd_eval_t *tmp, char *errstr,
                         size_t errstr_size) {
        const char *why = inconsistency(tmp);
        if (why) {
                itd_errf(errstr, errstr_size,
                         "corrupt progressive-validation snapshot: %s", why);
                return ITD_ERR_CORRUPT;
        }
        tmp->threshold = eval->threshold;
        *eval = *tmp;
        return ITD_OK;
}

/* Version 1: the 24 header bytes in head have been read from in. */
static itd_err_t restore_legacy(itd_eval_t *eval, const unsigned char *head,
                                FILE *in, char *errstr, size_t errstr_size) {
        uint32_t h[4];
        memcpy(h, head + LEGACY_MAGIC_BYTES, sizeof h);
        /*
         * The size is read before the CRC can vouch for it, so it is only
         * trusted within a bound: a flipped bit there reads as truncation
         * or a CRC mismatch, never as a huge allocation.
         */
        uint32_t payload = h[3];
        if (payload > 64 * LEGACY_PAYLOAD_BYTES) {
                itd_errf(errstr, errstr_size,
                       "corrupt progressive-validation snapshot: payload of "
                       "%" PRIu32 " bytes (version 1 has %zu)",
                       payload, (size_t)LEGACY_PAYLOAD_BYTES);
                return ITD_ERR_CORRUPT;
        }
        size_t rest = (size_t)payload + LEGACY_CRC_BYTES;
        unsigned char *buf = itd_xmalloc(LEGACY_HEADER_BYTES + rest);
        memcpy(buf, head, LEGACY_HEADER_BYTES);
        itd_err_t err = ITD_OK;
        uint32_t stored;
        if (fread(buf + LEGACY_HEADER_BYTES, 1, rest, in) != rest) {
                itd_errf(errstr, errstr_size,
                       "progressive-validation snapshot truncated: fewer "
                       "than the %zu bytes its header announces",
                       LEGACY_HEADER_BYTES + rest);
                err = ITD_ERR_CORRUPT;
                goto done;
        }
        memcpy(&stored, buf + LEGACY_HEADER_BYTES + payload, sizeof stored);
        if (itd_crc32c(0, buf, LEGACY_HEADER_BYTES + payload) != stored) {
                itd_errf(errstr, errstr_size,
                       "corrupt progressive-validation snapshot: CRC32C "
                       "mismatch");
                err = ITD_ERR_CORRUPT;
                goto done;
        }
        if (h[0] != LEGACY_VERSION || h[1] != ITD_EVAL_BINS ||
            h[2] != ECE_BINS) {
                itd_errf(errstr, errstr_size,
                       "progressive-validation snapshot of version %" PRIu32
                       " with %" PRIu32 "+%" PRIu32
                       " bins; this build reads version %d (or %d) with "
                       "%d+%d",
                       h[0], h[1], h[2], SNAP_VERSION, LEGACY_VERSION,
                       ITD_EVAL_BINS, ECE_BINS);
                err = ITD_ERR_INCOMPATIBLE;
                goto done;
        }
        if (payload != LEGACY_PAYLOAD_BYTES) {
                itd_errf(errstr, errstr_size,
                       "corrupt progressive-validation snapshot: payload of "
                       "%" PRIu32 " bytes, version 1 has %zu",
                       payload, (size_t)LEGACY_PAYLOAD_BYTES);
                err = ITD_ERR_CORRUPT;
                goto done;
        }
        itd_eval_t *tmp = itd_xcalloc(1, sizeof *tmp);
        const unsigned char *r = buf + LEGACY_HEADER_BYTES;
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
        err = install(eval, tmp, errstr, errstr_size);
        free(tmp);
done:
        free(buf);
        return err;
}

/* Version 2 (the one framing): checked bytes into eval. */
static itd_err_t restore_frame(itd_eval_t *eval, const itd_frame_buf_t *b,
                               char *errstr, size_t errstr_size) {
        itd_frame_view_t v;
        char why[256];
        if (itd_frame_parse(&v, b->buf, b->len, ITD_FRAME_EVAL,
                            SNAP_WORDS * 8, why, sizeof why)) {
                itd_errf(errstr, errstr_size,
                         "corrupt progressive-validation snapshot: %s", why);
                return ITD_ERR_CORRUPT;
        }
        uint64_t bins = itd_get_le64(v.header);
        uint64_t ece_bins = itd_get_le64(v.header + 8);
        if (v.version != SNAP_VERSION || bins != ITD_EVAL_BINS ||
            ece_bins != ECE_BINS) {
                itd_errf(errstr, errstr_size,
                         "progressive-validation snapshot of version %"
                         PRIu32 " with %" PRIu64 "+%" PRIu64
                         " bins; this build reads version %d (or %d) with "
                         "%d+%d",
                         v.version, bins, ece_bins, SNAP_VERSION,
                         LEGACY_VERSION, ITD_EVAL_BINS, ECE_BINS);
                return ITD_ERR_INCOMPATIBLE;
        }
        itd_eval_t *tmp = itd_xcalloc(1, sizeof *tmp);
        snap_fields_t fields;
        itd_err_t err = ITD_OK;
        for (size_t i = 0; i < sizeof SECS / sizeof SECS[0] && !err; i++)
                err = itd_frame_get(&v, SECS[i].name, SECS[i].dtype,
                                    sec_ptr(&SECS[i], tmp, &fields),
                                    SECS[i].size, why, sizeof why);
        if (err) {
                itd_errf(errstr, errstr_size,
                         "corrupt progressive-validation snapshot: %s", why);
        } else {
                tmp->n = fields.counts[0];
                tmp->positives = fields.counts[1];
                tmp->tp = fields.counts[2];
                tmp->fp = fields.counts[3];
                tmp->tn = fields.counts[4];
                tmp->fn = fields.counts[5];
                tmp->next_n = fields.next[0];
                tmp->next_correct = fields.next[1];
                err = install(eval, tmp, errstr, errstr_size);
        }
        free(tmp);
        return err;
}

itd_err_t itd_eval_restore(itd_eval_t *eval, FILE *in, char *errstr,
                           size_t errstr_size) {
        unsigned char head[LEGACY_HEADER_BYTES];
        if (fread(head, 1, sizeof head, in) != sizeof head) {
                itd_errf(errstr, errstr_size,
                       "progressive-validation snapshot truncated: %s",
                       ferror(in) ? "read error" : "no complete header");
                return ITD_ERR_CORRUPT;
        }
        if (memcmp(head, LEGACY_MAGIC, LEGACY_MAGIC_BYTES) == 0)
                return restore_legacy(eval, head, in, errstr, errstr_size);
        itd_frame_buf_t b = {0};
        char why[256];
        itd_err_t err = itd_frame_fread(in, head, sizeof head, SNAP_MAX_BYTES,
                                        &b, why, sizeof why);
        if (err)
                itd_errf(errstr, errstr_size,
                         "%s progressive-validation snapshot: %s",
                         err == ITD_ERR_IO ? "reading the" : "corrupt", why);
        else
                err = restore_frame(eval, &b, errstr, errstr_size);
        itd_frame_buf_fini(&b);
        return err;
}
