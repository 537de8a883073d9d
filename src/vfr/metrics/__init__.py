"""Ground-floor metrics: forward returns, horizons, IC / Rank IC and their summaries.

This package imports only numpy, pandas and :mod:`vfr.errors`, so any
layer (data, features, ml, backtest, serving) can use it without pulling in the ML stack.

Public interface::

    parse_horizon(h) -> Horizon(name, days)       "1w" | 5 | "5d" -> Horizon("1w", 5)
    parse_horizons(hs) -> [Horizon]               sequence or {name: days} mapping
    forward_returns(prices, horizons, *, price="close", column="fwd_ret_{name}") -> frame
        close[t+h] / close[t] - 1 per symbol, window (t, t+h]
    ic_by_date(frame, score, target, min_names=5) -> frame (ic, rank_ic, n by date)
    ic_summary(ic, horizon=None) -> dict           mean, std, icir, t_stat, t_stat_nonoverlap
    quantile_spread(frame, score, target, quantiles=10) -> Series (top minus bottom by date)
    HORIZONS                                      canonical names -> days (re-exported by vfr.config)
"""

from vfr.metrics.horizons import (
    HORIZONS,
    Horizon,
    HorizonError,
    HorizonLike,
    parse_horizon,
    parse_horizons,
)
from vfr.metrics.ic import ic_by_date, ic_summary, quantile_spread
from vfr.metrics.returns import forward_returns

__all__ = [
    "HORIZONS",
    "Horizon",
    "HorizonError",
    "HorizonLike",
    "forward_returns",
    "ic_by_date",
    "ic_summary",
    "parse_horizon",
    "parse_horizons",
    "quantile_spread",
]
