/*
 * crc32c.c - CRC32C (Castagnoli), the checksum of every persisted format:
 * model checkpoints, sync messages, changelog records, manifests.
 */
#include <pthread.h>
#include <stdint.h>

#include "intentd/crc32c.h"

/*
 * Slicing-by-8 (Kounavis & Berry, Intel 2005): eight 256-entry tables let
 * the loop consume 8 bytes per iteration, ~4x the classic byte-at-a-time
 * table, which matters when a save re-verifies the previous 20 MB file.
 * Table 0 is the classic reflected table of polynomial 0x82F63B78.
 */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
                crc_table[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++)
                for (int t = 1; t < 8; t++)
                        crc_table[t][i] =
                            (crc_table[t - 1][i] >> 8) ^
                            crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t itd_crc32c(uint32_t crc, const void *data, size_t n) {
        /* any thread may checksum (a saver, `inspect`): build tables once */
        pthread_once(&crc_once, crc_init);
        const uint8_t *p = data;
        crc = ~crc;
        while (n >= 8) {
                uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                                     (uint32_t)p[2] << 16 |
                                     (uint32_t)p[3] << 24);
                crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
                      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
                      crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
                      crc_table[1][p[6]] ^ crc_table[0][p[7]];
                p += 8;
                n -= 8;
        }
        while (n--)
                crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
        return ~crc;
}
