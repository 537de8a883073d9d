"""The early-signal model as a product: train, register, predict, evaluate, backtest.

Stages read the market store (earnings reports, prices, features, universe) and the model
registry, like the return model's stages in :mod:`vfr.pipeline`; each writes its outputs
atomically (a failed run leaves the store and the registry as they were):

- :func:`stage_earnings_train`: event dataset -> quality gates -> yearly walk-forward
  (out-of-sample table per year) -> a final calibrated model registered under
  ``settings.earnings_model_name`` with its lineage; the first version that beats the rule
  becomes champion.
- :func:`stage_earnings_predict`: the champion (then the previous version, then the rule)
  scores the reports expected in the next days.
- :func:`stage_earnings_backtest`: the trade of :mod:`vfr.earnings.trade` on the stored
  walk-forward predictions.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr._util import markdown_table
from vfr.config import Settings
from vfr.data import MarketStore, tables
from vfr.data.universe import membership_mask
from vfr.earnings.dataset import (
    SURPRISE_FEATURES,
    build_event_dataset,
    clean_reports,
    model_feature_columns,
    past_surprise_features,
    sector_codes,
)
from vfr.earnings.model import EarlySignalModel, evaluate_signal
from vfr.earnings.predictor import EarlySignalPredictor
from vfr.earnings.trade import calendar_portfolio, decile_table, event_trades, portfolio_stats, trade_summary
from vfr.earnings.walkforward import CalibratedSignal, fit_calibrated, yearly_walk_forward
from vfr.errors import StageError, UsageError
from vfr.features import feature_names

#: Rule of the fallback chain: last known surprise above this (percent) -> positive.
RULE_THRESHOLD = 15.0


@dataclass(frozen=True)
class EarningsConfig:
    """What ``vfr earnings train`` fits.

    Attributes
    ----------
    lead : int
        Trading days between the as-of date and the report (``VFR_EARNINGS_LEAD_DAYS``, 7).
    label_threshold : float
        Label: EPS surprise above this many percent (``VFR_EARNINGS_LABEL_THRESHOLD``, 20).
    test_years : tuple of int, optional
        Walk-forward test years; default the last five calendar years that have reports
        (a year needs a year before it for validation and at least one more for training).
    cost_bps : float
        Cost per side of the trade, basis points (default commission + slippage of the settings).
    seed : int
    algorithm : str
        Any algorithm of the model zoo (``lightgbm`` by default).
    """

    lead: int = 7
    label_threshold: float = 20.0
    test_years: tuple[int, ...] | None = None
    cost_bps: float = 10.0
    seed: int = 42
    algorithm: str = "lightgbm"

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> EarningsConfig:
        base = cls(lead=settings.earnings_lead_days, label_threshold=settings.earnings_label_threshold,
                   cost_bps=settings.cost_bps, seed=settings.seed)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class EarningsInputs:
    """What the stages read from the store."""

    reports: pd.DataFrame
    prices: pd.DataFrame
    features: pd.DataFrame
    sectors: pd.DataFrame | None
    membership: pd.DataFrame | None
    sources: list[dict[str, Any]] = field(default_factory=list)


def read_inputs(settings: Settings, *, stage: str = "earnings") -> EarningsInputs:
    """Read earnings reports, closes, technical features, sectors and membership from the store.

    Raises
    ------
    StageError
        Naming the command to run first when the store lacks reports, prices or features.
    """
    from vfr.ml.lineage import describe_source

    with MarketStore.from_settings(settings) as store:
        counts = store.table_counts([tables.PRICES, tables.FEATURES, tables.EARNINGS])
        if not counts.get(tables.PRICES):
            raise StageError(f"{stage}: the store has no prices; run `vfr data ingest` first")
        if not counts.get(tables.EARNINGS):
            raise StageError(f"{stage}: the store has no earnings reports; run "
                             "`vfr data ingest-fundamentals --earnings FILE` first")
        if not counts.get(tables.FEATURES):
            raise StageError(f"{stage}: the store has no features; run `vfr features build` first")
        reports = store.read_table(tables.EARNINGS)
        prices = store.read_prices(columns=["close"])
        feats = store.read_table(tables.FEATURES, ["symbol", "date", *feature_names()])
        sectors = store.read_universe()[["symbol", "sector"]] if store.has_table(tables.SECURITIES) else None
        membership = store.read_membership()
        url = store.public_url
    sources = [describe_source(tables.EARNINGS, reports.rename(columns={"reported_date": "date"}), path=url),
               describe_source(tables.PRICES, prices, path=url),
               describe_source(tables.FEATURES, feats, path=url)]
    return EarningsInputs(reports=reports, prices=prices, features=feats, sectors=sectors,
                          membership=membership, sources=sources)


def event_dataset(inputs: EarningsInputs, config: EarningsConfig) -> pd.DataFrame:
    """One row per report of a universe member on its as-of date (:func:`build_event_dataset`)."""
    ev = build_event_dataset(inputs.reports, inputs.prices, sectors=inputs.sectors, lead=config.lead,
                             threshold=config.label_threshold, features=inputs.features)
    keep = membership_mask(ev["symbol"].to_numpy(), ev["asof_date"].to_numpy(), inputs.membership)
    return ev[keep].reset_index(drop=True)


def default_test_years(events: pd.DataFrame, n: int = 5) -> tuple[int, ...]:
    """The last ``n`` calendar years with reports, keeping two earlier years (train, validation)."""
    years = sorted(events["reported_date"].dt.year.unique())
    usable = years[2:]
    if not usable:
        raise UsageError(f"early signal: reports span {len(years)} calendar year(s); need at least 3")
    return tuple(int(y) for y in usable[-n:])


def gate_events(events: pd.DataFrame, config: EarningsConfig, thresholds: Any = None) -> Any:
    """The training-data quality gates of ``vfr train`` on the event dataset.

    The event dataset is keyed by ``asof_date`` (the date its features are known) and its
    label is published ``lead`` trading days later, so the same gates apply: completeness,
    outliers, label balance and count, duplicates, future feature dates, label look-ahead.
    Two differences, both because a large surprise is a rare event: the label balance must
    stay in [0.05, 0.5] (warning outside [0.08, 0.4]; about 0.12 on 2000-2019, 0.27 in 2020-21)
    instead of near one half, and training happens once the last report is published (``as_of``
    = the last ``reported_date``).

    Returns
    -------
    vfr.ml.quality.QualityReport
    """
    from vfr.ml.quality import GateThresholds, run_quality_gates

    base = thresholds or GateThresholds()
    gates = replace(base, balance_warning=(0.08, 0.4), balance_critical=(0.05, 0.5))
    data = events.rename(columns={"asof_date": "date"})
    sparse = [c for c in SURPRISE_FEATURES if c not in ("n_past_reports",)]  # new companies have no history
    return run_quality_gates(data, feature_columns=model_feature_columns(), label="label",
                             horizon_days=config.lead, as_of=events["reported_date"].max(), thresholds=gates,
                             exclude_completeness=sparse)


def _fingerprint(events: pd.DataFrame) -> str:
    h = pd.util.hash_pandas_object(events[["symbol", "reported_date", "label"]], index=False).to_numpy()
    return hashlib.sha256(h.tobytes()).hexdigest()[:16]


@dataclass
class EarningsTrainOutcome:
    """Result of :func:`stage_earnings_train`."""

    version: str
    champion: bool
    reason: str
    per_year: pd.DataFrame
    rule_per_year: pd.DataFrame
    n_events: int
    report_path: Path
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)


def _rule_table(predictions: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """ROC-AUC per test year of the rule's score (last known surprise), for the champion gate."""
    last = events.set_index(["symbol", "reported_date"])["last_surprise_pct"]
    score = last.reindex(pd.MultiIndex.from_frame(predictions[["symbol", "reported_date"]])).to_numpy(float)
    rows = []
    for year, g in predictions.assign(score=np.nan_to_num(score, nan=-1e9)).groupby("test_year"):
        m = evaluate_signal(g["label"].to_numpy(float), g["score"].to_numpy(float), RULE_THRESHOLD)
        rows.append({"year": str(year), "roc_auc": m["roc_auc"], "precision": m["precision"]})
    return pd.DataFrame(rows)


