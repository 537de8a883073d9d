"""The retraining run log (``ml_retraining_runs``) and the scheduler's database locks
(``ops_job_locks``).

The lock is a row keyed by (job id, run key): whoever inserts it first runs the job, every
other scheduler or API process that tries the same key sees the row and skips. The run key
names one occurrence of a job (``2019-06-03`` for a daily job, ``2019-06`` for a monthly
one), so two schedulers started at once never run the same occurrence twice, on SQLite and
PostgreSQL alike (a primary key, not an in-process mutex).

The :data:`ACTIVE` lock a retraining holds while it runs (:func:`exclusive`) is a lease: its
holder refreshes ``heartbeat_at`` every ``ttl_s / 4`` seconds from a background thread. A lease
whose heartbeat is older than ``ttl_s``, or whose holder is a process of this host that no
longer exists, is stale: the next :func:`exclusive` takes it over (compare-and-delete, so one
taker wins) and marks the run it belonged to ``failed`` with the reason ``holder died: ...``;
:func:`is_running` does not count it. A crashed retraining therefore blocks the next one for
at most ``ttl_s`` (at once on the same host), not for hours.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from vfr.opsdb.db import ensure_schema, utcnow
from vfr.opsdb.schema import LOCKS, RUNS

log = logging.getLogger(__name__)

#: Run key of the lock held while a retraining runs (at most one at a time per database).
ACTIVE = "active"
#: Default lease time of :func:`exclusive` (``settings.retrain_lock_ttl_s``), seconds.
LEASE_TTL_S = 120.0


def owner_id() -> str:
    """``host:pid``: who holds a lock."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(engine: sa.Engine, job_id: str, run_key: str, owner: str | None = None, *,
          run_id: int | None = None) -> bool:
    """Take the lock of one job occurrence; True for exactly one caller per (job_id, run_key).

    ``run_id``: the retraining run the lock belongs to (marked failed if its holder dies).

    Raises
    ------
    sqlalchemy.exc.OperationalError
        If the database is unreachable (no job runs without the lock).
    """
    return _insert(engine, job_id, run_key, owner, run_id) is not None


def _insert(engine: sa.Engine, job_id: str, run_key: str, owner: str | None, run_id: int | None) -> datetime | None:
    """Insert the lock row; its ``acquired_at`` (which identifies this holding), or None when taken."""
    ensure_schema(engine)
    now = utcnow()
    row = {"job_id": job_id[:64], "run_key": run_key[:64], "owner": (owner or owner_id())[:128],
           "acquired_at": now, "heartbeat_at": now, "run_id": run_id}
    try:
        with engine.begin() as conn:
            conn.execute(LOCKS.insert().values(**row))
        return now
    except sa.exc.IntegrityError:
        return None


def release(engine: sa.Engine, job_id: str, run_key: str) -> None:
    """Delete a lock row (for locks meant to be reused, such as :data:`ACTIVE`)."""
    with engine.begin() as conn:
        conn.execute(LOCKS.delete().where(LOCKS.c.job_id == job_id, LOCKS.c.run_key == run_key))


