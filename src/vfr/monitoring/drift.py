"""Drift statistics of a served model: feature drift (KS), prediction drift (PSI), rolling
live performance (accuracy, IC, Rank IC, Brier) and the retraining decision.

All functions are pure (DataFrames in, DataFrames / dataclasses out); storing a report is in
:mod:`vfr.monitoring.store`, sending its alerts in :mod:`vfr.monitoring.alerts`.

The *reference* is a sample of the model's training features with the model's probabilities on
them (:func:`reference_sample`, saved with the model); the *current* frame is the same columns
for recently served rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from vfr.ml.calibration import brier_score
from vfr.monitoring.alerts import Alert, AlertRule, evaluate_rules

#: Fewer non-missing values than this on either side: no KS test for the column.
MIN_KS_VALUES = 20
ACTIONS = ("none", "schedule_retraining", "urgent_retraining")


# -- feature drift ------------------------------------------------------------------------------
def ks_drift(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str] | None = None,
             threshold: float = 0.15) -> pd.DataFrame:
    """Two-sample Kolmogorov-Smirnov (KS) test per feature.

    Parameters
    ----------
    reference, current : DataFrame
        Feature frames, one row per (date, symbol).
    columns : list of str, optional
        Features to test; default the numeric columns present in both frames.
    threshold : float
        KS statistic above which a feature counts as drifted.

    Returns
    -------
    DataFrame
        One row per feature, columns ``feature, ks_statistic, p_value, n_reference, n_current,
        breached``, sorted by ``ks_statistic`` descending (NaN last). ``ks_statistic`` is
        D = sup_x |F_ref(x) - F_cur(x)| and ``p_value`` the two-sided exact/asymptotic p-value of
        :func:`scipy.stats.ks_2samp`; NaN and infinite values are dropped per column. A column
        with fewer than 20 values on either side gets NaN statistic and ``breached`` False.

    Raises
    ------
    KeyError
        A requested column is missing from either frame.
    """
    if columns is None:
        columns = [c for c in reference.select_dtypes("number").columns if c in current.columns]
    missing = [f"{c!r} ({side})" for side, frame in (("reference", reference), ("current", current))
               for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"ks_drift: columns missing: {', '.join(missing)}")
    rows = []
    for c in columns:
        a, b = _finite(reference[c]), _finite(current[c])
        if min(len(a), len(b)) < MIN_KS_VALUES:
            d, p = float("nan"), float("nan")
        else:
            res = stats.ks_2samp(a, b)
            d, p = float(res.statistic), float(res.pvalue)
        rows.append({"feature": c, "ks_statistic": d, "p_value": p, "n_reference": len(a), "n_current": len(b),
                     "breached": bool(d > threshold)})  # NaN > t is False
    out = pd.DataFrame(rows, columns=["feature", "ks_statistic", "p_value", "n_reference", "n_current", "breached"])
    return out.sort_values("ks_statistic", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def _finite(x: Any) -> np.ndarray:
    x = pd.to_numeric(pd.Series(np.asarray(x).ravel()), errors="coerce").to_numpy(dtype=float)
    return x[np.isfinite(x)]


# -- prediction drift -----------------------------------------------------------------------------
def psi(expected: Any, actual: Any, bins: int = 10, eps: float = 1e-4) -> float:
    """Population Stability Index (PSI) of ``actual`` against ``expected``.

    Parameters
    ----------
    expected : array-like of shape (n,)
        Reference sample (e.g. training-time probabilities). Non-finite values dropped.
    actual : array-like of shape (m,)
        Current sample. Non-finite values dropped.
    bins : int
        Number of bins; the inner edges are the 1/bins, ..., (bins-1)/bins quantiles of
        ``expected`` (duplicate edges merged, so tied samples give fewer bins) and the outer
        edges are -inf and +inf, so every value falls in a bin. Bins are [left, right).
    eps : float
        Floor of a bin's share (an empty bin would make the logarithm infinite); shares are not
        re-normalised after flooring.

    Returns
    -------
    float
        PSI = sum_i (a_i - e_i) * ln(a_i / e_i) over bins, with e_i, a_i the shares of
        ``expected`` and ``actual`` in bin i. 0 for identical distributions; the usual reading
        is < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift (Siddiqi, *Credit
        Risk Scorecards*, Wiley 2006, ch. 8; Yurdakul, "Statistical properties of the
        population stability index", PhD thesis, Western Michigan University 2018).

    Raises
    ------
    ValueError
        ``expected`` or ``actual`` has no finite value, or ``bins`` < 1.
    """
    if bins < 1:
        raise ValueError(f"psi: bins must be >= 1, got {bins}")
    e, a = _finite(expected), _finite(actual)
    for name, x in (("expected", e), ("actual", a)):
        if len(x) == 0:
            raise ValueError(f"psi: {name} has no finite values")
    inner = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    e_share = np.bincount(np.searchsorted(inner, e, side="right"), minlength=len(inner) + 1) / len(e)
    a_share = np.bincount(np.searchsorted(inner, a, side="right"), minlength=len(inner) + 1) / len(a)
    e_share, a_share = np.maximum(e_share, eps), np.maximum(a_share, eps)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


# -- live performance ---------------------------------------------------------------------------
_PERF_INPUT = ["date", "probability", "predicted_class", "excess_return", "correct"]
PERFORMANCE_COLUMNS = ["date", "accuracy", "ic", "rank_ic", "brier", "n"]


def rolling_performance(outcomes: pd.DataFrame, window_days: int = 30) -> pd.DataFrame:
    """Live performance over a trailing calendar window, one row per prediction date.

    Parameters
    ----------
    outcomes : DataFrame
        One row per evaluated prediction (``ml_predictions`` joined to ``ml_outcomes``) with
        columns ``date`` (feature date), ``probability`` (of class 1), ``predicted_class``
        (0/1), ``excess_return`` (realised return over the universe mean, fraction) and
        ``correct`` (bool). Rows with NaN probability or excess return are dropped.
    window_days : int
        Calendar days of the window ending at each date, inclusive: the row of date d uses the
        predictions dated in (d - window_days days, d].

    Returns
    -------
    DataFrame
        Columns ``date, accuracy, ic, rank_ic, brier, n``, one row per distinct date, ascending.
        ``accuracy`` = share of ``correct``; ``ic`` = Pearson correlation of probability and
        excess return and ``rank_ic`` = Spearman rank correlation (ties averaged), both pooled
        over the window's rows (excess returns are already de-meaned per date, so the pooled
        figure measures cross-sectional skill; :func:`vfr.ml.evaluate.ic_by_date` gives the
        per-date IC); ``brier`` = mean (probability - 1[excess > 0])^2
        (:func:`vfr.ml.calibration.brier_score`); ``n`` = rows in the window. Correlations are
        NaN when either side is constant or n < 3.

    Raises
    ------
    KeyError
        A required column is missing.
    ValueError
        ``window_days`` < 1.
    """
    missing = [c for c in _PERF_INPUT if c not in outcomes.columns]
    if missing:
        raise KeyError(f"rolling_performance: outcomes lacks columns {missing}; expected {_PERF_INPUT}")
    if window_days < 1:
        raise ValueError(f"rolling_performance: window_days must be >= 1, got {window_days}")
    data = outcomes[_PERF_INPUT].copy()
    data["date"] = pd.to_datetime(data["date"]).dt.normalize()
    data["probability"] = pd.to_numeric(data["probability"], errors="coerce")
    data["excess_return"] = pd.to_numeric(data["excess_return"], errors="coerce")
    data = data.dropna(subset=["date", "probability", "excess_return"]).sort_values("date", kind="stable")
    if data.empty:
        return pd.DataFrame(columns=PERFORMANCE_COLUMNS)
    dates = data["date"].to_numpy()
    prob = data["probability"].to_numpy(float)
    excess = data["excess_return"].to_numpy(float)
    correct = data["correct"].astype(float).to_numpy()
    rows = []
    for d in np.unique(dates):
        lo = np.searchsorted(dates, d - np.timedelta64(window_days, "D"), side="right")
        hi = np.searchsorted(dates, d, side="right")
        p, x = prob[lo:hi], excess[lo:hi]
        rows.append({"date": pd.Timestamp(d), "accuracy": float(np.nanmean(correct[lo:hi])), "ic": _pearson(p, x),
                     "rank_ic": _pearson(stats.rankdata(p), stats.rankdata(x)),
                     "brier": brier_score((x > 0).astype(float), p), "n": int(hi - lo)})
    return pd.DataFrame(rows, columns=PERFORMANCE_COLUMNS)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


# -- decision -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftThresholds:
    """Thresholds of :func:`check_drift`.

    Attributes
    ----------
    ks : float
        KS statistic above which a feature has drifted.
    ks_min_features : int
        Drifted features needed to schedule retraining.
    psi : float
        PSI of the predicted probabilities above which retraining is urgent.
    accuracy_floor : float
        Rolling accuracy below which retraining is urgent.
    brier_ceiling : float
        Rolling Brier score above which retraining is scheduled (0.25 = always predicting 0.5).
    min_outcomes : int
        The performance rules (accuracy, Brier) fire only with at least this many outcomes in
        the window.
    ks_rank_only : bool
        When the tested columns include cross-sectional rank features (names ending in
        ``_rank``), only those can breach and count towards ``ks_min_features``; the raw
        features are still tested and reported but never breach. Raw levels (returns,
        volatilities, oscillators, macro series) move with the market regime every month, while
        the model ranks stocks within each day, so a shift of a raw level that leaves its rank
        unchanged is not actionable (issue 17: 16 of 58 raw features flagged every day). With no
        ``_rank`` column among the tested ones every column counts. False: every column counts.
    """

    ks: float = 0.15
    ks_min_features: int = 3
    psi: float = 0.2
    accuracy_floor: float = 0.48
    brier_ceiling: float = 0.26
    min_outcomes: int = 200
    ks_rank_only: bool = True

    def rules(self) -> tuple[AlertRule, ...]:
        """The alert rules of these thresholds (names and metrics as in
        :data:`vfr.monitoring.alerts.DEFAULT_ALERT_RULES`)."""
        return (AlertRule("prediction_psi", "psi", ">", self.psi, "critical"),
                AlertRule("feature_ks", "ks_breached_features", ">=", self.ks_min_features, "warning"),
                AlertRule("rolling_accuracy", "rolling_accuracy", "<", self.accuracy_floor, "critical"),
                AlertRule("calibration_brier", "brier", ">", self.brier_ceiling, "warning"))


@dataclass
class DriftReport:
    """Result of :func:`check_drift`.

    Attributes
    ----------
    feature_drift : DataFrame
        :func:`ks_drift` of the tested features plus a bool column ``monitored`` (the feature can
        raise the alert, :func:`monitored_features`); ``breached`` is True only for monitored
        features with KS above the threshold.
    psi : float
        PSI of the current probabilities against the reference ones.
    performance : dict
        Last row of :func:`rolling_performance` (``date, accuracy, ic, rank_ic, brier, n``), or
        empty without outcomes.
    brier : float
        Rolling Brier score (NaN without outcomes).
    action : {"none", "schedule_retraining", "urgent_retraining"}
    reasons : list of str
        One sentence per rule that fired.
    alerts : list of Alert
    thresholds : DriftThresholds
    """

    feature_drift: pd.DataFrame
    psi: float
    performance: dict[str, Any]
    brier: float
    action: str
    reasons: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> None, dates ISO strings)."""
        return json_safe({"feature_drift": self.feature_drift.to_dict("records"), "psi": self.psi,
                          "performance": self.performance, "brier": self.brier, "action": self.action,
                          "reasons": list(self.reasons), "alerts": [a.to_dict() for a in self.alerts],
                          "thresholds": vars(self.thresholds)})


