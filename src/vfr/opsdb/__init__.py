"""The operations database: the prediction log, outcomes, drift, alerts, retraining runs and job locks.

It sits below serving, monitoring and retraining (layer order ``opsdb -> monitoring /
retraining -> serving -> cli``) and imports none of them: every operational table is named,
created (Alembic, :mod:`vfr.opsdb.migrations`) and written here, on the embedded SQLite file
of VFR home by default or on PostgreSQL (``settings.serving_db_url``). Every write is one
transaction (a batch is written whole or not at all).

Public interface
----------------
Connection and schema (:mod:`vfr.opsdb.db`)
    ``connect(url) -> Engine``, ``migrate(engine)``, ``ensure_schema(engine)`` (migrate once
    per engine), ``revision(engine)``, ``has_table(engine, name)``, ``insert_ignore(engine,
    table)``, ``is_unavailable(exc)``, ``OpsDBUnavailable``, ``utcnow()``
Tables (:mod:`vfr.opsdb.schema`)
    names ``PREDICTIONS_TABLE``, ``OUTCOMES_TABLE``, ``DRIFT_TABLE``, ``ALERTS_TABLE``,
    ``RUNS_TABLE``, ``LOCKS_TABLE`` (all in ``TABLES``); SQLAlchemy tables ``PREDICTIONS``,
    ``OUTCOMES``, ``DRIFT``, ``ALERTS``, ``RUNS``, ``LOCKS``
Prediction log (:mod:`vfr.opsdb.predictions`)
    ``insert_predictions(engine, rows)``, ``prediction_counts(engine)``,
    ``open_predictions(engine)``, ``insert_outcomes(engine, rows)``,
    ``served_features(engine, *, model_name, model_version, start, end)``,
    ``evaluated_outcomes(engine, *, model_name, start, end)``, ``confidence_level(c)``
Drift and alerts (:mod:`vfr.opsdb.drift`, :mod:`vfr.opsdb.alerts`)
    ``insert_drift(engine, rows)``, ``latest_drift(engine, model_name=None)``,
    ``claim_alert(engine, ...)``, ``record_delivery(...)``, ``release_alert(...)``,
    ``recent_alerts(engine, limit=50)``
Retraining runs and job locks (:mod:`vfr.opsdb.runs`)
    ``claim``, ``release``, ``exclusive`` (a lease with a heartbeat), ``holder``, ``is_running``,
    ``stale_reason``, ``reap_stale``, ``start_run``, ``finish_run``, ``recent_runs``, ``run_rows``, ``RUN_FIELDS``,
    ``ACTIVE``, ``LEASE_TTL_S``
"""

from vfr.opsdb.alerts import (
    ALERT_COLUMNS,
    claim_alert,
    recent_alerts,
    record_delivery,
    release_alert,
)
from vfr.opsdb.db import (
    OpsDBUnavailable,
    connect,
    ensure_schema,
    has_table,
    insert_ignore,
    is_unavailable,
    migrate,
    revision,
    utcnow,
)
from vfr.opsdb.drift import DRIFT_COLUMNS, insert_drift, latest_drift
from vfr.opsdb.predictions import (
    OUTCOME_COLUMNS,
    PREDICTION_COLUMNS,
    confidence_level,
    evaluated_outcomes,
    insert_outcomes,
    insert_predictions,
    open_predictions,
    prediction_counts,
    served_features,
)
from vfr.opsdb.runs import (
    ACTIVE,
    LEASE_TTL_S,
    RUN_FIELDS,
    claim,
    exclusive,
    finish_run,
    holder,
    is_running,
    owner_id,
    reap_stale,
    recent_runs,
    release,
    run_rows,
    stale_reason,
    start_run,
)
from vfr.opsdb.schema import (
    ALERTS,
    ALERTS_TABLE,
    DRIFT,
    DRIFT_TABLE,
    LOCKS,
    LOCKS_TABLE,
    OUTCOMES,
    OUTCOMES_TABLE,
    PREDICTIONS,
    PREDICTIONS_TABLE,
    RUNS,
    RUNS_TABLE,
    TABLES,
)

__all__ = [
    "ACTIVE", "ALERTS", "ALERTS_TABLE", "ALERT_COLUMNS", "DRIFT", "DRIFT_COLUMNS", "DRIFT_TABLE", "LEASE_TTL_S",
    "LOCKS", "LOCKS_TABLE", "OUTCOMES", "OUTCOMES_TABLE", "OUTCOME_COLUMNS", "PREDICTIONS", "PREDICTIONS_TABLE",
    "PREDICTION_COLUMNS", "RUNS", "RUNS_TABLE", "RUN_FIELDS", "TABLES", "OpsDBUnavailable", "claim", "claim_alert",
    "confidence_level", "connect", "ensure_schema", "evaluated_outcomes", "exclusive", "finish_run", "has_table",
    "holder", "insert_drift", "insert_ignore", "insert_outcomes", "insert_predictions", "is_running",
    "is_unavailable", "latest_drift", "migrate", "open_predictions", "owner_id", "prediction_counts",
    "reap_stale", "recent_alerts", "recent_runs", "record_delivery", "release", "release_alert", "revision", "run_rows",
    "served_features", "stale_reason", "start_run", "utcnow",
]
