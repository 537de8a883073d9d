"""Readers of the canonical earnings and macro tables (files of the development set or a
provider's output mapped into the same layout).

Canonical *earnings* frame (one row per symbol and fiscal quarter, sorted by symbol,
fiscal_date_ending; RangeIndex):

| column | unit |
| --- | --- |
| symbol | ticker |
| fiscal_date_ending | end of the fiscal quarter (datetime64[ns]) |
| reported_date | day the result was published (datetime64[ns]) |
| reported_eps, estimated_eps, surprise | USD per share (split-adjusted as of the data date) |
| surprise_pct | surprise / abs(estimated_eps) x 100, percent |
| report_time | ``pre-market`` / ``post-market`` (unreliable before 2015) |

Canonical *ratios* frame (one row per symbol and fiscal period end; provider balance-sheet and
margin ratios, e.g. from SEC EDGAR company facts):

| column | unit |
| --- | --- |
| symbol | ticker |
| period_end | end of the fiscal quarter (datetime64[ns]) |
| available_date | first day the row may be used: the day after its filing (datetime64[ns]) |
| roe, debt_to_equity, gross_margin, operating_margin, net_margin | fractions (NaN = not reported, never 0) |

Canonical *macro* data (:class:`MacroData`): the FRED-MD monthly table (``month`` = first
day of the observed month, one column per series), daily VIX (``date``, ``close``) and
quarterly GDP (``date`` = quarter start, ``level-current``, ``level-chained`` in billions of
USD).

Publication lags (what is known when) are applied by the feature builders, not here:
earnings are usable after ``reported_date``, a FRED-MD month from the first day of the second
month after it, a GDP quarter 30 days after it ends (see :mod:`vfr.features.macro`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from vfr.errors import DataValidationError

#: Columns of the canonical earnings frame, in order.
EARNINGS_COLUMNS: tuple[str, ...] = ("symbol", "fiscal_date_ending", "reported_date",
                                     "reported_eps", "estimated_eps", "surprise",
                                     "surprise_pct", "report_time")

#: Reports published fewer than this many days after their fiscal quarter ended carry a bad
#: date in the development set (about 1% of rows); they are dropped.
MIN_REPORT_GAP_DAYS = 5

#: Columns of the canonical ratios frame, in order (the ratios are :data:`RATIO_COLUMNS`).
RATIO_COLUMNS: tuple[str, ...] = ("roe", "debt_to_equity", "gross_margin", "operating_margin", "net_margin")
RATIOS_COLUMNS: tuple[str, ...] = ("symbol", "period_end", "available_date", *RATIO_COLUMNS)

#: FRED-MD series the macro features use.
FRED_MD_SERIES: tuple[str, ...] = ("FEDFUNDS", "UNRATE", "CPIAUCSL", "GS10", "TB3MS", "AAA",
                                   "BAA", "TWEXAFEGSMTHx")


@dataclass(frozen=True)
class MacroData:
    """The three macro inputs of :func:`vfr.features.macro.macro_features`.

    Attributes
    ----------
    fred_md : pandas.DataFrame
        ``month`` (first day of the observed month) and one float column per FRED-MD series
        (at least :data:`FRED_MD_SERIES`); latest revised values.
    vix : pandas.DataFrame or None
        ``date`` (trading day) and ``close`` (VIX index points, known at that day's close).
    gdp : pandas.DataFrame or None
        ``date`` (quarter start), ``level-chained`` (real GDP, billions of chained 2017 USD)
        and optionally ``level-current`` (nominal, billions of USD).
    """

    fred_md: pd.DataFrame
    vix: pd.DataFrame | None = None
    gdp: pd.DataFrame | None = None


def _read_frame(path: Path, what: str) -> pd.DataFrame:
    """``path`` read as csv (``.csv``) or Parquet; an unreadable file raises
    :class:`DataValidationError` naming it and the problem on one line."""
    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:  # parser, encoding, not Parquet, ...
        reason = " ".join(str(exc).split()) or type(exc).__name__
        kind = "csv" if path.suffix.lower() == ".csv" else "Parquet"
        raise DataValidationError(f"cannot read the {what} file as {kind}: {reason}", source=str(path)) from None


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str, source: str | None) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{what} lacks required column(s) {', '.join(map(repr, missing))}; found "
                                  f"{sorted(map(str, frame.columns))}", source=source)


def clean_earnings(frame: pd.DataFrame, *,
                   min_gap_days: int = MIN_REPORT_GAP_DAYS, source: str | None = None) -> pd.DataFrame:
    """Validate and normalise an earnings frame into the canonical layout.

    Parameters
    ----------
    frame : pandas.DataFrame
        At least ``symbol, fiscal_date_ending, reported_date, reported_eps``; the other
        canonical columns are added as NaN / ``None`` when absent (``surprise`` and
        ``surprise_pct`` are derived from the EPS pair when missing).
    min_gap_days : int
        Rows whose ``reported_date - fiscal_date_ending`` is under this many days, or whose
        dates are missing, are dropped (bad dates).
    source : str, optional
        File the frame was read from (named in errors).

    Returns
    -------
    pandas.DataFrame
        Canonical earnings frame, one row per (symbol, fiscal_date_ending) (the earliest
        report kept on duplicates), sorted by symbol, fiscal_date_ending.

    Raises
    ------
    DataValidationError
        If a required column is missing.
    """
    _require(frame, ("symbol", "fiscal_date_ending", "reported_date", "reported_eps"), "earnings frame", source)
    out = pd.DataFrame({"symbol": frame["symbol"].astype(str).to_numpy()})
    for col in ("fiscal_date_ending", "reported_date"):
        out[col] = pd.to_datetime(frame[col].to_numpy(), errors="coerce").astype("datetime64[ns]")
    for col in ("reported_eps", "estimated_eps", "surprise", "surprise_pct"):
        out[col] = (pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
                    if col in frame.columns else np.nan)
    derived = out["reported_eps"] - out["estimated_eps"]
    out["surprise"] = out["surprise"].where(out["surprise"].notna(), derived)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = out["surprise"] / out["estimated_eps"].abs() * 100.0
    out["surprise_pct"] = out["surprise_pct"].where(out["surprise_pct"].notna(),
                                                    pct.where(np.isfinite(pct)))
    out["report_time"] = (frame["report_time"].astype(object).to_numpy()
                          if "report_time" in frame.columns else None)
    gap = (out["reported_date"] - out["fiscal_date_ending"]).dt.days
    out = out[gap.notna() & (gap >= min_gap_days)]
    out = out.sort_values(["symbol", "fiscal_date_ending", "reported_date"], kind="stable")
    out = out.drop_duplicates(["symbol", "fiscal_date_ending"], keep="first")
    return out.reset_index(drop=True)


def read_earnings(path: str | Path) -> pd.DataFrame:
    """Read an earnings Parquet/CSV file (layout of ``shared/data/earnings``) and clean it.

    Parameters
    ----------
    path : str or Path
        ``.parquet`` or ``.csv`` file with the canonical earnings columns.

    Returns
    -------
    pandas.DataFrame
        The canonical earnings frame of :func:`clean_earnings` (bad-date rows dropped).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataValidationError
        The file cannot be read (not csv / Parquet) or lacks a required column; the message
        names the file and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"earnings file not found: {path}")
    return clean_earnings(_read_frame(path, "earnings"), source=str(path))


