"""Backtest on real S&P 500 prices (skipped cleanly without ../shared/data)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SP500_PRICES, require_shared
from vfr.backtest import BacktestConfig, CostModel, run_backtest
from vfr.ml import ic_by_date


def _prices_and_momentum(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    # adjusted close = close * adjusted_close / close = adjusted_close
    prices = raw[["symbol", "date"]].assign(close=raw["adjusted_close"].to_numpy())
    prices = prices.sort_values(["symbol", "date"], ignore_index=True)
    mom = prices.groupby("symbol", sort=False)["close"].pct_change(20, fill_method=None)
    return prices, prices[["date", "symbol"]].assign(score=mom.to_numpy())


def test_real_data_small(sp500_raw_small):
    from arch.data import sp500

    prices, scores = _prices_and_momentum(sp500_raw_small)
    spx = sp500.load()["Adj Close"].rename("sp500")
    res = run_backtest(prices, scores, BacktestConfig(top_n=5, rebalance_every=5,
                                                      costs=CostModel(slippage_bps=10.0)), benchmark=spx)
    assert len(res.daily) > 2000
    assert np.isfinite(res.daily.to_numpy()).all()
    assert (res.daily["equity"] > 0).all()
    assert res.weights.groupby("date")["weight"].sum().round(12).eq(1.0).all()
    assert res.weights.groupby("date").size().eq(5).all()
    # weekly rebalancing: about 50 entries a year
    assert 45 <= res.weights["date"].nunique() / 10 <= 52
    for name in ("strategy_net", "strategy_gross", "equal_weight", "sp500"):
        m = res.metrics[name]
        assert all(math.isfinite(v) for v in m.values()), (name, m)
    assert res.metrics["sp500"]["n_periods"] < res.metrics["equal_weight"]["n_periods"]  # index ends 2018
    fwd = prices[["date", "symbol"]].assign(
        fwd=prices.groupby("symbol", sort=False)["close"].shift(-5).to_numpy() / prices["close"].to_numpy() - 1)
    ic = ic_by_date(scores.merge(fwd, on=["date", "symbol"]), "score", "fwd")
    assert ic["ic"].between(-1, 1).all() and ic["ic"].notna().mean() > 0.95


@pytest.mark.slow
def test_full_set_runs():
    """The full development set end to end (speed is measured in benchmarks/run.py)."""
    path = require_shared(SP500_PRICES)
    raw = pd.read_parquet(path, columns=["symbol", "date", "adjusted_close"])
    prices, scores = _prices_and_momentum(raw)
    res = run_backtest(prices, scores, BacktestConfig(top_n=20, rebalance_every=5))
    assert np.isfinite(res.daily["equity"]).all()
    assert (res.weights.groupby("date")["weight"].sum() - 1.0).abs().max() < 1e-9
