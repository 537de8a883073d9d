"""Model registry on MLflow (local SQLite store by default, any tracking URI via settings).

A registered version records its parameters, metrics, feature list and order, label
definition, training window, data fingerprint and library versions, plus the LightGBM model
(MLflow ``lightgbm`` flavour) and a ``vfr_model.json`` with that metadata. Loading checks the
metadata against what the caller will feed the model.

Only :class:`mlflow.tracking.MlflowClient` is used (no ``mlflow.set_tracking_uri``), so two
registries with different URIs can live in one process.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from vfr.config import Settings
from vfr.errors import VFRError

CHAMPION = "champion"
_EXPERIMENT = "vfr-training"


class RegistryError(VFRError, RuntimeError):
    """The registry holds no usable model for the request, or an artifact is unusable."""


@dataclass(frozen=True)
class LoadedModel:
    """A registered model ready to predict.

    Attributes
    ----------
    model : lightgbm.Booster
    name, version : str
    metadata : dict
        Contents of ``vfr_model.json`` (feature_columns, label, horizon, training_window, ...).
    """

    model: lgb.Booster
    name: str
    version: str
    metadata: dict[str, Any]

    @property
    def feature_columns(self) -> list[str]:
        return list(self.metadata["feature_columns"])

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Probability of class 1 for each row.

        Parameters
        ----------
        features : DataFrame of shape (n_rows, >= n_model_features)
            Must contain every column the model was trained on; they are taken in the
            recorded order.

        Returns
        -------
        ndarray of shape (n_rows,), values in [0, 1].

        Raises
        ------
        RegistryError
            If a feature the model needs is missing.
        """
        missing = [c for c in self.feature_columns if c not in features.columns]
        if missing:
            raise RegistryError(f"model {self.name} v{self.version} needs features missing from the input: {missing}")
        X = features[self.feature_columns].to_numpy(dtype=np.float32)
        return self.model.predict(X)


