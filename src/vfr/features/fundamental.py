"""Fundamental features from quarterly earnings reports and prices/dividends (pure functions).

Point in time
-------------
A report is usable from the first trading day *after* its ``reported_date``
(``available_date = reported_date + availability_lag_days`` calendar days, default 1, where
``reported_date`` is the latest publication among the report and the earlier fiscal quarters
its features use, so a late-filed earlier quarter never leaks backwards): the
file's ``report_time`` is unreliable before 2015 and a post-market report is not known at that
day's close, on which features are computed. Every join is a :func:`pandas.merge_asof` on the
availability date (``direction="backward"``). Reports older than ``max_staleness_days`` give
NaN (a missed quarter is missing, not stale).

Price basis
-----------
EPS in the earnings file is split-adjusted as of the *data date* (not as reported). We put the
price on a split-only basis: ``price_sb[t] = close_raw[t] / S[t]`` with ``S[t]`` the product of
the symbol's ``split_coefficient`` on days after ``t`` in the prices frame, i.e. the as-traded
close restated in the shares of the last price date. The dividend-and-split adjusted ``close``
is *not* used: its dividend factor shrinks past prices by future dividends and would bias P/E
downward more the further back one goes. Dividends are restated the same way, so the dividend
yield equals the as-traded TTM dividend over the as-traded close (a ratio whose value uses only
corporate actions up to ``t``).

Basis safety: EPS versus price
------------------------------
The EPS file may be adjusted for splits *after* the last price date (the development file is
adjusted to about 2025 while its prices end on 2019-12-31: NVDA, CMG, AMZN, AAPL, GOOGL, TSLA
... split later). Such a stock's whole EPS history is off by a constant factor ``k`` (its later
splits), and ``k`` is information from the future: the later winners split, so a level ratio
would put them in the bottom decile of earnings yield for their whole history. Hence, by
default, **no feature depends on a per-stock constant scale of EPS**: multiplying one stock's
whole ``reported_eps``, ``estimated_eps`` and ``surprise`` history by ``k > 0`` changes no
feature and no rank (``tests/features/test_fundamental.py`` checks this on real data).

The level ratios :data:`LEVEL_RATIO_COLUMNS` (``eps_ttm``, ``pe_ttm``, ``earnings_yield``) are
built only when a split table is given (``eps_split_factors``: symbol -> product of the split
ratios applied to the EPS file after the last price date; a symbol not in the table had none,
and an empty table states that EPS and prices share one basis, as with a provider's
as-reported EPS and the raw close). Without one they are absent from the output.

What P/E means here
-------------------
- With a split table: ``pe_ttm = price_sb / (eps_ttm_file x factor)``, the price over the
  trailing-twelve-month EPS, both per share of the last price date (one share basis), in
  times; ``earnings_yield`` is its inverse (defined for losses) and ``eps_ttm`` is the TTM EPS
  on that basis (USD per share). Their correctness rests on the table being complete.
- Without a split table: VFR builds no level ratio. Value enters only as ``ey_rel_3y``, the
  stock's earnings yield relative to its own trailing three years (a z-score, in which a
  constant factor of EPS cancels), and the other EPS features are ratios of EPS to EPS
  (``eps_growth_yoy``, ``sue``, surprise shares) or of the analysts' own figures
  (``surprise_pct``): all invariant to the EPS basis.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from vfr.data.fundamentals import RATIO_COLUMNS
from vfr.errors import DataValidationError
from vfr.features._pit import asof_join, group_bounds, price_keys, trailing_window_start

#: Calendar days from ``reported_date`` to the first day a report may be used.
AVAILABILITY_LAG_DAYS = 1
#: A report older than this (calendar days) is stale: its features become NaN.
MAX_STALENESS_DAYS = 200
#: Quarter-level features carried from the last available report.
REPORT_FEATURES: tuple[str, ...] = ("eps_ttm", "eps_growth_yoy", "sue", "surprise_pct_last",
                                    "surprise_pct_mean_4q", "surprise_beat_share_8q")
#: Features needing a price level (all invariant to a constant factor of a stock's EPS).
PRICE_FEATURES: tuple[str, ...] = ("ey_rel_3y", "dividend_yield_ttm")
#: Level ratios: depend on the EPS share basis, built only with a split table.
LEVEL_RATIO_COLUMNS: tuple[str, ...] = ("eps_ttm", "pe_ttm", "earnings_yield")
#: Balance-sheet ratios taken from a provider when supplied (never filled with zero): the ratio
#: columns of the canonical ratios frame (:func:`vfr.data.read_ratios`).
RATIO_FEATURES: tuple[str, ...] = RATIO_COLUMNS
#: Column order of :func:`fundamental_features` without a split table (then
#: :data:`LEVEL_RATIO_COLUMNS` follow when one is given, ratios when supplied).
FUNDAMENTAL_COLUMNS: tuple[str, ...] = ("ey_rel_3y", "eps_growth_yoy", "sue",
                                        "surprise_pct_last", "surprise_pct_mean_4q",
                                        "surprise_beat_share_8q", "dividend_yield_ttm")
#: Trailing window (rows of the symbol's price history, about 3 years) of ``ey_rel_3y``.
EY_REL_WINDOW = 756
#: Known earnings yields needed in that window (about one year).
EY_REL_MIN_OBS = 252
#: A dispersion below this fraction of the level is taken as zero (scale-free guard).
_REL_EPS = 1e-9


def quarterly_earnings_features(earnings: pd.DataFrame) -> pd.DataFrame:
    """Per-report fundamental features, in fiscal order per symbol.

    Parameters
    ----------
    earnings : pandas.DataFrame
        Canonical earnings frame (:func:`vfr.data.fundamentals.clean_earnings`).

    Returns
    -------
    pandas.DataFrame
        ``symbol, fiscal_date_ending, reported_date`` and :data:`REPORT_FEATURES`:

        - ``eps_ttm``: sum of the last 4 quarters' reported EPS (USD per share, basis of the
          file); NaN unless the 4 fiscal quarters span at most 300 days (no gap).
        - ``eps_growth_yoy``: ``(eps_ttm - eps_ttm 4 quarters earlier) / |eps_ttm 4 quarters
          earlier|`` (fraction), NaN only when that denominator is exactly 0; clipped to
          [-10, 10] (which bounds a near-zero base; no threshold in USD, so the value does not
          depend on the EPS share basis).
        - ``sue``: standardised unexpected earnings with the seasonal random walk
          (Bernard & Thomas 1989, 1990; Foster, Olsen & Shevlin 1984):
          ``UE_q = EPS_q - EPS_{q-4}``, ``SUE_q = UE_q / std(UE_{q-8..q-1})`` (ddof=1, at least
          4 of the 8 prior UE known); NaN when the std is 0 (below 1e-9 of the prior UEs' mean
          absolute value: a scale-free guard against rounding noise).
        - ``surprise_pct_last``: the report's ``surprise_pct`` (percent of |estimate|).
        - ``surprise_pct_mean_4q``: mean of the last 4 reports' ``surprise_pct`` (>= 3 known).
        - ``surprise_beat_share_8q``: share of the last 8 reports with ``surprise > 0``
          (surprise consistency, 0..1; >= 4 known).
    """
    e = earnings.sort_values(["symbol", "fiscal_date_ending"], kind="stable").reset_index(drop=True)
    sym = e["symbol"].to_numpy()
    codes, _ = pd.factorize(sym)
    fiscal = e["fiscal_date_ending"].to_numpy("datetime64[D]").astype(np.int64)
    eps = e["reported_eps"].to_numpy(float)
    g = pd.Series(eps).groupby(codes)

    def shift(x: np.ndarray, k: int) -> np.ndarray:
        return pd.Series(x).groupby(codes).shift(k).to_numpy(float)

    def fiscal_gap(k: int) -> np.ndarray:
        prev = shift(fiscal.astype(float), k)
        return fiscal - prev

    ttm = g.rolling(4, min_periods=4).sum().reset_index(level=0, drop=True).sort_index().to_numpy()
    ttm = np.where(fiscal_gap(3) <= 300, ttm, np.nan)
    gap4 = fiscal_gap(4)
    year_apart = (gap4 >= 330) & (gap4 <= 400)
    ttm_prev = np.where(year_apart, shift(ttm, 4), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(ttm_prev != 0, (ttm - ttm_prev) / np.abs(ttm_prev), np.nan)
    growth = np.clip(growth, -10.0, 10.0)
    ue = np.where(year_apart, eps - shift(eps, 4), np.nan)
    prior_ue = shift(ue, 1)
    prior = pd.Series(prior_ue).groupby(codes)
    sd = prior.rolling(8, min_periods=4).std(ddof=1).reset_index(level=0, drop=True).sort_index()
    sd = sd.to_numpy()
    level = (pd.Series(np.abs(prior_ue)).groupby(codes).rolling(8, min_periods=4).mean()
             .reset_index(level=0, drop=True).sort_index().to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        sue = np.where((sd > 0) & (sd > _REL_EPS * level), ue / sd, np.nan)
    spct = e["surprise_pct"].to_numpy(float)
    mean4 = (pd.Series(spct).groupby(codes).rolling(4, min_periods=3).mean()
             .reset_index(level=0, drop=True).sort_index().to_numpy())
    surprise = e["surprise"].to_numpy(float)
    beat = np.where(np.isnan(surprise), np.nan, (surprise > 0).astype(float))
    share = (pd.Series(beat).groupby(codes).rolling(8, min_periods=4).mean()
             .reset_index(level=0, drop=True).sort_index().to_numpy())
    out = e[["symbol", "fiscal_date_ending", "reported_date"]].copy()
    out["eps_ttm"] = ttm
    out["eps_growth_yoy"] = growth
    out["sue"] = sue
    out["surprise_pct_last"] = spct
    out["surprise_pct_mean_4q"] = mean4
    out["surprise_beat_share_8q"] = share
    return out


def split_basis_price(prices: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """As-traded close and dividends restated in the shares of each symbol's last price date.

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices sorted by (symbol, date): ``close_raw`` (or ``close`` and
        ``adj_factor``), ``split_coefficient`` and ``dividend_amount`` (optional).

    Returns
    -------
    price_sb, dividend_sb : numpy.ndarray
        ``close_raw / S`` and ``dividend_amount / S`` (USD per last-date share), where ``S`` on
        row ``t`` is the product of ``split_coefficient`` on the symbol's rows after ``t``.
    """
    if "close_raw" in prices.columns:
        raw = prices["close_raw"].to_numpy(float)
    elif "adj_factor" in prices.columns:
        raw = prices["close"].to_numpy(float) / prices["adj_factor"].to_numpy(float)
    else:
        raw = np.full(len(prices), np.nan)
    split = (prices["split_coefficient"].to_numpy(float) if "split_coefficient" in prices.columns
             else np.ones(len(prices)))
    split = np.where(np.isfinite(split) & (split > 0), split, 1.0)
    div = (prices["dividend_amount"].to_numpy(float) if "dividend_amount" in prices.columns
           else np.zeros(len(prices)))
    div = np.where(np.isfinite(div), div, 0.0)
    starts, ends = group_bounds(prices["symbol"].to_numpy())
    factor = np.empty(len(prices))
    for s, e in zip(starts, ends, strict=True):
        # product of the splits strictly after each row: reverse cumulative product, shifted
        rev = np.cumprod(split[s:e][::-1])[::-1]
        factor[s:e - 1] = rev[1:]
        factor[e - 1] = 1.0
    with np.errstate(invalid="ignore"):
        price_sb = np.where(raw > 0, raw / factor, np.nan)
    return price_sb, div / factor


def own_history_z(values: np.ndarray, codes: np.ndarray, *, window: int = EY_REL_WINDOW,
                  min_obs: int = EY_REL_MIN_OBS) -> np.ndarray:
    """Z-score of each value against its symbol's trailing window, the row itself included.

    Parameters
    ----------
    values : numpy.ndarray of shape (n_rows,)
        Float values, rows grouped by symbol and sorted by date within each symbol; NaN =
        unknown (not counted).
    codes : numpy.ndarray of shape (n_rows,)
        Integer symbol code of each row.
    window : int
        Trailing window in rows (trading days of the symbol), the row itself included.
    min_obs : int
        Known values needed in the window.

    Returns
    -------
    numpy.ndarray of shape (n_rows,)
        ``(x_t - mean(x over the window)) / std(x over the window)`` (ddof=1), dimensionless;
        NaN when ``x_t`` is unknown, fewer than ``min_obs`` values are known, or the std is 0
        (below 1e-9 of the mean's absolute value, a scale-free guard). Uses rows ``<= t``
        only, and is unchanged when a symbol's values are all multiplied by one ``k > 0``.
    """
    roll = pd.Series(values, dtype=float).groupby(codes, sort=False).rolling(window,
                                                                             min_periods=min_obs)
    mean = roll.mean().reset_index(level=0, drop=True).sort_index().to_numpy()
    sd = roll.std(ddof=1).reset_index(level=0, drop=True).sort_index().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((sd > 0) & (sd > _REL_EPS * np.abs(mean)), (values - mean) / sd, np.nan)


def _split_table(eps_split_factors: Mapping[str, float]) -> dict[str, float]:
    """The split table as a dict, each factor checked to be finite and positive."""
    table = {str(k): float(v) for k, v in dict(eps_split_factors).items()}
    bad = {k: v for k, v in table.items() if not (np.isfinite(v) and v > 0)}
    if bad:
        raise DataValidationError(f"split table eps_split_factors: factors must be finite and > 0, "
                                  f"got {bad}")
    return table


def fundamental_features(prices: pd.DataFrame, earnings: pd.DataFrame, *,
                         ratios: pd.DataFrame | None = None,
                         eps_split_factors: Mapping[str, float] | None = None,
                         availability_lag_days: int = AVAILABILITY_LAG_DAYS,
                         max_staleness_days: int = MAX_STALENESS_DAYS) -> pd.DataFrame:
    """Fundamental features of every price row, as known at that day's close.

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices frame (``symbol, date, close_raw, split_coefficient,
        dividend_amount``; see :func:`split_basis_price`).
    earnings : pandas.DataFrame
        Canonical earnings frame (:func:`vfr.data.fundamentals.clean_earnings`).
    ratios : pandas.DataFrame, optional
        Provider balance-sheet ratios: ``symbol``, ``available_date`` (first day usable) and any
        of :data:`RATIO_FEATURES` (fractions). Joined as of ``available_date``; absent values
        stay NaN (never zero). Without it those columns are not produced.
    eps_split_factors : mapping, optional
        The split table: symbol -> product of the split ratios applied to the EPS file after
        the last price date (e.g. ``{"AAPL": 4.0}`` for AAPL's 4:1 split of 2020 in an EPS
        file adjusted to 2025), finite and > 0; symbols not in it had no such split. The EPS
        is multiplied by it to put it on the price's share basis. Only with it (an empty
        mapping included: EPS and prices share one basis) are the level ratios
        :data:`LEVEL_RATIO_COLUMNS` built; without it (None) they are absent, because their
        values would depend on each stock's EPS basis (see the module docstring).
    availability_lag_days : int
        Calendar days after ``reported_date`` from which a report is usable (default 1).
    max_staleness_days : int
        Reports older than this many calendar days are not used (NaN).

    Returns
    -------
    pandas.DataFrame
        ``symbol, date`` sorted as the prices (RangeIndex) and float32 columns
        :data:`FUNDAMENTAL_COLUMNS` (+ :data:`LEVEL_RATIO_COLUMNS` with a split table, +
        ratio columns when ``ratios`` is given): the report features of
        :func:`quarterly_earnings_features` as of the date, and

        - ``ey_rel_3y``: :func:`own_history_z` of the earnings yield ``eps_ttm / price_sb``
          over the symbol's trailing 756 price rows (>= 252 known), dimensionless: how cheap
          the stock is against its own last three years (a constant EPS factor cancels);
        - ``dividend_yield_ttm``: dividends with ex-date in the last 365 calendar days over the
          close, both as traded (fraction per year); NaN during the symbol's first 365 days;

        and, with a split table only,

        - ``eps_ttm``: TTM EPS times the symbol's factor (USD per share of the last price date);
        - ``pe_ttm``: ``price_sb / eps_ttm`` (NaN when ``eps_ttm <= 0``), times;
        - ``earnings_yield``: ``eps_ttm / price_sb`` (fraction per year; defined for losses).

    Raises
    ------
    DataValidationError
        If a split factor is not finite and positive.
    """
    table = None if eps_split_factors is None else _split_table(eps_split_factors)
    keys = price_keys(prices)
    out = keys[["symbol", "date"]].copy()
    q = quarterly_earnings_features(earnings)
    # a report's features use the earlier fiscal quarters too: usable only once all of them
    # were published (a late-filed earlier quarter delays it)
    published = q.groupby("symbol", sort=False)["reported_date"].cummax()
    q["available_date"] = published + pd.Timedelta(days=availability_lag_days)
    q = q.sort_values(["available_date", "fiscal_date_ending"], kind="stable")
    joined = asof_join(out, q, right_on="available_date", columns=list(REPORT_FEATURES),
                       tolerance=pd.Timedelta(days=max_staleness_days))
    price_sb, div_sb = split_basis_price(keys)
    eps_file = joined["eps_ttm"].to_numpy(float)
    codes, _ = pd.factorize(out["symbol"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ey_file = eps_file / price_sb  # EPS-file basis: only its own-history z-score is used
    ey_file = np.where(np.isfinite(ey_file), ey_file, np.nan)
    days = out["date"].to_numpy("datetime64[D]").astype(np.int64)
    first = trailing_window_start(codes, days, 365)
    starts, ends = group_bounds(codes)
    ttm_div = np.empty(len(days))
    for s, e in zip(starts, ends, strict=True):  # prefix sums restarted per symbol
        csum = np.concatenate([[0.0], np.cumsum(div_sb[s:e])])
        ttm_div[s:e] = csum[1:] - csum[first[s:e] - s]
    sym_first_day = np.repeat(days[starts], np.diff(np.append(starts, len(days))))
    with np.errstate(divide="ignore", invalid="ignore"):
        dy = np.where(days - sym_first_day >= 365, ttm_div / price_sb, np.nan)
    cols = {
        "ey_rel_3y": own_history_z(ey_file, codes),
        "eps_growth_yoy": joined["eps_growth_yoy"].to_numpy(float),
        "sue": joined["sue"].to_numpy(float),
        "surprise_pct_last": joined["surprise_pct_last"].to_numpy(float),
        "surprise_pct_mean_4q": joined["surprise_pct_mean_4q"].to_numpy(float),
        "surprise_beat_share_8q": joined["surprise_beat_share_8q"].to_numpy(float),
        "dividend_yield_ttm": dy,
    }
    names = list(FUNDAMENTAL_COLUMNS)
    if table is not None:
        eps_ttm = eps_file * out["symbol"].astype(object).map(table).fillna(1.0).to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["eps_ttm"] = eps_ttm
            cols["pe_ttm"] = np.where(eps_ttm > 0, price_sb / eps_ttm, np.nan)
            cols["earnings_yield"] = eps_ttm / price_sb
        names += list(LEVEL_RATIO_COLUMNS)
    for name in names:
        v = cols[name]
        out[name] = np.where(np.isfinite(v), v, np.nan).astype(np.float32)
    if ratios is not None:
        present = [c for c in RATIO_FEATURES if c in ratios.columns]
        r = asof_join(out, ratios, right_on="available_date", columns=present,
                      tolerance=pd.Timedelta(days=max_staleness_days + 200))
        for c in present:
            out[c] = pd.to_numeric(r[c], errors="coerce").to_numpy(np.float32)
    return out
