"""The retraining run log (``ml_retraining_runs``) and the scheduler's database locks
(``ops_job_locks``).

The lock is a row keyed by (job id, run key): whoever inserts it first runs the job, every
other scheduler or API process that tries the same key sees the row and skips. The run key
names one occurrence of a job (``2019-06-03`` for a daily job, ``2019-06`` for a monthly
one), so two schedulers started at once never run the same occurrence twice, on SQLite and
PostgreSQL alike (a primary key, not an in-process mutex).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from vfr.opsdb.db import ensure_schema, utcnow
from vfr.opsdb.schema import LOCKS, RUNS

#: Run key of the lock held while a retraining runs (at most one at a time per database).
ACTIVE = "active"


def owner_id() -> str:
    """``host:pid``: who holds a lock."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(engine: sa.Engine, job_id: str, run_key: str, owner: str | None = None) -> bool:
    """Take the lock of one job occurrence; True for exactly one caller per (job_id, run_key).

    Raises
    ------
    sqlalchemy.exc.OperationalError
        If the database is unreachable (no job runs without the lock).
    """
    ensure_schema(engine)
    row = {"job_id": job_id[:64], "run_key": run_key[:64], "owner": (owner or owner_id())[:128],
           "acquired_at": utcnow()}
    try:
        with engine.begin() as conn:
            conn.execute(LOCKS.insert().values(**row))
        return True
    except sa.exc.IntegrityError:
        return False


def release(engine: sa.Engine, job_id: str, run_key: str) -> None:
    """Delete a lock row (for locks meant to be reused, such as :data:`ACTIVE`)."""
    with engine.begin() as conn:
        conn.execute(LOCKS.delete().where(LOCKS.c.job_id == job_id, LOCKS.c.run_key == run_key))


@contextmanager
def exclusive(engine: sa.Engine, job_id: str, *, stale_after_s: float = 6 * 3600) -> Iterator[bool]:
    """Hold the :data:`ACTIVE` lock of ``job_id`` for the block; yields False when another holds it.

    A lock older than ``stale_after_s`` (its holder died) is broken and taken over.
    """
    ensure_schema(engine)
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    with engine.begin() as conn:
        conn.execute(LOCKS.delete().where(LOCKS.c.job_id == job_id, LOCKS.c.run_key == ACTIVE,
                                          LOCKS.c.acquired_at < cutoff))
    got = claim(engine, job_id, ACTIVE)
    try:
        yield got
    finally:
        if got:
            release(engine, job_id, ACTIVE)


def start_run(engine: sa.Engine, *, trigger: str, model_name: str, champion_before: str | None) -> int:
    """Insert a ``running`` row; returns its id."""
    ensure_schema(engine)
    with engine.begin() as conn:
        res = conn.execute(RUNS.insert().values(started_at=utcnow(), trigger=trigger[:32], status="running",
                                                model_name=model_name, champion_before=champion_before))
        pk = res.inserted_primary_key
        assert pk is not None  # set for every single-row INSERT ... VALUES on a table with a primary key
        return int(pk[0])


def finish_run(engine: sa.Engine, run_id: int, *, status: str, action: str | None = None,
               challenger_version: str | None = None, champion_after: str | None = None, reason: str = "",
               report: dict[str, Any] | None = None) -> None:
    """Record how a run ended (``decided``, ``blocked``, ``failed``, ``skipped``, ``rollback``)."""
    with engine.begin() as conn:
        conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(
            finished_at=utcnow(), status=status, action=action, challenger_version=challenger_version,
            champion_after=champion_after, reason=reason, report=json.dumps(report or {}, default=str)))


def recent_runs(engine: sa.Engine, limit: int = 20, model_name: str | None = None) -> pd.DataFrame:
    """The newest runs first; ``report`` parsed from JSON."""
    ensure_schema(engine)
    q = sa.select(RUNS).order_by(RUNS.c.id.desc()).limit(limit)
    if model_name is not None:
        q = q.where(RUNS.c.model_name == model_name)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in RUNS.columns])
    frame["report"] = [json.loads(r) if r else {} for r in frame["report"]]
    return frame


#: Columns of a run as the API and the dashboard show it (``model_name`` and ``report`` left out).
RUN_FIELDS = ("id", "started_at", "finished_at", "trigger", "status", "champion_before", "challenger_version",
              "champion_after", "action", "reason")


def run_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of :func:`recent_runs` as dicts of :data:`RUN_FIELDS`, missing values (NaN, NaT) as None."""
    return [{k: (None if (v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT) else v)
             for k, v in r.items()} for r in frame[list(RUN_FIELDS)].to_dict("records")]


def holder(engine: sa.Engine, job_id: str = "retrain", run_key: str = ACTIVE) -> dict[str, Any] | None:
    """Who holds the lock of ``(job_id, run_key)``: ``{"owner": "host:pid", "acquired_at": ...}`` or None."""
    ensure_schema(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(LOCKS.c.owner, LOCKS.c.acquired_at).where(
            LOCKS.c.job_id == job_id, LOCKS.c.run_key == run_key)).first()
    return None if row is None else {"owner": row.owner, "acquired_at": row.acquired_at}


def is_running(engine: sa.Engine, job_id: str = "retrain") -> bool:
    """Whether a run of ``job_id`` holds the :data:`ACTIVE` lock now."""
    ensure_schema(engine)
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(LOCKS).where(
            LOCKS.c.job_id == job_id, LOCKS.c.run_key == ACTIVE)).scalar_one() > 0
