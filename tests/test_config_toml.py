"""The TOML configuration file beside the ``VFR_*`` variables (issue 19): where it is looked
for, precedence (explicit > environment > file > defaults), ``VFR_CONFIG``, and errors that
name the file and the key, from Python and from the `vfr` command line (one line, exit 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from vfr.config import Settings, config_file, get_settings
from vfr.errors import SettingsError


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A clean environment (no ``VFR_*`` variable), ``VFR_HOME`` in ``tmp_path/home`` and the
    current directory ``tmp_path/cwd``: (cwd, home)."""
    for name in list(os.environ):
        if name.upper().startswith("VFR_"):
            monkeypatch.delenv(name)
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    monkeypatch.setenv("VFR_HOME", str(home))
    monkeypatch.chdir(cwd)
    return cwd, home


def test_precedence_explicit_then_environment_then_file_then_defaults(where, monkeypatch) -> None:
    cwd, _ = where
    (cwd / "vfr.toml").write_text('top_n = 30\nseed = 7\nhorizon = "1m"\nstore_url = "sqlite:///from-file.db"\n'
                                  'api_trusted_proxies = ["10.0.0.0/8"]\n')
    s = get_settings()
    assert (s.top_n, s.seed, s.horizon, s.store_url) == (30, 7, "1m", "sqlite:///from-file.db")
    assert s.api_trusted_proxies == ["10.0.0.0/8"]  # a TOML list, no JSON quoting
    assert s.commission_bps == 5.0  # not in the file: the default
    monkeypatch.setenv("VFR_TOP_N", "40")
    assert get_settings().top_n == 40  # the environment over the file
    assert get_settings().seed == 7
    assert get_settings(top_n=50).top_n == 50  # explicit over both
    assert Settings(seed=1).seed == 1


def test_the_file_in_vfr_home_and_the_one_in_the_current_directory(where) -> None:
    cwd, home = where
    assert config_file() is None and get_settings().top_n == 20
    (home / "config.toml").write_text("top_n = 25\n")
    assert config_file() == home / "config.toml"
    assert get_settings().top_n == 25
    (cwd / "vfr.toml").write_text("seed = 3\n")  # ./vfr.toml comes first; the files are not merged
    assert config_file() == cwd / "vfr.toml"
    s = get_settings()
    assert (s.seed, s.top_n) == (3, 20)


def test_vfr_config_names_an_explicit_file_and_a_missing_one_is_an_error(where, tmp_path, monkeypatch) -> None:
    cwd, home = where
    (cwd / "vfr.toml").write_text("top_n = 21\n")
    (home / "config.toml").write_text("top_n = 22\n")
    explicit = tmp_path / "elsewhere.toml"
    explicit.write_text("top_n = 23\n")
    monkeypatch.setenv("VFR_CONFIG", str(explicit))
    assert config_file() == explicit and get_settings().top_n == 23
    monkeypatch.setenv("VFR_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError, match=r"VFR_CONFIG=.*missing\.toml.*no such configuration file"):
        get_settings()


def test_a_malformed_file_and_an_unknown_key_name_the_file(where) -> None:
    cwd, _ = where
    path = cwd / "vfr.toml"
    path.write_text("top_n = 30\nstore_url = \n")
    with pytest.raises(SettingsError) as info:
        get_settings()
    assert str(path) in str(info.value) and "not valid TOML" in str(info.value) and "line 2" in str(info.value)
    path.write_text("topn = 30\n")
    with pytest.raises(SettingsError, match=r"vfr\.toml: unknown setting 'topn' \(did you mean 'top_n'\?\)"):
        get_settings()


def test_a_bad_value_in_the_file_names_the_file_and_the_key(where) -> None:
    cwd, _ = where
    (cwd / "vfr.toml").write_text('top_n = "abc"\n')
    with pytest.raises(ValidationError) as info:
        get_settings()
    assert info.value.errors()[0]["loc"] == ("top_n",)
    assert any(str(cwd / "vfr.toml") in note and "top_n" in note for note in info.value.__notes__)

    from vfr.cli.exitcodes import settings_error

    text = str(settings_error(info.value))
    assert text.startswith(f"{cwd / 'vfr.toml'}: top_n = 'abc' is invalid") and "integer" in text


def _vfr(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("VFR_")}
    return subprocess.run([sys.executable, "-m", "vfr.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=base | {"VFR_HOME": str(cwd.parent / "home"), "COLUMNS": "80"} | env)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "pydantic" not in proc.stderr
    return lines[0]


def test_the_command_line_names_the_file_on_one_line_exit_4(where, monkeypatch) -> None:
    cwd, _ = where
    path = cwd / "vfr.toml"
    path.write_text('top_n = "abc"\n')
    proc = _vfr(cwd, "select")  # the real console script: one line on stderr, exit 4
    assert proc.returncode == 4
    line = _one_error_line(proc)
    assert f"{path}: top_n = 'abc' is invalid" in line and "integer" in line
    monkeypatch.setenv("VFR_TOP_N", "12")  # the variable wins: the file's bad value is not used
    assert get_settings().top_n == 12

    from typer.testing import CliRunner

    from vfr.cli import app

    monkeypatch.delenv("VFR_TOP_N")
    path.write_text("top_n = [\n")
    result = CliRunner().invoke(app, ["select"])
    assert result.exit_code == 4 and f"{path}: not valid TOML" in result.output
    assert len(result.output.strip().splitlines()) == 1
    monkeypatch.setenv("VFR_CONFIG", str(cwd / "nope.toml"))
    result = CliRunner().invoke(app, ["select"])
    assert result.exit_code == 4 and "VFR_CONFIG=" in result.output and "nope.toml" in result.output
