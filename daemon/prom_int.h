/*
 * prom_int.h - internals of prom.c exposed for its tests.
 */
#ifndef INTENTD_DAEMON_PROM_INT_H
#define INTENTD_DAEMON_PROM_INT_H

#include <stddef.h>

/**
 * @brief Escapes s as the exposition format wants: label values escape
 * backslash, double quote and newline (label = 1); HELP text only backslash
 * and newline (label = 0). Writes into buf[cap] like snprintf.
 * @returns the escaped length (without NUL).
 */
size_t itd_prom_escape(const char *s, int label, char *buf, size_t cap);

#endif
