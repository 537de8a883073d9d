"""The operations database on a real SQLite file and a real PostgreSQL schema: migrations,
writes read back, atomic batches, and the package layering (nothing below serving imports it)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from vfr import opsdb

HEAD = "0005"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request, tmp_path) -> sa.Engine:
    """A fresh operations database: a new SQLite file, or a new PostgreSQL schema."""
    url = f"sqlite:///{tmp_path / 'sub' / 'ops.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = opsdb.connect(url)
    yield engine
    engine.dispose()


def _prediction(symbol: str, day: date = date(2019, 6, 3), **over) -> dict:
    row = {"served_at": datetime(2019, 6, 3, 15, 0), "request_id": "r-1", "symbol": symbol, "feature_date": day,
           "model_name": "m", "model_version": "1", "horizon": "1w", "predicted_class": 1, "probability": 0.7,
           "confidence": 0.4, "confidence_level": opsdb.confidence_level(0.4),
           "features": json.dumps({"mom_21d": 0.1, "vol_21d": 0.2})}
    return row | over


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar())


def test_migrations_create_every_table_once_and_match_the_schema(db: sa.Engine) -> None:
    assert opsdb.revision(db) is None
    opsdb.migrate(db)
    opsdb.migrate(db)  # idempotent
    assert opsdb.revision(db) == HEAD
    inspector = sa.inspect(db)
    assert set(opsdb.TABLES) <= set(inspector.get_table_names())
    for table in (opsdb.PREDICTIONS, opsdb.OUTCOMES, opsdb.DRIFT, opsdb.ALERTS, opsdb.RUNS, opsdb.LOCKS):
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(columns) == {c.name for c in table.columns}, table.name
        for c in table.columns:  # the query mirrors say NOT NULL exactly where the migrations do
            if not c.primary_key:  # (SQLite reports its primary keys as nullable)
                assert columns[c.name]["nullable"] == c.nullable, (table.name, c.name)
    assert opsdb.TABLES == ("ml_predictions", "ml_outcomes", "ml_drift", "ml_alerts", "ml_retraining_runs",
                            "ops_job_locks")


def test_predictions_and_outcomes_round_trip(db: sa.Engine) -> None:
    rows = [_prediction("AAPL"), _prediction("MSFT", probability=0.3, predicted_class=0)]
    assert opsdb.insert_predictions(db, rows) == 2
    opsdb.insert_predictions(db, [_prediction("AAPL", request_id="r-2")])  # same prediction again: skipped
    assert opsdb.prediction_counts(db) == {"ml_predictions": 2, "ml_outcomes": 0}
    open_ = opsdb.open_predictions(db).sort_values("symbol")
    assert open_["symbol"].tolist() == ["AAPL", "MSFT"] and open_["predicted_class"].tolist() == [1, 0]
    assert (open_["date"] == pd.Timestamp("2019-06-03")).all() and (open_["horizon"] == "1w").all()
    served = opsdb.served_features(db, model_name="m", model_version="1", start="2019-06-01", end="2019-06-30")
    assert sorted(served["symbol"]) == ["AAPL", "MSFT"] and served["mom_21d"].tolist() == [0.1, 0.1]
    assert opsdb.served_features(db, model_name="m", model_version="2", start="2019-06-01", end="2019-06-30").empty

    ids = dict(zip(open_["symbol"], open_["id"], strict=True))
    outcome = {"prediction_id": int(ids["AAPL"]), "horizon_end": date(2019, 6, 10), "realised_return": 0.02,
               "excess_return": 0.01, "correct": True, "evaluated_at": datetime(2019, 6, 11)}
    assert opsdb.insert_outcomes(db, [outcome]) == 1
    opsdb.insert_outcomes(db, [outcome | {"excess_return": -1.0}])  # an outcome is written once
    assert opsdb.prediction_counts(db) == {"ml_predictions": 2, "ml_outcomes": 1}
    assert opsdb.open_predictions(db)["symbol"].tolist() == ["MSFT"]
    done = opsdb.evaluated_outcomes(db, model_name="m", start="2019-06-10", end="2019-06-10")
    assert done[["probability", "excess_return", "correct"]].to_dict("records") == [
        {"probability": 0.7, "excess_return": 0.01, "correct": True}]


def test_drift_alerts_runs_and_locks_round_trip(db: sa.Engine) -> None:
    t0 = datetime(2019, 6, 3, 18, 30)
    base = {"as_of": date(2019, 6, 3), "model_name": "m", "model_version": "1", "threshold": 0.15, "p_value": None}
    old = [base | {"computed_at": t0, "kind": "feature", "name": "mom_21d", "statistic": 0.1, "breached": False}]
    new = [base | {"computed_at": t0 + timedelta(days=1), "kind": "feature", "name": "mom_21d", "statistic": 0.3,
                   "breached": True},
           base | {"computed_at": t0 + timedelta(days=1), "kind": "prediction", "name": "psi", "statistic": None,
                   "breached": False}]
    assert opsdb.insert_drift(db, old) == 1 and opsdb.insert_drift(db, new) == 2
    latest = opsdb.latest_drift(db, "m")
    assert latest["name"].tolist() == ["mom_21d", "psi"] and latest["breached"].tolist() == [True, False]
    assert latest["statistic"].iloc[0] == 0.3 and pd.isna(latest["statistic"].iloc[1])
    assert opsdb.latest_drift(db, "other").empty

    alert = {"key": "psi:m", "rule": "psi", "metric": "psi", "severity": "warning", "message": "PSI 0.3",
             "value": 0.3, "threshold": 0.2, "dedup_window_s": 3600}
    assert opsdb.claim_alert(db, now=t0, **alert) == (True, None)
    assert opsdb.claim_alert(db, now=t0 + timedelta(minutes=5), **alert) == (False, t0)  # within the window
    opsdb.record_delivery(db, "psi:m", ["log", "webhook"])
    won, previous = opsdb.claim_alert(db, now=t0 + timedelta(hours=2), **alert)
    assert won and previous == t0
    opsdb.release_alert(db, "psi:m", t0 + timedelta(hours=2), previous)  # nobody took it: claim given back
    alerts = opsdb.recent_alerts(db)
    assert alerts[["key", "count", "delivered_to"]].to_dict("records") == [
        {"key": "psi:m", "count": 3, "delivered_to": "log,webhook"}]
    assert alerts["last_sent_at"].iloc[0] == t0
    with pytest.raises(ValueError, match="limit"):
        opsdb.recent_alerts(db, limit=0)

    assert opsdb.claim(db, "daily", "2019-06-03", owner="a") and not opsdb.claim(db, "daily", "2019-06-03", owner="b")
    with opsdb.exclusive(db, "retrain") as got:
        assert got and opsdb.is_running(db) and opsdb.holder(db)["owner"] == opsdb.owner_id()
        with opsdb.exclusive(db, "retrain") as again:
            assert not again
    assert not opsdb.is_running(db)
    run = opsdb.start_run(db, trigger="test", model_name="m", champion_before="1")
    opsdb.finish_run(db, run, status="kept", action="keep", challenger_version="2", champion_after="1",
                     reason="no better", report={"n": 3})
    runs = opsdb.recent_runs(db, model_name="m")
    assert runs["report"].tolist() == [{"n": 3}]
    [row] = opsdb.run_rows(runs)
    assert set(row) == set(opsdb.RUN_FIELDS) and row["status"] == "kept" and row["finished_at"] >= row["started_at"]


def test_a_failed_write_leaves_the_table_as_it_was(db: sa.Engine) -> None:
    opsdb.insert_predictions(db, [_prediction("AAPL")])
    before = opsdb.served_features(db, model_name="m", model_version="1", start="2019-01-01", end="2019-12-31")
    bad = [_prediction("MSFT"), _prediction("JPM") | {"symbol": None}]  # NOT NULL violated by the second row
    with pytest.raises(sa.exc.IntegrityError):
        opsdb.insert_predictions(db, bad)
    after = opsdb.served_features(db, model_name="m", model_version="1", start="2019-01-01", end="2019-12-31")
    pd.testing.assert_frame_equal(after, before)  # MSFT, written first in the batch, was rolled back
    assert _count(db, opsdb.PREDICTIONS) == 1

    good = {"computed_at": datetime(2019, 6, 3), "as_of": date(2019, 6, 3), "model_name": "m", "model_version": "1",
            "kind": "feature", "name": "mom_21d", "statistic": 0.1, "threshold": 0.15, "breached": False,
            "p_value": 0.5}
    with pytest.raises(sa.exc.IntegrityError):
        opsdb.insert_drift(db, [good, good | {"breached": None}])
    assert _count(db, opsdb.DRIFT) == 0 and opsdb.latest_drift(db).empty

    [pid] = opsdb.open_predictions(db)["id"].tolist()
    outcome = {"prediction_id": int(pid), "horizon_end": date(2019, 6, 10), "realised_return": 0.02,
               "excess_return": 0.01, "correct": True, "evaluated_at": datetime(2019, 6, 11)}
    with pytest.raises(sa.exc.IntegrityError):
        opsdb.insert_outcomes(db, [outcome, outcome | {"prediction_id": int(pid) + 1, "correct": None}])
    assert _count(db, opsdb.OUTCOMES) == 0


def test_an_unreachable_database_is_recognised() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = opsdb.connect(f"postgresql+psycopg://postgres@127.0.0.1:{port}/none", connect_timeout_s=1)
    with pytest.raises(sa.exc.OperationalError) as caught:
        opsdb.insert_predictions(engine, [_prediction("AAPL")])
    assert opsdb.is_unavailable(caught.value) and not opsdb.is_unavailable(ValueError("bad row"))
    engine.dispose()


@pytest.mark.parametrize(("package", "forbidden"), [
    ("vfr.opsdb", ("vfr.serving", "vfr.monitoring", "vfr.retraining", "vfr.cli")),
    ("vfr.monitoring", ("vfr.serving", "vfr.retraining", "vfr.cli")),
    ("vfr.retraining", ("vfr.serving", "vfr.cli")),
])
def test_lower_layers_never_import_serving(package: str, forbidden: tuple[str, ...]) -> None:
    code = (f"import sys, json, {package}\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('vfr.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert package in loaded
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert not bad, f"importing {package} loads {bad}"


_HOLDER = """
import sys, time
from vfr import opsdb
db = opsdb.connect(sys.argv[1])
run = opsdb.start_run(db, trigger="test", model_name="m", champion_before=None)
with opsdb.exclusive(db, "retrain", ttl_s=3600, run_id=run) as got:
    print("held" if got else "busy", run, flush=True)
    time.sleep(120)
