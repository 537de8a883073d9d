"""Readers of daily price files into the *raw prices* canonical frame.

Every reader returns the raw prices frame of ``docs/architecture.md``:

========================  ==============  =================================================
column                    dtype           unit
========================  ==============  =================================================
symbol                    str             ticker
date                      datetime64[ns]  trading day (tz-naive, exchange local date)
open, high, low, close    float64         USD, as traded (unadjusted)
adjusted_close            float64         USD, adjusted for all later splits and dividends
volume                    float64         shares, as traded (whole numbers in practice)
dividend_amount           float64         USD per share with ex-date that day (0.0 if none)
split_coefficient         float64         split ratio effective that day (1.0 if none)
========================  ==============  =================================================

sorted by (``symbol``, ``date``) with a ``RangeIndex``. Input is validated with vectorised
checks before anything is returned; a problem raises
:class:`vfr.errors.DataValidationError` naming the file, the 1-based data row (header
excluded; for Parquet the row position in the file) and the column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa

from vfr.errors import DataValidationError

#: Columns of the raw prices frame, in order.
RAW_COLUMNS: list[str] = ["symbol", "date", "open", "high", "low", "close", "adjusted_close",
                          "volume", "dividend_amount", "split_coefficient"]
PRICE_COLUMNS: list[str] = ["open", "high", "low", "close", "adjusted_close"]
NUMERIC_COLUMNS: list[str] = PRICE_COLUMNS + ["volume", "dividend_amount", "split_coefficient"]

#: AlphaVantage TIME_SERIES_DAILY_ADJUSTED csv header -> raw column.
AV_COLUMNS: dict[str, str] = {"timestamp": "date", "open": "open", "high": "high", "low": "low",
                              "close": "close", "adjusted_close": "adjusted_close",
                              "volume": "volume", "dividend_amount": "dividend_amount",
                              "split_coefficient": "split_coefficient"}
#: Yahoo csv header -> raw column (``Adj Close`` optional).
YAHOO_COLUMNS: dict[str, str] = {"Date": "date", "Open": "open", "High": "high", "Low": "low",
                                 "Close": "close", "Adj Close": "adjusted_close",
                                 "Volume": "volume"}
YAHOO_OPTIONAL = {"Adj Close"}

_POOKSOFT_NAME = re.compile(r"^DA-(?P<symbol>.+?)-T-.*\.csv$", re.IGNORECASE)


# --------------------------------------------------------------------------------------
# validation (pure, vectorised)
# --------------------------------------------------------------------------------------
def _first(mask: np.ndarray) -> int | None:
    """Position of the first True in ``mask`` or None."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _require_columns(columns: Iterable[str], required: Iterable[str], source: str,
                     optional: Iterable[str] = ()) -> None:
    present = set(columns)
    missing = [c for c in required if c not in present and c not in set(optional)]
    if missing:
        raise DataValidationError(
            f"missing required column(s) {', '.join(repr(m) for m in missing)}; "
            f"found {sorted(map(str, present))}",
            source=source, column=", ".join(missing))


def _to_float(values: pd.Series) -> tuple[np.ndarray, int | None, str]:
    """Convert ``values`` to float64.

    Returns the array, the position of the first missing/non-numeric/non-finite value (or
    None) and a message describing it.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.zeros(len(values)), 0 if len(values) else None, "boolean value in a numeric column"
    if pd.api.types.is_numeric_dtype(values.dtype):
        out = values.to_numpy(dtype="float64", na_value=np.nan)
    else:
        out = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = _first(~np.isfinite(out))
    if bad is None:
        return out, None, ""
    raw = values.iloc[bad]
    if pd.isna(raw) or str(raw).strip() == "":
        return out, bad, "missing value"
    return out, bad, f"non-numeric value {raw!r}"


def _to_dates(values: pd.Series) -> tuple[np.ndarray, int | None, str]:
    """Parse ``values`` to tz-naive datetime64[ns]; like :func:`_to_float`."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = values
    else:
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
    out = parsed.to_numpy(dtype="datetime64[ns]")
    bad = _first(np.isnat(out))
    if bad is None:
        return out, None, ""
    return out, bad, f"unparseable date {values.iloc[bad]!r}"


