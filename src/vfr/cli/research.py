"""`vfr research ...`: evaluate candidates under the locked protocol and regenerate docs/research.md."""

from __future__ import annotations

import re
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
BookOpt = Annotated[str, typer.Option(
    help="Portfolio rule of the book: a name of vfr.research.evaluate.BOOKS (top20-weekly, q20-weekly, "
         "q20-monthly, top100-buffer150-weekly, top20-weekly-invvol, top20-weekly-vt15, top20-weekly-sector25, "
         "opt-weekly, opt-weekly-nocost).")]


def _paths(settings) -> tuple[Path, Path]:
    from vfr.research import default_register_path

    register = default_register_path(settings)
    return register, register.parent / "research"


def _kept_scores(settings, segment: str, candidate: str) -> Path:
    """The kept scores of ``candidate``'s trial on ``segment``; a one-line usage error when there are none."""
    from vfr.research.evaluate import kept_scores_path

    kept = kept_scores_path(_paths(settings)[1], segment, candidate)
    if not kept.exists():
        fail(UsageError(f"no kept {segment} scores of {candidate!r} ({kept}); run its `vfr research` trial first"))
    return kept


def _run(settings, candidate: str, change: str, segment: str, scorer, force_reason: str | None,
         book: str = "top20-weekly", horizon: str = "1w") -> None:
    from vfr.data import MarketStore
    from vfr.research import HoldoutAlreadyTouchedError, holdout_touches
    from vfr.research.evaluate import BOOKS, evaluate_scores, load_segment, run_trial

    if book not in BOOKS:
        fail(UsageError(f"--book must be one of {', '.join(BOOKS)}, got {book!r}"))
    if book != "top20-weekly":
        change = f"{change}; book {book}"
    # trials before the fix compared with every priced symbol, future index joiners included
    change = f"{change}; EW = point-in-time members"
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
            evaluation = evaluate_scores(data, scores, candidate=candidate, register=register, book=book,
                                         horizon=horizon)
        row = run_trial(register, evaluation, change, out_dir=out_dir, force=force_reason is not None,
                        reason=force_reason, scores=scores)
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
    book: BookOpt = "top20-weekly",
    name: Annotated[str | None, typer.Option(
        help="Name of the trial's candidate in the register (default: --candidate, with the book when not "
             "the default one).")] = None,
    force_reason: ForceOpt = None,
    home: HomeOpt = None,
) -> None:
    """Evaluate a classic-score candidate on a segment and register the trial."""
    from vfr.research.evaluate import CLASSIC_CANDIDATES, classic_candidate_scores

    if candidate not in CLASSIC_CANDIDATES:
        fail(UsageError(f"--candidate must be one of {sorted(CLASSIC_CANDIDATES)}, got {candidate!r}"))
    change = "signals of vfr.scoring.GROUP_SIGNALS" if candidate == "classic-protocol" else \
        "signals of vfr.scoring.SEED_GROUP_SIGNALS"
    trial = name or (candidate if book == "top20-weekly" else f"{candidate}@{book}")
    _run(make_settings(home), trial, change, segment, lambda data: classic_candidate_scores(data, candidate),
         force_reason, book)


