"""Fault injection against a real `vfr serve` subprocess (issue 16): kill -9 of the server while
clients get answers and the prediction log waits in the spool, and kill -9 of a real Redis under
load. What tests/serving/test_failures.py covers in process (Redis frozen or refused behind a
proxy, PostgreSQL down, a spill at a clean shutdown) is not repeated here.

The server runs as ``vfr serve`` (``--workers 2`` for the kill, one process for the Redis test) in
its own process group, so ``kill -9`` takes the uvicorn supervisor and its workers at once, as a
crash of the host's service would; Redis is a
``redis-server`` of this test on a free port (killing it disturbs nothing else on the machine);
PostgreSQL is the shared test server behind :class:`TcpProxy`. The full-size measurements are
made by ``benchmarks/api_faults.py`` (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.procs import SELECT, RedisProcess, ServeProcess
from tests.serving.conftest import SECRET, Built, TcpProxy, pg_target
from vfr.data import MarketStore


def serve_env(built: Built, home: Path, **extra: str) -> dict[str, str]:
    return os.environ | {"VFR_HOME": str(home), "VFR_STORE_URL": built.store_url,
                         "VFR_MLFLOW_TRACKING_URI": built.tracking_uri, "VFR_JWT_SECRET": SECRET,
                         "VFR_RATE_LIMIT_ANONYMOUS": "1000000/minute", "VFR_ML_TIMEOUT_MS": "30000"} | extra


def spooled(home: Path) -> list[dict]:
    """Prediction rows waiting in the spool files on disk."""
    rows: list[dict] = []
    for path in (home / "predlog-spill").glob("*.jsonl"):
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:  # replayed meanwhile
            continue
        for line in lines:
            rows += json.loads(line) if line.strip() else []
    return rows


def answered_keys(body: dict) -> set[tuple[str, str, str, str, str]]:
    """(model, version, horizon, feature date, symbol) of every prediction in a select answer."""
    ml = body["ml"]
    return {(m["name"], m["version"], ml["horizon"], body["date"], row["symbol"])
            for m in ml["models"] for row in body["results"] if row["ml_probability"] is not None}


@pytest.mark.postgres
def test_kill_9_of_the_server_loses_no_answered_prediction(built: Built, tmp_path: Path, pg_url: str) -> None:
    """The prediction-log database is unreachable, so every served prediction waits in the spool;
    clients ask for new dates (new predictions) while the server is killed with SIGKILL; after a
    restart and the database's return, every prediction a client received is in ``ml_predictions``."""
    with MarketStore(built.store_url) as store:
        dates = [str(d.date()) for d in store.read_table("features", columns=["date"])["date"]
                 .drop_duplicates().nlargest(60)]
    proxy = TcpProxy(pg_target())
    proxy.start()
    home = tmp_path / "home"
    log_url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?{pg_url.split('?', 1)[1]}"
    server = ServeProcess(serve_env(built, home, VFR_SERVING_DB_URL=log_url), tmp_path / "server.log")
    answered: set[tuple[str, str, str, str, str]] = set()
    outcomes: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client(k: int) -> None:  # client k asks its own dates: each answer is a new prediction
        with httpx.Client(base_url=server.base, timeout=30) as c:
            for day in dates[k::4]:
                if stop.is_set():
                    return
                try:
                    r = c.get(SELECT, params={"include_ml": True, "date": day})
                except httpx.HTTPError as exc:
                    outcomes.append(exc.__class__.__name__)
                    continue
                outcomes.append(str(r.status_code))
                if r.status_code == 200:
                    keys = answered_keys(r.json())
                    with lock:
                        answered.update(keys)

    try:
        server.start()
        server.wait_ml_ok()
        proxy.stop()  # the serving database is down: served rows stay in the spool
        clients = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(4)]
        for t in clients:
            t.start()
        deadline = time.monotonic() + 60
        while outcomes.count("200") < 12:
            assert time.monotonic() < deadline, f"too few answers before the kill: {outcomes}"
            time.sleep(0.02)
        server.kill9()  # in the middle of the clients' requests
        stop.set()
        for t in clients:
            t.join(30)
        received = set(answered)  # every answer was sent before the kill
        on_disk = {(r["model_name"], r["model_version"], r["horizon"], r["feature_date"][:10], r["symbol"])
                   for r in spooled(home)}
        # at the kill, every answered prediction is on disk, but those of the latest date, which the
        # start-up check above served (and the log wrote) while the database was still up
        assert received and {k for k in received if k[3] != dates[0]} <= on_disk
        server.start()  # the supervisor restarts it; the database is still down
        server.wait_ml_ok()
        proxy.start()  # the database returns: the new workers replay the spools the dead ones left
        engine = sa.create_engine(pg_url)
        deadline = time.monotonic() + 30
        while True:
            try:
                with engine.connect() as conn:
                    rows = conn.exec_driver_sql("SELECT model_name, model_version, horizon, feature_date, symbol "
                                                "FROM ml_predictions").all()
            except sa.exc.ProgrammingError:  # not migrated yet: nothing was written so far
                rows = []
            logged = {(a, str(b), c, str(d), e) for a, b, c, d, e in rows}
            if received <= logged and not spooled(home):
                break
            assert time.monotonic() < deadline, \
                f"{len(received - logged)} of {len(received)} answered predictions not logged; " \
                f"{len(spooled(home))} rows still spooled"
            time.sleep(0.2)
        engine.dispose()
        assert len(rows) == len(logged)  # each prediction once
    finally:
        stop.set()
        server.stop()
        proxy.stop()


