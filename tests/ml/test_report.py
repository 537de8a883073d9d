"""The per-model report: metrics by hand, plots written, SHAP on a real tree model."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from vfr.ml.models import make_model
from vfr.ml.report import (
    model_report,
    portfolio_metrics,
    regression_metrics,
    shap_importance,
)


def test_regression_metrics_by_hand() -> None:
    y = np.array([0.02, -0.01, 0.0, 0.03])
    p = np.array([0.01, -0.01, 0.01, 0.01])
    m = regression_metrics(y, p)
    assert m["mse"] == pytest.approx(np.mean((y - p) ** 2)) and m["rmse"] == pytest.approx(np.sqrt(m["mse"]))
    assert m["mae"] == pytest.approx(0.01)
    assert m["mape"] == pytest.approx(np.mean([0.5, 0.0, 2 / 3]))  # the 0.0 return is left out
    assert m["r2"] == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))


def test_portfolio_metrics_by_hand() -> None:
    dates = np.repeat(pd.bdate_range("2020-01-01", periods=4), 10)
    frame = pd.DataFrame({"date": dates, "s": np.tile(np.arange(10.0), 4),
                          "r": np.r_[np.zeros(9), 0.02, np.zeros(9), -0.01, np.zeros(9), 0.03, np.zeros(9), -0.01]})
    m = portfolio_metrics(frame, "s", "r", horizon_days=1)
    top = np.array([0.02, -0.01, 0.03, -0.01])
    assert m["directional_accuracy"] == 0.5 and m["profit_factor"] == pytest.approx(0.05 / 0.02)
    assert m["sharpe"] == pytest.approx(top.mean() / top.std(ddof=1) * np.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(-0.01)


def test_model_report_on_real_predictions(real_panel, small_feature_columns, tmp_path) -> None:
    d = real_panel
    train = d[(d.date >= "2014-01-01") & (d.date < "2016-01-01")]
    test = d[(d.date >= "2016-01-15") & (d.date < "2017-01-01")].reset_index(drop=True)
    cols = ["symbol", "date", *small_feature_columns]
    model = make_model("lightgbm", params={"n_estimators": 30}).fit(train[cols], train["fwd_dir_1w"])
    scored = test.assign(prob=model.predict_proba(test[cols]))
    report = model_report(scored, tmp_path / "rep", label="fwd_dir_1w", fwd_return="fwd_excess_1w", horizon_days=5,
                          model=model, features=test[cols])
    assert sum(map(sum, report["confusion_matrix"])) == test["fwd_dir_1w"].notna().sum()
    has_shap = importlib.util.find_spec("shap") is not None  # without the extra: the model's own importances
    for name in ("confusion_matrix.png", "roc_curve.png", "calibration_curve.png", "shap_importance.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 1000
    saved = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert saved["classification"]["n"] == report["classification"]["n"]
    assert report["importance_kind"] == ("shap" if has_shap else "importance")
    if not has_shap:
        return
    # SHAP of a booster: additive, so mean |SHAP| is positive for the features it splits on
    shap_imp = shap_importance(model, test[cols])
    used = model.feature_importances()
    assert set(shap_imp[shap_imp > 0].index) <= set(used[used > 0].index)
