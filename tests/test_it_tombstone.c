/*
 * test_it_tombstone.c - a state changelog snapshot that shrinks leaves
 * tombstones for the parts it no longer uses, as processes on the
 * embedded broker.
 *
 * Instance A (`intentd run` with topics.changelog and topics.control,
 * records of at most ~2 KB through kafka.message.max.bytes) takes the
 * events of USERS users on one partition, so its snapshot is cut into
 * many parts. Then all but KEEP users are erased; the next snapshot needs
 * fewer parts, and the keys of the parts it leaves behind must get null
 * values (tombstones), or a compacted topic would keep the stale parts of
 * the longer snapshot for ever.
 *
 * The mock broker does not compact: the test reads the whole changelog,
 * checks that the newest record of every key past the new snapshot's
 * parts is a tombstone and the newest records of the others are the new
 * snapshot, and writes what compaction would keep (the newest record of
 * each key, tombstones included, in log order) to a second topic.
 * Instance B, in A's group with a fresh checkpoint folder, restores from
 * that topic: its `intentd inspect state` must equal A's, KEEP users.
 *
 * windows.allowed_lateness is 1h so no watermark moves by wall clock: the
 * state depends on the events and erasures alone.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define USERS 200
#define KEEP 3
#define MAX_KEYS 1024
#define WAIT_MS 90000

static tu_broker_t broker;

static void start_broker(void) {
        tu_broker_start(&broker, 1,
                        "intentd.events,pred,dlq,intentd.changelog,"
                        "compacted.changelog,intentd.control,intentd.audit");
}

static void stop_broker(void) { tu_broker_stop(&broker); }

TestSuite(it_tombstone, .init = start_broker, .fini = stop_broker,
          .timeout = 280);

/* Instance "a" (erasures on) or "b" (restores from the compacted copy). */
static void write_conf(const char *name, const char *changelog,
                       const char *control, char *path, size_t cap) {
        char file[32];
        snprintf(file, sizeof file, "%s.yaml", name);
        tu_conf_write(broker.dir, broker.bootstrap, file, path, cap,
                      TU_KAFKA_FAST "  group.id: group.t\n"
                                    "  message.max.bytes: 3000\n",
                      "topics:\n"
                      "  predictions: pred\n"
                      "  dead_letter: dlq\n"
                      "  changelog: %s\n"
                      "%s"
                      "input:\n"
                      "  format: json\n"
                      "state:\n"
                      "  changelog.interval: 200ms\n"
                      TU_YAML_SMALL
                      "checkpoint:\n"
                      "  dir: \"%s/ck-%s\"\n"
                      "  interval: 1s\n",
                      changelog, control, broker.dir, name);
}

static void user_id(int u, char *buf, size_t cap) {
        snprintf(buf, cap, "user-%03d", u);
}

/* Two events of each user. */
static void produce_events(int64_t now) {
        static char text[USERS * 2][256], id[USERS][16];
        static tu_record_t recs[USERS * 2];
        for (int i = 0; i < USERS * 2; i++) {
                int u = i / 2;
                user_id(u, id[u], sizeof id[u]);
                snprintf(text[i], sizeof text[i],
                         "{\"user_id\":\"%s\",\"ts\":%lld,\"type\":\"VIEW\","
                         "\"item_id\":\"i%d\",\"category\":\"c%d\"}",
                         id[u], (long long)(now - 600000 + i * 1000LL), i,
                         i % 5);
                recs[i] = (tu_record_t){.partition = 0, .key = id[u],
                                        .value = text[i],
                                        .len = strlen(text[i])};
        }
        tu_produce(broker.bootstrap, "intentd.events", recs, USERS * 2);
}

/* An erasure request for every user but the first KEEP. */
static void produce_erasures(int64_t now) {
        static char text[USERS][256], id[USERS][16];
        static tu_record_t recs[USERS];
        size_t n = 0;
        for (int u = KEEP; u < USERS; u++, n++) {
                user_id(u, id[u], sizeof id[u]);
                snprintf(text[u], sizeof text[u],
                         "{\"type\":\"ERASE\",\"user_id\":\"%s\","
                         "\"request_id\":\"req-%d\",\"requested_at\":%lld}",
                         id[u], u, (long long)now);
                recs[n] = (tu_record_t){.partition = 0, .key = id[u],
                                        .value = text[u],
                                        .len = strlen(text[u])};
        }
        tu_produce(broker.bootstrap, "intentd.control", recs, n);
}

