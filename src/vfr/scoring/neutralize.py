"""Cross-sectional neutralisation of a score against risk exposures (volatility, beta, sector).

A score that mostly ranks stocks by volatility or beta is a bet on the market's direction, not
a stock pick. :func:`neutralize` removes, date by date, the part of the score that a linear
combination of the exposures (and sector means) explains, and returns the residual as a
percentile rank on the same [0, 1] scale as the other scores. This is the usual
cross-sectional regression residual (e.g. Grinold & Kahn, *Active Portfolio Management*,
2nd ed., ch. 14 "neutralization").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def neutralize(frame: pd.DataFrame, score: str, exposures: Sequence[str] = (), *, sector: str | None = None,
               min_names: int = 10) -> pd.Series:
    """Residual of ``score`` after a per-date least-squares fit on ``exposures`` and sector dummies.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, ...)
        Long frame with ``date``, ``score`` and the exposure columns (and ``sector``).
    score : str
        Column to neutralise (higher = better).
    exposures : sequence of str
        Numeric exposure columns (e.g. ``vol_60d_ann_rank``, ``beta_mkt_252d_rank``); ranks are
        preferred to raw values (robust to outliers).
    sector : str, optional
        Column of sector labels: the residual is also demeaned within sector and date.
    min_names : int
        Dates with fewer complete rows than this (or than the regressors + 2) are left as NaN.

    Returns
    -------
    Series of shape (n_rows,), index of ``frame``
        The residual's cross-sectional percentile rank on its date, in (0, 1]; NaN where the
        score or an exposure is missing, or the date has too few names.

    Raises
    ------
    KeyError
        If a named column is missing.
    """
    cols = [score, *exposures, *([sector] if sector else [])]
    missing = [c for c in ["date", *cols] if c not in frame.columns]
    if missing:
        raise KeyError(f"neutralize: columns missing from the frame: {missing}")
    out = pd.Series(np.nan, index=frame.index, dtype=float)
    complete = frame[["date", *cols]].dropna()
    for _, day in complete.groupby("date", sort=False):
        parts = [np.ones((len(day), 1))]
        if exposures:
            parts.append(day[list(exposures)].to_numpy(dtype=float))
        if sector:
            dummies = pd.get_dummies(day[sector], drop_first=True, dtype=float).to_numpy()
            if dummies.size:
                parts.append(dummies)
        X = np.hstack(parts)
        if len(day) < max(min_names, X.shape[1] + 2):
            continue
        y = day[score].to_numpy(dtype=float)
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        resid = pd.Series(y - X @ beta, index=day.index)
        out.loc[day.index] = resid.rank(pct=True).to_numpy()
    return out


#: The risk exposures of the researched recipe (docs/research.md): 60-day volatility and
#: 252-day market beta, taken as per-date percentile ranks, plus sector.
RISK_EXPOSURES: tuple[str, ...] = ("vol_60d_ann", "beta_mkt_252d")


def risk_neutral_score(frame: pd.DataFrame, score: str, *, exposures: Sequence[str] = RISK_EXPOSURES,
                       sector: str | None = "sector", min_names: int = 10) -> pd.Series:
    """``score`` neutralised against the risk exposures' per-date ranks and sector (:func:`neutralize`).

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, ...)
        ``date``, ``score``, the ``exposures`` columns (raw feature values: they are ranked per
        date here) and, optionally, ``sector`` (ignored when absent or empty; a missing label
        counts as its own sector).
    score, exposures, sector, min_names
        As in :func:`neutralize`.

    Returns
    -------
    Series of shape (n_rows,), index of ``frame``
        Residual percentile rank per date in (0, 1]; NaN where the score or an exposure is
        missing or the date has too few names.

    Raises
    ------
    KeyError
        If ``date``, ``score`` or an exposure column is missing.
    """
    missing = [c for c in ["date", score, *exposures] if c not in frame.columns]
    if missing:
        raise KeyError(f"risk_neutral_score: columns missing from the frame: {missing}")
    work = frame[["date", score]].copy()
    ranked = [f"{c}__rank" for c in exposures]
    for col, name in zip(exposures, ranked, strict=True):
        work[name] = frame[col].groupby(frame["date"]).rank(pct=True)
    use_sector = sector is not None and sector in frame.columns and frame[sector].notna().any()
    if use_sector:
        work["__sector"] = frame[sector].fillna("unknown").astype(str)
    return neutralize(work, score, ranked, sector="__sector" if use_sector else None, min_names=min_names)


def risk_neutral_scores(scores: pd.DataFrame, features: pd.DataFrame, sectors: pd.DataFrame | None = None, *,
                        score: str = "score") -> pd.Series:
    """:func:`risk_neutral_score` of a score frame, its exposures looked up in ``features``.

    Parameters
    ----------
    scores : DataFrame of shape (n_rows, ...)
        ``date``, ``symbol`` and ``score``.
    features : DataFrame
        ``date``, ``symbol`` and the :data:`RISK_EXPOSURES` columns (the feature store's values).
    sectors : DataFrame, optional
        ``symbol``, ``sector`` (the universe); without it no sector term.
    score : str
        Column of ``scores`` to neutralise.

    Returns
    -------
    Series of shape (n_rows,), index of ``scores``
        Residual percentile rank per date in (0, 1]; NaN where an exposure is missing.

    Raises
    ------
    KeyError
        If ``features`` lacks an exposure column.
    """
    missing = [c for c in RISK_EXPOSURES if c not in features.columns]
    if missing:
        raise KeyError(f"risk-neutral score: the features lack {missing}")
    frame = scores[["date", "symbol", score]].merge(features[["date", "symbol", *RISK_EXPOSURES]],
                                                    on=["date", "symbol"], how="left")
    if sectors is not None and "sector" in sectors.columns:
        frame = frame.merge(sectors[["symbol", "sector"]].drop_duplicates("symbol"), on="symbol", how="left")
    return pd.Series(risk_neutral_score(frame, score).to_numpy(), index=scores.index)
