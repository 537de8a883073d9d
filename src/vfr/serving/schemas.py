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


class EarlySignal(BaseModel):
    """The early-signal model's answer for one symbol: will its next EPS surprise exceed the label
    threshold (20% by default)? Scored as of the request's date, through champion -> previous
    version -> rule -> none."""

    probability: float | None = Field(
        description="Calibrated probability of a surprise above the label threshold (0..1); the rule answers "
        "0.7 or 0.3; null when no level answered.", examples=[0.42])
    predicted_class: int | None = Field(description="1 = large positive surprise expected; null when no answer.")
    confidence: float = Field(description="Distance of the probability from the decision threshold, 0..1 "
                              "(0.1 for the rule, 0 for no answer).")
    confidence_level: str = Field(description="HIGH (>= 0.5), MEDIUM (>= 0.2), LOW or NONE.", examples=["MEDIUM"])
    expected_report_date: dt.date | None = Field(
        description="Next report date: from the store's earnings calendar, else estimated from past report gaps.")
    report_date_source: str | None = Field(description="calendar or estimated.")
    days_to_report: int | None = Field(description="Business days from the date to the expected report.")
    model_name: str | None
    model_version: str | None = Field(description="Version that answered (null for the rule or no answer).")
    source: str = Field(description="model:v<version>, rule or none.")
    fallback_level: int = Field(description="0 champion, 1 previous version, 2 rule, 3 none.")
    fallback: str = Field(description="champion, previous, rule or none.")
    error: bool = Field(description="True when no level could answer (see reason).")
    reason: str = Field(description="Why earlier levels of the chain did not answer; empty for the champion.")


class EarlySignalRow(EarlySignal):
    symbol: str


class EarlySignalResponse(BaseModel):
    date: dt.date
    within_days: int
    count: int
    results: list[EarlySignalRow]


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
    early_signal: EarlySignal | None = Field(
        default=None, description="The early-signal earnings model's answer (null when it could not be computed).")


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
    """Every error answer: a short code, what went wrong, and the request id to quote."""

    error: str = Field(description="bad_request, unauthorized, forbidden, not_found, conflict, payload_too_large, "
                                   "rate_limited, store_unavailable, ml_unavailable, internal_error, ...")
    detail: str | list[dict] | None = None
    request_id: str | None = None


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending input (``symbols.0``, ``date``, ``body``).")
    message: str


class ValidationErrorBody(BaseModel):
    """The 422 answer to invalid input (the app's own shape, not FastAPI's default)."""

    error: Literal["validation_error"]
    detail: list[FieldError]
    request_id: str | None = None


# -- ops dashboard (GET /api/dashboard/summary) -----------------------------------------------
class DashboardPick(BaseModel):
    rank: int
    symbol: str
    sector: str | None
    classic_score: float | None = Field(description="Classic factor score on [0, 1].")
    ml_probability: float | None = Field(description="Model probability of beating the market over the horizon.")
    ml_confidence: float | None
    composite: float | None = Field(description="ML-enhanced composite on [0, 1] (classic where ML is not confident).")
    ml_blended: bool | None
    recommendation: str | None


class DashboardSelection(BaseModel):
    date: dt.date | None
    top: int
    ml_status: str | None
    models: list[dict[str, str]]
    rows: list[DashboardPick]
    message: str | None = Field(default=None, description="Why the section is empty (None when it has data).")


class DashboardVersion(BaseModel):
    version: str
    aliases: list[str]
    algorithm: str | None
    created: str | None
    metrics: dict[str, float | None] = Field(description="Walk-forward metrics logged by `vfr train`.")
    decision: str = Field(description="champion, or the deploy rule's decision against the champion.")
    rule: str
    champion: bool
    loaded: bool = Field(description="Held in this process's model cache.")
    traffic_split: float = Field(description="Fraction of default requests this version serves.")


class DashboardModels(BaseModel):
    name: str
    champion: str | None
    challenger: str | None
    traffic_split: float
    versions: list[DashboardVersion]
    message: str | None = None


