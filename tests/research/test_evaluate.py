"""Candidates evaluated under the protocol on a real (small) store: no leak past the segment, trials counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SP500_UNIVERSE
from vfr.data import MarketStore
from vfr.pipeline import stage_features, stage_ingest
from vfr.research import HoldoutAlreadyTouchedError, read_register
from vfr.research.evaluate import (
    classic_candidate_scores,
    evaluate_scores,
    load_segment,
    results_markdown,
    run_trial,
    write_results,
)


@pytest.fixture(scope="module")
def store_settings(tmp_path_factory, sp500_raw_small):
    from vfr.config import Settings

    tmp = tmp_path_factory.mktemp("research")
    prices = tmp / "p.parquet"
    sp500_raw_small[(sp500_raw_small["date"] >= "2012-01-01") & (sp500_raw_small["date"] <= "2016-06-30")] \
        .to_parquet(prices)
    settings = Settings(home=tmp / "home")
    stage_ingest(settings, prices, SP500_UNIVERSE)
    stage_features(settings)
    return settings


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
                             register=register, top_n=5)
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


def test_the_holdout_is_touched_once_per_candidate(store_settings, tmp_path) -> None:
    with MarketStore.from_settings(store_settings) as store:
        data = load_segment(store, "holdout")
    assert data.features["date"].max() <= pd.Timestamp("2019-12-31")
    register = tmp_path / "trials.jsonl"
    ev = evaluate_scores(data, classic_candidate_scores(data, "classic-protocol"), candidate="classic-protocol",
                         register=register, top_n=5)
    run_trial(register, ev, "holdout look")
    with pytest.raises(HoldoutAlreadyTouchedError):
        run_trial(register, ev, "a second look")
    assert len(read_register(register)) == 1
