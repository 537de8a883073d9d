"""The main job through its stages: demo, failures that leave earlier results intact, the
ML fallback, PostgreSQL as the store, and the full development set (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SP500_PRICES, SP500_UNIVERSE, require_shared
from vfr.backtest import BacktestConfig
from vfr.config import Settings
from vfr.data import MarketStore
from vfr.errors import DataValidationError, StageError
from vfr.ml import ModelRegistry, TrainConfig
from vfr.pipeline import (
    FEATURES_TABLE,
    PREDICTIONS_TABLE,
    champion_gate,
    run_pipeline,
    stage_backtest,
    stage_features,
    stage_ingest,
    stage_select,
    stage_train,
)

SMALL = dict(max_rounds=30, train_window=252, retrain_every=126, date_stride=3, params={"min_data_in_leaf": 50},
             num_threads=1)


@pytest.fixture
def small_prices_file(sp500_raw_small: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "small.parquet"
    sp500_raw_small[sp500_raw_small["date"] >= "2014-01-01"].to_parquet(path)
    return path


def _vfr(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"VFR_HOME": str(home), "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "vfr.cli", *args], capture_output=True, text=True, env=env,
                          timeout=900)


def test_demo_runs_end_to_end_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = _vfr("demo", home=home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = Path(proc.stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert report.exists() and report.suffix == ".html"
    html = report.read_text()
    for needle in ("equity.png", "drawdown.png", "ic.png", "Sharpe", "Sortino", "Calmar", "sp500", "equal_weight"):
        assert needle in html
    selection = pd.read_csv(report.parent / "selection.csv")
    assert set(selection["symbol"]) <= {"AAPL", "GOOG", "IBM", "MSFT", "AMZN", "NVDA"}
    for stage in ("1/5 ingest", "2/5 features", "3/5 train", "4/5 select", "5/5 backtest"):
        assert stage in proc.stderr
    # issue 17: the demo says it trains a reduced walk-forward, and its report states its evidence first
    assert "reduced walk-forward" in proc.stderr and "reduced walk-forward" in html
    assert html.index("Evidence summary") < html.index("<table")
    assert "on these 6 stocks" in html.lower() and "Rank IC" in html and "ROC-AUC" in html
    assert "On these 6 stocks" in proc.stderr and "%" in proc.stdout  # the evidence; the table in percentages
    # each stage also runs on its own against the same store
    assert _vfr("select", "--include-ml", "--top", "3", home=home).returncode == 0
    models = _vfr("models", "list", home=home)
    assert models.returncode == 0 and "vfr-lgbm-direction" in models.stdout


def test_bad_input_fails_cleanly_and_keeps_the_store(tmp_path: Path, small_prices_file: Path) -> None:
    home = tmp_path / "home"
    assert _vfr("data", "ingest", str(small_prices_file), home=home).returncode == 0
    bad = tmp_path / "BAD.csv"
    bad.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,0.5,1.5,1.5,100\n"
                   "2020-01-03,1,2,0.5,abc,1.5,100\n")
    proc = _vfr("data", "ingest", str(bad), home=home)
    assert proc.returncode == 3  # bad input data (vfr.cli.exitcodes)
    assert "BAD.csv" in proc.stderr and "row 2" in proc.stderr and "'Close'" in proc.stderr
    assert "Traceback" not in proc.stderr
    with MarketStore.from_settings(Settings(home=home)) as store:
        counts = store.table_counts()
    assert counts["prices"] == len(pd.read_parquet(small_prices_file))


def test_failed_stages_leave_earlier_results_intact(settings: Settings, small_prices_file: Path) -> None:
    stage_ingest(settings, small_prices_file)
    rows = stage_features(settings)
    outcome = stage_train(settings, TrainConfig(**SMALL))
    with MarketStore.from_settings(settings) as store:
        before = {t: store.read_table(t) for t in ("prices", FEATURES_TABLE, PREDICTIONS_TABLE)}
    registry = ModelRegistry.from_settings(settings)
    versions = registry.versions(settings.model_name)
    assert len(before[FEATURES_TABLE]) == rows and len(versions) == 1 and versions[0]["version"] == outcome.version

    with pytest.raises(StageError, match="too few"):  # a training run that cannot succeed
        stage_train(settings, TrainConfig(**(SMALL | {"train_window": 5000})))
    with pytest.raises(DataValidationError):  # an ingest of a bad file
        bad = small_prices_file.with_name("neg.parquet")
        raw = pd.read_parquet(small_prices_file)
        raw.loc[raw.index[100], "close"] = -1.0
        raw.to_parquet(bad)
        stage_ingest(settings, bad)
    with MarketStore.from_settings(settings) as store:
        for table, frame in before.items():
            pd.testing.assert_frame_equal(store.read_table(table), frame)
    assert registry.versions(settings.model_name) == versions


def test_select_without_a_model_answers_classic_and_says_why(settings: Settings, small_prices_file: Path) -> None:
    stage_ingest(settings, small_prices_file)
    stage_features(settings)
    classic = stage_select(settings)
    with_ml = stage_select(settings, include_ml=True)
    assert classic.ml_status == "disabled"
    assert with_ml.ml_status.startswith("unavailable:") and "champion" in with_ml.ml_status
    pd.testing.assert_frame_equal(with_ml.table, classic.table)


def test_backtest_runs_from_stored_predictions(settings: Settings, small_prices_file: Path) -> None:
    stage_ingest(settings, small_prices_file)
    stage_features(settings)
    stage_train(settings, TrainConfig(**SMALL))
    bt = stage_backtest(settings, BacktestConfig.from_settings(settings, top_n=5))
    assert set(bt.results) == {"classic", "ml", "composite"}
    assert bt.report.exists()
    first_oos = bt.results["ml"].weights["signal_date"].min()
    with MarketStore.from_settings(settings) as store:
        oos = store.read_table(PREDICTIONS_TABLE)
    assert first_oos >= oos["date"].min()  # ML positions only from out-of-sample predictions
    net, gross = (bt.comparison.loc[f"composite ({k})", "cagr"] for k in ("net", "gross"))
    assert net < gross  # costs are charged


def test_champion_gate_rules() -> None:
    ok = {"model": {"roc_auc": 0.52, "rank_ic_mean": 0.02}, "momentum_20d": {"rank_ic_mean": 0.01}}
    assert champion_gate(ok)[0]
    assert not champion_gate({"model": {"roc_auc": 0.49, "rank_ic_mean": 0.02}})[0]
    assert not champion_gate({"model": {"roc_auc": 0.52, "rank_ic_mean": -0.01}})[0]
    assert not champion_gate(ok | {"momentum_20d": {"rank_ic_mean": 0.03}})[0]


@pytest.mark.postgres
def test_stages_on_postgresql(tmp_path: Path, pg_url: str, small_prices_file: Path) -> None:
    settings = Settings(home=tmp_path / "home", store_url=pg_url)
    report = stage_ingest(settings, small_prices_file)
    again = stage_ingest(settings, small_prices_file)  # idempotent
    assert report.rows == again.rows
    rows = stage_features(settings)
    with MarketStore.from_settings(settings) as store:
        counts = store.table_counts()
    assert counts["prices"] == report.rows and counts[FEATURES_TABLE] == rows
    sel = stage_select(settings, top=5)
    assert len(sel.table) == 5 and sel.table["composite"].is_monotonic_decreasing


@pytest.mark.slow
def test_full_development_set(tmp_path: Path) -> None:
    """The whole pipeline on 501 stocks, 1999-2019 (minutes)."""
    require_shared(SP500_PRICES)
    settings = Settings(home=tmp_path / "home")
    result = run_pipeline(settings, SP500_PRICES, SP500_UNIVERSE)
    wf = result.train.result.walk_forward_metrics["model"]
    assert result.ingest.symbols == 501
    assert 0.45 < wf["roc_auc"] < 0.6
    assert result.report.exists()
    assert result.selection.ml_status == "ok"


def test_all_factor_groups_flow_from_the_store_to_selection(settings: Settings, small_prices_file: Path) -> None:
    from tests.conftest import SHARED_DATA
    from vfr.pipeline import stage_ingest_fundamentals

    earnings = require_shared(SHARED_DATA / "earnings" / "earnings_surprises.parquet")
    macro = require_shared(SHARED_DATA / "macro" / "fred_md.parquet").parent
    stage_ingest(settings, small_prices_file, require_shared(SP500_UNIVERSE))
    stage_features(settings)
    before = set(stage_select(settings).table["groups_present"].iloc[0].split(","))
    assert "technical" in before and not {"fundamental", "macro"} & before
    written = stage_ingest_fundamentals(settings, earnings=earnings, macro=macro)
    assert written["earnings"] > 30_000 and written["macro_fred_md"] > 700
    stage_features(settings)
    sel = stage_select(settings)
    present = sel.table["groups_present"].iloc[0].split(",")
    assert {"technical", "fundamental", "macro", "alternative"} <= set(present)
    for group in ("fundamental", "macro", "alternative"):
        score = sel.table[f"{group}_score"]
        assert score.notna().mean() > 0.5 and score.dropna().between(0, 1).all()  # missing is NaN, never 0
    with pytest.raises(DataValidationError):  # a bad earnings file changes nothing
        stage_ingest_fundamentals(settings, earnings=small_prices_file)
    with MarketStore.from_settings(settings) as store:
        assert store.table_counts()["earnings"] == written["earnings"]


def test_a_cross_sectional_regression_champion_serves_the_selection(settings: Settings,
                                                                     small_prices_file: Path) -> None:
    """VFR_TRAIN_OBJECTIVE=regression, VFR_TRAIN_TARGET=excess_rank: trained, registered, champion, blended."""
    settings = settings.model_copy(update={"train_objective": "regression", "train_target": "excess_rank"})
    stage_ingest(settings, small_prices_file)
    stage_features(settings)
    config = TrainConfig.from_settings(settings, **SMALL)
    assert (config.objective, config.target) == ("regression", "excess_rank")
    outcome = stage_train(settings, config)
    loaded = ModelRegistry.from_settings(settings).load(settings.model_name, outcome.version)
    assert loaded.metadata["target"] == "excess_rank" and "percentile rank" in loaded.metadata["label_definition"]
    sel = stage_select(settings, include_ml=True, model_version=outcome.version)
    assert sel.ml_status == "ok" and sel.table["ml_probability"].between(0, 1).all()
    assert sel.table["ml_probability"].std() > 0


def test_factor_groups_present_are_counted_over_every_stock() -> None:
    """Issue 17: `vfr select`'s "factor groups present" line covers the whole table, not its first row."""
    from vfr.cli.core import groups_present_line

    line = groups_present_line(pd.Series(["technical", "fundamental,technical", "technical,macro"]))
    assert line.startswith("factor groups present")
    assert "technical," in line and "fundamental (1 of 3 stocks)" in line and "macro (1 of 3 stocks)" in line
    assert line.index("technical") < line.index("fundamental") < line.index("macro")  # GROUP_WEIGHTS order
    assert groups_present_line(pd.Series(["technical,macro"] * 2)).endswith(": technical, macro")


