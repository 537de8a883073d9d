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
