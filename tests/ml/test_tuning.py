"""Purged k-fold CV keeps label windows inside their side of every fold boundary; tuning runs and resumes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.ml.tuning import (
    SEARCH_SPACES,
    TuneConfig,
    cross_validate,
    purged_kfold,
    score_predictions,
    tune,
)


@pytest.mark.parametrize("h", [1, 5, 21])
@pytest.mark.parametrize("k", [2, 5, 7])
def test_purged_kfold_no_label_window_crosses_a_fold_boundary(h: int, k: int) -> None:
    dates = pd.bdate_range("2010-01-01", periods=700)
    pos = {d: i for i, d in enumerate(dates)}
    folds = purged_kfold(dates, k, horizon=h)
    assert len(folds) == k
    tested = np.concatenate([[pos[d] for d in f.test] for f in folds])
    np.testing.assert_array_equal(np.sort(tested), np.arange(700))  # each date tested once
    for f in folds:
        a, b = pos[f.test[0]], pos[f.test[-1]]
        assert b - a + 1 == len(f.test)  # contiguous test fold
        for seg in (f.train, f.valid):
            p = np.array([pos[d] for d in seg])
            # no fitted date's label window (t, t+h] overlaps [a, b] ...
            assert not ((p + h >= a) & (p <= b)).any()
            # ... and no test label window (t, t+h], t in [a, b], reaches a fitted date
            assert not ((p > b) & (p <= b + h)).any()
        tr, va = np.array([pos[d] for d in f.train]), np.array([pos[d] for d in f.valid])
        # training labels end before the validation segment starts (early stopping is clean too)
        assert tr.max() + h < va.min()
        assert not set(f.train) & set(f.test) and not set(f.valid) & set(f.test)


def test_purged_kfold_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n_splits"):
        purged_kfold(pd.bdate_range("2010-01-01", periods=50), 1)
    with pytest.raises(ValueError, match="too few"):
        purged_kfold(pd.bdate_range("2010-01-01", periods=6), 2, horizon=5)


def test_scoring_metrics_by_hand() -> None:
    dates = np.repeat(pd.bdate_range("2020-01-01", periods=4), 10)
    score = np.tile(np.arange(10.0), 4)
    fwd = np.tile(np.arange(10.0), 4) / 100 + np.repeat([0.0, 0.01, -0.005, 0.02], 10)
    frame = pd.DataFrame({"date": dates, "prob": score / 10, "fwd": fwd,
                          "label": (np.tile(np.arange(10), 4) >= 5) * 1.0})
    assert score_predictions(frame, "rank_ic") == pytest.approx(1.0)
    assert score_predictions(frame, "auc") == pytest.approx(1.0)
    assert score_predictions(frame, "f1") == pytest.approx(1.0)
    top = np.array([0.09, 0.10, 0.085, 0.11])  # the top decile is the single best name each date
    expected = top.mean() / top.std(ddof=1) * np.sqrt(252 / 1)
    assert score_predictions(frame, "sharpe_top_decile", horizon_days=1) == pytest.approx(expected)
    with pytest.raises(ValueError, match="unknown metric"):
        score_predictions(frame, "accuracy")


@pytest.fixture(scope="module")
def tune_data(real_panel, small_feature_columns):
    return real_panel[(real_panel.date >= "2014-01-01") & (real_panel.date < "2017-01-01")].reset_index(drop=True)


KW = {"label": "fwd_dir_1w", "fwd_return": "fwd_excess_1w", "horizon_days": 5, "n_splits": 3, "date_stride": 2}
COLS = {"label": "fwd_dir_1w", "fwd_return": "fwd_excess_1w", "horizon_days": 5}


def test_cross_validate_scores_each_fold(tune_data, small_feature_columns) -> None:
    scores = cross_validate(tune_data, "lightgbm", "classification", {"n_estimators": 30},
                            feature_columns=small_feature_columns, metric="auc", **KW)
    assert len(scores) == 3 and all(0.3 < s < 0.7 for s in scores)  # real returns: near chance


@pytest.mark.parametrize("method", ["tpe", "random", "grid"])
def test_tune_in_sqlite_and_resume(method, tune_data, small_feature_columns, tmp_path) -> None:
    storage = tmp_path / "optuna.db"
    kw = {"metric": "rank_ic", "method": method, "n_splits": 3, "date_stride": 2, "storage": storage}
    first = tune(tune_data, "linear", "classification", TuneConfig(n_trials=2, **kw),
                 feature_columns=small_feature_columns, **COLS)
    assert len(first.trials) == 2 and np.isfinite(first.best_value)
    lo, hi = SEARCH_SPACES["linear"]["C"][1:3]
    assert lo <= first.best_params["C"] <= hi
    assert first.storage.startswith("sqlite:///") and storage.exists()
    again = tune(tune_data, "linear", "classification", TuneConfig(n_trials=1, **kw),
                 feature_columns=small_feature_columns, **COLS)
    assert len(again.trials) == 3  # same study name, same storage: resumed


@pytest.mark.postgres
def test_tune_in_postgres(pg_url, tune_data, small_feature_columns) -> None:
    result = tune(tune_data, "linear", "classification",
                  TuneConfig(metric="auc", n_trials=2, storage=pg_url, n_splits=3, date_stride=2),
                  feature_columns=small_feature_columns, **COLS)
    assert len(result.trials) == 2 and result.storage == pg_url
    import optuna

    assert len(optuna.load_study(study_name=result.study_name, storage=pg_url).trials) == 2


def test_cross_validate_takes_the_dataset_object(sp500_raw_small, small_feature_columns) -> None:
    """Training and tuning share one dataset object: CV on a Dataset equals CV on its frame form."""
    from vfr.data import adjust_prices
    from vfr.features import build_features
    from vfr.ml import Dataset, make_labels

    prices = adjust_prices(sp500_raw_small[sp500_raw_small["date"] < "2014-01-01"])
    dataset = Dataset.from_frames(build_features(prices), make_labels(prices), "1w", small_feature_columns)
    frame = dataset.to_frame()
    assert list(frame.columns[2:2 + len(small_feature_columns)]) == small_feature_columns
    assert frame["date"].is_monotonic_increasing and len(frame) == len(dataset)
    kw = {"metric": "rank_ic", "n_splits": 3, "date_stride": 2}
    on_dataset = cross_validate(dataset, "linear", "classification", {}, **kw)
    on_frame = cross_validate(frame, "linear", "classification", {}, feature_columns=small_feature_columns,
                              label="fwd_dir_1w", fwd_return="fwd_excess_1w", horizon_days=5, **kw)
    np.testing.assert_allclose(on_dataset, on_frame)
    with pytest.raises(ValueError, match="need feature_columns"):
        cross_validate(frame, "linear", "classification", {}, **kw)


def test_tune_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="TuneConfig.metric"):
        TuneConfig(metric="accuracy")
    with pytest.raises(ValueError, match="TuneConfig.method"):
        TuneConfig(method="bayes")
    with pytest.raises(ValueError, match="TuneConfig.n_trials"):
        TuneConfig(n_trials=0)
