"""`vfr models ...`: registered models (list, show, promote, rollback, A/B tests, compare)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vfr.cli.common import HomeOpt, fail, make_settings, out, show_table
from vfr.errors import UsageError, VFRError

app = typer.Typer(help="Registered models.", no_args_is_help=True)

NameOpt = Annotated[str | None, typer.Option("--name", help="Registered model name (default: settings.model_name).")]


def _registry(home, name):
    from vfr.ml import ModelRegistry

    settings = make_settings(home)
    return ModelRegistry.from_settings(settings), name or settings.model_name, settings


@app.command("list")
def models_list(name: NameOpt = None, home: HomeOpt = None) -> None:
    """Registered versions of the model and which one is champion / challenger."""
    import pandas as pd

    registry, name, settings = _registry(home, name)
    versions = registry.versions(name)
    if not versions:
        out.print(f"no versions of {name} registered at {settings.resolved_tracking_uri}")
        return
    frame = pd.DataFrame(versions)
    frame["aliases"] = frame["aliases"].map(lambda a: ",".join(a))
    show_table(frame.astype(str), name)
    split = registry.ab_split(name)
    if split:
        out.print(f"A/B test: challenger v{split['challenger']} gets {split['traffic']:.0%} of traffic, "
                  f"champion v{split['champion']} the rest")


@app.command("show")
def models_show(version: Annotated[str | None, typer.Argument(help="Version (default: champion).")] = None,
                name: NameOpt = None, home: HomeOpt = None) -> None:
    """Metadata, checks and metrics of one version (loads it: verifies SHA-256 and features)."""
    import pandas as pd

    registry, name, _ = _registry(home, name)
    try:
        loaded = registry.load(name, version)
    except VFRError as exc:
        fail(exc)
    meta = {k: v for k, v in loaded.metadata.items() if k != "feature_columns"}
    meta["n_features"] = len(loaded.feature_columns)
    out.print(f"[bold]{name} v{loaded.version}[/]")
    out.print(json.dumps(meta, indent=2, default=str))
    metrics = registry.run_metrics(name, loaded.version)
    if metrics:
        frame = pd.DataFrame(sorted(metrics.items()), columns=["metric", "value"])
        show_table(frame, "run metrics", floats="{:.4f}")
    show_table(loaded.feature_importance().head(15).rename_axis("feature").reset_index(),
                         "top feature importances")


@app.command("promote")
def models_promote(version: Annotated[str, typer.Argument(help="Version to make champion.")],
                   max_size_mb: Annotated[float, typer.Option(help="Largest model folder allowed (MiB).")] = 500.0,
                   max_load_seconds: Annotated[float, typer.Option(help="Longest load allowed (s).")] = 10.0,
                   name: NameOpt = None, home: HomeOpt = None) -> None:
    """Make VERSION the champion after checksum, feature, size and load-time checks."""
    registry, name, _ = _registry(home, name)
    try:
        info = registry.promote(name, version, max_size_mb=max_size_mb, max_load_seconds=max_load_seconds)
    except VFRError as exc:
        fail(exc)
    out.print(f"{name}: champion is now v{info['version']} (was {info['previous'] or 'none'}); "
              f"{info['size_mb']:.2f} MiB, loads in {info['load_seconds']:.2f} s")


@app.command("rollback")
def models_rollback(version: Annotated[str | None, typer.Argument(
        help="Version to restore (default: the previous champion).")] = None,
        name: NameOpt = None, home: HomeOpt = None) -> None:
    """Restore the previous champion (or any named version) in one command."""
    registry, name, _ = _registry(home, name)
    try:
        restored = registry.rollback(name, version)
    except VFRError as exc:
        fail(exc)
    out.print(f"{name}: champion rolled back to v{restored}")


@app.command("ab")
def models_ab(version: Annotated[str | None, typer.Argument(help="Challenger version; omit with --stop.")] = None,
              traffic: Annotated[float, typer.Option(help="Share of requests for the challenger (0-1).")] = 0.1,
              stop: Annotated[bool, typer.Option("--stop", help="End the running A/B test.")] = False,
              name: NameOpt = None, home: HomeOpt = None) -> None:
    """Start an A/B test of VERSION against the champion (traffic split stored with the model), or --stop it."""
    registry, name, _ = _registry(home, name)
    try:
        if stop:
            registry.end_ab_test(name)
            out.print(f"{name}: A/B test ended; the champion serves all traffic")
            return
        if version is None:
            raise UsageError("give a VERSION or --stop")
        registry.start_ab_test(name, version, traffic)
    except VFRError as exc:
        fail(exc)
    out.print(f"{name}: v{version} is challenger with {traffic:.0%} of traffic")


@app.command("compare")
def models_compare(leaderboard: Annotated[Path | None, typer.Option(
        "--leaderboard", help="Show a leaderboard CSV (e.g. from benchmarks/leaderboard.py) instead.")] = None,
        name: NameOpt = None, home: HomeOpt = None) -> None:
    """Leaderboard: registered versions' walk-forward metrics and the deploy-rule decision vs the champion."""
    import pandas as pd

    from vfr.ml.deploy import registry_leaderboard, rules_table

    if leaderboard is not None:
        frame = pd.read_csv(leaderboard)
        key = ["model", "roc_auc", "rank_ic", "rank_icir", "sharpe", "brier", "dm_p_vs_champion", "decision"]
        if set(key) <= set(frame.columns):
            frame = frame[key]
        show_table(frame, f"leaderboard {leaderboard.name}", floats="{:.4f}")
        return
    registry, name, settings = _registry(home, name)
    frame = registry_leaderboard(registry, name)
    if frame.empty:
        out.print(f"no versions of {name} registered at {settings.resolved_tracking_uri}")
        return
    show_table(frame, f"{name}: walk-forward out-of-sample metrics", floats="{:.4f}")
    show_table(rules_table(), "deploy rules (first match wins; otherwise keep the champion)")
