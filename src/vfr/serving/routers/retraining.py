"""``/api/ml/retraining`` and ``/api/ml/model/info``: the retraining loop over HTTP.

Status and model info need a member token; trigger and rollback are admin-only. A triggered
run trains in a worker process (:mod:`vfr.serving.retrain_worker`), so the API's process keeps
its CPU for requests; it takes the same database lock as the scheduler's jobs, so an API
trigger during a scheduled run answers 409 instead of training twice. Runs and locks are read through
:class:`~vfr.serving.operations.OpsService` (503 when the operations database is down).
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from vfr.serving.deps import Admin, EngineDep, Member, Models, Ops, SettingsDep
from vfr.serving.docs import error_responses
from vfr.serving.errors import hide_paths
from vfr.serving.operations import OPSDB_DOWN
from vfr.serving.schemas import (
    ChampionChange,
    ModelInfo,
    RetrainingRun,
    RetrainingStarted,
    RetrainingStatus,
    RetrainingTrigger,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/ml", tags=["retraining"])
# Each route lists the statuses it answers besides 400/401/403/413/422/429/500 (``honest_openapi``).
_OPSDB_DOWN = ("The operations database (runs and locks) is unreachable (`Retry-After: 5`).", OPSDB_DOWN,
               "store_unavailable")
_OPSDB_OR_REGISTRY_DOWN = ("The operations database is unreachable (`store_unavailable`, `Retry-After: 5`), or the "
                           "model registry's database is (`ml_unavailable`).", OPSDB_DOWN, "store_unavailable")
STATUS_ERRORS = error_responses({503: _OPSDB_DOWN})
TRIGGER_ERRORS = error_responses({
    409: ("Another retraining run holds the lock (started by the scheduler or another trigger).",
          "a retraining run is already in progress; see /api/ml/retraining/status"),
    503: _OPSDB_DOWN,
})
ROLLBACK_ERRORS = error_responses({
    404: ("The served model is not registered.", "no registered model named 'vfr-lgbm-direction'"),
    409: ("There is no earlier version to roll back to.",
          "model 'vfr-lgbm-direction' has no earlier version to roll back to"),
    503: _OPSDB_OR_REGISTRY_DOWN,
})
INFO_ERRORS = error_responses({
    404: ("The served model has no champion yet.", "model 'vfr-lgbm-direction' has no champion yet; run `vfr train`"),
    409: ("The champion's artifact cannot be loaded (corrupt, altered or missing).",
          "the champion v3 of 'vfr-lgbm-direction' cannot be loaded (model 'vfr-lgbm-direction' v3: artifact "
          "unreadable); promote a working version or roll back"),
    503: _OPSDB_OR_REGISTRY_DOWN,
})


@router.get("/retraining/status", response_model=RetrainingStatus, responses=STATUS_ERRORS)
def status(ops: Ops, models: Models, settings: SettingsDep, caller: Member) -> dict:
    """Recent retraining runs with their decisions, whether one is running, and the schedule."""
    from vfr.retraining import next_runs

    name = settings.model_name
    ops.reap_retraining()  # a worker that died holding the lock: its run is marked failed first
    # the lease before the runs: a run's row is written before its lease is taken, so a lease seen
    # here always has its run in the list read after it
    running = ops.retraining_running()
    lease_owner = ops.retraining_holder() if running else None
    runs = ops.runs(name, limit=20)
    try:
        champion = models.champion(name)
    except Exception:  # noqa: BLE001 - registry unreachable or empty
        champion = None
    return {"model": name, "champion": champion, "running": running, "lease_owner": lease_owner, "runs": runs,
            "schedule": next_runs(settings)}


@router.post("/retraining/trigger", response_model=RetrainingStarted, status_code=202,
             responses=TRIGGER_ERRORS | {200: {"model": RetrainingStarted,
                                                "description": "wait=true: how the run ended."}})
def trigger(req: RetrainingTrigger, engine: EngineDep, caller: Admin):
    """Start a retraining run in a worker process (admin): 202 at once with the worker's pid, or
    the decision with ``wait=true`` (the worker still trains; this request waits for it).

    409 when another run holds the lock. A worker that dies is reported as a failed run.
    """
    ops, settings = engine.ops, engine.settings
    ops.reap_retraining()
    if ops.retraining_running():
        raise HTTPException(409, "a retraining run is already in progress; see /api/ml/retraining/status")
    job = engine.retraining.start(rebuild_features=req.rebuild_features)
    if not req.wait:
        return {"status": "started", "worker_pid": job.pid}
    job.wait()
    result = job.result or {}
    decision = result.get("decision")
    if decision is None:  # failed and recorded so, or the worker died (its run reaped as failed)
        run = ops.runs(settings.model_name, limit=1)
        body = RetrainingStarted(status="failed", worker_pid=job.pid,
                                 run=RetrainingRun.model_validate(run[0]) if run else None)
        return JSONResponse(body.model_dump(mode="json"), status_code=200)
    if decision["status"] == "busy":
        raise HTTPException(409, decision["reason"])
    run = ops.runs(settings.model_name, limit=1)
    body = RetrainingStarted(status=decision["status"], worker_pid=job.pid,
                             run=RetrainingRun.model_validate(run[0]) if run else None,
                             decision=hide_paths(decision))  # report paths stay on the server
    return JSONResponse(body.model_dump(mode="json"), status_code=200)


@router.post("/retraining/rollback", response_model=ChampionChange, responses=ROLLBACK_ERRORS)
def rollback(ops: Ops, models: Models, settings: SettingsDep, caller: Admin) -> dict:
    """Give the champion alias back to the previous champion (admin); recorded as a run."""
    name = settings.model_name
    change = models.rollback(name)
    ops.record_rollback(name, change, caller.user)
    return change


@router.get("/model/info", response_model=ModelInfo, responses=INFO_ERRORS)
def model_info(ops: Ops, models: Models, settings: SettingsDep, caller: Member) -> dict:
    """The champion: training window, data fingerprint, features, metrics, lineage, routing, last retraining.

    409 when the champion's artifact cannot be loaded; 503 when the operations database is down.
    """
    name = settings.model_name
    info = models.info(name)
    model = info["model"]
    meta = model.metadata
    lineage_file = model.file("lineage.json")
    last = ops.runs(name, limit=1)
    return {"name": name, "version": info["version"], "created": info["created"], "algorithm": meta.get("algorithm"),
            "horizon": meta.get("horizon"), "label_definition": meta.get("label_definition"),
            "training_window": [str(d) for d in meta.get("training_window", [])],
            "data_fingerprint": meta.get("data_fingerprint", ""), "feature_columns": model.feature_columns,
            "metrics": info["metrics"], "traffic_split": info["traffic_split"], "challenger": info["challenger"],
            "lineage": json.loads(lineage_file.read_text()) if lineage_file else None,
            "has_drift_reference": model.file("drift_reference.parquet") is not None,
            "last_retraining": last[0] if last else None}
