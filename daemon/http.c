/*
 * http.c - /metrics, /livez and /readyz over libmicrohttpd (see http.h).
 *
 * libmicrohttpd runs one internal thread (epoll or poll, its choice); each
 * request renders from atomics, so a slow scraper never holds up the
 * pipeline. Responses are small text.
 *
 * Slow or hostile clients must not keep a health probe out (an orchestrator
 * would kill a healthy daemon): the event loop never waits on one client,
 * and the connection slots are what a slowloris attack goes for. So there
 * are many slots (MAX_CONNECTIONS, each with a small memory pool), one
 * address may hold only MAX_PER_IP of them (an attacker cannot take the
 * slots of the prober's address), and a connection must deliver a whole
 * request within REQUEST_DEADLINE_MS of opening or of its previous answer:
 * libmicrohttpd's own timeout only counts idle time, which a client
 * trickling a byte a second never reaches. A small reaper thread enforces
 * the deadline by shutting the socket down; libmicrohttpd then closes it
 * as it would any dropped connection. libmicrohttpd's messages (one per
 * refused connection or bad request) go through a rate limiter.
 *
 * GET /users/<id> (metrics.query, query.h) is answered by the pipeline
 * thread: the request is posted to the query mailbox and its connection
 * suspended (so the event loop serves health probes meanwhile), then
 * resumed by whoever answers it, the pipeline or, after
 * ITD_QUERY_WAIT_MS, the reaper with a 503.
 */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "intentd/log.h"
#include "intentd/mem.h"

#define MAX_CONNECTIONS 512u   /* slots; each holds CONNECTION_MEMORY */
#define MAX_PER_IP 64u         /* slots one client address may hold */
#define CONNECTION_MEMORY 16384u /* per connection; requests are tiny GETs */
#define CONNECTION_TIMEOUT_S 10u /* idle time before libmicrohttpd closes */
#define REQUEST_DEADLINE_MS 5000 /* a whole request within this */
#define REAP_EVERY_MS 250

/* One open connection, as the reaper sees it. */
typedef struct conn_s {
        int used;
        int fd;
        int busy;          /* a request is being answered */
        int cut;           /* shut down by the reaper already */
        int64_t since_ms;  /* waiting for a request since (monotonic) */
} conn_t;

struct itd_http_s {
        struct MHD_Daemon *d;
        itd_prom_t *m;
        const itd_health_t *h;
        int port;
        _Atomic int starting;  /* libmicrohttpd's messages go to start_err */
        char start_err[256];

        /* Connections and the reaper; mu also guards rl. A slot's fd is
         * shut down only under mu, and libmicrohttpd reports a close
         * (which takes mu) before it closes the fd, so the reaper never
         * touches a descriptor that was closed and reused. */
        pthread_mutex_t mu;
        pthread_cond_t cv;
        pthread_t reaper;
        int reaper_running;
        int stopping;
        conn_t conns[MAX_CONNECTIONS + 16];
        itd_ratelimit_t rl;
        uint64_t reaped;
        itd_query_t *q;        /* GET /users/<id>; NULL: off */
};

/* A request's context (*req_cls): the marker for every request but a
 * posted /users/ one, which gets a query_req_t. */
static int seen_marker;

typedef struct query_req_s {
        int ticket;
} query_req_t;

/* ---- health ------------------------------------------------------------- */

void itd_health_init(itd_health_t *h, int64_t stall_ms) {
        atomic_init(&h->heartbeat_ms, itd_now_mono_ms());
        atomic_init(&h->ready, 0);
        atomic_init(&h->model_loaded, 0);
        atomic_init(&h->assigned, 0);
        atomic_init(&h->stopping, 0);
        h->stall_ms = stall_ms;
}

void itd_health_beat(itd_health_t *h) {
        atomic_store_explicit(&h->heartbeat_ms, itd_now_mono_ms(),
                              memory_order_relaxed);
}

int itd_health_live(const itd_health_t *h, int64_t now_ms, char *why,
                    size_t why_size) {
        int64_t age = now_ms - atomic_load_explicit(&h->heartbeat_ms,
                                                    memory_order_relaxed);
        if (age <= h->stall_ms)
                return 1;
        snprintf(why, why_size, "main loop stalled: last turn %lld ms ago "
                 "(limit %lld ms)", (long long)age, (long long)h->stall_ms);
        return 0;
}

int itd_health_ready(const itd_health_t *h, char *why, size_t why_size) {
        const char *reason = NULL;
        if (atomic_load(&h->stopping))
                reason = "stopping";
        else if (!atomic_load(&h->ready))
                reason = "starting";
        else if (!atomic_load(&h->model_loaded))
                reason = "no model loaded";
        else if (atomic_load(&h->assigned) <= 0)
                reason = "no partitions assigned";
        else if (atomic_load(&h->restoring))
                reason = "restoring partitions from the state changelog";
        if (!reason)
                return 1;
        snprintf(why, why_size, "%s", reason);
        return 0;
}

