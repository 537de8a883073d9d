"""LightGBM training: a 70/15/15 time split with embargo, walk-forward, and a final refit.

The three steps share one dataset (features joined with labels):

1. **Split fit** on the train segment with early stopping on the validation segment; the
   untouched test segment gives an honest estimate, and the best iteration fixes the number
   of boosting rounds for the steps below.
2. **Walk-forward**: a model per block of ``retrain_every`` dates, fitted on the preceding
   ``train_window`` dates (label windows ending before the block), yields out-of-sample
   predictions for every date after the first window: the input of backtests.
3. **Final refit** on the latest window whose labels are known: the model that is registered
   and serves new dates.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from vfr.config import HORIZONS, Settings
from vfr.errors import StageError
from vfr.ml.evaluate import baseline_scores, evaluate_predictions
from vfr.ml.labels import label_columns
from vfr.ml.splits import (
    TimeSplit,
    WalkForwardWindow,
    time_split,
    walk_forward_schedule,
)

#: LightGBM defaults for the binary direction model (documented in docs/decisions.md).
DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "max_depth": -1,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.7,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 63,
    "verbose": -1,
}


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how.

    Parameters
    ----------
    horizon : str
        Label horizon name (``1d``, ``1w``, ``1m``); the target is ``fwd_dir_<horizon>``.
    feature_columns : tuple of str, optional
        Model inputs in order; default every feature column of the features frame.
    params : dict
        LightGBM parameters (merged over :data:`DEFAULT_LGBM_PARAMS`).
    max_rounds, early_stopping_rounds : int
        Boosting rounds cap and patience on the validation segment.
    fractions : tuple of 3 floats
        Train / validation / test shares of the dates.
    retrain_every, train_window : int
        Walk-forward step and window in trading dates (window 0 = expanding).
    date_stride : int
        Use every ``date_stride``-th date for fitting inside each window (neighbouring dates'
        h-day labels overlap, so this thins near-duplicate rows; 1 = all dates).
    seed : int
        Random seed (LightGBM ``seed``).
    """

    horizon: str = "1w"
    feature_columns: tuple[str, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    max_rounds: int = 200
    early_stopping_rounds: int = 30
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    retrain_every: int = 21
    train_window: int = 504
    date_stride: int = 2
    seed: int = 42
    num_threads: int = 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainConfig:
        """Config from the settings' horizon, walk-forward step/window and seed."""
        base = {"horizon": settings.horizon, "retrain_every": settings.retrain_every,
                "train_window": settings.train_window, "seed": settings.seed}
        return cls(**(base | overrides))

    @property
    def horizon_days(self) -> int:
        return HORIZONS[self.horizon]

    @property
    def embargo(self) -> int:
        """Dates between segments: the label horizon, so label windows never cross."""
        return self.horizon_days

    def lgbm_params(self) -> dict[str, Any]:
        return DEFAULT_LGBM_PARAMS | {"seed": self.seed, "num_threads": self.num_threads} | self.params


@dataclass
class TrainResult:
    """Everything one training run produced (nothing is written anywhere by training)."""

    model: lgb.Booster
    config: TrainConfig
    feature_columns: list[str]
    split: TimeSplit
    best_iteration: int
    split_metrics: dict[str, dict[str, float]]
    walk_forward_metrics: dict[str, dict[str, float]]
    oos_predictions: pd.DataFrame
    feature_importance: pd.Series
    training_window: tuple[pd.Timestamp, pd.Timestamp]
    data_fingerprint: str
    windows: list[WalkForwardWindow]

    @property
    def label(self) -> str:
        return label_columns(self.config.horizon)[2]


def build_dataset(features: pd.DataFrame, labels: pd.DataFrame, horizon: str, *, validate: bool = True) -> pd.DataFrame:
    """Join features with the labels of one horizon, sorted by date then symbol.

    Parameters
    ----------
    features : DataFrame
        Canonical features frame (``symbol``, ``date``, feature columns).
    labels : DataFrame
        Output of :func:`vfr.ml.make_labels`.
    horizon : str
        Which horizon's labels to keep.
    validate : bool
        Require one row per (date, symbol) on both sides (pandas ``MergeError`` otherwise);
        the quality gates pass False so that duplicates reach their temporal-integrity gate
        and are reported.

    Returns
    -------
    DataFrame of shape (n_rows, n_features + 5)
        Features plus ``fwd_ret_<h>``, ``fwd_excess_<h>``, ``fwd_dir_<h>``; rows without a
        known label are kept (their label is NaN) so the newest dates can still be scored.

    Raises
    ------
    StageError
        If the two frames share no (date, symbol) rows.
    """
    order, keyed = _dataset_order(features, labels, horizon, validate=validate)
    if order is None:  # duplicated label keys (validate=False): the plain, copying way
        data = features.merge(labels[["symbol", "date", *label_columns(horizon)]], on=["symbol", "date"],
                              how="left")
        return data.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
    data = features.take(order).reset_index(drop=True)
    for c in label_columns(horizon):
        data[c] = keyed[c].to_numpy()
    return data


def _dataset_order(features: pd.DataFrame, labels: pd.DataFrame, horizon: str, *,
                   validate: bool = True) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Where each row of :func:`build_dataset` comes from, without copying the features.

    Returns
    -------
    order : ndarray of int of shape (n_rows,), or None
        Positions in ``features`` of the dataset's rows, in (date, symbol) order; None when
        the labels repeat a key (then only a full merge can say which rows).
    keyed : DataFrame of shape (n_rows, 5)
        ``symbol``, ``date`` and the horizon's label columns, in that order.

    Raises
    ------
    StageError
        If no row has a known label.
    pandas.errors.MergeError
        If ``validate`` and a (symbol, date) pair repeats on either side.
    """
    cols = ["symbol", "date", *label_columns(horizon)]
    keys = features[["symbol", "date"]].reset_index(drop=True)
    joined = keys.merge(labels[cols], on=["symbol", "date"], how="left", sort=False,
                        validate="one_to_one" if validate else None)
    if joined[cols[-1]].notna().sum() == 0:
        raise StageError("build_dataset: no row has a known label; are prices and features from the same store?")
    if len(joined) != len(keys):
        return None, joined
    order = np.lexsort((joined["symbol"].to_numpy(), joined["date"].to_numpy()))
    return order, joined.take(order).reset_index(drop=True)


def data_fingerprint(data: pd.DataFrame, columns: list[str], rows: np.ndarray | None = None) -> str:
    """SHA-256 of the rows and values of ``columns`` (plus date and symbol): the data's identity.

    Parameters
    ----------
    data : DataFrame
    columns : list of str
    rows : ndarray of bool of shape (len(data),) or of int positions, optional
        Only these rows, in this order (default all). Columns are hashed one at a time
        (pandas ``hash_pandas_object`` of each), so no copy of the frame is made.
    """
    return _fingerprint(columns, (data[c] if rows is None else data[c].iloc[rows]
                                  for c in ["date", "symbol", *columns]))


def _fingerprint(columns: list[str], values: Iterable[pd.Series]) -> str:
    """SHA-256 of the column names and of each Series' values (date, symbol, then ``columns``)."""
    h = hashlib.sha256()
    h.update(",".join(columns).encode())
    for v in values:
        h.update(pd.util.hash_pandas_object(v, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _date_codes(dates: pd.Series) -> tuple[np.ndarray, pd.DatetimeIndex]:
    codes, uniq = pd.factorize(dates, sort=True)
    return codes, pd.DatetimeIndex(uniq)


def _fit(params: dict[str, Any], X: np.ndarray, y: np.ndarray, rounds: int, names: list[str],
         valid: tuple[np.ndarray, np.ndarray] | None = None, patience: int = 0) -> lgb.Booster:
    train_set = lgb.Dataset(X, y, feature_name=names, free_raw_data=True)
    kwargs: dict[str, Any] = {}
    if valid is not None:
        valid_set = lgb.Dataset(valid[0], valid[1], reference=train_set)
        kwargs = {"valid_sets": [valid_set], "callbacks": [lgb.early_stopping(patience, verbose=False)]}
    return lgb.train(params | {"metric": "binary_logloss"}, train_set, num_boost_round=rounds, **kwargs)


def fit_window(*, X_train: np.ndarray, y_train: np.ndarray, date_codes: np.ndarray, X_predict: np.ndarray,
               params: dict[str, Any], rounds: int, names: list[str], date_stride: int, k: int,
               train_rows: tuple[int, int], predict_rows: tuple[int, int]) -> np.ndarray | None:
    """Fit walk-forward window ``k`` and predict its block: one independent task.

    :func:`train` calls it for every window, in this process or as Dask tasks (the large
    arrays are sent to each worker once), so both paths compute the same predictions.

    Parameters
    ----------
    X_train : ndarray of shape (n_labelled, n_features), float32
        Features of the labelled rows, sorted by date.
    y_train : ndarray of shape (n_labelled,)
        Their binary labels.
    date_codes : ndarray of shape (n_labelled,)
        Date index of each labelled row (for thinning every ``date_stride``-th date).
    X_predict : ndarray of shape (n_rows, n_features)
        Features of every row (labelled or not), sorted by date.
    params, rounds, names
        LightGBM parameters, boosting rounds and feature names.
    date_stride : int
    k : int
        Window number (unused in the fit; it names the task).
    train_rows, predict_rows : (int, int)
        Half-open row ranges of the window's training rows in ``X_train`` (label windows end
        before the prediction block) and of its prediction block in ``X_predict``.

    Returns
    -------
    ndarray of shape (predict_rows[1] - predict_rows[0],) or None
        Probabilities for the block; None when the window has no rows, one class only, or an
        empty block.
    """
    rows = np.arange(*train_rows)
    rows = rows[date_codes[rows] % date_stride == 0]
    y = y_train[rows]
    p_lo, p_hi = predict_rows
    if not len(rows) or len(np.unique(y)) != 2 or p_hi <= p_lo:
        return None
    model = _fit(params, X_train[rows], y, rounds, names)
    return model.predict(X_predict[p_lo:p_hi])


def train(features: pd.DataFrame, labels: pd.DataFrame, config: TrainConfig | None = None,
          progress: Callable[[int], None] | None = None, client: Any = None) -> TrainResult:
    """Train the direction model: split fit, walk-forward predictions and final refit.

    Parameters
    ----------
    features : DataFrame of shape (n_rows, 2 + n_features)
        Canonical features frame.
    labels : DataFrame
        Output of :func:`vfr.ml.make_labels` over the same prices.
    config : TrainConfig, optional
    progress : callable, optional
        Called with 1 after each walk-forward fit (for a progress bar).
    client : distributed.Client, optional
        Run the walk-forward fits (:func:`fit_window`) as Dask tasks on this cluster; the
        predictions equal the in-process ones (LightGBM is deterministic for a seed). The
        split fit and the final refit stay here.

    Returns
    -------
    TrainResult

    Raises
    ------
    StageError
        If the data are too short for the split or the walk-forward schedule, or a label is
        constant on the training segment.
    """
    config = config or TrainConfig()
    ret_col, exc_col, label = label_columns(config.horizon)
    feature_cols = list(config.feature_columns or [c for c in features.columns if c not in ("symbol", "date")])
    missing = sorted(set(feature_cols) - set(features.columns))
    if missing:
        raise StageError(f"train: feature columns not in the features frame: {missing}")
    # The dataset of build_dataset without its copy of the features: the keys and labels in
    # (date, symbol) order, and one float32 matrix of every row's features taken column by
    # column in that order (for prediction); the labelled rows' part of it is a view when they
    # come first, as they do when only the newest dates lack a label.
    order, data = _dataset_order(features, labels, config.horizon)
    known = data[label].notna().to_numpy()
    fingerprint = _fingerprint([*feature_cols, label], itertools.chain(
        (features[c].iloc[order[known]] for c in ["date", "symbol", *feature_cols]), [data[label][known]]))
    X_data = np.empty((len(data), len(feature_cols)), dtype=np.float32)
    for j, c in enumerate(feature_cols):
        X_data[:, j] = features[c].to_numpy(dtype=np.float32, na_value=np.nan)[order]
    if "ret_20d" in features.columns:
        data["ret_20d"] = features["ret_20d"].to_numpy()[order]
    labelled = data[known].reset_index(drop=True)
    params = config.lgbm_params()
    n_known = int(known.sum())
    X_all = X_data[:n_known] if known[:n_known].all() else X_data[known]
    y_all = labelled[label].to_numpy(dtype=np.float32)
    codes, uniq = _date_codes(labelled["date"])

    # 1. split fit with early stopping on validation; test untouched until scoring.
    try:
        split = time_split(uniq, config.fractions, embargo=config.embargo)
    except ValueError as exc:
        raise StageError(f"train: {exc}") from exc
    seg = np.searchsorted(uniq, split.train[-1], side="right"), np.searchsorted(uniq, split.validation[0]), \
        np.searchsorted(uniq, split.validation[-1], side="right"), np.searchsorted(uniq, split.test[0])
    tr = (codes < seg[0]) & (codes % config.date_stride == 0)
    va = (codes >= seg[1]) & (codes < seg[2])
    te = codes >= seg[3]
    if len(np.unique(y_all[tr])) < 2:
        raise StageError("train: the label is constant on the training segment; nothing to learn")
    split_model = _fit(params, X_all[tr], y_all[tr], config.max_rounds, feature_cols,
                       valid=(X_all[va], y_all[va]), patience=config.early_stopping_rounds)
    best_iteration = max(1, split_model.best_iteration or config.max_rounds)
    test_frame = labelled.loc[te, ["date", "symbol", "ret_20d", ret_col, exc_col, label]].copy() \
        if "ret_20d" in labelled.columns else labelled.loc[te, ["date", "symbol", ret_col, exc_col, label]].copy()
    test_frame["prob"] = split_model.predict(X_all[te], num_iteration=best_iteration)
    split_metrics = _with_baselines(test_frame, label, exc_col, config.horizon_days)

    # 2. walk-forward out-of-sample predictions for every date after the first window.
    _, all_uniq = _date_codes(data["date"])
    try:
        windows = walk_forward_schedule(all_uniq, step=config.retrain_every, window=config.train_window,
                                        embargo=config.embargo)
    except ValueError as exc:
        raise StageError(f"train: {exc}") from exc
    lab_dates = labelled["date"].to_numpy()
    data_dates = data["date"].to_numpy()
    grid = []
    for k, w in enumerate(windows):
        grid.append({"k": k,
                     "train_rows": (int(np.searchsorted(lab_dates, np.datetime64(w.train_start), side="left")),
                                    int(np.searchsorted(lab_dates, np.datetime64(w.train_end), side="right"))),
                     "predict_rows": (int(np.searchsorted(data_dates, np.datetime64(w.predict_start), side="left")),
                                      int(np.searchsorted(data_dates, np.datetime64(w.predict_end), side="right")))})
    shared = {"X_train": X_all, "y_train": y_all, "date_codes": codes, "X_predict": X_data, "params": params,
              "rounds": best_iteration, "names": feature_cols, "date_stride": config.date_stride}
    if client is None:
        blocks = []
        for task in grid:
            blocks.append(fit_window(**shared, **task))
            if progress is not None:
                progress(1)
    else:
        from vfr.distributed.tasks import sweep

        blocks = sweep(fit_window, shared, grid, client=client, progress=progress)
    preds = np.full(len(data), np.nan)
    fold = np.full(len(data), -1, dtype=np.int32)
    for task, block in zip(grid, blocks, strict=True):
        if block is not None:
            p_lo, p_hi = task["predict_rows"]
            preds[p_lo:p_hi] = block
            fold[p_lo:p_hi] = task["k"]
    oos = data.loc[:, ["date", "symbol", ret_col, exc_col, label] + (["ret_20d"] if "ret_20d" in data else [])].copy()
    oos["prob"] = preds
    oos["fold"] = fold
    oos = oos[oos["fold"] >= 0].reset_index(drop=True)
    wf_metrics = _with_baselines(oos[oos[label].notna()], label, exc_col, config.horizon_days)

    # 3. final refit on the latest window with known labels.
    last = len(uniq) - 1
    first = max(0, last - config.train_window + 1) if config.train_window else 0
    final_rows = (codes >= first) & ((last - codes) % config.date_stride == 0)
    final = _fit(params, X_all[final_rows], y_all[final_rows], best_iteration, feature_cols)
    importance = pd.Series(final.feature_importance("gain"), index=feature_cols, name="gain").sort_values(ascending=False)
    return TrainResult(
        model=final, config=config, feature_columns=feature_cols, split=split, best_iteration=best_iteration,
        split_metrics=split_metrics, walk_forward_metrics=wf_metrics,
        oos_predictions=oos.drop(columns=["ret_20d"], errors="ignore"),
        feature_importance=importance, training_window=(uniq[first], uniq[last]),
        data_fingerprint=fingerprint, windows=windows,
    )


def _with_baselines(frame: pd.DataFrame, label: str, fwd: str, horizon_days: int) -> dict[str, dict[str, float]]:
    """Metrics of the model's ``prob`` and of the two baselines on the same rows."""
    out = {"model": evaluate_predictions(frame, score="prob", label=label, fwd_return=fwd, horizon_days=horizon_days)}
    if "ret_20d" in frame.columns:
        for name, score in baseline_scores(frame).items():
            out[name] = evaluate_predictions(frame.assign(prob=score), score="prob", label=label, fwd_return=fwd,
                                             horizon_days=horizon_days)
    return out
