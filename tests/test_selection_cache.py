"""Issue 18: `vfr select --include-ml` answers from the champion's cached scores without importing
MLflow or the model's library, and never from stale ones (another champion, newer registry
writes, rebuilt features)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.test_pipeline import SMALL, small_prices_file  # noqa: F401  (fixture)
from vfr.config import Settings
from vfr.data import MarketStore, tables
from vfr.ml import ModelRegistry, TrainConfig
from vfr.ml.scorecache import (
    ScoreCache,
    champion_pointer_path,
    read_champion_pointer,
    tracking_db_stamp,
    write_champion_pointer,
)
from vfr.pipeline import stage_features, stage_ingest, stage_train
from vfr.selection import stage_select

COLD_SELECT = """
import json, sys
from vfr.config import Settings
from vfr.selection import stage_select
sel = stage_select(Settings(), include_ml=True)
heavy = sorted(m for m in ("mlflow", "lightgbm", "sklearn", "xgboost", "catboost", "torch") if m in sys.modules)
print(json.dumps({"status": sel.ml_status, "version": sel.model_version, "heavy": heavy,
                  "prob": sel.table.set_index("symbol")["ml_probability"].round(12).to_dict()}))
"""


def _cold_select(home: Path) -> dict:
    env = os.environ | {"VFR_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", COLD_SELECT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_pointer_is_stale_once_the_tracking_database_changes(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"x")
    uri = f"sqlite:///{db}"
    assert read_champion_pointer(uri, "m") is None  # no pointer
    assert write_champion_pointer(uri, "m", "3", tracking_db_stamp(uri))
    assert read_champion_pointer(uri, "m") == ("3", "") and read_champion_pointer(uri, "other") is None
    stamp = tracking_db_stamp(uri)
    later = db.stat().st_mtime_ns + 10**6
    os.utime(db, ns=(later, later))  # any registry write since the stamp, even one that keeps the size
    assert read_champion_pointer(uri, "m") is None
    assert write_champion_pointer(uri, "m", "4", tracking_db_stamp(uri))
    Path(f"{db}-wal").write_bytes(b"wal")  # a write that only reached the write-ahead log
    assert read_champion_pointer(uri, "m") is None
    # a pointer stamped before a concurrent alias change is stale, whatever its own file time
    assert write_champion_pointer(uri, "m", "5", stamp)
    assert read_champion_pointer(uri, "m") is None
    assert not write_champion_pointer(uri, "m", None, tracking_db_stamp(uri))
    assert read_champion_pointer(uri, "m") is None
    assert champion_pointer_path("postgresql://h/db", "m") is None  # remote registries: always the full path
    assert not write_champion_pointer("postgresql://h/db", "m", "1", [1])


def test_select_with_ml_reads_the_cached_champion_scores(settings: Settings,
                                                         small_prices_file: Path) -> None:  # noqa: F811
    stage_ingest(settings, small_prices_file)
    stage_features(settings)
    first = stage_train(settings, TrainConfig(**SMALL))
    registry = ModelRegistry.from_settings(settings)
    registry.set_champion(settings.model_name, first.version)
    uri = settings.resolved_tracking_uri
    pointer = read_champion_pointer(uri, settings.model_name)
    assert pointer is not None and pointer[0] == first.version and len(pointer[1]) == 64  # the artifact's SHA-256

    full = stage_select(settings, include_ml=True)  # a miss: the model scores the day and is cached
    assert full.ml_status == "ok" and full.model_version == first.version
    cached_files = list(ScoreCache.from_settings(settings).root.rglob("*.json"))
    assert len(cached_files) == 1

    cold = _cold_select(settings.home)  # a fresh process: the cache, no MLflow, no model library
    assert cold["status"] == "ok" and cold["version"] == first.version and cold["heavy"] == []
    want = full.table.set_index("symbol")["ml_probability"].round(12).to_dict()
    assert cold["prob"] == want
    pd.testing.assert_frame_equal(stage_select(settings, include_ml=True).table, full.table)

    # a new champion: the pointer moves, the old version's scores are not used
    second = stage_train(settings, TrainConfig(**(SMALL | {"max_rounds": 12})))
    registry.set_champion(settings.model_name, second.version)
    assert read_champion_pointer(uri, settings.model_name)[0] == second.version
    now = stage_select(settings, include_ml=True)
    assert now.model_version == second.version and now.ml_status == "ok"
    assert not now.table.set_index("symbol")["ml_probability"].equals(full.table.set_index("symbol")["ml_probability"])

    # a registry write after the pointer (e.g. an alias moved outside VFR): the full path, which refreshes it
    registry.client.set_registered_model_tag(settings.model_name, "note", "touched")
    assert read_champion_pointer(uri, settings.model_name) is None
    assert stage_select(settings, include_ml=True).model_version == second.version
    assert read_champion_pointer(uri, settings.model_name)[0] == second.version

    # rebuilt features with other values: the fingerprint misses, the model scores them again
    with MarketStore.from_settings(settings) as store:
        features = store.read_table(tables.FEATURES)
        day = features["date"].max()
        features.loc[features["date"] == day, "rsi_14"] = 50.0
        store.replace_table(tables.FEATURES, features)
    n_files = len(list(ScoreCache.from_settings(settings).root.rglob("*.json")))
    again = stage_select(settings, include_ml=True)
    assert again.ml_status == "ok"
    assert len(list(ScoreCache.from_settings(settings).root.rglob("*.json"))) == n_files + 1

    # a registry rebuilt from scratch numbers from v1 again: the old v1's cached scores must not serve it
    # (in a fresh process: this one's MLflow keeps the deleted database open). First the old v1's scores of
    # today's features go into the cache, so a cache keyed by version alone would serve them.
    assert stage_select(settings, include_ml=True, model_version=first.version).model_version == first.version
    proc = subprocess.run([sys.executable, "-c", REBUILT_REGISTRY], capture_output=True, text=True, timeout=600,
                          env=os.environ | {"VFR_HOME": str(settings.home)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["version"] == first.version and result["status"] == "ok"
    assert result["max_abs_diff"] < 1e-12  # the rebuilt v1's own predictions, not the old v1's cache


REBUILT_REGISTRY = """
import json, shutil
from pathlib import Path
import numpy as np
from tests.test_pipeline import SMALL
from vfr.config import Settings
from vfr.data import MarketStore, tables
from vfr.ml import ModelRegistry, TrainConfig
from vfr.pipeline import stage_train
from vfr.selection import stage_select
settings = Settings()
Path(settings.resolved_tracking_uri.removeprefix("sqlite:///")).unlink()
shutil.rmtree(settings.artifact_root)
outcome = stage_train(settings, TrainConfig(**(SMALL | {"max_rounds": 7})))
ModelRegistry.from_settings(settings).set_champion(settings.model_name, outcome.version)
sel = stage_select(settings, include_ml=True)
model = ModelRegistry.from_settings(settings).load(settings.model_name)
with MarketStore.from_settings(settings) as store:
    rows = store.read_table(tables.FEATURES, start=sel.date, end=sel.date)
