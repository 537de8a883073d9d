"""Operations for the API: the prediction log, outcomes, retraining runs, drift and alerts, all
in the operations database (:mod:`vfr.opsdb`), and the market store's inventory.

Routers and the dashboard go through :class:`OpsService`, never through a database handle: a
database that cannot be reached becomes :class:`~vfr.serving.errors.StoreUnavailable` (503).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa

from vfr import opsdb
from vfr.serving.cache import TTLCache
from vfr.serving.errors import StoreUnavailable
from vfr.serving.features import FeatureService
from vfr.serving.predlog import PredictionLogger

T = TypeVar("T")
#: Message of the 503 answered when the operations database is unreachable.
OPSDB_DOWN = "the operations database is not reachable; try again later"


class OpsService:
    """The operations database and the store inventory, as the API and the dashboard use them.

    Parameters
    ----------
    predlog : PredictionLogger
        The prediction log's writer; its engine is the operations database.
    features : FeatureService
        The market store (inventory, prices for outcomes).
    cache : TTLCache
        Reported by :meth:`data_sources`.
    lock_ttl_s : float
        Lease time of the retraining lock (``settings.retrain_lock_ttl_s``): a lease not
        refreshed for longer does not count as a running retraining.
    """

    def __init__(self, predlog: PredictionLogger, features: FeatureService, cache: TTLCache,
                 lock_ttl_s: float = opsdb.LEASE_TTL_S) -> None:
        self.predlog = predlog
        self.features = features
        self.cache = cache
        self.lock_ttl_s = lock_ttl_s

    @property
    def db(self) -> sa.Engine:
        """The operations database (for components that take an engine, such as the alert manager)."""
        return self.predlog.engine

    def _guard(self, fn: Callable[[sa.Engine], T]) -> T:
        """``fn(db)``; a failure to reach the database becomes :class:`StoreUnavailable`."""
        try:
            return fn(self.db)
        except Exception as exc:
            if opsdb.is_unavailable(exc):
                raise StoreUnavailable(OPSDB_DOWN) from exc
            raise

    # -- prediction log and outcomes ----------------------------------------------------------
    def log_stats(self) -> dict[str, Any]:
        """Pending, written, failed flushes and the last error of the prediction log (no URLs)."""
        return self.predlog.stats()

    def data_sources(self) -> dict[str, Any]:
        """Row counts and freshness of each table of the market store, the cache, the log.

        Raises
        ------
        StoreUnavailable
            The market store is unreachable (the operations database being down is reported
            in ``prediction_log`` instead).
        """
        counts, fresh = self.features.table_summary()
        try:
            log_counts: dict[str, Any] = self.predlog.counts()
        except Exception as exc:  # noqa: BLE001
            log_counts = {"error": f"serving database unreachable ({exc.__class__.__name__})"}
        return {"sources": [{"name": t, "rows": n, "latest_date": fresh.get(t)} for t, n in counts.items()],
                "prediction_log": log_counts | self.predlog.stats(), "cache": self.cache.stats()}

    def fill_outcomes(self) -> int:
        """Write what is buffered, then fill ``ml_outcomes`` for predictions whose horizon has passed.

        Returns
        -------
        int
            Outcomes written.

        Raises
        ------
        StoreUnavailable
            The operations database or the market store is unreachable.
        """
        from vfr.monitoring import fill_outcomes

        def run(db: sa.Engine) -> int:
            self.predlog.flush()
            return fill_outcomes(db, self.features.read_prices)

        return self._guard(run)

    # -- retraining runs ------------------------------------------------------------------------
    def runs(self, model_name: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` retraining runs of ``model_name``, newest first (``RUN_FIELDS`` each)."""
        return self._guard(lambda db: opsdb.run_rows(opsdb.recent_runs(db, limit=limit, model_name=model_name)))

    def retraining_running(self, job_id: str = "retrain") -> bool:
        """Whether a live retraining holds its lock now (a stale lease does not count)."""
        return self._guard(lambda db: opsdb.is_running(db, job_id, self.lock_ttl_s))

    def reap_retraining(self, job_id: str = "retrain") -> str | None:
        """Fail the run of a retraining whose worker died holding the lock (see
        :func:`vfr.opsdb.reap_stale`); returns why, or None when nothing was reaped."""
        return self._guard(lambda db: opsdb.reap_stale(db, job_id, self.lock_ttl_s))

    def retraining_holder(self, job_id: str = "retrain") -> str | None:
        """``host:pid`` of the process holding the retraining lock, or None."""
        row = self._guard(lambda db: opsdb.holder(db, job_id))
        return None if row is None else str(row["owner"])

    def record_rollback(self, name: str, change: dict[str, Any], user: str) -> int:
        """Record an API rollback (``change`` from the model service) as a finished run; returns its id."""
        def run(db: sa.Engine) -> int:
            run_id = opsdb.start_run(db, trigger="api", model_name=name, champion_before=change["previous"])
            opsdb.finish_run(db, run_id, status="rollback", action="rollback", champion_after=change["champion"],
                             reason=f"rolled back from v{change['previous']} to v{change['champion']} by {user}")
            return run_id

        return self._guard(run)

    # -- monitoring -----------------------------------------------------------------------------
    def latest_drift(self, model_name: str | None = None) -> pd.DataFrame:
        """Rows of the newest drift check (see :func:`vfr.opsdb.latest_drift`)."""
        return self._guard(lambda db: opsdb.latest_drift(db, model_name))

    def recent_alerts(self, limit: int = 50) -> pd.DataFrame:
        """The ``limit`` most recently seen alerts (see :func:`vfr.opsdb.recent_alerts`)."""
        return self._guard(lambda db: opsdb.recent_alerts(db, limit))
