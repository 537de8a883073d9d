"""Training through the model interface: a 70/15/15 time split with embargo, walk-forward, a final refit.

Any algorithm of the model zoo (:func:`vfr.ml.models.make_model`; ``TrainConfig.algorithm``)
or an ensemble trains, registers and serves the same way. The three steps share one
:class:`vfr.ml.dataset.Dataset` (features joined with labels):

1. **Split fit** on the train segment with early stopping on the validation segment; the
   untouched test segment gives an honest estimate, and the best iteration fixes the number
   of boosting rounds for the steps below (:meth:`Model.refit_params`).
2. **Walk-forward**: a model per block of ``retrain_every`` dates, fitted on the preceding
   ``train_window`` dates (label windows ending before the block), yields out-of-sample
   predictions for every date after the first window: the input of backtests. Its number of
   boosting rounds is chosen inside the window (early stopping on the window's latest
   ``window_validation`` share of dates, after an embargo), then the model is refitted on the
   whole window: no window's hyper-parameters see a date after its training window (the split
   fit's rounds, chosen on the whole history's validation segment, would).
3. **Final refit** on the latest window whose labels are known: the model that is registered
   and serves new dates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vfr.config import HORIZONS, Settings
from vfr.errors import StageError
from vfr.metrics import HorizonError, parse_horizon
from vfr.ml.dataset import TARGETS, Dataset, build_dataset, data_fingerprint  # noqa: F401 - public re-exports
from vfr.ml.evaluate import baseline_scores, evaluate_predictions
from vfr.ml.labels import label_columns
from vfr.ml.models import ALGORITHMS, Ensemble, Model, ModelError, make_model
from vfr.ml.splits import TimeSplit, WalkForwardWindow, walk_forward_schedule


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how.

    Parameters
    ----------
    horizon : str
        Label horizon name (``1d``, ``1w``, ``1m``); the target is ``fwd_dir_<horizon>``
        (classification) or ``fwd_excess_<horizon>`` (regression).
    algorithm : str
        One of :data:`vfr.ml.models.ALGORITHMS` (default ``lightgbm``).
    objective : {"classification", "regression"}
        The model zoo's objective; predictions are P(up) or its monotone pseudo-probability.
    target : {"auto", "direction", "excess", "excess_rank"}
        What is learned (:meth:`vfr.ml.Dataset.target`): ``auto`` is ``direction`` for
        classification and ``excess`` for regression; ``excess_rank`` (regression) learns the
        day's cross-sectional rank of the excess return.
    feature_columns : tuple of str, optional
        Model inputs in order; default every feature column of the features frame.
    params : dict
        The algorithm's hyper-parameters, merged over its defaults (``Model.defaults``).
    max_rounds, early_stopping_rounds : int
        Boosting rounds cap and patience on the validation segment (gradient boosting only:
        they set ``n_estimators`` and ``early_stopping_rounds`` unless ``params`` does).
    fractions : tuple of 3 floats
        Train / validation / test shares of the dates.
    retrain_every, train_window : int
        Walk-forward step and window in trading dates (window 0 = expanding).
    date_stride : int
        Use every ``date_stride``-th date for fitting inside each window (neighbouring dates'
        h-day labels overlap, so this thins near-duplicate rows; 1 = all dates).
    window_validation : float
        Share (0..0.5) of each walk-forward window's dates, its latest, on which an iterative
        model's rounds are early-stopped before the refit on the whole window; 0 takes the split
        fit's rounds for every window (the recipe before 2026-12-01: a hyper-parameter chosen on
        dates after the early windows).
    bins_every : int
        Consecutive walk-forward windows that share one binning of their rows (models that
        reuse bins: LightGBM). The bin boundaries are found on the first window's training rows
        (at most 200,000 of them), so a later window of the group is binned with boundaries of
        an earlier past, never of its future; the matrix is binned once per group instead of
        twice per window. 1 = boundaries of each window's own training rows.
    seed : int
        Random seed.
    seeds : int
        Models fitted per walk-forward window and for the final model, with seeds ``seed``,
        ``seed + 1``, ...; their probabilities are averaged (an ensemble over seeds; the final
        model is then a voting :class:`vfr.ml.models.Ensemble`). Each member early-stops its
        own rounds; LightGBM members share their group's binning. 1 = one model (the default).
    shared_rounds : bool
        With ``seeds > 1`` and ``window_validation > 0``: the members of a walk-forward window
        take the early-stopped rounds of the first member's probe instead of each running its
        own probe (one probe per window instead of ``seeds``; the members still differ in their
        row and column subsampling). False = a probe per member.
    num_threads : int
        Threads per fit (0 = the library's default, all cores).

    Raises
    ------
    ModelError
        On an unknown algorithm or objective.
    """

    horizon: str = "1w"
    algorithm: str = "lightgbm"
    objective: str = "classification"
    target: str = "auto"
    feature_columns: tuple[str, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    max_rounds: int = 200
    early_stopping_rounds: int = 30
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    retrain_every: int = 63
    train_window: int = 0
    date_stride: int = 2
    window_validation: float = 0.15
    bins_every: int = 4
    seed: int = 42
    seeds: int = 1
    shared_rounds: bool = False
    num_threads: int = 0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ModelError(f"TrainConfig.algorithm: unknown algorithm {self.algorithm!r}; "
                             f"expected one of {ALGORITHMS}")
        if self.objective not in ("classification", "regression"):
            raise ModelError(f"TrainConfig.objective must be classification or regression, got {self.objective!r}")
        if self.target not in ("auto", *TARGETS) or (
                self.target != "auto" and (self.target == "direction") != (self.objective == "classification")):
            raise ModelError(f"TrainConfig.target {self.target!r} does not fit objective {self.objective!r}: "
                             "classification takes 'direction', regression 'excess' or 'excess_rank'")
        try:  # any spelling of the one horizon vocabulary ("1w", 5, "5d"), kept by its canonical name
            name = parse_horizon(self.horizon).name
        except HorizonError as exc:
            raise ModelError(f"TrainConfig.horizon: {exc}") from exc
        if name not in HORIZONS:
            raise ModelError(f"TrainConfig.horizon: no labels for horizon {self.horizon!r}; "
                             f"expected one of {sorted(HORIZONS)}")
        object.__setattr__(self, "horizon", name)
        if self.seeds < 1:
            raise ModelError(f"TrainConfig.seeds must be at least 1, got {self.seeds}")
        if self.bins_every < 1:
            raise ModelError(f"TrainConfig.bins_every must be at least 1, got {self.bins_every}")
        if not 0.0 <= self.window_validation <= 0.5:
            raise ModelError(f"TrainConfig.window_validation must be in [0, 0.5], got {self.window_validation}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainConfig:
        """Config from the settings' horizon, algorithm, objective, target, walk-forward step/window, seeds
        and shared rounds."""
        base: dict[str, Any] = {"horizon": settings.horizon, "algorithm": settings.train_algorithm,
                                "objective": settings.train_objective, "target": settings.train_target,
                                "retrain_every": settings.retrain_every, "train_window": settings.train_window,
                                "seed": settings.seed, "seeds": settings.train_seeds,
                                "shared_rounds": settings.train_shared_rounds}
        return cls(**(base | overrides))

    @property
    def horizon_days(self) -> int:
        return HORIZONS[self.horizon]

    @property
    def embargo(self) -> int:
        """Dates between segments: the label horizon, so label windows never cross."""
        return self.horizon_days

    def model_params(self) -> dict[str, Any]:
        """The algorithm's parameters: its defaults, the rounds/patience of this config, ``params``."""
        model = make_model(self.algorithm, self.objective)
        rounds = {"n_estimators": self.max_rounds, "early_stopping_rounds": self.early_stopping_rounds} \
            if model.iterative else {}
        return model.params | rounds | self.params

    def make_model(self, params: dict[str, Any] | None = None, *, member: int = 0) -> Model:
        """An unfitted model of this config (``params`` default :meth:`model_params`); ``member``
        k of the ensemble over seeds gets seed ``seed + k``."""
        return make_model(self.algorithm, self.objective, self.model_params() if params is None else params,
                          seed=self.seed + member, num_threads=self.num_threads)


@dataclass
class TrainResult:
    """Everything one training run produced (nothing is written anywhere by training).

    ``model`` is the final refit, a :class:`vfr.ml.models.Model` of ``config.algorithm``.
    """

    model: Model
    config: TrainConfig
    feature_columns: list[str]
    split: TimeSplit
    best_iteration: int | None
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


def fit_windows(*, dataset: Dataset, labelled: Dataset, y_train: np.ndarray, date_codes: np.ndarray,
                config: TrainConfig, params: dict[str, Any], k: list[int], train_rows: list[tuple[int, int]],
                predict_rows: list[tuple[int, int]]) -> list[np.ndarray | None]:
    """Fit a group of consecutive walk-forward windows and predict their blocks: one independent task.

    :func:`train` calls it for every group of ``config.bins_every`` windows, in this process
    or as Dask tasks (the datasets are sent to each worker once), so both paths compute the
    same predictions. For a model that reuses bins (LightGBM) the rows of the group's windows
    are binned once, with boundaries found on the first window's training rows
    (:meth:`LightGBMModel.bin_rows`), and every fit of the group (early-stopping probe and
    refit, :func:`fit_window`) takes its rows from that matrix.

    Parameters
    ----------
    dataset, labelled, y_train, date_codes, config, params
        As :func:`fit_window`.
    k, train_rows, predict_rows : lists, one item per window of the group
        As :func:`fit_window`, in date order.

    Returns
    -------
    list of (ndarray or None)
        :func:`fit_window`'s result for each window.
    """
    binned = None
    if config.make_model(params).reuses_bins and train_rows:
        lo, hi = min(r[0] for r in train_rows), max(r[1] for r in train_rows)
        first = _stride(np.arange(*train_rows[0]), date_codes, config)
        if hi > lo and len(first):
            binner = config.make_model(params)
            binned = lo, binner.bin_rows(labelled.X[lo:hi], y_train[lo:hi], labelled.feature_columns,
                                         bins_from=first - lo)
    return [fit_window(dataset=dataset, labelled=labelled, y_train=y_train, date_codes=date_codes, config=config,
                       params=params, k=kk, train_rows=tr, predict_rows=pr, binned=binned)
            for kk, tr, pr in zip(k, train_rows, predict_rows, strict=True)]


def fit_window(*, dataset: Dataset, labelled: Dataset, y_train: np.ndarray, date_codes: np.ndarray,
               config: TrainConfig, params: dict[str, Any], k: int, train_rows: tuple[int, int],
               predict_rows: tuple[int, int], binned: tuple[int, Any] | None = None) -> np.ndarray | None:
    """Fit walk-forward window ``k`` and predict its block.

    Parameters
    ----------
    dataset : Dataset
        Every row (labelled or not), sorted by date: the prediction rows.
    labelled : Dataset
        The labelled rows, sorted by date: the training rows.
    y_train : ndarray of shape (len(labelled),)
        Their target (:meth:`Dataset.target` of ``config``), computed once for every window.
    date_codes : ndarray of shape (len(labelled),)
        Date index of each labelled row (for thinning every ``config.date_stride``-th date).
    config : TrainConfig
        Algorithm, objective, seed, threads and date stride.
    params : dict
        The model's parameters (rounds fixed by the split fit: :meth:`Model.refit_params`).
    k : int
        Window number (unused in the fit; it names the task).
    train_rows, predict_rows : (int, int)
        Half-open row ranges of the window's training rows in ``labelled`` (label windows end
        before the prediction block) and of its prediction block in ``dataset``.
    binned : (int, BinnedRows), optional
        Rows ``offset:`` of ``labelled`` binned once (:func:`fit_windows`): the fits take their
        rows from it instead of binning their own.

    Returns
    -------
    ndarray of shape (predict_rows[1] - predict_rows[0],) or None
        P(up) (or the regression's pseudo-probability) for the block; None when the window has
        no rows, one class only (classification), or an empty block.
    """
    window = np.arange(*train_rows)
    rows = _stride(window, date_codes, config)
    y = y_train[rows]
    p_lo, p_hi = predict_rows
    if not len(rows) or p_hi <= p_lo or (config.objective == "classification" and len(np.unique(y)) != 2):
        return None
    probs = []
    rounds = None
    for member in range(config.seeds):
        model = config.make_model(params, member=member)
        if config.window_validation > 0 and model.iterative:
            if member == 0 or not config.shared_rounds:
                rounds = window_rounds(labelled, y_train, date_codes, window, config, binned=binned, member=member)
            model = config.make_model(rounds or params, member=member)
        _fit_rows(model, labelled, y_train, rows, binned=binned)
        probs.append(model.predict_proba(_inputs(dataset, slice(p_lo, p_hi), model)))
    return probs[0] if len(probs) == 1 else np.mean(probs, axis=0)


def window_rounds(labelled: Dataset, y_train: np.ndarray, date_codes: np.ndarray, window: np.ndarray,
                  config: TrainConfig, *, binned: tuple[int, Any] | None = None,
                  member: int = 0) -> dict[str, Any] | None:
    """Parameters with the boosting rounds early-stopped inside one walk-forward window.

    The window's latest ``config.window_validation`` share of dates is the validation set; the
    model is fitted on the dates before it, less an embargo of ``config.embargo`` dates (so no
    training label window reaches a validation date), with every ``date_stride``-th date, and
    stops when the validation loss has not improved for ``early_stopping_rounds``.

    Parameters
    ----------
    labelled : Dataset
        The labelled rows, sorted by date.
    y_train : ndarray of shape (len(labelled),)
        Their target.
    date_codes : ndarray of shape (len(labelled),)
        Date index of each labelled row.
    window : ndarray of int
        The window's rows (indices into ``labelled``), in date order.
    config : TrainConfig
    binned : (int, BinnedRows), optional
        As :func:`fit_window`.
    member : int
        Member of the ensemble over seeds (:meth:`TrainConfig.make_model`).

    Returns
    -------
    dict or None
        :meth:`Model.refit_params` of the early-stopped fit; None when the window is too short to
        hold a validation part (or one side has one class only, for classification).
    """
    codes = np.unique(date_codes[window])
    n_valid = int(round(len(codes) * config.window_validation))
    if n_valid < 1 or len(codes) - n_valid - config.embargo < 2:
        return None
    first_valid = codes[len(codes) - n_valid]
    fit = _stride(window[date_codes[window] < first_valid - config.embargo], date_codes, config)
    valid = window[date_codes[window] >= first_valid]
    if config.objective == "classification" and (len(np.unique(y_train[fit])) != 2
                                                 or len(np.unique(y_train[valid])) != 2):
        return None
    probe = _fit_rows(config.make_model(member=member), labelled, y_train, fit, valid, binned=binned)
    return probe.refit_params() if probe.best_iteration else None


def _stride(rows: np.ndarray, date_codes: np.ndarray, config: TrainConfig) -> np.ndarray:
    """The rows on every ``config.date_stride``-th date (the dates fitted on)."""
    return rows[date_codes[rows] % config.date_stride == 0]


def _fit_rows(model: Model, labelled: Dataset, y_train: np.ndarray, rows: np.ndarray,
              valid: np.ndarray | None = None, *, binned: tuple[int, Any] | None = None) -> Model:
    """Fit ``model`` on ``rows`` of ``labelled`` (early stopping on ``valid``), from ``binned`` when given."""
    if binned is not None:
        offset, matrix = binned
        return model.fit_binned(matrix, rows - offset, valid_rows=None if valid is None else valid - offset)
    return model.fit(_inputs(labelled, rows, model), y_train[rows],
                     valid=None if valid is None else (_inputs(labelled, valid, model), y_train[valid]))


def _inputs(data: Dataset, rows: slice | np.ndarray, model: Model) -> pd.DataFrame:
    """The model's input frame for ``rows`` (ids added for models that read them)."""
    return data.features(rows, with_ids=model.uses_ids)


def train(features: pd.DataFrame, labels: pd.DataFrame, config: TrainConfig | None = None,
          progress: Callable[[int], None] | None = None, client: Any = None) -> TrainResult:
    """Train the model of ``config``: split fit, walk-forward predictions and final refit.

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
        predictions equal the in-process ones (the libraries are deterministic for a seed).
        The split fit and the final refit stay here.

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
    dataset = Dataset.from_frames(features, labels, config.horizon, config.feature_columns)
    return train_dataset(dataset, config, progress=progress, client=client)


def train_dataset(dataset: Dataset, config: TrainConfig, *, progress: Callable[[int], None] | None = None,
                  client: Any = None) -> TrainResult:
    """:func:`train` on a prepared :class:`Dataset` (its horizon and features are used)."""
    if dataset.horizon != config.horizon:
        raise StageError(f"train: the dataset's horizon {dataset.horizon!r} is not the config's {config.horizon!r}")
    ret_col, exc_col, label = label_columns(config.horizon)
    feature_cols = dataset.feature_columns
    labelled = dataset.labelled()
    y_all = labelled.target(config.objective, kind=config.target)
    codes, uniq = labelled.date_codes()

    # 1. split fit with early stopping on validation; test untouched until scoring.
    split = labelled.time_split(config.fractions, embargo=config.embargo)
    seg = np.searchsorted(uniq, split.train[-1], side="right"), np.searchsorted(uniq, split.validation[0]), \
        np.searchsorted(uniq, split.validation[-1], side="right"), np.searchsorted(uniq, split.test[0])
    tr = (codes < seg[0]) & (codes % config.date_stride == 0)
    va = (codes >= seg[1]) & (codes < seg[2])
    te = codes >= seg[3]
    if config.objective == "classification" and len(np.unique(y_all[tr])) < 2:
        raise StageError("train: the label is constant on the training segment; nothing to learn")
    split_model = config.make_model()
    try:
        split_model.fit(_inputs(labelled, tr, split_model), y_all[tr],
                        valid=(_inputs(labelled, va, split_model), y_all[va]))
    except ModelError as exc:
        raise StageError(f"train: {exc}") from exc
    best_iteration = max(1, split_model.best_iteration) if split_model.best_iteration else None
    refit = split_model.refit_params()
    keep = ["date", "symbol", *(["ret_20d"] if "ret_20d" in labelled.keys else []), ret_col, exc_col, label]
    test_frame = labelled.keys.loc[te, keep].copy()
    test_frame["prob"] = split_model.predict_proba(_inputs(labelled, te, split_model))
    split_metrics = _with_baselines(test_frame, label, exc_col, config.horizon_days)

    # 2. walk-forward out-of-sample predictions for every date after the first window.
    try:
        windows = walk_forward_schedule(dataset.dates(), step=config.retrain_every, window=config.train_window,
                                        embargo=config.embargo)
    except ValueError as exc:
        raise StageError(f"train: {exc}") from exc
    grid: list[dict[str, Any]] = [
        {"k": k, "train_rows": labelled.rows_between(w.train_start, w.train_end),
         "predict_rows": dataset.rows_between(w.predict_start, w.predict_end)} for k, w in enumerate(windows)]
    shared: dict[str, Any] = {"dataset": dataset, "labelled": labelled, "y_train": y_all, "date_codes": codes,
                              "config": config, "params": refit}
    size = config.bins_every if config.make_model(refit).reuses_bins else 1
    groups: list[dict[str, Any]] = [
        {key: [task[key] for task in grid[i:i + size]] for key in ("k", "train_rows", "predict_rows")}
        for i in range(0, len(grid), size)]
    if client is None:
        blocks = []
        for group in groups:
            blocks.extend(fit_windows(**shared, **group))
            if progress is not None:
                progress(len(group["k"]))
    else:
        from vfr.distributed.tasks import sweep

        left = [len(grid)]

        def advance(n: int) -> None:  # a finished group: its size (the last one may be shorter)
            step = min(n * size, left[0])
            left[0] -= step
            if progress is not None and step:
                progress(step)

        blocks = [block for group in sweep(fit_windows, shared, groups, client=client, progress=advance)
                  for block in group]
    preds = np.full(len(dataset), np.nan)
    fold = np.full(len(dataset), -1, dtype=np.int32)
    for task, block in zip(grid, blocks, strict=True):
        if block is not None:
            p_lo, p_hi = task["predict_rows"]
            preds[p_lo:p_hi] = block
            fold[p_lo:p_hi] = task["k"]
    data = dataset.keys
    oos = data.loc[:, ["date", "symbol", ret_col, exc_col, label] + (["ret_20d"] if "ret_20d" in data else [])].copy()
    oos["prob"] = preds
    oos["fold"] = fold
    oos = oos[oos["fold"] >= 0].reset_index(drop=True)
    wf_metrics = _with_baselines(oos[oos[label].notna()], label, exc_col, config.horizon_days)

    # 3. final refit on the latest window with known labels.
    last = len(uniq) - 1
    first = max(0, last - config.train_window + 1) if config.train_window else 0
    final_rows = (codes >= first) & ((last - codes) % config.date_stride == 0)
    members = []
    for member in range(config.seeds):
        one = config.make_model(refit, member=member)
        members.append(one.fit(_inputs(labelled, final_rows, one), y_all[final_rows]))
    final = members[0] if len(members) == 1 else Ensemble(
        members, "voting", names=[f"seed{config.seed + k}" for k in range(len(members))],
        num_threads=config.num_threads)
    importance = final.feature_importances().rename("gain")
    return TrainResult(
        model=final, config=config, feature_columns=feature_cols, split=split, best_iteration=best_iteration,
        split_metrics=split_metrics, walk_forward_metrics=wf_metrics,
        oos_predictions=oos.drop(columns=["ret_20d"], errors="ignore"),
        feature_importance=importance, training_window=(uniq[first], uniq[last]),
        data_fingerprint=dataset.fingerprint, windows=windows,
    )


def _with_baselines(frame: pd.DataFrame, label: str, fwd: str, horizon_days: int) -> dict[str, dict[str, float]]:
    """Metrics of the model's ``prob`` and of the two baselines on the same rows."""
    out = {"model": evaluate_predictions(frame, score="prob", label=label, fwd_return=fwd, horizon_days=horizon_days)}
    if "ret_20d" in frame.columns:
        for name, score in baseline_scores(frame).items():
            out[name] = evaluate_predictions(frame.assign(prob=score), score="prob", label=label, fwd_return=fwd,
                                             horizon_days=horizon_days)
    return out


#: The LightGBM model's defaults (``LightGBMModel.defaults``) under LightGBM's native names, for
#: callers of ``lightgbm.train`` or Dask's ``DaskLGBMClassifier`` (documented in docs/decisions.md).
DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "max_depth": -1, "min_data_in_leaf": 200,
    "feature_fraction": 0.8, "bagging_fraction": 0.7, "bagging_freq": 1, "lambda_l2": 1.0, "max_bin": 63,
    "verbose": -1,
}
