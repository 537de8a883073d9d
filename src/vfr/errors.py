"""Exceptions shared across VFR packages."""

from __future__ import annotations


class VFRError(Exception):
    """Base class of all VFR errors."""


class DataValidationError(VFRError, ValueError):
    """Input data is malformed.

    The message names the file, the (1-based, header excluded) row and the column at fault,
    so a user can open the file and fix it.

    Parameters
    ----------
    message : str
        What is wrong.
    source : str, optional
        File path (or other source name) of the bad data.
    row : int, optional
        1-based data row (header excluded) in the source file.
    column : str, optional
        Column name at fault.
    """

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None,
                 column: str | None = None) -> None:
        self.source, self.row, self.column = source, row, column
        where = []
        if source is not None:
            where.append(f"file {source}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class StageError(VFRError, RuntimeError):
    """A pipeline stage cannot run (for example its inputs are missing from the store)."""


class UsageError(VFRError, ValueError):
    """A command-line argument or option has a bad value (``vfr`` exits with code 2)."""


class SettingsError(VFRError, ValueError):
    """A ``VFR_*`` setting has a bad value (``vfr`` exits with code 4)."""
