"""Validation of feature vectors on write and read, and their quality score.

A *vector* is one row of a feature frame: ``symbol``, ``date`` (event date: the trading day
the values describe), ``known_at`` (tz-naive UTC timestamp at which the values became known)
and one numeric column per feature.

Checks (each rejection kind has a code in ``errors``):

- schema (frame level, raises :class:`FeatureValidationError`): key columns present, every
  configured feature present, numeric dtypes;
- ``key``: missing symbol/date/known_at, or ``known_at`` before the event date's start
  (a value cannot be known before the day it describes);
- ``inf``: an infinite value;
- ``nan``: NaN in a feature declared ``nullable=False``;
- ``range``: a finite value outside the feature's ``[min, max]``;
- ``incomplete``: completeness (share of non-NaN features) below ``min_completeness``;
- ``stale``: age above ``freshness_critical`` (by default only at serving time, i.e. when a
  current time ``now`` is given).

Quality score (stored with each vector), all parts on [0, 1]::

    quality = 0.35 completeness + 0.25 freshness + 0.25 source_reliability + 0.15 validity

with completeness = share of non-NaN features, freshness = 1 up to ``freshness_warning``, then
falling linearly to 0 at ``freshness_critical`` (0 beyond), source reliability from the
configured table (``default_reliability`` for unknown sources), validity = share of features
that are finite and inside their range. The age is ``reference - known_at`` where the reference
is ``now`` when given (serving) and otherwise ``known_at - (date + close)``: how late the value
became known after the close of its event day (publication lag, backfills).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vfr.errors import VFRError

KEY_COLUMNS: tuple[str, ...] = ("symbol", "date", "known_at")
QUALITY_WEIGHTS: dict[str, float] = {"completeness": 0.35, "freshness": 0.25,
                                     "source_reliability": 0.25, "validity": 0.15}


class FeatureValidationError(VFRError, ValueError):
    """A feature frame fails a schema check (missing column, non-numeric type)."""


@dataclass(frozen=True)
class FeatureSpec:
    """Validation rules of one feature.

    Parameters
    ----------
    name : str
        Column name.
    min, max : float, optional
        Inclusive valid range (None = unbounded).
    nullable : bool
        Whether NaN is allowed (it still lowers completeness). Default True.
    """

    name: str
    min: float | None = None
    max: float | None = None
    nullable: bool = True


@dataclass(frozen=True)
class ValidationConfig:
    """Thresholds of :func:`validate_vectors`.

    Parameters
    ----------
    specs : sequence of FeatureSpec
        The features a vector must carry.
    freshness_warning, freshness_critical : pandas.Timedelta
        Ages at which freshness starts to fall / reaches 0 and the vector is rejected
        (defaults 1 and 3 days).
    min_completeness : float
        Minimum share of non-NaN features (default 0.5).
    source_reliability : mapping of str to float
        Reliability in [0, 1] per source name.
    default_reliability : float
        Reliability of unknown sources (default 0.5).
    market_close : pandas.Timedelta
        Time after midnight UTC of the event date taken as its close for the offline age
        (default 21:00 = 16:00 New York in winter, conservative in summer).
    """

    specs: Sequence[FeatureSpec]
    freshness_warning: pd.Timedelta = pd.Timedelta(days=1)  # noqa: RUF009 - immutable
    freshness_critical: pd.Timedelta = pd.Timedelta(days=3)  # noqa: RUF009 - immutable
    min_completeness: float = 0.5
    source_reliability: Mapping[str, float] = field(default_factory=dict)
    default_reliability: float = 0.5
    market_close: pd.Timedelta = pd.Timedelta(hours=21)  # noqa: RUF009 - immutable

    @property
    def names(self) -> list[str]:
        """Feature names in spec order."""
        return [s.name for s in self.specs]


@dataclass
class ValidationResult:
    """Outcome of :func:`validate_vectors`.

    Attributes
    ----------
    valid : numpy.ndarray of bool, shape (n,)
        Vectors that pass every check.
    errors : list of list of str, length n
        Rejection codes per vector (see the module docstring), empty when valid.
    quality : pandas.DataFrame, shape (n, 6)
        ``completeness, freshness, source_reliability, validity, quality_score`` (floats on
        [0, 1]) and ``freshness_status`` (``ok`` / ``warning`` / ``critical``).
    """

    valid: np.ndarray
    errors: list[list[str]]
    quality: pd.DataFrame

    @property
    def n_rejected(self) -> int:
        """Number of rejected vectors."""
        return int((~self.valid).sum())

    def rejected_counts(self) -> dict[str, int]:
        """Count of vectors per rejection code."""
        out: dict[str, int] = {}
        for errs in self.errors:
            for e in errs:
                out[e] = out.get(e, 0) + 1
        return out


def check_schema(frame: pd.DataFrame, config: ValidationConfig) -> None:
    """Raise :class:`FeatureValidationError` on missing key/feature columns or bad dtypes."""
    missing = [c for c in (*KEY_COLUMNS, *config.names) if c not in frame.columns]
    if missing:
        raise FeatureValidationError(f"feature frame lacks columns {missing}")
    for name in config.names:
        dtype = frame[name].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)):
            raise FeatureValidationError(f"feature {name!r} has non-numeric dtype {dtype}")
    for col in ("date", "known_at"):
        if not pd.api.types.is_datetime64_any_dtype(frame[col].dtype):
            raise FeatureValidationError(f"column {col!r} must be datetime64, got "
                                         f"{frame[col].dtype}")
        if getattr(frame[col].dt, "tz", None) is not None:
            raise FeatureValidationError(f"column {col!r} must be tz-naive UTC")


def validate_vectors(frame: pd.DataFrame, config: ValidationConfig, *,
                     source: str | None = None,
                     now: pd.Timestamp | pd.Series | np.ndarray | None = None,
                     reject_stale: bool | None = None,
                     check: bool = True) -> ValidationResult:
    """Validate feature vectors and score their quality.

    Parameters
    ----------
    frame : pandas.DataFrame, shape (n, 3 + k)
        ``symbol, date, known_at`` (tz-naive; ``known_at`` in UTC) and the configured features.
    config : ValidationConfig
        Specs and thresholds.
    source : str, optional
        Source of the values (for the reliability part); a ``source`` column, when present,
        takes precedence per row, and a ``source_reliability`` column (as stored with each
        vector) over both.
    now : pandas.Timestamp or array-like of shape (n,), optional
        Current time (tz-naive UTC), one for all rows or one per row (point-in-time reads),
        for serving-time freshness; None uses the publication lag
        (see the module docstring).
    reject_stale : bool, optional
        Reject vectors older than ``freshness_critical`` (code ``stale``). Default: only when
        ``now`` is given; offline (backfill) writes keep late-published values and only lose
        freshness score.
    check : bool
        Run :func:`check_schema` first (default). Readers that built the frame from the
        store's own typed columns skip it.

    Returns
    -------
    ValidationResult

    Raises
    ------
    FeatureValidationError
        On schema errors (the whole frame is rejected).
    """
    if check:
        check_schema(frame, config)
    n = len(frame)
    names = config.names
    x = frame[names].to_numpy(dtype=float, na_value=np.nan) if names else np.empty((n, 0))
    nan = np.isnan(x)
    inf = np.isinf(x)
    lo = np.array([-np.inf if s.min is None else s.min for s in config.specs])
    hi = np.array([np.inf if s.max is None else s.max for s in config.specs])
    with np.errstate(invalid="ignore"):
        out_of_range = np.isfinite(x) & ((x < lo) | (x > hi))
    not_nullable = np.array([not s.nullable for s in config.specs], dtype=bool)
    k = max(len(names), 1)
    completeness = 1.0 - nan.sum(axis=1) / k
    validity = 1.0 - (nan | inf | out_of_range).sum(axis=1) / k

    day = frame["date"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(
        "datetime64[ns]")
    known = frame["known_at"].to_numpy(dtype="datetime64[ns]")
    missing_key = pd.isna(frame["symbol"]).to_numpy() | np.isnat(day) | np.isnat(known)
    with np.errstate(invalid="ignore"):
        key_bad = missing_key | (~missing_key & (known < day))
    if now is None:
        age = known - (day + np.timedelta64(config.market_close.value, "ns"))
    elif np.ndim(now) == 0:
        age = np.datetime64(pd.Timestamp(now).value, "ns") - known
    else:
        age = np.asarray(now, dtype="datetime64[ns]") - known
    age_s = np.where(np.isnat(age), np.inf, age.astype("int64") / 1e9).clip(min=0.0)
    crit_s = config.freshness_critical.total_seconds()
    freshness, status = _freshness(age_s, config)

    if "source_reliability" in frame.columns:  # stored with the vector (read path)
        reliability = frame["source_reliability"].to_numpy(dtype=float, na_value=np.nan)
        reliability = np.where(np.isnan(reliability), config.default_reliability, reliability)
    else:
        if "source" in frame.columns:
            src = frame["source"].astype(object).where(frame["source"].notna(), source)
        else:
            src = pd.Series([source] * n, index=frame.index, dtype=object)
        reliability = src.map(lambda s: config.source_reliability.get(s, config.default_reliability)
                              if s is not None else config.default_reliability
                              ).to_numpy(float)

    errors: list[list[str]] = [[] for _ in range(n)]
    checks = (("key", key_bad), ("inf", inf.any(axis=1)),
              ("nan", (nan & not_nullable).any(axis=1)), ("range", out_of_range.any(axis=1)),
              ("incomplete", completeness < config.min_completeness),
              ("stale", (age_s > crit_s) & (now is not None if reject_stale is None
                                            else bool(reject_stale))))
    for code, mask in checks:
        for i in np.flatnonzero(mask):
            errors[i].append(code)
    quality = pd.DataFrame({
        "completeness": completeness, "freshness": freshness,
        "source_reliability": reliability, "validity": validity,
        "quality_score": _score(completeness, freshness, reliability, validity),
        "freshness_status": status}, index=frame.index)
    valid = np.array([not e for e in errors], dtype=bool)
    return ValidationResult(valid=valid, errors=errors, quality=quality)


def _freshness(age_s: np.ndarray, config: ValidationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Freshness part (1 up to the warning age, linear to 0 at the critical age) and status."""
    warn_s = config.freshness_warning.total_seconds()
    crit_s = config.freshness_critical.total_seconds()
    freshness = np.clip((crit_s - age_s) / max(crit_s - warn_s, 1e-9), 0.0, 1.0)
    freshness[age_s <= warn_s] = 1.0
    status = np.where(age_s > crit_s, "critical", np.where(age_s > warn_s, "warning", "ok"))
    return freshness, status


