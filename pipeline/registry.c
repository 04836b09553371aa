/*
 * registry.c - GET {url}/schemas/ids/{id} against a Confluent Schema
 * Registry, and the registration of intentd's own output schemas (POST
 * {url}/subjects/{subject}/versions), through libcurl (see
 * registry_int.h).
 *
 * Why libcurl rather than a socket and a hand-written HTTP/1.1 GET:
 * registries in production sit behind https, basic auth, proxies and
 * chunked responses; libcurl handles all of them, is packaged and kept
 * patched by Debian, and is only on the cold path (the first message of a
 * new schema id). Each look-up is one easy handle that pipeline/fetcher.c
 * runs on a multi handle in its own thread, so a registry that hangs
 * never holds up decoding. Built without libcurl (ITD_HAVE_CURL
 * undefined), the client refuses to start and says so.
 */
#include "registry_int.h"
#include "intentd/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "intentd/mem.h"

#define MAX_BODY (1 << 20)   /* a schema answer larger than this is refused */
#define CONNECT_TIMEOUT_MS 2000L

/* Where the userinfo of url ends ('@' included) and starts, or 0 when it
 * has none: "scheme://user:pass@host/...". */
static size_t userinfo_span(const char *url, size_t *start) {
        const char *sep = strstr(url, "://");
        if (!sep)
                return 0;
        const char *auth = sep + 3;
        size_t auth_len = strcspn(auth, "/?#");
        const char *at = NULL;
        for (const char *p = auth; p < auth + auth_len; p++)
                if (*p == '@')
                        at = p;
        if (!at)
                return 0;
        *start = (size_t)(auth - url);
        return (size_t)(at + 1 - auth);
}

const char *itd_url_redact(const char *url, char *buf, size_t cap) {
        size_t start, n = userinfo_span(url, &start);
        if (cap == 0)
                return buf;
        if (!n)
                snprintf(buf, cap, "%s", url);
        else
                snprintf(buf, cap, "%.*s***@%s", (int)start, url,
                         url + start + n);
        return buf;
}

#ifdef ITD_HAVE_CURL
#include <curl/curl.h>

struct itd_registry_s {
        char *base;     /* url without credentials or trailing slashes */
        char *user;     /* NULL: no credentials */
        char *password;
        long timeout_ms;
};

struct itd_reg_req_s {
        CURL *curl;
        uint32_t id;
        char url[1200];   /* with credentials removed */
        char *body;
        size_t len, cap;
        int too_big;
};

/* Splits "user:password" (the first ':' separates; the password may hold
 * more) into reg; url-decoded when it came from a URL. */
static void set_credentials(itd_registry_t *reg, const char *text,
                            size_t len, int url_encoded) {
        const char *colon = memchr(text, ':', len);
        size_t ulen = colon ? (size_t)(colon - text) : len;
        const char *pw = colon ? colon + 1 : "";
        size_t plen = colon ? len - ulen - 1 : 0;
        if (url_encoded) {
                int n;
                char *u = curl_easy_unescape(NULL, text, (int)ulen, &n);
                char *p = curl_easy_unescape(NULL, pw, (int)plen, &n);
                reg->user = itd_xstrdup(u ? u : "");
                reg->password = itd_xstrdup(p ? p : "");
                curl_free(u);
                curl_free(p);
                return;
        }
        reg->user = itd_xmalloc(ulen + 1);
        memcpy(reg->user, text, ulen);
        reg->user[ulen] = '\0';
        reg->password = itd_xmalloc(plen + 1);
        memcpy(reg->password, pw, plen);
        reg->password[plen] = '\0';
}

