"""A small real store (2012-2016, a few S&P 500 stocks) shared by the research tests."""

from __future__ import annotations

import pytest

from tests.conftest import SP500_UNIVERSE
from vfr.pipeline import stage_features, stage_ingest


@pytest.fixture(scope="module")
def store_settings(tmp_path_factory, sp500_raw_small):
    from vfr.config import Settings

    tmp = tmp_path_factory.mktemp("research")
    prices = tmp / "p.parquet"
    sp500_raw_small[(sp500_raw_small["date"] >= "2012-01-01") & (sp500_raw_small["date"] <= "2016-06-30")] \
        .to_parquet(prices)
    settings = Settings(home=tmp / "home")
    stage_ingest(settings, prices, SP500_UNIVERSE)
    stage_features(settings)
    return settings
