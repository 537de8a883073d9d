"""Point-in-time helpers shared by the fundamental, macro and alternative builders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr.errors import DataValidationError


def price_keys(prices: pd.DataFrame) -> pd.DataFrame:
    """``symbol, date`` of a prices frame, sorted by (symbol, date), with a RangeIndex.

    Raises
    ------
    DataValidationError
        If ``symbol`` or ``date`` is missing.
    """
    for col in ("symbol", "date"):
        if col not in prices.columns:
            raise DataValidationError("prices frame lacks a required column", column=col)
    return prices.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def asof_join(left: pd.DataFrame, right: pd.DataFrame, *, right_on: str,
              columns: list[str], by: str | None = "symbol",
              tolerance: pd.Timedelta | None = None) -> pd.DataFrame:
    """For every row of ``left``, the latest row of ``right`` with ``right_on <= left.date``.

    A thin wrapper of :func:`pandas.merge_asof` (``direction="backward"``): the key of
    ``right`` must be the *publication* (availability) date, so a row is never seen before
    it was published.

    Parameters
    ----------
    left : pandas.DataFrame
        ``date`` (and ``by``) columns; any row order.
    right : pandas.DataFrame
        ``right_on`` (datetime64[ns], availability date), ``by`` and ``columns``.
    right_on : str
        Availability-date column of ``right``.
    columns : list of str
        Columns of ``right`` to bring over.
    by : str or None
        Exact-match key (``"symbol"``), or ``None`` for a market-wide series.
    tolerance : pandas.Timedelta, optional
        Rows older than this are not matched (NaN): stale values are missing.

    Returns
    -------
    pandas.DataFrame, shape (len(left), len(columns))
        Aligned with ``left`` row by row (same index order).
    """
    keys = ["date"] + ([by] if by else [])
    lf = left[keys].copy()
    lf["_row"] = np.arange(len(lf))
    lf["date"] = lf["date"].astype("datetime64[ns]")
    lf = lf.sort_values("date", kind="stable")
    cols = [right_on] + ([by] if by else []) + columns
    rf = right[cols].dropna(subset=[right_on]).sort_values(right_on, kind="stable")
    rf = rf.rename(columns={right_on: "_avail"})
    rf["_avail"] = rf["_avail"].astype("datetime64[ns]")
    if by:
        # integer codes of one shared factorisation: same dtype on both sides, and fast
        lf[by], rf[by] = shared_codes(lf[by], rf[by])
    merged = pd.merge_asof(lf, rf, left_on="date", right_on="_avail", by=by,
                           direction="backward", allow_exact_matches=True,
                           tolerance=tolerance)
    merged = merged.sort_values("_row", kind="stable")
    out = merged[columns].reset_index(drop=True)
    out.index = left.index
    return out


def group_bounds(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) row of each run of equal symbols in a sorted array."""
    n = len(symbols)
    new = np.ones(n, dtype=bool)
    if n:
        new[1:] = symbols[1:] != symbols[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    return starts, ends


def trailing_window_start(codes: np.ndarray, days: np.ndarray, span_days: int) -> np.ndarray:
    """Index of the first row of the same group with ``days > days[i] - span_days``.

    ``codes`` (int group codes) and ``days`` (int day numbers) must be sorted by (code, day).
    """
    key = codes.astype(np.int64) * (1 << 32) + days.astype(np.int64)
    return np.searchsorted(key, key - span_days, side="right")


def shared_codes(left: pd.Series, right: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of two key columns under one factorisation (``right`` values absent
    from ``left`` get -1, which matches no ``left`` row)."""
    codes, uniques = pd.factorize(left.to_numpy())
    lookup = pd.Index(uniques)
    return codes.astype(np.int64), lookup.get_indexer(right.to_numpy()).astype(np.int64)
