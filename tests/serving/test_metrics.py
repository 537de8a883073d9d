"""``GET /metrics`` against a real uvicorn server over the session store and model: the Prometheus
text parses, request counts and histogram buckets equal the requests made (per route template,
method and status class), errors are counted per class, ML timings are per model version, cache
counters move with repeated requests, and every app has its own registry."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.conftest import Built, auth, client_for, free_port, make_settings

HTTP = "vfr_http_request_duration_seconds"
ERRORS = "vfr_http_request_errors"


class Scrape:
    """One parsed ``/metrics`` answer: samples by (sample name, sorted labels)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                        for f in self.families.values() for s in f.samples}

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def count(self, route: str, status_class: str, method: str = "GET") -> float:
        """Requests counted by the latency histogram (0 when the series does not exist)."""
        return self.value(f"{HTTP}_count", method=method, route=route, status_class=status_class) or 0.0

    def errors(self, route: str, status_class: str, method: str = "GET") -> float:
        return self.value(f"{ERRORS}_total", method=method, route=route, status_class=status_class) or 0.0

    def buckets(self, name: str, **labels: str) -> dict[float, float]:
        """Cumulative bucket counts of one histogram series, by upper bound (seconds)."""
        out = {}
        for (sample, key), value in self.samples.items():
            d = dict(key)
            if sample == f"{name}_bucket" and all(d.get(k) == v for k, v in labels.items()):
                out[float(d["le"])] = value
        return dict(sorted(out.items()))


def scrape(client: httpx.Client) -> Scrape:
    r = client.get("/metrics")  # no token: scrapers do not send one
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(r.text)


def test_request_counts_and_buckets_equal_the_requests_made(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path)
    with client_for(settings) as client:
        engine = client.app.state.engine
        for _ in range(3):
            assert client.get("/api/health").status_code == 200
        for _ in range(2):
            assert client.get("/api/ml/models").status_code == 401  # no token
        member = auth(settings, "free")
        assert client.get(f"/api/ml/models/{built.model_name}", headers=member).status_code == 200
        assert client.get("/api/ml/models/no-such-model", headers=member).status_code == 404
        assert client.get("/api/stocks/select", params={"top": 0}).status_code == 422
        assert client.get("/no/such/path").status_code == 404
        assert client.post("/api/health").status_code == 405
        first = scrape(client)
        second = scrape(client)

    # counts per route template, method and status class equal the requests made
    assert first.count("/api/health", "2xx") == 3
    assert first.count("/api/ml/models", "4xx") == 2 and first.errors("/api/ml/models", "4xx") == 2
    assert first.count("/api/ml/models/{name}", "2xx") == 1  # the template, never the raw path
    assert first.count("/api/ml/models/{name}", "4xx") == 1 and first.errors("/api/ml/models/{name}", "4xx") == 1
    assert first.count("/api/stocks/select", "4xx") == 1 and first.errors("/api/stocks/select", "4xx") == 1
    assert first.count("<unmatched>", "4xx") == 1  # unknown paths cannot create series
    assert first.count("/api/health", "4xx", method="POST") == 1
    assert "/no/such/path" not in first.text and "no-such-model" not in first.text
    assert first.errors("/api/health", "2xx") == 0 and first.value(f"{ERRORS}_total", method="GET",
                                                                   route="/api/health", status_class="2xx") is None
    # a scrape is counted once it has been answered: the second scrape sees the first
    assert first.count("/metrics", "2xx") == 0 and second.count("/metrics", "2xx") == 1

    # buckets: cumulative, +Inf equals the count, and each equals the requests that took at most
    # that long as timed by the engine's own latency recorder (same clock reading)
    recorded = np.array(engine.latency._data["GET /api/health"]) / 1000.0
    assert len(recorded) == 3
    buckets = first.buckets(HTTP, method="GET", route="/api/health", status_class="2xx")
    assert buckets[float("inf")] == 3
    assert list(buckets.values()) == sorted(buckets.values())
    for le, n in buckets.items():
        assert n == int((recorded <= le).sum()), le
    assert first.value(f"{HTTP}_sum", method="GET", route="/api/health", status_class="2xx") == pytest.approx(
        recorded.sum(), rel=1e-9)


