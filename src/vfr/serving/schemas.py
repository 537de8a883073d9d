"""Pydantic schemas of every request and response body.

Every field carries a ``description`` (with its unit: fractions on [0, 1] rather than percent,
milliseconds, ISO 8601 dates and times) and an example, so that ``/docs`` and ``/openapi.json``
document each one; ``tests/serving/test_openapi_docs.py`` checks that none is missing and that
each example is valid against its own schema. Nested objects take their example from their
model's field examples (:func:`example_of`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

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

#: Examples shared by several schemas (and by the error examples of :mod:`vfr.serving.docs`).
EXAMPLE_DATE = "2019-07-08"
EXAMPLE_TIME = "2019-07-08T06:30:00Z"
EXAMPLE_REQUEST_ID = "3f2b9c0e8d6a4b1f9e7c5a3d2b1f0e9c"
EXAMPLE_MODEL = "vfr-lgbm-direction"
EXAMPLE_FACTOR_SCORES = {"technical": 0.71, "fundamental": 0.64, "macro": 0.5, "sentiment": 0.58,
                         "alternative": 0.47}
EXAMPLE_USED_MODELS = [{"name": EXAMPLE_MODEL, "version": "3"}]
EXAMPLE_PREDICTION_LOG = {"pending": 0, "written": 1520, "failed_flushes": 0, "last_error": None}
EXAMPLE_CACHE = {"backend": "redis", "hits": 412, "misses": 37, "hit_ratio": 0.9176, "redis_errors": 0,
                 "memory_entries": 12}


def example_of(model: type[BaseModel]) -> dict[str, Any]:
    """An example object of ``model``: the first example of each of its fields, nulls left out
    (FastAPI drops null values inside the examples it publishes; a required field therefore has a
    non-null example)."""
    return {name: field.examples[0] for name, field in model.model_fields.items()
            if field.examples and field.examples[0] is not None}


def check_date(value: dt.date | None) -> dt.date | None:
    """Dates must lie between 1990-01-01 and today."""
    if value is not None and not (EARLIEST <= value <= dt.date.today()):
        raise ValueError(f"date must be between {EARLIEST} and today")
    return value


def check_horizon(value: str) -> str:
    if value in INTRADAY:
        raise ValueError(f"horizon {value} needs intraday data, which is not configured; use 1d, 1w or 1m")
    return value


# -- requests ----------------------------------------------------------------------------------
class SelectRequest(BaseModel):
    """Rank the whole universe, one sector, or a list of symbols."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[Symbol] | None = Field(
        default=None, max_length=MAX_SELECT_SYMBOLS,
        description=f"Rank only these tickers (upper case, at most {MAX_SELECT_SYMBOLS}); default: the whole "
                    "universe. Symbols without features on the date are listed in `unknown_symbols`.",
        examples=[["AAPL", "MSFT", "JNJ"]])
    sector: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z &,.\-]{0,63}$")] | None = Field(
        default=None, description="Rank only this GICS sector of the universe (404 when unknown).",
        examples=["Information Technology"])
    include_ml: bool = Field(default=False, description="Blend the ML prediction into the composite.",
                             examples=[True])
    ml_models: list[ModelRef] | None = Field(
        default=None, max_length=MAX_MODELS,
        description=f"Registered names, `name:version` or versions (at most {MAX_MODELS}; several are averaged). "
                    "Default: the champion, with A/B routing to the challenger.",
        examples=[[f"{EXAMPLE_MODEL}:3"]])
    ml_horizon: Horizon = Field(default="1w", description="Prediction horizon: 1d, 1w or 1m (1h/4h need intraday "
                                "data, which is not configured: 422).", examples=["1w"])
    ml_confidence_threshold: float = Field(
        default=0.5, ge=0, le=1,
        description="ML is blended into a row's composite only where its confidence (fraction, 0..1) reaches "
                    "this; 0 blends every row.", examples=[0.5])
    top: int | None = Field(default=None, ge=1, le=1000, description="Keep the best N rows (1-1000; default all).",
                            examples=[10])
    date: dt.date | None = Field(default=None, description="Scoring date, ISO 8601 `YYYY-MM-DD` between "
                                 "1990-01-01 and today (default: the latest date with features).",
                                 examples=[EXAMPLE_DATE])

    _h = field_validator("ml_horizon")(check_horizon)
    _d = field_validator("date")(check_date)


