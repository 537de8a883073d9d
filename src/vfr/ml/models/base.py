"""The :class:`Model` interface and the tabular algorithms (gradient boosting, forests, linear).

Inputs are feature frames: one row per (date, symbol), one column per feature. Columns
``symbol`` and ``date`` may be present; tabular models ignore them, the LSTM uses them to
build each row's window of the same symbol's previous rows. Rows whose target is NaN are
not fitted on (the LSTM still uses them as context for its windows).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from vfr.errors import VFRError

OBJECTIVES = ("classification", "regression")
ID_COLUMNS = ("symbol", "date")
_META = "vfr_algorithm.json"


class ModelError(VFRError, ValueError):
    """A model was misused (unknown algorithm, unfitted, missing features) or its files are unusable."""


def require(module: str, extra: str, what: str) -> Any:
    """Import the optional ``module`` or raise :class:`ModelError` naming the extra that installs it.

    XGBoost, CatBoost and SHAP are extras (``pip install 'vfr[xgboost]'``, ``'vfr[catboost]'``,
    ``'vfr[shap]'``, or ``'vfr[all]'``), imported only when a model of theirs is fitted or loaded.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(f"{what} needs {module.split('.')[0]}, which is not installed: "
                         f"pip install 'vfr[{extra}]'") from exc


@dataclass
class BinnedRows:
    """A feature matrix binned once by LightGBM (:meth:`LightGBMModel.bin_rows`).

    ``dataset`` is the constructed ``lightgbm.Dataset`` of every row (NaN targets stored as 0,
    never fitted on), ``y`` the targets with their NaN, ``feature_columns`` the names.
    """

    dataset: Any = field(repr=False)
    y: np.ndarray = field(repr=False)
    feature_columns: list[str]


