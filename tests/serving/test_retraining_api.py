"""The retraining endpoints, the daily monitoring job and the scheduler's lock, against a real
uvicorn server, a real trained model, SQLite/PostgreSQL and two real APScheduler instances."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.serving.conftest import Built, auth, client_for, make_settings
from vfr.ml import ModelRegistry
from vfr.opsdb import runs as run_log
from vfr.retraining import daily_monitoring, drift_check, run_retraining
from vfr.retraining.jobs import CALENDAR_CYCLE_FEATURES
from vfr.serving import ServingEngine

SMALL = dict(max_rounds=20, train_window=252, retrain_every=126, date_stride=3, params={"min_data_in_leaf": 50},
             num_threads=1)


def private_copy(built: Built, tmp_path: Path, **overrides):
    """Settings on a private copy of the session's store and registry (these tests change both)."""
    home = tmp_path / "copy"
    shutil.copytree(built.home, home, ignore=shutil.ignore_patterns("*.parquet", "*.csv", "reports"))
    copied = {"store_url": f"duckdb:///{home / 'vfr.duckdb'}", "mlflow_tracking_uri": f"sqlite:///{home / 'mlflow.db'}"}
    settings = make_settings(built, tmp_path, **(copied | overrides))
    # artifacts are addressed by absolute path in the copied tracking DB; keep the originals
    return settings


def mid_2019_champion(built: Built, tmp_path: Path):
    """Settings on a private store with a fresh registry whose champion was trained as of
    mid-2019, so that a retraining on all the data has half a year of fresh dates to compare on;
    and that registry."""
    settings = private_copy(built, tmp_path, retrain_every=126, train_window=252,
                            mlflow_tracking_uri=f"sqlite:///{tmp_path / 'registry.db'}")
    first = run_retraining(settings, trigger="test", as_of="2019-06-28", rebuild_features=False)
    registry = ModelRegistry.from_settings(settings)
    if first.status != "deployed":  # the 20-stock set may fail the first-champion gate
        registry.promote(settings.model_name, first.challenger_version)
    return settings, registry

def test_trigger_status_rollback_and_model_info(built: Built, tmp_path: Path) -> None:
    settings, registry = mid_2019_champion(built, tmp_path)
    champion = registry.champion_version(settings.model_name)
    member, admin = auth(settings, "free"), auth(settings, "admin")
    with client_for(settings) as client:
        info = client.get("/api/ml/model/info", headers=member)
        assert info.status_code == 200, info.text
        body = info.json()
        assert body["version"] == champion and body["has_drift_reference"]
        assert body["lineage"]["fingerprint"] == body["data_fingerprint"]
        assert body["training_window"][1] < "2019-06-28"
        assert body["last_retraining"]["challenger_version"] == champion
        assert client.get("/api/ml/model/info").status_code == 401
        assert client.post("/api/ml/retraining/trigger", json={}, headers=member).status_code == 403

        status = client.get("/api/ml/retraining/status", headers=member).json()
        assert status["running"] is False and [r["trigger"] for r in status["runs"]] == ["test"]
        assert {j["job"] for j in status["schedule"]} == {"daily_monitoring", "monthly_retraining",
                                                          "earnings_season_retraining"}

        r = client.post("/api/ml/retraining/trigger", json={"wait": True, "rebuild_features": False}, headers=admin)
        assert r.status_code == 200, r.text
        decision = r.json()["decision"]
        assert decision["champion_before"] == champion and decision["challenger_version"] is not None
        assert decision["comparison"]["n_dates"] > 100  # 2019-07 .. 2019-12 minus the embargo
        assert r.json()["status"] in ("deployed", "ab_test", "kept", "refused")
        runs = client.get("/api/ml/retraining/status", headers=member).json()["runs"]
        assert runs[0]["status"] == r.json()["status"] and runs[0]["trigger"] == "api"

        # a run holding the lock: a second trigger answers 409
        engine = sa.create_engine(settings.resolved_serving_db_url)
        assert run_log.claim(engine, "retrain", run_log.ACTIVE)
        assert client.get("/api/ml/retraining/status", headers=member).json()["running"] is True
        assert client.post("/api/ml/retraining/trigger", json={}, headers=admin).status_code == 409
        run_log.release(engine, "retrain", run_log.ACTIVE)

        # rollback: make the challenger champion first, then roll back to the old champion
        challenger = decision["challenger_version"]
        if decision["champion_after"] != challenger:
            assert client.post(f"/api/ml/models/{settings.model_name}/promote", json={"version": challenger},
                               headers=admin).status_code == 200
        r = client.post("/api/ml/retraining/rollback", headers=admin)
        assert r.status_code == 200 and r.json()["champion"] == champion and r.json()["previous"] == challenger
        assert registry.champion_version(settings.model_name) == champion
        last = client.get("/api/ml/retraining/status", headers=member).json()["runs"][0]
        assert last["status"] == "rollback" and last["champion_after"] == champion
        assert client.get("/api/ml/model/info", headers=member).json()["version"] == champion


