"""``/api/ml/retraining`` and ``/api/ml/model/info``: the retraining loop over HTTP.

Status and model info need a member token; trigger and rollback are admin-only. A triggered
run takes the same database lock as the scheduler's jobs, so an API trigger during a
scheduled run answers 409 instead of training twice. Runs and locks are read through
:class:`~vfr.serving.operations.OpsService` (503 when the operations database is down).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from vfr.errors import StageError
from vfr.serving.deps import Admin, Member, Models, Ops, SettingsDep
from vfr.serving.schemas import (
    ChampionChange,
    ErrorBody,
    ModelInfo,
    RetrainingRun,
    RetrainingStarted,
    RetrainingStatus,
    RetrainingTrigger,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/ml", tags=["retraining"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                                            404: {"model": ErrorBody}, 409: {"model": ErrorBody},
                                            429: {"model": ErrorBody}, 503: {"model": ErrorBody}}


@router.get("/retraining/status", response_model=RetrainingStatus, responses=ERRORS)
def status(ops: Ops, models: Models, settings: SettingsDep, caller: Member) -> dict:
    """Recent retraining runs with their decisions, whether one is running, and the schedule."""
    from vfr.retraining import next_runs

    name = settings.model_name
    runs = ops.runs(name, limit=20)
    try:
        champion = models.champion(name)
    except Exception:  # noqa: BLE001 - registry unreachable or empty
        champion = None
    return {"model": name, "champion": champion, "running": ops.retraining_running(), "runs": runs,
            "schedule": next_runs(settings)}


@router.post("/retraining/trigger", response_model=RetrainingStarted, status_code=202, responses=ERRORS)
def trigger(req: RetrainingTrigger, ops: Ops, models: Models, settings: SettingsDep, caller: Admin):
    """Start a retraining run (admin): 202 at once, or the decision with ``wait=true``.

    409 when another run holds the lock.
    """
    from vfr.retraining import run_retraining

    if ops.retraining_running():
        raise HTTPException(409, "a retraining run is already in progress; see /api/ml/retraining/status")

    def job():
        try:
            return run_retraining(settings, trigger="api", rebuild_features=req.rebuild_features)
        finally:
            models.invalidate(settings.model_name)

    def background():
        try:
            job()
        except Exception as exc:  # noqa: BLE001 - recorded as a failed run; the API keeps serving
            log.error("retraining triggered through the API failed: %s", exc)

    if not req.wait:
        threading.Thread(target=background, name="vfr-retrain", daemon=True).start()
        return {"status": "started"}
    try:
        decision = job()
    except StageError:  # recorded as a failed run with its reason: answer with that record
        run = ops.runs(settings.model_name, limit=1)
        body = RetrainingStarted(status="failed", run=RetrainingRun.model_validate(run[0]) if run else None)
        return JSONResponse(body.model_dump(mode="json"), status_code=200)
    if decision.status == "busy":
        raise HTTPException(409, decision.reason)
    run = ops.runs(settings.model_name, limit=1)
    body = RetrainingStarted(status=decision.status, run=RetrainingRun.model_validate(run[0]) if run else None,
                             decision=decision.to_dict())
    return JSONResponse(body.model_dump(mode="json"), status_code=200)


@router.post("/retraining/rollback", response_model=ChampionChange, responses=ERRORS)
def rollback(ops: Ops, models: Models, settings: SettingsDep, caller: Admin) -> dict:
    """Give the champion alias back to the previous champion (admin); recorded as a run."""
    name = settings.model_name
    change = models.rollback(name)
    ops.record_rollback(name, change, caller.user)
    return change


@router.get("/model/info", response_model=ModelInfo, responses=ERRORS)
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
