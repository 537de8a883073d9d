"""Prediction engine: the business logic behind the routes.

It loads features, the universe and models (through :class:`vfr.ml.ModelRegistry`), keeps
them in caches (models in an LRU of ``model_cache_size``; features for ``feature_cache_ttl_s``
and predictions for ``prediction_cache_ttl_s`` in Redis when ``cache_url`` is set, in process
memory otherwise), predicts a whole date in one vectorised call, routes A/B traffic, logs
every served prediction and ranks with :func:`vfr.scoring.select` (never re-implemented).

ML can never break the classic answer: any failure (no model, unreadable artifact, missing
features, a prediction error, the ``ml_timeout_ms`` budget running out) yields the classic
ranking with ``ml.status`` saying what happened, after the previous model versions were tried.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from vfr.config import HORIZONS, Settings
from vfr.data import MarketStore
from vfr.ml.registry import AB_TAG as TRAFFIC_TAG  # one A/B tag for the registry and the API
from vfr.ml.registry import PREVIOUS_TAG
from vfr.scoring import GROUP_SIGNALS, blend, recommendation, select
from vfr.serving.cache import MemoryTTL, TTLCache
from vfr.serving.predlog import PredictionLogger, fill_outcomes

log = logging.getLogger(__name__)

FEATURES_TABLE = "features"
_META_TTL = 30.0
DISABLED = {"requested": False, "status": "disabled", "horizon": None, "models": [], "fallback": [], "route": None,
            "confidence_threshold": None, "latency_ms": None}
_PATHS = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+|(?<![\w.])/[^\s'\",)\]]+|[A-Za-z]:\\\S+")


class StoreUnavailable(Exception):
    """The market store (or the serving database) cannot be reached."""


class NotFound(Exception):
    """The date, symbol, sector, model or version asked for does not exist."""


class Conflict(Exception):
    """The request is valid but cannot be applied in the current state."""


class MLUnavailable(Exception):
    """No ML answer could be produced (the message says why, without internal paths)."""


def public_reason(exc: BaseException) -> str:
    """A one-line reason safe to show to clients: internal paths and URLs are hidden."""
    msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    if "unreadable" in msg:
        msg = msg.split(":")[0] + ": artifact unreadable"
    return _PATHS.sub("<hidden>", msg)[:300]


def _is_store_down(exc: BaseException) -> bool:
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, ConnectionError, TimeoutError)):
        return True
    return exc.__class__.__module__.startswith("psycopg") and "Operational" in exc.__class__.__name__


class LatencyRecorder:
    """Latencies per route (last 20,000 calls each) and their p50/p95/p99."""

    def __init__(self, keep: int = 20_000) -> None:
        self.keep = keep
        self._data: dict[str, deque[float]] = {}

    def record(self, name: str, ms: float) -> None:
        series = self._data.get(name)
        if series is None:
            series = self._data.setdefault(name, deque(maxlen=self.keep))
        series.append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, series in list(self._data.items()):
            values = np.fromiter(list(series), dtype=float)
            if values.size:
                p50, p95, p99 = np.percentile(values, [50, 95, 99])
                out[name] = {"count": int(values.size), "p50_ms": round(float(p50), 3),
                             "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3)}
        return out


class _ProbPredictor:
    """Adapter handing cached probabilities (by symbol) to :func:`vfr.scoring.select`."""

    def __init__(self, probs: pd.Series) -> None:
        self.probs = probs

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        return self.probs.reindex(rows["symbol"]).to_numpy(dtype=float)


@dataclass
class MLResult:
    """Outcome of the ML part of a request."""

    probs: pd.Series | None
    status: str
    models: list[dict[str, str]] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)
    route: str | None = None
    loaded: list[Any] = field(default_factory=list)
    ms: float = 0.0

    def public(self, horizon: str, threshold: float | None) -> dict[str, Any]:
        return {"requested": True, "status": self.status, "horizon": horizon, "models": self.models,
                "fallback": self.fallback, "route": self.route, "confidence_threshold": threshold,
                "latency_ms": round(self.ms, 3)}


def bucket(request_id: str) -> float:
    """Deterministic position of a request id on [0, 1) for A/B routing."""
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16) / 2**32


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


class ServingEngine:
    """Everything the API does, with its caches and the prediction log.

    Parameters
    ----------
    settings : Settings
    registry : ModelRegistry, optional
        Default ``ModelRegistry.from_settings(settings)`` (created on first use).
    log_flush_interval_s : float
        Background flush period of the prediction log.
    """

    def __init__(self, settings: Settings, registry: Any = None, log_flush_interval_s: float = 1.0) -> None:
        self.settings = settings
        self.cache = TTLCache(settings.cache_url, settings.cache_prefix)
        self.meta = MemoryTTL()
        self.latency = LatencyRecorder()
        #: ML timing callbacks ``(event, model name, version, seconds)``: ``inference`` (one model
        #: scoring a whole date, prediction-cache misses only) and ``request`` (the ML part of a request).
        self.ml_observers: list[Any] = []
        self._registry = registry
        self._store: MarketStore | None = None
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._model_locks: dict[tuple[str, str], threading.Lock] = {}
        self._logged: set[str] = set()  # whole-universe rankings already handed to the log
        self._warm: dict[tuple, set[tuple[str, str]]] = {}  # ML requests answered from cached models
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="vfr-ml")
        self.predlog = PredictionLogger(settings.resolved_serving_db_url, spill_dir=settings.home_dir / "predlog-spill",
                                        flush_interval_s=log_flush_interval_s)

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Flush the prediction log, stop the workers and release the store."""
        self.predlog.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._store is not None:
            self._store.close()

    @property
    def registry(self):
        if self._registry is None:
            from vfr.ml import ModelRegistry

            with self._lock:
                if self._registry is None:
                    self._registry = ModelRegistry.from_settings(self.settings)
        return self._registry

    @property
    def store(self) -> MarketStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    url = self.settings.resolved_store_url
                    kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 3}} \
                        if url.startswith("postgresql") else {}
                    self._store = MarketStore(url, **kwargs)
        return self._store

    def _read(self, fn):
        """Run ``fn(store)``; connection failures become :class:`StoreUnavailable`."""
        try:
            return fn(self.store)
        except (NotFound, MLUnavailable):
            raise
        except Exception as exc:
            if _is_store_down(exc) or _is_store_down(getattr(exc, "__cause__", None) or exc):
                raise StoreUnavailable("the market store is not reachable; try again later") from exc
            raise

    def warmup(self) -> None:
        """Load the champion, the latest features and their predictions into the caches
        (best effort: failures are logged, requests then load what they need)."""
        try:
            day = self.latest_date()
            self.universe()
            self.rank(date=day, include_ml=True, request_id="warmup", log_rows=False)
        except Exception as exc:  # noqa: BLE001
            log.warning("warm-up incomplete (%s)", public_reason(exc))

    # -- data ---------------------------------------------------------------------------
    def ping_store(self) -> None:
        """Raise :class:`StoreUnavailable` unless the market store answers ``SELECT 1``."""
        def q(store: MarketStore):
            with store.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1").scalar()
        self._read(q)

    def latest_date(self) -> pd.Timestamp:
        """Latest date of the features table (cached with the features)."""
        cached = self.cache.get("latest")
        if cached is not None:
            return pd.Timestamp(cached)

        def q(store: MarketStore):
            if not store.has_table(FEATURES_TABLE):
                raise NotFound("the store has no features; run `vfr features build` first")
            with store.engine.connect() as conn:
                return conn.exec_driver_sql(f"SELECT MAX(date) FROM {FEATURES_TABLE}").scalar()

        value = self._read(q)
        if value is None:
            raise NotFound("the store has no features; run `vfr features build` first")
        day = pd.Timestamp(value).normalize()
        self.cache.set("latest", day, self.settings.feature_cache_ttl_s)
        return day

    def features_for(self, day: pd.Timestamp) -> pd.DataFrame:
        """Features of every symbol on ``day`` (cached)."""
        key = f"feat:{day:%Y-%m-%d}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached

        def q(store: MarketStore):
            if not store.has_table(FEATURES_TABLE):
                raise NotFound("the store has no features; run `vfr features build` first")
            return store.read_table(FEATURES_TABLE, start=day, end=day)

        frame = self._read(q)
        if frame.empty:
            raise NotFound(f"no features on {day.date()} (latest available: {self.latest_date().date()})")
        self.cache.set(key, frame, self.settings.feature_cache_ttl_s)
        return frame

    def universe(self) -> pd.DataFrame | None:
        """The ``securities`` table (symbol, name, sector), or None when absent (cached)."""
        cached = self.cache.get("universe")
        if cached is not None:
            return cached["u"]
        frame = self._read(lambda s: s.read_universe() if s.has_table("securities") else None)
        self.cache.set("universe", {"u": frame}, self.settings.feature_cache_ttl_s)
        return frame

    def day(self, date: Any) -> pd.Timestamp:
        return pd.Timestamp(date) if date is not None else self.latest_date()

    # -- models ---------------------------------------------------------------------------
    def champion(self, name: str) -> str | None:
        key = f"champ:{name}"
        value = self.meta.get(key, "<miss>")
        if value == "<miss>":
            value = self.registry.champion_version(name)
            self.meta.set(key, value, _META_TTL)
        return value

    def versions(self, name: str) -> list[dict[str, Any]]:
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
            except Exception:  # noqa: BLE001 - a registry without tags routes everything to the champion
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

    def invalidate_models(self, name: str) -> None:
        """Forget cached registry answers for ``name`` (after promote/rollback/traffic)."""
        self.meta.delete_prefix("champ:" + name)
        self.meta.delete_prefix("versions:" + name)
        self.meta.delete_prefix("tags:" + name)
        self.meta.delete_prefix("scored:")

    def load_model(self, name: str, version: str):
        """Loaded model from the LRU cache (loaded from the registry on a miss)."""
        key = (name, str(version))
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
            lock = self._model_locks.setdefault(key, threading.Lock())
        with lock:  # one load per model, however many requests wait for it
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = self.registry.load(name, str(version))
            with self._lock:
                self._models[key] = model
                while len(self._models) > self.settings.model_cache_size:
                    self._models.popitem(last=False)
        return model

    def loaded_models(self) -> list[dict[str, str]]:
        with self._lock:
            return [{"name": n, "version": v} for n, v in self._models]

    def predict_date(self, model, day: pd.Timestamp, features: pd.DataFrame) -> pd.Series:
        """Probabilities of every symbol of ``day`` (one vectorised call; cached)."""
        key = f"pred:{model.name}:{model.version}:{day:%Y-%m-%d}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        t0 = time.perf_counter()
        probs = pd.Series(np.asarray(model.predict_proba(features), dtype=float), index=features["symbol"].to_numpy())
        self._observe_ml("inference", model.name, str(model.version), time.perf_counter() - t0)
        self.cache.set(key, probs, self.settings.prediction_cache_ttl_s)
        return probs

    def _candidates(self, name: str, version: str | None) -> list[str]:
        target = version if version is not None else self.champion(name)
        if target is None:
            raise MLUnavailable(f"model {name!r} has no champion version")
        older = [v["version"] for v in self.versions(name) if v["version"].isdigit() and target.isdigit()
                 and int(v["version"]) < int(target)]
        return [target] + older[:2]

    def _ml(self, specs: list[tuple[str, str | None]], day: pd.Timestamp, features: pd.DataFrame, horizon: str,
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
            except Exception as exc:  # noqa: BLE001 - registry unreachable
                raise MLUnavailable(f"model registry unavailable ({public_reason(exc)})") from exc
            errors = []
            for v in candidates:
                try:
                    model = self.load_model(name, v)
                    model_h = model.metadata.get("horizon")
                    if model_h is not None and model_h != horizon:
                        raise MLUnavailable(f"predicts horizon {model_h}, not {horizon}")
                    all_probs.append(self.predict_date(model, day, features))
                    used.append({"name": name, "version": str(model.version)})
                    loaded.append(model)
                    break
                except Exception as exc:  # noqa: BLE001 - try the previous version
                    errors.append(f"{name} v{v}: {public_reason(exc)}")
            else:
                raise MLUnavailable("; ".join(errors) or f"model {name!r} has no usable version")
            if errors:
                fallback.extend(errors)
        probs = all_probs[0] if len(all_probs) == 1 else pd.concat(all_probs, axis=1).mean(axis=1)
        status = "ok" if not fallback else f"ok (fallback: {'; '.join(fallback)})"
        return MLResult(probs=probs, status=status, models=used, fallback=fallback, route=route, loaded=loaded)

    def run_ml(self, specs: list[tuple[str, str | None]], day: pd.Timestamp, features: pd.DataFrame, horizon: str,
               request_id: str) -> MLResult:
        """The ML part within the ``ml_timeout_ms`` budget; never raises."""
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
            result = MLResult(None, f"unavailable: {exc}")
        except Exception as exc:  # noqa: BLE001
            result = MLResult(None, f"unavailable: {public_reason(exc)}")
        result.ms = (time.perf_counter() - t0) * 1000
        for m in result.models:
            self._observe_ml("request", m["name"], m["version"], result.ms / 1000)
        return result

    def _observe_ml(self, event: str, name: str, version: str, seconds: float) -> None:
        """Hand an ML timing to :attr:`ml_observers` (their failures never reach the request)."""
        for observer in self.ml_observers:
            try:
                observer(event, name, version, seconds)
            except Exception:  # noqa: BLE001
                log.debug("ML observer %r failed", observer, exc_info=True)

    # -- use cases ------------------------------------------------------------------------
    def _symbols_for(self, sector: str | None, symbols: list[str] | None,
                     universe: pd.DataFrame | None) -> list[str] | None:
        if sector:
            if universe is None:
                raise NotFound("no universe (securities) in the store; sectors are unknown")
            match = universe[universe["sector"].str.lower() == sector.lower()]
            if match.empty:
                known = sorted(universe["sector"].dropna().unique())
                raise NotFound(f"unknown sector {sector!r}; known: {known}")
            return match["symbol"].tolist()
        return symbols or None

    def _log(self, table: pd.DataFrame, ml: MLResult, features: pd.DataFrame, day: pd.Timestamp, horizon: str,
             request_id: str) -> None:
        if ml.probs is None or "ml_probability" not in table.columns or table.empty:
            return
        for model in ml.loaded:
            probs = ml.probs if len(ml.loaded) == 1 else self.predict_date(model, day, features)
            syms = table["symbol"].tolist()
            self.predlog.log(symbols=syms, probabilities=probs.reindex(syms).to_numpy(dtype=float),
                             confidences=table["ml_confidence"].to_numpy(dtype=float), features=features,
                             feature_columns=model.feature_columns, model_name=model.name,
                             model_version=str(model.version), horizon=horizon, feature_date=day,
                             request_id=request_id)

    def rank(self, *, date: Any = None, include_ml: bool = False, ml_models: list[tuple[str, str | None]] | None = None,
             horizon: str = "1w", threshold: float = 0.5, top: int | None = None, sector: str | None = None,
             symbols: list[str] | None = None, request_id: str = "-", log_rows: bool = True) -> dict[str, Any]:
        """Rank the universe, a sector or a list of symbols on a date (the select use case)."""
        day = self.day(date)
        features = self.features_for(day)
        universe = self.universe()
        wanted = self._symbols_for(sector, symbols, universe)
        unknown = sorted(set(symbols or []) - set(features["symbol"])) if symbols else []
        w = self.settings.ml_weight
        if not include_ml:
            if wanted:
                table = self._select(features, day, universe, False, None, wanted, None, w).table
                scored = (table, self._rows(table))
            else:
                scored = self._scored(f"classic:{day:%Y-%m-%d}", lambda: self._select(
                    features, day, universe, False, None, None, None, w).table)
            return self._answer(scored, day, dict(DISABLED), unknown, top)
        ml = self.run_ml(ml_models or [], day, features, horizon, request_id)
        predictor = _ProbPredictor(ml.probs) if ml.probs is not None else None
        if predictor is not None and not wanted:
            key = f"scored:{day:%Y-%m-%d}:{horizon}:{threshold}:" + ",".join(
                f"{m['name']}:{m['version']}" for m in ml.models)
            scored = self._scored(key, lambda: self._blend(features, day, universe, predictor, ml, None, threshold, w))
        else:
            table = self._blend(features, day, universe, predictor, ml, wanted, threshold, w)
            scored = (table, self._rows(table))
        if log_rows:
            once = f"{key}:{top}" if predictor is not None and not wanted else None
            if once is None or once not in self._logged:
                table = scored[0] if top is None else scored[0].head(top)
                self._log(table, ml, features, day, horizon, request_id)
                if once is not None:
                    if len(self._logged) > 10_000:
                        self._logged.clear()
                    self._logged.add(once)
        return self._answer(scored, day, ml.public(horizon, threshold), unknown, top, ml_result=ml)

    def _scored(self, key: str, build) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        """A whole-universe ranking and its response rows, cached in process memory."""
        hit = self.meta.get(key)
        if hit is None:
            table = build()
            rows = self._rows(table)
            hit = (table, rows, {r["symbol"]: r for r in rows}, {})
            self.meta.set(key, hit, self.settings.prediction_cache_ttl_s)
        return hit

    def _select(self, features, day, universe, include_ml, predictor, wanted, top, w, ml_error=None):
        try:
            return select(features, date=day, universe=universe, include_ml=include_ml, model=predictor,
                          ml_error=ml_error, ml_weight=w, symbols=wanted, top=top)
        except ValueError as exc:
            raise NotFound(public_reason(exc).removeprefix("select: ")) from exc

    def _blend(self, features, day, universe, predictor, ml: MLResult, wanted, threshold, w) -> pd.DataFrame:
        sel = self._select(features, day, universe, True, predictor, wanted, None, w,
                           ml_error=ml.status.removeprefix("unavailable: "))
        table = sel.table
        if predictor is not None and sel.ml_status != "ok":  # prediction failed inside select
            ml.status, ml.probs, ml.models = sel.ml_status, None, []
        if "ml_score" in table.columns:
            blended = table["ml_confidence"] >= threshold
            if threshold > 0:
                table = table.copy()
                table["composite"] = blend(table["classic_score"], table["ml_score"].where(blended),
                                           table["ml_confidence"], w)
                table["recommendation"] = recommendation(table["composite"])
                table = table.sort_values(["composite", "symbol"], ascending=[False, True],
                                          kind="stable").reset_index(drop=True)
                table["rank"] = np.arange(1, len(table) + 1)
                blended = table["ml_confidence"] >= threshold
            table["ml_blended"] = blended
        return table

    @staticmethod
    def _rows(table: pd.DataFrame) -> list[dict[str, Any]]:
        groups = [f"{g}_score" for g in GROUP_SIGNALS if f"{g}_score" in table.columns]
        records = table.to_dict("records")
        out = []
        for r in records:
            row = {"rank": int(r["rank"]), "symbol": r["symbol"],
                   "sector": r.get("sector") if isinstance(r.get("sector"), str) else None,
                   "factor_scores": {g.removesuffix("_score"): _clean(r[g]) for g in groups},
                   "classic_score": _clean(r["classic_score"]), "composite": _clean(r["composite"]),
                   "recommendation": r["recommendation"]}
            if "ml_probability" in r:
                row |= {"ml_probability": _clean(r["ml_probability"]), "ml_confidence": _clean(r["ml_confidence"]),
                        "ml_score": _clean(r["ml_score"]), "ml_blended": bool(r.get("ml_blended", True))}
            else:
                row |= {"ml_probability": None, "ml_confidence": None, "ml_score": None, "ml_blended": None}
            out.append(row)
        return out

    def _answer(self, scored: tuple[pd.DataFrame, list[dict[str, Any]]], day: pd.Timestamp, ml: dict[str, Any],
                unknown: list[str], top: int | None, ml_result: MLResult | None = None) -> dict:
        table, rows = scored[0], scored[1]
        rows = rows if top is None else rows[:top]
        out = {"date": day.date().isoformat(), "count": len(rows), "ml": ml, "unknown_symbols": unknown,
               "results": rows}
        if len(scored) > 3:  # cached whole-universe ranking: its JSON is serialised once per `top`
            cache = scored[3]
            if top not in cache:
                cache[top] = json.dumps(rows, separators=(",", ":"))
            out["_results_json"] = cache[top]
        if ml_result is not None:
            out["_ml"], out["_table"] = ml_result, table
            out["_by_symbol"] = scored[2] if len(scored) > 2 else {r["symbol"]: r for r in scored[1]}
        return out

    def analyze(self, *, symbols: list[str], date: Any = None, horizon: str = "1w",
                ml_models: list[tuple[str, str | None]] | None = None, threshold: float = 0.5,
                n_contributions: int = 5, request_id: str = "-") -> dict[str, Any]:
        """Factor scores, ML prediction with top feature contributions, composite, recommendation."""
        day = self.day(date)
        features = self.features_for(day)
        full = self.rank(date=day, include_ml=True, ml_models=ml_models, horizon=horizon, threshold=threshold,
                         request_id=request_id, log_rows=False)
        ml = full["ml"]
        by_symbol = full["_by_symbol"]
        missing = sorted({s for s in symbols if s not in by_symbol})
        if len(missing) == len(set(symbols)):
            raise NotFound(f"no features on {day.date()} for {missing}")
        if ml["models"]:
            tag = f"{day:%Y-%m-%d}:{horizon}:" + ",".join(f"{m['name']}:{m['version']}" for m in ml["models"])
            fresh = [s for s in symbols if s in by_symbol and f"{tag}:{s}" not in self._logged]
            if fresh:
                served = full["_table"][full["_table"]["symbol"].isin(fresh)]
                self._log(served, full["_ml"], features, day, horizon, request_id)
                if len(self._logged) > 100_000:
                    self._logged.clear()
                self._logged.update(f"{tag}:{s}" for s in fresh)
        model = None
        if ml["models"]:
            name, version = ml["models"][0]["name"], ml["models"][0]["version"]
            model = self.load_model(name, version)
        contributions: dict[str, list[dict[str, Any]]] = {}
        if model is not None:
            contributions = self._contributions(model, day, features, symbols, n_contributions)
        out = []
        for sym in dict.fromkeys(symbols):
            r = by_symbol.get(sym)
            if r is None:
                continue
            pred = None
            if r.get("ml_probability") is not None:
                p = r["ml_probability"]
                pred = {"probability": p, "predicted_class": int(p >= 0.5), "direction": "UP" if p >= 0.5 else "DOWN",
                        "confidence": r["ml_confidence"], "ml_score": r["ml_score"], "blended": r["ml_blended"],
                        "model_name": model.name if model else None, "model_version": str(model.version) if model else None,
                        "top_contributions": contributions.get(sym, [])}
            out.append({"symbol": sym, "sector": r["sector"], "universe_rank": r["rank"],
                        "universe_size": full["count"], "factor_scores": r["factor_scores"],
                        "classic_score": r["classic_score"], "ml_prediction": pred, "composite": r["composite"],
                        "recommendation": r["recommendation"]})
        return {"date": full["date"], "ml": ml, "unknown_symbols": missing, "results": out}

    def _contributions(self, model, day: pd.Timestamp, features: pd.DataFrame, symbols: list[str],
                       n: int) -> dict[str, list[dict[str, Any]]]:
        """Top ``n`` LightGBM ``pred_contrib`` (SHAP) values per symbol, cached per model and date."""
        prefix = f"contrib:{model.name}:{model.version}:{day:%Y-%m-%d}:{n}:"
        out = {s: v for s in symbols if (v := self.meta.get(prefix + s)) is not None}
        todo = [s for s in symbols if s not in out]
        if not todo:
            return out
        rows = features[features["symbol"].isin(todo)]
        if rows.empty:
            return out
        try:
            X = rows[model.feature_columns].to_numpy(dtype=np.float32)
            contrib = model.model.predict(X, pred_contrib=True, num_threads=1)[:, :-1]
        except Exception as exc:  # noqa: BLE001 - explanations are optional
            log.warning("analyze: contributions failed (%s)", exc.__class__.__name__)
            return out
        for sym, xs, cs in zip(rows["symbol"], X, contrib):
            order = np.argsort(-np.abs(cs))[:n]
            out[sym] = [{"feature": model.feature_columns[i], "value": _clean(xs[i]),
                         "contribution": _clean(cs[i])} for i in order]
            self.meta.set(prefix + sym, out[sym], self.settings.prediction_cache_ttl_s)
        return out

    def predict(self, *, symbols: list[str], date: Any = None, horizon: str = "1w",
                ml_models: list[tuple[str, str | None]] | None = None, request_id: str = "-") -> dict[str, Any]:
        """Raw model probabilities for symbols (raises :class:`MLUnavailable` when ML fails)."""
        day = self.day(date)
        features = self.features_for(day)
        missing = sorted(set(symbols) - set(features["symbol"]))
        if len(missing) == len(set(symbols)):
            raise NotFound(f"no features on {day.date()} for {missing}")
        ml = self.run_ml(ml_models or [], day, features, horizon, request_id)
        if ml.probs is None:
            raise MLUnavailable(ml.status.removeprefix("unavailable: "))
        score = ml.probs.rank(pct=True)
        conf = (2 * score - 1).abs()
        syms = [s for s in dict.fromkeys(symbols) if s in ml.probs.index]
        table = pd.DataFrame({"symbol": syms, "ml_probability": ml.probs.reindex(syms).to_numpy(),
                              "ml_confidence": conf.reindex(syms).to_numpy()})
        self._log(table, ml, features, day, horizon, request_id)
        preds = [{"symbol": s, "probability": _clean(p), "predicted_class": int(p >= 0.5),
                  "confidence": _clean(c)} for s, p, c in zip(syms, table["ml_probability"], table["ml_confidence"])]
        return {"date": day.date().isoformat(), "ml": ml.public(horizon, None), "unknown_symbols": missing,
                "predictions": preds}

    # -- models admin ---------------------------------------------------------------------
    def _known(self, name: str) -> list[dict[str, Any]]:
        versions = self.versions(name)
        if not versions:
            raise NotFound(f"no registered model named {name!r}")
        return versions

    def model_summary(self, name: str) -> dict[str, Any]:
        versions = self._known(name)
        tags = self.version_tags(name)
        challenger, share = self.routing(name)
        return {"name": name, "champion": self.champion(name), "challenger": challenger, "traffic_split": share,
                "versions": [{"version": v["version"], "aliases": v["aliases"], "created": str(v["created"]),
                              "horizon": tags.get(v["version"], {}).get("horizon"),
                              "traffic_split": _float(tags.get(v["version"], {}).get(TRAFFIC_TAG))}
                             for v in versions]}

    def models(self) -> list[dict[str, Any]]:
        names = [self.settings.model_name]
        out = []
        for name in names:
            try:
                out.append(self.model_summary(name))
            except NotFound:
                continue
        return out

    def promote(self, name: str, version: str) -> dict[str, Any]:
        versions = [v["version"] for v in self._known(name)]
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version}")
        previous = self.champion(name)
        if previous == version:
            raise Conflict(f"version {version} is already the champion of {name!r}")
        self.registry.load(name, version)  # refuse to promote an unloadable version
        self.registry.set_champion(name, version)  # also remembers the previous champion (PREVIOUS_TAG)
        self.registry.client.set_model_version_tag(name, version, TRAFFIC_TAG, "0")
        self.invalidate_models(name)
        return {"name": name, "champion": version, "previous": previous}

    def rollback(self, name: str) -> dict[str, Any]:
        versions = [v["version"] for v in self._known(name)]
        current = self.champion(name)
        try:
            previous = self.registry.client.get_registered_model(name).tags.get(PREVIOUS_TAG)
        except Exception:  # noqa: BLE001
            previous = None
        if previous is None or previous not in versions or previous == current:
            older = [v for v in versions if current and v.isdigit() and int(v) < int(current)]
            previous = older[0] if older else None
        if previous is None:
            raise Conflict(f"model {name!r} has no earlier version to roll back to")
        self.registry.set_champion(name, previous)  # remembers ``current`` as the previous champion
        self.invalidate_models(name)
        return {"name": name, "champion": previous, "previous": current}

    def set_traffic(self, name: str, version: str, share: float) -> dict[str, Any]:
        versions = [v["version"] for v in self._known(name)]
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version}")
        if version == self.champion(name):
            raise Conflict("the champion takes the traffic the challenger does not; pick a challenger version")
        for v, tags in self.version_tags(name).items():
            if v != version and _float(tags.get(TRAFFIC_TAG)):
                self.registry.client.set_model_version_tag(name, v, TRAFFIC_TAG, "0")
        self.registry.client.set_model_version_tag(name, version, TRAFFIC_TAG, repr(float(share)))
        self.invalidate_models(name)
        return self.model_summary(name)

    # -- operations -----------------------------------------------------------------------
    def data_sources(self) -> dict[str, Any]:
        """Row counts and freshness of each table of the market store, caches, the log."""
        def q(store: MarketStore):
            counts = store.table_counts()
            fresh = {}
            with store.engine.connect() as conn:
                for table in counts:
                    if "date" in store._columns(table):
                        value = conn.exec_driver_sql(f'SELECT MAX("date") FROM "{table}"').scalar()
                        fresh[table] = pd.Timestamp(value).date().isoformat() if value is not None else None
            return counts, fresh

        counts, fresh = self._read(q)
        try:
            log_counts = self.predlog.counts()
        except Exception as exc:  # noqa: BLE001
            log_counts = {"error": f"serving database unreachable ({exc.__class__.__name__})"}
        return {"sources": [{"name": t, "rows": n, "latest_date": fresh.get(t)} for t, n in counts.items()],
                "prediction_log": log_counts | self.predlog.stats(), "cache": self.cache.stats()}

    def fill_outcomes(self) -> int:
        """Fill ``ml_outcomes`` for logged predictions whose horizon has passed."""
        self.predlog.flush()
        return fill_outcomes(self.predlog.engine,
                             lambda start: self._read(lambda s: s.read_prices(columns=["close"], start=start)))


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def parse_models(items: list[str] | None, default_name: str) -> list[tuple[str, str | None]]:
    """``name``, ``name:version`` or ``version`` -> (name, version or None)."""
    out = []
    for item in items or []:
        if ":" in item:
            name, version = item.split(":", 1)
            out.append((name, version))
        elif item.isdigit():
            out.append((default_name, item))
        else:
            out.append((item, None))
    return out


__all__ = ["HORIZONS", "Conflict", "MLUnavailable", "NotFound", "ServingEngine", "StoreUnavailable", "bucket",
           "parse_models", "public_reason"]
