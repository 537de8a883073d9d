"""Fundamental features: formulas on hand-made reports, real-data values, no look-ahead and
basis safety (no feature or rank depends on a per-stock constant scale of EPS)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED_DATA, SMALL_SYMBOLS, SP500_UNIVERSE, require_shared
from vfr.data import read_universe
from vfr.data.fundamentals import clean_earnings, read_earnings, read_macro
from vfr.errors import DataValidationError
from vfr.features import build_all_features
from vfr.features.fundamental import (
    FUNDAMENTAL_COLUMNS,
    LEVEL_RATIO_COLUMNS,
    fundamental_features,
    own_history_z,
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


def test_growth_guard_is_scale_free():
    tiny = [0.001] * 4 + [0.5] * 8  # previous TTM 0.004 USD: a value (clipped), not NaN
    zero = [1.0, -1.0, 1.0, -1.0] + [1.0] * 8  # previous TTM exactly 0: NaN

    def frame(k: float) -> pd.DataFrame:
        return pd.concat([_reports([x * k for x in tiny], [(x - 0.01) * k for x in tiny], "A"),
                          _reports([x * k for x in zero], [(x - 0.01) * k for x in zero], "B")],
                         ignore_index=True)

    q = quarterly_earnings_features(frame(1.0))
    a, b = q[q["symbol"] == "A"], q[q["symbol"] == "B"]
    assert a["eps_growth_yoy"].iloc[7] == 10.0  # (2.0 - 0.004) / 0.004, clipped to 10
    assert np.isnan(b["eps_growth_yoy"].iloc[7]) and np.isnan(b["eps_growth_yoy"].iloc[8])
    assert b["eps_growth_yoy"].iloc[9] == pytest.approx(1.0)  # (4 - 2) / 2
    for k in (1e-3, 4.0, 1e3):  # every report feature is a ratio of EPS to EPS
        scaled = quarterly_earnings_features(frame(k))
        for col in ("eps_growth_yoy", "sue", "surprise_beat_share_8q"):
            np.testing.assert_allclose(scaled[col], q[col], rtol=1e-9, equal_nan=True,
                                       err_msg=f"{col}, k={k}")


def test_own_history_z_by_hand_point_in_time_and_scale_free():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0.05, 0.01, 400), rng.normal(-0.02, 0.03, 300)])
    x[[5, 50, 420]] = np.nan
    codes = np.repeat([0, 1], [400, 300])
    z = own_history_z(x, codes, window=100, min_obs=60)
    for i in (150, 399, 650):  # trailing 100 rows of the same symbol, row i included
        lo = 0 if i < 400 else 400
        w = x[max(lo, i - 99):i + 1]
        assert z[i] == pytest.approx((x[i] - np.nanmean(w)) / np.nanstd(w, ddof=1), rel=1e-9)
    assert np.isnan(z[:60]).all() and not np.isnan(z[61]) and np.isnan(z[400:459]).all()
    assert np.isnan(z[50]) and np.isnan(z[420])  # unknown value: unknown z
    scaled = x * np.where(codes == 1, 0.05, 1.0)
    np.testing.assert_allclose(own_history_z(scaled, codes, window=100, min_obs=60), z,
                               rtol=1e-9, atol=1e-12, equal_nan=True)
    later = x.copy()
    later[200:400] = 99.0  # rows after t = 199 of symbol 0 change: z up to t does not
    np.testing.assert_array_equal(own_history_z(later, codes, window=100, min_obs=60)[:200],
                                  z[:200])
    flat = own_history_z(np.full(100, 0.07), np.zeros(100, int), window=50, min_obs=10)
    assert np.isnan(flat).all()  # no dispersion: undefined, not +-inf


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
    """With a split table the level ratios are built on one share basis: AAPL's EPS file is
    adjusted for its 4:1 split of 2020 (after the last price date), so its factor is 4."""
    aapl = prices_small[prices_small["symbol"] == "AAPL"].reset_index(drop=True)
    e = earnings_small[earnings_small["symbol"] == "AAPL"]
    f = fundamental_features(aapl, e, eps_split_factors={"AAPL": 4.0})
    day = pd.Timestamp("2013-06-03")  # before the 2014 7:1 split
    row = f[f["date"] == day].iloc[0]
    known = e[e["reported_date"] < day].tail(4)
    eps_ttm = known["reported_eps"].sum()
    price = aapl.loc[aapl["date"] == day, "close_raw"].iloc[0] / 7.0  # restated in today's shares
    assert row["eps_ttm"] == pytest.approx(eps_ttm * 4.0, rel=1e-6)
    assert row["pe_ttm"] == pytest.approx(price / (eps_ttm * 4.0), rel=1e-5)
    assert row["earnings_yield"] == pytest.approx(eps_ttm * 4.0 / price, rel=1e-5)
    # on one share basis AAPL's P/E is a plausible level (about 10 in mid-2013, 25 at 2019 end)
    assert 7 < row["pe_ttm"] < 15 and 18 < f["pe_ttm"].iloc[-1] < 30
    # TTM dividend / close, both as traded (AAPL paid 3.05 USD on 2012-08-09 ... 2013-05-09)
    win = aapl[(aapl["date"] > day - pd.Timedelta(days=365)) & (aapl["date"] <= day)]
    dy = win["dividend_amount"].sum() / aapl.loc[aapl["date"] == day, "close_raw"].iloc[0]
    assert row["dividend_yield_ttm"] == pytest.approx(dy, rel=1e-5)
    # the split does not move the yield: same ratio the day before and after 2014-06-09
    around = f[f["date"].between("2014-06-06", "2014-06-09")]["dividend_yield_ttm"].to_numpy()
    assert around[1] == pytest.approx(around[0], rel=0.05)


def test_level_ratios_only_with_a_split_table(prices_small, earnings_small):
    two = prices_small[prices_small["symbol"].isin(["AAPL", "KO"])].reset_index(drop=True)
    e = earnings_small[earnings_small["symbol"].isin(["AAPL", "KO"])]
    default = fundamental_features(two, e)
    assert list(default.columns) == ["symbol", "date", *FUNDAMENTAL_COLUMNS]
    assert not set(LEVEL_RATIO_COLUMNS) & set(default.columns)
    table = fundamental_features(two, e, eps_split_factors={"AAPL": 4.0})
    assert list(table.columns) == ["symbol", "date", *FUNDAMENTAL_COLUMNS, *LEVEL_RATIO_COLUMNS]
    for col in FUNDAMENTAL_COLUMNS:  # the basis-safe features do not depend on the table
        np.testing.assert_array_equal(table[col], default[col], err_msg=col)
    one_basis = fundamental_features(two, e, eps_split_factors={})  # empty: one basis already
    ko = (table["symbol"] == "KO").to_numpy()  # not in the table: factor 1
    np.testing.assert_array_equal(table.loc[ko, "pe_ttm"], one_basis.loc[ko, "pe_ttm"])
    aapl = ~ko
    np.testing.assert_allclose(table.loc[aapl, "pe_ttm"], one_basis.loc[aapl, "pe_ttm"] / 4.0,
                               rtol=1e-6, equal_nan=True)
    for bad in ({"AAPL": 0.0}, {"AAPL": -4.0}, {"AAPL": float("nan")}):
        with pytest.raises(DataValidationError, match="split table"):
            fundamental_features(two, e, eps_split_factors=bad)


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
    f = fundamental_features(prices, e, eps_split_factors={}).set_index("date")
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
    none = fundamental_features(prices_small, earnings_small.iloc[:0], eps_split_factors={})
    assert none["sue"].isna().all() and none["eps_ttm"].isna().all()
    assert none["ey_rel_3y"].isna().all()


def _scale_eps(earnings: pd.DataFrame, symbol: str, k: float) -> pd.DataFrame:
    """One stock's whole EPS history times ``k`` (a different share basis); surprise_pct, a
    ratio, is unchanged."""
    e = earnings.copy()
    rows = (e["symbol"] == symbol).to_numpy()
    for col in ("reported_eps", "estimated_eps", "surprise"):
        e.loc[rows, col] = e.loc[rows, col].to_numpy() * k
    return e


def _assert_same_columns(base: pd.DataFrame, other: pd.DataFrame, context: str) -> None:
    assert list(other.columns) == list(base.columns)
    for col in base.columns[2:]:
        a, b = base[col].to_numpy(float), other[col].to_numpy(float)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{col}: NaN ({context})")
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, equal_nan=True,
                                   err_msg=f"{col} ({context})")


@pytest.fixture(scope="module")
def all_inputs(earnings_small):
    require_shared(SP500_UNIVERSE)
    require_shared(SHARED_DATA / "macro" / "fred_md.parquet")
    return {"universe": read_universe(SP500_UNIVERSE), "macro": read_macro(SHARED_DATA / "macro")}


@pytest.mark.parametrize(("symbol", "k"), [("AAPL", 4.0), ("AAPL", 0.05), ("INTC", 0.05)])
def test_no_feature_or_rank_depends_on_a_stocks_eps_scale(prices_small, earnings_small,
                                                          all_inputs, symbol, k):
    """Issue 12: multiplying one real stock's whole EPS history by k (the EPS file adjusted
    for a later split) changes no feature and no rank, over every group of the default set
    (20 stocks, 2010-2019). AAPL's file really is on a 4x later basis (its 2020 split)."""
    scaled = _scale_eps(earnings_small, symbol, k)
    _assert_same_columns(fundamental_features(prices_small, earnings_small),
                         fundamental_features(prices_small, scaled), f"{symbol} x {k}")
    base = build_all_features(prices_small, earnings=earnings_small, **all_inputs)
    other = build_all_features(prices_small, earnings=scaled, **all_inputs)
    assert base.attrs["groups_present"] == other.attrs["groups_present"]
    assert any(c.endswith("_rank") for c in base.columns) and "ey_rel_3y_rank" in base.columns
    _assert_same_columns(base, other, f"{symbol} x {k}, build_all_features")
    # the test can fail: the level ratios (split table) do move with the scale
    lv = fundamental_features(prices_small, earnings_small, eps_split_factors={})
    lv_k = fundamental_features(prices_small, scaled, eps_split_factors={})
    rows = (lv["symbol"] == symbol).to_numpy()
    np.testing.assert_allclose(lv_k.loc[rows, "earnings_yield"], lv.loc[rows, "earnings_yield"] * k,
                               rtol=1e-5, equal_nan=True)


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
