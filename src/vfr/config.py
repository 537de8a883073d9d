"""One settings object for all of VFR.

Every value can be set through an environment variable ``VFR_<NAME>`` (for example
``VFR_STORE_URL``, ``VFR_HOME``), in a TOML file (keys are the field names: ``top_n = 30``,
``store_url = "..."``) or passed explicitly. Precedence: explicit values > environment
variables > the TOML file > defaults. The TOML file is the first of

1. ``$VFR_CONFIG`` (an explicit file: it must exist),
2. ``./vfr.toml`` (the current directory),
3. ``$VFR_HOME/config.toml`` (``VFR_HOME`` from the environment, default ``~/.vfr``),

read by pydantic-settings' own :class:`~pydantic_settings.TomlConfigSettingsSource`
(:func:`config_file` says which one applies). A malformed file, an unknown key or a missing
``$VFR_CONFIG`` file raise :class:`vfr.errors.SettingsError` naming the file; a bad value
raises pydantic's ``ValidationError`` with a note naming the file and the key
(:func:`toml_origin`).

Nothing here is cached in a module-level global: call :func:`get_settings` (or build
:class:`Settings`) and pass the object down.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vfr.errors import SettingsError

# Label horizons in trading days, by name (``1w``, 5 trading days, is the default): defined with
# the one horizon vocabulary on the ground floor, :func:`vfr.metrics.parse_horizon` (``"5d"`` and
# ``5`` are read as ``"1w"``), and re-exported here.
from vfr.metrics.horizons import HORIZONS, HorizonError, parse_horizon

__all__ = ["CONFIG_ENV", "HORIZONS", "Settings", "config_file", "get_settings", "toml_origin"]

#: Environment variable naming an explicit TOML configuration file.
CONFIG_ENV = "VFR_CONFIG"
#: The TOML file looked for in the current directory, then the one looked for in ``$VFR_HOME``.
LOCAL_CONFIG = "vfr.toml"
HOME_CONFIG = "config.toml"


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    """``environ[name]``, matched case-insensitively as pydantic-settings matches ``VFR_*``."""
    if name in environ:
        return environ[name]
    return next((v for k, v in environ.items() if k.upper() == name), None)


def config_file(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The TOML configuration file :class:`Settings` reads, or None when there is none.

    The first of ``$VFR_CONFIG``, ``<cwd>/vfr.toml`` and ``$VFR_HOME/config.toml`` (``VFR_HOME``
    from ``environ``, default ``~/.vfr``; ``--home`` / ``Settings(home=...)`` do not move it).

    Raises
    ------
    SettingsError
        ``$VFR_CONFIG`` is set but names no file.
    """
    environ = os.environ if environ is None else environ
    explicit = _env(CONFIG_ENV, environ)
    if explicit:
        path = Path(explicit).expanduser().absolute()
        if not path.is_file():
            raise SettingsError(f"{CONFIG_ENV}={explicit!r}: no such configuration file ({path})")
        return path
    local = (Path.cwd() if cwd is None else cwd) / LOCAL_CONFIG
    if local.is_file():
        return local.absolute()
    home = Path(_env("VFR_HOME", environ) or "~/.vfr").expanduser() / HOME_CONFIG
    return home.absolute() if home.is_file() else None


