"""IC / Rank IC by date, their summary (ICIR, t-statistics) and the quantile spread, by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vfr.metrics import ic_by_date, ic_summary, quantile_spread

D1, D2, D3 = pd.Timestamp("2021-01-04"), pd.Timestamp("2021-01-05"), pd.Timestamp("2021-01-06")


def _day(date: pd.Timestamp, score: list[float], target: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"date": date, "score": score, "fwd": target})


def test_perfect_ranking_has_rank_ic_one_and_pearson_by_hand() -> None:
    x = [1.0, 2, 3, 4, 5]
    frame = pd.concat([_day(D1, x, [v ** 3 for v in x]),           # same order, not linear
                       _day(D2, x, [-v for v in x])])              # reversed order, linear
    ic = ic_by_date(frame, "score", "fwd")
    assert ic.loc[D1, "rank_ic"] == pytest.approx(1.0, abs=1e-12)
    # Pearson of x and x^3: deviations (-2..2) and (-44, -37, -18, 19, 80): 304 / sqrt(10 * 10390)
    assert ic.loc[D1, "ic"] == pytest.approx(304 / math.sqrt(10 * 10390), abs=1e-12)
    assert ic.loc[D2, "ic"] == pytest.approx(-1.0, abs=1e-12) and ic.loc[D2, "rank_ic"] == pytest.approx(-1.0)
    assert ic["n"].tolist() == [5, 5] and list(ic.index) == [D1, D2]


def test_rank_ic_uses_average_ranks_for_ties() -> None:
    # score ranks (1.5, 1.5, 3, 4, 5) vs (1..5): deviations (-1.5, -1.5, 0, 1, 2) and (-2..2)
    ic = ic_by_date(_day(D1, [1.0, 1, 2, 3, 4], [1.0, 2, 3, 4, 5]), "score", "fwd")
    assert ic.loc[D1, "rank_ic"] == pytest.approx(9.5 / math.sqrt(9.5 * 10), abs=1e-12)


def test_thin_constant_missing_and_empty_dates() -> None:
    frame = pd.concat([_day(D1, [1.0, 1, 1, 1, 1], [1.0, 2, 3, 4, 5]),      # constant score: NaN
                       _day(D2, [1.0, 2, 3, 4], [1.0, 2, 3, 4]),            # 4 names < min_names=5: skipped
                       _day(D3, [1.0, 2, 3, 4, 5, np.nan], [1.0, 2, 3, 4, 5, 6])])  # NaN row dropped
    ic = ic_by_date(frame, "score", "fwd", min_names=5)
    assert list(ic.index) == [D1, D3]
    assert np.isnan(ic.loc[D1, "ic"]) and np.isnan(ic.loc[D1, "rank_ic"])
    assert ic.loc[D3, "n"] == 5 and ic.loc[D3, "ic"] == pytest.approx(1.0)
    empty = ic_by_date(frame.iloc[:0], "score", "fwd")
    assert empty.empty and list(empty.columns) == ["ic", "rank_ic", "n"]


def test_ic_summary_by_hand() -> None:
    # mean 0.05; deviations (0.05, 0, -0.07, 0.02): sample variance 0.0078 / 3 = 0.0026
    ic = pd.Series([0.1, 0.05, -0.02, 0.07], index=pd.bdate_range("2021-01-04", periods=4))
    s = ic_summary(ic, horizon=2)
    std = math.sqrt(0.0026)
    assert s["mean"] == pytest.approx(0.05) and s["std"] == pytest.approx(std)
    assert s["icir"] == pytest.approx(0.05 / std)
    assert s["t_stat"] == pytest.approx(0.05 / std * math.sqrt(4))        # mean / std * sqrt(n)
    assert s["n_dates"] == 4 and s["share_positive"] == pytest.approx(0.75)
    # non-overlapping (h = 2): dates 0 and 2 -> (0.1, -0.02): mean 0.04, std 0.06 * sqrt(2)
    assert s["t_stat_nonoverlap"] == pytest.approx(0.04 / (0.06 * math.sqrt(2)) * math.sqrt(2))
    assert s["n_dates_nonoverlap"] == 2
    assert "t_stat_nonoverlap" not in ic_summary(ic)


def test_nonoverlapping_dates_are_taken_before_nans_are_dropped() -> None:
    # a NaN IC at position 1 must not shift the every-2nd-date grid (that would pick 0.1, 0.07)
    ic = pd.Series([0.1, np.nan, -0.02, 0.07], index=pd.bdate_range("2021-01-04", periods=4))
    s = ic_summary(ic, horizon="2d")
    assert s["n_dates"] == 3 and s["n_dates_nonoverlap"] == 2
    assert s["t_stat_nonoverlap"] == pytest.approx(0.04 / 0.06)
    # an unsorted index is put in date order first
    assert ic_summary(ic.iloc[::-1], horizon=2) == pytest.approx(s, nan_ok=True)
    # "1w" is every 5th date
    long = pd.Series(np.arange(10.0) - 2, index=pd.bdate_range("2021-01-04", periods=10))
    assert ic_summary(long, horizon="1w")["n_dates_nonoverlap"] == 2  # positions 0 and 5: -2, 3


def test_ic_summary_degenerate_series() -> None:
    const = ic_summary(pd.Series([0.02, 0.02, 0.02]), horizon=1)
    assert const["std"] == 0.0 and np.isnan(const["icir"]) and np.isnan(const["t_stat"])
    assert np.isnan(const["t_stat_nonoverlap"])
    one = ic_summary(np.array([0.3]))
    assert one["mean"] == pytest.approx(0.3) and np.isnan(one["std"]) and one["n_dates"] == 1
    none = ic_summary(pd.Series([], dtype=float))
    assert none["n_dates"] == 0 and np.isnan(none["mean"]) and np.isnan(none["share_positive"])


def test_quantile_spread_by_hand() -> None:
    # D1: 4 names, 2 buckets: top {3, 4} -> fwd mean 0.35, bottom {1, 2} -> 0.15: spread 0.2
    # D2: 3 names and 5 quantiles -> 3 buckets of one name: 0.9 - 0.1 = 0.8; D3: one name, skipped
    frame = pd.concat([_day(D1, [1.0, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]),
                       _day(D2, [3.0, 1, 2], [0.9, 0.1, 0.5]),
                       _day(D3, [1.0], [0.3])])
    assert quantile_spread(frame.iloc[:4], "score", "fwd", quantiles=2).loc[D1] == pytest.approx(0.2)
    spread = quantile_spread(frame.iloc[4:], "score", "fwd", quantiles=5)
    assert spread.loc[D2] == pytest.approx(0.8) and D3 not in spread.index and spread.name == "spread"


def test_ml_evaluate_re_exports_the_same_functions() -> None:
    import vfr.metrics
    import vfr.ml
    import vfr.ml.evaluate

    for name in ("ic_by_date", "ic_summary", "quantile_spread"):
        assert getattr(vfr.ml.evaluate, name) is getattr(vfr.metrics, name) is getattr(vfr.ml, name)
