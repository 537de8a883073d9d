"""Probability calibration (isotonic or Platt), reliability curves and the Brier score.

Fit a :class:`Calibrator` on out-of-sample predictions of a period *before* the one it is
applied to (e.g. the previous walk-forward block), never on the rows it will transform.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_EPS = 1e-6


def brier_score(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared difference between the 0/1 outcome and the probability (NaN rows dropped).

    Lower is better; a constant forecast of the base rate p scores p (1 - p).
    """
    y, p = np.asarray(y, float), np.asarray(prob, float)
    keep = ~(np.isnan(y) | np.isnan(p))
    return float(np.mean((p[keep] - y[keep]) ** 2)) if keep.any() else float("nan")


def reliability_curve(y: np.ndarray, prob: np.ndarray, n_bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Observed frequency of class 1 per bin of predicted probability.

    Parameters
    ----------
    y, prob : array-like of shape (n,)
        Outcomes (0/1) and predicted probabilities; NaN rows dropped.
    n_bins : int
        Number of bins.
    strategy : {"quantile", "uniform"}
        Equal-count bins (stock-direction probabilities crowd near 0.5) or equal-width bins on [0, 1].

    Returns
    -------
    DataFrame with columns ``mean_predicted``, ``fraction_positive``, ``count`` (one row per
    non-empty bin, in increasing probability). A calibrated model has the two close.
    """
    y, p = np.asarray(y, float), np.asarray(prob, float)
    keep = ~(np.isnan(y) | np.isnan(p))
    y, p = y[keep], p[keep]
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        raise ValueError(f"unknown strategy {strategy!r}; expected 'quantile' or 'uniform'")
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y}).groupby("bin")
    return pd.DataFrame({"mean_predicted": frame["p"].mean(), "fraction_positive": frame["y"].mean(),
                         "count": frame.size()}).reset_index(drop=True)


class Calibrator:
    """Maps raw probabilities to calibrated ones.

    Parameters
    ----------
    method : {"isotonic", "platt"}
        ``isotonic``: monotone step function (scikit-learn ``IsotonicRegression``, clipped
        out of range). ``platt``: logistic regression on the logit of the probability
        (Platt 1999).
    """

    def __init__(self, method: str = "isotonic") -> None:
        if method not in ("isotonic", "platt"):
            raise ValueError(f"unknown calibration method {method!r}; expected 'isotonic' or 'platt'")
        self.method = method
        self.state: dict[str, Any] = {}

    def fit(self, prob: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on out-of-sample probabilities and their outcomes (NaN rows dropped)."""
        p, yy = np.asarray(prob, float), np.asarray(y, float)
        keep = ~(np.isnan(p) | np.isnan(yy))
        p, yy = p[keep], yy[keep]
        if len(np.unique(yy)) < 2:
            raise ValueError("Calibrator.fit: outcomes must contain both classes")
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, yy)
            self.state = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
        else:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6).fit(_logit(p)[:, None], yy.astype(int))
            self.state = {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
        return self

    def transform(self, prob: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape as ``prob``, in [0, 1]."""
        if not self.state:
            raise ValueError("Calibrator.transform: not fitted")
        p = np.asarray(prob, float)
        if self.method == "isotonic":
            return np.interp(p, self.state["x"], self.state["y"])
        return 1.0 / (1.0 + np.exp(-(self.state["a"] * _logit(p) + self.state["b"])))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "state": self.state}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        cal = cls(d["method"])
        cal.state = dict(d["state"])
        return cal


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))
