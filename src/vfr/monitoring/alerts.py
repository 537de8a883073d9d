"""Alerts: threshold rules, sinks (JSON-lines log file, Slack-compatible webhook) and a
database-backed manager that sends each alert at most once per de-duplication window.

An :class:`Alert` is identified by its ``key`` (scope + rule + metric, not the value): the
same condition seen again within the window is counted in ``ml_alerts`` but not re-sent. The
claim to send is one conditional write in the database, so several API workers or job
processes sharing the database send an alert once between them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

import sqlalchemy as sa

from vfr.opsdb import claim_alert, ensure_schema, record_delivery, release_alert, utcnow

log = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "critical")
_OPS = {">": lambda v, t: v > t, ">=": lambda v, t: v >= t, "<": lambda v, t: v < t, "<=": lambda v, t: v <= t}


def alert_key(rule: str, metric: str, scope: str = "") -> str:
    """De-duplication key ``"<scope>|<rule>|<metric>"`` (``scope`` is typically the model name)."""
    return f"{scope}|{rule}|{metric}"


@dataclass(frozen=True)
class Alert:
    """A rule that fired.

    Attributes
    ----------
    rule : str
        Name of the rule (e.g. ``prediction_psi``).
    severity : {"info", "warning", "critical"}
    metric : str
        The measured quantity (e.g. ``psi``).
    value, threshold : float
        Measured value and the threshold it crossed.
    message : str
        Human sentence saying what crossed which threshold.
    key : str
        De-duplication key (:func:`alert_key`: scope + rule + metric, not the value).
    """

    rule: str
    severity: str
    metric: str
    value: float
    threshold: float
    message: str
    key: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Alert.severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite numbers become None)."""
        d = asdict(self)
        for k in ("value", "threshold"):
            d[k] = d[k] if d[k] is not None and math.isfinite(d[k]) else None
        return d


@dataclass(frozen=True)
class AlertRule:
    """Fires when ``value <op> threshold``.

    Parameters
    ----------
    name : str
        Rule name (part of the alert key).
    metric : str
        Key looked up in the values given to :func:`evaluate_rules`.
    op : {">", ">=", "<", "<="}
    threshold : float
    severity : {"info", "warning", "critical"}

    Raises
    ------
    ValueError
        Unknown ``op`` or ``severity``.
    """

    name: str
    metric: str
    op: str
    threshold: float
    severity: str

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"AlertRule {self.name!r}: op must be one of {tuple(_OPS)}, got {self.op!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"AlertRule {self.name!r}: severity must be one of {SEVERITIES}, got {self.severity!r}")

    def fires(self, value: float | None) -> bool:
        """Whether ``value`` crosses the threshold (None and NaN never fire)."""
        if value is None:
            return False
        value = float(value)
        return math.isfinite(value) and _OPS[self.op](value, self.threshold)


#: Default rules. The first four mirror :class:`vfr.monitoring.drift.DriftThresholds` defaults
#: (metrics ``psi`` of the predicted probabilities, ``ks_breached_features`` = number of monitored
#: features, by default the model's ``*_rank`` features (``DriftThresholds.ks_rank_only``), with KS
#: above its threshold, ``rolling_accuracy`` and ``brier`` of the trailing window); the
#: last two watch the API (``api_error_rate`` = share of 5xx answers, ``api_p95_latency_ms``).
DEFAULT_ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule("prediction_psi", "psi", ">", 0.2, "critical"),
    AlertRule("feature_ks", "ks_breached_features", ">=", 3, "warning"),
    AlertRule("rolling_accuracy", "rolling_accuracy", "<", 0.48, "critical"),
    AlertRule("calibration_brier", "brier", ">", 0.26, "warning"),
    AlertRule("api_error_rate", "api_error_rate", ">", 0.05, "critical"),
    AlertRule("api_p95_latency", "api_p95_latency_ms", ">", 1000.0, "warning"),
)


def evaluate_rules(values: Mapping[str, float | None], rules: Iterable[AlertRule] = DEFAULT_ALERT_RULES, *,
                   scope: str = "") -> list[Alert]:
    """Alerts of the rules whose metric crosses its threshold.

    Parameters
    ----------
    values : mapping of str to float
        Measured values by metric name; missing, None and NaN values never fire.
    rules : iterable of AlertRule
    scope : str
        Prefix of the alert keys and messages (e.g. the model name).

    Returns
    -------
    list of Alert
        In the order of ``rules``.
    """
    out = []
    for rule in rules:
        value = values.get(rule.metric)
        if value is None or not rule.fires(value):  # None never fires
            continue
        where = f" [{scope}]" if scope else ""
        out.append(Alert(rule=rule.name, severity=rule.severity, metric=rule.metric, value=float(value),
                         threshold=float(rule.threshold),
                         message=f"{rule.metric} {float(value):.4g} {rule.op} {rule.threshold:g}{where}",
                         key=alert_key(rule.name, rule.metric, scope)))
    return out


# -- sinks --------------------------------------------------------------------------------------
class AlertSink(Protocol):
    """Something alerts are delivered to."""

    name: str

    def send(self, alert: Alert) -> bool:
        """Deliver one alert; True when delivered. Must not raise on delivery failure."""
        ...


class LogFileSink:
    """Appends one JSON line per alert to ``path`` (parent folder created).

    Each line is written with a single ``write`` on a file opened ``O_APPEND``, so lines of
    concurrent writers do not interleave. Fields: ``sent_at`` (ISO UTC) and those of
    :meth:`Alert.to_dict`.
    """

    name = "log"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def send(self, alert: Alert) -> bool:
        line = json.dumps({"sent_at": datetime.now(UTC).isoformat(), **alert.to_dict()}) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("alert log %s not written (%s): %s", self.path, exc.__class__.__name__, alert.message)
            return False
        return True


