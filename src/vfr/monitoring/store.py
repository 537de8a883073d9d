"""Monitoring results in the operations database: drift reports (``ml_drift``) and alerts (``ml_alerts``).

The tables belong to :mod:`vfr.opsdb` (names, Alembic revision ``0002``, every query); this
module turns a :class:`~vfr.monitoring.drift.DriftReport` into rows and re-exports the reads.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from vfr.opsdb import (
    ALERT_COLUMNS,
    DRIFT_COLUMNS,
    insert_drift,
    latest_drift,
    recent_alerts,
    utcnow,
)

if TYPE_CHECKING:
    from vfr.monitoring.drift import DriftReport

__all__ = ["ALERT_COLUMNS", "DRIFT_COLUMNS", "drift_rows", "latest_drift", "recent_alerts", "save_drift_report",
           "utcnow"]


def _num(x: Any) -> float | None:
    """Float, or None for missing / non-finite values (stored as SQL NULL)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def drift_rows(report: DriftReport) -> list[dict[str, Any]]:
    """The rows of ``ml_drift`` describing one report (without run metadata).

    One ``feature`` row per KS test (statistic = KS D, with its p-value), one ``prediction``
    row (``psi``), ``performance`` rows (``accuracy``, ``ic``, ``rank_ic``, ``n``) when outcomes
    were given, and one ``calibration`` row (``brier``). ``breached`` is True where the
    corresponding rule fired (so performance rules with too few outcomes are not breached).
    """
    t = report.thresholds
    fired = {a.metric for a in report.alerts}
    rows: list[dict[str, Any]] = []
    for r in report.feature_drift.itertuples(index=False):
        rows.append({"kind": "feature", "name": str(r.feature), "statistic": _num(r.ks_statistic),
                     "threshold": t.ks, "breached": bool(r.breached), "p_value": _num(r.p_value)})
    rows.append({"kind": "prediction", "name": "psi", "statistic": _num(report.psi), "threshold": t.psi,
                 "breached": "psi" in fired, "p_value": None})
    perf = report.performance
    if perf:
        rows.append({"kind": "performance", "name": "accuracy", "statistic": _num(perf.get("accuracy")),
                     "threshold": t.accuracy_floor, "breached": "rolling_accuracy" in fired, "p_value": None})
        for name in ("ic", "rank_ic", "n"):
            rows.append({"kind": "performance", "name": name, "statistic": _num(perf.get(name)),
                         "threshold": float(t.min_outcomes) if name == "n" else None, "breached": False,
                         "p_value": None})
    rows.append({"kind": "calibration", "name": "brier", "statistic": _num(report.brier),
                 "threshold": t.brier_ceiling, "breached": "brier" in fired, "p_value": None})
    return rows


def save_drift_report(engine: sa.Engine, report: DriftReport, *, model_name: str, model_version: str,
                      as_of: date | str | pd.Timestamp, computed_at: datetime | None = None) -> int:
    """Write a :class:`~vfr.monitoring.drift.DriftReport` to ``ml_drift`` in one transaction.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Operations database (SQLite or PostgreSQL); migrated first.
    report : DriftReport
        Output of :func:`~vfr.monitoring.drift.check_drift`.
    model_name, model_version : str
        The monitored model.
    as_of : date-like
        Last feature date of the current window.
    computed_at : datetime, optional
        Naive UTC time stamped on every row (default now); :func:`latest_drift` returns the rows
        of the newest stamp.

    Returns
    -------
    int
        Rows written (see :func:`drift_rows`).
    """
    stamp = computed_at or utcnow()
    day = pd.Timestamp(as_of).date()
    rows = [{"computed_at": stamp, "as_of": day, "model_name": model_name, "model_version": str(model_version), **r}
            for r in drift_rows(report)]
    return insert_drift(engine, rows)