def json_safe(v: Any) -> Any:
    """A JSON-safe copy of ``v``: dicts and lists recursively, numpy scalars as Python numbers,
    NaN and infinities as None, timestamps as ISO strings, any other object as its string."""
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return str(v)


def reference_sample(features: pd.DataFrame, probabilities: Any, columns: list[str], max_rows: int = 20_000,
                     seed: int = 0) -> pd.DataFrame:
    """Drift reference saved with a model: a random sample of its training rows.

    Parameters
    ----------
    features : DataFrame of shape (n, >= len(columns))
        Training features.
    probabilities : array-like of shape (n,)
        The model's probability of class 1 on those rows (out-of-sample where available).
    columns : list of str
        Feature columns kept.
    max_rows : int
        Rows kept at most (sampled without replacement; all rows when n <= max_rows).
    seed : int
        Seed of the sample (same inputs and seed -> same sample).

    Returns
    -------
    DataFrame of shape (min(n, max_rows), len(columns) + 1)
        ``columns`` plus ``probability``, rows in their original order, index reset.

    Raises
    ------
    ValueError
        ``probabilities`` does not have one value per row.
    KeyError
        A column is missing from ``features``.
    """
    prob = np.asarray(probabilities, dtype=float).ravel()
    if len(prob) != len(features):
        raise ValueError(f"reference_sample: {len(prob)} probabilities for {len(features)} feature rows")
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise KeyError(f"reference_sample: features lack columns {missing}")
    out = features[list(columns)].reset_index(drop=True).assign(probability=prob)
    if len(out) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(out), size=max_rows, replace=False))
        out = out.iloc[keep].reset_index(drop=True)
    return out


