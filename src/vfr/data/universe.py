"""Point-in-time index membership: which stocks were in the universe on each date.

A backtest or a training set built from today's index list is survivorship-biased: names that
joined the index later (often after rising) sit in the universe years before they joined, and
names that left are missing. VFR therefore keeps a *membership* table of intervals
``[start_date, end_date)`` per symbol: a stock is a member on date ``d`` when
``start_date <= d < end_date`` (``end_date`` missing = still a member), the rule of
``index_constitution.constituents_at``. Features may use any stock's history; training rows,
evaluation, selection and backtests use only the (symbol, date) rows of members
(:func:`membership_mask`).

Sources
-------
- ``index-constitution:sp500``: S&P 500 membership history from the MIT-licensed PyPI package
  ``index-constitution`` (additions and removals since 1957, compiled from S&P's announcements
  as listed on Wikipedia; see docs/decisions.md). Its tickers are today's: a symbol of the price
  data that was renamed since is resolved through the package's ticker-change events and, for
  renames it does not list, :data:`TICKER_ALIASES`. A symbol found nowhere has no interval: it
  is never a member, and :func:`sp500_membership` names it.
- A CSV file with ``symbol, start_date, end_date`` columns (any source of the user's own).
- A static list (a constituents CSV without dates): no membership table; every stored symbol is
  a member on every date (the survivorship-biased default of earlier versions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vfr.errors import DataValidationError

#: Columns of the canonical membership frame.
MEMBERSHIP_COLUMNS: tuple[str, ...] = ("symbol", "start_date", "end_date")
#: Universe specs naming a point-in-time source instead of a file.
PIT_SOURCES: dict[str, str] = {"index-constitution:sp500": "sp500"}
#: Renames of the price data's 2021 tickers that ``index-constitution``'s event table does not
#: list, checked by company name against its history table (ticker then -> ticker there).
TICKER_ALIASES: dict[str, str] = {
    "ABC": "COR",    # AmerisourceBergen -> Cencora (2023)
    "BLL": "BALL",   # Ball Corporation (2022)
    "LB": "BBWI",    # L Brands -> Bath & Body Works (2021)
    "MMC": "MRSH",   # Marsh & McLennan (ticker as the package lists it)
    "NLOK": "GEN",   # NortonLifeLock -> Gen Digital (2022)
    "PEAK": "DOC",   # Healthpeak Properties (2024)
    "PKI": "RVTY",   # PerkinElmer -> Revvity (2023)
}


@dataclass(frozen=True)
class Membership:
    """Membership intervals and how the source's tickers were matched.

    Attributes
    ----------
    intervals : DataFrame of shape (n_intervals, 3)
        ``symbol`` (the price data's ticker), ``start_date``, ``end_date`` (datetime64[ns];
        NaT = still a member), sorted by symbol, start_date.
    source : str
        The spec it came from.
    resolved : dict of str to str
        Symbol -> the source's ticker, for symbols matched under another ticker.
    unmatched : tuple of str
        Symbols the source has no record of (never members).
    """

    intervals: pd.DataFrame
    source: str
    resolved: dict[str, str] = field(default_factory=dict)
    unmatched: tuple[str, ...] = ()


def is_pit_source(spec: str | Path) -> bool:
    """True when ``spec`` names a built-in point-in-time source (e.g. ``index-constitution:sp500``)."""
    return str(spec).strip().lower() in PIT_SOURCES


def sp500_membership(symbols: Iterable[str], *, index: str = "sp500") -> Membership:
    """S&P 500 membership intervals of ``symbols`` from the ``index-constitution`` package.

    Parameters
    ----------
    symbols : iterable of str
        Tickers of the price data (e.g. the 2021 tickers of the development set).
    index : str
        The package's index name (default ``sp500``).

    Returns
    -------
    Membership
        One interval per membership spell (a stock that left and re-joined has two).

    Raises
    ------
    DataValidationError
        If the package is not installed (it is a core dependency of VFR).
    """
    try:
        import index_constitution as ic
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DataValidationError("the point-in-time universe needs the index-constitution package "
                                  "(pip install index-constitution)") from exc
    history = ic.history(index)
    known = set(history["symbol"].astype(str))
    changes = ic.events(index)
    changes = changes[changes["event_type"] == "ticker_change"].sort_values("event_date", kind="stable")
    renamed = dict(zip(changes["old_symbol"].astype(str), changes["new_symbol"].astype(str), strict=True))
    resolved: dict[str, str] = {}
    unmatched: list[str] = []
    rows = []
    for sym in sorted(set(map(str, symbols))):
        target, seen = sym, set()
        while target not in known and target not in seen:
            seen.add(target)
            target = renamed.get(target, TICKER_ALIASES.get(target, target))
        if target not in known:
            unmatched.append(sym)
            continue
        if target != sym:
            resolved[sym] = target
        spells = history[history["symbol"] == target]
        for start, end in zip(spells["opt-in"], spells["opt-out"], strict=True):
            rows.append((sym, pd.Timestamp(start), pd.Timestamp(end) if pd.notna(end) else pd.NaT))
    frame = pd.DataFrame(rows, columns=list(MEMBERSHIP_COLUMNS))
    return Membership(intervals=clean_membership(frame, source=f"index-constitution:{index}"),
                      source=f"index-constitution:{index}", resolved=resolved, unmatched=tuple(unmatched))


def clean_membership(frame: pd.DataFrame, *, source: str = "membership") -> pd.DataFrame:
    """Validate membership intervals into the canonical frame.

    Parameters
    ----------
    frame : DataFrame
        ``symbol``, ``start_date`` and ``end_date`` (missing end = still a member).
    source : str
        Named in error messages.

    Returns
    -------
    DataFrame of shape (n_intervals, 3)
        :data:`MEMBERSHIP_COLUMNS`, dates as datetime64[ns], sorted by symbol, start_date.

    Raises
    ------
    DataValidationError
        A column is missing, a symbol or start date is missing or unparseable, or an interval
        ends on or before it starts (the 1-based row is named).
    """
    missing = [c for c in MEMBERSHIP_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(f"membership lacks column(s) {missing}", source=source,
                                  column=", ".join(missing))
    out = pd.DataFrame({"symbol": frame["symbol"].astype("str").str.strip().to_numpy()})
    for col in ("start_date", "end_date"):
        out[col] = pd.to_datetime(frame[col].to_numpy(), errors="coerce").astype("datetime64[ns]")
        bad = frame[col].notna().to_numpy() & out[col].isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataValidationError(f"not a date: {frame[col].iloc[i]!r}", source=source, row=i + 1, column=col)
    for col in ("symbol", "start_date"):
        empty = (out[col].isna() | (out[col].astype(str).isin(["", "nan", "None"]))).to_numpy()
        if empty.any():
            raise DataValidationError("missing value", source=source, row=int(np.flatnonzero(empty)[0]) + 1,
                                      column=col)
    backwards = (out["end_date"].notna() & (out["end_date"] <= out["start_date"])).to_numpy()
    if backwards.any():
        i = int(np.flatnonzero(backwards)[0])
        raise DataValidationError(f"interval ends on or before it starts ({out['start_date'].iloc[i].date()} .. "
                                  f"{out['end_date'].iloc[i].date()})", source=source, row=i + 1, column="end_date")
    return out.sort_values(["symbol", "start_date"], kind="stable").reset_index(drop=True)


def read_membership_csv(path: str | Path) -> pd.DataFrame:
    """Membership intervals from a CSV with ``symbol, start_date, end_date`` columns (case-insensitive).

    Raises
    ------
    DataValidationError
        As :func:`clean_membership`, naming the file.
    """
    path = Path(path)
    frame = pd.read_csv(path, dtype=str)
    frame.columns = [c.strip().lower() for c in frame.columns]
    return clean_membership(frame, source=str(path))


def has_membership_columns(path: str | Path) -> bool:
    """True when a CSV's header has ``start_date`` (a point-in-time list, not a static one)."""
    header = pd.read_csv(path, nrows=0).columns
    return "start_date" in {c.strip().lower() for c in header}


