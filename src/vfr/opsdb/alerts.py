"""Alerts and their de-duplication state (``ml_alerts``, one row per alert key).

The database decides who sends an alert: :func:`claim_alert` inserts a new key (unique
constraint, on-conflict-do-nothing, ``RETURNING`` the inserted row) or updates ``last_sent_at``
only where it is older than the de-duplication window; the affected row count says whether
this caller won. PostgreSQL re-checks the ``WHERE`` of a concurrent update after the first
commits and SQLite serialises writers, so of several processes claiming the same alert at once
exactly one wins.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from vfr.opsdb.db import ensure_schema, insert_ignore
from vfr.opsdb.schema import ALERTS

#: Columns of :func:`recent_alerts`.
ALERT_COLUMNS = ["key", "rule", "severity", "metric", "value", "threshold", "message", "first_seen_at",
                 "last_seen_at", "count", "last_sent_at", "delivered_to"]


def _num(x: float | None) -> float | None:
    """Float, or None for missing / non-finite values (stored as SQL NULL)."""
    return float(x) if x is not None and math.isfinite(float(x)) else None


def claim_alert(engine: sa.Engine, *, key: str, rule: str, metric: str, severity: str, message: str,
                value: float | None, threshold: float | None, now: datetime,
                dedup_window_s: float) -> tuple[bool, datetime | None]:
    """Count a sighting of an alert; whether this caller may send it now.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The operations database (migrated first, once per engine).
    key, rule, metric, severity, message : str
        The alert (``key`` identifies it across sightings).
    value, threshold : float or None
        Non-finite values are stored as NULL.
    now : datetime
        Naive UTC time of the sighting.
    dedup_window_s : float
        The alert is claimable again once its last send is this many seconds old.

    Returns
    -------
    tuple of (bool, datetime or None)
        Whether this call won the right to send, and the previous send time (to give the claim
        back with :func:`release_alert` when no sink took the alert).
    """
    ensure_schema(engine)
    seen = {"value": _num(value), "threshold": _num(threshold), "message": message, "severity": severity,
            "last_seen_at": now}
    where = ALERTS.c["key"] == key
    with engine.begin() as conn:  # RETURNING, not rowcount: psycopg reports -1 for INSERTs here
        inserted = conn.execute(insert_ignore(engine, ALERTS).values(
            key=key, rule=rule, metric=metric, first_seen_at=now, last_sent_at=now, count=1,
            **seen).returning(ALERTS.c.id)).first()
    if inserted is not None:
        return True, None
    cutoff = now - timedelta(seconds=dedup_window_s)
    with engine.connect() as conn:  # read apart: a write transaction must start with its write on SQLite
        previous = conn.execute(sa.select(ALERTS.c.last_sent_at).where(where)).scalar()
    with engine.begin() as conn:
        won = conn.execute(
            ALERTS.update()
            .where(where, sa.or_(ALERTS.c.last_sent_at.is_(None), ALERTS.c.last_sent_at <= cutoff))
            .values(count=ALERTS.c["count"] + 1, last_sent_at=now, **seen)).rowcount
        if won != 1:
            conn.execute(ALERTS.update().where(where).values(count=ALERTS.c["count"] + 1, **seen))
    return won == 1, previous


def record_delivery(engine: sa.Engine, key: str, delivered_to: list[str]) -> None:
    """Record which sinks took a claimed alert (comma-separated in ``delivered_to``)."""
    with engine.begin() as conn:
        conn.execute(ALERTS.update().where(ALERTS.c["key"] == key).values(delivered_to=",".join(delivered_to)))


def release_alert(engine: sa.Engine, key: str, claimed_at: datetime, previous: datetime | None) -> None:
    """Give back a claim nobody delivered: ``last_sent_at`` returns to ``previous`` (so the next
    publish retries), unless another caller claimed the alert since ``claimed_at``."""
    with engine.begin() as conn:
        conn.execute(ALERTS.update().where(ALERTS.c["key"] == key, ALERTS.c.last_sent_at == claimed_at)
                     .values(last_sent_at=previous))


def recent_alerts(engine: sa.Engine, limit: int = 50) -> pd.DataFrame:
    """The ``limit`` most recently seen alerts, newest first.

    Returns
    -------
    DataFrame
        Columns :data:`ALERT_COLUMNS` (times naive UTC; ``count`` = times the alert was
        published, delivered or not).

    Raises
    ------
    ValueError
        If ``limit`` < 1.
    """
    if limit < 1:
        raise ValueError(f"recent_alerts: limit must be >= 1, got {limit}")
    ensure_schema(engine)
    q = (sa.select(*[ALERTS.c[c] for c in ALERT_COLUMNS])
         .order_by(ALERTS.c.last_seen_at.desc(), ALERTS.c.id.desc()).limit(limit))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).all(), columns=ALERT_COLUMNS)
    for c in ("value", "threshold"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    frame["count"] = frame["count"].astype(int)
    return frame
