"""Retraining pipeline on real data: quality gates, the first champion, challenger vs champion on
fresh dates, the guard, failures that leave the registry as it was, and the run lock."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import SP500_UNIVERSE, require_shared
from vfr.config import Settings
from vfr.data import MarketStore
from vfr.errors import StageError
from vfr.ml import ModelRegistry, TrainConfig
from vfr.opsdb import runs as run_log
from vfr.pipeline import stage_features, stage_ingest
from vfr.retraining import guard_violations, recent_runs, run_retraining
from vfr.retraining.retrain import fresh_rows

SMALL = dict(max_rounds=30, train_window=252, retrain_every=126, date_stride=3, params={"min_data_in_leaf": 50},
             num_threads=1)


@pytest.fixture(scope="module")
def store_home(tmp_path_factory, sp500_raw_small: pd.DataFrame) -> Path:
    """A private store: 20 real stocks 2014-2019 with their features (no model yet)."""
    require_shared(SP500_UNIVERSE)
    home = tmp_path_factory.mktemp("retrain-store")
    prices = home / "p.parquet"
    sp500_raw_small[sp500_raw_small["date"] >= "2014-01-01"].to_parquet(prices)
    settings = Settings(home=home)
    stage_ingest(settings, prices, SP500_UNIVERSE)
    stage_features(settings)
    return home


def fresh_settings(store_home: Path, tmp_path: Path, **kw) -> Settings:
    """Settings sharing the store but with their own registry, serving database and reports."""
    return Settings(home=tmp_path / "home", store_url=f"duckdb:///{store_home / 'vfr.duckdb'}", **kw)


def private_store(store_home: Path, tmp_path: Path, edit=None, **kw) -> Settings:
    """Settings on a private copy of the store (prices and features, the latter passed through ``edit``)."""
    settings = Settings(home=tmp_path / "home", **kw)
    with MarketStore(f"duckdb:///{store_home / 'vfr.duckdb'}") as src:
        features, prices = src.read_table("features"), src.read_prices()
    with MarketStore.from_settings(settings) as store:
        store.replace_table("prices", prices)
        store.replace_table("features", edit(features) if edit else features)
    return settings


def test_guard_refuses_more_than_ten_percent_worse() -> None:
    champion = {"roc_auc": 0.52, "directional_accuracy": 0.51, "rank_ic_mean": 0.02, "sharpe": 1.0}
    # 0.89 < 1.0 - 0.1 * 1.0 = 0.90 -> violated; rank IC 0.0181 >= 0.02 - 0.002 = 0.018 -> fine
    challenger = {"roc_auc": 0.60, "directional_accuracy": 0.50, "rank_ic_mean": 0.0181, "sharpe": 0.89}
    out = guard_violations(challenger, champion, 0.10)
    assert len(out) == 1 and out[0].startswith("sharpe 0.8900")
    assert guard_violations(challenger | {"sharpe": 0.90}, champion, 0.10) == []
    # negative champion values: 10% of |value| below it
    assert guard_violations({"rank_ic_mean": -0.012}, {"rank_ic_mean": -0.01}, 0.10)
    assert not guard_violations({"rank_ic_mean": -0.0105}, {"rank_ic_mean": -0.01}, 0.10)
    assert not guard_violations({"sharpe": np.nan}, {"sharpe": 1.0}, 0.10)  # undefined never violates


def test_fresh_rows_start_after_the_training_window_and_the_embargo() -> None:
    dates = pd.bdate_range("2019-01-01", periods=30)
    data = pd.DataFrame({"date": np.repeat(dates, 2), "symbol": ["A", "B"] * 30, "y": 1.0})
    data.loc[data["date"] > dates[-6], "y"] = np.nan  # the last 5 dates have no label yet
    rows = fresh_rows(data, "y", dates[9], embargo=5)
    assert rows["date"].min() == dates[15]  # dates 10..14 are the embargo
    assert rows["date"].max() == dates[-6] and rows["y"].notna().all()
    assert fresh_rows(data, "y", dates[-3], embargo=5).empty


def test_retraining_lifecycle_first_champion_then_a_compared_challenger(store_home, tmp_path) -> None:
    settings = fresh_settings(store_home, tmp_path, retrain_min_fresh_dates=10)
    first = run_retraining(settings, trigger="test", as_of="2018-12-31", config=TrainConfig(**SMALL),
                           rebuild_features=False)
    assert first.status in ("deployed", "kept") and first.challenger_version == "1"
    assert first.as_of == "2018-12-31"
    assert first.quality["status"] in ("pass", "warning")
    registry = ModelRegistry.from_settings(settings)
    if first.status == "kept":  # the small set may fail the first-champion gate: make it champion by hand
        registry.promote(settings.model_name, "1")
    model = registry.load(settings.model_name, "1")
    # saved with the model: the drift reference from the training window and the lineage record
    ref = pd.read_parquet(model.file("drift_reference.parquet"))
    assert "probability" in ref and set(model.feature_columns) <= set(ref.columns)
    assert ref["date"].max() <= pd.Timestamp("2018-12-31")
    lineage = json.loads(model.file("lineage.json").read_text())
    assert lineage["fingerprint"] == model.metadata["data_fingerprint"]
    assert lineage["date_range"][1] <= "2018-12-31"
    # the champion never saw a label ending after its as-of date
    assert model.metadata["training_window"][1] < "2018-12-31"

    # a week later there are too few fresh dates to judge a challenger: none is trained
    early = run_retraining(settings, trigger="test", as_of="2019-01-08", config=TrainConfig(**SMALL),
                           rebuild_features=False)
    assert early.status == "skipped" and early.challenger_version is None and "fresh dates" in early.reason
    assert [v["version"] for v in registry.versions(settings.model_name)] == ["1"]

    second = run_retraining(settings, trigger="test", as_of="2019-06-28", config=TrainConfig(**SMALL),
                            rebuild_features=False)
    cmp = second.comparison
    assert second.challenger_version == "2" and second.champion_before == "1"
    assert cmp["first_date"] > cmp["champion_training_end"] and cmp["last_date"] <= "2019-06-28"
    assert cmp["n_dates"] >= 10 and set(cmp["champion"]) >= {"roc_auc", "sharpe", "rank_ic_mean"}
    assert second.status in ("deployed", "ab_test", "kept", "refused")
    champion_now = registry.champion_version(settings.model_name)
    assert champion_now == ("2" if second.status == "deployed" else "1")
    if second.status == "refused":
        assert "guard" in second.reason
    # the decision is written: a run row and a JSON report
    row = recent_runs(sa.create_engine(settings.resolved_serving_db_url), limit=1).iloc[0]
    assert row["status"] == second.status and row["challenger_version"] == "2"
    assert json.loads(Path(second.report_path).read_text())["comparison"]["n_dates"] == cmp["n_dates"]


def test_a_critical_quality_gate_stops_training_and_registers_nothing(store_home, tmp_path) -> None:
    # a private copy of the store with a third of one feature's values lost (a broken feed)
    def lose(features: pd.DataFrame) -> pd.DataFrame:
        lost = np.random.default_rng(0).random(len(features)) < 0.3
        return features.assign(ret_5d=features["ret_5d"].mask(lost))

    settings = private_store(store_home, tmp_path, lose)
    decision = run_retraining(settings, trigger="test", config=TrainConfig(**SMALL), rebuild_features=False)
    assert decision.status == "blocked" and "completeness" in decision.reason
    assert decision.challenger_version is None
    registry = ModelRegistry.from_settings(settings)
    assert not _has(registry, settings)  # nothing was registered
    report = Path(settings.reports_dir / "retraining" / f"run-{decision.run_id}-quality.md").read_text()
    assert "completeness" in report and "ret_5d" in report


def test_a_failed_training_is_recorded_and_changes_nothing(store_home, tmp_path) -> None:
    settings = fresh_settings(store_home, tmp_path)
    with pytest.raises(StageError, match="train"):
        run_retraining(settings, trigger="test", config=TrainConfig(**(SMALL | {"train_window": 50_000})),
                       rebuild_features=False)
    runs = recent_runs(sa.create_engine(settings.resolved_serving_db_url))
    assert runs.iloc[0]["status"] == "failed" and runs.iloc[0]["challenger_version"] is None
    registry = ModelRegistry.from_settings(settings)
    assert not _has(registry, settings)
    # the lock was released: a later run is not skipped
    engine = sa.create_engine(settings.resolved_serving_db_url)
    assert run_log.claim(engine, "retrain", run_log.ACTIVE)


def _has(registry, settings) -> bool:
    try:
        return bool(registry.versions(settings.model_name))
    except Exception:  # noqa: BLE001
        return False


def test_a_second_retraining_while_one_runs_is_skipped(store_home, tmp_path) -> None:
    settings = fresh_settings(store_home, tmp_path)
    engine = sa.create_engine(settings.resolved_serving_db_url)
    with run_log.exclusive(engine, "retrain") as got:
        assert got
        d = run_retraining(settings, trigger="test", config=TrainConfig(**SMALL), rebuild_features=False)
    assert d.status == "busy" and d.challenger_version is None


def test_the_run_lock_admits_exactly_one_of_many_threads(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    wins = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        wins.append(run_log.claim(engine, "daily_monitoring", "2019-06-03", owner=f"t{i}"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert run_log.claim(engine, "daily_monitoring", "2019-06-04")  # the next occurrence is free


def test_vfr_train_stops_on_a_critical_gate_with_a_report(store_home, tmp_path) -> None:
    from vfr.ml import QualityGateError
    from vfr.pipeline import stage_train

    settings = private_store(store_home, tmp_path, lambda f: pd.concat([f, f.tail(3)]))  # duplicated rows
    with pytest.raises(QualityGateError, match="duplicate_rows"):
        stage_train(settings, TrainConfig(**SMALL))
    assert "duplicate_rows" in (settings.reports_dir / "quality-report.md").read_text()
    assert not _has(ModelRegistry.from_settings(settings), settings)
    with MarketStore.from_settings(settings) as store:
        assert not store.has_table("predictions_oos")


def test_the_command_line_ingests_retrains_checks_drift_and_lists_jobs(tmp_path, sp500_raw_small) -> None:
    import os
    import subprocess
    import sys

    require_shared(SP500_UNIVERSE)
    prices = tmp_path / "p.parquet"
    sp500_raw_small[sp500_raw_small["date"] >= "2016-01-01"].to_parquet(prices)
    env = os.environ | {"VFR_HOME": str(tmp_path / "home"), "COLUMNS": "200", "VFR_RETRAIN_EVERY": "126",
                        "VFR_TRAIN_WINDOW": "252"}

    def vfr(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vfr.cli", *args], capture_output=True, text=True, env=env,
                              timeout=600)

    r = vfr("retrain", "--prices", str(prices), "--universe", str(SP500_UNIVERSE))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "run 1:" in r.stdout and ("deployed" in r.stdout or "kept" in r.stdout)
    assert "walk-forward training" in r.stderr and "quality gates" in r.stderr  # progress is shown
    registry = ModelRegistry.from_settings(Settings(home=tmp_path / "home"))
    if registry.champion_version(Settings().model_name) is None:
        registry.promote(Settings().model_name, "1")
    r = vfr("monitor", "drift")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Feature drift (KS)" in r.stdout and "PSI of predicted probabilities" in r.stdout
    r = vfr("scheduler", "jobs")
    assert r.returncode == 0 and "monthly_retraining" in r.stdout


def test_a_failure_after_promotion_gives_the_champion_back(store_home, tmp_path) -> None:
    """The out-of-sample table cannot be replaced (a view sits in its place) after the challenger
    was promoted: the run fails and the previous champion is restored."""
    from vfr.ml import DeployRule

    settings = private_store(store_home, tmp_path, retrain_guard=1e9)  # rules alone decide: always deploy
    first = run_retraining(settings, trigger="test", as_of="2018-12-31", config=TrainConfig(**SMALL),
                           rebuild_features=False)
    registry = ModelRegistry.from_settings(settings)
    if first.status != "deployed":
        registry.promote(settings.model_name, first.challenger_version)
    with MarketStore.from_settings(settings) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS predictions_oos")
        conn.exec_driver_sql("CREATE VIEW predictions_oos AS SELECT 1 AS x")
    always = (DeployRule("always deploy (test)", -1.0, False, "deploy"),)
    with pytest.raises(StageError):
        run_retraining(settings, trigger="test", as_of="2019-06-28", config=TrainConfig(**SMALL),
                       rebuild_features=False, rules=always)
    run = recent_runs(sa.create_engine(settings.resolved_serving_db_url), limit=1).iloc[0]
    assert run["status"] == "failed" and "champion restored to v1" in run["reason"]
    assert registry.champion_version(settings.model_name) == "1"
