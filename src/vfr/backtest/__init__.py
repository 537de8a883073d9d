"""Backtesting: long-only top-N engine with execution lag and costs, metrics, HTML report.

Public interface::

    BacktestConfig(top_n, rebalance_every, rebalance, execution_lag, start, end, quantile,
                   long_short, max_weight, sector_neutral, min_trade, costs, fill, dividends,
                   capital, gross_exposure, buffer_n, max_drops, max_sector_weight, target_vol,
                   vol_lookback, max_leverage, weighting, risk_aversion, turnover_penalty, alpha_ic,
                   cov_lookback); BacktestConfig.from_settings(settings, **overrides)
    run_backtest(prices, scores, config, *, benchmark, sectors) -> BacktestResult
    CostModel(commission_bps, commission_per_share, slippage_bps, impact_coef, adv_window)
    select_weights(score, eligible, *, top_n, quantile, long_short, sector_codes, max_weight)
    buffered_selection(score, eligible, held, *, top_n, buffer_n, max_drops) -> bool mask
    cap_sector_weights(w, sector_codes, max_share, *, gross, max_weight) -> weights
    inverse_vol_weights(w, sigma, groups) -> weights  (naive risk parity per leg)
    vol_target_scale(returns, target_vol, *, max_leverage, min_obs) -> float
    vol_targeted_returns(returns, target_vol, *, every, lookback, max_leverage) -> Series
    cost_aware_weights(alpha, risk, current, *, risk_aversion, cost, gross, max_weight, benchmark)
        -> weights  (active mean-variance with a turnover penalty; cvxpy + Clarabel)
    grinold_alpha(score, sigma, *, ic) -> alpha;  shrunk_covariance_factor(returns, *, n_factors) -> (F, d)
    optimized_weights(returns, score, eligible, previous, config, sector_codes) -> weights  (one rebalance)
    write_report(result, out_dir, *, title, ic, feature_importance, extra_tables, factor, links,
                 summary) -> Path
    write_quantstats_tearsheet(result, path, *, title) -> Path   (QuantStats; extra vfr[tearsheet])
    write_factor_tearsheet(scores, prices, out_dir, *, periods, quantiles) -> Path  (alphalens; same extra)
    evaluate_factor(scores, prices, *, horizons, quantiles) -> FactorReport
    period_table(results, periods) -> DataFrame  (before/after costs, per sub-period)
    cagr, annual_volatility, sharpe_ratio, sortino_ratio, max_drawdown, calmar_ratio,
    hit_rate, turnover, total_return, drawdown_series, summary_metrics, max_drawdown_duration,
    average_win, average_loss, profit_factor, information_ratio, alpha_beta, relative_metrics
"""

from vfr.backtest.compare import period_table
from vfr.backtest.config import BacktestConfig
from vfr.backtest.costs import CostModel, impact_fraction, trade_costs
from vfr.backtest.engine import (
    BacktestResult,
    buffered_selection,
    cap_sector_weights,
    inverse_vol_weights,
    optimized_weights,
    run_backtest,
    select_weights,
    vol_target_scale,
    vol_targeted_returns,
)
from vfr.backtest.factor import FactorReport, evaluate_factor, forward_returns
from vfr.backtest.metrics import (
    Turnover,
    alpha_beta,
    annual_volatility,
    average_loss,
    average_win,
    cagr,
    calmar_ratio,
    drawdown_series,
    hit_rate,
    information_ratio,
    max_drawdown,
    max_drawdown_duration,
    profit_factor,
    relative_metrics,
    sharpe_ratio,
    sortino_ratio,
    summary_metrics,
    total_return,
    turnover,
)
from vfr.backtest.optimizer import OptimizerError, cost_aware_weights, grinold_alpha, shrunk_covariance_factor
from vfr.backtest.report import monthly_returns, write_report
from vfr.backtest.tearsheet import (
    FACTOR_FILE,
    QUANTSTATS_FILE,
    TearsheetError,
    require_tearsheet_libraries,
    write_factor_tearsheet,
    write_quantstats_tearsheet,
)

__all__ = [
    "FACTOR_FILE",
    "QUANTSTATS_FILE",
    "BacktestConfig",
    "BacktestResult",
    "CostModel",
    "FactorReport",
    "OptimizerError",
    "TearsheetError",
    "Turnover",
    "alpha_beta",
    "annual_volatility",
    "average_loss",
    "average_win",
    "buffered_selection",
    "cagr",
    "cap_sector_weights",
    "calmar_ratio",
    "cost_aware_weights",
    "drawdown_series",
    "evaluate_factor",
    "forward_returns",
    "grinold_alpha",
    "hit_rate",
    "inverse_vol_weights",
    "impact_fraction",
    "information_ratio",
    "max_drawdown",
    "max_drawdown_duration",
    "monthly_returns",
    "optimized_weights",
    "period_table",
    "profit_factor",
    "relative_metrics",
    "run_backtest",
    "require_tearsheet_libraries",
    "select_weights",
    "sharpe_ratio",
    "shrunk_covariance_factor",
    "sortino_ratio",
    "summary_metrics",
    "total_return",
    "trade_costs",
    "turnover",
    "vol_target_scale",
    "vol_targeted_returns",
    "write_factor_tearsheet",
    "write_quantstats_tearsheet",
    "write_report",
]
