"""Forward-return labels.

Label windows start strictly after the feature date: the label of the row at date t uses the
closes at t and t+h only, so its window is (t, t+h].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr.config import HORIZONS


def label_columns(horizon: str) -> tuple[str, str, str]:
    """Names of (forward return, excess return, direction) columns for ``horizon``."""
    if horizon not in HORIZONS:
        raise ValueError(f"unknown horizon {horizon!r}; expected one of {sorted(HORIZONS)}")
    return f"fwd_ret_{horizon}", f"fwd_excess_{horizon}", f"fwd_dir_{horizon}"


def make_labels(prices: pd.DataFrame, horizons: dict[str, int] | None = None, *,
                membership: pd.DataFrame | None = None) -> pd.DataFrame:
    """Forward returns, excess returns over the universe mean, and their direction.

    Parameters
    ----------
    prices : DataFrame of shape (n_rows, >=3)
        Canonical prices frame with columns ``symbol``, ``date`` and ``close`` (adjusted, USD).
    horizons : dict of str to int, optional
        Horizon name -> trading days; default :data:`vfr.config.HORIZONS` (1d, 1w=5, 1m=21).
    membership : DataFrame, optional
        Point-in-time universe intervals (:mod:`vfr.data.universe`): the cross-sectional mean
        is taken over the date's members only, and rows of non-members get NaN excess returns
        and directions (their forward return is kept). ``None``: every row is a member.

    Returns
    -------
    DataFrame of shape (n_rows, 2 + 3 * n_horizons)
        ``symbol``, ``date`` and for each horizon h:

        - ``fwd_ret_<h>`` = close[t+h] / close[t] - 1 (fraction; per symbol, in trading rows),
        - ``fwd_excess_<h>`` = ``fwd_ret_<h>`` minus its cross-sectional mean on date t,
        - ``fwd_dir_<h>`` = 1.0 if the excess return is > 0, 0.0 if <= 0, NaN if unknown.

        Rows whose window runs past the last price of their symbol have NaN labels.

    Raises
    ------
    ValueError
        If required columns are missing or a horizon is not a positive integer.
    """
    horizons = HORIZONS if horizons is None else horizons
    missing = {"symbol", "date", "close"} - set(prices.columns)
    if missing:
        raise ValueError(f"make_labels: prices frame lacks columns {sorted(missing)}")
    frame = prices[["symbol", "date", "close"]].sort_values(["symbol", "date"], kind="stable")
    frame = frame.reset_index(drop=True)
    out = frame[["symbol", "date"]].copy()
    close = frame["close"].to_numpy(dtype=np.float64)
    sym = frame["symbol"].to_numpy()
    members = None
    if membership is not None:
        from vfr.data.universe import membership_mask

        members = membership_mask(sym, frame["date"].to_numpy(), membership)
    for name, h in horizons.items():
        if not isinstance(h, int | np.integer) or h <= 0:
            raise ValueError(f"make_labels: horizon {name!r} must be a positive integer, got {h!r}")
        ret_col, exc_col, dir_col = label_columns(name) if name in HORIZONS else (
            f"fwd_ret_{name}", f"fwd_excess_{name}", f"fwd_dir_{name}")
        fwd = np.full(len(frame), np.nan)
        if len(frame) > h:
            same = sym[h:] == sym[:-h]
            fwd[:-h] = np.where(same, close[h:] / close[:-h] - 1.0, np.nan)
        out[ret_col] = fwd
        member_ret = out[ret_col] if members is None else out[ret_col].where(members)
        mean = member_ret.groupby(out["date"], sort=False).transform("mean")
        if members is not None:
            mean = mean.where(members)
        out[exc_col] = out[ret_col] - mean
        out[dir_col] = np.where(out[exc_col].isna(), np.nan, (out[exc_col] > 0).astype(float))
    return out