class PredictRequest(BaseModel):
    """Raw model probabilities for symbols."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[Symbol] = Field(min_length=1, max_length=MAX_SELECT_SYMBOLS,
                                  description=f"Tickers to predict (upper case, 1-{MAX_SELECT_SYMBOLS}).",
                                  examples=[["AAPL", "MSFT"]])
    ml_models: list[ModelRef] | None = Field(
        default=None, max_length=MAX_MODELS,
        description=f"Registered names, `name:version` or versions (at most {MAX_MODELS}; several are averaged). "
                    "Default: the champion, with A/B routing to the challenger.",
        examples=[[EXAMPLE_MODEL]])
    ml_horizon: Horizon = Field(default="1w", description="Prediction horizon: 1d, 1w or 1m (1h/4h: 422).",
                                examples=["1w"])
    date: dt.date | None = Field(default=None, description="Feature date, ISO 8601 `YYYY-MM-DD` between "
                                 "1990-01-01 and today (default: the latest date with features).",
                                 examples=[EXAMPLE_DATE])

    _h = field_validator("ml_horizon")(check_horizon)
    _d = field_validator("date")(check_date)


class PromoteRequest(BaseModel):
    """The version to make champion."""

    model_config = ConfigDict(extra="forbid")
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")] = Field(
        description="Registered version number (digits) to promote; it must load.", examples=["3"])


class TrafficRequest(BaseModel):
    """The challenger version and its share of the requests."""

    model_config = ConfigDict(extra="forbid")
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")] = Field(
        description="Registered version number (digits) of the challenger; not the champion.", examples=["4"])
    share: float = Field(ge=0, le=1, description="Fraction (0..1, not percent) of requests routed to this "
                         "challenger version; 0 stops the A/B test.", examples=[0.1])


# -- stocks and ML answers ------------------------------------------------------------------------
class MLInfo(BaseModel):
    """How the ML part of a request went."""

    requested: bool = Field(description="Whether the request asked for ML (`include_ml`, analyze and predict "
                            "always do).", examples=[True])
    status: str = Field(description="disabled, ok, 'ok (fallback: ...)' or 'unavailable: <reason>'",
                        examples=["ok"])
    horizon: str | None = Field(default=None, description="Horizon asked for (1d, 1w or 1m); null when ML was "
                                "not requested.", examples=["1w"])
    models: list[dict[str, str]] = Field(default=[], description="The model versions that answered, "
                                         "`{name, version}` each.", examples=[EXAMPLE_USED_MODELS])
    fallback: list[str] = Field(default=[], description="Why earlier versions were skipped (empty when the "
                                "first choice answered).", examples=[[]])
    route: str | None = Field(default=None, description="champion or challenger when the A/B split routed the "
                              "request; null when models were named explicitly.", examples=["champion"])
    confidence_threshold: float | None = Field(default=None, description="The `ml_confidence_threshold` applied "
                                               "(fraction, 0..1); null for predict.", examples=[0.5])
    latency_ms: float | None = Field(default=None, description="Wall time of the ML part, milliseconds.",
                                     examples=[12.418])


class SelectRow(BaseModel):
    """One ranked symbol."""

    rank: int = Field(description="1 = best composite among the rows of this answer's universe.", examples=[1])
    symbol: str = Field(description="Ticker.", examples=["AAPL"])
    sector: str | None = Field(description="GICS sector from the universe (null when unknown).",
                               examples=["Information Technology"])
    factor_scores: dict[str, float | None] = Field(
        description="Score of each factor group (technical, fundamental, macro, sentiment, alternative): "
                    "cross-sectional percentile on [0, 1]; null where the group has no data.",
        examples=[EXAMPLE_FACTOR_SCORES])
    classic_score: float | None = Field(description="Weighted classic factor score on [0, 1].", examples=[0.66])
    ml_probability: float | None = Field(default=None, description="Model probability (0..1) of beating the "
                                         "universe over the horizon; null without ML.", examples=[0.58])
    ml_confidence: float | None = Field(default=None, description="|2 * ml_score - 1| on [0, 1]: 1 for the "
                                        "model's most extreme calls of the date, 0 at the median.", examples=[0.62])
    ml_score: float | None = Field(default=None, description="Cross-sectional percentile rank (0..1) of the "
                                   "probability over the whole universe of the date.", examples=[0.81])
    ml_blended: bool | None = Field(default=None, description="Whether ML entered the composite (its confidence "
                                    "reached the threshold); null without ML.", examples=[True])
    composite: float | None = Field(description="Composite on [0, 1]: classic, blended with ml_score at weight "
                                    "0.15 x confidence where ML is blended.", examples=[0.672])
    recommendation: str | None = Field(description="STRONG_BUY (>= 0.8), BUY (>= 0.6), HOLD (>= 0.4), SELL "
                                       "(>= 0.2) or STRONG_SELL from the composite.", examples=["BUY"])


class SelectResponse(BaseModel):
    """A ranking of a date."""

    date: dt.date = Field(description="Scoring date, ISO 8601.", examples=[EXAMPLE_DATE])
    count: int = Field(description="Rows ranked before `top` was applied.", examples=[3])
    ml: MLInfo = Field(description="How the ML part went (status `disabled` without `include_ml`).",
                       examples=[example_of(MLInfo)])
    unknown_symbols: list[str] = Field(default=[], description="Requested symbols without features on the date.",
                                       examples=[["XYZ"]])
    results: list[SelectRow] = Field(description="Ranked rows, best first.", examples=[[example_of(SelectRow)]])


class Contribution(BaseModel):
    """One feature's share of a prediction."""

    feature: str = Field(description="Feature column name.", examples=["ret_60d"])
    value: float | None = Field(description="The feature's value on the date (its own unit; null when missing).",
                                examples=[0.084])
    contribution: float | None = Field(description="LightGBM pred_contrib (SHAP value, log-odds).",
                                       examples=[0.031])


