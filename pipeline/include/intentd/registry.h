/*
 * registry.h - registering intentd's own schemas with a Confluent Schema
 * Registry, for the outputs (pipeline/registry.c). Look-ups of writer
 * schemas for the input go through the decoder (input.h).
 */
#ifndef INTENTD_REGISTRY_H
#define INTENTD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "intentd/err.h"

/**
 * @brief One registration (register_it 1: POST
 * {url}/subjects/{subject}/versions) or look-up (0: POST
 * {url}/subjects/{subject}) of schema, the Avro JSON text, with a client
 * made for the call. url may hold user:password@ or user_info may (not
 * both); timeout_ms bounds the request.
 * @returns ITD_OK with *id; ITD_ERR_CONF when retrying cannot help (bad
 * URL, refused credentials or permission, incompatible or invalid schema,
 * not registered on a look-up); ITD_ERR_IO when it may (unreachable,
 * timeout, 5xx, 429); ITD_ERR_PARSE for an answer without an id. why gets
 * one line, credentials redacted.
 * @thread any.
 */
itd_err_t itd_registry_register(const char *url, const char *user_info,
                                int64_t timeout_ms, const char *subject,
                                const char *schema, int register_it,
                                int32_t *id, char *why, size_t why_size);

#endif
