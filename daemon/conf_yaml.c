/*
 * conf_yaml.c - itd_conf_load: reads one YAML file with libyaml's document
 * API into a copy of the conf, all-or-nothing. Nested maps and dotted keys
 * mix freely: `model: {learning.rate: 0.01}` is the same option as
 * `model.learning.rate: 0.01`. Everything below `kafka:` is joined with
 * dots and kept, in file order, for librdkafka. Every error names
 * file:line:column and the key, because a config error stops start-up and
 * the operator has to find the line; an unknown key comes with the
 * closest known name. itd_conf_load_all goes on past a bad option and
 * reports every one (check-config), where itd_conf_load stops at the
 * first.
 */
#include "intentd/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "conf_int.h"
#include "intentd/err.h"
#include "intentd/mem.h"

/* 1 if some option lives below `prefix.` (so `prefix: {...}` is a group). */
static bool prefix_known(const char *prefix) {
        size_t n = strlen(prefix);
        for (size_t i = 0; i < itd_conf_n_props; i++)
                if (strncmp(itd_conf_props[i].name, prefix, n) == 0 &&
                    itd_conf_props[i].name[n] == '.')
                        return true;
        return false;
}

/* ------------------------------------------------------------------ */
/* suggestions for unknown names */

static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > 127 || lb > 127)
                return SIZE_MAX;
        size_t row[128];
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t best = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

/* Dots, dashes and underscores all separate words in what people type. */
static void normalise(const char *s, char *buf, size_t cap) {
        size_t i = 0;
        for (; s[i] && i + 1 < cap; i++)
                buf[i] = (s[i] == '_' || s[i] == '-')
                             ? '.'
                             : (char)tolower((unsigned char)s[i]);
        buf[i] = '\0';
}

/* The known option closest to name, or NULL if none is plausibly meant. */
static const char *suggest(const char *name) {
        char key[128], cand[128];
        normalise(name, key, sizeof key);
        size_t klen = strlen(key);
        const char *best = NULL;
        size_t best_d = SIZE_MAX;
        for (size_t i = 0; i < itd_conf_n_props; i++) {
                normalise(itd_conf_props[i].name, cand, sizeof cand);
                size_t clen = strlen(cand);
                /* "learning_rate" or "events" alone: the tail of a name. */
                if (strcmp(cand, key) == 0 ||
                    (clen > klen && cand[clen - klen - 1] == '.' &&
                     strcmp(cand + clen - klen, key) == 0))
                        return itd_conf_props[i].name;
                size_t d = edit_distance(key, cand);
                if (d < best_d) {
                        best_d = d;
                        best = itd_conf_props[i].name;
                }
        }
        size_t limit = klen / 3 > 2 ? klen / 3 : 2;
        return best_d <= limit ? best : NULL;
}

void itd_conf_unknown_option(const char *name, char *errstr,
                             size_t errstr_size) {
        const char *hint = suggest(name);
        if (hint)
                itd_errf(errstr, errstr_size,
                       "%s: unknown option; did you mean \"%s\"?", name, hint);
        else
                itd_errf(errstr, errstr_size,
                       "%s: unknown option (docs/CONFIGURATION.md lists them)",
                       name);
}

/* ------------------------------------------------------------------ */
/* YAML */

struct loader {
        itd_conf_t *conf;
        yaml_document_t *doc;
        const char *path;
        char *errstr;
        size_t errstr_size;
        /* all: report every error, one line each, and skip the option at
         * fault; errlen is what errstr holds so far */
        bool all;
        size_t n_errors, errlen;
        /* options set so far by this file, with their key's mark: the
         * same option twice (`a.b:` and `a: {b:}`) is an error */
        size_t n_seen, cap_seen;
        char **seen;
        yaml_mark_t *seen_at;
};

