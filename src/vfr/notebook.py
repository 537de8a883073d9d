"""Notebook-first API: prices -> features -> scores -> backtest and evaluation in a few calls.

::

    import vfr

    prices = vfr.load_prices("shared/data/sp500/prices_daily.parquet", symbols=["AAPL", "MSFT", ...],
                             start="2015-01-01", end="2019-12-31")   # or vfr.load_prices() from the store
    features = vfr.build_features(prices)
    scores = vfr.score(features)                    # classic scores of every row (a ``score`` column)
    vfr.score(features, date="latest")              # one day's ranking, best first
    bt = vfr.backtest_scores(scores, prices, top_n=5)      # BacktestReport: bt.metrics is a DataFrame
    bt                                              # an HTML summary in Jupyter
    ev = vfr.evaluate(scores, prices)               # Rank IC, ICIR, t-stats, top-bottom spread

Each function is a thin layer over the package's own functions (nothing is computed twice):
:func:`vfr.data.read_prices` and :func:`vfr.data.adjust_prices` or
:meth:`vfr.data.MarketStore.read_prices`; :func:`vfr.features.build_all_features`;
:func:`vfr.scoring.classic_scores`; :func:`vfr.backtest.run_backtest` (and
:func:`vfr.backtest.write_report`, :func:`vfr.backtest.write_quantstats_tearsheet`);
:func:`vfr.metrics.forward_returns`, :func:`vfr.metrics.ic_by_date`,
:func:`vfr.metrics.ic_summary` and :func:`vfr.metrics.quantile_spread`. The names are
re-exported lazily by :mod:`vfr` (``import vfr`` stays light; pandas is loaded on first use).
"""

from __future__ import annotations

import html as _html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from vfr.backtest import (
    BacktestConfig,
    BacktestResult,
    CostModel,
    run_backtest,
    write_quantstats_tearsheet,
    write_report,
)
from vfr.config import Settings
from vfr.data import (
    MarketStore,
    adjust_prices,
    read_earnings,
    read_macro,
    read_prices,
    read_universe,
)
from vfr.errors import UsageError
from vfr.features import build_all_features
from vfr.metrics import HorizonLike, forward_returns, ic_by_date, ic_summary, parse_horizons, quantile_spread
from vfr.scoring import classic_scores

__all__ = ["BacktestReport", "Evaluation", "backtest_scores", "build_features", "evaluate", "load_prices", "score"]

DateLike: TypeAlias = str | pd.Timestamp


def _between(frame: pd.DataFrame, symbols: Iterable[str] | None, start: DateLike | None,
             end: DateLike | None) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    if symbols is not None:
        mask &= frame["symbol"].isin([str(s).upper() for s in symbols])
    if start is not None:
        mask &= frame["date"] >= pd.Timestamp(start)
    if end is not None:
        mask &= frame["date"] <= pd.Timestamp(end)
    return frame[mask].reset_index(drop=True)


def load_prices(source: str | Path | pd.DataFrame | MarketStore | Settings | None = None, *,
                symbols: Iterable[str] | None = None, start: DateLike | None = None,
                end: DateLike | None = None) -> pd.DataFrame:
    """Canonical (split- and dividend-adjusted) prices, optionally a slice.

    Parameters
    ----------
    source : path, store URL, DataFrame, MarketStore or Settings, optional
        ``None``: the market store of the default :class:`vfr.config.Settings` (``VFR_HOME``,
        ``VFR_STORE_URL``); a :class:`~vfr.config.Settings`: its store; a store URL
        (``duckdb:///...``, ``postgresql+psycopg://...``) or a :class:`~vfr.data.MarketStore`;
        a file or folder in any layout :func:`vfr.data.read_prices` reads (Parquet,
        AlphaVantage or Yahoo csv), validated and adjusted with :func:`vfr.data.adjust_prices`;
        a raw prices frame (with ``adjusted_close``: adjusted here) or a canonical one (as is).
    symbols : iterable of str, optional
        Tickers to keep (default all).
    start, end : date-like, optional
        Inclusive date bounds.

    Returns
    -------
    pandas.DataFrame
        The canonical prices frame (``symbol``, ``date``, adjusted ``open, high, low, close``,
        ``volume``, ``close_raw``, ...; ``docs/architecture.md``), sorted by symbol and date.
    """
    if source is None or isinstance(source, Settings):
        source = MarketStore.from_settings(source if source is not None else Settings())
    if isinstance(source, str) and "://" in source:
        source = MarketStore(source)
    if isinstance(source, MarketStore):
        with source as store:
            return store.read_prices(symbols=[str(s).upper() for s in symbols] if symbols is not None else None,
                                     start=start, end=end)
    if isinstance(source, pd.DataFrame):
        frame = _between(source, symbols, start, end)
        return adjust_prices(frame) if "adjusted_close" in frame.columns else frame
    return adjust_prices(_between(read_prices(source), symbols, start, end))  # row-wise adjustment: slice first


