"""Failure behaviour: ML failing in every way, Redis down, PostgreSQL down (as the market store and
as the prediction log). Nothing is mocked: broken models are real corrupted artifacts, outages
are closed ports or a real TCP proxy taken down."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL
from tests.opsdb.test_opsdb import HEAD as OPSDB_HEAD
from tests.serving.conftest import REDIS_URL, Built, TcpProxy, auth, client_for, make_settings, pg_target
from vfr.config import Settings
from vfr.data import MarketStore
from vfr.ml import ModelRegistry
from vfr.serving import ServingEngine

DOWN_PG = "postgresql+psycopg://postgres@127.0.0.1:1/test"


def own_registry(built: Built, tmp_path: Path, n: int = 2, **overrides) -> tuple[Settings, ModelRegistry, list[str]]:
    """A private registry holding ``n`` versions (copies of the session model); the last is champion."""
    settings = make_settings(built, tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'own-mlflow.db'}",
                             **overrides)
    src = ModelRegistry(built.tracking_uri).load(built.model_name)
    registry = ModelRegistry.from_settings(settings)
    versions = [registry.register(built.model_name, src.model, params={}, metrics={}, metadata=src.metadata)
                for _ in range(n)]
    registry.set_champion(built.model_name, versions[-1])
    return settings, registry, versions


def corrupt(registry: ModelRegistry, name: str, version: str) -> None:
    """Overwrite the model file of a registered version with garbage."""
    source = registry.client.get_model_version(name, version).source
    folder = Path(urlparse(source).path)
    if not folder.exists():  # the run's artifact folder
        run = registry.client.get_run(registry.client.get_model_version(name, version).run_id)
        folder = Path(urlparse(run.info.artifact_uri).path) / "model"
    metadata = ("MLmodel", "requirements.txt")  # MLflow's, and VFR's own vfr_*.json (model card, checksums)
    files = [p for p in folder.rglob("*") if p.is_file() and p.name not in metadata
             and not p.name.startswith("vfr_") and p.suffix != ".yaml"]
    assert files, f"no model file under {folder}"
    for p in files:
        p.write_bytes(b"\x00garbage\x00" * 10)


def classic(client: httpx.Client) -> list[dict]:
    return client.get("/api/stocks/select").json()["results"]


def _no_leak(text: str) -> None:
    for needle in ("Traceback", "/tmp", "/work", "site-packages", "sqlite:", "file:"):
        assert needle not in text, needle


def test_no_model_registered_gives_the_classic_answer(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path, model_name="no-such-model")
    with client_for(settings) as client:
        r = client.get("/api/stocks/select", params={"include_ml": True})
        assert r.status_code == 200
        body = r.json()
        assert body["ml"]["status"].startswith("unavailable:") and "champion" in body["ml"]["status"]
        assert body["results"] == classic(client)
        _no_leak(r.text)
        a = client.get("/api/stocks/analyze", params={"symbols": "AAPL"}).json()
        assert a["results"][0]["ml_prediction"] is None and a["ml"]["status"].startswith("unavailable:")


def test_corrupt_champion_falls_back_to_the_previous_version(built: Built, tmp_path: Path) -> None:
    settings, registry, versions = own_registry(built, tmp_path)
    corrupt(registry, built.model_name, versions[-1])
    with client_for(settings) as client:
        r = client.get("/api/stocks/select", params={"include_ml": True})
        body = r.json()
        assert body["ml"]["models"] == [{"name": built.model_name, "version": versions[0]}]
        assert body["ml"]["status"].startswith("ok (fallback:") and f"v{versions[-1]}" in body["ml"]["status"]
        assert "unreadable" in body["ml"]["status"] or "corrupt" in body["ml"]["status"]
        assert body["results"][0]["ml_probability"] is not None
        _no_leak(r.text)


def test_all_versions_corrupt_gives_the_classic_answer(built: Built, tmp_path: Path) -> None:
    settings, registry, versions = own_registry(built, tmp_path)
    for v in versions:
        corrupt(registry, built.model_name, v)
    with client_for(settings) as client:
        body = client.get("/api/stocks/select", params={"include_ml": True}).json()
        assert body["ml"]["status"].startswith("unavailable:")
        assert all(f"v{v}" in body["ml"]["status"] for v in versions)  # every version was tried
        assert body["results"] == classic(client)


def test_ml_over_its_time_budget_gives_the_classic_answer(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path, ml_timeout_ms=1)
    with client_for(settings) as client:  # cold: loading the model alone takes far longer than 1 ms
        t0 = time.perf_counter()
        body = client.get("/api/stocks/select", params={"include_ml": True}).json()
        assert time.perf_counter() - t0 < 5
        assert body["ml"]["status"] == "unavailable: timeout: ML did not answer within the 1 ms budget"
        assert body["results"] == classic(client)


def test_features_missing_from_the_store_give_the_classic_answer(built: Built, tmp_path: Path) -> None:
    model = ModelRegistry(built.tracking_uri).load(built.model_name)
    dropped = next(c for c in model.feature_columns if not c.endswith("_rank"))
    url = f"duckdb:///{tmp_path / 'partial.duckdb'}"
    with MarketStore(built.store_url) as src, MarketStore(url) as dst:
        dst.replace_table("features", src.read_table("features", start=built.latest).drop(columns=[dropped]))
        dst.write_universe(src.read_universe())
    settings = make_settings(built, tmp_path, store_url=url)
    with client_for(settings) as client:
        body = client.get("/api/stocks/select", params={"include_ml": True}).json()
        assert body["ml"]["status"].startswith("unavailable:") and dropped in body["ml"]["status"]
        assert body["results"] == classic(client)


def test_caches_live_in_redis_and_are_shared(built: Built, tmp_path: Path, redis_prefix: str) -> None:
    import redis

    settings = make_settings(built, tmp_path, cache_url=REDIS_URL, cache_prefix=redis_prefix)
    with client_for(settings) as client:
        first = client.get("/api/stocks/select", params={"include_ml": True}).json()
        assert first["ml"]["status"] == "ok"
        stats = client.get("/api/admin/data-sources", headers=auth(settings, "admin")).json()["cache"]
        assert stats["backend"] == "redis"
    r = redis.Redis.from_url(REDIS_URL)
    keys = {k.decode() for k in r.scan_iter(f"{redis_prefix}:*")}
    day = str(built.latest.date())
    assert f"{redis_prefix}:feat:{day}" in keys
    assert f"{redis_prefix}:pred:{built.model_name}:{built.champion}:{day}" in keys
    ttl = r.pttl(f"{redis_prefix}:pred:{built.model_name}:{built.champion}:{day}")
    assert 0 < ttl <= settings.prediction_cache_ttl_s * 1000
    assert 0 < r.pttl(f"{redis_prefix}:feat:{day}") <= settings.feature_cache_ttl_s * 1000
    # a second server (another process would do the same) reads features and predictions from Redis
    with client_for(settings) as other:
        again = other.get("/api/stocks/select", params={"include_ml": True}).json()
        assert again["results"] == first["results"]
        assert other.app.state.engine.cache.hits >= 2


def test_redis_down_serves_from_process_memory(built: Built, tmp_path: Path, shared_api: httpx.Client) -> None:
    settings = make_settings(built, tmp_path, cache_url="redis://127.0.0.1:1/0")
    with client_for(settings) as client:
        for _ in range(2):
            r = client.get("/api/stocks/select", params={"include_ml": True})
            assert r.status_code == 200 and r.json()["ml"]["status"] == "ok"
        expected = shared_api.get("/api/stocks/select", params={"include_ml": True}).json()["results"]
        assert r.json()["results"] == expected
        health = client.get("/api/health").json()
        assert health["cache"] == "memory (redis down)" and health["status"] == "ok"
        assert client.app.state.engine.cache.stats()["redis_errors"] >= 1



def test_a_redis_outage_keeps_hot_keys_answering_from_the_local_copy(redis_prefix: str) -> None:
    """Redis cut (a real TCP proxy taken down): keys this process has seen keep answering from
    its local copy until their own TTL ends, so an outage does not make every hot key a miss
    (the API's stall after a Redis kill); while Redis is up the copy follows other processes'
    changes within ``l1_ttl_s``, and a key deleted in Redis is dropped locally too."""
    from vfr.serving.cache import TTLCache

    proxy = TcpProxy(("127.0.0.1", 6379))
    proxy.start()
    cache = TTLCache(f"redis://127.0.0.1:{proxy.port}/0", redis_prefix, retry_after_s=0.5, l1_ttl_s=0.2)
    other = TTLCache(REDIS_URL, redis_prefix, l1_ttl_s=0.2)  # another worker, Redis always reachable
    try:
        cache.set("hot", {"v": 1}, 30)
        other.set("hot", {"v": 2}, 30)
        assert cache.get("hot") == {"v": 1}  # the fresh local copy answers without Redis
        time.sleep(0.3)
        assert cache.get("hot") == {"v": 2}  # refreshed from Redis once l1_ttl_s has passed
        other.set("brief", "b", 0.8)
        assert cache.get("brief") == "b"     # copied with Redis's remaining TTL
        time.sleep(0.3)
        proxy.stop()
        assert cache.get("hot") == {"v": 2} and cache.backend == "memory (redis down)"
        assert cache.get("never-seen") is None
        time.sleep(0.7)
        assert cache.get("brief") is None    # its own TTL ended: not served stale
        assert cache.get("hot") == {"v": 2}
        proxy.start()
        other.invalidate("hot")
        time.sleep(0.6)                      # the breaker lets a probe through again
        assert cache.get("hot") is None and cache.backend == "redis"
    finally:
        proxy.stop()


def test_redis_cut_under_load_fails_fast_shows_in_health_and_recovers(built: Built, tmp_path: Path,
                                                                       redis_prefix: str) -> None:
    """Redis behind a real TCP proxy is frozen (connections hang: only timeouts end the calls), then
    refused, then brought back, while two clients keep sending requests: all answer 200, none of
    those in flight during the outage is slower than twice the slowest before it (at least 1 s:
    a hang would last until the clients' 30 s timeout), /api/health reports the outage (status
    still 200) and then the recovery. Relative, not absolute, times: the machine may be busy."""
    import threading

    import redis

    proxy = TcpProxy(("127.0.0.1", 6379))
    proxy.start()
    settings = make_settings(built, tmp_path, cache_url=f"redis://127.0.0.1:{proxy.port}/0", cache_prefix=redis_prefix)
    with MarketStore(built.store_url) as store:
        dates = [str(d.date()) for d in store.read_table("features", columns=["date"])["date"].drop_duplicates()
                 .nlargest(40)]
    timings: list[tuple[float, float, int, str]] = []  # start (monotonic), seconds, status, path
    stop = threading.Event()

    def load(k: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            i = k
            while not stop.is_set():
                i += 1
                path, params = (("/api/stocks/select", {"include_ml": True, "top": 5}) if i % 3 == 0 else
                                ("/api/stocks/analyze", {"symbols": "AAPL"}) if i % 3 == 1 else
                                ("/api/stocks/select", {"date": dates[i % len(dates)], "top": 3}))
                t0 = time.monotonic()
                status = c.get(path, params=params).status_code
                timings.append((t0, time.monotonic() - t0, status, path))

    def health() -> dict:
        r = client.get("/api/health")
        assert r.status_code == 200, r.text
        return r.json()

    try:
        with client_for(settings) as client:
            base = str(client.base_url)
            app = client.app  # type: ignore[attr-defined]
            assert client.get("/api/stocks/select", params={"include_ml": True}).status_code == 200
            assert health()["cache"] == "redis" and app.state.limiter.backend == "redis"
            workers = [threading.Thread(target=load, args=(k,), daemon=True) for k in range(2)]
            for w in workers:
                w.start()
            time.sleep(1.0)
            before = len(timings)
            outage_start = time.monotonic()
            proxy.hang()  # frozen Redis: connects and reads only end by timeout
            time.sleep(2.0)
            assert health()["cache"] == "memory (redis down)"
            assert app.state.limiter.backend == "memory (redis down)"
            proxy.stop()  # dead Redis: connections refused
            time.sleep(1.5)
            assert health()["cache"] == "memory (redis down)"
            during = len(timings) - before
            proxy.resume()
            proxy.start()
            outage_end = time.monotonic()
            deadline = time.monotonic() + app.state.engine.cache.retry_after_s + 5
            while health()["cache"] != "redis":
                assert time.monotonic() < deadline, "the cache did not go back to Redis"
                time.sleep(0.2)
            time.sleep(1.0)  # requests after the recovery reach Redis again
            stop.set()
            for w in workers:
                w.join(30)
            assert app.state.limiter.backend == "redis"
            assert app.state.engine.cache.stats()["redis_errors"] >= 1
    finally:
        stop.set()
        proxy.stop()
    assert during >= 10, f"only {during} requests were served during the outage"
    baseline = max(d for t0, d, _, _ in timings if t0 + d < outage_start)
    in_outage = [(d, path) for t0, d, _, path in timings if t0 < outage_end and t0 + d > outage_start]
    slowest = max(in_outage)
    assert slowest[0] < max(1.0, 2 * baseline), \
        f"slowest request during the outage {slowest[1]}: {slowest[0]:.2f} s (slowest before: {baseline:.2f} s)"
    assert {status for _, _, status, _ in timings} == {200}
    r = redis.Redis.from_url(REDIS_URL)
    assert list(r.scan_iter(f"{redis_prefix}:limits*")), "rate-limit counters are back in Redis"
    r.close()


@pytest.fixture(scope="module")
def pg_store(built: Built) -> str:
    """The session store copied into its own PostgreSQL schema (dropped afterwards)."""
    schema = f"vfr_serving_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # pragma: no cover
        pytest.skip(f"PostgreSQL not reachable: {exc.__class__.__name__}")
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    with MarketStore(built.store_url) as src, MarketStore(url) as dst:
        dst.replace_table("features", src.read_table("features"))
        dst.replace_table("prices", src.read_table("prices"))
        dst.write_universe(src.read_universe())
    yield url
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


@pytest.mark.postgres
def test_postgresql_as_market_store_and_prediction_log(built: Built, tmp_path: Path, pg_store: str, pg_url: str,
                                                       shared_api: httpx.Client) -> None:
    settings = make_settings(built, tmp_path, store_url=pg_store, serving_db_url=pg_url)
    with client_for(settings) as client:
        body = client.get("/api/stocks/select", params={"include_ml": True, "top": 5}).json()
        expected = shared_api.get("/api/stocks/select", params={"include_ml": True, "top": 5}).json()
        assert body["ml"]["status"] == "ok" and body["results"] == expected["results"]
        client.app.state.engine.predlog.flush()
    with sa.create_engine(pg_url).connect() as conn:
        rows = conn.exec_driver_sql("SELECT symbol, model_version, horizon, predicted_class, probability, "
                                    "confidence_level, features FROM ml_predictions ORDER BY probability").all()
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert version == OPSDB_HEAD  # migrated to the latest revision (the one place it is named)
    assert {r.symbol for r in rows} == {r["symbol"] for r in body["results"]}
    assert all(r.model_version == built.champion and r.horizon == "1w" for r in rows)
    assert all(r.predicted_class == int(r.probability >= 0.5) for r in rows)
    assert all(r.confidence_level in {"HIGH", "MEDIUM", "LOW"} and r.features.startswith("{") for r in rows)


def test_postgresql_down_answers_503_with_a_clear_body(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path, store_url=DOWN_PG)
    with client_for(settings) as client:
        for path, params in (("/api/stocks/select", {}), ("/api/stocks/select", {"include_ml": True}),
                             ("/api/stocks/analyze", {"symbols": "AAPL"})):
            r = client.get(path, params=params)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["error"] == "store_unavailable"
            assert body["detail"] == "the market store is not reachable; try again later"
            assert r.headers["retry-after"] == "5"
            _no_leak(r.text)
            assert "127.0.0.1" not in r.text and "postgres" not in r.text.lower()
        r = client.get("/api/admin/data-sources", headers=auth(settings, "admin"))
        assert r.status_code == 503 and r.json()["error"] == "store_unavailable"
        r = client.get("/api/health")
        assert r.status_code == 503 and r.json()["store"] == "unreachable"


def test_operations_database_down_answers_503_and_serving_goes_on(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path, serving_db_url=DOWN_PG)
    with client_for(settings) as client:
        assert client.get("/api/stocks/select", params={"include_ml": True}).status_code == 200
        for method, path, tier in (("GET", "/api/ml/retraining/status", "free"), ("GET", "/api/ml/model/info", "free"),
                                   ("POST", "/api/admin/outcomes", "admin"),
                                   ("POST", "/api/ml/retraining/trigger", "admin")):
            r = client.request(method, path, headers=auth(settings, tier), json={} if method == "POST" else None)
            assert r.status_code == 503, (path, r.text)
            assert r.json() | {"request_id": None} == {"error": "store_unavailable", "request_id": None,
                                                       "detail": "the operations database is not reachable; try "
                                                                 "again later"}
            _no_leak(r.text)
            assert "127.0.0.1" not in r.text and "postgres" not in r.text.lower()
        r = client.get("/api/dashboard/summary", headers=auth(settings, "free"))
        assert r.status_code == 200, r.text
        body = r.json()
        down = "the serving database could not be read (see the server log)"
        assert body["drift"]["message"] == body["alerts"]["message"] == body["retraining"]["message"] == down
        assert body["selection"]["rows"] and body["retraining"]["schedule"]  # the other sections still show
        sources = client.get("/api/admin/data-sources", headers=auth(settings, "admin")).json()
        assert sources["prediction_log"]["error"].startswith("serving database unreachable")


@pytest.mark.postgres
def test_prediction_logs_are_buffered_while_postgresql_is_down(built: Built, tmp_path: Path, pg_url: str) -> None:
    proxy = TcpProxy(pg_target())
    proxy.start()
    schema_opts = pg_url.split("?", 1)[1]
    log_url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?{schema_opts}"
    settings = make_settings(built, tmp_path, serving_db_url=log_url)
    engine = ServingEngine(settings, log_flush_interval_s=0.2)
    try:
        with client_for(settings, engine=engine) as client:
            client.get("/api/stocks/select", params={"include_ml": True, "top": 3})
            _wait(lambda: engine.predlog.pending == 0 and engine.predlog.written == 3)
            proxy.stop()  # PostgreSQL becomes unreachable for the log
            r = client.get("/api/stocks/select", params={"include_ml": True, "top": 8})
            assert r.status_code == 200 and r.json()["ml"]["status"] == "ok"  # serving goes on
            a = client.get("/api/stocks/analyze", params={"symbols": "KO,PG"})
            assert a.status_code == 200
            first = {row["symbol"] for row in r.json()["results"][:3]}
            served = {row["symbol"] for row in r.json()["results"]} | {"KO", "PG"}
            _wait(lambda: engine.predlog.failures >= 1)
            assert engine.predlog.pending == len(served - first)  # nothing dropped, nothing written twice
            health = client.get("/api/ml/health", headers=auth(settings, "free")).json()
            assert health["status"] == "degraded" and health["prediction_log"]["pending"] > 0
            assert "127.0.0.1" not in str(health)
            proxy.start()  # PostgreSQL is back: the buffer drains by itself
            _wait(lambda: engine.predlog.pending == 0, timeout=20)
    finally:
        proxy.stop()
    with sa.create_engine(pg_url).connect() as conn:
        logged = {r[0] for r in conn.exec_driver_sql("SELECT symbol FROM ml_predictions").all()}
    assert logged == served


def test_unwritten_logs_are_spilled_at_shutdown_and_written_at_next_start(built: Built, tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    settings = make_settings(built, tmp_path, serving_db_url=f"sqlite:///{tmp_path / 'missing' / 'x' / 'log.db'}")
    engine = ServingEngine(settings, log_flush_interval_s=0)
    (tmp_path / "missing").rename(tmp_path / "gone")  # the log database's folder disappears
    (tmp_path / "missing").write_text("not a folder")  # ...and cannot be recreated
    with client_for(settings, engine=engine) as client:
        assert client.get("/api/stocks/select", params={"include_ml": True, "top": 4}).status_code == 200
        assert engine.predlog.pending == 4
    spills = list((settings.home_dir / "predlog-spill").glob("*.jsonl"))
    assert len(spills) == 1
    restarted = ServingEngine(make_settings(built, tmp_path, serving_db_url=f"sqlite:///{db}"),
                              log_flush_interval_s=0)
    assert restarted.predlog.pending == 4
    restarted.predlog.flush()
    assert restarted.predlog.counts()["ml_predictions"] == 4
    assert not list((settings.home_dir / "predlog-spill").glob("*.jsonl"))
    restarted.close()


def _wait(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def _every_route_answers_documented_statuses(client: httpx.Client, settings: Settings,
                                             built: Built) -> dict[tuple[str, str], int]:
    """Call every route of the OpenAPI schema (bodies from each field's first documented
    example) and assert none answers 500 or a status it does not document; returns
    (method, path) -> status."""
    spec = client.get("/openapi.json").json()

    def example_body(op: dict) -> dict | None:
        ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if "$ref" not in ref:
            return None
        schema = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]
        return {k: v["examples"][0] for k, v in schema["properties"].items() if "examples" in v}

    statuses = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path == "/api/ml/retraining/trigger":
                continue  # starts a retraining run in its own process
            tier = "admin" if path.startswith("/api/admin") or method != "get" else "pro"
            r = client.request(method.upper(), path.replace("{name}", built.model_name),
                               headers=auth(settings, tier), json=example_body(op))
            statuses[method, path] = r.status_code
            assert r.status_code != 500 and str(r.status_code) in op["responses"], (method, path, r.text)
            if r.status_code >= 500:
                _no_leak(r.text)
    assert len(statuses) >= 18
    return statuses


def test_model_registry_down_never_answers_500(built: Built, tmp_path: Path) -> None:
    """The MLflow registry unreachable from the start (a closed PostgreSQL port; MLflow itself
    would retry for ~100 s per call): selection falls back to the classic answer at once, and
    every route answers with a status it documents, never 500."""
    settings = make_settings(built, tmp_path, mlflow_tracking_uri=DOWN_PG)
    with client_for(settings) as client:
        started = time.monotonic()
        r = client.get("/api/stocks/select", params={"include_ml": True})
        assert r.status_code == 200 and r.json()["ml"]["status"] != "ok", r.text
        statuses = _every_route_answers_documented_statuses(client, settings, built)
        assert statuses["get", "/api/ml/models"] == statuses["get", "/api/ml/model/info"] == 503
        assert time.monotonic() - started < 60


@pytest.mark.postgres
def test_model_registry_going_down_while_serving_answers_503(built: Built, tmp_path: Path, pg_url: str) -> None:
    """A PostgreSQL registry that answered goes away under the server (pooled connections cut):
    no route answers 500; when it comes back the registry routes answer again, no restart."""
    src = ModelRegistry(built.tracking_uri).load(built.model_name)
    ModelRegistry(pg_url, tmp_path / "artifacts")  # creates MLflow's tables in the test schema
    proxy = TcpProxy(pg_target())
    proxy.start()
    proxied = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?{pg_url.split('?', 1)[1]}"
    settings = make_settings(built, tmp_path, mlflow_tracking_uri=proxied)
    registry = ModelRegistry.from_settings(settings)
    version = registry.register(built.model_name, src.model, params={}, metrics={}, metadata=src.metadata)
    registry.set_champion(built.model_name, version)
    try:
        with client_for(settings) as client:
            assert client.get("/api/ml/models", headers=auth(settings, "pro")).status_code == 200
            proxy.stop()
            statuses = _every_route_answers_documented_statuses(client, settings, built)
            # changes go to the database and say it is down; some reads still answer from the cache
            assert statuses["post", "/api/ml/models/{name}/rollback"] == 503
            proxy.start()
            r = client.get(f"/api/ml/models/{built.model_name}", headers=auth(settings, "pro"))
            assert r.status_code == 200 and r.json()["champion"] == version, r.text
    finally:
        proxy.stop()
