/*
 * input.c - from a message value to a validated event, or to the stable
 * reason it goes to the dead-letter topic.
 *
 * Order of checks, so each bad message gets one well-defined reason: size
 * (empty, too large), then framing (magic byte, schema id look-up), then
 * the payload walk (codec.c: structure, strings, enum symbols, price
 * finite), then content (user id, timestamp range, price sign).
 *
 * Writer schemas by Confluent id: an open-addressing table of resolved
 * plans, kept for the decoder's life (a registered id never changes its
 * schema), and a bounded table of unresolved ids: those being looked up in
 * the registry (the message is answered ITD_REASON_PENDING, the caller
 * keeps it and asks again) and those that failed, not asked again for
 * ITD_DECODER_MISS_RETRY_MS. A flood of unknown ids costs a probe per
 * message rather than a file open or an HTTP request each. That table is
 * never cycled: an entry stays until it expires, however many other ids
 * arrive, and when it is full a new id is answered unknown_schema_id
 * without a look-up (and not remembered), so an attacker with many ids can
 * neither evict a failed id to force a refetch nor queue unbounded
 * requests. Registry look-ups run on pipeline/fetcher.c's thread, at most
 * ITD_DECODER_REGISTRY_PER_SEC started per second; lines about failed ids
 * go through a rate limiter.
 */
#include "intentd/input.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <avro.h>

#include "codec_int.h"
#include "intentd/codec.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "registry_int.h"

#define UNRESOLVED_MAX 1024      /* ids pending or failed at once */
#define UNRESOLVED_CAP 2048      /* their table's slots (power of two) */
#define MAX_SCHEMA_FILE (1 << 20) /* a schema file larger than this is refused */

static const char *const reason_names[ITD_REASON__COUNT] = {
    [ITD_REASON_OK] = "ok",
    [ITD_REASON_EMPTY_MESSAGE] = "empty_message",
    [ITD_REASON_MESSAGE_TOO_LARGE] = "message_too_large",
    [ITD_REASON_BAD_MAGIC_BYTE] = "bad_magic_byte",
    [ITD_REASON_UNKNOWN_SCHEMA_ID] = "unknown_schema_id",
    [ITD_REASON_SCHEMA_INCOMPATIBLE] = "schema_incompatible",
    [ITD_REASON_TRUNCATED] = "truncated",
    [ITD_REASON_TRAILING_BYTES] = "trailing_bytes",
    [ITD_REASON_NEGATIVE_LENGTH] = "negative_length",
    [ITD_REASON_BAD_UNION_BRANCH] = "bad_union_branch",
    [ITD_REASON_BAD_ENUM_INDEX] = "bad_enum_index",
    [ITD_REASON_MALFORMED_AVRO] = "malformed_avro",
    [ITD_REASON_JSON_SYNTAX] = "json_syntax",
    [ITD_REASON_JSON_NOT_OBJECT] = "json_not_object",
    [ITD_REASON_WRONG_TYPE] = "wrong_type",
    [ITD_REASON_MISSING_FIELD] = "missing_field",
    [ITD_REASON_MISSING_USER_ID] = "missing_user_id",
    [ITD_REASON_UNKNOWN_EVENT_TYPE] = "unknown_event_type",
    [ITD_REASON_TS_TOO_OLD] = "ts_too_old",
    [ITD_REASON_TS_IN_FUTURE] = "ts_in_future",
    [ITD_REASON_BAD_PRICE] = "bad_price",
    [ITD_REASON_STRING_TOO_LONG] = "string_too_long",
    [ITD_REASON_INVALID_UTF8] = "invalid_utf8",
    [ITD_REASON_NUL_IN_STRING] = "nul_in_string",
    [ITD_REASON_BAD_CONTROL] = "bad_control",
};

const char *itd_reason_name(itd_reason_t r) {
        if (r == ITD_REASON_PENDING)
                return "pending";
        if ((int)r < 0 || r >= ITD_REASON__COUNT || !reason_names[r])
                return "unknown";
        return reason_names[r];
}

