"""Macro features: publication lags, formulas and no look-ahead on the real FRED-MD/VIX/GDP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED_DATA, require_shared
from vfr.data.fundamentals import MacroData, read_macro
from vfr.features.macro import (
    MACRO_MARKET_FEATURES,
    MACRO_STOCK_FEATURES,
    macro_features,
    vix_features,
)

MACRO = SHARED_DATA / "macro"
CUTS = ["2011-08-08", "2013-03-01", "2016-02-29", "2019-05-15"]


@pytest.fixture(scope="module")
def macro() -> MacroData:
    require_shared(MACRO / "fred_md.parquet")
    return read_macro(MACRO)


@pytest.fixture(scope="module")
def prices8(prices_small) -> pd.DataFrame:
    syms = ["AAPL", "JPM", "XOM", "KO", "INTC", "PFE", "GE", "MMM"]
    return prices_small[prices_small["symbol"].isin(syms)].reset_index(drop=True)


@pytest.fixture(scope="module")
def base(prices8, macro) -> pd.DataFrame:
    return macro_features(prices8, macro)


def test_fred_md_month_used_two_months_later(base, macro):
    fred = macro.fred_md.set_index("month")
    day = base.drop_duplicates("date").set_index("date")
    # January 2019 is usable from 2019-03-01; on 2019-02-28 December 2018 is the latest
    assert day.loc["2019-03-01", "fedfunds"] == pytest.approx(fred.loc["2019-01-01", "FEDFUNDS"])
    assert day.loc["2019-02-28", "fedfunds"] == pytest.approx(fred.loc["2018-12-01", "FEDFUNDS"])
    assert day.loc["2019-03-01", "term_spread"] == pytest.approx(
        fred.loc["2019-01-01", "GS10"] - fred.loc["2019-01-01", "TB3MS"], abs=1e-5)
    assert day.loc["2019-03-01", "credit_spread"] == pytest.approx(
        fred.loc["2019-01-01", "BAA"] - fred.loc["2019-01-01", "AAA"], abs=1e-5)
    cpi = fred["CPIAUCSL"]
    assert day.loc["2019-03-01", "cpi_yoy"] == pytest.approx(
        cpi.loc["2019-01-01"] / cpi.loc["2018-01-01"] - 1, rel=1e-5)


def test_gdp_quarter_used_30_days_after_its_end(base, macro):
    g = macro.gdp.set_index("date")["level-chained"]
    day = base.drop_duplicates("date").set_index("date")
    q3 = g.loc["2018-07-01"] / g.loc["2017-07-01"] - 1  # Q3 2018 ends 09-30, usable 10-30
    q2 = g.loc["2018-04-01"] / g.loc["2017-04-01"] - 1
    assert day.loc["2018-10-30", "gdp_growth_yoy"] == pytest.approx(q3, rel=1e-5)
    assert day.loc["2018-10-29", "gdp_growth_yoy"] == pytest.approx(q2, rel=1e-5)


def test_vix_features_by_hand():
    vix = pd.DataFrame({"date": pd.bdate_range("2015-01-01", periods=300),
                        "close": np.arange(300, 0, -1, dtype=float)})
    v = vix_features(vix)
    assert v["vix_chg_21d"].iloc[21] == -21.0
    assert np.isnan(v["vix_pct_252d"].iloc[250])
    assert v["vix_pct_252d"].iloc[251] == pytest.approx(1 / 252)  # falling: today the lowest


def test_market_beta_matches_ols(base, prices8):
    p = prices8.copy()
    p["ret"] = p.groupby("symbol")["close"].pct_change(fill_method=None)
    mkt = p.groupby("date")["ret"].mean()
    day = pd.Timestamp("2017-06-30")
    jpm = p[(p["symbol"] == "JPM") & (p["date"] <= day)].tail(252)
    x = mkt.loc[jpm["date"]].to_numpy()
    y = jpm["ret"].to_numpy()
    slope = np.polyfit(x, y, 1)[0]
    got = base[(base["symbol"] == "JPM") & (base["date"] == day)]["beta_mkt_252d"].iloc[0]
    assert got == pytest.approx(slope, rel=1e-4)


def test_regime_tilts(base):
    stressed = base["vix_pct_252d"] >= 0.8
    both = base["beta_regime_tilt"].notna()
    np.testing.assert_allclose(base.loc[stressed & both, "beta_regime_tilt"],
                               -base.loc[stressed & both, "beta_mkt_252d"])
    np.testing.assert_allclose(base.loc[~stressed & both, "beta_regime_tilt"],
                               base.loc[~stressed & both, "beta_mkt_252d"])
    assert stressed.any() and (~stressed).any()


def test_coverage(base):
    assert base[list(MACRO_MARKET_FEATURES)].notna().all().all()
    assert (base[list(MACRO_STOCK_FEATURES)].notna().mean() > 0.7).all()


def _perturb(prices, macro, cut, seed):
    rng = np.random.default_rng(seed)
    fred = macro.fred_md.copy()
    unpublished = (fred["month"] + pd.DateOffset(months=2)) > cut
    cols = [c for c in fred.columns if c != "month"]
    fred.loc[unpublished, cols] = rng.normal(5, 3, (unpublished.sum(), len(cols)))
    vix = macro.vix.copy()
    vix.loc[vix["date"] > cut, "close"] = rng.uniform(5, 90, (vix["date"] > cut).sum())
    gdp = macro.gdp.copy()
    late = (gdp["date"] + pd.DateOffset(months=3) + pd.Timedelta(days=30)) > cut
    gdp.loc[late, "level-chained"] = rng.uniform(1e3, 1e5, late.sum())
    p = prices.copy()
    after = (p["date"] > cut).to_numpy()
    p.loc[after, "close"] = p.loc[after, "close"].to_numpy() * rng.lognormal(0, 0.3, after.sum())
    return p, MacroData(fred, vix, gdp)


@pytest.mark.parametrize("cut_s", CUTS)
def test_no_lookahead(prices8, macro, base, cut_s):
    cut = pd.Timestamp(cut_s)
    p2, m2 = _perturb(prices8, macro, cut, seed=len(cut_s))
    changed = macro_features(p2, m2)
    keep = (base["date"] <= cut).to_numpy()
    for col in (*MACRO_MARKET_FEATURES, *MACRO_STOCK_FEATURES):
        np.testing.assert_array_equal(base.loc[keep, col].to_numpy(),
                                      changed.loc[keep, col].to_numpy(),
                                      err_msg=f"{col} changed at or before {cut.date()}")
    for col in ("fedfunds", "vix", "gdp_growth_yoy", "beta_mkt_252d", "rate_beta_36m"):
        assert not np.allclose(base.loc[~keep, col], changed.loc[~keep, col], equal_nan=True), col