@app.command("ml")
def research_ml(
    candidate: Annotated[str, typer.Option(help="Name of the candidate in the register.")],
    algorithm: Annotated[str, typer.Option(help="Model zoo algorithm.")] = "lightgbm",
    objective: Annotated[str, typer.Option(help="classification or regression.")] = "classification",
    target: Annotated[str, typer.Option(help="auto, direction, excess or excess_rank.")] = "auto",
    features: Annotated[str, typer.Option(
        help="Feature set: all (every column of the features table), no-alpha158 or alpha158.")] = "all",
    horizon: Annotated[str | None, typer.Option(
        help="Label horizon of the model and of its Rank IC: 1d, 1w or 1m (default VFR_HORIZON).")] = None,
    train_window: Annotated[int | None, typer.Option(
        help="Walk-forward training window in trading dates, 0 = expanding (default VFR_TRAIN_WINDOW).")] = None,
    window_validation: Annotated[float | None, typer.Option(
        help="Share of each walk-forward window's latest dates on which its boosting rounds are early-stopped "
             "(0 = the split fit's rounds for every window; default TrainConfig's).")] = None,
    retrain_every: Annotated[int | None, typer.Option(
        help="Walk-forward refit step in trading dates (default VFR_RETRAIN_EVERY).")] = None,
    bins_every: Annotated[int | None, typer.Option(
        help="Consecutive walk-forward windows binned once, with the first window's bin boundaries "
             "(LightGBM; 1 = each window its own; default TrainConfig's).")] = None,
    seeds: Annotated[int, typer.Option(
        help="Average the out-of-sample scores of this many models fitted with seeds seed, seed+1, ... "
             "(each date's ranks averaged).")] = 1,
    train_seeds: Annotated[int | None, typer.Option(
        help="Models per walk-forward fit inside vfr.ml.train, their probabilities averaged (what `vfr train` "
             "does with VFR_TRAIN_SEEDS; default VFR_TRAIN_SEEDS).")] = None,
    shared_rounds: Annotated[bool | None, typer.Option(
        "--shared-rounds/--own-rounds",
        help="With --train-seeds > 1: the members of a window take the first member's early-stopped rounds "
             "(one probe per window) or each runs its own probe (default VFR_TRAIN_SHARED_ROUNDS).")] = None,
    segment: SegmentOpt = "research",
    book: BookOpt = "top20-weekly",
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
    overrides = {k: v for k, v in (("train_window", train_window), ("retrain_every", retrain_every),
                                   ("horizon", horizon), ("window_validation", window_validation),
                                   ("bins_every", bins_every), ("seeds", train_seeds),
                                   ("shared_rounds", shared_rounds)) if v is not None}
    if seeds < 1:
        fail(UsageError(f"--seeds must be >= 1, got {seeds}"))
    try:
        config = TrainConfig.from_settings(settings, algorithm=algorithm, objective=objective, target=target,
                                           **overrides)
    except (ModelError, ValueError) as exc:
        fail(UsageError(str(exc)))
    change = (f"walk-forward {algorithm} {objective} target={target} horizon={config.horizon} features={features}"
              f" window={config.train_window or 'expanding'} refit={config.retrain_every}"
              + (f" rounds=window-early-stopping@{config.window_validation:g}" if config.window_validation
                 else " rounds=split-fit")
              + (f" bins-every={config.bins_every}" if config.make_model().reuses_bins else "")
              + (f" train-seeds={config.seeds}" if config.seeds > 1 else "")
              + (" shared-rounds" if config.seeds > 1 and config.shared_rounds and config.window_validation else "")
              + (f" seeds={seeds}" if seeds > 1 else ""))

    def scores(data):
        return ml_candidate_scores(data, replace(config, feature_columns=feature_set_columns(data.features,
                                                                                             features)),
                                   seeds=seeds)

    _run(settings, candidate, change, segment, scores, force_reason, book, config.horizon)


@app.command("book")
def research_book(
    scores_of: Annotated[str, typer.Option(
        "--scores-of", help="Candidate whose kept out-of-sample scores of the segment are held.")],
    book: BookOpt,
    candidate: Annotated[str | None, typer.Option(
        help="Name of the new trial's candidate (default SCORES_OF@BOOK).")] = None,
    segment: SegmentOpt = "research",
    force_reason: ForceOpt = None,
    home: HomeOpt = None,
) -> None:
    """Hold a kept score under another portfolio rule (a new registered trial; no refit)."""
    import pandas as pd

    settings = make_settings(home)
    kept = _kept_scores(settings, segment, scores_of)
    origin, horizon = _origin(settings, segment, scores_of)
    _run(settings, candidate or f"{scores_of}@{book}", f"{origin} (scores of {scores_of})", segment,
         lambda data: pd.read_parquet(kept), force_reason, book, horizon)


def _origin(settings, segment: str, candidate: str) -> tuple[str, str]:
    """The registered change that made ``candidate``'s kept scores, and its label horizon (the
    Rank IC of a trial on those scores is taken at the model's own horizon; default 1w)."""
    from vfr.research import read_register

    changes = [r.change for r in read_register(_paths(settings)[0]) if r.candidate == candidate
               and r.segment == segment]
    origin = changes[-1].split("; ")[0] if changes else "kept scores"
    found = re.search(r"horizon=(\w+)", origin)
    return origin, found.group(1) if found else "1w"


@app.command("neutralize")
def research_neutralize(
    scores_of: Annotated[str, typer.Option(
        "--scores-of", help="Candidate whose kept out-of-sample scores of the segment are neutralised.")],
    candidate: Annotated[str | None, typer.Option(
        help="Name of the new trial's candidate (default SCORES_OF-neutral).")] = None,
    segment: SegmentOpt = "research",
    force_reason: ForceOpt = None,
    home: HomeOpt = None,
) -> None:
    """Neutralise kept scores against 60-day volatility, market beta and sector (a new registered
    trial; no refit; its scores are kept for `vfr research composite --ml-scores-of`)."""
    import pandas as pd

    from vfr.research.evaluate import risk_neutral_candidate_scores

    settings = make_settings(home)
    kept = _kept_scores(settings, segment, scores_of)
    _run(settings, candidate or f"{scores_of}-neutral",
         f"scores of {scores_of} neutralised per date against vol_60d_ann rank, beta_mkt_252d rank and sector",
         segment, lambda data: risk_neutral_candidate_scores(data, pd.read_parquet(kept)), force_reason,
         horizon=_origin(settings, segment, scores_of)[1])


@app.command("composite")
def research_composite(
    ml_scores_of: Annotated[str, typer.Option(
        "--ml-scores-of", help="ML candidate whose kept out-of-sample scores of the segment are blended in.")],
    classic: Annotated[str, typer.Option(help="Classic candidate (classic-protocol or classic-seed).")]
    = "classic-protocol",
    ml_weight: Annotated[float, typer.Option(help="Weight of the ML score at full confidence (the product: 0.15).")]
    = 0.15,
    confidence: Annotated[str, typer.Option(
        help="Confidence rule scaling the ML weight: extremity (|2 * rank - 1|, the product's) or flat "
             "(the full weight wherever an ML score exists).")] = "extremity",
    candidate: Annotated[str | None, typer.Option(
        help="Name of the trial's candidate (default composite-<ML>-w<weight>[-flat][@<book>]).")] = None,
    segment: SegmentOpt = "research",
    book: BookOpt = "top20-weekly",
    force_reason: ForceOpt = None,
    home: HomeOpt = None,
) -> None:
    """Evaluate the ML-enhanced composite (classic blended with kept ML scores, confidence-weighted)."""
    import pandas as pd

    from vfr.research.evaluate import CLASSIC_CANDIDATES, composite_candidate_scores
    from vfr.scoring.classic import CONFIDENCE_RULES

    if confidence not in CONFIDENCE_RULES:
        fail(UsageError(f"--confidence must be one of {', '.join(CONFIDENCE_RULES)}, got {confidence!r}"))
    if classic not in CLASSIC_CANDIDATES:
        fail(UsageError(f"--classic must be one of {sorted(CLASSIC_CANDIDATES)}, got {classic!r}"))
    if not 0.0 <= ml_weight <= 1.0:
        fail(UsageError(f"--ml-weight must be in [0, 1], got {ml_weight}"))
    settings = make_settings(home)
    kept = _kept_scores(settings, segment, ml_scores_of)
    name = candidate or (f"composite-{ml_scores_of}-w{ml_weight:g}" + ("-flat" if confidence == "flat" else "")
                         + ("" if book == "top20-weekly" else f"@{book}"))
    change = (f"{classic} blended with the scores of {ml_scores_of} at ml_weight {ml_weight:g}, "
              + ("confidence-weighted" if confidence == "extremity" else "flat weight (no confidence scaling)"))
    _run(settings, name, change, segment,
         lambda data: composite_candidate_scores(data, classic, pd.read_parquet(kept), ml_weight, confidence),
         force_reason, book)


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
