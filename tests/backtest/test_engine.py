"""Backtest engine on hand-built prices: timing (no look-ahead), costs, drift, benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.backtest import BacktestConfig, CostModel, run_backtest
from vfr.errors import DataValidationError

DATES = pd.bdate_range("2021-01-04", periods=8)


def long_prices(closes: dict[str, list[float]], dates: pd.DatetimeIndex = DATES) -> pd.DataFrame:
    """Canonical long prices frame from {symbol: closes}; NaN closes become missing rows."""
    rows = [(s, d, c) for s, cs in closes.items() for d, c in zip(dates, cs, strict=True) if not np.isnan(c)]
    return pd.DataFrame(rows, columns=["symbol", "date", "close"])


def long_scores(values: dict[str, list[float]], dates: pd.DatetimeIndex = DATES) -> pd.DataFrame:
    rows = [(d, s, v) for s, vs in values.items() for d, v in zip(dates, vs, strict=True)]
    return pd.DataFrame(rows, columns=["date", "symbol", "score"])


def random_market(n_sym: int = 25, n_days: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_days)
    rets = rng.normal(0.0005, 0.02, size=(n_days, n_sym))
    close = 50 * np.cumprod(1 + rets, axis=0)
    syms = [f"S{i:02d}" for i in range(n_sym)]
    wide = pd.DataFrame(close, index=dates, columns=syms)
    prices = wide.stack().rename("close").reset_index()
    prices.columns = ["date", "symbol", "close"]
    scores = pd.DataFrame(rng.normal(size=(n_days, n_sym)), index=dates, columns=syms).stack()
    scores = scores.rename("score").reset_index()
    scores.columns = ["date", "symbol", "score"]
    return wide, prices, scores


# -- costs -----------------------------------------------------------------------------
A = [10.0, 11.0, 12.1, 11.0, 10.0, 10.5, 11.55, 12.0]
B = [20.0, 19.0, 20.9, 22.0, 23.1, 22.0, 24.2, 24.0]
# top_n=1, signals every 2nd day (0, 2, 4, 6): A, then B, then A, then B
SWITCH = {"A": [1, 0, 0, 0, 1, 0, 0, 0], "B": [0, 0, 1, 0, 0, 0, 1, 0]}


def test_costs_two_assets_switching():
    prices = long_prices({"A": A, "B": B})
    scores = long_scores(SWITCH)
    res = run_backtest(prices, scores, BacktestConfig(top_n=1, rebalance_every=2, costs=CostModel(slippage_bps=10.0),
                                                      execution_lag=1))
    d = res.daily
    # entries at days 1 (buy A from cash), 3 (A -> B), 5 (B -> A), 7 (A -> B)
    expected_turnover = pd.Series(0.0, index=d.index)
    assert list(d.index) == list(DATES) and d.index.dtype == "datetime64[ns]"
    expected_turnover.iloc[[1, 3, 5, 7]] = [1.0, 2.0, 2.0, 2.0]
    pd.testing.assert_series_equal(d["turnover"], expected_turnover, check_names=False, check_freq=False)
    # gross: hold A on days 2-3, B on days 4-5, A on days 6-7
    g = [0.0, 0.0, A[2] / A[1] - 1, A[3] / A[2] - 1, B[4] / B[3] - 1, B[5] / B[4] - 1,
         A[6] / A[5] - 1, A[7] / A[6] - 1]
    np.testing.assert_allclose(d["gross_return"].to_numpy(), g, rtol=0, atol=1e-15)
    # net = gross - 10 bp per unit traded, exactly on rebalance days
    np.testing.assert_array_equal(d["net_return"].to_numpy(),
                                  d["gross_return"].to_numpy() - 10.0 / 1e4 * expected_turnover.to_numpy())
    # equity: product of (1 + net), starting at 1 on the first signal date (cash)
    assert d["equity"].iloc[0] == 1.0
    assert d["equity"].iloc[1] == pytest.approx(1 - 0.001)
    assert d["equity"].iloc[-1] == pytest.approx(np.prod(1 + d["net_return"].to_numpy()), rel=1e-14)
    w = res.weights
    assert list(w["symbol"]) == ["A", "B", "A", "B"]
    assert list(w["date"]) == list(DATES[[1, 3, 5, 7]])
    assert list(w["signal_date"]) == list(DATES[[0, 2, 4, 6]])


def test_higher_costs_lower_final_equity_by_expected_amount():
    prices = long_prices({"A": A, "B": B})
    scores = long_scores(SWITCH)
    g = np.array([0.0, 0.0, A[2] / A[1] - 1, A[3] / A[2] - 1, B[4] / B[3] - 1, B[5] / B[4] - 1,
                  A[6] / A[5] - 1, A[7] / A[6] - 1])
    tau = np.array([0, 1, 0, 2, 0, 2, 0, 2.0])
    finals = {}
    for bps in (0.0, 10.0, 50.0):
        res = run_backtest(prices, scores, BacktestConfig(top_n=1, rebalance_every=2,
                                                          costs=CostModel(slippage_bps=bps)))
        finals[bps] = res.daily["equity"].iloc[-1]
        assert finals[bps] == pytest.approx(np.prod(1 + g - bps / 1e4 * tau), rel=1e-13)
    assert finals[0.0] > finals[10.0] > finals[50.0]
    # the gap between 0 and 50 bp is the compounded cost drag
    assert finals[0.0] - finals[50.0] == pytest.approx(np.prod(1 + g) - np.prod(1 + g - 0.005 * tau), rel=1e-12)
    # gross metrics do not depend on costs
    r0 = run_backtest(prices, scores, BacktestConfig(top_n=1, rebalance_every=2, costs=CostModel(slippage_bps=0.0)))
    r50 = run_backtest(prices, scores, BacktestConfig(top_n=1, rebalance_every=2, costs=CostModel(slippage_bps=50.0)))
    assert r0.metrics["strategy_gross"] == r50.metrics["strategy_gross"]
    assert r50.metrics["strategy_net"]["cagr"] < r0.metrics["strategy_net"]["cagr"]


# -- drift -----------------------------------------------------------------------------
def test_weights_drift_with_prices_between_rebalances():
    a = [10.0, 10.0, 12.0, 15.0, 15.0, 15.0, 15.0, 15.0]
    b = [10.0, 10.0, 9.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    c = [10.0] * 8  # never chosen at first, then the only top pick besides A
    prices = long_prices({"A": a, "B": b, "C": c})
    # signals at days 0 and 4 (rebalance_every=4): first A+B, then A+C
    scores = long_scores({"A": [2, 0, 0, 0, 2, 0, 0, 0], "B": [1, 0, 0, 0, 0, 0, 0, 0],
                          "C": [0, 0, 0, 0, 1, 0, 0, 0]})
    res = run_backtest(prices, scores, BacktestConfig(top_n=2, rebalance_every=4, costs=CostModel(slippage_bps=10.0)))
    d = res.daily
    # entered 50/50 at day 1; day 2 value 0.5*12/10 + 0.5*9/10 = 1.05
    assert d["gross_return"].iloc[2] == pytest.approx(0.05)
    # day 3: value 0.5*1.5 + 0.5*1.0 = 1.25 -> 1.25/1.05 - 1 (NOT the mean daily return)
    assert d["gross_return"].iloc[3] == pytest.approx(1.25 / 1.05 - 1)
    assert d["gross_return"].iloc[3] != pytest.approx(0.5 * (15 / 12 - 1) + 0.5 * (10 / 9 - 1))
    # entry day 5: drifted weights A = 0.75/1.25 = 0.6, B = 0.4; target A 0.5, C 0.5
    assert d["turnover"].iloc[5] == pytest.approx(abs(0.5 - 0.6) + abs(0 - 0.4) + abs(0.5 - 0))
    assert d["net_return"].iloc[5] == pytest.approx(d["gross_return"].iloc[5] - 0.001 * 1.0)
    wide = res.weights.pivot(index="date", columns="symbol", values="weight")
    assert wide.loc[DATES[1]].to_dict() == {"A": 0.5, "B": 0.5, "C": pytest.approx(np.nan, nan_ok=True)}
    assert wide.loc[DATES[5], "A"] == 0.5 and wide.loc[DATES[5], "C"] == 0.5


# -- no look-ahead ---------------------------------------------------------------------
@pytest.mark.parametrize("lag", [1, 2])
def test_changing_scores_after_t_changes_nothing_up_to_t_plus_lag(lag):
    _, prices, scores = random_market()
    dates = np.sort(scores["date"].unique())
    base = run_backtest(prices, scores, BacktestConfig(top_n=5, rebalance_every=1,
                                                       costs=CostModel(slippage_bps=10.0), execution_lag=lag))
    rng = np.random.default_rng(1)
    for t in dates[[20, 50, 90]]:
        changed = scores.copy()
        after = changed["date"] > t
        changed.loc[after, "score"] = rng.normal(size=after.sum())
        res = run_backtest(prices, changed, BacktestConfig(top_n=5, rebalance_every=1,
                                                           costs=CostModel(slippage_bps=10.0), execution_lag=lag))
        cut = dates[np.searchsorted(dates, t) + lag]
        pd.testing.assert_frame_equal(res.daily.loc[:cut], base.daily.loc[:cut])
        pd.testing.assert_frame_equal(res.weights[res.weights["date"] <= cut].reset_index(drop=True),
                                      base.weights[base.weights["date"] <= cut].reset_index(drop=True))
        # the first entry on changed scores is day t+lag+1, traded at its close: that day's
        # gross return (close t+lag -> close t+lag+1) still belongs to the old book
        nxt = dates[np.searchsorted(dates, t) + lag + 1]
        pd.testing.assert_series_equal(res.daily["gross_return"].loc[:nxt], base.daily["gross_return"].loc[:nxt])
        # ...and the test can fail: the book entered on day t+lag+1 differs
        assert not res.weights[res.weights["date"] == nxt]["symbol"].reset_index(drop=True).equals(
            base.weights[base.weights["date"] == nxt]["symbol"].reset_index(drop=True))


def test_perfect_foresight_is_not_earned_with_lag():
    wide, prices, _ = random_market(n_sym=10, n_days=60, seed=3)
    rets = wide.pct_change()
    # the label at t: return over (t, t+1] -- known only at the close of t+1
    fwd = rets.shift(-1).stack().rename("score").reset_index()
    fwd.columns = ["date", "symbol", "score"]
    best = rets.max(axis=1)  # best return each day
    perfect = run_backtest(prices, fwd, BacktestConfig(top_n=1, rebalance_every=1, costs=CostModel(slippage_bps=0.0),
                                                       execution_lag=0))
    g0 = perfect.daily["gross_return"].iloc[1:]
    # trading at the close of t on the t -> t+1 return picks the best stock every day
    np.testing.assert_allclose(g0.to_numpy(), best.loc[g0.index].to_numpy(), rtol=1e-12)
    lagged = run_backtest(prices, fwd, BacktestConfig(top_n=1, rebalance_every=1, costs=CostModel(slippage_bps=0.0),
                                                      execution_lag=1))
    g1 = lagged.daily["gross_return"].loc[lagged.first_entry:].iloc[1:]
    assert (g1 < best.loc[g1.index] - 1e-12).mean() > 0.5
    assert lagged.daily["equity"].iloc[-1] < 0.5 * perfect.daily["equity"].iloc[-1]
    # a score that is the same-day return (t-1, t] cannot earn the next return either
    same = rets.stack().rename("score").reset_index()
    same.columns = ["date", "symbol", "score"]
    res = run_backtest(prices, same, BacktestConfig(top_n=1, rebalance_every=1, costs=CostModel(slippage_bps=0.0),
                                                    execution_lag=0))
    assert res.daily["equity"].iloc[-1] < 0.5 * perfect.daily["equity"].iloc[-1]


# -- missing prices, benchmarks --------------------------------------------------------
def test_missing_price_held_at_last_price_and_not_picked_on_entry():
    nan = np.nan
    a = [10.0, 10.0, nan, 12.0, 12.0, 12.0, 12.0, 12.0]
    b = [10.0, nan, 11.0, 11.0, 11.0, 11.0, 11.0, 11.0]
    c = [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    prices = long_prices({"A": a, "B": b, "C": c})
    # B has the best score but no price on the entry day 1 -> A and C are chosen
    scores = long_scores({"A": [2] * 8, "B": [3] * 8, "C": [1] * 8})
    res = run_backtest(prices, scores, BacktestConfig(top_n=2, rebalance_every=100, costs=CostModel(slippage_bps=0.0)))
    assert sorted(res.weights["symbol"]) == ["A", "C"]
    d = res.daily
    assert d["gross_return"].iloc[2] == 0.0  # A unpriced on day 2: held at 10
    assert d["gross_return"].iloc[3] == pytest.approx(0.5 * 1.2 + 0.5 * 1.0 - 1)  # catch-up
    # equal-weight benchmark: mean over symbols with a price that day (and a prior price)
    ew = res.benchmarks["equal_weight"]
    assert ew.iloc[1] == pytest.approx((0.0 + 0.0) / 2)  # A, C priced; B missing
    assert ew.iloc[2] == pytest.approx((11 / 10 - 1 + 0.0) / 2)  # B catches up from day 0, C flat
    assert ew.iloc[3] == pytest.approx((12 / 10 - 1 + 0.0 + 0.0) / 3)


def test_equal_weight_benchmark_is_mean_daily_return():
    wide, prices, scores = random_market(n_sym=8, n_days=40, seed=5)
    res = run_backtest(prices, scores, BacktestConfig(top_n=3, rebalance_every=5))
    expected = wide.pct_change().mean(axis=1)
    got = res.benchmarks["equal_weight"]
    np.testing.assert_allclose(got.to_numpy(), expected.loc[got.index].to_numpy(), rtol=1e-12)
    assert set(res.metrics) == {"strategy_net", "strategy_gross", "equal_weight"}
    inv = got.loc[res.first_entry:]
    assert res.metrics["equal_weight"]["cagr"] == pytest.approx((1 + inv).prod() ** (252 / len(inv)) - 1)


def test_equal_weight_benchmark_holds_only_the_scored_universe_of_the_day_before():
    """A name priced but not scored (not an index member yet) is not in the equal-weight universe:
    a future index joiner's run-up before it joined must not lift the benchmark (survivorship)."""
    dates = pd.bdate_range("2021-01-04", periods=6)
    prices = long_prices({"A": [10, 11, 12, 13, 14, 15], "B": [10, 10, 10, 10, 10, 10],
                          "JOINER": [10, 20, 40, 80, 160, 320]}, dates)
    nan = float("nan")
    # JOINER is scored (a member) from day 3 on: from day 4 its return counts
    scores = long_scores({"A": [1, 1, 1, 1, 1, 1], "B": [0, 0, 0, 0, 0, 0],
                          "JOINER": [nan, nan, nan, 0.5, 0.5, 0.5]}, dates)
    res = run_backtest(prices, scores, BacktestConfig(top_n=1, rebalance_every=1))
    ew = res.benchmarks["equal_weight"]
    wide = prices.pivot(index="date", columns="symbol", values="close").pct_change()
    np.testing.assert_allclose(ew.loc[dates[1:4]], wide.loc[dates[1:4], ["A", "B"]].mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(ew.loc[dates[4:]], wide.loc[dates[4:]].mean(axis=1), rtol=1e-12)


def test_external_benchmark_aligned_where_it_covers():
    wide, prices, scores = random_market(n_sym=5, n_days=30, seed=7)
    dates = wide.index
    levels = pd.Series(100.0 * np.cumprod(1 + np.linspace(-0.01, 0.01, 20)), index=dates[5:25], name="idx")
    levels = levels.drop(dates[10])  # a hole inside the coverage: carried, then caught up
    levels.index = levels.index.as_unit("us")  # e.g. arch's sp500 index resolution
    res = run_backtest(prices, scores, BacktestConfig(top_n=2, rebalance_every=5), benchmark=levels)
    b = res.benchmarks["idx"]
    assert b.loc[: dates[5]].isna().all() and b.loc[dates[25]:].isna().all()
    assert b.loc[dates[10]] == 0.0
    assert b.loc[dates[11]] == pytest.approx(levels.iloc[5] / levels.iloc[4] - 1)  # d11 vs d9
    assert b.loc[dates[7]] == pytest.approx(levels.iloc[2] / levels.iloc[1] - 1)
    assert "idx" in res.metrics and res.metrics["idx"]["n_periods"] == b.loc[res.first_entry:].notna().sum()


def test_rebalance_grid_start_end_and_validation():
    _, prices, scores = random_market(n_sym=6, n_days=40, seed=2)
    dates = np.sort(scores["date"].unique())
    # no scores on the first 3 days: the grid starts on the first scored day in the window
    sc = scores[scores["date"] >= dates[3]]
    res = run_backtest(prices, sc, BacktestConfig(top_n=2, rebalance_every=5, start=dates[1], end=dates[30]))
    assert list(res.weights["signal_date"].unique()) == list(dates[[3, 8, 13, 18, 23, 28]])
    assert res.daily.index[0] == dates[3] and res.daily.index[-1] == dates[30]
    with pytest.raises(DataValidationError):
        run_backtest(pd.concat([prices, prices.iloc[:1]]), scores)
    with pytest.raises(DataValidationError):
        run_backtest(prices.drop(columns="close"), scores)
    with pytest.raises(ValueError):
        run_backtest(prices, scores, BacktestConfig(top_n=0))
