"""Risk: VaR/ES by hand and on long real samples, stress tests, forecasts, optimisation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vfr.data import adjust_prices
from vfr.data.samples import sp500_index_levels
from vfr.risk import (
    STRESS_WINDOWS,
    drawdown_forecast,
    historical_var_es,
    kupiec_pof,
    ml_expected_returns,
    monte_carlo_var_es,
    optimize_weights,
    parametric_var_es,
    portfolio_var,
    sharpe_forecast,
    stress_test,
    var_backtest,
)
from vfr.risk.var import asset_returns


@pytest.fixture(scope="module")
def small_prices(sp500_raw_small) -> pd.DataFrame:
    return adjust_prices(sp500_raw_small)


def test_historical_var_es_by_hand():
    r = pd.Series(np.arange(-10, 90) / 100.0)  # 100 returns -0.10 .. 0.89
    var, es = historical_var_es(r, 0.95)
    # 5 % quantile, linear interpolation at position 99 * 0.05 = 4.95: -0.06 + 0.95 * 0.01 = -0.0505
    assert var == pytest.approx(0.0505)
    assert es == pytest.approx(0.08)  # mean of -0.10 .. -0.06
    with pytest.raises(ValueError):
        historical_var_es(r, 1.5)


def test_parametric_var_es_by_hand():
    r = pd.Series([0.01, -0.01] * 50)  # mean 0, sample sd known
    sd = r.std(ddof=1)
    var, es = parametric_var_es(r, 0.99)
    assert var == pytest.approx(sd * 2.3263478740408408)
    assert es == pytest.approx(sd * stats.norm.pdf(2.3263478740408408) / 0.01)
    var10, _ = parametric_var_es(r, 0.99, horizon=10)
    assert var10 == pytest.approx(var * math.sqrt(10))


def test_monte_carlo_matches_gaussian_formula():
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.multivariate_normal([0.0005, 0.0002], [[4e-4, 1e-4], [1e-4, 1e-4]], size=3000),
                     columns=["A", "B"])
    w = pd.Series({"A": 0.6, "B": 0.4})
    var, es = monte_carlo_var_es(x, w, 0.99, n_sims=200_000, seed=1)
    pvar, pes = parametric_var_es(x @ w, 0.99)
    assert var == pytest.approx(pvar, rel=0.02) and es == pytest.approx(pes, rel=0.02)
    again = monte_carlo_var_es(x, w, 0.99, n_sims=200_000, seed=1)
    assert again == (var, es)  # seeded, no global state


def test_kupiec_by_hand():
    lr, p = kupiec_pof(10, 1000, 0.99)
    assert lr == pytest.approx(0.0, abs=1e-12) and p == pytest.approx(1.0)
    lr, _ = kupiec_pof(20, 1000, 0.99)
    want = -2 * (980 * math.log(0.99) + 20 * math.log(0.01) - 980 * math.log(0.98) - 20 * math.log(0.02))
    assert lr == pytest.approx(want)


def test_var_breach_rate_close_to_level_on_long_sample():
    """S&P 500 1999-2018: ~4,500 out-of-sample one-day forecasts."""
    r = sp500_index_levels().pct_change().dropna()
    bt = var_backtest(r, level=0.95, window=500, method="historical")
    assert bt.n > 4000
    assert 0.04 <= bt.breach_rate <= 0.065
    assert bt.kupiec_pvalue > 0.05  # not rejected at 5 %
    # forecasts use only the past: the forecast of day t equals the quantile of the 500 days before
    t = bt.frame.index[1000]
    pos = r.index.get_loc(t)
    assert bt.frame.loc[t, "var"] == pytest.approx(-np.quantile(r.iloc[pos - 500:pos], 0.05))
    # a too-low level is caught: 80 % VaR forecasts breached ~20 % of the time, not 5 %
    assert var_backtest(r, level=0.8).breach_rate > 0.15


def test_portfolio_var_real_data(small_prices):
    syms = ["AAPL", "MSFT", "JPM", "XOM", "JNJ"]
    w = pd.Series(0.2, index=syms)
    res = portfolio_var(small_prices, w, "2015-06-30", level=0.99, window=500, capital=1e6)
    t = res.table
    assert list(t.index) == ["historical", "parametric", "monte_carlo"]
    assert (t["var"] > 0).all() and (t["es"] >= t["var"]).all()
    assert (t["var"] < 0.1).all() and t["var_usd"].iloc[0] == pytest.approx(t["var"].iloc[0] * 1e6)
    assert res.date == pd.Timestamp("2015-06-30") and res.window == 500
    # nothing after the date is used
    cut = small_prices[small_prices["date"] <= "2015-06-30"]
    assert portfolio_var(cut, w, "2015-06-30").table.equals(portfolio_var(small_prices, w, "2015-06-30").table)
    rets = asset_returns(small_prices, "2015-06-30", 500, syms)
    assert rets.index.max() == pd.Timestamp("2015-06-30") and len(rets) == 500


def test_stress_by_hand():
    dates = pd.bdate_range("2011-07-20", "2011-08-12")
    n = len(dates)
    a = np.linspace(100, 80, n)
    b = np.full(n, 50.0)
    prices = pd.concat([pd.DataFrame({"symbol": "A", "date": dates, "close": a}),
                        pd.DataFrame({"symbol": "B", "date": dates, "close": b})])
    w = pd.Series({"A": 0.5, "B": 0.3, "Z": 0.2})  # Z has no history: equal-weight proxy
    out = stress_test(prices, w, {"w": ("2011-07-22", "2011-08-10")})
    row = out.loc["w"]
    i0 = dates.get_loc(pd.Timestamp("2011-07-21"))
    i1 = dates.get_loc(pd.Timestamp("2011-08-10"))
    ra = a[i1] / a[i0] - 1
    assert row["equal_weight_return"] == pytest.approx(ra / 2)
    assert row["portfolio_return"] == pytest.approx(0.5 * ra + 0.2 * ra / 2)
    assert row["coverage"] == pytest.approx(0.8)


def test_stress_windows_real_data(small_prices):
    w = pd.Series(1 / 20, index=small_prices["symbol"].unique())
    out = stress_test(small_prices, w, benchmark=sp500_index_levels())
    assert set(out.index) == {"August 2011", "August 2015", "2018 Q4"}  # the slice starts 2010
    assert (out["portfolio_return"] < 0).all() and (out["benchmark_return"] < 0).all()
    assert out.loc["2018 Q4", "benchmark_return"] == pytest.approx(-0.19, abs=0.03)
    assert "dot-com 2000-02" in STRESS_WINDOWS and "GFC 2008" in STRESS_WINDOWS


def test_sharpe_forecast_by_hand():
    r = pd.Series([0.01, -0.005, 0.002, 0.004] * 50)
    sr = r.mean() / r.std(ddof=1)
    f = sharpe_forecast(r)
    se = math.sqrt((1 + sr**2 / 2) / 200)
    assert f.sharpe == pytest.approx(sr * math.sqrt(252))
    assert f.std_error == pytest.approx(se * math.sqrt(252))
    assert f.lower == pytest.approx((sr - 1.959963984540054 * se) * math.sqrt(252))


def test_drawdown_forecast_by_hand_and_real():
    f = drawdown_forecast(pd.Series([-0.01] * 100), horizon=50, n_paths=100, block=10)
    assert f.median == pytest.approx(0.99**50 - 1) and f.prob_worse_than[-0.3] == 1.0
    r = sp500_index_levels().pct_change().dropna()
    g = drawdown_forecast(r, horizon=252, n_paths=1000, seed=3)
    assert g.lower < g.median < g.upper < 0
    assert 0 < g.prob_worse_than[-0.2] < 1


@pytest.mark.parametrize("method", ["max_sharpe", "min_volatility", "hrp"])
def test_optimised_weights_are_feasible(small_prices, method):
    rets = asset_returns(small_prices, "2016-12-30", 500)
    vol = rets.std() * math.sqrt(252)
    score = rets.iloc[-21:].sum()  # stand-in score: last month's return (known at the date)
    mu = ml_expected_returns(score, vol, ic=0.05)
    w = optimize_weights(mu, rets, method=method, weight_bounds=(0.0, 0.15))
    assert w.sum() == pytest.approx(1.0, abs=1e-6)
    assert (w >= -1e-9).all() and (w <= 0.15 + 1e-6).all()
    assert len(w) == 20


def test_optimiser_errors(small_prices):
    rets = asset_returns(small_prices, "2016-12-30", 500)
    mu = pd.Series(-0.05, index=rets.columns)
    with pytest.raises(ValueError):
        optimize_weights(mu, rets, method="max_sharpe")
    with pytest.raises(ValueError):
        optimize_weights(mu, rets, method="min_volatility", weight_bounds=(0, 0.01))
    with pytest.raises(ValueError):
        optimize_weights(mu, rets, method="cvar")
