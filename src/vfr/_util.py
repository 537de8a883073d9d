"""Small helpers shared across VFR's packages (no VFR imports: any module may use them).

- :func:`json_safe`: a JSON-serialisable copy of a value built from numpy, pandas and Python
  objects (metadata, lineage, reports).
- :func:`markdown_table`: a DataFrame as a Markdown table (reports).
- :func:`atomic_write` / :func:`fsync_dir`: replace a file all at once, durably (stores,
  lineage, registers, downloads).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["atomic_write", "fsync_dir", "json_safe", "markdown_table"]


def json_safe(value: Any, *, where: str | None = None) -> Any:
    """A JSON-safe copy of ``value``.

    Parameters
    ----------
    value : object
        Mappings (keys become strings) and lists / tuples are copied recursively; ``None``,
        ``str`` and ``bool`` are kept; integers (numpy too) become ``int``; floats (numpy
        too) become ``float``, NaN and infinities ``None``; ``pandas.Timestamp``,
        ``datetime``, ``date`` and ``numpy.datetime64`` become ISO strings (NaT ``None``);
        paths become strings.
    where : str, optional
        Where the value comes from, for errors. Without it any other object becomes its
        ``str()``; with it such an object raises.

    Returns
    -------
    object
        Built from dict, list, str, int, float, bool and None only.

    Raises
    ------
    TypeError
        ``where`` is given and a value (at any depth) has none of the types above; the
        message starts with ``where`` (and the key path inside it).
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp | datetime | date):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, where=None if where is None else f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, where=where) for v in value]
    if where is not None:
        raise TypeError(f"{where}: value of type {type(value).__name__} cannot be stored as JSON")
    return str(value)


def markdown_table(frame: Any, *, digits: int = 4, index: bool = False) -> str:
    """A pandas DataFrame as a GitHub Markdown table (no ``tabulate`` dependency).

    Floats are written with ``digits`` decimals, NaN as an empty cell; with ``index`` the
    index becomes the first column.
    """
    df = frame.reset_index() if index else frame

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make the creation, rename or removal of a file in ``folder`` durable (``fsync`` of the
    directory; a no-op where directories cannot be opened or synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Replace ``path`` with what ``write`` puts in a temporary file beside it, all at once.

    ``write(tmp)`` writes the whole new content to ``tmp`` (a fresh, empty file in ``path``'s
    folder, so the rename below never crosses file systems); the file is then fsynced, renamed
    over ``path`` (:func:`os.replace`) and the folder fsynced. Readers see the old file or the
    new one, never a part, and after a crash (kill -9 or power loss) at any moment ``path`` holds
    one of the two; a stray ``.<name>.*.tmp`` may be left beside it by a kill.

    Parameters
    ----------
    path : str or path-like
        The target file; its folder is created if needed.
    write : callable
        Called once with the temporary path; its return value is ignored.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    Exception
        Whatever ``write`` or the file system raises; the temporary file is removed and an
        existing ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target
