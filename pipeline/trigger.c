/*
 * trigger.c - per-partition trigger state: hysteresis and cool-down per
 * user (rules in trigger.h).
 *
 * A user needs an entry only once an UP has fired: before that they are
 * armed and out of cool-down, which is what "no entry" means. So the table
 * holds the users marketing is currently watching, not every shopper, and
 * most events cost one failed probe.
 *
 * Entries live in one dense array of 32-byte records; an open-addressing
 * index (linear probing, uint32 entry numbers, at most half full) maps the
 * user hash to its record. Both grow by doubling up to max_users. LRU
 * order (most recently seen at the head) is a doubly linked list through
 * the records; when the table is full, the tail's record is reused for the
 * newcomer and its index slot removed by backward shifting, so no
 * tombstones accumulate.
 *
 * Relative thresholds read the table's score distribution (scoredist.h),
 * which every judged score joins after it was judged.
 *
 * Snapshots (end of file) write the users least recently seen first, so
 * re-inserting them in file order rebuilds the same LRU order, then the
 * distribution word for word.
 *
 * @thread pipeline thread only; no locks.
 */
#include "intentd/trigger.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "intentd/mem.h"
#include "intentd/scoredist.h"
#include "snap_int.h"

#define NIL UINT32_MAX
#define NO_UP INT64_MIN   /* last_up_ms of a user with no UP yet */
#define INITIAL_CAP 1024  /* records before the first doubling */
#define MAX_USERS_LIMIT (UINT32_C(1) << 31)

typedef struct entry_s {
        uint64_t hash;
        int64_t last_up_ms; /* event time of the user's last UP */
        uint32_t prev;      /* more recently seen, NIL at the head */
        uint32_t next;      /* less recently seen, NIL at the tail */
        uint32_t armed;     /* 1: the next crossing of enter may fire */
        uint32_t pad;
} entry_t;
_Static_assert(sizeof(entry_t) == 32, "trigger.h promises 32 bytes a user");

struct itd_triggers_s {
        itd_trigger_conf_t conf;
        itd_scoredist_t *dist;   /* the scores judged, decayed */
        entry_t *e;          /* n used of cap */
        size_t n, cap;
        uint32_t *slot;      /* index: entry number or NIL */
        size_t slot_mask;    /* slots - 1, a power of two minus one */
        uint32_t head, tail; /* LRU ends */
        itd_triggers_stats_t stats; /* .users kept equal to n on read */
};

const char *itd_trigger_direction_name(itd_trigger_direction_t dir) {
        switch (dir) {
        case ITD_TRIGGER_UP:
                return "UP";
        case ITD_TRIGGER_DOWN:
                return "DOWN";
        default:
                return "?";
        }
}

const char *itd_trigger_rule_name(itd_trigger_rule_t rule) {
        switch (rule) {
        case ITD_TRIGGER_RULE_ABSOLUTE:
                return "ABSOLUTE";
        case ITD_TRIGGER_RULE_TOP_PERCENT:
                return "TOP_PERCENT";
        case ITD_TRIGGER_RULE_LIFT:
                return "LIFT";
        default:
                return "?";
        }
}

const char *itd_trigger_conf_text(const itd_trigger_conf_t *c, char *buf,
                                  size_t cap) {
        char age[80] = "";
        if (c->max_event_age_ms > 0)
                snprintf(age, sizeof age, ", each valid for %lld min "
                         "after its event",
                         (long long)(c->max_event_age_ms / 60000));
        long long cool = (long long)(c->cooldown_ms / 60000);
        switch (c->rule) {
        case ITD_TRIGGER_RULE_TOP_PERCENT:
                snprintf(buf, cap,
                         "score in the top %g%% of recent scores, re-armed "
                         "outside the top %g%%, cool-down %lld min%s",
                         c->top_percent, c->exit_top_percent, cool, age);
                break;
        case ITD_TRIGGER_RULE_LIFT:
                snprintf(buf, cap,
                         "score at least %g x the mean recent score, "
                         "re-armed below %g x, cool-down %lld min%s",
                         c->lift, c->exit_lift, cool, age);
                break;
        default:
                snprintf(buf, cap,
                         "score at least %.2f, re-armed below %.2f, "
                         "cool-down %lld min%s",
                         (double)c->enter, (double)c->exit, cool, age);
                break;
        }
        return buf;
}

