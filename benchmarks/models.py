"""Prediction latency: every stock on one date, single models and a 5-model ensemble (warm).

Usage::

    python benchmarks/models.py --store /work/fullrun/vfr.duckdb [--repeats 200] [--no-append]

Reads the features of 2018-2019 from the store (read-only), fits each tabular algorithm
(default parameters, 1 thread) on 2018 (every 5th date), builds a soft-voting ensemble of the
five, then times ``predict_proba`` on the ~500 stocks of 2019-12-31 after 5 warm-up calls.
Appends a table to docs/benchmarks.md with the machine. Targets: single model <= 20 ms,
5-model ensemble <= 200 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vfr.ml.ensembles import Ensemble
from vfr.ml.labels import make_labels
from vfr.ml.models import make_model

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from run import append_results, machine  # noqa: E402  (one description of the machine for every benchmark)

ALGOS = ("lightgbm", "xgboost", "catboost", "random_forest", "linear")


def timed(fn, repeats: int) -> np.ndarray:
    for _ in range(5):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t0) * 1000
    return out


def main() -> None:
    import duckdb

    ap = argparse.ArgumentParser()
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()
    con = duckdb.connect(str(args.store), read_only=True)
    feats = con.sql("select * from features where date >= '2018-01-01'").df()
    prices = con.sql("select symbol, date, close from prices where date >= '2018-01-01'").df()
    con.close()
    data = feats.merge(make_labels(prices, {"1w": 5}), on=["symbol", "date"])
    cols = [c for c in feats.columns if c not in ("symbol", "date")]
    train = data[(data.date < "2019-01-01")]
    codes, _ = pd.factorize(train["date"], sort=True)
    train = train[(codes % 5 == 0) & train["fwd_dir_1w"].notna()]
    day = data[data.date == data.date.max()][["symbol", "date", *cols]].reset_index(drop=True)
    models = {a: make_model(a, num_threads=1).fit(train[["symbol", "date", *cols]], train["fwd_dir_1w"]) for a in ALGOS}
    ens = Ensemble(list(models.values()), "voting", names=list(models))
    rows = []
    for name, m in [*models.items(), ("ensemble of 5 (soft voting)", ens)]:
        t = timed(lambda m=m: m.predict_proba(day), args.repeats)
        target = 200 if name.startswith("ensemble") else 20
        rows.append((name, np.median(t), np.percentile(t, 95), t.max(), target))
        print(f"{name:32s} median {np.median(t):7.2f} ms  p95 {np.percentile(t, 95):7.2f} ms  (target {target})")
    if args.no_append:
        return
    lines = [f"\n## Model prediction latency ({time.strftime('%Y-%m-%d')})\n",
             f"Machine: {machine()}. Command: `python benchmarks/models.py --store <VFR_HOME>/vfr.duckdb`. "
             f"Data: {len(day)} S&P 500 stocks x {len(cols)} features on {day['date'].iloc[0].date()}; models fitted "
             f"on 2018 (every 5th date, {len(train):,} rows), default parameters, 1 thread; {args.repeats} warm calls "
             "of `predict_proba` after 5 warm-up calls (the machine is shared, so tails are noisy).\n",
             "| model | median ms | p95 ms | max ms | target ms |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {n} | {a:.2f} | {b:.2f} | {c:.2f} | <= {t} |" for n, a, b, c, t in rows]
    append_results("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
