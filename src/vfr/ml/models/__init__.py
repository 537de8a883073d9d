"""The model zoo: every algorithm behind one small interface.

Each model is a :class:`Model` with ``fit``, ``predict``, ``predict_proba``, ``score``,
``save``, ``load`` and ``feature_importances``, so the trainer, tuner, ensembles, registry
and engine never branch on the algorithm. Build one with :func:`make_model` and read one
back with :func:`load_model`.

Algorithms (:data:`ALGORITHMS`): ``lightgbm``, ``xgboost``, ``catboost`` (the ``xgboost`` and
``catboost`` extras, imported lazily), ``random_forest``, ``linear`` (logistic regression for
classification, ridge for regression; scikit-learn) and ``lstm`` (PyTorch CPU, imported
lazily; the ``torch`` extra).

Objectives (:data:`OBJECTIVES`): ``classification`` (the direction label, 0/1) and
``regression`` (a forward or excess return, fraction).
"""

from vfr.ml.models.base import OBJECTIVES, Model, ModelError
from vfr.ml.models.ensemble import Ensemble
from vfr.ml.models.zoo import ALGORITHMS, load_model, make_model

__all__ = ["ALGORITHMS", "OBJECTIVES", "Ensemble", "Model", "ModelError", "load_model", "make_model"]
