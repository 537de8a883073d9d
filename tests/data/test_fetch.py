"""`vfr data fetch`: a provider's answers (a real local HTTP server speaking each API's
documented format) validated as `vfr data ingest` validates files, kept under downloads/ and
ingested; a failed or bad download leaves the store as it was (issue 19)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.data.helpers import synthetic_raw
from vfr.cli import app
from vfr.data import MarketStore, tables
from vfr.data.fetch import fetch_prices, merge_by_symbol, parse_yfinance
from vfr.data.providers import ProviderError

runner = CliRunner()


def av_daily(raw: pd.DataFrame, symbol: str) -> dict:
    """A TIME_SERIES_DAILY_ADJUSTED answer of ``symbol``'s rows (newest first, strings)."""
    rows = raw[raw["symbol"] == symbol].sort_values("date", ascending=False)
    return {"Meta Data": {"1. Information": "Daily Time Series with Splits and Dividend Events",
                          "2. Symbol": symbol, "3. Last Refreshed": str(rows["date"].max().date())},
            "Time Series (Daily)": {
                str(r.date.date()): {"1. open": f"{r.open:.4f}", "2. high": f"{r.high:.4f}",
                                     "3. low": f"{r.low:.4f}", "4. close": f"{r.close:.4f}",
                                     "5. adjusted close": f"{r.adjusted_close:.4f}",
                                     "6. volume": str(int(r.volume)), "7. dividend amount": "0.0000",
                                     "8. split coefficient": "1.0"} for r in rows.itertuples()}}


def av_server(http, raw: pd.DataFrame, bad: str | None = None):
    def answer(query: dict) -> tuple:
        if query.get("apikey") != ["S3CR3T-AV"]:
            return 200, {"Error Message": "the parameter apikey is invalid or missing"}
        symbol = query["symbol"][0]
        if query["function"] == ["EARNINGS"]:
            return 200, {"symbol": symbol, "quarterlyEarnings": [
                {"fiscalDateEnding": "2019-12-31", "reportedDate": "2020-01-21", "reportedEPS": "4.71",
                 "estimatedEPS": "4.69", "surprise": "0.02", "surprisePercentage": "0.4264",
                 "reportTime": "post-market"}]}
        if symbol not in set(raw["symbol"]):
            return 200, {"Error Message": "Invalid API call. Please retry or visit the documentation"}
        payload = av_daily(raw, symbol)
        if symbol == bad:  # a row whose high is below its low
            first = next(iter(payload["Time Series (Daily)"].values()))
            first["2. high"] = "1.0"
        return 200, payload

    http.route("/query", answer)
    return f"{http.url}/query"


def stored_prices(home) -> pd.DataFrame:
    with MarketStore(f"duckdb:///{home / 'vfr.duckdb'}") as store:
        return store.read_prices() if store.has_table(tables.PRICES) else pd.DataFrame()


@pytest.fixture()
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "S3CR3T-AV")
    monkeypatch.setenv("VFR_HOME", str(tmp_path))
    return tmp_path


