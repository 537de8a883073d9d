"""Serving the early signal with a fallback chain.

Order for each row: the champion, then the previous version, then a rule (last known
surprise above ``rule_threshold`` percent -> positive with probability ``rule_probability``,
confidence LOW), then an explicit null (``error`` true) with the reasons every level failed.
A model whose inputs are more than ``max_missing_share`` missing or non-finite for a row fails
for that row: it never guesses from mostly imputed inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vfr.earnings.model import EarlySignalModel

#: Columns of :meth:`EarlySignalPredictor.predict` output.
PREDICTION_COLUMNS: tuple[str, ...] = ("prediction", "probability", "confidence", "confidence_level",
                                       "source", "fallback_level", "error", "reason")

#: ``fallback_level`` of each source: 0 champion, 1 previous version, 2 rule, 3 none.
LEVELS = ("champion", "previous", "rule", "none")


def confidence_level(confidence: np.ndarray) -> np.ndarray:
    """HIGH (>= 0.5), MEDIUM (>= 0.2), LOW (> 0) or NONE (0) from a confidence in [0, 1]."""
    c = np.asarray(confidence, float)
    return np.select([c >= 0.5, c >= 0.2, c > 0], ["HIGH", "MEDIUM", "LOW"], "NONE").astype(object)


@dataclass
class EarlySignalPredictor:
    """Answer every row, degrading from models to a rule to an explicit null.

    Parameters
    ----------
    models : sequence
        Champion first, then the previous version (:class:`EarlySignalModel` or
        :class:`vfr.earnings.walkforward.CalibratedSignal`: anything with ``version``,
        ``features``, ``threshold`` and ``predict_proba``). May be empty.
    rule_threshold : float
        Rule: ``last_surprise_pct > rule_threshold`` (percent) -> positive (default 15).
    rule_probability : float
        Probability reported by the rule when it says positive (default 0.7; ``1 - 0.7``
        when it says negative), with confidence ``rule_confidence``.
    rule_confidence : float
        Confidence of rule answers (default 0.1: LOW).
    max_missing_share : float
        A model fails for a row when more than this share of its features is missing or
        non-finite (default 0.1).

    Notes
    -----
    ``confidence`` of a model answer is the distance of the probability from the model's
    decision threshold ``c``, scaled to [0, 1]: ``(p - c) / (1 - c)`` above it and
    ``(c - p) / c`` below it.
    """

    models: Sequence[EarlySignalModel | Any]
    rule_threshold: float = 15.0
    rule_probability: float = 0.7
    rule_confidence: float = 0.1
    max_missing_share: float = 0.1

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Predict for event rows (features as of the as-of date).

        Parameters
        ----------
        rows : pandas.DataFrame, shape (n, ...)
            Feature columns of the models and, for the rule, ``last_surprise_pct``.

        Returns
        -------
        pandas.DataFrame, shape (n, 8), index of ``rows``
            ``prediction`` (boolean, NA when no level answered), ``probability`` (float; the
            rule's fixed probability for rule answers; NaN for null answers), ``confidence``
            (float in [0, 1]; 0 for null), ``confidence_level`` (HIGH/MEDIUM/LOW/NONE),
            ``source`` (``"model:v<version>"``, ``"rule"`` or ``"none"``), ``fallback_level``
            (0 champion, 1 previous version, 2 rule, 3 none), ``error`` (true when no level
            answered) and ``reason`` (why earlier levels were skipped; empty for the champion).
        """
        n = len(rows)
        pred = pd.array([pd.NA] * n, dtype="boolean")
        prob = np.full(n, np.nan)
        conf = np.zeros(n)
        source = np.array(["none"] * n, dtype=object)
        level = np.full(n, 3, dtype=int)
        reasons: list[list[str]] = [[] for _ in range(n)]
        todo = np.ones(n, dtype=bool)
        for rank, model in enumerate(self.models):
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
            missing = (~np.isfinite(x)).mean(axis=1) if x.shape[1] else np.ones(n)
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
            level[idx] = min(rank, 1)
            todo &= ~ok
        if todo.any():
            if "last_surprise_pct" in rows.columns:
                last = pd.to_numeric(rows["last_surprise_pct"], errors="coerce").to_numpy(float)
            else:
                last = np.full(n, np.nan)
            ok = todo & np.isfinite(last)
            idx = np.flatnonzero(ok)
            pred[idx] = last[idx] > self.rule_threshold
            prob[idx] = np.where(last[idx] > self.rule_threshold, self.rule_probability, 1 - self.rule_probability)
            conf[idx] = self.rule_confidence
            source[idx] = "rule"
            level[idx] = 2
            for i in np.flatnonzero(todo & ~ok):
                reasons[i].append("rule declined: no past surprise known")
            todo &= ~ok
        if not self.models:
            for row in range(n):
                reasons[row].insert(0, "no model available")
        return pd.DataFrame({"prediction": pred, "probability": prob, "confidence": conf,
                             "confidence_level": confidence_level(conf), "source": source,
                             "fallback_level": level, "error": level == 3,
                             "reason": ["; ".join(r) for r in reasons]}, index=rows.index)
