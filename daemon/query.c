/*
 * query.c - the mailbox between the HTTP thread and the pipeline thread,
 * the latest-prediction cache and the JSON answer of GET /users/<id>
 * (see query.h).
 *
 * Slots move NEW (posted, conn not yet suspended) -> PENDING (visible to
 * the pipeline) -> WORKING (the pipeline is answering) -> DONE (answer
 * stored, conn woken) -> free (taken by the HTTP thread); or PENDING ->
 * DONE with a 503 when the reaper finds it too old. Each transition is
 * under the mutex, and exactly one of the pipeline and the reaper wakes a
 * connection, outside the mutex.
 *
 * The cache is 4-way set associative on the user hash: a user's latest
 * prediction overwrites its own entry, else the least recently written
 * of its set.
 */
#include "query.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "intentd/event.h"
#include "intentd/log.h"
#include "intentd/mem.h"

#define WAYS 4

typedef enum { S_FREE = 0, S_NEW, S_PENDING, S_WORKING, S_DONE } sstate_t;

typedef struct slot_s {
        sstate_t st;
        char user[ITD_ID_MAX];
        void *conn;
        int64_t posted_ms;
        unsigned status;
        char *body;
        size_t len;
} slot_t;

typedef struct latest_s {
        uint64_t hash;   /* 0: empty */
        uint64_t seq;    /* write order, for replacement */
        char prediction_id[ITD_PREDICTION_ID_MAX];
        int64_t event_ts_ms, predicted_at_ms, model_version;
        float score;
        float next_probs[ITD_NEXT__COUNT];
        int32_t next_action;
        uint32_t n_explanation;
        char explanation_feature[ITD_EXPLAIN_MAX][32];
        float explanation_contribution[ITD_EXPLAIN_MAX];
} latest_t;

struct itd_query_s {
        pthread_mutex_t mu;
        slot_t slot[ITD_QUERY_SLOTS];
        _Atomic int waiting;    /* slots PENDING, for a cheap serve */
        int closing;
        itd_query_wake_fn *wake;
        double tokens;          /* rate limit */
        int64_t tokens_ms;

        /* pipeline thread only */
        latest_t *cache;
        size_t sets;            /* power of two */
        uint64_t seq;
        char model_id[ITD_MODEL_ID_MAX];
};

itd_query_t *itd_query_new(size_t cache_users) {
        itd_query_t *q = itd_xcalloc(1, sizeof *q);
        pthread_mutex_init(&q->mu, NULL);
        q->sets = 1;
        while (q->sets * WAYS < cache_users)
                q->sets *= 2;
        q->cache = itd_xcalloc(q->sets * WAYS, sizeof *q->cache);
        q->tokens = ITD_QUERY_RATE;
        q->tokens_ms = itd_now_mono_ms();
        return q;
}

void itd_query_destroy(itd_query_t *q) {
        if (!q)
                return;
        for (size_t i = 0; i < ITD_QUERY_SLOTS; i++)
                free(q->slot[i].body);
        pthread_mutex_destroy(&q->mu);
        free(q->cache);
        free(q);
}

void itd_query_set_wake(itd_query_t *q, itd_query_wake_fn *wake) {
        q->wake = wake;
}

int itd_query_allow(itd_query_t *q, int64_t now_ms) {
        pthread_mutex_lock(&q->mu);
        int64_t dt = now_ms - q->tokens_ms;
        if (dt < 0)
                dt = 0; /* a clock read earlier on another thread */
        q->tokens += (double)dt * ITD_QUERY_RATE / 1000.0;
        if (q->tokens > ITD_QUERY_RATE)
                q->tokens = ITD_QUERY_RATE;
        q->tokens_ms += dt;
        int ok = q->tokens >= 1.0;
        if (ok)
                q->tokens -= 1.0;
        pthread_mutex_unlock(&q->mu);
        return ok;
}

int itd_query_post(itd_query_t *q, const char *user_id, void *conn,
                   int64_t now_ms) {
        int t = -1;
        pthread_mutex_lock(&q->mu);
        for (int i = 0; !q->closing && i < ITD_QUERY_SLOTS; i++) {
                if (q->slot[i].st != S_FREE)
                        continue;
                slot_t *s = &q->slot[i];
                *s = (slot_t){.st = S_NEW, .conn = conn, .posted_ms = now_ms};
                itd_strlcpy(s->user, user_id, sizeof s->user);
                t = i;
                break;
        }
        pthread_mutex_unlock(&q->mu);
        return t;
}

void itd_query_publish(itd_query_t *q, int ticket) {
        pthread_mutex_lock(&q->mu);
        if (q->slot[ticket].st == S_NEW) {
                q->slot[ticket].st = S_PENDING;
                atomic_fetch_add(&q->waiting, 1);
        }
        pthread_mutex_unlock(&q->mu);
}

char *itd_query_take(itd_query_t *q, int ticket, unsigned *status,
                     size_t *len) {
        pthread_mutex_lock(&q->mu);
        slot_t *s = &q->slot[ticket];
        char *body = s->body;
        *status = s->status;
        *len = s->len;
        *s = (slot_t){.st = S_FREE};
        pthread_mutex_unlock(&q->mu);
        return body;
}

