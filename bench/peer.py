#!/usr/bin/env python3
"""peer.py - what a team would write instead of intentd.

A python3-confluent-kafka consumer of the events topic (bare Avro, keyed
by user) with a PyTorch MLP of intentd's shape (70 dense features ->
128 -> 64 -> purchase head + next-action head), scoring every event,
publishing one prediction per event, and learning online from the same
labels as intentd: purchase by the same user within 30 minutes of the
event's time, resolved by that user's later events or, as negatives, once
the partition's event time has passed the horizon. Online Adam steps of
256 resolved examples.

  --mode batched  the competent form: consume(500), featurise, score the
                  500 in one forward pass, produce, train.
  --mode naive    one message at a time: poll(), featurise, score, produce.

Kafka settings as intentd ships them (queued.min.messages=1000000,
linger.ms=5); one PyTorch thread, as intentd uses one BLAS thread.
Avro is decoded by a hand-written reader of config/event.avsc (what
fastavro does in C; Debian 12 has no python3-fastavro), checked against
python3-avro's DatumReader on the first message when that is installed.

Prints one JSON line {"bench":"peer",...} last. Run by bench_e2e.
"""
import argparse
import io
import json
import math
import struct
import sys
import time
from collections import defaultdict, deque

import torch
from confluent_kafka import Consumer, Producer

TYPES = ["VIEW", "SEARCH", "ADD_TO_CART", "REMOVE_FROM_CART", "PURCHASE",
         "FAVORITE"]
PURCHASE = 4
WINDOWS_MS = [5 * 60_000, 3_600_000, 86_400_000, 7 * 86_400_000]
HORIZON_MS = 30 * 60_000
SESSION_GAP_MS = 30 * 60_000
N_DENSE = 70
TRAIN_BATCH = 256

EVENT_SCHEMA = """{"type":"record","name":"Event","namespace":"io.intentd",
"fields":[{"name":"event_id","type":["null","string"]},
{"name":"user_id","type":"string"},{"name":"ts","type":"long"},
{"name":"type","type":{"type":"enum","name":"EventType","symbols":
["VIEW","SEARCH","ADD_TO_CART","REMOVE_FROM_CART","PURCHASE","FAVORITE"]}},
{"name":"item_id","type":["null","string"]},
{"name":"category","type":["null","string"]},
{"name":"price","type":["null","double"]},
{"name":"query","type":["null","string"]},
{"name":"session_id","type":["null","string"]}]}"""


# ---- Avro, by hand --------------------------------------------------------

def _long(b, i):
    shift = 0
    acc = 0
    while True:
        c = b[i]
        i += 1
        acc |= (c & 0x7F) << shift
        if c < 0x80:
            return (acc >> 1) ^ -(acc & 1), i
        shift += 7


def _string(b, i):
    n, i = _long(b, i)
    return b[i:i + n].decode(), i + n


def _opt_string(b, i):
    branch, i = _long(b, i)
    if branch == 0:
        return None, i
    return _string(b, i)


def decode_event(b):
    """Bare Avro (or Confluent framing) -> dict of the event schema."""
    i = 5 if len(b) > 5 and b[0] == 0 else 0
    event_id, i = _opt_string(b, i)
    user_id, i = _string(b, i)
    ts, i = _long(b, i)
    typ, i = _long(b, i)
    item_id, i = _opt_string(b, i)
    category, i = _opt_string(b, i)
    branch, i = _long(b, i)
    price = None
    if branch:
        price = struct.unpack_from("<d", b, i)[0]
        i += 8
    query, i = _opt_string(b, i)
    session_id, i = _opt_string(b, i)
    return {"event_id": event_id, "user_id": user_id, "ts": ts,
            "type": typ, "item_id": item_id, "category": category,
            "price": price, "query": query, "session_id": session_id}


def check_decoder(value):
    """Compares the hand reader with python3-avro on one message."""
    try:
        import avro.io
        import avro.schema
    except ImportError:
        return "python3-avro absent: not checked"
    parse = getattr(avro.schema, "parse", None) or avro.schema.Parse
    schema = parse(EVENT_SCHEMA)
    body = value[5:] if len(value) > 5 and value[0] == 0 else value
    ref = avro.io.DatumReader(schema).read(
        avro.io.BinaryDecoder(io.BytesIO(body)))
    mine = decode_event(value)
    mine["type"] = TYPES[mine["type"]]
    if ref != mine:
        raise SystemExit(f"peer: hand Avro reader disagrees: {ref} {mine}")
    return "agrees with python3-avro"


# ---- per-user state and features -------------------------------------------

