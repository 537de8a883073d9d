"""Evaluate a candidate score on one protocol segment and register the trial.

A *candidate* is a way of scoring stocks: the classic score with a set of signals, or a
walk-forward model of a :class:`vfr.ml.TrainConfig`. :func:`evaluate_scores` measures any
score frame the same way (Rank IC at the label horizon with its non-overlapping t-statistic,
a top-N book net of costs against the equal-weight point-in-time universe, the deflated
Sharpe ratio over the segment's trials) and :func:`run_trial` registers it, refusing a second
holdout touch (docs/research.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr._util import atomic_write
from vfr.backtest import BacktestConfig, run_backtest, vol_targeted_returns
from vfr.data import MarketStore
from vfr.data.tables import FEATURES, PRICES, SECURITIES
from vfr.errors import StageError
from vfr.metrics import deflated_sharpe_ratio, ic_by_date, ic_summary, parse_horizon, sharpe_ratio
from vfr.ml import TrainConfig, make_labels, train
from vfr.research.trials import SEGMENTS, read_register, record_trial
from vfr.scoring import GROUP_SIGNALS, SEED_GROUP_SIGNALS, Signal, classic_scores

#: Named portfolio rules a trial's book can follow (``vfr research ... --book``): keyword
#: arguments of :class:`vfr.backtest.BacktestConfig`, all long-only, equal weight, 10 bp per unit
#: traded. ``top20-weekly`` is the protocol's first book (and the default); the others were
#: written down before any of them was run: a quintile book (about 100 of the ~500 members, the
#: diversified book of the factor literature) weekly, monthly, and weekly with a rank buffer
#: (enter in the top 100, leave below 150, as Qlib's TopkDropout).
BOOKS: dict[str, dict[str, Any]] = {
    "top20-weekly": {"top_n": 20, "rebalance_every": 5},
    "q20-weekly": {"quantile": 0.2, "rebalance_every": 5},
    "q20-monthly": {"quantile": 0.2, "rebalance": "monthly"},
    "top100-buffer150-weekly": {"top_n": 100, "buffer_n": 150, "rebalance_every": 5},
    # tenth pass (docs/research.md): the default's top 20 with risk-aware construction
    "top20-weekly-invvol": {"top_n": 20, "rebalance_every": 5, "weighting": "inverse_vol"},
    "top20-weekly-vt15": {"top_n": 20, "rebalance_every": 5, "target_vol": 0.15},
    "top20-weekly-sector25": {"top_n": 20, "rebalance_every": 5, "max_sector_weight": 0.25},
    # eleventh pass: the cost-aware optimiser over every eligible name against their equal weight
    # (gamma 50, IC 0.02, at most 5% a name), with the turnover penalty and without it (a control)
    "opt-weekly": {"rebalance_every": 5, "weighting": "optimized", "max_weight": 0.05},
    "opt-weekly-nocost": {"rebalance_every": 5, "weighting": "optimized", "max_weight": 0.05,
                          "turnover_penalty": 0.0},
}

#: Named classic-score candidates: signals per group.
CLASSIC_CANDIDATES: dict[str, dict[str, tuple[Signal, ...]]] = {
    "classic-seed": SEED_GROUP_SIGNALS,
    "classic-protocol": GROUP_SIGNALS,
}


@dataclass
class ResearchData:
    """Features, labels and prices of the store, cut at a segment's end (nothing after it)."""

    features: pd.DataFrame
    labels: pd.DataFrame
    prices: pd.DataFrame
    segment: str
    start: pd.Timestamp
    end: pd.Timestamp
    #: ``symbol``, ``sector`` of the store's universe (None without one): the source's current
    #: classification, not a point-in-time one.
    sectors: pd.DataFrame | None = None


@dataclass
class Evaluation:
    """One candidate on one segment: metrics, the book's daily net returns and the equal-weight universe's."""

    candidate: str
    segment: str
    metrics: dict[str, float]
    daily_net: pd.Series = field(repr=False)
    daily_ew: pd.Series = field(repr=False, default_factory=lambda: pd.Series(dtype=float))


