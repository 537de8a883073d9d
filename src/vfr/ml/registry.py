"""Model registry on MLflow (local SQLite store by default, any tracking URI via settings).

A registered version records its parameters, metrics, feature list and order, label
definition, training window, data fingerprint and library versions, plus the model files
(any :class:`vfr.ml.models.Model` or ensemble, in its own folder format) and a
``vfr_model.json`` with that metadata.

Integrity: at registration the SHA-256 of every model file goes into ``vfr_checksums.json``
and the SHA-256 of that manifest into the version's tag ``vfr.sha256`` (kept in the
tracking database, apart from the artifact store). :meth:`ModelRegistry.load` recomputes
both and refuses any difference. Versions registered before checksums existed load with
``metadata["sha256_verified"] = False``.

Aliases: ``champion`` (serves) and ``challenger`` (in an A/B test, with its traffic share
stored as the version tag ``vfr.ab_traffic``). Every change of champion is appended to the
registered model's tag ``vfr.champion_history`` so :meth:`ModelRegistry.rollback` can
restore the previous one in one call. With a local SQLite tracking database, every champion
change (and every load of the champion) also rewrites a champion pointer file beside it,
stamped with the database's state when the alias was read (:mod:`vfr.ml.scorecache`), so
``vfr select --include-ml`` can use a cached cross-section of scores without importing MLflow.

Only :class:`mlflow.tracking.MlflowClient` is used (no ``mlflow.set_tracking_uri``), so two
registries with different URIs can live in one process.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.config import Settings
from vfr.errors import VFRError
from vfr.ml.scorecache import tracking_db_stamp, write_champion_pointer

CHAMPION = "champion"
CHALLENGER = "challenger"
_EXPERIMENT = "vfr-training"
_CHECKSUMS = "vfr_checksums.json"
_SHA_TAG = "vfr.sha256"
_AB_TAG = "vfr.ab_traffic"
#: Version tag holding a challenger's share of traffic (read by the serving engine's routing).
AB_TAG = _AB_TAG
#: Registered-model tag naming the champion before the current one (one-call rollback).
PREVIOUS_TAG = "vfr.previous_champion"
_HISTORY_TAG = "vfr.champion_history"


class RegistryError(VFRError, RuntimeError):
    """The registry holds no usable model for the request, or an artifact is unusable."""


class RegistryUnavailable(RegistryError):
    """The registry's database server does not answer (try again later)."""


#: Seconds to wait for a database server behind the tracking URI before calling it unreachable.
CONNECT_TIMEOUT_S = 5


def _check_reachable(tracking_uri: str) -> None:
    """Fail fast when the tracking URI names a database server that does not answer.

    MLflow creates its SQL store on first use and retries an unreachable server ten times
    with exponential back-off (about 100 s, ``mlflow.store.db.utils``), which would stall every
    caller (an API request, a retraining run) for that long. One connection attempt with a
    short timeout decides first. SQLite files and non-SQL URIs (``file:``, ``http:``) are not
    probed.

    Raises
    ------
    RegistryUnavailable
        The server refused or did not answer within :data:`CONNECT_TIMEOUT_S` (the URI's
        credentials are not repeated in the message).
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(tracking_uri)
    except ArgumentError:
        return  # not a database URL (file store, tracking server)
    if url.get_backend_name() not in ("postgresql", "mysql", "mssql"):
        return
    engine = sa.create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        raise RegistryUnavailable(f"model registry database {url.host}:{url.port} is not reachable "
                            f"({exc.__class__.__name__})") from exc
    finally:
        engine.dispose()


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the tracking database did not
    answer, rather than that what was asked for does not exist: MLflow's
    ``TEMPORARILY_UNAVAILABLE`` (its SQL store's ``OperationalError``) or a connection error."""
    import sqlalchemy as sa

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, sa.exc.OperationalError | sa.exc.InterfaceError | ConnectionError | TimeoutError):
            return True
        if getattr(seen, "error_code", None) == "TEMPORARILY_UNAVAILABLE":  # MlflowException (not imported here)
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def raise_if_outage(exc: BaseException) -> None:
    """Raise :class:`RegistryUnavailable` from ``exc`` when it is an outage (:func:`is_outage`)."""
    if is_outage(exc):
        raise RegistryUnavailable("the model registry's database is not reachable") from exc