typedef struct {
        uint32_t id;
        itd_plan_t *plan; /* NULL: empty slot */
} entry_t;

typedef enum { ID_FREE = 0, ID_PENDING, ID_MISS } id_state_t;

/* An id without a plan: being looked up, or failed until until_ms. */
typedef struct {
        uint32_t id;
        uint8_t state;        /* id_state_t */
        itd_reason_t reason;  /* ID_MISS: unknown_schema_id or
                               * schema_incompatible */
        int64_t until_ms;     /* ID_MISS: asked again after (monotonic) */
        char why[200];
} unresolved_t;

struct itd_decoder_s {
        itd_input_conf_t conf;
        char *schemas_dir;     /* NULL: none */
        itd_codec_t *codec;    /* owns the built-in plan */
        const itd_plan_t *own; /* borrowed from codec */
        entry_t *tab;          /* capacity a power of two, half full at most */
        size_t tab_cap, tab_n;
        unresolved_t un[UNRESOLVED_CAP]; /* linear probing, no deletion:
                                          * expired ones go at a sweep */
        size_t un_used;        /* slots not ID_FREE */
        int64_t next_sweep_ms; /* a full table is swept at most 1/s */
        itd_fetcher_t *fetch;  /* NULL: no registry */
        itd_ratelimit_t rl;    /* lines about ids, per decoder */
        itd_decoder_stats_t st;
};

itd_decoder_t *itd_decoder_new(const itd_input_conf_t *conf,
                               itd_input_fault_t *fault, char *errstr,
                               size_t errstr_size) {
        itd_input_fault_t fails_as = ITD_INPUT_FAULT_LIMITS;
        itd_decoder_t *dec = itd_xcalloc(1, sizeof *dec);
        dec->conf = *conf;
        if (conf->format != ITD_INPUT_AVRO && conf->format != ITD_INPUT_JSON) {
                snprintf(errstr, errstr_size, "input format %d is unknown",
                         conf->format);
                goto fail;
        }
        if (conf->framing < ITD_FRAMING_AUTO ||
            conf->framing > ITD_FRAMING_BARE) {
                snprintf(errstr, errstr_size, "input framing %d is unknown",
                         conf->framing);
                goto fail;
        }
        if (conf->max_string_bytes == 0 || conf->max_message_bytes == 0) {
                snprintf(errstr, errstr_size,
                         "input limits must be positive (max_string_bytes "
                         "%zu, max_message_bytes %zu)",
                         conf->max_string_bytes, conf->max_message_bytes);
                goto fail;
        }
        fails_as = ITD_INPUT_FAULT_SCHEMAS_DIR;
        if (conf->schemas_dir && conf->schemas_dir[0]) {
                struct stat sb;
                if (stat(conf->schemas_dir, &sb) != 0) {
                        snprintf(errstr, errstr_size,
                                 "input.schemas_dir \"%s\": %s",
                                 conf->schemas_dir, strerror(errno));
                        goto fail;
                }
                if (!S_ISDIR(sb.st_mode)) {
                        snprintf(errstr, errstr_size,
                                 "input.schemas_dir \"%s\": not a folder",
                                 conf->schemas_dir);
                        goto fail;
                }
                dec->schemas_dir = itd_xstrdup(conf->schemas_dir);
        }
        fails_as = ITD_INPUT_FAULT_REGISTRY;
        if (conf->registry_url && conf->registry_url[0]) {
                itd_registry_t *reg = itd_registry_new(
                    conf->registry_url, conf->registry_user_info,
                    conf->registry_timeout_ms, errstr, errstr_size);
                if (!reg)
                        goto fail;
                dec->fetch = itd_fetcher_new(reg, ITD_DECODER_REGISTRY_PER_SEC,
                                             errstr, errstr_size);
                if (!dec->fetch)
                        goto fail;
        }
        dec->rl = (itd_ratelimit_t){.interval_ms = 10000, .burst = 10};
        /* Strings the caller may free: none kept but schemas_dir. */
        dec->conf.schemas_dir = dec->schemas_dir;
        dec->conf.registry_url = NULL;
        dec->conf.registry_user_info = NULL;
        fails_as = ITD_INPUT_FAULT_BUILTIN;
        dec->codec = itd_codec_new(errstr, errstr_size);
        if (!dec->codec)
                goto fail;
        dec->own = itd_codec_event_plan(dec->codec);
        dec->tab_cap = 16;
        dec->tab = itd_xcalloc(dec->tab_cap, sizeof *dec->tab);
        if (fault)
                *fault = ITD_INPUT_FAULT_NONE;
        return dec;
fail:
        if (fault)
                *fault = fails_as;
        itd_decoder_destroy(dec);
        return NULL;
}