def build_features(prices: pd.DataFrame, *, universe: str | Path | pd.DataFrame | None = None,
                   earnings: str | Path | pd.DataFrame | None = None, macro: Any = None,
                   membership: pd.DataFrame | None = None, alpha158: bool = False) -> pd.DataFrame:
    """Every feature group the inputs allow, point in time (:func:`vfr.features.build_all_features`).

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices (:func:`load_prices`).
    universe : path or DataFrame, optional
        Constituents (``symbol``, ``sector``; a csv is read with :func:`vfr.data.read_universe`):
        adds sector-relative strength.
    earnings : path or DataFrame, optional
        Earnings surprises (a file is read with :func:`vfr.data.read_earnings`): adds the
        fundamental group.
    macro : path or MacroData, optional
        Folder of FRED-MD, VIX and GDP files (:func:`vfr.data.read_macro`): adds the macro group.
    membership : pandas.DataFrame, optional
        Point-in-time universe intervals.
    alpha158 : bool
        Also Qlib's Alpha158 factors.

    Returns
    -------
    pandas.DataFrame
        The canonical features frame (``symbol``, ``date``, features, ``*_rank`` columns).
    """
    if isinstance(universe, (str, Path)):
        universe = read_universe(universe)
    if isinstance(earnings, (str, Path)):
        earnings = read_earnings(earnings)
    if isinstance(macro, (str, Path)):
        macro = read_macro(macro)
    return build_all_features(prices, universe=universe, earnings=earnings, macro=macro, membership=membership,
                              alpha158=alpha158)


def score(features: pd.DataFrame, date: DateLike | None = None) -> pd.DataFrame:
    """Classic scores (:func:`vfr.scoring.classic_scores`) with a ``score`` column for :func:`backtest_scores`.

    Parameters
    ----------
    features : pandas.DataFrame
        Canonical features frame (:func:`build_features`).
    date : date-like or ``"latest"``, optional
        ``None`` (default): every row (what a backtest needs); a date or ``"latest"``: that
        day's ranking only, best first (a date without features is a :class:`UsageError`
        naming the range available).

    Returns
    -------
    pandas.DataFrame
        ``date``, ``symbol``, ``score`` (= ``classic_score``, on [0, 1], higher is better),
        the ``<group>_score`` columns, ``classic_score`` and ``groups_present``.
    """
    scores = classic_scores(features)
    scores.insert(0, "score", scores["classic_score"])
    scores = scores[["date", "symbol", *[c for c in scores.columns if c not in ("date", "symbol")]]]
    if date is None:
        return scores
    day = scores["date"].max() if str(date) == "latest" else pd.Timestamp(date)
    one = scores[scores["date"] == day]
    if one.empty:
        raise UsageError(f"no features on {day.date()}; features run from {scores['date'].min().date()} "
                         f"to {scores['date'].max().date()} (trading days only)")
    return one.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


#: Keyword arguments of :func:`backtest_scores` that build its :class:`~vfr.backtest.CostModel`.
_COST_FIELDS = {f.name for f in fields(CostModel)}
_CONFIG_FIELDS = {f.name for f in fields(BacktestConfig)}


def _score_frame(scores: pd.DataFrame, column: str | None) -> pd.DataFrame:
    """``date``, ``symbol``, ``score`` from a scores frame, or from a features frame (classic scores)."""
    if column is None:
        column = next((c for c in ("score", "classic_score") if c in scores.columns), None)
        if column is None:  # a features frame
            return score(scores)[["date", "symbol", "score"]]
    if column not in scores.columns:
        raise UsageError(f"the scores frame has no column {column!r}")
    return scores[["date", "symbol", column]].rename(columns={column: "score"})