def stage_earnings_train(settings: Settings, config: EarningsConfig | None = None, *,
                         progress: Any = None, console: Any = None) -> EarningsTrainOutcome:
    """Walk-forward evaluate, then fit, calibrate and register the early-signal model.

    Nothing is written (store, registry, reports) before the gates have passed and every
    model has been fitted. The walk-forward predictions replace
    ``tables.EARNINGS_PREDICTIONS_OOS``; the per-year table goes to
    ``<reports>/early_signal_walk_forward.csv``.

    Raises
    ------
    StageError
        Missing inputs (names the command to run first).
    vfr.ml.quality.QualityGateError
        A critical data-quality gate failed (nothing trained or registered).
    UsageError
        Too few years of reports for the test years asked for.
    """
    from vfr.ml import ModelRegistry
    from vfr.ml.quality import GateThresholds, enforce

    config = config or EarningsConfig.from_settings(settings)
    inputs = read_inputs(settings, stage="earnings train")
    events = event_dataset(inputs, config)
    report = gate_events(events, config, GateThresholds.from_settings(settings))
    path = settings.reports_dir / "early-signal-quality-report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_markdown())
    enforce(report)
    years = config.test_years or default_test_years(events)
    if min(years) - 2 < int(events["reported_date"].dt.year.min()):
        raise UsageError(f"early signal: test year {min(years)} needs two earlier years of reports "
                         f"(first report year {int(events['reported_date'].dt.year.min())})")
    preds, per_year = yearly_walk_forward(events, years, label_threshold=config.label_threshold, seed=config.seed,
                                          algorithm=config.algorithm, progress=progress)
    rule = _rule_table(preds, events)
    last_year = int(events["reported_date"].dt.year.max())
    final = fit_calibrated(events, validation_year=last_year, label_threshold=config.label_threshold,
                           seed=config.seed, algorithm=config.algorithm)
    version = register_signal(settings, final, events, config, per_year, inputs.sources)
    with MarketStore.from_settings(settings) as store:
        store.replace_table(tables.EARNINGS_PREDICTIONS_OOS, preds.assign(model_version=version))
    out_csv = settings.reports_dir / "early_signal_walk_forward.csv"
    per_year.to_csv(out_csv, index=False)
    registry = ModelRegistry.from_settings(settings)
    name = settings.earnings_model_name
    champion = False
    auc = per_year.set_index("year")["roc_auc"]
    rule_auc = rule.set_index("year")["roc_auc"]
    beats = bool((auc.drop("all") > rule_auc.reindex(auc.drop("all").index)).all())
    if registry.champion_version(name) is None:
        if beats and float(auc["all"]) > 0.5:
            registry.set_champion(name, version)
            champion, reason = True, (f"walk-forward ROC-AUC {auc['all']:.3f} beats the rule in every test year; "
                                      "first version: champion")
        else:
            reason = "not champion: the walk-forward ROC-AUC does not beat the rule's in every test year"
    else:
        reason = (f"a champion exists (v{registry.champion_version(name)}); new versions are challengers "
                  "until promoted (`vfr models promote`)")
    return EarningsTrainOutcome(version=version, champion=champion, reason=reason, per_year=per_year,
                                rule_per_year=rule, n_events=len(events), report_path=out_csv, predictions=preds,
                                events=events)


