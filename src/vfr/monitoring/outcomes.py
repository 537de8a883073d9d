"""Outcomes of logged predictions: what happened once a prediction's horizon had passed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from vfr.config import HORIZONS
from vfr.opsdb import insert_outcomes, open_predictions, utcnow


def fill_outcomes(engine: sa.Engine, read_prices: Callable[[pd.Timestamp], pd.DataFrame]) -> int:
    """Fill ``ml_outcomes`` for logged predictions whose horizon has passed.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The operations database (:mod:`vfr.opsdb`).
    read_prices : callable
        ``read_prices(start) -> DataFrame`` with ``symbol``, ``date``, ``close`` of the whole
        universe (adjusted) from ``start`` on.

    Returns
    -------
    int
        Outcomes written (in one transaction). A prediction made at t with horizon h gets an
        outcome only when the close of the h-th trading day after t is in ``prices`` (no
        look-ahead): realised return close[t+h] / close[t] - 1, excess over the universe mean on
        t, and ``correct`` = (predicted class == 1) == (excess > 0).
    """
    from vfr.ml import make_labels

    open_ = open_predictions(engine)
    if open_.empty:
        return 0
    prices = read_prices(open_["date"].min())
    if prices.empty:
        return 0
    calendar = pd.DatetimeIndex(np.sort(prices["date"].unique()))
    rows = []
    now = utcnow()
    for horizon, group in open_.groupby("horizon"):
        days = HORIZONS.get(str(horizon))
        if days is None:
            continue
        labels = make_labels(prices[["symbol", "date", "close"]], {horizon: days})
        merged = group.merge(labels, on=["date", "symbol"], how="inner").dropna(subset=[f"fwd_excess_{horizon}"])
        pos = calendar.searchsorted(merged["date"])
        for r, p in zip(merged.itertuples(index=False), pos, strict=True):
            excess = float(getattr(r, f"fwd_excess_{horizon}"))
            rows.append({"prediction_id": int(r.id), "horizon_end": calendar[p + days].date(),
                         "realised_return": float(getattr(r, f"fwd_ret_{horizon}")), "excess_return": excess,
                         "correct": bool((int(r.predicted_class) == 1) == (excess > 0)), "evaluated_at": now})
    return insert_outcomes(engine, rows)
