/*
 * conf.c - the daemon's configuration. One static option table (props[]
 * below) drives parsing, range checks, defaults, SIGHUP reload and the
 * generated docs/CONFIGURATION.md and config/intentd.yaml, so the reference
 * cannot drift from the code (STYLE.md section 5).
 *
 * Files are YAML, read with libyaml's document API. Nested maps and dotted
 * keys mix freely: `model: {learning.rate: 0.01}` is the same option as
 * `model.learning.rate: 0.01`. Everything below `kafka:` is joined with dots
 * and kept, in file order, for librdkafka. Every error names
 * file:line:column and the key, because a config error stops start-up and
 * the operator has to find the line.
 */
#include "intentd/conf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <librdkafka/rdkafka.h>
#include <yaml.h>

#include "intentd/codec.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/mlp.h"

#define SEC_MS 1000LL
#define MIN_MS (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

/* Enum options store the index of their symbol, so the symbol lists below
 * must follow the enums of the modules that read them. */
_Static_assert(ITD_INPUT_AVRO == 0 && ITD_INPUT_JSON == 1,
               "input.format symbols follow itd_input_format_t");
_Static_assert(ITD_FRAMING_AUTO == 0 && ITD_FRAMING_CONFLUENT == 1 &&
                   ITD_FRAMING_BARE == 2,
               "input.framing symbols follow itd_framing_t");
_Static_assert(ITD_MODEL_MLP == 0 && ITD_MODEL_LOGISTIC == 1,
               "model.type symbols follow itd_model_type_t");
_Static_assert(ITD_OPT_SGD == 0 && ITD_OPT_ADAGRAD == 1 && ITD_OPT_ADAM == 2,
               "model.optimizer symbols follow itd_opt_t");
_Static_assert(ITD_LOG_EMERG == 0 && ITD_LOG_DEBUG == 7,
               "log.level symbols follow ITD_LOG_*");
_Static_assert(ITD_CONF_LIST_MAX >= 8, "windows.spans takes up to 8 entries");
_Static_assert(ITD_MLP_MAX_HIDDEN >= 4, "model.hidden takes up to 4 layers");

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
};

/* Offsets that fail to compile when the field has another C type than the
 * option type stores, so a table row cannot write an int64_t into an int. */
#define F_STR(f) _Generic(((itd_conf_t *)0)->f, char *: offsetof(itd_conf_t, f))
#define F_I64(f)                                                          \
        _Generic(((itd_conf_t *)0)->f, int64_t: offsetof(itd_conf_t, f))
#define F_INT(f) _Generic(((itd_conf_t *)0)->f, int: offsetof(itd_conf_t, f))
#define F_DBL(f)                                                          \
        _Generic(((itd_conf_t *)0)->f, double: offsetof(itd_conf_t, f))
#define F_LIST(f)                                                         \
        _Generic(((itd_conf_t *)0)->f, int64_t *: offsetof(itd_conf_t, f))
#define F_CNT(f)                                                          \
        _Generic(((itd_conf_t *)0)->f, size_t: offsetof(itd_conf_t, f))

static const char *const syms_format[] = {"avro", "json", NULL};
static const char *const syms_framing[] = {"auto", "confluent", "bare", NULL};
static const char *const syms_model[] = {"mlp", "logistic", NULL};
static const char *const syms_opt[] = {"sgd", "adagrad", "adam", NULL};
static const char *const syms_policy[] = {"wait", "fake_negative", NULL};
static const char *const syms_level[] = {"emerg",  "alert", "crit",
                                         "err",    "warning", "notice",
                                         "info",   "debug", NULL};

