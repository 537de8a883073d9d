"""Conventions of the `vfr` command line (issue 19): `--version`, the global `--log-level`, bad
values as one `error:` line with a non-zero exit, and a light start-up (issue 18: `vfr --help`
and `import vfr.cli` load no ML, tracking, plotting or data-frame library).

Behaviour checks, not timings; the times are in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vfr.cli import app
from vfr.cli.core import LOG_LEVELS, configure_logging

#: Must not be imported by `import vfr.cli` / `vfr --help` (imported inside the commands).
HEAVY = ("mlflow", "lightgbm", "optuna", "matplotlib", "sklearn", "torch", "shap", "xgboost", "catboost",
         "fastapi", "pandas")


def vfr(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the console script's entry point (`python -m vfr.cli`) with a private VFR_HOME."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("VFR_")}
    return subprocess.run([sys.executable, "-m", "vfr.cli", *args], capture_output=True, text=True, timeout=300,
                          env=base | {"VFR_HOME": str(home), "COLUMNS": "80"} | env)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """stderr is exactly one `error:` line: no traceback, no boxed panel, no pydantic dump."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "╭" not in proc.stderr and "pydantic" not in proc.stderr
    return lines[0]


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"vfr {version('vfr')}"


def test_help_lists_the_global_options() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "--version" in result.output and "--log-level" in result.output


@pytest.mark.parametrize("level", LOG_LEVELS)
def test_log_level_configures_the_root_logger(level: str) -> None:
    root = logging.getLogger()
    handlers, old = root.handlers[:], root.level
    try:
        configure_logging(level.upper())
        assert root.level == getattr(logging, level.upper())
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(old)


def test_a_bad_log_level_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = vfr(tmp_path, "--log-level", "loud", "data", "ingest", "x.parquet")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "--log-level 'loud'" in line and "debug" in line


def test_a_bad_log_level_variable_is_named_exit_4(tmp_path: Path) -> None:
    proc = vfr(tmp_path, "data", "ingest", "x.parquet", VFR_LOG_LEVEL="loud")
    assert proc.returncode == 4
    assert "VFR_LOG_LEVEL='loud'" in one_error_line(proc)


def test_a_bad_horizon_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = vfr(tmp_path, "train", "--horizon", "2w")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "--horizon '2w'" in line and "1w" in line


def test_a_bad_setting_names_the_variable(tmp_path: Path) -> None:
    proc = vfr(tmp_path, "select", VFR_TOP_N="abc")
    assert proc.returncode == 4
    assert "VFR_TOP_N='abc'" in one_error_line(proc)


@pytest.mark.parametrize(("args", "expected"), [
    (["backtest", "--top-n", "abc"], "Invalid value for '--top-n'"),  # a value of the wrong type
    (["--no-such-option"], "No such option: --no-such-option"),
    (["no-such-command"], "No such command 'no-such-command'"),
    (["data", "ingest"], "Missing argument"),
])
def test_click_usage_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    proc = vfr(tmp_path, *args)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert expected in line and "--help" in line


def test_import_vfr_cli_loads_no_heavy_library() -> None:
    """`python -X importtime -c "import vfr.cli"`: none of HEAVY in the modules it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import vfr.cli"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "vfr" in imported and "typer" in imported  # the output was parsed
    assert sorted(imported & set(HEAVY)) == []


_HELP_PROBE = """
import contextlib, io, json, sys
from vfr.cli import app
for argv in (["--help"], ["--version"], ["train", "--help"], ["models", "--help"]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            app(argv, prog_name="vfr")
        except SystemExit as exc:
            assert exc.code in (0, None), (argv, exc.code)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_help_and_version_load_no_heavy_library() -> None:
    proc = subprocess.run([sys.executable, "-c", _HELP_PROBE], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert sorted(loaded & set(HEAVY)) == []


def test_import_vfr_is_light() -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys, vfr; print(sorted(sys.modules))"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not any(f"'{name}'" in proc.stdout for name in HEAVY + ("numpy", "pydantic"))


def test_json_prints_only_json_lines_on_stdout(tmp_path: Path) -> None:
    import json

    proc = vfr(tmp_path, "--json", "scheduler", "jobs")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    table = json.loads(lines[0])
    assert table["table"] == "Schedule" and {r["job"] for r in table["rows"]} >= {"daily_monitoring"}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_output_writes_the_table_to_a_file(tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    target = tmp_path / f"jobs{suffix}"
    proc = vfr(tmp_path, "--output", str(target), "scheduler", "jobs")
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(target) if suffix == ".csv" else pd.read_parquet(target)
    assert "daily_monitoring" in set(frame["job"]) and "Schedule" not in proc.stdout


def test_output_needs_a_table_suffix_and_excludes_json(tmp_path: Path) -> None:
    proc = vfr(tmp_path, "--output", str(tmp_path / "jobs.txt"), "scheduler", "jobs")
    assert proc.returncode == 2 and ".parquet or .csv" in one_error_line(proc)
    proc = vfr(tmp_path, "--json", "--output", str(tmp_path / "j.csv"), "scheduler", "jobs")
    assert proc.returncode == 2 and "alternatives" in one_error_line(proc)
