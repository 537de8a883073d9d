"""The operational tables: their names (defined here only) and :class:`sqlalchemy.Table` mirrors.

The tables are created and changed by the Alembic revisions of :mod:`vfr.opsdb.migrations`
(run by :func:`vfr.opsdb.migrate`); the objects here describe them for queries. Both use the
names below, so a table is named in one place.
"""

from __future__ import annotations

import sqlalchemy as sa

#: Every served ML prediction (one row per model, version, horizon, feature date and symbol).
PREDICTIONS_TABLE = "ml_predictions"
#: Realised outcome of a logged prediction once its horizon has passed (keyed by prediction id).
OUTCOMES_TABLE = "ml_outcomes"
#: Drift statistics, one row per statistic of a drift check.
DRIFT_TABLE = "ml_drift"
#: Alerts with their de-duplication state (one row per alert key).
ALERTS_TABLE = "ml_alerts"
#: Retraining runs and their decisions.
RUNS_TABLE = "ml_retraining_runs"
#: Scheduler locks, one row per (job, occurrence); the retraining lease refreshes ``heartbeat_at``.
LOCKS_TABLE = "ops_job_locks"
#: Every table of the operations database, in creation order.
TABLES = (PREDICTIONS_TABLE, OUTCOMES_TABLE, DRIFT_TABLE, ALERTS_TABLE, RUNS_TABLE, LOCKS_TABLE)

#: Surrogate key type: BIGINT, INTEGER on SQLite (so it is the rowid and autoincrements).
ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

METADATA = sa.MetaData()

PREDICTIONS = sa.Table(
    PREDICTIONS_TABLE, METADATA,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("served_at", sa.DateTime(), nullable=False), sa.Column("request_id", sa.String(64)),
    sa.Column("symbol", sa.String(16), nullable=False), sa.Column("feature_date", sa.Date(), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False), sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("horizon", sa.String(8), nullable=False), sa.Column("predicted_class", sa.SmallInteger(), nullable=False),
    sa.Column("probability", sa.Float(), nullable=False), sa.Column("confidence", sa.Float()),
    sa.Column("confidence_level", sa.String(8)), sa.Column("features", sa.Text()),
)
OUTCOMES = sa.Table(
    OUTCOMES_TABLE, METADATA,
    sa.Column("prediction_id", ID_TYPE, primary_key=True),
    sa.Column("horizon_end", sa.Date(), nullable=False), sa.Column("realised_return", sa.Float(), nullable=False),
    sa.Column("excess_return", sa.Float(), nullable=False), sa.Column("correct", sa.Boolean(), nullable=False),
    sa.Column("evaluated_at", sa.DateTime(), nullable=False),
    # early-signal model only: the report's EPS surprise, percent (revision 0005)
    sa.Column("surprise_pct", sa.Float(), nullable=True),
)
DRIFT = sa.Table(
    DRIFT_TABLE, METADATA,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("computed_at", sa.DateTime(), nullable=False), sa.Column("as_of", sa.Date(), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False), sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False), sa.Column("name", sa.String(128), nullable=False),
    sa.Column("statistic", sa.Float()), sa.Column("threshold", sa.Float()),
    sa.Column("breached", sa.Boolean(), nullable=False), sa.Column("p_value", sa.Float()),
)
ALERTS = sa.Table(
    ALERTS_TABLE, METADATA,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(255), unique=True, nullable=False), sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False), sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("value", sa.Float()), sa.Column("threshold", sa.Float()), sa.Column("message", sa.Text(), nullable=False),
    sa.Column("first_seen_at", sa.DateTime(), nullable=False), sa.Column("last_seen_at", sa.DateTime(), nullable=False),
    sa.Column("last_sent_at", sa.DateTime()), sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("delivered_to", sa.Text()),
)
RUNS = sa.Table(
    RUNS_TABLE, METADATA,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime(), nullable=False), sa.Column("finished_at", sa.DateTime()),
    sa.Column("trigger", sa.String(32), nullable=False), sa.Column("status", sa.String(32), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False), sa.Column("champion_before", sa.String(32)),
    sa.Column("challenger_version", sa.String(32)), sa.Column("champion_after", sa.String(32)),
    sa.Column("action", sa.String(16)), sa.Column("reason", sa.Text()), sa.Column("report", sa.Text()),
)
LOCKS = sa.Table(
    LOCKS_TABLE, METADATA,
    sa.Column("job_id", sa.String(64), primary_key=True), sa.Column("run_key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False), sa.Column("acquired_at", sa.DateTime(), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime()), sa.Column("run_id", ID_TYPE),
)