static const struct prop props[] = {
    /* topics */
    {.name = "topics.events", .type = PT_STRING, .off = F_STR(topic_events),
     .min = 1, .max = 249, .topic = true, .def = "intentd.events",
     .help = "Topic the shopper events are consumed from, keyed by user id. "
             "Values are Avro or JSON, see `input.format`."},
    {.name = "topics.predictions", .type = PT_STRING,
     .off = F_STR(topic_predictions), .min = 1, .max = 249, .topic = true,
     .def = "intentd.predictions",
     .help = "Topic one prediction record per scored event is produced to "
             "(Avro, `config/prediction.avsc`), keyed by user id."},
    {.name = "topics.triggers", .type = PT_STRING,
     .off = F_STR(topic_triggers), .min = 1, .max = 249, .topic = true,
     .def = "intentd.triggers",
     .help = "Topic a trigger record is produced to when a user's "
             "purchase-intent score crosses a trigger threshold, for "
             "marketing systems that react to live intent."},
    {.name = "topics.dead_letter", .type = PT_STRING,
     .off = F_STR(topic_dead_letter), .min = 1, .max = 249, .topic = true,
     .def = "intentd.dead_letter",
     .help = "Topic events that cannot be decoded or fail validation are "
             "copied to, bytes unchanged, with headers naming the reason, "
             "source topic, partition and offset."},

    /* input, output */
    {.name = "input.format", .type = PT_ENUM, .off = F_INT(input_format),
     .syms = syms_format, .def = "avro",
     .help = "Encoding of event values: `avro` (schema "
             "`config/event.avsc`, framing per `input.framing`) or `json` "
             "(one JSON object with the same field names)."},
    {.name = "input.framing", .type = PT_ENUM, .off = F_INT(input_framing),
     .syms = syms_framing, .def = "auto",
     .help = "Framing of Avro event values: `confluent` expects the "
             "Confluent wire format (magic byte 0 and a 4-byte schema id), "
             "`bare` plain Avro binary, `auto` takes the Confluent header "
             "when byte 0 is 0 and the rest decodes, else bare Avro."},
    {.name = "input.schemas_dir", .type = PT_STRING,
     .off = F_STR(input_schemas_dir), .min = 0, .max = 4095, .def = "",
     .help = "Folder of Avro writer schemas for Confluent-framed events, "
             "one file per schema id named `<id>.avsc` (or `<id>`). Looked "
             "up before `input.schema_registry.url`. With neither set, every "
             "schema id is read with the built-in `config/event.avsc`. "
             "Writer schemas resolve to that reader schema by the rules in "
             "docs/SCHEMAS.md; an id found nowhere dead-letters its events "
             "as `unknown_schema_id`."},
    {.name = "input.schema_registry.url", .type = PT_STRING,
     .off = F_STR(input_schema_registry_url), .min = 0, .max = 1023,
     .def = "",
     .help = "Base URL of a Confluent Schema Registry (`http://host:8081`; "
             "https and `user:password@` work). Schema ids not in "
             "`input.schemas_dir` are fetched once with GET "
             "`/schemas/ids/{id}` and cached; failed look-ups are retried "
             "after 30 s, and at most 10 requests are made per second. "
             "Empty: no registry."},
    {.name = "input.max_future", .type = PT_DURATION,
     .off = F_I64(input_max_future_ms), .min = SEC_MS, .max = 365 * DAY_MS,
     .def = "1h",
     .help = "Events whose `ts` is further than this ahead of the wall clock "
             "are dead-lettered as `ts_in_future` (events before 2000-01-01 "
             "always are, as `ts_too_old`): one bad clock must not move the "
             "watermark and resolve every pending label."},
    {.name = "input.max_string_bytes", .type = PT_INT,
     .off = F_I64(input_max_string_bytes), .min = 1, .max = 127,
     .def = "63", .unit = "bytes",
     .help = "Longest string field accepted, in bytes; longer ones are "
             "dead-lettered as `string_too_long`, never cut (a cut id would "
             "merge two users). Ids (`user_id`, `event_id`, `item_id`, "
             "`category`, `session_id`) are capped at 63 bytes whatever the "
             "setting, `query` at 127: raise this to 127 to accept long "
             "search queries."},
    {.name = "input.max_message_bytes", .type = PT_INT,
     .off = F_I64(input_max_message_bytes), .min = 64, .max = 16777216,
     .def = "65536", .unit = "bytes",
     .help = "Largest event value accepted, framing header included; "
             "larger ones are dead-lettered as `message_too_large` without "
             "being parsed."},
    {.name = "output.schema_id", .type = PT_INT,
     .off = F_I64(output_schema_id), .min = -1, .max = 2147483647,
     .def = "-1",
     .help = "Schema registry id written in the Confluent header of the "
             "produced Avro records; -1 produces bare Avro without a "
             "header."},

    /* triggers (rules: include/intentd/trigger.h, docs/SCHEMAS.md) */
    {.name = "triggers.enter", .type = PT_DOUBLE, .off = F_DBL(triggers_enter),
     .dmin = 0, .dmax = 1, .def = "0.5",
     .help = "A user's trigger fires (direction `UP` on `topics.triggers`) "
             "when a prediction's `purchase_probability` is at or above "
             "this while the user is armed and out of cool-down. Firing "
             "disarms the user."},
    {.name = "triggers.exit", .type = PT_DOUBLE, .off = F_DBL(triggers_exit),
     .dmin = 0, .dmax = 1, .def = "0.3",
     .help = "A disarmed user is re-armed (a `DOWN` record) when a score "
             "falls below this, so a score hovering around "
             "`triggers.enter` fires once (hysteresis). Must not exceed "
             "`triggers.enter`."},
    {.name = "triggers.cooldown", .type = PT_DURATION,
     .off = F_I64(triggers_cooldown_ms), .min = 0, .max = 7 * DAY_MS,
     .def = "1h",
     .help = "Least event time between two `UP` triggers of one user; a "
             "crossing inside it is held back until the first event after "
             "it that still scores at or above `triggers.enter`. Measured "
             "in event time, so replays and backlogs behave like the live "
             "stream."},
    {.name = "triggers.max_users", .type = PT_INT,
     .off = F_I64(triggers_max_users), .min = 1, .max = 100000000,
     .def = "1000000", .unit = "users",
     .help = "Users whose trigger state (armed flag, last firing) is "
             "remembered, per assigned partition; only users who have "
             "fired are kept (32 bytes each). Beyond it the least recently "
             "seen is forgotten and comes back armed and out of "
             "cool-down."},

    /* windows, session, state */
    {.name = "windows.spans", .type = PT_DURATION_LIST,
     .off = F_LIST(windows_ms), .count_off = F_CNT(n_windows),
     .min = SEC_MS, .max = 30 * DAY_MS, .nmin = 1, .nmax = 8,
     .ascending = true, .def = "5m,1h,24h,7d",
     .help = "Spans of the rolling per-user feature windows in event time, "
             "ascending; each window adds its own counts and rates to the "
             "features. They shape the model input, so a checkpoint made "
             "with other spans does not load."},
    {.name = "windows.allowed_lateness", .type = PT_DURATION,
     .off = F_I64(windows_allowed_lateness_ms), .min = 0, .max = HOUR_MS,
     .def = "5s",
     .help = "Out-of-order tolerance: the watermark trails the newest event "
             "time seen by this much. Events older than the watermark count "
             "as late; a pending prediction resolves as negative only once "
             "the watermark passes its horizon."},
    {.name = "session.gap", .type = PT_DURATION, .off = F_I64(session_gap_ms),
     .min = MIN_MS, .max = DAY_MS, .def = "30m",
     .help = "Inactivity after which a user's next event starts a new "
             "session; session features restart from zero."},
    {.name = "state.idle_ttl", .type = PT_DURATION,
     .off = F_I64(state_idle_ttl_ms), .min = HOUR_MS, .max = 90 * DAY_MS,
     .def = "7d",
     .help = "Per-user state untouched for this long in event time is "
             "dropped, so users who never return do not hold memory."},
    {.name = "state.max_users", .type = PT_INT, .off = F_I64(state_max_users),
     .min = 1, .max = 1000000000, .def = "5000000", .unit = "users",
     .help = "Upper bound on users with state in memory, per assigned "
             "partition (state is kept per partition so it can be "
             "checkpointed and handed over); beyond it the least recently "
             "active user is evicted. With `state.idle_ttl` it bounds the "
             "daemon's memory: about 256 bytes per user."},

    /* labels */
    {.name = "labels.horizon", .type = PT_DURATION,
     .off = F_I64(labels_horizon_ms), .min = MIN_MS, .max = 7 * DAY_MS,
     .def = "30m",
     .help = "Label horizon: a prediction made at event time t is positive "
             "if the user purchases in (t, t + horizon], negative once the "
             "watermark passes t + horizon. `purchase_probability` is the "
             "probability of a purchase within this horizon."},
    {.name = "labels.max_pending", .type = PT_INT,
     .off = F_I64(labels_max_pending), .min = 1000, .max = 100000000,
     .def = "1000000", .unit = "predictions",
     .help = "Most predictions waiting for their label at once, per "
             "assigned partition (each partition labels against its own "
             "watermark). The pool grows on demand up to this. When it is "
             "full, the batch waits instead of dropping a label; size it "
             "above the events a partition sees within `labels.horizon` "
             "plus `windows.allowed_lateness`."},
    {.name = "labels.policy", .type = PT_ENUM, .off = F_INT(labels_policy),
     .syms = syms_policy, .def = "wait",
     .help = "`wait`: learn from a prediction once its label is known "
             "(after `labels.horizon` for a negative). `fake_negative` "
             "(Ktena et al. 2019): learn it at once as a negative and once "
             "more as a positive if the purchase arrives within the "
             "horizon; fresher, but the purchase probability is biased "
             "low (no importance weighting). Progressive metrics judge "
             "each prediction once, with its true label (docs/MODEL.md)."},

    /* model */
    {.name = "model.type", .type = PT_ENUM, .off = F_INT(model_type),
     .syms = syms_model, .def = "mlp",
     .help = "`mlp`: the neural network with hashed embeddings and a "
             "next-action head; `logistic`: a logistic-regression baseline "
             "on the same features (`model.hidden` is ignored)."},
    {.name = "model.hidden", .type = PT_INT_LIST, .off = F_LIST(model_hidden),
     .count_off = F_CNT(n_model_hidden), .min = 1, .max = 4096, .nmin = 1,
     .nmax = 4, .def = "128,64", .unit = "units",
     .help = "Widths of the MLP's hidden ReLU layers, from the input "
             "side. Part of the model's shape: a checkpoint made with other "
             "widths does not load."},
    {.name = "model.embedding.buckets", .type = PT_INT,
     .off = F_I64(model_embedding_buckets), .min = 16, .max = 16777216,
     .def = "65536", .unit = "rows",
     .help = "Rows of each hashed embedding table (categories, items, query "
             "tokens; ids are taken modulo this). More rows mean fewer "
             "collisions and more memory: rows x dim floats per table."},
    {.name = "model.embedding.dim", .type = PT_INT,
     .off = F_I64(model_embedding_dim), .min = 0, .max = 128, .def = "8",
     .unit = "floats",
     .help = "Width of each embedding row; 0 disables the hashed sparse "
             "features and leaves the dense ones."},
    {.name = "model.optimizer", .type = PT_ENUM, .off = F_INT(model_optimizer),
     .syms = syms_opt, .def = "adam",
     .help = "Update rule: `sgd`, `adagrad` (Duchi et al. 2011) or `adam` "
             "(Kingma & Ba 2015)."},
    {.name = "model.learning.rate", .type = PT_DOUBLE,
     .off = F_DBL(model_learning_rate), .dmin = 0, .dmin_excl = true,
     .dmax = 1, .def = "0.0003", .reloadable = true,
     .help = "Step size of the optimizer. Below Adam's usual 0.001, whose "
             "steps add noise where data is scarce (on the simulator and "
             "on Taobao's least active users 0.0003 scored a higher "
             "progressive AUC). On SIGHUP a new value applies from the "
             "next training step."},
    {.name = "model.l2", .type = PT_DOUBLE, .off = F_DBL(model_l2), .dmin = 0,
     .dmax = 1, .def = "1e-6",
     .help = "L2 weight decay on the weights (not the biases)."},
    {.name = "model.batch.size", .type = PT_INT,
     .off = F_I64(model_batch_size), .min = 1, .max = 256, .def = "64",
     .unit = "examples",
     .help = "Resolved examples per training step (mini-batch)."},
    {.name = "model.seed", .type = PT_INT, .off = F_I64(model_seed), .min = 0,
     .max = INT64_C(4611686018427387904), .def = "42",
     .help = "Seed of the weight initialisation; the same seed, "
             "configuration and events give the same model."},
    {.name = "model.loss.weight.next", .type = PT_DOUBLE,
     .off = F_DBL(model_loss_weight_next), .dmin = 0, .dmax = 10,
     .def = "0.3",
     .help = "Weight of the next-action head's cross-entropy in the "
             "training loss, relative to the purchase head's log loss; 0 "
             "trains the purchase head alone."},
    {.name = "model.wide.learning.rate", .type = PT_DOUBLE,
     .off = F_DBL(model_wide_learning_rate), .dmin = 0, .dmax = 1,
     .def = "0.01",
     .help = "MLP: step size of the wide path, a linear model over the "
             "standardised dense features added to the network's purchase "
             "logit (weights by SGD, the purchase bias by AdaGrad). It "
             "learns the purchase history within the first thousands of "
             "examples while the network catches up; 0 removes the path."},
    {.name = "model.embedding.learning.rate", .type = PT_DOUBLE,
     .off = F_DBL(model_embedding_learning_rate), .dmin = 0, .dmax = 1,
     .def = "0.1",
     .help = "MLP: step size of the hashed embedding rows (a row learns "
             "only in the steps whose batch holds its id, so it steps "
             "larger than the dense layers); 0 = model.learning.rate."},
    {.name = "model.inputs.standardize", .type = PT_BOOL,
     .off = F_INT(model_inputs_standardize), .def = "true",
     .help = "MLP: the wide path reads every dense feature scaled to "
             "zero mean and unit variance (clipped to +-3) with running "
             "statistics of the training examples, kept in checkpoints. "
             "Part of the model's shape: a checkpoint made with the other "
             "setting does not load."},

    /* predict, metrics, log, shutdown */
    {.name = "predict.threshold", .type = PT_DOUBLE,
     .off = F_DBL(predict_threshold), .dmin = 0, .dmax = 1, .def = "0.2",
     .reloadable = true,
     .help = "Decision threshold on `purchase_probability` for the "
             "accuracy, precision, recall and F1 reported in logs, metrics "
             "and the run summary. It does not change the published "
             "scores."},
    {.name = "metrics.log.interval", .type = PT_DURATION,
     .off = F_I64(metrics_log_interval_ms), .min = SEC_MS, .max = HOUR_MS,
     .def = "10s", .reloadable = true,
     .help = "How often a progress line (throughput, lag, AUC, log loss) "
             "is logged."},
    {.name = "metrics.listen", .type = PT_STRING, .off = F_STR(metrics_listen),
     .min = 0, .max = 255, .def = "127.0.0.1:9464",
     .help = "Address of the HTTP endpoint serving /metrics (Prometheus "
             "text format), /livez and /readyz: `host:port`, `[v6]:port`, "
             "or `:port` for every IPv4 address. Empty turns the endpoint "
             "off."},
    {.name = "health.liveness.timeout", .type = PT_DURATION,
     .off = F_I64(health_liveness_timeout_ms), .min = SEC_MS,
     .max = 10 * MIN_MS, .def = "10s",
     .help = "/livez answers 503 when the main loop has not turned for this "
             "long."},
    {.name = "output.max_in_flight", .type = PT_INT,
     .off = F_I64(output_max_in_flight), .min = 1000, .max = 10000000,
     .def = "200000",
     .help = "Outputs (predictions, dead letters) produced but not yet "
             "acknowledged by the broker before consumption pauses; it "
             "resumes below a quarter of this. Back-pressure: nothing is "
             "dropped, and polling goes on so the group keeps us."},
    {.name = "log.level", .type = PT_ENUM, .off = F_INT(log_level),
     .syms = syms_level, .def = "info", .reloadable = true,
     .help = "Most verbose syslog level written to stderr."},
    {.name = "log.format", .type = PT_ENUM, .off = F_INT(log_format),
     /* index = itd_conf_log_format_t (conf.h) */
     .syms = (const char *const[]){"auto", "plain", "journal", "json", NULL},
     .def = "auto",
     .help = "How stderr lines look. `journal`: a `<N>` syslog priority "
             "prefix that journald turns into the level; `plain`: "
             "`intentd LEVEL FACILITY: message` for a terminal; `json`: one "
             "object per line (level, facility, message) for log shippers; "
             "`auto`: `journal` when stderr is journald's stream "
             "(JOURNAL_STREAM is set), else `plain`. Not reloadable: a "
             "format change mid-stream would confuse the log parser."},
    {.name = "shutdown.timeout", .type = PT_DURATION,
     .off = F_I64(shutdown_timeout_ms), .min = SEC_MS, .max = 10 * MIN_MS,
     .def = "30s",
     .help = "On SIGTERM, time allowed to finish in-flight work, flush the "
             "producer and commit offsets before exiting anyway."},

    /* checkpoints (docs/CHECKPOINTS.md) */
    {.name = "checkpoint.dir", .type = PT_STRING, .off = F_STR(checkpoint_dir),
     .min = 0, .max = 4095, .def = "auto",
     .help = "Folder of the checkpoints: per assigned partition its user "
             "state, pending labels, watermark and next offset, plus the "
             "model and optimizer state. On start the newest complete one "
             "is restored and consumption resumes where it was cut; offsets "
             "committed to Kafka never run ahead of it. `auto` uses "
             "`$STATE_DIRECTORY` (set by the systemd unit to "
             "/var/lib/intentd) and turns checkpoints off when it is unset; "
             "empty turns them off. See docs/CHECKPOINTS.md."},
    {.name = "checkpoint.interval", .type = PT_DURATION,
     .off = F_I64(checkpoint_interval_ms), .min = SEC_MS, .max = DAY_MS,
     .def = "60s",
     .help = "Time between checkpoints (one more is written at stop and on "
             "partition revoke). Events after the last checkpoint are "
             "consumed again after a crash, so this bounds the replay."},
    {.name = "checkpoint.keep", .type = PT_INT, .off = F_I64(checkpoint_keep),
     .min = 2, .max = 100, .def = "2", .unit = "checkpoints",
     .help = "Complete checkpoints kept. The newest is restored; when it is "
             "damaged or refused the next older one is used. An old one is "
             "removed only after a newer one is complete."},
};

