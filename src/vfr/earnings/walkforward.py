"""Yearly walk-forward evaluation of the early-signal model, with calibrated probabilities.

For each test year ``Y`` the model is trained on reports published before ``Y - 1`` (less an
embargo), early-stopped, calibrated (Platt) and given its decision threshold on the reports
of year ``Y - 1``, then scores the reports of year ``Y``: one retraining per year, the
schedule the system is run on (retraining after each earnings season is finer, never coarser).
Every test row is therefore scored by a model that saw no report published in or after the
year before it, except the validation year, whose labels are all published before the
first test as-of date (embargo 14 calendar days > 7 trading days of lead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vfr.earnings.model import EarlySignalModel, best_f1_threshold, evaluate_signal, split_events, train_early_signal
from vfr.errors import UsageError


@dataclass
class CalibratedSignal:
    """An :class:`EarlySignalModel` whose probabilities pass through a Platt calibration.

    The raw model is trained with class re-weighting (``scale_pos_weight``), so its
    probabilities are not frequencies; the calibrator (fitted on the validation year) maps
    them to ones, and :attr:`threshold` is chosen on the calibrated scale.

    Attributes
    ----------
    model : EarlySignalModel
        The fitted classifier (its own ``threshold`` is on the raw scale and unused here).
    calibration : dict
        :meth:`vfr.ml.calibration.Calibrator.to_dict` output.
    threshold : float
        Decision threshold on the calibrated probability (maximises validation F1).
    """

    model: EarlySignalModel
    calibration: dict[str, Any]
    threshold: float

    @property
    def features(self) -> list[str]:
        return list(self.model.features)

    @property
    def version(self) -> str:
        return self.model.version

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of a surprise above the label threshold, shape (n,)."""
        from vfr.ml.calibration import Calibrator

        return Calibrator.from_dict(self.calibration).transform(self.model.predict_proba(rows))


def fit_calibrated(events: pd.DataFrame, *, validation_year: int, embargo_days: int = 14,
                   label_threshold: float = 20.0, version: str = "1", seed: int = 0,
                   algorithm: str = "lightgbm", features: Sequence[str] | None = None) -> CalibratedSignal:
    """Train on reports before ``validation_year`` and calibrate on that year's reports.

    Parameters
    ----------
    events : pandas.DataFrame
        :func:`vfr.earnings.build_event_dataset` output (``reported_date``, ``label``, features).
    validation_year : int
        Reports of this calendar year early-stop the model, fit the Platt calibration and
        choose the threshold; reports within ``embargo_days`` before its 1 January are dropped.

    Returns
    -------
    CalibratedSignal

    Raises
    ------
    UsageError
        If the training or validation segment is empty or has one class only.
    """
    from vfr.ml.calibration import Calibrator

    v0 = pd.Timestamp(f"{validation_year}-01-01")
    split = split_events(events["reported_date"], validation_start=v0,
                         test_start=pd.Timestamp(f"{validation_year + 1}-01-01"), embargo_days=embargo_days)
    # the validation segment must end before the next year: split_events' embargo before the
    # test start drops its last ``embargo_days``; keep them (nothing is tested here)
    d = events["reported_date"].to_numpy()
    split.validation[:] = (d >= v0.to_datetime64()) & (d < pd.Timestamp(f"{validation_year + 1}-01-01").to_datetime64())
    for name in ("train", "validation"):
        y = events.loc[getattr(split, name), "label"]
        if y.nunique() < 2:
            raise UsageError(f"early signal, validation year {validation_year}: the {name} segment has "
                             f"{len(y)} reports and {y.nunique()} label class(es); need both classes")
    raw = train_early_signal(events, split, version=version, label_threshold=label_threshold, seed=seed,
                             algorithm=algorithm, features=features)
    va = events[split.validation]
    p_raw = raw.predict_proba(va)
    y_va = va["label"].to_numpy(float)
    cal = Calibrator("platt").fit(p_raw, y_va)
    p_cal = cal.transform(p_raw)
    out = CalibratedSignal(model=raw, calibration=cal.to_dict(), threshold=best_f1_threshold(y_va, p_cal))
    raw.metrics["validation_year"] = validation_year
    raw.metrics["validation_calibrated"] = evaluate_signal(y_va, p_cal, out.threshold,
                                                           va["ret_to_report"].to_numpy())
    return out


