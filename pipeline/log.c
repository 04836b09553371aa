/*
 * log.c - one line per event on stderr (see log.h).
 *
 * Plain text for a terminal, `<N>` priority prefixes for journald, or one
 * JSON object per line. Each line is formatted into a local buffer and
 * written with a single write(2), so lines from librdkafka's threads and the
 * pipeline thread never interleave mid-line.
 */
#include "intentd/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int itd_log_level = ITD_LOG_INFO;
static itd_log_format_t log_format = ITD_LOG_FORMAT_PLAIN;

static const char *const level_names[] = {"emerg", "alert",   "crit",
                                          "err",   "warning", "notice",
                                          "info",  "debug"};

void itd_log_setup(int level, itd_log_format_t format) {
        if (level < ITD_LOG_EMERG)
                level = ITD_LOG_EMERG;
        if (level > ITD_LOG_DEBUG)
                level = ITD_LOG_DEBUG;
        itd_log_level = level;
        log_format = format;
}

itd_log_format_t itd_log_format_get(void) {
        return log_format;
}

int itd_log_level_parse(const char *s) {
        for (int i = 0; i <= ITD_LOG_DEBUG; i++)
                if (strcmp(s, level_names[i]) == 0)
                        return i;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -1;
}

/* Appends s as a JSON string body (without quotes) to buf at *len. */
static void json_escape(char *buf, size_t cap, size_t *len, const char *s) {
        for (; *s && *len + 7 < cap; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        buf[(*len)++] = '\\';
                        buf[(*len)++] = (char)c;
                } else if (c < 0x20) {
                        *len += (size_t)snprintf(buf + *len, cap - *len,
                                                 "\\u%04x", c);
                } else {
                        buf[(*len)++] = (char)c;
                }
        }
}

void itd_log_write(int level, const char *facility, const char *fmt, ...) {
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (level < 0)
                level = 0;
        if (level > ITD_LOG_DEBUG)
                level = ITD_LOG_DEBUG;

        char line[4096];
        size_t len = 0;
        switch (log_format) {
        case ITD_LOG_FORMAT_JOURNAL:
                len = (size_t)snprintf(line, sizeof line, "<%d>%s: %s\n",
                                       level, facility, msg);
                break;
        case ITD_LOG_FORMAT_JSON:
                len = (size_t)snprintf(line, sizeof line,
                                       "{\"level\":\"%s\",\"facility\":\"",
                                       level_names[level]);
                json_escape(line, sizeof line, &len, facility);
                len += (size_t)snprintf(line + len, sizeof line - len,
                                        "\",\"message\":\"");
                json_escape(line, sizeof line, &len, msg);
                len += (size_t)snprintf(line + len, sizeof line - len, "\"}\n");
                break;
        default:
                len = (size_t)snprintf(line, sizeof line, "intentd %s %s: %s\n",
                                       level_names[level], facility, msg);
                break;
        }
        if (len >= sizeof line) {
                len = sizeof line - 1;
                line[len - 1] = '\n';
        }
        /* One write per line; a short write to stderr is not worth a retry
         * loop that could block the pipeline thread. */
        ssize_t rc = write(STDERR_FILENO, line, len);
        (void)rc;
}

int itd_ratelimit_allow(itd_ratelimit_t *rl, int64_t now_ms,
                        uint64_t *suppressed_out) {
        *suppressed_out = 0;
        if (now_ms - rl->window_start_ms >= rl->interval_ms) {
                *suppressed_out = rl->suppressed;
                rl->window_start_ms = now_ms;
                rl->printed = 0;
                rl->suppressed = 0;
        }
        if (rl->printed < rl->burst) {
                rl->printed++;
                return 1;
        }
        rl->suppressed++;
        return 0;
}

int64_t itd_now_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t itd_now_wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
