"""Short histories, zero volume, missing values, flat prices and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.errors import DataValidationError
from vfr.features import (
    FEATURES,
    build_features,
    compute_symbol_features,
    feature_names,
)


def _finite_or_nan(frame: pd.DataFrame) -> None:
    values = frame[feature_names()].to_numpy(dtype=float)
    assert not np.isinf(values).any()


def test_short_history_is_warmup_nan(one_symbol):
    p = one_symbol("JNJ").iloc[:10]
    f = compute_symbol_features(p)
    assert len(f) == 10
    _finite_or_nan(f)
    for feat in FEATURES:
        col = f[feat.name].to_numpy()
        if feat.window >= 10:
            assert np.isnan(col).all(), feat.name
    assert np.isfinite(f["ret_1d"].to_numpy()[1:]).all()
    assert np.isfinite(f["ret_5d"].to_numpy()[5:]).all()
    assert np.isnan(f["ret_5d"].to_numpy()[:5]).all()


def test_tiny_and_empty_inputs(one_symbol, prices_small):
    for n in (0, 1, 2):
        f = compute_symbol_features(one_symbol("T").iloc[:n])
        assert len(f) == n and list(f.columns[2:]) == feature_names()
        others = [name for name in feature_names() if name != "ret_1d"]
        assert f[others].isna().all().all()
        assert f["ret_1d"].notna().sum() == max(n - 1, 0)
    empty = build_features(prices_small.iloc[:0])
    assert len(empty) == 0 and len(empty.columns) == 2 + 2 * len(FEATURES)


def test_build_features_with_a_short_symbol(prices_small):
    prices = prices_small[prices_small["symbol"].isin(["HD", "MRK"])]
    short = prices_small[prices_small["symbol"] == "BA"].iloc[-10:]
    f = build_features(pd.concat([prices, short], ignore_index=True))
    ba = f[f["symbol"] == "BA"]
    assert len(ba) == 10 and ba["rsi_14"].isna().all() and ba["rsi_14_rank"].isna().all()
    assert ba["ret_1d_rank"].iloc[1:].notna().all()
    _finite_or_nan(f)


def test_zero_volume_days_give_nan_not_inf(one_symbol):
    p = one_symbol("PFE")
    zero = slice(1000, 1030)  # 30 halted days
    p.loc[p.index[zero], "volume"] = 0.0
    f = compute_symbol_features(p)
    _finite_or_nan(f)
    all_zero_window = np.arange(1019, 1030)  # the whole 20-day window has volume 0
    for name in ("dist_vwap_20", "obv_trend_20", "volume_z_20"):
        assert np.isnan(f[name].to_numpy()[all_zero_window]).all(), name
    # a partly-zero window is still defined, and the series recovers afterwards
    assert np.isfinite(f["dist_vwap_20"].to_numpy()[1010])
    assert np.isfinite(f[["dist_vwap_20", "obv_trend_20", "volume_z_20"]].to_numpy()[1060]).all()
    # price-only features are untouched by volume
    base = compute_symbol_features(one_symbol("PFE"))
    np.testing.assert_array_equal(f["rsi_14"], base["rsi_14"])


def test_missing_and_invalid_rows(one_symbol):
    p = one_symbol("CSCO")
    p.loc[500, "close"] = np.nan
    p.loc[600, "volume"] = np.nan
    p.loc[700, "low"] = -1.0
    f = compute_symbol_features(p)
    _finite_or_nan(f)
    for i in (500, 600, 700):
        assert f.loc[i, feature_names()].isna().all()
    # later rows are computed (indicators skip the invalid row instead of dying on NaN)
    assert f.loc[800:, feature_names()].notna().all().all()
    # and rows before are untouched
    base = compute_symbol_features(one_symbol("CSCO"))
    np.testing.assert_array_equal(f.loc[:499, feature_names()], base.loc[:499, feature_names()])


def test_flat_prices_give_nan_oscillators(one_symbol):
    p = one_symbol("WMT")
    flat = slice(1200, 1240)
    level = p.loc[1199, "close"]
    for col in ("open", "high", "low", "close"):
        p.loc[p.index[flat], col] = level
    f = compute_symbol_features(p)
    _finite_or_nan(f)
    i = 1239  # 40 flat days: every 14/20-day window is flat
    for name in ("stoch_k_14", "stoch_d_3", "willr_14", "price_z_20", "bb_pctb_20"):
        assert np.isnan(f.loc[i, name]), name
    assert f.loc[i, "bb_width_20"] == 0.0
    assert f.loc[i, "ret_1d"] == 0.0 and f.loc[i, "vol_20d_ann"] == 0.0


def test_bad_input_raises(one_symbol, prices_small):
    p = one_symbol("ORCL")
    with pytest.raises(DataValidationError, match="volume"):
        compute_symbol_features(p.drop(columns="volume"))
    with pytest.raises(DataValidationError, match="one symbol"):
        compute_symbol_features(prices_small.iloc[:5000])
    with pytest.raises(DataValidationError, match="duplicate"):
        compute_symbol_features(pd.concat([p, p.iloc[[3]]], ignore_index=True))
    with pytest.raises(DataValidationError, match="duplicate"):
        build_features(pd.concat([p, p.iloc[[3]]], ignore_index=True))
    with pytest.raises(DataValidationError, match="close"):
        build_features(p.drop(columns="close"))


def test_unsorted_input_and_progress(prices_small, features_small):
    calls = []
    shuffled = prices_small.sample(frac=1.0, random_state=3)
    f = build_features(shuffled, progress=calls.append)
    assert calls == [1] * prices_small["symbol"].nunique()
    pd.testing.assert_frame_equal(f, features_small)
    p = prices_small[prices_small["symbol"] == "AMGN"]
    rev = compute_symbol_features(p.iloc[::-1])
    pd.testing.assert_frame_equal(rev, compute_symbol_features(p))


def test_input_not_modified(one_symbol):
    p = one_symbol("AMGN")
    before = p.copy()
    compute_symbol_features(p)
    build_features(p)
    pd.testing.assert_frame_equal(p, before)
