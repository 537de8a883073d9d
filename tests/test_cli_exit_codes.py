"""Exit codes of the real `vfr` console script: one `error:` line on stderr (no traceback) and
the code of the table in vfr.cli.exitcodes for bad settings, bad option values, a store held
by another process, and a retraining that is busy or blocked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from vfr.cli.exitcodes import ExitCode, explain
from vfr.config import Settings
from vfr.errors import StageError

REPO = Path(__file__).resolve().parents[1]


def vfr(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run `vfr ARGS` (the console script's entry point) with a private VFR_HOME."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("VFR_") or k == "VFR_SHARED_DATA"}
    return subprocess.run([sys.executable, "-m", "vfr.cli", *args], capture_output=True, text=True, timeout=300,
                          env=base | {"VFR_HOME": str(home), "COLUMNS": "80"} | env)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one `error:` line of stderr (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert proc.stderr.rstrip().endswith(lines[0]), proc.stderr[-3000:]  # the reason is not wrapped
    return lines[0]


def test_a_bad_setting_names_the_variable_and_exits_4(tmp_path: Path) -> None:
    proc = vfr(tmp_path / "home", "select", VFR_TOP_N="abc")
    assert proc.returncode == ExitCode.BAD_SETTINGS == 4
    line = error_line(proc)
    assert "VFR_TOP_N='abc'" in line and "integer" in line and "pydantic" not in line


def test_a_bad_option_value_is_a_usage_error_on_one_line(tmp_path: Path) -> None:
    proc = vfr(tmp_path / "home", "train", "--horizon", "3y")
    assert proc.returncode == ExitCode.USAGE == 2
    line = error_line(proc)
    assert "--horizon '3y'" in line and "1w" in line


def test_a_bad_algorithm_names_the_flag_the_user_typed(tmp_path: Path) -> None:
    proc = vfr(tmp_path / "home", "train", "--algorithm", "gbm")
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "--algorithm 'gbm'" in line and "lightgbm" in line and "train-algorithm" not in line


def test_a_store_held_by_another_process_exits_5_naming_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    path = home / "vfr.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect(r'{path}'); "
                               "c.execute('create table x(a int)'); print('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        proc = vfr(home, "select")
        assert proc.returncode == ExitCode.BUSY == 5
        line = error_line(proc)
        assert f"store {path} is locked by another process" in line and f"PID {holder.pid}" in line
        assert "VFR_STORE_URL" in line
        # VFR_DEBUG=1 keeps the traceback available, before the same one-line reason and code
        debug = vfr(home, "features", "build", VFR_DEBUG="1")
        assert debug.returncode == 5 and "Traceback" in debug.stderr
        assert debug.stderr.rstrip().splitlines()[-1] == line
    finally:
        holder.kill()
        holder.wait()


def test_retrain_exits_5_when_another_retraining_holds_the_lock(tmp_path: Path) -> None:
    from vfr.opsdb import runs

    home = tmp_path / "home"
    engine = sa.create_engine(Settings(home=home).resolved_serving_db_url)
    with runs.exclusive(engine, "retrain") as got:  # the lock a running retraining holds
        assert got
        proc = vfr(home, "retrain", "--no-rebuild-features")
    assert proc.returncode == ExitCode.BUSY
    line = error_line(proc)
    assert "busy" in line and runs.owner_id() in line
    assert "busy" in proc.stdout  # the run is still reported (and recorded)


def test_retrain_exits_6_when_a_quality_gate_blocks_it(tmp_path: Path, sp500_raw_small: pd.DataFrame) -> None:
    # 5 real stocks over 150 days: too few labelled rows (and incomplete features) to train on
    raw = sp500_raw_small[sp500_raw_small["symbol"].isin(["AAPL", "MSFT", "JPM", "XOM", "JNJ"])]
    raw = raw[raw["date"].isin(sorted(raw["date"].unique())[-150:])]
    prices = tmp_path / "prices.parquet"
    raw.to_parquet(prices)
    home = tmp_path / "home"
    proc = vfr(home, "retrain", "--prices", str(prices))
    assert proc.returncode == ExitCode.BLOCKED == 6
    line = error_line(proc)
    assert "blocked" in line and "label_count" in line
    report = Path(line.rsplit("(report: ", 1)[1].rstrip(")"))
    assert report.exists() and "label_count" in report.read_text()


def test_explain_maps_exceptions_to_codes_and_one_line() -> None:
    from vfr.ml.quality import QualityGateError

    lock = OSError('IO Error: Could not set lock on file "/x/vfr.duckdb": Conflicting lock is held in\n'
                   "/usr/bin/python3 (PID 42). See also https://duckdb.org/docs")
    try:
        try:
            raise lock
        except OSError as exc:
            raise StageError("retrain run 3 failed") from exc
    except StageError as wrapped:
        code, line = explain(wrapped)
    assert code == ExitCode.BUSY and "store /x/vfr.duckdb is locked" in line and "PID 42" in line
    gate = QualityGateError("data quality gates failed: label_count = 5", report=None)
    gate.report_path = "/r/quality-report.md"
    assert explain(gate) == (ExitCode.BLOCKED, "blocked: data quality gates failed: label_count = 5 "
                                               "(report: /r/quality-report.md)")
    code, line = explain(RuntimeError("boom\nsecond line"))
    assert code == ExitCode.FAILED and "\n" not in line and "RuntimeError: boom second line" in line
    assert "VFR_DEBUG=1" in line
    assert explain(FileNotFoundError(2, "No such file or directory", "/p.csv"))[0] == ExitCode.BAD_INPUT


def test_secrets_are_not_echoed_in_setting_errors(monkeypatch) -> None:
    from pydantic import ValidationError

    from vfr.cli.exitcodes import settings_error

    monkeypatch.setenv("VFR_JWT_ALGORITHM", "none")
    monkeypatch.setenv("VFR_TOP_N", "x")
    with pytest.raises(ValidationError) as info:
        Settings()
    text = str(settings_error(info.value, options={"top_n"}))
    assert "--top-n 'x' is invalid" in text and "VFR_JWT_ALGORITHM='none'" in text
    assert type(settings_error(info.value)).__name__ == "SettingsError"
    from vfr.cli.exitcodes import _shown

    assert _shown("jwt_secret", "hunter2") == "<hidden>"
    assert "pw" not in _shown("store_url", "postgresql+psycopg://u:pw@h/db")


def test_the_table_is_documented_and_tracebacks_are_off() -> None:
    from vfr.cli import app

    assert not app.pretty_exceptions_enable and not app.pretty_exceptions_show_locals
    for doc in ("README.md", "docs/operations.md"):
        text = (REPO / doc).read_text()
        for code in ExitCode:
            assert f"| {code.value} | `{code.name}`" in text, (doc, code)


def test_stages_on_a_store_without_data_name_the_first_missing_step(tmp_path: Path) -> None:
    """Issue 17: on an empty store `vfr train` says to run `vfr data ingest`, not `vfr features build`."""
    proc = vfr(tmp_path / "home", "train")
    assert proc.returncode == ExitCode.FAILED
    line = error_line(proc)
    assert "no prices" in line and "`vfr data ingest`" in line and "features build" not in line


def test_dates_outside_the_store_name_the_dates_it_holds(tmp_path: Path, sp500_raw_small: pd.DataFrame) -> None:
    """Issue 17: `select --date` / `backtest --start` outside the stored data say where the data
    start and end (exit 2: an option value out of range), never "the features table is empty"."""
    from vfr.pipeline import stage_features, stage_ingest

    raw = sp500_raw_small[sp500_raw_small["symbol"].isin(["AAPL", "MSFT", "JPM", "XOM", "JNJ"])]
    raw = raw[(raw["date"] >= "2017-01-01") & (raw["date"] < "2019-01-01")]
    prices = tmp_path / "prices.parquet"
    raw.to_parquet(prices)
    home = tmp_path / "home"
    settings = Settings(home=home)
    stage_ingest(settings, prices)
    stage_features(settings)
    first, last = str(raw["date"].min().date()), str(raw["date"].max().date())

    proc = vfr(home, "select", "--date", "1900-01-01")
    assert proc.returncode == ExitCode.USAGE
    line = error_line(proc)
    assert "no features on 1900-01-01" in line and first in line and last in line and "empty" not in line

    proc = vfr(home, "backtest", "--start", "2020-01-01")
    assert proc.returncode == ExitCode.USAGE
    line = error_line(proc)
    assert "2020-01-01" in line and f"scores end on {last}" in line and f"prices on {last}" in line


def test_a_bad_fundamentals_file_is_one_line_naming_it_exit_3(tmp_path: Path) -> None:
    """Issue 17: `vfr data ingest-fundamentals` on a file that is not Parquet, or lacks the
    columns, prints one line naming the file and the problem (no traceback), exit 3."""
    bad = tmp_path / "earnings.parquet"
    bad.write_text("not parquet\n")
    proc = vfr(tmp_path / "home", "data", "ingest-fundamentals", "--earnings", str(bad))
    assert proc.returncode == ExitCode.BAD_INPUT
    line = error_line(proc)
    assert str(bad) in line and "Parquet" in line and "unexpected" not in line
    csv = tmp_path / "earnings.csv"
    csv.write_text("a,b\n1,2\n")
    proc = vfr(tmp_path / "home", "data", "ingest-fundamentals", "--earnings", str(csv))
    assert proc.returncode == ExitCode.BAD_INPUT
    line = error_line(proc)
    assert str(csv) in line and "'reported_date'" in line
