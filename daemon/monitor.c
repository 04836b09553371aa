/*
 * monitor.c - sliding-window progressive metrics for /metrics (see
 * monitor.h). The window itself is model/eval_progressive.c's
 * itd_eval_window_t: a ring of ten per-chunk accumulators, so once warm the gauges cover
 * between 90% and 100% of the last `window` examples.
 */
#include "monitor.h"

#include <math.h>
#include <stdlib.h>

#include "intentd/eval_progressive.h"
#include "intentd/mem.h"

#define WINDOW_CHUNKS 10

struct itd_monitor_s {
        itd_eval_window_t *evalw;
};

itd_monitor_t *itd_monitor_new(uint64_t window, float threshold) {
        if (window < WINDOW_CHUNKS)
                return NULL;
        itd_monitor_t *mon = itd_xcalloc(1, sizeof *mon);
        mon->evalw = itd_eval_window_new(threshold, window, WINDOW_CHUNKS);
        return mon;
}

void itd_monitor_destroy(itd_monitor_t *mon) {
        if (!mon)
                return;
        itd_eval_window_destroy(mon->evalw);
        free(mon);
}

void itd_monitor_hook(void *arg, int32_t partition, const itd_example_t *ex) {
        itd_monitor_t *mon = arg;
        (void)partition;
        itd_eval_window_add(mon->evalw, ex->score, ex->label, ex->next_probs,
                            ex->next);
}

void itd_monitor_publish(itd_monitor_t *mon, itd_prom_t *m) {
        itd_eval_summary_t s;
        itd_eval_window_summary(mon->evalw, &s);
        int any = s.n > 0;
        itd_prom_set(m, ITD_M_WINDOW_EXAMPLES, NULL, (double)s.n);
        itd_prom_set(m, ITD_M_WINDOW_AUC, NULL, any ? s.auc : NAN);
        itd_prom_set(m, ITD_M_WINDOW_LOGLOSS, NULL,
                     any ? s.logloss : NAN);
        itd_prom_set(m, ITD_M_WINDOW_ECE, NULL, any ? s.ece : NAN);
        itd_prom_set(m, ITD_M_WINDOW_BASE_RATE, NULL,
                     any ? s.base_rate : NAN);
}
