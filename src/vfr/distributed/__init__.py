"""Scale-out on Dask (dask.distributed): the same work, spread over a cluster.

``VFR_DASK_SCHEDULER`` chooses where it runs (unset: in process; ``local:N``: a
LocalCluster of N processes; ``tcp://host:8786``: an existing cluster). Public interface::

    dask_client(settings) -> context manager yielding a Client or None
    task_map(client, fn, *iterables) -> list            # local or distributed map
    fit_lightgbm_dask(X, y, client, params=, num_boost_round=) -> lightgbm.Booster
    fit_xgboost_dask(X, y, client, params=, num_boost_round=) -> xgboost.Booster
    sweep(fn, shared, grid, client, progress) -> list   # parameter sweeps, independent fits
    vfr.ml.train(..., client=)                          # walk-forward windows as tasks
    optimize_on_dask(objective, study_name=, storage=, n_trials=, client=) -> optuna.Study
"""

from vfr.distributed.cluster import dask_client, parse_scheduler, task_map
from vfr.distributed.tasks import (
    fit_lightgbm_dask,
    fit_xgboost_dask,
    optimize_on_dask,
    sweep,
)

__all__ = ["dask_client", "fit_lightgbm_dask", "fit_xgboost_dask", "optimize_on_dask",
           "parse_scheduler", "sweep", "task_map"]
