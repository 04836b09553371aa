/*
 * test_notify.c - the sd_notify wrappers (daemon/notify.c) against a fake
 * systemd: a unix datagram socket bound in a temporary folder and named in
 * NOTIFY_SOCKET, read back message by message.
 *
 * Criterion runs each test in its own process, so setenv stays local.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "intentd/log.h"
#include "notify.h"
#include "testutil.h"

static int sock = -1;

/* Binds the fake notify socket and points NOTIFY_SOCKET at it. */
static void fake_systemd(void) {
        char dir[256];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", dir);
        cr_assert_lt((size_t)n, sizeof sa.sun_path, "tmp path too long");
        sock = socket(AF_UNIX, SOCK_DGRAM, 0);
        cr_assert_geq(sock, 0);
        cr_assert_eq(bind(sock, (struct sockaddr *)&sa, sizeof sa), 0,
                     "bind %s: %s", sa.sun_path, strerror(errno));
        struct timeval tv = {2, 0};
        setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        cr_assert_eq(setenv("NOTIFY_SOCKET", sa.sun_path, 1), 0);
}

/* Next datagram as a string; "" if none arrives within wait_ms. */
static const char *next_msg(int wait_ms) {
        static char buf[4096];
        struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
        setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t n = recv(sock, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        return buf;
}

Test(notify, sends_the_lifecycle_in_order) {
        fake_systemd();
        setenv("WATCHDOG_USEC", "30000000", 1);
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        setenv("WATCHDOG_PID", pid, 1);
        itd_watchdog_t wd;
        cr_assert_eq(itd_watchdog_init(&wd), 1);

        cr_assert_eq(itd_notify_ready(), ITD_OK);
        cr_assert_eq(itd_notify_status("%d events/s, lag %d", 1520, 42),
                     ITD_OK);
        cr_assert_eq(itd_watchdog_kick(&wd, itd_now_mono_ms()), ITD_OK);
        cr_assert_eq(itd_notify_reloading(), ITD_OK);
        cr_assert_eq(itd_notify_ready(), ITD_OK);
        cr_assert_eq(itd_notify_stopping(), ITD_OK);

        cr_expect_str_eq(next_msg(2000), "READY=1");
        cr_expect_str_eq(next_msg(2000), "STATUS=1520 events/s, lag 42");
        cr_expect_str_eq(next_msg(2000), "WATCHDOG=1");
        cr_expect_eq(strncmp(next_msg(2000), "RELOADING=1\nMONOTONIC_USEC=",
                             27), 0);
        cr_expect_str_eq(next_msg(2000), "READY=1");
        cr_expect_str_eq(next_msg(2000), "STOPPING=1");
        cr_expect_str_empty(next_msg(100), "nothing else was sent");
}

Test(notify, reloading_carries_the_current_monotonic_time) {
        fake_systemd();
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned long long before =
            (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
        cr_assert_eq(itd_notify_reloading(), ITD_OK);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned long long after =
            (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
        const char *msg = next_msg(2000);
        unsigned long long usec = 0;
        cr_assert_eq(sscanf(msg, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1,
                     "%s", msg);
        cr_expect(usec >= before && usec <= after, "%llu not in [%llu, %llu]",
                  usec, before, after);
}

Test(notify, status_stays_one_line_and_is_cut) {
        fake_systemd();
        cr_assert_eq(itd_notify_status("two\nlines\rhere"), ITD_OK);
        cr_expect_str_eq(next_msg(2000), "STATUS=two lines here");
        char long_text[600];
        memset(long_text, 'x', sizeof long_text - 1);
        long_text[sizeof long_text - 1] = '\0';
        cr_assert_eq(itd_notify_status("%s", long_text), ITD_OK);
        const char *msg = next_msg(2000);
        cr_expect_eq(strlen(msg), strlen("STATUS=") + 200, "%zu",
                     strlen(msg));
}

Test(notify, watchdog_pings_at_most_once_per_half_interval) {
        fake_systemd();
        setenv("WATCHDOG_USEC", "2000000", 1); /* WatchdogSec=2s */
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        setenv("WATCHDOG_PID", pid, 1);
        itd_watchdog_t wd;
        cr_assert_eq(itd_watchdog_init(&wd), 1);
        cr_expect_eq(wd.interval_ms, 1000, "half of WatchdogSec");
        int64_t t = 5000;
        cr_assert_eq(itd_watchdog_kick(&wd, t), ITD_OK);
        cr_expect_str_eq(next_msg(2000), "WATCHDOG=1", "the first is sent");
        cr_assert_eq(itd_watchdog_kick(&wd, t + 999), ITD_OK);
        cr_expect_str_empty(next_msg(100), "not due yet");
        cr_assert_eq(itd_watchdog_kick(&wd, t + 1000), ITD_OK);
        cr_expect_str_eq(next_msg(2000), "WATCHDOG=1");
}

Test(notify, watchdog_of_another_process_is_ignored) {
        fake_systemd();
        setenv("WATCHDOG_USEC", "2000000", 1);
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
        setenv("WATCHDOG_PID", pid, 1);
        itd_watchdog_t wd;
        cr_expect_eq(itd_watchdog_init(&wd), 0);
        cr_expect_eq(wd.interval_ms, 0);
        cr_assert_eq(itd_watchdog_kick(&wd, 1000000), ITD_OK);
        cr_expect_str_empty(next_msg(100), "disabled: nothing sent");

        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        cr_expect_eq(itd_watchdog_init(&wd), 0, "no WatchdogSec=");
}

Test(notify, extend_timeout_names_microseconds) {
        fake_systemd();
        cr_assert_eq(itd_notify_extend_timeout(90000000), ITD_OK);
        cr_expect_str_eq(next_msg(2000), "EXTEND_TIMEOUT_USEC=90000000");
}

Test(notify, does_nothing_without_systemd) {
        unsetenv("NOTIFY_SOCKET");
        cr_expect_eq(itd_notify_ready(), ITD_OK);
        cr_expect_eq(itd_notify_status("x"), ITD_OK);
        cr_expect_eq(itd_notify_reloading(), ITD_OK);
        cr_expect_eq(itd_notify_stopping(), ITD_OK);
}

Test(notify, a_dead_socket_is_an_io_error) {
        char dir[256], path[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/nobody-listens", dir);
        setenv("NOTIFY_SOCKET", path, 1);
        cr_expect_eq(itd_notify_ready(), ITD_ERR_IO);
}
