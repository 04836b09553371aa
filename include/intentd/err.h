/*
 * err.h - the one status enum of intentd, and the one way to fill an
 * `errstr, errstr_size` pair.
 *
 * Every fallible function returns itd_err_t; ITD_OK is 0 so `if (err)` reads
 * naturally. Detail for people goes into an `errstr, errstr_size` pair, never
 * into the code. The strings are stable: they appear in logs and docs.
 *
 * Header-only (like mem.h), so every library, model/ included, uses it
 * without depending on another.
 */
#ifndef INTENTD_ERR_H
#define INTENTD_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
        ITD_OK = 0,
        ITD_ERR_ARG,          /* caller passed something invalid */
        ITD_ERR_RANGE,        /* a value is outside its allowed range */
        ITD_ERR_PARSE,        /* text could not be parsed */
        ITD_ERR_CONF,         /* configuration is invalid */
        ITD_ERR_IO,           /* file or socket I/O failed */
        ITD_ERR_DECODE,       /* a message could not be decoded */
        ITD_ERR_ENCODE,       /* a record could not be encoded */
        ITD_ERR_KAFKA,        /* librdkafka reported an error */
        ITD_ERR_CORRUPT,      /* stored data failed its checksum or shape */
        ITD_ERR_INCOMPATIBLE, /* stored data is of another version or spec */
        ITD_ERR_FULL,         /* a bounded container is full */
        ITD_ERR_NOT_FOUND,    /* a looked-up thing does not exist */
        ITD_ERR_EOF,          /* end of input (not a failure for readers) */
        ITD_ERR_NONFINITE,    /* a NaN or infinity where a number was due */
        ITD_ERR__COUNT
} itd_err_t;

/** @brief Stable lower-case name of a status ("ok", "decode", ...). */
static inline const char *itd_err_str(itd_err_t err) {
        static const char *const names[ITD_ERR__COUNT] = {
            "ok",    "invalid argument", "out of range", "parse error",
            "bad configuration", "i/o error", "decode error",
            "encode error", "kafka error", "corrupt data",
            "incompatible data", "full", "not found", "end of input",
            "non-finite value"};
        if ((int)err < 0 || err >= ITD_ERR__COUNT)
                return "unknown error";
        return names[err];
}

/**
 * @brief Formats the detail of an error into errstr (printf-style, cut to
 * errstr_size). errstr may be NULL or errstr_size 0: nothing is written.
 */
static inline void itd_verrf(char *errstr, size_t errstr_size, const char *fmt,
                             va_list ap) __attribute__((format(printf, 3, 0)));
static inline void itd_verrf(char *errstr, size_t errstr_size, const char *fmt,
                             va_list ap) {
        if (!errstr || errstr_size == 0)
                return;
        vsnprintf(errstr, errstr_size, fmt, ap);
}

/** @brief itd_verrf with the arguments inline. */
static inline void itd_errf(char *errstr, size_t errstr_size, const char *fmt,
                            ...) __attribute__((format(printf, 3, 4)));
static inline void itd_errf(char *errstr, size_t errstr_size, const char *fmt,
                            ...) {
        va_list ap;
        va_start(ap, fmt);
        itd_verrf(errstr, errstr_size, fmt, ap);
        va_end(ap);
}

#endif
