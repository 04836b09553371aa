/*
 * feed.c - see feed.h.
 */
#include "feed.h"

#include "intentd/reader.h"
#include "intentd/simulator.h"

itd_err_t itd_feed_sim_next(void *src, itd_event_t *ev, char *errstr,
                            size_t errstr_size) {
        (void)errstr;
        (void)errstr_size;
        return itd_sim_next(src, ev);
}

itd_err_t itd_feed_reader_next(void *src, itd_event_t *ev, char *errstr,
                               size_t errstr_size) {
        return itd_reader_next(src, ev, errstr, errstr_size);
}

void itd_feed_reader_progress(void *src, uint64_t *done, uint64_t *total) {
        itd_reader_progress(src, done, total);
}