#define N_PROPS (sizeof props / sizeof props[0])

/* Headings of the generated docs, one per first name segment. */
static const struct {
        const char *prefix;
        const char *title;
} groups[] = {
    {"topics", "Kafka topics"},
    {"input", "Event input"},
    {"output", "Prediction output"},
    {"triggers", "Marketing triggers"},
    {"windows", "Feature windows"},
    {"session", "Sessions"},
    {"state", "Per-user state"},
    {"labels", "Delayed labels"},
    {"model", "Model and training"},
    {"predict", "Prediction quality"},
    {"metrics", "Metrics"},
    {"health", "Health"},
    {"log", "Logging"},
    {"shutdown", "Shutdown"},
    {"checkpoint", "Checkpoints"},
};

static const char *const kafka_help =
    "Every key under `kafka:` is handed to librdkafka with the `kafka.` "
    "prefix stripped, in file order (a later duplicate replaces the earlier "
    "value), so librdkafka's CONFIGURATION.md applies. Nested maps are "
    "joined with dots: `kafka: {bootstrap: {servers: ...}}` is "
    "`bootstrap.servers`. A list value is joined with commas. Unknown "
    "properties and bad values are reported at load time, with the line.";

/* ------------------------------------------------------------------ */
/* small helpers */

static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...) {
        if (!errstr || errstr_size == 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
}

/* Appends to a NUL-terminated buffer; output past cap is cut. */
static void append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t cap, const char *fmt, ...) {
        if (!buf || cap == 0)
                return;
        size_t len = strlen(buf);
        if (len + 1 >= cap)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf + len, cap - len, fmt, ap);
        va_end(ap);
}