def test_ml_latency_per_model_and_cache_hits_move(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path)
    labels = {"model": built.model_name, "version": built.champion}
    with client_for(settings) as client:
        engine = client.app.state.engine
        before = scrape(client)
        assert before.value("vfr_ml_request_duration_seconds_count", **labels) is None
        assert before.value("vfr_cache_hits_total", cache="data") == 0

        r = client.get("/api/stocks/select", params={"include_ml": True})
        assert r.status_code == 200 and r.json()["ml"]["models"] == [{"name": built.model_name,
                                                                       "version": built.champion}]
        once = scrape(client)
        r = client.get("/api/stocks/select", params={"include_ml": True})
        assert r.status_code == 200
        twice = scrape(client)
        stats = engine.cache.stats()
        rss_kb = _vm_rss_kb()

    # one ML part per request, one whole-date inference (the repeat is served from the cache)
    assert once.value("vfr_ml_request_duration_seconds_count", **labels) == 1
    assert twice.value("vfr_ml_request_duration_seconds_count", **labels) == 2
    assert once.value("vfr_ml_inference_duration_seconds_count", **labels) == 1
    assert twice.value("vfr_ml_inference_duration_seconds_count", **labels) == 1
    assert 0 < twice.value("vfr_ml_inference_duration_seconds_sum", **labels) <= \
        twice.value("vfr_ml_request_duration_seconds_sum", **labels)
    assert twice.value("vfr_models_loaded") == 1

    # the repeated request hits the cache (features, latest date, predictions): hits move, misses do not
    assert once.value("vfr_cache_misses_total", cache="data") > 0
    assert twice.value("vfr_cache_hits_total", cache="data") >= once.value("vfr_cache_hits_total", cache="data") + 3
    assert twice.value("vfr_cache_misses_total", cache="data") == once.value("vfr_cache_misses_total", cache="data")
    assert twice.value("vfr_cache_hits_total", cache="data") == stats["hits"]
    hits, misses = stats["hits"], stats["misses"]
    assert twice.value("vfr_cache_hit_ratio", cache="data") == pytest.approx(hits / (hits + misses))
    assert twice.value("vfr_cache_backend", cache="data", backend="memory") == 1

    if sys.platform.startswith("linux"):  # ProcessCollector reads /proc
        rss = twice.value("process_resident_memory_bytes")
        assert rss is not None and 0.5 * rss_kb * 1024 < rss < 1.5 * rss_kb * 1024


def _vm_rss_kb() -> float:
    if not sys.platform.startswith("linux"):
        return float("nan")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def test_server_errors_are_counted_as_5xx(built: Built, tmp_path: Path) -> None:
    # a market store that refuses connections: the API answers 503
    settings = make_settings(built, tmp_path, store_url=f"postgresql+psycopg://vfr@127.0.0.1:{free_port()}/none")
    with client_for(settings) as client:
        assert client.get("/api/health").status_code == 503
        assert client.get("/api/stocks/select").status_code == 503
        assert client.get("/api/stocks/select").status_code == 503
        s = scrape(client)
    assert s.count("/api/health", "5xx") == 1 and s.errors("/api/health", "5xx") == 1
    assert s.count("/api/stocks/select", "5xx") == 2 and s.errors("/api/stocks/select", "5xx") == 2
    assert s.count("/api/health", "2xx") == 0


def test_each_app_has_its_own_registry_and_metrics_is_open_but_undocumented(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path / "a")
    with client_for(settings) as a, client_for(make_settings(built, tmp_path / "b")) as b:
        for _ in range(4):
            a.get("/api/health")
        assert scrape(a).count("/api/health", "2xx") == 4
        assert scrape(b).count("/api/health", "2xx") == 0
        assert a.app.state.metrics.registry is not b.app.state.metrics.registry
        assert "/metrics" not in a.get("/openapi.json").json()["paths"]
        # a JWT secret is configured, yet the scrape needs no token (restrict it at the network level)
        assert settings.jwt_secret and a.get("/metrics").status_code == 200
    # nothing lands on prometheus_client's global registry
    assert REGISTRY.get_sample_value(f"{HTTP}_count", {"method": "GET", "route": "/api/health",
                                                       "status_class": "2xx"}) is None
