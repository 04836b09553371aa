/*
 * notify.c - sd_notify wrappers (see notify.h).
 *
 * sd_notify returns > 0 when sent, 0 when NOTIFY_SOCKET is unset (not under
 * systemd: nothing to do) and -errno on failure; only the last is an error
 * here. unset_environment is 0 so a reload can notify again.
 */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static itd_err_t notify_send(const char *msg) {
        int r = sd_notify(0, msg);
        if (r < 0) {
                errno = -r;
                return ITD_ERR_IO;
        }
        return ITD_OK;
}

itd_err_t itd_notify_ready(void) { return notify_send("READY=1"); }

itd_err_t itd_notify_stopping(void) { return notify_send("STOPPING=1"); }

itd_err_t itd_notify_status(const char *fmt, ...) {
        char msg[8 + 200];
        int n = snprintf(msg, sizeof msg, "STATUS=");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
        va_end(ap);
        for (char *p = msg; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        return notify_send(msg);
}

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

itd_err_t itd_notify_reloading(void) {
        char msg[64];
        snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long)mono_usec());
        return notify_send(msg);
}

itd_err_t itd_notify_extend_timeout(int64_t usec) {
        char msg[48];
        snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%lld",
                 (long long)(usec > 0 ? usec : 0));
        return notify_send(msg);
}

int itd_watchdog_init(itd_watchdog_t *wd) {
        uint64_t usec = 0;
        wd->interval_ms = 0;
        wd->last_ms = 0;
        if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
                /* Half the timeout: one late loop turn is not yet fatal. */
                wd->interval_ms = (int64_t)(usec / 2000u);
                if (wd->interval_ms < 1)
                        wd->interval_ms = 1;
        }
        wd->last_ms = INT64_MIN;
        return wd->interval_ms > 0;
}

itd_err_t itd_watchdog_kick(itd_watchdog_t *wd, int64_t now_mono_ms) {
        if (wd->interval_ms <= 0)
                return ITD_OK;
        if (wd->last_ms != INT64_MIN &&
            now_mono_ms - wd->last_ms < wd->interval_ms)
                return ITD_OK;
        wd->last_ms = now_mono_ms;
        return notify_send("WATCHDOG=1");
}