class User:
    __slots__ = ("events", "counts", "last_ts", "session_start", "session_n",
                 "session_carts", "session_searches", "cats", "price_sum",
                 "price_n", "pending")

    def __init__(self):
        self.events = deque()          # (ts, type) within the largest window
        self.counts = [0] * 6          # lifetime per type
        self.last_ts = [None] * 6      # last event of each type
        self.session_start = None
        self.session_n = 0
        self.session_carts = 0
        self.session_searches = 0
        self.cats = defaultdict(int)
        self.price_sum = 0.0
        self.price_n = 0
        self.pending = []              # [ts, x, resolved] awaiting a label


def features(u, ev):
    """Applies ev to u, returns 70 floats (only events at or before ev)."""
    ts, t = ev["ts"], ev["type"]
    x = [0.0] * N_DENSE
    # recency: state before the event (6)
    for k in range(6):
        last = u.last_ts[k]
        x[k] = math.log1p((ts - last) / 1000.0) if last is not None else -1.0
    # apply
    if u.events and ts - u.events[-1][0] > SESSION_GAP_MS:
        u.session_start = None
    if u.session_start is None:
        u.session_start, u.session_n = ts, 0
        u.session_carts = u.session_searches = 0
    u.session_n += 1
    u.session_carts += t == 2
    u.session_searches += t == 1
    u.events.append((ts, t))
    while ts - u.events[0][0] > WINDOWS_MS[-1]:
        u.events.popleft()
    u.counts[t] += 1
    u.last_ts[t] = ts
    cat = ev["category"]
    if cat:
        u.cats[cat] += 1
    price = ev["price"]
    if price is not None:
        u.price_sum += price
        u.price_n += 1
    # window counts per type (24)
    j = 6
    for w in WINDOWS_MS:
        c = [0] * 6
        for ets, et in reversed(u.events):
            if ts - ets >= w:
                break
            c[et] += 1
        for k in range(6):
            x[j + k] = math.log1p(c[k])
        j += 6
    # lifetime counts (6) and rates (6)
    total = sum(u.counts)
    for k in range(6):
        x[30 + k] = math.log1p(u.counts[k])
        x[36 + k] = (u.counts[k] + 0.5) / (total + 10.0)
    # the event's type (6)
    x[42 + t] = 1.0
    # session (4)
    x[48] = math.log1p(u.session_n)
    x[49] = math.log1p(u.session_carts)
    x[50] = math.log1p(u.session_searches)
    x[51] = math.log1p((ts - u.session_start) / 1000.0)
    # price (4)
    if price is not None:
        x[52] = math.log1p(price)
        mean = u.price_sum / u.price_n
        x[53] = math.log1p(mean)
        x[54] = price / (mean + 1e-6)
    x[55] = 1.0 if price is not None else 0.0
    # category affinity (3)
    if cat:
        x[56] = u.cats[cat] / total
        x[57] = math.log1p(u.cats[cat])
    x[58] = math.log1p(len(u.cats))
    # time of day and week (4)
    day = (ts / 86_400_000.0) % 7.0
    hour = (ts / 3_600_000.0) % 24.0
    x[59] = math.sin(2 * math.pi * hour / 24)
    x[60] = math.cos(2 * math.pi * hour / 24)
    x[61] = math.sin(2 * math.pi * day / 7)
    x[62] = math.cos(2 * math.pi * day / 7)
    # purchase history (4), the strongest signal in the shared data
    lp = u.last_ts[PURCHASE]
    x[63] = (u.counts[PURCHASE] + 0.5) / (total + 10.0)
    x[64] = 1.0 if lp is not None and ts - lp <= 86_400_000 else 0.0
    x[65] = 1.0 if ev["query"] else 0.0
    x[66] = 1.0 if ev["item_id"] else 0.0
    x[67] = math.log1p(total)
    x[68] = math.log1p(len(u.events))
    x[69] = 1.0
    return x


# ---- the model --------------------------------------------------------------

class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(N_DENSE, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 64), torch.nn.ReLU())
        self.purchase = torch.nn.Linear(64, 1)
        self.next = torch.nn.Linear(64, 5)

    def forward(self, x):
        h = self.body(x)
        return self.purchase(h).squeeze(-1), self.next(h)


class Learner:
    def __init__(self):
        torch.manual_seed(42)
        self.model = MLP()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3,
                                    weight_decay=1e-6)
        self.bce = torch.nn.BCEWithLogitsLoss()
        self.xs, self.ys = [], []
        self.steps = 0

    def score(self, rows):
        with torch.no_grad():
            logit, _ = self.model(torch.tensor(rows, dtype=torch.float32))
            return torch.sigmoid(logit).tolist()

    def add(self, x, y):
        self.xs.append(x)
        self.ys.append(y)
        if len(self.xs) >= TRAIN_BATCH:
            x = torch.tensor(self.xs, dtype=torch.float32)
            y = torch.tensor(self.ys, dtype=torch.float32)
            self.xs, self.ys = [], []
            self.opt.zero_grad()
            logit, _ = self.model(x)
            self.bce(logit, y).backward()
            self.opt.step()
            self.steps += 1


