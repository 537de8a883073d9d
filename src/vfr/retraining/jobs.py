"""The scheduled jobs: daily outcome collection and drift check, monthly and post-earnings
retraining, retraining on drift. Each job is a plain function of the settings (and an
optional ``as_of`` date for replays) that takes its database lock first, so the same
occurrence never runs twice however many schedulers fire it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from vfr.config import Settings
from vfr.data import MarketStore, tables
from vfr.ml import ModelRegistry
from vfr.monitoring import (
    AlertManager,
    DriftReport,
    DriftThresholds,
    check_drift,
    fill_outcomes,
    save_drift_report,
)
from vfr.opsdb import evaluated_outcomes, runs, served_features

log = logging.getLogger(__name__)

#: Features that are functions of the calendar (quarter ends, January, the earnings cycle): their
#: distribution over a 30-day window differs from a multi-year reference by construction, so a KS
#: test on them measures the date, not drift. They are left out of feature drift.
CALENDAR_CYCLE_FEATURES = ("days_to_quarter_end", "is_quarter_end_window", "is_january", "days_to_next_earnings",
                           "days_since_last_earnings")


def _engine(settings: Settings) -> sa.Engine:
    """An engine on the operations database (:mod:`vfr.opsdb`) of ``settings``."""
    return sa.create_engine(settings.resolved_serving_db_url)


def _as_settings(settings: Settings | dict[str, Any]) -> Settings:
    """Jobs stored in the scheduler's database carry their settings as a plain dict."""
    return settings if isinstance(settings, Settings) else Settings(**settings)


def collect_outcomes(settings: Settings, as_of: str | pd.Timestamp | None = None) -> int:
    """Fill ``ml_outcomes`` from the stored prices up to ``as_of`` (default all): returns rows written."""
    end = pd.Timestamp(as_of) if as_of is not None else None
    with MarketStore.from_settings(settings) as store:
        return fill_outcomes(_engine(settings),
                             lambda start: store.read_prices(columns=["symbol", "date", "close"], start=start, end=end))


def collect_earnings_outcomes(settings: Settings, as_of: str | pd.Timestamp | None = None) -> int:
    """Settle the early-signal predictions whose report is in the store (0 without an earnings table)."""
    from vfr.monitoring.early_signal import fill_earnings_outcomes

    end = pd.Timestamp(as_of) if as_of is not None else None
    with MarketStore.from_settings(settings) as store:
        if not store.has_table(tables.EARNINGS):
            return 0
        reports = store.read_table(tables.EARNINGS)
        if end is not None:
            reports = reports[reports["reported_date"] <= end]
        return fill_earnings_outcomes(
            _engine(settings), reports,
            lambda start: store.read_prices(columns=["symbol", "date", "close"], start=start, end=end),
            model_name=settings.earnings_model_name, label_threshold=settings.earnings_label_threshold)


def early_signal_monitoring(settings: Settings, as_of: str | pd.Timestamp | None = None,
                            window_days: int = 365) -> dict[str, Any]:
    """Settle early-signal predictions, measure each version over the last ``window_days`` of
    settled reports, and publish the champion's alerts (:data:`vfr.monitoring.EARLY_SIGNAL_ALERT_RULES`).

    Returns
    -------
    dict
        ``written`` (outcomes settled), ``performance`` (records of
        :func:`vfr.monitoring.early_signal_performance`), ``alerts`` (messages delivered).
    """
    from vfr.earnings.stage import walk_forward_probabilities
    from vfr.monitoring import early_signal_alerts, early_signal_performance

    written = collect_earnings_outcomes(settings, as_of)
    end = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.now().normalize()
    outcomes = evaluated_outcomes(_engine(settings), model_name=settings.earnings_model_name,
                                  start=end - pd.Timedelta(days=window_days), end=end)
    champion = ModelRegistry.from_settings(settings).champion_version(settings.earnings_model_name)
    perf = early_signal_performance(outcomes, label_threshold=settings.earnings_label_threshold,
                                    reference=walk_forward_probabilities(settings, champion))
    alerts = early_signal_alerts(perf, champion, scope=settings.earnings_model_name)
    delivered = AlertManager.from_settings(settings, _engine(settings)).publish(alerts) if alerts else []
    return {"written": written, "performance": perf.to_dict("records"), "alerts": [a.message for a in delivered]}


