"""Replay a stretch of history day by day through the real serving and monitoring path.

For each trading date ``d`` of the period, as if today were ``d``:

1. ``serve(settings, d, request_id)`` ranks the whole universe with ML the way the API does
   (the champion serves; every prediction goes to ``ml_predictions`` through the prediction
   logger, as in production). The caller hands it in (``vfr ops replay`` passes
   :func:`vfr.serving.serve_day`): retraining sits below serving and never imports it;
2. the daily job runs with ``as_of = d``: outcomes are filled from prices up to ``d`` only
   (a prediction gets its outcome once its horizon has passed), drift is computed between
   the champion's training reference and the features served in the last
   ``drift_window_days``, alerts are published; drift may trigger a retraining;
3. after the last date the monthly job makes its retraining decision with ``as_of`` = that date.

Before the first date, if there is no champion, one is trained ``as_of`` the day before.
Nothing reads a price, feature or label after the simulated day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from rich.console import Console

from vfr.config import Settings
from vfr.data import MarketStore, tables
from vfr.ml import ModelRegistry, TrainConfig


@dataclass
class ReplayLog:
    """Day-by-day record of a replay."""

    start: str
    end: str
    initial: dict[str, Any] | None
    days: list[dict[str, Any]] = field(default_factory=list)
    monthly: dict[str, Any] | None = None

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.days)

    def to_markdown(self) -> str:
        """The log as Markdown (the operations guide embeds it)."""
        lines = [f"Replay {self.start} .. {self.end}, one row per trading day.", ""]
        if self.initial:
            lines += [f"- Initial champion (trained as of the day before the first date): {self.initial}", ""]
        lines += [("| date | predictions logged | outcomes filled | rolling acc. | rolling Rank IC | PSI "
                   "| features KS > 0.15 | drift action | alerts sent | retraining |"),
                  "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |"]
        for d in self.days:
            lines.append(f"| {d['date']} | {d['predictions']} | {d['outcomes']} | {_f(d['accuracy'])} | "
                         f"{_f(d['rank_ic'])} | {_f(d['psi'])} | {d['drifted']} | {d['action']} | {d['alerts']} | "
                         f"{d.get('retraining') or ''} |")
        if self.monthly:
            lines += ["", (f"Monthly retraining decision ({self.end}): **{self.monthly.get('status')}** "
                           f"(action {self.monthly.get('action')}); {self.monthly.get('reason')}")]
        return "\n".join(lines) + "\n"


#: ``serve(settings, day, request_id) -> (predictions logged, ML status)``: one simulated day of serving.
ServeDay = Callable[[Settings, pd.Timestamp, str], tuple[int, str | None]]


def _f(x: Any) -> str:
    return "" if x is None or pd.isna(x) else f"{x:.3f}"


def replay(settings: Settings, start: str, end: str, *, serve: ServeDay, config: TrainConfig | None = None,
           console: Console | None = None) -> ReplayLog:
    """Replay ``[start, end]`` (see the module docstring).

    Parameters
    ----------
    settings : Settings
        A store holding prices and features over the period, the registry and the serving
        database of the replay (use a private ``VFR_HOME``: the replay writes to them).
    start, end : str
        First and last simulated dates (YYYY-MM-DD).
    serve : callable
        ``serve(settings, day, request_id) -> (predictions logged, ML status)`` serves the whole
        universe with ML on ``day`` and writes its predictions to the log before returning
        (:func:`vfr.serving.serve_day`, with a fresh engine per day).
    config : TrainConfig, optional
        Training recipe of the initial champion and of the retraining runs.

    Returns
    -------
    ReplayLog
    """
    from vfr.retraining.jobs import daily_monitoring, monthly_retraining
    from vfr.retraining.retrain import run_retraining

    console = console or Console(stderr=True)
    with MarketStore.from_settings(settings) as store:
        dates = store.read_table(tables.FEATURES, columns=["date"], start=start, end=end)["date"].drop_duplicates()
        before = store.read_table(tables.FEATURES, columns=["date"], end=pd.Timestamp(start) - pd.Timedelta(days=1))
    dates = sorted(pd.DatetimeIndex(dates))
    if not dates:
        raise ValueError(f"replay: the store has no features between {start} and {end}")
    log = ReplayLog(start=str(dates[0].date()), end=str(dates[-1].date()), initial=None)
    registry = ModelRegistry.from_settings(settings)
    try:
        has_champion = registry.champion_version(settings.model_name) is not None
    except Exception:  # noqa: BLE001 - no registered model yet
        has_champion = False
    if not has_champion:
        day0 = str(before["date"].max().date())
        console.print(f"replay: training the initial champion as of {day0}")
        d = run_retraining(settings, trigger="replay", as_of=day0, config=config, rebuild_features=False,
                           console=console)
        log.initial = {"status": d.status, "version": d.challenger_version, "as_of": d.as_of, "reason": d.reason}
    for day in dates:
        logged, ml_status = serve(settings, day, f"replay-{day:%Y%m%d}")
        job = daily_monitoring(settings.model_dump(), as_of=str(day.date()))
        report = _latest(settings)
        row = {"date": str(day.date()), "predictions": logged, "outcomes": job.get("outcomes_written", 0),
               "ml_status": ml_status, "action": job.get("drift_action"),
               "alerts": job.get("alerts_sent", 0), **report,
               "retraining": (f"{job['retraining']['status']} ({job['retraining'].get('reason', '')[:80]})"
                              if "retraining" in job else None)}
        log.days.append(row)
        console.print(f"replay {row['date']}: {row['predictions']} predictions, {row['outcomes']} outcomes, "
                      f"drift {row['action']}, {row['alerts']} alerts")
    monthly = monthly_retraining(settings.model_dump(), as_of=log.end)
    log.monthly = monthly.get("retraining")
    return log


def _latest(settings: Settings) -> dict[str, Any]:
    """PSI, rolling accuracy / Rank IC and the drifted features of the latest drift report."""
    import sqlalchemy as sa

    from vfr.monitoring import latest_drift

    frame = latest_drift(sa.create_engine(settings.resolved_serving_db_url), settings.model_name)
    out: dict[str, Any] = {"psi": None, "accuracy": None, "rank_ic": None, "drifted": ""}
    if frame.empty:
        return out
    by = {(r.kind, r.name): r for r in frame.itertuples()}
    for key, name in (("psi", "psi"), ("accuracy", "accuracy"), ("rank_ic", "rank_ic")):
        hit = next((r for (k, n), r in by.items() if n == name), None)
        out[key] = None if hit is None else float(hit.statistic)
    feats = frame[(frame["kind"] == "feature") & frame["breached"].astype(bool)]
    feats = feats.sort_values("statistic", ascending=False)
    out["drifted"] = ", ".join(f"{r.name} {r.statistic:.2f}" for r in feats.head(4).itertuples()) + (
        f" (+{len(feats) - 4})" if len(feats) > 4 else "")
    return out
