"""Feature values against independent (loop / pandas) implementations of the formulas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vfr.features import build_features, compute_symbol_features, feature_names


@pytest.fixture
def aapl(one_symbol):
    p = one_symbol("AAPL")
    return p, compute_symbol_features(p)


def _wilder_rsi(close: np.ndarray, n: int = 14) -> np.ndarray:
    """Wilder (1978): seed with the simple mean of the first n gains/losses, then smooth."""
    out = np.full(close.size, np.nan)
    diff = np.diff(close)
    gain, loss = np.clip(diff, 0, None), np.clip(-diff, 0, None)
    avg_g, avg_l = gain[:n].mean(), loss[:n].mean()
    out[n] = 100 * avg_g / (avg_g + avg_l)
    for t in range(n + 1, close.size):
        avg_g = (avg_g * (n - 1) + gain[t - 1]) / n
        avg_l = (avg_l * (n - 1) + loss[t - 1]) / n
        out[t] = 100 * avg_g / (avg_g + avg_l)
    return out


def _wilder_atr(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int = 14) -> np.ndarray:
    tr = np.maximum(h[1:] - lo[1:], np.maximum(abs(h[1:] - c[:-1]), abs(lo[1:] - c[:-1])))
    out = np.full(c.size, np.nan)
    atr = tr[:n].mean()
    out[n] = atr
    for t in range(n + 1, c.size):
        atr = (atr * (n - 1) + tr[t - 1]) / n
        out[t] = atr
    return out


def test_returns_match_pct_change(features_small, prices_small):
    for k in (1, 5, 20, 60):
        expected = prices_small.groupby("symbol")["close"].pct_change(k).to_numpy()
        got = features_small[f"ret_{k}d"].to_numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    roc = features_small["roc_10"].to_numpy()
    expected = 100 * prices_small.groupby("symbol")["close"].pct_change(10).to_numpy()
    np.testing.assert_allclose(roc, expected, rtol=1e-6, atol=1e-5, equal_nan=True)


def test_rsi_and_atr_match_wilder_loop(aapl):
    p, f = aapl
    p, f = p.iloc[:400], f.iloc[:400]  # RSI/ATR are recursive: same start -> same values
    c, h, lo = (p[col].to_numpy() for col in ("close", "high", "low"))
    rsi = _wilder_rsi(c)
    assert np.isnan(f["rsi_14"].to_numpy()[:14]).all()
    np.testing.assert_allclose(f["rsi_14"].to_numpy(), rsi, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(f["atr_14_pct"].to_numpy(), _wilder_atr(h, lo, c) / c,
                               rtol=1e-10, equal_nan=True)


def test_realised_vol_is_std_of_log_returns(aapl):
    """vol_<n>d_ann = sample std (ddof=1) of the last n daily LOG returns x sqrt(252)."""
    p, f = aapl
    c = p["close"].to_numpy()
    logret = np.log(c[1:] / c[:-1])  # logret[t-1] is the return of day t
    for n in (5, 20, 60):
        col = f[f"vol_{n}d_ann"].to_numpy()
        assert np.isnan(col[:n]).all() and np.isfinite(col[n])
        for t in (n, 100, 777, 1500, len(c) - 1):
            expected = np.std(logret[t - n:t], ddof=1) * math.sqrt(252)
            assert col[t] == pytest.approx(expected, rel=1e-9)


def test_twelve_minus_one_momentum_by_hand(aapl):
    """mom_12_1 at t is close[t-21] / close[t-252] - 1: the latest month is skipped, nothing after t is read."""
    p, f = aapl
    c = p["close"].to_numpy()
    assert np.isnan(f["mom_12_1"][:252]).all()
    for t in (252, 300, 1000, len(c) - 1):
        assert f["mom_12_1"][t] == pytest.approx(c[t - 21] / c[t - 252] - 1, rel=1e-12)


def test_window_features_match_slices(aapl):
    p, f = aapl
    h, lo, c, v = (p[col].to_numpy() for col in ("high", "low", "close", "volume"))
    for t in (251, 300, 1000, 1811, len(c) - 1):
        w20 = slice(t - 19, t + 1)
        assert f["dist_52w_high"][t] == pytest.approx(c[t] / h[t - 251:t + 1].max() - 1, abs=1e-12)
        m, s = c[w20].mean(), c[w20].std(ddof=0)
        assert f["price_z_20"][t] == pytest.approx((c[t] - m) / s, rel=1e-7)
        assert f["bb_pctb_20"][t] == pytest.approx((c[t] - (m - 2 * s)) / (4 * s), rel=1e-7)
        assert f["bb_width_20"][t] == pytest.approx(4 * s / m, rel=1e-7)
        vm, vs = v[w20].mean(), v[w20].std(ddof=0)
        assert f["volume_z_20"][t] == pytest.approx((v[t] - vm) / vs, rel=1e-7)
        tp = (h[w20] + lo[w20] + c[w20]) / 3
        vwap = (tp * v[w20]).sum() / v[w20].sum()
        assert f["dist_vwap_20"][t] == pytest.approx(c[t] / vwap - 1, rel=1e-7, abs=1e-12)
        signed = np.sign(c[w20] - c[t - 20:t]) * v[w20]
        assert f["obv_trend_20"][t] == pytest.approx(signed.sum() / v[w20].sum(), abs=1e-9)
        hh, ll = h[t - 13:t + 1].max(), lo[t - 13:t + 1].min()
        # the oscillators are rounded to 1e-8 points (see technical._snap)
        assert f["stoch_k_14"][t] == pytest.approx(100 * (c[t] - ll) / (hh - ll), abs=1e-8)
        assert f["willr_14"][t] == pytest.approx(-100 * (hh - c[t]) / (hh - ll), abs=1e-8)
        ks = []
        for u in (t - 2, t - 1, t):
            hi_u, lo_u = h[u - 13:u + 1].max(), lo[u - 13:u + 1].min()
            ks.append(100 * (c[u] - lo_u) / (hi_u - lo_u))
        assert f["stoch_d_3"][t] == pytest.approx(np.mean(ks), abs=1e-8)
    assert (f["dist_52w_high"].dropna() <= 1e-12).all()
    assert np.isnan(f["dist_52w_high"][:251]).all()


def test_macd_hist_matches_ema_after_warmup(aapl):
    """TA-Lib seeds its EMAs differently; after 600 days the seed has decayed away."""
    p, f = aapl
    c = p["close"]
    macd = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
    hist = (macd - macd.ewm(span=9, adjust=False).mean()) / c
    np.testing.assert_allclose(f["macd_hist"].to_numpy()[600:], hist.to_numpy()[600:],
                               atol=1e-10)


def test_ranks_are_cross_sectional_percentiles(features_small):
    names = feature_names()
    ranks = features_small[[f"{n}_rank" for n in names]].to_numpy()
    finite = ranks[~np.isnan(ranks)]
    assert finite.min() > 0 and finite.max() <= 1
    for n in names:  # NaN rank exactly where the feature is NaN
        np.testing.assert_array_equal(features_small[n].isna(), features_small[f"{n}_rank"].isna())
    expected = features_small.groupby("date")[names].rank(pct=True).to_numpy()
    np.testing.assert_allclose(ranks, expected, atol=1e-6, equal_nan=True)
    for date in pd.to_datetime(["2012-03-01", "2015-11-17", "2019-12-31"]):
        day = features_small[features_small["date"] == date]
        assert len(day) == 20
        for n in ("ret_20d", "rsi_14", "vol_20d_ann", "dist_52w_high"):
            top = day.loc[day[f"{n}_rank"].idxmax()]
            assert top[n] == day[n].max()
            assert top[f"{n}_rank"] == 1.0
            assert day[f"{n}_rank"].min() == pytest.approx(1 / 20)


def test_ranks_average_ties():
    prices = pd.DataFrame({
        "symbol": ["A"] * 3 + ["B"] * 3 + ["C"] * 3,
        "date": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"] * 3),
        "open": 1.0, "high": 1.0, "low": 1.0,
        "close": [10, 11, 12, 20, 22, 20, 5, 5.5, 6],
        "volume": 100.0,
    })
    f = build_features(prices)
    day2 = f[f["date"] == "2020-01-02"]
    # ret_1d on day 2: A +10%, B +10%, C +10% -> all tied -> average rank 2/3 each
    np.testing.assert_allclose(day2["ret_1d_rank"], [2 / 3] * 3, rtol=1e-6)
    day3 = f[f["date"] == "2020-01-03"].set_index("symbol")
    # A +9.09%, B -9.09%, C +9.09% -> B 1/3, A and C tied at 2.5/3
    np.testing.assert_allclose(day3["ret_1d_rank"].loc[["A", "B", "C"]], [2.5 / 3, 1 / 3, 2.5 / 3],
                               rtol=1e-6)
    assert f.loc[f["date"] == "2020-01-01", "ret_1d_rank"].isna().all()


def test_rank_matrix_matches_pandas_and_build(features_small):
    from vfr.features.cross_section import rank_matrix

    names = ["ret_5d", "macd_hist", "volume_z_20"]
    frame = features_small[["date", *names]].copy()
    frame.loc[frame["date"] == "2016-05-02", "ret_5d"] = np.nan  # an all-NaN date
    codes, _ = pd.factorize(frame["date"])
    ranks = rank_matrix(frame[names].to_numpy(np.float32), codes)
    assert np.isnan(ranks[(frame["date"] == "2016-05-02").to_numpy(), 0]).all()
    expected = frame.groupby("date")[names].rank(pct=True).to_numpy()
    np.testing.assert_allclose(ranks, expected, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(ranks[:, 1], features_small["macd_hist_rank"])
