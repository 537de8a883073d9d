"""adjust_prices: hand-built split + dividend case and the real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.data import adjust_prices
from vfr.data.adjust import PRICES_COLUMNS
from vfr.data.readers import validate_raw
from vfr.errors import DataValidationError


def _split_dividend_case() -> pd.DataFrame:
    """4 days: a 2-for-1 split effective day 2, a 1.00 USD dividend going ex on day 4.

    Provider adjusted_close (as of after day 4): dividend factor before day 4 is
    1 - 1.00 / close[day 3] = 1 - 1/50 = 0.98; split factor before day 2 is 1/2.
    """
    close = np.array([100.0, 51.0, 50.0, 49.5])
    adj = close * np.array([0.5 * 0.98, 0.98, 0.98, 1.0])
    return pd.DataFrame({
        "symbol": ["SPL"] * 4,
        "date": pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"]),
        "open": [99.0, 50.0, 51.0, 49.0], "high": [101.0, 52.0, 51.5, 50.0],
        "low": [98.0, 49.5, 49.0, 48.0], "close": close, "adjusted_close": adj,
        "volume": [1_000.0, 2_200.0, 2_000.0, 1_800.0],
        "dividend_amount": [0.0, 0.0, 0.0, 1.0], "split_coefficient": [1.0, 2.0, 1.0, 1.0],
    })


def test_split_and_dividend() -> None:
    raw = _split_dividend_case()
    keep = raw.copy()
    out = adjust_prices(raw)
    pd.testing.assert_frame_equal(raw, keep)  # pure: input untouched
    assert list(out.columns) == PRICES_COLUMNS
    np.testing.assert_allclose(out["adj_factor"], [0.49, 0.98, 0.98, 1.0])
    np.testing.assert_allclose(out["close"], [49.0, 49.98, 49.0, 49.5])
    np.testing.assert_allclose(out["open"], [99.0 * 0.49, 50.0 * 0.98, 51.0 * 0.98, 49.0])
    np.testing.assert_allclose(out["high"], [101.0 * 0.49, 52.0 * 0.98, 51.5 * 0.98, 50.0])
    np.testing.assert_allclose(out["low"], [98.0 * 0.49, 49.5 * 0.98, 49.0 * 0.98, 48.0])
    np.testing.assert_allclose(out["volume"], [1_000 / 0.49, 2_200 / 0.98, 2_000 / 0.98, 1_800])
    np.testing.assert_array_equal(out["close_raw"], raw["close"])
    np.testing.assert_array_equal(out["split_coefficient"], raw["split_coefficient"])
    np.testing.assert_array_equal(out["dividend_amount"], raw["dividend_amount"])
    # the split does not show up as a -50 % return; the total return over the split day is
    # the economic one (51 / (100 / 2) - 1 = 2 %)
    ret = out["close"].pct_change()
    assert ret.iloc[1] == pytest.approx(51.0 / 50.0 - 1.0)
    # dollar volume is invariant
    np.testing.assert_allclose(out["close"] * out["volume"], raw["close"] * raw["volume"])


def test_sorts_and_types() -> None:
    raw = pd.concat([_split_dividend_case().assign(symbol="ZZ"), _split_dividend_case()])
    raw = raw.iloc[::-1]
    raw["volume"] = raw["volume"].astype("int64")
    out = adjust_prices(raw)
    assert isinstance(out.index, pd.RangeIndex)
    assert out["symbol"].tolist() == ["SPL"] * 4 + ["ZZ"] * 4
    assert out["date"].is_monotonic_increasing is False  # resets per symbol
    assert out.groupby("symbol")["date"].apply(lambda d: d.is_monotonic_increasing).all()
    assert all(out[c].dtype == np.float64 for c in PRICES_COLUMNS[2:])
    assert out["date"].dtype == "datetime64[ns]"


def test_rejects_non_positive_close() -> None:
    raw = _split_dividend_case()
    raw.loc[2, "close"] = 0.0
    with pytest.raises(DataValidationError, match="row 3, column 'close'"):
        adjust_prices(raw)


def test_real_adjusted_close_matches(sp500_raw_small: pd.DataFrame) -> None:
    raw = validate_raw(sp500_raw_small, "sp500_raw_small")
    out = adjust_prices(raw)
    assert len(out) == len(raw)
    np.testing.assert_array_equal(out["close"].to_numpy(), raw["adjusted_close"].to_numpy())
    np.testing.assert_allclose(out["close_raw"] * out["adj_factor"], raw["adjusted_close"],
                               rtol=1e-12)
    assert (out["low"] <= out["high"]).all()
    # AAPL 7-for-1 split of 2014-06-09: raw close drops ~86 %, adjusted return is ordinary
    aapl = out[out.symbol == "AAPL"].set_index("date")
    day = pd.Timestamp("2014-06-09")
    assert aapl.loc[day, "split_coefficient"] == pytest.approx(7.0, rel=1e-5)
    prev = aapl.index[aapl.index.get_loc(day) - 1]
    assert aapl.loc[day, "close_raw"] / aapl.loc[prev, "close_raw"] < 0.2
    assert abs(aapl.loc[day, "close"] / aapl.loc[prev, "close"] - 1) < 0.05
