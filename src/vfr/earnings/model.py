"""Early-signal model: will the next EPS surprise exceed ``threshold`` percent?

Trained on the event dataset of :mod:`vfr.earnings.dataset` (features as of 7 trading days
before the report). Splits are time-ordered by report date with an embargo; classes are
re-weighted (LightGBM ``scale_pos_weight`` = negatives / positives of the training segment);
the decision threshold on the probability is the one maximising F1 on the validation segment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.earnings.dataset import model_feature_columns
from vfr.ml.evaluate import classification_metrics


@dataclass(frozen=True)
class EventSplit:
    """Boolean row masks of the train / validation / test segments (embargoed rows in none)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def describe(self, dates: pd.Series) -> dict[str, str]:
        """First..last report date and row count of each segment."""
        out = {}
        for name in ("train", "validation", "test"):
            d = dates[getattr(self, name)]
            out[name] = f"{d.min().date()}..{d.max().date()} ({len(d)})" if len(d) else "empty"
        return out


def split_events(reported: pd.Series, *, validation_start: str | pd.Timestamp | None = None,
                 test_start: str | pd.Timestamp | None = None,
                 test_end: str | pd.Timestamp | None = None, embargo_days: int = 14,
                 fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> EventSplit:
    """Time-ordered split of events by report date with an embargo.

    Parameters
    ----------
    reported : pandas.Series of datetime64, shape (n,)
        Report date of each event row.
    validation_start, test_start : date-like, optional
        First report date of the validation / test segments. When both are None the unique
        report dates are split by ``fractions`` with :func:`vfr.ml.splits.time_split` (its
        embargo then counts unique report dates: ``embargo_days`` of them).
    test_end : date-like, optional
        Last report date of the test segment (inclusive); default no limit.
    embargo_days : int
        Calendar days dropped before each later segment (default 14, i.e. more than the
        7 trading days between a row's as-of date and its report, so every training label is
        published before the as-of date of the first validation row).
    fractions : tuple of 3 floats
        Used only without explicit start dates.

    Returns
    -------
    EventSplit
    """
    d = pd.to_datetime(reported).to_numpy()
    if validation_start is None and test_start is None:
        from vfr.ml.splits import time_split

        ts = time_split(d, fractions, embargo=embargo_days)
        seg = [np.isin(d, getattr(ts, s).to_numpy()) for s in ("train", "validation", "test")]
        return EventSplit(*seg)
    v0 = pd.Timestamp(validation_start).to_datetime64()
    t0 = pd.Timestamp(test_start).to_datetime64()
    emb = np.timedelta64(embargo_days, "D")
    end = np.datetime64("2262-01-01") if test_end is None else pd.Timestamp(test_end).to_datetime64()
    return EventSplit(train=d < v0 - emb, validation=(d >= v0) & (d < t0 - emb),
                      test=(d >= t0) & (d <= end))


def best_f1_threshold(y: np.ndarray, prob: np.ndarray) -> float:
    """Probability threshold maximising F1 (ties: the highest threshold).

    Parameters
    ----------
    y, prob : numpy.ndarray, shape (n,)
        Labels (0/1) and predicted probabilities.

    Returns
    -------
    float
        Threshold ``c``: predict 1 when ``prob >= c``.
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thr = precision_recall_curve(y, prob)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * precision[:-1] * recall[:-1] / (precision[:-1] + recall[:-1])
    f1 = np.nan_to_num(f1, nan=-1.0)
    best = np.flatnonzero(f1 == f1.max())[-1]
    return float(thr[best])


def evaluate_signal(y: np.ndarray, prob: np.ndarray, threshold: float,
                    ret_to_report: np.ndarray | None = None) -> dict[str, float]:
    """Evaluation of the early signal on one segment.

    Parameters
    ----------
    y : numpy.ndarray, shape (n,)
        Labels (1 = surprise above the label threshold).
    prob : numpy.ndarray, shape (n,)
        Predicted probabilities (or any score; AUC and top decile use only the order).
    threshold : float
        Decision threshold on ``prob``.
    ret_to_report : numpy.ndarray, shape (n,), optional
        Return from the as-of close to the report-day close (fraction).

    Returns
    -------
    dict
        ``roc_auc``, ``precision``, ``recall``, ``f1`` at ``threshold``; ``base_rate``;
        ``precision_top_decile`` (share of positives among the 10% highest scores) and
        ``lift_top_decile`` (that over the base rate); ``flagged_share``; ``n``; and, with
        returns, ``ret_flagged`` / ``ret_unflagged`` (mean return to the report of flagged /
        unflagged rows) and ``ret_diff``.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(prob, dtype=float)
    m = classification_metrics(y, p, threshold)
    keep = ~(np.isnan(y) | np.isnan(p))
    yk, pk = y[keep], p[keep]
    k = max(1, int(np.ceil(0.1 * len(pk))))
    top = np.argsort(-pk, kind="stable")[:k]
    out = {key: m[key] for key in ("roc_auc", "precision", "recall", "f1", "base_rate")}
    out["precision_top_decile"] = float(yk[top].mean()) if len(pk) else float("nan")
    out["lift_top_decile"] = out["precision_top_decile"] / out["base_rate"] \
        if out["base_rate"] else float("nan")
    flagged = p >= threshold
    out["flagged_share"] = float(flagged[keep].mean()) if keep.any() else float("nan")
    out["n"] = float(keep.sum())
    if ret_to_report is not None:
        r = np.asarray(ret_to_report, dtype=float)
        out["ret_flagged"] = float(np.nanmean(r[keep & flagged])) if (keep & flagged).any() \
            else float("nan")
        out["ret_unflagged"] = float(np.nanmean(r[keep & ~flagged])) \
            if (keep & ~flagged).any() else float("nan")
        out["ret_diff"] = out["ret_flagged"] - out["ret_unflagged"]
    return out


@dataclass
class EarlySignalModel:
    """A fitted early-signal classifier with its decision threshold.

    The classifier is a :class:`vfr.ml.models.Model` (LightGBM by default): the same model
    interface as the direction model, so it saves, loads and explains the same way.

    Attributes
    ----------
    version : str
        Version label (e.g. ``"1"``).
    model : vfr.ml.models.Model
        The fitted classifier (``predict_proba`` = P(surprise above the label threshold)).
    features : list of str
        Feature columns, in training order.
    threshold : float
        Decision threshold on the probability (chosen on validation).
    label_threshold : float
        ``surprise_pct`` threshold of the label (percent).
    metrics : dict
        Evaluation figures recorded at training time.
    """

    version: str
    model: Any
    features: list[str]
    threshold: float
    label_threshold: float = 20.0
    metrics: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        """Probability that the surprise exceeds the label threshold, shape (n,).

        Raises
        ------
        KeyError
            If a feature column is missing from ``rows``.
        """
        missing = [c for c in self.features if c not in rows.columns]
        if missing:
            raise KeyError(f"rows lack feature columns {missing[:5]}")
        return np.asarray(self.model.predict_proba(rows[self.features]), dtype=float)

    def save(self, folder: str | Path) -> Path:
        """Write the model (``Model.save``: ``vfr_algorithm.json`` + native files) and ``meta.json`` into ``folder``."""
        folder = Path(folder)
        self.model.save(folder)
        meta = {"version": self.version, "features": self.features,
                "threshold": self.threshold, "label_threshold": self.label_threshold,
                "metrics": self.metrics}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1, default=float))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> EarlySignalModel:
        """Read a model written by :meth:`save` (also the older form: a bare LightGBM ``model.txt``)."""
        from vfr.ml.models import load_model
        from vfr.ml.models.base import LightGBMModel

        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        if (folder / "vfr_algorithm.json").exists():
            model = load_model(folder)
        else:
            import lightgbm as lgb

            model = LightGBMModel.from_booster(lgb.Booster(model_file=str(folder / "model.txt")))
        return cls(version=meta["version"], model=model, features=meta["features"],
                   threshold=meta["threshold"], label_threshold=meta["label_threshold"],
                   metrics=meta.get("metrics", {}))