/* group.t committed every event (A's snapshot covers them all). */
static int all_committed(void *arg) {
        (void)arg;
        int64_t got[1], end[1];
        return tu_offsets(broker.bootstrap, "group.t", "intentd.events", 1,
                          got, end) == 0 &&
               got[0] == end[0] && end[0] == USERS * 2;
}

typedef struct want_s {
        const char *topic;
        long n;
} want_t;

static int has_records(void *arg) {
        const want_t *w = arg;
        rd_kafka_t *rk = tu_client_new(broker.bootstrap);
        long n = tu_topic_records(rk, w->topic, 1);
        rd_kafka_destroy(rk);
        return n >= w->n;
}

/* The newest record of each key "0/k" of the changelog, as read. */
typedef struct key_last_s {
        int seen;
        int64_t offset;
        void *value; /* NULL: a tombstone */
        size_t len;
} key_last_t;

typedef struct changelog_s {
        key_last_t keys[MAX_KEYS];
        long records, want;
        long n_keys;        /* 1 + the highest k seen */
        long longest;       /* 1 + the highest k with a value */
        long tombstones;
} changelog_t;

static int on_changelog(void *arg, const rd_kafka_message_t *m) {
        changelog_t *c = arg;
        char key[32];
        cr_assert(m->key_len < sizeof key, "a key of %zu bytes", m->key_len);
        memcpy(key, m->key, m->key_len);
        key[m->key_len] = '\0';
        char *end;
        cr_assert_eq(strncmp(key, "0/", 2), 0, "key %s: not partition 0",
                     key);
        long k = strtol(key + 2, &end, 10);
        cr_assert(*end == '\0' && k >= 0 && k < MAX_KEYS, "key %s", key);
        key_last_t *kl = &c->keys[k];
        free(kl->value);
        kl->seen = 1;
        kl->offset = m->offset;
        kl->value = NULL;
        kl->len = 0;
        if (m->payload) {
                kl->value = malloc(m->len);
                memcpy(kl->value, m->payload, m->len);
                kl->len = m->len;
                if (k + 1 > c->longest)
                        c->longest = k + 1;
        } else {
                c->tombstones++;
        }
        if (k + 1 > c->n_keys)
                c->n_keys = k + 1;
        return ++c->records >= c->want;
}

static int by_offset(const void *a, const void *b) {
        int64_t x = ((const tu_record_t *)a)->offset,
                y = ((const tu_record_t *)b)->offset;
        return x < y ? -1 : x > y;
}

/* The log (arg) says a partition was restored from the changelog. */
static int restored(void *arg) {
        char *text = tu_read_file(arg);
        int yes = text && strstr(text, "restored from the changelog");
        free(text);
        return yes;
}

static char *inspect(const char *name, int summary) {
        char ck[512];
        snprintf(ck, sizeof ck, "%s/ck-%s", broker.dir, name);
        const char *cks[] = {ck};
        return tu_inspect_state(broker.dir, cks, 1, summary, 1);
}