def clean_ratios(frame: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Validate and normalise a ratios frame into the canonical layout.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``symbol, period_end, available_date`` and at least one of :data:`RATIO_COLUMNS`
        (absent ratios become NaN columns).
    source : str, optional
        File or provider the frame came from (named in errors).

    Returns
    -------
    pandas.DataFrame
        :data:`RATIOS_COLUMNS`, one row per (symbol, period_end) (the earliest available row
        kept on duplicates), sorted by symbol, period_end; infinite ratios become NaN.

    Raises
    ------
    DataValidationError
        A required column is missing, no ratio column is present, or a row's ``period_end`` /
        ``available_date`` is missing or unparseable, or a row is available on or before its
        period ended (a filing cannot precede the period it reports); the message gives the
        first such row.
    """
    _require(frame, ("symbol", "period_end", "available_date"), "ratios frame", source)
    if not any(c in frame.columns for c in RATIO_COLUMNS):
        raise DataValidationError(f"ratios frame has none of the ratio columns {list(RATIO_COLUMNS)}",
                                  source=source)
    out = pd.DataFrame({"symbol": frame["symbol"].astype(str).to_numpy()})
    for col in ("period_end", "available_date"):
        out[col] = pd.to_datetime(frame[col].to_numpy(), errors="coerce").astype("datetime64[ns]")
    bad = out["period_end"].isna() | out["available_date"].isna() | (out["available_date"] <= out["period_end"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            f"ratios row {i} ({out['symbol'].iat[i]}): period_end {frame['period_end'].iat[i]!r} and "
            f"available_date {frame['available_date'].iat[i]!r} must be dates with available_date after "
            f"period_end ({int(bad.sum())} such rows)", source=source)
    for col in RATIO_COLUMNS:
        v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float) if col in frame.columns else np.nan
        out[col] = np.where(np.isfinite(v), v, np.nan)
    out = out.sort_values(["symbol", "period_end", "available_date"], kind="stable")
    return out.drop_duplicates(["symbol", "period_end"], keep="first").reset_index(drop=True)


def read_ratios(path: str | Path) -> pd.DataFrame:
    """Read a ratios Parquet/CSV file (``vfr data fetch ratios --provider sec`` writes one)
    and clean it (:func:`clean_ratios`).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataValidationError
        The file cannot be read or fails :func:`clean_ratios`; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ratios file not found: {path}")
    return clean_ratios(_read_frame(path, "ratios"), source=str(path))


def read_fred_md(path: str | Path) -> pd.DataFrame:
    """Read the FRED-MD table: ``month`` (first day) plus one float column per series.

    Accepts the Parquet of the development set or the official ``current.csv`` layout
    (``sasdate`` column, second row = transform codes, which is dropped).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"FRED-MD file not found: {path}")
    frame = _read_frame(path, "FRED-MD")
    if path.suffix.lower() == ".csv":
        if "sasdate" in frame.columns:
            frame = frame[frame["sasdate"].astype(str).str.lower() != "transform:"]
            frame = frame.rename(columns={"sasdate": "month"})
    _require(frame, ("month",), "FRED-MD frame", str(path))
    frame = frame.copy()
    frame["month"] = pd.to_datetime(frame["month"]).dt.to_period("M").dt.to_timestamp()
    frame["month"] = frame["month"].astype("datetime64[ns]")
    for col in frame.columns:
        if col != "month":
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame.dropna(subset=["month"]).sort_values("month").reset_index(drop=True)


def read_vix(path: str | Path) -> pd.DataFrame:
    """Read daily VIX: ``date`` (datetime64[ns]) and ``close`` (index points), sorted."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"VIX file not found: {path}")
    frame = _read_frame(path, "VIX").rename(columns=str.lower)
    _require(frame, ("date", "close"), "VIX frame", str(path))
    out = pd.DataFrame({"date": pd.to_datetime(frame["date"]).astype("datetime64[ns]"),
                        "close": pd.to_numeric(frame["close"], errors="coerce")})
    return out.dropna().sort_values("date").drop_duplicates("date").reset_index(drop=True)


def read_gdp(path: str | Path) -> pd.DataFrame:
    """Read quarterly GDP: ``date`` (quarter start), ``level-current``, ``level-chained``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"GDP file not found: {path}")
    frame = _read_frame(path, "GDP").copy()
    _require(frame, ("date",), "GDP frame", str(path))
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    return frame.sort_values("date").reset_index(drop=True)


def read_macro(folder: str | Path) -> MacroData:
    """Read ``fred_md.parquet``, ``vix_daily.parquet`` and ``gdp_quarterly.parquet`` of a folder.

    VIX and GDP are optional (``None`` when their file is absent); FRED-MD is required, with
    every series of :data:`FRED_MD_SERIES`.

    Raises
    ------
    DataValidationError
        If FRED-MD lacks one of :data:`FRED_MD_SERIES` (or a file is unreadable), naming the file.
    """
    folder = Path(folder)
    vix = folder / "vix_daily.parquet"
    gdp = folder / "gdp_quarterly.parquet"
    fred_md = read_fred_md(folder / "fred_md.parquet")
    missing = [c for c in FRED_MD_SERIES if c not in fred_md.columns]
    if missing:
        raise DataValidationError(f"FRED-MD lacks the series {', '.join(missing)} the macro features use",
                                  source=str(folder / "fred_md.parquet"), column=", ".join(missing))
    return MacroData(fred_md=fred_md,
                     vix=read_vix(vix) if vix.exists() else None,
                     gdp=read_gdp(gdp) if gdp.exists() else None)