itd_err_t itd_trigger_conf_check(const itd_trigger_conf_t *c, char *errstr,
                                 size_t errstr_size) {
        const char *bad = NULL;
        double v = 0;
        if ((int)c->rule < 0 || c->rule >= ITD_TRIGGER_RULE__COUNT) {
                snprintf(errstr, errstr_size,
                         "triggers.rule: %d is not a rule", (int)c->rule);
                return ITD_ERR_CONF;
        }
        if (!(c->top_percent > 0 && c->top_percent <= 100)) {
                snprintf(errstr, errstr_size,
                         "triggers.top_percent: %g is outside (0, 100]",
                         c->top_percent);
                return ITD_ERR_CONF;
        }
        if (!(c->exit_top_percent >= c->top_percent &&
              c->exit_top_percent <= 100)) {
                snprintf(errstr, errstr_size,
                         "triggers.exit_top_percent: %g is outside "
                         "triggers.top_percent (%g) .. 100; users re-arm "
                         "when they leave a wider top than they entered",
                         c->exit_top_percent, c->top_percent);
                return ITD_ERR_CONF;
        }
        if (!(c->lift >= 1 && isfinite(c->lift))) {
                snprintf(errstr, errstr_size,
                         "triggers.lift: %g is below 1 (or not finite)",
                         c->lift);
                return ITD_ERR_CONF;
        }
        if (!(c->exit_lift > 0 && c->exit_lift <= c->lift)) {
                snprintf(errstr, errstr_size,
                         "triggers.exit_lift: %g is outside (0, "
                         "triggers.lift (%g)]; the re-arm level must not "
                         "exceed the firing level",
                         c->exit_lift, c->lift);
                return ITD_ERR_CONF;
        }
        if (c->half_life_events < 1) {
                snprintf(errstr, errstr_size,
                         "triggers.distribution.half_life: 0 events");
                return ITD_ERR_CONF;
        }
        if (c->max_event_age_ms < 0) {
                snprintf(errstr, errstr_size,
                         "triggers.max_event_age: %" PRId64 " ms is "
                         "negative",
                         c->max_event_age_ms);
                return ITD_ERR_CONF;
        }
        if (!(c->enter >= 0.0f && c->enter <= 1.0f))
                bad = "triggers.enter", v = c->enter;
        else if (!(c->exit >= 0.0f && c->exit <= 1.0f))
                bad = "triggers.exit", v = c->exit;
        if (bad) {
                snprintf(errstr, errstr_size, "%s: %g is outside 0..1", bad,
                         v);
                return ITD_ERR_CONF;
        }
        if (c->exit > c->enter) {
                snprintf(errstr, errstr_size,
                         "triggers.exit: %g is above triggers.enter (%g); "
                         "the re-arm level must not exceed the firing level",
                         (double)c->exit, (double)c->enter);
                return ITD_ERR_CONF;
        }
        if (c->cooldown_ms < 0) {
                snprintf(errstr, errstr_size,
                         "triggers.cooldown: %" PRId64 " ms is negative",
                         c->cooldown_ms);
                return ITD_ERR_CONF;
        }
        if (c->max_users < 1 || c->max_users > MAX_USERS_LIMIT) {
                snprintf(errstr, errstr_size,
                         "triggers.max_users: %zu is outside 1..%" PRIu32,
                         c->max_users, MAX_USERS_LIMIT);
                return ITD_ERR_CONF;
        }
        return ITD_OK;
}

/* ------------------------------------------------------------------ */
/* Index and LRU.                                                      */

static size_t home(const itd_triggers_t *t, uint64_t hash) {
        /* The user hash is already an XXH64 output: its bits are mixed. */
        return (size_t)(hash ^ (hash >> 32)) & t->slot_mask;
}

/* The slot holding hash, or the empty slot where it would go. */
static size_t probe(const itd_triggers_t *t, uint64_t hash) {
        size_t i = home(t, hash);
        while (t->slot[i] != NIL && t->e[t->slot[i]].hash != hash)
                i = (i + 1) & t->slot_mask;
        return i;
}

/* Removes slot i, shifting later members of its cluster back so every
 * entry stays reachable from its home without tombstones. */
