"""The FastAPI application factory (no module-level app; state lives on ``app.state``)."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from mlflow.exceptions import MlflowException
from starlette.exceptions import HTTPException as StarletteHTTPException

from vfr.config import Settings
from vfr.ml.registry import RegistryUnavailable, is_outage
from vfr.serving import metrics
from vfr.serving.auth import check_keys
from vfr.serving.docs import add_docs, honest_openapi
from vfr.serving.engine import ServingEngine
from vfr.serving.errors import Conflict, MLUnavailable, NotFound, StoreUnavailable
from vfr.serving.guards import BodyLimit, ClientAddress
from vfr.serving.metrics import ApiMetrics, ServiceWatch, route_label
from vfr.serving.models import REGISTRY_DOWN
from vfr.serving.ratelimit import TierLimiter
from vfr.serving.routers import admin, dashboard, earnings, health, ml, retraining, stocks

log = logging.getLogger("vfr.serving")
_RID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
#: Default of the setting ``api_warmup_wait_s`` (``VFR_API_WARMUP_WAIT_S``): how long start-up waits
#: for the warm-up before serving anyway (``create_app(warmup_wait_s=...)`` overrides it).
WARMUP_WAIT_S = Settings.model_fields["api_warmup_wait_s"].default
_ERROR_NAMES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 422: "validation_error",
                429: "rate_limited", 503: "unavailable"}


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("query", "body", "path", "header")]
    return ".".join(parts) or "body"


def _body(request: Request, error: str, detail, status: int, headers: dict | None = None) -> JSONResponse:
    rid = getattr(request.state, "request_id", None)
    return JSONResponse({"error": error, "detail": detail, "request_id": rid}, status_code=status, headers=headers)


class RequestContext:
    """Pure ASGI middleware: request id (``X-Request-ID`` in and out) and latency per route
    (into ``latency`` and, when given, the Prometheus ``metrics``: every status, errors too)."""

    def __init__(self, app, latency, metrics=None) -> None:
        self.app = app
        self.latency = latency
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for k, v in scope.get("headers", ()):
            if k == b"x-request-id":
                rid = v.decode("latin-1")
                break
        rid = rid if _RID.match(rid) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        t0 = time.perf_counter()
        status = [500]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - t0
            if self.metrics is not None:
                self.metrics.observe_request(scope["method"], route_label(scope), status[0], elapsed)
        route = scope.get("route")
        if route is not None and status[0] < 500:
            self.latency.record(f"{scope['method']} {route.path}", elapsed * 1000)


async def warm_up(engine: ServingEngine, wait_s: float) -> bool:
    """Run ``engine.warmup()`` in a background thread and wait for it at most ``wait_s`` seconds.

    Returns True when it finished in time. Otherwise it goes on in the background while the app
    serves (ML requests meanwhile answer within their budget or fall back to classic); a
    failing warm-up only logs, so start-up never fails because of it.
    """
    done = threading.Event()

    def work() -> None:
        try:
            engine.warmup()
        finally:
            done.set()

    t0 = time.perf_counter()
    threading.Thread(target=work, name="vfr-warmup", daemon=True).start()
    if await asyncio.to_thread(done.wait, wait_s):
        log.info("warm-up done in %.1f s", time.perf_counter() - t0)
        return True
    log.warning("warm-up still running after %g s (slow registry or store?); serving meanwhile", wait_s)
    return False


def create_app(settings: Settings, *, engine: ServingEngine | None = None, warm: bool = False,
               warmup_wait_s: float | None = None) -> FastAPI:
    """Build the VFR HTTP API.

    Parameters
    ----------
    settings : Settings
        Stores, registry, caches, auth, rate limits, ML budget, CORS.
    engine : ServingEngine, optional
        Default ``ServingEngine(settings)``; closed when the app shuts down.
    warm : bool
        At start-up, before serving, load the latest features, the champion (and challenger) and
        their predictions (``vfr serve`` does), so that the first ML request does not spend its
        ``ml_timeout_ms`` budget loading the model (see :func:`warm_up`).
    warmup_wait_s : float, optional
        With ``warm``: the longest start-up waits for the warm-up; after that the app serves
        (health checks answer) while the warm-up finishes in the background. Default the
        setting ``api_warmup_wait_s`` (``VFR_API_WARMUP_WAIT_S``, 30 s).

    Returns
    -------
    FastAPI
        OpenAPI docs at ``/docs`` and ``/redoc`` with local assets (schema at ``/openapi.json``).

    Raises
    ------
    vfr.errors.SettingsError
        An HS256 ``jwt_secret`` shorter than 32 bytes, or an unreadable key file.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm:
            await warm_up(app.state.engine,
                          settings.api_warmup_wait_s if warmup_wait_s is None else warmup_wait_s)
        watch = None
        if settings.service_alert_interval_s > 0:
            watch = ServiceWatch(settings, app.state.metrics, app.state.engine.latency,
                                 app.state.engine.ops.db, settings.service_alert_interval_s)
            watch.start()
        yield
        if watch is not None:
            watch.stop()
        app.state.engine.close()

    check_keys(settings)  # a short HS256 secret or an unreadable key file stops start-up here
    app = FastAPI(title="VFR API", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Stock selection and analysis: classic factor scores blended with ML predictions.")
    app.state.settings = settings
    app.state.engine = engine or ServingEngine(settings)
    app.state.limiter = TierLimiter(settings, breaker=app.state.engine.cache.breaker)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"])

    app.state.metrics = ApiMetrics(app.state.engine)
    # outermost last: request id and metrics see every answer, the 413s included; the body limit
    # and the client address apply before any route, dependency or body parser runs
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(ClientAddress, trusted=settings.api_trusted_proxies)
    app.add_middleware(RequestContext, latency=app.state.engine.latency, metrics=app.state.metrics)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError):
        detail = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid value"))}
                  for e in exc.errors()]
        return _body(request, "validation_error", detail, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _body(request, _ERROR_NAMES.get(exc.status_code, "error"), exc.detail, exc.status_code,
                     getattr(exc, "headers", None))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return _body(request, "not_found", str(exc), 404)

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict):
        return _body(request, "conflict", str(exc), 409)

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable):
        return _body(request, "store_unavailable", str(exc), 503, {"Retry-After": "5"})

    @app.exception_handler(MLUnavailable)
    async def ml_down(request: Request, exc: MLUnavailable):
        return _body(request, "ml_unavailable", str(exc), 503)

    # the registry's database went away mid-call (a read, or a write through MLflow): 503. Handlers
    # of these classes answer from the exception middleware (the ``Exception`` handler's 500s are
    # answered by the server-error middleware, which re-raises and drops the connection)
    @app.exception_handler(RegistryUnavailable)
    @app.exception_handler(MlflowException)
    async def registry_down(request: Request, exc: Exception):
        if not isinstance(exc, RegistryUnavailable) and not is_outage(exc):
            return internal_error(request, exc)
        log.warning("model registry unreachable on %s %s", request.method, request.url.path)
        return _body(request, "ml_unavailable", REGISTRY_DOWN, 503)

    def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _body(request, "internal_error", "internal error; quote the request id when reporting it", 500)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        return internal_error(request, exc)

    routers = [m.router for m in (health, stocks, earnings, ml, retraining, admin, dashboard, metrics)]
    for router in routers:
        app.include_router(router)
    add_docs(app)
    honest_openapi(app, routers)
    return app


def app_from_env() -> FastAPI:
    """Factory for multi-worker uvicorn: settings from the ``VFR_*`` environment."""
    from vfr.config import get_settings

    return create_app(get_settings(), warm=True)
