/*
 * test_log.c - what reaches stderr (pipeline/log.c, daemon/cli.c): the
 * three line formats, log.format (auto follows JOURNAL_STREAM) and the keyed
 * pseudonyms that stand for user ids, checked against SipHash-2-4's
 * published vectors. JSON lines are parsed as JSON: their fields, in their
 * order, are the documented ones (docs/OPERATIONS.md, "Logs").
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "intentd/conf.h"
#include "intentd/log.h"
#include "testutil.h"

/* The key and messages of the SipHash paper's test vectors: key 00..0f,
 * message 00 01 .. (len-1). */
static const uint8_t paper_key[16] = {0, 1, 2,  3,  4,  5,  6,  7,
                                      8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t paper_msg[15] = {0, 1, 2,  3,  4,  5,  6, 7,
                                      8, 9, 10, 11, 12, 13, 14};

Test(log, pseudonym_is_siphash24_of_the_id_under_the_key) {
        /* Reference outputs (Aumasson and Bernstein's reference code,
         * vectors.h) for message lengths 1, 8 and 15. */
        static const struct {
                size_t len;
                const char *want;
        } vec[] = {{1, "u:74f839c593dc67fd"},
                   {8, "u:93f5f5799a932462"},
                   {15, "u:a129ca6149be45e5"}};
        itd_log_pseudonym_key(paper_key);
        for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
                char buf[ITD_LOG_PSEUDONYM_SIZE];
                cr_expect_str_eq(itd_log_pseudonym(paper_msg, vec[i].len, buf,
                                                   sizeof buf),
                                 vec[i].want, "length %zu", vec[i].len);
        }
        itd_log_pseudonym_key(NULL);
}

Test(log, keyed_hash_is_siphash24_under_the_given_key) {
        /* the same reference vectors, through the keyed hash replay's
         * feature export uses */
        cr_expect_eq(itd_keyed_hash(paper_key, paper_msg, 1),
                     UINT64_C(0x74f839c593dc67fd));
        cr_expect_eq(itd_keyed_hash(paper_key, paper_msg, 8),
                     UINT64_C(0x93f5f5799a932462));
        cr_expect_eq(itd_keyed_hash(paper_key, paper_msg, 15),
                     UINT64_C(0xa129ca6149be45e5));
        uint8_t other[16];
        itd_random_key(other);
        cr_expect_neq(itd_keyed_hash(other, paper_msg, 8),
                      itd_keyed_hash(paper_key, paper_msg, 8));
}

Test(log, pseudonym_hides_the_id_and_changes_with_the_key) {
        char a[ITD_LOG_PSEUDONYM_SIZE], b[ITD_LOG_PSEUDONYM_SIZE],
            c[ITD_LOG_PSEUDONYM_SIZE];
        const char *id = "user-4711";
        itd_log_pseudonym_key(NULL);
        itd_log_pseudonym(id, strlen(id), a, sizeof a);
        itd_log_pseudonym(id, strlen(id), b, sizeof b);
        cr_expect_str_eq(a, b, "same id, same key: same pseudonym");
        cr_expect_eq(strlen(a), ITD_LOG_PSEUDONYM_SIZE - 1);
        cr_expect_null(strstr(a, "4711"));
        itd_log_pseudonym("user-4712", 9, c, sizeof c);
        cr_expect_str_neq(a, c, "two ids, one pseudonym");
        /* A new process draws a new key: the same id no longer links. */
        itd_log_pseudonym_key(NULL);
        itd_log_pseudonym(id, strlen(id), c, sizeof c);
        cr_expect_str_neq(a, c, "new key, same pseudonym");
}

Test(log, pseudonym_of_no_id_and_short_buffers) {
        char buf[ITD_LOG_PSEUDONYM_SIZE];
        cr_expect_str_eq(itd_log_pseudonym(NULL, 0, buf, sizeof buf), "u:-");
        cr_expect_str_eq(itd_log_pseudonym("x", 0, buf, sizeof buf), "u:-");
        char small[6];
        itd_log_pseudonym("abc", 3, small, sizeof small);
        cr_expect_eq(strlen(small), sizeof small - 1, "cut, NUL-terminated");
        cr_expect_eq(strncmp(small, "u:", 2), 0);
        char none[1] = {'z'};
        itd_log_pseudonym("abc", 3, none, 0);
        cr_expect_eq(none[0], 'z', "cap 0 writes nothing");
}