def _process_gone(owner: str) -> int | None:
    """The pid of ``owner`` (``host:pid``) when it is a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) <= 0:
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return pid
    except OSError:  # PermissionError: it exists (another user's process)
        return None
    return None


def stale_reason(row: Any, ttl_s: float, now: datetime | None = None) -> str | None:
    """Why the lease ``row`` (owner, acquired_at, heartbeat_at) is stale, or None while its holder lives."""
    pid = _process_gone(row.owner)
    if pid is not None:
        return f"process {pid} on {socket.gethostname()} is gone"
    beat = row.heartbeat_at or row.acquired_at
    age = ((now or utcnow()) - beat).total_seconds()
    if age > ttl_s:
        return f"no heartbeat from {row.owner} for {age:.0f} s (lease {ttl_s:g} s)"
    return None


def _take_over_stale(engine: sa.Engine, job_id: str, ttl_s: float) -> str | None:
    """Delete a stale :data:`ACTIVE` lease of ``job_id`` and fail its run; returns why, or None."""
    lease = (LOCKS.c.job_id == job_id, LOCKS.c.run_key == ACTIVE)
    with engine.begin() as conn:
        row = conn.execute(sa.select(LOCKS).where(*lease)).first()
        if row is None:
            return None
        why = stale_reason(row, ttl_s)
        if why is None:
            return None
        same_beat = LOCKS.c.heartbeat_at.is_(None) if row.heartbeat_at is None else \
            LOCKS.c.heartbeat_at == row.heartbeat_at
        gone = conn.execute(LOCKS.delete().where(*lease, LOCKS.c.owner == row.owner,
                                                 LOCKS.c.acquired_at == row.acquired_at, same_beat)).rowcount
        if not gone:  # it beat (or someone else took it over) meanwhile
            return None
        if row.run_id is not None:
            conn.execute(RUNS.update().where(RUNS.c.id == row.run_id, RUNS.c.status == "running").values(
                status="failed", finished_at=utcnow(), reason=f"holder died: {why}"))
    log.warning("lock %s/%s taken over: holder died: %s", job_id, ACTIVE, why)
    return why


def reap_stale(engine: sa.Engine, job_id: str = "retrain", ttl_s: float = LEASE_TTL_S) -> str | None:
    """Drop the :data:`ACTIVE` lease of ``job_id`` when its holder died (see :func:`stale_reason`)
    and mark its run ``failed`` ("holder died: ..."); returns why, or None when there was nothing
    to reap. Readers call it so a crashed worker shows as failed without waiting for the next run."""
    ensure_schema(engine)
    return _take_over_stale(engine, job_id, ttl_s)


class _Heartbeat:
    """Refreshes ``heartbeat_at`` of one holding of a lease every ``interval_s`` in a daemon thread."""

    def __init__(self, engine: sa.Engine, job_id: str, owner: str, acquired_at: datetime, interval_s: float) -> None:
        self.engine = engine
        self.where = (LOCKS.c.job_id == job_id, LOCKS.c.run_key == ACTIVE, LOCKS.c.owner == owner,
                      LOCKS.c.acquired_at == acquired_at)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), name=f"vfr-lease-{job_id}",
                                        daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                with self.engine.begin() as conn:
                    n = conn.execute(LOCKS.update().where(*self.where).values(heartbeat_at=utcnow())).rowcount
            except Exception as exc:  # noqa: BLE001 - database blip: try again at the next beat
                log.warning("lease heartbeat failed (%s); retrying", exc.__class__.__name__)
                continue
            if not n:
                self.lost = True
                log.error("the lease was taken over by another process (no heartbeat for too long)")
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@contextmanager
def exclusive(engine: sa.Engine, job_id: str, *, ttl_s: float = LEASE_TTL_S, run_id: int | None = None,
              heartbeat_s: float | None = None) -> Iterator[bool]:
    """Hold the :data:`ACTIVE` lease of ``job_id`` for the block; yields False when another holds it.

    A stale lease (no heartbeat for ``ttl_s``, or its holder process on this host is gone) is
    taken over first and its run marked ``failed`` ("holder died"). While the block runs, a
    thread refreshes the heartbeat every ``heartbeat_s`` (default ``ttl_s / 4``).

    Parameters
    ----------
    run_id : int, optional
        The retraining run holding the lease (recorded with it, failed if this process dies).
    """
    ensure_schema(engine)
    _take_over_stale(engine, job_id, ttl_s)
    owner = owner_id()
    acquired_at = _insert(engine, job_id, ACTIVE, owner, run_id)
    beat = None if acquired_at is None else \
        _Heartbeat(engine, job_id, owner, acquired_at, heartbeat_s or max(ttl_s / 4, 0.05))
    try:
        yield acquired_at is not None
    finally:
        if beat is not None:
            beat.stop()
            with engine.begin() as conn:  # only our own holding: a takeover's row is not ours to delete
                conn.execute(LOCKS.delete().where(*beat.where))


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
    # a run without a report yet reads as NaN in a string column (pandas): {} like an empty one
    frame["report"] = [json.loads(r) if isinstance(r, str) and r else {} for r in frame["report"]]
    return frame


#: Columns of a run as the API and the dashboard show it (``model_name`` and ``report`` left out).
RUN_FIELDS = ("id", "started_at", "finished_at", "trigger", "status", "champion_before", "challenger_version",
              "champion_after", "action", "reason")


def run_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of :func:`recent_runs` as dicts of :data:`RUN_FIELDS`, missing values (NaN, NaT) as None."""
    return [{k: (None if (v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT) else v)
             for k, v in r.items()} for r in frame[list(RUN_FIELDS)].to_dict("records")]


def holder(engine: sa.Engine, job_id: str = "retrain", run_key: str = ACTIVE) -> dict[str, Any] | None:
    """Who holds the lock of ``(job_id, run_key)``: ``{"owner": "host:pid", "acquired_at", "heartbeat_at",
    "run_id"}`` or None."""
    ensure_schema(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(LOCKS.c.owner, LOCKS.c.acquired_at, LOCKS.c.heartbeat_at, LOCKS.c.run_id).where(
            LOCKS.c.job_id == job_id, LOCKS.c.run_key == run_key)).first()
    return None if row is None else {"owner": row.owner, "acquired_at": row.acquired_at,
                                     "heartbeat_at": row.heartbeat_at, "run_id": row.run_id}


def is_running(engine: sa.Engine, job_id: str = "retrain", ttl_s: float = LEASE_TTL_S) -> bool:
    """Whether a live run of ``job_id`` holds the :data:`ACTIVE` lease now (a stale lease does not count)."""
    ensure_schema(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(LOCKS).where(LOCKS.c.job_id == job_id, LOCKS.c.run_key == ACTIVE)).first()
    return row is not None and stale_reason(row, ttl_s) is None
