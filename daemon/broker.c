/*
 * broker.c - librdkafka's mock cluster as intentd's embedded broker.
 *
 * The mock cluster lives inside a producer handle; its brokers listen on
 * 127.0.0.1 with random ports (2.0.2 cannot fix them), so the bootstrap
 * string is published for other processes.
 */
#include "broker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <string.h>

#include "intentd/log.h"
#include "intentd/mem.h"

struct itd_broker_s {
        rd_kafka_t *rk; /* owns the mock cluster */
        rd_kafka_mock_cluster_t *mcluster;
        char *bootstraps;
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
        (void)rk;
        itd_log(level, "broker", "%s: %s", fac, buf);
}

itd_broker_t *itd_broker_start(int n_brokers, int partitions,
                               const char *const *topics, size_t n_topics,
                               char *errstr, size_t errstr_size) {
        char why[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(kc, log_cb);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof why);
        if (!rk) {
                snprintf(errstr, errstr_size, "embedded broker: %s", why);
                rd_kafka_conf_destroy(kc);
                return NULL;
        }
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, n_brokers);
        if (!mc) {
                snprintf(errstr, errstr_size,
                         "embedded broker: cannot start %d mock brokers",
                         n_brokers);
                rd_kafka_destroy(rk);
                return NULL;
        }
        for (size_t i = 0; i < n_topics; i++) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    mc, topics[i], partitions,
                    n_brokers < 3 ? n_brokers : 3);
                if (err) {
                        snprintf(errstr, errstr_size,
                                 "embedded broker: topic \"%s\": %s",
                                 topics[i], rd_kafka_err2str(err));
                        rd_kafka_mock_cluster_destroy(mc);
                        rd_kafka_destroy(rk);
                        return NULL;
                }
        }
        itd_broker_t *b = itd_xcalloc(1, sizeof *b);
        b->rk = rk;
        b->mcluster = mc;
        b->bootstraps = itd_xstrdup(rd_kafka_mock_cluster_bootstraps(mc));
        return b;
}

const char *itd_broker_bootstraps(const itd_broker_t *broker) {
        return broker->bootstraps;
}

void itd_broker_stop(itd_broker_t *broker) {
        if (!broker)
                return;
        rd_kafka_mock_cluster_destroy(broker->mcluster);
        rd_kafka_destroy(broker->rk);
        free(broker->bootstraps);
        free(broker);
}
