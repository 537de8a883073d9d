"""Alpha Vantage EARNINGS and OVERVIEW -> canonical earnings frame and ratio rows.

Documented format (https://www.alphavantage.co/documentation/#earnings)::

    {"symbol": "IBM",
     "annualEarnings": [{"fiscalDateEnding": "2023-12-31", "reportedEPS": "9.61"}, ...],
     "quarterlyEarnings": [{"fiscalDateEnding": "2023-12-31", "reportedDate": "2024-01-24",
                            "reportedEPS": "3.87", "estimatedEPS": "3.78",
                            "surprise": "0.09", "surprisePercentage": "2.381",
                            "reportTime": "post-market"}, ...]}

OVERVIEW returns one flat object of strings (``"ReturnOnEquityTTM": "0.353"``,
``"ProfitMargin": "0.0902"``, ``"OperatingMarginTTM": "0.137"``, ``"LatestQuarter":
"2024-03-31"``, ``"None"`` or ``"-"`` when unknown). Limits: 5 requests/min and 25/day on the
free tier (premium plans 75+/min). Never run against the live service in this project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.data.fundamentals import clean_earnings
from vfr.data.providers.base import JsonClient, ProviderError, RateLimiter, require_key

URL = "https://www.alphavantage.co/query"
#: Days after ``LatestQuarter`` before an OVERVIEW ratio counts as published (10-Q deadline).
OVERVIEW_LAG_DAYS = 45


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan  # "None", "-", "" -> missing, never zero


def _check(payload: Any, what: str) -> None:
    if not isinstance(payload, dict):
        raise ProviderError(f"Alpha Vantage {what}: unexpected payload type {type(payload).__name__}")
    for key in ("Error Message", "Information", "Note"):
        if key in payload and len(payload) == 1:
            raise ProviderError(f"Alpha Vantage {what}: {payload[key]}")


def parse_earnings(payload: dict) -> pd.DataFrame:
    """Canonical earnings frame (:func:`vfr.data.fundamentals.clean_earnings`) of an EARNINGS
    response; ``"None"`` estimates become NaN."""
    _check(payload, "EARNINGS")
    symbol = payload.get("symbol")
    rows = payload.get("quarterlyEarnings") or []
    frame = pd.DataFrame({
        "symbol": [symbol] * len(rows),
        "fiscal_date_ending": [r.get("fiscalDateEnding") for r in rows],
        "reported_date": [r.get("reportedDate") for r in rows],
        "reported_eps": [_num(r.get("reportedEPS")) for r in rows],
        "estimated_eps": [_num(r.get("estimatedEPS")) for r in rows],
        "surprise": [_num(r.get("surprise")) for r in rows],
        "surprise_pct": [_num(r.get("surprisePercentage")) for r in rows],
        "report_time": [r.get("reportTime") for r in rows],
    })
    return clean_earnings(frame)


def parse_overview(payload: dict) -> pd.DataFrame:
    """One ratio row (``symbol, available_date, roe, operating_margin, net_margin``) of an
    OVERVIEW response; usable :data:`OVERVIEW_LAG_DAYS` after ``LatestQuarter``."""
    _check(payload, "OVERVIEW")
    if "Symbol" not in payload:
        raise ProviderError("Alpha Vantage OVERVIEW: no Symbol in the response (unknown ticker?)")
    latest = pd.to_datetime(payload.get("LatestQuarter"), errors="coerce")
    return pd.DataFrame({
        "symbol": [payload["Symbol"]],
        "available_date": [latest + pd.Timedelta(days=OVERVIEW_LAG_DAYS)],
        "roe": [_num(payload.get("ReturnOnEquityTTM"))],
        "operating_margin": [_num(payload.get("OperatingMarginTTM"))],
        "net_margin": [_num(payload.get("ProfitMargin"))],
    })


class AlphaVantage:
    """Alpha Vantage client (key from ``api_key`` or ``ALPHAVANTAGE_API_KEY``).

    Parameters
    ----------
    api_key : str, optional
    calls_per_minute : int
        5 on the free tier (default); raise it for a premium plan.
    cache_dir : str or Path, optional
        Response cache (see :class:`~vfr.data.providers.base.JsonClient`).
    """

    def __init__(self, api_key: str | None = None, *, calls_per_minute: int = 5,
                 cache_dir: str | Path | None = None) -> None:
        self.api_key = require_key("Alpha Vantage", api_key, "ALPHAVANTAGE_API_KEY")
        self.client = JsonClient("alphavantage", RateLimiter(calls_per_minute, 60.0),
                                 cache_dir=cache_dir)

    def earnings(self, symbol: str) -> pd.DataFrame:
        """Canonical earnings frame of ``symbol`` (function=EARNINGS)."""
        return parse_earnings(self.client.get_json(URL, {"function": "EARNINGS", "symbol": symbol,
                                                         "apikey": self.api_key}))

    def overview(self, symbol: str) -> pd.DataFrame:
        """Ratio row of ``symbol`` (function=OVERVIEW)."""
        return parse_overview(self.client.get_json(URL, {"function": "OVERVIEW", "symbol": symbol,
                                                         "apikey": self.api_key}))