# ---- the loop -------------------------------------------------------------

class Peer:
    def __init__(self, args):
        self.args = args
        self.users = {}
        self.learner = Learner()
        self.queue = defaultdict(deque)   # partition -> pending in ts order
        self.watermark = {}
        self.done = 0
        self.labelled = 0
        self.t_model = 0.0
        self.producer = Producer({"bootstrap.servers": args.bootstrap,
                                  "linger.ms": 5,
                                  "queue.buffering.max.messages": 1000000})
        self.checked = None
        # the output topic's metadata now, as a service would at start-up,
        # not with the first prediction (which would hold the first
        # second of output back and make it arrive in one burst)
        self.producer.list_topics(args.out, timeout=10)

    def labels(self, u, ev, partition):
        """ev resolves u's pending predictions; the partition's event time
        turns those past the horizon into negatives."""
        ts, t = ev["ts"], ev["type"]
        if t == PURCHASE and u.pending:
            keep = []
            for p in u.pending:
                if p[2]:
                    continue
                if ts - p[0] <= HORIZON_MS:
                    p[2] = True
                    self.learner.add(p[1], 1.0)
                    self.labelled += 1
                else:
                    keep.append(p)
            u.pending = keep
        wm = max(self.watermark.get(partition, ts), ts)
        self.watermark[partition] = wm
        q = self.queue[partition]
        while q and q[0][1][0] + HORIZON_MS < wm:
            user, p = q.popleft()
            if not p[2]:
                p[2] = True
                self.learner.add(p[1], 0.0)
                self.labelled += 1
                user.pending = [r for r in user.pending if not r[2]]

    def handle(self, msgs):
        rows, metas = [], []
        for m in msgs:
            if m.error():
                continue
            value = m.value()
            if self.checked is None:
                self.checked = check_decoder(value)
            ev = decode_event(value)
            u = self.users.get(ev["user_id"])
            if u is None:
                u = self.users[ev["user_id"]] = User()
            self.labels(u, ev, m.partition())
            x = features(u, ev)
            rows.append(x)
            metas.append((m, u, ev, x))
        if not rows:
            return
        t0 = time.perf_counter()
        probs = self.learner.score(rows)
        self.t_model += time.perf_counter() - t0
        for (m, u, ev, x), p in zip(metas, probs):
            pend = [ev["ts"], x, False]
            u.pending.append(pend)
            self.queue[m.partition()].append((u, pend))
            pid = f"{m.topic()}/{m.partition()}/{m.offset()}"
            out = json.dumps({"prediction_id": pid, "user_id": ev["user_id"],
                              "event_ts": ev["ts"],
                              "purchase_probability": p})
            while True:
                try:
                    self.producer.produce(self.args.out, out.encode(),
                                          ev["user_id"].encode())
                    break
                except BufferError:
                    self.producer.poll(0.01)
        self.producer.poll(0)
        self.done += len(rows)

    def run(self):
        a = self.args
        c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group,
                      "auto.offset.reset": "earliest",
                      "enable.auto.offset.store": False,
                      "queued.min.messages": 1000000,
                      "session.timeout.ms": 6000,
                      "heartbeat.interval.ms": 500})
        c.subscribe([a.topic])
        t_first = None
        idle = time.time()
        while self.done < a.max and time.time() - idle < 30:
            if a.mode == "batched":
                msgs = c.consume(num_messages=min(500, a.max - self.done),
                                 timeout=0.1)
            else:
                m = c.poll(0.1)
                msgs = [m] if m is not None else []
            if not msgs:
                continue
            idle = time.time()
            if t_first is None:
                t_first = time.perf_counter()
            self.handle(msgs)
        self.producer.flush(60)
        secs = time.perf_counter() - (t_first or time.perf_counter())
        c.close()
        res = {"bench": "peer", "mode": a.mode, "events": self.done,
               "seconds": round(secs, 3),
               "events_per_s": round(self.done / secs) if secs > 0 else 0,
               "model_seconds": round(self.t_model, 3),
               "labelled": self.labelled, "train_steps": self.learner.steps,
               "torch": torch.__version__, "decoder": self.checked}
        print(f"peer {a.mode}: {self.done} events in {secs:.2f} s, "
              f"{res['events_per_s']} events/s", file=sys.stderr)
        print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="intentd.events")
    ap.add_argument("--out", default="peer.predictions")
    ap.add_argument("--group", default=None)
    ap.add_argument("--mode", choices=["batched", "naive"], default="batched")
    ap.add_argument("--max", type=int, default=100000)
    a = ap.parse_args()
    if a.group is None:
        a.group = f"peer-{a.mode}"
    torch.set_num_threads(1)
    Peer(a).run()


if __name__ == "__main__":
    main()
