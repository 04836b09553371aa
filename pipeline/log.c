/*
 * log.c - one line per event on stderr (see log.h).
 *
 * Plain text for a terminal, `<N>` priority prefixes for journald, or one
 * JSON object per line. Each line is formatted into a local buffer and
 * written with a single write(2), so lines from librdkafka's threads and the
 * pipeline thread never interleave mid-line. Also the keyed pseudonyms that
 * stand for user ids in log lines (SipHash-2-4, see log.h).
 */
#include "intentd/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
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

/* ------------------------------------------------------------------ */
/* Pseudonyms: SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF", 2012; the reference implementation's variable names). */

static uint64_t pseudonym_k0, pseudonym_k1;
static pthread_once_t pseudonym_once = PTHREAD_ONCE_INIT;

static uint64_t load_le64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                          \
        do {                                                              \
                v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
                v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                    \
                v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                    \
                v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
        } while (0)

static uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *in,
                          size_t len) {
        uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
        uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
        uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
        uint64_t v3 = 0x7465646279746573ULL ^ k1;
        const uint8_t *end = in + (len & ~(size_t)7);
        for (; in != end; in += 8) {
                uint64_t m = load_le64(in);
                v3 ^= m;
                SIPROUND;
                SIPROUND;
                v0 ^= m;
        }
        /* Last block: the remaining 0..7 bytes, length in the top byte. */
        uint64_t b = (uint64_t)len << 56;
        for (size_t i = 0; i < (len & 7); i++)
                b |= (uint64_t)in[i] << (8 * i);
        v3 ^= b;
        SIPROUND;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

static void pseudonym_random_key(void) {
        uint8_t key[16];
        size_t got = 0;
        while (got < sizeof key) {
                ssize_t n = getrandom(key + got, sizeof key - got, 0);
                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        if (got < sizeof key) {
                /* No getrandom (very old kernel or a seccomp filter): a
                 * weaker key from clocks and the pid still keeps ids out
                 * of casual reading, and the fallback is logged. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t a = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t c = (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
                memcpy(key, &a, 8);
                memcpy(key + 8, &c, 8);
                itd_log_write(ITD_LOG_WARNING, "log",
                              "getrandom failed; user-id pseudonyms use a "
                              "clock-derived key");
        }
        pseudonym_k0 = load_le64(key);
        pseudonym_k1 = load_le64(key + 8);
}

void itd_log_pseudonym_key(const uint8_t key[16]) {
        pthread_once(&pseudonym_once, pseudonym_random_key);
        if (!key) {
                pseudonym_random_key();
                return;
        }
        pseudonym_k0 = load_le64(key);
        pseudonym_k1 = load_le64(key + 8);
}

const char *itd_log_pseudonym(const void *id, size_t len, char *buf,
                              size_t cap) {
        if (cap == 0)
                return buf;
        if (!id || len == 0) {
                /* No id at all (a record without key) reads as such. */
                snprintf(buf, cap, "u:-");
                return buf;
        }
        pthread_once(&pseudonym_once, pseudonym_random_key);
        uint64_t h = siphash24(pseudonym_k0, pseudonym_k1, id, len);
        snprintf(buf, cap, "u:%016llx", (unsigned long long)h);
        return buf;
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
