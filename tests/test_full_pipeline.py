"""The README's full pipeline with every factor group on a point-in-time universe: a fast run
on a real 20-stock slice (CI), and the README command itself on the whole development set
(``pytest -m slow``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SHARED_DATA, SP500_PRICES, SP500_UNIVERSE, require_shared
from vfr.config import Settings
from vfr.data import MarketStore
from vfr.ml import TrainConfig
from vfr.pipeline import (
    FEATURES_TABLE,
    PREDICTIONS_TABLE,
    stage_features,
    stage_ingest,
    stage_ingest_fundamentals,
    stage_train,
)

EARNINGS = SHARED_DATA / "earnings" / "earnings_surprises.parquet"
MACRO = SHARED_DATA / "macro"
PIT = "index-constitution:sp500"


def test_training_on_every_group_passes_the_gates(settings: Settings, sp500_raw_small: pd.DataFrame,
                                                  tmp_path: Path) -> None:
    """Every group, point-in-time universe, gates from the settings: trains (the outlier gate
    once stopped this on the Fed funds change, and completeness on the 36-month rate beta's
    warm-up)."""
    require_shared(EARNINGS)
    prices = tmp_path / "p.parquet"
    nvda = pd.read_parquet(SP500_PRICES, filters=[("symbol", "==", "NFLX"), ("date", ">=", pd.Timestamp("2008-01-01"))])
    pd.concat([sp500_raw_small[sp500_raw_small["date"] >= "2008-01-01"], nvda]).to_parquet(prices)
    report = stage_ingest(settings, prices, [SP500_UNIVERSE, PIT])
    assert report.outside_universe == int((nvda["date"] < "2010-12-20").sum())  # NFLX joined on 2010-12-20
    stage_ingest_fundamentals(settings, earnings=EARNINGS, macro=MACRO)
    stage_features(settings)
    config = TrainConfig(max_rounds=30, train_window=252, retrain_every=126, date_stride=3,
                         params={"min_data_in_leaf": 50}, num_threads=1)
    outcome = stage_train(settings, config)
    cols = set(outcome.result.feature_columns)
    assert {"fedfunds_chg_3m", "vix", "sue", "ey_rel_3y", "ey_rel_3y_rank", "days_to_next_earnings"} <= cols
    assert not {"pe_ttm", "earnings_yield", "eps_ttm"} & cols  # no level ratio without a split table
    text = (settings.reports_dir / "quality-report.md").read_text()
    assert "FAILED" not in text and "CRITICAL" not in text
    with MarketStore.from_settings(settings) as store:
        features = store.read_table(FEATURES_TABLE, columns=["symbol", "date"])
        oos = store.read_table(PREDICTIONS_TABLE)
    assert features[features["symbol"] == "NFLX"]["date"].min() == pd.Timestamp("2010-12-20")
    assert oos[oos["symbol"] == "NFLX"]["date"].min() >= pd.Timestamp("2010-12-20")


@pytest.mark.slow
def test_readme_full_pipeline_every_group_point_in_time(tmp_path: Path) -> None:
    """The README's full-pipeline command from a fresh VFR_HOME on the whole development set."""
    require_shared(SP500_PRICES)
    require_shared(EARNINGS)
    home = tmp_path / "home"
    env = os.environ | {"VFR_HOME": str(home), "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "vfr.cli", "pipeline", "run", "--prices", str(SP500_PRICES),
           "--universe", str(SP500_UNIVERSE), "--universe", PIT,
           "--earnings", str(EARNINGS), "--macro", str(MACRO)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report:" in proc.stdout and "Traceback" not in proc.stderr
    quality = (home / "reports" / "quality-report.md").read_text()
    assert "FAILED" not in quality
    settings = Settings(home=home)
    with MarketStore.from_settings(settings) as store:
        counts = store.table_counts()
        membership = store.read_membership()
    assert membership is not None and membership["symbol"].nunique() >= 495
    assert 1_400_000 < counts[FEATURES_TABLE] < 1_700_000  # member rows only (2,237,909 price rows)
    assert counts[PREDICTIONS_TABLE] > 1_000_000
