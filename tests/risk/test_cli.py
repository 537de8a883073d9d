"""`vfr risk report` against a real store built from real prices."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from vfr.cli import app
from vfr.data import MarketStore, adjust_prices


def test_risk_report_command(sp500_raw_small, settings):
    prices = adjust_prices(sp500_raw_small)
    mom = prices.groupby("symbol", sort=False)["close"].pct_change(20, fill_method=None)
    # a stand-in probability known at its date: the percentile of the 20-day return
    preds = prices[["date", "symbol"]].assign(prob=mom.to_numpy()).dropna()
    preds["prob"] = preds.groupby("date")["prob"].rank(pct=True)
    with MarketStore.from_settings(settings) as store:
        store.write_prices(prices)
        store.replace_table("predictions_oos", preds)
    result = CliRunner().invoke(app, ["risk", "report", "--home", str(settings.home), "--date", "2018-06-29",
                                      "--top-n", "8", "--method", "min_volatility", "--max-weight", "0.3",
                                      "--stress", "Feb 2018:2018-01-29:2018-02-08"])
    assert result.exit_code == 0, result.output
    assert "historical" in result.output and "Feb 2018" in result.output and "breaches" in result.output
    reports = list(Path(settings.reports_dir).glob("risk-*/report.html"))
    assert len(reports) == 1 and (reports[0].parent / "var_backtest.png").exists()
    bad = CliRunner().invoke(app, ["risk", "report", "--home", str(settings.home), "--stress", "oops"])
    assert bad.exit_code == 2 and "--stress expects" in bad.output  # a usage error (vfr.cli.exitcodes)
