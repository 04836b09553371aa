/*
 * registry.c - GET {url}/schemas/ids/{id} against a Confluent Schema
 * Registry, through libcurl.
 *
 * Why libcurl rather than a socket and a hand-written HTTP/1.1 GET:
 * registries in production sit behind https, basic auth, proxies and
 * chunked responses; libcurl handles all of them, is packaged and kept
 * patched by Debian, and is only on the cold path (the first message of a
 * new schema id). One easy handle per client keeps the connection alive
 * between look-ups. Built without libcurl (ITD_HAVE_CURL undefined), the
 * client refuses to start and says so.
 */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "intentd/mem.h"

#define MAX_BODY (1 << 20)   /* a schema answer larger than this is refused */
#define CONNECT_TIMEOUT_MS 2000L
#define TOTAL_TIMEOUT_MS 5000L

#ifdef ITD_HAVE_CURL
#include <curl/curl.h>

struct itd_registry_s {
        CURL *curl;
        char *base; /* url without trailing slashes */
        char *body;
        size_t len, cap;
        int too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
        itd_registry_t *reg = arg;
        size_t n = size * nmemb;
        if (reg->len + n > MAX_BODY) {
                reg->too_big = 1;
                return 0; /* makes libcurl fail the transfer */
        }
        if (reg->len + n + 1 > reg->cap) {
                reg->cap = (reg->len + n + 1) * 2;
                reg->body = itd_xrealloc(reg->body, reg->cap);
        }
        memcpy(reg->body + reg->len, data, n);
        reg->len += n;
        reg->body[reg->len] = '\0';
        return n;
}

itd_registry_t *itd_registry_new(const char *url, char *errstr,
                                 size_t errstr_size) {
        if (strncmp(url, "http://", 7) != 0 &&
            strncmp(url, "https://", 8) != 0) {
                snprintf(errstr, errstr_size,
                         "schema registry url \"%s\": expected http:// or "
                         "https://",
                         url);
                return NULL;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                snprintf(errstr, errstr_size, "libcurl initialisation failed");
                return NULL;
        }
        itd_registry_t *reg = itd_xcalloc(1, sizeof *reg);
        reg->base = itd_xstrdup(url);
        for (size_t n = strlen(reg->base); n > 0 && reg->base[n - 1] == '/';)
                reg->base[--n] = '\0';
        reg->curl = curl_easy_init();
        if (!reg->curl) {
                snprintf(errstr, errstr_size, "curl_easy_init failed");
                itd_registry_destroy(reg);
                return NULL;
        }
        curl_easy_setopt(reg->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(reg->curl, CURLOPT_CONNECTTIMEOUT_MS,
                         CONNECT_TIMEOUT_MS);
        curl_easy_setopt(reg->curl, CURLOPT_TIMEOUT_MS, TOTAL_TIMEOUT_MS);
        curl_easy_setopt(reg->curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(reg->curl, CURLOPT_MAXREDIRS, 3L);
        curl_easy_setopt(reg->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(reg->curl, CURLOPT_WRITEDATA, reg);
        curl_easy_setopt(reg->curl, CURLOPT_USERAGENT, "intentd");
        return reg;
}

void itd_registry_destroy(itd_registry_t *reg) {
        if (!reg)
                return;
        if (reg->curl)
                curl_easy_cleanup(reg->curl);
        free(reg->base);
        free(reg->body);
        free(reg);
        /* curl_global_cleanup is left to process exit: other clients may
         * still be alive, and it is not thread-safe. */
}

itd_err_t itd_registry_fetch(itd_registry_t *reg, uint32_t id, char **schema,
                             char *errstr, size_t errstr_size) {
        char url[1024];
        long status = 0;
        *schema = NULL;
        snprintf(url, sizeof url, "%s/schemas/ids/%u", reg->base, id);
        reg->len = 0;
        reg->too_big = 0;
        curl_easy_setopt(reg->curl, CURLOPT_URL, url);
        CURLcode rc = curl_easy_perform(reg->curl);
        if (rc != CURLE_OK) {
                snprintf(errstr, errstr_size, "GET %s: %s", url,
                         reg->too_big ? "answer larger than 1 MiB"
                                      : curl_easy_strerror(rc));
                return ITD_ERR_IO;
        }
        curl_easy_getinfo(reg->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status == 404) {
                snprintf(errstr, errstr_size, "GET %s: 404 not found", url);
                return ITD_ERR_NOT_FOUND;
        }
        if (status != 200) {
                snprintf(errstr, errstr_size, "GET %s: HTTP status %ld", url,
                         status);
                return ITD_ERR_IO;
        }
        json_error_t jerr;
        json_t *root = json_loadb(reg->body ? reg->body : "", reg->len, 0,
                                  &jerr);
        json_t *s = root ? json_object_get(root, "schema") : NULL;
        json_t *type = root ? json_object_get(root, "schemaType") : NULL;
        itd_err_t err = ITD_ERR_PARSE;
        if (!json_is_string(s)) {
                snprintf(errstr, errstr_size,
                         "GET %s: answer is not {\"schema\": \"...\"}", url);
        } else if (type && !(json_is_string(type) &&
                             strcmp(json_string_value(type), "AVRO") == 0)) {
                snprintf(errstr, errstr_size,
                         "GET %s: schemaType is %s, not AVRO", url,
                         json_is_string(type) ? json_string_value(type)
                                              : "not a string");
        } else {
                *schema = itd_xstrdup(json_string_value(s));
                err = ITD_OK;
        }
        json_decref(root);
        return err;
}

#else /* !ITD_HAVE_CURL */

itd_registry_t *itd_registry_new(const char *url, char *errstr,
                                 size_t errstr_size) {
        snprintf(errstr, errstr_size,
                 "input.schema_registry.url \"%s\": intentd was built "
                 "without libcurl, so it cannot query a schema registry "
                 "(use input.schemas_dir)",
                 url);
        return NULL;
}

void itd_registry_destroy(itd_registry_t *reg) { (void)reg; }

itd_err_t itd_registry_fetch(itd_registry_t *reg, uint32_t id, char **schema,
                             char *errstr, size_t errstr_size) {
        (void)reg;
        *schema = NULL;
        snprintf(errstr, errstr_size, "schema id %u: no registry client", id);
        return ITD_ERR_IO;
}

#endif