def register_signal(settings: Settings, signal: CalibratedSignal, events: pd.DataFrame, config: EarningsConfig,
                    per_year: pd.DataFrame, sources: list[dict[str, Any]]) -> str:
    """Register a calibrated early-signal model as a new version of ``settings.earnings_model_name``.

    The model folder holds the classifier (``Model.save``), its metadata (features, label
    definition, threshold, Platt calibration, training window, fingerprint, walk-forward
    figures) and ``lineage.json``.

    Returns
    -------
    str
        The new version (no alias set).
    """
    from vfr.ml import ModelRegistry

    raw = signal.model
    train_rows = events[events["reported_date"].dt.year <= int(raw.metrics.get("validation_year", 0))]
    meta = {
        "feature_columns": signal.features, "label": f"surprise_pct>{config.label_threshold:g}",
        "horizon": f"{config.lead}d", "kind": "early_signal", "lead_days": config.lead,
        "label_definition": (f"1 if the EPS surprise of the report is above {config.label_threshold:g}% of the "
                             f"estimate; features as of {config.lead} trading days before the report"),
        "training_window": [str(train_rows["reported_date"].min().date()),
                            str(train_rows["reported_date"].max().date())],
        "data_fingerprint": _fingerprint(events), "threshold": signal.threshold,
        "raw_threshold": raw.threshold, "label_threshold": config.label_threshold,
        "calibration": signal.calibration, "validation_year": raw.metrics.get("validation_year"),
        "walk_forward": json.loads(per_year.to_json(orient="records")), "sources": sources,
    }
    metrics = {f"wf.{r['year']}.{k}": float(r[k]) for r in per_year.to_dict("records")
               for k in ("roc_auc", "precision", "precision_top_decile", "brier", "brier_skill")}
    metrics |= {f"validation.{k}": float(v) for k, v in raw.metrics.get("validation_calibrated", {}).items()}
    params = {"algorithm": config.algorithm, "lead": config.lead, "label_threshold": config.label_threshold,
              "best_iteration": raw.metrics.get("best_iteration"), "seed": config.seed}
    registry = ModelRegistry.from_settings(settings)
    with tempfile.TemporaryDirectory() as tmp:
        lineage = Path(tmp) / "lineage.json"
        record = {"sources": sources, "n_events": len(events), "fingerprint": meta["data_fingerprint"],
                  "feature_columns": signal.features}
        lineage.write_text(json.dumps(record, indent=1, default=str))
        return registry.register(settings.earnings_model_name, raw.model, params=params, metrics=metrics,
                                 metadata=meta, model_files={"lineage.json": lineage})


