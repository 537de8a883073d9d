"""Out-of-sample evaluation: classification metrics, IC / Rank IC, decile spread, baselines.

All functions are pure. Frames are long (one row per date and symbol). The IC functions
(:func:`ic_by_date`, :func:`ic_summary`, :func:`quantile_spread`) live in the ground-floor
:mod:`vfr.metrics` and are re-exported here under their old names; scikit-learn is imported
only when :func:`classification_metrics` runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr.metrics import ic_by_date, ic_summary, quantile_spread

__all__ = ["baseline_scores", "classification_metrics", "evaluate_predictions", "ic_by_date", "ic_summary",
           "quantile_spread"]

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
    from sklearn import metrics as skm  # heavy (scipy, joblib): only when used

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob, dtype=float)
    keep = ~(np.isnan(y) | np.isnan(p))
    y, p = y[keep].astype(int), p[keep]
    if len(y) == 0:
        names = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "base_rate")
        return {k: float("nan") for k in names} | {"n": 0}
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
        "n": len(y),
    }


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
    for col in ("ic", "rank_ic"):
        summary = ic_summary(ic[col], horizon=max(1, horizon_days))
        out[f"{col}_mean"] = summary["mean"]
        out[f"{col}_std"] = summary["std"]
        out[f"{col}ir"] = summary["icir"]
        out[f"{col}_t_stat"] = summary["t_stat"]
        out[f"{col}_t_stat_nonoverlap"] = summary["t_stat_nonoverlap"]
    out["decile_spread"] = float(quantile_spread(frame, score, fwd_return).mean())
    valid = frame[[score, label]].dropna()
    out["directional_accuracy"] = float(((valid[score] >= threshold) == (valid[label] > 0.5)).mean()) \
        if len(valid) else float("nan")
    out["n_dates"] = len(ic)
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
