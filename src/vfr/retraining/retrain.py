"""`vfr retrain`: fresh data, quality gates, a challenger, the deploy rules, a guard, a decision.

One run, in order (each step recorded in ``ml_retraining_runs`` and in a JSON report):

1. take the database lock (one retraining at a time across processes and machines), a lease
   whose heartbeat the run refreshes: a run that crashes blocks the next one for at most
   ``retrain_lock_ttl_s`` (and is then marked failed, "holder died");
2. rebuild the features from the store (optional) and read features and prices up to ``as_of``
   (labels are computed from those prices only, so a label is known only once its horizon
   has passed by ``as_of``);
3. data quality gates (:func:`vfr.ml.run_quality_gates`); a critical gate stops the run with
   its report and nothing is trained or registered;
4. train the challenger (walk-forward, on Dask when ``VFR_DASK_SCHEDULER`` is set) and
   register it with its lineage and drift reference, alias ``challenger``;
5. compare it with the champion on the *fresh* dates: labelled dates after the champion's
   training window plus the embargo, which neither the champion's final model nor the
   challenger's walk-forward models were fitted on. The champion's final model scores those
   rows; the challenger is represented by its walk-forward predictions (models fitted only
   on earlier dates), so both sides are out of sample;
6. the deploy rules (:func:`vfr.ml.decide`) give deploy / ab_test / keep; then the guard
   refuses any challenger worse than the champion by more than ``retrain_guard`` (10%) of
   the champion's value on a guard metric, whatever the rules said;
7. act: deploy promotes through :meth:`ModelRegistry.promote` (size, load, checksum and
   feature checks), remembering the previous champion for one-call rollback, and replaces the
   stored out-of-sample predictions; ab_test starts a 10% traffic split; keep and refuse
   leave the champion as it is.

A failure at any step records ``failed`` with the reason; the registry and the store are
then as they were (a version is registered only after training succeeded, and the champion
only moves after every check passed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from rich.console import Console

from vfr.config import Settings
from vfr.data import MarketStore, tables
from vfr.errors import StageError
from vfr.ml import (
    CHALLENGER,
    DEPLOY_RULES,
    ModelRegistry,
    TrainConfig,
    decide,
    evaluate_predictions,
    make_labels,
)
from vfr.ml.quality import GateThresholds, gate_training_data
from vfr.ml.tuning import score_predictions
from vfr.monitoring.drift import json_safe
from vfr.opsdb import runs

#: Metrics the guard protects (higher is better for each): ROC-AUC, directional accuracy,
#: mean Rank IC and the top-decile Sharpe ratio, all on the fresh dates.
GUARD_METRICS = ("roc_auc", "directional_accuracy", "rank_ic_mean", "sharpe")


@dataclass
class RetrainingDecision:
    """What one retraining run decided and why (also the JSON report written for it)."""

    run_id: int
    trigger: str
    status: str  # deployed | ab_test | kept | refused | blocked | skipped | busy | failed
    action: str | None
    reason: str
    champion_before: str | None
    challenger_version: str | None = None
    champion_after: str | None = None
    as_of: str | None = None
    comparison: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    report_path: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (undefined metrics as None): the stored report and the API's answer."""
        return json_safe(asdict(self))


def guard_violations(challenger: dict[str, float], champion: dict[str, float], guard: float = 0.10,
                     metrics: tuple[str, ...] = GUARD_METRICS) -> list[str]:
    """Guard metrics on which the challenger is worse than the champion by more than ``guard``.

    A metric counts as violated when ``challenger < champion - guard * |champion|`` (both
    finite). Returns one sentence per violation, e.g. ``"sharpe 0.41 < 0.90 x champion 0.62"``.
    """
    out = []
    for m in metrics:
        a, b = float(challenger.get(m, np.nan)), float(champion.get(m, np.nan))
        if np.isfinite(a) and np.isfinite(b) and a < b - guard * abs(b):
            out.append(f"{m} {a:.4f} is more than {guard:.0%} worse than the champion's {b:.4f}")
    return out


def fresh_rows(dataset: pd.DataFrame, label: str, after: pd.Timestamp, embargo: int) -> pd.DataFrame:
    """Labelled rows dated more than ``embargo`` trading dates after ``after``.

    Parameters
    ----------
    dataset : DataFrame
        Features joined with labels (:func:`vfr.ml.build_dataset`), with ``date``.
    after : Timestamp
        Last date of the champion's training window.
    embargo : int
        Trading dates skipped after it (the label horizon).
    """
    dates = np.sort(dataset["date"].unique())
    start = np.searchsorted(dates, np.datetime64(after), side="right") + embargo
    if start >= len(dates):
        return dataset.iloc[0:0]
    rows = dataset[(dataset["date"] >= dates[start]) & dataset[label].notna()]
    return rows