static void slot_remove(itd_triggers_t *t, size_t i) {
        size_t j = i;
        for (;;) {
                j = (j + 1) & t->slot_mask;
                if (t->slot[j] == NIL)
                        break;
                size_t k = home(t, t->e[t->slot[j]].hash);
                /* j's entry may move to i unless its home lies cyclically
                 * in (i, j]. */
                int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
                if (!stays) {
                        t->slot[i] = t->slot[j];
                        i = j;
                }
        }
        t->slot[i] = NIL;
}

static void lru_unlink(itd_triggers_t *t, uint32_t x) {
        entry_t *u = &t->e[x];
        if (u->prev != NIL)
                t->e[u->prev].next = u->next;
        else
                t->head = u->next;
        if (u->next != NIL)
                t->e[u->next].prev = u->prev;
        else
                t->tail = u->prev;
        u->prev = u->next = NIL;
}

static void lru_push_head(itd_triggers_t *t, uint32_t x) {
        entry_t *u = &t->e[x];
        u->prev = NIL;
        u->next = t->head;
        if (t->head != NIL)
                t->e[t->head].prev = x;
        else
                t->tail = x;
        t->head = x;
}

static void index_build(itd_triggers_t *t, size_t n_slots) {
        free(t->slot);
        t->slot = itd_xmalloc(n_slots * sizeof *t->slot);
        memset(t->slot, 0xff, n_slots * sizeof *t->slot); /* all NIL */
        t->slot_mask = n_slots - 1;
        for (size_t x = 0; x < t->n; x++)
                t->slot[probe(t, t->e[x].hash)] = (uint32_t)x;
}

/* Doubles the records (up to max_users) and rebuilds the index at no more
 * than half full. */
static void grow(itd_triggers_t *t) {
        size_t cap = t->cap * 2;
        if (cap > t->conf.max_users)
                cap = t->conf.max_users;
        t->e = itd_xrealloc(t->e, cap * sizeof *t->e);
        t->cap = cap;
        size_t n_slots = 16;
        while (n_slots < 2 * cap)
                n_slots *= 2;
        index_build(t, n_slots);
}

/* A record for a user known to be absent: a free one, a new one, or the
 * least recently seen user's. Linked at the head, indexed, armed. */
static entry_t *insert(itd_triggers_t *t, uint64_t hash) {
        uint32_t x;
        if (t->n == t->cap && t->cap < t->conf.max_users)
                grow(t);
        if (t->n < t->cap) {
                x = (uint32_t)t->n++;
        } else {
                x = t->tail;
                slot_remove(t, probe(t, t->e[x].hash));
                lru_unlink(t, x);
                t->stats.evicted++;
        }
        entry_t *u = &t->e[x];
        *u = (entry_t){.hash = hash, .last_up_ms = NO_UP, .armed = 1,
                       .prev = NIL, .next = NIL};
        t->slot[probe(t, hash)] = x;
        lru_push_head(t, x);
        return u;
}

/* ------------------------------------------------------------------ */
/* Public.                                                             */

int itd_triggers_erase(itd_triggers_t *t, uint64_t user_hash) {
        size_t i = probe(t, user_hash);
        uint32_t x = t->slot[i];
        if (x == NIL)
                return 0;
        slot_remove(t, i);
        lru_unlink(t, x);
        uint32_t last = (uint32_t)(t->n - 1);
        if (x != last) {
                /* the records stay dense: the last one fills the hole (its
                 * slot still finds it by its hash, then points here) */
                t->e[x] = t->e[last];
                t->slot[probe(t, t->e[x].hash)] = x;
                entry_t *u = &t->e[x];
                if (u->prev != NIL)
                        t->e[u->prev].next = x;
                else
                        t->head = x;
                if (u->next != NIL)
                        t->e[u->next].prev = x;
                else
                        t->tail = x;
        }
        memset(&t->e[last], 0, sizeof t->e[last]);
        t->n--;
        return 1;
}