@dataclass
class BacktestReport:
    """What :func:`backtest_scores` returns: the engine's :class:`~vfr.backtest.BacktestResult` with
    notebook views (``metrics`` as a DataFrame, an HTML summary, plots and report files)."""

    result: BacktestResult
    config: BacktestConfig
    scores: pd.DataFrame = field(repr=False)

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per series (``strategy_net``, ``strategy_gross``, ``equal_weight``, the
        benchmark), one column per metric (:func:`vfr.backtest.summary_metrics`)."""
        frame = pd.DataFrame(self.result.metrics).T
        frame.index.name = "series"
        return frame

    @property
    def daily(self) -> pd.DataFrame:
        """Daily returns, turnover, costs, cash and equity (``BacktestResult.daily``)."""
        return self.result.daily

    @property
    def equity(self) -> pd.Series:
        """Net equity curve, 1.0 at the start."""
        return self.result.equity

    @property
    def weights(self) -> pd.DataFrame:
        """Holdings of every rebalance (``date``, ``signal_date``, ``symbol``, ``weight``)."""
        return self.result.weights

    @property
    def returns(self) -> pd.Series:
        """Daily net returns over the invested period (first entry to the end)."""
        return self.result.daily["net_return"].loc[self.result.first_entry:]

    def plot(self, ax: Any = None) -> Any:
        """Net equity against each benchmark's growth of 1 (pandas plotting; returns the axes)."""
        curves = pd.DataFrame({"strategy (net)": self.equity})
        for name in self.result.benchmarks.columns:
            curves[name] = (1.0 + self.result.benchmarks[name].fillna(0.0)).cumprod()
        return curves.plot(ax=ax, logy=True, title="growth of 1", grid=True)

    def report(self, out_dir: str | Path, *, title: str = "VFR backtest") -> Path:
        """Write VFR's HTML report (:func:`vfr.backtest.write_report`) into ``out_dir``."""
        return write_report(self.result, out_dir, title=title)

    def tearsheet(self, path: str | Path, *, title: str = "VFR strategy") -> Path:
        """Write QuantStats' HTML tear sheet (:func:`vfr.backtest.write_quantstats_tearsheet`;
        needs ``pip install 'vfr[tearsheet]'``)."""
        return write_quantstats_tearsheet(self.result, path, title=title)

    def _repr_html_(self) -> str:
        daily = self.result.daily
        period = f"{daily.index[0]:%Y-%m-%d} to {daily.index[-1]:%Y-%m-%d}" if len(daily) else "empty"
        cols = [c for c in ("total_return", "cagr", "annual_volatility", "sharpe_ratio", "sortino_ratio",
                            "max_drawdown", "annual_turnover") if c in self.metrics.columns]
        table = self.metrics[cols].to_html(float_format="{:.3f}".format, na_rep="–")
        c = self.config
        how = c.book + (" long-short" if c.long_short else "") + \
            f", {c.rebalance or f'every {c.rebalance_every} days'}, costs {c.costs.describe()}"
        return (f"<div><strong>VFR backtest</strong> &middot; {_html.escape(period)} &middot; "
                f"{_html.escape(how)} &middot; {self.scores['symbol'].nunique()} symbols scored{table}</div>")

    def __repr__(self) -> str:
        m = self.result.metrics.get("strategy_net", {})
        return (f"BacktestReport(cagr={m.get('cagr', float('nan')):.4f}, "
                f"sharpe_ratio={m.get('sharpe_ratio', float('nan')):.3f}, "
                f"max_drawdown={m.get('max_drawdown', float('nan')):.4f}, days={len(self.result.daily)})")


