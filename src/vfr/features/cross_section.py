"""The features frame: per-symbol technical features plus cross-sectional ranks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from vfr.data.store import is_sorted_by
from vfr.data.universe import membership_mask
from vfr.errors import DataValidationError
from vfr.features.definitions import FEATURES
from vfr.features.technical import check_columns, feature_matrix

_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def rank_matrix(values: np.ndarray, groups: np.ndarray, *,
                out: np.ndarray | None = None) -> np.ndarray:
    """Percentile rank (ties averaged) of each column of ``values`` within ``groups``.

    Rows are ordered by group once; then each column is ordered inside the groups with
    one ``argsort`` of a packed int64 key ``group << 32 | u32(value)``, where ``u32`` is
    the order-preserving unsigned image of an IEEE-754 float32. This is several times
    faster than ``DataFrame.groupby(...).rank`` on the full S&P 500 set and needs only
    a few 1-D work arrays.

    Parameters
    ----------
    values : numpy.ndarray, shape (n, k)
        Values to rank (read as float32; NaN allowed and left out). Column-major
        (``order="F"``) input is fastest.
    groups : numpy.ndarray, shape (n,)
        Non-negative integer group codes (e.g. factorized dates), below 2**31.
    out : numpy.ndarray, shape (n, k), float32, optional
        Where to write the ranks (e.g. a view into a larger column-major block).

    Returns
    -------
    numpy.ndarray, shape (n, k), float32
        ``(average 1-based rank among the group's non-NaN values) / (their count)``,
        in (0, 1]; NaN where the value is NaN. ``out`` when given.
    """
    n, k = values.shape
    if out is None:
        out = np.empty((n, k), dtype=np.float32, order="F")
    out[...] = np.nan
    if n == 0 or k == 0:
        return out
    perm = np.argsort(groups, kind="stable")
    gkey = groups[perm].astype(np.int64) << 32
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    new_group[1:] = gkey[1:] != gkey[:-1]
    group_start = np.flatnonzero(new_group)
    row_group = np.cumsum(new_group) - 1
    row_group_start = group_start[row_group]
    nan_image, sign_bit = np.uint32(0xFFFFFFFF), np.uint32(0x80000000)
    for j in range(k):
        x = np.asarray(values[:, j], dtype=np.float32)[perm] + np.float32(0.0)  # -0.0 ties +0.0
        nan = np.isnan(x)
        # flip every bit of a negative float, only the sign bit of a positive one
        image = x.view(np.uint32) ^ ((x.view(np.int32) >> 31).view(np.uint32) | sign_bit)
        image[nan] = nan_image  # NaN sorts last inside its group
        key = gkey | image
        order = np.argsort(key)  # stays inside each group's block (gkey is sorted)
        ks = key[order]
        new_run = np.empty(n, dtype=bool)
        new_run[0] = True
        new_run[1:] = ks[1:] != ks[:-1]
        run_start = np.flatnonzero(new_run)
        run_end = np.append(run_start[1:], n)  # exclusive
        # average 1-based position of each tie run inside its group
        run_rank = (run_start + 1 + run_end) / 2.0 - row_group_start[run_start]
        count = np.add.reduceat((~nan).astype(np.int64), group_start)
        with np.errstate(divide="ignore", invalid="ignore"):  # all-NaN groups: masked below
            r = run_rank[np.cumsum(new_run) - 1] / count[row_group]
        r[(ks & 0xFFFFFFFF) == 0xFFFFFFFF] = np.nan
        column = out[:, j]
        column[perm[order]] = r
    return out


def build_features(prices: pd.DataFrame, *,
                   progress: Callable[[int], object] | None = None,
                   membership: pd.DataFrame | None = None) -> pd.DataFrame:
    """Build the canonical features frame from the canonical prices frame.

    The features of a symbol depend only on its own prices; the ranks only on the rows of
    their date. Both are computed in one pass without copying.

    Parameters
    ----------
    prices : pandas.DataFrame, shape (n, >=7)
        Canonical *prices* frame (adjusted OHLCV; ``symbol, date, open, high, low, close,
        volume`` needed, other columns ignored), sorted by ``symbol, date`` (sorted here
        if not).
    progress : callable, optional
        ``progress(advance)`` is called with ``advance=1`` once per symbol, after its
        features are computed (e.g. to drive a Rich progress bar).
    membership : pandas.DataFrame, optional
        Point-in-time universe intervals (:mod:`vfr.data.universe`). When given, a member's
        rank on a date is among that date's members only (a stock that joined the index later
        does not shift it); rows of non-members are kept, ranked among the non-members of
        their date, for the caller to drop.

    Returns
    -------
    pandas.DataFrame, shape (n, 2 + 2 * len(FEATURES))
        ``symbol, date``, one float32 column per feature of :data:`FEATURES` (computed per
        symbol by :func:`vfr.features.technical.feature_matrix`), then ``<name>_rank`` for
        each (float32, cross-sectional percentile rank per date in (0, 1]). Sorted by
        ``symbol, date`` with a ``RangeIndex``.

    Raises
    ------
    DataValidationError
        If a required column is missing or a (symbol, date) pair occurs twice.
    """
    return _feature_frame(prices, progress, membership=membership)


def member_rank_groups(dates: np.ndarray, members: np.ndarray | None) -> np.ndarray:
    """Rank groups of rows: the date's code for members, a separate code per date for the rest.

    Parameters
    ----------
    dates : ndarray of shape (n,)
    members : ndarray of bool of shape (n,) or None
        Index membership of each row (:func:`vfr.data.universe.membership_mask`); None = all.

    Returns
    -------
    ndarray of int64, shape (n,)
        Group codes for :func:`rank_matrix`.
    """
    codes, uniques = pd.factorize(dates, sort=False)
    codes = codes.astype(np.int64)
    if members is None:
        return codes
    return np.where(members, codes, codes + len(uniques))



def symbol_starts(codes: np.ndarray, dates: np.ndarray, symbols: pd.Series) -> np.ndarray:
    """Where each symbol's block starts in rows sorted by (symbol, date), checking uniqueness.

    Parameters
    ----------
    codes : numpy.ndarray, shape (n,)
        Symbol of each row (values or integer codes), sorted.
    dates : numpy.ndarray, shape (n,)
        Date of each row, ascending within a symbol.
    symbols : pandas.Series, shape (n,)
        Symbol names (for the error message).

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True on the first row of each symbol.

    Raises
    ------
    DataValidationError
        Two rows with the same (symbol, date), naming the first.
    """
    n = len(codes)
    new_symbol = np.ones(n, dtype=bool)
    if n:
        new_symbol[1:] = codes[1:] != codes[:-1]
        dup = ~new_symbol[1:] & (dates[1:] == dates[:-1])
        if dup.any():
            i = int(np.flatnonzero(dup)[0]) + 1
            raise DataValidationError(
                f"duplicate (symbol, date) = ({symbols.iloc[i]}, {pd.Timestamp(dates[i]).date()})",
                column="date")
    return new_symbol

def technical_values(prices: pd.DataFrame, progress: Callable[[int], object] | None = None, *,
                     out: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The per-symbol technical features of every price row, unranked.

    Parameters
    ----------
    prices : pandas.DataFrame, shape (n, >=7)
        Canonical prices frame (as :func:`build_features`); any row order.
    progress : callable, optional
        As :func:`build_features`.
    out : numpy.ndarray, shape (n, len(FEATURES)), float32, optional
        Where to write the values (e.g. a column-major slice of a larger block).

    Returns
    -------
    keys : pandas.DataFrame, shape (n, 2)
        ``symbol, date`` of each row, sorted by ``symbol, date``, with a ``RangeIndex``.
    values : numpy.ndarray, shape (n, len(FEATURES)), float32, column-major
        One column per feature of :data:`FEATURES`, row ``i`` of ``keys``; ``out`` when given.

    Raises
    ------
    DataValidationError
        If a required column is missing or a (symbol, date) pair occurs twice.
    ValueError
        ``out`` has the wrong shape or dtype.
    """
    check_columns(prices)
    frame = prices[["symbol", "date", *_PRICE_COLUMNS]]
    if not is_sorted_by(frame, ["symbol", "date"]):
        frame = frame.sort_values(["symbol", "date"], kind="stable")
    frame = frame.reset_index(drop=True)
    sym = frame["symbol"].to_numpy()
    dates = frame["date"].to_numpy()
    n = len(frame)
    new_symbol = symbol_starts(sym, dates, frame["symbol"])
    starts = np.flatnonzero(new_symbol)
    ends = np.append(starts[1:], n) if n else starts
    arrays = [frame[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in _PRICE_COLUMNS]
    if out is None:
        out = np.empty((n, len(FEATURES)), dtype=np.float32, order="F")
    elif out.shape != (n, len(FEATURES)) or out.dtype != np.float32:
        raise ValueError(f"technical_values: out must be float32 of shape {(n, len(FEATURES))}, "
                         f"got {out.dtype} {out.shape}")
    for start, end in zip(starts, ends, strict=True):
        out[start:end] = feature_matrix(*(a[start:end] for a in arrays))
        if progress is not None:
            progress(1)
    return frame[["symbol", "date"]], out


def _feature_frame(prices: pd.DataFrame, progress: Callable[[int], object] | None,
                   membership: pd.DataFrame | None = None) -> pd.DataFrame:
    names = [f.name for f in FEATURES]
    k = len(names)
    # one column-major float32 block: features in [:, :k], ranks in [:, k:]; pandas keeps
    # it as a single block without copying
    block = np.empty((len(prices), 2 * k), dtype=np.float32, order="F")
    keys, _ = technical_values(prices, progress, out=block[:, :k])
    dates = keys["date"].to_numpy()
    members = None if membership is None else membership_mask(keys["symbol"].to_numpy(), dates, membership)
    rank_matrix(block[:, :k], member_rank_groups(dates, members), out=block[:, k:])
    result = pd.DataFrame(block, columns=[*names, *(f"{name}_rank" for name in names)], copy=False)
    result.insert(0, "date", dates)
    result.insert(0, "symbol", keys["symbol"].array)
    return result
