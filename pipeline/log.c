/*
 * log.c - one line per event on stderr (see log.h).
 *
 * Plain text for a terminal, `<N>` priority prefixes for journald, or one
 * JSON object per line. Each line is formatted into a local buffer and
 * written with a single write(2), so lines from librdkafka's threads and the
 * pipeline thread never interleave mid-line; every value in it is escaped,
 * so no value can forge a line. Also the keyed pseudonyms that
 * stand for user ids in log lines (SipHash-2-4, see log.h).
 */
#include "intentd/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "intentd/bytes.h"

_Atomic int itd_log_level = ITD_LOG_INFO;
static _Atomic int log_format = ITD_LOG_FORMAT_PLAIN;

static const char *const level_names[] = {"emerg", "alert",   "crit",
                                          "err",   "warning", "notice",
                                          "info",  "debug"};

void itd_log_setup(int level, itd_log_format_t format) {
        if (level < ITD_LOG_EMERG)
                level = ITD_LOG_EMERG;
        if (level > ITD_LOG_DEBUG)
                level = ITD_LOG_DEBUG;
        atomic_store_explicit(&itd_log_level, level, memory_order_relaxed);
        atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
}

itd_log_format_t itd_log_format_get(void) {
        return (itd_log_format_t)atomic_load_explicit(&log_format,
                                                      memory_order_relaxed);
}

int itd_log_level_parse(const char *s) {
        for (int i = 0; i <= ITD_LOG_DEBUG; i++)
                if (strcmp(s, level_names[i]) == 0)
                        return i;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -1;
}

/* Length of the well-formed UTF-8 sequence at s (2..4 bytes), or 0 for a
 * stray byte, an overlong form, a surrogate or a code point past
 * U+10FFFF. s is NUL-terminated, and a NUL fails the continuation test
 * before anything beyond it is read. */
static size_t utf8_len(const unsigned char *s) {
        unsigned c = s[0];
        if (c >= 0xc2 && c <= 0xdf)
                return (s[1] & 0xc0) == 0x80 ? 2 : 0;
        if (c >= 0xe0 && c <= 0xef) {
                if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
                        return 0;
                if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
                        return 0;
                return 3;
        }
        if (c >= 0xf0 && c <= 0xf4) {
                if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
                    (s[3] & 0xc0) != 0x80)
                        return 0;
                if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
                        return 0;
                return 4;
        }
        return 0;
}

/*
 * Appends s to buf[0..cap) at *len, escaped so the text stays on one line
 * and holds no terminal control: C0 controls and DEL as \n \r \t or \xNN
 * (all as \u00NN in JSON), C1 controls (U+0080..U+009F, which terminals
 * may read as CSI and the like) as \u00NN, bytes that are not UTF-8 as
 * \xNN (in JSON a literal backslash-x, since JSON strings hold code
 * points, not bytes). In JSON '"' and '\\' are escaped too. Stops before
 * a piece that does not fit, so an escape is never cut; buf is not
 * NUL-terminated.
 */
static void escape(char *buf, size_t cap, size_t *len, const char *str,
                   int json) {
        const unsigned char *s = (const unsigned char *)str;
        while (*s) {
                char piece[8];
                const char *src = piece;
                size_t n;
                unsigned c = *s;
                size_t seq = c >= 0x80 ? utf8_len(s) : 1;
                if (!json && (c == '\n' || c == '\r' || c == '\t')) {
                        piece[0] = '\\';
                        piece[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
                        n = 2;
                } else if (c < 0x20 || c == 0x7f) {
                        n = (size_t)snprintf(piece, sizeof piece,
                                             json ? "\\u%04x" : "\\x%02x", c);
                } else if (json && (c == '"' || c == '\\')) {
                        piece[0] = '\\';
                        piece[1] = (char)c;
                        n = 2;
                } else if (c < 0x80) {
                        src = (const char *)s;
                        n = 1;
                } else if (seq == 2 && c == 0xc2 && s[1] < 0xa0) {
                        n = (size_t)snprintf(piece, sizeof piece, "\\u%04x",
                                             (unsigned)s[1]);
                } else if (seq) {
                        src = (const char *)s;
                        n = seq;
                } else {
                        n = (size_t)snprintf(piece, sizeof piece,
                                             json ? "\\\\x%02x" : "\\x%02x", c);
                        seq = 1;
                }
                if (*len + n >= cap)
                        return;
                memcpy(buf + *len, src, n);
                *len += n;
                s += seq;
        }
}

size_t itd_log_escape(char *buf, size_t cap, const char *s) {
        size_t len = 0;
        if (cap == 0)
                return 0;
        escape(buf, cap, &len, s, 0);
        buf[len] = '\0';
        return len;
}

/* Appends literal text (ours, not a value) to buf at *len, cut to fit. */
static void append(char *buf, size_t cap, size_t *len, const char *s) {
        size_t n = strlen(s);
        if (*len + n >= cap)
                n = cap - 1 - *len;
        memcpy(buf + *len, s, n);
        *len += n;
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

        /* Every value is escaped on its way into the line (escape() above):
         * the one place that sees each line, so no caller can forget. The
         * last bytes are kept for the closing text and the newline. */
        char line[4096];
        const size_t body = sizeof line - 8;
        size_t len = 0;
        char head[128];
        switch (itd_log_format_get()) {
        case ITD_LOG_FORMAT_JOURNAL:
                snprintf(head, sizeof head, "<%d>", level);
                append(line, body, &len, head);
                escape(line, body, &len, facility, 0);
                append(line, body, &len, ": ");
                escape(line, body, &len, msg, 0);
                break;
        case ITD_LOG_FORMAT_JSON: {
                /* Shippers order and merge lines by "time": RFC 3339 in
                 * UTC with milliseconds, fixed width. The field set and
                 * order are documented (OPERATIONS.md, "Logs"). */
                struct timespec ts;
                struct tm tm;
                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                char when[32];
                strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
                snprintf(head, sizeof head,
                         "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\","
                         "\"facility\":\"",
                         when, ts.tv_nsec / 1000000L, level_names[level]);
                append(line, body, &len, head);
                escape(line, body, &len, facility, 1);
                append(line, body, &len, "\",\"message\":\"");
                escape(line, body, &len, msg, 1);
                memcpy(line + len, "\"}", 2);
                len += 2;
                break;
        }
        default:
                snprintf(head, sizeof head, "intentd %s ", level_names[level]);
                append(line, body, &len, head);
                escape(line, body, &len, facility, 0);
                append(line, body, &len, ": ");
                escape(line, body, &len, msg, 0);
                break;
        }
        line[len++] = '\n';
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
                uint64_t m = itd_get_le64(in);
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

void itd_random_key(uint8_t key[16]) {
        size_t got = 0;
        while (got < 16) {
                ssize_t n = getrandom(key + got, 16 - got, 0);
                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        if (got < 16) {
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
}

uint64_t itd_keyed_hash(const uint8_t key[16], const void *buf, size_t len) {
        return siphash24(itd_get_le64(key), itd_get_le64(key + 8), buf, len);
}

static void pseudonym_random_key(void) {
        uint8_t key[16];
        itd_random_key(key);
        pseudonym_k0 = itd_get_le64(key);
        pseudonym_k1 = itd_get_le64(key + 8);
}

void itd_log_pseudonym_key(const uint8_t key[16]) {
        pthread_once(&pseudonym_once, pseudonym_random_key);
        if (!key) {
                pseudonym_random_key();
                return;
        }
        pseudonym_k0 = itd_get_le64(key);
        pseudonym_k1 = itd_get_le64(key + 8);
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
