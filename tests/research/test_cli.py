"""`vfr research classic|book|composite` on a real small store: books, kept scores, the composite, one-line errors."""

from __future__ import annotations

from typer.testing import CliRunner

from vfr.cli import app
from vfr.research import read_register
from vfr.research.evaluate import BOOKS


def run(settings, *args: str):
    return CliRunner().invoke(app, ["research", *args, "--home", str(settings.home)], env={"COLUMNS": "200"})


def test_books_kept_scores_and_the_composite_are_registered_trials(store_settings) -> None:
    first = run(store_settings, "classic", "--book", "q20-weekly")
    assert first.exit_code == 0, first.output
    reports = store_settings.home / "reports"
    kept = reports / "research" / "scores_research_classic-protocol@q20-weekly.parquet"
    assert kept.exists()
    again = run(store_settings, "book", "--scores-of", "classic-protocol@q20-weekly", "--book", "q20-monthly")
    assert again.exit_code == 0, again.output
    blended = run(store_settings, "composite", "--ml-scores-of", "classic-protocol@q20-weekly", "--ml-weight", "0.3")
    assert blended.exit_code == 0, blended.output
    records = read_register(reports / "trials.jsonl")
    assert [r.candidate for r in records] == ["classic-protocol@q20-weekly", "classic-protocol@q20-weekly@q20-monthly",
                                              "composite-classic-protocol@q20-weekly-w0.3"]
    assert [r.n_trials for r in records] == [1, 2, 3]
    assert records[0].change.endswith("; book q20-weekly; EW = point-in-time members")
    assert records[1].change == ("signals of vfr.scoring.GROUP_SIGNALS (scores of classic-protocol@q20-weekly); "
                                 "book q20-monthly; EW = point-in-time members")
    # the same scores held monthly trade less than weekly
    assert records[1].metrics["annual_turnover"] < records[0].metrics["annual_turnover"]
    assert records[1].metrics["rank_ic"] == records[0].metrics["rank_ic"]


def test_bad_choices_are_one_line_errors_and_register_nothing(store_settings, tmp_path) -> None:
    bad_book = run(store_settings, "classic", "--book", "top7")
    assert bad_book.exit_code == 2 and f"--book must be one of {', '.join(BOOKS)}" in bad_book.output
    missing = run(store_settings, "book", "--scores-of", "nobody", "--book", "q20-weekly", "--segment", "holdout")
    assert missing.exit_code == 2 and "no kept holdout scores of 'nobody'" in missing.output
    weight = run(store_settings, "composite", "--ml-scores-of", "x", "--ml-weight", "2")
    assert weight.exit_code == 2 and "--ml-weight must be in [0, 1]" in weight.output
    register = store_settings.home / "reports" / "trials.jsonl"
    before = register.read_text() if register.exists() else None  # the store is shared with other tests
    bins = run(store_settings, "ml", "--candidate", "x", "--bins-every", "0")
    assert bins.exit_code == 2 and "bins_every must be at least 1, got 0" in bins.output
    seeds = run(store_settings, "ml", "--candidate", "x", "--train-seeds", "0")
    assert seeds.exit_code == 2 and "seeds must be at least 1, got 0" in seeds.output
    assert (register.read_text() if register.exists() else None) == before


def test_kept_scores_neutralised_are_a_registered_trial_free_of_the_volatility_rank(store_settings) -> None:
    import numpy as np
    import pandas as pd

    from tests.conftest import SHARED_DATA, require_shared
    from vfr.data import MarketStore
    from vfr.pipeline import stage_features, stage_ingest_fundamentals
    from vfr.research.evaluate import kept_scores_path

    folder = store_settings.home / "reports" / "research"
    with MarketStore.from_settings(store_settings) as store:
        vol = store.read_table("features", columns=["date", "symbol", "vol_60d_ann"])
    # kept scores of a candidate that mostly buys volatility
    rng = np.random.default_rng(0)
    bet = vol.dropna().assign(score=lambda f: f["vol_60d_ann"].rank(pct=True) + rng.normal(0, 0.2, len(f)))
    kept_scores_path(folder, "research", "volbet").parent.mkdir(parents=True, exist_ok=True)
    bet[["date", "symbol", "score"]].to_parquet(kept_scores_path(folder, "research", "volbet"))
    # without the macro group there is no market beta: a one-line error naming it
    lacking = run(store_settings, "neutralize", "--scores-of", "volbet")
    assert lacking.exit_code == 1 and "beta_mkt_252d" in lacking.output and "Traceback" not in lacking.output
    stage_ingest_fundamentals(store_settings, macro=require_shared(SHARED_DATA / "macro"))
    stage_features(store_settings)  # the market beta is a macro-group feature
    done = run(store_settings, "neutralize", "--scores-of", "volbet")
    assert done.exit_code == 0, done.output
    record = read_register(store_settings.home / "reports" / "trials.jsonl")[-1]
    assert record.candidate == "volbet-neutral" and "neutralised per date" in record.change
    neutral = pd.read_parquet(kept_scores_path(folder, "research", "volbet-neutral"))

    def vol_loading(scores: pd.DataFrame) -> float:  # mean per-date rank correlation with volatility
        m = scores.merge(vol, on=["date", "symbol"]).dropna()
        return m.groupby("date").apply(lambda d: d["score"].corr(d["vol_60d_ann"], method="spearman")).mean()

    assert vol_loading(bet[["date", "symbol", "score"]]) > 0.5 and abs(vol_loading(neutral)) < 0.05
    assert run(store_settings, "composite", "--ml-scores-of", "volbet-neutral").exit_code == 0
