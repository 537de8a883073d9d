"""Machine learning: labels, time splits, training, evaluation and the model registry.

Public interface::

    make_labels(prices) -> labels frame
    time_split(dates, fractions, embargo) -> TimeSplit
    walk_forward_schedule(dates, step, window, embargo) -> [WalkForwardWindow]
    train(features, labels, TrainConfig) -> TrainResult
    evaluate_predictions(frame, score=, label=, fwd_return=, horizon_days=) -> dict
    ModelRegistry(tracking_uri).register(...) / .load(name) -> LoadedModel
        .promote / .rollback / .start_ab_test / .route (aliases champion, challenger)
    make_model(algorithm, objective, params) -> Model   (vfr.ml.models: the model zoo)
    purged_kfold / cross_validate / tune(TuneConfig)    (vfr.ml.tuning: purged CV + Optuna)
    Ensemble / fit_stacking / performance_weights       (vfr.ml.ensembles)
    Calibrator / reliability_curve / brier_score        (vfr.ml.calibration)
    decide / DEPLOY_RULES / paired_test                 (vfr.ml.deploy)
    model_report                                        (vfr.ml.report)
    run_quality_gates / enforce / GateThresholds        (vfr.ml.quality: data quality gates)
    build_lineage / write_lineage / DatasetLineage      (vfr.ml.lineage: dataset lineage record)

Names are imported lazily (PEP 562 module ``__getattr__``): ``import vfr.ml`` is cheap and
``vfr.ml.train`` (LightGBM), ``vfr.ml.registry`` (MLflow), ``vfr.ml.tuning`` (Optuna) and the
model zoo are imported on first use of one of their names. IC / Rank IC live in
:mod:`vfr.metrics` and are re-exported here.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

#: Public name -> submodule that defines it (imported on first attribute access).
_LAZY: dict[str, str] = {
    "Calibrator": "vfr.ml.calibration",
    "brier_score": "vfr.ml.calibration",
    "reliability_curve": "vfr.ml.calibration",
    "DEPLOY_RULES": "vfr.ml.deploy",
    "DeployRule": "vfr.ml.deploy",
    "decide": "vfr.ml.deploy",
    "paired_test": "vfr.ml.deploy",
    "Dataset": "vfr.ml.dataset",
    "build_dataset": "vfr.ml.dataset",
    "Ensemble": "vfr.ml.ensembles",
    "fit_stacking": "vfr.ml.ensembles",
    "performance_weights": "vfr.ml.ensembles",
    "baseline_scores": "vfr.ml.evaluate",
    "classification_metrics": "vfr.ml.evaluate",
    "evaluate_predictions": "vfr.ml.evaluate",
    "ic_by_date": "vfr.ml.evaluate",
    "ic_summary": "vfr.ml.evaluate",
    "quantile_spread": "vfr.ml.evaluate",
    "label_columns": "vfr.ml.labels",
    "make_labels": "vfr.ml.labels",
    "DatasetLineage": "vfr.ml.lineage",
    "build_lineage": "vfr.ml.lineage",
    "describe_source": "vfr.ml.lineage",
    "read_lineage": "vfr.ml.lineage",
    "write_lineage": "vfr.ml.lineage",
    "ALGORITHMS": "vfr.ml.models",
    "Model": "vfr.ml.models",
    "ModelError": "vfr.ml.models",
    "load_model": "vfr.ml.models",
    "make_model": "vfr.ml.models",
    "GateThresholds": "vfr.ml.quality",
    "QualityGateError": "vfr.ml.quality",
    "QualityReport": "vfr.ml.quality",
    "enforce": "vfr.ml.quality",
    "run_quality_gates": "vfr.ml.quality",
    "CHALLENGER": "vfr.ml.registry",
    "CHAMPION": "vfr.ml.registry",
    "LoadedModel": "vfr.ml.registry",
    "ModelRegistry": "vfr.ml.registry",
    "RegistryError": "vfr.ml.registry",
    "RegistryUnavailable": "vfr.ml.registry",
    "model_report": "vfr.ml.report",
    "TimeSplit": "vfr.ml.splits",
    "WalkForwardWindow": "vfr.ml.splits",
    "time_split": "vfr.ml.splits",
    "walk_forward_schedule": "vfr.ml.splits",
    "DEFAULT_LGBM_PARAMS": "vfr.ml.train",
    "TrainConfig": "vfr.ml.train",
    "TrainResult": "vfr.ml.train",
    "train": "vfr.ml.train",
    "SEARCH_SPACES": "vfr.ml.tuning",
    "cross_validate": "vfr.ml.tuning",
    "purged_kfold": "vfr.ml.tuning",
    "tune": "vfr.ml.tuning",
    "TuneConfig": "vfr.ml.tuning",
}

__all__ = [
    "ALGORITHMS",
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_LGBM_PARAMS",
    "DEPLOY_RULES",
    "SEARCH_SPACES",
    "Calibrator",
    "Dataset",
    "DatasetLineage",
    "DeployRule",
    "Ensemble",
    "GateThresholds",
    "LoadedModel",
    "Model",
    "ModelError",
    "ModelRegistry",
    "QualityGateError",
    "QualityReport",
    "RegistryError",
    "RegistryUnavailable",
    "TimeSplit",
    "TrainConfig",
    "TrainResult",
    "TuneConfig",
    "WalkForwardWindow",
    "baseline_scores",
    "brier_score",
    "build_dataset",
    "build_lineage",
    "classification_metrics",
    "cross_validate",
    "decide",
    "describe_source",
    "enforce",
    "evaluate_predictions",
    "fit_stacking",
    "ic_by_date",
    "ic_summary",
    "label_columns",
    "load_model",
    "make_labels",
    "make_model",
    "model_report",
    "paired_test",
    "performance_weights",
    "purged_kfold",
    "quantile_spread",
    "read_lineage",
    "reliability_curve",
    "run_quality_gates",
    "time_split",
    "train",
    "tune",
    "walk_forward_schedule",
    "write_lineage",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access (PEP 562) and cache the value.

    Raises
    ------
    AttributeError
        If ``name`` is not a public name of :mod:`vfr.ml` (nor a submodule).
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vfr.ml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _PackageModule(types.ModuleType):
    """This package's module type: keeps a public name bound to its value, not to a submodule.

    ``train`` is both a function and the submodule ``vfr.ml.train``; when that submodule is
    first imported, the import system sets ``vfr.ml.train`` to the module. This hook stores
    the function instead, as the eager ``from vfr.ml.train import train`` of the package did.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__ and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _PackageModule