want = dict(zip(rows["symbol"], model.predict_proba(rows)))
got = sel.table.set_index("symbol")["ml_probability"]
diff = max(abs(got[s] - p) for s, p in want.items())
print(json.dumps({"version": outcome.version, "status": sel.ml_status, "max_abs_diff": float(diff)}))
"""


def test_target_weights_of_the_optimised_book() -> None:
    """`vfr select --weights`: the day's optimised book from closes known on the day."""
    import numpy as np

    from vfr.backtest import BacktestConfig
    from vfr.selection import target_weights

    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-01-01", periods=300)
    symbols = [f"S{i:02d}" for i in range(60)]
    closes = pd.DataFrame(100 * np.cumprod(1 + rng.normal(0.0003, 0.015, (300, 60)), axis=0), index=dates,
                          columns=symbols)
    closes.iloc[:250, 0] = np.nan  # listed 50 days ago: too short a history
    closes.iloc[-1, 1] = np.nan  # no close on the day
    day = dates[-1]
    score = pd.Series(np.linspace(1.0, 0.0, 60), index=symbols)  # S00 ranks first
    config = BacktestConfig(weighting="optimized", max_weight=0.05)
    w = target_weights(closes, score, day, config)
    assert w.sum() == pytest.approx(1.0) and w.max() <= 0.05 + 1e-9 and (w >= 0).all()
    assert w["S00"] == 0.0 and w["S01"] == 0.0
    assert w.iloc[2:20].mean() > w.iloc[40:].mean()  # the tilt follows the score
    # later prices do not change the day's weights
    future = pd.concat([closes, closes.iloc[[-1]].set_axis([day + pd.Timedelta(days=1)]) * 3.0])
    pd.testing.assert_series_equal(target_weights(future, score, day, config), w)
    # holding a book: the penalty keeps more of it than a fresh start would
    held = pd.Series(1 / 30, index=symbols[30:])
    kept = target_weights(closes, score, day, config, held)
    assert (kept - held.reindex(symbols).fillna(0)).abs().sum() < (w - held.reindex(symbols).fillna(0)).abs().sum()


def test_select_holdings_file_errors_name_the_file_and_row(tmp_path: Path) -> None:
    env = os.environ | {"VFR_HOME": str(tmp_path / "home")}
    cases = {"symbol,weight\nAAPL,0.5\nMSFT,abc\n": "row 3", "ticker,weight\nAAPL,0.5\n": "missing column",
             "symbol,weight\nAAPL,0.7\nMSFT,0.6\n": "sum to 1.3000", "symbol,weight\nAAPL,0.1\naapl,0.2\n": "twice"}
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"held{i}.csv"
        path.write_text(text)
        proc = subprocess.run([sys.executable, "-m", "vfr.cli", "select", "--holdings", str(path)],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and str(path.name) in proc.stderr and "Traceback" not in proc.stderr
