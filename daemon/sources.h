/*
 * sources.h - adapters that let the simulator and the file readers feed
 * itd_publish() and replay through one function type.
 */
#ifndef INTENTD_SOURCES_H
#define INTENTD_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/event.h"

/* src is an itd_sim_t *. */
itd_err_t itd_source_sim_next(void *src, itd_event_t *ev, char *errstr,
                              size_t errstr_size);
/* src is an itd_reader_t *. */
itd_err_t itd_source_reader_next(void *src, itd_event_t *ev, char *errstr,
                                 size_t errstr_size);
void itd_source_reader_progress(void *src, uint64_t *done, uint64_t *total);

#endif