def known_feature_columns() -> set[str]:
    """Columns the current feature registry defines: every feature of the catalogue
    (``vfr.features.ALL_FEATURES``, the sentiment group, provider ratios, the level ratios
    built with a split table and the opt-in Alpha158 group) and ``<name>_rank`` for ranked ones."""
    from vfr.features import ALL_FEATURES, SENTIMENT_FEATURES
    from vfr.features.catalogue import LEVEL_RATIO_FEATURES_DEFS, RATIO_FEATURES_DEFS, alpha158_feature_defs

    defs = (*ALL_FEATURES, *SENTIMENT_FEATURES, *RATIO_FEATURES_DEFS, *LEVEL_RATIO_FEATURES_DEFS,
            *alpha158_feature_defs())
    return {f.name for f in defs} | {f"{f.name}_rank" for f in defs if getattr(f, "ranked", True)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` except the manifest itself, by relative POSIX path."""
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != _CHECKSUMS}


def _load_folder(local: Path) -> Any:
    """The :class:`vfr.ml.models.Model` saved in a version's folder.

    A folder in MLflow's ``lightgbm`` flavour (``MLmodel``; versions registered as a raw
    booster before the model interface served the champion) loads wrapped as a LightGBM model.
    """
    from vfr.ml.models import load_model
    from vfr.ml.models.base import LightGBMModel

    if (local / "MLmodel").exists() and not (local / "vfr_algorithm.json").exists():
        import mlflow.lightgbm

        booster = mlflow.lightgbm.load_model(str(local))
        return LightGBMModel.from_booster(getattr(booster, "booster_", booster))
    return load_model(local)


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@dataclass(frozen=True)
class LoadedModel:
    """A registered model ready to predict.

    Attributes
    ----------
    model : vfr.ml.models.Model
        Any algorithm of the model zoo or an ensemble (versions registered as a raw LightGBM
        booster before the model interface served the champion load wrapped as a
        ``LightGBMModel``).
    name, version : str
    metadata : dict
        Contents of ``vfr_model.json`` (feature_columns, label, horizon, training_window, ...),
        plus ``sha256_verified`` and ``size_bytes``.
    path : Path, optional
        The verified local model folder (holds the files saved with the model, such as the
        drift reference and the dataset lineage).
    """

    model: Any
    name: str
    version: str
    metadata: dict[str, Any]
    path: Path | None = None

    @property
    def feature_columns(self) -> list[str]:
        return list(self.metadata["feature_columns"])

    def file(self, name: str) -> Path | None:
        """A file saved with the model (``model_files`` of :meth:`ModelRegistry.register`), or None."""
        if self.path is None or not (self.path / name).is_file():
            return None
        return self.path / name

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Probability of class 1 for each row.

        Parameters
        ----------
        features : DataFrame of shape (n_rows, >= n_model_features)
            Must contain every column the model was trained on; they are taken in the
            recorded order. (An LSTM also needs ``symbol`` and ``date`` and uses the rows of
            earlier dates in the frame as each row's history.)

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
        return self.model.predict_proba(features)

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions (tree SHAP) to each row's raw prediction.

        Returns
        -------
        DataFrame of shape (n_rows, n_features)
            Index aligned with ``features``, columns :attr:`feature_columns`.

        Raises
        ------
        RegistryError
            If a feature the model needs is missing.
        vfr.ml.models.ModelError
            If the algorithm has no contributions (see ``Model.contributions``).
        """
        missing = [c for c in self.feature_columns if c not in features.columns]
        if missing:
            raise RegistryError(f"model {self.name} v{self.version} needs features missing from the input: {missing}")
        return self.model.contributions(features)

    def feature_importance(self) -> pd.Series:
        """Importance per feature, sorted descending (see ``Model.feature_importances``)."""
        return self.model.feature_importances()


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

        _check_reachable(tracking_uri)
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

    def register(self, name: str, model: Any, *, params: dict[str, Any], metrics: dict[str, float],
                 metadata: dict[str, Any], artifacts: dict[str, Path] | None = None,
                 model_files: dict[str, Path] | None = None) -> str:
        """Log a training run and register its model as a new version of ``name``.

        Parameters
        ----------
        name : str
            Registered model name.
        model : vfr.ml.models.Model
            Any algorithm of the model zoo, or an ensemble, saved with its own ``save``.
        params : dict
            Hyper-parameters (logged as run params).
        metrics : dict of str to float
            Flat metrics (NaN values are skipped: MLflow cannot store them).
        metadata : dict
            JSON-serialisable: must hold ``feature_columns``, ``label``, ``horizon``,
            ``training_window`` and ``data_fingerprint``. ``ab_traffic`` is reserved.
        artifacts : dict of str to Path, optional
            Extra files or folders logged under the run (reports, plots).
        model_files : dict of str to Path, optional
            Files saved inside the model folder under the given names (the drift reference,
            the dataset lineage): covered by the SHA-256 manifest and read back through
            :meth:`LoadedModel.file`.

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
        from mlflow.exceptions import MlflowException

        from vfr.ml.models import Model

        required = {"feature_columns", "label", "horizon", "training_window", "data_fingerprint"}
        if missing := required - set(metadata):
            raise RegistryError(f"register: metadata lacks {sorted(missing)}")
        if not isinstance(model, Model):
            raise RegistryError(f"register: model must be a vfr.ml.models.Model (make_model / train), "
                                f"got {type(model).__name__}")
        meta = metadata | {"algorithm": model.algorithm,
                           "library_versions": {"lightgbm": lightgbm.__version__, "mlflow": mlflow.__version__,
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
                model.save(model_dir)
                (model_dir / "vfr_model.json").write_text(json.dumps(meta, indent=2, default=str))
                for file_name, src in (model_files or {}).items():
                    shutil.copyfile(src, model_dir / file_name)
                manifest = _manifest(model_dir)
                manifest_text = json.dumps(manifest, indent=1, sort_keys=True)
                (model_dir / _CHECKSUMS).write_text(manifest_text)
                digest = hashlib.sha256(manifest_text.encode()).hexdigest()
                size = _folder_size(model_dir)
                self.client.log_artifacts(run_id, str(model_dir), "model")
            for art_name, path in (artifacts or {}).items():
                if Path(path).is_dir():
                    self.client.log_artifacts(run_id, str(path), art_name)
                else:
                    self.client.log_artifact(run_id, str(path), art_name)
            source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
            try:
                self.client.create_registered_model(name)
            except MlflowException as exc:  # only "already exists" is expected; anything else is real
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            version = self.client.create_model_version(
                name, source, run_id=run_id,
                tags={"horizon": meta["horizon"], "label": meta["label"], "algorithm": meta["algorithm"],
                      _SHA_TAG: digest, "vfr.size_bytes": str(size)})
        except Exception:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")
        return str(version.version)

    def set_champion(self, name: str, version: str) -> None:
        """Point the ``champion`` alias of ``name`` at ``version`` (no checks; see :meth:`promote`)."""
        version = str(version)
        previous = self.champion_version(name)
        self.client.set_registered_model_alias(name, CHAMPION, version)
        if previous != version:
            if previous is not None:
                self.client.set_registered_model_tag(name, PREVIOUS_TAG, previous)
            history = self.champion_history(name)
            if previous is not None and (not history or history[-1] != previous):
                history.append(previous)
            history.append(version)
            self.client.set_registered_model_tag(name, _HISTORY_TAG, json.dumps(history[-50:]))
        # the pointer: the database's stamp after every write above, kept only if the alias still says `version`
        # (a write by anyone after the stamp changes it, so the pointer then reads as stale)
        stamp = tracking_db_stamp(self.tracking_uri)
        still = self.champion_version(name) == version
        digest = (self.client.get_model_version(name, version).tags or {}).get(_SHA_TAG) if still else None
        write_champion_pointer(self.tracking_uri, name, version if still else None, stamp, digest)

    def promote(self, name: str, version: str, *, max_size_mb: float = 500.0,
                max_load_seconds: float = 10.0) -> dict[str, Any]:
        """Make ``version`` the champion after size, load-time, checksum and feature checks.

        Parameters
        ----------
        max_size_mb : float
            Largest allowed model folder (MiB).
        max_load_seconds : float
            Longest allowed :meth:`load` (download, checksum, deserialise), wall-clock seconds.

        Returns
        -------
        dict
            ``version``, ``previous`` champion (or None), ``size_mb``, ``load_seconds``.

        Raises
        ------
        RegistryError
            If a check fails (the champion is then unchanged). If ``version`` was the
            challenger, its alias and traffic share are removed.
        """
        start = time.perf_counter()
        loaded = self.load(name, str(version))
        load_seconds = time.perf_counter() - start
        size_mb = loaded.metadata["size_bytes"] / 2**20
        if size_mb > max_size_mb:
            raise RegistryError(f"promote {name} v{version}: model is {size_mb:.1f} MiB > limit {max_size_mb} MiB")
        if load_seconds > max_load_seconds:
            raise RegistryError(f"promote {name} v{version}: loading took {load_seconds:.2f} s > limit "
                                f"{max_load_seconds} s")
        previous = self.champion_version(name)
        self.set_champion(name, str(version))
        if self.alias_version(name, CHALLENGER) == str(version):
            self.end_ab_test(name)
        return {"version": str(version), "previous": previous, "size_mb": size_mb, "load_seconds": load_seconds}

    def rollback(self, name: str, version: str | None = None) -> str:
        """Restore an earlier champion in one call.

        Parameters
        ----------
        version : str, optional
            Any registered version; default the champion before the current one (from the
            champion history).

        Returns
        -------
        str
            The version now champion.

        Raises
        ------
        RegistryError
            If there is no earlier champion, or the version does not load (checksums,
            features): the champion is then unchanged.
        """
        current = self.champion_version(name)
        if version is None:
            history = [v for v in self.champion_history(name) if v != current]
            if not history:
                raise RegistryError(f"rollback {name}: no earlier champion recorded; name a version")
            version = history[-1]
        self.load(name, str(version))  # refuse an unusable target before touching the alias
        self.set_champion(name, str(version))
        return str(version)

    def start_ab_test(self, name: str, version: str, traffic: float = 0.1) -> None:
        """Make ``version`` the challenger receiving ``traffic`` (0 < traffic < 1) of requests.

        The share is stored with the model (version tag ``vfr.ab_traffic``); :meth:`route`
        assigns each request key deterministically.

        Raises
        ------
        RegistryError
            If traffic is outside (0, 1), there is no champion, or the version is the champion.
        """
        if not 0 < traffic < 1:
            raise RegistryError(f"A/B traffic must be in (0, 1), got {traffic}")
        champion = self.champion_version(name)
        if champion is None or champion == str(version):
            raise RegistryError(f"A/B test of {name} v{version}: needs a different champion (now {champion})")
        self.load(name, str(version))
        self.client.set_registered_model_alias(name, CHALLENGER, str(version))
        self.client.set_model_version_tag(name, str(version), _AB_TAG, f"{traffic:.6g}")

    def end_ab_test(self, name: str) -> None:
        """Remove the challenger alias and its traffic share (the champion then serves everything)."""
        challenger = self.alias_version(name, CHALLENGER)
        if challenger is None:
            return
        self.client.delete_model_version_tag(name, challenger, _AB_TAG)
        self.client.delete_registered_model_alias(name, CHALLENGER)

    # -- reading --------------------------------------------------------------------
    def alias_version(self, name: str, alias: str) -> str | None:
        """Version holding ``alias``, or None (:class:`RegistryUnavailable` when the database does
        not answer: an outage is not "no such alias")."""
        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except Exception as exc:
            raise_if_outage(exc)
            return None

    def champion_version(self, name: str) -> str | None:
        """Version holding the ``champion`` alias, or None when there is none."""
        return self.alias_version(name, CHAMPION)

    def champion_history(self, name: str) -> list[str]:
        """Versions that held ``champion``, oldest first (as recorded by :meth:`set_champion`)."""
        try:
            tags = self.client.get_registered_model(name).tags
        except Exception as exc:
            raise_if_outage(exc)
            return []
        return list(json.loads(tags.get(_HISTORY_TAG, "[]")))

    def ab_split(self, name: str) -> dict[str, Any] | None:
        """``{"champion", "challenger", "traffic"}`` of the running A/B test, or None."""
        challenger = self.alias_version(name, CHALLENGER)
        if challenger is None:
            return None
        tags = self.client.get_model_version(name, challenger).tags
        return {"champion": self.champion_version(name), "challenger": challenger,
                "traffic": float(tags.get(_AB_TAG, "0"))}

    def route(self, name: str, key: str) -> str | None:
        """Version that serves request ``key`` (e.g. a symbol or user id): stable per key.

        The challenger serves keys whose SHA-256 bucket (of 10,000) falls below its traffic
        share; everything else (and everything without an A/B test) goes to the champion.
        Reads the registry on every call; use :meth:`router` to route many keys.
        """
        return self.router(name)(key)

    def router(self, name: str):
        """A function key -> version with the current A/B split read once (see :meth:`route`)."""
        split = self.ab_split(name)
        champion = self.champion_version(name)

        def assign(key: str) -> str | None:
            if split is None:
                return champion
            bucket = int(hashlib.sha256(f"{name}:{key}".encode()).hexdigest()[:8], 16) % 10_000
            return split["challenger"] if bucket < split["traffic"] * 10_000 else champion

        return assign

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Registered versions of ``name``: version, run_id, aliases, algorithm, creation time (newest
        first); [] for an unknown name, :class:`RegistryUnavailable` when the database does not answer."""
        try:
            found = self.client.search_model_versions(f"name='{name}'")
        except Exception as exc:
            raise_if_outage(exc)
            return []
        aliases = {CHAMPION: self.champion_version(name), CHALLENGER: self.alias_version(name, CHALLENGER)}
        return sorted(
            ({"version": str(v.version), "run_id": v.run_id,
              "aliases": [a for a, ver in aliases.items() if ver == str(v.version)],
              "algorithm": (v.tags or {}).get("algorithm", "lightgbm"),
              "created": pd.Timestamp(v.creation_timestamp, unit="ms")} for v in found),
            key=lambda d: int(d["version"]), reverse=True)

    def load(self, name: str, version: str | None = None, *, alias: str = CHAMPION,
             check_features: bool = True) -> LoadedModel:
        """Load ``name`` at ``version`` (default: the version holding ``alias``, the champion).

        The model files are verified against their SHA-256 manifest and the manifest
        against the digest recorded in the tracking store; the model's features are
        checked against the current feature registry (:func:`known_feature_columns`).

        Raises
        ------
        RegistryUnavailable
            The registry's database does not answer (a :class:`RegistryError` too).
        RegistryError
            If no such model/version/alias exists, its artifact cannot be read, a checksum
            differs (corrupted or altered artifact), or the model uses features the current
            feature registry does not define.
        """
        import mlflow

        stamp = tracking_db_stamp(self.tracking_uri)  # before the alias is read (see vfr.ml.scorecache)
        try:
            mv = (self.client.get_model_version(name, str(version)) if version is not None
                  else self.client.get_model_version_by_alias(name, alias))
        except Exception as exc:
            raise_if_outage(exc)
            what = f"version {version}" if version is not None else f"a '{alias}' alias"
            raise RegistryError(f"registry at {self.tracking_uri} has no model {name!r} with {what}") from exc
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source,
                                                                 tracking_uri=self.tracking_uri))
        except Exception as exc:
            raise RegistryError(f"model {name!r} v{mv.version}: artifact at {mv.source} is unreadable: {exc}") from exc
        verified = self._verify(name, mv, local)
        try:
            metadata = json.loads((local / "vfr_model.json").read_text())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = _load_folder(local)
        except Exception as exc:
            raise RegistryError(f"model {name!r} v{mv.version}: artifact at {mv.source} is unreadable: {exc}") from exc
        # the early-signal model's inputs (surprise history) are built by vfr.earnings, not the feature registry
        if check_features and metadata.get("kind") != "early_signal":
            unknown = [c for c in metadata["feature_columns"] if c not in known_feature_columns()]
            if unknown:
                raise RegistryError(
                    f"model {name!r} v{mv.version} was trained on features the current feature registry "
                    f"(vfr.features.ALL_FEATURES) does not define: {unknown[:8]}"
                    f"{'...' if len(unknown) > 8 else ''}; retrain it on the current features")
        digest = (mv.tags or {}).get(_SHA_TAG)
        metadata |= {"sha256_verified": verified, "sha256": digest or "", "size_bytes": _folder_size(local),
                     "ab_traffic": float((mv.tags or {}).get(_AB_TAG, "nan"))}
        if version is None and alias == CHAMPION:  # what the registry says now: the pointer is fresh again
            write_champion_pointer(self.tracking_uri, name, str(mv.version), stamp, digest)
        return LoadedModel(model=model, name=name, version=str(mv.version), metadata=metadata, path=local)

    def _verify(self, name: str, mv: Any, local: Path) -> bool:
        expected = (mv.tags or {}).get(_SHA_TAG)
        if expected is None:
            return False  # registered before checksums existed
        where = f"model {name!r} v{mv.version} ({mv.source})"
        manifest_file = local / _CHECKSUMS
        if not manifest_file.exists():
            raise RegistryError(f"{where}: checksum manifest {_CHECKSUMS} is missing; refusing to load")
        text = manifest_file.read_text()
        if hashlib.sha256(text.encode()).hexdigest() != expected:
            raise RegistryError(f"{where}: the SHA-256 of {_CHECKSUMS} differs from the registered digest; "
                                "the artifact was altered; refusing to load")
        recorded, actual = json.loads(text), _manifest(local)
        bad = sorted(k for k in set(recorded) | set(actual) if recorded.get(k) != actual.get(k))
        if bad:
            raise RegistryError(f"{where}: SHA-256 mismatch (corrupted or altered artifact) in {bad}; refusing to load")
        return True

    def run_metrics(self, name: str, version: str) -> dict[str, float]:
        """Metrics logged by the training run of a version."""
        return dict(self.client.get_run(self._run_id(name, version)).data.metrics)

    def run_params(self, name: str, version: str) -> dict[str, str]:
        """Parameters logged by the training run of a version."""
        return dict(self.client.get_run(self._run_id(name, version)).data.params)

    def _run_id(self, name: str, version: str) -> str:
        """The training run of a version (:meth:`register` always records one)."""
        mv = self.client.get_model_version(name, str(version))
        if mv.run_id is None:
            raise RegistryError(f"model {name!r} v{version} has no training run (not registered by VFR)")
        return mv.run_id
