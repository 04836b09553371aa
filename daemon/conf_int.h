/*
 * conf_int.h - internals shared by the conf*.c files: the option table's
 * row type and the table itself (conf_table.c), the typed parsing the YAML
 * loader and the docs generator reuse (conf.c), and the unknown-name
 * message (conf_yaml.c). Nothing outside daemon/conf*.c includes it.
 */
#ifndef INTENTD_DAEMON_CONF_INT_H
#define INTENTD_DAEMON_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "intentd/conf.h"

#define SEC_MS 1000LL
#define MIN_MS (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

typedef enum {
        PT_STRING,        /* char *, owned by the conf */
        PT_INT,           /* int64_t */
        PT_DOUBLE,        /* double */
        PT_BOOL,          /* int, 0 or 1 */
        PT_DURATION,      /* int64_t milliseconds */
        PT_ENUM,          /* int: index of the symbol in syms */
        PT_DURATION_LIST, /* int64_t[ITD_CONF_LIST_MAX] + size_t count */
        PT_INT_LIST       /* likewise */
} prop_type_t;

struct prop {
        const char *name;
        prop_type_t type;
        size_t off;            /* offsetof the value in itd_conf_t */
        size_t count_off;      /* lists: offsetof the size_t entry count */
        int64_t min, max;      /* int, duration (ms), list entries; string
                                * length */
        double dmin, dmax;     /* double */
        bool dmin_excl;        /* double: dmin itself is not allowed */
        size_t nmin, nmax;     /* lists: number of entries */
        bool ascending;        /* lists: entries strictly ascending */
        bool topic;            /* string: must be a valid Kafka topic name */
        const char *const *syms; /* enum: NULL-terminated, index = value */
        const char *def;       /* default, as text, parsed like user input */
        const char *unit;
        bool reloadable;       /* takes effect on SIGHUP without restart */
        const char *help;
        /* string: a further check of the text, or NULL; writes why */
        bool (*check)(const char *text, char *why, size_t why_size);
};

/* The option table, in docs order (conf_table.c). */
extern const struct prop itd_conf_props[];
extern const size_t itd_conf_n_props;

/* Headings of the generated docs, one per first name segment. */
struct itd_conf_group {
        const char *prefix;
        const char *title;
};
extern const struct itd_conf_group itd_conf_groups[];
extern const size_t itd_conf_n_groups;

/* What the docs and the example config say about `kafka:`. */
extern const char *const itd_conf_kafka_help;

/* Row access: values live in itd_conf_t at the offsets the table names. */
static inline bool is_list(const struct prop *p) {
        return p->type == PT_DURATION_LIST || p->type == PT_INT_LIST;
}

/* The type of one list entry, or the type itself for scalars. */
static inline prop_type_t elem_type(const struct prop *p) {
        if (p->type == PT_DURATION_LIST)
                return PT_DURATION;
        if (p->type == PT_INT_LIST)
                return PT_INT;
        return p->type;
}

static inline void *field(itd_conf_t *conf, const struct prop *p) {
        return (char *)conf + p->off;
}

static inline const void *cfield(const itd_conf_t *conf,
                                 const struct prop *p) {
        return (const char *)conf + p->off;
}

static inline size_t *count_field(itd_conf_t *conf, const struct prop *p) {
        return (size_t *)(void *)((char *)conf + p->count_off);
}

static inline size_t ccount_field(const itd_conf_t *conf,
                                  const struct prop *p) {
        return *(const size_t *)(const void *)((const char *)conf +
                                                p->count_off);
}

/* The option called name, or NULL (kafka.* is not in the table). */
const struct prop *itd_conf_prop_find(const char *name);

/* "integer", "duration list", ... as the docs and messages name types. */
const char *itd_conf_type_name(const struct prop *p);

/* The allowed values of one entry, as people read them ("1s..30d"). */
void itd_conf_range_text(const struct prop *p, char *buf, size_t cap);

/*
 * Sets p from n entries of text (n == 1 for scalars). Nothing changes
 * unless every entry is valid. On error *bad is the entry at fault (n when
 * the count itself is wrong), for the YAML loader to point at.
 */
itd_err_t itd_conf_prop_set(itd_conf_t *conf, const struct prop *p,
                            const char *const *items, size_t n, size_t *bad,
                            char *errstr, size_t errstr_size);

/* Sets p from one text: lists are comma-separated, optionally in [ ]. */
itd_err_t itd_conf_prop_set_text(itd_conf_t *conf, const struct prop *p,
                                 const char *text, char *errstr,
                                 size_t errstr_size);

/* Canonical text of the current value: what the YAML and docs show. */
void itd_conf_format_value(const itd_conf_t *conf, const struct prop *p,
                           char *buf, size_t cap);

/* Deep copy, for loading a file all-or-nothing. Caller destroys it. */
itd_conf_t *itd_conf_dup(const itd_conf_t *src);

/* Records where name got its value ("file:line:column", "-o"). */
void itd_conf_note(itd_conf_t *conf, const char *name, const char *where);

/* metrics.listen syntax (conf_table.c row check). */
bool itd_conf_listen_ok(const char *text, char *why, size_t why_size);

/* "name: unknown option; did you mean ...?" into errstr (conf_yaml.c). */
void itd_conf_unknown_option(const char *name, char *errstr,
                             size_t errstr_size);

#endif
