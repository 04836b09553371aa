/*
 * e2e.h - what the files of bench_e2e share: the options, the events
 * encoded once, the embedded broker, producing, the consumer that counts
 * arrivals (e2e_kafka.c) and the child processes (e2e_proc.c).
 */
#ifndef INTENTD_BENCH_E2E_H
#define INTENTD_BENCH_E2E_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EVENTS_TOPIC "intentd.events"
#define MAX_TOPIC 96

typedef struct opts_s {
        const char *intentd, *passthrough, *peer, *events, *dir;
        long n;
        int partitions;
        double latency_seconds;
        long peer_batched, peer_naive;
        double floor_rate;        /* a low rate: the fixed part of latency */
        const char *phases;       /* comma list; default all */
        const char *python;       /* the interpreter with Debian's torch */
        int lat_partitions;       /* of the latency runs' topics */
        long scale_n;             /* events of each scale run (<= n) */
} opts_t;

typedef struct msg_s {
        uint32_t off, len;        /* value in arena */
        uint32_t key_off, key_len;
} msg_t;
typedef struct corpus_s {
        unsigned char *arena;
        size_t used, cap;
        msg_t *msgs;
        long n;
} corpus_t;

typedef struct pace_s {
        double *t_prod;           /* produce time of event i */
        int32_t **idx_of;         /* [partition][offset] -> event index */
        size_t *idx_cap;
        int partitions;
        long delivered, failed;
} pace_t;

typedef struct arrival_s {
        int32_t partition;        /* of the event the prediction is for */
        int64_t offset;
        double t;
} arrival_t;
typedef struct counter_s {
        char e2e_topic[MAX_TOPIC];
        int partitions;
        long want;
        int decode;               /* match prediction ids (latency runs) */
        int cover;                /* count distinct events instead (scale
                                   * runs; implies decoding ids) */
        pthread_t thr;
        atomic_int stop;
        atomic_long count;
        double t_first, t_last;
        double t_decile[10];      /* when count passed k * want / 10 */
        arrival_t *arr;
        size_t n_arr, cap_arr;
        long undecodable;
        uint8_t **seen;           /* cover: [partition][offset] predicted */
        size_t *seen_cap;
        atomic_long distinct;     /* cover: events with a prediction */
        double t_complete;        /* cover: when distinct reached want */
} counter_t;

/* ---- e2e_kafka.c ---------------------------------------------------------- */

/* The embedded broker (e2e_start_broker) and its bootstrap string. */
extern rd_kafka_t *e2e_mock_rk;
extern rd_kafka_mock_cluster_t *e2e_mock;
extern char e2e_bootstrap[256];

double e2e_now_s(void);                         /* CLOCK_MONOTONIC, s */
_Noreturn void e2e_die(const char *what);       /* message, exit 1 */
void e2e_set(rd_kafka_conf_t *kc, const char *k, const char *v);
void e2e_load_corpus(corpus_t *c, const char *path, long n);
void e2e_start_broker(void);
void e2e_topic(const char *name, int partitions);
rd_kafka_t *e2e_producer(const char *linger, pace_t *pc);
void e2e_produce(rd_kafka_t *rk, const char *tp, const corpus_t *c, long i);
double e2e_load_backlog(const corpus_t *c, const char *tp, int partitions);
counter_t *e2e_counter_start(const char *tp, int partitions, long want,
                             int decode);
counter_t *e2e_counter_start_cover(const char *tp, int partitions, long want);
void e2e_counter_wait(counter_t *ct, double timeout_s, double idle_s,
                      pid_t pid, int *status);
double e2e_counter_rate(const counter_t *ct);
void e2e_counter_free(counter_t *ct);

/* ---- e2e_scale.c ----------------------------------------------------------- */

/* The scale rows: `intentd run` instances in one group (e2e_scale.c's top
 * comment); returns the JSON array of their results (malloc'd). */
char *e2e_scale(const opts_t *o, const corpus_t *c, const char *conf);

/* ---- e2e_proc.c ------------------------------------------------------------ */

pid_t e2e_spawn(char *const argv[], const char *log_path);
int e2e_stop_child(pid_t pid, double timeout_s);
int e2e_wait_child(pid_t pid, double timeout_s);
pid_t e2e_perf_attach(const opts_t *o, pid_t pid, const char *name);
void e2e_perf_detach(pid_t perf);
void e2e_last_json(const char *path, char *out, size_t cap);
void e2e_write_conf(const opts_t *o, char *path, size_t cap);

#endif
