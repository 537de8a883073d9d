"""The one forward-return computation of VFR (labels, factor evaluation and signal tests use it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from vfr.metrics.horizons import HORIZONS, HorizonLike, parse_horizons

__all__ = ["forward_returns"]


def forward_returns(prices: pd.DataFrame,
                    horizons: HorizonLike | Iterable[HorizonLike] | Mapping[str, int] = tuple(HORIZONS), *,
                    price: str = "close", column: str = "fwd_ret_{name}") -> pd.DataFrame:
    """Close-to-close forward simple return of every (symbol, date) row over ``(t, t+h]``.

    .. math:: R^{(h)}_{t,i} = P_{t+h,i} / P_{t,i} - 1

    where ``t+h`` is the ``h``-th next row of the same symbol (its own trading days). The
    return of date ``t`` starts after ``t``: it uses the price at ``t`` (the close at which a
    feature dated ``t`` is known) and the price ``h`` rows later, nothing before ``t`` and
    nothing between. It is an *evaluation label*, known only at the close of ``t+h``.

    Parameters
    ----------
    prices : pandas.DataFrame of shape (n_rows, >=3)
        Long frame with ``symbol``, ``date`` and the ``price`` column (adjusted close, USD).
        One row per (symbol, date) is expected; rows are used in (symbol, date) order.
    horizons : horizon, iterable of horizons or mapping of str to int
        Anything :func:`vfr.metrics.parse_horizons` reads (``"1w"``, ``5``, ``"5d"``,
        ``("1d", "1w", "1m")``, ``{"1w": 5}``); default every :data:`vfr.metrics.HORIZONS`.
    price : str
        Price column.
    column : str
        Name template of each output column, formatted with the horizon's canonical
        ``name`` and ``days`` (default ``"fwd_ret_{name}"`` -> ``fwd_ret_1w``;
        ``"fwd_{days}"`` -> ``fwd_5``).

    Returns
    -------
    pandas.DataFrame of shape (n_rows, 2 + n_horizons)
        ``symbol``, ``date`` and one float64 column per horizon (fraction), rows sorted by
        (symbol, date) (stable sort) with a fresh 0..n-1 index. A row whose window runs past
        the last row of its symbol, or whose symbol is missing, is NaN.

    Raises
    ------
    ValueError
        If a column is missing, or the template gives two horizons the same name.
    vfr.metrics.HorizonError
        If a horizon is not valid (see :func:`vfr.metrics.parse_horizon`).
    """
    missing = {"symbol", "date", price} - set(prices.columns)
    if missing:
        raise ValueError(f"forward_returns: prices frame lacks columns {sorted(missing)}")
    hs = parse_horizons(horizons)
    names = [column.format(name=h.name, days=h.days) for h in hs]
    if len(set(names)) != len(names):
        raise ValueError(f"forward_returns: column template {column!r} gives duplicate names {names}")
    frame = prices[["symbol", "date", price]].sort_values(["symbol", "date"], kind="stable")
    frame = frame.reset_index(drop=True)
    out = frame[["symbol", "date"]].copy()
    close = frame[price].to_numpy(dtype=np.float64)
    sym = frame["symbol"].to_numpy()
    known = pd.notna(sym)
    for h, name in zip(hs, names, strict=True):
        d = h.days
        fwd = np.full(len(frame), np.nan)
        if len(frame) > d:
            # sorted by symbol, so rows i and i+d of the same symbol are d of its trading days apart
            same = (sym[d:] == sym[:-d]) & known[d:]
            with np.errstate(divide="ignore", invalid="ignore"):
                fwd[:-d] = np.where(same, close[d:] / close[:-d] - 1.0, np.nan)
        out[name] = fwd
    return out