def monitored_features(columns: Any, rank_only: bool = True) -> np.ndarray:
    """Which tested features can raise the feature-drift alert (see
    :attr:`DriftThresholds.ks_rank_only`).

    Parameters
    ----------
    columns : sequence of str
        Tested feature names.
    rank_only : bool
        True: the ``*_rank`` columns when there is at least one, else all; False: all.

    Returns
    -------
    ndarray of bool, one per column.
    """
    names = [str(c) for c in columns]
    is_rank = np.array([c.endswith("_rank") for c in names], dtype=bool)
    if not rank_only or not is_rank.any():
        return np.ones(len(names), dtype=bool)
    return is_rank


def check_drift(reference: pd.DataFrame, current: pd.DataFrame, *, columns: list[str],
                outcomes: pd.DataFrame | None = None, thresholds: DriftThresholds = DriftThresholds(),
                window_days: int = 30, model: str = "") -> DriftReport:
    """Drift statistics and the retraining decision.

    Parameters
    ----------
    reference, current : DataFrame
        Feature frames carrying ``columns`` and a ``probability`` column (reference: from
        :func:`reference_sample`; current: recently served rows).
    columns : list of str
        Features tested with :func:`ks_drift`.
    outcomes : DataFrame, optional
        Evaluated predictions for :func:`rolling_performance`.
    thresholds : DriftThresholds
    window_days : int
        Window of the rolling performance, calendar days.
    model : str
        Scope of the alert keys (the model name), so alerts of different models de-duplicate
        separately.

    Returns
    -------
    DriftReport
        Rules (each one alert): KS > ``ks`` on >= ``ks_min_features`` monitored features (by
        default the ``*_rank`` ones when present, see :attr:`DriftThresholds.ks_rank_only`) -> warning,
        ``schedule_retraining``; PSI > ``psi`` -> critical, ``urgent_retraining``; rolling
        accuracy < ``accuracy_floor`` -> critical, urgent; rolling Brier > ``brier_ceiling`` ->
        warning, schedule. The performance rules need >= ``min_outcomes`` outcomes in the
        window. Urgent wins over schedule.

    Raises
    ------
    KeyError
        ``probability`` or a feature column is missing.
    ValueError
        No finite probability in ``reference`` or ``current``.
    """
    for name, frame in (("reference", reference), ("current", current)):
        if "probability" not in frame.columns:
            raise KeyError(f"check_drift: {name} has no 'probability' column")
    t = thresholds
    feature_drift = ks_drift(reference, current, columns, t.ks)
    feature_drift["monitored"] = monitored_features(feature_drift["feature"], t.ks_rank_only)
    feature_drift["breached"] = feature_drift["breached"] & feature_drift["monitored"]
    psi_value = psi(reference["probability"], current["probability"])
    performance: dict[str, Any] = {}
    if outcomes is not None and len(outcomes):
        perf = rolling_performance(outcomes, window_days)
        if len(perf):
            performance = perf.iloc[-1].to_dict()
            performance["date"] = pd.Timestamp(performance["date"])
            performance["n"] = int(performance["n"])
    brier = float(performance.get("brier", float("nan")))
    enough = performance.get("n", 0) >= t.min_outcomes
    drifted = feature_drift[feature_drift["breached"]]
    values = {"psi": psi_value, "ks_breached_features": float(len(drifted)),
              "rolling_accuracy": float(performance["accuracy"]) if enough else None,
              "brier": brier if enough else None}
    n_out = performance.get("n", 0)
    sentences = {
        "psi": f"PSI of the predicted probabilities {psi_value:.3f} > {t.psi:g}",
        "ks_breached_features": (f"KS > {t.ks:g} on {len(drifted)} features ("
                                 + ", ".join(f"{r.feature} {r.ks_statistic:.2f}" for r in drifted.itertuples())
                                 + f") >= {t.ks_min_features}"),
        "rolling_accuracy": (f"rolling {window_days}-day accuracy {performance.get('accuracy', float('nan')):.3f} "
                             f"< {t.accuracy_floor:g} ({n_out} outcomes)"),
        "brier": f"rolling {window_days}-day Brier score {brier:.3f} > {t.brier_ceiling:g} ({n_out} outcomes)",
    }
    fired = evaluate_rules(values, t.rules(), scope=model)
    reasons = [sentences[a.metric] for a in fired]
    alerts = [replace(a, message=f"{model}: {r}" if model else r) for a, r in zip(fired, reasons, strict=True)]
    severities = {a.severity for a in alerts}
    action = ("urgent_retraining" if "critical" in severities
              else "schedule_retraining" if severities else "none")
    return DriftReport(feature_drift=feature_drift, psi=psi_value, performance=performance, brier=brier,
                       action=action, reasons=reasons, alerts=alerts, thresholds=t)