def compare_on_fresh_dates(champion, challenger_oos: pd.DataFrame, dataset: pd.DataFrame, *, label: str,
                           fwd: str, horizon_days: int) -> dict[str, Any]:
    """Out-of-sample metrics of the champion and the challenger on the same fresh rows.

    Returns
    -------
    dict
        ``champion`` and ``challenger`` metric dicts (ROC-AUC, accuracy, IC, Rank IC, Sharpe,
        ...), ``n_dates``, ``n_rows``, ``first_date``, ``last_date``; the metric dicts are empty
        when there are no fresh rows.
    """
    train_end = pd.Timestamp(champion.metadata["training_window"][1])
    fresh = fresh_rows(dataset, label, train_end, horizon_days)
    fresh = fresh.merge(challenger_oos[["date", "symbol", "prob"]].rename(columns={"prob": "challenger"}),
                        on=["date", "symbol"], how="inner")
    info = {"champion_training_end": str(train_end.date()), "n_rows": len(fresh),
            "n_dates": int(fresh["date"].nunique()),
            "first_date": str(fresh["date"].min().date()) if len(fresh) else None,
            "last_date": str(fresh["date"].max().date()) if len(fresh) else None}
    if fresh.empty:
        return info | {"champion": {}, "challenger": {}}
    fresh = fresh.assign(champion=champion.predict_proba(fresh))
    out = {}
    for who in ("champion", "challenger"):
        m = evaluate_predictions(fresh, score=who, label=label, fwd_return=fwd, horizon_days=horizon_days)
        m["sharpe"] = score_predictions(fresh, "sharpe_top_decile", score=who, label=label, fwd_return=fwd,
                                        horizon_days=horizon_days)
        out[who] = {k: float(v) for k, v in m.items()}
    return info | out