itd_registry_t *itd_registry_new(const char *url, const char *user_info,
                                 int64_t timeout_ms, char *errstr,
                                 size_t errstr_size) {
        char shown[1100];
        itd_url_redact(url, shown, sizeof shown);
        if (strncmp(url, "http://", 7) != 0 &&
            strncmp(url, "https://", 8) != 0) {
                snprintf(errstr, errstr_size,
                         "input.schema_registry.url \"%s\": expected http:// "
                         "or https://",
                         shown);
                return NULL;
        }
        size_t start, n = userinfo_span(url, &start);
        if (n && user_info && *user_info) {
                snprintf(errstr, errstr_size,
                         "input.schema_registry.url \"%s\" carries "
                         "credentials and "
                         "input.schema_registry.basic_auth_user_info is "
                         "set: give them once",
                         shown);
                return NULL;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                snprintf(errstr, errstr_size, "libcurl initialisation failed");
                return NULL;
        }
        itd_registry_t *reg = itd_xcalloc(1, sizeof *reg);
        reg->timeout_ms = timeout_ms > 0 ? (long)timeout_ms : 5000L;
        size_t len = strlen(url) - n;
        reg->base = itd_xmalloc(len + 1);
        memcpy(reg->base, url, n ? start : len);
        if (n)
                memcpy(reg->base + start, url + start + n, len - start);
        reg->base[len] = '\0';
        for (size_t k = strlen(reg->base); k > 0 && reg->base[k - 1] == '/';)
                reg->base[--k] = '\0';
        if (n)
                set_credentials(reg, url + start, n - 1, 1);
        else if (user_info && *user_info)
                set_credentials(reg, user_info, strlen(user_info), 0);
        return reg;
}

void itd_registry_destroy(itd_registry_t *reg) {
        if (!reg)
                return;
        free(reg->base);
        free(reg->user);
        if (reg->password) {
                /* Not left behind in freed memory (a core dump). */
                volatile char *p = reg->password;
                while (*p)
                        *p++ = '\0';
                free(reg->password);
        }
        free(reg);
        /* curl_global_cleanup is left to process exit: other clients may
         * still be alive, and it is not thread-safe. */
}

const char *itd_registry_url(const itd_registry_t *reg) { return reg->base; }

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
        itd_reg_req_t *req = arg;
        size_t n = size * nmemb;
        if (req->len + n > MAX_BODY) {
                req->too_big = 1;
                return 0; /* makes libcurl fail the transfer */
        }
        if (req->len + n + 1 > req->cap) {
                req->cap = (req->len + n + 1) * 2;
                req->body = itd_xrealloc(req->body, req->cap);
        }
        memcpy(req->body + req->len, data, n);
        req->len += n;
        req->body[req->len] = '\0';
        return n;
}

itd_reg_req_t *itd_registry_req_new(itd_registry_t *reg, uint32_t id) {
        CURL *c = curl_easy_init();
        if (!c)
                return NULL;
        itd_reg_req_t *req = itd_xcalloc(1, sizeof *req);
        req->curl = c;
        req->id = id;
        snprintf(req->url, sizeof req->url, "%s/schemas/ids/%u", reg->base,
                 id);
        curl_easy_setopt(c, CURLOPT_URL, req->url);
        if (reg->user) {
                curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
                curl_easy_setopt(c, CURLOPT_USERNAME, reg->user);
                curl_easy_setopt(c, CURLOPT_PASSWORD, reg->password);
        }
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                         reg->timeout_ms < CONNECT_TIMEOUT_MS
                             ? reg->timeout_ms
                             : CONNECT_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, reg->timeout_ms);
        /* Redirects within the registry; libcurl does not send the
         * credentials on to another host. */
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, req);
        curl_easy_setopt(c, CURLOPT_PRIVATE, req);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "intentd");
        return req;
}

void *itd_registry_req_easy(itd_reg_req_t *req) { return req->curl; }

uint32_t itd_registry_req_id(const itd_reg_req_t *req) { return req->id; }

void itd_registry_req_destroy(itd_reg_req_t *req) {
        if (!req)
                return;
        curl_easy_cleanup(req->curl);
        free(req->body);
        free(req);
}

