"""``ingest``: read -> validate -> adjust -> write, with validation complete before any write."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vfr.data import tables
from vfr.data.adjust import adjust_prices
from vfr.data.readers import read_prices, read_universe, symbols_from_file_names
from vfr.data.store import MarketStore
from vfr.data.universe import (
    PIT_SOURCES,
    Membership,
    has_membership_columns,
    is_pit_source,
    membership_mask,
    read_membership_csv,
    sp500_membership,
)
from vfr.errors import DataValidationError


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
    membership : Membership or None
        The point-in-time universe written (None: unchanged, or a static list was given).
    outside_universe : int or None
        Price rows of this ingest whose (symbol, date) lies outside the point-in-time universe
        (kept in the store for features; left out of training, evaluation, selection and
        backtests). None without a point-in-time universe.
    warnings : tuple of str
        One-line warnings about the ingest (e.g. symbols taken from csv file names with no
        universe given to check them), printed by ``vfr data ingest``.
    """

    source: str
    rows: int
    symbols: int
    start: pd.Timestamp
    end: pd.Timestamp
    universe_rows: int | None = None
    seconds: float = 0.0
    membership: Membership | None = None
    outside_universe: int | None = None
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = (f"ingested {self.rows:,} price rows of {self.symbols} symbols "
                f"({_day(self.start)} .. {_day(self.end)}) from {self.source} in {self.seconds:.1f} s")
        if self.universe_rows is not None:
            text += f"; universe list: {self.universe_rows} symbols"
        m = self.membership
        if m is not None:
            text += (f"; point-in-time universe {m.source}: {len(m.intervals)} membership intervals, "
                     f"{self.outside_universe:,} price rows outside it")
            if m.resolved:
                text += f"; renamed: {', '.join(f'{a}->{b}' for a, b in sorted(m.resolved.items()))}"
            if m.unmatched:
                text += f"; never members (not in the source): {', '.join(m.unmatched)}"
        elif self.universe_rows is not None:
            text += " (static: every symbol a member on every date)"
        return text


def _day(ts: pd.Timestamp) -> str:
    return "n/a" if pd.isna(ts) else str(pd.Timestamp(ts).date())


def _check_file_symbols(path: str | Path, listed: dict[str, set[str]]) -> None:
    """Refuse a csv whose file-name symbol is in none of the universe files given (a misnamed file)."""
    if not listed:
        return
    known = set().union(*listed.values())
    for symbol, file in sorted(symbols_from_file_names(path).items()):
        if symbol not in known:
            raise DataValidationError(
                f"symbol {symbol!r} is taken from the file name (a csv has no symbol column) and is not in the "
                f"universe ({', '.join(listed)}); rename the file to the ticker its rows belong to, or add "
                f"{symbol!r} to the universe", source=str(file), column="symbol")


def _unchecked_file_symbols(path: str | Path, listed: dict[str, set[str]]) -> tuple[str, ...]:
    """A one-line warning when csv file names are trusted as symbols with no universe list to check them."""
    from_names = symbols_from_file_names(path)
    if listed or not from_names:
        return ()
    names = sorted(from_names)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (f"{len(names)} symbol(s) ({shown}) are taken from csv file names, unchecked: no universe list was "
            "given, so a misnamed file is stored under the wrong ticker; pass --universe to check them",)


def ingest(path: str | Path, store: MarketStore,
           universe_path: str | Path | Sequence[str | Path] | None = None) -> IngestReport:
    """Load a price file/folder (and optionally the universe) into ``store``.

    Every input is read and fully validated, and the prices adjusted, before anything is
    written; a malformed file therefore leaves the store unchanged. The price write is an
    idempotent upsert by (symbol, date) (see :meth:`MarketStore.write_prices`).

    Parameters
    ----------
    path : str or Path
        Anything :func:`vfr.data.read_prices` accepts (Parquet, AlphaVantage or Yahoo csv).
    store : MarketStore
        Destination store.
    universe_path : str, Path or a sequence of them, optional
        Each is one of: a constituents csv (Symbol, Name, Sector) replacing the ``securities``
        table, a *static* list (every symbol a member on every date) unless a point-in-time
        source is also given; a csv with ``symbol, start_date, end_date`` (a point-in-time
        list of the user's own); or a built-in point-in-time source such as
        ``index-constitution:sp500`` (:mod:`vfr.data.universe`). A point-in-time universe
        replaces the ``universe_membership`` table; a static list alone drops it.

    Returns
    -------
    IngestReport

    Raises
    ------
    DataValidationError
        A file is malformed, a universe spec is unknown, or a csv's symbol, taken from its
        file name (csv files have no symbol column), is not in the universe list or
        membership csv given: a misnamed file (``GARB.csv`` holding IBM's rows) is refused
        rather than stored under the wrong ticker (nothing is written).
    """
    t0 = time.perf_counter()
    specs: list[str | Path] = ([] if universe_path is None else
                               [universe_path] if isinstance(universe_path, str | Path) else list(universe_path))
    raw = read_prices(path)
    universe, membership = None, None
    listed: dict[str, set[str]] = {}  # universe file -> its symbols
    for spec in specs:
        if is_pit_source(spec):
            membership = sp500_membership(raw["symbol"].unique(), index=PIT_SOURCES[str(spec).strip().lower()])
        elif not Path(spec).exists():
            raise DataValidationError(f"universe {str(spec)!r} is neither a file nor a known point-in-time "
                                      f"source ({', '.join(PIT_SOURCES)})")
        elif has_membership_columns(spec):
            membership = Membership(intervals=read_membership_csv(spec), source=str(spec))
            listed[str(spec)] = set(membership.intervals["symbol"].astype(str))
        else:
            universe = read_universe(spec)
            listed[str(spec)] = set(universe["symbol"])
    _check_file_symbols(path, listed)
    warnings = _unchecked_file_symbols(path, listed)
    prices = adjust_prices(raw)
    del raw
    outside = None
    if membership is not None:
        outside = int((~membership_mask(prices["symbol"].to_numpy(), prices["date"].to_numpy(),
                                        membership.intervals)).sum())
    rows = store.write_prices(prices)
    universe_rows = store.write_universe(universe) if universe is not None else None
    if membership is not None:
        store.write_membership(membership.intervals)
    elif universe is not None:
        store.drop_table(tables.MEMBERSHIP)  # a static list alone: every symbol, every date
    dates = prices["date"]
    return IngestReport(
        source=str(path), rows=rows, symbols=int(prices["symbol"].nunique()),
        start=dates.min() if rows else pd.NaT, end=dates.max() if rows else pd.NaT,
        universe_rows=universe_rows, seconds=time.perf_counter() - t0, membership=membership,
        outside_universe=outside, warnings=warnings)
