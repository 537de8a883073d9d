"""Hyper-parameter tuning: purged k-fold cross-validation on dates and Optuna / grid / random search.

Purged k-fold (Lopez de Prado, *Advances in Financial Machine Learning*, 2018, ch. 7): the
unique dates are cut into k contiguous folds; for a test fold [a, b] the training dates are
all other dates except

- **purged** dates t < a whose label window (t, t+h] reaches a (the last h dates before a),
- **embargoed** dates a < ... within ``embargo`` dates after b (default h), so the test
  fold's own label windows (ending at most h dates after b) never reach a training date.

Inside each training set the last ``valid_fraction`` of its dates (after a further purge of
h dates) is the validation segment used for early stopping; the test fold is only scored.

Search spaces are data (:data:`SEARCH_SPACES`): ``name -> (kind, low, high, log)``; the
LightGBM one is the seed plan's (learning_rate 0.01-0.1, max_depth 3-10, num_leaves 31-127,
subsample and colsample 0.7-1.0, min_child_samples 20-100).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.ml.dataset import Dataset
from vfr.ml.evaluate import classification_metrics, ic_by_date
from vfr.ml.models import make_model
from vfr.ml.splits import Fold, purged_kfold  # noqa: F401 - public re-export (vfr.ml.tuning.purged_kfold)

#: Search spaces per algorithm: parameter -> (kind "int"|"float", low, high, log scale).
SEARCH_SPACES: dict[str, dict[str, tuple[str, float, float, bool]]] = {
    "lightgbm": {"learning_rate": ("float", 0.01, 0.1, True), "max_depth": ("int", 3, 10, False),
                 "num_leaves": ("int", 31, 127, False), "subsample": ("float", 0.7, 1.0, False),
                 "colsample_bytree": ("float", 0.7, 1.0, False), "min_child_samples": ("int", 20, 100, False)},
    "xgboost": {"learning_rate": ("float", 0.01, 0.1, True), "max_depth": ("int", 3, 10, False),
                "subsample": ("float", 0.7, 1.0, False), "colsample_bytree": ("float", 0.7, 1.0, False),
                "min_child_weight": ("float", 1.0, 100.0, True)},
    "catboost": {"learning_rate": ("float", 0.01, 0.1, True), "depth": ("int", 3, 8, False),
                 "l2_leaf_reg": ("float", 1.0, 10.0, True)},
    "random_forest": {"max_depth": ("int", 4, 12, False), "min_samples_leaf": ("int", 20, 200, True),
                      "max_features": ("float", 0.1, 0.5, False)},
    "linear": {"C": ("float", 1e-3, 10.0, True), "alpha": ("float", 0.1, 100.0, True)},
    "lstm": {"hidden": ("int", 8, 64, True), "window": ("int", 10, 40, False), "lr": ("float", 1e-4, 1e-2, True)},
}

#: Small default grids for ``method="grid"`` (the full product is searched).
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "lightgbm": {"learning_rate": [0.02, 0.05], "num_leaves": [31, 63], "min_child_samples": [20, 100]},
    "xgboost": {"learning_rate": [0.02, 0.05], "max_depth": [4, 8]},
    "catboost": {"learning_rate": [0.02, 0.05], "depth": [4, 6]},
    "random_forest": {"max_depth": [6, 10], "min_samples_leaf": [50, 200]},
    "linear": {"C": [0.01, 0.1, 1.0], "alpha": [1.0, 10.0, 100.0]},
    "lstm": {"hidden": [16, 32], "window": [10, 20]},
}

METRICS = ("f1", "auc", "rank_ic", "sharpe_top_decile")


def score_predictions(frame: pd.DataFrame, metric: str, *, score: str = "prob", label: str = "label",
                      fwd_return: str = "fwd", horizon_days: int = 5) -> float:
    """One scoring metric of out-of-sample predictions (higher is better).

    Parameters
    ----------
    frame : DataFrame
        Long frame with ``date``, ``score`` (probability or predicted return), the binary
        ``label`` and the realised ``fwd_return`` (fraction over the horizon).
    metric : {"f1", "auc", "rank_ic", "sharpe_top_decile"}
        ``f1``/``auc``: of ``score`` vs ``label`` (F1 at 0.5). ``rank_ic``: mean per-date
        Spearman correlation of ``score`` and ``fwd_return``. ``sharpe_top_decile``: the
        annualised Sharpe ratio of the equal-weight top-decile portfolio's ``fwd_return``
        on every ``horizon_days``-th date (non-overlapping holdings):
        ``mean / std * sqrt(252 / horizon_days)``.

    Returns
    -------
    float
        NaN when undefined (one class, constant scores, < 2 periods).

    Raises
    ------
    ValueError
        On an unknown metric.
    """
    if metric in ("f1", "auc"):
        m = classification_metrics(frame[label], frame[score])
        return m["f1" if metric == "f1" else "roc_auc"]
    if metric == "rank_ic":
        return float(ic_by_date(frame, score, fwd_return)["rank_ic"].mean())
    if metric == "sharpe_top_decile":
        r = top_decile_returns(frame, score, fwd_return)
        r = r.iloc[:: max(1, horizon_days)]
        if len(r) < 2 or r.std(ddof=1) == 0:
            return float("nan")
        return float(r.mean() / r.std(ddof=1) * np.sqrt(252 / horizon_days))
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


def top_decile_returns(frame: pd.DataFrame, score: str, fwd_return: str, quantile: float = 0.9) -> pd.Series:
    """Per-date mean ``fwd_return`` of the rows whose score rank is in the top decile (>= 2 names)."""
    data = frame[["date", score, fwd_return]].dropna()
    pct = data.groupby("date")[score].rank(pct=True, method="first")
    top = data[pct > quantile]
    return top.groupby("date")[fwd_return].mean().rename("top_decile")


@dataclass
class TuneResult:
    """Outcome of :func:`tune`: best parameters, their CV score, and every trial."""

    best_params: dict[str, Any]
    best_value: float
    metric: str
    trials: pd.DataFrame
    study_name: str
    storage: str | None
    fold_scores: dict[int, list[float]] = field(default_factory=dict)
    best_trial: int | None = None  # the best trial's number (of every trial of the study, resumed ones too)


def cross_validate(data: pd.DataFrame | Dataset, algorithm: str, objective: str, params: dict[str, Any], *,
                   feature_columns: list[str] | None = None, label: str | None = None,
                   fwd_return: str | None = None, horizon_days: int | None = None,
                   metric: str = "auc", n_splits: int = 5, date_stride: int = 1, seed: int = 42,
                   num_threads: int = 1) -> list[float]:
    """Score one parameter set on purged k-fold CV (one fit per fold, early stopping on its valid segment).

    Parameters
    ----------
    data : Dataset or DataFrame
        A :class:`vfr.ml.Dataset` (its features, ``fwd_dir`` label, ``fwd_excess`` return and
        horizon are the defaults of the four arguments below), or the frame form
        (:func:`vfr.ml.build_dataset` output: features + ``label`` + ``fwd_return`` columns).
    feature_columns, label, fwd_return, horizon_days
        Required with a DataFrame; with a Dataset they default to its own.
    objective : {"classification", "regression"}
        Regression fits ``fwd_return``; classification fits ``label``.
    date_stride : int
        Fit on every ``date_stride``-th training date (validation and test use all).

    Returns
    -------
    list of float
        The metric on each test fold.
    """
    data, feature_columns, label, fwd_return, horizon_days = _as_frame(data, feature_columns, label, fwd_return,
                                                                       horizon_days)
    data = data[data[label].notna()]
    folds = purged_kfold(data["date"], n_splits, horizon=horizon_days)
    target = label if objective == "classification" else fwd_return
    codes, _ = pd.factorize(data["date"], sort=True)
    cols = ["symbol", "date", *feature_columns]
    out = []
    for fold in folds:
        tr = data["date"].isin(fold.train).to_numpy() & (codes % date_stride == 0)
        va, te = data["date"].isin(fold.valid).to_numpy(), data["date"].isin(fold.test).to_numpy()
        model = make_model(algorithm, objective, params, seed=seed, num_threads=num_threads)
        model.fit(data.loc[tr, cols], data.loc[tr, target],
                  valid=(data.loc[va, cols], data.loc[va, target]) if va.any() else None)
        scored = data.loc[te, ["date", label, fwd_return]].assign(prob=model.predict_proba(data.loc[te, cols]))
        out.append(score_predictions(scored, metric, label=label, fwd_return=fwd_return, horizon_days=horizon_days))
    return out


def _as_frame(data: pd.DataFrame | Dataset, feature_columns, label, fwd_return, horizon_days):
    """The frame form of ``data`` and the column names/horizon (a Dataset supplies its own)."""
    if isinstance(data, Dataset):
        return (data.to_frame(), list(feature_columns or data.feature_columns), label or data.label,
                fwd_return or data.fwd_excess, horizon_days or data.horizon_days)
    if feature_columns is None or label is None or fwd_return is None or horizon_days is None:
        raise ValueError("cross_validate/tune on a DataFrame need feature_columns, label, fwd_return and horizon_days")
    return data, list(feature_columns), label, fwd_return, horizon_days


def _suggest(trial, space: dict[str, tuple[str, float, float, bool]]) -> dict[str, Any]:
    out = {}
    for name, (kind, low, high, log) in space.items():
        if kind == "int":
            out[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            out[name] = trial.suggest_float(name, float(low), float(high), log=log)
    return out


@dataclass(frozen=True)
class TuneConfig:
    """How :func:`tune` searches: the metric, the sampler, the CV and where the study lives.

    Parameters
    ----------
    metric : {"f1", "auc", "rank_ic", "sharpe_top_decile"}
        Maximised mean over the test folds.
    method : {"tpe", "random", "grid"}
        Optuna's TPE sampler, its random sampler, or the full product of ``grid``
        (default :data:`DEFAULT_GRIDS`); ``n_trials`` caps the grid.
    n_trials, n_splits : int
        Trials of the search; purged k-fold folds per trial.
    timeout : float, optional
        Stop starting new trials after this many seconds (Optuna's ``timeout``; the running
        trial finishes). None: only ``n_trials`` bounds the search.
    storage : str or Path, optional
        Optuna storage URL: ``sqlite:///path/optuna.db`` (use :func:`default_storage` for the
        VFR home's file) or a PostgreSQL SQLAlchemy URL such as
        ``postgresql+psycopg://user@host:5432/db``; a Path means a SQLite file. None keeps
        the study in memory. A study with the same name in the same storage is resumed.
    study_name : str, optional
        Default ``vfr-<algorithm>-<objective>-<metric>-<method>``.
    space : dict, optional
        Overrides :data:`SEARCH_SPACES` for the algorithm.
    grid : dict, optional
        The grid of ``method="grid"``.
    fixed_params : dict, optional
        Parameters not searched (e.g. ``{"n_estimators": 100}``).
    date_stride, seed, num_threads : int
        Fit on every ``date_stride``-th training date; random seed; threads per fit.

    Raises
    ------
    ValueError
        On an unknown method or metric, or a count below 1.
    """

    metric: str = "auc"
    method: str = "tpe"
    n_trials: int = 20
    n_splits: int = 5
    timeout: float | None = None
    storage: str | Path | None = None
    study_name: str | None = None
    space: dict[str, tuple[str, float, float, bool]] | None = None
    grid: dict[str, list[Any]] | None = None
    fixed_params: dict[str, Any] | None = None
    date_stride: int = 1
    seed: int = 42
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"TuneConfig.metric: unknown metric {self.metric!r}; expected one of {METRICS}")
        if self.method not in ("tpe", "random", "grid"):
            raise ValueError(f"TuneConfig.method: unknown method {self.method!r}; expected tpe, random or grid")
        for name in ("n_trials", "n_splits", "date_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"TuneConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"TuneConfig.timeout must be > 0 seconds, got {self.timeout}")


def tune(data: pd.DataFrame | Dataset, algorithm: str, objective: str = "classification",
         config: TuneConfig | None = None, *, feature_columns: list[str] | None = None, label: str | None = None,
         fwd_return: str | None = None, horizon_days: int | None = None,
         callback: Callable[[int, float], None] | None = None) -> TuneResult:
    """Search hyper-parameters maximising ``metric`` on purged k-fold CV.

    Parameters
    ----------
    data, feature_columns, label, fwd_return, horizon_days
        As in :func:`cross_validate` (a :class:`vfr.ml.Dataset`, or a frame and its columns).
    algorithm, objective : str
        What is tuned (:func:`vfr.ml.models.make_model`).
    config : TuneConfig, optional
        Metric, sampler, CV, storage; default ``TuneConfig()``.
    callback : callable, optional
        Called with (trial number, value) after each trial.

    Returns
    -------
    TuneResult

    Raises
    ------
    ValueError
        On an unknown method or metric.
    """
    import optuna

    config = config or TuneConfig()
    metric, method, n_trials, n_splits = config.metric, config.method, config.n_trials, config.n_splits
    storage, study_name, grid, fixed_params = config.storage, config.study_name, config.grid, config.fixed_params
    date_stride, seed, num_threads = config.date_stride, config.seed, config.num_threads
    if isinstance(storage, Path):
        storage = f"sqlite:///{storage.resolve()}"
    space = config.space or SEARCH_SPACES[algorithm]
    sampler: optuna.samplers.BaseSampler
    search_grid: dict[str, list[Any]] = {}  # the grid searched (method="grid")
    if method == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed)
    elif method == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:  # "grid" (TuneConfig validated the method)
        search_grid = grid or DEFAULT_GRIDS[algorithm]
        sampler = optuna.samplers.GridSampler(search_grid, seed=seed)
        n_trials = min(n_trials, int(np.prod([len(v) for v in search_grid.values()])))
    data, feature_columns, label, fwd_return, horizon_days = _as_frame(data, feature_columns, label, fwd_return,
                                                                       horizon_days)
    study_name = study_name or f"vfr-{algorithm}-{objective}-{metric}-{method}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize", sampler=sampler,
                                load_if_exists=True)
    fold_scores: dict[int, list[float]] = {}

    def objective_fn(trial) -> float:
        params = (fixed_params or {}) | (
            {k: trial.suggest_categorical(k, v) for k, v in search_grid.items()} if method == "grid"
            else _suggest(trial, space))
        scores = cross_validate(data, algorithm, objective, params, feature_columns=feature_columns, label=label,
                                fwd_return=fwd_return, horizon_days=horizon_days, metric=metric, n_splits=n_splits,
                                date_stride=date_stride, seed=seed, num_threads=num_threads)
        fold_scores[trial.number] = scores
        trial.set_user_attr("fold_scores", [float(s) for s in scores])
        value = float(np.nanmean(scores)) if np.isfinite(scores).any() else float("-inf")
        if callback is not None:
            callback(trial.number, value)
        return value

    study.optimize(objective_fn, n_trials=n_trials, timeout=config.timeout, gc_after_trial=False)
    trials = study.trials_dataframe(attrs=("number", "value", "params", "state", "user_attrs"))
    return TuneResult(best_params=(fixed_params or {}) | study.best_params, best_value=float(study.best_value),
                      metric=metric, trials=trials, study_name=study_name, storage=storage, fold_scores=fold_scores,
                      best_trial=study.best_trial.number)


def default_storage(home: Path) -> str:
    """SQLite URL of the study database inside a VFR home folder (``<home>/optuna.db``)."""
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'optuna.db').resolve()}"


def grid_size(grid: dict[str, list[Any]]) -> int:
    """Number of points in the product of a grid."""
    return len(list(itertools.product(*grid.values())))
