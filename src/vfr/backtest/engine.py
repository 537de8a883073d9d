"""Backtest engine: top-N / quantile, long-only or long-short, with execution lag, daily
marking to market, cash and dividends, position limits, sector neutrality, minimum trade
size and a commission / slippage / square-root-impact cost model; portfolio construction
that survives costs: a rank buffer with an optional drop limit, inverse-volatility weights,
sector caps, volatility targeting and a cost-aware mean-variance optimiser
(:class:`BacktestConfig` ``buffer_n``, ``max_drops``, ``weighting``, ``max_sector_weight``,
``target_vol``).

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

Construction at a rebalance with signal date ``s`` (in this order): select (top-N, or the
rank buffer against the previous rebalance's selection), equal weights (or, with
``weighting="inverse_vol"``, weights in inverse proportion to each name's daily-return
volatility over the ``vol_lookback`` days up to the close of ``s``), ``max_weight``,
``max_sector_weight``, the volatility-target scale (from the book's daily returns up to the
close of ``s``; with an open fill up to the close before the fill day), then ``min_trade``
against the drifted book. With ``weighting="optimized"`` selection and weights are one step:
the cost-aware optimiser (:mod:`vfr.backtest.optimizer`) weighs every eligible name against
their equal-weight book, from the returns of the ``cov_lookback`` days up to the close of
``s`` and the previous rebalance's target; then the sector cap, the volatility target and
``min_trade`` as above. Every step uses data known at the close of ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vfr.backtest.config import BacktestConfig
from vfr.backtest.costs import CostModel, trade_costs
from vfr.backtest.metrics import relative_metrics, summary_metrics
from vfr.backtest.optimizer import cap_weights as _cap_leg
from vfr.errors import DataValidationError

__all__ = ["BacktestConfig", "BacktestResult", "buffered_selection", "cap_sector_weights", "optimized_weights",
           "run_backtest", "select_weights", "vol_target_scale"]

#: Trading days per year (annualising the volatility target's estimate).
PERIODS_PER_YEAR = 252

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
        Index as ``daily``; column ``equal_weight`` (mean daily return, rebalanced daily and
        without costs, of the symbols scored on the latest scored day before that day that have
        a price on both days: the universe the strategy chose from, so with point-in-time
        scores the index members of the time, not every symbol of ``prices``) and one column
        per optional benchmark (NaN where it has no data).
    metrics : dict[str, dict[str, float]]
        :func:`~vfr.backtest.metrics.summary_metrics` over the invested period (first entry
        day to the end) for ``strategy_net`` (with turnover), ``strategy_gross`` and each
        benchmark column (over its non-NaN days); the two strategy entries also hold
        :func:`~vfr.backtest.metrics.relative_metrics` (``alpha``, ``beta``,
        ``information_ratio``, ``tracking_error``) against ``params["relative_to"]`` (the
        external benchmark when given, else ``equal_weight``).
    params : dict[str, Any]
        The run's :class:`BacktestConfig` (:meth:`BacktestConfig.as_params`: every field,
        ``costs`` as a dict, ``cost_bps`` the proportional cost charged) and ``relative_to``.
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
    return w if max_weight is None else _cap_legs(w, max_weight)


def _cap_legs(w: np.ndarray, cap: float) -> np.ndarray:
    """:func:`_cap_leg` applied to the long and the short leg of ``w`` separately."""
    return _cap_leg(np.clip(w, 0, None), cap) - _cap_leg(np.clip(-w, 0, None), cap)


def inverse_vol_weights(w: np.ndarray, sigma: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Reweight a book's names in inverse proportion to their volatility (pure function).

    Naive risk parity: within each leg (long, short) and, with ``groups``, within each group of
    a leg, the leg's total weight is split in proportion to ``1 / sigma`` of its names, so each
    name adds about the same volatility (the equal-correlation case of risk parity: Maillard,
    Roncalli and Teiletche 2010, "The properties of equally weighted risk contribution
    portfolios", J. Portfolio Management 36(4)). Each leg's (group's) total is unchanged.

    Parameters
    ----------
    w : numpy.ndarray
        Weights, shape ``(n,)``: the book before reweighting (0 = not held).
    sigma : numpy.ndarray
        Volatility of each name, shape ``(n,)`` (any unit, the same for all; e.g. the daily
        return's standard deviation over the trailing days known at the signal date). A held
        name with a NaN or non-positive value takes the median of its leg's valid values; a
        leg with none keeps its weights.
    groups : numpy.ndarray, optional
        Integer group per name, shape ``(n,)`` (e.g. sector codes of a sector-neutral book):
        totals are kept per group and leg.

    Returns
    -------
    numpy.ndarray
        Weights, shape ``(n,)``, same sign and support as ``w``.

    Raises
    ------
    ValueError
        ``w``, ``sigma`` (and ``groups``) differ in shape.
    """
    w = np.asarray(w, dtype="float64")
    sigma = np.asarray(sigma, dtype="float64")
    if sigma.shape != w.shape or (groups is not None and np.shape(groups) != w.shape):
        raise ValueError(f"inverse_vol_weights: w {w.shape}, sigma {sigma.shape} and groups "
                         f"{None if groups is None else np.shape(groups)} must have one shape")
    out = w.copy()
    codes = np.zeros(w.size, dtype=np.int64) if groups is None else np.asarray(groups)
    for sign in (1.0, -1.0):
        leg = np.sign(w) == sign
        for c in np.unique(codes[leg]):
            idx = np.flatnonzero(leg & (codes == c))
            s = sigma[idx]
            valid = np.isfinite(s) & (s > 0)
            if not valid.any():
                continue
            s = np.where(valid, s, np.median(s[valid]))
            inv = 1.0 / s
            out[idx] = w[idx].sum() * inv / inv.sum()
    return out


