"""Point-in-time universe: membership from index-constitution, the mask, the store, ingest,
member-only features and labels (real S&P 500 prices where ../shared is present)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SP500_PRICES, SP500_UNIVERSE, require_shared
from vfr.data import MarketStore, ingest
from vfr.data.universe import (
    clean_membership,
    is_pit_source,
    membership_mask,
    read_membership_csv,
    sp500_membership,
)
from vfr.errors import DataValidationError
from vfr.features import build_all_features
from vfr.features.cross_section import rank_matrix
from vfr.ml import make_labels

#: Late joiners of the development set (with their S&P 500 addition dates) and early members.
LATE = {"NVDA": "2001-11-30", "AMZN": "2005-11-18", "NFLX": "2010-12-20"}
SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM", "KO", *LATE]


def test_sp500_membership_of_the_2021_tickers() -> None:
    m = sp500_membership(["NVDA", "AAPL", "TSLA", "FB", "MMC", "VIAC", "BRK.B"])
    iv = m.intervals.set_index("symbol")
    assert iv.loc["NVDA", "start_date"] == pd.Timestamp("2001-11-30")
    assert pd.isna(iv.loc["NVDA", "end_date"])
    assert iv.loc["TSLA", "start_date"] == pd.Timestamp("2020-12-21")  # after the development set ends
    assert m.resolved["FB"] == "META" and m.resolved["MMC"] == "MRSH"  # events table / alias table
    assert "VIAC" in m.unmatched and "VIAC" not in iv.index
    assert is_pit_source("index-constitution:sp500") and is_pit_source(" Index-Constitution:SP500 ")
    assert not is_pit_source("constituents.csv")


def test_membership_mask_by_hand() -> None:
    m = clean_membership(pd.DataFrame({
        "symbol": ["A", "A", "B"],
        "start_date": ["2001-01-01", "2005-01-01", "2003-06-30"],
        "end_date": ["2002-01-01", None, "2004-01-01"]}))
    sym = np.array(["A", "A", "A", "A", "B", "B", "B", "C"], dtype=object)
    day = pd.to_datetime(["2000-12-31", "2001-01-01", "2002-01-01", "2019-01-01",
                          "2003-06-29", "2003-06-30", "2004-01-01", "2010-01-01"]).to_numpy()
    np.testing.assert_array_equal(membership_mask(sym, day, m),
                                  [False, True, False, True, False, True, False, False])
    assert membership_mask(sym, day, None).all()  # static universe
    with pytest.raises(DataValidationError, match=r"row 2.*ends on or before it starts"):
        clean_membership(pd.DataFrame({"symbol": ["A", "B"], "start_date": ["2001-01-01", "2005-01-01"],
                                       "end_date": [None, "2004-01-01"]}))
    with pytest.raises(DataValidationError, match=r"row 1, column 'start_date': not a date"):
        clean_membership(pd.DataFrame({"symbol": ["A"], "start_date": ["soon"], "end_date": [None]}))


@pytest.fixture(scope="module")
def late_joiner_prices(tmp_path_factory) -> tuple[pd.DataFrame, object]:
    path = require_shared()
    raw = pd.read_parquet(path, filters=[("symbol", "in", SYMBOLS), ("date", "<", pd.Timestamp("2012-01-01"))])
    file = tmp_path_factory.mktemp("pit") / "prices.parquet"
    raw.to_parquet(file)
    return raw, file


def test_ingest_writes_the_point_in_time_universe(late_joiner_prices, tmp_path) -> None:
    raw, file = late_joiner_prices
    require_shared(SP500_UNIVERSE)
    with MarketStore(f"duckdb:///{tmp_path / 'store.duckdb'}") as store:
        report = ingest(file, store, universe_path=[SP500_UNIVERSE, "index-constitution:sp500"])
        iv = store.read_membership()
        assert set(iv["symbol"]) == set(SYMBOLS)
        # rows removed: the late joiners' rows before they joined, counted from the raw file
        expected = sum(int(((raw["symbol"] == s) & (raw["date"] < d)).sum()) for s, d in LATE.items())
        assert report.outside_universe == expected > 2000
        assert f"{expected:,} price rows outside it" in str(report)
        assert set(SYMBOLS) <= set(store.read_universe()["symbol"])  # names and sectors kept

        # a csv of intervals is a point-in-time list too
        csv = tmp_path / "members.csv"
        iv.assign(end_date=iv["end_date"].dt.strftime("%Y-%m-%d")).to_csv(csv, index=False)
        pd.testing.assert_frame_equal(read_membership_csv(csv), iv)
        ingest(file, store, universe_path=csv)
        pd.testing.assert_frame_equal(store.read_membership(), iv)

        # a static list alone: no membership table, every row a member
        ingest(file, store, universe_path=SP500_UNIVERSE)
        assert store.read_membership() is None
        with pytest.raises(DataValidationError, match="neither a file nor a known point-in-time source"):
            ingest(file, store, universe_path="index-constitution:nasdaq")


def test_features_and_labels_of_members_only(late_joiner_prices) -> None:
    raw, _ = late_joiner_prices
    from vfr.data import adjust_prices

    prices = adjust_prices(raw)
    membership = sp500_membership(SYMBOLS).intervals
    members = membership_mask(prices["symbol"].to_numpy(), prices["date"].to_numpy(), membership)
    every = build_all_features(prices)
    pit = build_all_features(prices, membership=membership)
    # only member rows, with the per-stock values computed from the whole history
    assert len(pit) == int(members.sum()) < len(every)
    nvda = pit[pit["symbol"] == "NVDA"]
    assert nvda["date"].min() == pd.Timestamp("2001-11-30")
    keyed = every.set_index(["symbol", "date"]).loc[pd.MultiIndex.from_frame(pit[["symbol", "date"]])]
    np.testing.assert_allclose(pit["ret_60d"].to_numpy(), keyed["ret_60d"].to_numpy(), equal_nan=True)
    # ranks among the date's members only: NVDA in 2000 no longer moves AAPL's rank
    codes, _ = pd.factorize(pit["date"])
    expected = rank_matrix(pit[["ret_60d"]].to_numpy(np.float32), codes)[:, 0]
    np.testing.assert_allclose(pit["ret_60d_rank"].to_numpy(), expected, equal_nan=True)
    assert not np.allclose(keyed["ret_60d_rank"].to_numpy(), expected, equal_nan=True)

    # the market of beta_mkt_252d is the members' mean return: a stock that joined later is
    # not in the market of the days before (checked against a hand OLS for one row)
    from vfr.features.macro import market_beta

    keys = prices[["symbol", "date", "close"]].reset_index(drop=True)
    ret = keys.groupby("symbol")["close"].pct_change()
    mkt = ret.where(members).groupby(keys["date"]).transform("mean")
    beta = market_beta(keys, keys["close"].to_numpy(float), members=members)
    row = int(np.flatnonzero((keys["symbol"] == "AAPL").to_numpy() & (keys["date"] == "2004-06-30").to_numpy())[0])
    x, y = mkt.iloc[row - 251:row + 1].to_numpy(), ret.iloc[row - 251:row + 1].to_numpy()
    assert beta[row] == pytest.approx(np.cov(x, y)[0, 1] / np.var(x, ddof=1), rel=1e-9)
    assert beta[row] != pytest.approx(market_beta(keys, keys["close"].to_numpy(float))[row], rel=1e-6)

    # sector indices over members: before NVDA joined, AAPL and MSFT are the only IT members
    # here (fewer than 3: no sector index), with NVDA counted they would be three
    from vfr.data import read_universe
    from vfr.features.alternative import sector_relative_strength

    sectors = read_universe(require_shared(SP500_UNIVERSE))
    day = ((keys["symbol"] == "AAPL") & (keys["date"] == "2001-06-29")).to_numpy()
    pit_rel = sector_relative_strength(keys, sectors, members=members)["sector_rel_20d"].to_numpy()
    all_rel = sector_relative_strength(keys, sectors)["sector_rel_20d"].to_numpy()
    assert np.isnan(pit_rel[day]).all() and np.isfinite(all_rel[day]).all()

    labels = make_labels(prices, {"1w": 5}, membership=membership)
    member_rows = labels[members & labels["fwd_excess_1w"].notna().to_numpy()]
    # excess returns are over the members' mean: they sum to zero on each date
    sums = member_rows.groupby("date")["fwd_excess_1w"].sum()
    assert np.abs(sums).max() < 1e-12
    assert labels.loc[~members, "fwd_dir_1w"].isna().all()
    assert labels.loc[~members, "fwd_ret_1w"].notna().any()  # the forward return itself is kept


def test_full_development_set_rows_removed() -> None:
    """What the point-in-time universe removes from the development set (about 30% of rows)."""
    p = pd.read_parquet(require_shared(SP500_PRICES), columns=["symbol", "date"])
    m = sp500_membership(p["symbol"].unique())
    mask = membership_mask(p["symbol"].to_numpy(), p["date"].to_numpy(), m.intervals)
    assert 0.2 < (~mask).mean() < 0.4
    per_date = pd.Series(mask).groupby(p["date"].to_numpy()).sum()
    assert per_date.min() >= 150 and per_date.max() <= 505