static bool is_list(const struct prop *p) {
        return p->type == PT_DURATION_LIST || p->type == PT_INT_LIST;
}

/* The type of one list entry, or the type itself for scalars. */
static prop_type_t elem_type(const struct prop *p) {
        if (p->type == PT_DURATION_LIST)
                return PT_DURATION;
        if (p->type == PT_INT_LIST)
                return PT_INT;
        return p->type;
}

static void *field(itd_conf_t *conf, const struct prop *p) {
        return (char *)conf + p->off;
}

static const void *cfield(const itd_conf_t *conf, const struct prop *p) {
        return (const char *)conf + p->off;
}

static size_t *count_field(itd_conf_t *conf, const struct prop *p) {
        return (size_t *)(void *)((char *)conf + p->count_off);
}

static size_t ccount_field(const itd_conf_t *conf, const struct prop *p) {
        return *(const size_t *)(const void *)((const char *)conf +
                                                p->count_off);
}

static const struct prop *prop_find(const char *name) {
        for (size_t i = 0; i < N_PROPS; i++)
                if (strcmp(props[i].name, name) == 0)
                        return &props[i];
        return NULL;
}

/* 1 if some option lives below `prefix.` (so `prefix: {...}` is a group). */
static bool prefix_known(const char *prefix) {
        size_t n = strlen(prefix);
        for (size_t i = 0; i < N_PROPS; i++)
                if (strncmp(props[i].name, prefix, n) == 0 &&
                    props[i].name[n] == '.')
                        return true;
        return false;
}

static const char *type_name(const struct prop *p) {
        switch (p->type) {
        case PT_STRING: return "string";
        case PT_INT: return "integer";
        case PT_DOUBLE: return "number";
        case PT_BOOL: return "boolean";
        case PT_DURATION: return "duration";
        case PT_ENUM: return "enum";
        case PT_DURATION_LIST: return "duration list";
        case PT_INT_LIST: return "integer list";
        }
        return "?";
}

static char *trim(char *s) {
        while (isspace((unsigned char)*s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1]))
                s[--n] = '\0';
        return s;
}

/* ------------------------------------------------------------------ */
/* durations */

static const struct {
        int64_t ms;
        const char *unit;
} dur_units[] = {
    {DAY_MS, "d"}, {HOUR_MS, "h"}, {MIN_MS, "m"}, {SEC_MS, "s"}, {1, "ms"}};

itd_err_t itd_duration_parse(const char *s, int64_t *ms) {
        if (!s || !ms)
                return ITD_ERR_ARG;
        const char *c = s;
        if (!isdigit((unsigned char)*c))
                return ITD_ERR_PARSE;
        int64_t n = 0;
        bool overflow = false;
        for (; isdigit((unsigned char)*c); c++) {
                int d = *c - '0';
                if (n > (INT64_MAX - d) / 10)
                        overflow = true;
                else
                        n = n * 10 + d;
        }
        int64_t factor = 0;
        if (*c == '\0') {
                factor = 1; /* a bare integer is milliseconds */
        } else {
                for (size_t i = 0; i < sizeof dur_units / sizeof dur_units[0];
                     i++)
                        if (strcmp(c, dur_units[i].unit) == 0)
                                factor = dur_units[i].ms;
        }
        if (factor == 0)
                return ITD_ERR_PARSE;
        if (overflow || n > INT64_MAX / factor)
                return ITD_ERR_RANGE;
        *ms = n * factor;
        return ITD_OK;
}

const char *itd_duration_format(int64_t ms, char *buf, size_t cap) {
        if (!buf || cap == 0)
                return buf;
        if (ms == 0) {
                snprintf(buf, cap, "0s");
                return buf;
        }
        /* Unsigned magnitude so INT64_MIN does not overflow on negation. */
        uint64_t mag = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
        for (size_t i = 0; i < sizeof dur_units / sizeof dur_units[0]; i++) {
                uint64_t f = (uint64_t)dur_units[i].ms;
                if (mag % f == 0) {
                        snprintf(buf, cap, "%s%" PRIu64 "%s", ms < 0 ? "-" : "",
                                 mag / f, dur_units[i].unit);
                        break;
                }
        }
        return buf;
}

/* ------------------------------------------------------------------ */
/* parsing and checking one value */

/* Decimal integer, optional sign, `_` allowed between digits (YAML 1.1). */
static bool parse_int(const char *s, int64_t *out) {
        const char *c = s;
        bool neg = false;
        if (*c == '+' || *c == '-')
                neg = *c++ == '-';
        if (!isdigit((unsigned char)*c))
                return false;
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        uint64_t n = 0;
        for (; *c; c++) {
                if (*c == '_' && isdigit((unsigned char)c[-1]) &&
                    isdigit((unsigned char)c[1]))
                        continue;
                if (!isdigit((unsigned char)*c))
                        return false;
                unsigned d = (unsigned)(*c - '0');
                if (n > (limit - d) / 10)
                        return false;
                n = n * 10 + d;
        }
        *out = neg ? (int64_t)(0 - n) : (int64_t)n;
        return true;
}

static bool parse_double(const char *s, double *out) {
        if (!*s)
                return false;
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (*end != '\0' || errno == ERANGE || !isfinite(d))
                return false;
        *out = d;
        return true;
}

static bool parse_bool(const char *s, int *out) {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        for (size_t i = 0; i < 4; i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *out = 1;
                        return true;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *out = 0;
                        return true;
                }
        }
        return false;
}

/* Kafka's topic rule: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
static bool topic_ok(const char *s) {
        if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_' &&
                    *c != '-')
                        return false;
        return true;
}

static void syms_text(const struct prop *p, char *buf, size_t cap) {
        buf[0] = '\0';
        for (size_t i = 0; p->syms[i]; i++)
                append(buf, cap, "%s%s", i ? ", " : "", p->syms[i]);
}

/* The allowed values of one entry, as people read them ("1s..30d"). */
static void range_text(const struct prop *p, char *buf, size_t cap) {
        char a[32], b[32];
        switch (elem_type(p)) {
        case PT_STRING:
                snprintf(buf, cap, "%" PRId64 "..%" PRId64 " characters%s",
                         p->min, p->max,
                         p->topic ? " of a-z A-Z 0-9 . _ -" : "");
                break;
        case PT_INT:
                snprintf(buf, cap, "%" PRId64 "..%" PRId64, p->min, p->max);
                break;
        case PT_DURATION:
                snprintf(buf, cap, "%s..%s",
                         itd_duration_format(p->min, a, sizeof a),
                         itd_duration_format(p->max, b, sizeof b));
                break;
        case PT_DOUBLE:
                snprintf(buf, cap, "%s%g..%g", p->dmin_excl ? ">" : "",
                         p->dmin, p->dmax);
                break;
        case PT_BOOL:
                snprintf(buf, cap, "true, false");
                break;
        case PT_ENUM:
                syms_text(p, buf, cap);
                break;
        default:
                buf[0] = '\0';
        }
}

union val {
        int64_t i; /* int, duration */
        double d;
        int e;     /* enum, bool */
};

/*
 * Parses and range-checks one entry (a scalar option's value or one list
 * entry). `what` names it in the message: the option, or "entry 2".
 */
