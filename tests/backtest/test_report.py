"""HTML report: a self-contained folder with the charts it references."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from vfr.backtest import BacktestConfig, run_backtest, write_report
from vfr.ml import ic_by_date


def _result():
    rng = np.random.default_rng(4)
    dates = pd.bdate_range("2021-01-01", periods=80)
    syms = [f"S{i}" for i in range(10)]
    close = pd.DataFrame(30 * np.cumprod(1 + rng.normal(0.0005, 0.02, (80, 10)), axis=0), index=dates, columns=syms)
    prices = close.rename_axis(index="date", columns="symbol").stack().rename("close").reset_index()
    scores = prices[["date", "symbol"]].assign(score=rng.normal(size=len(prices)))
    fwd = close.shift(-5) / close - 1
    fwd = fwd.rename_axis(index="date", columns="symbol").stack().rename("fwd_ret_1w").reset_index()
    spx = pd.Series(np.cumprod(1 + rng.normal(0, 0.01, 60)) * 3000, index=dates[10:70], name="S&P 500 <index>")
    result = run_backtest(prices, scores, BacktestConfig(top_n=3), benchmark=spx)
    return result, ic_by_date(scores.merge(fwd, on=["date", "symbol"]), "score", "fwd_ret_1w")


def test_report_is_self_contained(tmp_path):
    res, ic = _result()
    out = tmp_path / "rep"
    path = write_report(res, out, title="Test <report>", ic=ic,
                        feature_importance=pd.Series({"mom_20": 3.0, "rsi_14": 1.0, "vol_20": 2.0}),
                        extra_tables={"Selections": res.weights.tail(5)})
    assert path == out / "report.html" and path.exists()
    html = path.read_text(encoding="utf-8")
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert set(srcs) == {"equity.png", "drawdown.png", "rolling_sharpe.png", "monthly_returns.png", "ic.png",
                         "feature_importance.png"}
    for src in srcs:
        f = out / src
        assert not src.startswith("/") and f.exists() and f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for key in ("cagr", "annual_volatility", "sharpe_ratio", "sortino_ratio", "max_drawdown",
                "calmar_ratio", "hit_rate", "annual_turnover"):
        assert key in html
    for col in ("strategy_net", "strategy_gross", "equal_weight", "S&amp;P 500 &lt;index&gt;"):
        assert col in html
    assert "Test &lt;report&gt;" in html  # autoescaped
    assert "Selections" in html and "IC summary" in html
    assert f"{res.metrics['strategy_net']['cagr']:.2%}" in html


def test_report_without_optional_parts(tmp_path):
    res, _ = _result()
    path = write_report(res, tmp_path, title="Plain")
    html = path.read_text(encoding="utf-8")
    assert set(re.findall(r'<img src="([^"]+)"', html)) == {"equity.png", "drawdown.png", "rolling_sharpe.png",
                                                            "monthly_returns.png"}
    assert not (tmp_path / "ic.png").exists()


def test_report_with_factor_evaluation(tmp_path):
    from vfr.backtest.factor import evaluate_factor

    rng = np.random.default_rng(4)
    dates = pd.bdate_range("2020-01-01", periods=120)
    close = pd.DataFrame(50 * np.cumprod(1 + rng.normal(0, 0.02, (120, 12)), axis=0), index=dates,
                         columns=[f"S{i}" for i in range(12)])
    prices = close.rename_axis(index="date", columns="symbol").stack().rename("close").reset_index()
    scores = prices[["date", "symbol"]].assign(score=rng.normal(size=len(prices)))
    res = run_backtest(prices, scores, BacktestConfig(top_n=3))
    fac = evaluate_factor(scores, prices, horizons=(1, 5), quantiles=3)
    html = write_report(res, tmp_path, title="F", factor=fac).read_text(encoding="utf-8")
    assert {"ic_decay.png", "quantile_returns.png"} <= set(re.findall(r'<img src="([^"]+)"', html))
    assert "IC decay" in html and "rank autocorrelation" in html


def test_monthly_returns_by_hand():
    from vfr.backtest.report import monthly_returns

    idx = pd.to_datetime(["2020-01-02", "2020-01-03", "2020-02-03", "2021-03-01"])
    t = monthly_returns(pd.Series([0.1, -0.1, 0.05, 0.02], index=idx))
    assert t.loc[2020, 1] == pytest.approx(1.1 * 0.9 - 1)
    assert t.loc[2020, 2] == pytest.approx(0.05) and t.loc[2021, 3] == pytest.approx(0.02)
    assert np.isnan(t.loc[2020, 12]) and list(t.columns) == list(range(1, 13))
