"""The early-signal model as a product (issue 15): train -> register -> predict -> evaluate ->
backtest -> serve, on real reports and prices of 40 S&P 500 companies (2008-2019), with a real
MLflow registry, a real DuckDB store and the FastAPI app; fallback levels tested with real
failures (altered model files, missing inputs)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.conftest import SHARED_DATA, SP500_PRICES, SP500_UNIVERSE, require_shared
from vfr.config import Settings
from vfr.data import MarketStore, tables
from vfr.earnings.stage import (
    EarningsConfig,
    event_dataset,
    read_inputs,
    register_signal,
    score_rows,
    serving_chain,
    stage_earnings_backtest,
    stage_earnings_predict,
    stage_earnings_train,
)
from vfr.earnings.walkforward import fit_calibrated, yearly_walk_forward
from vfr.errors import StageError
from vfr.ml import ModelRegistry
from vfr.pipeline import stage_features, stage_ingest, stage_ingest_fundamentals

EARNINGS = SHARED_DATA / "earnings" / "earnings_surprises.parquet"
# 25 companies with frequent large surprises and 15 with few: base rate about 0.3
EVENT_SYMBOLS = ["EQR", "PLD", "TTWO", "ESS", "AVB", "GS", "ALGN", "EA", "UDR", "TER", "TMUS", "KIM", "REG", "AMD",
                 "NFLX", "GRMN", "F", "NVDA", "ALL", "MAA", "LEN", "BXP", "MGM", "INTU", "BBY", "A", "WST", "YUM",
                 "TAP", "AXP", "SHW", "BEN", "MSFT", "NTRS", "O", "CPB", "DAL", "LRCX", "GOOGL", "HRL"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """A store with 40 companies' prices, reports and features; two registered versions."""
    require_shared(EARNINGS)
    require_shared(SP500_UNIVERSE)
    root = tmp_path_factory.mktemp("earnings-stage")
    raw = pd.read_parquet(require_shared(SP500_PRICES), filters=[("symbol", "in", EVENT_SYMBOLS),
                                                                  ("date", ">=", pd.Timestamp("2008-01-01"))])
    raw.to_parquet(root / "prices.parquet")
    uni = pd.read_csv(SP500_UNIVERSE)
    uni[uni["Symbol"].isin(EVENT_SYMBOLS)].to_csv(root / "universe.csv", index=False)
    rep = pd.read_parquet(EARNINGS)
    rep[rep["symbol"].isin(EVENT_SYMBOLS)].to_parquet(root / "earnings.parquet")
    settings = Settings(home=root / "home")
    stage_ingest(settings, root / "prices.parquet", root / "universe.csv")
    stage_ingest_fundamentals(settings, earnings=root / "earnings.parquet")
    stage_features(settings)
    config = EarningsConfig.from_settings(settings, test_years=(2018, 2019))
    first = stage_earnings_train(settings, config)
    second = stage_earnings_train(settings, replace(config, seed=7))
    registry = ModelRegistry.from_settings(settings)
    if registry.champion_version(settings.earnings_model_name) is None:  # 40 companies may not beat the rule
        registry.set_champion(settings.earnings_model_name, first.version)
    return settings, config, first, second


def test_train_evaluates_per_year_registers_and_stores_predictions(built) -> None:
    settings, _, first, second = built
    table = first.per_year.set_index("year")
    assert list(table.index) == ["2018", "2019", "all"]
    assert table.loc["all", "n"] == table.loc["2018", "n"] + table.loc["2019", "n"]
    assert 0.15 < table.loc["all", "base_rate"] < 0.5
    # company persistence of large surprises is a real signal: far above chance on unseen years
    assert table.loc["all", "roc_auc"] > 0.65
    assert np.isfinite(table["brier"]).all() and np.isfinite(table["brier_skill"]).all()
    registry = ModelRegistry.from_settings(settings)
    versions = {v["version"] for v in registry.versions(settings.earnings_model_name)}
    assert {first.version, second.version} <= versions and first.version != second.version
    loaded = registry.load(settings.earnings_model_name, second.version, check_features=False)
    meta = loaded.metadata
    assert meta["kind"] == "early_signal" and meta["lead_days"] == 7 and meta["calibration"]["method"] == "platt"
    assert json.loads(loaded.file("lineage.json").read_text())["n_events"] > 1000
    with MarketStore.from_settings(settings) as store:
        oos = store.read_table(tables.EARNINGS_PREDICTIONS_OOS)
    assert set(oos["model_version"]) == {second.version}
    assert set(oos["test_year"]) == {2018, 2019}
    assert (oos["asof_date"] < oos["reported_date"]).all()
    assert oos["probability"].between(0, 1).all()