class Model(ABC):
    """One algorithm behind the common interface.

    Parameters
    ----------
    objective : {"classification", "regression"}
        ``classification``: the target is 0/1 (direction), :meth:`predict_proba` is P(y=1).
        ``regression``: the target is a return (fraction); :meth:`predict` is the expected
        return and :meth:`predict_proba` the monotone pseudo-probability
        ``1 / (1 + exp(-prediction / std(y_train)))``, so probability-based consumers
        (scoring, ensembles) can rank with either objective.
    params : dict, optional
        Algorithm-specific hyper-parameters, merged over the class's :attr:`defaults`.
    seed : int
        Random seed.
    num_threads : int
        Threads the library may use (1 keeps fits polite on a shared 2-core machine).
    """

    algorithm: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    #: Gradient boosting: ``n_estimators`` is a number of rounds that early stopping on
    #: ``valid`` shortens (:attr:`best_iteration`); :meth:`refit_params` fixes it for refits.
    iterative: ClassVar[bool] = False
    #: The model reads ``symbol`` and ``date`` from its input (the LSTM's windows).
    uses_ids: ClassVar[bool] = False
    #: The model bins a matrix once for fits on many of its row subsets (LightGBM:
    #: ``bin_rows`` and ``fit_binned``).
    reuses_bins: ClassVar[bool] = False

    def __init__(self, objective: str = "classification", params: dict[str, Any] | None = None, *,
                 seed: int = 42, num_threads: int = 1) -> None:
        if objective not in OBJECTIVES:
            raise ModelError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.objective = objective
        self.params = dict(self.defaults) | dict(params or {})
        self.seed = seed
        self.num_threads = num_threads
        self.feature_columns: list[str] = []
        self.best_iteration: int | None = None
        self.y_scale = 1.0
        self.fit_seconds = float("nan")

    # -- the interface ----------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series, *,
            valid: tuple[pd.DataFrame, np.ndarray | pd.Series] | None = None) -> Model:
        """Fit on the rows of ``X`` whose target is known.

        Parameters
        ----------
        X : DataFrame of shape (n_rows, n_features [+ symbol, date])
            Feature columns (every column except ``symbol``/``date``, in this order, becomes
            the model's :attr:`feature_columns`). NaN features are allowed.
        y : array-like of shape (n_rows,)
            Target: 0/1 for classification, a return for regression; NaN = not a target.
        valid : (DataFrame, array-like), optional
            Validation segment for early stopping (later in time than the training rows).

        Returns
        -------
        Model
            ``self``, fitted.

        Raises
        ------
        ModelError
            If no row has a target, the classification target is not 0/1 with both classes,
            or ``valid`` lacks a feature column.
        """
        self.feature_columns = [c for c in X.columns if c not in ID_COLUMNS]
        y = np.asarray(y, dtype=np.float64)
        if len(y) != len(X):
            raise ModelError(f"fit: X has {len(X)} rows but y has {len(y)}")
        self._check_target(y[~np.isnan(y)])
        start = time.perf_counter()
        self._fit(X, y, valid)
        self.fit_seconds = time.perf_counter() - start
        return self

    def _check_target(self, known: np.ndarray) -> None:
        """Validate the known targets of a fit; set :attr:`y_scale` for regression."""
        if not len(known):
            raise ModelError("fit: no row has a known target")
        if self.objective == "classification":
            classes = np.unique(known)
            if not set(classes) <= {0.0, 1.0} or len(classes) < 2:
                raise ModelError(f"fit: classification needs targets 0 and 1, got classes {classes.tolist()}")
        else:
            self.y_scale = float(np.std(known)) or 1.0

    def ranking_score(self, X: pd.DataFrame) -> np.ndarray:
        """The value stocks are ranked by: P(y=1) for classification, the predicted return for regression.

        (Not scikit-learn's ``score(X, y)``, which is a goodness of fit.)

        Returns
        -------
        ndarray of shape (n_rows,), float64.
        """
        self._check_fitted()
        return np.asarray(self._raw(X), dtype=np.float64)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(y=1) per row (regression: the pseudo-probability described in the class doc).

        Returns
        -------
        ndarray of shape (n_rows,), values in [0, 1].
        """
        raw = self.ranking_score(X)
        if self.objective == "classification":
            return np.clip(raw, 0.0, 1.0)
        return 1.0 / (1.0 + np.exp(-raw / self.y_scale))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class (0/1, at probability 0.5) for classification; expected return for regression.

        Returns
        -------
        ndarray of shape (n_rows,).
        """
        raw = self.ranking_score(X)
        return (raw >= 0.5).astype(np.int64) if self.objective == "classification" else raw

    def feature_importances(self) -> pd.Series:
        """Importance per feature (float, higher = more important), sorted descending.

        The measure is the algorithm's own (boosters: total gain; forest: mean impurity
        decrease; linear: |coefficient| on standardised inputs; LSTM: L1 norm of the input
        weights), so compare ranks within one model, not values across algorithms.
        """
        self._check_fitted()
        values = np.asarray(self._importances(), dtype=float)
        return pd.Series(values, index=self.feature_columns, name="importance").sort_values(ascending=False)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions (SHAP values) to each row's raw prediction.

        Tree SHAP of the library (LightGBM ``pred_contrib``, XGBoost ``pred_contribs``,
        CatBoost ``ShapValues``; Lundberg & Lee, 2017), in the model's raw units (log-odds for
        classification), without the expected-value column.

        Returns
        -------
        DataFrame of shape (n_rows, n_features)
            Index aligned with ``X``, columns :attr:`feature_columns`.

        Raises
        ------
        ModelError
            If the algorithm has no contribution method (forest, linear, LSTM, ensembles), or
            a feature is missing from ``X``.
        """
        self._check_fitted()
        values = np.asarray(self._contributions(X), dtype=np.float64)
        return pd.DataFrame(values, index=X.index, columns=self.feature_columns)

    def bin_rows(self, X: np.ndarray, y: np.ndarray, feature_columns: list[str], *,
                 bins_from: np.ndarray, sample: int = 200_000) -> BinnedRows:
        """Bin a matrix once for many :meth:`fit_binned` fits (models with :attr:`reuses_bins`).

        Raises
        ------
        ModelError
            The algorithm does not reuse bins.
        """
        raise ModelError(f"{self.algorithm}: this algorithm does not reuse binned matrices")

    def fit_binned(self, binned: BinnedRows, rows: np.ndarray, *, valid_rows: np.ndarray | None = None) -> Model:
        """:meth:`fit` on rows of a :meth:`bin_rows` matrix (models with :attr:`reuses_bins`).

        Raises
        ------
        ModelError
            The algorithm does not reuse bins.
        """
        raise ModelError(f"{self.algorithm}: this algorithm does not reuse binned matrices")

    def refit_params(self) -> dict[str, Any]:
        """Parameters for a refit without a validation segment: ``n_estimators`` fixed at
        :attr:`best_iteration` for gradient boosting (:attr:`iterative`), else :attr:`params`."""
        if self.iterative and self.best_iteration:
            return self.params | {"n_estimators": int(self.best_iteration)}
        return dict(self.params)

    def save(self, path: str | Path) -> Path:
        """Write the model into the folder ``path`` (created): ``vfr_algorithm.json`` + native files.

        Returns
        -------
        Path
            The folder.
        """
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"algorithm": self.algorithm, "objective": self.objective, "params": self.params, "seed": self.seed,
                "feature_columns": self.feature_columns, "best_iteration": self.best_iteration,
                "y_scale": self.y_scale, "state": self._state()}
        self._save_native(path)
        (path / _META).write_text(json.dumps(meta, indent=2, default=_json_default))
        return path

    # -- helpers for subclasses ------------------------------------------------------
    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        if list(X.columns) == self.feature_columns and (X.dtypes == np.float32).all():
            return X.to_numpy()  # a frame over one float32 matrix (vfr.ml.Dataset.features): no copy
        missing = [c for c in self.feature_columns if c not in X.columns]
        if missing:
            raise ModelError(f"{self.algorithm}: input lacks features {missing[:5]}{'...' if len(missing) > 5 else ''}")
        return X[self.feature_columns].to_numpy(dtype=np.float32, na_value=np.nan)

    def _labelled(self, X: pd.DataFrame, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = ~np.isnan(y)
        if keep.all():
            return self._matrix(X), y
        return self._matrix(X)[keep], y[keep]

    def _valid_arrays(self, valid) -> tuple[np.ndarray, np.ndarray] | None:
        if valid is None:
            return None
        return self._labelled(valid[0], np.asarray(valid[1], dtype=np.float64))

    def _check_fitted(self) -> None:
        if not self.feature_columns:
            raise ModelError(f"{self.algorithm}: the model is not fitted")

    def _state(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, Any]) -> None:  # noqa: B027 - an optional hook, empty by default
        pass

    def _contributions(self, X: pd.DataFrame) -> np.ndarray:
        raise ModelError(f"{self.algorithm}: this algorithm has no per-feature contributions (SHAP)")

    @abstractmethod
    def _fit(self, X: pd.DataFrame, y: np.ndarray, valid) -> None: ...

    @abstractmethod
    def _raw(self, X: pd.DataFrame) -> np.ndarray: ...

    @abstractmethod
    def _importances(self) -> np.ndarray: ...

    @abstractmethod
    def _save_native(self, path: Path) -> None: ...

    @abstractmethod
    def _load_native(self, path: Path) -> None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(objective={self.objective!r}, features={len(self.feature_columns)})"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# -- LightGBM -----------------------------------------------------------------------
class LightGBMModel(Model):
    """LightGBM (``lightgbm.train``), early stopping on ``valid``. Defaults as in docs/decisions.md."""

    algorithm = "lightgbm"
    iterative = True
    defaults = {"learning_rate": 0.05, "num_leaves": 31, "max_depth": -1, "min_child_samples": 200,
                "colsample_bytree": 0.8, "subsample": 0.7, "subsample_freq": 1, "reg_lambda": 1.0, "max_bin": 63,
                "n_estimators": 200, "early_stopping_rounds": 30}

    #: :meth:`bin_rows` / :meth:`fit_binned` fit many row subsets of one binned matrix.
    reuses_bins: ClassVar[bool] = True

    def _train_params(self) -> tuple[dict[str, Any], int, int, Any]:
        """``lightgbm.train`` parameters, rounds, patience and categorical features of :attr:`params`."""
        p = dict(self.params)
        rounds, patience = int(p.pop("n_estimators")), int(p.pop("early_stopping_rounds"))
        categorical = p.pop("categorical_feature", "auto")
        # objective-dependent defaults first, so ``params`` may override metric (e.g. "auc")
        p = {"objective": "binary" if self.objective == "classification" else "regression",
             "metric": "binary_logloss" if self.objective == "classification" else "l2"} | p
        p |= {"seed": self.seed, "num_threads": self.num_threads, "verbose": -1}
        if not p.get("force_row_wise"):  # LightGBM's own choice on these matrices, without its timing test per fit
            p.setdefault("force_col_wise", True)
        return p, rounds, patience, categorical

    def _fit(self, X, y, valid) -> None:
        import lightgbm as lgb

        Xa, ya = self._labelled(X, y)
        p, _, _, categorical = self._train_params()
        train_set = lgb.Dataset(Xa, ya, feature_name=self.feature_columns, categorical_feature=categorical,
                                free_raw_data=True)
        va = self._valid_arrays(valid)
        valid_set = lgb.Dataset(va[0], va[1], reference=train_set) if va is not None and len(va[1]) else None
        self._boost(train_set, valid_set)

    def _boost(self, train_set: Any, valid_set: Any) -> None:
        import lightgbm as lgb

        p, rounds, patience, _ = self._train_params()
        kwargs: dict[str, Any] = {}
        if valid_set is not None:
            kwargs = {"valid_sets": [valid_set], "callbacks": [lgb.early_stopping(patience, verbose=False)]}
        self.booster = lgb.train(p, train_set, num_boost_round=rounds, **kwargs)
        self.best_iteration = int(self.booster.best_iteration or rounds)

    def bin_rows(self, X: np.ndarray, y: np.ndarray, feature_columns: list[str], *,
                 bins_from: np.ndarray, sample: int = 200_000) -> BinnedRows:
        """Bin every row of ``X`` once, with boundaries found on the rows ``bins_from`` only.

        Many fits on subsets of the rows (:meth:`fit_binned`: the walk-forward windows of
        :func:`vfr.ml.train` and their early-stopping probes) then skip LightGBM's binning,
        which costs more than the few boosting rounds of a walk-forward fit. The boundaries are
        LightGBM's own (``max_bin`` quantile bins, ``lightgbm.Dataset(reference=...)``) found on
        at most ``sample`` rows of ``bins_from`` (LightGBM's ``bin_construct_sample_cnt``,
        drawn with the model's seed), so a fit sees no boundary taken from rows outside
        ``bins_from``: point in time when ``bins_from`` ends before every row later fitted on
        is predicted.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features), float32
            Feature matrix (a contiguous view is not copied).
        y : ndarray of shape (n_rows,)
            Target; NaN = not a target (such rows are never fitted on).
        feature_columns : list of str
            The names of ``X``'s columns.
        bins_from : ndarray of int
            Rows of ``X`` whose values set the bin boundaries.
        sample : int
            Most rows of ``bins_from`` read for the boundaries.

        Returns
        -------
        BinnedRows
        """
        import lightgbm as lgb

        if X.ndim != 2 or X.shape[1] != len(feature_columns) or len(y) != len(X):
            raise ModelError(f"bin_rows: X {X.shape}, y ({len(y)},) and {len(feature_columns)} feature names "
                             "do not agree")
        bins_from = np.asarray(bins_from)
        if len(bins_from) > sample:
            rng = np.random.default_rng(self.seed)
            bins_from = np.sort(rng.choice(bins_from, sample, replace=False))
        if not len(bins_from):
            raise ModelError("bin_rows: no rows to find the bin boundaries on")
        p, _, _, categorical = self._train_params()
        y = np.asarray(y, dtype=np.float64)
        reference = lgb.Dataset(X[bins_from], np.nan_to_num(y[bins_from]), feature_name=list(feature_columns),
                                categorical_feature=categorical, params=p, free_raw_data=True)
        binned = lgb.Dataset(X, np.nan_to_num(y), reference=reference, params=p, free_raw_data=True).construct()
        return BinnedRows(dataset=binned, y=y, feature_columns=list(feature_columns))

    def fit_binned(self, binned: BinnedRows, rows: np.ndarray, *,
                   valid_rows: np.ndarray | None = None) -> LightGBMModel:
        """:meth:`fit` on the rows ``rows`` of a :meth:`bin_rows` matrix, early stopping on
        ``valid_rows`` when given; rows without a target are skipped, as in :meth:`fit`.

        Raises
        ------
        ModelError
            As :meth:`fit`.
        """
        rows = np.asarray(rows)
        rows = rows[~np.isnan(binned.y[rows])]
        self._check_target(binned.y[rows])
        self.feature_columns = list(binned.feature_columns)
        start = time.perf_counter()
        valid_set = None
        if valid_rows is not None:
            valid_rows = np.asarray(valid_rows)
            valid_rows = valid_rows[~np.isnan(binned.y[valid_rows])]
            if len(valid_rows):
                valid_set = binned.dataset.subset(np.sort(valid_rows).astype(np.int32))
        self._boost(binned.dataset.subset(np.sort(rows).astype(np.int32)), valid_set)
        self.fit_seconds = time.perf_counter() - start
        return self

    def _raw(self, X):
        return self.booster.predict(self._matrix(X), num_iteration=self.best_iteration,
                                    num_threads=self.num_threads)

    def _importances(self):
        return self.booster.feature_importance("gain")

    def _contributions(self, X):
        return self.booster.predict(self._matrix(X), num_iteration=self.best_iteration, pred_contrib=True,
                                    num_threads=self.num_threads)[:, :-1]

    def _save_native(self, path):
        self.booster.save_model(str(path / "model.txt"))

    def _load_native(self, path):
        import lightgbm as lgb

        self.booster = lgb.Booster(model_file=str(path / "model.txt"))

    @classmethod
    def from_booster(cls, booster: Any, *, num_threads: int = 1) -> LightGBMModel:
        """Wrap a fitted binary ``lightgbm.Booster`` (e.g. of a registry version saved before the
        model interface served the champion) as a classification :class:`LightGBMModel`."""
        model = cls("classification", num_threads=num_threads)
        model.booster = booster
        model.feature_columns = list(booster.feature_name())
        model.best_iteration = int(booster.best_iteration or booster.current_iteration())
        return model


# -- XGBoost ------------------------------------------------------------------------
class XGBoostModel(Model):
    """XGBoost (``hist`` trees, native NaN handling), early stopping on ``valid``."""

    algorithm = "xgboost"
    iterative = True
    defaults = {"learning_rate": 0.05, "max_depth": 6, "min_child_weight": 50.0, "subsample": 0.8,
                "colsample_bytree": 0.8, "reg_lambda": 1.0, "n_estimators": 200, "early_stopping_rounds": 30,
                "max_bin": 64}

    def _fit(self, X, y, valid) -> None:
        xgb = require("xgboost", "xgboost", "the xgboost model")

        Xa, ya = self._labelled(X, y)
        p = dict(self.params)
        rounds, patience = int(p.pop("n_estimators")), int(p.pop("early_stopping_rounds"))
        p |= {"objective": "binary:logistic" if self.objective == "classification" else "reg:squarederror",
              "tree_method": "hist", "seed": self.seed, "nthread": self.num_threads, "verbosity": 0}
        dtrain = xgb.DMatrix(Xa, ya, feature_names=self.feature_columns)
        va = self._valid_arrays(valid)
        kwargs: dict[str, Any] = {}
        if va is not None and len(va[1]):
            kwargs = {"evals": [(xgb.DMatrix(va[0], va[1], feature_names=self.feature_columns), "valid")],
                      "early_stopping_rounds": patience, "verbose_eval": False}
        self.booster = xgb.train(p, dtrain, num_boost_round=rounds, **kwargs)
        self.best_iteration = int(getattr(self.booster, "best_iteration", rounds - 1)) + 1 if kwargs else rounds

    def _raw(self, X):
        xgb = require("xgboost", "xgboost", "the xgboost model")

        d = xgb.DMatrix(self._matrix(X), feature_names=self.feature_columns, nthread=self.num_threads)
        return self.booster.predict(d, iteration_range=(0, int(self.best_iteration)))

    def _importances(self):
        gain = self.booster.get_score(importance_type="total_gain")
        return [gain.get(c, 0.0) for c in self.feature_columns]

    def _contributions(self, X):
        xgb = require("xgboost", "xgboost", "the xgboost model")

        d = xgb.DMatrix(self._matrix(X), feature_names=self.feature_columns, nthread=self.num_threads)
        return self.booster.predict(d, pred_contribs=True, iteration_range=(0, int(self.best_iteration)))[:, :-1]

    def _save_native(self, path):
        self.booster.save_model(str(path / "model.ubj"))

    def _load_native(self, path):
        xgb = require("xgboost", "xgboost", "the xgboost model")

        self.booster = xgb.Booster(model_file=str(path / "model.ubj"))
        self.booster.set_param({"nthread": self.num_threads})


# -- CatBoost -----------------------------------------------------------------------
class CatBoostModel(Model):
    """CatBoost (symmetric trees), early stopping on ``valid`` with the best model kept."""

    algorithm = "catboost"
    iterative = True
    defaults = {"learning_rate": 0.05, "depth": 6, "l2_leaf_reg": 3.0, "n_estimators": 200,
                "early_stopping_rounds": 30, "border_count": 64}

    def _estimator(self):
        catboost = require("catboost", "catboost", "the catboost model")
        CatBoostClassifier, CatBoostRegressor = catboost.CatBoostClassifier, catboost.CatBoostRegressor

        p = dict(self.params)
        p.pop("early_stopping_rounds")
        cls = CatBoostClassifier if self.objective == "classification" else CatBoostRegressor
        return cls(iterations=int(p.pop("n_estimators")), random_seed=self.seed, thread_count=self.num_threads,
                   verbose=False, allow_writing_files=False, **p)

    def _fit(self, X, y, valid) -> None:
        Xa, ya = self._labelled(X, y)
        self.estimator = self._estimator()
        va = self._valid_arrays(valid)
        if va is not None and len(va[1]):
            self.estimator.fit(Xa, ya, eval_set=va, early_stopping_rounds=int(self.params["early_stopping_rounds"]),
                               use_best_model=True)
        else:
            self.estimator.fit(Xa, ya)
        self.best_iteration = int(self.estimator.tree_count_)

    def _raw(self, X):
        Xa = self._matrix(X)
        if self.objective == "classification":
            return self.estimator.predict_proba(Xa, thread_count=self.num_threads)[:, 1]
        return self.estimator.predict(Xa, thread_count=self.num_threads)

    def _importances(self):
        return self.estimator.get_feature_importance()

    def _contributions(self, X):
        pool = require("catboost", "catboost", "the catboost model").Pool(self._matrix(X))
        return self.estimator.get_feature_importance(pool, type="ShapValues", thread_count=self.num_threads)[:, :-1]

    def _save_native(self, path):
        self.estimator.save_model(str(path / "model.cbm"))

    def _load_native(self, path):
        self.estimator = self._estimator()
        self.estimator.load_model(str(path / "model.cbm"))


# -- scikit-learn -------------------------------------------------------------------
class _SklearnModel(Model):
    """Shared code of the scikit-learn models: median imputation (they reject NaN), joblib files."""

    def _pipeline(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit(self, X, y, valid) -> None:
        Xa, ya = self._labelled(X, y)
        self.estimator = self._pipeline()
        self.estimator.fit(Xa, ya.astype(int) if self.objective == "classification" else ya)

    def _raw(self, X):
        Xa = self._matrix(X)
        if self.objective == "classification":
            return self.estimator.predict_proba(Xa)[:, 1]
        return self.estimator.predict(Xa)

    def _save_native(self, path):
        import joblib

        joblib.dump(self.estimator, path / "model.joblib")

    def _load_native(self, path):
        import joblib

        # joblib unpickles: only load files whose SHA-256 the registry has verified.
        self.estimator = joblib.load(path / "model.joblib")


class RandomForestModel(_SklearnModel):
    """scikit-learn random forest (median-imputed inputs)."""

    algorithm = "random_forest"
    defaults = {"n_estimators": 200, "max_depth": 8, "min_samples_leaf": 100, "max_features": 0.3,
                "max_samples": 0.5}

    def _pipeline(self):
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline

        cls = RandomForestClassifier if self.objective == "classification" else RandomForestRegressor
        return make_pipeline(SimpleImputer(strategy="median"),
                             cls(random_state=self.seed, n_jobs=self.num_threads, **self.params))

    def _importances(self):
        return self.estimator[-1].feature_importances_


class LinearModel(_SklearnModel):
    """Logistic regression (classification) or ridge regression (regression) on standardised inputs."""

    algorithm = "linear"
    defaults = {"C": 0.1, "alpha": 10.0, "max_iter": 500}

    def _pipeline(self):
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.objective == "classification":
            est = LogisticRegression(C=self.params["C"], max_iter=int(self.params["max_iter"]))
        else:
            est = Ridge(alpha=self.params["alpha"], random_state=self.seed)
        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), est)

    def _importances(self):
        return np.abs(np.ravel(self.estimator[-1].coef_))
