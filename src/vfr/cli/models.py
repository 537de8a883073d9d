"""`vfr models ...`: registered models."""

from __future__ import annotations

import pandas as pd
import typer

from vfr.cli.common import HomeOpt, make_settings, out, rich_table

app = typer.Typer(help="Registered models.", no_args_is_help=True)


@app.command("list")
def models_list(home: HomeOpt = None) -> None:
    """Registered versions of the model and which one is champion."""
    from vfr.ml import ModelRegistry

    settings = make_settings(home)
    versions = ModelRegistry.from_settings(settings).versions(settings.model_name)
    if not versions:
        out.print(f"no versions of {settings.model_name} registered at {settings.resolved_tracking_uri}")
        return
    out.print(rich_table(pd.DataFrame(versions).astype(str), settings.model_name))