if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from vfr.ml.calibration import Calibrator, brier_score, reliability_curve
    from vfr.ml.dataset import Dataset, build_dataset
    from vfr.ml.deploy import DEPLOY_RULES, DeployRule, decide, paired_test
    from vfr.ml.ensembles import Ensemble, fit_stacking, performance_weights
    from vfr.ml.evaluate import (
        baseline_scores,
        classification_metrics,
        evaluate_predictions,
        ic_by_date,
        ic_summary,
        quantile_spread,
    )
    from vfr.ml.labels import label_columns, make_labels
    from vfr.ml.lineage import (
        DatasetLineage,
        build_lineage,
        describe_source,
        read_lineage,
        write_lineage,
    )
    from vfr.ml.models import ALGORITHMS, Model, ModelError, load_model, make_model
    from vfr.ml.quality import (
        GateThresholds,
        QualityGateError,
        QualityReport,
        enforce,
        run_quality_gates,
    )
    from vfr.ml.registry import (
        CHALLENGER,
        CHAMPION,
        LoadedModel,
        ModelRegistry,
        RegistryError,
        RegistryUnavailable,
    )
    from vfr.ml.report import model_report
    from vfr.ml.splits import (
        TimeSplit,
        WalkForwardWindow,
        time_split,
        walk_forward_schedule,
    )
    from vfr.ml.train import (
        DEFAULT_LGBM_PARAMS,
        TrainConfig,
        TrainResult,
        train,
    )
    from vfr.ml.tuning import SEARCH_SPACES, TuneConfig, cross_validate, purged_kfold, tune
