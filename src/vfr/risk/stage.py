"""`vfr risk` stage: the portfolio of a strategy at a date from the store, and its risk report."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from vfr.config import Settings
from vfr.errors import StageError

__all__ = ["portfolio_at", "stage_risk"]

def portfolio_at(scores: pd.DataFrame, prices: pd.DataFrame, date: pd.Timestamp, *, top_n: int = 20,
                 method: str = "equal", max_weight: float = 0.1, window: int = 500, ic: float = 0.05) -> pd.Series:
    """Weights of the top-N names by score on the last scored day <= ``date``.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long ``date``, ``symbol``, ``score``.
    prices : pandas.DataFrame
        Long ``symbol``, ``date``, ``close`` (only rows <= ``date`` are used).
    date : pandas.Timestamp
    top_n : int, default 20
    method : {"equal", "max_sharpe", "min_volatility", "hrp"}
        Equal weights, or :func:`vfr.risk.optimize_weights` on the top-N names with
        :func:`vfr.risk.ml_expected_returns` from the score.
    max_weight : float, default 0.1
        Upper weight bound of the optimisers.
    window : int, default 500
        Days of returns for the covariance.
    ic : float, default 0.05
        IC of the score for the expected returns.

    Returns
    -------
    pandas.Series
        Symbol -> weight (sums to 1).

    Raises
    ------
    StageError
        No score on or before ``date``.
    """
    from vfr.risk.optimize import ml_expected_returns, optimize_weights
    from vfr.risk.var import asset_returns

    sc = scores[scores["date"] <= date].dropna(subset=["score"])
    if sc.empty:
        raise StageError(f"risk: no score on or before {date:%Y-%m-%d}")
    last = sc["date"].max()
    day = sc[sc["date"] == last].sort_values(["score", "symbol"], ascending=[False, True]).head(top_n)
    names = list(day["symbol"])
    if method == "equal":
        return pd.Series(1.0 / len(names), index=pd.Index(names, name="symbol"), name="weight")
    rets = asset_returns(prices, date, window, names)
    mu = ml_expected_returns(day.set_index("symbol")["score"], rets.std() * math.sqrt(252), ic=ic)
    return optimize_weights(mu, rets, method=method, weight_bounds=(0.0, max_weight))


def stage_risk(settings: Settings, *, date: str | None = None, strategy: str = "ml", top_n: int | None = None,
               method: str = "equal", max_weight: float = 0.1, level: float = 0.99, capital: float = 1e6,
               window: int = 500, windows: dict[str, tuple[str, str]] | None = None):
    """Risk report of a strategy's portfolio at a date, from the market store.

    The strategy's scores are the walk-forward out-of-sample probabilities (``ml``) or the
    classic score (``classic``); its weekly top-N backtest up to ``date`` gives the return
    history for the VaR backtest and the forecasts.

    Returns
    -------
    vfr.risk.report.RiskReport
    """
    from vfr.backtest import BacktestConfig, run_backtest
    from vfr.data import MarketStore, tables
    from vfr.data.samples import sp500_index_levels
    from vfr.risk.report import risk_report

    top_n = top_n or settings.top_n
    with MarketStore.from_settings(settings) as store:
        prices = store.read_prices(columns=["symbol", "date", "close"])
        if strategy == "ml":
            if not store.has_table(tables.PREDICTIONS_OOS):
                raise StageError("risk: no out-of-sample predictions; run `vfr train` first")
            scores = store.read_table(tables.PREDICTIONS_OOS, columns=["date", "symbol", "prob"]).rename(
                columns={"prob": "score"})
        elif strategy == "classic":
            if not store.has_table(tables.FEATURES):
                raise StageError("risk: the store has no features; run `vfr features build` first")
            from vfr.scoring import classic_scores

            scores = classic_scores(store.read_table(tables.FEATURES))[["date", "symbol", "classic_score"]].rename(
                columns={"classic_score": "score"})
        else:
            raise StageError(f"risk: strategy must be 'ml' or 'classic', got {strategy!r}")
    prices["date"] = pd.DatetimeIndex(prices["date"]).as_unit("ns")
    scores["date"] = pd.DatetimeIndex(scores["date"]).as_unit("ns")
    when = pd.Timestamp(date) if date else pd.Timestamp(scores["date"].max())
    weights = portfolio_at(scores, prices, when, top_n=top_n, method=method, max_weight=max_weight, window=window)
    config = BacktestConfig.from_settings(settings, top_n=top_n, rebalance="weekly", end=when)
    bt = run_backtest(prices, scores, config)
    out_dir = Path(settings.reports_dir) / f"risk-{pd.Timestamp.now().strftime('%Y%m%d-%H%M%S')}"
    return risk_report(prices, weights, when, out_dir, strategy_returns=bt.daily["net_return"],
                       benchmark=sp500_index_levels(), level=level, capital=capital, window=window, windows=windows,
                       title=f"VFR risk report: {strategy} top {top_n} ({method})")
