/*
 * broker.h - the embedded Kafka broker: librdkafka's mock cluster on
 * loopback, for demos and tests. It keeps data in memory only, has no log
 * compaction, and its transactions are surface-only (see docs/ARCHITECTURE.md):
 * nothing intentd claims about durability is shown by it.
 */
#ifndef INTENTD_BROKER_H
#define INTENTD_BROKER_H

#include <stddef.h>

typedef struct itd_broker_s itd_broker_t;

/**
 * @brief Starts n_brokers mock brokers and creates each topic with
 * `partitions` partitions.
 * @returns the broker (caller owns; itd_broker_stop), or NULL with errstr.
 */
itd_broker_t *itd_broker_start(int n_brokers, int partitions,
                               const char *const *topics, size_t n_topics,
                               char *errstr, size_t errstr_size);

/** @brief "127.0.0.1:port,..." for bootstrap.servers; owned by broker. */
const char *itd_broker_bootstraps(const itd_broker_t *broker);

void itd_broker_stop(itd_broker_t *broker);

#endif
