"""Information coefficient (IC / Rank IC) by date, its summary statistics, and the quantile spread.

All functions are pure. Frames are long (one row per date and symbol).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr.metrics.horizons import HorizonLike, parse_horizon

__all__ = ["ic_by_date", "ic_summary", "quantile_spread"]


def ic_by_date(frame: pd.DataFrame, score: str, target: str, min_names: int = 5) -> pd.DataFrame:
    """Information coefficient per date between a score and a forward return.

    Parameters
    ----------
    frame : DataFrame
        Long frame with columns ``date``, ``score`` and ``target``.
    score, target : str
        Column names of the predictor and of the realised forward return.
    min_names : int
        Dates with fewer valid (score, target) pairs are skipped.

    Returns
    -------
    DataFrame indexed by date (ascending) with columns ``ic`` (Pearson correlation),
    ``rank_ic`` (Spearman rank correlation: Pearson of the per-date average ranks) and ``n``
    (names used). Definitions as in alphalens' ``factor_information_coefficient`` (Grinold &
    Kahn, *Active Portfolio Management*, 2000). Dates where either side is constant give NaN.
    """
    data = frame[["date", score, target]].dropna()
    if data.empty:
        return pd.DataFrame(columns=["ic", "rank_ic", "n"], index=pd.DatetimeIndex([], name="date"))
    counts = data.groupby("date")[score].transform("size")
    data = data[counts >= min_names]
    ranked = data.groupby("date")[[score, target]].rank()
    ranked["date"] = data["date"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = _corr_by_date(data, score, target)
        rank_ic = _corr_by_date(ranked, score, target)
    n = data.groupby("date").size()
    out = pd.DataFrame({"ic": ic, "rank_ic": rank_ic, "n": n})
    out.index.name = "date"
    return out


def _corr_by_date(data: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Pearson correlation of x and y within each date, vectorised through group moments.

    ``corr = (E[xy] - E[x]E[y]) / sqrt(Var x Var y)`` with population moments; NaN where
    ``sqrt(Var x Var y) <= 1e-12`` (a constant side).
    """
    g = data.assign(_xy=data[x] * data[y], _xx=data[x] ** 2, _yy=data[y] ** 2).groupby("date")
    m = g[[x, y, "_xy", "_xx", "_yy"]].mean()
    cov = m["_xy"] - m[x] * m[y]
    var_x = (m["_xx"] - m[x] ** 2).clip(lower=0)
    var_y = (m["_yy"] - m[y] ** 2).clip(lower=0)
    denom = np.sqrt(var_x * var_y)
    return (cov / denom.where(denom > 1e-12)).astype(float)


def _t_stat(s: pd.Series) -> tuple[float, float, float]:
    """(mean, sample std, t-statistic mean / std * sqrt(n)) of a NaN-free series; NaNs if undefined."""
    n = len(s)
    mean = float(s.mean()) if n else float("nan")
    std = float(s.std(ddof=1)) if n >= 2 else float("nan")
    t = mean / std * np.sqrt(n) if n >= 2 and std > 0 else float("nan")
    return mean, std, float(t)


def ic_summary(ic: pd.Series | np.ndarray, horizon: HorizonLike | None = None) -> dict[str, float]:
    """Mean, standard deviation, ICIR and t-statistics of a per-date IC series.

    Parameters
    ----------
    ic : Series of shape (n_dates,) or array-like
        One IC per date, in date order (a Series with an unsorted index is sorted by it);
        NaN entries (dates where the IC is undefined) are ignored.
    horizon : horizon, optional
        Anything :func:`vfr.metrics.parse_horizon` reads (``5``, ``"1w"``, ``"5d"``): the
        label horizon ``h`` of the forward returns behind the ICs. When given, the
        non-overlapping t-statistic over every ``h``-th date is added.

    Returns
    -------
    dict
        - ``mean``, ``std`` (sample, ddof=1; NaN with fewer than 2 dates), ``n_dates``;
        - ``icir`` = mean / std (information ratio of the IC; NaN when std is 0 or NaN);
        - ``t_stat`` = mean / std * sqrt(n_dates), the t-statistic of the mean IC (Grinold &
          Kahn, *Active Portfolio Management*, 2000, ch. 12);
        - ``share_positive``: share of dates with IC > 0;
        - with ``horizon``: ``t_stat_nonoverlap`` and ``n_dates_nonoverlap``, the same
          t-statistic over positions 0, h, 2h, ... of the series (taken *before* NaNs are
          dropped, so the windows ``(t, t+h]`` of the dates used never overlap). With
          overlapping windows (h > 1) neighbouring ICs are correlated and ``t_stat``
          overstates significance; the non-overlapping one is the honest one.

    Raises
    ------
    vfr.metrics.HorizonError
        If ``horizon`` is not a valid horizon.
    """
    series = pd.Series(ic, dtype=float)
    if not series.index.is_monotonic_increasing:
        series = series.sort_index()
    s = series.dropna()
    n = len(s)
    mean, std, t = _t_stat(s)
    out = {"mean": mean, "std": std, "icir": mean / std if n >= 2 and std > 0 else float("nan"),
           "t_stat": t, "n_dates": n, "share_positive": float((s > 0).mean()) if n else float("nan")}
    if horizon is not None:
        every_h = series.iloc[:: parse_horizon(horizon).days].dropna()
        out["t_stat_nonoverlap"] = _t_stat(every_h)[2]
        out["n_dates_nonoverlap"] = len(every_h)
    return out


def quantile_spread(frame: pd.DataFrame, score: str, target: str, quantiles: int = 10) -> pd.Series:
    """Per-date mean ``target`` of the top minus the bottom score quantile (default deciles).

    Parameters
    ----------
    frame : DataFrame
        Long frame with ``date``, ``score`` and ``target`` (forward return, fraction).
    score, target : str
        Column names.
    quantiles : int
        Number of equal-count buckets of the per-date percentile rank of ``score`` (ties
        broken by order); dates with fewer names than ``quantiles`` use as many buckets as
        names, and dates with fewer than 2 names are skipped.

    Returns
    -------
    Series indexed by date, named ``spread``
        Mean ``target`` of the top bucket minus that of the bottom bucket (fraction of return
        per horizon); the long-short spread of alphalens' ``mean_return_by_quantile``.
    """
    data = frame[["date", score, target]].dropna()
    if data.empty:
        return pd.Series(dtype=float, name="spread")
    pct = data.groupby("date")[score].rank(pct=True, method="first")
    size = data.groupby("date")[score].transform("size")
    buckets = np.minimum(quantiles, size)
    bucket = np.ceil(pct * buckets).clip(lower=1)
    top = data[target].where(bucket == buckets)
    bottom = data[target].where(bucket == 1)
    g = pd.DataFrame({"date": data["date"], "top": top, "bottom": bottom, "size": size})
    g = g[g["size"] >= 2].groupby("date")[["top", "bottom"]].mean()
    return (g["top"] - g["bottom"]).rename("spread")
