/*
 * bench_reader.c - nanoseconds per event for reading a dataset file
 * through itd_reader (streaming, in file order): the cost `replay` and
 * `load` pay before any model or Kafka work.
 *
 * Usage: bench_reader FILE FORMAT [ROUNDS]   (FORMAT as --format; default
 * 3 rounds). Prints one line, then a JSON object as the last line:
 * {"bench":"reader","file":...,"events":...,"ns_per_event":...}. The best
 * round is reported, so a neighbour stealing the core for a moment does
 * not count. Any file works; to compare Avro codecs, write the same events
 * with each (Avro C's avro_file_writer_create_with_codec).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "intentd/reader.h"

static double now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
        itd_format_t format;
        int rounds = argc > 3 ? atoi(argv[3]) : 3;
        if (argc < 3 || itd_format_parse(argv[2], &format) != ITD_OK ||
            rounds < 1) {
                fprintf(stderr, "usage: bench_reader FILE "
                                "taobao|rees46|retailrocket|jsonl|avro "
                                "[ROUNDS]\n");
                return 2;
        }
        double best = -1;
        unsigned long long n = 0;
        for (int r = 0; r < rounds; r++) {
                char err[1024];
                itd_event_t ev;
                itd_err_t e;
                double t0 = now_ns();
                itd_reader_t *rd = itd_reader_open(argv[1], format, 0, err,
                                                   sizeof err);
                if (!rd) {
                        fprintf(stderr, "bench_reader: %s\n", err);
                        return 1;
                }
                n = 0;
                while ((e = itd_reader_next(rd, &ev, err, sizeof err)) ==
                       ITD_OK)
                        n++;
                itd_reader_destroy(rd);
                if (e != ITD_ERR_EOF) {
                        fprintf(stderr, "bench_reader: %s\n", err);
                        return 1;
                }
                double ns = now_ns() - t0;
                if (best < 0 || ns < best)
                        best = ns;
        }
        double per = n ? best / (double)n : 0;
        printf("%s: %llu events, %.0f ns/event (best of %d)\n", argv[1], n,
               per, rounds);
        printf("{\"bench\":\"reader\",\"file\":\"%s\",\"events\":%llu,"
               "\"ns_per_event\":%.1f}\n",
               argv[1], n, per);
        return 0;
}