def load_segment(store: MarketStore, segment: str) -> ResearchData:
    """Read what a segment may see: features and prices to its end, labels that ended by then.

    The labels are made from the prices cut at the segment's end, so a label whose window
    (t, t+h] reaches past it is unknown (NaN): nothing of the following period leaks into an
    evaluation or a fit.

    Raises
    ------
    StageError
        If the store has no features or the segment is unknown.
    """
    if segment not in SEGMENTS:
        raise StageError(f"research: unknown segment {segment!r}; expected one of {sorted(SEGMENTS)}")
    if not store.has_table(PRICES):
        raise StageError("research: the store has no prices; run `vfr data ingest` first")
    if not store.has_table(FEATURES):
        raise StageError("research: the store has no features; run `vfr features build` first")
    start, end = (pd.Timestamp(d) for d in SEGMENTS[segment])
    features = store.read_table(FEATURES)
    features = features[features["date"] <= end].reset_index(drop=True)
    prices = store.read_prices()
    prices = prices[prices["date"] <= end].reset_index(drop=True)
    labels = make_labels(prices[["symbol", "date", "close"]], membership=store.read_membership())
    sectors = store.read_universe()[["symbol", "sector"]] if store.has_table(SECURITIES) else None
    return ResearchData(features, labels, prices, segment, start, end, sectors)


def evaluate_scores(data: ResearchData, scores: pd.DataFrame, *, candidate: str, register: Path | None = None,
                    horizon: str = "1w", book: str | Mapping[str, Any] = "top20-weekly") -> Evaluation:
    """Measure a score frame on the segment of ``data``.

    Parameters
    ----------
    data : ResearchData
    scores : DataFrame
        ``date``, ``symbol``, ``score`` (higher = better), point in time.
    candidate : str
    register : Path, optional
        The trials register: the deflated Sharpe ratio counts its trials of this segment (this
        one included) and uses the variance of their daily Sharpe ratios; without it N = 1.
    horizon : str
        Label horizon of the Rank IC (default ``1w``).
    book : str or mapping
        The portfolio rule of the book: a name of :data:`BOOKS` (default ``top20-weekly``: the
        top 20, rebalanced every 5 days, equal weight, 10 bp per unit traded) or keyword
        arguments of :class:`vfr.backtest.BacktestConfig` (``start``/``end`` are the segment's).

    Raises
    ------
    StageError
        On an unknown ``book``.

    Returns
    -------
    Evaluation
        ``metrics``: ``rank_ic``, ``t_stat`` (non-overlapping), ``sharpe_net`` (annualised),
        ``sharpe_daily``, ``ew_sharpe`` (equal-weight universe), ``cagr_net``,
        ``annual_turnover``, ``dsr`` (of the net returns), ``sharpe_active`` and ``dsr_active``
        (of the net returns minus the equal-weight universe's: the claim that the picks beat
        the rest), ``dsr_n_trials``.
    """
    if isinstance(book, str) and book not in BOOKS:
        raise StageError(f"research: unknown book {book!r}; expected one of {sorted(BOOKS)}")
    rule = BOOKS[book] if isinstance(book, str) else dict(book)
    h = parse_horizon(horizon)
    fwd = f"fwd_excess_{h.name}"
    inside = scores[(scores["date"] >= data.start) & (scores["date"] <= data.end)]
    scored = inside.merge(data.labels[["symbol", "date", fwd]], on=["symbol", "date"], how="left")
    ic = ic_summary(ic_by_date(scored, "score", fwd)["rank_ic"], horizon=h.days)
    config = BacktestConfig(**rule, start=data.start, end=data.end)
    sectors = None
    if config.needs_sectors:
        if data.sectors is None:
            raise StageError(f"research: book {book!r} needs the sector of each symbol; the store has no "
                             "universe (ingest prices with --universe)")
        sectors = data.sectors.set_index("symbol")["sector"]
    result = run_backtest(data.prices, inside[["date", "symbol", "score"]].dropna(), config, sectors=sectors)
    daily = result.daily["net_return"].astype(float)
    ew_daily = result.benchmarks["equal_weight"].astype(float).reindex(daily.index)
    active = (daily - ew_daily).dropna()
    net, ew = result.metrics["strategy_net"], result.metrics["equal_weight"]
    years = max(len(daily) / 252.0, 1e-9)
    sr_daily = float(sharpe_ratio(daily))
    metrics = {"rank_ic": ic["mean"], "t_stat": ic["t_stat_nonoverlap"], "sharpe_net": net["sharpe_ratio"],
               "sharpe_daily": sr_daily, "ew_sharpe": ew["sharpe_ratio"], "cagr_net": net["cagr"],
               "annual_turnover": float(result.daily["turnover"].sum() / years)}
    earlier = [r for r in read_register(register) if r.segment == data.segment] \
        if register is not None else []
    n = len(earlier) + 1  # every registered trial of the segment counts, this one included
    # their daily Sharpe ratios (from the annualised one where only that was recorded) give the variance
    known = [_daily_sharpe(r.metrics) for r in earlier]
    all_sr = [x for x in known if x is not None] + [sr_daily]
    dsr = deflated_sharpe_ratio(daily.to_numpy(), n_trials=n,
                                sr_variance=_sr_variance(all_sr))
    known_active = [x for x in (r.metrics.get("sharpe_active_daily") for r in earlier) if x is not None]
    sr_active = float(sharpe_ratio(active))
    all_active = [*known_active, sr_active]
    dsr_active = deflated_sharpe_ratio(active.to_numpy(), n_trials=n,
                                       sr_variance=_sr_variance(all_active))
    metrics |= {"dsr": dsr.dsr, "dsr_n_trials": float(n), "sharpe_active": sr_active * np.sqrt(252.0),
                "sharpe_active_daily": sr_active, "dsr_active": dsr_active.dsr}
    if config.target_vol is not None:  # what the volatility target alone does to the benchmark
        metrics["ew_sharpe_vt"] = ew_vol_targeted_sharpe(ew_daily, config)
    return Evaluation(candidate, data.segment, metrics, daily, ew_daily)


