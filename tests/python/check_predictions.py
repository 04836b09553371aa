#!/usr/bin/env python3
"""Reads intentd's prediction topic with third-party clients and checks it.

Usage: check_predictions.py BOOTSTRAP SCHEMA [--topic T] [--expect N]
                            [--timeout S]

Consumes every record of the topic (all partitions, from the beginning)
with confluent-kafka, decodes each value with the Apache Avro library
against SCHEMA (config/prediction.avsc; values may carry the Confluent
header: magic byte 0 and a 4-byte schema id), and checks field types and
ranges, that the key is the user id, and that prediction ids look like
"topic/partition/offset". Prints a summary; exits 0 when every record is
good (and at least --expect records were read), 1 otherwise, 2 on usage
errors.

Needs python3-confluent-kafka and python3-avro (Debian packages).
"""
import argparse
import datetime
import io
import math
import re
import sys
import time

import avro.io
import avro.schema
from confluent_kafka import Consumer, KafkaError, TopicPartition

NEXT_ACTIONS = ["VIEW", "SEARCH", "ADD_TO_CART", "PURCHASE", "LEAVE"]
PROB_FIELDS = ["view", "search", "add_to_cart", "purchase", "leave"]
ID_RE = re.compile(r"^[A-Za-z0-9._-]+/\d+/\d+$")
# The five next-action probabilities are a softmax over float32 values.
SOFTMAX_SUM_TOL = 1e-3
MIN_TS_MS = 946684800000  # 2000-01-01T00:00:00Z


def unframe(value):
    """Strips the Confluent header when present; returns (payload, id)."""
    if len(value) >= 5 and value[0] == 0:
        return value[5:], int.from_bytes(value[1:5], "big")
    return value, None


def is_prob(x):
    return isinstance(x, float) and math.isfinite(x) and 0.0 <= x <= 1.0


def check(rec, key):
    """Returns a list of problems with one decoded prediction."""
    bad = []
    for f in ("prediction_id", "user_id"):
        if not isinstance(rec.get(f), str) or not rec[f]:
            bad.append(f"{f} is not a non-empty string")
    if isinstance(rec.get("prediction_id"), str) and \
            not ID_RE.match(rec["prediction_id"]):
        bad.append(f"prediction_id {rec['prediction_id']!r} is not "
                   "topic/partition/offset")
    if key is None or key.decode("utf-8", "replace") != rec.get("user_id"):
        bad.append(f"key {key!r} is not user_id {rec.get('user_id')!r}")
    for f in ("event_ts", "predicted_at"):
        v = rec.get(f)
        # python3-avro applies the timestamp-millis logical type (an aware
        # datetime in UTC); other readers give the plain long.
        if isinstance(v, datetime.datetime):
            v = round(v.timestamp() * 1000) if v.tzinfo else None
        if not isinstance(v, int) or v < MIN_TS_MS:
            bad.append(f"{f} {rec.get(f)!r} is not a timestamp-millis "
                       "after 2000")
    if not is_prob(rec.get("purchase_probability")):
        bad.append("purchase_probability "
                   f"{rec.get('purchase_probability')!r} outside 0..1")
    if rec.get("next_action") not in NEXT_ACTIONS:
        bad.append(f"next_action {rec.get('next_action')!r} unknown")
    probs = rec.get("next_action_probabilities") or {}
    vals = [probs.get(f) for f in PROB_FIELDS]
    if not all(is_prob(v) for v in vals):
        bad.append(f"next_action_probabilities {probs!r} outside 0..1")
    elif abs(sum(vals) - 1.0) > SOFTMAX_SUM_TOL:
        bad.append(f"next_action_probabilities sum to {sum(vals)}")
    elif rec.get("next_action") in NEXT_ACTIONS and \
            vals[NEXT_ACTIONS.index(rec["next_action"])] < max(vals):
        bad.append("next_action is not the most probable action")
    if not isinstance(rec.get("model_version"), int) or \
            rec["model_version"] < 0:
        bad.append(f"model_version {rec.get('model_version')!r}")
    cats = rec.get("top_categories")
    if not isinstance(cats, list) or any(
            not isinstance(c.get("category"), str) or
            not isinstance(c.get("score"), float) for c in cats):
        bad.append(f"top_categories {cats!r}")
    expl = rec.get("explanation")
    if expl is not None and (not isinstance(expl, list) or any(
            not isinstance(e.get("feature"), str) for e in expl)):
        bad.append(f"explanation {expl!r}")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bootstrap")
    ap.add_argument("schema", help="path of config/prediction.avsc")
    ap.add_argument("--topic", default="intentd.predictions")
    ap.add_argument("--expect", type=int, default=1,
                    help="fail unless at least this many records are read")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds to wait for the records")
    args = ap.parse_args()

    with open(args.schema, encoding="utf-8") as f:
        schema = avro.schema.parse(f.read())
    reader = avro.io.DatumReader(schema)

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "intentd-python-check",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    meta = consumer.list_topics(args.topic, timeout=10)
    tmeta = meta.topics.get(args.topic)
    if tmeta is None or tmeta.error is not None or not tmeta.partitions:
        print(f"topic {args.topic!r} not found", file=sys.stderr)
        return 1
    parts = sorted(tmeta.partitions)
    # The end of every partition now: read up to there (and keep going
    # while fewer than --expect records have arrived).
    high = {}
    for p in parts:
        _, high[p] = consumer.get_watermark_offsets(
            TopicPartition(args.topic, p), timeout=10)
    consumer.assign([TopicPartition(args.topic, p, 0) for p in parts])

    n = n_bad = 0
    framed = set()
    ids = set()
    users = set()
    examples = []
    pos = {p: 0 for p in parts}
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if n >= args.expect and all(pos[p] >= high[p] for p in parts):
            break
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            print(f"consume error: {msg.error()}", file=sys.stderr)
            continue
        pos[msg.partition()] = msg.offset() + 1
        n += 1
        payload, schema_id = unframe(msg.value() or b"")
        framed.add(schema_id)
        where = f"{msg.topic()}/{msg.partition()}@{msg.offset()}"
        try:
            buf = io.BytesIO(payload)
            rec = reader.read(avro.io.BinaryDecoder(buf))
            if buf.tell() != len(payload):
                raise ValueError(f"{len(payload) - buf.tell()} trailing "
                                 "bytes")
        except Exception as e:  # any decoding failure is a finding
            n_bad += 1
            if len(examples) < 5:
                examples.append(f"{where}: does not decode: {e}")
            continue
        problems = check(rec, msg.key())
        if problems:
            n_bad += 1
            if len(examples) < 5:
                examples.append(f"{where}: " + "; ".join(problems))
        ids.add(rec["prediction_id"])
        users.add(rec["user_id"])
    consumer.close()

    print(f"read {n} predictions from {args.topic!r} ({len(parts)} "
          f"partitions): {len(ids)} distinct prediction ids, {len(users)} "
          f"users, framing "
          f"{sorted('bare' if s is None else f'confluent:{s}' for s in framed)}"
          f", {n_bad} bad")
    for e in examples:
        print("  " + e)
    if n < args.expect:
        print(f"expected at least {args.expect} predictions", file=sys.stderr)
        return 1
    return 0 if n_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
