#!/usr/bin/env python3
"""accuracy.py - one dataset's tables for bench/accuracy.sh.

Reads the JSON reports of several replays of the same input that differ
only in model.seed (`intentd replay --baseline logistic --report`), and
optionally the first replay's feature export. Every row is judged on the
same examples, as `intentd replay` judges them (docs/ACCURACY.md):

  MLP / FTRL     intentd's progressive scores: the default model and the
                 `model.type: logistic` baseline run over the same stream
  purchase-rate  (purchases + 0.5) / (events + 10) of the user so far
  label-rate     the user's share of positive decided labels so far,
                 smoothed towards the share over all users
  (last 30% only, from the export) the "cart in the last 30 minutes"
  heuristic and XGBoost trained offline, with hindsight, on the first 70%.

intentd's rows give mean and spread (min..max) over the seeds; the 95%
interval (resampling users) and "model minus it" are the first seed's.
The offline rows are computed here with the definitions of model/eval.c;
the MLP row is recomputed here too and must agree with the report, which
checks both implementations.
"""
import argparse
import csv
import json
import math
import sys
import time

import numpy as np

try:
    import xgboost as xgb
except ImportError:  # the table still has the other rows
    xgb = None

CART_30M = math.log1p(1800.0) / 8.0  # secs_since_* scaling, FEATURES.md
PROB_MIN = 1e-7
ROWS = [("model", "intentd MLP (progressive)"),
        ("baseline", "intentd FTRL logistic (progressive)"),
        ("purchase_rate", "purchase-rate rule"),
        ("label_rate", "label-rate rule")]


# ---- the definitions of model/eval.c, for the offline rows ----------------

def groups_desc(s):
    """Indices by score descending, split into groups of equal scores."""
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    cuts = np.flatnonzero(np.diff(ss) != 0) + 1
    return np.split(order, cuts)


def auc(s, y, w=None):
    w = np.ones(len(y)) if w is None else w
    order = np.argsort(s, kind="stable")
    ss, yy, ww = s[order], y[order], w[order]
    cuts = np.flatnonzero(np.diff(ss) != 0) + 1
    starts = np.concatenate([[0], cuts])
    pos = np.add.reduceat(ww * yy, starts) if len(ss) else np.zeros(0)
    neg = np.add.reduceat(ww * (1 - yy), starts) if len(ss) else np.zeros(0)
    below = np.concatenate([[0], np.cumsum(neg)[:-1]])
    P, N = pos.sum(), neg.sum()
    if P == 0 or N == 0:
        return float("nan")
    return float((pos * (below + 0.5 * neg)).sum() / (P * N))


def lift(s, y, frac=0.1):
    want = frac * len(y)
    if want < 1 or y.sum() == 0:
        return float("nan")
    taken = pos = 0.0
    for g in groups_desc(s):
        if taken >= want:
            break
        share = 1.0 if taken + len(g) <= want else (want - taken) / len(g)
        pos += y[g].sum() * share
        taken += len(g) * share
    return (pos / taken) / y.mean()


def ece_equal_mass(s, y, bins=10):
    n = len(y)
    if n == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    ss, yy = s[order], y[order]
    err = start = 0
    for r in range(n):
        if r + 1 < n and ss[r + 1] == ss[r]:
            continue
        k = math.floor(start * bins / n) + 1
        if (r + 1) * bins < k * n:
            continue
        err += abs(ss[start:r + 1].sum() - yy[start:r + 1].sum())
        start = r + 1
    return err / n


def logloss(s, y):
    q = np.clip(s, PROB_MIN, 1 - PROB_MIN)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def auc_interval(s, y, users, resamples, seed):
    uniq, uid = np.unique(users, return_inverse=True)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(resamples):
        mult = np.bincount(rng.integers(0, len(uniq), len(uniq)),
                           minlength=len(uniq))
        w = mult[uid].astype(float)
        a = auc(s, y, w)
        if not math.isnan(a):
            vals.append(a)
    if not vals:
        return (float("nan"), float("nan"))
    return (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5)))


# ---- input -------------------------------------------------------------

def load_export(path):
    with open(path, newline="") as f:
        rd = csv.reader(f)
        header = next(rd)
        rows = list(rd)
    col = {name: i for i, name in enumerate(header)}
    dense = [i for i, n in enumerate(header)
             if n not in ("ts", "user", "label", "next_action", "score")
             and not n.startswith("sparse_")]
    return dict(
        ts=np.array([int(r[col["ts"]]) for r in rows], dtype=np.int64),
        users=np.array([r[col["user"]] for r in rows]),
        y=np.array([int(r[col["label"]]) for r in rows], dtype=float),
        score=np.array([float(r[col["score"]]) for r in rows]),
        x=np.array([[float(r[i]) for i in dense] for r in rows],
                   dtype=np.float32) if rows else None,
        names=[header[i] for i in dense])


def when(ms):
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