itd_triggers_t *itd_triggers_new(const itd_trigger_conf_t *c, char *errstr,
                                 size_t errstr_size) {
        if (itd_trigger_conf_check(c, errstr, errstr_size) != ITD_OK)
                return NULL;
        itd_triggers_t *t = itd_xcalloc(1, sizeof *t);
        t->conf = *c;
        t->dist = itd_scoredist_new(c->half_life_events);
        t->cap = c->max_users < INITIAL_CAP ? c->max_users : INITIAL_CAP;
        t->e = itd_xmalloc(t->cap * sizeof *t->e);
        t->head = t->tail = NIL;
        size_t n_slots = 16;
        while (n_slots < 2 * t->cap)
                n_slots *= 2;
        index_build(t, n_slots);
        return t;
}

void itd_triggers_destroy(itd_triggers_t *t) {
        if (!t)
                return;
        free(t->e);
        free(t->slot);
        itd_scoredist_destroy(t->dist);
        free(t);
}

itd_err_t itd_triggers_set_conf(itd_triggers_t *t,
                                const itd_trigger_conf_t *c, char *errstr,
                                size_t errstr_size) {
        itd_trigger_conf_t nc = *c;
        nc.max_users = t->conf.max_users;
        if (itd_trigger_conf_check(&nc, errstr, errstr_size) != ITD_OK)
                return ITD_ERR_CONF;
        t->conf = nc;
        itd_scoredist_set_half_life(t->dist, nc.half_life_events);
        return ITD_OK;
}

const itd_scoredist_t *itd_triggers_dist(const itd_triggers_t *t) {
        return t->dist;
}

void itd_trigger_thresholds(const itd_trigger_conf_t *c,
                            const itd_scoredist_t *d,
                            itd_trigger_thresholds_t *th) {
        if (c->rule == ITD_TRIGGER_RULE_ABSOLUTE) {
                th->enter = c->enter;
                th->exit = c->exit;
                return;
        }
        th->enter = th->exit = NAN;
        if (!d || itd_scoredist_count(d) < c->min_events ||
            itd_scoredist_count(d) == 0)
                return;
        if (c->rule == ITD_TRIGGER_RULE_TOP_PERCENT) {
                th->enter = itd_scoredist_top(d, c->top_percent / 100.0);
                th->exit = itd_scoredist_top(d, c->exit_top_percent / 100.0);
        } else {
                double mean = itd_scoredist_mean(d);
                th->enter = (float)fmin(1.0, c->lift * mean);
                th->exit = (float)fmin(1.0, c->exit_lift * mean);
        }
        /* Interpolation cannot invert them, but float rounding of two
         * nearby quantiles could: keep the hysteresis band a band. */
        if (th->exit > th->enter)
                th->exit = th->enter;
}

/* Inside the cool-down of the last UP? Written so no subtraction can
 * overflow, whatever the timestamps. */
static int cooling(const itd_triggers_t *t, const entry_t *u, int64_t ts) {
        if (u->last_up_ms == NO_UP)
                return 0;
        if (ts < u->last_up_ms)
                return 1; /* out of order: older than the UP itself */
        return (uint64_t)ts - (uint64_t)u->last_up_ms <
               (uint64_t)t->conf.cooldown_ms;
}

/* Fills *fire (may be NULL) for a record of direction dir. */
static void fired(const itd_triggers_t *t, itd_trigger_direction_t dir,
                  int64_t ts, const itd_trigger_thresholds_t *th,
                  itd_trigger_fire_t *fire) {
        if (!fire)
                return;
        const itd_trigger_conf_t *c = &t->conf;
        int up = dir == ITD_TRIGGER_UP;
        fire->direction = dir;
        fire->rule = c->rule;
        fire->threshold = up ? th->enter : th->exit;
        switch (c->rule) {
        case ITD_TRIGGER_RULE_TOP_PERCENT:
                fire->parameter = (float)(up ? c->top_percent
                                             : c->exit_top_percent);
                break;
        case ITD_TRIGGER_RULE_LIFT:
                fire->parameter = (float)(up ? c->lift : c->exit_lift);
                break;
        default:
                fire->parameter = up ? c->enter : c->exit;
                break;
        }
        /* Saturating: an event time near INT64_MAX never wraps round. */
        fire->expires_at_ms =
            c->max_event_age_ms == 0 ? INT64_MIN
            : ts > INT64_MAX - c->max_event_age_ms ? INT64_MAX
                                                   : ts + c->max_event_age_ms;
}

