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
from vfr.serving.docs import error_responses
from vfr.serving.earnings import EarningsService
from vfr.serving.models import parse_models
from vfr.serving.ranking import RankingService
from vfr.serving.schemas import (
    MAX_ANALYZE_SYMBOLS,
    MAX_MODELS,
    MAX_SELECT_SYMBOLS,
    AnalyzeResponse,
    SelectRequest,
    SelectResponse,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/stocks", tags=["stocks"])
#: Besides 400/401/413/422/429/500 (every open route with input, see ``honest_openapi``).
ERRORS = error_responses({
    404: ("No features on the date (or none in the store yet), an unknown sector, or no universe to take "
          "sectors from.", "no features on 2019-07-06 (latest available: 2019-12-31)"),
    503: ("The market store is unreachable (`Retry-After: 5`).",
          "the market store is not reachable; try again later", "store_unavailable"),
})
ANALYZE_ERRORS = error_responses({
    404: ("No features on the date (or none in the store yet), or none for any of the symbols.",
          "no features on 2019-07-08 for ['XYZ']"),
    503: ("The market store is unreachable (`Retry-After: 5`).",
          "the market store is not reachable; try again later", "store_unavailable"),
})
SymbolsQuery = Annotated[str | None, Query(
    description=f"Comma-separated tickers (upper case, at most {MAX_SELECT_SYMBOLS}); default: the whole "
                "universe.", max_length=6000, examples=["AAPL,MSFT,JNJ"])]
SectorQuery = Annotated[str | None, Query(description="Rank only this GICS sector (404 when unknown).",
                                          max_length=64, examples=["Information Technology"])]
IncludeMlQuery = Annotated[bool, Query(description="Blend the ML prediction into the composite.",
                                       examples=[True])]
ModelsQuery = Annotated[str | None, Query(
    description=f"Comma-separated registered names, `name:version` or versions (at most {MAX_MODELS}; several "
                "are averaged). Default: the champion, with A/B routing.", max_length=700,
    examples=["vfr-lgbm-direction:3"])]
HorizonQuery = Annotated[str, Query(description="Prediction horizon: 1d, 1w or 1m (1h/4h: 422, no intraday data).",
                                    examples=["1w"])]
ThresholdQuery = Annotated[float, Query(
    ge=0, le=1, description="ML is blended into a row's composite only where its confidence (fraction, 0..1) "
                            "reaches this; 0 blends every row.", examples=[0.5])]
TopQuery = Annotated[int | None, Query(ge=1, le=1000, description="Keep the best N rows (1-1000; default all).",
                                       examples=[10])]
DateQuery = Annotated[dt.date | None, Query(
    description="Scoring date, ISO 8601 `YYYY-MM-DD` between 1990-01-01 and today (default: the latest date "
                "with features).", examples=["2019-07-08"])]


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
    symbols: SymbolsQuery = None,
    sector: SectorQuery = None,
    include_ml: IncludeMlQuery = False,
    ml_models: ModelsQuery = None,
    ml_horizon: HorizonQuery = "1w",
    ml_confidence_threshold: ThresholdQuery = 0.5,
    top: TopQuery = None,
    date: DateQuery = None,
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


@router.get("/analyze", response_model=AnalyzeResponse, responses=ANALYZE_ERRORS)
def analyze(
    ranking: Ranking, earnings: Earnings, caller: AnyCaller, rid: RequestId,
    symbols: Annotated[str, Query(description=f"Comma-separated tickers (upper case, 1-{MAX_ANALYZE_SYMBOLS}).",
                                  max_length=600, examples=["AAPL,MSFT"])],
    ml_models: Annotated[str | None, Query(
        description=f"Comma-separated registered names, `name:version` or versions (at most {MAX_MODELS}). "
                    "Default: the champion, with A/B routing.", max_length=700,
        examples=["vfr-lgbm-direction:3"])] = None,
    ml_horizon: HorizonQuery = "1w",
    ml_confidence_threshold: ThresholdQuery = 0.5,
    date: DateQuery = None,
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