class MLPrediction(BaseModel):
    """The model's answer for one symbol of an analysis."""

    probability: float | None = Field(description="Probability (0..1) of beating the universe over the horizon.",
                                      examples=[0.58])
    predicted_class: int = Field(description="1 when probability >= 0.5, else 0.", examples=[1])
    direction: str = Field(description="UP (class 1) or DOWN (class 0).", examples=["UP"])
    confidence: float | None = Field(description="|2 * ml_score - 1| on [0, 1].", examples=[0.62])
    ml_score: float | None = Field(description="Percentile rank (0..1) of the probability over the universe.",
                                   examples=[0.81])
    blended: bool | None = Field(description="Whether the prediction entered the composite.", examples=[True])
    model_name: str | None = Field(description="Registered model that answered.", examples=[EXAMPLE_MODEL])
    model_version: str | None = Field(description="Its version.", examples=["3"])
    top_contributions: list[Contribution] = Field(description="The 5 largest feature contributions in absolute "
                                                  "value, largest first.", examples=[[example_of(Contribution)]])


class EarlySignal(BaseModel):
    """The early-signal model's answer for one symbol: will its next EPS surprise exceed the label
    threshold (20% by default)? Scored as of the request's date, through champion -> previous
    version -> rule -> none."""

    probability: float | None = Field(
        description="Calibrated probability of a surprise above the label threshold (0..1); the rule answers "
        "0.7 or 0.3; null when no level answered.", examples=[0.62])
    predicted_class: int | None = Field(description="1 = large positive surprise expected; null when no answer.",
                                        examples=[1])
    confidence: float = Field(description="Distance of the probability from the model's decision threshold, "
                              "scaled to 0..1 (0.1 for the rule, 0 for no answer).", examples=[0.24])
    confidence_level: str = Field(description="HIGH (>= 0.5), MEDIUM (>= 0.2), LOW or NONE.", examples=["MEDIUM"])
    expected_report_date: dt.date | None = Field(
        description="Next report date, ISO 8601: from the store's earnings calendar, else estimated from past "
                    "report gaps.", examples=["2019-07-23"])
    report_date_source: str | None = Field(description="calendar or estimated.", examples=["calendar"])
    days_to_report: int | None = Field(description="Business days from the date to the expected report.",
                                       examples=[11])
    model_name: str | None = Field(description="Registered early-signal model (`VFR_EARNINGS_MODEL_NAME`); null "
                                   "for the rule or no answer.", examples=["vfr-early-signal"])
    model_version: str | None = Field(description="Version that answered (null for the rule or no answer).",
                                      examples=["2"])
    source: str = Field(description="model:v<version>, rule or none.", examples=["model:v2"])
    fallback_level: int = Field(description="0 champion, 1 previous version, 2 rule, 3 none.", examples=[0])
    fallback: str = Field(description="champion, previous, rule or none.", examples=["champion"])
    error: bool = Field(description="True when no level could answer (see reason).", examples=[False])
    reason: str = Field(description="Why earlier levels of the chain did not answer; empty for the champion.",
                        examples=[""])


class EarlySignalRow(EarlySignal):
    """The early signal of one universe member."""

    symbol: str = Field(description="Ticker.", examples=["AAPL"])


class EarlySignalResponse(BaseModel):
    """Early signals of the symbols reporting soon."""

    date: dt.date = Field(description="Feature date the signals are scored on, ISO 8601.", examples=[EXAMPLE_DATE])
    within_days: int = Field(description="Calendar-day window of expected report dates asked for.", examples=[14])
    count: int = Field(description="Number of results.", examples=[1])
    results: list[EarlySignalRow] = Field(description="Highest probability first.",
                                          examples=[[example_of(EarlySignalRow)]])


