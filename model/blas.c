/*
 * blas.c - OpenBLAS's thread count and the kernel it chose (blas.h).
 */
#include <stddef.h>
#include <strings.h>

#include <cblas.h>

#include "intentd/blas.h"

int itd_blas_core_has_avx2(const char *core) {
        /* the x86-64 kernels of OpenBLAS 0.3 that use AVX2/FMA; Zen's
         * reports itself as Haswell in some versions */
        static const char *const avx2_cores[] = {
            "haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"};
        if (!core)
                return 0;
        for (size_t i = 0; i < sizeof avx2_cores / sizeof *avx2_cores; i++)
                if (!strcasecmp(core, avx2_cores[i]))
                        return 1;
        return 0;
}

void itd_blas_setup(itd_blas_info_t *info) {
        openblas_set_num_threads(1);
        const char *core = openblas_get_corename();
        const char *config = openblas_get_config();
        info->core = core ? core : "unknown";
        info->config = config ? config : "unknown";
        info->threads = openblas_get_num_threads();
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        info->cpu_avx2 = __builtin_cpu_supports("avx2") &&
                         __builtin_cpu_supports("fma");
#else
        info->cpu_avx2 = 0;
#endif
        info->fallback = info->cpu_avx2 && !itd_blas_core_has_avx2(core);
}
