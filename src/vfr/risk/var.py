"""Value at risk and expected shortfall: historical, parametric (Gaussian) and Monte Carlo,
for a return series or a portfolio at a date, and a backtest of VaR forecasts.

Conventions
-----------
Losses are positive numbers: at confidence ``level`` (e.g. 0.99) over one period,

.. math:: VaR_\\alpha = -q_{1-\\alpha}(r), \\qquad ES_\\alpha = -E[r \\mid r \\le -VaR_\\alpha]

(McNeil, Frey & Embrechts, *Quantitative Risk Management*, 2nd ed. 2015, sec. 2.3;
P. Jorion, *Value at Risk*, 3rd ed. 2007, ch. 5). Returns are simple returns of the
portfolio (fractions); ``0.02`` VaR = a 2 % loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "VaRBacktest",
    "VaRResult",
    "asset_returns",
    "historical_var_es",
    "kupiec_pof",
    "monte_carlo_var_es",
    "parametric_var_es",
    "portfolio_var",
    "var_backtest",
]

METHODS = ("historical", "parametric", "monte_carlo")


def _check_level(level: float) -> None:
    if not 0.5 < level < 1:
        raise ValueError(f"level must be in (0.5, 1), got {level}")


def _clean(returns) -> np.ndarray:
    r = np.asarray(pd.Series(returns, dtype="float64").dropna().to_numpy(), dtype="float64")
    if r.size < 2:
        raise ValueError("need at least 2 returns")
    return r


def historical_var_es(returns: pd.Series, level: float = 0.99) -> tuple[float, float]:
    r"""Historical-simulation VaR and ES.

    .. math:: VaR = -\hat q_{1-\alpha}(r), \qquad ES = -\frac{1}{\#\{r_t \le -VaR\}}
              \sum_{r_t \le -VaR} r_t

    with ``q`` the empirical quantile (linear interpolation, numpy's default; Jorion 2007,
    ch. 10).

    Parameters
    ----------
    returns : pandas.Series
        Simple returns, shape ``(n,)``; NaN dropped.
    level : float, default 0.99
        Confidence level alpha in (0.5, 1).

    Returns
    -------
    (float, float)
        ``(VaR, ES)`` as positive losses (fractions); ``ES >= VaR``.

    Raises
    ------
    ValueError
        Bad level or fewer than 2 returns.
    """
    _check_level(level)
    r = _clean(returns)
    q = float(np.quantile(r, 1.0 - level))
    tail = r[r <= q]
    return -q, float(-tail.mean())


def parametric_var_es(returns: pd.Series, level: float = 0.99, horizon: int = 1) -> tuple[float, float]:
    r"""Gaussian (variance-covariance) VaR and ES.

    .. math:: VaR = -(\mu h + \sigma \sqrt{h}\, z_{1-\alpha}), \qquad
              ES = -\mu h + \sigma \sqrt{h}\, \frac{\varphi(z_{\alpha})}{1 - \alpha}

    with ``mu``, ``sigma`` (``ddof=1``) of the returns, ``z`` the standard normal quantile
    and ``phi`` its density (McNeil, Frey & Embrechts 2015, example 2.14).

    Parameters
    ----------
    returns : pandas.Series
        Simple returns, shape ``(n,)``.
    level : float, default 0.99
    horizon : int, default 1
        Periods (square-root-of-time scaling).

    Returns
    -------
    (float, float)
        ``(VaR, ES)`` positive losses.
    """
    _check_level(level)
    r = _clean(returns)
    mu, sd = float(r.mean()), float(r.std(ddof=1))
    return _gauss(mu, sd, level, horizon)


def _gauss(mu: float, sd: float, level: float, horizon: int) -> tuple[float, float]:
    z = stats.norm.ppf(level)
    m, s = mu * horizon, sd * np.sqrt(horizon)
    return float(-m + s * z), float(-m + s * stats.norm.pdf(z) / (1.0 - level))


def monte_carlo_var_es(asset_returns: pd.DataFrame, weights: pd.Series, level: float = 0.99, *, horizon: int = 1,
                       n_sims: int = 20_000, seed: int = 0) -> tuple[float, float]:
    r"""Monte Carlo VaR and ES of a portfolio from a multivariate normal fit.

    Daily asset returns are drawn from :math:`N(\hat\mu, \hat\Sigma)` (sample mean and
    covariance of ``asset_returns``, Cholesky / eigen factor), compounded over ``horizon``
    days, combined with the weights, and the historical estimator is applied to the
    simulated portfolio returns (Jorion 2007, ch. 12).

    Parameters
    ----------
    asset_returns : pandas.DataFrame
        Shape ``(n_days, n_assets)``, simple returns, one column per symbol; NaN treated
        as 0.
    weights : pandas.Series
        Symbol -> weight (fraction of capital); symbols outside ``asset_returns`` ignored.
    level : float, default 0.99
    horizon : int, default 1
    n_sims : int, default 20000
    seed : int, default 0
        Seed of a local ``numpy.random.Generator`` (no global state).

    Returns
    -------
    (float, float)
        ``(VaR, ES)`` positive losses.
    """
    _check_level(level)
    cols = [c for c in asset_returns.columns if c in weights.index]
    if not cols:
        raise ValueError("no weighted symbol has returns")
    x = asset_returns[cols].fillna(0.0).to_numpy()
    w = weights.reindex(cols).to_numpy(dtype="float64")
    mu = x.mean(axis=0)
    cov = np.cov(x, rowvar=False, ddof=1).reshape(len(cols), len(cols))
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    rng = np.random.default_rng(seed)
    growth = np.ones((int(n_sims), len(cols)))
    for _ in range(int(horizon)):
        growth *= 1.0 + mu + rng.standard_normal((int(n_sims), len(cols))) @ root.T
    port = (growth - 1.0) @ w
    return historical_var_es(pd.Series(port), level)


def asset_returns(prices: pd.DataFrame, date: str | pd.Timestamp, window: int = 500,
                  symbols: list[str] | None = None) -> pd.DataFrame:
    """Wide daily simple returns of the ``window`` trading days ending at ``date`` (inclusive).

    Parameters
    ----------
    prices : pandas.DataFrame
        Long ``symbol``, ``date``, ``close`` (adjusted).
    date : str or Timestamp
        Last day used; nothing after it is read.
    window : int, default 500
    symbols : list of str, optional
        Restrict to these symbols.

    Returns
    -------
    pandas.DataFrame
        Index ``date`` (at most ``window`` rows), one column per symbol; NaN where a symbol
        has no price.
    """
    p = prices[prices["date"] <= pd.Timestamp(date)]
    if symbols is not None:
        p = p[p["symbol"].isin(symbols)]
    wide = p.pivot(index="date", columns="symbol", values="close").sort_index()
    wide = wide.iloc[-(window + 1):]
    return wide.pct_change(fill_method=None).iloc[1:]


@dataclass
class VaRResult:
    """VaR and ES of a portfolio at a date, one row per method.

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``method`` (historical, parametric, monte_carlo); columns ``var``, ``es``
        (positive fractions of capital), ``var_usd``, ``es_usd`` for ``capital``.
    level, horizon, window : float, int, int
    date : pandas.Timestamp
    """

    table: pd.DataFrame
    level: float
    horizon: int
    window: int
    date: pd.Timestamp


def portfolio_var(prices: pd.DataFrame, weights: pd.Series, date: str | pd.Timestamp, *, level: float = 0.99,
                  horizon: int = 1, window: int = 500, capital: float = 1.0, n_sims: int = 20_000,
                  seed: int = 0) -> VaRResult:
    """VaR and ES of fixed weights at ``date`` by the three methods, from data up to ``date``.

    The historical and parametric methods use the portfolio's return series
    ``r_t = sum_i w_i r_{t,i}`` over the window (weights held constant, missing returns 0);
    for ``horizon > 1`` the historical method compounds overlapping ``horizon``-day windows.

    Parameters
    ----------
    prices : pandas.DataFrame
        Long ``symbol``, ``date``, ``close``.
    weights : pandas.Series
        Symbol -> weight.
    date : str or Timestamp
        Valuation date (last day of data used).
    level, horizon, window, n_sims, seed
        See the single-method functions.
    capital : float, default 1.0
        USD value of the portfolio for the ``*_usd`` columns.

    Returns
    -------
    VaRResult
    """
    rets = asset_returns(prices, date, window, list(weights.index))
    port = rets.fillna(0.0).reindex(columns=weights.index, fill_value=0.0) @ weights.to_numpy(dtype="float64")
    if horizon > 1:
        hist_series = (1.0 + port).rolling(int(horizon)).apply(np.prod, raw=True).dropna() - 1.0
    else:
        hist_series = port
    rows = {
        "historical": historical_var_es(hist_series, level),
        "parametric": parametric_var_es(port, level, horizon),
        "monte_carlo": monte_carlo_var_es(rets, weights, level, horizon=horizon, n_sims=n_sims, seed=seed),
    }
    table = pd.DataFrame(rows, index=["var", "es"]).T.rename_axis("method")
    table["var_usd"] = table["var"] * capital
    table["es_usd"] = table["es"] * capital
    return VaRResult(table=table, level=level, horizon=int(horizon), window=int(rets.shape[0]),
                     date=pd.Timestamp(rets.index[-1]))


@dataclass
class VaRBacktest:
    """Out-of-sample check of one-day VaR forecasts.

    Attributes
    ----------
    frame : pandas.DataFrame
        Index date; ``return``, ``var`` (forecast made with data up to the previous day),
        ``breach`` (``return < -var``).
    level : float
    breaches : int
    n : int
        Days with a forecast.
    breach_rate : float
        ``breaches / n`` (expected ``1 - level``).
    kupiec_lr, kupiec_pvalue : float
        Kupiec (1995) proportion-of-failures likelihood ratio and its chi-square(1) p-value.
    """

    frame: pd.DataFrame
    level: float
    breaches: int
    n: int
    breach_rate: float
    kupiec_lr: float
    kupiec_pvalue: float


def kupiec_pof(breaches: int, n: int, level: float) -> tuple[float, float]:
    r"""Kupiec (1995) proportion-of-failures test.

    .. math:: LR = -2 \ln \frac{(1-p)^{n-x} p^{x}}{(1-\hat p)^{n-x} \hat p^{x}}, \quad
              p = 1 - \alpha, \ \hat p = x / n, \quad LR \sim \chi^2_1

    (P. Kupiec, "Techniques for verifying the accuracy of risk measurement models",
    *Journal of Derivatives* 3(2), 1995).

    Returns
    -------
    (float, float)
        ``(LR, p-value)``.
    """
    p = 1.0 - level
    x, n = int(breaches), int(n)
    if n == 0:
        return float("nan"), float("nan")
    ph = x / n

    def ll(q: float) -> float:
        out = 0.0
        if n - x > 0:
            out += (n - x) * np.log(1.0 - q) if q < 1 else -np.inf
        if x > 0:
            out += x * np.log(q) if q > 0 else -np.inf
        return out

    lr = float(-2.0 * (ll(p) - ll(ph)))
    return lr, float(stats.chi2.sf(lr, 1))


def var_backtest(returns: pd.Series, *, level: float = 0.99, window: int = 500,
                 method: str = "historical") -> VaRBacktest:
    """Rolling one-day VaR forecasts compared with the realised returns (breaches counted).

    The forecast for day ``t`` uses the ``window`` returns ending at ``t-1`` only
    (historical quantile, or Gaussian mean/std), so it is a true out-of-sample check.

    Parameters
    ----------
    returns : pandas.Series
        Daily simple returns on a date index, shape ``(n,)``.
    level : float, default 0.99
    window : int, default 500
        Estimation window in days (the first ``window`` days get no forecast).
    method : {"historical", "parametric"}

    Returns
    -------
    VaRBacktest

    Raises
    ------
    ValueError
        Unknown method, bad level, or fewer than ``window + 1`` returns.
    """
    _check_level(level)
    r = pd.Series(returns, dtype="float64").dropna()
    if r.size <= window:
        raise ValueError(f"need more than window={window} returns, got {r.size}")
    roll = r.rolling(int(window))
    if method == "historical":
        var = -roll.quantile(1.0 - level)
    elif method == "parametric":
        var = -(roll.mean() + roll.std(ddof=1) * stats.norm.ppf(1.0 - level))
    else:
        raise ValueError(f"method must be 'historical' or 'parametric', got {method!r}")
    var = var.shift(1)  # forecast for t from data up to t-1
    frame = pd.DataFrame({"return": r, "var": var}).dropna()
    frame["breach"] = frame["return"] < -frame["var"]
    x, n = int(frame["breach"].sum()), len(frame)
    lr, pv = kupiec_pof(x, n, level)
    return VaRBacktest(frame=frame, level=level, breaches=x, n=n, breach_rate=x / n, kupiec_lr=lr,
                       kupiec_pvalue=pv)
