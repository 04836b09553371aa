/*
 * testutil.h - shared helpers for the Criterion tests: temporary folders,
 * the shared real data (skipped cleanly when absent), child processes and
 * polling; for the integration tests the embedded broker, daemon configs,
 * prediction collection with a real consumer, HTTP and free ports.
 *
 * Helpers that set up a test (broker, config) fail the test with
 * cr_assert; the others return an error value for the test to judge.
 */
#ifndef INTENTD_TESTUTIL_H
#define INTENTD_TESTUTIL_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <sys/types.h>

#include "intentd/prediction.h"

/**
 * Path of a file under ../shared/data (or $ITD_SHARED_DATA), written to
 * buf; returns NULL when it does not exist, so the caller can
 * cr_skip_test("... absent").
 */
const char *tu_shared_data(const char *rel, char *buf, size_t cap);

/** Creates a fresh temporary folder; returns its path (static storage per call site not needed: buf). */
const char *tu_tmpdir(char *buf, size_t cap);

/** Path of a file in the source tree (fixtures, config). */
const char *tu_src(const char *rel, char *buf, size_t cap);

/** Starts argv[0..] (NULL-terminated) with stdout/stderr to log_path (or inherited if NULL); returns pid. */
pid_t tu_spawn(char *const argv[], const char *log_path);

/** Waits up to timeout_ms for pid; returns its exit status (0..255), 128+signal, or -1 on timeout. */
int tu_wait(pid_t pid, int timeout_ms);

/** Waits until path exists and is non-empty; returns 0, or -1 on timeout. */
int tu_wait_file(const char *path, int timeout_ms);

/** Reads a whole small file into a malloc'd NUL-terminated string (caller frees), trailing newline removed; NULL on error. */
char *tu_read_file(const char *path);

/** A file of the source tree, whole (malloc'd, trailing newlines
 * removed); fails the test when it cannot be read. */
char *tu_read_src(const char *rel);

/** Writes text to path; returns 0 on success. */
int tu_write_file(const char *path, const char *text);

/** Runs argv to completion (timeout_ms) with output to log_path; returns exit status or -1. */
int tu_run(char *const argv[], const char *log_path, int timeout_ms);

/* A test that limits its address space (RLIMIT_AS) cannot run under
 * AddressSanitizer, whose shadow memory reserves terabytes of it: skipped
 * in such a build (-DITD_SANITIZE=ON), a no-op otherwise. */
#if defined(__SANITIZE_ADDRESS__)
#define TU_SKIP_UNDER_ASAN()                                                   \
        cr_skip_test("limits RLIMIT_AS: not under AddressSanitizer")
#else
#define TU_SKIP_UNDER_ASAN() ((void)0)
#endif

/** Sleeps ms milliseconds (between polls; never as a way to wait for a
 * condition: tu_wait_until). */
void tu_sleep_ms(int ms);

/** Calls cond(arg) every 50 ms until it returns nonzero (returns 0) or
 * timeout_ms passed (returns -1). */
int tu_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms);

/** SIGTERM to pid, waits up to timeout_ms, then SIGKILL; returns its exit
 * status as tu_wait does, or -1 if it had to be killed. pid <= 0: -1. */
int tu_stop(pid_t pid, int timeout_ms);

/** Lines of a text file (a last line without a newline counts); fails
 * the test when the file cannot be read. */
long tu_count_lines(const char *path);

/** The value of key in the build's CMakeCache.txt (beside ITD_BINARY) into
 * buf; fails the test when the file or the key is missing. */
const char *tu_cmake_cache(const char *key, char *buf, size_t cap);

/** Occurrences of what in text. */
size_t tu_count_str(const char *text, const char *what);

/** The argv prefix (program, optional argument) of a python3 that can run
 * `import imports` ($ITD_PYTHON first, then python3 on PATH, then
 * /usr/bin/python3), or NULL; its attempts' output goes to log. */
char **tu_find_python(const char *imports, const char *log);

/** Fills argv (cap entries) with py (tu_find_python's prefix), the
 * script of the source tree rel (its path in script, script_cap bytes)
 * and the NULL-terminated arguments after it; NULL-terminated. */
