"""Pydantic schemas of every request and response body."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

#: Ticker: upper-case letter, then up to 9 of upper-case letters, digits, ``.`` or ``-``.
SYMBOL_PATTERN = r"^[A-Z][A-Z0-9.\-]{0,9}$"
#: Model reference: ``name``, ``name:version`` or ``version``.
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}(:[0-9]{1,9})?$"
MAX_SELECT_SYMBOLS = 600
MAX_ANALYZE_SYMBOLS = 50
MAX_MODELS = 5
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
ModelRef = Annotated[str, StringConstraints(pattern=MODEL_PATTERN)]
Horizon = Literal["1d", "1w", "1m", "1h", "4h"]
INTRADAY = ("1h", "4h")
EARLIEST = dt.date(1990, 1, 1)


def check_date(value: dt.date | None) -> dt.date | None:
    """Dates must lie between 1990-01-01 and today."""
    if value is not None and not (EARLIEST <= value <= dt.date.today()):
        raise ValueError(f"date must be between {EARLIEST} and today")
    return value


def check_horizon(value: str) -> str:
    if value in INTRADAY:
        raise ValueError(f"horizon {value} needs intraday data, which is not configured; use 1d, 1w or 1m")
    return value


class SelectRequest(BaseModel):
    """Rank the whole universe, one sector, or a list of symbols."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[Symbol] | None = Field(default=None, max_length=MAX_SELECT_SYMBOLS,
                                         description="Rank only these symbols.")
    sector: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z &,.\-]{0,63}$")] | None = Field(
        default=None, description="Rank only this sector (e.g. 'Information Technology').")
    include_ml: bool = Field(default=False, description="Blend the ML prediction into the composite.")
    ml_models: list[ModelRef] | None = Field(default=None, max_length=MAX_MODELS,
                                             description="Registered names or versions (default: the champion).")
    ml_horizon: Horizon = Field(default="1w", description="1d, 1w or 1m (1h/4h need intraday data).")
    ml_confidence_threshold: float = Field(default=0.5, ge=0, le=1,
                                           description="ML is blended only where its confidence reaches this.")
    top: int | None = Field(default=None, ge=1, le=1000, description="Keep the best N rows.")
    date: dt.date | None = Field(default=None, description="Scoring date (default: the latest).")

    _h = field_validator("ml_horizon")(check_horizon)
    _d = field_validator("date")(check_date)


class PredictRequest(BaseModel):
    """Raw model probabilities for symbols."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[Symbol] = Field(min_length=1, max_length=MAX_SELECT_SYMBOLS)
    ml_models: list[ModelRef] | None = Field(default=None, max_length=MAX_MODELS)
    ml_horizon: Horizon = "1w"
    date: dt.date | None = None

    _h = field_validator("ml_horizon")(check_horizon)
    _d = field_validator("date")(check_date)


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")]


class TrafficRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")]
    share: float = Field(ge=0, le=1, description="Fraction of requests routed to this challenger version.")


class MLInfo(BaseModel):
    requested: bool
    status: str = Field(description="disabled, ok, 'ok (fallback: ...)' or 'unavailable: <reason>'")
    horizon: str | None = None
    models: list[dict[str, str]] = []
    fallback: list[str] = []
    route: str | None = None
    confidence_threshold: float | None = None
    latency_ms: float | None = None


class SelectRow(BaseModel):
    rank: int
    symbol: str
    sector: str | None
    factor_scores: dict[str, float | None]
    classic_score: float | None
    ml_probability: float | None = None
    ml_confidence: float | None = None
    ml_score: float | None = None
    ml_blended: bool | None = None
    composite: float | None
    recommendation: str | None


class SelectResponse(BaseModel):
    date: dt.date
    count: int
    ml: MLInfo
    unknown_symbols: list[str] = []
    results: list[SelectRow]


class Contribution(BaseModel):
    feature: str
    value: float | None
    contribution: float | None = Field(description="LightGBM pred_contrib (SHAP value, log-odds).")


class MLPrediction(BaseModel):
    probability: float | None
    predicted_class: int
    direction: str
    confidence: float | None
    ml_score: float | None
    blended: bool | None
    model_name: str | None
    model_version: str | None
    top_contributions: list[Contribution]


class Analysis(BaseModel):
    symbol: str
    sector: str | None
    universe_rank: int
    universe_size: int
    factor_scores: dict[str, float | None]
    classic_score: float | None
    ml_prediction: MLPrediction | None
    composite: float | None
    recommendation: str | None


class AnalyzeResponse(BaseModel):
    date: dt.date
    ml: MLInfo
    unknown_symbols: list[str] = []
    results: list[Analysis]


class Prediction(BaseModel):
    symbol: str
    probability: float | None
    predicted_class: int
    confidence: float | None


class PredictResponse(BaseModel):
    date: dt.date
    ml: MLInfo
    unknown_symbols: list[str] = []
    predictions: list[Prediction]


class ModelVersion(BaseModel):
    version: str
    aliases: list[str]
    created: str
    horizon: str | None = None
    traffic_split: float = 0.0


class ModelSummary(BaseModel):
    name: str
    champion: str | None
    challenger: str | None
    traffic_split: float
    versions: list[ModelVersion]


class ChampionChange(BaseModel):
    name: str
    champion: str
    previous: str | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    store: str
    cache: str
    prediction_log: dict


class MLHealth(BaseModel):
    status: Literal["ok", "degraded"]
    model: str
    champion: str | None
    loaded_models: list[dict[str, str]]
    latency: dict[str, dict[str, float]]
    cache: dict
    prediction_log: dict


class DataSource(BaseModel):
    name: str
    rows: int
    latest_date: str | None


class DataSources(BaseModel):
    sources: list[DataSource]
    prediction_log: dict
    cache: dict


class OutcomesRun(BaseModel):
    written: int


class ErrorBody(BaseModel):
    error: str
    detail: str | list[dict] | None = None
    request_id: str | None = None
