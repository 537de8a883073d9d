"""Ensembles combine as documented, survive a failing member, and stack on out-of-fold predictions only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from vfr.ml.calibration import Calibrator, brier_score, reliability_curve
from vfr.ml.ensembles import (
    Ensemble,
    diverse_specs,
    fit_members,
    fit_meta_learner,
    fit_stacking,
    out_of_fold_predictions,
    performance_weights,
)
from vfr.ml.models import ModelError, load_model, make_model

LABEL = "fwd_dir_1w"


@pytest.fixture(scope="module")
def data(real_panel):
    return real_panel[(real_panel.date >= "2015-01-01") & (real_panel.date < "2017-07-01")].reset_index(drop=True)


@pytest.fixture(scope="module")
def members(data, small_feature_columns):
    train = data[data.date < "2017-01-01"]
    X = train[["symbol", "date", *small_feature_columns]]
    return [make_model("linear").fit(X, train[LABEL]),
            make_model("lightgbm", params={"n_estimators": 30}).fit(X, train[LABEL]),
            make_model("random_forest", params={"n_estimators": 10}).fit(X, train[LABEL])]


@pytest.fixture(scope="module")
def test_rows(data):
    return data[data.date >= "2017-01-15"].reset_index(drop=True)


def test_voting_and_weighted_average(members, test_rows, tmp_path) -> None:
    P = np.column_stack([m.predict_proba(test_rows) for m in members])
    voting = Ensemble(members, "voting")
    np.testing.assert_allclose(voting.predict_proba(test_rows), P.mean(axis=1))
    weighted = Ensemble(members, "weighted", weights=[2, 1, 1], names=["lin", "lgb", "rf"])
    np.testing.assert_allclose(weighted.predict_proba(test_rows), P @ np.array([0.5, 0.25, 0.25]))
    back = load_model(weighted.save(tmp_path / "ens"))
    assert isinstance(back, Ensemble) and back.names == ["lin", "lgb", "rf"]
    np.testing.assert_allclose(back.predict_proba(test_rows), weighted.predict_proba(test_rows))
    imp = weighted.feature_importances()
    assert imp.sum() == pytest.approx(1.0) and set(imp.index) == set(members[0].feature_columns)


def test_failed_member_is_dropped_for_that_call(members, data, test_rows, small_feature_columns) -> None:
    train = data[data.date < "2017-01-01"]
    extra = make_model("linear").fit(train[["ret_60d", *small_feature_columns]], train[LABEL])
    ens = Ensemble([*members[:2], extra], "weighted", weights=[1, 1, 2], names=["lin", "lgb", "needs_ret_60d"])
    without = test_rows.drop(columns=["ret_60d"])
    p = ens.predict_proba(without)  # the third member cannot predict these rows ...
    assert list(ens.last_failures) == ["needs_ret_60d"] and "lacks features" in ens.last_failures["needs_ret_60d"]
    np.testing.assert_allclose(p, (members[0].predict_proba(without) + members[1].predict_proba(without)) / 2)
    full = ens.predict_proba(test_rows)  # ... and is back on the next call that it can serve
    assert ens.last_failures == {} and not np.allclose(full, p)
    lone = Ensemble([extra], "voting")
    with pytest.raises(ModelError, match="every ensemble member failed"):
        lone.predict_proba(without)


def test_stacking_sees_out_of_fold_predictions_only(data, small_feature_columns) -> None:
    specs = {"lin": {"algorithm": "linear", "feature_columns": small_feature_columns},
             "lgb": {"algorithm": "lightgbm", "params": {"n_estimators": 20}, "feature_columns": small_feature_columns}}
    oof = out_of_fold_predictions(data, specs, label=LABEL, horizon_days=5, n_splits=4, date_stride=3)
    dates = pd.DatetimeIndex(np.sort(data["date"].unique()))
    pos = {d: i for i, d in enumerate(dates)}
    folds = oof.attrs["folds"]
    assert (oof["fold"] >= 0).all() and oof[["lin", "lgb"]].notna().all().all()
    for k, fold in enumerate(folds):
        rows = oof[oof["fold"] == k]
        assert set(rows["date"]) == set(fold.test)
        test_pos = np.array([pos[d] for d in fold.test])
        train_pos = np.array([pos[d] for d in fold.train])
        # no member that predicted these rows trained on them, or on dates whose labels overlap them
        assert not np.isin(train_pos, test_pos).any()
        assert not ((train_pos + 5 >= test_pos.min()) & (train_pos <= test_pos.max() + 5)).any()
    meta = fit_meta_learner(oof, ["lin", "lgb"], LABEL)
    lr = LogisticRegression(max_iter=1000).fit(
        np.log(np.clip(oof[["lin", "lgb"]], 1e-6, 1 - 1e-6) / (1 - np.clip(oof[["lin", "lgb"]], 1e-6, 1 - 1e-6))),
        oof[LABEL].astype(int))
    np.testing.assert_allclose(meta["coef"], lr.coef_[0], rtol=1e-4)
    assert meta["n_rows"] == int(data[LABEL].notna().sum())
    # in-sample (in-fold) predictions are refused
    insample = oof.drop(columns=["fold"])
    with pytest.raises(ModelError, match="out_of_fold"):
        fit_meta_learner(insample, ["lin", "lgb"], LABEL)
    ens = fit_stacking(data, specs, label=LABEL, horizon_days=5, n_splits=4, date_stride=3)
    assert ens.meta["coef"] == pytest.approx(meta["coef"])  # the same OOF inputs, the same meta-learner
    p = ens.predict_proba(data.tail(200))
    assert ((p > 0) & (p < 1)).all() and p.std() > 0


def test_performance_weights_follow_recent_ic() -> None:
    idx = pd.bdate_range("2020-01-01", periods=100)
    recent = pd.DataFrame({"a": np.r_[np.full(50, 0.10), np.full(50, 0.01)],
                           "b": np.r_[np.full(50, 0.00), np.full(50, 0.03)],
                           "c": np.full(100, -0.02)}, index=idx)
    w = performance_weights(recent, lookback=50)
    assert w.to_dict() == pytest.approx({"a": 0.25, "b": 0.75, "c": 0.0})
    w_all = performance_weights(recent, lookback=100)
    assert w_all["a"] > w_all["b"] and w_all.sum() == pytest.approx(1.0)
    assert performance_weights(-recent.abs()).tolist() == pytest.approx([1 / 3] * 3)  # nobody good: equal


def test_update_weights_changes_the_combination(members, test_rows) -> None:
    ens = Ensemble(members, "weighted", names=["lin", "lgb", "rf"])
    before = ens.predict_proba(test_rows)
    ic = pd.DataFrame({"lin": [0.05] * 10, "lgb": [0.0] * 10, "rf": [0.0] * 10},
                      index=pd.bdate_range("2020", periods=10))
    ens.update_weights(ic)
    np.testing.assert_allclose(ens.predict_proba(test_rows), members[0].predict_proba(test_rows))
    assert not np.allclose(before, ens.predict_proba(test_rows))


def test_diverse_specs_fit_on_recent_windows(data, small_feature_columns) -> None:
    specs = diverse_specs("linear", small_feature_columns, feature_subsets={"ranks": small_feature_columns[7:9]})
    assert [s.get("window") for s in specs.values()] == [63, 126, 252, None]
    fitted = fit_members(data, specs, label=LABEL)
    assert fitted[-1].feature_columns == small_feature_columns[7:9]
    # the 3-month member is not the 12-month member
    x = data.tail(100)
    assert not np.allclose(fitted[0].predict_proba(x), fitted[2].predict_proba(x))


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_improves_brier_out_of_sample(method, members, data) -> None:
    m = members[1]
    # the model trained on dates < 2017: calibrate on its out-of-sample Q1 2017, judge on Q2 2017
    cal_rows = data[(data.date >= "2017-01-15") & (data.date < "2017-04-01")]
    later = data[data.date >= "2017-04-10"]

    def squash(p: np.ndarray) -> np.ndarray:
        return 0.5 + 3.0 * (p - 0.5)

    raw_cal, raw_later = np.clip(squash(m.predict_proba(cal_rows)), 0, 1), np.clip(squash(m.predict_proba(later)), 0, 1)
    cal = Calibrator(method).fit(raw_cal, cal_rows[LABEL])
    fixed = cal.transform(raw_later)
    assert brier_score(later[LABEL], fixed) < brier_score(later[LABEL], raw_later)
    assert ((fixed >= 0) & (fixed <= 1)).all()
    back = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_allclose(back.transform(raw_later), fixed)


def test_reliability_curve_and_brier_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 1, 0, 1, 1])
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9])
    curve = reliability_curve(y, p, n_bins=2, strategy="uniform")
    assert curve["count"].tolist() == [4, 4]
    assert curve["fraction_positive"].tolist() == [0.5, 0.75]
    assert brier_score(y, p) == pytest.approx(np.mean((p - y) ** 2))
    with pytest.raises(ValueError, match="unknown calibration"):
        Calibrator("beta")
