/*
 * registry_int.h - a minimal Confluent Schema Registry client: the one
 * request intentd needs, GET {url}/schemas/ids/{id}. Private to pipeline.
 */
#ifndef INTENTD_REGISTRY_INT_H
#define INTENTD_REGISTRY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"

typedef struct itd_registry_s itd_registry_t;

/**
 * @brief A client for the registry at url ("http://host:8081", https and
 * user:password@ in the URL work through libcurl). Calls
 * curl_global_init: main thread, before other threads start.
 * @returns the client (caller owns), or NULL with errstr (built without
 * libcurl, bad URL).
 */
itd_registry_t *itd_registry_new(const char *url, char *errstr,
                                 size_t errstr_size);
void itd_registry_destroy(itd_registry_t *reg);

/**
 * @brief Fetches the schema text registered under id.
 * @param schema  on ITD_OK a malloc'd NUL-terminated Avro schema (caller
 * frees).
 * @returns ITD_OK; ITD_ERR_NOT_FOUND on HTTP 404; ITD_ERR_PARSE if the
 * answer is not {"schema": "..."} or its schemaType is not AVRO;
 * ITD_ERR_IO on a network error, timeout (5 s) or other HTTP status.
 * @thread the client's owner (blocking).
 */
itd_err_t itd_registry_fetch(itd_registry_t *reg, uint32_t id, char **schema,
                             char *errstr, size_t errstr_size);

#endif