def backtest_scores(scores: pd.DataFrame, prices: pd.DataFrame, *, config: BacktestConfig | None = None,
             score_column: str | None = None, benchmark: pd.Series | None = None,
             sectors: pd.Series | Mapping[str, str] | None = None, **options: Any) -> BacktestReport:
    """Backtest a score (:func:`vfr.backtest.run_backtest`) and wrap the result for a notebook.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long frame with ``date``, ``symbol`` and a score: the column ``score_column``, else
        ``score``, else ``classic_score``; a features frame (no score column) is scored with
        :func:`score` first.
    prices : pandas.DataFrame
        Canonical prices (:func:`load_prices`).
    config : BacktestConfig, optional
        The whole configuration; or give its fields as keyword ``options`` (``top_n=10``,
        ``rebalance="monthly"``, ``long_short=True``, ...) and the cost model's
        (``commission_bps``, ``slippage_bps``, ``commission_per_share``, ``impact_coef``,
        ``adv_window``; those not given are 0 once one is given, else the engine's default
        cost model, 10 bp of slippage).
    score_column : str, optional
        Score column of ``scores``.
    benchmark : pandas.Series, optional
        Index levels (e.g. the S&P 500) to compare with, beside the equal-weight universe.
    sectors : pandas.Series or mapping, optional
        Symbol -> sector, for ``sector_neutral`` / ``max_sector_weight``.

    Returns
    -------
    BacktestReport
    """
    unknown = set(options) - _CONFIG_FIELDS - _COST_FIELDS
    if unknown:
        raise UsageError(f"unknown backtest option(s) {sorted(unknown)}; options are the fields of "
                         f"BacktestConfig and CostModel")
    costs = {k: options.pop(k) for k in list(options) if k in _COST_FIELDS}
    if config is None:
        if costs:
            options["costs"] = CostModel(**costs)
        config = BacktestConfig(**options)
    elif options or costs:
        raise UsageError("give either config= or backtest options, not both")
    frame = _score_frame(scores, score_column)
    result = run_backtest(prices, frame, config, benchmark=benchmark,
                          sectors=pd.Series(sectors) if isinstance(sectors, Mapping) else sectors)
    return BacktestReport(result=result, config=config, scores=frame)


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: per-horizon summary and per-date IC."""

    summary: pd.DataFrame
    ic: dict[str, pd.DataFrame]
    spread: dict[str, pd.Series]

    def _repr_html_(self) -> str:
        return ("<div><strong>VFR score evaluation</strong> (Rank IC against forward returns; "
                "t_stat_nonoverlap uses every h-th date)"
                f"{self.summary.to_html(float_format='{:.4f}'.format, na_rep='–')}</div>")


def evaluate(scores: pd.DataFrame, prices: pd.DataFrame, *,
             horizons: Sequence[HorizonLike] | Mapping[str, int] = ("1d", "1w", "1m"),
             score_column: str | None = None, quantiles: int = 5, min_names: int = 5) -> Evaluation:
    """How well a score ranks forward returns: IC, Rank IC, ICIR, t-statistics, quantile spread.

    Parameters
    ----------
    scores : pandas.DataFrame
        As for :func:`backtest_scores` (a ``score`` column, or a features frame).
    prices : pandas.DataFrame
        Canonical prices; the forward return of date ``t`` over ``h`` trading days is
        ``close[t+h] / close[t] - 1`` (:func:`vfr.metrics.forward_returns`).
    horizons : sequence or mapping
        Anything :func:`vfr.metrics.parse_horizons` reads (default 1 day, 1 week, 1 month).
    score_column : str, optional
    quantiles : int
        Buckets of the top-minus-bottom spread (:func:`vfr.metrics.quantile_spread`).
    min_names : int
        Dates with fewer scored names are skipped (:func:`vfr.metrics.ic_by_date`).

    Returns
    -------
    Evaluation
        ``summary``: one row per horizon with ``ic_mean``, ``rank_ic_mean``, ``rank_ic_std``,
        ``rank_icir``, ``rank_ic_t_stat``, ``rank_ic_t_stat_nonoverlap``,
        ``rank_ic_share_positive``, ``spread_mean`` (top minus bottom quantile, mean forward
        return per horizon) and ``dates``; ``ic``: horizon -> per-date ``ic``, ``rank_ic``,
        ``n``; ``spread``: horizon -> per-date spread.
    """
    frame = _score_frame(scores, score_column)
    parsed = parse_horizons(horizons)
    fwd = forward_returns(prices, {h.name: h.days for h in parsed})
    data = frame.merge(fwd, on=["date", "symbol"], how="inner")
    rows, ics, spreads = {}, {}, {}
    for h in parsed:
        target = f"fwd_ret_{h.name}"
        ic = ic_by_date(data, "score", target, min_names=min_names)
        rank = ic_summary(ic["rank_ic"], horizon=h.days)
        spread = quantile_spread(data, "score", target, quantiles=quantiles)
        ics[h.name], spreads[h.name] = ic, spread
        rows[h.name] = {"days": h.days, "ic_mean": float(ic["ic"].mean()), "rank_ic_mean": rank["mean"],
                        "rank_ic_std": rank["std"], "rank_icir": rank["icir"], "rank_ic_t_stat": rank["t_stat"],
                        "rank_ic_t_stat_nonoverlap": rank.get("t_stat_nonoverlap", float("nan")),
                        "rank_ic_share_positive": rank["share_positive"], "spread_mean": float(spread.mean()),
                        "dates": rank["n_dates"]}
    summary = pd.DataFrame(rows).T.astype({"days": "int64", "dates": "int64"})
    summary.index.name = "horizon"
    return Evaluation(summary=summary, ic=ics, spread=spreads)
