"""Forecasts of the Sharpe ratio and of the maximum drawdown, with their uncertainty."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["DrawdownForecast", "SharpeForecast", "drawdown_forecast", "sharpe_forecast"]


@dataclass(frozen=True)
class SharpeForecast:
    """Annualised Sharpe estimate with its standard error and confidence interval."""

    sharpe: float
    std_error: float
    lower: float
    upper: float
    level: float
    n: int


def sharpe_forecast(returns: pd.Series, *, level: float = 0.95, periods_per_year: int = 252) -> SharpeForecast:
    r"""Sharpe ratio with the asymptotic standard error of Lo (2002).

    For IID returns with per-period Sharpe :math:`\widehat{SR}` over ``n`` periods,

    .. math:: SE(\widehat{SR}) = \sqrt{\frac{1 + \tfrac12 \widehat{SR}^2}{n}}, \qquad
              SR_{ann} = \widehat{SR}\sqrt{P}, \quad SE_{ann} = SE \sqrt{P}

    (A. W. Lo, "The Statistics of Sharpe Ratios", *Financial Analysts Journal* 58(4),
    2002, eq. 9). The interval is the normal one, ``SR +- z SE``: the forecast of next
    year's Sharpe under stationarity, with its estimation uncertainty.

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``, risk-free 0.
    level : float, default 0.95
    periods_per_year : int, default 252

    Returns
    -------
    SharpeForecast

    Raises
    ------
    ValueError
        Fewer than 3 returns or zero volatility.
    """
    r = pd.Series(returns, dtype="float64").dropna().to_numpy()
    if r.size < 3 or r.std(ddof=1) == 0:
        raise ValueError("need at least 3 returns with non-zero volatility")
    sr = r.mean() / r.std(ddof=1)
    se = math.sqrt((1.0 + 0.5 * sr * sr) / r.size)
    z = stats.norm.ppf(0.5 + level / 2)
    k = math.sqrt(periods_per_year)
    return SharpeForecast(sharpe=float(sr * k), std_error=float(se * k), lower=float((sr - z * se) * k),
                          upper=float((sr + z * se) * k), level=level, n=int(r.size))


@dataclass(frozen=True)
class DrawdownForecast:
    """Distribution of the maximum drawdown over the next ``horizon`` periods."""

    horizon: int
    median: float
    lower: float
    upper: float
    level: float
    prob_worse_than: dict[float, float]
    samples: np.ndarray


def drawdown_forecast(returns: pd.Series, *, horizon: int = 252, n_paths: int = 2000, block: int = 21,
                      level: float = 0.90, thresholds: tuple[float, ...] = (-0.1, -0.2, -0.3),
                      seed: int = 0) -> DrawdownForecast:
    r"""Maximum drawdown over the next ``horizon`` periods by moving-block bootstrap.

    Paths of length ``horizon`` are built from blocks of ``block`` consecutive past returns
    drawn with replacement (Kunsch 1989; keeps volatility clustering within a block); each
    path's maximum drawdown :math:`\min_t (E_t / \max(1, \max_{u \le t} E_u) - 1)` is
    recorded. The forecast is the median with a central ``level`` interval.

    Parameters
    ----------
    returns : pandas.Series
        Past periodic simple returns, shape ``(n,)``, ``n > block``.
    horizon : int, default 252
    n_paths : int, default 2000
    block : int, default 21
    level : float, default 0.90
    thresholds : tuple of float
        Drawdown levels (negative) for ``prob_worse_than``.
    seed : int, default 0
        Seed of a local generator.

    Returns
    -------
    DrawdownForecast
        ``samples`` shape ``(n_paths,)``.
    """
    r = pd.Series(returns, dtype="float64").dropna().to_numpy()
    if r.size <= block:
        raise ValueError(f"need more than block={block} returns")
    rng = np.random.default_rng(seed)
    n_blocks = -(-int(horizon) // int(block))
    starts = rng.integers(0, r.size - block + 1, size=(int(n_paths), n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(int(n_paths), -1)[:, :horizon]
    eq = np.cumprod(1.0 + r[idx], axis=1)
    peak = np.maximum(np.maximum.accumulate(eq, axis=1), 1.0)
    mdd = (eq / peak - 1.0).min(axis=1)
    a = (1 - level) / 2
    return DrawdownForecast(horizon=int(horizon), median=float(np.median(mdd)), lower=float(np.quantile(mdd, a)),
                            upper=float(np.quantile(mdd, 1 - a)), level=level,
                            prob_worse_than={float(t): float((mdd <= t).mean()) for t in thresholds}, samples=mdd)