def run_retraining(settings: Settings, *, trigger: str = "manual", config: TrainConfig | None = None,
                   as_of: str | pd.Timestamp | None = None, rebuild_features: bool = True,
                   exclude_completeness: tuple[str, ...] | None = None, rules=DEPLOY_RULES,
                   prices: str | Path | None = None, universe: str | Path | Sequence[str | Path] | None = None,
                   console: Console | None = None) -> RetrainingDecision:
    """Retrain, compare with the champion, and promote or keep (see the module docstring).

    Parameters
    ----------
    settings : Settings
        Store, registry, serving database (run log and lock), ``retrain_guard``,
        ``retrain_min_fresh_dates``, Dask scheduler.
    trigger : str
        Why it runs (``manual``, ``api``, ``monthly``, ``earnings_season``, ``drift``,
        ``drift_urgent``, ``replay``).
    config : TrainConfig, optional
        Default :meth:`TrainConfig.from_settings`.
    as_of : date, optional
        Train as if today were ``as_of``: only features and prices up to it are read (for
        replays); default the store's latest date.
    rebuild_features : bool
        Rebuild the features table from the stored inputs first (``vfr features build``).
    exclude_completeness : tuple of str, optional
        Features exempt from the completeness gate; default
        :func:`vfr.ml.quality.partial_coverage` (those partial by construction).
    rules : iterable of DeployRule
    prices, universe : path, optional
        New price file (and constituents) ingested first (``vfr data ingest``: validated,
        adjusted, upserted atomically), so the run trains on the freshest data.

    Returns
    -------
    RetrainingDecision
        ``status`` ``busy`` when another retraining holds the lock; ``blocked`` when a
        quality gate is critical; ``skipped`` when there are too few fresh dates to compare a
        challenger (none is trained); otherwise the action taken.

    Raises
    ------
    StageError
        When training or promotion fails; the run is recorded as ``failed`` first.
    """
    from vfr.ml.lineage import describe_source
    from vfr.pipeline import (
        FEATURES_TABLE,
        PREDICTIONS_TABLE,
        register_result,
        stage_features,
        stage_ingest,
        train_with_progress,
    )

    console = console or Console(stderr=True)
    config = config or TrainConfig.from_settings(settings)
    engine = sa.create_engine(settings.resolved_serving_db_url)
    registry = ModelRegistry.from_settings(settings)
    name = settings.model_name
    champion_before = registry.champion_version(name) if _has_model(registry, name) else None
    run_id = runs.start_run(engine, trigger=trigger, model_name=name, champion_before=champion_before)
    decision = RetrainingDecision(run_id=run_id, trigger=trigger, status="running", action=None, reason="",
                                  champion_before=champion_before)
    try:
        with runs.exclusive(engine, "retrain", ttl_s=settings.retrain_lock_ttl_s, run_id=run_id) as got:
            if not got:
                decision.status, decision.reason = "busy", "another retraining run holds the lock"
                return _finish(settings, engine, decision)
            if prices is not None:
                stage_ingest(settings, Path(prices), universe or None, console=console)
            if rebuild_features and as_of is None:
                stage_features(settings, console=console)
            with MarketStore.from_settings(settings) as store:
                if not store.has_table(FEATURES_TABLE):
                    raise StageError("retrain: the store has no features; run `vfr features build` first")
                end = pd.Timestamp(as_of) if as_of is not None else None
                features = store.read_table(FEATURES_TABLE, end=end)
                price_frame = store.read_prices(columns=["symbol", "date", "close"], end=end)
                membership = store.read_membership()
                store_url = store.public_url
            if features.empty:
                raise StageError(f"retrain: no features on or before {as_of}")
            day = features["date"].max()
            decision.as_of = str(day.date())
            labels = make_labels(price_frame, membership=membership)
            console.print(f"retrain run {run_id}: quality gates on the data up to {decision.as_of}")
            gated = gate_training_data(features, labels, horizon=config.horizon,
                                       feature_columns=config.feature_columns, as_of=day,
                                       exclude_completeness=exclude_completeness,
                                       thresholds=GateThresholds.from_settings(settings))
            dataset, quality = gated.dataset, gated.report
            config = replace(config, feature_columns=gated.feature_columns)
            decision.notes.extend(gated.notes)
            decision.quality = quality.to_dict()
            if not quality.passed:
                failed = quality.failed("critical")
                decision.status = "blocked"
                decision.reason = "data quality gate failed: " + "; ".join(
                    f"{r.gate} = {r.value:.4g} ({r.critical})" for r in failed.itertuples())
                _write_markdown(settings, decision, quality.to_markdown())
                return _finish(settings, engine, decision)

            champion = registry.load(name, decision.champion_before) if decision.champion_before else None
            if champion is not None:  # can a challenger be compared at all yet?
                champion_end = pd.Timestamp(champion.metadata["training_window"][1])
                n_fresh = fresh_rows(dataset, f"fwd_dir_{config.horizon}", champion_end,
                                     config.horizon_days)["date"].nunique()
                if n_fresh < settings.retrain_min_fresh_dates:
                    decision.status, decision.action = "skipped", "keep"
                    decision.champion_after = decision.champion_before
                    decision.reason = (f"only {n_fresh} fresh dates after the champion's training window (ends "
                                       f"{champion_end.date()}); {settings.retrain_min_fresh_dates} are needed to "
                                       "compare a challenger, so none was trained; the champion stays")
                    return _finish(settings, engine, decision)
            console.print(f"quality gates: {quality.status}; training the challenger on data to {decision.as_of}")
            result = train_with_progress(settings, features, labels, config, console)
            version, lineage = register_result(settings, registry, result, features, labels,
                                      sources=[describe_source(tables.PRICES, price_frame, path=store_url),
                                               describe_source(tables.FEATURES, features, path=store_url)],
                                      extra_metadata={"retraining_run": run_id, "trigger": trigger,
                                                      "as_of": decision.as_of})
            decision.challenger_version = version
            decision.lineage = lineage.to_dict()
            _decide_and_act(settings, registry, decision, champion, result, dataset, config, rules)
            if decision.status == "deployed":
                with MarketStore.from_settings(settings) as store:
                    store.replace_table(PREDICTIONS_TABLE, result.oos_predictions.assign(model_version=version))
            return _finish(settings, engine, decision)
    except Exception as exc:
        decision.status, decision.reason = "failed", f"{exc.__class__.__name__}: {exc}"
        _restore_champion(registry, name, champion_before, decision)
        _finish(settings, engine, decision)
        if isinstance(exc, StageError):
            raise
        raise StageError(f"retrain run {run_id} failed: {exc}") from exc


