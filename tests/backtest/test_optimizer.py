"""The cost-aware optimiser (issue 14, item 4): its pure functions against closed forms and
scikit-learn, and the optimised book in the engine (constraints, the turnover penalty, the
names it may hold, configuration errors). No look-ahead is in test_construction.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri
from sklearn.covariance import LedoitWolf

from tests.backtest.test_construction import long_frame
from tests.backtest.test_engine_features import random_market
from vfr.backtest import BacktestConfig, CostModel, run_backtest
from vfr.backtest.optimizer import cost_aware_weights, grinold_alpha, shrunk_covariance_factor
from vfr.config import Settings


def test_grinold_alpha_by_hand():
    score = np.array([0.3, -2.0, 5.0, 0.3])  # a tie: average rank
    sigma = np.array([0.02, 0.04, 0.01, 0.03])
    ranks = np.array([2.5, 1.0, 4.0, 2.5])
    want = 0.05 * sigma * ndtri((ranks - 0.5) / 4)
    np.testing.assert_allclose(grinold_alpha(score, sigma, ic=0.05), want, rtol=1e-12)
    assert grinold_alpha(score, sigma, ic=0.05)[2] > 0 > grinold_alpha(score, sigma, ic=0.05)[1]
    with pytest.raises(ValueError, match="sigma"):
        grinold_alpha(score, sigma[:3], ic=0.05)
    with pytest.raises(ValueError, match="finite"):
        grinold_alpha(np.array([1.0, np.nan]), np.array([0.1, 0.1]), ic=0.05)


def test_shrunk_covariance_factor_equals_scikit_learns_ledoit_wolf():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.02, (60, 12)) + rng.normal(0, 0.01, (60, 1))  # a common factor
    f, d = shrunk_covariance_factor(x, n_factors=None)
    np.testing.assert_allclose(f.T @ f + np.diag(d), LedoitWolf().fit(x).covariance_, rtol=1e-9, atol=1e-14)
    f3, d3 = shrunk_covariance_factor(x, n_factors=3)
    assert f3.shape == (3, 12) and (d3 > 0).all()
    # the diagonal stays exact with fewer components; the first one carries the common factor
    np.testing.assert_allclose(np.diag(f3.T @ f3) + d3, np.diag(LedoitWolf().fit(x).covariance_), rtol=1e-9)
    # NaN = not observed: the column's mean, so it adds nothing to any covariance
    y = x.copy()
    y[:10, 0] = np.nan
    fy, dy = shrunk_covariance_factor(y, n_factors=None)
    assert np.isfinite(fy).all() and np.isfinite(dy).all()
    with pytest.raises(ValueError, match="no observation"):
        shrunk_covariance_factor(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="T >= 2"):
        shrunk_covariance_factor(x[:1])


def _risk(n=8, seed=1):
    rng = np.random.default_rng(seed)
    return shrunk_covariance_factor(rng.normal(0, 0.02, (120, n)) + rng.normal(0, 0.01, (120, 1)), n_factors=None)


def test_cost_aware_weights_matches_the_closed_form_when_no_bound_binds():
    """Without costs and bounds the optimum is b + Sigma^-1 (alpha - l 1) / gamma, l so that
    the weights sum to one (the Lagrange condition)."""
    f, d = _risk()
    sigma = f.T @ f + np.diag(d)
    alpha = np.linspace(-1e-4, 1e-4, 8)
    gamma = 50.0
    got = cost_aware_weights(alpha, (f, d), np.zeros(8), risk_aversion=gamma, cost=0.0)
    inv = np.linalg.inv(sigma)
    lam = (inv @ alpha).sum() / inv.sum()
    want = np.full(8, 1 / 8) + inv @ (alpha - lam) / gamma
    assert (want > 0.01).all()  # no bound binds
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_cost_aware_weights_corner_cases():
    f, d = _risk()
    alpha = np.array([5, 1, 7, 3, 8, 2, 6, 4], dtype=float) * 1e-3
    # no risk aversion, no cost: all weight on the best alphas, up to the cap
    lp = cost_aware_weights(alpha, (f, d), np.zeros(8), risk_aversion=0.0, cost=0.0, max_weight=0.25)
    np.testing.assert_allclose(lp, np.where(alpha >= 5e-3, 0.25, 0.0), atol=1e-6)
    # a prohibitive cost keeps a feasible current book
    current = np.array([0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    stay = cost_aware_weights(alpha, (f, d), current, risk_aversion=50.0, cost=1.0, max_weight=0.25)
    np.testing.assert_allclose(stay, current, atol=1e-6)
    # a very risk-averse optimiser holds the benchmark
    bench = cost_aware_weights(alpha, (f, d), np.zeros(8), risk_aversion=1e9, cost=0.0)
    np.testing.assert_allclose(bench, np.full(8, 1 / 8), atol=1e-5)
    # a turnover penalty moves less than no penalty
    free = cost_aware_weights(alpha, (f, d), current, risk_aversion=5.0, cost=0.0, max_weight=0.25)
    some = cost_aware_weights(alpha, (f, d), current, risk_aversion=5.0, cost=2e-3, max_weight=0.25)
    assert np.abs(some - current).sum() < np.abs(free - current).sum()
    assert some.sum() == pytest.approx(1.0) and (some >= 0).all() and some.max() <= 0.25 + 1e-9
    with pytest.raises(ValueError, match="cannot hold"):
        cost_aware_weights(alpha, (f, d), np.zeros(8), risk_aversion=1.0, cost=0.0, max_weight=0.1)
    with pytest.raises(ValueError, match="agree on n"):
        cost_aware_weights(alpha[:7], (f, d), np.zeros(7), risk_aversion=1.0, cost=0.0)
    with pytest.raises(ValueError, match="risk_aversion"):
        cost_aware_weights(alpha, (f, d), np.zeros(8), risk_aversion=-1.0, cost=0.0)


def test_optimized_book_in_the_engine():
    prices, scores, sectors = random_market(n_sym=30, n_days=200, seed=4)
    cfg = BacktestConfig(weighting="optimized", rebalance_every=5, cov_lookback=40, max_weight=0.1,
                         risk_aversion=5.0, costs=CostModel(slippage_bps=10.0))
    res = run_backtest(prices, scores, cfg)
    per_entry = res.weights.groupby("date")["weight"]
    np.testing.assert_allclose(per_entry.sum(), 1.0, atol=1e-9)
    assert res.weights["weight"].max() <= 0.1 + 1e-9 and (res.weights["weight"] > 0).all()
    # the optimiser weighs the whole universe, not a top-N: far more than top_n names per book
    assert per_entry.size().median() > cfg.top_n / 2 + 5
    assert res.params["weighting"] == "optimized" and res.params["risk_aversion"] == 5.0
    assert res.params["top_n"] is None and res.params["buffer_n"] is None  # an optimised book uses neither
    # the turnover penalty trades less than the cost-blind optimiser, and the costs are charged
    blind = run_backtest(prices, scores, dataclasses.replace(cfg, turnover_penalty=0.0))
    assert res.daily["turnover"].sum() < 0.8 * blind.daily["turnover"].sum()
    np.testing.assert_allclose(res.daily["cost"], res.daily["turnover"] * 10e-4, atol=1e-15)
    # a sector cap still binds after the optimiser
    capped = run_backtest(prices, scores, dataclasses.replace(cfg, max_sector_weight=0.34), sectors=sectors)
    by_sector = capped.weights.assign(sector=capped.weights["symbol"].map(sectors)).groupby(
        ["date", "sector"])["weight"].sum()
    assert by_sector.max() <= 0.34 + 1e-9


def test_optimized_book_holds_only_names_with_enough_history():
    """A name listed 10 days before a signal date has too few returns for the covariance and is
    not held, however high its score."""
    n = 60
    dates = pd.bdate_range("2021-01-04", periods=n)
    rng = np.random.default_rng(5)
    close = {s: list(100 * np.cumprod(1 + rng.normal(0, 0.01, n))) for s in "ABCDE"}
    close["NEW"] = [np.nan] * 45 + list(100 * np.cumprod(1 + rng.normal(0, 0.01, 15)))
    prices = long_frame(close, "close", dates)
    scores = long_frame({s: [float(i)] * n for i, s in enumerate(close)}, "score", dates)  # NEW ranks first
    res = run_backtest(prices, scores, BacktestConfig(weighting="optimized", cov_lookback=40, rebalance_every=5,
                                                      start=dates[50]))
    assert "NEW" not in set(res.weights["symbol"]) and res.weights["symbol"].nunique() == 5


def test_optimized_configuration_errors_and_setting():
    with pytest.raises(ValueError, match="long_short"):
        BacktestConfig(weighting="optimized", long_short=True)
    with pytest.raises(ValueError, match="buffer_n"):
        BacktestConfig(weighting="optimized", buffer_n=30)
    with pytest.raises(ValueError, match="cov_lookback"):
        BacktestConfig(weighting="optimized", cov_lookback=5)
    with pytest.raises(ValueError, match="alpha_ic"):
        BacktestConfig(alpha_ic=0.0)
    with pytest.raises(ValueError, match="turnover_penalty"):
        BacktestConfig(turnover_penalty=-1.0)
    opt = BacktestConfig.from_settings(Settings(weighting="optimized"))
    assert opt.weighting == "optimized" and opt.max_weight == 0.05  # the research book's cap
    assert BacktestConfig.from_settings(Settings(), weighting="optimized", max_weight=0.1).max_weight == 0.1
    assert BacktestConfig.from_settings(Settings(weighting="equal")).max_weight is None
    # the settings' default book is the optimiser (eleventh pass); top-N options ask for a top-N book
    assert BacktestConfig.from_settings(Settings()).weighting == "optimized"
    for top_n_book in ({"top_n": 5}, {"quantile": 0.2}, {"long_short": True}, {"buffer_n": 40}):
        cfg = BacktestConfig.from_settings(Settings(), **top_n_book)
        assert cfg.weighting == "equal" and cfg.max_weight is None, top_n_book
    assert BacktestConfig.from_settings(Settings(), quantile=None, long_short=False).weighting == "optimized"
    with pytest.raises(ValueError, match="optimized"):  # asked for both: a clear error
        BacktestConfig.from_settings(Settings(), weighting="optimized", long_short=True)
    assert "risk_aversion" not in BacktestConfig().as_params()  # only an optimised book reports them