class Analysis(BaseModel):
    """Everything known about one symbol on the date."""

    symbol: str = Field(description="Ticker.", examples=["AAPL"])
    sector: str | None = Field(description="GICS sector (null when unknown).", examples=["Information Technology"])
    universe_rank: int = Field(description="Rank of the composite in the whole universe of the date (1 = best).",
                               examples=[4])
    universe_size: int = Field(description="Symbols ranked in the universe of the date.", examples=[500])
    factor_scores: dict[str, float | None] = Field(
        description="Score of each factor group: cross-sectional percentile on [0, 1]; null where the group "
                    "has no data.", examples=[EXAMPLE_FACTOR_SCORES])
    classic_score: float | None = Field(description="Weighted classic factor score on [0, 1].", examples=[0.66])
    ml_prediction: MLPrediction | None = Field(description="The model's answer (null when ML is unavailable for "
                                               "this symbol; see `ml.status`).", examples=[example_of(MLPrediction)])
    composite: float | None = Field(description="ML-enhanced composite on [0, 1].", examples=[0.672])
    recommendation: str | None = Field(description="STRONG_BUY, BUY, HOLD, SELL or STRONG_SELL from the "
                                       "composite.", examples=["BUY"])
    early_signal: EarlySignal | None = Field(
        default=None, description="The early-signal earnings model's answer (null when it could not be computed).",
        examples=[example_of(EarlySignal)])


class AnalyzeResponse(BaseModel):
    """Analyses of a date."""

    date: dt.date = Field(description="Feature date, ISO 8601.", examples=[EXAMPLE_DATE])
    ml: MLInfo = Field(description="How the ML part went.", examples=[example_of(MLInfo)])
    unknown_symbols: list[str] = Field(default=[], description="Requested symbols without features on the date.",
                                       examples=[[]])
    results: list[Analysis] = Field(description="One analysis per known symbol, in the order asked.",
                                    examples=[[example_of(Analysis)]])


class Prediction(BaseModel):
    """One symbol's raw model output."""

    symbol: str = Field(description="Ticker.", examples=["AAPL"])
    probability: float | None = Field(description="Probability (0..1) of beating the universe over the horizon.",
                                      examples=[0.58])
    predicted_class: int = Field(description="1 when probability >= 0.5, else 0.", examples=[1])
    confidence: float | None = Field(description="|2 * percentile rank - 1| on [0, 1] over the universe.",
                                     examples=[0.62])


class PredictResponse(BaseModel):
    """Raw predictions of a date."""

    date: dt.date = Field(description="Feature date, ISO 8601.", examples=[EXAMPLE_DATE])
    ml: MLInfo = Field(description="Which versions answered, route and latency.", examples=[example_of(MLInfo)])
    unknown_symbols: list[str] = Field(default=[], description="Requested symbols without features on the date.",
                                       examples=[[]])
    predictions: list[Prediction] = Field(description="One per known symbol, in the order asked.",
                                          examples=[[example_of(Prediction)]])


# -- model registry ----------------------------------------------------------------------------------
class ModelVersion(BaseModel):
    """One registered version."""

    version: str = Field(description="Version number.", examples=["3"])
    aliases: list[str] = Field(description="Registry aliases it holds (champion, challenger).",
                               examples=[["champion"]])
    created: str = Field(description="Registration time, UTC (`YYYY-MM-DD HH:MM:SS[.ffffff]`).",
                         examples=["2019-07-01 06:12:45.120000"])
    horizon: str | None = Field(default=None, description="Horizon it predicts (1d, 1w or 1m; null when untagged).",
                                examples=["1w"])
    traffic_split: float = Field(default=0.0, description="Fraction (0..1) of default requests routed to it as "
                                 "challenger.", examples=[0.0])


class ModelSummary(BaseModel):
    """A registered model."""

    name: str = Field(description="Registered model name.", examples=[EXAMPLE_MODEL])
    champion: str | None = Field(description="Champion version (null without one).", examples=["3"])
    challenger: str | None = Field(description="Version receiving A/B traffic (null when none).", examples=["4"])
    traffic_split: float = Field(description="Fraction (0..1) of requests routed to the challenger.",
                                 examples=[0.1])
    versions: list[ModelVersion] = Field(description="Newest first.", examples=[[example_of(ModelVersion)]])


class ChampionChange(BaseModel):
    """The champion alias moved."""

    name: str = Field(description="Registered model name.", examples=[EXAMPLE_MODEL])
    champion: str = Field(description="The new champion version.", examples=["4"])
    previous: str | None = Field(description="The champion before (null when there was none).", examples=["3"])


# -- health and operations ---------------------------------------------------------------------------
class Health(BaseModel):
    """Liveness and readiness."""

    status: Literal["ok", "degraded"] = Field(description="ok, or degraded (503) when the market store is "
                                              "unreachable.", examples=["ok"])
    store: str = Field(description="ok, empty (nothing ingested yet) or unreachable.", examples=["ok"])
    cache: str = Field(description="Cache backend in use: redis, memory or memory (redis down).",
                       examples=["redis"])
    prediction_log: dict = Field(description="Prediction log: rows pending, written, failed flushes, last error "
                                 "(no URLs).", examples=[EXAMPLE_PREDICTION_LOG])


