/*
 * test_it_dead_letter.c - "Kafka I/O that loses nothing", input side, as
 * separate processes: `intentd broker`, a producer that mixes good events
 * with more than twenty kinds of bad messages (bytes built here), and
 * `intentd run`. Then every bad message must be in the dead-letter topic
 * with the right `intentd.error.reason`, its key and value bytes unchanged
 * and its source topic/partition/offset headers right; every good one must
 * give one prediction; and the daemon's closing accounting line must add up.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/event.h"
#include "intentd/input.h"
#include "testutil.h"

#define PARTITIONS 2
#define N_GOOD 40
#define MAX_MSGS 128
#define MAX_BYTES 2048 /* input.max_message_bytes in the daemon's config */
#define BIG_BYTES 999900 /* + key + record overhead: under 1000000 */

static tu_broker_t broker;
static char conf_path[512];

/* Writer schemas the daemon reads from input.schemas_dir. */
static const char *schema_new = /* id 2: an extra field and symbol */
    "{\"type\":\"record\",\"name\":\"Event\",\"fields\":["
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"device\",\"type\":\"string\"},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
    "\"symbols\":[\"VIEW\",\"SEARCH\",\"ADD_TO_CART\",\"REMOVE_FROM_CART\","
    "\"PURCHASE\",\"FAVORITE\",\"SHARE\"]}}]}";
static const char *schema_no_user = /* id 3: incompatible */
    "{\"type\":\"record\",\"name\":\"Event\",\"fields\":["
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
    "\"symbols\":[\"VIEW\"]}}]}";
static const char *schema_null_ts = /* id 4: ts may be null */
    "{\"type\":\"record\",\"name\":\"Event\",\"fields\":["
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"ts\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
    "\"symbols\":[\"VIEW\"]}}]}";

static void write_in(const char *name, const char *text) {
        char path[512];
        snprintf(path, sizeof path, "%s/schemas/%s", broker.dir, name);
        cr_assert_eq(tu_write_file(path, text), 0, "cannot write %s", path);
}

static void start_broker(void) {
        tu_broker_start(&broker, PARTITIONS, NULL);
        char sdir[512], src[512];
        snprintf(sdir, sizeof sdir, "%s/schemas", broker.dir);
        cr_assert_eq(mkdir(sdir, 0755), 0);
        char *own = tu_read_file(tu_src("config/event.avsc", src, sizeof src));
        cr_assert(own);
        write_in("1.avsc", own);
        free(own);
        write_in("2.avsc", schema_new);
        write_in("3.avsc", schema_no_user);
        write_in("4.avsc", schema_null_ts);
        tu_conf_write(broker.dir, broker.bootstrap, "intentd.yaml", conf_path, sizeof conf_path,
                      TU_KAFKA_FAST,
                      "input:\n"
                      "  format: avro\n"
                      "  framing: confluent\n"
                      "  schemas_dir: \"%s\"\n"
                      "  max_message_bytes: %d\n"
                      "metrics:\n"
                      "  listen: \"\"\n"
                      "  log.interval: 1s\n",
                      sdir, MAX_BYTES);
}

static void stop_broker(void) {
        tu_broker_stop(&broker);
}

/* ---- the messages ---- */

typedef struct {
        const char *what;
        itd_reason_t want;       /* ITD_REASON_OK: a good event */
        unsigned char *value;    /* NULL: a null value */
        size_t len;
        char key[32];
        int partition;
        int64_t offset;          /* from the delivery report */
        int seen;                /* found in the output */
        int may_truncate;        /* too large to dead-letter whole */
} msg_t;

static msg_t msgs[MAX_MSGS];
static size_t n_msgs;

/* An event in the built-in schema (id 1); price NAN = null. */
static void put_event(tu_bytes_t *o, const char *user, int64_t ts,
                      int64_t type, double price) {
        tu_put_header(o, 1);
        tu_put_event(o, user, ts, type, price, NULL);
}

