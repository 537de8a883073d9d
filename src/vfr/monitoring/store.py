"""Monitoring tables of the serving database: ``ml_drift`` and ``ml_alerts``.

The tables are created by the Alembic revision ``0002`` (run through
:func:`vfr.serving.predlog.migrate`); the :class:`sqlalchemy.Table` objects here mirror it for
queries. Every function takes the engine and migrates before use (idempotent).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from vfr.serving.predlog import migrate

if TYPE_CHECKING:
    from vfr.monitoring.drift import DriftReport

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_META = sa.MetaData()
DRIFT = sa.Table(
    "ml_drift", _META,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("computed_at", sa.DateTime()), sa.Column("as_of", sa.Date()), sa.Column("model_name", sa.String(128)),
    sa.Column("model_version", sa.String(32)), sa.Column("kind", sa.String(16)), sa.Column("name", sa.String(128)),
    sa.Column("statistic", sa.Float()), sa.Column("threshold", sa.Float()), sa.Column("breached", sa.Boolean()),
    sa.Column("p_value", sa.Float()),
)
ALERTS = sa.Table(
    "ml_alerts", _META,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(255), unique=True), sa.Column("rule", sa.String(64)),
    sa.Column("severity", sa.String(16)), sa.Column("metric", sa.String(64)), sa.Column("value", sa.Float()),
    sa.Column("threshold", sa.Float()), sa.Column("message", sa.Text()), sa.Column("first_seen_at", sa.DateTime()),
    sa.Column("last_seen_at", sa.DateTime()), sa.Column("last_sent_at", sa.DateTime()),
    sa.Column("count", sa.Integer()), sa.Column("delivered_to", sa.Text()),
)

DRIFT_COLUMNS = ["computed_at", "as_of", "model_name", "model_version", "kind", "name", "statistic", "threshold",
                 "breached", "p_value"]
ALERT_COLUMNS = ["key", "rule", "severity", "metric", "value", "threshold", "message", "first_seen_at",
                 "last_seen_at", "count", "last_sent_at", "delivered_to"]


def utcnow() -> datetime:
    """Current UTC time as a naive datetime (the serving database stores naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


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
        Serving database (SQLite or PostgreSQL); migrated first.
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
    migrate(engine)
    stamp = computed_at or utcnow()
    day = pd.Timestamp(as_of).date()
    rows = [{"computed_at": stamp, "as_of": day, "model_name": model_name, "model_version": str(model_version), **r}
            for r in drift_rows(report)]
    with engine.begin() as conn:
        conn.execute(DRIFT.insert(), rows)
    return len(rows)


def latest_drift(engine: sa.Engine, model_name: str | None = None) -> pd.DataFrame:
    """Rows of the newest drift check (of ``model_name``, or of any model).

    Returns
    -------
    DataFrame
        Columns ``computed_at, as_of, model_name, model_version, kind, name, statistic,
        threshold, breached, p_value``; empty when no check was saved. Missing statistics are NaN.
    """
    migrate(engine)
    newest = sa.select(sa.func.max(DRIFT.c.computed_at))
    q = sa.select(*[DRIFT.c[c] for c in DRIFT_COLUMNS]).order_by(DRIFT.c.id)
    if model_name is not None:
        newest = newest.where(DRIFT.c.model_name == model_name)
        q = q.where(DRIFT.c.model_name == model_name)
    q = q.where(DRIFT.c.computed_at == newest.scalar_subquery())
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).all(), columns=DRIFT_COLUMNS)
    for c in ("statistic", "threshold", "p_value"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    frame["breached"] = frame["breached"].astype(bool)
    return frame


def recent_alerts(engine: sa.Engine, limit: int = 50) -> pd.DataFrame:
    """The ``limit`` most recently seen alerts, newest first.

    Returns
    -------
    DataFrame
        Columns ``key, rule, severity, metric, value, threshold, message, first_seen_at,
        last_seen_at, count, last_sent_at, delivered_to`` (times naive UTC; ``count`` = times
        the alert was published, delivered or not).
    """
    if limit < 1:
        raise ValueError(f"recent_alerts: limit must be >= 1, got {limit}")
    migrate(engine)
    q = (sa.select(*[ALERTS.c[c] for c in ALERT_COLUMNS])
         .order_by(ALERTS.c.last_seen_at.desc(), ALERTS.c.id.desc()).limit(limit))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).all(), columns=ALERT_COLUMNS)
    for c in ("value", "threshold"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    frame["count"] = frame["count"].astype(int)
    return frame
