"""`vfr research ...`: evaluate candidates under the locked protocol and regenerate docs/research.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vfr.cli.common import HomeOpt, err, fail, make_settings, out, show_table
from vfr.errors import UsageError, VFRError

app = typer.Typer(help="Research protocol: evaluate candidates (every run is a registered trial), write the "
                       "results (docs/research.md).", no_args_is_help=True)

SegmentOpt = Annotated[str, typer.Option(help="research (2002-2014) or holdout (2015-2019, once per candidate).")]
ForceOpt = Annotated[str | None, typer.Option(
    "--force-reason", help="Touch the holdout again for this candidate; the reason is stored in the register.")]


def _paths(settings) -> tuple[Path, Path]:
    from vfr.research import default_register_path

    register = default_register_path(settings)
    return register, register.parent / "research"


def _run(settings, candidate: str, change: str, segment: str, scorer, force_reason: str | None) -> None:
    from vfr.data import MarketStore
    from vfr.research import HoldoutAlreadyTouchedError, holdout_touches
    from vfr.research.evaluate import evaluate_scores, load_segment, run_trial

    register, out_dir = _paths(settings)
    if segment == "holdout" and force_reason is None and register.exists() and holdout_touches(register, candidate):
        fail(HoldoutAlreadyTouchedError(f"candidate {candidate!r} has already touched the holdout; a second look "
                                        "needs --force-reason"))
    try:
        with MarketStore.from_settings(settings) as store, err.status(f"loading the {segment} segment"):
            data = load_segment(store, segment)
        with err.status(f"scoring {candidate}"):
            scores = scorer(data)
        with err.status("evaluating"):
            evaluation = evaluate_scores(data, scores, candidate=candidate, register=register)
        row = run_trial(register, evaluation, change, out_dir=out_dir, force=force_reason is not None,
                        reason=force_reason)
    except VFRError as exc:
        fail(exc)
    import pandas as pd

    table = pd.DataFrame({"metric": list(row), "value": [str(v) if isinstance(v, str) else
                                                         "n/a" if v is None else f"{v:.4f}" for v in row.values()]})
    show_table(table, f"trial {row['n_trials']} of the {segment} segment")
    out.print(f"registered in {register}")


@app.command("classic")
def research_classic(
    candidate: Annotated[str, typer.Option(help="classic-protocol (the default signals) or classic-seed.")]
    = "classic-protocol",
    segment: SegmentOpt = "research",
    force_reason: ForceOpt = None,
    home: HomeOpt = None,
) -> None:
    """Evaluate a classic-score candidate on a segment and register the trial."""
    from vfr.research.evaluate import CLASSIC_CANDIDATES, classic_candidate_scores

    if candidate not in CLASSIC_CANDIDATES:
        fail(UsageError(f"--candidate must be one of {sorted(CLASSIC_CANDIDATES)}, got {candidate!r}"))
    change = "signals of vfr.scoring.GROUP_SIGNALS" if candidate == "classic-protocol" else \
        "signals of vfr.scoring.SEED_GROUP_SIGNALS"
    _run(make_settings(home), candidate, change, segment, lambda data: classic_candidate_scores(data, candidate),
         force_reason)


@app.command("ml")
def research_ml(
    candidate: Annotated[str, typer.Option(help="Name of the candidate in the register.")],
    algorithm: Annotated[str, typer.Option(help="Model zoo algorithm.")] = "lightgbm",
    objective: Annotated[str, typer.Option(help="classification or regression.")] = "classification",
    target: Annotated[str, typer.Option(help="auto, direction, excess or excess_rank.")] = "auto",
    features: Annotated[str, typer.Option(
        help="Feature set: all (every column of the features table), no-alpha158 or alpha158.")] = "all",
    segment: SegmentOpt = "research",
    force_reason: ForceOpt = None,
    home: HomeOpt = None,
) -> None:
    """Walk-forward train a model on the segment only, evaluate its out-of-sample score, register the trial."""
    from dataclasses import replace

    from vfr.ml import ModelError, TrainConfig
    from vfr.research.evaluate import FEATURE_SETS, feature_set_columns, ml_candidate_scores

    if features not in FEATURE_SETS:
        fail(UsageError(f"--features must be one of {', '.join(FEATURE_SETS)}, got {features!r}"))
    settings = make_settings(home)
    try:
        config = TrainConfig.from_settings(settings, algorithm=algorithm, objective=objective, target=target)
    except ModelError as exc:
        fail(UsageError(str(exc)))
    change = f"walk-forward {algorithm} {objective} target={target} horizon={config.horizon} features={features}"

    def scores(data):
        return ml_candidate_scores(data, replace(config, feature_columns=feature_set_columns(data.features,
                                                                                             features)))

    _run(settings, candidate, change, segment, scores, force_reason)


@app.command("report")
def research_report(
    doc: Annotated[Path, typer.Option(help="The document whose '## Results' section is rewritten.")]
    = Path("docs/research.md"),
    home: HomeOpt = None,
) -> None:
    """Rewrite the Results section of docs/research.md from the trials register (with the PBO of the choice)."""
    from vfr.research.evaluate import write_results

    register, out_dir = _paths(make_settings(home))
    if not register.exists():
        fail(UsageError(f"no trials register at {register}; run `vfr research classic` or `vfr research ml` first"))
    out.print(f"wrote {write_results(doc, register, out_dir)}")
