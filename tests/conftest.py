"""Shared fixtures: real data from ../shared (skipped cleanly when absent), a temporary VFR
home (and a clean session-wide VFR_HOME / VFR_CONFIG), and a real PostgreSQL URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from vfr.config import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VFR_SHARED_DATA", REPO.parent / "shared" / "data"))
SP500_PRICES = SHARED_DATA / "sp500" / "prices_daily.parquet"
SP500_UNIVERSE = SHARED_DATA / "sp500" / "constituents.csv"
PG_URL = os.environ.get("VFR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

#: A small, sector-diverse slice of the development set used by fast tests.
SMALL_SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM", "JNJ", "WMT", "PG", "KO", "INTC", "CSCO",
                 "PFE", "GE", "HD", "MRK", "T", "BA", "CVX", "ORCL", "AMGN", "MMM"]


def require_shared(path: Path = SP500_PRICES) -> Path:
    """Skip the calling test, saying why, when the shared development data is absent."""
    if not path.exists():
        pytest.skip(f"real data not found at {path} (needs ../shared/data beside the checkout)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _clean_vfr_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A clean VFR_HOME for the whole session, and VFR_CONFIG pointing to an empty TOML file in it:
    neither a developer's ``~/.vfr/config.toml`` (or ``$VFR_HOME/config.toml``) nor a ``./vfr.toml``
    in the working directory changes what the tests see (tests of the TOML file unset VFR_CONFIG)."""
    home = tmp_path_factory.mktemp("vfr-session-home")
    (home / "config.toml").write_text("# empty: the tests' settings come from the environment and defaults\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VFR_HOME", str(home))
        mp.setenv("VFR_CONFIG", str(home / "config.toml"))
        yield home


@pytest.fixture(scope="session")
def sp500_raw_small() -> pd.DataFrame:
    """Raw rows (as in the Parquet file) of 20 real S&P 500 stocks, 2010-2019."""
    path = require_shared()
    df = pd.read_parquet(
        path,
        filters=[("symbol", "in", SMALL_SYMBOLS), ("date", ">=", pd.Timestamp("2010-01-01"))],
    )
    return df.reset_index(drop=True)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with every embedded store inside a fresh temporary folder."""
    return Settings(home=tmp_path / "vfr-home")


@pytest.fixture
def pg_url() -> str:
    """URL of a real PostgreSQL database with a fresh schema for this test (dropped after)."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    schema = f"vfr_test_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc.__class__.__name__}")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


#: The system Chromium the browser tests drive with Playwright (no browser download).
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (Playwright on the system browser); skips, saying why, without one."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def needs_extra(module: str, extra: str | None = None):
    """A ``skipif`` mark for a test of an optional part (the ``vfr[...]`` extras): it skips,
    saying which extra to install, where the module is absent (as in .ci/floors' core install)."""
    import importlib.util

    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} not installed (pip install 'vfr[{extra or module}]')")