static itd_err_t check_value(const struct prop *p, const char *text,
                             const char *what, union val *v, char *errstr,
                             size_t errstr_size) {
        char range[160];
        range_text(p, range, sizeof range);
        bool in_range = true;
        switch (elem_type(p)) {
        case PT_STRING: {
                size_t n = strlen(text);
                if ((int64_t)n < p->min || (int64_t)n > p->max) {
                        seterr(errstr, errstr_size,
                               "%s: \"%.64s\" has %zu characters, allowed "
                               "%s",
                               what, text, n, range);
                        return ITD_ERR_CONF;
                }
                if (p->topic && !topic_ok(text)) {
                        seterr(errstr, errstr_size,
                               "%s: \"%.64s\" is not a valid Kafka topic name "
                               "(%s)",
                               what, text, range);
                        return ITD_ERR_CONF;
                }
                return ITD_OK;
        }
        case PT_INT:
                if (!parse_int(text, &v->i)) {
                        seterr(errstr, errstr_size,
                               "%s: \"%.64s\" is not an integer", what, text);
                        return ITD_ERR_CONF;
                }
                in_range = v->i >= p->min && v->i <= p->max;
                break;
        case PT_DURATION: {
                itd_err_t err = itd_duration_parse(text, &v->i);
                if (err == ITD_ERR_RANGE) {
                        in_range = false;
                } else if (err) {
                        seterr(errstr, errstr_size,
                               "%s: \"%.64s\" is not a duration (500ms, 10s, "
                               "30m, 24h, 7d; a bare integer is ms)",
                               what, text);
                        return ITD_ERR_CONF;
                } else {
                        in_range = v->i >= p->min && v->i <= p->max;
                }
                break;
        }
        case PT_DOUBLE:
                if (!parse_double(text, &v->d)) {
                        seterr(errstr, errstr_size,
                               "%s: \"%.64s\" is not a finite number", what,
                               text);
                        return ITD_ERR_CONF;
                }
                in_range = (p->dmin_excl ? v->d > p->dmin : v->d >= p->dmin) &&
                           v->d <= p->dmax;
                break;
        case PT_BOOL:
                if (!parse_bool(text, &v->e)) {
                        seterr(errstr, errstr_size,
                               "%s: \"%.64s\" is not true or false", what,
                               text);
                        return ITD_ERR_CONF;
                }
                break;
        case PT_ENUM:
                for (int i = 0; p->syms[i]; i++) {
                        if (strcasecmp(text, p->syms[i]) == 0) {
                                v->e = i;
                                return ITD_OK;
                        }
                }
                seterr(errstr, errstr_size, "%s: \"%.64s\" is not one of %s",
                       what, text, range);
                return ITD_ERR_CONF;
        default:
                return ITD_ERR_CONF;
        }
        if (!in_range) {
                seterr(errstr, errstr_size, "%s: \"%.64s\" is outside %s", what,
                       text, range);
                return ITD_ERR_CONF;
        }
        return ITD_OK;
}

/*
 * Sets p from n entries of text (n == 1 for scalars). Nothing changes
 * unless every entry is valid. On error *bad is the entry at fault (n when
 * the count itself is wrong), for the YAML loader to point at.
 */
static itd_err_t prop_set(itd_conf_t *conf, const struct prop *p,
                          const char *const *items, size_t n, size_t *bad,
                          char *errstr, size_t errstr_size) {
        *bad = n;
        if (!is_list(p)) {
                if (n != 1) {
                        seterr(errstr, errstr_size,
                               "%s: expected a single %s, got %zu values",
                               p->name, type_name(p), n);
                        return ITD_ERR_CONF;
                }
                union val v;
                *bad = 0;
                itd_err_t err =
                    check_value(p, items[0], p->name, &v, errstr, errstr_size);
                if (err)
                        return err;
                switch (p->type) {
                case PT_STRING: {
                        char **s = field(conf, p);
                        free(*s);
                        *s = itd_xstrdup(items[0]);
                        break;
                }
                case PT_INT:
                case PT_DURATION:
                        *(int64_t *)field(conf, p) = v.i;
                        break;
                case PT_DOUBLE:
                        *(double *)field(conf, p) = v.d;
                        break;
                default: /* PT_BOOL, PT_ENUM */
                        *(int *)field(conf, p) = v.e;
                }
                return ITD_OK;
        }

        if (n < p->nmin || n > p->nmax) {
                seterr(errstr, errstr_size,
                       "%s: %zu entries given, it takes %zu..%zu", p->name, n,
                       p->nmin, p->nmax);
                return ITD_ERR_CONF;
        }
        int64_t vals[ITD_CONF_LIST_MAX];
        for (size_t i = 0; i < n; i++) {
                char what[160];
                union val v;
                snprintf(what, sizeof what, "%s entry %zu", p->name, i + 1);
                *bad = i;
                itd_err_t err =
                    check_value(p, items[i], what, &v, errstr, errstr_size);
                if (err)
                        return err;
                if (p->ascending && i > 0 && v.i <= vals[i - 1]) {
                        seterr(errstr, errstr_size,
                               "%s: \"%.64s\" is not greater than the entry "
                               "before (\"%.64s\"); entries must be strictly "
                               "ascending",
                               what, items[i], items[i - 1]);
                        return ITD_ERR_CONF;
                }
                vals[i] = v.i;
        }
        memcpy(field(conf, p), vals, n * sizeof vals[0]);
        *count_field(conf, p) = n;
        return ITD_OK;
}

/* Sets p from one text: lists are comma-separated, optionally in [ ]. */
static itd_err_t prop_set_text(itd_conf_t *conf, const struct prop *p,
                               const char *text, char *errstr,
                               size_t errstr_size) {
        char *copy = itd_xstrdup(text);
        char *s = trim(copy);
        size_t bad;
        itd_err_t err;
        if (!is_list(p)) {
                const char *item = s;
                err = prop_set(conf, p, &item, 1, &bad, errstr, errstr_size);
                free(copy);
                return err;
        }
        size_t len = strlen(s);
        if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
                s[len - 1] = '\0';
                s = trim(s + 1);
        }
        size_t n = 1;
        for (const char *c = s; *c; c++)
                n += *c == ',';
        const char **items = itd_xcalloc(n, sizeof *items);
        n = 0;
        for (char *tok = s, *next; tok; tok = next) {
                next = strchr(tok, ',');
                if (next)
                        *next++ = '\0';
                items[n++] = trim(tok);
        }
        /* "" is no entry at all; "5m,,1h" has an empty one. */
        if (n == 1 && items[0][0] == '\0')
                n = 0;
        for (size_t i = 0; i < n; i++) {
                if (items[i][0] == '\0') {
                        seterr(errstr, errstr_size, "%s: entry %zu is empty",
                               p->name, i + 1);
                        free(items);
                        free(copy);
                        return ITD_ERR_CONF;
                }
        }
        err = prop_set(conf, p, items, n, &bad, errstr, errstr_size);
        free(items);
        free(copy);
        return err;
}

/* ------------------------------------------------------------------ */
/* kafka pass-through */

/*
 * Asks librdkafka whether it knows the property and likes the value, so a
 * typo is reported with its line at load time instead of at rd_kafka_new.
 * plugin.library.paths is not tried: setting it loads the plugins.
 */
static itd_err_t kafka_check(const char *key, const char *value, char *errstr,
                             size_t errstr_size) {
        if (strcmp(key, "plugin.library.paths") == 0)
                return ITD_OK;
        char why[512];
        rd_kafka_conf_t *rk_conf = rd_kafka_conf_new();
        rd_kafka_conf_res_t res =
            rd_kafka_conf_set(rk_conf, key, value, why, sizeof why);
        rd_kafka_conf_destroy(rk_conf);
        if (res != RD_KAFKA_CONF_OK) {
                seterr(errstr, errstr_size, "kafka.%s: librdkafka: %s", key,
                       why);
                return ITD_ERR_CONF;
        }
        return ITD_OK;
}

