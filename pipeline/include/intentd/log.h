/*
 * log.h - one log line per event on stderr.
 *
 * Lines carry a `<N>` syslog priority prefix so journald keeps the level
 * (STYLE.md section 7); no timestamps, journald adds them. JSON lines, for
 * shippers that read stderr directly, carry their own RFC 3339 "time". The macro checks
 * the level before the arguments are evaluated, so a disabled debug line
 * costs one compare on the hot path.
 */
#ifndef INTENTD_LOG_H
#define INTENTD_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum {
        ITD_LOG_EMERG = 0,
        ITD_LOG_ALERT = 1,
        ITD_LOG_CRIT = 2,
        ITD_LOG_ERR = 3,
        ITD_LOG_WARNING = 4,
        ITD_LOG_NOTICE = 5,
        ITD_LOG_INFO = 6,
        ITD_LOG_DEBUG = 7
};

typedef enum { ITD_LOG_FORMAT_PLAIN, ITD_LOG_FORMAT_JOURNAL, ITD_LOG_FORMAT_JSON } itd_log_format_t;

/* Current maximum level printed; read by the macro on every thread
 * (librdkafka's included), set by itd_log_setup, also on SIGHUP while those
 * threads run: hence atomic. Relaxed loads suffice, since a line printed at
 * the old level during a reload is harmless. */
extern _Atomic int itd_log_level;

/**
 * @brief Sets the level and format.
 * @thread any: both are atomics, so a reload may call it while other
 * threads log (a line racing it uses the old or the new setting).
 */
void itd_log_setup(int level, itd_log_format_t format);

/** @brief The format set by itd_log_setup. @thread any. */
itd_log_format_t itd_log_format_get(void);

/** @brief Parses "emerg".."debug" (or 0..7); returns -1 if unknown. */
int itd_log_level_parse(const char *s);

/**
 * @brief Prints one line. Whatever the arguments hold, the line stays one
 * line: control characters (C0, DEL, C1) are written as escapes (`\n`,
 * `\r`, `\t`, `\xNN`, `\u0085`) and bytes that are not UTF-8 as `\xNN`,
 * so a value from a message (an event type, a URL, a Kafka error) cannot
 * forge a second line, a priority prefix or a terminal escape. Lines longer
 * than 4 KiB are cut.
 * @thread any (one write(2) per line).
 */
void itd_log_write(int level, const char *facility, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * @brief The escaping itd_log_write applies, for callers that show text
 * elsewhere (tests, a one-line detail): writes s into buf[cap], escaped as
 * above, cut to fit (never inside an escape), NUL-terminated when cap > 0.
 * @returns the length written. @thread any.
 */
size_t itd_log_escape(char *buf, size_t cap, const char *s);

#define itd_log(level, facility, ...)                                     \
        do {                                                              \
                if ((level) <= atomic_load_explicit(                      \
                                   &itd_log_level, memory_order_relaxed)) \
                        itd_log_write((level), (facility), __VA_ARGS__);  \
        } while (0)

/*
 * Rate limiter for repeating errors: the first `burst` lines in each
 * `interval_ms` are printed, the rest are counted and summarised once the
 * interval ends. Caller-provided storage; zero-initialise, then set
 * interval_ms and burst.
 */
typedef struct itd_ratelimit_s {
        int64_t interval_ms;
        uint32_t burst;
        int64_t window_start_ms;
        uint32_t printed;
        uint64_t suppressed;
} itd_ratelimit_t;

/**
 * @brief Returns 1 if a line may be printed now. When a window with
 * suppressed lines closes, *suppressed_out gets their count (else 0) so the
 * caller can say "N similar lines suppressed".
 * @thread the one thread that owns rl.
 */
int itd_ratelimit_allow(itd_ratelimit_t *rl, int64_t now_ms,
                        uint64_t *suppressed_out);

/*
 * Pseudonyms: a user id never reaches a log line in clear. A line that
 * needs to say "the same user again" prints itd_log_pseudonym() instead:
 * "u:" and 16 hex digits of SipHash-2-4 (a keyed PRF, unlike xxhash whose
 * seed can be solved for from one known id) under a 128-bit key drawn from
 * getrandom() once per process. Lines of one process can be correlated;
 * lines of two runs, or logs and a list of candidate ids, cannot, since the
 * key never leaves memory. Deliberately not configurable: a stable key
 * would make the pseudonym a lasting identifier of the person.
 */
#define ITD_LOG_PSEUDONYM_SIZE 19 /* "u:" + 16 hex + NUL */

/**
 * @brief Writes the pseudonym of id[0..len) (a user id, a Kafka key; any
 * bytes) into buf[cap], cut to fit and NUL-terminated when cap > 0;
 * "u:-" when there is no id (len 0 or id NULL).
 * @returns buf, to use directly as a "%s" argument.
 * @thread any (the key is set once, thread-safely, on first use).
 */
const char *itd_log_pseudonym(const void *id, size_t len, char *buf,
                              size_t cap);

/**
 * @brief Replaces the pseudonym key (16 bytes); NULL draws a new random
 * one. For tests (known-answer vectors) and nothing else.
 * @thread main, while no other thread logs.
 */
void itd_log_pseudonym_key(const uint8_t key[16]);

/**
 * @brief SipHash-2-4 of buf[0..len) under key (16 bytes): the keyed
 * pseudonym of other outputs (replay's feature export), unlinkable to ids
 * without the key. @thread any.
 */
uint64_t itd_keyed_hash(const uint8_t key[16], const void *buf, size_t len);

/** @brief Fills key with 16 bytes from getrandom() (a clock-derived key,
 * logged, where that fails). @thread any. */
void itd_random_key(uint8_t key[16]);

/** @brief Monotonic clock in milliseconds. */
int64_t itd_now_mono_ms(void);
/** @brief Wall clock (UTC) in milliseconds since the epoch. */
int64_t itd_now_wall_ms(void);

#endif
