"""Time-ordered splits with an embargo, and walk-forward schedules.

Every split is made on the sorted unique trading dates, never on rows, so all stocks of one
date fall in the same segment. Between segments lie ``embargo`` dates that belong to none:
with ``embargo >= h`` the label window (t, t+h] of the last training date ends before the
first date of the next segment (Lopez de Prado, *Advances in Financial Machine Learning*,
2018, ch. 7: purging and embargo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def _unique_dates(dates: pd.Series | pd.DatetimeIndex | np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(dates))).sort_values()


@dataclass(frozen=True)
class TimeSplit:
    """Train / validation / test date segments (each a sorted DatetimeIndex)."""

    train: pd.DatetimeIndex
    validation: pd.DatetimeIndex
    test: pd.DatetimeIndex
    embargo: int

    def segment_of(self, dates: pd.Series) -> pd.Series:
        """Label each date ``train``, ``validation``, ``test`` or ``embargo`` (same index)."""
        out = pd.Series("embargo", index=dates.index, dtype=object)
        for name in ("train", "validation", "test"):
            out[dates.isin(getattr(self, name))] = name
        return out

    def describe(self) -> dict[str, str]:
        """First and last date of each segment, as ISO strings."""
        return {
            name: f"{seg[0].date()}..{seg[-1].date()}" if len(seg) else "empty"
            for name, seg in (("train", self.train), ("validation", self.validation), ("test", self.test))
        }


def time_split(
    dates: pd.Series | pd.DatetimeIndex | np.ndarray,
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
    embargo: int = 5,
) -> TimeSplit:
    """Split trading dates into time-ordered train, validation and test segments.

    Parameters
    ----------
    dates : array-like of datetime64, shape (n_rows,)
        Dates of the dataset's rows (duplicates allowed; unique dates are split).
    fractions : tuple of 3 floats
        Shares of the unique dates for train, validation and test; must sum to 1.
    embargo : int
        Dates dropped between consecutive segments. Use at least the label horizon in
        trading days so no training label window overlaps a later segment.

    Returns
    -------
    TimeSplit

    Raises
    ------
    ValueError
        If fractions do not sum to 1, embargo is negative, or too few dates remain for each
        segment to hold at least one date.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive shares summing to 1, got {fractions}")
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0 trading days, got {embargo}")
    uniq = _unique_dates(dates)
    n = len(uniq)
    n_train = int(np.floor(fractions[0] * n))
    n_val = int(np.floor(fractions[1] * n))
    val_start = n_train + embargo
    test_start = n_train + n_val + embargo
    if n_train < 1 or val_start >= n_train + n_val or test_start >= n:
        raise ValueError(
            f"time_split: {n} unique dates are too few for fractions {fractions} with an embargo of "
            f"{embargo} dates between segments"
        )
    return TimeSplit(
        train=uniq[:n_train],
        validation=uniq[val_start : n_train + n_val],
        test=uniq[test_start:],
        embargo=embargo,
    )


@dataclass(frozen=True)
class WalkForwardWindow:
    """One walk-forward step: fit on [train_start, train_end], predict [predict_start, predict_end]."""

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    predict_start: pd.Timestamp
    predict_end: pd.Timestamp


def walk_forward_schedule(
    dates: pd.Series | pd.DatetimeIndex | np.ndarray,
    *,
    step: int = 21,
    window: int = 504,
    min_train: int | None = None,
    embargo: int = 5,
) -> list[WalkForwardWindow]:
    """Rolling (or expanding) walk-forward windows over the trading dates.

    The model of step k is fitted on the ``window`` dates ending ``embargo + 1`` dates before
    the step's first prediction date, and predicts the next ``step`` dates. With
    ``embargo >= h`` every training label window (t, t+h] ends before the first predicted date.

    Parameters
    ----------
    dates : array-like of datetime64
        Dates of the dataset's rows (duplicates allowed).
    step : int
        Retraining frequency in trading dates (default 21, about monthly).
    window : int
        Training window length in dates; 0 means expanding (all earlier dates).
    min_train : int, optional
        Dates required before the first fit; default ``window`` (or 252 when expanding).
    embargo : int
        Dates between the last training date and the first predicted date, minus one.

    Returns
    -------
    list of WalkForwardWindow
        In time order; prediction blocks are contiguous and do not overlap.

    Raises
    ------
    ValueError
        On non-positive step, negative window/embargo, or too few dates for one window.
    """
    if step < 1 or window < 0 or embargo < 0:
        raise ValueError(f"walk_forward_schedule: need step>=1, window>=0, embargo>=0; got {step}, {window}, {embargo}")
    uniq = _unique_dates(dates)
    n = len(uniq)
    min_train = min_train if min_train is not None else (window if window else 252)
    first_pred = min_train + embargo
    if first_pred >= n:
        raise ValueError(
            f"walk_forward_schedule: {n} unique dates are too few for a first training window of "
            f"{min_train} dates plus an embargo of {embargo}"
        )
    out = []
    for p in range(first_pred, n, step):
        train_end = p - embargo - 1
        train_start = max(0, train_end - window + 1) if window else 0
        out.append(WalkForwardWindow(uniq[train_start], uniq[train_end], uniq[p], uniq[min(p + step, n) - 1]))
    return out


@dataclass(frozen=True)
class Fold:
    """One purged fold: the training, validation (early stopping) and test dates."""

    train: pd.DatetimeIndex
    valid: pd.DatetimeIndex
    test: pd.DatetimeIndex


def purged_kfold(dates: pd.Series | pd.DatetimeIndex | np.ndarray, n_splits: int = 5, *, horizon: int = 5,
                 embargo: int | None = None, valid_fraction: float = 0.15) -> list[Fold]:
    """Purged and embargoed k-fold split of the unique dates.

    Parameters
    ----------
    dates : array-like of datetime64
        Row dates (duplicates allowed).
    n_splits : int
        Number of folds k (default 5); every date is in exactly one test fold.
    horizon : int
        Label horizon h in trading dates: the label of date t covers (t, t+h].
    embargo : int, optional
        Dates dropped after each test fold; default ``horizon``.
    valid_fraction : float
        Share of the remaining training dates (the latest ones) held out for early
        stopping, separated from the rest by ``horizon`` purged dates; 0 disables it.

    Returns
    -------
    list of Fold
        In test-fold time order.

    Raises
    ------
    ValueError
        If k < 2, horizon/embargo < 0, or a fold would have no training dates.
    """
    embargo = horizon if embargo is None else embargo
    if n_splits < 2 or horizon < 0 or embargo < 0:
        raise ValueError(f"purged_kfold: need n_splits>=2, horizon>=0, embargo>=0; "
                         f"got {n_splits}, {horizon}, {embargo}")
    uniq = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(dates))).sort_values()
    n = len(uniq)
    bounds = np.linspace(0, n, n_splits + 1).astype(int)
    pos = np.arange(n)
    folds = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        keep = (pos + horizon < a) | (pos > b - 1 + embargo)
        train_pos = pos[keep]
        if len(train_pos) == 0:
            raise ValueError(f"purged_kfold: {n} dates are too few for {n_splits} folds with horizon {horizon}")
        valid_pos = np.array([], dtype=int)
        if valid_fraction > 0:
            n_val = max(1, int(round(valid_fraction * len(train_pos))))
            valid_pos = train_pos[-n_val:]
            train_pos = train_pos[train_pos + horizon < valid_pos[0]]
            if len(train_pos) == 0:
                raise ValueError("purged_kfold: no training dates left before the validation segment")
        folds.append(Fold(uniq[train_pos], uniq[valid_pos], uniq[a:b]))
    return folds
