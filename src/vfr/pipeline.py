"""The main job: ingest -> features -> train (+ evaluate, register) -> select -> backtest.

Each stage reads its inputs from the market store (or the registry) and writes its outputs
atomically, so a stage that fails leaves the results of earlier stages as they were, and each
stage can be run on its own (``vfr data ingest``, ``vfr features build``, ``vfr train``,
``vfr select``, ``vfr backtest``). Progress is shown with Rich.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from vfr.backtest import (
    QUANTSTATS_FILE,
    BacktestConfig,
    BacktestResult,
    evaluate_factor,
    period_table,
    require_tearsheet_libraries,
    run_backtest,
    write_factor_tearsheet,
    write_quantstats_tearsheet,
    write_report,
)
from vfr.config import Settings
from vfr.data import MacroData, MarketStore, ingest, read_earnings, read_macro, read_ratios, tables
from vfr.data.fundamentals import FRED_MD_SERIES
from vfr.data.samples import DEMO_UNIVERSE, sp500_index_levels, write_demo_csvs
from vfr.distributed.cluster import dask_client
from vfr.errors import StageError, UsageError
from vfr.features import build_all_features
from vfr.ml import (
    Dataset,
    ModelRegistry,
    RegistryError,
    TrainConfig,
    TrainResult,
    build_dataset,
    ic_by_date,
    make_labels,
    train,
    walk_forward_schedule,
)
from vfr.ml.lineage import DatasetLineage, build_lineage, describe_source, write_lineage
from vfr.ml.quality import GateThresholds, QualityGateError, enforce, gate_training_data
from vfr.ml.scorecache import champion_pointer_path
from vfr.ml.tuning import TuneConfig, TuneResult, default_storage, tune
from vfr.scoring import Selection, blend, classic_scores, ml_components, ml_confidence, risk_neutral_scores
from vfr.selection import require_features, stage_select, warm_champion_scores

#: Names kept for importers (vfr.retraining, tests); the names are defined in vfr.data.tables.
FEATURES_TABLE = tables.FEATURES
PREDICTIONS_TABLE = tables.PREDICTIONS_OOS


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        yield progress


def _console(console: Console | None) -> Console:
    return console if console is not None else Console(stderr=True)


# -- stages -----------------------------------------------------------------------------
def stage_ingest(settings: Settings, prices: Path, universe: Path | str | Sequence[Path | str] | None = None,
                 console: Console | None = None):
    """Read, validate, adjust and upsert prices (and the universe) into the market store.

    ``universe`` is one or more of: a constituents csv (names, sectors; a static list), a csv
    of membership intervals, or a point-in-time source such as ``index-constitution:sp500``
    (see :func:`vfr.data.ingest`)."""
    console = _console(console)
    with _progress(console) as progress, MarketStore.from_settings(settings) as store:
        task = progress.add_task(f"ingest {Path(prices).name}", total=1)
        report = ingest(Path(prices), store, universe_path=universe or None)
        progress.advance(task)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)
    return report


def stage_ingest_fundamentals(settings: Settings, *, earnings: Path | None = None,
                              macro: Path | None = None, ratios: Path | None = None) -> dict[str, int]:
    """Read, validate and store earnings reports, the macro series and/or provider ratios
    (whole-table replace).

    Parameters
    ----------
    earnings : Path, optional
        Earnings-surprise file (layout of ``shared/data/earnings``; see
        :func:`vfr.data.read_earnings`, which also drops rows with impossible report dates).
    macro : Path, optional
        Folder with ``fred_md.parquet``, ``vix_daily.parquet``, ``gdp_quarterly.parquet``.
    ratios : Path, optional
        Ratios file (:func:`vfr.data.read_ratios`: ROE, leverage and margins per fiscal period,
        usable from ``available_date``); the fundamental group then adds those features.

    Returns
    -------
    dict of table name -> rows written.
    """
    written: dict[str, int] = {}
    frames: dict[str, pd.DataFrame] = {}
    if earnings is not None:
        frames[tables.EARNINGS] = read_earnings(earnings)
    if ratios is not None:
        frames[tables.RATIOS] = read_ratios(ratios)
    if macro is not None:
        data = read_macro(macro)
        frames[tables.MACRO_FRED_MD] = data.fred_md[["month", *FRED_MD_SERIES]]
        for key in ("vix", "gdp"):
            if getattr(data, key) is not None:
                frames[tables.MACRO[key]] = getattr(data, key)
    with MarketStore.from_settings(settings) as store:  # everything read and validated before any write
        for table, frame in frames.items():
            written[table] = store.replace_table(table, frame)
    return written


def stored_feature_inputs(store: MarketStore) -> dict[str, Any]:
    """The keyword inputs of :func:`vfr.features.build_all_features` that the store holds.

    Returns
    -------
    dict
        ``membership`` (the point-in-time universe or None) and, where stored, ``earnings``,
        ``macro`` (:class:`~vfr.data.fundamentals.MacroData`), ``ratios`` and ``universe``.
    """
    inputs: dict[str, Any] = {"membership": store.read_membership()}
    if store.has_table(tables.EARNINGS):
        inputs["earnings"] = store.read_table(tables.EARNINGS)
    if store.has_table(tables.MACRO_FRED_MD):
        inputs["macro"] = MacroData(
            fred_md=store.read_table(tables.MACRO_FRED_MD),
            vix=store.read_table(tables.MACRO_VIX) if store.has_table(tables.MACRO_VIX) else None,
            gdp=store.read_table(tables.MACRO_GDP) if store.has_table(tables.MACRO_GDP) else None)
    if store.has_table(tables.RATIOS):
        inputs["ratios"] = store.read_table(tables.RATIOS)
    if store.has_table(tables.SECURITIES):
        inputs["universe"] = store.read_universe()
    return inputs


def stage_features(settings: Settings, console: Console | None = None, *, alpha158: bool = False) -> int:
    """Build every factor group the store has inputs for and replace the features table.

    Technical features need only prices; fundamental features need stored earnings
    (`vfr data ingest-fundamentals --earnings`), macro features the macro series
    (`--macro`), sector-relative strength the universe. ``alpha158=True`` adds the opt-in
    group ``alpha158`` (Qlib's Alpha158 factors, :mod:`vfr.features.alpha158`). Returns the
    rows written.
    """
    console = _console(console)
    with MarketStore.from_settings(settings) as store:
        if not store.has_table(tables.PRICES):
            raise StageError("features: the store has no prices; run `vfr data ingest` first")
        prices = store.read_prices()
        if prices.empty:
            raise StageError("features: the store has no prices; run `vfr data ingest` first")
        inputs = stored_feature_inputs(store)
        with _progress(console) as progress:
            task = progress.add_task("features", total=int(prices["symbol"].nunique()))
            features = build_all_features(prices, progress=lambda n: progress.advance(task, n),
                                          alpha158=alpha158, **inputs)
        groups = ", ".join(features.attrs.get("groups_present", ["technical"]))
        console.print(f"  feature groups: {groups}")
        if inputs["membership"] is not None:
            console.print(f"  point-in-time universe: {len(features):,} member rows of {len(prices):,} price rows")
        store.replace_table(FEATURES_TABLE, features)
    n_rows = len(features)
    del features
    pointer = champion_pointer_path(settings.resolved_tracking_uri, settings.model_name)
    if pointer is not None and pointer.exists():  # a champion serves: cache its scores of the new features
        why = warm_champion_scores(settings)
        if why is not None:
            console.print(f"  the champion's scores of the latest day were not cached ({why})")
    return n_rows


@dataclass
class TrainOutcome:
    """What `vfr train` did: the result, the registered version and whether it became champion."""

    result: TrainResult
    version: str
    champion: bool
    reason: str


def champion_gate(metrics: dict[str, dict[str, float]]) -> tuple[bool, str]:
    """Is a model good enough to become the first champion?

    Rule: walk-forward out-of-sample ROC-AUC above 0.5 and mean Rank IC above 0 (it ranks
    better than chance), and Rank IC above the 20-day-momentum baseline's.
    """
    m = metrics["model"]
    auc, ric = m.get("roc_auc", float("nan")), m.get("rank_ic_mean", float("nan"))
    mom = metrics.get("momentum_20d", {}).get("rank_ic_mean", float("-inf"))
    if not (np.isfinite(auc) and auc > 0.5):
        return False, f"out-of-sample ROC-AUC {auc:.4f} is not above 0.5"
    if not (np.isfinite(ric) and ric > 0):
        return False, f"out-of-sample mean Rank IC {ric:.4f} is not above 0"
    if np.isfinite(mom) and ric <= mom:
        return False, f"Rank IC {ric:.4f} does not beat the momentum baseline's {mom:.4f}"
    return True, f"ROC-AUC {auc:.4f} > 0.5, Rank IC {ric:.4f} > max(0, momentum {mom:.4f})"


def _flat_metrics(result: TrainResult) -> dict[str, float]:
    out = {}
    for scope, metrics in (("test", result.split_metrics), ("wf", result.walk_forward_metrics)):
        for who, values in metrics.items():
            for k, v in values.items():
                out[f"{scope}.{who}.{k}"] = float(v)
    return out


def train_with_progress(settings: Settings, features: pd.DataFrame, labels: pd.DataFrame, config: TrainConfig,
                        console: Console) -> TrainResult:
    """:func:`vfr.ml.train` with a Rich progress bar of the walk-forward fits, on the Dask
    cluster of ``VFR_DASK_SCHEDULER`` when one is set (its dashboard link is printed)."""
    try:  # the same schedule train() fits (rolling or expanding), for the bar's total
        n_windows = len(walk_forward_schedule(features["date"].unique(), step=config.retrain_every,
                                              window=config.train_window, embargo=config.embargo))
    except ValueError:
        n_windows = 0  # too few dates: train() raises the StageError that names them
    with dask_client(settings, announce=console.print) as client, _progress(console) as progress:
        task = progress.add_task("walk-forward training" + (" (Dask)" if client is not None else ""),
                                 total=n_windows or None)
        return train(features, labels, config, progress=lambda n: progress.advance(task, n), client=client)


def _label_definition(config: TrainConfig) -> str:
    """What the model learned, in words (the registry's ``label_definition``)."""
    h = config.horizon_days
    window = f"window (t, t+{h}]"
    if config.objective == "classification":
        return (f"1 if the {h}-trading-day forward return exceeds the universe mean on the feature date, "
                f"else 0; {window}")
    if config.target == "excess_rank":
        return (f"the feature date's cross-sectional percentile rank of the {h}-trading-day forward excess "
                f"return, minus 0.5; {window}")
    return f"the {h}-trading-day forward return minus the universe mean on the feature date (fraction); {window}"


def register_result(settings: Settings, registry: ModelRegistry, result: TrainResult, features: pd.DataFrame,
                    labels: pd.DataFrame, *, sources: list[dict[str, Any]] | None = None,
                    extra_metadata: dict[str, Any] | None = None) -> tuple[str, DatasetLineage]:
    """Register a training result as a new version, with what monitoring needs saved beside it.

    The model folder (covered by its SHA-256 manifest) also holds ``drift_reference.parquet``
    (a sample of the final training window's features with the model's probabilities: the
    reference of feature and prediction drift) and ``lineage.json`` (sources, date range,
    fingerprint and feature versions of the dataset: :class:`vfr.ml.DatasetLineage`).

    Returns
    -------
    (str, DatasetLineage)
        The new version (no alias is set here) and the lineage saved with it.
    """
    config = result.config
    start, end = result.training_window
    window = features[(features["date"] >= start) & (features["date"] <= end)]
    probs = result.model.predict_proba(window)
    from vfr.monitoring import reference_sample  # scipy.stats: imported by the stages that train only

    reference = reference_sample(window, probs, ["date", "symbol", *result.feature_columns], seed=config.seed)
    dataset = build_dataset(features, labels, config.horizon)
    lineage = build_lineage(dataset, feature_columns=result.feature_columns, label=result.label,
                            horizon=config.horizon, sources=sources or [])
    meta = {
        "feature_columns": result.feature_columns, "label": result.label, "horizon": config.horizon,
        "label_definition": _label_definition(config),
        "training_window": [str(d.date()) for d in result.training_window],
        "data_fingerprint": result.data_fingerprint, "best_iteration": result.best_iteration,
        "algorithm": config.algorithm, "objective": config.objective, "target": config.target,
        "split": result.split.describe(), "walk_forward": {"step": config.retrain_every,
                                                            "window": config.train_window,
                                                            "embargo": config.embargo,
                                                            "folds": len(result.windows),
                                                            "window_validation": config.window_validation,
                                                            "bins_every": config.bins_every,
                                                            "seeds": config.seeds},
    } | (extra_metadata or {})
    params = result.model.params | {"algorithm": config.algorithm, "objective": config.objective,
                                    "best_iteration": result.best_iteration, "date_stride": config.date_stride,
                                    "horizon": config.horizon}
    with tempfile.TemporaryDirectory() as tmp:
        imp = Path(tmp) / "feature_importance.csv"
        result.feature_importance.to_csv(imp)
        ref_file = Path(tmp) / "drift_reference.parquet"
        reference.to_parquet(ref_file, index=False)
        lineage_file = write_lineage(lineage, Path(tmp) / "lineage.json")
        version = registry.register(settings.model_name, result.model, params=params, metrics=_flat_metrics(result),
                                    metadata=meta, artifacts={"reports": imp},
                                    model_files={"drift_reference.parquet": ref_file, "lineage.json": lineage_file})
    return version, lineage


def stage_train(settings: Settings, config: TrainConfig | None = None, console: Console | None = None) -> TrainOutcome:
    """Train on the stored features, write OOS predictions, register the model in MLflow.

    The predictions table and the registry change only after training has succeeded. With
    ``VFR_DASK_SCHEDULER`` set the walk-forward fits run as tasks on that Dask cluster (same
    predictions as in process); the dashboard link is printed.
    """
    console = _console(console)
    config = config or TrainConfig.from_settings(settings)
    # The store is open only to read the inputs and to write the predictions: while training
    # runs, DuckDB's file lock is free for other commands and its buffers are released.
    with MarketStore.from_settings(settings) as store:
        require_features(store, "train")
        features = store.read_table(FEATURES_TABLE)
        labels = make_labels(store.read_prices(columns=["symbol", "date", "close"]),
                             membership=store.read_membership())
        store_url = store.public_url
    gated = gate_training_data(features, labels, horizon=config.horizon, feature_columns=config.feature_columns,
                               thresholds=GateThresholds.from_settings(settings))
    # keep what the gates found, not their copy of the dataset (training builds its own)
    quality, feature_columns, notes = gated.report, gated.feature_columns, gated.notes
    del gated
    for note in notes:
        console.print(f"train: {note}")
    path = settings.reports_dir / "quality-report.md"
    path.write_text(quality.to_markdown())
    console.print(f"train: data quality gates {quality.status}; report: {path}")
    try:
        enforce(quality)  # a critical gate stops here: nothing trained, written or registered
    except QualityGateError as exc:
        exc.report_path = path  # named in the command line's one-line error
        raise
    if quality.status == "warning":
        warned = quality.failed("warning")
        console.print("train: quality warnings: " + "; ".join(f"{r.gate} = {r.value:.4g} ({r.warning})"
                                                          for r in warned.itertuples()))
    config = replace(config, feature_columns=feature_columns)
    result = train_with_progress(settings, features, labels, config, console)
    registry = ModelRegistry.from_settings(settings)
    version, _ = register_result(settings, registry, result, features, labels,
                                 sources=[describe_source(tables.PRICES, labels, path=store_url),
                                          describe_source(tables.FEATURES, features, path=store_url)])
    del features, labels
    with MarketStore.from_settings(settings) as store:
        store.replace_table(PREDICTIONS_TABLE, result.oos_predictions.assign(model_version=version))
    champion = False
    if registry.champion_version(settings.model_name) is None:
        ok, reason = champion_gate(result.walk_forward_metrics)
        if ok:
            registry.set_champion(settings.model_name, version)
            champion = True
            why = warm_champion_scores(settings)  # the next `vfr select --include-ml` reads the cache
            if why is not None:
                console.print(f"train: the champion's scores of the latest day were not cached ({why})")
    else:
        reason = f"a champion exists (v{registry.champion_version(settings.model_name)}); " \
                 "new versions are challengers until compared"
    return TrainOutcome(result=result, version=version, champion=champion, reason=reason)


def stage_tune(settings: Settings, *, n_trials: int = 20, timeout: float | None = None,
               study_name: str | None = None, storage: str | None = None, metric: str | None = None,
               n_splits: int = 5, console: Console | None = None) -> TuneResult:
    """Search the hyper-parameters of the model `vfr train` fits, on the stored features and labels.

    Optuna (:func:`vfr.ml.tuning.tune`) maximises ``metric`` (default ``auc`` for a
    classification, ``rank_ic`` for a regression) over purged k-fold CV of the settings'
    algorithm, objective and horizon, with `vfr train`'s boosting rounds, date stride and seed.
    The study lives in ``storage`` (default ``sqlite:///<home>/optuna.db``, the URL of
    :func:`vfr.ml.tuning.default_storage`); a study of the same name there is resumed (its
    earlier trials count for the best trial).

    Raises
    ------
    StageError
        The store has no prices or no features (the step to run is named).
    UsageError
        ``storage`` cannot be opened as an Optuna storage.
    ValueError
        A bad metric, trial count or timeout, or too few dates for ``n_splits`` folds.
    """
    console = _console(console)
    config = TrainConfig.from_settings(settings)
    metric = metric or ("auc" if config.objective == "classification" else "rank_ic")
    rounds = {k: v for k, v in config.model_params().items() if k in ("n_estimators", "early_stopping_rounds")}
    tune_config = TuneConfig(metric=metric, n_trials=n_trials, n_splits=n_splits, timeout=timeout,
                             storage=storage or default_storage(settings.home_dir), study_name=study_name,
                             fixed_params=rounds, date_stride=config.date_stride, seed=config.seed)
    if storage is not None:  # a bad URL is told before the data is read
        import optuna

        try:
            optuna.storages.get_storage(storage)
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy's and Optuna's errors of a URL are many kinds
            raise UsageError(f"tune: --storage {storage!r} is not a usable Optuna storage: "
                             f"{type(exc).__name__}: {exc}") from exc
    with MarketStore.from_settings(settings) as store:
        require_features(store, "tune")
        features = store.read_table(FEATURES_TABLE)
        labels = make_labels(store.read_prices(columns=["symbol", "date", "close"]),
                             membership=store.read_membership())
    dataset = Dataset.from_frames(features, labels, config.horizon)
    del features, labels
    with _progress(console) as progress:
        task = progress.add_task(f"tune {config.algorithm} ({metric}, {n_splits}-fold purged CV)", total=n_trials)
        return tune(dataset, config.algorithm, config.objective, tune_config,
                    callback=lambda number, value: progress.advance(task))


@dataclass
class BacktestOutcome:
    """Backtests of the strategies on the same out-of-sample period, and the report."""

    results: dict[str, BacktestResult]
    report: Path
    comparison: pd.DataFrame
    model_metrics: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _strategy_scores(features: pd.DataFrame, oos: pd.DataFrame | None, ml_weight: float,
                     neutral_sectors: pd.DataFrame | None = None,
                     ml_neutralize: bool = False, confidence_rule: str = "extremity") -> dict[str, pd.DataFrame]:
    """The classic, ML and composite scores the backtest holds; with ``ml_neutralize`` the
    composite blends the risk-neutral ML score, as :func:`vfr.scoring.select` does
    (``neutral_sectors``: ``symbol``, ``sector``); ``confidence_rule`` scales the ML weight as
    :func:`vfr.scoring.classic.ml_components` says."""
    classic = classic_scores(features)[["date", "symbol", "classic_score"]]
    out = {"classic": classic.rename(columns={"classic_score": "score"})}
    if oos is not None and not oos.empty:
        merged = classic.merge(oos[["date", "symbol", "prob"]], on=["date", "symbol"], how="inner")
        ml_score, conf = ml_components(merged["prob"], merged["date"], confidence_rule)
        if ml_neutralize:
            ml_score = risk_neutral_scores(merged, features, neutral_sectors, score="prob")
            conf = ml_confidence(ml_score, confidence_rule)
        merged["score"] = blend(merged["classic_score"], ml_score, conf, ml_weight)
        out = {"classic": out["classic"].merge(merged[["date", "symbol"]], on=["date", "symbol"]),
               "ml": merged[["date", "symbol", "prob"]].rename(columns={"prob": "score"}),
               "composite": merged[["date", "symbol", "score"]]}
    return out


def comparison_table(results: dict[str, BacktestResult], main: str) -> pd.DataFrame:
    """One row per strategy (net and gross of costs) plus the benchmarks of ``main``'s run."""
    rows = {f"{name} ({kind})": r.metrics[f"strategy_{kind}"] for name, r in results.items()
            for kind in ("net", "gross")}
    rows |= {f"benchmark: {k}": v for k, v in results[main].metrics.items() if not k.startswith("strategy_")}
    return pd.DataFrame(rows).T


@dataclass
class _BacktestInputs:
    """What :func:`stage_backtest` reads from the store."""

    prices: pd.DataFrame
    features: pd.DataFrame
    oos: pd.DataFrame | None
    membership: pd.DataFrame | None
    sectors: pd.Series | None
    universe: pd.DataFrame | None = None  # symbol, sector: for the risk-neutral ML score


def _read_backtest_inputs(settings: Settings, config: BacktestConfig) -> _BacktestInputs:
    """Prices (the columns ``config`` uses), features, out-of-sample predictions, membership and,
    for a sector-neutral run, the sector of each security."""
    with MarketStore.from_settings(settings) as store:
        require_features(store, "backtest")
        return _BacktestInputs(
            prices=store.read_prices(columns=config.price_columns()),
            features=store.read_table(FEATURES_TABLE),
            oos=store.read_table(PREDICTIONS_TABLE) if store.has_table(PREDICTIONS_TABLE) else None,
            membership=store.read_membership(),
            sectors=store.read_universe().set_index("symbol")["sector"] if config.needs_sectors else None,
            universe=store.read_universe()[["symbol", "sector"]]
            if settings.ml_neutralize and store.has_table(tables.SECURITIES) else None)


def _check_window(inputs: _BacktestInputs, config: BacktestConfig) -> None:
    """Raise :class:`UsageError` when the window ``[config.start, config.end]`` misses the
    stored scores (features) and prices, naming the dates they start or end on."""
    scores, prices = inputs.features["date"], inputs.prices["date"]
    if config.start is not None:
        start = pd.Timestamp(config.start)
        if start > scores.max() or start > prices.max():
            raise UsageError(f"backtest: the window starts on {start.date()}, after the store's data: its scores "
                             f"end on {scores.max().date()} and its prices on {prices.max().date()}")
    if config.end is not None:
        end = pd.Timestamp(config.end)
        if end < scores.min() or end < prices.min():
            raise UsageError(f"backtest: the window ends on {end.date()}, before the store's data: its scores "
                             f"start on {scores.min().date()} and its prices on {prices.min().date()}")


def _run_strategies(inputs: _BacktestInputs, strategies: dict[str, pd.DataFrame], config: BacktestConfig,
                    benchmark: pd.Series, console: Console) -> dict[str, BacktestResult]:
    """One :func:`vfr.backtest.run_backtest` per strategy, same config, with a progress bar."""
    results = {}
    with _progress(console) as progress:
        task = progress.add_task("backtests", total=len(strategies))
        for name, scores in strategies.items():
            results[name] = run_backtest(inputs.prices, scores, config, benchmark=benchmark, sectors=inputs.sectors)
            progress.advance(task)
    return results


def _save_equity(settings: Settings, results: dict[str, BacktestResult]) -> None:
    """Replace the ``backtest_equity`` table with the runs' net equity curves (1.0 = start),
    read by the API's ops dashboard."""
    equity = pd.concat([r.equity.rename("equity").rename_axis("date").reset_index().assign(strategy=name)
                        for name, r in results.items()], ignore_index=True)[["date", "strategy", "equity"]]
    with MarketStore.from_settings(settings) as store:
        store.replace_table(tables.BACKTEST_EQUITY, equity)


def _champion_importance(settings: Settings) -> pd.Series | None:
    """The 20 most important features of the champion model, or None without one."""
    try:
        return ModelRegistry.from_settings(settings).load(settings.model_name).feature_importance().head(20)
    except RegistryError:
        return None


def _report_tables(results: dict[str, BacktestResult], comparison: pd.DataFrame, config: BacktestConfig,
                   split: str | None, model_metrics: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """The extra tables of the backtest report: the comparison, before / after ``split``, model metrics."""
    cadence = config.rebalance or f"every {config.rebalance_every} trading days"
    extra = {f"Strategies compared (same period, costs {config.costs.describe()}, {config.book}, "
             f"{cadence})": comparison}
    if split is not None:
        periods = period_table(results, {f"before {split}": (None, str(pd.Timestamp(split) - pd.Timedelta(days=1))),
                                         f"from {split}": (split, None)})
        key = ["total_return", "cagr", "annual_volatility", "sharpe_ratio", "max_drawdown", "alpha",
               "information_ratio"]  # the key metrics: every column would not fit the page
        extra[f"Before / after {split} (same books, before and after costs)"] = periods[
            [c for c in key if c in periods.columns]]
    if model_metrics is not None:
        extra["Out-of-sample model metrics vs baselines"] = model_metrics
    return extra


def _t_stat_nonoverlap(series: pd.Series, step: int) -> tuple[float, float, int]:
    """Mean, t-statistic and count of ``series`` on every ``step``-th date (forward windows of
    ``step`` days then do not overlap, so the dates are close to independent)."""
    s = pd.Series(series, dtype="float64").dropna().iloc[::max(1, int(step))]
    n = int(s.size)
    if n < 3 or not s.std() > 0:
        return float(s.mean()) if n else float("nan"), float("nan"), n
    return float(s.mean()), float(s.mean() / s.std() * np.sqrt(n)), n


def evidence_summary(comparison: pd.DataFrame, ic: pd.DataFrame | None, *, main: str, horizon_days: int,
                     model_metrics: pd.DataFrame | None = None, n_symbols: int | None = None,
                     notes: Sequence[str] = ()) -> list[str]:
    """What a backtest run shows, in plain sentences computed from the run (the report's first lines).

    Parameters
    ----------
    comparison : pandas.DataFrame
        :func:`comparison_table` (rows ``<strategy> (net)``, ``benchmark: equal_weight``...).
    ic : pandas.DataFrame, optional
        :func:`vfr.ml.ic_by_date` of the main strategy's score against the forward excess
        return; its Rank IC's t-statistic is taken on every ``horizon_days``-th date.
    main : str
        The strategy whose score ``ic`` measures (``composite`` or ``classic``).
    horizon_days : int
    model_metrics : pandas.DataFrame, optional
        :func:`model_metrics_table`; the model's test and walk-forward ROC-AUC are quoted.
    n_symbols : int, optional
        Size of the universe, named in the verdict.
    notes : sequence of str
        Extra sentences appended (e.g. that the demo trained a reduced walk-forward).

    Returns
    -------
    list of str
        The first sentence is the verdict (skill; some evidence: a significant Rank IC with the
        checks it misses named; no reliable skill; or not enough evidence on this universe)
        followed by the numbers it rests on; then ``notes``.
    """
    facts: list[str] = []
    checks: dict[str, bool] = {}  # what was checked -> passed
    if ic is not None and "rank_ic" in ic.columns and ic["rank_ic"].notna().any():
        mean, t, n = _t_stat_nonoverlap(ic["rank_ic"], horizon_days)
        facts.append(f"{main} score: mean Rank IC {mean:+.3f} (t = {t:.2f} over {n} non-overlapping "
                     f"{horizon_days}-day windows; t >= 2 would be significant at about 5%)")
        checks["a significant positive Rank IC"] = bool(np.isfinite(t) and t >= 2 and mean > 0)
    if model_metrics is not None and "roc_auc" in model_metrics.columns:
        for row, label in (("model (test split)", "test"), ("model (walk-forward)", "walk-forward")):
            if row in model_metrics.index and np.isfinite(model_metrics.loc[row, "roc_auc"]):
                auc = float(model_metrics.loc[row, "roc_auc"])
                facts.append(f"ML model {label} ROC-AUC {auc:.3f} (0.5 = chance)")
                if label == "test":
                    checks["a test ROC-AUC above 0.52"] = auc > 0.52
    ew = "benchmark: equal_weight"
    if ew in comparison.index and "cagr" in comparison.columns:
        base = float(comparison.loc[ew, "cagr"])
        net = comparison[comparison.index.str.endswith("(net)")]["cagr"].astype("float64")
        above = net[net > base]
        if len(net) and len(above) == 0:
            facts.append(f"every strategy is below equal weight after costs (net CAGR "
                         f"{net.min():.1%} to {net.max():.1%} vs {base:.1%})")
            checks["every strategy above equal weight after costs"] = False
        elif len(net):
            listed = ", ".join(f"{str(i).removesuffix(' (net)')} {v:.1%}" for i, v in net.items())
            facts.append(f"{len(above)} of {len(net)} strategies beat equal weight after costs "
                         f"(net CAGR {listed} vs {base:.1%})")
            checks["every strategy above equal weight after costs"] = len(above) == len(net)
    where = f"on these {n_symbols} stocks" if n_symbols else "on this universe"
    ranks = checks.get("a significant positive Rank IC")
    if not checks:
        verdict = f"Not enough out-of-sample evidence to judge the model {where}."
    elif all(checks.values()):
        verdict = f"Evidence of skill {where}: significant positive Rank IC, ROC-AUC above chance and " \
                  "every strategy above equal weight."
    elif ranks:  # the score ranks, but not every other check holds: say which
        missed = [name for name, ok in checks.items() if not ok]
        verdict = (f"Some evidence of skill {where}: the {main} score's Rank IC is significant and positive, "
                   f"but without {' or '.join(missed)}.")
    else:
        verdict = f"{where[0].upper()}{where[1:]} the model shows no reliable skill."
    body = "; ".join(facts)
    return [f"{verdict} {body[:1].upper()}{body[1:]}." if facts else verdict, *notes]


def stage_backtest(settings: Settings, config: BacktestConfig | None = None, *, benchmark: pd.Series | None = None,
                   title: str = "VFR backtest", model_metrics: pd.DataFrame | None = None,
                   console: Console | None = None, split: str | None = None,
                   factor_eval: bool = True, tearsheet: bool = False,
                   factor_tearsheet: bool = False, notes: Sequence[str] = ()) -> BacktestOutcome:
    """Backtest classic, ML and composite selections out of sample and write one report.

    ML scores are the walk-forward out-of-sample probabilities (each made by a model fitted
    only on data before its date). Without them only the classic strategy runs.

    Parameters
    ----------
    settings : Settings
    config : BacktestConfig, optional
        Passed to :func:`vfr.backtest.run_backtest` for every strategy; default
        ``BacktestConfig.from_settings(settings)`` (the settings' top-N and costs, every 5
        trading days, lag 1, close fill). With ``sector_neutral`` the sectors come from the
        ``securities`` table.
    benchmark : pandas.Series, optional
        Index levels; default the S&P 500 (:func:`vfr.data.samples.sp500_index_levels`).
    title : str
        Report title.
    model_metrics : pandas.DataFrame, optional
        Out-of-sample model metrics, shown in the report.
    console : rich.console.Console, optional
    split : str, optional
        Adds a table of metrics before / from that date.
    factor_eval : bool, default True
        Adds IC decay and quantile returns.
    tearsheet : bool, default False
        Also writes QuantStats' tear sheet of the main strategy
        (:data:`vfr.backtest.tearsheet.QUANTSTATS_FILE`) beside the report, linked from it.
    factor_tearsheet : bool, default False
        Also writes alphalens' factor tear sheet of the main strategy's score over the window
        (:data:`vfr.backtest.tearsheet.FACTOR_FILE` and its PNGs), linked from the report.
    notes : sequence of str
        Sentences added to the report's evidence summary (after :func:`evidence_summary`'s).

    Returns
    -------
    BacktestOutcome
        The net equity curves (1.0 at the start) also replace the store table
        ``backtest_equity`` (``date``, ``strategy``, ``equity``), which the API's ops dashboard
        shows.

    Raises
    ------
    StageError
        The store has no prices or no features (the step to run is named).
    UsageError
        The window (``config.start`` / ``config.end``) lies after or before the stored
        scores and prices (the dates they end / start on are named).
    TearsheetError
        A tear sheet was asked for and its library is missing (checked before any backtest
        runs; the message names the extra ``vfr[tearsheet]``).
    """
    console = _console(console)
    config = BacktestConfig.from_settings(settings) if config is None else config
    require_tearsheet_libraries(quantstats=tearsheet, alphalens=factor_tearsheet)
    inputs = _read_backtest_inputs(settings, config)
    _check_window(inputs, config)
    strategies = _strategy_scores(inputs.features, inputs.oos, settings.ml_weight, inputs.universe,
                                  settings.ml_neutralize, settings.ml_confidence)
    benchmark = sp500_index_levels() if benchmark is None else benchmark
    results = _run_strategies(inputs, strategies, config, benchmark, console)
    _save_equity(settings, results)
    main = "composite" if "composite" in results else "classic"
    comparison = comparison_table(results, main)
    horizon = settings.horizon
    fwd = make_labels(inputs.prices, {horizon: settings.horizon_days}, membership=inputs.membership)
    ic = ic_by_date(strategies[main].merge(fwd, on=["date", "symbol"]), "score", f"fwd_excess_{horizon}")
    factor = None
    in_window = strategies[main][strategies[main]["date"].between(pd.Timestamp(config.start or "1900-01-01"),
                                                                  pd.Timestamp(config.end or "2262-01-01"))]
    if factor_eval:
        factor = evaluate_factor(in_window, inputs.prices, horizons=(1, 5, 10, 21))
    out_dir = settings.reports_dir / f"backtest-{pd.Timestamp.now().strftime('%Y%m%d-%H%M%S')}"
    links = {}
    if tearsheet:
        path = write_quantstats_tearsheet(results[main], out_dir / QUANTSTATS_FILE, title=f"{title}: {main} strategy")
        links[f"QuantStats tear sheet ({main} strategy, net of costs)"] = path.name
    if factor_tearsheet:
        path = write_factor_tearsheet(in_window, inputs.prices, out_dir, title=f"Factor tear sheet: {main} score")
        links[f"alphalens factor tear sheet ({main} score)"] = path.name
    summary = evidence_summary(comparison, ic, main=main, horizon_days=settings.horizon_days,
                               model_metrics=model_metrics, n_symbols=int(inputs.prices["symbol"].nunique()),
                               notes=notes)
    report = write_report(results[main], out_dir, title=f"{title}: {main} strategy", ic=ic,
                          feature_importance=_champion_importance(settings),
                          extra_tables=_report_tables(results, comparison, config, split, model_metrics),
                          factor=factor, links=links, summary=summary)
    return BacktestOutcome(results=results, report=report, comparison=comparison, model_metrics=model_metrics,
                           extra={"summary": summary})


def model_metrics_table(result: TrainResult) -> pd.DataFrame:
    """Rows: model and baselines on the test segment and walk-forward; columns: key metrics."""
    keys = ["roc_auc", "accuracy", "precision", "recall", "f1", "log_loss", "ic_mean", "rank_ic_mean", "rank_icir",
            "rank_ic_t_stat_nonoverlap", "decile_spread", "directional_accuracy", "n_dates"]
    rows = {}
    for scope, metrics in (("test split", result.split_metrics), ("walk-forward", result.walk_forward_metrics)):
        for who, values in metrics.items():
            rows[f"{who} ({scope})"] = {k: values.get(k, np.nan) for k in keys}
    return pd.DataFrame(rows).T


# -- whole pipeline ---------------------------------------------------------------------
@dataclass
class PipelineResult:
    ingest: Any
    feature_rows: int
    train: TrainOutcome
    selection: Selection
    backtest: BacktestOutcome

    @property
    def report(self) -> Path:
        return self.backtest.report


def run_pipeline(settings: Settings, prices: Path, universe: Path | str | Sequence[Path | str] | None = None, *,
                 config: TrainConfig | None = None,
                 top_n: int | None = None, title: str = "VFR pipeline", earnings: Path | None = None,
                 macro: Path | None = None, console: Console | None = None,
                 notes: Sequence[str] = ()) -> PipelineResult:
    """Run every stage in order on ``prices`` (any supported layout), with earnings and macro
    data when given (they enable the fundamental and macro factor groups). ``notes`` are
    added to the report's evidence summary."""
    console = _console(console)
    console.rule("[bold]1/5 ingest")
    report = stage_ingest(settings, prices, universe, console)
    console.print(f"  {report}")
    if earnings is not None or macro is not None:
        console.print(f"  {stage_ingest_fundamentals(settings, earnings=earnings, macro=macro)}")
    console.rule("[bold]2/5 features")
    rows = stage_features(settings, console)
    console.print(f"  {rows:,} feature rows")
    console.rule("[bold]3/5 train, evaluate, register")
    outcome = stage_train(settings, config, console)
    console.print(f"  registered {settings.model_name} v{outcome.version}; champion: {outcome.champion} "
                  f"({outcome.reason})")
    console.rule("[bold]4/5 select")
    selection = stage_select(settings, include_ml=True, top=top_n or settings.top_n)
    console.print(f"  {selection.date.date()}: ML {selection.ml_status}; top: "
                  f"{', '.join(selection.table['symbol'].head(5))}")
    console.rule("[bold]5/5 backtest")
    bt = stage_backtest(settings, BacktestConfig.from_settings(settings, **({"top_n": top_n} if top_n else {})),
                        title=title, model_metrics=model_metrics_table(outcome.result), console=console,
                        notes=notes)
    (bt.report.parent / "selection.csv").write_text(selection.table.to_csv(index=False))
    (bt.report.parent / "summary.json").write_text(json.dumps(
        {"model_version": outcome.version, "champion": outcome.champion, "selection_date": str(selection.date.date()),
         "ml_status": selection.ml_status}, indent=2))
    return PipelineResult(report, rows, outcome, selection, bt)


#: The demo's reduced walk-forward (a full run refits every ``retrain_every`` = 63 dates on an
#: expanding window of every 2nd date with up to 200 boosting rounds): sized so ``vfr demo``
#: takes about a minute on two cores.
DEMO_WALK_FORWARD: dict[str, Any] = {"train_window": 756, "retrain_every": 63, "date_stride": 3, "max_rounds": 40,
                                     "early_stopping_rounds": 10, "seeds": 1,
                                     "params": {"min_data_in_leaf": 50, "num_leaves": 15}}


def demo_note(config: TrainConfig) -> str:
    """The demo's walk-forward in words (printed and written in the report)."""
    def recipe(c: TrainConfig) -> str:
        stride = {1: "every date", 2: "every 2nd date", 3: "every 3rd date"}.get(c.date_stride,
                                                                              f"every {c.date_stride}th date")
        window = f"a {c.train_window}-day window" if c.train_window else "an expanding window"
        return (f"retrained every {c.retrain_every} trading days on {stride} of {window}, with at most "
                f"{c.max_rounds} boosting rounds")

    return (f"Demo settings: a reduced walk-forward so the demo runs in about a minute: the model is "
            f"{recipe(config)} (full run: {recipe(TrainConfig())}); `vfr pipeline run` and `vfr train` train "
            "the full walk-forward.")


def run_demo(settings: Settings, console: Console | None = None) -> PipelineResult:
    """The whole pipeline on six real stocks shipped by PyPI packages (AAPL, GOOG, IBM, MSFT,
    AMZN, NVDA; 2000-03 to 2013-03), with a reduced walk-forward (:data:`DEMO_WALK_FORWARD`,
    said in the output and the report) so it runs in about a minute."""
    console = _console(console)
    folder = settings.home_dir / "demo-data"
    write_demo_csvs(folder)
    universe = settings.home_dir / "demo-universe.csv"
    DEMO_UNIVERSE.rename(columns={"symbol": "Symbol", "name": "Name", "sector": "Sector"}).to_csv(universe, index=False)
    config = TrainConfig.from_settings(settings, **DEMO_WALK_FORWARD)
    note = demo_note(config)
    console.print(note, soft_wrap=True, highlight=False)
    return run_pipeline(settings, folder, universe, config=config, top_n=2, title="VFR demo", console=console,
                        notes=[note])