def test_select_and_backtest_outside_the_stored_dates(settings: Settings, small_prices_file: Path) -> None:
    """Issue 17: a date without features is a usage error naming the first and last dates."""
    from vfr.errors import UsageError

    with pytest.raises(StageError, match="no prices; run `vfr data ingest`"):
        stage_select(settings)
    stage_ingest(settings, small_prices_file)
    with pytest.raises(StageError, match="no features; run `vfr features build`"):
        stage_train(settings)
    stage_features(settings)
    first, last = (d.date() for d in pd.read_parquet(small_prices_file, columns=["date"])["date"].agg(["min", "max"]))
    with pytest.raises(UsageError, match=f"no features on 1900-01-01.*from {first} to {last}"):
        stage_select(settings, date="1900-01-01")
    with pytest.raises(UsageError, match=f"scores end on {last}"):
        stage_backtest(settings, BacktestConfig.from_settings(settings, start="2030-01-01"))


def test_evidence_summary_is_computed_from_the_run() -> None:
    """Issue 17: the verdict and its numbers come from the run (no skill / skill / not enough)."""
    import numpy as np

    from vfr.pipeline import evidence_summary

    dates = pd.bdate_range("2010-01-01", periods=500)
    noise = pd.DataFrame({"rank_ic": np.random.default_rng(0).normal(0.0, 0.2, 500)}, index=dates)
    comparison = pd.DataFrame({"cagr": [0.10, 0.12, 0.20]},
                              index=["classic (net)", "composite (net)", "benchmark: equal_weight"])
    metrics = pd.DataFrame({"roc_auc": [0.49, 0.50]}, index=["model (test split)", "model (walk-forward)"])
    lines = evidence_summary(comparison, noise, main="composite", horizon_days=5, model_metrics=metrics,
                             n_symbols=6, notes=["a note"])
    assert lines[0].startswith("On these 6 stocks the model shows no reliable skill.")
    mean = noise["rank_ic"].iloc[::5].mean()
    assert f"mean Rank IC {mean:+.3f}" in lines[0] and "over 100 non-overlapping 5-day windows" in lines[0]
    assert "test ROC-AUC 0.490" in lines[0] and "every strategy is below equal weight" in lines[0]
    assert lines[1] == "a note"
    strong = noise.assign(rank_ic=noise["rank_ic"] + 0.1)
    good = evidence_summary(comparison.assign(cagr=[0.3, 0.3, 0.2]), strong, main="composite", horizon_days=5,
                            model_metrics=metrics.assign(roc_auc=[0.56, 0.55]), n_symbols=6)
    assert good[0].startswith("Evidence of skill on these 6 stocks")
    # a score that ranks, with a model near chance on direction and one strategy below equal weight
    mixed = evidence_summary(comparison.assign(cagr=[0.1, 0.3, 0.2]), strong, main="composite", horizon_days=5,
                             model_metrics=metrics, n_symbols=501)
    assert mixed[0].startswith("Some evidence of skill on these 501 stocks: the composite score's Rank IC is "
                               "significant and positive, but without a test ROC-AUC above 0.52 or every "
                               "strategy above equal weight after costs.")
    assert evidence_summary(comparison.drop(index="benchmark: equal_weight"), None, main="classic",
                            horizon_days=5)[0].startswith("Not enough out-of-sample evidence")


def test_demo_walk_forward_is_reduced_and_said() -> None:
    from vfr.pipeline import DEMO_WALK_FORWARD, demo_note

    config, full = TrainConfig(**DEMO_WALK_FORWARD), TrainConfig()
    assert config.date_stride > full.date_stride and config.max_rounds < full.max_rounds
    note = demo_note(config)
    assert f"every {config.retrain_every} trading days on every 3rd date of a 756-day window" in note
    assert "reduced walk-forward" in note
    # the full run's recipe is the research protocol's choice: expanding window, refit every 63
    assert f"full run: retrained every 63 trading days on every 2nd date of an expanding window, with at most " \
           f"{full.max_rounds} boosting rounds" in note
