"""``/api/admin``: data sources and the outcomes job (admin tier)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from vfr.serving.deps import Admin, Ops
from vfr.serving.schemas import DataSources, ErrorBody, OutcomesRun

router = APIRouter(prefix="/api/admin", tags=["admin"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                                            429: {"model": ErrorBody}, 503: {"model": ErrorBody}}


@router.get("/data-sources", response_model=DataSources, responses=ERRORS)
def data_sources(ops: Ops, caller: Admin) -> dict:
    """Row counts and latest date per table of the market store, cache statistics, prediction log."""
    return ops.data_sources()


@router.post("/outcomes", response_model=OutcomesRun, responses=ERRORS)
def outcomes(ops: Ops, caller: Admin) -> dict:
    """Fill ``ml_outcomes`` for logged predictions whose horizon has passed (503 when a database is down)."""
    return {"written": ops.fill_outcomes()}
