"""``ingest``: read -> validate -> adjust -> write, with validation complete before any write."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vfr.data.adjust import adjust_prices
from vfr.data.readers import read_prices, read_universe
from vfr.data.store import MarketStore


@dataclass(frozen=True)
class IngestReport:
    """What :func:`ingest` wrote.

    Attributes
    ----------
    source : str
        The price file or folder read.
    rows : int
        Price rows written (upserted).
    symbols : int
        Distinct symbols among them.
    start, end : pandas.Timestamp
        First and last date among them.
    universe_rows : int or None
        Rows written to the securities table (None when no universe file was given).
    seconds : float
        Wall-clock duration of the whole ingest.
    """

    source: str
    rows: int
    symbols: int
    start: pd.Timestamp
    end: pd.Timestamp
    universe_rows: int | None = None
    seconds: float = 0.0


def ingest(path: str | Path, store: MarketStore,
           universe_path: str | Path | None = None) -> IngestReport:
    """Load a price file/folder (and optionally a constituents csv) into ``store``.

    Every input is read and fully validated, and the prices adjusted, before anything is
    written; a malformed file therefore leaves the store unchanged. The price write is an
    idempotent upsert by (symbol, date) (see :meth:`MarketStore.write_prices`).

    Parameters
    ----------
    path : str or Path
        Anything :func:`vfr.data.read_prices` accepts (Parquet, AlphaVantage or Yahoo csv).
    store : MarketStore
        Destination store.
    universe_path : str or Path, optional
        constituents csv (Symbol, Name, Sector) replacing the ``securities`` table.

    Returns
    -------
    IngestReport

    Raises
    ------
    DataValidationError
        A file is malformed (nothing is written).
    """
    t0 = time.perf_counter()
    raw = read_prices(path)
    universe = read_universe(universe_path) if universe_path is not None else None
    prices = adjust_prices(raw)
    del raw
    rows = store.write_prices(prices)
    universe_rows = store.write_universe(universe) if universe is not None else None
    dates = prices["date"]
    return IngestReport(
        source=str(path), rows=rows, symbols=int(prices["symbol"].nunique()),
        start=dates.min() if rows else pd.NaT, end=dates.max() if rows else pd.NaT,
        universe_rows=universe_rows, seconds=time.perf_counter() - t0)