def load_signal(registry: Any, name: str, version: str | None = None) -> CalibratedSignal:
    """A registered early-signal version (default: the champion) as a :class:`CalibratedSignal`.

    Raises
    ------
    vfr.ml.RegistryError
        No such version, unreadable or altered files, or a version that is not an early-signal model.
    """
    from vfr.ml import RegistryError

    loaded = registry.load(name, version, check_features=False)
    meta = loaded.metadata
    if meta.get("kind") != "early_signal":
        raise RegistryError(f"model {name!r} v{loaded.version} is not an early-signal model")
    raw = EarlySignalModel(version=loaded.version, model=loaded.model, features=list(meta["feature_columns"]),
                           threshold=float(meta["raw_threshold"]), label_threshold=float(meta["label_threshold"]),
                           metrics={"validation_year": meta.get("validation_year")})
    return CalibratedSignal(model=raw, calibration=meta["calibration"], threshold=float(meta["threshold"]))


class _Unloadable:
    """A chain level whose version could not be loaded: it fails at prediction time, so the
    predictor moves to the next level and the answer's ``reason`` says why."""

    features: list[str] = []

    def __init__(self, version: str, error: str) -> None:
        self.version, self.error, self.threshold = version, error, 0.5

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        from vfr.ml import RegistryError

        raise RegistryError(self.error)


def serving_chain(registry: Any, name: str, *, missing_share: float = 0.1) -> tuple[EarlySignalPredictor, list[str]]:
    """The fallback chain: champion -> previous champion (else the newest other version) -> rule -> none.

    A level whose version cannot be loaded (no champion, unreadable or altered files) stays in
    the chain and fails each row with the reason, so answers say why they fell back.

    Returns
    -------
    (EarlySignalPredictor, list of str)
        The predictor and the problems met loading its levels (empty when both loaded).
    """
    from vfr.ml import RegistryError

    models: list[Any] = []
    problems: list[str] = []
    others = [str(v["version"]) for v in registry.versions(name)]  # newest first; [] when not registered
    registered = bool(others)
    champion = registry.champion_version(name) if registered else None
    if champion is None:
        problems.append(f"no champion of {name!r}")
        models.append(_Unloadable("-champion", f"no champion of {name!r}"))
    history = [str(v) for v in registry.champion_history(name) if str(v) != champion] if registered else []
    previous = history[-1:] or [v for v in others if v != champion][:1]
    for version in [v for v in [champion, *previous] if v is not None]:
        try:
            models.append(load_signal(registry, name, version))
        except (RegistryError, KeyError, ValueError, OSError) as exc:
            problems.append(f"v{version} unavailable: {exc}")
            models.append(_Unloadable(version, f"v{version} unavailable: {exc}"))
    return EarlySignalPredictor(models, rule_threshold=RULE_THRESHOLD, max_missing_share=missing_share), problems


