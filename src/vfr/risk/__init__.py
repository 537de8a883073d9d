"""Risk: VaR / ES (historical, parametric, Monte Carlo), stress tests, Sharpe and drawdown
forecasts, portfolio optimisation with ML expected returns, and VaR backtests.

Public interface::

    portfolio_var(prices, weights, date, *, level, horizon, window, capital) -> VaRResult
    historical_var_es(returns, level), parametric_var_es(returns, level, horizon),
    monte_carlo_var_es(asset_returns, weights, level, *, horizon, n_sims, seed)
    var_backtest(returns, *, level, window, method) -> VaRBacktest; kupiec_pof(x, n, level)
    stress_test(prices, weights, windows, *, benchmark) -> DataFrame; STRESS_WINDOWS
    sharpe_forecast(returns, *, level) -> SharpeForecast
    drawdown_forecast(returns, *, horizon, n_paths, block, level) -> DrawdownForecast
    ml_expected_returns(score, volatility, *, ic) -> Series
    optimize_weights(expected, returns, *, method, weight_bounds) -> Series
"""

from vfr.risk.forecast import (
    DrawdownForecast,
    SharpeForecast,
    drawdown_forecast,
    sharpe_forecast,
)
from vfr.risk.optimize import ml_expected_returns, optimize_weights
from vfr.risk.stress import STRESS_WINDOWS, stress_test
from vfr.risk.var import (
    VaRBacktest,
    VaRResult,
    asset_returns,
    historical_var_es,
    kupiec_pof,
    monte_carlo_var_es,
    parametric_var_es,
    portfolio_var,
    var_backtest,
)

__all__ = [
    "STRESS_WINDOWS",
    "DrawdownForecast",
    "SharpeForecast",
    "VaRBacktest",
    "VaRResult",
    "asset_returns",
    "drawdown_forecast",
    "historical_var_es",
    "kupiec_pof",
    "ml_expected_returns",
    "monte_carlo_var_es",
    "optimize_weights",
    "parametric_var_es",
    "portfolio_var",
    "sharpe_forecast",
    "stress_test",
    "var_backtest",
]
