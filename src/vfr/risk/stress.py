"""Historical stress tests: replay past market windows on today's portfolio."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["STRESS_WINDOWS", "stress_test"]

#: Named historical windows (first and last trading day, inclusive): peak-to-trough of the
#: S&P 500 where the episode is a bear market.
STRESS_WINDOWS: dict[str, tuple[str, str]] = {
    "dot-com 2000-02": ("2000-03-24", "2002-10-09"),
    "GFC 2008": ("2007-10-09", "2009-03-09"),
    "August 2011": ("2011-07-22", "2011-08-10"),
    "August 2015": ("2015-08-17", "2015-08-25"),
    "2018 Q4": ("2018-10-01", "2018-12-24"),
}


def _window_stats(r: pd.Series) -> tuple[float, float, float]:
    eq = (1.0 + r.fillna(0.0)).cumprod()
    dd = eq / np.maximum(eq.cummax(), 1.0) - 1.0
    return float(eq.iloc[-1] - 1.0), float(dd.min()), float(r.min())


def stress_test(prices: pd.DataFrame, weights: pd.Series, windows: dict[str, tuple[str, str]] | None = None, *,
                benchmark: pd.Series | None = None) -> pd.DataFrame:
    r"""Replay historical windows on fixed weights (buy and hold through each window).

    For window ``[a, b]`` the portfolio return is
    :math:`\sum_i w_i (P_{b,i} / P_{a^-,i} - 1)` with ``a^-`` the trading day before ``a``
    and daily values marked to market (drift). A weighted symbol without prices over the
    whole window is replaced by the equal-weight universe of that window (a proxy: it did
    not trade then); ``coverage`` reports the weight that had its own history.

    Parameters
    ----------
    prices : pandas.DataFrame
        Long ``symbol``, ``date``, ``close`` (adjusted).
    weights : pandas.Series
        Symbol -> weight (long-short allowed).
    windows : dict[str, (str, str)], optional
        Name -> (first, last) day; default :data:`STRESS_WINDOWS`; any user window can be
        added.
    benchmark : pandas.Series, optional
        Index levels on a DatetimeIndex (e.g. the S&P 500).

    Returns
    -------
    pandas.DataFrame
        Index window name; columns ``start``, ``end``, ``days``, ``portfolio_return``,
        ``portfolio_max_drawdown``, ``portfolio_worst_day``, ``equal_weight_return``,
        ``benchmark_return`` (NaN without data), ``coverage``. Windows without any price
        data are dropped.
    """
    windows = STRESS_WINDOWS if windows is None else windows
    wide = prices.pivot(index="date", columns="symbol", values="close").sort_index()
    rows = {}
    for name, (a, b) in windows.items():
        a, b = pd.Timestamp(a), pd.Timestamp(b)
        before = wide.loc[:a - pd.Timedelta(days=1)]
        inside = wide.loc[a:b]
        if inside.empty or before.empty:
            continue
        block = pd.concat([before.iloc[-1:], inside]).ffill()
        rel = block / block.iloc[0]  # growth of 1 since the day before the window
        have = rel.columns[rel.iloc[0].notna() & rel.iloc[-1].notna()]
        ew_path = rel[have].mean(axis=1)
        w = weights.astype("float64")
        own = w[w.index.isin(have)]
        proxy = float(w[~w.index.isin(have)].sum())
        value = rel[own.index].fillna(1.0) @ own.to_numpy() + proxy * ew_path + (1.0 - float(w.sum()))
        port = value.pct_change().iloc[1:]
        tot, mdd, worst = _window_stats(port)
        ew_tot = float(ew_path.iloc[-1] - 1.0)
        bench = np.nan
        if benchmark is not None:
            lv = pd.Series(benchmark, dtype="float64").dropna()
            lv.index = pd.DatetimeIndex(lv.index).tz_localize(None) if lv.index.tz is not None else lv.index
            pre, ins = lv.loc[:a - pd.Timedelta(days=1)], lv.loc[a:b]
            if len(pre) and len(ins) and ins.index[-1] >= b - pd.Timedelta(days=7):
                bench = float(ins.iloc[-1] / pre.iloc[-1] - 1.0)
        gross = float(w.abs().sum())
        rows[name] = {"start": inside.index[0], "end": inside.index[-1], "days": len(inside),
                      "portfolio_return": tot, "portfolio_max_drawdown": mdd, "portfolio_worst_day": worst,
                      "equal_weight_return": ew_tot, "benchmark_return": bench,
                      "coverage": float(own.abs().sum() / gross) if gross > 0 else np.nan}
    return pd.DataFrame(rows).T.rename_axis("window")
