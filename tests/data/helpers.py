"""Writers of real-format price files and small frames for the vfr.data tests."""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

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


class Scripted:
    """A real HTTP server (provider tests) answering each path from a script of (status, body,
    headers), the last entry repeating, or from a function of the query; every request is
    recorded as (path, query) in ``seen`` and its headers in ``headers``."""

    def __init__(self) -> None:
        self.script: dict[str, deque] = defaultdict(deque)
        self.routes: dict[str, Callable[[dict], tuple]] = {}
        self.seen: list[tuple[str, dict]] = []
        self.headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                owner.seen.append((url.path, parse_qs(url.query)))
                owner.headers.append(dict(self.headers))
                query = parse_qs(url.query)
                if url.path in owner.routes:
                    status, body, headers = (owner.routes[url.path](query) + ({},))[:3]
                else:
                    queue = owner.script[url.path]
                    status, body, headers = queue.popleft() if len(queue) > 1 else queue[0]
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, *responses: tuple) -> None:
        self.script[path] = deque((r + ({},))[:3] for r in responses)

    def route(self, path: str, answer: Callable[[dict], tuple]) -> None:
        self.routes[path] = answer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def hits(self, path: str) -> int:
        return sum(p == path for p, _ in self.seen)
