"""Forward-return labels.

Label windows start strictly after the feature date: the label of the row at date t uses the
closes at t and t+h only, so its window is (t, t+h]. The forward return itself is
:func:`vfr.metrics.forward_returns` (the one forward-return computation of VFR) and horizons are
read with :func:`vfr.metrics.parse_horizon` (``"1w"``, ``5`` and ``"5d"`` are the same horizon).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from vfr.config import HORIZONS
from vfr.metrics import HorizonLike, forward_returns, parse_horizon, parse_horizons


def label_columns(horizon: HorizonLike) -> tuple[str, str, str]:
    """Names of (forward return, excess return, direction) columns for ``horizon``.

    Parameters
    ----------
    horizon : str, int or Horizon
        Anything :func:`vfr.metrics.parse_horizon` reads; the names use its canonical name
        (``label_columns("5d") == label_columns(5) == label_columns("1w") ==
        ("fwd_ret_1w", "fwd_excess_1w", "fwd_dir_1w")``).

    Raises
    ------
    vfr.metrics.HorizonError
        (a ``ValueError``) if ``horizon`` is not a horizon.
    """
    name = parse_horizon(horizon).name
    return f"fwd_ret_{name}", f"fwd_excess_{name}", f"fwd_dir_{name}"


def make_labels(prices: pd.DataFrame, horizons: Mapping[str, int] | Iterable[HorizonLike] | None = None, *,
                membership: pd.DataFrame | None = None) -> pd.DataFrame:
    """Forward returns, excess returns over the universe mean, and their direction.

    Parameters
    ----------
    prices : DataFrame of shape (n_rows, >=3)
        Canonical prices frame with columns ``symbol``, ``date`` and ``close`` (adjusted, USD).
    horizons : mapping of str to int, or iterable of horizons, optional
        Horizon name -> trading days (``{"1w": 5}``), or horizons in any spelling of
        :func:`vfr.metrics.parse_horizon` (``["1d", 5, "1m"]``); default
        :data:`vfr.config.HORIZONS` (1d, 1w=5, 1m=21). Columns use canonical names.
    membership : DataFrame, optional
        Point-in-time universe intervals (:mod:`vfr.data.universe`): the cross-sectional mean
        is taken over the date's members only, and rows of non-members get NaN excess returns
        and directions (their forward return is kept). ``None``: every row is a member.

    Returns
    -------
    DataFrame of shape (n_rows, 2 + 3 * n_horizons)
        ``symbol``, ``date`` (rows sorted by symbol, then date) and for each horizon h:

        - ``fwd_ret_<h>`` = close[t+h] / close[t] - 1 (fraction; per symbol, in trading rows;
          :func:`vfr.metrics.forward_returns`),
        - ``fwd_excess_<h>`` = ``fwd_ret_<h>`` minus its cross-sectional mean on date t,
        - ``fwd_dir_<h>`` = 1.0 if the excess return is > 0, 0.0 if <= 0, NaN if unknown.

        Rows whose window runs past the last price of their symbol have NaN labels.

    Raises
    ------
    ValueError
        If required columns are missing, or (:class:`vfr.metrics.HorizonError`) a horizon is
        not a positive whole number of trading days or a name disagrees with its days.
    """
    missing = {"symbol", "date", "close"} - set(prices.columns)
    if missing:
        raise ValueError(f"make_labels: prices frame lacks columns {sorted(missing)}")
    hs = parse_horizons(HORIZONS if horizons is None else horizons)
    fwd = forward_returns(prices, hs, column="fwd_ret_{name}")
    out = fwd[["symbol", "date"]].copy()
    members = None
    if membership is not None:
        from vfr.data.universe import membership_mask

        members = membership_mask(fwd["symbol"].to_numpy(), fwd["date"].to_numpy(), membership)
    for h in hs:
        ret_col, exc_col, dir_col = label_columns(h)
        out[ret_col] = fwd[ret_col]
        member_ret = out[ret_col] if members is None else out[ret_col].where(members)
        mean = member_ret.groupby(out["date"], sort=False).transform("mean")
        if members is not None:
            mean = mean.where(members)
        out[exc_col] = out[ret_col] - mean
        out[dir_col] = np.where(out[exc_col].isna(), np.nan, (out[exc_col] > 0).astype(float))
    return out
