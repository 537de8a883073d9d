"""vfr._util.atomic_write: the one atomic file replacement the stores, lineage, downloads and
the prediction log share. A failed writer leaves the old file, and a writer killed with
SIGKILL in the middle of writing leaves the old file whole (real files, a real process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from vfr._util import atomic_write, fsync_dir


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.txt"  # the folder is created
    assert atomic_write(target, lambda tmp: tmp.write_text("one")) == target
    atomic_write(target, lambda tmp: tmp.write_text("two"))
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]
    fsync_dir(target.parent)  # a plain folder: no error


def test_failed_writer_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "frame.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(target)

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"PAR1 half a file")
        raise ValueError("bad value in row 3")

    with pytest.raises(ValueError, match="row 3"):
        atomic_write(target, half_then_fail)
    assert pd.read_parquet(target)["a"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["frame.parquet"]


CHILD = """
import sys, time
from pathlib import Path
from vfr._util import atomic_write

def slow(tmp):
    with tmp.open("w") as fh:
        fh.write("new-" * 1000)
        fh.flush()
        print("writing", flush=True)
        time.sleep(60)

atomic_write(Path(sys.argv[1]), slow)
"""


def test_kill_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "pointer"
    target.write_text("old")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"
        stray = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(stray) == 1 and stray[0].stat().st_size > 0  # the new content is on its way
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert target.read_text() == "old"
    # the next write succeeds; the stray temporary is a dot-file no reader takes for the target
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new"
