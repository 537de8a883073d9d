"""Backtesting: long-only top-N engine with execution lag and costs, metrics, HTML report.

Public interface::

    run_backtest(prices, scores, *, top_n, rebalance_every, cost_bps, execution_lag,
                 start, end, benchmark) -> BacktestResult
    write_report(result, out_dir, *, title, ic, feature_importance, extra_tables) -> Path
    cagr, annual_volatility, sharpe_ratio, sortino_ratio, max_drawdown, calmar_ratio,
    hit_rate, turnover, total_return, drawdown_series, summary_metrics
"""

from vfr.backtest.engine import BacktestResult, run_backtest
from vfr.backtest.metrics import (
    Turnover,
    annual_volatility,
    cagr,
    calmar_ratio,
    drawdown_series,
    hit_rate,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    summary_metrics,
    total_return,
    turnover,
)
from vfr.backtest.report import write_report

__all__ = [
    "BacktestResult",
    "Turnover",
    "annual_volatility",
    "cagr",
    "calmar_ratio",
    "drawdown_series",
    "hit_rate",
    "max_drawdown",
    "run_backtest",
    "sharpe_ratio",
    "sortino_ratio",
    "summary_metrics",
    "total_return",
    "turnover",
    "write_report",
]