class MLHealth(BaseModel):
    """State of the ML serving path."""

    status: Literal["ok", "degraded"] = Field(description="ok, or degraded without a champion or after a "
                                              "prediction-log error.", examples=["ok"])
    model: str = Field(description="Served model name (`VFR_MODEL_NAME`).", examples=[EXAMPLE_MODEL])
    champion: str | None = Field(description="Its champion version (null without one or when the registry is "
                                 "unreachable).", examples=["3"])
    loaded_models: list[dict[str, str]] = Field(description="`{name, version}` of the models in the LRU cache, "
                                                "oldest first.", examples=[EXAMPLE_USED_MODELS])
    latency: dict[str, dict[str, float]] = Field(
        description="Per route (`METHOD path`): `count` and `p50_ms`, `p95_ms`, `p99_ms` in milliseconds over "
                    "the last 20,000 calls.",
        examples=[{"GET /api/stocks/select": {"count": 120, "p50_ms": 8.2, "p95_ms": 31.5, "p99_ms": 64.0}}])
    cache: dict = Field(description="Cache statistics: backend, hits, misses, hit_ratio (fraction), Redis errors, "
                        "in-memory entries.", examples=[EXAMPLE_CACHE])
    prediction_log: dict = Field(description="Prediction log: rows pending, written, failed flushes, last error.",
                                 examples=[EXAMPLE_PREDICTION_LOG])


class DataSource(BaseModel):
    """One table of the market store."""

    name: str = Field(description="Table name.", examples=["prices"])
    rows: int = Field(description="Row count.", examples=[251_342])
    latest_date: str | None = Field(description="Latest date in the table, ISO 8601 (null without a date column "
                                    "or rows).", examples=["2019-12-31"])


class DataSources(BaseModel):
    """Freshness of the data the API serves from."""

    sources: list[DataSource] = Field(description="One per table of the market store.",
                                      examples=[[example_of(DataSource)]])
    prediction_log: dict = Field(description="Rows of the prediction-log tables plus the logger's pending/written/"
                                 "failed counts (or `error` when its database is unreachable).",
                                 examples=[{"ml_predictions": 1520, "ml_outcomes": 980} | EXAMPLE_PREDICTION_LOG])
    cache: dict = Field(description="Cache statistics: backend, hits, misses, hit_ratio (fraction), Redis errors, "
                        "in-memory entries.", examples=[EXAMPLE_CACHE])


class OutcomesRun(BaseModel):
    """Result of the outcomes job."""

    written: int = Field(description="Outcomes written to `ml_outcomes` by this run.", examples=[42])


# -- errors --------------------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    """Every error answer: a short code, what went wrong, and the request id to quote."""

    error: str = Field(description="bad_request, unauthorized, forbidden, not_found, conflict, payload_too_large, "
                                   "rate_limited, store_unavailable, ml_unavailable, internal_error, ...",
                       examples=["not_found"])
    detail: str | list[dict] | None = Field(default=None, description="What went wrong, in one line (never a "
                                            "trace, path or URL).",
                                            examples=["no features on 2019-07-06 (latest available: 2019-12-31)"])
    request_id: str | None = Field(default=None, description="The request's `X-Request-ID`, to quote when "
                                   "reporting a problem.", examples=[EXAMPLE_REQUEST_ID])


class FieldError(BaseModel):
    """One invalid input."""

    field: str = Field(description="Dotted path of the offending input (``symbols.0``, ``date``, ``body``).",
                       examples=["symbols.0"])
    message: str = Field(description="Why it is invalid.",
                         examples=["String should match pattern '^[A-Z][A-Z0-9.\\-]{0,9}$'"])


class ValidationErrorBody(BaseModel):
    """The 422 answer to invalid input (the app's own shape, not FastAPI's default)."""

    error: Literal["validation_error"] = Field(description="Always validation_error.", examples=["validation_error"])
    detail: list[FieldError] = Field(description="One entry per offending field.",
                                     examples=[[example_of(FieldError)]])
    request_id: str | None = Field(default=None, description="The request's `X-Request-ID`, to quote when "
                                   "reporting a problem.", examples=[EXAMPLE_REQUEST_ID])


