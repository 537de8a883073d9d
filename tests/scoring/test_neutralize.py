"""Neutralisation removes what the exposures explain, date by date, and nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.scoring import neutralize


def _panel(seed: int = 0, n: int = 60, days: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for d in pd.bdate_range("2020-01-01", periods=days):
        vol = rng.uniform(size=n)
        alpha = rng.normal(size=n)
        sector = rng.choice(["A", "B", "C"], size=n)
        tilt = pd.Series(sector).map({"A": 1.0, "B": 0.0, "C": -1.0}).to_numpy()
        frames.append(pd.DataFrame({"date": d, "vol": vol, "alpha": alpha, "sector": sector,
                                    "score": 3.0 * vol + alpha + 2.0 * tilt}))
    return pd.concat(frames, ignore_index=True)


def test_the_residual_is_free_of_the_exposures_and_keeps_the_rest() -> None:
    p = _panel()
    r = neutralize(p, "score", ["vol"], sector="sector")
    assert r.between(0, 1).all()
    for _, day in p.assign(r=r).groupby("date"):
        assert abs(np.corrcoef(day["r"].rank(), day["vol"].rank())[0, 1]) < 0.15  # raw score: 0.25-0.55
        assert np.corrcoef(day["r"].rank(), day["alpha"].rank())[0, 1] > 0.85     # the stock-specific part stays
        assert day.groupby("sector")["r"].mean().std() < 0.1                      # no sector tilt left
    raw = p.groupby("date").apply(lambda d: np.corrcoef(d["score"].rank(), d["vol"].rank())[0, 1])
    assert (raw > 0.2).all()  # before: the score leans on volatility


def test_each_date_is_neutralised_on_its_own() -> None:
    p = _panel(days=2)
    r = neutralize(p, "score", ["vol"])
    changed = p.copy()
    late = changed["date"] == changed["date"].max()
    changed.loc[late, "score"] = -changed.loc[late, "score"]
    r2 = neutralize(changed, "score", ["vol"])
    early = ~late
    np.testing.assert_allclose(r[early], r2[early])


def test_missing_values_and_small_dates_are_nan_and_bad_columns_are_named() -> None:
    p = _panel(days=1, n=8)
    assert neutralize(p, "score", ["vol"]).isna().all()  # fewer than min_names
    p = _panel(days=1)
    p.loc[3, "vol"] = np.nan
    r = neutralize(p, "score", ["vol"])
    assert np.isnan(r[3]) and r.drop(index=3).notna().all()
    with pytest.raises(KeyError, match="beta"):
        neutralize(p, "score", ["beta"])
