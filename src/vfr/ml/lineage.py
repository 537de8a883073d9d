"""Dataset lineage: where a training dataset came from and how to recognise it again.

A :class:`DatasetLineage` records the sources (tables or files, their rows and date span),
the dataset's date range, size and fingerprint (:func:`vfr.ml.dataset.data_fingerprint` of the
labelled rows, the same value as ``TrainResult.data_fingerprint``), the version of every
feature's definition, the label definition, and the code and library versions that built it.
It is a plain record: :meth:`DatasetLineage.to_json` / :meth:`DatasetLineage.from_dict` round
trip it, :func:`write_lineage` stores it atomically.

Feature versions: VFR's feature definitions (:class:`vfr.features.FeatureDef` in
:data:`vfr.features.ALL_FEATURES` and the ratio / text-sentiment registries) carry no version
number, so a feature's version is the first 16 hex digits of the SHA-256 of its definition
(name, group, description, window, source, lag, ranked). Any change of the formula text,
window or source changes it. ``<name>_rank`` columns get the version of ``<name>``'s definition
hashed with the rank transform. Columns without a registered definition get ``None``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr._util import atomic_write, json_safe
from vfr.config import HORIZONS
from vfr.data.store import is_sorted_by
from vfr.features.catalogue import (
    ALL_FEATURES,
    LEVEL_RATIO_FEATURES_DEFS,
    RATIO_FEATURES_DEFS,
    alpha158_feature_defs,
)
from vfr.features.definitions import SENTIMENT_FEATURES, FeatureDef
from vfr.ml.dataset import data_fingerprint

#: Version of the lineage record layout (bumped when fields change meaning).
LINEAGE_SCHEMA_VERSION = 1
#: Libraries whose versions are recorded (distribution names).
LIBRARIES: tuple[str, ...] = ("pandas", "numpy", "lightgbm", "scikit-learn")
_RANK_SUFFIX = "_rank"


@dataclass(frozen=True)
class DatasetLineage:
    """Provenance of one training dataset (see the module docstring).

    Attributes
    ----------
    sources : tuple of dict
        One per input: ``name`` (table or data set name), ``rows``, ``min_date``,
        ``max_date`` (ISO dates or None) and ``path`` (file path or URL, None if unknown);
        extra JSON-safe keys are kept.
    date_range : tuple of 2 str
        First and last date of the dataset (ISO ``YYYY-MM-DD``).
    n_rows, n_labelled_rows, n_symbols : int
        Rows, rows with a known label, distinct symbols.
    fingerprint : str
        SHA-256 (hex) of the labelled rows (date, symbol, features, label) in (date, symbol)
        order: :func:`vfr.ml.dataset.data_fingerprint`.
    feature_columns : tuple of str
        Model inputs in order.
    feature_versions : dict of str to str or None
        Feature column -> 16-hex-digit hash of its definition (None when unregistered).
    label : dict
        ``name`` (column), ``horizon`` (name or None), ``horizon_days``, ``definition``.
    created_at : str
        UTC ISO 8601 time the record was built.
    code : dict
        ``vfr_version`` and ``git_commit`` (None outside a git checkout).
    libraries : dict of str to str or None
        Installed versions of :data:`LIBRARIES` (None when not installed).
    schema_version : int
        :data:`LINEAGE_SCHEMA_VERSION` of the layout.
    """

    sources: tuple[dict[str, Any], ...]
    date_range: tuple[str, str]
    n_rows: int
    n_labelled_rows: int
    n_symbols: int
    fingerprint: str
    feature_columns: tuple[str, ...]
    feature_versions: dict[str, str | None]
    label: dict[str, Any]
    created_at: str
    code: dict[str, str | None]
    libraries: dict[str, str | None]
    schema_version: int = LINEAGE_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples), ready for JSON."""
        out = dataclasses.asdict(self)
        out["sources"] = [dict(s) for s in self.sources]
        out["date_range"] = list(self.date_range)
        out["feature_columns"] = list(self.feature_columns)
        return out

    def to_json(self, *, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict` (keys sorted, so equal records give equal text)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetLineage:
        """Rebuild a record from :meth:`to_dict` output (or parsed JSON).

        Raises
        ------
        ValueError
            If a field is missing or unknown, or the schema version is newer than this code.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing = sorted(required - set(data))
        unknown = sorted(set(data) - names)
        if missing or unknown:
            raise ValueError(f"DatasetLineage.from_dict: missing fields {missing}, unknown fields {unknown}")
        version = int(data.get("schema_version", LINEAGE_SCHEMA_VERSION))
        if version > LINEAGE_SCHEMA_VERSION:
            raise ValueError(f"DatasetLineage.from_dict: schema_version {version} is newer than "
                             f"{LINEAGE_SCHEMA_VERSION} (upgrade vfr)")
        first, last = data["date_range"]
        return cls(
            sources=tuple(dict(s) for s in data["sources"]), date_range=(first, last),
            n_rows=int(data["n_rows"]), n_labelled_rows=int(data["n_labelled_rows"]),
            n_symbols=int(data["n_symbols"]), fingerprint=str(data["fingerprint"]),
            feature_columns=tuple(data["feature_columns"]), feature_versions=dict(data["feature_versions"]),
            label=dict(data["label"]), created_at=str(data["created_at"]), code=dict(data["code"]),
            libraries=dict(data["libraries"]), schema_version=version,
        )

    @classmethod
    def from_json(cls, text: str) -> DatasetLineage:
        """Rebuild a record from :meth:`to_json` text."""
        return cls.from_dict(json.loads(text))


# -- feature versions ----------------------------------------------------------------------
def feature_definitions() -> dict[str, FeatureDef]:
    """Every registered feature definition by name (technical, fundamental, provider ratios,
    the level ratios built with a split table, macro, alternative, sentiment, interaction and
    the opt-in Alpha158 group)."""
    out: dict[str, FeatureDef] = {}
    for d in (*ALL_FEATURES, *RATIO_FEATURES_DEFS, *LEVEL_RATIO_FEATURES_DEFS, *SENTIMENT_FEATURES,
              *alpha158_feature_defs()):
        out.setdefault(d.name, d)
    return out


def definition_hash(definition: FeatureDef, *, rank: bool = False) -> str:
    """16 hex digits of the SHA-256 of a definition's fields (canonical JSON).

    Parameters
    ----------
    definition : FeatureDef
    rank : bool
        Hash the definition of its cross-sectional rank column ``<name>_rank`` instead.
    """
    payload = dataclasses.asdict(definition)
    if rank:
        payload = {"rank_of": payload, "transform": "cross-sectional percentile rank per date"}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def feature_versions(columns: Iterable[str],
                     definitions: Mapping[str, FeatureDef] | None = None) -> dict[str, str | None]:
    """Version (definition hash) of each feature column.

    Parameters
    ----------
    columns : iterable of str
        Feature columns; ``<name>_rank`` resolves to ``<name>``'s definition unless a
        definition of that exact name exists.
    definitions : mapping of str to FeatureDef, optional
        Registry to use; default :func:`feature_definitions`.

    Returns
    -------
    dict of str to str or None
        Column -> :func:`definition_hash`; None for columns without a definition.
    """
    defs = feature_definitions() if definitions is None else definitions
    out: dict[str, str | None] = {}
    for c in columns:
        if c in defs:
            out[c] = definition_hash(defs[c])
        elif c.endswith(_RANK_SUFFIX) and c[: -len(_RANK_SUFFIX)] in defs:
            out[c] = definition_hash(defs[c[: -len(_RANK_SUFFIX)]], rank=True)
        else:
            out[c] = None
    return out


# -- code and environment ------------------------------------------------------------------
def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit(path: str | os.PathLike[str] | None = None) -> str | None:
    """Full commit hash of the git checkout holding ``path`` (default: the vfr package).

    Returns None, never raises, when git is missing, the path is not tracked in a checkout
    (e.g. vfr installed in site-packages of a venv that lives inside some other repository),
    or git takes over 5 seconds.
    """
    if path is None:
        import vfr

        path = Path(vfr.__file__).resolve().parent
    folder = Path(path)
    folder = folder if folder.is_dir() else folder.parent
    try:
        # The package's own file must be tracked there, else the commit would be another repo's.
        tracked = subprocess.run(["git", "-C", str(folder), "ls-files", "--error-unmatch", "--", "."],
                                 capture_output=True, text=True, timeout=5, check=False)
        if tracked.returncode != 0:
            return None
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def code_versions() -> dict[str, str | None]:
    """``vfr_version`` (installed distribution, else ``vfr.__version__``) and ``git_commit``."""
    import vfr

    return {"vfr_version": _dist_version("vfr") or getattr(vfr, "__version__", None), "git_commit": git_commit()}


def library_versions(names: Sequence[str] = LIBRARIES) -> dict[str, str | None]:
    """Installed version of each distribution in ``names`` (None when not installed)."""
    return {n: _dist_version(n) for n in names}


# -- sources -------------------------------------------------------------------------------
def _iso_date(v: Any) -> str | None:
    if v is None or pd.isna(v):
        return None
    return pd.Timestamp(v).date().isoformat()


def describe_source(name: str, frame: pd.DataFrame, *, path: str | os.PathLike[str] | None = None,
                    date_column: str = "date") -> dict[str, Any]:
    """A lineage source entry for an input frame.

    Parameters
    ----------
    name : str
        Table or data set name (e.g. ``prices_daily``).
    frame : DataFrame
        The rows read from it.
    path : str or path-like, optional
        File path or URL it was read from.
    date_column : str
        Column holding the dates (its min and max are recorded when present).

    Returns
    -------
    dict
        ``name``, ``rows``, ``min_date``, ``max_date`` (ISO or None), ``path`` (str or None)
        and ``n_symbols`` when the frame has a ``symbol`` column.
    """
    has_dates = date_column in frame.columns and len(frame)
    dates = pd.to_datetime(frame[date_column]) if has_dates else None
    out: dict[str, Any] = {
        "name": name, "rows": len(frame),
        "min_date": _iso_date(dates.min()) if dates is not None else None,
        "max_date": _iso_date(dates.max()) if dates is not None else None,
        "path": None if path is None else os.fspath(path),
    }
    if "symbol" in frame.columns:
        out["n_symbols"] = int(frame["symbol"].nunique())
    return out


def _normalise_sources(sources: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    out = []
    for i, s in enumerate(sources):
        if not isinstance(s, Mapping):
            raise TypeError(f"build_lineage: source {i} must be a mapping, got {type(s).__name__}")
        name = s.get("name", s.get("table"))
        if not name:
            raise ValueError(f"build_lineage: source {i} has no 'name' (or 'table'): {dict(s)!r}")
        entry = {"name": str(name), "rows": s.get("rows"), "min_date": _iso_date(s.get("min_date")),
                 "max_date": _iso_date(s.get("max_date")), "path": s.get("path", s.get("url"))}
        for k, v in s.items():
            if k not in ("name", "min_date", "max_date") and k not in entry:
                entry[str(k)] = v
        out.append(json_safe(entry, where=f"source {name!r}"))
    return tuple(out)


# -- build / write -------------------------------------------------------------------------
def _label_definition(label: str, horizon: str | int) -> dict[str, Any]:
    if isinstance(horizon, str):
        if horizon not in HORIZONS:
            raise ValueError(f"build_lineage: unknown horizon {horizon!r}; expected one of {sorted(HORIZONS)} "
                             "or a number of trading days")
        name: str | None = horizon
        days = HORIZONS[horizon]
    elif isinstance(horizon, int | np.integer) and not isinstance(horizon, bool) and horizon >= 1:
        days = int(horizon)
        name = next((k for k, v in HORIZONS.items() if label.endswith(f"_{k}") and v == days), None)
    else:
        raise ValueError(f"build_lineage: horizon must be a horizon name or a positive integer, got {horizon!r}")
    kind = label.split("_")[1] if label.startswith("fwd_") and label.count("_") >= 2 else ""
    text = {
        "ret": f"close[t+{days}] / close[t] - 1 (fraction), per symbol in trading rows",
        "excess": f"fwd_ret over {days} trading days minus its cross-sectional mean on date t",
        "dir": f"1.0 if the {days}-day excess return > 0 else 0.0; NaN if unknown",
    }.get(kind, f"user label over {days} trading days")
    return {"name": label, "horizon": name, "horizon_days": days,
            "definition": f"{text}; window (t, t+{days}] starts after the feature date (vfr.ml.labels)"}


def build_lineage(dataset: pd.DataFrame, *, feature_columns: Sequence[str], label: str, horizon: str | int,
                  sources: Iterable[Mapping[str, Any]],
                  definitions: Mapping[str, FeatureDef] | None = None,
                  created_at: datetime | None = None) -> DatasetLineage:
    """The lineage record of a training dataset.

    Parameters
    ----------
    dataset : DataFrame of shape (n_rows, >= 3)
        Features joined with labels (:func:`vfr.ml.build_dataset`): ``symbol``, ``date``,
        ``feature_columns`` and ``label``.
    feature_columns : sequence of str
        Model inputs in order.
    label : str
        Label column (e.g. ``fwd_dir_1w``).
    horizon : str or int
        Horizon name (``1d``, ``1w``, ``1m``) or trading days.
    sources : iterable of mapping
        Inputs of the dataset: each with ``name`` (or ``table``) and, where known, ``rows``,
        ``min_date``, ``max_date``, ``path`` (or ``url``); :func:`describe_source` builds one
        from a frame. Other JSON-safe keys are kept.
    definitions : mapping of str to FeatureDef, optional
        Feature registry for the versions; default every registered VFR feature.
    created_at : datetime, optional
        Record time (default now, UTC); naive values are taken as UTC.

    Returns
    -------
    DatasetLineage

    Raises
    ------
    ValueError
        If a column is missing, the dataset is empty, the horizon is unknown, or a source
        has no name.
    TypeError
        If a source is not a mapping or holds a value that cannot be stored as JSON (the
        message names the source).
    """
    feature_columns = list(feature_columns)
    missing = [c for c in ["symbol", "date", *feature_columns, label] if c not in dataset.columns]
    if missing:
        raise ValueError(f"build_lineage: columns missing from the dataset: {missing}")
    if dataset.empty:
        raise ValueError("build_lineage: the dataset has no rows")
    label_def = _label_definition(label, horizon)
    ordered = dataset if is_sorted_by(dataset, ["date", "symbol"]) else \
        dataset.sort_values(["date", "symbol"], kind="stable")
    known = ordered[label].notna().to_numpy()
    dates = pd.to_datetime(dataset["date"])
    stamp = created_at or datetime.now(UTC)
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    return DatasetLineage(
        sources=_normalise_sources(sources),
        date_range=(_iso_date(dates.min()) or "", _iso_date(dates.max()) or ""),
        n_rows=len(dataset), n_labelled_rows=int(known.sum()), n_symbols=int(dataset["symbol"].nunique()),
        fingerprint=data_fingerprint(ordered, [*feature_columns, label], rows=known),
        feature_columns=tuple(feature_columns),
        feature_versions=feature_versions(feature_columns, definitions),
        label=label_def, created_at=stamp.isoformat(), code=code_versions(), libraries=library_versions(),
    )


def write_lineage(lineage: DatasetLineage, path: str | os.PathLike[str]) -> Path:
    """Write the lineage JSON to ``path`` atomically.

    Through :func:`vfr._util.atomic_write`: the text goes to a temporary file in the same folder,
    is flushed to disk, then renamed over ``path``; readers see the old file or the new one,
    never a part. On any failure the temporary file is removed and an existing ``path`` is left
    untouched.

    Parameters
    ----------
    lineage : DatasetLineage
    path : str or path-like
        Target file; its folder is created if needed.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    TypeError, ValueError
        If the record holds a value JSON cannot store (nothing is written).
    OSError
        If the folder cannot be written.
    """
    def dump(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as fh:
            # Streamed: a bad value deep in the record fails after part of the text is written,
            # which is exactly the case the temporary file protects against.
            json.dump(lineage.to_dict(), fh, indent=2, sort_keys=True, allow_nan=False)
            fh.write("\n")

    return atomic_write(path, dump)


def read_lineage(path: str | os.PathLike[str]) -> DatasetLineage:
    """Read a record written by :func:`write_lineage`."""
    return DatasetLineage.from_json(Path(path).read_text(encoding="utf-8"))
