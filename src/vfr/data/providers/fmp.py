"""Financial Modeling Prep: earnings (with fiscal dates) and quarterly ratios.

Documented formats (https://site.financialmodelingprep.com/developer/docs)::

    GET /api/v3/historical/earning_calendar/{symbol}
    [{"date": "2024-05-02", "symbol": "AAPL", "eps": 1.53, "epsEstimated": 1.5,
      "time": "amc", "revenue": 90753000000, "revenueEstimated": 90010000000,
      "fiscalDateEnding": "2024-03-30", "updatedFromDate": "2024-05-03"}, ...]

    GET /api/v3/earnings-surprises/{symbol}
    [{"date": "2024-05-02", "symbol": "AAPL", "actualEarningResult": 1.53,
      "estimatedEarning": 1.5}, ...]            (no fiscal date: used to fill estimates only)

    GET /api/v3/ratios/{symbol}?period=quarter
    [{"symbol": "AAPL", "date": "2024-03-30", "calendarYear": "2024", "period": "Q2",
      "returnOnEquity": 0.2625, "debtEquityRatio": 1.4, "grossProfitMargin": 0.466,
      "operatingProfitMargin": 0.307, "netProfitMargin": 0.262, ...}, ...]

Ratios carry the period end only, not the filing date: they are usable
:data:`RATIO_LAG_DAYS` days after it (10-Q due 40 days, 10-K 60 days after the period for
large accelerated filers; 60 is the conservative bound). Rate limit: 300 requests/min.
Never run against the live service in this project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.data.fundamentals import clean_earnings
from vfr.data.providers.base import JsonClient, ProviderError, RateLimiter, require_key

BASE = "https://financialmodelingprep.com/api/v3"
RATIO_LAG_DAYS = 60
_RATIO_MAP = {"returnOnEquity": "roe", "debtEquityRatio": "debt_to_equity",
              "grossProfitMargin": "gross_margin", "operatingProfitMargin": "operating_margin",
              "netProfitMargin": "net_margin"}
_TIME = {"amc": "post-market", "bmo": "pre-market"}


def _rows(payload: object, what: str) -> list[dict]:
    if isinstance(payload, dict) and "Error Message" in payload:
        raise ProviderError(f"FMP {what}: {payload['Error Message']}")
    if not isinstance(payload, list):
        raise ProviderError(f"FMP {what}: expected a JSON list, got {type(payload).__name__}")
    return payload


def _check_rows(payload: object, what: str) -> None:
    _rows(payload, what)


def _f(x: object) -> float:
    return float(x) if isinstance(x, (int, float)) and x is not True and x is not False else np.nan


def parse_earning_calendar(payload: object,
                           surprises: object | None = None) -> pd.DataFrame:
    """Canonical earnings frame from ``historical/earning_calendar`` (and optionally
    ``earnings-surprises`` to fill missing estimates by report date)."""
    rows = _rows(payload, "earning_calendar")
    frame = pd.DataFrame({
        "symbol": [r.get("symbol") for r in rows],
        "fiscal_date_ending": [r.get("fiscalDateEnding") for r in rows],
        "reported_date": [r.get("date") for r in rows],
        "reported_eps": [_f(r.get("eps")) for r in rows],
        "estimated_eps": [_f(r.get("epsEstimated")) for r in rows],
        "report_time": [_TIME.get(str(r.get("time")).lower()) for r in rows],
    })
    if surprises is not None:
        s = {(r.get("symbol"), r.get("date")): _f(r.get("estimatedEarning"))
             for r in _rows(surprises, "earnings-surprises")}
        fill = [s.get((sym, d), np.nan) for sym, d in zip(frame["symbol"], frame["reported_date"],
                                                            strict=True)]
        frame["estimated_eps"] = frame["estimated_eps"].fillna(pd.Series(fill, index=frame.index))
    frame = frame[frame["reported_eps"].notna()]  # future (scheduled) rows have eps null
    return clean_earnings(frame)


def parse_ratios(payload: object) -> pd.DataFrame:
    """Ratio rows (``symbol, period_end, available_date`` + ratio columns) of ``ratios``."""
    rows = _rows(payload, "ratios")
    out = pd.DataFrame({"symbol": [r.get("symbol") for r in rows],
                        "period_end": pd.to_datetime([r.get("date") for r in rows])})
    out["available_date"] = out["period_end"] + pd.Timedelta(days=RATIO_LAG_DAYS)
    for src, dst in _RATIO_MAP.items():
        out[dst] = [_f(r.get(src)) for r in rows]
    return out.sort_values(["symbol", "period_end"]).reset_index(drop=True)


class FMP:
    """FMP client (key from ``api_key`` or ``FMP_API_KEY``), 300 requests/min.

    ``base_url`` points at a mirror or proxy (default the public API); ``**client`` are the
    :class:`~vfr.data.providers.base.JsonClient`'s ``expire_after``, ``retries``, ``backoff``, ``timeout``.
    """

    def __init__(self, api_key: str | None = None, *, calls_per_minute: int = 300,
                 cache_dir: str | Path | None = None, base_url: str = BASE, **client: Any) -> None:
        self.api_key = require_key("FMP", api_key, "FMP_API_KEY")
        self.base = base_url.rstrip("/")
        self.client = JsonClient("fmp", RateLimiter(calls_per_minute, 60.0), cache_dir=cache_dir, **client)

    def _get(self, path: str, what: str, **params: str) -> Any:
        return self.client.get_json(f"{self.base}/{path}", {**params, "apikey": self.api_key},
                                    check=lambda payload: _check_rows(payload, what))

    def earnings(self, symbol: str) -> pd.DataFrame:
        """Canonical earnings frame of ``symbol``."""
        cal = self._get(f"historical/earning_calendar/{symbol}", "earning calendar")
        sur = self._get(f"earnings-surprises/{symbol}", "earnings surprises")
        return parse_earning_calendar(cal, sur)

    def ratios(self, symbol: str) -> pd.DataFrame:
        """Quarterly ratio rows of ``symbol``."""
        return parse_ratios(self._get(f"ratios/{symbol}", "ratios", period="quarter"))
