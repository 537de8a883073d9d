"""Early signal of large positive EPS surprises, 7 trading days before the report.

Public interface:

- :func:`build_event_dataset`: one row per report with point-in-time features.
- :func:`split_events`, :func:`train_early_signal`, :func:`evaluate_signal`,
  :class:`EarlySignalModel`: time-ordered, embargoed training and evaluation.
- :class:`EarlySignalPredictor`: serving with the fallback chain (models -> rule -> null).

Measured figures are in ``docs/early_signal.md``.
"""

from vfr.earnings.dataset import (
    SURPRISE_FEATURES,
    asof_dates,
    build_event_dataset,
    clean_reports,
    model_feature_columns,
    past_surprise_features,
)
from vfr.earnings.model import (
    EarlySignalModel,
    EventSplit,
    best_f1_threshold,
    evaluate_signal,
    split_events,
    train_early_signal,
)
from vfr.earnings.predictor import PREDICTION_COLUMNS, EarlySignalPredictor

__all__ = ["PREDICTION_COLUMNS", "SURPRISE_FEATURES", "EarlySignalModel",
           "EarlySignalPredictor", "EventSplit", "asof_dates", "best_f1_threshold",
           "build_event_dataset", "clean_reports", "evaluate_signal", "model_feature_columns",
           "past_surprise_features", "split_events", "train_early_signal"]
