"""The prediction log's writer: every served ML prediction goes to ``ml_predictions`` of the
operations database (:mod:`vfr.opsdb`, which owns the table); a job fills ``ml_outcomes`` once
the horizon has passed (:func:`vfr.monitoring.fill_outcomes`).

Writes to the database never happen on the request path. A request appends its new rows, as
one JSON line, to an append-only spool file in VFR home (``<home>/predlog-spill/predlog-spool.jsonl``)
and fsyncs it before the answer is returned; a background thread replays the spool into the
database and removes what it wrote. When the database is down the rows wait on disk, not in
memory (no cap, nothing lost to a crash or a kill), and are written when it returns or at the
next start. Replays are idempotent (the database skips rows already logged), so a crash
between a write and the spool's truncation writes nothing twice.

A prediction is identified by (model name, model version, horizon, feature date, symbol): a
model's output for a stock on a date is one prediction however often it is served. The log
keeps its first serving time (and the request id that first served it); repeated serves are
skipped in process and by a unique key in the database.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr._util import atomic_write, fsync_dir
from vfr.opsdb import (
    confidence_level,
    connect,
    insert_predictions,
    prediction_counts,
    utcnow,
)

log = logging.getLogger(__name__)


class Spool:
    """Batches of prediction rows not yet in the database, oldest first.

    With a ``folder``: each spool (one per logger; every worker process of ``vfr serve
    --workers N`` has its own) is an append-only JSON-lines file, one batch per line, written
    with a single ``O_APPEND`` write and fsynced on every append. :meth:`replay` renames it
    aside (appends go on into a fresh file), writes its batches in order and deletes it; a
    failure keeps the batches not written (rewritten atomically) for the next replay. A torn
    line (a crash in the middle of an append, whose answer was therefore never sent) is skipped.

    Each spool holds an exclusive ``flock`` on its ``.lock`` file while its logger lives; a new
    spool adopts the files of every spool whose lock it can take (its process died or closed)
    and the shutdown spills of earlier versions (``predlog-spill-*.jsonl``). Without a folder
    the batches are kept in process memory (not durable).
    """

    PREFIX = "predlog-spool-"

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: deque[list[dict[str, Any]]] = deque()
        self._lock = threading.Lock()
        self.rows = 0
        self._lock_fd: int | None = None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.token = uuid.uuid4().hex[:12]
            self._lock_fd = os.open(self._name(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._adopt()
            self.rows = sum(len(b) for path in self._files() for b, _ in _batches(path))

    def _name(self, suffix: str, token: str | None = None) -> Path:
        assert self.folder is not None
        return self.folder / f"{self.PREFIX}{token or self.token}{suffix}"

    def _files(self) -> list[Path]:
        """This spool's files to replay, oldest first, then the one appended to."""
        replays = sorted(self.folder.glob(f"{self.PREFIX}{self.token}.replay-*.jsonl")) if self.folder else []
        active = self._name(".jsonl")
        return replays + ([active] if active.exists() else [])

    def append(self, batch: list[dict[str, Any]]) -> None:
        """Add a batch; on disk when this returns (written and fsynced)."""
        with self._lock:
            if self.folder is None:
                self._memory.append(batch)
            else:
                data = (json.dumps(batch, default=str, separators=(",", ":")) + "\n").encode()
                path = self._name(".jsonl")
                new = not path.exists()
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if new:
                    fsync_dir(self.folder)
            self.rows += len(batch)

    def replay(self, write: Callable[[list[dict[str, Any]]], int]) -> int:
        """``write`` every batch, oldest first; returns the rows written (0 when empty).

        Raises
        ------
        Exception
            Whatever ``write`` raised; the batches not written stay in the spool.
        """
        if self.folder is None:
            return self._replay_memory(write)
        with self._lock:  # appends from now on go to a fresh file
            active = self._name(".jsonl")
            if active.exists():
                os.replace(active, self._name(f".replay-{time.time_ns():020d}.jsonl"))
            files = self._files()
        done = 0
        for path in files:
            written_here = 0
            for batch, offset in _batches(path):
                try:
                    write(batch)
                except Exception:
                    if written_here:
                        _keep_from(path, offset)
                    raise
                written_here += len(batch)
                done += len(batch)
                with self._lock:
                    self.rows -= len(batch)
            path.unlink()
        return done

    def _replay_memory(self, write: Callable[[list[dict[str, Any]]], int]) -> int:
        done = 0
        while self._memory:
            batch = self._memory[0]
            write(batch)
            self._memory.popleft()
            done += len(batch)
            with self._lock:
                self.rows -= len(batch)
        return done

    def _adopt(self) -> None:
        """Take over the files of spools whose owner is gone (their lock is free) and old spills."""
        assert self.folder is not None
        for lock in sorted(self.folder.glob(f"{self.PREFIX}*.lock")):
            token = lock.name.removeprefix(self.PREFIX).removesuffix(".lock")
            if token == self.token:
                continue
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:  # adopted by another spool meanwhile
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # its logger is alive
                    continue
                for path in sorted(self.folder.glob(f"{self.PREFIX}{token}.replay-*.jsonl")) + \
                        [self._name(".jsonl", token)]:
                    self._take(path)
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
        for path in sorted(self.folder.glob("predlog-spill-*.jsonl")):
            self._take(path)

    def _take(self, path: Path) -> None:
        try:
            os.replace(path, self._name(f".replay-{time.time_ns():020d}.jsonl"))
        except FileNotFoundError:
            pass

    def close(self) -> None:
        """Release the lock: the files left are adopted by the next spool of this folder."""
        if self._lock_fd is not None:
            if not self._files():
                self._name(".lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None


def _batches(path: Path) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """``(batch, byte offset of its line)`` of each complete line of ``path`` (none when it is absent)."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return
    with fh:
        offset = 0
        for line in fh:
            start, offset = offset, offset + len(line)
            try:
                batch = json.loads(line)
            except ValueError:
                log.warning("prediction log: skipped a torn line of %s (a crash in the middle of an append)",
                            path.name)
                continue
            for row in batch:
                row["served_at"] = datetime.fromisoformat(row["served_at"])
                row["feature_date"] = pd.Timestamp(row["feature_date"]).date()
            yield batch, start


def _keep_from(path: Path, offset: int) -> None:
    """Drop the first ``offset`` bytes of ``path`` (the batches written), atomically."""

    def copy_tail(tmp: Path) -> None:
        with path.open("rb") as src, tmp.open("wb") as dst:
            src.seek(offset)
            shutil.copyfileobj(src, dst, 1 << 20)

    atomic_write(path, copy_tail)


class PredictionLogger:
    """Background writer of the prediction log, with a durable spool in front of the database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the operations database (SQLite file or PostgreSQL).
    spill_dir : Path, optional
        Folder of the spool (see :class:`Spool`); read back at start. Without one, unwritten
        rows wait in process memory only.
    flush_interval_s : float
        Seconds between background flushes; 0 disables the thread (call :meth:`flush`).
    """

    def __init__(self, url: str, spill_dir: Path | None = None, flush_interval_s: float = 1.0) -> None:
        #: The operations database (also read by the other serving services through :mod:`vfr.opsdb`).
        self.engine = connect(url)
        self.spill_dir = spill_dir
        self.spool = Spool(spill_dir)
        self._seen: dict[tuple, set[str]] = {}  # spooled (on disk) by this process
        self._in_flight: dict[tuple, dict[str, threading.Event]] = {}  # being spooled by a request
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = None
        if flush_interval_s > 0:
            self._thread = threading.Thread(target=self._run, args=(flush_interval_s,), name="vfr-predlog",
                                            daemon=True)
            self._thread.start()

    # -- request path -----------------------------------------------------------------
    def log(self, *, symbols: list[str], probabilities: np.ndarray, confidences: np.ndarray,
            features: pd.DataFrame, feature_columns: list[str], model_name: str, model_version: str,
            horizon: str, feature_date: pd.Timestamp, request_id: str | None,
            classes: np.ndarray | None = None) -> int:
        """Spool the served predictions not logged before by this process (on disk, fsynced, when
        this returns: call it before answering).

        A prediction counts as logged only once its batch is fsynced: a request serving rows that
        another request is spooling waits for that spool, and takes the rows over when it failed,
        so no answer goes out before its predictions are on disk.

        Parameters
        ----------
        symbols, probabilities, confidences : sequences of equal length
            The served rows.
        features : DataFrame
            Features of the date (``symbol`` and the model's ``feature_columns``), recorded with
            each new prediction.
        classes : sequence of int, optional
            Predicted class of each row (default ``probability >= 0.5``; a model with its own
            decision threshold, such as the early signal, passes its classes).

        Returns
        -------
        int
            Rows spooled.
        """
        key = (model_name, str(model_version), horizon, pd.Timestamp(feature_date).date())
        spooled = 0
        while True:
            with self._lock:
                seen = self._seen.setdefault(key, set())
                flight = self._in_flight.get(key, {})
                waits = {flight[s] for s in symbols if s not in seen and s in flight}
                new = [i for i, s in enumerate(symbols) if s not in seen and s not in flight]
                done = threading.Event()
                if new:
                    flight = self._in_flight.setdefault(key, flight)
                    flight.update((symbols[i], done) for i in new)
                if len(self._seen) > 10_000:
                    self._seen.pop(next(iter(self._seen)))
            if new:
                ok = False
                try:
                    spooled += self._spool(new, symbols, probabilities, confidences, features, feature_columns,
                                           model_name, horizon, key, request_id, classes)
                    ok = True
                finally:
                    with self._lock:
                        for i in new:
                            flight.pop(symbols[i], None)
                        if not flight:
                            self._in_flight.pop(key, None)
                        if ok:
                            seen.update(symbols[i] for i in new)
                    done.set()
            if not waits:
                return spooled
            for event in waits:  # another request is spooling some of these rows
                event.wait()
            # loop: rows whose other request failed to spool are taken over now

    def _spool(self, new: list[int], symbols: list[str], probabilities: np.ndarray, confidences: np.ndarray,
               features: pd.DataFrame, feature_columns: list[str], model_name: str, horizon: str, key: tuple,
               request_id: str | None, classes: np.ndarray | None) -> int:
        """Build the rows ``new`` (indices into ``symbols``) and append them to the spool (fsynced)."""
        served = utcnow()
        new_syms = [symbols[i] for i in new]
        cols = [c for c in feature_columns if c in features.columns]
        feats = features.loc[features["symbol"].isin(new_syms), ["symbol", *cols]].set_index("symbol")
        feats = feats.astype("float64")
        feats = feats.where(np.isfinite(feats), None)
        by_symbol = feats.to_dict("index")
        rows = []
        for i in new:
            p, c = float(probabilities[i]), confidences[i]
            c = None if c is None or not np.isfinite(c) else float(c)
            rows.append({"served_at": served, "request_id": request_id, "symbol": str(symbols[i]),
                         "feature_date": key[3], "model_name": model_name, "model_version": key[1],
                         "horizon": horizon, "predicted_class": int(p >= 0.5) if classes is None else int(classes[i]),
                         "probability": p, "confidence": c,
                         "confidence_level": None if c is None else confidence_level(c),
                         "features": json.dumps(by_symbol.get(symbols[i], {}), separators=(",", ":"))})
        self.spool.append(rows)
        return len(rows)

    # -- writer -------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Rows spooled and not yet written."""
        return self.spool.rows

    def flush(self) -> int:
        """Write every spooled batch; on failure keep what was not written.

        Returns
        -------
        int
            Rows written by this call.

        Raises
        ------
        sqlalchemy.exc.SQLAlchemyError
            The database is unreachable (the rows stay spooled).
        """
        done = 0
        with self._flush_lock:
            for _ in range(10):  # appends made during a replay go to the next pass
                try:
                    n = self.spool.replay(self._write)
                except Exception as exc:
                    self.failures += 1
                    self.last_error = f"{exc.__class__.__name__}: database unreachable or write failed"
                    raise
                done += n
                if not n:
                    break
            self.last_error = None
        return done

    def _write(self, batch: list[dict[str, Any]]) -> int:
        n = insert_predictions(self.engine, batch)  # one transaction: all of the batch or none
        self.written += n
        return n

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - retried at the next tick
                log.warning("prediction log: %d rows spooled, write failed (%s)", self.pending,
                            exc.__class__.__name__)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and try a last flush; what is left stays in the spool for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        try:
            self.flush()
        except Exception:  # noqa: BLE001
            where = "in the spool (written at next start)" if self.spill_dir is not None else \
                "in memory only (no spool folder): lost"
            log.error("prediction log: %d unwritten rows %s", self.pending, where)
        self.spool.close()
        self.engine.dispose()

    def counts(self) -> dict[str, int]:
        """Rows in ``ml_predictions`` and ``ml_outcomes`` (raises when unreachable)."""
        return prediction_counts(self.engine)

    def stats(self) -> dict[str, Any]:
        """Pending, written, failed flushes and the last error (no URLs or paths)."""
        return {"pending": self.pending, "written": self.written, "failed_flushes": self.failures,
                "last_error": self.last_error}


__all__ = ["PredictionLogger", "confidence_level"]
