"""Alert rules, sinks (a real JSON-lines file, a real HTTP server) and de-duplication in
``ml_alerts`` on SQLite and PostgreSQL, including concurrent publishers."""

from __future__ import annotations

import json
import socket
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from vfr.monitoring import (
    Alert,
    AlertManager,
    AlertRule,
    LogFileSink,
    WebhookSink,
    alert_key,
    alert_sinks_from_settings,
    evaluate_rules,
    recent_alerts,
)
from vfr.opsdb import migrate

T0 = datetime(2024, 6, 1, 12, 0, 0)
HOUR = timedelta(hours=1)


def _psi_alert(value: float = 0.31, scope: str = "m1") -> Alert:
    (a,) = evaluate_rules({"psi": value}, [AlertRule("prediction_psi", "psi", ">", 0.2, "critical")], scope=scope)
    return a


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- rules --------------------------------------------------------------------------------------
def test_rules_fire_on_crossing_and_never_on_missing_or_nan() -> None:
    alerts = evaluate_rules({"psi": 0.31, "ks_breached_features": 3, "rolling_accuracy": 0.5, "brier": float("nan"),
                             "api_error_rate": 0.051, "api_p95_latency_ms": None}, scope="m1")
    assert [(a.rule, a.severity, a.value, a.threshold) for a in alerts] == [
        ("prediction_psi", "critical", 0.31, 0.2), ("feature_ks", "warning", 3.0, 3.0),
        ("api_error_rate", "critical", 0.051, 0.05)]
    assert alerts[0].message == "psi 0.31 > 0.2 [m1]" and alerts[0].key == "m1|prediction_psi|psi"
    assert evaluate_rules({"psi": 0.2, "api_error_rate": 0.05, "rolling_accuracy": 0.48}) == []  # not strictly past
    assert evaluate_rules({}) == []
    # the key names the condition, not the value: a worse PSI is the same alert
    assert _psi_alert(0.31).key == _psi_alert(0.9).key != _psi_alert(0.31, scope="m2").key
    assert alert_key("r", "x", "m") == "m|r|x"
    with pytest.raises(ValueError, match="op must be one of"):
        AlertRule("bad", "psi", "=>", 0.2, "critical")
    with pytest.raises(ValueError, match="severity must be one of"):
        AlertRule("bad", "psi", ">", 0.2, "fatal")


