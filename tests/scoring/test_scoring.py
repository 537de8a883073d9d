"""Classic scores, the confidence-weighted ML blend, recommendations and the ML fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.scoring import (
    GROUP_WEIGHTS,
    TECHNICAL_SIGNALS,
    blend,
    classic_scores,
    group_score,
    ml_components,
    recommendation,
    select,
)


def _features(n: int = 8, seed: int = 0, dates: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for d in pd.bdate_range("2019-12-30", periods=dates):
        f = pd.DataFrame({"symbol": [f"S{i}" for i in range(n)], "date": d})
        for s in TECHNICAL_SIGNALS:
            f[s.feature] = rng.normal(size=n)
            f[f"{s.feature}_rank"] = f[s.feature].rank(pct=True)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def test_group_score_by_hand() -> None:
    feats = pd.DataFrame({"mom_12_1_rank": [1.0, 0.5], "rsi_14_rank": [1.0, 0.5]})
    signals = tuple(s for s in TECHNICAL_SIGNALS if s.feature in ("mom_12_1", "rsi_14"))
    w_mom, w_rsi = (s.weight for s in signals)
    # higher momentum is better, higher RSI is worse (enters as 1 - rank)
    expected0 = (w_mom * 1.0 + w_rsi * 0.0) / (w_mom + w_rsi)
    assert group_score(feats, signals).iloc[0] == pytest.approx(expected0)
    assert group_score(feats, signals).iloc[1] == pytest.approx(0.5)


def test_group_score_renormalises_over_missing_signals() -> None:
    feats = pd.DataFrame({"mom_12_1_rank": [0.9], "rsi_14_rank": [np.nan]})
    signals = tuple(s for s in TECHNICAL_SIGNALS if s.feature in ("mom_12_1", "rsi_14"))
    assert group_score(feats, signals).iloc[0] == pytest.approx(0.9)


def test_classic_with_only_technical_equals_technical() -> None:
    scores = classic_scores(_features())
    # weights renormalise over the groups present: technical alone -> classic == technical
    np.testing.assert_allclose(scores["classic_score"], scores["technical_score"])
    assert scores["classic_score"].between(0, 1).all()
    assert sum(GROUP_WEIGHTS.values()) == pytest.approx(1.0)


def test_blend_full_confidence_is_85_15_and_no_ml_keeps_classic() -> None:
    classic = pd.Series([0.2, 0.8, 0.5])
    ml_score = pd.Series([1.0, 0.0, np.nan])
    conf = pd.Series([1.0, 1.0, np.nan])
    out = blend(classic, ml_score, conf, 0.15)
    assert out.iloc[0] == pytest.approx(0.85 * 0.2 + 0.15 * 1.0)
    assert out.iloc[1] == pytest.approx(0.85 * 0.8)
    assert out.iloc[2] == pytest.approx(0.5)
    half = blend(classic, ml_score, pd.Series([0.5, 0.5, 0.5]), 0.15)
    assert half.iloc[0] == pytest.approx((1 - 0.075) * 0.2 + 0.075 * 1.0)


def test_ml_components_rank_and_confidence() -> None:
    dates = pd.Series(pd.to_datetime(["2020-01-02"] * 4))
    score, conf = ml_components(pd.Series([0.51, 0.49, 0.60, 0.40]), dates)
    assert list(score) == [0.75, 0.5, 1.0, 0.25]
    assert list(conf) == [0.5, 0.0, 1.0, 0.5]


def test_flat_confidence_gives_the_full_weight_wherever_there_is_an_ml_score() -> None:
    dates = pd.Series(pd.to_datetime(["2020-01-02"] * 4))
    score, conf = ml_components(pd.Series([0.51, 0.49, np.nan, 0.40]), dates, "flat")
    assert list(score.fillna(-1)) == [1.0, 2 / 3, -1, 1 / 3]
    assert list(conf.fillna(-1)) == [1.0, 1.0, -1, 1.0]
    out = blend(pd.Series([0.2, 0.2, 0.2, 0.2]), score, conf, 0.3)
    assert out.iloc[1] == pytest.approx(0.7 * 0.2 + 0.3 * 2 / 3)   # the median call keeps its weight
    assert out.iloc[2] == pytest.approx(0.2)                       # no ML score: classic unchanged
    with pytest.raises(ValueError, match="confidence rule must be one of extremity, flat, got 'loud'"):
        ml_components(pd.Series([0.5]), dates.iloc[:1], "loud")


def test_recommendation_thresholds() -> None:
    rec = recommendation(pd.Series([0.95, 0.8, 0.79, 0.6, 0.5, 0.3, 0.1, 0.0, 1.0, np.nan]))
    assert list(rec) == ["STRONG_BUY", "STRONG_BUY", "BUY", "BUY", "HOLD", "SELL", "STRONG_SELL", "STRONG_SELL",
                         "STRONG_BUY", None]


class _Model:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        if self.fail:
            raise RuntimeError("corrupt booster")
        return features["mom_12_1_rank"].to_numpy()


def test_select_classic_ranks_latest_date() -> None:
    feats = _features()
    sel = select(feats)
    assert sel.date == feats["date"].max() and sel.ml_status == "disabled"
    assert list(sel.table["rank"]) == list(range(1, 9))
    assert sel.table["composite"].is_monotonic_decreasing
    assert "ml_probability" not in sel.table.columns
    np.testing.assert_allclose(sel.table["composite"], sel.table["classic_score"])


def test_select_with_ml_changes_composite_but_not_classic() -> None:
    feats = _features()
    classic = select(feats).table.set_index("symbol")
    ml = select(feats, include_ml=True, model=_Model(), model_version="3")
    assert ml.ml_status == "ok" and ml.model_version == "3"
    t = ml.table.set_index("symbol")
    np.testing.assert_allclose(t.loc[classic.index, "classic_score"], classic["classic_score"])
    assert not np.allclose(t.loc[classic.index, "composite"], classic["composite"])
    assert ((t["composite"] - t["classic_score"]).abs() <= 0.15 + 1e-12).all()


def test_select_blends_only_confident_predictions() -> None:
    """ml_min_confidence: rows under it keep their classic score; rank follows the composite."""
    feats = _features(n=20)
    t = select(feats, include_ml=True, model=_Model(), ml_min_confidence=0.5).table
    low = t["ml_confidence"] < 0.5
    assert low.any() and (~low).any()
    np.testing.assert_allclose(t.loc[low, "composite"], t.loc[low, "classic_score"])
    assert (t["ml_blended"] == ~low).all()
    everything = select(feats, include_ml=True, model=_Model()).table.set_index("symbol")
    hi = t.loc[~low].set_index("symbol")
    np.testing.assert_allclose(hi["composite"], everything.loc[hi.index, "composite"])
    assert t["composite"].is_monotonic_decreasing and (t["rank"] == np.arange(1, len(t) + 1)).all()


def test_select_with_the_flat_confidence_rule_gives_every_ml_score_the_full_weight() -> None:
    feats = _features(n=20)
    t = select(feats, include_ml=True, model=_Model(), ml_weight=0.3, ml_confidence_rule="flat").table
    assert (t["ml_confidence"] == 1.0).all()
    np.testing.assert_allclose(t["composite"], 0.7 * t["classic_score"] + 0.3 * t["ml_score"])
    extreme = select(feats, include_ml=True, model=_Model(), ml_weight=0.3).table.set_index("symbol")
    median = t.set_index("symbol")["ml_score"].sub(0.5).abs().idxmin()  # the least extreme call
    assert extreme.loc[median, "composite"] != pytest.approx(t.set_index("symbol").loc[median, "composite"])


def test_select_falls_back_to_classic_when_ml_fails() -> None:
    feats = _features()
    classic = select(feats).table
    broken = select(feats, include_ml=True, model=_Model(fail=True))
    assert broken.ml_status.startswith("unavailable: prediction failed") and "corrupt booster" in broken.ml_status
    pd.testing.assert_frame_equal(broken.table, classic)
    missing = select(feats, include_ml=True, model=None, ml_error="no champion")
    assert missing.ml_status == "unavailable: no champion"
    pd.testing.assert_frame_equal(missing.table, classic)


def test_select_rejects_unknown_date() -> None:
    with pytest.raises(ValueError, match="no features on 1990-01-01"):
        select(_features(), date="1990-01-01")


class _VolBet:
    """A model that only buys volatility (the failure the independent evaluation measured)."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return features["vol_60d_ann"].to_numpy() + 0.3 * features["mom_12_1_rank"].to_numpy()


