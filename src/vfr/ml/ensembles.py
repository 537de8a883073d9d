"""Ensembles of :class:`vfr.ml.models.Model` members, themselves a ``Model``.

Methods:

- ``weighted``: weighted average of member probabilities; weights from recent out-of-sample
  performance (:func:`performance_weights`), recomputed with :meth:`Ensemble.update_weights`
  as outcomes arrive.
- ``voting``: soft voting, the plain mean of member probabilities.
- ``stacking``: a logistic-regression meta-learner on the members' logits, trained only on
  out-of-fold predictions (:func:`out_of_fold_predictions`, purged k-fold): every row it
  sees was predicted by members fitted without that row's fold.

Diversity: :func:`fit_diverse_members` fits one algorithm on several recent time windows
(3, 6, 12 months) and feature subsets. An optional :class:`~vfr.ml.calibration.Calibrator`
maps the combined probability. A member that raises at prediction time is dropped for that
call (recorded in :attr:`Ensemble.last_failures`); the others still predict.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from vfr.ml.calibration import _logit
from vfr.ml.models import make_model
from vfr.ml.models.base import ID_COLUMNS, Model, ModelError
from vfr.ml.models.ensemble import METHODS, Ensemble, performance_weights  # noqa: F401 - public re-exports
from vfr.ml.splits import purged_kfold

#: Diversity windows: months -> trading dates.
WINDOW_MONTHS = {3: 63, 6: 126, 12: 252}


def out_of_fold_predictions(data: pd.DataFrame, specs: dict[str, dict[str, Any]], *, label: str,
                            horizon_days: int, n_splits: int = 5, date_stride: int = 1,
                            seed: int = 42, num_threads: int = 1) -> pd.DataFrame:
    """Out-of-fold member probabilities on purged k-fold CV (the stacker's only training input).

    Parameters
    ----------
    data : DataFrame
        ``symbol``, ``date``, features and ``label`` (rows with NaN label are ignored).
    specs : dict
        Member name -> ``{"algorithm", "params", "feature_columns"}``.
    date_stride : int
        Fit on every ``date_stride``-th training date.

    Returns
    -------
    DataFrame
        ``date``, ``symbol``, ``label``, ``fold`` and one probability column per member;
        the row of fold k was predicted by members fitted on fold k's purged training dates
        only (never on its own fold or the purge/embargo around it). ``attrs["folds"]``
        holds the :class:`~vfr.ml.tuning.Fold` list.
    """
    data = data[data[label].notna()].reset_index(drop=True)
    folds = purged_kfold(data["date"], n_splits, horizon=horizon_days, valid_fraction=0.0)
    codes, _ = pd.factorize(data["date"], sort=True)
    out = data[["date", "symbol", label]].copy()
    out["fold"] = -1
    for name in specs:
        out[name] = np.nan
    for k, fold in enumerate(folds):
        tr = data["date"].isin(fold.train).to_numpy() & (codes % date_stride == 0)
        te = data["date"].isin(fold.test).to_numpy()
        out.loc[te, "fold"] = k
        for name, spec in specs.items():
            cols = ["symbol", "date", *spec["feature_columns"]]
            m = make_model(spec["algorithm"], "classification", spec.get("params"), seed=seed, num_threads=num_threads)
            m.fit(data.loc[tr, cols], data.loc[tr, label])
            out.loc[te, name] = m.predict_proba(data.loc[te, cols])
    out.attrs["folds"] = folds
    return out


def fit_meta_learner(oof: pd.DataFrame, names: list[str], label: str, C: float = 1.0) -> dict[str, Any]:
    """Logistic-regression meta-learner on the members' out-of-fold logits.

    Raises
    ------
    ModelError
        If ``oof`` lacks the ``fold`` column of :func:`out_of_fold_predictions` (i.e. the
        predictions are not known to be out-of-fold) or has unassigned rows.
    """
    from sklearn.linear_model import LogisticRegression

    if "fold" not in oof.columns or (oof["fold"] < 0).any():
        raise ModelError("stacking: the meta-learner trains only on out_of_fold_predictions() output")
    Z = _logit(oof[names].to_numpy())
    lr = LogisticRegression(C=C, max_iter=1000).fit(Z, oof[label].astype(int))
    return {"coef": lr.coef_[0].tolist(), "intercept": float(lr.intercept_[0]),
            "member_logit_means": Z.mean(axis=0).tolist(), "n_rows": len(oof)}


def fit_stacking(data: pd.DataFrame, specs: dict[str, dict[str, Any]], *, label: str, horizon_days: int,
                 n_splits: int = 5, date_stride: int = 1, seed: int = 42, num_threads: int = 1) -> Ensemble:
    """Stacking ensemble: OOF predictions -> meta-learner; members then refitted on all of ``data``."""
    oof = out_of_fold_predictions(data, specs, label=label, horizon_days=horizon_days, n_splits=n_splits,
                                  date_stride=date_stride, seed=seed, num_threads=num_threads)
    names = list(specs)
    meta = fit_meta_learner(oof, names, label)
    members = fit_members(data, specs, label=label, date_stride=date_stride, seed=seed, num_threads=num_threads)
    ens = Ensemble(members, "stacking", names=names, num_threads=num_threads)
    ens.meta = meta
    return ens


def fit_members(data: pd.DataFrame, specs: dict[str, dict[str, Any]], *, label: str, date_stride: int = 1,
                seed: int = 42, num_threads: int = 1) -> list[Model]:
    """Fit each spec (``algorithm``, ``params``, ``feature_columns``, optional ``window`` dates) on ``data``.

    A spec with ``window`` = n fits on the latest n dates of ``data`` only (time-window diversity).
    """
    codes, uniq = pd.factorize(data["date"], sort=True)
    out = []
    for spec in specs.values():
        keep = codes % date_stride == 0
        if spec.get("window"):
            keep &= codes >= len(uniq) - int(spec["window"])
        cols = ["symbol", "date", *spec["feature_columns"]]
        m = make_model(spec["algorithm"], "classification", spec.get("params"), seed=seed, num_threads=num_threads)
        out.append(m.fit(data.loc[keep, cols], data.loc[keep, label]))
    return out


def diverse_specs(algorithm: str, feature_columns: list[str], *, months: tuple[int, ...] = (3, 6, 12),
                  feature_subsets: dict[str, list[str]] | None = None,
                  params: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Member specs diverse by time window (``months`` -> 63/126/252 dates) and by feature subset."""
    specs = {f"{algorithm}-{m}m": {"algorithm": algorithm, "params": params, "feature_columns": feature_columns,
                                   "window": WINDOW_MONTHS[m]} for m in months}
    for name, cols in (feature_subsets or {}).items():
        specs[f"{algorithm}-{name}"] = {"algorithm": algorithm, "params": params, "feature_columns": cols}
    return specs


def ensemble_metadata(ens: Ensemble) -> dict[str, Any]:
    """JSON-ready description of an ensemble (for registry metadata)."""
    return json.loads(json.dumps({"method": ens.method, "members": ens.names,
                                  "member_algorithms": [m.algorithm for m in ens.members],
                                  "weights": ens.weights.tolist()}))


__all__ = [
    "ID_COLUMNS",
    "METHODS",
    "Ensemble",
    "diverse_specs",
    "ensemble_metadata",
    "fit_members",
    "fit_meta_learner",
    "fit_stacking",
    "out_of_fold_predictions",
    "performance_weights",
]
