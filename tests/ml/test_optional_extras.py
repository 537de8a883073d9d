"""XGBoost, CatBoost and SHAP are optional extras (issue 19): a missing one is a one-line
ModelError naming the extra (SHAP: a fallback to the model's own importances), and the lock
files pin every dependency that pyproject.toml declares."""

from __future__ import annotations

import logging
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vfr.ml.models import ModelError, make_model
from vfr.ml.report import shap_importance

REPO = Path(__file__).resolve().parents[2]


def _frame(n: int = 120) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    return X, pd.Series((X["a"] + rng.normal(size=n) > 0).astype(int))


@pytest.mark.parametrize("algorithm", ["xgboost", "catboost"])
def test_a_missing_model_library_names_its_extra(monkeypatch: pytest.MonkeyPatch, algorithm: str) -> None:
    monkeypatch.setitem(sys.modules, algorithm, None)  # `import <algorithm>` now raises ImportError
    X, y = _frame()
    with pytest.raises(ModelError, match=re.escape(f"pip install 'vfr[{algorithm}]'")) as info:
        make_model(algorithm).fit(X, y)
    assert "\n" not in str(info.value)


def test_without_shap_the_report_uses_the_models_own_importances(monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    X, y = _frame()
    model = make_model("lightgbm", params={"n_estimators": 5})
    model.fit(X, y)
    monkeypatch.setitem(sys.modules, "shap", None)
    with caplog.at_level(logging.WARNING, logger="vfr.ml.report"):
        imp = shap_importance(model, X)
    assert imp.name != "shap" and set(imp.index) == {"a", "b", "c"}
    assert "pip install 'vfr[shap]'" in caplog.text


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=!~;]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _pinned(lock: Path) -> set[str]:
    return {m[1].lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9._-]+)==", lock.read_text(), re.M)}


def test_extras_and_lock_files_agree_with_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core, extras = _names(project["dependencies"]), project["optional-dependencies"]
    assert not core & {"xgboost", "catboost", "shap"}
    assert {"xgboost", "catboost", "shap", "all"} <= set(extras)
    assert "vfr[all]" in extras["dev"]
    assert {"vfr[xgboost,catboost,shap,dask]"} == set(extras["all"])
    assert "vfr[tearsheet]" in extras["dev"] and {"quantstats", "alphalens-reloaded"} <= _names(extras["tearsheet"])
    core_lock, dev_lock = _pinned(REPO / "requirements/core.lock"), _pinned(REPO / "requirements/dev.lock")
    assert core <= core_lock, f"not in requirements/core.lock (refresh it: docs/decisions.md): {core - core_lock}"
    dev = core | {"xgboost", "catboost", "shap", "dask"} | _names(extras["tearsheet"])
    dev |= _names(extras["dev"]) - {"vfr"}
    assert dev <= dev_lock, f"not in requirements/dev.lock (refresh it: docs/decisions.md): {dev - dev_lock}"
    assert not core_lock & {"xgboost", "catboost", "shap", "pytest", "quantstats"}
    # CI installs what the README's set-up says (it runs those blocks verbatim: tests/test_readme.py)
    assert "-r requirements/dev.lock" in (REPO / "README.md").read_text()
    assert ".ci/readme_block.py 1" in (REPO / ".ci/run").read_text()


def test_every_declared_floor_is_the_version_the_floors_job_installs() -> None:
    """A `>=` in pyproject.toml is what `.ci/floors` tests: requirements/floors.lock pins each core
    (and `test` extra) dependency at exactly its declared floor, so no floor is an untested guess
    (issue 19; refresh the lock as .ci/floors says)."""
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {m[1].lower().replace("_", "-"): m[2] for m in
            re.finditer(r"^([A-Za-z0-9._-]+)==([^\s;]+)", (REPO / "requirements/floors.lock").read_text(), re.M)}
    gaps = {}
    for spec in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(spec)
        floors = [s.version for s in req.specifier if s.operator == ">="]
        pinned = pins.get(req.name.lower().replace("_", "-"))
        assert pinned is not None, f"{req.name} missing from requirements/floors.lock"
        if floors and pinned not in (floors[0], f"{floors[0]}.0", f"{floors[0]}.0.0"):
            gaps[req.name] = (floors[0], pinned)
    assert not gaps, f"declared floor -> version the floors job installs: {gaps}"