void itd_decoder_destroy(itd_decoder_t *dec) {
        if (!dec)
                return;
        for (size_t i = 0; i < dec->tab_cap; i++)
                itd_plan_destroy(dec->tab[i].plan);
        free(dec->tab);
        itd_fetcher_destroy(dec->fetch);
        itd_codec_destroy(dec->codec);
        free(dec->schemas_dir);
        free(dec);
}

void itd_decoder_stats(const itd_decoder_t *dec, itd_decoder_stats_t *st) {
        *st = dec->st;
}

static size_t slot_of_id(uint32_t id, size_t cap) {
        /* Fibonacci hashing: ids are small consecutive integers. */
        return (size_t)((id * 2654435769u) & (uint32_t)(cap - 1));
}

static const itd_plan_t *tab_get(const itd_decoder_t *dec, uint32_t id) {
        for (size_t i = slot_of_id(id, dec->tab_cap);;
             i = (i + 1) & (dec->tab_cap - 1)) {
                if (!dec->tab[i].plan)
                        return NULL;
                if (dec->tab[i].id == id)
                        return dec->tab[i].plan;
        }
}

static void tab_put(itd_decoder_t *dec, uint32_t id, itd_plan_t *plan) {
        if ((dec->tab_n + 1) * 2 > dec->tab_cap) {
                entry_t *old = dec->tab;
                size_t old_cap = dec->tab_cap;
                dec->tab_cap *= 2;
                dec->tab = itd_xcalloc(dec->tab_cap, sizeof *dec->tab);
                dec->tab_n = 0;
                for (size_t i = 0; i < old_cap; i++)
                        if (old[i].plan)
                                tab_put(dec, old[i].id, old[i].plan);
                free(old);
        }
        size_t i = slot_of_id(id, dec->tab_cap);
        while (dec->tab[i].plan)
                i = (i + 1) & (dec->tab_cap - 1);
        dec->tab[i].id = id;
        dec->tab[i].plan = plan;
        dec->tab_n++;
}

/* Reads a whole schema file; NULL if absent. Sets *err on other faults. */
static char *read_schema_file(const char *path, char *errstr,
                              size_t errstr_size, int *err) {
        FILE *f = fopen(path, "rb");
        *err = 0;
        if (!f) {
                if (errno != ENOENT) {
                        *err = 1;
                        snprintf(errstr, errstr_size, "%.200s: %s", path,
                                 strerror(errno));
                }
                return NULL;
        }
        char *text = itd_xmalloc(MAX_SCHEMA_FILE + 1);
        size_t n = fread(text, 1, MAX_SCHEMA_FILE + 1, f);
        fclose(f);
        if (n > MAX_SCHEMA_FILE) {
                *err = 1;
                snprintf(errstr, errstr_size, "%.200s: larger than 1 MiB",
                         path);
                free(text);
                return NULL;
        }
        text[n] = '\0';
        return text;
}

/* ---- unresolved ids ---- */

static unresolved_t *un_get(itd_decoder_t *dec, uint32_t id) {
        for (size_t i = slot_of_id(id, UNRESOLVED_CAP);;
             i = (i + 1) & (UNRESOLVED_CAP - 1)) {
                unresolved_t *u = &dec->un[i];
                if (u->state == ID_FREE)
                        return NULL;
                if (u->id == id)
                        return u;
        }
}

