/*
 * ocf.h - events from an Avro object container file, read by the same
 * walker (and writer-schema resolution) as Kafka messages. Private to the
 * pipeline module; the reader (reader.h) is its user.
 *
 * The file is read through a callback, so the source may be a file, gzip,
 * or memory (the fuzz target). Every size the file announces is checked
 * against limits and against the bytes that actually arrive before
 * memory is given to it: a header of at most ITD_OCF_MAX_HEADER_BYTES,
 * blocks of at most ITD_OCF_MAX_BLOCK_BYTES (compressed and inflated), no
 * more records in a block than bytes, values nested at most 64 deep.
 * Codecs: null, deflate and snappy.
 */
#ifndef INTENTD_OCF_H
#define INTENTD_OCF_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/event.h"

#define ITD_OCF_MAX_HEADER_BYTES (16u << 20)
#define ITD_OCF_MAX_BLOCK_BYTES (64u << 20)

/**
 * Reads up to n bytes into buf; *got < n only at the end of the data.
 * Returns ITD_OK (also at the end), or an error with errstr set.
 */
typedef itd_err_t (*itd_ocf_read_fn)(void *src, void *buf, size_t n,
                                     size_t *got, char *errstr,
                                     size_t errstr_size);

typedef struct itd_ocf_s itd_ocf_t;

/**
 * @brief Reads the header (magic, metadata, sync marker) and resolves the
 * file's schema against config/event.avsc.
 * @param src   borrowed; read only through read, for the reader's life.
 * @param name  for messages (the path); copied.
 * @returns the reader (caller owns; itd_ocf_close), or NULL with errstr
 * "<name>: not an Avro object container file: ...", "<name>: the file's
 * schema does not resolve against config/event.avsc: ...", or the codec
 * or limit that stops it.
 * @thread any; one thread at a time per reader.
 */
itd_ocf_t *itd_ocf_open(itd_ocf_read_fn read, void *src, const char *name,
                        char *errstr, size_t errstr_size);
void itd_ocf_close(itd_ocf_t *ocf);

/**
 * @brief The next record.
 * @returns ITD_OK with ev; ITD_ERR_EOF after the last block;
 * ITD_ERR_DECODE when this record is refused (errstr: the reason, as the
 * Kafka path gives it; the reader can go on with the next record);
 * ITD_ERR_CORRUPT or ITD_ERR_IO when the file cannot be read on (errstr
 * names the file, the block and its byte offset).
 */
itd_err_t itd_ocf_next(itd_ocf_t *ocf, itd_event_t *ev, char *errstr,
                       size_t errstr_size);

/** @brief 1-based number of the record itd_ocf_next last looked at. */
uint64_t itd_ocf_record_no(const itd_ocf_t *ocf);

#endif
