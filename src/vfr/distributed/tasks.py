"""VFR's heavy work as Dask task graphs.

Every function takes an optional ``client``: with None it runs in this process, with a
:class:`distributed.Client` the same code runs as tasks on the cluster, so the two paths
give the same results (tests prove it for walk-forward-style fits and sweeps).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pandas as pd

from vfr.distributed.cluster import task_map
from vfr.errors import VFRError


def _partitioned(X: pd.DataFrame, y: pd.Series, client: Any, partitions: int | None):
    """``X`` and ``y`` as Dask frames of ``partitions`` pieces (default one per worker)."""
    import dask.dataframe as dd

    n = partitions or max(1, len(client.scheduler_info()["workers"]))
    return dd.from_pandas(X, npartitions=n), dd.from_pandas(y, npartitions=n)


def fit_lightgbm_dask(X: pd.DataFrame, y: pd.Series, client: Any, *, params: dict[str, Any],
                      num_boost_round: int, partitions: int | None = None):
    """Fit one LightGBM classifier data-parallel over the workers (``lightgbm.dask``).

    Parameters
    ----------
    X : DataFrame of shape (n_samples, n_features)
    y : Series of shape (n_samples,), binary labels
    client : distributed.Client
    params : dict
        Native LightGBM parameters (e.g. :data:`vfr.ml.DEFAULT_LGBM_PARAMS`).
    num_boost_round : int
    partitions : int, optional
        Data partitions (default: one per worker).

    Returns
    -------
    lightgbm.Booster
        The trained model, local to this process. Data-parallel training builds histograms
        from every worker's rows, so it matches a single-process fit closely but not bit for
        bit.
    """
    import lightgbm as lgb

    X_parts, y_parts = _partitioned(X, y, client, partitions)
    kwargs = {k: v for k, v in params.items() if k not in ("objective", "num_threads", "verbose")}
    model = lgb.DaskLGBMClassifier(client=client, n_estimators=num_boost_round, verbose=-1, **kwargs)
    model.fit(X_parts, y_parts)
    return model.to_local().booster_



def fit_xgboost_dask(X: pd.DataFrame, y: pd.Series, client: Any, *, params: dict[str, Any],
                     num_boost_round: int, partitions: int | None = None):
    """Fit one XGBoost model data-parallel over the workers (``xgboost.dask``).

    Parameters
    ----------
    X : DataFrame of shape (n_samples, n_features)
    y : Series of shape (n_samples,), binary labels
    client : distributed.Client
    params : dict
        Native XGBoost parameters (default objective ``binary:logistic``, ``tree_method``
        ``hist``); ``nthread`` is per worker.
    num_boost_round : int
    partitions : int, optional
        Data partitions (default: one per worker).

    Returns
    -------
    xgboost.Booster
        The trained model, local to this process. XGBoost's distributed ``hist`` method
        all-reduces the gradient histograms of every worker, so for the same data and
        parameters it matches a single-process fit up to the sketch of the bin edges.
    """
    try:
        from xgboost import dask as dxgb
    except ImportError as exc:
        raise VFRError("fit_xgboost_dask needs xgboost, which is not installed: pip install 'vfr[xgboost]'") from exc

    dtrain = dxgb.DaskDMatrix(client, *_partitioned(X, y, client, partitions))
    params = {"objective": "binary:logistic", "tree_method": "hist"} | params
    return dxgb.train(client, params, dtrain, num_boost_round=num_boost_round)["booster"]

def sweep(fn: Callable[..., Any], shared: dict[str, Any], grid: Sequence[dict[str, Any]], client: Any = None,
          progress: Callable[[int], None] | None = None) -> list[Any]:
    """Run ``fn(**shared, **params)`` for every ``params`` in ``grid``, one task each.

    ``shared`` arguments (large frames such as prices and scores) are sent to every worker
    once (``client.scatter(..., broadcast=True)``), not once per task; each task's own
    parameters are scattered too, so large per-task inputs never travel inside the graph. Used for backtest
    parameter sweeps and independent model fits (walk-forward windows of :func:`vfr.ml.train`,
    ensemble members). ``progress`` is called with 1 as each task finishes.
    """
    grid = list(grid)
    if client is not None:
        shared = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
        grid = client.scatter(grid)  # per-task inputs (e.g. a window's rows) as futures, not in the graph
    return task_map(client, _call_with, [fn] * len(grid), [shared] * len(grid), grid, progress=progress)


def _call_with(fn: Callable[..., Any], shared: dict[str, Any], params: dict[str, Any]) -> Any:
    return fn(**shared, **params)


def optimize_on_dask(objective: Callable[[Any], float], *, study_name: str, storage: str, n_trials: int,
                     client: Any = None, direction: Literal["maximize", "minimize"] = "maximize",
                     tasks: int | None = None):
    """Optuna trials spread over Dask workers through one shared RDB study.

    Each task loads the study from ``storage`` (an SQLAlchemy URL: PostgreSQL for a cluster,
    SQLite for one machine) and runs its share of the trials; Optuna's storage coordinates
    them, so the TPE sampler of every task sees every finished trial.

    Parameters
    ----------
    objective : callable(trial) -> float
        Must be picklable (a module-level function or a class instance).
    study_name, storage : str
    n_trials : int
        Total trials across all tasks.
    client : distributed.Client, optional
        Without one, all trials run here.
    direction : {"maximize", "minimize"}
    tasks : int, optional
        Parallel tasks (default: number of workers, or 1 locally).

    Returns
    -------
    optuna.Study
        The study, loaded after all tasks finished.
    """
    import optuna

    optuna.create_study(study_name=study_name, storage=storage, direction=direction, load_if_exists=True)
    k = tasks or (max(1, len(client.scheduler_info()["workers"])) if client is not None else 1)
    shares = [n_trials // k + (1 if i < n_trials % k else 0) for i in range(k)]
    shares = [s for s in shares if s]
    if client is not None:  # an objective holding data goes to every worker once, not inside the graph
        objective = client.scatter(objective, broadcast=True)
    task_map(client, _run_trials, [study_name] * len(shares), [storage] * len(shares), [objective] * len(shares),
             shares)
    return optuna.load_study(study_name=study_name, storage=storage)


def _run_trials(study_name: str, storage: str, objective: Callable[[Any], float], n: int) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage)
    study.optimize(objective, n_trials=n)
    return os.getpid()
