"""Model monitoring: drift statistics, retraining decisions and de-duplicated alerts (issue 7).

Public interface
----------------
Drift (pure functions, :mod:`vfr.monitoring.drift`)
    ``ks_drift(reference, current, columns=None, threshold=0.15) -> DataFrame``
    ``psi(expected, actual, bins=10, eps=1e-4) -> float``
    ``rolling_performance(outcomes, window_days=30) -> DataFrame``
    ``reference_sample(features, probabilities, columns, max_rows=20000, seed=0) -> DataFrame``
    ``check_drift(reference, current, *, columns, outcomes=None, thresholds=DriftThresholds(),
    window_days=30, model="") -> DriftReport``
    ``monitored_features(columns, rank_only=True) -> ndarray`` (features that can raise the KS alert)
    ``DriftThresholds``, ``DriftReport``
Alerts (:mod:`vfr.monitoring.alerts`)
    ``Alert``, ``AlertRule``, ``DEFAULT_ALERT_RULES``, ``alert_key(rule, metric, scope="")``,
    ``evaluate_rules(values, rules=DEFAULT_ALERT_RULES, *, scope="") -> list[Alert]``,
    ``LogFileSink(path)``, ``WebhookSink(url, timeout_s=5)``, ``alert_sinks_from_settings(settings)``,
    ``AlertManager(engine, sinks, dedup_window_s=21600).publish(alerts, now=None) -> list[Alert]``,
    ``AlertManager.from_settings(settings, engine)``
Storage (:mod:`vfr.monitoring.store` over :mod:`vfr.opsdb`, tables ``ml_drift`` and ``ml_alerts``)
    ``save_drift_report(engine, report, *, model_name, model_version, as_of) -> int``
    ``latest_drift(engine, model_name=None) -> DataFrame``
    ``recent_alerts(engine, limit=50) -> DataFrame``
Outcomes (:mod:`vfr.monitoring.outcomes`, table ``ml_outcomes``)
    ``fill_outcomes(engine, read_prices) -> int``
Early-signal feedback loop (:mod:`vfr.monitoring.early_signal`)
    ``fill_earnings_outcomes(engine, reports, read_prices, *, model_name, label_threshold=20) -> int``
    ``early_signal_performance(outcomes, *, label_threshold=20, reference=None) -> DataFrame``
    ``early_signal_alerts(performance, version, *, scope) -> list[Alert]``, ``EARLY_SIGNAL_ALERT_RULES``

The tables live in the operations database (:mod:`vfr.opsdb`); monitoring never imports
:mod:`vfr.serving` or :mod:`vfr.retraining`.
"""

from vfr.monitoring.alerts import (
    DEFAULT_ALERT_RULES,
    Alert,
    AlertManager,
    AlertRule,
    LogFileSink,
    WebhookSink,
    alert_key,
    alert_sinks_from_settings,
    evaluate_rules,
)
from vfr.monitoring.drift import (
    DriftReport,
    DriftThresholds,
    check_drift,
    ks_drift,
    monitored_features,
    psi,
    reference_sample,
    rolling_performance,
)
from vfr.monitoring.early_signal import (
    EARLY_SIGNAL_ALERT_RULES,
    early_signal_alerts,
    early_signal_performance,
    fill_earnings_outcomes,
)
from vfr.monitoring.outcomes import fill_outcomes
from vfr.monitoring.store import latest_drift, recent_alerts, save_drift_report

__all__ = [
    "DEFAULT_ALERT_RULES", "EARLY_SIGNAL_ALERT_RULES", "Alert", "AlertManager", "AlertRule", "DriftReport",
    "DriftThresholds", "LogFileSink", "WebhookSink", "alert_key", "alert_sinks_from_settings", "check_drift",
    "early_signal_alerts", "early_signal_performance", "evaluate_rules", "fill_earnings_outcomes", "fill_outcomes",
    "ks_drift", "latest_drift", "monitored_features", "psi", "recent_alerts", "reference_sample",
    "rolling_performance", "save_drift_report",
]