def ew_vol_targeted_sharpe(ew_daily: pd.Series, config: BacktestConfig) -> float:
    """Annualised Sharpe ratio of the equal-weight universe's daily returns held under the book's
    volatility target (:func:`vfr.backtest.vol_targeted_returns`, scale updated every
    ``rebalance_every`` days from ``vol_lookback`` returns, no costs): the benchmark a
    volatility-targeted book should be compared with to see whether its Sharpe ratio comes from
    its names or from the target."""
    assert config.target_vol is not None
    scaled = vol_targeted_returns(ew_daily.dropna(), config.target_vol, every=config.rebalance_every,
                                  lookback=config.vol_lookback, max_leverage=config.max_leverage)
    return float(sharpe_ratio(scaled)) * float(np.sqrt(252.0))


def _sr_variance(sharpe_ratios: list[float]) -> float:
    """Sample variance of the trials' Sharpe ratios (the DSR's V[SR]); 0 with fewer than two trials."""
    return float(np.var(sharpe_ratios, ddof=1)) if len(sharpe_ratios) > 1 else 0.0


def _daily_sharpe(metrics: Mapping[str, float | None]) -> float | None:
    """A trial's per-day Sharpe ratio: ``sharpe_daily``, else ``sharpe_net`` / sqrt(252), else None."""
    for key, scale in (("sharpe_daily", 1.0), ("sharpe_net", 1.0 / np.sqrt(252.0))):
        value = metrics.get(key)
        if value is not None and np.isfinite(value):
            return float(value) * scale
    return None


