/*
 * crc32c.h - the checksum of every persisted format (common/crc32c.c).
 */
#ifndef INTENTD_CRC32C_H
#define INTENTD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the one of
 * iSCSI and ext4: crc = itd_crc32c(0, data, n) for a whole buffer; pass the
 * previous result to continue over a further piece.
 * @thread any (the tables are built once, under pthread_once)
 */
uint32_t itd_crc32c(uint32_t crc, const void *data, size_t n);

/**
 * @brief The same CRC from lookup tables whatever the CPU: what itd_crc32c
 * does where the CPU has no crc32 instruction (x86-64 without SSE4.2, other
 * architectures), so tests can hold both to the same values.
 */
uint32_t itd_crc32c_tables(uint32_t crc, const void *data, size_t n);

#endif
