"""``/api/ml/retraining`` and ``/api/ml/model/info``: the retraining loop over HTTP.

Status and model info need a member token; trigger and rollback are admin-only. A triggered
run takes the same database lock as the scheduler's jobs, so an API trigger during a
scheduled run answers 409 instead of training twice.
"""

from __future__ import annotations

import json
import logging
import threading

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from vfr.errors import StageError
from vfr.serving.deps import Admin, EngineDep, Member
from vfr.serving.schemas import (
    ChampionChange,
    ErrorBody,
    ModelInfo,
    RetrainingStarted,
    RetrainingStatus,
    RetrainingTrigger,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/ml", tags=["retraining"])
ERRORS = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
          409: {"model": ErrorBody}, 429: {"model": ErrorBody}, 503: {"model": ErrorBody}}


@router.get("/retraining/status", response_model=RetrainingStatus, responses=ERRORS)
def status(engine: EngineDep, caller: Member) -> dict:
    """Recent retraining runs with their decisions, whether one is running, and the schedule."""
    from vfr.retraining import next_runs, recent_runs
    from vfr.retraining.runs import is_running, run_rows

    name = engine.settings.model_name
    db = engine.predlog.engine
    runs = recent_runs(db, limit=20, model_name=name)
    try:
        champion = engine.champion(name)
    except Exception:  # noqa: BLE001 - registry unreachable or empty
        champion = None
    return {"model": name, "champion": champion, "running": is_running(db), "runs": run_rows(runs),
            "schedule": next_runs(engine.settings)}


@router.post("/retraining/trigger", response_model=RetrainingStarted, status_code=202, responses=ERRORS)
def trigger(req: RetrainingTrigger, engine: EngineDep, caller: Admin):
    """Start a retraining run (admin): 202 at once, or the decision with ``wait=true``.

    409 when another run holds the lock.
    """
    from vfr.retraining import recent_runs, run_retraining
    from vfr.retraining.runs import is_running, run_rows

    settings, db = engine.settings, engine.predlog.engine
    if is_running(db):
        raise HTTPException(409, "a retraining run is already in progress; see /api/ml/retraining/status")

    def job():
        try:
            return run_retraining(settings, trigger="api", rebuild_features=req.rebuild_features)
        finally:
            engine.invalidate_models(settings.model_name)

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
        run = run_rows(recent_runs(db, limit=1, model_name=settings.model_name))
        body = RetrainingStarted(status="failed", run=run[0] if run else None)
        return JSONResponse(body.model_dump(mode="json"), status_code=200)
    if decision.status == "busy":
        raise HTTPException(409, decision.reason)
    run = run_rows(recent_runs(db, limit=1, model_name=settings.model_name))
    body = RetrainingStarted(status=decision.status, run=run[0] if run else None,
                             decision=decision.to_dict())
    return JSONResponse(body.model_dump(mode="json"), status_code=200)


@router.post("/retraining/rollback", response_model=ChampionChange, responses=ERRORS)
def rollback(engine: EngineDep, caller: Admin) -> dict:
    """Give the champion alias back to the previous champion (admin); recorded as a run."""
    from vfr.retraining import runs

    name = engine.settings.model_name
    change = engine.rollback(name)
    db = engine.predlog.engine
    run_id = runs.start_run(db, trigger="api", model_name=name, champion_before=change["previous"])
    runs.finish_run(db, run_id, status="rollback", action="rollback", champion_after=change["champion"],
                    reason=f"rolled back from v{change['previous']} to v{change['champion']} by {caller.user}")
    return change


@router.get("/model/info", response_model=ModelInfo, responses=ERRORS)
def model_info(engine: EngineDep, caller: Member) -> dict:
    """The champion: training window, data fingerprint, features, metrics, lineage, routing, last retraining."""
    from vfr.retraining import recent_runs
    from vfr.retraining.runs import run_rows

    name = engine.settings.model_name
    version = engine.champion(name)
    if version is None:
        raise HTTPException(404, f"model {name!r} has no champion yet; run `vfr train`")
    model = engine.load_model(name, version)
    meta = model.metadata
    lineage_file = model.file("lineage.json")
    metrics = {k.removeprefix("wf.model."): float(v) for k, v in engine.registry.run_metrics(name, version).items()
               if k.startswith("wf.model.")}
    challenger, share = engine.routing(name)
    created = next((str(v["created"]) for v in engine.versions(name) if v["version"] == version), None)
    last = run_rows(recent_runs(engine.predlog.engine, limit=1, model_name=name))
    return {"name": name, "version": str(version), "created": created, "algorithm": meta.get("algorithm"),
            "horizon": meta.get("horizon"), "label_definition": meta.get("label_definition"),
            "training_window": [str(d) for d in meta.get("training_window", [])],
            "data_fingerprint": meta.get("data_fingerprint", ""), "feature_columns": model.feature_columns,
            "metrics": metrics, "traffic_split": share, "challenger": challenger,
            "lineage": json.loads(lineage_file.read_text()) if lineage_file else None,
            "has_drift_reference": model.file("drift_reference.parquet") is not None,
            "last_retraining": last[0] if last else None}
