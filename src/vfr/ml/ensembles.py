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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.ml.calibration import Calibrator, _logit
from vfr.ml.models.base import ID_COLUMNS, Model, ModelError, load_model, make_model
from vfr.ml.splits import purged_kfold

METHODS = ("weighted", "voting", "stacking")
#: Diversity windows: months -> trading dates.
WINDOW_MONTHS = {3: 63, 6: 126, 12: 252}


def performance_weights(recent: pd.DataFrame, lookback: int = 63, floor: float = 0.0) -> pd.Series:
    """Member weights proportional to their recent mean out-of-sample score.

    Parameters
    ----------
    recent : DataFrame of shape (n_dates, n_members)
        Per-date out-of-sample score of each member (e.g. daily Rank IC), indexed by date,
        only dates whose outcomes are known at the time of weighting.
    lookback : int
        Latest dates used.
    floor : float
        Scores are clipped below at ``floor`` (members doing worse get weight 0).

    Returns
    -------
    Series indexed by member, summing to 1; equal weights when no member is above ``floor``.
    """
    tail = recent.sort_index().tail(lookback)
    score = tail.mean().clip(lower=floor).fillna(0.0) - floor
    if score.sum() <= 0:
        return pd.Series(1.0 / recent.shape[1], index=recent.columns)
    return score / score.sum()


class Ensemble(Model):
    """Combines fitted members; behaves like any other model (fit via the helpers below).

    Parameters
    ----------
    members : list of Model
        Fitted members.
    method : {"weighted", "voting", "stacking"}
    weights : sequence of float, optional
        For ``weighted``: one per member (normalised); default equal.
    names : list of str, optional
        Member names (default ``m0``, ``m1``, ...).
    """

    algorithm = "ensemble"

    def __init__(self, members: list[Model], method: str = "voting", weights=None, names: list[str] | None = None,
                 *, num_threads: int = 1) -> None:
        super().__init__("classification", {}, num_threads=num_threads)
        if method not in METHODS:
            raise ModelError(f"unknown ensemble method {method!r}; expected one of {METHODS}")
        if not members:
            raise ModelError("an ensemble needs at least one member")
        self.members = list(members)
        self.method = method
        self.names = list(names or [f"m{i}" for i in range(len(members))])
        w = np.ones(len(members)) if weights is None else np.asarray(weights, float)
        self.weights = w / w.sum()
        self.meta: dict[str, Any] | None = None
        self.calibrator: Calibrator | None = None
        self.last_failures: dict[str, str] = {}
        cols: list[str] = []
        for m in self.members:
            cols += [c for c in m.feature_columns if c not in cols]
        self.feature_columns = cols
        self.uses_ids = any(m.uses_ids for m in self.members)  # type: ignore[misc]

    # -- combination ----------------------------------------------------------------
    def member_probabilities(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each member's P(y=1) (columns by member name); a failing member's column is NaN."""
        out, self.last_failures = {}, {}
        for name, m in zip(self.names, self.members, strict=True):
            try:
                out[name] = m.predict_proba(X)
            except Exception as exc:  # noqa: BLE001 - any member failure drops that member only
                self.last_failures[name] = f"{type(exc).__name__}: {exc}"
                out[name] = np.full(len(X), np.nan)
        return pd.DataFrame(out, index=X.index)

    def combine(self, probs: pd.DataFrame) -> np.ndarray:
        """Combined probability from member probabilities (NaN columns = failed members)."""
        ok = probs.notna().all().to_numpy()
        if not ok.any():
            raise ModelError(f"every ensemble member failed: {self.last_failures}")
        P = probs.to_numpy()
        if self.method == "stacking":
            if self.meta is None:
                raise ModelError("stacking ensemble has no meta-learner; build it with fit_stacking")
            Z = _logit(P)
            means = np.asarray(self.meta["member_logit_means"])
            Z[:, ~ok] = means[~ok]  # a failed member contributes its average, i.e. nothing specific
            out = 1 / (1 + np.exp(-(Z @ np.asarray(self.meta["coef"]) + self.meta["intercept"])))
        else:
            w = self.weights if self.method == "weighted" else np.ones(len(self.members))
            w = np.where(ok, w, 0.0)
            if w.sum() <= 0:
                w = ok.astype(float)
            out = P[:, ok] @ (w[ok] / w[ok].sum())
        return self.calibrator.transform(out) if self.calibrator is not None else out

    def update_weights(self, recent: pd.DataFrame, lookback: int = 63) -> pd.Series:
        """Recompute ``weighted`` weights from the members' recent out-of-sample scores.

        ``recent`` has one column per member name (see :func:`performance_weights`).
        """
        w = performance_weights(recent[self.names], lookback)
        self.weights = w.to_numpy()
        return w

    # -- Model interface ----------------------------------------------------------
    def _fit(self, X, y, valid) -> None:  # members are fitted by the helpers
        raise ModelError("fit an ensemble's members first, then use fit_stacking / Ensemble(...)")

    def _raw(self, X):
        return self.combine(self.member_probabilities(X))

    def _importances(self):
        imp = pd.Series(0.0, index=self.feature_columns)
        w = self.weights if self.method == "weighted" else np.ones(len(self.members)) / len(self.members)
        if self.method == "stacking" and self.meta is not None:
            w = np.abs(np.asarray(self.meta["coef"]))
            w = w / w.sum() if w.sum() > 0 else np.ones(len(w)) / len(w)
        for weight, m in zip(w, self.members, strict=True):
            mi = m.feature_importances()
            imp = imp.add(weight * mi / (mi.sum() or 1.0), fill_value=0.0)
        return imp[self.feature_columns].to_numpy()

    def _state(self):
        return {"method": self.method, "names": self.names, "weights": self.weights.tolist(), "meta": self.meta,
                "calibrator": self.calibrator.to_dict() if self.calibrator else None}

    def _save_native(self, path: Path) -> None:
        for i, m in enumerate(self.members):
            m.save(path / "members" / f"{i:02d}")

    def _load_native(self, path: Path) -> None:  # pragma: no cover - loaded through load_folder
        raise NotImplementedError

    @classmethod
    def load_folder(cls, path: Path, meta: dict[str, Any], num_threads: int = 1) -> Ensemble:
        """Read an ensemble written by :meth:`save` (called by :func:`vfr.ml.models.load_model`)."""
        state = meta["state"]
        members = [load_model(path / "members" / f"{i:02d}", num_threads) for i in range(len(state["names"]))]
        ens = cls(members, state["method"], state["weights"], state["names"], num_threads=num_threads)
        ens.meta = state["meta"]
        ens.calibrator = Calibrator.from_dict(state["calibrator"]) if state.get("calibrator") else None
        return ens


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