def test_daily_job_logs_outcomes_drift_and_alerts_once(built: Built, tmp_path: Path) -> None:
    settings = private_copy(built, tmp_path)
    days = pd.bdate_range("2019-10-01", "2019-10-25")
    engine = ServingEngine(settings)
    try:
        for day in days:
            engine.ranking.rank(date=day, include_ml=True, request_id=f"d{day:%d}")
        engine.predlog.flush()
    finally:
        engine.close()
    first = daily_monitoring(settings, as_of="2019-10-25", retrain_on_drift=False)
    again = daily_monitoring(settings, as_of="2019-10-25", retrain_on_drift=False)
    assert first["ran"] is True and again == {"job": "daily_monitoring", "run_key": "2019-10-25", "ran": False}
    # outcomes only for predictions whose 5-day horizon ended by 2019-10-25 (made by 2019-10-18)
    db = sa.create_engine(settings.resolved_serving_db_url)
    with db.connect() as conn:
        latest_feature_date = conn.exec_driver_sql(
            "SELECT MAX(p.feature_date) FROM ml_predictions p JOIN ml_outcomes o ON o.prediction_id = p.id").scalar()
        horizon_ends = conn.exec_driver_sql("SELECT MAX(horizon_end) FROM ml_outcomes").scalar()
        kinds = dict(conn.exec_driver_sql("SELECT kind, COUNT(*) FROM ml_drift GROUP BY kind").all())
    assert str(latest_feature_date)[:10] == "2019-10-18" and str(horizon_ends)[:10] <= "2019-10-25"
    assert first["outcomes_written"] == 20 * 14  # 20 stocks x 14 dates from 10-01 to 10-18
    assert kinds["feature"] > 10 and kinds["prediction"] == 1
    # the check compared the features served in the window with the model's training reference
    check = drift_check(settings, as_of="2019-10-25")
    assert check.n_current == 20 * len(days) and check.n_outcomes == 20 * 14
    tested = set(check.report.feature_drift["feature"])
    model_features = set(ModelRegistry.from_settings(settings).load(settings.model_name).feature_columns)
    assert tested and tested < model_features and "days_to_quarter_end" in model_features
    assert {c.removesuffix("_rank") for c in model_features - tested} <= set(CALENDAR_CYCLE_FEATURES)
    log_file = settings.home_dir / "alerts.log"
    if check.report.alerts:  # an alert seen twice within the de-duplication window is sent once
        sent = [json.loads(line)["key"] for line in log_file.read_text().splitlines()]
        assert len(sent) == len(set(sent))


def probe(db_url: str) -> None:
    """A scheduled job: attempts are logged, the run happens only for the lock's winner."""
    engine = sa.create_engine(db_url)
    now = time.time()
    key = str(int(round(now / 4.0)) * 4)  # the occurrence: fire times are on multiples of 4 s
    won = run_log.claim(engine, "probe", key)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe_attempts (run_key TEXT, won INTEGER)")
        conn.exec_driver_sql(f"INSERT INTO probe_attempts VALUES ('{key}', {int(won)})")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_schedulers_sharing_a_job_store_run_each_occurrence_once(backend, tmp_path, request) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    url = f"sqlite:///{tmp_path / 'ops.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    schedulers = []
    start = datetime.now() + timedelta(seconds=1)
    for _ in range(2):
        s = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)})
        s.add_job("tests.serving.test_retraining_api:probe", CronTrigger(second="*/4", start_date=start), id="probe",
                  kwargs={"db_url": url}, replace_existing=True, misfire_grace_time=30)
        schedulers.append(s)
    for s in schedulers:
        s.start()
    time.sleep(10)
    for s in schedulers:
        s.shutdown(wait=True)
    with sa.create_engine(url).connect() as conn:
        rows = pd.DataFrame(conn.exec_driver_sql("SELECT run_key, won FROM probe_attempts").all(),
                            columns=["run_key", "won"])
    per_key = rows.groupby("run_key")["won"].agg(["sum", "count"])
    assert len(per_key) >= 2
    assert (per_key["sum"] == 1).all()  # every occurrence ran exactly once
    assert (per_key["count"] >= 2).any()  # ... though both schedulers fired it