def expected_reports(reports: pd.DataFrame, date: pd.Timestamp, *, within_days: int = 14) -> pd.DataFrame:
    """The next report of each symbol after ``date``, when expected within ``within_days`` calendar days.

    The date is the next ``reported_date`` in the store's earnings table (companies announce
    their report dates weeks ahead; a feed of announced dates writes them there); for a
    symbol without one, it is estimated as the last report + the median gap of its last four
    (``report_date_source`` says which).

    Returns
    -------
    pandas.DataFrame
        ``symbol, expected_report_date, report_date_source`` for reports within the window.
    """
    rep = clean_reports(reports)
    date = pd.Timestamp(date)
    nxt = rep[rep["reported_date"] > date].groupby("symbol")["reported_date"].min()
    past = rep[rep["reported_date"] <= date].groupby("symbol")["reported_date"]
    est = (past.max() + past.apply(lambda s: s.diff().dropna().tail(4).median())).dropna()
    est = est[~est.index.isin(nxt.index)]
    out = pd.concat([pd.DataFrame({"expected_report_date": nxt, "report_date_source": "calendar"}),
                     pd.DataFrame({"expected_report_date": est, "report_date_source": "estimated"})])
    out = out[(out["expected_report_date"] > date)
              & (out["expected_report_date"] <= date + pd.Timedelta(days=within_days))].sort_index()
    return out.rename_axis("symbol").reset_index()


def score_rows(reports: pd.DataFrame, features: pd.DataFrame, symbols: list[str], date: pd.Timestamp,
               sectors: pd.DataFrame | None = None) -> pd.DataFrame:
    """Model inputs of ``symbols`` as of the close of ``date`` (surprise history, technical, sector).

    Parameters
    ----------
    reports : pandas.DataFrame
        The store's earnings table; only reports published before ``date`` are used.
    features : pandas.DataFrame
        Feature rows (``symbol, date`` and the technical columns); those dated ``date`` are used
        (NaN for a symbol without a row that day).
    sectors : pandas.DataFrame, optional
        ``symbol, sector``: the ``sector_code`` the model was trained with (-1 when unknown).

    Returns
    -------
    pandas.DataFrame, one row per symbol in order
        ``symbol, asof_date`` and :func:`vfr.earnings.model_feature_columns`.
    """
    date = pd.Timestamp(date)
    rows = pd.DataFrame({"symbol": pd.Series(symbols, dtype=object), "asof_date": date})
    past = past_surprise_features(clean_reports(reports), rows["symbol"], rows["asof_date"])
    tech_cols = [c for c in feature_names() if c in features.columns]
    tech = features.loc[features["date"] == date, ["symbol", *tech_cols]]
    tech = tech.assign(symbol=tech["symbol"].astype(object))
    out = pd.concat([rows, past], axis=1).merge(tech, on="symbol", how="left")
    out["sector_code"] = sector_codes(out["symbol"], sectors)
    return out


