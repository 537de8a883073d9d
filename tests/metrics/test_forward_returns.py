"""The one forward return: close[t+h] / close[t] - 1 per symbol, window (t, t+h], by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.metrics import HorizonError, forward_returns

DATES = pd.bdate_range("2021-01-04", periods=5)


def _prices() -> pd.DataFrame:
    # rows deliberately out of order; B has no row on DATES[2] (its own trading rows count)
    rows = [("B", DATES[4], 30.0), ("A", DATES[1], 11.0), ("A", DATES[0], 10.0), ("B", DATES[0], 20.0),
            ("A", DATES[3], 9.0), ("B", DATES[1], 10.0), ("A", DATES[2], 12.1), ("B", DATES[3], 15.0)]
    return pd.DataFrame(rows, columns=["symbol", "date", "close"])


def test_values_by_hand() -> None:
    f = forward_returns(_prices(), [1, "2d"])
    assert list(f.columns) == ["symbol", "date", "fwd_ret_1d", "fwd_ret_2d"]
    assert f["symbol"].tolist() == ["A"] * 4 + ["B"] * 4 and f.index.tolist() == list(range(8))
    assert f["date"].tolist() == [*DATES[:4], DATES[0], DATES[1], DATES[3], DATES[4]]
    # A: 10, 11, 12.1, 9; B: 20, 10, 15, 30 (a symbol's last rows never reach into the next symbol)
    np.testing.assert_allclose(f["fwd_ret_1d"], [0.1, 0.1, 9 / 12.1 - 1, np.nan, -0.5, 0.5, 1.0, np.nan])
    np.testing.assert_allclose(f["fwd_ret_2d"], [0.21, 9 / 11 - 1, np.nan, np.nan, -0.25, 2.0, np.nan, np.nan])


def test_default_horizons_and_column_template() -> None:
    f = forward_returns(_prices())
    assert list(f.columns[2:]) == ["fwd_ret_1d", "fwd_ret_1w", "fwd_ret_1m"]
    assert f["fwd_ret_1w"].isna().all()  # 4 rows per symbol: no 5-day window completes
    g = forward_returns(_prices().rename(columns={"close": "adj"}), ("1w", 1), price="adj", column="r{days}_{name}")
    assert list(g.columns[2:]) == ["r5_1w", "r1_1d"]
    np.testing.assert_array_equal(g["r1_1d"], f["fwd_ret_1d"])


def test_a_return_uses_only_the_closes_at_t_and_t_plus_h() -> None:
    rng = np.random.default_rng(3)
    prices = pd.DataFrame({"symbol": "A", "date": pd.bdate_range("2020-01-01", periods=30),
                           "close": 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 30)))})
    base = forward_returns(prices, 5)["fwd_ret_1w"].to_numpy()
    t = 10
    for j in range(30):  # move one close at a time: only rows t = j and t = j - 5 may change
        moved = prices.assign(close=prices["close"].where(prices.index != j, prices["close"] * 1.5))
        changed = np.flatnonzero(~np.isclose(forward_returns(moved, 5)["fwd_ret_1w"], base, equal_nan=True))
        assert set(changed) <= {j, j - 5}
        assert (t in changed) == (j in (t, t + 5))
    # dropping every close after t + h leaves the return of t as it was; dropping t + h makes it unknown
    kept = forward_returns(prices.iloc[: t + 6], 5)["fwd_ret_1w"]
    assert kept.iloc[t] == base[t] and kept.iloc[t + 1:].isna().all()
    assert np.isnan(forward_returns(prices.iloc[: t + 5], 5)["fwd_ret_1w"].iloc[t])


def test_missing_symbol_and_bad_inputs() -> None:
    prices = pd.DataFrame({"symbol": ["A", "A", None, None], "date": DATES[[0, 1, 0, 1]],
                           "close": [1.0, 2.0, 3.0, 4.0]})
    f = forward_returns(prices, 1)
    assert f["fwd_ret_1d"].iloc[0] == pytest.approx(1.0) and f["fwd_ret_1d"].iloc[1:].isna().all()
    with pytest.raises(ValueError, match="lacks columns"):
        forward_returns(prices.drop(columns="close"), 1)
    with pytest.raises(HorizonError, match="'1y'"):
        forward_returns(prices, "1y")
    with pytest.raises(ValueError, match="duplicate"):
        forward_returns(prices, [1, 5], column="fwd")


def test_every_caller_computes_the_same_forward_return(sp500_raw_small) -> None:
    """Labels, factor evaluation and the sentiment signal test share vfr.metrics.forward_returns."""
    from vfr.backtest import forward_returns as factor_forward_returns
    from vfr.data import adjust_prices
    from vfr.ml import label_columns, make_labels

    prices = adjust_prices(sp500_raw_small)[["symbol", "date", "close"]]
    ours = forward_returns(prices, ["1d", "1w"])
    labels = make_labels(prices, ["5d", 1])  # any spelling; columns use canonical names
    np.testing.assert_array_equal(labels["fwd_ret_1w"], ours["fwd_ret_1w"])
    np.testing.assert_array_equal(labels["fwd_ret_1d"], ours["fwd_ret_1d"])
    pd.testing.assert_frame_equal(make_labels(prices, {"1w": 5}), make_labels(prices, [5]))
    assert label_columns("5d") == label_columns(5) == ("fwd_ret_1w", "fwd_excess_1w", "fwd_dir_1w")
    factor = factor_forward_returns(prices, (5, "1d"))
    assert list(factor.columns) == ["date", "symbol", "fwd_5", "fwd_1"]
    np.testing.assert_array_equal(factor["fwd_5"], ours["fwd_ret_1w"])
    # the hand formula, per symbol with pandas' own shift
    closes = prices.sort_values(["symbol", "date"], kind="stable")["close"].reset_index(drop=True)
    expected = closes.groupby(ours["symbol"]).shift(-5) / closes - 1
    np.testing.assert_allclose(ours["fwd_ret_1w"], expected, rtol=0, atol=0, equal_nan=True)


def test_sentiment_signal_names_horizons_canonically() -> None:
    from vfr.features.sentiment import sentiment_signal

    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2021-01-04", periods=40)
    syms = [f"S{i}" for i in range(12)]
    prices = pd.DataFrame([(s, d, 100 + rng.normal()) for s in syms for d in dates],
                          columns=["symbol", "date", "close"])
    daily = prices[["symbol", "date"]].assign(sent_mean=rng.normal(size=len(prices)), sent_volume=3.0)
    out = sentiment_signal(daily, prices, columns=("sent_mean",), horizons=(1, "5d"), min_names=10)
    assert out["horizon"].tolist() == ["1d", "1w"]
    default = sentiment_signal(daily, prices, columns=("sent_mean",), min_names=10)
    assert default["horizon"].tolist() == ["1d", "1w"]
    # 40 dates, the last 5 without a 5-day return (the window runs past the data): 35 dates
    assert out.set_index("horizon").loc["1w", "n_dates"] == 35
