"""Factor evaluation of any score: IC / Rank IC by date and their decay over horizons,
quantile returns, quantile turnover and rank autocorrelation.

The quantities are those of alphalens(-reloaded) (``factor_information_coefficient``,
``mean_return_by_quantile`` with ``demeaned=True``, ``quantile_turnover``,
``factor_rank_autocorrelation``), computed here with vectorised pandas on long frames (alphalens' own path, per-date
scipy calls and a wide forward-return frame for every period, is slow on 2 M rows and pulls
in IPython/seaborn); the per-date IC is :func:`vfr.ml.ic_by_date` (not re-implemented).
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

__all__ = ["FactorReport", "evaluate_factor", "forward_returns", "quantile_turnover"]


@dataclass
class FactorReport:
    """Output of :func:`evaluate_factor`.

    Attributes
    ----------
    ic : dict[int, pandas.DataFrame]
        Horizon (trading days) -> :func:`vfr.ml.ic_by_date` frame (``ic``, ``rank_ic``, ``n``
        on a date index) against the ``h``-day forward return.
    decay : pandas.DataFrame
        Index ``horizon``; columns ``ic_mean``, ``rank_ic_mean``, ``rank_ic_std``,
        ``rank_icir`` (mean / std), ``rank_ic_t_stat`` (non-overlapping dates: every h-th),
        ``dates``.
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


def forward_returns(prices: pd.DataFrame, horizons: tuple[int, ...] = (1, 5, 10, 21)) -> pd.DataFrame:
    """Forward simple returns per symbol over its own trading days.

    .. math:: R^{(h)}_{t,i} = P_{t+h,i} / P_{t,i} - 1

    Parameters
    ----------
    prices : pandas.DataFrame
        Long frame ``symbol``, ``date``, ``close`` (adjusted USD).
    horizons : tuple of int
        Horizons in trading days (rows of each symbol).

    Returns
    -------
    pandas.DataFrame
        ``date``, ``symbol`` and one column ``fwd_<h>`` per horizon (NaN near the end).
    """
    p = prices[["symbol", "date", "close"]].sort_values(["symbol", "date"], ignore_index=True)
    g = p.groupby("symbol", sort=False)["close"]
    out = p[["date", "symbol"]].copy()
    for h in horizons:
        out[f"fwd_{h}"] = g.shift(-int(h)).to_numpy() / p["close"].to_numpy() - 1.0
    return out


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


def evaluate_factor(scores: pd.DataFrame, prices: pd.DataFrame, *, horizons: tuple[int, ...] = (1, 5, 10, 21),
                    quantiles: int = 5, min_names: int = 5) -> FactorReport:
    """IC, Rank IC and decay over horizons, quantile returns and turnover of a score.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long ``date``, ``symbol``, ``score`` (classic, ML probability, composite, ...).
    prices : pandas.DataFrame
        Long ``symbol``, ``date``, ``close`` (adjusted).
    horizons : tuple of int, default (1, 5, 10, 21)
        Forward horizons in trading days.
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
        If ``quantiles < 2`` or no horizon is given.
    """
    from vfr.ml import ic_by_date  # the one per-date IC of the project

    if quantiles < 2 or not horizons:
        raise ValueError("need quantiles >= 2 and at least one horizon")
    fwd = forward_returns(prices, tuple(horizons))
    data = scores[["date", "symbol", "score"]].dropna().merge(fwd, on=["date", "symbol"], how="inner")
    ic, rows = {}, {}
    for h in horizons:
        col = f"fwd_{h}"
        frame = ic_by_date(data, "score", col, min_names=min_names)
        ic[int(h)] = frame
        ric = frame["rank_ic"].dropna()
        sub = ric.iloc[:: int(h)]
        rows[int(h)] = {
            "ic_mean": float(frame["ic"].mean()), "rank_ic_mean": float(ric.mean()),
            "rank_ic_std": float(ric.std()), "rank_icir": float(ric.mean() / ric.std()) if ric.std() > 0 else np.nan,
            "rank_ic_t_stat": float(sub.mean() / sub.std() * np.sqrt(sub.size)) if sub.size > 1 and sub.std() > 0
            else np.nan,
            "dates": float(ric.size),
        }
    decay = pd.DataFrame(rows).T.rename_axis("horizon")
    data["quantile"] = _quantiles(data, quantiles)
    qr = {}
    for h in horizons:
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
