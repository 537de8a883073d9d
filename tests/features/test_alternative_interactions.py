"""Alternative and interaction features, and the joined frame of build_all_features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED_DATA, SMALL_SYMBOLS, SP500_UNIVERSE, require_shared
from vfr.data import read_universe
from vfr.data.fundamentals import read_earnings, read_macro
from vfr.features import (
    ALL_FEATURES,
    build_all_features,
    build_features,
    feature_names,
)
from vfr.features.alternative import alternative_features, calendar_features
from vfr.features.interactions import CANDIDATES, INTERACTIONS, interaction_features

EARNINGS = SHARED_DATA / "earnings" / "earnings_surprises.parquet"
MACRO = SHARED_DATA / "macro"


@pytest.fixture(scope="module")
def earnings_small() -> pd.DataFrame:
    require_shared(EARNINGS)
    e = read_earnings(EARNINGS)
    return e[e["symbol"].isin(SMALL_SYMBOLS)].reset_index(drop=True)


@pytest.fixture(scope="module")
def universe() -> pd.DataFrame:
    require_shared(SP500_UNIVERSE)
    return read_universe(SP500_UNIVERSE)


@pytest.fixture(scope="module")
def all_small(prices_small, earnings_small, universe) -> pd.DataFrame:
    require_shared(MACRO / "fred_md.parquet")
    return build_all_features(prices_small, earnings=earnings_small, macro=read_macro(MACRO),
                              universe=universe)


def test_calendar_features():
    c = calendar_features(pd.Series(pd.to_datetime(["2019-01-02", "2019-03-25", "2019-03-29",
                                                    "2019-12-31"])))
    assert list(c["days_to_quarter_end"]) == [88, 6, 2, 0]
    assert list(c["is_quarter_end_window"]) == [0, 1, 1, 1]
    assert list(c["is_january"]) == [1, 0, 0, 0]


def test_earnings_calendar_days(prices_small, earnings_small):
    ko = prices_small[prices_small["symbol"] == "KO"].reset_index(drop=True)
    e = earnings_small[earnings_small["symbol"] == "KO"]
    f = alternative_features(ko, e).set_index("date")
    rep = e[e["reported_date"] > "2015-01-01"].iloc[0]["reported_date"]
    day_before = f.index[f.index < rep][-1]
    assert f.loc[day_before, "days_to_next_earnings"] == (rep - day_before).days
    assert f.loc[rep, "days_to_next_earnings"] == 0
    # the report counts as "last" only from the next trading day
    prev = e[e["reported_date"] < rep].iloc[-1]["reported_date"]
    assert f.loc[rep, "days_since_last_earnings"] == (rep - prev).days
    nxt = f.index[f.index > rep][0]
    assert f.loc[nxt, "days_since_last_earnings"] == (nxt - rep).days


def test_sector_relative_strength_sums_to_zero_in_sector(prices_small, universe):
    f = alternative_features(prices_small, None, universe)
    f["sector"] = f["symbol"].map(universe.set_index("symbol")["sector"])
    sums = f.dropna(subset=["sector_rel_20d"]).groupby(["date", "sector"])["sector_rel_20d"].sum()
    np.testing.assert_allclose(sums, 0.0, atol=1e-5)
    assert f["sector_rel_20d"].notna().mean() > 0.5
    assert f["days_to_next_earnings"].isna().all()  # no earnings given: missing, not zero


def test_alternative_no_lookahead_except_documented_calendar(prices_small, earnings_small,
                                                              universe):
    cut = pd.Timestamp("2016-07-29")
    base = alternative_features(prices_small, earnings_small, universe)
    p = prices_small.copy()
    after = (p["date"] > cut).to_numpy()
    p.loc[after, "close"] *= np.random.default_rng(0).lognormal(0, 0.3, after.sum())
    e = earnings_small.copy()
    # move every report published on/after the cut by 30 days (content and later dates)
    late = e["reported_date"] >= cut
    e.loc[late, "reported_date"] += pd.Timedelta(days=30)
    changed = alternative_features(p, e, universe)
    keep = (base["date"] <= cut).to_numpy()
    for col in ("days_since_last_earnings", "sector_rel_20d", "sector_rel_60d",
                "days_to_quarter_end", "is_january"):
        np.testing.assert_array_equal(base.loc[keep, col], changed.loc[keep, col], err_msg=col)
    # days_to_next_earnings uses the *scheduled* date by design (documented approximation)
    assert not np.array_equal(base.loc[keep, "days_to_next_earnings"],
                              changed.loc[keep, "days_to_next_earnings"])


def test_interaction_formula():
    f = pd.DataFrame({"symbol": ["A", "B"], "date": pd.to_datetime(["2020-01-02"] * 2),
                      "ey_rel_3y_rank": [1.0, 0.5], "ret_60d_rank": [0.25, np.nan]})
    ix = interaction_features(f, ["ix_eyrel_mom", "ix_sue_mom"])
    assert list(ix.columns) == ["symbol", "date", "ix_eyrel_mom"]  # sue rank absent: skipped
    assert ix["ix_eyrel_mom"].iloc[0] == pytest.approx(4 * 0.5 * -0.25)
    assert np.isnan(ix["ix_eyrel_mom"].iloc[1])
    assert set(INTERACTIONS) <= set(CANDIDATES) and len(CANDIDATES) == 12
    assert all("sent" not in a and "sent" not in b for a, b, _ in CANDIDATES.values())


def test_build_all_features_layout(all_small, prices_small):
    tech = build_features(prices_small)
    pd.testing.assert_frame_equal(all_small[tech.columns], tech)  # technical part unchanged
    assert all_small.attrs["groups_present"] == ["technical", "fundamental", "macro",
                                                 "alternative", "sentiment", "interaction"]
    registered = {f.name: f for f in ALL_FEATURES}
    for name, f in registered.items():
        assert name in all_small.columns, name
        assert all_small[name].dtype == np.float32
        assert (f"{name}_rank" in all_small.columns) == f.ranked, name
    assert "vix_rank" not in all_small.columns and "beta_mkt_252d_rank" in all_small.columns
    extra = set(all_small.columns) - {"symbol", "date"} - set(registered) - {
        f"{n}_rank" for n in registered}
    assert not extra, extra
    assert len(all_small) == len(prices_small)
    assert feature_names("fundamental") == []  # the build_features registry is unchanged


def test_build_all_features_without_optional_inputs(prices_small):
    out = build_all_features(prices_small)
    assert out.attrs["groups_present"] == ["technical", "alternative", "sentiment", "interaction"]
    assert "sue" not in out.columns and "vix" not in out.columns
    assert out["is_january"].notna().all()


@pytest.mark.parametrize("cut_s", ["2013-10-15", "2018-04-20"])
def test_build_all_features_no_lookahead(prices_small, earnings_small, universe, cut_s):
    """Every column (all groups, ranks, interactions) at or before t is unchanged when prices,
    report contents and macro values published after t change (report dates kept: the
    scheduled calendar is known in advance)."""
    from tests.features.test_macro import _perturb as perturb_macro

    require_shared(MACRO / "fred_md.parquet")
    cut = pd.Timestamp(cut_s)
    syms = ["AAPL", "JPM", "XOM", "KO", "INTC", "PFE", "GE", "MMM", "CVX", "MRK"]
    prices = prices_small[prices_small["symbol"].isin(syms)].reset_index(drop=True)
    macro = read_macro(MACRO)
    base = build_all_features(prices, earnings=earnings_small, macro=macro, universe=universe)
    rng = np.random.default_rng(7)
    p2, m2 = perturb_macro(prices, macro, cut, seed=3)
    after = (p2["date"] > cut).to_numpy()
    for col in ("open", "high", "low", "close_raw", "volume"):
        p2.loc[after, col] = p2.loc[after, col].to_numpy() * rng.lognormal(0, 0.3, after.sum())
    e2 = earnings_small.copy()
    late = (e2["reported_date"] >= cut).to_numpy()
    for col in ("reported_eps", "estimated_eps", "surprise", "surprise_pct"):
        e2.loc[late, col] = rng.normal(0, 5, late.sum())
    changed = build_all_features(p2, earnings=e2, macro=m2, universe=universe)
    assert list(changed.columns) == list(base.columns)
    keep = (base["date"] <= cut).to_numpy()
    for col in base.columns[2:]:
        np.testing.assert_array_equal(base.loc[keep, col].to_numpy(),
                                      changed.loc[keep, col].to_numpy(),
                                      err_msg=f"{col} changed at or before {cut.date()}")
    assert not np.allclose(base.loc[~keep, "sue"], changed.loc[~keep, "sue"], equal_nan=True)
