"""Fixtures for the feature tests: the canonical *prices* frame built from real raw rows.

Until ``vfr.data.adjust_prices`` exists the adjustment is done here, exactly as the
architecture document defines it: ``adj_factor = adjusted_close / close``, OHLC x factor,
volume / factor.
"""

from __future__ import annotations

import pandas as pd
import pytest

PRICE_COLUMNS = ["open", "high", "low", "close"]


def adjust(raw: pd.DataFrame) -> pd.DataFrame:
    """Canonical prices frame (sorted by symbol, date; RangeIndex) from raw rows."""
    raw = raw.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    factor = raw["adjusted_close"] / raw["close"]
    out = raw[["symbol", "date"]].copy()
    for col in PRICE_COLUMNS:
        out[col] = raw[col] * factor
    out["volume"] = raw["volume"] / factor
    out["close_raw"] = raw["close"]
    out["adj_factor"] = factor
    out["dividend_amount"] = raw["dividend_amount"]
    out["split_coefficient"] = raw["split_coefficient"]
    return out


@pytest.fixture(scope="session")
def prices_small(sp500_raw_small: pd.DataFrame) -> pd.DataFrame:
    """Adjusted prices of the 20 small-set stocks, 2010-2019 (about 50,000 rows)."""
    return adjust(sp500_raw_small)


@pytest.fixture(scope="session")
def features_small(prices_small: pd.DataFrame) -> pd.DataFrame:
    """``build_features`` of :func:`prices_small` (computed once per session)."""
    from vfr.features import build_features

    return build_features(prices_small)


@pytest.fixture
def one_symbol(prices_small: pd.DataFrame):
    """Factory: the prices rows of one symbol (fresh copy, RangeIndex)."""

    def get(symbol: str = "AAPL") -> pd.DataFrame:
        return prices_small[prices_small["symbol"] == symbol].reset_index(drop=True).copy()

    return get