/* ---- requests ----------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *content_type, char *body,
                             size_t len, enum MHD_ResponseMemoryMode mode) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(len, body, mode);
        if (!resp) {
                if (mode == MHD_RESPMEM_MUST_FREE)
                        free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type);
        /* Health and metrics must never come from a cache. */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-store");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                        "GET, HEAD");
        enum MHD_Result ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn,
                                  unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result reply_text(struct MHD_Connection *conn,
                                  unsigned status, const char *fmt, ...) {
        char line[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        if ((size_t)n >= sizeof line)
                n = sizeof line - 1;
        return reply(conn, status, "text/plain; charset=utf-8", line,
                     (size_t)n, MHD_RESPMEM_MUST_COPY);
}

/* Clients on this host only: the answer is about a person. */
static int loopback(struct MHD_Connection *conn) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        if (!sa)
                return 0;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const void *)sa;
                return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        }
        if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const void *)sa;
                const struct in6_addr *a = &in6->sin6_addr;
                return IN6_IS_ADDR_LOOPBACK(a) ||
                       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
        }
        return 0;
}

static void wake_conn(void *conn) { MHD_resume_connection(conn); }

/* GET /users/<id>: posts the question and suspends the connection, or,
 * resumed, answers what the pipeline (or the reaper) left. */
static enum MHD_Result handle_user(itd_http_t *srv,
                                   struct MHD_Connection *conn,
                                   const char *id, void **req_cls) {
        if (*req_cls != &seen_marker) {
                query_req_t *r = *req_cls;
                unsigned status;
                size_t len;
                char *body = itd_query_take(srv->q, r->ticket, &status, &len);
                return reply(conn, status, "application/json; charset=utf-8",
                             body, len, MHD_RESPMEM_MUST_FREE);
        }
        if (!srv->q)
                return reply_text(conn, MHD_HTTP_NOT_FOUND,
                                  "the query endpoint is off "
                                  "(metrics.query)\n");
        if (!loopback(conn))
                return reply_text(conn, MHD_HTTP_FORBIDDEN,
                                  "/users/ answers clients on this host "
                                  "only\n");
        size_t n = strlen(id);
        if (n == 0 || n >= ITD_ID_MAX)
                return reply_text(conn, MHD_HTTP_BAD_REQUEST,
                                  "a user id of 1..%d bytes, please\n",
                                  ITD_ID_MAX - 1);
        int64_t now = itd_now_mono_ms();
        if (!itd_query_allow(srv->q, now))
                return reply_text(conn, MHD_HTTP_TOO_MANY_REQUESTS,
                                  "more than %d requests a second; try "
                                  "again\n",
                                  ITD_QUERY_RATE);
        int t = itd_query_post(srv->q, id, conn, now);
        if (t < 0)
                return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "%d questions wait already; try again\n",
                                  ITD_QUERY_SLOTS);
        query_req_t *r = itd_xmalloc(sizeof *r);
        r->ticket = t;
        *req_cls = r;
        /* Suspended before the pipeline can see it: a wake never comes
         * before the suspension it ends (query.h). */
        MHD_suspend_connection(conn);
        itd_query_publish(srv->q, t);
        return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls) {
        itd_http_t *srv = cls;
        (void)version;
        (void)upload_data;
        /* First call: headers only. Answering on the second call is the
         * documented pattern that also copes with a (pointless) body. */
        if (!*req_cls) {
                *req_cls = &seen_marker;
                /* The whole request head is in: the deadline no longer
                 * applies until it is answered (request_done). */
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
                    conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
                conn_t *c = ci ? ci->socket_context : NULL;
                if (c) {
                        pthread_mutex_lock(&srv->mu);
                        c->busy = 1;
                        pthread_mutex_unlock(&srv->mu);
                }
                return MHD_YES;
        }
        if (*upload_data_size) {
                *upload_data_size = 0; /* a body is ignored */
                return MHD_YES;
        }
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
            strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                  "method %s not allowed\n", method);

        char why[256];
        if (strncmp(url, "/users/", 7) == 0)
                return handle_user(srv, conn, url + 7, req_cls);
        if (strcmp(url, "/metrics") == 0) {
                size_t len;
                char *body = itd_prom_render_dup(srv->m, &len);
                return reply(conn, MHD_HTTP_OK,
                             "text/plain; version=0.0.4; charset=utf-8", body,
                             len, MHD_RESPMEM_MUST_FREE);
        }
        if (strcmp(url, "/livez") == 0) {
                if (itd_health_live(srv->h, itd_now_mono_ms(), why,
                                    sizeof why))
                        return reply_text(conn, MHD_HTTP_OK, "ok\n");
                return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "%s\n",
                                  why);
        }
        if (strcmp(url, "/readyz") == 0) {
                if (itd_health_ready(srv->h, why, sizeof why))
                        return reply_text(conn, MHD_HTTP_OK, "ok\n");
                return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "not ready: %s\n", why);
        }
        return reply_text(conn, MHD_HTTP_NOT_FOUND,
                          "not found; try /metrics, /livez, /readyz%s\n",
                          srv->q ? ", /users/<id>" : "");
}

