"""One evaluation report per model: metrics, confusion matrix, ROC and calibration curves, SHAP.

:func:`model_report` writes ``metrics.json`` and PNG plots into a folder that can be logged
with the registered version (``ModelRegistry.register(..., artifacts={"report": folder})``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr.ml.calibration import brier_score, reliability_curve
from vfr.ml.evaluate import classification_metrics, ic_by_date, ic_summary
from vfr.ml.tuning import top_decile_returns

logger = logging.getLogger(__name__)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE, R^2 and MAPE of predicted returns (NaN rows dropped).

    MAPE = mean(|y - yhat| / |y|) over rows with |y| > 1e-4 only (a return of ~0 makes it
    undefined); NaN when no such row exists. Units: MSE in return^2, the rest in return
    fractions (R^2 dimensionless).
    """
    from sklearn import metrics as skm

    y, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    keep = ~(np.isnan(y) | np.isnan(p))
    y, p = y[keep], p[keep]
    if len(y) == 0:
        return {k: float("nan") for k in ("mse", "rmse", "mae", "r2", "mape")}
    mse = float(np.mean((y - p) ** 2))
    nz = np.abs(y) > 1e-4
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(y - p))),
            "r2": float(skm.r2_score(y, p)) if len(y) > 1 else float("nan"),
            "mape": float(np.mean(np.abs(y[nz] - p[nz]) / np.abs(y[nz]))) if nz.any() else float("nan")}


def portfolio_metrics(frame: pd.DataFrame, score: str, fwd_return: str, horizon_days: int) -> dict[str, float]:
    """Top-decile portfolio on non-overlapping dates (every ``horizon_days``-th date).

    Returns directional accuracy of the top decile (share of periods with a positive
    return), profit factor (sum of gains / sum of losses), annualised Sharpe
    (``mean / std * sqrt(252 / h)``) and max drawdown of the cumulative (summed) return.
    """
    top = top_decile_returns(frame, score, fwd_return).iloc[:: max(1, horizon_days)]
    return holdings_metrics(top, periods_per_year=252 / horizon_days)


def holdings_metrics(returns: pd.Series, periods_per_year: float) -> dict[str, float]:
    """Directional accuracy, profit factor, Sharpe and max drawdown of per-holding-period returns.

    Parameters
    ----------
    returns : Series of shape (n_periods,)
        Simple return of each non-overlapping holding period (fraction).
    periods_per_year : float
        Holding periods in a year (``252 / h`` for h-day holdings), for the Sharpe ratio
        ``mean / std * sqrt(periods_per_year)``.

    Returns
    -------
    dict with ``directional_accuracy`` (share of periods > 0), ``profit_factor`` (gains / losses),
    ``sharpe`` and ``max_drawdown`` of the cumulative (summed) return; NaN with fewer than 2 periods.
    """
    if len(returns) < 2:
        return {k: float("nan") for k in ("directional_accuracy", "profit_factor", "sharpe", "max_drawdown")}
    eq = returns.cumsum()
    losses = -returns[returns < 0].sum()
    return {"directional_accuracy": float((returns > 0).mean()),
            "profit_factor": float(returns[returns > 0].sum() / losses) if losses > 0 else float("nan"),
            "sharpe": float(returns.mean() / returns.std(ddof=1) * np.sqrt(periods_per_year)),
            "max_drawdown": float((eq - eq.cummax()).min())}


def shap_importance(model: Any, X: pd.DataFrame, max_rows: int = 2000, seed: int = 0) -> pd.Series:
    """Mean |SHAP value| per feature on up to ``max_rows`` rows of ``X``.

    Tree models (LightGBM, XGBoost, CatBoost, random forest) use ``shap.TreeExplainer``
    (exact, fast); other models fall back to their own ``feature_importances()`` (named
    ``importance`` rather than ``shap`` so the caller knows), and so do all models when SHAP
    (the ``shap`` extra: ``pip install 'vfr[shap]'``) is not installed (one warning is logged).
    """
    inner = {"lightgbm": lambda m: m.booster, "xgboost": lambda m: m.booster, "catboost": lambda m: m.estimator,
             "random_forest": lambda m: m.estimator[-1]}.get(getattr(model, "algorithm", ""))
    if inner is None:
        return model.feature_importances()
    try:
        import shap
    except ImportError:
        logger.warning("SHAP is not installed (pip install 'vfr[shap]'): reporting the model's own importances")
        return model.feature_importances()

    rows = X.sample(min(len(X), max_rows), random_state=seed) if len(X) > max_rows else X
    A = rows[model.feature_columns].to_numpy(dtype=np.float32)
    if model.algorithm == "random_forest":
        A = model.estimator[0].transform(A)
    values = shap.TreeExplainer(inner(model)).shap_values(A)
    if isinstance(values, list):
        values = values[-1]
    values = np.asarray(values)
    if values.ndim == 3:
        values = values[..., -1]
    return pd.Series(np.abs(values).mean(axis=0), index=model.feature_columns, name="shap").sort_values(ascending=False)


