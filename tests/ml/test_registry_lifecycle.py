"""Registry lifecycle on a real local MLflow store: any algorithm, promote, rollback, A/B, SHA-256, features."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import needs_extra
from vfr.ml import ModelRegistry, RegistryError
from vfr.ml.models import make_model
from vfr.ml.registry import CHALLENGER, CHAMPION


@pytest.fixture(scope="module")
def fitted(real_panel, small_feature_columns):
    d = real_panel[(real_panel.date >= "2015-01-01") & (real_panel.date < "2017-01-01")]
    X = d[["symbol", "date", *small_feature_columns]]
    models = {"linear": make_model("linear").fit(X, d["fwd_dir_1w"]),
              # the second algorithm: XGBoost where its extra is installed, else LightGBM (core)
              "xgboost": make_model("xgboost" if importlib.util.find_spec("xgboost") else "lightgbm",
                                    params={"n_estimators": 20}).fit(X, d["fwd_dir_1w"])}
    last = real_panel[real_panel.date == real_panel.date.max()]
    return models, last


def _meta(model):
    return {"feature_columns": model.feature_columns, "label": "fwd_dir_1w", "horizon": "1w",
            "training_window": ["2015-01-02", "2016-12-30"], "data_fingerprint": "f" * 64}


def _register(registry, model, name="m"):
    return registry.register(name, model, params=model.params, metrics={"wf.model.roc_auc": 0.52},
                             metadata=_meta(model))


@needs_extra("xgboost")  # checks XGBoost's own artifact (model.ubj)
def test_any_algorithm_round_trips_with_verified_checksums(fitted, settings) -> None:
    models, last = fitted
    registry = ModelRegistry.from_settings(settings)
    for algo, model in models.items():
        v = _register(registry, model, name=f"m-{algo}")
        loaded = registry.load(f"m-{algo}", v)
        assert loaded.metadata["sha256_verified"] is True and loaded.metadata["algorithm"] == algo
        np.testing.assert_allclose(loaded.predict_proba(last), model.predict_proba(last), rtol=1e-6)
        assert list(loaded.feature_importance().index) == list(model.feature_importances().index)
        assert registry.versions(f"m-{algo}")[0]["algorithm"] == algo


def _artifact_dir(registry, name, version) -> Path:
    mv = registry.client.get_model_version(name, version)
    return Path(mv.source.removeprefix("file://"))


@needs_extra("xgboost")  # checks XGBoost's own artifact (model.ubj)
def test_corrupted_artifact_is_refused(fitted, settings) -> None:
    models, _ = fitted
    registry = ModelRegistry.from_settings(settings)
    v = _register(registry, models["xgboost"])
    folder = _artifact_dir(registry, "m", v)
    assert folder.is_dir()
    native = folder / "model.ubj"
    data = bytearray(native.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte
    native.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="SHA-256 mismatch.*model.ubj"):
        registry.load("m", v)
    # rewriting the manifest to match does not help: its digest is kept in the tracking store
    manifest = json.loads((folder / "vfr_checksums.json").read_text())
    import hashlib

    manifest["model.ubj"] = hashlib.sha256(native.read_bytes()).hexdigest()
    (folder / "vfr_checksums.json").write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match="differs from the registered digest"):
        registry.load("m", v)
    with pytest.raises(RegistryError):
        registry.promote("m", v)  # and it cannot become champion
    assert registry.champion_version("m") is None


def test_promote_rollback_restores_previous_champion(fitted, settings) -> None:
    models, last = fitted
    registry = ModelRegistry.from_settings(settings)
    v1, v2, v3 = (_register(registry, models[a]) for a in ("linear", "xgboost", "linear"))
    assert registry.promote("m", v1)["previous"] is None
    info = registry.promote("m", v2)
    assert info["previous"] == v1 and info["size_mb"] > 0 and info["load_seconds"] >= 0
    assert registry.load("m").version == v2
    assert registry.rollback("m") == v1  # one call restores the previous champion
    assert registry.champion_version("m") == v1
    np.testing.assert_allclose(registry.load("m").predict_proba(last), models["linear"].predict_proba(last))
    assert registry.rollback("m", v3) == v3  # or any named version
    assert registry.champion_history("m")[-3:] == [v2, v1, v3]
    with pytest.raises(RegistryError, match="limit"):
        registry.promote("m", v2, max_size_mb=1e-6)
    assert registry.champion_version("m") == v3  # a failed promotion changes nothing


def test_rollback_without_history_is_refused(settings, fitted) -> None:
    registry = ModelRegistry.from_settings(settings)
    v1 = _register(registry, fitted[0]["linear"])
    registry.set_champion("m", v1)
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback("m")


def test_ab_split_is_stored_and_routes_stably(fitted, settings) -> None:
    models, _ = fitted
    registry = ModelRegistry.from_settings(settings)
    v1, v2 = _register(registry, models["linear"]), _register(registry, models["xgboost"])
    with pytest.raises(RegistryError, match="needs a different champion"):
        registry.start_ab_test("m", v2, 0.2)
    registry.promote("m", v1)
    registry.start_ab_test("m", v2, 0.2)
    assert registry.ab_split("m") == {"champion": v1, "challenger": v2, "traffic": 0.2}
    assert registry.load("m", alias=CHALLENGER).version == v2
    assert registry.load("m", v2).metadata["ab_traffic"] == pytest.approx(0.2)
    keys = [f"user{i}" for i in range(2000)]
    route = registry.router("m")
    routed = [route(k) for k in keys]
    share = np.mean([r == v2 for r in routed])
    assert 0.17 < share < 0.23 and set(routed) == {v1, v2}
    assert routed[:5] == [registry.route("m", k) for k in keys[:5]]  # deterministic per key
    versions = {v["version"]: v["aliases"] for v in registry.versions("m")}
    assert versions == {v1: [CHAMPION], v2: [CHALLENGER]}
    registry.promote("m", v2)  # the challenger wins: the A/B test ends
    assert registry.ab_split("m") is None and registry.route("m", "x") == v2
    with pytest.raises(RegistryError, match=r"\(0, 1\)"):
        registry.start_ab_test("m", v1, 1.5)


def test_feature_mismatch_is_refused_with_a_clear_message(real_panel, settings) -> None:
    d = real_panel[(real_panel.date >= "2016-01-01") & (real_panel.date < "2017-01-01")]
    X = d[["ret_5d", "rsi_14"]].assign(retired_feature=d["ret_20d"])
    model = make_model("linear").fit(X, d["fwd_dir_1w"])
    registry = ModelRegistry.from_settings(settings)
    v = _register(registry, model)
    with pytest.raises(RegistryError, match=r"feature registry.*does not define: \['retired_feature'\]"):
        registry.load("m", v)
    assert registry.load("m", v, check_features=False).version == v