class ModelRegistry:
    """Thin adapter over the MLflow tracking server and model registry.

    Parameters
    ----------
    tracking_uri : str
        MLflow tracking URI, also used as registry URI (e.g. ``sqlite:///path/mlflow.db``).
    artifact_root : Path, optional
        Where the experiment stores artifacts (needed for local stores; ignored when the
        experiment already exists).
    """

    def __init__(self, tracking_uri: str, artifact_root: Path | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        return cls(settings.resolved_tracking_uri, settings.artifact_root)

    # -- writing --------------------------------------------------------------------
    def _experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(_EXPERIMENT)
        if exp is not None:
            return exp.experiment_id
        location = self.artifact_root.resolve().as_uri() if self.artifact_root else None
        return self.client.create_experiment(_EXPERIMENT, artifact_location=location)

    def register(self, name: str, model: lgb.Booster, *, params: dict[str, Any], metrics: dict[str, float],
                 metadata: dict[str, Any], artifacts: dict[str, Path] | None = None) -> str:
        """Log a training run and register its model as a new version of ``name``.

        Parameters
        ----------
        name : str
            Registered model name.
        model : lightgbm.Booster
        params : dict
            Hyper-parameters (logged as run params).
        metrics : dict of str to float
            Flat metrics (NaN values are skipped: MLflow cannot store them).
        metadata : dict
            JSON-serialisable: must hold ``feature_columns``, ``label``, ``horizon``,
            ``training_window`` and ``data_fingerprint``.
        artifacts : dict of str to Path, optional
            Extra files or folders logged under the run (reports, plots).

        Returns
        -------
        str
            The new version number.

        Raises
        ------
        RegistryError
            If metadata lacks a required key. Nothing is registered then; if logging fails
            after the run started, the run is marked FAILED and no version is created.
        """
        import lightgbm
        import mlflow
        import sklearn

        required = {"feature_columns", "label", "horizon", "training_window", "data_fingerprint"}
        if missing := required - set(metadata):
            raise RegistryError(f"register: metadata lacks {sorted(missing)}")
        meta = metadata | {"library_versions": {"lightgbm": lightgbm.__version__, "mlflow": mlflow.__version__,
                                                "scikit-learn": sklearn.__version__, "pandas": pd.__version__,
                                                "numpy": np.__version__}}
        run = self.client.create_run(self._experiment_id(), run_name=f"{name}-train",
                                     tags={"vfr.model_name": name, "vfr.data_fingerprint": meta["data_fingerprint"]})
        run_id = run.info.run_id
        try:
            for key, value in params.items():
                self.client.log_param(run_id, key, value)
            for key, value in metrics.items():
                if value is not None and np.isfinite(value):
                    self.client.log_metric(run_id, key, float(value))
            with tempfile.TemporaryDirectory() as tmp:
                model_dir = Path(tmp) / "model"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mlflow.lightgbm.save_model(model, str(model_dir))
                (model_dir / "vfr_model.json").write_text(json.dumps(meta, indent=2, default=str))
                self.client.log_artifacts(run_id, str(model_dir), "model")
            for art_name, path in (artifacts or {}).items():
                if Path(path).is_dir():
                    self.client.log_artifacts(run_id, str(path), art_name)
                else:
                    self.client.log_artifact(run_id, str(path), art_name)
            source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
            try:
                self.client.create_registered_model(name)
            except Exception:  # already exists
                pass
            version = self.client.create_model_version(name, source, run_id=run_id,
                                                       tags={"horizon": meta["horizon"], "label": meta["label"]})
        except Exception:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")
        return str(version.version)

    def set_champion(self, name: str, version: str) -> None:
        """Point the ``champion`` alias of ``name`` at ``version``."""
        self.client.set_registered_model_alias(name, CHAMPION, str(version))

    # -- reading --------------------------------------------------------------------
    def champion_version(self, name: str) -> str | None:
        """Version holding the ``champion`` alias, or None when there is none."""
        try:
            return str(self.client.get_model_version_by_alias(name, CHAMPION).version)
        except Exception:
            return None

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Registered versions of ``name``: version, run_id, aliases, creation time (newest first)."""
        try:
            found = self.client.search_model_versions(f"name='{name}'")
        except Exception:
            return []
        champion = self.champion_version(name)  # search results do not carry aliases on every store
        return sorted(
            ({"version": str(v.version), "run_id": v.run_id,
              "aliases": [CHAMPION] if str(v.version) == champion else [],
              "created": pd.Timestamp(v.creation_timestamp, unit="ms")} for v in found),
            key=lambda d: int(d["version"]), reverse=True)

    def load(self, name: str, version: str | None = None) -> LoadedModel:
        """Load ``name`` at ``version`` (default: the champion).

        Raises
        ------
        RegistryError
            If no such model/version/alias exists or its artifact cannot be read.
        """
        import mlflow

        try:
            mv = (self.client.get_model_version(name, str(version)) if version is not None
                  else self.client.get_model_version_by_alias(name, CHAMPION))
        except Exception as exc:
            what = f"version {version}" if version is not None else f"a '{CHAMPION}' alias"
            raise RegistryError(f"registry at {self.tracking_uri} has no model {name!r} with {what}") from exc
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, tracking_uri=self.tracking_uri))
                model = mlflow.lightgbm.load_model(str(local))
            metadata = json.loads((local / "vfr_model.json").read_text())
        except Exception as exc:
            raise RegistryError(f"model {name!r} v{mv.version}: artifact at {mv.source} is unreadable: {exc}") from exc
        if not isinstance(model, lgb.Booster):  # the flavour returns the booster it saved
            model = getattr(model, "booster_", model)
        return LoadedModel(model=model, name=name, version=str(mv.version), metadata=metadata)

    def run_metrics(self, name: str, version: str) -> dict[str, float]:
        """Metrics logged by the training run of a version."""
        mv = self.client.get_model_version(name, str(version))
        return dict(self.client.get_run(mv.run_id).data.metrics)
