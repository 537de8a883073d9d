"""The zoo's two entry points: :func:`make_model` (an unfitted model by name) and :func:`load_model`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vfr.ml.models.base import (
    _META,
    CatBoostModel,
    LightGBMModel,
    LinearModel,
    Model,
    ModelError,
    RandomForestModel,
    XGBoostModel,
)
from vfr.ml.models.ensemble import Ensemble
from vfr.ml.models.lstm import LSTMModel  # torch itself is imported only when an LSTM fits or loads


def _registry() -> dict[str, type[Model]]:
    return {cls.algorithm: cls for cls in (LightGBMModel, XGBoostModel, CatBoostModel, RandomForestModel,
                                           LinearModel, LSTMModel)}


ALGORITHMS = ("lightgbm", "xgboost", "catboost", "random_forest", "linear", "lstm")


def make_model(algorithm: str, objective: str = "classification", params: dict[str, Any] | None = None, *,
               seed: int = 42, num_threads: int = 1) -> Model:
    """An unfitted model of ``algorithm`` (one of :data:`ALGORITHMS`).

    Raises
    ------
    ModelError
        If the algorithm or objective is unknown.
    """
    classes = _registry()
    if algorithm not in classes:
        raise ModelError(f"unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    return classes[algorithm](objective, params, seed=seed, num_threads=num_threads)


def load_model(path: str | Path, num_threads: int = 1) -> Model:
    """Read a model folder written by :meth:`Model.save` (or an ensemble's).

    Raises
    ------
    ModelError
        If the folder holds no ``vfr_algorithm.json`` or names an unknown algorithm.
    """
    path = Path(path)
    meta_file = path / _META
    if not meta_file.exists():
        raise ModelError(f"{path} holds no {_META}: not a saved vfr model")
    meta = json.loads(meta_file.read_text())
    if meta["algorithm"] == "ensemble":
        return Ensemble.load_folder(path, meta, num_threads=num_threads, load=load_model)
    model = make_model(meta["algorithm"], meta["objective"], meta["params"], seed=meta["seed"],
                       num_threads=num_threads)
    model.feature_columns = list(meta["feature_columns"])
    model.best_iteration = meta.get("best_iteration")
    model.y_scale = float(meta.get("y_scale", 1.0))
    model._restore(meta.get("state", {}))
    model._load_native(path)
    return model
