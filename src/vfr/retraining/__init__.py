"""Retraining and operations: the retraining pipeline, the scheduled jobs and their locks.

Public interface::

    run_retraining(settings, trigger=, as_of=) -> RetrainingDecision   # `vfr retrain`
    guard_violations(challenger, champion, guard) -> [str]
    drift_check(settings, as_of) -> DriftCheck                          # reference vs production
    collect_outcomes(settings, as_of) -> int
    daily_monitoring / monthly_retraining / earnings_season_retraining  # the scheduled jobs
    build_scheduler(settings) / next_runs(settings) / SCHEDULE          # APScheduler, DB job store
    claim(engine, job_id, run_key) -> bool / recent_runs(engine)        # DB lock and run log (vfr.opsdb)
    replay(settings, start, end, serve=...)                             # `vfr ops replay`

Layers: retraining imports :mod:`vfr.opsdb` and :mod:`vfr.monitoring`, never :mod:`vfr.serving`
(the replay is handed its serving function).
"""

from vfr.opsdb.runs import claim, recent_runs
from vfr.retraining.jobs import (
    DriftCheck,
    collect_outcomes,
    daily_monitoring,
    drift_check,
    earnings_season_retraining,
    monthly_retraining,
)
from vfr.retraining.retrain import (
    GUARD_METRICS,
    RetrainingDecision,
    guard_violations,
    run_retraining,
)
from vfr.retraining.scheduler import SCHEDULE, JobSpec, build_scheduler, next_runs

__all__ = ["GUARD_METRICS", "SCHEDULE", "DriftCheck", "JobSpec", "RetrainingDecision", "build_scheduler", "claim",
           "collect_outcomes", "daily_monitoring", "drift_check", "earnings_season_retraining", "guard_violations",
           "monthly_retraining", "next_runs", "recent_runs", "run_retraining"]