# -- ops dashboard (GET /api/dashboard/summary) -----------------------------------------------
class DashboardPick(BaseModel):
    """One of today's top picks."""

    rank: int = Field(description="Rank in the day's selection (1 = best).", examples=[1])
    symbol: str = Field(description="Ticker.", examples=["AAPL"])
    sector: str | None = Field(description="GICS sector (null when unknown).", examples=["Information Technology"])
    classic_score: float | None = Field(description="Classic factor score on [0, 1].", examples=[0.66])
    ml_probability: float | None = Field(description="Model probability of beating the market over the horizon.",
                                         examples=[0.58])
    ml_confidence: float | None = Field(description="|2 * ml_score - 1| on [0, 1] (null without ML).",
                                        examples=[0.62])
    composite: float | None = Field(description="ML-enhanced composite on [0, 1] (classic where ML is not confident).",
                                    examples=[0.672])
    ml_blended: bool | None = Field(description="Whether ML entered the composite (null without ML).",
                                    examples=[True])
    recommendation: str | None = Field(description="STRONG_BUY, BUY, HOLD, SELL or STRONG_SELL from the composite.",
                                       examples=["BUY"])


class DashboardSelection(BaseModel):
    """Today's top picks with ML."""

    date: dt.date | None = Field(description="Selection date, ISO 8601 (null when the section is empty).",
                                 examples=[EXAMPLE_DATE])
    top: int = Field(description="Picks asked for (`top` parameter).", examples=[10])
    ml_status: str | None = Field(description="`ml.status` of the selection (ok, 'ok (fallback: ...)', "
                                  "'unavailable: <reason>').", examples=["ok"])
    models: list[dict[str, str]] = Field(description="`{name, version}` of the models that answered.",
                                         examples=[EXAMPLE_USED_MODELS])
    rows: list[DashboardPick] = Field(description="Best first.", examples=[[example_of(DashboardPick)]])
    message: str | None = Field(default=None, description="Why the section is empty (None when it has data).",
                                examples=[None])


class DashboardVersion(BaseModel):
    """One row of the model leaderboard."""

    version: str = Field(description="Version number.", examples=["3"])
    aliases: list[str] = Field(description="Registry aliases it holds (champion, challenger).",
                               examples=[["champion"]])
    algorithm: str | None = Field(description="Training algorithm.", examples=["lightgbm"])
    created: str | None = Field(description="Registration time, ISO 8601 (UTC).", examples=["2019-07-01T06:12:45"])
    metrics: dict[str, float | None] = Field(description="Walk-forward metrics logged by `vfr train`.",
                                             examples=[{"roc_auc": 0.541, "rank_ic": 0.032, "sharpe": 0.84}])
    decision: str = Field(description="champion, or the deploy rule's decision against the champion.",
                          examples=["champion"])
    rule: str = Field(description="The deploy rule that decided (empty for the champion).", examples=[""])
    champion: bool = Field(description="Whether this version is the champion.", examples=[True])
    loaded: bool = Field(description="Held in this process's model cache.", examples=[True])
    traffic_split: float = Field(description="Fraction of default requests this version serves.", examples=[0.0])


class DashboardModels(BaseModel):
    """The model leaderboard."""

    name: str = Field(description="Served model name.", examples=[EXAMPLE_MODEL])
    champion: str | None = Field(description="Champion version (null without one).", examples=["3"])
    challenger: str | None = Field(description="Version receiving A/B traffic (null when none).", examples=["4"])
    traffic_split: float = Field(description="Fraction (0..1) of requests routed to the challenger.",
                                 examples=[0.1])
    versions: list[DashboardVersion] = Field(description="Newest first.", examples=[[example_of(DashboardVersion)]])
    message: str | None = Field(default=None, description="Why the section is empty (null when it has data).",
                                examples=[None])


class DriftItem(BaseModel):
    """One statistic of the latest drift check."""

    kind: str = Field(description="feature, prediction, calibration or performance.", examples=["feature"])
    name: str = Field(description="Feature or metric checked.", examples=["ret_60d"])
    statistic: float | None = Field(description="KS distance on [0, 1] for features, PSI for the prediction, "
                                                "Brier score, rolling accuracy / IC.", examples=[0.12])
    threshold: float | None = Field(description="The value the statistic is compared with (same unit).",
                                    examples=[0.2])
    breached: bool = Field(description="Whether the rule fired.", examples=[False])


class DashboardDrift(BaseModel):
    """The latest drift report."""

    computed_at: str | None = Field(description="When the check ran (UTC).", examples=[EXAMPLE_TIME])
    as_of: str | None = Field(description="Last feature date of the checked window.", examples=[EXAMPLE_DATE])
    model_name: str | None = Field(description="Model checked.", examples=[EXAMPLE_MODEL])
    model_version: str | None = Field(description="Its version.", examples=["3"])
    breached: int = Field(description="Number of items whose rule fired.", examples=[0])
    items: list[DriftItem] = Field(description="Breached first, then by kind and statistic.",
                                   examples=[[example_of(DriftItem)]])
    message: str | None = Field(default=None, description="Why the section is empty (null when it has data).",
                                examples=[None])