def _risky_features(n: int = 60) -> pd.DataFrame:
    feats = _features(n=n, dates=1)
    rng = np.random.default_rng(1)
    feats["vol_60d_ann"] = rng.uniform(0.1, 0.6, size=n)
    feats["beta_mkt_252d"] = rng.normal(1.0, 0.3, size=n)
    return feats


def test_the_risk_neutral_ml_score_drops_the_volatility_bet_and_keeps_the_pick() -> None:
    feats = _risky_features()
    universe = pd.DataFrame({"symbol": feats["symbol"], "sector": ["A", "B", "C"] * 20})
    raw = select(feats, include_ml=True, model=_VolBet(), universe=universe).table.set_index("symbol")
    neutral = select(feats, include_ml=True, model=_VolBet(), universe=universe, ml_neutralize=True)
    assert neutral.ml_status == "ok"
    t = neutral.table.set_index("symbol").loc[raw.index]
    vol = feats.set_index("symbol").loc[raw.index, "vol_60d_ann"]
    assert raw["ml_score"].corr(vol, method="spearman") > 0.7       # raw: mostly the volatility rank
    assert abs(t["ml_score"].corr(vol, method="spearman")) < 0.15  # neutral: none of it left
    mom = feats.set_index("symbol").loc[raw.index, "mom_12_1_rank"]
    assert t["ml_score"].corr(mom, method="spearman") > 0.6        # the stock-specific part stays
    np.testing.assert_allclose(t["ml_probability"], raw["ml_probability"])  # the model's output is shown as is
    np.testing.assert_allclose(t["ml_confidence"], (2 * t["ml_score"] - 1).abs())