static itd_err_t kafka_set(itd_conf_t *conf, const char *key,
                           const char *value, char *errstr,
                           size_t errstr_size) {
        if (key[0] == '\0') {
                seterr(errstr, errstr_size,
                       "kafka.: the librdkafka property name is empty");
                return ITD_ERR_CONF;
        }
        itd_err_t err = kafka_check(key, value, errstr, errstr_size);
        if (err)
                return err;
        for (size_t i = 0; i < conf->n_kafka; i++) {
                if (strcmp(conf->kafka_keys[i], key) == 0) {
                        /* Later wins but keeps the first position, so the
                         * order librdkafka sees stays the file's. */
                        free(conf->kafka_values[i]);
                        conf->kafka_values[i] = itd_xstrdup(value);
                        return ITD_OK;
                }
        }
        size_t n = conf->n_kafka + 1;
        conf->kafka_keys = itd_xrealloc(conf->kafka_keys, n * sizeof(char *));
        conf->kafka_values =
            itd_xrealloc(conf->kafka_values, n * sizeof(char *));
        conf->kafka_keys[n - 1] = itd_xstrdup(key);
        conf->kafka_values[n - 1] = itd_xstrdup(value);
        conf->n_kafka = n;
        return ITD_OK;
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
        for (size_t i = 0; i < N_PROPS; i++) {
                normalise(props[i].name, cand, sizeof cand);
                size_t clen = strlen(cand);
                /* "learning_rate" or "events" alone: the tail of a name. */
                if (strcmp(cand, key) == 0 ||
                    (clen > klen && cand[clen - klen - 1] == '.' &&
                     strcmp(cand + clen - klen, key) == 0))
                        return props[i].name;
                size_t d = edit_distance(key, cand);
                if (d < best_d) {
                        best_d = d;
                        best = props[i].name;
                }
        }
        size_t limit = klen / 3 > 2 ? klen / 3 : 2;
        return best_d <= limit ? best : NULL;
}

static void unknown_option(const char *name, char *errstr,
                           size_t errstr_size) {
        const char *hint = suggest(name);
        if (hint)
                seterr(errstr, errstr_size,
                       "%s: unknown option; did you mean \"%s\"?", name, hint);
        else
                seterr(errstr, errstr_size,
                       "%s: unknown option (docs/CONFIGURATION.md lists them)",
                       name);
}

/* ------------------------------------------------------------------ */
/* the conf object */

static void conf_fini(itd_conf_t *conf) {
        for (size_t i = 0; i < N_PROPS; i++)
                if (props[i].type == PT_STRING)
                        free(*(char **)field(conf, &props[i]));
        for (size_t i = 0; i < conf->n_kafka; i++) {
                free(conf->kafka_keys[i]);
                free(conf->kafka_values[i]);
        }
        free(conf->kafka_keys);
        free(conf->kafka_values);
}

itd_conf_t *itd_conf_new(void) {
        itd_conf_t *conf = itd_xcalloc(1, sizeof *conf);
        for (size_t i = 0; i < N_PROPS; i++) {
                char why[256];
                if (prop_set_text(conf, &props[i], props[i].def, why,
                                  sizeof why)) {
                        /* A default that fails its own checks is our bug;
                         * tests catch it before anyone runs it. */
                        fprintf(stderr, "<2>intentd: bad default in the "
                                        "option table: %s\n",
                                why);
                        abort();
                }
        }
        return conf;
}

void itd_conf_destroy(itd_conf_t *conf) {
        if (!conf)
                return;
        conf_fini(conf);
        free(conf);
}

/* Deep copy, for loading a file all-or-nothing. */
static itd_conf_t *conf_dup(const itd_conf_t *src) {
        itd_conf_t *conf = itd_xmalloc(sizeof *conf);
        *conf = *src;
        for (size_t i = 0; i < N_PROPS; i++) {
                if (props[i].type != PT_STRING)
                        continue;
                char **s = field(conf, &props[i]);
                if (*s)
                        *s = itd_xstrdup(*s);
        }
        conf->kafka_keys = NULL;
        conf->kafka_values = NULL;
        if (src->n_kafka) {
                conf->kafka_keys = itd_xcalloc(src->n_kafka, sizeof(char *));
                conf->kafka_values = itd_xcalloc(src->n_kafka, sizeof(char *));
                for (size_t i = 0; i < src->n_kafka; i++) {
                        conf->kafka_keys[i] = itd_xstrdup(src->kafka_keys[i]);
                        conf->kafka_values[i] =
                            itd_xstrdup(src->kafka_values[i]);
                }
        }
        return conf;
}

itd_err_t itd_conf_set(itd_conf_t *conf, const char *name, const char *value,
                       char *errstr, size_t errstr_size) {
        if (!conf || !name || !value) {
                seterr(errstr, errstr_size, "%s: no value",
                       name ? name : "(null)");
                return ITD_ERR_ARG;
        }
        if (strncmp(name, "kafka.", 6) == 0)
                return kafka_set(conf, name + 6, value, errstr, errstr_size);
        const struct prop *p = prop_find(name);
        if (!p) {
                unknown_option(name, errstr, errstr_size);
                return ITD_ERR_CONF;
        }
        return prop_set_text(conf, p, value, errstr, errstr_size);
}

/* Canonical text of the current value: what the YAML and docs show. */
static void format_value(const itd_conf_t *conf, const struct prop *p,
                         char *buf, size_t cap) {
        const void *f = cfield(conf, p);
        buf[0] = '\0';
        switch (p->type) {
        case PT_STRING:
                snprintf(buf, cap, "%s", *(char *const *)f ? *(char *const *)f
                                                           : "");
                break;
        case PT_INT:
                snprintf(buf, cap, "%" PRId64, *(const int64_t *)f);
                break;
        case PT_DURATION:
                itd_duration_format(*(const int64_t *)f, buf, cap);
                break;
        case PT_DOUBLE: {
                /* Shortest text that reads back to the same double. */
                double d = *(const double *)f;
                for (int prec = 6; prec <= 17; prec++) {
                        snprintf(buf, cap, "%.*g", prec, d);
                        if (strtod(buf, NULL) == d)
                                break;
                }
                /* "1e-06" reads better as "1e-6", as people write it. */
                char *e = strchr(buf, 'e');
                if (e) {
                        char *digits = e + 1;
                        if (*digits == '+')
                                memmove(digits, digits + 1, strlen(digits));
                        else if (*digits == '-')
                                digits++;
                        while (digits[0] == '0' && digits[1])
                                memmove(digits, digits + 1, strlen(digits));
                }
                break;
        }
        case PT_BOOL:
                snprintf(buf, cap, "%s", *(const int *)f ? "true" : "false");
                break;
        case PT_ENUM: {
                int e = *(const int *)f;
                int n = 0;
                while (p->syms[n])
                        n++;
                snprintf(buf, cap, "%s", e >= 0 && e < n ? p->syms[e] : "?");
                break;
        }
        case PT_DURATION_LIST:
        case PT_INT_LIST: {
                const int64_t *v = f;
                size_t n = ccount_field(conf, p);
                for (size_t i = 0; i < n; i++) {
                        char one[32];
                        if (p->type == PT_DURATION_LIST)
                                itd_duration_format(v[i], one, sizeof one);
                        else
                                snprintf(one, sizeof one, "%" PRId64, v[i]);
                        append(buf, cap, "%s%s", i ? ", " : "", one);
                }
                break;
        }
        }
}

