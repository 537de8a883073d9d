"""Selection bias and backtest overfitting: Sharpe ratio, PSR, deflated Sharpe ratio, PBO by CSCV.

Pure functions on numpy and pandas (the Normal CDF and quantile come from the standard
library: see ``_NORMAL``). Every Sharpe ratio here is **per period** (per day for daily
returns) unless a function says otherwise: the formulas of the papers below are written for
non-annualised Sharpe ratios and the number of observations ``T`` of the same frequency.
Convert an annualised Sharpe ratio ``SR_a`` of daily returns with ``SR_a / sqrt(250)`` and an
annualised variance of Sharpe ratios ``V_a`` with ``V_a / 250``, as Bailey & López de
Prado (2014) do in their numerical example.

Sources
-------
[PSR]  D. H. Bailey and M. López de Prado (2012), "The Sharpe Ratio Efficient Frontier",
       *Journal of Risk* 15(2), 3-44: the probabilistic Sharpe ratio (Section 3, "Probabilistic
       Sharpe ratio"), built on the asymptotic variance of the Sharpe ratio estimator under
       non-Normal i.i.d. returns, ``(1 - g3*SR + (g4-1)/4*SR^2) / (T-1)`` (Mertens 2002).
[DSR]  D. H. Bailey and M. López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for
       Selection Bias, Backtest Overfitting and Non-Normality", *Journal of Portfolio
       Management* 40(5), 94-107: the deflated Sharpe ratio ``DSR = PSR(SR0)`` with the expected
       maximum Sharpe ratio ``SR0`` of ``N`` independent trials (Section "The Deflated Sharpe
       Ratio", and its numerical example: T = 1250, SR = 2.5 annualised, N = 100,
       V = 0.5 annualised, skewness -3, kurtosis 10 -> SR0 = 0.1132 per day, DSR = 0.9004).
[PBO]  D. H. Bailey, J. M. Borwein, M. López de Prado and Q. J. Zhu (2017), "The Probability of
       Backtest Overfitting", *Journal of Computational Finance* 20(4), 39-69: combinatorially
       symmetric cross-validation (CSCV, Section 2, steps 1-5), the probability of backtest
       overfitting ``PBO = integral of f(lambda) over (-inf, 0]`` and performance degradation
       (Section 3, "Overfit statistics").

Written here because no maintained PyPI implementation could be installed: mlfinlab and
pypbo are not installable from the registry (only an unmaintained 0.0.3 fork, rltrade-pypbo,
2022), and the other DSR / PBO packages there are new 0.x releases without a track record.

The equation numbers of the journal versions are not quoted: the formulas are written out in
each docstring instead, so they can be checked against any version of the papers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from math import sqrt
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "EULER_MASCHERONI",
    "DeflatedSharpe",
    "PBOResult",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "pbo_cscv",
    "probabilistic_sharpe_ratio",
    "return_moments",
    "sharpe_ratio",
]

#: The Euler-Mascheroni constant gamma, as used by [DSR] in ``SR0``.
EULER_MASCHERONI = 0.5772156649015329

# Standard Normal CDF and quantile from the standard library (the quantile is Wichura's AS241,
# ~1e-16): scipy.stats would add ~0.7 s to every import of vfr.config, which imports vfr.metrics.
_NORMAL = NormalDist()


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _finite_float(value: object, name: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out!r}")
    return out


def _int_at_least(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _returns_1d(returns: object, name: str = "returns") -> np.ndarray:
    arr = np.asarray(returns, dtype=float) if not isinstance(returns, pd.Series) else returns.to_numpy(float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size < 2:
        raise ValueError(f"{name} needs at least 2 observations, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values (drop them first)")
    return arr


def _raw_kurtosis(kurtosis: float | None, excess_kurtosis: float | None) -> float:
    """The raw (Pearson, non-excess) kurtosis from exactly one of the two spellings; 3 if neither."""
    if kurtosis is not None and excess_kurtosis is not None:
        raise ValueError("give kurtosis (raw, Normal = 3) or excess_kurtosis (Normal = 0), not both")
    if excess_kurtosis is not None:
        return _finite_float(excess_kurtosis, "excess_kurtosis") + 3.0
    if kurtosis is not None:
        return _finite_float(kurtosis, "kurtosis")
    return 3.0


# --------------------------------------------------------------------------------------------
# Sharpe ratio, moments, PSR
# --------------------------------------------------------------------------------------------
def sharpe_ratio(returns: pd.Series | pd.DataFrame | np.ndarray, periods_per_year: float | None = None
                 ) -> float | pd.Series | np.ndarray:
    """Sharpe ratio of excess returns: sample mean over sample standard deviation (``ddof=1``).

    Parameters
    ----------
    returns : array-like, shape (T,) or (T, N)
        Excess returns per period (simple returns minus the risk-free rate; VFR's long-short
        and top-N returns are used as they are). A 2-D input (or a DataFrame) gives one Sharpe
        ratio per column. No NaN allowed: drop missing periods first.
    periods_per_year : float, optional
        ``None`` (default) returns the per-period Sharpe ratio, the unit every other function
        of this module expects. Given (e.g. 252 for daily returns), the ratio is annualised by
        ``sqrt(periods_per_year)`` (the i.i.d. scaling of Sharpe, 1994, "The Sharpe Ratio",
        *J. Portfolio Management* 21(1)).

    Returns
    -------
    float for a 1-D input; Series (DataFrame input) or ndarray of shape (N,) otherwise.

    Raises
    ------
    ValueError
        ``returns`` has fewer than 2 rows, NaN/inf values, more than 2 dimensions, or a
        column with zero standard deviation; ``periods_per_year`` is not positive.
    """
    if periods_per_year is not None:
        periods_per_year = _finite_float(periods_per_year, "periods_per_year")
        if periods_per_year <= 0:
            raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    scale = 1.0 if periods_per_year is None else sqrt(periods_per_year)
    if isinstance(returns, pd.DataFrame) or np.ndim(returns) == 2:
        arr = returns.to_numpy(float) if isinstance(returns, pd.DataFrame) else np.asarray(returns, float)
        if arr.shape[0] < 2:
            raise ValueError(f"returns needs at least 2 rows, got {arr.shape[0]}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("returns contains NaN or infinite values (drop them first)")
        sd = arr.std(axis=0, ddof=1)
        if np.any(sd == 0):
            raise ValueError("returns has a column with zero standard deviation (Sharpe ratio undefined)")
        out = arr.mean(axis=0) / sd * scale
        return pd.Series(out, index=returns.columns, name="sharpe") if isinstance(returns, pd.DataFrame) else out
    arr = _returns_1d(returns)
    sd = arr.std(ddof=1)
    if sd == 0:
        raise ValueError("returns has zero standard deviation (Sharpe ratio undefined)")
    return float(arr.mean() / sd * scale)


def return_moments(returns: pd.Series | np.ndarray) -> tuple[float, float]:
    """Sample skewness and raw (non-excess) kurtosis of a return series, as [PSR] and [DSR] use them.

    ``g3 = m3 / m2^(3/2)`` and ``g4 = m4 / m2^2`` with the central sample moments
    ``m_k = mean((r - mean(r))^k)`` (no small-sample correction: these moment estimators
    always satisfy ``g4 >= 1 + g3^2``, which the bias-corrected ones need not).

    Parameters
    ----------
    returns : array-like, shape (T,)
        Returns per period, no NaN, not constant.

    Returns
    -------
    (skew, kurtosis) : tuple of float
        Kurtosis is raw: 3 for a Normal distribution.

    Raises
    ------
    ValueError
        Fewer than 2 observations, NaN/inf values, or constant returns.
    """
    arr = _returns_1d(returns)
    if arr.std() == 0:
        raise ValueError("returns is constant: skewness and kurtosis are undefined")
    dev = arr - arr.mean()
    m2, m3, m4 = (dev ** 2).mean(), (dev ** 3).mean(), (dev ** 4).mean()
    return float(m3 / m2 ** 1.5), float(m4 / m2 ** 2)


def _psr_z(sr: float, sr_benchmark: float, n_obs: int, skew: float, kurt: float) -> float:
    """The statistic inside the Normal CDF of [PSR] (and of [DSR] with sr_benchmark = SR0)."""
    if kurt < 1.0 + skew ** 2 - 1e-12:
        raise ValueError(
            f"kurtosis must be the raw (non-excess) kurtosis, >= 1 + skew^2 = {1 + skew ** 2:g} for any "
            f"distribution (Pearson's inequality); got kurtosis={kurt:g} with skew={skew:g} "
            "(pass excess_kurtosis= for an excess value)")
    # With kurt >= 1 + skew^2 the factor is >= (1 - skew*sr/2)^2 >= 0; it vanishes only for a
    # two-point distribution (kurt = 1 + skew^2) at sr = 2/skew, where the estimator has no spread.
    var_factor = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr ** 2
    if var_factor <= 0:
        raise ValueError(
            f"1 - skew*sr + (kurtosis-1)/4*sr^2 = {var_factor:g} <= 0 (sr={sr:g}, skew={skew:g}, "
            f"kurtosis={kurt:g}): the Sharpe ratio's standard error vanishes, the PSR is undefined")
    return (sr - sr_benchmark) * sqrt(n_obs - 1) / sqrt(var_factor)


def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float, n_obs: int, skew: float = 0.0,
                               kurtosis: float | None = None, *, excess_kurtosis: float | None = None) -> float:
    """Probabilistic Sharpe ratio: probability that the true Sharpe ratio exceeds a benchmark.

    [PSR] (Bailey & López de Prado 2012, Section 3)::

        PSR(SR*) = Z[ (SR - SR*) * sqrt(T - 1) / sqrt(1 - g3*SR + (g4 - 1)/4 * SR^2) ]

    with ``Z`` the standard Normal CDF, ``SR`` the observed per-period Sharpe ratio over ``T``
    observations, ``g3`` the skewness and ``g4`` the **raw** kurtosis of the returns (3 for a
    Normal distribution; ``(g4 - 1)/4 = 1/2`` then gives Lo's (2002) i.i.d. Normal variance).

    Parameters
    ----------
    sr : float
        Observed Sharpe ratio, per period (not annualised).
    sr_benchmark : float
        Benchmark Sharpe ratio ``SR*``, per period (0 tests "better than cash").
    n_obs : int
        Number of return observations ``T`` behind ``sr`` (>= 2).
    skew : float
        Skewness ``g3`` of the returns (0 for Normal).
    kurtosis : float, optional
        Raw (non-excess, Pearson) kurtosis ``g4``; 3 for Normal.
    excess_kurtosis : float, optional, keyword-only
        Alternative to ``kurtosis``: ``g4 - 3`` (scipy's default ``fisher=True``). Give at most
        one of the two; with neither, returns are taken as Normal (``g4 = 3``).

    Returns
    -------
    float in [0, 1].

    Raises
    ------
    ValueError
        Non-finite inputs, ``n_obs < 2``, both kurtosis spellings given, a kurtosis below
        ``1 + skew^2`` (impossible for any distribution: usually an excess kurtosis passed as
        raw), or a zero variance factor (a two-point distribution with ``sr = 2/skew``).
    """
    sr = _finite_float(sr, "sr")
    sr_benchmark = _finite_float(sr_benchmark, "sr_benchmark")
    n_obs = _int_at_least(n_obs, "n_obs", 2)
    skew = _finite_float(skew, "skew")
    kurt = _raw_kurtosis(kurtosis, excess_kurtosis)
    return _NORMAL.cdf(_psr_z(sr, sr_benchmark, n_obs, skew, kurt))


# --------------------------------------------------------------------------------------------
# Deflated Sharpe ratio
# --------------------------------------------------------------------------------------------
def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``N`` independent trials whose true Sharpe ratio is zero.

    [DSR] (Bailey & López de Prado 2014), the rejection threshold of the deflated Sharpe ratio::

        SR0 = sqrt(V[{SR_n}]) * ( (1 - gamma) * Z^-1[1 - 1/N] + gamma * Z^-1[1 - 1/(N e)] )

    with ``gamma`` the Euler-Mascheroni constant, ``Z^-1`` the standard Normal quantile and
    ``e`` Euler's number (the extreme-value approximation of ``E[max]`` of ``N`` i.i.d. Normal
    draws of Bailey, Borwein, López de Prado & Zhu 2014, "Pseudo-Mathematics and Financial
    Charlatanism", *Notices of the AMS* 61(5), Proposition 1). It is asymptotic: for
    ``N = 100`` it is 2.531 standard deviations against an exact 2.508 (+0.9 %).

    Parameters
    ----------
    n_trials : int
        Number ``N`` of independent trials (configurations) tried, >= 1. ``N = 1`` returns 0
        exactly (the expectation of one zero-mean draw; the formula is undefined there).
    sr_variance : float
        Variance across the trials of their Sharpe ratios, ``V[{SR_n}]``, in the squared unit
        of the Sharpe ratio compared with the result (per-period: an annualised variance of
        daily Sharpe ratios divided by 250), >= 0.

    Returns
    -------
    float
        ``SR0`` in the unit of ``sqrt(sr_variance)``.

    Raises
    ------
    ValueError
        ``n_trials`` not an integer >= 1, ``sr_variance`` negative or not finite.
    """
    n_trials = _int_at_least(n_trials, "n_trials", 1)
    sr_variance = _finite_float(sr_variance, "sr_variance")
    if sr_variance < 0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance}")
    if n_trials == 1:
        return 0.0
    g = EULER_MASCHERONI
    z = (1 - g) * _NORMAL.inv_cdf(1 - 1 / n_trials) + g * _NORMAL.inv_cdf(1 - 1 / (n_trials * np.e))
    return float(sqrt(sr_variance) * z)


@dataclass(frozen=True)
class DeflatedSharpe:
    """Result of :func:`deflated_sharpe_ratio`; all Sharpe ratios per period.

    Attributes
    ----------
    dsr : float
        Deflated Sharpe ratio, a probability in [0, 1]: ``PSR(SR0)``.
    sr : float
        Observed Sharpe ratio of the selected trial.
    sr0 : float
        Expected maximum Sharpe ratio of ``n_trials`` zero-skill trials (:func:`expected_max_sharpe`).
    z : float
        The standardised statistic whose Normal CDF is ``dsr``.
    n_obs : int
        Observations ``T`` behind ``sr``.
    skew, kurtosis : float
        Skewness and raw kurtosis of the selected trial's returns.
    n_trials : int
        Number of trials ``N``.
    sr_variance : float
        Variance of the Sharpe ratios across the trials.
    """

    dsr: float
    sr: float
    sr0: float
    z: float
    n_obs: int
    skew: float
    kurtosis: float
    n_trials: int
    sr_variance: float


def deflated_sharpe_ratio(returns: pd.Series | np.ndarray | None = None, *, n_trials: int, sr_variance: float,
                          sr: float | None = None, n_obs: int | None = None, skew: float | None = None,
                          kurtosis: float | None = None, excess_kurtosis: float | None = None) -> DeflatedSharpe:
    """Deflated Sharpe ratio: the PSR of the selected trial against the expected maximum of ``N`` trials.

    [DSR] (Bailey & López de Prado 2014)::

        DSR = PSR(SR0) = Z[ (SR - SR0) * sqrt(T - 1) / sqrt(1 - g3*SR + (g4 - 1)/4 * SR^2) ]

    with ``SR0`` from :func:`expected_max_sharpe` (``n_trials``, ``sr_variance``). Give either
    the selected trial's ``returns`` (its per-period Sharpe ratio, ``T``, skewness and raw
    kurtosis are then measured by :func:`sharpe_ratio` and :func:`return_moments`), or its
    statistics ``sr`` and ``n_obs`` (with ``skew`` and one kurtosis spelling; Normal if omitted).

    Parameters
    ----------
    returns : array-like, shape (T,), optional
        Per-period excess returns of the selected trial (no NaN).
    n_trials : int, keyword-only
        Number of independent trials ``N`` behind the selection (>= 1), e.g. the trials
        register's count (:func:`vfr.research.trials.n_trials`).
    sr_variance : float, keyword-only
        Variance across trials of their per-period Sharpe ratios (``V[{SR_n}]``, >= 0), e.g.
        ``sharpe_ratio(trial_returns).var(ddof=1)``.
    sr, n_obs, skew : optional, keyword-only
        The selected trial's per-period Sharpe ratio, observations and skewness, when
        ``returns`` is not given.
    kurtosis, excess_kurtosis : float, optional, keyword-only
        Raw or excess kurtosis (at most one), when ``returns`` is not given.

    Returns
    -------
    DeflatedSharpe
        ``dsr`` and its parts.

    Raises
    ------
    ValueError
        Both or neither of ``returns`` and ``sr``; ``sr`` without ``n_obs``; moments given
        together with ``returns``; and the errors of :func:`probabilistic_sharpe_ratio` and
        :func:`expected_max_sharpe`.

    Examples
    --------
    The numerical example of [DSR]: 5 years of daily returns, annualised SR 2.5 selected out of
    100 trials whose annualised Sharpe ratios have variance 0.5, skewness -3, kurtosis 10:

    >>> r = deflated_sharpe_ratio(sr=2.5 / 250 ** 0.5, n_obs=1250, skew=-3, kurtosis=10,
    ...                           n_trials=100, sr_variance=0.5 / 250)
    >>> round(r.sr0, 4), round(r.dsr, 4)
    (0.1132, 0.9004)
    """
    if (returns is None) == (sr is None):
        raise ValueError("give either returns or sr (with n_obs), not both and not neither")
    if returns is not None:
        if any(v is not None for v in (n_obs, skew, kurtosis, excess_kurtosis)):
            raise ValueError("n_obs, skew and kurtosis are measured from returns: do not pass them with returns")
        arr = _returns_1d(returns)
        sr_value = float(sharpe_ratio(arr))
        n = int(arr.size)
        g3, g4 = return_moments(arr)
    else:
        if n_obs is None:
            raise ValueError("n_obs is required with sr")
        sr_value = _finite_float(sr, "sr")
        n = _int_at_least(n_obs, "n_obs", 2)
        g3 = 0.0 if skew is None else _finite_float(skew, "skew")
        g4 = _raw_kurtosis(kurtosis, excess_kurtosis)
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    z = _psr_z(sr_value, sr0, n, g3, g4)
    return DeflatedSharpe(dsr=_NORMAL.cdf(z), sr=sr_value, sr0=sr0, z=float(z), n_obs=n,
                          skew=g3, kurtosis=g4, n_trials=int(n_trials), sr_variance=float(sr_variance))


# --------------------------------------------------------------------------------------------
# Probability of backtest overfitting (CSCV)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PBOResult:
    """Result of :func:`pbo_cscv`; arrays have one entry per combination ``c`` (``C(S, S/2)`` of them).

    Attributes
    ----------
    pbo : float
        Probability of backtest overfitting: share of combinations with ``logit <= 0``, i.e. the
        trial best in-sample ranks at or below the median out-of-sample.
    logits : ndarray, shape (C,)
        ``lambda_c = ln(w_c / (1 - w_c))``.
    relative_ranks : ndarray, shape (C,)
        ``w_c = rank / (N + 1)`` in (0, 1) of the in-sample best trial among the ``N`` trials
        out of sample (rank 1 = worst, N = best; ties get their average rank).
    best_trial : ndarray of int, shape (C,)
        Column position ``n*`` of the in-sample best trial (first one on ties).
    is_performance, oos_performance : ndarray, shape (C,)
        Metric of trial ``n*`` in-sample and out-of-sample (the pairs of the degradation plot).
    degradation_slope, degradation_intercept : float
        OLS fit ``oos = intercept + slope * is`` over the combinations (NaN if the in-sample
        values are all equal); a negative slope is the paper's sign of overfitting.
    prob_oos_loss : float
        Share of combinations where ``oos_performance < 0``.
    trials : Index
        The trial names (columns of the performance matrix).
    n_splits : int
        ``S``.
    n_obs_used : int
        Rows used, a multiple of ``S`` (the oldest ``T mod S`` rows are dropped).
    """

    pbo: float
    logits: np.ndarray
    relative_ranks: np.ndarray
    best_trial: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    degradation_slope: float
    degradation_intercept: float
    prob_oos_loss: float
    trials: pd.Index
    n_splits: int
    n_obs_used: int

    @property
    def n_combinations(self) -> int:
        """Number of CSCV combinations, ``C(S, S/2)``."""
        return int(self.logits.size)

    def best_trial_counts(self) -> pd.Series:
        """How often each trial was the in-sample best, by trial name (descending)."""
        names = self.trials[self.best_trial]
        return pd.Series(names).value_counts().rename("count")


Metric = Literal["sharpe", "mean"] | Callable[[np.ndarray], np.ndarray]


def _split_metric_fast(blocks: np.ndarray, sel: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """IS and OOS metric of every trial for every combination, from per-block sufficient statistics.

    ``blocks``: (S, m, N) returns; ``sel``: (C, S) bool, True = in-sample block. The sample
    variance of a union of ``n`` rows is ``(sum y^2 - (sum y)^2 / n) / (n - 1)`` for
    ``y = x - k`` and any constant ``k``; ``k`` is each column's full-sample mean, so that the
    subtraction does not lose precision. The mean is ``k + sum y / n``.
    """
    s, m, _ = blocks.shape
    shift = blocks.mean(axis=(0, 1))  # (N,)
    centred = blocks - shift
    sums, sumsq = centred.sum(axis=1), (centred ** 2).sum(axis=1)  # (S, N)
    n = (s // 2) * m
    out = []
    for mask in (sel, ~sel):
        w = mask.astype(float)
        tot, tot2 = w @ sums, w @ sumsq  # (C, N)
        mean = shift + tot / n
        if metric == "mean":
            out.append(mean)
            continue
        var = (tot2 - tot * tot / n) / (n - 1)
        if np.any(var <= 0):
            raise ValueError("performance_matrix has a trial with zero variance in a half of the sample "
                             "(Sharpe ratio undefined); drop constant trials or use metric='mean'")
        out.append(mean / np.sqrt(var))
    return out[0], out[1]


def pbo_cscv(performance_matrix: pd.DataFrame | np.ndarray, n_splits: int = 16, metric: Metric = "sharpe"
             ) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

    [PBO] (Bailey, Borwein, López de Prado & Zhu 2017, Section 2):

    1. ``M`` is the T x N matrix of per-period performance (returns) of the N trials.
    2. Its rows are cut, in time order, into ``S`` disjoint blocks of ``T/S`` rows.
    3. Every combination ``c`` of ``S/2`` blocks (``C(S, S/2)`` of them) is a training set
       ``J`` (blocks joined in time order); the other ``S/2`` blocks are its test set ``J-bar``.
    4. For each ``c``: the metric ``R^c`` of each trial on ``J`` and ``R-bar^c`` on ``J-bar``;
       ``n* = argmax R^c``; the relative rank ``w_c = rank(R-bar^c_{n*}) / (N + 1)`` of ``n*``
       among the ``N`` trials out of sample; its logit ``lambda_c = ln(w_c / (1 - w_c))``.
    5. ``PBO = integral over (-inf, 0] of f(lambda)``: the share of combinations whose
       ``lambda_c <= 0`` (the in-sample winner is at or below the out-of-sample median).

    Section 3's performance degradation is the regression of the out-of-sample metric of
    ``n*`` on its in-sample metric over the combinations, and its probability of loss is the
    share of negative out-of-sample values. With N even and exchangeable, independent
    zero-skill trials, ``w_c`` is uniform on the N ranks and ``E[PBO] = 1/2`` exactly.

    Parameters
    ----------
    performance_matrix : DataFrame or ndarray, shape (T, N)
        Per-period returns (or P&L) of N >= 2 trials, rows in time order, no NaN; columns are
        the trials. ``T >= n_splits``; the oldest ``T mod n_splits`` rows are dropped so that
        all blocks have the same length (as the paper requires).
    n_splits : int
        ``S``, even, >= 2 (the paper uses 16: 12,870 combinations).
    metric : {"sharpe", "mean"} or callable
        Performance statistic of a trial on a set of rows: ``"sharpe"`` (per-period Sharpe
        ratio, ``ddof=1``, the paper's choice) or ``"mean"``, both computed exactly from
        per-block sums; or a function mapping a (rows, N) ndarray to an (N,) ndarray, called
        twice per combination (slow for S = 16).

    Returns
    -------
    PBOResult

    Raises
    ------
    ValueError
        ``performance_matrix`` not 2-D, fewer than 2 trials, NaN/inf values, fewer rows than
        ``n_splits``, or (metric ``"sharpe"``) a trial constant on half the sample;
        ``n_splits`` odd or < 2; an unknown ``metric``, or a callable returning the wrong shape
        or non-finite values.
    """
    if isinstance(performance_matrix, pd.DataFrame):
        trials = performance_matrix.columns
        arr = performance_matrix.to_numpy(float)
    else:
        arr = np.asarray(performance_matrix, dtype=float)
        trials = pd.RangeIndex(arr.shape[1]) if arr.ndim == 2 else pd.RangeIndex(0)
    if arr.ndim != 2:
        raise ValueError(f"performance_matrix must be 2-D (T periods x N trials), got shape {arr.shape}")
    t_obs, n_trials = arr.shape
    if n_trials < 2:
        raise ValueError(f"performance_matrix needs at least 2 trials (columns), got {n_trials}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("performance_matrix contains NaN or infinite values (CSCV needs a full, aligned matrix)")
    n_splits = _int_at_least(n_splits, "n_splits", 2)
    if n_splits % 2:
        raise ValueError(f"n_splits must be even, got {n_splits}")
    if t_obs < n_splits:
        raise ValueError(f"performance_matrix has {t_obs} rows, fewer than n_splits={n_splits}")
    if not (metric in ("sharpe", "mean") or callable(metric)):
        raise ValueError(f"metric must be 'sharpe', 'mean' or a callable, got {metric!r}")

    m = t_obs // n_splits
    used = arr[t_obs - m * n_splits:]
    blocks = used.reshape(n_splits, m, n_trials)
    combos = list(combinations(range(n_splits), n_splits // 2))
    sel = np.zeros((len(combos), n_splits), dtype=bool)
    for i, c in enumerate(combos):
        sel[i, list(c)] = True

    if isinstance(metric, str):
        r_is, r_oos = _split_metric_fast(blocks, sel, metric)
    else:
        r_is = np.empty((len(combos), n_trials))
        r_oos = np.empty_like(r_is)
        for i, mask in enumerate(sel):
            for out, part in ((r_is, blocks[mask]), (r_oos, blocks[~mask])):
                value = np.asarray(metric(part.reshape(-1, n_trials)), dtype=float)
                if value.shape != (n_trials,) or not np.all(np.isfinite(value)):
                    raise ValueError(f"metric must return {n_trials} finite values, got {value!r}")
                out[i] = value

    rows = np.arange(len(combos))
    best = np.argmax(r_is, axis=1)
    is_best, oos_best = r_is[rows, best], r_oos[rows, best]
    below = (r_oos < oos_best[:, None]).sum(axis=1)
    ties = (r_oos == oos_best[:, None]).sum(axis=1)  # includes n* itself
    rank = below + (ties + 1) / 2.0  # average rank, 1 = worst
    w = rank / (n_trials + 1)
    logits = np.log(w / (1 - w))
    if np.ptp(is_best) > 0:
        slope, intercept = np.polyfit(is_best, oos_best, 1)
    else:
        slope = intercept = float("nan")
    return PBOResult(pbo=float(np.mean(logits <= 0)), logits=logits, relative_ranks=w, best_trial=best,
                     is_performance=is_best, oos_performance=oos_best, degradation_slope=float(slope),
                     degradation_intercept=float(intercept), prob_oos_loss=float(np.mean(oos_best < 0)),
                     trials=pd.Index(trials), n_splits=n_splits, n_obs_used=int(used.shape[0]))
