/*
 * conf_table.c - the option table: every option's name, type, range,
 * default, unit, reload rule and help text, plus the docs' group headings
 * and the kafka: help. Only data lives here; conf.c parses and checks by
 * it, conf_yaml.c loads files by it and conf_docs.c generates
 * docs/CONFIGURATION.md and config/intentd.yaml from it, so the reference
 * cannot drift from the code (STYLE.md section 5). Rows are in docs order.
 */
#include "conf_int.h"

#include <stddef.h>

#include "intentd/codec.h"
#include "intentd/input.h"
#include "intentd/log.h"
#include "intentd/mlp.h"
#include "intentd/model.h"
#include "intentd/trigger.h"

/* Enum options store the index of their symbol, so the symbol lists below
 * must follow the enums of the modules that read them. */
_Static_assert(ITD_INPUT_AVRO == 0 && ITD_INPUT_JSON == 1,
               "input.format symbols follow itd_input_format_t");
_Static_assert(ITD_FRAMING_AUTO == 0 && ITD_FRAMING_CONFLUENT == 1 &&
                   ITD_FRAMING_BARE == 2,
               "input.framing symbols follow itd_framing_t");
_Static_assert(ITD_MODEL_KIND_MLP == 0 && ITD_MODEL_KIND_LOGISTIC == 1,
               "model.type symbols follow itd_model_kind_t");
_Static_assert(ITD_OPT_SGD == 0 && ITD_OPT_ADAGRAD == 1 && ITD_OPT_ADAM == 2,
               "model.optimizer symbols follow itd_opt_t");
_Static_assert(ITD_LOG_EMERG == 0 && ITD_LOG_DEBUG == 7,
               "log.level symbols follow ITD_LOG_*");
_Static_assert(ITD_ON_CORRUPT_START_EMPTY == 0 && ITD_ON_CORRUPT_REFUSE == 1,
               "checkpoint.on_corrupt symbols follow itd_conf_on_corrupt_t");
_Static_assert(ITD_TRIGGER_RULE_ABSOLUTE == 0 &&
                   ITD_TRIGGER_RULE_TOP_PERCENT == 1 &&
                   ITD_TRIGGER_RULE_LIFT == 2,
               "triggers.rule symbols follow itd_trigger_rule_t");
_Static_assert(ITD_CONF_LIST_MAX >= 8, "windows.spans takes up to 8 entries");
_Static_assert(ITD_MLP_MAX_HIDDEN >= 4, "model.hidden takes up to 4 layers");

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
static const char *const syms_rule[] = {"absolute", "top_percent", "lift",
                                        NULL};
static const char *const syms_level[] = {"emerg",  "alert", "crit",
                                         "err",    "warning", "notice",
                                         "info",   "debug", NULL};