/* Copies one option's value from src to dst (strings duplicated). */
static void copy_value(itd_conf_t *dst, const itd_conf_t *src,
                       const struct prop *p) {
        switch (p->type) {
        case PT_STRING: {
                char **d = field(dst, p);
                const char *s = *(char *const *)cfield(src, p);
                free(*d);
                *d = s ? itd_xstrdup(s) : NULL;
                break;
        }
        case PT_INT:
        case PT_DURATION:
                *(int64_t *)field(dst, p) = *(const int64_t *)cfield(src, p);
                break;
        case PT_DOUBLE:
                *(double *)field(dst, p) = *(const double *)cfield(src, p);
                break;
        case PT_BOOL:
        case PT_ENUM:
                *(int *)field(dst, p) = *(const int *)cfield(src, p);
                break;
        case PT_DURATION_LIST:
        case PT_INT_LIST:
                memcpy(field(dst, p), cfield(src, p),
                       ITD_CONF_LIST_MAX * sizeof(int64_t));
                *count_field(dst, p) = ccount_field(src, p);
                break;
        }
}

static bool kafka_equal(const itd_conf_t *a, const itd_conf_t *b) {
        if (a->n_kafka != b->n_kafka)
                return false;
        for (size_t i = 0; i < a->n_kafka; i++)
                if (strcmp(a->kafka_keys[i], b->kafka_keys[i]) != 0 ||
                    strcmp(a->kafka_values[i], b->kafka_values[i]) != 0)
                        return false;
        return true;
}

size_t itd_conf_reload(itd_conf_t *conf, const itd_conf_t *fresh,
                       char *applied, size_t applied_size, char *restart,
                       size_t restart_size) {
        if (applied && applied_size)
                applied[0] = '\0';
        if (restart && restart_size)
                restart[0] = '\0';
        size_t n_applied = 0, n_restart = 0;
        for (size_t i = 0; i < N_PROPS; i++) {
                const struct prop *p = &props[i];
                char now[256], then[256];
                /* Canonical text compares every type alike; doubles print
                 * round-trip exact, so no change goes unnoticed. */
                format_value(conf, p, now, sizeof now);
                format_value(fresh, p, then, sizeof then);
                if (strcmp(now, then) == 0)
                        continue;
                if (p->reloadable) {
                        copy_value(conf, fresh, p);
                        append(applied, applied_size, "%s%s=%s",
                               n_applied++ ? ", " : "", p->name, then);
                } else {
                        append(restart, restart_size, "%s%s",
                               n_restart++ ? ", " : "", p->name);
                }
        }
        if (!kafka_equal(conf, fresh))
                append(restart, restart_size, "%skafka.*",
                       n_restart ? ", " : "");
        return n_applied;
}

/* ------------------------------------------------------------------ */
/* YAML */

struct loader {
        itd_conf_t *conf;
        yaml_document_t *doc;
        const char *path;
        char *errstr;
        size_t errstr_size;
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
        seterr(ld->errstr, ld->errstr_size, "%s:%zu:%zu: %s", ld->path,
               node->start_mark.line + 1, node->start_mark.column + 1, why);
        return ITD_ERR_CONF;
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
                               p->name, type_name(p));
        if (value->type == YAML_SCALAR_NODE) {
                if ((err = scalar_text(ld, p->name, value, &text)))
                        return err;
                if (prop_set_text(ld->conf, p, text, why, sizeof why))
                        return fail_at(ld, value, "%s", why);
                return ITD_OK;
        }
        if (!is_list(p))
                return fail_at(ld, value,
                               "%s: expected a single %s, got a list",
                               p->name, type_name(p));
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
        err = prop_set(ld->conf, p, items, n, &bad, why, sizeof why);
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
                if (strcmp(name, "kafka") != 0)
                        return load_kafka(ld, name, value);
                if (is_null(value))
                        return ITD_OK;
                return fail_at(ld, value,
                               "kafka: expected a mapping of librdkafka "
                               "properties, got a %s",
                               node_kind(value));
        }
        const struct prop *p = prop_find(name);
        if (p)
                return load_option(ld, p, value);
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
        unknown_option(name, why, sizeof why);
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
                if (key->type != YAML_SCALAR_NODE)
                        return fail_at(ld, key,
                                       "%s%skeys must be names, not a %s",
                                       prefix ? prefix : "",
                                       prefix ? ": " : "", node_kind(key));
                const char *k = scalar(key);
                if (!*k || strlen(k) != key->data.scalar.length)
                        return fail_at(ld, key, "%s%sempty or invalid key",
                                       prefix ? prefix : "",
                                       prefix ? ": " : "");
                char name[256];
                int n = snprintf(name, sizeof name, "%s%s%s",
                                 prefix ? prefix : "", prefix ? "." : "", k);
                if (n < 0 || (size_t)n >= sizeof name)
                        return fail_at(ld, key, "%.64s...: key too long",
                                       name);
                itd_err_t err = load_pair(ld, name, key, value);
                if (err)
                        return err;
        }
        return ITD_OK;
}

static itd_err_t yaml_error(const char *path, const yaml_parser_t *parser,
                            char *errstr, size_t errstr_size) {
        const yaml_mark_t *m = &parser->problem_mark;
        const char *problem = parser->problem ? parser->problem : "error";
        if (parser->error == YAML_READER_ERROR) {
                seterr(errstr, errstr_size,
                       "%s: cannot read as YAML: %s at byte %zu", path,
                       problem, parser->problem_offset);
                return ITD_ERR_CONF;
        }
        seterr(errstr, errstr_size, "%s:%zu:%zu: YAML syntax error: %s%s%s%s",
               path, m->line + 1, m->column + 1, problem,
               parser->context ? " (" : "",
               parser->context ? parser->context : "",
               parser->context ? ")" : "");
        return ITD_ERR_CONF;
}

