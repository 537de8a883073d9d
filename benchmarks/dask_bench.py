"""Single process vs a Dask LocalCluster(2 workers) on the full development set.

One command:  python benchmarks/dask_bench.py [--no-write]

Measures, each way: walk-forward training (`vfr.ml.train`, whose windows run as independent
Dask tasks with a client; every 4th window of `vfr train`'s schedule), and a 50-trial Optuna
study (LightGBM on a time split, SQLite study storage shared by the workers); reports wall
time, speed-up and peak memory of this process and of each worker. Appends to
docs/benchmarks.md with the machine. Exits 0, writing nothing, when the data is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PRICES, machine, peak_rss_gb, publish


def _vm_hwm_gb() -> float:
    """Peak resident memory of this process (VmHWM), GiB. Unlike ``ru_maxrss``, which a spawned
    worker inherits from its parent, VmHWM starts afresh with each program (Linux only)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


class TuneObjective:
    """Validation AUC of a LightGBM fit for an Optuna trial (the seed plan's search space)."""

    def __init__(self, train: pd.DataFrame, valid: pd.DataFrame, cols: list[str]) -> None:
        self.train, self.valid, self.cols = train, valid, cols

    def __call__(self, trial) -> float:
        import lightgbm as lgb
        from sklearn.metrics import roc_auc_score

        params = {"objective": "binary", "verbose": -1, "num_threads": 1, "max_bin": 63,
                  "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
                  "num_leaves": trial.suggest_int("num_leaves", 31, 127),
                  "max_depth": trial.suggest_int("max_depth", 3, 10),
                  "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 100),
                  "feature_fraction": trial.suggest_float("feature_fraction", 0.7, 1.0),
                  "bagging_fraction": trial.suggest_float("bagging_fraction", 0.7, 1.0), "bagging_freq": 1}
        model = lgb.train(params, lgb.Dataset(self.train[self.cols].to_numpy(np.float32), self.train["y"]),
                          num_boost_round=50)
        return float(roc_auc_score(self.valid["y"], model.predict(self.valid[self.cols].to_numpy(np.float32))))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not PRICES.exists():
        print(f"benchmark skipped: development data not found at {PRICES}")
        return 0
    from vfr.data import adjust_prices, read_prices
    from vfr.distributed import dask_client, optimize_on_dask
    from vfr.features import build_features
    from vfr.ml import TrainConfig, make_labels, train

    prices = adjust_prices(read_prices(PRICES))
    rows: list[tuple[str, float, float]] = []

    features = build_features(prices)

    labels = make_labels(prices, {"1w": 5})
    data = features.merge(labels[["symbol", "date", "fwd_dir_1w"]], on=["symbol", "date"]).rename(
        columns={"fwd_dir_1w": "y"}).sort_values(["date", "symbol"]).reset_index(drop=True)
    cols = [c for c in features.columns if c not in ("symbol", "date")]
    known = data["y"].notna()
    # `vfr train`'s schedule (504-date window) stepping 84 dates instead of 21: a quarter of the fits
    config = TrainConfig(retrain_every=84, max_rounds=100, num_threads=1)

    t0 = time.perf_counter()
    local_wf = train(features, labels, config)
    t_wf_local = time.perf_counter() - t0

    split = data["date"].quantile(0.6)
    sub = data[known & data["date"].between(split - pd.Timedelta(days=730), split + pd.Timedelta(days=365))]
    train_t, valid_t = sub[sub["date"] < split], sub[sub["date"] > split + pd.Timedelta(days=10)]
    objective = TuneObjective(train_t[[*cols, "y"]], valid_t[[*cols, "y"]], cols)
    tmp = Path(tempfile.mkdtemp(prefix="vfr-dask-bench-"))
    t0 = time.perf_counter()
    optimize_on_dask(objective, study_name="local", storage=f"sqlite:///{tmp / 'optuna.db'}", n_trials=50)
    t_tune_local = time.perf_counter() - t0
    local_peak = peak_rss_gb()

    with dask_client(scheduler="local:2") as client:
        t0 = time.perf_counter()
        dist_wf = train(features, labels, config, client=client)
        t_wf_dist = time.perf_counter() - t0
        same = np.allclose(dist_wf.oos_predictions["prob"], local_wf.oos_predictions["prob"])
        t0 = time.perf_counter()
        optimize_on_dask(objective, study_name="dask", storage=f"sqlite:///{tmp / 'optuna.db'}", n_trials=50,
                         client=client)
        t_tune_dist = time.perf_counter() - t0
        worker_peaks = client.run(_vm_hwm_gb)

    rows = [(f"walk-forward training, `vfr.ml.train` ({len(local_wf.windows)} windows)", t_wf_local, t_wf_dist),
            ("Optuna study, 50 trials", t_tune_local, t_tune_dist)]
    lines = [f"\n## Dask: single process vs LocalCluster(2 workers) ({time.strftime('%Y-%m-%d')})\n",
             f"Machine: {machine()}. `python benchmarks/dask_bench.py`.\n",
             "| work | single process, s | LocalCluster(2), s | speed-up |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f}x |" for name, a, b in rows]
    lines.append(f"\nPeak memory: this process {local_peak:.2f} GiB (single-process run, data included); "
                 + ", ".join(f"worker {i + 1} {v:.2f} GiB" for i, v in enumerate(worker_peaks.values()))
                 + f". Walk-forward predictions equal: {same}.")
    publish(lines, not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