static void add(const char *what, itd_reason_t want, const tu_bytes_t *b) {
        cr_assert_lt(n_msgs, MAX_MSGS);
        msg_t *m = &msgs[n_msgs];
        m->what = what;
        m->want = want;
        if (b) {
                m->value = malloc(b->n ? b->n : 1);
                memcpy(m->value, b->b, b->n);
                m->len = b->n;
        }
        snprintf(m->key, sizeof m->key, "u%zu", n_msgs % 7);
        m->partition = (int)(n_msgs % PARTITIONS);
        m->offset = -1;
        n_msgs++;
}

static void build_messages(void) {
        int64_t now = (int64_t)time(NULL) * 1000;
        int64_t t0 = now - 3600 * 1000;
        char err[256], long_id[100];
        tu_bytes_t b;
        itd_codec_t *codec = itd_codec_new(err, sizeof err);
        cr_assert(codec, "%s", err);
        memset(long_id, 'x', sizeof long_id - 1);
        long_id[sizeof long_id - 1] = '\0';

        for (int i = 0; i < N_GOOD; i++) {
                itd_event_t ev;
                itd_event_clear(&ev);
                snprintf(ev.user_id, sizeof ev.user_id, "u%d", i % 7);
                ev.ts_ms = t0 + i * 1000;
                ev.type = (itd_event_type_t)(i % ITD_EV__COUNT);
                ev.price = i % 3 ? 10.0 + i : NAN;
                if (i % 10 == 9) { /* a newer writer, resolved by name */
                        tu_put_header(&b, 2);
                        tu_put_str(&b, ev.user_id);
                        tu_put_str(&b, "ios");
                        tu_put_long(&b, ev.ts_ms);
                        tu_put_long(&b, 4);
                } else {
                        cr_assert_eq(itd_codec_encode_event(codec, &ev, 1, b.b,
                                                            sizeof b.b, &b.n),
                                     ITD_OK);
                }
                add("good", ITD_REASON_OK, &b);
                /* interleave the bad ones with the good ones */
                if (i == 20)
                        break;
        }
        int good_so_far = 21;

        add("null value", ITD_REASON_EMPTY_MESSAGE, NULL);

        /* Just under what a producer with librdkafka's defaults sends
         * (message.max.bytes 1000000): the broker takes it, but the dead
         * letter, with its headers, no longer fits. It must land cut, with
         * a header saying so, and its offset must not hold the partition. */
        add("about 1 MB", ITD_REASON_MESSAGE_TOO_LARGE, NULL);
        msg_t *big = &msgs[n_msgs - 1];
        big->len = BIG_BYTES;
        big->value = malloc(BIG_BYTES);
        memset(big->value, 'B', BIG_BYTES);
        big->value[0] = 0; /* Confluent magic byte, id 1 */
        big->may_truncate = 1;

        put_event(&b, "u1", t0, 0, NAN);
        memset(b.b + b.n, 'z', MAX_BYTES);
        b.n += MAX_BYTES;
        add("over max_message_bytes", ITD_REASON_MESSAGE_TOO_LARGE, &b);

        put_event(&b, "u1", t0, 0, NAN);
        b.b[0] = 0x02;
        add("magic byte 2", ITD_REASON_BAD_MAGIC_BYTE, &b);

        put_event(&b, "u1", t0, 0, NAN);
        b.b[4] = 99;
        add("schema id 99", ITD_REASON_UNKNOWN_SCHEMA_ID, &b);

        tu_put_header(&b, 3);
        tu_put_long(&b, t0);
        tu_put_long(&b, 0);
        add("writer without user_id", ITD_REASON_SCHEMA_INCOMPATIBLE, &b);

        put_event(&b, "u1", t0, 0, NAN);
        b.n -= 4;
        add("cut short", ITD_REASON_TRUNCATED, &b);

        b.n = 3;
        memset(b.b, 0, 3);
        add("shorter than the header", ITD_REASON_TRUNCATED, &b);

        put_event(&b, "u1", t0, 0, NAN);
        tu_put_raw(&b, "\x01\x02\x03", 3);
        add("trailing bytes", ITD_REASON_TRAILING_BYTES, &b);

        tu_put_header(&b, 1);
        tu_put_long(&b, 0);
        tu_put_long(&b, -7);
        add("negative length", ITD_REASON_NEGATIVE_LENGTH, &b);

        tu_put_header(&b, 1);
        tu_put_long(&b, 3);
        add("union branch 3", ITD_REASON_BAD_UNION_BRANCH, &b);

        put_event(&b, "u1", t0, 11, NAN);
        add("enum index 11", ITD_REASON_BAD_ENUM_INDEX, &b);

        tu_put_header(&b, 1);
        tu_put_long(&b, 0);
        tu_put_str(&b, "u1");
        memset(b.b + b.n, 0x80, 12);
        b.n += 12;
        add("varint of 12 bytes", ITD_REASON_MALFORMED_AVRO, &b);

        tu_put_header(&b, 4);
        tu_put_str(&b, "u1");
        tu_put_long(&b, 0); /* ts: null */
        tu_put_long(&b, 0);
        add("null ts", ITD_REASON_MISSING_FIELD, &b);

        put_event(&b, "", t0, 0, NAN);
        add("empty user id", ITD_REASON_MISSING_USER_ID, &b);

        tu_put_header(&b, 2);
        tu_put_str(&b, "u1");
        tu_put_str(&b, "web");
        tu_put_long(&b, t0);
        tu_put_long(&b, 6); /* SHARE */
        add("symbol SHARE", ITD_REASON_UNKNOWN_EVENT_TYPE, &b);

        put_event(&b, "u1", 915148800000LL, 0, NAN); /* 1999 */
        add("ts in 1999", ITD_REASON_TS_TOO_OLD, &b);

        put_event(&b, "u1", now + 86400000LL, 0, NAN);
        add("ts tomorrow", ITD_REASON_TS_IN_FUTURE, &b);

        put_event(&b, "u1", t0, 4, -3.5);
        add("negative price", ITD_REASON_BAD_PRICE, &b);

        put_event(&b, "u1", t0, 4, NAN);
        b.n -= 3;
        tu_put_long(&b, 1);
        tu_put_double(&b, NAN);
        tu_put_long(&b, 0);
        tu_put_long(&b, 0);
        add("NaN price", ITD_REASON_BAD_PRICE, &b);

        put_event(&b, long_id, t0, 0, NAN);
        add("99-byte user id", ITD_REASON_STRING_TOO_LONG, &b);

        put_event(&b, "u\xe2\x82", t0, 0, NAN);
        add("cut UTF-8 sequence", ITD_REASON_INVALID_UTF8, &b);

        tu_put_header(&b, 1);
        tu_put_long(&b, 0);
        tu_put_long(&b, 2);
        tu_put_raw(&b, "u\0", 2);
        tu_put_long(&b, t0);
        tu_put_long(&b, 0);
        for (int k = 0; k < 5; k++)
                tu_put_long(&b, 0);
        add("NUL in user id", ITD_REASON_NUL_IN_STRING, &b);

        for (int i = good_so_far; i < N_GOOD; i++) {
                itd_event_t ev;
                itd_event_clear(&ev);
                snprintf(ev.user_id, sizeof ev.user_id, "u%d", i % 7);
                ev.ts_ms = t0 + i * 1000;
                ev.type = (itd_event_type_t)(i % ITD_EV__COUNT);
                cr_assert_eq(itd_codec_encode_event(codec, &ev, 1, b.b,
                                                    sizeof b.b, &b.n),
                             ITD_OK);
                add("good", ITD_REASON_OK, &b);
        }
        itd_codec_destroy(codec);
}