def classic_candidate_scores(data: ResearchData, candidate: str) -> pd.DataFrame:
    """The classic score of a named candidate (:data:`CLASSIC_CANDIDATES`) on every date.

    Raises
    ------
    StageError
        On an unknown candidate.
    """
    if candidate not in CLASSIC_CANDIDATES:
        raise StageError(f"research: unknown classic candidate {candidate!r}; expected one of "
                         f"{sorted(CLASSIC_CANDIDATES)}")
    cs = classic_scores(data.features, signals=CLASSIC_CANDIDATES[candidate])
    return cs[["date", "symbol"]].assign(score=cs["classic_score"].to_numpy())


def composite_candidate_scores(data: ResearchData, classic_candidate: str, ml_scores: pd.DataFrame,
                               ml_weight: float = 0.15, confidence: str = "extremity") -> pd.DataFrame:
    """The ML-enhanced composite of the product (:func:`vfr.scoring.blend`) from a classic
    candidate and out-of-sample ML scores.

    ``ml_scores`` (``date``, ``symbol``, ``score``) become the day's percentile rank and its
    confidence under the ``confidence`` rule (:func:`vfr.scoring.classic.ml_components`), and the composite is
    ``(1 - w) * classic + w * ml`` with ``w = ml_weight * confidence``, exactly as
    :func:`vfr.scoring.select` blends them; a row without an ML score keeps its classic score.

    Raises
    ------
    StageError
        On an unknown classic candidate, a weight outside [0, 1] or an unknown confidence rule.
    """
    from vfr.scoring.classic import CONFIDENCE_RULES, blend, ml_components

    if not 0.0 <= ml_weight <= 1.0:
        raise StageError(f"research: ml_weight must be in [0, 1], got {ml_weight}")
    if confidence not in CONFIDENCE_RULES:
        raise StageError(f"research: confidence must be one of {', '.join(CONFIDENCE_RULES)}, got {confidence!r}")
    classic = classic_candidate_scores(data, classic_candidate)
    merged = classic.merge(ml_scores[["date", "symbol", "score"]].rename(columns={"score": "prob"}),
                           on=["date", "symbol"], how="left")
    ml, conf = ml_components(merged["prob"], merged["date"], confidence)
    return merged[["date", "symbol"]].assign(score=blend(merged["score"], ml, conf, ml_weight).to_numpy())


