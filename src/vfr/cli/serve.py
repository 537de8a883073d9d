"""`vfr serve` (the HTTP API) and `vfr auth token` (mint a bearer token)."""

from __future__ import annotations

from typing import Annotated

import typer

from vfr.cli.common import HomeOpt, err, fail, make_settings, out
from vfr.cli.exitcodes import ExitCode
from vfr.errors import UsageError

serve_app = typer.Typer(help="Run the HTTP API (OpenAPI docs at /docs).", invoke_without_command=True)
auth_app = typer.Typer(help="API authentication.", no_args_is_help=True)


@serve_app.callback()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1 = this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    home: HomeOpt = None,
) -> None:
    """Serve the VFR API with uvicorn."""
    import uvicorn
    from uvicorn.config import LOG_LEVELS

    log_level = log_level.lower()
    if log_level not in LOG_LEVELS:
        fail(UsageError(f"--log-level {log_level!r} is invalid: expected one of {', '.join(LOG_LEVELS)}"))
    settings = make_settings(home)
    if not (settings.jwt_secret or settings.jwt_secret_file):
        err.print("[yellow]warning:[/] neither VFR_JWT_SECRET nor VFR_JWT_SECRET_FILE is set: /api/ml/* and "
                  "/api/admin/* will refuse every token", soft_wrap=True)
    # the app decides which X-Forwarded-For to trust (VFR_API_TRUSTED_PROXIES), not uvicorn
    if workers > 1:  # the supervisor never imports the app (memory, start-up): each worker does
        import os

        os.environ["VFR_HOME"] = str(settings.home)
        uvicorn.run("vfr.serving.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, proxy_headers=False)
    else:
        from vfr.serving import create_app

        uvicorn.run(create_app(settings, warm=True), host=host, port=port, log_level=log_level, proxy_headers=False)


@auth_app.command("token")
def token(
    user: Annotated[str, typer.Option("--user", help="Token subject (user name).")],
    tier: Annotated[str, typer.Option("--tier", help="free, pro or admin.")] = "free",
    days: Annotated[float, typer.Option("--days", min=0.0001, help="Validity in days.")] = 30.0,
    home: HomeOpt = None,
) -> None:
    """Mint a signed bearer token (needs VFR_JWT_SECRET, or the RS256 private key)."""
    from vfr.serving import AuthError, mint_token

    settings = make_settings(home)
    try:
        out.print(mint_token(settings, user, tier, days), soft_wrap=True)
    except AuthError as exc:  # no signing key configured
        fail(f"{exc}", ExitCode.BAD_SETTINGS)
    except ValueError as exc:  # bad --user, --tier or --days
        fail(UsageError(str(exc)))
