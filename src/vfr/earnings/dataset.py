"""Event dataset of the early-signal model: one row per earnings report.

For a report published on ``reported_date`` the *as-of date* ``t`` is the trading day
``lead`` (default 7) trading days before the first trading day on or after ``reported_date``.
Every feature of the row is known at the close of ``t``:

- past surprises of the same company: only reports with ``reported_date < t`` (strictly
  earlier; a report is usable from the day after it is published, see
  :func:`past_surprise_features`);
- technical features of :func:`vfr.features.build_features` on the adjusted prices at ``t``;
- the GICS sector (static, from the constituents list).

The label is ``surprise_pct > threshold`` of the report itself (known on ``reported_date``).
The consensus ``estimated_eps`` of the upcoming report is NOT a feature: only its final value
(fixed just before the report, after ``t``) is in the data, so using it would leak.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vfr.features import build_features, feature_names

#: Past-surprise feature columns (see :func:`past_surprise_features`).
SURPRISE_FEATURES: tuple[str, ...] = (
    "last_surprise_pct", "mean_surprise_pct_4", "std_surprise_pct_4", "beat20_share_4",
    "beat_share_8", "n_past_reports", "days_since_last_report", "eps_growth_yoy")

#: The 11 GICS sectors in a fixed order: ``sector_code`` is the position (-1 unknown), so the
#: code of a sector does not depend on which sectors a universe happens to hold.
GICS_SECTORS: tuple[str, ...] = (
    "Communication Services", "Consumer Discretionary", "Consumer Staples", "Energy", "Financials",
    "Health Care", "Industrials", "Information Technology", "Materials", "Real Estate", "Utilities")

#: Minimum days between fiscal quarter end and report (bad dates in the source below this).
MIN_REPORT_GAP_DAYS = 5


def clean_reports(earnings: pd.DataFrame, *, min_gap_days: int = MIN_REPORT_GAP_DAYS
                  ) -> pd.DataFrame:
    """Drop reports whose ``reported_date`` is < ``min_gap_days`` after the quarter end.

    Uses ``vfr.data.fundamentals.clean_earnings`` (the project's earnings reader), which also
    drops rows with missing dates and duplicate quarters, then sorts by symbol and
    ``reported_date``.

    Parameters
    ----------
    earnings : pandas.DataFrame
        Canonical earnings frame (``symbol, fiscal_date_ending, reported_date, reported_eps,
        estimated_eps, surprise, surprise_pct, report_time``).
    min_gap_days : int
        Minimum gap in calendar days.

    Returns
    -------
    pandas.DataFrame
        Clean reports sorted by ``symbol, reported_date`` with a RangeIndex.
    """
    from vfr.data.fundamentals import clean_earnings

    out = clean_earnings(earnings, min_gap_days=min_gap_days)
    return out.sort_values(["symbol", "reported_date"], kind="stable").reset_index(drop=True)


def past_surprise_features(reports: pd.DataFrame, symbols: Sequence[str],
                           asof: Sequence[pd.Timestamp] | pd.Series) -> pd.DataFrame:
    """Surprise history of each symbol known at the close of each as-of date.

    A report enters only when ``reported_date < asof`` (strictly earlier date), so a report
    is never used on or before the day it is published.

    Parameters
    ----------
    reports : pandas.DataFrame
        Output of :func:`clean_reports`.
    symbols : sequence of str, shape (n,)
        Symbol of each query row.
    asof : sequence of Timestamp, shape (n,)
        As-of date of each query row (tz-naive).

    Returns
    -------
    pandas.DataFrame, shape (n, len(SURPRISE_FEATURES))
        Aligned with the query rows:

        - ``last_surprise_pct``: surprise_pct of the latest known report (percent),
        - ``mean_surprise_pct_4`` / ``std_surprise_pct_4``: mean / std (ddof=1) of the last 4,
          each clipped to [-100, 100] percent (a near-zero estimate makes the ratio explode),
        - ``beat20_share_4``: share of the last 4 with surprise_pct > 20,
        - ``beat_share_8``: share of the last 8 with surprise > 0,
        - ``n_past_reports``: count of known reports,
        - ``days_since_last_report``: calendar days from the latest known report to ``asof``,
        - ``eps_growth_yoy``: (EPS of the latest - EPS 4 reports earlier) / |EPS 4 earlier|,
          clipped to [-5, 5] (fraction).
    """
    rep = reports.sort_values(["symbol", "reported_date"], kind="stable").reset_index(drop=True)
    g = rep.groupby("symbol", sort=False)
    sp = rep["surprise_pct"].clip(-100, 100)
    hist = pd.DataFrame({
        "symbol": rep["symbol"].astype(object), "reported_date": rep["reported_date"],
        "last_surprise_pct": rep["surprise_pct"],
        "mean_surprise_pct_4": sp.groupby(rep["symbol"]).transform(
            lambda s: s.rolling(4, min_periods=1).mean()),
        "std_surprise_pct_4": sp.groupby(rep["symbol"]).transform(
            lambda s: s.rolling(4, min_periods=2).std()),
        "beat20_share_4": (rep["surprise_pct"] > 20).astype(float).where(
            rep["surprise_pct"].notna()).groupby(rep["symbol"]).transform(
            lambda s: s.rolling(4, min_periods=1).mean()),
        "beat_share_8": (rep["surprise"] > 0).astype(float).where(
            rep["surprise"].notna()).groupby(rep["symbol"]).transform(
            lambda s: s.rolling(8, min_periods=1).mean()),
        "n_past_reports": g.cumcount() + 1.0,
    })
    eps4 = g["reported_eps"].shift(4)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = (rep["reported_eps"] - eps4) / eps4.abs()
    hist["eps_growth_yoy"] = growth.where(np.isfinite(growth)).clip(-5, 5)
    # usable from the day after publication: as-of key reported_date + 1 day, backward join
    hist["usable_from"] = (hist["reported_date"] + pd.Timedelta(days=1)).astype("datetime64[ns]")
    hist = hist.sort_values("usable_from", kind="stable")
    query = pd.DataFrame({"symbol": pd.Series(list(symbols), dtype=object),
                          "asof": pd.to_datetime(pd.Series(list(asof))).astype(
                              "datetime64[ns]").to_numpy()})
    query["_row"] = np.arange(len(query))
    merged = pd.merge_asof(query.sort_values("asof", kind="stable"),
                           hist.drop(columns="reported_date"), left_on="asof",
                           right_on="usable_from", by="symbol", direction="backward")
    merged = merged.sort_values("_row").reset_index(drop=True)
    merged["days_since_last_report"] = (merged["asof"] - merged["usable_from"]).dt.days + 1.0
    merged["n_past_reports"] = merged["n_past_reports"].fillna(0.0)
    return merged[list(SURPRISE_FEATURES)].astype(float)


def asof_dates(reported: pd.Series, calendar: pd.DatetimeIndex, lead: int) -> pd.Series:
    """As-of trading day ``lead`` trading days before each report.

    Parameters
    ----------
    reported : pandas.Series of datetime64, shape (n,)
        Report dates.
    calendar : pandas.DatetimeIndex
        Sorted trading days.
    lead : int
        Trading days between the as-of date and the report's trading day.

    Returns
    -------
    pandas.Series of datetime64, shape (n,)
        ``calendar[i - lead]`` with ``i`` the position of the first trading day >= the report
        date; NaT when that is outside the calendar.
    """
    pos = calendar.searchsorted(reported.to_numpy(), side="left") - lead
    ok = (pos >= 0) & (pos + lead < len(calendar))
    vals = np.full(len(reported), np.datetime64("NaT"), dtype="datetime64[ns]")
    vals[ok] = calendar.to_numpy()[pos[ok]]
    return pd.Series(vals, index=reported.index)


def build_event_dataset(earnings: pd.DataFrame, prices: pd.DataFrame, *,
                        sectors: pd.DataFrame | None = None, lead: int = 7,
                        threshold: float = 20.0,
                        features: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per earnings report with features as of ``lead`` trading days before it.

    Parameters
    ----------
    earnings : pandas.DataFrame
        Canonical earnings frame (cleaned here with :func:`clean_reports`).
    prices : pandas.DataFrame
        Canonical (adjusted) prices frame; its dates are the trading calendar.
    sectors : pandas.DataFrame, optional
        ``symbol`` and ``sector`` (GICS sector name); becomes the column ``sector_code``
        (:func:`sector_codes`).
    lead : int
        Trading days between the as-of date and the report (default 7).
    threshold : float
        Label threshold on ``surprise_pct`` in percent (default 20).
    features : pandas.DataFrame, optional
        Precomputed ``build_features(prices)``; computed when None.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``reported_date, symbol``: ``symbol, fiscal_date_ending, reported_date,
        asof_date, surprise_pct, label`` (1.0 / 0.0), ``ret_to_report`` (close at the
        report's trading day / close at ``asof_date`` - 1, fraction; an outcome, not a
        feature), the :data:`SURPRISE_FEATURES`, the technical features and ``sector_code``.
        Reports without ``surprise_pct``, outside the price calendar or without a price at
        the as-of date are dropped.
    """
    reports = clean_reports(earnings)
    cal = pd.DatetimeIndex(np.sort(prices["date"].unique()))
    ev = reports[reports["surprise_pct"].notna()].copy()
    ev["asof_date"] = asof_dates(ev["reported_date"], cal, lead)
    ev = ev[ev["asof_date"].notna()].reset_index(drop=True)
    ev["label"] = (ev["surprise_pct"] > threshold).astype(float)
    past = past_surprise_features(reports, ev["symbol"], ev["asof_date"])
    ev = pd.concat([ev, past], axis=1)
    feats = build_features(prices) if features is None else features
    tech = feats[["symbol", "date", *feature_names()]].rename(columns={"date": "asof_date"})
    ev = ev.merge(tech, on=["symbol", "asof_date"], how="inner")
    # outcome: return from the as-of close to the close of the report's trading day
    report_day = cal[np.minimum(cal.searchsorted(ev["reported_date"].to_numpy()), len(cal) - 1)]
    ev["report_day"] = report_day
    px = prices[["symbol", "date", "close"]]
    c0 = ev[["symbol", "asof_date"]].merge(px, left_on=["symbol", "asof_date"],
                                           right_on=["symbol", "date"], how="left")["close"]
    c1 = ev[["symbol", "report_day"]].merge(px, left_on=["symbol", "report_day"],
                                            right_on=["symbol", "date"], how="left")["close"]
    ev["ret_to_report"] = c1.to_numpy() / c0.to_numpy() - 1.0
    ev["sector_code"] = sector_codes(ev["symbol"], sectors)
    cols = ["symbol", "fiscal_date_ending", "reported_date", "asof_date", "surprise_pct",
            "label", "ret_to_report", *SURPRISE_FEATURES, *feature_names(), "sector_code"]
    return ev[cols].sort_values(["reported_date", "symbol"], kind="stable").reset_index(
        drop=True)


def model_feature_columns() -> list[str]:
    """Feature columns the early-signal model uses (surprise history, technical, sector)."""
    return [*SURPRISE_FEATURES, *feature_names(), "sector_code"]


def sector_codes(symbols: pd.Series, sectors: pd.DataFrame | None) -> np.ndarray:
    """Position of each symbol's GICS sector in :data:`GICS_SECTORS` (float; -1 when unknown).

    Parameters
    ----------
    symbols : pandas.Series of str, shape (n,)
    sectors : pandas.DataFrame, optional
        ``symbol`` and ``sector`` (GICS sector name, case-insensitive).

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
    """
    if sectors is None:
        return np.full(len(symbols), -1.0)
    code = {name.lower(): float(i) for i, name in enumerate(GICS_SECTORS)}
    by_symbol = sectors.drop_duplicates("symbol").set_index("symbol")["sector"].str.lower().map(code)
    return pd.Series(symbols).map(by_symbol).fillna(-1.0).to_numpy(float)
