"""``/api/health``: liveness and readiness (no token needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vfr.serving.deps import Features, Ops
from vfr.serving.errors import NotFound, StoreUnavailable
from vfr.serving.schemas import Health

router = APIRouter(prefix="/api", tags=["health"])


#: The 503 answer: the same body as the 200 one, with ``status: degraded``.
DEGRADED: dict[int | str, dict[str, Any]] = {503: {
    "model": Health, "description": "`degraded`: the market store is unreachable.",
    "content": {"application/json": {"example": {
        "status": "degraded", "store": "unreachable", "cache": "memory",
        "prediction_log": {"pending": 0, "written": 1520, "failed_flushes": 0, "last_error": None}}}}}}


@router.get("/health", response_model=Health, responses=DEGRADED)
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