def risk_neutral_candidate_scores(data: ResearchData, scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` (``date``, ``symbol``, ``score``) neutralised date by date against the 60-day
    volatility and market beta ranks and the sector, as :func:`vfr.scoring.select` does with
    ``ml_neutralize`` (:func:`vfr.scoring.risk_neutral_score`).

    Returns
    -------
    DataFrame of ``date``, ``symbol``, ``score``
        The residual rank in (0, 1]; rows without the exposures are dropped.

    Raises
    ------
    StageError
        The features lack an exposure (the market beta needs the macro data).
    """
    from vfr.scoring import RISK_EXPOSURES, risk_neutral_scores

    missing = [c for c in RISK_EXPOSURES if c not in data.features.columns]
    if missing:
        raise StageError(f"research: the features lack {missing} (the market beta is a macro-group feature: "
                         "`vfr data ingest-fundamentals --macro DIR`, then `vfr features build`)")
    out = scores[["date", "symbol"]].assign(score=risk_neutral_scores(scores, data.features, data.sectors))
    return out[out["score"].notna()].reset_index(drop=True)


#: Feature sets a research ML trial can train on (``vfr research ml --features``).
FEATURE_SETS = ("all", "no-alpha158", "alpha158")


def feature_set_columns(features: pd.DataFrame, feature_set: str) -> tuple[str, ...] | None:
    """Columns of ``feature_set``: None for ``all`` (every feature column, as ``vfr train``), the
    columns without / only Qlib's Alpha158 factors for ``no-alpha158`` / ``alpha158``.

    Raises
    ------
    StageError
        Unknown set, or ``alpha158`` when the features table has none (built without ``--alpha158``).
    """
    from vfr.features.alpha158 import alpha158_names

    if feature_set not in FEATURE_SETS:
        raise StageError(f"research: unknown feature set {feature_set!r}; expected one of {FEATURE_SETS}")
    if feature_set == "all":
        return None
    names = set(alpha158_names(vwap=True))
    cols = [c for c in features.columns if c not in ("date", "symbol")]
    if feature_set == "alpha158":
        chosen = [c for c in cols if c in names]
        if not chosen:
            raise StageError("research: the features table has no Alpha158 columns; run "
                             "`vfr features build --alpha158` first")
        return tuple(chosen)
    return tuple(c for c in cols if c not in names)


def ml_candidate_scores(data: ResearchData, config: TrainConfig, *, seeds: int = 1) -> pd.DataFrame:
    """Walk-forward out-of-sample predictions of ``config`` fitted on the segment's data only.

    With ``seeds`` > 1, the walk-forward is run with seeds ``config.seed``, ``config.seed + 1``,
    ... and the score of a (date, symbol) is the mean of its per-date percentile ranks across
    the runs (each run's scale drops out; every run is out of sample, so the mean is too).
    """
    from dataclasses import replace

    frames = []
    for k in range(seeds):
        oos = train(data.features, data.labels, replace(config, seed=config.seed + k)).oos_predictions
        frame = oos[["date", "symbol"]].assign(score=oos["prob"].to_numpy())
        if seeds > 1:
            frame["score"] = frame.groupby("date")["score"].rank(pct=True)
        frames.append(frame.set_index(["date", "symbol"])["score"])
    if seeds == 1:
        return frames[0].reset_index()
    return pd.concat(frames, axis=1).mean(axis=1).rename("score").reset_index()


def kept_scores_path(out_dir: Path, segment: str, candidate: str) -> Path:
    """Where :func:`run_trial` keeps a trial's scores (``vfr research book|composite`` read them)."""
    return out_dir / f"scores_{segment}_{candidate}.parquet"


def run_trial(register: Path, evaluation: Evaluation, change: str, *, out_dir: Path | None = None,
              force: bool = False, reason: str | None = None,
              scores: pd.DataFrame | None = None) -> dict[str, Any]:
    """Register an evaluation (holdout: once per candidate) and keep its daily net returns.

    With ``out_dir``, the book's daily net and equal-weight returns are kept as
    ``daily_<segment>_<candidate>.parquet`` (the PBO's matrix) and, when given, the ``scores``
    as ``scores_<segment>_<candidate>.parquet`` (``vfr research book`` holds them again).

    Returns
    -------
    dict
        The register's line as a dict (``n_trials`` included).

    Raises
    ------
    vfr.research.HoldoutAlreadyTouchedError
        A second holdout evaluation of the candidate without ``force``.
    """
    record = record_trial(register, evaluation.candidate, change, evaluation.segment, evaluation.metrics,
                          force=force, reason=reason)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"net": evaluation.daily_net, "equal_weight": evaluation.daily_ew}).to_parquet(
            out_dir / f"daily_{evaluation.segment}_{evaluation.candidate}.parquet")
        if scores is not None:
            scores[["date", "symbol", "score"]].to_parquet(
                kept_scores_path(out_dir, evaluation.segment, evaluation.candidate))
    return {"candidate": record.candidate, "segment": record.segment, "n_trials": record.n_trials,
            **record.metrics}


def trials_table(register: Path, segment: str | None = None) -> pd.DataFrame:
    """The register as a table (one row per trial), optionally of one segment."""
    rows = [{"when": r.timestamp[:16], "candidate": r.candidate, "segment": r.segment, "change": r.change,
             "n_trials": r.n_trials, **{k: r.metrics.get(k) for k in
                                         ("rank_ic", "t_stat", "sharpe_net", "ew_sharpe", "sharpe_active",
                                          "annual_turnover", "dsr", "dsr_active")}}
            for r in read_register(register) if segment is None or r.segment == segment]
    return pd.DataFrame(rows)


def daily_matrix(out_dir: Path, segment: str, *, active: bool = True) -> pd.DataFrame:
    """Daily returns of every kept trial of ``segment`` (T x N), on common dates: net of costs
    minus the equal-weight universe (``active``, default) or net."""
    frames: dict[str, pd.Series] = {}
    for p in sorted(out_dir.glob(f"daily_{segment}_*.parquet")):
        kept = pd.read_parquet(p)
        net = kept.iloc[:, 0]
        frames[p.stem.removeprefix(f"daily_{segment}_")] = \
            net - kept["equal_weight"] if active and "equal_weight" in kept else net
    return pd.DataFrame(frames).dropna()


def results_markdown(register: Path, out_dir: Path | None = None) -> str:
    """The "Results" section of docs/research.md, from the register (and the kept daily returns).

    Lists every trial by segment with its number of trials and deflated Sharpe ratio, and,
    when the daily net returns of two or more research trials were kept, the probability of
    backtest overfitting of choosing among them (:func:`vfr.metrics.pbo_cscv`, S = 16).
    """
    from vfr.metrics import pbo_cscv

    table = trials_table(register)
    lines = ["## Results", "",
             f"Regenerated by `vfr research report` from the trials register ({len(table)} trials: "
             f"{int((table['segment'] == 'research').sum()) if len(table) else 0} on the research segment, "
             f"{int((table['segment'] == 'holdout').sum()) if len(table) else 0} holdout touches). "
             "Book: top 20 by the score, equal weight, rebalanced every 5 trading days, 10 bp per unit "
             "traded, point-in-time S&P 500, unless the change names another book "
             "(`vfr.research.evaluate.BOOKS`: `q20` = the top quintile); `ew_sharpe` is the equal-weight "
             "point-in-time universe. "
             "Rank IC: 1-week excess return, t-statistic on non-overlapping weeks. `dsr`: deflated "
             "Sharpe ratio over the segment's trials so far (`n_trials`). Below each segment's table, "
             "paragraphs marked \"quoted, not recomputed\" were computed from books whose daily returns "
             "are not kept where this was regenerated; they are carried over as they were.", ""]
    for segment in ("research", "holdout"):
        part = table[table["segment"] == segment] if len(table) else table
        if not len(part):
            continue
        lines += [f"### {segment.capitalize()} segment ({SEGMENTS[segment][0]} to {SEGMENTS[segment][1]})", "",
                  "| candidate | change | n_trials | Rank IC | t | Sharpe net | EW Sharpe | active Sharpe | "
                  "turnover/yr | DSR | DSR active |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in part.itertuples():
            lines.append(f"| {r.candidate} | {r.change} | {r.n_trials} | {_f(r.rank_ic, 4)} | {_f(r.t_stat, 2)} | "
                         f"{_f(r.sharpe_net, 2)} | {_f(r.ew_sharpe, 2)} | {_f(r.sharpe_active, 2)} | "
                         f"{_f(r.annual_turnover, 1)} | {_f(r.dsr, 3)} | {_f(r.dsr_active, 3)} |")
        lines.append("")
        if out_dir is not None:
            matrix = daily_matrix(out_dir, segment)
            n_all = len(part)
            if matrix.shape[1] >= 1:
                sr = [x for x in (m.get("sharpe_active_daily") for m in _segment_metrics(register, segment))
                      if x is not None and np.isfinite(x)]
                var = _sr_variance(sr)
                lines += [f"Deflated Sharpe ratio of each kept book's active return (net of costs minus the "
                          f"equal-weight universe) against all {n_all} trials of the segment (variance of their "
                          f"daily active Sharpe ratios {var:.2e}):", ""]
                for name in matrix.columns:
                    d = deflated_sharpe_ratio(matrix[name].to_numpy(), n_trials=n_all, sr_variance=var)
                    lines.append(f"- `{name}`: DSR {d.dsr:.3f} (daily active SR {d.sr:.4f}, annualised "
                                 f"{d.sr * np.sqrt(252):.2f}, vs expected maximum {d.sr0:.4f} of {n_all} "
                                 "zero-skill trials)")
                lines.append("")
            if matrix.shape[1] >= 2 and len(matrix) >= 32:
                pbo = pbo_cscv(matrix, n_splits=16)
                lines += [f"PBO of choosing the best active book (CSCV, S = 16, {matrix.shape[1]} trials, "
                          f"{len(matrix)} days): "
                          f"**{pbo.pbo:.3f}**; the in-sample best is most often `{pbo.best_trial_counts().idxmax()}`; "
                          f"degradation slope {pbo.degradation_slope:.2f}, P(out-of-sample loss) "
                          f"{pbo.prob_oos_loss:.3f}.", ""]
    return "\n".join(lines) + "\n"


def _segment_metrics(register: Path, segment: str) -> list[dict[str, float | None]]:
    return [r.metrics for r in read_register(register) if r.segment == segment]


def _f(value: Any, digits: int) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


#: Words that mark a paragraph of the Results section as quoted from an earlier machine: it and
#: everything after it in its segment survive a regeneration (:func:`write_results`).
QUOTED_MARK = "quoted, not recomputed"


def _segment_tails(results: str) -> dict[str, str]:
    """Per segment heading (``### Research segment ...``), the evidence below its trials table."""
    tails: dict[str, str] = {}
    for part in results.split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        paragraphs = [p for p in body.strip("\n").split("\n\n") if p.strip()]
        evidence = [p for p in paragraphs if not p.lstrip().startswith("|")]
        tails[heading.split(" (")[0]] = "\n\n".join(evidence)
    return tails


def _kept_over_regeneration(old_tail: str, kept_books: set[str]) -> str:
    """What of a segment's old evidence a regeneration must not lose: the blocks quoted from earlier
    machines, and the old computed block when some of its books' daily returns are not kept here
    (then it is quoted, with the number of trials it counted)."""
    paragraphs = old_tail.split("\n\n") if old_tail else []
    first_quoted = next((i for i, p in enumerate(paragraphs) if QUOTED_MARK in p), len(paragraphs))
    computed, quoted = paragraphs[:first_quoted], paragraphs[first_quoted:]
    books = {line.split("`")[1] for p in computed for line in p.splitlines()
             if line.startswith("- `") and line.count("`") >= 2}
    keep: list[str] = []
    if books and not books <= kept_books:
        trials = next((p.split("against all ", 1)[1].split(" trials", 1)[0] for p in computed
                       if "against all " in p), "?")
        keep += [f"Computed by an earlier `vfr research report` when {trials} trials of the segment existed, "
                 f"from books whose daily returns are not kept on this machine ({QUOTED_MARK}):", *computed]
    return "\n\n".join(keep + quoted)