class DriftItem(BaseModel):
    kind: str = Field(description="feature, prediction, calibration or performance.")
    name: str
    statistic: float | None = Field(description="KS distance on [0, 1] for features, PSI for the prediction, "
                                                "Brier score, rolling accuracy / IC.")
    threshold: float | None
    breached: bool


class DashboardDrift(BaseModel):
    computed_at: str | None = Field(description="When the check ran (UTC).")
    as_of: str | None = Field(description="Last feature date of the checked window.")
    model_name: str | None
    model_version: str | None
    breached: int
    items: list[DriftItem]
    message: str | None = None


class EquityCurve(BaseModel):
    strategy: str
    dates: list[dt.date]
    equity: list[float | None] = Field(description="Net equity, 1.0 at the start.")
    total_return: float | None = Field(description="Last / first equity - 1 (a fraction).")


class DashboardBacktest(BaseModel):
    start: dt.date | None
    end: dt.date | None
    curves: list[EquityCurve]
    message: str | None = None


class AlertItem(BaseModel):
    key: str
    rule: str
    severity: str
    metric: str | None
    value: float | None
    threshold: float | None
    message: str
    first_seen_at: str | None
    last_seen_at: str | None
    count: int


class DashboardAlerts(BaseModel):
    items: list[AlertItem]
    message: str | None = None


# -- retraining and model info (issue 7) -------------------------------------------------
class RetrainingRun(BaseModel):
    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    trigger: str
    status: str = Field(description="running, deployed, ab_test, kept, refused, blocked, skipped, busy, failed "
                                    "or rollback.")
    champion_before: str | None
    challenger_version: str | None
    champion_after: str | None
    action: str | None
    reason: str | None


class ScheduledJob(BaseModel):
    job: str
    description: str
    next_run: str | None = Field(description="ISO time in the scheduler's time zone.")


class DashboardRetraining(BaseModel):
    runs: list[RetrainingRun] = Field(description="The newest runs of the configured model, newest first.")
    schedule: list[ScheduledJob]
    running: bool = Field(description="A retraining run holds the database lock now.")
    message: str | None = None


class DashboardSummary(BaseModel):
    generated_at: dt.datetime
    model: str
    selection: DashboardSelection
    models: DashboardModels
    drift: DashboardDrift
    backtest: DashboardBacktest
    alerts: DashboardAlerts
    retraining: DashboardRetraining


class RetrainingStatus(BaseModel):
    model: str
    champion: str | None
    running: bool = Field(description="A retraining run holds the database lock now.")
    lease_owner: str | None = Field(default=None, description="host:pid of the process holding the retraining lock "
                                                              "(an API-triggered run: its worker process).")
    runs: list[RetrainingRun] = Field(description="Newest first.")
    schedule: list[ScheduledJob]


class RetrainingTrigger(BaseModel):
    model_config = {"extra": "forbid"}
    wait: bool = Field(default=False, description="Run in the request and return the decision (else 202 at once).")
    rebuild_features: bool = Field(default=True, description="Rebuild the features table from the store first.")


class RetrainingStarted(BaseModel):
    status: str = Field(description="'started' (running in a worker process) or the run's final status.")
    worker_pid: int | None = Field(default=None, description="Process id of the worker process running the retraining.")
    run: RetrainingRun | None = None
    decision: dict | None = Field(default=None, description="The full decision report when wait=true.")


class ModelInfo(BaseModel):
    name: str
    version: str
    created: str | None
    algorithm: str | None
    horizon: str | None
    label_definition: str | None
    training_window: list[str]
    data_fingerprint: str
    feature_columns: list[str]
    metrics: dict[str, float] = Field(description="Walk-forward out-of-sample metrics of the version's training run.")
    traffic_split: float = Field(description="Share of requests routed to the challenger (0 when none).")
    challenger: str | None
    lineage: dict | None = Field(description="Dataset lineage saved with the model (sources, fingerprint, versions).")
    has_drift_reference: bool
    last_retraining: RetrainingRun | None