def validate_raw(df: pd.DataFrame, source: str, rows: np.ndarray | None = None,
                 sources: np.ndarray | None = None,
                 labels: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """Validate and type a frame that already has the raw column names.

    Parameters
    ----------
    df : DataFrame, shape (n, >= 10)
        Columns :data:`RAW_COLUMNS` (any dtype: strings are parsed).
    source : str
        Name of the file the rows come from (used in error messages).
    rows : ndarray of int, shape (n,), optional
        1-based source row of each row; default ``1..n``.
    sources : ndarray of str, shape (n,), optional
        Per-row file name when the frame concatenates several files (overrides ``source``
        in messages).
    labels : dict, optional
        ``{file name: {raw column: column name in that file}}`` so messages name the
        column as the file spells it (``timestamp``, ``Adj Close``, ...).

    Returns
    -------
    DataFrame, shape (n, 10)
        The raw prices frame, typed, sorted by (symbol, date), RangeIndex.

    Raises
    ------
    DataValidationError
        Missing column, missing/non-numeric value, unparseable date, duplicate
        (symbol, date), non-positive price, negative volume or dividend, non-positive split
        coefficient, or high < low.
    """
    _require_columns(df.columns, RAW_COLUMNS, source)
    n = len(df)
    rows = np.arange(1, n + 1) if rows is None else np.asarray(rows)

    def src(i: int) -> str:
        return str(sources[i]) if sources is not None else source

    def fail(msg: str, i: int, column: str) -> NoReturn:
        name = (labels or {}).get(src(i), {}).get(column, column)
        raise DataValidationError(msg, source=src(i), row=int(rows[i]), column=name)

    sym = df["symbol"].astype("str").reset_index(drop=True)
    sym_missing = sym.isna().to_numpy() | (sym.str.strip().str.len() == 0).to_numpy(
        dtype=bool, na_value=True)
    if (i := _first(sym_missing)) is not None:
        fail("missing symbol", i, "symbol")
    out: dict[str, np.ndarray] = {}
    problems: list[tuple[int, str, str]] = []  # (position, message, column)
    for col in ["date"] + NUMERIC_COLUMNS:
        conv, bad, msg = (_to_dates if col == "date" else _to_float)(df[col])
        out[col] = conv
        if bad is not None:
            problems.append((bad, msg, col))
    if problems:  # report the first bad row (leftmost column on ties)
        bad, msg, col = min(problems, key=lambda t: t[0])
        fail(msg, bad, col)

    for col in PRICE_COLUMNS:
        if (i := _first(out[col] <= 0)) is not None:
            fail(f"non-positive price {out[col][i]!r}", i, col)
    if (i := _first(out["volume"] < 0)) is not None:
        fail(f"negative volume {out['volume'][i]!r}", i, "volume")
    if (i := _first(out["dividend_amount"] < 0)) is not None:
        fail(f"negative dividend {out['dividend_amount'][i]!r}", i, "dividend_amount")
    if (i := _first(out["split_coefficient"] <= 0)) is not None:
        fail(f"non-positive split coefficient {out['split_coefficient'][i]!r}", i,
             "split_coefficient")
    if (i := _first(out["high"] < out["low"])) is not None:
        fail(f"high {out['high'][i]!r} < low {out['low'][i]!r}", i, "high")

    # sort by (symbol, date) and look for adjacent duplicates
    codes, _ = pd.factorize(sym, sort=True)
    dates_i8 = out["date"].view("i8")
    dc, dd = np.diff(codes), np.diff(dates_i8)
    if np.all((dc > 0) | ((dc == 0) & (dd >= 0))):
        order = None  # already sorted (the usual case): no copy
        sc, sd = codes, dates_i8
    else:
        order = np.lexsort((rows, dates_i8, codes))
        sc, sd = codes[order], dates_i8[order]
    dup = np.flatnonzero((sc[1:] == sc[:-1]) & (sd[1:] == sd[:-1]))
    if dup.size:
        # report the later (in file order) of the first duplicate pair found in file order
        pos = np.arange(len(sc)) if order is None else order
        pairs = np.stack([pos[dup], pos[dup + 1]], axis=1)
        later = pairs.max(axis=1)
        k = int(np.argmin(later))
        i, j = int(pairs[k].max()), int(pairs[k].min())
        day = pd.Timestamp(out["date"][i]).date()
        fail(f"duplicate (symbol, date) ({sym.iloc[i]!r}, {day}); first seen at "
             f"row {int(rows[j])}" + (f" of {src(j)}" if sources is not None else ""), i, "date")

    if order is None:
        frame = pd.DataFrame({"symbol": sym, **out})
    else:
        frame = pd.DataFrame({"symbol": sym.take(order).reset_index(drop=True),
                              **{c: v[order] for c, v in out.items()}})
    return frame[RAW_COLUMNS]


# --------------------------------------------------------------------------------------
# file readers
# --------------------------------------------------------------------------------------
def _read_header(path: Path) -> list[str]:
    """Column names of a csv file (first line)."""
    try:
        header = pd.read_csv(path, nrows=0, dtype=str).columns
    except pd.errors.EmptyDataError:
        raise DataValidationError("empty file (no header)", source=str(path)) from None
    return [str(c).strip() for c in header]


def _read_csv_str(path: Path) -> pd.DataFrame:
    """Read a csv with every cell as a string (so bad cells can be reported verbatim)."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"cannot parse csv: {exc}", source=str(path)) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def symbol_from_filename(path: str | Path) -> str:
    """Ticker from a file name: ``DA-<SYMBOL>-T-<anything>.csv`` or ``<SYMBOL>.csv``."""
    name = Path(path).name
    m = _POOKSOFT_NAME.match(name)
    return m.group("symbol") if m else Path(name).stem


def symbols_from_file_names(path: str | Path) -> dict[str, Path]:
    """Symbols that :func:`read_prices` takes from file names, not from the data, for ``path``.

    A csv (AlphaVantage or Yahoo layout) has no symbol column: its file name is the symbol
    (:func:`symbol_from_filename`), so a file named ``GARB.csv`` that holds IBM's rows is read
    as symbol ``GARB``. Parquet files carry a ``symbol`` column and are not listed.

    Returns
    -------
    dict of str -> Path
        Symbol -> the csv file it was taken from (empty for Parquet or a missing path).
    """
    path = Path(path)
    if path.is_dir():
        files = _csv_files(path)
    elif path.is_file() and path.suffix.lower() != ".parquet":
        with open(path, "rb") as fh:
            files = [] if fh.read(4) == b"PAR1" else [path]
    else:
        files = []
    return {symbol_from_filename(f): f for f in files}


def _is_av_header(cols: list[str]) -> bool:
    return "timestamp" in {c.lower() for c in cols}


def _is_yahoo_header(cols: list[str]) -> bool:
    return "date" in {c.lower() for c in cols}


def _av_frame(path: Path) -> pd.DataFrame:
    df = _read_csv_str(path)
    df.columns = [c.lower() for c in df.columns]
    _require_columns(df.columns, AV_COLUMNS, str(path))
    df = df.rename(columns=AV_COLUMNS)[list(AV_COLUMNS.values())]
    df.insert(0, "symbol", symbol_from_filename(path))
    df.attrs["labels"] = {v: k for k, v in AV_COLUMNS.items()}
    return df


def _yahoo_frame(path: Path) -> pd.DataFrame:
    df = _read_csv_str(path)
    # accept case variations of the Yahoo header
    canon = {k.lower(): k for k in YAHOO_COLUMNS}
    df.columns = [canon.get(c.lower(), c) for c in df.columns]
    _require_columns(df.columns, YAHOO_COLUMNS, str(path), optional=YAHOO_OPTIONAL)
    if "Adj Close" not in df.columns:
        df["Adj Close"] = df["Close"]
    df = df.rename(columns=YAHOO_COLUMNS)[list(YAHOO_COLUMNS.values())]
    df.insert(0, "symbol", symbol_from_filename(path))
    df["dividend_amount"] = "0"
    df["split_coefficient"] = "1"
    df.attrs["labels"] = {v: k for k, v in YAHOO_COLUMNS.items()}
    return df


def _concat_validate(frames: list[tuple[Path, pd.DataFrame]], source: str) -> pd.DataFrame:
    """Validate several per-file frames (row numbers and file names kept per file)."""
    if not frames:
        raise DataValidationError("no csv files found", source=source)
    seen: dict[str, Path] = {}
    for path, _df in frames:
        sym = symbol_from_filename(path)
        if sym in seen:
            raise DataValidationError(f"symbol {sym!r} appears in two files: {seen[sym]} and {path}",
                                      source=str(path), column="symbol")
        seen[sym] = path
    labels = {str(p): df.attrs.get("labels", {}) for p, df in frames}
    if len(frames) == 1:
        return validate_raw(frames[0][1], str(frames[0][0]), labels=labels)
    rows = np.concatenate([np.arange(1, len(df) + 1) for _, df in frames])
    sources = np.concatenate([np.full(len(df), str(p), dtype=object) for p, df in frames])
    big = pd.concat([df for _, df in frames], ignore_index=True)
    return validate_raw(big, source, rows=rows, sources=sources, labels=labels)


def _csv_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")


def read_prices_parquet(path: str | Path) -> pd.DataFrame:
    """Read a Parquet file with the raw price columns (layout of ``prices_daily.parquet``).

    Parameters
    ----------
    path : str or Path
        Parquet file with columns ``symbol, date, open, high, low, close, adjusted_close,
        volume, dividend_amount, split_coefficient``.

    Returns
    -------
    DataFrame, shape (n_rows, 10)
        Raw prices frame (see module docstring).

    Raises
    ------
    DataValidationError
        Unreadable file or any failed check (row = 1-based position in the file).
    """
    path = Path(path)
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataValidationError(f"cannot read parquet: {exc}", source=str(path)) from None
    df.columns = [str(c) for c in df.columns]
    return validate_raw(df.reset_index(drop=True), str(path))


def read_alphavantage_folder(path: str | Path) -> pd.DataFrame:
    """Read AlphaVantage TIME_SERIES_DAILY_ADJUSTED csv files (one per ticker).

    Parameters
    ----------
    path : str or Path
        A folder of ``*.csv`` files (or one such file) with header
        ``timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,
        split_coefficient``. The symbol comes from the file name:
        ``DA-<SYMBOL>-T-<anything>.csv`` (Pooksoft layout) or ``<SYMBOL>.csv`` (the rows are
        not checked against it: see :func:`read_yahoo_csv` for what protects against a
        misnamed file).

    Returns
    -------
    DataFrame, shape (n_rows, 10)
        Raw prices frame of all files.

    Raises
    ------
    DataValidationError
        No csv files, a symbol in two files, or any failed check (file and 1-based data
        row of that file).
    """
    path = Path(path)
    files = _csv_files(path) if path.is_dir() else [path]
    return _concat_validate([(f, _av_frame(f)) for f in files], str(path))


def read_yahoo_csv(path: str | Path) -> pd.DataFrame:
    """Read Yahoo-style csv file(s): ``Date,Open,High,Low,Close[,Adj Close],Volume``.

    Parameters
    ----------
    path : str or Path
        One csv file or a folder of them; the symbol is the file stem. A missing
        ``Adj Close`` equals ``Close``; dividend_amount is 0.0 and split_coefficient 1.0.

    Notes
    -----
    The file has no symbol column, so its name is the only source of the symbol: a file
    named ``GARB.csv`` that holds IBM's rows is read as ``GARB`` (nothing in the prices can
    tell). Trading on mislabelled prices loses real money, so :func:`vfr.data.ingest`
    refuses (``DataValidationError`` naming the file, nothing written) a csv whose file-name
    symbol is not in the universe list or membership csv given with it; without a universe
    file (or with only a built-in point-in-time source) the file names are trusted as they
    are. :func:`symbols_from_file_names` lists which symbols came from file names.

    Returns
    -------
    DataFrame, shape (n_rows, 10)
        Raw prices frame.

    Raises
    ------
    DataValidationError
        As :func:`read_alphavantage_folder`.
    """
    path = Path(path)
    files = _csv_files(path) if path.is_dir() else [path]
    return _concat_validate([(f, _yahoo_frame(f)) for f in files], str(path))


def _csv_any(path: Path) -> pd.DataFrame:
    cols = _read_header(path)
    if _is_av_header(cols):
        return _av_frame(path)
    if _is_yahoo_header(cols):
        return _yahoo_frame(path)
    raise DataValidationError(
        "unknown csv layout: expected an AlphaVantage header (timestamp,open,high,low,close,"
        "adjusted_close,volume,dividend_amount,split_coefficient) or a Yahoo header "
        f"(Date,Open,High,Low,Close,Adj Close,Volume); found {cols}",
        source=str(path))


def read_prices(path: str | Path) -> pd.DataFrame:
    """Read raw prices from whatever ``path`` is, detecting the layout from its content.

    Parameters
    ----------
    path : str or Path
        A Parquet file (``PAR1`` magic or ``.parquet`` suffix), a csv file, or a folder of
        csv files; each csv's layout (AlphaVantage or Yahoo) is detected from its header.

    Returns
    -------
    DataFrame, shape (n_rows, 10)
        Raw prices frame.

    Raises
    ------
    DataValidationError
        Path missing, unknown layout, or any failed check.
    """
    path = Path(path)
    if not path.exists():
        raise DataValidationError("no such file or folder", source=str(path))
    if path.is_dir():
        files = _csv_files(path)
        if not files:
            parquets = sorted(path.glob("*.parquet"))
            if parquets:
                return validate_raw(pd.concat([read_prices_parquet(p) for p in parquets],
                                              ignore_index=True), str(path))
        return _concat_validate([(f, _csv_any(f)) for f in files], str(path))
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1" or path.suffix.lower() == ".parquet":
        return read_prices_parquet(path)
    return _concat_validate([(path, _csv_any(path))], str(path))


def read_universe(path: str | Path) -> pd.DataFrame:
    """Read a constituents csv (``Symbol,Name,Sector``).

    Parameters
    ----------
    path : str or Path
        csv file with (case-insensitive) columns Symbol, Name, Sector; extra columns are
        ignored.

    Returns
    -------
    DataFrame, shape (n_symbols, 3)
        Columns ``symbol, name, sector`` (str), sorted by symbol, RangeIndex.

    Raises
    ------
    DataValidationError
        Missing column, missing symbol, or duplicate symbol.
    """
    path = Path(path)
    df = _read_csv_str(path)
    df.columns = [c.lower() for c in df.columns]
    _require_columns(df.columns, ["symbol", "name", "sector"], str(path))
    df = df[["symbol", "name", "sector"]].copy()
    for c in df.columns:
        df[c] = df[c].astype("str").str.strip()
    if (i := _first((df["symbol"] == "").to_numpy())) is not None:
        raise DataValidationError("missing symbol", source=str(path), row=i + 1, column="symbol")
    if (i := _first(df["symbol"].duplicated().to_numpy())) is not None:
        raise DataValidationError(f"duplicate symbol {df['symbol'].iloc[i]!r}", source=str(path),
                                  row=i + 1, column="symbol")
    return df.sort_values("symbol", kind="stable").reset_index(drop=True)
