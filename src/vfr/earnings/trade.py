"""The early-signal trade, measured: buy before the report, sell the day after it.

Each scored report becomes a trade: buy at the close of its as-of date (``lead`` trading days
before the report's trading day), sell at the close of the first trading day after the
report's trading day (so the market's reaction to a report published before the open or
after the close is inside the holding window). Returns are from adjusted closes; the
benchmark is the equal-weighted universe over the same window (point-in-time members when a
membership table is given); costs are ``cost_bps`` per side on the stock (the benchmark is
not traded).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr.data.universe import membership_mask

ANNUAL_DAYS = 252


def _wide_closes(prices: pd.DataFrame) -> pd.DataFrame:
    return prices.pivot_table(index="date", columns="symbol", values="close", aggfunc="last").sort_index()


def universe_daily_returns(prices: pd.DataFrame, membership: pd.DataFrame | None = None) -> pd.Series:
    """Equal-weighted daily close-to-close return of the universe, shape (n_dates,), fraction.

    A stock counts on day ``d`` when it has closes on ``d - 1`` and ``d`` and (with
    ``membership``) was a member on ``d - 1``, the day the position would be held from.
    """
    close = _wide_closes(prices)
    ret = close.pct_change(fill_method=None)
    if membership is not None:
        long = ret.stack(future_stack=True)
        prev_day = pd.Series(close.index[:-1], index=close.index[1:])
        d = long.index.get_level_values(0)
        held_from = prev_day.reindex(d).to_numpy()
        keep = membership_mask(long.index.get_level_values(1).to_numpy(), held_from, membership)
        ret = long.where(keep).unstack()
    return ret.mean(axis=1, skipna=True).fillna(0.0).rename("universe")


def event_trades(predictions: pd.DataFrame, prices: pd.DataFrame, *, cost_bps: float = 10.0,
                 membership: pd.DataFrame | None = None) -> pd.DataFrame:
    """One trade per scored report: gross, excess and net returns from as-of close to exit close.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``symbol, reported_date, asof_date, probability, flagged`` (the output of
        :func:`vfr.earnings.walkforward.yearly_walk_forward`); other columns are kept.
    prices : pandas.DataFrame
        Canonical adjusted prices (``symbol, date, close``); its dates are the calendar.
    cost_bps : float
        Cost per side in basis points (round trip = 2 x ``cost_bps``).
    membership : pandas.DataFrame, optional
        Point-in-time universe intervals for the benchmark.

    Returns
    -------
    pandas.DataFrame
        ``predictions`` rows that could be traded (closes at both ends), with ``entry_date``,
        ``exit_date``, ``holding_days`` (trading days), ``ret`` (stock, fraction),
        ``ret_universe``, ``excess`` (= ret - ret_universe) and ``excess_net`` (= excess -
        2 x cost_bps / 1e4).
    """
    close = _wide_closes(prices)
    cal = close.index
    uni = universe_daily_returns(prices, membership)
    level = (1.0 + uni).cumprod()
    out = predictions.copy()
    report_pos = cal.searchsorted(pd.to_datetime(out["reported_date"]).to_numpy(), side="left")
    exit_pos = report_pos + 1
    entry_pos = cal.searchsorted(pd.to_datetime(out["asof_date"]).to_numpy(), side="left")
    ok = (exit_pos < len(cal)) & (entry_pos < len(cal)) & out["symbol"].isin(close.columns).to_numpy()
    out, entry_pos, exit_pos = out[ok].copy(), entry_pos[ok], exit_pos[ok]
    col = close.columns.get_indexer(out["symbol"])
    values = close.to_numpy()
    c0, c1 = values[entry_pos, col], values[exit_pos, col]
    out["entry_date"], out["exit_date"] = cal[entry_pos], cal[exit_pos]
    out["holding_days"] = exit_pos - entry_pos
    out["ret"] = c1 / c0 - 1.0
    lv = level.to_numpy()
    out["ret_universe"] = lv[exit_pos] / lv[entry_pos] - 1.0
    out["excess"] = out["ret"] - out["ret_universe"]
    out["excess_net"] = out["excess"] - 2.0 * cost_bps / 1e4
    return out[np.isfinite(out["ret"].to_numpy())].reset_index(drop=True)


def _t(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.mean() / (x.std(ddof=1) / np.sqrt(len(x)))) if len(x) > 2 and x.std(ddof=1) > 0 else float("nan")


def trade_summary(trades: pd.DataFrame, *, by: str = "test_year") -> pd.DataFrame:
    """Flagged vs unflagged trades per ``by`` (and ``all``): count and mean returns.

    Returns
    -------
    pandas.DataFrame
        Rows (``by`` value, group) with ``n``, ``mean_ret``, ``mean_excess``, ``mean_excess_net``,
        ``t_excess`` (t-statistic of the mean excess, trades taken as independent), ``hit_rate``
        (share with excess > 0). Returns are fractions per trade.
    """
    rows = []
    keys = [*sorted(trades[by].unique()), "all"]
    for key in keys:
        part = trades if key == "all" else trades[trades[by] == key]
        for name, g in (("flagged", part[part["flagged"]]), ("unflagged", part[~part["flagged"]])):
            rows.append({by: str(key), "group": name, "n": len(g), "mean_ret": g["ret"].mean(),
                         "mean_excess": g["excess"].mean(), "mean_excess_net": g["excess_net"].mean(),
                         "t_excess": _t(g["excess"]),
                         "hit_rate": float((g["excess"] > 0).mean()) if len(g) else np.nan})
    return pd.DataFrame(rows)


def decile_table(trades: pd.DataFrame, *, by: str = "test_year") -> pd.DataFrame:
    """Mean trade returns by decile of probability (deciles formed within each ``by`` group).

    Returns
    -------
    pandas.DataFrame, one row per decile 1 (lowest probability) .. 10
        ``n``, ``hit_rate_label`` (share of reports with the large surprise), ``mean_excess``,
        ``mean_excess_net``, ``t_excess``.
    """
    t = trades.copy()
    t["decile"] = t.groupby(by)["probability"].transform(
        lambda p: pd.qcut(p.rank(method="first"), 10, labels=False) + 1)
    rows = []
    for dec, g in t.groupby("decile"):
        rows.append({"decile": int(dec), "n": len(g), "hit_rate_label": g["label"].mean(),
                     "mean_excess": g["excess"].mean(), "mean_excess_net": g["excess_net"].mean(),
                     "t_excess": _t(g["excess"])})
    return pd.DataFrame(rows)


def calendar_portfolio(trades: pd.DataFrame, prices: pd.DataFrame, *, cost_bps: float = 10.0,
                       membership: pd.DataFrame | None = None) -> pd.DataFrame:
    """Daily returns of an equal-weighted portfolio of the open trades (calendar-time portfolio).

    Each day holds every trade with ``entry_date < day <= exit_date`` in equal weights; the
    cost of a side (``cost_bps``) is charged on the first and the last holding day of a trade;
    days with no open trade return 0 (cash). Calendar-time portfolios are the standard way to
    turn event trades into a return series (Fama 1998, "Market efficiency, long-term returns,
    and behavioral finance", J. Financial Economics 49).

    Returns
    -------
    pandas.DataFrame indexed by trading day from the first entry to the last exit
        ``long`` (net return of the portfolio), ``excess`` (net, minus the universe return on
        days with open trades), ``n_open`` (open trades). Fractions per day.
    """
    close = _wide_closes(prices)
    daily = close.pct_change(fill_method=None)
    uni = universe_daily_returns(prices, membership)
    cal = close.index
    if trades.empty:
        return pd.DataFrame(columns=["long", "excess", "n_open"])
    first, last = cal.get_loc(trades["entry_date"].min()), cal.get_loc(trades["exit_date"].max())
    n = last - first + 1
    total, count = np.zeros(n), np.zeros(n)
    values = daily.to_numpy()
    col = close.columns.get_indexer(trades["symbol"])
    e0 = cal.get_indexer(trades["entry_date"]) - first
    e1 = cal.get_indexer(trades["exit_date"]) - first
    c = cost_bps / 1e4
    for j, a, b in zip(col, e0, e1, strict=True):
        r = np.nan_to_num(values[first + a + 1:first + b + 1, j].copy())
        r[0] -= c
        r[-1] -= c
        total[a + 1:b + 1] += r
        count[a + 1:b + 1] += 1
    long = np.divide(total, count, out=np.zeros(n), where=count > 0)
    u = uni.to_numpy()[first:last + 1]
    excess = np.where(count > 0, long - u, 0.0)
    return pd.DataFrame({"long": long, "excess": excess, "n_open": count}, index=cal[first:last + 1])


def portfolio_stats(daily: pd.DataFrame) -> dict[str, float]:
    """Annualised figures of :func:`calendar_portfolio` output.

    Returns
    -------
    dict
        ``sharpe_long`` / ``sharpe_excess`` (mean / std of daily returns x sqrt(252), all days
        including cash days), ``ann_return_long`` / ``ann_return_excess`` (mean x 252),
        ``invested_share`` (share of days with an open trade), ``mean_open``.
    """
    out: dict[str, float] = {}
    for k in ("long", "excess"):
        x = daily[k].to_numpy(float)
        sd = x.std(ddof=1) if len(x) > 1 else float("nan")
        out[f"sharpe_{k}"] = float(x.mean() / sd * np.sqrt(ANNUAL_DAYS)) if sd and np.isfinite(sd) else float("nan")
        out[f"ann_return_{k}"] = float(x.mean() * ANNUAL_DAYS)
    out["invested_share"] = float((daily["n_open"] > 0).mean()) if len(daily) else float("nan")
    out["mean_open"] = float(daily.loc[daily["n_open"] > 0, "n_open"].mean()) if len(daily) else float("nan")
    return out
