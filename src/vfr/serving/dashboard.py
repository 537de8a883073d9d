"""The ops dashboard's data: one summary of selection, models, drift, backtest, alerts and retraining.

Each section is built on its own and never fails the others: a section without data (no drift
check yet, no backtest yet, the registry unreachable) comes back empty with ``message`` saying
why, so the page can show every section that does have data.

Sources
-------
selection
    :meth:`RankingService.rank <vfr.serving.ranking.RankingService.rank>` with ML, exactly what
    ``GET /api/stocks/select?include_ml=true``
    answers with its default horizon and confidence threshold (served from the same caches).
models
    :func:`vfr.ml.deploy.registry_leaderboard` of the configured model (walk-forward metrics
    logged by ``vfr train``, each version's promotion decision against the champion), cached
    for 30 s per champion version; the A/B split from the model service.
drift, alerts
    :func:`vfr.opsdb.latest_drift` and :func:`vfr.opsdb.recent_alerts` through the operations
    service (operations database, tables ``ml_drift`` and ``ml_alerts``).
backtest
    The market store table ``backtest_equity`` (``date``, ``strategy``, ``equity``) that
    :func:`vfr.pipeline.stage_backtest` replaces on every run.
retraining
    :func:`vfr.opsdb.recent_runs` of the configured model through the operations service (table
    ``ml_retraining_runs``), whether a run holds the retraining lock now, and
    :func:`vfr.retraining.next_runs` (the scheduled jobs' next fire times, computed from the
    schedule: no scheduler needs to be running).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from vfr.serving.engine import ServingEngine
from vfr.serving.errors import NotFound, StoreUnavailable, public_reason
from vfr.serving.operations import OpsService
from vfr.serving.schemas import SelectRequest

log = logging.getLogger(__name__)

EQUITY_TABLE = "backtest_equity"
#: Most points per equity curve sent to the page (evenly spaced, first and last kept).
MAX_CURVE_POINTS = 400
LEADERBOARD_TTL_S = 30.0
NO_DRIFT = "no drift check has run yet"
NO_ALERTS = "no alerts have been raised yet"
NO_BACKTEST = "no backtest has run yet (run `vfr backtest`)"
NO_RETRAINING = "no retraining run yet"
OPSDB_UNREADABLE = "the serving database could not be read (see the server log)"
_KIND_ORDER = {"feature": 0, "prediction": 1, "calibration": 2, "performance": 3}


def _num(value: Any) -> float | None:
    """A finite float, or None for NaN, infinities, None and non-numbers."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _text(value: Any) -> str | None:
    """Timestamps as ISO 8601 text, missing values as None, anything else as ``str``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def selection_section(engine: ServingEngine, top: int, request_id: str = "dashboard") -> dict[str, Any]:
    """Today's top ``top`` picks: classic score, ML probability and the ML-enhanced composite.

    Scores are on [0, 1]; ``ml_probability`` is the model's probability of beating the market
    over the horizon. Rows are not written to the prediction log (an operator's view, not a
    served prediction).
    """
    req = SelectRequest(include_ml=True, top=top)
    try:
        out = engine.ranking.rank(date=None, include_ml=True, horizon=req.ml_horizon,
                                  threshold=req.ml_confidence_threshold, top=req.top, request_id=request_id,
                                  log_rows=False)
    except (NotFound, StoreUnavailable) as exc:
        return {"date": None, "top": top, "ml_status": None, "models": [], "rows": [], "message": public_reason(exc)}
    rows = [{k: r.get(k) for k in ("rank", "symbol", "sector", "classic_score", "ml_probability", "ml_confidence",
                                   "composite", "ml_blended", "recommendation")} for r in out["results"]]
    return {"date": out["date"], "top": top, "ml_status": out["ml"]["status"], "models": out["ml"]["models"],
            "rows": rows, "message": None if rows else "the selection is empty"}


def _leaderboard(engine: ServingEngine, name: str, champion: str | None) -> pd.DataFrame:
    from vfr.ml.deploy import registry_leaderboard

    key = f"dashboard:leaderboard:{name}:{champion}"
    board = engine.meta.get(key)
    if board is None:
        board = registry_leaderboard(engine.models.registry, name)
        engine.meta.set(key, board, LEADERBOARD_TTL_S)
    return board


def models_section(engine: ServingEngine) -> dict[str, Any]:
    """Registered versions of the configured model with their walk-forward metrics, which one
    is champion, the challenger's traffic share (fraction of requests) and which are loaded."""
    from vfr.ml.deploy import LEADERBOARD_METRICS

    name = engine.settings.model_name
    empty: dict[str, Any] = {"name": name, "champion": None, "challenger": None, "traffic_split": 0.0, "versions": []}
    try:
        champion = engine.models.champion(name)
        challenger, share = engine.models.routing(name)
        board = _leaderboard(engine, name, champion)
        created = {v["version"]: _text(v.get("created")) for v in engine.models.versions(name)}
    except Exception as exc:  # noqa: BLE001 - registry unreachable: the other sections still show
        log.warning("dashboard: model registry unavailable (%s)", public_reason(exc))
        return empty | {"message": "the model registry could not be read (see the server log)"}
    loaded = {m["version"] for m in engine.models.loaded() if m["name"] == name}
    versions = []
    for r in board.to_dict("records"):
        v = str(r["version"])
        traffic = share if v == challenger else (1.0 - share if v == champion else 0.0)
        versions.append({"version": v, "aliases": [a for a in str(r.get("aliases") or "").split(",") if a],
                         "algorithm": _text(r.get("algorithm")), "created": created.get(v),
                         "metrics": {k: _num(r.get(k)) for k in LEADERBOARD_METRICS},
                         "decision": str(r.get("decision") or ""), "rule": str(r.get("rule") or ""),
                         "champion": v == champion, "loaded": v in loaded, "traffic_split": traffic})
    message = None if versions else f"no version of {name!r} is registered yet (run `vfr train`)"
    return {"name": name, "champion": champion, "challenger": challenger, "traffic_split": share,
            "versions": versions, "message": message}