/* Length of the "time" member a JSON line starts with,
 * `"time":"2026-12-04T16:28:40.123Z",` after the `{`, or 0 if the line
 * does not start with one of exactly that shape (RFC 3339, UTC,
 * milliseconds). */
static size_t time_member(const char *line) {
        static const char shape[] = "{\"time\":\"dddd-dd-ddTdd:dd:dd.dddZ\",";
        for (size_t i = 0; shape[i]; i++) {
                if (shape[i] == 'd' ? !isdigit((unsigned char)line[i])
                                    : line[i] != shape[i])
                        return 0;
        }
        return sizeof shape - 2;
}

/* Runs one itd_log_write with stderr sent to a file; returns the text. A
 * JSON line comes back without its (checked) "time" member, so the rest
 * can be compared exactly. */
static char *capture_raw(itd_log_format_t format, const char *msg);
static char *capture_line(itd_log_format_t format, const char *msg) {
        char *text = capture_raw(format, msg);
        if (format == ITD_LOG_FORMAT_JSON) {
                size_t n = time_member(text);
                cr_assert_gt(n, 0, "no RFC 3339 time first: %s", text);
                memmove(text + 1, text + 1 + n, strlen(text + 1 + n) + 1);
        }
        return text;
}

static char *capture_raw(itd_log_format_t format, const char *msg) {
        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/stderr", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        int saved = dup(STDERR_FILENO);
        dup2(fileno(f), STDERR_FILENO);
        itd_log_setup(ITD_LOG_INFO, format);
        itd_log(ITD_LOG_WARNING, "kafka", "%s", msg);
        itd_log(ITD_LOG_DEBUG, "kafka", "not shown at level info");
        dup2(saved, STDERR_FILENO);
        close(saved);
        fclose(f);
        char *text = tu_read_file(path);
        cr_assert_not_null(text);
        return text;
}

Test(log, writes_plain_journal_and_json_lines) {
        char *t = capture_line(ITD_LOG_FORMAT_PLAIN, "broker down");
        cr_expect_str_eq(t, "intentd warning kafka: broker down");
        free(t);
        t = capture_line(ITD_LOG_FORMAT_JOURNAL, "broker down");
        cr_expect_str_eq(t, "<4>kafka: broker down");
        free(t);
        t = capture_line(ITD_LOG_FORMAT_JSON, "say \"hi\"\n");
        cr_expect_str_eq(t, "{\"level\":\"warning\",\"facility\":\"kafka\","
                            "\"message\":\"say \\\"hi\\\"\\u000a\"}");
        free(t);
}

Test(log, log_format_auto_follows_journal_stream) {
        char errstr[256];
        itd_conf_t *conf = itd_conf_new();
        cr_expect_eq(conf->log_format, ITD_CONF_LOG_AUTO, "default is auto");

        unsetenv("JOURNAL_STREAM");
        itd_cli_log_setup(conf);
        cr_expect_eq(itd_log_format_get(), ITD_LOG_FORMAT_PLAIN);
        setenv("JOURNAL_STREAM", "8:12345", 1);
        itd_cli_log_setup(conf);
        cr_expect_eq(itd_log_format_get(), ITD_LOG_FORMAT_JOURNAL);

        /* An explicit format wins over the environment. */
        static const struct {
                const char *value;
                itd_log_format_t format;
        } rows[] = {{"plain", ITD_LOG_FORMAT_PLAIN},
                    {"journal", ITD_LOG_FORMAT_JOURNAL},
                    {"json", ITD_LOG_FORMAT_JSON}};
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                cr_expect_eq(itd_conf_set(conf, "log.format", rows[i].value,
                                          errstr, sizeof errstr),
                             ITD_OK, "%s", errstr);
                itd_cli_log_setup(conf);
                cr_expect_eq(itd_log_format_get(), rows[i].format, "%s",
                             rows[i].value);
        }
        unsetenv("JOURNAL_STREAM");
        cr_expect_eq(itd_conf_set(conf, "log.format", "syslog", errstr,
                                  sizeof errstr),
                     ITD_ERR_CONF);
        cr_expect(strstr(errstr, "log.format") != NULL, "%s", errstr);
        itd_conf_destroy(conf);
        itd_log_setup(ITD_LOG_INFO, ITD_LOG_FORMAT_PLAIN);
}

