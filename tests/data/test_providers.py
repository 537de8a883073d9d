"""Provider adapters: parsing of payloads written by hand in each API's documented format,
rate limiting, caching and clear errors. (No network here: the live services were never
called; see vfr.data.providers.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vfr.data.fundamentals import EARNINGS_COLUMNS
from vfr.data.providers import (
    FMP,
    AlphaVantage,
    Fred,
    JsonClient,
    ProviderError,
    RateLimiter,
    SECCompanyFacts,
    monthly_table,
    parse_company_facts,
    parse_earning_calendar,
    parse_earnings,
    parse_observations,
    parse_overview,
    parse_ratios,
)
from vfr.features.fundamental import fundamental_features

FIX = Path(__file__).parent / "fixtures" / "providers"


def load(name: str):
    return json.loads((FIX / name).read_text())


def test_alphavantage_earnings_to_canonical():
    e = parse_earnings(load("av_earnings_IBM.json"))
    assert list(e.columns) == list(EARNINGS_COLUMNS)
    assert len(e) == 5  # the 1996 row reported on its fiscal end date is a bad date: dropped
    last = e.iloc[-1]
    assert last["symbol"] == "IBM"
    assert last["fiscal_date_ending"] == pd.Timestamp("2023-12-31")
    assert last["reported_date"] == pd.Timestamp("2024-01-24")
    assert last["reported_eps"] == pytest.approx(3.87)
    assert last["surprise_pct"] == pytest.approx(2.381)
    assert last["report_time"] == "post-market"
    assert e["fiscal_date_ending"].is_monotonic_increasing


def test_alphavantage_overview_none_is_missing_not_zero():
    r = parse_overview(load("av_overview_IBM.json"))
    assert r["symbol"].iloc[0] == "IBM"
    assert np.isnan(r["roe"].iloc[0])
    assert r["net_margin"].iloc[0] == pytest.approx(0.13)
    assert r["available_date"].iloc[0] == pd.Timestamp("2024-05-15")  # 45 days after 03-31


def test_alphavantage_rate_limit_note_is_an_error():
    with pytest.raises(ProviderError, match="25 requests per day"):
        parse_earnings(load("av_rate_limit_note.json"))


def test_fmp_earnings_and_ratios():
    e = parse_earning_calendar(load("fmp_earning_calendar_AAPL.json"),
                               load("fmp_earnings_surprises_AAPL.json"))
    assert len(e) == 3  # the scheduled (eps null) row is not a report
    assert list(e["fiscal_date_ending"].dt.strftime("%Y-%m-%d")) == ["2023-09-30", "2023-12-30",
                                                                     "2024-03-30"]
    feb = e[e["reported_date"] == "2024-02-01"].iloc[0]
    assert feb["estimated_eps"] == pytest.approx(2.1)  # filled from earnings-surprises
    assert feb["surprise_pct"] == pytest.approx((2.18 - 2.1) / 2.1 * 100)
    assert feb["report_time"] == "post-market"
    r = parse_ratios(load("fmp_ratios_AAPL.json"))
    assert list(r["period_end"].dt.strftime("%Y-%m-%d")) == ["2023-12-30", "2024-03-30"]
    assert np.isnan(r.loc[0, "debt_to_equity"])  # null -> missing, never zero
    assert r.loc[1, "roe"] == pytest.approx(0.318)
    assert r.loc[1, "available_date"] == pd.Timestamp("2024-05-29")


def test_fmp_error_payload():
    with pytest.raises(ProviderError, match="Invalid API KEY"):
        parse_ratios(load("fmp_error.json"))


def test_sec_company_facts_ratios_as_of_filing():
    r = parse_company_facts(load("sec_companyfacts_CIK0000320193.json"), "AAPL")
    assert list(r["period_end"].dt.strftime("%Y-%m-%d")) == ["2023-07-01", "2023-09-30"]
    q3 = r.iloc[0]
    # first filing of the quarter (2023-08-04), not the 2024 re-filing; annual facts ignored
    assert q3["available_date"] == pd.Timestamp("2023-08-05")
    assert q3["net_margin"] == pytest.approx(19881 / 81797)
    assert q3["gross_margin"] == pytest.approx(36413 / 81797)
    assert q3["operating_margin"] == pytest.approx(22998 / 81797)
    assert q3["roe"] == pytest.approx(4 * 19881 / 60274)
    assert q3["debt_to_equity"] == pytest.approx(98071 / 60274)
    q4 = r.iloc[1]
    assert q4["net_margin"] == pytest.approx(22956 / 89498)  # the 3-month fact of the 10-K
    assert np.isnan(q4["operating_margin"])  # not reported for that quarter: missing
    assert q4["available_date"] == pd.Timestamp("2023-11-04")


def test_provider_ratios_feed_fundamental_features():
    r = parse_company_facts(load("sec_companyfacts_CIK0000320193.json"), "AAPL")
    prices = pd.DataFrame({"symbol": "AAPL", "date": pd.bdate_range("2023-08-01", "2023-11-10")})
    prices["close_raw"] = 180.0
    empty = parse_earnings({"symbol": "AAPL", "quarterlyEarnings": []})
    f = fundamental_features(prices, empty, ratios=r).set_index("date")
    assert np.isnan(f.loc["2023-08-04", "net_margin"])
    assert f.loc["2023-08-07", "net_margin"] == pytest.approx(19881 / 81797, rel=1e-6)
    assert f.loc["2023-11-06", "net_margin"] == pytest.approx(22956 / 89498, rel=1e-6)


def test_fred_observations_and_monthly_table():
    gs10 = parse_observations(load("fred_observations_GS10.json"), "GS10")
    assert gs10["GS10"].tolist()[:2] == [2.71, 2.68]
    assert np.isnan(gs10["GS10"].iloc[2])  # "." is missing
    vix = parse_observations(load("fred_observations_VIXCLS.json"), "VIXCLS")
    table = monthly_table({"GS10": gs10, "VIXCLSx": vix})
    assert list(table.columns) == ["month", "GS10", "VIXCLSx"]
    jan = table[table["month"] == "2019-01-01"].iloc[0]
    assert jan["VIXCLSx"] == pytest.approx((23.22 + 25.45) / 2)
    with pytest.raises(ProviderError, match="not registered"):
        parse_observations(load("fred_error.json"), "GS10")


def test_clients_fail_clearly_without_keys(monkeypatch):
    for env in ("ALPHAVANTAGE_API_KEY", "FMP_API_KEY", "FRED_API_KEY", "VFR_SEC_USER_AGENT"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(ProviderError, match="ALPHAVANTAGE_API_KEY"):
        AlphaVantage()
    with pytest.raises(ProviderError, match="FMP_API_KEY"):
        FMP()
    with pytest.raises(ProviderError, match="FRED_API_KEY"):
        Fred()
    with pytest.raises(ProviderError, match="User-Agent"):
        SECCompanyFacts()


def test_client_without_network_fails_clearly(tmp_path):
    client = JsonClient("test", RateLimiter(10, 1.0), cache_dir=tmp_path, timeout=1.0, retries=2, backoff=0.01)
    with pytest.raises(ProviderError, match="failed .*gave up after 2 attempts"):
        # a reserved TEST-NET-1 address on a closed port: no service anywhere answers it
        client.get_json("http://192.0.2.1:9/x", {"apikey": "secret"})


def test_rate_limiter_spaces_calls():
    lim = RateLimiter(3, 0.3)
    t = time.monotonic()
    for _ in range(7):
        lim.wait()
    assert time.monotonic() - t >= 0.6 - 0.02  # 7 calls at 3 per 0.3 s need two full waits
