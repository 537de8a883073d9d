"""Split/dividend adjustment of raw prices (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr.errors import DataValidationError

#: Columns of the adjusted prices frame, in order.
PRICES_COLUMNS: list[str] = ["symbol", "date", "open", "high", "low", "close", "volume",
                             "close_raw", "adj_factor", "dividend_amount", "split_coefficient"]

_RAW_REQUIRED = ["symbol", "date", "open", "high", "low", "close", "adjusted_close", "volume",
                 "dividend_amount", "split_coefficient"]


def _sort_order(symbol: pd.Series, date: np.ndarray) -> np.ndarray | None:
    """Permutation sorting by (symbol, date), or None when already sorted."""
    codes, _ = pd.factorize(symbol, sort=True)
    d = date.view("i8")
    if len(codes) < 2:
        return None
    dc, dd = np.diff(codes), np.diff(d)
    if np.all((dc > 0) | ((dc == 0) & (dd >= 0))):
        return None
    return np.lexsort((d, codes))


def adjust_prices(raw: pd.DataFrame) -> pd.DataFrame:
    """Adjust raw prices for splits and dividends with the provider's row-wise factor.

    For each row::

        adj_factor = adjusted_close / close
        open, high, low, close = raw open, high, low, close * adj_factor
        volume                 = raw volume / adj_factor
        close_raw              = raw close

    so the adjusted ``close`` equals the provider's ``adjusted_close``. This is the rule of
    ``shared/data/sp500/SOURCE.md`` ("factor = adjusted_close / close, multiply
    open/high/low/close by it, divide volume by it"). As argued in ``docs/architecture.md``
    (canonical frames), for dates s1 < s2 <= t the ratio ``adj_factor[s2] / adj_factor[s1]``
    depends only on splits and dividends in (s1, s2], so scale-invariant quantities
    (returns, ratios to moving levels) computed from the adjusted prices use only
    information known at t; price *levels* are not point-in-time and must not be used as
    features. Dollar volume ``close * volume`` is invariant under the adjustment.

    Parameters
    ----------
    raw : DataFrame, shape (n, >= 10)
        Raw prices frame (output of the readers): ``symbol, date, open, high, low, close,
        adjusted_close, volume, dividend_amount, split_coefficient``; prices in USD as
        traded, volume in shares.

    Returns
    -------
    DataFrame, shape (n, 11)
        Prices frame: ``symbol`` (str), ``date`` (datetime64[ns]), ``open, high, low,
        close`` (float64 USD, adjusted), ``volume`` (float64 shares, adjusted),
        ``close_raw`` (float64 USD), ``adj_factor`` (float64), ``dividend_amount``,
        ``split_coefficient`` (float64); sorted by (symbol, date), RangeIndex. The input is
        not modified.

    Raises
    ------
    DataValidationError
        A required column is missing, or ``close``/``adjusted_close`` is not positive
        (the factor would be undefined).
    """
    missing = [c for c in _RAW_REQUIRED if c not in raw.columns]
    if missing:
        raise DataValidationError(f"adjust_prices: missing column(s) {missing}",
                                  column=", ".join(missing))
    close = raw["close"].to_numpy(dtype="float64")
    adj_close = raw["adjusted_close"].to_numpy(dtype="float64")
    bad = np.flatnonzero(~((close > 0) & (adj_close > 0)))
    if bad.size:
        col = "close" if not close[bad[0]] > 0 else "adjusted_close"
        raise DataValidationError("non-positive or missing price; cannot compute adj_factor",
                                  row=int(bad[0]) + 1, column=col)
    factor = adj_close / close
    symbol = raw["symbol"].astype("str").reset_index(drop=True)
    date = raw["date"].to_numpy(dtype="datetime64[ns]")
    cols: dict[str, np.ndarray] = {
        "date": date,
        "open": raw["open"].to_numpy(dtype="float64") * factor,
        "high": raw["high"].to_numpy(dtype="float64") * factor,
        "low": raw["low"].to_numpy(dtype="float64") * factor,
        "close": adj_close.copy(),
        "volume": raw["volume"].to_numpy(dtype="float64") / factor,
        "close_raw": close.copy(),
        "adj_factor": factor,
        "dividend_amount": raw["dividend_amount"].to_numpy(dtype="float64"),
        "split_coefficient": raw["split_coefficient"].to_numpy(dtype="float64"),
    }
    # close * factor == adjusted_close up to rounding; use the provider's value exactly
    order = _sort_order(symbol, date)
    if order is not None:
        cols = {k: v[order] for k, v in cols.items()}
        symbol = symbol.take(order).reset_index(drop=True)
    return pd.DataFrame({"symbol": symbol, **cols})[PRICES_COLUMNS]
