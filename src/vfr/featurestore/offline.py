"""Offline feature store on :class:`vfr.data.MarketStore` (DuckDB file by default,
PostgreSQL in production).

Tables (all created on first use):

- ``fs_definitions``: one row per (view, feature, version): description, group, formula
  source, valid range, nullability, registration time. A view whose specs change gets the
  next version; unchanged re-registrations keep theirs.
- ``fs_lineage``: one row per write batch: ``batch_id``, view, definition version, source,
  code version (package version + git commit when available), data fingerprint (SHA-256 of
  the written rows), rows written and rejected, write time.
- ``fs_<view>``: the values: ``symbol, date`` (event date), ``known_at`` (tz-naive UTC time
  the values became known), ``batch_id``, ``quality_score``, ``source_reliability`` and one
  float64 column per feature. Revisions are appended, never overwritten, so history stays reproducible.

Point-in-time retrieval (:meth:`OfflineFeatureStore.get_historical_features`) is an as-of
join on ``known_at``: for an entity row (symbol, event_timestamp) it returns the values of the
latest ``known_at <= event_timestamp`` (among those, the latest event date), never a value
known later. Feast's ``get_historical_features`` has the same contract (see
``docs/feature_store.md``).
"""

from __future__ import annotations

import hashlib
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

import vfr
from vfr.data.store import MarketStore
from vfr.featurestore.validation import (
    FeatureSpec,
    FeatureValidationError,
    ValidationConfig,
    ValidationResult,
    serving_quality,
    validate_vectors,
)

DEFINITIONS_TABLE = "fs_definitions"
LINEAGE_TABLE = "fs_lineage"
MARKET_TZ = "America/New_York"


def close_timestamp(dates: pd.Series | pd.DatetimeIndex, *, tz: str = MARKET_TZ,
                    hour: int = 16) -> pd.Series:
    """UTC (tz-naive) timestamp of the close of each date: ``date hour:00`` in ``tz``.

    Parameters
    ----------
    dates : pandas.Series or DatetimeIndex of datetime64
        Trading days (tz-naive).
    tz : str
        Exchange time zone (default America/New_York, daylight saving handled).
    hour : int
        Close hour in local time (default 16).

    Returns
    -------
    pandas.Series of datetime64[ns], tz-naive UTC
    """
    d = pd.Series(pd.to_datetime(dates)).dt.normalize() + pd.Timedelta(hours=hour)
    return d.dt.tz_localize(tz).dt.tz_convert("UTC").dt.tz_localize(None).astype(
        "datetime64[ns]")


