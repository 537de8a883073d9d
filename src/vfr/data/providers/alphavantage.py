"""Alpha Vantage TIME_SERIES_DAILY_ADJUSTED, EARNINGS and OVERVIEW -> raw prices, canonical
earnings frame and ratio rows.

TIME_SERIES_DAILY_ADJUSTED (https://www.alphavantage.co/documentation/#dailyadj)::

    {"Meta Data": {"1. Information": "Daily Time Series with Splits and Dividend Events",
                   "2. Symbol": "IBM", ...},
     "Time Series (Daily)": {"2024-01-05": {"1. open": "160.37", "2. high": "161.56",
                                            "3. low": "159.91", "4. close": "160.86",
                                            "5. adjusted close": "155.93", "6. volume": "3519201",
                                            "7. dividend amount": "0.0000",
                                            "8. split coefficient": "1.0"}, ...}}

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


#: TIME_SERIES_DAILY_ADJUSTED field -> raw prices column (:data:`vfr.data.readers.RAW_COLUMNS`).
DAILY_FIELDS = {"1. open": "open", "2. high": "high", "3. low": "low", "4. close": "close",
                "5. adjusted close": "adjusted_close", "6. volume": "volume",
                "7. dividend amount": "dividend_amount", "8. split coefficient": "split_coefficient"}


def parse_daily_adjusted(payload: dict) -> pd.DataFrame:
    """Raw prices rows (``symbol, date, open, ..., split_coefficient``, values as the API's
    strings; :func:`vfr.data.readers.validate_raw` types and checks them) of a
    TIME_SERIES_DAILY_ADJUSTED response.

    Raises
    ------
    ProviderError
        An error or rate-limit payload, or no daily series in the response.
    """
    _check(payload, "TIME_SERIES_DAILY_ADJUSTED")
    series = payload.get("Time Series (Daily)")
    symbol = (payload.get("Meta Data") or {}).get("2. Symbol")
    if not isinstance(series, dict) or not symbol:
        raise ProviderError("Alpha Vantage TIME_SERIES_DAILY_ADJUSTED: no 'Time Series (Daily)' or symbol in the "
                            "response (unknown ticker?)")
    frame = pd.DataFrame.from_dict(series, orient="index")
    missing = sorted(set(DAILY_FIELDS) - set(frame.columns))
    if missing:
        raise ProviderError(f"Alpha Vantage TIME_SERIES_DAILY_ADJUSTED for {symbol}: fields {missing} missing")
    frame = frame.rename(columns=DAILY_FIELDS)[list(DAILY_FIELDS.values())]
    frame.insert(0, "date", frame.index)
    frame.insert(0, "symbol", symbol)
    return frame.sort_values("date").reset_index(drop=True)


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
    base_url : str
        The query endpoint (a mirror or proxy; default the public one).
    **client
        ``expire_after``, ``retries``, ``backoff``, ``timeout`` of the
        :class:`~vfr.data.providers.base.JsonClient`.
    """

    def __init__(self, api_key: str | None = None, *, calls_per_minute: int = 5,
                 cache_dir: str | Path | None = None, base_url: str = URL, **client: Any) -> None:
        self.api_key = require_key("Alpha Vantage", api_key, "ALPHAVANTAGE_API_KEY")
        self.url = base_url
        self.client = JsonClient("alphavantage", RateLimiter(calls_per_minute, 60.0),
                                 cache_dir=cache_dir, **client)

    def _query(self, function: str, symbol: str, **extra: str) -> Any:
        return self.client.get_json(self.url, {"function": function, "symbol": symbol, **extra,
                                               "apikey": self.api_key},
                                    check=lambda payload: _check(payload, function))

    def daily_adjusted(self, symbol: str) -> pd.DataFrame:
        """Raw prices rows of ``symbol``'s full daily history (function=TIME_SERIES_DAILY_ADJUSTED)."""
        return parse_daily_adjusted(self._query("TIME_SERIES_DAILY_ADJUSTED", symbol, outputsize="full"))

    def earnings(self, symbol: str) -> pd.DataFrame:
        """Canonical earnings frame of ``symbol`` (function=EARNINGS)."""
        return parse_earnings(self._query("EARNINGS", symbol))

    def overview(self, symbol: str) -> pd.DataFrame:
        """Ratio row of ``symbol`` (function=OVERVIEW)."""
        return parse_overview(self._query("OVERVIEW", symbol))