itd_err_t itd_conf_load(itd_conf_t *conf, const char *path, char *errstr,
                        size_t errstr_size) {
        if (!conf || !path) {
                seterr(errstr, errstr_size, "no configuration file given");
                return ITD_ERR_ARG;
        }
        FILE *fp = fopen(path, "rb");
        if (!fp) {
                seterr(errstr, errstr_size, "%s: cannot open: %s", path,
                       strerror(errno));
                return ITD_ERR_IO;
        }
        struct stat sb;
        if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
                fclose(fp);
                seterr(errstr, errstr_size, "%s: cannot read: is a directory",
                       path);
                return ITD_ERR_IO;
        }

        itd_err_t err = ITD_OK;
        itd_conf_t *tmp = NULL;
        yaml_parser_t parser;
        yaml_document_t doc, extra;
        bool have_doc = false;
        if (!yaml_parser_initialize(&parser)) {
                fclose(fp);
                seterr(errstr, errstr_size, "%s: cannot start the YAML parser",
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
                seterr(errstr, errstr_size,
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
        tmp = conf_dup(conf);
        struct loader ld = {tmp, &doc, path, errstr, errstr_size};
        if (root->type != YAML_MAPPING_NODE) {
                err = fail_at(&ld, root,
                              "expected a mapping of options at the top "
                              "level, got a %s",
                              node_kind(root));
                goto done;
        }
        err = walk_map(&ld, root, NULL);
        /* The one rule across options the table cannot express. */
        if (!err && tmp->triggers_exit > tmp->triggers_enter) {
                seterr(errstr, errstr_size,
                       "%s: triggers.exit: %g is above triggers.enter (%g); "
                       "the re-arm level must not exceed the firing level",
                       path, tmp->triggers_exit, tmp->triggers_enter);
                err = ITD_ERR_CONF;
        }
        if (!err) {
                itd_conf_t old = *conf;
                *conf = *tmp;
                *tmp = old;
        }

done:
        itd_conf_destroy(tmp);
        if (have_doc)
                yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        fclose(fp);
        return err;
}

/* ------------------------------------------------------------------ */
/* generated docs and example config */

/*
 * Writes text as lines of at most width columns: the first after lead, the
 * others after cont (a Markdown list item continues indented).
 */
static void wrap(FILE *out, const char *lead, const char *cont,
                 const char *text, size_t width) {
        size_t col = 0;
        bool first = true;
        const char *c = text;
        while (*c) {
                while (*c == ' ')
                        c++;
                if (!*c)
                        break;
                size_t n = strcspn(c, " ");
                if (col > 0 && col + 1 + n > width) {
                        fputc('\n', out);
                        col = 0;
                }
                if (col == 0) {
                        fputs(first ? lead : cont, out);
                        col = strlen(first ? lead : cont);
                        first = false;
                } else {
                        fputc(' ', out);
                        col++;
                }
                fwrite(c, 1, n, out);
                col += n;
                c += n;
        }
        if (col > 0)
                fputc('\n', out);
}

static size_t group_len(const char *name) {
        return strcspn(name, ".");
}

/* 1 if props[i] starts a group (its first name segment changes). */
static bool new_group(size_t i) {
        if (i == 0)
                return true;
        size_t g = group_len(props[i].name);
        return g != group_len(props[i - 1].name) ||
               strncmp(props[i].name, props[i - 1].name, g) != 0;
}

static const char *group_title(const char *name) {
        size_t n = group_len(name);
        for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
                if (strlen(groups[i].prefix) == n &&
                    strncmp(groups[i].prefix, name, n) == 0)
                        return groups[i].title;
        return "";
}

/* "duration, 1m..24h" / "integer list, 1..4 entries of 1..4096". */
static void shape_text(const struct prop *p, char *buf, size_t cap) {
        char range[160];
        range_text(p, range, sizeof range);
        if (is_list(p))
                snprintf(buf, cap, "%zu..%zu entries, each %s%s", p->nmin,
                         p->nmax, range,
                         p->ascending ? ", strictly ascending" : "");
        else
                snprintf(buf, cap, "%s", range);
}

/* GitHub's heading anchor for "`name`": dots and backticks dropped. */
static void anchor(const char *name, char *buf, size_t cap) {
        size_t j = 0;
        for (const char *c = name; *c && j + 1 < cap; c++)
                if (*c != '.')
                        buf[j++] = *c;
        buf[j] = '\0';
}

void itd_conf_write_docs(FILE *out) {
        itd_conf_t *def = itd_conf_new();
        char value[256], shape[256], anc[128];

        fputs("# Configuration reference\n\n"
              "<!-- Generated by `intentd --config-docs` from the option "
              "table in\n"
              "     daemon/conf.c. Edit the table, then run `make docs`. "
              "-->\n\n",
              out);
        wrap(out, "", "",
             "intentd reads one YAML file (`intentd run --config FILE`; "
             "`intentd check-config FILE` validates one). Keys may be nested "
             "maps or dotted names, mixed freely: `model: {learning.rate: "
             "0.01}` and `model.learning.rate: 0.01` set the same option. "
             "`config/intentd.yaml` lists every option at its default, with "
             "this text as comments. An unknown key or a bad value stops "
             "start-up with an error naming file:line:column and the key.",
             79);
        fputs("\n", out);
        wrap(out, "- ", "  ",
             "**Durations** are written `500ms`, `10s`, `30m`, `24h` or "
             "`7d`; a bare integer is milliseconds.",
             79);
        wrap(out, "- ", "  ",
             "**Lists** are YAML sequences (`[5m, 1h]`, or one `- item` per "
             "line) or a comma-separated string (`\"5m,1h\"`).",
             79);
        wrap(out, "- ", "  ",
             "**Reloadable** options take their new value when the daemon "
             "receives SIGHUP; a change to any other option is logged and "
             "needs a restart.",
             79);
        wrap(out, "- ", "  ",
             "**`kafka.*`** keys pass through to librdkafka unchanged (see "
             "the last section).",
             79);

        fputs("\n## Summary\n\n"
              "| option | type | default | reloadable |\n"
              "| --- | --- | --- | --- |\n",
              out);
        for (size_t i = 0; i < N_PROPS; i++) {
                const struct prop *p = &props[i];
                format_value(def, p, value, sizeof value);
                anchor(p->name, anc, sizeof anc);
                fprintf(out, "| [`%s`](#%s) | %s | `%s` | %s |\n", p->name,
                        anc, type_name(p), value, p->reloadable ? "yes" : "no");
        }
        fputs("| [`kafka.*`](#kafka-librdkafka-pass-through) | string | "
              "(librdkafka's) | no |\n",
              out);

        for (size_t i = 0; i < N_PROPS; i++) {
                const struct prop *p = &props[i];
                if (new_group(i))
                        fprintf(out, "\n## %.*s: %s\n",
                                (int)group_len(p->name), p->name,
                                group_title(p->name));
                format_value(def, p, value, sizeof value);
                shape_text(p, shape, sizeof shape);
                fprintf(out, "\n### `%s`\n\n", p->name);
                wrap(out, "", "", p->help, 79);
                fprintf(out,
                        "\n| type | default | allowed | unit | reloadable |\n"
                        "| --- | --- | --- | --- | --- |\n"
                        "| %s | `%s` | %s | %s | %s |\n",
                        type_name(p), value, shape,
                        p->unit && *p->unit ? p->unit : "-",
                        p->reloadable ? "yes (SIGHUP)" : "no, restart");
        }

        fputs("\n## kafka: librdkafka pass-through\n\n", out);
        wrap(out, "", "", kafka_help, 79);
        fputs("\n```yaml\n"
              "kafka:\n"
              "  bootstrap.servers: \"127.0.0.1:9092\"\n"
              "  group.id: \"intentd\"\n"
              "  security.protocol: \"plaintext\"\n"
              "```\n",
              out);
        itd_conf_destroy(def);
}

/* A YAML double-quoted scalar. */
static void yaml_quote(FILE *out, const char *s) {
        fputc('"', out);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', out);
                fputc(*s, out);
        }
        fputc('"', out);
}

void itd_conf_write_yaml(FILE *out) {
        itd_conf_t *def = itd_conf_new();
        char value[256], shape[256];

        wrap(out, "# ", "# ",
             "intentd configuration: every option at its default. Generated "
             "from the option table in daemon/conf.c by `intentd "
             "--config-yaml`; docs/CONFIGURATION.md has the same text.",
             79);
        fputs("#\n", out);
        wrap(out, "# ", "# ",
             "Nested maps and dotted keys are the same (`model: "
             "{learning.rate: 0.01}` = `model.learning.rate: 0.01`). "
             "Durations: 500ms, 10s, 30m, 24h, 7d; a bare integer is "
             "milliseconds. Options marked reloadable take a new value on "
             "SIGHUP; the others need a restart.",
             79);

        for (size_t i = 0; i < N_PROPS; i++) {
                const struct prop *p = &props[i];
                size_t g = group_len(p->name);
                if (new_group(i))
                        fprintf(out, "\n%.*s:\n", (int)g, p->name);
                else
                        fputs("\n", out);
                wrap(out, "  # ", "  # ", p->help, 79);
                shape_text(p, shape, sizeof shape);
                char info[512];
                snprintf(info, sizeof info, "%s: %s%s%s%s; %s", type_name(p),
                         shape, p->unit && *p->unit ? " (" : "",
                         p->unit && *p->unit ? p->unit : "",
                         p->unit && *p->unit ? ")" : "",
                         p->reloadable ? "reloadable (SIGHUP)"
                                       : "restart to change");
                wrap(out, "  # ", "  # ", info, 79);
                fprintf(out, "  %s: ", p->name + g + 1);
                format_value(def, p, value, sizeof value);
                if (p->type == PT_STRING)
                        yaml_quote(out, value);
                else if (is_list(p))
                        fprintf(out, "[%s]", value);
                else
                        fputs(value, out);
                fputs("\n", out);
        }

        fputs("\n", out);
        wrap(out, "# ", "# ", kafka_help, 79);
        fputs("#\n"
              "# kafka:\n"
              "#   bootstrap.servers: \"127.0.0.1:9092\"\n"
              "#   group.id: \"intentd\"\n",
              out);
        itd_conf_destroy(def);
}
