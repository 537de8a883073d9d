"""The interface contract, checked for every algorithm and both objectives on real data."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from tests.conftest import needs_extra
from vfr.ml.models import ALGORITHMS, ModelError, load_model, make_model

HAS_TORCH = importlib.util.find_spec("torch") is not None
FAST = {"lightgbm": {"n_estimators": 40}, "xgboost": {"n_estimators": 40}, "catboost": {"n_estimators": 40},
        "random_forest": {"n_estimators": 20}, "linear": {},
        "lstm": {"epochs": 2, "window": 10, "hidden": 8, "max_train_rows": 4000}}


def _algo(name: str):
    if name == "lstm" and not HAS_TORCH:
        return pytest.param(name, marks=pytest.mark.skip(reason="PyTorch not installed (pip install 'vfr[torch]')"))
    if name in ("xgboost", "catboost"):
        return pytest.param(name, marks=needs_extra(name))
    return name


@pytest.fixture(scope="module")
def segments(real_panel, small_feature_columns):
    cols = ["symbol", "date", *small_feature_columns]
    d = real_panel
    train = d[(d.date >= "2014-01-01") & (d.date < "2016-01-01")]
    valid = d[(d.date >= "2016-01-15") & (d.date < "2016-07-01")]
    test = d[(d.date >= "2016-07-15") & (d.date < "2017-01-01")]
    return {k: (v[cols].reset_index(drop=True), v.reset_index(drop=True)) for k, v in
            (("train", train), ("valid", valid), ("test", test))}


@pytest.mark.parametrize("objective", ["classification", "regression"])
@pytest.mark.parametrize("algorithm", [_algo(a) for a in ALGORITHMS])
def test_interface_contract(algorithm, objective, segments, small_feature_columns, tmp_path) -> None:
    target = "fwd_dir_1w" if objective == "classification" else "fwd_excess_1w"
    (Xtr, dtr), (Xva, dva), (Xte, _) = segments["train"], segments["valid"], segments["test"]
    model = make_model(algorithm, objective, FAST[algorithm], seed=7)
    with pytest.raises(ModelError, match="not fitted"):
        model.predict_proba(Xte)
    assert model.fit(Xtr, dtr[target], valid=(Xva, dva[target])) is model
    assert model.feature_columns == small_feature_columns  # symbol/date are not features
    proba, pred, score = model.predict_proba(Xte), model.predict(Xte), model.ranking_score(Xte)
    assert proba.shape == pred.shape == score.shape == (len(Xte),)
    assert np.isfinite(proba).all() and ((proba >= 0) & (proba <= 1)).all()
    if objective == "classification":
        assert set(np.unique(pred)) <= {0, 1}
        np.testing.assert_array_equal(pred, (proba >= 0.5).astype(int))
    else:  # predict_proba is monotone in the predicted return
        order = np.argsort(score)
        assert (np.diff(proba[order]) >= -1e-12).all()
    assert proba.std() > 0  # it learned something that varies across rows
    # feature columns are taken by name, not position
    shuffled = Xte[list(reversed(Xte.columns))]
    np.testing.assert_allclose(model.predict_proba(shuffled), proba, rtol=1e-6)
    if model.iterative:  # tree SHAP: contributions add up to the raw prediction, up to the expected value
        contrib = model.contributions(Xte)
        assert list(contrib.columns) == small_feature_columns and contrib.index.equals(Xte.index)
        raw = np.log(proba / (1 - proba)) if objective == "classification" else score
        gap = contrib.sum(axis=1).to_numpy() - raw
        assert np.ptp(gap) < 1e-3 * max(1.0, np.abs(raw).max())
        refit = model.refit_params()
        assert refit["n_estimators"] == model.best_iteration
    else:
        with pytest.raises(ModelError, match="no per-feature contributions"):
            model.contributions(Xte)
    imp = model.feature_importances()
    assert sorted(imp.index) == sorted(small_feature_columns) and (imp >= 0).all() and imp.sum() > 0
    # save -> load gives the same predictions
    back = load_model(model.save(tmp_path / algorithm))
    assert type(back) is type(model) and back.objective == objective
    np.testing.assert_allclose(back.predict_proba(Xte), proba, rtol=1e-5, atol=1e-7)
    with pytest.raises(ModelError, match="lacks features"):
        model.predict_proba(Xte.drop(columns=[small_feature_columns[0]]))


def test_bad_inputs_are_refused(segments) -> None:
    X, _ = segments["train"]
    with pytest.raises(ModelError, match="unknown algorithm"):
        make_model("svm")
    with pytest.raises(ModelError, match="objective"):
        make_model("linear", "ranking")
    with pytest.raises(ModelError, match="targets 0 and 1"):
        make_model("linear").fit(X, np.ones(len(X)))
    with pytest.raises(ModelError, match="no row has a known target"):
        make_model("linear").fit(X, np.full(len(X), np.nan))


def test_lstm_windows_never_look_ahead() -> None:
    from vfr.ml.models.lstm import window_index

    symbols = np.array(["A"] * 5 + ["B"] * 3)
    win = window_index(symbols, 3)
    assert (win <= np.arange(8)[:, None]).all()  # never a later row
    np.testing.assert_array_equal(win[0], [0, 0, 0])
    np.testing.assert_array_equal(win[4], [2, 3, 4])
    np.testing.assert_array_equal(win[5], [5, 5, 5])  # B's window does not reach into A
    np.testing.assert_array_equal(win[7], [5, 6, 7])


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch not installed (pip install 'vfr[torch]')")
def test_lstm_prediction_at_t_ignores_later_rows(segments) -> None:
    (Xtr, dtr), (Xte, _) = segments["train"], segments["test"]
    model = make_model("lstm", params=FAST["lstm"]).fit(Xtr, dtr["fwd_dir_1w"])
    t = Xte["date"].sort_values().unique()[30]
    upto = Xte[Xte.date <= t]
    changed = Xte.copy()
    later = changed.date > t
    changed.loc[later, model.feature_columns] = changed.loc[later, model.feature_columns] * 5 + 1
    a = model.predict_proba(upto)
    b = pd.Series(model.predict_proba(changed), index=changed.index)[~later].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_lightgbm_binned_fits_equal_plain_fits_and_take_bins_from_bins_from_only(segments,
                                                                                   small_feature_columns) -> None:
    """``fit_binned`` on a matrix binned once is the plain ``fit`` when the boundaries come from
    the same rows (same trees, same early stopping); rows outside ``bins_from`` change nothing
    of such a fit, but would if they set the boundaries (the look-ahead ``bins_from`` rules out)."""
    (Xtr, dtr), (Xva, dva), (Xte, _) = segments["train"], segments["valid"], segments["test"]
    cols = list(small_feature_columns)
    X = np.vstack([Xtr[cols].to_numpy(np.float32), Xva[cols].to_numpy(np.float32)])
    y = np.concatenate([dtr["fwd_excess_1w"].to_numpy(float), dva["fwd_excess_1w"].to_numpy(float)])
    rows, valid = np.arange(len(Xtr)), np.arange(len(Xtr), len(X))
    params = {"n_estimators": 60, "early_stopping_rounds": 5}
    probe = Xte[cols]

    plain = make_model("lightgbm", "regression", params, num_threads=1)
    plain.fit(Xtr[cols], y[rows], valid=(Xva[cols], y[valid]))

    def binned_fit(matrix: np.ndarray, bins_from: np.ndarray):
        model = make_model("lightgbm", "regression", params, num_threads=1)
        return model.fit_binned(model.bin_rows(matrix, y, cols, bins_from=bins_from), rows, valid_rows=valid)

    once = binned_fit(X, rows)
    assert once.best_iteration == plain.best_iteration and once.y_scale == plain.y_scale
    np.testing.assert_allclose(once.predict(probe), plain.predict(probe))

    later = X.copy()
    later[valid] = later[valid] * 7 + 3  # the validation rows' features, far outside the training range
    again = make_model("lightgbm", "regression", params | {"early_stopping_rounds": 10_000}, num_threads=1)
    again.fit_binned(again.bin_rows(later, y, cols, bins_from=rows), rows)
    alone = make_model("lightgbm", "regression", params | {"early_stopping_rounds": 10_000}, num_threads=1)
    alone.fit(Xtr[cols], y[rows])
    np.testing.assert_allclose(again.predict(probe), alone.predict(probe))
    leaky = make_model("lightgbm", "regression", params | {"early_stopping_rounds": 10_000}, num_threads=1)
    leaky.fit_binned(leaky.bin_rows(later, y, cols, bins_from=np.arange(len(X))), rows)
    assert not np.allclose(leaky.predict(probe), alone.predict(probe))
    with pytest.raises(ModelError, match="does not reuse"):
        make_model("random_forest", "regression").bin_rows(X, y, cols, bins_from=rows)
