"""Data quality gates run on the training dataset (features joined with labels) before training.

Each gate measures one property of the dataset and compares it with two thresholds, a
*warning* and a *critical* one (:class:`GateThresholds`, the values below are its defaults).
A critical result stops training (:func:`enforce` raises :class:`QualityGateError` with the
report); a warning is reported and training goes on.

======================  ==================================================  ===============  ===============
gate                    value                                               warning          critical
======================  ==================================================  ===============  ===============
completeness            worst feature's share of non-missing values         < 0.95           < 0.80
outlier_share           worst feature's share of values with |robust z|>10  > 0.01           > 0.05
label_balance           share of positive labels among labelled rows        outside 0.4-0.6  outside 0.3-0.7
label_count             number of labelled rows                             (none)           < 1000
duplicate_rows          extra rows of an already seen (symbol, date)        (none)           > 0
unparseable_dates       rows whose date is missing or not a date            (none)           > 0
future_feature_dates    rows dated after ``as_of``                          (none)           > 0
label_lookahead         labelled rows whose label window ends after as_of   (none)           > 0
calendar_gap            longest run of weekdays missing between two dates   > 10             (none)
======================  ==================================================  ===============  ===============

Robust z-score (outlier gate): ``z = (x - median) / s`` with the robust scale
``s = max(1.4826 MAD, IDR / 2.5631)``, ``MAD = median |x - median|`` and ``IDR = q90 - q10``
(the inter-decile range). Both terms are consistent estimators of the standard deviation under
normality: 1.4826 = 1 / Phi^-1(3/4) (Rousseeuw & Croux, "Alternatives to the median absolute
deviation", JASA 88, 1993; Iglewicz & Hoaglin, "How to Detect and Handle Outliers", ASQC 1993,
who use the same scale in their modified z-score) and 2.5631 = 2 Phi^-1(0.9). The MAD alone
collapses on zero-inflated series: the 3-month change of the Fed funds rate is 0 in most months
of 2009-2015, its MAD is 0.06 pp, and ordinary 1-2 pp easing cycles scored |z| > 10 (7% of
months). The inter-decile term keeps the scale of such series at their ordinary moves while
still breaking down only when more than 10% of the values are corrupt (above the gate's 5%
critical share). Features with a zero scale or at most two distinct values (constant, binary)
are skipped.

Each feature is judged by a rule that fits its kind: a *market-wide* feature (the same value for
every stock on a date: macro regime variables, calendar flags, VIX regime; ``ranked=False`` in
the feature registry) is judged over time, on one value per date, so a date counts once however
many stocks trade on it; a stock-level feature is judged over all its (symbol, date) values.
Thresholds come from the settings (``VFR_GATE_*``, :meth:`GateThresholds.from_settings`).

Look-ahead (temporal gates): a row dated ``t`` is known at the close of ``t``; its label of
horizon ``h`` needs the close of the ``h``-th trading date after ``t`` (:mod:`vfr.ml.labels`),
taken from the dataset's own calendar (its sorted distinct dates). A known label whose window
ends after ``as_of`` could not have been known when training at ``as_of``: look-ahead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.config import HORIZONS
from vfr.errors import DataValidationError, StageError

#: Gate statuses from best to worst.
STATUSES: tuple[str, ...] = ("pass", "warning", "critical")
#: Scale factor of the MAD for a consistent estimate of the normal standard deviation.
MAD_SCALE = 1.4826
#: Divisor of the inter-decile range (q90 - q10) for the same estimate: 2 Phi^-1(0.9).
IDR_DIVISOR = 2.5631
_RESULT_COLUMNS = ["gate", "value", "warning", "critical", "status", "detail"]
_NO_THRESHOLD = "-"


@dataclass(frozen=True)
class GateThresholds:
    """Thresholds of the quality gates (data, not code: build another to change them).

    Parameters
    ----------
    completeness_warning, completeness_critical : float
        Minimum share (0..1) of non-missing values of every feature; below the warning
        value the gate warns, below the critical value it fails. Defaults 0.95 and 0.80.
    outlier_z : float
        |robust z| above which a value is an outlier (default 10).
    outlier_warning, outlier_critical : float
        Maximum share (0..1) of outliers of every feature; above it the gate warns / fails.
        Defaults 0.01 and 0.05.
    balance_warning, balance_critical : tuple of 2 floats
        Closed ranges (0..1) the share of positive labels must stay inside; outside the
        warning range it warns, outside the critical range it fails. Defaults (0.40, 0.60)
        and (0.30, 0.70).
    min_labelled_rows : int
        Fewer labelled rows than this fail the ``label_count`` gate (default 1000).
    max_gap_business_days : int
        A run of more missing weekdays than this between two consecutive dates of the
        dataset warns (default 10; weekends never count, exchange holidays do).

    Raises
    ------
    ValueError
        If a share is outside [0, 1], a critical threshold is less strict than its warning
        one (e.g. ``completeness_critical > completeness_warning``, or balance ranges that do
        not nest), ``outlier_z <= 0``, or a count is negative.
    """

    completeness_warning: float = 0.95
    completeness_critical: float = 0.80
    outlier_z: float = 10.0
    outlier_warning: float = 0.01
    outlier_critical: float = 0.05
    balance_warning: tuple[float, float] = (0.40, 0.60)
    balance_critical: tuple[float, float] = (0.30, 0.70)
    min_labelled_rows: int = 1000
    max_gap_business_days: int = 10

    @classmethod
    def from_settings(cls, settings: Any) -> GateThresholds:
        """Thresholds from a :class:`vfr.config.Settings` (``VFR_GATE_*`` variables).

        Raises
        ------
        ValueError
            As the constructor, naming the setting at fault.
        """
        return cls(completeness_warning=settings.gate_completeness_warning,
                   completeness_critical=settings.gate_completeness_critical,
                   outlier_z=settings.gate_outlier_z, outlier_warning=settings.gate_outlier_warning,
                   outlier_critical=settings.gate_outlier_critical,
                   balance_warning=tuple(settings.gate_balance_warning),
                   balance_critical=tuple(settings.gate_balance_critical),
                   min_labelled_rows=settings.gate_min_labelled_rows,
                   max_gap_business_days=settings.gate_max_gap_business_days)

    def __post_init__(self) -> None:
        shares = {"completeness_warning": self.completeness_warning,
                  "completeness_critical": self.completeness_critical,
                  "outlier_warning": self.outlier_warning, "outlier_critical": self.outlier_critical,
                  "balance_warning[0]": self.balance_warning[0], "balance_warning[1]": self.balance_warning[1],
                  "balance_critical[0]": self.balance_critical[0],
                  "balance_critical[1]": self.balance_critical[1]}
        for name, v in shares.items():
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"GateThresholds.{name} must be a share in [0, 1], got {v!r}")
        if self.completeness_critical > self.completeness_warning:
            raise ValueError("GateThresholds: completeness_critical must be <= completeness_warning, got "
                             f"{self.completeness_critical} > {self.completeness_warning}")
        if self.outlier_critical < self.outlier_warning:
            raise ValueError("GateThresholds: outlier_critical must be >= outlier_warning, got "
                             f"{self.outlier_critical} < {self.outlier_warning}")
        (cl, ch), (wl, wh) = self.balance_critical, self.balance_warning
        if not cl <= wl <= wh <= ch:
            raise ValueError("GateThresholds: balance ranges must nest, critical low <= warning low <= "
                             f"warning high <= critical high; got critical {self.balance_critical}, "
                             f"warning {self.balance_warning}")
        if not self.outlier_z > 0:
            raise ValueError(f"GateThresholds.outlier_z must be > 0, got {self.outlier_z!r}")
        if self.min_labelled_rows < 0 or self.max_gap_business_days < 0:
            raise ValueError("GateThresholds: min_labelled_rows and max_gap_business_days must be >= 0, got "
                             f"{self.min_labelled_rows} and {self.max_gap_business_days}")


class QualityGateError(StageError):
    """Training stopped because a quality gate failed.

    Parameters
    ----------
    message : str
        Names each failed gate with its value and threshold.
    report : QualityReport
        The full report (``report.to_markdown()`` is what a person reads).
    """

    def __init__(self, message: str, report: QualityReport) -> None:
        super().__init__(message)
        self.report = report
        self.report_path: Path | str | None = None  # where the report was written (set by the caller)


@dataclass(frozen=True, eq=False)
class QualityReport:
    """Result of :func:`run_quality_gates`.

    Attributes
    ----------
    results : DataFrame of shape (n_gates, 6)
        Columns ``gate``, ``value`` (float; NaN when not measurable), ``warning`` and
        ``critical`` (the threshold as a condition, e.g. ``"< 0.95"``; ``"-"`` when the gate
        has no such level), ``status`` (``pass``, ``warning``, ``critical``) and ``detail``.
    label : str
        Label column checked.
    horizon_days : int
        Label horizon in trading days.
    as_of : pandas.Timestamp or None
        Training time the temporal gates used (the dataset's last date when not given).
    n_rows, n_labelled : int
        Rows of the dataset and rows with a known label.
    """

    results: pd.DataFrame
    label: str
    horizon_days: int
    as_of: pd.Timestamp | None
    n_rows: int
    n_labelled: int
    as_of_given: bool = field(default=False)

    @property
    def status(self) -> str:
        """The worst gate status (``pass`` when there are no gates)."""
        if not len(self.results):
            return "pass"
        return STATUSES[max(STATUSES.index(s) for s in self.results["status"])]

    @property
    def passed(self) -> bool:
        """True when no gate is critical (warnings do not stop training)."""
        return self.status != "critical"

    def failed(self, level: str = "critical") -> pd.DataFrame:
        """Rows of :attr:`results` at ``level`` or worse (``warning`` or ``critical``)."""
        if level not in STATUSES[1:]:
            raise ValueError(f"level must be 'warning' or 'critical', got {level!r}")
        worst = {s: STATUSES.index(s) for s in STATUSES}
        mask = self.results["status"].map(worst) >= worst[level]
        return self.results[mask]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: status, passed, context and one record per gate (NaN -> None)."""
        gates = []
        for rec in self.results.to_dict("records"):
            gates.append({k: _json_scalar(v) for k, v in rec.items()})
        return {
            "status": self.status, "passed": self.passed, "label": self.label,
            "horizon_days": int(self.horizon_days),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "as_of_given": bool(self.as_of_given),
            "n_rows": int(self.n_rows), "n_labelled": int(self.n_labelled), "gates": gates,
        }

    def to_markdown(self) -> str:
        """A readable Markdown report: verdict, context and the gates table."""
        verdict = {"pass": "PASSED", "warning": "PASSED WITH WARNINGS", "critical": "FAILED"}[self.status]
        as_of = "n/a" if self.as_of is None else self.as_of.date().isoformat()
        lines = [
            f"# Data quality report: {verdict}",
            "",
            f"- label: `{self.label}` (horizon {self.horizon_days} trading days)",
            f"- rows: {self.n_rows} ({self.n_labelled} labelled)",
            f"- as of: {as_of}" + ("" if self.as_of_given else " (last date of the dataset)"),
            "",
        ]
        if self.status == "critical":
            lines += [("Training was stopped by the critical gates below; fix the data (or, when the "
                       "data are right, the thresholds) and run again."), ""]
        lines += ["| gate | status | value | warning | critical | detail |",
                  "|---|---|---|---|---|---|"]
        for r in self.results.itertuples(index=False):
            mark = {"pass": "pass", "warning": "**warning**", "critical": "**CRITICAL**"}[r.status]
            detail = str(r.detail).replace("|", "\\|")
            lines.append(f"| {r.gate} | {mark} | {_fmt(r.value)} | {r.warning} | {r.critical} | {detail} |")
        return "\n".join(lines) + "\n"


def _json_scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if float(v).is_integer() and abs(v) >= 1:
        return str(int(v))
    return f"{v:.4g}"


def _row(gate: str, value: float, warning: str, critical: str, status: str, detail: str) -> dict[str, Any]:
    return {"gate": gate, "value": float(value), "warning": warning, "critical": critical,
            "status": status, "detail": detail}


# -- feature gates -------------------------------------------------------------------------
class _FeatureColumns(Mapping[str, np.ndarray]):
    """Feature columns as float64 arrays, converted when read (one at a time: a dict of every
    column in float64 would double the dataset's memory)."""

    def __init__(self, dataset: pd.DataFrame, columns: Sequence[str]) -> None:
        for c in columns:
            dtype = dataset[c].dtype
            if dtype != np.dtype(bool) and not pd.api.types.is_numeric_dtype(dtype):
                raise DataValidationError(f"feature column is not numeric (dtype {dtype})", column=c)
        self._dataset, self._columns = dataset, list(columns)

    def __getitem__(self, c: str) -> np.ndarray:
        if c not in self._columns:
            raise KeyError(c)
        s = self._dataset[c]
        if s.dtype == bool:
            s = s.astype(float)
        return s.to_numpy(dtype=np.float64, na_value=np.nan)

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __contains__(self, c: object) -> bool:
        return c in self._columns

    def __len__(self) -> int:
        return len(self._columns)


def _feature_matrix(dataset: pd.DataFrame, columns: Sequence[str]) -> Mapping[str, np.ndarray]:
    return _FeatureColumns(dataset, columns)


def completeness_gate(values: Mapping[str, np.ndarray], thresholds: GateThresholds,
                      exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Worst feature's share of non-missing values.

    Parameters
    ----------
    values : mapping of str to ndarray of shape (n_rows,)
        Feature values as float64 (NaN = missing), read one feature at a time.
    thresholds : GateThresholds
    exclude : iterable of str
        Structurally sparse features left out of the gate.

    Returns
    -------
    dict
        One row of the results table; ``detail`` lists the 5 least complete features.
    """
    excluded = [c for c in dict.fromkeys(exclude) if c in values]
    skip = set(excluded)
    shares = pd.Series({c: float(np.mean(~np.isnan(v))) if len(v) else float("nan")
                        for c, v in values.items() if c not in skip}, dtype=float)
    warn, crit = f"< {thresholds.completeness_warning:g}", f"< {thresholds.completeness_critical:g}"
    suffix = f"; excluded: {', '.join(excluded)}" if excluded else ""
    if shares.empty:
        return _row("completeness", float("nan"), warn, crit, "pass", "no feature checked" + suffix)
    shares = shares.sort_values(kind="stable")
    worst = float(shares.iloc[0])
    if not worst >= thresholds.completeness_critical:  # NaN (no rows) is critical too
        status = "critical"
    elif worst < thresholds.completeness_warning:
        status = "warning"
    else:
        status = "pass"
    detail = "worst: " + ", ".join(f"{c} {s:.4f}" for c, s in shares.head(5).items()) + suffix
    return _row("completeness", worst, warn, crit, status, detail)


def robust_scale(x: np.ndarray) -> float:
    """Robust standard deviation ``max(1.4826 MAD, (q90 - q10) / 2.5631)`` of finite values.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Values (NaN and +-inf are ignored).

    Returns
    -------
    float
        The scale (same unit as ``x``); NaN when there is no finite value, 0 when both terms
        are 0 (at least 90% of the values are equal). See the module docstring for why the
        inter-decile term is there.
    """
    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return float("nan")
    med = np.median(finite)
    mad = float(np.median(np.abs(finite - med)))
    q10, q90 = np.quantile(finite, [0.10, 0.90])
    return max(MAD_SCALE * mad, float(q90 - q10) / IDR_DIVISOR)


def robust_z(x: np.ndarray) -> np.ndarray:
    """Robust z-scores ``(x - median) / robust_scale(x)`` of the values of ``x``.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Values (NaN and +-inf are ignored when estimating the median and the scale).

    Returns
    -------
    ndarray of shape (n,)
        z-scores (NaN where ``x`` is NaN, +-inf where ``x`` is infinite); all NaN when the
        scale is 0 or there are no finite values (no robust scale).
    """
    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.full(x.shape, np.nan)
    scale = robust_scale(finite)
    if not scale > 0:
        return np.full(x.shape, np.nan)
    with np.errstate(invalid="ignore"):
        return (x - np.median(finite)) / scale


def outlier_gate(values: Mapping[str, np.ndarray], thresholds: GateThresholds,
                 market_wide: Iterable[str] = (), dates: np.ndarray | None = None) -> dict[str, Any]:
    """Worst feature's share of values with ``|robust z| > thresholds.outlier_z``.

    Infinite values count as outliers. Features with at most 2 distinct values or no robust
    scale are skipped (listed in ``detail``). The share is over each feature's non-missing
    values; for a ``market_wide`` feature, over its dates (one value per date: the first
    non-missing one), so it is judged over time, not across stocks.

    Parameters
    ----------
    values : mapping of str to ndarray of shape (n_rows,)
        Feature values as float64 (NaN = missing), read one feature at a time.
    thresholds : GateThresholds
    market_wide : iterable of str
        Features with one value per date for every stock.
    dates : ndarray of shape (n_rows,), optional
        Row dates; required when ``market_wide`` names a feature of ``values``.

    Returns
    -------
    dict
        One row of the results table; ``detail`` names the worst features with their share,
        the limit and, for market-wide ones, the number of dates judged.
    """
    warn, crit = f"> {thresholds.outlier_warning:g}", f"> {thresholds.outlier_critical:g}"
    wide = {c for c in market_wide if c in values}
    if wide and dates is None:
        raise ValueError("outlier_gate: dates are required to judge market-wide features over time")
    shares: dict[str, float] = {}
    counts: dict[str, str] = {}
    skipped: list[str] = []
    for c, v in values.items():
        if c in wide:
            per_date = pd.Series(v).groupby(np.asarray(dates), sort=False).first()
            v = per_date.to_numpy(dtype=np.float64)
            counts[c] = f" over {int(np.sum(~np.isnan(v)))} dates"
        present = v[~np.isnan(v)]
        if present.size == 0:
            continue
        finite = present[np.isfinite(present)]
        z = robust_z(present)
        if np.unique(finite).size <= 2 or np.isnan(z).all():
            skipped.append(c)
            continue
        shares[c] = float(np.mean(np.abs(z) > thresholds.outlier_z))
    skip = f"; skipped (no robust scale or binary): {', '.join(skipped[:10])}" + \
        (" ..." if len(skipped) > 10 else "") if skipped else ""
    if not shares:
        return _row("outlier_share", float("nan"), warn, crit, "pass", "no feature with a robust scale" + skip)
    s = pd.Series(shares).sort_values(ascending=False, kind="stable")
    worst = float(s.iloc[0])
    status = ("critical" if worst > thresholds.outlier_critical
              else "warning" if worst > thresholds.outlier_warning else "pass")
    limit = {"critical": f" > {thresholds.outlier_critical:g} (critical)",
             "warning": f" > {thresholds.outlier_warning:g} (warning)", "pass": ""}
    top = []
    for c, v in s.head(5).items():
        lvl = ("critical" if v > thresholds.outlier_critical else "warning" if v > thresholds.outlier_warning
               else "pass")
        top.append(f"{c} {v:.4f}{limit[lvl]}{counts.get(c, '')}")
    detail = f"|z| > {thresholds.outlier_z:g}; worst: " + ", ".join(top) + skip
    return _row("outlier_share", worst, warn, crit, status, detail)


# -- label gates ---------------------------------------------------------------------------
def label_gates(labels: pd.Series, thresholds: GateThresholds) -> list[dict[str, Any]]:
    """``label_balance`` (share of labels > 0 among known ones) and ``label_count``."""
    y = pd.to_numeric(labels, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    known = y[~np.isnan(y)]
    n = int(known.size)
    (cl, ch), (wl, wh) = thresholds.balance_critical, thresholds.balance_warning
    warn, crit = f"outside [{wl:g}, {wh:g}]", f"outside [{cl:g}, {ch:g}]"
    if n == 0:
        balance = _row("label_balance", float("nan"), warn, crit, "critical", "no labelled row")
    else:
        share = float(np.mean(known > 0))
        status = ("critical" if not cl <= share <= ch else "warning" if not wl <= share <= wh else "pass")
        balance = _row("label_balance", share, warn, crit, status,
                       f"{int(np.sum(known > 0))} positive of {n} labelled rows")
    count_status = "critical" if n < thresholds.min_labelled_rows else "pass"
    count = _row("label_count", float(n), _NO_THRESHOLD, f"< {thresholds.min_labelled_rows}", count_status,
                 f"{n} labelled of {len(y)} rows")
    return [balance, count]


# -- temporal gates ------------------------------------------------------------------------
def _naive(ts: pd.Series | pd.Timestamp) -> Any:
    """Tz-naive UTC view of a timestamp or datetime series."""
    if isinstance(ts, pd.Timestamp):
        return ts.tz_convert("UTC").tz_localize(None) if ts.tz is not None else ts
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        return ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts


def parse_dates(dates: pd.Series) -> pd.Series:
    """Dates as tz-naive ``datetime64``; values that are missing or not dates become NaT."""
    if pd.api.types.is_datetime64_any_dtype(dates.dtype):
        return _naive(dates)
    kwargs: dict[str, Any] = {"errors": "coerce"}
    if dates.dtype == object or pd.api.types.is_string_dtype(dates.dtype):
        kwargs["format"] = "mixed"
    parsed = pd.to_datetime(dates, **kwargs)
    return _naive(parsed)


def label_window_ends(dates: pd.Series, horizon_days: int) -> pd.Series:
    """Date of the close each row's label needs: the ``horizon_days``-th date after its date.

    Parameters
    ----------
    dates : Series of datetime64 of shape (n_rows,)
        Row dates (no NaT); their sorted distinct values are the trading calendar.
    horizon_days : int
        Label horizon in trading days (>= 1).

    Returns
    -------
    Series of datetime64 of shape (n_rows,)
        The window end per row. Past the calendar's last date the end is extrapolated in
        business days (Mon-Fri) from that date: a lower bound of the real trading date,
        exact in sign against any ``as_of`` on or before the last date.
    """
    cal = np.unique(dates.to_numpy(dtype="datetime64[ns]"))
    pos = np.searchsorted(cal, dates.to_numpy(dtype="datetime64[ns]")) + int(horizon_days)
    inside = pos < cal.size
    end = np.empty(len(dates), dtype="datetime64[ns]")
    end[inside] = cal[pos[inside]]
    if (~inside).any():
        last = cal[-1].astype("datetime64[D]")
        extra = pos[~inside] - (cal.size - 1)
        end[~inside] = np.busday_offset(last, extra, roll="forward").astype("datetime64[ns]")
    return pd.Series(end, index=dates.index)


def _examples(frame: pd.DataFrame, k: int = 3) -> str:
    return ", ".join(f"({s}, {pd.Timestamp(d).date()})" for s, d in
                     frame[["symbol", "date"]].head(k).itertuples(index=False, name=None))


def temporal_gates(dataset: pd.DataFrame, label: str, horizon_days: int, as_of: pd.Timestamp | None,
                   thresholds: GateThresholds) -> tuple[list[dict[str, Any]], pd.Timestamp | None]:
    """Duplicate keys, unparseable dates, future feature dates, label look-ahead and gaps.

    Returns
    -------
    rows : list of dict
        Five rows of the results table.
    as_of : pandas.Timestamp or None
        The training time used: the given one, else the last valid date (None if none).
    """
    rows = []
    dates = parse_dates(dataset["date"])
    bad = dates.isna().to_numpy()
    rows.append(_row("unparseable_dates", float(bad.sum()), _NO_THRESHOLD, "> 0",
                     "critical" if bad.any() else "pass",
                     (f"{int(bad.sum())} rows, first at positions {np.flatnonzero(bad)[:3].tolist()}: "
                      f"{dataset['date'][bad].head(3).tolist()}") if bad.any() else "all dates parse"))
    frame = pd.DataFrame({"symbol": dataset["symbol"].to_numpy(), "date": dates.to_numpy(),
                          "label": dataset[label].to_numpy()}).loc[~bad]
    dup = frame.duplicated(["symbol", "date"], keep="first").to_numpy()
    rows.append(_row("duplicate_rows", float(dup.sum()), _NO_THRESHOLD, "> 0",
                     "critical" if dup.any() else "pass",
                     f"{int(dup.sum())} repeated (symbol, date) rows, e.g. {_examples(frame[dup])}" if dup.any()
                     else "every (symbol, date) once"))
    if frame.empty:
        for g in ("future_feature_dates", "label_lookahead"):
            rows.append(_row(g, float("nan"), _NO_THRESHOLD, "> 0", "critical", "no row with a valid date"))
        rows.append(_row("calendar_gap", float("nan"), f"> {thresholds.max_gap_business_days}", _NO_THRESHOLD,
                         "pass", "no dates"))
        return rows, as_of
    if as_of is None:
        as_of = pd.Timestamp(frame["date"].max())
    future = (frame["date"] > as_of).to_numpy()
    rows.append(_row("future_feature_dates", float(future.sum()), _NO_THRESHOLD, "> 0",
                     "critical" if future.any() else "pass",
                     (f"{int(future.sum())} rows dated after as_of {as_of.date()}, latest "
                      f"{frame['date'][future].max().date()}, e.g. {_examples(frame[future])}") if future.any()
                     else f"no row after {as_of.date()}"))
    known = frame["label"].notna().to_numpy()
    ends = label_window_ends(frame["date"], horizon_days)
    leak = known & (ends > as_of).to_numpy()
    if leak.any():
        leaked = frame[leak].assign(end=ends[leak])
        detail = (f"{int(leak.sum())} labelled rows need closes after as_of {as_of.date()} "
                  f"(horizon {horizon_days} dates; latest window end {leaked['end'].max().date()}), "
                  f"rows from {leaked['date'].min().date()} to {leaked['date'].max().date()}, "
                  f"e.g. {_examples(leaked)}")
    else:
        detail = f"every known label ends on or before {as_of.date()}"
    rows.append(_row("label_lookahead", float(leak.sum()), _NO_THRESHOLD, "> 0",
                     "critical" if leak.any() else "pass", detail))
    cal = np.unique(frame["date"].to_numpy(dtype="datetime64[D]"))
    if cal.size >= 2:
        missing = np.busday_count(cal[:-1], cal[1:]) - 1
        missing = np.maximum(missing, 0)
        k = int(np.argmax(missing))
        gap = int(missing[k])
        detail = f"longest: {gap} weekdays missing between {cal[k]} and {cal[k + 1]}"
    else:
        gap, detail = 0, "fewer than 2 dates"
    rows.append(_row("calendar_gap", float(gap), f"> {thresholds.max_gap_business_days}", _NO_THRESHOLD,
                     "warning" if gap > thresholds.max_gap_business_days else "pass", detail))
    return rows, as_of


def _check_horizon(label: str, horizon_days: int) -> None:
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int | np.integer) or horizon_days < 1:
        raise ValueError(f"run_quality_gates: horizon_days must be a positive integer, got {horizon_days!r}")
    for name, days in HORIZONS.items():
        if label.startswith("fwd_") and label.endswith(f"_{name}") and days != horizon_days:
            raise ValueError(f"run_quality_gates: label {label!r} is the {name} horizon ({days} trading days) "
                             f"but horizon_days={horizon_days}")


def run_quality_gates(dataset: pd.DataFrame, *, feature_columns: Sequence[str], label: str,
                      horizon_days: int, as_of: Any = None, thresholds: GateThresholds = GateThresholds(),
                      exclude_completeness: Iterable[str] = (), market_wide: Iterable[str] = ()) -> QualityReport:
    """Run every quality gate on a training dataset.

    Parameters
    ----------
    dataset : DataFrame of shape (n_rows, >= 3)
        Features joined with labels (:func:`vfr.ml.build_dataset`): ``symbol``, ``date``
        (trading day; a value dated ``t`` is known at the close of ``t``), the feature
        columns and ``label``. Rows without a known label (NaN) are allowed.
    feature_columns : sequence of str
        Model inputs checked by the completeness and outlier gates (numeric).
    label : str
        Label column, e.g. ``fwd_dir_1w`` (a positive label is a value > 0).
    horizon_days : int
        Label horizon in trading days (e.g. 5 for ``1w``).
    as_of : timestamp-like, optional
        When training happens; data dated on ``as_of`` count as known. Default: the last
        date of the dataset (then only label look-ahead inside the data can be found).
    thresholds : GateThresholds
        Gate thresholds (defaults in the module docstring).
    exclude_completeness : iterable of str
        Structurally sparse features left out of the completeness gate (still checked for
        outliers).
    market_wide : iterable of str
        Features with the same value for every stock on a date: the outlier gate judges them
        over time, one value per date (:func:`outlier_gate`).

    Returns
    -------
    QualityReport
        Nine gates: completeness, outlier_share, label_balance, label_count,
        unparseable_dates, duplicate_rows, future_feature_dates, label_lookahead,
        calendar_gap.

    Raises
    ------
    DataValidationError
        If ``symbol``, ``date``, ``label`` or a feature column is missing, or a feature
        column is not numeric (the message names the column).
    ValueError
        If ``feature_columns`` is empty, ``horizon_days`` is not a positive integer or does
        not match the horizon in the label's name, or ``as_of`` is not a date.
    """
    feature_columns = list(feature_columns)
    if not feature_columns:
        raise ValueError("run_quality_gates: feature_columns is empty")
    _check_horizon(label, horizon_days)
    for col in ["symbol", "date", label, *feature_columns]:
        if col not in dataset.columns:
            raise DataValidationError("column missing from the training dataset", column=col)
    as_of_ts: pd.Timestamp | None = None
    if as_of is not None:
        try:
            as_of_ts = _naive(pd.Timestamp(as_of))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"run_quality_gates: as_of {as_of!r} is not a date") from exc
        if as_of_ts is pd.NaT:
            raise ValueError(f"run_quality_gates: as_of {as_of!r} is not a date")
    values = _feature_matrix(dataset, feature_columns)
    wide = [c for c in market_wide if c in values]
    dates = parse_dates(dataset["date"]).to_numpy() if wide else None
    rows = [completeness_gate(values, thresholds, exclude_completeness),
            outlier_gate(values, thresholds, wide, dates)]
    rows += label_gates(dataset[label], thresholds)
    temporal, used_as_of = temporal_gates(dataset, label, int(horizon_days), as_of_ts, thresholds)
    rows += temporal
    results = pd.DataFrame(rows, columns=_RESULT_COLUMNS)
    return QualityReport(results=results, label=label, horizon_days=int(horizon_days), as_of=used_as_of,
                         n_rows=len(dataset), n_labelled=int(dataset[label].notna().sum()),
                         as_of_given=as_of is not None)


def enforce(report: QualityReport, *, fail_on: str = "critical") -> QualityReport:
    """Stop training when a gate failed.

    Parameters
    ----------
    report : QualityReport
    fail_on : {'critical', 'warning'}
        Lowest status that stops training (default: only critical gates).

    Returns
    -------
    QualityReport
        ``report`` itself, when no gate is at ``fail_on`` or worse.

    Raises
    ------
    QualityGateError
        Naming each failed gate with its value and threshold; ``.report`` holds the report.
    ValueError
        If ``fail_on`` is not ``critical`` or ``warning``.
    """
    failed = report.failed(fail_on)
    if failed.empty:
        return report
    parts = []
    for r in failed.itertuples(index=False):
        threshold = r.critical if r.status == "critical" else r.warning
        parts.append(f"{r.gate} = {_fmt(r.value)} ({r.status}: {threshold}; {r.detail})")
    msg = (f"data quality gates failed for label {report.label!r} ({len(parts)} gate"
           f"{'s' if len(parts) > 1 else ''}): " + "; ".join(parts))
    raise QualityGateError(msg, report)


def partial_coverage(columns: list[str]) -> tuple[str, ...]:
    """Features exempt from the completeness gate: all but those complete by construction.

    Technical features, the market-derived sentiment of prices and volumes, and macro series
    cover every row when their inputs are stored, after a warm-up shorter than a year; the
    stock-level ones whose window is a year or more (the 52-week level, market beta, the
    36-month rate beta and the regime tilts) miss each stock's first year(s), a share that
    depends only on how long the data are, so they are partial by construction (market-wide
    macro values warm up on the macro series' own longer history); features built from reports, sectors or other
    sparse inputs (fundamental, alternative, interaction, earnings/VIX sentiment) are partial
    by nature (LightGBM handles the gaps).
    """
    from vfr.features import ALL_FEATURES

    complete = {f.name for f in ALL_FEATURES
                if f.group in ("technical", "macro") and (f.window < 252 or not f.ranked)} | {
        "msent_abnormal_volume", "msent_reversal_5d"}
    return tuple(c for c in columns if c.removesuffix("_rank") not in complete)


def market_wide(columns: Iterable[str]) -> tuple[str, ...]:
    """Features of ``columns`` with one value per date for every stock (``ranked=False``).

    They are judged over time by the outlier gate (:func:`outlier_gate`).
    """
    from vfr.features import ALL_FEATURES

    wide = {f.name for f in ALL_FEATURES if not f.ranked}
    return tuple(c for c in columns if c in wide)


@dataclass(frozen=True, eq=False)
class GatedData:
    """A training dataset that went through the gates: what to train on and what was found."""

    dataset: pd.DataFrame
    feature_columns: tuple[str, ...]
    report: QualityReport
    notes: tuple[str, ...]


def gate_training_data(features: pd.DataFrame, labels: pd.DataFrame, *, horizon: str,
                       feature_columns: tuple[str, ...] | None = None, as_of: pd.Timestamp | None = None,
                       exclude_completeness: tuple[str, ...] | None = None,
                       thresholds: GateThresholds | None = None) -> GatedData:
    """Build the training dataset, leave out empty features, and run the quality gates.

    Parameters
    ----------
    features, labels : DataFrame
        Canonical features frame and :func:`vfr.ml.make_labels` output.
    horizon : str
        Label horizon (``1w``...).
    feature_columns : tuple of str, optional
        Model inputs; default every feature column except those with no value at all (their
        inputs are not stored, e.g. no earnings file): those are named in ``notes``.
    as_of : Timestamp, optional
        Training date; default the features' last date.
    exclude_completeness : tuple of str, optional
        Default :func:`partial_coverage` of the columns.
    thresholds : GateThresholds, optional
        Default :class:`GateThresholds` (callers with settings pass
        ``GateThresholds.from_settings(settings)``).

    Returns
    -------
    GatedData
        Call :func:`enforce` on ``report`` to stop on a critical gate.
    """
    from vfr.ml.dataset import build_dataset

    dataset = build_dataset(features, labels, horizon, validate=False)
    notes = []
    cols = list(feature_columns or [c for c in features.columns if c not in ("symbol", "date")])
    if feature_columns is None:
        empty = [c for c in cols if features[c].isna().all()]
        if empty:
            cols = [c for c in cols if c not in empty]
            notes.append(f"left out {len(empty)} features with no values (their inputs are not stored): "
                         f"{', '.join(empty)}")
    day = as_of if as_of is not None else features["date"].max()
    exempt = partial_coverage(cols) if exclude_completeness is None else exclude_completeness
    report = run_quality_gates(dataset, feature_columns=cols, label=f"fwd_dir_{horizon}",
                               horizon_days=HORIZONS[horizon], as_of=day, exclude_completeness=exempt,
                               thresholds=thresholds or GateThresholds(), market_wide=market_wide(cols))
    return GatedData(dataset=dataset, feature_columns=tuple(cols), report=report, notes=tuple(notes))
