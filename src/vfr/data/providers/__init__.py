"""Provider adapters mapping external APIs into VFR's canonical tables (user's own keys).

- :class:`AlphaVantage` (EARNINGS, OVERVIEW), :class:`FMP` (earnings, ratios),
  :class:`SECCompanyFacts` (EDGAR XBRL company facts, no key), :class:`Fred` (FRED series ->
  :class:`~vfr.data.fundamentals.MacroData`).
- Each respects its documented rate limit, caches responses on disk (keys never stored), and
  raises :class:`ProviderError` with a clear message without a key or network.

None has been run against the live service here (no internet on the development machines);
the ``parse_*`` functions are tested on hand-written payloads in the documented formats.
"""

from vfr.data.providers.alphavantage import AlphaVantage, parse_earnings, parse_overview
from vfr.data.providers.base import JsonClient, ProviderError, RateLimiter
from vfr.data.providers.fmp import FMP, parse_earning_calendar, parse_ratios
from vfr.data.providers.fred import Fred, monthly_table, parse_observations
from vfr.data.providers.sec import SECCompanyFacts, parse_company_facts

__all__ = ["FMP", "AlphaVantage", "Fred", "JsonClient", "ProviderError", "RateLimiter",
           "SECCompanyFacts", "monthly_table", "parse_company_facts", "parse_earning_calendar",
           "parse_earnings", "parse_observations", "parse_overview", "parse_ratios"]