/* Older than max_event_age before ref? Without subtraction overflow. */
static int stale(const itd_triggers_t *t, int64_t ts, int64_t ref) {
        if (t->conf.max_event_age_ms == 0 || ref == INT64_MIN || ts >= ref)
                return 0;
        return (uint64_t)ref - (uint64_t)ts >
               (uint64_t)t->conf.max_event_age_ms;
}

int itd_triggers_decide(itd_triggers_t *t, uint64_t user_hash,
                        int64_t event_ts_ms, int64_t ref_ts_ms, float score,
                        const itd_trigger_thresholds_t *th,
                        itd_trigger_fire_t *fire) {
        if (!isfinite(score))
                return 0;
        if (stale(t, event_ts_ms, ref_ts_ms)) {
                t->stats.stale++;
                return 0;
        }
        if (isnan(th->enter) || isnan(th->exit)) {
                t->stats.warming++;
                return 0;
        }
        size_t i = probe(t, user_hash);
        uint32_t x = t->slot[i];
        if (x == NIL) {
                /* No entry: armed and out of cool-down. Only a crossing
                 * makes the user worth remembering. */
                if (score < th->enter)
                        return 0;
                entry_t *u = insert(t, user_hash);
                u->armed = 0;
                u->last_up_ms = event_ts_ms;
                t->stats.fired_up++;
                fired(t, ITD_TRIGGER_UP, event_ts_ms, th, fire);
                return 1;
        }
        entry_t *u = &t->e[x];
        if (t->head != x) {
                lru_unlink(t, x);
                lru_push_head(t, x);
        }
        if (u->armed) {
                if (score < th->enter)
                        return 0;
                if (cooling(t, u, event_ts_ms)) {
                        /* Held back, still armed: the first event past the
                         * cool-down that is still high fires. */
                        t->stats.held_back++;
                        return 0;
                }
                u->armed = 0;
                u->last_up_ms = event_ts_ms;
                t->stats.fired_up++;
                fired(t, ITD_TRIGGER_UP, event_ts_ms, th, fire);
                return 1;
        }
        if (score < th->exit) {
                u->armed = 1;
                t->stats.fired_down++;
                fired(t, ITD_TRIGGER_DOWN, event_ts_ms, th, fire);
                return 1;
        }
        return 0;
}

int itd_triggers_update(itd_triggers_t *t, uint64_t user_hash,
                        int64_t event_ts_ms, int64_t ref_ts_ms, float score,
                        itd_trigger_fire_t *fire) {
        if (!isfinite(score))
                return 0;
        /* Judged against the scores before it, then one of them. */
        itd_trigger_thresholds_t th;
        itd_trigger_thresholds(&t->conf, t->dist, &th);
        int due = itd_triggers_decide(t, user_hash, event_ts_ms, ref_ts_ms,
                                      score, &th, fire);
        itd_scoredist_add(t->dist, score);
        return due;
}

void itd_triggers_make_record(const itd_prediction_t *p,
                              const itd_trigger_fire_t *fire,
                              itd_trigger_rec_t *rec) {
        itd_strlcpy(rec->prediction_id, p->prediction_id,
                    sizeof rec->prediction_id);
        itd_strlcpy(rec->user_id, p->user_id, sizeof rec->user_id);
        rec->score = p->purchase_probability;
        rec->threshold = fire->threshold;
        rec->direction = fire->direction;
        rec->event_ts_ms = p->event_ts_ms;
        rec->fired_at_ms = p->predicted_at_ms; /* decided with the prediction */
        rec->rule = fire->rule;
        rec->parameter = fire->parameter;
        rec->expires_at_ms = fire->expires_at_ms;
        rec->next_action = p->next_action;
        rec->next_action_probability =
            (int)p->next_action >= 0 && p->next_action < ITD_NEXT__COUNT
                ? p->next_probs[p->next_action]
                : 0.0f;
        size_t n = p->n_top_categories < ITD_TOPCAT_MAX ? p->n_top_categories
                                                        : ITD_TOPCAT_MAX;
        rec->n_top_categories = n;
        for (size_t k = 0; k < n; k++) {
                itd_strlcpy(rec->top_categories[k], p->top_categories[k],
                            ITD_ID_MAX);
                rec->top_category_scores[k] = p->top_category_scores[k];
        }
}

