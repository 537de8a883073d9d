"""Factor evaluation of any score: IC / Rank IC by date and their decay over horizons,
quantile returns, quantile turnover and rank autocorrelation.

The quantities are those of alphalens(-reloaded) (``factor_information_coefficient``,
``mean_return_by_quantile`` with ``demeaned=True``, ``quantile_turnover``,
``factor_rank_autocorrelation``), computed here with vectorised pandas on long frames (alphalens' own path, per-date
scipy calls and a wide forward-return frame for every period, is slow on 2 M rows and pulls
in IPython/seaborn); the forward returns, the per-date IC and its summary are those of the
ground-floor :mod:`vfr.metrics` (:func:`vfr.metrics.forward_returns`,
:func:`vfr.metrics.ic_by_date`, :func:`vfr.metrics.ic_summary`; not re-implemented).
``tests/backtest/test_factor.py`` checks the Rank IC, demeaned quantile returns, quantile
turnover and rank autocorrelation against alphalens-reloaded 0.5 on real prices (a dev
dependency).

Forward returns are *evaluation labels*: the return over ``(t, t+h]`` is known only at the
close of ``t+h``; nothing here feeds back into a position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vfr.metrics import HorizonLike, ic_by_date, ic_summary, parse_horizons
from vfr.metrics import forward_returns as _forward_returns

__all__ = ["FactorReport", "evaluate_factor", "forward_returns", "quantile_turnover"]


@dataclass
class FactorReport:
    """Output of :func:`evaluate_factor`.

    Attributes
    ----------
    ic : dict[int, pandas.DataFrame]
        Horizon (trading days) -> :func:`vfr.metrics.ic_by_date` frame (``ic``, ``rank_ic``, ``n``
        on a date index) against the ``h``-day forward return.
    decay : pandas.DataFrame
        Index ``horizon``; columns ``ic_mean``, ``rank_ic_mean``, ``rank_ic_std``,
        ``rank_icir`` (mean / std), ``rank_ic_t_stat`` (non-overlapping dates: every h-th;
        :func:`vfr.metrics.ic_summary`'s ``t_stat_nonoverlap``), ``dates``.
    quantile_returns : pandas.DataFrame
        Index ``quantile`` (1 = lowest score); one column per horizon ``fwd_<h>``: mean over
        dates of the quantile's mean ``h``-day forward return minus the universe mean that
        date (alphalens ``demeaned=True``), fraction (not annualised).
    turnover : pandas.Series
        Index ``quantile``: mean share of names in the quantile at a date that were not in it
        at the previous date (alphalens ``quantile_turnover``).
    rank_autocorrelation : float
        Mean Spearman correlation of the score ranks between consecutive dates.
    """

    ic: dict[int, pd.DataFrame]
    decay: pd.DataFrame
    quantile_returns: pd.DataFrame
    turnover: pd.Series
    rank_autocorrelation: float


def forward_returns(prices: pd.DataFrame, horizons: tuple[HorizonLike, ...] = (1, 5, 10, 21)) -> pd.DataFrame:
    """Forward simple returns per symbol over its own trading days, columns named by days.

    :func:`vfr.metrics.forward_returns` (``R_{t,i}^{(h)} = P_{t+h,i} / P_{t,i} - 1``, window
    ``(t, t+h]``) in this module's layout.

    Parameters
    ----------
    prices : pandas.DataFrame
        Long frame ``symbol``, ``date``, ``close`` (adjusted USD).
    horizons : tuple of horizons
        Horizons in any spelling of :func:`vfr.metrics.parse_horizon` (``5``, ``"1w"``,
        ``"5d"``); trading days = rows of each symbol.

    Returns
    -------
    pandas.DataFrame
        ``date``, ``symbol`` and one column ``fwd_<days>`` per horizon (NaN near the end),
        rows sorted by (symbol, date).
    """
    fwd = _forward_returns(prices, horizons, column="fwd_{days}")
    return fwd[["date", "symbol", *fwd.columns[2:]]]


def _quantiles(frame: pd.DataFrame, n_q: int) -> pd.Series:
    """Per-date quantile 1..n_q of ``score`` (equal-count buckets of the percentile rank)."""
    pct = frame.groupby("date")["score"].rank(pct=True, method="first")
    return np.ceil(pct * n_q).clip(1, n_q).astype("int64")


def quantile_turnover(frame: pd.DataFrame, n_q: int = 5) -> pd.Series:
    """Mean share of each quantile's names that are new since the previous date.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long ``date``, ``symbol``, ``score``.
    n_q : int, default 5
        Number of quantiles.

    Returns
    -------
    pandas.Series
        Index ``quantile`` 1..n_q; values in [0, 1].
    """
    f = frame[["date", "symbol", "score"]].dropna().copy()
    f["quantile"] = _quantiles(f, n_q)
    wide = f.pivot(index="date", columns="symbol", values="quantile").sort_index()
    out = {}
    for q in range(1, n_q + 1):
        now = (wide == q).to_numpy()
        prev = np.vstack([np.zeros((1, now.shape[1]), bool), now[:-1]])
        size = now.sum(axis=1)
        new = (now & ~prev).sum(axis=1)
        ok = (size > 0) & (prev.sum(axis=1) > 0)
        out[q] = float((new[ok] / size[ok]).mean()) if ok.any() else float("nan")
    return pd.Series(out, name="turnover").rename_axis("quantile")


def evaluate_factor(scores: pd.DataFrame, prices: pd.DataFrame, *, horizons: tuple[HorizonLike, ...] = (1, 5, 10, 21),
                    quantiles: int = 5, min_names: int = 5) -> FactorReport:
    """IC, Rank IC and decay over horizons, quantile returns and turnover of a score.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long ``date``, ``symbol``, ``score`` (classic, ML probability, composite, ...).
    prices : pandas.DataFrame
        Long ``symbol``, ``date``, ``close`` (adjusted).
    horizons : tuple of horizons, default (1, 5, 10, 21)
        Forward horizons in trading days, in any spelling of :func:`vfr.metrics.parse_horizon`;
        reported by their number of days.
    quantiles : int, default 5
        Number of score buckets per date.
    min_names : int, default 5
        Dates with fewer scored names are skipped in the IC.

    Returns
    -------
    FactorReport

    Raises
    ------
    ValueError
        If ``quantiles < 2`` or no horizon is given (:class:`vfr.metrics.HorizonError` if a
        horizon is not valid).
    """
    if quantiles < 2 or not horizons:
        raise ValueError("need quantiles >= 2 and at least one horizon")
    days = [h.days for h in parse_horizons(tuple(horizons))]
    fwd = forward_returns(prices, tuple(days))
    data = scores[["date", "symbol", "score"]].dropna().merge(fwd, on=["date", "symbol"], how="inner")
    ic, rows = {}, {}
    for h in days:
        col = f"fwd_{h}"
        frame = ic_by_date(data, "score", col, min_names=min_names)
        ic[h] = frame
        rank = ic_summary(frame["rank_ic"], horizon=h)
        rows[h] = {
            "ic_mean": ic_summary(frame["ic"])["mean"], "rank_ic_mean": rank["mean"],
            "rank_ic_std": rank["std"], "rank_icir": rank["icir"], "rank_ic_t_stat": rank["t_stat_nonoverlap"],
            "dates": float(rank["n_dates"]),
        }
    decay = pd.DataFrame(rows).T.rename_axis("horizon")
    data["quantile"] = _quantiles(data, quantiles)
    qr = {}
    for h in days:
        col = f"fwd_{h}"
        d = data[["date", "quantile", col]].dropna()
        demeaned = d[col] - d.groupby("date")[col].transform("mean")
        per_date = demeaned.groupby([d["date"], d["quantile"]]).mean()
        qr[col] = per_date.groupby(level="quantile").mean()
    quantile_returns = pd.DataFrame(qr).rename_axis("quantile")
    turn = quantile_turnover(data, quantiles)
    wide = data.pivot(index="date", columns="symbol", values="score").sort_index().rank(axis=1)
    ac = wide.T.corrwith(wide.shift(1).T) if len(wide) > 1 else pd.Series(dtype=float)
    return FactorReport(ic=ic, decay=decay, quantile_returns=quantile_returns, turnover=turn,
                        rank_autocorrelation=float(ac.mean()))
