/*
 * monitor.h - what `intentd run` watches of its model beyond the engine's
 * counters: progressive metrics over a sliding window of the most recent
 * judged examples (AUC, log loss, calibration), beside the cumulative ones,
 * so that a drift shows within one window instead of being averaged
 * against the whole run.
 *
 * The run loop installs itd_monitor_hook as the engine's example hook: it
 * sees every judged example, after it was scored and before the model
 * learns from it (progressive validation), exactly like the cumulative
 * accumulator. The window is not checkpointed: after a restart it fills
 * again from the examples that resolve from then on.
 *
 * @thread the pipeline thread owns a monitor; no locks.
 */
#ifndef INTENTD_MONITOR_H
#define INTENTD_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/labeler.h"
#include "intentd/prediction.h"
#include "prom.h"

typedef struct itd_monitor_s itd_monitor_t;

/**
 * @brief A monitor over the last `window` judged examples (>= 10), judged
 * at decision threshold `threshold`.
 * @returns the monitor (caller owns), or NULL for a window below 10.
 */
itd_monitor_t *itd_monitor_new(uint64_t window, float threshold);
void itd_monitor_destroy(itd_monitor_t *mon);

/** @brief Matches itd_example_hook_t (engine.h); arg is the monitor. */
void itd_monitor_hook(void *arg, int32_t partition, const itd_example_t *ex);

/**
 * @brief Sets the intentd_window_* gauges from the examples in the window
 * (NaN while it holds none, or AUC while one class is missing).
 * Costs a merge of the window's chunks: call it periodically, not per
 * event.
 */
void itd_monitor_publish(itd_monitor_t *mon, itd_prom_t *m);

#endif
