#!/usr/bin/env python3
"""Reads intentd's outputs through a schema registry with a third-party
client and checks every field.

Usage: check_registry.py BOOTSTRAP REGISTRY_URL EVENTS_JSONL
                         [--min-triggers N] [--max-age-ms MS] [--timeout S]

Consumes intentd.events, intentd.predictions and intentd.triggers (all
partitions, from the beginning, up to their end now) with confluent-kafka
and decodes every value with confluent-kafka's own Schema Registry Avro
deserializer (confluent_kafka.avro: CachedSchemaRegistryClient and
MessageSerializer, which fetch each writer schema by the id in the
record's Confluent header; the newer schema_registry.avro.AvroDeserializer
needs fastavro, which Debian does not package). Checks:

- each topic's records carry the id the registry holds for the subject
  <topic>-value (the topic-name strategy), and the three ids differ;
- the Kafka timestamp of every prediction and trigger is its event time;
- predictions echo their event's event_id, session_id and type (looked up
  in EVENTS_JSONL by event_id), name a model_id of the form
  <16 hex>-<16 hex>, the same on every record of one run, and explain
  themselves with 1..3 named features, largest contribution first;
- triggers name their rule, its parameter and threshold, direction, the
  prediction they come from (which exists), next action and its
  probability, top categories, expiry = event time + --max-age-ms.

Prints a summary; exits 0 when every record is good, 1 otherwise.
"""
import argparse
import datetime
import json
import math
import re
import sys
import time
import urllib.request

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.avro.cached_schema_registry_client import \
    CachedSchemaRegistryClient
from confluent_kafka.avro.serializer.message_serializer import \
    MessageSerializer

TOPICS = ["intentd.events", "intentd.predictions", "intentd.triggers"]
EVENT_TYPES = ["VIEW", "SEARCH", "ADD_TO_CART", "REMOVE_FROM_CART",
               "PURCHASE", "FAVORITE"]
NEXT_ACTIONS = ["VIEW", "SEARCH", "ADD_TO_CART", "PURCHASE", "LEAVE"]
RULES = ["ABSOLUTE", "TOP_PERCENT", "LIFT"]
MODEL_ID_RE = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{16}$")
# Floats travel as Avro's 4-byte float: compare at float precision.
FLOAT_TOL = 1e-6


def millis(v):
    """timestamp-millis as python3-avro gives it (aware datetime) or int."""
    if isinstance(v, datetime.datetime):
        return round(v.timestamp() * 1000)
    return v


def subject_id(url, subject):
    with urllib.request.urlopen(f"{url}/subjects/{subject}/versions/latest",
                                timeout=10) as r:
        return json.load(r)["id"]


