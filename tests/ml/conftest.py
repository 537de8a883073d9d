"""Real feature/label panels shared by the ml tests (20 S&P 500 stocks, 2010-2019)."""

from __future__ import annotations

import pandas as pd
import pytest

from vfr.data import adjust_prices
from vfr.features import build_features
from vfr.ml import build_dataset, make_labels


@pytest.fixture(scope="session")
def real_panel(sp500_raw_small: pd.DataFrame) -> pd.DataFrame:
    """Features joined with the 1w labels, sorted by (date, symbol): the real development panel."""
    prices = adjust_prices(sp500_raw_small)
    return build_dataset(build_features(prices), make_labels(prices), "1w")


@pytest.fixture(scope="session")
def small_feature_columns(real_panel: pd.DataFrame) -> list[str]:
    """A dozen real features (keeps the contract tests fast)."""
    return ["ret_5d", "ret_20d", "rsi_14", "atr_14_pct", "price_z_20", "volume_z_20", "dist_52w_high",
            "ret_5d_rank", "ret_20d_rank", "rsi_14_rank", "dist_vwap_20", "obv_trend_20"]