void itd_triggers_stats(const itd_triggers_t *t, itd_triggers_stats_t *s) {
        *s = t->stats;
        s->users = t->n;
}

/* ------------------------------------------------------------------ */
/* Snapshots (snap_int.h): the header's configuration and counts, then */
/* one 24-byte record per user, least recently seen first, then (from   */
/* version 2) the score distribution, ITD_SCOREDIST_WORDS words.        */
/* Version 3: the one framing (sections, CRC32C).                       */

#define TSNAP_MAGIC "ITDTRIGR" /* versions 1 and 2 */
#define TSNAP_VERSION 3
#define TSNAP_REC 24 /* hash u64, last_up_ms i64, armed u64 */
#define TSNAP_DIST_BYTES (ITD_SCOREDIST_WORDS * 8)

enum {
        TH_ENTER,     /* float bits */
        TH_EXIT,      /* float bits */
        TH_COOLDOWN,
        TH_MAX_USERS,
        TH_N,
        TH_FIRED_UP,
        TH_FIRED_DOWN,
        TH_HELD_BACK,
        TH_EVICTED,
        TH_V1_COUNT,  /* version 1 ends here */
        TH_STALE = TH_V1_COUNT,
        TH_WARMING,
        TH_RULE,
        TH_HALF_LIFE,
        TH__COUNT
};

static const itd_snap_kind_t snap_kind_v1 = {
    "trigger", ITD_FRAME_TRIGGER, 1, TH_V1_COUNT, TSNAP_MAGIC, NULL};
static const itd_snap_kind_t snap_kind_v2 = {
    "trigger", ITD_FRAME_TRIGGER, 2, TH__COUNT, TSNAP_MAGIC, &snap_kind_v1};
static const itd_snap_kind_t snap_kind = {"trigger", ITD_FRAME_TRIGGER,
                                          TSNAP_VERSION, TH__COUNT, NULL,
                                          &snap_kind_v2};

static void write_payload(itd_snap_t *s, const void *obj) {
        const itd_triggers_t *t = obj;
        unsigned char rec[TSNAP_REC];
        itd_snap_section(s, "users", ITD_FRAME_BYTES,
                         (uint64_t)t->n * TSNAP_REC);
        for (uint32_t x = t->tail; x != NIL; x = t->e[x].prev) {
                const entry_t *u = &t->e[x];
                size_t pos = 0;
                itd_snap_put(rec, &pos, u->hash);
                itd_snap_put(rec, &pos, (uint64_t)u->last_up_ms);
                itd_snap_put(rec, &pos, u->armed);
                itd_snap_write(s, rec, sizeof rec);
        }
        uint64_t *words = itd_xmalloc(TSNAP_DIST_BYTES);
        itd_scoredist_save(t->dist, words);
        itd_snap_section(s, "score_dist", ITD_FRAME_U64, TSNAP_DIST_BYTES);
        itd_snap_write(s, words, TSNAP_DIST_BYTES);
        free(words);
}

itd_err_t itd_triggers_snapshot(const itd_triggers_t *t, FILE *out,
                                char *errstr, size_t errstr_size) {
        uint64_t v[TH__COUNT] = {
            [TH_ENTER] = itd_snap_f32_bits(t->conf.enter),
            [TH_EXIT] = itd_snap_f32_bits(t->conf.exit),
            [TH_COOLDOWN] = (uint64_t)t->conf.cooldown_ms,
            [TH_MAX_USERS] = t->conf.max_users,
            [TH_N] = t->n,
            [TH_FIRED_UP] = t->stats.fired_up,
            [TH_FIRED_DOWN] = t->stats.fired_down,
            [TH_HELD_BACK] = t->stats.held_back,
            [TH_EVICTED] = t->stats.evicted,
            [TH_STALE] = t->stats.stale,
            [TH_WARMING] = t->stats.warming,
            [TH_RULE] = (uint64_t)t->conf.rule,
            [TH_HALF_LIFE] = t->conf.half_life_events,
        };
        return itd_snap_save(out, &snap_kind, v, write_payload, t, errstr,
                             errstr_size);
}

