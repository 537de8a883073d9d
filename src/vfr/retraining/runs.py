"""The retraining run log (``ml_retraining_runs``) and the scheduler's database locks
(``ops_job_locks``), as the retraining jobs use them.

The tables and every query on them belong to :mod:`vfr.opsdb` (:mod:`vfr.opsdb.runs`); this
module re-exports them under the names retraining has always used. The lock is a row keyed by
(job id, run key): whoever inserts it first runs the job, every other scheduler or API process
that tries the same key sees the row and skips.
"""

from __future__ import annotations

from vfr.opsdb.db import utcnow
from vfr.opsdb.runs import (
    ACTIVE,
    RUN_FIELDS,
    claim,
    exclusive,
    finish_run,
    holder,
    is_running,
    owner_id,
    recent_runs,
    release,
    run_rows,
    start_run,
)

__all__ = ["ACTIVE", "RUN_FIELDS", "claim", "exclusive", "finish_run", "holder", "is_running", "owner_id",
           "recent_runs", "release", "run_rows", "start_run", "utcnow"]