def test_fetch_prices_from_alphavantage_validates_keeps_the_file_and_ingests(http, env):
    raw = synthetic_raw(("IBM", "AAPL"), n=8)
    url = av_server(http, raw)
    args = ["data", "fetch", "prices", "--provider", "alphavantage", "--symbols", "ibm,AAPL",
            "--start", "2020-01-03", "--base-url", url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    prices = stored_prices(env)
    assert sorted(prices["symbol"].unique()) == ["AAPL", "IBM"]
    assert prices["date"].min() == pd.Timestamp("2020-01-03")  # --start kept
    ibm = raw[(raw["symbol"] == "IBM") & (raw["date"] >= "2020-01-03")].sort_values("date")
    got = prices[prices["symbol"] == "IBM"].sort_values("date")
    # the store keeps adjusted prices (OHLC x adjusted_close / close)
    assert got["close"].to_numpy() == pytest.approx(ibm["adjusted_close"].to_numpy(), abs=1e-3)
    kept = list((env / "downloads").glob("prices-alphavantage-*.parquet"))
    assert len(kept) == 1 and len(pd.read_parquet(kept[0])) == len(prices)
    assert http.hits("/query") == 2
    # again within the cache's life: no request, the same rows (the upsert is idempotent)
    assert runner.invoke(app, args).exit_code == 0
    assert http.hits("/query") == 2 and len(stored_prices(env)) == len(prices)
    assert b"S3CR3T-AV" not in (env / "cache" / "providers" / "alphavantage.sqlite").read_bytes()


def test_a_failed_or_invalid_download_leaves_the_store_unchanged(http, env):
    raw = synthetic_raw(("IBM", "AAPL"), n=5)
    url = av_server(http, raw, bad="AAPL")
    ok = runner.invoke(app, ["data", "fetch", "prices", "--provider", "alphavantage", "--symbols", "IBM",
                             "--base-url", url])
    assert ok.exit_code == 0, ok.output
    before = stored_prices(env)
    bad = runner.invoke(app, ["data", "fetch", "prices", "--provider", "alphavantage", "--symbols", "IBM,AAPL",
                              "--base-url", url, "--cache-hours", "0"])
    assert bad.exit_code == 3, bad.output  # BAD_INPUT: the row, the column and the source are named
    assert "alphavantage download" in bad.output and "high" in bad.output
    unknown = runner.invoke(app, ["data", "fetch", "prices", "--provider", "alphavantage", "--symbols", "NOPE",
                                  "--base-url", url])
    assert unknown.exit_code == 1 and "Invalid API call" in unknown.output
    http.route("/down", lambda q: (503, {"error": "maintenance"}))
    down = runner.invoke(app, ["data", "fetch", "prices", "--provider", "alphavantage", "--symbols", "IBM",
                               "--base-url", f"{http.url}/down", "--retries", "2", "--cache-hours", "0"])
    assert down.exit_code == 1 and "gave up after 2 attempts" in down.output
    assert "Traceback" not in bad.output + unknown.output + down.output
    pd.testing.assert_frame_equal(stored_prices(env), before)
    assert len(list((env / "downloads").glob("*.parquet"))) == 1  # only the good download was written


def test_fetch_earnings_keeps_the_other_symbols_reports(http, env, tmp_path):
    url = av_server(http, synthetic_raw(("IBM",), n=3))
    mine = tmp_path / "mine.csv"
    pd.DataFrame({"symbol": ["XYZ"], "fiscal_date_ending": ["2019-09-30"], "reported_date": ["2019-10-30"],
                  "reported_eps": [1.0], "estimated_eps": [0.9]}).to_csv(mine, index=False)
    assert runner.invoke(app, ["data", "ingest-fundamentals", "--earnings", str(mine)]).exit_code == 0
    result = runner.invoke(app, ["data", "fetch", "earnings", "--provider", "alphavantage", "--symbols", "IBM",
                                 "--base-url", url])
    assert result.exit_code == 0, result.output
    with MarketStore(f"duckdb:///{env / 'vfr.duckdb'}") as store:
        earnings = store.read_table(tables.EARNINGS)
    assert sorted(earnings["symbol"]) == ["IBM", "XYZ"]
    ibm = earnings[earnings["symbol"] == "IBM"].iloc[0]
    assert ibm["reported_eps"] == pytest.approx(4.71) and ibm["reported_date"] == pd.Timestamp("2020-01-21")


def test_fetch_macro_from_fred_writes_the_ingest_layout(http, env, monkeypatch):
    monkeypatch.setenv("FRED_API_KEY", "FKEY")
    months = pd.date_range("2018-01-01", periods=14, freq="MS")

    def answer(query: dict) -> tuple:
        sid = query["series_id"][0]
        dates = pd.date_range("2018-01-01", periods=300, freq="B") if sid == "VIXCLS" else \
            pd.date_range("2018-01-01", periods=5, freq="QS") if sid in ("GDP", "GDPC1") else months
        return 200, {"observations": [{"date": str(d.date()), "value": "." if i == 3 else f"{2 + i / 100:.2f}"}
                                      for i, d in enumerate(dates)]}

    http.route("/fred", answer)
    result = runner.invoke(app, ["data", "fetch", "macro", "--provider", "fred", "--base-url", f"{http.url}/fred"])
    assert result.exit_code == 0, result.output
    with MarketStore(f"duckdb:///{env / 'vfr.duckdb'}") as store:
        fred_md = store.read_table(tables.MACRO_FRED_MD)
        vix = store.read_table(tables.MACRO["vix"])
    assert len(fred_md) == 14 and fred_md["GS10"].isna().sum() == 1  # FRED's "." is missing, not zero
    assert len(vix) == 299
    assert http.seen[0][1]["api_key"] == ["FKEY"]


def test_usage_errors_are_one_line(env):
    for args, words in ((["data", "fetch", "bonds", "--provider", "fred"], "WHAT must be one of"),
                        (["data", "fetch", "prices", "--provider", "fred", "--symbols", "IBM"],
                         "--provider for prices"),
                        (["data", "fetch", "prices", "--provider", "yfinance"], "needs --symbols")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output


def test_yfinance_download_layout_to_raw_prices():
    """``yfinance.download(..., auto_adjust=False, actions=True)``'s layout (field, ticker) ->
    raw prices; Yahoo cannot be reached from here, so the download itself is replaced."""
    dates = pd.DatetimeIndex(pd.bdate_range("2020-01-02", periods=4), name="Date")
    fields = ["Adj Close", "Close", "Dividends", "High", "Low", "Open", "Stock Splits", "Volume"]
    cols = pd.MultiIndex.from_product([fields, ["AAPL", "MSFT"]], names=["Price", "Ticker"])
    frame = pd.DataFrame(1.0, index=dates, columns=cols)
    for t, base in (("AAPL", 75.0), ("MSFT", 160.0)):
        frame[("Close", t)] = base + pd.Series(range(4), index=dates)
        frame[("Open", t)], frame[("Low", t)] = frame[("Close", t)] - 0.5, frame[("Close", t)] - 1
        frame[("High", t)], frame[("Adj Close", t)] = frame[("Close", t)] + 1, frame[("Close", t)] * 0.98
        frame[("Volume", t)], frame[("Dividends", t)], frame[("Stock Splits", t)] = 1e6, 0.0, 0.0
    frame.loc[dates[2], ("Stock Splits", "AAPL")] = 4.0
    frame.loc[dates[3], ("Close", "MSFT")] = float("nan")  # no trade that day: dropped
    raw = parse_yfinance(frame)
    assert len(raw) == 7 and list(raw.columns[:2]) == ["symbol", "date"]
    assert raw.loc[(raw["symbol"] == "AAPL"), "split_coefficient"].tolist() == [1.0, 1.0, 4.0, 1.0]
    out = fetch_prices("yfinance", ["AAPL", "MSFT"], start="2020-01-03", download=lambda s, a, b: frame)
    assert out["date"].min() == pd.Timestamp("2020-01-03") and set(out["symbol"]) == {"AAPL", "MSFT"}
    with pytest.raises(ProviderError, match="no rows returned"):
        parse_yfinance(frame.iloc[:0])


def test_merge_by_symbol_replaces_only_the_fetched_symbols():
    cols = ["symbol", "fiscal_date_ending", "reported_eps"]
    stored = pd.DataFrame([["A", "2019-03-31", 1.0], ["B", "2019-03-31", 2.0]], columns=cols)
    fetched = pd.DataFrame([["B", "2019-06-30", 3.0]], columns=cols)
    merged = merge_by_symbol(stored, fetched)
    assert merged.values.tolist() == [["A", "2019-03-31", 1.0], ["B", "2019-06-30", 3.0]]
    assert merge_by_symbol(None, fetched).equals(fetched)


# -- ratios from SEC EDGAR (company facts + company_tickers.json) ------------------------------
def sec_server(http) -> str:
    """SEC's two documented answers: the ticker table and AAPL's company facts (the fixture)."""
    import json
    from pathlib import Path

    facts = json.loads((Path(__file__).parent / "fixtures" / "providers"
                        / "sec_companyfacts_CIK0000320193.json").read_text())
    http.answer("/files/company_tickers.json",
                (200, {"0": {"cik_str": 320193, "ticker": "AAPL", "title": "Apple Inc."},
                       "1": {"cik_str": 1067983, "ticker": "BRK-B", "title": "Berkshire Hathaway Inc."}}))
    http.answer("/api/xbrl/companyfacts/CIK0000320193.json", (200, facts))
    return http.url


def test_fetch_ratios_from_sec_feed_the_fundamental_features(http, env, tmp_path, monkeypatch):
    """SEC company facts -> ratios file -> store -> ``roe`` etc. in the features, from the day
    after the filing only (point in time), with the User-Agent the SEC asks for."""
    monkeypatch.setenv("VFR_SEC_USER_AGENT", "VFR tests vfr-tests@example.com")
    dates = pd.bdate_range("2023-07-03", "2023-11-30")
    close = 180.0 + 0.1 * pd.Series(range(len(dates)), dtype=float)
    raw = pd.DataFrame({"symbol": "AAPL", "date": dates, "open": close, "high": close + 1, "low": close - 1,
                        "close": close, "adjusted_close": close, "volume": 1_000_000.0,
                        "dividend_amount": 0.0, "split_coefficient": 1.0})
    raw.to_parquet(tmp_path / "aapl.parquet", index=False)
    pd.DataFrame({"symbol": ["AAPL"], "fiscal_date_ending": ["2023-07-01"], "reported_date": ["2023-08-03"],
                  "reported_eps": [1.26], "estimated_eps": [1.19]}).to_csv(tmp_path / "eps.csv", index=False)
    for args in (["data", "ingest", str(tmp_path / "aapl.parquet")],
                 ["data", "ingest-fundamentals", "--earnings", str(tmp_path / "eps.csv")]):
        assert runner.invoke(app, args).exit_code == 0
    url = sec_server(http)
    result = runner.invoke(app, ["data", "fetch", "ratios", "--provider", "sec", "--symbols", "AAPL",
                                 "--base-url", url])
    assert result.exit_code == 0, result.output
    assert "ratios: 2 rows" in result.output
    kept = list((env / "downloads").glob("ratios-sec-*.parquet"))
    assert len(kept) == 1 and len(pd.read_parquet(kept[0])) == 2
    assert http.hits("/files/company_tickers.json") == 1 and len(http.seen) == 2
    assert {h.get("User-Agent") for h in http.headers} == {"VFR tests vfr-tests@example.com"}
    assert runner.invoke(app, ["features", "build"]).exit_code == 0
    with MarketStore(f"duckdb:///{env / 'vfr.duckdb'}") as store:
        feats = store.read_table(tables.FEATURES).set_index("date")
    # Q3 (ended 2023-07-01) was filed 2023-08-04: usable from 2023-08-07 (the next trading day)
    assert feats.loc[:"2023-08-04", "roe"].isna().all()
    assert feats.loc["2023-08-07", "roe"] == pytest.approx(4 * 19881 / 60274, rel=1e-6)
    assert feats.loc["2023-08-07", "net_margin"] == pytest.approx(19881 / 81797, rel=1e-6)
    # Q4's operating income was not reported: missing, never 0
    assert feats.loc["2023-11-06":, "operating_margin"].isna().all()


def test_fetch_ratios_errors_are_one_line_and_change_nothing(http, env, monkeypatch):
    url = sec_server(http)
    no_agent = runner.invoke(app, ["data", "fetch", "ratios", "--provider", "sec", "--symbols", "AAPL",
                                   "--base-url", url])
    assert no_agent.exit_code == 1 and "VFR_SEC_USER_AGENT" in no_agent.output
    monkeypatch.setenv("VFR_SEC_USER_AGENT", "VFR tests vfr-tests@example.com")
    unknown = runner.invoke(app, ["data", "fetch", "ratios", "--provider", "sec", "--symbols", "AAPL,NOPE",
                                  "--base-url", url])
    assert unknown.exit_code == 1 and "no CIK for NOPE" in unknown.output
    wrong = runner.invoke(app, ["data", "fetch", "ratios", "--provider", "fred", "--symbols", "AAPL"])
    assert wrong.exit_code == 2 and "--provider for ratios must be one of sec" in wrong.output
    assert "Traceback" not in no_agent.output + unknown.output + wrong.output
    assert not (env / "downloads").exists() or not list((env / "downloads").glob("ratios-*"))
    with MarketStore(f"duckdb:///{env / 'vfr.duckdb'}") as store:
        assert not store.has_table(tables.RATIOS)
