"""Classic scores over all five groups: renormalisation and the groups-present report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED_DATA, SP500_UNIVERSE, require_shared
from tests.features.conftest import adjust
from vfr.data import read_universe
from vfr.data.fundamentals import read_earnings, read_macro
from vfr.features import ALL_FEATURES, build_all_features
from vfr.scoring import GROUP_SIGNALS, GROUP_WEIGHTS, classic_scores, group_score


@pytest.fixture(scope="module")
def features(sp500_raw_small) -> pd.DataFrame:
    require_shared(SHARED_DATA / "earnings" / "earnings_surprises.parquet")
    require_shared(SHARED_DATA / "macro" / "fred_md.parquet")
    raw = sp500_raw_small[sp500_raw_small["date"] >= "2015-01-01"]
    return build_all_features(adjust(raw),
                              earnings=read_earnings(SHARED_DATA / "earnings" /
                                                     "earnings_surprises.parquet"),
                              macro=read_macro(SHARED_DATA / "macro"),
                              universe=read_universe(SP500_UNIVERSE))


def test_every_signal_is_a_ranked_registered_feature():
    ranked = {f.name for f in ALL_FEATURES if f.ranked}
    assert set(GROUP_SIGNALS) == {"technical", "fundamental", "macro", "alternative"} | (
        set(GROUP_SIGNALS) & {"sentiment"})
    for group, signals in GROUP_SIGNALS.items():
        if group == "sentiment":
            continue
        for s in signals:
            assert s.feature in ranked, (group, s.feature)
            assert s.direction in (-1, 1) and s.weight > 0 and s.rationale


def test_classic_uses_all_groups_with_plan_weights(features):
    scores = classic_scores(features)
    groups = ["technical", "fundamental", "macro", "sentiment", "alternative"]
    assert scores.attrs["groups_present"] == groups
    full = scores["groups_present"] == ",".join(groups)
    assert full.mean() > 0.5
    w = np.array([GROUP_WEIGHTS[g] for g in groups])
    expected = scores.loc[full, [f"{g}_score" for g in groups]].to_numpy() @ w / w.sum()
    np.testing.assert_allclose(scores.loc[full, "classic_score"], expected, rtol=1e-9)
    for g in groups:
        np.testing.assert_allclose(scores[f"{g}_score"], group_score(features, GROUP_SIGNALS[g]))
        assert scores[f"{g}_score"].dropna().between(0, 1).all()


def test_missing_group_is_renormalised_and_reported(features):
    # a stock with no earnings report known: its fundamental ranks are missing
    frame = features.copy()
    gone = (frame["symbol"] == "KO").to_numpy()
    for s in GROUP_SIGNALS["fundamental"]:
        frame.loc[gone, f"{s.feature}_rank"] = np.nan
    scores = classic_scores(frame)
    rows = gone & scores["technical_score"].notna().to_numpy() & scores["macro_score"].notna().to_numpy() & \
        scores["sentiment_score"].notna().to_numpy() & scores["alternative_score"].notna().to_numpy()
    assert rows.sum() > 500
    sub = scores[rows]
    assert (sub["groups_present"] == "technical,macro,sentiment,alternative").all()
    assert sub["fundamental_score"].isna().all()
    w = np.array([0.40, 0.20, 0.10, 0.05])
    expected = sub[["technical_score", "macro_score", "sentiment_score", "alternative_score"]].to_numpy() @ w / w.sum()
    np.testing.assert_allclose(sub["classic_score"], expected, rtol=1e-9)


def test_technical_only_frame_reports_technical(features):
    tech_cols = [c for c in features.columns
                 if c in ("symbol", "date") or c.split("_rank")[0] in
                 {f.name for f in ALL_FEATURES if f.group == "technical"}]
    scores = classic_scores(features[tech_cols])
    assert scores.attrs["groups_present"] == ["technical"]
    assert scores["groups_present"].isin(["technical", ""]).all()  # "" = warm-up rows
    assert (scores["groups_present"] == "technical").mean() > 0.9