itd_err_t itd_registry_req_finish(itd_reg_req_t *req, int curl_rc,
                                  char **schema, char *why,
                                  size_t why_size) {
        long status = 0;
        *schema = NULL;
        if (curl_rc != CURLE_OK) {
                snprintf(why, why_size, "GET %s: %s", req->url,
                         req->too_big ? "answer larger than 1 MiB"
                                      : curl_easy_strerror(curl_rc));
                return ITD_ERR_IO;
        }
        curl_easy_getinfo(req->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status == 404) {
                snprintf(why, why_size, "GET %s: 404 not found", req->url);
                return ITD_ERR_NOT_FOUND;
        }
        if (status != 200) {
                snprintf(why, why_size, "GET %s: HTTP status %ld", req->url,
                         status);
                return ITD_ERR_IO;
        }
        json_error_t jerr;
        json_t *root = json_loadb(req->body ? req->body : "", req->len, 0,
                                  &jerr);
        json_t *s = root ? json_object_get(root, "schema") : NULL;
        json_t *type = root ? json_object_get(root, "schemaType") : NULL;
        itd_err_t err = ITD_ERR_PARSE;
        if (!json_is_string(s)) {
                snprintf(why, why_size,
                         "GET %s: answer is not {\"schema\": \"...\"}",
                         req->url);
        } else if (type && !(json_is_string(type) &&
                             strcmp(json_string_value(type), "AVRO") == 0)) {
                snprintf(why, why_size, "GET %s: schemaType is %.40s, not AVRO",
                         req->url,
                         json_is_string(type) ? json_string_value(type)
                                              : "not a string");
        } else {
                *schema = itd_xstrdup(json_string_value(s));
                err = ITD_OK;
        }
        json_decref(root);
        return err;
}

/* The registry's own words on a refusal ({"error_code": 40901,
 * "message": "..."}), cut to fit, or "". */
static void refusal(const char *body, size_t len, char *out, size_t cap) {
        json_error_t jerr;
        json_t *root = json_loadb(body ? body : "", len, 0, &jerr);
        json_t *m = root ? json_object_get(root, "message") : NULL;
        json_t *c = root ? json_object_get(root, "error_code") : NULL;
        out[0] = '\0';
        if (json_is_string(m))
                snprintf(out, cap, ": %.200s (error_code %" JSON_INTEGER_FORMAT
                         ")",
                         json_string_value(m),
                         json_is_integer(c) ? json_integer_value(c) : 0);
        json_decref(root);
}