Test(it_tombstone, a_shorter_snapshot_tombstones_the_parts_it_left_behind) {
        char conf_a[512], conf_b[512], log_a[512], log_b[512];
        write_conf("a", "intentd.changelog",
                   "  control: intentd.control\n  audit: intentd.audit\n",
                   conf_a, sizeof conf_a);
        write_conf("b", "compacted.changelog", "", conf_b, sizeof conf_b);
        snprintf(log_a, sizeof log_a, "%s/a.log", broker.dir);
        snprintf(log_b, sizeof log_b, "%s/b.log", broker.dir);
        int64_t now = (int64_t)time(NULL) * 1000;

        pid_t a = tu_daemon_start(conf_a, log_a);
        produce_events(now);
        cr_assert_eq(tu_wait_until(all_committed, NULL, WAIT_MS), 0,
                     "A's snapshot does not cover every event (see %s)",
                     log_a);

        produce_erasures(now);
        want_t acks = {"intentd.audit", USERS - KEEP};
        cr_assert_eq(tu_wait_until(has_records, &acks, WAIT_MS), 0,
                     "not every erasure was acknowledged (see %s)", log_a);
        /* its last snapshot (forced by the erasures) is written by now
         * or at the latest when it stops */
        cr_assert_eq(tu_stop(a, 60000), 0, "A did not stop cleanly (see %s)",
                     log_a);

        /* the whole changelog, in log order */
        static changelog_t cl;
        rd_kafka_t *rk = tu_client_new(broker.bootstrap);
        cl.want = tu_topic_records(rk, "intentd.changelog", 1);
        rd_kafka_destroy(rk);
        cr_assert_gt(cl.want, 0, "nothing on the changelog");
        rk = tu_reader_new(broker.bootstrap, "tombstone-reader",
                           "intentd.changelog", 1);
        cr_assert_eq(tu_poll(rk, 30000, on_changelog, &cl), 0,
                     "read %ld of %ld changelog records", cl.records,
                     cl.want);
        tu_consumer_destroy(rk);

        /* What compaction keeps: the newest record of each key. Those of
         * keys 0..n-1 are the new snapshot's parts, those of n..longest-1
         * tombstones; nothing else. */
        long n = 0;
        while (n < cl.n_keys && cl.keys[n].seen && cl.keys[n].value)
                n++;
        cr_log_info("%ld changelog records; the longest snapshot had %ld "
                    "parts, the newest %ld; %ld tombstones",
                    cl.records, cl.longest, n, cl.tombstones);
        cr_assert_geq(cl.longest, 4,
                      "the full snapshot was not cut into many parts (%ld)",
                      cl.longest);
        cr_assert(n >= 1 && n < cl.longest,
                  "the newest snapshot has %ld parts of %ld", n, cl.longest);
        cr_expect_eq(cl.n_keys, cl.longest, "keys past the longest snapshot");
        for (long k = n; k < cl.n_keys; k++)
                cr_expect(cl.keys[k].seen && !cl.keys[k].value,
                          "the newest record of key 0/%ld is not a tombstone",
                          k);

        /* The compacted changelog (tombstones not yet removed) in its own
         * topic, for B to restore from. */
        static tu_record_t kept[MAX_KEYS];
        static char keys[MAX_KEYS][16];
        size_t n_kept = 0;
        for (long k = 0; k < cl.n_keys; k++) {
                if (!cl.keys[k].seen)
                        continue;
                snprintf(keys[k], sizeof keys[k], "0/%ld", k);
                kept[n_kept++] = (tu_record_t){.partition = 0,
                                               .key = keys[k],
                                               .value = cl.keys[k].value,
                                               .len = cl.keys[k].len,
                                               .offset = cl.keys[k].offset};
        }
        qsort(kept, n_kept, sizeof *kept, by_offset);
        tu_produce(broker.bootstrap, "compacted.changelog", kept, n_kept);
        for (long k = 0; k < cl.n_keys; k++)
                free(cl.keys[k].value);

        /* B takes partition 0 over at the committed offset, restored from
         * the compacted copy. */
        pid_t b = tu_daemon_start(conf_b, log_b);
        cr_assert_eq(tu_wait_until(restored, log_b, WAIT_MS), 0,
                     "B did not restore partition 0 (see %s)", log_b);
        cr_assert_eq(tu_stop(b, 60000), 0, "B did not stop cleanly (see %s)",
                     log_b);

        char *users_a = inspect("a", 0), *users_b = inspect("b", 0);
        cr_expect_str_eq(users_b, users_a,
                         "B's users differ from A's (see %s)", broker.dir);
        char *sum_a = inspect("a", 1), *sum_b = inspect("b", 1);
        cr_expect_str_eq(sum_b, sum_a, "B's partition differs from A's");
        char users[32];
        snprintf(users, sizeof users, "\"users\":%d,", KEEP);
        cr_expect(strstr(sum_b, users), "B does not hold %d users: %s", KEEP,
                  sum_b);
        free(users_a);
        free(users_b);
        free(sum_a);
        free(sum_b);
}