def _ops_frame(read, what: str) -> tuple[pd.DataFrame | None, str | None]:
    """``read()`` of the operations service: (frame, None), or (None, reason) when it failed."""
    try:
        return read(), None
    except Exception as exc:  # noqa: BLE001 - operations database down: say so in the section
        log.warning("dashboard: %s unavailable (%s)", what, public_reason(exc))
        return None, OPSDB_UNREADABLE


def drift_section(ops: OpsService) -> dict[str, Any]:
    """The newest drift check (of any model): per row the statistic (KS distance on [0, 1] for
    ``feature`` rows, PSI for the ``prediction`` row, Brier score, rolling accuracy/IC), the
    threshold it is compared with and whether its rule fired. Breached rows first, then by kind
    (features, prediction, calibration, performance) and by statistic, largest first."""
    frame, error = _ops_frame(ops.latest_drift, "drift")
    if frame is None or frame.empty:
        return {"computed_at": None, "as_of": None, "model_name": None, "model_version": None, "breached": 0,
                "items": [], "message": error or NO_DRIFT}
    items: list[dict[str, Any]] = [
        {"kind": str(r.get("kind") or ""), "name": str(r.get("name")), "statistic": _num(r.get("statistic")),
         "threshold": _num(r.get("threshold")), "breached": bool(r.get("breached"))}
        for r in frame.to_dict("records")]
    items.sort(key=lambda i: (not i["breached"], _KIND_ORDER.get(i["kind"], len(_KIND_ORDER)),
                              -(i["statistic"] if i["statistic"] is not None else -np.inf)))
    first = frame.iloc[0]
    return {"computed_at": _text(first.get("computed_at")), "as_of": _text(first.get("as_of")),
            "model_name": _text(first.get("model_name")), "model_version": _text(first.get("model_version")),
            "breached": sum(i["breached"] for i in items), "items": items, "message": None}


