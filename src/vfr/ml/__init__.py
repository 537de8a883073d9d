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
    purged_kfold / cross_validate / tune                (vfr.ml.tuning: purged CV + Optuna)
    Ensemble / fit_stacking / performance_weights       (vfr.ml.ensembles)
    Calibrator / reliability_curve / brier_score        (vfr.ml.calibration)
    decide / DEPLOY_RULES / paired_test                 (vfr.ml.deploy)
    model_report                                        (vfr.ml.report)
    run_quality_gates / enforce / GateThresholds        (vfr.ml.quality: data quality gates)
    build_lineage / write_lineage / DatasetLineage      (vfr.ml.lineage: dataset lineage record)
"""

from vfr.ml.calibration import Calibrator, brier_score, reliability_curve
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
    build_dataset,
    train,
)
from vfr.ml.tuning import SEARCH_SPACES, cross_validate, purged_kfold, tune

__all__ = [
    "ALGORITHMS",
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_LGBM_PARAMS",
    "DEPLOY_RULES",
    "SEARCH_SPACES",
    "Calibrator",
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
    "TimeSplit",
    "TrainConfig",
    "TrainResult",
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
