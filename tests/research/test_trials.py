"""The trials register (vfr.research.trials): real files in tmp_path, no mocks."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from vfr.config import Settings
from vfr.errors import DataValidationError
from vfr.research import (
    HOLDOUT,
    METRIC_KEYS,
    RESEARCH,
    SEGMENTS,
    HoldoutAlreadyTouchedError,
    default_register_path,
    git_commit,
    holdout_touches,
    n_trials,
    read_register,
    record_holdout_touch,
    record_trial,
    register_frame,
)

METRICS = {"rank_ic": 0.021, "t_stat": 2.4, "sharpe_net": 0.61, "dsr": 0.83}
DIRECTORY = "<the tmp_path folder>"  # placeholder replaced in the test


def test_segments_are_the_protocol_spans():
    assert {k: (str(a), str(b)) for k, (a, b) in SEGMENTS.items()} == {
        "research": ("2002-01-01", "2014-12-31"), "holdout": ("2015-01-01", "2019-12-31")}
    assert METRIC_KEYS == ("rank_ic", "t_stat", "sharpe_net", "dsr")


def test_record_and_read_back(tmp_path):
    reg = tmp_path / "reports" / "trials.jsonl"  # folder created on first write
    assert read_register(reg) == [] and n_trials(reg) == 0
    before = datetime.now(UTC)
    first = record_trial(reg, "lgbm-v1", "baseline", RESEARCH, METRICS, commit="abc123")
    second = record_trial(reg, "lgbm-v2", "added sector momentum", "research",
                          {**METRICS, "dsr": float("nan"), "turnover": 0.4}, commit=None)
    assert (first.n_trials, second.n_trials) == (1, 2)
    records = read_register(reg)
    assert records == [first, second]
    assert records[0].commit == "abc123" and records[1].commit is None
    assert records[1].metrics["dsr"] is None  # NaN stored as null
    stamp = datetime.fromisoformat(records[0].timestamp)
    assert stamp.tzinfo is not None and stamp.utcoffset().total_seconds() == 0
    assert before <= stamp <= datetime.now(UTC)
    # one JSON object per line, newline-terminated
    lines = reg.read_text().splitlines(keepends=True)
    assert len(lines) == 2 and all(line.endswith("\n") for line in lines)
    assert json.loads(lines[1])["change"] == "added sector momentum"
    assert json.loads(lines[1])["version"] == 1


def test_register_frame(tmp_path):
    reg = tmp_path / "trials.jsonl"
    record_trial(reg, "a", "baseline", RESEARCH, METRICS, commit=None)
    record_trial(reg, "b", "more features", RESEARCH, {**METRICS, "turnover": 0.4}, commit=None)
    frame = register_frame(reg)
    assert list(frame.columns) == ["timestamp", "candidate", "change", "segment", "n_trials", "commit", "forced",
                                   "reason", "rank_ic", "t_stat", "sharpe_net", "dsr", "turnover"]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["n_trials"].tolist() == [1, 2]
    assert frame["turnover"].isna().tolist() == [True, False]
    assert frame.loc[0, "rank_ic"] == pytest.approx(0.021)
    empty = register_frame(tmp_path / "none.jsonl")
    assert empty.empty and "dsr" in empty.columns


def test_n_trials_counts_by_segment(tmp_path):
    reg = tmp_path / "trials.jsonl"
    for i in range(3):
        record_trial(reg, f"c{i}", f"change {i}", RESEARCH, METRICS, commit=None)
    touch = record_holdout_touch(reg, "c2", "about to become default", METRICS, commit=None)
    rec = record_trial(reg, "c3", "after the holdout", RESEARCH, METRICS, commit=None)
    assert touch.n_trials == 1 and touch.segment == HOLDOUT
    assert rec.n_trials == 4  # research trials so far, this one included
    assert n_trials(reg) == 5
    assert n_trials(reg, segment="research") == 4
    assert n_trials(reg, segment="holdout") == 1
    with pytest.raises(ValueError, match="segment must be one of"):
        n_trials(reg, segment="research 2002-2014")


def test_torn_last_line_is_ignored_and_cut_by_the_next_writer(tmp_path, caplog):
    reg = tmp_path / "trials.jsonl"
    record_trial(reg, "a", "baseline", RESEARCH, METRICS, commit=None)
    record_trial(reg, "b", "second", RESEARCH, METRICS, commit=None)
    complete = reg.read_bytes()
    # an interrupted write: the first 40 bytes of a third record, no newline
    with reg.open("ab") as fh:
        fh.write(complete.splitlines(keepends=True)[0][:40])
    with caplog.at_level(logging.WARNING, logger="vfr.research.trials"):
        records = read_register(reg)
    assert [r.candidate for r in records] == ["a", "b"]
    assert "torn last line" in caplog.text
    assert n_trials(reg) == 2
    # a complete JSON object that lacks only its newline is torn too (the write did not finish)
    with reg.open("ab") as fh:
        fh.write(b'{"x": 1}')
    assert len(read_register(reg)) == 2
    # the next append cuts the torn tail, so its own line starts on a fresh line
    rec = record_trial(reg, "c", "third", RESEARCH, METRICS, commit=None)
    assert rec.n_trials == 3
    assert reg.read_bytes() == complete + rec.to_line()
    assert [r.candidate for r in read_register(reg)] == ["a", "b", "c"]


def test_corrupt_line_in_the_middle_raises_naming_the_row(tmp_path):
    reg = tmp_path / "trials.jsonl"
    record_trial(reg, "a", "baseline", RESEARCH, METRICS, commit=None)
    with reg.open("ab") as fh:
        fh.write(b"not json\n")
    record_trial_line = reg.read_bytes().splitlines(keepends=True)[0]
    with reg.open("ab") as fh:
        fh.write(record_trial_line)
    with pytest.raises(DataValidationError, match=r"row 2.*not valid JSON"):
        read_register(reg)
    # a valid JSON line with an unknown segment
    bad = tmp_path / "bad.jsonl"
    data = json.loads(record_trial_line)
    data["segment"] = "2015-2019"
    bad.write_text(json.dumps(data) + "\n")
    with pytest.raises(DataValidationError, match=r"row 1.*segment must be one of"):
        read_register(bad)
    # a writer refuses to append to a corrupt register
    with pytest.raises(DataValidationError, match="row 2"):
        record_trial(reg, "b", "second", RESEARCH, METRICS, commit=None)


def test_second_holdout_touch_is_refused(tmp_path):
    reg = tmp_path / "trials.jsonl"
    assert holdout_touches(reg, "lgbm-v3") == 0
    record_holdout_touch(reg, "lgbm-v3", "about to become default", METRICS, commit=None)
    assert holdout_touches(reg, "lgbm-v3") == 1
    size = reg.stat().st_size
    with pytest.raises(HoldoutAlreadyTouchedError, match="'lgbm-v3' already touched the holdout segment 1 time"):
        record_holdout_touch(reg, "lgbm-v3", "retry after a tweak", METRICS, commit=None)
    # record_trial with segment="holdout" goes through the same check
    with pytest.raises(HoldoutAlreadyTouchedError):
        record_trial(reg, "lgbm-v3", "retry", HOLDOUT, METRICS, commit=None)
    assert reg.stat().st_size == size  # nothing written by a refused touch
    assert holdout_touches(reg, "lgbm-v3") == 1
    # another candidate has its own touch
    record_holdout_touch(reg, "lgbm-v4", "about to become default", METRICS, commit=None)
    assert holdout_touches(reg, "lgbm-v4") == 1 and n_trials(reg, "holdout") == 2


def test_forced_holdout_touch_needs_and_logs_a_reason(tmp_path, caplog):
    reg = tmp_path / "trials.jsonl"
    record_holdout_touch(reg, "c", "about to become default", METRICS, commit=None)
    with pytest.raises(ValueError, match="reason must be a non-empty string"):
        record_holdout_touch(reg, "c", "again", METRICS, force=True, commit=None)
    with pytest.raises(ValueError, match="reason must be a non-empty string"):
        record_holdout_touch(reg, "c", "again", METRICS, force=True, reason="  ", commit=None)
    with caplog.at_level(logging.WARNING, logger="vfr.research.trials"):
        rec = record_holdout_touch(reg, "c", "again", METRICS, force=True,
                                   reason="holdout prices were corrected (split bug)", commit=None)
    assert "forced holdout touch #2 of candidate 'c'" in caplog.text
    assert rec.forced is True and rec.reason == "holdout prices were corrected (split bug)"
    stored = read_register(reg)[-1]
    assert stored.forced and stored.reason.startswith("holdout prices")
    assert holdout_touches(reg, "c") == 2
    # force on a first touch records an ordinary touch
    first = record_holdout_touch(reg, "d", "first", METRICS, force=True, reason="belt and braces", commit=None)
    assert first.forced is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"candidate": " "}, "candidate must be a non-empty string"),
        ({"change": ""}, "change must be a non-empty string"),
        ({"segment": "holdout 2015-2019"}, "segment must be one of"),
        ({"metrics": [0.1, 0.2]}, "metrics must be a mapping"),
        ({"metrics": {"rank_ic": 0.1}}, r"metrics misses \['t_stat', 'sharpe_net', 'dsr'\]"),
        ({"metrics": {**METRICS, "n_trials": 3}}, "must not contain 'n_trials'"),
        ({"metrics": {**METRICS, "dsr": "high"}}, r"metrics\['dsr'\] must be a real number"),
        ({"metrics": {**METRICS, "dsr": float("inf")}}, r"metrics\['dsr'\] must be finite"),
        ({"force": True, "reason": "x"}, "force applies to holdout touches only"),
        ({"register": DIRECTORY}, "register must be a file path"),
    ],
)
def test_record_trial_input_errors(tmp_path, kwargs, message):
    args = {"register": tmp_path / "trials.jsonl", "candidate": "c", "change": "x", "segment": RESEARCH,
            "metrics": METRICS, "commit": None}
    args.update(kwargs)
    if args["register"] == DIRECTORY:
        args["register"] = tmp_path
    with pytest.raises(ValueError, match=message):
        record_trial(**args)
    assert not (tmp_path / "trials.jsonl").exists()


def test_commit_is_recorded_automatically():
    commit = git_commit()
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        assert commit is None or isinstance(commit, str)
        return
    assert commit is not None
    sha = commit.removesuffix("-dirty")
    assert len(sha) == 40 and all(ch in "0123456789abcdef" for ch in sha)


def test_commit_is_none_outside_a_repository(tmp_path):
    assert git_commit(tmp_path) is None


def test_default_register_path(tmp_path):
    settings = Settings(home=tmp_path / "home")
    path = default_register_path(settings)
    assert path == tmp_path / "home" / "reports" / "trials.jsonl"
    assert path.parent.is_dir()


def _append_many(path: str, worker: int, count: int) -> None:
    for i in range(count):
        record_trial(path, f"w{worker}-{i}", "concurrent append", RESEARCH, METRICS, commit=None)


def test_concurrent_writers_keep_every_line_and_count(tmp_path):
    """Two processes append 25 trials each: 50 complete lines, n_trials 1..50 without gaps."""
    reg = str(tmp_path / "trials.jsonl")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(reg, w, 25)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    records = read_register(reg)
    assert len(records) == 50
    assert sorted(r.n_trials for r in records) == list(range(1, 51))
    assert [r.n_trials for r in records] == list(range(1, 51))  # written in count order under the lock
    frame = register_frame(reg)
    assert frame["candidate"].str.match(r"w[01]-\d+").all() and isinstance(frame, pd.DataFrame)