static char *dup_text(const char *text, size_t *len) {
        *len = strlen(text);
        char *b = itd_xmalloc(*len + 1);
        memcpy(b, text, *len + 1);
        return b;
}

size_t itd_query_expire(itd_query_t *q, int64_t now_ms, int all) {
        void *wake[ITD_QUERY_SLOTS];
        size_t n_wake = 0, outstanding = 0;
        pthread_mutex_lock(&q->mu);
        if (all)
                q->closing = 1;
        for (size_t i = 0; i < ITD_QUERY_SLOTS; i++) {
                slot_t *s = &q->slot[i];
                if (s->st != S_FREE)
                        outstanding++;
                if (s->st != S_PENDING ||
                    (!all && now_ms - s->posted_ms < ITD_QUERY_WAIT_MS))
                        continue;
                s->st = S_DONE;
                s->status = 503;
                s->body = dup_text(
                    all ? "{\"error\": \"stopping\"}\n"
                        : "{\"error\": \"the pipeline did not answer within "
                          "2 s (busy); try again\"}\n",
                    &s->len);
                atomic_fetch_sub(&q->waiting, 1);
                wake[n_wake++] = s->conn;
        }
        itd_query_wake_fn *fn = q->wake;
        pthread_mutex_unlock(&q->mu);
        for (size_t i = 0; i < n_wake; i++)
                if (fn)
                        fn(wake[i]);
        return outstanding;
}

/* ---- the cache ------------------------------------------------------- */

void itd_query_note(itd_query_t *q, const itd_prediction_t *pr,
                    uint64_t user_hash) {
        uint64_t h = user_hash | 1; /* != 0 */
        latest_t *set = q->cache + (h & (q->sets - 1)) * WAYS;
        latest_t *e = &set[0];
        for (int w = 0; w < WAYS; w++) {
                if (set[w].hash == h) {
                        e = &set[w];
                        break;
                }
                if (set[w].seq < e->seq)
                        e = &set[w];
        }
        e->hash = h;
        e->seq = ++q->seq;
        memcpy(e->prediction_id, pr->prediction_id, sizeof e->prediction_id);
        e->event_ts_ms = pr->event_ts_ms;
        e->predicted_at_ms = pr->predicted_at_ms;
        e->model_version = pr->model_version;
        e->score = pr->purchase_probability;
        memcpy(e->next_probs, pr->next_probs, sizeof e->next_probs);
        e->next_action = (int32_t)pr->next_action;
        e->n_explanation = (uint32_t)(pr->n_explanation < ITD_EXPLAIN_MAX
                                          ? pr->n_explanation
                                          : ITD_EXPLAIN_MAX);
        memcpy(e->explanation_feature, pr->explanation_feature,
               sizeof e->explanation_feature);
        memcpy(e->explanation_contribution, pr->explanation_contribution,
               sizeof e->explanation_contribution);
        if (strcmp(q->model_id, pr->model_id) != 0)
                memcpy(q->model_id, pr->model_id, sizeof q->model_id);
}

int itd_query_forget(itd_query_t *q, uint64_t user_hash) {
        uint64_t h = user_hash | 1;
        latest_t *set = q->cache + (h & (q->sets - 1)) * WAYS;
        for (int w = 0; w < WAYS; w++)
                if (set[w].hash == h) {
                        memset(&set[w], 0, sizeof set[w]);
                        return 1;
                }
        return 0;
}

static const latest_t *cache_get(const itd_query_t *q, const char *user) {
        uint64_t h = itd_user_hash(user) | 1;
        const latest_t *set = q->cache + (h & (q->sets - 1)) * WAYS;
        for (int w = 0; w < WAYS; w++)
                if (set[w].hash == h)
                        return &set[w];
        return NULL;
}

/* ---- the answer ------------------------------------------------------- */

static json_t *cats_json(const itd_topcats_t *top) {
        json_t *a = json_array();
        for (size_t k = 0; k < top->n; k++)
                json_array_append_new(a, json_pack("{s:s, s:f}", "category",
                                                   top->name[k], "score",
                                                   (double)top->score[k]));
        return a;
}

static const char *window_name(int64_t ms, char *buf, size_t cap) {
        static const struct {
                int64_t ms;
                const char *unit;
        } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"},
                     {1000, "s"}};
        for (size_t i = 0; i < 4; i++)
                if (ms % units[i].ms == 0) {
                        snprintf(buf, cap, "%lld%s",
                                 (long long)(ms / units[i].ms),
                                 units[i].unit);
                        return buf;
                }
        snprintf(buf, cap, "%lldms", (long long)ms);
        return buf;
}