def test_the_risk_neutral_score_of_a_few_symbols_comes_from_the_whole_cross_section() -> None:
    feats = _risky_features()
    full = select(feats, include_ml=True, model=_VolBet(), ml_neutralize=True).table.set_index("symbol")
    few = select(feats, include_ml=True, model=_VolBet(), ml_neutralize=True, symbols=["S1", "S7", "S30"])
    assert few.ml_status == "ok" and set(few.table["symbol"]) == {"S1", "S7", "S30"}
    t = few.table.set_index("symbol")
    np.testing.assert_allclose(t["ml_score"], full.loc[t.index, "ml_score"])


def test_the_risk_neutral_score_without_its_exposures_falls_back_to_classic() -> None:
    feats = _features(n=30, dates=1)  # no vol_60d_ann / beta_mkt_252d
    sel = select(feats, include_ml=True, model=_Model(), ml_neutralize=True)
    assert sel.ml_status.startswith("unavailable: prediction failed") and "vol_60d_ann" in sel.ml_status
    np.testing.assert_allclose(sel.table["composite"], sel.table["classic_score"])


def test_the_pipeline_backtest_blends_the_risk_neutral_score_when_asked() -> None:
    """`VFR_ML_NEUTRALIZE` reaches the backtest's composite the same way as `select`'s."""
    from vfr.pipeline import _strategy_scores

    feats = _risky_features()
    oos = feats[["date", "symbol"]].assign(prob=_VolBet().predict_proba(feats))
    sectors = pd.DataFrame({"symbol": feats["symbol"], "sector": ["A", "B", "C"] * 20})
    raw = _strategy_scores(feats, oos, 0.15)["composite"].set_index("symbol")["score"]
    neutral = _strategy_scores(feats, oos, 0.15, sectors, ml_neutralize=True)["composite"].set_index("symbol")["score"]
    chosen = select(feats, include_ml=True, model=_VolBet(), universe=sectors, ml_neutralize=True).table
    np.testing.assert_allclose(neutral.loc[chosen["symbol"]].to_numpy(), chosen["composite"].to_numpy())
    assert not np.allclose(raw.loc[chosen["symbol"]].to_numpy(), neutral.loc[chosen["symbol"]].to_numpy())
