"""Helpers shared by the command modules: consoles, the --home option, errors, tables.

Errors end a command through :func:`fail` (one ``error: <reason>`` line on stderr and the exit
code of :mod:`vfr.cli.exitcodes`); :func:`report_exception` does the same for an exception no
command handled (called by :func:`vfr.cli.main`).
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vfr.cli.exitcodes import ExitCode, debug_enabled, explain, one_line, settings_error

if TYPE_CHECKING:  # imported inside the functions: `vfr --help` loads neither pandas nor pydantic (issue 18)
    import pandas as pd

    from vfr.config import Settings

out = Console()
err = Console(stderr=True)

HomeOpt = Annotated[Path | None, typer.Option("--home", help="VFR working folder (default $VFR_HOME or ~/.vfr).")]


def make_settings(home: Path | None, **overrides: object) -> Settings:
    """Settings from the environment, with ``--home`` and non-None overrides applied.

    A bad value ends the command: exit 2 naming the option when it came from the command line
    (``overrides``), exit 4 naming the ``VFR_*`` variable, or the TOML configuration file and
    its key, otherwise (a malformed or missing configuration file: exit 4 naming the file).
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError as PydanticSettingsError

    from vfr.config import get_settings
    from vfr.errors import SettingsError

    extra = {k: v for k, v in overrides.items() if v is not None}
    if home:
        extra["home"] = home
    try:
        return get_settings(**extra)
    except (ValidationError, PydanticSettingsError) as exc:
        fail(settings_error(exc, options=set(extra)))
    except SettingsError as exc:  # the TOML file: malformed, an unknown key, $VFR_CONFIG names no file
        fail(exc)


def print_error(reason: str) -> None:
    """``error: <reason>`` on stderr, on one line (never wrapped, no markup interpreted)."""
    err.print(Text.assemble(("error:", "bold red"), " ", one_line(reason)), soft_wrap=True, highlight=False)


def run_app(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run ``app`` on ``args`` (default ``sys.argv[1:]``) and return its exit code.

    Click's own usage errors (an unknown option or command, a value of the wrong type, a
    missing argument) are one ``error:`` line naming the command's ``--help``, exit 2, like
    the errors of :func:`fail`; no boxed panel.
    """
    try:
        rv = app(args, standalone_mode=False)
    except Exception as exc:  # Click's exceptions, recognised by class name (Typer vendors Click)
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "NoArgsIsHelpError" in kinds:  # the help was printed
            return int(ExitCode.USAGE)
        if "Abort" in kinds:
            print_error("aborted")
            return int(ExitCode.FAILED)
        if "ClickException" not in kinds:
            raise
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if "UsageError" in kinds and ctx is not None else ""
        print_error(f"{exc.format_message().rstrip('.')}{hint}")  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    return rv if isinstance(rv, int) else int(ExitCode.OK)


def report_exception(exc: BaseException, *, report: Path | str | None = None,
                     expected: bool = False) -> ExitCode:
    """Print ``exc`` as one error line (and its traceback too when ``VFR_DEBUG`` is set); its exit code.

    ``report``: a report path to name when ``exc`` is a data-quality block; ``expected``: the
    command anticipated ``exc`` (see :func:`vfr.cli.exitcodes.explain`).
    """
    code, reason = explain(exc, expected=expected)
    if report is not None and code == ExitCode.BLOCKED and "(report: " not in reason:
        reason += f" (report: {report})"
    if debug_enabled() and exc.__traceback__ is not None:
        traceback.print_exception(exc)
    print_error(reason)
    return code


def fail(exc: BaseException | str, code: int | None = None, *, report: Path | str | None = None) -> NoReturn:
    """End the command with a one-line error (no traceback) and its exit code.

    Parameters
    ----------
    exc : Exception or str
        The error; its exit code comes from :func:`vfr.cli.exitcodes.explain`. A string is
        printed as it is (exit ``code``, default 1).
    code : int, optional
        Exit code to use instead.
    report : path, optional
        Report to name when ``exc`` is a data-quality block.
    """
    if isinstance(exc, BaseException):
        explained = report_exception(exc, report=report, expected=True)
    else:
        print_error(str(exc))
        explained = ExitCode.FAILED
    raise typer.Exit(code=int(code if code is not None else explained))


def show_table(df: pd.DataFrame, title: str, floats: str = "{:.3f}") -> None:
    """Print a result table: a Rich table by default; with the global ``--json`` one JSON line
    ``{"table": title, "rows": [...]}`` on stdout; with ``--output FILE.parquet|csv`` the rows
    written to that file (a command's later tables to ``FILE-2``, ``FILE-3``, ...)."""
    from typer._click.globals import get_current_context  # Typer's vendored Click holds the context

    ctx = get_current_context(silent=True)
    opts = (ctx.find_root().obj or {}) if ctx is not None else {}
    if opts.get("output"):
        path = Path(opts["output"])
        opts["tables"] = opts.get("tables", 0) + 1
        if opts["tables"] > 1:
            path = path.with_name(f"{path.stem}-{opts['tables']}{path.suffix}")
        frame = df.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        err.print(f"{title}: {len(frame)} rows written to {path}", soft_wrap=True, highlight=False)
    elif opts.get("json"):
        import json
        import sys

        rows = json.loads(df.reset_index(drop=True).to_json(orient="records", date_format="iso"))
        sys.stdout.write(json.dumps({"table": title, "rows": rows}) + "\n")
        sys.stdout.flush()
    else:
        out.print(rich_table(df, title, floats))


def rich_table(df: pd.DataFrame, title: str, floats: str = "{:.3f}") -> Table:
    """A Rich table of a DataFrame, floats formatted with ``floats``."""
    import pandas as pd

    table = Table(title=title, show_lines=False)
    for col in df.columns:
        table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(df[col]) else "left")
    for _, row in df.iterrows():
        table.add_row(*[floats.format(v) if isinstance(v, float) else ("" if v is None else str(v)) for v in row])
    return table
