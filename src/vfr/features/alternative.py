"""Alternative features: earnings calendar, calendar effects, sector-relative strength (pure).

Point in time
-------------
- ``days_since_last_earnings`` uses a report only from its availability date (the day after
  ``reported_date``, as in :mod:`vfr.features.fundamental`).
- ``days_to_next_earnings`` uses the *scheduled* date of the next report. Companies announce it
  weeks ahead, so it is known in advance; providers serve it (Alpha Vantage EARNINGS_CALENDAR,
  FMP earning_calendar). The development set has no calendar history, so there the
  ``reported_date`` of the next report stands in for its scheduled date: an approximation
  (dates occasionally move, and a date's announcement may come later than 90 days before).
  Only the date is used, never the report's content.
- Calendar effects depend on the date alone. Sector indices are equal-weighted means of our
  own adjusted returns on the same date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr.data.universe import membership_mask
from vfr.features._pit import asof_join, price_keys, shared_codes
from vfr.features.fundamental import AVAILABILITY_LAG_DAYS

#: Market-wide calendar columns (equal for all stocks on a date; never ranked).
CALENDAR_FEATURES: tuple[str, ...] = ("days_to_quarter_end", "is_quarter_end_window",
                                      "is_january")
#: Stock-level columns (ranked).
ALTERNATIVE_STOCK_FEATURES: tuple[str, ...] = ("days_to_next_earnings",
                                               "days_since_last_earnings", "sector_rel_20d",
                                               "sector_rel_60d")
#: Look-ahead horizon of the earnings calendar (calendar days); a later report is NaN.
CALENDAR_HORIZON_DAYS = 120


def earnings_calendar_features(keys: pd.DataFrame, earnings: pd.DataFrame, *,
                               availability_lag_days: int = AVAILABILITY_LAG_DAYS) -> pd.DataFrame:
    """``days_to_next_earnings`` and ``days_since_last_earnings`` (calendar days).

    ``days_to_next_earnings``: days from ``t`` to the next (scheduled) report date on or after
    ``t`` (0 on the day itself), NaN when none within :data:`CALENDAR_HORIZON_DAYS`.
    ``days_since_last_earnings``: days from the last report usable at ``t`` (``reported_date +
    availability_lag_days <= t``) to ``t``, NaN beyond 200 days.
    """
    rep = earnings[["symbol", "reported_date"]].dropna().drop_duplicates()
    rep = rep.assign(next_date=rep["reported_date"],
                     available_date=rep["reported_date"] + pd.Timedelta(days=availability_lag_days))
    lf = keys[["symbol", "date"]].copy()
    lf["_row"] = np.arange(len(lf))
    rf = rep[["symbol", "next_date"]].copy()
    lf["symbol"], rf["symbol"] = shared_codes(lf["symbol"], rf["symbol"])
    lf["date"] = lf["date"].astype("datetime64[ns]")
    rf["next_date"] = rf["next_date"].astype("datetime64[ns]")
    lf = lf.sort_values("date", kind="stable")
    nxt = pd.merge_asof(lf, rf.sort_values("next_date"), left_on="date", right_on="next_date",
                        by="symbol", direction="forward",
                        tolerance=pd.Timedelta(days=CALENDAR_HORIZON_DAYS))
    nxt = nxt.sort_values("_row")
    last = asof_join(keys, rep, right_on="available_date", columns=["reported_date"],
                     tolerance=pd.Timedelta(days=200 + availability_lag_days))
    out = pd.DataFrame(index=keys.index)
    out["days_to_next_earnings"] = (nxt["next_date"].to_numpy() - nxt["date"].to_numpy()
                                    ).astype("timedelta64[D]").astype(float)
    out["days_since_last_earnings"] = (keys["date"].to_numpy() - last["reported_date"].to_numpy()
                                       ).astype("timedelta64[D]").astype(float)
    for c in out.columns:  # NaT -> NaN
        out[c] = out[c].where(out[c] > -1e15)
    return out


def calendar_features(dates: pd.Series) -> pd.DataFrame:
    """Quarter-end and January effects from the date alone.

    ``days_to_quarter_end``: calendar days to the last day of the calendar quarter (0..91);
    ``is_quarter_end_window``: 1.0 in the last 7 calendar days of a quarter (window dressing,
    Lakonishok, Shleifer, Thaler & Vishny 1991), else 0.0; ``is_january``: 1.0 in January
    (the turn-of-the-year effect, Keim 1983; Rozeff & Kinney 1976), else 0.0.
    """
    d = pd.to_datetime(dates)
    q_end = d.dt.to_period("Q").dt.end_time.dt.normalize()
    days = (q_end - d).dt.days.astype(float)
    return pd.DataFrame({"days_to_quarter_end": days.to_numpy(),
                         "is_quarter_end_window": (days <= 6).astype(float).to_numpy(),
                         "is_january": (d.dt.month == 1).astype(float).to_numpy()})


def sector_relative_strength(keys: pd.DataFrame, universe: pd.DataFrame,
                             windows: tuple[int, ...] = (20, 60),
                             members: np.ndarray | None = None) -> pd.DataFrame:
    """``sector_rel_<n>d`` = stock's n-day return - its sector index's n-day return.

    The sector index return on date ``t`` is the equal-weighted mean of the n-day returns
    ``close[t] / close[t-n] - 1`` (adjusted closes) of the sector's stocks on ``t`` (of those
    that are index members on ``t`` when ``members``, a bool per row, is given); sectors from
    the universe table (``symbol, sector``; GICS in ``constituents.csv``). NaN for symbols
    without a sector or fewer than 3 sector stocks in the index that day (fraction).
    """
    sector = keys["symbol"].astype(object).map(
        dict(zip(universe["symbol"].astype(str), universe["sector"].astype(str), strict=False)))
    codes, _ = pd.factorize(keys["symbol"])
    close = keys["close"].to_numpy(float)
    date_code, _ = pd.factorize(keys["date"])
    sector_code, sectors = pd.factorize(sector)  # -1 where the symbol has no sector
    cell = np.where(sector_code >= 0, date_code.astype(np.int64) * max(len(sectors), 1)
                    + sector_code, -1)
    n_cells = int(cell.max()) + 1 if len(cell) else 0
    out = pd.DataFrame(index=keys.index)
    for n in windows:
        ret = np.full(len(close), np.nan)
        if len(close) > n:
            with np.errstate(divide="ignore", invalid="ignore"):
                ret[n:] = close[n:] / close[:-n] - 1.0
            same = np.zeros(len(close), dtype=bool)
            same[n:] = codes[n:] == codes[:-n]
            ret[~same] = np.nan
        ret[~np.isfinite(ret)] = np.nan
        ok = np.isfinite(ret) & (cell >= 0)
        if members is not None:
            ok &= members
        total = np.bincount(cell[ok], weights=ret[ok], minlength=n_cells)
        count = np.bincount(cell[ok], minlength=n_cells).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = (total / count)[np.maximum(cell, 0)]
        good = (cell >= 0) & (count[np.maximum(cell, 0)] >= 3)
        out[f"sector_rel_{n}d"] = np.where(good, ret - mean, np.nan)
    return out


def alternative_features(prices: pd.DataFrame, earnings: pd.DataFrame | None = None,
                         universe: pd.DataFrame | None = None, *,
                         membership: pd.DataFrame | None = None) -> pd.DataFrame:
    """Alternative features of every price row.

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices (``symbol, date, close``).
    earnings : pandas.DataFrame, optional
        Canonical earnings frame (report dates); without it the calendar columns are NaN.
    universe : pandas.DataFrame, optional
        ``symbol, sector`` (:func:`vfr.data.read_universe`); without it sector features are NaN.
    membership : pandas.DataFrame, optional
        Point-in-time universe intervals (:mod:`vfr.data.universe`): sector indices are then
        means over the day's members.

    Returns
    -------
    pandas.DataFrame
        ``symbol, date`` (sorted, RangeIndex), float32 :data:`CALENDAR_FEATURES` then
        :data:`ALTERNATIVE_STOCK_FEATURES`.
    """
    keys = price_keys(prices)
    out = keys[["symbol", "date"]].copy()
    cal = calendar_features(keys["date"])
    for c in CALENDAR_FEATURES:
        out[c] = cal[c].to_numpy(np.float32)
    if earnings is not None and len(earnings):
        ec = earnings_calendar_features(keys, earnings)
        for c in ec.columns:
            out[c] = ec[c].to_numpy(np.float32)
    else:
        out["days_to_next_earnings"] = np.float32(np.nan)
        out["days_since_last_earnings"] = np.float32(np.nan)
    if universe is not None and len(universe):
        members = None if membership is None else membership_mask(keys["symbol"].to_numpy(),
                                                                  keys["date"].to_numpy(), membership)
        sr = sector_relative_strength(keys, universe, members=members)
        for c in sr.columns:
            out[c] = sr[c].to_numpy(np.float32)
    else:
        out["sector_rel_20d"] = np.float32(np.nan)
        out["sector_rel_60d"] = np.float32(np.nan)
    return out
