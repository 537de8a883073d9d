"""Portfolio construction that survives costs (issue 14): rank buffer / drop limit, sector caps,
volatility targeting, inverse-volatility weights; each checked on hand-built panels, for
look-ahead, and against the defaults."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from tests.backtest.test_engine_features import random_market
from vfr.backtest import (
    BacktestConfig,
    CostModel,
    buffered_selection,
    cap_sector_weights,
    inverse_vol_weights,
    run_backtest,
    select_weights,
    vol_target_scale,
    vol_targeted_returns,
)
from vfr.config import Settings

DATES = pd.bdate_range("2021-01-04", periods=6)


def long_frame(values: dict[str, list[float]], column: str, dates: pd.DatetimeIndex = DATES) -> pd.DataFrame:
    """{symbol: values} -> long frame ``date, symbol, <column>`` (NaN values left out)."""
    rows = [(d, s, v) for s, vs in values.items() for d, v in zip(dates, vs, strict=True) if not np.isnan(v)]
    return pd.DataFrame(rows, columns=["date", "symbol", column])


def books(res) -> dict[pd.Timestamp, set[str]]:
    """Names held by each entry (fill day -> set of symbols)."""
    return {d: set(g["symbol"]) for d, g in res.weights.groupby("date")}


# -- (a) rank buffer -----------------------------------------------------------------------
NAN = float("nan")
FLAT = {s: [10.0] * 6 for s in "ABCD"}  # constant prices: no drift, turnover is pure selection
# signals on days 0-3 (filled days 1-4): B ranks 2, 3, 2, 4
BUFFER_SCORES = {"A": [4, 4, 4, 4, NAN, NAN], "B": [3, 2, 3, 1, NAN, NAN],
                 "C": [2, 3, 2, 2, NAN, NAN], "D": [1, 1, 1, 3, NAN, NAN]}


def test_rank_buffer_keeps_a_name_ranked_within_the_buffer_by_hand():
    prices, scores = long_frame(FLAT, "close"), long_frame(BUFFER_SCORES, "score")
    plain = run_backtest(prices, scores, BacktestConfig(top_n=2, rebalance_every=1))
    buf = run_backtest(prices, scores, BacktestConfig(top_n=2, rebalance_every=1, buffer_n=3))
    d = DATES
    assert books(plain) == {d[1]: {"A", "B"}, d[2]: {"A", "C"}, d[3]: {"A", "B"}, d[4]: {"A", "D"}}
    # day 1's signal ranks B 3rd: inside buffer_n=3, so kept; day 3's ranks it 4th: dropped for D
    assert books(buf) == {d[1]: {"A", "B"}, d[2]: {"A", "B"}, d[3]: {"A", "B"}, d[4]: {"A", "D"}}
    np.testing.assert_allclose(plain.daily["turnover"], [0, 1, 1, 1, 1, 0])
    np.testing.assert_allclose(buf.daily["turnover"], [0, 1, 0, 0, 1, 0])
    np.testing.assert_allclose(buf.daily["net_return"], -10e-4 * np.array([0, 1, 0, 0, 1, 0]))
    assert (buf.weights["weight"] == 0.5).all()
    assert buf.params["buffer_n"] == 3 and plain.params["buffer_n"] == 2


def test_max_drops_limits_replacements_worst_first_by_hand():
    scores = long_frame({"A": [4, 2, 2, NAN, NAN, NAN], "B": [3, 1, 1, NAN, NAN, NAN],
                         "C": [2, 4, 4, NAN, NAN, NAN], "D": [1, 3, 3, NAN, NAN, NAN]}, "score")
    prices = long_frame(FLAT, "close")
    free = run_backtest(prices, scores, BacktestConfig(top_n=2, rebalance_every=1))
    one = run_backtest(prices, scores, BacktestConfig(top_n=2, rebalance_every=1, max_drops=1))
    d = DATES
    assert books(free) == {d[1]: {"A", "B"}, d[2]: {"C", "D"}, d[3]: {"C", "D"}}
    # A (rank 3) and B (rank 4) fall out; only the worst, B, may go: C replaces it; then A goes for D
    assert books(one) == {d[1]: {"A", "B"}, d[2]: {"A", "C"}, d[3]: {"C", "D"}}
    np.testing.assert_allclose(one.daily["turnover"], [0, 1, 1, 1, 0, 0])
    zero = run_backtest(prices, scores, BacktestConfig(top_n=2, rebalance_every=1, max_drops=0))
    assert books(zero)[d[3]] == {"A", "B"}  # buy and hold: nothing is dropped for its rank


def test_forced_exit_does_not_count_as_a_drop():
    # B loses its score on day 1: it leaves although max_drops=0, C (rank 2) takes the place
    scores = long_frame({"A": [4, 4, NAN, NAN, NAN, NAN], "B": [3, NAN, NAN, NAN, NAN, NAN],
                         "C": [2, 3, NAN, NAN, NAN, NAN], "D": [1, 1, NAN, NAN, NAN, NAN]}, "score")
    res = run_backtest(long_frame(FLAT, "close"), scores, BacktestConfig(top_n=2, rebalance_every=1, max_drops=0))
    assert books(res) == {DATES[1]: {"A", "B"}, DATES[2]: {"A", "C"}}


def qlib_topk_dropout(score: np.ndarray, held: list[int], topk: int, n_drop: int) -> set[int]:
    """Reference: the book Qlib's TopkDropoutStrategy holds after one step (method_sell="bottom",
    method_buy="top", hold_thresh=1, every name tradable), written from its documented rule."""
    by_score = sorted(range(score.size), key=lambda i: -score[i])
    last = sorted(held, key=lambda i: -score[i])
    today = [i for i in by_score if i not in held][: n_drop + topk - len(last)]
    comb = sorted(set(last) | set(today), key=lambda i: -score[i])
    sell = [i for i in last if i in comb[len(comb) - n_drop:]] if n_drop else []
    buy = today[: len(sell) + topk - len(last)]
    return (set(last) - set(sell)) | set(buy)


@pytest.mark.parametrize(("topk", "n_drop"), [(5, 1), (5, 2), (8, 3), (4, 4)])
def test_buffer_equal_to_top_n_with_max_drops_is_qlib_topk_dropout(topk, n_drop):
    rng = np.random.default_rng(topk * 10 + n_drop)
    n = 30
    held_q: list[int] = []
    held_v = np.zeros(n, bool)
    changed = 0
    for _ in range(60):
        score = rng.normal(size=n) + np.linspace(0, 1.5, n)  # some persistence in the ranking
        q = qlib_topk_dropout(score, held_q, topk, n_drop)
        v = buffered_selection(score, np.ones(n, bool), held_v, top_n=topk, max_drops=n_drop)
        assert set(np.flatnonzero(v)) == q
        changed += len(q - set(held_q))
        held_q, held_v = sorted(q), v
    assert changed > topk  # the books did move


def test_buffered_books_obey_entry_and_exit_ranks_with_weekly_rebalancing():
    prices, scores, _ = random_market(n_sym=30, n_days=200, seed=4)
    scores = scores.assign(score=scores.groupby("symbol")["score"].transform(lambda s: s.rolling(10, 1).mean()))
    base = BacktestConfig(top_n=5, rebalance="weekly")
    plain = run_backtest(prices, scores, base)
    buf = run_backtest(prices, scores, dataclasses.replace(base, buffer_n=12))
    # weights change only on the weekly fill days, and the buffer trades strictly less
    assert set(buf.weights["date"]) == set(plain.weights["date"])
    assert set(buf.daily.index[buf.daily["turnover"] > 0]) <= set(buf.weights["date"])
    assert buf.daily["turnover"].sum() < 0.8 * plain.daily["turnover"].sum()
    wide = scores.pivot(index="date", columns="symbol", values="score")
    rank = wide.rank(axis=1, ascending=False, method="first")
    prev: set[str] = set()
    kept_outside_top = 0
    for (sig, _), g in buf.weights.groupby(["signal_date", "date"]):
        names, r = set(g["symbol"]), rank.loc[sig]
        assert len(names) == 5
        assert all(r[s] <= 5 for s in names - prev)  # entrants rank within top_n
        assert all(r[s] <= 12 for s in names & prev)  # kept names within buffer_n
        assert all(r[s] > 12 for s in prev - names)  # only names beyond buffer_n leave
        kept_outside_top += sum(r[s] > 5 for s in names & prev)
        prev = names
    assert kept_outside_top > 0  # the buffer did bind


# -- (c) sector caps ----------------------------------------------------------------------
@pytest.mark.parametrize(("codes", "cap", "expected"), [
    ([0, 0, 0, 1], 0.5, [1 / 6, 1 / 6, 1 / 6, 0.5]),
    ([0, 0, 1, 2], 0.4, [0.2, 0.2, 0.3, 0.3]),
    # sector 0 capped; the excess lifts sector 1 over the cap too; sector 2 takes the rest
    ([0, 0, 0, 1, 1, 2], 0.35, [0.35 / 3] * 3 + [0.175, 0.175, 0.3]),
    ([0, 0], 0.5, [0.25, 0.25]),  # one sector only: the rest stays in cash
])
def test_cap_sector_weights_by_hand(codes, cap, expected):
    n = len(codes)
    w = cap_sector_weights(np.full(n, 1 / n), np.array(codes), cap)
    np.testing.assert_allclose(w, expected, rtol=1e-12)


def test_cap_sector_weights_keeps_the_name_cap_and_the_short_leg():
    codes = np.array([0, 0, 0, 1, 1, 2])
    w = cap_sector_weights(np.full(6, 1 / 6), codes, 0.35, max_weight=0.28)
    assert w.max() <= 0.28 + 1e-12
    assert np.bincount(codes, weights=w).max() <= 0.35 + 1e-12
    ls = np.array([0.25, 0.25, 0.0, -0.25, -0.25, 0.0])
    out = cap_sector_weights(ls, np.array([0, 0, 1, 1, 1, 2]), 0.2, gross=1.0)
    np.testing.assert_allclose(out, [0.1, 0.1, 0.0, -0.1, -0.1, 0.0])  # each leg's sector <= 0.2, rest cash
    with pytest.raises(ValueError, match="max_share"):
        cap_sector_weights(ls, np.zeros(6, int), 1.5)
    with pytest.raises(ValueError, match="shape"):
        cap_sector_weights(ls, np.zeros(5, int), 0.5)


def test_sector_cap_respected_at_every_rebalance():
    prices, scores, _ = random_market(n_sym=30, n_days=120, seed=1)
    syms = sorted(prices["symbol"].unique())
    sectors = {s: f"sec{j % 5}" for j, s in enumerate(syms)}
    # sec0 names score highest: an uncapped top-10 book is mostly sec0
    scores = scores.assign(score=scores["score"] + 3.0 * (scores["symbol"].map(sectors) == "sec0"))
    cfg = BacktestConfig(top_n=10, rebalance="weekly", max_sector_weight=0.25)
    res = run_backtest(prices, scores, cfg, sectors=sectors)
    plain = run_backtest(prices, scores, BacktestConfig(top_n=10, rebalance="weekly"))
    w = res.weights.assign(sector=res.weights["symbol"].map(sectors))
    by = w.groupby(["date", "sector"])["weight"].sum()
    assert by.max() <= 0.25 + 1e-12
    assert by.xs("sec0", level="sector").min() == pytest.approx(0.25)  # the cap binds every time
    pb = plain.weights.assign(sector=plain.weights["symbol"].map(sectors)).groupby(["date", "sector"])["weight"].sum()
    assert pb.xs("sec0", level="sector").min() > 0.25
    # same names as the uncapped book; the excess is re-invested in the uncapped sectors' names pro
    # rata (equal weights stay equal), up to what 0.25 x the sectors held can take
    pd.testing.assert_series_equal(res.weights["symbol"], plain.weights["symbol"])
    for _, g in w.groupby("date"):
        sums = g.groupby("sector")["weight"].transform("sum")
        np.testing.assert_allclose(g["weight"].sum(), min(1.0, 0.25 * g["sector"].nunique()))
        free = g.loc[sums < 0.25 - 1e-12, "weight"]
        np.testing.assert_allclose(free, free.iloc[0] if len(free) else [])
        for _, s in g.groupby("sector"):
            np.testing.assert_allclose(s["weight"], s["weight"].iloc[0])  # equal within a sector
    assert res.params["max_sector_weight"] == 0.25


def test_sector_cap_needs_sectors():
    prices, scores, sectors = random_market(n_sym=6, n_days=30)
    with pytest.raises(ValueError, match=r"max_sector_weight is 0\.3 but no sectors were given"):
        run_backtest(prices, scores, BacktestConfig(top_n=2, max_sector_weight=0.3))
    with pytest.raises(ValueError, match="sectors were given but config.sector_neutral is False"):
        run_backtest(prices, scores, BacktestConfig(top_n=2), sectors=sectors)


# -- (d) volatility targeting --------------------------------------------------------------
def vol_market():
    """A (always ranked first) moves +-0.1 %/day for 40 days, then +-4 %/day; B is flat."""
    n = 80
    dates = pd.bdate_range("2021-01-04", periods=n)
    amp = np.where(np.arange(n) < 40, 0.001, 0.04)
    ret_a = amp * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    ret_a[0] = 0.0
    close = {"A": list(100 * np.cumprod(1 + ret_a)), "B": [50.0] * n}
    prices = long_frame(close, "close", dates)
    scores = long_frame({"A": [2.0] * n, "B": [1.0] * n}, "score", dates)
    return prices, scores, pd.Series(ret_a, index=dates)


def test_vol_target_scales_down_after_a_volatile_period_by_hand():
    prices, scores, ret_a = vol_market()
    cfg = BacktestConfig(top_n=1, rebalance_every=1, target_vol=0.10, vol_lookback=10)
    res = run_backtest(prices, scores, cfg)
    expo = res.weights.set_index("signal_date")["weight"]  # one name: its weight is the exposure
    dates = ret_a.index
    # by hand: the book holds A from the close of day 1; each book lives one day, so its
    # de-levered return is A's return; the estimate at signal t uses A's returns of days 2..t
    for t, got in expo.items():
        i = dates.get_loc(t)
        past = ret_a.iloc[max(2, i - 9): i + 1]
        want = 1.0 if len(past) < 5 else min(1.0, 0.10 / (past.std(ddof=1) * np.sqrt(252)))
        assert got == pytest.approx(want, rel=1e-9), t
    calm, wild = expo[expo.index < dates[40]], expo[expo.index >= dates[50]]
    assert (calm == 1.0).all()  # 0.1 %/day is 1.6 %/year: under target, never levered up
    assert wild.max() < 0.2 and wild.min() > 0.0
    # the scaled book earns scale x A's return (close fill, one-day books)
    gross = res.daily["gross_return"].iloc[2:]
    held_scale = expo.reindex(dates).shift(2).loc[gross.index].to_numpy()  # book of signal t-2, filled t-1
    np.testing.assert_allclose(gross.to_numpy(), held_scale * ret_a.loc[gross.index].to_numpy(), atol=1e-15)
    assert res.params["target_vol"] == 0.10 and res.params["vol_lookback"] == 10


def test_vol_target_can_lever_up_to_max_leverage_only():
    prices, scores, _ = vol_market()
    res = run_backtest(prices, scores, BacktestConfig(top_n=1, rebalance_every=1, target_vol=0.10,
                                                      vol_lookback=10, max_leverage=2.0))
    expo = res.weights.set_index("signal_date")["weight"]
    assert expo.max() == 2.0 and expo.iloc[0] == 1.0  # levered in the calm, 1.0 before an estimate


def test_vol_target_scale_function():
    r = np.array([0.01, -0.01] * 10)
    vol = np.std(r, ddof=1) * np.sqrt(252)
    assert vol_target_scale(r, 0.05) == pytest.approx(0.05 / vol)
    assert vol_target_scale(r, 10.0, max_leverage=1.5) == 1.5
    assert vol_target_scale(np.zeros(5), 0.1, max_leverage=1.5) == 1.5
    assert vol_target_scale(np.array([0.01, np.nan]), 0.1, max_leverage=3.0) == 1.0  # too few returns
    with pytest.raises(ValueError, match="target_vol"):
        vol_target_scale(r, 0.0)


# -- (f) inverse-volatility weights --------------------------------------------------------
def test_inverse_vol_weights_function_by_hand():
    w = np.array([0.25, 0.25, 0.25, 0.25, 0.0, -0.5, -0.5])
    sigma = np.array([0.01, 0.02, 0.04, np.nan, 0.5, 0.01, 0.03])
    got = inverse_vol_weights(w, sigma)
    # long leg: the NaN name takes the leg's median sigma (0.02); 1/sigma = 100, 50, 25, 50
    np.testing.assert_allclose(got[:4], np.array([100, 50, 25, 50]) / 225)
    assert got[4] == 0.0  # not held: stays out whatever its sigma
    np.testing.assert_allclose(got[5:], [-0.75, -0.25])  # short leg total -1 kept, 3:1
    # per group: each group's total of the leg is kept
    groups = np.array([0, 0, 1, 1, 0, 0, 0])
    byg = inverse_vol_weights(w, sigma, groups)
    np.testing.assert_allclose(byg[:4], [1 / 3, 1 / 6, 0.25, 0.25])  # group 1: NaN -> 0.04, equal
    # a leg with no valid sigma keeps its weights
    np.testing.assert_array_equal(inverse_vol_weights(w[:4], np.full(4, np.nan)), w[:4])
    with pytest.raises(ValueError, match="one shape"):
        inverse_vol_weights(w, sigma[:3])


def test_inverse_vol_book_by_hand():
    """A moves +-1 %/day, B +-2 %/day, C is flat and ranked last: the top 2 hold A:B at 2:1,
    from the returns up to the signal date only."""
    n = 30
    dates = pd.bdate_range("2021-01-04", periods=n)
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    ra, rb = 0.01 * sign, 0.02 * sign
    ra[0] = rb[0] = 0.0
    close = {"A": list(100 * np.cumprod(1 + ra)), "B": list(50 * np.cumprod(1 + rb)), "C": [20.0] * n}
    prices = long_frame(close, "close", dates)
    scores = long_frame({"A": [3.0] * n, "B": [2.0] * n, "C": [1.0] * n}, "score", dates)
    cfg = BacktestConfig(top_n=2, rebalance_every=5, vol_lookback=10, weighting="inverse_vol")
    res = run_backtest(prices, scores, cfg)
    w = res.weights.pivot(index="signal_date", columns="symbol", values="weight")
    assert set(w.columns) == {"A", "B"}
    first = w.index[0]  # signal day 0: fewer than 5 returns known, so equal weights
    assert w.loc[first].tolist() == [0.5, 0.5]
    for t in w.index[w.index >= dates[10]]:
        i = dates.get_loc(t)
        sa, sb = np.std(ra[i - 9:i + 1]), np.std(rb[i - 9:i + 1])  # the 10 returns up to day t
        assert w.loc[t, "A"] == pytest.approx((1 / sa) / (1 / sa + 1 / sb), rel=1e-9)
    assert res.params["weighting"] == "inverse_vol"
    eq = run_backtest(prices, scores, dataclasses.replace(cfg, weighting="equal"))
    assert (eq.weights["weight"] == 0.5).all()
    # a max_weight cap binds after the reweighting
    capped = run_backtest(prices, scores, dataclasses.replace(cfg, max_weight=0.6))
    assert capped.weights["weight"].max() == pytest.approx(0.6)


def test_weighting_setting_and_validation():
    assert BacktestConfig.from_settings(Settings(weighting="inverse_vol")).weighting == "inverse_vol"
    assert BacktestConfig.from_settings(Settings(weighting="equal")).weighting == "equal"
    with pytest.raises(ValueError, match="weighting"):
        BacktestConfig(weighting="score")


def test_vol_targeted_returns_by_hand_and_without_look_ahead():
    """A calm stretch (+-0.1 %/day) then a wild one (+-4 %/day): the scale is 1 in the calm, and
    from the first update after the switch it is the target over the trailing volatility,
    applied from the next day; changing later returns never changes earlier scaled ones."""
    n = 60
    r = pd.Series(np.where(np.arange(n) < 30, 0.001, 0.04) * np.where(np.arange(n) % 2 == 0, 1.0, -1.0),
                  index=pd.bdate_range("2021-01-04", periods=n))
    got = vol_targeted_returns(r, 0.10, every=5, lookback=10)
    for i in range(n):
        last = (i - 1) // 5 * 5 if i > 0 else None  # the latest update strictly before day i
        past = r.iloc[max(0, last - 9):last + 1] if last is not None else r.iloc[:0]
        want = 1.0 if len(past) < 5 else min(1.0, 0.10 / (past.std(ddof=1) * np.sqrt(252)))
        assert got.iloc[i] == pytest.approx(want * r.iloc[i], rel=1e-12), i
    assert (got.iloc[:30] == r.iloc[:30]).all() and (got.abs().iloc[40:] < r.abs().iloc[40:]).all()
    later = r.copy()
    later.iloc[45:] *= 3
    moved = vol_targeted_returns(later, 0.10, every=5, lookback=10)
    pd.testing.assert_series_equal(moved.iloc[:45], got.iloc[:45])
    assert moved.iloc[45] == pytest.approx(3 * got.iloc[45])  # day 45's scale was set before day 45
    assert not moved.iloc[46:].equals(3 * got.iloc[46:])  # the test can fail: later scales do react
    with pytest.raises(ValueError, match="every"):
        vol_targeted_returns(r, 0.1, every=0)


# -- (b) no look-ahead with every option on ---------------------------------------------------
@pytest.mark.parametrize("opts", [
    {"rebalance_every": 1, "buffer_n": 9, "max_drops": 2, "max_sector_weight": 0.4, "target_vol": 0.1},
    {"rebalance": "weekly", "buffer_n": 12, "target_vol": 0.2, "max_leverage": 1.5, "fill": "open"},
    {"rebalance_every": 2, "weighting": "inverse_vol", "max_weight": 0.3, "max_sector_weight": 0.5},
    {"rebalance_every": 3, "weighting": "inverse_vol", "long_short": True, "sector_neutral": True, "fill": "open"},
    {"rebalance_every": 5, "weighting": "optimized", "cov_lookback": 30, "max_weight": 0.1,
     "max_sector_weight": 0.5, "target_vol": 0.2},
])
def test_weights_at_or_before_t_ignore_scores_and_prices_after_t(opts):
    prices, scores, sectors = random_market(n_sym=30, n_days=150, seed=2)
    cfg = BacktestConfig(top_n=5, vol_lookback=20, costs=CostModel(slippage_bps=10.0), **opts)
    needs = "max_sector_weight" in opts or "sector_neutral" in opts
    base = run_backtest(prices, scores, cfg, sectors=sectors if needs else None)
    dates = np.sort(scores["date"].unique())
    rng = np.random.default_rng(11)
    changed = False
    for t in dates[[40, 90, 130]]:
        sc, px = scores.copy(), prices.copy()
        after = sc["date"] > t
        sc.loc[after, "score"] = rng.normal(size=after.sum())
        later = px["date"] > t  # a much more volatile future, all prices still positive
        shock = np.exp(rng.normal(0, 0.08, size=later.sum()))
        px.loc[later, ["close", "open"]] = px.loc[later, ["close", "open"]].mul(shock, axis=0).to_numpy()
        res = run_backtest(px, sc, cfg, sectors=sectors if needs else None)
        wb, wr = base.weights, res.weights
        pd.testing.assert_frame_equal(wr[wr["signal_date"] <= t].reset_index(drop=True),
                                      wb[wb["signal_date"] <= t].reset_index(drop=True))
        pd.testing.assert_frame_equal(res.daily.loc[:t], base.daily.loc[:t])
        changed |= not wr.equals(wb)
    assert changed  # the test can fail: later books do change


# -- (e) defaults reproduce today's results ------------------------------------------------
#: Recorded with the engine before these options existed (random_market(30, 150, seed=3)):
#: sum of net returns, sum of turnover, final equity, weight rows.
BEFORE = {
    "default_top5": ({"top_n": 5}, 0.08471459779960021, 49.15443015594964, 1.0817934489113858, 150),
    "weekly_open_div": ({"top_n": 8, "rebalance": "weekly", "fill": "open", "dividends": True},
                        0.07654512752569873, 44.42509364718997, 1.0752014570617463, 240),
    "impact_mintrade": ({"top_n": 6, "rebalance_every": 3, "costs": CostModel(slippage_bps=5, impact_coef=1.0),
                         "min_trade": 0.01, "max_weight": 0.15},
                        0.06875942159056997, 68.47985063187082, 1.0667628123994217, 300),
}


@pytest.mark.parametrize("name", list(BEFORE))
def test_defaults_reproduce_the_results_from_before_the_options(name):
    kw, net, turnover, equity, rows = BEFORE[name]
    prices, scores, _ = random_market(n_sym=30, n_days=150, seed=3)
    res = run_backtest(prices, scores, BacktestConfig(**kw))
    assert float(res.daily["net_return"].sum()) == pytest.approx(net, rel=1e-12, abs=1e-15)
    assert float(res.daily["turnover"].sum()) == pytest.approx(turnover, rel=1e-12)
    assert float(res.equity.iloc[-1]) == pytest.approx(equity, rel=1e-12)
    assert len(res.weights) == rows


@pytest.mark.parametrize("neutral", [
    {"buffer_n": 5},  # explicit buffer = top_n
    {"max_drops": 5},  # a drop limit that can never bind (the buffered code path)
    {"target_vol": 1e9},  # a target no book reaches: scale 1
    {"max_sector_weight": 1.0},  # a cap no sector reaches (sectors given)
])
def test_options_that_cannot_bind_leave_the_backtest_unchanged(neutral):
    prices, scores, sectors = random_market(n_sym=30, n_days=150, seed=3)
    base = run_backtest(prices, scores, BacktestConfig(top_n=5, rebalance="weekly"))
    res = run_backtest(prices, scores, BacktestConfig(top_n=5, rebalance="weekly", **neutral),
                       sectors=sectors if "max_sector_weight" in neutral else None)
    pd.testing.assert_frame_equal(res.daily, base.daily, check_exact=True)
    pd.testing.assert_frame_equal(res.weights, base.weights, check_exact=True)


def test_buffered_selection_without_buffer_is_the_top_n():
    rng = np.random.default_rng(0)
    for _ in range(20):
        score = rng.normal(size=25).round(1)  # ties too
        eligible = rng.random(25) > 0.2
        held = rng.random(25) > 0.7
        top = select_weights(score, eligible, top_n=6) > 0
        np.testing.assert_array_equal(buffered_selection(score, eligible, held, top_n=6), top)


# -- config: validation, settings overrides, params -----------------------------------------
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"top_n": 20, "buffer_n": 10}, ValueError, r"BacktestConfig\.buffer_n must be >= top_n \(20\), got 10"),
    ({"buffer_n": 2.5}, TypeError, r"BacktestConfig\.buffer_n must be an integer"),
    ({"max_drops": -1}, ValueError, r"BacktestConfig\.max_drops must be >= 0"),
    ({"max_sector_weight": 0.0}, ValueError, r"BacktestConfig\.max_sector_weight must be finite and in \(0, 1\]"),
    ({"max_sector_weight": 1.2}, ValueError, r"max_sector_weight"),
    ({"target_vol": -0.1}, ValueError, r"BacktestConfig\.target_vol must be finite"),
    ({"target_vol": "15%"}, TypeError, r"BacktestConfig\.target_vol must be a number"),
    ({"vol_lookback": 1}, ValueError, r"BacktestConfig\.vol_lookback must be >= 2"),
    ({"max_leverage": 0}, ValueError, r"BacktestConfig\.max_leverage"),
    ({"buffer_n": 30, "long_short": True}, ValueError, r"buffer_n / .*max_drops apply to a long-only top_n book; "
                                                       r"they cannot be combined with long_short"),
    ({"max_drops": 2, "quantile": 0.2, "sector_neutral": True}, ValueError, r"quantile, sector_neutral"),
])
def test_bad_construction_settings_name_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        BacktestConfig(**kwargs)


def test_construction_options_from_settings_and_in_params(tmp_path):
    settings = Settings(home=tmp_path, top_n=20, weighting="equal")  # the top-N book
    cfg = BacktestConfig.from_settings(settings, buffer_n=40, max_drops=5, max_sector_weight=0.25,
                                       target_vol=0.15, vol_lookback=42, max_leverage=1.2)
    assert (cfg.top_n, cfg.buffer_n, cfg.max_drops, cfg.max_sector_weight, cfg.target_vol, cfg.vol_lookback,
            cfg.max_leverage) == (20, 40, 5, 0.25, 0.15, 42, 1.2)
    params = cfg.as_params()
    assert {k: params[k] for k in ("buffer_n", "max_drops", "max_sector_weight", "target_vol", "vol_lookback",
                                   "max_leverage")} == {"buffer_n": 40, "max_drops": 5, "max_sector_weight": 0.25,
                                                        "target_vol": 0.15, "vol_lookback": 42, "max_leverage": 1.2}
    default = BacktestConfig.from_settings(settings)
    assert (default.buffer_n, default.effective_buffer_n, default.buffered, default.needs_sectors) == (None, 20,
                                                                                                      False, False)
    assert default.as_params()["buffer_n"] == 20 and default.as_params()["target_vol"] is None
    # buffer_n None follows top_n, so replacing top_n alone stays valid
    assert dataclasses.replace(default, top_n=30).effective_buffer_n == 30
