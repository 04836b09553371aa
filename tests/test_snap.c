/*
 * test_snap.c - the snapshot framing every pipeline table shares (state,
 * labeler, trigger, risk; the model's framing too, intentd/frame.h),
 * table-driven: one row a kind, and for each the same checks: the prefix,
 * the sections and the CRC32C, a cut anywhere is "truncated <kind>
 * snapshot" naming the byte and the part it fell in, a flipped bit
 * anywhere is refused as corrupt or incompatible, damaged framing (a
 * section renamed, resized, one too many, another kind, a header word)
 * is named, restore then snapshot again gives the same bytes, and the
 * same object written in the framing before (the legacy one) restores to
 * the same object.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "intentd/bytes.h"
#include "intentd/crc32c.h"
#include "intentd/frame.h"

#include "intentd/event.h"
#include "intentd/labeler.h"
#include "intentd/risk.h"
#include "intentd/state.h"
#include "intentd/trigger.h"

#define MIN_MS 60000LL
#define T0 1700000000000LL

/* ------------------------------------------------------------ fixtures */

static itd_state_conf_t state_conf(void) {
        itd_state_conf_t c = {
            .n_windows = 2,
            .window_ms = {5 * MIN_MS, 60 * MIN_MS},
            .allowed_lateness_ms = 60000,
            .session_gap_ms = 30 * MIN_MS,
            .idle_ttl_ms = 24 * 60 * MIN_MS,
            .max_users = 100000,
        };
        return c;
}

static itd_labeler_conf_t labeler_conf(void) {
        itd_labeler_conf_t c = {.dim = 3, .n_ids = 2,
                                .horizon_ms = 30 * MIN_MS,
                                .session_gap_ms = 30 * MIN_MS,
                                .max_pending = 1000,
                                .max_pending_per_user = 4};
        return c;
}

static itd_trigger_conf_t trigger_conf(void) {
        return (itd_trigger_conf_t){.rule = ITD_TRIGGER_RULE_ABSOLUTE,
                                    .enter = 0.5f, .exit = 0.3f,
                                    .top_percent = 1, .exit_top_percent = 5,
                                    .lift = 3, .exit_lift = 1.5,
                                    .half_life_events = 10000,
                                    .min_events = 100,
                                    .cooldown_ms = 60 * MIN_MS,
                                    .max_users = 64};
}

/* Users with long ids (so the id arena is not empty), categories and
 * several sessions; the risk population learns from the same events. */
static void feed_state(itd_state_t *st, itd_risk_t *rk) {
        float x[512];
        uint32_t ids[ITD_SPARSE_IDS];
        for (int i = 0; i < 400; i++) {
                itd_event_t ev;
                itd_event_clear(&ev);
                snprintf(ev.user_id, sizeof ev.user_id,
                         "user-with-a-rather-long-identifier-%03d", i % 37);
                snprintf(ev.category, sizeof ev.category, "cat-%d",
                         i % 11);
                ev.ts_ms = T0 + (int64_t)i * 7000;
                ev.type = (itd_event_type_t)(i % 5 == 4 ? ITD_EV_ADD_TO_CART
                                                        : ITD_EV_VIEW);
                itd_err_t e = itd_state_update(
                    st, &ev, itd_user_hash(ev.user_id), x, ids, NULL);
                if (rk)
                        (void)itd_risk_score(rk, st, &ev, e == ITD_OK, NULL);
        }
}

/* Each kind: make builds a fixed object; restore, snapshot and destroy
 * wrap the kind's own functions. */
typedef struct kind_s {
        const char *name;  /* "state": in every message */
        uint32_t kind;     /* the prefix's kind word */
        uint32_t version;  /* what this build writes */
        const char *legacy; /* the magic of the framing before ... */
        uint32_t legacy_version; /* ... and its last version */
        const char *const *parts; /* names a cut may fall inside */
        const char *const *secs;  /* the section names, in order */
        void *(*make)(void);
        itd_err_t (*restore)(FILE *f, void **obj, char *err, size_t cap);
        itd_err_t (*snapshot)(const void *obj, FILE *f);
        void (*destroy)(void *obj);
} kind_t;

