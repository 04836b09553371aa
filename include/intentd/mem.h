/*
 * mem.h - allocation that never returns NULL.
 *
 * Out of memory is not a condition intentd can recover from on the event path
 * (STYLE.md section 3): log the size and abort. Used by every module, so it
 * is header-only and depends on libc alone.
 */
#ifndef INTENTD_MEM_H
#define INTENTD_MEM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void *itd_xmalloc(size_t size) {
        void *p = malloc(size ? size : 1);
        if (!p) {
                fprintf(stderr, "<2>intentd: out of memory allocating %zu bytes\n",
                        size);
                abort();
        }
        return p;
}

static inline void *itd_xcalloc(size_t n, size_t size) {
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p) {
                fprintf(stderr, "<2>intentd: out of memory allocating %zu x %zu bytes\n",
                        n, size);
                abort();
        }
        return p;
}

static inline void *itd_xrealloc(void *old, size_t size) {
        void *p = realloc(old, size ? size : 1);
        if (!p) {
                fprintf(stderr, "<2>intentd: out of memory reallocating %zu bytes\n",
                        size);
                abort();
        }
        return p;
}

static inline char *itd_xstrdup(const char *s) {
        size_t n = strlen(s) + 1;
        char *p = (char *)itd_xmalloc(n);
        memcpy(p, s, n);
        return p;
}

/** @brief Copies src into dst[cap] always NUL-terminated; returns 1 if cut. */
static inline int itd_strlcpy(char *dst, const char *src, size_t cap) {
        size_t n = strlen(src);
        if (cap == 0)
                return n > 0;
        if (n >= cap) {
                memcpy(dst, src, cap - 1);
                dst[cap - 1] = '\0';
                return 1;
        }
        memcpy(dst, src, n + 1);
        return 0;
}

#endif
