/*
 * bench_util.h - what the stage benchmarks share: a monotonic clock in
 * ms, a seeded xorshift generator, the events-per-user draw of
 * bench_state.c (P(k) ~ k^-1.5 on 1..20) and the median of repetitions.
 * Header-only: a benchmark is one file (CMakeLists.txt; bench_e2e, the
 * one exception, shares its parts through e2e.h).
 */
#ifndef INTENTD_BENCH_UTIL_H
#define INTENTD_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* xorshift64; the state starts at a fixed seed, so runs are repeatable */
static uint64_t bench_rng = 0x9e3779b97f4a7c15ULL;
static inline uint64_t bench_rand(void) {
        bench_rng ^= bench_rng << 13;
        bench_rng ^= bench_rng >> 7;
        bench_rng ^= bench_rng << 17;
        return bench_rng;
}

/* Events per user: P(k) ~ k^-1.5 on 1..20, by inversion of a table. */
static inline int bench_draw_k(void) {
        static double cdf[21];
        if (cdf[20] == 0) {
                double s = 0;
                for (int k = 1; k <= 20; k++)
                        cdf[k] = s += 1.0 / (k * sqrt((double)k));
                for (int k = 1; k <= 20; k++)
                        cdf[k] /= s;
        }
        double u = (double)(bench_rand() >> 11) / 9007199254740992.0;
        int k = 1;
        while (k < 20 && cdf[k] < u)
                k++;
        return k;
}

static int bench_cmp_d(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorts v). */
static inline double bench_median(double *v, size_t n) {
        qsort(v, n, sizeof *v, bench_cmp_d);
        return v[n / 2];
}

#endif