/* Restore's reading of the users: the least recently seen first. */
typedef struct restore_ctx_s {
        itd_triggers_t *t;
        uint64_t skip;   /* users beyond this configuration's max_users */
        const char *bad; /* the first inconsistency, or NULL */
} restore_ctx_t;

static void restore_user(void *ctx, const unsigned char *rec, size_t i) {
        restore_ctx_t *r = ctx;
        if (i < r->skip || r->bad)
                return;
        size_t rp = 0;
        uint64_t hash = itd_snap_get(rec, &rp);
        int64_t last_up = (int64_t)itd_snap_get(rec, &rp);
        uint64_t armed = itd_snap_get(rec, &rp);
        if (armed > 1)
                r->bad = "an armed flag other than 0 or 1";
        else if (!armed && last_up == NO_UP)
                r->bad = "a disarmed user without an UP";
        else if (r->t->slot[probe(r->t, hash)] != NIL)
                r->bad = "a user hash listed twice";
        if (r->bad)
                return;
        entry_t *u = insert(r->t, hash);
        u->last_up_ms = last_up;
        u->armed = (uint32_t)armed;
}

itd_err_t itd_triggers_restore(FILE *in, const itd_trigger_conf_t *c,
                               itd_triggers_t **out, char *errstr,
                               size_t errstr_size) {
#define FAIL(cls, ...) ITD_SNAP_FAIL(&s, cls, __VA_ARGS__)
        itd_triggers_t *t = NULL;
        itd_snap_t s = {.f = in};
        *out = NULL;
        uint64_t v[TH__COUNT] = {0};
        uint64_t *words = NULL;
        if (itd_snap_header_read(&s, &snap_kind, v, errstr, errstr_size) != 0)
                goto fail;
        int v2 = s.version >= 2;
        uint64_t n = v[TH_N];
        uint64_t dist_bytes = v2 ? TSNAP_DIST_BYTES : 0;
        if (n > MAX_USERS_LIMIT ||
            s.payload_bytes != n * TSNAP_REC + dist_bytes)
                FAIL(ITD_ERR_CORRUPT,
                     "corrupt trigger snapshot: sizes in the header (bytes "
                     "24..%d) do not describe a trigger table",
                     (int)itd_snap_header_bytes(s.kind) - 1);

        t = itd_triggers_new(c, errstr, errstr_size);
        if (!t)
                goto fail;
        t->stats.fired_up = v[TH_FIRED_UP];
        t->stats.fired_down = v[TH_FIRED_DOWN];
        t->stats.held_back = v[TH_HELD_BACK];
        t->stats.evicted = v[TH_EVICTED];
        t->stats.stale = v[TH_STALE];
        t->stats.warming = v[TH_WARMING];
        /* Users beyond this configuration's max_users: the least recently
         * seen, first in the file, are read (for the checksum) and
         * dropped. */
        restore_ctx_t rc = {t, n > c->max_users ? n - c->max_users : 0,
                            NULL};
        words = v2 ? itd_xmalloc(TSNAP_DIST_BYTES) : NULL;
        const itd_snap_part_t parts[] = {
            {.n = n * TSNAP_REC, .what = "the users", .sec = "users",
             .dtype = ITD_FRAME_BYTES, .rec = TSNAP_REC,
             .each = restore_user, .ctx = &rc},
            ITD_SNAP_PART(words, dist_bytes, "the score distribution",
                          "score_dist", ITD_FRAME_U64),
        };
        if (itd_snap_payload_read(&s, parts, 2, errstr, errstr_size) != 0)
                goto fail;
        if (rc.bad)
                FAIL(ITD_ERR_CORRUPT, "corrupt trigger snapshot: %s", rc.bad);
        if (words && itd_scoredist_load(t->dist, words) != 0)
                FAIL(ITD_ERR_CORRUPT,
                     "corrupt trigger snapshot: the score distribution "
                     "(the last %d payload bytes) holds negative or "
                     "non-finite masses",
                     TSNAP_DIST_BYTES);
        free(words);
        /* insert() counted nothing: the table never filled. */
        t->stats.evicted += rc.skip;
        *out = t;
        return ITD_OK;
fail:
        free(words);
        itd_triggers_destroy(t);
        return s.err ? s.err : ITD_ERR_CONF;
#undef FAIL
}
