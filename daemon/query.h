/*
 * query.h - the read-only query endpoint: GET /users/<user_id> on the
 * metrics listener (metrics.query: on) answers one user's state summary
 * and latest prediction, for a support agent or a marketing tool that
 * cannot consume the prediction topic.
 *
 * Threads. The pipeline thread owns the engine's state; the HTTP thread
 * never reads it. A request is a question posted to a small mailbox (at
 * most ITD_QUERY_SLOTS at once): the HTTP thread posts it and suspends the
 * connection, the pipeline thread answers every waiting question between
 * two batches (itd_query_serve, once per loop turn) and wakes the
 * connection; a question not answered within ITD_QUERY_WAIT_MS is
 * answered 503 by the HTTP side's reaper (itd_query_expire). The latest
 * prediction of each user is kept by the pipeline thread in a bounded
 * cache (itd_query_note), only while the endpoint is on.
 *
 * What it says: the user as the pseudonym of the logs ("u:" + 16 hex,
 * log.h), never the id itself; window counts, first and last event time,
 * the current session and top categories; the latest prediction's score,
 * next action and its probabilities, top categories, model id and
 * version, explanation (null when predict.explain is 0). 404 with "known": false
 * for a user no assigned partition holds.
 */
#ifndef INTENTD_QUERY_H
#define INTENTD_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/engine.h"
#include "intentd/prediction.h"

#define ITD_QUERY_SLOTS 16     /* questions waiting at once */
#define ITD_QUERY_WAIT_MS 2000 /* unanswered longer: 503 */
#define ITD_QUERY_RATE 20      /* requests per second, burst as many */

typedef struct itd_query_s itd_query_t;

/* Wakes a suspended request (http.c: MHD_resume_connection). */
typedef void itd_query_wake_fn(void *conn);

/**
 * @brief A mailbox and a latest-prediction cache of `cache_users` users
 * (rounded up to a power of two; about 160 bytes each).
 * @returns the query (caller owns; destroy after the HTTP server stopped).
 */
itd_query_t *itd_query_new(size_t cache_users);
void itd_query_destroy(itd_query_t *q);

/* ---- HTTP thread -------------------------------------------------- */

/** @brief Sets the wake function (http.c, once, before requests). */
void itd_query_set_wake(itd_query_t *q, itd_query_wake_fn *wake);

/** @brief Token bucket of ITD_QUERY_RATE a second: 1 to go on, 0 for
 * 429. @thread any; locks. */
int itd_query_allow(itd_query_t *q, int64_t now_ms);

/**
 * @brief Reserves a slot for a question about user_id (copied; 1..63
 * bytes) on behalf of conn. Invisible to the pipeline until
 * itd_query_publish: the caller suspends conn in between, so a wake can
 * never come before the suspension.
 * @returns a ticket >= 0, or -1 when every slot is busy (503) or the
 * endpoint is closing.
 */
int itd_query_post(itd_query_t *q, const char *user_id, void *conn,
                   int64_t now_ms);
void itd_query_publish(itd_query_t *q, int ticket);

/**
 * @brief The answer of a woken ticket: a malloc'd JSON body (caller
 * frees) and its HTTP status; frees the slot.
 */
char *itd_query_take(itd_query_t *q, int ticket, unsigned *status,
                     size_t *len);

/**
 * @brief Answers 503 to questions waiting longer than ITD_QUERY_WAIT_MS
 * (all of them with all = 1, when stopping) and wakes them.
 * @returns the tickets still not taken.
 */
size_t itd_query_expire(itd_query_t *q, int64_t now_ms, int all);

/* ---- pipeline thread ---------------------------------------------- */

/** @brief Remembers pr as its user's latest prediction; user_hash: its
 * row's (itd_row_t), the key the cache is found by. */
void itd_query_note(itd_query_t *q, const itd_prediction_t *pr,
                    uint64_t user_hash);

/**
 * @brief Drops the latest prediction cached for user_hash (erasure on
 * request). @returns 1 when one was cached.
 */
int itd_query_forget(itd_query_t *q, uint64_t user_hash);

/** @brief Answers every waiting question from engs[0..n_engs) (the
 * workers' engines, each holding its own partitions) and the cache, and
 * wakes them. Cheap when none waits (one atomic load). */
void itd_query_serve(itd_query_t *q, itd_engine_t *const *engs,
                     size_t n_engs);

#endif
