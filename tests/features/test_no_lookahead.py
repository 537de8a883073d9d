"""No look-ahead: nothing at or before a date t may depend on rows after t."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.features import build_features, compute_symbol_features, feature_names

CUTS = ["2011-06-30", "2014-06-06", "2014-06-09", "2017-09-29", "2019-12-02"]
SYMBOLS = ["AAPL", "KO", "JPM", "XOM", "GE", "INTC", "PFE", "MMM"]
PRICE_COLS = ["open", "high", "low", "close"]


def _perturb(prices: pd.DataFrame, cut: pd.Timestamp, how: str, seed: int) -> pd.DataFrame:
    """Change every price/volume strictly after ``cut``."""
    rng = np.random.default_rng(seed)
    out = prices.copy()
    after = (out["date"] > cut).to_numpy()
    m = int(after.sum())
    if how == "random_factors":
        for col in PRICE_COLS:
            out.loc[after, col] = out.loc[after, col].to_numpy() * rng.lognormal(0, 0.3, m)
        out.loc[after, "volume"] = out.loc[after, "volume"].to_numpy() * rng.lognormal(0, 1, m)
    elif how == "garbage":
        garbage = rng.choice([np.nan, 0.0, -5.0, 1e12, 1e-9], size=(m, 5))
        for j, col in enumerate([*PRICE_COLS, "volume"]):
            out.loc[after, col] = garbage[:, j]
    else:  # pragma: no cover
        raise ValueError(how)
    return out


def _assert_prefix_equal(a: pd.DataFrame, b: pd.DataFrame, cut: pd.Timestamp,
                         cols: list[str]) -> None:
    keep_a = (a["date"] <= cut).to_numpy()
    keep_b = (b["date"] <= cut).to_numpy()
    assert keep_a.sum() > 0
    np.testing.assert_array_equal(a.loc[keep_a, ["symbol", "date"]].to_numpy(),
                                  b.loc[keep_b, ["symbol", "date"]].to_numpy())
    for col in cols:
        # bit-for-bit (NaN in the same places)
        np.testing.assert_array_equal(a.loc[keep_a, col].to_numpy(),
                                      b.loc[keep_b, col].to_numpy(),
                                      err_msg=f"{col} changed at or before {cut.date()}")


@pytest.mark.parametrize("how", ["random_factors", "garbage"])
def test_build_features_no_lookahead(prices_small, how):
    prices = prices_small[prices_small["symbol"].isin(SYMBOLS)].reset_index(drop=True)
    base = build_features(prices)
    cols = [c for c in base.columns if c not in ("symbol", "date")]
    for i, cut_s in enumerate(CUTS):
        cut = pd.Timestamp(cut_s)
        changed = build_features(_perturb(prices, cut, how, seed=i))
        _assert_prefix_equal(base, changed, cut, cols)
        after = (base["date"] > cut).to_numpy()
        if after.any():  # the perturbation did reach the features after t
            assert not np.allclose(base.loc[after, "ret_1d"], changed.loc[after, "ret_1d"],
                                   equal_nan=True)


def test_truncated_history_gives_same_features(one_symbol):
    """Features of the history cut at t equal the full-history features up to t."""
    prices = one_symbol("AAPL")
    full = compute_symbol_features(prices)
    for cut_s in CUTS:
        cut = pd.Timestamp(cut_s)
        part = compute_symbol_features(prices[prices["date"] <= cut])
        _assert_prefix_equal(full, part, cut, feature_names())


def test_adjusted_as_of_t_equals_adjusted_today(prices_small):
    """The point-in-time argument of the architecture document, on real corporate actions.

    A user at date t could only adjust with the factors known then: raw x adj_factor /
    adj_factor[t]. Features from that frame must equal (to float tolerance) the features
    from today's adjusted frame, on every row at or before t. AAPL's 7:1 split on
    2014-06-09 and KO's 2:1 split on 2012-08-13 lie inside the tested histories.
    """
    for symbol, cut_s in [("AAPL", "2014-06-30"), ("AAPL", "2014-06-06"), ("KO", "2012-09-28"),
                          ("JNJ", "2016-03-31")]:
        cut = pd.Timestamp(cut_s)
        prices = prices_small[prices_small["symbol"] == symbol].reset_index(drop=True)
        known = prices[prices["date"] <= cut].copy()
        f_t = known["adj_factor"].iloc[-1]
        for col in PRICE_COLS:
            known[col] = known[col] / f_t
        known["volume"] = known["volume"] * f_t
        full = compute_symbol_features(prices)
        asof = compute_symbol_features(known)
        keep = (full["date"] <= cut).to_numpy()
        for name in feature_names():
            np.testing.assert_allclose(asof[name].to_numpy(), full.loc[keep, name].to_numpy(),
                                       rtol=1e-7, atol=1e-9, err_msg=f"{symbol} {name}")
