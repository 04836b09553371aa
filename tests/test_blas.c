/*
 * test_blas.c - the OpenBLAS description logged at start: which kernel
 * names count as AVX2 kernels, and what itd_blas_setup reports.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "intentd/blas.h"

Test(blas, names_the_avx2_kernels_in_any_case) {
        static const struct {
                const char *core;
                int avx2;
        } rows[] = {{"Haswell", 1},   {"haswell", 1},   {"Zen", 1},
                    {"SkylakeX", 1},  {"COOPERLAKE", 1}, {"SapphireRapids", 1},
                    {"Prescott", 0},  {"Nehalem", 0},    {"Core2", 0},
                    {"Sandybridge", 0}, {"Barcelona", 0}, {"generic", 0},
                    {"", 0},          {"Haswellx", 0},   {NULL, 0}};
        for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
                cr_expect_eq(itd_blas_core_has_avx2(rows[i].core),
                             rows[i].avx2, "%s",
                             rows[i].core ? rows[i].core : "(null)");
}

Test(blas, setup_leaves_one_thread_and_says_which_kernel) {
        itd_blas_info_t info;
        memset(&info, 0xff, sizeof info);
        itd_blas_setup(&info);
        cr_assert_not_null(info.core);
        cr_assert_not_null(info.config);
        cr_expect_gt(strlen(info.core), 0);
        cr_expect_eq(info.threads, 1);
        cr_expect(info.cpu_avx2 == 0 || info.cpu_avx2 == 1);
        /* a fallback is exactly an AVX2 CPU on a kernel that is not one */
        cr_expect_eq(info.fallback,
                     info.cpu_avx2 && !itd_blas_core_has_avx2(info.core));
}
