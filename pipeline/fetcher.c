/*
 * fetcher.c - schema look-ups off the decoding thread (registry_int.h).
 *
 * One thread runs a libcurl multi handle: up to ITD_FETCH_CONCURRENT
 * look-ups at once, each bounded by the registry's timeout, started at
 * most per_sec a second. The owner queues ids and takes results under one
 * mutex; curl_multi_wakeup() interrupts the thread's wait when an id is
 * queued or the fetcher is destroyed, so a hanging registry costs the
 * decoding thread nothing and a shutdown nothing beyond the join.
 */
#include "registry_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/log.h"
#include "intentd/mem.h"

#ifdef ITD_HAVE_CURL
#include <curl/curl.h>

struct itd_fetcher_s {
        itd_registry_t *reg;
        CURLM *multi;
        pthread_t thread;
        unsigned per_sec;

        pthread_mutex_t mu;       /* guards everything below */
        pthread_cond_t done_cv;   /* a result arrived */
        int stop;
        uint32_t queue[ITD_FETCH_QUEUE]; /* ids not started, FIFO */
        size_t q_head, q_len;
        size_t running;           /* started, not finished */
        itd_reg_req_t *live[ITD_FETCH_CONCURRENT]; /* those, by slot */
        itd_fetch_result_t *results; /* finished, not taken */
        size_t n_results, cap_results;
};

static void put_result(itd_fetcher_t *f, const itd_fetch_result_t *r) {
        if (f->n_results == f->cap_results) {
                f->cap_results = f->cap_results ? 2 * f->cap_results : 16;
                f->results = itd_xrealloc(
                    f->results, f->cap_results * sizeof *f->results);
        }
        f->results[f->n_results++] = *r;
        pthread_cond_signal(&f->done_cv);
}

/* Starts queued look-ups while slots and this second's budget allow.
 * @locks mu held. */
static void start_queued(itd_fetcher_t *f, int64_t *window_ms,
                         unsigned *in_window) {
        int64_t now = itd_now_mono_ms();
        if (now - *window_ms >= 1000) {
                *window_ms = now;
                *in_window = 0;
        }
        while (f->q_len > 0 && f->running < ITD_FETCH_CONCURRENT &&
               *in_window < f->per_sec) {
                uint32_t id = f->queue[f->q_head];
                f->q_head = (f->q_head + 1) % ITD_FETCH_QUEUE;
                f->q_len--;
                itd_reg_req_t *req = itd_registry_req_new(f->reg, id);
                if (!req ||
                    curl_multi_add_handle(f->multi,
                                          itd_registry_req_easy(req)) !=
                        CURLM_OK) {
                        itd_registry_req_destroy(req);
                        itd_fetch_result_t r = {.id = id, .rc = ITD_ERR_IO};
                        snprintf(r.why, sizeof r.why,
                                 "schema id %u: cannot start a look-up", id);
                        put_result(f, &r);
                        continue;
                }
                for (size_t k = 0; k < ITD_FETCH_CONCURRENT; k++) {
                        if (!f->live[k]) {
                                f->live[k] = req;
                                break;
                        }
                }
                f->running++;
                (*in_window)++;
        }
}

static void *run(void *arg) {
        itd_fetcher_t *f = arg;
        int64_t window_ms = 0;
        unsigned in_window = 0;
        pthread_mutex_lock(&f->mu);
        while (!f->stop) {
                start_queued(f, &window_ms, &in_window);
                int waiting = f->q_len > 0;
                pthread_mutex_unlock(&f->mu);

                int still;
                curl_multi_perform(f->multi, &still);
                CURLMsg *msg;
                int left;
                while ((msg = curl_multi_info_read(f->multi, &left))) {
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        CURL *easy = msg->easy_handle;
                        CURLcode rc = msg->data.result;
                        itd_reg_req_t *req = NULL;
                        curl_easy_getinfo(easy, CURLINFO_PRIVATE,
                                          (char **)&req);
                        curl_multi_remove_handle(f->multi, easy);
                        pthread_mutex_lock(&f->mu);
                        for (size_t k = 0; k < ITD_FETCH_CONCURRENT; k++)
                                if (f->live[k] == req)
                                        f->live[k] = NULL;
                        pthread_mutex_unlock(&f->mu);
                        itd_fetch_result_t r = {.id =
                                                    itd_registry_req_id(req)};
                        r.rc = itd_registry_req_finish(req, (int)rc,
                                                       &r.schema, r.why,
                                                       sizeof r.why);
                        itd_registry_req_destroy(req);
                        pthread_mutex_lock(&f->mu);
                        f->running--;
                        put_result(f, &r);
                        pthread_mutex_unlock(&f->mu);
                }
                /* Queued ids held back by the per-second budget need a
                 * turn when the second ends; otherwise sleep until
                 * libcurl or a wakeup has something. */
                curl_multi_poll(f->multi, NULL, 0, waiting ? 100 : 1000,
                                NULL);
                pthread_mutex_lock(&f->mu);
        }
        pthread_mutex_unlock(&f->mu);
        return NULL;
}