def test_redis_kill_9_under_load_stalls_no_request(built: Built, tmp_path: Path) -> None:
    """Redis (a real server) is killed with SIGKILL while clients call the API, then restarted:
    no request takes 1 s, answers never stop for 1 s, all are 200; /api/health says
    ``memory (redis down)`` and then ``redis`` again, with no step by anyone."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    home = tmp_path / "home"
    server = ServeProcess(serve_env(built, home, VFR_CACHE_URL=redis.url, VFR_CACHE_PREFIX="vfr-kill"),
                   tmp_path / "server.log", workers=1)  # one process: the stall is per process anyway
    timings: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def load(k: int) -> None:
        with httpx.Client(base_url=server.base, timeout=30) as c:
            i = k
            while not stop.is_set():
                i += 1
                path, params = ((SELECT, {"include_ml": True}) if i % 2 else
                                ("/api/stocks/analyze", {"symbols": "AAPL,KO"}))
                t0 = time.perf_counter()
                status = c.get(path, params=params).status_code
                timings.append((t0, time.perf_counter(), status))

    def cache_state(c: httpx.Client) -> str:
        r = c.get("/api/health")
        assert r.status_code == 200, r.text
        return r.json()["cache"]

    try:
        server.start()
        server.wait_ml_ok()
        with httpx.Client(base_url=server.base, timeout=30) as c:
            for _ in range(3):  # the ranking and the explanations are cached, Redis is connected
                c.get(SELECT, params={"include_ml": True})
                c.get("/api/stocks/analyze", params={"symbols": "AAPL,KO"})
            assert cache_state(c) == "redis"
            workers = [threading.Thread(target=load, args=(k,), daemon=True) for k in range(3)]
            for w in workers:
                w.start()
            time.sleep(1.5)
            killed = time.perf_counter()
            redis.kill9()
            deadline = time.monotonic() + 5
            while cache_state(c) == "redis":
                assert time.monotonic() < deadline, "/api/health still says redis after the kill"
                time.sleep(0.05)
            time.sleep(2.0)
            restarted = time.perf_counter()
            redis.start()
            deadline = time.monotonic() + 15  # the breaker lets one request probe Redis after 5 s
            while cache_state(c) != "redis":
                assert time.monotonic() < deadline, "the cache did not go back to Redis"
                time.sleep(0.1)
            time.sleep(1.0)
        stop.set()
        for w in workers:
            w.join(30)
    finally:
        stop.set()
        server.stop()
        redis.kill9()
    after = [(t0, t1, s) for t0, t1, s in timings if t1 >= killed]
    assert {s for _, _, s in timings} == {200}
    assert len([1 for t0, _, _ in after if t0 < restarted]) >= 10, "too few requests while Redis was down"
    slowest = max(t1 - t0 for t0, t1, _ in after)
    ends = sorted(t1 for _, t1, _ in after)
    gap = max(b - a for a, b in zip([killed, *ends], ends, strict=False))
    assert slowest < 1.0, f"slowest request after the Redis kill: {slowest:.2f} s"
    assert gap < 1.0, f"no answer for {gap:.2f} s after the Redis kill"