/* "file:line:column: " + why, at the node the error is about. */
static itd_err_t fail_at(struct loader *ld, const yaml_node_t *node,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static itd_err_t fail_at(struct loader *ld, const yaml_node_t *node,
                         const char *fmt, ...) {
        char why[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        char line[1400];
        snprintf(line, sizeof line, "%s:%zu:%zu: %s", ld->path,
                 node->start_mark.line + 1, node->start_mark.column + 1, why);
        ld->n_errors++;
        if (!ld->all) {
                itd_errf(ld->errstr, ld->errstr_size, "%s", line);
                return ITD_ERR_CONF;
        }
        /* One line per error; a line that no longer fits is dropped
         * whole, and the count still says how many there were. */
        size_t n = strlen(line);
        if (ld->errstr && ld->errlen + n + 2 <= ld->errstr_size) {
                if (ld->errlen)
                        ld->errstr[ld->errlen++] = '\n';
                memcpy(ld->errstr + ld->errlen, line, n + 1);
                ld->errlen += n;
        }
        return ITD_ERR_CONF;
}

/* A file that sets one option twice (two spellings, or a key repeated)
 * has no meaning an operator can rely on: which one wins would be ours to
 * guess. Records name and where it was set for itd_conf_where. */
static itd_err_t set_once(struct loader *ld, const char *name,
                          const yaml_node_t *key) {
        for (size_t i = 0; i < ld->n_seen; i++)
                if (strcmp(ld->seen[i], name) == 0)
                        return fail_at(ld, key,
                                       "%s: set twice in this file; first at "
                                       "line %zu, column %zu",
                                       name, ld->seen_at[i].line + 1,
                                       ld->seen_at[i].column + 1);
        if (ld->n_seen == ld->cap_seen) {
                ld->cap_seen = ld->cap_seen ? 2 * ld->cap_seen : 32;
                ld->seen = itd_xrealloc(ld->seen,
                                        ld->cap_seen * sizeof *ld->seen);
                ld->seen_at = itd_xrealloc(ld->seen_at,
                                           ld->cap_seen * sizeof *ld->seen_at);
        }
        ld->seen[ld->n_seen] = itd_xstrdup(name);
        ld->seen_at[ld->n_seen++] = key->start_mark;
        char where[4200];
        snprintf(where, sizeof where, "%s:%zu:%zu", ld->path,
                 key->start_mark.line + 1, key->start_mark.column + 1);
        itd_conf_note(ld->conf, name, where);
        return ITD_OK;
}

static const char *node_kind(const yaml_node_t *node) {
        switch (node->type) {
        case YAML_SCALAR_NODE: return "single value";
        case YAML_SEQUENCE_NODE: return "list";
        case YAML_MAPPING_NODE: return "mapping";
        default: return "empty node";
        }
}

static const char *scalar(const yaml_node_t *node) {
        return (const char *)node->data.scalar.value;
}

/* `key:`, `key: ~` and `key: null` (plain, not quoted) mean no value. */
static bool is_null(const yaml_node_t *node) {
        if (node->type != YAML_SCALAR_NODE ||
            node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *s = scalar(node);
        return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
               strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static bool is_empty_map(const yaml_node_t *node) {
        return node->type == YAML_MAPPING_NODE &&
               node->data.mapping.pairs.top == node->data.mapping.pairs.start;
}

/* A scalar we can hand on as C text: not null and without NUL bytes. */
static itd_err_t scalar_text(struct loader *ld, const char *name,
                             const yaml_node_t *node, const char **text) {
        if (node->type != YAML_SCALAR_NODE)
                return fail_at(ld, node, "%s: expected a single value, got a "
                                         "%s",
                               name, node_kind(node));
        if (is_null(node))
                return fail_at(ld, node, "%s: no value", name);
        if (strlen(scalar(node)) != node->data.scalar.length)
                return fail_at(ld, node, "%s: the value contains a NUL byte",
                               name);
        *text = scalar(node);
        return ITD_OK;
}

static itd_err_t walk_map(struct loader *ld, const yaml_node_t *map,
                          const char *prefix);

/* kafka.*: a scalar, or a list joined with commas ("a:9092,b:9092"). */
static itd_err_t load_kafka(struct loader *ld, const char *name,
                            yaml_node_t *value) {
        char why[768];
        const char *text;
        itd_err_t err;
        if (value->type != YAML_SEQUENCE_NODE) {
                if ((err = scalar_text(ld, name, value, &text)))
                        return err;
                if (itd_conf_set(ld->conf, name, text, why, sizeof why))
                        return fail_at(ld, value, "%s", why);
                return ITD_OK;
        }
        size_t cap = 1, len = 0;
        yaml_node_item_t *it;
        for (it = value->data.sequence.items.start;
             it < value->data.sequence.items.top; it++) {
                yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
                if ((err = scalar_text(ld, name, item, &text)))
                        return err;
                cap += strlen(text) + 1;
        }
        char *joined = itd_xmalloc(cap);
        joined[0] = '\0';
        for (it = value->data.sequence.items.start;
             it < value->data.sequence.items.top; it++) {
                yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
                size_t n = item->data.scalar.length;
                if (len)
                        joined[len++] = ',';
                memcpy(joined + len, scalar(item), n + 1);
                len += n;
        }
        err = ITD_OK;
        if (itd_conf_set(ld->conf, name, joined, why, sizeof why))
                err = fail_at(ld, value, "%s", why);
        free(joined);
        return err;
}

/* A table option from a YAML scalar or sequence. */
static itd_err_t load_option(struct loader *ld, const struct prop *p,
                             yaml_node_t *value) {
        char why[768];
        const char *text;
        itd_err_t err;
        if (value->type == YAML_MAPPING_NODE)
                return fail_at(ld, value, "%s: expected a %s, got a mapping",
                               p->name, itd_conf_type_name(p));
        if (value->type == YAML_SCALAR_NODE) {
                if ((err = scalar_text(ld, p->name, value, &text)))
                        return err;
                if (itd_conf_prop_set_text(ld->conf, p, text, why, sizeof why))
                        return fail_at(ld, value, "%s", why);
                return ITD_OK;
        }
        if (!is_list(p))
                return fail_at(ld, value,
                               "%s: expected a single %s, got a list",
                               p->name, itd_conf_type_name(p));
        yaml_node_item_t *start = value->data.sequence.items.start;
        size_t n = (size_t)(value->data.sequence.items.top - start);
        const char **items = itd_xcalloc(n, sizeof *items);
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = yaml_document_get_node(ld->doc, start[i]);
                if ((err = scalar_text(ld, p->name, item, &items[i]))) {
                        free(items);
                        return err;
                }
        }
        size_t bad;
        err = itd_conf_prop_set(ld->conf, p, items, n, &bad, why, sizeof why);
        free(items);
        if (err) {
                /* Point at the entry at fault when there is one. */
                const yaml_node_t *at =
                    bad < n ? yaml_document_get_node(ld->doc, start[bad])
                            : value;
                return fail_at(ld, at, "%s", why);
        }
        return ITD_OK;
}

static itd_err_t load_pair(struct loader *ld, const char *name,
                           yaml_node_t *key, yaml_node_t *value) {
        if (strcmp(name, "kafka") == 0 || strncmp(name, "kafka.", 6) == 0) {
                if (value->type == YAML_MAPPING_NODE)
                        return walk_map(ld, value, name);
                if (strcmp(name, "kafka") != 0) {
                        itd_err_t err = set_once(ld, name, key);
                        return err ? err : load_kafka(ld, name, value);
                }
                if (is_null(value))
                        return ITD_OK;
                return fail_at(ld, value,
                               "kafka: expected a mapping of librdkafka "
                               "properties, got a %s",
                               node_kind(value));
        }
        const struct prop *p = itd_conf_prop_find(name);
        if (p) {
                itd_err_t err = set_once(ld, name, key);
                return err ? err : load_option(ld, p, value);
        }
        if (value->type == YAML_MAPPING_NODE && !is_empty_map(value))
                return walk_map(ld, value, name);
        /* `topics:` with nothing below it is an empty group, not an error. */
        if ((is_null(value) || is_empty_map(value)) && prefix_known(name))
                return ITD_OK;
        if (prefix_known(name))
                return fail_at(ld, value,
                               "%s: expected a mapping of %s.* options, got "
                               "a %s",
                               name, name, node_kind(value));
        char why[768];
        itd_conf_unknown_option(name, why, sizeof why);
        return fail_at(ld, key, "%s", why);
}

static itd_err_t walk_map(struct loader *ld, const yaml_node_t *map,
                          const char *prefix) {
        yaml_node_pair_t *pair;
        for (pair = map->data.mapping.pairs.start;
             pair < map->data.mapping.pairs.top; pair++) {
                yaml_node_t *key = yaml_document_get_node(ld->doc, pair->key);
                yaml_node_t *value =
                    yaml_document_get_node(ld->doc, pair->value);
                itd_err_t err = ITD_OK;
                if (key->type != YAML_SCALAR_NODE) {
                        err = fail_at(ld, key,
                                      "%s%skeys must be names, not a %s",
                                      prefix ? prefix : "",
                                      prefix ? ": " : "", node_kind(key));
                        if (ld->all)
                                continue;
                        return err;
                }
                const char *k = scalar(key);
                if (!*k || strlen(k) != key->data.scalar.length) {
                        err = fail_at(ld, key, "%s%sempty or invalid key",
                                      prefix ? prefix : "",
                                      prefix ? ": " : "");
                        if (ld->all)
                                continue;
                        return err;
                }
                /* YAML wants the keys of a mapping unique; libyaml does
                 * not check. A repeated group (`output:` twice) is the
                 * same mistake as a repeated option. */
                for (yaml_node_pair_t *q = map->data.mapping.pairs.start;
                     !err && q < pair; q++) {
                        yaml_node_t *qk =
                            yaml_document_get_node(ld->doc, q->key);
                        if (qk->type == YAML_SCALAR_NODE &&
                            strcmp(scalar(qk), k) == 0)
                                err = fail_at(
                                    ld, key,
                                    "%s%s%s: duplicate key; first at line "
                                    "%zu, column %zu",
                                    prefix ? prefix : "", prefix ? "." : "",
                                    k, qk->start_mark.line + 1,
                                    qk->start_mark.column + 1);
                }
                if (!err) {
                        char name[256];
                        int n = snprintf(name, sizeof name, "%s%s%s",
                                         prefix ? prefix : "",
                                         prefix ? "." : "", k);
                        if (n < 0 || (size_t)n >= sizeof name)
                                err = fail_at(ld, key,
                                              "%.64s...: key too long", name);
                        else
                                err = load_pair(ld, name, key, value);
                }
                /* Reporting all: the option at fault keeps its previous
                 * value and the walk goes on; errors deeper down were
                 * counted where they happened. */
                if (err && !ld->all)
                        return err;
        }
        return ld->n_errors ? ITD_ERR_CONF : ITD_OK;
}

static itd_err_t yaml_error(const char *path, const yaml_parser_t *parser,
                            char *errstr, size_t errstr_size) {
        const yaml_mark_t *m = &parser->problem_mark;
        const char *problem = parser->problem ? parser->problem : "error";
        if (parser->error == YAML_READER_ERROR) {
                itd_errf(errstr, errstr_size,
                       "%s: cannot read as YAML: %s at byte %zu", path,
                       problem, parser->problem_offset);
                return ITD_ERR_CONF;
        }
        itd_errf(errstr, errstr_size, "%s:%zu:%zu: YAML syntax error: %s%s%s%s",
               path, m->line + 1, m->column + 1, problem,
               parser->context ? " (" : "",
               parser->context ? parser->context : "",
               parser->context ? ")" : "");
        return ITD_ERR_CONF;
}

static itd_err_t load(itd_conf_t *conf, const char *path, bool all,
                      char *errstr, size_t errstr_size, size_t *n_errors) {
        *n_errors = 1; /* until the walk counts them */
        if (errstr && errstr_size)
                errstr[0] = '\0';
        if (!conf || !path) {
                itd_errf(errstr, errstr_size, "no configuration file given");
                return ITD_ERR_ARG;
        }
        FILE *fp = fopen(path, "rb");
        if (!fp) {
                itd_errf(errstr, errstr_size, "%s: cannot open: %s", path,
                       strerror(errno));
                return ITD_ERR_IO;
        }
        struct stat sb;
        if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
                fclose(fp);
                itd_errf(errstr, errstr_size, "%s: cannot read: is a directory",
                       path);
                return ITD_ERR_IO;
        }

        itd_err_t err = ITD_OK;
        itd_conf_t *tmp = NULL;
        yaml_parser_t parser;
        yaml_document_t doc, extra;
        bool have_doc = false, walked = false;
        if (!yaml_parser_initialize(&parser)) {
                fclose(fp);
                itd_errf(errstr, errstr_size, "%s: cannot start the YAML parser",
                       path);
                return ITD_ERR_CONF;
        }
        yaml_parser_set_input_file(&parser, fp);
        if (!yaml_parser_load(&parser, &doc)) {
                err = ferror(fp) ? ITD_ERR_IO : ITD_ERR_CONF;
                yaml_error(path, &parser, errstr, errstr_size);
                goto done;
        }
        have_doc = true;

        /* One document per file; a second one would be silently ignored. */
        if (!yaml_parser_load(&parser, &extra)) {
                err = yaml_error(path, &parser, errstr, errstr_size);
                goto done;
        }
        yaml_node_t *root2 = yaml_document_get_root_node(&extra);
        if (root2) {
                itd_errf(errstr, errstr_size,
                       "%s:%zu:%zu: only one YAML document is allowed", path,
                       extra.start_mark.line + 1, extra.start_mark.column + 1);
                err = ITD_ERR_CONF;
        }
        yaml_document_delete(&extra);
        if (err)
                goto done;

        /* An empty file (or a lone `---`) is a valid, all-default config. */
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root || is_null(root))
                goto done;

        /* Load into a copy so a bad file changes nothing. */
        tmp = itd_conf_dup(conf);
        struct loader ld = {tmp,  &doc, path, errstr, errstr_size, all,
                            0,    0,    0,    0,      NULL,        NULL};
        if (root->type != YAML_MAPPING_NODE) {
                err = fail_at(&ld, root,
                              "expected a mapping of options at the top "
                              "level, got a %s",
                              node_kind(root));
                goto done;
        }
        walked = true;
        err = walk_map(&ld, root, NULL);
        for (size_t i = 0; i < ld.n_seen; i++)
                free(ld.seen[i]);
        free(ld.seen);
        free(ld.seen_at);
        /* Rules across options the table cannot express: each re-arm
         * level must not exceed its firing level. */
        static const struct {
                const char *lo, *hi;
                size_t lo_off, hi_off;
                int wider; /* 1: lo must be >= hi (percentages) */
        } pairs[] = {
            {"triggers.exit", "triggers.enter",
             offsetof(itd_conf_t, triggers_exit),
             offsetof(itd_conf_t, triggers_enter), 0},
            {"triggers.exit_lift", "triggers.lift",
             offsetof(itd_conf_t, triggers_exit_lift),
             offsetof(itd_conf_t, triggers_lift), 0},
            {"triggers.exit_top_percent", "triggers.top_percent",
             offsetof(itd_conf_t, triggers_exit_top_percent),
             offsetof(itd_conf_t, triggers_top_percent), 1},
            {"risk.trigger.exit", "risk.trigger.enter",
             offsetof(itd_conf_t, risk_trigger_exit),
             offsetof(itd_conf_t, risk_trigger_enter), 0},
        };
        for (size_t i = 0; (!err || all) && i < sizeof pairs / sizeof pairs[0];
             i++) {
                double lo = *(const double *)(const void *)(
                    (const char *)tmp + pairs[i].lo_off);
                double hi = *(const double *)(const void *)(
                    (const char *)tmp + pairs[i].hi_off);
                if (pairs[i].wider ? lo >= hi : lo <= hi)
                        continue;
                const char *at = itd_conf_where(tmp, pairs[i].lo);
                if (!at)
                        at = itd_conf_where(tmp, pairs[i].hi);
                char line[600];
                snprintf(line, sizeof line,
                         "%s: %s: %g is %s %s (%g); the re-arm level must "
                         "not exceed the firing level",
                         at ? at : path, pairs[i].lo, lo,
                         pairs[i].wider ? "below" : "above", pairs[i].hi,
                         hi);
                size_t n = strlen(line);
                if (!all)
                        itd_errf(errstr, errstr_size, "%s", line);
                else if (errstr && ld.errlen + n + 2 <= errstr_size)
                        ld.errlen += (size_t)snprintf(
                            errstr + ld.errlen, errstr_size - ld.errlen,
                            "%s%s", ld.errlen ? "\n" : "", line);
                ld.n_errors++;
                err = ITD_ERR_CONF;
        }
        *n_errors = ld.n_errors;
        /* Reporting all, the options that loaded count, so the checks that
         * follow (check-config) see the file as far as it is valid. */
        if (!err || all) {
                itd_conf_t old = *conf;
                *conf = *tmp;
                *tmp = old;
        }

done:
        if (!err)
                *n_errors = 0;
        /* Nothing of the file could be read as options: say so apart from
         * bad options, so a caller does not check a default config. */
        if (all && err == ITD_ERR_CONF && !walked)
                err = ITD_ERR_PARSE;
        itd_conf_destroy(tmp);
        if (have_doc)
                yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        fclose(fp);
        return err;
}

itd_err_t itd_conf_load(itd_conf_t *conf, const char *path, char *errstr,
                        size_t errstr_size) {
        size_t n;
        return load(conf, path, false, errstr, errstr_size, &n);
}

itd_err_t itd_conf_load_all(itd_conf_t *conf, const char *path, char *errstr,
                            size_t errstr_size, size_t *n_errors) {
        return load(conf, path, true, errstr, errstr_size, n_errors);
}