/* libmicrohttpd's own messages: kept for the error string while starting,
 * afterwards logged through a rate limiter, since each refused connection
 * or malformed request makes one and clients choose how many. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
        itd_http_t *srv = cls;
        char msg[256];
        vsnprintf(msg, sizeof msg, fmt, ap);
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = '\0';
        if (srv->starting) {
                itd_strlcpy(srv->start_err, msg, sizeof srv->start_err);
                return;
        }
        uint64_t sup;
        pthread_mutex_lock(&srv->mu);
        int ok = itd_ratelimit_allow(&srv->rl, itd_now_mono_ms(), &sup);
        pthread_mutex_unlock(&srv->mu);
        if (sup)
                itd_log(ITD_LOG_WARNING, "http",
                        "%llu similar lines suppressed",
                        (unsigned long long)sup);
        if (ok)
                itd_log(ITD_LOG_WARNING, "http", "%s", msg);
}

/* Connection opened or closed: the reaper's table. */
static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        itd_http_t *srv = cls;
        pthread_mutex_lock(&srv->mu);
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
                    conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                *socket_context = NULL;
                for (size_t i = 0; ci && i < sizeof srv->conns /
                                                 sizeof srv->conns[0];
                     i++) {
                        conn_t *c = &srv->conns[i];
                        if (c->used)
                                continue;
                        *c = (conn_t){.used = 1,
                                      .fd = ci->connect_fd,
                                      .since_ms = itd_now_mono_ms()};
                        *socket_context = c;
                        break;
                }
        } else if (*socket_context) {
                conn_t *c = *socket_context;
                c->used = 0;
                *socket_context = NULL;
        }
        pthread_mutex_unlock(&srv->mu);
}

/* A request was answered (or failed): the next one's deadline starts. */
static void request_done(void *cls, struct MHD_Connection *conn,
                         void **req_cls, enum MHD_RequestTerminationCode toe) {
        itd_http_t *srv = cls;
        (void)toe;
        if (*req_cls && *req_cls != &seen_marker) {
                free(*req_cls);
                *req_cls = NULL;
        }
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        conn_t *c = ci ? ci->socket_context : NULL;
        if (!c)
                return;
        pthread_mutex_lock(&srv->mu);
        c->busy = 0;
        c->since_ms = itd_now_mono_ms();
        pthread_mutex_unlock(&srv->mu);
}

/* Cuts connections that took longer than REQUEST_DEADLINE_MS to send a
 * request (http.c header). */
static void *reaper(void *arg) {
        itd_http_t *srv = arg;
        pthread_mutex_lock(&srv->mu);
        while (!srv->stopping) {
                int64_t now = itd_now_mono_ms();
                for (size_t i = 0;
                     i < sizeof srv->conns / sizeof srv->conns[0]; i++) {
                        conn_t *c = &srv->conns[i];
                        if (!c->used || c->busy || c->cut ||
                            now - c->since_ms < REQUEST_DEADLINE_MS)
                                continue;
                        shutdown(c->fd, SHUT_RDWR);
                        c->cut = 1;
                        srv->reaped++;
                }
                if (srv->q) {
                        /* Outside mu: waking takes libmicrohttpd's locks,
                         * and its thread takes mu in on_connection. */
                        pthread_mutex_unlock(&srv->mu);
                        itd_query_expire(srv->q, now, 0);
                        pthread_mutex_lock(&srv->mu);
                }
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += REAP_EVERY_MS * 1000000L;
                ts.tv_sec += ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
                pthread_cond_timedwait(&srv->cv, &srv->mu, &ts);
        }
        pthread_mutex_unlock(&srv->mu);
        return NULL;
}

