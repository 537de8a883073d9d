"""The ops dashboard: ``GET /dashboard`` (one HTML page) and ``GET /api/dashboard/summary`` (its data).

Auth
----
``/dashboard`` is a static page without any data, open to everyone (it is not in the OpenAPI
schema). It reads a bearer token from the URL fragment (``/dashboard#token=<JWT>``; the fragment
never reaches the server or its logs), keeps it in the tab's ``sessionStorage``, removes it from
the address bar and sends it as ``Authorization: Bearer`` to the summary; without a token the
page asks for one.

``/api/dashboard/summary`` needs a member token (``free``, ``pro`` or ``admin``), like
``/api/ml/models`` and ``/api/ml/health`` whose data it includes, and counts against the caller's
rate limit. Without a configured JWT key no token verifies, so the summary answers 401 (the same
as every ``/api/ml`` route): an unconfigured deployment does not expose the model registry.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from vfr.serving.dashboard import build_summary
from vfr.serving.deps import EngineDep, Member, RequestId
from vfr.serving.schemas import DashboardSummary

router = APIRouter(tags=["dashboard"])
#: Headers of the page: it loads nothing from elsewhere (inline CSS and JS only) and may not be framed.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                           "script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
                                           "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def page_html() -> str:
    """The dashboard page (``vfr/serving/static/dashboard.html``; a few kB, read per request)."""
    return (resources.files("vfr.serving") / "static" / "dashboard.html").read_text(encoding="utf-8")


@router.get("/dashboard", include_in_schema=False)
async def dashboard() -> HTMLResponse:
    """The ops dashboard page (no data in it; see the module docstring for its token)."""
    return HTMLResponse(page_html(), headers=PAGE_HEADERS)


@router.get("/api/dashboard/summary", response_model=DashboardSummary)
def summary(engine: EngineDep, caller: Member, rid: RequestId,
            top: Annotated[int, Query(ge=1, le=100, description="Picks shown from today's selection (1-100).",
                                      examples=[10])] = 10) -> dict:
    """Today's top picks (classic score, ML probability, ML-enhanced composite), the model
    leaderboard and champion, the latest drift report, the latest backtest's equity curves and
    recent alerts; a section without data says why in its ``message`` (member token). A section
    whose source is down (store, registry, operations database) says so in its ``message``, so
    the summary answers 200 rather than 503."""
    return build_summary(engine, top=top, request_id=rid)