void tu_python_argv(char **argv, size_t cap, char *const *py,
                    const char *rel, char *script, size_t script_cap, ...);

/** 1 if the shell finds cmd on PATH. */
int tu_have(const char *cmd);

/** Runs `sh -c line` (timeout_ms) with its output to dir/cmd.log;
 * returns the exit status (or -1), *out the output (malloc'd, never NULL). */
int tu_sh(const char *dir, const char *line, int timeout_ms, char **out);

/** Runs `promtool check metrics` on text (written to dir/metrics.txt);
 * returns its exit status (0: clean; 1 a parse error, 3 a lint problem),
 * *out its output (malloc'd, never NULL). */
int tu_promtool_check(const char *dir, const char *text, char **out);

/* ---- the embedded broker (`intentd broker`) -------------------------- */

typedef struct tu_broker_s {
        char dir[256];     /* fresh temporary folder, for the whole test */
        char bs_path[512]; /* the bootstrap file the broker writes */
        char log[512];     /* its output */
        char *bootstrap;   /* "host:port" (owned) */
        pid_t pid;
} tu_broker_t;

/**
 * Makes a temporary folder and starts `intentd broker --partitions N`
 * there (with `--topics topics` unless NULL), waits for its bootstrap
 * file and reads it into b->bootstrap.
 */
void tu_broker_start(tu_broker_t *b, int partitions, const char *topics);

/** Stops the broker (SIGTERM, then SIGKILL after 5 s); frees bootstrap. */
void tu_broker_stop(tu_broker_t *b);

/* Consumer-group timings short enough for tests: a restarted member gets
 * its partitions back in seconds. For tu_conf_write's kafka_lines. */
#define TU_KAFKA_FAST "  session.timeout.ms: 6000\n  heartbeat.interval.ms: 500\n"

/* YAML sections of a small test daemon whose state follows the events
 * alone, for tu_conf_write's fmt: windows.allowed_lateness 1h (no
 * watermark moves by wall clock), a small model, no HTTP listener. The
 * metrics: section is last, so "  log.interval: 1s\n" may follow. */
#define TU_YAML_SMALL                                                          \
        "windows:\n"                                                           \
        "  allowed_lateness: 1h\n"                                             \
        "model:\n"                                                             \
        "  embedding.buckets: 1024\n"                                          \
        "  hidden: [16]\n"                                                     \
        "metrics:\n"                                                           \
        "  listen: \"\"\n"

/**
 * Writes the daemon config dir/name: a `kafka:` section with
 * bootstrap.servers (a tu_broker_t's, or a mock cluster's) and kafka_lines
 * (each "  key: value\n"; NULL: none), then the other sections,
 * printf-style (fmt may be NULL). Its path goes to path.
 */