def buffered_selection(score: np.ndarray, eligible: np.ndarray, held: np.ndarray, *, top_n: int,
                       buffer_n: int | None = None, max_drops: int | None = None) -> np.ndarray:
    """The names of a long top-N book with a rank buffer and a drop limit (pure function).

    Ranks the eligible names by score (1 = best; ties broken by position, as
    :func:`select_weights`). A held name is kept while its rank is at most ``buffer_n``; with
    ``max_drops`` at most that many held names ranked beyond ``buffer_n`` leave (the worst
    ranked first), the others stay. The free places, up to ``min(top_n, n_eligible)`` names,
    go to the best-ranked names not kept, which therefore always rank within ``top_n``.

    Parameters
    ----------
    score : numpy.ndarray
        Scores, shape ``(n,)`` (higher = better).
    eligible : numpy.ndarray
        Boolean mask, shape ``(n,)``: scored and tradable. A held name that is not eligible
        always leaves (a forced exit, not counted in ``max_drops``).
    held : numpy.ndarray
        Boolean mask, shape ``(n,)``: the previous rebalance's selection (all False at the
        first rebalance).
    top_n : int
        Book size (>= 1) and the entry rank.
    buffer_n : int, optional
        Exit rank, ``>= top_n``; None = ``top_n`` (no buffer).
    max_drops : int, optional
        Most held names dropped for their rank per call (Qlib's ``n_drop``, >= 0); None = no
        limit.

    Returns
    -------
    numpy.ndarray
        Boolean mask, shape ``(n,)``, of ``min(top_n, n_eligible)`` names (fewer only when
        ``held`` holds more names than that: then the best ranked of them).

    Raises
    ------
    ValueError
        Shapes differ, ``top_n < 1``, ``buffer_n < top_n`` or ``max_drops < 0``.

    Notes
    -----
    With ``buffer_n = top_n`` and no drop limit the result is the top ``top_n``
    (:func:`select_weights`). With ``buffer_n = top_n`` and ``max_drops = n_drop`` it is the
    set Qlib's ``TopkDropoutStrategy(topk=top_n, n_drop=n_drop)`` holds after trading
    (``method_sell="bottom"``, ``method_buy="top"``, ``hold_thresh=1``, a full book of
    ``topk`` names), which sells the held names that fall into the bottom ``n_drop`` of
    "held + the best ``n_drop`` new names": exactly the (at most ``n_drop``) worst held names
    ranked beyond ``topk``.
    """
    score, eligible, held = np.asarray(score, dtype="float64"), np.asarray(eligible, bool), np.asarray(held, bool)
    if not (score.shape == eligible.shape == held.shape) or score.ndim != 1:
        raise ValueError(f"buffered_selection: score, eligible and held must have one shape (n,), got "
                         f"{score.shape}, {eligible.shape}, {held.shape}")
    buffer_n = top_n if buffer_n is None else buffer_n
    if top_n < 1 or buffer_n < top_n or (max_drops is not None and max_drops < 0):
        raise ValueError(f"buffered_selection: need top_n >= 1, buffer_n >= top_n and max_drops >= 0, got "
                         f"top_n={top_n}, buffer_n={buffer_n}, max_drops={max_drops}")
    idx = np.flatnonzero(eligible)
    order = idx[np.argsort(-score[idx], kind="stable")]
    rank = np.full(score.size, np.iinfo(np.int64).max)
    rank[order] = np.arange(1, order.size + 1)
    k = min(int(top_n), order.size)
    held_ok = held & eligible
    keep = held_ok & (rank <= buffer_n)
    if max_drops is not None:
        beyond = np.flatnonzero(held_ok & (rank > buffer_n))
        beyond = beyond[np.argsort(-rank[beyond], kind="stable")]  # worst first
        keep[beyond[int(max_drops):]] = True
    if keep.sum() > k:  # only when held had more names than the book: keep the best ranked
        kept = np.flatnonzero(keep)
        keep[:] = False
        keep[kept[np.argsort(rank[kept], kind="stable")[:k]]] = True
    fill = order[~keep[order]][: k - int(keep.sum())]
    keep[fill] = True
    return keep


def _group_cap(x: np.ndarray, codes: np.ndarray, limit: float) -> np.ndarray:
    """Cap the group sums of non-negative ``x`` at ``limit``; the excess scales up the names of
    the other groups pro rata (water-filling; exact after at most one pass per group)."""
    total = float(x.sum())
    if total <= 0:
        return x.copy()
    uniq, inv = np.unique(codes, return_inverse=True)
    sums = np.bincount(inv, weights=x, minlength=uniq.size)
    capped = sums > limit
    if not capped.any():
        return x.copy()
    factor = np.ones(uniq.size)
    for _ in range(uniq.size):
        free = ~capped & (sums > 0)
        budget = total - limit * capped.sum()
        base = sums[free].sum()
        f = budget / base if base > 0 and budget > 0 else 0.0
        newly = free & (sums * f > limit)
        if not newly.any():
            factor = np.where(capped, np.divide(limit, sums, out=np.zeros_like(sums), where=sums > 0),
                              np.where(free, f, 0.0))
            break
        capped |= newly
    return x * factor[inv]


def cap_sector_weights(w: np.ndarray, sector_codes: np.ndarray, max_share: float, *, gross: float | None = None,
                       max_weight: float | None = None) -> np.ndarray:
    """Cap each sector's weight at ``max_share`` of the gross exposure (pure function).

    Per leg (longs, and the absolute weights of shorts, separately) each sector's summed
    weight is held to ``max_share * gross``. The excess is given to the holdings of the other
    sectors of that leg pro rata to their weights (each scaled by one common factor, sectors
    reaching the cap in turn stop there); what no sector can absorb (too few sectors held)
    stays in cash. No name is added or removed.

    Parameters
    ----------
    w : numpy.ndarray
        Weights, shape ``(n,)`` (fraction of capital; negative = short).
    sector_codes : numpy.ndarray
        Integer sector code per name, shape ``(n,)`` (-1 = unknown: one group of its own).
    max_share : float
        Largest sector weight as a fraction of ``gross``, in ``(0, 1]``.
    gross : float, optional
        Gross exposure the cap refers to; default ``sum(|w|)``.
    max_weight : float, optional
        Position limit to keep as well: the sector cap and :func:`select_weights`'s name cap
        alternate until both hold; any excess left then stays in cash.

    Returns
    -------
    numpy.ndarray
        Capped weights, shape ``(n,)``; the gross exposure is unchanged unless the caps leave
        cash.

    Raises
    ------
    ValueError
        Shapes differ, or ``max_share`` is not in ``(0, 1]``.
    """
    w = np.asarray(w, dtype="float64")
    codes = np.asarray(sector_codes)
    if w.shape != codes.shape or w.ndim != 1:
        raise ValueError(f"cap_sector_weights: w and sector_codes must have one shape (n,), got {w.shape}, "
                         f"{codes.shape}")
    if not 0 < max_share <= 1:
        raise ValueError(f"cap_sector_weights: max_share must be in (0, 1], got {max_share!r}")
    limit = max_share * (float(np.abs(w).sum()) if gross is None else float(gross))
    tol = 1e-12 * max(limit, 1.0)
    legs = []
    for leg in (np.clip(w, 0, None), np.clip(-w, 0, None)):
        x = _group_cap(leg, codes, limit)
        if max_weight is not None:
            for _ in range(50):
                if (x <= max_weight + tol).all():
                    break
                x = _group_cap(_cap_leg(x, max_weight), codes, limit)
            x = np.minimum(x, max_weight)  # both caps now hold (only ever lowers a weight)
        legs.append(x)
    return legs[0] - legs[1]


