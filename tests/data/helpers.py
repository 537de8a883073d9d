"""Writers of real-format price files and small frames for the vfr.data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

AV_HEADER = ["timestamp", "open", "high", "low", "close", "adjusted_close", "volume",
             "dividend_amount", "split_coefficient"]
YAHOO_HEADER = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]


def write_av(raw: pd.DataFrame, folder: Path, pooksoft: bool = True) -> list[Path]:
    """Write each symbol of a raw frame as an AlphaVantage csv (newest row first)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for sym, g in raw.groupby("symbol", sort=True):
        out = g.sort_values("date", ascending=False).rename(columns={"date": "timestamp"})
        out = out.assign(timestamp=out["timestamp"].dt.strftime("%Y-%m-%d"))[AV_HEADER]
        path = folder / (f"DA-{sym}-T-2021-04-21.csv" if pooksoft else f"{sym}.csv")
        out.to_csv(path, index=False)
        paths.append(path)
    return paths


def write_yahoo(raw: pd.DataFrame, folder: Path, adj_close: bool = True) -> list[Path]:
    """Write each symbol of a raw frame as a Yahoo csv (oldest row first)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for sym, g in raw.groupby("symbol", sort=True):
        out = pd.DataFrame({"Date": g["date"].dt.strftime("%Y-%m-%d"), "Open": g["open"],
                            "High": g["high"], "Low": g["low"], "Close": g["close"],
                            "Adj Close": g["adjusted_close"], "Volume": g["volume"]})
        if not adj_close:
            out = out.drop(columns="Adj Close")
        path = folder / f"{sym}.csv"
        out.to_csv(path, index=False)
        paths.append(path)
    return paths


def expected_raw(raw: pd.DataFrame) -> pd.DataFrame:
    """A raw frame in the readers' canonical dtypes, sorted, RangeIndex."""
    out = raw.sort_values(["symbol", "date"]).reset_index(drop=True).copy()
    out["symbol"] = out["symbol"].astype("str")
    out["date"] = out["date"].astype("datetime64[ns]")
    for c in out.columns[2:]:
        out[c] = out[c].astype("float64")
    return out[["symbol", "date", "open", "high", "low", "close", "adjusted_close", "volume",
                "dividend_amount", "split_coefficient"]]


def synthetic_raw(symbols: tuple[str, ...] = ("AAA", "BBB"), n: int = 6) -> pd.DataFrame:
    """A small, valid raw frame that needs no shared data (prices in USD)."""
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-02", periods=n)
    frames = []
    for k, sym in enumerate(symbols):
        close = 50.0 + k * 10 + rng.normal(0, 1, n).cumsum()
        frames.append(pd.DataFrame({
            "symbol": sym, "date": dates, "open": close + 0.1, "high": close + 1.0,
            "low": close - 1.0, "close": close, "adjusted_close": close * 0.9,
            "volume": rng.integers(1_000, 10_000, n).astype("int64"),
            "dividend_amount": 0.0, "split_coefficient": 1.0}))
    return pd.concat(frames, ignore_index=True)