int itd_http_listen_split(const char *listen, char *host, size_t host_size,
                          char *port, size_t port_size) {
        const char *colon;
        if (listen[0] == '[') {
                const char *close = strchr(listen, ']');
                if (!close || close[1] != ':')
                        return -1;
                size_t n = (size_t)(close - listen - 1);
                if (n == 0 || n >= host_size)
                        return -1;
                memcpy(host, listen + 1, n);
                host[n] = '\0';
                colon = close + 1;
        } else {
                colon = strrchr(listen, ':');
                if (!colon)
                        return -1;
                size_t n = (size_t)(colon - listen);
                if (n >= host_size)
                        return -1;
                memcpy(host, listen, n);
                host[n] = '\0';
                if (strchr(host, ':'))
                        return -1; /* bare IPv6 needs brackets */
                if (strcmp(host, "*") == 0)
                        host[0] = '\0';
        }
        const char *p = colon + 1;
        if (!*p || strlen(p) >= port_size)
                return -1;
        for (const char *q = p; *q; q++)
                if (*q < '0' || *q > '9')
                        return -1;
        if (atol(p) > 65535)
                return -1;
        strcpy(port, p);
        return 0;
}

itd_http_t *itd_http_start(const char *listen, itd_prom_t *m,
                           const itd_health_t *h, char *errstr,
                           size_t errstr_size) {
        char host[256], port[8];
        if (!listen || itd_http_listen_split(listen, host, sizeof host, port,
                                             sizeof port) != 0) {
                snprintf(errstr, errstr_size,
                         "metrics.listen \"%s\": expected host:port, "
                         "[ipv6]:port or :port with port 0..65535",
                         listen ? listen : "(null)");
                return NULL;
        }
        struct addrinfo hints = {0}, *ai = NULL;
        hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
        if (rc != 0 || !ai) {
                snprintf(errstr, errstr_size,
                         "metrics.listen \"%s\": cannot resolve \"%s\": %s",
                         listen, host, gai_strerror(rc));
                if (ai)
                        freeaddrinfo(ai);
                return NULL;
        }
        itd_http_t *srv = itd_xcalloc(1, sizeof *srv);
        srv->m = m;
        srv->h = h;
        srv->starting = 1;
        srv->rl = (itd_ratelimit_t){.interval_ms = 10000, .burst = 5};
        pthread_mutex_init(&srv->mu, NULL);
        pthread_cond_init(&srv->cv, NULL);
        /* Suspend/resume: /users/ requests wait for the pipeline thread
         * without holding up the event loop. */
        unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                         MHD_ALLOW_SUSPEND_RESUME;
        if (ai->ai_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        /* The logger goes first so even start-up messages reach it. */
        srv->d = MHD_start_daemon(
            flags, (uint16_t)atoi(port), NULL, NULL, handle, srv,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
            MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, MAX_PER_IP,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
            MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
            MHD_OPTION_NOTIFY_COMPLETED, request_done, srv,
            MHD_OPTION_END);
        int saved_errno = errno;
        freeaddrinfo(ai);
        if (!srv->d) {
                snprintf(errstr, errstr_size,
                         "metrics.listen \"%s\": cannot listen: %s", listen,
                         srv->start_err[0] ? srv->start_err
                                           : strerror(saved_errno));
                pthread_mutex_destroy(&srv->mu);
                pthread_cond_destroy(&srv->cv);
                free(srv);
                return NULL;
        }
        if (pthread_create(&srv->reaper, NULL, reaper, srv) != 0) {
                snprintf(errstr, errstr_size,
                         "metrics.listen \"%s\": cannot start a thread",
                         listen);
                itd_http_stop(srv);
                return NULL;
        }
        srv->reaper_running = 1;
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
        srv->port = info ? (int)info->port : atoi(port);
        srv->starting = 0;
        return srv;
}

int itd_http_port(const itd_http_t *srv) { return srv->port; }

void itd_http_set_query(itd_http_t *srv, itd_query_t *q) {
        itd_query_set_wake(q, wake_conn);
        srv->q = q;
}

void itd_http_stop(itd_http_t *srv) {
        if (!srv)
                return;
        if (srv->reaper_running) {
                pthread_mutex_lock(&srv->mu);
                srv->stopping = 1;
                pthread_cond_signal(&srv->cv);
                pthread_mutex_unlock(&srv->mu);
                pthread_join(srv->reaper, NULL);
        }
        /* libmicrohttpd must not be stopped with connections suspended:
         * answer every waiting question (503) and give the event loop a
         * moment to send those answers. */
        for (int i = 0; srv->q && i < 200; i++) {
                if (itd_query_expire(srv->q, itd_now_mono_ms(), 1) == 0)
                        break;
                struct timespec ts = {0, 10 * 1000000L};
                nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(srv->d);
        pthread_mutex_destroy(&srv->mu);
        pthread_cond_destroy(&srv->cv);
        free(srv);
}
