"""The trials register: one append-only JSON-lines file, one line per research evaluation.

Every comparison VFR reports is a *trial*; the number of trials ``N`` is what the deflated
Sharpe ratio (:func:`vfr.metrics.overfitting.deflated_sharpe_ratio`) corrects for, so each
evaluation is recorded here before its result is looked at, including the ones that lost.
The holdout segment (2015-2019) is evaluated once per candidate about to become the default:
:func:`record_holdout_touch` refuses a second touch of the same candidate unless forced with a
reason, which is logged in the register. The protocol is in ``docs/research.md``.

File format (one JSON object per line, UTF-8, ``\\n``-terminated)::

    {"version": 1, "timestamp": "2025-01-02T03:04:05.123456+00:00", "candidate": "lgbm-v3",
     "change": "added sector-neutral momentum", "segment": "research",
     "metrics": {"rank_ic": 0.021, "t_stat": 2.4, "sharpe_net": 0.61, "dsr": 0.83},
     "n_trials": 17, "commit": "1a2b3c4...", "forced": false, "reason": null}

``n_trials`` is the number of trials of that segment in the register, this one included,
counted by the register itself when the line is written. Metric values are floats or
``null`` (not computed, or NaN).

Durability: a line is written with one ``write`` on a file opened in append mode and then
``fsync``-ed, under an exclusive ``flock`` (POSIX) held while the register is read, checked
and appended, so two processes cannot both pass the holdout check. A crash can only leave a
*torn* last line (no final newline): readers ignore it and the next writer truncates it
before appending. A malformed line anywhere else is corruption and raises
:class:`~vfr.errors.DataValidationError` naming the file and row.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from vfr._util import fsync_dir
from vfr.errors import DataValidationError, VFRError

try:  # POSIX advisory locks; elsewhere the register is single-writer
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from vfr.config import Settings

__all__ = [
    "HOLDOUT",
    "METRIC_KEYS",
    "RESEARCH",
    "SEGMENTS",
    "HoldoutAlreadyTouchedError",
    "TrialRecord",
    "default_register_path",
    "git_commit",
    "holdout_touches",
    "n_trials",
    "read_register",
    "record_holdout_touch",
    "record_trial",
    "register_frame",
]

log = logging.getLogger(__name__)

#: Segment names and their inclusive date spans (the research protocol of docs/research.md).
RESEARCH = "research"
HOLDOUT = "holdout"
SEGMENTS: dict[str, tuple[date, date]] = {
    RESEARCH: (date(2002, 1, 1), date(2014, 12, 31)),
    HOLDOUT: (date(2015, 1, 1), date(2019, 12, 31)),
}

#: Metrics every trial reports (value ``None`` when not computable): Rank IC (mean of the daily
#: cross-sectional Spearman IC), its t-statistic on non-overlapping dates at the label horizon,
#: the Sharpe ratio of the net-of-cost (10 bp) portfolio, and the deflated Sharpe ratio.
METRIC_KEYS: tuple[str, ...] = ("rank_ic", "t_stat", "sharpe_net", "dsr")

_VERSION = 1
_FIELDS = ("version", "timestamp", "candidate", "change", "segment", "metrics", "n_trials", "commit",
           "forced", "reason")


class HoldoutAlreadyTouchedError(VFRError, RuntimeError):
    """A candidate's holdout segment was already evaluated; a second touch needs ``force=True`` and a reason."""


