"""Reading the market store for serving: features and the universe of a date, with caching."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from vfr.config import Settings
from vfr.data import MarketStore, tables
from vfr.errors import StageError
from vfr.serving.cache import SingleFlight, TTLCache
from vfr.serving.errors import MLUnavailable, NotFound, StoreUnavailable, is_store_down

#: Table of the features the models and the classic scores read.
FEATURES_TABLE = tables.FEATURES
#: How often (seconds) the reader looks for a newer snapshot of an embedded store.
SNAPSHOT_CHECK_S = 2.0
T = TypeVar("T")


class FeatureService:
    """Features, universe and other tables of the market store, read through one cache.

    Features of a date, the latest date and the universe are cached for
    ``settings.feature_cache_ttl_s`` (in Redis when ``cache_url`` is set, else in memory).

    Parameters
    ----------
    settings : Settings
        ``resolved_store_url`` and ``feature_cache_ttl_s``.
    cache : TTLCache
        Shared with the other services (predictions are cached there too).
    flight : SingleFlight, optional
        Cache misses are computed once however many requests ask at the same time (a date's
        features, the latest date, the universe); shared with the other services.
    """

    def __init__(self, settings: Settings, cache: TTLCache, flight: SingleFlight | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.flight = flight or SingleFlight()
        self._store: MarketStore | None = None
        self._retired: list[MarketStore] = []
        self._checked = 0.0
        self._lock = threading.Lock()

    @property
    def store(self) -> MarketStore:
        """The market store, opened on first use as a reader (:meth:`MarketStore.reader`: the
        latest read-only snapshot of an embedded DuckDB store, so writers are never locked out).

        Every ``SNAPSHOT_CHECK_S`` seconds the snapshot pointer is re-read; when a writer has
        published a newer one, the service switches to it and drops its cached latest date and
        universe (the snapshot it leaves is closed at the next switch, after its last reads).
        """
        now = time.monotonic()
        if self._store is None or (self._store.snapshot is not None and now - self._checked > SNAPSHOT_CHECK_S):
            with self._lock:
                if self._store is None:
                    url = self.settings.resolved_store_url
                    kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 3}} \
                        if url.startswith("postgresql") else {}
                    self._store = MarketStore.reader(url, **kwargs)
                elif now - self._checked > SNAPSHOT_CHECK_S and self._store.snapshot_is_stale():
                    for old in self._retired:
                        old.close()
                    self._retired = [self._store]
                    self._store = MarketStore.reader(self.settings.resolved_store_url)
                    self.cache.invalidate("latest")
                    self.cache.invalidate("universe")
                self._checked = now
        return self._store

    def close(self) -> None:
        """Release the store."""
        for old in self._retired:
            old.close()
        if self._store is not None:
            self._store.close()

    def read(self, fn: Callable[[MarketStore], T]) -> T:
        """``fn(store)``; a failure to reach the store becomes :class:`StoreUnavailable`.

        Raises
        ------
        StoreUnavailable
            The store is unreachable (answered 503).
        """
        try:
            return fn(self.store)
        except (NotFound, MLUnavailable):
            raise
        except StageError as exc:  # no store file yet: nothing to serve
            raise NotFound(str(exc)) from exc
        except Exception as exc:
            if is_store_down(exc):
                raise StoreUnavailable("the market store is not reachable; try again later") from exc
            raise

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the market store answers ``SELECT 1``."""
        def q(store: MarketStore) -> None:
            with store.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1").scalar()
        self.read(q)

    def latest_date(self) -> pd.Timestamp:
        """Latest date of the features table (cached with the features).

        Raises
        ------
        NotFound
            The store has no features.
        """
        self.read(lambda s: None)  # switches to a newer snapshot (dropping this cached date) when one was published
        cached = self.cache.get("latest")
        if cached is not None:
            return pd.Timestamp(cached)
        return self.flight.do("latest", self._read_latest)

    def _read_latest(self) -> pd.Timestamp:
        cached = self.cache.get("latest")  # another caller may have read it just before this one
        if cached is not None:
            return pd.Timestamp(cached)

        def q(store: MarketStore):
            if not store.has_table(FEATURES_TABLE):
                raise NotFound("the store has no features; run `vfr features build` first")
            with store.engine.connect() as conn:
                return conn.exec_driver_sql(f"SELECT MAX(date) FROM {FEATURES_TABLE}").scalar()

        value = self.read(q)
        if value is None:
            raise NotFound("the store has no features; run `vfr features build` first")
        day = pd.Timestamp(value).normalize()
        self.cache.set("latest", day, self.settings.feature_cache_ttl_s)
        return day

    def day(self, date: Any) -> pd.Timestamp:
        """``date`` as a timestamp, or the latest feature date when None."""
        return pd.Timestamp(date) if date is not None else self.latest_date()

    def features_for(self, day: pd.Timestamp) -> pd.DataFrame:
        """Features of every symbol on ``day`` (cached).

        Raises
        ------
        NotFound
            No features on ``day`` (the message names the latest date there is).
        """
        key = f"feat:{day:%Y-%m-%d}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        return self.flight.do(key, lambda: self._read_features(key, day))

    def _read_features(self, key: str, day: pd.Timestamp) -> pd.DataFrame:
        cached = self.cache.get(key)
        if cached is not None:
            return cached

        def q(store: MarketStore):
            if not store.has_table(FEATURES_TABLE):
                raise NotFound("the store has no features; run `vfr features build` first")
            return store.read_table(FEATURES_TABLE, start=day, end=day)

        frame = self.read(q)
        if frame.empty:
            raise NotFound(f"no features on {day.date()} (latest available: {self.latest_date().date()})")
        self.cache.set(key, frame, self.settings.feature_cache_ttl_s)
        return frame

    def universe(self) -> pd.DataFrame | None:
        """The ``securities`` table (symbol, name, sector), or None when absent (cached)."""
        self.read(lambda s: None)
        cached = self.cache.get("universe")
        if cached is not None:
            return cached["u"]

        def load() -> pd.DataFrame | None:
            again = self.cache.get("universe")
            if again is not None:
                return again["u"]
            frame = self.read(lambda s: s.read_universe() if s.has_table("securities") else None)
            self.cache.set("universe", {"u": frame}, self.settings.feature_cache_ttl_s)
            return frame

        return self.flight.do("universe", load)

    def table(self, name: str) -> pd.DataFrame | None:
        """A whole table of the store (not cached), or None when it does not exist."""
        return self.read(lambda s: s.read_table(name) if s.has_table(name) else None)

    def table_summary(self) -> tuple[dict[str, int], dict[str, str | None]]:
        """Rows per table of the store and each dated table's latest date (ISO)."""
        def q(store: MarketStore):
            counts = store.table_counts()
            fresh = {}
            with store.engine.connect() as conn:
                for table in counts:
                    if "date" in store._columns(table):
                        value = conn.exec_driver_sql(f'SELECT MAX("date") FROM "{table}"').scalar()
                        fresh[table] = pd.Timestamp(value).date().isoformat() if value is not None else None
            return counts, fresh

        return self.read(q)

    def read_prices(self, start: pd.Timestamp) -> pd.DataFrame:
        """Adjusted closes of every symbol from ``start`` on (``symbol``, ``date``, ``close``)."""
        return self.read(lambda s: s.read_prices(columns=["close"], start=start))