def membership_mask(symbols: np.ndarray | pd.Series, dates: np.ndarray | pd.Series,
                    membership: pd.DataFrame | None) -> np.ndarray:
    """Whether each (symbol, date) row was a member of the universe on its date.

    Parameters
    ----------
    symbols, dates : array-like of shape (n_rows,)
        Row keys (dates tz-naive datetime64).
    membership : DataFrame or None
        Canonical intervals (:func:`clean_membership`); ``None`` = a static universe (every
        row is a member).

    Returns
    -------
    ndarray of bool, shape (n_rows,)
        True where some interval of the symbol has ``start_date <= date < end_date``.
    """
    symbols = np.asarray(symbols, dtype=object)
    n = len(symbols)
    if membership is None:
        return np.ones(n, dtype=bool)
    days = np.asarray(pd.to_datetime(dates), dtype="datetime64[ns]")
    mask = np.zeros(n, dtype=bool)
    if n == 0 or membership.empty:
        return mask
    ends = membership["end_date"].fillna(pd.Timestamp.max).to_numpy("datetime64[ns]")
    starts = membership["start_date"].to_numpy("datetime64[ns]")
    codes, uniques = pd.factorize(pd.Series(symbols, dtype=object))
    where = {s: i for i, s in enumerate(uniques)}
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    for sym, start, end in zip(membership["symbol"].to_numpy(), starts, ends, strict=True):
        k = where.get(sym)
        if k is None:
            continue
        rows = order[bounds[k]:bounds[k + 1]]
        mask[rows] |= (days[rows] >= start) & (days[rows] < end)
    return mask
