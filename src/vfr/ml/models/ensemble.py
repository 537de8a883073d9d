"""The :class:`Ensemble` model: fitted members combined by weighting, voting or stacking.

The helpers that fit members and meta-learners (out-of-fold predictions, stacking,
diversity) are in :mod:`vfr.ml.ensembles`; this module holds what a saved ensemble needs to
load and predict, so the model zoo can read one without the fitting code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.ml.calibration import Calibrator, _logit
from vfr.ml.models.base import Model, ModelError

METHODS = ("weighted", "voting", "stacking")


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

    def _contributions(self, X):
        """The members' contributions, averaged with the combination's weights: the per-feature
        split of the members' mean raw score. Only for members of one algorithm and objective
        (an ensemble over seeds), whose raw scores share their units; others raise."""
        kinds = {(m.algorithm, m.objective) for m in self.members}
        if len(kinds) != 1 or self.method == "stacking" or self.calibrator is not None:
            raise ModelError("ensemble: contributions need members of one algorithm and objective, combined "
                             "by voting or weights without a calibrator")
        w = self.weights if self.method == "weighted" else np.ones(len(self.members)) / len(self.members)
        total = pd.DataFrame(0.0, index=X.index, columns=self.feature_columns)
        for weight, m in zip(w, self.members, strict=True):
            total = total.add(weight * m.contributions(X), fill_value=0.0)
        return total[self.feature_columns].to_numpy()

    def _state(self):
        return {"method": self.method, "names": self.names, "weights": self.weights.tolist(), "meta": self.meta,
                "calibrator": self.calibrator.to_dict() if self.calibrator else None}

    def _save_native(self, path: Path) -> None:
        for i, m in enumerate(self.members):
            m.save(path / "members" / f"{i:02d}")

    def _load_native(self, path: Path) -> None:  # pragma: no cover - loaded through load_folder
        raise NotImplementedError

    @classmethod
    def load_folder(cls, path: Path, meta: dict[str, Any], num_threads: int = 1, *,
                    load: Callable[[Path, int], Model]) -> Ensemble:
        """Read an ensemble written by :meth:`save` (called by :func:`vfr.ml.models.load_model`,
        which passes itself as ``load``, the reader of each member's folder)."""
        state = meta["state"]
        members = [load(path / "members" / f"{i:02d}", num_threads) for i in range(len(state["names"]))]
        ens = cls(members, state["method"], state["weights"], state["names"], num_threads=num_threads)
        ens.meta = state["meta"]
        ens.calibrator = Calibrator.from_dict(state["calibrator"]) if state.get("calibrator") else None
        return ens
