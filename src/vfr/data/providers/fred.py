"""FRED (St. Louis Fed) series -> the canonical macro tables (:class:`MacroData`).

Documented format (https://fred.stlouisfed.org/docs/api/fred/series_observations.html),
``GET https://api.stlouisfed.org/fred/series/observations?series_id=GS10&api_key=...&file_type=json``::

    {"realtime_start": "2024-05-01", "realtime_end": "2024-05-01",
     "observation_start": "1600-01-01", "observation_end": "9999-12-31", "units": "lin",
     "output_type": 1, "file_type": "json", "order_by": "observation_date",
     "sort_order": "asc", "count": 2, "offset": 0, "limit": 100000,
     "observations": [{"realtime_start": "2024-05-01", "realtime_end": "2024-05-01",
                       "date": "1953-04-01", "value": "2.83"},
                      {"realtime_start": "...", "realtime_end": "...", "date": "...",
                       "value": "."}]}

``"."`` marks a missing value. Rate limit: 120 requests/min; a free API key is required.
Monthly tables get ``month`` = first day of the month (daily series such as TWEXBGSMTH's
successor are averaged per month), so the lags of :mod:`vfr.features.macro` apply unchanged.
Never run against the live service in this project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vfr.data.fundamentals import FRED_MD_SERIES, MacroData
from vfr.data.providers.base import JsonClient, ProviderError, RateLimiter, require_key

URL = "https://api.stlouisfed.org/fred/series/observations"
#: FRED-MD column -> FRED series id (TWEXAFEGSMTHx is FRED-MD's splice of the broad index).
SERIES_IDS: dict[str, str] = {"FEDFUNDS": "FEDFUNDS", "UNRATE": "UNRATE", "CPIAUCSL": "CPIAUCSL",
                              "GS10": "GS10", "TB3MS": "TB3MS", "AAA": "AAA", "BAA": "BAA",
                              "TWEXAFEGSMTHx": "TWEXBGSMTH"}


def parse_observations(payload: dict, series: str) -> pd.DataFrame:
    """``date`` (datetime64[ns]) and ``series`` (float; ``"."`` -> NaN) of an observations
    response."""
    if not isinstance(payload, dict) or "observations" not in payload:
        msg = payload.get("error_message") if isinstance(payload, dict) else None
        raise ProviderError(f"FRED {series}: {msg or 'no observations in the response'}")
    obs = payload["observations"]
    return pd.DataFrame({
        "date": pd.to_datetime([o["date"] for o in obs]).astype("datetime64[ns]"),
        series: pd.to_numeric(pd.Series([o.get("value") for o in obs], dtype=object),
                              errors="coerce").to_numpy(float),
    })


def monthly_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """FRED-MD-like table: ``month`` + one column per series (monthly means)."""
    out: pd.DataFrame | None = None
    for name, f in frames.items():
        m = f.assign(month=f["date"].dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]"))
        m = m.groupby("month", as_index=False)[f.columns[1]].mean().rename(columns={f.columns[1]: name})
        out = m if out is None else out.merge(m, on="month", how="outer")
    if out is None:
        return pd.DataFrame({"month": pd.Series(dtype="datetime64[ns]")})
    return out.sort_values("month").reset_index(drop=True)


class Fred:
    """FRED client (key from ``api_key`` or ``FRED_API_KEY``), 120 requests/min.

    ``base_url`` points at a mirror or proxy of the observations endpoint (default the public
    one); ``**client`` are the :class:`~vfr.data.providers.base.JsonClient`'s ``expire_after``,
    ``retries``, ``backoff``, ``timeout``.
    """

    def __init__(self, api_key: str | None = None, *, cache_dir: str | Path | None = None,
                 base_url: str = URL, **client: Any) -> None:
        self.api_key = require_key("FRED", api_key, "FRED_API_KEY")
        self.url = base_url
        self.client = JsonClient("fred", RateLimiter(120, 60.0), cache_dir=cache_dir, **client)

    def series(self, series_id: str) -> pd.DataFrame:
        """All observations of one series (latest vintage)."""
        parsed: list[pd.DataFrame] = []
        self.client.get_json(self.url, {"series_id": series_id, "api_key": self.api_key, "file_type": "json"},
                             check=lambda payload: parsed.append(parse_observations(payload, series_id)))
        return parsed[0]

    def macro(self) -> MacroData:
        """:class:`MacroData` from FRED: the FRED-MD series used, VIXCLS and GDPC1/GDP."""
        frames = {name: self.series(sid) for name, sid in SERIES_IDS.items()
                  if name in FRED_MD_SERIES}
        vix = self.series("VIXCLS").rename(columns={"VIXCLS": "close"}).dropna()
        real = self.series("GDPC1")
        nominal = self.series("GDP")
        gdp = real.merge(nominal, on="date", how="outer").rename(
            columns={"GDPC1": "level-chained", "GDP": "level-current"})
        return MacroData(fred_md=monthly_table(frames), vix=vix.reset_index(drop=True),
                         gdp=gdp.sort_values("date").reset_index(drop=True))

