"""Fixtures for the vfr.data tests: fresh stores on DuckDB and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.helpers import Scripted
from vfr.data import MarketStore


@pytest.fixture()
def http():
    """A real local HTTP server scripted as a provider (:class:`tests.data.helpers.Scripted`)."""
    server = Scripted()
    yield server
    server.close()


@pytest.fixture
def duck_url(tmp_path: Path) -> str:
    """URL of a fresh DuckDB file (in a folder that does not exist yet)."""
    return f"duckdb:///{tmp_path / 'store' / 'vfr.duckdb'}"


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL on each backend (PostgreSQL through the ``pg_url`` fixture)."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'store' / 'vfr.duckdb'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str):
    """An open MarketStore on each backend, closed after the test."""
    with MarketStore(store_url) as s:
        yield s
