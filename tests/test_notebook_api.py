"""The notebook facade (vfr.notebook, re-exported by vfr; issue 19) on a small real slice:
the same numbers as the package functions it wraps, metrics as a DataFrame, HTML summaries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import vfr
from tests.conftest import SMALL_SYMBOLS, SP500_PRICES, require_shared
from vfr.backtest import BacktestConfig, CostModel, run_backtest
from vfr.config import Settings
from vfr.data import MarketStore, adjust_prices
from vfr.errors import UsageError
from vfr.metrics import forward_returns, ic_by_date, ic_summary
from vfr.notebook import BacktestReport
from vfr.scoring import classic_scores


@pytest.fixture(scope="module")
def slice_() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    require_shared()
    prices = vfr.load_prices(SP500_PRICES, symbols=SMALL_SYMBOLS, start="2016-01-01", end="2018-12-31")
    features = vfr.build_features(prices)
    return prices, features, vfr.score(features)


def test_load_prices_reads_a_file_a_raw_frame_and_the_store_alike(slice_, tmp_path: Path) -> None:
    prices = slice_[0]
    assert set(prices["symbol"]) == set(SMALL_SYMBOLS)
    assert prices["date"].min() >= pd.Timestamp("2016-01-01") and prices["date"].max() <= pd.Timestamp("2018-12-31")
    raw = pd.read_parquet(SP500_PRICES, filters=[("symbol", "in", SMALL_SYMBOLS[:3])])
    from_raw = vfr.load_prices(raw, start="2016-01-01", end="2018-12-31")
    expected = adjust_prices(raw[raw["date"].between("2016-01-01", "2018-12-31")].reset_index(drop=True))
    pd.testing.assert_frame_equal(from_raw, expected)
    settings = Settings(home=tmp_path / "home")
    with MarketStore.from_settings(settings) as store:
        store.write_prices(from_raw)
    from_store = vfr.load_prices(settings, symbols=["aapl"], start="2017-01-01")
    mine = from_raw[(from_raw["symbol"] == "AAPL") & (from_raw["date"] >= "2017-01-01")].reset_index(drop=True)
    pd.testing.assert_frame_equal(from_store[mine.columns], mine, check_dtype=False)


def test_score_is_classic_scores_with_a_score_column(slice_) -> None:
    _, features, scores = slice_
    classic = classic_scores(features)
    pd.testing.assert_series_equal(scores["score"], classic["classic_score"], check_names=False)
    latest = vfr.score(features, date="latest")
    assert latest["date"].nunique() == 1 and latest["date"].iloc[0] == features["date"].max()
    assert latest["score"].is_monotonic_decreasing
    with pytest.raises(UsageError, match="features run from 2016"):
        vfr.score(features, date="2030-01-02")


def test_backtest_wraps_run_backtest_with_metrics_as_a_dataframe(slice_) -> None:
    prices, features, scores = slice_
    bt = vfr.backtest_scores(scores, prices, top_n=5, rebalance="monthly", slippage_bps=10)
    assert isinstance(bt, BacktestReport)
    config = BacktestConfig(top_n=5, rebalance="monthly", costs=CostModel(slippage_bps=10))
    direct = run_backtest(prices, scores[["date", "symbol", "score"]], config)
    pd.testing.assert_series_equal(bt.equity, direct.equity)
    assert isinstance(bt.metrics, pd.DataFrame)
    assert {"strategy_net", "strategy_gross", "equal_weight"} <= set(bt.metrics.index)
    assert bt.metrics.loc["strategy_net", "cagr"] == pytest.approx(direct.metrics["strategy_net"]["cagr"])
    html = bt._repr_html_()
    assert html.startswith("<div>") and "strategy_net" in html and "sharpe_ratio" in html and "top 5" in html
    assert "cagr=" in repr(bt)
    # a features frame is scored first; the classic_score column is found by name
    from_features = vfr.backtest_scores(features, prices, config=config)
    pd.testing.assert_series_equal(from_features.equity, bt.equity)
    assert vfr.backtest_scores(scores.drop(columns="score"), prices, config=config).equity.equals(bt.equity)
    with pytest.raises(UsageError, match="unknown backtest option"):
        vfr.backtest_scores(scores, prices, top=5)
    with pytest.raises(UsageError, match="either config"):
        vfr.backtest_scores(scores, prices, config=config, top_n=3)


def test_evaluate_uses_the_metrics_package(slice_) -> None:
    prices, _, scores = slice_
    ev = vfr.evaluate(scores, prices, horizons=("1d", "1w"))
    assert list(ev.summary.index) == ["1d", "1w"] and ev.summary.loc["1w", "days"] == 5
    fwd = forward_returns(prices, "1w")
    ic = ic_by_date(scores.merge(fwd, on=["date", "symbol"]), "score", "fwd_ret_1w")
    assert ev.summary.loc["1w", "rank_ic_mean"] == pytest.approx(ic_summary(ic["rank_ic"])["mean"])
    assert ev.summary.loc["1w", "dates"] == len(ic)
    assert "rank_icir" in ev._repr_html_()
