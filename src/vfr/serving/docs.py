"""The interactive API docs (``/docs``: Swagger UI, ``/redoc``: ReDoc) served with their own
JavaScript and CSS, so that they work without internet access.

FastAPI's default pages load Swagger UI and ReDoc from a CDN (a blank page offline). The
assets here come from the ``fastapi-offline`` package (its ``static`` folder: the
``swagger-ui-dist`` bundle and stylesheet, ReDoc's standalone bundle and a favicon), mounted at
:data:`ASSETS_URL`; the pages are FastAPI's own ``get_swagger_ui_html`` / ``get_redoc_html``
pointed at them (FastAPI's "Self-hosting JavaScript and CSS for docs").
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from vfr.serving import deps
from vfr.serving.schemas import EXAMPLE_REQUEST_ID, ErrorBody, ValidationErrorBody

#: Where the Swagger UI / ReDoc assets are served.
ASSETS_URL = "/docs-assets"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"


def assets_dir() -> Path:
    """The folder of the Swagger UI and ReDoc assets (``fastapi_offline/static``)."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def add_docs(app: FastAPI) -> None:
    """Serve ``/docs``, its OAuth2 redirect page, ``/redoc`` and their assets on ``app``
    (built with ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or f"{DOCS_URL}/oauth2-redirect"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=root + openapi_url, title=f"{app.title} - Swagger UI",
                                   oauth2_redirect_url=root + oauth2_redirect_url,
                                   swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                                   swagger_ui_parameters=app.swagger_ui_parameters)

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=root + openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png", with_google_fonts=False)


#: Descriptions of the error statuses the API answers with an :class:`~vfr.serving.schemas.ErrorBody`
#: (routes may document a status more precisely: :func:`error_responses`).
ERROR_STATUSES = {
    "400": "The request body could not be parsed.",
    "401": "Missing, invalid or expired bearer token (open routes: only when a bad token is sent).",
    "403": "The token's tier may not call this endpoint.",
    "404": "Unknown date, symbol, sector, model or version.",
    "409": "Conflict: a retraining already runs, or a model version whose artifact cannot be loaded.",
    "413": "Request body over `VFR_API_MAX_BODY_BYTES` (refused before it is read).",
    "422": "Invalid input: one entry per offending field.",
    "429": "Over the rate limit of the caller's tier (`Retry-After` says when to retry).",
    "500": "Unexpected error; the body carries the request id to quote, never a trace.",
    "503": "The market store, the operations database or every model is unavailable (`Retry-After`).",
}
#: ``error`` code and an example ``detail`` of each status (the texts the app really answers).
ERROR_DETAILS: dict[str, tuple[str, Any]] = {
    "400": ("bad_request", "There was an error parsing the body"),
    "401": ("unauthorized", "token expired"),
    "403": ("forbidden", "the free tier may not call this endpoint (needs admin)"),
    "404": ("not_found", "no features on 2019-07-06 (latest available: 2019-12-31)"),
    "409": ("conflict", "a retraining run is already in progress; see /api/ml/retraining/status"),
    "413": ("payload_too_large", "the request body exceeds the limit of 1048576 bytes"),
    "422": ("validation_error", [{"field": "symbols.0",
                                  "message": "String should match pattern '^[A-Z][A-Z0-9.\\-]{0,9}$'"}]),
    "429": ("rate_limited", "rate limit of the anonymous tier (30 calls per window) exceeded; retry in 12 s"),
    "500": ("internal_error", "internal error; quote the request id when reporting it"),
    "503": ("store_unavailable", "the market store is not reachable; try again later"),
}
_REF = "#/components/schemas/"
_DEFAULT_DESCRIPTION = "Additional Response"  # FastAPI's description of a response declared without one


def error_example(status: int | str, detail: Any = None, error: str | None = None) -> dict[str, Any]:
    """An example error body of ``status`` (``detail`` and ``error`` default to :data:`ERROR_DETAILS`)."""
    code, text = ERROR_DETAILS[str(status)]
    return {"error": error or code, "detail": text if detail is None else detail, "request_id": EXAMPLE_REQUEST_ID}


def error_responses(spec: dict[int, tuple[str, str] | tuple[str, str, str]]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status with an :class:`ErrorBody`, the route's own
    description and an example body. ``spec``: status -> (description, example detail) or
    (description, example detail, error code).

    The statuses every route of a kind answers (413, 500; 422 and 400 with input; 401 and 429
    when rate limited; 403 when a tier is required) are added by :func:`honest_openapi`; a route
    lists the others it can answer (404, 409, 503) here.
    """
    out: dict[int | str, dict[str, Any]] = {}
    for status, (description, detail, *code) in spec.items():
        example = error_example(status, detail, code[0] if code else None)
        out[status] = {"model": ErrorBody, "description": description,
                       "content": {"application/json": {"example": example}}}
    return out


