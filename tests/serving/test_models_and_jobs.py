"""Model endpoints (promote, rollback, A/B traffic), the outcomes job, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.serving.conftest import SECRET, Built, auth, client_for, free_port, make_settings
from tests.serving.test_failures import own_registry
from vfr.data import MarketStore
from vfr.ml import make_labels
from vfr.serving import ServingEngine, verify_token
from vfr.serving.models import bucket


def test_promote_and_rollback(built: Built, tmp_path: Path) -> None:
    settings, registry, versions = own_registry(built, tmp_path, n=3)  # champion = 3
    name = built.model_name
    admin = auth(settings, "admin")
    with client_for(settings) as client:
        r = client.get(f"/api/ml/models/{name}", headers=auth(settings, "free"))
        assert r.status_code == 200 and r.json()["champion"] == "3"
        assert [v["version"] for v in r.json()["versions"]] == ["3", "2", "1"]
        assert client.get("/api/ml/models/unknown-model", headers=admin).status_code == 404
        before = client.get("/api/stocks/select", params={"include_ml": True, "top": 1}).json()
        assert before["ml"]["models"][0]["version"] == "3"
        r = client.post(f"/api/ml/models/{name}/promote", json={"version": "1"}, headers=admin)
        assert r.status_code == 200 and r.json() == {"name": name, "champion": "1", "previous": "3"}
        assert registry.champion_version(name) == "1"
        after = client.get("/api/stocks/select", params={"include_ml": True, "top": 1}).json()
        assert after["ml"]["models"][0]["version"] == "1"  # served at once, caches invalidated
        assert client.post(f"/api/ml/models/{name}/promote", json={"version": "1"}, headers=admin).status_code == 409
        assert client.post(f"/api/ml/models/{name}/promote", json={"version": "9"}, headers=admin).status_code == 404
        assert client.post(f"/api/ml/models/{name}/promote", json={"version": "x"}, headers=admin).status_code == 422
        r = client.post(f"/api/ml/models/{name}/rollback", headers=admin)
        assert r.status_code == 200 and r.json() == {"name": name, "champion": "3", "previous": "1"}
        assert registry.champion_version(name) == "3"


def test_ab_routing_by_a_traffic_split_stored_in_the_registry(built: Built, tmp_path: Path) -> None:
    settings, registry, versions = own_registry(built, tmp_path, n=2)  # champion = 2
    name = built.model_name
    with client_for(settings) as client:
        r = client.post(f"/api/ml/models/{name}/traffic", json={"version": "1", "share": 0.3},
                        headers=auth(settings, "admin"))
        assert r.status_code == 200 and r.json()["challenger"] == "1" and r.json()["traffic_split"] == 0.3
        tag = registry.client.get_model_version(name, "1").tags["vfr.ab_traffic"]
        assert float(tag) == 0.3
        routes = {}
        for i in range(60):
            rid = f"req-{i}"
            body = client.get("/api/stocks/select", params={"include_ml": True, "top": 1},
                              headers={"X-Request-ID": rid}).json()
            expected = "challenger" if bucket(rid) < 0.3 else "champion"
            assert body["ml"]["route"] == expected
            assert body["ml"]["models"][0]["version"] == ("1" if expected == "challenger" else "2")
            routes[rid] = body["ml"]["route"]
        assert 5 <= sum(v == "challenger" for v in routes.values()) <= 35
        # deterministic per request id
        again = client.get("/api/stocks/select", params={"include_ml": True, "top": 1},
                           headers={"X-Request-ID": "req-7"}).json()
        assert again["ml"]["route"] == routes["req-7"]
        r = client.post(f"/api/ml/models/{name}/traffic", json={"version": "2", "share": 0.5},
                        headers=auth(settings, "admin"))
        assert r.status_code == 409  # the champion cannot be its own challenger
        r = client.post(f"/api/ml/models/{name}/traffic", json={"version": "1", "share": 1.5},
                        headers=auth(settings, "admin"))
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "share"


def test_outcomes_job_fills_realised_returns_once_the_horizon_has_passed(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path)
    with MarketStore(built.store_url) as store:
        dates = store.read_table("features", columns=["date"])["date"].drop_duplicates().sort_values()
        prices = store.read_prices(columns=["close"])
    past = dates.iloc[-30]  # its 1w horizon has passed
    engine = ServingEngine(settings, log_flush_interval_s=0)
    with client_for(settings, engine=engine) as client:
        r = client.get("/api/stocks/select", params={"include_ml": True, "date": str(past.date())})
        assert r.status_code == 200
        assert client.get("/api/stocks/select", params={"include_ml": True}).status_code == 200  # latest: not yet
        r = client.post("/api/admin/outcomes", headers=auth(settings, "admin"))
        assert r.status_code == 200
        n_past = int((prices["date"] == past).sum())
        assert r.json()["written"] == n_past
        assert client.post("/api/admin/outcomes", headers=auth(settings, "admin")).json()["written"] == 0
        with engine.predlog.engine.connect() as conn:
            got = pd.read_sql("SELECT p.symbol, p.feature_date, p.predicted_class, o.realised_return, "
                              "o.excess_return, o.correct, o.horizon_end FROM ml_outcomes o "
                              "JOIN ml_predictions p ON p.id = o.prediction_id", conn)
            n_logged = conn.execute(sa.text("SELECT COUNT(*) FROM ml_predictions")).scalar()
    assert n_logged == 2 * n_past and len(got) == n_past
    labels = make_labels(prices, {"1w": 5})
    labels = labels[labels["date"] == past].set_index("symbol")
    got = got.set_index("symbol")
    pd.testing.assert_series_equal(got["realised_return"], labels.loc[got.index, "fwd_ret_1w"],
                                   check_names=False, rtol=1e-9)
    assert (got["correct"].astype(bool) == ((got["predicted_class"] == 1) == (got["excess_return"] > 0))).all()
    assert (pd.to_datetime(got["horizon_end"]) == dates.iloc[-30 + 5]).all()


def test_cli_mints_tokens_and_serves(built: Built, tmp_path: Path) -> None:
    env = os.environ | {"VFR_HOME": str(tmp_path / "home"), "VFR_JWT_SECRET": SECRET,
                        "VFR_STORE_URL": built.store_url, "VFR_MLFLOW_TRACKING_URI": built.tracking_uri}
    proc = subprocess.run([sys.executable, "-m", "vfr.cli", "auth", "token", "--user", "bob", "--tier", "pro",
                           "--days", "30"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    token = proc.stdout.strip()
    who = verify_token(make_settings(built, tmp_path), token)
    assert (who.user, who.tier) == ("bob", "pro")
    bad = subprocess.run([sys.executable, "-m", "vfr.cli", "auth", "token", "--user", "bob", "--tier", "gold"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "tier" in bad.stderr and "Traceback" not in bad.stderr  # usage error
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vfr.cli", "serve", "--port", str(port), "--log-level",
                               "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("vfr serve did not start")
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["store"] == "ok"
        r = httpx.get(f"http://127.0.0.1:{port}/api/ml/models", headers={"Authorization": f"Bearer {token}"},
                      timeout=30)
        assert r.status_code == 200 and r.json()[0]["champion"] == built.champion
    finally:
        server.terminate()
        server.wait(30)


def test_serve_day_serves_a_past_date_and_writes_its_predictions(built: Built, tmp_path: Path) -> None:
    """What `vfr ops replay` hands to retraining: one day served with the champion, logged before it returns."""
    from vfr.opsdb import prediction_counts, served_features
    from vfr.serving import serve_day

    settings = make_settings(built, tmp_path)
    with MarketStore(built.store_url) as store:
        day = store.read_table("features", columns=["date"])["date"].drop_duplicates().sort_values().iloc[-10]
        n = len(store.read_table("features", columns=["symbol"], start=day, end=day))
    logged, status = serve_day(settings, day, "replay-test")
    assert (logged, status) == (n, "ok")
    db = sa.create_engine(settings.resolved_serving_db_url)
    assert prediction_counts(db) == {"ml_predictions": n, "ml_outcomes": 0}
    served = served_features(db, model_name=built.model_name, model_version=built.champion, start=day, end=day)
    assert len(served) == n and set(served["date"]) == {day}
    assert serve_day(settings, day, "replay-test-again")[1] == "ok"
    assert prediction_counts(db)["ml_predictions"] == n  # a prediction is logged once however often it is served
    db.dispose()
