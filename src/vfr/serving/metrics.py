"""Prometheus metrics of the API: ``GET /metrics`` in the Prometheus text format.

Every app has its own :class:`ApiMetrics` (on ``app.state.metrics``) with its own
``prometheus_client.CollectorRegistry``: nothing is registered on the library's global registry,
so two apps in one process (tests, benchmarks) never share or clash over series.

Series (times in seconds, memory in bytes):

``vfr_http_request_duration_seconds`` (histogram; ``method``, ``route``, ``status_class``)
    Wall time of each HTTP request from the first byte handled to the last byte sent. ``route``
    is the route template (``/api/ml/models/{name}``), never the raw path; requests that match
    no route are counted under ``route="<unmatched>"`` so scanners cannot create series.
``vfr_http_request_errors_total`` (counter; ``method``, ``route``, ``status_class``)
    Responses with a 4xx or 5xx status (``status_class`` is ``4xx`` or ``5xx``).
``vfr_ml_inference_duration_seconds`` (histogram; ``model``, ``version``)
    One model scoring every symbol of a date (prediction-cache misses only).
``vfr_ml_request_duration_seconds`` (histogram; ``model``, ``version``)
    The whole ML part of a request that a model answered (model load, prediction or cache read).
``vfr_cache_*`` and ``vfr_prediction_log_*``
    Read from the engine when scraped (:class:`EngineCollector`): hits, misses and hit ratio of
    the feature/prediction cache, Redis errors, entries in process memory, loaded models, and
    the prediction log's written/pending rows and failed flushes.
``vfr_singleflight_computations_total`` (counter; ``kind``) and ``vfr_singleflight_shared_total``
    Expensive cache misses computed (``feat``, ``latest``, ``universe``, ``pred``, ``classic``,
    ``scored``) and the requests that waited for a computation already running instead.
``process_*``
    ``prometheus_client.ProcessCollector``: resident memory (``process_resident_memory_bytes``),
    CPU seconds, open file descriptors (Linux).

Each uvicorn worker process has its own registry: with several workers behind one port a
scrape sees one worker only, so scrape the workers separately (or run one worker per pod).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Upper bounds (seconds) of the latency buckets: cached answers take about a millisecond,
#: cold ML requests (model load, whole-date prediction) seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "<unmatched>"
#: The classic text format, which every Prometheus version reads (metric names here need no escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def status_class(status: int) -> str:
    """``2xx``, ``3xx``, ``4xx`` or ``5xx`` (``1xx`` and anything odd as its first digit + ``xx``)."""
    return f"{status // 100}xx"


def route_label(scope: dict[str, Any]) -> str:
    """Route template of an ASGI request (``<unmatched>`` when no route matched)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class EngineCollector(Collector):
    """Reads the serving engine's cache and prediction-log statistics at scrape time.

    Parameters
    ----------
    engine : ServingEngine
        Its ``cache.stats()``, ``models.loaded()`` and ``ops.log_stats()`` are read per scrape.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        stats = self.engine.cache.stats()
        info = GaugeMetricFamily("vfr_cache_backend", "Backend now serving the cache (1 for the one in use).",
                                 labels=["cache", "backend"])
        info.add_metric(["data", str(stats["backend"])], 1.0)
        yield info
        for name, key, doc in (("vfr_cache_hits", "hits", "Feature/prediction cache lookups that found a value."),
                               ("vfr_cache_misses", "misses", "Feature/prediction cache lookups that found nothing."),
                               ("vfr_cache_redis_errors", "redis_errors",
                                "Redis calls that failed (then memory serves).")):
            family = CounterMetricFamily(name, doc, labels=["cache"])
            family.add_metric(["data"], float(stats[key]))
            yield family
        ratio = GaugeMetricFamily("vfr_cache_hit_ratio", "Hits / (hits + misses) since start (NaN before any lookup).",
                                  labels=["cache"])
        lookups = stats["hits"] + stats["misses"]
        ratio.add_metric(["data"], stats["hits"] / lookups if lookups else float("nan"))
        yield ratio
        entries = GaugeMetricFamily("vfr_cache_memory_entries", "Entries held in process memory.", labels=["cache"])
        entries.add_metric(["data"], float(stats["memory_entries"]))
        yield entries
        flight = getattr(self.engine, "flight", None)
        if flight is not None:
            computed = CounterMetricFamily(
                "vfr_singleflight_computations", "Expensive cache misses computed (features, latest date, universe, "
                "predictions, rankings of a date), by kind; concurrent requests for one key share one.",
                labels=["kind"])
            for kind, n in sorted(flight.computed.items()):
                computed.add_metric([kind], float(n))
            yield computed
            yield CounterMetricFamily("vfr_singleflight_shared",
                                      "Requests that waited for another's computation instead of computing.",
                                      value=float(flight.shared))
        yield GaugeMetricFamily("vfr_models_loaded", "Model versions held in the model LRU cache.",
                                value=float(len(self.engine.models.loaded())))
        log = self.engine.ops.log_stats()
        yield CounterMetricFamily("vfr_prediction_log_written", "Prediction rows written to the serving database.",
                                  value=float(log["written"]))
        yield GaugeMetricFamily("vfr_prediction_log_pending", "Prediction rows buffered, not yet written.",
                                value=float(log["pending"]))
        yield CounterMetricFamily("vfr_prediction_log_failed_flushes", "Flushes of the prediction log that failed.",
                                  value=float(log["failed_flushes"]))


class ApiMetrics:
    """The metrics of one app, on their own registry.

    Parameters
    ----------
    engine : ServingEngine, optional
        When given, its caches and prediction log are exported at scrape time and its ML
        timings (``engine.ml_observers``) are observed.
    process : bool
        Export ``process_*`` series (RSS, CPU, file descriptors) of this process.
    """

    def __init__(self, engine: Any = None, *, process: bool = True) -> None:
        self.registry = CollectorRegistry()
        http = ["method", "route", "status_class"]
        self.requests = Histogram("vfr_http_request_duration_seconds", "HTTP request latency in seconds.", http,
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter("vfr_http_request_errors", "HTTP responses with a 4xx or 5xx status.", http,
                              registry=self.registry)
        model = ["model", "version"]
        self.ml_inference = Histogram("vfr_ml_inference_duration_seconds",
                                      "One model scoring every symbol of a date, in seconds (cache misses).", model,
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ml_request = Histogram("vfr_ml_request_duration_seconds",
                                    "The ML part of a request answered by a model, in seconds.", model,
                                    buckets=LATENCY_BUCKETS, registry=self.registry)
        self._window_lock = threading.Lock()
        self._window = [0, 0]  # requests and 5xx answers since the last take_window()
        if process:
            ProcessCollector(registry=self.registry)
        if engine is not None:
            self.registry.register(EngineCollector(engine))
            engine.ml_observers.append(self.observe_ml)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request (``seconds`` of wall time) and, for 4xx/5xx, one error."""
        method = method if method in _METHODS else "OTHER"
        cls = status_class(status)
        self.requests.labels(method, route, cls).observe(seconds)
        if status >= 400:
            self.errors.labels(method, route, cls).inc()
        with self._window_lock:
            self._window[0] += 1
            self._window[1] += status >= 500

    def take_window(self) -> tuple[int, int]:
        """Requests and 5xx answers since the previous call (the service-alert window)."""
        with self._window_lock:
            out = (self._window[0], self._window[1])
            self._window = [0, 0]
        return out

    def observe_ml(self, event: str, name: str, version: str, seconds: float) -> None:
        """ML timing from the engine: ``event`` is ``inference`` or ``request``."""
        target = self.ml_inference if event == "inference" else self.ml_request if event == "request" else None
        if target is not None:
            target.labels(name, str(version)).observe(seconds)

    def render(self) -> bytes:
        """Every series in the Prometheus text exposition format (version 0.0.4)."""
        return generate_latest(self.registry)