static void produce_all(const char *bs) {
        static tu_record_t recs[MAX_MSGS];
        for (size_t i = 0; i < n_msgs; i++)
                recs[i] = (tu_record_t){.partition = msgs[i].partition,
                                        .key = msgs[i].key,
                                        .value = msgs[i].value,
                                        .len = msgs[i].len};
        tu_produce(bs, "intentd.events", recs, n_msgs);
        for (size_t i = 0; i < n_msgs; i++)
                msgs[i].offset = recs[i].offset;
}

/* Copies header name's value (NUL-terminated) into buf; 0 if absent. */
static int header(const rd_kafka_message_t *m, const char *name, char *buf,
                  size_t cap) {
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t n;
        buf[0] = '\0';
        if (rd_kafka_message_headers(m, &h) || !h ||
            rd_kafka_header_get_last(h, name, &v, &n))
                return 0;
        if (n >= cap)
                n = cap - 1;
        memcpy(buf, v, n);
        buf[n] = '\0';
        return 1;
}

static msg_t *find_msg(int partition, int64_t offset) {
        for (size_t i = 0; i < n_msgs; i++)
                if (msgs[i].partition == partition &&
                    msgs[i].offset == offset)
                        return &msgs[i];
        return NULL;
}

TestSuite(dead_letter, .init = start_broker, .fini = stop_broker,
          .timeout = 180);

