"""Evaluation metrics against scipy and hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vfr.ml import classification_metrics, evaluate_predictions, ic_by_date, ic_summary, quantile_spread


def _panel(seed: int = 0, n_dates: int = 40, n_names: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2019-01-01", periods=n_dates)
    score = rng.normal(size=(n_dates, n_names))
    fwd = 0.3 * score + rng.normal(size=(n_dates, n_names))
    return pd.DataFrame({"date": np.repeat(dates, n_names), "score": score.ravel(), "fwd": fwd.ravel() / 100})


def test_ic_matches_scipy_per_date() -> None:
    panel = _panel()
    ic = ic_by_date(panel, "score", "fwd")
    for date, g in panel.groupby("date"):
        assert ic.loc[date, "ic"] == pytest.approx(stats.pearsonr(g.score, g.fwd)[0], abs=1e-10)
        assert ic.loc[date, "rank_ic"] == pytest.approx(stats.spearmanr(g.score, g.fwd)[0], abs=1e-10)
        assert ic.loc[date, "n"] == len(g)


def test_ic_skips_thin_and_constant_dates() -> None:
    panel = _panel(n_dates=3)
    panel.loc[panel.date == panel.date.iloc[0], "score"] = 1.0  # constant score on day 1
    thin = pd.DataFrame({"date": [pd.Timestamp("2030-01-01")] * 3, "score": [1.0, 2, 3], "fwd": [0.1, 0.2, 0.3]})
    ic = ic_by_date(pd.concat([panel, thin]), "score", "fwd", min_names=5)
    assert np.isnan(ic["ic"].iloc[0])
    assert pd.Timestamp("2030-01-01") not in ic.index


def test_ic_summary_by_hand() -> None:
    ic = pd.Series([0.1, 0.05, -0.02, 0.07])
    mean, std = ic.mean(), ic.std(ddof=1)
    s = ic_summary(ic)
    assert s["mean"] == pytest.approx(0.05)
    assert s["icir"] == pytest.approx(mean / std)
    assert s["t_stat"] == pytest.approx(mean / std * 2.0)
    assert s["share_positive"] == pytest.approx(0.75)


def test_decile_spread_by_hand() -> None:
    # 10 names, one per decile: top minus bottom = fwd of best score minus fwd of worst
    day = pd.Timestamp("2020-01-02")
    frame = pd.DataFrame({"date": day, "score": np.arange(10.0), "fwd": np.arange(10.0) * 0.01})
    assert quantile_spread(frame, "score", "fwd").loc[day] == pytest.approx(0.09)
    # 20 names: two per decile
    frame = pd.DataFrame({"date": day, "score": np.arange(20.0), "fwd": np.arange(20.0)})
    assert quantile_spread(frame, "score", "fwd").loc[day] == pytest.approx((18 + 19) / 2 - (0 + 1) / 2)


def test_classification_metrics_by_hand() -> None:
    y = np.array([1, 0, 1, 1, 0, np.nan])
    p = np.array([0.9, 0.6, 0.4, 0.8, 0.1, 0.5])
    m = classification_metrics(y, p)
    # predictions at 0.5: 1, 1, 0, 1, 0 -> TP=2, FP=1, FN=1, TN=1
    assert m["n"] == 5
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # AUC: positives {0.9, 0.4, 0.8} vs negatives {0.6, 0.1}: 5 of 6 pairs ordered right
    assert m["roc_auc"] == pytest.approx(5 / 6)
    expected_ll = -np.mean(np.log([0.9, 0.4, 0.4, 0.8, 0.9]))
    assert m["log_loss"] == pytest.approx(expected_ll)


def test_constant_prediction_has_no_auc() -> None:
    m = classification_metrics(np.array([1, 0, 1]), np.array([1.0, 1.0, 1.0]))
    assert np.isnan(m["roc_auc"]) and m["accuracy"] == pytest.approx(2 / 3)


def test_evaluate_predictions_signal_beats_noise() -> None:
    panel = _panel(seed=1)
    panel["label"] = (panel.groupby("date")["fwd"].transform(lambda s: s - s.mean()) > 0).astype(float)
    panel["prob"] = 1 / (1 + np.exp(-panel["score"]))
    good = evaluate_predictions(panel, score="prob", label="label", fwd_return="fwd", horizon_days=5)
    noise = evaluate_predictions(panel.assign(prob=np.random.default_rng(9).uniform(size=len(panel))),
                                 score="prob", label="label", fwd_return="fwd", horizon_days=5)
    assert good["rank_ic_mean"] > 0.15 > noise["rank_ic_mean"]
    assert good["roc_auc"] > 0.6 > noise["roc_auc"]
    assert good["decile_spread"] > 0
    assert np.isfinite(good["rank_ic_t_stat_nonoverlap"])
    assert abs(good["rank_ic_t_stat_nonoverlap"]) < abs(good["rank_ic_t_stat"])  # fewer dates, smaller t
