"""Errors of the serving services and how each reaches a client (the app maps them to statuses).

=====================  ======  ==============================================================
exception              status  meaning
=====================  ======  ==============================================================
:class:`NotFound`      404     the date, symbol, sector, model or version does not exist
:class:`Conflict`      409     valid, but not applicable in the current state
:class:`StoreUnavailable` 503  the market store or the operations database is unreachable
:class:`MLUnavailable` 503     no model could answer (the message says why)
=====================  ======  ==============================================================
"""

from __future__ import annotations

import re
from typing import Any

from vfr.opsdb import is_unavailable

_PATHS = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+|(?<![\w.])/[^\s'\",)\]]+|[A-Za-z]:\\\S+")


class StoreUnavailable(Exception):
    """The market store (or the operations database) cannot be reached."""


class NotFound(Exception):
    """The date, symbol, sector, model or version asked for does not exist."""


class Conflict(Exception):
    """The request is valid but cannot be applied in the current state."""


class MLUnavailable(Exception):
    """No ML answer could be produced (the message says why, without internal paths)."""


def hide_paths(value: Any) -> Any:
    """``value`` with every file path and URL inside its strings replaced by ``<hidden>``
    (dicts and lists recursively): what an answer may say about the server's disk."""
    if isinstance(value, str):
        return _PATHS.sub("<hidden>", value)
    if isinstance(value, dict):
        return {k: hide_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [hide_paths(v) for v in value]
    return value


def public_reason(exc: BaseException) -> str:
    """A one-line reason safe to show to clients: internal paths and URLs are hidden."""
    msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    if "unreadable" in msg:
        msg = msg.split(":")[0] + ": artifact unreadable"
    return _PATHS.sub("<hidden>", msg)[:300]


def is_store_down(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or its cause) is a failure to reach a database (connection refused,
    timeout, server gone), as opposed to a bad query or bad data."""
    return is_unavailable(exc)
