"""``/api/admin``: data sources and the outcomes job (admin tier)."""

from __future__ import annotations

from fastapi import APIRouter

from vfr.serving.deps import Admin, Ops
from vfr.serving.docs import error_responses
from vfr.serving.operations import OPSDB_DOWN
from vfr.serving.schemas import DataSources, OutcomesRun

router = APIRouter(prefix="/api/admin", tags=["admin"])
# Besides 401/403/413/429/500 (every admin route, see ``honest_openapi``).
_NO_STORE = ("Nothing has been ingested yet: there is no market store to read.",
             "the store market.duckdb does not exist yet; run `vfr data ingest` first")
SOURCES_ERRORS = error_responses({
    404: _NO_STORE,
    503: ("The market store is unreachable (`Retry-After: 5`).",
          "the market store is not reachable; try again later", "store_unavailable"),
})
OUTCOMES_ERRORS = error_responses({
    404: _NO_STORE,
    503: ("The operations database or the market store is unreachable (`Retry-After: 5`).", OPSDB_DOWN,
          "store_unavailable"),
})


@router.get("/data-sources", response_model=DataSources, responses=SOURCES_ERRORS)
def data_sources(ops: Ops, caller: Admin) -> dict:
    """Row counts and latest date per table of the market store, cache statistics, prediction log."""
    return ops.data_sources()


@router.post("/outcomes", response_model=OutcomesRun, responses=OUTCOMES_ERRORS)
def outcomes(ops: Ops, caller: Admin) -> dict:
    """Fill ``ml_outcomes`` for logged predictions whose horizon has passed (503 when a database is down)."""
    return {"written": ops.fill_outcomes()}