static void *state_make(void) {
        itd_state_conf_t c = state_conf();
        itd_state_t *st = itd_state_new(&c, NULL, 0);
        cr_assert_not_null(st);
        feed_state(st, NULL);
        return st;
}

static void *labeler_make(void) {
        itd_labeler_conf_t c = labeler_conf();
        itd_labeler_t *lb = itd_labeler_new(&c, NULL, 0);
        cr_assert_not_null(lb);
        float x[3] = {0.25f, -1.0f, 3.5f}, next[ITD_NEXT__COUNT] = {0};
        uint32_t ids[2] = {7, 9};
        for (int i = 0; i < 300; i++) {
                uint64_t user = 1 + (uint64_t)(i % 29);
                int64_t ts = T0 + (int64_t)i * 20000;
                itd_labeler_observe(lb, user, ts, ITD_EV_VIEW);
                x[0] = (float)i;
                itd_labeler_add(lb, user, ts, i, x, ids, 0.01f * (i % 90),
                                next);
                if (i % 50 == 49)
                        itd_labeler_advance(lb, ts - 10 * MIN_MS);
        }
        return lb;
}

static void *trigger_make(void) {
        itd_trigger_conf_t c = trigger_conf();
        itd_triggers_t *t = itd_triggers_new(&c, NULL, 0);
        cr_assert_not_null(t);
        for (int i = 0; i < 200; i++) {
                itd_trigger_fire_t fire;
                (void)itd_triggers_update(t, 1 + (uint64_t)(i % 40),
                                          T0 + (int64_t)i * 1000, INT64_MIN,
                                          (float)(i % 10) / 10.0f, &fire);
        }
        return t;
}

static void *risk_make(void) {
        itd_state_conf_t c = state_conf();
        itd_state_t *st = itd_state_new(&c, NULL, 0);
        itd_risk_t *rk = itd_risk_new();
        feed_state(st, rk);
        itd_state_destroy(st);
        return rk;
}

/* The kind's own restore, snapshot and destroy behind the table's
 * signatures; restore_call restores from f into o. */
#define ADAPT(kind, type, restore_call, snap_fn, destroy_fn)              \
        static itd_err_t kind##_restore(FILE *f, void **obj, char *err,   \
                                        size_t cap) {                     \
                type *o;                                                  \
                itd_err_t e = restore_call;                               \
                *obj = o;                                                 \
                return e;                                                 \
        }                                                                 \
        static itd_err_t kind##_snapshot(const void *obj, FILE *f) {      \
                return snap_fn(obj, f, NULL, 0);                          \
        }                                                                 \
        static void kind##_destroy(void *obj) { destroy_fn(obj); }

ADAPT(state, itd_state_t,
      itd_state_restore(f, (itd_state_conf_t[]){state_conf()}, &o, err, cap),
      itd_state_snapshot, itd_state_destroy)
ADAPT(labeler, itd_labeler_t,
      itd_labeler_restore(f, (itd_labeler_conf_t[]){labeler_conf()}, &o, err,
                          cap),
      itd_labeler_snapshot, itd_labeler_destroy)
ADAPT(trigger, itd_triggers_t,
      itd_triggers_restore(f, (itd_trigger_conf_t[]){trigger_conf()}, &o,
                           err, cap),
      itd_triggers_snapshot, itd_triggers_destroy)
ADAPT(risk, itd_risk_t, itd_risk_restore(f, &o, err, cap), itd_risk_snapshot,
      itd_risk_destroy)

static const char *const state_parts[] = {
    "the users", "the long user ids", "the category offsets",
    "the category hashes", "the category names", NULL};
static const char *const state_secs[] = {
    "users", "ids", "overflow", "cat_offsets", "cat_hashes", "cat_names",
    "front_users", "front_times", NULL};