def _calls(dependant: Any) -> set[Any]:
    out = set()
    for d in dependant.dependencies:
        out.add(d.call)
        out |= _calls(d)
    return out


def _error(status: str, model: str) -> dict[str, Any]:
    return {"description": ERROR_STATUSES[status],
            "content": {"application/json": {"schema": {"$ref": _REF + model}, "example": error_example(status)}}}


def honest_openapi(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Make ``app.openapi()`` describe what the app really answers (``routers``: those included in
    ``app``, whose dependencies say which routes are rate limited and which need a token).

    * Every operation documents 413 (the body limit runs before any route) and 500; those that
      take parameters or a body document 422 with :class:`ValidationErrorBody` (the app's own
      422 shape; FastAPI's ``HTTPValidationError`` is dropped), those with a body 400; those
      behind the rate limiter 401 (a bad token is refused even on open routes) and 429; those
      that need a token 403. The other statuses (404, 409, 503) are those each route declares
      (:func:`error_responses`). Every error response has a description and an example body.
    * Routes open to anonymous callers carry an *optional* bearer requirement
      (``security: [{}, {"HTTPBearer": []}]``: a token raises the caller's rate limit, none is
      needed); routes that need a token keep the required one.
    """
    limited = {}
    for route in (r for router in routers for r in router.routes):
        if isinstance(route, APIRoute) and route.include_in_schema:
            calls = _calls(route.dependant)
            for method in route.methods or ():
                limited[(route.path_format, method.lower())] = (deps.rate_limited in calls, deps._bearer in calls)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorBody, ValidationErrorBody):
            for name, definition in model.model_json_schema(ref_template=_REF + "{model}").get("$defs", {}).items():
                components.setdefault(name, definition)
            components[model.__name__] = {k: v for k, v in model.model_json_schema(
                ref_template=_REF + "{model}").items() if k != "$defs"}
        for path, operations in schema.get("paths", {}).items():
            for method, op in operations.items():
                responses = op.setdefault("responses", {})
                rate_limited, needs_token = limited.get((path, method), (False, False))
                wanted = ["413", "500"]
                if op.get("parameters") or op.get("requestBody"):
                    wanted.append("422")
                if op.get("requestBody"):
                    wanted.append("400")
                if rate_limited:
                    wanted += ["401", "429"]
                if needs_token:
                    wanted.append("403")
                for status in wanted:
                    if status == "422" or status not in responses:
                        responses[status] = _error(status, "ValidationErrorBody" if status == "422" else "ErrorBody")
                for status, answer in responses.items():
                    if status not in ERROR_STATUSES:
                        continue
                    if answer.get("description", _DEFAULT_DESCRIPTION) == _DEFAULT_DESCRIPTION:
                        answer["description"] = ERROR_STATUSES[status]
                    media = answer.get("content", {}).get("application/json")
                    if media is not None and media.get("schema", {}).get("$ref") == _REF + "ErrorBody" \
                            and "example" not in media and "examples" not in media:
                        media["example"] = error_example(status)
                if rate_limited and not needs_token:
                    op["security"] = [{}, {"HTTPBearer": []}]
                op["responses"] = dict(sorted(responses.items()))
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
