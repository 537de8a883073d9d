"""SEC EDGAR XBRL company facts (no key) -> balance-sheet ratio rows, as of the filing date.

Documented format (https://www.sec.gov/edgar/sec-api-documentation), GET
``https://data.sec.gov/api/xbrl/companyfacts/CIK##########.json``::

    {"cik": 320193, "entityName": "Apple Inc.",
     "facts": {"us-gaap": {
        "NetIncomeLoss": {"label": "...", "units": {"USD": [
            {"start": "2023-07-02", "end": "2023-09-30", "val": 22956000000,
             "accn": "0000320193-23-000106", "fy": 2023, "fp": "FY", "form": "10-K",
             "filed": "2023-11-03", "frame": "CY2023Q3"}, ...]}},
        "StockholdersEquity": {"units": {"USD": [{"end": "2023-09-30", "val": ..., ...}]}},
        ...}}}

Duration facts (income statement) have ``start``; instant facts (balance sheet) do not. A
ratio is usable from the day after the ``filed`` date of the filing that reported it. The SEC
asks for at most 10 requests per second and a ``User-Agent`` naming the requester and an
e-mail address. Never run against the live service in this project.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.data.providers.base import JsonClient, ProviderError, RateLimiter

URL = "https://data.sec.gov/api/xbrl/companyfacts/CIK{cik:010d}.json"
#: SEC's ticker -> CIK table: ``{"0": {"cik_str": 320193, "ticker": "AAPL", "title": "Apple Inc."}, ...}``.
TICKERS_URL = "https://www.sec.gov/files/company_tickers.json"
_REVENUE = ("Revenues", "RevenueFromContractWithCustomerExcludingAssessedTax", "SalesRevenueNet")


def _facts(payload: dict, names: tuple[str, ...], *, duration: bool) -> pd.DataFrame:
    """USD facts of the first concept present: ``end, filed, val`` (quarter durations only
    when ``duration``: 80..100 days), latest filing per period end kept out (first filed)."""
    gaap = payload.get("facts", {}).get("us-gaap", {})
    for name in names:
        units = gaap.get(name, {}).get("units", {}).get("USD")
        if units:
            f = pd.DataFrame(units)
            f["end"] = pd.to_datetime(f["end"])
            f["filed"] = pd.to_datetime(f["filed"])
            if duration:
                if "start" not in f.columns:
                    continue
                days = (f["end"] - pd.to_datetime(f["start"])).dt.days
                f = f[(days >= 80) & (days <= 100)]
            elif "start" in f.columns:
                f = f[f["start"].isna()]
            f = f[f["form"].astype(str).str.startswith(("10-Q", "10-K"))] if "form" in f else f
            # the first time a value for that period end was filed is when it became known
            f = f.sort_values(["end", "filed"]).drop_duplicates("end", keep="first")
            return f[["end", "filed", "val"]].reset_index(drop=True)
    return pd.DataFrame({"end": pd.Series(dtype="datetime64[ns]"),
                         "filed": pd.Series(dtype="datetime64[ns]"), "val": pd.Series(dtype=float)})


def parse_company_facts(payload: dict, symbol: str) -> pd.DataFrame:
    """Ratio rows per quarter end: ``symbol, period_end, available_date, roe, debt_to_equity,
    gross_margin, operating_margin, net_margin``.

    ``roe`` = 4 x quarterly net income / stockholders' equity at the quarter end (annualised
    quarter; fraction); ``debt_to_equity`` = LongTermDebt (or LongTermDebtNoncurrent) / equity;
    margins = GrossProfit, OperatingIncomeLoss, NetIncomeLoss over revenue of the quarter.
    ``available_date`` = day after the latest ``filed`` date among the facts used. Missing
    concepts give NaN, never zero.
    """
    if not isinstance(payload, dict) or "facts" not in payload:
        raise ProviderError(f"SEC company facts for {symbol}: no 'facts' in the payload")
    ni = _facts(payload, ("NetIncomeLoss", "ProfitLoss"), duration=True)
    rev = _facts(payload, _REVENUE, duration=True)
    gp = _facts(payload, ("GrossProfit",), duration=True)
    oi = _facts(payload, ("OperatingIncomeLoss",), duration=True)
    eq = _facts(payload, ("StockholdersEquity",), duration=False)
    debt = _facts(payload, ("LongTermDebt", "LongTermDebtNoncurrent"), duration=False)
    ends = sorted(set(ni["end"]) | set(rev["end"]))
    out = pd.DataFrame({"period_end": pd.to_datetime(ends)})
    filed = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
    vals = {}
    for key, f in (("ni", ni), ("rev", rev), ("gp", gp), ("oi", oi), ("eq", eq), ("debt", debt)):
        m = out.merge(f, left_on="period_end", right_on="end", how="left")
        vals[key] = m["val"].astype(float).to_numpy()
        filed = pd.concat([filed, m["filed"].astype("datetime64[ns]")], axis=1).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        eqv = np.where(vals["eq"] > 0, vals["eq"], np.nan)
        revv = np.where(vals["rev"] > 0, vals["rev"], np.nan)
        out["roe"] = 4.0 * vals["ni"] / eqv
        out["debt_to_equity"] = vals["debt"] / eqv
        out["gross_margin"] = vals["gp"] / revv
        out["operating_margin"] = vals["oi"] / revv
        out["net_margin"] = vals["ni"] / revv
    out.insert(0, "symbol", symbol)
    out.insert(2, "available_date", filed + pd.Timedelta(days=1))
    return out.dropna(subset=["available_date"]).reset_index(drop=True)


class SECCompanyFacts:
    """EDGAR company-facts client: no key, 10 requests/s, ``User-Agent`` required.

    Parameters
    ----------
    user_agent : str, optional
        e.g. ``"Jane Doe jane@example.com"``; default ``VFR_SEC_USER_AGENT``.
    base_url : str
        Company-facts URL template with ``{cik:010d}`` (a mirror or proxy; default the public one).
    tickers_url : str
        URL of SEC's ``company_tickers.json`` (ticker -> CIK; default the public one).
    **client
        ``expire_after``, ``retries``, ``backoff``, ``timeout`` of the
        :class:`~vfr.data.providers.base.JsonClient`.
    """

    def __init__(self, user_agent: str | None = None, *, cache_dir: str | Path | None = None,
                 base_url: str = URL, tickers_url: str = TICKERS_URL, **client: Any) -> None:
        ua = user_agent or os.environ.get("VFR_SEC_USER_AGENT")
        if not ua or "@" not in ua:
            raise ProviderError("SEC EDGAR requires a User-Agent with a contact e-mail: pass "
                                "user_agent='Name name@example.com' or set VFR_SEC_USER_AGENT")
        self.url = base_url
        self.tickers_url = tickers_url
        self.client = JsonClient("sec", RateLimiter(10, 1.0), cache_dir=cache_dir,
                                 headers={"User-Agent": ua, "Accept-Encoding": "gzip, deflate"}, **client)

    def ratios(self, symbol: str, cik: int) -> pd.DataFrame:
        """Ratio rows of one company (``cik`` from SEC's company_tickers.json)."""
        return parse_company_facts(self.client.get_json(self.url.format(cik=int(cik))), symbol)

    def ciks(self, symbols: list[str]) -> dict[str, int]:
        """The CIK of each ticker, from SEC's ``company_tickers.json`` (one request, cached).
        A class-share dot is looked up as SEC writes it (``BRK.B`` -> ``BRK-B``).

        Raises
        ------
        ProviderError
            The table has no entry for some tickers (all named) or is not SEC's layout.
        """
        table = self.client.get_json(self.tickers_url)
        try:
            known = {str(row["ticker"]).upper(): int(row["cik_str"]) for row in table.values()}
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ProviderError("SEC company_tickers.json: not the documented layout "
                                "({\"0\": {\"cik_str\": ..., \"ticker\": ...}, ...})") from None
        out, missing = {}, []
        for sym in symbols:
            cik = known.get(sym.upper(), known.get(sym.upper().replace(".", "-")))
            if cik is None:
                missing.append(sym)
            else:
                out[sym] = cik
        if missing:
            raise ProviderError(f"SEC: no CIK for {', '.join(missing)} in company_tickers.json")
        return out