/* What the two output topics held, against the messages produced. */
typedef struct tally_s {
        size_t n_good, n_bad; /* to wait for */
        size_t preds, dlq, wrong_reason, changed, bad_headers, unknown, dup,
            cut;
} tally_t;

static int on_output(void *arg, const rd_kafka_message_t *m) {
        tally_t *t = arg;
        if (strcmp(rd_kafka_topic_name(m->rkt), "intentd.predictions") == 0) {
                t->preds++;
                return t->preds >= t->n_good && t->dlq >= t->n_bad;
        }
        t->dlq++;
        char reason[64], topic[256], part[32], off[32], detail[512];
        int ok = header(m, "intentd.error.reason", reason,
                        sizeof reason) &&
                 header(m, "intentd.error.detail", detail,
                        sizeof detail) &&
                 header(m, "intentd.source.topic", topic,
                        sizeof topic) &&
                 header(m, "intentd.source.partition", part,
                        sizeof part) &&
                 header(m, "intentd.source.offset", off, sizeof off);
        msg_t *src = ok ? find_msg(atoi(part), atoll(off)) : NULL;
        if (!ok || strcmp(topic, "intentd.events") != 0) {
                t->bad_headers++;
        } else if (!src) {
                t->unknown++;
                cr_log_error("dead letter for %s/%s@%s matches no "
                             "produced message",
                             topic, part, off);
        } else {
                if (src->seen++)
                        t->dup++;
                if (strcmp(reason, itd_reason_name(src->want))) {
                        t->wrong_reason++;
                        cr_log_error("%s: reason \"%s\", want "
                                     "\"%s\" (detail: %s)",
                                     src->what, reason,
                                     itd_reason_name(src->want),
                                     detail);
                }
                char orig[32];
                if (header(m, "intentd.value.truncated", orig,
                           sizeof orig)) {
                        /* Cut to fit: a prefix of the original,
                         * the header naming the original length. */
                        if (!src->may_truncate ||
                            (size_t)atoll(orig) != src->len ||
                            m->len >= src->len ||
                            (m->len && memcmp(m->payload, src->value,
                                              m->len)))
                                t->changed++;
                        else
                                t->cut++;
                } else if (m->len != src->len ||
                           (src->len &&
                            memcmp(m->payload, src->value,
                                   src->len)) ||
                           m->key_len != strlen(src->key) ||
                           memcmp(m->key, src->key, m->key_len)) {
                        t->changed++;
                }
                if (detail[0] == '\0')
                        t->bad_headers++;
        }
        return t->preds >= t->n_good && t->dlq >= t->n_bad;
}

