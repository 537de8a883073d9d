"""The classic score points the right way on the full development set (slow: builds the store)."""

from __future__ import annotations

import pytest

from tests.conftest import SP500_PRICES, SP500_UNIVERSE, require_shared
from vfr.data import MarketStore
from vfr.metrics import ic_by_date, ic_summary
from vfr.pipeline import stage_features, stage_ingest
from vfr.research.evaluate import classic_candidate_scores, load_segment
from vfr.scoring import recommendation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def research_data(tmp_path_factory):
    from vfr.config import Settings

    require_shared()
    settings = Settings(home=tmp_path_factory.mktemp("classic") / "home")
    stage_ingest(settings, SP500_PRICES, [str(SP500_UNIVERSE), "index-constitution:sp500"])
    stage_features(settings)
    with MarketStore.from_settings(settings) as store:
        return load_segment(store, "research")


def test_classic_score_ranks_and_recommendations_keep_their_meaning(research_data) -> None:
    """Research segment, point-in-time universe: Rank IC > 0 with t >= 2, STRONG_BUY beats STRONG_SELL."""
    scores = classic_candidate_scores(research_data, "classic-protocol")
    data = scores.merge(research_data.labels[["symbol", "date", "fwd_excess_1w"]], on=["symbol", "date"])
    data = data[data["date"] >= "2002-01-01"]
    ic = ic_summary(ic_by_date(data, "score", "fwd_excess_1w")["rank_ic"], horizon=5)
    assert ic["mean"] > 0 and ic["t_stat_nonoverlap"] >= 2
    data["call"] = recommendation(data["score"])
    by_call = data.groupby("call")["fwd_excess_1w"].mean()
    buys = data["call"].isin(["STRONG_BUY", "BUY"])
    sells = data["call"].isin(["STRONG_SELL", "SELL"])
    assert buys.any() and sells.any()
    assert data.loc[buys, "fwd_excess_1w"].mean() > data.loc[sells, "fwd_excess_1w"].mean()
    if {"STRONG_BUY", "STRONG_SELL"} <= set(by_call.index):
        assert by_call["STRONG_BUY"] > by_call["STRONG_SELL"]
    seed = classic_candidate_scores(research_data, "classic-seed").merge(
        research_data.labels[["symbol", "date", "fwd_excess_1w"]], on=["symbol", "date"])
    seed_ic = ic_summary(ic_by_date(seed[seed["date"] >= "2002-01-01"], "score", "fwd_excess_1w")["rank_ic"])
    assert ic["mean"] > seed_ic["mean"]