def stage_earnings_predict(settings: Settings, *, date: str | None = None, within_days: int = 14,
                           symbols: list[str] | None = None) -> pd.DataFrame:
    """Score the reports expected within ``within_days`` of ``date`` through the fallback chain.

    Returns
    -------
    pandas.DataFrame
        One row per symbol: ``symbol, asof_date, expected_report_date, report_date_source,
        days_to_report`` (trading days, business-day calendar beyond the data),
        ``prediction, probability, confidence, confidence_level, source, reason``.
    """
    from vfr.ml import ModelRegistry

    inputs = read_inputs(settings, stage="earnings predict")
    day = pd.Timestamp(date) if date else inputs.features["date"].max()
    if day not in set(inputs.features["date"]):
        raise UsageError(f"earnings predict: {day.date()} is not a date of the features table "
                         f"({inputs.features['date'].min().date()}..{inputs.features['date'].max().date()})")
    upcoming = expected_reports(inputs.reports, day, within_days=within_days)
    if symbols:
        upcoming = upcoming[upcoming["symbol"].isin(symbols)]
    members = inputs.features.loc[inputs.features["date"] == day, "symbol"]
    upcoming = upcoming[upcoming["symbol"].isin(set(members))].reset_index(drop=True)
    rows = score_rows(inputs.reports, inputs.features, upcoming["symbol"].tolist(), day, inputs.sectors)
    predictor, _ = serving_chain(ModelRegistry.from_settings(settings), settings.earnings_model_name)
    preds = predictor.predict(rows)
    cal = pd.DatetimeIndex(np.sort(inputs.prices["date"].unique()))
    out = pd.concat([upcoming, preds], axis=1)
    out.insert(1, "asof_date", day)
    out.insert(4, "days_to_report", [trading_days_between(cal, day, d) for d in out["expected_report_date"]])
    return out.sort_values("probability", ascending=False, na_position="last").reset_index(drop=True)


def trading_days_between(calendar: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Trading days in (start, first trading day >= end]; business days beyond the calendar."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if len(calendar) and end <= calendar[-1]:
        return int(calendar.searchsorted(end, side="left") - calendar.searchsorted(start, side="right") + 1)
    return int(np.busday_count(start.date(), end.date()))


@dataclass
class EarningsBacktest:
    """The measured trade: per-year summary, deciles, calendar-time portfolio figures."""

    trades: pd.DataFrame
    summary: pd.DataFrame
    deciles: pd.DataFrame
    portfolio: dict[str, dict[str, float]]
    report_path: Path


def stage_earnings_backtest(settings: Settings, *, cost_bps: float | None = None) -> EarningsBacktest:
    """Trade the stored walk-forward predictions (:mod:`vfr.earnings.trade`) and write a report.

    Raises
    ------
    StageError
        No walk-forward predictions stored (run ``vfr earnings train`` first).
    """
    cost = settings.cost_bps if cost_bps is None else cost_bps
    with MarketStore.from_settings(settings) as store:
        if not store.has_table(tables.EARNINGS_PREDICTIONS_OOS):
            raise StageError("earnings backtest: no walk-forward predictions; run `vfr earnings train` first")
        preds = store.read_table(tables.EARNINGS_PREDICTIONS_OOS)
        prices = store.read_prices(columns=["close"])
        membership = store.read_membership()
    trades = event_trades(preds, prices, cost_bps=cost, membership=membership)
    summary = trade_summary(trades)
    deciles = decile_table(trades)
    portfolio = {}
    for name, part in (("flagged", trades[trades["flagged"]]), ("all_reports", trades)):
        daily = calendar_portfolio(part, prices, cost_bps=cost, membership=membership)
        portfolio[name] = portfolio_stats(daily)
    path = settings.reports_dir / "early_signal_trade.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Early-signal trade (cost {cost:g} bp per side)", "",
             "Buy at the close of the as-of date, sell at the close of the first trading day after the "
             "report's trading day; excess = stock minus the equal-weighted universe over the same window.", "",
             "## Flagged vs unflagged per year", "", markdown_table(summary), "",
             "## By decile of probability (within year)", "", markdown_table(deciles), "",
             "## Calendar-time portfolios (daily, annualised)", "",
             markdown_table(pd.DataFrame(portfolio).T, digits=3, index=True), ""]
    path.write_text("\n".join(lines))
    return EarningsBacktest(trades=trades, summary=summary, deciles=deciles, portfolio=portfolio, report_path=path)


#: Deploy rule: the challenger must not rank worse than the champion by more than this ROC-AUC.
DEPLOY_AUC_TOLERANCE = 0.005
#: Fewest fresh reports (out of sample for both) a comparison needs.
DEPLOY_MIN_REPORTS = 200


@dataclass
class EarningsRetrainDecision:
    """What :func:`stage_earnings_retrain` did."""

    challenger: str
    champion_before: str | None
    champion_after: str | None
    action: str
    reason: str
    figures: dict[str, float] = field(default_factory=dict)


