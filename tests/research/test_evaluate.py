"""Candidates evaluated under the protocol on a real (small) store: no leak past the segment, trials counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr.data import MarketStore
from vfr.research import HoldoutAlreadyTouchedError, read_register
from vfr.research.evaluate import (
    classic_candidate_scores,
    evaluate_scores,
    load_segment,
    results_markdown,
    run_trial,
    write_results,
)


def test_a_segment_sees_nothing_after_its_end(store_settings) -> None:
    with MarketStore.from_settings(store_settings) as store:
        data = load_segment(store, "research")
    end = pd.Timestamp("2014-12-31")
    assert data.features["date"].max() <= end and data.prices["date"].max() <= end
    # the 1-week label of a date is known only when its window (t, t+5] ends by the segment's end
    dates = np.sort(data.prices["date"].unique())
    known = data.labels.dropna(subset=["fwd_excess_1w"])
    assert known["date"].max() == pd.Timestamp(dates[-6])


def test_classic_candidates_are_evaluated_registered_and_reported(store_settings, tmp_path) -> None:
    with MarketStore.from_settings(store_settings) as store:
        data = load_segment(store, "research")
    register, out_dir = tmp_path / "trials.jsonl", tmp_path / "daily"
    rows = []
    for candidate in ("classic-seed", "classic-protocol"):
        ev = evaluate_scores(data, classic_candidate_scores(data, candidate), candidate=candidate,
                             register=register, book={"top_n": 5, "rebalance_every": 5})
        assert set(ev.metrics) >= {"rank_ic", "t_stat", "sharpe_net", "ew_sharpe", "dsr", "dsr_n_trials"}
        assert 0 <= ev.metrics["dsr"] <= 1 and abs(ev.metrics["rank_ic"]) < 0.2
        rows.append(run_trial(register, ev, f"test {candidate}", out_dir=out_dir))
    assert [r["n_trials"] for r in rows] == [1, 2]
    assert [r.metrics["dsr_n_trials"] for r in read_register(register)] == [1.0, 2.0]
    text = results_markdown(register, out_dir)
    assert "| classic-seed |" in text and "| classic-protocol |" in text and "### Research segment" in text
    doc = tmp_path / "research.md"
    doc.write_text("# Research\n\nprotocol text\n\n## Results\n\nSTALE-RESULTS\n")
    write_results(doc, register, out_dir)
    assert "protocol text" in doc.read_text() and "STALE-RESULTS" not in doc.read_text()
    computed = doc.read_text()
    assert "against all 2 trials" in computed and "`classic-seed`: DSR" in computed
    # regenerated on the same machine: identical (nothing duplicated)
    write_results(doc, register, out_dir)
    assert doc.read_text() == computed
    # on a new machine (the kept daily returns are gone) the old block is quoted, not lost
    elsewhere = tmp_path / "daily-new-machine"
    write_results(doc, register, elsewhere)
    moved = doc.read_text()
    assert "Computed by an earlier `vfr research report` when 2 trials of the segment existed" in moved
    assert "`classic-seed`: DSR" in moved and "quoted, not recomputed" in moved
    write_results(doc, register, elsewhere)  # and stays once, however often it is regenerated
    assert doc.read_text() == moved and moved.count("`classic-seed`: DSR") == 1
    # back where the books are kept: recomputed, and the quote is kept too
    write_results(doc, register, out_dir)
    assert doc.read_text().count("`classic-seed`: DSR") == 2


def test_the_holdout_is_touched_once_per_candidate(store_settings, tmp_path) -> None:
    with MarketStore.from_settings(store_settings) as store:
        data = load_segment(store, "holdout")
    assert data.features["date"].max() <= pd.Timestamp("2019-12-31")
    register = tmp_path / "trials.jsonl"
    ev = evaluate_scores(data, classic_candidate_scores(data, "classic-protocol"), candidate="classic-protocol",
                         register=register, book={"top_n": 5, "rebalance_every": 5})
    run_trial(register, ev, "holdout look")
    with pytest.raises(HoldoutAlreadyTouchedError):
        run_trial(register, ev, "a second look")
    assert len(read_register(register)) == 1


def test_books_are_named_portfolio_rules(store_settings) -> None:
    """A monthly quintile book of the same score trades less than the weekly one; an unknown book is refused."""
    from vfr.errors import StageError
    from vfr.research.evaluate import BOOKS

    with MarketStore.from_settings(store_settings) as store:
        data = load_segment(store, "research")
    scores = classic_candidate_scores(data, "classic-protocol")
    weekly = evaluate_scores(data, scores, candidate="c", book="q20-weekly")
    monthly = evaluate_scores(data, scores, candidate="c", book="q20-monthly")
    assert set(BOOKS) >= {"top20-weekly", "q20-weekly", "q20-monthly"}
    assert 0 < monthly.metrics["annual_turnover"] < weekly.metrics["annual_turnover"]
    assert weekly.metrics["rank_ic"] == monthly.metrics["rank_ic"]  # the book does not change the score's IC
    with pytest.raises(StageError, match="unknown book 'top7'"):
        evaluate_scores(data, scores, candidate="c", book="top7")


def test_the_tenth_pass_books_run_on_a_real_store(store_settings) -> None:
    """Inverse-volatility weights, a volatility target and a sector cap (which takes the store's
    sectors) hold the same score: same Rank IC; inverse-volatility weights change the book (the
    small store's calm 2012-2014 book may never reach the volatility target or the cap)."""
    import dataclasses

    from vfr.errors import StageError

    with MarketStore.from_settings(store_settings) as store:
        data = load_segment(store, "research")
    scores = classic_candidate_scores(data, "classic-protocol")
    base = evaluate_scores(data, scores, candidate="c", book="top20-weekly")
    for book in ("top20-weekly-invvol", "top20-weekly-vt15", "top20-weekly-sector25"):
        ev = evaluate_scores(data, scores, candidate="c", book=book)
        assert ev.metrics["rank_ic"] == base.metrics["rank_ic"], book
        if book == "top20-weekly-invvol":
            assert not ev.daily_net.equals(base.daily_net)
        # only a volatility-targeted book reports the equal weight under the same target
        assert ("ew_sharpe_vt" in ev.metrics) is (book == "top20-weekly-vt15"), book
    with pytest.raises(StageError, match="needs the sector"):
        evaluate_scores(dataclasses.replace(data, sectors=None), scores, candidate="c",
                        book="top20-weekly-sector25")


def test_the_composite_blends_ml_scores_as_the_product_does(store_settings) -> None:
    """w = 0 is the classic score; w > 0 moves a row toward its ML rank, by w x confidence, as select() does."""
    from vfr.errors import StageError
    from vfr.research.evaluate import composite_candidate_scores

    with MarketStore.from_settings(store_settings) as store:
        data = load_segment(store, "research")
    classic = classic_candidate_scores(data, "classic-protocol")
    rng = np.random.default_rng(0)
    ml = classic[["date", "symbol"]].assign(score=rng.normal(size=len(classic)))
    ml = ml.iloc[: len(ml) // 2]  # half the rows have no ML score: they keep the classic one
    zero = composite_candidate_scores(data, "classic-protocol", ml, 0.0)
    np.testing.assert_allclose(zero["score"], classic["score"])
    half = composite_candidate_scores(data, "classic-protocol", ml, 0.5).set_index(["date", "symbol"])["score"]
    base = classic.set_index(["date", "symbol"])["score"]
    without = ~base.index.isin(ml.set_index(["date", "symbol"]).index)
    np.testing.assert_allclose(half[without], base[without])
    assert (half[~without] - base[~without]).abs().max() > 0.05
    with pytest.raises(StageError, match="ml_weight"):
        composite_candidate_scores(data, "classic-protocol", ml, 1.5)