def alerts_section(ops: OpsService, limit: int = 20) -> dict[str, Any]:
    """The ``limit`` most recent alerts (newest first, as :func:`vfr.opsdb.recent_alerts` orders them)."""
    frame, error = _ops_frame(lambda: ops.recent_alerts(limit), "alerts")
    if frame is None or frame.empty:
        return {"items": [], "message": error or NO_ALERTS}
    items = [{"key": str(r.get("key")), "rule": str(r.get("rule") or ""), "severity": str(r.get("severity") or ""),
              "metric": _text(r.get("metric")), "value": _num(r.get("value")), "threshold": _num(r.get("threshold")),
              "message": str(r.get("message") or ""), "first_seen_at": _text(r.get("first_seen_at")),
              "last_seen_at": _text(r.get("last_seen_at")), "count": int(_num(r.get("count")) or 0)}
             for r in frame.head(limit).to_dict("records")]
    return {"items": items, "message": None}


def thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spaced points of ``n`` (first and last kept)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def backtest_section(engine: ServingEngine, max_points: int = MAX_CURVE_POINTS) -> dict[str, Any]:
    """Net equity curves of the latest backtest (1.0 at the start), one per strategy, thinned
    to ``max_points`` points; ``total_return`` is the last equity / first equity - 1 (a fraction)."""
    empty: dict[str, Any] = {"start": None, "end": None, "curves": []}
    try:
        frame = engine.features.table(EQUITY_TABLE)
    except StoreUnavailable as exc:  # the other sections still show
        return empty | {"message": str(exc)}
    except Exception as exc:  # noqa: BLE001
        log.warning("dashboard: %s unreadable (%s)", EQUITY_TABLE, public_reason(exc))
        return empty | {"message": f"the {EQUITY_TABLE} table could not be read (see the server log)"}
    if frame is None or frame.empty:
        return empty | {"message": NO_BACKTEST}
    frame = frame.dropna(subset=["date"]).sort_values(["strategy", "date"])
    curves = []
    for strategy, g in frame.groupby("strategy", sort=True):
        equity = g["equity"].to_numpy(dtype=float)
        keep = thin(len(g), max_points)
        valid = equity[np.isfinite(equity)]
        total = float(valid[-1] / valid[0] - 1) if valid.size and valid[0] else None
        curves.append({"strategy": str(strategy), "dates": [d.date() for d in pd.to_datetime(g["date"].iloc[keep])],
                       "equity": [_num(x) for x in equity[keep]], "total_return": total})
    dates = pd.to_datetime(frame["date"])
    return {"start": dates.min().date(), "end": dates.max().date(), "curves": curves, "message": None}


def retraining_section(engine: ServingEngine, limit: int = 10) -> dict[str, Any]:
    """The ``limit`` newest retraining runs of the configured model (newest first, each with its
    decision and reason), whether one is running now, and the next run of each scheduled job.

    The schedule is computed from the cron fields alone, so it shows even when the serving
    database cannot be read.
    """
    from vfr.retraining import next_runs

    try:
        schedule = next_runs(engine.settings)
    except Exception as exc:  # noqa: BLE001 - a bad time zone setting: the runs still show
        log.warning("dashboard: schedule unavailable (%s)", public_reason(exc))
        schedule = []
    try:
        runs = engine.ops.runs(engine.settings.model_name, limit=limit)
        running = engine.ops.retraining_running()
    except Exception as exc:  # noqa: BLE001 - operations database down: say so in the section
        log.warning("dashboard: retraining runs unavailable (%s)", public_reason(exc))
        return {"runs": [], "schedule": schedule, "running": False, "message": OPSDB_UNREADABLE}
    return {"runs": runs, "schedule": schedule, "running": running, "message": None if runs else NO_RETRAINING}


def build_summary(engine: ServingEngine, *, top: int = 10, alerts: int = 20,
                  request_id: str = "dashboard") -> dict[str, Any]:
    """Everything the dashboard page shows, in one JSON-ready dict (see :class:`DashboardSummary`)."""
    return {"generated_at": dt.datetime.now(dt.UTC), "model": engine.settings.model_name,
            "selection": selection_section(engine, top, request_id), "models": models_section(engine),
            "drift": drift_section(engine.ops), "backtest": backtest_section(engine),
            "alerts": alerts_section(engine.ops, alerts),
            "retraining": retraining_section(engine)}
