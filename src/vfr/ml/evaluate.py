"""Out-of-sample evaluation: classification metrics, IC / Rank IC, decile spread, baselines.

All functions are pure. Frames are long (one row per date and symbol).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

_EPS = 1e-7


def classification_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC-AUC and log-loss of probabilistic predictions.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcomes (0/1). Rows where ``y_true`` or ``prob`` is NaN are dropped.
    prob : array-like of shape (n_samples,)
        Predicted probability of class 1.
    threshold : float
        Probability at or above which class 1 is predicted.

    Returns
    -------
    dict
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (NaN when only one class
        is present or the predictions are constant), ``log_loss`` (probabilities clipped to
        [1e-7, 1-1e-7]), ``base_rate`` (share of 1s) and ``n`` (rows used). Definitions as in
        scikit-learn's ``sklearn.metrics``.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob, dtype=float)
    keep = ~(np.isnan(y) | np.isnan(p))
    y, p = y[keep].astype(int), p[keep]
    if len(y) == 0:
        return {k: float("nan") for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "base_rate")} | {"n": 0}
    pred = (p >= threshold).astype(int)
    two_classes = len(np.unique(y)) == 2
    informative = two_classes and np.ptp(p) > 0
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y, p)) if informative else float("nan"),
        "log_loss": float(skm.log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
        "base_rate": float(y.mean()),
        "n": int(len(y)),
    }


def ic_by_date(frame: pd.DataFrame, score: str, target: str, min_names: int = 5) -> pd.DataFrame:
    """Information coefficient per date between a score and a forward return.

    Parameters
    ----------
    frame : DataFrame
        Long frame with columns ``date``, ``score`` and ``target``.
    score, target : str
        Column names of the predictor and of the realised forward return.
    min_names : int
        Dates with fewer valid (score, target) pairs are skipped.

    Returns
    -------
    DataFrame indexed by date with columns ``ic`` (Pearson correlation), ``rank_ic``
    (Spearman rank correlation) and ``n`` (names used). Definitions as in alphalens'
    ``factor_information_coefficient`` (Grinold & Kahn, *Active Portfolio Management*, 2000).
    Dates where either side is constant give NaN.
    """
    data = frame[["date", score, target]].dropna()
    if data.empty:
        return pd.DataFrame(columns=["ic", "rank_ic", "n"], index=pd.DatetimeIndex([], name="date"))
    counts = data.groupby("date")[score].transform("size")
    data = data[counts >= min_names]
    ranked = data.groupby("date")[[score, target]].rank()
    ranked["date"] = data["date"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = _corr_by_date(data, score, target)
        rank_ic = _corr_by_date(ranked, score, target)
    n = data.groupby("date").size()
    out = pd.DataFrame({"ic": ic, "rank_ic": rank_ic, "n": n})
    out.index.name = "date"
    return out


def _corr_by_date(data: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Pearson correlation of x and y within each date, vectorised through group moments."""
    g = data.assign(_xy=data[x] * data[y], _xx=data[x] ** 2, _yy=data[y] ** 2).groupby("date")
    m = g[[x, y, "_xy", "_xx", "_yy"]].mean()
    cov = m["_xy"] - m[x] * m[y]
    var_x = (m["_xx"] - m[x] ** 2).clip(lower=0)
    var_y = (m["_yy"] - m[y] ** 2).clip(lower=0)
    denom = np.sqrt(var_x * var_y)
    return (cov / denom.where(denom > 1e-12)).astype(float)


def ic_summary(ic: pd.Series) -> dict[str, float]:
    """Mean, standard deviation, ICIR and t-statistic of a per-date IC series.

    ``icir = mean / std``; ``t_stat = mean / std * sqrt(n)`` (Grinold & Kahn's t-statistic of
    the mean IC). With overlapping label windows (horizon > 1 day) neighbouring ICs are
    correlated and this t-statistic overstates significance; the non-overlapping
    ``t_stat`` over every h-th date is the honest one and is reported by
    :func:`evaluate_predictions` as ``*_t_stat_nonoverlap``.
    """
    s = pd.Series(ic, dtype=float).dropna()
    n = len(s)
    if n < 2 or s.std(ddof=1) == 0:
        return {"mean": float(s.mean()) if n else float("nan"), "std": float("nan"), "icir": float("nan"),
                "t_stat": float("nan"), "n_dates": n, "share_positive": float((s > 0).mean()) if n else float("nan")}
    mean, std = float(s.mean()), float(s.std(ddof=1))
    return {"mean": mean, "std": std, "icir": mean / std, "t_stat": mean / std * np.sqrt(n), "n_dates": n,
            "share_positive": float((s > 0).mean())}