def yearly_walk_forward(events: pd.DataFrame, years: Sequence[int], *, embargo_days: int = 14,
                        label_threshold: float = 20.0, seed: int = 0, algorithm: str = "lightgbm",
                        progress: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score each test year with a model retrained on everything before the year before it.

    Parameters
    ----------
    events : pandas.DataFrame
        :func:`vfr.earnings.build_event_dataset` output.
    years : sequence of int
        Test years (calendar years of ``reported_date``), ascending.
    progress : callable, optional
        Called with 1 after each year.

    Returns
    -------
    (predictions, per_year)
        ``predictions``: the test rows (``symbol, reported_date, asof_date, surprise_pct,
        label, ret_to_report``) with ``probability`` (calibrated), ``threshold``,
        ``flagged`` and ``test_year``. ``per_year``: one row per year (plus ``all``) with
        ``n``, ``base_rate``, ``roc_auc``, ``precision``, ``recall``, ``precision_top_decile``,
        ``brier``, ``brier_base_rate`` (Brier of the constant forecast = the validation year's
        base rate, known before the test year), ``brier_skill`` (1 - brier / brier_base_rate)
        and ``best_iteration``.

    Raises
    ------
    UsageError
        If a year has no reports or too few earlier ones to train on.
    """
    preds, rows = [], []
    year_of = events["reported_date"].dt.year
    for year in sorted(int(y) for y in years):
        test = events[year_of == year]
        if test.empty:
            raise UsageError(f"early signal: no reports in test year {year}")
        sig = fit_calibrated(events[year_of < year], validation_year=year - 1, embargo_days=embargo_days,
                             label_threshold=label_threshold, version=str(year), seed=seed, algorithm=algorithm)
        p = sig.predict_proba(test)
        base = float(events.loc[year_of == year - 1, "label"].mean())
        preds.append(test[["symbol", "reported_date", "asof_date", "surprise_pct", "label", "ret_to_report"]]
                     .assign(probability=p, threshold=sig.threshold, flagged=p >= sig.threshold, test_year=year,
                             base_rate_forecast=base))
        if progress is not None:
            progress(1)
        rows.append({"year": str(year), "best_iteration": sig.model.metrics.get("best_iteration")})
    out = pd.concat(preds, ignore_index=True)
    per_year = per_year_table(out)
    iters = {r["year"]: r["best_iteration"] for r in rows}
    per_year["best_iteration"] = per_year["year"].map(iters)
    return out, per_year


def per_year_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """Out-of-sample figures per test year (and ``all``) of walk-forward predictions.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``test_year, label, probability, flagged, base_rate_forecast`` (the predictions of
        :func:`yearly_walk_forward`).

    Returns
    -------
    pandas.DataFrame
        ``year, n, base_rate, roc_auc, precision, recall, flagged_share,
        precision_top_decile, brier, brier_base_rate, brier_skill``; precision and recall at
        each year's threshold; Brier score (Brier 1950) of the calibrated probabilities and of
        the constant base-rate forecast; ``brier_skill`` = 1 - brier / brier_base_rate (> 0:
        better than the base rate).
    """
    from vfr.ml.calibration import brier_score

    table = []
    groups = [*((str(y), g) for y, g in predictions.groupby("test_year")), ("all", predictions)]
    for key, part in groups:
        y, p = part["label"].to_numpy(float), part["probability"].to_numpy(float)
        m = evaluate_signal(y, p, 0.5, None)
        flagged = part["flagged"].to_numpy(bool)
        tp = float((y[flagged] == 1).sum())
        brier = brier_score(y, p)
        brier0 = brier_score(y, part["base_rate_forecast"].to_numpy(float))
        table.append({"year": key, "n": int(len(part)), "base_rate": float(y.mean()), "roc_auc": m["roc_auc"],
                      "precision": tp / flagged.sum() if flagged.any() else float("nan"),
                      "recall": tp / y.sum() if y.sum() else float("nan"),
                      "flagged_share": float(flagged.mean()),
                      "precision_top_decile": m["precision_top_decile"], "brier": brier,
                      "brier_base_rate": brier0, "brier_skill": 1.0 - brier / brier0 if brier0 else float("nan")})
    return pd.DataFrame(table)
