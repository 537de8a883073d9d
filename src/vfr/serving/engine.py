"""The serving engine: the services behind the routes, composed once per app.

=====================  ===========================================================================
service                what it does
=====================  ===========================================================================
``engine.features``    :class:`~vfr.serving.features.FeatureService`: features, universe and
                       tables of the market store for a date, cached for ``feature_cache_ttl_s``
``engine.models``      :class:`~vfr.serving.models.ModelService`: registry, champion and A/B
                       routing, the LRU of ``model_cache_size`` loaded models, whole-date
                       predictions (cached for ``prediction_cache_ttl_s``), promote/rollback/traffic
``engine.ranking``     :class:`~vfr.serving.ranking.RankingService`: classic and ML selection with
                       :func:`vfr.scoring.select`, analysis with explanations, raw predictions
``engine.ops``         :class:`~vfr.serving.operations.OpsService`: prediction log, outcomes,
                       retraining runs, drift and alerts in the operations database
``engine.predlog``     :class:`~vfr.serving.predlog.PredictionLogger`: buffered writer of served
                       predictions
=====================  ===========================================================================

Caches live in Redis when ``cache_url`` is set, in process memory otherwise. ML can never break
the classic answer: any failure (no model, unreadable artifact, missing features, a prediction
error, the ``ml_timeout_ms`` budget running out) yields the classic ranking with ``ml.status``
saying what happened, after the previous model versions were tried.

:class:`ServingEngine` builds the services and holds them as ``features``, ``models``,
``ranking`` and ``ops``; callers use the service they need (``engine.ranking.rank(...)``).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from vfr.config import Settings
from vfr.serving.cache import MemoryTTL, SingleFlight, TTLCache
from vfr.serving.earnings import EarningsService
from vfr.serving.errors import public_reason
from vfr.serving.features import FeatureService
from vfr.serving.models import ModelService
from vfr.serving.operations import OpsService
from vfr.serving.predlog import PredictionLogger
from vfr.serving.ranking import RankingService
from vfr.serving.retrain_worker import RetrainingWorkers, WorkerJob

log = logging.getLogger(__name__)


class LatencyRecorder:
    """Latencies per route (last 20,000 calls each) and their p50/p95/p99."""

    def __init__(self, keep: int = 20_000) -> None:
        self.keep = keep
        self._data: dict[str, deque[float]] = {}

    def record(self, name: str, ms: float) -> None:
        """Add one call of ``name`` that took ``ms`` milliseconds."""
        series = self._data.get(name)
        if series is None:
            series = self._data.setdefault(name, deque(maxlen=self.keep))
        series.append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per route: ``count``, ``p50_ms``, ``p95_ms``, ``p99_ms``."""
        out = {}
        for name, series in list(self._data.items()):
            values = np.fromiter(list(series), dtype=float)
            if values.size:
                p50, p95, p99 = np.percentile(values, [50, 95, 99])
                out[name] = {"count": int(values.size), "p50_ms": round(float(p50), 3),
                             "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3)}
        return out


class ServingEngine:
    """The serving services, their shared caches and the prediction log.

    Parameters
    ----------
    settings : Settings
    registry : ModelRegistry, optional
        Default ``ModelRegistry.from_settings(settings)`` (created on first use).
    log_flush_interval_s : float
        Background flush period of the prediction log.

    Attributes
    ----------
    features : FeatureService
    models : ModelService
    ranking : RankingService
    ops : OpsService
    earnings : EarningsService
        The early-signal model (champion -> previous -> rule -> none), per date.
    predlog : PredictionLogger
    retraining : RetrainingWorkers
        Worker processes of API-triggered retraining runs (the API's process never trains).
    cache : TTLCache
        Features and predictions (Redis when configured).
    meta : MemoryTTL
        Process-local cache of registry answers and whole-universe rankings.
    flight : SingleFlight
        Expensive cache misses (features, predictions, rankings of a date) in progress: each is
        computed once however many requests ask for it at the same time (``flight.computed``).
    latency : LatencyRecorder
        Per-route latencies (filled by the app's middleware).
    """

    def __init__(self, settings: Settings, registry: Any = None, log_flush_interval_s: float = 1.0) -> None:
        self.settings = settings
        self.cache = TTLCache(settings.cache_url, settings.cache_prefix)
        self.meta = MemoryTTL()
        self.flight = SingleFlight()
        self.latency = LatencyRecorder()
        self.predlog = PredictionLogger(settings.resolved_serving_db_url, spill_dir=settings.home_dir / "predlog-spill",
                                        flush_interval_s=log_flush_interval_s)
        self.features = FeatureService(settings, self.cache, self.flight)
        self.models = ModelService(settings, self.cache, self.meta, registry, flight=self.flight)
        self.ranking = RankingService(settings, self.features, self.models, self.predlog, self.meta, self.flight)
        self.earnings = EarningsService(settings, self.features, self.models, self.predlog, self.meta)
        self.ops = OpsService(self.predlog, self.features, self.cache, lock_ttl_s=settings.retrain_lock_ttl_s)
        self.retraining = RetrainingWorkers(settings, on_exit=self._retraining_done)

    def _retraining_done(self, job: WorkerJob) -> None:
        """A retraining worker exited: drop cached registry answers; fail its run if it died."""
        self.models.invalidate(self.settings.model_name)
        if job.result is None:
            why = self.ops.reap_retraining()
            log.error("retraining worker %d died (exit code %s)%s", job.pid, job.returncode,
                      f"; its run was marked failed ({why})" if why else "")

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Flush the prediction log, stop the workers and release the store."""
        self.predlog.close()
        self.models.close()
        self.features.close()

    def warmup(self) -> bool:
        """Load the latest feature date, its features, the universe, the champion (and the
        challenger of an A/B split) of the served model and their predictions into the caches.

        The models are loaded outside the ``ml_timeout_ms`` budget of a request (a model that
        takes longer than the budget to load would otherwise never answer a first request).
        Best effort: failures are logged, never raised; requests then load what they need, and
        ML answers ``unavailable`` while there is no champion.

        Returns
        -------
        bool
            True when the features and every routed model were loaded.
        """
        try:
            day = self.features.latest_date()
            self.features.universe()
            features = self.features.features_for(day)
        except Exception as exc:  # noqa: BLE001
            log.warning("warm-up: no features loaded (%s)", public_reason(exc))
            return False
        complete = True
        name = self.settings.model_name
        try:
            champion = self.models.champion(name)
            if champion is None:
                log.warning("warm-up: model %r has no champion; ML answers are unavailable until one is promoted",
                            name)
                complete = False
            challenger = self.models.routing(name)[0] if champion is not None else None
            for version in [v for v in (champion, challenger) if v is not None]:
                self.models.predict_date(self.models.load(name, version), day, features)
        except Exception as exc:  # noqa: BLE001
            log.warning("warm-up: model %r not loaded (%s)", name, public_reason(exc))
            complete = False
        try:
            self.ranking.rank(date=day, include_ml=True, request_id="warmup", log_rows=False)
        except Exception as exc:  # noqa: BLE001
            log.warning("warm-up: ranking not cached (%s)", public_reason(exc))
            complete = False
        return complete

    @property
    def ml_observers(self) -> list[Any]:
        """ML timing callbacks ``(event, model name, version, seconds)`` (see :data:`vfr.serving.models.MLObserver`)."""
        return self.models.observers


def serve_day(settings: Settings, day: pd.Timestamp, request_id: str) -> tuple[int, str | None]:
    """Serve the whole universe with ML on ``day`` as the API would, with a fresh engine, and write
    its predictions to the log before returning (one simulated day of :func:`vfr.retraining.replay.replay`).

    Returns
    -------
    tuple of (int, str or None)
        Prediction rows handed to the log (the log's unique key skips those of an earlier
        serve of the same day and model), and the ML status of the answer.
    """
    engine = ServingEngine(settings)  # a fresh engine per day: no cache from "yesterday" leaks
    try:
        full = engine.ranking.rank(date=day, include_ml=True, request_id=request_id)
        engine.predlog.flush()
        return engine.predlog.written, full.get("ml", {}).get("status")
    finally:
        engine.close()


__all__ = ["LatencyRecorder", "ServingEngine", "serve_day"]