@dataclass(frozen=True)
class TrialRecord:
    """One line of the register.

    Attributes
    ----------
    timestamp : str
        ISO 8601 UTC time of the record (``...+00:00``).
    candidate : str
        Name of the evaluated candidate (model / factor set / configuration).
    change : str
        What changed against the previous candidate or the default.
    segment : str
        ``"research"`` (2002-01-01..2014-12-31) or ``"holdout"`` (2015-01-01..2019-12-31).
    metrics : dict of str to float or None
        At least :data:`METRIC_KEYS`.
    n_trials : int
        Trials of this segment in the register, this one included.
    commit : str or None
        Git commit of the code (``-dirty`` suffix when tracked files had uncommitted changes).
    forced : bool
        True for a holdout touch beyond the first, allowed with ``force=True``.
    reason : str or None
        Why a touch was forced.
    """

    timestamp: str
    candidate: str
    change: str
    segment: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    n_trials: int = 0
    commit: str | None = None
    forced: bool = False
    reason: str | None = None

    def to_line(self) -> bytes:
        """The record as one JSON line (``\\n``-terminated bytes)."""
        data = {"version": _VERSION, **asdict(self)}
        return (json.dumps(data, allow_nan=False, ensure_ascii=True) + "\n").encode("ascii")


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def _segment(segment: object, name: str = "segment") -> str:
    if segment not in SEGMENTS:
        raise ValueError(f"{name} must be one of {sorted(SEGMENTS)}, got {segment!r}")
    return str(segment)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value.strip()


def _metrics(metrics: object) -> dict[str, float | None]:
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics must be a mapping of metric name to number, got {type(metrics).__name__}")
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise ValueError(f"metrics misses {missing} (every trial reports {list(METRIC_KEYS)}; use None when "
                         "a value cannot be computed)")
    if "n_trials" in metrics:
        raise ValueError("metrics must not contain 'n_trials': the register counts the trials itself")
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"metrics keys must be non-empty strings, got {key!r}")
        if value is None:
            out[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f"metrics[{key!r}] must be a real number or None, got {value!r}")
        number = float(value)
        if math.isnan(number):
            out[key] = None
        elif math.isinf(number):
            raise ValueError(f"metrics[{key!r}] must be finite, got {number}")
        else:
            out[key] = number
    return out


def _path(register: object) -> Path:
    if not isinstance(register, (str, os.PathLike)) or not str(register):
        raise ValueError(f"register must be a file path, got {register!r}")
    path = Path(register).expanduser()
    if path.is_dir():
        raise ValueError(f"register must be a file path, got the directory {path}")
    return path


def _record(data: object, path: Path, row: int) -> TrialRecord:
    """A :class:`TrialRecord` from one parsed line, or DataValidationError naming the row."""
    if not isinstance(data, dict):
        raise DataValidationError("register line is not a JSON object", source=str(path), row=row)
    missing = [k for k in _FIELDS if k not in data]
    if missing:
        raise DataValidationError(f"register line misses {missing}", source=str(path), row=row)
    if data["version"] != _VERSION:
        raise DataValidationError(f"unknown register version {data['version']!r}", source=str(path), row=row)
    try:
        return TrialRecord(
            timestamp=_text(data["timestamp"], "timestamp"), candidate=_text(data["candidate"], "candidate"),
            change=_text(data["change"], "change"), segment=_segment(data["segment"]),
            metrics=_metrics(data["metrics"]), n_trials=int(data["n_trials"]), commit=data["commit"],
            forced=bool(data["forced"]), reason=data["reason"])
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"bad register line: {exc}", source=str(path), row=row) from None


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def _parse(content: bytes, path: Path) -> list[TrialRecord]:
    """Records of the complete lines of ``content``; a last line without ``\\n`` (torn write) is ignored."""
    lines = content.split(b"\n")
    torn = lines.pop()  # b"" when the content ends with a newline
    if torn:
        log.warning("trials register %s: ignoring a torn last line (%d bytes, an interrupted write)",
                    path, len(torn))
    records = []
    for row, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataValidationError(f"register line is not valid JSON ({exc})", source=str(path),
                                      row=row) from None
        records.append(_record(data, path, row))
    return records


def read_register(register: str | os.PathLike[str]) -> list[TrialRecord]:
    """All complete records of a register, oldest first (a missing file is an empty register).

    Parameters
    ----------
    register : path
        The JSON-lines file.

    Returns
    -------
    list of TrialRecord
        A torn last line (an interrupted write: no final newline) is ignored.

    Raises
    ------
    ValueError
        ``register`` is not a file path.
    DataValidationError
        A complete line is not a valid record (file and row named).
    """
    path = _path(register)
    if not path.exists():
        return []
    return _parse(path.read_bytes(), path)


