#!/usr/bin/env python3
"""accuracy.py - one dataset's side-by-side table for bench/accuracy.sh.

Reads the feature exports of two replays of the same input (`intentd replay
--export-features`, one with the MLP, one with `model.type: logistic`);
both hold the same examples in the same order (labels do not depend on the
model). Splits by event time: the first 70% of the span trains XGBoost
with hindsight, every row is judged on the last 30%:

  heuristic   "added to cart in the last 30 minutes", from the exported
              is_add_to_cart / never_add_to_cart / secs_since_add_to_cart
              (log1p(s) / 8, docs/FEATURES.md); its two probabilities are
              the purchase rates of the two groups on the first 70%
  logistic    intentd's progressive score, model.type logistic
  MLP         intentd's progressive score, the default model
  XGBoost     trained offline on the first 70% of the MLP run's exported
              dense features, scored on the last 30%

Columns: AUC, log loss, precision / recall / F1 at the best-F1 threshold,
ECE (10 bins, as model/metrics.c). With --ci, a 95% interval of the AUC
from resampling users (the export's user column), 200 resamples.
"""
import argparse
import csv
import math
import sys

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_auc_score

try:
    import xgboost as xgb
except ImportError:  # the table still has the other rows
    xgb = None

CART_30M = math.log1p(1800.0) / 8.0  # secs_since_* scaling, FEATURES.md
PROB_MIN = 1e-7


def load(path):
    with open(path, newline="") as f:
        rd = csv.reader(f)
        header = next(rd)
        rows = list(rd)
    col = {name: i for i, name in enumerate(header)}
    dense = [i for i, n in enumerate(header)
             if n not in ("ts", "user", "label", "next_action", "score")
             and not n.startswith("sparse_")]
    ts = np.array([int(r[col["ts"]]) for r in rows], dtype=np.int64)
    users = [r[col["user"]] for r in rows]
    y = np.array([int(r[col["label"]]) for r in rows], dtype=np.int8)
    score = np.array([float(r[col["score"]]) for r in rows])
    x = np.array([[float(r[i]) for i in dense] for r in rows],
                 dtype=np.float32) if rows else np.zeros((0, len(dense)))
    names = [header[i] for i in dense]
    return dict(ts=ts, users=users, y=y, score=score, x=x, names=names)


def ece(p, y, bins=10):
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += abs(p[m].sum() - y[m].sum())
    return total / len(p)


def metrics(p, y):
    p = np.clip(p, 0.0, 1.0)
    out = dict(auc=float("nan"), logloss=float("nan"), p=0, r=0, f1=0,
               ece=float("nan"))
    if len(y) == 0:
        return out
    q = np.clip(p, PROB_MIN, 1 - PROB_MIN)
    out["logloss"] = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
    out["ece"] = ece(p, y)
    if 0 < y.sum() < len(y):
        out["auc"] = roc_auc_score(y, p)
        prec, rec, _ = precision_recall_curve(y, p)
        f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
        k = int(np.argmax(f1))
        out.update(p=prec[k], r=rec[k], f1=f1[k])
    return out


def auc_interval(scores, y, users, n_boot=200, seed=1):
    """95% interval of each score's AUC, resampling users with
    replacement (all of a user's examples together)."""
    uniq = sorted(set(users))
    index = {u: i for i, u in enumerate(uniq)}
    uid = np.array([index[u] for u in users])
    rows_of = [np.flatnonzero(uid == i) for i in range(len(uniq))]
    rng = np.random.default_rng(seed)
    samples = {k: [] for k in scores}
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        rows = np.concatenate([rows_of[i] for i in pick])
        yy = y[rows]
        if not 0 < yy.sum() < len(yy):
            continue
        for k, s in scores.items():
            samples[k].append(roc_auc_score(yy, s[rows]))
    return {k: (np.percentile(v, 2.5), np.percentile(v, 97.5)) if v
            else (float("nan"), float("nan")) for k, v in samples.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--ci", action="store_true",
                    help="95%% AUC interval from resampling users")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("mlp_csv")
    ap.add_argument("logistic_csv")
    a = ap.parse_args()

    mlp = load(a.mlp_csv)
    lr = load(a.logistic_csv)
    n = len(mlp["y"])
    if n == 0:
        print(f"\n### {a.name}\n\nno resolved examples\n")
        return 0
    if len(lr["y"]) != n or not np.array_equal(lr["ts"], mlp["ts"]) \
            or not np.array_equal(lr["y"], mlp["y"]):
        sys.exit("accuracy.py: the two exports hold different examples")
    t0, t1 = mlp["ts"].min(), mlp["ts"].max()
    cut = t0 + 0.7 * (t1 - t0)
    train = mlp["ts"] < cut
    test = ~train
    y = mlp["y"].astype(float)

    col = {name: i for i, name in enumerate(mlp["names"])}
    x = mlp["x"]
    carted = (x[:, col["is_add_to_cart"]] > 0.5) | (
        (x[:, col["never_add_to_cart"]] < 0.5)
        & (x[:, col["secs_since_add_to_cart"]] <= CART_30M + 1e-6))
    rate_in = y[train & carted].mean() if (train & carted).any() else 0.5
    rate_out = y[train & ~carted].mean() if (train & ~carted).any() else 0.5
    heuristic = np.where(carted, rate_in, rate_out)

    scores = {"heuristic: cart in the last 30 min": heuristic,
              "intentd logistic (progressive)": lr["score"],
              "intentd MLP (progressive)": mlp["score"]}
    if xgb is not None and y[train].sum() > 0 and y[train].sum() < train.sum():
        model = xgb.XGBClassifier(
            n_estimators=300, max_depth=4, learning_rate=0.05,
            subsample=0.8, colsample_bytree=0.8, min_child_weight=5,
            reg_lambda=5.0, tree_method="hist", random_state=a.seed,
            n_jobs=2)
        model.fit(x[train], y[train])
        xs = np.zeros(n)
        xs[test] = model.predict_proba(x[test])[:, 1]
        scores["XGBoost, offline with hindsight"] = xs
    elif xgb is None:
        print("accuracy.py: python3-xgboost not installed, row skipped",
              file=sys.stderr)

    yt = y[test]
    users_t = [u for u, t in zip(mlp["users"], test) if t]
    intervals = auc_interval({k: s[test] for k, s in scores.items()}, yt,
                             users_t, seed=a.seed) if a.ci else None
    print(f"\n### {a.name}\n")
    print(f"{n} judged examples, {int(y.sum())} positive; test = last 30% "
          f"of event time: {int(test.sum())} examples, "
          f"{int(yt.sum())} positive (base rate {yt.mean():.4f}), "
          f"{len(set(users_t))} users\n")
    head = "| model | AUC |" + (" AUC 95% (users) |" if a.ci else "") + \
        " log loss | precision | recall | F1 | ECE |"
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    for k, s in scores.items():
        m = metrics(s[test], yt)
        ci = ""
        if a.ci:
            lo, hi = intervals[k]
            ci = f" [{lo:.3f}, {hi:.3f}] |"
        print(f"| {k} | {m['auc']:.3f} |{ci} {m['logloss']:.4f} | "
              f"{m['p']:.3f} | {m['r']:.3f} | {m['f1']:.3f} | "
              f"{m['ece']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
