"""Models for serving: registry access, champion / A-B routing, the LRU of loaded models,
predicting a whole date, and the model admin use cases (promote, rollback, traffic).

ML never breaks an answer: :meth:`ModelService.run` tries the previous versions when a model
fails and returns an :class:`MLResult` saying what happened, within ``ml_timeout_ms``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vfr.config import Settings
from vfr.ml.registry import (
    AB_TAG as TRAFFIC_TAG,  # one A/B tag for the registry and the API
)
from vfr.ml.registry import PREVIOUS_TAG, RegistryError, RegistryUnavailable, raise_if_outage
from vfr.serving.cache import MemoryTTL, SingleFlight, TTLCache
from vfr.serving.errors import Conflict, MLUnavailable, NotFound, public_reason

log = logging.getLogger(__name__)

_META_TTL = 30.0
#: ``(event, model name, version, seconds)``: ``inference`` (one model scoring a whole date,
#: prediction-cache misses only) or ``request`` (the ML part of a request).
MLObserver = Callable[[str, str, str, float], None]
#: ``(model name, version)`` pairs as requests give them (version None = champion / routing).
ModelSpecs = list[tuple[str, str | None]]


#: The 503 detail while the model registry's database does not answer.
REGISTRY_DOWN = "the model registry is not reachable; try again later"


class ModelNotFound(MLUnavailable):
    """Every version of the model loaded but predicts another horizon than the one asked for
    (a client error, not an outage: the registry answered and the artifacts are fine)."""


class _WrongHorizon(MLUnavailable):
    """A loaded version predicts another horizon."""


@dataclass
class MLResult:
    """Outcome of the ML part of a request.

    Attributes
    ----------
    probs : Series or None
        Probability per symbol (index) of the date; the mean over models when several served;
        None when ML was unavailable.
    status : str
        ``ok``, ``ok (fallback: ...)`` or ``unavailable: <reason>``.
    models : list of dict
        ``{"name", "version"}`` of the models that answered.
    fallback : list of str
        Why earlier versions were skipped.
    route : str or None
        ``champion`` or ``challenger`` when the request was routed.
    loaded : list
        The loaded models that answered (for the prediction log and explanations).
    ms : float
        Wall time of the ML part.
    not_found : bool
        ML was unavailable because no model matches the request (:class:`ModelNotFound`), not
        because of a failure.
    """

    probs: pd.Series | None
    status: str
    models: list[dict[str, str]] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)
    route: str | None = None
    loaded: list[Any] = field(default_factory=list)
    ms: float = 0.0
    not_found: bool = False

    def public(self, horizon: str, threshold: float | None) -> dict[str, Any]:
        """The ``ml`` block of a response."""
        return {"requested": True, "status": self.status, "horizon": horizon, "models": self.models,
                "fallback": self.fallback, "route": self.route, "confidence_threshold": threshold,
                "latency_ms": round(self.ms, 3)}


def bucket(request_id: str) -> float:
    """Deterministic position of a request id on [0, 1) for A/B routing."""
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16) / 2**32


def parse_models(items: list[str] | None, default_name: str) -> ModelSpecs:
    """``name``, ``name:version`` or ``version`` -> (name, version or None)."""
    out: ModelSpecs = []
    for item in items or []:
        if ":" in item:
            name, version = item.split(":", 1)
            out.append((name, version))
        elif item.isdigit():
            out.append((default_name, item))
        else:
            out.append((item, None))
    return out


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class ModelService:
    """Registry access, routing, loaded models and whole-date predictions.

    Parameters
    ----------
    settings : Settings
        ``model_name``, ``model_cache_size``, ``ml_timeout_ms``, ``prediction_cache_ttl_s``.
    cache : TTLCache
        Where whole-date predictions are cached (shared, Redis when configured).
    meta : MemoryTTL
        Process-local cache of registry answers (champion, versions, tags; 30 s).
    registry : ModelRegistry, optional
        Default ``ModelRegistry.from_settings(settings)`` (created on first use).

    Attributes
    ----------
    observers : list of callable
        ML timing callbacks ``(event, name, version, seconds)`` (see :data:`MLObserver`).
    on_change : list of callable
        Called with a model name after its champion, versions or traffic changed (other
        services drop what they cached from the old routing).
    """

    def __init__(self, settings: Settings, cache: TTLCache, meta: MemoryTTL, registry: Any = None,
                 flight: SingleFlight | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.flight = flight or SingleFlight()
        self.meta = meta
        self.observers: list[MLObserver] = []
        self.on_change: list[Callable[[str], None]] = []
        self._registry = registry
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._model_locks: dict[tuple[str, str], threading.Lock] = {}
        self._warm: dict[tuple, set[tuple[str, str]]] = {}  # ML requests answered from cached models
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="vfr-ml")

    def close(self) -> None:
        """Stop the ML workers (running predictions are abandoned)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- registry ---------------------------------------------------------------------------
    @property
    def registry(self):
        """The model registry (created on first use)."""
        if self._registry is None:
            from vfr.ml import ModelRegistry

            with self._lock:
                if self._registry is None:
                    try:
                        self._registry = ModelRegistry.from_settings(self.settings)
                    except RegistryUnavailable as exc:  # tried again by the next request
                        raise MLUnavailable(REGISTRY_DOWN) from exc
        return self._registry

    def champion(self, name: str) -> str | None:
        """Champion version of ``name`` (None without one), cached briefly."""
        key = f"champ:{name}"
        value = self.meta.get(key, "<miss>")
        if value == "<miss>":
            value = self.registry.champion_version(name)
            self.meta.set(key, value, _META_TTL)
        return value

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Registered versions of ``name``, newest first, cached briefly."""
        key = f"versions:{name}"
        value = self.meta.get(key)
        if value is None:
            value = self.registry.versions(name)
            self.meta.set(key, value, _META_TTL)
        return value

    def version_tags(self, name: str) -> dict[str, dict[str, str]]:
        """Tags of every version of ``name`` (version -> tags), cached briefly."""
        key = f"tags:{name}"
        value = self.meta.get(key)
        if value is None:
            try:
                found = self.registry.client.search_model_versions(f"name='{name}'")
                value = {str(v.version): dict(v.tags or {}) for v in found}
            except Exception as exc:  # noqa: BLE001 - a registry without tags routes everything to the champion
                raise_if_outage(exc)
                value = {}
            self.meta.set(key, value, _META_TTL)
        return value

    def routing(self, name: str) -> tuple[str | None, float]:
        """Challenger version of ``name`` and its traffic share (None, 0.0 when none)."""
        champion = self.champion(name)
        for version, tags in self.version_tags(name).items():
            try:
                share = float(tags.get(TRAFFIC_TAG, 0.0))
            except ValueError:
                continue
            if share > 0 and version != champion:
                return version, min(share, 1.0)
        return None, 0.0

    def invalidate(self, name: str) -> None:
        """Forget cached registry answers for ``name`` (after promote/rollback/traffic/retraining)."""
        self.meta.delete_prefix("champ:" + name)
        self.meta.delete_prefix("versions:" + name)
        self.meta.delete_prefix("tags:" + name)
        for listener in self.on_change:
            listener(name)

    # -- loaded models ------------------------------------------------------------------------
    def load(self, name: str, version: str):
        """Loaded model from the LRU cache (loaded from the registry on a miss, once however
        many requests wait for it)."""
        key = (name, str(version))
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
            lock = self._model_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = self.registry.load(name, str(version))
            with self._lock:
                self._models[key] = model
                while len(self._models) > self.settings.model_cache_size:
                    self._models.popitem(last=False)
        return model

    def loaded(self) -> list[dict[str, str]]:
        """``{"name", "version"}`` of the models in the LRU, oldest first."""
        with self._lock:
            return [{"name": n, "version": v} for n, v in self._models]

    def predict_date(self, model, day: pd.Timestamp, features: pd.DataFrame) -> pd.Series:
        """Probabilities of every symbol of ``day`` (one vectorised call; cached; computed once for
        all the requests that miss the cache at the same time)."""
        key = f"pred:{model.name}:{model.version}:{day:%Y-%m-%d}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        return self.flight.do(key, lambda: self._predict_date(key, model, features))

    def _predict_date(self, key: str, model, features: pd.DataFrame) -> pd.Series:
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        t0 = time.perf_counter()
        probs = pd.Series(np.asarray(model.predict_proba(features), dtype=float), index=features["symbol"].to_numpy())
        self._observe("inference", model.name, str(model.version), time.perf_counter() - t0)
        self.cache.set(key, probs, self.settings.prediction_cache_ttl_s)
        return probs

    def contributions(self, model, rows: pd.DataFrame) -> pd.DataFrame:
        """Per-feature SHAP contributions of ``rows`` (index of ``rows``, columns the model's features)."""
        return model.contributions(rows)

    # -- the ML part of a request ---------------------------------------------------------------
    def _candidates(self, name: str, version: str | None) -> list[str]:
        target = version if version is not None else self.champion(name)
        if target is None:
            raise MLUnavailable(f"model {name!r} has no champion version")
        older = [v["version"] for v in self.versions(name) if v["version"].isdigit() and target.isdigit()
                 and int(v["version"]) < int(target)]
        return [target] + older[:2]

    def _ml(self, specs: ModelSpecs, day: pd.Timestamp, features: pd.DataFrame, horizon: str,
            request_id: str) -> MLResult:
        route = None
        if not specs:
            name = self.settings.model_name
            challenger, share = self.routing(name)
            if challenger is not None and bucket(request_id) < share:
                specs, route = [(name, challenger)], "challenger"
            else:
                specs, route = [(name, None)], "champion"
        all_probs, used, fallback, loaded = [], [], [], []
        for name, version in specs:
            try:
                candidates = self._candidates(name, version)
            except MLUnavailable:
                raise
            except Exception as exc:
                raise MLUnavailable(f"model registry unavailable ({public_reason(exc)})") from exc
            errors, wrong_horizon = [], 0
            for v in candidates:
                try:
                    model = self.load(name, v)
                    model_h = model.metadata.get("horizon")
                    if model_h is not None and model_h != horizon:
                        raise _WrongHorizon(f"predicts horizon {model_h}, not {horizon}")
                    all_probs.append(self.predict_date(model, day, features))
                    used.append({"name": name, "version": str(model.version)})
                    loaded.append(model)
                    break
                except Exception as exc:  # noqa: BLE001 - try the previous version
                    errors.append(f"{name} v{v}: {public_reason(exc)}")
                    wrong_horizon += isinstance(exc, _WrongHorizon)
            else:
                reason = "; ".join(errors) or f"model {name!r} has no usable version"
                raise ModelNotFound(reason) if errors and wrong_horizon == len(errors) else MLUnavailable(reason)
            if errors:
                fallback.extend(errors)
        probs = all_probs[0] if len(all_probs) == 1 else pd.concat(all_probs, axis=1).mean(axis=1)
        status = "ok" if not fallback else f"ok (fallback: {'; '.join(fallback)})"
        return MLResult(probs=probs, status=status, models=used, fallback=fallback, route=route, loaded=loaded)

    def run(self, specs: ModelSpecs, day: pd.Timestamp, features: pd.DataFrame, horizon: str,
            request_id: str) -> MLResult:
        """The ML part of a request within the ``ml_timeout_ms`` budget; never raises.

        Parameters
        ----------
        specs : list of (name, version or None)
            Empty: the configured model, champion or challenger by A/B routing of ``request_id``.
        day, features
            The date and its features (every symbol).
        horizon : str
            Models predicting another horizon are refused.
        request_id : str
            Routes the request (deterministically) to the champion or the challenger.

        Returns
        -------
        MLResult
            ``probs`` None with ``status`` ``unavailable: <reason>`` when no model answered.
        """
        t0 = time.perf_counter()
        budget = self.settings.ml_timeout_ms / 1000.0
        key = (tuple(specs), day, horizon)
        warm = self._warm.get(key)
        try:
            if warm is not None and all(m in self._models for m in warm):
                result = self._ml(specs, day, features, horizon, request_id)  # all cached: no thread hop
            else:
                result = self._pool.submit(self._ml, specs, day, features, horizon, request_id).result(timeout=budget)
            if (time.perf_counter() - t0) < budget / 2:
                self._warm[key] = set(warm or ()) | {(m.name, str(m.version)) for m in result.loaded}
        except FutureTimeout:
            result = MLResult(None, f"unavailable: timeout: ML did not answer within the "
                                    f"{self.settings.ml_timeout_ms:g} ms budget")
        except MLUnavailable as exc:
            result = MLResult(None, f"unavailable: {exc}", not_found=isinstance(exc, ModelNotFound))
        except Exception as exc:  # noqa: BLE001
            result = MLResult(None, f"unavailable: {public_reason(exc)}")
        result.ms = (time.perf_counter() - t0) * 1000
        for m in result.models:
            self._observe("request", m["name"], m["version"], result.ms / 1000)
        return result

    def _observe(self, event: str, name: str, version: str, seconds: float) -> None:
        """Hand an ML timing to :attr:`observers` (their failures never reach the request)."""
        for observer in self.observers:
            try:
                observer(event, name, version, seconds)
            except Exception:
                log.debug("ML observer %r failed", observer, exc_info=True)

    # -- admin ------------------------------------------------------------------------------------
    def _known(self, name: str) -> list[dict[str, Any]]:
        versions = self.versions(name)
        if not versions:
            raise NotFound(f"no registered model named {name!r}")
        return versions

    def summary(self, name: str) -> dict[str, Any]:
        """Versions, champion, challenger and traffic split of ``name`` (:class:`NotFound` when unknown)."""
        versions = self._known(name)
        tags = self.version_tags(name)
        challenger, share = self.routing(name)
        return {"name": name, "champion": self.champion(name), "challenger": challenger, "traffic_split": share,
                "versions": [{"version": v["version"], "aliases": v["aliases"], "created": str(v["created"]),
                              "horizon": tags.get(v["version"], {}).get("horizon"),
                              "traffic_split": _float(tags.get(v["version"], {}).get(TRAFFIC_TAG))}
                             for v in versions]}

    def summaries(self) -> list[dict[str, Any]]:
        """:meth:`summary` of every served model that is registered."""
        out = []
        for name in [self.settings.model_name]:
            try:
                out.append(self.summary(name))
            except NotFound:
                continue
        return out

    def promote(self, name: str, version: str) -> dict[str, Any]:
        """Make ``version`` the champion (after checking it loads); the previous one is remembered.

        Raises
        ------
        NotFound
            No such model or version.
        Conflict
            ``version`` is already the champion, or its artifact cannot be loaded.
        """
        versions = [v["version"] for v in self._known(name)]
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version}")
        previous = self.champion(name)
        if previous == version:
            raise Conflict(f"version {version} is already the champion of {name!r}")
        try:  # refuse to promote an unloadable version
            self.registry.load(name, version)
        except RegistryUnavailable:
            raise
        except RegistryError as exc:
            raise Conflict(f"version {version} of {name!r} cannot be loaded ({public_reason(exc)}); "
                           "it was not promoted") from exc
        self.registry.set_champion(name, version)  # also remembers the previous champion (PREVIOUS_TAG)
        self.registry.client.set_model_version_tag(name, version, TRAFFIC_TAG, "0")
        self.invalidate(name)
        return {"name": name, "champion": version, "previous": previous}

    def rollback(self, name: str) -> dict[str, Any]:
        """Give the champion alias back to the previous champion (or the next older version)."""
        versions = [v["version"] for v in self._known(name)]
        current = self.champion(name)
        try:
            previous = self.registry.client.get_registered_model(name).tags.get(PREVIOUS_TAG)
        except Exception as exc:  # noqa: BLE001
            raise_if_outage(exc)
            previous = None
        if previous is None or previous not in versions or previous == current:
            older = [v for v in versions if current and v.isdigit() and int(v) < int(current)]
            previous = older[0] if older else None
        if previous is None:
            raise Conflict(f"model {name!r} has no earlier version to roll back to")
        self.registry.set_champion(name, previous)  # remembers ``current`` as the previous champion
        self.invalidate(name)
        return {"name": name, "champion": previous, "previous": current}

    def set_traffic(self, name: str, version: str, share: float) -> dict[str, Any]:
        """Route ``share`` of the requests to challenger ``version`` (a version tag)."""
        versions = [v["version"] for v in self._known(name)]
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version}")
        if version == self.champion(name):
            raise Conflict("the champion takes the traffic the challenger does not; pick a challenger version")
        for v, tags in self.version_tags(name).items():
            if v != version and _float(tags.get(TRAFFIC_TAG)):
                self.registry.client.set_model_version_tag(name, v, TRAFFIC_TAG, "0")
        self.registry.client.set_model_version_tag(name, version, TRAFFIC_TAG, repr(float(share)))
        self.invalidate(name)
        return self.summary(name)

    def info(self, name: str) -> dict[str, Any]:
        """The champion of ``name``: the loaded model, its walk-forward metrics, creation time and routing.

        Raises
        ------
        NotFound
            ``name`` has no champion yet.
        Conflict
            The champion's artifact cannot be loaded (corrupt, altered or missing).
        """
        version = self.champion(name)
        if version is None:
            raise NotFound(f"model {name!r} has no champion yet; run `vfr train`")
        try:
            model = self.load(name, version)
        except RegistryUnavailable:
            raise
        except RegistryError as exc:
            raise Conflict(f"the champion v{version} of {name!r} cannot be loaded ({public_reason(exc)}); "
                           "promote a working version or roll back") from exc
        metrics = {k.removeprefix("wf.model."): float(v) for k, v in self.registry.run_metrics(name, version).items()
                   if k.startswith("wf.model.")}
        challenger, share = self.routing(name)
        created = next((str(v["created"]) for v in self.versions(name) if v["version"] == version), None)
        return {"version": str(version), "model": model, "metrics": metrics, "created": created,
                "challenger": challenger, "traffic_split": share}