/* Rebuilds the table without the misses that expired (and the pending
 * entries resolved since, which apply() marks expired). */
static void un_sweep(itd_decoder_t *dec, int64_t now) {
        unresolved_t *keep = itd_xmalloc(UNRESOLVED_MAX * sizeof *keep);
        size_t n = 0;
        for (size_t i = 0; i < UNRESOLVED_CAP; i++) {
                unresolved_t *u = &dec->un[i];
                if (u->state == ID_PENDING ||
                    (u->state == ID_MISS && now < u->until_ms))
                        if (n < UNRESOLVED_MAX)
                                keep[n++] = *u;
        }
        memset(dec->un, 0, sizeof dec->un);
        dec->un_used = 0;
        for (size_t k = 0; k < n; k++) {
                size_t i = slot_of_id(keep[k].id, UNRESOLVED_CAP);
                while (dec->un[i].state != ID_FREE)
                        i = (i + 1) & (UNRESOLVED_CAP - 1);
                dec->un[i] = keep[k];
                dec->un_used++;
        }
        free(keep);
}

/* A slot for id (new or its own), or NULL when UNRESOLVED_MAX live entries
 * leave no room: nothing is ever evicted before it expires. */
static unresolved_t *un_put(itd_decoder_t *dec, uint32_t id, int64_t now) {
        unresolved_t *u = un_get(dec, id);
        if (u)
                return u;
        if (dec->un_used >= UNRESOLVED_MAX) {
                if (now < dec->next_sweep_ms)
                        return NULL;
                dec->next_sweep_ms = now + 1000;
                un_sweep(dec, now);
                if (dec->un_used >= UNRESOLVED_MAX)
                        return NULL;
        }
        size_t i = slot_of_id(id, UNRESOLVED_CAP);
        while (dec->un[i].state != ID_FREE)
                i = (i + 1) & (UNRESOLVED_CAP - 1);
        u = &dec->un[i];
        u->id = id;
        dec->un_used++;
        return u;
}

