"""``/api/health``: liveness and readiness (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vfr.serving.deps import Features, Ops
from vfr.serving.errors import NotFound, StoreUnavailable
from vfr.serving.schemas import Health

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(features: Features, ops: Ops):
    """``ok`` when the market store answers (``store: empty`` before anything was ingested); 503
    ``degraded`` when it is unreachable. Cache backend as it is now (``redis``, ``memory`` or
    ``memory (redis down)``: Redis is pinged, within 0.1 s, unless its breaker is open; an outage
    keeps the status 200 since the API serves from memory) and the prediction-log state."""
    try:
        features.ping()
        store = "ok"
    except StoreUnavailable:
        store = "unreachable"
    except NotFound:  # no store file yet (nothing ingested): alive, nothing to serve
        store = "empty"
    body = {"status": "ok" if store != "unreachable" else "degraded", "store": store,
            "cache": features.cache.check(), "prediction_log": ops.log_stats()}
    return JSONResponse(body, status_code=200 if store != "unreachable" else 503)
