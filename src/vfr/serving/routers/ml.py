"""``/api/ml``: predictions, the model registry, A/B traffic and ML health (bearer token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from vfr.serving.deps import (
    Admin,
    EngineDep,
    Member,
    Models,
    Ranking,
    RequestId,
    SettingsDep,
)
from vfr.serving.models import parse_models
from vfr.serving.schemas import (
    ChampionChange,
    ErrorBody,
    MLHealth,
    ModelSummary,
    PredictRequest,
    PredictResponse,
    PromoteRequest,
    TrafficRequest,
)

router = APIRouter(prefix="/api/ml", tags=["ml"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                                            404: {"model": ErrorBody}, 409: {"model": ErrorBody},
                                            413: {"model": ErrorBody}, 422: {"model": ErrorBody},
                                            429: {"model": ErrorBody}, 503: {"model": ErrorBody}}
ModelName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")]


@router.post("/predict", response_model=PredictResponse, responses=ERRORS)
def predict(req: PredictRequest, ranking: Ranking, settings: SettingsDep, caller: Member, rid: RequestId) -> dict:
    """Model probabilities for symbols (404 when no version predicts the horizon, 503 with the
    reason when no model can answer)."""
    return ranking.predict(symbols=req.symbols, date=req.date, horizon=req.ml_horizon,
                           ml_models=parse_models(req.ml_models, settings.model_name), request_id=rid)


@router.get("/models", response_model=list[ModelSummary], responses=ERRORS)
def models(service: Models, caller: Member) -> list[dict]:
    """Registered models with their versions, champion and challenger traffic split."""
    return service.summaries()


@router.get("/models/{name}", response_model=ModelSummary, responses=ERRORS)
def model(name: ModelName, service: Models, caller: Member) -> dict:
    """One registered model."""
    return service.summary(name)


@router.post("/models/{name}/promote", response_model=ChampionChange, responses=ERRORS)
def promote(name: ModelName, req: PromoteRequest, service: Models, caller: Admin) -> dict:
    """Make a version the champion (admin). The previous champion is remembered for rollback.

    409 when the version is already the champion or its artifact cannot be loaded (corrupt).
    """
    return service.promote(name, req.version)


@router.post("/models/{name}/rollback", response_model=ChampionChange, responses=ERRORS)
def rollback(name: ModelName, service: Models, caller: Admin) -> dict:
    """Give the champion alias back to the previous champion (admin)."""
    return service.rollback(name)


@router.post("/models/{name}/traffic", response_model=ModelSummary, responses=ERRORS)
def traffic(name: ModelName, req: TrafficRequest, service: Models, caller: Admin) -> dict:
    """Route a share of requests to a challenger version (admin); stored as a version tag."""
    return service.set_traffic(name, req.version, req.share)


@router.get("/health", response_model=MLHealth, responses=ERRORS)
def ml_health(engine: EngineDep, caller: Member) -> dict:
    """Champion, loaded models, latency percentiles per route, caches and the prediction log."""
    name = engine.settings.model_name
    try:
        champion = engine.models.champion(name)
    except Exception:  # noqa: BLE001 - registry unreachable
        champion = None
    log = engine.ops.log_stats()
    ok = champion is not None and log["last_error"] is None
    return {"status": "ok" if ok else "degraded", "model": name, "champion": champion,
            "loaded_models": engine.models.loaded(), "latency": engine.latency.summary(),
            "cache": engine.cache.stats(), "prediction_log": log}