@dataclass
class DriftCheck:
    """One drift check: the report, where it was stored, and the alerts actually delivered."""

    as_of: str
    model_version: str | None
    report: DriftReport | None
    n_current: int
    n_outcomes: int
    delivered: list[Any] = field(default_factory=list)
    note: str = ""

    @property
    def action(self) -> str:
        return self.report.action if self.report is not None else "none"


def drift_check(settings: Settings, as_of: str | pd.Timestamp | None = None,
                thresholds: DriftThresholds | None = None) -> DriftCheck:
    """Compare recent production with the champion's training reference; store and alert.

    Current features and probabilities are the predictions served in the last
    ``settings.drift_window_days`` calendar days (from ``ml_predictions``); where none were
    logged, the champion scores the stored features of those days. Calendar-cycle features
    (:data:`CALENDAR_CYCLE_FEATURES`) are not tested. Outcomes whose horizon
    ended in the window give rolling accuracy, IC and Brier. The report goes to ``ml_drift``
    and its alerts through :class:`vfr.monitoring.AlertManager` (log file, webhook,
    de-duplicated).
    """
    engine = _engine(settings)
    registry = ModelRegistry.from_settings(settings)
    name = settings.model_name
    try:
        champion = registry.load(name)
    except Exception as exc:  # noqa: BLE001 - no champion yet: nothing to monitor
        return DriftCheck(str(as_of), None, None, 0, 0, note=f"no champion to monitor ({exc.__class__.__name__})")
    with MarketStore.from_settings(settings) as store:
        end = pd.Timestamp(as_of) if as_of is not None else \
            store.read_table(tables.FEATURES, columns=["date"])["date"].max()
        start = end - pd.Timedelta(days=settings.drift_window_days - 1)
        current = served_features(engine, model_name=name, model_version=champion.version, start=start, end=end)
        if current.empty or not set(champion.feature_columns) <= set(current.columns):
            feats = store.read_table(tables.FEATURES, start=start, end=end)
            current = feats.assign(probability=champion.predict_proba(feats))
    ref_file = champion.file("drift_reference.parquet")
    if ref_file is None:
        return DriftCheck(str(end.date()), champion.version, None, len(current), 0,
                          note=f"champion v{champion.version} was registered without a drift reference; retrain it")
    reference = pd.read_parquet(ref_file)
    outcomes = evaluated_outcomes(engine, model_name=name, start=start, end=end)
    columns = [c for c in champion.feature_columns if c.removesuffix("_rank") not in CALENDAR_CYCLE_FEATURES]
    report = check_drift(reference, current, columns=columns, outcomes=outcomes,
                         thresholds=thresholds or DriftThresholds(), window_days=settings.drift_window_days, model=name)
    save_drift_report(engine, report, model_name=name, model_version=champion.version, as_of=end.date())
    delivered = AlertManager.from_settings(settings, engine).publish(report.alerts)
    return DriftCheck(str(end.date()), champion.version, report, len(current), len(outcomes), delivered)