# -- log sink -----------------------------------------------------------------------------------
def test_log_sink_appends_whole_json_lines_from_many_threads(tmp_path: Path) -> None:
    sink = LogFileSink(tmp_path / "new" / "folder" / "alerts.log")
    alerts = [_psi_alert(0.21 + i / 1000, scope=f"m{i}") for i in range(200)]
    threads = [threading.Thread(target=lambda chunk=alerts[i::8]: [sink.send(a) for a in chunk]) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = _lines(sink.path)
    assert len(lines) == 200 and {d["key"] for d in lines} == {a.key for a in alerts}
    assert {"sent_at", "rule", "severity", "metric", "value", "threshold", "message", "key"} <= set(lines[0])


# -- de-duplication -------------------------------------------------------------------------------
def test_publish_twice_delivers_once_and_counts_twice_then_again_after_the_window(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'serving.db'}")
    log = LogFileSink(tmp_path / "alerts.log")
    mgr = AlertManager(engine, [log], dedup_window_s=6 * 3600)
    a = _psi_alert()
    assert mgr.publish([a], now=T0) == [a]
    assert mgr.publish([_psi_alert(0.4)], now=T0 + HOUR) == []  # same key, within 6 h
    row = recent_alerts(engine).iloc[0]
    assert (row["key"], row["count"], row["value"]) == (a.key, 2, 0.4)
    assert row["first_seen_at"] == T0 and row["last_seen_at"] == T0 + HOUR and row["last_sent_at"] == T0
    assert row["delivered_to"] == "log" and len(_lines(log.path)) == 1

    assert mgr.publish([a], now=T0 + 6 * HOUR) == [a]  # window over: sent again
    row = recent_alerts(engine).iloc[0]
    assert row["count"] == 3 and row["last_sent_at"] == T0 + 6 * HOUR and len(_lines(log.path)) == 2


def test_an_alert_no_sink_accepted_is_retried_at_the_next_publish(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the log folder should be")
    sink = LogFileSink(blocker / "alerts.log")
    mgr = AlertManager(sa.create_engine(f"sqlite:///{tmp_path / 'serving.db'}"), [sink])
    a = _psi_alert()
    assert mgr.publish([a], now=T0) == []
    assert recent_alerts(mgr.engine).iloc[0]["last_sent_at"] is None
    blocker.unlink()
    assert mgr.publish([a], now=T0 + timedelta(minutes=1)) == [a]
    assert len(_lines(sink.path)) == 1 and recent_alerts(mgr.engine).iloc[0]["count"] == 2


def _publish_concurrently(url: str, log_path: Path, key_scope: str, threads_per_manager: int = 4) -> tuple[int, int]:
    """Two managers (two engines on the same database) publish one alert from 2 x n threads at once."""
    engines = [sa.create_engine(url), sa.create_engine(url)]
    migrate(engines[0])
    managers = [AlertManager(e, [LogFileSink(log_path)]) for e in engines]
    alert = _psi_alert(scope=key_scope)
    barrier = threading.Barrier(2 * threads_per_manager)
    delivered: list[Alert] = []
    errors: list[BaseException] = []

    def work(mgr: AlertManager) -> None:
        try:
            barrier.wait()
            delivered.extend(mgr.publish([alert], now=T0))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(m,)) for m in managers for _ in range(threads_per_manager)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    count = int(recent_alerts(engines[1]).set_index("key").loc[alert.key, "count"])
    for e in engines:
        e.dispose()
    return len(delivered), count


def test_two_managers_on_one_sqlite_file_send_a_concurrent_alert_once(tmp_path: Path) -> None:
    log_path = tmp_path / "alerts.log"
    delivered, count = _publish_concurrently(f"sqlite:///{tmp_path / 'serving.db'}", log_path, "sqlite-m")
    assert (delivered, count, len(_lines(log_path))) == (1, 8, 1)


@pytest.mark.postgres
def test_two_managers_on_postgresql_send_a_concurrent_alert_once(tmp_path: Path, pg_url: str) -> None:
    log_path = tmp_path / "alerts.log"
    delivered, count = _publish_concurrently(pg_url, log_path, "pg-m")  # pg_url: a fresh schema for this test
    assert (delivered, count, len(_lines(log_path))) == (1, 8, 1)
    # and the window logic on PostgreSQL
    mgr = AlertManager(sa.create_engine(pg_url), [LogFileSink(log_path)])
    a = _psi_alert(scope="pg-m")
    assert mgr.publish([a], now=T0 + HOUR) == [] and mgr.publish([a], now=T0 + 6 * HOUR) == [a]
    assert recent_alerts(mgr.engine).iloc[0]["count"] == 10 and len(_lines(log_path)) == 2
    mgr.engine.dispose()


# -- webhook ----------------------------------------------------------------------------------------
class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received, server.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_posts_slack_json_naming_metric_and_threshold(tmp_path: Path, webhook_server) -> None:
    url = f"http://127.0.0.1:{webhook_server.server_address[1]}/hooks/T000"
    mgr = AlertManager(sa.create_engine(f"sqlite:///{tmp_path / 'serving.db'}"),
                       [LogFileSink(tmp_path / "alerts.log"), WebhookSink(url)])
    a = _psi_alert()
    assert mgr.publish([a], now=T0) == [a]
    (body,) = webhook_server.received
    assert body["text"] == "[CRITICAL] psi 0.31 > 0.2 [m1]"
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert fields == {"rule": "prediction_psi", "metric": "psi", "value": "0.31", "threshold": "0.2"}
    assert body["attachments"][0]["footer"] == a.key
    assert recent_alerts(mgr.engine).iloc[0]["delivered_to"] == "log,webhook"

    webhook_server.status = 500  # an error answer is not a delivery
    assert WebhookSink(url).send(a) is False


def test_webhook_down_does_not_raise_and_the_log_still_gets_the_alert(tmp_path: Path, caplog) -> None:
    port = _closed_port()
    hook = WebhookSink(f"http://127.0.0.1:{port}/secret-token", timeout_s=2)
    assert hook.send(_psi_alert()) is False
    assert "secret-token" not in caplog.text and "unreachable" in caplog.text
    log = LogFileSink(tmp_path / "alerts.log")
    mgr = AlertManager(sa.create_engine(f"sqlite:///{tmp_path / 'serving.db'}"), [hook, log])
    a = _psi_alert()
    assert mgr.publish([a], now=T0) == [a]
    assert [d["key"] for d in _lines(log.path)] == [a.key]
    assert recent_alerts(mgr.engine).iloc[0]["delivered_to"] == "log"


def test_sinks_from_settings(settings, tmp_path: Path) -> None:
    (log,) = alert_sinks_from_settings(settings)  # no webhook configured
    assert isinstance(log, LogFileSink) and log.path == settings.home_dir / "alerts.log"
    with_hook = SimpleNamespace(home_dir=tmp_path, alert_webhook_url="http://127.0.0.1:9/x")
    log, hook = alert_sinks_from_settings(with_hook)
    assert isinstance(hook, WebhookSink) and hook.url == "http://127.0.0.1:9/x" and log.path == tmp_path / "alerts.log"


def test_recent_alerts_newest_first(tmp_path: Path) -> None:
    mgr = AlertManager(sa.create_engine(f"sqlite:///{tmp_path / 'serving.db'}"), [LogFileSink(tmp_path / "a.log")])
    for i in range(5):
        mgr.publish([_psi_alert(scope=f"m{i}")], now=T0 + i * HOUR)
    frame = recent_alerts(mgr.engine, limit=3)
    assert list(frame["key"]) == [f"m{i}|prediction_psi|psi" for i in (4, 3, 2)]
    assert list(frame.columns[:10]) == ["key", "rule", "severity", "metric", "value", "threshold", "message",
                                        "first_seen_at", "last_seen_at", "count"]
    with pytest.raises(ValueError, match="limit must be >= 1"):
        recent_alerts(mgr.engine, limit=0)