class EquityCurve(BaseModel):
    """Net equity of one strategy of the latest backtest."""

    strategy: str = Field(description="Strategy name.", examples=["classic"])
    dates: list[dt.date] = Field(description="ISO 8601 dates of the points (thinned to at most a few hundred).",
                                 examples=[["2019-01-02", "2019-07-08"]])
    equity: list[float | None] = Field(description="Net equity, 1.0 at the start.", examples=[[1.0, 1.084]])
    total_return: float | None = Field(description="Last / first equity - 1 (a fraction).", examples=[0.084])


class DashboardBacktest(BaseModel):
    """The latest backtest's equity curves."""

    start: dt.date | None = Field(description="First date, ISO 8601.", examples=["2019-01-02"])
    end: dt.date | None = Field(description="Last date, ISO 8601.", examples=[EXAMPLE_DATE])
    curves: list[EquityCurve] = Field(description="One per strategy.", examples=[[example_of(EquityCurve)]])
    message: str | None = Field(default=None, description="Why the section is empty (null when it has data).",
                                examples=[None])


class AlertItem(BaseModel):
    """One recent alert."""

    key: str = Field(description="Deduplication key of the alert.", examples=["drift:ret_60d"])
    rule: str = Field(description="Rule that raised it.", examples=["feature_drift"])
    severity: str = Field(description="info, warning or critical.", examples=["warning"])
    metric: str | None = Field(description="Metric the rule watches.", examples=["ks"])
    value: float | None = Field(description="Its value when the alert fired.", examples=[0.27])
    threshold: float | None = Field(description="The rule's threshold (same unit).", examples=[0.2])
    message: str = Field(description="Human-readable text.", examples=["ret_60d drifted: KS 0.27 > 0.2"])
    first_seen_at: str | None = Field(description="First time it fired, ISO 8601 (UTC).",
                                      examples=["2019-07-05T06:30:00"])
    last_seen_at: str | None = Field(description="Latest time it fired, ISO 8601 (UTC).",
                                     examples=["2019-07-08T06:30:00"])
    count: int = Field(description="Times it was published, delivered or not.", examples=[3])


class DashboardAlerts(BaseModel):
    """Recent alerts."""

    items: list[AlertItem] = Field(description="Newest first.", examples=[[example_of(AlertItem)]])
    message: str | None = Field(default=None, description="Why the section is empty (null when it has data).",
                                examples=[None])


# -- retraining and model info (issue 7) -------------------------------------------------
class RetrainingRun(BaseModel):
    """One retraining run (or recorded rollback)."""

    id: int = Field(description="Run id.", examples=[17])
    started_at: dt.datetime = Field(description="Start, ISO 8601 (UTC).", examples=["2019-07-01T06:00:00"])
    finished_at: dt.datetime | None = Field(description="End, ISO 8601 (UTC); null while running.",
                                            examples=["2019-07-01T06:14:32"])
    trigger: str = Field(description="What started it: monthly, earnings_season, drift, manual, api, rollback, ...",
                         examples=["monthly"])
    status: str = Field(description="running, deployed, ab_test, kept, refused, blocked, skipped, busy, failed "
                                    "or rollback.", examples=["deployed"])
    champion_before: str | None = Field(description="Champion version when it started.", examples=["3"])
    challenger_version: str | None = Field(description="Version it trained and registered (null when none).",
                                           examples=["4"])
    champion_after: str | None = Field(description="Champion version when it ended (null when unchanged or "
                                       "running).", examples=["4"])
    action: str | None = Field(description="deploy, ab_test, keep, refuse or rollback (null while running).",
                               examples=["deploy"])
    reason: str | None = Field(description="Why, in one line.", examples=["AUC +0.012 over the champion"])


class ScheduledJob(BaseModel):
    """A job of the scheduler."""

    job: str = Field(description="Job id.", examples=["monthly_retraining"])
    description: str = Field(description="What it does.", examples=["monthly challenger vs champion"])
    next_run: str | None = Field(description="ISO time in the scheduler's time zone.",
                                 examples=["2019-08-01T06:00:00-04:00"])


class DashboardRetraining(BaseModel):
    """Retraining runs and schedule."""

    runs: list[RetrainingRun] = Field(description="The newest runs of the configured model, newest first.",
                                      examples=[[example_of(RetrainingRun)]])
    schedule: list[ScheduledJob] = Field(description="Next run of each scheduled job.",
                                         examples=[[example_of(ScheduledJob)]])
    running: bool = Field(description="A retraining run holds the database lock now.", examples=[False])
    message: str | None = Field(default=None, description="Why the section is empty (null when it has data).",
                                examples=[None])


