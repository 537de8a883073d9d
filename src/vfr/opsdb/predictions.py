"""The prediction log (``ml_predictions``) and its outcomes (``ml_outcomes``).

A prediction is identified by (model name, model version, horizon, feature date, symbol): a
model's output for a stock on a date is one prediction however often it is served; the unique
key of the table skips repeated inserts. Its outcome is written once its horizon has passed
(see :func:`vfr.monitoring.fill_outcomes`).

Every write is one transaction: a batch is written whole or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa

from vfr.opsdb.db import ensure_schema, insert_rows
from vfr.opsdb.schema import OUTCOMES, PREDICTIONS

#: Columns of a row of ``ml_predictions`` as :func:`insert_predictions` takes it.
PREDICTION_COLUMNS = ("served_at", "request_id", "symbol", "feature_date", "model_name", "model_version", "horizon",
                      "predicted_class", "probability", "confidence", "confidence_level", "features")
#: Columns of a row of ``ml_outcomes`` as :func:`insert_outcomes` takes it.
OUTCOME_COLUMNS = ("prediction_id", "horizon_end", "realised_return", "excess_return", "correct", "evaluated_at",
                   "surprise_pct")


def confidence_level(confidence: float) -> str:
    """``HIGH`` (>= 0.8), ``MEDIUM`` (>= 0.5) or ``LOW``: the ``confidence_level`` column."""
    return "HIGH" if confidence >= 0.8 else ("MEDIUM" if confidence >= 0.5 else "LOW")


def insert_predictions(engine: sa.Engine, rows: Sequence[dict[str, Any]]) -> int:
    """Write served predictions in one transaction; rows already logged are skipped.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The operations database (migrated first, once per engine).
    rows : sequence of dict
        Keys :data:`PREDICTION_COLUMNS` (``served_at`` naive UTC, ``feature_date`` a date,
        ``features`` a JSON text).

    Returns
    -------
    int
        Rows handed to the database (duplicates of logged predictions included).

    Raises
    ------
    sqlalchemy.exc.SQLAlchemyError
        The database is unreachable or refused a row; nothing of the batch is written.
    """
    return insert_rows(engine, PREDICTIONS, rows, ignore=True)


def prediction_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows in ``ml_predictions`` and ``ml_outcomes`` (raises when the database is unreachable)."""
    ensure_schema(engine)
    with engine.connect() as conn:
        return {PREDICTIONS.name: int(conn.execute(sa.select(sa.func.count()).select_from(PREDICTIONS)).scalar_one()),
                OUTCOMES.name: int(conn.execute(sa.select(sa.func.count()).select_from(OUTCOMES)).scalar_one())}


def open_predictions(engine: sa.Engine) -> pd.DataFrame:
    """Logged predictions without an outcome yet.

    Returns
    -------
    DataFrame
        ``id``, ``symbol``, ``date`` (feature date, datetime64), ``horizon``, ``predicted_class``,
        ``model_name``.
    """
    ensure_schema(engine)
    q = (sa.select(PREDICTIONS.c.id, PREDICTIONS.c.symbol, PREDICTIONS.c.feature_date, PREDICTIONS.c.horizon,
                   PREDICTIONS.c.predicted_class, PREDICTIONS.c.model_name)
         .select_from(PREDICTIONS.outerjoin(OUTCOMES, OUTCOMES.c.prediction_id == PREDICTIONS.c.id))
         .where(OUTCOMES.c.prediction_id.is_(None)))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).all(),
                             columns=["id", "symbol", "date", "horizon", "predicted_class", "model_name"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def insert_outcomes(engine: sa.Engine, rows: Sequence[dict[str, Any]]) -> int:
    """Write outcomes in one transaction; predictions that already have one are skipped.

    Parameters
    ----------
    rows : sequence of dict
        Keys :data:`OUTCOME_COLUMNS`.

    Returns
    -------
    int
        Rows handed to the database.
    """
    return insert_rows(engine, OUTCOMES, rows, ignore=True)


def _day(value: date | str | pd.Timestamp) -> date:
    return pd.Timestamp(value).date()


def served_features(engine: sa.Engine, *, model_name: str, model_version: str, start: date | str | pd.Timestamp,
                    end: date | str | pd.Timestamp) -> pd.DataFrame:
    """Features and probabilities of the predictions served in [start, end].

    Returns
    -------
    DataFrame
        ``date``, ``symbol``, ``probability`` and one column per logged feature.
    """
    ensure_schema(engine)
    q = (sa.select(PREDICTIONS.c.feature_date, PREDICTIONS.c.symbol, PREDICTIONS.c.probability,
                   PREDICTIONS.c.features)
         .where(PREDICTIONS.c.model_name == model_name, PREDICTIONS.c.model_version == str(model_version),
                PREDICTIONS.c.feature_date >= _day(start), PREDICTIONS.c.feature_date <= _day(end)))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if not rows:
        return pd.DataFrame(columns=["date", "symbol", "probability"])
    feats = pd.DataFrame([json.loads(r.features or "{}") for r in rows]).astype("float64")
    head = pd.DataFrame({"date": pd.to_datetime([r.feature_date for r in rows]), "symbol": [r.symbol for r in rows],
                         "probability": [float(r.probability) for r in rows]})
    return pd.concat([head, feats], axis=1)


def evaluated_outcomes(engine: sa.Engine, *, model_name: str, start: date | str | pd.Timestamp,
                       end: date | str | pd.Timestamp) -> pd.DataFrame:
    """Predictions of ``model_name`` with a known outcome whose horizon ended in [start, end].

    Returns
    -------
    DataFrame
        ``date`` (feature date), ``horizon_end``, ``probability``, ``predicted_class``,
        ``excess_return``, ``correct`` (the input of :func:`vfr.monitoring.rolling_performance`),
        ``symbol``, ``model_version`` and ``surprise_pct`` (early-signal outcomes; else NaN).
    """
    ensure_schema(engine)
    q = (sa.select(PREDICTIONS.c.feature_date.label("date"), OUTCOMES.c.horizon_end, PREDICTIONS.c.probability,
                   PREDICTIONS.c.predicted_class, OUTCOMES.c.excess_return, OUTCOMES.c.correct, PREDICTIONS.c.symbol,
                   PREDICTIONS.c.model_version, OUTCOMES.c.surprise_pct)
         .select_from(PREDICTIONS.join(OUTCOMES, OUTCOMES.c.prediction_id == PREDICTIONS.c.id))
         .where(PREDICTIONS.c.model_name == model_name, OUTCOMES.c.horizon_end >= _day(start),
                OUTCOMES.c.horizon_end <= _day(end)))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).mappings().all(),
                             columns=["date", "horizon_end", "probability", "predicted_class", "excess_return",
                                      "correct", "symbol", "model_version", "surprise_pct"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["correct"] = frame["correct"].astype(bool)
    return frame
