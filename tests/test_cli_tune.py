"""`vfr tune` for real on a tiny store (the demo's six sample stocks, 2009-2013): an empty store
names the step to run, a study is created in $VFR_HOME/optuna.db and resumed by name, the best
trial is a table (also as --json), a bad storage URL is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from vfr.cli import app
from vfr.config import Settings
from vfr.data.samples import write_demo_csvs
from vfr.pipeline import stage_features, stage_ingest


def _tiny_store(home: Path, folder: Path) -> None:
    for path in write_demo_csvs(folder):
        frame = pd.read_csv(path)
        frame[frame["Date"] >= "2009-01-01"].to_csv(path, index=False)
    settings = Settings(home=home)
    stage_ingest(settings, folder)
    stage_features(settings)


def test_tune_runs_resumes_and_fails_on_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runner = CliRunner()
    empty = runner.invoke(app, ["tune", "--trials", "2", "--home", str(tmp_path / "empty")])
    assert empty.exit_code == 1 and "run `vfr data ingest` first" in empty.output

    _tiny_store(home, tmp_path / "csv")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("VFR_")}
    proc = subprocess.run([sys.executable, "-m", "vfr.cli", "--json", "tune", "--trials", "2", "--folds", "3"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env | {"VFR_HOME": str(home), "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads(proc.stdout)  # stdout is the one JSON line
    study = "vfr-lightgbm-regression-rank_ic-tpe"  # the settings' model: a regression, so rank IC
    assert study in table["table"] and "(2 complete trials)" in table["table"]
    values = {row["name"]: row["value"] for row in table["rows"]}
    assert -1 <= values["rank_ic"] <= 1 and 0.01 <= values["learning_rate"] <= 0.1 and "num_leaves" in values
    assert (home / "optuna.db").exists() and f"`vfr tune --study {study}` resumes it" in proc.stderr

    resumed = runner.invoke(app, ["tune", "--trials", "1", "--folds", "3", "--study", study, "--home", str(home)],
                            env={"COLUMNS": "200"})
    assert resumed.exit_code == 0, resumed.output
    assert "(3 complete trials)" in resumed.output and "learning_rate" in resumed.output

    bad = runner.invoke(app, ["tune", "--storage", "nosuchdb://x", "--home", str(home)])
    assert bad.exit_code == 2 and "--storage 'nosuchdb://x' is not a usable Optuna storage" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
