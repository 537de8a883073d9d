"""Risk report and the portfolio of a strategy at a date, on real prices."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from vfr.data import adjust_prices
from vfr.data.samples import sp500_index_levels
from vfr.risk.report import risk_report
from vfr.risk.stage import portfolio_at


@pytest.fixture(scope="module")
def prices_and_scores(sp500_raw_small):
    prices = adjust_prices(sp500_raw_small)[["symbol", "date", "close"]]
    mom = prices.groupby("symbol", sort=False)["close"].pct_change(20, fill_method=None)
    return prices, prices[["date", "symbol"]].assign(score=mom.to_numpy())


def test_portfolio_at_uses_only_scores_up_to_date(prices_and_scores):
    prices, scores = prices_and_scores
    when = pd.Timestamp("2016-06-30")
    w = portfolio_at(scores, prices, when, top_n=5)
    day = scores[scores["date"] == when].nlargest(5, "score")
    assert sorted(w.index) == sorted(day["symbol"]) and w.sum() == pytest.approx(1.0)
    later = scores.assign(score=scores["score"].where(scores["date"] <= when, -scores["score"]))
    assert portfolio_at(later, prices, when, top_n=5).equals(w)
    h = portfolio_at(scores, prices, when, top_n=8, method="hrp", max_weight=0.2)
    assert h.sum() == pytest.approx(1.0) and h.max() <= 0.2 + 1e-9


def test_risk_report_written(tmp_path, prices_and_scores):
    prices, _ = prices_and_scores
    w = pd.Series(0.25, index=["AAPL", "JPM", "XOM", "KO"])
    rep = risk_report(prices, w, "2018-12-31", tmp_path, benchmark=sp500_index_levels(), level=0.99,
                      windows={"user window": ("2016-01-04", "2016-02-11")})
    html = rep.path.read_text(encoding="utf-8")
    assert set(re.findall(r'<img src="([^"]+)"', html)) == {"drawdown_forecast.png", "var_backtest.png"}
    assert "user window" in rep.stress.index and "2018 Q4" in rep.stress.index
    assert set(rep.backtest) == {"historical 95%", "historical 99%", "parametric 95%", "parametric 99%"}
    bt = rep.backtest["historical 95%"]
    assert 0.02 < bt.breach_rate < 0.1
    assert rep.sharpe is not None and rep.sharpe.lower < rep.sharpe.sharpe < rep.sharpe.upper


def test_kupiec_verdict_in_words() -> None:
    """Issue 17: the VaR backtest's Kupiec test gets a verdict sentence, not just a p-value."""
    from vfr.risk.report import kupiec_verdict
    from vfr.risk.var import VaRBacktest, kupiec_pof

    def bt(breaches: int, n: int = 1000, level: float = 0.99) -> VaRBacktest:
        lr, p = kupiec_pof(breaches, n, level)
        return VaRBacktest(frame=pd.DataFrame(), level=level, breaches=breaches, n=n, breach_rate=breaches / n,
                           kupiec_lr=lr, kupiec_pvalue=p)

    assert kupiec_verdict(bt(30)).startswith("rejected at 5%: the VaR model under-predicts losses")
    assert "30 breaches in 1,000 days, 10.0 expected" in kupiec_verdict(bt(30))
    assert kupiec_verdict(bt(0)).startswith("rejected at 5%: the VaR model over-predicts losses")
    assert kupiec_verdict(bt(10)).startswith("not rejected at 5%")
