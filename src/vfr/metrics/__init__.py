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
    sharpe_ratio(returns, periods_per_year=None)  per-period Sharpe (annualised if periods given)
    probabilistic_sharpe_ratio(sr, sr_benchmark, n_obs, skew, kurtosis) -> PSR (raw kurtosis; or excess_kurtosis=)
    expected_max_sharpe(n_trials, sr_variance)    SR0 of the deflated Sharpe ratio
    deflated_sharpe_ratio(returns | sr=, n_obs=, ..., n_trials=, sr_variance=) -> DeflatedSharpe(dsr, sr, sr0, ...)
    pbo_cscv(performance_matrix, n_splits=16, metric="sharpe") -> PBOResult(pbo, logits, degradation, ...)
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
from vfr.metrics.overfitting import (
    DeflatedSharpe,
    PBOResult,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    return_moments,
    sharpe_ratio,
)
from vfr.metrics.returns import forward_returns

__all__ = [
    "HORIZONS",
    "DeflatedSharpe",
    "Horizon",
    "HorizonError",
    "HorizonLike",
    "PBOResult",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "forward_returns",
    "ic_by_date",
    "ic_summary",
    "parse_horizon",
    "parse_horizons",
    "pbo_cscv",
    "probabilistic_sharpe_ratio",
    "quantile_spread",
    "return_moments",
    "sharpe_ratio",
]
