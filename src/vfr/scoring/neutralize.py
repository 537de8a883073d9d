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