log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus scrape endpoint (text format 0.0.4).

    Unauthenticated and not rate limited, because Prometheus scrapers do not send bearer tokens;
    it is left out of the OpenAPI schema (an operations endpoint, not part of the client API).
    The series carry no user data (route templates, model versions, counts and timings), but they
    do reveal traffic volumes: deployments should expose ``/metrics`` only to the monitoring
    network (ingress rule or a separate internal listener), as is usual for Prometheus targets.
    """
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)


def service_alert_values(metrics: ApiMetrics, latency: Any, min_requests: int = 20) -> dict[str, float]:
    """``api_error_rate`` (5xx share of the requests since the last call; NaN under
    ``min_requests``) and ``api_p95_latency_ms`` (worst route's p95 over its recent calls)."""
    total, errors = metrics.take_window()
    p95 = [v["p95_ms"] for v in latency.summary().values()]
    return {"api_error_rate": errors / total if total >= min_requests else float("nan"),
            "api_p95_latency_ms": max(p95) if p95 else float("nan")}


class ServiceWatch:
    """Evaluates the API alert rules every ``interval_s`` in a daemon thread and publishes what fires.

    The rules are the ``api_*`` ones of :data:`vfr.monitoring.DEFAULT_ALERT_RULES` (5xx share
    > 5%, p95 latency > 1 s); delivery and de-duplication go through
    :class:`vfr.monitoring.AlertManager` (log file, webhook). A failing check is logged and
    never reaches a request.
    """

    def __init__(self, settings: Any, metrics: ApiMetrics, latency: Any, db: Any, interval_s: float) -> None:
        self.settings, self.metrics, self.latency, self.db, self.interval_s = settings, metrics, latency, db, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> list[Any]:
        """One evaluation: returns the alerts delivered."""
        from vfr.monitoring import DEFAULT_ALERT_RULES, AlertManager, evaluate_rules

        rules = [r for r in DEFAULT_ALERT_RULES if r.metric.startswith("api_")]
        alerts = evaluate_rules(service_alert_values(self.metrics, self.latency), rules, scope="api")
        return AlertManager.from_settings(self.settings, self.db).publish(alerts) if alerts else []

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - monitoring must never take the API down
                log.warning("service alert check failed: %s", exc.__class__.__name__)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vfr-service-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