class _TomlFile(TomlConfigSettingsSource):
    """pydantic-settings' TOML source on one file, its errors naming that file (and the key)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        try:
            super().__init__(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read the configuration file: {exc.strerror or exc}") from None
        fields = set(settings_cls.model_fields)
        for key in self.toml_data:
            if key.lower() not in fields:
                close = difflib.get_close_matches(key.lower(), sorted(fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SettingsError(f"{path}: unknown setting {key!r}{hint}; keys are the Settings field names, "
                                    "e.g. top_n = 30")


def toml_origin(fields: Iterable[str], environ: Mapping[str, str] | None = None) -> tuple[Path | None, set[str]]:
    """The TOML file and which of ``fields`` took their value from it (not from a ``VFR_*`` variable).

    Used to name the file and the key when a value is invalid; explicit values are the
    caller's to leave out of ``fields``.
    """
    environ = os.environ if environ is None else environ
    try:
        path = config_file(environ)
        data = _TomlFile(Settings, path).toml_data if path is not None else {}
    except SettingsError:
        return None, set()
    keys = {k.lower() for k in data}
    return path, {f for f in fields if f in keys and _env(f"VFR_{f.upper()}", environ) is None}


class Settings(BaseSettings):
    """VFR configuration (environment variables ``VFR_*``, then the TOML file of :func:`config_file`).

    Paths default to files under :attr:`home` so a user with nothing installed gets the
    embedded defaults: a DuckDB market store and a local MLflow store (SQLite + files).
    """

    model_config = SettingsConfigDict(env_prefix="VFR_", extra="ignore")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:  # name the TOML file and key of a bad value read from it
            bad = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")} - set(values)
            path, from_file = toml_origin(bad)
            for key in sorted(from_file):
                exc.add_note(f"{path}: {key} is invalid (the value of {key!r} in this configuration file)")
            raise

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values, then ``VFR_*`` variables, then the TOML file of :func:`config_file`."""
        path = config_file()
        toml = (_TomlFile(settings_cls, path),) if path is not None else ()
        return init_settings, env_settings, dotenv_settings, *toml, file_secret_settings

    home: Path = Field(default=Path("~/.vfr"), description="Working folder for embedded stores and reports.")
    store_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the market store; default duckdb:///<home>/vfr.duckdb. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking/registry URI; default sqlite:///<home>/mlflow.db"
    )
    model_name: str = Field(default="vfr-lgbm-direction", description="Registered model name in MLflow.")
    earnings_model_name: str = Field(
        default="vfr-early-signal",
        description="Registered model name of the early-signal earnings model (`vfr earnings train`).")
    earnings_lead_days: int = Field(
        default=7, ge=1, le=60, description="Early signal: trading days between the as-of date and the report.")
    earnings_label_threshold: float = Field(
        default=20.0, description="Early signal: the label is an EPS surprise above this many percent.")
    feature_alpha158: bool = Field(
        default=False, description="`vfr features build` also builds Qlib's Alpha158 factors (opt-in group alpha158).")
    horizon: str = Field(default="1w", description="Default label horizon: one of 1d, 1w, 1m.")
    top_n: int = Field(default=20, ge=1, description="Stocks held by the top-N selection and backtest.")
    target_vol: float | None = Field(
        default=None, gt=0, description="Backtest volatility target, annualised (e.g. 0.15): each rebalance scales "
        "the book by the target over its trailing 63-day volatility, at most 1 (docs/research.md, tenth pass); "
        "unset = fully invested.")
    # Chosen by the research protocol's eleventh pass (docs/research.md): the optimised book beat the
    # equal-weight universe net of 10 bp on the holdout (Sharpe 0.95 vs 0.91), the top-20 book did not.
    weighting: Literal["equal", "inverse_vol", "optimized"] = Field(
        default="optimized", description="Backtest book: optimized (the cost-aware mean-variance optimiser over "
        "every eligible name against their equal weight, at most 5% a name; docs/research.md, eleventh pass), "
        "equal (the top-N, equal weight) or inverse_vol (the top-N, each name's weight in inverse proportion to "
        "its 63-day return volatility; tenth pass).")
    commission_bps: float = Field(default=5.0, ge=0, description="Commission per unit traded, basis points.")
    slippage_bps: float = Field(default=5.0, ge=0, description="Slippage per unit traded, basis points.")
    # Defaults chosen by the research protocol's third pass (docs/research.md): the expanding
    # window refitted every 63 dates met the holdout Rank IC target where the 504-date rolling
    # window refitted every 21 did not.
    retrain_every: int = Field(default=63, ge=1, description="Walk-forward retraining step, trading days.")
    train_window: int = Field(
        default=0, ge=0, description="Walk-forward training window, trading days (0 = expanding)."
    )
    ml_weight: float = Field(default=0.15, ge=0, le=1, description="Weight of ML in the composite score.")
    ml_confidence: Literal["extremity", "flat"] = Field(
        default="extremity", description="How the ML weight is scaled per stock: extremity (by |2 * ML rank - 1|, "
        "full weight only for the model's most extreme calls) or flat (the full weight wherever there is an ML "
        "score); see docs/research.md, ninth pass.")
    ml_neutralize: bool = Field(
        default=False, description="Neutralise the ML score against 60-day volatility, market beta and sector "
        "before blending (vfr.scoring.risk_neutral_score; see docs/research.md).")
    seed: int = Field(default=42, description="Random seed for model training.")
    # Default chosen by the research protocol's eighth pass (docs/research.md): the 3-seed ensemble
    # beat one model on 2002-2014 and on its one holdout touch.
    train_seeds: int = Field(
        default=3, ge=1, le=20, description="Models per walk-forward fit and for the served model, with seeds "
        "seed, seed+1, ...; their probabilities averaged (an ensemble over seeds; 1 = one model).")
    # Default chosen by the research protocol's twelfth pass (docs/research.md): one probe per window
    # kept the research Rank IC above its pre-written bar at about half the walk-forward's CPU time.
    train_shared_rounds: bool = Field(
        default=True, description="The seed ensemble's members of a walk-forward window take the first member's "
        "early-stopped boosting rounds (one probe fit per window) instead of each running its own probe.")
    train_algorithm: Literal["lightgbm", "xgboost", "catboost", "random_forest", "linear", "lstm"] = Field(
        default="lightgbm",
        description="Algorithm of the model `vfr train` fits, registers and serves (the model zoo's names).")
    # Default chosen by the research protocol (docs/research.md): the cross-sectional regression
    # ranked better than the direction classifier on 2002-2014 and on the 2015-2019 holdout.
    train_objective: Literal["classification", "regression"] = Field(
        default="regression",
        description="Objective of the model `vfr train` fits: classification (direction) or regression.")
    train_target: Literal["auto", "direction", "excess", "excess_rank"] = Field(
        default="excess_rank",
        description="What `vfr train` learns: auto (direction for classification, excess for regression), "
        "excess_rank (the day's percentile rank of the excess return: a cross-sectional objective).")

    # -- distributed --
    dask_scheduler: str | None = Field(
        default=None,
        description="Where heavy work runs: unset = in this process; 'local:N' = a LocalCluster of N worker "
        "processes; 'tcp://host:8786' = an existing Dask cluster.",
    )

    @field_validator("horizon")
    @classmethod
    def _known_horizon(cls, v: str) -> str:
        """A name of :data:`HORIZONS`; another spelling of one of them (``"5d"``, ``"5"``) becomes its name."""
        if v in HORIZONS:
            return v

        try:
            name = parse_horizon(v).name
        except HorizonError:
            name = None
        if name not in HORIZONS:
            raise ValueError(f"horizon must be one of {sorted(HORIZONS)} (or their days, e.g. '5d'), got {v!r}")
        return name

    @field_validator("api_trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        """Each an IP address or CIDR network (``10.0.0.0/8``)."""
        import ipaddress

        for item in v:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"api_trusted_proxies: {item!r} is not an IP address or network") from exc
        return [item.strip() for item in v]

    # -- derived values (computed, never stored) ---------------------------------------
    @property
    def home_dir(self) -> Path:
        """:attr:`home` with ``~`` expanded; created on first use."""
        path = self.home.expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def resolved_store_url(self) -> str:
        """The market store URL, defaulting to a DuckDB file in :attr:`home`."""
        return self.store_url or f"duckdb:///{self.home_dir / 'vfr.duckdb'}"

    @property
    def resolved_tracking_uri(self) -> str:
        """The MLflow tracking URI, defaulting to a SQLite file in :attr:`home`."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        """Folder for MLflow artifacts of the default local store."""
        return self.home_dir / "mlartifacts"

    @property
    def reports_dir(self) -> Path:
        """Folder where reports (HTML + PNG) are written."""
        path = self.home_dir / "reports"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def horizon_days(self) -> int:
        """The default label horizon in trading days."""
        return HORIZONS[self.horizon]

    @property
    def cost_bps(self) -> float:
        """Total one-way trading cost per unit traded (commission + slippage), basis points."""
        return self.commission_bps + self.slippage_bps

    # -- serving -----------------------------------------------------------------------
    cache_url: str | None = Field(default=None, description="Redis URL of the serving caches and rate limits "
                                  "(e.g. redis://127.0.0.1:6379/0); unset = in-process memory.")
    cache_prefix: str = Field(default="vfr", description="Prefix of every Redis key written by the API.")
    serving_db_url: str | None = Field(default=None, description="SQLAlchemy URL of the prediction log "
                                       "(ml_predictions, ml_outcomes); default sqlite:///<home>/serving.db.")
    jwt_secret: str | None = Field(default=None, description="HS256 secret (at least 32 bytes), or the RS256 PEM "
                                   "private key; taken as given, never read from a file (see jwt_secret_file).")
    jwt_secret_file: Path | None = Field(default=None, description="File holding the HS256 secret or RS256 private "
                                         "key (used when jwt_secret is unset).")
    jwt_public_key: str | None = Field(default=None, description="RS256 PEM public key for verification.")
    jwt_public_key_file: Path | None = Field(default=None, description="File holding the RS256 PEM public key "
                                             "(used when jwt_public_key is unset).")
    jwt_algorithm: str = Field(default="HS256", pattern="^(HS256|RS256)$", description="JWT algorithm.")
    jwt_max_lifetime_days: float = Field(default=90.0, gt=0, description="Tokens must carry exp; tokens valid "
                                         "for longer than this (exp - iat) are refused, and none are minted.")
    api_max_body_bytes: int = Field(default=1_048_576, ge=0, description="Largest request body the API reads "
                                    "(Content-Length or streamed bytes); larger ones get 413 (0 = no limit).")
    api_trusted_proxies: list[str] = Field(default_factory=list, description="Addresses or CIDR networks of "
                                           "reverse proxies whose X-Forwarded-For is honoured (empty = none).")
    rate_limit_anonymous: str = Field(default="30/minute", description="Rate limit without a token (per IP).")
    rate_limit_free: str = Field(default="60/minute", description="Rate limit of the free tier (per user).")
    rate_limit_pro: str = Field(default="600/minute", description="Rate limit of the pro tier (per user).")
    rate_limit_admin: str = Field(default="100000/minute", description="Rate limit of the admin tier (per user).")
    ml_timeout_ms: float = Field(default=2000.0, gt=0, description="Budget for the ML part of a request, ms.")
    api_warmup_wait_s: float = Field(default=30.0, ge=0, description="`vfr serve` start-up waits at most this "
                                     "many seconds for the warm-up (features, champion) before serving anyway.")
    model_cache_size: int = Field(default=5, ge=1, description="Loaded models kept in the LRU cache.")
    feature_cache_ttl_s: float = Field(default=900.0, ge=0, description="Feature cache TTL, seconds.")
    prediction_cache_ttl_s: float = Field(default=300.0, ge=0, description="Prediction cache TTL, seconds.")
    cors_origins: list[str] = Field(default_factory=list, description="CORS allowed origins (empty = CORS off).")

    # -- monitoring, alerts and retraining (issue 7) -------------------------------------
    alert_webhook_url: str | None = Field(default=None, description="Slack-compatible webhook URL for alerts "
                                          "(unset = alerts go to <home>/alerts.log only).")
    alert_dedup_window_s: float = Field(default=21600.0, ge=0, description="An alert with the same key is "
                                        "sent at most once per this many seconds.")
    retrain_guard: float = Field(default=0.10, ge=0, description="Refuse a challenger worse than the "
                                 "champion by more than this fraction (of |champion value|) on any guard metric; "
                                 "a large value turns the guard off.")
    retrain_min_fresh_dates: int = Field(default=10, ge=1, description="Dates after the champion's training "
                                         "window needed to compare a challenger with it.")
    drift_window_days: int = Field(default=30, ge=1, description="Calendar days of recent features, "
                                   "predictions and outcomes compared with the training reference.")
    service_alert_interval_s: float = Field(default=60.0, ge=0, description="How often the API checks its own "
                                            "error rate and p95 latency against the alert rules (0 = never).")
    scheduler_timezone: str = Field(default="America/New_York", description="Time zone of the job schedule.")
    retrain_lock_ttl_s: float = Field(default=120.0, gt=0, description="The retraining lock is a lease: its "
                                      "holder refreshes it every ttl/4 s; one not refreshed for this long (or whose "
                                      "holder process on this host is gone) is taken over.")

    # -- data quality gates (vfr.ml.quality; issue 12) -------------------------------------
    gate_completeness_warning: float = Field(default=0.95, ge=0, le=1, description="Warn when a feature's "
                                             "share of non-missing values is below this.")
    gate_completeness_critical: float = Field(default=0.80, ge=0, le=1, description="Stop training when a "
                                              "feature's share of non-missing values is below this.")
    gate_outlier_z: float = Field(default=10.0, gt=0, description="|robust z| above which a value is an outlier.")
    gate_outlier_warning: float = Field(default=0.01, ge=0, le=1, description="Warn when a feature's share of "
                                        "outliers is above this.")
    gate_outlier_critical: float = Field(default=0.05, ge=0, le=1, description="Stop training when a feature's "
                                         "share of outliers is above this.")
    gate_balance_warning: tuple[float, float] = Field(default=(0.40, 0.60), description="Warn when the share of "
                                                      "positive labels is outside this range (JSON list).")
    gate_balance_critical: tuple[float, float] = Field(default=(0.30, 0.70), description="Stop training when the "
                                                       "share of positive labels is outside this range.")
    gate_min_labelled_rows: int = Field(default=1000, ge=0, description="Stop training with fewer labelled rows.")
    gate_max_gap_business_days: int = Field(default=10, ge=0, description="Warn when more weekdays than this "
                                            "are missing between two dates of the dataset.")

    @property
    def resolved_serving_db_url(self) -> str:
        """The prediction log / monitoring database, defaulting to a SQLite file in :attr:`home`."""
        return self.serving_db_url or f"sqlite:///{self.home_dir / 'serving.db'}"


def get_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and the TOML file, with explicit ``overrides`` taking precedence
    (validated as fields)."""
    return Settings(**overrides)
