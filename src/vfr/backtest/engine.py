"""Backtest engine: top-N / quantile, long-only or long-short, with execution lag, daily
marking to market, cash and dividends, position limits, sector neutrality, minimum trade
size and a commission / slippage / square-root-impact cost model.

Timing convention
-----------------
* A score at signal date ``s`` (calendar position ``i``) is known after the close of ``s``.
  For a walk-forward test the scores are out-of-sample predictions (the model that scored
  ``s`` was fitted on data before ``s``).
* The portfolio chosen from it is filled on the trading day at position
  ``i + execution_lag`` (the *entry day* ``e``), at that day's close (``fill="close"``,
  default) or open (``fill="open"``).
* With a close fill the daily return of day ``t`` (close ``t-1`` -> close ``t``) is earned by
  the portfolio filled at the latest entry day strictly before ``t``; with an open fill the
  entry day's return is the old book's overnight move times the new book's open-to-close
  move. Between entries holdings are fixed share counts marked to market daily (weights
  drift); cash (long-short proceeds, dividends, skipped trades) earns 0.
* Trading costs of an entry are charged on the entry day:
  ``net_t = gross_t - cost_t`` with ``cost_t`` from :func:`vfr.backtest.costs.trade_costs`
  on ``dw_i = w_new_i - w_drifted_i``; ``turnover_t = sum_i |dw_i|`` (fraction of capital).
  Impact uses volume and volatility of the days *before* ``e`` only.

So a return up to day ``t`` depends on scores dated at most ``t - execution_lag - 1`` (close
fill) or ``t - execution_lag`` for the fill day itself (open fill): no position uses
information from after its date.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vfr.backtest.costs import CostModel, trade_costs
from vfr.backtest.metrics import relative_metrics, summary_metrics
from vfr.errors import DataValidationError

__all__ = ["BacktestResult", "run_backtest", "select_weights"]

EQUAL_WEIGHT = "equal_weight"


@dataclass
class BacktestResult:
    """Outcome of :func:`run_backtest`.

    Attributes
    ----------
    daily : pandas.DataFrame
        Index ``date`` (trading days from the first signal date to the end of the window);
        columns ``gross_return``, ``net_return`` (simple daily returns), ``turnover``
        (fraction of capital traded that day, 0 off entry days), ``cost`` (fraction of
        capital charged that day), ``dividend_return`` (dividends paid into cash, as a
        return; 0 unless ``dividends=True``), ``cash`` (cash share of the book at the close)
        and ``equity`` (net equity
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
        benchmark column (over its non-NaN days); the two strategy entries also hold
        :func:`~vfr.backtest.metrics.relative_metrics` (``alpha``, ``beta``,
        ``information_ratio``, ``tracking_error``) against ``params["relative_to"]`` (the
        external benchmark when given, else ``equal_weight``).
    params : dict[str, Any]
        The arguments of the run (``top_n``, ``rebalance_every``, ``cost_bps``: the
        proportional cost actually charged, that of ``costs`` when given, ``execution_lag``,
        ``start``, ``end`` and every newer keyword) and ``relative_to``.
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
    frame: pd.DataFrame, value: str, dates: pd.DatetimeIndex, symbols: pd.Index, name: str,
    positions: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Scatter a long frame into a ``(len(dates), len(symbols))`` float matrix (NaN = absent).

    Rows whose date or symbol is not in ``dates``/``symbols`` are dropped. ``positions``
    (from :func:`_positions` on the same frame) skips the index lookups when several
    columns of one frame are scattered.

    Raises
    ------
    DataValidationError
        If a (date, symbol) pair occurs twice.
    """
    di, si = positions if positions is not None else _positions(frame, dates, symbols, name)
    vals = frame[value].to_numpy(dtype="float64", na_value=np.nan)
    keep = (di >= 0) & (si >= 0)
    out = np.full((len(dates), len(symbols)), np.nan)
    out[di[keep], si[keep]] = vals[keep]
    return out


def _lookup(values: pd.Series | pd.Index, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent), hashing each distinct value once.

    ``pd.factorize`` on the long column and a lookup of its few distinct values is several
    times faster than ``index.get_indexer`` on millions of (Arrow) strings.
    """
    codes, uniq = pd.factorize(values)
    if isinstance(index, pd.DatetimeIndex):
        found = index.get_indexer(pd.DatetimeIndex(uniq))
    else:
        found = index.get_indexer(pd.Index(uniq).astype(str))
    return np.where(codes >= 0, found[np.maximum(codes, 0)], -1)


def _positions(frame: pd.DataFrame, dates: pd.DatetimeIndex, symbols: pd.Index, name: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """Row/column positions of each row of a long frame; checks (date, symbol) uniqueness."""
    di = _lookup(pd.DatetimeIndex(frame["date"]).as_unit("ns"), dates)
    si = _lookup(frame["symbol"], symbols)
    keep = (di >= 0) & (si >= 0)
    flat = di[keep].astype(np.int64) * len(symbols) + si[keep]
    if flat.size and np.bincount(flat, minlength=len(dates) * len(symbols)).max() > 1:
        raise DataValidationError(f"duplicate (date, symbol) rows in {name}", source=name)
    return di, si


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


def _prefix_sums(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise prefix sums of values (NaN as 0) and of non-NaN counts, with a zero first row."""
    x = np.nan_to_num(a, nan=0.0)
    z = np.zeros((1, a.shape[1]))
    return np.vstack([z, np.cumsum(x, axis=0)]), np.vstack([z, np.cumsum(~np.isnan(a), axis=0, dtype="float64")])


def _mean_before(sums: tuple[np.ndarray, np.ndarray], t: int, window: int) -> np.ndarray:
    """Mean over rows ``t-window .. t-1`` per column (NaN-aware; NaN with < window/2 values)."""
    cs, cn = sums
    lo = max(t - window, 0)
    c = cn[t] - cn[lo]
    return np.divide(cs[t] - cs[lo], c, out=np.full(c.shape, np.nan), where=c >= max(1, window // 2))


def _grid(scored_pos: np.ndarray, calendar: pd.DatetimeIndex, rebalance: str | None,
          rebalance_every: int) -> np.ndarray:
    """Signal-date positions: a fixed step over the scored days, every scored day, or the last
    trading day of each calendar week / month (from the trading calendar, known in advance)
    when it has scores (a week whose last day has no score is skipped)."""
    if rebalance is None:
        return scored_pos[(scored_pos - scored_pos[0]) % int(rebalance_every) == 0]
    if rebalance == "daily":
        return scored_pos
    freq = {"weekly": "W-SUN", "monthly": "M"}.get(rebalance)
    if freq is None:
        raise ValueError(f"rebalance must be 'daily', 'weekly' or 'monthly', got {rebalance!r}")
    keys = calendar.to_period(freq).asi8
    last = np.flatnonzero(np.r_[keys[1:] != keys[:-1], True])
    return last[np.isin(last, scored_pos)]


def _cap_leg(w: np.ndarray, cap: float) -> np.ndarray:
    """Cap positive weights at ``cap``, redistributing the excess pro rata (water-filling).

    The leg's total is preserved when ``n * cap >= total``; otherwise every name sits at the
    cap and the rest stays in cash.
    """
    w = w.copy()
    total = w.sum()
    for _ in range(w.size):
        over = w > cap + 1e-15
        if not over.any():
            break
        w[over] = cap
        free = (w > 0) & (w < cap - 1e-15)
        short = total - w.sum()
        if not free.any() or short <= 0:
            break
        w[free] += short * w[free] / w[free].sum()
    return w


def select_weights(score: np.ndarray, eligible: np.ndarray, *, top_n: int, quantile: float | None = None,
                   long_short: bool = False, sector_codes: np.ndarray | None = None,
                   max_weight: float | None = None, gross_exposure: float = 1.0) -> np.ndarray:
    """Target weights of one rebalance from one cross-section of scores (pure function).

    Parameters
    ----------
    score : numpy.ndarray
        Scores, shape ``(n,)`` (higher = better).
    eligible : numpy.ndarray
        Boolean mask, shape ``(n,)``: scored and tradable.
    top_n : int
        Names per leg (ignored when ``quantile`` is given). With ``sector_codes`` the names
        are split across sectors in proportion to their eligible counts (at least 1 each).
    quantile : float, optional
        Fraction of the eligible names per leg (``0.2`` = top quintile), at least 1 name.
    long_short : bool, default False
        Also short the same number of lowest-scored names.
    sector_codes : numpy.ndarray, optional
        Integer sector code per name, shape ``(n,)`` (-1 = unknown, its own group). When
        given, selection is done within each sector and each sector's leg weight equals its
        share of the eligible names (sector-neutral vs the equal-weight universe; for
        long-short every sector is dollar neutral).
    max_weight : float, optional
        Cap on the absolute weight of a name (excess redistributed within the leg).
    gross_exposure : float, default 1.0
        Long-only: sum of weights. Long-short: long leg ``+g/2``, short leg ``-g/2``.

    Returns
    -------
    numpy.ndarray
        Weights, shape ``(n,)``, equal within a leg (before caps); all 0 if nothing is
        eligible. Ties are broken by position (symbol order).
    """
    n = score.size
    w = np.zeros(n)
    idx = np.flatnonzero(eligible)
    if idx.size == 0:
        return w
    if sector_codes is None:
        groups = [idx]
    else:
        codes = sector_codes[idx]
        groups = [idx[codes == c] for c in np.unique(codes)]
    long_budget = gross_exposure / 2 if long_short else gross_exposure
    for g in groups:
        share = g.size / idx.size
        if quantile is not None:
            k = max(1, int(np.floor(quantile * g.size)))
        else:
            k = int(top_n) if len(groups) == 1 else max(1, round(top_n * share))
        k = min(k, g.size // 2 if long_short else g.size)
        if k < 1:
            continue
        order = g[np.argsort(-score[g], kind="stable")]
        w[order[:k]] += long_budget * share / k
        if long_short:
            w[order[-k:]] -= long_budget * share / k
    if max_weight is not None:
        pos, neg = np.clip(w, 0, None), np.clip(-w, 0, None)
        w = _cap_leg(pos, max_weight) - _cap_leg(neg, max_weight)
    return w


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
    rebalance: str | None = None,
    quantile: float | None = None,
    long_short: bool = False,
    max_weight: float | None = None,
    sectors: pd.Series | dict[str, str] | None = None,
    min_trade: float = 0.0,
    costs: CostModel | None = None,
    fill: str = "close",
    dividends: bool = False,
    capital: float = 1e7,
    gross_exposure: float = 1.0,
) -> BacktestResult:
    """Backtest a top-N / quantile, long-only or long-short strategy on scores.

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices frame (long; ``symbol``, ``date``, ``close`` split/dividend adjusted,
        USD). Optional columns used when needed: ``open`` (``fill="open"``), ``volume``
        (impact), ``close_raw`` (per-share commission, dividends), ``dividend_amount``
        (``dividends=True``). Its distinct dates form the trading calendar.
    scores : pandas.DataFrame
        Long frame ``date``, ``symbol``, ``score`` (higher = better; NaN = no opinion). For
        a walk-forward test these are out-of-sample predictions: the score of date t from a
        model fitted on data before t.
    top_n : int, default 20
        Names per leg; fewer when fewer are eligible. Ties broken by symbol order.
    rebalance_every : int, default 5
        Rebalance grid step in trading days (used when ``rebalance`` is None). Signal dates
        are ``i0, i0 + k, ...`` among the scored days in ``[start, end]``.
    cost_bps : float, default 10.0
        Proportional cost (commission + slippage) in bp of traded notional; ignored when
        ``costs`` is given.
    execution_lag : int, default 1
        Trading days between a signal date and the fill day.
    start, end : str or Timestamp, optional
        Window (inclusive) for signal dates, entries and the reported days.
    benchmark : pandas.Series, optional
        Index *levels* on a DatetimeIndex (e.g. the S&P 500); its name (default
        ``"benchmark"``) is its column in ``benchmarks``.
    rebalance : {"daily", "weekly", "monthly"}, optional
        Calendar rebalancing: every scored day, or the last trading day of each calendar
        week / month when it is scored (entered ``execution_lag`` days later). Overrides
        ``rebalance_every``.
    quantile : float, optional
        Select the top (and for long-short the bottom) fraction instead of ``top_n``.
    long_short : bool, default False
        Long the best, short the worst (dollar neutral, legs ``+-gross_exposure/2``).
    max_weight : float, optional
        Position limit on the absolute weight of a name.
    sectors : pandas.Series or dict, optional
        Symbol -> sector. When given, selection is sector neutral (see
        :func:`select_weights`).
    min_trade : float, default 0.0
        Minimum trade size as a fraction of capital: smaller trades are skipped (the
        position keeps its drifted weight, the difference stays in cash).
    costs : CostModel, optional
        Commission (bps and/or per share), slippage and square-root impact; default
        ``CostModel(slippage_bps=cost_bps)``.
    fill : {"close", "open"}, default "close"
        Fill at the close or at the open of the fill day (signal + ``execution_lag``).
    dividends : bool, default False
        False: dividends are reinvested in the stock through the adjusted close. True: the
        book is marked with price-only returns and each ``dividend_amount`` (ex-date) is
        paid into cash (shorts pay it), reinvested at the next rebalance.
    capital : float, default 1e7
        Starting capital in USD (scales the impact cost only).
    gross_exposure : float, default 1.0
        Sum of absolute target weights.

    Returns
    -------
    BacktestResult
        ``daily`` columns ``gross_return``, ``net_return``, ``turnover``, ``cost`` (fraction
        of capital), ``dividend_return``, ``cash`` (cash share of the book at the close),
        ``equity``; weights per entry, benchmarks and metrics.

    Raises
    ------
    DataValidationError
        Missing columns, duplicate (date, symbol) rows, or no scored signal date whose entry
        day falls inside the window.
    ValueError
        Invalid parameters.

    Notes
    -----
    Timing: a score of signal day ``s`` fills at the close (or open) of ``s + execution_lag``.
    With a close fill the holding earns the returns of the days after the fill; with an open
    fill it also earns the fill day's open-to-close return, and the previous book earns the
    overnight return (close ``e-1`` to open ``e``). Between fills holdings are fixed share
    counts marked to market daily (weights drift); a missing price is carried forward.
    The book of holding ``k`` is ``V_k(t) = c_k + D_k(t) + sum_i s_{k,i} P_{t,i}`` (cash,
    dividends received, shares x prices) per unit of capital at its fill. Costs of a
    rebalance (:func:`vfr.backtest.costs.trade_costs`, on traded weights against the drifted
    book) are subtracted from the fill day's return: ``net_t = gross_t - cost_t``.
    """
    if int(top_n) < 1 or int(rebalance_every) < 1 or int(execution_lag) < 0:
        raise ValueError("need top_n >= 1, rebalance_every >= 1 and execution_lag >= 0")
    if not cost_bps >= 0:
        raise ValueError(f"cost_bps must be >= 0, got {cost_bps}")
    if quantile is not None and not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    if max_weight is not None and not max_weight > 0:
        raise ValueError(f"max_weight must be > 0, got {max_weight}")
    if fill not in ("close", "open"):
        raise ValueError(f"fill must be 'close' or 'open', got {fill!r}")
    if not min_trade >= 0 or not capital > 0 or not gross_exposure > 0:
        raise ValueError("need min_trade >= 0, capital > 0 and gross_exposure > 0")
    model = costs if costs is not None else CostModel(slippage_bps=float(cost_bps))
    _check_columns(prices, {"symbol", "date", "close"}, "prices")
    _check_columns(scores, {"symbol", "date", "score"}, "scores")
    if fill == "open":
        _check_columns(prices, {"open"}, "prices")
    if model.impact_coef > 0:
        _check_columns(prices, {"volume"}, "prices")
    if dividends:
        _check_columns(prices, {"dividend_amount", "close_raw"}, "prices")

    calendar = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(prices["date"]).as_unit("ns"))).sort_values()
    calendar.name = "date"
    symbols = pd.Index(pd.unique(prices["symbol"])).astype(str).sort_values()
    ppos = _positions(prices, calendar, symbols, "prices")
    close = _to_matrix(prices, "close", calendar, symbols, "prices", ppos)
    close[~(close > 0)] = np.nan  # non-positive prices are unusable
    has_price = ~np.isnan(close)
    close_ff = _ffill_rows(close)
    n_days, n_sym = close.shape
    px_adj = np.nan_to_num(close_ff, nan=0.0)
    prev_close = np.vstack([np.full((1, n_sym), np.nan), close_ff[:-1]])

    # -- price paths: P (marking), Dv (dividend cash per share), O (open fill) ---------
    if "close_raw" in prices.columns:
        raw = _ffill_rows(_to_matrix(prices, "close_raw", calendar, symbols, "prices", ppos))
        raw = np.where(np.isnan(raw), close_ff, raw)
    else:
        raw = close_ff
    if dividends:
        div = np.nan_to_num(_to_matrix(prices, "dividend_amount", calendar, symbols, "prices", ppos), nan=0.0)
        raw_prev = np.vstack([np.full((1, n_sym), np.nan), raw[:-1]])
        with np.errstate(invalid="ignore", divide="ignore"):
            dy = np.clip(np.nan_to_num(np.where(raw_prev > 0, div / raw_prev, 0.0), nan=0.0), 0.0, 0.99)
        # the provider's factor scales history before an ex-date by (1 - D / P_raw_prev), so
        # the price-only path is the adjusted close times prod (1 - dy) up to that day
        P = px_adj * np.cumprod(1.0 - dy, axis=0)
        P_prev = np.vstack([np.zeros((1, n_sym)), P[:-1]])
        Dv = P_prev * dy
    else:
        P = px_adj
        Dv = None
    if fill == "open":
        op = _to_matrix(prices, "open", calendar, symbols, "prices", ppos)
        op[~(op > 0)] = np.nan
        has_open = ~np.isnan(op)
        # price-only open = open x (P / adjusted close) of the same day; missing -> prior close
        scale = np.divide(P, px_adj, out=np.ones_like(P), where=px_adj > 0)
        prevP = np.vstack([P[:1], P[:-1]])
        O = np.where(has_open, np.nan_to_num(op) * scale, prevP)
        raw_fill = np.where(has_open, np.nan_to_num(op) * np.divide(raw, close_ff, out=np.ones_like(raw),
                                                                     where=close_ff > 0), raw)
        adj_fill = np.where(has_open, np.nan_to_num(op), px_adj)
    else:
        has_open = has_price
        O = P
        raw_fill = raw
        adj_fill = px_adj
    if model.impact_coef > 0:
        vol = _to_matrix(prices, "volume", calendar, symbols, "prices", ppos)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(has_price, close / prev_close - 1.0, np.nan)
        liq = (_prefix_sums(vol), _prefix_sums(r), _prefix_sums(r * r))
    else:
        liq = None

    # -- window and signal dates ----------------------------------------------------
    lo = 0 if start is None else int(calendar.searchsorted(pd.Timestamp(start), side="left"))
    hi = n_days if end is None else int(calendar.searchsorted(pd.Timestamp(end), side="right"))
    sc = scores[["date", "symbol", "score"]].dropna(subset=["score"])
    pos = _lookup(pd.DatetimeIndex(sc["date"]).as_unit("ns"), calendar)
    spos = _lookup(sc["symbol"], symbols)
    known = (pos >= 0) & (spos >= 0)
    pos, spos, svals = pos[known], spos[known], sc["score"].to_numpy(dtype="float64")[known]
    is_scored = np.zeros(n_days, dtype=bool)
    is_scored[pos[pos >= 0]] = True
    scored_pos = np.flatnonzero(is_scored)
    scored_pos = scored_pos[(scored_pos >= lo) & (scored_pos < hi)]
    if scored_pos.size == 0:
        raise DataValidationError("scores have no non-NaN value on a trading day in the window",
                                  source="scores")
    grid = _grid(scored_pos, calendar, rebalance, rebalance_every)
    grid = grid[grid + int(execution_lag) < hi]
    if grid.size == 0:
        raise DataValidationError("no scored signal date has its entry day inside the window",
                                  source="scores")

    grid_row = np.full(n_days, -1)
    grid_row[grid] = np.arange(grid.size)
    gr = grid_row[pos]
    on_grid = gr >= 0
    flat = gr[on_grid].astype(np.int64) * n_sym + spos[on_grid]
    if flat.size and np.bincount(flat, minlength=grid.size * n_sym).max() > 1:
        raise DataValidationError("duplicate (date, symbol) rows in scores", source="scores")
    smat = np.full((grid.size, n_sym), np.nan)
    smat.reshape(-1)[flat] = svals[on_grid]
    entry_pos = grid + int(execution_lag)
    eligible = ~np.isnan(smat) & has_price[entry_pos] & has_open[entry_pos]
    ok = eligible.sum(axis=1) >= (2 if long_short else 1)
    grid, entry_pos, smat, eligible = grid[ok], entry_pos[ok], smat[ok], eligible[ok]
    if grid.size == 0:
        raise DataValidationError("no signal date has an eligible (scored and priced) symbol",
                                  source="scores")
    if sectors is not None:
        sec = pd.Series(sectors).astype(str)
        sec.index = sec.index.astype(str)
        codes_all = pd.Categorical(sec.reindex(symbols)).codes.astype(np.int64)  # -1 = unknown
    else:
        codes_all = None

    # -- simulation, one holding period at a time ----------------------------------
    K = len(grid)
    gf = np.ones(n_days)  # gross growth factor of each day
    cost = np.zeros(n_days)
    turnover = np.zeros(n_days)
    divret = np.zeros(n_days)
    cash_share = np.zeros(n_days)
    target = np.zeros((K, n_sym))
    net_eq = 1.0  # net equity at the previous close (for impact in USD)
    drift = np.zeros(n_sym)
    eq_mark = int(grid[0])  # net equity known up to (excluding) this row
    for k in range(K):
        e = int(entry_pos[k])
        w = select_weights(smat[k], eligible[k], top_n=int(top_n), quantile=quantile, long_short=long_short,
                           sector_codes=codes_all, max_weight=max_weight, gross_exposure=float(gross_exposure))
        if min_trade > 0:
            small = np.abs(w - drift) < float(min_trade)
            w = np.where(small, drift, w)
        target[k] = w
        trades = w - drift
        # net equity at the close before the fill
        if e > eq_mark:
            seg = slice(eq_mark, e)
            net_eq *= float(np.prod(gf[seg] - cost[seg]))
            eq_mark = e
        adv = sig = None
        if liq is not None:  # ADV and volatility of the adv_window days before the fill day
            wd = int(model.adv_window)
            adv = _mean_before(liq[0], e, wd)
            m1, m2 = _mean_before(liq[1], e, wd), _mean_before(liq[2], e, wd)
            sig = np.sqrt(np.clip(m2 - m1 * m1, 0.0, None))
        cost[e] = trade_costs(trades, model=model, capital=float(capital) * net_eq, raw_price=raw_fill[e],
                              adj_price=adj_fill[e], adv=adv, sigma=sig)
        turnover[e] = float(np.abs(trades).sum())
        fpx = O[e]
        s = np.divide(w, fpx, out=np.zeros_like(w), where=w != 0)
        c = 1.0 - float(w.sum())
        last = int(entry_pos[k + 1]) if k + 1 < K else hi - 1
        Pseg = P[e:last + 1]
        stock = Pseg @ s
        if Dv is not None and last > e:
            dcash = np.r_[0.0, np.cumsum(Dv[e + 1:last + 1] @ s)]
        else:
            dcash = np.zeros(last - e + 1)
        cashv = c + dcash
        Vc = stock + cashv
        if fill == "close":
            vprev, vnow = Vc[:-1], Vc[1:]
            f = np.divide(vnow, vprev, out=np.ones_like(vnow), where=vprev > 0)
            gf[e + 1:last + 1] *= f
            d_idx = slice(e + 1, last + 1)
            divret[d_idx] = np.divide(np.diff(dcash), vprev, out=np.zeros_like(vprev), where=vprev > 0)
            cash_share[e:last + 1] = np.divide(cashv, Vc, out=np.zeros_like(Vc), where=Vc > 0)
            if k + 1 < K:
                v_end = Vc[-1]
                drift = np.divide(s * P[last], v_end, out=np.zeros_like(s), where=v_end > 0) if v_end > 0 \
                    else np.zeros(n_sym)
        else:
            gf[e] *= Vc[0]
            cash_share[e:last + 1] = np.divide(cashv, Vc, out=np.zeros_like(Vc), where=Vc > 0)
            if k + 1 < K:
                body_end = last - 1  # days e+1 .. last-1 are close-to-close for this book
                vprev, vnow = Vc[:-2], Vc[1:-1]
                gf[e + 1:last] *= np.divide(vnow, vprev, out=np.ones_like(vnow), where=vprev > 0)
                divret[e + 1:last + 1] = np.divide(np.diff(dcash), Vc[:-1], out=np.zeros(last - e),
                                                   where=Vc[:-1] > 0)
                v_open = cashv[-1] + float(O[last] @ s)
                gf[last] *= v_open / Vc[-2] if Vc[-2] > 0 else 1.0
                drift = np.divide(s * O[last], v_open, out=np.zeros_like(s), where=v_open > 0) if v_open > 0 \
                    else np.zeros(n_sym)
                del body_end
            else:
                vprev, vnow = Vc[:-1], Vc[1:]
                gf[e + 1:last + 1] *= np.divide(vnow, vprev, out=np.ones_like(vnow), where=vprev > 0)
                divret[e + 1:last + 1] = np.divide(np.diff(dcash), vprev, out=np.zeros_like(vprev),
                                                   where=vprev > 0)
    gross = gf - 1.0
    net = gross - cost

    # -- assemble --------------------------------------------------------------------
    first = int(grid[0])
    rows = slice(first, hi)
    days = calendar[rows]
    daily = pd.DataFrame(
        {"gross_return": gross[rows], "net_return": net[rows], "turnover": turnover[rows], "cost": cost[rows],
         "dividend_return": divret[rows], "cash": np.where(np.arange(n_days) < entry_pos[0], 1.0, cash_share)[rows]},
        index=days,
    )
    daily["equity"] = (1.0 + daily["net_return"]).cumprod()

    ew_mask = has_price & ~np.isnan(prev_close)
    with np.errstate(invalid="ignore", divide="ignore"):
        sym_ret = np.where(ew_mask, close / prev_close - 1.0, 0.0)
    counts = ew_mask.sum(axis=1)
    ew = np.divide(sym_ret.sum(axis=1), counts, out=np.full(n_days, np.nan), where=counts > 0)
    benchmarks = pd.DataFrame({EQUAL_WEIGHT: ew[rows]}, index=days)
    main_bench = EQUAL_WEIGHT
    if benchmark is not None:
        name = str(benchmark.name) if benchmark.name is not None else "benchmark"
        if name in {EQUAL_WEIGHT, "strategy_net", "strategy_gross"}:
            name = f"benchmark_{name}"
        benchmarks[name] = _benchmark_returns(benchmark, calendar)[rows].to_numpy()
        main_bench = name

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
    for key, col in (("strategy_net", "net_return"), ("strategy_gross", "gross_return")):
        metrics[key].update(relative_metrics(daily.loc[inv, col], benchmarks.loc[inv, main_bench]))
    for col in benchmarks.columns:
        metrics[col] = summary_metrics(benchmarks.loc[inv, col])
    params = {"top_n": int(top_n), "rebalance_every": int(rebalance_every), "cost_bps": model.bps,
              "execution_lag": int(execution_lag), "start": start, "end": end, "rebalance": rebalance,
              "quantile": quantile, "long_short": bool(long_short), "max_weight": max_weight,
              "sector_neutral": sectors is not None, "min_trade": float(min_trade), "costs": asdict(model),
              "fill": fill, "dividends": bool(dividends), "capital": float(capital),
              "gross_exposure": float(gross_exposure), "relative_to": main_bench}
    return BacktestResult(daily=daily, weights=weights, benchmarks=benchmarks, metrics=metrics,
                          params=params)