def _restore_champion(registry: ModelRegistry, name: str, champion_before: str | None,
                      decision: RetrainingDecision) -> None:
    """After a failure past the promotion, give the champion alias back (the run changes nothing)."""
    try:
        now = registry.champion_version(name) if _has_model(registry, name) else None
        if champion_before is not None and now != champion_before:
            registry.set_champion(name, champion_before)
            decision.champion_after = champion_before
            decision.reason += f"; champion restored to v{champion_before}"
    except Exception as exc:  # noqa: BLE001 - report, never mask the original failure
        decision.reason += f"; could not restore champion v{champion_before}: {exc}"


def _has_model(registry: ModelRegistry, name: str) -> bool:
    try:
        return bool(registry.versions(name))
    except Exception:  # noqa: BLE001 - no registered model yet
        return False


def _decide_and_act(settings: Settings, registry: ModelRegistry, decision: RetrainingDecision, champion, result,
                    dataset: pd.DataFrame, config: TrainConfig, rules) -> None:
    from vfr.pipeline import champion_gate

    name, version = settings.model_name, decision.challenger_version
    assert version is not None  # the caller registers the challenger and sets its version first
    if decision.champion_before is None:
        ok, why = champion_gate(result.walk_forward_metrics)
        decision.comparison = {"challenger": result.walk_forward_metrics.get("model", {})}
        if ok:
            registry.promote(name, version)
            decision.status, decision.action, decision.champion_after = "deployed", "deploy", version
            decision.reason = f"no champion yet; first-champion gate passed: {why}"
        else:
            registry.client.set_registered_model_alias(name, CHALLENGER, version)
            decision.status, decision.action, decision.champion_after = "kept", "keep", None
            decision.reason = f"no champion yet and the first-champion gate failed: {why}"
        return
    registry.client.set_registered_model_alias(name, CHALLENGER, version)
    missing = [c for c in champion.feature_columns if c not in dataset.columns]
    if missing:
        raise StageError(f"retrain: the champion v{decision.champion_before} needs features the store no longer "
                         f"has: {missing[:8]}")
    cmp = compare_on_fresh_dates(champion, result.oos_predictions, dataset, label=result.label,
                                 fwd=f"fwd_excess_{config.horizon}", horizon_days=config.horizon_days)
    decision.comparison = cmp
    decision.champion_after = decision.champion_before
    if cmp["n_dates"] < settings.retrain_min_fresh_dates:
        decision.status, decision.action = "kept", "keep"
        decision.reason = (f"only {cmp['n_dates']} fresh dates after the champion's training window "
                           f"(ends {cmp['champion_training_end']}); {settings.retrain_min_fresh_dates} are needed "
                           "to compare; the champion stays")
        return
    rule = decide(cmp["challenger"], cmp["champion"], rules)
    violations = guard_violations(cmp["challenger"], cmp["champion"], settings.retrain_guard)
    cmp["rule"] = {"action": rule.action, "rule": rule.rule, "auc_gain": rule.auc_gain,
                   "sharpe_gain": rule.sharpe_gain}
    cmp["guard_violations"] = violations
    gains = f"AUC gain {rule.auc_gain:+.4f}, Sharpe gain {rule.sharpe_gain:+.3f} over {cmp['n_dates']} fresh dates"
    if violations:
        decision.status, decision.action = "refused", "refuse"
        decision.reason = f"guard: {'; '.join(violations)} (rules said {rule.action}: {rule.rule}; {gains})"
        return
    if rule.action == "deploy":
        registry.promote(name, version)  # remembers the previous champion for rollback
        decision.status, decision.champion_after = "deployed", version
    elif rule.action == "ab_test":
        registry.start_ab_test(name, version, 0.1)
        decision.status = "ab_test"
    else:
        decision.status = "kept"
    decision.action = rule.action
    decision.reason = f"{rule.rule}: {gains}"


def _report_dir(settings: Settings) -> Path:
    path = settings.reports_dir / "retraining"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_markdown(settings: Settings, decision: RetrainingDecision, text: str) -> None:
    (_report_dir(settings) / f"run-{decision.run_id}-quality.md").write_text(text)


def _finish(settings: Settings, engine: sa.Engine, decision: RetrainingDecision) -> RetrainingDecision:
    """Write the JSON report (atomically) and the run row; returns the decision."""
    path = _report_dir(settings) / f"run-{decision.run_id}.json"
    decision.report_path = str(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(decision.to_dict(), indent=2, default=str))
    tmp.replace(path)
    runs.finish_run(engine, decision.run_id, status=decision.status, action=decision.action,
                    challenger_version=decision.challenger_version, champion_after=decision.champion_after,
                    reason=decision.reason, report=decision.to_dict())
    return decision
