"""Macroeconomic features: market-wide regime variables and stock-level exposures (pure).

Publication lags (what is known when)
-------------------------------------
- FRED-MD month ``m`` (``month`` = its first day) is usable from the first day of month
  ``m + 2`` (:data:`FRED_MD_LAG_MONTHS`): the database is published about one month after the
  month ends (``shared/data/macro/SOURCE.md``). Values are the latest revisions, not first
  releases (a known, documented limitation: no vintages in the development set).
- A GDP quarter (``date`` = quarter start) is usable 30 days after the quarter ends
  (:data:`GDP_LAG_DAYS`).
- VIX is a daily close: known at the close of its own day.

All joins are :func:`pandas.merge_asof` on the availability date (``direction="backward"``).

Scoring choice
--------------
Market-wide values are equal for every stock on a date, so their cross-sectional rank is
meaningless; they are not ranked. The macro group's score uses stock-level exposures
interacted with the regime (:data:`MACRO_STOCK_FEATURES`):

- ``beta_regime_tilt = beta_mkt_252d`` when VIX is below the top quintile of its last 252 days
  (risk-on: higher beta, higher expected return under the CAPM) and ``-beta_mkt_252d`` when
  ``vix_pct_252d >= 0.8`` (stress: low beta is favoured, Frazzini & Pedersen 2014);
- ``rate_regime_tilt = rate_beta_36m x sign(gs10_chg_3m)``: stocks whose returns rise with the
  10-year yield are favoured while yields rise, those that rise when yields fall while they fall.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr.data.fundamentals import MacroData
from vfr.data.universe import membership_mask
from vfr.features._pit import asof_join, group_bounds, price_keys

#: Months from the first day of a FRED-MD month to its first usable day.
FRED_MD_LAG_MONTHS = 2
#: Days after a quarter's end before its GDP figure is usable.
GDP_LAG_DAYS = 30
#: VIX percentile at or above which the regime counts as stressed.
STRESS_PERCENTILE = 0.8

#: Market-wide columns (same value for all stocks on a date; never ranked).
MACRO_MARKET_FEATURES: tuple[str, ...] = (
    "fedfunds", "fedfunds_chg_3m", "unrate_chg_3m", "cpi_yoy", "gs10", "gs10_chg_3m",
    "term_spread", "credit_spread", "usd_chg_3m", "vix", "vix_chg_21d", "vix_pct_252d",
    "gdp_growth_yoy")
#: Stock-level exposures and regime tilts (ranked cross-sectionally).
MACRO_STOCK_FEATURES: tuple[str, ...] = ("beta_mkt_252d", "rate_beta_36m", "beta_regime_tilt",
                                         "rate_regime_tilt")


def fred_monthly_features(fred_md: pd.DataFrame) -> pd.DataFrame:
    """Monthly regime variables from FRED-MD, with their availability date.

    Returns
    -------
    pandas.DataFrame
        ``month``, ``available_date`` (= month + :data:`FRED_MD_LAG_MONTHS` months) and

        - ``fedfunds``: effective federal funds rate, percent per year;
        - ``fedfunds_chg_3m``, ``unrate_chg_3m``, ``gs10_chg_3m``: change over 3 months,
          percentage points;
        - ``cpi_yoy``: ``CPIAUCSL_m / CPIAUCSL_{m-12} - 1`` (fraction);
        - ``gs10``: 10-year Treasury constant-maturity yield, percent;
        - ``term_spread``: ``GS10 - TB3MS``, percentage points;
        - ``credit_spread``: ``BAA - AAA`` (Moody's seasoned yields), percentage points;
        - ``usd_chg_3m``: ``TWEXAFEGSMTHx_m / TWEXAFEGSMTHx_{m-3} - 1`` (fraction);
        - ``d_gs10``: 1-month change of GS10 (input of the rate beta).

        Missing series give NaN columns.
    """
    f = fred_md.sort_values("month").reset_index(drop=True)

    def s(name: str) -> pd.Series:
        return f[name].astype(float) if name in f.columns else pd.Series(np.nan, index=f.index)

    out = pd.DataFrame({"month": f["month"]})
    out["available_date"] = f["month"] + pd.DateOffset(months=FRED_MD_LAG_MONTHS)
    out["fedfunds"] = s("FEDFUNDS")
    out["fedfunds_chg_3m"] = s("FEDFUNDS").diff(3)
    out["unrate_chg_3m"] = s("UNRATE").diff(3)
    out["cpi_yoy"] = s("CPIAUCSL") / s("CPIAUCSL").shift(12) - 1.0
    out["gs10"] = s("GS10")
    out["gs10_chg_3m"] = s("GS10").diff(3)
    out["term_spread"] = s("GS10") - s("TB3MS")
    out["credit_spread"] = s("BAA") - s("AAA")
    out["usd_chg_3m"] = s("TWEXAFEGSMTHx") / s("TWEXAFEGSMTHx").shift(3) - 1.0
    out["d_gs10"] = s("GS10").diff(1)
    out["available_date"] = out["available_date"].astype("datetime64[ns]")
    return out


def vix_features(vix: pd.DataFrame) -> pd.DataFrame:
    """Daily VIX regime variables: ``date, vix, vix_chg_21d, vix_pct_252d``.

    ``vix``: close (index points); ``vix_chg_21d``: ``vix_t - vix_{t-21}`` (points over 21 VIX
    trading days, about 30 calendar days); ``vix_pct_252d``: share of the last 252 closes
    (including ``t``) at or below ``vix_t`` (0..1; needs 252 days).
    """
    v = vix.sort_values("date").reset_index(drop=True)
    x = v["close"].to_numpy(float)
    out = pd.DataFrame({"date": v["date"], "vix": x})
    out["vix_chg_21d"] = out["vix"].diff(21)
    win = 252
    pct = np.full(len(x), np.nan)
    if len(x) >= win:
        windows = np.lib.stride_tricks.sliding_window_view(x, win)
        pct[win - 1:] = (windows <= x[win - 1:, None]).mean(axis=1)
    out["vix_pct_252d"] = pct
    return out


def gdp_features(gdp: pd.DataFrame) -> pd.DataFrame:
    """``available_date`` and ``gdp_growth_yoy`` = real GDP over the same quarter a year
    earlier - 1 (fraction; ``level-chained``, else ``level-current``); usable
    :data:`GDP_LAG_DAYS` days after the quarter ends."""
    g = gdp.sort_values("date").reset_index(drop=True)
    level = g["level-chained"] if "level-chained" in g.columns else g["level-current"]
    quarter_end = g["date"] + pd.DateOffset(months=3) - pd.Timedelta(days=1)
    out = pd.DataFrame({"available_date": (quarter_end + pd.Timedelta(days=GDP_LAG_DAYS)
                                           ).astype("datetime64[ns]")})
    out["gdp_growth_yoy"] = level.astype(float) / level.astype(float).shift(4) - 1.0
    return out


def market_beta(keys: pd.DataFrame, close: np.ndarray, window: int = 252,
                min_periods: int = 126, members: np.ndarray | None = None) -> np.ndarray:
    """Rolling beta of daily simple returns on the equal-weighted universe mean return.

    ``beta = cov(r_i, r_m) / var(r_m)`` over the symbol's last ``window`` rows (at least
    ``min_periods`` valid return pairs), with ``r_m`` the mean daily return of all symbols
    trading that day (our own universe; the market proxy), or of the day's index members only
    when ``members`` (bool per row) is given: a stock that joined later is then not in the
    market of the days before it joined. Uses rows at or before ``t`` only.
    """
    codes, _ = pd.factorize(keys["symbol"])
    ret = np.full(len(close), np.nan)
    same = np.zeros(len(close), dtype=bool)
    same[1:] = codes[1:] == codes[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ret[1:] = close[1:] / close[:-1] - 1.0
    ret[~same] = np.nan
    ret[~np.isfinite(ret)] = np.nan
    in_market = ret if members is None else np.where(members, ret, np.nan)
    mkt = pd.Series(in_market).groupby(keys["date"].to_numpy()).transform("mean").to_numpy()
    ok = np.isfinite(ret) & np.isfinite(mkt)
    x = np.where(ok, mkt, 0.0)
    y = np.where(ok, ret, 0.0)
    n = len(x)
    idx = np.arange(n)
    starts = pd.Series(idx).groupby(codes).transform("min").to_numpy()
    lo = np.maximum(idx - window + 1, starts)

    seg_starts, seg_ends = group_bounds(codes)

    def wsum(a: np.ndarray) -> np.ndarray:
        # prefix sums restarted at each symbol: a row's value depends on its own past only
        out = np.empty(n)
        for s, e in zip(seg_starts, seg_ends, strict=True):
            c = np.concatenate([[0.0], np.cumsum(a[s:e])])
            out[s:e] = c[idx[s:e] - s + 1] - c[lo[s:e] - s]
        return out

    cnt = wsum(ok.astype(float))
    sx, sy, sxx, sxy = wsum(x), wsum(y), wsum(x * x), wsum(x * y)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - sx * sy / cnt
        var = sxx - sx * sx / cnt
        beta = np.where((cnt >= min_periods) & (var > 1e-14), cov / var, np.nan)
    return beta


def rate_beta(keys: pd.DataFrame, close: np.ndarray, monthly: pd.DataFrame,
              window: int = 36, min_periods: int = 24) -> np.ndarray:
    """Rolling 36-month beta of monthly stock returns on monthly 10-year yield changes.

    ``rate_beta_36m = cov(r_m, dGS10_m) / var(dGS10_m)`` over the last 36 months (>= 24), in
    fraction of return per percentage point of yield. The estimate using months up to ``m`` is
    usable from ``m + FRED_MD_LAG_MONTHS`` months (when GS10 of month ``m`` is published), and
    joined per symbol as of that date.
    """
    frame = pd.DataFrame({"symbol": keys["symbol"].astype(object).to_numpy(),
                          "month": keys["date"].dt.to_period("M").dt.to_timestamp().to_numpy(),
                          "close": close})
    last = frame.groupby(["symbol", "month"], sort=True)["close"].last().reset_index()
    last["ret"] = last.groupby("symbol")["close"].pct_change(fill_method=None)
    prev_month = last.groupby("symbol")["month"].shift(1)
    last.loc[(last["month"] - pd.DateOffset(months=1)) != prev_month, "ret"] = np.nan
    last = last.merge(monthly[["month", "d_gs10"]], on="month", how="left")
    ok = last["ret"].notna() & last["d_gs10"].notna()
    last["x"] = last["d_gs10"].where(ok)
    last["y"] = last["ret"].where(ok)
    last["xy"] = last["x"] * last["y"]
    last["xx"] = last["x"] * last["x"]
    g = last.groupby("symbol")
    roll = {c: g[c].rolling(window, min_periods=min_periods).mean().reset_index(level=0, drop=True)
            for c in ("x", "y", "xy", "xx")}
    var = roll["xx"] - roll["x"] ** 2
    beta = (roll["xy"] - roll["x"] * roll["y"]) / var.where(var > 1e-12)
    last["rate_beta_36m"] = beta.sort_index()
    last["available_date"] = (last["month"] + pd.DateOffset(months=FRED_MD_LAG_MONTHS)).astype("datetime64[ns]")
    joined = asof_join(keys, last, right_on="available_date", columns=["rate_beta_36m"],
                       tolerance=pd.Timedelta(days=92))
    return joined["rate_beta_36m"].to_numpy(float)


def macro_features(prices: pd.DataFrame, fred_md: pd.DataFrame | MacroData,
                   vix: pd.DataFrame | None = None,
                   gdp: pd.DataFrame | None = None, *,
                   membership: pd.DataFrame | None = None) -> pd.DataFrame:
    """Macro regime variables and stock-level exposures of every price row.

    Parameters
    ----------
    prices : pandas.DataFrame
        Canonical prices (``symbol, date, close`` adjusted).
    fred_md : pandas.DataFrame or MacroData
        FRED-MD monthly table (``month`` + series), or a :class:`MacroData` holding all three.
    vix, gdp : pandas.DataFrame, optional
        Daily VIX (``date, close``) and quarterly GDP (``date, level-chained``); their columns
        are NaN when absent.
    membership : pandas.DataFrame, optional
        Point-in-time universe intervals (:mod:`vfr.data.universe`): the market return of
        ``beta_mkt_252d`` is then the mean over the day's members.

    Returns
    -------
    pandas.DataFrame
        ``symbol, date`` (sorted, RangeIndex) and float32 columns
        :data:`MACRO_MARKET_FEATURES` then :data:`MACRO_STOCK_FEATURES` (see the module
        docstring for lags and the regime tilts).
    """
    if isinstance(fred_md, MacroData):
        fred_md, vix, gdp = fred_md.fred_md, fred_md.vix, fred_md.gdp
    keys = price_keys(prices)
    out = keys[["symbol", "date"]].copy()
    dates = pd.DataFrame({"date": np.sort(keys["date"].unique())})
    monthly = fred_monthly_features(fred_md)
    fred_cols = ["fedfunds", "fedfunds_chg_3m", "unrate_chg_3m", "cpi_yoy", "gs10",
                 "gs10_chg_3m", "term_spread", "credit_spread", "usd_chg_3m"]
    per_date = pd.concat([dates, asof_join(dates, monthly, right_on="available_date",
                                           columns=fred_cols, by=None,
                                           tolerance=pd.Timedelta(days=93))], axis=1)
    if vix is not None and len(vix):
        vf = vix_features(vix)
        per_date = pd.concat([per_date, asof_join(dates, vf, right_on="date",
                                                  columns=["vix", "vix_chg_21d", "vix_pct_252d"],
                                                  by=None, tolerance=pd.Timedelta(days=7))],
                             axis=1)
    else:
        per_date[["vix", "vix_chg_21d", "vix_pct_252d"]] = np.nan
    if gdp is not None and len(gdp):
        gf = gdp_features(gdp)
        per_date["gdp_growth_yoy"] = asof_join(dates, gf, right_on="available_date",
                                               columns=["gdp_growth_yoy"], by=None,
                                               tolerance=pd.Timedelta(days=200))["gdp_growth_yoy"]
    else:
        per_date["gdp_growth_yoy"] = np.nan
    pos = np.searchsorted(per_date["date"].to_numpy(), keys["date"].to_numpy())
    for name in MACRO_MARKET_FEATURES:
        out[name] = per_date[name].to_numpy(np.float32)[pos]
    close = keys["close"].to_numpy(float)
    members = None if membership is None else membership_mask(keys["symbol"].to_numpy(), keys["date"].to_numpy(),
                                                              membership)
    beta = market_beta(keys, close, members=members)
    rbeta = rate_beta(keys, close, monthly)
    vix_pct = out["vix_pct_252d"].to_numpy(float)
    stress = np.where(np.isnan(vix_pct), np.nan, np.where(vix_pct >= STRESS_PERCENTILE, -1.0, 1.0))
    out["beta_mkt_252d"] = beta.astype(np.float32)
    out["rate_beta_36m"] = rbeta.astype(np.float32)
    out["beta_regime_tilt"] = (beta * stress).astype(np.float32)
    out["rate_regime_tilt"] = (rbeta * np.sign(out["gs10_chg_3m"].to_numpy(float))).astype(np.float32)
    return out