/* A value that tries every way out of its line: newlines with a forged
 * priority prefix and a forged crit line, a carriage return, a terminal
 * escape (ESC and the one-byte C1 CSI), DEL and bytes that are not
 * UTF-8. */
static const char forged[] = "VIEW\n<2>run: forged crit\r\n"
                             "intentd crit run: forged\x1b[2J\xc2\x9b"
                             "\x7f\xff\xc3";

Test(log, a_value_cannot_forge_a_line_in_any_format) {
        /* capture_line's reader drops the one closing newline, so a whole
         * line has none left. */
        char *t = capture_line(ITD_LOG_FORMAT_PLAIN, forged);
        cr_expect_str_eq(t, "intentd warning kafka: VIEW\\n<2>run: forged "
                            "crit\\r\\nintentd crit run: forged\\x1b[2J"
                            "\\u009b\\x7f\\xff\\xc3");
        free(t);
        t = capture_line(ITD_LOG_FORMAT_JOURNAL, forged);
        cr_expect_str_eq(t, "<4>kafka: VIEW\\n<2>run: forged crit\\r\\n"
                            "intentd crit run: forged\\x1b[2J\\u009b\\x7f"
                            "\\xff\\xc3");
        free(t);
        t = capture_line(ITD_LOG_FORMAT_JSON, forged);
        cr_expect_str_eq(t, "{\"level\":\"warning\",\"facility\":\"kafka\","
                            "\"message\":\"VIEW\\u000a<2>run: forged crit"
                            "\\u000d\\u000aintentd crit run: forged"
                            "\\u001b[2J\\u009b\\u007f\\\\xff\\\\xc3\"}");
        free(t);
        itd_log_setup(ITD_LOG_INFO, ITD_LOG_FORMAT_PLAIN);
}

Test(log, text_that_is_clean_passes_unchanged) {
        /* UTF-8 of two, three and four bytes, a backslash, quotes. */
        const char *clean = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9b\x92 a\\b \"q\"";
        char buf[128];
        cr_expect_eq(itd_log_escape(buf, sizeof buf, clean), strlen(clean));
        cr_expect_str_eq(buf, clean);
        /* Overlong forms and surrogates are not UTF-8. */
        cr_expect_eq(itd_log_escape(buf, sizeof buf, "\xc0\xaf\xed\xa0\x80"),
                     strlen("\\xc0\\xaf\\xed\\xa0\\x80"));
        cr_expect_str_eq(buf, "\\xc0\\xaf\\xed\\xa0\\x80");
        /* A cut never splits an escape. */
        char small[6];
        itd_log_escape(small, sizeof small, "ab\ncd");
        cr_expect_str_eq(small, "ab\\nc");
        itd_log_escape(small, sizeof small, "abcd\n");
        cr_expect_str_eq(small, "abcd", "the escape did not fit whole");
}

/* Logs from several threads while another keeps changing level and
 * format, as a SIGHUP reload does while librdkafka's threads log. */
typedef struct {
        int n;
} logger_arg_t;

static void *logger(void *arg) {
        logger_arg_t *a = arg;
        for (int i = 0; i < a->n; i++)
                itd_log(ITD_LOG_WARNING, "kafka", "line %d", i);
        return NULL;
}

