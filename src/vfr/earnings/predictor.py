"""Serving the early signal with a fallback chain.

Order for each row: the current model, then earlier model versions (newest first), then a
rule (last known surprise above ``rule_threshold`` percent -> positive, low confidence), then
an explicit null with the reasons every level failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vfr.earnings.model import EarlySignalModel

#: Columns of :meth:`EarlySignalPredictor.predict` output.
PREDICTION_COLUMNS: tuple[str, ...] = ("prediction", "probability", "confidence", "source",
                                       "reason")


@dataclass
class EarlySignalPredictor:
    """Answer every row, degrading from models to a rule to an explicit null.

    Parameters
    ----------
    models : sequence of EarlySignalModel
        Newest (serving) first, then previous versions. May be empty.
    rule_threshold : float
        Rule: ``last_surprise_pct > rule_threshold`` (percent) -> positive (default 15).
    rule_confidence : float
        Confidence reported for rule answers (default 0.1: low).
    max_missing_share : float
        A model declines a row when more than this share of its features is NaN (default
        0.5).

    Notes
    -----
    ``confidence`` of a model answer is the distance of the probability from the model's
    decision threshold ``c``, scaled to [0, 1]: ``(p - c) / (1 - c)`` above it and
    ``(c - p) / c`` below it.
    """

    models: Sequence[EarlySignalModel]
    rule_threshold: float = 15.0
    rule_confidence: float = 0.1
    max_missing_share: float = 0.5

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Predict for event rows (features as of the as-of date).

        Parameters
        ----------
        rows : pandas.DataFrame, shape (n, ...)
            Feature columns of the models and, for the rule, ``last_surprise_pct``.

        Returns
        -------
        pandas.DataFrame, shape (n, 5), index of ``rows``
            ``prediction`` (boolean, NA when no level answered), ``probability`` (float, NaN
            for the rule and null answers), ``confidence`` (float in [0, 1]; 0 for null),
            ``source`` (``"model:v<version>"``, ``"rule"`` or ``"none"``) and ``reason``
            (why earlier levels were skipped; empty for the serving model).
        """
        n = len(rows)
        pred = pd.array([pd.NA] * n, dtype="boolean")
        prob = np.full(n, np.nan)
        conf = np.zeros(n)
        source = np.array(["none"] * n, dtype=object)
        reasons: list[list[str]] = [[] for _ in range(n)]
        todo = np.ones(n, dtype=bool)
        for model in self.models:
            if not todo.any():
                break
            tag = f"model:v{model.version}"
            try:
                x = rows[model.features].to_numpy(dtype=float, na_value=np.nan)
                p = model.predict_proba(rows)
            except Exception as exc:  # noqa: BLE001 - any failure moves to the next level
                for i in np.flatnonzero(todo):
                    reasons[i].append(f"{tag} failed: {type(exc).__name__}: {exc}")
                continue
            missing = np.isnan(x).mean(axis=1) if x.shape[1] else np.ones(n)
            ok = todo & np.isfinite(p) & (missing <= self.max_missing_share)
            for i in np.flatnonzero(todo & ~ok):
                why = (f"{missing[i]:.0%} of features missing" if missing[i] > self.max_missing_share
                       else "non-finite probability")
                reasons[i].append(f"{tag} declined: {why}")
            c = model.threshold
            idx = np.flatnonzero(ok)
            prob[idx] = p[idx]
            pred[idx] = p[idx] >= c
            conf[idx] = np.where(p[idx] >= c, (p[idx] - c) / max(1 - c, 1e-9),
                                 (c - p[idx]) / max(c, 1e-9)).clip(0, 1)
            source[idx] = tag
            todo &= ~ok
        if todo.any():
            if "last_surprise_pct" in rows.columns:
                last = pd.to_numeric(rows["last_surprise_pct"], errors="coerce").to_numpy(float)
            else:
                last = np.full(n, np.nan)
            ok = todo & np.isfinite(last)
            idx = np.flatnonzero(ok)
            pred[idx] = last[idx] > self.rule_threshold
            conf[idx] = self.rule_confidence
            source[idx] = "rule"
            for i in np.flatnonzero(todo & ~ok):
                reasons[i].append("rule declined: no past surprise known")
            todo &= ~ok
        if not self.models:
            for row in range(n):
                reasons[row].insert(0, "no model available")
        return pd.DataFrame({"prediction": pred, "probability": prob, "confidence": conf,
                             "source": source, "reason": ["; ".join(r) for r in reasons]},
                            index=rows.index)
