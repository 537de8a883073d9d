"""Fundamental features: formulas on hand-made reports, real-data values and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED_DATA, SMALL_SYMBOLS, require_shared
from vfr.data.fundamentals import clean_earnings, read_earnings
from vfr.features.fundamental import (
    FUNDAMENTAL_COLUMNS,
    fundamental_features,
    quarterly_earnings_features,
    split_basis_price,
)

EARNINGS = SHARED_DATA / "earnings" / "earnings_surprises.parquet"
CUTS = ["2011-07-19", "2014-06-09", "2016-10-25", "2019-01-29"]


@pytest.fixture(scope="module")
def earnings_small() -> pd.DataFrame:
    require_shared(EARNINGS)
    e = read_earnings(EARNINGS)
    return e[e["symbol"].isin(SMALL_SYMBOLS)].reset_index(drop=True)


def _reports(eps: list[float], est: list[float] | None = None, symbol: str = "XYZ") -> pd.DataFrame:
    fiscal = pd.date_range("2010-03-31", periods=len(eps), freq="QE")
    est = est if est is not None else [e - 0.01 for e in eps]
    return clean_earnings(pd.DataFrame({
        "symbol": symbol, "fiscal_date_ending": fiscal,
        "reported_date": fiscal + pd.Timedelta(days=25), "reported_eps": eps,
        "estimated_eps": est}))


def test_clean_earnings_drops_bad_dates_and_derives_surprise():
    frame = pd.DataFrame({
        "symbol": ["A", "A", "A"],
        "fiscal_date_ending": pd.to_datetime(["2015-03-31", "2015-06-30", "2015-09-30"]),
        "reported_date": pd.to_datetime(["2015-04-20", "2015-07-02", "2015-10-20"]),
        "reported_eps": [1.0, 1.1, 1.2], "estimated_eps": [0.8, 1.0, -0.5]})
    out = clean_earnings(frame)
    assert list(out["fiscal_date_ending"].dt.month) == [3, 9]  # 2-day gap dropped
    np.testing.assert_allclose(out["surprise"], [0.2, 1.7])
    np.testing.assert_allclose(out["surprise_pct"], [25.0, 340.0])


def test_quarterly_formulas_by_hand():
    eps = [1.0, 1.1, 0.9, 1.2, 1.3, 1.0, 1.4, 1.1, 1.5, 1.6, 1.2, 1.9, 2.0]
    q = quarterly_earnings_features(_reports(eps))
    ttm = pd.Series(eps).rolling(4).sum()
    np.testing.assert_allclose(q["eps_ttm"], ttm, equal_nan=True)
    growth = (ttm - ttm.shift(4)) / ttm.shift(4).abs()
    np.testing.assert_allclose(q["eps_growth_yoy"], growth, equal_nan=True)
    ue = pd.Series(eps) - pd.Series(eps).shift(4)
    sd = ue.shift(1).rolling(8, min_periods=4).std(ddof=1)
    np.testing.assert_allclose(q["sue"], ue / sd, equal_nan=True)
    assert q["sue"].notna().sum() == len(eps) - 8  # 4 for UE, then 4 prior UEs
    assert q["surprise_beat_share_8q"].dropna().eq(1.0).all()


def test_gap_in_quarters_gives_missing_ttm_not_a_wrong_sum():
    e = _reports([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    e = e.drop(index=4).reset_index(drop=True)  # a missing quarter
    q = quarterly_earnings_features(e)
    assert np.isnan(q["eps_ttm"].iloc[4])  # the 4 rows now span 15 months


def test_report_used_only_after_its_reported_date(prices_small, earnings_small):
    ko = prices_small[prices_small["symbol"] == "KO"].reset_index(drop=True)
    e = earnings_small[earnings_small["symbol"] == "KO"]
    f = fundamental_features(ko, e)
    for _, rep in e[e["reported_date"].between("2011-01-01", "2019-06-30")].iterrows():
        on_day = f[f["date"] == rep["reported_date"]]
        after = f[f["date"] > rep["reported_date"]].head(1)
        if on_day.empty or after.empty:
            continue
        assert after["surprise_pct_last"].iloc[0] == pytest.approx(rep["surprise_pct"], rel=1e-6)
        # on the report day itself the previous report is still the latest usable one
        prev = e[e["reported_date"] < rep["reported_date"]].iloc[-1]
        assert on_day["surprise_pct_last"].iloc[0] == pytest.approx(prev["surprise_pct"], rel=1e-6)


def test_pe_and_dividend_yield_by_hand(prices_small, earnings_small):
    aapl = prices_small[prices_small["symbol"] == "AAPL"].reset_index(drop=True)
    e = earnings_small[earnings_small["symbol"] == "AAPL"]
    f = fundamental_features(aapl, e)
    day = pd.Timestamp("2013-06-03")  # before the 2014 7:1 split
    row = f[f["date"] == day].iloc[0]
    known = e[e["reported_date"] < day].tail(4)
    eps_ttm = known["reported_eps"].sum()
    price = aapl.loc[aapl["date"] == day, "close_raw"].iloc[0] / 7.0  # restated in today's shares
    assert row["eps_ttm"] == pytest.approx(eps_ttm, rel=1e-6)
    assert row["pe_ttm"] == pytest.approx(price / eps_ttm, rel=1e-5)
    # TTM dividend / close, both as traded (AAPL paid 3.05 USD on 2012-08-09 ... 2013-05-09)
    win = aapl[(aapl["date"] > day - pd.Timedelta(days=365)) & (aapl["date"] <= day)]
    dy = win["dividend_amount"].sum() / aapl.loc[aapl["date"] == day, "close_raw"].iloc[0]
    assert row["dividend_yield_ttm"] == pytest.approx(dy, rel=1e-5)
    # the split does not move the yield: same ratio the day before and after 2014-06-09
    around = f[f["date"].between("2014-06-06", "2014-06-09")]["dividend_yield_ttm"].to_numpy()
    assert around[1] == pytest.approx(around[0], rel=0.05)


def test_split_basis_price_uses_only_later_splits():
    prices = pd.DataFrame({"symbol": ["A"] * 4, "date": pd.date_range("2020-01-01", periods=4),
                           "close_raw": [100.0, 102.0, 51.0, 52.0],
                           "split_coefficient": [1.0, 1.0, 2.0, 1.0],
                           "dividend_amount": [0.0, 1.0, 0.0, 0.5]})
    price, div = split_basis_price(prices)
    np.testing.assert_allclose(price, [50.0, 51.0, 51.0, 52.0])
    np.testing.assert_allclose(div, [0.0, 0.5, 0.0, 0.5])


def _perturb_after(prices, earnings, cut, seed):
    rng = np.random.default_rng(seed)
    p = prices.copy()
    after = (p["date"] > cut).to_numpy()
    for col in ("open", "high", "low", "close", "close_raw"):
        p.loc[after, col] = p.loc[after, col].to_numpy() * rng.lognormal(0, 0.3, after.sum())
    p.loc[after, "dividend_amount"] = rng.choice([0.0, 5.0], after.sum())
    e = earnings.copy()
    late = (e["reported_date"] >= cut).to_numpy()  # published on the cut day or later
    for col in ("reported_eps", "estimated_eps", "surprise", "surprise_pct"):
        e.loc[late, col] = rng.normal(0, 10, late.sum())
    # an extra, fake report published on the cut day itself
    extra = e[e["reported_date"] < cut].groupby("symbol").tail(1).copy()
    extra["fiscal_date_ending"] = extra["fiscal_date_ending"] + pd.Timedelta(days=1)
    extra["reported_date"] = cut
    extra["reported_eps"] = 99.0
    extra["surprise_pct"] = 999.0
    return p, pd.concat([e, extra], ignore_index=True)


@pytest.mark.parametrize("cut_s", CUTS)
def test_no_lookahead_earnings_and_prices(prices_small, earnings_small, cut_s):
    cut = pd.Timestamp(cut_s)
    base = fundamental_features(prices_small, earnings_small)
    p2, e2 = _perturb_after(prices_small, earnings_small, cut, seed=len(cut_s))
    changed = fundamental_features(p2, clean_earnings(e2))
    keep = (base["date"] <= cut).to_numpy()
    for col in FUNDAMENTAL_COLUMNS:
        np.testing.assert_array_equal(base.loc[keep, col].to_numpy(),
                                      changed.loc[keep, col].to_numpy(),
                                      err_msg=f"{col} changed at or before {cut.date()}")
    # and the perturbation is visible afterwards (the test can fail)
    assert not np.allclose(base.loc[~keep, "surprise_pct_last"],
                           changed.loc[~keep, "surprise_pct_last"], equal_nan=True)


def test_late_filed_earlier_quarter_does_not_leak_backwards():
    eps = [1.0, 1.1, 0.9, 1.2, 1.3, 1.0, 1.4, 1.1]
    e = _reports(eps)
    e.loc[5, "reported_date"] = pd.Timestamp("2012-06-01")  # Q2 2011 filed very late
    prices = pd.DataFrame({"symbol": "XYZ", "date": pd.bdate_range("2011-01-03", "2012-12-31")})
    prices["close_raw"] = 10.0
    f = fundamental_features(prices, e).set_index("date")
    # Q3 2011 (published 2011-10-25) sums Q2 2011 into its TTM: unusable before 2012-06-02
    assert f.loc["2011-11-01", "eps_ttm"] == pytest.approx(sum(eps[1:5]))
    # ... and so is Q4 2011: nothing newer than Q1 2011 is usable, which is stale by June
    assert np.isnan(f.loc["2012-06-01", "eps_ttm"])
    assert f.loc["2012-06-04", "eps_ttm"] == pytest.approx(sum(eps[4:8]))


def test_real_coverage(prices_small, earnings_small):
    f = fundamental_features(prices_small, earnings_small)
    cover = f[list(FUNDAMENTAL_COLUMNS)].notna().mean()
    assert (cover > 0.85).all(), cover
    # absent inputs stay missing, never zero
    none = fundamental_features(prices_small, earnings_small.iloc[:0])
    assert none["sue"].isna().all() and none["eps_ttm"].isna().all()


def test_ratios_joined_as_of_and_missing_not_zero(prices_small):
    ko = prices_small[prices_small["symbol"] == "KO"].reset_index(drop=True)
    ratios = pd.DataFrame({"symbol": ["KO", "KO"],
                           "available_date": pd.to_datetime(["2015-02-26", "2015-04-30"]),
                           "roe": [0.25, np.nan], "net_margin": [0.16, 0.17]})
    f = fundamental_features(ko, ko.iloc[:0].assign(fiscal_date_ending=pd.NaT, reported_date=pd.NaT,
                                                    reported_eps=np.nan, estimated_eps=np.nan,
                                                    surprise=np.nan, surprise_pct=np.nan),
                             ratios=ratios)
    at = f.set_index("date")
    assert np.isnan(at.loc["2015-02-25", "roe"])
    assert at.loc["2015-02-26", "roe"] == pytest.approx(0.25)
    assert np.isnan(at.loc["2015-05-01", "roe"])  # provider had no value: missing, not 0
    assert at.loc["2015-05-01", "net_margin"] == pytest.approx(0.17)
    assert "debt_to_equity" not in f.columns
