"""The champion's scores of a day, computed once and read back without MLflow or the model library.

``vfr select --include-ml`` used to load MLflow and the model's library on every call (several
seconds of imports) to score one cross-section that does not change until the features or the
champion do. This module keeps each scored cross-section as a small JSON file keyed by

* the champion version, read from a **champion pointer**: a file beside the local tracking
  database (``sqlite:`` URIs only) that :class:`vfr.ml.registry.ModelRegistry` rewrites whenever
  it sets or reads the champion alias. The pointer records the database's stamp (size and
  modification time of the file and of its write-ahead log) taken *before* the alias was read,
  and counts only while the database still has that stamp: any write to the registry since (a
  new version, the alias moved by another process or outside VFR) makes it stale, and the
  caller takes the full path, which rewrites it. (A write within the file system's timestamp
  granularity, about 4 ms, of the stamp that leaves the size unchanged is the one case not
  seen.) A remote tracking server has no pointer (always the full path);
* the artifact's registered SHA-256 (a registry rebuilt from scratch numbers its versions from 1
  again: its v1 is not the old v1);
* the day, and a fingerprint of that day's feature rows (rebuilt features miss the cache).

Pure file I/O (``json``, ``hashlib``); pandas for the fingerprint. Files are written
atomically (:func:`vfr._util.atomic_write`), so a reader never sees a part.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vfr._util import atomic_write

if TYPE_CHECKING:
    from vfr.config import Settings

__all__ = ["CachedScores", "ScoreCache", "champion_pointer_path", "features_fingerprint", "read_champion_pointer",
           "tracking_db_stamp", "write_champion_pointer"]

_SQLITE = "sqlite:///"


def champion_pointer_path(tracking_uri: str, name: str) -> Path | None:
    """Where the champion pointer of ``name`` lives: ``vfr-champions/<name>.json`` beside a local
    SQLite tracking database; None for any other tracking URI."""
    if not tracking_uri.startswith(_SQLITE):
        return None
    db = Path(tracking_uri[len(_SQLITE):])
    return db.parent / "vfr-champions" / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.json"


def tracking_db_stamp(tracking_uri: str) -> list[int] | None:
    """Size and modification time (ns) of a local SQLite tracking database and of its ``-wal``
    file, or None (no such database, or not a ``sqlite:`` URI)."""
    path = champion_pointer_path(tracking_uri, "")
    if path is None:
        return None
    db = Path(tracking_uri[len(_SQLITE):])
    stamp: list[int] = []
    try:
        for p in (db, Path(f"{db}-wal")):
            if p.exists():
                st = os.stat(p)
                stamp += [st.st_size, st.st_mtime_ns]
            else:
                stamp += [-1, -1]
    except OSError:
        return None
    return stamp


def write_champion_pointer(tracking_uri: str, name: str, version: str | None, stamp: list[int] | None,
                           digest: str | None = None) -> bool:
    """Record (atomically) that ``version`` (whose artifact has the registered SHA-256 ``digest``)
    was the champion of ``name`` when the tracking database had ``stamp`` (:func:`tracking_db_stamp`,
    taken before the alias was read); ``version`` or ``stamp`` None removes the pointer. Best
    effort: False when nothing could be written (a read-only home, or a tracking URI without a
    pointer), which only costs the cache's speed."""
    path = champion_pointer_path(tracking_uri, name)
    if path is None:
        return False
    try:
        if version is None or stamp is None:
            path.unlink(missing_ok=True)
            return False
        text = json.dumps({"name": name, "version": str(version), "digest": digest or "", "stamp": stamp})
        atomic_write(path, lambda tmp: tmp.write_text(text))
    except OSError:
        return False
    return True


def read_champion_pointer(tracking_uri: str, name: str) -> tuple[str, str] | None:
    """The champion ``(version, digest)`` the pointer records (``digest``: the artifact's registered
    SHA-256, "" for a version registered before checksums), or None when there is no pointer or the
    tracking database was written since its stamp: then ask the registry."""
    path = champion_pointer_path(tracking_uri, name)
    if path is None:
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    stamp = tracking_db_stamp(tracking_uri)
    if stamp is None or record.get("stamp") != stamp or record.get("name") != name or "version" not in record:
        return None
    return str(record["version"]), str(record.get("digest", ""))


def features_fingerprint(rows: pd.DataFrame) -> str:
    """A digest of a day's feature rows (order-free: rows sorted by symbol, columns by name)."""
    frame = rows.sort_values("symbol", kind="stable")[sorted(rows.columns)]
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:24]


class CachedScores:
    """A day's stored probabilities standing in for the model: ``predict_proba(rows)`` by symbol.

    Raises ``KeyError`` from :meth:`predict_proba` for a symbol that was not scored.
    """

    def __init__(self, probs: pd.Series, version: str) -> None:
        self.probs = probs
        self.version = version

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Probability of each row's symbol, shape ``(n_rows,)``."""
        found = features["symbol"].map(self.probs)
        if found.isna().any():
            missing = features.loc[found.isna(), "symbol"].head(5).tolist()
            raise KeyError(f"no cached score for {missing}")
        return found.to_numpy(dtype="float64")


class ScoreCache:
    """Scored cross-sections of registered models, one JSON file per (model, version, day, fingerprint).

    Parameters
    ----------
    root : Path
        Folder of the cache (``<VFR_HOME>/cache/scores`` from :meth:`from_settings`).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> ScoreCache:
        return cls(settings.home_dir / "cache" / "scores")

    def _path(self, name: str, version: str, digest: str, day: pd.Timestamp, fingerprint: str) -> Path:
        model = hashlib.sha256(name.encode()).hexdigest()[:16]
        return self.root / model / f"v{version}-{digest[:16]}" / f"{pd.Timestamp(day).date()}-{fingerprint}.json"

    def read(self, name: str, version: str, digest: str, day: pd.Timestamp, fingerprint: str) -> CachedScores | None:
        """The stored scores of the model ``name`` at ``version`` with artifact ``digest`` (so a
        registry rebuilt from scratch, whose version numbers start again, never matches), or None
        (no file, or an unreadable one)."""
        path = self._path(name, version, digest, day, fingerprint)
        try:
            record = json.loads(path.read_text())
            probs = pd.Series(record["prob"], index=record["symbol"], dtype="float64")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return CachedScores(probs, str(version))

    def write(self, name: str, version: str, digest: str, day: pd.Timestamp, fingerprint: str, symbols: pd.Series,
              probs: np.ndarray) -> Path:
        """Store a day's probabilities (``symbols`` and ``probs`` aligned, shape ``(n,)``), atomically.

        Raises
        ------
        ValueError
            ``symbols`` and ``probs`` differ in length, or a probability is not finite.
        """
        probs = np.asarray(probs, dtype="float64")
        if len(symbols) != probs.size or not np.isfinite(probs).all():
            raise ValueError(f"ScoreCache.write: {len(symbols)} symbols and {probs.size} finite probabilities needed")
        text = json.dumps({"name": name, "version": str(version), "digest": digest,
                           "date": str(pd.Timestamp(day).date()),
                           "fingerprint": fingerprint, "symbol": [str(s) for s in symbols],
                           "prob": probs.tolist()})
        return atomic_write(self._path(name, version, digest, day, fingerprint), lambda tmp: tmp.write_text(text))