def model_report(scored: pd.DataFrame, out_dir: str | Path, *, label: str, fwd_return: str, horizon_days: int,
                 score: str = "prob", model: Any = None, features: pd.DataFrame | None = None,
                 regression_target: str | None = None, prediction: str | None = None) -> dict[str, Any]:
    """Write the evaluation report of one model's out-of-sample predictions.

    Parameters
    ----------
    scored : DataFrame
        ``date``, ``score`` (probability), ``label`` (0/1) and ``fwd_return`` columns; for a
        regression model also ``regression_target`` (realised return) and ``prediction``.
    out_dir : path
        Folder to write (created).
    model, features : optional
        The fitted model and feature rows for SHAP importance.

    Returns
    -------
    dict
        All metrics (also written to ``metrics.json``): classification (with confusion
        matrix), regression (if given), IC / Rank IC / ICIR, top-decile portfolio, Brier,
        and ``plots`` (file names of ``confusion_matrix.png``, ``roc_curve.png``,
        ``calibration_curve.png`` and, with a model, ``shap_importance.png``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn import metrics as skm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    valid = scored.dropna(subset=[score, label])
    y, p = valid[label].to_numpy().astype(int), valid[score].to_numpy()
    report: dict[str, Any] = {"classification": classification_metrics(y, p)}
    cm = skm.confusion_matrix(y, (p >= 0.5).astype(int), labels=[0, 1])
    report["confusion_matrix"] = cm.tolist()
    if regression_target and prediction:
        report["regression"] = regression_metrics(scored[regression_target], scored[prediction])
    ic = ic_by_date(scored, score, fwd_return)
    for col in ("ic", "rank_ic"):
        report[col] = ic_summary(ic[col])
    report["top_decile"] = portfolio_metrics(scored, score, fwd_return, horizon_days)
    report["brier"] = brier_score(y, p)
    curve = reliability_curve(y, p, n_bins=10)
    report["calibration_curve"] = curve.to_dict("list")
    plots = []
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v:,}", ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="actual", title="Confusion matrix (p >= 0.5)")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png", dpi=100)
    plots.append("confusion_matrix.png")
    plt.close(fig)
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = skm.roc_curve(y, p)
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(fpr, tpr, label=f"AUC {report['classification']['roc_auc']:.3f}")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "roc_curve.png", dpi=100)
        plots.append("roc_curve.png")
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(curve["mean_predicted"], curve["fraction_positive"], "o-")
    lo, hi = float(curve["mean_predicted"].min()), float(curve["mean_predicted"].max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency",
           title=f"Calibration (Brier {report['brier']:.4f})")
    fig.tight_layout()
    fig.savefig(out / "calibration_curve.png", dpi=100)
    plots.append("calibration_curve.png")
    plt.close(fig)
    if model is not None and features is not None:
        imp = shap_importance(model, features)
        report["shap_importance"] = imp.head(30).to_dict()
        report["importance_kind"] = imp.name
        fig, ax = plt.subplots(figsize=(6, 6))
        imp.head(20).iloc[::-1].plot.barh(ax=ax)
        ax.set(title=f"{'mean |SHAP|' if imp.name == 'shap' else 'importance'} (top 20)")
        fig.tight_layout()
        fig.savefig(out / "shap_importance.png", dpi=100)
        plots.append("shap_importance.png")
        plt.close(fig)
    report["plots"] = plots
    (out / "metrics.json").write_text(json.dumps(report, indent=2, default=float))
    return report