const struct prop itd_conf_props[] = {
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
    {.name = "topics.risk", .type = PT_STRING, .off = F_STR(topic_risk),
     .min = 0, .max = 249, .topic = true, .def = "",
     .help = "Topic a risk trigger record is produced to when a user's "
             "`risk_score` (how bot-like the user's recent behaviour is) "
             "rises to `risk.trigger.enter` (direction `UP`) or falls back "
             "below `risk.trigger.exit` (`DOWN`), for fraud and bot "
             "handling: the trigger record of `config/trigger.avsc` whose "
             "`score` is the risk score, rule `ABSOLUTE`. Empty (the "
             "default): no risk triggers."},
    {.name = "topics.control", .type = PT_STRING,
     .off = F_STR(topic_control), .min = 0, .max = 249, .topic = true,
     .def = "",
     .help = "Topic control records are read from (`config/control.avsc`, "
             "or JSON lines with `input.format: json`): today `ERASE`, a "
             "shopper's request to be forgotten, keyed by user id, on any "
             "partition. Every instance reads every record (a consumer "
             "group of its own per instance) and removes the user from all "
             "it holds, then acknowledges on `topics.audit` "
             "(docs/OPERATIONS.md, \"Erasure on request\"). Empty (the "
             "default): no control records are read."},
    {.name = "topics.audit", .type = PT_STRING, .off = F_STR(topic_audit),
     .min = 1, .max = 249, .topic = true, .def = "intentd.audit",
     .help = "Topic the acknowledgement of each control record is produced "
             "to (`config/audit.avsc`, keyed by request id): request id, the "
             "user's pseudonym, what was removed and when, and the first "
             "checkpoint written without the user. Used only with "
             "`topics.control`."},

    {.name = "topics.model", .type = PT_STRING, .off = F_STR(topic_model),
     .min = 0, .max = 249, .topic = true, .def = "",
     .help = "Topic the instances of one consumer group exchange their "
             "model's changes through, so that all of them run one model "
             "(docs/OPERATIONS.md, \"One model across instances\"). "
             "Partition 0 only; every instance must run the same "
             "`model.*` shape and `model.seed`. Empty (the default): no "
             "exchange, each instance learns alone."},

    {.name = "topics.changelog", .type = PT_STRING,
     .off = F_STR(topic_changelog), .min = 0, .max = 249, .topic = true,
     .def = "",
     .help = "Topic each assigned partition's state (users' windows, "
             "pending labels, trigger state) is written to as snapshots, "
             "so that a partition moving to another instance (crash, "
             "deploy, scale-up) is restored there before its first event "
             "is processed (docs/OPERATIONS.md, \"State that follows its "
             "partition\"). It needs as many partitions as the events "
             "topic (partition p holds events partition p) and "
             "`cleanup.policy=compact`; intentd does not create it. "
             "Offsets of a partition are committed only up to its newest "
             "acknowledged snapshot. Empty (the default): off, a moved "
             "partition starts empty."},

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
             "https works; credentials go in "
             "`input.schema_registry.basic_auth_user_info`, or as "
             "`user:password@` here, and are never logged). Schema ids not "
             "in `input.schemas_dir` are fetched once with GET "
             "`/schemas/ids/{id}` and cached, in the background: events "
             "whose id is being fetched wait (in order per partition, "
             "offsets held) while all others flow on. Failed look-ups are "
             "retried after 30 s; at most 10 requests start per second and "
             "64 wait; at most 1024 ids are pending or failed at once, and "
             "an id beyond that is dead-lettered as `unknown_schema_id` "
             "without a look-up. Empty: no registry."},
    {.name = "input.schema_registry.basic_auth_user_info",
     .type = PT_STRING, .off = F_STR(input_schema_registry_user_info),
     .min = 0, .max = 1023, .def = "",
     .help = "Credentials for the schema registry as `user:password` (the "
             "password may hold `:`), sent with HTTP basic authentication; "
             "what Confluent clients call `basic.auth.user.info`. Kept out "
             "of the URL, so out of every log line and dead-letter header. "
             "Setting this and `user:password@` in the URL is an error. "
             "Empty: none."},
    {.name = "input.schema_registry.timeout", .type = PT_DURATION,
     .off = F_I64(input_schema_registry_timeout_ms), .min = 100,
     .max = MIN_MS, .def = "5s",
     .help = "Longest a schema registry look-up may take. Events waiting "
             "for it are dead-lettered as `unknown_schema_id` when it fails "
             "or times out (the id is asked again after 30 s). A "
             "checkpoint that falls due meanwhile dead-letters the events "
             "still waiting, so its positions are exact."},
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
     .help = "For a registry managed by hand: the schema id of "
             "`config/prediction.avsc`, written in the Confluent header of "
             "prediction records only (triggers and events stay bare "
             "Avro). -1: none. Prefer `output.schema_registry.url`, which "
             "registers every output schema and frames each topic with its "
             "own id; setting both is an error."},
    {.name = "output.schema_registry.url", .type = PT_STRING,
     .off = F_STR(output_schema_registry_url), .min = 0, .max = 1023,
     .def = "",
     .help = "Base URL of a Confluent Schema Registry (`http://host:8081`, "
             "https works) for intentd's outputs. At start `intentd run` "
             "registers (or, see `output.schema_registry.auto_register`, "
             "looks up) `config/prediction.avsc` under "
             "`<topics.predictions>-value` and `config/trigger.avsc` under "
             "`<topics.triggers>-value` (the topic-name strategy), and "
             "`load`, `simulate` and `demo` register `config/event.avsc` "
             "under `<topics.events>-value`; each topic's records then carry "
             "the Confluent header with their own schema's id. A refusal "
             "(credentials, permission, incompatible schema) stops start-up "
             "with exit 78; an unreachable registry is retried for about "
             "15 s, then start-up fails (exit 1, so systemd retries). "
             "Credentials as in `input.schema_registry.url`, never logged. "
             "Empty: bare Avro, no header."},
    {.name = "output.schema_registry.basic_auth_user_info",
     .type = PT_STRING, .off = F_STR(output_schema_registry_user_info),
     .min = 0, .max = 1023, .def = "",
     .help = "Credentials for `output.schema_registry.url` as "
             "`user:password` (HTTP basic authentication), kept out of "
             "every log line. Empty: none."},
    {.name = "output.schema_registry.auto_register", .type = PT_BOOL,
     .off = F_INT(output_schema_registry_auto_register), .def = "true",
     .help = "`true`: register the output schemas (POST "
             "`/subjects/<subject>/versions`; a schema registered already "
             "gets its existing id). `false`: only look them up (POST "
             "`/subjects/<subject>`), for registries where producers may "
             "not register; a schema not registered under its subject "
             "stops start-up with exit 78."},
    {.name = "output.max_in_flight", .type = PT_INT,
     .off = F_I64(output_max_in_flight), .min = 1000, .max = 10000000,
     .def = "200000",
     .help = "Outputs (predictions, dead letters) produced but not yet "
             "acknowledged by the broker before consumption pauses; it "
             "resumes below a quarter of this. Back-pressure: nothing is "
             "dropped, and polling goes on so the group keeps us."},

    /* triggers (rules: intentd/trigger.h, docs/SCHEMAS.md) */
    {.name = "triggers.rule", .type = PT_ENUM, .off = F_INT(triggers_rule),
     .syms = syms_rule, .def = "top_percent", .reloadable = true,
     .help = "How a score is judged high enough to fire a trigger. "
             "`top_percent`: it is among the top `triggers.top_percent` % "
             "of the partition's recent scores (the live score "
             "distribution, `triggers.distribution.half_life`), so "
             "triggers fire at a steady share of events whatever the "
             "stream's base rate or the model's calibration. `lift`: it is "
             "at least `triggers.lift` times the mean recent score. "
             "`absolute`: it is at least `triggers.enter`. Each trigger "
             "record names the rule, its parameter and the threshold in "
             "force. Reloadable."},
    {.name = "triggers.enter", .type = PT_DOUBLE, .off = F_DBL(triggers_enter),
     .dmin = 0, .dmax = 1, .def = "0.5", .reloadable = true,
     .help = "`triggers.rule: absolute`: a user's trigger fires (direction "
             "`UP` on `topics.triggers`) when a prediction's "
             "`purchase_probability` is at or above this while the user is "
             "armed and out of cool-down. Firing disarms the user. "
             "Reloadable."},
    {.name = "triggers.exit", .type = PT_DOUBLE, .off = F_DBL(triggers_exit),
     .dmin = 0, .dmax = 1, .def = "0.3", .reloadable = true,
     .help = "`triggers.rule: absolute`: a disarmed user is re-armed (a "
             "`DOWN` record) when a score falls below this, so a score "
             "hovering around `triggers.enter` fires once (hysteresis). "
             "Must not exceed `triggers.enter`. Reloadable."},
    {.name = "triggers.top_percent", .type = PT_DOUBLE,
     .off = F_DBL(triggers_top_percent), .dmin = 0, .dmin_excl = true,
     .dmax = 100, .def = "1", .unit = "%", .reloadable = true,
     .help = "`triggers.rule: top_percent`: fire when the score is at or "
             "above the score that this percentage of the partition's "
             "recent scores reach (1: the 99th percentile). Reloadable."},
    {.name = "triggers.exit_top_percent", .type = PT_DOUBLE,
     .off = F_DBL(triggers_exit_top_percent), .dmin = 0, .dmin_excl = true,
     .dmax = 100, .def = "5", .unit = "%", .reloadable = true,
     .help = "`triggers.rule: top_percent`: re-arm (a `DOWN` record) when "
             "the score falls out of this top percentage of recent scores; "
             "at least `triggers.top_percent` (the hysteresis band). "
             "Reloadable."},
    {.name = "triggers.lift", .type = PT_DOUBLE, .off = F_DBL(triggers_lift),
     .dmin = 1, .dmax = 1000, .def = "3", .reloadable = true,
     .help = "`triggers.rule: lift`: fire when the score is at least this "
             "many times the mean of the partition's recent scores (for a "
             "calibrated model, the purchase base rate). Reloadable."},
    {.name = "triggers.exit_lift", .type = PT_DOUBLE,
     .off = F_DBL(triggers_exit_lift), .dmin = 0, .dmin_excl = true,
     .dmax = 1000, .def = "1.5", .reloadable = true,
     .help = "`triggers.rule: lift`: re-arm when the score falls below "
             "this many times the mean recent score; at most "
             "`triggers.lift`. Reloadable."},
    {.name = "triggers.distribution.half_life", .type = PT_INT,
     .off = F_I64(triggers_half_life), .min = 10, .max = 1000000000,
     .def = "10000", .unit = "scores", .reloadable = true,
     .help = "Memory of the live score distribution behind the relative "
             "rules, per assigned partition: a score counts half as much "
             "after this many newer scores of its partition. Larger is "
             "steadier, smaller follows a drifting model faster. The "
             "distribution (a log-odds histogram, 32 KiB per partition) is "
             "checkpointed with the trigger state. Reloadable."},
    {.name = "triggers.distribution.min_events", .type = PT_INT,
     .off = F_I64(triggers_min_events), .min = 0, .max = 1000000000,
     .def = "1000", .unit = "scores", .reloadable = true,
     .help = "The relative rules fire nothing (and re-arm nobody) until "
             "the partition's distribution has seen this many scores: a "
             "percentile of a handful of scores means nothing. "
             "Reloadable."},
    {.name = "triggers.max_event_age", .type = PT_DURATION,
     .off = F_I64(triggers_max_event_age_ms), .min = 0, .max = 30 * DAY_MS,
     .def = "30m", .reloadable = true,
     .help = "In `intentd run`, no trigger fires (and no user is "
             "re-armed) for an event older than this by the wall clock, so "
             "a backlog, a restart after an outage or old data loaded "
             "through Kafka cannot fire offers for visits long over "
             "(`intentd demo` and `replay` play recorded history and judge "
             "by event time only, where an event behind its partition's "
             "watermark never fires anyway). Every trigger record carries "
             "`expires_at` = event time + this. 0 turns the guard off (and "
             "records carry no expiry). Reloadable."},
    {.name = "triggers.cooldown", .type = PT_DURATION,
     .off = F_I64(triggers_cooldown_ms), .min = 0, .max = 7 * DAY_MS,
     .def = "1h", .reloadable = true,
     .help = "Least event time between two `UP` triggers of one user; a "
             "crossing inside it is held back until the first event after "
             "it that still scores above the enter threshold. Measured in "
             "event time, so replays and backlogs behave like the live "
             "stream. Reloadable."},
    {.name = "triggers.max_users", .type = PT_INT,
     .off = F_I64(triggers_max_users), .min = 1, .max = 100000000,
     .def = "1000000", .unit = "users",
     .help = "Users whose trigger state (armed flag, last firing) is "
             "remembered, per assigned partition; only users who have "
             "fired are kept (32 bytes each). Beyond it the least recently "
             "seen is forgotten and comes back armed and out of "
             "cool-down."},

    /* risk score (intentd/risk.h, docs/FEATURES.md "Risk score") */
    {.name = "risk.train.threshold", .type = PT_DOUBLE,
     .off = F_DBL(risk_train_threshold), .dmin = 0, .dmax = 1, .def = "0.5",
     .help = "Predictions whose `risk_score` is at or above this are "
             "judged (progressive validation) but learned from only with "
             "probability `risk.train.weight`, so bots and scripts do not "
             "teach the purchase model. Real shoppers' events score 0.5 "
             "or more about once in 100,000 (simulated bots: most of "
             "theirs). 0 learns from every prediction."},
    {.name = "risk.train.weight", .type = PT_DOUBLE,
     .off = F_DBL(risk_train_weight), .dmin = 0, .dmax = 1, .def = "0",
     .help = "Share of the high-risk predictions (`risk.train.threshold`) "
             "that is still learned from: 0 excludes them, 0.1 keeps one "
             "in ten, drawn from the user and the event time so a replay "
             "decides the same."},
    {.name = "risk.trigger.enter", .type = PT_DOUBLE,
     .off = F_DBL(risk_trigger_enter), .dmin = 0, .dmax = 1, .def = "0.8",
     .help = "With `topics.risk` set: a risk trigger fires (direction "
             "`UP`) when a user's `risk_score` is at or above this while "
             "the user is armed and out of `risk.trigger.cooldown`. The "
             "risk triggers keep their own per-user state beside the "
             "marketing triggers, with the same staleness guard "
             "(`triggers.max_event_age`) and memory "
             "(`triggers.max_users`)."},
    {.name = "risk.trigger.exit", .type = PT_DOUBLE,
     .off = F_DBL(risk_trigger_exit), .dmin = 0, .dmax = 1, .def = "0.5",
     .help = "A user whose risk trigger fired is re-armed (a `DOWN` "
             "record) when the risk score falls below this; must not "
             "exceed `risk.trigger.enter`."},
    {.name = "risk.trigger.cooldown", .type = PT_DURATION,
     .off = F_I64(risk_trigger_cooldown_ms), .min = 0, .max = 7 * DAY_MS,
     .def = "1h",
     .help = "Least event time between two `UP` risk triggers of one "
             "user."},

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
     .help = "Out-of-order tolerance: the watermark trails the partition's "
             "event-time frontier (the time most of its recent users agree "
             "on; one client with a clock ahead cannot move it) by this "
             "much. Events older than the watermark are late: still "
             "predicted, but they change no state and are not learned from "
             "(docs/FEATURES.md, Late data). A pending prediction resolves "
             "as negative only once the watermark passes its horizon. A "
             "partition that receives nothing moves on with the wall clock "
             "only after the longer of this and 10 s without an event of "
             "its own, and only once no event at all has arrived for 10 s "
             "(docs/FEATURES.md, Idle partitions and the watermark)."},
    {.name = "session.gap", .type = PT_DURATION, .off = F_I64(session_gap_ms),
     .min = MIN_MS, .max = DAY_MS, .def = "30m",
     .help = "Inactivity after which a user's next event starts a new "
             "session; session features restart from zero."},
    {.name = "state.idle_ttl", .type = PT_DURATION,
     .off = F_I64(state_idle_ttl_ms), .min = HOUR_MS, .max = 90 * DAY_MS,
     .def = "7d",
     .help = "Per-user state untouched for this long in event time is "
             "dropped, so users who never return do not hold memory."},
    {.name = "state.changelog.interval", .type = PT_DURATION,
     .off = F_I64(state_changelog_interval_ms), .min = 100, .max = DAY_MS,
     .def = "10s",
     .help = "With `topics.changelog`: how often each assigned partition "
             "that consumed since its last snapshot writes a new one (one "
             "more is written on revoke and at stop). A moved partition "
             "replays the events after its newest snapshot, so this bounds "
             "the replay; each snapshot costs the partition's whole state "
             "(about 240 bytes per user, 390 per pending label) on the "
             "topic and a pause of the pipeline to encode it."},
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
             "full, the oldest pending prediction is dropped from training "
             "(counted; it was published, only its training example and "
             "its progressive-validation judgement are lost); size it above "
             "the events a partition sees within `labels.horizon` plus "
             "`windows.allowed_lateness`."},
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
    {.name = "model.negative.sample.rate", .type = PT_DOUBLE,
     .off = F_DBL(model_negative_sample_rate), .dmin = 0, .dmin_excl = true,
     .dmax = 1, .def = "1",
     .help = "Fraction of the resolved negative examples the model trains "
             "on; each kept negative then weighs 1 / rate in the loss "
             "(importance weights), so scores stay calibrated to the full "
             "stream. Which negatives are kept is a hash of the user and "
             "the event time: the same on every replay and after a "
             "restart. Every example is still judged (progressive "
             "validation). 1 trains on all of them; below 1 training "
             "costs about that fraction of its full cost at a base rate "
             "of a few percent (docs/MODEL.md, Negative down-sampling)."},
    {.name = "model.positives.hold", .type = PT_INT,
     .off = F_I64(model_positives_hold), .min = 0, .max = 10000000,
     .def = "4096", .unit = "examples",
     .help = "Resolved positives held back from training until their "
             "horizon has closed (a negative of a later prediction has "
             "resolved), so that both classes are learned with the same "
             "delay; at most this many at once, the oldest learned when "
             "full. Until the first negative resolves, positives are "
             "learned at once. 0 learns every positive as soon as its "
             "purchase arrives (docs/MODEL.md, Online protocol)."},
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
     .def = "0",
     .help = "MLP: step size of the wide path, a linear model over the "
             "standardised dense features added to the network's purchase "
             "logit (weights by SGD, the purchase bias by AdaGrad); the "
             "inputs that model.linear.newton fits are left to it. 0 "
             "removes the path: by default the Newton-fitted inputs and "
             "the offsets are the linear part (docs/MODEL.md)."},
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
    {.name = "model.user.offset", .type = PT_BOOL,
     .off = F_INT(model_user_offset), .def = "true",
     .help = "MLP: adds the user's propensity to buy, the features "
             "`purchase_logodds` and `label_logodds` (log-odds against the "
             "partition's rates, docs/FEATURES.md), to the purchase logit "
             "as offsets whose two weights are fitted online by Newton's "
             "method from 1/2 each; the network and the wide path learn "
             "what moves a prediction away from the user's own rate. Part "
             "of the model's shape: a checkpoint made with the other "
             "setting does not load."},
    {.name = "model.linear.newton", .type = PT_BOOL,
     .off = F_INT(model_linear_newton), .def = "true",
     .help = "MLP: the dense features that describe what the user is "
             "doing now (every one but the lifetime ones, "
             "docs/FEATURES.md) also enter the purchase logit linearly, "
             "standardised, with weights fitted online by Newton's method "
             "together with the offsets, from 0 under a prior worth some "
             "13,000 examples. Part of the model's shape: a checkpoint "
             "made with the other setting does not load."},
    {.name = "model.average.steps", .type = PT_INT,
     .off = F_I64(model_average_steps), .min = 0, .max = 1000000,
     .def = "100", .unit = "steps",
     .help = "MLP: predictions read an average of the parameters, weighted "
             "by step number and then exponential over about this many "
             "training steps; training steps on the parameters themselves. "
             "Labels arrive in bursts and each step follows the latest "
             "one: the average keeps what recent steps agree on. 0 scores "
             "with the latest parameters. On or off is part of the model's "
             "shape: a checkpoint made with the other setting does not "
             "load."},
    {.name = "model.sync.interval", .type = PT_DURATION,
     .off = F_I64(model_sync_interval_ms), .min = 100, .max = DAY_MS,
     .def = "10s",
     .help = "With `topics.model`: how often an instance publishes what its "
             "model learned since its last publish (dense layers and the "
             "embedding rows that changed) and merges what the others "
             "published. Shorter keeps the instances closer together at "
             "the cost of more traffic on the model topic."},
    {.name = "model.sync.snapshot.interval", .type = PT_DURATION,
     .off = F_I64(model_sync_snapshot_interval_ms), .min = SEC_MS,
     .max = 30 * DAY_MS, .def = "10m",
     .help = "With `topics.model`: how often an instance also publishes its "
             "whole merged model (every dense row and every embedding row "
             "that ever changed), from which a new instance starts instead "
             "of from scratch. Changes older than the newest snapshot are "
             "then no longer needed: set the topic's retention to a few "
             "times this."},
    {.name = "model.score.span", .type = PT_DURATION,
     .off = F_I64(model_score_span_ms), .min = 0, .max = DAY_MS,
     .def = "3m",
     .help = "Longest stretch of event time that one scoring pass covers: "
             "a poll batch spanning more is scored in chunks, and what "
             "resolves after each chunk is learned from before the next is "
             "scored. On a sparse stream a batch can span hours, all scored "
             "with the model of its start; a dense stream's batches span "
             "well under it and stay one pass. 0 = one pass per batch."},

    {.name = "pipeline.workers", .type = PT_INT, .off = F_I64(pipeline_workers), .min = 0,
     .max = 64, .def = "1", .unit = "threads",
     .help = "Pipeline threads, each owning its partitions (`run`: "
             "partition p goes to worker p % workers; `replay` spreads "
             "users over one partition per worker by hash) and training a "
             "replica of the one model; every 8 rounds (a round: at most "
             "512 events per worker) the replicas are averaged, so they "
             "stay one model (docs/ARCHITECTURE.md, Workers). 1 (the "
             "default) is the single-thread pipeline exactly; 0 = the "
             "online cores, at most 8. More workers process more events "
             "per second but learn more slowly from the same events "
             "(docs/OPERATIONS.md, Scale out: how to size it): they are "
             "deterministic for a given count, not bit-identical to "
             "another count. `run` gains nothing from more workers than "
             "assigned partitions."},

    /* predict, metrics, log, shutdown */
    {.name = "predict.threshold", .type = PT_DOUBLE,
     .off = F_DBL(predict_threshold), .dmin = 0, .dmax = 1, .def = "0.2",
     .reloadable = true,
     .help = "Decision threshold on `purchase_probability` for the "
             "accuracy, precision, recall and F1 reported in logs, metrics "
             "and the run summary. It does not change the published "
             "scores."},
    {.name = "predict.explain", .type = PT_INT, .off = F_I64(predict_explain),
     .min = 0, .max = 3, .def = "3", .unit = "features",
     .help = "Dense features named in each prediction's `explanation`, "
             "largest contribution to the purchase logit first: input times "
             "gradient (the feature's value times the logit's derivative "
             "by it, through the network, the wide path and the offsets, "
             "at the parameters that scored). One more pass down the "
             "network per batch (docs/SCHEMAS.md). 0 turns it off "
             "(`explanation` null); the logistic baseline explains "
             "nothing."},
    {.name = "metrics.log.interval", .type = PT_DURATION,
     .off = F_I64(metrics_log_interval_ms), .min = SEC_MS, .max = HOUR_MS,
     .def = "10s", .reloadable = true,
     .help = "How often a progress line (throughput, lag, AUC, log loss) "
             "is logged."},
    {.name = "metrics.listen", .type = PT_STRING, .off = F_STR(metrics_listen),
     .min = 0, .max = 255, .def = "127.0.0.1:9464",
     .check = itd_conf_listen_ok,
     .help = "Address of the HTTP endpoint serving /metrics (Prometheus "
             "text format), /livez and /readyz: `host:port`, `[v6]:port`, "
             "or `:port` for every IPv4 address. Empty turns the endpoint "
             "off. An address that cannot be bound (port in use) stops "
             "start-up with exit 78."},
    {.name = "metrics.query", .type = PT_ENUM, .off = F_INT(metrics_query),
     .syms = (const char *const[]){"off", "on", NULL}, .def = "off",
     .help = "`on` answers `GET /users/<user_id>` on `metrics.listen`: "
             "the user's state (events per window, first and last event "
             "time, session, top categories) and latest prediction (score, "
             "next action, model), as JSON, for support and marketing "
             "tools. The user is named by the pseudonym of the logs, never "
             "the id. Loopback clients only (403 otherwise), at most 20 "
             "requests a second (429), answered by the pipeline between "
             "two batches (503 after 2 s). Keeps the latest prediction of "
             "up to 65536 users (about 16 MiB). docs/OPERATIONS.md, "
             "\"Asking about one user\"."},
    {.name = "metrics.window", .type = PT_INT, .off = F_I64(metrics_window),
     .min = 100, .max = 10000000, .def = "10000", .unit = "examples",
     .help = "Judged examples (predictions whose label is known) behind "
             "the `intentd_progressive_window_*` gauges: AUC, log loss, "
             "calibration error and base rate over the most recent ones "
             "only, beside the cumulative `intentd_progressive_*`. Smaller "
             "reacts faster and is noisier; with a 2% base rate, 10000 "
             "examples hold about 200 purchases. Memory: about 700 KiB."},
    {.name = "health.liveness.timeout", .type = PT_DURATION,
     .off = F_I64(health_liveness_timeout_ms), .min = SEC_MS,
     .max = 10 * MIN_MS, .def = "10s",
     .help = "/livez answers 503 when the main loop has not turned for this "
             "long."},
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
             "object per line (time in RFC 3339 UTC with milliseconds, "
             "level, facility, message) for log shippers; "
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
             "is restored and consumption resumes at its positions; offsets "
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
    {.name = "checkpoint.on_corrupt", .type = PT_ENUM,
     .off = F_INT(checkpoint_on_corrupt),
     .syms = (const char *const[]){"start_empty", "refuse", NULL},
     .def = "start_empty",
     .help = "What start-up does when checkpoints exist but every one is "
             "damaged (truncated, checksum mismatch, not regular files). "
             "`start_empty`: log an error, count them in "
             "`intentd_checkpoint_damaged_total`, move them aside as "
             "`damaged-cut-N` and start with empty state and a fresh "
             "model. `refuse`: log why and exit 78 (not restarted), so an "
             "operator decides. Checkpoints refused for another "
             "configuration always stop start-up (docs/CHECKPOINTS.md)."},
};

const size_t itd_conf_n_props =
    sizeof itd_conf_props / sizeof itd_conf_props[0];

/* Headings of the generated docs, one per first name segment. A new
 * segment in the table needs its line here. */
const struct itd_conf_group itd_conf_groups[] = {
    {"topics", "Kafka topics"},
    {"input", "Event input"},
    {"output", "Prediction output"},
    {"triggers", "Marketing triggers"},
    {"risk", "Risk score"},
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

const size_t itd_conf_n_groups =
    sizeof itd_conf_groups / sizeof itd_conf_groups[0];

const char *const itd_conf_kafka_help =
    "Every key under `kafka:` is handed to librdkafka with the `kafka.` "
    "prefix stripped, in file order (setting one twice in a file is an "
    "error; a `-o` override replaces the file's value), so librdkafka's "
    "CONFIGURATION.md applies. Nested maps are "
    "joined with dots: `kafka: {bootstrap: {servers: ...}}` is "
    "`bootstrap.servers`. A list value is joined with commas. Unknown "
    "properties and bad values are reported at load time, with the line. "
    "`bootstrap.servers` has no default: `intentd run` (and "
    "`intentd check-config`) refuse a file without it.";

