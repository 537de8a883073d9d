"""Fixtures of the API tests: a small real store and registry (built once per session with the
pipeline stages), real uvicorn servers on free 127.0.0.1 ports, tokens, Redis and PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn

from tests.conftest import PG_URL, SMALL_SYMBOLS, SP500_UNIVERSE, require_shared
from tests.procs import free_port
from vfr.config import Settings
from vfr.data import MarketStore
from vfr.ml import ModelRegistry, TrainConfig
from vfr.pipeline import stage_features, stage_ingest, stage_train
from vfr.serving import ServingEngine, create_app, mint_token

SECRET = "test-secret-" + "x" * 32
REDIS_URL = "redis://127.0.0.1:6379/0"
SMALL = dict(max_rounds=30, train_window=252, retrain_every=126, date_stride=3, params={"min_data_in_leaf": 50},
             num_threads=1)


@dataclass(frozen=True)
class Built:
    """The session's store and registry (read-only for tests)."""

    home: Path
    store_url: str
    tracking_uri: str
    model_name: str
    champion: str
    latest: pd.Timestamp


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, sp500_raw_small: pd.DataFrame) -> Built:
    """Ingest 20 real stocks (2014-2019), build features, train and register a small model."""
    require_shared(SP500_UNIVERSE)
    home = tmp_path_factory.mktemp("serving-home")
    prices = home / "small.parquet"
    sp500_raw_small[sp500_raw_small["date"] >= "2014-01-01"].to_parquet(prices)
    universe = home / "universe.csv"
    uni = pd.read_csv(SP500_UNIVERSE)
    uni[uni["Symbol"].isin(SMALL_SYMBOLS)].to_csv(universe, index=False)
    settings = Settings(home=home)
    stage_ingest(settings, prices, universe)
    stage_features(settings)
    outcome = stage_train(settings, TrainConfig(**SMALL))
    registry = ModelRegistry.from_settings(settings)
    if registry.champion_version(settings.model_name) is None:  # the small set may fail the gate
        registry.set_champion(settings.model_name, outcome.version)
    with MarketStore.from_settings(settings) as store:
        latest = store.read_table("features", columns=["date"])["date"].max()
    return Built(home, settings.resolved_store_url, settings.resolved_tracking_uri, settings.model_name,
                 outcome.version, latest)


def make_settings(built: Built, tmp_path: Path, **overrides) -> Settings:
    """Settings over the session store/registry with a private home (log DB, spill folder)."""
    base = dict(home=tmp_path / "home", store_url=built.store_url, mlflow_tracking_uri=built.tracking_uri,
                jwt_secret=SECRET, rate_limit_anonymous="100000/minute", rate_limit_free="100000/minute",
                rate_limit_pro="100000/minute", ml_timeout_ms=30000)
    return Settings(**(base | overrides))


@contextmanager
def running(app, **config) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn server in a thread; yield its base URL. ``config``: more
    ``uvicorn.Config`` options (e.g. ``proxy_headers=False``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = {"log_level": "warning", "lifespan": "on", "access_log": False} | config
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextmanager
def client_for(settings: Settings, engine: ServingEngine | None = None) -> Iterator[httpx.Client]:
    """An httpx client talking HTTP to a real uvicorn server running ``create_app(settings)``."""
    app = create_app(settings, engine=engine)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def auth(settings: Settings, tier: str = "pro", user: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, user or f'user-{uuid.uuid4().hex[:6]}', tier, 1)}"}


@pytest.fixture(scope="module")
def shared_api(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One warm server over the session store for read-only tests (memory caches, SQLite log)."""
    settings = make_settings(built, tmp_path_factory.mktemp("api"))
    with client_for(settings) as client:
        client.settings = settings  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique Redis key prefix, its keys deleted afterwards (skips when Redis is absent)."""
    redis = pytest.importorskip("redis")
    r = redis.Redis.from_url(REDIS_URL)
    try:
        r.ping()
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc.__class__.__name__}")
    prefix = f"vfrtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    keys = list(r.scan_iter(f"{prefix}*"))
    if keys:
        r.delete(*keys)
    r.close()


class TcpProxy:
    """A real TCP forwarder to a server, which a test can take down and bring back.

    Used to make PostgreSQL or Redis unreachable for one app without touching the shared server:
    :meth:`stop` refuses connections (a dead server), :meth:`hang` accepts them and never answers
    (a network partition or a frozen server: only timeouts end the calls), :meth:`resume` ends a hang.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.hanging = False

    def hang(self) -> None:
        """Stop forwarding in both directions; new connections are accepted and never answered."""
        self.hanging = True

    def resume(self) -> None:
        """Forward again (connections that hung stay dead: their clients gave up on them)."""
        self.hanging = False

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            try:  # wakes the thread blocked in accept(); close() alone leaves the port listening
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.hanging:  # accepted, never answered
                with self._lock:
                    self._conns.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        hung = False
        try:
            while data := a.recv(65536):
                hung = hung or self.hanging  # a connection that hung once never forwards again
                if not hung:
                    b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def pg_schema_url(pg_url: str) -> str:
    """A fresh PostgreSQL schema (the shared ``pg_url`` fixture), named for readability."""
    return pg_url


def pg_target() -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    return url.host or "127.0.0.1", url.port or 5432
