"""Factor evaluation: forward returns, quantile returns and turnover by hand; IC via vfr.ml."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.backtest import evaluate_factor, forward_returns
from vfr.backtest.factor import quantile_turnover
from vfr.ml import ic_by_date

DATES = pd.bdate_range("2021-01-04", periods=6)


def test_forward_returns_by_hand():
    prices = pd.DataFrame({"symbol": ["A"] * 4, "date": DATES[:4], "close": [10.0, 11.0, 12.1, 9.0]})
    f = forward_returns(prices, (1, 2))
    np.testing.assert_allclose(f["fwd_1"].to_numpy(), [0.1, 0.1, 9 / 12.1 - 1, np.nan])
    np.testing.assert_allclose(f["fwd_2"].to_numpy(), [0.21, 9 / 11 - 1, np.nan, np.nan])


def test_quantile_returns_and_turnover_by_hand():
    # 4 stocks; closes grow by a fixed daily rate per stock; score = that rate on day 0..4
    rates = {"A": 0.00, "B": 0.01, "C": 0.02, "D": 0.03}
    rows = [(s, d, 100 * (1 + r) ** i) for s, r in rates.items() for i, d in enumerate(DATES)]
    prices = pd.DataFrame(rows, columns=["symbol", "date", "close"])
    scores = prices[["date", "symbol"]].assign(score=prices["symbol"].map(rates).to_numpy())
    rep = evaluate_factor(scores, prices, horizons=(1,), quantiles=2, min_names=2)
    # Q1 = {A, B}: mean 0.005, universe mean 0.015 -> -0.01; Q2 = {C, D} -> +0.01
    assert rep.quantile_returns.loc[1, "fwd_1"] == pytest.approx(-0.01)
    assert rep.quantile_returns.loc[2, "fwd_1"] == pytest.approx(0.01)
    # score perfectly ranks the forward return: Rank IC 1 every date; the IC frame is vfr.ml's
    assert rep.decay.loc[1, "rank_ic_mean"] == pytest.approx(1.0)
    data = scores.merge(forward_returns(prices, (1,)), on=["date", "symbol"])
    pd.testing.assert_frame_equal(rep.ic[1], ic_by_date(data, "score", "fwd_1", min_names=2))
    assert rep.turnover.tolist() == [0.0, 0.0] and rep.rank_autocorrelation == pytest.approx(1.0)


def test_quantile_turnover_by_hand():
    # date 1: top half {C, D}; date 2: top half {B, D} -> half of Q2 is new
    frame = pd.DataFrame({"date": [DATES[0]] * 4 + [DATES[1]] * 4, "symbol": list("ABCD") * 2,
                          "score": [1, 2, 3, 4, 1, 3, 2, 4]})
    t = quantile_turnover(frame, 2)
    assert t.loc[2] == pytest.approx(0.5) and t.loc[1] == pytest.approx(0.5)


def test_factor_on_real_data(sp500_raw_small):
    from vfr.data import adjust_prices

    prices = adjust_prices(sp500_raw_small)[["symbol", "date", "close"]]
    mom = prices.groupby("symbol", sort=False)["close"].pct_change(20, fill_method=None)
    scores = prices[["date", "symbol"]].assign(score=mom.to_numpy())
    rep = evaluate_factor(scores, prices, horizons=(1, 5, 21), quantiles=5)
    assert list(rep.decay.index) == [1, 5, 21] and rep.decay["dates"].min() > 2000
    assert rep.decay["rank_ic_mean"].abs().max() < 0.2
    assert rep.quantile_returns.shape == (5, 3)
    # demeaned quantile returns average ~0 across quantiles (equal-count buckets)
    assert rep.quantile_returns.mean().abs().max() < 5e-4
    assert 0 < rep.rank_autocorrelation < 1
    with pytest.raises(ValueError):
        evaluate_factor(scores, prices, quantiles=1)


def test_matches_alphalens_on_real_data(sp500_raw_small):
    """Same numbers as alphalens-reloaded (Rank IC, demeaned quantile returns, turnover)."""
    al = pytest.importorskip("alphalens")
    from vfr.data import adjust_prices

    prices = adjust_prices(sp500_raw_small)[["symbol", "date", "close"]]
    mom = prices.groupby("symbol", sort=False)["close"].pct_change(20, fill_method=None)
    scores = prices[["date", "symbol"]].assign(score=mom.to_numpy()).dropna()
    wide = prices.pivot(index="date", columns="symbol", values="close")
    fd = al.utils.get_clean_factor_and_forward_returns(scores.set_index(["date", "symbol"])["score"], wide,
                                                       quantiles=5, periods=(5,), max_loss=1.0)
    rep = evaluate_factor(scores, prices, horizons=(5,), quantiles=5)
    ic = al.performance.factor_information_coefficient(fd)["5D"]
    assert rep.decay.loc[5, "rank_ic_mean"] == pytest.approx(ic.mean(), rel=1e-9)
    mq, _ = al.performance.mean_return_by_quantile(fd, by_date=True, demeaned=True)
    mq = mq.groupby(level="factor_quantile").mean()["5D"]
    np.testing.assert_allclose(rep.quantile_returns["fwd_5"].to_numpy(), mq.to_numpy(), rtol=1e-9)
    for q in (1, 5):
        t = al.performance.quantile_turnover(fd["factor_quantile"], q, period=1).mean()
        assert rep.turnover.loc[q] == pytest.approx(t, abs=2e-3)
    ac = al.performance.factor_rank_autocorrelation(fd, period=1).mean()
    assert rep.rank_autocorrelation == pytest.approx(ac, abs=1e-3)