class WebhookSink:
    """POSTs a Slack-compatible message (incoming-webhook format) to ``url``.

    Body: ``{"text": "[CRITICAL] <message>", "attachments": [{"color", "fields": rule, metric,
    value, threshold, "footer": key}]}``. A failure (connection refused, timeout, non-2xx) is
    logged without the URL (webhook URLs embed a secret) and reported as not delivered.
    """

    name = "webhook"
    _COLORS: ClassVar[dict[str, str]] = {"info": "#439FE0", "warning": "warning", "critical": "danger"}

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    @staticmethod
    def payload(alert: Alert) -> dict[str, Any]:
        """The JSON body sent for ``alert``."""
        d = alert.to_dict()
        fields = [{"title": k, "value": str(d[k]), "short": True} for k in ("rule", "metric", "value", "threshold")]
        return {"text": f"[{alert.severity.upper()}] {alert.message}",
                "attachments": [{"color": WebhookSink._COLORS[alert.severity], "fields": fields, "footer": alert.key}]}

    def send(self, alert: Alert) -> bool:
        import requests

        try:
            r = requests.post(self.url, json=self.payload(alert), timeout=self.timeout_s)
        except requests.RequestException as exc:
            log.warning("alert webhook unreachable (%s); alert %s kept in the other sinks", exc.__class__.__name__,
                        alert.key)
            return False
        if not 200 <= r.status_code < 300:
            log.warning("alert webhook answered HTTP %d; alert %s kept in the other sinks", r.status_code, alert.key)
            return False
        return True


def alert_sinks_from_settings(settings: Any) -> list[AlertSink]:
    """``LogFileSink(<home>/alerts.log)``, plus a :class:`WebhookSink` when
    ``settings.alert_webhook_url`` is set."""
    sinks: list[AlertSink] = [LogFileSink(settings.home_dir / "alerts.log")]
    url = getattr(settings, "alert_webhook_url", None)
    if url:
        sinks.append(WebhookSink(url))
    return sinks


# -- manager ------------------------------------------------------------------------------------
class AlertManager:
    """Sends alerts to sinks at most once per ``dedup_window_s`` per alert key.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Operations database holding ``ml_alerts`` (:mod:`vfr.opsdb`; SQLite or PostgreSQL, migrated on
        first use).
    sinks : sequence of AlertSink
        Where claimed alerts are delivered, in order.
    dedup_window_s : float
        An alert whose key was sent less than this many seconds ago is not re-sent (default 6 h).

    Notes
    -----
    The claim to send is decided by the database: an ``INSERT`` of a new key (unique
    constraint, on-conflict-do-nothing, ``RETURNING`` the row it inserted) or an
    ``UPDATE ... WHERE last_sent_at <= now - window``; the affected row count says whether this
    process won (:func:`vfr.opsdb.claim_alert`). PostgreSQL re-checks the ``WHERE`` of
    a concurrent update after the first commits, SQLite serialises writers, so of several
    processes publishing the same alert at once exactly one sends it. When no sink accepts
    the alert the claim is released (``last_sent_at`` restored) so the next publish retries.
    """

    def __init__(self, engine: sa.Engine, sinks: Sequence[AlertSink], dedup_window_s: float = 6 * 3600) -> None:
        if dedup_window_s < 0:
            raise ValueError(f"AlertManager: dedup_window_s must be >= 0, got {dedup_window_s}")
        self.engine = engine
        self.sinks = list(sinks)
        self.dedup_window_s = float(dedup_window_s)

    @classmethod
    def from_settings(cls, settings: Any, engine: sa.Engine) -> AlertManager:
        """Manager with :func:`alert_sinks_from_settings` and ``settings.alert_dedup_window_s``
        (6 h when unset)."""
        return cls(engine, alert_sinks_from_settings(settings),
                   float(getattr(settings, "alert_dedup_window_s", 6 * 3600)))

    def publish(self, alerts: Iterable[Alert], now: datetime | None = None) -> list[Alert]:
        """Record every alert in ``ml_alerts`` and deliver those not sent within the window.

        Parameters
        ----------
        alerts : iterable of Alert
        now : datetime, optional
            Current time (default now); aware times are converted to naive UTC.

        Returns
        -------
        list of Alert
            The alerts delivered by this call (to at least one sink).
        """
        ensure_schema(self.engine)  # migrates once per engine (vfr.opsdb remembers)
        now = utcnow() if now is None else _naive_utc(now)
        delivered = []
        for alert in alerts:
            claimed, previous = self._claim(alert, now)
            if not claimed:
                continue
            names = [sink.name for sink in self.sinks if _safe_send(sink, alert)]
            if names:
                record_delivery(self.engine, alert.key, names)
                delivered.append(alert)
            else:  # nobody got it: release the claim so the next publish retries
                release_alert(self.engine, alert.key, now, previous)
        return delivered

    def _claim(self, alert: Alert, now: datetime) -> tuple[bool, datetime | None]:
        """Count a sighting of ``alert``; True (and the previous send time) when this call may send it."""
        return claim_alert(self.engine, key=alert.key, rule=alert.rule, metric=alert.metric,
                           severity=alert.severity, message=alert.message, value=alert.value,
                           threshold=alert.threshold, now=now, dedup_window_s=self.dedup_window_s)


def _safe_send(sink: AlertSink, alert: Alert) -> bool:
    try:
        return bool(sink.send(alert))
    except Exception as exc:  # noqa: BLE001 - a broken sink must not stop the others
        log.error("alert sink %s failed (%s) for %s", getattr(sink, "name", sink), exc.__class__.__name__, alert.key)
        return False


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t