def spread(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    m = sum(vals) / len(vals)
    if max(vals) - min(vals) < 5e-4:
        return f"{m:.3f}"
    return f"{m:.3f} ({min(vals):.3f}..{max(vals):.3f})"


def fmt_ci(ci):
    if not ci or ci[0] is None:
        return "-"
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def fmt_lead(ci):
    if not ci or ci[0] is None:
        return ""
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def table(reports, period, extra):
    first = reports[0]["compare"]["periods"][period]
    keys = [k for k, _ in ROWS if k in first["scorers"]]
    print("| row | AUC | 95% (users) | model minus it | top-10% lift | "
          "ECE (equal mass) | log loss |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key, label in ROWS:
        if key not in keys:
            continue
        per = [r["compare"]["periods"][period]["scorers"][key]
               for r in reports]
        s0 = per[0]
        print(f"| {label} | {spread([p['auc'] for p in per])} | "
              f"{fmt_ci(s0.get('auc_ci95'))} | "
              f"{fmt_lead(s0.get('model_lead_ci95'))} | "
              f"{spread([p['lift_top10'] for p in per])} | "
              f"{spread([p['ece_equal_mass'] for p in per])} | "
              f"{spread([p['logloss'] for p in per])} |")
    for label, m in extra:
        print(f"| {label} | {m['auc']:.3f} | {fmt_ci(m['ci'])} | | "
              f"{m['lift']:.3f} | {m['ece']:.3f} | {m['logloss']:.3f} |")


def offline_rows(exp, cut, resamples, seed, check):
    """The heuristic and XGBoost rows on the last period; the MLP row
    recomputed for the agreement check."""
    train = exp["ts"] < cut
    test = ~train
    y = exp["y"]
    col = {n: i for i, n in enumerate(exp["names"])}
    x = exp["x"]
    carted = (x[:, col["is_add_to_cart"]] > 0.5) | (
        (x[:, col["never_add_to_cart"]] < 0.5)
        & (x[:, col["secs_since_add_to_cart"]] <= CART_30M + 1e-6))
    rate_in = y[train & carted].mean() if (train & carted).any() else 0.5
    rate_out = y[train & ~carted].mean() if (train & ~carted).any() else 0.5
    scores = [("cart in the last 30 min (heuristic)",
               np.where(carted, rate_in, rate_out))]
    if xgb is not None and 0 < y[train].sum() < train.sum():
        model = xgb.XGBClassifier(
            n_estimators=300, max_depth=4, learning_rate=0.05,
            subsample=0.8, colsample_bytree=0.8, min_child_weight=5,
            reg_lambda=5.0, tree_method="hist", random_state=seed, n_jobs=2)
        model.fit(x[train], y[train])
        xs = np.zeros(len(y))
        xs[test] = model.predict_proba(x[test])[:, 1]
        scores.append(("XGBoost, offline with hindsight on the first 70%",
                       xs))
    elif xgb is None:
        print("accuracy.py: python3-xgboost not installed, row skipped",
              file=sys.stderr)
    yt, ut = y[test], exp["users"][test]
    out = []
    for label, s in scores:
        st = s[test]
        out.append((label, dict(
            auc=auc(st, yt), lift=lift(st, yt), ece=ece_equal_mass(st, yt),
            logloss=logloss(st, yt),
            ci=auc_interval(st, yt, ut, resamples, seed))))
    # the report's own numbers, recomputed from the export
    mine = dict(auc=auc(exp["score"][test], yt),
                lift_top10=lift(exp["score"][test], yt),
                ece_equal_mass=ece_equal_mass(exp["score"][test], yt))
    for k, v in mine.items():
        if check.get(k) is not None and abs(v - check[k]) > 1e-4:
            print(f"accuracy.py: {k} of the MLP on the last period is "
                  f"{v:.6f} here, {check[k]:.6f} in the report",
                  file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--seeds", required=True, help="comma-separated")
    ap.add_argument("--export", help="feature export of the first report's "
                    "run: adds the heuristic and XGBoost rows")
    ap.add_argument("reports", nargs="+")
    a = ap.parse_args()
    reports = [json.load(open(p)) for p in a.reports]
    cmp0 = reports[0]["compare"]
    all0, last0 = cmp0["periods"]["all"], cmp0["periods"]["last"]
    split = cmp0["split"]
    cut = split["cut_ts"]
    meth = cmp0["method"]
    print(f"\n### {a.name}\n")
    print(f"{all0['n']} judged examples, {all0['positives']} positive "
          f"(base rate {all0['base_rate']:.4f}), {all0['users']} users. "
          f"Last {100 * meth['test_share']:.0f}% of event time: from "
          f"{when(cut)} UTC (span of the examples' times "
          f"{100 * meth['span_quantile']:.1f}%.."
          f"{100 - 100 * meth['span_quantile']:.1f}%: {when(split['span_lo_ts'])}"
          f" .. {when(split['span_hi_ts'])}), {last0['n']} examples, "
          f"{last0['positives']} positive, {last0['users']} users.")
    print(f"model.seed {a.seeds}: mean (min..max) over the seeds; 95% "
          f"intervals from {meth['resamples']} resamples of users, seed "
          f"{a.seeds.split(',')[0]}'s run.\n")
    print("All labelled events:\n")
    table(reports, "all", [])
    extra = []
    if a.export:
        exp = load_export(a.export)
        extra = offline_rows(exp, cut, meth["resamples"], meth["seed"],
                             last0["scorers"]["model"])
    print(f"\nLast {100 * meth['test_share']:.0f}% of event time:\n")
    table(reports, "last", extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