itd_err_t itd_registry_subject(itd_registry_t *reg, const char *subject,
                               const char *schema, int register_it,
                               int32_t *id, char *why, size_t why_size) {
        *id = -1;
        itd_reg_req_t *req = itd_registry_req_new(reg, 0);
        if (!req) {
                snprintf(why, why_size, "libcurl: cannot create a handle");
                return ITD_ERR_IO;
        }
        char *esc = curl_easy_escape(req->curl, subject, 0);
        snprintf(req->url, sizeof req->url, "%s/subjects/%s%s", reg->base,
                 esc ? esc : subject, register_it ? "/versions" : "");
        curl_free(esc);
        json_t *doc = json_pack("{s:s}", "schema", schema);
        char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        struct curl_slist *hdrs = curl_slist_append(
            NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
        hdrs = curl_slist_append(
            hdrs, "Accept: application/vnd.schemaregistry.v1+json, "
                  "application/vnd.schemaregistry+json, application/json");
        curl_easy_setopt(req->curl, CURLOPT_URL, req->url);
        curl_easy_setopt(req->curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(req->curl, CURLOPT_POSTFIELDS, body ? body : "");
        /* A POST must not turn into a GET on a redirect. */
        curl_easy_setopt(req->curl, CURLOPT_POSTREDIR, CURL_REDIR_POST_ALL);
        CURLcode rc = curl_easy_perform(req->curl);
        long status = 0;
        curl_easy_getinfo(req->curl, CURLINFO_RESPONSE_CODE, &status);
        itd_err_t err;
        char words[300];
        const char *what = register_it ? "register" : "look up";
        if (rc != CURLE_OK) {
                snprintf(why, why_size, "POST %s: %s", req->url,
                         req->too_big ? "answer larger than 1 MiB"
                                      : curl_easy_strerror(rc));
                err = ITD_ERR_IO;
        } else if (status == 200) {
                json_error_t jerr;
                json_t *root = json_loadb(req->body ? req->body : "",
                                          req->len, 0, &jerr);
                json_t *jid = root ? json_object_get(root, "id") : NULL;
                if (json_is_integer(jid) && json_integer_value(jid) >= 0 &&
                    json_integer_value(jid) <= INT32_MAX) {
                        *id = (int32_t)json_integer_value(jid);
                        err = ITD_OK;
                } else {
                        snprintf(why, why_size,
                                 "POST %s: answer has no schema id",
                                 req->url);
                        err = ITD_ERR_PARSE;
                }
                json_decref(root);
        } else {
                refusal(req->body, req->len, words, sizeof words);
                /* Refusals another try cannot fix stop start-up for an
                 * operator; the rest (5xx, 429, 408) may pass. */
                int transient = status >= 500 || status == 429 ||
                                status == 408;
                const char *hint =
                    status == 401 || status == 403
                        ? "; check the credentials and their permissions"
                    : status == 409 ? "; the schema is incompatible with "
                                      "the subject's compatibility setting"
                    : status == 404 && !register_it
                        ? "; not registered under this subject, and "
                          "output.schema_registry.auto_register is false"
                        : "";
                snprintf(why, why_size, "cannot %s the schema: POST %s: "
                         "HTTP %ld%s%s",
                         what, req->url, status, words, hint);
                err = transient ? ITD_ERR_IO : ITD_ERR_CONF;
        }
        curl_slist_free_all(hdrs);
        free(body);
        itd_registry_req_destroy(req);
        return err;
}

#else /* !ITD_HAVE_CURL */

struct itd_registry_s {
        int unused;
};

itd_registry_t *itd_registry_new(const char *url, const char *user_info,
                                 int64_t timeout_ms, char *errstr,
                                 size_t errstr_size) {
        char shown[1100];
        (void)user_info;
        (void)timeout_ms;
        snprintf(errstr, errstr_size,
                 "input.schema_registry.url \"%s\": intentd was built "
                 "without libcurl, so it cannot query a schema registry "
                 "(use input.schemas_dir)",
                 itd_url_redact(url, shown, sizeof shown));
        return NULL;
}

void itd_registry_destroy(itd_registry_t *reg) { (void)reg; }

const char *itd_registry_url(const itd_registry_t *reg) {
        (void)reg;
        return "";
}

itd_reg_req_t *itd_registry_req_new(itd_registry_t *reg, uint32_t id) {
        (void)reg;
        (void)id;
        return NULL;
}

void *itd_registry_req_easy(itd_reg_req_t *req) {
        (void)req;
        return NULL;
}

uint32_t itd_registry_req_id(const itd_reg_req_t *req) {
        (void)req;
        return 0;
}

itd_err_t itd_registry_req_finish(itd_reg_req_t *req, int curl_rc,
                                  char **schema, char *why,
                                  size_t why_size) {
        (void)req;
        (void)curl_rc;
        *schema = NULL;
        snprintf(why, why_size, "no registry client");
        return ITD_ERR_IO;
}

void itd_registry_req_destroy(itd_reg_req_t *req) { (void)req; }

itd_err_t itd_registry_subject(itd_registry_t *reg, const char *subject,
                               const char *schema, int register_it,
                               int32_t *id, char *why, size_t why_size) {
        (void)reg;
        (void)subject;
        (void)schema;
        (void)register_it;
        *id = -1;
        snprintf(why, why_size, "no registry client");
        return ITD_ERR_CONF;
}

#endif

itd_err_t itd_registry_register(const char *url, const char *user_info,
                                int64_t timeout_ms, const char *subject,
                                const char *schema, int register_it,
                                int32_t *id, char *why, size_t why_size) {
        *id = -1;
        itd_registry_t *reg = itd_registry_new(url, user_info, timeout_ms, why,
                                               why_size);
        if (!reg)
                return ITD_ERR_CONF;
        itd_err_t err = itd_registry_subject(reg, subject, schema,
                                             register_it, id, why, why_size);
        itd_registry_destroy(reg);
        return err;
}
