"""Vectorised long-only top-N backtest with execution lag, drift and costs.

Timing convention (close-to-close, one price per day)
-----------------------------------------------------
* A score at signal date ``s`` (calendar position ``i``) is known after the close of ``s``.
* The portfolio chosen from it is entered at the close of the trading day at position
  ``i + execution_lag`` (the *entry day* ``e``), at that day's close.
* The daily return of day ``t`` (close ``t-1`` -> close ``t``) is earned by the portfolio
  entered at the latest entry day strictly before ``t``; between entries the weights drift
  with prices (buy-and-hold), marked to market daily.
* Trading costs of an entry are charged on the entry day:
  ``net_t = gross_t - cost_bps / 1e4 * turnover_t`` with
  ``turnover_t = sum_i |w_new_i - w_drifted_i|`` (fraction of capital traded).

So a return up to day ``t`` depends on scores dated at most ``t - execution_lag - 1``, and the
cost of day ``t`` on scores dated at most ``t - execution_lag``: no position uses information
from after its date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vfr.backtest.metrics import summary_metrics
from vfr.errors import DataValidationError

__all__ = ["BacktestResult", "run_backtest"]

EQUAL_WEIGHT = "equal_weight"


@dataclass
class BacktestResult:
    """Outcome of :func:`run_backtest`.

    Attributes
    ----------
    daily : pandas.DataFrame
        Index ``date`` (trading days from the first signal date to the end of the window);
        columns ``gross_return``, ``net_return`` (simple daily returns), ``turnover``
        (fraction of capital traded that day, 0 off entry days) and ``equity`` (net equity
        curve, 1.0 before the first entry; with ``execution_lag >= 1`` the first row is the
        first signal date, still in cash, so ``equity`` starts at exactly 1).
    weights : pandas.DataFrame
        Long frame, one row per holding and entry: ``date`` (entry day), ``signal_date``,
        ``symbol``, ``weight`` (target weight at the entry close), sorted by date, symbol.
    benchmarks : pandas.DataFrame
        Index as ``daily``; column ``equal_weight`` (mean daily return of every symbol with a
        price that day) and one column per optional benchmark (NaN where it has no data).
    metrics : dict[str, dict[str, float]]
        :func:`~vfr.backtest.metrics.summary_metrics` over the invested period (first entry
        day to the end) for ``strategy_net`` (with turnover), ``strategy_gross`` and each
        benchmark column (over its non-NaN days).
    params : dict[str, Any]
        The arguments of the run (``top_n``, ``rebalance_every``, ``cost_bps``,
        ``execution_lag``, ``start``, ``end``).
    """

    daily: pd.DataFrame
    weights: pd.DataFrame
    benchmarks: pd.DataFrame
    metrics: dict[str, dict[str, float]]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def equity(self) -> pd.Series:
        """Net equity curve (``daily["equity"]``)."""
        return self.daily["equity"]

    @property
    def first_entry(self) -> pd.Timestamp:
        """Entry day of the first rebalance."""
        return pd.Timestamp(self.weights["date"].iloc[0])


def _check_columns(frame: pd.DataFrame, needed: set[str], name: str) -> None:
    missing = needed - set(frame.columns)
    if missing:
        raise DataValidationError(f"{name} frame lacks columns {sorted(missing)}", source=name)


def _to_matrix(
    frame: pd.DataFrame, value: str, dates: pd.DatetimeIndex, symbols: pd.Index, name: str
) -> np.ndarray:
    """Scatter a long frame into a ``(len(dates), len(symbols))`` float matrix (NaN = absent).

    Rows whose date or symbol is not in ``dates``/``symbols`` are dropped.

    Raises
    ------
    DataValidationError
        If a (date, symbol) pair occurs twice.
    """
    di = dates.get_indexer(pd.DatetimeIndex(frame["date"]).as_unit("ns"))
    si = symbols.get_indexer(frame["symbol"])
    vals = frame[value].to_numpy(dtype="float64", na_value=np.nan)
    keep = (di >= 0) & (si >= 0)
    di, si, vals = di[keep], si[keep], vals[keep]
    flat = di.astype(np.int64) * len(symbols) + si
    if flat.size and np.bincount(flat, minlength=len(dates) * len(symbols)).max() > 1:
        raise DataValidationError(f"duplicate (date, symbol) rows in {name}", source=name)
    out = np.full((len(dates), len(symbols)), np.nan)
    out[di, si] = vals
    return out


def _ffill_rows(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs down the rows of a 2-d array (column-wise last observation)."""
    mask = np.isnan(a)
    idx = np.where(~mask, np.arange(a.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = a[idx, np.arange(a.shape[1])[None, :]]
    return out


def _benchmark_returns(levels: pd.Series, calendar: pd.DatetimeIndex) -> pd.Series:
    """Daily returns of a level series on ``calendar``; NaN outside the series' coverage."""
    s = pd.Series(levels, dtype="float64").dropna()
    s.index = pd.DatetimeIndex(s.index).as_unit("ns").tz_localize(None) if s.index.tz is not None \
        else pd.DatetimeIndex(s.index).as_unit("ns")
    s = s[~s.index.duplicated(keep="last")].sort_index()
    if s.empty:
        return pd.Series(np.nan, index=calendar)
    lv = s.reindex(calendar.union(s.index)).ffill().reindex(calendar)
    ret = lv.pct_change(fill_method=None)
    covered = (calendar > s.index[0]) & (calendar <= s.index[-1])
    return ret.where(covered)


def run_backtest(
    prices: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    top_n: int = 20,
    rebalance_every: int = 5,
    cost_bps: float = 10.0,
    execution_lag: int = 1,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    benchmark: pd.Series | None = None,
) -> BacktestResult:
    """Backtest a long-only, equal-weight top-N strategy on scores.

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices frame (long; columns ``symbol``, ``date``, ``close`` with ``close``
        split/dividend adjusted, USD). Other columns are ignored. Its distinct dates form
        the trading calendar.
    scores : pandas.DataFrame
        Long frame ``date``, ``symbol``, ``score`` (higher = better; NaN = no opinion).
    top_n : int, default 20
        Stocks held; fewer when fewer are eligible. Ties are broken by symbol order.
    rebalance_every : int, default 5
        Rebalance grid step in trading days. Signal dates are the calendar days
        ``i0, i0 + k, i0 + 2k, ...`` in ``[start, end]`` (``i0`` = first day in the window
        with a non-NaN score) that have at least one non-NaN score; grid days without
        scores are skipped (the portfolio keeps drifting). With sparse scores use 1.
    cost_bps : float, default 10.0
        Cost in basis points per unit of capital traded (commission + slippage), charged on
        the entry day.
    execution_lag : int, default 1
        Trading days between a signal date and the entry close (0 = trade at the signal
        day's close, which is only honest if the score is known before that close).
    start, end : str or Timestamp, optional
        Window (inclusive) for signal dates, entries and the reported days.
    benchmark : pandas.Series, optional
        Index *levels* (e.g. the S&P 500 ``Adj Close``) on a DatetimeIndex; converted to
        daily returns on the trading calendar, NaN where it has no data. Its name (default
        ``"benchmark"``) becomes its column in ``benchmarks`` and its key in ``metrics``.

    Returns
    -------
    BacktestResult
        Daily returns/equity/turnover, weights per entry, benchmarks and metrics.

    Raises
    ------
    DataValidationError
        Missing columns, duplicate (date, symbol) rows, or no scored signal date in the
        window whose entry day falls inside it.
    ValueError
        Invalid parameters.

    Notes
    -----
    Missing prices: the last price is carried forward (a held symbol returns 0 on a day
    without a price and catches up when a price reappears); a symbol without a price on the
    entry day is not eligible. Portfolio value of the holding entered at ``e`` on day ``t``
    is ``V_t = sum_i w_i P_{t,i} / P_{e,i}``; the gross return is ``V_t / V_{t-1} - 1`` and the
    drifted weights before the next entry ``e'`` are ``w_i P_{e',i} / P_{e,i} / V_{e'}``.
    Costs scale the whole book, so they do not change the drifted weights. The whole run is
    a handful of ``(days x symbols)`` numpy operations.
    """
    if int(top_n) < 1 or int(rebalance_every) < 1 or int(execution_lag) < 0:
        raise ValueError("need top_n >= 1, rebalance_every >= 1 and execution_lag >= 0")
    if not cost_bps >= 0:
        raise ValueError(f"cost_bps must be >= 0, got {cost_bps}")
    _check_columns(prices, {"symbol", "date", "close"}, "prices")
    _check_columns(scores, {"symbol", "date", "score"}, "scores")

    calendar = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(prices["date"]).as_unit("ns"))).sort_values()
    calendar.name = "date"
    symbols = pd.Index(pd.unique(prices["symbol"].astype(str))).sort_values()
    close = _to_matrix(prices, "close", calendar, symbols, "prices")
    close[~(close > 0)] = np.nan  # non-positive prices are unusable
    has_price = ~np.isnan(close)
    close_ff = _ffill_rows(close)
    n_days, n_sym = close.shape

    # -- window and signal dates ----------------------------------------------------
    lo = 0 if start is None else int(calendar.searchsorted(pd.Timestamp(start), side="left"))
    hi = n_days if end is None else int(calendar.searchsorted(pd.Timestamp(end), side="right"))
    sc = scores[["date", "symbol", "score"]].dropna(subset=["score"])
    sc = sc[sc["symbol"].astype(str).isin(symbols)]
    pos = calendar.get_indexer(pd.DatetimeIndex(sc["date"]).as_unit("ns"))
    is_scored = np.zeros(n_days, dtype=bool)
    is_scored[pos[pos >= 0]] = True
    scored_pos = np.flatnonzero(is_scored)
    scored_pos = scored_pos[(scored_pos >= lo) & (scored_pos < hi)]
    if scored_pos.size == 0:
        raise DataValidationError("scores have no non-NaN value on a trading day in the window",
                                  source="scores")
    grid = scored_pos[(scored_pos - scored_pos[0]) % int(rebalance_every) == 0]
    grid = grid[grid + int(execution_lag) < hi]
    if grid.size == 0:
        raise DataValidationError("no scored signal date has its entry day inside the window",
                                  source="scores")

    # -- selection: top-N by score among symbols priced on the entry day -----------
    sig_dates = calendar[grid]
    sc = sc[pd.DatetimeIndex(sc["date"]).as_unit("ns").isin(sig_dates)]
    smat = _to_matrix(sc.assign(symbol=sc["symbol"].astype(str)), "score", sig_dates, symbols, "scores")
    entry_pos = grid + int(execution_lag)
    eligible = ~np.isnan(smat) & has_price[entry_pos]
    n_pick = np.minimum(eligible.sum(axis=1), int(top_n))
    ok = n_pick > 0
    grid, entry_pos, smat, eligible, n_pick = grid[ok], entry_pos[ok], smat[ok], eligible[ok], n_pick[ok]
    if grid.size == 0:
        raise DataValidationError("no signal date has an eligible (scored and priced) symbol",
                                  source="scores")
    order = np.argsort(np.where(eligible, -smat, np.inf), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_sym)[None, :].repeat(len(grid), axis=0), axis=1)
    target = np.where(rank < n_pick[:, None], 1.0 / n_pick[:, None], 0.0)  # (K, N)

    # -- simulation: holdings in "shares per unit of capital" ------------------------
    px = np.nan_to_num(close_ff, nan=0.0)
    entry_px = px[entry_pos]  # priced (eligible) wherever target > 0
    shares = np.divide(target, entry_px, out=np.zeros_like(target), where=target > 0)
    # holding active for the return of day t: the last entry strictly before t
    active = np.searchsorted(entry_pos, np.arange(n_days), side="left") - 1  # (T,)
    invested = active >= 0
    held = shares[np.maximum(active, 0)]  # (T, N)
    value_now = np.einsum("tn,tn->t", held, px)
    prev_px = np.vstack([px[:1], px[:-1]])
    value_prev = np.einsum("tn,tn->t", held, prev_px)
    gross = np.zeros(n_days)
    valid = invested & (value_prev > 0)
    gross[valid] = value_now[valid] / value_prev[valid] - 1.0

    # drifted weights just before each entry (entry 0 starts from cash)
    drift = np.zeros_like(target)
    if len(grid) > 1:
        prev_hold = shares[:-1] * px[entry_pos[1:]]
        tot = prev_hold.sum(axis=1, keepdims=True)
        drift[1:] = np.divide(prev_hold, tot, out=np.zeros_like(prev_hold), where=tot > 0)
    turnover_k = np.abs(target - drift).sum(axis=1)
    turnover = np.zeros(n_days)
    turnover[entry_pos] = turnover_k
    net = gross - float(cost_bps) / 1e4 * turnover

    # -- assemble --------------------------------------------------------------------
    first = int(grid[0])
    rows = slice(first, hi)
    days = calendar[rows]
    daily = pd.DataFrame(
        {"gross_return": gross[rows], "net_return": net[rows], "turnover": turnover[rows]},
        index=days,
    )
    daily["equity"] = (1.0 + daily["net_return"]).cumprod()

    prev_close = np.vstack([np.full((1, n_sym), np.nan), close_ff[:-1]])
    ew_mask = has_price & ~np.isnan(prev_close)
    with np.errstate(invalid="ignore", divide="ignore"):
        sym_ret = np.where(ew_mask, close / prev_close - 1.0, 0.0)
    counts = ew_mask.sum(axis=1)
    ew = np.divide(sym_ret.sum(axis=1), counts, out=np.full(n_days, np.nan), where=counts > 0)
    benchmarks = pd.DataFrame({EQUAL_WEIGHT: ew[rows]}, index=days)
    if benchmark is not None:
        name = str(benchmark.name) if benchmark.name is not None else "benchmark"
        if name in {EQUAL_WEIGHT, "strategy_net", "strategy_gross"}:
            name = f"benchmark_{name}"
        benchmarks[name] = _benchmark_returns(benchmark, calendar)[rows].to_numpy()

    k_idx, s_idx = np.nonzero(target)
    weights = pd.DataFrame({
        "date": calendar[entry_pos[k_idx]],
        "signal_date": calendar[grid[k_idx]],
        "symbol": symbols[s_idx],
        "weight": target[k_idx, s_idx],
    }).sort_values(["date", "symbol"], ignore_index=True)

    inv = daily.index >= calendar[entry_pos[0]]
    metrics = {
        "strategy_net": summary_metrics(daily.loc[inv, "net_return"], daily.loc[inv, "turnover"]),
        "strategy_gross": summary_metrics(daily.loc[inv, "gross_return"]),
    }
    for col in benchmarks.columns:
        metrics[col] = summary_metrics(benchmarks.loc[inv, col])
    params = {"top_n": int(top_n), "rebalance_every": int(rebalance_every), "cost_bps": float(cost_bps),
              "execution_lag": int(execution_lag), "start": start, "end": end}
    return BacktestResult(daily=daily, weights=weights, benchmarks=benchmarks, metrics=metrics,
                          params=params)