def stage_earnings_retrain(settings: Settings, config: EarningsConfig | None = None) -> EarningsRetrainDecision:
    """Retrain after an earnings season and promote the challenger when it ranks as well as the champion.

    The comparison uses the reports the champion never saw (published after its validation
    year) that the challenger scored out of sample in its walk-forward: ROC-AUC of the
    champion's probabilities vs the challenger's on the same reports. The challenger is promoted
    (:meth:`vfr.ml.ModelRegistry.promote`: size, load-time and checksum guards) when its AUC is
    at least the champion's minus :data:`DEPLOY_AUC_TOLERANCE` on at least
    :data:`DEPLOY_MIN_REPORTS` reports; otherwise the champion stays and the challenger stays
    registered. A champion that cannot be loaded is replaced.

    Raises
    ------
    StageError, QualityGateError, UsageError
        As :func:`stage_earnings_train` (nothing registered then).
    """
    from sklearn.metrics import roc_auc_score

    from vfr.ml import ModelRegistry, RegistryError

    registry = ModelRegistry.from_settings(settings)
    name = settings.earnings_model_name
    before = registry.champion_version(name)
    outcome = stage_earnings_train(settings, config)
    new = outcome.version
    if before is None:
        return EarningsRetrainDecision(new, None, registry.champion_version(name),
                                       "promoted" if outcome.champion else "kept", outcome.reason)
    try:
        champion = load_signal(registry, name, before)
    except RegistryError as exc:
        registry.promote(name, new)
        return EarningsRetrainDecision(new, before, new, "promoted", f"the champion v{before} cannot be loaded: {exc}")
    since = pd.Timestamp(f"{int(champion.model.metrics.get('validation_year') or 0) + 1}-01-01")
    fresh = outcome.predictions[outcome.predictions["reported_date"] >= since]
    rows = outcome.events.merge(fresh[["symbol", "reported_date"]], on=["symbol", "reported_date"])
    rows = rows.sort_values(["symbol", "reported_date"]).reset_index(drop=True)
    fresh = fresh.sort_values(["symbol", "reported_date"]).reset_index(drop=True)
    y = rows["label"].to_numpy(float)
    if len(rows) < DEPLOY_MIN_REPORTS or not 0 < y.sum() < len(y):
        return EarningsRetrainDecision(new, before, before, "kept",
                                       f"{len(rows)} fresh reports since {since.date()}: fewer than "
                                       f"{DEPLOY_MIN_REPORTS} (or one class) to compare; champion kept")
    auc_champion = float(roc_auc_score(y, champion.predict_proba(rows)))
    auc_challenger = float(roc_auc_score(y, fresh["probability"].to_numpy(float)))
    figures = {"auc_champion": auc_champion, "auc_challenger": auc_challenger, "n_reports": float(len(rows))}
    if auc_challenger >= auc_champion - DEPLOY_AUC_TOLERANCE:
        registry.promote(name, new)
        return EarningsRetrainDecision(new, before, new, "promoted",
                                       f"challenger ROC-AUC {auc_challenger:.4f} >= champion {auc_champion:.4f} - "
                                       f"{DEPLOY_AUC_TOLERANCE} on {len(rows)} reports since {since.date()}", figures)
    return EarningsRetrainDecision(new, before, before, "kept",
                                   f"challenger ROC-AUC {auc_challenger:.4f} < champion {auc_champion:.4f} - "
                                   f"{DEPLOY_AUC_TOLERANCE} on {len(rows)} reports since {since.date()}", figures)



def walk_forward_probabilities(settings: Settings, version: str | None) -> np.ndarray | None:
    """The stored walk-forward probabilities when they belong to ``version`` (the PSI reference), else None."""
    if version is None:
        return None
    with MarketStore.from_settings(settings) as store:
        if not store.has_table(tables.EARNINGS_PREDICTIONS_OOS):
            return None
        preds = store.read_table(tables.EARNINGS_PREDICTIONS_OOS, ["probability", "model_version"])
    preds = preds[preds["model_version"].astype(str) == str(version)]
    return preds["probability"].to_numpy(float) if len(preds) else None
