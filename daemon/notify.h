/*
 * notify.h - the daemon's side of systemd's Type=notify protocol, as thin
 * wrappers over sd_notify(3).
 *
 * Order the run loop follows: READY=1 once the config is loaded, the model
 * restored and the consumer has its first assignment; STATUS= lines now and
 * then; WATCHDOG=1 from the loop at half of WatchdogSec=; on SIGHUP
 * RELOADING=1 then READY=1; STOPPING=1 when shutdown begins.
 *
 * Without systemd (NOTIFY_SOCKET unset) every call does nothing and returns
 * ITD_OK, so `intentd run` from a shell behaves the same.
 *
 * @thread main thread (the run loop); sd_notify itself is thread-safe.
 */
#ifndef INTENTD_NOTIFY_H
#define INTENTD_NOTIFY_H

#include <stdint.h>

#include "intentd/err.h"

/** @brief READY=1: start-up (or a reload) finished.
 * @returns ITD_OK (also without systemd), or ITD_ERR_IO with errno set. */
itd_err_t itd_notify_ready(void);

/**
 * @brief STATUS=<text> shown by `systemctl status`, e.g.
 * "1520 events/s, lag 42, 3 partitions". Cut at 200 bytes; newlines become
 * spaces (a newline would start another assignment).
 */
itd_err_t itd_notify_status(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/** @brief STOPPING=1: shutdown began (systemd then waits TimeoutStopSec). */
itd_err_t itd_notify_stopping(void);

/**
 * @brief RELOADING=1 with MONOTONIC_USEC=<now> (systemd 253+ wants both in
 * one message to match the reload to its request; 252 ignores the extra
 * field). Follow with itd_notify_ready() once the reload is applied.
 */
itd_err_t itd_notify_reloading(void);

/**
 * @brief EXTEND_TIMEOUT_USEC=<usec>: asks for more time before start-up (or
 * stop) is declared failed, e.g. while restoring a large checkpoint.
 */
itd_err_t itd_notify_extend_timeout(int64_t usec);

/*
 * Watchdog: caller-provided storage. interval_ms is half of WatchdogSec=
 * (0 when systemd set no watchdog for this process); kick pings at most
 * once per interval.
 */
typedef struct itd_watchdog_s {
        int64_t interval_ms; /* 0: disabled */
        int64_t last_ms;     /* monotonic ms of the last WATCHDOG=1 */
} itd_watchdog_t;

/**
 * @brief Reads WATCHDOG_USEC / WATCHDOG_PID through sd_watchdog_enabled(3)
 * (so a watchdog meant for a parent process is ignored).
 * @returns 1 if enabled, 0 if not.
 */
int itd_watchdog_init(itd_watchdog_t *wd);

/**
 * @brief Sends WATCHDOG=1 if enabled and interval_ms passed since the last
 * one (the first call always sends). Call from the loop at least every
 * interval_ms: a loop that stops turning stops the pings and systemd kills
 * and restarts us.
 * @returns ITD_OK (sent, not due, or disabled), or ITD_ERR_IO.
 */
itd_err_t itd_watchdog_kick(itd_watchdog_t *wd, int64_t now_mono_ms);

#endif