def test_the_api_alerts_on_its_own_error_rate(built: Built, tmp_path: Path) -> None:
    """A market store that is down makes every select a 503: the service watch raises one alert."""
    from vfr.serving.metrics import ServiceWatch

    settings = make_settings(built, tmp_path, store_url="postgresql+psycopg://postgres@127.0.0.1:1/test",
                             service_alert_interval_s=0)
    with client_for(settings) as client:
        for _ in range(25):
            assert client.get("/api/stocks/select", params={"top": 1}).status_code == 503
        state = client.app.state
        watch = ServiceWatch(settings, state.metrics, state.engine.latency, state.engine.predlog.engine, 60)
        sent = watch.check()
        assert [a.metric for a in sent] == ["api_error_rate"] and sent[0].value == 1.0
        assert sent[0].threshold == 0.05 and "api_error_rate" in sent[0].message
        assert watch.check() == []  # the window restarted: fewer than 20 requests since
        for _ in range(25):
            client.get("/api/stocks/select", params={"top": 1})
        assert watch.check() == []  # fired again, but de-duplicated within the window
    lines = (settings.home_dir / "alerts.log").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["metric"] == "api_error_rate"


def test_a_triggered_run_that_fails_answers_with_its_record(built: Built, tmp_path: Path) -> None:
    settings = private_copy(built, tmp_path, train_window=50_000,
                            mlflow_tracking_uri=f"sqlite:///{tmp_path / 'registry.db'}")
    with client_for(settings) as client:
        r = client.post("/api/ml/retraining/trigger", json={"wait": True, "rebuild_features": False},
                        headers=auth(settings, "admin"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "failed" and body["run"]["status"] == "failed"
        assert "train" in body["run"]["reason"] and body["run"]["challenger_version"] is None
        assert client.get("/api/health").status_code == 200  # the API keeps serving


def _status(client, headers) -> dict:
    r = client.get("/api/ml/retraining/status", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_triggered_run_trains_in_a_worker_process_and_a_dead_worker_is_reported(built: Built,
                                                                                   tmp_path: Path) -> None:
    """The trigger answers at once with the pid of a separate worker process, which holds the
    retraining lease and records its run; the API's process never trains. A worker killed
    mid-run is reported as a failed run ("holder died") and the lock is free again; the next
    trigger runs to its end."""
    import os
    import signal
    import socket

    # a run on all the data has fresh dates after the mid-2019 champion, so it trains a challenger
    # and holds the lease for a while (the window the kill needs)
    settings, _ = mid_2019_champion(built, tmp_path)
    admin, member = auth(settings, "admin"), auth(settings, "free")
    with client_for(settings) as client:
        # killed while it holds the lease
        t0 = time.perf_counter()
        r = client.post("/api/ml/retraining/trigger", json={"rebuild_features": False}, headers=admin)
        assert r.status_code == 202, r.text
        assert time.perf_counter() - t0 < 2.0  # answered before the worker even imported its modules
        pid = r.json()["worker_pid"]
        assert r.json()["status"] == "started" and isinstance(pid, int) and pid != os.getpid()
        deadline = time.monotonic() + 120
        while (status := _status(client, member))["lease_owner"] != f"{socket.gethostname()}:{pid}":
            assert time.monotonic() < deadline, "the worker never took the retraining lease"
            assert pid in client.app.state.engine.retraining.running(), "the worker exited early"  # type: ignore[attr-defined]
            time.sleep(0.05)
        assert status["running"] is True and status["runs"][0]["status"] == "running"
        assert client.post("/api/ml/retraining/trigger", json={}, headers=admin).status_code == 409
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (status := _status(client, member))["runs"][0]["status"] == "running":
            assert time.monotonic() < deadline, "the dead worker's run was not reported"
            time.sleep(0.1)
        last = status["runs"][0]
        assert last["status"] == "failed" and "holder died" in last["reason"] and str(pid) in last["reason"]
        assert status["running"] is False and status["lease_owner"] is None
        assert client.get("/api/health").status_code == 200  # the API kept serving

        # the lock is free: the next trigger runs in its worker to the end and records its decision
        r = client.post("/api/ml/retraining/trigger", json={"rebuild_features": False}, headers=admin)
        assert r.status_code == 202, r.text
        pid = r.json()["worker_pid"]
        job = client.app.state.engine.retraining.jobs[-1]  # type: ignore[attr-defined]
        assert job.pid == pid and job.wait(300), "the worker did not finish"
        assert job.returncode == 0 and job.result["decision"]["trigger"] == "api"
        runs = _status(client, member)["runs"]
        assert runs[0]["trigger"] == "api" and runs[0]["status"] == job.result["decision"]["status"]
        assert runs[0]["status"] not in ("running", "failed") and runs[0]["finished_at"] is not None