/* Logs a line about an id through the decoder's rate limiter. */
static void id_log(itd_decoder_t *dec, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void id_log(itd_decoder_t *dec, int level, const char *fmt, ...) {
        uint64_t sup;
        int ok = itd_ratelimit_allow(&dec->rl, itd_now_mono_ms(), &sup);
        if (sup)
                itd_log(ITD_LOG_WARNING, "avro",
                        "%llu similar lines about schema ids suppressed",
                        (unsigned long long)sup);
        if (!ok)
                return;
        char line[600];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        itd_log(level, "avro", "%s", line);
}

/* Remembers id as failed (reason, why) for ITD_DECODER_MISS_RETRY_MS; a
 * full table remembers nothing, and the id is simply asked again. */
static void remember_miss(itd_decoder_t *dec, uint32_t id, itd_reason_t r,
                          const char *why, int64_t now) {
        dec->st.schema_misses++;
        unresolved_t *u = un_put(dec, id, now);
        if (u) {
                u->state = ID_MISS;
                u->reason = r;
                u->until_ms = now + ITD_DECODER_MISS_RETRY_MS;
                itd_strlcpy(u->why, why, sizeof u->why);
        }
        id_log(dec, ITD_LOG_WARNING, "schema id %" PRIu32 ": %s (not retried "
               "for %d s)", id, why, ITD_DECODER_MISS_RETRY_MS / 1000);
}

/* Turns schema text into a cached plan, or a remembered miss. */
static const itd_plan_t *compile(itd_decoder_t *dec, uint32_t id,
                                 const char *text, const char *from,
                                 int64_t now) {
        char why[300];
        avro_schema_t writer = NULL;
        if (avro_schema_from_json_length(text, strlen(text), &writer)) {
                snprintf(why, sizeof why, "%.150s does not parse as Avro: "
                         "%.80s", from, avro_strerror());
                remember_miss(dec, id, ITD_REASON_SCHEMA_INCOMPATIBLE, why,
                              now);
                return NULL;
        }
        char perr[256];
        itd_plan_t *plan = itd_plan_new(writer, perr, sizeof perr);
        avro_schema_decref(writer);
        if (!plan) {
                snprintf(why, sizeof why, "%.100s: %.190s", from, perr);
                remember_miss(dec, id, ITD_REASON_SCHEMA_INCOMPATIBLE, why,
                              now);
                return NULL;
        }
        tab_put(dec, id, plan);
        dec->st.schemas_loaded++;
        id_log(dec, ITD_LOG_INFO, "schema id %" PRIu32 " loaded from %s", id,
               from);
        return plan;
}

/* A finished registry look-up: a plan, or a miss. */
static void apply(itd_decoder_t *dec, itd_fetch_result_t *r, int64_t now) {
        unresolved_t *u = un_get(dec, r->id);
        if (u && u->state == ID_PENDING) {
                /* Resolved either way: the sweep may drop it. */
                u->state = ID_MISS;
                u->until_ms = 0;
        }
        if (r->rc == ITD_OK) {
                char from[1300];
                snprintf(from, sizeof from, "%s/schemas/ids/%" PRIu32,
                         itd_registry_url(itd_fetcher_registry(dec->fetch)),
                         r->id);
                compile(dec, r->id, r->schema, from, now);
        } else {
                if (r->rc != ITD_ERR_NOT_FOUND) {
                        dec->st.registry_errors++;
                        id_log(dec, ITD_LOG_WARNING,
                               "schema registry look-up failed: %s", r->why);
                }
                remember_miss(dec, r->id, ITD_REASON_UNKNOWN_SCHEMA_ID,
                              r->why, now);
        }
        free(r->schema);
        r->schema = NULL;
}

size_t itd_decoder_poll(itd_decoder_t *dec, int wait_ms) {
        if (!dec->fetch)
                return 0;
        itd_fetch_result_t res[16];
        size_t total = 0, n;
        int64_t now = itd_now_mono_ms();
        while ((n = itd_fetcher_take(dec->fetch, res, 16,
                                     total ? 0 : wait_ms)) > 0) {
                for (size_t i = 0; i < n; i++)
                        apply(dec, &res[i], now);
                total += n;
        }
        return total;
}

/* Reads schemas_dir/<id>.avsc, then schemas_dir/<id>. @returns the text
 * (caller frees) with its path in from, or NULL; *err when a file exists
 * but cannot be read (why says so). */
static char *read_schema_dir(itd_decoder_t *dec, uint32_t id, char *from,
                             size_t from_size, char *why, size_t why_size,
                             int *err) {
        static const char *const suffix[2] = {".avsc", ""};
        *err = 0;
        for (int k = 0; k < 2; k++) {
                snprintf(from, from_size, "%s/%" PRIu32 "%s",
                         dec->schemas_dir, id, suffix[k]);
                char *text = read_schema_file(from, why, why_size, err);
                if (text || *err)
                        return text;
        }
        return NULL;
}

/* The plan for a Confluent schema id, or NULL with the reason
 * (ITD_REASON_PENDING while the registry is being asked). */
static const itd_plan_t *lookup(itd_decoder_t *dec, uint32_t id,
                                itd_reason_t *reason, char *detail,
                                size_t detail_size) {
        const itd_plan_t *hit = tab_get(dec, id);
        if (hit)
                return hit;
        /* Neither source configured: every id is the built-in schema. */
        if (!dec->schemas_dir && !dec->fetch)
                return dec->own;
        int64_t now = itd_now_mono_ms();
        unresolved_t *u = un_get(dec, id);
        if (u && u->state == ID_PENDING) {
                *reason = ITD_REASON_PENDING;
                itd_errf(detail, detail_size,
                         "schema id %" PRIu32 ": being looked up in the schema "
                         "registry", id);
                return NULL;
        }
        if (u && u->state == ID_MISS && now < u->until_ms) {
                *reason = u->reason;
                itd_errf(detail, detail_size, "schema id %" PRIu32 ": %s", id,
                         u->why);
                return NULL;
        }
        char from[4200], why[300] = "";
        if (dec->schemas_dir) {
                int err;
                char *text = read_schema_dir(dec, id, from, sizeof from, why,
                                             sizeof why, &err);
                if (text) {
                        const itd_plan_t *plan = compile(dec, id, text, from,
                                                         now);
                        free(text);
                        if (plan)
                                return plan;
                        u = un_get(dec, id);
                        *reason = u ? u->reason
                                    : ITD_REASON_SCHEMA_INCOMPATIBLE;
                        itd_errf(detail, detail_size,
                                 "schema id %" PRIu32 ": %s", id,
                                 u ? u->why
                                   : "writer schema does not resolve");
                        return NULL;
                }
                if (err || !dec->fetch) {
                        if (!err)
                                snprintf(why, sizeof why,
                                         "not in input.schemas_dir");
                        remember_miss(dec, id, ITD_REASON_UNKNOWN_SCHEMA_ID,
                                      why, now);
                        *reason = ITD_REASON_UNKNOWN_SCHEMA_ID;
                        itd_errf(detail, detail_size,
                                 "schema id %" PRIu32 ": %s", id, why);
                        return NULL;
                }
        }
        /* The registry, in the background. Refused look-ups are answered
         * unknown and not remembered: a later message may ask again. */
        *reason = ITD_REASON_UNKNOWN_SCHEMA_ID;
        u = un_put(dec, id, now);
        if (!u) {
                dec->st.registry_refused++;
                itd_errf(detail, detail_size,
                         "schema id %" PRIu32 ": not looked up: %d schema ids "
                         "are already pending or failed in the last %d s",
                         id, UNRESOLVED_MAX, ITD_DECODER_MISS_RETRY_MS / 1000);
                id_log(dec, ITD_LOG_WARNING, "%s", detail ? detail : "");
                return NULL;
        }
        if (itd_fetcher_request(dec->fetch, id) != 0) {
                /* Give the slot back: it was new (un_get found none). */
                u->state = ID_MISS;
                u->until_ms = 0;
                dec->st.registry_refused++;
                itd_errf(detail, detail_size,
                         "schema id %" PRIu32 ": not looked up: %d registry "
                         "look-ups are already queued",
                         id, ITD_FETCH_QUEUE);
                id_log(dec, ITD_LOG_WARNING, "%s", detail ? detail : "");
                return NULL;
        }
        u->state = ID_PENDING;
        u->why[0] = '\0';
        dec->st.registry_requests++;
        *reason = ITD_REASON_PENDING;
        itd_errf(detail, detail_size,
                 "schema id %" PRIu32
                 ": being looked up in the schema registry",
                 id);
        return NULL;
}

static itd_reason_t decode_confluent(itd_decoder_t *dec, uint32_t id,
                                     const uint8_t *buf, size_t len,
                                     itd_event_t *ev, char *detail,
                                     size_t detail_size) {
        itd_reason_t r = ITD_REASON_OK;
        const itd_plan_t *plan = lookup(dec, id, &r, detail, detail_size);
        if (!plan)
                return r;
        return itd_plan_decode(plan, buf, len, ITD_CONFLUENT_HDR,
                               dec->conf.max_string_bytes, ev, detail,
                               detail_size);
}

static itd_reason_t decode_avro(itd_decoder_t *dec, const uint8_t *buf,
                                size_t len, itd_event_t *ev, char *detail,
                                size_t detail_size) {
        size_t max_str = dec->conf.max_string_bytes;
        uint32_t id = 0;
        switch (itd_wire_classify(buf, len, (itd_framing_t)dec->conf.framing,
                                  &id, detail, detail_size)) {
        case ITD_WIRE_TOO_SHORT:
                return ITD_REASON_TRUNCATED;
        case ITD_WIRE_BAD_MAGIC:
                return ITD_REASON_BAD_MAGIC_BYTE;
        case ITD_WIRE_CONFLUENT:
                return decode_confluent(dec, id, buf, len, ev, detail,
                                        detail_size);
        case ITD_WIRE_BARE:
                return itd_plan_decode(dec->own, buf, len, 0, max_str, ev,
                                       detail, detail_size);
        case ITD_WIRE_EITHER:
                break;
        }
        /*
         * Confluent first, then bare (itd_wire_t). When both fail the
         * message is reported as Confluent, since that is what its first
         * byte says it is.
         */
        char why[300], why_bare[300];
        itd_reason_t r =
            decode_confluent(dec, id, buf, len, ev, why, sizeof why);
        if (r == ITD_REASON_OK)
                return r;
        if (r == ITD_REASON_PENDING) {
                /* Whether it is Confluent depends on the answer. */
                itd_errf(detail, detail_size, "%s", why);
                return r;
        }
        if (itd_plan_decode(dec->own, buf, len, 0, max_str, ev, why_bare,
                            sizeof why_bare) == ITD_REASON_OK)
                return ITD_REASON_OK;
        itd_errf(detail, detail_size, "as Confluent: %s; as bare Avro: %s", why,
                 why_bare);
        return r;
}

/* Content rules shared by Avro and JSON. */
static itd_reason_t validate(const itd_decoder_t *dec, const itd_event_t *ev,
                             int64_t now_wall_ms, char *detail,
                             size_t detail_size) {
        if (!ev->user_id[0]) {
                itd_errf(detail, detail_size,
                         "field 'user_id': empty string (required)");
                return ITD_REASON_MISSING_USER_ID;
        }
        if (ev->ts_ms < ITD_DECODER_MIN_TS_MS) {
                itd_errf(detail, detail_size,
                         "field 'ts': %" PRId64 " is before 2000-01-01 (%lld)",
                         ev->ts_ms, ITD_DECODER_MIN_TS_MS);
                return ITD_REASON_TS_TOO_OLD;
        }
        if (ev->ts_ms > now_wall_ms &&
            ev->ts_ms - now_wall_ms > dec->conf.max_future_ms) {
                itd_errf(detail, detail_size,
                         "field 'ts': %" PRId64 " is %" PRId64
                         " ms ahead of the wall clock (input.max_future is "
                         "%" PRId64 " ms)",
                         ev->ts_ms, ev->ts_ms - now_wall_ms,
                         dec->conf.max_future_ms);
                return ITD_REASON_TS_IN_FUTURE;
        }
        /* NAN is "absent" here; a NaN on the wire was refused already. */
        if (ev->price < 0) {
                itd_errf(detail, detail_size, "field 'price': %g is negative",
                         ev->price);
                return ITD_REASON_BAD_PRICE;
        }
        return ITD_REASON_OK;
}

itd_reason_t itd_decoder_decode(itd_decoder_t *dec, const void *vbuf,
                                size_t len, int64_t now_wall_ms,
                                itd_event_t *ev, char *detail,
                                size_t detail_size) {
        const uint8_t *buf = vbuf;
        itd_reason_t r;
        if (detail && detail_size)
                detail[0] = '\0';
        if (len == 0 || !buf) {
                itd_errf(detail, detail_size, "empty message");
                return ITD_REASON_EMPTY_MESSAGE;
        }
        if (len > dec->conf.max_message_bytes) {
                itd_errf(detail, detail_size,
                         "%zu bytes exceeds input.max_message_bytes (%zu)", len,
                         dec->conf.max_message_bytes);
                return ITD_REASON_MESSAGE_TOO_LARGE;
        }
        if (dec->conf.format == ITD_INPUT_JSON)
                r = itd_event_json_decode((const char *)buf, len,
                                          dec->conf.max_string_bytes, ev,
                                          detail, detail_size);
        else
                r = decode_avro(dec, buf, len, ev, detail, detail_size);
        if (r)
                return r;
        return validate(dec, ev, now_wall_ms, detail, detail_size);
}