def write_results(doc: Path, register: Path, out_dir: Path | None = None) -> Path:
    """Replace the "## Results" section of ``doc`` (to its end) with :func:`results_markdown`,
    atomically (:func:`vfr._util.atomic_write`).

    Evidence that cannot be recomputed here is kept, per segment, below the new figures: the
    paragraphs quoted from earlier machines (from the first one containing :data:`QUOTED_MARK`
    to the segment's end), and the old deflated Sharpe ratio / PBO block when some of its books'
    daily returns are not in ``out_dir`` (it becomes a quoted block). So regenerating on a new
    machine, or twice, loses nothing.
    """
    text = doc.read_text() if doc.exists() else "# Research\n\n"
    head, _, old_results = text.partition("\n## Results")
    head = head.rstrip("\n")
    old_tails = _segment_tails(old_results)
    new_results = results_markdown(register, out_dir)
    parts = new_results.split("\n### ")
    for i, part in enumerate(parts[1:], start=1):
        name = part.partition("\n")[0].split(" (")[0]
        segment = name.removesuffix(" segment").lower()
        kept_books = set(daily_matrix(out_dir, segment).columns) if out_dir is not None else set()
        carried = _kept_over_regeneration(old_tails.get(name, ""), kept_books)
        if carried:
            parts[i] = part.rstrip("\n") + "\n\n" + carried + "\n"
    body = head + "\n\n" + "\n### ".join(parts)
    return atomic_write(doc, lambda tmp: tmp.write_text(body))