def test_walk_forward_of_a_year_ignores_every_later_report(built) -> None:
    """No look-ahead: the 2018 predictions are the same with or without the reports of 2019."""
    settings, config, _, _ = built
    events = event_dataset(read_inputs(settings), config)
    full, _ = yearly_walk_forward(events, [2018], seed=3)
    cut, _ = yearly_walk_forward(events[events["reported_date"] < "2019-01-01"], [2018], seed=3)
    np.testing.assert_array_equal(full["probability"].to_numpy(), cut["probability"].to_numpy())
    # and the model scoring 2018 changes when a 2017 report (its validation year) changes
    moved = events.copy()
    in_2016 = moved.index[moved["reported_date"].dt.year == 2016]
    moved.loc[in_2016, "label"] = 1.0 - moved.loc[in_2016, "label"]
    flipped, _ = yearly_walk_forward(moved, [2018], seed=3)
    assert not np.allclose(flipped["probability"].to_numpy(), full["probability"].to_numpy())


def _corrupt(registry: ModelRegistry, name: str, version: str) -> None:
    folder = Path(registry.client.get_model_version(name, version).source.removeprefix("file://"))
    native = next(p for p in sorted(folder.iterdir()) if p.suffix in (".txt", ".ubj", ".cbm", ".json", ".pkl")
                  and p.name not in ("vfr_model.json", "vfr_checksums.json", "vfr_algorithm.json", "lineage.json"))
    data = bytearray(native.read_bytes())
    data[len(data) // 2] ^= 0xFF
    native.write_bytes(bytes(data))


def test_fallback_chain_with_real_failures(built, tmp_path: Path) -> None:
    """champion -> previous version -> rule -> none, each level reached by a real failure."""
    settings, config, _, _ = built
    own = replace_settings(settings, tmp_path)
    inputs = read_inputs(settings)
    events = event_dataset(inputs, config)
    registry = ModelRegistry.from_settings(own)
    name = own.earnings_model_name
    v1 = register_signal(own, fit_calibrated(events, validation_year=2018, seed=1), events, config,
                         pd.DataFrame(), [])
    v2 = register_signal(own, fit_calibrated(events, validation_year=2018, seed=2), events, config,
                         pd.DataFrame(), [])
    registry.set_champion(name, v1)
    registry.set_champion(name, v2)  # v1 is now the previous champion
    day = pd.Timestamp("2019-06-14")
    rows = score_rows(inputs.reports, inputs.features, EVENT_SYMBOLS, day, inputs.sectors)

    out = serving_chain(registry, name)[0].predict(rows)
    assert (out["source"] == f"model:v{v2}").all() and (out["fallback_level"] == 0).all()
    assert out["probability"].between(0, 1).all() and not out["error"].any()

    _corrupt(registry, name, v2)  # the champion's files no longer match their SHA-256
    chain, problems = serving_chain(registry, name)
    assert problems and f"v{v2}" in problems[0]
    out = chain.predict(rows)
    assert (out["source"] == f"model:v{v1}").all() and (out["fallback_level"] == 1).all()
    assert out["reason"].str.contains("SHA-256").all()

    # more than 10% of a row's inputs missing: that model fails for the row; the rule answers
    partial = rows.copy()
    partial.loc[:4, ["rsi_14", "ret_20d", "mom_12_1", "volume_z_20"]] = np.nan
    out = chain.predict(partial)
    assert (out.loc[:4, "source"] == "rule").all() and (out.loc[5:, "source"] == f"model:v{v1}").all()
    assert (out.loc[:4, "confidence_level"] == "LOW").all()
    assert set(out.loc[:4, "probability"].round(6)) <= {0.7, 0.3}

    _corrupt(registry, name, v1)
    out = serving_chain(registry, name)[0].predict(rows)
    assert (out["source"].isin(["rule", "none"])).all() and (out["fallback_level"] >= 2).all()
    newcomer = score_rows(inputs.reports.iloc[:0], inputs.features, ["EQR"], day, inputs.sectors)
    out = serving_chain(registry, name)[0].predict(newcomer)
    assert out["error"].all() and out["prediction"].isna().all() and out["fallback_level"].eq(3).all()
    assert "no past surprise" in out["reason"].iloc[0]


def replace_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The same store with a private registry (tests that alter model files use their own)."""
    return Settings(home=tmp_path / "home", store_url=settings.resolved_store_url,
                    mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_predict_scores_the_reports_expected_soon(built) -> None:
    settings = built[0]
    table = stage_earnings_predict(settings, date="2019-07-08", within_days=21)
    assert len(table) > 5
    assert (table["expected_report_date"] > pd.Timestamp("2019-07-08")).all()
    assert (table["expected_report_date"] <= pd.Timestamp("2019-07-29")).all()
    assert (table["days_to_report"] >= 1).all() and table["source"].str.startswith("model:v").all()
    assert table["probability"].is_monotonic_decreasing


def test_backtest_trades_from_asof_close_to_the_day_after_the_report(built) -> None:
    settings = built[0]
    bt = stage_earnings_backtest(settings, cost_bps=10)
    t = bt.trades
    assert len(t) > 200
    assert (t["entry_date"] == t["asof_date"]).all() and (t["exit_date"] > t["reported_date"]).all()
    assert (t["holding_days"] == 8).mean() > 0.95  # 7 trading days to the report + 1
    np.testing.assert_allclose(t["excess_net"], t["excess"] - 0.002)
    summary = bt.summary.set_index(["test_year", "group"])
    assert summary.loc[("all", "flagged"), "n"] + summary.loc[("all", "unflagged"), "n"] == len(t)
    assert set(bt.deciles["decile"]) == set(range(1, 11))
    assert np.isfinite(bt.portfolio["flagged"]["sharpe_long"])
    assert "Calendar-time portfolios" in bt.report_path.read_text()


def test_missing_inputs_name_the_command_to_run(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="vfr data ingest"):
        stage_earnings_train(Settings(home=tmp_path / "empty"))


def test_api_answers_the_early_signal_block_and_batch(built, tmp_path: Path) -> None:
    from vfr.serving import create_app

    settings = built[0]
    api = Settings(home=tmp_path / "api", store_url=settings.resolved_store_url,
                   mlflow_tracking_uri=settings.resolved_tracking_uri, rate_limit_anonymous="100000/minute")
    champion = ModelRegistry.from_settings(api).champion_version(api.earnings_model_name)
    with TestClient(create_app(api, warm=False)) as client:
        r = client.get("/api/stocks/analyze", params={"symbols": "EQR,MSFT", "date": "2019-07-08"})
        assert r.status_code == 200, r.text
        blocks = {x["symbol"]: x["early_signal"] for x in r.json()["results"]}
        for block in blocks.values():
            assert block["model_version"] == champion and block["fallback"] == "champion"
            assert 0 <= block["probability"] <= 1 and block["confidence_level"] in {"HIGH", "MEDIUM", "LOW"}
            assert block["days_to_report"] >= 1 and block["report_date_source"] == "calendar"
        r = client.get("/api/earnings/signals", params={"date": "2019-07-08", "within_days": 21})
        assert r.status_code == 200
        body = r.json()
        assert body["count"] == len(body["results"]) > 5
        probs = [x["probability"] for x in body["results"]]
        assert probs == sorted(probs, reverse=True)
        assert client.get("/api/earnings/signals", params={"date": "2019-07-07"}).status_code == 404
        assert client.get("/api/earnings/signals", params={"within_days": 0}).status_code == 422


def test_feedback_loop_logs_once_and_settles_from_the_reports(built, tmp_path: Path) -> None:
    """Served answers are logged once; the next report settles them (surprise, correct, trade return)."""
    import sqlalchemy as sa

    from vfr.opsdb import evaluated_outcomes
    from vfr.retraining.jobs import early_signal_monitoring
    from vfr.serving import ServingEngine

    settings = built[0]
    own = Settings(home=tmp_path / "ops", store_url=settings.resolved_store_url,
                   mlflow_tracking_uri=settings.resolved_tracking_uri)
    engine = ServingEngine(own)
    try:
        day = pd.Timestamp("2019-07-08")
        blocks = engine.earnings.for_date(day)
        engine.earnings.meta.delete_prefix("es:")  # a second computation must not log twice
        engine.earnings.for_date(day)
        engine.predlog.flush()
    finally:
        engine.close()
    db = sa.create_engine(own.resolved_serving_db_url)
    with db.connect() as conn:
        logged = conn.exec_driver_sql("SELECT COUNT(*), COUNT(DISTINCT symbol) FROM ml_predictions "
                                      f"WHERE model_name = '{own.earnings_model_name}'").one()
    answered = [s for s, b in blocks.items() if b["source"].startswith("model:")]
    assert logged[0] == logged[1] == len(answered) > 10
    # settle as of a date before any July report: nothing is known yet, nothing is written
    assert early_signal_monitoring(own, as_of="2019-07-09")["written"] == 0
    result = early_signal_monitoring(own, as_of="2019-12-31")
    assert result["written"] == len(answered)  # every answered symbol reported within 120 days
    outcomes = evaluated_outcomes(db, model_name=own.earnings_model_name, start="2019-07-01", end="2019-12-31")
    reports = read_inputs(settings).reports
    first = outcomes.iloc[0]
    nxt = reports[(reports["symbol"] == first["symbol"]) & (reports["reported_date"] > "2019-07-08")]
    assert first["surprise_pct"] == pytest.approx(nxt.sort_values("reported_date")["surprise_pct"].iloc[0])
    assert first["correct"] == ((first["predicted_class"] == 1) == (first["surprise_pct"] > 20))
    assert (pd.to_datetime(outcomes["horizon_end"]) > pd.Timestamp("2019-07-08")).all()
    perf = pd.DataFrame(result["performance"])
    assert list(perf["n"]) == [len(answered)] and perf["brier"].between(0, 1).all()


def test_retraining_promotes_only_a_challenger_that_ranks_as_well(built, tmp_path: Path) -> None:
    """The deploy rule compares champion and challenger on reports the champion never saw."""
    settings, config, _, _ = built
    own = replace_settings(settings, tmp_path)
    events = event_dataset(read_inputs(settings), config)
    registry = ModelRegistry.from_settings(own)
    old = register_signal(own, fit_calibrated(events[events["reported_date"] < "2018-01-01"], validation_year=2017),
                          events, config, pd.DataFrame(), [])
    registry.set_champion(own.earnings_model_name, old)
    from vfr.earnings.stage import DEPLOY_AUC_TOLERANCE, stage_earnings_retrain

    decision = stage_earnings_retrain(own, config)
    assert decision.champion_before == old and decision.figures["n_reports"] > 200
    wins = decision.figures["auc_challenger"] >= decision.figures["auc_champion"] - DEPLOY_AUC_TOLERANCE
    assert decision.action == ("promoted" if wins else "kept")
    assert registry.champion_version(own.earnings_model_name) == (decision.challenger if wins else old)
    # retraining again on the same data: no report is new to the champion, so it stays
    again = stage_earnings_retrain(own, config)
    assert again.action == "kept" and "fewer than" in again.reason
