"""Performance metrics of a return series (pure functions, empyrical conventions).

Every function takes a :class:`pandas.Series` (or anything 1-d convertible to one) of
*periodic simple returns* (``0.01`` = +1 %), one value per period, ``periods_per_year``
periods a year (252 for trading days). NaN values are dropped first. A metric that is
undefined for its input (empty series, zero dispersion, no drawdown, ...) is ``NaN``; no
function raises on such input.

References
----------
.. [1] Quantopian, *empyrical* (Apache 2.0), ``empyrical/stats.py``: ``cagr``,
   ``annual_volatility``, ``sharpe_ratio``, ``sortino_ratio``, ``downside_risk``,
   ``max_drawdown``, ``calmar_ratio``.
.. [2] W. F. Sharpe, "The Sharpe Ratio", *Journal of Portfolio Management* 21(1), 1994.
.. [3] F. A. Sortino, L. N. Price, "Performance Measurement in a Downside Risk Framework",
   *Journal of Investing* 3(3), 1994.
.. [4] T. W. Young, "Calmar Ratio: A Smoother Tool", *Futures* 20(1), 1991.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "Turnover",
    "alpha_beta",
    "annual_volatility",
    "average_loss",
    "average_win",
    "cagr",
    "calmar_ratio",
    "drawdown_series",
    "hit_rate",
    "information_ratio",
    "max_drawdown",
    "max_drawdown_duration",
    "profit_factor",
    "relative_metrics",
    "sharpe_ratio",
    "sortino_ratio",
    "summary_metrics",
    "total_return",
    "turnover",
]

NAN = float("nan")


def _clean(returns: pd.Series | np.ndarray | list[float]) -> np.ndarray:
    """Return the non-NaN values of ``returns`` as a 1-d float64 array."""
    arr = np.asarray(pd.Series(returns, dtype="float64").to_numpy(dtype="float64", na_value=np.nan))
    if arr.ndim != 1:
        raise ValueError(f"returns must be 1-dimensional, got shape {arr.shape}")
    return arr[~np.isnan(arr)]


def total_return(returns: pd.Series) -> float:
    r"""Compounded total return.

    .. math:: TR = \prod_t (1 + r_t) - 1

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.

    Returns
    -------
    float
        Total return (``0.1`` = +10 %); NaN for an empty series.
    """
    r = _clean(returns)
    if r.size == 0:
        return NAN
    return float(np.prod(1.0 + r) - 1.0)


def cagr(returns: pd.Series, periods_per_year: int = 252) -> float:
    r"""Compound annual growth rate.

    .. math:: CAGR = \Big(\prod_{t=1}^{n} (1 + r_t)\Big)^{P / n} - 1

    with ``n`` the number of (non-NaN) periods and ``P = periods_per_year`` (empyrical
    ``cagr`` [1]_).

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.
    periods_per_year : int, default 252
        Periods in a year.

    Returns
    -------
    float
        Annual growth rate; ``-1.0`` when the capital is wiped out, NaN for an empty series.
    """
    r = _clean(returns)
    if r.size == 0:
        return NAN
    ending = float(np.prod(1.0 + r))
    if ending <= 0.0:
        return -1.0
    return float(ending ** (periods_per_year / r.size) - 1.0)


def annual_volatility(returns: pd.Series, periods_per_year: int = 252) -> float:
    r"""Annualised volatility.

    .. math:: \sigma_{ann} = s(r) \sqrt{P}

    with ``s`` the sample standard deviation (``ddof=1``), as in empyrical [1]_.

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.
    periods_per_year : int, default 252
        Periods in a year.

    Returns
    -------
    float
        Annualised standard deviation; NaN with fewer than two observations.
    """
    r = _clean(returns)
    if r.size < 2:
        return NAN
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def sharpe_ratio(returns: pd.Series, risk_free: float = 0.0, periods_per_year: int = 252) -> float:
    r"""Annualised Sharpe ratio (arithmetic).

    .. math:: SR = \frac{\overline{r - r_f}}{s(r - r_f)} \sqrt{P}

    with ``s`` the sample standard deviation (``ddof=1``); Sharpe (1994) [2]_, empyrical
    ``sharpe_ratio`` [1]_.

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.
    risk_free : float, default 0.0
        Risk-free return *per period* (not annual).
    periods_per_year : int, default 252
        Periods in a year.

    Returns
    -------
    float
        Sharpe ratio; NaN with fewer than two observations or zero dispersion.
    """
    r = _clean(returns)
    if r.size < 2:
        return NAN
    excess = r - risk_free
    sd = float(np.std(excess, ddof=1))
    if not sd > 1e-15 * max(1.0, float(np.max(np.abs(excess)))):
        return NAN
    return float(np.mean(excess) / sd * math.sqrt(periods_per_year))


def sortino_ratio(returns: pd.Series, target: float = 0.0, periods_per_year: int = 252) -> float:
    r"""Annualised Sortino ratio.

    .. math::

        a_t = r_t - T, \quad
        DD = \sqrt{\tfrac{1}{n} \sum_t \min(a_t, 0)^2}, \quad
        S = \frac{\bar a}{DD} \sqrt{P}

    The downside deviation ``DD`` is the root lower partial moment of order 2 around the
    target ``T`` over *all* ``n`` periods (Sortino & Price 1994 [3]_; empyrical
    ``sortino_ratio``/``downside_risk`` [1]_, where it is written ``mean(a) * P /
    (DD * sqrt(P))``).

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.
    target : float, default 0.0
        Minimum acceptable return per period.
    periods_per_year : int, default 252
        Periods in a year.

    Returns
    -------
    float
        Sortino ratio; NaN for an empty series or when no period falls below the target
        (empyrical returns ``inf`` there; NaN keeps tables and JSON finite-or-missing).
    """
    r = _clean(returns)
    if r.size == 0:
        return NAN
    adj = r - target
    dd = math.sqrt(float(np.mean(np.minimum(adj, 0.0) ** 2)))
    if dd == 0.0:
        return NAN
    return float(np.mean(adj) / dd * math.sqrt(periods_per_year))


def drawdown_series(returns: pd.Series) -> pd.Series:
    r"""Drawdown of the equity curve after each period.

    .. math:: E_t = \prod_{u \le t} (1 + r_u), \quad
              DD_t = \frac{E_t}{\max(1, \max_{u \le t} E_u)} - 1

    The starting capital ``E_0 = 1`` counts as a peak (empyrical [1]_).

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``; NaN counts as 0.

    Returns
    -------
    pandas.Series
        Drawdowns (``<= 0``), same index as ``returns``.
    """
    s = pd.Series(returns, dtype="float64")
    equity = (1.0 + s.fillna(0.0)).cumprod()
    peak = np.maximum(equity.cummax().to_numpy(), 1.0)
    return pd.Series(equity.to_numpy() / peak - 1.0, index=s.index, name="drawdown")


def max_drawdown(returns: pd.Series) -> float:
    r"""Maximum drawdown of the equity curve (a negative number).

    .. math:: MDD = \min_t DD_t

    with ``DD_t`` as in :func:`drawdown_series` (peak-to-trough loss of the compounded
    equity curve started at 1; empyrical ``max_drawdown`` [1]_).

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.

    Returns
    -------
    float
        ``MDD <= 0`` (``-0.2`` = a 20 % loss from peak); ``0.0`` if the curve never falls
        below a previous peak; NaN for an empty series.
    """
    r = _clean(returns)
    if r.size == 0:
        return NAN
    return float(drawdown_series(pd.Series(r)).min())


def calmar_ratio(returns: pd.Series, periods_per_year: int = 252) -> float:
    r"""Calmar ratio: CAGR over the absolute maximum drawdown.

    .. math:: Calmar = \frac{CAGR}{|MDD|}

    Young (1991) [4]_; computed over the whole series as in empyrical ``calmar_ratio`` [1]_.

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.
    periods_per_year : int, default 252
        Periods in a year.

    Returns
    -------
    float
        Calmar ratio; NaN for an empty series or without a drawdown (``MDD == 0``).
    """
    mdd = max_drawdown(returns)
    if not mdd < 0.0:
        return NAN
    return float(cagr(returns, periods_per_year) / abs(mdd))


def hit_rate(returns: pd.Series) -> float:
    r"""Share of periods with a positive return.

    .. math:: HR = \frac{\#\{t : r_t > 0\}}{\#\{t : r_t \text{ not NaN}\}}

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.

    Returns
    -------
    float
        In ``[0, 1]``; NaN for an empty series.
    """
    r = _clean(returns)
    if r.size == 0:
        return NAN
    return float(np.count_nonzero(r > 0.0) / r.size)


def max_drawdown_duration(returns: pd.Series) -> float:
    r"""Longest time spent below a previous equity peak, in periods.

    .. math:: D = \max \{ t_2 - t_1 : DD_t < 0 \ \forall t \in (t_1, t_2] \}

    i.e. the longest run of consecutive periods with ``DD_t < 0`` (:func:`drawdown_series`),
    counted from the peak to the recovery (or to the end of the series if never
    recovered); Bacon, *Practical Portfolio Performance Measurement and Attribution*, 2nd
    ed. 2008, sec. 4.4 ("drawdown duration").

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.

    Returns
    -------
    float
        Periods (``0.0`` if never under water); NaN for an empty series.
    """
    r = _clean(returns)
    if r.size == 0:
        return NAN
    under = drawdown_series(pd.Series(r)).to_numpy() < 0
    best = run = 0
    for u in under:
        run = run + 1 if u else 0
        best = max(best, run)
    return float(best)


def average_win(returns: pd.Series) -> float:
    r"""Mean of the positive returns: :math:`\overline{r_t \mid r_t > 0}` (NaN if none)."""
    r = _clean(returns)
    wins = r[r > 0]
    return float(wins.mean()) if wins.size else NAN


def average_loss(returns: pd.Series) -> float:
    r"""Mean of the negative returns: :math:`\overline{r_t \mid r_t < 0}` (negative; NaN if none)."""
    r = _clean(returns)
    losses = r[r < 0]
    return float(losses.mean()) if losses.size else NAN


def profit_factor(returns: pd.Series) -> float:
    r"""Gross profits over gross losses.

    .. math:: PF = \frac{\sum_t \max(r_t, 0)}{\sum_t \max(-r_t, 0)}

    (Bacon 2008; a sum of returns, not of P&L in currency.)

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.

    Returns
    -------
    float
        ``PF >= 0``; NaN for an empty series or without any loss.
    """
    r = _clean(returns)
    loss = float(-r[r < 0].sum())
    if r.size == 0 or loss == 0.0:
        return NAN
    return float(r[r > 0].sum() / loss)


def _aligned(returns: pd.Series, benchmark: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    a = pd.concat([pd.Series(returns, dtype="float64"), pd.Series(benchmark, dtype="float64")],
                  axis=1, join="inner").dropna()
    return a.iloc[:, 0].to_numpy(), a.iloc[:, 1].to_numpy()


def information_ratio(returns: pd.Series, benchmark: pd.Series, periods_per_year: int = 252) -> float:
    r"""Annualised information ratio of active returns.

    .. math:: IR = \frac{\overline{r - b}}{s(r - b)} \sqrt{P}

    (Grinold & Kahn, *Active Portfolio Management*, 2000, ch. 5; empyrical
    ``excess_sharpe`` x sqrt(P)); ``s`` with ``ddof=1``, over the periods where both are
    known (aligned on the index).

    Parameters
    ----------
    returns, benchmark : pandas.Series
        Periodic simple returns of the strategy and benchmark, shape ``(n,)``.
    periods_per_year : int, default 252

    Returns
    -------
    float
        NaN with fewer than 2 common periods or zero tracking error.
    """
    r, b = _aligned(returns, benchmark)
    if r.size < 2:
        return NAN
    a = r - b
    sd = float(np.std(a, ddof=1))
    if sd == 0.0:
        return NAN
    return float(np.mean(a) / sd * math.sqrt(periods_per_year))


def alpha_beta(returns: pd.Series, benchmark: pd.Series, periods_per_year: int = 252) -> tuple[float, float]:
    r"""CAPM (Jensen) alpha, annualised, and beta by ordinary least squares.

    .. math:: \beta = \frac{\mathrm{cov}(r, b)}{\mathrm{var}(b)}, \qquad
              \alpha = (1 + \overline{r - \beta b})^{P} - 1

    (Jensen 1968; empyrical ``alpha_beta`` with risk-free 0), over the common non-NaN
    periods.

    Parameters
    ----------
    returns, benchmark : pandas.Series
        Periodic simple returns, shape ``(n,)``, aligned on the index.
    periods_per_year : int, default 252

    Returns
    -------
    (float, float)
        ``(alpha, beta)``; NaNs with fewer than 2 common periods or a constant benchmark.
    """
    r, b = _aligned(returns, benchmark)
    if r.size < 2:
        return NAN, NAN
    vb = float(np.var(b, ddof=1))
    if vb == 0.0:
        return NAN, NAN
    beta = float(np.cov(r, b, ddof=1)[0, 1] / vb)
    alpha = float((1.0 + np.mean(r - beta * b)) ** periods_per_year - 1.0)
    return alpha, beta


def relative_metrics(returns: pd.Series, benchmark: pd.Series, periods_per_year: int = 252) -> dict[str, float]:
    """``alpha``, ``beta``, ``information_ratio`` and ``tracking_error`` vs a benchmark.

    Parameters
    ----------
    returns, benchmark : pandas.Series
        Periodic simple returns, shape ``(n,)``, aligned on the index (NaN periods dropped).
    periods_per_year : int, default 252

    Returns
    -------
    dict[str, float]
        ``tracking_error`` is ``s(r - b) sqrt(P)``.
    """
    r, b = _aligned(returns, benchmark)
    alpha, beta = alpha_beta(pd.Series(r), pd.Series(b), periods_per_year)
    te = float(np.std(r - b, ddof=1) * math.sqrt(periods_per_year)) if r.size > 1 else NAN
    return {"alpha": alpha, "beta": beta,
            "information_ratio": information_ratio(pd.Series(r), pd.Series(b), periods_per_year),
            "tracking_error": te}


class Turnover(NamedTuple):
    """Turnover of a rebalanced portfolio (fractions of capital traded)."""

    per_rebalance: float
    """Mean traded fraction per rebalance."""
    annualised: float
    """``per_rebalance`` times the number of rebalances per year."""


def turnover(weights: pd.DataFrame, rebalances_per_year: float | None = None) -> Turnover:
    r"""Mean turnover per rebalance, and annualised, from target weights.

    .. math:: \tau_k = \sum_i |w_{k,i} - w_{k-1,i}|, \qquad
              \bar\tau = \frac{1}{K} \sum_{k=1}^{K} \tau_k, \qquad
              \tau_{ann} = \bar\tau \cdot N_{year}

    with ``w_0 = 0`` (the first rebalance buys the whole book) and a symbol absent from a
    rebalance weighted 0. ``tau`` is the fraction of capital traded (buys plus sells), the
    quantity :func:`vfr.backtest.run_backtest` charges ``cost_bps`` on; divide by 2 for the
    "half-sum" convention. Target weights ignore the drift between rebalances: the engine's
    ``turnover`` column (against *drifted* weights) is the exact traded amount.

    Parameters
    ----------
    weights : pandas.DataFrame
        Either long (columns ``date``, ``symbol``, ``weight``; one row per holding, e.g.
        ``BacktestResult.weights``) or wide (index = rebalance dates, one column per
        symbol).
    rebalances_per_year : float, optional
        Default: estimated from the dates as ``(K - 1) / years`` between the first and last
        rebalance (365.25-day years).

    Returns
    -------
    Turnover
        ``(per_rebalance, annualised)``; NaN where undefined (no rebalance; fewer than two
        rebalances for the estimated frequency).
    """
    if {"date", "symbol", "weight"} <= set(weights.columns):
        wide = weights.pivot_table(index="date", columns="symbol", values="weight", aggfunc="sum")
    else:
        wide = weights
    wide = wide.sort_index().fillna(0.0).astype("float64")
    if wide.shape[0] == 0:
        return Turnover(NAN, NAN)
    w = wide.to_numpy()
    prev = np.vstack([np.zeros((1, w.shape[1])), w[:-1]])
    tau = np.abs(w - prev).sum(axis=1)
    per = float(tau.mean())
    if rebalances_per_year is None:
        k = w.shape[0]
        years = (pd.Timestamp(wide.index[-1]) - pd.Timestamp(wide.index[0])).days / 365.25 if k > 1 else 0.0
        rebalances_per_year = (k - 1) / years if years > 0 else NAN
    return Turnover(per, float(per * rebalances_per_year))


def summary_metrics(
    returns: pd.Series,
    turnover: pd.Series | None = None,
    periods_per_year: int = 252,
) -> dict[str, float]:
    """All metrics of one return series in a flat dict (report / JSON friendly).

    Parameters
    ----------
    returns : pandas.Series
        Periodic simple returns, shape ``(n,)``.
    turnover : pandas.Series, optional
        Traded fraction of capital per period, aligned with ``returns`` and 0 on periods
        without trading (``BacktestResult.daily["turnover"]``). Adds
        ``turnover_per_rebalance`` (mean over the periods with trading) and
        ``annual_turnover`` (``sum / years``, years = ``n / periods_per_year``).
    periods_per_year : int, default 252
        Periods in a year.

    Returns
    -------
    dict[str, float]
        Keys ``total_return``, ``cagr``, ``annual_volatility``, ``sharpe_ratio``,
        ``sortino_ratio``, ``max_drawdown``, ``calmar_ratio``, ``max_drawdown_duration``
        (periods), ``hit_rate``, ``average_win``, ``average_loss``, ``profit_factor``, ``n_periods``
        (and the two turnover keys when ``turnover`` is given). Values are plain floats,
        NaN where undefined.
    """
    r = pd.Series(returns, dtype="float64").dropna()
    out: dict[str, float] = {
        "total_return": total_return(r),
        "cagr": cagr(r, periods_per_year),
        "annual_volatility": annual_volatility(r, periods_per_year),
        "sharpe_ratio": sharpe_ratio(r, periods_per_year=periods_per_year),
        "sortino_ratio": sortino_ratio(r, periods_per_year=periods_per_year),
        "max_drawdown": max_drawdown(r),
        "calmar_ratio": calmar_ratio(r, periods_per_year),
        "max_drawdown_duration": max_drawdown_duration(r),
        "hit_rate": hit_rate(r),
        "average_win": average_win(r),
        "average_loss": average_loss(r),
        "profit_factor": profit_factor(r),
        "n_periods": float(r.size),
    }
    if turnover is not None:
        t = _clean(turnover)
        traded = t[t > 0]
        out["turnover_per_rebalance"] = float(traded.mean()) if traded.size else NAN
        out["annual_turnover"] = float(t.sum() / (t.size / periods_per_year)) if t.size else NAN
    return out
