"""Hostile input and broken dependencies at the HTTP boundary (issue 16), against real uvicorn
servers: oversize bodies (announced or streamed), forged ``X-Forwarded-For``, weak or
path-like JWT secrets and tokens without ``exp``, runs without a report, an unreachable
operations database and a corrupted registry folder. Nothing is mocked."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt
import numpy as np
import pandas as pd
import pytest

from tests.serving.conftest import SECRET, Built, TcpProxy, auth, client_for, make_settings, pg_target, running
from tests.serving.test_failures import DOWN_PG, _no_leak, _wait, corrupt, own_registry
from vfr import opsdb
from vfr.config import Settings
from vfr.errors import SettingsError
from vfr.serving import AuthError, ServingEngine, create_app, mint_token, verify_token
from vfr.serving.auth import check_keys

LIMIT = 64 * 1024


def _bare(tmp_path: Path, **overrides) -> Settings:
    """Settings over an empty home (no store, no model): enough for what runs before a route."""
    return Settings(**({"home": tmp_path / "home", "jwt_secret": SECRET, "api_max_body_bytes": LIMIT} | overrides))


def _raw(url: str, head: bytes, body_parts: list[bytes], timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send ``head`` then ``body_parts`` over a raw socket (never finishing the body); read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed while we were still sending
                break
        data = b""
        t0 = time.monotonic()
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"no complete answer within {timeout} s: {data[:200]!r}")
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    headers_raw, _, body = rest.partition(b"\r\n\r\n")
    headers = dict(line.decode().lower().split(": ", 1) for line in headers_raw.split(b"\r\n") if line)
    return int(status_line.split()[1]), headers, body


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_an_oversize_body_gets_413_before_it_is_read(tmp_path: Path) -> None:
    with running(create_app(_bare(tmp_path))) as url:
        # announced too large: answered at once, after 1 KiB of a 50 MB body that is never sent
        head = (b"POST /api/stocks/select HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 50000000\r\nX-Request-ID: big-1\r\n\r\n")
        status, headers, body = _raw(url, head, [b"[" + b" " * 1024])
        assert status == 413, body
        assert json.loads(body) == {"error": "payload_too_large", "request_id": "big-1",
                                    "detail": f"the request body exceeds the limit of {LIMIT} bytes"}
        assert headers["x-request-id"] == "big-1" and headers["connection"] == "close"
        # streamed without a length (chunked): cut off once the bytes pass the limit; the body
        # is never finished (no terminating chunk), so only a limit that counts answers at all
        head = b"POST /api/ml/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" \
               b"Transfer-Encoding: chunked\r\n\r\n"
        chunk = b"%x\r\n%s\r\n" % (16384, b"x" * 16384)
        status, _, body = _raw(url, head, [chunk] * (LIMIT // 16384 + 2))
        assert status == 413 and json.loads(body)["error"] == "payload_too_large"
        # the same from an ordinary client streaming a body of unknown length
        with httpx.Client(base_url=url, timeout=10) as client:
            def stream():
                for _ in range(LIMIT // 8192 + 4):
                    yield b"y" * 8192

            r = client.post("/api/stocks/select", content=stream(), headers={"Content-Type": "application/json"})
            assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
            # under the limit: parsed and answered as usual (here: no token)
            r = client.post("/api/ml/predict", json={"symbols": ["AAPL"] * 100})
            assert r.status_code == 401
            assert client.get("/openapi.json").status_code == 200  # the server is still fine


def test_the_body_limit_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VFR_API_MAX_BODY_BYTES", "2048")
    assert Settings(home=tmp_path).api_max_body_bytes == 2048
    monkeypatch.delenv("VFR_API_MAX_BODY_BYTES")
    assert Settings().api_max_body_bytes == 1024 * 1024


@contextmanager
def _serve(app, proxy_headers: bool) -> Iterator[str]:
    """``running``, choosing whether uvicorn applies X-Forwarded-For itself (its default does;
    `vfr serve` turns it off and leaves the choice to VFR_API_TRUSTED_PROXIES)."""
    with running(app, proxy_headers=proxy_headers) as url:
        yield url


@pytest.mark.parametrize("proxy_headers", [True, False], ids=["uvicorn-proxy-headers", "plain"])
def test_x_forwarded_for_is_honoured_only_from_trusted_proxies(built: Built, tmp_path: Path,
                                                               proxy_headers: bool) -> None:
    # nobody trusted (the default): a caller on localhost cannot reset its limit by forging the header
    settings = make_settings(built, tmp_path, rate_limit_anonymous="3/minute")
    with _serve(create_app(settings), proxy_headers) as url, httpx.Client(base_url=url, timeout=60) as client:
        codes = [client.get("/api/stocks/select", params={"top": 1},
                            headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        if not proxy_headers:  # the peer is the caller: with or without the header, one budget
            assert client.get("/api/stocks/select", params={"top": 1}).status_code == 429
        # (when uvicorn already applied the header the peer is unknown: every forwarded request
        # shares one budget, "ip:unverified-forwarder", so forging the header resets nothing)
    # 127.0.0.1 is a trusted proxy: each forwarded client has its own budget, a repeated one runs out
    settings = make_settings(built, tmp_path / "trusting", rate_limit_anonymous="3/minute",
                             api_trusted_proxies=["127.0.0.0/8"])
    with _serve(create_app(settings), proxy_headers) as url, httpx.Client(base_url=url, timeout=60) as client:
        codes = [client.get("/api/stocks/select", params={"top": 1},
                            headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(5)]
        assert codes == [200] * 5
        same = {"X-Forwarded-For": "198.51.100.7, 127.0.0.1"}  # appended by a second trusted hop
        codes = [client.get("/api/stocks/select", params={"top": 1}, headers=same).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]


def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(ValueError, match="api_trusted_proxies"):
        Settings(api_trusted_proxies=["proxy.example.com"])
    assert Settings(api_trusted_proxies=[" 10.0.0.0/8", "::1"]).api_trusted_proxies == ["10.0.0.0/8", "::1"]


def test_jwt_secrets_and_token_lifetimes(tmp_path: Path) -> None:
    # a short HS256 secret stops start-up with one clear line
    with pytest.raises(SettingsError) as caught:
        create_app(_bare(tmp_path, jwt_secret="hunter2"))
    assert str(caught.value) == ("VFR_JWT_SECRET is 7 bytes; HS256 needs at least 32 (generate one with "
                                 "`openssl rand -hex 32`)")
    # a secret that looks like a path is the secret itself, never the file's content
    file = tmp_path / "a-file-whose-path-is-longer-than-32-bytes.txt"
    file.write_text("the-file-content-" + "z" * 32 + "\n")
    as_given = _bare(tmp_path, jwt_secret=str(file))
    check_keys(as_given)  # what create_app runs first: accepted, as the 50-byte secret it is
    token = mint_token(as_given, "bob", "pro", days=1)
    assert jwt.decode(token, str(file), algorithms=["HS256"])["sub"] == "bob"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, file.read_text().strip(), algorithms=["HS256"])
    # a key file is named explicitly
    from_file = _bare(tmp_path, jwt_secret=None, jwt_secret_file=file)
    token = mint_token(from_file, "bob", "pro", days=1)
    assert jwt.decode(token, "the-file-content-" + "z" * 32, algorithms=["HS256"])["sub"] == "bob"
    with pytest.raises(SettingsError, match="VFR_JWT_SECRET_FILE cannot be read"):
        create_app(_bare(tmp_path, jwt_secret=None, jwt_secret_file=tmp_path / "missing"))
    # exp is required and bounded
    settings = _bare(tmp_path, jwt_max_lifetime_days=30)
    now = int(time.time())
    no_exp = jwt.encode({"sub": "bob", "tier": "admin", "iat": now}, SECRET, algorithm="HS256")
    forever = jwt.encode({"sub": "bob", "tier": "admin", "iat": now, "exp": now + 400 * 86400}, SECRET,
                         algorithm="HS256")
    ok = jwt.encode({"sub": "bob", "tier": "admin", "iat": now, "exp": now + 29 * 86400}, SECRET, algorithm="HS256")
    for bad in (no_exp, forever):
        with pytest.raises(AuthError):
            verify_token(settings, bad)
    assert verify_token(settings, ok).tier == "admin"
    with pytest.raises(ValueError, match="at most 30"):
        mint_token(settings, "bob", "pro", days=31)
    with running(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        for bad in (no_exp, forever):
            r = client.get("/api/ml/models", headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text


def test_retraining_status_with_a_run_that_has_no_report_yet(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path)
    db = opsdb.connect(settings.resolved_serving_db_url)
    done = opsdb.start_run(db, trigger="monthly", model_name=built.model_name, champion_before=built.champion)
    opsdb.finish_run(db, done, status="kept", action="keep", champion_after=built.champion, reason="no better",
                     report={"n": 1})
    running_run = opsdb.start_run(db, trigger="api", model_name=built.model_name, champion_before=built.champion)
    with client_for(settings) as client:
        r = client.get("/api/ml/retraining/status", headers=auth(settings, "free"))
        assert r.status_code == 200, r.text
        runs = r.json()["runs"]
        assert [run["id"] for run in runs] == [running_run, done]
        assert runs[0]["status"] == "running" and runs[0]["finished_at"] is None and runs[0]["reason"] is None
        assert r.json()["running"] is False
        r = client.get("/api/ml/model/info", headers=auth(settings, "free"))
        assert r.status_code == 200 and r.json()["last_retraining"]["id"] == running_run
    db.dispose()


_OPS_ROUTES = (("GET", "/api/ml/retraining/status", "free"), ("GET", "/api/ml/model/info", "pro"),
               ("POST", "/api/admin/outcomes", "admin"))


def _all_503(client: httpx.Client, settings: Settings) -> None:
    for method, path, tier in _OPS_ROUTES:
        r = client.request(method, path, headers=auth(settings, tier))
        assert r.status_code == 503, (path, r.text)
        assert r.json()["error"] == "store_unavailable" and "operations database" in r.json()["detail"]
        _no_leak(r.text)
        assert "127.0.0.1" not in r.text and "postgres" not in r.text.lower()


def test_operations_database_down_answers_503_with_a_reason(built: Built, tmp_path: Path) -> None:
    with client_for(settings := make_settings(built, tmp_path, serving_db_url=DOWN_PG)) as client:
        _all_503(client, settings)  # never reachable (a closed port)


@pytest.mark.postgres
def test_operations_database_going_down_while_serving_answers_503(built: Built, tmp_path: Path, pg_url: str) -> None:
    proxy = TcpProxy(pg_target())
    proxy.start()
    log_url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?{pg_url.split('?', 1)[1]}"
    settings = make_settings(built, tmp_path, serving_db_url=log_url)
    try:
        with client_for(settings) as client:
            for method, path, tier in _OPS_ROUTES:  # up: migrated, pooled connections open
                assert client.request(method, path, headers=auth(settings, tier)).status_code == 200, path
            proxy.stop()  # PostgreSQL goes away under the pooled connections
            _all_503(client, settings)
            proxy.start()  # and comes back: answered again without a restart
            assert client.get("/api/ml/retraining/status", headers=auth(settings, "free")).status_code == 200
    finally:
        proxy.stop()


def test_a_corrupt_version_is_not_promoted_and_a_corrupt_champion_answers_409(built: Built, tmp_path: Path) -> None:
    settings, registry, versions = own_registry(built, tmp_path, n=3)
    registry.set_champion(built.model_name, versions[1])
    corrupt(registry, built.model_name, versions[2])  # the registry folder of v3 is garbage
    admin = auth(settings, "admin")
    with client_for(settings) as client:
        r = client.post(f"/api/ml/models/{built.model_name}/promote", json={"version": versions[2]}, headers=admin)
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert r.json()["error"] == "conflict" and f"version {versions[2]}" in detail and "not promoted" in detail
        assert "unreadable" in detail or "SHA-256" in detail
        _no_leak(r.text)
        assert registry.champion_version(built.model_name) == versions[1]  # nothing changed
        corrupt(registry, built.model_name, versions[1])  # now the champion itself is corrupt
        r = client.get("/api/ml/model/info", headers=auth(settings, "free"))
        assert r.status_code == 409, r.text
        assert f"champion v{versions[1]}" in r.json()["detail"] and "roll back" in r.json()["detail"]
        _no_leak(r.text)


def test_answered_predictions_are_on_disk_while_the_log_database_is_down(built: Built, tmp_path: Path) -> None:
    import sqlalchemy as sa

    folder = tmp_path / "logdb"
    settings = make_settings(built, tmp_path, serving_db_url=f"sqlite:///{folder / 'log.db'}")
    engine = ServingEngine(settings, log_flush_interval_s=0.2)
    folder.rmdir()
    folder.write_text("not a folder")  # the log database cannot be opened: down
    spool_dir = settings.home_dir / "predlog-spill"
    with client_for(settings, engine=engine) as client:
        r = client.get("/api/stocks/select", params={"include_ml": True, "top": 5})
        assert r.status_code == 200 and r.json()["ml"]["status"] == "ok"
        served = {row["symbol"] for row in r.json()["results"]}
        # when the answer arrives its rows are already on disk, fsynced, in the spool
        on_disk = [row for path in spool_dir.glob("predlog-spool-*.jsonl")
                   for line in path.read_text().splitlines() for row in json.loads(line)]
        assert {row["symbol"] for row in on_disk} == served and len(on_disk) == 5
        _wait(lambda: engine.predlog.failures >= 2)  # the writer keeps failing, nothing is dropped
        assert engine.predlog.pending == 5
        folder.unlink()
        folder.mkdir()  # the database is back
        _wait(lambda: engine.predlog.pending == 0)
        assert not list(spool_dir.glob("*.jsonl"))  # replayed, then removed
    with sa.create_engine(f"sqlite:///{folder / 'log.db'}").connect() as conn:
        logged = [r[0] for r in conn.exec_driver_sql("SELECT symbol FROM ml_predictions").all()]
    assert sorted(logged) == sorted(served)


def test_a_spool_left_by_a_dead_logger_is_adopted_and_replayed(built: Built, tmp_path: Path) -> None:
    """Two loggers on one home (two workers): each its own spool; a live one's files are not
    touched; the files of one that is gone are written by the next logger to start."""
    from vfr.serving.predlog import PredictionLogger

    down = f"sqlite:///{tmp_path / 'blocked' / 'log.db'}"
    spool_dir = tmp_path / "spool"
    first, second = (PredictionLogger(down, spill_dir=spool_dir, flush_interval_s=0) for _ in range(2))
    (tmp_path / "blocked").rmdir()
    (tmp_path / "blocked").write_text("not a folder")  # their database cannot be opened
    for logger, symbols in ((first, ["AAPL", "MSFT"]), (second, ["KO"])):
        _log_day(logger, symbols)
    first.close()  # cannot write: its rows stay in its spool
    up = f"sqlite:///{tmp_path / 'log.db'}"
    third = PredictionLogger(up, spill_dir=spool_dir, flush_interval_s=0)
    assert third.pending == 2  # adopted the closed logger's spool, not the live one's
    assert third.flush() == 2 and second.pending == 1
    second.close()
    fourth = PredictionLogger(up, spill_dir=spool_dir, flush_interval_s=0)
    assert fourth.flush() == 1 and fourth.counts()["ml_predictions"] == 3
    third.close()
    fourth.close()
    assert not list(spool_dir.iterdir())


def _log_day(logger: object, symbols: list[str]) -> int:
    feats = pd.DataFrame({"symbol": symbols, "f": [0.1] * len(symbols)})
    return logger.log(symbols=symbols, probabilities=np.array([0.7] * len(symbols)),  # type: ignore[attr-defined]
                      confidences=np.array([0.4] * len(symbols)), features=feats, feature_columns=["f"],
                      model_name="m", model_version="1", horizon="1w", feature_date=pd.Timestamp("2019-06-03"),
                      request_id="r")


def test_a_prediction_counts_as_logged_only_once_it_is_on_disk(tmp_path: Path) -> None:
    """A request serving rows another request is still spooling does not answer before that spool
    is fsynced; rows whose spool failed are not marked logged, and the next request spools them."""
    import threading

    from vfr.serving.predlog import PredictionLogger

    logger = PredictionLogger(f"sqlite:///{tmp_path / 'log.db'}", spill_dir=tmp_path / "spool", flush_interval_s=0)
    # 1. the spool cannot be written (its file is a folder): the request fails, nothing is marked
    active = logger.spool._name(".jsonl")
    active.mkdir()
    with pytest.raises(OSError):
        _log_day(logger, ["AAPL", "MSFT"])
    active.rmdir()
    assert _log_day(logger, ["AAPL", "MSFT"]) == 2 and logger.pending == 2
    assert _log_day(logger, ["AAPL", "MSFT"]) == 0  # logged once per process

    # 2. a second request for rows the first is spooling waits for its fsync; when that spool
    #    fails, the second request spools them itself
    append, gate, entered = logger.spool.append, threading.Event(), threading.Event()
    failures: list[str] = []  # errors the next slow appends raise

    def slow_append(batch: list[dict]) -> None:
        entered.set()
        assert gate.wait(10)
        if failures:
            raise OSError(failures.pop())
        append(batch)

    logger.spool.append = slow_append  # type: ignore[method-assign]

    def race(a: list[str], b: list[str]) -> dict[str, object]:
        results: dict[str, object] = {}

        def run(name: str, symbols: list[str]) -> None:
            try:
                results[name] = _log_day(logger, symbols)
            except OSError as exc:
                results[name] = exc

        gate.clear()
        entered.clear()
        first = threading.Thread(target=run, args=("first", a))
        first.start()
        assert entered.wait(10)
        entered.clear()
        second = threading.Thread(target=run, args=("second", b))
        second.start()
        second.join(0.5)
        assert second.is_alive(), "answered before the first request's rows were on disk"
        gate.set()
        first.join(10)
        second.join(10)
        return results

    assert race(["KO", "PEP"], ["PEP"]) == {"first": 2, "second": 0} and logger.pending == 4
    failures.append("disk full")
    outcome = race(["XOM"], ["XOM"])
    assert isinstance(outcome["first"], OSError) and outcome["second"] == 1 and logger.pending == 5
    assert logger.flush() == 5 and logger.counts()["ml_predictions"] == 5
    assert not logger._in_flight  # nothing left marked as being spooled
    logger.close()
