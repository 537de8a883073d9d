"""Cost-aware mean-variance optimiser of a long-only book against the equal-weight universe.

Issue 14, item 4: "an optional cost-aware optimiser (turnover penalty)". A rebalance solves

.. math::

    \\max_w \\; \\alpha^\\top w \\; - \\; \\frac{\\gamma}{2} (w - b)^\\top \\Sigma (w - b)
    \\; - \\; \\kappa \\, c \\, \\lVert w - w_0 \\rVert_1
    \\quad \\text{s.t.} \\quad \\mathbf{1}^\\top w = g, \\; 0 \\le w \\le u

(Grinold and Kahn 2000, *Active Portfolio Management*, 2nd ed., ch. 14: active mean-variance
utility with a transaction-cost term), where ``alpha`` are expected returns over one holding
period, ``b`` the benchmark (equal weight over the optimiser's names), ``Sigma`` the covariance
of the holding period's returns, ``w0`` the previous target, ``c`` the proportional cost per unit
traded and ``kappa`` its multiplier. The quadratic program is solved by cvxpy with Clarabel.

Pure functions on arrays; the engine (:mod:`vfr.backtest.engine`) feeds them data known at
the signal date only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["OptimizerError", "cap_weights", "cost_aware_weights", "grinold_alpha", "shrunk_covariance_factor"]


def cap_weights(w: np.ndarray, cap: float) -> np.ndarray:
    """Cap non-negative weights at ``cap``, redistributing the excess pro rata (water-filling;
    the backtest engine's position limit, and the optimiser's solution cleaned to its bounds).

    The leg's total is preserved when ``n * cap >= total``; otherwise every name sits at the
    cap and the rest stays in cash.
    """
    w = w.copy()
    total = w.sum()
    for _ in range(w.size):
        over = w > cap + 1e-15
        if not over.any():
            break
        w[over] = cap
        free = (w > 0) & (w < cap - 1e-15)
        short = total - w.sum()
        if not free.any() or short <= 0:
            break
        w[free] += short * w[free] / w[free].sum()
    return w


class OptimizerError(RuntimeError):
    """The solver returned no optimal solution (the message names its status)."""


def grinold_alpha(score: np.ndarray, sigma: np.ndarray, *, ic: float) -> np.ndarray:
    """Expected returns from a cross-sectional score: ``alpha_i = IC * sigma_i * z_i``.

    Grinold's "forecasting rule of thumb" (Grinold and Kahn 2000, *Active Portfolio
    Management*, 2nd ed., ch. 10: alpha = volatility x IC x score), with ``z`` the normal
    scores of the score's cross-sectional ranks, ``z_i = Phi^-1((rank_i - 0.5) / n)`` (mean 0,
    robust to the score's scale and outliers).

    Parameters
    ----------
    score : numpy.ndarray
        Scores, shape ``(n,)``, higher = better, all finite (ties get their average rank).
    sigma : numpy.ndarray
        Each name's return volatility over the holding period, shape ``(n,)``, finite, >= 0.
    ic : float
        The information coefficient assumed for the score (e.g. 0.02).

    Returns
    -------
    numpy.ndarray
        Expected returns over the holding period, shape ``(n,)``, same unit as ``sigma``.

    Raises
    ------
    ValueError
        Shapes differ or a value is not finite.
    """
    score, sigma = np.asarray(score, dtype="float64"), np.asarray(sigma, dtype="float64")
    if score.shape != sigma.shape or score.ndim != 1:
        raise ValueError(f"grinold_alpha: score {score.shape} and sigma {sigma.shape} must both be (n,)")
    if not (np.isfinite(score).all() and np.isfinite(sigma).all()):
        raise ValueError("grinold_alpha: score and sigma must be finite")
    n = score.size
    if n == 0:
        return np.zeros(0)
    from scipy.special import ndtri
    from scipy.stats import rankdata

    z = ndtri((rankdata(score) - 0.5) / n)
    return float(ic) * sigma * z


def shrunk_covariance_factor(returns: np.ndarray, *, n_factors: int | None = 20) -> tuple[np.ndarray, np.ndarray]:
    """The Ledoit-Wolf shrunk covariance of ``returns`` as a statistical factor model.

    The estimate is ``Sigma = (1 - delta) S + delta mu I`` with ``S`` the sample covariance,
    ``mu = trace(S) / n`` and ``delta`` the Ledoit-Wolf shrinkage intensity (Ledoit and Wolf
    2004, "A well-conditioned estimator for large-dimensional covariance matrices", J.
    Multivariate Analysis 88(2); ``sklearn.covariance.ledoit_wolf_shrinkage``). It is returned
    as ``(F, d)`` with ``Sigma ~= F.T @ F + diag(d)``: ``F`` holds the ``n_factors`` leading
    principal components of ``(1 - delta) S`` (a statistical factor model, Connor and
    Korajczyk 1986, J. Financial Economics 15(3)) and ``d`` makes the diagonal exact, so a
    quadratic form needs no ``n x n`` matrix. ``n_factors=None`` keeps every component (exact).

    Parameters
    ----------
    returns : numpy.ndarray
        Returns, shape ``(T, n)``, ``T >= 2``; NaN = not observed (each column's NaNs are set to
        its mean, i.e. no information about co-movement).
    n_factors : int, optional
        Principal components kept (>= 1); None = all.

    Returns
    -------
    tuple
        ``F`` shape ``(k, n)`` and ``d`` shape ``(n,)`` (>= 0), in the unit of ``returns`` squared.

    Raises
    ------
    ValueError
        ``returns`` is not 2-D with ``T >= 2``, a column has no observation, or ``n_factors < 1``.
    """
    from sklearn.covariance import ledoit_wolf_shrinkage

    x = np.asarray(returns, dtype="float64")
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"shrunk_covariance_factor: returns must be (T >= 2, n), got {x.shape}")
    if n_factors is not None and n_factors < 1:
        raise ValueError(f"shrunk_covariance_factor: n_factors must be >= 1, got {n_factors}")
    seen = np.isfinite(x)
    if not seen.any(axis=0).all():
        raise ValueError("shrunk_covariance_factor: a column of returns has no observation")
    mean = np.nanmean(x, axis=0)
    xc = np.where(seen, x - mean, 0.0)
    t, n = xc.shape
    delta = float(ledoit_wolf_shrinkage(xc, assume_centered=True)) if n > 1 else 0.0
    sample_var = (xc * xc).sum(axis=0) / t
    mu = float(sample_var.mean())
    _, sv, vt = np.linalg.svd(xc, full_matrices=False)
    k = sv.size if n_factors is None else min(int(n_factors), sv.size)
    factor = np.sqrt((1.0 - delta) / t) * sv[:k, None] * vt[:k]
    resid = np.clip((1.0 - delta) * sample_var - (factor * factor).sum(axis=0), 0.0, None)
    return factor, resid + delta * mu


def cost_aware_weights(alpha: np.ndarray, risk: tuple[np.ndarray, np.ndarray], current: np.ndarray, *,
                       risk_aversion: float, cost: float, gross: float = 1.0,
                       max_weight: float | None = None, benchmark: np.ndarray | None = None) -> np.ndarray:
    """Long-only weights maximising active mean-variance utility net of a turnover penalty.

    Solves ``max alpha'w - risk_aversion / 2 * (w - b)' Sigma (w - b) - cost * |w - current|_1``
    subject to ``sum(w) = gross`` and ``0 <= w <= max_weight`` (see the module docstring;
    Grinold and Kahn 2000, ch. 14). With ``cost = 0`` it is the plain active mean-variance
    portfolio; a larger ``cost`` keeps more of ``current``.

    Parameters
    ----------
    alpha : numpy.ndarray
        Expected returns over the holding period, shape ``(n,)``.
    risk : tuple
        ``(F, d)`` with ``Sigma = F.T @ F + diag(d)`` over the holding period, ``F`` shape
        ``(k, n)``, ``d`` shape ``(n,)`` (:func:`shrunk_covariance_factor`, scaled to the period).
    current : numpy.ndarray
        Weights before the trade, shape ``(n,)`` (the previous target; zeros for a new book).
    risk_aversion : float
        ``gamma`` (>= 0), per unit of the period's variance.
    cost : float
        Penalty per unit of weight traded (e.g. 10 bp = 0.001, times a multiplier), >= 0.
    gross : float
        Sum of the weights (> 0).
    max_weight : float, optional
        Upper bound per name; None = ``gross``.
    benchmark : numpy.ndarray, optional
        ``b``, shape ``(n,)``; None = equal weight ``gross / n``.

    Returns
    -------
    numpy.ndarray
        Weights, shape ``(n,)``, >= 0, summing to ``gross`` (solver tolerance; tiny values set
        to 0 and the rest rescaled).

    Raises
    ------
    ValueError
        Shapes differ, a parameter is out of range, or ``max_weight * n < gross`` (infeasible).
    OptimizerError
        The solver found no optimal solution.
    """
    import cvxpy as cp

    alpha = np.asarray(alpha, dtype="float64")
    current = np.asarray(current, dtype="float64")
    factor, diag = np.asarray(risk[0], dtype="float64"), np.asarray(risk[1], dtype="float64")
    n = alpha.size
    if (alpha.ndim != 1 or current.shape != alpha.shape or factor.ndim != 2 or factor.shape[1] != n
            or diag.shape != alpha.shape):
        raise ValueError(f"cost_aware_weights: alpha {alpha.shape}, current {current.shape}, the risk factor "
                         f"{factor.shape} and its diagonal {diag.shape} must agree on n")
    if not (risk_aversion >= 0 and cost >= 0 and gross > 0 and (diag >= 0).all()):
        raise ValueError(f"cost_aware_weights: need risk_aversion >= 0, cost >= 0, gross > 0, d >= 0; got "
                         f"{risk_aversion}, {cost}, {gross}, min d {diag.min() if n else 0}")
    cap = gross if max_weight is None else float(max_weight)
    if n == 0 or cap * n < gross * (1 - 1e-9):
        raise ValueError(f"cost_aware_weights: {n} names at most {cap:g} each cannot hold gross {gross:g}")
    b = np.full(n, gross / n) if benchmark is None else np.asarray(benchmark, dtype="float64")
    w = cp.Variable(n)
    active = w - b
    variance = cp.sum_squares(factor @ active) + cp.sum(cp.multiply(diag, cp.square(active)))
    utility = alpha @ w - 0.5 * risk_aversion * variance - cost * cp.norm1(w - current)
    problem = cp.Problem(cp.Maximize(utility), [cp.sum(w) == gross, w >= 0, w <= cap])
    try:
        problem.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as exc:
        raise OptimizerError(f"cost_aware_weights: the solver failed ({exc})") from None
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or w.value is None:
        raise OptimizerError(f"cost_aware_weights: no optimal solution (status {problem.status})")
    out = np.clip(np.asarray(w.value, dtype="float64"), 0.0, cap)
    out[out < 1e-6 * gross] = 0.0
    if not out.sum() > 0:
        raise OptimizerError("cost_aware_weights: the solution holds nothing")
    # solver tolerance: rescale to gross, then hold the cap exactly (the excess goes pro rata to the rest)
    return cap_weights(out * (gross / out.sum()), cap)
