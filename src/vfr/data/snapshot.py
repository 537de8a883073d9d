"""Read-only snapshots of the embedded DuckDB store: readers and writers at the same time.

DuckDB lets one process open a database file for writing, or any number of processes open it
read-only, never both. A long-running reader (``vfr serve``, any number of workers) would
therefore lock every writer out (``vfr data ingest``, ``vfr features build``, ``vfr train``).
So readers never open the store file itself:

* once a reader has asked for one (the first :meth:`vfr.data.MarketStore.reader` publishes the
  first snapshot and so creates the snapshot folder; a store nobody serves pays nothing), every
  :class:`vfr.data.MarketStore` that wrote publishes a new snapshot when it is closed
  (:func:`publish`): ``CHECKPOINT`` (the write-ahead log is merged into the file), then, still
  holding DuckDB's exclusive lock so no other writer can change the file meanwhile, the file is
  copied to ``<store>.snapshots/<stem>-<ns>.duckdb`` (written to a ``.tmp`` name, fsynced, renamed)
  and the pointer file ``<store>.snapshots/CURRENT`` is replaced atomically (write, fsync,
  rename) to name it;
* readers open the snapshot named by ``CURRENT`` read-only (:func:`current`) and re-read the
  pointer to pick up newer ones.

A crash (kill -9) at any moment leaves ``CURRENT`` naming a complete snapshot (the old one
until the rename); stray ``.tmp`` files are removed by the next publish. Old snapshots are
deleted after :data:`KEEP` newer ones exist; a reader that still has one open keeps reading it
(POSIX unlink semantics) until it switches.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from vfr._util import atomic_write

#: Snapshots kept besides the current one (a reader that has not switched yet still has its file;
#: one that already had it open keeps reading it after the unlink anyway).
KEEP = 1
POINTER = "CURRENT"


def snapshot_dir(db_file: str | Path) -> Path:
    """Folder of the snapshots of the DuckDB file ``db_file``."""
    p = Path(db_file).expanduser()
    return p.with_name(p.name + ".snapshots")


def publish(db_file: str | Path, con: object) -> Path:
    """Copy the checkpointed DuckDB file to a new snapshot and point ``CURRENT`` at it.

    Parameters
    ----------
    db_file : path
        The store's DuckDB file.
    con : duckdb connection
        An open read-write connection to ``db_file`` (its process holds DuckDB's exclusive
        lock during the copy, so the file cannot change under it).

    Returns
    -------
    Path
        The new snapshot file.
    """
    src = Path(db_file).expanduser()
    folder = snapshot_dir(src)
    folder.mkdir(parents=True, exist_ok=True)
    con.execute("CHECKPOINT")  # type: ignore[attr-defined]
    name = f"{src.stem}-{time.time_ns()}.duckdb"
    final = atomic_write(folder / name, lambda tmp: shutil.copyfile(src, tmp))
    atomic_write(folder / POINTER, lambda tmp: tmp.write_text(name + "\n"))
    _prune(folder, keep=name)
    return final


def _prune(folder: Path, keep: str) -> None:
    """Remove stray temporary files and all but the newest :data:`KEEP` older snapshots."""
    for tmp in folder.glob("*.tmp"):
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    older = sorted((p for p in folder.glob("*.duckdb") if p.name != keep), key=lambda p: p.name)
    for p in older[:-KEEP] if KEEP else older:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def current(db_file: str | Path) -> Path | None:
    """The snapshot ``CURRENT`` names, or None when none was published (or it is missing)."""
    folder = snapshot_dir(db_file)
    try:
        name = (folder / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    path = folder / name
    return path if name and path.exists() else None