Test(log, setup_during_logging_is_race_free_and_lines_stay_whole) {
        /* The level is an atomic object: a reload on one thread and the
         * macro's read on another are not a data race (C11 5.1.2.4). */
        cr_expect(_Generic(&itd_log_level, _Atomic int *: 1, default: 0),
                  "itd_log_level is a plain int: setup races with readers");

        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/stderr", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        int saved = dup(STDERR_FILENO);
        dup2(fileno(f), STDERR_FILENO);
        enum { THREADS = 3, LINES = 2000 };
        pthread_t th[THREADS];
        logger_arg_t arg = {LINES};
        itd_log_setup(ITD_LOG_INFO, ITD_LOG_FORMAT_PLAIN);
        for (int i = 0; i < THREADS; i++)
                pthread_create(&th[i], NULL, logger, &arg);
        for (int i = 0; i < 3000; i++)
                itd_log_setup(i % 2 ? ITD_LOG_INFO : ITD_LOG_DEBUG,
                              (itd_log_format_t)(i % 3));
        for (int i = 0; i < THREADS; i++)
                pthread_join(th[i], NULL);
        dup2(saved, STDERR_FILENO);
        close(saved);
        fclose(f);
        itd_log_setup(ITD_LOG_INFO, ITD_LOG_FORMAT_PLAIN);

        /* Every line whole, in one of the three shapes. */
        FILE *in = fopen(path, "r");
        cr_assert_not_null(in);
        char line[256];
        int n = 0, bad = 0;
        while (fgets(line, sizeof line, in)) {
                n++;
                static const char *const shapes[] = {
                    "intentd warning kafka: line ", "<4>kafka: line ",
                    "{\"level\":\"warning\",\"facility\":\"kafka\","
                    "\"message\":\"line "};
                size_t t = time_member(line);
                if (t)
                        memmove(line + 1, line + 1 + t, strlen(line + 1 + t) + 1);
                int ok = 0;
                for (size_t k = 0; k < 3; k++)
                        ok |= !strncmp(line, shapes[k], strlen(shapes[k]));
                bad += !ok;
        }
        fclose(in);
        cr_expect_eq(n, THREADS * LINES, "%d lines", n);
        cr_expect_eq(bad, 0, "%d torn or mixed lines", bad);
}

/* A JSON line is one JSON object with exactly the documented members, in
 * order: time (RFC 3339, UTC, milliseconds, the time of the call), level,
 * facility, message; whatever the message holds. */
Test(log, json_lines_parse_with_the_documented_fields) {
        static const char *const msgs[] = {"broker down", forged,
                                           "caf\xc3\xa9 \"q\" a\\b"};
        for (size_t m = 0; m < sizeof msgs / sizeof msgs[0]; m++) {
                struct timespec before, after;
                clock_gettime(CLOCK_REALTIME, &before);
                char *line = capture_raw(ITD_LOG_FORMAT_JSON, msgs[m]);
                clock_gettime(CLOCK_REALTIME, &after);
                cr_expect_null(strchr(line, '\n'), "more than one line");
                json_error_t jerr;
                json_t *o = json_loads(line, 0, &jerr);
                cr_assert_not_null(o, "not JSON (%s): %s", jerr.text, line);
                cr_assert(json_is_object(o));
                static const char *const keys[] = {"time", "level",
                                                   "facility", "message"};
                size_t k = 0;
                const char *key;
                json_t *val;
                json_object_foreach(o, key, val) {
                        cr_expect(k < 4 && !strcmp(key, keys[k]),
                                  "member %zu is \"%s\"", k, key);
                        cr_expect(json_is_string(val), "%s", key);
                        k++;
                }
                cr_expect_eq(k, 4, "%zu members: %s", k, line);
                cr_expect_str_eq(json_string_value(json_object_get(o, "level")),
                                 "warning");
                cr_expect_str_eq(
                    json_string_value(json_object_get(o, "facility")), "kafka");

                const char *t = json_string_value(json_object_get(o, "time"));
                cr_assert_not_null(t);
                struct tm tm = {0};
                int ms = -1, used = 0;
                int got = sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%n",
                                 &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms,
                                 &used);
                cr_assert(got == 7 && used == 23 && !strcmp(t + 23, "Z"),
                          "time %s: not YYYY-MM-DDTHH:MM:SS.mmmZ", t);
                tm.tm_year -= 1900;
                tm.tm_mon -= 1;
                double at = (double)timegm(&tm) + ms / 1000.0;
                double lo = (double)before.tv_sec - 0.001 +
                            (double)(before.tv_nsec / 1000000) / 1000.0;
                double hi = (double)after.tv_sec + after.tv_nsec / 1e9;
                cr_expect(at >= lo && at <= hi, "time %s is not when the line "
                          "was written (%.3f..%.3f)", t, lo, hi);
                json_decref(o);
                free(line);
        }
        itd_log_setup(ITD_LOG_INFO, ITD_LOG_FORMAT_PLAIN);
}