itd_fetcher_t *itd_fetcher_new(itd_registry_t *reg, unsigned per_sec,
                               char *errstr, size_t errstr_size) {
        itd_fetcher_t *f = itd_xcalloc(1, sizeof *f);
        f->reg = reg;
        f->per_sec = per_sec ? per_sec : 1;
        f->multi = curl_multi_init();
        if (!f->multi) {
                snprintf(errstr, errstr_size, "curl_multi_init failed");
                itd_registry_destroy(reg);
                free(f);
                return NULL;
        }
        pthread_mutex_init(&f->mu, NULL);
        pthread_cond_init(&f->done_cv, NULL);
        if (pthread_create(&f->thread, NULL, run, f) != 0) {
                snprintf(errstr, errstr_size,
                         "cannot start the schema registry thread");
                curl_multi_cleanup(f->multi);
                pthread_mutex_destroy(&f->mu);
                pthread_cond_destroy(&f->done_cv);
                itd_registry_destroy(reg);
                free(f);
                return NULL;
        }
        return f;
}

void itd_fetcher_destroy(itd_fetcher_t *f) {
        if (!f)
                return;
        pthread_mutex_lock(&f->mu);
        f->stop = 1;
        pthread_mutex_unlock(&f->mu);
        curl_multi_wakeup(f->multi);
        pthread_join(f->thread, NULL);
        /* Transfers still running are abandoned here, not waited for. */
        for (size_t k = 0; k < ITD_FETCH_CONCURRENT; k++) {
                if (!f->live[k])
                        continue;
                curl_multi_remove_handle(f->multi,
                                         itd_registry_req_easy(f->live[k]));
                itd_registry_req_destroy(f->live[k]);
        }
        curl_multi_cleanup(f->multi);
        for (size_t i = 0; i < f->n_results; i++)
                free(f->results[i].schema);
        free(f->results);
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->done_cv);
        itd_registry_destroy(f->reg);
        free(f);
}

const itd_registry_t *itd_fetcher_registry(const itd_fetcher_t *f) {
        return f->reg;
}

int itd_fetcher_request(itd_fetcher_t *f, uint32_t id) {
        pthread_mutex_lock(&f->mu);
        int full = f->q_len + f->running >= ITD_FETCH_QUEUE;
        if (!full) {
                f->queue[(f->q_head + f->q_len) % ITD_FETCH_QUEUE] = id;
                f->q_len++;
        }
        pthread_mutex_unlock(&f->mu);
        if (full)
                return -1;
        curl_multi_wakeup(f->multi);
        return 0;
}

size_t itd_fetcher_take(itd_fetcher_t *f, itd_fetch_result_t *out,
                        size_t max, int wait_ms) {
        pthread_mutex_lock(&f->mu);
        if (f->n_results == 0 && wait_ms > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += wait_ms / 1000;
                ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                while (f->n_results == 0 &&
                       pthread_cond_timedwait(&f->done_cv, &f->mu, &ts) == 0)
                        ;
        }
        size_t n = f->n_results < max ? f->n_results : max;
        if (n) {
                memcpy(out, f->results, n * sizeof *out);
                memmove(f->results, f->results + n,
                        (f->n_results - n) * sizeof *f->results);
                f->n_results -= n;
        }
        pthread_mutex_unlock(&f->mu);
        return n;
}

#else /* !ITD_HAVE_CURL: itd_registry_new already refused to start */

itd_fetcher_t *itd_fetcher_new(itd_registry_t *reg, unsigned per_sec,
                               char *errstr, size_t errstr_size) {
        (void)per_sec;
        itd_registry_destroy(reg);
        snprintf(errstr, errstr_size, "built without libcurl");
        return NULL;
}

void itd_fetcher_destroy(itd_fetcher_t *f) { (void)f; }

const itd_registry_t *itd_fetcher_registry(const itd_fetcher_t *f) {
        (void)f;
        return NULL;
}

int itd_fetcher_request(itd_fetcher_t *f, uint32_t id) {
        (void)f;
        (void)id;
        return -1;
}

size_t itd_fetcher_take(itd_fetcher_t *f, itd_fetch_result_t *out,
                        size_t max, int wait_ms) {
        (void)f;
        (void)out;
        (void)max;
        (void)wait_ms;
        return 0;
}

#endif
