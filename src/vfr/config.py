"""One settings object for all of VFR.

Every value can be set through an environment variable ``VFR_<NAME>`` (for example
``VFR_STORE_URL``, ``VFR_HOME``) or passed explicitly. Nothing here is cached in a
module-level global: call :func:`get_settings` (or build :class:`Settings`) and pass the
object down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Label horizons in trading days, by name. ``1w`` (5 trading days) is the default.
HORIZONS: dict[str, int] = {"1d": 1, "1w": 5, "1m": 21}


class Settings(BaseSettings):
    """VFR configuration (environment variables ``VFR_*``).

    Paths default to files under :attr:`home` so a user with nothing installed gets the
    embedded defaults: a DuckDB market store and a local MLflow store (SQLite + files).
    """

    model_config = SettingsConfigDict(env_prefix="VFR_", extra="ignore")

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
    horizon: str = Field(default="1w", description="Default label horizon: one of 1d, 1w, 1m.")
    top_n: int = Field(default=20, ge=1, description="Stocks held by the top-N selection and backtest.")
    commission_bps: float = Field(default=5.0, ge=0, description="Commission per unit traded, basis points.")
    slippage_bps: float = Field(default=5.0, ge=0, description="Slippage per unit traded, basis points.")
    retrain_every: int = Field(default=21, ge=1, description="Walk-forward retraining step, trading days.")
    train_window: int = Field(
        default=504, ge=0, description="Walk-forward training window, trading days (0 = expanding)."
    )
    ml_weight: float = Field(default=0.15, ge=0, le=1, description="Weight of ML in the composite score.")
    seed: int = Field(default=42, description="Random seed for model training.")

    @field_validator("horizon")
    @classmethod
    def _known_horizon(cls, v: str) -> str:
        if v not in HORIZONS:
            raise ValueError(f"horizon must be one of {sorted(HORIZONS)}, got {v!r}")
        return v

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


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit ``overrides`` taking precedence."""
    return Settings(**overrides)