const char *tu_conf_write(const char *dir, const char *bootstrap,
                          const char *name, char *path, size_t cap,
                          const char *kafka_lines, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/** Starts `intentd run --config conf` with its output to log_path. */
pid_t tu_daemon_start(const char *conf, const char *log_path);

/** Runs `intentd load --config conf --input input --format format` to
 * completion (60 s) with its output to log_path; returns its exit status. */
int tu_load(const char *conf, const char *input, const char *format,
            const char *log_path);

/**
 * `intentd inspect state [--summary]` of each checkpoint folder cks[0..n)
 * (its output in dir/inspect.<folder name>.<summary>): their JSON lines
 * together, sorted (each once when unique), as one string (caller frees).
 * Fails the test when an inspect fails or nothing was printed.
 */
char *tu_inspect_state(const char *dir, const char *const *cks, int n,
                       int summary, int unique);

/* ---- reading topics ---------------------------------------------------- */

/** A consumer of topics (comma-separated) from their beginning, in its
 * own group; fails the test if it cannot be made. */
rd_kafka_t *tu_consumer_new(const char *bootstrap, const char *group,
                            const char *topics);

/** A reader of partitions 0..partitions-1 of each of topics
 * (comma-separated), assigned from their beginning (no group membership,
 * no commits); fails the test if it cannot be made. */
rd_kafka_t *tu_reader_new(const char *bootstrap, const char *group,
                          const char *topics, int partitions);

/** Closes and destroys a tu_consumer_new or tu_reader_new consumer. */
void tu_consumer_destroy(rd_kafka_t *rk);

/** Calls on(arg, m) for every record rk reads until it returns nonzero
 * (returns 0) or timeout_ms of polls came back empty (returns -1). */
int tu_poll(rd_kafka_t *rk, int timeout_ms,
            int (*on)(void *arg, const rd_kafka_message_t *m), void *arg);

/**
 * Called for each record read: its topic and the prediction it decodes to
 * (NULL: it did not decode). Returns nonzero when enough was read.
 */
typedef int (*tu_on_prediction_t)(void *arg, const rd_kafka_message_t *m,
                                  const itd_prediction_t *p);

/**
 * Polls rk, decoding each record as a prediction (Confluent-framed or
 * bare), as tu_poll does.
 */
int tu_collect_predictions(rd_kafka_t *rk, int timeout_ms,
                           tu_on_prediction_t on, void *arg);

/** A plain client of bootstrap (a producer that sends nothing), for
 * tu_topic_records; fails the test if it cannot be made. Free it with
 * rd_kafka_destroy. */
rd_kafka_t *tu_client_new(const char *bootstrap);

/** Records in a topic now (the sum of its partitions' high watermarks
 * over partitions 0..partitions-1), or -1. rk: any client. */
long tu_topic_records(rd_kafka_t *rk, const char *topic, int partitions);

/**
 * Partitions 0..partitions-1 of topic: the offsets group committed
 * (committed[p], a negative value when none) and their ends (end[p], the
 * high watermarks; may be NULL). Returns 0, or -1 when the broker did not
 * answer within 10 s.
 */
int tu_offsets(const char *bootstrap, const char *group, const char *topic,
               int partitions, int64_t *committed, int64_t *end);

/* A record to produce, and where it was stored. */
typedef struct tu_record_s {
        int32_t partition;
        const char *key;   /* NUL-terminated */
        const void *value; /* NULL: a null value */
        size_t len;
        int64_t offset;    /* out: its offset, -1 if not stored */
} tu_record_t;

/** Produces the n records to topic, waits for their delivery (20 s) and
 * fails the test naming the first record that was not stored. */
void tu_produce(const char *bootstrap, const char *topic, tu_record_t *recs,
                size_t n);

/* A set of ids (prediction ids), for "exactly one per event". */
typedef struct tu_idset_s {
        char **ids;
        size_t cap;
        long unique, total;
} tu_idset_t;

/** An empty set for up to about cap/2 ids. */
void tu_idset_init(tu_idset_t *s, size_t cap);
/** Adds id; returns 1 if it was new, 0 if seen before. */
int tu_idset_add(tu_idset_t *s, const char *id);
void tu_idset_free(tu_idset_t *s);

/* ---- HTTP and ports ---------------------------------------------------- */

/** A TCP port on 127.0.0.1 that was free a moment ago. */
int tu_free_port(void);

/**
 * `method path` over HTTP/1.0 to 127.0.0.1:port, read to the end; a read
 * waiting longer than timeout_ms fails. Returns the status, or -1 (no connection, no valid
 * response); head and body (each may be NULL) get malloc'd copies of the
 * response's head and body.
 */
int tu_http(int port, const char *method, const char *path, int timeout_ms,
            char **head, char **body);

/* ---- Avro by hand (tests/testutil_avro.c) ------------------------------ */

/* A message being written (Avro binary, little-endian floats). */
typedef struct tu_bytes_s {
        unsigned char b[4096];
        size_t n;
} tu_bytes_t;

/** Appends n bytes; fails the test when they do not fit. */
void tu_put_raw(tu_bytes_t *o, const void *p, size_t n);
/** An Avro long (zig-zag varint) into out; returns its 1..10 bytes. For
 * a buffer of another kind; tu_put_long appends one to a tu_bytes_t. */
size_t tu_avro_long(unsigned char out[10], int64_t v);
/** An Avro long (zig-zag varint). */
void tu_put_long(tu_bytes_t *o, int64_t v);
/** An Avro string: its length, then its bytes. */
void tu_put_str(tu_bytes_t *o, const char *s);
void tu_put_double(tu_bytes_t *o, double d);
void tu_put_float(tu_bytes_t *o, float f);
/** Starts o over with the 5-byte Confluent header of schema id. */
void tu_put_header(tu_bytes_t *o, uint32_t id);
/**
 * Appends an event in the built-in schema's field order (event_id,
 * user_id, ts, type, item_id, category, price, query, session_id): the
 * optional strings null but query when given, price null when NAN.
 */
void tu_put_event(tu_bytes_t *o, const char *user, int64_t ts, int64_t type,
                  double price, const char *query);
/** Fails the test unless a and b hold the same event, field by field
 * (a NaN price equals a NaN price). */
void tu_assert_same_event(const itd_event_t *a, const itd_event_t *b);

/* A writer schema of the event with user_id, ts and a "type" field of
 * the given JSON type. */
#define TU_EVENT_WITH_TYPE(TYPE_JSON)                                          \
        "{\"type\":\"record\",\"name\":\"Event\",\"fields\":["               \
        "{\"name\":\"user_id\",\"type\":\"string\"},"                         \
        "{\"name\":\"ts\",\"type\":\"long\"},"                                \
        "{\"name\":\"type\",\"type\":" TYPE_JSON "}]}"
/* The event type enum as config/event.avsc has it. */
#define TU_ENUM_ALL                                                            \
        "{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":[\"VIEW\","   \
        "\"SEARCH\",\"ADD_TO_CART\",\"REMOVE_FROM_CART\",\"PURCHASE\","       \
        "\"FAVORITE\"]}"

/* ---- two daemons side by side (tests/testutil_pair.c) ------------------ */

/*
 * Two `intentd run` daemons, "a" and "b", on one tu_broker_t, fed the same
 * events from topic intentd.events: each its own consumer group
 * (group.<name>), prediction topic (pred.<name>) and checkpoint.dir
 * (<broker dir>/ckpt.<name>). One runs undisturbed; the other is killed,
 * restarted or run with other settings, and the two are compared.
 */

/**
 * Writes daemon name's config into the broker's folder (its path into
 * path): Avro input, dead letters to dlq, TU_YAML_SMALL, no HTTP listener,
 * a checkpoint every second; extra (NULL: none) is appended as further
 * top-level sections.
 */
void tu_pair_conf(const tu_broker_t *b, const char *name, const char *extra,
                  char *path, size_t cap);

/** Starts daemon name with conf, its output in <broker dir>/run.<name>.log. */
pid_t tu_pair_start(const tu_broker_t *b, const char *name,
                    const char *conf);

/**
 * Reads pred.a and pred.b from their beginning into the sets a and bs
 * (initialised here; tu_idset_free them) until each holds want unique
 * prediction ids, or 150 s of polls came back empty.
 */
void tu_pair_collect(const tu_broker_t *b, long want, tu_idset_t *a,
                     tu_idset_t *bs);

/** tu_inspect_state of daemon name's checkpoint folder (caller frees). */
char *tu_pair_inspect(const tu_broker_t *b, const char *name, int summary);

/** Waits until group.a and group.b committed every event of
 * intentd.events (partitions 0..partitions-1, at most 64): commits follow
 * complete checkpoints. Fails the test after timeout_ms. */
void tu_pair_wait_committed(const tu_broker_t *b, int partitions,
                            int timeout_ms);

/** Stops daemons a and b (SIGTERM; each must exit 0 within 60 s) and
 * expects each of pred.a (sa) and pred.b (sb) to hold a prediction for
 * every one of the events. */
void tu_pair_stop_and_count(pid_t a, pid_t b, const tu_idset_t *sa,
                            const tu_idset_t *sb, long events);

/** Sequence of the newest complete checkpoint in the folder ck (0: none). */
unsigned long long tu_newest_checkpoint(const char *ck);

/** Waits until ck holds a complete checkpoint newer than seq; fails the
 * test after 30 s. */
void tu_wait_new_checkpoint(const char *ck, unsigned long long seq);

#endif
