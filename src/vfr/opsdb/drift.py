"""Drift statistics (``ml_drift``): one row per statistic of a drift check, stamped with its time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from vfr.opsdb.db import ensure_schema, insert_rows
from vfr.opsdb.schema import DRIFT

#: Columns of a row of ``ml_drift`` (``id`` left out).
DRIFT_COLUMNS = ["computed_at", "as_of", "model_name", "model_version", "kind", "name", "statistic", "threshold",
                 "breached", "p_value"]


def insert_drift(engine: sa.Engine, rows: Sequence[dict[str, Any]]) -> int:
    """Write the rows of one drift check in one transaction (all or none).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The operations database (migrated first, once per engine).
    rows : sequence of dict
        Keys :data:`DRIFT_COLUMNS`; ``statistic``, ``threshold`` and ``p_value`` may be None.

    Returns
    -------
    int
        Rows written.
    """
    return insert_rows(engine, DRIFT, rows)


def latest_drift(engine: sa.Engine, model_name: str | None = None) -> pd.DataFrame:
    """Rows of the newest drift check (of ``model_name``, or of any model).

    Returns
    -------
    DataFrame
        Columns :data:`DRIFT_COLUMNS`; empty when no check was saved. Missing statistics are NaN.
    """
    ensure_schema(engine)
    newest = sa.select(sa.func.max(DRIFT.c.computed_at))
    q = sa.select(*[DRIFT.c[c] for c in DRIFT_COLUMNS]).order_by(DRIFT.c.id)
    if model_name is not None:
        newest = newest.where(DRIFT.c.model_name == model_name)
        q = q.where(DRIFT.c.model_name == model_name)
    q = q.where(DRIFT.c.computed_at == newest.scalar_subquery())
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).all(), columns=DRIFT_COLUMNS)
    for c in ("statistic", "threshold", "p_value"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    frame["breached"] = frame["breached"].astype(bool)
    return frame
