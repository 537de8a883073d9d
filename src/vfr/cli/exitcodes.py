"""Exit codes of the ``vfr`` command line, and the one-line reason given for an error.

One table, kept stable (scripts and schedulers test these numbers)::

    code  name          the command ...
    0     OK            did its job; also when it decided there was nothing to do (a retraining
                        skipped for too few fresh dates, a drift check with no champion yet):
                        the reason is printed on stdout
    1     FAILED        failed: a stage error, or an unexpected error (rerun with VFR_DEBUG=1
                        for the traceback)
    2     USAGE         was given bad arguments or option values (Click's own code for usage
                        errors is kept)
    3     BAD_INPUT     was given input data that is malformed or missing (file, row and column
                        are named)
    4     BAD_SETTINGS  found a ``VFR_*`` setting with an invalid value (the variable, its value
                        and what is expected are named), or a bad TOML configuration file (the
                        file and the key are named)
    5     BUSY          could not run because another process holds the store (DuckDB allows one
                        process per file) or another retraining holds the job lock
    6     BLOCKED       was stopped by a critical data-quality gate (nothing trained or
                        registered; the gate summary and the report path are named)

:func:`explain` maps an exception to its code and a one-line reason; :func:`settings_error`
turns a :class:`~vfr.config.Settings` validation error into :class:`~vfr.errors.UsageError`
(an option given on the command line) or :class:`~vfr.errors.SettingsError` (a ``VFR_*``
variable).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection, Iterator
from enum import IntEnum

from vfr.errors import DataValidationError, SettingsError, UsageError, VFRError

#: Environment variable that makes an error also print its traceback.
DEBUG_ENV = "VFR_DEBUG"


class ExitCode(IntEnum):
    """Process exit status of a ``vfr`` command (see the module docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    BAD_INPUT = 3
    BAD_SETTINGS = 4
    BUSY = 5
    BLOCKED = 6


_DUCKDB_LOCK = re.compile(r'Could not set lock on file "(?P<path>[^"]+)"')
_DUCKDB_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")
_SQLA_BACKGROUND = re.compile(r"\(Background on this error at: [^)]*\)")
_SECRET_FIELD = re.compile(r"secret|password|token|private|key", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def debug_enabled() -> bool:
    """Whether ``VFR_DEBUG`` asks for tracebacks (any value but empty, 0, false, no)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def one_line(text: object) -> str:
    """``text`` on one line: whitespace runs collapsed, SQLAlchemy's background link dropped."""
    return " ".join(_SQLA_BACKGROUND.sub("", str(text)).split())


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes / contexts and the DB-API errors SQLAlchemy wraps (``.orig``)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        orig = getattr(e, "orig", None)
        todo += [x for x in (orig, e.__cause__, e.__context__) if isinstance(x, BaseException)]


def lock_reason(exc: BaseException) -> str | None:
    """The one-line reason when ``exc`` (or what caused it) is a database held by another process."""
    for e in _chain(exc):
        text = one_line(e)
        m = _DUCKDB_LOCK.search(text)
        if m:
            holder = _DUCKDB_HOLDER.search(text)
            who = f" (PID {holder['pid']}: {os.path.basename(holder['exe'])})" if holder else ""
            return (f"store {m['path']} is locked by another process{who}, e.g. a running `vfr serve`; "
                    "stop it or use PostgreSQL (VFR_STORE_URL)")
        if type(e).__module__.startswith("sqlite3") and "database is locked" in text:
            return ("a SQLite database (serving database or MLflow registry) is locked by another process; "
                    "retry, or use PostgreSQL (VFR_SERVING_DB_URL, VFR_MLFLOW_TRACKING_URI)")
    return None


def _unreachable(exc: BaseException) -> str | None:
    """The one-line reason when a database server could not be reached (PostgreSQL, Redis)."""
    for e in _chain(exc):
        mod, text = type(e).__module__, one_line(e)
        if mod.startswith("psycopg") and "connection" in text and "failed" in text:
            return f"cannot connect to PostgreSQL: {text} (check VFR_STORE_URL / VFR_SERVING_DB_URL)"
        if mod.startswith("redis") and type(e).__name__ == "ConnectionError":
            return f"cannot connect to Redis: {text} (check VFR_CACHE_URL)"
    return None


def _quality_gate_error(exc: BaseException) -> bool:
    mod = sys.modules.get("vfr.ml.quality")  # loaded whenever such an error exists: no import here
    return mod is not None and isinstance(exc, mod.QualityGateError)


def _is_settings_validation(exc: BaseException) -> bool:
    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return False
    return isinstance(exc, ValidationError) and exc.title == "Settings"


def explain(exc: BaseException, *, expected: bool = False) -> tuple[ExitCode, str]:
    """The exit code and the one-line reason (no traceback) for ``exc``.

    A lock held by another process is recognised anywhere in the exception's chain (a stage
    may wrap it); the other cases go by the exception's own type. ``expected``: the command
    anticipated ``exc`` (for example a ``ValueError`` naming a bad date), so an exception of
    no known kind is reported by its message alone, without the "unexpected ..." wording.
    """
    lock = lock_reason(exc)
    if lock is not None:
        return ExitCode.BUSY, lock
    if _quality_gate_error(exc):
        reason = f"blocked: {one_line(exc)}"
        path = getattr(exc, "report_path", None)
        return ExitCode.BLOCKED, reason + (f" (report: {path})" if path else "")
    if isinstance(exc, UsageError):
        return ExitCode.USAGE, one_line(exc)
    if isinstance(exc, SettingsError):
        return ExitCode.BAD_SETTINGS, one_line(exc)
    if _is_settings_validation(exc) or type(exc).__module__.startswith("pydantic_settings"):
        return explain(settings_error(exc), expected=expected)
    if isinstance(exc, DataValidationError):
        return ExitCode.BAD_INPUT, one_line(exc)
    if isinstance(exc, FileNotFoundError):
        what = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        return ExitCode.BAD_INPUT, one_line(f"input not found: {what}")
    unreachable = _unreachable(exc)
    if unreachable is not None:
        return ExitCode.FAILED, unreachable
    if isinstance(exc, VFRError) or (expected and str(exc)):
        return ExitCode.FAILED, one_line(exc)
    return ExitCode.FAILED, one_line(f"unexpected {type(exc).__name__}: {exc} "
                                     f"(rerun with {DEBUG_ENV}=1 for the traceback)")


def _shown(field: str, value: object) -> str:
    """``value`` for an error message: secrets hidden, URL passwords masked, long values cut."""
    if _SECRET_FIELD.search(field):
        return "<hidden>"
    text = _URL_PASSWORD.sub(r"\1***@", str(value))
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _env_name(field: str) -> str:
    return f"VFR_{field.upper()}"


#: Command-line flags whose name is not ``--<settings field>`` (field -> flag).
FLAG_NAMES: dict[str, str] = {"train_algorithm": "--algorithm"}


def settings_error(exc: BaseException, options: Collection[str] = ()) -> VFRError:
    """A Settings validation error as :class:`UsageError` or :class:`SettingsError`, on one line.

    Parameters
    ----------
    exc : pydantic.ValidationError or pydantic_settings.SettingsError
        Raised while building :class:`vfr.config.Settings`.
    options : collection of str
        Fields given on the command line (as ``--field-name``): an error in one of them is a
        usage error; the others came from ``VFR_*`` variables or the TOML configuration file
        (named with the key: ``/path/vfr.toml: top_n = 'abc' is invalid: ...``).
    """
    if not hasattr(exc, "errors"):  # pydantic_settings.SettingsError: a complex value is not JSON
        m = re.search(r'field "(?P<field>\w+)"', str(exc))
        field = m["field"] if m else "?"
        env = _env_name(field)
        raw = next((v for k, v in os.environ.items() if k.upper() == env), None)
        cause = f" ({one_line(exc.__cause__)})" if exc.__cause__ else ""
        return SettingsError(f"{env}={_shown(field, raw)} is invalid: expected a JSON value{cause}")
    from vfr.config import toml_origin  # only on this error path: pydantic is loaded by now

    errors = exc.errors()
    fields = {str(e["loc"][0]) for e in errors if e.get("loc")} - set(options)
    toml_file, from_file = toml_origin(fields)
    usage: list[str] = []
    env_errors: list[str] = []
    for e in errors:
        field = str(e["loc"][0]) if e.get("loc") else "?"
        msg = one_line(e.get("msg", "invalid")).removeprefix("Value error, ")
        msg = msg[:1].lower() + msg[1:]
        if field in options:
            flag = FLAG_NAMES.get(field, f"--{field.replace('_', '-')}")
            usage.append(f"{flag} {_shown(field, e.get('input'))} is invalid: {msg}")
        elif field in from_file:
            env_errors.append(f"{toml_file}: {field} = {_shown(field, e.get('input'))} is invalid: {msg}")
        else:
            env_errors.append(f"{_env_name(field)}={_shown(field, e.get('input'))} is invalid: {msg}")
    if usage:
        return UsageError("; ".join(usage + env_errors))
    return SettingsError("; ".join(env_errors))


__all__ = ["DEBUG_ENV", "ExitCode", "debug_enabled", "explain", "lock_reason", "one_line",
           "settings_error"]
