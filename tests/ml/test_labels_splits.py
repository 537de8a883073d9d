"""Labels start after t; splits are time-ordered with an embargo >= the label horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.config import HORIZONS
from vfr.ml import make_labels, time_split, walk_forward_schedule


def _prices() -> pd.DataFrame:
    dates = pd.bdate_range("2020-01-01", periods=30)
    rows = []
    for sym, base in (("A", 10.0), ("B", 20.0), ("C", 5.0)):
        close = base * np.cumprod(1 + 0.01 * np.sin(np.arange(30) + base))
        rows.append(pd.DataFrame({"symbol": sym, "date": dates, "close": close}))
    return pd.concat(rows, ignore_index=True)


def test_forward_return_uses_close_t_and_t_plus_h() -> None:
    prices = _prices()
    labels = make_labels(prices)
    a = prices[prices.symbol == "A"].reset_index(drop=True)
    la = labels[labels.symbol == "A"].reset_index(drop=True)
    for name, h in HORIZONS.items():
        expected = a["close"].shift(-h) / a["close"] - 1
        np.testing.assert_allclose(la[f"fwd_ret_{name}"], expected, equal_nan=True)
        # the last h rows of each symbol have no label: their window runs past the data
        assert la[f"fwd_ret_{name}"].tail(h).isna().all()
        assert la[f"fwd_ret_{name}"].iloc[: len(la) - h].notna().all()


def test_excess_return_and_direction() -> None:
    labels = make_labels(_prices())
    per_date_mean = labels.groupby("date")["fwd_excess_1w"].mean().dropna()
    np.testing.assert_allclose(per_date_mean, 0.0, atol=1e-12)
    known = labels["fwd_excess_1w"].notna()
    assert ((labels.loc[known, "fwd_excess_1w"] > 0) == (labels.loc[known, "fwd_dir_1w"] == 1)).all()
    assert labels.loc[~known, "fwd_dir_1w"].isna().all()


def test_label_at_t_ignores_prices_at_or_before_t_except_close_t() -> None:
    """Changing prices strictly before t changes no label at t: labels look forward only."""
    prices = _prices()
    t = pd.Timestamp(prices["date"].unique()[10])
    changed = prices.copy()
    changed.loc[changed.date < t, "close"] *= 3.0
    a, b = make_labels(prices), make_labels(changed)
    at_or_after = a.date >= t
    pd.testing.assert_frame_equal(a[at_or_after], b[at_or_after])


def test_labels_do_not_cross_symbols() -> None:
    labels = make_labels(_prices())
    last_a = labels[labels.symbol == "A"].tail(1)
    assert last_a["fwd_ret_1d"].isna().all()


@pytest.mark.parametrize("horizon", sorted(HORIZONS))
def test_time_split_embargo_separates_label_windows(horizon: str) -> None:
    h = HORIZONS[horizon]
    dates = pd.bdate_range("2015-01-01", periods=600)
    split = time_split(dates, (0.7, 0.15, 0.15), embargo=h)
    pos = {d: i for i, d in enumerate(dates)}
    # label window of the last training date is (t, t+h]: it ends before validation starts
    assert pos[split.train[-1]] + h < pos[split.validation[0]]
    assert pos[split.validation[-1]] + h < pos[split.test[0]]
    assert split.train[-1] < split.validation[0] < split.validation[-1] < split.test[0]
    # no date in two segments, sizes close to the fractions
    assert not set(split.train) & set(split.validation) and not set(split.validation) & set(split.test)
    assert abs(len(split.train) - 420) <= 1
    assert len(split.train) + len(split.validation) + len(split.test) + 2 * h == 600


def test_time_split_rejects_bad_input() -> None:
    dates = pd.bdate_range("2015-01-01", periods=20)
    with pytest.raises(ValueError, match="sum"):
        time_split(dates, (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="too few"):
        time_split(dates, (0.7, 0.15, 0.15), embargo=10)


def test_walk_forward_windows_never_see_their_prediction_labels() -> None:
    dates = pd.bdate_range("2010-01-01", periods=1500)
    h = 21
    windows = walk_forward_schedule(dates, step=21, window=504, embargo=h)
    pos = {d: i for i, d in enumerate(dates)}
    assert pos[windows[0].predict_start] == 504 + h
    for prev, w in zip(windows, windows[1:], strict=False):
        assert pos[w.predict_start] == pos[prev.predict_end] + 1  # contiguous, no gaps
    for w in windows:
        assert pos[w.train_end] + h < pos[w.predict_start]  # label window ends before prediction
        assert pos[w.train_end] - pos[w.train_start] + 1 == 504
    assert windows[-1].predict_end == dates[-1]
    expanding = walk_forward_schedule(dates, step=63, window=0, embargo=5)
    assert all(w.train_start == dates[0] for w in expanding)
