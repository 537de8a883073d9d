"""Readers and writers at the same time on the embedded DuckDB store (issue 16): writers publish
read-only snapshots, readers (the API, any number of worker processes) read them. Real DuckDB
files and real processes; a writer killed with SIGKILL mid-publish loses nothing published."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from vfr.data import MarketStore, snapshot


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"k": range(n), "v": [float(i) for i in range(n)]})


def _python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_writer_publishes_and_readers_never_block_it(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'vfr.duckdb'}"
    with MarketStore(url) as store:
        store.replace_table("t", _frame(3))
    assert snapshot.current(tmp_path / "vfr.duckdb") is None  # nobody reads snapshots yet: no copy
    MarketStore.reader(url).close()  # the first reader publishes the first one
    first = snapshot.current(tmp_path / "vfr.duckdb")
    assert first is not None and first.parent == snapshot.snapshot_dir(tmp_path / "vfr.duckdb")
    # two reader processes (two API workers) hold the snapshot open while this process writes;
    # each says when it has read, and reads again once the write is done (no timing assumptions)
    written = tmp_path / "written"
    reader = f"""
        import time
        from pathlib import Path
        from vfr.data import MarketStore
        r = MarketStore.reader({url!r})
        print(len(r.read_table("t")), flush=True)
        deadline = time.monotonic() + 120
        while not Path({str(written)!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        print(len(r.read_table("t")), r.snapshot_is_stale())
        r.close()
        print(len(MarketStore.reader({url!r}).read_table("t")))
    """
    procs = [_python(reader), _python(reader)]
    firsts = [p.stdout.readline().strip() for p in procs]  # both hold the snapshot open now
    with MarketStore(url) as store:  # would fail with "Could not set lock" if a reader held the file
        store.replace_table("t", _frame(5))
    written.touch()
    for p, old in zip(procs, firsts, strict=True):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        still, stale, fresh = out.split()
        assert (old, still, stale, fresh) == ("3", "3", "True", "5")  # a snapshot never changes under a reader
    # old snapshots are pruned, the current one kept
    kept = sorted(p.name for p in snapshot.snapshot_dir(tmp_path / "vfr.duckdb").glob("*.duckdb"))
    assert snapshot.current(tmp_path / "vfr.duckdb").name in kept and len(kept) <= snapshot.KEEP + 1


def test_reads_do_not_publish_and_readers_cannot_write(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'vfr.duckdb'}"
    with MarketStore(url) as store:
        store.replace_table("t", _frame(2))
    MarketStore.reader(url).close()
    first = snapshot.current(tmp_path / "vfr.duckdb")
    with MarketStore(url) as store:
        store.read_table("t")
    assert snapshot.current(tmp_path / "vfr.duckdb") == first
    reader = MarketStore.reader(url)
    with pytest.raises(Exception, match="read-only|Cannot execute"):
        reader.replace_table("u", _frame(1))
    reader.close()


def test_reader_publishes_a_first_snapshot_and_names_a_missing_store(tmp_path: Path) -> None:
    from vfr.errors import StageError

    with pytest.raises(StageError, match="vfr data ingest"):
        MarketStore.reader(f"duckdb:///{tmp_path / 'none.duckdb'}")
    db = tmp_path / "old.duckdb"
    import duckdb

    con = duckdb.connect(str(db))  # a store written before snapshots existed
    con.execute("CREATE TABLE t AS SELECT 1 AS k")
    con.close()
    reader = MarketStore.reader(f"duckdb:///{db}")
    assert len(reader.read_table("t")) == 1 and reader.snapshot == snapshot.current(db)
    reader.close()


def test_sigkill_during_publish_leaves_a_complete_snapshot_and_no_lock(tmp_path: Path) -> None:
    db = tmp_path / "vfr.duckdb"
    url = f"duckdb:///{db}"
    with MarketStore(url) as store:
        store.replace_table("t", _frame(10))
    MarketStore.reader(url).close()
    writer = f"""
        import pandas as pd
        from vfr.data import MarketStore
        n = 200_000
        while True:
            n += 1
            with MarketStore({url!r}) as s:
                s.replace_table("t", pd.DataFrame({{"k": range(n), "v": [0.5] * n}}))
    """
    for delay in (1.5, 2.2, 3.1):
        p = _python(writer)
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        snap = snapshot.current(db)
        assert snap is not None
        reader = MarketStore.reader(url)
        n = len(reader.read_table("t"))
        assert n == 10 or n > 200_000  # one complete table, never a torn one
        reader.close()
        with MarketStore(url) as store:  # nothing stays locked after the kill
            assert store.has_table("t")
    # a stray .tmp a kill may have left is removed by the next publish
    with MarketStore(url) as store:
        store.replace_table("t", _frame(4))
    assert not list(snapshot.snapshot_dir(db).glob("*.tmp"))


def test_serving_switches_to_a_newer_snapshot(tmp_path: Path) -> None:
    from vfr.config import Settings
    from vfr.serving.cache import TTLCache
    from vfr.serving.features import SNAPSHOT_CHECK_S, FeatureService

    url = f"duckdb:///{tmp_path / 'vfr.duckdb'}"
    feats = pd.DataFrame({"symbol": ["A", "B"], "date": pd.to_datetime(["2020-01-02", "2020-01-02"]),
                          "x": [1.0, 2.0]})
    with MarketStore(url) as store:
        store.replace_table("features", feats)
    service = FeatureService(Settings(home=tmp_path, store_url=url), TTLCache(None))
    try:
        assert service.latest_date() == pd.Timestamp("2020-01-02")
        later = feats.assign(date=pd.Timestamp("2020-01-03"))
        with MarketStore(url) as store:  # the API holds its snapshot; the writer is not blocked
            store.replace_table("features", pd.concat([feats, later]))
        time.sleep(SNAPSHOT_CHECK_S + 0.2)
        assert service.latest_date() == pd.Timestamp("2020-01-03")
        assert len(service.features_for(pd.Timestamp("2020-01-03"))) == 2
    finally:
        service.close()
