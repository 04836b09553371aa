/*
 * registry_int.h - a minimal Confluent Schema Registry client: the one
 * request intentd needs, GET {url}/schemas/ids/{id}, as a libcurl easy
 * handle that pipeline/fetcher.c drives from its own thread. Private to
 * pipeline.
 *
 * Credentials never reach a message: they may come in the URL
 * (`https://user:password@host`) or separately (basic_auth_user_info,
 * "user:password", as Confluent clients' `basic.auth.user.info`); either
 * way they are taken out of the URL at creation and handed to libcurl on
 * their own, and every text the client produces names the URL without
 * them (itd_url_redact).
 */
#ifndef INTENTD_REGISTRY_INT_H
#define INTENTD_REGISTRY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"

typedef struct itd_registry_s itd_registry_t;

/**
 * @brief A client for the registry at url ("http://host:8081", https and
 * user:password@ in the URL work through libcurl). user_info
 * ("user:password", NULL or "": none) is the other way to give
 * credentials; giving both is an error. timeout_ms bounds each look-up.
 * Calls curl_global_init: main thread, before other threads start.
 * @returns the client (caller owns), or NULL with errstr (built without
 * libcurl, bad URL, credentials twice); errstr never holds a password.
 */
itd_registry_t *itd_registry_new(const char *url, const char *user_info,
                                 int64_t timeout_ms, char *errstr,
                                 size_t errstr_size);
void itd_registry_destroy(itd_registry_t *reg);

/** @brief The base URL without credentials or trailing slashes: what
 * messages print. Owned by reg. @thread any (constant). */
const char *itd_registry_url(const itd_registry_t *reg);

/**
 * @brief Copies url into buf[cap] with any user:password@ replaced by
 * "***@"; cut to fit, NUL-terminated when cap > 0. For any text that
 * names a URL a person configured. @returns buf. @thread any.
 */
const char *itd_url_redact(const char *url, char *buf, size_t cap);

/**
 * @brief Registers schema (Avro JSON text) under subject and says its id
 * (POST {url}/subjects/{subject}/versions, which answers the existing id
 * when the same schema is registered already), or, with register_it 0,
 * only looks it up (POST {url}/subjects/{subject}). Blocking, bounded by
 * the client's timeout; for start-up.
 * @returns ITD_OK with *id; ITD_ERR_CONF when another try cannot help:
 * the registry refused (401/403 credentials or permission, 409 the schema
 * is incompatible with the subject's, 422 invalid schema, 404 on a
 * look-up: not registered under that subject, other 4xx); ITD_ERR_IO for
 * what may pass (connection, timeout, 5xx, 429); ITD_ERR_PARSE for an
 * answer without an id. why gets one line with the redacted URL and the
 * registry's own message.
 * @thread any; reg is only read.
 */
itd_err_t itd_registry_subject(itd_registry_t *reg, const char *subject,
                               const char *schema, int register_it,
                               int32_t *id, char *why, size_t why_size);

/* One look-up in flight: a configured easy handle and its answer. */
typedef struct itd_reg_req_s itd_reg_req_t;

/**
 * @brief A look-up of id, ready to add to a libcurl multi handle
 * (itd_registry_req_easy). @returns the request (caller owns).
 * @thread any, one request per thread at a time; reg is only read.
 */
itd_reg_req_t *itd_registry_req_new(itd_registry_t *reg, uint32_t id);

/** @brief The request's CURL * (as void *, so this header needs no
 * curl.h). */
void *itd_registry_req_easy(itd_reg_req_t *req);

/** @brief The schema id the request looks up. */
uint32_t itd_registry_req_id(const itd_reg_req_t *req);

/**
 * @brief The outcome of a finished transfer (curl_rc: its CURLcode).
 * @param schema  on ITD_OK a malloc'd NUL-terminated Avro schema (caller
 * frees); else NULL.
 * @returns ITD_OK; ITD_ERR_NOT_FOUND on HTTP 404; ITD_ERR_PARSE if the
 * answer is not {"schema": "..."} or its schemaType is not AVRO;
 * ITD_ERR_IO on a network error, timeout or other HTTP status. why gets
 * one line naming the redacted URL.
 */
itd_err_t itd_registry_req_finish(itd_reg_req_t *req, int curl_rc,
                                  char **schema, char *why,
                                  size_t why_size);
void itd_registry_req_destroy(itd_reg_req_t *req);

/* ---- pipeline/fetcher.c: look-ups off the decoding thread ---- */

typedef struct itd_fetcher_s itd_fetcher_t;

typedef struct itd_fetch_result_s {
        uint32_t id;
        itd_err_t rc;    /* as itd_registry_req_finish */
        char *schema;    /* on ITD_OK, malloc'd; the taker frees it */
        char why[320];   /* else one line, credentials redacted */
} itd_fetch_result_t;

/* At most this many look-ups run at once; more wait in the queue. */
#define ITD_FETCH_CONCURRENT 4
/* Ids queued or running; a request beyond it is refused. */
#define ITD_FETCH_QUEUE 64

/**
 * @brief Starts a thread that performs look-ups against reg (taken: the
 * fetcher owns and destroys it), at most per_sec started per second.
 * @returns the fetcher, or NULL with errstr.
 */
itd_fetcher_t *itd_fetcher_new(itd_registry_t *reg, unsigned per_sec,
                               char *errstr, size_t errstr_size);

/** @brief Aborts look-ups in flight (at once, not after their timeout),
 * joins the thread, frees unclaimed results. NULL does nothing. */
void itd_fetcher_destroy(itd_fetcher_t *f);

/** @brief The registry (owned by the fetcher). */
const itd_registry_t *itd_fetcher_registry(const itd_fetcher_t *f);

/**
 * @brief Asks for id in the background. @returns 0, or -1 when
 * ITD_FETCH_QUEUE look-ups are already queued or running.
 * @thread the owner (one thread).
 */
int itd_fetcher_request(itd_fetcher_t *f, uint32_t id);

/**
 * @brief Takes up to max finished look-ups, waiting up to wait_ms for the
 * first (0: do not wait). @returns how many were written to out.
 * @thread the owner.
 */
size_t itd_fetcher_take(itd_fetcher_t *f, itd_fetch_result_t *out,
                        size_t max, int wait_ms);

#endif
