"""``/api/ml``: predictions, the model registry, A/B traffic and ML health (bearer token)."""

from __future__ import annotations

from typing import Annotated

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
from vfr.serving.docs import error_responses
from vfr.serving.models import REGISTRY_DOWN, parse_models
from vfr.serving.schemas import (
    ChampionChange,
    MLHealth,
    ModelSummary,
    PredictRequest,
    PredictResponse,
    PromoteRequest,
    TrafficRequest,
)

router = APIRouter(prefix="/api/ml", tags=["ml"])
# Each route lists the statuses it answers besides 400/401/403/413/422/429/500 (``honest_openapi``).
_UNKNOWN_MODEL = ("No registered model of that name.", "no registered model named 'vfr-other'")
#: 503 of the routes that read or change the model registry.
REGISTRY_DOWN_DOC = ("The model registry's database is unreachable (`ml_unavailable`); try again later.",
                     REGISTRY_DOWN, "ml_unavailable")
LIST_ERRORS = error_responses({503: REGISTRY_DOWN_DOC})
PREDICT_ERRORS = error_responses({
    404: ("None of the symbols has features on the date (or the store has none), or no version of the model "
          "predicts the horizon.", "no features on 2019-07-08 for ['XYZ']"),
    503: ("The market store is unreachable (`store_unavailable`, `Retry-After: 5`), or no model could answer "
          "(`ml_unavailable` with the reason: registry down, artifacts unreadable, timeout).",
          "model 'vfr-lgbm-direction' has no champion version", "ml_unavailable"),
})
MODEL_ERRORS = error_responses({404: _UNKNOWN_MODEL, 503: REGISTRY_DOWN_DOC})
PROMOTE_ERRORS = error_responses({
    404: ("No registered model of that name, or it has no such version.",
          "model 'vfr-lgbm-direction' has no version 9"),
    409: ("The version is already the champion, or its artifact cannot be loaded (it is not promoted).",
          "version 3 is already the champion of 'vfr-lgbm-direction'"),
    503: REGISTRY_DOWN_DOC,
})
ROLLBACK_ERRORS = error_responses({
    404: _UNKNOWN_MODEL,
    409: ("There is no earlier version to roll back to.",
          "model 'vfr-lgbm-direction' has no earlier version to roll back to"),
    503: REGISTRY_DOWN_DOC,
})
TRAFFIC_ERRORS = error_responses({
    404: ("No registered model of that name, or it has no such version.",
          "model 'vfr-lgbm-direction' has no version 9"),
    409: ("The version is the champion (it takes the traffic the challenger does not).",
          "the champion takes the traffic the challenger does not; pick a challenger version"),
    503: REGISTRY_DOWN_DOC,
})
ModelName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$",
                                description="Registered model name (`VFR_MODEL_NAME` for the served one).",
                                examples=["vfr-lgbm-direction"])]


@router.post("/predict", response_model=PredictResponse, responses=PREDICT_ERRORS)
def predict(req: PredictRequest, ranking: Ranking, settings: SettingsDep, caller: Member, rid: RequestId) -> dict:
    """Model probabilities for symbols (404 when no version predicts the horizon, 503 with the
    reason when no model can answer)."""
    return ranking.predict(symbols=req.symbols, date=req.date, horizon=req.ml_horizon,
                           ml_models=parse_models(req.ml_models, settings.model_name), request_id=rid)


@router.get("/models", response_model=list[ModelSummary], responses=LIST_ERRORS)
def models(service: Models, caller: Member) -> list[dict]:
    """Registered models with their versions, champion and challenger traffic split."""
    return service.summaries()


@router.get("/models/{name}", response_model=ModelSummary, responses=MODEL_ERRORS)
def model(name: ModelName, service: Models, caller: Member) -> dict:
    """One registered model."""
    return service.summary(name)


@router.post("/models/{name}/promote", response_model=ChampionChange, responses=PROMOTE_ERRORS)
def promote(name: ModelName, req: PromoteRequest, service: Models, caller: Admin) -> dict:
    """Make a version the champion (admin). The previous champion is remembered for rollback.

    409 when the version is already the champion or its artifact cannot be loaded (corrupt).
    """
    return service.promote(name, req.version)


@router.post("/models/{name}/rollback", response_model=ChampionChange, responses=ROLLBACK_ERRORS)
def rollback(name: ModelName, service: Models, caller: Admin) -> dict:
    """Give the champion alias back to the previous champion (admin)."""
    return service.rollback(name)


@router.post("/models/{name}/traffic", response_model=ModelSummary, responses=TRAFFIC_ERRORS)
def traffic(name: ModelName, req: TrafficRequest, service: Models, caller: Admin) -> dict:
    """Route a share of requests to a challenger version (admin); stored as a version tag."""
    return service.set_traffic(name, req.version, req.share)


@router.get("/health", response_model=MLHealth)
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
