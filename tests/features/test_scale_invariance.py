"""Scale invariance: features never see a price level."""

from __future__ import annotations

import numpy as np

from vfr.features import build_features, compute_symbol_features, feature_names

PRICE_COLS = ["open", "high", "low", "close"]


def _rescale(prices, factor):
    out = prices.copy()
    for col in PRICE_COLS:
        out[col] = out[col] * factor
    out["volume"] = out["volume"] / factor
    return out


def test_compute_symbol_features_scale_invariant(one_symbol):
    for symbol in ("AAPL", "GE", "KO"):
        p = one_symbol(symbol)
        base = compute_symbol_features(p)
        for factor in (7.3, 1 / 13.0):
            scaled = compute_symbol_features(_rescale(p, factor))
            for name in feature_names():
                np.testing.assert_allclose(scaled[name], base[name], rtol=1e-7, atol=1e-9,
                                           equal_nan=True, err_msg=f"{symbol} {name} x{factor}")


def test_build_features_scale_invariant(prices_small, features_small):
    scaled = prices_small.copy()
    mask = (scaled["symbol"] == "MSFT").to_numpy()
    for col in PRICE_COLS:
        scaled.loc[mask, col] = scaled.loc[mask, col] * 7.3
    scaled.loc[mask, "volume"] = scaled.loc[mask, "volume"] / 7.3
    out = build_features(scaled)
    names = feature_names()
    np.testing.assert_allclose(out[names].to_numpy(), features_small[names].to_numpy(),
                               rtol=1e-5, atol=1e-6, equal_nan=True)
    # ranks are computed on the float32 values: a change there could only come from a
    # float32 rounding tie flip, which the 20-stock cross-section does not contain.
    ranks = [f"{n}_rank" for n in names]
    np.testing.assert_allclose(out[ranks].to_numpy(), features_small[ranks].to_numpy(),
                               atol=1e-6, equal_nan=True)