def daily_monitoring(settings: Settings | dict[str, Any], as_of: str | None = None,
                     retrain_on_drift: bool = True) -> dict[str, Any]:
    """The daily job: collect outcomes, check drift, and retrain when drift says so.

    ``urgent_retraining`` and ``schedule_retraining`` both retrain at once, at most once per ISO
    week between them (a lock keyed by the week: drift that persists after a retraining which
    kept the champion does not retrain every day). Runs once per date whatever the number of
    schedulers.
    """
    settings = _as_settings(settings)
    day = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.now(tz=settings.scheduler_timezone).normalize()
    key = str(day.date())
    if not runs.claim(_engine(settings), "daily_monitoring", key):
        return {"job": "daily_monitoring", "run_key": key, "ran": False}
    written = collect_outcomes(settings, as_of)
    try:
        settled = early_signal_monitoring(settings, as_of)["written"]
    except Exception as exc:  # noqa: BLE001 - the return model's monitoring still runs
        log.error("early-signal monitoring failed: %s", exc)
        settled = 0
    check = drift_check(settings, as_of)
    out = {"job": "daily_monitoring", "run_key": key, "ran": True, "outcomes_written": written,
           "early_signal_outcomes_written": settled,
           "drift_action": check.action, "alerts_sent": len(check.delivered), "note": check.note,
           "reasons": check.report.reasons if check.report else []}
    if retrain_on_drift and check.action in ("urgent_retraining", "schedule_retraining"):
        trigger = "drift_urgent" if check.action == "urgent_retraining" else "drift"
        week = f"{day.isocalendar().year}-W{day.isocalendar().week:02d}"
        if runs.claim(_engine(settings), "drift_retraining", week):
            out["retraining"] = _retrain(settings, trigger, as_of)
    return out


def monthly_retraining(settings: Settings | dict[str, Any], as_of: str | None = None) -> dict[str, Any]:
    """The monthly job (once per calendar month)."""
    return _periodic(settings, "monthly_retraining", "monthly", as_of, lambda day: f"{day:%Y-%m}")


def earnings_season_retraining(settings: Settings | dict[str, Any], as_of: str | None = None) -> dict[str, Any]:
    """Retraining once most companies have reported (once per quarter): the return model, then the
    early-signal model (:func:`vfr.earnings.stage.stage_earnings_retrain`, its own deploy rule)."""
    out = _periodic(settings, "earnings_season_retraining", "earnings_season", as_of,
                    lambda day: f"{day.year}-Q{day.quarter}")
    if out["ran"]:
        out["early_signal"] = _retrain_early_signal(_as_settings(settings))
    return out


def _retrain_early_signal(settings: Settings) -> dict[str, Any]:
    from vfr.earnings.stage import stage_earnings_retrain

    try:
        decision = stage_earnings_retrain(settings)
    except Exception as exc:  # noqa: BLE001 - recorded; the scheduler keeps going
        log.error("early-signal retraining failed: %s", exc)
        return {"status": "failed", "reason": str(exc)}
    return {"status": "finished", "action": decision.action, "reason": decision.reason,
            "challenger": decision.challenger, "champion_after": decision.champion_after}


def _periodic(settings: Settings | dict[str, Any], job: str, trigger: str, as_of: str | None, key_of) -> dict[str, Any]:
    """Retrain once per occurrence ``key_of(day)`` of ``job`` (the lock decides who runs it)."""
    settings = _as_settings(settings)
    day = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.now(tz=settings.scheduler_timezone)
    key = key_of(day)
    if not runs.claim(_engine(settings), job, key):
        return {"job": job, "run_key": key, "ran": False}
    return {"job": job, "run_key": key, "ran": True, "retraining": _retrain(settings, trigger, as_of)}


def _retrain(settings: Settings, trigger: str, as_of: str | None) -> dict[str, Any]:
    from vfr.retraining.retrain import run_retraining

    try:
        decision = run_retraining(settings, trigger=trigger, as_of=as_of, rebuild_features=as_of is None)
    except Exception as exc:  # noqa: BLE001 - recorded as a failed run; the scheduler keeps going
        log.error("retraining (%s) failed: %s", trigger, exc)
        return {"status": "failed", "reason": str(exc)}
    return {"status": decision.status, "action": decision.action, "reason": decision.reason,
            "run_id": decision.run_id, "challenger": decision.challenger_version,
            "champion_after": decision.champion_after}
