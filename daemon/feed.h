/*
 * feed.h - adapters that let the simulator and the file readers feed
 * itd_publish() through one function type (itd_feed_next_fn). Not to be
 * confused with the run loop's Kafka source (source.c).
 */
#ifndef INTENTD_FEED_H
#define INTENTD_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "intentd/event.h"

/* src is an itd_sim_t *. */
itd_err_t itd_feed_sim_next(void *src, itd_event_t *ev, char *errstr,
                            size_t errstr_size);
/* src is an itd_reader_t *. */
itd_err_t itd_feed_reader_next(void *src, itd_event_t *ev, char *errstr,
                               size_t errstr_size);
void itd_feed_reader_progress(void *src, uint64_t *done, uint64_t *total);

#endif