def register_frame(register: str | os.PathLike[str]) -> pd.DataFrame:
    """The register as a table: one row per trial.

    Returns
    -------
    DataFrame
        Columns ``timestamp`` (datetime64, UTC), ``candidate``, ``change``, ``segment``,
        ``n_trials``, ``commit``, ``forced``, ``reason``, then one float column per metric
        (:data:`METRIC_KEYS` first, then any others in order of first appearance; NaN where
        a value is None or absent).
    """
    records = read_register(register)
    base = ["timestamp", "candidate", "change", "segment", "n_trials", "commit", "forced", "reason"]
    extra: list[str] = []
    for rec in records:
        extra += [k for k in rec.metrics if k not in METRIC_KEYS and k not in extra]
    metric_cols = list(METRIC_KEYS) + extra
    rows = [{**{k: getattr(rec, k) for k in base}, **{k: rec.metrics.get(k) for k in metric_cols}}
            for rec in records]
    frame = pd.DataFrame(rows, columns=base + metric_cols)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame[metric_cols] = frame[metric_cols].astype(float)
    return frame


def n_trials(register: str | os.PathLike[str], segment: str | None = None) -> int:
    """Number of trials in the register, for one segment or all.

    Parameters
    ----------
    register : path
    segment : {"research", "holdout"}, optional
        ``None`` counts every trial. The deflated Sharpe ratio of a research comparison uses
        ``n_trials(register, "research")``.

    Raises
    ------
    ValueError
        Unknown ``segment``.
    """
    if segment is not None:
        _segment(segment)
    return sum(1 for r in read_register(register) if segment is None or r.segment == segment)


def holdout_touches(register: str | os.PathLike[str], candidate: str) -> int:
    """How many times ``candidate`` was evaluated on the holdout segment (0 or 1 unless forced)."""
    candidate = _text(candidate, "candidate")
    return sum(1 for r in read_register(register) if r.segment == HOLDOUT and r.candidate == candidate)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
@contextmanager
def _locked_append(path: Path) -> Iterator[int]:
    """An ``O_APPEND`` descriptor of ``path`` held under an exclusive lock; a torn tail is cut first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            content = os.pread(fd, size, 0)
            keep = content.rfind(b"\n") + 1
            log.warning("trials register %s: truncating a torn last line (%d bytes) before appending",
                        path, size - keep)
            os.ftruncate(fd, keep)
            os.fsync(fd)
        if created:
            fsync_dir(path.parent)
        yield fd
    finally:
        os.close(fd)  # also releases the lock


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The git commit of the code, ``-dirty`` appended when tracked files have uncommitted changes.

    Parameters
    ----------
    cwd : path, optional
        Folder inside the repository; default the folder of this module (VFR's own checkout).

    Returns
    -------
    str or None
        None when git or a repository is not available.
    """
    where = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip() or None
    if commit and status.returncode == 0 and status.stdout.strip():
        commit += "-dirty"
    return commit


