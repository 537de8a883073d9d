"""Machine learning: labels, time splits, training, evaluation and the model registry.

Public interface::

    make_labels(prices) -> labels frame
    time_split(dates, fractions, embargo) -> TimeSplit
    walk_forward_schedule(dates, step, window, embargo) -> [WalkForwardWindow]
    train(features, labels, TrainConfig) -> TrainResult
    evaluate_predictions(frame, score=, label=, fwd_return=, horizon_days=) -> dict
    ModelRegistry(tracking_uri).register(...) / .load(name) -> LoadedModel
"""

from vfr.ml.evaluate import (
    baseline_scores,
    classification_metrics,
    evaluate_predictions,
    ic_by_date,
    ic_summary,
    quantile_spread,
)
from vfr.ml.labels import label_columns, make_labels
from vfr.ml.registry import CHAMPION, LoadedModel, ModelRegistry, RegistryError
from vfr.ml.splits import TimeSplit, WalkForwardWindow, time_split, walk_forward_schedule
from vfr.ml.train import DEFAULT_LGBM_PARAMS, TrainConfig, TrainResult, build_dataset, train

__all__ = [
    "CHAMPION", "DEFAULT_LGBM_PARAMS", "LoadedModel", "ModelRegistry", "RegistryError", "TimeSplit",
    "TrainConfig", "TrainResult", "WalkForwardWindow", "baseline_scores", "build_dataset",
    "classification_metrics", "evaluate_predictions", "ic_by_date", "ic_summary", "label_columns",
    "make_labels", "quantile_spread", "time_split", "train", "walk_forward_schedule",
]