def read_topic(bootstrap, topic, timeout):
    c = Consumer({"bootstrap.servers": bootstrap,
                  "group.id": "intentd-registry-check",
                  "enable.auto.commit": False})
    meta = c.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        raise SystemExit(f"topic {topic!r} not found")
    parts = sorted(meta.partitions)
    high = {p: c.get_watermark_offsets(TopicPartition(topic, p),
                                       timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, pos = [], {p: 0 for p in parts}
    deadline = time.monotonic() + timeout
    while any(pos[p] < high[p] for p in parts) and \
            time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        pos[m.partition()] = m.offset() + 1
        out.append(m)
    c.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bootstrap")
    ap.add_argument("registry")
    ap.add_argument("events")
    ap.add_argument("--min-triggers", type=int, default=1)
    ap.add_argument("--max-age-ms", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    events = {}
    with open(args.events, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            events[e["event_id"]] = e

    serde = MessageSerializer(CachedSchemaRegistryClient({"url": args.registry}))
    want_id = {t: subject_id(args.registry, f"{t}-value") for t in TOPICS}
    bad = []
    if len(set(want_id.values())) != 3:
        bad.append(f"subjects share ids: {want_id}")

    decoded = {}
    for t in TOPICS:
        recs = []
        for m in read_topic(args.bootstrap, t, args.timeout):
            v = m.value()
            if len(v) < 5 or v[0] != 0:
                bad.append(f"{t}@{m.partition()}/{m.offset()}: no header")
                continue
            sid = int.from_bytes(v[1:5], "big")
            if sid != want_id[t]:
                bad.append(f"{t}@{m.offset()}: schema id {sid}, subject "
                           f"{t}-value has {want_id[t]}")
            rec = serde.decode_message(v)
            recs.append((m, rec))
        decoded[t] = recs

    preds = {}
    model_ids = set()
    for m, r in decoded["intentd.predictions"]:
        where = f"prediction {r.get('prediction_id')}"
        preds[r["prediction_id"]] = r
        ts_type, ts = m.timestamp()
        if ts != millis(r["event_ts"]):
            bad.append(f"{where}: record timestamp {ts} is not event_ts "
                       f"{millis(r['event_ts'])}")
        if m.key().decode() != r["user_id"]:
            bad.append(f"{where}: key is not user_id")
        e = events.get(r.get("event_id"))
        if e is None:
            bad.append(f"{where}: event_id {r.get('event_id')!r} not an "
                       "event of the input")
        else:
            if r.get("session_id") != e.get("session_id"):
                bad.append(f"{where}: session_id {r.get('session_id')!r}, "
                           f"event had {e.get('session_id')!r}")
            if r.get("event_type") != e["type"]:
                bad.append(f"{where}: event_type {r.get('event_type')!r}, "
                           f"event had {e['type']!r}")
            if millis(r["event_ts"]) != e["ts"] or r["user_id"] != e["user_id"]:
                bad.append(f"{where}: event time or user differ from the "
                           "event's")
        if not MODEL_ID_RE.match(r.get("model_id") or ""):
            bad.append(f"{where}: model_id {r.get('model_id')!r}")
        model_ids.add(r.get("model_id"))
        if not isinstance(r.get("model_version"), int):
            bad.append(f"{where}: model_version {r.get('model_version')!r}")
        p = r.get("purchase_probability")
        if not (isinstance(p, float) and 0 <= p <= 1):
            bad.append(f"{where}: purchase_probability {p!r}")
        ex = r.get("explanation")
        # predict.explain 3 (default): 1..3 named dense features, largest
        # contribution first
        if not isinstance(ex, list) or not 1 <= len(ex) <= 3 or any(
                not isinstance(e.get("feature"), str) or not e["feature"] or
                not isinstance(e.get("contribution"), float) or
                not math.isfinite(e["contribution"]) for e in ex) or any(
                abs(ex[k]["contribution"]) < abs(ex[k + 1]["contribution"])
                for k in range(len(ex) - 1)):
            bad.append(f"{where}: explanation {ex!r}")
    if len(model_ids) > 1:
        bad.append(f"one run, several model ids: {sorted(model_ids)}")

    n_up = 0
    for m, r in decoded["intentd.triggers"]:
        where = f"trigger of {r.get('prediction_id')}"
        p = preds.get(r.get("prediction_id"))
        if p is None:
            bad.append(f"{where}: no such prediction")
            continue
        ev_ts = millis(r["event_ts"])
        if m.timestamp()[1] != ev_ts:
            bad.append(f"{where}: record timestamp {m.timestamp()[1]} is not "
                       f"event_ts {ev_ts}")
        if r["user_id"] != p["user_id"] or ev_ts != millis(p["event_ts"]):
            bad.append(f"{where}: user or event time differ from the "
                       "prediction's")
        if abs(r["score"] - p["purchase_probability"]) > FLOAT_TOL:
            bad.append(f"{where}: score {r['score']} is not the "
                       "prediction's")
        if r.get("rule") not in RULES:
            bad.append(f"{where}: rule {r.get('rule')!r}")
        if r["direction"] not in ("UP", "DOWN"):
            bad.append(f"{where}: direction {r['direction']!r}")
        n_up += r["direction"] == "UP"
        thr = r["threshold"]
        if r["direction"] == "UP" and not r["score"] >= thr - FLOAT_TOL:
            bad.append(f"{where}: UP at {r['score']} below threshold {thr}")
        if r["direction"] == "DOWN" and not r["score"] < thr + FLOAT_TOL:
            bad.append(f"{where}: DOWN at {r['score']} not below {thr}")
        if not (isinstance(r.get("rule_parameter"), float) and
                math.isfinite(r["rule_parameter"]) and
                r["rule_parameter"] > 0):
            bad.append(f"{where}: rule_parameter {r.get('rule_parameter')!r}")
        if millis(r.get("expires_at")) != ev_ts + args.max_age_ms:
            bad.append(f"{where}: expires_at {millis(r.get('expires_at'))}, "
                       f"want {ev_ts + args.max_age_ms}")
        if millis(r["fired_at"]) < ev_ts:
            bad.append(f"{where}: fired_at before the event")
        if r.get("next_action") != p["next_action"]:
            bad.append(f"{where}: next_action {r.get('next_action')!r}, "
                       f"prediction {p['next_action']!r}")
        probs = p["next_action_probabilities"]
        want = probs[p["next_action"].lower()]
        if abs(r.get("next_action_probability", -1) - want) > FLOAT_TOL:
            bad.append(f"{where}: next_action_probability "
                       f"{r.get('next_action_probability')} not {want}")
        if r.get("top_categories") != p["top_categories"]:
            bad.append(f"{where}: top_categories {r.get('top_categories')} "
                       f"not the prediction's {p['top_categories']}")
    if n_up < args.min_triggers:
        bad.append(f"{n_up} UP triggers, want at least {args.min_triggers}")

    for b in bad[:20]:
        print("BAD", b)
    print(f"events {len(decoded['intentd.events'])} predictions "
          f"{len(decoded['intentd.predictions'])} triggers "
          f"{len(decoded['intentd.triggers'])} (UP {n_up}); ids {want_id}; "
          f"model_id {sorted(model_ids)}; {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
