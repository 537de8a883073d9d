"""Portfolio optimisation with ML expected returns (PyPortfolioOpt).

Expected returns from a model's cross-sectional score follow Grinold's "alpha = volatility
x IC x score" rule (R. Grinold, "Alpha is volatility times IC times score", *Journal of
Portfolio Management* 20(4), 1994); the covariance is the Ledoit-Wolf shrunk sample
covariance (O. Ledoit, M. Wolf, "Honey, I shrunk the sample covariance matrix", *JPM* 30(4),
2004). Optimisers: max Sharpe and min volatility (Markowitz mean-variance, solved by
PyPortfolioOpt's ``EfficientFrontier`` through cvxpy) and hierarchical risk parity
(M. Lopez de Prado, "Building diversified portfolios that outperform out of sample", *JPM*
42(4), 2016; ``HRPOpt``).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["METHODS", "ml_expected_returns", "optimize_weights"]

METHODS = ("max_sharpe", "min_volatility", "hrp")


def ml_expected_returns(score: pd.Series, volatility: pd.Series, *, ic: float = 0.05) -> pd.Series:
    r"""Annual expected (active) returns from a cross-sectional score.

    .. math:: \alpha_i = IC \cdot \sigma_i \cdot z_i, \qquad
              z_i = \frac{s_i - \bar s}{sd(s)}

    Parameters
    ----------
    score : pandas.Series
        Symbol -> score (e.g. the walk-forward probability of beating the universe).
    volatility : pandas.Series
        Symbol -> annualised volatility (fraction).
    ic : float, default 0.05
        Information coefficient of the score (e.g. its measured mean Rank IC).

    Returns
    -------
    pandas.Series
        Symbol -> expected annual return (fraction), for symbols with both inputs.

    Raises
    ------
    ValueError
        Fewer than 2 symbols with both inputs, or a constant score.
    """
    df = pd.concat([pd.Series(score, dtype="float64"), pd.Series(volatility, dtype="float64")], axis=1,
                   join="inner").dropna()
    if len(df) < 2 or df.iloc[:, 0].std() == 0:
        raise ValueError("need at least 2 symbols with a non-constant score and a volatility")
    z = (df.iloc[:, 0] - df.iloc[:, 0].mean()) / df.iloc[:, 0].std()
    return (ic * df.iloc[:, 1] * z).rename("expected_return")


def _bounded(w: pd.Series, lo: float, hi: float) -> pd.Series:
    """Project weights summing to 1 onto ``[lo, hi]`` keeping the sum (water-filling)."""
    w = w.clip(lo, hi)
    for _ in range(len(w) * 2):
        gap = 1.0 - w.sum()
        if abs(gap) < 1e-12:
            break
        free = (w < hi - 1e-12) if gap > 0 else (w > lo + 1e-12)
        if not free.any():
            break
        w[free] += gap / free.sum()
        w = w.clip(lo, hi)
    return w


def optimize_weights(expected: pd.Series, returns: pd.DataFrame, *, method: str = "max_sharpe",
                     weight_bounds: tuple[float, float] = (0.0, 0.1), risk_free_rate: float = 0.0) -> pd.Series:
    """Long-only weights from ML expected returns and a shrunk covariance.

    Parameters
    ----------
    expected : pandas.Series
        Symbol -> expected annual return (e.g. :func:`ml_expected_returns`); ignored by
        ``min_volatility`` and ``hrp``.
    returns : pandas.DataFrame
        Past daily simple returns, shape ``(n_days, n_symbols)`` (data up to the decision
        date only); columns with more than 20 % missing values are dropped, the rest 0-filled.
    method : {"max_sharpe", "min_volatility", "hrp"}
    weight_bounds : (float, float), default (0, 0.1)
        Bounds on each weight. HRP has no native bounds: its weights are projected onto
        the bounds by water-filling (sum kept at 1).
    risk_free_rate : float, default 0.0
        Annual, for max Sharpe.

    Returns
    -------
    pandas.Series
        Symbol -> weight, feasible: sums to 1 and within ``weight_bounds`` (to 1e-6).

    Raises
    ------
    ValueError
        Unknown method, infeasible bounds (``n * hi < 1``), or max Sharpe with no expected
        return above the risk-free rate.
    """
    from pypfopt import EfficientFrontier, HRPOpt
    from pypfopt.risk_models import CovarianceShrinkage

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    lo, hi = weight_bounds
    keep = returns.columns[returns.notna().mean() >= 0.8]
    if method != "hrp":
        keep = keep.intersection(pd.Index(expected.dropna().index))
    rets = returns[keep].fillna(0.0)
    n = len(keep)
    if n < 2 or n * hi < 1 - 1e-12 or n * lo > 1 + 1e-12:
        raise ValueError(f"infeasible: {n} assets with bounds {weight_bounds}")
    if method == "hrp":
        w = pd.Series(HRPOpt(rets).optimize(), dtype="float64")
        w = _bounded(w, lo, hi)
    else:
        cov = CovarianceShrinkage(rets, returns_data=True, frequency=252).ledoit_wolf()
        ef = EfficientFrontier(expected.reindex(keep), cov, weight_bounds=(lo, hi))
        if method == "max_sharpe":
            if not (expected.reindex(keep) > risk_free_rate).any():
                raise ValueError("max_sharpe needs an expected return above the risk-free rate")
            ef.max_sharpe(risk_free_rate=risk_free_rate)
        else:
            ef.min_volatility()
        w = pd.Series(ef.clean_weights(cutoff=1e-6, rounding=None), dtype="float64")
        w = _bounded(w / w.sum(), lo, hi)
    w.index.name = "symbol"
    return w.rename("weight").sort_values(ascending=False)
