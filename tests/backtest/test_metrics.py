"""Metrics against hand computations on tiny series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vfr.backtest import (
    annual_volatility,
    cagr,
    calmar_ratio,
    hit_rate,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    summary_metrics,
    total_return,
    turnover,
)

R = pd.Series([0.1, -0.05, 0.02])


def test_total_return_and_cagr_by_hand():
    growth = 1.1 * 0.95 * 1.02  # 1.0659
    assert total_return(R) == pytest.approx(0.0659, abs=1e-12)
    # three periods = one year when periods_per_year=3: CAGR is the total return
    assert cagr(R, periods_per_year=3) == pytest.approx(0.0659, abs=1e-12)
    # 3 days of 252: growth ** (252 / 3) - 1
    assert cagr(R) == pytest.approx(growth ** 84 - 1, rel=1e-12)
    # six periods a year, three periods = half a year: growth squared
    assert cagr(R, periods_per_year=6) == pytest.approx(growth**2 - 1, rel=1e-12)


def test_max_drawdown_by_hand():
    # equity 1.1, 1.045, 1.0659: trough 1.045 after peak 1.1
    assert max_drawdown(R) == pytest.approx(1.045 / 1.1 - 1, rel=1e-12)
    assert max_drawdown(R) == pytest.approx(-0.05, rel=1e-12)
    # the starting capital counts as a peak: a first-day loss is a drawdown
    assert max_drawdown(pd.Series([-0.1, 0.05])) == pytest.approx(-0.1)
    # two-step loss compounds: 0.9 * 0.8 = 0.72 -> -28 %, then recovery does not matter
    assert max_drawdown(pd.Series([0.2, -0.1, -0.2, 0.5])) == pytest.approx(0.72 - 1)
    assert max_drawdown(pd.Series([0.01, 0.02])) == 0.0


def test_sharpe_and_volatility_by_hand():
    mean = (0.1 - 0.05 + 0.02) / 3  # 0.023333...
    var = ((0.1 - mean) ** 2 + (-0.05 - mean) ** 2 + (0.02 - mean) ** 2) / (3 - 1)
    sd = math.sqrt(var)
    assert annual_volatility(R) == pytest.approx(sd * math.sqrt(252), rel=1e-12)
    assert sharpe_ratio(R) == pytest.approx(mean / sd * math.sqrt(252), rel=1e-12)
    # risk-free per period is subtracted from the mean only (std of excess = std)
    assert sharpe_ratio(R, risk_free=0.01) == pytest.approx((mean - 0.01) / sd * math.sqrt(252), rel=1e-12)
    assert sharpe_ratio(R, periods_per_year=12) == pytest.approx(mean / sd * math.sqrt(12), rel=1e-12)


def test_sortino_by_hand():
    mean = 0.07 / 3
    # downside deviation: root mean of squared negative parts over ALL 3 periods
    dd = math.sqrt((0.0**2 + (-0.05) ** 2 + 0.0**2) / 3)
    assert sortino_ratio(R) == pytest.approx(mean / dd * math.sqrt(252), rel=1e-12)
    # with a target of 2 %: adjusted returns 0.08, -0.07, 0.0
    adj_mean = (0.08 - 0.07 + 0.0) / 3
    dd2 = math.sqrt(((-0.07) ** 2) / 3)
    assert sortino_ratio(R, target=0.02) == pytest.approx(adj_mean / dd2 * math.sqrt(252), rel=1e-12)


def test_calmar_and_hit_rate_by_hand():
    assert calmar_ratio(R) == pytest.approx((1.0659 ** 84 - 1) / 0.05, rel=1e-9)
    assert hit_rate(R) == pytest.approx(2 / 3)
    # NaNs are dropped, zeros are not hits
    assert hit_rate(pd.Series([0.0, np.nan, 0.01, -0.01])) == pytest.approx(1 / 3)


@pytest.mark.parametrize("series", [pd.Series([], dtype="float64"), pd.Series([np.nan, np.nan])])
def test_empty_series_give_nan(series):
    for fn in (total_return, cagr, annual_volatility, sharpe_ratio, sortino_ratio, max_drawdown,
               calmar_ratio, hit_rate):
        assert math.isnan(fn(series)), fn.__name__
    out = summary_metrics(series)
    assert all(math.isnan(v) for k, v in out.items() if k != "n_periods")


def test_constant_series_give_nan_ratios():
    const = pd.Series([0.01] * 10)
    assert math.isnan(sharpe_ratio(const))
    assert math.isnan(sortino_ratio(const))  # no downside
    assert math.isnan(calmar_ratio(const))  # no drawdown
    assert annual_volatility(const) == pytest.approx(0.0, abs=1e-15)
    assert cagr(const, periods_per_year=10) == pytest.approx(1.01**10 - 1)
    assert math.isnan(sharpe_ratio(pd.Series([0.0] * 5)))


def test_turnover_from_weights_frame():
    weights = pd.DataFrame({
        "date": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-07-01", "2020-07-01", "2021-01-01"]),
        "symbol": ["A", "B", "A", "C", "C"],
        "weight": [0.5, 0.5, 0.5, 0.5, 1.0],
    })
    # buy the book (1.0), sell B buy C (0.5 + 0.5 = 1.0), sell A buy C (0.5 + 0.5 = 1.0)
    out = turnover(weights, rebalances_per_year=2)
    assert out.per_rebalance == pytest.approx(1.0)
    assert out.annualised == pytest.approx(2.0)
    # estimated frequency: 2 gaps over 366 days (2020 is a leap year)
    est = turnover(weights)
    assert est.annualised == pytest.approx(1.0 * 2 / (366 / 365.25))


def test_summary_metrics_with_turnover():
    r = pd.Series([0.01, -0.02, 0.03, 0.0])
    t = pd.Series([1.0, 0.0, 0.5, 0.0])
    out = summary_metrics(r, turnover=t, periods_per_year=4)
    assert out["turnover_per_rebalance"] == pytest.approx(0.75)
    assert out["annual_turnover"] == pytest.approx(1.5)  # 1.5 traded in 4 periods = one year
    assert out["sharpe_ratio"] == pytest.approx(sharpe_ratio(r, periods_per_year=4))
    assert out["n_periods"] == 4
