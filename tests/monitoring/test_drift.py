"""Drift statistics (KS, PSI), rolling live performance, the retraining decision and the
``ml_drift`` table, checked against scipy / scikit-learn and hand computations."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy import stats
from sklearn.metrics import brier_score_loss

from tests.conftest import SMALL_SYMBOLS, SP500_PRICES, require_shared
from vfr.monitoring import (
    DEFAULT_ALERT_RULES,
    DriftThresholds,
    check_drift,
    ks_drift,
    latest_drift,
    monitored_features,
    psi,
    reference_sample,
    rolling_performance,
    save_drift_report,
)

FEATURES = ["f0", "f1", "f2", "f3", "f4"]


# -- KS -----------------------------------------------------------------------------------------
def _daily_features(start: str, end: str) -> pd.DataFrame:
    """Real daily features of 20 S&P 500 stocks: 1-day return, its absolute value, 5-day return."""
    path = require_shared(SP500_PRICES)
    px = pd.read_parquet(path, columns=["symbol", "date", "adjusted_close"],
                         filters=[("symbol", "in", SMALL_SYMBOLS),
                                  ("date", ">=", pd.Timestamp(start) - pd.Timedelta(days=14)),
                                  ("date", "<=", pd.Timestamp(end))]).sort_values(["symbol", "date"])
    g = px.groupby("symbol")["adjusted_close"]
    px["ret_1d"] = g.pct_change()
    px["abs_ret_1d"] = px["ret_1d"].abs()
    px["ret_5d"] = g.pct_change(5)
    return px[px["date"] >= pd.Timestamp(start)].reset_index(drop=True)


def test_ks_statistic_equals_scipy_on_real_returns_and_flags_the_2008_crisis() -> None:
    calm = _daily_features("2017-01-01", "2017-12-31")
    crisis = _daily_features("2008-09-01", "2009-03-31")
    cols = ["ret_1d", "abs_ret_1d", "ret_5d"]
    out = ks_drift(calm, crisis, cols)
    for r in out.itertuples():
        a, b = calm[r.feature].dropna(), crisis[r.feature].dropna()
        want = stats.ks_2samp(a, b)
        assert r.ks_statistic == pytest.approx(want.statistic, abs=1e-12)
        assert r.p_value == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)
        assert (r.n_reference, r.n_current) == (len(a), len(b))
    # the crisis quadrupled daily volatility: absolute returns are clearly shifted
    assert out.iloc[0]["feature"] == "abs_ret_1d" and out.iloc[0]["ks_statistic"] > 0.3
    assert out.set_index("feature").loc["abs_ret_1d", "breached"]
    assert list(out["ks_statistic"]) == sorted(out["ks_statistic"], reverse=True)

    # two random halves of the same year are the same distribution: nothing flagged
    half = np.random.default_rng(0).random(len(calm)) < 0.5
    same = ks_drift(calm[half], calm[~half], cols)
    assert not same["breached"].any() and same["ks_statistic"].max() < 0.05


def test_ks_on_synthetic_samples_small_columns_and_errors() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500), "few": np.r_[rng.normal(size=19),
                                                                                       [np.nan] * 481]})
    cur = pd.DataFrame({"a": rng.normal(0.8, 1, size=400), "b": rng.normal(size=400), "few": rng.normal(size=400)})
    out = ks_drift(ref, cur).set_index("feature")  # default: numeric columns of both
    assert out.loc["a", "ks_statistic"] == pytest.approx(stats.ks_2samp(ref["a"], cur["a"]).statistic)
    assert out.loc["a", "breached"] and not out.loc["b", "breached"]
    assert math.isnan(out.loc["few", "ks_statistic"]) and not out.loc["few", "breached"]
    assert out.loc["few", "n_reference"] == 19
    assert list(out.index)[-1] == "few"  # NaN sorts last
    with pytest.raises(KeyError, match="'zz' \\(current\\)"):
        ks_drift(ref.assign(zz=1.0), cur, ["a", "zz"])


# -- PSI ----------------------------------------------------------------------------------------
def test_psi_against_hand_computation() -> None:
    # 2 bins: the median of 1..10 is 5.5, so expected shares are 5/10 and 5/10;
    # actual has 3 values < 5.5 and 7 above: shares 0.3 and 0.7.
    expected = np.arange(1, 11)
    actual = np.array([1, 2, 3, 7, 8, 9, 10, 11, 12, 13])
    hand = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)  # 0.102165 + 0.067294
    assert hand == pytest.approx(0.169460, abs=1e-6)
    assert psi(expected, actual, bins=2) == pytest.approx(hand, rel=1e-12)

    # 4 bins on 1..8: inner edges = quartiles 2.75, 4.5, 6.25 -> expected shares 0.25 each.
    # actual [1, 5, 6, 7, 8, 9, 10, 11]: shares 1/8, 0 (floored at eps = 1e-4), 2/8, 5/8.
    actual = np.array([1, 5, 6, 7, 8, 9, 10, 11])
    hand = ((0.125 - 0.25) * math.log(0.125 / 0.25)        # 0.086643
            + (1e-4 - 0.25) * math.log(1e-4 / 0.25)        # 1.955229
            + 0.0                                          # 0.25 vs 0.25
            + (0.625 - 0.25) * math.log(0.625 / 0.25))     # 0.343609
    assert hand == pytest.approx(2.385481, abs=1e-6)
    assert psi(np.arange(1, 9), actual, bins=4) == pytest.approx(hand, rel=1e-12)


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shifted_one() -> None:
    rng = np.random.default_rng(2)
    ref = rng.beta(5, 5, size=20_000)
    assert psi(ref, ref) == 0.0
    assert psi(ref, rng.beta(5, 5, size=20_000)) < 0.01
    assert psi(ref, rng.beta(7, 4, size=20_000)) > 0.2
    assert psi(np.r_[ref, np.nan, np.inf], ref) == pytest.approx(0.0, abs=1e-3)  # non-finite dropped
    with pytest.raises(ValueError, match="actual has no finite values"):
        psi(ref, [np.nan, np.inf])
    with pytest.raises(ValueError, match="expected has no finite values"):
        psi([], ref)


# -- rolling performance --------------------------------------------------------------------------
def _tiny_outcomes() -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.to_datetime(["2024-01-01"] * 3 + ["2024-01-03"] * 2 + ["2024-01-10"]),
        "probability": [0.6, 0.4, 0.7, 0.55, 0.3, 0.8],
        "predicted_class": [1, 0, 1, 1, 0, 1],
        "excess_return": [0.02, -0.01, -0.03, 0.01, 0.02, 0.05],
        "correct": [True, True, False, True, False, True],
    })


def test_rolling_performance_against_hand_values() -> None:
    out = rolling_performance(_tiny_outcomes(), window_days=5).set_index("date")
    assert list(out.index.strftime("%Y-%m-%d")) == ["2024-01-01", "2024-01-03", "2024-01-10"]

    d1 = out.loc["2024-01-01"]  # rows of 01-01 only
    assert d1["n"] == 3 and d1["accuracy"] == pytest.approx(2 / 3)
    # outcomes 1[excess > 0] = 1, 0, 0: ((0.6-1)^2 + 0.4^2 + 0.7^2) / 3 = 0.81 / 3
    assert d1["brier"] == pytest.approx(0.27)
    # deviations: p (x30) = 1, -5, 4; excess (x300) = 8, -1, -7 -> r = -15 / sqrt(42 * 114)
    assert d1["ic"] == pytest.approx(-15 / math.sqrt(42 * 114))
    # ranks p = 2, 1, 3; excess = 3, 2, 1 -> 1 - 6 * (1 + 1 + 4) / (3 * 8) = -0.5
    assert d1["rank_ic"] == pytest.approx(-0.5)

    d3 = out.loc["2024-01-03"]  # 01-01 and 01-03 (5 rows)
    assert d3["n"] == 5 and d3["accuracy"] == pytest.approx(3 / 5)
    assert d3["brier"] == pytest.approx((0.16 + 0.16 + 0.49 + 0.2025 + 0.49) / 5)
    # rank deviations p = 1, -1, 2, 0, -2; excess (ties averaged) = 1.5, -1, -2, 0, 1.5
    assert d3["rank_ic"] == pytest.approx(-4.5 / math.sqrt(10 * 9.5))
    p, x = [0.6, 0.4, 0.7, 0.55, 0.3], [0.02, -0.01, -0.03, 0.01, 0.02]
    assert d3["ic"] == pytest.approx(stats.pearsonr(p, x).statistic)
    assert d3["rank_ic"] == pytest.approx(stats.spearmanr(p, x).statistic)

    d10 = out.loc["2024-01-10"]  # window (01-05, 01-10]: only its own row
    assert d10["n"] == 1 and d10["accuracy"] == 1.0 and d10["brier"] == pytest.approx(0.04)
    assert math.isnan(d10["ic"]) and math.isnan(d10["rank_ic"])


def test_rolling_window_edges_are_calendar_days_inclusive_of_the_end() -> None:
    o = _tiny_outcomes()
    assert rolling_performance(o, window_days=7).iloc[-1]["n"] == 1   # (01-03, 01-10]: 01-03 out
    assert rolling_performance(o, window_days=8).iloc[-1]["n"] == 3   # (01-02, 01-10]: 01-03 in
    assert rolling_performance(o, window_days=10).iloc[-1]["n"] == 6  # (12-31, 01-10]: all
    with pytest.raises(KeyError, match="excess_return"):
        rolling_performance(o.drop(columns="excess_return"))
    with pytest.raises(ValueError, match="window_days"):
        rolling_performance(o, window_days=0)


def test_rolling_brier_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    n = 500
    o = pd.DataFrame({"date": pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 20, n), "D"),
                      "probability": rng.uniform(0.2, 0.8, n), "excess_return": rng.normal(0, 0.02, n)})
    o["predicted_class"] = (o["probability"] >= 0.5).astype(int)
    o["correct"] = (o["predicted_class"] == 1) == (o["excess_return"] > 0)
    last = rolling_performance(o, window_days=30).iloc[-1]
    assert last["n"] == n
    assert last["brier"] == pytest.approx(brier_score_loss((o["excess_return"] > 0).astype(int), o["probability"]))
    assert last["accuracy"] == pytest.approx(o["correct"].mean())


# -- reference sample ---------------------------------------------------------------------------
def test_reference_sample_is_deterministic_and_keeps_rows_aligned() -> None:
    n = 1000
    feats = pd.DataFrame({"a": np.arange(n, dtype=float), "b": -np.arange(n, dtype=float), "junk": 1},
                         index=np.arange(n) + 5000)
    prob = np.arange(n) / n
    s1 = reference_sample(feats, prob, ["a", "b"], max_rows=100, seed=7)
    assert list(s1.columns) == ["a", "b", "probability"] and len(s1) == 100
    assert s1.equals(reference_sample(feats, prob, ["a", "b"], max_rows=100, seed=7))
    assert not s1.equals(reference_sample(feats, prob, ["a", "b"], max_rows=100, seed=8))
    np.testing.assert_allclose(s1["probability"], s1["a"] / n)  # each probability stays with its row
    assert s1["a"].is_monotonic_increasing and s1["a"].is_unique
    assert len(reference_sample(feats, prob, ["a"], max_rows=5000)) == n
    with pytest.raises(ValueError, match="999 probabilities for 1000 feature rows"):
        reference_sample(feats, prob[:-1], ["a"])
    with pytest.raises(KeyError, match="zz"):
        reference_sample(feats, prob, ["a", "zz"])


# -- check_drift ----------------------------------------------------------------------------------
def _frame(n: int, seed: int, shift: dict[str, float] | None = None, prob_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shift = shift or {}
    out = pd.DataFrame({c: rng.normal(shift.get(c, 0.0), 1.0, n) for c in FEATURES})
    out["probability"] = np.clip(rng.normal(0.5 + prob_shift, 0.05, n), 0, 1)
    return out


def _outcomes(n: int, accuracy: float, confident: bool = False, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    prob = rng.choice([0.1, 0.9], n) if confident else rng.uniform(0.45, 0.55, n)
    pred = (prob >= 0.5).astype(int)
    correct = np.arange(n) < round(accuracy * n)
    up = np.where(correct, pred == 1, pred == 0)
    excess = np.where(up, 1, -1) * rng.uniform(0.001, 0.05, n)
    return pd.DataFrame({"date": pd.Timestamp("2024-05-01") + pd.to_timedelta(np.arange(n) % 20, "D"),
                         "probability": prob, "predicted_class": pred, "excess_return": excess, "correct": correct})


REF = _frame(4000, seed=10)


def test_no_drift_means_no_action() -> None:
    rep = check_drift(REF, _frame(1500, seed=11), columns=FEATURES, outcomes=_outcomes(300, 0.55))
    assert rep.action == "none" and rep.reasons == [] and rep.alerts == []
    assert rep.psi < 0.05 and not rep.feature_drift["breached"].any()
    assert rep.performance["n"] == 300 and rep.performance["accuracy"] == pytest.approx(0.55)
    assert rep.brier == rep.performance["brier"] < 0.26


def test_ks_on_three_features_schedules_retraining_but_two_do_not() -> None:
    three = check_drift(REF, _frame(1500, 12, {"f0": 1.5, "f1": 0.8, "f2": -1.0}), columns=FEATURES, model="m1")
    assert three.action == "schedule_retraining"
    (alert,) = three.alerts
    assert (alert.rule, alert.severity, alert.value, alert.threshold) == ("feature_ks", "warning", 3.0, 3.0)
    (reason,) = three.reasons
    assert re.fullmatch(r"KS > 0\.15 on 3 features \(f0 0\.\d\d, f[12] 0\.\d\d, f[12] 0\.\d\d\) >= 3", reason), reason
    assert alert.message == f"m1: {reason}" and alert.key == "m1|feature_ks|ks_breached_features"
    two = check_drift(REF, _frame(1500, 12, {"f0": 1.0, "f1": 0.8}), columns=FEATURES)
    assert two.action == "none" and two.feature_drift["breached"].sum() == 2


def test_psi_of_the_probabilities_is_urgent() -> None:
    rep = check_drift(REF, _frame(1500, 13, prob_shift=0.05), columns=FEATURES)
    assert rep.psi > 0.2 and rep.action == "urgent_retraining"
    assert [(a.rule, a.severity) for a in rep.alerts] == [("prediction_psi", "critical")]
    assert rep.reasons[0].startswith("PSI of the predicted probabilities") and rep.reasons[0].endswith("> 0.2")


def test_low_rolling_accuracy_is_urgent_only_with_enough_outcomes() -> None:
    cur = _frame(1500, seed=11)
    rep = check_drift(REF, cur, columns=FEATURES, outcomes=_outcomes(250, 0.40))
    assert rep.action == "urgent_retraining"
    assert [(a.rule, a.severity) for a in rep.alerts] == [("rolling_accuracy", "critical")]
    assert rep.reasons == ["rolling 30-day accuracy 0.400 < 0.48 (250 outcomes)"]
    few = check_drift(REF, cur, columns=FEATURES, outcomes=_outcomes(150, 0.40))
    assert few.action == "none" and few.performance["n"] == 150
    lower = check_drift(REF, cur, columns=FEATURES, outcomes=_outcomes(150, 0.40),
                        thresholds=DriftThresholds(min_outcomes=100))
    assert lower.action == "urgent_retraining"


def test_high_brier_schedules_retraining_with_a_warning() -> None:
    # confident (0.1 / 0.9) and right 60 % of the time: Brier = 0.4 * 0.81 + 0.6 * 0.01 = 0.33
    rep = check_drift(REF, _frame(1500, seed=11), columns=FEATURES, outcomes=_outcomes(300, 0.60, confident=True))
    assert rep.brier == pytest.approx(0.33)
    assert rep.action == "schedule_retraining"
    assert [(a.rule, a.severity, a.metric) for a in rep.alerts] == [("calibration_brier", "warning", "brier")]


def test_urgent_wins_over_schedule_and_the_report_is_json_safe() -> None:
    cur = _frame(1500, 14, {"f0": 1.0, "f1": 1.0, "f3": 1.0}, prob_shift=0.05)
    rep = check_drift(REF, cur, columns=FEATURES, outcomes=_outcomes(300, 0.60, confident=True))
    assert rep.action == "urgent_retraining"
    assert {a.rule for a in rep.alerts} == {"prediction_psi", "feature_ks", "calibration_brier"}
    assert len(rep.reasons) == 3
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert d["action"] == "urgent_retraining" and len(d["feature_drift"]) == 5
    assert d["performance"]["date"].startswith("2024-05-20") and d["thresholds"]["psi"] == 0.2
    with pytest.raises(KeyError, match="current has no 'probability'"):
        check_drift(REF, cur.drop(columns="probability"), columns=FEATURES)


def test_default_alert_rules_mirror_the_default_thresholds() -> None:
    assert DEFAULT_ALERT_RULES[:4] == DriftThresholds().rules()


# -- ml_drift -------------------------------------------------------------------------------------
def test_save_and_read_the_latest_drift_report(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'serving.db'}")
    old = check_drift(REF, _frame(1500, seed=11), columns=FEATURES)
    new = check_drift(REF, _frame(1500, 12, {"f0": 1.0, "f1": 0.8, "f2": -1.0}), columns=FEATURES,
                      outcomes=_outcomes(250, 0.40))
    t0, t1 = pd.Timestamp("2024-06-01 10:00").to_pydatetime(), pd.Timestamp("2024-06-02 10:00").to_pydatetime()
    assert save_drift_report(engine, old, model_name="m1", model_version="3", as_of="2024-05-31",
                             computed_at=t0) == 5 + 1 + 1
    assert save_drift_report(engine, new, model_name="m1", model_version="4", as_of="2024-06-01",
                             computed_at=t1) == 5 + 1 + 4 + 1
    save_drift_report(engine, old, model_name="m2", model_version="1", as_of="2024-06-03")
    latest = latest_drift(engine, "m1")
    assert set(latest["computed_at"]) == {t1} and set(latest["model_version"]) == {"4"}
    by = latest.set_index(["kind", "name"])
    assert by.loc[("feature", "f0"), "statistic"] == pytest.approx(
        new.feature_drift.set_index("feature").loc["f0", "ks_statistic"])
    assert by.loc[("feature", "f0"), "breached"] and by.loc[("performance", "accuracy"), "breached"]
    assert by.loc[("performance", "accuracy"), "statistic"] == pytest.approx(0.40)
    assert not by.loc[("prediction", "psi"), "breached"]
    assert by.loc[("calibration", "brier"), "threshold"] == 0.26
    assert set(latest_drift(engine)["model_name"]) == {"m2"}
    assert latest_drift(engine, "nobody").empty


# -- rank-only default (issue 17) ---------------------------------------------------------------
RAW = ["vol_20d", "ret_20d", "rsi_14", "beta"]


def _panel(seed: int, n_dates: int = 20, n_symbols: int = 300, vol: float = 1.0, trend: float = 0.0) -> pd.DataFrame:
    """Synthetic features of ``n_symbols`` stocks on ``n_dates`` days: raw features with a
    market-wide level (``vol`` scales every stock's volatility, ``trend`` shifts every return)
    and their per-day cross-sectional percentile ranks (``*_rank``), as the feature pipeline
    computes them."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_dates):
        stock = rng.normal(0.0, 1.0, (n_symbols, len(RAW)))
        day = pd.DataFrame({"date": d, "vol_20d": vol * np.exp(0.3 * stock[:, 0]) * 0.25,
                            "ret_20d": trend + vol * 0.08 * stock[:, 1],
                            "rsi_14": 50 + 10 * trend / 0.05 + 8 * stock[:, 2],
                            "beta": 1 + 0.3 * stock[:, 3] + 0.2 * (vol - 1)})
        rows.append(day)
    out = pd.concat(rows, ignore_index=True)
    for c in RAW:
        out[f"{c}_rank"] = out.groupby("date")[c].rank(pct=True)
    out["probability"] = np.clip(rng.normal(0.5, 0.05, len(out)), 0, 1)
    return out.drop(columns="date")


PANEL_COLUMNS = [*RAW, *(f"{c}_rank" for c in RAW)]
CALM = _panel(20)


def test_a_regime_shift_of_raw_features_with_flat_ranks_raises_no_alert_by_default() -> None:
    crisis = _panel(21, vol=2.5, trend=-0.15)  # volatility x2.5 and a -15 % month for every stock
    rep = check_drift(CALM, crisis, columns=PANEL_COLUMNS)
    by = rep.feature_drift.set_index("feature")
    assert (by.loc[RAW, "ks_statistic"] > 0.3).all()  # every raw level moved ...
    assert (by.loc[[f"{c}_rank" for c in RAW], "ks_statistic"] < 0.05).all()  # ... its rank did not
    assert rep.action == "none" and rep.alerts == [] and not by["breached"].any()
    assert list(by.loc[RAW, "monitored"]) == [False] * 4 and by.loc[[f"{c}_rank" for c in RAW], "monitored"].all()
    old = check_drift(CALM, crisis, columns=PANEL_COLUMNS, thresholds=DriftThresholds(ks_rank_only=False))
    assert old.action == "schedule_retraining" and old.feature_drift["breached"].sum() == 4
    assert rep.to_dict()["feature_drift"][0]["monitored"] in (True, False)


def test_a_genuine_change_of_rank_features_raises_the_alert() -> None:
    broken = _panel(22)
    # an upstream fault: for half the rows three rank features are computed on a stale, shifted
    # universe (ranks squeezed into the top half)
    half = np.arange(len(broken)) % 2 == 0
    for c in ("vol_20d_rank", "ret_20d_rank", "rsi_14_rank"):
        broken.loc[half, c] = 0.5 + broken.loc[half, c] / 2
    rep = check_drift(CALM, broken, columns=PANEL_COLUMNS)
    assert rep.action == "schedule_retraining"
    (alert,) = rep.alerts
    assert alert.rule == "feature_ks" and alert.value == 3.0
    assert set(rep.feature_drift.loc[rep.feature_drift["breached"], "feature"]) == {
        "vol_20d_rank", "ret_20d_rank", "rsi_14_rank"}
    one = _panel(22)
    one.loc[half, "beta_rank"] = 0.5 + one.loc[half, "beta_rank"] / 2
    assert check_drift(CALM, one, columns=PANEL_COLUMNS).action == "none"  # one feature: below ks_min_features
    assert check_drift(CALM, one, columns=PANEL_COLUMNS,
                       thresholds=DriftThresholds(ks_min_features=1)).action == "schedule_retraining"


def test_monitored_features_falls_back_to_all_columns_without_ranks() -> None:
    assert list(monitored_features(["a", "b_rank", "c"])) == [False, True, False]
    assert list(monitored_features(["a", "b_rank"], rank_only=False)) == [True, True]
    assert list(monitored_features(["a", "b"])) == [True, True]
    assert list(monitored_features([])) == []
