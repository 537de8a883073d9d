"""`vfr models list | show | promote | rollback | ab | compare` against a real local registry."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vfr.cli import app
from vfr.ml import ModelRegistry
from vfr.ml.models import make_model


@pytest.fixture(scope="module")
def two_models(real_panel, small_feature_columns):
    d = real_panel[(real_panel.date >= "2016-01-01") & (real_panel.date < "2017-01-01")]
    X = d[["symbol", "date", *small_feature_columns]]
    return (make_model("linear").fit(X, d["fwd_dir_1w"]),
            make_model("lightgbm", params={"n_estimators": 20}).fit(X, d["fwd_dir_1w"]))


def test_models_commands(two_models, settings) -> None:
    registry = ModelRegistry.from_settings(settings)
    versions = []
    for model, auc in zip(two_models, (0.51, 0.53), strict=True):
        meta = {"feature_columns": model.feature_columns, "label": "fwd_dir_1w", "horizon": "1w",
                "training_window": ["2016-01-04", "2016-12-30"], "data_fingerprint": "0" * 64}
        versions.append(registry.register(settings.model_name, model, params={},
                                          metrics={"wf.model.roc_auc": auc, "wf.model.sharpe_top_decile": 0.5},
                                          metadata=meta))
    v1, v2 = versions
    runner = CliRunner()
    home = ["--home", str(settings.home)]

    def run(*args):
        result = runner.invoke(app, ["models", *args, *home])
        return result.exit_code, result.output

    assert run("promote", v1)[0] == 0
    code, text = run("compare")
    assert code == 0 and "ab_test" in text and "small AUC gain" in text  # +0.02 AUC, same Sharpe
    code, text = run("ab", v2, "--traffic", "0.25")
    assert code == 0 and "25%" in text
    code, text = run("list")
    assert code == 0 and "challenger" in text and "champion" in text and "25%" in text
    code, text = run("show", v2)
    assert code == 0 and '"sha256_verified": true' in text and "lightgbm" in text
    code, text = run("promote", v2)
    assert code == 0 and f"champion is now v{v2}" in text and registry.ab_split(settings.model_name) is None
    code, text = run("rollback")
    assert code == 0 and f"rolled back to v{v1}" in text
    assert registry.champion_version(settings.model_name) == v1
    code, text = run("show", "99")
    assert code == 1 and "no model" in text