def _score(completeness: np.ndarray, freshness: np.ndarray, reliability: np.ndarray,
           validity: np.ndarray) -> np.ndarray:
    w = QUALITY_WEIGHTS
    return (w["completeness"] * completeness + w["freshness"] * freshness
            + w["source_reliability"] * reliability + w["validity"] * validity)


def serving_quality(values: np.ndarray, known_at: np.ndarray, reliability: np.ndarray,
                    now: np.ndarray, config: ValidationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Quality score and freshness status of stored vectors read at time ``now``.

    The array form of :func:`validate_vectors` for the read path (same formulas, no schema
    check: the values come from the store's typed columns).

    Parameters
    ----------
    values : numpy.ndarray, shape (n, k)
        Feature values in the order of ``config.specs``.
    known_at, now : numpy.ndarray of datetime64[ns], shape (n,)
        When each vector became known, and the time it is read at.
    reliability : numpy.ndarray, shape (n,)
        Stored source reliability (NaN -> ``config.default_reliability``).
    config : ValidationConfig

    Returns
    -------
    quality_score : numpy.ndarray, shape (n,), float in [0, 1]
    freshness_status : numpy.ndarray, shape (n,), ``ok`` / ``warning`` / ``critical``
    """
    k = max(values.shape[1], 1)
    lo = np.array([-np.inf if s.min is None else s.min for s in config.specs])
    hi = np.array([np.inf if s.max is None else s.max for s in config.specs])
    nan = np.isnan(values)
    with np.errstate(invalid="ignore"):
        bad = nan | np.isinf(values) | (np.isfinite(values) & ((values < lo) | (values > hi)))
    completeness = 1.0 - nan.sum(axis=1) / k
    validity = 1.0 - bad.sum(axis=1) / k
    age = np.asarray(now, dtype="datetime64[ns]") - np.asarray(known_at, dtype="datetime64[ns]")
    age_s = np.where(np.isnat(age), np.inf, age.astype("int64") / 1e9).clip(min=0.0)
    freshness, status = _freshness(age_s, config)
    rel = np.where(np.isnan(reliability), config.default_reliability, reliability)
    return _score(completeness, freshness, rel, validity), status
