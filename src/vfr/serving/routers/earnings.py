"""``/api/earnings``: the early-signal model's batch answer for a date (open, rate limited)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query

from vfr.serving.deps import AnyCaller, Earnings, Features, RequestId
from vfr.serving.docs import error_responses
from vfr.serving.schemas import EarlySignalResponse

router = APIRouter(prefix="/api/earnings", tags=["earnings"])
#: Besides 401/413/422/429/500 (every open route with parameters, see ``honest_openapi``).
ERRORS = error_responses({
    404: ("No features on the date (or none in the store yet).",
          "no features on 2019-07-06 (latest available: 2019-12-31)"),
    503: ("The market store is unreachable (`Retry-After: 5`).",
          "the market store is not reachable; try again later", "store_unavailable"),
})


@router.get("/signals", response_model=EarlySignalResponse, responses=ERRORS)
def signals(
    earnings: Earnings, features: Features, caller: AnyCaller, rid: RequestId,
    within_days: Annotated[int, Query(ge=1, le=120, examples=[14],
                                      description="Reports expected within this many calendar days (1-120).")] = 14,
    date: Annotated[dt.date | None, Query(
        description="Feature date, ISO 8601 `YYYY-MM-DD` between 1990-01-01 and today (default: the latest date "
                    "with features).", examples=["2019-07-08"])] = None,
) -> dict:
    """Early signal of every universe member whose next report is expected within ``within_days`` of the
    date (default: the latest feature date), highest probability first."""
    day = features.day(date)
    rows = earnings.upcoming(pd.Timestamp(day), within_days, rid)
    return {"date": day.date(), "within_days": within_days, "count": len(rows), "results": rows}
