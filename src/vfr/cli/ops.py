"""`vfr retrain`, `vfr monitor ...`, `vfr scheduler ...`, `vfr ops replay`: the feedback loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vfr.cli.common import HomeOpt, err, fail, make_settings, out, show_table
from vfr.cli.exitcodes import ExitCode
from vfr.errors import VFRError

monitor_app = typer.Typer(help="Monitoring: outcomes, drift, alerts.", no_args_is_help=True)
scheduler_app = typer.Typer(help="The job scheduler (APScheduler, job store in the serving database).",
                            no_args_is_help=True)
ops_app = typer.Typer(help="Operations: replay history through serving and monitoring.", no_args_is_help=True)

AsOf = Annotated[str | None, typer.Option(help="Act as if today were this date (YYYY-MM-DD); default the latest.")]


def retrain(
    as_of: AsOf = None,
    prices: Annotated[Path | None,
                      typer.Option(help="New prices to ingest first (Parquet, AlphaVantage, Yahoo).")] = None,
    universe: Annotated[list[str] | None, typer.Option(help="Universe to ingest with --prices (repeatable; as "
                                                       "`vfr data ingest --universe`).")] = None,
    rebuild_features: Annotated[bool, typer.Option(help="Rebuild the features table from the store first.")] = True,
    trigger: Annotated[str, typer.Option(help="Recorded reason for the run.")] = "manual",
    home: HomeOpt = None,
) -> None:
    """Ingest (optional) and rebuild features, train a challenger, compare it with the champion, promote or keep.

    Exits 0 when the run decided (deployed, A/B test, kept, refused, or skipped for too few
    fresh dates), 5 when another retraining holds the lock, 6 when a data-quality gate blocked
    it, 1 when it failed (see ``vfr.cli.exitcodes``).
    """
    import pandas as pd

    from vfr.retraining import run_retraining

    settings = make_settings(home)
    try:
        d = run_retraining(settings, trigger=trigger, as_of=as_of, rebuild_features=rebuild_features,
                           prices=prices, universe=universe, console=err)
    except VFRError as exc:
        fail(exc)
    out.print(f"run {d.run_id}: [bold]{d.status}[/bold] (action {d.action}); champion "
              f"v{d.champion_before} -> v{d.champion_after}; challenger v{d.challenger_version}")
    out.print(f"reason: {d.reason}")
    cmp = d.comparison
    if cmp.get("champion") and cmp.get("challenger"):
        keys = ["roc_auc", "directional_accuracy", "rank_ic_mean", "sharpe"]
        table = pd.DataFrame({"metric": keys, "champion": [cmp["champion"].get(k) for k in keys],
                              "challenger": [cmp["challenger"].get(k) for k in keys]})
        show_table(table, f"Fresh dates {cmp['first_date']} .. {cmp['last_date']} ({cmp['n_dates']})")
    out.print(f"report: {d.report_path}", soft_wrap=True)  # a path is never wrapped
    _exit_unless_decided(settings, d)


def _exit_unless_decided(settings, d) -> None:
    """One error line and the exit code of a retraining run that was busy, blocked or failed."""
    if d.status == "busy":
        import sqlalchemy as sa

        from vfr.opsdb import holder

        who = holder(sa.create_engine(settings.resolved_serving_db_url), "retrain")
        since = f" ({who['owner']}, since {who['acquired_at']:%Y-%m-%d %H:%M:%S} UTC)" if who else ""
        fail(f"retraining busy: {d.reason}{since}; run {d.run_id} did nothing", ExitCode.BUSY)
    if d.status == "blocked":
        quality = Path(d.report_path).with_name(f"run-{d.run_id}-quality.md")
        fail(f"retraining blocked: {d.reason} (report: {quality if quality.exists() else d.report_path})",
             ExitCode.BLOCKED)
    if d.status == "failed":
        fail(f"retraining failed: {d.reason} (report: {d.report_path})", ExitCode.FAILED)


@monitor_app.command("outcomes")
def monitor_outcomes(as_of: AsOf = None, home: HomeOpt = None) -> None:
    """Fill ml_outcomes for logged predictions whose horizon has passed."""
    from vfr.retraining import collect_outcomes

    settings = make_settings(home)
    try:
        written = collect_outcomes(settings, as_of)
    except VFRError as exc:
        fail(exc)
    out.print(f"outcomes written: {written}")


@monitor_app.command("drift")
def monitor_drift(as_of: AsOf = None, home: HomeOpt = None) -> None:
    """Drift of recent production against the champion's training reference; stores it and alerts."""
    from vfr.retraining import drift_check

    try:
        check = drift_check(make_settings(home), as_of)
    except VFRError as exc:
        fail(exc)
    if check.report is None:
        if check.model_version is not None:  # a champion, but nothing to compare it with: not done
            fail(f"drift check not done: {check.note}")
        out.print(check.note)  # no champion yet: nothing to monitor (exit 0)
        return
    r = check.report
    show_table(r.feature_drift.head(15), f"Feature drift (KS), champion v{check.model_version}, "
                                                   f"as of {check.as_of}")
    out.print(f"PSI of predicted probabilities: {r.psi:.4f}; Brier: {r.brier:.4f}; rolling performance: "
              f"{json.dumps(r.performance, default=str)}")
    out.print(f"action: [bold]{r.action}[/bold]" + "".join(f"\n  - {x}" for x in r.reasons))
    out.print(f"alerts delivered: {len(check.delivered)} of {len(r.alerts)}")


@scheduler_app.command("run")
def scheduler_run(home: HomeOpt = None) -> None:
    """Run the scheduler in the foreground (Ctrl-C stops it); jobs persist in the serving database."""
    from vfr.retraining import build_scheduler, next_runs

    settings = make_settings(home)
    for job in next_runs(settings):
        err.print(f"{job['job']}: next run {job['next_run']} ({job['description']})")
    try:
        build_scheduler(settings, blocking=True).start()
    except (KeyboardInterrupt, SystemExit):
        pass


@scheduler_app.command("jobs")
def scheduler_jobs(home: HomeOpt = None) -> None:
    """The scheduled jobs and their next run times."""
    import pandas as pd

    from vfr.retraining import next_runs

    show_table(pd.DataFrame(next_runs(make_settings(home))), "Schedule")


@ops_app.command("replay")
def ops_replay(
    start: Annotated[str, typer.Option(help="First simulated date.")],
    end: Annotated[str, typer.Option(help="Last simulated date.")],
    retrain_every: Annotated[int | None, typer.Option(
        help="Walk-forward step of every training in the replay, dates (default VFR_RETRAIN_EVERY).")] = None,
    log: Annotated[Path | None, typer.Option(help="Write the day-by-day log (Markdown) here.")] = None,
    home: HomeOpt = None,
) -> None:
    """Replay [start, end] day by day: serve, log, collect outcomes, check drift, decide on retraining."""
    from vfr.retraining.replay import replay
    from vfr.serving import serve_day

    settings = make_settings(home, retrain_every=retrain_every)  # every training of the replay
    try:
        result = replay(settings, start, end, serve=serve_day, console=err)
    except (VFRError, ValueError) as exc:
        fail(exc)
    text = result.to_markdown()
    if log is not None:
        log.write_text(text)
    out.print(text)
    initial = result.initial or {}
    if initial.get("status") in ("busy", "blocked"):  # no initial champion: the replay served no model
        fail(f"replay: initial champion {initial['status']}: {initial.get('reason', '')}",
             ExitCode.BUSY if initial["status"] == "busy" else ExitCode.BLOCKED)