class DashboardSummary(BaseModel):
    """Everything the ops dashboard shows."""

    generated_at: dt.datetime = Field(description="When this summary was built, ISO 8601 (UTC).",
                                      examples=["2019-07-08T14:03:11.512000Z"])
    model: str = Field(description="Served model name.", examples=[EXAMPLE_MODEL])
    selection: DashboardSelection = Field(description="Today's top picks.", examples=[example_of(DashboardSelection)])
    models: DashboardModels = Field(description="Model leaderboard and champion.",
                                    examples=[example_of(DashboardModels)])
    drift: DashboardDrift = Field(description="Latest drift report.", examples=[example_of(DashboardDrift)])
    backtest: DashboardBacktest = Field(description="Latest backtest's equity curves.",
                                        examples=[example_of(DashboardBacktest)])
    alerts: DashboardAlerts = Field(description="The most recent alerts, newest first.",
                                    examples=[example_of(DashboardAlerts)])
    retraining: DashboardRetraining = Field(description="Recent retraining runs, the lock and the schedule.",
                                            examples=[example_of(DashboardRetraining)])


class RetrainingStatus(BaseModel):
    """The retraining loop of the served model."""

    model: str = Field(description="Served model name.", examples=[EXAMPLE_MODEL])
    champion: str | None = Field(description="Champion version (null without one or when the registry is "
                                 "unreachable).", examples=["4"])
    running: bool = Field(description="A retraining run holds the database lock now.", examples=[False])
    lease_owner: str | None = Field(default=None, description="host:pid of the process holding the retraining lock "
                                                              "(an API-triggered run: its worker process).",
                                    examples=[None])
    runs: list[RetrainingRun] = Field(description="Newest first.", examples=[[example_of(RetrainingRun)]])
    schedule: list[ScheduledJob] = Field(description="Next run of each scheduled job.",
                                         examples=[[example_of(ScheduledJob)]])


class RetrainingTrigger(BaseModel):
    """How to run the retraining."""

    model_config = {"extra": "forbid"}
    wait: bool = Field(default=False, description="Run in the request and return the decision (else 202 at once).",
                       examples=[False])
    rebuild_features: bool = Field(default=True, description="Rebuild the features table from the store first.",
                                   examples=[True])


class RetrainingStarted(BaseModel):
    """A triggered retraining run."""

    status: str = Field(description="'started' (running in a worker process) or the run's final status.",
                        examples=["started"])
    worker_pid: int | None = Field(default=None, description="Process id of the worker process running the retraining.",
                                   examples=[48213])
    run: RetrainingRun | None = Field(default=None, description="The run as recorded (wait=true only).",
                                      examples=[example_of(RetrainingRun)])
    decision: dict | None = Field(default=None, description="The full decision report when wait=true.",
                                  examples=[{"run_id": 17, "trigger": "api", "status": "deployed", "action": "deploy",
                                             "reason": "AUC +0.012 over the champion", "champion_before": "3",
                                             "challenger_version": "4", "champion_after": "4",
                                             "as_of": EXAMPLE_DATE}])


class ModelInfo(BaseModel):
    """The champion of the served model."""

    name: str = Field(description="Served model name.", examples=[EXAMPLE_MODEL])
    version: str = Field(description="Champion version.", examples=["4"])
    created: str | None = Field(description="Registration time, UTC (`YYYY-MM-DD HH:MM:SS[.ffffff]`).",
                                examples=["2019-07-01 06:14:30.118000"])
    algorithm: str | None = Field(description="Training algorithm.", examples=["lightgbm"])
    horizon: str | None = Field(description="Horizon it predicts (1d, 1w or 1m).", examples=["1w"])
    label_definition: str | None = Field(description="What the label means.",
                                         examples=["forward 5-day return above the universe mean"])
    training_window: list[str] = Field(description="First and last training dates, ISO 8601.",
                                       examples=[["2014-01-02", "2019-06-28"]])
    data_fingerprint: str = Field(description="Hash of the training data (empty when not recorded).",
                                  examples=["9c1e4f0a2b7d"])
    feature_columns: list[str] = Field(description="Features the model reads, in order.",
                                       examples=[["ret_60d", "rsi_14", "sue"]])
    metrics: dict[str, float] = Field(description="Walk-forward out-of-sample metrics of the version's training run.",
                                      examples=[{"roc_auc": 0.541, "rank_ic_mean": 0.032}])
    traffic_split: float = Field(description="Share of requests routed to the challenger (0 when none).",
                                 examples=[0.1])
    challenger: str | None = Field(description="Version receiving A/B traffic (null when none).", examples=["5"])
    lineage: dict | None = Field(description="Dataset lineage saved with the model (sources, fingerprint, versions).",
                                 examples=[{"fingerprint": "9c1e4f0a2b7d",
                                            "sources": [{"name": "prices", "rows": 251342}]}])
    has_drift_reference: bool = Field(description="Whether the model carries a drift reference sample.",
                                      examples=[True])
    last_retraining: RetrainingRun | None = Field(description="The newest retraining run (null when none).",
                                                  examples=[example_of(RetrainingRun)])
