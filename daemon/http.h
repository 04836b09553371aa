/*
 * http.h - the HTTP endpoint for SREs: GET /metrics (Prometheus text), GET
 * /livez and GET /readyz (health), and with metrics.query GET /users/<id>
 * (query.h), served by libmicrohttpd from its own thread on
 * metrics.listen.
 *
 * The pipeline thread never waits for HTTP: it publishes into the metrics
 * registry (atomics) and into an itd_health_t (atomics), and the HTTP thread
 * only reads them.
 */
#ifndef INTENTD_HTTP_H
#define INTENTD_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"
#include "prom.h"
#include "query.h"

/*
 * What /livez and /readyz report; caller-provided storage, written by the
 * run loop, read by the HTTP thread.
 *   /livez  200 while heartbeat_ms (itd_now_mono_ms of the last loop turn)
 *           is younger than stall_ms, else 503: a stuck loop is restarted by
 *           whoever probes (systemd's watchdog does the same from inside).
 *   /readyz 200 when ready && model_loaded && assigned > 0 && !restoring
 *           && !stopping, else 503 with the first failing reason on one
 *           line.
 */
typedef struct itd_health_s {
        _Atomic int64_t heartbeat_ms; /* monotonic ms of the last loop turn */
        _Atomic int ready;        /* start-up finished (config, restore,
                                     first assignment) */
        _Atomic int model_loaded; /* a model is scoring events */
        _Atomic int assigned;     /* partitions currently assigned */
        _Atomic int stopping;     /* shutdown began */
        _Atomic int restoring;    /* partitions being restored from the
                                     state changelog */
        int64_t stall_ms;         /* /livez limit; constant after init */
} itd_health_t;

/** @brief Zeroes h, sets stall_ms and a first heartbeat (now), so start-up
 * has stall_ms of grace. @thread before the HTTP server starts. */
void itd_health_init(itd_health_t *h, int64_t stall_ms);

/** @brief Records a loop turn. @thread the run loop; lock-free. */
void itd_health_beat(itd_health_t *h);

/**
 * @brief The /livez verdict at now_ms (monotonic).
 * @returns 1 if alive; else 0 with a one-line reason in why.
 * @thread any
 */
int itd_health_live(const itd_health_t *h, int64_t now_ms, char *why,
                    size_t why_size);

/**
 * @brief The /readyz verdict.
 * @returns 1 if ready; else 0 with a one-line reason in why ("starting",
 * "no model loaded", "no partitions assigned", "restoring partitions from
 * the state changelog", "stopping").
 * @thread any
 */
int itd_health_ready(const itd_health_t *h, char *why, size_t why_size);

typedef struct itd_http_s itd_http_t;

/**
 * @brief Splits a metrics.listen value: "host:port" / "[v6]:port" /
 * ":port" ("*:port"); host gets "" for every IPv4 address.
 * @returns 0, or -1 when it is none of these or the port is not 0..65535.
 * @thread any
 */
int itd_http_listen_split(const char *listen, char *host, size_t host_size,
                          char *port, size_t port_size);

/**
 * @brief Starts serving on listen: "host:port", "[v6addr]:port", or
 * ":port" / "*:port" for every IPv4 address; port 0 picks a free port (see
 * itd_http_port). host may be a name; its first address is used.
 * @param m  borrowed; must outlive the server.
 * @param h  borrowed; must outlive the server.
 * @returns the server (caller owns; itd_http_stop), or NULL with
 * "metrics.listen \"...\": why" in errstr (bad address, port in use).
 * @thread main; the server then runs its own thread.
 */
itd_http_t *itd_http_start(const char *listen, itd_prom_t *m,
                           const itd_health_t *h, char *errstr,
                           size_t errstr_size);

/**
 * @brief Turns on GET /users/<user_id> (query.h), answered for loopback
 * clients only (403 otherwise), at most ITD_QUERY_RATE a second (429).
 * @param q  borrowed; must outlive the server. Call before requests come
 * (right after itd_http_start).
 */
void itd_http_set_query(itd_http_t *srv, itd_query_t *q);

/** @brief The port actually bound (useful after port 0). */
int itd_http_port(const itd_http_t *srv);

/** @brief Stops the server and joins its thread; NULL does nothing. */
void itd_http_stop(itd_http_t *srv);

#endif
