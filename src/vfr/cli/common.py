"""Helpers shared by the command modules: consoles, the --home option, errors, tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from vfr.config import Settings, get_settings

out = Console()
err = Console(stderr=True)

HomeOpt = Annotated[Path | None, typer.Option("--home", help="VFR working folder (default $VFR_HOME or ~/.vfr).")]


def make_settings(home: Path | None, **overrides: object) -> Settings:
    """Settings from the environment, with ``--home`` and non-None overrides applied."""
    extra = {k: v for k, v in overrides.items() if v is not None}
    return get_settings(**({"home": home} if home else {}), **extra)


def fail(exc: Exception) -> NoReturn:
    """Print a one-line error (no traceback) and exit with status 1."""
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=1)


def rich_table(df: pd.DataFrame, title: str, floats: str = "{:.3f}") -> Table:
    """A Rich table of a DataFrame, floats formatted with ``floats``."""
    table = Table(title=title, show_lines=False)
    for col in df.columns:
        table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(df[col]) else "left")
    for _, row in df.iterrows():
        table.add_row(*[floats.format(v) if isinstance(v, float) else ("" if v is None else str(v)) for v in row])
    return table