def record_trial(register: str | os.PathLike[str], candidate: str, change: str, segment: str,
                 metrics: Mapping[str, Any], *, commit: str | None = "auto", force: bool = False,
                 reason: str | None = None) -> TrialRecord:
    """Append one evaluation to the register and return it.

    Parameters
    ----------
    register : path
        The JSON-lines file (created with its folder if missing), e.g.
        :func:`default_register_path`.
    candidate : str
        Name of the evaluated candidate.
    change : str
        What changed (one line: "added X", "horizon 1w -> 1m", ...).
    segment : {"research", "holdout"}
        Data segment evaluated. A holdout evaluation goes through the once-per-candidate check
        (see :func:`record_holdout_touch`).
    metrics : mapping of str to float or None
        At least :data:`METRIC_KEYS` (``rank_ic``, ``t_stat``, ``sharpe_net``, ``dsr``); NaN is
        stored as None. ``n_trials`` is not accepted: the register counts it.
    commit : str or None, keyword-only
        ``"auto"`` (default) records :func:`git_commit`; None records nothing.
    force : bool, keyword-only
        Holdout only: allow a second touch of the same candidate; needs ``reason``.
    reason : str, optional, keyword-only
        Why the touch is forced (stored in the line and logged at WARNING).

    Returns
    -------
    TrialRecord
        The line written, with ``n_trials`` = trials of the segment so far, this one included.

    Raises
    ------
    ValueError
        A bad argument (named): empty candidate or change, unknown segment, missing or
        non-numeric metrics, ``force`` on a research trial or without a reason.
    HoldoutAlreadyTouchedError
        ``segment="holdout"``, the candidate already touched the holdout and ``force`` is False.
    DataValidationError
        The existing register has a malformed complete line.
    """
    path = _path(register)
    candidate = _text(candidate, "candidate")
    change = _text(change, "change")
    segment = _segment(segment)
    values = _metrics(metrics)
    if not isinstance(force, bool):
        raise ValueError(f"force must be True or False, got {force!r}")
    if force and segment != HOLDOUT:
        raise ValueError("force applies to holdout touches only (segment='holdout')")
    if force:
        reason = _text(reason, "reason")
    elif reason is not None:
        reason = _text(reason, "reason")
    if commit == "auto":
        commit = git_commit()
    elif commit is not None:
        commit = _text(commit, "commit")

    with _locked_append(path) as fd:
        records = _parse(os.pread(fd, os.fstat(fd).st_size, 0), path)
        forced = False
        if segment == HOLDOUT:
            touches = [r for r in records if r.segment == HOLDOUT and r.candidate == candidate]
            if touches and not force:
                last = touches[-1]
                raise HoldoutAlreadyTouchedError(
                    f"candidate {candidate!r} already touched the holdout segment {len(touches)} time(s) "
                    f"(last at {last.timestamp}, change {last.change!r}, register {path}); the holdout "
                    "(2015-2019) is evaluated once per candidate about to become the default. Evaluate on "
                    "the research segment, rename a genuinely new candidate, or pass force=True with a "
                    "reason (it is logged in the register).")
            if touches:
                forced = True
                log.warning("trials register %s: forced holdout touch #%d of candidate %r: %s",
                            path, len(touches) + 1, candidate, reason)
        count = 1 + sum(1 for r in records if r.segment == segment)
        record = TrialRecord(timestamp=datetime.now(UTC).isoformat(timespec="microseconds"),
                             candidate=candidate, change=change, segment=segment, metrics=values,
                             n_trials=count, commit=commit, forced=forced, reason=reason)
        _write_all(fd, record.to_line())
    return record


def record_holdout_touch(register: str | os.PathLike[str], candidate: str, change: str,
                         metrics: Mapping[str, Any], *, force: bool = False, reason: str | None = None,
                         commit: str | None = "auto") -> TrialRecord:
    """Record an evaluation of ``candidate`` on the holdout segment (2015-01-01..2019-12-31), once.

    The holdout is touched once per candidate about to become the default. A second touch of
    the same candidate raises :class:`HoldoutAlreadyTouchedError` unless ``force=True`` with a
    non-empty ``reason``; a forced touch is stored with ``forced: true`` and its reason, and
    logged at WARNING. The metrics are part of the line, so record the touch right after
    computing them, whatever they are, and before any decision is taken on them.

    Parameters, return value and other errors as :func:`record_trial` with ``segment="holdout"``.
    """
    return record_trial(register, candidate, change, HOLDOUT, metrics, commit=commit, force=force,
                        reason=reason)


def default_register_path(settings: Settings) -> Path:
    """``<home>/reports/trials.jsonl``: the register of a VFR home (the folder is created)."""
    return Path(settings.reports_dir) / "trials.jsonl"
