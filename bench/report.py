#!/usr/bin/env python3
"""report.py LINES RESULTS [SECONDS] - the table of `make bench`.

Reads the JSON lines bench/run.sh collected (one per benchmark), writes
them as one object to RESULTS (build/bench/results.json) with the targets
judged, and prints the table: measured value, target, met.
Every ratio uses figures from the same run.
"""
import json
import sys


def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                obj = json.loads(line)
                out[obj.pop("bench")] = obj
    return out


def get(d, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def print_scale(scale, runs, w1, mach):
    """The scale table: replay with 1 and 2 workers, `intentd run` with
    workers and as instances in one consumer group."""
    print(f"scale: replay rows are the best of two runs of the replay "
          f"loop; run rows are events / (first event produced -> last "
          f"prediction consumed) on the embedded broker, with "
          f"{mach.get('nproc')} cores: rows with more threads than cores "
          f"show the accounting and the group protocol, not speed")
    print()
    print("| contender | events/s | vs workers=1, 1 instance "
          "| progressive AUC | load average | every event predicted |")
    print("| --------- | -------- | ------------------------ "
          "| --------------- | ------------ | --------------------- |")
    for w in (1, 2):
        x = scale.get(f"replay_w{w}")
        if not x:
            continue
        eps = x.get("events_per_s", 0)
        auc = x.get("auc")
        load = x.get("loadavg")
        print(f"| replay, workers={w} | {eps:,.0f} | "
              f"{eps / w1 if w1 else 0:.2f} | "
              f"{f'{auc:.3f}' if auc is not None else '-'} | "
              f"{f'{load:.1f}' if load is not None else '-'} | - |")
    base = next((x.get("events_per_s", 0) for x in runs
                 if x.get("instances") == 1 and x.get("workers") == 1), 0)
    for x in runs:
        n, wk = x.get("instances", 0), x.get("workers", 0)
        eps = x.get("events_per_s", 0)
        inst = x.get("instance", [])
        aucs = "/".join(f"{i['auc']:.3f}" for i in inst
                        if i.get("auc", -1) >= 0) or "-"
        who = (f"run, 1 instance, workers={wk}" if n == 1 else
               f"run, {n} instances in one group, workers={wk} each")
        ok = "yes" if x.get("all_predicted") else "NO"
        twice = x.get("predictions", 0) - x.get("predicted_events", 0)
        consumed = " + ".join(f"{i.get('consumed', -1):,}" for i in inst)
        print(f"| {who} | {eps:,.0f} | {eps / base if base else 0:.2f} | "
              f"{aucs} | {x.get('loadavg', 0):.1f} | {ok}: "
              f"{x.get('predicted_events', 0):,} of {x.get('events', 0):,}"
              f" ({twice:,} twice); consumed {consumed} |")
    print()


def main():
    r = load(sys.argv[1])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else None
    e2e = r.get("e2e", {})
    model = r.get("model", {})
    state = r.get("state", {})
    it = get(e2e, "intentd", "events_per_s", default=0)
    pt = get(e2e, "passthrough", "events_per_s", default=0)
    peer = get(e2e, "peer_batched", "events_per_s", default=0)
    # the daemon trains at model.batch.size = 64
    train_b = "b64" if "b64" in model else "b32"
    peak = model.get("sgemm_peak_gflops", 0)
    of_peak = get(model, train_b, "train_of_peak", default=0)
    mem1 = get(state, "bytes_per_user_rss", "users_1m", default=0)
    mem5 = get(state, "bytes_per_user_rss", "users_5m", default=0)
    p99h = get(e2e, "latency", "half", "p99_ms", default=float("inf"))
    scale = r.get("scale", {})
    w1 = get(scale, "replay_w1", "events_per_s", default=0)
    w2 = get(scale, "replay_w2", "events_per_s", default=0)

    targets = [
        ("intentd e2e / pass-through",
         it / pt if pt else 0, ">= 0.5", lambda v: v >= 0.5,
         f"{it:,.0f} / {pt:,.0f} events/s"),
        ("intentd / batched Python peer",
         it / peer if peer else 0, ">= 15", lambda v: v >= 15,
         f"{it:,.0f} / {peer:,.0f} events/s"),
        ("p99 latency at half rate, ms", p99h, "<= 10",
         lambda v: v <= 10,
         f"at {get(e2e, 'latency', 'half', 'rate', default=0):,.0f}/s"),
        ("bytes per user, 1M users", mem1, "<= 256", lambda v: v <= 256,
         "RSS growth"),
        ("bytes per user, 5M users", mem5, "<= 256", lambda v: v <= 256,
         "RSS growth"),
        (f"training math / sgemm peak ({train_b})", of_peak, ">= 0.50",
         lambda v: v >= 0.5,
         f"{get(model, train_b, 'train_gflops', default=0):.1f} of "
         f"{peak:.1f} GFLOP/s"),
        ("replay, 2 workers / 1 worker", w2 / w1 if w1 else 0, ">= 1.6",
         lambda v: v >= 1.6, f"{w2:,.0f} / {w1:,.0f} events/s"),
    ]
    judged = []
    for name, value, target, ok, note in targets:
        judged.append({"target": name, "measured": round(value, 4),
                       "wanted": target, "met": bool(ok(value)),
                       "note": note})

    lat = get(e2e, "latency", default={})
    ir = r.get("ir", {})
    codec = r.get("codec", {})
    sns = get(state, "ns_per_event", default={})
    info = [
        ("decode bare Avro", f"{codec.get('decode_bare_ns', 0):.0f} ns",
         f"{ir.get('decode', 0):,} instr"),
        ("state update + features (1M users, prefetch)",
         f"{sns.get('users_1m_prefetch', 0):.0f} ns",
         f"{ir.get('state', 0):,} instr (10k users)"),
        ("forward, batch 64" if "b64" in model else "forward, batch 32",
         f"{get(model, train_b, 'fwd_ns', default=0):.0f} ns",
         f"{ir.get('forward', 0):,} instr"),
        (f"training step, per example ({train_b})",
         f"{get(model, train_b, 'train_ns', default=0):.0f} ns",
         f"{ir.get('train', 0):,} instr"),
        ("encode prediction", f"{codec.get('encode_prediction_ns', 0):.0f} ns",
         f"{ir.get('encode', 0):,} instr"),
        ("pass-through (librdkafka only)", f"{pt:,.0f} events/s", ""),
        ("intentd run, backlog, training on", f"{it:,.0f} events/s", ""),
        ("intentd replay (JSON lines file)",
         f"{get(r, 'replay', 'events_per_s', default=0):,.0f} events/s", ""),
        ("Python peer, batches of 500", f"{peer:,.0f} events/s", ""),
        ("Python peer, one at a time",
         f"{get(e2e, 'peer_naive', 'events_per_s', default=0):,.0f} events/s",
         ""),
    ]
    for key, label in [("full", "full rate"), ("half", "half rate"),
                       ("half_default_fetch_wait",
                        "half rate, fetch.wait.max.ms default"),
                       ("floor", "low rate")]:
        L = lat.get(key)
        if L:
            info.append((f"latency at {label} ({L['rate']:,.0f}/s, served "
                         f"{L['served']:,.0f}/s)",
                         f"p50 {L['p50_ms']:.1f} ms",
                         f"p99 {L['p99_ms']:.1f} ms"))
    info.append(("sgemm 256^3 peak, 1 thread", f"{peak:.1f} GFLOP/s", ""))

    mach = r.get("machine", {})
    results = {"machine": mach, "seconds": seconds, "targets": judged,
               "benchmarks": r}
    with open(sys.argv[2], "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")

    print()
    print(f"intentd benchmarks: {mach.get('nproc')} x {mach.get('cpu')}, "
          f"{mach.get('mem_bytes', 0) / 2**30:.0f} GiB, load average "
          f"{mach.get('loadavg_start', 0):.1f} at the start"
          + (f", {seconds:.0f} s in all" if seconds else ""))
    print()
    w = max(len(j["target"]) for j in judged)
    print(f"| {'target':<{w}} | measured | wanted  | met | |")
    print(f"| {'-' * w} | -------- | ------- | --- | --- |")
    for j in judged:
        v = j["measured"]
        vs = f"{v:.2f}" if v < 100 else f"{v:,.0f}"
        print(f"| {j['target']:<{w}} | {vs:>8} | {j['wanted']:<7} | "
              f"{'yes' if j['met'] else 'no':<3} | {j['note']} |")
    print()
    w = max(len(i[0]) for i in info)
    print(f"| {'measure':<{w}} | value | |")
    print(f"| {'-' * w} | ----- | --- |")
    for name, a, b in info:
        print(f"| {name:<{w}} | {a} | {b} |")
    print()
    runs = e2e.get("scale_run") or []
    if scale or runs:
        print_scale(scale, runs, w1, mach)
    print(f"written: {sys.argv[2]}")


if __name__ == "__main__":
    main()