"""


def test_a_lease_whose_holder_process_died_is_taken_over_and_its_run_failed(db: sa.Engine) -> None:
    url = db.url.render_as_string(hide_password=False)
    child = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdout=subprocess.PIPE, text=True)
    try:
        state, run = child.stdout.readline().split()  # type: ignore[union-attr]
        assert state == "held"
        # a live holder (an hour-long lease, a running process) keeps it
        assert opsdb.is_running(db, ttl_s=3600)
        with opsdb.exclusive(db, "retrain", ttl_s=3600) as got:
            assert not got
        assert opsdb.holder(db)["owner"] == f"{socket.gethostname()}:{child.pid}"
    finally:
        child.kill()  # the retraining process crashes: no release, no finish_run
        child.wait(30)
    assert opsdb.holder(db) is not None  # the row outlives its holder...
    assert not opsdb.is_running(db, ttl_s=3600)  # ...but does not count as a running retraining
    with opsdb.exclusive(db, "retrain", ttl_s=3600) as got:  # long before the lease would expire
        assert got and opsdb.holder(db)["owner"] == opsdb.owner_id()
    [row] = opsdb.run_rows(opsdb.recent_runs(db, model_name="m"))
    assert row["id"] == int(run) and row["status"] == "failed" and row["finished_at"] is not None
    assert row["reason"] == f"holder died: process {child.pid} on {socket.gethostname()} is gone"
    assert opsdb.holder(db) is None


def test_a_lease_without_heartbeat_is_taken_over_and_a_beating_one_is_not(db: sa.Engine) -> None:
    opsdb.ensure_schema(db)
    run = opsdb.start_run(db, trigger="test", model_name="m", champion_before=None)
    old = opsdb.utcnow() - timedelta(minutes=10)
    lease = {"job_id": "retrain", "run_key": opsdb.ACTIVE, "owner": "another-host:4242", "acquired_at": old,
             "run_id": run}
    with db.begin() as conn:  # a holder on another machine, alive 10 minutes ago, beating until 3 s ago
        conn.execute(opsdb.LOCKS.insert().values(**lease, heartbeat_at=opsdb.utcnow() - timedelta(seconds=3)))
    assert opsdb.is_running(db, ttl_s=120)
    with opsdb.exclusive(db, "retrain", ttl_s=120) as got:
        assert not got  # its heartbeat is fresh: not taken over, however old the lock
    assert opsdb.recent_runs(db, model_name="m")["status"].tolist() == ["running"]
    with db.begin() as conn:  # its last heartbeat is now 10 minutes old
        conn.execute(opsdb.LOCKS.update().values(heartbeat_at=old))
    assert not opsdb.is_running(db, ttl_s=120)
    with opsdb.exclusive(db, "retrain", ttl_s=120) as got:
        assert got
    [row] = opsdb.run_rows(opsdb.recent_runs(db, model_name="m"))
    assert row["status"] == "failed" and row["reason"].startswith("holder died: no heartbeat from another-host:4242")

    # a holder's heartbeat keeps its lease alive well past the lease time
    with opsdb.exclusive(db, "retrain", ttl_s=0.6, heartbeat_s=0.1) as got:
        assert got
        first = opsdb.holder(db)["heartbeat_at"]
        time.sleep(1.5)
        assert opsdb.holder(db)["heartbeat_at"] > first and opsdb.is_running(db, ttl_s=0.6)
        with opsdb.exclusive(db, "retrain", ttl_s=0.6) as again:
            assert not again
    assert opsdb.holder(db) is None


def test_runs_without_a_report_yet_read_back(db: sa.Engine) -> None:
    """A running run (no report) beside a finished one: the report column reads as {} (not NaN)."""
    running = opsdb.start_run(db, trigger="api", model_name="m", champion_before=None)
    done = opsdb.start_run(db, trigger="api", model_name="m", champion_before="1")
    opsdb.finish_run(db, done, status="kept", reason="no better", report={"n": 1})
    runs = opsdb.recent_runs(db, model_name="m")
    assert runs["report"].tolist() == [{"n": 1}, {}]
    rows = opsdb.run_rows(runs)
    assert [r["id"] for r in rows] == [done, running]
    assert rows[1]["finished_at"] is None and rows[1]["reason"] is None and rows[1]["champion_before"] is None
    json.dumps(rows, default=str, allow_nan=False)  # what the API answers: valid JSON
