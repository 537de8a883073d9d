"""Connections and migrations of the operations database.

The operations database is an SQLAlchemy URL (``settings.resolved_serving_db_url``): an
embedded SQLite file in VFR home by default, PostgreSQL in production. Its schema is managed
by Alembic (:mod:`vfr.opsdb.migrations`); :func:`migrate` brings any database to the latest
revision and is idempotent.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vfr.errors import VFRError

_MIGRATE_LOCK = threading.Lock()  # Alembic's environment loading is not thread-safe
_MIGRATED: weakref.WeakSet[sa.Engine] = weakref.WeakSet()  # engines this process has migrated


class OpsDBUnavailable(VFRError):
    """The operations database cannot be reached (or refused the statement for lack of a connection)."""


def utcnow() -> datetime:
    """Current UTC time as a naive datetime (the operations tables store naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def connect(url: str, *, connect_timeout_s: float = 2) -> sa.Engine:
    """An engine on the operations database at ``url``.

    Parameters
    ----------
    url : str
        SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``). The folder of a
        SQLite file is created when missing.
    connect_timeout_s : float
        PostgreSQL connection timeout, so an unreachable server fails fast.

    Returns
    -------
    sqlalchemy.Engine
        With ``pool_pre_ping`` (stale connections are replaced after a server restart).
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {"connect_timeout": int(max(1, connect_timeout_s))} \
        if url.startswith("postgresql") else {}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def migrate(engine: sa.Engine) -> None:
    """Bring the operations database to the latest Alembic revision (idempotent, one transaction).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        SQLite or PostgreSQL.

    Raises
    ------
    sqlalchemy.exc.OperationalError
        If the database is unreachable.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("vfr.opsdb") / "migrations"))
    with _MIGRATE_LOCK, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    _MIGRATED.add(engine)


def ensure_schema(engine: sa.Engine) -> None:
    """:func:`migrate` once per engine object in this process (later calls return at once).

    A failed migration (database down) is not remembered, so the next call tries again.
    """
    if engine in _MIGRATED:
        return
    migrate(engine)


def revision(engine: sa.Engine) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def has_table(engine: sa.Engine, name: str) -> bool:
    """Whether table ``name`` exists (raises when the database is unreachable)."""
    return sa.inspect(engine).has_table(name)


def insert_rows(engine: sa.Engine, table: sa.Table, rows: Sequence[dict[str, Any]], *, ignore: bool = False) -> int:
    """Write ``rows`` into ``table`` in one transaction (all or none), migrating the database first.

    ``ignore``: skip rows whose unique key is already there (:func:`insert_ignore`).

    Returns
    -------
    int
        Rows handed to the database (0 for an empty batch, which touches nothing).
    """
    if not rows:
        return 0
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(insert_ignore(engine, table) if ignore else table.insert(), list(rows))
    return len(rows)


def insert_ignore(engine: sa.Engine, table: sa.Table) -> sa.Insert:
    """An ``INSERT`` into ``table`` that skips rows whose unique key is already there.

    ``ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite; a plain insert on other dialects.
    """
    name = engine.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(table).on_conflict_do_nothing()
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        return sqlite_insert(table).on_conflict_do_nothing()
    return table.insert()


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or its cause) means the database could not be reached."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (OpsDBUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError, ConnectionError,
                            TimeoutError)):
            return True
        if exc.__class__.__module__.startswith("psycopg") and "Operational" in exc.__class__.__name__:
            return True
        exc, seen = exc.__cause__, seen + 1
    return False
