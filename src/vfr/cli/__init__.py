"""`vfr` command line: parses arguments and calls the packages (no logic of its own).

Configuration comes from ``VFR_*`` environment variables and a TOML file (``$VFR_CONFIG``,
``./vfr.toml`` or ``$VFR_HOME/config.toml``; see :class:`vfr.config.Settings`); ``--home``
overrides ``VFR_HOME`` for one command. Each command group lives in its own
module and is mounted here. Exit codes and error lines: :mod:`vfr.cli.exitcodes`.
"""

from __future__ import annotations

from vfr.cli import earnings, models, ops, research, risk, serve
from vfr.cli.core import app

app.add_typer(models.app, name="models")
app.add_typer(risk.app, name="risk")
app.add_typer(earnings.app, name="earnings")
app.add_typer(research.app, name="research")
app.add_typer(serve.serve_app, name="serve")
app.add_typer(serve.auth_app, name="auth")
app.add_typer(ops.monitor_app, name="monitor")
app.add_typer(ops.scheduler_app, name="scheduler")
app.add_typer(ops.ops_app, name="ops")
app.command("retrain")(ops.retrain)
# errors are one line (vfr.cli.exitcodes); VFR_DEBUG=1 prints the traceback, never the locals
app.pretty_exceptions_enable = False
app.pretty_exceptions_show_locals = False


def main() -> None:
    """Console-script entry point.

    An exception no command handled is printed as one ``error:`` line (with its traceback
    only when ``VFR_DEBUG`` is set) and ends the process with its code from
    :mod:`vfr.cli.exitcodes` (a store locked by another process, a bad setting, ...).

    After the command has finished and every stream and log handler is flushed, the process
    ends with ``os._exit``: with DuckDB and MLflow loaded together, interpreter teardown makes
    DuckDB's nanobind bindings print benign "leaked instances" warnings (no connection is
    alive by then; see nanobind's docs on refleaks), which would bury the command's output.
    """
    import logging
    import os
    import sys

    from vfr.cli.common import run_app

    try:
        code = run_app(app)  # Click's usage errors too are one `error:` line
    except SystemExit as exc:  # a command that called sys.exit
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # noqa: BLE001 - anything a command did not handle: one line, its code
        from vfr.cli.common import report_exception

        code = int(report_exception(exc))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["app", "main"]
