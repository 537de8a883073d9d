"""``/api/earnings``: the early-signal model's batch answer for a date (open, rate limited)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query

from vfr.serving.deps import AnyCaller, Earnings, Features, RequestId
from vfr.serving.schemas import EarlySignalResponse, ErrorBody

router = APIRouter(prefix="/api/earnings", tags=["earnings"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody},
                                            429: {"model": ErrorBody}, 503: {"model": ErrorBody}}


@router.get("/signals", response_model=EarlySignalResponse, responses=ERRORS)
def signals(
    earnings: Earnings, features: Features, caller: AnyCaller, rid: RequestId,
    within_days: Annotated[int, Query(ge=1, le=120,
                                      description="Reports expected within this many calendar days.")] = 14,
    date: dt.date | None = None,
) -> dict:
    """Early signal of every universe member whose next report is expected within ``within_days`` of the
    date (default: the latest feature date), highest probability first."""
    day = features.day(date)
    rows = earnings.upcoming(pd.Timestamp(day), within_days, rid)
    return {"date": day.date(), "within_days": within_days, "count": len(rows), "results": rows}
