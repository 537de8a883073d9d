"""The prediction log's writer: every served ML prediction goes to ``ml_predictions`` of the
operations database (:mod:`vfr.opsdb`, which owns the table); a job fills ``ml_outcomes`` once
the horizon has passed (:func:`vfr.monitoring.fill_outcomes`).

Writes never happen on the request path: requests append a batch to an in-process buffer and a
background thread writes it. When the database is down the batches stay in the buffer and are
written when it returns; at shutdown anything still unwritten is spilled to a JSON-lines file
in VFR home and read back at the next start, so no prediction is silently dropped.

A prediction is identified by (model name, model version, horizon, feature date, symbol): a
model's output for a stock on a date is one prediction however often it is served. The log
keeps its first serving time (and the request id that first served it); repeated serves are
skipped in process and by a unique key in the database.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.opsdb import (
    confidence_level,
    connect,
    insert_predictions,
    prediction_counts,
    utcnow,
)

log = logging.getLogger(__name__)


class PredictionLogger:
    """Buffered, background writer of the prediction log.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the operations database (SQLite file or PostgreSQL).
    spill_dir : Path, optional
        Where unwritten rows are saved at shutdown (and read back at start).
    flush_interval_s : float
        Seconds between background flushes; 0 disables the thread (call :meth:`flush`).
    """

    def __init__(self, url: str, spill_dir: Path | None = None, flush_interval_s: float = 1.0) -> None:
        #: The operations database (also read by the other serving services through :mod:`vfr.opsdb`).
        self.engine = connect(url)
        self.spill_dir = spill_dir
        self._buffer: deque[list[dict[str, Any]]] = deque()
        self._seen: dict[tuple, set[str]] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._load_spill()
        self._thread = None
        if flush_interval_s > 0:
            self._thread = threading.Thread(target=self._run, args=(flush_interval_s,), name="vfr-predlog",
                                            daemon=True)
            self._thread.start()

    # -- request path -----------------------------------------------------------------
    def log(self, *, symbols: list[str], probabilities: np.ndarray, confidences: np.ndarray,
            features: pd.DataFrame, feature_columns: list[str], model_name: str, model_version: str,
            horizon: str, feature_date: pd.Timestamp, request_id: str | None) -> int:
        """Queue the served predictions not logged before by this process.

        Parameters
        ----------
        symbols, probabilities, confidences : sequences of equal length
            The served rows.
        features : DataFrame
            Features of the date (``symbol`` and the model's ``feature_columns``), recorded with
            each new prediction.

        Returns
        -------
        int
            Rows queued.
        """
        key = (model_name, str(model_version), horizon, pd.Timestamp(feature_date).date())
        with self._lock:
            seen = self._seen.setdefault(key, set())
            new = [i for i, s in enumerate(symbols) if s not in seen]
            if not new:
                return 0
            seen.update(symbols[i] for i in new)
            if len(self._seen) > 10_000:
                self._seen.pop(next(iter(self._seen)))
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
                         "horizon": horizon, "predicted_class": int(p >= 0.5), "probability": p, "confidence": c,
                         "confidence_level": None if c is None else confidence_level(c),
                         "features": json.dumps(by_symbol.get(symbols[i], {}), separators=(",", ":"))})
        self._buffer.append(rows)
        return len(rows)

    # -- writer -------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return sum(len(b) for b in list(self._buffer))

    def flush(self) -> int:
        """Write every buffered batch; on failure keep what was not written.

        Returns
        -------
        int
            Rows written by this call.

        Raises
        ------
        sqlalchemy.exc.SQLAlchemyError
            The database is unreachable (the rows stay buffered).
        """
        done = 0
        with self._flush_lock:
            while self._buffer:
                batch = self._buffer[0]
                try:
                    insert_predictions(self.engine, batch)  # one transaction: all of the batch or none
                except Exception as exc:
                    self.failures += 1
                    self.last_error = f"{exc.__class__.__name__}: database unreachable or write failed"
                    raise
                self._buffer.popleft()
                done += len(batch)
                self.written += len(batch)
            self.last_error = None
        return done

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - retried at the next tick
                log.warning("prediction log: %d rows buffered, write failed (%s)", self.pending,
                            exc.__class__.__name__)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread, try a last flush, spill what is left to disk."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        try:
            self.flush()
        except Exception:  # noqa: BLE001
            self._spill()
        self.engine.dispose()

    def _spill(self) -> None:
        if not self._buffer or self.spill_dir is None:
            if self._buffer:
                log.error("prediction log: %d rows could not be written and no spill folder is set", self.pending)
            return
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"predlog-spill-{time.time_ns()}.jsonl"
        tmp = path.with_name(f".{path.name}.tmp")  # renamed when complete: a spill is read whole or not at all
        with tmp.open("w") as fh:
            for batch in self._buffer:
                fh.write(json.dumps(batch, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        log.error("prediction log: %d unwritten rows saved to %s (written at next start)", self.pending, path)

    def _load_spill(self) -> None:
        if self.spill_dir is None or not self.spill_dir.exists():
            return
        for path in sorted(self.spill_dir.glob("predlog-spill-*.jsonl")):
            for line in path.read_text().splitlines():
                batch = json.loads(line)
                for row in batch:
                    row["served_at"] = datetime.fromisoformat(row["served_at"])
                    row["feature_date"] = pd.Timestamp(row["feature_date"]).date()
                self._buffer.append(batch)
            path.unlink()

    def counts(self) -> dict[str, int]:
        """Rows in ``ml_predictions`` and ``ml_outcomes`` (raises when unreachable)."""
        return prediction_counts(self.engine)

    def stats(self) -> dict[str, Any]:
        """Pending, written, failed flushes and the last error (no URLs or paths)."""
        return {"pending": self.pending, "written": self.written, "failed_flushes": self.failures,
                "last_error": self.last_error}


__all__ = ["PredictionLogger", "confidence_level"]