def code_version() -> str:
    """``vfr <version>`` plus the git commit of the source tree when it is a checkout."""
    version = f"vfr {vfr.__version__}"
    try:
        root = Path(vfr.__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
        if out.returncode == 0 and out.stdout.strip():
            version += f" ({out.stdout.strip()})"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def data_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 (hex) of a frame's values, independent of row order and index.

    Uses ``pandas.util.hash_pandas_object`` per row, sorted, then SHA-256 of the bytes plus
    the column names.
    """
    h = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    digest = hashlib.sha256(h.tobytes())
    digest.update("|".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class FeatureView:
    """A named group of features written and read together (Feast: ``FeatureView``).

    Parameters
    ----------
    name : str
        View name (letters, digits, underscore); values live in table ``fs_<name>``.
    specs : sequence of FeatureSpec
        The features with their validation rules.
    descriptions : dict of str to str
        Optional description per feature.
    group : str
        Feature group (e.g. ``technical``, ``sentiment``).
    source : str
        Formula / data source reference.
    ttl : pandas.Timedelta
        Look-back of point-in-time retrieval: values known more than ``ttl`` before the
        requested time are not returned (Feast's view ``ttl``). Default 30 days.
    """

    name: str
    specs: tuple[FeatureSpec, ...]
    descriptions: dict[str, str] = field(default_factory=dict)
    group: str = ""
    source: str = ""
    ttl: pd.Timedelta = pd.Timedelta(days=30)  # noqa: RUF009 - immutable

    @property
    def features(self) -> list[str]:
        """Feature names in order."""
        return [s.name for s in self.specs]

    @property
    def table(self) -> str:
        """Values table name."""
        return f"fs_{self.name}"

    def signature(self) -> str:
        """Hash of everything that defines the view's values (names, ranges, texts)."""
        text = repr([(s.name, s.min, s.max, s.nullable, self.descriptions.get(s.name, ""))
                     for s in self.specs]) + self.group + self.source
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class WriteReport:
    """Result of :meth:`OfflineFeatureStore.write`."""

    batch_id: str
    written: int
    rejected: int
    rejected_counts: dict[str, int]
    validation: ValidationResult


class OfflineFeatureStore:
    """Versioned, point-in-time feature values with lineage in a :class:`MarketStore`.

    Parameters
    ----------
    store : MarketStore
        Backing store (DuckDB or PostgreSQL); not closed by this class.
    validation : dict of str to ValidationConfig, optional
        Extra per-view validation settings (freshness, reliability); by default a view is
        validated with its specs and the :class:`ValidationConfig` defaults.
    cache : bool
        Keep each view read by :meth:`get_historical_features` in process memory (sorted
        numpy arrays; about 8 bytes x (features + 4) per stored vector) and answer by binary
        search. Writes through this instance refresh it at once; writes by other processes
        are seen when the view's lineage count changes, checked at most every
        ``cache_check_s`` seconds. Default False: every call is one SQL query.
    cache_check_s : float
        Minimum seconds between two lineage checks of a cached view (default 1).
    """

    def __init__(self, store: MarketStore, *,
                 validation: dict[str, ValidationConfig] | None = None,
                 cache: bool = False, cache_check_s: float = 1.0) -> None:
        self.store = store
        self.cache = cache
        self.cache_check_s = cache_check_s
        self._cache: dict[str, dict[str, object]] = {}
        self._tables_seen: set[str] = set()
        self._views: dict[str, FeatureView] = {}
        self._versions: dict[str, int] = {}
        self._validation = dict(validation or {})

    # -- definitions -------------------------------------------------------------------
    def register(self, view: FeatureView) -> int:
        """Register a view (or a changed version of it); returns its definition version.

        The stored definitions are the reference: an identical signature keeps the stored
        version, a different one gets ``max(version) + 1``.
        """
        defs = self.definitions()
        mine = defs[defs["view"] == view.name] if len(defs) else defs
        sig = view.signature()
        if len(mine) and (mine["signature"] == sig).any():
            version = int(mine.loc[mine["signature"] == sig, "version"].max())
        else:
            version = int(mine["version"].max()) + 1 if len(mine) else 1
            now = pd.Timestamp.now(tz="UTC").tz_localize(None)
            rows = pd.DataFrame({
                "view": view.name, "feature": view.features, "version": version,
                "signature": sig, "feature_group": view.group,
                "description": [view.descriptions.get(f, "") for f in view.features],
                "source": view.source,
                "min": [np.nan if s.min is None else float(s.min) for s in view.specs],
                "max": [np.nan if s.max is None else float(s.max) for s in view.specs],
                "nullable": [bool(s.nullable) for s in view.specs],
                "ttl_s": float(view.ttl.total_seconds()), "registered_at": now})
            self._append(DEFINITIONS_TABLE, rows)
        self._views[view.name] = view
        self._versions[view.name] = version
        return version

    def definitions(self) -> pd.DataFrame:
        """All registered definitions (every version), empty frame when none."""
        if not self.store.has_table(DEFINITIONS_TABLE):
            return pd.DataFrame(columns=["view", "feature", "version", "signature"])
        return self.store.read_table(DEFINITIONS_TABLE)

    def lineage(self, view: str | None = None) -> pd.DataFrame:
        """Lineage rows (one per write batch), optionally of one view."""
        if not self.store.has_table(LINEAGE_TABLE):
            return pd.DataFrame(columns=["batch_id", "view"])
        lin = self.store.read_table(LINEAGE_TABLE)
        return lin if view is None else lin[lin["view"] == view].reset_index(drop=True)

    def view(self, name: str) -> FeatureView:
        """A registered view (KeyError when unknown)."""
        if name not in self._views:
            raise KeyError(f"feature view {name!r} is not registered")
        return self._views[name]

    def config(self, name: str) -> ValidationConfig:
        """Validation settings of a view (its specs + configured thresholds)."""
        view = self.view(name)
        base = self._validation.get(name)
        if base is None:
            return ValidationConfig(specs=view.specs)
        return ValidationConfig(specs=view.specs, freshness_warning=base.freshness_warning,
                                freshness_critical=base.freshness_critical,
                                min_completeness=base.min_completeness,
                                source_reliability=base.source_reliability,
                                default_reliability=base.default_reliability,
                                market_close=base.market_close)

    # -- write -------------------------------------------------------------------------
    def write(self, name: str, frame: pd.DataFrame, *, source: str,
              known_at: pd.Timestamp | None = None) -> WriteReport:
        """Validate and append feature vectors; invalid vectors are rejected (not stored).

        Parameters
        ----------
        name : str
            Registered view.
        frame : pandas.DataFrame, shape (n, 2 + k [+ 1])
            ``symbol, date`` and the view's features; ``known_at`` (tz-naive UTC) when
            present, else the ``known_at`` argument, else the close of ``date`` (16:00 New
            York, :func:`close_timestamp`).
        source : str
            Where the values come from (lineage and source reliability).
        known_at : pandas.Timestamp, optional
            One ``known_at`` for every row (tz-naive UTC).

        Returns
        -------
        WriteReport

        Raises
        ------
        FeatureValidationError
            Schema errors (missing column, non-numeric feature).
        """
        view = self.view(name)
        data = frame.reset_index(drop=True)
        if "known_at" not in data.columns:
            data["known_at"] = (close_timestamp(data["date"]).to_numpy() if known_at is None
                                else pd.Timestamp(known_at))
        for col in ("date", "known_at"):
            if col in data and pd.api.types.is_datetime64_any_dtype(data[col]):
                data[col] = data[col].astype("datetime64[ns]")
        result = validate_vectors(data, self.config(name), source=source)
        keep = data.loc[result.valid, ["symbol", "date", "known_at", *view.features]]
        keep = keep.sort_values(["known_at", "symbol"], kind="stable")
        quality = result.quality.loc[keep.index]
        keep = keep.astype({f: "float64" for f in view.features}).reset_index(drop=True)
        keep["symbol"] = keep["symbol"].astype(str)
        batch = uuid.uuid4().hex[:16]
        keep.insert(3, "batch_id", batch)
        keep.insert(4, "quality_score", quality["quality_score"].to_numpy(dtype=float))
        keep.insert(5, "source_reliability", quality["source_reliability"].to_numpy(dtype=float))
        if len(keep):
            self._append(view.table, keep)
            self._tables_seen.add(view.table)
        self._cache.pop(name, None)
        lineage = pd.DataFrame({
            "batch_id": [batch], "view": [name],
            "definition_version": [self._versions[name]], "source": [source],
            "code_version": [code_version()],
            "data_fingerprint": [data_fingerprint(keep.drop(columns=["batch_id"]))],
            "n_rows": [len(keep)], "n_rejected": [result.n_rejected],
            "written_at": [pd.Timestamp.now(tz="UTC").tz_localize(None)]})
        self._append(LINEAGE_TABLE, lineage)
        return WriteReport(batch_id=batch, written=len(keep), rejected=result.n_rejected,
                           rejected_counts=result.rejected_counts(), validation=result)

    def _append(self, table: str, rows: pd.DataFrame) -> None:
        """Append rows (same columns as the table) through a staging table, atomically."""
        if not self.store.has_table(table):
            self.store.replace_table(table, rows)
            if self.store.backend == "postgresql" and {"symbol", "known_at"} <= set(rows):
                with self.store.engine.begin() as conn:
                    conn.execute(sa.text(f'CREATE INDEX IF NOT EXISTS "ix_{table}_sk" ON '
                                         f'"{table}" ("symbol", "known_at")'))
            return
        stage = f"{table}_in_{uuid.uuid4().hex[:8]}"
        self.store.replace_table(stage, rows)
        cols = ", ".join(f'"{c}"' for c in rows.columns)
        try:
            with self.store.engine.begin() as conn:
                conn.execute(sa.text(f'INSERT INTO "{table}" ({cols}) SELECT {cols} '
                                     f'FROM "{stage}"'))
        finally:
            with self.store.engine.begin() as conn:
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{stage}"'))

    # -- read --------------------------------------------------------------------------
    def get_historical_features(self, entity_rows: pd.DataFrame, name: str,
                                features: Sequence[str] | None = None, *,
                                validate: bool = True) -> pd.DataFrame:
        """Point-in-time values for (symbol, event_timestamp) rows (as-of join on known_at).

        Parameters
        ----------
        entity_rows : pandas.DataFrame, shape (m, >=2)
            ``symbol`` and ``event_timestamp`` (tz-naive UTC, or tz-aware, converted). To ask
            "as of the close of day D" pass ``close_timestamp(D)``.
        name : str
            Registered view.
        features : sequence of str, optional
            Subset of the view's features (default all).
        validate : bool
            Re-validate the returned vectors at their ``event_timestamp`` (freshness relative
            to the request) and add ``quality_score``/``freshness_status`` of that check.

        Returns
        -------
        pandas.DataFrame, shape (m, ...), in the order of ``entity_rows``
            ``symbol, event_timestamp, date`` (event date of the value), ``known_at``,
            ``stored_quality`` (score at write time), ``source_reliability``, the features,
            and with ``validate`` ``quality_score`` and ``freshness_status``. For each row
            the stored vector with the latest ``known_at <= event_timestamp`` (ties: the
            latest event date) and ``known_at >= event_timestamp - ttl``; NaN/NaT when there
            is none. Never a value whose ``known_at`` is after the row's ``event_timestamp``.

        Notes
        -----
        Three equivalent paths: the instance cache (``cache=True``: numpy binary search over
        the view's (symbol, known_at) order, refreshed when the view's lineage changes);
        PostgreSQL: one ``LATERAL (... ORDER BY known_at DESC, date DESC LIMIT 1)`` per row on
        the ``(symbol, known_at)`` index; DuckDB: one window query (``row_number()`` over the
        candidates of each row).
        """
        view = self.view(name)
        feats = view.features if features is None else list(features)
        unknown = [f for f in feats if f not in view.features]
        if unknown:
            raise KeyError(f"view {name!r} has no features {unknown}")
        ts = pd.to_datetime(entity_rows["event_timestamp"])
        if ts.dt.tz is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        symbols = entity_rows["symbol"].astype(str).to_numpy()
        ts_ns = ts.to_numpy(dtype="datetime64[ns]")
        cols = ["date", "known_at", "stored_quality", "source_reliability", *feats]
        if len(symbols) == 0 or not self._has_table(view.table):
            found = np.zeros(len(symbols), dtype=bool)
            date = known = np.full(len(symbols), np.datetime64("NaT"), dtype="datetime64[ns]")
            mat = np.full((len(symbols), len(cols) - 2), np.nan)
        elif self.cache:
            found, date, known, mat = self._pit_cached(view, feats, symbols, ts_ns)
        else:
            found, date, known, mat = self._pit_sql(view, feats, symbols, ts_ns)
        data: dict[str, object] = {"symbol": symbols, "event_timestamp": ts_ns, "date": date,
                                   "known_at": known}
        for j, c in enumerate(cols[2:]):
            data[c] = mat[:, j]
        if validate:
            cfg = self.config(name)
            specs = {s.name: s for s in cfg.specs}
            cfg = ValidationConfig(specs=[specs[f] for f in feats],
                                   freshness_warning=cfg.freshness_warning,
                                   freshness_critical=cfg.freshness_critical,
                                   default_reliability=cfg.default_reliability)
            score, status = serving_quality(mat[:, 2:], known, mat[:, 1], ts_ns, cfg)
            data["quality_score"] = np.where(found, score, np.nan)
            data["freshness_status"] = np.where(found, status.astype(object), None)
        return pd.DataFrame(data)

    def _pit_sql(self, view: FeatureView, feats: list[str], symbols: np.ndarray,
                 ts_ns: np.ndarray) -> tuple[np.ndarray, ...]:
        """As-of join in the database; returns (found, date, known_at, values matrix)."""
        n = len(symbols)
        vcols = ["quality_score", "source_reliability", *feats]
        sel = ", ".join(f'v."{c}"' for c in ["date", "known_at", *vcols])
        ttl_s = int(view.ttl.total_seconds())
        ts_py = [pd.Timestamp(t).to_pydatetime() for t in ts_ns]
        lo = (pd.Timestamp(ts_ns.min()) - view.ttl).to_pydatetime()
        hi = pd.Timestamp(ts_ns.max()).to_pydatetime()
        fairy = self.store.engine.raw_connection()
        try:
            con = fairy.driver_connection
            if self.store.backend == "duckdb":
                sql = (
                    "WITH req AS (SELECT UNNEST(?::VARCHAR[]) AS symbol, "
                    "UNNEST(?::TIMESTAMP[]) AS ts, UNNEST(?::BIGINT[]) AS row_id) "
                    f"SELECT row_id, {sel.replace('v.', 'c.')} FROM (SELECT req.row_id, v.*, "
                    "row_number() OVER (PARTITION BY req.row_id ORDER BY v.known_at DESC, "
                    "v.date DESC) AS rn FROM req JOIN (SELECT * FROM "
                    f'"{view.table}" WHERE known_at >= ? AND known_at <= ?) v '
                    "ON v.symbol = req.symbol AND v.known_at <= req.ts AND "
                    f"v.known_at >= req.ts - INTERVAL {ttl_s} SECOND) c WHERE rn = 1")
                res = con.execute(sql, [list(symbols), ts_py, list(range(n)), lo, hi]).fetchall()
            else:
                sql = (
                    "SELECT req.row_id, " + sel + " FROM UNNEST(%s::text[], %s::timestamp[], "
                    "%s::bigint[]) AS req(symbol, ts, row_id) CROSS JOIN LATERAL (SELECT * "
                    f'FROM "{view.table}" t WHERE t.symbol = req.symbol AND t.known_at <= '
                    f"req.ts AND t.known_at >= req.ts - interval '{ttl_s} seconds' ORDER BY "
                    "t.known_at DESC, t.date DESC LIMIT 1) v")
                with con.cursor() as cur:
                    cur.execute(sql, [list(symbols), ts_py, list(range(n))])
                    res = cur.fetchall()
                con.rollback()
        finally:
            fairy.close()
        found = np.zeros(n, dtype=bool)
        date = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        known = date.copy()
        mat = np.full((n, len(vcols)), np.nan)
        for r in res:
            i = int(r[0])
            found[i] = True
            date[i] = np.datetime64(pd.Timestamp(r[1]).value, "ns")
            known[i] = np.datetime64(pd.Timestamp(r[2]).value, "ns")
            mat[i] = [np.nan if v is None else float(v) for v in r[3:]]
        return found, date, known, mat

    def _pit_cached(self, view: FeatureView, feats: list[str], symbols: np.ndarray,
                    ts_ns: np.ndarray) -> tuple[np.ndarray, ...]:
        """As-of join by binary search in the instance cache of the view."""
        cache = self._load_cache(view)
        vcols = ["quality_score", "source_reliability", *feats]
        col_idx = [cache["columns"].index(c) for c in vcols]
        n = len(symbols)
        rows = np.full(n, -1, dtype=np.int64)
        known_all = cache["known_at"]
        ttl_ns = np.int64(view.ttl.value)
        tsi = ts_ns.astype("int64")
        for i, sym in enumerate(symbols):
            span = cache["slices"].get(sym)
            if span is None or np.isnat(ts_ns[i]):
                continue
            s, e = span
            j = s + int(np.searchsorted(known_all[s:e], tsi[i], side="right")) - 1
            if j >= s and known_all[j] >= tsi[i] - ttl_ns:
                rows[i] = j
        found = rows >= 0
        date = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        known = date.copy()
        mat = np.full((n, len(vcols)), np.nan)
        take = rows[found]
        date[found] = cache["date"][take].astype("datetime64[ns]")
        known[found] = known_all[take].astype("datetime64[ns]")
        mat[found] = cache["values"][np.ix_(take, col_idx)]
        return found, date, known, mat

    def _has_table(self, table: str) -> bool:
        """Whether a table exists (remembered once seen: the store never drops them)."""
        if table in self._tables_seen:
            return True
        if self.store.has_table(table):
            self._tables_seen.add(table)
            return True
        return False

    def _load_cache(self, view: FeatureView) -> dict[str, object]:
        """The view's values sorted by (symbol, known_at, date); reloaded on new batches."""
        cached = self._cache.get(view.name)
        now = time.monotonic()
        if cached is not None and now - float(cached["checked"]) < self.cache_check_s:
            return cached
        batches = self._batch_count(view.name)
        if cached is not None and cached["batches"] == batches:
            cached["checked"] = now
            return cached
        cols = ["quality_score", "source_reliability", *view.features]
        frame = self.store.read_table(view.table, ["symbol", "date", "known_at", *cols])
        frame = frame.sort_values(["symbol", "known_at", "date"], kind="stable")
        sym = frame["symbol"].astype(str).to_numpy()
        starts = np.flatnonzero(np.r_[True, sym[1:] != sym[:-1]]) if len(sym) else np.array([])
        ends = np.r_[starts[1:], len(sym)] if len(sym) else np.array([])
        cached = {
            "batches": batches, "checked": now, "columns": cols,
            "slices": {sym[s]: (int(s), int(e)) for s, e in zip(starts, ends, strict=True)},
            "known_at": frame["known_at"].to_numpy(dtype="datetime64[ns]").astype("int64"),
            "date": frame["date"].to_numpy(dtype="datetime64[ns]").astype("int64"),
            "values": frame[cols].to_numpy(dtype=float, na_value=np.nan)}
        self._cache[view.name] = cached
        return cached

    def _batch_count(self, name: str) -> int:
        """Number of lineage rows (write batches) of a view: the cache's version stamp."""
        if not self.store.has_table(LINEAGE_TABLE):
            return 0
        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.text(
                f'SELECT COUNT(*) FROM "{LINEAGE_TABLE}" WHERE "view" = :v'), {"v": name}
            ).scalar_one())


__all__ = ["FeatureSpec", "FeatureValidationError", "FeatureView", "OfflineFeatureStore",
           "WriteReport", "close_timestamp", "code_version", "data_fingerprint"]