def vol_target_scale(returns: np.ndarray, target_vol: float, *, max_leverage: float = 1.0,
                     min_obs: int = 2, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Exposure scale that targets an annualised volatility (pure function).

    ``min(max_leverage, target_vol / (std(returns, ddof=1) * sqrt(periods_per_year)))``.

    Parameters
    ----------
    returns : numpy.ndarray
        Past daily simple returns of the book at unit exposure, shape ``(m,)``, only those
        known when the weights are decided (NaN ignored).
    target_vol : float
        Annualised volatility target (> 0), e.g. 0.15.
    max_leverage : float, default 1.0
        Largest scale (> 0).
    min_obs : int, default 2
        Fewer non-NaN returns than this (>= 2): no estimate, scale ``min(1, max_leverage)``.
    periods_per_year : int, default 252

    Returns
    -------
    float
        The scale, in ``(0, max_leverage]``; ``max_leverage`` when the returns do not vary.

    Raises
    ------
    ValueError
        ``target_vol`` or ``max_leverage`` not finite and > 0, or ``min_obs < 2``.
    """
    if not (np.isfinite(target_vol) and target_vol > 0 and np.isfinite(max_leverage) and max_leverage > 0):
        raise ValueError(f"vol_target_scale: target_vol and max_leverage must be finite and > 0, got "
                         f"{target_vol!r}, {max_leverage!r}")
    if min_obs < 2:
        raise ValueError(f"vol_target_scale: min_obs must be >= 2, got {min_obs}")
    r = np.asarray(returns, dtype="float64")
    r = r[~np.isnan(r)]
    if r.size < min_obs:
        return float(min(1.0, max_leverage))
    vol = float(np.std(r, ddof=1)) * float(np.sqrt(periods_per_year))
    if not vol > 0:
        return float(max_leverage)
    return float(min(max_leverage, target_vol / vol))


def vol_targeted_returns(returns: pd.Series, target_vol: float, *, every: int = 5, lookback: int = 63,
                         max_leverage: float = 1.0) -> pd.Series:
    """A daily return series held under a volatility target, as the backtest holds a book (pure).

    Every ``every`` days (from the first) the scale becomes :func:`vol_target_scale` of the
    ``lookback`` returns up to and including that day (at least ``lookback // 2`` of them,
    else 1), and applies from the next day on; the scaled return is ``scale x return`` (the
    rest in cash at 0; no costs). Used to ask what a volatility target alone does to a
    benchmark, e.g. the equal-weight universe beside a volatility-targeted book.

    Parameters
    ----------
    returns : pandas.Series
        Daily simple returns at unit exposure, date-indexed, shape ``(T,)`` (NaN kept, not used
        in estimates).
    target_vol : float
        Annualised target (> 0).
    every, lookback : int
        Days between scale updates (>= 1) and returns per estimate (>= 2).
    max_leverage : float
        Largest scale (> 0).

    Returns
    -------
    pandas.Series
        The scaled returns, same index.

    Raises
    ------
    ValueError
        See :func:`vol_target_scale`; or ``every < 1`` / ``lookback < 2``.
    """
    if every < 1 or lookback < 2:
        raise ValueError(f"vol_targeted_returns: every must be >= 1 and lookback >= 2, got {every}, {lookback}")
    r = returns.to_numpy(dtype="float64")
    scale = np.ones_like(r)
    cur = float(min(1.0, max_leverage))
    for i in range(r.size):
        scale[i] = cur
        if i % every == 0:
            cur = vol_target_scale(r[max(0, i - lookback + 1):i + 1], target_vol, max_leverage=max_leverage,
                                   min_obs=max(2, lookback // 2))
    return pd.Series(r * scale, index=returns.index, name=returns.name)


def _required_price_columns(config: BacktestConfig) -> set[str]:
    """Prices columns a run cannot do without (``close_raw`` is optional unless dividends)."""
    cols = set(config.price_columns())
    if not config.dividends:
        cols.discard("close_raw")  # a per-share commission falls back to the adjusted close
    return cols


def _check_inputs(prices: pd.DataFrame, scores: pd.DataFrame, config: BacktestConfig,
                  sectors: pd.Series | dict[str, str] | None) -> None:
    """Raise on a config that is not a :class:`BacktestConfig`, missing columns, or sectors
    that do not match ``config.sector_neutral``."""
    if not isinstance(config, BacktestConfig):
        raise TypeError(f"run_backtest: config must be a vfr.backtest.BacktestConfig, got {type(config).__name__}")
    _check_columns(prices, _required_price_columns(config), "prices")
    _check_columns(scores, {"symbol", "date", "score"}, "scores")
    if config.sector_neutral and sectors is None:
        raise ValueError("run_backtest: config.sector_neutral is True but no sectors were given "
                         "(pass sectors=, symbol -> sector)")
    if config.max_sector_weight is not None and sectors is None:
        raise ValueError(f"run_backtest: config.max_sector_weight is {config.max_sector_weight} but no sectors "
                         "were given (pass sectors=, symbol -> sector)")
    if sectors is not None and not config.needs_sectors:
        raise ValueError("run_backtest: sectors were given but config.sector_neutral is False and "
                         "config.max_sector_weight is None (use BacktestConfig(sector_neutral=True) or "
                         "max_sector_weight=)")


@dataclass(frozen=True)
class _Market:
    """Prices of a run as ``(day, symbol)`` matrices on the trading calendar.

    ``close`` is NaN where there is no usable (positive) close; ``prev_close`` is the
    carried close of the day before; ``P`` the marking path (adjusted close, or price-only
    with dividends) and ``Dv`` the dividend cash per share (None without dividends); ``OP``
    the fill path, ``raw_fill`` / ``adj_fill`` the as-traded / adjusted fill prices (for
    costs); ``has_open`` whether a name can be filled; ``adv`` prefix sums of volume (impact
    costs only) and ``rets`` of the daily return and squared return (impact costs and
    inverse-volatility weights only); ``r`` the daily returns (the optimiser only).
    """

    calendar: pd.DatetimeIndex
    symbols: pd.Index
    close: np.ndarray
    prev_close: np.ndarray
    has_price: np.ndarray
    has_open: np.ndarray
    P: np.ndarray
    Dv: np.ndarray | None
    OP: np.ndarray
    raw_fill: np.ndarray
    adj_fill: np.ndarray
    adv: tuple[np.ndarray, np.ndarray] | None
    rets: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None
    r: np.ndarray | None = None


def _dividend_paths(px_adj: np.ndarray, raw: np.ndarray, div: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Price-only marking path and dividend cash per share of each day.

    The provider's factor scales history before an ex-date by ``1 - D / P_raw_prev``, so the
    price-only path is the adjusted close times ``prod (1 - dy)`` up to that day.
    """
    div = np.nan_to_num(div, nan=0.0)
    raw_prev = np.vstack([np.full((1, raw.shape[1]), np.nan), raw[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        dy = np.clip(np.nan_to_num(np.where(raw_prev > 0, div / raw_prev, 0.0), nan=0.0), 0.0, 0.99)
    P = px_adj * np.cumprod(1.0 - dy, axis=0)
    P_prev = np.vstack([np.zeros((1, raw.shape[1])), P[:-1]])
    return P, P_prev * dy


def _open_fill(op: np.ndarray, P: np.ndarray, px_adj: np.ndarray, raw: np.ndarray, close_ff: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``has_open``, fill path, as-traded and adjusted fill prices of an open fill.

    The price-only open is the open times ``P / adjusted close`` of the same day; a missing
    open fills at the prior day's price.
    """
    op[~(op > 0)] = np.nan
    has_open = ~np.isnan(op)
    scale = np.divide(P, px_adj, out=np.ones_like(P), where=px_adj > 0)
    prevP = np.vstack([P[:1], P[:-1]])
    OP = np.where(has_open, np.nan_to_num(op) * scale, prevP)
    raw_fill = np.where(has_open, np.nan_to_num(op) * np.divide(raw, close_ff, out=np.ones_like(raw),
                                                                 where=close_ff > 0), raw)
    adj_fill = np.where(has_open, np.nan_to_num(op), px_adj)
    return has_open, OP, raw_fill, adj_fill


def _daily_returns(close: np.ndarray, prev_close: np.ndarray, has_price: np.ndarray) -> np.ndarray:
    """Close-to-close returns, shape ``(n_days, n_symbols)`` (NaN without a price)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(has_price, close / prev_close - 1.0, np.nan)


def _return_sums(r: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Prefix sums of the daily return and the squared return (for volatility)."""
    return _prefix_sums(r), _prefix_sums(r * r)


def _market(prices: pd.DataFrame, config: BacktestConfig) -> _Market:
    """Scatter the prices frame into the matrices of :class:`_Market` (its dates = calendar)."""
    calendar = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(prices["date"]).as_unit("ns"))).sort_values()
    calendar.name = "date"
    symbols = pd.Index(pd.unique(prices["symbol"])).astype(str).sort_values()
    ppos = _positions(prices, calendar, symbols, "prices")

    def matrix(column: str) -> np.ndarray:
        return _to_matrix(prices, column, calendar, symbols, "prices", ppos)

    close = matrix("close")
    close[~(close > 0)] = np.nan  # non-positive prices are unusable
    has_price = ~np.isnan(close)
    close_ff = _ffill_rows(close)
    px_adj = np.nan_to_num(close_ff, nan=0.0)
    prev_close = np.vstack([np.full((1, close.shape[1]), np.nan), close_ff[:-1]])
    raw = close_ff
    if "close_raw" in prices.columns:
        raw = _ffill_rows(matrix("close_raw"))
        raw = np.where(np.isnan(raw), close_ff, raw)
    P, Dv = _dividend_paths(px_adj, raw, matrix("dividend_amount")) if config.dividends else (px_adj, None)
    if config.fill == "open":
        has_open, OP, raw_fill, adj_fill = _open_fill(matrix("open"), P, px_adj, raw, close_ff)
    else:
        has_open, OP, raw_fill, adj_fill = has_price, P, raw, px_adj
    impact = config.costs.impact_coef > 0
    adv = _prefix_sums(matrix("volume")) if impact else None
    r = _daily_returns(close, prev_close, has_price) if impact or config.weighting != "equal" else None
    rets = _return_sums(r) if r is not None and (impact or config.weighting == "inverse_vol") else None
    return _Market(calendar=calendar, symbols=symbols, close=close, prev_close=prev_close, has_price=has_price,
                   has_open=has_open, P=P, Dv=Dv, OP=OP, raw_fill=raw_fill, adj_fill=adj_fill, adv=adv, rets=rets,
                   r=r if config.weighting == "optimized" else None)


@dataclass(frozen=True)
class _Signals:
    """The rebalances of a run: signal-date rows ``grid``, fill-day rows ``entry``, the scores
    ``(len(grid), n_symbols)`` and who is eligible; ``hi`` ends the window (exclusive row)."""

    grid: np.ndarray
    entry: np.ndarray
    scores: np.ndarray
    eligible: np.ndarray
    hi: int


def _window(calendar: pd.DatetimeIndex, config: BacktestConfig) -> tuple[int, int]:
    """Calendar rows ``[lo, hi)`` of the window ``[config.start, config.end]``."""
    lo = 0 if config.start is None else int(calendar.searchsorted(pd.Timestamp(config.start), side="left"))
    hi = len(calendar) if config.end is None else int(calendar.searchsorted(pd.Timestamp(config.end), side="right"))
    return lo, hi


def _score_positions(scores: pd.DataFrame, calendar: pd.DatetimeIndex, symbols: pd.Index
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calendar row, symbol column and value of each non-NaN score on a known day and symbol."""
    sc = scores[["date", "symbol", "score"]].dropna(subset=["score"])
    pos = _lookup(pd.DatetimeIndex(sc["date"]).as_unit("ns"), calendar)
    spos = _lookup(sc["symbol"], symbols)
    known = (pos >= 0) & (spos >= 0)
    return pos[known], spos[known], sc["score"].to_numpy(dtype="float64")[known]


def _signal_grid(pos: np.ndarray, calendar: pd.DatetimeIndex, window: tuple[int, int],
                 config: BacktestConfig) -> np.ndarray:
    """Signal-date rows: the rebalance grid over the scored days of the window whose fill day
    is still inside it.

    Raises
    ------
    DataValidationError
        No scored day in the window, or none whose fill day is in it.
    """
    lo, hi = window
    is_scored = np.zeros(len(calendar), dtype=bool)
    is_scored[pos] = True
    scored_pos = np.flatnonzero(is_scored)
    scored_pos = scored_pos[(scored_pos >= lo) & (scored_pos < hi)]
    if scored_pos.size == 0:
        raise DataValidationError("scores have no non-NaN value on a trading day in the window",
                                  source="scores")
    grid = _grid(scored_pos, calendar, config.rebalance, config.rebalance_every)
    grid = grid[grid + config.execution_lag < hi]
    if grid.size == 0:
        raise DataValidationError("no scored signal date has its entry day inside the window",
                                  source="scores")
    return grid


def _score_matrix(pos: np.ndarray, spos: np.ndarray, values: np.ndarray, grid: np.ndarray, n_days: int,
                  n_sym: int) -> np.ndarray:
    """Scores of the signal dates, shape ``(len(grid), n_sym)`` (NaN = no score).

    Raises
    ------
    DataValidationError
        A (date, symbol) pair of a signal date is scored twice.
    """
    grid_row = np.full(n_days, -1)
    grid_row[grid] = np.arange(grid.size)
    gr = grid_row[pos]
    on_grid = gr >= 0
    flat = gr[on_grid].astype(np.int64) * n_sym + spos[on_grid]
    if flat.size and np.bincount(flat, minlength=grid.size * n_sym).max() > 1:
        raise DataValidationError("duplicate (date, symbol) rows in scores", source="scores")
    smat = np.full((grid.size, n_sym), np.nan)
    smat.reshape(-1)[flat] = values[on_grid]
    return smat


def _signals(scores: pd.DataFrame, market: _Market, config: BacktestConfig) -> _Signals:
    """The rebalances with at least one eligible (scored, priced, fillable) name per leg.

    Raises
    ------
    DataValidationError
        See :func:`_signal_grid`, :func:`_score_matrix`; or no signal date has an eligible
        name.
    """
    n_days, n_sym = market.close.shape
    window = _window(market.calendar, config)
    pos, spos, values = _score_positions(scores, market.calendar, market.symbols)
    grid = _signal_grid(pos, market.calendar, window, config)
    smat = _score_matrix(pos, spos, values, grid, n_days, n_sym)
    entry = grid + config.execution_lag
    eligible = ~np.isnan(smat) & market.has_price[entry] & market.has_open[entry]
    ok = eligible.sum(axis=1) >= (2 if config.long_short else 1)
    if not ok.any():
        raise DataValidationError("no signal date has an eligible (scored and priced) symbol",
                                  source="scores")
    return _Signals(grid=grid[ok], entry=entry[ok], scores=smat[ok], eligible=eligible[ok], hi=window[1])


def _sector_codes(sectors: pd.Series | dict[str, str] | None, symbols: pd.Index) -> np.ndarray | None:
    """Integer sector code per symbol (-1 = unknown), or None without sectors."""
    if sectors is None:
        return None
    sec = pd.Series(sectors).astype(str)
    sec.index = sec.index.astype(str)
    return pd.Categorical(sec.reindex(symbols)).codes.astype(np.int64)


@dataclass
class _Path:
    """Per-day outputs of the simulation (``n_days`` long) and the target book of each rebalance."""

    gf: np.ndarray  # gross growth factor of each day
    cost: np.ndarray
    turnover: np.ndarray
    divret: np.ndarray
    cash_share: np.ndarray
    target: np.ndarray  # (n_rebalances, n_symbols)
    scale: np.ndarray  # volatility-target scale of the book that earned each day (1.0 without)

    @classmethod
    def empty(cls, n_days: int, n_books: int, n_sym: int) -> _Path:
        return cls(gf=np.ones(n_days), cost=np.zeros(n_days), turnover=np.zeros(n_days), divret=np.zeros(n_days),
                   cash_share=np.zeros(n_days), target=np.zeros((n_books, n_sym)), scale=np.ones(n_days))


def _select(score: np.ndarray, eligible: np.ndarray, held: np.ndarray, codes: np.ndarray | None,
            config: BacktestConfig, sigma: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weights of one rebalance before the volatility scale and ``min_trade``, and the
    selection (the names the rank buffer of the next rebalance treats as held). ``sigma``:
    each name's trailing volatility (``weighting="inverse_vol"``)."""
    if config.buffered:
        sel = buffered_selection(score, eligible, held, top_n=config.top_n, buffer_n=config.buffer_n,
                                 max_drops=config.max_drops)
        w = np.zeros(score.size)
        k = int(sel.sum())
        if k:
            w[sel] = config.gross_exposure / k
    else:
        w = select_weights(score, eligible, top_n=config.top_n, quantile=config.quantile,
                           long_short=config.long_short, sector_codes=codes if config.sector_neutral else None,
                           gross_exposure=config.gross_exposure)
        sel = w != 0
    if sigma is not None:
        w = inverse_vol_weights(w, sigma, codes if config.sector_neutral else None)
    if config.max_weight is not None:  # last, so it binds on the weights actually held
        w = _cap_legs(w, config.max_weight)
    if config.max_sector_weight is not None and codes is not None:
        w = cap_sector_weights(w, codes, config.max_sector_weight, gross=config.gross_exposure,
                               max_weight=config.max_weight)
    return w, sel


#: Trading days in one holding period of a calendar rebalance (the optimiser's horizon).
_PERIOD_DAYS = {"daily": 1, "weekly": 5, "monthly": 21}


def optimized_weights(returns: np.ndarray, score: np.ndarray, eligible: np.ndarray, previous: np.ndarray,
                      config: BacktestConfig, sector_codes: np.ndarray | None = None) -> np.ndarray:
    """The optimised book of one rebalance (``weighting="optimized"``; pure function).

    The names are the ``eligible`` ones with at least ``config.cov_lookback / 2`` returns in
    ``returns``; their Ledoit-Wolf covariance (20-component factor form) and volatilities come
    from ``returns``, scaled to one holding period (``rebalance_every`` days, or 1 / 5 / 21 for
    a daily / weekly / monthly rebalance); alphas from ``score`` by Grinold's rule with
    ``config.alpha_ic``; the turnover penalty (``turnover_penalty`` x ``costs.bps``) is charged
    against ``previous``; each name at most ``max_weight`` (raised to ``gross / n`` when fewer
    names could not hold the book); then ``max_sector_weight`` with ``sector_codes``. A solver
    failure holds the names' equal weight (logged). See :mod:`vfr.backtest.optimizer`.

    Parameters
    ----------
    returns : numpy.ndarray
        Daily returns known at the signal date, shape ``(T, n)`` (the ``cov_lookback`` days up
        to and including it; NaN = no price).
    score : numpy.ndarray
        Scores, shape ``(n,)`` (higher = better; NaN where not ``eligible``).
    eligible : numpy.ndarray
        Boolean, shape ``(n,)``: scored and tradable.
    previous : numpy.ndarray
        Weights held before, shape ``(n,)`` (zeros for a new book).
    config : BacktestConfig
    sector_codes : numpy.ndarray, optional
        Integer sector per name, shape ``(n,)`` (with ``max_sector_weight``).

    Returns
    -------
    numpy.ndarray
        Weights, shape ``(n,)``, >= 0, summing to ``gross_exposure`` (0 everywhere when no name
        qualifies).
    """
    from vfr.backtest.optimizer import OptimizerError, cost_aware_weights, grinold_alpha, shrunk_covariance_factor

    lookback = config.cov_lookback
    w = np.zeros(score.size)
    enough = np.isfinite(returns).sum(axis=0) >= max(2, lookback // 2)
    names = np.flatnonzero(np.asarray(eligible, bool) & enough)
    if names.size == 0:
        return w
    h = config.rebalance_every if config.rebalance is None else _PERIOD_DAYS[config.rebalance]
    rets = returns[:, names]
    factor, diag = shrunk_covariance_factor(rets)
    sigma = np.nanstd(rets, axis=0) * np.sqrt(h)
    alpha = grinold_alpha(score[names], sigma, ic=config.alpha_ic)
    gross = config.gross_exposure
    cap = None if config.max_weight is None else max(config.max_weight, gross / names.size)
    try:
        w[names] = cost_aware_weights(alpha, (factor * np.sqrt(h), diag * h), previous[names],
                                      risk_aversion=config.risk_aversion,
                                      cost=config.turnover_penalty * config.cost_bps / 1e4, gross=gross,
                                      max_weight=cap)
    except OptimizerError as exc:
        import logging

        logging.getLogger(__name__).warning("backtest: optimiser failed (%s); holding the equal-weight book of its "
                                            "%d names", exc, names.size)
        w[names] = gross / names.size
    if config.max_sector_weight is not None and sector_codes is not None:
        w = cap_sector_weights(w, sector_codes, config.max_sector_weight, gross=gross, max_weight=config.max_weight)
    return w


def _optimized(market: _Market, score: np.ndarray, eligible: np.ndarray, t: int, previous: np.ndarray,
               codes: np.ndarray | None, config: BacktestConfig) -> np.ndarray:
    """:func:`optimized_weights` on calendar rows ``t - cov_lookback .. t - 1`` (``t`` = the
    signal date's row + 1: returns up to its close)."""
    assert market.r is not None
    window = market.r[max(0, t - config.cov_lookback):t]
    return optimized_weights(window, score, eligible, previous, config, codes)


def _return_vol(market: _Market, t: int, window: int) -> np.ndarray:
    """Each name's standard deviation of daily returns over calendar rows ``t - window .. t - 1``
    (population; NaN with under ``window / 2`` returns)."""
    assert market.rets is not None
    m1, m2 = _mean_before(market.rets[0], t, window), _mean_before(market.rets[1], t, window)
    return np.sqrt(np.clip(m2 - m1 * m1, 0.0, None))


def _vol_scale(path: _Path, signals: _Signals, k: int, config: BacktestConfig) -> float:
    """Volatility-target scale of rebalance ``k`` from the book's de-levered daily gross
    returns of the ``vol_lookback`` days up to its signal date (with an open fill: up to the
    day before the fill, whose return is not complete yet). Days before the first fill
    (cash) do not count."""
    assert config.target_vol is not None
    end = int(signals.grid[k])
    if config.fill == "open":
        end = min(end, int(signals.entry[k]) - 1)
    lo = max(int(signals.entry[0]) + 1, end - config.vol_lookback + 1)
    r = (path.gf[lo:end + 1] - 1.0) / path.scale[lo:end + 1] if end >= lo else np.empty(0)
    return vol_target_scale(r, config.target_vol, max_leverage=config.max_leverage,
                            min_obs=max(2, config.vol_lookback // 2))


def _rebalance_cost(trades: np.ndarray, e: int, market: _Market, model: CostModel, capital: float) -> float:
    """Cost of the trades filled on day ``e`` (impact from the ``adv_window`` days before it)."""
    adv = sig = None
    if market.adv is not None:
        wd = int(model.adv_window)
        adv = _mean_before(market.adv, e, wd)
        sig = _return_vol(market, e, wd)
    return trade_costs(trades, model=model, capital=capital, raw_price=market.raw_fill[e],
                       adj_price=market.adj_fill[e], adv=adv, sigma=sig)


def _mark_close_to_close(path: _Path, Vc: np.ndarray, dcash: np.ndarray, e: int, last: int) -> None:
    """Growth and dividend return of days ``e+1 .. last`` from the book's closing values."""
    vprev, vnow = Vc[:-1], Vc[1:]
    path.gf[e + 1:last + 1] *= np.divide(vnow, vprev, out=np.ones_like(vnow), where=vprev > 0)
    path.divret[e + 1:last + 1] = np.divide(np.diff(dcash), vprev, out=np.zeros_like(vprev), where=vprev > 0)


def _mark_to_next_open(path: _Path, market: _Market, s: np.ndarray, cashv: np.ndarray, Vc: np.ndarray,
                       dcash: np.ndarray, e: int, last: int) -> np.ndarray:
    """Open fill followed by another book: days ``e+1 .. last-1`` close to close, day ``last``
    up to its open (the next fill); returns the drifted weights at that open."""
    vprev, vnow = Vc[:-2], Vc[1:-1]
    path.gf[e + 1:last] *= np.divide(vnow, vprev, out=np.ones_like(vnow), where=vprev > 0)
    path.divret[e + 1:last + 1] = np.divide(np.diff(dcash), Vc[:-1], out=np.zeros(last - e), where=Vc[:-1] > 0)
    v_open = cashv[-1] + float(market.OP[last] @ s)
    path.gf[last] *= v_open / Vc[-2] if Vc[-2] > 0 else 1.0
    if not v_open > 0:
        return np.zeros_like(s)
    return np.divide(s * market.OP[last], v_open, out=np.zeros_like(s), where=v_open > 0)


def _hold(path: _Path, market: _Market, w: np.ndarray, e: int, last: int, *, fill: str, final: bool) -> np.ndarray:
    """Hold book ``w`` (filled on day ``e``) as fixed share counts through day ``last``.

    Writes the book's growth, dividend return and cash share into ``path``; returns its
    drifted weights at the next fill (zeros after the final book).
    """
    s = np.divide(w, market.OP[e], out=np.zeros_like(w), where=w != 0)
    c = 1.0 - float(w.sum())
    stock = market.P[e:last + 1] @ s
    if market.Dv is not None and last > e:
        dcash = np.r_[0.0, np.cumsum(market.Dv[e + 1:last + 1] @ s)]
    else:
        dcash = np.zeros(last - e + 1)
    cashv = c + dcash
    Vc = stock + cashv
    path.cash_share[e:last + 1] = np.divide(cashv, Vc, out=np.zeros_like(Vc), where=Vc > 0)
    if fill == "open":
        path.gf[e] *= Vc[0]
        if not final:
            return _mark_to_next_open(path, market, s, cashv, Vc, dcash, e, last)
    _mark_close_to_close(path, Vc, dcash, e, last)
    v_end = Vc[-1]
    if final or not v_end > 0:
        return np.zeros_like(s)
    return np.divide(s * market.P[last], v_end, out=np.zeros_like(s), where=v_end > 0)


def _simulate(market: _Market, signals: _Signals, codes: np.ndarray | None, config: BacktestConfig) -> _Path:
    """Run the rebalances in order, one holding period at a time."""
    n_days, n_sym = market.close.shape
    K = len(signals.grid)
    path = _Path.empty(n_days, K, n_sym)
    net_eq = 1.0  # net equity at the previous close (for impact in USD)
    drift = np.zeros(n_sym)
    held = np.zeros(n_sym, dtype=bool)  # the previous rebalance's selection (rank buffer)
    previous = np.zeros(n_sym)  # the previous optimised target (the optimiser's turnover penalty)
    eq_mark = int(signals.grid[0])  # net equity known up to (excluding) this row
    for k in range(K):
        e = int(signals.entry[k])
        # each name's volatility up to and including the signal date's close
        if config.weighting == "optimized":
            w = _optimized(market, signals.scores[k], signals.eligible[k], int(signals.grid[k]) + 1, previous, codes,
                           config)
            previous, held = w, w != 0
        else:
            sigma = (_return_vol(market, int(signals.grid[k]) + 1, config.vol_lookback)
                     if config.weighting == "inverse_vol" else None)
            w, held = _select(signals.scores[k], signals.eligible[k], held, codes, config, sigma)
        scale = 1.0
        if config.target_vol is not None:
            scale = _vol_scale(path, signals, k, config)
            w = w * scale
        if config.min_trade > 0:  # trades under min_trade keep the drifted weight
            w = np.where(np.abs(w - drift) < config.min_trade, drift, w)
        path.target[k] = w
        trades = w - drift
        if e > eq_mark:  # net equity at the close before the fill
            seg = slice(eq_mark, e)
            net_eq *= float(np.prod(path.gf[seg] - path.cost[seg]))
            eq_mark = e
        path.cost[e] = _rebalance_cost(trades, e, market, config.costs, config.capital * net_eq)
        path.turnover[e] = float(np.abs(trades).sum())
        last = int(signals.entry[k + 1]) if k + 1 < K else signals.hi - 1
        drift = _hold(path, market, w, e, last, fill=config.fill, final=k + 1 == K)
        path.scale[e + 1:last + 1] = scale
    return path


def _daily_frame(path: _Path, signals: _Signals, rows: slice, days: pd.DatetimeIndex) -> pd.DataFrame:
    """The ``daily`` frame of :class:`BacktestResult` (cash 1.0 before the first fill)."""
    gross = path.gf - 1.0
    net = gross - path.cost
    cash = np.where(np.arange(gross.size) < signals.entry[0], 1.0, path.cash_share)
    daily = pd.DataFrame(
        {"gross_return": gross[rows], "net_return": net[rows], "turnover": path.turnover[rows],
         "cost": path.cost[rows], "dividend_return": path.divret[rows], "cash": cash[rows]},
        index=days,
    )
    daily["equity"] = (1.0 + daily["net_return"]).cumprod()
    return daily


def _scored_universe(scores: pd.DataFrame, market: _Market) -> np.ndarray:
    """Who is in the equal-weight universe on each day, shape ``(n_days, n_symbols)``.

    The names scored on the latest scored day *before* that day (the universe the strategy
    chose from when the day began: with point-in-time scores, the index members of that
    day, not every symbol the price file holds); before the first scored day, every name.
    """
    pos, spos, _ = _score_positions(scores, market.calendar, market.symbols)
    n_days, n_sym = market.close.shape
    scored = np.zeros((n_days, n_sym), dtype=bool)
    scored[pos, spos] = True
    scored_day = scored.any(axis=1)
    last = np.where(scored_day, np.arange(n_days), -1)
    last = np.maximum.accumulate(last)  # latest scored day <= d
    before = np.concatenate([[-1], last[:-1]])  # latest scored day < d
    universe = np.ones((n_days, n_sym), dtype=bool)
    known = before >= 0
    universe[known] = scored[before[known]]
    return universe


def _benchmark_frame(market: _Market, universe: np.ndarray, rows: slice, days: pd.DatetimeIndex,
                     benchmark: pd.Series | None) -> tuple[pd.DataFrame, str]:
    """Equal-weight universe returns (the names of :func:`_scored_universe` with a price on the
    day and the day before) and the optional external benchmark; the name of the one the
    strategy is compared with (the external one when given)."""
    ew_mask = market.has_price & ~np.isnan(market.prev_close) & universe
    with np.errstate(invalid="ignore", divide="ignore"):
        sym_ret = np.where(ew_mask, market.close / market.prev_close - 1.0, 0.0)
    counts = ew_mask.sum(axis=1)
    ew = np.divide(sym_ret.sum(axis=1), counts, out=np.full(counts.size, np.nan), where=counts > 0)
    benchmarks = pd.DataFrame({EQUAL_WEIGHT: ew[rows]}, index=days)
    if benchmark is None:
        return benchmarks, EQUAL_WEIGHT
    name = str(benchmark.name) if benchmark.name is not None else "benchmark"
    if name in {EQUAL_WEIGHT, "strategy_net", "strategy_gross"}:
        name = f"benchmark_{name}"
    benchmarks[name] = _benchmark_returns(benchmark, market.calendar)[rows].to_numpy()
    return benchmarks, name


def _weights_frame(target: np.ndarray, signals: _Signals, market: _Market) -> pd.DataFrame:
    """Long frame of the non-zero target weights, sorted by fill date and symbol."""
    k_idx, s_idx = np.nonzero(target)
    return pd.DataFrame({
        "date": market.calendar[signals.entry[k_idx]],
        "signal_date": market.calendar[signals.grid[k_idx]],
        "symbol": market.symbols[s_idx],
        "weight": target[k_idx, s_idx],
    }).sort_values(["date", "symbol"], ignore_index=True)


def _metrics(daily: pd.DataFrame, benchmarks: pd.DataFrame, main_bench: str, first_entry: pd.Timestamp
             ) -> dict[str, dict[str, float]]:
    """Summary (and for the strategy, relative) metrics over the invested days."""
    inv = daily.index >= first_entry
    metrics = {
        "strategy_net": summary_metrics(daily.loc[inv, "net_return"], daily.loc[inv, "turnover"]),
        "strategy_gross": summary_metrics(daily.loc[inv, "gross_return"]),
    }
    for key, col in (("strategy_net", "net_return"), ("strategy_gross", "gross_return")):
        metrics[key].update(relative_metrics(daily.loc[inv, col], benchmarks.loc[inv, main_bench]))
    for col in benchmarks.columns:
        metrics[col] = summary_metrics(benchmarks.loc[inv, col])
    return metrics


def run_backtest(prices: pd.DataFrame, scores: pd.DataFrame, config: BacktestConfig | None = None, *,
                 benchmark: pd.Series | None = None,
                 sectors: pd.Series | dict[str, str] | None = None) -> BacktestResult:
    """Backtest a top-N / quantile, long-only or long-short strategy on scores.

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices frame (long; ``symbol``, ``date``, ``close`` split/dividend adjusted,
        USD). Optional columns used when needed (:meth:`BacktestConfig.price_columns`):
        ``open`` (``fill="open"``), ``volume`` (impact), ``close_raw`` (per-share commission,
        dividends), ``dividend_amount`` (``dividends=True``). Its distinct dates form the
        trading calendar.
    scores : pandas.DataFrame
        Long frame ``date``, ``symbol``, ``score`` (higher = better; NaN = no opinion). For
        a walk-forward test these are out-of-sample predictions: the score of date t from a
        model fitted on data before t.
    config : BacktestConfig, optional
        Selection, weighting, costs, fills and rebalancing; default ``BacktestConfig()``
        (top 20, every 5 scored days, 10 bp, lag 1, close fill).
    benchmark : pandas.Series, optional
        Index *levels* on a DatetimeIndex (e.g. the S&P 500); its name (default
        ``"benchmark"``) is its column in ``benchmarks``.
    sectors : pandas.Series or dict, optional
        Symbol -> sector; required exactly when ``config.sector_neutral`` (selection within
        sectors, see :func:`select_weights`) or ``config.max_sector_weight`` (see
        :func:`cap_sector_weights`) is set.

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
    TypeError
        ``config`` is not a :class:`BacktestConfig`.
    ValueError
        ``sectors`` given without ``config.sector_neutral`` or ``config.max_sector_weight``,
        or one of those without ``sectors``.

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
    config = BacktestConfig() if config is None else config
    _check_inputs(prices, scores, config, sectors)
    market = _market(prices, config)
    signals = _signals(scores, market, config)
    path = _simulate(market, signals, _sector_codes(sectors, market.symbols), config)
    rows = slice(int(signals.grid[0]), signals.hi)
    days = market.calendar[rows]
    daily = _daily_frame(path, signals, rows, days)
    benchmarks, main_bench = _benchmark_frame(market, _scored_universe(scores, market), rows, days, benchmark)
    metrics = _metrics(daily, benchmarks, main_bench, market.calendar[signals.entry[0]])
    return BacktestResult(daily=daily, weights=_weights_frame(path.target, signals, market), benchmarks=benchmarks,
                          metrics=metrics, params=config.as_params() | {"relative_to": main_bench})
