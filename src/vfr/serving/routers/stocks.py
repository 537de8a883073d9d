"""``/api/stocks``: selection and analysis (open to anonymous callers, rate limited)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from vfr.serving.deps import AnyCaller, Earnings, Ranking, RequestId
from vfr.serving.earnings import EarningsService
from vfr.serving.models import parse_models
from vfr.serving.ranking import RankingService
from vfr.serving.schemas import (
    MAX_ANALYZE_SYMBOLS,
    AnalyzeResponse,
    ErrorBody,
    SelectRequest,
    SelectResponse,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/stocks", tags=["stocks"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody},
                                            429: {"model": ErrorBody}, 503: {"model": ErrorBody}}


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [p.strip() for p in value.split(",") if p.strip()]


def _build(model, where: str, **values):
    try:
        return model(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": (where, *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from None


def _select(ranking: RankingService, req: SelectRequest, rid: str):
    out = ranking.rank(date=req.date, include_ml=req.include_ml,
                       ml_models=parse_models(req.ml_models, ranking.settings.model_name), horizon=req.ml_horizon,
                       threshold=req.ml_confidence_threshold, top=req.top, sector=req.sector, symbols=req.symbols,
                       request_id=rid)
    cached = out.get("_results_json")
    if cached is None:
        return out
    # whole-universe rankings are cached with their serialised rows: splice them in (same schema)
    head = json.dumps({k: out[k] for k in ("date", "count", "ml", "unknown_symbols")}, separators=(",", ":"))
    return Response(content=f'{head[:-1]},"results":{cached}}}', media_type="application/json")


@router.get("/select", response_model=SelectResponse, responses=ERRORS)
def select_get(
    ranking: Ranking, caller: AnyCaller, rid: RequestId,
    symbols: Annotated[str | None, Query(description="Comma-separated symbols (default: whole universe).",
                                         max_length=6000)] = None,
    sector: Annotated[str | None, Query(max_length=64)] = None,
    include_ml: bool = False,
    ml_models: Annotated[str | None, Query(description="Comma-separated names or versions.", max_length=700)] = None,
    ml_horizon: Annotated[str, Query(description="1d, 1w or 1m.")] = "1w",
    ml_confidence_threshold: Annotated[float, Query(ge=0, le=1)] = 0.5,
    top: Annotated[int | None, Query(ge=1, le=1000)] = None,
    date: dt.date | None = None,
) -> Response | dict:
    """Rank the universe, a sector or a list of symbols on a date (default: the latest)."""
    req = _build(SelectRequest, "query", symbols=_split(symbols), sector=sector, include_ml=include_ml,
                 ml_models=_split(ml_models), ml_horizon=ml_horizon, ml_confidence_threshold=ml_confidence_threshold,
                 top=top, date=date)
    return _select(ranking, req, rid)


@router.post("/select", response_model=SelectResponse, responses=ERRORS)
def select_post(req: SelectRequest, ranking: Ranking, caller: AnyCaller, rid: RequestId) -> Response | dict:
    """Same as GET with a JSON body (for long symbol lists)."""
    return _select(ranking, req, rid)


@router.get("/analyze", response_model=AnalyzeResponse, responses=ERRORS)
def analyze(
    ranking: Ranking, earnings: Earnings, caller: AnyCaller, rid: RequestId,
    symbols: Annotated[str, Query(description=f"Comma-separated symbols (at most {MAX_ANALYZE_SYMBOLS}).",
                                  max_length=600)],
    ml_models: Annotated[str | None, Query(max_length=700)] = None,
    ml_horizon: str = "1w",
    ml_confidence_threshold: Annotated[float, Query(ge=0, le=1)] = 0.5,
    date: dt.date | None = None,
) -> dict:
    """Factor scores, ML prediction (probability, confidence, model version, top feature
    contributions), composite, recommendation and the early-signal earnings block of each symbol."""
    req = _build(SelectRequest, "query", symbols=_split(symbols), ml_models=_split(ml_models), ml_horizon=ml_horizon,
                 ml_confidence_threshold=ml_confidence_threshold, date=date)
    if not req.symbols:
        raise RequestValidationError([{"type": "missing", "loc": ("query", "symbols"),
                                       "msg": "at least one symbol is required", "input": symbols}])
    if len(req.symbols) > MAX_ANALYZE_SYMBOLS:
        raise RequestValidationError([{"type": "too_long", "loc": ("query", "symbols"),
                                       "msg": f"at most {MAX_ANALYZE_SYMBOLS} symbols", "input": None}])
    out = ranking.analyze(symbols=req.symbols, date=req.date, horizon=req.ml_horizon,
                          ml_models=parse_models(req.ml_models, ranking.settings.model_name),
                          threshold=req.ml_confidence_threshold, request_id=rid)
    signals = early_signals(earnings, out["date"], rid)
    for row in out["results"]:
        row["early_signal"] = signals.get(row["symbol"])
    return out


def early_signals(earnings: EarningsService, day: Any, rid: str) -> dict[str, dict[str, Any]]:
    """The early-signal blocks of a date; an empty dict (blocks null) when they cannot be computed,
    so the classic and ML answer never fails because of it."""
    import pandas as pd

    try:
        return earnings.for_date(pd.Timestamp(day), rid)
    except Exception:  # noqa: BLE001 - logged; the analysis is still answered
        log.exception("early signal unavailable for %s", day)
        return {}
