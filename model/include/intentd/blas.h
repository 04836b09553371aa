/*
 * blas.h - which OpenBLAS kernel this process runs, and whether it is one
 * the CPU outgrew.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from the
 * CPUID model at load time. A virtual machine that masks the model gets a
 * generic kernel (Prescott, Nehalem, ...) even where the CPU has AVX2 and
 * FMA: sgemm then runs at about a third of its speed, and nothing else
 * shows it. OPENBLAS_CORETYPE (e.g. Haswell) overrides the choice.
 *
 * @thread any.
 */
#ifndef INTENTD_BLAS_H
#define INTENTD_BLAS_H

typedef struct itd_blas_info_s {
        const char *core;   /* OpenBLAS's kernel ("Haswell"); never NULL */
        const char *config; /* its build line ("OpenBLAS 0.3.21 ..."); never
                               NULL */
        int threads;        /* BLAS threads a call may use */
        int cpu_avx2;       /* 1: this CPU has AVX2 and FMA */
        int fallback;       /* 1: cpu_avx2, and core is not an AVX2 kernel */
} itd_blas_info_t;

/**
 * @brief Sets OpenBLAS to one thread (the model's matrices are small and
 * the daemon shares its cores with librdkafka; a second thread helps only
 * from about 32 rows on) and describes the library as it now runs.
 * @param info filled; its strings are OpenBLAS's, valid for the process.
 */
void itd_blas_setup(itd_blas_info_t *info);

/**
 * @brief 1 when core names an OpenBLAS x86-64 kernel that uses AVX2 and
 * FMA (Haswell, Zen, SkylakeX, Cooperlake, SapphireRapids; any case),
 * 0 otherwise (older kernels, "generic", NULL).
 */
int itd_blas_core_has_avx2(const char *core);

#endif