static const char *const labeler_parts[] = {
    "the predictions", "the features", "the sparse ids",
    "the heaps and the queue", NULL};
static const char *const labeler_secs[] = {
    "predictions", "features", "sparse_ids", "heaps_queue", NULL};
static const char *const trigger_parts[] = {"the users",
                                            "the score distribution", NULL};
static const char *const trigger_secs[] = {"users", "score_dist", NULL};
static const char *const risk_parts[] = {"the histogram", NULL};
static const char *const risk_secs[] = {"histogram", NULL};

static const kind_t kinds[] = {
    {"state", ITD_FRAME_STATE, 4, "ITDSTATE", 3, state_parts, state_secs,
     state_make, state_restore, state_snapshot, state_destroy},
    {"labeler", ITD_FRAME_LABELER, 4, "ITDLABEL", 3, labeler_parts,
     labeler_secs, labeler_make, labeler_restore, labeler_snapshot,
     labeler_destroy},
    {"trigger", ITD_FRAME_TRIGGER, 3, "ITDTRIGR", 2, trigger_parts,
     trigger_secs, trigger_make, trigger_restore, trigger_snapshot,
     trigger_destroy},
    {"risk", ITD_FRAME_RISK, 2, "ITDRISK1", 1, risk_parts, risk_secs,
     risk_make, risk_restore, risk_snapshot, risk_destroy},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

/* ------------------------------------------------------------- helpers */

/* Restores from f; when again is not NULL, snapshots what it restored
 * into it. */
static itd_err_t load(const kind_t *k, FILE *f, FILE *again, char *err,
                      size_t cap) {
        void *obj;
        itd_err_t e = k->restore(f, &obj, err, cap);
        if (e == ITD_OK)
                cr_assert_not_null(obj, "%s", k->name);
        else
                cr_expect_null(obj, "%s: a failed restore hands nothing",
                               k->name);
        if (e == ITD_OK && again)
                cr_assert_eq(k->snapshot(obj, again), ITD_OK, "%s", k->name);
        if (obj)
                k->destroy(obj);
        return e;
}

/* A snapshot of k's fixed object: its bytes, length and header bytes (hdr
 * may be NULL). */
static unsigned char *bytes_of(const kind_t *k, size_t *len, size_t *hdr) {
        char *buf = NULL;
        FILE *f = open_memstream(&buf, len);
        void *obj = k->make();
        cr_assert_eq(k->snapshot(obj, f), ITD_OK, "%s", k->name);
        k->destroy(obj);
        fclose(f);
        cr_assert_gt(*len, 48, "%s", k->name);
        if (hdr)
                *hdr = itd_get_le32((uint8_t *)buf + 16);
        return (unsigned char *)buf;
}

static itd_err_t load_bytes(const kind_t *k, const unsigned char *b,
                            size_t len, char *err, size_t cap) {
        /* fmemopen refuses size 0: an empty file instead */
        FILE *f = len ? fmemopen((void *)b, len, "rb") : tmpfile();
        cr_assert_not_null(f);
        err[0] = '\0';
        itd_err_t e = load(k, f, NULL, err, cap);
        fclose(f);
        return e;
}

/* The header CRC and the end's CRC made right again after an edit. */
static void reseal(unsigned char *b, size_t len) {
        size_t hdr = itd_get_le32(b + 16);
        itd_put_le32(b + hdr - 8, itd_crc32c(0, b, hdr - 8));
        itd_put_le32(b + len - 4, itd_crc32c(0, b, len - 4));
}

/* Where section i's header starts (walking the sections). */
static size_t section_at(const unsigned char *b, size_t i) {
        size_t at = itd_get_le32(b + 16);
        for (; i > 0; i--)
                at += ITD_FRAME_SECTION_BYTES + itd_get_le64(b + at + 24);
        return at;
}

/*
 * The same snapshot in the framing before the one framing, as the
 * previous build wrote it: k's legacy magic, version | header bytes << 32,
 * the byte-order word, the values and the payload's length (native u64),
 * the payload's XXH64, the header's XXH64, then the sections' bytes back
 * to back.
 */
static unsigned char *to_legacy(const kind_t *k, const unsigned char *b,
                                size_t *out_len) {
        size_t hdr = itd_get_le32(b + 16);
        size_t n_values = (hdr - ITD_FRAME_PREFIX_BYTES - 16) / 8;
        size_t legacy_hdr = 8 + 8 + 8 + 8 * n_values + 16 + 8;
        uint64_t payload_len = itd_get_le64(b + hdr - 16);
        unsigned char *o = calloc(1, legacy_hdr + payload_len);
        size_t pos = legacy_hdr, at = hdr;
        for (; b[at]; at += ITD_FRAME_SECTION_BYTES + itd_get_le64(b + at + 24)) {
                uint64_t n = itd_get_le64(b + at + 24);
                memcpy(o + pos, b + at + ITD_FRAME_SECTION_BYTES, n);
                pos += n;
        }
        cr_assert_eq(pos, legacy_hdr + payload_len, "%s", k->name);
        uint64_t w[3] = {k->legacy_version | (uint64_t)legacy_hdr << 32,
                         UINT64_C(0x0102030405060708)};
        memcpy(o, k->legacy, 8);
        memcpy(o + 8, w, 16);
        pos = 24;
        for (size_t i = 0; i < n_values; i++, pos += 8) {
                uint64_t v = itd_get_le64(b + ITD_FRAME_PREFIX_BYTES + 8 * i);
                memcpy(o + pos, &v, 8);
        }
        w[0] = payload_len;
        w[1] = XXH64(o + legacy_hdr, payload_len, 0);
        memcpy(o + pos, w, 16);
        pos += 16;
        w[2] = XXH64(o, pos, 0);
        memcpy(o + pos, &w[2], 8);
        *out_len = legacy_hdr + payload_len;
        return o;
}

/* --------------------------------------------------------------- tests */

Test(snap, every_kind_has_the_one_framing) {
        for (size_t i = 0; i < N_KINDS; i++) {
                const kind_t *k = &kinds[i];
                size_t len, hdr;
                unsigned char *b = bytes_of(k, &len, &hdr);
                cr_expect_eq(memcmp(b, ITD_FRAME_MAGIC, 8), 0, "%s magic",
                             k->name);
                cr_expect_eq(itd_get_le32(b + 8), k->version, "%s version",
                             k->name);
                cr_expect_eq(itd_get_le32(b + 12), k->kind, "%s kind",
                             k->name);
                cr_expect(hdr >= 40 && hdr % 8 == 0 && hdr <= len,
                          "%s header of %zu bytes", k->name, hdr);
                cr_expect_eq(itd_get_le32(b + 20), 0, "%s flags", k->name);
                /* the header's own CRC, then a zero word */
                cr_expect_eq(itd_get_le32(b + hdr - 8),
                             itd_crc32c(0, b, hdr - 8), "%s header CRC",
                             k->name);
                cr_expect_eq(itd_get_le32(b + hdr - 4), 0, "%s", k->name);
                /* the sections in the reader's order, then the end
                 * marker, then the CRC of every byte before it */
                uint64_t data = 0;
                size_t at = hdr, n = 0;
                for (; k->secs[n]; n++) {
                        at = section_at(b, n);
                        cr_assert_lt(at + ITD_FRAME_SECTION_BYTES, len);
                        itd_frame_section_t sec;
                        itd_frame_section_get(b + at, &sec);
                        cr_expect_str_eq(sec.name, k->secs[n], "%s",
                                         k->name);
                        cr_expect(sec.dtype >= ITD_FRAME_BYTES &&
                                      sec.dtype <= ITD_FRAME_U32,
                                  "%s %s", k->name, sec.name);
                        data += sec.nbytes;
                }
                at = section_at(b, n);
                cr_expect_eq(at + ITD_FRAME_SECTION_BYTES + 4, len, "%s",
                             k->name);
                for (size_t j = 0; j < ITD_FRAME_SECTION_BYTES; j++)
                        cr_expect_eq(b[at + j], 0, "%s end marker", k->name);
                cr_expect_eq(itd_get_le64(b + hdr - 16), data,
                             "%s payload length", k->name);
                cr_expect_eq(itd_get_le32(b + len - 4),
                             itd_crc32c(0, b, len - 4), "%s CRC", k->name);
                free(b);
        }
}

Test(snap, a_cut_anywhere_names_the_byte_and_the_part) {
        char err[512];
        for (size_t i = 0; i < N_KINDS; i++) {
                const kind_t *k = &kinds[i];
                size_t len, hdr;
                unsigned char *b = bytes_of(k, &len, &hdr);
                char want_kind[64];
                snprintf(want_kind, sizeof want_kind,
                         "truncated %s snapshot", k->name);
                int seen[8] = {0};
                /* every header byte boundary region, then ~400 cuts over
                 * the payload, then the last bytes */
                for (size_t cut = 0; cut < len;
                     cut += cut < hdr ? 7 : cut + 40 > len ? 1
                                                         : 1 + (len - hdr) / 400) {
                        itd_err_t e = load_bytes(k, b, cut, err, sizeof err);
                        cr_expect_eq(e, ITD_ERR_CORRUPT, "%s cut at %zu: %s",
                                     k->name, cut, err);
                        char want_at[64];
                        snprintf(want_at, sizeof want_at,
                                 "input ended at byte %zu", cut);
                        cr_expect(strstr(err, want_kind) &&
                                      strstr(err, want_at),
                                  "%s cut at %zu: %s", k->name, cut, err);
                        if (cut < hdr)
                                cr_expect(strstr(err, "inside the header"),
                                          "%s cut at %zu: %s", k->name, cut,
                                          err);
                        if (cut >= len - 4)
                                cr_expect(strstr(err, "inside the checksum"),
                                          "%s cut at %zu: %s", k->name, cut,
                                          err);
                        else if (cut >= len - 36)
                                cr_expect(strstr(err, "inside the end marker"),
                                          "%s cut at %zu: %s", k->name, cut,
                                          err);
                        for (size_t p = 0; k->parts[p]; p++) {
                                char in[64];
                                snprintf(in, sizeof in, "inside %s (",
                                         k->parts[p]);
                                seen[p] |= strstr(err, in) != NULL;
                        }
                }
                for (size_t p = 0; k->parts[p]; p++)
                        cr_expect(seen[p], "%s: no cut fell inside %s",
                                  k->name, k->parts[p]);
                free(b);
        }
}

Test(snap, a_flipped_bit_anywhere_is_refused_and_says_which_kind) {
        char err[512];
        for (size_t i = 0; i < N_KINDS; i++) {
                const kind_t *k = &kinds[i];
                size_t len, hdr;
                unsigned char *b = bytes_of(k, &len, &hdr);
                char want[64];
                snprintf(want, sizeof want, "%s snapshot", k->name);
                for (size_t at = 0; at < len;
                     at += at < hdr ? 5 : 1 + (len - hdr) / 200) {
                        b[at] ^= 0x04;
                        itd_err_t e = load_bytes(k, b, len, err, sizeof err);
                        cr_expect(e == ITD_ERR_CORRUPT ||
                                      e == ITD_ERR_INCOMPATIBLE,
                                  "%s flip at %zu: code %d (%s)", k->name, at,
                                  (int)e, err);
                        cr_expect(strstr(err, want), "%s flip at %zu: %s",
                                  k->name, at, err);
                        b[at] ^= 0x04;
                }
                /* a header value: the header's CRC says so before any
                 * size in it is used */
                b[ITD_FRAME_PREFIX_BYTES] ^= 0x80;
                cr_expect_eq(load_bytes(k, b, len, err, sizeof err),
                             ITD_ERR_CORRUPT, "%s", k->name);
                cr_expect(strstr(err, "header checksum mismatch"), "%s: %s",
                          k->name, err);
                b[ITD_FRAME_PREFIX_BYTES] ^= 0x80;
                /* the last data byte: the CRC at the end */
                b[len - ITD_FRAME_SECTION_BYTES - 5] ^= 0x80;
                cr_expect_eq(load_bytes(k, b, len, err, sizeof err),
                             ITD_ERR_CORRUPT, "%s", k->name);
                char crc[64];
                snprintf(crc, sizeof crc, "checksum mismatch over bytes 0..%zu",
                         len - 5);
                cr_expect(strstr(err, crc), "%s: %s", k->name, err);
                b[len - ITD_FRAME_SECTION_BYTES - 5] ^= 0x80;
                cr_expect_eq(load_bytes(k, b, len, err, sizeof err), ITD_OK,
                             "%s intact: %s", k->name, err);
                free(b);
        }
}

/* Damaged framing with both CRCs made right: the reader still names it. */
typedef struct damage_s {
        const char *what;
        /* edits b (len bytes, header hdr, first section at sec0); returns
         * the new length */
        size_t (*edit)(unsigned char *b, size_t len, size_t sec0);
        itd_err_t code;
        const char *want; /* in the message */
} damage_t;

static size_t rename_section(unsigned char *b, size_t len, size_t sec0) {
        b[sec0] ^= 0x20; /* "users" -> "Users" */
        return len;
}

static size_t grow_section(unsigned char *b, size_t len, size_t sec0) {
        itd_put_le64(b + sec0 + 24, itd_get_le64(b + sec0 + 24) + 1);
        return len;
}

static size_t retype_section(unsigned char *b, size_t len, size_t sec0) {
        itd_put_le32(b + sec0 + 16, 99);
        return len;
}

/* one more (empty) section where the end marker was */
static size_t extra_section(unsigned char *b, size_t len, size_t sec0) {
        (void)sec0;
        size_t end = len - 4 - ITD_FRAME_SECTION_BYTES;
        itd_frame_section_put(b + end, "more", ITD_FRAME_BYTES, 0, 0);
        memset(b + end + ITD_FRAME_SECTION_BYTES, 0,
               ITD_FRAME_SECTION_BYTES + 4);
        return len + ITD_FRAME_SECTION_BYTES;
}

static size_t other_kind(unsigned char *b, size_t len, size_t sec0) {
        (void)sec0;
        itd_put_le32(b + 12, itd_get_le32(b + 12) == ITD_FRAME_RISK
                                 ? ITD_FRAME_STATE
                                 : ITD_FRAME_RISK);
        return len;
}

static size_t newer_version(unsigned char *b, size_t len, size_t sec0) {
        (void)sec0;
        itd_put_le32(b + 8, itd_get_le32(b + 8) + 1);
        return len;
}

static size_t with_flags(unsigned char *b, size_t len, size_t sec0) {
        (void)sec0;
        itd_put_le32(b + 20, 1);
        return len;
}

static const damage_t damages[] = {
    {"a section renamed", rename_section, ITD_ERR_CORRUPT, "where the "},
    {"a section one byte longer", grow_section, ITD_ERR_CORRUPT,
     "where the "},
    {"a section of another type", retype_section, ITD_ERR_CORRUPT,
     "(type 99,"},
    {"a section too many", extra_section, ITD_ERR_CORRUPT,
     "no end marker at byte"},
    {"another kind", other_kind, ITD_ERR_CORRUPT, "at byte 12 (not a "},
    {"a newer version", newer_version, ITD_ERR_INCOMPATIBLE,
     "this build reads version"},
    {"a flag", with_flags, ITD_ERR_INCOMPATIBLE, "at byte 20"},
};

Test(snap, damaged_framing_is_named) {
        char err[512];
        for (size_t i = 0; i < N_KINDS; i++) {
                const kind_t *k = &kinds[i];
                size_t len, hdr;
                unsigned char *b = bytes_of(k, &len, &hdr);
                for (size_t d = 0; d < sizeof damages / sizeof damages[0];
                     d++) {
                        unsigned char *c =
                            malloc(len + ITD_FRAME_SECTION_BYTES);
                        memcpy(c, b, len);
                        size_t n = damages[d].edit(c, len, hdr);
                        reseal(c, n);
                        itd_err_t e = load_bytes(k, c, n, err, sizeof err);
                        cr_expect_eq(e, damages[d].code, "%s, %s: %d (%s)",
                                     k->name, damages[d].what, (int)e, err);
                        char want[64];
                        snprintf(want, sizeof want, "%s snapshot", k->name);
                        cr_expect(strstr(err, want) &&
                                      strstr(err, damages[d].want),
                                  "%s, %s: %s", k->name, damages[d].what,
                                  err);
                        free(c);
                }
                free(b);
        }
}

Test(snap, restore_then_snapshot_gives_the_same_bytes) {
        char err[512];
        for (size_t i = 0; i < N_KINDS; i++) {
                const kind_t *k = &kinds[i];
                size_t len, len2 = 0;
                unsigned char *b = bytes_of(k, &len, NULL);
                char *b2 = NULL;
                FILE *in = fmemopen(b, len, "rb");
                FILE *again = open_memstream(&b2, &len2);
                cr_assert_eq(load(k, in, again, err, sizeof err), ITD_OK,
                             "%s: %s", k->name, err);
                fclose(in);
                fclose(again);
                cr_expect_eq(len2, len, "%s", k->name);
                cr_expect(len2 == len && memcmp(b, b2, len) == 0,
                          "%s: restored snapshot differs", k->name);
                /* and two snapshots of the same object are the same */
                size_t len3;
                unsigned char *b3 = bytes_of(k, &len3, NULL);
                cr_expect(len3 == len && memcmp(b, b3, len) == 0, "%s",
                          k->name);
                free(b);
                free(b2);
                free(b3);
        }
}

/* What the build before the one framing wrote still restores, to the same
 * object: snapshotting it again gives today's bytes. Its own damage is
 * still caught by its own checksums. */
Test(snap, the_framing_before_still_restores_to_the_same_object) {
        char err[512];
        for (size_t i = 0; i < N_KINDS; i++) {
                const kind_t *k = &kinds[i];
                size_t len, old_len, len2 = 0;
                unsigned char *b = bytes_of(k, &len, NULL);
                unsigned char *old = to_legacy(k, b, &old_len);
                char *b2 = NULL;
                FILE *in = fmemopen(old, old_len, "rb");
                FILE *again = open_memstream(&b2, &len2);
                cr_assert_eq(load(k, in, again, err, sizeof err), ITD_OK,
                             "%s legacy: %s", k->name, err);
                fclose(in);
                fclose(again);
                cr_expect(len2 == len && memcmp(b, b2, len) == 0,
                          "%s: the legacy snapshot restored to another "
                          "object", k->name);
                old[old_len - 1] ^= 0x01;
                cr_expect_eq(load_bytes(k, old, old_len, err, sizeof err),
                             ITD_ERR_CORRUPT, "%s", k->name);
                cr_expect(strstr(err, "payload checksum mismatch"), "%s: %s",
                          k->name, err);
                old[old_len - 1] ^= 0x01;
                old[30] ^= 0x01;
                cr_expect_eq(load_bytes(k, old, old_len, err, sizeof err),
                             ITD_ERR_CORRUPT, "%s", k->name);
                cr_expect(strstr(err, "header checksum mismatch"), "%s: %s",
                          k->name, err);
                free(b);
                free(b2);
                free(old);
        }
}
