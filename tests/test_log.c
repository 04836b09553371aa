/*
 * test_log.c - what reaches stderr (pipeline/log.c, daemon/cli.c): the
 * three line formats, log.format (auto follows JOURNAL_STREAM) and the keyed
 * pseudonyms that stand for user ids, checked against SipHash-2-4's
 * published vectors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Runs one itd_log_write with stderr sent to a file; returns the text. */
static char *capture_line(itd_log_format_t format, const char *msg) {
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