def train_early_signal(events: pd.DataFrame, split: EventSplit, *, version: str = "1",
                       features: Sequence[str] | None = None, label_threshold: float = 20.0,
                       params: dict[str, Any] | None = None, num_boost_round: int = 2000,
                       seed: int = 0, algorithm: str = "lightgbm") -> EarlySignalModel:
    """Fit the classifier on the train segment, pick rounds and threshold on validation.

    Parameters
    ----------
    events : pandas.DataFrame
        Output of :func:`vfr.earnings.dataset.build_event_dataset` (``label`` column).
    split : EventSplit
        Row masks; the test segment is not touched here.
    version : str
        Version label of the returned model.
    features : sequence of str, optional
        Feature columns; default :func:`vfr.earnings.dataset.model_feature_columns`.
    label_threshold : float
        The ``surprise_pct`` threshold the labels were built with (stored with the model).
    params : dict, optional
        Parameters overriding the defaults. LightGBM defaults: learning rate 0.02, 15 leaves,
        min 100 rows per leaf, 0.8 feature/bagging fractions, ``scale_pos_weight`` =
        negatives / positives of the training rows, early stopping on validation AUC after
        100 rounds without improvement, ``sector_code`` categorical.
    num_boost_round : int
        Upper bound of boosting rounds (``n_estimators``).
    seed : int
        Random seed.
    algorithm : str
        Any of :data:`vfr.ml.models.ALGORITHMS` (the defaults above apply to LightGBM only).

    Returns
    -------
    EarlySignalModel
        With ``metrics["validation"]`` (figures at the chosen threshold) and
        ``metrics["best_iteration"]``.
    """
    from vfr.ml.models import make_model

    feats = list(model_feature_columns() if features is None else features)
    tr, va = events[split.train], events[split.validation]
    ytr, yva = tr["label"].to_numpy(dtype=float), va["label"].to_numpy(dtype=float)
    pos = max(1.0, float(ytr.sum()))
    base: dict[str, Any] = {"n_estimators": num_boost_round}
    if algorithm == "lightgbm":
        base |= {"learning_rate": 0.02, "num_leaves": 15, "min_child_samples": 100, "colsample_bytree": 0.8,
                 "subsample": 0.8, "subsample_freq": 1, "reg_lambda": 1.0, "max_bin": 255,
                 "scale_pos_weight": (len(ytr) - pos) / pos, "metric": "auc", "deterministic": True,
                 "early_stopping_rounds": 100,
                 "categorical_feature": ["sector_code"] if "sector_code" in feats else "auto"}
    base.update(params or {})
    clf = make_model(algorithm, "classification", base, seed=seed, num_threads=4)
    clf.fit(tr[feats], ytr, valid=(va[feats], yva))
    model = EarlySignalModel(version=version, model=clf, features=feats, threshold=0.5,
                             label_threshold=label_threshold)
    pva = model.predict_proba(va)
    model.threshold = best_f1_threshold(yva, pva)
    model.metrics = {"best_iteration": int(clf.best_iteration or 0),
                     "validation": evaluate_signal(yva, pva, model.threshold,
                                                   va["ret_to_report"].to_numpy())}
    return model