static json_t *state_json(const itd_user_summary_t *u, int32_t partition) {
        json_t *windows = json_object(), *life = json_object();
        char name[32];
        for (size_t w = 0; w < u->n_windows; w++) {
                json_t *c = json_object();
                for (int t = 0; t < ITD_EV__COUNT; t++)
                        json_object_set_new(
                            c, itd_event_type_name((itd_event_type_t)t),
                            json_integer(
                                u->counts[w * ITD_EV__COUNT + (size_t)t]));
                json_object_set_new(
                    windows, window_name(u->window_ms[w], name, sizeof name),
                    c);
        }
        for (int t = 0; t < ITD_EV__COUNT; t++)
                json_object_set_new(life,
                                    itd_event_type_name((itd_event_type_t)t),
                                    json_integer(u->lifetime[t]));
        return json_pack(
            "{s:i, s:I, s:I, s:{s:I, s:i, s:I}, s:o, s:o, s:o}",
            "partition", (int)partition, "first_event_time_ms",
            (json_int_t)u->first_ts_ms, "last_event_time_ms",
            (json_int_t)u->last_ts_ms, "session", "start_ms",
            (json_int_t)u->session_start_ms, "events",
            (int)u->session_events, "length_ms",
            (json_int_t)(u->last_ts_ms - u->session_start_ms), "windows",
            windows, "lifetime_events", life, "top_categories",
            cats_json(&u->top));
}

static json_t *latest_json(const itd_query_t *q, const latest_t *e,
                           const itd_user_summary_t *u) {
        static const char *const keys[ITD_NEXT__COUNT] = {
            "view", "search", "add_to_cart", "purchase", "leave"};
        json_t *probs = json_object();
        for (int k = 0; k < ITD_NEXT__COUNT; k++)
                json_object_set_new(probs, keys[k],
                                    json_real((double)e->next_probs[k]));
        json_t *expl = json_null();
        if (e->n_explanation) {
                expl = json_array();
                for (uint32_t k = 0; k < e->n_explanation; k++)
                        json_array_append_new(
                            expl, json_pack("{s:s, s:f}", "feature",
                                            e->explanation_feature[k],
                                            "contribution",
                                            (double)e->
                                                explanation_contribution[k]));
        }
        return json_pack(
            "{s:s, s:I, s:I, s:f, s:s, s:o, s:o, s:s, s:I, s:o}",
            "prediction_id", e->prediction_id, "event_time_ms",
            (json_int_t)e->event_ts_ms, "predicted_at_ms",
            (json_int_t)e->predicted_at_ms, "purchase_probability",
            (double)e->score, "next_action",
            itd_next_name((itd_next_t)e->next_action),
            "next_action_probabilities", probs, "top_categories",
            cats_json(&u->top), "model_id", q->model_id, "model_version",
            (json_int_t)e->model_version, "explanation", expl);
}

/* The answer to one question: status and malloc'd body. */
static char *answer(const itd_query_t *q, itd_engine_t *const *engs,
                    size_t n_engs, const char *user, unsigned *status,
                    size_t *len) {
        char pseud[ITD_LOG_PSEUDONYM_SIZE];
        itd_log_pseudonym(user, strlen(user), pseud, sizeof pseud);
        itd_user_summary_t u;
        int32_t part;
        json_t *doc;
        /* each engine holds its own partitions: the first that knows the
         * user answers */
        size_t k = 0;
        while (k < n_engs &&
               itd_engine_user(engs[k], user, &u, &part) != ITD_OK)
                k++;
        if (k == n_engs) {
                *status = 404;
                doc = json_pack("{s:s, s:b}", "user", pseud, "known", 0);
        } else {
                *status = 200;
                const latest_t *e = cache_get(q, user);
                doc = json_pack("{s:s, s:b, s:o, s:o}", "user", pseud,
                                "known", 1, "state", state_json(&u, part),
                                "latest",
                                e ? latest_json(q, e, &u) : json_null());
        }
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        json_decref(doc);
        size_t n = text ? strlen(text) : 0;
        char *body = itd_xmalloc(n + 2);
        memcpy(body, text ? text : "", n);
        body[n++] = '\n';
        body[n] = '\0';
        free(text);
        *len = n;
        return body;
}

void itd_query_serve(itd_query_t *q, itd_engine_t *const *engs,
                     size_t n_engs) {
        if (atomic_load_explicit(&q->waiting, memory_order_relaxed) == 0)
                return;
        for (int i = 0; i < ITD_QUERY_SLOTS; i++) {
                char user[ITD_ID_MAX];
                pthread_mutex_lock(&q->mu);
                slot_t *s = &q->slot[i];
                int mine = s->st == S_PENDING;
                if (mine) {
                        s->st = S_WORKING;
                        memcpy(user, s->user, sizeof user);
                        atomic_fetch_sub(&q->waiting, 1);
                }
                pthread_mutex_unlock(&q->mu);
                if (!mine)
                        continue;
                unsigned status;
                size_t len;
                char *body = answer(q, engs, n_engs, user, &status, &len);
                pthread_mutex_lock(&q->mu);
                s->body = body;
                s->len = len;
                s->status = status;
                s->st = S_DONE;
                void *conn = s->conn;
                itd_query_wake_fn *fn = q->wake;
                pthread_mutex_unlock(&q->mu);
                if (fn)
                        fn(conn);
        }
}
