"""Leaderboard of every algorithm and ensemble on the development set (walk-forward out of sample).

Run ``python -m vfr.ml.leaderboard --store /path/vfr.duckdb --out DIR`` (reads the store
read-only). Each model is refitted every ``step`` dates on the preceding ``window`` dates
(every ``stride``-th date), with an embargo of h dates, and predicts every date of its block,
exactly as :func:`vfr.ml.train` does, but cheaper (quarterly retraining, thinned dates) to
fit the shared 2-core budget. Ensembles are built from the members' out-of-sample
predictions with point-in-time rules only:

- ``voting``: mean of the five tabular members' probabilities;
- ``weighted``: weights proportional to each member's mean daily Rank IC over the last 63
  dates whose labels were known (date + h < today), recomputed daily, clipped at 0;
- ``stacking``: per block, a logistic regression on the members' logits of earlier dates
  whose labels were known (their walk-forward predictions are out-of-sample, i.e.
  out-of-fold in time), at most 504 dates back; equal weights until 126 such dates exist;
- ``lgbm_windows``: LightGBM fitted on the last 3, 6 and 12 months, averaged (time diversity);
- ``lgbm_subsets``: LightGBM on raw features and on rank features, averaged (feature diversity);
- ``voting+isotonic``: ``voting`` calibrated by an isotonic map fitted on the previous
  252 dates with known labels.

Per-model outputs: ``oos_<name>.parquet``; the table: ``leaderboard.csv``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.data import tables
from vfr.ml.calibration import Calibrator, _logit, brier_score
from vfr.ml.deploy import decide, paired_test
from vfr.ml.evaluate import (
    classification_metrics,
    ic_by_date,
    ic_summary,
    quantile_spread,
)
from vfr.ml.labels import make_labels
from vfr.ml.models import make_model
from vfr.ml.report import holdings_metrics
from vfr.ml.splits import walk_forward_schedule
from vfr.ml.tuning import top_decile_returns

LABEL, FWD, RET = "fwd_dir_1w", "fwd_excess_1w", "fwd_ret_1w"
H = 5
MEMBERS = ("lightgbm", "xgboost", "catboost", "random_forest", "linear")


def load_dev_set(store: Path, start: str = "2005-01-01", end: str = "2019-12-31", window: int = 504) -> pd.DataFrame:
    """Features + 1w labels from a DuckDB store (read-only), from ``window + h`` dates before ``start``."""
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        dates = con.sql(f"select distinct date from {tables.FEATURES} order by date").df()["date"]
        first = dates.searchsorted(pd.Timestamp(start))
        lo = dates.iloc[max(0, first - window - H - 1)]
        feats = con.sql(f"select * from {tables.FEATURES} where date >= '{lo.date()}' and date <= '{end}'").df()
        prices = con.sql(f"select symbol, date, close from {tables.PRICES} where date >= '{lo.date()}'").df()
        has_members = bool(con.sql("select count(*) from information_schema.tables "
                                   f"where table_name = '{tables.MEMBERSHIP}'").fetchall()[0][0])
        membership = con.sql(f"select symbol, start_date, end_date from {tables.MEMBERSHIP}").df() \
            if has_members else None
    finally:
        con.close()
    labels = make_labels(prices, {"1w": H}, membership=membership)
    data = feats.merge(labels, on=["symbol", "date"], how="left")
    data["symbol"] = data["symbol"].astype(str)
    return data.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)


def walk_forward(data: pd.DataFrame, spec: dict[str, Any], *, start: str, step: int, window: int, stride: int,
                 target: str = LABEL, objective: str = "classification", context: int = 0, eval_stride: int = 1,
                 log=print) -> pd.DataFrame:
    """Out-of-sample probabilities of one model spec (``algorithm``, ``params``, ``feature_columns``).

    Returns ``date``, ``symbol``, ``prob`` for every date >= ``start``; ``context`` extra
    dates before each block are passed to predict (history for the LSTM) and then dropped.
    """
    uniq = pd.DatetimeIndex(np.sort(data["date"].unique()))
    windows = [w for w in walk_forward_schedule(uniq, step=step, window=window, embargo=H)
               if w.predict_end >= pd.Timestamp(start)]
    codes = uniq.searchsorted(data["date"].to_numpy())
    dates = data["date"].to_numpy()
    cols = ["symbol", "date", *spec["feature_columns"]]
    out = []
    t0 = time.perf_counter()
    for k, w in enumerate(windows):
        lo, hi = uniq.searchsorted(w.train_start), uniq.searchsorted(w.train_end)
        in_win = (codes >= lo) & (codes <= hi)
        y = data[target].to_numpy(dtype=float).copy()
        y[(codes - lo) % stride != 0] = np.nan
        if spec["algorithm"] == "lstm":
            rows = in_win  # non-target dates stay as window context (their y is NaN)
        else:
            rows = in_win & ~np.isnan(y)
        model = make_model(spec["algorithm"], objective, spec.get("params"), seed=42, num_threads=1)
        model.fit(data.loc[rows, cols], y[rows])
        p_lo = uniq.searchsorted(w.predict_start)
        ctx = (codes >= max(0, p_lo - context)) & (dates <= np.datetime64(w.predict_end))
        block = data.loc[ctx, cols]
        prob = model.predict_proba(block)
        keep = (block["date"] >= max(w.predict_start, pd.Timestamp(start))).to_numpy()
        keep = keep & (codes[ctx] % eval_stride == 0)  # evaluate on every eval_stride-th date (cost)
        out.append(pd.DataFrame({"date": block["date"].to_numpy()[keep], "symbol": block["symbol"].to_numpy()[keep],
                                 "prob": prob[keep]}))
        if k % 10 == 0:
            log(f"  {spec['algorithm']} window {k + 1}/{len(windows)} ({time.perf_counter() - t0:.0f} s)")
    return pd.concat(out, ignore_index=True)


def _pit_shift(daily: pd.DataFrame | pd.Series, uniq: pd.DatetimeIndex, s: int = 1) -> Any:
    """Shift a per-date series so that the value at date d uses only dates whose labels are known at d."""
    return daily.reindex(uniq).shift(H // s + 1)


def ensembles(oos: dict[str, pd.DataFrame], base: pd.DataFrame, s: int = 1) -> dict[str, pd.DataFrame]:
    """Ensemble predictions from member OOS predictions (see module doc); point in time.

    ``s`` is the evaluation stride: when predictions exist on every s-th trading date, the
    windows below (in trading dates) are divided by s.
    """
    frame = base[["date", "symbol", LABEL, FWD]].copy()
    for name in MEMBERS:
        frame = frame.merge(oos[name].rename(columns={"prob": name}), on=["date", "symbol"], how="inner")
    frame = frame.sort_values(["date", "symbol"]).reset_index(drop=True)
    uniq = pd.DatetimeIndex(np.sort(frame["date"].unique()))
    P = frame[list(MEMBERS)].to_numpy()
    out = {"voting": frame[["date", "symbol"]].assign(prob=P.mean(axis=1))}
    # weighted: trailing 63-date mean Rank IC known at each date
    ric = pd.DataFrame({m: ic_by_date(frame, m, FWD)["rank_ic"] for m in MEMBERS})
    trailing = _pit_shift(ric.rolling(63 // s, min_periods=20 // s).mean(), uniq, s).clip(lower=0).fillna(0)
    tot = trailing.sum(axis=1)
    w = trailing.div(tot.where(tot > 0), axis=0).fillna(1 / len(MEMBERS))
    W = w.reindex(frame["date"]).to_numpy()
    out["weighted"] = frame[["date", "symbol"]].assign(prob=(P * W).sum(axis=1))
    # stacking: quarterly blocks, meta-learner on earlier OOS logits with known labels
    from sklearn.linear_model import LogisticRegression

    Z = _logit(P)
    pos = uniq.searchsorted(frame["date"].to_numpy())
    stack = np.full(len(frame), np.nan)
    coefs = []
    q = 63 // s
    for b in range(0, len(uniq), q):
        block = (pos >= b) & (pos < b + q)
        hist = (pos + H // s < b) & (pos >= b - 504 // s) & (pos % max(1, 5 // s) == 0) \
            & frame[LABEL].notna().to_numpy()
        if len(np.unique(pos[hist])) >= 126 // 5:
            lr = LogisticRegression(C=1.0, max_iter=500).fit(Z[hist], frame.loc[hist, LABEL].astype(int))
            stack[block] = lr.predict_proba(Z[block])[:, 1]
            coefs.append(lr.coef_[0])
        else:
            stack[block] = P[block].mean(axis=1)
    out["stacking"] = frame[["date", "symbol"]].assign(prob=stack)
    out["stacking"].attrs["mean_coef"] = dict(zip(MEMBERS, np.mean(coefs, axis=0).round(3).tolist(), strict=True)) \
        if coefs else {}
    # calibrated voting: isotonic fitted on the previous 252 dates with known labels, refitted quarterly
    vote = out["voting"]["prob"].to_numpy()
    cal = np.full(len(frame), np.nan)
    for b in range(0, len(uniq), q):
        block = (pos >= b) & (pos < b + q)
        hist = (pos + H // s < b) & (pos >= b - 252 // s) & frame[LABEL].notna().to_numpy()
        if hist.sum() > 5000 // s:
            cal[block] = Calibrator("isotonic").fit(vote[hist], frame.loc[hist, LABEL]).transform(vote[block])
        else:
            cal[block] = vote[block]
    out["voting+isotonic"] = frame[["date", "symbol"]].assign(prob=cal)
    out["_weights"] = w
    return out


def metrics(scored: pd.DataFrame, eval_stride: int = 1) -> dict[str, float]:
    """Leaderboard metrics of a frame with ``date``, ``prob``, label and forward excess return."""
    scored = scored.dropna(subset=["prob", LABEL])
    cm = classification_metrics(scored[LABEL], scored["prob"])
    ic = ic_by_date(scored, "prob", FWD)
    s = ic_summary(ic["rank_ic"])
    top = top_decile_returns(scored, "prob", FWD).iloc[:: max(1, H // eval_stride)]  # non-overlapping weekly holdings
    holdings = holdings_metrics(top, periods_per_year=252 / H)
    return {"roc_auc": cm["roc_auc"], "f1": cm["f1"], "accuracy": cm["accuracy"],
            "brier": brier_score(scored[LABEL], scored["prob"]), "rank_ic": s["mean"], "rank_icir": s["icir"],
            "ic": float(ic["ic"].mean()), "decile_spread": float(quantile_spread(scored, "prob", FWD).mean()),
            "top_decile_excess_wk": float(top.mean()),
            "sharpe": holdings["sharpe"], "profit_factor": holdings["profit_factor"],
            "max_drawdown": holdings["max_drawdown"], "hit_rate_top": holdings["directional_accuracy"],
            "n_rows": len(scored), "n_dates": len(ic)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--start", default="2005-01-01")
    ap.add_argument("--end", default="2019-12-31")
    ap.add_argument("--step", type=int, default=63)
    ap.add_argument("--window", type=int, default=504)
    ap.add_argument("--stride", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--lstm-step", type=int, default=252)
    ap.add_argument("--eval-stride", type=int, default=1)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    data = load_dev_set(args.store, args.start, args.end, args.window)
    log(f"data {data.shape}, {data['date'].min().date()}..{data['date'].max().date()}")
    feats = [c for c in data.columns if c not in ("symbol", "date", LABEL, FWD, RET)]
    raw = [c for c in feats if not c.endswith("_rank")]
    ranks = [c for c in feats if c.endswith("_rank")]
    small = {"n_estimators": 100}
    specs: dict[str, dict[str, Any]] = {
        "lightgbm": {"algorithm": "lightgbm", "params": small, "feature_columns": feats},
        "xgboost": {"algorithm": "xgboost", "params": small, "feature_columns": feats},
        "catboost": {"algorithm": "catboost", "params": small, "feature_columns": feats},
        "random_forest": {"algorithm": "random_forest", "params": {"n_estimators": 40, "max_samples": 0.3},
                          "feature_columns": feats},
        "linear": {"algorithm": "linear", "feature_columns": feats},
        "lightgbm_reg": {"algorithm": "lightgbm", "params": small, "feature_columns": feats, "target": FWD,
                         "objective": "regression"},
        "lgbm_3m": {"algorithm": "lightgbm", "params": small, "feature_columns": feats, "window": 63, "stride": 1},
        "lgbm_6m": {"algorithm": "lightgbm", "params": small, "feature_columns": feats, "window": 126, "stride": 2},
        "lgbm_12m": {"algorithm": "lightgbm", "params": small, "feature_columns": feats, "window": 252, "stride": 3},
        "lgbm_raw": {"algorithm": "lightgbm", "params": small, "feature_columns": raw},
        "lgbm_ranks": {"algorithm": "lightgbm", "params": small, "feature_columns": ranks},
        "lstm": {"algorithm": "lstm", "feature_columns": ranks, "step": args.lstm_step, "context": 20,
                 "params": {"window": 20, "hidden": 16, "epochs": 2, "max_train_rows": 10_000}, "stride": 1},
    }
    only = set(filter(None, args.only.split(",")))
    timings = {}
    oos = {}
    for name, spec in specs.items():
        path = args.out / f"oos_{name}.parquet"
        if path.exists():
            oos[name] = pd.read_parquet(path)
            continue
        if only and name not in only:
            continue
        log(f"fitting {name}")
        t0 = time.perf_counter()
        oos[name] = walk_forward(data, spec, start=args.start, step=spec.get("step", args.step),
                                 window=spec.get("window", args.window), stride=spec.get("stride", args.stride),
                                 target=spec.get("target", LABEL), objective=spec.get("objective", "classification"),
                                 context=spec.get("context", 0), eval_stride=args.eval_stride, log=log)
        timings[name] = time.perf_counter() - t0
        oos[name].to_parquet(path)
        log(f"  {name} done in {timings[name]:.0f} s")
    tpath = args.out / "timings.json"
    timings = (json.loads(tpath.read_text()) if tpath.exists() else {}) | timings
    tpath.write_text(json.dumps(timings, indent=1))
    base = data[data["date"] >= pd.Timestamp(args.start)][["date", "symbol", LABEL, FWD]]
    preds = dict(oos)
    if all(m in oos for m in MEMBERS):
        ens = ensembles(oos, base, args.eval_stride)
        weights = ens.pop("_weights")
        weights.to_csv(args.out / "weighted_member_weights.csv")
        preds |= ens
        (args.out / "stacking_coef.json").write_text(json.dumps(ens["stacking"].attrs.get("mean_coef", {})))
    for combo, parts in (("lgbm_windows", ("lgbm_3m", "lgbm_6m", "lgbm_12m")),
                         ("lgbm_subsets", ("lgbm_raw", "lgbm_ranks"))):
        if all(p in oos for p in parts):
            m = oos[parts[0]].rename(columns={"prob": parts[0]})
            for p in parts[1:]:
                m = m.merge(oos[p].rename(columns={"prob": p}), on=["date", "symbol"])
            preds[combo] = m[["date", "symbol"]].assign(prob=m[list(parts)].mean(axis=1))
    # the current champion (v1 in the store): its stored walk-forward OOS predictions
    import duckdb

    con = duckdb.connect(str(args.store), read_only=True)
    champ = con.sql(f"select date, symbol, prob from {tables.PREDICTIONS_OOS} where date >= '{args.start}' "
                    f"and date <= '{args.end}'").df()
    con.close()
    preds["champion_v1"] = champ
    mom = base.merge(data[["date", "symbol", "ret_20d"]], on=["date", "symbol"])
    preds["baseline_momentum_20d"] = mom[["date", "symbol"]].assign(prob=mom.groupby("date")["ret_20d"].rank(pct=True))
    # common rows: where every model has a prediction
    common = base.copy()
    for p in preds.values():
        common = common.merge(p[["date", "symbol"]], on=["date", "symbol"])
    log(f"common evaluation rows {len(common)}, dates {common['date'].nunique()}")
    rows, ric = {}, {}
    for name, p in preds.items():
        scored = common.merge(p[["date", "symbol", "prob"]], on=["date", "symbol"])
        if name == "lightgbm_reg":
            scored["prob"] = scored.groupby("date")["prob"].rank(pct=True)  # AUC/F1 of a return model: its ranks
        rows[name] = metrics(scored, args.eval_stride)
        ric[name] = ic_by_date(scored, "prob", FWD)["rank_ic"]
    board = pd.DataFrame(rows).T
    champ_m = rows["champion_v1"]
    for name in board.index:
        dm = paired_test(ric[name], ric["champion_v1"], "dm", horizon=H)
        board.loc[name, "dm_stat_vs_champion"] = dm["stat"]
        board.loc[name, "dm_p_vs_champion"] = dm["p_value"]
        d = decide(rows[name], champ_m)
        board.loc[name, "decision"] = "champion" if name == "champion_v1" else d.action
        board.loc[name, "fit_seconds"] = timings.get(name, np.nan)
    board = board.sort_values("rank_ic", ascending=False)
    board.index.name = "model"
    board.to_csv(args.out / "leaderboard.csv")
    pd.DataFrame(ric).to_parquet(args.out / "daily_rank_ic.parquet")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(board.round(4))


if __name__ == "__main__":
    main()