def quantile_spread(frame: pd.DataFrame, score: str, target: str, quantiles: int = 10) -> pd.Series:
    """Per-date mean ``target`` of the top minus the bottom score quantile (default deciles).

    Quantiles are formed per date from the cross-sectional rank of ``score``; dates with
    fewer names than ``quantiles`` use as many buckets as names allow (at least 2 names).
    Returns a Series indexed by date (fraction of return per horizon).
    """
    data = frame[["date", score, target]].dropna()
    if data.empty:
        return pd.Series(dtype=float, name="spread")
    pct = data.groupby("date")[score].rank(pct=True, method="first")
    size = data.groupby("date")[score].transform("size")
    buckets = np.minimum(quantiles, size)
    bucket = np.ceil(pct * buckets).clip(lower=1)
    top = data[target].where(bucket == buckets)
    bottom = data[target].where(bucket == 1)
    g = pd.DataFrame({"date": data["date"], "top": top, "bottom": bottom, "size": size})
    g = g[g["size"] >= 2].groupby("date")[["top", "bottom"]].mean()
    return (g["top"] - g["bottom"]).rename("spread")


def evaluate_predictions(frame: pd.DataFrame, *, score: str, label: str, fwd_return: str,
                         horizon_days: int, threshold: float = 0.5) -> dict[str, float]:
    """All out-of-sample metrics of one predictor.

    Parameters
    ----------
    frame : DataFrame
        Long frame with ``date``, ``score`` (probability of class 1, in [0, 1]), the binary
        ``label`` and the realised ``fwd_return`` (fraction) of the same horizon.
    horizon_days : int
        Label horizon in trading days (for the non-overlapping t-statistic).

    Returns
    -------
    dict
        :func:`classification_metrics`, then ``ic_mean``, ``ic_std``, ``icir``, ``ic_t_stat``,
        ``rank_ic_*`` likewise, ``*_t_stat_nonoverlap`` (every ``horizon_days``-th date),
        ``decile_spread`` (mean top-minus-bottom decile forward return per horizon),
        ``directional_accuracy`` (share of rows where ``score >= threshold`` agrees with
        ``fwd_return > 0``'s excess direction, i.e. ``label``), ``n_dates``.
    """
    out = classification_metrics(frame[label], frame[score], threshold)
    ic = ic_by_date(frame, score, fwd_return)
    dates = ic.index
    every_h = dates[:: max(1, horizon_days)]
    for col in ("ic", "rank_ic"):
        summary = ic_summary(ic[col])
        out[f"{col}_mean"] = summary["mean"]
        out[f"{col}_std"] = summary["std"]
        out[f"{col}ir"] = summary["icir"]
        out[f"{col}_t_stat"] = summary["t_stat"]
        out[f"{col}_t_stat_nonoverlap"] = ic_summary(ic.loc[every_h, col])["t_stat"]
    out["decile_spread"] = float(quantile_spread(frame, score, fwd_return).mean())
    valid = frame[[score, label]].dropna()
    out["directional_accuracy"] = float(((valid[score] >= threshold) == (valid[label] > 0.5)).mean()) if len(valid) else float("nan")
    out["n_dates"] = int(len(ic))
    return out


def baseline_scores(features: pd.DataFrame) -> dict[str, pd.Series]:
    """Scores of the two baselines, aligned with ``features`` rows.

    - ``always_up``: probability 1 for every row (predicts that every stock beats the
      universe mean); its ranking metrics (AUC, IC) are undefined and reported as NaN.
    - ``momentum_20d``: the cross-sectional percentile rank of the 20-day return
      (Jegadeesh & Titman, 1993, short-horizon variant), used as a probability.

    Raises
    ------
    KeyError
        If ``features`` has no ``ret_20d`` column.
    """
    mom = features.groupby("date")["ret_20d"].rank(pct=True)
    return {"always_up": pd.Series(1.0, index=features.index), "momentum_20d": mom.astype(float)}