Test(dead_letter, every_bad_message_reaches_the_dead_letter_topic_intact) {
        build_messages();
        size_t n_bad = 0, n_good = 0, kinds = 0;
        int kind_seen[ITD_REASON__COUNT] = {0};
        for (size_t i = 0; i < n_msgs; i++) {
                if (msgs[i].want == ITD_REASON_OK) {
                        n_good++;
                        continue;
                }
                n_bad++;
                if (!kind_seen[msgs[i].want]++)
                        kinds++;
        }
        cr_assert_geq(kinds, 20, "only %zu distinct reasons", kinds);
        cr_assert_eq(n_good, N_GOOD);

        produce_all(broker.bootstrap);

        char log_run[512];
        snprintf(log_run, sizeof log_run, "%s/run.log", broker.dir);
        pid_t run_pid = tu_daemon_start(conf_path, log_run);

        /* Read both output topics from the start, by assignment. */
        rd_kafka_t *rk = tu_reader_new(broker.bootstrap, "dead-letter-test",
                                       "intentd.predictions,"
                                       "intentd.dead_letter",
                                       PARTITIONS);

        tally_t t = {.n_good = n_good, .n_bad = n_bad};
        tu_poll(rk, 90000, on_output, &t);
        size_t preds = t.preds, dlq = t.dlq, wrong_reason = t.wrong_reason,
               changed = t.changed, bad_headers = t.bad_headers,
               unknown = t.unknown, dup = t.dup, cut = t.cut;
        tu_consumer_destroy(rk);

        kill(run_pid, SIGTERM);
        int rc = tu_wait(run_pid, 60000);
        cr_expect_eq(rc, 0, "intentd run exited %d on SIGTERM (see %s)", rc,
                     log_run);

        for (size_t i = 0; i < n_msgs; i++)
                if (msgs[i].want != ITD_REASON_OK && !msgs[i].seen)
                        cr_log_error("not dead-lettered: %s (want %s)",
                                     msgs[i].what,
                                     itd_reason_name(msgs[i].want));
        cr_expect_eq(dlq, n_bad, "dead letters: %zu of %zu (see %s)", dlq,
                     n_bad, log_run);
        cr_expect_eq(preds, n_good, "predictions: %zu of %zu (see %s)", preds,
                     n_good, log_run);
        cr_expect_eq(wrong_reason, 0, "%zu dead letters with a wrong reason",
                     wrong_reason);
        cr_expect_eq(changed, 0, "%zu dead letters with changed bytes",
                     changed);
        cr_expect_eq(bad_headers, 0, "%zu dead letters with bad headers",
                     bad_headers);
        cr_expect_eq(unknown, 0);
        cr_expect_eq(dup, 0, "%zu duplicate dead letters", dup);
        cr_expect_eq(cut, 1, "the 1 MB message was not dead-lettered cut "
                     "with an intentd.value.truncated header");

        /* The daemon's own accounting, from its closing line. */
        char *text = tu_read_file(log_run);
        cr_assert(text, "no run log");
        char *line = strstr(text, "accounting: ");
        cr_assert(line, "no accounting line in %s", log_run);
        unsigned long long consumed, predicted, dead, filtered;
        cr_assert_eq(sscanf(line,
                            "accounting: consumed=%llu predicted=%llu "
                            "dead_lettered=%llu filtered=%llu",
                            &consumed, &predicted, &dead, &filtered),
                     4, "cannot parse: %.200s", line);
        cr_expect_eq(consumed, predicted + dead + filtered,
                     "consumed %llu != predicted %llu + dead-lettered %llu "
                     "+ filtered %llu",
                     consumed, predicted, dead, filtered);
        cr_expect_eq(consumed, (unsigned long long)n_msgs);
        cr_expect_eq(dead, (unsigned long long)n_bad);
        unsigned long long undeliverable = 99, truncated = 99;
        char *tail = strstr(line, "undeliverable=");
        cr_assert(tail, "no undeliverable count: %.200s", line);
        cr_expect_eq(sscanf(tail, "undeliverable=%llu dead_letters_truncated="
                                  "%llu",
                            &undeliverable, &truncated),
                     2, "cannot parse: %.200s", tail);
        cr_expect_eq(undeliverable, 0);
        cr_expect_eq(truncated, 1);
        free(text);

        /* Nothing holds a partition back: the group's committed offsets
         * reached the end of both partitions. */
        int64_t committed[PARTITIONS], end[PARTITIONS];
        cr_assert_eq(tu_offsets(broker.bootstrap, "intentd", "intentd.events",
                                PARTITIONS, committed, end), 0);
        for (int p = 0; p < PARTITIONS; p++)
                cr_expect_eq(committed[p], end[p],
                             "partition %d: committed %lld, end %lld", p,
                             (long long)committed[p], (long long)end[p]);
        for (size_t i = 0; i < n_msgs; i++)
                free(msgs[i].value);
}
