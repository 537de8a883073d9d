"""The early-signal model's feedback loop: outcomes from the reports, performance per version.

A logged early-signal prediction (``model_name`` = the early-signal model) made on feature date
``t`` for a symbol is settled by that symbol's first report published after ``t`` (within
``max_days`` calendar days): its outcome holds the surprise (``surprise_pct``), ``correct`` =
(predicted class == surprise above the label threshold), and the trade's return from the close
of ``t`` to the close of the first trading day after the report (``realised_return``; minus the
equal-weighted universe: ``excess_return``). Outcomes are written only once the report and the
exit close are in the store, so nothing is settled early.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from vfr.earnings.dataset import clean_reports
from vfr.earnings.trade import event_trades
from vfr.monitoring.alerts import Alert, AlertRule, evaluate_rules
from vfr.monitoring.drift import psi
from vfr.opsdb import insert_outcomes, open_predictions, utcnow


def fill_earnings_outcomes(engine: sa.Engine, reports: pd.DataFrame,
                           read_prices: Callable[[pd.Timestamp], pd.DataFrame], *, model_name: str,
                           label_threshold: float = 20.0, max_days: int = 120) -> int:
    """Settle the open early-signal predictions whose report (and the day after it) is known.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The operations database.
    reports : pandas.DataFrame
        The store's earnings table (``symbol, reported_date, surprise_pct``, ...).
    read_prices : callable
        ``read_prices(start) -> DataFrame`` (``symbol, date, close``, adjusted) from ``start`` on.
    model_name : str
        Registered name of the early-signal model (only its predictions are settled).
    label_threshold : float
        Surprise (percent) above which the report counts as a large positive surprise.
    max_days : int
        A prediction with no report within this many calendar days stays open.

    Returns
    -------
    int
        Outcomes written (one transaction).
    """
    open_ = open_predictions(engine)
    open_ = open_[open_["model_name"] == model_name]
    if open_.empty:
        return 0
    rep = clean_reports(reports)
    rep = rep[rep["surprise_pct"].notna()][["symbol", "reported_date", "surprise_pct"]]
    rep = rep.assign(symbol=rep["symbol"].astype(object),
                     reported_date=rep["reported_date"].astype("datetime64[ns]")).sort_values("reported_date")
    q = open_.assign(symbol=open_["symbol"].astype(object),
                     after=(open_["date"] + pd.Timedelta(days=1)).astype("datetime64[ns]"))
    q = q.sort_values("after")
    # the first report published strictly after the feature date
    merged = pd.merge_asof(q, rep, left_on="after", right_on="reported_date", by="symbol", direction="forward",
                           tolerance=pd.Timedelta(days=max_days)).dropna(subset=["reported_date"])
    if merged.empty:
        return 0
    prices = read_prices(merged["date"].min())
    known = merged["date"].isin(set(prices["date"]))  # the entry close must be a stored trading day
    trades = event_trades(merged[known].rename(columns={"date": "asof_date"}), prices, cost_bps=0.0)
    now = utcnow()
    rows = [{"prediction_id": int(r.id), "horizon_end": r.exit_date.date(), "realised_return": float(r.ret),
             "excess_return": float(r.excess),
             "correct": bool((int(r.predicted_class) == 1) == (float(r.surprise_pct) > label_threshold)),
             "evaluated_at": now, "surprise_pct": float(r.surprise_pct)}
            for r in trades.itertuples(index=False)]  # no exit close yet (or no price): stays open
    return insert_outcomes(engine, rows)


def early_signal_performance(outcomes: pd.DataFrame, *, label_threshold: float = 20.0,
                             reference: np.ndarray | None = None) -> pd.DataFrame:
    """Live performance of each model version from its settled predictions.

    Parameters
    ----------
    outcomes : pandas.DataFrame
        :func:`vfr.opsdb.evaluated_outcomes` of the early-signal model (``model_version``,
        ``probability``, ``predicted_class``, ``surprise_pct``).
    reference : numpy.ndarray, optional
        Probabilities the version produced out of sample at training time (its walk-forward
        predictions): the PSI of the served probabilities is measured against them.

    Returns
    -------
    pandas.DataFrame, one row per version
        ``model_version, n, base_rate, roc_auc`` (NaN with one class), ``precision`` (share of
        predicted positives that were), ``brier`` (Brier 1950), ``brier_climatology`` (Brier of
        the constant forecast = the observed base rate: skill needs brier below it) and ``psi``.
    """
    from sklearn.metrics import roc_auc_score

    out = []
    for version, g in outcomes.dropna(subset=["surprise_pct"]).groupby("model_version"):
        y = (g["surprise_pct"].to_numpy(float) > label_threshold).astype(float)
        p = g["probability"].to_numpy(float)
        flagged = g["predicted_class"].to_numpy(int) == 1
        base = float(y.mean())
        out.append({"model_version": str(version), "n": len(g), "base_rate": base,
                    "roc_auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan"),
                    "precision": float(y[flagged].mean()) if flagged.any() else float("nan"),
                    "brier": float(np.mean((p - y) ** 2)), "brier_climatology": float(np.mean((base - y) ** 2)),
                    "psi": psi(reference, p) if reference is not None and len(reference) else float("nan")})
    return pd.DataFrame(out, columns=["model_version", "n", "base_rate", "roc_auc", "precision", "brier",
                                      "brier_climatology", "psi"])


#: Alert rules of the early-signal model's live performance (checked with >= ``MIN_OUTCOMES``
#: settled predictions): ranking lost (AUC), probabilities worse than the base rate (Brier above
#: the climatology's), served probabilities drifted from the walk-forward ones (PSI).
EARLY_SIGNAL_ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule("early_signal_auc", "roc_auc", "<", 0.70, "critical"),
    AlertRule("early_signal_brier", "brier_excess", ">", 0.0, "warning"),
    AlertRule("early_signal_psi", "psi", ">", 0.2, "warning"),
)
MIN_OUTCOMES = 100


def early_signal_alerts(performance: pd.DataFrame, version: str | None, *, scope: str) -> list[Alert]:
    """Alerts of :data:`EARLY_SIGNAL_ALERT_RULES` for ``version``'s row of :func:`early_signal_performance`
    (none with fewer than :data:`MIN_OUTCOMES` settled predictions)."""
    row = performance[performance["model_version"] == str(version)]
    if row.empty or int(row["n"].iloc[0]) < MIN_OUTCOMES:
        return []
    r = row.iloc[0]
    values = {"roc_auc": float(r["roc_auc"]), "brier_excess": float(r["brier"] - r["brier_climatology"]),
              "psi": float(r["psi"])}
    return evaluate_rules(values, EARLY_SIGNAL_ALERT_RULES, scope=f"{scope} v{version}")
